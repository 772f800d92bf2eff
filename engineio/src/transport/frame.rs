//! RFC 6455 frames as a server sees them: masked client frames in, unmasked server frames out.
//! Pure: bytes in, messages out; the connection task does the IO (`transport/websocket.rs`).
//!
//! Only what Engine.IO needs: no extensions are negotiated, so RSV bits are errors (5.2), and
//! the sizes are bounded by `maxHttpBufferSize` before anything is buffered (CVE-2016-10542).

use bytes::{Buf, Bytes, BytesMut};
use tokio_tungstenite::tungstenite::Utf8Bytes;

const OP_CONTINUATION: u8 = 0x0;
pub(crate) const OP_TEXT: u8 = 0x1;
pub(crate) const OP_BINARY: u8 = 0x2;
pub(crate) const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
pub(crate) const OP_PONG: u8 = 0xA;

/// A message, or a control frame, from the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    Text(Utf8Bytes),
    Binary(Bytes),
    Ping(Bytes),
    Pong,
    /// A close frame, with its status code if it had one.
    Close(Option<u16>),
}

/// Why the client's bytes are refused; each maps to the close code sent back (7.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// A frame the protocol forbids: 1002.
    Protocol(&'static str),
    /// A message over `maxHttpBufferSize`: 1009.
    TooBig,
    /// A text message (or close reason) that is not UTF-8: 1007.
    InvalidUtf8,
}

impl FrameError {
    pub(crate) fn close_code(self) -> u16 {
        match self {
            Self::Protocol(_) => 1002,
            Self::TooBig => 1009,
            Self::InvalidUtf8 => 1007,
        }
    }
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Protocol(why) => write!(f, "websocket protocol error: {why}"),
            Self::TooBig => f.write_str("websocket message too big"),
            Self::InvalidUtf8 => f.write_str("websocket text is not UTF-8"),
        }
    }
}

/// Reassembles client messages from the bytes read off the socket. Holds only the bytes of a
/// frame cut by a read and the fragments of an unfinished message: an idle connection's
/// reader owns no buffer.
#[derive(Debug)]
pub(crate) struct FrameReader {
    buf: BytesMut,
    /// The fragments of a message whose last frame has not come: (is text, bytes).
    message: Option<(bool, BytesMut)>,
    max_payload: usize,
}

struct Header {
    fin: bool,
    opcode: u8,
    len: usize,
    mask: [u8; 4],
    size: usize,
}

impl FrameReader {
    pub(crate) fn new(max_payload: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            message: None,
            max_payload,
        }
    }

    /// Appends bytes read from the socket.
    pub(crate) fn extend(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Frees the read buffer once it holds nothing (the messages cut from it keep their part).
    pub(crate) fn release(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            self.buf = BytesMut::new();
        }
    }

    /// The next complete message or control frame, `None` when more bytes are needed. After an
    /// error the connection must be closed: the stream cannot be resynchronised.
    pub(crate) fn next(&mut self) -> Result<Option<Incoming>, FrameError> {
        loop {
            let Some(header) = self.header()? else {
                return Ok(None);
            };
            if self.buf.len() < header.size + header.len {
                return Ok(None);
            }
            self.buf.advance(header.size);
            let mut payload = self.buf.split_to(header.len);
            unmask(&mut payload, header.mask);
            match header.opcode {
                OP_TEXT | OP_BINARY => {
                    let text = header.opcode == OP_TEXT;
                    if header.fin {
                        return finish(text, payload).map(Some);
                    }
                    self.message = Some((text, payload));
                }
                OP_CONTINUATION => {
                    let (text, mut parts) = self.message.take().ok_or(FrameError::Protocol(
                        "continuation frame without a message to continue",
                    ))?;
                    parts.unsplit(payload);
                    if header.fin {
                        return finish(text, parts).map(Some);
                    }
                    self.message = Some((text, parts));
                }
                OP_CLOSE => return close(&payload).map(Some),
                OP_PING => return Ok(Some(Incoming::Ping(payload.freeze()))),
                _ => return Ok(Some(Incoming::Pong)),
            }
        }
    }

    /// Parses and checks the header at the front of the buffer (5.2).
    fn header(&self) -> Result<Option<Header>, FrameError> {
        let b = &self.buf[..];
        if b.len() < 2 {
            return Ok(None);
        }
        let (fin, rsv, opcode) = (b[0] & 0x80 != 0, b[0] & 0x70, b[0] & 0x0F);
        if rsv != 0 {
            return Err(FrameError::Protocol("reserved bits set"));
        }
        if b[1] & 0x80 == 0 {
            return Err(FrameError::Protocol("unmasked client frame"));
        }
        let control = opcode & 0x08 != 0;
        match opcode {
            OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG => {}
            _ => return Err(FrameError::Protocol("unknown opcode")),
        }
        if matches!(opcode, OP_TEXT | OP_BINARY) && self.message.is_some() {
            return Err(FrameError::Protocol("new message inside a fragmented one"));
        }
        let (len, at) = match b[1] & 0x7F {
            126 if b.len() < 4 => return Ok(None),
            126 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() < 10 => return Ok(None),
            127 => {
                let len = u64::from_be_bytes(b[2..10].try_into().expect("8 bytes"));
                if len >> 63 != 0 {
                    return Err(FrameError::Protocol("payload length with the top bit set"));
                }
                (len, 10)
            }
            len => (u64::from(len), 2),
        };
        if control && (!fin || len > 125) {
            return Err(FrameError::Protocol(
                "control frame fragmented or over 125 bytes",
            ));
        }
        // Checked on the header, before any of the payload is buffered.
        let so_far = self.message.as_ref().map_or(0, |(_, parts)| parts.len());
        if !control && len.saturating_add(so_far as u64) > self.max_payload as u64 {
            return Err(FrameError::TooBig);
        }
        if b.len() < at + 4 {
            return Ok(None);
        }
        Ok(Some(Header {
            fin,
            opcode,
            len: len as usize,
            mask: b[at..at + 4].try_into().expect("4 bytes"),
            size: at + 4,
        }))
    }
}

