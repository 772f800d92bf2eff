//! The default Socket.IO parser (socket.io-parser 4.2.7 compatible; protocol.md 2.2, 2.3).
//!
//! One packet is one text message `type [count "-"] [nsp ","] [id] [json]`, followed, for the
//! binary types 5 / 6, by `count` binary messages (the attachments) whose places in the JSON are
//! marked by `{"_placeholder":true,"num":N}`.

use bytes::Bytes;

use crate::Value;
use crate::error::ParseError;
use crate::packet::{MAX_ACK_ID, Packet, PacketType, is_valid_event_data};
use crate::value::{BinaryMode, from_json_str, write_value};

/// Input limits of the [`JsonDecoder`] (DESIGN.md rule 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParserLimits {
    /// Most attachments one binary packet may announce (socket.io-parser `maxAttachments`,
    /// default 10; CVE-2026-33151).
    pub max_attachments: usize,
    /// Most attachment bytes buffered for one packet (default 1 MB, Node's
    /// `maxHttpBufferSize`).
    pub max_buffered_bytes: usize,
}

impl Default for ParserLimits {
    fn default() -> Self {
        Self {
            max_attachments: 10,
            max_buffered_bytes: 1_000_000,
        }
    }
}

/// One encoded packet: the text message, then each attachment as its own binary message, in
/// order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encoded {
    /// The text message (without the Engine.IO type digit `4`).
    pub text: String,
    /// The binary attachments, empty unless the packet has type 5 or 6.
    pub attachments: Vec<Bytes>,
}

/// Encodes `packet` exactly as Node's socket.io-parser does (protocol.md 2.2, 2.3).
///
/// The type digit, then for binary packets the attachment count and `-`, then `nsp,` unless the
/// namespace is `/` (or empty), then the ack id, then the compact JSON of `data` (omitted when
/// `data` is `None` or [`Value::Nil`], as Node skips `null` data).
///
/// For `Event` / `Ack` (and `BinaryEvent` / `BinaryAck`) the wire type is decided by the data:
/// 5 / 6 with placeholders (depth-first, arrays by index, maps in order) when it contains
/// binary, 2 / 3 otherwise. For the other types binaries are written the way `JSON.stringify`
/// writes a Node `Buffer`.
#[must_use]
pub fn encode(packet: &Packet) -> Encoded {
    let kind = packet.kind.without_binary();
    let mut attachments = Vec::new();
    let mut body = String::new();
    if let Some(data) = packet.data.as_ref().filter(|d| !d.is_nil()) {
        let mut mode = match kind {
            PacketType::Event | PacketType::Ack => BinaryMode::Placeholders(&mut attachments),
            _ => BinaryMode::NodeBuffer,
        };
        write_value(&mut body, data, &mut mode);
    }
    let wire = match kind {
        PacketType::Event if !attachments.is_empty() => PacketType::BinaryEvent,
        PacketType::Ack if !attachments.is_empty() => PacketType::BinaryAck,
        other => other,
    };

    let mut text = String::with_capacity(body.len() + packet.nsp.len() + 32);
    text.push(char::from(b'0' + wire.as_u8()));
    if !attachments.is_empty() {
        text.push_str(&attachments.len().to_string());
        text.push('-');
    }
    if !packet.nsp.is_empty() && packet.nsp != "/" {
        text.push_str(&packet.nsp);
        text.push(',');
    }
    if let Some(id) = packet.id {
        text.push_str(&id.to_string());
    }
    text.push_str(&body);
    Encoded { text, attachments }
}

/// Stateful decoder for one connection: text packets, and the attachments that follow a binary
/// packet (protocol.md 2.3).
///
/// Any error means the connection must be closed; the decoder drops its pending state then.
#[derive(Debug, Default)]
pub struct JsonDecoder {
    limits: ParserLimits,
    pending: Option<Pending>,
}

/// A binary packet header waiting for its attachments.
#[derive(Debug)]
struct Pending {
    packet: Packet,
    expected: usize,
    buffers: Vec<Bytes>,
    buffered_bytes: usize,
}

impl JsonDecoder {
    /// A decoder with the given limits.
    #[must_use]
    pub fn new(limits: ParserLimits) -> Self {
        Self {
            limits,
            pending: None,
        }
    }

