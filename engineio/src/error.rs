//! The crate's one error enum, and the one place that maps request errors to HTTP answers.

use http::StatusCode;

/// Everything that can go wrong in the Engine.IO layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An Engine.IO packet or polling payload could not be decoded.
    #[error("decode error: {0}")]
    Decode(#[from] DecodeError),
    /// A request was refused before it reached a session (Engine.IO error codes 0–5).
    #[error("request refused: {0:?}")]
    Request(RequestError),
    /// The connection's outbound queue is full: the message was not queued.
    #[error("outbound queue full")]
    QueueFull,
    /// The connection is closed: the message was not queued.
    #[error("connection closed")]
    Closed,
    /// An I/O error of the listener.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a packet or payload did not decode (`notes/protocol.md` 1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// An empty text packet (for instance a trailing record separator).
    #[error("empty packet")]
    Empty,
    /// The first character is not a packet type.
    #[error("unknown packet type")]
    UnknownType,
    /// A `b` packet whose body is not valid base64.
    #[error("invalid base64")]
    InvalidBase64,
    /// A polling body that is not valid UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
}

/// The Engine.IO handshake/request error codes, as Node's `Server.errors`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// Code 0: missing or unknown `transport`.
    UnknownTransport,
    /// Code 1: unknown `sid`.
    UnknownSid,
    /// Code 2: a handshake with a method other than GET.
    BadHandshakeMethod,
    /// Code 3: transport mismatch, plain GET with `transport=websocket`, bad header.
    BadRequest,
    /// Code 4: refused by `allow_request` (HTTP 403), with its message.
    Forbidden(String),
    /// Code 5: `EIO` other than `4`.
    UnsupportedProtocolVersion,
}

impl RequestError {
    /// Node's numeric code.
    pub fn code(&self) -> u8 {
        match self {
            Self::UnknownTransport => 0,
            Self::UnknownSid => 1,
            Self::BadHandshakeMethod => 2,
            Self::BadRequest => 3,
            Self::Forbidden(_) => 4,
            Self::UnsupportedProtocolVersion => 5,
        }
    }

    /// Node's message for the code.
    pub fn message(&self) -> &str {
        match self {
            Self::UnknownTransport => "Transport unknown",
            Self::UnknownSid => "Session ID unknown",
            Self::BadHandshakeMethod => "Bad handshake method",
            Self::BadRequest => "Bad request",
            Self::Forbidden(message) => message,
            Self::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// HTTP status of the JSON error answer: 403 for code 4, else 400.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The compact JSON body Node sends: `{"code":N,"message":"..."}`.
    pub(crate) fn body(&self) -> String {
        let message = serde_json::Value::String(self.message().to_owned());
        format!("{{\"code\":{},\"message\":{message}}}", self.code())
    }
}
