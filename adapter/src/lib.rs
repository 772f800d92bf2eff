//! Redis adapters for Sockeye, wire-compatible with Node's `@socket.io/redis-adapter`, and the
//! emitter for workers (`@socket.io/redis-emitter`).
//!
//! - [`ClassicCluster`] connects to Redis once per server and hands
//!   [`socketio::SocketIo::with_adapter`] a factory of [`RedisAdapter`]s (one per namespace):
//!   the classic `createAdapter` protocol, so Rust and Node nodes can share one cluster.
//! - [`ShardedCluster`] does the same for the sharded adapter, `createShardedAdapter`
//!   (Redis ≥ 7 sharded pub/sub, on one server or a Redis Cluster): every namespace gets a
//!   [`ClusterAdapter`] speaking the ClusterAdapter protocol of socket.io-adapter 2.5.
//! - [`Emitter`] publishes from any process to the clients of a classic cluster.
//! - [`wire`] is the protocol itself, sans IO: channels and every message, bytes in and out.
//!
//! The protocol is described in `shared/notes/redis-adapter-wire.md` ("wire notes" in the
//! comments) and checked against captured Node traffic in `tests/vectors_*.rs`.

#![warn(missing_docs)]

mod acks;
mod classic;
mod cluster;
mod driver;
mod emitter;
mod error;
mod resp;
mod sharded;
mod topology;
pub mod wire;

pub use classic::{ClassicCluster, RedisAdapter, RedisAdapterConfig};
pub use cluster::ClusterAdapter;
pub use driver::{ConnectionConfig, Stats};
pub use emitter::{Emitter, EmitterOperator};
pub use error::Error;
pub use sharded::{ShardedCluster, ShardedConfig};
pub use wire::cluster::SubscriptionMode;
