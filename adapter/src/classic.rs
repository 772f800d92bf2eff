//! The classic Redis adapter: `@socket.io/redis-adapter` 8.x `createAdapter()` (wire notes 3).
//!
//! Each namespace gets a [`RedisAdapter`] around its [`LocalAdapter`]: the local part of every
//! operation runs synchronously, the cluster part is published through the shared [`Driver`].
//! Incoming broadcasts, requests and responses arrive on the driver's dispatcher task.
//!
//! # Protocol notes
//!
//! - Subscriptions per namespace, on the one subscriber connection: `PSUBSCRIBE <key>#<nsp>#*`
//!   and `SUBSCRIBE <key>-request#<nsp># <key>-response#<nsp># <key>-response#<nsp>#<uid>#`
//!   (wire notes 3.1, 3.7 item 1), so `PUBSUB NUMSUB` counts this process once.
//! - Requests are matched and counted as Node does (3.4): fetchSockets / allRooms wait for
//!   `numsub` answers, this node counting as the first; serverSideEmit with ack waits for
//!   `numsub - 1`; a broadcast with acks completes when every counted node reported its client
//!   count and that many acks came.
//! - Every request type a Node 7.x or 8.x node sends is answered, BROADCAST_CLIENT_COUNT
//!   included when it is 0 (3.7 item 4); otherwise Node callers stall until their timeout.
//! - Deviation: `socketsJoin` / `socketsLeave` / `disconnectSockets` apply locally at once and
//!   skip their own request when it comes back (Node applies them only when it comes back);
//!   the cluster sees the same result (3.4), and local sockets are served while Redis is down.
//! - Faults: while Redis is down, local delivery goes on; publishes are queued (bounded) or
//!   dropped and counted; requests needing answers fail or time out (`requests_timeout`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use socketio::adapter::BoxFuture;
use socketio::{
    AckResponses, Adapter, AdapterError, AdapterFactory, BroadcastOptions, LocalAdapter, Packet,
    PacketType, Room, ServerAck, SocketInfo, Value,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::acks::AckState;
use crate::driver::{ConnectionConfig, Driver, Handler, Incoming, Stats, SubKind};
use crate::error::Error;
use crate::wire::{
    self, Broadcast, Channels, EventPacket, Flags, Layout, Opts, Request, Response,
    normalize_dates, socket_from_value, socket_to_value,
};

/// Options of the classic adapter (Node's `createAdapter` options).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisAdapterConfig {
    /// Prefix of every channel (`key`). Default `socket.io`.
    pub key: String,
    /// How long fetchSockets and allRooms wait for the other nodes (`requestsTimeout`).
    /// Default 5 s.
    pub requests_timeout: Duration,
    /// Answer requests on the requester's own response channel
    /// (`publishOnSpecificResponseChannel`). Default `false`.
    pub publish_on_specific_response_channel: bool,
    /// Limits and timings of the Redis connections.
    pub connection: ConnectionConfig,
}

impl Default for RedisAdapterConfig {
    fn default() -> Self {
        Self {
            key: "socket.io".into(),
            requests_timeout: Duration::from_secs(5),
            publish_on_specific_response_channel: false,
            connection: ConnectionConfig::default(),
        }
    }
}

impl RedisAdapterConfig {
    /// The default options with another `key`.
    #[must_use]
    pub fn with_key(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            ..Self::default()
        }
    }
}

/// The Redis connections of one server, and the factory of its namespaces' adapters.
///
/// ```no_run
/// # async fn run() -> Result<(), socketio_redis::Error> {
/// use socketio_redis::{ClassicCluster, RedisAdapterConfig};
///
/// let cluster = ClassicCluster::connect("redis://127.0.0.1:6379", RedisAdapterConfig::default()).await?;
/// let io = socketio::SocketIo::with_adapter(socketio::Config::default(), cluster.factory());
/// io.of("/chat");
/// cluster.ready().await?; // every namespace so far is subscribed
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClassicCluster {
    driver: Driver,
    config: Arc<RedisAdapterConfig>,
}

