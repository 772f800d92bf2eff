//! Cluster presence heals itself: when Redis loses its state (a restart without persistence, a
//! flush), each node pushes its users again on its next heartbeat, so the cluster-wide status
//! and the announcements come back without any client reconnecting.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::{config, start};
use serde_json::json;

async fn node(redis: &RedisServer, id: &str) -> common::Server {
    let mut config = config();
    config.node_id = id.into();
    config.redis_url = Some(redis.url());
    config.redis_key = "presence-recovery".into();
    config.presence_ttl = Duration::from_millis(600);
    start(config).await
}

/// Sends one inline command to Redis and returns the start of its reply.
fn redis_command(redis: &RedisServer, command: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(format!("{command}\r\n").as_bytes()).unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_push_their_users_again_after_redis_loses_its_state() {
    let redis = RedisServer::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let mut watcher = b.user("watcher").await;
    let _alice = a.user("alice").await;
    let status = |ack: &serde_json::Value| ack["users"][0]["online"].as_bool().unwrap();

    // Subscribing as soon as alice is connected may race her push: wait for the announcement.
    let first = watcher
        .ack("presence:subscribe", json!({ "userIds": ["alice"] }))
        .await;
    if !status(&first) {
        let online = watcher.event("user:presence:v1").await;
        assert_eq!(online["online"], true);
    }

    assert_eq!(redis_command(&redis, "FLUSHALL"), "+OK\r\n");
    let lost = watcher
        .ack("presence:subscribe", json!({ "userIds": ["alice"] }))
        .await;
    assert!(!status(&lost), "Redis forgot everything: {lost}");

    // Node a notices on its next heartbeat (every TTL / 3) and pushes alice again.
    let online = watcher.event("user:presence:v1").await;
    assert_eq!(
        (online["userId"].as_str(), online["online"].as_bool()),
        (Some("alice"), Some(true))
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let ack = watcher
            .ack("presence:subscribe", json!({ "userIds": ["alice"] }))
            .await;
        if status(&ack) {
            break;
        }
        assert!(Instant::now() < deadline, "alice never came back online");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_shutdown_announces_its_users_offline_at_once() {
    let redis = RedisServer::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let mut watcher = b.user("watcher").await;
    watcher
        .ack("presence:subscribe", json!({ "userIds": ["carol"] }))
        .await;
    let _carol = a.user("carol").await;
    assert_eq!(watcher.event("user:presence:v1").await["online"], true);
    let stopped = Instant::now();
    a.shutdown().await;
    let offline = watcher.event("user:presence:v1").await;
    assert_eq!(
        (offline["userId"].as_str(), offline["online"].as_bool()),
        (Some("carol"), Some(false))
    );
    // Well inside the TTL (600 ms): the leave announced it, not the reaping of an expired node.
    assert!(
        stopped.elapsed() < Duration::from_millis(500),
        "{:?}",
        stopped.elapsed()
    );
    b.shutdown().await;
}
