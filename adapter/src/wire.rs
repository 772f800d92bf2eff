//! The classic Redis adapter protocol (`@socket.io/redis-adapter` 8.x `createAdapter`, and
//! `@socket.io/redis-emitter` 5.x), sans IO: channel names, and every message as bytes in and
//! out. The ClusterAdapter protocol of the sharded adapter is in [`cluster`]. Drivers only move these bytes; see `shared/notes/redis-adapter-wire.md` (cited as
//! "wire notes") and the captured vectors in `shared/vectors/redis-adapter/`.
//!
//! Decoders take untrusted input (anyone who can `PUBLISH`): they never panic, and refuse what
//! does not have the shape Node sends with [`Error::Malformed`]. Unknown fields are ignored and
//! key order does not matter (wire notes 2.3, 9).
//!
//! # Protocol notes
//!
//! - Broadcasts are always msgpack arrays `[uid, packet, opts]` (wire notes 3.2). Requests and
//!   responses are JSON, except BROADCAST (7) and BROADCAST_ACK (9), which are msgpack maps;
//!   receivers tell them apart by the first byte: `{` is JSON, anything else msgpack (2.2).
//! - msgpack is read and written as notepack.io does ([`socketio::parser::msgpack`]): smallest
//!   integer forms, float64 for other numbers, `bin` for binary. Legacy notepack 2 forms
//!   (`d4 00 00` undefined, `c7 .. 00` ArrayBuffer) are accepted. Dates stay [`Value::Ext`]
//!   until [`normalize_dates`] turns them into the ISO strings Node's clients would see.
//! - JSON is read and written as `JSON.parse` / `JSON.stringify` do ([`socketio::value`]),
//!   binary as `{"type":"Buffer","data":[...]}`.
//! - Rooms are strings here. Node keeps numeric rooms (`to(123)`) apart from their string form;
//!   a numeric room on the wire is read as its decimal string (deviation, wire notes 3.1).

pub mod cluster;
mod date;
mod sockets;

use bytes::{BufMut, Bytes, BytesMut};
use socketio::parser::msgpack::{read_value, write_value};
use socketio::value::{from_json_str, write_json};
use socketio::{BroadcastOptions, Room, Value, map_get};

pub use date::normalize_dates;
pub use sockets::{socket_from_value, socket_to_value};

use crate::error::Error;

/// The uid the emitter publishes with (wire notes 2.5, 6).
pub const EMITTER_UID: &str = "emitter";

/// Request and response type codes (wire notes 3.3).
pub mod kind {
    /// `adapter.sockets()` (7.x only; 8.x still answers).
    pub const SOCKETS: u64 = 0;
    /// `allRooms()`.
    pub const ALL_ROOMS: u64 = 1;
    /// `socketsJoin()` (and 7.x `remoteJoin`).
    pub const REMOTE_JOIN: u64 = 2;
    /// `socketsLeave()` (and 7.x `remoteLeave`).
    pub const REMOTE_LEAVE: u64 = 3;
    /// `disconnectSockets()` (and 7.x `remoteDisconnect`).
    pub const REMOTE_DISCONNECT: u64 = 4;
    /// `fetchSockets()`.
    pub const REMOTE_FETCH: u64 = 5;
    /// `serverSideEmit()`, and its ack response.
    pub const SERVER_SIDE_EMIT: u64 = 6;
    /// Broadcast with acks.
    pub const BROADCAST: u64 = 7;
    /// Response: how many clients a node sent a broadcast with acks to.
    pub const BROADCAST_CLIENT_COUNT: u64 = 8;
    /// Response: one client's ack.
    pub const BROADCAST_ACK: u64 = 9;
}

/// A fresh node uid or request id: 6 characters of the URL-safe alphabet, as `uid2(6)`
/// (wire notes 2.5).
#[must_use]
pub fn new_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = [0u8; 6];
    rand::fill(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b % 64)]))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Channels
// ---------------------------------------------------------------------------------------------

/// The channels of one namespace (wire notes 3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channels {
    broadcast: String,
    request: String,
    response: String,
}

impl Channels {
    /// The channels of namespace `nsp` (starting with `/`) under prefix `key`.
    #[must_use]
    pub fn new(key: &str, nsp: &str) -> Self {
        Self {
            broadcast: format!("{key}#{nsp}#"),
            request: format!("{key}-request#{nsp}#"),
            response: format!("{key}-response#{nsp}#"),
        }
    }

    /// `<key>#<nsp>#`: broadcasts to zero or several rooms.
    #[must_use]
    pub fn broadcast(&self) -> &str {
        &self.broadcast
    }

    /// `<key>#<nsp>#*`: the pattern every node PSUBSCRIBEs.
    #[must_use]
    pub fn pattern(&self) -> String {
        format!("{}*", self.broadcast)
    }

    /// `<key>#<nsp>#<room>#`: broadcasts to exactly one room.
    #[must_use]
    pub fn room(&self, room: &str) -> String {
        format!("{}{room}#", self.broadcast)
    }

