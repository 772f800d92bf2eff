//! Just enough RFC 6455 for the benchmarks: frame headers, masking, and a reader that parses the
//! frames of one `read` in place.
//!
//! Reads go into one scratch buffer per thread (both binaries run a single-threaded runtime), so
//! an idle connection owns no read buffer at all: only the bytes of a frame cut by a read are
//! kept on the connection until the rest arrives.

use std::cell::RefCell;
use std::io::{self, ErrorKind};

use tokio::io::Interest;
use tokio::net::TcpStream;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// The largest frame a reader accepts (the scratch buffer holds one whole frame).
pub const MAX_FRAME: usize = 1 << 20;
/// Bytes read per `read` call.
const READ_CHUNK: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_FRAME + READ_CHUNK + 16]);
}

/// Appends a frame header for a payload of `len` bytes.
fn put_header(out: &mut Vec<u8>, opcode: u8, len: usize, masked: bool) {
    let mask_bit = if masked { 0x80 } else { 0 };
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xFFFF {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Appends a server frame (unmasked) holding `payload`.
pub fn put_server_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    put_header(out, opcode, payload.len(), false);
    out.extend_from_slice(payload);
}

/// Appends a client frame (masked with `mask`) holding `payload`.
pub fn put_client_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    put_header(out, opcode, payload.len(), true);
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask);
}

/// Appends a masked client frame whose payload `write` appends; no copy of the payload is made.
pub fn put_client_frame_with(
    out: &mut Vec<u8>,
    opcode: u8,
    mask: [u8; 4],
    write: impl FnOnce(&mut Vec<u8>),
) {
    // Write the payload after the largest header a small frame may need, then fix the header.
    let frame_start = out.len();
    out.extend_from_slice(&[0; 8]);
    let payload_start = out.len();
    write(out);
    let len = payload_len_fixup(out, frame_start, payload_start, opcode);
    let payload_start = out.len() - len;
    out[payload_start - 4..payload_start].copy_from_slice(&mask);
    apply_mask(&mut out[payload_start..], mask);
}

/// Rewrites the 8 placeholder bytes before `payload_start` as the real header (2 or 4 bytes +
/// 4 mask bytes); larger payloads are moved. Returns the payload length.
fn payload_len_fixup(out: &mut Vec<u8>, frame_start: usize, payload_start: usize, op: u8) -> usize {
    let len = out.len() - payload_start;
    if len < 126 {
        // 2 + 4 bytes of header: drop two placeholder bytes.
        out[frame_start] = 0x80 | op;
        out[frame_start + 1] = 0x80 | len as u8;
        out.drain(frame_start + 2..frame_start + 4);
    } else if len <= 0xFFFF {
        out[frame_start] = 0x80 | op;
        out[frame_start + 1] = 0x80 | 126;
        out[frame_start + 2..frame_start + 4].copy_from_slice(&(len as u16).to_be_bytes());
    } else {
        let payload = out.split_off(payload_start);
        out.truncate(frame_start);
        put_header(out, op, payload.len(), true);
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&payload);
    }
    len
}

/// XORs `data` with the mask (RFC 6455 5.3), eight bytes at a time.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// One parsed frame header.
#[derive(Debug, Clone, Copy)]
struct Head {
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    header_len: usize,
    payload_len: usize,
}

fn protocol_error(what: &str) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, format!("websocket: {what}"))
}

/// Parses the frame header at the start of `buf`: `Ok(None)` if more bytes are needed.
fn parse_head(buf: &[u8]) -> io::Result<Option<Head>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    if buf[0] & 0x70 != 0 {
        return Err(protocol_error("reserved bits set"));
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0F;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut header_len) = match buf[1] & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut b = [0; 8];
            b.copy_from_slice(&buf[2..10]);
            let len = u64::from_be_bytes(b);
            (usize::try_from(len).unwrap_or(usize::MAX), 10)
        }
        n => (usize::from(n), 2),
    };
    if len > MAX_FRAME {
        return Err(protocol_error("frame too large"));
    }
    let mask = if masked {
        if buf.len() < header_len + 4 {
            return Ok(None);
        }
        let m = [
            buf[header_len],
            buf[header_len + 1],
            buf[header_len + 2],
            buf[header_len + 3],
        ];
        header_len += 4;
        Some(m)
    } else {
        None
    };
    Ok(Some(Head {
        fin,
        opcode,
        mask,
        header_len,
        payload_len: len,
    }))
}

/// What a read produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadStatus {
    /// Frames (maybe none) were handled; more may come.
    Open,
    /// The peer closed the TCP connection.
    Eof,
}

/// The per-connection part of a reader: the bytes of a frame not complete yet.
#[derive(Debug, Default)]
pub struct FrameReader {
    partial: Vec<u8>,
}

