//! JSON text ⇄ [`Value`], with JavaScript semantics on both sides.
//!
//! Reading follows `JSON.parse`: objects behave as JS objects (a repeated key keeps its first
//! position and takes the last value; keys that are array indices come first, in ascending
//! order), integers become [`Value::Integer`], other numbers [`Value::F64`].
//!
//! Writing follows `JSON.stringify` byte for byte: compact, keys in map order, strings escaped
//! as JS does, numbers printed as JS prints doubles (protocol.md 2.2).

use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};

use bytes::Bytes;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::Value;
use crate::error::ParseError;

/// Deepest nesting of arrays/objects accepted by the decoders: serde_json's own recursion limit
/// (128) admits 127 levels.
pub const MAX_DEPTH: usize = 127;

/// Parses JSON text into a [`Value`] (`JSON.parse` semantics, see the module docs).
///
/// Leading and trailing JSON whitespace is allowed, anything else after the value is an error.
/// Nesting is limited to [`MAX_DEPTH`]; parsing is linear in the input.
///
/// # Errors
///
/// [`ParseError::InvalidJson`] when `text` is not one valid JSON value.
pub fn from_json_str(text: &str) -> Result<Value, ParseError> {
    match parse(text) {
        // `JSON.parse` takes lone surrogate escapes (a string cut in the middle of an emoji by
        // `slice`); Rust strings cannot hold them, so they become U+FFFD rather than costing
        // the client its connection.
        Err(err) => {
            let fixed = replace_lone_surrogates(text);
            if fixed == text {
                Err(err)
            } else {
                parse(&fixed).map_err(|_| err)
            }
        }
        ok => ok,
    }
}

fn parse(text: &str) -> Result<Value, ParseError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = JsonSeed
        .deserialize(&mut de)
        .map_err(|e| ParseError::InvalidJson(e.to_string()))?;
    de.end()
        .map_err(|e| ParseError::InvalidJson(e.to_string()))?;
    Ok(value)
}

/// Rewrites `\uD800`–`\uDFFF` escapes that are not part of a surrogate pair as `\uFFFD`.
fn replace_lone_surrogates(text: &str) -> String {
    fn escape_at(b: &[u8], i: usize) -> Option<u16> {
        let hex = b.get(i..i + 6)?;
        if hex[0] != b'\\' || hex[1] != b'u' {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        match escape_at(b, i) {
            Some(0xD800..=0xDBFF) if matches!(escape_at(b, i + 6), Some(0xDC00..=0xDFFF)) => {
                i += 12
            }
            Some(0xD800..=0xDFFF) => {
                out.push_str(&text[copied..i]);
                out.push_str("\\ufffd");
                i += 6;
                copied = i;
            }
            // Any other escape: skip the backslash and the escaped character.
            _ => i += 2,
        }
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    out
}

/// Serialises `value` as `JSON.stringify` would (see [`write_json`]).
#[must_use]
pub fn to_json_string(value: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, value);
    out
}

/// Appends the JSON text of `value` to `out`, byte-compatible with JS `JSON.stringify`.
///
/// - maps keep their order; non-string keys are written as JS would convert them to property
///   names (integers in decimal, ...);
/// - [`Value::Nil`] and [`Value::Ext`] are written as `null`; NaN and ±Infinity as `null`;
/// - [`Value::Binary`] is written as Node writes a `Buffer`: `{"type":"Buffer","data":[1,2]}`.
///   (The packet encoder replaces binaries by attachment placeholders instead.)
///
/// Recursive: values decoded from the wire are at most [`MAX_DEPTH`] deep.
pub fn write_json(out: &mut String, value: &Value) {
    write_value(out, value, &mut BinaryMode::NodeBuffer);
}

/// Whether `value` contains a [`Value::Binary`] anywhere (socket.io-parser `hasBinary`).
#[must_use]
pub fn has_binary(value: &Value) -> bool {
    // Explicit stack: no recursion, whatever the depth of an application-built value.
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Binary(_) => return true,
            Value::Array(items) => stack.extend(items.iter()),
            Value::Map(entries) => stack.extend(entries.iter().map(|(_, v)| v)),
            _ => {}
        }
    }
    false
}

/// How [`write_value`] writes [`Value::Binary`].
pub(crate) enum BinaryMode<'a> {
    /// As `JSON.stringify(buffer)`: `{"type":"Buffer","data":[...]}`.
    NodeBuffer,
    /// As `{"_placeholder":true,"num":N}`, collecting the bytes (protocol.md 2.3).
    Placeholders(&'a mut Vec<Bytes>),
}

