//! The crate's one error type (DESIGN.md rule 6).

/// Everything that can fail in this crate: connecting to Redis, talking to it, and reading
/// what other nodes publish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Redis URL cannot be parsed.
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
    /// The Redis URL asks for something this crate does not do yet (TLS, Unix sockets).
    #[error("unsupported Redis URL: {0}")]
    Unsupported(String),
    /// Redis could not be reached, or refused the connection setup (AUTH).
    #[error("cannot connect to Redis at {addr}: {reason}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// A Redis command failed, or Redis is unreachable right now.
    #[error("redis: {0}")]
    Redis(String),
    /// Redis sent bytes that are not RESP, or a reply we did not expect.
    #[error("redis protocol: {0}")]
    Protocol(&'static str),
    /// A message from another node (or an emitter) is not what the wire notes describe.
    #[error("malformed adapter message: {0}")]
    Malformed(&'static str),
    /// An operation did not finish in time.
    #[error("timeout reached while waiting for {0}")]
    Timeout(&'static str),
    /// The publish queue is full: the message was dropped (and counted).
    #[error("publish queue full: message dropped")]
    QueueFull,
    /// The connection handling stopped (the adapter was shut down).
    #[error("the Redis connection was shut down")]
    Closed,
    /// The event name is reserved (`connect`, `disconnect`, ...), as Node's emitter refuses.
    #[error("\"{0}\" is a reserved event name")]
    ReservedEvent(String),
}

impl From<redis::RedisError> for Error {
    fn from(err: redis::RedisError) -> Self {
        Self::Redis(err.to_string())
    }
}
