//! The subscriber → dispatcher path is bounded: when handlers fall behind, messages beyond
//! `max_incoming_queue` are dropped and counted (never buffered without bound), and the node
//! keeps working afterwards.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use socketio::Value;
use socketio_redis::{ConnectionConfig, Emitter, RedisAdapterConfig};
use support::cluster::Node;
use support::redis_server::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handler_drops_and_counts_instead_of_buffering() {
    let redis = RedisServer::start();
    let mut connection = ConnectionConfig::default();
    connection.max_incoming_queue = 4;
    let mut config = RedisAdapterConfig::default();
    config.connection = connection;
    let a = Node::start("A", &redis.url(), config).await;
    // A handler that blocks the dispatcher for a while (what a misbehaving handler does).
    a.io.of("/chat").on_server_side(|event, _, _| {
        if event == "slow" {
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let (mut client, _) = a.client("/", "{}").await;
    let emitter = Emitter::connect(&redis.url(), "socket.io").await.unwrap();
    emitter
        .of("/chat")
        .server_side_emit("slow", vec![])
        .await
        .unwrap();
    for i in 0..50 {
        emitter.emit("burst", vec![Value::from(i)]).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let stats = a.cluster.stats();
    assert!(stats.incoming_dropped > 0, "{stats:?}");
    assert!(stats.incoming_dropped < 50, "{stats:?}");
    // What was queued is delivered, in order; the rest was dropped.
    let mut got = Vec::new();
    while let Some(msg) = client.try_recv(Duration::from_millis(200)).await {
        got.push(msg);
    }
    assert_eq!(got.len() as u64 + stats.incoming_dropped, 50, "{got:?}");
    assert_eq!(got[0], r#"42["burst",0]"#);
    // And the node still works.
    emitter.emit("after", vec![]).await.unwrap();
    assert_eq!(client.recv().await, r#"42["after"]"#);
}
