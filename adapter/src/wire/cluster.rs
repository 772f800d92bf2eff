//! The ClusterAdapter protocol of socket.io-adapter 2.5.x (wire notes 4), sans IO: the
//! message envelope `{type, data, uid, nsp}` and every body, in JSON or msgpack; plus the
//! channels and routing of the sharded Redis adapter, `createShardedAdapter` (wire notes 5).
//!
//! # Protocol notes
//!
//! - JSON key order is Node's: `type, data, uid, nsp` (4.1), and inside `data` the order the
//!   ClusterAdapter builds it (`{packet, requestId, opts}`, `{opts, requestId}`, ...).
//! - Encoding (5.3): JSON, unless the type is BROADCAST (3), FETCH_SOCKETS_RESPONSE (8),
//!   SERVER_SIDE_EMIT (9), SERVER_SIDE_EMIT_RESPONSE (10) or BROADCAST_ACK (12) **and** `data`
//!   holds binary: then the whole message is notepack msgpack (a map with the same keys).
//!   Decoding: first byte `{` is JSON, anything else msgpack (2.2).
//! - `opts` always carries `flags` here (4.2), and the BROADCAST packet has no `nsp`.
//! - 8.2.x senders leave `nsp` out (5.6): it decodes as `None`.
//! - `undefined` values (an ack without argument) are left out of maps, as `JSON.stringify`
//!   and notepack 3 do.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use socketio::parser::msgpack::write_value;
use socketio::value::{has_binary, write_json};
use socketio::{Room, Value, map_get};

use super::{
    EventPacket, Flags, Opts, decode_any, dedup, rooms_of, string_field, write_array_header,
    write_map_header,
};
use crate::error::Error;

/// ClusterAdapter message types (wire notes 4.2).
pub mod kind {
    /// Heartbeat variant only: a node started.
    pub const INITIAL_HEARTBEAT: u64 = 1;
    /// Heartbeat variant only: a node is alive.
    pub const HEARTBEAT: u64 = 2;
    /// A broadcast, with a `requestId` when the sender waits for acks.
    pub const BROADCAST: u64 = 3;
    /// `socketsJoin()`.
    pub const SOCKETS_JOIN: u64 = 4;
    /// `socketsLeave()`.
    pub const SOCKETS_LEAVE: u64 = 5;
    /// `disconnectSockets()`.
    pub const DISCONNECT_SOCKETS: u64 = 6;
    /// `fetchSockets()`.
    pub const FETCH_SOCKETS: u64 = 7;
    /// Response to FETCH_SOCKETS.
    pub const FETCH_SOCKETS_RESPONSE: u64 = 8;
    /// `serverSideEmit()`, with a `requestId` when an ack is expected.
    pub const SERVER_SIDE_EMIT: u64 = 9;
    /// One node's answer to SERVER_SIDE_EMIT with ack.
    pub const SERVER_SIDE_EMIT_RESPONSE: u64 = 10;
    /// How many clients a node sent a broadcast with acks to (sent even when 0).
    pub const BROADCAST_CLIENT_COUNT: u64 = 11;
    /// One client's ack to a broadcast with acks.
    pub const BROADCAST_ACK: u64 = 12;
    /// Heartbeat variant only: a node is leaving.
    pub const ADAPTER_CLOSE: u64 = 13;
}

/// A fresh node uid or request id of the ClusterAdapter: 16 lowercase hex characters
/// (8 random bytes, wire notes 2.5).
#[must_use]
pub fn new_id() -> String {
    let mut bytes = [0u8; 8];
    rand::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A ClusterAdapter message: `{type, data, uid, nsp}` (wire notes 4.1).
#[derive(Debug, Clone, PartialEq)]
pub struct Message<'a> {
    /// The sender's uid (empty when a sender left it out).
    pub uid: String,
    /// The namespace (`None`: an 8.2.x sender, which leaves it out).
    pub nsp: Option<String>,
    /// Type and data.
    pub body: Body<'a>,
}