impl ClassicCluster {
    /// Connects to Redis (one publisher and one subscriber connection).
    ///
    /// # Errors
    ///
    /// A bad or unsupported URL, or Redis unreachable now.
    pub async fn connect(url: &str, config: RedisAdapterConfig) -> Result<Self, Error> {
        let driver = Driver::connect(url, config.connection.clone()).await?;
        Ok(Self {
            driver,
            config: Arc::new(config),
        })
    }

    /// The adapter factory for [`socketio::SocketIo::with_adapter`]: every namespace gets a
    /// [`RedisAdapter`] sharing these connections.
    #[must_use]
    pub fn factory(&self) -> AdapterFactory {
        let driver = self.driver.clone();
        let config = self.config.clone();
        Arc::new(move |nsp: &str, local: Arc<LocalAdapter>| {
            Arc::new(RedisAdapter::new(
                nsp,
                local,
                driver.clone(),
                config.clone(),
            )) as Arc<dyn Adapter>
        })
    }

    /// Waits until Redis confirmed the subscriptions of every namespace created so far, at
    /// most `requests_timeout` (a server should announce itself only then).
    ///
    /// # Errors
    ///
    /// Redis refused a subscription, or did not confirm in time.
    pub async fn ready(&self) -> Result<(), Error> {
        self.driver
            .ready(self.config.requests_timeout.max(Duration::from_secs(1)))
            .await
    }

    /// Counters of the connections (drops, failures, reconnections).
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.driver.stats()
    }
}

/// A namespace's adapter in a classic Redis cluster.
pub struct RedisAdapter {
    inner: Arc<Inner>,
    subscriptions: [u64; 2],
}

impl std::fmt::Debug for RedisAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAdapter")
            .field("nsp", &self.inner.nsp)
            .field("uid", &self.inner.uid)
            .finish_non_exhaustive()
    }
}

struct Inner {
    nsp: String,
    uid: String,
    local: Arc<LocalAdapter>,
    channels: Channels,
    driver: Driver,
    config: Arc<RedisAdapterConfig>,
    /// fetchSockets / allRooms / serverSideEmit-with-ack waiting for answers.
    requests: Mutex<HashMap<String, Pending>>,
    /// Broadcasts with acks waiting for client counts and acks.
    acks: Mutex<HashMap<String, Arc<AckState>>>,
}

enum Pending {
    Fetch {
        num_sub: usize,
        msg_count: usize,
        sockets: Vec<SocketInfo>,
        done: Option<oneshot::Sender<Vec<SocketInfo>>>,
    },
    AllRooms {
        num_sub: usize,
        msg_count: usize,
        rooms: Vec<Room>,
        done: Option<oneshot::Sender<Vec<Room>>>,
    },
    ServerSideEmit {
        expected: usize,
        responses: Vec<Vec<Value>>,
        done: Option<oneshot::Sender<Vec<Vec<Value>>>>,
    },
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl RedisAdapter {
    /// The adapter of namespace `nsp` around `local`, subscribed through `driver`.
    fn new(
        nsp: &str,
        local: Arc<LocalAdapter>,
        driver: Driver,
        config: Arc<RedisAdapterConfig>,
    ) -> Self {
        let channels = Channels::new(&config.key, nsp);
        let uid = wire::new_id();
        let inner = Arc::new(Inner {
            nsp: nsp.to_owned(),
            uid: uid.clone(),
            local,
            channels: channels.clone(),
            driver: driver.clone(),
            config,
            requests: Mutex::new(HashMap::new()),
            acks: Mutex::new(HashMap::new()),
        });
        let weak: Weak<Inner> = Arc::downgrade(&inner);
        let handler: Weak<dyn Handler> = weak;
        // Node's order: the pattern first, then the three channels in one command.
        let pattern = driver.subscribe(SubKind::Pattern, vec![channels.pattern()], handler.clone());
        let exact = driver.subscribe(
            SubKind::Channel,
            vec![
                channels.request().to_owned(),
                channels.response().to_owned(),
                channels.specific_response(&uid),
            ],
            handler,
        );
        tracing::debug!(nsp, uid, "redis adapter created");
        Self {
            inner,
            subscriptions: [pattern, exact],
        }
    }

    /// This adapter's uid (6 characters, as Node's).
    #[must_use]
    pub fn uid(&self) -> &str {
        &self.inner.uid
    }
}

impl Drop for RedisAdapter {
    fn drop(&mut self) {
        // Node 8.1 `close()`: PUNSUBSCRIBE, then one UNSUBSCRIBE per channel.
        for seq in self.subscriptions {
            self.inner.driver.unsubscribe(seq);
        }
    }
}

/// Removes a pending request when its waiter goes (answered, timed out or cancelled).
struct RequestGuard<'a> {
    inner: &'a Inner,
    id: String,
}