    /// Where a broadcast to `rooms` goes: the room channel when there is exactly one room.
    #[must_use]
    pub fn broadcast_for(&self, rooms: &[Room]) -> String {
        match rooms {
            [room] => self.room(room),
            _ => self.broadcast.clone(),
        }
    }

    /// `<key>-request#<nsp>#`: every request.
    #[must_use]
    pub fn request(&self) -> &str {
        &self.request
    }

    /// `<key>-response#<nsp>#`: the shared response channel.
    #[must_use]
    pub fn response(&self) -> &str {
        &self.response
    }

    /// `<key>-response#<nsp>#<uid>#`: responses addressed to the node `uid`.
    #[must_use]
    pub fn specific_response(&self, uid: &str) -> String {
        format!("{}{uid}#", self.response)
    }

    /// Where a responder publishes its answer to `request_uid`: the requester's own channel
    /// when the responder has `publishOnSpecificResponseChannel`, else the shared one
    /// (wire notes 3.3).
    #[must_use]
    pub fn response_for(&self, request_uid: Option<&str>, specific: bool) -> String {
        match request_uid {
            Some(uid) if specific => self.specific_response(uid),
            _ => self.response.clone(),
        }
    }

    /// For a channel that matched [`pattern`](Self::pattern): `Some("")` for the namespace
    /// channel, `Some(room)` for a room channel, `None` for anything else (Node takes what is
    /// between the prefix and the final `#`, wire notes 3.2 rule 1).
    #[must_use]
    pub fn room_of<'a>(&self, channel: &'a [u8]) -> Option<&'a [u8]> {
        let rest = channel.strip_prefix(self.broadcast.as_bytes())?;
        if rest.is_empty() {
            return Some(rest);
        }
        rest.strip_suffix(b"#")
    }

    /// Whether `channel` is one of the response channels (shared or specific).
    #[must_use]
    pub fn is_response(&self, channel: &[u8]) -> bool {
        channel.starts_with(self.response.as_bytes())
    }

    /// Whether `channel` is the request channel.
    #[must_use]
    pub fn is_request(&self, channel: &[u8]) -> bool {
        channel == self.request.as_bytes()
    }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces: flags, opts, the packet
// ---------------------------------------------------------------------------------------------

/// `opts.flags`: a JS object in insertion order (`volatile`, `compress`, `timeout`,
/// `expectSingleResponse`, ...). Setting a flag again keeps its first position, as
/// `Object.assign` does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flags(Vec<(String, Value)>);

impl Flags {
    /// No flags.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The flags a broadcast with `opts` carries: `volatile: true`, `compress: false` when
    /// set (Node only writes flags that were set; `compress(true)` is the default anyway).
    #[must_use]
    pub fn from_options(opts: &BroadcastOptions) -> Self {
        let mut flags = Self::new();
        if opts.volatile {
            flags.set("volatile", Value::Boolean(true));
        }
        if !opts.compress {
            flags.set("compress", Value::Boolean(false));
        }
        flags
    }

    /// Sets a flag.
    pub fn set(&mut self, name: &str, value: Value) {
        match self.0.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_owned(), value)),
        }
    }

    /// A flag's value.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// `volatile` is `true`.
    #[must_use]
    pub fn volatile(&self) -> bool {
        self.get("volatile").and_then(Value::as_bool) == Some(true)
    }

    /// `compress`, if set to a boolean.
    #[must_use]
    pub fn compress(&self) -> Option<bool> {
        self.get("compress").and_then(Value::as_bool)
    }

    /// `timeout` in ms, if set to a non-negative number.
    #[must_use]
    pub fn timeout_ms(&self) -> Option<u64> {
        match self.get("timeout")? {
            Value::Integer(n) => n.as_u64(),
            Value::F64(f) if f.is_finite() && *f >= 0.0 => Some(*f as u64),
            _ => None,
        }
    }

    /// Every flag, in order.
    #[must_use]
    pub fn entries(&self) -> &[(String, Value)] {
        &self.0
    }

    fn from_value(value: Option<&Value>) -> Self {
        let Some(Value::Map(entries)) = value else {
            return Self::new();
        };
        Self(
            entries
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone())))
                .collect(),
        )
    }

    fn write_msgpack(&self, out: &mut BytesMut) {
        write_map_header(out, self.0.len());
        for (k, v) in &self.0 {
            write_str(out, k);
            write_value(out, v);
        }
    }
}

/// Which sockets a message targets: `opts` of broadcasts and requests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Opts {
    /// Target rooms (every socket when empty).
    pub rooms: Vec<Room>,
    /// Rooms left out.
    pub except: Vec<Room>,
    /// `flags`: present in broadcasts, absent in REMOTE_* requests (wire notes 3.3).
    pub flags: Option<Flags>,
}

impl Opts {
    /// The opts of a broadcast with `opts` (rooms, except, flags).
    #[must_use]
    pub fn broadcast(opts: &BroadcastOptions) -> Self {
        Self {
            rooms: opts.rooms.clone(),
            except: dedup(&opts.except),
            flags: Some(Flags::from_options(opts)),
        }
    }

