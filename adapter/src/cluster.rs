//! The ClusterAdapter of socket.io-adapter 2.5.x (wire notes 4): how a namespace's adapter
//! publishes, answers and counts, whatever moves the bytes. The sharded Redis adapter plugs
//! its transport in ([`crate::sharded`]); a streams transport could reuse the same core.
//!
//! # Protocol notes
//!
//! - Own messages (same uid) and other namespaces' messages are dropped (4.1). A message
//!   without `nsp` (an 8.2.x sender, 5.6) is taken for this namespace: it came on this
//!   namespace's channel (Node 8.3 drops it; deviation).
//! - Requests (4.3): `serverCount() - 1` answers are expected; when that is ≤ 0 nothing is
//!   published and the local result is returned. Who answered is not tracked, only how many.
//! - socketsJoin / socketsLeave / disconnectSockets / broadcast publish first, then apply
//!   locally (4.3, the 2.5.4 ordering); a failed publish does not stop the local part (2.5.7).
//! - Every BROADCAST with a `requestId` is answered with BROADCAST_CLIENT_COUNT, even 0, then
//!   one BROADCAST_ACK per client ack (9); otherwise Node callers stall until their timeout.
//! - There is no ALL_ROOMS message: `allRooms()` is this node's rooms, as Node's
//!   ClusterAdapter (which keeps the in-memory `allRooms`).
//! - No heartbeat: `createShardedAdapter` uses the plain ClusterAdapter (5.4); counting is the
//!   transport's (`SHARDNUMSUB`). Heartbeat messages (1, 2, 13) are ignored.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use socketio::adapter::BoxFuture;
use socketio::{
    AckResponses, Adapter, AdapterError, BroadcastOptions, LocalAdapter, Packet, PacketType, Room,
    ServerAck, SocketInfo, Value,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::acks::AckState;
use crate::error::Error;
use crate::wire::cluster::{self, Body, Message, opts_of};
use crate::wire::{Flags, Opts, normalize_dates, socket_from_value, socket_to_value};

/// What moves a ClusterAdapter's messages (Node's `doPublish` / `doPublishResponse` /
/// `serverCount` and the room events of the in-memory adapter).
pub(crate) trait Transport: Send + Sync + 'static {
    /// A message for every other node. Never waits.
    fn publish(&self, message: &Message<'_>) -> Result<(), Error>;
    /// A response for the node `requester` only. Never waits.
    fn publish_response(&self, requester: &str, message: &Message<'_>) -> Result<(), Error>;
    /// Nodes in the cluster, this one included.
    fn server_count(&self) -> BoxFuture<Result<usize, Error>>;
    /// `rooms` may have been created or deleted on this node just now.
    fn rooms_changed(&self, rooms: &mut dyn Iterator<Item = &str>);
    /// Stops receiving (Node's `close()`).
    fn close(&self);
}

/// A namespace's adapter speaking the ClusterAdapter protocol: built by
/// [`ShardedCluster::factory`](crate::ShardedCluster::factory).
pub struct ClusterAdapter {
    core: Arc<Core>,
}

impl std::fmt::Debug for ClusterAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterAdapter")
            .field("nsp", &self.core.nsp)
            .field("uid", &self.core.uid)
            .finish_non_exhaustive()
    }
}

/// The state shared by the adapter, its transport's receiver and its background tasks.
pub(crate) struct Core {
    nsp: String,
    uid: String,
    local: Arc<LocalAdapter>,
    transport: Box<dyn Transport>,
    requests_timeout: Duration,
    /// fetchSockets / serverSideEmit-with-ack waiting for answers.
    requests: Mutex<HashMap<String, Pending>>,
    /// Broadcasts with acks waiting for client counts and acks.
    acks: Mutex<HashMap<String, Arc<AckState>>>,
}

