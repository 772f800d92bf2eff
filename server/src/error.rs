//! The crate's one error type (DESIGN.md rule 6), and the one place that maps it to an exit code.

/// Everything that stops the server or a worker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting has a bad value (or a combination of settings is refused). The message names the
    /// setting; the process exits with status 2.
    #[error("{name}: {reason}")]
    Config {
        /// The setting's name (`PORT`, `JWT_SECRET`, ...).
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The listening socket could not be opened, or another I/O failure.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The Redis cluster adapter failed (connecting, or a publish from a worker).
    #[error("redis: {0}")]
    Redis(#[from] socketio_redis::Error),
    /// A job queue refused a job or is gone.
    #[error("job queue: {0}")]
    Queue(&'static str),
    /// Emitting to clients failed.
    #[error("emit: {0}")]
    Emit(#[from] socketio::Error),
}

impl Error {
    /// A configuration error for setting `name`.
    pub fn config(name: &'static str, reason: impl Into<String>) -> Self {
        Self::Config {
            name,
            reason: reason.into(),
        }
    }

    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// The process exit status for this error: 2 for configuration, 1 for anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Config { .. } => 2,
            _ => 1,
        }
    }
}
