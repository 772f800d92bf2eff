//! The msgpack Socket.IO parser (socket.io-msgpack-parser 3.0.2 compatible; protocol.md 2.9).
//!
//! One packet is one msgpack map `{type, nsp, data?, id?}` carried in one Engine.IO binary
//! message. Binary values are native msgpack `bin`: no placeholders, no attachments, no types
//! 5 / 6.
//!
//! Node's parser is notepack.io 2.2 (the version socket.io-msgpack-parser 3.0.2 pins), and this
//! module reads and writes msgpack the way it does:
//! - reading: `d4 00 xx` (fixext 1, type 0) is JS `undefined`: an absent `data` / `id`, a `null`
//!   array element, a dropped map entry. `c7`/`c8`/`c9` with type 0 is an `ArrayBuffer`, i.e.
//!   [`Value::Binary`]. Other ext values stay [`Value::Ext`]. float32 becomes [`Value::F64`] (JS
//!   numbers are doubles). Strings with invalid UTF-8 are decoded lossily (U+FFFD), as Node's
//!   `buffer.toString("utf8")` does. Maps follow JS object semantics (keys converted to strings,
//!   see [`crate::value`]).
//! - writing: smallest integer form (positive values never use the signed forms), doubles that
//!   hold an integer written as integers (JS cannot tell `1.0` from `1`), other numbers as
//!   float64, `bin` 8/16/32 for binary, `str` 8 for 32..=255 bytes.

use bytes::{BufMut, Bytes, BytesMut};

use crate::Value;
use crate::error::ParseError;
use crate::packet::{Packet, PacketType};
use crate::parser::js_safe_uint;
use crate::value::{MAX_DEPTH, js_key_string, js_object_entries};

/// Decodes one msgpack Socket.IO packet (socket.io-msgpack-parser `Decoder.add` +
/// `checkPacket`).
///
/// Rules: the whole input is one map (trailing bytes are an error); `type` an integer 0..=4;
/// `nsp` a string; `id` absent or an integer in `0..=2^53-1`; `data` by type: CONNECT absent or
/// map, DISCONNECT absent, CONNECT_ERROR string or map, EVENT / ACK an array. Other keys (the JS
/// client also sends `options`) are ignored; a repeated key takes its last value.
///
/// Like socket.io-msgpack-parser, the EVENT array is **not** checked for a non-empty list, a
/// string or number name, or a reserved name (the default parser checks those): the socket
/// layer must check the event name itself ([`crate::packet::is_valid_event_data`]). Unlike
/// Node, a negative `id` is refused.
///
/// # Errors
///
/// Any malformed or invalid packet; nesting deeper than [`MAX_DEPTH`].
pub fn decode(data: &[u8]) -> Result<Packet, ParseError> {
    let mut r = Reader { buf: data, pos: 0 };
    let marker = r.byte()?;
    let len = match marker {
        0x80..=0x8f => usize::from(marker & 0x0f),
        0xde => usize::from(r.u16()?),
        0xdf => r.len32()?,
        _ => return Err(ParseError::InvalidMsgpack("packet is not a map")),
    };
    let (mut kind, mut nsp, mut payload, mut id) = (None, None, None, None);
    for _ in 0..len {
        let key = r.item(1)?;
        let value = r.item(1)?;
        let key = match key {
            Item::Value(Value::String(s)) => s.into_str().unwrap_or_default(),
            Item::Value(other) => js_key_string(&other),
            Item::Undefined => "undefined".to_owned(),
        };
        // JS object: the last assignment wins.
        match key.as_str() {
            "type" => kind = Some(value),
            "nsp" => nsp = Some(value),
            "data" => payload = Some(value),
            "id" => id = Some(value),
            _ => {}
        }
    }
    if r.pos != data.len() {
        return Err(ParseError::InvalidMsgpack("trailing bytes"));
    }

    let kind = match kind {
        Some(Item::Value(v)) => js_safe_uint(&v)
            .flatten()
            .filter(|&n| n <= 4)
            .and_then(|n| u8::try_from(n).ok())
            .and_then(PacketType::from_u8),
        _ => None,
    }
    .ok_or(ParseError::UnknownType)?;
    let nsp = match nsp {
        Some(Item::Value(Value::String(s))) => s.into_str().unwrap_or_default(),
        _ => return Err(ParseError::InvalidNamespace),
    };
    let data = match payload {
        Some(Item::Value(v)) => Some(v),
        Some(Item::Undefined) | None => None,
    };
    let valid = match (kind, &data) {
        (PacketType::Connect | PacketType::Disconnect, None) => true,
        (PacketType::Connect, Some(v)) => v.is_map(),
        (PacketType::ConnectError, Some(v)) => v.is_str() || v.is_map(),
        (PacketType::Event | PacketType::Ack, Some(v)) => v.is_array(),
        _ => false,
    };
    if !valid {
        return Err(ParseError::InvalidPayload);
    }
    let id = match id {
        Some(Item::Value(v)) => Some(js_safe_uint(&v).flatten().ok_or(ParseError::InvalidAckId)?),
        Some(Item::Undefined) | None => None,
    };
    Ok(Packet {
        kind,
        nsp,
        id,
        data,
    })
}