enum Pending {
    Fetch {
        expected: usize,
        current: usize,
        sockets: Vec<SocketInfo>,
        done: Option<oneshot::Sender<Vec<SocketInfo>>>,
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

fn backend(err: &Error) -> AdapterError {
    AdapterError::Backend(err.to_string())
}

impl ClusterAdapter {
    /// The adapter of `nsp` around `local`, with the transport `make` builds from the core
    /// (to deliver incoming messages to) and the node uid.
    pub(crate) fn new(
        nsp: &str,
        local: Arc<LocalAdapter>,
        requests_timeout: Duration,
        make: impl FnOnce(Weak<Core>, &str) -> Box<dyn Transport>,
    ) -> Self {
        let uid = cluster::new_id();
        let core = Arc::new_cyclic(|weak: &Weak<Core>| Core {
            nsp: nsp.to_owned(),
            transport: make(weak.clone(), &uid),
            uid: uid.clone(),
            local,
            requests_timeout,
            requests: Mutex::new(HashMap::new()),
            acks: Mutex::new(HashMap::new()),
        });
        tracing::debug!(nsp, uid, "cluster adapter created");
        Self { core }
    }

    /// This adapter's uid (16 hex characters, as Node's).
    #[must_use]
    pub fn uid(&self) -> &str {
        &self.core.uid
    }
}

impl Drop for ClusterAdapter {
    fn drop(&mut self) {
        self.core.transport.close();
    }
}

/// Removes a pending request when its waiter goes (answered, timed out or cancelled).
struct RequestGuard<'a> {
    core: &'a Core,
    id: String,
}

impl Drop for RequestGuard<'_> {
    fn drop(&mut self) {
        lock(&self.core.requests).remove(&self.id);
    }
}

/// Removes a broadcast-with-acks entry when its waiter goes.
struct AckGuard {
    core: Arc<Core>,
    id: String,
}

impl Drop for AckGuard {
    fn drop(&mut self) {
        lock(&self.core.acks).remove(&self.id);
    }
}

