//! `b64` in the query: a client that cannot take binary frames gets binary messages as
//! `b<base64>` text frames over WebSocket.

mod common;

use std::time::Duration;

use common::*;
use engineio::{Frame, TransportKind};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[tokio::test]
async fn binary_goes_as_base64_text_with_b64() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let (mut ws, sid) = ws_open(&server.ws_url("EIO=4&transport=websocket&b64=1")).await;
    let socket = server.handler().socket(&sid);
    socket.send(Frame::binary(vec![1u8, 2, 3, 4])).unwrap();
    socket.send(Frame::text("plain")).unwrap();
    socket.send(Frame::binary(Vec::<u8>::new())).unwrap();
    assert_eq!(ws_recv(&mut ws).await, WsMessage::text("bAQIDBA=="));
    assert_eq!(ws_recv(&mut ws).await, WsMessage::text("4plain"));
    assert_eq!(ws_recv(&mut ws).await, WsMessage::text("b"));
}

#[tokio::test]
async fn binary_goes_as_binary_frames_without_b64() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let (mut ws, sid) = ws_open(&server.ws_url("EIO=4&transport=websocket")).await;
    let socket = server.handler().socket(&sid);
    socket.send(Frame::binary(vec![1u8, 2, 3, 4])).unwrap();
    assert_eq!(
        ws_recv(&mut ws).await,
        WsMessage::binary(vec![1u8, 2, 3, 4])
    );
}

#[tokio::test]
async fn base64_text_from_the_client_arrives_as_binary() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let (mut ws, sid) = ws_open(&server.ws_url("EIO=4&transport=websocket&b64=1")).await;
    ws_send(&mut ws, "bAQIDBA==").await;
    ws.send(WsMessage::binary(vec![5u8])).await.unwrap();
    assert_eq!(
        server.handler().wait_messages(&sid, 2).await,
        [binary(&[1, 2, 3, 4]), binary(&[5])]
    );
}

#[tokio::test]
async fn b64_after_an_upgrade_from_polling() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "&b64=1").await;
    let mut ws = upgrade(&server, &polling, "&b64=1").await;
    let socket = server.handler().socket(&polling.sid);
    within("the upgrade", async {
        while socket.transport() != TransportKind::WebSocket {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    socket.send(Frame::binary(vec![0xffu8, 0x00])).unwrap();
    assert_eq!(ws_recv(&mut ws).await, WsMessage::text("b/wA="));
}
