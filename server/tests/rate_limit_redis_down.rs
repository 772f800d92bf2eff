//! The cluster-wide rate limit when Redis stops answering: it falls back to this node's bucket
//! (documented in `rate_limit`): starts are neither all refused (an outage of Redis is not an
//! outage of the product) nor unlimited (one user cannot flood the workers meanwhile).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::redis::RedisServer;
use common::{config, get, start};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_the_limit_falls_back_to_this_nodes_bucket() {
    let redis = RedisServer::start();
    let mut config = config();
    config.node_id = "solo".into();
    config.redis_url = Some(redis.url());
    config.redis_key = "rate-down".into();
    config.rate_limit_burst = 3;
    config.rate_limit_per_minute = 1;
    let server = start(config).await;
    let mut dave = server.user("dave").await;

    // Through Redis: two of the three tokens.
    for i in 0..2 {
        let ack = dave
            .ack("search:start", json!({ "query": format!("q{i}") }))
            .await;
        assert_eq!(ack["ok"], true, "{ack}");
    }
    drop(redis);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Redis is gone: this node's bucket (full, it was never used) decides.
    let mut codes = Vec::new();
    for i in 0..4 {
        let ack = dave
            .ack("model:start", json!({ "prompt": format!("p{i}") }))
            .await;
        codes.push(ack["error"]["code"].as_str().unwrap_or("ok").to_owned());
    }
    let limited = codes.iter().filter(|c| *c == "rate_limited").count();
    assert_eq!(
        limited, 1,
        "burst 3 per node while Redis is down: {codes:?}"
    );
    assert_eq!(codes[3], "rate_limited", "{codes:?}");

    // Presence answers with this node's view instead of failing.
    let snapshot = dave
        .ack("presence:subscribe", json!({ "userIds": ["dave", "erin"] }))
        .await;
    assert_eq!(
        snapshot,
        json!({ "ok": true, "users": [
            { "userId": "dave", "online": true },
            { "userId": "erin", "online": false },
        ] })
    );
    // Each local answer is counted, so an operator sees the degraded mode.
    let metrics = get(server.addr, "/metrics").await.body;
    assert!(
        metrics.contains("\nsockeye_redis_fallbacks_total 5\n"),
        "{metrics}"
    );
    server.shutdown().await;
}
