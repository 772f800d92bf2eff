//! The in-memory adapter: rooms of this node's sockets, encode-once broadcast, broadcast with
//! acks, and the session store of connection state recovery (Node's `SessionAwareAdapter`).

use std::collections::VecDeque;

// foldhash: several times faster than SipHash on the broadcast path, seeded at random per
// process, so room names chosen by clients cannot be aimed at one bucket in advance.
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{AckResponses, Adapter, AdapterError, BoxFuture, BroadcastOptions, Room, SocketInfo};
use crate::Value;
use crate::codec;
use crate::config::{ParserKind, RecoveryConfig};
use crate::namespace::{Namespace, NamespaceInner};
use crate::packet::{Packet, PacketType};
use crate::socket::{AckWaiter, Socket};

/// This node's rooms and sockets for one namespace.
pub struct LocalAdapter {
    ns: Weak<NamespaceInner>,
    parser: ParserKind,
    rooms: RwLock<Rooms>,
    recovery: Option<Mutex<SessionStore>>,
    /// Encodes done by broadcasts: one per broadcast, whatever the number of recipients.
    encodes: AtomicU64,
}

#[derive(Default)]
struct Rooms {
    members: HashMap<Room, HashSet<String>>,
    of_socket: HashMap<String, HashSet<Room>>,
}

impl Rooms {
    /// Calls `f` once per socket id in any of `opts.rooms` (every socket when empty) and in
    /// none of `opts.except`.
    fn for_each_match<'a>(&'a self, opts: &BroadcastOptions, mut f: impl FnMut(&'a str)) {
        let excluded: HashSet<&String> = opts
            .except
            .iter()
            .filter_map(|r| self.members.get(r))
            .flatten()
            .collect();
        match opts.rooms.as_slice() {
            [] => self
                .of_socket
                .keys()
                .filter(|id| !excluded.contains(id))
                .for_each(|id| f(id)),
            // One room: its members are distinct already.
            [room] => {
                for id in self.members.get(room).into_iter().flatten() {
                    if !excluded.contains(id) {
                        f(id);
                    }
                }
            }
            rooms => {
                let mut seen = HashSet::new();
                for id in rooms.iter().filter_map(|r| self.members.get(r)).flatten() {
                    if !excluded.contains(id) && seen.insert(id) {
                        f(id);
                    }
                }
            }
        }
    }
}

impl LocalAdapter {
    pub(crate) fn new(
        ns: Weak<NamespaceInner>,
        parser: ParserKind,
        recovery: Option<RecoveryConfig>,
    ) -> Self {
        Self {
            ns,
            parser,
            rooms: RwLock::new(Rooms::default()),
            recovery: recovery.map(|config| Mutex::new(SessionStore::new(config))),
            encodes: AtomicU64::new(0),
        }
    }

    /// The namespace this adapter serves (gone once the namespace is dropped).
    pub fn namespace(&self) -> Option<Namespace> {
        self.ns.upgrade().map(|inner| Namespace { inner })
    }

    fn rooms_read(&self) -> std::sync::RwLockReadGuard<'_, Rooms> {
        self.rooms
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn rooms_write(&self) -> std::sync::RwLockWriteGuard<'_, Rooms> {
        self.rooms
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many encodes broadcasts have done (a broadcast to N sockets counts one).
    pub fn broadcast_encodes(&self) -> u64 {
        self.encodes.load(Ordering::Relaxed)
    }

    /// Ids of this node's sockets matching `opts`: in any of `rooms` (all when empty), in none
    /// of `except`, each once.
    pub fn matching_ids(&self, opts: &BroadcastOptions) -> Vec<String> {
        let rooms = self.rooms_read();
        let mut ids = Vec::new();
        rooms.for_each_match(opts, |id| ids.push(id.to_owned()));
        ids
    }

    /// This node's sockets matching `opts`. The hot path of every broadcast: handles are
    /// cloned (a reference count), ids are not.
    pub fn matching_sockets(&self, opts: &BroadcastOptions) -> Vec<Socket> {
        let Some(ns) = self.namespace() else {
            return Vec::new();
        };
        let sockets = ns.sockets_map();
        let mut out = Vec::new();
        if opts.rooms.is_empty() && opts.except.is_empty() {
            out.extend(sockets.values().cloned());
            return out;
        }
        let rooms = self.rooms_read();
        rooms.for_each_match(opts, |id| out.extend(sockets.get(id).cloned()));
        out
    }