/// The type and `data` of a [`Message`] (wire notes 4.2).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Body<'a> {
    /// 1: no data.
    InitialHeartbeat,
    /// 2: no data.
    Heartbeat,
    /// 3: `{packet: {type: 2, data}, [requestId,] opts}`.
    Broadcast {
        /// `[event, ...args]` (borrowed when publishing: encoded without a copy).
        data: Cow<'a, [Value]>,
        /// Present for a broadcast with acks.
        request_id: Option<String>,
        /// Targets and flags.
        opts: Opts,
    },
    /// 4: `{opts, rooms}`.
    SocketsJoin {
        /// Target sockets.
        opts: Opts,
        /// Rooms to join.
        rooms: Vec<Room>,
    },
    /// 5: `{opts, rooms}`.
    SocketsLeave {
        /// Target sockets.
        opts: Opts,
        /// Rooms to leave.
        rooms: Vec<Room>,
    },
    /// 6: `{opts, close}`.
    DisconnectSockets {
        /// Target sockets.
        opts: Opts,
        /// Close the underlying connections.
        close: bool,
    },
    /// 7: `{opts, requestId}`.
    FetchSockets {
        /// Target sockets.
        opts: Opts,
        /// Request id.
        request_id: String,
    },
    /// 8: `{requestId, sockets}` (see [`super::socket_to_value`]).
    FetchSocketsResponse {
        /// Request id.
        request_id: String,
        /// The sockets, as sent.
        sockets: Vec<Value>,
    },
    /// 9: `{[requestId,] packet: [event, ...args]}`.
    ServerSideEmit {
        /// Present when an ack is expected.
        request_id: Option<String>,
        /// `[event, ...args]`.
        packet: Vec<Value>,
    },
    /// 10: `{requestId, packet}`: the first ack argument (`None`: `undefined`).
    ServerSideEmitResponse {
        /// Request id.
        request_id: String,
        /// The answer.
        packet: Option<Value>,
    },
    /// 11: `{requestId, clientCount}`.
    BroadcastClientCount {
        /// Request id.
        request_id: String,
        /// Clients the broadcast went to on that node.
        client_count: u64,
    },
    /// 12: `{requestId, packet}`: one client's first ack argument (`None`: `undefined`).
    BroadcastAck {
        /// Request id.
        request_id: String,
        /// The ack argument.
        packet: Option<Value>,
    },
    /// 13: no data.
    AdapterClose,
}

impl Body<'_> {
    /// The numeric type.
    #[must_use]
    pub fn kind(&self) -> u64 {
        match self {
            Self::InitialHeartbeat => kind::INITIAL_HEARTBEAT,
            Self::Heartbeat => kind::HEARTBEAT,
            Self::Broadcast { .. } => kind::BROADCAST,
            Self::SocketsJoin { .. } => kind::SOCKETS_JOIN,
            Self::SocketsLeave { .. } => kind::SOCKETS_LEAVE,
            Self::DisconnectSockets { .. } => kind::DISCONNECT_SOCKETS,
            Self::FetchSockets { .. } => kind::FETCH_SOCKETS,
            Self::FetchSocketsResponse { .. } => kind::FETCH_SOCKETS_RESPONSE,
            Self::ServerSideEmit { .. } => kind::SERVER_SIDE_EMIT,
            Self::ServerSideEmitResponse { .. } => kind::SERVER_SIDE_EMIT_RESPONSE,
            Self::BroadcastClientCount { .. } => kind::BROADCAST_CLIENT_COUNT,
            Self::BroadcastAck { .. } => kind::BROADCAST_ACK,
            Self::AdapterClose => kind::ADAPTER_CLOSE,
        }
    }

    /// Whether this is a response (8, 10, 11, 12), which goes to the requester only.
    #[must_use]
    pub fn is_response(&self) -> bool {
        matches!(
            self,
            Self::FetchSocketsResponse { .. }
                | Self::ServerSideEmitResponse { .. }
                | Self::BroadcastClientCount { .. }
                | Self::BroadcastAck { .. }
        )
    }

    /// The request id of a request or response that has one.
    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Broadcast { request_id, .. } | Self::ServerSideEmit { request_id, .. } => {
                request_id.as_deref()
            }
            Self::FetchSockets { request_id, .. }
            | Self::FetchSocketsResponse { request_id, .. }
            | Self::ServerSideEmitResponse { request_id, .. }
            | Self::BroadcastClientCount { request_id, .. }
            | Self::BroadcastAck { request_id, .. } => Some(request_id),
            _ => None,
        }
    }

    /// Whether the sharded adapter sends it as msgpack: a type that may hold binary, with
    /// binary inside (wire notes 5.3).
    fn needs_msgpack(&self) -> bool {
        match self {
            Self::Broadcast { data, .. } => data.iter().any(has_binary),
            Self::FetchSocketsResponse { sockets, .. } => sockets.iter().any(has_binary),
            Self::ServerSideEmit { packet, .. } => packet.iter().any(has_binary),
            Self::ServerSideEmitResponse { packet, .. } | Self::BroadcastAck { packet, .. } => {
                packet.as_ref().is_some_and(has_binary)
            }
            _ => false,
        }
    }

    fn has_data(&self) -> bool {
        !matches!(
            self,
            Self::InitialHeartbeat | Self::Heartbeat | Self::AdapterClose
        )
    }
}