impl Core {
    fn message<'a>(&self, body: Body<'a>) -> Message<'a> {
        Message {
            uid: self.uid.clone(),
            nsp: Some(self.nsp.clone()),
            body,
        }
    }

    fn publish(&self, body: Body<'_>) -> Result<(), Error> {
        let result = self.transport.publish(&self.message(body));
        if let Err(err) = &result {
            tracing::debug!(nsp = %self.nsp, %err, "cluster publish failed");
        }
        result
    }

    /// `publishResponse`: always with our uid and nsp (wire notes 4.1).
    fn respond(&self, requester: &str, body: Body<'_>) {
        if let Err(err) = self
            .transport
            .publish_response(requester, &self.message(body))
        {
            tracing::debug!(nsp = %self.nsp, %err, "cluster response not published");
        }
    }

    async fn server_count(&self) -> Result<usize, Error> {
        self.transport.server_count().await
    }

    fn rooms_changed<'r>(&self, rooms: impl IntoIterator<Item = &'r Room>) {
        self.transport
            .rooms_changed(&mut rooms.into_iter().map(String::as_str));
    }

    // -- receiving ------------------------------------------------------------------------------

    /// A message from another node (Node's `onMessage`).
    pub(crate) fn on_message(self: &Arc<Self>, message: Message<'static>) {
        if message.uid == self.uid {
            return;
        }
        if message.nsp.as_ref().is_some_and(|nsp| *nsp != self.nsp) {
            return;
        }
        let requester = message.uid;
        match message.body {
            Body::Broadcast {
                data,
                request_id: None,
                opts,
            } => {
                let mut data = Value::Array(data.into_owned());
                normalize_dates(&mut data);
                self.local
                    .broadcast_local(Packet::event(self.nsp.as_str(), data), &opts.to_options());
            }
            Body::Broadcast {
                data,
                request_id: Some(request_id),
                opts,
            } => self.answer_broadcast(requester, request_id, data.into_owned(), &opts),
            Body::SocketsJoin { opts, rooms } => {
                self.local.add_sockets_local(&opts.to_options(), &rooms);
                self.rooms_changed(&rooms);
            }
            Body::SocketsLeave { opts, rooms } => {
                self.local.del_sockets_local(&opts.to_options(), &rooms);
                self.rooms_changed(&rooms);
            }
            Body::DisconnectSockets { opts, close } => {
                self.local.disconnect_local(&opts.to_options(), close);
            }
            Body::FetchSockets { opts, request_id } => {
                let sockets = self
                    .local
                    .fetch_local(&opts.to_options())
                    .iter()
                    .map(socket_to_value)
                    .collect();
                self.respond(
                    &requester,
                    Body::FetchSocketsResponse {
                        request_id,
                        sockets,
                    },
                );
            }
            Body::ServerSideEmit { request_id, packet } => {
                self.on_server_side_emit(requester, request_id, packet);
            }
            body if body.is_response() => self.on_response(Message {
                uid: requester,
                nsp: message.nsp,
                body,
            }),
            _ => tracing::trace!(nsp = %self.nsp, "ignoring a heartbeat-variant message"),
        }
    }

    fn on_server_side_emit(
        self: &Arc<Self>,
        requester: String,
        request_id: Option<String>,
        packet: Vec<Value>,
    ) {
        let Some(ns) = self.local.namespace() else {
            return;
        };
        let mut args = packet.into_iter();
        let event = match args.next() {
            Some(Value::String(s)) => s.into_str().unwrap_or_default(),
            Some(other) => socketio::value::to_json_string(&other),
            None => return,
        };
        let ack = request_id.map(|request_id| {
            let weak = Arc::downgrade(self);
            // Node's callback keeps only its first argument, and answers once.
            ServerAck::new(move |args: Vec<Value>| {
                if let Some(core) = weak.upgrade() {
                    core.respond(
                        &requester,
                        Body::ServerSideEmitResponse {
                            request_id,
                            packet: args.into_iter().next(),
                        },
                    );
                }
            })
        });
        ns.receive_server_side(&event, args.collect(), ack);
    }

    /// Another node's broadcast with acks: send it to the local matching sockets, report how
    /// many (even 0), then forward each ack to the requester (wire notes 4.2).
    fn answer_broadcast(
        self: &Arc<Self>,
        requester: String,
        request_id: String,
        data: Vec<Value>,
        opts: &Opts,
    ) {
        let Some(ns) = self.local.namespace() else {
            return;
        };
        let mut data = Value::Array(data);
        normalize_dates(&mut data);
        let ack_id = ns.next_ack_id();
        let packet = Packet::event(self.nsp.as_str(), data).with_id(ack_id);
        // The ClusterAdapter hands the sender's options, flags included, to the local part.
        let targets = opts.to_options();
        let room = self.local.matching_ids(&targets).len() + 16;
        let (tx, mut rx) = mpsc::channel(room);
        let sockets = self.local.broadcast_with_ack_local(packet, &targets, &tx);
        drop(tx);
        self.respond(
            &requester,
            Body::BroadcastClientCount {
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
            .map_or(self.requests_timeout, Duration::from_millis);
        let core = self.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + timeout;
            let mut answered = 0;
            while answered < sockets.len() {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(args)) => {
                        answered += 1;
                        core.respond(
                            &requester,
                            Body::BroadcastAck {
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

    /// A response to one of our requests (Node's `onResponse`); unknown request ids are
    /// dropped.
    pub(crate) fn on_response(&self, message: Message<'static>) {
        match message.body {
            Body::BroadcastClientCount {
                request_id,
                client_count,
            } => {
                if let Some(ack) = lock(&self.acks).get(&request_id).cloned() {
                    ack.client_count(client_count);
                }
            }
            Body::BroadcastAck { request_id, packet } => {
                if let Some(ack) = lock(&self.acks).get(&request_id).cloned() {
                    ack.ack(packet);
                }
            }
            Body::FetchSocketsResponse {
                request_id,
                sockets: list,
            } => {
                let mut requests = lock(&self.requests);
                let Some(Pending::Fetch {
                    expected,
                    current,
                    sockets,
                    done,
                }) = requests.get_mut(&request_id)
                else {
                    return;
                };
                *current += 1;
                sockets.extend(list.iter().filter_map(socket_from_value));
                if *current >= *expected
                    && let Some(done) = done.take()
                {
                    let _ = done.send(std::mem::take(sockets));
                }
            }
            Body::ServerSideEmitResponse { request_id, packet } => {
                let mut requests = lock(&self.requests);
                let Some(Pending::ServerSideEmit {
                    expected,
                    responses,
                    done,
                }) = requests.get_mut(&request_id)
                else {
                    return;
                };
                let mut value = packet.unwrap_or(Value::Nil);
                normalize_dates(&mut value);
                responses.push(vec![value]);
                if responses.len() >= *expected
                    && let Some(done) = done.take()
                {
                    let _ = done.send(std::mem::take(responses));
                }
            }
            _ => tracing::debug!(nsp = %self.nsp, "ignoring a non-response on the private channel"),
        }
    }
}

impl Adapter for ClusterAdapter {
    fn add_all(&self, id: &str, rooms: &[Room]) {
        self.core.local.add_all(id, rooms);
        self.core.rooms_changed(rooms);
    }

    fn del(&self, id: &str, room: &str) {
        self.core.local.del(id, room);
        self.core
            .transport
            .rooms_changed(&mut std::iter::once(room));
    }

    fn del_all(&self, id: &str) {
        let rooms = self.core.local.socket_rooms(id).unwrap_or_default();
        self.core.local.del_all(id);
        self.core.rooms_changed(&rooms);
    }

    fn socket_rooms(&self, id: &str) -> Option<Vec<Room>> {
        self.core.local.socket_rooms(id)
    }

    fn sockets(&self, opts: &BroadcastOptions) -> Vec<String> {
        self.core.local.matching_ids(opts)
    }

    fn broadcast(&self, packet: Packet, opts: &BroadcastOptions) {
        let core = &self.core;
        if !opts.local {
            match (packet.kind, packet.data.as_ref().and_then(Value::as_array)) {
                (PacketType::Event, Some(data)) => {
                    // Encoded once, from the borrowed arguments, before the local delivery.
                    let _ = core.publish(Body::Broadcast {
                        data: Cow::Borrowed(data),
                        request_id: None,
                        opts: opts_of(&opts.rooms, &opts.except, Flags::from_options(opts)),
                    });
                }
                _ => tracing::debug!(nsp = %core.nsp, "only events are broadcast to other nodes"),
            }
        }
        core.local.broadcast_local(packet, opts);
    }

    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<AckResponses> {
        let core = &self.core;
        if opts.local {
            return core.local.broadcast_with_ack(packet, opts, timeout);
        }
        let request_id = cluster::new_id();
        let state = Arc::new(AckState::default());
        lock(&core.acks).insert(request_id.clone(), state.clone());
        let guard = AckGuard {
            core: core.clone(),
            id: request_id.clone(),
        };
        if let Some(data) = packet.data.as_ref().and_then(Value::as_array) {
            let mut flags = Flags::from_options(opts);
            flags.set(
                "timeout",
                Value::from(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)),
            );
            // Always the main channel: every counted node must answer (wire notes 5.2).
            let _ = core.publish(Body::Broadcast {
                data: Cow::Borrowed(data),
                request_id: Some(request_id),
                opts: opts_of(&opts.rooms, &opts.except, flags),
            });
        }
        let ack_id = packet.id;
        let room = core.local.matching_ids(opts).len() + 16;
        let (tx, local_rx) = mpsc::channel(room);
        let sockets = core.local.broadcast_with_ack_local(packet, opts, &tx);
        drop(tx);
        let core = core.clone();
        Box::pin(async move {
            let _guard = guard;
            crate::acks::collect(
                state,
                core.server_count(),
                local_rx,
                sockets,
                ack_id,
                timeout,
            )
            .await
        })
    }

    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<Result<Vec<SocketInfo>, AdapterError>> {
        let local = self.core.local.fetch_local(opts);
        if opts.local {
            return Box::pin(async move { Ok(local) });
        }
        let core = self.core.clone();
        let wire_opts = opts_of(&opts.rooms, &opts.except, Flags::from_options(opts));
        Box::pin(async move {
            let count = core.server_count().await.map_err(|e| backend(&e))?;
            let expected = count.saturating_sub(1);
            if expected == 0 {
                return Ok(local);
            }
            let request_id = cluster::new_id();
            let (done, rx) = oneshot::channel();
            lock(&core.requests).insert(
                request_id.clone(),
                Pending::Fetch {
                    expected,
                    current: 0,
                    sockets: local,
                    done: Some(done),
                },
            );
            let _guard = RequestGuard {
                core: &core,
                id: request_id.clone(),
            };
            core.publish(Body::FetchSockets {
                opts: wire_opts,
                request_id,
            })
            .map_err(|e| backend(&e))?;
            match tokio::time::timeout(core.requests_timeout, rx).await {
                Ok(Ok(sockets)) => Ok(sockets),
                _ => Err(AdapterError::Timeout("fetchSockets")),
            }
        })
    }

    fn add_sockets(&self, opts: &BroadcastOptions, rooms: Vec<Room>) {
        let core = &self.core;
        if !opts.local {
            let _ = core.publish(Body::SocketsJoin {
                opts: opts_of(&opts.rooms, &opts.except, Flags::from_options(opts)),
                rooms: rooms.clone(),
            });
        }
        core.local.add_sockets_local(opts, &rooms);
        core.rooms_changed(&rooms);
    }

    fn del_sockets(&self, opts: &BroadcastOptions, rooms: Vec<Room>) {
        let core = &self.core;
        if !opts.local {
            let _ = core.publish(Body::SocketsLeave {
                opts: opts_of(&opts.rooms, &opts.except, Flags::from_options(opts)),
                rooms: rooms.clone(),
            });
        }
        core.local.del_sockets_local(opts, &rooms);
        core.rooms_changed(&rooms);
    }

    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        let core = &self.core;
        if !opts.local {
            let _ = core.publish(Body::DisconnectSockets {
                opts: opts_of(&opts.rooms, &opts.except, Flags::from_options(opts)),
                close,
            });
        }
        core.local.disconnect_local(opts, close);
    }

    fn server_side_emit(&self, args: Vec<Value>) {
        let _ = self.core.publish(Body::ServerSideEmit {
            request_id: None,
            packet: args,
        });
    }

    fn server_side_emit_with_ack(
        &self,
        args: Vec<Value>,
        timeout: Duration,
    ) -> BoxFuture<AckResponses> {
        let core = self.core.clone();
        Box::pin(async move {
            let count = match core.server_count().await {
                Ok(n) => n,
                Err(err) => {
                    tracing::warn!(nsp = %core.nsp, %err, "serverSideEmit: cannot count the nodes");
                    return AckResponses {
                        timed_out: true,
                        responses: Vec::new(),
                    };
                }
            };
            // Every other node answers once (wire notes 4.3).
            let expected = count.saturating_sub(1);
            if expected == 0 {
                return AckResponses::default();
            }
            let request_id = cluster::new_id();
            let (done, rx) = oneshot::channel();
            lock(&core.requests).insert(
                request_id.clone(),
                Pending::ServerSideEmit {
                    expected,
                    responses: Vec::new(),
                    done: Some(done),
                },
            );
            let _guard = RequestGuard {
                core: &core,
                id: request_id.clone(),
            };
            let published = core.publish(Body::ServerSideEmit {
                request_id: Some(request_id.clone()),
                packet: args,
            });
            if published.is_err() {
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
                    let partial = match lock(&core.requests).remove(&request_id) {
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
        let core = self.core.clone();
        Box::pin(async move {
            match core.server_count().await {
                Ok(n) => n.max(1),
                Err(err) => {
                    tracing::warn!(nsp = %core.nsp, %err, "serverCount: Redis unavailable, counting this node only");
                    1
                }
            }
        })
    }

    fn all_rooms(&self) -> BoxFuture<Result<Vec<Room>, AdapterError>> {
        // No ALL_ROOMS in the ClusterAdapter protocol: this node's rooms, as Node.
        let rooms = self.core.local.local_rooms();
        Box::pin(async move { Ok(rooms) })
    }
}