    /// Local broadcast: stores the packet for recovery when it qualifies, encodes it once and
    /// queues the same frames for every matching socket.
    pub fn broadcast_local(&self, mut packet: Packet, opts: &BroadcastOptions) {
        if let Some(store) = &self.recovery
            && packet.kind == PacketType::Event
            && packet.id.is_none()
            && !opts.volatile
        {
            lock(store).store(&mut packet, opts);
        }
        let sockets = self.matching_sockets(opts);
        if sockets.is_empty() {
            return;
        }
        self.send_to(&packet, opts, &sockets);
    }

    fn send_to(&self, packet: &Packet, opts: &BroadcastOptions, sockets: &[Socket]) {
        self.encodes.fetch_add(1, Ordering::Relaxed);
        let mut frames = codec::encode(self.parser, packet);
        if !opts.compress {
            frames = frames.into_iter().map(|f| f.compress(false)).collect();
        }
        let notify = sockets
            .first()
            .is_some_and(|s| s.ns().has_outgoing_listeners());
        for socket in sockets {
            if notify {
                socket.ns().notify_outgoing(socket, packet);
            }
            // A socket that stopped reading is closed by its queue; the others go on.
            let _ = socket.send_frames(&frames, opts.volatile);
        }
    }

    /// Local broadcast with acks: one ack id for every matching socket; each answer goes to
    /// `answers`, which must have room for one answer per socket (each answers at most once).
    /// Returns the sockets it was sent to, so a timeout can forget them.
    pub fn broadcast_with_ack_local(
        &self,
        packet: Packet,
        opts: &BroadcastOptions,
        answers: &mpsc::Sender<Vec<Value>>,
    ) -> Vec<Socket> {
        let sockets = self.matching_sockets(opts);
        self.send_with_ack(&packet, opts, &sockets, answers);
        sockets
    }

    fn send_with_ack(
        &self,
        packet: &Packet,
        opts: &BroadcastOptions,
        sockets: &[Socket],
        answers: &mpsc::Sender<Vec<Value>>,
    ) {
        let Some(id) = packet.id else { return };
        for socket in sockets {
            socket.add_ack_waiter(id, AckWaiter::Many(answers.clone()));
        }
        if !sockets.is_empty() {
            self.send_to(packet, opts, sockets);
        }
    }

    /// This node's matching sockets, as `fetch_sockets` reports them.
    pub fn fetch_local(&self, opts: &BroadcastOptions) -> Vec<SocketInfo> {
        self.matching_sockets(opts)
            .into_iter()
            .map(|s| SocketInfo {
                id: s.id().to_owned(),
                handshake: s.handshake().clone(),
                rooms: s.rooms(),
                data: s.data(),
            })
            .collect()
    }

    /// Local part of `socketsJoin`.
    pub fn add_sockets_local(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        for id in self.matching_ids(opts) {
            self.add_all(&id, rooms);
        }
    }

    /// Local part of `socketsLeave`.
    pub fn del_sockets_local(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        for id in self.matching_ids(opts) {
            for room in rooms {
                self.del(&id, room);
            }
        }
    }

    /// Local part of `disconnectSockets`.
    pub fn disconnect_local(&self, opts: &BroadcastOptions, close: bool) {
        for socket in self.matching_sockets(opts) {
            socket.disconnect(close);
        }
    }

    /// Whether `room` has a socket on this node (Node's `rooms.has(room)`: a cluster adapter
    /// follows room creation and deletion with it).
    pub fn has_room(&self, room: &str) -> bool {
        self.rooms_read().members.contains_key(room)
    }

    /// Every room of this node.
    pub fn local_rooms(&self) -> Vec<Room> {
        self.rooms_read().members.keys().cloned().collect()
    }

    /// Keeps a disconnected socket's state for recovery.
    pub(crate) fn persist_session(&self, id: &str, pid: &str, rooms: Vec<Room>, data: Value) {
        if let Some(store) = &self.recovery {
            lock(store).persist(id, pid, rooms, data);
        }
    }