fn finish(text: bool, payload: BytesMut) -> Result<Incoming, FrameError> {
    let payload = payload.freeze();
    if text {
        Utf8Bytes::try_from(payload)
            .map(Incoming::Text)
            .map_err(|_| FrameError::InvalidUtf8)
    } else {
        Ok(Incoming::Binary(payload))
    }
}

/// A close frame's body: nothing, or a valid status code and a UTF-8 reason (5.5.1, 7.4).
fn close(payload: &[u8]) -> Result<Incoming, FrameError> {
    match payload {
        [] => Ok(Incoming::Close(None)),
        [_] => Err(FrameError::Protocol("close frame with a 1-byte body")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !valid {
                return Err(FrameError::Protocol("invalid close code"));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(FrameError::InvalidUtf8);
            }
            Ok(Incoming::Close(Some(code)))
        }
    }
}

fn unmask(data: &mut [u8], mask: [u8; 4]) {
    // Word at a time: most payloads are short, but broadcasts of big ones are not rare.
    let word = u32::from_ne_bytes(mask);
    let mut chunks = data.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let v = u32::from_ne_bytes(chunk.try_into().expect("4 bytes")) ^ word;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i];
    }
}

/// Appends a server frame (final, unmasked) with `payload`.
pub(crate) fn put_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    put_header(out, opcode, payload.len());
    out.extend_from_slice(payload);
}

