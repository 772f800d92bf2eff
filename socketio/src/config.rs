//! Server options, with Node's names and defaults (socket.io 4.8 `ServerOptions`).

use std::time::Duration;

/// The wire format of Socket.IO packets (`parser` option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParserKind {
    /// socket.io-parser: text packets, binary as attachments.
    #[default]
    Json,
    /// socket.io-msgpack-parser: one msgpack binary message per packet.
    Msgpack,
}

/// `connectionStateRecovery`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryConfig {
    /// How long a disconnected session can be restored (Node: 120 s).
    pub max_disconnection_duration: Duration,
    /// Skip namespace middlewares for a restored socket (Node: true).
    pub skip_middlewares: bool,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        Self {
            max_disconnection_duration: Duration::from_millis(120_000),
            skip_middlewares: true,
        }
    }
}

/// Socket.IO server options. The Engine.IO options live in `engine` (its `path` defaults to
/// `/socket.io/` here).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Engine.IO options.
    pub engine: engineio::Config,
    /// `connectTimeout`: a connection that joins no namespace within it is closed (45 s).
    pub connect_timeout: Duration,
    /// `parser`.
    pub parser: ParserKind,
    /// `connectionStateRecovery`: off unless set.
    pub recovery: Option<RecoveryConfig>,
    /// `maxAttachments` of socket.io-parser: binary attachments per packet (10).
    pub max_attachments: usize,
    /// Namespaces created by dynamic parents, at most (a flood of names is refused).
    pub max_dynamic_namespaces: usize,
}

impl Default for Config {
    fn default() -> Self {
        let mut engine = engineio::Config::default();
        engine.path = "/socket.io/".to_owned();
        Self {
            engine,
            connect_timeout: Duration::from_millis(45_000),
            parser: ParserKind::Json,
            recovery: None,
            max_attachments: 10,
            max_dynamic_namespaces: 10_000,
        }
    }
}
