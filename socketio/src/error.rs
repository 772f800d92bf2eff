//! The crate's error types (DESIGN.md rule 6: one error enum per crate).

/// Everything that can go wrong in the `socketio` crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Socket.IO packet could not be decoded. Node closes the whole Engine.IO connection on
    /// any decode error (protocol.md 2.2, Part 6 point 12).
    #[error("socket.io parse error: {0}")]
    Parse(#[from] ParseError),
    /// A reserved event name cannot be emitted (`connect`, `disconnect`, ...).
    #[error("\"{0}\" is a reserved event name")]
    ReservedEvent(String),
    /// The socket is disconnected, or its connection closed.
    #[error("socket closed")]
    Closed,
    /// The connection's outbound queue is full: the client stopped reading and is closed.
    #[error("outbound queue full")]
    QueueFull,
    /// No ack came in time (Node: "operation has timed out").
    #[error("operation has timed out")]
    AckTimeout,
    /// A cluster operation failed.
    #[error(transparent)]
    Adapter(#[from] crate::adapter::AdapterError),
    /// A payload did not convert from or to a serde type.
    #[error("payload conversion: {0}")]
    Serde(String),
}

/// Why a Socket.IO packet (text, binary attachment or msgpack) was rejected.
///
/// Every variant means "close the connection" (protocol.md 2.2): the distinction only helps logs
/// and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// An empty text packet (no type digit).
    #[error("empty packet")]
    Empty,
    /// The first character is not a packet type digit `0`..`6` (msgpack: `type` not 0..4).
    #[error("unknown packet type")]
    UnknownType,
    /// The attachment count of a binary packet is missing, not a decimal integer, not followed
    /// by `-`, or zero.
    #[error("illegal attachments")]
    IllegalAttachments,
    /// The attachment count exceeds `max_attachments`.
    #[error("too many attachments")]
    TooManyAttachments,
    /// The ack id does not fit in a JS safe integer (> 2^53-1), is negative or not an integer.
    #[error("invalid ack id")]
    InvalidAckId,
    /// The payload is not valid JSON (or nests deeper than the limit).
    #[error("invalid JSON payload: {0}")]
    InvalidJson(String),
    /// The payload is valid JSON but not valid for the packet type.
    #[error("invalid payload for the packet type")]
    InvalidPayload,
    /// The namespace is missing or not a string (msgpack).
    #[error("invalid namespace")]
    InvalidNamespace,
    /// A placeholder `{"_placeholder":true,"num":N}` with a bad `num`, or one that reuses an
    /// attachment.
    #[error("illegal attachment placeholder")]
    InvalidPlaceholder,
    /// A text packet arrived while the attachments of a binary packet were still expected.
    #[error("got plaintext data when reconstructing a packet")]
    UnexpectedText,
    /// A binary message arrived with no binary packet header waiting for it.
    #[error("got binary data when not reconstructing a packet")]
    UnexpectedBinary,
    /// The attachments of one packet exceed `max_buffered_bytes`.
    #[error("attachments too large")]
    AttachmentsTooLarge,
    /// The msgpack data is malformed, truncated, followed by trailing bytes or nested too deep.
    #[error("invalid msgpack: {0}")]
    InvalidMsgpack(&'static str),
}