/// Encodes `packet` as Node's socket.io-msgpack-parser does, keys in the order Node's packet
/// objects have them: `id, type, data, nsp` for an ACK (`Socket.ack`), `type, data, id, nsp`
/// otherwise (`Socket.emit`, CONNECT reply, CONNECT_ERROR, DISCONNECT). Absent `data` / `id` are
/// left out (Node writes an undefined CONNECT-reply `pid` as `d4 00 00`; omitting it decodes the
/// same). `BinaryEvent` / `BinaryAck` are written as types 2 / 3; an empty namespace as `"/"`.
#[must_use]
pub fn encode(packet: &Packet) -> Bytes {
    let mut out = BytesMut::with_capacity(64);
    let kind = packet.kind.without_binary();
    let nsp = if packet.nsp.is_empty() {
        "/"
    } else {
        packet.nsp.as_str()
    };
    let fields = 2 + usize::from(packet.data.is_some()) + usize::from(packet.id.is_some());
    write_map_len(&mut out, fields);
    let write_id = |out: &mut BytesMut| {
        if let Some(id) = packet.id {
            write_str(out, "id");
            write_uint(out, id);
        }
    };
    if kind == PacketType::Ack {
        write_id(&mut out);
    }
    write_str(&mut out, "type");
    write_uint(&mut out, u64::from(kind.as_u8()));
    if let Some(data) = &packet.data {
        write_str(&mut out, "data");
        write_value(&mut out, data);
    }
    if kind != PacketType::Ack {
        write_id(&mut out);
    }
    write_str(&mut out, "nsp");
    write_str(&mut out, nsp);
    out.freeze()
}

/// Reads one msgpack value with the same rules as [`decode`] (JS `undefined` at top level
/// becomes [`Value::Nil`]). For other notepack peers, e.g. cluster adapters.
///
/// # Errors
///
/// Malformed or truncated input, trailing bytes, nesting deeper than [`MAX_DEPTH`].
pub fn read_value(data: &[u8]) -> Result<Value, ParseError> {
    let mut r = Reader { buf: data, pos: 0 };
    let item = r.item(0)?;
    if r.pos != data.len() {
        return Err(ParseError::InvalidMsgpack("trailing bytes"));
    }
    Ok(match item {
        Item::Value(v) => v,
        Item::Undefined => Value::Nil,
    })
}

/// Appends `value` in notepack's encoding (see the module docs).
///
/// Collections longer than `u32::MAX` cannot be represented in msgpack and are truncated.
pub fn write_value(out: &mut BytesMut, value: &Value) {
    match value {
        Value::Nil => out.put_u8(0xc0),
        Value::Boolean(b) => out.put_u8(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => write_uint(out, u),
            (None, Some(i)) => write_sint(out, i),
            (None, None) => out.put_u8(0xc0),
        },
        Value::F32(f) => write_number(out, f64::from(*f)),
        Value::F64(f) => write_number(out, *f),
        Value::String(s) => match s.as_str() {
            Some(s) => write_str(out, s),
            None => write_str(out, &String::from_utf8_lossy(s.as_bytes())),
        },
        Value::Binary(b) => {
            let b = b.get(..max_len(b.len())).unwrap_or_default();
            write_len(out, b.len(), None, [0xc4, 0xc5, 0xc6]);
            out.put_slice(b);
        }
        Value::Array(items) => {
            let items = items.get(..max_len(items.len())).unwrap_or_default();
            write_len(out, items.len(), Some((0x90, 16)), [0xdc, 0xdc, 0xdd]);
            for item in items {
                write_value(out, item);
            }
        }
        Value::Map(entries) => {
            let entries = entries.get(..max_len(entries.len())).unwrap_or_default();
            write_map_len(out, entries.len());
            for (k, v) in entries {
                write_value(out, k);
                write_value(out, v);
            }
        }
        Value::Ext(ty, data) => {
            let data = data.get(..max_len(data.len())).unwrap_or_default();
            let fixed = match data.len() {
                1 => Some(0xd4),
                2 => Some(0xd5),
                4 => Some(0xd6),
                8 => Some(0xd7),
                16 => Some(0xd8),
                _ => None,
            };
            match fixed {
                Some(marker) => out.put_u8(marker),
                None => write_len(out, data.len(), None, [0xc7, 0xc8, 0xc9]),
            }
            out.put_i8(*ty);
            out.put_slice(data);
        }
    }
}

fn max_len(len: usize) -> usize {
    len.min(u32::MAX as usize)
}