impl FrameReader {
    /// Whether the kept bytes hold a whole frame (then [`FrameReader::read_available`] handles
    /// it without reading).
    pub fn has_frame(&self) -> io::Result<bool> {
        Ok(parse_head(&self.partial)?
            .is_some_and(|h| self.partial.len() >= h.header_len + h.payload_len))
    }

    /// A reader that starts with bytes already read (those after an HTTP response head).
    pub fn with_partial(partial: Vec<u8>) -> Self {
        Self { partial }
    }

    /// Reads what `stream` has (without waiting) and calls `on_frame(opcode, payload)` for every
    /// complete frame, payload unmasked. `Err(WouldBlock)` when nothing was there.
    /// Fragmented messages are refused: no server here fragments small messages.
    pub fn read_available(
        &mut self,
        stream: &TcpStream,
        mut on_frame: impl FnMut(u8, &mut [u8]),
    ) -> io::Result<ReadStatus> {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let keep = self.partial.len();
            scratch[..keep].copy_from_slice(&self.partial);
            // Bytes that came with the handshake may hold whole frames: those go first.
            let buffered = self.has_frame()?;
            self.partial = Vec::new();
            let end = keep + READ_CHUNK;
            let n = if buffered {
                0
            } else {
                // A read shorter than asked drained the socket: its readiness is cleared right
                // away (by answering WouldBlock to `try_io`), which saves the WouldBlock read a
                // plain `try_read` loop needs. Data arriving meanwhile raises a new readiness
                // event, which clearing does not lose.
                let want = end - keep;
                let mut got = None;
                let read = stream.try_io(Interest::READABLE, || {
                    let n = stream.try_read(&mut scratch[keep..end])?;
                    got = Some(n);
                    if n > 0 && n < want {
                        Err(ErrorKind::WouldBlock.into())
                    } else {
                        Ok(())
                    }
                });
                match (got, read) {
                    (Some(0), _) => return Ok(ReadStatus::Eof),
                    (Some(n), _) => n,
                    (None, Err(e)) => {
                        self.partial.extend_from_slice(&scratch[..keep]);
                        return Err(e);
                    }
                    (None, Ok(())) => 0,
                }
            };
            let filled = keep + n;
            let mut pos = 0;
            while let Some(head) = parse_head(&scratch[pos..filled])? {
                let total = head.header_len + head.payload_len;
                if filled - pos < total {
                    // A frame bigger than one read: keep it and read on.
                    if total > scratch.len() {
                        return Err(protocol_error("frame too large"));
                    }
                    break;
                }
                if !head.fin || head.opcode == OP_CONTINUATION {
                    return Err(protocol_error("fragmented messages are not supported"));
                }
                let payload = &mut scratch[pos + head.header_len..pos + total];
                if let Some(mask) = head.mask {
                    apply_mask(payload, mask);
                }
                on_frame(head.opcode, payload);
                pos += total;
            }
            if pos < filled {
                self.partial.extend_from_slice(&scratch[pos..filled]);
            }
            Ok(ReadStatus::Open)
        })
    }
}

/// A small xorshift generator: masks, keys and ids for benchmarks (not for secrets).
#[derive(Debug, Clone, Copy)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn mask(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_ne_bytes()
    }

    /// `len` characters of the URL-safe base64 alphabet.
    pub fn token(&mut self, out: &mut Vec<u8>, len: usize) {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for _ in 0..len {
            out.push(ALPHABET[(self.next_u64() >> 58) as usize]);
        }
    }

    /// A `Sec-WebSocket-Key`: base64 of 16 bytes.
    pub fn ws_key(&mut self) -> String {
        const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut key = String::with_capacity(24);
        for _ in 0..22 {
            key.push(char::from(B64[(self.next_u64() >> 58) as usize]));
        }
        // 16 bytes = 128 bits: the last character carries 2 bits, then the padding.
        key.pop();
        key.push(char::from(B64[((self.next_u64() >> 62) << 4) as usize]));
        key.push_str("==");
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frame_with_matches_plain() {
        for len in [0, 5, 125, 126, 127, 1000, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mask = [1, 2, 3, 4];
            let mut a = Vec::new();
            put_client_frame(&mut a, OP_TEXT, &payload, mask);
            let mut b = vec![9];
            put_client_frame_with(&mut b, OP_TEXT, mask, |out| out.extend_from_slice(&payload));
            assert_eq!(a, b[1..], "len {len}");
            let head = parse_head(&a).unwrap().unwrap();
            assert_eq!(head.payload_len, len);
            let mut body = a[head.header_len..].to_vec();
            apply_mask(&mut body, head.mask.unwrap());
            assert_eq!(body, payload);
        }
    }

    #[test]
    fn key_is_valid() {
        let mut rng = Rng::new(7);
        for _ in 0..100 {
            let key = rng.ws_key();
            assert_eq!(key.len(), 24);
            assert!(key.ends_with("=="));
            // the last data character carries only two bits: A, Q, g or w
            assert!(matches!(key.as_bytes()[21], b'A' | b'Q' | b'g' | b'w'));
        }
    }
}
