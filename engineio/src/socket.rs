//! The handle the layer above holds for one connection, and the connection's bounded outbound
//! queue (DESIGN.md rule 2).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::driver::Cmd;
use crate::error::Error;
use crate::packet::Frame;
use crate::request::RequestInfo;
use crate::session::{CloseReason, TransportKind};

/// One Engine.IO connection, as the layer above sees it. Cheap to clone.
#[derive(Clone)]
pub struct Socket {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

impl Socket {
    /// The session id.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// The request that opened the session.
    pub fn request(&self) -> &RequestInfo {
        &self.shared.request
    }

    /// The transport in use right now.
    pub fn transport(&self) -> TransportKind {
        match self.shared.transport.load(Ordering::Acquire) {
            0 => TransportKind::Polling,
            _ => TransportKind::WebSocket,
        }
    }

    /// Queues one message.
    pub fn send(&self, frame: Frame) -> Result<(), Error> {
        self.send_all([frame])
    }

    /// Queues several messages as one item: nothing can come between them (a Socket.IO packet
    /// and its binary attachments). A full queue closes the connection with `transport error`:
    /// the client stopped reading, and cutting it lets it reconnect and recover.
    pub fn send_all(&self, frames: impl IntoIterator<Item = Frame>) -> Result<(), Error> {
        let (result, was_empty) = {
            let mut queue = self.shared.queue();
            let was_empty = queue.frames.is_empty();
            (
                queue.push(frames, self.shared.max_buffered_bytes),
                was_empty,
            )
        };
        if matches!(result, Err(Error::QueueFull)) {
            tracing::debug!(sid = %self.id(), "outbound queue full: closing the connection");
            self.shared
                .request_close(CloseReason::TransportError, false);
        } else if was_empty {
            // Only the first message of a batch wakes the session's task: it takes the whole
            // queue when it runs (a broadcast to N sockets then costs N pushes, not N wakes).
            self.shared.notify.notify_one();
        }
        result
    }

    /// Queues messages only if the transport can take them right now, else drops them
    /// (Socket.IO `volatile`). Returns whether they were queued.
    pub fn send_volatile(&self, frames: impl IntoIterator<Item = Frame>) -> bool {
        let mut queue = self.shared.queue();
        if !queue.frames.is_empty() || !self.shared.writable.load(Ordering::Acquire) {
            return false;
        }
        let queued = queue.push(frames, self.shared.max_buffered_bytes).is_ok();
        drop(queue);
        self.shared.notify.notify_one();
        queued
    }

    /// Closes the connection after the queued messages are sent (`forced close`).
    pub fn close(&self) {
        self.shared.request_close(CloseReason::ForcedClose, true);
    }

    /// Whether the connection is closed or closing.
    pub fn is_closed(&self) -> bool {
        self.shared.queue().close.is_some()
    }
}

pub(crate) struct Shared {
    pub(crate) id: Box<str>,
    pub(crate) request: RequestInfo,
    queue: Mutex<OutQueue>,
    /// Requests for the session's task; `None` once it has ended.
    cmds: Mutex<Option<VecDeque<Cmd>>>,
    /// Wakes the session's task: something was queued, a close was asked, or a command came.
    pub(crate) notify: Notify,
    /// 0 polling, 1 WebSocket.
    pub(crate) transport: AtomicU8,
    /// Whether a write would go out now (a pending GET, or an open WebSocket): `volatile`.
    pub(crate) writable: AtomicBool,
    /// A POST is being read: a second one is an error.
    pub(crate) post_busy: AtomicBool,
    /// The WebSocket close code to send when the session ends (0: a close frame with no code).
    pub(crate) ws_close_code: AtomicU16,
    /// `b64` in the query: binary goes as `b`+base64 text even on WebSocket.
    pub(crate) b64: bool,
    max_buffered_bytes: usize,
}

impl Shared {
    pub(crate) fn new(
        id: String,
        request: RequestInfo,
        transport: TransportKind,
        max_buffered_bytes: usize,
    ) -> Self {
        let b64 = request.query_param("b64").is_some();
        Self {
            id: id.into_boxed_str(),
            request,
            queue: Mutex::new(OutQueue::default()),
            cmds: Mutex::new(Some(VecDeque::new())),
            notify: Notify::new(),
            transport: AtomicU8::new(transport as u8),
            writable: AtomicBool::new(false),
            post_busy: AtomicBool::new(false),
            ws_close_code: AtomicU16::new(0),
            b64,
            max_buffered_bytes,
        }
    }

