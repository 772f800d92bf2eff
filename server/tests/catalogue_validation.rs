//! The event catalogue: the committed `events.ts` matches the Rust module, and every client
//! payload that is not exactly right gets an `invalid_payload` ack and nothing else.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{config, start};
use serde_json::{Value as Json, json};

#[test]
fn events_ts_matches_the_rust_catalogue() {
    let committed = include_str!("../events.ts");
    let generated = sockeye::events::typescript();
    assert!(
        committed == generated,
        "server/events.ts is stale: run `cargo run -p sockeye -- events-ts > server/events.ts`"
    );
    for spec in sockeye::events::CATALOGUE {
        assert!(
            committed.contains(&format!("\"{}\"", spec.name)),
            "{}",
            spec.name
        );
    }
}

fn assert_invalid(ack: &Json, what: &str) {
    assert_eq!(ack["ok"], false, "{what}: {ack}");
    assert_eq!(ack["error"]["code"], "invalid_payload", "{what}: {ack}");
    assert!(
        ack["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {ack}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_payloads_get_invalid_payload_and_nothing_happens() {
    let mut config = config();
    config.rate_limit_burst = 1000;
    let server = start(config).await;
    let mut alice = server.user("alice").await;
    let mut alice2 = server.user("alice").await;

    let long = "x".repeat(513);
    let cases: Vec<(&str, Vec<Json>)> = vec![
        ("search:start", vec![]),
        ("search:start", vec![json!("rust")]),
        ("search:start", vec![json!({})]),
        ("search:start", vec![json!({ "query": 1 })]),
        ("search:start", vec![json!({ "query": null })]),
        ("search:start", vec![json!({ "query": "  " })]),
        ("search:start", vec![json!({ "query": long })]),
        ("search:start", vec![json!({ "query": "a", "limit": 3 })]),
        (
            "search:start",
            vec![json!({ "query": "a" }), json!({ "query": "b" })],
        ),
        ("model:start", vec![json!({ "prompt": ["a"] })]),
        ("model:start", vec![json!({ "prompt": "x".repeat(8001) })]),
        ("model:start", vec![json!({ "query": "a" })]),
        ("task:cancel", vec![json!({ "jobId": 5 })]),
        ("task:cancel", vec![json!({ "jobId": "" })]),
        ("task:cancel", vec![json!({ "jobId": "a", "force": true })]),
        ("tab:update", vec![json!({ "tabId": "t" })]),
        (
            "tab:update",
            vec![json!({ "tabId": "t", "state": "x".repeat(17 * 1024) })],
        ),
        ("tab:update", vec![json!({ "tabId": "", "state": {} })]),
        (
            "tab:update",
            vec![json!({ "tabId": "t", "state": {}, "user": "bob" })],
        ),
        ("presence:subscribe", vec![json!({ "userIds": [] })]),
        ("presence:subscribe", vec![json!({ "userIds": "bob" })]),
        ("presence:subscribe", vec![json!({ "userIds": [1, 2] })]),
        (
            "presence:subscribe",
            vec![json!({ "userIds": (0..101).map(|i| i.to_string()).collect::<Vec<_>>() })],
        ),
    ];
    for (event, args) in &cases {
        let ack = alice.ack_args(event, args).await;
        assert_invalid(&ack, &format!("{event} {args:?}"));
    }
    // Nothing happened: no job, no relay, no room joined.
    alice
        .no_event("search:started", Duration::from_millis(150))
        .await;
    alice2
        .no_event("tab:update:v1", Duration::from_millis(10))
        .await;
    let app = server.app();
    assert_eq!(app.metrics.jobs_enqueued.get(), 0);
    assert_eq!(app.metrics.invalid_payloads.get(), cases.len() as u64);
    let socket = app.io.of("/").socket(&alice.sid).unwrap();
    assert!(
        !socket.rooms().iter().any(|r| r.starts_with("presence:")),
        "{:?}",
        socket.rooms()
    );
    server.shutdown().await;
}
