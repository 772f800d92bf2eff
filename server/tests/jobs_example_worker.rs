//! Jobs through the in-process queue and the example worker: a search and a model answer
//! stream to every tab of the user who asked (and no one else), with envelopes; cancel by the
//! owner only; rate limit; no worker → `unavailable`.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{config, start};
use serde_json::{Value as Json, json};

fn assert_envelope(payload: &Json, seen: &mut HashSet<String>) {
    let id = payload["eventId"]
        .as_str()
        .unwrap_or_else(|| panic!("no eventId: {payload}"));
    assert!(seen.insert(id.to_owned()), "duplicate eventId {id}");
    assert!(
        payload["ts"]
            .as_u64()
            .is_some_and(|ts| ts > 1_600_000_000_000),
        "{payload}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_and_model_stream_to_the_users_tabs_only() {
    let server = start(config()).await;
    let mut alice = server.user("alice").await;
    let mut alice_tab2 = server.user("alice").await;
    let mut bob = server.user("bob").await;
    let mut seen = HashSet::new();

    let ack = alice
        .ack("search:start", json!({ "query": "rust sockets" }))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let job = ack["jobId"].as_str().unwrap().to_owned();
    let started = alice.event("search:started").await;
    assert_envelope(&started, &mut seen);
    assert_eq!(started["jobId"], job.as_str());
    assert_eq!(started["query"], "rust sockets");
    for i in 0..5 {
        let result = alice.event("search:result:v1").await;
        assert_envelope(&result, &mut seen);
        assert_eq!(result["jobId"], job.as_str());
        assert_eq!(result["index"], i);
        assert!(
            result["result"]["url"]
                .as_str()
                .unwrap()
                .starts_with("https://")
        );
    }
    let complete = alice.event("search:complete:v1").await;
    assert_eq!(complete["total"], 5);
    assert!(complete["durationMs"].is_u64());
    // The other tab got the same events; bob nothing.
    assert_eq!(
        alice_tab2.event("search:complete:v1").await["jobId"],
        job.as_str()
    );
    let progress = alice
        .collect("task:progress:v1", Duration::from_millis(10))
        .await;
    assert_eq!(progress.len(), 5);
    assert_eq!(progress[4]["progress"], 1.0);

    let ack = alice.ack("model:start", json!({ "prompt": "why?" })).await;
    let job = ack["jobId"].as_str().unwrap().to_owned();
    let complete = alice.event("model:complete:v1").await;
    assert_eq!(complete["jobId"], job.as_str());
    let chunks = alice
        .collect("model:chunk:v1", Duration::from_millis(10))
        .await;
    assert_eq!(chunks.len() as u64, complete["tokens"].as_u64().unwrap());
    let text: String = chunks
        .iter()
        .map(|c| c["chunk"].as_str().unwrap())
        .collect();
    assert_eq!(text, complete["text"].as_str().unwrap());
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk["index"], i);
        assert_envelope(chunk, &mut seen);
    }
    bob.no_event("search:started", Duration::from_millis(50))
        .await;
    bob.no_event("model:chunk:v1", Duration::from_millis(1))
        .await;

    let app = server.app();
    assert_eq!(app.metrics.jobs_completed.get(), 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_reaches_the_worker_and_only_the_owner_may() {
    let mut config = config();
    config.example_worker_delay = Duration::from_millis(60);
    let server = start(config).await;
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;

    let ack = alice
        .ack("model:start", json!({ "prompt": "a long answer" }))
        .await;
    let job = ack["jobId"].as_str().unwrap().to_owned();
    alice.event("model:chunk:v1").await;

    let refused = bob.ack("task:cancel", json!({ "jobId": job })).await;
    assert_eq!(refused["ok"], false);
    assert_eq!(refused["error"]["code"], "forbidden", "{refused}");
    let unknown = bob
        .ack("task:cancel", json!({ "jobId": "no-such-job" }))
        .await;
    assert_eq!(unknown["error"]["code"], "not_found", "{unknown}");

    let ok = alice.ack("task:cancel", json!({ "jobId": job })).await;
    assert_eq!(ok, json!({ "ok": true }));
    let cancelled = alice.event("task:cancelled:v1").await;
    assert_eq!(cancelled["jobId"], job.as_str());
    // Nothing more for that job: no complete, chunks stop.
    let _ = alice
        .collect("model:chunk:v1", Duration::from_millis(10))
        .await;
    alice
        .no_event("model:chunk:v1", Duration::from_millis(250))
        .await;
    alice
        .no_event("model:complete:v1", Duration::from_millis(1))
        .await;
    // Over: cancelling again finds nothing.
    let again = alice.ack("task:cancel", json!({ "jobId": job })).await;
    assert_eq!(again["error"]["code"], "not_found", "{again}");
    let app = server.app();
    assert_eq!(app.metrics.jobs_cancelled.get(), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_are_rate_limited_per_user() {
    let mut config = config();
    config.rate_limit_burst = 3;
    config.rate_limit_per_minute = 1;
    let server = start(config).await;
    let mut alice = server.user("alice").await;
    let mut alice2 = server.user("alice").await;
    let mut bob = server.user("bob").await;
    for i in 0..3 {
        let event = if i % 2 == 0 {
            "search:start"
        } else {
            "model:start"
        };
        let field = if i % 2 == 0 { "query" } else { "prompt" };
        let ack = alice.ack(event, json!({ field: "x" })).await;
        assert_eq!(ack["ok"], true, "{ack}");
    }
    // The bucket is the user's, whichever socket asks.
    let limited = alice2.ack("model:start", json!({ "prompt": "x" })).await;
    assert_eq!(limited["ok"], false);
    assert_eq!(limited["error"]["code"], "rate_limited", "{limited}");
    let ack = bob.ack("search:start", json!({ "query": "x" })).await;
    assert_eq!(ack["ok"], true, "{ack}");
    // Cancels are not limited.
    let cancel = alice.ack("task:cancel", json!({ "jobId": "x" })).await;
    assert_eq!(cancel["error"]["code"], "not_found");
    assert_eq!(server.app().metrics.rate_limited.get(), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_worker_starts_are_unavailable() {
    let mut config = config();
    config.example_worker = false;
    let server = start(config).await;
    let mut alice = server.user("alice").await;
    let ack = alice.ack("search:start", json!({ "query": "x" })).await;
    assert_eq!(ack["ok"], false);
    assert_eq!(ack["error"]["code"], "unavailable", "{ack}");
    server.shutdown().await;
}
