//! The `Handler` contract: `on_open` once, `on_message` in arrival order, `on_close` exactly
//! once with the right `CloseReason`, and the session freed afterwards.

mod common;

use std::time::Duration;

use common::*;
use engineio::{CloseReason, Config, Frame, Message, TransportKind};
use futures_util::SinkExt;
use http::StatusCode;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Heartbeat short enough to watch it work and fail within a test.
fn fast_heartbeat() -> Config {
    let mut config = quiet_config();
    config.ping_interval = Duration::from_millis(200);
    config.ping_timeout = Duration::from_millis(200);
    config
}

/// `on_close` came with `reason`, the session left the table, and nothing else is reported
/// for it afterwards.
async fn assert_closed_once(server: &Server<Recorder>, sid: &str, reason: CloseReason) {
    assert_eq!(server.handler().wait_close(sid).await, reason);
    server.wait_clients(0).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rec = server.handler();
    assert_eq!(rec.closes(sid), [reason], "on_close exactly once");
    assert_eq!(rec.opens(sid), 1, "on_open exactly once");
    let last = rec
        .events()
        .into_iter()
        .rfind(|e| match e {
            Event::Open(s) | Event::Message(s, _) | Event::Close(s, _) => s == sid,
        })
        .expect("events of the session");
    assert!(
        matches!(last, Event::Close(..)),
        "on_close is the last call"
    );
    assert_eq!(server.engine.clients_count(), 0);
    assert!(server.engine.sockets().is_empty());
}

/// Message `i` of a numbered sequence: mostly text, every seventh binary.
fn numbered(i: usize) -> Message {
    if i % 7 == 3 {
        binary(&(i as u32).to_be_bytes())
    } else {
        text(&format!("msg-{i}"))
    }
}

fn expected(range: std::ops::Range<usize>) -> Vec<Message> {
    range.map(numbered).collect()
}

fn ws_frame(i: usize) -> WsMessage {
    match numbered(i) {
        Message::Text(t) => WsMessage::text(format!("4{}", &*t)),
        Message::Binary(b) => WsMessage::binary(b),
    }
}

fn polling_packet(i: usize) -> String {
    match numbered(i) {
        Message::Text(t) => format!("4{}", &*t),
        Message::Binary(b) => {
            use base64::Engine as _;
            format!("b{}", base64::engine::general_purpose::STANDARD.encode(b))
        }
    }
}

#[tokio::test]
async fn on_open_sees_the_opening_request() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "&user=ann").await;
    let socket = server.handler().socket(&polling.sid);
    assert_eq!(server.handler().opens(&polling.sid), 1);
    assert_eq!(socket.id(), polling.sid);
    assert_eq!(socket.transport(), TransportKind::Polling);
    assert_eq!(socket.request().query_param("user"), Some("ann"));
    assert_eq!(socket.request().method, http::Method::GET);
    let remote = socket
        .request()
        .remote_addr
        .expect("serve passes the peer address");
    assert!(remote.ip().is_loopback());

    let (_ws, sid) = ws_open(&server.ws_url("EIO=4&transport=websocket&user=bob")).await;
    let socket = server.handler().socket(&sid);
    assert_eq!(socket.transport(), TransportKind::WebSocket);
    assert_eq!(socket.request().query_param("user"), Some("bob"));
    assert_eq!(server.engine.clients_count(), 2);
}

#[tokio::test]
async fn messages_arrive_in_order_over_websocket() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let (mut ws, sid) = ws_open(&server.ws_url("EIO=4&transport=websocket")).await;
    for i in 0..100 {
        ws.feed(ws_frame(i)).await.unwrap();
    }
    ws.flush().await.unwrap();
    assert_eq!(
        server.handler().wait_messages(&sid, 100).await,
        expected(0..100)
    );
    assert_eq!(server.handler().opens(&sid), 1);
}

#[tokio::test]
async fn messages_arrive_in_order_over_polling() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    for batch in 0..10 {
        let payload: Vec<String> = (batch * 10..batch * 10 + 10).map(polling_packet).collect();
        polling.send(&payload.join("\x1e")).await;
    }
    assert_eq!(
        server.handler().wait_messages(&polling.sid, 100).await,
        expected(0..100)
    );
    assert_eq!(server.handler().opens(&polling.sid), 1);
}

#[tokio::test]
async fn messages_arrive_in_order_across_an_upgrade() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    for i in 0..50 {
        polling.send(&polling_packet(i)).await;
    }
    let mut ws = upgrade(&server, &polling, "").await;
    for i in 50..100 {
        ws.feed(ws_frame(i)).await.unwrap();
    }
    ws.flush().await.unwrap();
    assert_eq!(
        server.handler().wait_messages(&polling.sid, 100).await,
        expected(0..100)
    );
    assert_eq!(
        server.handler().opens(&polling.sid),
        1,
        "one session throughout"
    );
}

// --- close reasons ---------------------------------------------------------------------------

#[tokio::test]
async fn client_close_packet_over_polling() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    polling.send("4last\x1e1").await;
    assert_closed_once(&server, &polling.sid, CloseReason::TransportClose).await;
    assert_eq!(server.handler().messages(&polling.sid), [text("last")]);
    assert_eq!(polling.get().await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn client_close_packet_over_websocket() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let (mut ws, sid) = ws_open(&server.ws_url("EIO=4&transport=websocket")).await;
    ws_send(&mut ws, "4last").await;
    ws_send(&mut ws, "1").await;
    assert_closed_once(&server, &sid, CloseReason::TransportClose).await;
    assert_eq!(server.handler().messages(&sid), [text("last")]);
    ws_until_closed(&mut ws).await;
}