impl Message<'_> {
    /// Decodes a message, JSON or msgpack by the first byte (wire notes 2.2).
    ///
    /// # Errors
    ///
    /// Undecodable bytes, an unknown `type`, or fields of the wrong shape.
    pub fn decode(payload: &[u8]) -> Result<Message<'static>, Error> {
        let v = decode_any(payload)?;
        if !v.is_map() {
            return Err(Error::Malformed("message is not an object"));
        }
        let ty = map_get(&v, "type")
            .and_then(Value::as_u64)
            .ok_or(Error::Malformed("message without a numeric type"))?;
        let uid = string_field(&v, "uid").unwrap_or_default();
        let nsp = match map_get(&v, "nsp") {
            None => None,
            Some(Value::String(s)) => Some(s.as_str().unwrap_or_default().to_owned()),
            Some(_) => return Err(Error::Malformed("message nsp is not a string")),
        };
        let data = map_get(&v, "data");
        let data_map = || match data {
            Some(d) if d.is_map() => Ok(d),
            _ => Err(Error::Malformed("message data is not an object")),
        };
        let request_id = |d: &Value| {
            string_field(d, "requestId").ok_or(Error::Malformed("message without requestId"))
        };
        let opts = |d: &Value| Opts::from_value(map_get(d, "opts"));
        let body = match ty {
            kind::INITIAL_HEARTBEAT => Body::InitialHeartbeat,
            kind::HEARTBEAT => Body::Heartbeat,
            kind::ADAPTER_CLOSE => Body::AdapterClose,
            kind::BROADCAST => {
                let d = data_map()?;
                Body::Broadcast {
                    data: Cow::Owned(EventPacket::from_value(map_get(d, "packet"))?.data),
                    request_id: string_field(d, "requestId"),
                    opts: with_flags(opts(d)),
                }
            }
            kind::SOCKETS_JOIN | kind::SOCKETS_LEAVE => {
                let d = data_map()?;
                let (opts, rooms) = (opts(d), rooms_of(map_get(d, "rooms")));
                if ty == kind::SOCKETS_JOIN {
                    Body::SocketsJoin { opts, rooms }
                } else {
                    Body::SocketsLeave { opts, rooms }
                }
            }
            kind::DISCONNECT_SOCKETS => {
                let d = data_map()?;
                Body::DisconnectSockets {
                    opts: opts(d),
                    close: map_get(d, "close").and_then(Value::as_bool) == Some(true),
                }
            }
            kind::FETCH_SOCKETS => {
                let d = data_map()?;
                Body::FetchSockets {
                    opts: opts(d),
                    request_id: request_id(d)?,
                }
            }
            kind::FETCH_SOCKETS_RESPONSE => {
                let d = data_map()?;
                Body::FetchSocketsResponse {
                    request_id: request_id(d)?,
                    sockets: match map_get(d, "sockets") {
                        Some(Value::Array(items)) => items.clone(),
                        _ => return Err(Error::Malformed("sockets is not an array")),
                    },
                }
            }
            kind::SERVER_SIDE_EMIT => {
                let d = data_map()?;
                Body::ServerSideEmit {
                    request_id: string_field(d, "requestId"),
                    packet: match map_get(d, "packet") {
                        Some(Value::Array(items)) if !items.is_empty() => items.clone(),
                        _ => {
                            return Err(Error::Malformed(
                                "serverSideEmit packet is not [event, ...]",
                            ));
                        }
                    },
                }
            }
            kind::SERVER_SIDE_EMIT_RESPONSE | kind::BROADCAST_ACK => {
                let d = data_map()?;
                let (request_id, packet) = (request_id(d)?, map_get(d, "packet").cloned());
                if ty == kind::BROADCAST_ACK {
                    Body::BroadcastAck { request_id, packet }
                } else {
                    Body::ServerSideEmitResponse { request_id, packet }
                }
            }
            kind::BROADCAST_CLIENT_COUNT => {
                let d = data_map()?;
                Body::BroadcastClientCount {
                    request_id: request_id(d)?,
                    client_count: match map_get(d, "clientCount") {
                        Some(Value::Integer(n)) => n.as_u64(),
                        Some(Value::F64(f)) if f.is_finite() && *f >= 0.0 => Some(*f as u64),
                        _ => None,
                    }
                    .ok_or(Error::Malformed("clientCount is not a count"))?,
                }
            }
            _ => return Err(Error::Malformed("unknown message type")),
        };
        Ok(Message { uid, nsp, body })
    }

    /// Encodes the message as the sharded adapter does: JSON, or msgpack when a type that may
    /// hold binary does (wire notes 5.3).
    #[must_use]
    pub fn encode(&self) -> Bytes {
        if self.body.needs_msgpack() {
            self.encode_msgpack()
        } else {
            self.encode_json()
        }
    }

    /// The JSON form, whatever the content (binary would be written as Node writes a
    /// `Buffer`: `{"type":"Buffer","data":[...]}`).
    #[must_use]
    pub fn encode_json(&self) -> Bytes {
        let mut out = JsonOut::default();
        self.write(&mut out);
        Bytes::from(out.text)
    }

    /// The msgpack form (notepack.io conventions), whatever the content.
    #[must_use]
    pub fn encode_msgpack(&self) -> Bytes {
        let mut out = MsgpackOut(BytesMut::with_capacity(128));
        self.write(&mut out);
        out.0.freeze()
    }

    fn write(&self, o: &mut impl Out) {
        let body = &self.body;
        let len = 2 + usize::from(body.has_data()) + usize::from(self.nsp.is_some());
        o.map(len);
        o.key("type");
        o.uint(body.kind());
        if body.has_data() {
            o.key("data");
            write_body(o, body);
        }
        o.key("uid");
        o.str(&self.uid);
        if let Some(nsp) = &self.nsp {
            o.key("nsp");
            o.str(nsp);
        }
        o.end_map();
    }
}