impl Drop for RequestGuard<'_> {
    fn drop(&mut self) {
        lock(&self.inner.requests).remove(&self.id);
    }
}

/// Removes a broadcast-with-acks entry when its waiter goes.
struct AckGuard {
    inner: Arc<Inner>,
    id: String,
}

impl Drop for AckGuard {
    fn drop(&mut self) {
        lock(&self.inner.acks).remove(&self.id);
    }
}

fn backend(err: &Error) -> AdapterError {
    AdapterError::Backend(err.to_string())
}

impl Inner {
    async fn num_sub(&self) -> Result<usize, Error> {
        self.driver.numsub(self.channels.request()).await
    }

    fn publish_request(&self, request: &Request) -> Result<(), Error> {
        self.driver
            .publish(self.channels.request().to_owned(), request.encode())
    }

    /// Publishes a response where the requester listens (wire notes 3.3).
    fn respond(&self, request_uid: Option<&str>, response: &Response) {
        let channel = self.channels.response_for(
            request_uid,
            self.config.publish_on_specific_response_channel,
        );
        let _ = self.driver.publish(channel, response.encode());
    }

    fn publish_raw(&self, channel: String, payload: Bytes) {
        let _ = self.driver.publish(channel, payload);
    }

    // -- receiving ------------------------------------------------------------------------------

    /// A broadcast from another node or the emitter (wire notes 3.2, receiver rules).
    fn on_broadcast(&self, channel: &[u8], payload: &[u8]) {
        if self.channels.room_of(channel).is_none() {
            return;
        }
        let msg = match Broadcast::decode(payload) {
            Ok(msg) => msg,
            Err(err) => {
                tracing::debug!(nsp = %self.nsp, %err, "ignoring a malformed broadcast");
                return;
            }
        };
        if msg.uid == self.uid {
            return;
        }
        if msg.packet.nsp != self.nsp {
            return;
        }
        let mut data = Value::Array(msg.packet.data);
        normalize_dates(&mut data);
        self.local.broadcast_local(
            Packet::event(self.nsp.as_str(), data),
            &msg.opts.to_options(),
        );
    }