    /// Takes a stored session back if it can be restored from `offset`.
    pub(crate) fn restore_session(&self, pid: &str, offset: &str) -> Option<RestoredSession> {
        lock(self.recovery.as_ref()?).restore(pid, offset)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Adapter for LocalAdapter {
    fn add_all(&self, id: &str, rooms: &[Room]) {
        let mut state = self.rooms_write();
        for room in rooms {
            state
                .members
                .entry(room.clone())
                .or_default()
                .insert(id.to_owned());
            state
                .of_socket
                .entry(id.to_owned())
                .or_default()
                .insert(room.clone());
        }
    }

    fn del(&self, id: &str, room: &str) {
        let mut state = self.rooms_write();
        if let Some(members) = state.members.get_mut(room) {
            members.remove(id);
            if members.is_empty() {
                state.members.remove(room);
            }
        }
        if let Some(rooms) = state.of_socket.get_mut(id) {
            rooms.remove(room);
        }
    }

    fn del_all(&self, id: &str) {
        let mut state = self.rooms_write();
        let Some(rooms) = state.of_socket.remove(id) else {
            return;
        };
        for room in rooms {
            if let Some(members) = state.members.get_mut(&room) {
                members.remove(id);
                if members.is_empty() {
                    state.members.remove(&room);
                }
            }
        }
    }

    fn socket_rooms(&self, id: &str) -> Option<Vec<Room>> {
        self.rooms_read()
            .of_socket
            .get(id)
            .map(|rooms| rooms.iter().cloned().collect())
    }

    fn sockets(&self, opts: &BroadcastOptions) -> Vec<String> {
        self.matching_ids(opts)
    }

    fn broadcast(&self, packet: Packet, opts: &BroadcastOptions) {
        self.broadcast_local(packet, opts);
    }

    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<AckResponses> {
        let sockets = self.matching_sockets(opts);
        let (tx, rx) = mpsc::channel(sockets.len().max(1));
        self.send_with_ack(&packet, opts, &sockets, &tx);
        drop(tx);
        let ack_id = packet.id;
        Box::pin(collect_acks(rx, sockets.len(), timeout, move || {
            if let Some(id) = ack_id {
                for socket in &sockets {
                    socket.remove_ack_waiter(id);
                }
            }
        }))
    }

    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<Result<Vec<SocketInfo>, AdapterError>> {
        let sockets = self.fetch_local(opts);
        Box::pin(async move { Ok(sockets) })
    }

    fn add_sockets(&self, opts: &BroadcastOptions, rooms: Vec<Room>) {
        self.add_sockets_local(opts, &rooms);
    }

    fn del_sockets(&self, opts: &BroadcastOptions, rooms: Vec<Room>) {
        self.del_sockets_local(opts, &rooms);
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        self.disconnect_local(opts, close);
    }

    fn server_side_emit(&self, _args: Vec<Value>) {
        // Node's in-memory adapter has no other node to tell (it only warns).
        tracing::debug!("serverSideEmit on a single node: no other node to tell");
    }

    fn server_side_emit_with_ack(
        &self,
        _args: Vec<Value>,
        _timeout: Duration,
    ) -> BoxFuture<AckResponses> {
        Box::pin(async { AckResponses::default() })
    }

    fn server_count(&self) -> BoxFuture<usize> {
        Box::pin(async { 1 })
    }

    fn all_rooms(&self) -> BoxFuture<Result<Vec<Room>, AdapterError>> {
        let rooms = self.local_rooms();
        Box::pin(async move { Ok(rooms) })
    }
}

/// Gathers up to `expected` answers until `timeout`; `on_timeout` forgets the pending acks.
pub async fn collect_acks(
    mut answers: mpsc::Receiver<Vec<Value>>,
    expected: usize,
    timeout: Duration,
    on_timeout: impl FnOnce(),
) -> AckResponses {
    let mut result = AckResponses::default();
    let deadline = Instant::now() + timeout;
    while result.responses.len() < expected {
        match tokio::time::timeout_at(deadline, answers.recv()).await {
            Ok(Some(answer)) => result.responses.push(answer),
            // Every socket is gone: no more answers can come.
            Ok(None) => {
                result.timed_out = true;
                break;
            }
            Err(_) => {
                result.timed_out = true;
                break;
            }
        }
    }
    if result.timed_out {
        on_timeout();
        // Node waits for the timer even when the sockets are gone.
        tokio::time::sleep_until(deadline).await;
    }
    result
}

/// A session kept for recovery, and the packets it missed.
pub(crate) struct RestoredSession {
    pub(crate) sid: String,
    pub(crate) pid: String,
    pub(crate) rooms: Vec<Room>,
    pub(crate) data: Value,
    pub(crate) missed: Vec<Packet>,
}

struct PersistedSession {
    sid: String,
    rooms: Vec<Room>,
    data: Value,
    disconnected_at: Instant,
}

struct StoredPacket {
    offset: String,
    packet: Packet,
    rooms: Vec<Room>,
    except: Vec<Room>,
    emitted_at: Instant,
}

/// Sessions and packets of the last `max_disconnection_duration`.
struct SessionStore {
    config: RecoveryConfig,
    sessions: HashMap<String, PersistedSession>,
    packets: VecDeque<StoredPacket>,
    next_offset: u64,
}

impl SessionStore {
    fn new(config: RecoveryConfig) -> Self {
        // Offsets stay unique across restarts of the process: they start at the clock.
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
            << 16;
        Self {
            config,
            sessions: HashMap::new(),
            packets: VecDeque::new(),
            next_offset: start,
        }
    }

    /// Appends a fresh offset as the packet's last argument and keeps it.
    fn store(&mut self, packet: &mut Packet, opts: &BroadcastOptions) {
        let now = Instant::now();
        self.prune(now);
        self.next_offset += 1;
        let offset = offset_string(self.next_offset);
        if let Some(Value::Array(data)) = packet.data.as_mut() {
            data.push(Value::from(offset.as_str()));
        }
        self.packets.push_back(StoredPacket {
            offset,
            packet: packet.clone(),
            rooms: opts.rooms.clone(),
            except: opts.except.clone(),
            emitted_at: now,
        });
    }

    fn persist(&mut self, sid: &str, pid: &str, rooms: Vec<Room>, data: Value) {
        let now = Instant::now();
        self.prune(now);
        self.sessions.insert(
            pid.to_owned(),
            PersistedSession {
                sid: sid.to_owned(),
                rooms,
                data,
                disconnected_at: now,
            },
        );
    }

    /// Node keeps a restored session (a second restore may succeed); we take it out: a pid
    /// restores once.
    fn restore(&mut self, pid: &str, offset: &str) -> Option<RestoredSession> {
        let now = Instant::now();
        self.prune(now);
        let index = self.packets.iter().position(|p| p.offset == offset)?;
        let session = self.sessions.remove(pid)?;
        let in_rooms = |rooms: &[Room]| rooms.iter().any(|r| session.rooms.contains(r));
        let missed = self
            .packets
            .iter()
            .skip(index + 1)
            .filter(|p| (p.rooms.is_empty() || in_rooms(&p.rooms)) && !in_rooms(&p.except))
            .map(|p| p.packet.clone())
            .collect();
        Some(RestoredSession {
            sid: session.sid,
            pid: pid.to_owned(),
            rooms: session.rooms,
            data: session.data,
            missed,
        })
    }

    fn prune(&mut self, now: Instant) {
        let max = self.config.max_disconnection_duration;
        while self
            .packets
            .front()
            .is_some_and(|p| now.duration_since(p.emitted_at) > max)
        {
            self.packets.pop_front();
        }
        self.sessions
            .retain(|_, s| now.duration_since(s.disconnected_at) <= max);
    }
}

/// Offsets are opaque to clients; URL-safe base64 of a counter, like Node's `yeast` ids.
fn offset_string(n: u64) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str) -> Packet {
        Packet::event("/", Value::Array(vec![Value::from(name)]))
    }