    pub(crate) fn queue(&self) -> MutexGuard<'_, OutQueue> {
        // A panic while holding this lock cannot leave the queue inconsistent: keep going.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cmds(&self) -> MutexGuard<'_, Option<VecDeque<Cmd>>> {
        self.cmds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Hands a request to the session's task; given back when the session has ended or has
    /// too many waiting (a client does not need more than a GET, a POST and a probe at once).
    pub(crate) fn send_cmd(&self, cmd: Cmd) -> Result<(), Cmd> {
        {
            let mut cmds = self.cmds();
            match cmds.as_mut() {
                Some(cmds) if cmds.len() < MAX_CMDS => cmds.push_back(cmd),
                _ => return Err(cmd),
            }
        }
        self.notify.notify_one();
        Ok(())
    }

    /// The requests waiting for the session's task.
    pub(crate) fn take_cmds(&self) -> VecDeque<Cmd> {
        self.cmds().as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The session's task has ended: later requests are refused, waiting ones dropped (their
    /// requests see the session gone).
    pub(crate) fn end_cmds(&self) {
        let left = self.cmds().take();
        drop(left);
    }

    /// Asks the connection's owner to close; `flush` sends what is queued first.
    pub(crate) fn request_close(&self, reason: CloseReason, flush: bool) {
        {
            let mut queue = self.queue();
            if queue.close.is_none() {
                queue.close = Some(CloseRequest { reason, flush });
            }
        }
        self.notify.notify_one();
    }

    pub(crate) fn set_transport(&self, transport: TransportKind) {
        self.transport.store(transport as u8, Ordering::Release);
    }
}

/// Requests a session may have waiting for its task.
const MAX_CMDS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CloseRequest {
    pub(crate) reason: CloseReason,
    pub(crate) flush: bool,
}

#[derive(Default)]
pub(crate) struct OutQueue {
    pub(crate) frames: VecDeque<Frame>,
    bytes: usize,
    pub(crate) close: Option<CloseRequest>,
}

impl OutQueue {
    /// Appends frames atomically. A message bigger than the whole bound still goes when the
    /// queue is empty, so a large payload is never undeliverable.
    fn push(&mut self, frames: impl IntoIterator<Item = Frame>, limit: usize) -> Result<(), Error> {
        if self.close.is_some() {
            return Err(Error::Closed);
        }
        let start = self.frames.len();
        let mut added = 0;
        for frame in frames {
            added += frame.len();
            self.frames.push_back(frame);
        }
        if start > 0 && self.bytes + added > limit {
            self.frames.truncate(start);
            return Err(Error::QueueFull);
        }
        self.bytes += added;
        Ok(())
    }

    /// Queues a packet of the engine itself (ping, noop): not subject to the bound.
    pub(crate) fn push_control(&mut self, frame: Frame) {
        self.bytes += frame.len();
        self.frames.push_back(frame);
    }

    /// Takes the queued frames; the queue keeps no buffer (an idle connection holds none).
    pub(crate) fn take(&mut self) -> VecDeque<Frame> {
        self.bytes = 0;
        std::mem::take(&mut self.frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_is_bounded_in_bytes_and_atomic() {
        let mut q = OutQueue::default();
        assert!(
            q.push([Frame::text("a".repeat(100))], 10).is_ok(),
            "a big message goes on an empty queue"
        );
        assert!(matches!(
            q.push([Frame::text("b"), Frame::binary(vec![0u8; 20])], 10),
            Err(Error::QueueFull)
        ));
        assert_eq!(q.frames.len(), 1, "a refused item leaves nothing behind");
        assert_eq!(q.take().len(), 1);
        assert!(
            q.push([Frame::text("b"), Frame::binary(vec![0u8; 5])], 10)
                .is_ok()
        );
        assert_eq!(q.frames.len(), 2);
        q.close = Some(CloseRequest {
            reason: CloseReason::ForcedClose,
            flush: true,
        });
        assert!(matches!(q.push([Frame::text("c")], 10), Err(Error::Closed)));
    }
}