/// The JSON writer behind [`write_json`] and the packet encoder.
pub(crate) fn write_value(out: &mut String, value: &Value, binary: &mut BinaryMode<'_>) {
    match value {
        Value::Nil | Value::Ext(..) => out.push_str("null"),
        Value::Boolean(true) => out.push_str("true"),
        Value::Boolean(false) => out.push_str("false"),
        Value::Integer(n) => {
            // Infallible: writing to a String.
            let _ = write!(out, "{n}");
        }
        Value::F32(f) => write_number(out, f64::from(*f)),
        Value::F64(f) => write_number(out, *f),
        Value::String(s) => match s.as_str() {
            Some(s) => write_string(out, s),
            None => write_string(out, &String::from_utf8_lossy(s.as_bytes())),
        },
        Value::Binary(bytes) => match binary {
            BinaryMode::NodeBuffer => {
                out.push_str(r#"{"type":"Buffer","data":["#);
                for (i, b) in bytes.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{b}");
                }
                out.push_str("]}");
            }
            BinaryMode::Placeholders(attachments) => {
                let _ = write!(
                    out,
                    r#"{{"_placeholder":true,"num":{}}}"#,
                    attachments.len()
                );
                attachments.push(Bytes::copy_from_slice(bytes));
            }
        },
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item, binary);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match key.as_str() {
                    Some(k) => write_string(out, k),
                    None => write_string(out, &js_key_string(key)),
                }
                out.push(':');
                write_value(out, item, binary);
            }
            out.push('}');
        }
    }
}

/// A number as `JSON.stringify` prints it: the JS `Number::toString` form, `null` when not
/// finite.
fn write_number(out: &mut String, f: f64) {
    if f.is_finite() {
        out.push_str(ryu_js::Buffer::new().format_finite(f));
    } else {
        out.push_str("null");
    }
}

/// A JSON string literal as `JSON.stringify` writes it: `"` and `\` escaped, `\b \f \n \r \t`,
/// other control characters as `\u00xx` (lowercase hex); `/`, DEL and non-ASCII left as they
/// are. (Lone surrogates, which JS escapes, cannot occur in a Rust string.)
fn write_string(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `i` is the index of an ASCII byte, hence a char boundary.
        out.push_str(s.get(start..i).unwrap_or_default());
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push('"');
}

/// The property name JS would use for `key` (`String(key)`): integers in decimal, numbers in
/// JS form (`NaN`, `Infinity`, `1.5`), `true`/`false`, `null`, a Buffer's bytes as UTF-8, an
/// array's elements joined by `,`, `[object Object]` for a map. Ext values (no JS equivalent)
/// become `null`.
pub(crate) fn js_key_string(key: &Value) -> String {
    let mut out = String::new();
    push_js_string(&mut out, key, 0);
    out
}

fn push_js_string(out: &mut String, v: &Value, depth: usize) {
    match v {
        Value::Nil | Value::Ext(..) => out.push_str(if depth == 0 { "null" } else { "" }),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Integer(n) => {
            let _ = write!(out, "{n}");
        }
        Value::F32(f) => push_js_number(out, f64::from(*f)),
        Value::F64(f) => push_js_number(out, *f),
        Value::String(s) => out.push_str(&String::from_utf8_lossy(s.as_bytes())),
        Value::Binary(b) => out.push_str(&String::from_utf8_lossy(b)),
        Value::Array(items) => {
            // Array.prototype.toString; stop descending at the decoders' depth limit.
            if depth >= MAX_DEPTH {
                return;
            }
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_js_string(out, item, depth + 1);
            }
        }
        Value::Map(_) => out.push_str("[object Object]"),
    }
}

fn push_js_number(out: &mut String, f: f64) {
    out.push_str(ryu_js::Buffer::new().format(f));
}

/// The index of an "array index" property name (canonical decimal, at most 2^32-2): JS objects
/// list those keys first, in ascending order.
fn array_index(key: &str) -> Option<u32> {
    let bytes = key.as_bytes();
    if bytes.is_empty() || bytes.len() > 10 || (bytes.len() > 1 && bytes.first() == Some(&b'0')) {
        return None;
    }
    if !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    key.parse::<u32>().ok().filter(|&n| n != u32::MAX)
}

