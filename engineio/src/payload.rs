//! Polling payloads: packets joined by the record separator `\x1e` (`notes/protocol.md` 1.5).

use bytes::Bytes;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::error::DecodeError;
use crate::packet::{Frame, Packet};

/// The record separator between the packets of a polling payload.
pub(crate) const SEPARATOR: u8 = 0x1e;

/// Decodes a POST body. Yields each packet in order; a packet that fails to decode yields its
/// error and ends the iteration (Node delivers the packets before it, then closes the session).
pub(crate) fn decode(body: Bytes) -> Decoder {
    match Utf8Bytes::try_from(body) {
        Ok(buf) => Decoder {
            buf: Some(buf),
            pos: 0,
            failed: None,
        },
        Err(_) => Decoder {
            buf: None,
            pos: 0,
            failed: Some(DecodeError::InvalidUtf8),
        },
    }
}

/// Iterator over the packets of a polling payload.
pub(crate) struct Decoder {
    buf: Option<Utf8Bytes>,
    pos: usize,
    failed: Option<DecodeError>,
}

impl Iterator for Decoder {
    type Item = Result<Packet, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(err) = self.failed.take() {
            self.buf = None;
            return Some(Err(err));
        }
        let buf = self.buf.as_ref()?;
        let rest = buf.as_bytes().get(self.pos..).unwrap_or_default();
        let (end, next) = match rest.iter().position(|&b| b == SEPARATOR) {
            Some(i) => (self.pos + i, Some(self.pos + i + 1)),
            None => (buf.len(), None),
        };
        let packet = Packet::decode_text(buf, self.pos, end);
        match next {
            Some(next) if packet.is_ok() => self.pos = next,
            _ => self.buf = None,
        }
        Some(packet)
    }
}

/// Encodes frames as one polling payload: a list of chunks, no joined copy (DESIGN.md rule 1).
pub(crate) fn encode<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> Vec<Bytes> {
    static SEP: [u8; 1] = [SEPARATOR];
    let mut out = Vec::new();
    for frame in frames {
        if !out.is_empty() {
            out.push(Bytes::from_static(&SEP));
        }
        frame.push_polling(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{Message, Str};

    fn all(body: &'static [u8]) -> Vec<Result<Packet, DecodeError>> {
        decode(Bytes::from_static(body)).collect()
    }

    #[test]
    fn decodes_mixed_payload() {
        assert_eq!(
            all(b"4hello\x1ebAQIDBA==\x1e2"),
            vec![
                Ok(Packet::Message(Message::Text(Str::from("hello")))),
                Ok(Packet::Message(Message::Binary(Bytes::from_static(&[
                    1, 2, 3, 4
                ])))),
                Ok(Packet::Ping { probe: false }),
            ]
        );
    }

    #[test]
    fn stops_at_first_error() {
        assert_eq!(
            all(b"4a\x1e\x1e4b"),
            vec![
                Ok(Packet::Message(Message::Text(Str::from("a")))),
                Err(DecodeError::Empty)
            ]
        );
        assert_eq!(
            all(b"4a\x1e"),
            vec![
                Ok(Packet::Message(Message::Text(Str::from("a")))),
                Err(DecodeError::Empty)
            ]
        );
        assert_eq!(all(b""), vec![Err(DecodeError::Empty)]);
        assert_eq!(all(b"\xff"), vec![Err(DecodeError::InvalidUtf8)]);
    }

    #[test]
    fn splits_at_every_byte_without_panic() {
        let body = "4héllo\x1ebAQIDBA==\x1e3\x1e4€".as_bytes();
        for i in 0..=body.len() {
            let _ = decode(Bytes::copy_from_slice(&body[..i])).count();
            let _ = decode(Bytes::copy_from_slice(&body[i..])).count();
        }
    }

    #[test]
    fn encodes_with_separators() {
        let frames = [
            Frame::text("hello"),
            Frame::binary(vec![1u8, 2, 3, 4]),
            Frame::control("2"),
        ];
        let joined: Vec<u8> = encode(&frames).concat();
        assert_eq!(joined, b"4hello\x1ebAQIDBA==\x1e2");
    }
}
