//! The sharded adapter with Redis killed and restarted under traffic: local delivery goes on
//! while it is down, cluster operations fail or time out (no panic, no hang), and cross-node
//! delivery comes back by itself once Redis is back: the main, private and room channels are
//! all subscribed again (a room broadcast in dynamic mode travels on the room's channel).

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use socketio::Value;
use socketio_redis::{ConnectionConfig, ShardedConfig, SubscriptionMode};
use support::cluster::{Client, Node, within};
use support::redis_server::RedisServer;

fn fast_config() -> ShardedConfig {
    let mut connection = ConnectionConfig::default();
    connection.command_timeout = Duration::from_millis(800);
    connection.connect_timeout = Duration::from_millis(500);
    connection.max_reconnect_delay = Duration::from_millis(300);
    connection.health_check_interval = Duration::from_secs(1);
    let mut config = ShardedConfig::new("socket.io", SubscriptionMode::Dynamic);
    config.requests_timeout = Duration::from_secs(1);
    config.connection = connection;
    config
}

/// Reads until `want` arrives, skipping other messages (late or dropped cluster messages are
/// allowed: pub/sub is at-most-once).
async fn recv_until(client: &mut Client, want: &str) {
    loop {
        let msg = client.recv().await;
        if msg == want {
            return;
        }
        assert_ne!(
            msg, "<closed>",
            "connection closed while waiting for {want}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_delivery_survives_and_cluster_delivery_resumes() {
    let mut redis = RedisServer::start();
    let a = Node::start_sharded("A", &redis.url(), fast_config()).await;
    let b = Node::start_sharded("B", &redis.url(), fast_config()).await;
    let (mut ca, _) = a.client("/", "{}").await;
    let (mut cb, _) = b.client("/", r#"{"rooms":["rb"]}"#).await;
    b.cluster.ready().await.unwrap();

    a.io.emit("before", vec![]).unwrap();
    assert_eq!(ca.recv().await, r#"42["before"]"#);
    assert_eq!(cb.recv().await, r#"42["before"]"#);

    redis.kill();
    // Traffic while Redis is down: every local client still gets every message, in order.
    for i in 0..30 {
        a.io.emit("down", vec![Value::from(i)]).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for i in 0..30 {
        assert_eq!(ca.recv().await, format!(r#"42["down",{i}]"#));
    }

    // Cluster operations fail or time out, boundedly.
    let ns = a.io.of("/");
    let fetched = within("fetchSockets while down", ns.broadcast().fetch_sockets()).await;
    assert!(fetched.is_err(), "{fetched:?}");
    assert_eq!(within("serverCount", ns.adapter().server_count()).await, 1);
    let acked = within(
        "serverSideEmitWithAck while down",
        ns.server_side_emit_with_ack("x", vec![], Duration::from_secs(1)),
    )
    .await
    .unwrap();
    assert!(acked.timed_out);
    let op = ns.broadcast().timeout(Duration::from_millis(500));
    let task = tokio::spawn(async move { op.emit_with_ack("ask", vec![]).await });
    let asked = ca.recv().await;
    let id: String = asked[2..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    ca.send(&format!("43{id}[\"a\"]")).await;
    let result = within("broadcast with ack while down", task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        result.responses,
        vec![vec![Value::from("a")]],
        "the local ack is there"
    );

    redis.restart();
    a.wait_subscribed().await;
    b.wait_subscribed().await;
    assert!(b.cluster.stats().reconnects >= 1, "{:?}", b.cluster.stats());
    // The room channel is subscribed again along with the main and private ones.
    let numsub = redis.command(&["PUBSUB", "SHARDNUMSUB", "socket.io#/#rb#"]);
    assert!(numsub.ends_with(":1\r\n"), "{numsub:?}");

    // Cross-node delivery resumes by itself, on the room channel too: the first publishes
    // after the restart may still be lost while the publisher reconnects, so keep sending.
    let sender = {
        let io = a.io.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                io.to(["rb"]).emit("after", vec![Value::from(i)]).unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    loop {
        let msg = cb.recv().await;
        if msg.starts_with(r#"42["after""#) {
            break;
        }
    }
    sender.abort();
    b.io.emit("back", vec![]).unwrap();
    recv_until(&mut ca, r#"42["back"]"#).await;
    recv_until(&mut cb, r#"42["back"]"#).await;
    assert_eq!(within("serverCount", ns.adapter().server_count()).await, 2);
    let sockets = within("fetchSockets", ns.broadcast().fetch_sockets())
        .await
        .unwrap();
    assert_eq!(sockets.len(), 2);
    assert!(a.cluster.stats().subscribed, "{:?}", a.cluster.stats());
}