/// Orders object entries as a JS object built by successive assignments would hold them: a
/// repeated key keeps its first position and takes the last value; array-index keys first in
/// ascending order, then the others in insertion order. Linear for the common case (no
/// duplicates, no index keys).
pub(crate) fn js_object_entries<T>(mut entries: Vec<(String, T)>) -> Vec<(String, T)> {
    let has_duplicates = if entries.len() <= 8 {
        entries
            .iter()
            .enumerate()
            .any(|(i, (k, _))| entries[..i].iter().any(|(p, _)| p == k))
    } else {
        let mut seen = HashSet::with_capacity(entries.len());
        !entries.iter().all(|(k, _)| seen.insert(k.as_str()))
    };
    if has_duplicates {
        let mut positions: HashMap<String, usize> = HashMap::with_capacity(entries.len());
        let mut out: Vec<(String, T)> = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            match positions.get(&key) {
                Some(&at) => {
                    if let Some(slot) = out.get_mut(at) {
                        slot.1 = value;
                    }
                }
                None => {
                    positions.insert(key.clone(), out.len());
                    out.push((key, value));
                }
            }
        }
        entries = out;
    }
    if entries.iter().any(|(k, _)| array_index(k).is_some()) {
        let (mut indices, others): (Vec<_>, Vec<_>) = entries
            .into_iter()
            .partition(|(k, _)| array_index(k).is_some());
        indices.sort_by_key(|(k, _)| array_index(k));
        indices.extend(others);
        entries = indices;
    }
    entries
}