    /// Decodes one text message.
    ///
    /// `Ok(None)` when it is the header of a binary packet: the packet is returned by the
    /// [`decode_binary`](Self::decode_binary) call that brings its last attachment.
    ///
    /// # Errors
    ///
    /// Any malformed packet (protocol.md 2.2), or a text message while attachments are
    /// expected ([`ParseError::UnexpectedText`]).
    pub fn decode_text(&mut self, text: &str) -> Result<Option<Packet>, ParseError> {
        if self.pending.take().is_some() {
            return Err(ParseError::UnexpectedText);
        }
        let (packet, attachments) = decode_header(text, &self.limits)?;
        if attachments == 0 {
            return Ok(Some(packet));
        }
        self.pending = Some(Pending {
            packet,
            expected: attachments,
            buffers: Vec::with_capacity(attachments),
            buffered_bytes: 0,
        });
        Ok(None)
    }

    /// Decodes one binary message: the next attachment of the pending binary packet.
    ///
    /// Returns the packet, attachments inlined as [`Value::Binary`], when this was the last one.
    ///
    /// # Errors
    ///
    /// [`ParseError::UnexpectedBinary`] with no pending header,
    /// [`ParseError::AttachmentsTooLarge`] past `max_buffered_bytes`.
    pub fn decode_binary(&mut self, data: Bytes) -> Result<Option<Packet>, ParseError> {
        let Some(pending) = self.pending.as_mut() else {
            return Err(ParseError::UnexpectedBinary);
        };
        pending.buffered_bytes = pending.buffered_bytes.saturating_add(data.len());
        if pending.buffered_bytes > self.limits.max_buffered_bytes {
            self.pending = None;
            return Err(ParseError::AttachmentsTooLarge);
        }
        pending.buffers.push(data);
        if pending.buffers.len() < pending.expected {
            return Ok(None);
        }
        let Some(Pending {
            mut packet,
            buffers,
            ..
        }) = self.pending.take()
        else {
            return Ok(None);
        };
        let mut slots: Vec<Option<Vec<u8>>> =
            buffers.into_iter().map(|b| Some(Vec::from(b))).collect();
        if let Some(data) = packet.data.as_mut() {
            replace_placeholders(data, &mut slots)?;
        }
        Ok(Some(packet))
    }

    /// Whether a binary packet header is waiting for attachments.
    #[must_use]
    pub fn is_waiting(&self) -> bool {
        self.pending.is_some()
    }

    /// Drops any pending binary packet and its buffered attachments.
    pub fn reset(&mut self) {
        self.pending = None;
    }
}

/// Parses one text packet. Returns the packet (kind without binary) and its attachment count
/// (0 for non-binary types).
fn decode_header(text: &str, limits: &ParserLimits) -> Result<(Packet, usize), ParseError> {
    let bytes = text.as_bytes();
    // type: one digit 0..6.
    let first = *bytes.first().ok_or(ParseError::Empty)?;
    let kind = first
        .checked_sub(b'0')
        .and_then(PacketType::from_u8)
        .ok_or(ParseError::UnknownType)?;
    let mut pos = 1;

    // attachments: types 5/6 only, decimal digits then "-", 1..=max_attachments.
    let mut attachments = 0;
    if matches!(kind, PacketType::BinaryEvent | PacketType::BinaryAck) {
        let rest = bytes.get(pos..).unwrap_or_default();
        let dash = rest
            .iter()
            .position(|&b| b == b'-')
            .ok_or(ParseError::IllegalAttachments)?;
        let digits = rest.get(..dash).unwrap_or_default();
        let count = parse_decimal(digits).ok_or(ParseError::IllegalAttachments)?;
        if count == 0 {
            // socket.io-parser >= 4.2.7 (GHSA-2m8v-j782-fhvr).
            return Err(ParseError::IllegalAttachments);
        }
        attachments = usize::try_from(count)
            .ok()
            .filter(|&n| n <= limits.max_attachments)
            .ok_or(ParseError::TooManyAttachments)?;
        pos += dash + 1;
    }

    // namespace: "/" up to the first "," (consumed), or to the end when there is no comma
    // (`40/custom{"a":1}` is the namespace `/custom{"a":1}`).
    let mut nsp = "/";
    if bytes.get(pos) == Some(&b'/') {
        // Every byte before `pos` is ASCII, so `pos` is a char boundary.
        let rest = text.get(pos..).unwrap_or_default();
        match rest.find(',') {
            Some(comma) => {
                nsp = rest.get(..comma).unwrap_or_default();
                pos += comma + 1;
            }
            None => {
                nsp = rest;
                pos = bytes.len();
            }
        }
    }

    // ack id: greedy digits, must be a JS safe integer.
    let mut id = None;
    let digits = bytes.get(pos..).unwrap_or_default();
    let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    if len > 0 {
        let n = parse_decimal(digits.get(..len).unwrap_or_default())
            .filter(|&n| n <= MAX_ACK_ID)
            .ok_or(ParseError::InvalidAckId)?;
        id = Some(n);
        pos += len;
    }

    // payload: the rest, JSON valid for the type. No payload at all is accepted for every type.
    let rest = text.get(pos..).unwrap_or_default();
    let data = if rest.is_empty() {
        None
    } else {
        let value = from_json_str(rest)?;
        if !payload_is_valid(kind, &value) {
            return Err(ParseError::InvalidPayload);
        }
        if attachments > 0 {
            check_placeholders(&value, attachments, &mut vec![false; attachments])?;
        }
        Some(value)
    };

    let packet = Packet {
        kind: kind.without_binary(),
        nsp: nsp.to_owned(),
        id,
        data,
    };
    Ok((packet, attachments))
}