/// Node's `encodeOptions` always writes `flags`; a sender that left it out means `{}`.
fn with_flags(mut opts: Opts) -> Opts {
    opts.flags.get_or_insert_with(Flags::new);
    opts
}

/// `opts` of a ClusterAdapter message: `{rooms, except, flags}`, rooms and except each once
/// (Node sends Sets), `flags` always there.
#[must_use]
pub fn opts_of(rooms: &[Room], except: &[Room], flags: Flags) -> Opts {
    Opts {
        rooms: dedup(rooms),
        except: dedup(except),
        flags: Some(flags),
    }
}

fn write_body(o: &mut impl Out, body: &Body<'_>) {
    match body {
        Body::InitialHeartbeat | Body::Heartbeat | Body::AdapterClose => {}
        Body::Broadcast {
            data,
            request_id,
            opts,
        } => {
            o.map(2 + usize::from(request_id.is_some()));
            o.key("packet");
            o.map(2);
            o.key("type");
            o.uint(2);
            o.key("data");
            o.values(data);
            o.end_map();
            if let Some(id) = request_id {
                o.key("requestId");
                o.str(id);
            }
            o.key("opts");
            write_opts(o, opts);
            o.end_map();
        }
        Body::SocketsJoin { opts, rooms } | Body::SocketsLeave { opts, rooms } => {
            o.map(2);
            o.key("opts");
            write_opts(o, opts);
            o.key("rooms");
            o.rooms(rooms);
            o.end_map();
        }
        Body::DisconnectSockets { opts, close } => {
            o.map(2);
            o.key("opts");
            write_opts(o, opts);
            o.key("close");
            o.value(&Value::Boolean(*close));
            o.end_map();
        }
        Body::FetchSockets { opts, request_id } => {
            o.map(2);
            o.key("opts");
            write_opts(o, opts);
            o.key("requestId");
            o.str(request_id);
            o.end_map();
        }
        Body::FetchSocketsResponse {
            request_id,
            sockets,
        } => {
            o.map(2);
            o.key("requestId");
            o.str(request_id);
            o.key("sockets");
            o.values(sockets);
            o.end_map();
        }
        Body::ServerSideEmit { request_id, packet } => {
            o.map(1 + usize::from(request_id.is_some()));
            if let Some(id) = request_id {
                o.key("requestId");
                o.str(id);
            }
            o.key("packet");
            o.values(packet);
            o.end_map();
        }
        Body::ServerSideEmitResponse { request_id, packet }
        | Body::BroadcastAck { request_id, packet } => {
            o.map(1 + usize::from(packet.is_some()));
            o.key("requestId");
            o.str(request_id);
            if let Some(packet) = packet {
                o.key("packet");
                o.value(packet);
            }
            o.end_map();
        }
        Body::BroadcastClientCount {
            request_id,
            client_count,
        } => {
            o.map(2);
            o.key("requestId");
            o.str(request_id);
            o.key("clientCount");
            o.uint(*client_count);
            o.end_map();
        }
    }
}

