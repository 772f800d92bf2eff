//! Socket.IO v5 server.
//!
//! Namespaces with middlewares and event handlers, sockets with rooms and acks, broadcast
//! operators, connection state recovery, over the [`engineio`] crate. The wire codecs are the
//! default parser ([`parser::json`], socket.io-parser with binary attachments) and
//! [`parser::msgpack`] (socket.io-msgpack-parser). Payloads are [`Value`]s; [`to_value`] and
//! [`from_value`] convert from and to serde types.
//!
//! Handlers are registered per namespace and run on the connection's task in arrival order:
//! they must not block (spawn for long work; an [`AckSender`] can move into a task).

#![warn(missing_docs)]

pub mod adapter;
mod client;
mod codec;
mod config;
mod connect_timeout;
mod error;
mod handshake;
mod namespace;
mod operator;
mod packet;
pub mod parser;
mod reason;
mod server;
mod socket;
pub mod value;

pub use adapter::{
    AckResponses, Adapter, AdapterError, BroadcastOptions, LocalAdapter, Room, SocketInfo,
};
pub use client::Client;
pub use config::{Config, ParserKind, RecoveryConfig};
pub use error::{Error, ParseError};
pub use handshake::{Handshake, map_get};
pub use namespace::{AdapterFactory, ConnectError, Namespace, ParentNamespace, ServerAck};
pub use operator::{BroadcastOperator, RemoteSocket};
pub use packet::{
    MAX_ACK_ID, Packet, PacketType, RESERVED_EVENTS, is_reserved_event, is_valid_event_data,
};
pub use parser::json::{Encoded, JsonDecoder, ParserLimits};
pub use reason::DisconnectReason;
/// A dynamic payload value: JSON values plus binary (msgpack's data model).
pub use rmpv::Value;
pub use server::{EngineHandler, SocketIo};
pub use socket::{AckSender, Socket};

/// Converts a serde value into a [`Value`].
pub fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, Error> {
    rmpv::ext::to_value(value).map_err(|e| Error::Serde(e.to_string()))
}

/// Converts a [`Value`] into a serde type.
pub fn from_value<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, Error> {
    rmpv::ext::from_value(value).map_err(|e| Error::Serde(e.to_string()))
}