    fn on_request(self: &Arc<Self>, payload: &[u8]) {
        let request = match Request::decode(payload) {
            Ok(r) => r,
            Err(err) => {
                tracing::debug!(nsp = %self.nsp, %err, "ignoring a malformed request");
                return;
            }
        };
        let own = request.uid() == Some(self.uid.as_str());
        match request {
            Request::Sockets {
                uid,
                request_id,
                rooms,
            } => {
                if lock(&self.requests).contains_key(&request_id) {
                    return;
                }
                let mut opts = BroadcastOptions::all();
                opts.rooms = rooms;
                let ids = self.local.matching_ids(&opts);
                self.respond(
                    Some(&uid),
                    &Response::Sockets {
                        request_id,
                        sockets: ids.into_iter().map(Value::from).collect(),
                    },
                );
            }
            Request::AllRooms { uid, request_id } => {
                if lock(&self.requests).contains_key(&request_id) {
                    return;
                }
                self.respond(
                    Some(&uid),
                    &Response::AllRooms {
                        request_id,
                        rooms: self.local.local_rooms(),
                    },
                );
            }
            Request::RemoteRooms {
                join, opts, rooms, ..
            } => {
                if own {
                    return;
                }
                let opts = opts.to_options();
                if join {
                    self.local.add_sockets_local(&opts, &rooms);
                } else {
                    self.local.del_sockets_local(&opts, &rooms);
                }
            }
            Request::RemoteRoomsSid {
                join,
                uid,
                request_id,
                sid,
                room,
            } => {
                let Some(socket) = self.local.namespace().and_then(|ns| ns.socket(&sid)) else {
                    return;
                };
                if join {
                    socket.join([room]);
                } else {
                    socket.leave(&room);
                }
                self.respond(Some(&uid), &Response::Done { request_id });
            }
            Request::RemoteDisconnect { opts, close, .. } => {
                if own {
                    return;
                }
                self.local.disconnect_local(&opts.to_options(), close);
            }
            Request::RemoteDisconnectSid {
                uid,
                request_id,
                sid,
                close,
            } => {
                let Some(socket) = self.local.namespace().and_then(|ns| ns.socket(&sid)) else {
                    return;
                };
                socket.disconnect(close);
                self.respond(Some(&uid), &Response::Done { request_id });
            }
            Request::RemoteFetch {
                uid,
                request_id,
                opts,
            } => {
                if lock(&self.requests).contains_key(&request_id) {
                    return;
                }
                let sockets = self
                    .local
                    .fetch_local(&opts.to_options())
                    .iter()
                    .map(socket_to_value)
                    .collect();
                self.respond(
                    Some(&uid),
                    &Response::Sockets {
                        request_id,
                        sockets,
                    },
                );
            }
            Request::ServerSideEmit {
                uid,
                request_id,
                data,
            } => {
                if uid == self.uid {
                    return;
                }
                self.on_server_side_emit(request_id, data);
            }
            Request::Broadcast {
                uid,
                request_id,
                packet,
                opts,
            } => {
                if lock(&self.acks).contains_key(&request_id) {
                    return;
                }
                self.answer_broadcast(&uid, request_id, packet, &opts);
            }
        }
    }

    fn on_server_side_emit(self: &Arc<Self>, request_id: Option<String>, data: Vec<Value>) {
        let Some(ns) = self.local.namespace() else {
            return;
        };
        let mut data = data.into_iter();
        let event = match data.next() {
            Some(Value::String(s)) => s.into_str().unwrap_or_default(),
            Some(other) => socketio::value::to_json_string(&other),
            None => return,
        };
        let ack = request_id.map(|request_id| {
            let weak = Arc::downgrade(self);
            ServerAck::new(move |args: Vec<Value>| {
                if let Some(inner) = weak.upgrade() {
                    // Always the shared channel, whatever publishOnSpecificResponseChannel
                    // says (wire notes 3.3, captured in classic-8.3.0-specific-response).
                    let response = Response::ServerSideEmit {
                        request_id,
                        data: Some(args.into_iter().next().unwrap_or(Value::Nil)),
                    };
                    inner.publish_raw(inner.channels.response().to_owned(), response.encode());
                }
            })
        });
        ns.receive_server_side(&event, data.collect(), ack);
    }