fn write_opts(o: &mut impl Out, opts: &Opts) {
    o.map(3);
    o.key("rooms");
    o.rooms(&opts.rooms);
    o.key("except");
    o.rooms(&opts.except);
    o.key("flags");
    let flags = opts.flags.as_ref().map_or(&[][..], Flags::entries);
    o.map(flags.len());
    for (k, v) in flags {
        o.key(k);
        o.value(v);
    }
    o.end_map();
    o.end_map();
}

/// One writer for both encodings: msgpack needs lengths up front, JSON commas and closing
/// brackets; the message layout is written once.
trait Out {
    fn map(&mut self, len: usize);
    fn end_map(&mut self);
    fn key(&mut self, name: &str);
    fn value(&mut self, value: &Value);
    fn uint(&mut self, n: u64);
    fn values(&mut self, items: &[Value]);
    fn rooms(&mut self, rooms: &[Room]);
    fn str(&mut self, s: &str) {
        self.value(&Value::from(s));
    }
}

#[derive(Default)]
struct JsonOut {
    text: String,
    /// One entry per open object: whether no member was written yet.
    first: Vec<bool>,
    /// A key was just written: the next value needs no comma.
    after_key: bool,
}

impl JsonOut {
    fn sep(&mut self) {
        if std::mem::take(&mut self.after_key) {
            return;
        }
        if let Some(first) = self.first.last_mut()
            && !std::mem::take(first)
        {
            self.text.push(',');
        }
    }
}

impl Out for JsonOut {
    fn map(&mut self, _len: usize) {
        self.sep();
        self.text.push('{');
        self.first.push(true);
    }

    fn end_map(&mut self) {
        self.first.pop();
        self.text.push('}');
    }

