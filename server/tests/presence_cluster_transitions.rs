//! Cluster presence under concurrency: sockets of one user arriving and leaving on two nodes at
//! the same time still give exactly one `online` and one `offline` (the Lua script decides
//! atomically which node announces), and the status the nodes report agrees.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::redis::RedisServer;
use common::{config, start};
use futures_util::future::join_all;
use serde_json::json;

async fn node(redis: &RedisServer, id: &str) -> common::Server {
    let mut config = config();
    config.node_id = id.into();
    config.redis_url = Some(redis.url());
    config.redis_key = "presence-transitions".into();
    start(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sockets_on_two_nodes_give_one_online_and_one_offline() {
    let redis = RedisServer::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let mut watcher = a.user("watcher").await;
    let ack = watcher
        .ack("presence:subscribe", json!({ "userIds": ["zed"] }))
        .await;
    assert_eq!(ack["users"][0]["online"], false);

    for round in 0..3 {
        let sockets = join_all((0..8).map(|i| {
            if i % 2 == 0 {
                a.user("zed")
            } else {
                b.user("zed")
            }
        }))
        .await;
        let events = watcher
            .collect("user:presence:v1", Duration::from_millis(400))
            .await;
        let flags: Vec<_> = events.iter().map(|e| e["online"].clone()).collect();
        assert_eq!(flags, vec![json!(true)], "round {round}: {events:?}");
        for server in [&a, &b] {
            let mut asker = server.user("asker").await;
            let ack = asker
                .ack("presence:subscribe", json!({ "userIds": ["zed"] }))
                .await;
            assert_eq!(ack["users"][0]["online"], true, "round {round}");
            asker.close().await;
        }

        join_all(sockets.into_iter().map(common::Client::close)).await;
        let events = watcher
            .collect("user:presence:v1", Duration::from_millis(400))
            .await;
        let flags: Vec<_> = events.iter().map(|e| e["online"].clone()).collect();
        assert_eq!(flags, vec![json!(false)], "round {round}: {events:?}");
    }
    a.shutdown().await;
    b.shutdown().await;
}
