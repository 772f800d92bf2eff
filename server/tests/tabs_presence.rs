//! Tab sync (a user's other sockets only) and presence (online on the first socket, offline on
//! the last, to subscribers).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{config, start};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tab_update_reaches_the_same_users_other_tabs_only() {
    let server = start(config()).await;
    let mut tab1 = server.user("alice").await;
    let mut tab2 = server.user("alice").await;
    let mut tab3 = server.user("alice").await;
    let mut bob = server.user("bob").await;

    tab1.emit(
        "tab:update",
        json!({ "tabId": "t1", "state": { "note": "hello", "n": [1, 2] } }),
    )
    .await;
    for tab in [&mut tab2, &mut tab3] {
        let relayed = tab.event("tab:update:v1").await;
        assert_eq!(relayed["tabId"], "t1");
        assert_eq!(relayed["state"], json!({ "note": "hello", "n": [1, 2] }));
        assert!(
            relayed["eventId"].is_string() && relayed["ts"].is_u64(),
            "{relayed}"
        );
    }
    tab1.no_event("tab:update:v1", Duration::from_millis(100))
        .await;
    bob.no_event("tab:update:v1", Duration::from_millis(1))
        .await;
    // With an ack, the sender hears ok.
    let ack = tab2
        .ack("tab:update", json!({ "tabId": "t2", "state": null }))
        .await;
    assert_eq!(ack, json!({ "ok": true }));
    assert_eq!(tab1.event("tab:update:v1").await["tabId"], "t2");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_online_on_first_socket_offline_on_last() {
    let server = start(config()).await;
    let mut watcher = server.user("watcher").await;
    let snapshot = watcher
        .ack(
            "presence:subscribe",
            json!({ "userIds": ["bob", "watcher"] }),
        )
        .await;
    assert_eq!(
        snapshot,
        json!({ "ok": true, "users": [
            { "userId": "bob", "online": false },
            { "userId": "watcher", "online": true },
        ] })
    );

    let bob1 = server.user("bob").await;
    let online = watcher.event("user:presence:v1").await;
    assert_eq!(
        (online["userId"].as_str(), online["online"].as_bool()),
        (Some("bob"), Some(true))
    );
    assert!(online["eventId"].is_string());
    let bob2 = server.user("bob").await;
    watcher
        .no_event("user:presence:v1", Duration::from_millis(100))
        .await;
    // Someone nobody follows.
    let carol = server.user("carol").await;
    watcher
        .no_event("user:presence:v1", Duration::from_millis(100))
        .await;

    bob1.close().await;
    watcher
        .no_event("user:presence:v1", Duration::from_millis(200))
        .await;
    bob2.close().await;
    let offline = watcher.event("user:presence:v1").await;
    assert_eq!(
        (offline["userId"].as_str(), offline["online"].as_bool()),
        (Some("bob"), Some(false))
    );

    let snapshot = watcher
        .ack("presence:subscribe", json!({ "userIds": ["bob", "carol"] }))
        .await;
    assert_eq!(snapshot["users"][0]["online"], false);
    assert_eq!(snapshot["users"][1]["online"], true);
    carol.close().await;
    assert_eq!(watcher.event("user:presence:v1").await["userId"], "carol");
    server.shutdown().await;
}
