//! The sharded Redis adapter: `@socket.io/redis-adapter` 8.3 `createShardedAdapter()`, Redis
//! ≥ 7 sharded pub/sub (wire notes 5), on one Redis server or a Redis Cluster.
//!
//! Each namespace gets a [`ClusterAdapter`] (the ClusterAdapter protocol, wire notes 4) whose
//! transport is defined here: channels, subscription modes, `SPUBLISH`, `SHARDNUMSUB`.
//!
//! # Protocol notes
//!
//! - Per namespace: `SSUBSCRIBE <prefix>#<nsp>#` (main), then `<prefix>#<nsp>#<uid>#`
//!   (private), one command per channel (5.1); `PUBSUB SHARDNUMSUB` of the main channel counts
//!   this process once.
//! - Dynamic modes (5.2): a room channel is subscribed when the room appears on this node and
//!   dropped when it empties; `dynamic` skips the sockets' own rooms, `dynamic-private` does
//!   not. The mode also picks where single-room broadcasts are published
//!   ([`ShardedChannels::for_message`]): the whole cluster must use the same mode.
//! - Messages on the private channel go straight to the response handler (5.4).
//! - A room named like this node's uid would share the private channel: it is not subscribed
//!   separately (the private channel already delivers it).
//! - Faults: as the classic adapter, local delivery goes on while Redis is down; publishes
//!   are queued (bounded) or dropped and counted; requests time out (`requests_timeout`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use socketio::adapter::BoxFuture;
use socketio::{Adapter, AdapterFactory, LocalAdapter, Room};

use crate::cluster::{ClusterAdapter, Core, Transport};
use crate::driver::{ConnectionConfig, Handler, Incoming, Stats};
use crate::error::Error;
use crate::topology::{Router, SubId};
use crate::wire::cluster::{Message, ShardedChannels, SubscriptionMode};

/// Options of the sharded adapter (Node's `createShardedAdapter` options).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShardedConfig {
    /// Prefix of every channel (`channelPrefix`). Default `socket.io`.
    pub channel_prefix: String,
    /// `subscriptionMode`. Default [`SubscriptionMode::Dynamic`]. Every node of the cluster
    /// must use the same.
    pub subscription_mode: SubscriptionMode,
    /// How long fetchSockets waits for the other nodes (Node's 5 s default). Default 5 s.
    pub requests_timeout: Duration,
    /// Limits and timings of the Redis connections (per node of a Redis Cluster).
    pub connection: ConnectionConfig,
}

impl Default for ShardedConfig {
    fn default() -> Self {
        Self {
            channel_prefix: "socket.io".into(),
            subscription_mode: SubscriptionMode::default(),
            requests_timeout: Duration::from_secs(5),
            connection: ConnectionConfig::default(),
        }
    }
}

impl ShardedConfig {
    /// The default options with another prefix and mode.
    #[must_use]
    pub fn new(channel_prefix: impl Into<String>, subscription_mode: SubscriptionMode) -> Self {
        Self {
            channel_prefix: channel_prefix.into(),
            subscription_mode,
            ..Self::default()
        }
    }
}

/// The Redis connections of one server (one publisher and one subscriber connection per
/// Redis server, or per master of a Redis Cluster), and the factory of its namespaces'
/// adapters.
///
/// ```no_run
/// # async fn run() -> Result<(), socketio_redis::Error> {
/// use socketio_redis::{ShardedCluster, ShardedConfig};
///
/// // Any node of a Redis Cluster will do: the others are found with CLUSTER SLOTS.
/// let cluster = ShardedCluster::connect("redis://127.0.0.1:6379", ShardedConfig::default()).await?;
/// let io = socketio::SocketIo::with_adapter(socketio::Config::default(), cluster.factory());
/// io.of("/chat");
/// cluster.ready().await?; // every namespace so far is subscribed
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ShardedCluster {
    router: Router,
    config: Arc<ShardedConfig>,
}

impl ShardedCluster {
    /// Connects to Redis: to the server at `url`, or, when it is a Redis Cluster node, to
    /// every master.
    ///
    /// # Errors
    ///
    /// A bad or unsupported URL, or Redis (or a cluster master) unreachable now.
    pub async fn connect(url: &str, config: ShardedConfig) -> Result<Self, Error> {
        let router = Router::connect(url, config.connection.clone()).await?;
        Ok(Self {
            router,
            config: Arc::new(config),
        })
    }

    /// The adapter factory for [`socketio::SocketIo::with_adapter`]: every namespace gets a
    /// [`ClusterAdapter`] sharing these connections.
    #[must_use]
    pub fn factory(&self) -> AdapterFactory {
        let router = self.router.clone();
        let config = self.config.clone();
        Arc::new(move |nsp: &str, local: Arc<LocalAdapter>| {
            let router = router.clone();
            let config = config.clone();
            let transport_local = local.clone();
            Arc::new(ClusterAdapter::new(
                nsp,
                local,
                config.requests_timeout,
                move |core, uid| {
                    Box::new(Sharded::new(
                        nsp,
                        uid,
                        transport_local,
                        router,
                        &config,
                        core,
                    )) as Box<dyn Transport>
                },
            )) as Arc<dyn Adapter>
        })
    }

