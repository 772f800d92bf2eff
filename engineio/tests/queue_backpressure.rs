//! The bounded outbound queue (`Config::max_buffered_bytes`, DESIGN.md rule 2): a client that
//! stops reading is disconnected with a clear reason, never starved in silence; volatile
//! messages go only when the transport can take them.

mod common;

use std::time::Duration;

use common::*;
use engineio::{CloseReason, Config, Error, Frame};
use http::StatusCode;

const BOUND: usize = 1000;

fn config() -> Config {
    let mut config = quiet_config();
    config.max_buffered_bytes = BOUND;
    config
}

#[tokio::test]
async fn a_client_that_never_polls_is_closed_with_transport_error() {
    let server = serve(config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    let socket = server.handler().socket(&polling.sid);

    let chunk = "x".repeat(100);
    let mut accepted = 0;
    let refused = loop {
        match socket.send(Frame::text(&chunk)) {
            Ok(()) => accepted += 1,
            Err(err) => break err,
        }
        assert!(accepted <= 100, "the queue never filled up");
    };
    assert!(
        matches!(refused, Error::QueueFull),
        "expected QueueFull, got {refused:?}"
    );
    assert!(
        accepted * chunk.len() <= BOUND,
        "{accepted} messages of {} bytes went over the bound",
        chunk.len()
    );
    assert!(accepted >= BOUND / (chunk.len() + 1) - 1, "{accepted}");

    assert_eq!(
        server.handler().wait_close(&polling.sid).await,
        CloseReason::TransportError
    );
    assert!(socket.is_closed());
    assert!(matches!(
        socket.send(Frame::text("late")),
        Err(Error::Closed)
    ));
    server.wait_clients(0).await;
    let res = polling.get().await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.text(), r#"{"code":1,"message":"Session ID unknown"}"#);

    // Reported once, whatever else happens to the dead socket.
    let _ = socket.send(Frame::text("later"));
    socket.close();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        server.handler().closes(&polling.sid),
        [CloseReason::TransportError]
    );
}

#[tokio::test]
async fn send_all_over_the_bound_is_refused_whole() {
    let server = serve(config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    let socket = server.handler().socket(&polling.sid);
    socket.send(Frame::text("x".repeat(500))).unwrap();
    let refused = socket.send_all([Frame::text("y".repeat(300)), Frame::binary(vec![0u8; 300])]);
    assert!(matches!(refused, Err(Error::QueueFull)), "{refused:?}");
    assert_eq!(
        server.handler().wait_close(&polling.sid).await,
        CloseReason::TransportError
    );
    server.wait_clients(0).await;
}

#[tokio::test]
async fn a_client_that_keeps_polling_never_hits_the_bound() {
    let server = serve(config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    let socket = server.handler().socket(&polling.sid);
    // Ten times the bound in total, read as it goes.
    for round in 0..20 {
        for i in 0..5 {
            socket
                .send(Frame::text(format!("{round}-{i}-{}", "z".repeat(90))))
                .unwrap();
        }
        let packets = polling.poll().await;
        assert_eq!(packets.len(), 5);
        assert!(packets[0].starts_with(&format!("4{round}-0-")));
    }
    assert!(server.handler().closes(&polling.sid).is_empty());
}

#[tokio::test]
async fn a_message_larger_than_the_bound_goes_through_an_empty_queue() {
    let server = serve(config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    let socket = server.handler().socket(&polling.sid);
    let big = "b".repeat(5 * BOUND);
    socket.send(Frame::text(&big)).unwrap();
    assert_eq!(polling.poll().await, [format!("4{big}")]);
    assert!(!socket.is_closed());
}

#[tokio::test]
async fn volatile_is_dropped_without_a_pending_get_and_delivered_with_one() {
    let server = serve(config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    let socket = server.handler().socket(&polling.sid);

    // No GET pending: dropped.
    assert!(!socket.send_volatile([Frame::text("dropped-1")]));

    // A GET pending: delivered to it.
    let get = polling.spawn_poll();
    within("a volatile message to be taken", async {
        while !socket.send_volatile([Frame::text("volatile")]) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let res = within("the pending GET", get).await.unwrap();
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.packets(), ["4volatile"]);

    // The GET was answered: dropped again, and never delivered later.
    assert!(!socket.send_volatile([Frame::text("dropped-2")]));
    socket.send(Frame::text("regular")).unwrap();
    assert_eq!(polling.poll().await, ["4regular"]);
    assert!(server.handler().closes(&polling.sid).is_empty());
}

#[tokio::test]
async fn volatile_is_dropped_behind_queued_messages() {
    let server = serve(config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    let socket = server.handler().socket(&polling.sid);
    socket.send(Frame::text("queued")).unwrap();
    assert!(!socket.send_volatile([Frame::text("dropped")]));
    assert_eq!(polling.poll().await, ["4queued"]);
}

#[tokio::test]

async fn volatile_goes_out_on_an_idle_websocket() {
    let server = serve(config(), Recorder::new()).await;
    let (mut ws, sid) = ws_open(&server.ws_url("EIO=4&transport=websocket")).await;
    let socket = server.handler().socket(&sid);
    within("a volatile message to be taken", async {
        while !socket.send_volatile([Frame::text("v"), Frame::binary(vec![1u8])]) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(ws_text(&mut ws).await, "4v");
    assert_eq!(
        ws_recv(&mut ws).await,
        tokio_tungstenite::tungstenite::Message::binary(vec![1u8])
    );
}

/// A WebSocket client that stops reading: once the socket buffers are full the queue fills up,
/// the send is refused and the session must end with `transport error`, promptly (not at the
/// next ping timeout) and with the connection dropped.
#[tokio::test]

async fn a_websocket_client_that_stops_reading_is_closed_with_transport_error() {
    let mut config = quiet_config();
    config.max_buffered_bytes = 256 * 1024;
    let server = serve(config, Recorder::new()).await;
    let (ws, sid) = ws_open(&server.ws_url("EIO=4&transport=websocket")).await;
    let socket = server.handler().socket(&sid);

    // Never read `ws` again.
    let chunk = Frame::text("w".repeat(16 * 1024));
    let refused = within("the queue to fill up", async {
        for _ in 0..16 * 1024 {
            match socket.send(chunk.clone()) {
                Ok(()) => tokio::time::sleep(Duration::from_millis(1)).await,
                Err(err) => return err,
            }
        }
        panic!("256 MiB went out to a client that does not read");
    })
    .await;
    assert!(matches!(refused, Error::QueueFull), "{refused:?}");
    assert_eq!(
        server.handler().wait_close(&sid).await,
        CloseReason::TransportError
    );
    server.wait_clients(0).await;
    drop(ws);
}