/// socket.io-parser `isPayloadValid`.
fn payload_is_valid(kind: PacketType, value: &Value) -> bool {
    match kind {
        PacketType::Connect => value.is_map(),
        PacketType::Disconnect => false,
        PacketType::ConnectError => value.is_str() || value.is_map(),
        PacketType::Event | PacketType::BinaryEvent => is_valid_event_data(value),
        PacketType::Ack | PacketType::BinaryAck => value.is_array(),
    }
}

/// A non-empty run of ASCII digits as a number; `None` if empty, not digits, or overflowing.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// If `value` is a placeholder (a map with `_placeholder: true`), its attachment index.
///
/// Like socket.io-parser, any map whose `_placeholder` is `true` is a placeholder; its `num`
/// must be an integer in `[0, count)` (CVE-2022-2421), else the packet is rejected.
fn placeholder_index(value: &Value, count: usize) -> Option<Result<usize, ParseError>> {
    let Value::Map(entries) = value else {
        return None;
    };
    let mut is_placeholder = false;
    let mut num = None;
    for (k, v) in entries {
        match k.as_str() {
            Some("_placeholder") => is_placeholder = matches!(v, Value::Boolean(true)),
            Some("num") => num = Some(v),
            _ => {}
        }
    }
    if !is_placeholder {
        return None;
    }
    let index = num
        .and_then(crate::parser::js_safe_uint)
        .flatten()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n < count);
    Some(index.ok_or(ParseError::InvalidPlaceholder))
}

/// Checks every placeholder of a binary packet as soon as its header arrives: a valid index,
/// and each attachment used at most once.
///
/// Node lets two placeholders share one buffer; no encoder produces that, and refusing it keeps
/// the reassembled packet no larger than the attachments (no amplification by copies).
/// Recursion is bounded by the JSON nesting limit.
fn check_placeholders(value: &Value, count: usize, used: &mut [bool]) -> Result<(), ParseError> {
    if let Some(index) = placeholder_index(value, count) {
        let slot = used.get_mut(index?).ok_or(ParseError::InvalidPlaceholder)?;
        if std::mem::replace(slot, true) {
            return Err(ParseError::InvalidPlaceholder);
        }
        return Ok(());
    }
    match value {
        Value::Array(items) => items
            .iter()
            .try_for_each(|v| check_placeholders(v, count, used)),
        Value::Map(entries) => entries
            .iter()
            .try_for_each(|(_, v)| check_placeholders(v, count, used)),
        _ => Ok(()),
    }
}

