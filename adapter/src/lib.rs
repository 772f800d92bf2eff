//! Redis adapters for Sockeye, wire-compatible with Node's `@socket.io/redis-adapter`, and the
//! emitter for workers (`@socket.io/redis-emitter`).
//!
//! - [`ClassicCluster`] connects to Redis once per server and hands
//!   [`socketio::SocketIo::with_adapter`] a factory of [`RedisAdapter`]s (one per namespace):
//!   the classic `createAdapter` protocol, so Rust and Node nodes can share one cluster.
//! - [`Emitter`] publishes from any process to the clients of a cluster.
//! - [`wire`] is the protocol itself, sans IO: channels and every message, bytes in and out.
//!
//! The protocol is described in `shared/notes/redis-adapter-wire.md` ("wire notes" in the
//! comments) and checked against captured Node traffic in `tests/vectors_*.rs`.

#![warn(missing_docs)]

mod classic;
mod driver;
mod emitter;
mod error;
mod resp;
pub mod wire;

pub use classic::{ClassicCluster, RedisAdapter, RedisAdapterConfig};
pub use driver::{ConnectionConfig, Stats};
pub use emitter::{Emitter, EmitterOperator};
pub use error::Error;
