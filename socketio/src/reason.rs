//! Why a socket left its namespace: Node's reason strings (`notes/protocol.md` 2.8).

use engineio::CloseReason;

/// Disconnect reasons, as Node's `disconnect` event gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The server called `socket.disconnect()`.
    ServerNamespaceDisconnect,
    /// The client left the namespace.
    ClientNamespaceDisconnect,
    /// The server is closing.
    ServerShuttingDown,
    /// The client stopped answering pings.
    PingTimeout,
    /// The client closed the connection.
    TransportClose,
    /// The connection failed.
    TransportError,
    /// An undecodable Engine.IO packet.
    ParseError,
    /// The connection was closed after a Socket.IO decode error, or by the server.
    ForcedClose,
    /// The server closed the connection for an invalid packet sequence or a connect timeout.
    ForcedServerClose,
}

impl DisconnectReason {
    /// Node's string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServerNamespaceDisconnect => "server namespace disconnect",
            Self::ClientNamespaceDisconnect => "client namespace disconnect",
            Self::ServerShuttingDown => "server shutting down",
            Self::PingTimeout => "ping timeout",
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::ParseError => "parse error",
            Self::ForcedClose => "forced close",
            Self::ForcedServerClose => "forced server close",
        }
    }

    /// Whether connection state recovery may restore a socket that left for this reason.
    pub fn is_recoverable(self) -> bool {
        matches!(
            self,
            Self::TransportError
                | Self::TransportClose
                | Self::ForcedClose
                | Self::PingTimeout
                | Self::ServerShuttingDown
                | Self::ForcedServerClose
        )
    }
}

impl From<CloseReason> for DisconnectReason {
    fn from(reason: CloseReason) -> Self {
        match reason {
            CloseReason::PingTimeout => Self::PingTimeout,
            CloseReason::TransportClose => Self::TransportClose,
            CloseReason::TransportError => Self::TransportError,
            CloseReason::ParseError => Self::ParseError,
            _ => Self::ForcedClose,
        }
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
