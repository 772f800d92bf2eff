//! A socket: one client connected to one namespace (Node's `Socket`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use engineio::Frame;
use tokio::sync::{mpsc, oneshot};

use crate::Value;
use crate::adapter::{BroadcastOptions, Room};
use crate::client::ClientShared;
use crate::codec;
use crate::error::Error;
use crate::handshake::Handshake;
use crate::namespace::Namespace;
use crate::operator::BroadcastOperator;
use crate::packet::{Packet, is_reserved_event};
use crate::reason::DisconnectReason;

const PENDING: u8 = 0;
const CONNECTED: u8 = 1;
const CLOSING: u8 = 2;
const CLOSED: u8 = 3;

/// A client connected to a namespace. Cheap to clone.
#[derive(Clone)]
pub struct Socket {
    pub(crate) inner: Arc<SocketInner>,
}

pub(crate) struct SocketInner {
    pub(crate) id: String,
    /// Private session id for connection state recovery.
    pub(crate) pid: Option<String>,
    pub(crate) ns: Namespace,
    pub(crate) client: Arc<ClientShared>,
    pub(crate) handshake: Handshake,
    data: Mutex<Value>,
    /// PENDING (in middlewares), CONNECTED, CLOSING (in `disconnecting`), CLOSED.
    state: AtomicU8,
    recovered: bool,
    acks: Mutex<HashMap<u64, AckWaiter>>,
}

