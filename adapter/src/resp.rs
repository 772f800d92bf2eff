//! A small sans-IO RESP2 codec for the subscriber connection: commands out, frames in.
//!
//! The subscriber connection only ever sees pub/sub replies (`subscribe`, `message`,
//! `pmessage`, `smessage`, `pong`, ...) and errors, so this reader handles the five RESP2 types
//! and nothing else (no RESP3: the connection never sends `HELLO 3`).
//!
//! # Protocol notes
//!
//! - Parsing restarts from the start of the buffer until a whole frame is there; a bulk string
//!   is only length-checked, never scanned, so a large payload arriving in many reads costs a
//!   few header parses per read, not a rescan of the payload.
//! - Every input size has a limit: bulk strings above `max_bulk` bytes, arrays above
//!   [`MAX_ARRAY`] elements and nesting above [`MAX_DEPTH`] are errors (the connection is then
//!   dropped and reopened: see `driver`).

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::Error;

/// Deepest array nesting accepted (pub/sub replies are one level deep).
pub(crate) const MAX_DEPTH: usize = 4;
/// Largest array accepted (pub/sub replies have 3 or 4 elements).
pub(crate) const MAX_ARRAY: usize = 1024;
/// Longest simple string, error or integer line accepted.
const MAX_LINE: usize = 64 * 1024;

/// One RESP2 value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// `+OK`.
    Simple(Bytes),
    /// `-ERR ...`.
    Error(Bytes),
    /// `:1`.
    Integer(i64),
    /// `$3\r\nabc` (`None`: `$-1`).
    Bulk(Option<Bytes>),
    /// `*2\r\n...` (`None`: `*-1`).
    Array(Option<Vec<Self>>),
}

impl Frame {
    /// The bytes of a bulk or simple string.
    pub(crate) fn bytes(&self) -> Option<&Bytes> {
        match self {
            Self::Bulk(Some(b)) | Self::Simple(b) => Some(b),
            _ => None,
        }
    }
}

/// Appends `args` as a RESP array of bulk strings (how clients send commands).
pub(crate) fn encode_command<A: AsRef<[u8]>>(out: &mut BytesMut, args: &[A]) {
    out.put_u8(b'*');
    out.put_slice(args.len().to_string().as_bytes());
    out.put_slice(b"\r\n");
    for arg in args {
        let arg = arg.as_ref();
        out.put_u8(b'$');
        out.put_slice(arg.len().to_string().as_bytes());
        out.put_slice(b"\r\n");
        out.put_slice(arg);
        out.put_slice(b"\r\n");
    }
}

/// Takes one whole frame off the front of `buf`, or `None` if more input is needed (then
/// `buf` is unchanged).
pub(crate) fn decode(buf: &mut BytesMut, max_bulk: usize) -> Result<Option<Frame>, Error> {
    let mut parser = Parser {
        buf: &buf[..],
        pos: 0,
        max_bulk,
    };
    match parser.frame(0)? {
        Some(shape) => {
            let len = parser.pos;
            let data = buf.split_to(len).freeze();
            Ok(Some(shape.build(&data)))
        }
        None => Ok(None),
    }
}

/// A frame located in the buffer, built into [`Frame`]s once complete (slices of one
/// `Bytes`, no copies).
enum Shape {
    Simple(usize, usize),
    Error(usize, usize),
    Integer(i64),
    Bulk(Option<(usize, usize)>),
    Array(Option<Vec<Self>>),
}

impl Shape {
    fn build(self, data: &Bytes) -> Frame {
        match self {
            Self::Simple(a, b) => Frame::Simple(data.slice(a..b)),
            Self::Error(a, b) => Frame::Error(data.slice(a..b)),
            Self::Integer(n) => Frame::Integer(n),
            Self::Bulk(range) => Frame::Bulk(range.map(|(a, b)| data.slice(a..b))),
            Self::Array(items) => {
                Frame::Array(items.map(|items| items.into_iter().map(|s| s.build(data)).collect()))
            }
        }
    }
}

struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
    max_bulk: usize,
}

