//! The Socket.IO packet, shared by both parsers (protocol.md 2.1).

use crate::Value;

/// Socket.IO packet types (protocol.md 2.1).
///
/// After decoding, [`Packet::kind`] is never `BinaryEvent` / `BinaryAck`: the JSON parser reports
/// them as `Event` / `Ack` with the binaries inlined, and picks 5 / 6 again on output when the
/// data contains binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `0`: connect to a namespace (client) / connect reply (server).
    Connect = 0,
    /// `1`: leave a namespace / server-side disconnect.
    Disconnect = 1,
    /// `2`: an event `[name, args...]`.
    Event = 2,
    /// `3`: an ack reply `[args...]`.
    Ack = 3,
    /// `4`: a connect refusal (server only).
    ConnectError = 4,
    /// `5`: an event with binary attachments (JSON parser wire form only).
    BinaryEvent = 5,
    /// `6`: an ack with binary attachments (JSON parser wire form only).
    BinaryAck = 6,
}

impl PacketType {
    /// The type for a wire number `0..=6`.
    #[must_use]
    pub const fn from_u8(n: u8) -> Option<Self> {
        Some(match n {
            0 => Self::Connect,
            1 => Self::Disconnect,
            2 => Self::Event,
            3 => Self::Ack,
            4 => Self::ConnectError,
            5 => Self::BinaryEvent,
            6 => Self::BinaryAck,
            _ => return None,
        })
    }

    /// The wire number.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// `BinaryEvent` → `Event`, `BinaryAck` → `Ack`, others unchanged.
    #[must_use]
    pub const fn without_binary(self) -> Self {
        match self {
            Self::BinaryEvent => Self::Event,
            Self::BinaryAck => Self::Ack,
            other => other,
        }
    }
}

/// Event names that must never be delivered from a client: they have a meaning of their own on
/// one side or the other (socket.io-parser `RESERVED_EVENTS`).
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Whether `name` is one of [`RESERVED_EVENTS`].
#[must_use]
pub fn is_reserved_event(name: &str) -> bool {
    RESERVED_EVENTS.contains(&name)
}

/// The largest ack id accepted (JS `Number.MAX_SAFE_INTEGER`, 2^53-1; protocol.md 2.2).
pub const MAX_ACK_ID: u64 = (1 << 53) - 1;

/// One Socket.IO packet.
///
/// For `Event` / `Ack`, `data` is the array `[name, args...]` / `[args...]` with binary values
/// inline as [`Value::Binary`].
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// The packet type.
    pub kind: PacketType,
    /// The namespace, `"/"` for the main one.
    pub nsp: String,
    /// The ack id, if any.
    pub id: Option<u64>,
    /// The payload, if any.
    pub data: Option<Value>,
}

impl Packet {
    /// A CONNECT packet (client request, or server reply with `{"sid": ...}`).
    #[must_use]
    pub fn connect(nsp: impl Into<String>, data: Option<Value>) -> Self {
        Self {
            kind: PacketType::Connect,
            nsp: nsp.into(),
            id: None,
            data,
        }
    }

    /// A DISCONNECT packet.
    #[must_use]
    pub fn disconnect(nsp: impl Into<String>) -> Self {
        Self {
            kind: PacketType::Disconnect,
            nsp: nsp.into(),
            id: None,
            data: None,
        }
    }

    /// An EVENT packet; `data` is the array `[name, args...]`.
    #[must_use]
    pub fn event(nsp: impl Into<String>, data: Value) -> Self {
        Self {
            kind: PacketType::Event,
            nsp: nsp.into(),
            id: None,
            data: Some(data),
        }
    }

    /// An ACK packet replying to `id`; `data` is the array `[args...]`.
    #[must_use]
    pub fn ack(nsp: impl Into<String>, id: u64, data: Value) -> Self {
        Self {
            kind: PacketType::Ack,
            nsp: nsp.into(),
            id: Some(id),
            data: Some(data),
        }
    }

    /// A CONNECT_ERROR packet; `data` is `{"message": ..., "data"?: ...}` (or a string).
    #[must_use]
    pub fn connect_error(nsp: impl Into<String>, data: Value) -> Self {
        Self {
            kind: PacketType::ConnectError,
            nsp: nsp.into(),
            id: None,
            data: Some(data),
        }
    }

    /// The same packet with an ack id (an event that asks for an ack).
    #[must_use]
    pub fn with_id(mut self, id: u64) -> Self {
        self.id = Some(id);
        self
    }

    /// The event name of an EVENT packet whose name is a string (`data[0]`).
    #[must_use]
    pub fn event_name(&self) -> Option<&str> {
        match &self.data {
            Some(Value::Array(items)) => items.first().and_then(Value::as_str),
            _ => None,
        }
    }
}

/// Whether `data` is a valid EVENT payload for the default parser: a non-empty array whose
/// first element is a number, or a string that is not a reserved event name (protocol.md 2.2,
/// CVE-2023-32695).
#[must_use]
pub fn is_valid_event_data(data: &Value) -> bool {
    match data {
        Value::Array(items) => match items.first() {
            Some(Value::String(name)) => name.as_str().is_some_and(|n| !is_reserved_event(n)),
            Some(Value::Integer(_) | Value::F32(_) | Value::F64(_)) => true,
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_type_numbers() {
        for n in 0..=6 {
            assert_eq!(PacketType::from_u8(n).map(PacketType::as_u8), Some(n));
        }
        assert_eq!(PacketType::from_u8(7), None);
        assert_eq!(PacketType::BinaryEvent.without_binary(), PacketType::Event);
        assert_eq!(PacketType::BinaryAck.without_binary(), PacketType::Ack);
        assert_eq!(PacketType::Connect.without_binary(), PacketType::Connect);
    }

    #[test]
    fn constructors() {
        let p = Packet::event("/", Value::Array(vec!["a".into()])).with_id(3);
        assert_eq!(p.kind, PacketType::Event);
        assert_eq!(p.id, Some(3));
        assert_eq!(p.event_name(), Some("a"));
        assert_eq!(Packet::disconnect("/x").data, None);
        assert_eq!(Packet::ack("/", 1, Value::Array(vec![])).id, Some(1));
        assert_eq!(Packet::connect("/", None).kind, PacketType::Connect);
        assert_eq!(
            Packet::connect_error("/", "no".into()).kind,
            PacketType::ConnectError
        );
    }

    #[test]
    fn event_data_validation() {
        assert!(is_valid_event_data(&Value::Array(vec!["message".into()])));
        assert!(is_valid_event_data(&Value::Array(vec![7.into()])));
        assert!(is_valid_event_data(&Value::Array(vec![Value::F64(1.5)])));
        assert!(!is_valid_event_data(&Value::Array(vec![])));
        assert!(!is_valid_event_data(&Value::Array(vec![
            "disconnect".into()
        ])));
        assert!(!is_valid_event_data(&Value::Array(vec![Value::Map(
            vec![]
        )])));
        assert!(!is_valid_event_data(&Value::Map(vec![])));
    }
}