    /// The opts of a REMOTE_* request: rooms and except, no flags.
    #[must_use]
    pub fn targets(opts: &BroadcastOptions) -> Self {
        Self {
            rooms: opts.rooms.clone(),
            except: opts.except.clone(),
            flags: None,
        }
    }

    /// As the socketio crate's options (never `local`: that never goes on the wire).
    #[must_use]
    pub fn to_options(&self) -> BroadcastOptions {
        let mut opts = BroadcastOptions::all();
        opts.rooms = dedup(&self.rooms);
        opts.except = dedup(&self.except);
        if let Some(flags) = &self.flags {
            opts.volatile = flags.volatile();
            opts.compress = flags.compress().unwrap_or(true);
        }
        opts
    }

    fn from_value(value: Option<&Value>) -> Self {
        // Node turns a missing list into an empty Set.
        Self {
            rooms: rooms_of(value.and_then(|v| map_get(v, "rooms"))),
            except: rooms_of(value.and_then(|v| map_get(v, "except"))),
            flags: value
                .and_then(|v| map_get(v, "flags"))
                .map(|f| Flags::from_value(Some(f))),
        }
    }

    /// `{rooms, except, flags}` (nodes) or `{rooms, flags, except}` (the emitter).
    fn write_msgpack(&self, out: &mut BytesMut, layout: Layout) {
        let flags = self.flags.as_ref();
        write_map_header(out, 2 + usize::from(flags.is_some()));
        write_str(out, "rooms");
        write_rooms(out, &self.rooms);
        if layout == Layout::Emitter
            && let Some(flags) = flags
        {
            write_str(out, "flags");
            flags.write_msgpack(out);
        }
        write_str(out, "except");
        write_rooms(out, &self.except);
        if layout == Layout::Node
            && let Some(flags) = flags
        {
            write_str(out, "flags");
            flags.write_msgpack(out);
        }
    }

    fn write_json(&self, obj: &mut JsonObject<'_>) {
        obj.raw("opts", |out| {
            let mut o = JsonObject::new(out);
            o.rooms("rooms", &self.rooms);
            o.rooms("except", &self.except);
            o.end();
        });
    }
}

/// Key order of `opts` in a broadcast: nodes write `{rooms, except, flags}`, the emitter
/// `{rooms, flags, except}` (wire notes 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A Socket.IO node.
    Node,
    /// `@socket.io/redis-emitter`.
    Emitter,
}

/// The Socket.IO packet inside a broadcast: `{type: 2, data: [event, ...args], nsp}`. Always
/// type 2 (EVENT) with binary inline, never 5 (wire notes 2.1); never an `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPacket {
    /// `[event, ...args]`.
    pub data: Vec<Value>,
    /// The namespace (`"/"` when a sender left it out, wire notes 3.2 rule 3).
    pub nsp: String,
}

impl EventPacket {
    fn from_value(value: Option<&Value>) -> Result<Self, Error> {
        let value = value.ok_or(Error::Malformed("no packet"))?;
        if !value.is_map() {
            return Err(Error::Malformed("packet is not a map"));
        }
        match map_get(value, "type").and_then(Value::as_u64) {
            Some(2) => {}
            _ => return Err(Error::Malformed("packet type is not EVENT (2)")),
        }
        let data = match map_get(value, "data") {
            Some(Value::Array(items)) => items.clone(),
            _ => return Err(Error::Malformed("packet data is not an array")),
        };
        let nsp = match map_get(value, "nsp") {
            None | Some(Value::Nil) => "/".to_owned(),
            Some(Value::String(s)) => s.as_str().unwrap_or("/").to_owned(),
            Some(_) => return Err(Error::Malformed("packet nsp is not a string")),
        };
        Ok(Self { data, nsp })
    }

    fn write_msgpack(&self, out: &mut BytesMut) {
        write_packet(out, &self.data, &self.nsp);
    }
}

/// `{type: 2, data, nsp}` in notepack msgpack.
fn write_packet(out: &mut BytesMut, data: &[Value], nsp: &str) {
    write_map_header(out, 3);
    write_str(out, "type");
    out.put_u8(0x02);
    write_str(out, "data");
    write_array_header(out, data.len());
    for item in data {
        write_value(out, item);
    }
    write_str(out, "nsp");
    write_str(out, nsp);
}

/// Encodes a broadcast `[uid, {type: 2, data, nsp}, opts]` from borrowed parts (what
/// [`Broadcast::encode`] does, without building a [`Broadcast`]): the hot path encodes once
/// and copies no payload.
#[must_use]
pub fn encode_broadcast(
    uid: &str,
    data: &[Value],
    nsp: &str,
    opts: &Opts,
    layout: Layout,
) -> Bytes {
    let mut out = BytesMut::with_capacity(64);
    out.put_u8(0x93);
    write_str(&mut out, uid);
    write_packet(&mut out, data, nsp);
    match &opts.flags {
        Some(_) => opts.write_msgpack(&mut out, layout),
        None => {
            let mut opts = opts.clone();
            opts.flags = Some(Flags::new());
            opts.write_msgpack(&mut out, layout);
        }
    }
    out.freeze()
}