impl Parser<'_> {
    /// The next line (without `\r\n`) as a range, or `None` if incomplete.
    fn line(&mut self) -> Result<Option<(usize, usize)>, Error> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let window = &rest[..rest.len().min(MAX_LINE + 2)];
        match window.windows(2).position(|w| w == b"\r\n") {
            Some(at) => {
                let range = (self.pos, self.pos + at);
                self.pos += at + 2;
                Ok(Some(range))
            }
            None if rest.len() > MAX_LINE + 2 => Err(Error::Protocol("line too long")),
            None => Ok(None),
        }
    }

    fn number(&self, (a, b): (usize, usize)) -> Result<i64, Error> {
        std::str::from_utf8(self.buf.get(a..b).unwrap_or_default())
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or(Error::Protocol("invalid number"))
    }

    fn frame(&mut self, depth: usize) -> Result<Option<Shape>, Error> {
        let Some(&marker) = self.buf.get(self.pos) else {
            return Ok(None);
        };
        self.pos += 1;
        let Some(line) = self.line()? else {
            return Ok(None);
        };
        Ok(Some(match marker {
            b'+' => Shape::Simple(line.0, line.1),
            b'-' => Shape::Error(line.0, line.1),
            b':' => Shape::Integer(self.number(line)?),
            b'$' => {
                let len = self.number(line)?;
                if len < 0 {
                    return Ok(Some(Shape::Bulk(None)));
                }
                let len = usize::try_from(len).map_err(|_| Error::Protocol("invalid length"))?;
                if len > self.max_bulk {
                    return Err(Error::Protocol("message larger than max_message_size"));
                }
                let end = self
                    .pos
                    .checked_add(len)
                    .ok_or(Error::Protocol("overflow"))?;
                if self.buf.len() < end + 2 {
                    return Ok(None);
                }
                if self.buf.get(end..end + 2) != Some(b"\r\n".as_slice()) {
                    return Err(Error::Protocol("bulk string without CRLF"));
                }
                let range = (self.pos, end);
                self.pos = end + 2;
                Shape::Bulk(Some(range))
            }
            b'*' => {
                let len = self.number(line)?;
                if len < 0 {
                    return Ok(Some(Shape::Array(None)));
                }
                let len = usize::try_from(len).map_err(|_| Error::Protocol("invalid length"))?;
                if len > MAX_ARRAY {
                    return Err(Error::Protocol("array too long"));
                }
                if depth >= MAX_DEPTH {
                    return Err(Error::Protocol("nested too deep"));
                }
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    match self.frame(depth + 1)? {
                        Some(item) => items.push(item),
                        None => return Ok(None),
                    }
                }
                Shape::Array(Some(items))
            }
            _ => return Err(Error::Protocol("unknown RESP type")),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Frame {
        Frame::Bulk(Some(Bytes::copy_from_slice(s.as_bytes())))
    }

    #[test]
    fn command_encoding() {
        let mut out = BytesMut::new();
        encode_command(&mut out, &["SUBSCRIBE", "a#", "b"]);
        assert_eq!(
            &out[..],
            b"*3\r\n$9\r\nSUBSCRIBE\r\n$2\r\na#\r\n$1\r\nb\r\n"
        );
    }

    #[test]
    fn decodes_pubsub_frames_split_at_every_byte() {
        let wire: &[u8] = b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*4\r\n$8\r\npmessage\r\n$3\r\np#*\r\n$3\r\np#x\r\n$5\r\nhe\r\nl\r\n+OK\r\n-ERR no\r\n$-1\r\n";
        let expected = vec![
            Frame::Array(Some(vec![bulk("subscribe"), bulk("a"), Frame::Integer(1)])),
            Frame::Array(Some(vec![
                bulk("pmessage"),
                bulk("p#*"),
                bulk("p#x"),
                bulk("he\r\nl"),
            ])),
            Frame::Simple(Bytes::from_static(b"OK")),
            Frame::Error(Bytes::from_static(b"ERR no")),
            Frame::Bulk(None),
        ];
        for split in 0..=wire.len() {
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for chunk in [&wire[..split], &wire[split..]] {
                buf.extend_from_slice(chunk);
                while let Some(frame) = decode(&mut buf, 1024).unwrap() {
                    got.push(frame);
                }
            }
            assert_eq!(got, expected, "split at {split}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn limits() {
        let mut buf = BytesMut::from(&b"$2000\r\n"[..]);
        assert!(decode(&mut buf, 1024).is_err());
        let mut buf = BytesMut::from(&b"*5000\r\n"[..]);
        assert!(decode(&mut buf, 1024).is_err());
        let mut buf = BytesMut::from(&b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"[..]);
        assert!(decode(&mut buf, 1024).is_err());
        let mut buf = BytesMut::from(&b"?x\r\n"[..]);
        assert!(decode(&mut buf, 1024).is_err());
        let mut buf = BytesMut::from(&b"$3\r\nabcd\r\n"[..]);
        assert!(decode(&mut buf, 1024).is_err());
        let mut buf = BytesMut::from(&b"$3\r\nab"[..]);
        assert_eq!(decode(&mut buf, 1024).unwrap(), None);
        assert_eq!(buf.len(), 6, "an incomplete frame stays in the buffer");
    }
}
