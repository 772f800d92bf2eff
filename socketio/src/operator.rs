//! Broadcast operators: `to`/`in`/`except`/`local`/`volatile`/`compress`/`timeout`, then an
//! action on every matching socket of the cluster (Node's `BroadcastOperator`), and the
//! `RemoteSocket` handles `fetch_sockets` returns.

use std::time::Duration;

use crate::Value;
use crate::adapter::{AckResponses, BroadcastOptions, Room, SocketInfo};
use crate::error::Error;
use crate::handshake::Handshake;
use crate::namespace::Namespace;
use crate::socket::event_packet;

/// An immutable selection of sockets. Each modifier returns a new operator.
#[derive(Debug, Clone)]
pub struct BroadcastOperator {
    ns: Namespace,
    opts: BroadcastOptions,
    timeout: Option<Duration>,
}

impl BroadcastOperator {
    pub(crate) fn new(ns: Namespace) -> Self {
        Self {
            ns,
            opts: BroadcastOptions::all(),
            timeout: None,
        }
    }

    /// Adds rooms to target.
    pub fn to<R: Into<Room>>(mut self, rooms: impl IntoIterator<Item = R>) -> Self {
        for room in rooms {
            let room = room.into();
            if !self.opts.rooms.contains(&room) {
                self.opts.rooms.push(room);
            }
        }
        self
    }

    /// Same as [`to`](Self::to) (Node's `in`).
    pub fn in_<R: Into<Room>>(self, rooms: impl IntoIterator<Item = R>) -> Self {
        self.to(rooms)
    }

    /// Leaves out the sockets of these rooms.
    pub fn except<R: Into<Room>>(mut self, rooms: impl IntoIterator<Item = R>) -> Self {
        for room in rooms {
            let room = room.into();
            if !self.opts.except.contains(&room) {
                self.opts.except.push(room);
            }
        }
        self
    }

    /// This node only.
    pub fn local(mut self) -> Self {
        self.opts.local = true;
        self
    }

    /// Dropped for sockets whose transport cannot take it right now.
    pub fn volatile(mut self) -> Self {
        self.opts.volatile = true;
        self
    }

    /// Whether polling responses may be compressed.
    pub fn compress(mut self, compress: bool) -> Self {
        self.opts.compress = compress;
        self
    }

    /// The deadline of [`emit_with_ack`](Self::emit_with_ack).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The selection.
    pub fn options(&self) -> &BroadcastOptions {
        &self.opts
    }

    /// Emits to every matching socket; the packet is encoded once.
    pub fn emit(&self, event: &str, args: Vec<Value>) -> Result<(), Error> {
        let packet = event_packet(self.ns.name(), event, args)?;
        self.ns.adapter().broadcast(packet, &self.opts);
        Ok(())
    }

    /// Emits with one ack id to every matching socket and gathers their answers, in arrival
    /// order, until all answered or the timeout passed. Without a timeout Node answers at once
    /// with a timeout and no responses; so do we.
    pub async fn emit_with_ack(
        &self,
        event: &str,
        args: Vec<Value>,
    ) -> Result<AckResponses, Error> {
        let packet = event_packet(self.ns.name(), event, args)?.with_id(self.ns.next_ack_id());
        let timeout = self.timeout.unwrap_or(Duration::ZERO);
        Ok(self
            .ns
            .adapter()
            .broadcast_with_ack(packet, &self.opts, timeout)
            .await)
    }

    /// The matching sockets of the cluster.
    pub async fn fetch_sockets(&self) -> Result<Vec<RemoteSocket>, Error> {
        let infos = self.ns.adapter().fetch_sockets(&self.opts).await?;
        Ok(infos
            .into_iter()
            .map(|info| RemoteSocket {
                ns: self.ns.clone(),
                info,
            })
            .collect())
    }

    /// Makes the matching sockets join rooms.
    pub fn sockets_join<R: Into<Room>>(&self, rooms: impl IntoIterator<Item = R>) {
        self.ns
            .adapter()
            .add_sockets(&self.opts, rooms.into_iter().map(Into::into).collect());
    }

    /// Makes the matching sockets leave rooms.
    pub fn sockets_leave<R: Into<Room>>(&self, rooms: impl IntoIterator<Item = R>) {
        self.ns
            .adapter()
            .del_sockets(&self.opts, rooms.into_iter().map(Into::into).collect());
    }

    /// Disconnects the matching sockets; `close` closes their connections.
    pub fn disconnect_sockets(&self, close: bool) {
        self.ns.adapter().disconnect_sockets(&self.opts, close);
    }
}

/// A socket anywhere in the cluster, from `fetch_sockets`.
#[derive(Debug, Clone)]
pub struct RemoteSocket {
    ns: Namespace,
    info: SocketInfo,
}

impl RemoteSocket {
    fn target(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.ns.clone()).to([self.info.id.as_str()])
    }

    /// Socket id.
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// Its rooms when fetched.
    pub fn rooms(&self) -> &[Room] {
        &self.info.rooms
    }

    /// Its `data` when fetched.
    pub fn data(&self) -> &Value {
        &self.info.data
    }

    /// Its handshake.
    pub fn handshake(&self) -> &Handshake {
        &self.info.handshake
    }

    /// Emits to it.
    pub fn emit(&self, event: &str, args: Vec<Value>) -> Result<(), Error> {
        self.target().emit(event, args)
    }

    /// Makes it join rooms.
    pub fn join<R: Into<Room>>(&self, rooms: impl IntoIterator<Item = R>) {
        self.target().sockets_join(rooms);
    }

    /// Makes it leave rooms.
    pub fn leave<R: Into<Room>>(&self, rooms: impl IntoIterator<Item = R>) {
        self.target().sockets_leave(rooms);
    }

    /// Disconnects it.
    pub fn disconnect(&self, close: bool) {
        self.target().disconnect_sockets(close);
    }
}
