//! `sockeye`: the deployable Sockeye real-time server.
//!
//! Browsers connect with the official Socket.IO client and a JWT; they start jobs (a search, a
//! streamed model answer) that workers run and report on; every event reaches exactly the tabs
//! of the user it is for. One node runs alone with an in-process queue and worker; with
//! `REDIS_URL`, nodes form a cluster through the `socketio-redis` adapter.
//!
//! | module | what it holds |
//! |---|---|
//! | [`config`] | flags and environment variables, `--help` |
//! | [`auth`] | JWT checks, dev tokens |
//! | [`events`] | the event catalogue: names, payload types, validation, envelope, `events.ts` |
//! | [`realtime`] | the Socket.IO handlers: auth middleware, rooms, client events |
//! | [`presence`] | who is online (cluster-wide through Redis) |
//! | [`rate_limit`] | per-user token buckets (cluster-wide through Redis) |
//! | [`jobs`] | jobs, the queue seam and the in-process queue |
//! | [`jobs_redis`] | the cluster job queue: a Redis stream with a consumer group |
//! | [`worker`] | the worker library and the example worker |
//! | [`cluster`] | the adapter seam: in-memory or Redis |
//! | [`http`] | the HTTP routes beside Socket.IO, CORS, the client bundle |
//! | [`metrics`] | counters and Prometheus text |
//! | [`app`] | the server assembled, and its graceful shutdown |
//! | [`logging`] | log output |

pub mod app;
pub mod auth;
pub mod cluster;
pub mod config;
mod error;
pub mod events;
pub mod http;
pub mod jobs;
pub mod jobs_redis;
pub mod logging;
pub mod metrics;
pub mod presence;
mod presence_cluster;
pub mod rate_limit;
pub mod realtime;
pub mod worker;

pub use app::{App, Running, start};
pub use config::Config;
pub use error::Error;
