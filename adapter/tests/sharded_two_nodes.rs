//! Two Socket.IO nodes in one process on the sharded adapter and a real Redis (sharded
//! pub/sub), each with its own connections, with raw WebSocket clients, in each subscription
//! mode: broadcasts and rooms reach the other node's clients, cluster requests (fetchSockets,
//! serverCount, serverSideEmit with ack, broadcast with acks) collect both nodes' answers,
//! socketsJoin / socketsLeave / disconnectSockets cross nodes, and each node subscribes
//! exactly the channels its mode asks for.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use socketio::Value;
use socketio_redis::{ShardedCluster, ShardedConfig, SubscriptionMode};
use support::cluster::{Node, json, within};
use support::redis_server::RedisServer;

const QUIET: Duration = Duration::from_millis(200);

/// The ack id and data of `42<id>[...]`.
fn ack_request(msg: &str) -> (u64, String) {
    let rest = msg.strip_prefix("42").unwrap();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (digits.parse().unwrap(), rest[digits.len()..].to_owned())
}

/// The sharded channels subscribed on `redis` under `socket.io#/#`.
fn shard_channels(redis: &RedisServer) -> BTreeSet<String> {
    let reply = redis.command(&["PUBSUB", "SHARDCHANNELS", "socket.io#/#*"]);
    reply
        .split("\r\n")
        .filter(|l| l.starts_with("socket.io#"))
        .map(str::to_owned)
        .collect()
}

/// `PUBSUB SHARDNUMSUB channel`.
fn shard_numsub(redis: &RedisServer, channel: &str) -> u64 {
    let reply = redis.command(&["PUBSUB", "SHARDNUMSUB", channel]);
    reply
        .rsplit("\r\n")
        .find_map(|l| l.strip_prefix(':'))
        .unwrap()
        .parse()
        .unwrap()
}

