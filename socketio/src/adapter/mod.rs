//! The `Adapter`: where a namespace's rooms live and how its broadcasts reach sockets, on this
//! node or across a cluster. The in-memory adapter is [`LocalAdapter`]; the Redis adapters build
//! on it.
//!
//! Calls that only send (broadcast, join/leave/disconnect by filter, server-side emit without
//! ack) are synchronous: the local part is done before they return, so packets to one socket
//! keep their order; a cluster adapter queues its publish. Calls that wait for answers from
//! other nodes return futures.

mod local;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use local::{LocalAdapter, collect_acks};

use crate::Value;
use crate::handshake::Handshake;
use crate::packet::Packet;

/// A boxed future, for the adapter's asynchronous calls.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A room name.
pub type Room = String;

/// Which sockets an operation targets: `to(rooms).except(except)`, and modifiers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BroadcastOptions {
    /// Rooms to target (all sockets of the namespace when empty).
    pub rooms: Vec<Room>,
    /// Rooms whose sockets are left out.
    pub except: Vec<Room>,
    /// This node only.
    pub local: bool,
    /// Dropped where the transport cannot take it right now.
    pub volatile: bool,
    /// Polling responses may be compressed.
    pub compress: bool,
}

impl BroadcastOptions {
    /// Every socket of the namespace.
    pub fn all() -> Self {
        Self {
            compress: true,
            ..Self::default()
        }
    }

    /// One socket (its id room).
    pub fn socket(id: &str) -> Self {
        Self {
            rooms: vec![id.to_owned()],
            ..Self::all()
        }
    }
}

/// A socket as `fetch_sockets` returns it, wherever it lives.
#[derive(Debug, Clone)]
pub struct SocketInfo {
    /// Socket id.
    pub id: String,
    /// Handshake.
    pub handshake: Handshake,
    /// Rooms.
    pub rooms: Vec<Room>,
    /// `socket.data`.
    pub data: Value,
}

/// The answers of a broadcast or server-side emit with acks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AckResponses {
    /// Whether the deadline passed before every expected answer came.
    pub timed_out: bool,
    /// Each answer (the ack's arguments), in arrival order.
    pub responses: Vec<Vec<Value>>,
}

/// A failure of a cluster operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// Other nodes did not answer in time.
    #[error("timeout reached while waiting for {0} response")]
    Timeout(&'static str),
    /// The adapter's backend failed.
    #[error("adapter: {0}")]
    Backend(String),
}

/// A namespace's room registry and broadcaster. One instance per namespace.
pub trait Adapter: Send + Sync + 'static {
    /// Adds a socket to rooms.
    fn add_all(&self, id: &str, rooms: &[Room]);
    /// Removes a socket from a room.
    fn del(&self, id: &str, room: &str);
    /// Removes a socket from every room.
    fn del_all(&self, id: &str);
    /// The rooms of a local socket.
    fn socket_rooms(&self, id: &str) -> Option<Vec<Room>>;
    /// Ids of local sockets matching `opts`.
    fn sockets(&self, opts: &BroadcastOptions) -> Vec<String>;

    /// Sends a packet to every matching socket (encoded once).
    fn broadcast(&self, packet: Packet, opts: &BroadcastOptions);
    /// Sends a packet with one ack id to every matching socket and gathers their answers.
    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<AckResponses>;
    /// Matching sockets across the cluster.
    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<Result<Vec<SocketInfo>, AdapterError>>;
    /// Makes matching sockets join rooms.
    fn add_sockets(&self, opts: &BroadcastOptions, rooms: Vec<Room>);
    /// Makes matching sockets leave rooms.
    fn del_sockets(&self, opts: &BroadcastOptions, rooms: Vec<Room>);
    /// Disconnects matching sockets (`close` closes their connections).
    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool);
    /// Sends an event to the other nodes' namespace (`serverSideEmit`).
    fn server_side_emit(&self, args: Vec<Value>);
    /// The same, gathering one answer per other node.
    fn server_side_emit_with_ack(
        &self,
        args: Vec<Value>,
        timeout: Duration,
    ) -> BoxFuture<AckResponses>;
    /// Nodes in the cluster, this one included.
    fn server_count(&self) -> BoxFuture<usize>;
    /// Every room on every node.
    fn all_rooms(&self) -> BoxFuture<Result<Vec<Room>, AdapterError>>;
}