/// Replaces each placeholder by its attachment (socket.io-parser `reconstructPacket`).
fn replace_placeholders(
    value: &mut Value,
    slots: &mut [Option<Vec<u8>>],
) -> Result<(), ParseError> {
    if let Some(index) = placeholder_index(value, slots.len()) {
        let bytes = slots
            .get_mut(index?)
            .and_then(Option::take)
            .ok_or(ParseError::InvalidPlaceholder)?;
        *value = Value::Binary(bytes);
        return Ok(());
    }
    match value {
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|v| replace_placeholders(v, slots)),
        Value::Map(entries) => entries
            .iter_mut()
            .try_for_each(|(_, v)| replace_placeholders(v, slots)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::to_json_string;

    const PH0: &str = r#"{"_placeholder":true,"num":0}"#;
    const PH1: &str = r#"{"_placeholder":true,"num":1}"#;

    fn decode(text: &str) -> Result<Option<Packet>, ParseError> {
        JsonDecoder::default().decode_text(text)
    }

    fn packet(text: &str) -> Packet {
        decode(text).unwrap().unwrap()
    }

    fn json(v: &Value) -> String {
        to_json_string(v)
    }

    fn v(text: &str) -> Value {
        from_json_str(text).unwrap()
    }

    /// Decodes then re-encodes a non-binary packet; Node's output is the canonical input.
    fn assert_roundtrip(text: &str) {
        let p = packet(text);
        let e = encode(&p);
        assert_eq!(e.text, text);
        assert!(e.attachments.is_empty());
    }

    #[test]
    fn canonical_examples_roundtrip() {
        // protocol.md 2.2 encoder examples, then the suite strings of 3.2 and 2.4 without their
        // Engine.IO `4` (`43456[...]` is the Socket.IO text `3456[...]`).
        for text in [
            "0",
            r#"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#,
            r#"2["foo"]"#,
            r#"2/admin,["bar"]"#,
            r#"212["foo"]"#,
            r#"3/admin,13["bar"]"#,
            "1/admin,",
            r#"4{"message":"Not authorized"}"#,
            r#"0{"token":"123"}"#,
            "0/custom,",
            r#"0/custom,{"token":"abc"}"#,
            r#"3456[1,"2",{"3":[false]}]"#,
            r#"2["message",1,"2",{"3":[true]}]"#,
            r#"2456["message-with-ack",1,"2",{"3":[false]}]"#,
            r#"2/custom,["auth",{}]"#,
            r#"4/random,{"message":"Invalid namespace"}"#,
            r#"4/guarded,{"message":"not authorized","data":{"reason":"bad token"}}"#,
            r#"4"plain string error""#,
            "1",
            "3[]",
            r#"2["a\u001eb"]"#,
        ] {
            assert_roundtrip(text);
        }
    }

    #[test]
    fn decoded_fields() {
        let p = packet(r#"3/admin,13["bar"]"#);
        assert_eq!(p, Packet::ack("/admin", 13, v(r#"["bar"]"#)));
        let p = packet(r#"0/admin,{"sid":"x"}"#);
        assert_eq!(p, Packet::connect("/admin", Some(v(r#"{"sid":"x"}"#))));
        assert_eq!(packet("0"), Packet::connect("/", None));
        assert_eq!(packet("1/admin,"), Packet::disconnect("/admin"));
        assert_eq!(packet("1/admin"), Packet::disconnect("/admin"));
        assert_eq!(packet("0/random"), Packet::connect("/random", None));
        // `40/custom{"a":1}`: no comma, everything is the namespace.
        assert_eq!(
            packet(r#"0/custom{"a":1}"#),
            Packet::connect(r#"/custom{"a":1}"#, None)
        );
        // Number event name (`427[1,2]`: id 7, name 1).
        let p = packet("27[1,2]");
        assert_eq!(
            (p.id, json(p.data.as_ref().unwrap())),
            (Some(7), "[1,2]".to_owned())
        );
        // Ack id with leading zeros; namespace with non-ASCII characters.
        assert_eq!(packet("3/é,007[]").id, Some(7));
        assert_eq!(packet("3/é,007[]").nsp, "/é");
        // The largest ack id.
        assert_eq!(packet("29007199254740991[\"a\"]").id, Some(MAX_ACK_ID));
        // No payload at all is accepted (Node ignores it later).
        assert_eq!(packet("2").data, None);
        assert_eq!(packet("3/a,5").data, None);
        assert_eq!(packet("3/a,5").id, Some(5));
        // JSON whitespace is allowed around the payload, as JSON.parse allows it.
        assert_eq!(packet("2 [\"a\"] ").data, Some(v(r#"["a"]"#)));
        // A placeholder-looking object in a non-binary packet is just an object.
        assert_eq!(
            json(packet(&format!("2[\"a\",{PH0}]")).data.as_ref().unwrap()),
            format!("[\"a\",{PH0}]")
        );
    }

    #[test]
    fn hostile_inputs_rejected() {
        use ParseError::*;
        let cases: &[(&str, ParseError)] = &[
            ("", Empty),
            ("abc", UnknownType),
            ("7", UnknownType),
            ("9[]", UnknownType),
            (" 0", UnknownType),
            ("é", UnknownType),
            ("2{}", InvalidPayload),
            ("2[]", InvalidPayload),
            (r#"2[{"toString":"foo"}]"#, InvalidPayload),
            (r#"2["disconnect"]"#, InvalidPayload),
            (r#"2["connect"]"#, InvalidPayload),
            (r#"2["connect_error"]"#, InvalidPayload),
            (r#"2["disconnecting"]"#, InvalidPayload),
            (r#"2["newListener"]"#, InvalidPayload),
            (r#"2["removeListener"]"#, InvalidPayload),
            ("2[null]", InvalidPayload),
            ("2[true]", InvalidPayload),
            ("2[[\"a\"]]", InvalidPayload),
            ("2\"a\"", InvalidPayload),
            ("0[1]", InvalidPayload),
            ("0null", InvalidPayload),
            ("0\"a\"", InvalidPayload),
            ("1{}", InvalidPayload),
            ("1/a,null", InvalidPayload),
            ("4[]", InvalidPayload),
            ("3{}", InvalidPayload),
            ("3\"a\"", InvalidPayload),
            ("29007199254740992[\"a\"]", InvalidAckId),
            ("2123456789012345678901[\"a\"]", InvalidAckId),
            ("299999999999999999999999999999[\"a\"]", InvalidAckId),
            ("5-[\"a\"]", IllegalAttachments),
            ("5[\"a\"]", IllegalAttachments),
            ("5", IllegalAttachments),
            ("50-[\"a\"]", IllegalAttachments),
            ("5x-[\"a\"]", IllegalAttachments),
            ("5 1-[\"a\"]", IllegalAttachments),
            ("51e0-[\"a\"]", IllegalAttachments),
            ("511-[\"a\"]", TooManyAttachments),
            ("599999999999999999999999-[\"a\"]", IllegalAttachments),
            ("6100-[]", TooManyAttachments),
            (
                r#"51-["hello",{"_placeholder":true,"num":"splice"}]"#,
                InvalidPlaceholder,
            ),
            (
                r#"51-["hello",{"_placeholder":true,"num":1}]"#,
                InvalidPlaceholder,
            ),
            (
                r#"51-["hello",{"_placeholder":true,"num":-1}]"#,
                InvalidPlaceholder,
            ),
            (
                r#"51-["hello",{"_placeholder":true,"num":0.5}]"#,
                InvalidPlaceholder,
            ),
            (r#"51-["hello",{"_placeholder":true}]"#, InvalidPlaceholder),
            (
                r#"51-["hello",{"_placeholder":true,"num":null}]"#,
                InvalidPlaceholder,
            ),
            (
                r#"52-["hello",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]"#,
                InvalidPlaceholder,
            ),
            (r#"51-{}"#, InvalidPayload),
            (r#"51-["disconnect"]"#, InvalidPayload),
        ];
        for (text, expected) in cases {
            assert_eq!(decode(text).as_ref().err(), Some(expected), "{text:?}");
        }
        // Not JSON at all.
        for text in ["2abc[\"message-with-ack\",1]", "2[\"a\"", "0{", "2[\"a\"]]"] {
            assert!(matches!(decode(text), Err(InvalidJson(_))), "{text:?}");
        }
        // Huge nesting: rejected, no stack overflow.
        let deep = format!("2[\"a\",{}", "[".repeat(200_000));
        assert!(matches!(decode(&deep), Err(InvalidJson(_))));
        let deep = format!("2[\"a\",{}", "{\"a\":".repeat(200_000));
        assert!(matches!(decode(&deep), Err(InvalidJson(_))));
    }

    #[test]
    fn binary_event_reassembly() {
        // Suite test 27: `452-["message",ph0,ph1]` + 010203 + 040506.
        let mut d = JsonDecoder::default();
        assert_eq!(
            d.decode_text(&format!("52-[\"message\",{PH0},{PH1}]")),
            Ok(None)
        );
        assert!(d.is_waiting());
        assert_eq!(d.decode_binary(Bytes::from_static(&[1, 2, 3])), Ok(None));
        let p = d
            .decode_binary(Bytes::from_static(&[4, 5, 6]))
            .unwrap()
            .unwrap();
        assert!(!d.is_waiting());
        assert_eq!(p.kind, PacketType::Event);
        assert_eq!(p.nsp, "/");
        assert_eq!(p.id, None);
        assert_eq!(
            p.data,
            Some(Value::Array(vec![
                "message".into(),
                Value::Binary(vec![1, 2, 3]),
                Value::Binary(vec![4, 5, 6])
            ]))
        );
        // Echo as `message-back`: Node's exact output.
        let mut back = p;
        if let Some(Value::Array(items)) = back.data.as_mut() {
            items[0] = "message-back".into();
        }
        let e = encode(&back);
        assert_eq!(e.text, format!("52-[\"message-back\",{PH0},{PH1}]"));
        assert_eq!(
            e.attachments,
            vec![
                Bytes::from_static(&[1, 2, 3]),
                Bytes::from_static(&[4, 5, 6])
            ]
        );

        // Suite test 29: `452-789["message-with-ack",ph0,ph1]` → `462-789[ph0,ph1]`.
        assert_eq!(
            d.decode_text(&format!("52-789[\"message-with-ack\",{PH0},{PH1}]")),
            Ok(None)
        );
        assert_eq!(d.decode_binary(Bytes::from_static(&[1, 2, 3])), Ok(None));
        let p = d
            .decode_binary(Bytes::from_static(&[4, 5, 6]))
            .unwrap()
            .unwrap();
        assert_eq!(p.id, Some(789));
        let Some(Value::Array(mut args)) = p.data else {
            panic!()
        };
        args.remove(0);
        let e = encode(&Packet::ack("/", 789, Value::Array(args)));
        assert_eq!(e.text, format!("62-789[{PH0},{PH1}]"));
        assert_eq!(e.attachments.len(), 2);

        // Binary ack in a namespace, placeholders out of order and nested in maps.
        let text = format!("62-/admin,15[{{\"x\":{PH1}}},[{PH0}]]");
        assert_eq!(d.decode_text(&text), Ok(None));
        assert_eq!(d.decode_binary(Bytes::from_static(b"zero")), Ok(None));
        let p = d
            .decode_binary(Bytes::from_static(b"one"))
            .unwrap()
            .unwrap();
        assert_eq!(p.kind, PacketType::Ack);
        assert_eq!((p.nsp.as_str(), p.id), ("/admin", Some(15)));
        assert_eq!(
            p.data,
            Some(Value::Array(vec![
                Value::Map(vec![("x".into(), Value::Binary(b"one".to_vec()))]),
                Value::Array(vec![Value::Binary(b"zero".to_vec())]),
            ]))
        );
        // An unused attachment is accepted (Node does not require all of them).
        assert_eq!(d.decode_text("52-[\"a\"]"), Ok(None));
        assert_eq!(d.decode_binary(Bytes::from_static(b"1")), Ok(None));
        assert_eq!(
            d.decode_binary(Bytes::from_static(b"2")),
            Ok(Some(Packet::event("/", v("[\"a\"]"))))
        );
        // A binary header without payload still waits for its attachments.
        assert_eq!(d.decode_text("51-"), Ok(None));
        let p = d.decode_binary(Bytes::new()).unwrap().unwrap();
        assert_eq!((p.kind, p.data), (PacketType::Event, None));
        // Extra keys on a placeholder are ignored, `num` may be written as a float.
        assert_eq!(
            d.decode_text(r#"51-["a",{"num":0.0,"_placeholder":true,"x":1}]"#),
            Ok(None)
        );
        let p = d.decode_binary(Bytes::from_static(b"b")).unwrap().unwrap();
        assert_eq!(
            p.data,
            Some(Value::Array(vec!["a".into(), Value::Binary(b"b".to_vec())]))
        );
    }

    #[test]
    fn attachment_sequencing_errors() {
        let mut d = JsonDecoder::default();
        assert_eq!(
            d.decode_binary(Bytes::from_static(b"x")),
            Err(ParseError::UnexpectedBinary)
        );
        assert_eq!(d.decode_text(&format!("51-[\"a\",{PH0}]")), Ok(None));
        assert_eq!(d.decode_text("2[\"a\"]"), Err(ParseError::UnexpectedText));
        assert!(!d.is_waiting());
        // Byte limit across attachments.
        let mut d = JsonDecoder::new(ParserLimits {
            max_attachments: 3,
            max_buffered_bytes: 10,
        });
        assert_eq!(d.decode_text(&format!("53-[\"a\",{PH0}]")), Ok(None));
        assert_eq!(d.decode_binary(Bytes::from(vec![0; 6])), Ok(None));
        assert_eq!(
            d.decode_binary(Bytes::from(vec![0; 5])),
            Err(ParseError::AttachmentsTooLarge)
        );
        assert!(!d.is_waiting());
        assert_eq!(
            d.decode_text("54-[\"a\"]"),
            Err(ParseError::TooManyAttachments)
        );
        assert_eq!(d.decode_text("53-[\"a\"]"), Ok(None));
        d.reset();
        assert!(!d.is_waiting());
        assert_eq!(
            d.decode_text("2[\"a\"]"),
            Ok(Some(Packet::event("/", v("[\"a\"]"))))
        );
        // Default limit: 10 attachments accepted, 11 refused.
        assert_eq!(JsonDecoder::default().decode_text("510-[\"a\"]"), Ok(None));
        let eleven = JsonDecoder::default().decode_text("511-[\"a\"]");
        assert_eq!(eleven, Err(ParseError::TooManyAttachments));
    }

    #[test]
    fn encode_binary_placeholders_depth_first() {
        // protocol.md 2.3 observed: `452-["bin",ph0,{"nested":[ph1]}]` + 010203 + 04.
        let data = Value::Array(vec![
            "bin".into(),
            Value::Binary(vec![1, 2, 3]),
            Value::Map(vec![(
                "nested".into(),
                Value::Array(vec![Value::Binary(vec![4])]),
            )]),
        ]);
        let e = encode(&Packet::event("/", data));
        assert_eq!(e.text, format!("52-[\"bin\",{PH0},{{\"nested\":[{PH1}]}}]"));
        assert_eq!(
            e.attachments,
            vec![Bytes::from_static(&[1, 2, 3]), Bytes::from_static(&[4])]
        );
        // protocol.md 2.2 examples with binary.
        let e = encode(&Packet::event(
            "/",
            Value::Array(vec!["baz".into(), Value::Binary(vec![])]),
        ));
        assert_eq!(e.text, format!("51-[\"baz\",{PH0}]"));
        let e = encode(&Packet::ack(
            "/",
            15,
            Value::Array(vec!["bar".into(), Value::Binary(vec![9])]),
        ));
        assert_eq!(e.text, format!("61-15[\"bar\",{PH0}]"));
        let e = encode(
            &Packet::event(
                "/admin",
                Value::Array(vec!["a".into(), Value::Binary(vec![9])]),
            )
            .with_id(4),
        );
        assert_eq!(e.text, format!("51-/admin,4[\"a\",{PH0}]"));
        // A kind of BinaryEvent without binary is written as a plain event.
        let p = Packet {
            kind: PacketType::BinaryEvent,
            nsp: "/".into(),
            id: None,
            data: Some(v("[\"a\"]")),
        };
        assert_eq!(encode(&p).text, "2[\"a\"]");
        // More than 10 attachments can be sent (the limit is on input).
        let many = Value::Array(
            std::iter::once("m".into())
                .chain((0..12).map(|i| Value::Binary(vec![i])))
                .collect(),
        );
        let e = encode(&Packet::event("/", many));
        assert!(
            e.text
                .starts_with("512-[\"m\",{\"_placeholder\":true,\"num\":0},")
        );
        assert_eq!(e.attachments.len(), 12);
    }

    /// socket.io-parser 4.2.7 `Encoder.encode` output captured from Node 20.
    #[test]
    fn encode_matches_node_golden() {
        let data = Value::Array(vec![
            "a".into(),
            Value::Map(vec![
                ("z".into(), 1.into()),
                ("a".into(), Value::Array(vec![Value::Binary(vec![])])),
                (
                    "m".into(),
                    Value::Map(vec![("k".into(), Value::Binary(b"x".to_vec()))]),
                ),
            ]),
            Value::Binary(b"y".to_vec()),
        ]);
        let e = encode(&Packet::event("/admin", data).with_id(4));
        assert_eq!(
            e.text,
            concat!(
                r#"53-/admin,4["a",{"z":1,"a":[{"_placeholder":true,"num":0}],"#,
                r#""m":{"k":{"_placeholder":true,"num":1}}},{"_placeholder":true,"num":2}]"#
            )
        );
        let expected = vec![
            Bytes::new(),
            Bytes::from_static(b"x"),
            Bytes::from_static(b"y"),
        ];
        assert_eq!(e.attachments, expected);
        let data = Value::Array(vec!["bar".into(), Value::Binary(vec![9])]);
        let e = encode(&Packet::ack("/admin", 15, data));
        assert_eq!(
            e.text,
            r#"61-/admin,15["bar",{"_placeholder":true,"num":0}]"#
        );
        let s = "a\u{1e}b\n\t\u{1}\"\\/é😀\u{2028}";
        let e = encode(&Packet::event(
            "/",
            Value::Array(vec!["e".into(), s.into()]),
        ));
        assert_eq!(
            e.text,
            "2[\"e\",\"a\\u001eb\\n\\t\\u0001\\\"\\\\/é😀\u{2028}\"]"
        );
        assert_eq!(encode(&Packet::disconnect("/x")).text, "1/x,");
    }

    #[test]
    fn encode_other_forms() {
        // Empty namespace behaves as "/", Nil data is skipped like Node's `null != data`.
        let p = Packet {
            kind: PacketType::Connect,
            nsp: String::new(),
            id: None,
            data: Some(Value::Nil),
        };
        assert_eq!(encode(&p).text, "0");
        let p = Packet::connect("/", Some(Value::Map(vec![("sid".into(), "abc".into())])));
        assert_eq!(encode(&p).text, r#"0{"sid":"abc"}"#);
        // Binary outside events: as JSON.stringify(Buffer).
        let p = Packet::connect_error("/", Value::Map(vec![("b".into(), Value::Binary(vec![1]))]));
        let e = encode(&p);
        assert_eq!(e.text, r#"4{"b":{"type":"Buffer","data":[1]}}"#);
        assert!(e.attachments.is_empty());
        assert_eq!(encode(&Packet::disconnect("/")).text, "1");
        assert_eq!(
            encode(&Packet::event("/", v("[\"a\",1.0,1e21,-0,0.1]"))).text,
            "2[\"a\",1,1e+21,0,0.1]"
        );
    }

    /// Every prefix and every split point of valid packets: Ok or Err, never a panic.
    #[test]
    fn prefixes_never_panic() {
        let samples = [
            format!("52-789[\"message-with-ack\",{PH0},{PH1}]"),
            r#"3/admin,13["bar",{"é":"\u0000😀"}]"#.to_owned(),
            r#"0/custom,{"token":"abc"}"#.to_owned(),
            r#"44/random,{"message":"Invalid namespace"}"#.to_owned(),
            "1/é😀,".to_owned(),
        ];
        for s in &samples {
            for (i, _) in s.char_indices().chain(std::iter::once((s.len(), ' '))) {
                let (a, b) = s.split_at(i);
                let mut d = JsonDecoder::default();
                let _ = d.decode_text(a);
                let _ = d.decode_text(b);
                let _ = d.decode_binary(Bytes::from(b.as_bytes().to_vec()));
                let _ = d.decode_binary(Bytes::from(a.as_bytes().to_vec()));
            }
        }
    }

    /// A large packet decodes in reasonable (linear) time.
    #[test]
    fn large_input_is_linear() {
        let big = format!("2[\"a\",{}\"end\"]", "\"xxxxxxxxxx\",".repeat(100_000));
        let p = packet(&big);
        let Some(Value::Array(items)) = p.data else {
            panic!()
        };
        assert_eq!(items.len(), 100_002);
        let big_nsp = format!("0/{}", "n".repeat(1_000_000));
        assert_eq!(packet(&big_nsp).nsp.len(), 1_000_001);
        let many_dashes_missing = format!("5{}", "1".repeat(1_000_000));
        assert_eq!(
            decode(&many_dashes_missing),
            Err(ParseError::IllegalAttachments)
        );
    }
}