/// A length header: the fix form `(base, limit)` if given and `len < limit`, else the 8/16/32
/// bit forms (`markers`; an 8-bit form equal to the 16-bit one means "no 8-bit form").
fn write_len(out: &mut BytesMut, len: usize, fix: Option<(u8, usize)>, markers: [u8; 3]) {
    match fix {
        Some((base, limit)) if len < limit => {
            // len < limit <= 32: fits in the low bits.
            out.put_u8(base | u8::try_from(len).unwrap_or(0));
            return;
        }
        _ => {}
    }
    if markers[0] != markers[1]
        && let Ok(n) = u8::try_from(len)
    {
        out.put_u8(markers[0]);
        out.put_u8(n);
    } else if let Ok(n) = u16::try_from(len) {
        out.put_u8(markers[1]);
        out.put_u16(n);
    } else {
        out.put_u8(markers[2]);
        out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    }
}

fn write_map_len(out: &mut BytesMut, len: usize) {
    write_len(out, len, Some((0x80, 16)), [0xde, 0xde, 0xdf]);
}

fn write_str(out: &mut BytesMut, s: &str) {
    let b = s.as_bytes();
    let b = b.get(..max_len(b.len())).unwrap_or_default();
    write_len(out, b.len(), Some((0xa0, 32)), [0xd9, 0xda, 0xdb]);
    out.put_slice(b);
}

/// notepack: positive fixint, uint 8, 16, 32, 64.
fn write_uint(out: &mut BytesMut, n: u64) {
    if let Ok(b) = u8::try_from(n) {
        if b < 0x80 {
            out.put_u8(b);
        } else {
            out.put_u8(0xcc);
            out.put_u8(b);
        }
    } else if let Ok(n) = u16::try_from(n) {
        out.put_u8(0xcd);
        out.put_u16(n);
    } else if let Ok(n) = u32::try_from(n) {
        out.put_u8(0xce);
        out.put_u32(n);
    } else {
        out.put_u8(0xcf);
        out.put_u64(n);
    }
}

/// notepack: non-negative as [`write_uint`], then negative fixint, int 8, 16, 32, 64.
fn write_sint(out: &mut BytesMut, n: i64) {
    if let Ok(u) = u64::try_from(n) {
        write_uint(out, u);
    } else if n >= -32 {
        out.put_i8(i8::try_from(n).unwrap_or(0));
    } else if let Ok(n) = i8::try_from(n) {
        out.put_u8(0xd0);
        out.put_i8(n);
    } else if let Ok(n) = i16::try_from(n) {
        out.put_u8(0xd1);
        out.put_i16(n);
    } else if let Ok(n) = i32::try_from(n) {
        out.put_u8(0xd2);
        out.put_i32(n);
    } else {
        out.put_u8(0xd3);
        out.put_i64(n);
    }
}

/// notepack: an integral finite number is written as an integer (`-0` as `0`), anything else
/// as float64. Integers beyond the 64-bit ranges, which notepack writes wrapped, are written as
/// float64 here.
fn write_number(out: &mut BytesMut, f: f64) {
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    const MINUS_TWO_63: f64 = -9_223_372_036_854_775_808.0;
    if f.is_finite() && f.fract() == 0.0 {
        // Both casts are exact: integral and in range.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        if (0.0..TWO_64).contains(&f) {
            return write_uint(out, f as u64);
        } else if (MINUS_TWO_63..0.0).contains(&f) {
            return write_sint(out, f as i64);
        }
    }
    out.put_u8(0xcb);
    out.put_f64(f);
}

/// A decoded msgpack item: a value, or JS `undefined` (`d4 00 xx`).
enum Item {
    Value(Value),
    Undefined,
}

/// A bounds-checked cursor: every read either consumes input or fails.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