    #[test]
    fn restores_missed_packets_in_order_with_room_filters() {
        let mut store = SessionStore::new(RecoveryConfig::default());
        let mut first = event("first");
        store.store(&mut first, &BroadcastOptions::all());
        let Some(Value::Array(data)) = &first.data else {
            panic!("event data")
        };
        let offset = data[1].as_str().unwrap().to_owned();
        store.persist(
            "sid1",
            "pid1",
            vec!["sid1".into(), "a".into()],
            Value::from("data"),
        );
        let mut to_a = BroadcastOptions::all();
        to_a.rooms = vec!["a".into()];
        let mut to_b = BroadcastOptions::all();
        to_b.rooms = vec!["b".into()];
        let mut except_a = BroadcastOptions::all();
        except_a.except = vec!["a".into()];
        for (name, opts) in [
            ("all", BroadcastOptions::all()),
            ("to-a", to_a),
            ("to-b", to_b),
            ("except-a", except_a),
        ] {
            store.store(&mut event(name), &opts);
        }
        assert!(
            store.restore("pid1", "nope").is_none(),
            "an unknown offset cannot restore"
        );
        let restored = store.restore("pid1", &offset).unwrap();
        assert_eq!(restored.sid, "sid1");
        let names: Vec<_> = restored
            .missed
            .iter()
            .map(|p| {
                p.data.as_ref().unwrap().as_array().unwrap()[0]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(names, ["all", "to-a"]);
        assert!(
            store.restore("pid1", &offset).is_none(),
            "a session restores once"
        );
    }
}