    /// Another node's broadcast with acks: send it to the local matching sockets, report how
    /// many (even 0), then forward each ack (wire notes 3.4).
    fn answer_broadcast(
        self: &Arc<Self>,
        uid: &str,
        request_id: String,
        packet: EventPacket,
        opts: &Opts,
    ) {
        let Some(ns) = self.local.namespace() else {
            return;
        };
        if packet.nsp != self.nsp {
            return;
        }
        let mut data = Value::Array(packet.data);
        normalize_dates(&mut data);
        let ack_id = ns.next_ack_id();
        let packet = Packet::event(self.nsp.as_str(), data).with_id(ack_id);
        // Node passes rooms and except only: the sender's flags are not applied here.
        let mut targets = BroadcastOptions::all();
        targets.rooms = opts.rooms.clone();
        targets.except = opts.except.clone();
        let room = self.local.matching_ids(&targets).len() + 16;
        let (tx, mut rx) = mpsc::channel(room);
        let sockets = self.local.broadcast_with_ack_local(packet, &targets, &tx);
        drop(tx);
        let uid = uid.to_owned();
        self.respond(
            Some(&uid),
            &Response::BroadcastClientCount {
                request_id: request_id.clone(),
                client_count: sockets.len() as u64,
            },
        );
        if sockets.is_empty() {
            return;
        }
        let timeout = opts
            .flags
            .as_ref()
            .and_then(Flags::timeout_ms)
            .map_or(self.config.requests_timeout, Duration::from_millis);
        let inner = self.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + timeout;
            let mut answered = 0;
            while answered < sockets.len() {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(args)) => {
                        answered += 1;
                        inner.respond(
                            Some(&uid),
                            &Response::BroadcastAck {
                                request_id: request_id.clone(),
                                packet: args.into_iter().next(),
                            },
                        );
                    }
                    Ok(None) => break,
                    Err(_) => {
                        for socket in &sockets {
                            socket.remove_ack_waiter(ack_id);
                        }
                        break;
                    }
                }
            }
        });
    }

    fn on_response(&self, payload: &[u8]) {
        let response = match Response::decode(payload) {
            Ok(r) => r,
            Err(err) => {
                tracing::debug!(nsp = %self.nsp, %err, "ignoring a malformed response");
                return;
            }
        };
        let id = response.request_id();
        let ack = lock(&self.acks).get(id).cloned();
        if let Some(ack) = ack {
            match response {
                Response::BroadcastClientCount { client_count, .. } => {
                    ack.client_count(client_count)
                }
                Response::BroadcastAck { packet, .. } => ack.ack(packet),
                _ => {}
            }
            return;
        }
        let mut requests = lock(&self.requests);
        let Some(pending) = requests.get_mut(id) else {
            return;
        };
        match pending {
            Pending::Fetch {
                num_sub,
                msg_count,
                sockets,
                done,
            } => {
                *msg_count += 1;
                // Node counts a response without a list but does not complete on it.
                let Response::Sockets { sockets: list, .. } = response else {
                    return;
                };
                sockets.extend(list.iter().filter_map(socket_from_value));
                if *msg_count >= *num_sub
                    && let Some(done) = done.take()
                {
                    let _ = done.send(std::mem::take(sockets));
                }
            }
            Pending::AllRooms {
                num_sub,
                msg_count,
                rooms,
                done,
            } => {
                *msg_count += 1;
                let Response::AllRooms { rooms: list, .. } = response else {
                    return;
                };
                for room in list {
                    if !rooms.contains(&room) {
                        rooms.push(room);
                    }
                }
                if *msg_count >= *num_sub
                    && let Some(done) = done.take()
                {
                    let _ = done.send(std::mem::take(rooms));
                }
            }
            Pending::ServerSideEmit {
                expected,
                responses,
                done,
            } => {
                let data = match response {
                    Response::ServerSideEmit { data, .. } => data.unwrap_or(Value::Nil),
                    _ => Value::Nil,
                };
                responses.push(vec![data]);
                if responses.len() >= *expected
                    && let Some(done) = done.take()
                {
                    let _ = done.send(std::mem::take(responses));
                }
            }
        }
    }
}

impl Handler for Inner {
    fn handle(self: Arc<Self>, msg: Incoming) {
        if msg.pattern.is_some() {
            self.on_broadcast(&msg.channel, &msg.payload);
        } else if self.channels.is_response(&msg.channel) {
            self.on_response(&msg.payload);
        } else if self.channels.is_request(&msg.channel) {
            self.on_request(&msg.payload);
        }
    }
}

impl Adapter for RedisAdapter {
    fn add_all(&self, id: &str, rooms: &[Room]) {
        self.inner.local.add_all(id, rooms);
    }

    fn del(&self, id: &str, room: &str) {
        self.inner.local.del(id, room);
    }

    fn del_all(&self, id: &str) {
        self.inner.local.del_all(id);
    }

    fn socket_rooms(&self, id: &str) -> Option<Vec<Room>> {
        self.inner.local.socket_rooms(id)
    }