/// Appends the header of a server frame of `len` bytes.
pub(crate) fn put_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if len <= 0xFFFF {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Appends a close frame: no body when `code` is `None` (the client sees 1005).
pub(crate) fn put_close(out: &mut Vec<u8>, code: Option<u16>) {
    match code {
        Some(code) => put_frame(out, OP_CLOSE, &code.to_be_bytes()),
        None => put_frame(out, OP_CLOSE, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len <= 0xFFFF {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn read_all(bytes: &[u8], max: usize) -> Vec<Result<Incoming, FrameError>> {
        let mut reader = FrameReader::new(max);
        let mut out = Vec::new();
        // One byte at a time: every cut point of every frame is exercised.
        for b in bytes {
            reader.extend(std::slice::from_ref(b));
            loop {
                match reader.next() {
                    Ok(Some(m)) => out.push(Ok(m)),
                    Ok(None) => break,
                    Err(e) => {
                        out.push(Err(e));
                        return out;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn messages_of_every_length_encoding_arrive_whole() {
        let big = "x".repeat(70_000);
        let mut bytes = client_frame(true, OP_TEXT, b"4hello");
        bytes.extend(client_frame(true, OP_BINARY, &[1, 2, 3]));
        bytes.extend(client_frame(true, OP_TEXT, "é".repeat(100).as_bytes()));
        bytes.extend(client_frame(true, OP_TEXT, big.as_bytes()));
        let got = read_all(&bytes, 100_000);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], Ok(Incoming::Text("4hello".into())));
        assert_eq!(got[1], Ok(Incoming::Binary(Bytes::from_static(&[1, 2, 3]))));
        assert_eq!(got[2], Ok(Incoming::Text("é".repeat(100).into())));
        assert_eq!(got[3], Ok(Incoming::Text(big.into())));
    }

    #[test]
    fn fragments_join_with_control_frames_between() {
        let mut bytes = client_frame(false, OP_TEXT, b"4he");
        bytes.extend(client_frame(true, OP_PING, b"p"));
        bytes.extend(client_frame(false, OP_CONTINUATION, b"l"));
        bytes.extend(client_frame(true, OP_CONTINUATION, b"lo"));
        let got = read_all(&bytes, 100);
        assert_eq!(
            got,
            vec![
                Ok(Incoming::Ping(Bytes::from_static(b"p"))),
                Ok(Incoming::Text("4hello".into()))
            ]
        );
    }

    #[test]
    fn size_limit_is_checked_on_the_header_and_across_fragments() {
        // Only the header of a huge frame arrives: refused without waiting for the payload.
        let mut huge = vec![0x82, 0x80 | 127];
        huge.extend_from_slice(&(1u64 << 40).to_be_bytes());
        huge.extend_from_slice(&[0; 4]);
        assert_eq!(read_all(&huge, 1000), vec![Err(FrameError::TooBig)]);
        let mut bytes = client_frame(false, OP_BINARY, &[0; 600]);
        bytes.extend(client_frame(true, OP_CONTINUATION, &[0; 600]));
        assert_eq!(read_all(&bytes, 1000), vec![Err(FrameError::TooBig)]);
        // Exactly the limit is fine.
        let ok = client_frame(true, OP_BINARY, &[0; 1000]);
        assert!(matches!(read_all(&ok, 1000)[..], [Ok(Incoming::Binary(_))]));
    }

    #[test]
    fn protocol_violations_are_refused() {
        let cases: Vec<Vec<u8>> = vec![
            {
                let mut f = client_frame(true, OP_TEXT, b"a");
                f[0] |= 0x40; // RSV1
                f
            },
            {
                let mut f = client_frame(true, OP_TEXT, b"a");
                f[1] &= 0x7F; // unmasked
                f
            },
            client_frame(true, 0x3, b"a"), // reserved opcode
            client_frame(true, OP_CONTINUATION, b"a"), // nothing to continue
            client_frame(false, OP_PING, b"a"), // fragmented control
            client_frame(true, OP_PING, &[0; 126]), // control over 125
            client_frame(true, OP_CLOSE, &[3]), // 1-byte close body
            client_frame(true, OP_CLOSE, &1005u16.to_be_bytes()), // reserved code
            {
                let mut f = client_frame(false, OP_TEXT, b"a");
                f.extend(client_frame(true, OP_TEXT, b"b")); // new message mid-fragments
                f
            },
        ];
        for bytes in cases {
            let got = read_all(&bytes, 1000);
            assert!(
                matches!(got.last(), Some(Err(FrameError::Protocol(_)))),
                "{bytes:?} → {got:?}"
            );
            assert_eq!(FrameError::Protocol("").close_code(), 1002);
        }
    }

    #[test]
    fn invalid_utf8_is_1007() {
        let got = read_all(&client_frame(true, OP_TEXT, &[0x34, 0xFF, 0xFE]), 100);
        assert_eq!(got, vec![Err(FrameError::InvalidUtf8)]);
        assert_eq!(FrameError::InvalidUtf8.close_code(), 1007);
        let mut close = 1000u16.to_be_bytes().to_vec();
        close.push(0xFF);
        let got = read_all(&client_frame(true, OP_CLOSE, &close), 100);
        assert_eq!(got, vec![Err(FrameError::InvalidUtf8)]);
    }

    #[test]
    fn close_frames_carry_their_code() {
        let got = read_all(&client_frame(true, OP_CLOSE, &[]), 100);
        assert_eq!(got, vec![Ok(Incoming::Close(None))]);
        let mut body = 4000u16.to_be_bytes().to_vec();
        body.extend_from_slice(b"bye");
        let got = read_all(&client_frame(true, OP_CLOSE, &body), 100);
        assert_eq!(got, vec![Ok(Incoming::Close(Some(4000)))]);
    }

    #[test]
    fn server_frames_use_the_shortest_length() {
        for (len, header) in [(0, 2), (125, 2), (126, 4), (65_535, 4), (65_536, 10)] {
            let mut out = Vec::new();
            put_frame(&mut out, OP_BINARY, &vec![7; len]);
            assert_eq!(out.len(), header + len);
            assert_eq!(out[0], 0x82);
        }
        let mut out = Vec::new();
        put_close(&mut out, Some(1009));
        assert_eq!(out, [0x88, 2, 0x03, 0xF1]);
    }

    #[test]
    fn an_idle_reader_holds_no_buffer() {
        let mut reader = FrameReader::new(100);
        reader.extend(&client_frame(true, OP_TEXT, b"4x"));
        assert!(matches!(reader.next(), Ok(Some(Incoming::Text(_)))));
        reader.release();
        assert_eq!(reader.buf.capacity(), 0);
    }
}