/// Someone waiting for an ack from this socket.
pub(crate) enum AckWaiter {
    One(oneshot::Sender<Vec<Value>>),
    /// A broadcast with acks: every socket answers into the same channel.
    Many(mpsc::Sender<Vec<Value>>),
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id())
            .field("nsp", &self.ns().name())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Socket {
    pub(crate) fn new(
        id: String,
        pid: Option<String>,
        ns: Namespace,
        client: Arc<ClientShared>,
        handshake: Handshake,
        data: Value,
        recovered: bool,
    ) -> Self {
        Self {
            inner: Arc::new(SocketInner {
                id,
                pid,
                ns,
                client,
                handshake,
                data: Mutex::new(data),
                state: AtomicU8::new(PENDING),
                recovered,
                acks: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The socket id (not the Engine.IO session id).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The namespace.
    pub fn ns(&self) -> &Namespace {
        &self.inner.ns
    }

    /// The connection's details.
    pub fn handshake(&self) -> &Handshake {
        &self.inner.handshake
    }

    /// A copy of `socket.data`.
    pub fn data(&self) -> Value {
        lock(&self.inner.data).clone()
    }

    /// Replaces `socket.data`.
    pub fn set_data(&self, data: Value) {
        *lock(&self.inner.data) = data;
    }

    /// Whether the socket is connected (still true in `disconnecting` handlers, as Node).
    pub fn connected(&self) -> bool {
        matches!(
            self.inner.state.load(Ordering::Acquire),
            CONNECTED | CLOSING
        )
    }

    /// Whether connection state recovery restored this socket.
    pub fn recovered(&self) -> bool {
        self.inner.recovered
    }

    /// The Engine.IO connection under this socket.
    pub fn conn(&self) -> &engineio::Socket {
        &self.inner.client.conn
    }

    /// The rooms the socket is in (its own id room included).
    pub fn rooms(&self) -> Vec<Room> {
        self.ns()
            .adapter()
            .socket_rooms(self.id())
            .unwrap_or_default()
    }

    /// Joins rooms (nothing once the socket has left: a late join must not resurrect it).
    pub fn join<R: Into<Room>>(&self, rooms: impl IntoIterator<Item = R>) {
        if self.inner.state.load(Ordering::Acquire) == CLOSED {
            return;
        }
        let rooms: Vec<Room> = rooms.into_iter().map(Into::into).collect();
        self.ns().adapter().add_all(self.id(), &rooms);
    }

    /// Leaves a room.
    pub fn leave(&self, room: &str) {
        self.ns().adapter().del(self.id(), room);
    }

    /// Emits an event with these arguments to this client.
    pub fn emit(&self, event: &str, args: Vec<Value>) -> Result<(), Error> {
        self.emit_with(event, args, &BroadcastOptions::socket(self.id()))
    }

    /// Emits an event that is dropped if the transport cannot take it right now.
    pub fn emit_volatile(&self, event: &str, args: Vec<Value>) -> Result<(), Error> {
        let mut opts = BroadcastOptions::socket(self.id());
        opts.volatile = true;
        self.emit_with(event, args, &opts)
    }

    fn emit_with(
        &self,
        event: &str,
        args: Vec<Value>,
        opts: &BroadcastOptions,
    ) -> Result<(), Error> {
        let packet = event_packet(self.ns().name(), event, args)?;
        if !self.connected() {
            return Err(Error::Closed);
        }
        if self.ns().recovery().is_some() {
            // Node routes emits through the adapter so the packet gets an offset and is kept
            // for recovery.
            let mut opts = opts.clone();
            opts.local = true;
            self.ns().adapter().broadcast(packet, &opts);
            return Ok(());
        }
        self.ns().notify_outgoing(self, &packet);
        let mut frames = codec::encode(self.ns().parser(), &packet);
        if !opts.compress {
            frames = frames.into_iter().map(|f| f.compress(false)).collect();
        }
        self.send_frames(&frames, opts.volatile)
    }

    /// Emits an event and waits for the client's ack, at most `timeout`.
    pub fn emit_with_ack(
        &self,
        event: &str,
        args: Vec<Value>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<Value>, Error>> + Send + 'static {
        let sent = (|| {
            if !self.connected() {
                return Err(Error::Closed);
            }
            let id = self.ns().next_ack_id();
            let packet = event_packet(self.ns().name(), event, args)?.with_id(id);
            let (tx, rx) = oneshot::channel();
            lock(&self.inner.acks).insert(id, AckWaiter::One(tx));
            self.ns().notify_outgoing(self, &packet);
            let frames = codec::encode(self.ns().parser(), &packet);
            if let Err(err) = self.send_frames(&frames, false) {
                lock(&self.inner.acks).remove(&id);
                return Err(err);
            }
            Ok((id, rx))
        })();
        let socket = self.clone();
        async move {
            let (id, rx) = sent?;
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(args)) => Ok(args),
                Ok(Err(_)) => Err(Error::Closed),
                Err(_) => {
                    lock(&socket.inner.acks).remove(&id);
                    Err(Error::AckTimeout)
                }
            }
        }
    }

    /// Broadcasts to rooms, this socket excluded (`socket.to(room)`).
    pub fn to<R: Into<Room>>(&self, rooms: impl IntoIterator<Item = R>) -> BroadcastOperator {
        self.broadcast().to(rooms)
    }

    /// Broadcasts to every socket of the namespace but this one (`socket.broadcast`).
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.ns().clone()).except([self.id()])
    }

    /// Disconnects the socket from its namespace (`41`); with `close`, disconnects every
    /// namespace of its connection and closes the connection.
    pub fn disconnect(&self, close: bool) {
        if close {
            self.inner.client.disconnect_all();
        } else {
            self.close_with(DisconnectReason::ServerNamespaceDisconnect, true);
        }
    }

    /// Queues encoded frames as one item. Returns an error if the connection is gone or
    /// stopped reading (it is then closed).
    pub(crate) fn send_frames(&self, frames: &[Frame], volatile: bool) -> Result<(), Error> {
        let conn = &self.inner.client.conn;
        if volatile {
            conn.send_volatile(frames.iter().cloned());
            return Ok(());
        }
        conn.send_all(frames.iter().cloned())
            .map_err(|err| match err {
                engineio::Error::QueueFull => Error::QueueFull,
                _ => Error::Closed,
            })
    }

    pub(crate) fn send_packet(&self, packet: &Packet) {
        let _ = self.send_frames(&codec::encode(self.ns().parser(), packet), false);
    }

    pub(crate) fn set_connected(&self) {
        self.inner.state.store(CONNECTED, Ordering::Release);
    }

    /// A refused socket (a middleware said no): it leaves the rooms middlewares joined.
    pub(crate) fn refuse(&self) {
        self.inner.state.store(CLOSED, Ordering::Release);
        self.ns().adapter().del_all(self.id());
    }

    pub(crate) fn pid(&self) -> Option<&str> {
        self.inner.pid.as_deref()
    }

    pub(crate) fn add_ack_waiter(&self, id: u64, waiter: AckWaiter) {
        lock(&self.inner.acks).insert(id, waiter);
    }

    /// Stops waiting for the ack `id` (a cluster adapter's broadcast with acks timed out).
    pub fn remove_ack_waiter(&self, id: u64) {
        lock(&self.inner.acks).remove(&id);
    }

    /// An ACK from the client: unknown ids are ignored (Node).
    pub(crate) fn on_ack(&self, id: u64, args: Vec<Value>) {
        let waiter = lock(&self.inner.acks).remove(&id);
        match waiter {
            Some(AckWaiter::One(tx)) => {
                let _ = tx.send(args);
            }
            Some(AckWaiter::Many(tx)) => {
                let _ = tx.try_send(args);
            }
            None => tracing::debug!(id, "ack for an unknown id: ignored"),
        }
    }

    /// Leaves the namespace: `disconnecting` (rooms still there), session kept for recovery
    /// when the reason allows, rooms left, `disconnect`. Runs once.
    pub(crate) fn close_with(&self, reason: DisconnectReason, notify_client: bool) {
        if self
            .inner
            .state
            .compare_exchange(CONNECTED, CLOSING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let ns = self.ns();
        ns.run_disconnecting(self, reason);
        if reason.is_recoverable()
            && let Some(pid) = self.pid()
        {
            ns.local()
                .persist_session(self.id(), pid, self.rooms(), self.data());
        }
        self.inner.state.store(CLOSED, Ordering::Release);
        ns.remove_socket(self);
        lock(&self.inner.acks).clear();
        self.inner.client.remove(ns.name(), self.id());
        if notify_client {
            self.send_packet(&Packet::disconnect(ns.name()));
        }
        tracing::debug!(id = %self.id(), nsp = %ns.name(), reason = reason.as_str(), "socket disconnected");
        ns.run_disconnect(self, reason);
    }
}

/// An EVENT packet `[event, ...args]`; reserved names cannot be emitted (Node throws).
pub(crate) fn event_packet(nsp: &str, event: &str, args: Vec<Value>) -> Result<Packet, Error> {
    if is_reserved_event(event) {
        return Err(Error::ReservedEvent(event.to_owned()));
    }
    let mut data = Vec::with_capacity(args.len() + 1);
    data.push(Value::from(event));
    data.extend(args);
    Ok(Packet::event(nsp, Value::Array(data)))
}

/// The handle a handler gets to answer a client's ack request. Consumed by the answer, so
/// only one answer is ever sent.
#[derive(Debug)]
pub struct AckSender {
    socket: Socket,
    id: u64,
}

impl AckSender {
    pub(crate) fn new(socket: Socket, id: u64) -> Self {
        Self { socket, id }
    }

    /// Answers with these arguments (`43<id>[...]`, or a binary ack).
    pub fn send(self, args: Vec<Value>) {
        let packet = Packet::ack(self.socket.ns().name(), self.id, Value::Array(args));
        self.socket.send_packet(&packet);
    }
}