// ---------------------------------------------------------------------------------------------
// Broadcast
// ---------------------------------------------------------------------------------------------

/// A broadcast: msgpack `[uid, packet, opts]` on `<key>#<nsp>#` or a room channel (wire
/// notes 3.2).
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    /// The publisher's uid (`"emitter"` for the emitter).
    pub uid: String,
    /// The packet.
    pub packet: EventPacket,
    /// Targets and flags.
    pub opts: Opts,
}

impl Broadcast {
    /// Decodes a broadcast (always msgpack, whatever the first byte).
    ///
    /// # Errors
    ///
    /// Not msgpack, or not `[string, packet, opts]`.
    pub fn decode(payload: &[u8]) -> Result<Self, Error> {
        let value = read_value(payload).map_err(|_| Error::Malformed("invalid msgpack"))?;
        let Value::Array(items) = value else {
            return Err(Error::Malformed("broadcast is not an array"));
        };
        let mut items = items.into_iter();
        let uid = match items.next() {
            Some(Value::String(s)) => s.into_str().unwrap_or_default(),
            _ => return Err(Error::Malformed("broadcast uid is not a string")),
        };
        let packet = EventPacket::from_value(items.next().as_ref())?;
        let opts = items.next();
        if !opts.as_ref().is_some_and(Value::is_map) {
            return Err(Error::Malformed("broadcast opts is not a map"));
        }
        Ok(Self {
            uid,
            packet,
            opts: Opts::from_value(opts.as_ref()),
        })
    }

