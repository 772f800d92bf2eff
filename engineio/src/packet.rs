//! Engine.IO v4 packets: the codec for one packet (`notes/protocol.md` 1.4).
//!
//! Text packets are a type digit followed by the data. A binary message travels as a binary
//! WebSocket frame with no type byte, or, where only text can go (polling, `b64`), as `b` +
//! standard base64.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::error::DecodeError;

/// A message's payload: UTF-8 text or binary, sharing the buffer it arrived in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message.
    Text(Str),
    /// A binary message.
    Binary(Bytes),
}

/// A UTF-8 string view over a shared buffer (zero-copy: a slice of the frame or polling body).
#[derive(Clone)]
pub struct Str {
    buf: Utf8Bytes,
    start: usize,
    end: usize,
}

impl Str {
    /// `start..end` must fall on character boundaries of `buf`; callers cut only next to ASCII
    /// bytes (the type digit, the record separator), so `as_str` never sees a bad range.
    pub(crate) fn new(buf: Utf8Bytes, start: usize, end: usize) -> Self {
        Self { buf, start, end }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        self.buf
            .as_str()
            .get(self.start..self.end)
            .unwrap_or_default()
    }
}

impl PartialEq for Str {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Str {}

impl std::ops::Deref for Str {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for Str {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl From<&str> for Str {
    fn from(s: &str) -> Self {
        Self::new(Utf8Bytes::from(s), 0, s.len())
    }
}

impl From<String> for Str {
    fn from(s: String) -> Self {
        let len = s.len();
        Self::new(Utf8Bytes::from(s), 0, len)
    }
}

/// The packet types of Engine.IO v4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Packet {
    Open,
    Close,
    /// Only `2probe` is legal from a client, on the probe WebSocket of an upgrade.
    Ping {
        probe: bool,
    },
    Pong {
        probe: bool,
    },
    Message(Message),
    Upgrade,
    Noop,
}

const PROBE: &str = "probe";

impl Packet {
    /// Decodes a text packet. `buf` is the whole frame or polling body, `start..end` the packet;
    /// the range must lie on character boundaries.
    pub(crate) fn decode_text(
        buf: &Utf8Bytes,
        start: usize,
        end: usize,
    ) -> Result<Self, DecodeError> {
        let text = buf.as_str().get(start..end).ok_or(DecodeError::Empty)?;
        let first = *text.as_bytes().first().ok_or(DecodeError::Empty)?;
        // The type is one ASCII byte; anything else fails below, so `get` only guards.
        let data = text.get(1..).unwrap_or_default();
        Ok(match first {
            b'0' => Self::Open,
            b'1' => Self::Close,
            b'2' => Self::Ping {
                probe: data == PROBE,
            },
            b'3' => Self::Pong {
                probe: data == PROBE,
            },
            b'4' => Self::Message(Message::Text(Str::new(buf.clone(), start + 1, end))),
            b'5' => Self::Upgrade,
            b'6' => Self::Noop,
            b'b' => {
                let bytes = BASE64
                    .decode(data)
                    .map_err(|_| DecodeError::InvalidBase64)?;
                Self::Message(Message::Binary(Bytes::from(bytes)))
            }
            _ => return Err(DecodeError::UnknownType),
        })
    }

    /// A whole text frame.
    pub(crate) fn decode_frame(frame: &Utf8Bytes) -> Result<Self, DecodeError> {
        Self::decode_text(frame, 0, frame.len())
    }
}

/// An encoded outgoing packet: the exact WebSocket frame payload, shared by every recipient of a
/// broadcast (DESIGN.md rule 1). Polling bodies are built from the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub(crate) kind: FrameKind,
    /// Polling responses are compressed only when some frame in them allows it (Node's
    /// per-packet `compress` option).
    pub(crate) compress: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameKind {
    /// A text packet, type digit included.
    Text(Utf8Bytes),
    /// A binary message (no type byte on WebSocket).
    Binary(Bytes),
}

impl Frame {
    /// A text message packet: `4` followed by `text`.
    pub fn text(text: impl AsRef<str>) -> Self {
        let text = text.as_ref();
        let mut s = String::with_capacity(text.len() + 1);
        s.push('4');
        s.push_str(text);
        Self::from_kind(FrameKind::Text(Utf8Bytes::from(s)))
    }