#[tokio::test]
async fn websocket_close_frame() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let (mut ws, sid) = ws_open(&server.ws_url("EIO=4&transport=websocket")).await;
    within("client close", ws.close(None)).await.unwrap();
    assert_closed_once(&server, &sid, CloseReason::TransportClose).await;
}

#[tokio::test]

async fn websocket_tcp_drop() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let (ws, sid) = ws_open(&server.ws_url("EIO=4&transport=websocket")).await;
    drop(ws);
    assert_closed_once(&server, &sid, CloseReason::TransportClose).await;
}

#[tokio::test]
async fn ping_timeout_over_polling() {
    let server = serve(fast_heartbeat(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    // Never poll, so the ping is never answered.
    assert_closed_once(&server, &polling.sid, CloseReason::PingTimeout).await;
    assert_eq!(polling.get().await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn ping_timeout_over_websocket() {
    let server = serve(fast_heartbeat(), Recorder::new()).await;
    let (mut ws, sid) = ws_open(&server.ws_url("EIO=4&transport=websocket")).await;
    assert_closed_once(&server, &sid, CloseReason::PingTimeout).await;
    let (data, _) = ws_until_closed(&mut ws).await;
    assert_eq!(
        data,
        [WsMessage::text("2")],
        "the unanswered ping, then the close"
    );
}

#[tokio::test]
async fn answered_pings_keep_the_session_open() {
    let server = serve(fast_heartbeat(), Recorder::new()).await;
    let (mut ws, ws_sid) = ws_open(&server.ws_url("EIO=4&transport=websocket")).await;
    let polling = Polling::open(&server.http(), "").await;
    let ws_client = async {
        let mut pings = 0;
        while pings < 4 {
            assert_eq!(ws_text(&mut ws).await, "2");
            pings += 1;
            ws_send(&mut ws, "3").await;
        }
    };
    let polling_client = async {
        let mut pings = 0;
        while pings < 4 {
            assert_eq!(polling.poll().await, ["2"]);
            pings += 1;
            polling.send("3").await;
        }
    };
    // Four rounds take about four ping intervals: well past interval + timeout.
    within("four heartbeats", async {
        tokio::join!(ws_client, polling_client)
    })
    .await;
    assert!(server.handler().closes(&ws_sid).is_empty());
    assert!(server.handler().closes(&polling.sid).is_empty());
    assert_eq!(server.engine.clients_count(), 2);
}

#[tokio::test]
async fn parse_error_over_polling() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    // The packets before the bad one are delivered.
    let _ = polling.post("4ok\x1eabc\x1e4never").await;
    assert_closed_once(&server, &polling.sid, CloseReason::ParseError).await;
    assert_eq!(server.handler().messages(&polling.sid), [text("ok")]);
    assert_eq!(polling.get().await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn parse_error_over_websocket() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let (mut ws, sid) = ws_open(&server.ws_url("EIO=4&transport=websocket")).await;
    ws_send(&mut ws, "4ok").await;
    ws_send(&mut ws, "abc").await;
    assert_closed_once(&server, &sid, CloseReason::ParseError).await;
    assert_eq!(server.handler().messages(&sid), [text("ok")]);
    ws_until_closed(&mut ws).await;
}

#[tokio::test]
async fn client_ping_over_polling_is_a_transport_error() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    let _ = polling.post("2").await;
    assert_closed_once(&server, &polling.sid, CloseReason::TransportError).await;
}

#[tokio::test]
async fn server_close_over_polling_hands_the_next_get_the_queue_then_close() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    let socket = server.handler().socket(&polling.sid);
    socket.send(Frame::text("bye")).unwrap();
    socket.send(Frame::binary(vec![1u8, 2])).unwrap();
    socket.close();
    assert!(socket.is_closed());
    assert!(matches!(
        socket.send(Frame::text("too late")),
        Err(engineio::Error::Closed)
    ));
    assert_eq!(
        server.handler().wait_close(&polling.sid).await,
        CloseReason::ForcedClose
    );
    assert_eq!(polling.poll().await, ["4bye", "bAQI=", "1"]);
    assert_closed_once(&server, &polling.sid, CloseReason::ForcedClose).await;
    assert_eq!(polling.get().await.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn server_close_over_polling_answers_a_pending_get() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    let socket = server.handler().socket(&polling.sid);
    let get = polling.spawn_poll();
    // Give the GET time to be pending (if it is not yet, it gets the same answer when it
    // arrives).
    tokio::time::sleep(Duration::from_millis(50)).await;
    socket.close();
    assert_eq!(within("GET", get).await.unwrap().packets(), ["1"]);
    assert_closed_once(&server, &polling.sid, CloseReason::ForcedClose).await;
}

#[tokio::test]
async fn server_close_over_websocket_sends_the_queue_then_closes() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let (mut ws, sid) = ws_open(&server.ws_url("EIO=4&transport=websocket")).await;
    let socket = server.handler().socket(&sid);
    socket.send(Frame::text("bye")).unwrap();
    socket.close();
    let (data, _) = ws_until_closed(&mut ws).await;
    assert_eq!(data, [WsMessage::text("4bye")]);
    assert_closed_once(&server, &sid, CloseReason::ForcedClose).await;
}

#[tokio::test]
async fn server_close_after_an_upgrade() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    let mut ws = upgrade(&server, &polling, "").await;
    let socket = server.handler().socket(&polling.sid);
    within("the upgrade", async {
        while socket.transport() != TransportKind::WebSocket {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    socket.send(Frame::text("bye")).unwrap();
    socket.close();
    let (data, _) = ws_until_closed(&mut ws).await;
    assert_eq!(data, [WsMessage::text("4bye")]);
    assert_closed_once(&server, &polling.sid, CloseReason::ForcedClose).await;
}