    fn key(&mut self, name: &str) {
        self.sep();
        write_json(&mut self.text, &Value::from(name));
        self.text.push(':');
        self.after_key = true;
    }

    fn value(&mut self, value: &Value) {
        self.sep();
        write_json(&mut self.text, value);
    }

    fn uint(&mut self, n: u64) {
        self.sep();
        self.text.push_str(&n.to_string());
    }

    fn values(&mut self, items: &[Value]) {
        self.sep();
        self.text.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            write_json(&mut self.text, item);
        }
        self.text.push(']');
    }

    fn rooms(&mut self, rooms: &[Room]) {
        self.sep();
        self.text.push('[');
        for (i, room) in rooms.iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            write_json(&mut self.text, &Value::from(room.as_str()));
        }
        self.text.push(']');
    }
}

struct MsgpackOut(BytesMut);

impl Out for MsgpackOut {
    fn map(&mut self, len: usize) {
        write_map_header(&mut self.0, len);
    }

    fn end_map(&mut self) {}

    fn key(&mut self, name: &str) {
        self.str(name);
    }

    fn value(&mut self, value: &Value) {
        write_value(&mut self.0, value);
    }

    fn uint(&mut self, n: u64) {
        // Smallest form, as notepack: positive fixint for the types.
        write_value(&mut self.0, &Value::from(n));
    }

    fn values(&mut self, items: &[Value]) {
        write_array_header(&mut self.0, items.len());
        for item in items {
            write_value(&mut self.0, item);
        }
    }

    fn rooms(&mut self, rooms: &[Room]) {
        write_array_header(&mut self.0, rooms.len());
        for room in rooms {
            self.str(room);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The sharded adapter's channels and routing
// ---------------------------------------------------------------------------------------------

/// Which channels a sharded node subscribes, and where it publishes single-room broadcasts
/// (wire notes 5.2). The whole cluster must agree on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SubscriptionMode {
    /// Main and private channels only; everything is published on the main channel.
    Static,
    /// Also a channel per public room (not a socket id) present on the node. The default.
    #[default]
    Dynamic,
    /// Also a channel per room, socket-id rooms included (8.3.0).
    DynamicPrivate,
}

impl SubscriptionMode {
    /// `static`, `dynamic` or `dynamic-private`, as Node's `subscriptionMode` option.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "static" => Some(Self::Static),
            "dynamic" => Some(Self::Dynamic),
            "dynamic-private" => Some(Self::DynamicPrivate),
            _ => None,
        }
    }

    /// The option's name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::Dynamic => "dynamic",
            Self::DynamicPrivate => "dynamic-private",
        }
    }

    /// Whether a node in this mode subscribes the channel of a room it has; `socket_id` says
    /// whether the room is one of its sockets' own rooms (Node's `shouldUseASeparateNamespace`).
    #[must_use]
    pub fn subscribes_room(self, socket_id: bool) -> bool {
        match self {
            Self::Static => false,
            Self::Dynamic => !socket_id,
            Self::DynamicPrivate => true,
        }
    }
}

/// Whether Node's dynamic mode takes `room` for a socket id: a string of length exactly 20
/// (JS length: UTF-16 code units; wire notes 2.5, 5.2).
#[must_use]
pub fn looks_like_socket_id(room: &str) -> bool {
    room.len() >= 20 && room.encode_utf16().count() == 20
}

/// The channels of one namespace under a `channelPrefix` (wire notes 5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedChannels {
    main: String,
}

impl ShardedChannels {
    /// The channels of namespace `nsp` (starting with `/`) under `prefix`.
    #[must_use]
    pub fn new(prefix: &str, nsp: &str) -> Self {
        Self {
            main: format!("{prefix}#{nsp}#"),
        }
    }

    /// `<prefix>#<nsp>#`: every message not routed elsewhere; counted by `SHARDNUMSUB`.
    #[must_use]
    pub fn main(&self) -> &str {
        &self.main
    }

    /// `<prefix>#<nsp>#<uid>#`: responses to the node `uid`.
    #[must_use]
    pub fn private(&self, uid: &str) -> String {
        format!("{}{uid}#", self.main)
    }