const TRUNCATED: ParseError = ParseError::InvalidMsgpack("truncated");

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        let end = self.pos.checked_add(n).ok_or(TRUNCATED)?;
        let bytes = self.buf.get(self.pos..end).ok_or(TRUNCATED)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ParseError> {
        self.take(N)?.try_into().map_err(|_| TRUNCATED)
    }

    fn byte(&mut self) -> Result<u8, ParseError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, ParseError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, ParseError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn len32(&mut self) -> Result<usize, ParseError> {
        usize::try_from(self.u32()?).map_err(|_| TRUNCATED)
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn string(&mut self, len: usize) -> Result<Value, ParseError> {
        let bytes = self.take(len)?;
        Ok(Value::from(String::from_utf8_lossy(bytes).into_owned()))
    }

    fn ext(&mut self, len: usize, variable: bool) -> Result<Item, ParseError> {
        let ty = i8::from_be_bytes(self.array()?);
        let data = self.take(len)?;
        Ok(Item::Value(match (ty, variable, len) {
            // notepack 2: ext 8/16/32 of type 0 is an ArrayBuffer.
            (0, true, _) => Value::Binary(data.to_vec()),
            // notepack 2: fixext 1 of type 0 is `undefined`.
            (0, false, 1) => return Ok(Item::Undefined),
            _ => Value::Ext(ty, data.to_vec()),
        }))
    }

    /// One item at nesting `depth` (the enclosing containers).
    fn item(&mut self, depth: usize) -> Result<Item, ParseError> {
        let marker = self.byte()?;
        let value = match marker {
            0x00..=0x7f => Value::from(marker),
            0x80..=0x8f => return self.map(usize::from(marker & 0x0f), depth),
            0x90..=0x9f => return self.list(usize::from(marker & 0x0f), depth),
            0xa0..=0xbf => self.string(usize::from(marker & 0x1f))?,
            0xc0 => Value::Nil,
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xc4 => {
                let len = usize::from(self.byte()?);
                Value::Binary(self.take(len)?.to_vec())
            }
            0xc5 => {
                let len = usize::from(self.u16()?);
                Value::Binary(self.take(len)?.to_vec())
            }
            0xc6 => {
                let len = self.len32()?;
                Value::Binary(self.take(len)?.to_vec())
            }
            0xc7 => {
                let len = usize::from(self.byte()?);
                return self.ext(len, true);
            }
            0xc8 => {
                let len = usize::from(self.u16()?);
                return self.ext(len, true);
            }
            0xc9 => {
                let len = self.len32()?;
                return self.ext(len, true);
            }
            0xca => Value::F64(f64::from(f32::from_be_bytes(self.array()?))),
            0xcb => Value::F64(f64::from_be_bytes(self.array()?)),
            0xcc => Value::from(self.byte()?),
            0xcd => Value::from(self.u16()?),
            0xce => Value::from(self.u32()?),
            0xcf => Value::from(u64::from_be_bytes(self.array()?)),
            0xd0 => Value::from(i8::from_be_bytes(self.array()?)),
            0xd1 => Value::from(i16::from_be_bytes(self.array()?)),
            0xd2 => Value::from(i32::from_be_bytes(self.array()?)),
            0xd3 => Value::from(i64::from_be_bytes(self.array()?)),
            0xd4 => return self.ext(1, false),
            0xd5 => return self.ext(2, false),
            0xd6 => return self.ext(4, false),
            0xd7 => return self.ext(8, false),
            0xd8 => return self.ext(16, false),
            0xd9 => {
                let len = usize::from(self.byte()?);
                self.string(len)?
            }
            0xda => {
                let len = usize::from(self.u16()?);
                self.string(len)?
            }
            0xdb => {
                let len = self.len32()?;
                self.string(len)?
            }
            0xdc => {
                let len = usize::from(self.u16()?);
                return self.list(len, depth);
            }
            0xdd => {
                let len = self.len32()?;
                return self.list(len, depth);
            }
            0xde => {
                let len = usize::from(self.u16()?);
                return self.map(len, depth);
            }
            0xdf => {
                let len = self.len32()?;
                return self.map(len, depth);
            }
            0xe0..=0xff => Value::from(i8::from_be_bytes([marker])),
            0xc1 => return Err(ParseError::InvalidMsgpack("reserved marker 0xc1")),
        };
        Ok(Item::Value(value))
    }

    fn list(&mut self, len: usize, depth: usize) -> Result<Item, ParseError> {
        let depth = nested(depth)?;
        // Every element takes at least one byte: never reserve more than the input can hold.
        let mut items = Vec::with_capacity(len.min(self.remaining()));
        for _ in 0..len {
            items.push(match self.item(depth)? {
                Item::Value(v) => v,
                // `undefined` in an array is written back as `null` (notepack 3, JSON).
                Item::Undefined => Value::Nil,
            });
        }
        Ok(Item::Value(Value::Array(items)))
    }

    fn map(&mut self, len: usize, depth: usize) -> Result<Item, ParseError> {
        let depth = nested(depth)?;
        let mut entries = Vec::with_capacity(len.min(self.remaining() / 2));
        for _ in 0..len {
            let key = match self.item(depth)? {
                Item::Value(Value::String(s)) => s.into_str().unwrap_or_default(),
                Item::Value(other) => js_key_string(&other),
                Item::Undefined => "undefined".to_owned(),
            };
            let value = self.item(depth)?;
            entries.push((key, value));
        }
        // JS object semantics; entries whose value is `undefined` are dropped (as
        // JSON.stringify and notepack 3 do).
        let entries = js_object_entries(entries)
            .into_iter()
            .filter_map(|(k, v)| match v {
                Item::Value(v) => Some((Value::from(k), v)),
                Item::Undefined => None,
            })
            .collect();
        Ok(Item::Value(Value::Map(entries)))
    }
}