    /// A text message packet from a string that already starts with the message type digit
    /// `4`; lets an encoder write the packet in one buffer. Returns `None` if it does not.
    pub fn text_with_type(packet: String) -> Option<Self> {
        packet
            .starts_with('4')
            .then(|| Self::from_kind(FrameKind::Text(Utf8Bytes::from(packet))))
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self::from_kind(FrameKind::Binary(data.into()))
    }

    /// Sets whether a polling response holding this frame may be compressed (default true).
    pub fn compress(mut self, compress: bool) -> Self {
        self.compress = compress;
        self
    }

    pub(crate) fn control(packet: &'static str) -> Self {
        Self::from_kind(FrameKind::Text(Utf8Bytes::from_static(packet)))
    }

    pub(crate) fn control_owned(packet: String) -> Self {
        Self::from_kind(FrameKind::Text(Utf8Bytes::from(packet)))
    }

    pub(crate) fn from_kind(kind: FrameKind) -> Self {
        Self {
            kind,
            compress: true,
        }
    }

    /// Bytes this frame holds, for the outbound queue's byte bound.
    pub(crate) fn len(&self) -> usize {
        match &self.kind {
            FrameKind::Text(t) => t.len(),
            FrameKind::Binary(b) => b.len(),
        }
    }

    /// Appends the polling (text-only) form: text as is, binary as `b` + base64.
    pub(crate) fn push_polling(&self, out: &mut Vec<Bytes>) {
        match &self.kind {
            FrameKind::Text(t) => out.push(Bytes::from(t.clone())),
            FrameKind::Binary(b) => out.push(Bytes::from(b64_packet(b))),
        }
    }
}

/// `b` + base64: how a binary message travels where only text can.
pub(crate) fn b64_packet(data: &[u8]) -> String {
    let mut s = String::with_capacity(1 + data.len().div_ceil(3) * 4);
    s.push('b');
    BASE64.encode_string(data, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> Result<Packet, DecodeError> {
        Packet::decode_frame(&Utf8Bytes::from(s))
    }

    #[test]
    fn decodes_every_type() {
        assert_eq!(decode("0"), Ok(Packet::Open));
        assert_eq!(decode("1"), Ok(Packet::Close));
        assert_eq!(decode("2"), Ok(Packet::Ping { probe: false }));
        assert_eq!(decode("2probe"), Ok(Packet::Ping { probe: true }));
        assert_eq!(decode("3probe"), Ok(Packet::Pong { probe: true }));
        assert_eq!(decode("5"), Ok(Packet::Upgrade));
        assert_eq!(decode("6"), Ok(Packet::Noop));
        assert_eq!(
            decode("4héllo"),
            Ok(Packet::Message(Message::Text(Str::from("héllo"))))
        );
        assert_eq!(
            decode("bAQIDBA=="),
            Ok(Packet::Message(Message::Binary(Bytes::from_static(&[
                1, 2, 3, 4
            ]))))
        );
    }

    #[test]
    fn rejects_bad_packets() {
        assert_eq!(decode(""), Err(DecodeError::Empty));
        assert_eq!(decode("abc"), Err(DecodeError::UnknownType));
        assert_eq!(decode("7"), Err(DecodeError::UnknownType));
        assert_eq!(decode("é"), Err(DecodeError::UnknownType));
        assert_eq!(decode("b!!"), Err(DecodeError::InvalidBase64));
    }

    #[test]
    fn encodes_frames() {
        assert_eq!(
            Frame::text("hello").kind,
            FrameKind::Text(Utf8Bytes::from("4hello"))
        );
        assert!(Frame::text_with_type("2[]".into()).is_none());
        let mut out = Vec::new();
        Frame::binary(vec![1u8, 2, 3, 4]).push_polling(&mut out);
        assert_eq!(out, vec![Bytes::from_static(b"bAQIDBA==")]);
    }
}
