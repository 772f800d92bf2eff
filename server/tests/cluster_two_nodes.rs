//! Two `sockeye` nodes on a real Redis through the `socketio-redis` classic adapter: a user's
//! tabs on both nodes get their jobs' events and each other's tab updates, and a worker in
//! another process (the Rust emitter) reaches them. Presence and the job stream are still
//! per node (cluster pass).

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::redis::RedisServer;
use common::{config, get, start};
use serde_json::json;
use sockeye::jobs::{CancelSignal, Job, JobKind};
use sockeye::worker::{EmitterPublisher, JobContext};

async fn node(redis: &RedisServer, id: &str) -> common::Server {
    let mut config = config();
    config.node_id = id.into();
    config.redis_url = Some(redis.url());
    config.redis_key = "sockeye-test".into();
    start(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_the_users_tabs_on_both_nodes() {
    let redis = RedisServer::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    for server in [&a, &b] {
        let health = get(server.addr, "/api/health").await.json();
        assert_eq!(health["redis"], "up", "{health}");
    }
    let mut alice_a = a.user("alice").await;
    let mut alice_b = b.user("alice").await;
    let mut bob_b = b.user("bob").await;

    // Tab sync across nodes.
    alice_a
        .emit(
            "tab:update",
            json!({ "tabId": "on-a", "state": { "x": 1 } }),
        )
        .await;
    let relayed = alice_b.event("tab:update:v1").await;
    assert_eq!(relayed["tabId"], "on-a");
    bob_b
        .no_event("tab:update:v1", Duration::from_millis(100))
        .await;

    // A job started on b (b's worker) streams to alice's tab on a too.
    let ack = alice_b
        .ack("search:start", json!({ "query": "cluster" }))
        .await;
    let job = ack["jobId"].as_str().unwrap().to_owned();
    let done_a = alice_a.event("search:complete:v1").await;
    assert_eq!(done_a["jobId"], job.as_str());
    let done_b = alice_b.event("search:complete:v1").await;
    // One publish, the same envelope on both nodes.
    assert_eq!(done_a["eventId"], done_b["eventId"]);
    assert_eq!(
        alice_a
            .collect("search:result:v1", Duration::from_millis(10))
            .await
            .len(),
        5
    );
    bob_b
        .no_event("search:result:v1", Duration::from_millis(1))
        .await;

    // A worker in another process publishes through the Redis emitter.
    let publisher = EmitterPublisher::connect(&redis.url(), "sockeye-test")
        .await
        .unwrap();
    let job = Job::new("alice", JobKind::Model { prompt: "p".into() });
    let ctx = JobContext::new(job.clone(), CancelSignal::never(), Arc::new(publisher));
    ctx.model_chunk(0, "hello ").await.unwrap();
    for tab in [&mut alice_a, &mut alice_b] {
        let chunk = tab.event("model:chunk:v1").await;
        assert_eq!(
            (chunk["jobId"].as_str(), chunk["chunk"].as_str()),
            (Some(job.id.as_str()), Some("hello "))
        );
    }
    bob_b
        .no_event("model:chunk:v1", Duration::from_millis(100))
        .await;

    let metrics = get(a.addr, "/metrics").await.body;
    assert!(metrics.contains("\nsockeye_redis_up 1\n"), "{metrics}");
    assert!(
        metrics.contains("sockeye_adapter_messages_total{kind=\"received\"}"),
        "{metrics}"
    );
    a.shutdown().await;
    b.shutdown().await;
}