    fn sockets(&self, opts: &BroadcastOptions) -> Vec<String> {
        self.inner.local.matching_ids(opts)
    }

    fn broadcast(&self, packet: Packet, opts: &BroadcastOptions) {
        let inner = &self.inner;
        if !opts.local {
            match (packet.kind, packet.data.as_ref().and_then(Value::as_array)) {
                (PacketType::Event, Some(data)) => {
                    // Encoded once, published before the local delivery, as Node does.
                    let payload = wire::encode_broadcast(
                        &inner.uid,
                        data,
                        &inner.nsp,
                        &Opts::broadcast(opts),
                        Layout::Node,
                    );
                    inner.publish_raw(inner.channels.broadcast_for(&opts.rooms), payload);
                }
                _ => tracing::debug!(nsp = %inner.nsp, "only events are broadcast to other nodes"),
            }
        }
        inner.local.broadcast_local(packet, opts);
    }

    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<AckResponses> {
        let inner = &self.inner;
        if opts.local {
            return inner.local.broadcast_with_ack(packet, opts, timeout);
        }
        let request_id = wire::new_id();
        let state = Arc::new(AckState::default());
        lock(&inner.acks).insert(request_id.clone(), state.clone());
        let guard = AckGuard {
            inner: inner.clone(),
            id: request_id.clone(),
        };
        if let Some(data) = packet.data.as_ref().and_then(Value::as_array) {
            let mut flags = Flags::from_options(opts);
            flags.set(
                "timeout",
                Value::from(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)),
            );
            let mut wire_opts = Opts::broadcast(opts);
            wire_opts.flags = Some(flags);
            let request = Request::Broadcast {
                uid: inner.uid.clone(),
                request_id,
                packet: EventPacket {
                    data: data.clone(),
                    nsp: inner.nsp.clone(),
                },
                opts: wire_opts,
            };
            let _ = inner.publish_request(&request);
        }
        let ack_id = packet.id;
        let room = inner.local.matching_ids(opts).len() + 16;
        let (tx, local_rx) = mpsc::channel(room);
        let sockets = inner.local.broadcast_with_ack_local(packet, opts, &tx);
        drop(tx);
        let inner = inner.clone();
        Box::pin(async move {
            let _guard = guard;
            crate::acks::collect(state, inner.num_sub(), local_rx, sockets, ack_id, timeout).await
        })
    }

    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<Result<Vec<SocketInfo>, AdapterError>> {
        let local = self.inner.local.fetch_local(opts);
        if opts.local {
            return Box::pin(async move { Ok(local) });
        }
        let inner = self.inner.clone();
        let targets = Opts::targets(opts);
        Box::pin(async move {
            let num_sub = inner.num_sub().await.map_err(|e| backend(&e))?;
            if num_sub <= 1 {
                return Ok(local);
            }
            let request_id = wire::new_id();
            let (done, rx) = oneshot::channel();
            lock(&inner.requests).insert(
                request_id.clone(),
                Pending::Fetch {
                    num_sub,
                    msg_count: 1,
                    sockets: local,
                    done: Some(done),
                },
            );
            let _guard = RequestGuard {
                inner: &inner,
                id: request_id.clone(),
            };
            let request = Request::RemoteFetch {
                uid: inner.uid.clone(),
                request_id,
                opts: targets,
            };
            inner.publish_request(&request).map_err(|e| backend(&e))?;
            match tokio::time::timeout(inner.config.requests_timeout, rx).await {
                Ok(Ok(sockets)) => Ok(sockets),
                _ => Err(AdapterError::Timeout("fetchSockets")),
            }
        })
    }

    fn add_sockets(&self, opts: &BroadcastOptions, rooms: Vec<Room>) {
        let inner = &self.inner;
        inner.local.add_sockets_local(opts, &rooms);
        if !opts.local {
            let _ = inner.publish_request(&Request::RemoteRooms {
                join: true,
                uid: Some(inner.uid.clone()),
                opts: Opts::targets(opts),
                rooms,
            });
        }
    }

    fn del_sockets(&self, opts: &BroadcastOptions, rooms: Vec<Room>) {
        let inner = &self.inner;
        inner.local.del_sockets_local(opts, &rooms);
        if !opts.local {
            let _ = inner.publish_request(&Request::RemoteRooms {
                join: false,
                uid: Some(inner.uid.clone()),
                opts: Opts::targets(opts),
                rooms,
            });
        }
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        let inner = &self.inner;
        if !opts.local {
            let _ = inner.publish_request(&Request::RemoteDisconnect {
                uid: Some(inner.uid.clone()),
                opts: Opts::targets(opts),
                close,
            });
        }
        inner.local.disconnect_local(opts, close);
    }

    fn server_side_emit(&self, args: Vec<Value>) {
        let inner = &self.inner;
        let _ = inner.publish_request(&Request::ServerSideEmit {
            uid: inner.uid.clone(),
            request_id: None,
            data: args,
        });
    }

    fn server_side_emit_with_ack(
        &self,
        args: Vec<Value>,
        timeout: Duration,
    ) -> BoxFuture<AckResponses> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let num_sub = match inner.num_sub().await {
                Ok(n) => n,
                Err(err) => {
                    tracing::warn!(nsp = %inner.nsp, %err, "serverSideEmit: cannot count the nodes");
                    return AckResponses {
                        timed_out: true,
                        responses: Vec::new(),
                    };
                }
            };
            // Every other node answers once (wire notes 3.4).
            let expected = num_sub.saturating_sub(1);
            if expected == 0 {
                return AckResponses::default();
            }
            let request_id = wire::new_id();
            let (done, rx) = oneshot::channel();
            lock(&inner.requests).insert(
                request_id.clone(),
                Pending::ServerSideEmit {
                    expected,
                    responses: Vec::new(),
                    done: Some(done),
                },
            );
            let _guard = RequestGuard {
                inner: &inner,
                id: request_id.clone(),
            };
            let request = Request::ServerSideEmit {
                uid: inner.uid.clone(),
                request_id: Some(request_id.clone()),
                data: args,
            };
            if inner.publish_request(&request).is_err() {
                return AckResponses {
                    timed_out: true,
                    responses: Vec::new(),
                };
            }
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(responses)) => AckResponses {
                    timed_out: false,
                    responses,
                },
                _ => {
                    let partial = match lock(&inner.requests).remove(&request_id) {
                        Some(Pending::ServerSideEmit { responses, .. }) => responses,
                        _ => Vec::new(),
                    };
                    AckResponses {
                        timed_out: true,
                        responses: partial,
                    }
                }
            }
        })
    }

    fn server_count(&self) -> BoxFuture<usize> {
        let inner = self.inner.clone();
        Box::pin(async move {
            match inner.num_sub().await {
                Ok(n) => n.max(1),
                Err(err) => {
                    tracing::warn!(nsp = %inner.nsp, %err, "serverCount: Redis unavailable, counting this node only");
                    1
                }
            }
        })
    }

    fn all_rooms(&self) -> BoxFuture<Result<Vec<Room>, AdapterError>> {
        let inner = self.inner.clone();
        let local = inner.local.local_rooms();
        Box::pin(async move {
            let num_sub = inner.num_sub().await.map_err(|e| backend(&e))?;
            if num_sub <= 1 {
                return Ok(local);
            }
            let request_id = wire::new_id();
            let (done, rx) = oneshot::channel();
            lock(&inner.requests).insert(
                request_id.clone(),
                Pending::AllRooms {
                    num_sub,
                    msg_count: 1,
                    rooms: local,
                    done: Some(done),
                },
            );
            let _guard = RequestGuard {
                inner: &inner,
                id: request_id.clone(),
            };
            let request = Request::AllRooms {
                uid: inner.uid.clone(),
                request_id,
            };
            inner.publish_request(&request).map_err(|e| backend(&e))?;
            match tokio::time::timeout(inner.config.requests_timeout, rx).await {
                Ok(Ok(rooms)) => Ok(rooms),
                _ => Err(AdapterError::Timeout("allRooms")),
            }
        })
    }
}