/// Builds a map [`Value`] from object entries with [`js_object_entries`] ordering.
pub(crate) fn js_object(entries: Vec<(String, Value)>) -> Value {
    Value::Map(
        js_object_entries(entries)
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

/// serde seed/visitor producing a [`Value`] from JSON with the semantics above.
struct JsonSeed;

impl<'de> DeserializeSeed<'de> for JsonSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Boolean(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::F64(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(JsonSeed)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(JsonSeed)?;
            entries.push((key, value));
        }
        Ok(js_object(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(text: &str) -> String {
        to_json_string(&from_json_str(text).unwrap())
    }

    #[test]
    fn compact_and_ordered() {
        let text = r#" { "b" : 1 , "a" : [ true , false , null ] } "#;
        assert_eq!(roundtrip(text), r#"{"b":1,"a":[true,false,null]}"#);
        assert_eq!(
            roundtrip(r#"[1,"2",{"3":[false]}]"#),
            r#"[1,"2",{"3":[false]}]"#
        );
        assert_eq!(roundtrip("{}"), "{}");
        assert_eq!(roundtrip("[]"), "[]");
        assert_eq!(roundtrip(r#""x""#), r#""x""#);
    }

    #[test]
    fn value_kinds() {
        assert_eq!(from_json_str("1").unwrap(), Value::from(1));
        assert_eq!(from_json_str("-5").unwrap(), Value::from(-5));
        assert_eq!(
            from_json_str("18446744073709551615").unwrap(),
            Value::from(u64::MAX)
        );
        assert_eq!(from_json_str("1.5").unwrap(), Value::F64(1.5));
        assert_eq!(from_json_str("1.0").unwrap(), Value::F64(1.0));
        assert_eq!(from_json_str("-0").unwrap(), Value::F64(-0.0));
        // serde_json refuses numbers out of the f64 range (JSON.parse gives Infinity).
        assert!(from_json_str("1e400").is_err());
        assert_eq!(from_json_str(r#""é""#).unwrap(), Value::from("é"));
        assert_eq!(from_json_str("null").unwrap(), Value::Nil);
    }

    #[test]
    fn js_object_semantics() {
        // Repeated key: first position, last value (JSON.parse).
        assert_eq!(roundtrip(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
        // A large object with duplicates takes the hashed path.
        let text = format!(
            "{{{},\"k3\":true}}",
            (0..20)
                .map(|i| format!("\"k{i}\":{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let v = from_json_str(&text).unwrap();
        let Value::Map(entries) = &v else {
            panic!("not a map")
        };
        assert_eq!(entries.len(), 20);
        assert_eq!(entries[3], (Value::from("k3"), Value::Boolean(true)));
    }

    #[test]
    fn invalid_json() {
        let cases = [
            "",
            "[",
            "{\"a\"}",
            "[1,]",
            "abc",
            "[1] x",
            "\u{feff}[1]",
            "'a'",
            "[01]",
            "NaN",
        ];
        for text in cases {
            assert!(from_json_str(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn depth_limit() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(from_json_str(&ok).is_ok());
        let too_deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(from_json_str(&too_deep).is_err());
        let huge = "[".repeat(1_000_000);
        assert!(from_json_str(&huge).is_err());
        let huge = "{\"a\":".repeat(100_000);
        assert!(from_json_str(&huge).is_err());
    }

    #[test]
    fn string_escapes_like_js() {
        let all: String = (0u8..0x20).map(char::from).collect();
        assert_eq!(
            to_json_string(&Value::from(all.as_str())),
            concat!(
                r#""\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\b\t\n\u000b\f\r\u000e"#,
                r#"\u000f\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a"#,
                r#"\u001b\u001c\u001d\u001e\u001f""#
            )
        );
        let s = Value::from("a\"b\\c/d\u{7f}é\u{2028}😀");
        assert_eq!(to_json_string(&s), "\"a\\\"b\\\\c/d\u{7f}é\u{2028}😀\"");
        assert_eq!(roundtrip(r#""\u00e9\/\ud83d\ude00""#), "\"é/😀\"");
    }

    #[test]
    fn numbers_like_js() {
        // Expected strings are JS `JSON.stringify(x)` output.
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (-1.0, "-1"),
            (0.0, "0"),
            (-0.0, "0"),
            (0.1, "0.1"),
            (1.5, "1.5"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123_456_789_012_345_680_000.0, "123456789012345680000"),
            (1e-7, "1e-7"),
            (1e-6, "0.000001"),
            (1.2345e-7, "1.2345e-7"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (-1.5e300, "-1.5e+300"),
            (0.000_123, "0.000123"),
            (2f64.powi(53), "9007199254740992"),
            (1.0 / 3.0, "0.3333333333333333"),
            (100.0, "100"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
            (f64::NEG_INFINITY, "null"),
        ];
        for &(f, expected) in cases {
            assert_eq!(to_json_string(&Value::F64(f)), expected, "{f:e}");
        }
        assert_eq!(to_json_string(&Value::F32(0.5)), "0.5");
        assert_eq!(
            to_json_string(&Value::from(u64::MAX)),
            "18446744073709551615"
        );
        assert_eq!(
            to_json_string(&Value::from(i64::MIN)),
            "-9223372036854775808"
        );
        assert_eq!(roundtrip("-0"), "0");
        // Correctly rounded parsing (found by fuzzing: serde_json's fast path gave
        // 1.2999999999999999e+157).
        assert_eq!(roundtrip("1.3e157"), "1.3e+157");
        assert_eq!(roundtrip("1e3"), "1000");
        assert_eq!(roundtrip("1.0"), "1");
    }

    /// `JSON.stringify` of random doubles, captured from Node 20 (bit pattern, output). A
    /// one-off run compared 25 000 such doubles with no mismatch.
    #[test]
    fn numbers_match_node_golden() {
        let cases = [
            ("933f953a5da64c3f", "-5.726053843712525e-216"),
            ("8d995fcced1517e3", "-3.716175576186864e-243"),
            ("688654514f90ed46", "3.260044961779391e+195"),
            ("eab33f53106d08d1", "-9.655355043714471e+205"),
            ("7c023825731010f1", "2.2194126055474633e+289"),
            ("5312b06febea7029", "1.52282354527372e+92"),
            ("e7dc2b3a5cc0bd9f", "-2.0081054338887846e+192"),
            ("29a8f124f27a790b", "5.310095333631778e-108"),
            ("a4fd8cfa6258a579", "-1.6652889418849117e-130"),
            ("ce7e5ccb8bcc7756", "-1.3097133837634456e+70"),
            ("929288b5ec42d06c", "-3.281503950417943e-219"),
            ("217ca81aa94b3d22", "2.2411331321180028e-147"),
            ("154ceefc710b2e00", "4.5060348179851126e-206"),
            ("6a6cb7e690963202", "4.502012920640114e+204"),
            ("6d5a30cea7ead14f", "5.778341450085563e+218"),
            ("6b60d7fceb44dfe8", "1.73047200785246e+209"),
            ("3871c4063e0a0c80", "8.35340151712991e-37"),
            ("8d3117518002ab43", "-3.911048772080138e-245"),
            ("44db08f31c9cfc66", "5.106759481573141e+23"),
            ("d8879ab8693c0778", "-2.976191311254685e+118"),
            ("4255abf4a4500000", "372317000000"),
            ("4295335dba360000", "5827590000000"),
            ("3da750d8842123fb", "1.06028e-11"),
            ("3f12f2db5b2e44a4", "0.0000722834"),
            ("3f78b34d1eecaa38", "0.00603037"),
            ("3d45a5fc4f61788f", "1.53821e-13"),
            ("3da55143d6c68664", "9.69405e-12"),
            ("3d180af53a572fcc", "2.13543e-14"),
            ("3e88fe0617e829e0", "1.86207e-7"),
            ("4075297ced916873", "338.593"),
            ("417b5812c0000000", "28672300"),
            ("409032147ae147ae", "1036.52"),
        ];
        for (bits, expected) in cases {
            let f = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
            assert_eq!(to_json_string(&Value::F64(f)), expected, "{bits}");
        }
    }

    /// `JSON.stringify(JSON.parse(text))` in Node 20.
    #[test]
    fn objects_match_node_golden() {
        let cases = [
            (
                r#"{"b":1,"10":2,"2":3,"01":4,"4294967295":5,"4294967294":6,"a":7}"#,
                r#"{"2":3,"10":2,"4294967294":6,"b":1,"01":4,"4294967295":5,"a":7}"#,
            ),
            (r#"{"a":1,"b":2,"a":3}"#, r#"{"a":3,"b":2}"#),
            (
                r#"{"1":1,"1":2,"-1":3,"0":4,"00":5}"#,
                r#"{"0":4,"1":2,"-1":3,"00":5}"#,
            ),
            (
                r#"{"__proto__":1,"constructor":2}"#,
                r#"{"__proto__":1,"constructor":2}"#,
            ),
            // Node prints the positive 20-digit integer 12345678901234567890 as
            // 12345678901234567000; we keep u64 integers exact (protocol.md 2.2: fine).
            (
                "[1.0,-0,1e3,1E+2,0.5e1,-12345678901234567890]",
                "[1,0,1000,100,5,-12345678901234567000]",
            ),
            (
                r#""\u0000\u001f\u007f\u2028\ud83d\ude00/\\\"""#,
                "\"\\u0000\\u001f\u{7f}\u{2028}😀/\\\\\\\"\"",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(roundtrip(text), expected, "{text}");
        }
    }

    #[test]
    fn other_values() {
        assert_eq!(to_json_string(&Value::Nil), "null");
        assert_eq!(to_json_string(&Value::Ext(1, vec![1])), "null");
        let buffer = Value::Binary(vec![1, 2, 255]);
        assert_eq!(
            to_json_string(&buffer),
            r#"{"type":"Buffer","data":[1,2,255]}"#
        );
        assert_eq!(
            to_json_string(&Value::Binary(vec![])),
            r#"{"type":"Buffer","data":[]}"#
        );
        let keys = Value::Map(vec![
            (Value::from(1), Value::from(1)),
            (Value::F64(1.5), Value::from(2)),
            (Value::F64(f64::NAN), Value::from(3)),
            (Value::Boolean(true), Value::from(4)),
            (Value::Nil, Value::from(5)),
            (
                Value::Array(vec![Value::from(1), Value::Nil, Value::from("a")]),
                Value::from(6),
            ),
            (Value::Map(vec![]), Value::from(7)),
            (Value::Binary(b"k".to_vec()), Value::from(8)),
        ]);
        assert_eq!(
            to_json_string(&keys),
            r#"{"1":1,"1.5":2,"NaN":3,"true":4,"null":5,"1,,a":6,"[object Object]":7,"k":8}"#
        );
    }

    #[test]
    fn binary_detection() {
        assert!(!has_binary(
            &from_json_str(r#"[1,{"a":[null,"x"]}]"#).unwrap()
        ));
        let inner = Value::Map(vec![(Value::from("a"), Value::Binary(vec![]))]);
        assert!(has_binary(&Value::Array(vec![Value::from(1), inner])));
        assert!(has_binary(&Value::Binary(vec![1])));
        let mut deep = Value::Binary(vec![1]);
        for _ in 0..100_000 {
            deep = Value::Array(vec![deep]);
        }
        assert!(has_binary(&deep));
        // Take the deep value apart iteratively (the derived drop would recurse).
        let mut v = deep;
        while let Value::Array(mut items) = v {
            v = items.pop().unwrap_or(Value::Nil);
        }
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        let v = from_json_str(r#"["\ud800","a\udc00b","\ud83d\ude00","\\ud800",{"\ud800":1}]"#)
            .unwrap();
        assert_eq!(
            to_json_string(&v),
            "[\"\u{fffd}\",\"a\u{fffd}b\",\"\u{1f600}\",\"\\\\ud800\",{\"\u{fffd}\":1}]"
        );
    }
}