/// One more level of nesting, refused past [`MAX_DEPTH`].
fn nested(depth: usize) -> Result<usize, ParseError> {
    if depth >= MAX_DEPTH {
        return Err(ParseError::InvalidMsgpack("nested too deep"));
    }
    Ok(depth + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn to_hex(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::from(k), v))
                .collect(),
        )
    }

    fn from_json(text: &str) -> Value {
        crate::value::from_json_str(text).unwrap()
    }

    fn write(v: &Value) -> String {
        let mut out = BytesMut::new();
        write_value(&mut out, v);
        to_hex(&out)
    }

    #[test]
    fn value_encoding_like_notepack() {
        // Expected bytes are notepack.io 2.2.0 `encode` output.
        let cases: Vec<(Value, &str)> = vec![
            (Value::Nil, "c0"),
            (Value::Boolean(true), "c3"),
            (Value::Boolean(false), "c2"),
            (Value::from(0), "00"),
            (Value::from(127), "7f"),
            (Value::from(128), "cc80"),
            (Value::from(255), "ccff"),
            (Value::from(256), "cd0100"),
            (Value::from(65535), "cdffff"),
            (Value::from(65536), "ce00010000"),
            (Value::from(4_294_967_295u64), "ceffffffff"),
            (Value::from(4_294_967_296u64), "cf0000000100000000"),
            (Value::from(-1), "ff"),
            (Value::from(-32), "e0"),
            (Value::from(-33), "d0df"),
            (Value::from(-128), "d080"),
            (Value::from(-129), "d1ff7f"),
            (Value::from(-32768), "d18000"),
            (Value::from(-32769), "d2ffff7fff"),
            (Value::from(-2_147_483_648i64), "d280000000"),
            (Value::from(-2_147_483_649i64), "d3ffffffff7fffffff"),
            (Value::F64(1.0), "01"),
            (Value::F64(-0.0), "00"),
            (Value::F64(-1.0), "ff"),
            (Value::F64(300.0), "cd012c"),
            (Value::F64(1.5), "cb3ff8000000000000"),
            (Value::F64(f64::NAN), "cb7ff8000000000000"),
            (Value::F64(f64::INFINITY), "cb7ff0000000000000"),
            (Value::F64(1e300), "cb7e37e43c8800759c"),
            (Value::F32(0.5), "cb3fe0000000000000"),
            (Value::from(""), "a0"),
            (Value::from("a"), "a161"),
            (Value::from("x".repeat(31)), "bf"),
            (Value::from("é"), "a2c3a9"),
            (Value::Binary(vec![1, 2, 3]), "c403010203"),
            (Value::Binary(vec![]), "c400"),
            (Value::Array(vec![]), "90"),
            (
                Value::Array(vec![Value::from(1), Value::from("a")]),
                "9201a161",
            ),
            (map(vec![("a", Value::from(1))]), "81a16101"),
            (Value::Ext(0, vec![0]), "d40000"),
            (
                Value::Ext(0, vec![0, 0, 1, 2, 3, 4, 5, 6]),
                "d7000000010203040506",
            ),
            (Value::Ext(5, vec![1, 2, 3]), "c7030501 0203".trim()),
        ];
        for (v, expected) in cases {
            let expected: String = expected.chars().filter(|c| !c.is_whitespace()).collect();
            let got = write(&v);
            if expected == "bf" {
                assert!(got.starts_with("bf"), "{v:?}");
            } else {
                assert_eq!(got, expected, "{v:?}");
            }
        }
        // Length forms.
        assert!(write(&Value::from("x".repeat(32))).starts_with("d920"));
        assert!(write(&Value::from("x".repeat(256))).starts_with("da0100"));
        assert!(write(&Value::from("x".repeat(65536))).starts_with("db00010000"));
        assert!(write(&Value::Binary(vec![0; 256])).starts_with("c50100"));
        assert!(write(&Value::Binary(vec![0; 65536])).starts_with("c600010000"));
        assert!(write(&Value::Array(vec![Value::Nil; 15])).starts_with("9f"));
        assert!(write(&Value::Array(vec![Value::Nil; 16])).starts_with("dc0010"));
        assert!(write(&Value::Array(vec![Value::Nil; 65536])).starts_with("dd00010000"));
        let big_map = Value::Map((0..16).map(|i| (Value::from(i), Value::Nil)).collect());
        assert!(write(&big_map).starts_with("de0010"));
        assert!(write(&Value::Ext(1, vec![0; 3])).starts_with("c70301"));
        assert!(write(&Value::Ext(1, vec![0; 300])).starts_with("c8012c01"));
    }

    /// socket.io-msgpack-parser 3.0.2 (notepack.io 2.2.0) encoding of an event with these
    /// values, captured from Node 20.
    #[test]
    fn values_match_node_golden() {
        let mut data = vec![Value::from("n")];
        data.extend(
            [
                0i64,
                127,
                128,
                255,
                256,
                65535,
                65536,
                4_294_967_295,
                4_294_967_296,
            ]
            .into_iter()
            .chain([
                -1,
                -32,
                -33,
                -128,
                -129,
                -32768,
                -32769,
                -2_147_483_648,
                -2_147_483_649,
            ])
            .map(Value::from),
        );
        data.extend(
            [
                1.5,
                -0.0,
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                2f64.powi(53),
                -(2f64.powi(53)),
            ]
            .into_iter()
            .chain([2f64.powi(63), 2f64.powi(64) - 2048.0, 0.1])
            .map(Value::F64),
        );
        let p = Packet::event("/", Value::Array(data));
        assert_eq!(
            to_hex(&encode(&p)),
            concat!(
                "83a47479706502a464617461dc001da16e007fcc80ccffcd0100cdffffce00010000ceffffffff",
                "cf0000000100000000ffe0d0dfd080d1ff7fd18000d2ffff7fffd280000000d3ffffffff7fffffff",
                "cb3ff800000000000000cb7ff8000000000000cb7ff0000000000000cbfff0000000000000",
                "cf0020000000000000d3ffe0000000000000cf8000000000000000cffffffffffffff800",
                "cb3fb999999999999aa36e7370a12f"
            )
        );
        // Strings, null, booleans, empty and nested containers.
        let x31 = "x".repeat(31);
        let x32 = "x".repeat(32);
        let data = from_json(&format!(
            r#"["s","","{x31}","{x32}","é",null,true,false,{{}},[],{{"a":1,"b":[1,{{"c":null}}]}}]"#
        ));
        assert_eq!(
            to_hex(&encode(&Packet::event("/", data))),
            concat!(
                "83a47479706502a4646174619ba173a0bf78787878787878787878787878787878787878787878",
                "787878787878787878d9207878787878787878787878787878787878787878787878787878787878",
                "787878a2c3a9c0c3c2809082a16101a162920181a163c0a36e7370a12f"
            )
        );
    }

    #[test]
    fn packets_like_node() {
        // Node socket.io 4.8.4 + socket.io-msgpack-parser 3.0.2: `socket.emit("hello", 1)`.
        let p = Packet::event("/", Value::Array(vec!["hello".into(), 1.into()]));
        assert_eq!(
            to_hex(&encode(&p)),
            "83a474797065 02 a46461746192a568656c6c6f01 a36e7370a12f".replace(' ', "")
        );
        // Ack reply: `id, type, data, nsp`.
        let p = Packet::ack("/", 5, Value::Array(vec![Value::Binary(vec![1])]));
        assert_eq!(
            to_hex(&encode(&p)),
            "84a2696405 a474797065 03 a464617461 91c40101 a36e7370a12f".replace(' ', "")
        );
        // Event with ack id: `type, data, id, nsp`.
        let p = Packet::event("/admin", Value::Array(vec!["a".into()])).with_id(300);
        assert_eq!(
            to_hex(&encode(&p)),
            "84a474797065 02 a464617461 91a161 a26964 cd012c a36e7370 a62f61646d696e"
                .replace(' ', "")
        );
        // CONNECT reply without pid; DISCONNECT.
        let p = Packet::connect("/", Some(map(vec![("sid", "abc".into())])));
        assert_eq!(
            to_hex(&encode(&p)),
            "83a474797065 00 a464617461 81a3736964a3616263 a36e7370a12f".replace(' ', "")
        );
        assert_eq!(
            to_hex(&encode(&Packet::disconnect("/"))),
            "82a47479706501a36e7370a12f"
        );
    }

    #[test]
    fn roundtrips() {
        let packets = [
            Packet::connect("/", None),
            Packet::connect("/admin", Some(map(vec![("token", "abc".into())]))),
            Packet::disconnect("/x"),
            Packet::event(
                "/",
                Value::Array(vec![
                    "e".into(),
                    Value::Binary(vec![1, 2]),
                    Value::F64(0.5),
                    Value::Nil,
                ]),
            )
            .with_id(9_007_199_254_740_991),
            Packet::ack("/", 0, Value::Array(vec![])),
            Packet::connect_error("/", map(vec![("message", "no".into())])),
            Packet::connect_error("/", "no".into()),
            Packet::event("/", Value::Array(vec![])),
        ];
        for p in packets {
            assert_eq!(decode(&encode(&p)), Ok(p.clone()), "{p:?}");
        }
    }

    #[test]
    fn decode_node_client_forms() {
        // socket.io-client + msgpack parser: CONNECT without auth sends `data: undefined`.
        let b = hex("83 a474797065 00 a464617461 d40000 a36e7370 a12f");
        assert_eq!(decode(&b), Ok(Packet::connect("/", None)));
        // emit with `options: {compress: true}` and an ack id: extra key ignored.
        let b = hex(
            "85 a474797065 02 a464617461 92a161 01 a76f7074696f6e73 81a8636f6d7072657373c3 a26964 07 a36e7370 a12f",
        );
        let p = decode(&b).unwrap();
        assert_eq!(
            p,
            Packet::event("/", Value::Array(vec!["a".into(), 1.into()])).with_id(7)
        );
        // `type` and `id` written as float64 (JS numbers): accepted by Node's isInteger.
        let b = hex("83 a474797065 cb4000000000000000 a36e7370 a12f a26964 cb4014000000000000");
        assert_eq!(
            decode(&b).map(|p| (p.kind, p.id)),
            Err(ParseError::InvalidPayload)
        );
        let b = hex(
            "84 a474797065 cb4008000000000000 a464617461 90 a36e7370 a12f a26964 cb4014000000000000",
        );
        assert_eq!(
            decode(&b).map(|p| (p.kind, p.id)),
            Ok((PacketType::Ack, Some(5)))
        );
        // ArrayBuffer (ext 8, type 0) is binary; undefined in arrays is null, in maps dropped.
        let b = hex(
            "83 a474797065 02 a464617461 94 a161 c7020001 02 d40000 82a178d40000a17901 a36e7370 a12f",
        );
        assert_eq!(
            decode(&b).unwrap().data,
            Some(Value::Array(vec![
                "a".into(),
                Value::Binary(vec![1, 2]),
                Value::Nil,
                map(vec![("y", 1.into())])
            ]))
        );
        // Repeated key: last wins. Integer key becomes a string key; index keys first.
        let b = hex("83 a474797065 00 a464617461 83 a16201 0102 a16203 a36e7370 a12f");
        assert_eq!(
            decode(&b).unwrap().data,
            Some(map(vec![("1", 2.into()), ("b", 3.into())]))
        );
        // Legacy Date (fixext 8 type 0) and unknown ext types stay Ext.
        let b =
            hex("83 a474797065 02 a464617461 93 a161 d700 0000018c00000000 d5010102 a36e7370 a12f");
        let data = decode(&b).unwrap().data.unwrap();
        let date = Value::Ext(0, hex("0000018c00000000"));
        assert_eq!(
            data,
            Value::Array(vec!["a".into(), date, Value::Ext(1, vec![1, 2])])
        );
        // Invalid UTF-8 is decoded lossily, as Buffer.toString does.
        let b = hex("83 a474797065 02 a464617461 91 a2ff61 a36e7370 a12f");
        assert_eq!(
            decode(&b).unwrap().data,
            Some(Value::Array(vec!["\u{fffd}a".into()]))
        );
        // float32 becomes a double.
        let b = hex("83 a474797065 03 a464617461 91 ca3fc00000 a36e7370 a12f");
        assert_eq!(
            decode(&b).unwrap().data,
            Some(Value::Array(vec![Value::F64(1.5)]))
        );
        // Reserved or odd event names pass the msgpack parser (as in Node).
        let b = hex("83 a474797065 02 a464617461 91 aa646973636f6e6e656374 a36e7370 a12f");
        assert_eq!(decode(&b).unwrap().event_name(), Some("disconnect"));
    }

    #[test]
    fn decode_rejections() {
        use ParseError::*;
        let cases: &[(&str, ParseError)] = &[
            ("", InvalidMsgpack("truncated")),
            ("c0", InvalidMsgpack("packet is not a map")),
            ("92 00 a12f", InvalidMsgpack("packet is not a map")),
            ("a3616263", InvalidMsgpack("packet is not a map")),
            // trailing bytes
            (
                "82 a474797065 00 a36e7370 a12f 00",
                InvalidMsgpack("trailing bytes"),
            ),
            // truncated
            ("82 a474797065 00 a36e7370 a1", InvalidMsgpack("truncated")),
            (
                "82 a474797065 00 a36e7370 db ffffffff",
                InvalidMsgpack("truncated"),
            ),
            (
                "83 a474797065 02 a464617461 dd ffffffff a36e7370 a12f",
                InvalidMsgpack("truncated"),
            ),
            (
                "82 a474797065 c1 a36e7370 a12f",
                InvalidMsgpack("reserved marker 0xc1"),
            ),
            // type
            ("81 a36e7370 a12f", UnknownType),
            ("82 a474797065 05 a36e7370 a12f", UnknownType),
            ("82 a474797065 06 a36e7370 a12f", UnknownType),
            ("82 a474797065 ff a36e7370 a12f", UnknownType),
            ("82 a474797065 a130 a36e7370 a12f", UnknownType),
            (
                "82 a474797065 cb3ff8000000000000 a36e7370 a12f",
                UnknownType,
            ),
            ("82 a474797065 d40000 a36e7370 a12f", UnknownType),
            // nsp
            ("81 a474797065 00", InvalidNamespace),
            ("82 a474797065 00 a36e7370 01", InvalidNamespace),
            ("82 a474797065 00 a36e7370 c0", InvalidNamespace),
            // data by type
            (
                "83 a474797065 00 a464617461 c0 a36e7370 a12f",
                InvalidPayload,
            ),
            (
                "83 a474797065 00 a464617461 90 a36e7370 a12f",
                InvalidPayload,
            ),
            (
                "83 a474797065 01 a464617461 80 a36e7370 a12f",
                InvalidPayload,
            ),
            (
                "83 a474797065 01 a464617461 c0 a36e7370 a12f",
                InvalidPayload,
            ),
            ("82 a474797065 02 a36e7370 a12f", InvalidPayload),
            (
                "83 a474797065 02 a464617461 80 a36e7370 a12f",
                InvalidPayload,
            ),
            (
                "83 a474797065 03 a464617461 a161 a36e7370 a12f",
                InvalidPayload,
            ),
            ("82 a474797065 04 a36e7370 a12f", InvalidPayload),
            (
                "83 a474797065 04 a464617461 90 a36e7370 a12f",
                InvalidPayload,
            ),
            (
                "83 a474797065 04 a464617461 c40101 a36e7370 a12f",
                InvalidPayload,
            ),
            // id
            (
                "84 a474797065 03 a464617461 90 a36e7370 a12f a26964 ff",
                InvalidAckId,
            ),
            (
                "84 a474797065 03 a464617461 90 a36e7370 a12f a26964 cf0020000000000000",
                InvalidAckId,
            ),
            (
                "84 a474797065 03 a464617461 90 a36e7370 a12f a26964 cb3ff8000000000000",
                InvalidAckId,
            ),
            (
                "84 a474797065 03 a464617461 90 a36e7370 a12f a26964 a131",
                InvalidAckId,
            ),
            (
                "84 a474797065 03 a464617461 90 a36e7370 a12f a26964 c0",
                InvalidAckId,
            ),
        ];
        for (h, expected) in cases {
            assert_eq!(decode(&hex(h)).as_ref().err(), Some(expected), "{h}");
        }
        // The largest ack id is accepted.
        let ok = hex("84 a474797065 03 a464617461 90 a36e7370 a12f a26964 cf001fffffffffffff");
        assert_eq!(decode(&ok).map(|p| p.id), Ok(Some((1 << 53) - 1)));
        // Also ok: CONNECT_ERROR string, CONNECT with map.
        assert!(decode(&hex("83 a474797065 04 a464617461 a161 a36e7370 a12f")).is_ok());
        assert!(decode(&hex("83 a474797065 00 a464617461 80 a36e7370 a12f")).is_ok());
    }

    #[test]
    fn depth_is_bounded() {
        let make = |depth: usize| {
            let mut b = hex("83 a474797065 02 a36e7370 a12f a464617461");
            b.extend(std::iter::repeat_n(0x91, depth - 1));
            b.push(0x90);
            b
        };
        // The top-level map is level 1, so `data` can nest MAX_DEPTH - 1 arrays.
        assert!(decode(&make(MAX_DEPTH - 1)).is_ok());
        assert_eq!(
            decode(&make(MAX_DEPTH)),
            Err(ParseError::InvalidMsgpack("nested too deep"))
        );
        let mut huge = hex("83 a474797065 02 a36e7370 a12f a464617461");
        huge.extend(std::iter::repeat_n(0x91, 1_000_000));
        assert!(decode(&huge).is_err());
        let mut huge_maps = hex("83 a474797065 02 a36e7370 a12f a464617461 91");
        for _ in 0..100_000 {
            huge_maps.extend(hex("81 a161"));
        }
        assert!(decode(&huge_maps).is_err());
    }

    #[test]
    fn prefixes_never_panic() {
        let samples = [
            encode(
                &Packet::event(
                    "/",
                    Value::Array(vec![
                        "e".into(),
                        Value::Binary(vec![1; 300]),
                        map(vec![("k", Value::F64(0.5))]),
                    ]),
                )
                .with_id(77),
            ),
            encode(&Packet::ack(
                "/é",
                1,
                Value::Array(vec![
                    Value::Ext(3, vec![1; 20]),
                    Value::from(-70_000),
                    Value::from(u64::MAX),
                ]),
            )),
            Bytes::from(hex(
                "83 a474797065 02 a464617461 94 a161 c7020001 02 d40000 82a178d40000a17901 a36e7370 a12f",
            )),
        ];
        for s in &samples {
            assert!(decode(s).is_ok());
            for i in 0..s.len() {
                let _ = decode(&s[..i]);
                let _ = decode(&s[i..]);
                let _ = read_value(&s[..i]);
                // Flip bits too.
                let mut flipped = s.to_vec();
                flipped[i] ^= 0xff;
                let _ = decode(&flipped);
            }
        }
    }

    #[test]
    fn read_value_api() {
        assert_eq!(read_value(&hex("d40000")), Ok(Value::Nil));
        assert_eq!(
            read_value(&hex("92 01 a161")),
            Ok(Value::Array(vec![1.into(), "a".into()]))
        );
        assert!(read_value(&hex("01 02")).is_err());
    }
}