    /// `<prefix>#<nsp>#<room>#`: plain broadcasts to exactly that room (dynamic modes).
    #[must_use]
    pub fn room(&self, room: &str) -> String {
        format!("{}{room}#", self.main)
    }

    /// Where a node in `mode` publishes `message` (Node's `computeChannel`): the room channel
    /// for a broadcast without acks to exactly one room in the dynamic modes (unless, in
    /// `dynamic`, the room looks like a socket id), else the main channel. Responses go to
    /// [`private`](Self::private) instead.
    #[must_use]
    pub fn for_message(&self, message: &Message<'_>, mode: SubscriptionMode) -> String {
        if let Body::Broadcast {
            request_id: None,
            opts,
            ..
        } = &message.body
            && let [room] = opts.rooms.as_slice()
        {
            let dynamic = match mode {
                SubscriptionMode::Static => false,
                SubscriptionMode::Dynamic => !looks_like_socket_id(room),
                SubscriptionMode::DynamicPrivate => true,
            };
            if dynamic {
                return self.room(room);
            }
        }
        self.main.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_16_hex() {
        let id = new_id();
        assert_eq!(id.len(), 16);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }

    #[test]
    fn routing() {
        let c = ShardedChannels::new("socket.io", "/");
        let msg = |rooms: &[&str], request_id: Option<&str>| Message {
            uid: "u".into(),
            nsp: Some("/".into()),
            body: Body::Broadcast {
                data: Cow::Owned(vec![Value::from("e")]),
                request_id: request_id.map(str::to_owned),
                opts: opts_of(
                    &rooms.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>(),
                    &[],
                    Flags::new(),
                ),
            },
        };
        let sid = "l-IgHZX11ioVf30lAAAD";
        use SubscriptionMode::*;
        assert_eq!(c.for_message(&msg(&["r"], None), Dynamic), "socket.io#/#r#");
        assert_eq!(c.for_message(&msg(&["r"], None), Static), "socket.io#/#");
        assert_eq!(c.for_message(&msg(&[sid], None), Dynamic), "socket.io#/#");
        assert_eq!(
            c.for_message(&msg(&[sid], None), DynamicPrivate),
            format!("socket.io#/#{sid}#")
        );
        assert_eq!(
            c.for_message(&msg(&["r"], Some("x")), Dynamic),
            "socket.io#/#"
        );
        assert_eq!(
            c.for_message(&msg(&["a", "b"], None), Dynamic),
            "socket.io#/#"
        );
        assert!(looks_like_socket_id(sid));
        assert!(!looks_like_socket_id("ééééééééééééééééééé"));
        assert!(looks_like_socket_id("éééééééééééééééééééé"));
    }

    #[test]
    fn hostile_inputs_are_errors() {
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            b"{\"type\":99,\"uid\":\"x\"}",
            b"{\"type\":3,\"uid\":\"x\"}",
            b"{\"type\":3,\"data\":{\"packet\":{\"type\":5,\"data\":[]}}}",
            b"{\"type\":7,\"data\":{}}",
            b"{\"type\":8,\"data\":{\"requestId\":\"a\"}}",
            b"{\"type\":9,\"data\":{\"packet\":[]}}",
            b"{\"type\":11,\"data\":{\"requestId\":\"a\",\"clientCount\":-1}}",
            b"{\"type\":3,\"nsp\":1,\"data\":{}}",
            b"\xc1",
        ] {
            assert!(Message::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn undefined_is_left_out() {
        let m = Message {
            uid: "u".into(),
            nsp: Some("/".into()),
            body: Body::BroadcastAck {
                request_id: "r".into(),
                packet: None,
            },
        };
        assert_eq!(
            &m.encode()[..],
            br#"{"type":12,"data":{"requestId":"r"},"uid":"u","nsp":"/"}"#
        );
        assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        assert_eq!(Message::decode(&m.encode_msgpack()).unwrap(), m);
    }
}
