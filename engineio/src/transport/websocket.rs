//! The WebSocket transport: the RFC 6455 handshake on a hyper upgrade, and the connection its
//! session's task reads and writes (`notes/protocol.md` 1.6).

use std::cell::RefCell;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use http::HeaderMap;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::error::RequestError;
use crate::packet::{Frame, FrameKind, b64_packet};
use crate::socket::Shared;
use crate::transport::frame::{
    FrameError, FrameReader, Incoming, OP_BINARY, OP_PONG, OP_TEXT, put_close, put_frame,
};

/// How long closing a WebSocket may take before the socket is just dropped.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    /// Reads land here, then only the bytes of unfinished frames are kept by the connection:
    /// an idle connection owns no read buffer.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

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

/// One WebSocket connection, driven by its session's task: it reads and writes on the same
/// task, so there is no writer task, no lock around the socket, and a queue's frames go out in
/// one write.
pub(crate) struct WsConn {
    io: TokioIo<Upgraded>,
    reader: FrameReader,
    /// Framed bytes; those before `written` are on the wire.
    out: Vec<u8>,
    written: usize,
}

/// What a connection has for its session.
pub(crate) enum WsEvent {
    Message(Incoming),
    /// Bytes the protocol refuses: close with this error's code.
    Refused(FrameError),
    /// The peer closed the TCP connection, or it failed.
    Gone(Option<std::io::Error>),
}

impl WsConn {
    pub(crate) fn new(upgraded: Upgraded, max_payload: usize) -> Self {
        Self {
            io: TokioIo::new(upgraded),
            reader: FrameReader::new(max_payload),
            out: Vec::new(),
            written: 0,
        }
    }

    /// Frames one message for the wire; `b64` sends binary as `b`+base64 text.
    pub(crate) fn push(&mut self, frame: &Frame, b64: bool) {
        match &frame.kind {
            FrameKind::Text(text) => put_frame(&mut self.out, OP_TEXT, text.as_bytes()),
            FrameKind::Binary(data) if b64 => {
                put_frame(&mut self.out, OP_TEXT, b64_packet(data).as_bytes());
            }
            FrameKind::Binary(data) => put_frame(&mut self.out, OP_BINARY, data),
        }
    }

    pub(crate) fn push_text(&mut self, text: &str) {
        put_frame(&mut self.out, OP_TEXT, text.as_bytes());
    }

    pub(crate) fn push_pong(&mut self, payload: &[u8]) {
        put_frame(&mut self.out, OP_PONG, payload);
    }

    pub(crate) fn push_close(&mut self, code: Option<u16>) {
        put_close(&mut self.out, code);
    }

    /// Frames what the session queued, unless it is closing (its end decides what goes);
    /// whether there was anything.
    fn take_queue(&mut self, shared: &Shared) -> bool {
        let frames = {
            let mut queue = shared.queue();
            if queue.close.is_some() || queue.frames.is_empty() {
                return false;
            }
            queue.take()
        };
        for frame in &frames {
            self.push(frame, shared.b64);
        }
        true
    }

    /// Writes the queue and what is framed, then reads: ready with the next message or the
    /// end of the connection. `shared` is the session whose queue this connection carries
    /// (none for an upgrade probe).
    pub(crate) fn poll_io(
        &mut self,
        cx: &mut Context<'_>,
        shared: Option<&Shared>,
    ) -> Poll<WsEvent> {
        loop {
            match self.poll_write_out(cx) {
                Poll::Ready(Err(err)) => return Poll::Ready(WsEvent::Gone(Some(err))),
                // The queue is taken only once the last batch is written: what a slow client
                // has not taken stays in the session's bounded queue.
                Poll::Ready(Ok(())) => match shared {
                    Some(shared) if self.take_queue(shared) => continue,
                    Some(shared) => {
                        // All written: a volatile message may go (Node: the write callback).
                        shared.writable.store(true, Ordering::Release);
                        break;
                    }
                    None => break,
                },
                Poll::Pending => {
                    if let Some(shared) = shared {
                        shared.writable.store(false, Ordering::Release);
                    }
                    break;
                }
            }
        }
        self.poll_read_message(cx)
    }

    /// Writes the framed bytes; ready once all are written.
    pub(crate) fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.out.is_empty() {
            return Poll::Ready(Ok(()));
        }
        while self.written < self.out.len() {
            match Pin::new(&mut self.io).poll_write(cx, &self.out[self.written..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => self.written += n,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => return Poll::Pending,
            }
        }
        // Written: the buffer is freed, so an idle connection holds none.
        self.written = 0;
        self.out = Vec::new();
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_read_message(&mut self, cx: &mut Context<'_>) -> Poll<WsEvent> {
        loop {
            match self.reader.next() {
                Ok(Some(message)) => return Poll::Ready(WsEvent::Message(message)),
                Ok(None) => {}
                Err(err) => return Poll::Ready(WsEvent::Refused(err)),
            }
            let read = SCRATCH.with(|scratch| {
                let mut scratch = scratch.borrow_mut();
                let mut buf = ReadBuf::new(&mut scratch[..]);
                Pin::new(&mut self.io).poll_read(cx, &mut buf).map_ok(|()| {
                    self.reader.extend(buf.filled());
                    buf.filled().len()
                })
            });
            match read {
                Poll::Ready(Ok(0)) => return Poll::Ready(WsEvent::Gone(None)),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(err)) => return Poll::Ready(WsEvent::Gone(Some(err))),
                Poll::Pending => {
                    self.reader.release();
                    return Poll::Pending;
                }
            }
        }
    }

    /// The next event if one is ready now, without waiting (what a probe already holds).
    pub(crate) fn try_next(&mut self) -> Option<WsEvent> {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match self.poll_io(&mut cx, None) {
            Poll::Ready(event) => Some(event),
            Poll::Pending => None,
        }
    }

    /// Sends what is framed plus a close frame (`code`, or none: the client sees 1005), then
    /// drops the socket; a client that does not read gets `grace` to take it.
    pub(crate) async fn close(mut self, code: Option<u16>, grace: Duration) {
        self.push_close(code);
        let _ = tokio::time::timeout(grace, async {
            std::future::poll_fn(|cx| self.poll_write_out(cx)).await?;
            self.io.shutdown().await
        })
        .await;
    }
}

/// Closes a WebSocket we do not keep (a refused second upgrade, an abandoned probe) without
/// making the caller wait.
pub(crate) fn close_later(ws: WsConn) {
    tokio::spawn(ws.close(None, CLOSE_GRACE));
}
