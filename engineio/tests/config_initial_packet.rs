//! `Config::initial_packet`: a message delivered right after the open packet.

mod common;

use common::*;
use engineio::{Config, Frame};
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn with_initial(frame: Frame) -> Config {
    let mut config = quiet_config();
    config.initial_packet = Some(frame);
    config
}

#[tokio::test]
async fn polling_handshake_carries_the_initial_packet_after_the_open_packet() {
    let server = serve(with_initial(Frame::text("welcome")), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    let packets = polling.handshake.packets();
    assert_eq!(packets.len(), 2, "{packets:?}");
    assert!(packets[0].starts_with("0{\"sid\":"));
    assert_eq!(packets[1], "4welcome");

    // It is not repeated: the next GET carries what the server sends next.
    server
        .handler()
        .socket(&polling.sid)
        .send(Frame::text("next"))
        .unwrap();
    assert_eq!(polling.poll().await, ["4next"]);
}

#[tokio::test]
async fn websocket_handshake_sends_the_initial_packet_as_the_second_frame() {
    let server = serve(with_initial(Frame::text("welcome")), Recorder::new()).await;
    let (mut ws, sid) = ws_open(&server.ws_url("EIO=4&transport=websocket")).await;
    assert_eq!(ws_text(&mut ws).await, "4welcome");
    server
        .handler()
        .socket(&sid)
        .send(Frame::text("next"))
        .unwrap();
    assert_eq!(ws_text(&mut ws).await, "4next");
}

#[tokio::test]
async fn binary_initial_packet() {
    let server = serve(
        with_initial(Frame::binary(vec![1u8, 2, 3, 4])),
        Recorder::new(),
    )
    .await;
    let polling = Polling::open(&server.http(), "").await;
    assert_eq!(polling.handshake.packets()[1], "bAQIDBA==");
    let (mut ws, _) = ws_open(&server.ws_url("EIO=4&transport=websocket")).await;
    assert_eq!(
        ws_recv(&mut ws).await,
        WsMessage::binary(vec![1u8, 2, 3, 4])
    );
}

#[tokio::test]
async fn no_initial_packet_by_default() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    assert_eq!(polling.handshake.packets().len(), 1);
    let (mut ws, sid) = ws_open(&server.ws_url("EIO=4&transport=websocket")).await;
    server
        .handler()
        .socket(&sid)
        .send(Frame::text("first"))
        .unwrap();
    assert_eq!(ws_text(&mut ws).await, "4first");
}