/// Waits until `channel` has `n` subscribers (room subscriptions follow joins and leaves).
async fn until_numsub(redis: &RedisServer, channel: &str, n: u64) {
    within(&format!("SHARDNUMSUB {channel} = {n}"), async {
        while shard_numsub(redis, channel) != n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

async fn two_nodes(
    redis: &RedisServer,
    mode: SubscriptionMode,
) -> (Node<ShardedCluster>, Node<ShardedCluster>) {
    let config = ShardedConfig::new("socket.io", mode);
    let a = Node::start_sharded("A", &redis.url(), config.clone()).await;
    let b = Node::start_sharded("B", &redis.url(), config).await;
    (a, b)
}

async fn exercise(mode: SubscriptionMode) {
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis, mode).await;
    let (mut ca, sa) = a.client("/", r#"{"rooms":["ra","r"],"name":"a1"}"#).await;
    let (mut cb, sb) = b.client("/", r#"{"rooms":["rb","r"],"name":"b1"}"#).await;
    let (mut cb2, sb2) = b.client("/", r#"{"name":"b2"}"#).await;
    // Room subscriptions are confirmed before anything is sent to rooms.
    a.cluster.ready().await.unwrap();
    b.cluster.ready().await.unwrap();
    let ns_a = a.io.of("/");

    // -- counting and subscriptions ------------------------------------------------------------
    assert_eq!(ns_a.adapter().server_count().await, 2, "{mode:?}");
    assert_eq!(b.io.of("/").adapter().server_count().await, 2);
    assert_eq!(shard_numsub(&redis, "socket.io#/#"), 2);
    let channels = shard_channels(&redis);
    let room = |r: &str| format!("socket.io#/#{r}#");
    let rooms: BTreeSet<String> = channels
        .iter()
        .filter(|c| c.len() != "socket.io#/#".len() + 17)
        .filter(|c| *c != "socket.io#/#")
        .cloned()
        .collect();
    let expected: BTreeSet<String> = match mode {
        SubscriptionMode::Static => BTreeSet::new(),
        SubscriptionMode::Dynamic => ["ra", "r", "rb"].map(room).into(),
        SubscriptionMode::DynamicPrivate => ["ra", "r", "rb", &sa, &sb, &sb2].map(room).into(),
    };
    assert_eq!(rooms, expected, "{mode:?}: {channels:?}");
    assert_eq!(
        shard_numsub(&redis, &room("r")),
        if mode == SubscriptionMode::Static {
            0
        } else {
            2
        }
    );

    // -- broadcasts ----------------------------------------------------------------------------
    a.io.emit("hello", vec![Value::from(1)]).unwrap();
    for c in [&mut ca, &mut cb, &mut cb2] {
        assert_eq!(c.recv().await, r#"42["hello",1]"#);
    }
    // One room of the other node (its room channel in the dynamic modes).
    a.io.to(["rb"])
        .emit("room", vec![Value::from("x")])
        .unwrap();
    assert_eq!(cb.recv().await, r#"42["room","x"]"#);
    // A socket id: main channel in dynamic, its own channel in dynamic-private.
    a.io.to([sb2.as_str()]).emit("direct", vec![]).unwrap();
    assert_eq!(cb2.recv().await, r#"42["direct"]"#);
    // Several rooms, then except.
    b.io.to(["ra", "rb"]).emit("rooms", vec![]).unwrap();
    assert_eq!(ca.recv().await, r#"42["rooms"]"#);
    assert_eq!(cb.recv().await, r#"42["rooms"]"#);
    a.io.of("/").except(["r"]).emit("except", vec![]).unwrap();
    assert_eq!(cb2.recv().await, r#"42["except"]"#);
    for c in [&mut ca, &mut cb, &mut cb2] {
        assert_eq!(
            c.try_recv(QUIET).await,
            None,
            "{mode:?}: one copy each, to the targets only"
        );
    }
    // Binary stays binary (msgpack on the wire, an attachment for the client).
    b.io.to(["ra"])
        .emit("bin", vec![Value::Binary(vec![1, 2, 3])])
        .unwrap();
    assert_eq!(
        ca.recv().await,
        r#"451-["bin",{"_placeholder":true,"num":0}]"#
    );
    assert_eq!(ca.recv().await, "<binary b\"\\x01\\x02\\x03\">");
    // Another namespace has its own channels.
    let (mut chat_b, _) = b.client("/chat", "{}").await;
    a.io.of("/chat").emit("chat", vec![]).unwrap();
    assert_eq!(chat_b.recv().await, r#"42/chat,["chat"]"#);
    assert_eq!(cb.try_recv(QUIET).await, None);
    // Local stays local.
    a.io.of("/")
        .broadcast()
        .local()
        .emit("local", vec![])
        .unwrap();
    assert_eq!(ca.recv().await, r#"42["local"]"#);
    assert_eq!(cb.try_recv(QUIET).await, None);

    // -- fetchSockets --------------------------------------------------------------------------
    let sockets = within("fetchSockets", ns_a.broadcast().fetch_sockets())
        .await
        .unwrap();
    let ids: BTreeSet<&str> = sockets.iter().map(|s| s.id()).collect();
    assert_eq!(ids, [sa.as_str(), sb.as_str(), sb2.as_str()].into());
    let remote = sockets.iter().find(|s| s.id() == sb).unwrap();
    assert_eq!(
        json(remote.data()),
        serde_json::json!({"rooms": ["rb", "r"], "name": "b1"})
    );
    assert_eq!(remote.rooms(), [sb.as_str(), "r", "rb"]);
    let in_rb = ns_a.to(["rb"]).fetch_sockets().await.unwrap();
    assert_eq!(
        in_rb.iter().map(|s| s.id()).collect::<Vec<_>>(),
        [sb.as_str()]
    );
    // A remote socket handle works through the cluster.
    remote.emit("via-remote", vec![Value::from(7)]).unwrap();
    assert_eq!(cb.recv().await, r#"42["via-remote",7]"#);
    // allRooms: this node's rooms only, as Node's ClusterAdapter.
    let mut rooms = ns_a.adapter().all_rooms().await.unwrap();
    rooms.sort();
    let mut local = vec![sa.clone(), "r".into(), "ra".into()];
    local.sort();
    assert_eq!(rooms, local);

    // -- serverSideEmit ------------------------------------------------------------------------
    ns_a.server_side_emit("note", vec![Value::from("n")])
        .unwrap();
    let acked = within(
        "serverSideEmitWithAck",
        ns_a.server_side_emit_with_ack("ping", vec![Value::from(1)], Duration::from_secs(3)),
    )
    .await
    .unwrap();
    assert!(!acked.timed_out, "{acked:?}");
    assert_eq!(acked.responses, vec![vec![Value::from("B")]]);
    assert_eq!(
        b.received.lock().unwrap().clone(),
        vec![
            ("note".to_owned(), vec![Value::from("n")]),
            ("ping".to_owned(), vec![Value::from(1)])
        ]
    );
    assert!(a.received.lock().unwrap().is_empty(), "not to itself");

    // -- broadcast with acks -------------------------------------------------------------------
    let op = a.io.of("/").to(["r"]).timeout(Duration::from_secs(3));
    let task = tokio::spawn(async move { op.emit_with_ack("ask", vec![Value::from("q")]).await });
    let (id_a, data_a) = ack_request(&ca.recv().await);
    let (id_b, data_b) = ack_request(&cb.recv().await);
    assert_eq!(data_a, r#"["ask","q"]"#);
    assert_eq!(data_b, r#"["ask","q"]"#);
    cb.send(&format!(r#"43{id_b}[{{"from":"b"}}]"#)).await;
    ca.send(&format!(r#"43{id_a}[{{"from":"a"}}]"#)).await;
    let result = within("emit_with_ack", task).await.unwrap().unwrap();
    assert!(!result.timed_out, "{result:?}");
    let mut froms: Vec<String> = result
        .responses
        .iter()
        .map(|r| json(&r[0])["from"].as_str().unwrap().to_owned())
        .collect();
    froms.sort();
    assert_eq!(froms, ["a", "b"]);
    assert_eq!(cb2.try_recv(QUIET).await, None, "not in room r");
    // A binary ack comes back as binary (BROADCAST_ACK in msgpack).
    let op =
        b.io.of("/")
            .to([sa.as_str()])
            .timeout(Duration::from_secs(3));
    let task = tokio::spawn(async move { op.emit_with_ack("bin-ask", vec![]).await });
    let (id_a, _) = ack_request(&ca.recv().await);
    ca.send(&format!(r#"461-{id_a}[{{"_placeholder":true,"num":0}}]"#))
        .await;
    ca.send_binary(vec![0xbe, 0xef]).await;
    let result = within("emit_with_ack (binary)", task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        result.responses,
        vec![vec![Value::Binary(vec![0xbe, 0xef])]]
    );

    // -- socketsJoin / socketsLeave / disconnectSockets ----------------------------------------
    a.io.of("/").to([sb2.as_str()]).sockets_join(["joined"]);
    if mode != SubscriptionMode::Static {
        // The room appeared on B: B subscribes its channel (5.2).
        until_numsub(&redis, &room("joined"), 1).await;
    } else {
        tokio::time::sleep(QUIET).await;
    }
    a.io.to(["joined"]).emit("j", vec![]).unwrap();
    assert_eq!(cb2.recv().await, r#"42["j"]"#);
    assert!(
        b.io.of("/")
            .socket(&sb2)
            .unwrap()
            .rooms()
            .contains(&"joined".to_owned())
    );
    a.io.of("/").to(["joined"]).sockets_leave(["joined"]);
    until_numsub(&redis, &room("joined"), 0).await;
    within("leave applied on B", async {
        while b
            .io
            .of("/")
            .socket(&sb2)
            .unwrap()
            .rooms()
            .contains(&"joined".to_owned())
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    a.io.of("/").to(["rb"]).disconnect_sockets(false);
    assert_eq!(cb.recv().await, "41");
    assert_eq!(ca.try_recv(QUIET).await, None);
    // rb emptied on B: its channel goes (dynamic modes); r still has a1.
    until_numsub(&redis, &room("rb"), 0).await;
    if mode != SubscriptionMode::Static {
        assert_eq!(shard_numsub(&redis, &room("r")), 1);
    }
    if mode == SubscriptionMode::DynamicPrivate {
        assert_eq!(
            shard_numsub(&redis, &room(&sb)),
            0,
            "the socket's own room went too"
        );
    }
    assert_eq!(ns_a.adapter().server_count().await, 2);

    // -- a node gone (its adapters dropped) unsubscribes everything -----------------------------
    drop((ca, ns_a, sockets, in_rb));
    drop(a);
    until_numsub(&redis, "socket.io#/#", 1).await;
    until_numsub(&redis, &room("ra"), 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_mode() {
    exercise(SubscriptionMode::Static).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_mode() {
    exercise(SubscriptionMode::Dynamic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_private_mode() {
    exercise(SubscriptionMode::DynamicPrivate).await;
}

/// A room deleted and created again at once keeps its subscription (the unsubscription still
/// queued must not undo the new subscription), and a room named like the node's uid does not
/// steal its private channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_churn_keeps_subscriptions_right() {
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis, SubscriptionMode::Dynamic).await;
    let (mut ca, sa) = a.client("/", "{}").await;
    let (_cb, _) = b.client("/", "{}").await;
    let socket = a.io.of("/").socket(&sa).unwrap();
    for _ in 0..50 {
        socket.join(["churn"]);
        socket.leave("churn");
    }
    socket.join(["churn"]);
    a.cluster.ready().await.unwrap();
    until_numsub(&redis, "socket.io#/#churn#", 1).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(shard_numsub(&redis, "socket.io#/#churn#"), 1);
    b.io.to(["churn"]).emit("c", vec![]).unwrap();
    assert_eq!(ca.recv().await, r#"42["c"]"#);
    // An unreachable Redis at start is an error, quickly.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = ShardedCluster::connect(
        &format!("redis://127.0.0.1:{dead}"),
        ShardedConfig::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, socketio_redis::Error::Connect { .. }),
        "{err:?}"
    );
    assert!(!a.cluster.is_redis_cluster());
}
