//! Two Socket.IO nodes in one process on a real Redis, each with its own connections, with raw
//! WebSocket clients: what one node does reaches the other node's clients, and cluster
//! requests (fetchSockets, serverCount, allRooms, serverSideEmit with ack, broadcast with
//! acks) collect both nodes' answers. Also the Rust emitter, and the exact subscriptions.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use socketio::Value;
use socketio_redis::{Emitter, RedisAdapterConfig};
use support::cluster::{Client, Node, json, within};
use support::redis_server::RedisServer;

const QUIET: Duration = Duration::from_millis(300);

async fn two_nodes(redis: &RedisServer) -> (Node, Node) {
    let a = Node::start("A", &redis.url(), RedisAdapterConfig::default()).await;
    let b = Node::start("B", &redis.url(), RedisAdapterConfig::default()).await;
    (a, b)
}

/// The ack id and data of `42<id>[...]`.
fn ack_request(msg: &str) -> (u64, String) {
    let rest = msg.strip_prefix("42").unwrap();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (digits.parse().unwrap(), rest[digits.len()..].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_and_rooms_cross_nodes() {
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis).await;
    let (mut ca, _) = a.client("/", r#"{"rooms":["ra"]}"#).await;
    let (mut cb, _) = b.client("/", r#"{"rooms":["rb"]}"#).await;

    a.io.emit("hello", vec![Value::from(1)]).unwrap();
    assert_eq!(ca.recv().await, r#"42["hello",1]"#);
    assert_eq!(cb.recv().await, r#"42["hello",1]"#);

    // A room on the other node (single-room channel), then several rooms, then except.
    b.io.to(["ra"])
        .emit("room", vec![Value::from("x")])
        .unwrap();
    assert_eq!(ca.recv().await, r#"42["room","x"]"#);
    b.io.to(["ra", "rb"]).emit("rooms", vec![]).unwrap();
    assert_eq!(ca.recv().await, r#"42["rooms"]"#);
    assert_eq!(cb.recv().await, r#"42["rooms"]"#);
    a.io.of("/").except(["rb"]).emit("except", vec![]).unwrap();
    assert_eq!(ca.recv().await, r#"42["except"]"#);
    assert_eq!(cb.try_recv(QUIET).await, None, "rb is excepted");

    // Binary stays binary across nodes (msgpack bin on the wire, attachment to the client).
    a.io.emit("bin", vec![Value::Binary(vec![1, 2, 3])])
        .unwrap();
    for client in [&mut ca, &mut cb] {
        assert_eq!(
            client.recv().await,
            r#"451-["bin",{"_placeholder":true,"num":0}]"#
        );
        assert_eq!(client.recv().await, "<binary b\"\\x01\\x02\\x03\">");
    }

    // Another namespace has its own channels.
    let (mut chat_b, _) = b.client("/chat", "{}").await;
    a.io.of("/chat").emit("chat", vec![]).unwrap();
    assert_eq!(chat_b.recv().await, r#"42/chat,["chat"]"#);
    assert_eq!(
        ca.try_recv(QUIET).await,
        None,
        "/ does not get /chat's broadcast"
    );

    // Local only stays local.
    a.io.of("/")
        .broadcast()
        .local()
        .emit("local", vec![])
        .unwrap();
    assert_eq!(ca.recv().await, r#"42["local"]"#);
    assert_eq!(cb.try_recv(QUIET).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_requests_collect_both_nodes() {
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis).await;
    let (_ca, sa) = a.client("/", r#"{"rooms":["ra"],"name":"a1"}"#).await;
    let (mut cb, sb) = b.client("/", r#"{"rooms":["rb"],"name":"b1"}"#).await;
    let ns_a = a.io.of("/");

    assert_eq!(ns_a.adapter().server_count().await, 2);
    assert_eq!(b.io.of("/").adapter().server_count().await, 2);

    let mut sockets = ns_a.broadcast().fetch_sockets().await.unwrap();
    sockets.sort_by(|x, y| (x.id() == sa).cmp(&(y.id() == sa)).reverse());
    assert_eq!(sockets.len(), 2);
    assert_eq!(sockets[0].id(), sa);
    let remote = &sockets[1];
    assert_eq!(remote.id(), sb);
    assert_eq!(
        json(remote.data()),
        serde_json::json!({"rooms": ["rb"], "name": "b1"})
    );
    assert_eq!(remote.rooms(), [sb.as_str(), "rb"]);
    assert_eq!(
        remote.handshake().url,
        "/socket.io/?EIO=4&transport=websocket"
    );
    let in_rb = ns_a.to(["rb"]).fetch_sockets().await.unwrap();
    assert_eq!(
        in_rb.iter().map(|s| s.id()).collect::<Vec<_>>(),
        [sb.as_str()]
    );

    // A remote socket handle works through the cluster.
    remote.emit("direct", vec![Value::from(7)]).unwrap();
    assert_eq!(cb.recv().await, r#"42["direct",7]"#);

    let mut rooms = ns_a.adapter().all_rooms().await.unwrap();
    rooms.sort();
    let mut expected = vec![sa.clone(), sb.clone(), "ra".into(), "rb".into()];
    expected.sort();
    assert_eq!(rooms, expected);

    // serverSideEmit: every other node gets it; with an ack, one answer per other node.
    ns_a.server_side_emit("note", vec![Value::from("n")])
        .unwrap();
    let acked = within(
        "serverSideEmitWithAck",
        ns_a.server_side_emit_with_ack("ping", vec![Value::from(1)], Duration::from_secs(3)),
    )
    .await
    .unwrap();
    assert!(!acked.timed_out);
    assert_eq!(acked.responses, vec![vec![Value::from("B")]]);
    let got = b.received.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![
            ("note".to_owned(), vec![Value::from("n")]),
            ("ping".to_owned(), vec![Value::from(1)])
        ]
    );
    assert!(a.received.lock().unwrap().is_empty(), "not to itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_with_acks_across_nodes() {
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis).await;
    let (mut ca, _) = a.client("/", r#"{"rooms":["r"]}"#).await;
    let (mut cb, _) = b.client("/", r#"{"rooms":["r"]}"#).await;
    let (mut cb2, _) = b.client("/", "{}").await;

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

    // A client that never answers: the operation times out with what came.
    let op = b.io.of("/").broadcast().timeout(Duration::from_millis(800));
    let task = tokio::spawn(async move { op.emit_with_ack("ask2", vec![]).await });
    let (id_a, _) = ack_request(&ca.recv().await);
    ca.send(&format!("43{id_a}[1]")).await;
    let _ = cb.recv().await;
    let _ = cb2.recv().await;
    let result = within("emit_with_ack", task).await.unwrap().unwrap();
    assert!(result.timed_out);
    assert_eq!(result.responses, vec![vec![Value::from(1)]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_leave_and_disconnect_cross_nodes() {
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis).await;
    let (mut ca, sa) = a.client("/", "{}").await;
    let (mut cb, sb) = b.client("/", r#"{"rooms":["rb"]}"#).await;

    a.io.of("/").broadcast().sockets_join(["joined"]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.io.to(["joined"]).emit("j", vec![]).unwrap();
    assert_eq!(ca.recv().await, r#"42["j"]"#);
    assert_eq!(cb.recv().await, r#"42["j"]"#);
    assert!(
        b.io.of("/")
            .socket(&sb)
            .unwrap()
            .rooms()
            .contains(&"joined".to_owned())
    );

    b.io.of("/").to([sa.as_str()]).sockets_leave(["joined"]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !a.io
            .of("/")
            .socket(&sa)
            .unwrap()
            .rooms()
            .contains(&"joined".to_owned())
    );

    a.io.of("/").to(["rb"]).disconnect_sockets(false);
    assert_eq!(cb.recv().await, "41");
    assert_eq!(ca.try_recv(QUIET).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_emitter_reaches_every_node() {
    let redis = RedisServer::start();
    let (a, b) = two_nodes(&redis).await;
    let (mut ca, _) = a.client("/", r#"{"rooms":["ra"]}"#).await;
    let (mut cb, sb) = b.client("/", "{}").await;
    let (mut chat, _) = b.client("/chat", "{}").await;
    let emitter = Emitter::connect(&redis.url(), "socket.io").await.unwrap();

    emitter.emit("e", vec![Value::from(1)]).await.unwrap();
    assert_eq!(ca.recv().await, r#"42["e",1]"#);
    assert_eq!(cb.recv().await, r#"42["e",1]"#);
    emitter.to(["ra"]).emit("room", vec![]).await.unwrap();
    assert_eq!(ca.recv().await, r#"42["room"]"#);
    emitter.of("chat").emit("c", vec![]).await.unwrap();
    assert_eq!(chat.recv().await, r#"42/chat,["c"]"#);
    emitter.to([sb.as_str()]).sockets_join(["x"]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    emitter.to(["x"]).emit("in-x", vec![]).await.unwrap();
    assert_eq!(cb.recv().await, r#"42["in-x"]"#);
    assert_eq!(ca.try_recv(QUIET).await, None);
    emitter
        .server_side_emit("job", vec![Value::from(2)])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for node in [&a, &b] {
        assert_eq!(
            node.received.lock().unwrap().clone(),
            vec![("job".to_owned(), vec![Value::from(2)])]
        );
    }
    emitter
        .except(["ra"])
        .disconnect_sockets(true)
        .await
        .unwrap();
    assert_eq!(cb.recv().await, "41");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_subscriber_connection_with_nodes_subscriptions() {
    let redis = RedisServer::start();
    let a = Node::start("A", &redis.url(), RedisAdapterConfig::with_key("myapp")).await;
    // One connection subscribed to each request channel: NUMSUB counts this process once.
    for nsp in ["/", "/chat"] {
        let reply = redis.command(&["PUBSUB", "NUMSUB", &format!("myapp-request#{nsp}#")]);
        assert!(reply.ends_with(":1\r\n"), "{nsp}: {reply:?}");
    }
    let reply = redis.command(&["PUBSUB", "NUMPAT"]);
    assert_eq!(reply, ":2\r\n", "myapp#/#* and myapp#/chat#*");
    let clients = redis.command(&["CLIENT", "LIST"]);
    let subscribers = clients
        .lines()
        .filter(|l| l.starts_with("id=") && !l.contains(" sub=0 psub=0 "))
        .count();
    assert_eq!(subscribers, 1, "{clients}");
    // A namespace created later subscribes on the same connection.
    let _late = a.io.of("/late");
    a.cluster.ready().await.unwrap();
    let reply = redis.command(&["PUBSUB", "NUMSUB", "myapp-request#/late#"]);
    assert!(reply.ends_with(":1\r\n"), "{reply:?}");
    let reply = redis.command(&["PUBSUB", "CHANNELS", "myapp-response#/late#*"]);
    assert!(
        reply.starts_with("*2\r\n"),
        "shared + own response channel: {reply:?}"
    );
    assert_eq!(a.io.of("/").adapter().server_count().await, 1);
    // An unreachable Redis at start is an error, quickly.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let started = std::time::Instant::now();
    let err = socketio_redis::ClassicCluster::connect(
        &format!("redis://127.0.0.1:{dead}"),
        RedisAdapterConfig::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, socketio_redis::Error::Connect { .. }),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    let _ = Client::open; // keep the helper linked
}
