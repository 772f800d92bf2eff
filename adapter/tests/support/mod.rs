//! Helpers shared by the integration tests.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod cluster;
pub mod redis_server;
pub mod vectors;
