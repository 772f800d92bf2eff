//! `Config::upgrade_timeout`: a WebSocket that joins a polling session but never completes the
//! upgrade is closed, and the session carries on over polling.

mod common;

use std::time::{Duration, Instant};

use common::*;
use engineio::{Config, Frame, TransportKind};
use http::StatusCode;

const UPGRADE_TIMEOUT: Duration = Duration::from_millis(300);

fn config() -> Config {
    let mut config = quiet_config();
    config.upgrade_timeout = UPGRADE_TIMEOUT;
    config
}

/// After an abandoned upgrade the session still works both ways over polling.
async fn assert_polling_still_works(server: &Server<Recorder>, polling: &Polling) {
    let socket = server.handler().socket(&polling.sid);
    assert_eq!(socket.transport(), TransportKind::Polling);
    assert!(!socket.is_closed());
    polling.send("4still here").await;
    server.handler().wait_messages(&polling.sid, 1).await;
    assert_eq!(
        server.handler().messages(&polling.sid),
        [text("still here")]
    );
    socket.send(Frame::text("from server")).expect("queued");
    assert_eq!(polling.poll().await, ["4from server"]);
    assert!(server.handler().closes(&polling.sid).is_empty());
    assert_eq!(server.engine.clients_count(), 1);
}

#[tokio::test]
async fn probed_websocket_without_upgrade_packet_is_closed_and_polling_goes_on() {
    let server = serve(config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    let url = server.ws_url(&format!("EIO=4&transport=websocket&sid={}", polling.sid));
    let started = Instant::now();
    let (mut ws, res) = ws_connect(&url).await.unwrap();
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    // Never send `5`.
    let (data, _) = ws_until_closed(&mut ws).await;
    assert!(data.is_empty(), "nothing but the close: {data:?}");
    let waited = started.elapsed();
    assert!(
        waited >= UPGRADE_TIMEOUT - Duration::from_millis(50),
        "closed before upgrade_timeout: {waited:?}"
    );
    assert_polling_still_works(&server, &polling).await;
}

#[tokio::test]
async fn silent_websocket_is_closed_and_polling_goes_on() {
    let server = serve(config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    let url = server.ws_url(&format!("EIO=4&transport=websocket&sid={}", polling.sid));
    let started = Instant::now();
    let (mut ws, _) = ws_connect(&url).await.unwrap();
    let (data, _) = ws_until_closed(&mut ws).await;
    assert!(data.is_empty(), "nothing but the close: {data:?}");
    assert!(started.elapsed() >= UPGRADE_TIMEOUT - Duration::from_millis(50));
    assert_polling_still_works(&server, &polling).await;
}

/// A GET that was answered with a noop during the probe does not keep the session stuck in the
/// upgrade once the probe is abandoned.
#[tokio::test]
async fn polls_are_answered_normally_after_an_abandoned_probe() {
    let server = serve(config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    let url = server.ws_url(&format!("EIO=4&transport=websocket&sid={}", polling.sid));
    let (mut ws, _) = ws_connect(&url).await.unwrap();
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    // During the upgrade a GET gets a noop.
    assert_eq!(polling.poll().await, ["6"]);
    ws_until_closed(&mut ws).await;
    assert_polling_still_works(&server, &polling).await;
}

#[tokio::test]
async fn a_later_upgrade_succeeds() {
    let server = serve(config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    let url = server.ws_url(&format!("EIO=4&transport=websocket&sid={}", polling.sid));
    let (mut abandoned, _) = ws_connect(&url).await.unwrap();
    ws_send(&mut abandoned, "2probe").await;
    assert_eq!(ws_text(&mut abandoned).await, "3probe");
    ws_until_closed(&mut abandoned).await;

    let mut ws = upgrade(&server, &polling, "").await;
    let socket = server.handler().socket(&polling.sid);
    within("the upgrade to finish", async {
        while socket.transport() != TransportKind::WebSocket {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    socket.send(Frame::text("over ws")).unwrap();
    assert_eq!(ws_text(&mut ws).await, "4over ws");
    // And it is not closed by the (long past) upgrade timer.
    tokio::time::sleep(UPGRADE_TIMEOUT * 2).await;
    ws_send(&mut ws, "4ping me").await;
    server.handler().wait_messages(&polling.sid, 1).await;
    assert!(server.handler().closes(&polling.sid).is_empty());
    let res = polling.get().await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "polling is over");
}