    /// Waits until Redis confirmed the subscriptions of every namespace created so far, at
    /// most `requests_timeout` per node (a server should announce itself only then).
    ///
    /// # Errors
    ///
    /// Redis refused a subscription, or did not confirm in time.
    pub async fn ready(&self) -> Result<(), Error> {
        self.router
            .ready(self.config.requests_timeout.max(Duration::from_secs(1)))
            .await
    }

    /// Whether the server given to [`connect`](Self::connect) is a Redis Cluster node.
    #[must_use]
    pub fn is_redis_cluster(&self) -> bool {
        self.router.is_cluster()
    }

    /// Counters of the connections (drops, failures, reconnections), summed over the nodes.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.router.stats()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Hands what arrives on a namespace's channels to its adapter.
struct Receiver {
    core: Weak<Core>,
    private: Bytes,
}

impl Handler for Receiver {
    fn handle(self: Arc<Self>, msg: Incoming) {
        let Some(core) = self.core.upgrade() else {
            return;
        };
        let message = match Message::decode(&msg.payload) {
            Ok(m) => m,
            Err(err) => {
                tracing::debug!(channel = ?msg.channel, %err, "ignoring a malformed cluster message");
                return;
            }
        };
        // Node: what comes on the private channel goes straight to `onResponse` (5.4).
        if msg.channel == self.private {
            core.on_response(message);
        } else {
            core.on_message(message);
        }
    }
}

/// The sharded transport of one namespace.
struct Sharded {
    uid: String,
    channels: ShardedChannels,
    mode: SubscriptionMode,
    router: Router,
    local: Arc<LocalAdapter>,
    receiver: Arc<Receiver>,
    /// Main and private channels.
    fixed: Mutex<Vec<SubId>>,
    /// Room channels (dynamic modes).
    rooms: Mutex<HashMap<Room, SubId>>,
    closed: AtomicBool,
}

impl Sharded {
    fn new(
        nsp: &str,
        uid: &str,
        local: Arc<LocalAdapter>,
        router: Router,
        config: &ShardedConfig,
        core: Weak<Core>,
    ) -> Self {
        let channels = ShardedChannels::new(&config.channel_prefix, nsp);
        let private = channels.private(uid);
        let receiver = Arc::new(Receiver {
            core,
            private: Bytes::from(private.clone()),
        });
        let handler: Weak<dyn Handler> = {
            let weak: Weak<Receiver> = Arc::downgrade(&receiver);
            weak
        };
        // Node's order: the main channel, then the private one (5.1).
        let fixed = vec![
            router.subscribe(channels.main().to_owned(), handler.clone()),
            router.subscribe(private, handler),
        ];
        Self {
            uid: uid.to_owned(),
            channels,
            mode: config.subscription_mode,
            router,
            local,
            receiver,
            fixed: Mutex::new(fixed),
            rooms: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        }
    }

    fn handler(&self) -> Weak<dyn Handler> {
        let weak: Weak<Receiver> = Arc::downgrade(&self.receiver);
        weak
    }
}

impl Transport for Sharded {
    fn publish(&self, message: &Message<'_>) -> Result<(), Error> {
        let channel = self.channels.for_message(message, self.mode);
        self.router.publish(channel, message.encode())
    }

    fn publish_response(&self, requester: &str, message: &Message<'_>) -> Result<(), Error> {
        self.router
            .publish(self.channels.private(requester), message.encode())
    }

    fn server_count(&self) -> BoxFuture<Result<usize, Error>> {
        let router = self.router.clone();
        let main = self.channels.main().to_owned();
        Box::pin(async move { router.shard_numsub(&main).await })
    }

    /// Node's `create-room` / `delete-room` listeners, as a reconciliation: under the lock,
    /// each room is subscribed exactly when it exists here and the mode wants it, so racing
    /// joins and leaves cannot leave a live room unsubscribed.
    fn rooms_changed(&self, rooms: &mut dyn Iterator<Item = &str>) {
        if self.mode == SubscriptionMode::Static {
            return;
        }
        let mut subs = lock(&self.rooms);
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        for room in rooms {
            let want = room != self.uid
                && self.local.has_room(room)
                && self
                    .mode
                    .subscribes_room(self.local.socket_rooms(room).is_some());
            match (want, subs.contains_key(room)) {
                (true, false) => {
                    let id = self
                        .router
                        .subscribe(self.channels.room(room), self.handler());
                    subs.insert(room.to_owned(), id);
                }
                (false, true) => {
                    if let Some(id) = subs.remove(room) {
                        self.router.unsubscribe(id);
                    }
                }
                _ => {}
            }
        }
    }

    /// Node 8.3 `close()`: SUNSUBSCRIBE the main, private and room channels.
    fn close(&self) {
        let rooms = {
            let mut subs = lock(&self.rooms);
            self.closed.store(true, Ordering::Release);
            std::mem::take(&mut *subs)
        };
        for id in std::mem::take(&mut *lock(&self.fixed)) {
            self.router.unsubscribe(id);
        }
        for id in rooms.into_values() {
            self.router.unsubscribe(id);
        }
    }
}