    /// Encodes it with the opts key order of `layout`. `opts.flags` `None` is written as `{}`.
    #[must_use]
    pub fn encode(&self, layout: Layout) -> Bytes {
        encode_broadcast(
            &self.uid,
            &self.packet.data,
            &self.packet.nsp,
            &self.opts,
            layout,
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

/// A message on `<key>-request#<nsp>#` (wire notes 3.3).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Request {
    /// 0, 7.x `sockets(rooms)`: `{uid, requestId, type, rooms}`.
    Sockets {
        /// Requester.
        uid: String,
        /// Request id.
        request_id: String,
        /// Rooms (all sockets when empty).
        rooms: Vec<Room>,
    },
    /// 1, `allRooms()`: `{uid, requestId, type}`.
    AllRooms {
        /// Requester.
        uid: String,
        /// Request id.
        request_id: String,
    },
    /// 2 / 3, `socketsJoin` / `socketsLeave`: `{uid, type, opts: {rooms, except}, rooms}`;
    /// the emitter sends no uid. No response.
    RemoteRooms {
        /// `true` for join (2), `false` for leave (3).
        join: bool,
        /// Requester (`None` from the emitter).
        uid: Option<String>,
        /// Target sockets.
        opts: Opts,
        /// Rooms to join or leave.
        rooms: Vec<Room>,
    },
    /// 2 / 3, 7.x `remoteJoin(sid, room)` / `remoteLeave`: `{uid, requestId, type, sid, room}`.
    /// The node holding `sid` answers `{requestId}`.
    RemoteRoomsSid {
        /// `true` for join (2), `false` for leave (3).
        join: bool,
        /// Requester.
        uid: String,
        /// Request id.
        request_id: String,
        /// The socket.
        sid: String,
        /// The room.
        room: Room,
    },
    /// 4, `disconnectSockets(close)`: `{uid, type, opts: {rooms, except}, close}`; the emitter
    /// sends no uid. No response.
    RemoteDisconnect {
        /// Requester (`None` from the emitter).
        uid: Option<String>,
        /// Target sockets.
        opts: Opts,
        /// Close the underlying connections.
        close: bool,
    },
    /// 4, 7.x `remoteDisconnect(sid, close)`: `{uid, requestId, type, sid, close}`.
    RemoteDisconnectSid {
        /// Requester.
        uid: String,
        /// Request id.
        request_id: String,
        /// The socket.
        sid: String,
        /// Close the underlying connection.
        close: bool,
    },
    /// 5, `fetchSockets()`: `{uid, requestId, type, opts: {rooms, except}}`.
    RemoteFetch {
        /// Requester.
        uid: String,
        /// Request id.
        request_id: String,
        /// Target sockets.
        opts: Opts,
    },
    /// 6, `serverSideEmit()`: `{uid, [requestId,] type, data: [event, ...args]}`; a
    /// `requestId` asks every other node for one answer.
    ServerSideEmit {
        /// Requester (`"emitter"` from the emitter).
        uid: String,
        /// Present when an ack is expected.
        request_id: Option<String>,
        /// `[event, ...args]`.
        data: Vec<Value>,
    },
    /// 7, broadcast with acks, **msgpack**: `{uid, requestId, type, packet, opts}`.
    Broadcast {
        /// Requester.
        uid: String,
        /// Request id.
        request_id: String,
        /// The packet.
        packet: EventPacket,
        /// Targets and flags (`timeout` in ms).
        opts: Opts,
    },
}

impl Request {
    /// Decodes a request, JSON or msgpack by the first byte (wire notes 2.2).
    ///
    /// # Errors
    ///
    /// Undecodable bytes, an unknown `type`, or fields of the wrong shape.
    pub fn decode(payload: &[u8]) -> Result<Self, Error> {
        let v = decode_any(payload)?;
        if !v.is_map() {
            return Err(Error::Malformed("request is not an object"));
        }
        let uid = || string_field(&v, "uid").ok_or(Error::Malformed("request without uid"));
        let request_id =
            || string_field(&v, "requestId").ok_or(Error::Malformed("request without requestId"));
        let ty = map_get(&v, "type")
            .and_then(Value::as_u64)
            .ok_or(Error::Malformed("request without a numeric type"))?;
        Ok(match ty {
            kind::SOCKETS => Self::Sockets {
                uid: uid()?,
                request_id: request_id()?,
                rooms: rooms_of(map_get(&v, "rooms")),
            },
            kind::ALL_ROOMS => Self::AllRooms {
                uid: uid()?,
                request_id: request_id()?,
            },
            kind::REMOTE_JOIN | kind::REMOTE_LEAVE => {
                let join = ty == kind::REMOTE_JOIN;
                match map_get(&v, "opts") {
                    Some(opts) if !opts.is_nil() => Self::RemoteRooms {
                        join,
                        uid: string_field(&v, "uid"),
                        opts: Opts::from_value(Some(opts)),
                        rooms: rooms_of(map_get(&v, "rooms")),
                    },
                    _ => Self::RemoteRoomsSid {
                        join,
                        uid: uid()?,
                        request_id: request_id()?,
                        sid: string_field(&v, "sid")
                            .ok_or(Error::Malformed("request without sid"))?,
                        room: map_get(&v, "room")
                            .and_then(room_of)
                            .ok_or(Error::Malformed("request without room"))?,
                    },
                }
            }
            kind::REMOTE_DISCONNECT => {
                let close = map_get(&v, "close").and_then(Value::as_bool) == Some(true);
                match map_get(&v, "opts") {
                    Some(opts) if !opts.is_nil() => Self::RemoteDisconnect {
                        uid: string_field(&v, "uid"),
                        opts: Opts::from_value(Some(opts)),
                        close,
                    },
                    _ => Self::RemoteDisconnectSid {
                        uid: uid()?,
                        request_id: request_id()?,
                        sid: string_field(&v, "sid")
                            .ok_or(Error::Malformed("request without sid"))?,
                        close,
                    },
                }
            }
            kind::REMOTE_FETCH => Self::RemoteFetch {
                uid: uid()?,
                request_id: request_id()?,
                opts: Opts::from_value(map_get(&v, "opts")),
            },
            kind::SERVER_SIDE_EMIT => Self::ServerSideEmit {
                uid: uid()?,
                request_id: string_field(&v, "requestId"),
                data: match map_get(&v, "data") {
                    Some(Value::Array(items)) if !items.is_empty() => items.clone(),
                    _ => return Err(Error::Malformed("serverSideEmit data is not [event, ...]")),
                },
            },
            kind::BROADCAST => Self::Broadcast {
                uid: uid()?,
                request_id: request_id()?,
                packet: EventPacket::from_value(map_get(&v, "packet"))?,
                opts: Opts::from_value(map_get(&v, "opts")),
            },
            _ => return Err(Error::Malformed("unknown request type")),
        })
    }

    /// Encodes the request as Node does: JSON, except BROADCAST (msgpack map).
    #[must_use]
    pub fn encode(&self) -> Bytes {
        if let Self::Broadcast {
            uid,
            request_id,
            packet,
            opts,
        } = self
        {
            let mut out = BytesMut::with_capacity(96);
            write_map_header(&mut out, 5);
            write_str(&mut out, "uid");
            write_str(&mut out, uid);
            write_str(&mut out, "requestId");
            write_str(&mut out, request_id);
            write_str(&mut out, "type");
            out.put_u8(0x07);
            write_str(&mut out, "packet");
            packet.write_msgpack(&mut out);
            write_str(&mut out, "opts");
            let mut opts = opts.clone();
            opts.flags.get_or_insert_with(Flags::new);
            opts.write_msgpack(&mut out, Layout::Node);
            return out.freeze();
        }
        let mut text = String::with_capacity(96);
        let mut o = JsonObject::new(&mut text);
        match self {
            Self::Sockets {
                uid,
                request_id,
                rooms,
            } => {
                o.str("uid", uid);
                o.str("requestId", request_id);
                o.num("type", kind::SOCKETS);
                o.rooms("rooms", rooms);
            }
            Self::AllRooms { uid, request_id } => {
                o.str("uid", uid);
                o.str("requestId", request_id);
                o.num("type", kind::ALL_ROOMS);
            }
            Self::RemoteRooms {
                join,
                uid,
                opts,
                rooms,
            } => {
                if let Some(uid) = uid {
                    o.str("uid", uid);
                }
                o.num("type", join_kind(*join));
                opts.write_json(&mut o);
                o.rooms("rooms", rooms);
            }
            Self::RemoteRoomsSid {
                join,
                uid,
                request_id,
                sid,
                room,
            } => {
                o.str("uid", uid);
                o.str("requestId", request_id);
                o.num("type", join_kind(*join));
                o.str("sid", sid);
                o.str("room", room);
            }
            Self::RemoteDisconnect { uid, opts, close } => {
                if let Some(uid) = uid {
                    o.str("uid", uid);
                }
                o.num("type", kind::REMOTE_DISCONNECT);
                opts.write_json(&mut o);
                o.value("close", &Value::Boolean(*close));
            }
            Self::RemoteDisconnectSid {
                uid,
                request_id,
                sid,
                close,
            } => {
                o.str("uid", uid);
                o.str("requestId", request_id);
                o.num("type", kind::REMOTE_DISCONNECT);
                o.str("sid", sid);
                o.value("close", &Value::Boolean(*close));
            }
            Self::RemoteFetch {
                uid,
                request_id,
                opts,
            } => {
                o.str("uid", uid);
                o.str("requestId", request_id);
                o.num("type", kind::REMOTE_FETCH);
                opts.write_json(&mut o);
            }
            Self::ServerSideEmit {
                uid,
                request_id,
                data,
            } => {
                o.str("uid", uid);
                if let Some(id) = request_id {
                    o.str("requestId", id);
                }
                o.num("type", kind::SERVER_SIDE_EMIT);
                o.raw("data", |out| write_json_array(out, data));
            }
            Self::Broadcast { .. } => {}
        }
        o.end();
        Bytes::from(text)
    }

    /// The requester's uid, if the request carries one.
    #[must_use]
    pub fn uid(&self) -> Option<&str> {
        match self {
            Self::Sockets { uid, .. }
            | Self::AllRooms { uid, .. }
            | Self::RemoteRoomsSid { uid, .. }
            | Self::RemoteDisconnectSid { uid, .. }
            | Self::RemoteFetch { uid, .. }
            | Self::ServerSideEmit { uid, .. }
            | Self::Broadcast { uid, .. } => Some(uid),
            Self::RemoteRooms { uid, .. } | Self::RemoteDisconnect { uid, .. } => uid.as_deref(),
        }
    }
}

fn join_kind(join: bool) -> u64 {
    if join {
        kind::REMOTE_JOIN
    } else {
        kind::REMOTE_LEAVE
    }
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// A message on a response channel (wire notes 3.3, 3.4).
///
/// Node matches a response by `requestId` and reads it according to the *request* it made,
/// not the response's shape; a response without `sockets` / `rooms` still counts. So the
/// decoder classifies by `type` (6, 8, 9), then by which list is there.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Response {
    /// `{requestId, sockets: [...]}`: socket ids (SOCKETS) or socket objects (REMOTE_FETCH,
    /// see [`socket_to_value`]).
    Sockets {
        /// Request id.
        request_id: String,
        /// The list, as sent.
        sockets: Vec<Value>,
    },
    /// `{requestId, rooms: [...]}` (ALL_ROOMS).
    AllRooms {
        /// Request id.
        request_id: String,
        /// Rooms.
        rooms: Vec<Room>,
    },
    /// `{requestId}`: a 7.x sid request was done, or any response without a list.
    Done {
        /// Request id.
        request_id: String,
    },
    /// `{type: 6, requestId, data}`: one node's answer to `serverSideEmit` with ack (its first
    /// ack argument; JSON, always on the shared channel).
    ServerSideEmit {
        /// Request id.
        request_id: String,
        /// The answer (`None` when the answer was `undefined`).
        data: Option<Value>,
    },
    /// `{type: 8, requestId, clientCount}` (JSON).
    BroadcastClientCount {
        /// Request id.
        request_id: String,
        /// Clients the broadcast went to on that node.
        client_count: u64,
    },
    /// `{type: 9, requestId, packet}` (**msgpack**): one client's ack (its first argument;
    /// `None` when it acked with no argument, which notepack drops).
    BroadcastAck {
        /// Request id.
        request_id: String,
        /// The ack argument.
        packet: Option<Value>,
    },
}

impl Response {
    /// Decodes a response, JSON or msgpack by the first byte.
    ///
    /// # Errors
    ///
    /// Undecodable bytes, no `requestId`, or fields of the wrong shape.
    pub fn decode(payload: &[u8]) -> Result<Self, Error> {
        let v = decode_any(payload)?;
        if !v.is_map() {
            return Err(Error::Malformed("response is not an object"));
        }
        let request_id =
            string_field(&v, "requestId").ok_or(Error::Malformed("response without requestId"))?;
        Ok(match map_get(&v, "type").and_then(Value::as_u64) {
            Some(kind::SERVER_SIDE_EMIT) => Self::ServerSideEmit {
                request_id,
                data: map_get(&v, "data").cloned(),
            },
            Some(kind::BROADCAST_CLIENT_COUNT) => Self::BroadcastClientCount {
                request_id,
                client_count: match map_get(&v, "clientCount") {
                    Some(Value::Integer(n)) => n.as_u64(),
                    Some(Value::F64(f)) if f.is_finite() && *f >= 0.0 => Some(*f as u64),
                    _ => None,
                }
                .ok_or(Error::Malformed("clientCount is not a count"))?,
            },
            Some(kind::BROADCAST_ACK) => Self::BroadcastAck {
                request_id,
                packet: map_get(&v, "packet").cloned(),
            },
            _ => match (map_get(&v, "sockets"), map_get(&v, "rooms")) {
                (Some(Value::Array(sockets)), _) => Self::Sockets {
                    request_id,
                    sockets: sockets.clone(),
                },
                (_, Some(Value::Array(_))) => Self::AllRooms {
                    request_id,
                    rooms: rooms_of(map_get(&v, "rooms")),
                },
                _ => Self::Done { request_id },
            },
        })
    }

    /// Encodes the response as Node does: JSON, except BROADCAST_ACK (msgpack map).
    #[must_use]
    pub fn encode(&self) -> Bytes {
        if let Self::BroadcastAck { request_id, packet } = self {
            let mut out = BytesMut::with_capacity(32);
            write_map_header(&mut out, 2 + usize::from(packet.is_some()));
            write_str(&mut out, "type");
            out.put_u8(0x09);
            write_str(&mut out, "requestId");
            write_str(&mut out, request_id);
            if let Some(packet) = packet {
                write_str(&mut out, "packet");
                write_value(&mut out, packet);
            }
            return out.freeze();
        }
        let mut text = String::with_capacity(64);
        let mut o = JsonObject::new(&mut text);
        match self {
            Self::Sockets {
                request_id,
                sockets,
            } => {
                o.str("requestId", request_id);
                o.raw("sockets", |out| write_json_array(out, sockets));
            }
            Self::AllRooms { request_id, rooms } => {
                o.str("requestId", request_id);
                o.rooms("rooms", rooms);
            }
            Self::Done { request_id } => o.str("requestId", request_id),
            Self::ServerSideEmit { request_id, data } => {
                o.num("type", kind::SERVER_SIDE_EMIT);
                o.str("requestId", request_id);
                if let Some(data) = data {
                    o.value("data", data);
                }
            }
            Self::BroadcastClientCount {
                request_id,
                client_count,
            } => {
                o.num("type", kind::BROADCAST_CLIENT_COUNT);
                o.str("requestId", request_id);
                o.num("clientCount", *client_count);
            }
            Self::BroadcastAck { .. } => {}
        }
        o.end();
        Bytes::from(text)
    }

    /// The request id.
    #[must_use]
    pub fn request_id(&self) -> &str {
        match self {
            Self::Sockets { request_id, .. }
            | Self::AllRooms { request_id, .. }
            | Self::Done { request_id }
            | Self::ServerSideEmit { request_id, .. }
            | Self::BroadcastClientCount { request_id, .. }
            | Self::BroadcastAck { request_id, .. } => request_id,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Decodes a request or response payload: JSON when the first byte is `{`, else msgpack
/// (wire notes 2.2).
///
/// # Errors
///
/// Invalid JSON or msgpack.
pub fn decode_any(payload: &[u8]) -> Result<Value, Error> {
    if payload.first() == Some(&b'{') {
        // Node reads `msg.toString()`: invalid UTF-8 becomes U+FFFD.
        from_json_str(&String::from_utf8_lossy(payload))
            .map_err(|_| Error::Malformed("invalid JSON"))
    } else {
        read_value(payload).map_err(|_| Error::Malformed("invalid msgpack"))
    }
}

fn string_field(v: &Value, name: &str) -> Option<String> {
    map_get(v, name).and_then(Value::as_str).map(str::to_owned)
}

/// A room as a string: strings as they are, numbers in JS form (`String(123)`).
fn room_of(v: &Value) -> Option<Room> {
    match v {
        Value::String(s) => Some(s.as_str().map_or_else(
            || String::from_utf8_lossy(s.as_bytes()).into_owned(),
            str::to_owned,
        )),
        Value::Integer(_) | Value::F32(_) | Value::F64(_) => {
            Some(socketio::value::to_json_string(v))
        }
        _ => None,
    }
}

/// A list of rooms; anything that is not a room is skipped, a missing list is empty.
fn rooms_of(v: Option<&Value>) -> Vec<Room> {
    match v {
        Some(Value::Array(items)) => items.iter().filter_map(room_of).collect(),
        _ => Vec::new(),
    }
}

fn dedup(rooms: &[Room]) -> Vec<Room> {
    let mut out: Vec<Room> = Vec::with_capacity(rooms.len());
    for room in rooms {
        if !out.contains(room) {
            out.push(room.clone());
        }
    }
    out
}

fn write_map_header(out: &mut BytesMut, len: usize) {
    write_value_header(out, len, 0x80, 0xde, 0xdf);
}

fn write_array_header(out: &mut BytesMut, len: usize) {
    write_value_header(out, len, 0x90, 0xdc, 0xdd);
}

fn write_value_header(out: &mut BytesMut, len: usize, fix: u8, m16: u8, m32: u8) {
    if len < 16 {
        // len < 16: fits in the low nibble.
        out.put_u8(fix | u8::try_from(len).unwrap_or(0));
    } else if let Ok(n) = u16::try_from(len) {
        out.put_u8(m16);
        out.put_u16(n);
    } else {
        out.put_u8(m32);
        out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    }
}

fn write_str(out: &mut BytesMut, s: &str) {
    write_value(out, &Value::from(s));
}

fn write_rooms(out: &mut BytesMut, rooms: &[Room]) {
    write_array_header(out, rooms.len());
    for room in rooms {
        write_str(out, room);
    }
}

fn write_json_array(out: &mut String, items: &[Value]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json(out, item);
    }
    out.push(']');
}

/// Writes a JSON object field by field, in the order Node builds it.
struct JsonObject<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> JsonObject<'a> {
    fn new(out: &'a mut String) -> Self {
        out.push('{');
        Self { out, first: true }
    }

    fn key(&mut self, name: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        write_json(self.out, &Value::from(name));
        self.out.push(':');
    }

    fn raw(&mut self, name: &str, f: impl FnOnce(&mut String)) {
        self.key(name);
        f(self.out);
    }

    fn value(&mut self, name: &str, value: &Value) {
        self.key(name);
        write_json(self.out, value);
    }

    fn str(&mut self, name: &str, value: &str) {
        self.value(name, &Value::from(value));
    }

    fn num(&mut self, name: &str, n: u64) {
        self.value(name, &Value::from(n));
    }

    fn rooms(&mut self, name: &str, rooms: &[Room]) {
        self.key(name);
        self.out.push('[');
        for (i, room) in rooms.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            write_json(self.out, &Value::from(room.as_str()));
        }
        self.out.push(']');
    }

    fn end(self) {
        self.out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels() {
        let c = Channels::new("socket.io", "/");
        assert_eq!(c.broadcast(), "socket.io#/#");
        assert_eq!(c.pattern(), "socket.io#/#*");
        assert_eq!(c.room("room1"), "socket.io#/#room1#");
        assert_eq!(c.request(), "socket.io-request#/#");
        assert_eq!(c.response(), "socket.io-response#/#");
        assert_eq!(
            c.specific_response("4Vnn9y"),
            "socket.io-response#/#4Vnn9y#"
        );
        assert_eq!(c.broadcast_for(&["a".into()]), "socket.io#/#a#");
        assert_eq!(c.broadcast_for(&["a".into(), "b".into()]), "socket.io#/#");
        assert_eq!(c.broadcast_for(&[]), "socket.io#/#");
        assert_eq!(c.room_of(b"socket.io#/#"), Some(&b""[..]));
        assert_eq!(c.room_of(b"socket.io#/#room1#"), Some(&b"room1"[..]));
        assert_eq!(c.room_of(b"socket.io#/chat#"), None);
        assert!(c.is_response(b"socket.io-response#/#4Vnn9y#"));
        assert_eq!(c.response_for(Some("u"), true), "socket.io-response#/#u#");
        assert_eq!(c.response_for(Some("u"), false), "socket.io-response#/#");
    }

    #[test]
    fn ids_have_the_uid2_shape() {
        let id = new_id();
        assert_eq!(id.len(), 6);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
    }

    #[test]
    fn hostile_inputs_are_errors() {
        for bad in [
            &b""[..],
            b"{",
            b"{\"type\":99,\"uid\":\"x\",\"requestId\":\"y\"}",
            b"{\"type\":5}",
            b"\xc1",
            b"\x93\xa1a\x80\x80",
            b"\x93\x01\x82\xa4type\x02\xa4data\x90\x80",
        ] {
            assert!(Request::decode(bad).is_err(), "{bad:?}");
            assert!(Broadcast::decode(bad).is_err(), "{bad:?}");
        }
        assert!(Response::decode(b"{\"rooms\":[]}").is_err());
        assert!(Response::decode(b"{\"type\":8,\"requestId\":\"a\",\"clientCount\":-1}").is_err());
    }

    #[test]
    fn flags_keep_their_first_position() {
        let mut f = Flags::new();
        f.set("volatile", Value::Boolean(true));
        f.set("compress", Value::Boolean(false));
        f.set("volatile", Value::Boolean(false));
        assert_eq!(f.entries()[0].0, "volatile");
        assert!(!f.volatile());
        assert_eq!(f.compress(), Some(false));
    }
}
