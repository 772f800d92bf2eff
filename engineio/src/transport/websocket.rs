//! The WebSocket transport: the RFC 6455 handshake on a hyper upgrade, and the writer task that
//! drains a session's queue into the socket (`notes/protocol.md` 1.6).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use http::HeaderMap;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage, Utf8Bytes};

use crate::driver::Cmd;
use crate::error::RequestError;
use crate::packet::{Frame, FrameKind, b64_packet};
use crate::session::CloseReason;
use crate::socket::Shared;

pub(crate) type WsStream = WebSocketStream<TokioIo<Upgraded>>;
pub(crate) type WsStreamRx = SplitStream<WsStream>;
type WsStreamTx = SplitSink<WsStream, WsMessage>;

/// Frames of batch capacity a connection keeps between bursts (the rest is freed, so an idle
/// connection stays small).
const BATCH_KEEP: usize = 64;

/// How long closing a WebSocket may take before the socket is just dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Whether the request asks for a WebSocket upgrade.
pub(crate) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// Checks the handshake headers (RFC 6455 4.2.1) and returns `Sec-WebSocket-Accept`. Missing
/// headers (CVE-2024-37890: requests with more headers than a parser keeps) get a 400.
pub(crate) fn accept_key(headers: &HeaderMap) -> Result<String, RequestError> {
    let version_ok = headers
        .get("sec-websocket-version")
        .is_some_and(|v| v.as_bytes() == b"13");
    let connection_ok = headers.get(http::header::CONNECTION).is_some_and(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        })
    });
    match headers.get("sec-websocket-key") {
        Some(key) if version_ok && connection_ok && valid_key(key.as_bytes()) => {
            Ok(derive_accept_key(key.as_bytes()))
        }
        _ => Err(RequestError::BadRequest),
    }
}

/// A key is base64 of 16 bytes: 22 characters then `==` (as `ws` checks it).
fn valid_key(key: &[u8]) -> bool {
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Socket limits: `maxHttpBufferSize` per message (close 1009 above it, CVE-2016-10542), and a
/// small read buffer so an idle connection costs little.
pub(crate) fn config(max_payload: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(16 * 1024)
        .max_message_size(Some(max_payload))
        .max_frame_size(Some(max_payload))
}

pub(crate) async fn from_upgraded(upgraded: Upgraded, max_payload: usize) -> WsStream {
    WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        Role::Server,
        Some(config(max_payload)),
    )
    .await
}

pub(crate) async fn next(rx: &mut Option<WsStreamRx>) -> Option<Result<WsMessage, WsError>> {
    match rx {
        Some(rx) => rx.next().await,
        None => std::future::pending().await,
    }
}

pub(crate) async fn next_probe(ws: &mut Option<WsStream>) -> Option<Result<WsMessage, WsError>> {
    match ws {
        Some(ws) => ws.next().await,
        None => std::future::pending().await,
    }
}

pub(crate) async fn send_text(ws: &mut WsStream, text: &'static str) -> Result<(), WsError> {
    ws.send(WsMessage::Text(Utf8Bytes::from_static(text))).await
}

/// Closes a WebSocket we do not keep (a refused second upgrade, an abandoned probe) without
/// making the caller wait.
pub(crate) fn close_later(mut ws: WsStream) {
    tokio::spawn(async move {
        let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(None)).await;
    });
}

/// Starts the task that writes the session's queue to the WebSocket.
pub(crate) fn spawn_writer(shared: Arc<Shared>, tx: WsStreamTx, cmds: mpsc::Sender<Cmd>) {
    tokio::spawn(async move {
        let reason = write_loop(&shared, tx).await;
        let _ = cmds.send(Cmd::WriterDone(reason)).await;
    });
}

async fn write_loop(shared: &Shared, mut tx: WsStreamTx) -> CloseReason {
    // The batch being written; swapped with the queue's buffer so neither is regrown for
    // every burst.
    let mut frames = VecDeque::new();
    loop {
        let close = {
            let mut queue = shared.queue();
            queue.swap_out(&mut frames);
            queue.close
        };
        let flush = close.is_none_or(|c| c.flush);
        if flush && !frames.is_empty() {
            shared.writable.store(false, Ordering::Release);
            let write = async {
                for frame in &frames {
                    tx.feed(to_ws(frame, shared.b64)).await?;
                }
                tx.flush().await
            };
            // A client that stops reading blocks the write: the session's end (or a full
            // queue) kills it, so the socket is dropped instead of held forever.
            tokio::select! {
                written = write => {
                    if written.is_err() {
                        return CloseReason::TransportClose;
                    }
                    // Written: a volatile message may go again (Node: the write callback).
                    shared.writable.store(true, Ordering::Release);
                }
                () = shared.kill.notified() => {
                    return shared.queue().close.map_or(CloseReason::TransportError, |c| c.reason);
                }
            }
        }
        if let Some(close) = close {
            shared.writable.store(false, Ordering::Release);
            // Node closes with no status code (the client sees 1005), unless a limit was hit.
            let frame = match shared.ws_close_code.load(Ordering::Acquire) {
                0 => None,
                code => Some(CloseFrame {
                    code: CloseCode::from(code),
                    reason: Utf8Bytes::default(),
                }),
            };
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                let _ = tx.send(WsMessage::Close(frame)).await;
                let _ = tx.close().await;
            })
            .await;
            return close.reason;
        }
        let wrote = !frames.is_empty();
        frames.clear();
        if frames.capacity() > BATCH_KEEP {
            frames.shrink_to(BATCH_KEEP);
        }
        if !wrote {
            // Idle: a volatile message may go now.
            shared.writable.store(true, Ordering::Release);
            shared.notify.notified().await;
        }
    }
}

fn to_ws(frame: &Frame, b64: bool) -> WsMessage {
    match &frame.kind {
        FrameKind::Text(text) => WsMessage::Text(text.clone()),
        FrameKind::Binary(data) if b64 => WsMessage::Text(Utf8Bytes::from(b64_packet(data))),
        FrameKind::Binary(data) => WsMessage::Binary(data.clone()),
    }
}
