//! The Redis connections of one server process, shared by the adapters of all its namespaces
//! (and meant to be shared by every adapter family: classic now, sharded next). It only moves
//! bytes: what they mean is `wire`'s business.
//!
//! - **Publisher**: one command connection (`redis` crate `ConnectionManager`, which
//!   reconnects by itself). Publishes go through a bounded queue drained by one task that
//!   pipelines them, so they reach Redis in the order they were queued. A full queue drops
//!   the message, counts it and logs (rate-limited). `PUBSUB NUMSUB` goes over the same
//!   connection.
//! - **Subscriber**: one dedicated connection speaking RESP2 through [`crate::resp`], so every
//!   buffer on the path is bounded and the commands are exactly Node's (wire notes 3.1:
//!   one `PSUBSCRIBE` and one `SUBSCRIBE` per namespace; SSUBSCRIBE for the sharded adapter).
//!   When it drops, it reconnects with backoff and resubscribes everything; a PING every
//!   `health_check_interval` catches a half-open connection (wire notes 3.5, 9: "connected
//!   but silently unsubscribed").
//! - **Dispatcher**: the subscriber hands each message to a bounded queue (`try_send`: the
//!   reader never blocks; a full queue drops the message, counts it and logs). One task drains
//!   it and calls the handler registered for the channel (or pattern), in arrival order.
//!
//! Everything stops when the last [`Driver`] handle is dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use crate::error::Error;
use crate::resp::{self, Frame};

/// Limits and timings of the Redis connections. Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionConfig {
    /// Publishes waiting for the publisher connection; past this, new ones are dropped and
    /// counted. Default 8192.
    pub max_publish_queue: usize,
    /// Received messages waiting for dispatch; past this, new ones are dropped and counted.
    /// Default 8192.
    pub max_incoming_queue: usize,
    /// Largest message accepted from Redis; a larger one drops the subscriber connection (it
    /// then reconnects). Default 64 MiB.
    pub max_message_size: usize,
    /// Bound on one command or publish batch. Default 5 s.
    pub command_timeout: Duration,
    /// Bound on opening a connection. Default 3 s.
    pub connect_timeout: Duration,
    /// Longest wait between reconnection attempts (the delay doubles from 100 ms). Default 2 s.
    pub max_reconnect_delay: Duration,
    /// How often the subscriber connection is checked with a PING. Default 5 s.
    pub health_check_interval: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            max_publish_queue: 8192,
            max_incoming_queue: 8192,
            max_message_size: 64 * 1024 * 1024,
            command_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            max_reconnect_delay: Duration::from_secs(2),
            health_check_interval: Duration::from_secs(5),
        }
    }
}

/// Counters of the Redis connections, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Messages published.
    pub published: u64,
    /// Publishes dropped because the publish queue was full.
    pub publish_dropped: u64,
    /// Publishes lost because Redis failed or was unreachable.
    pub publish_failed: u64,
    /// Messages received from Redis and dispatched.
    pub received: u64,
    /// Received messages dropped because the dispatch queue was full.
    pub incoming_dropped: u64,
    /// Times the subscriber connection was opened again after a loss.
    pub reconnects: u64,
    /// Whether the subscriber connection is up with every subscription confirmed.
    pub subscribed: bool,
}

/// A message from the subscriber connection.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    /// The pattern that matched (`pmessage`), if any.
    pub(crate) pattern: Option<Bytes>,
    /// The channel it was published on.
    pub(crate) channel: Bytes,
    /// The payload.
    pub(crate) payload: Bytes,
}

/// Receives the messages of the channels and patterns it subscribed. Called on the dispatcher
/// task, in arrival order: it must not block.
pub(crate) trait Handler: Send + Sync + 'static {
    fn handle(self: Arc<Self>, msg: Incoming);
}

/// The subscription commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubKind {
    /// `SUBSCRIBE` (exact channels, `message`).
    Channel,
    /// `PSUBSCRIBE` (patterns, `pmessage`).
    Pattern,
    /// `SSUBSCRIBE` (sharded channels, `smessage`).
    Sharded,
}

impl SubKind {
    fn subscribe(self) -> &'static str {
        match self {
            Self::Channel => "SUBSCRIBE",
            Self::Pattern => "PSUBSCRIBE",
            Self::Sharded => "SSUBSCRIBE",
        }
    }

    fn unsubscribe(self) -> &'static str {
        match self {
            Self::Channel => "UNSUBSCRIBE",
            Self::Pattern => "PUNSUBSCRIBE",
            Self::Sharded => "SUNSUBSCRIBE",
        }
    }
}

struct Outgoing {
    command: &'static str,
    channel: String,
    payload: Bytes,
}

/// Told by a driver connected to one node of a Redis Cluster when Redis answers that a
/// channel's slot lives elsewhere (wire notes 5.5), so that a router can route again.
pub(crate) trait Redirects: Send + Sync + 'static {
    /// A publish was refused with `MOVED` / `ASK` by the node at `from`.
    fn publish_moved(&self, from: &str, channel: String, payload: Bytes);
    /// A subscription was refused with `MOVED`, or dropped by Redis itself (an unsolicited
    /// `sunsubscribe`: the slot migrated) on the node at `from`.
    fn subscription_moved(&self, from: &str, channel: Bytes);
}

struct SubEntry {
    seq: u64,
    kind: SubKind,
    channels: Vec<Bytes>,
}

#[derive(Default)]
struct SubState {
    /// What should be subscribed, in order.
    entries: Vec<SubEntry>,
    next_seq: u64,
    /// Entries up to this seq were sent on the current connection.
    sent_upto: u64,
    /// Unsubscriptions to send on the current connection.
    unsubs: Vec<(SubKind, Bytes)>,
}

#[derive(Debug, Clone, Default)]
struct SubStatus {
    connected: bool,
    /// Every entry up to this seq is confirmed on the current connection.
    confirmed: u64,
    /// A subscription Redis refused.
    error: Option<String>,
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    publish_dropped: AtomicU64,
    publish_failed: AtomicU64,
    received: AtomicU64,
    incoming_dropped: AtomicU64,
    reconnects: AtomicU64,
}

/// At most one log line per `every` for a recurring condition.
struct LogLimit {
    every: Duration,
    last: Mutex<Option<Instant>>,
}

impl LogLimit {
    fn new(every: Duration) -> Self {
        Self {
            every,
            last: Mutex::new(None),
        }
    }

    fn allow(&self) -> bool {
        let now = Instant::now();
        let mut last = lock(&self.last);
        match *last {
            Some(t) if now.duration_since(t) < self.every => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }
}

struct Server {
    host: String,
    port: u16,
    username: Option<String>,
    password: Option<String>,
    /// What the URL said, for connecting to other nodes of a Redis Cluster the same way.
    info: redis::ConnectionInfo,
}

impl Server {
    fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

struct Shared {
    server: Server,
    config: ConnectionConfig,
    publish_tx: mpsc::Sender<Outgoing>,
    commands: ConnectionManager,
    subs: Mutex<SubState>,
    sub_wake: Notify,
    status: watch::Sender<SubStatus>,
    routes: RwLock<HashMap<Bytes, Weak<dyn Handler>>>,
    counters: Counters,
    drop_log: LogLimit,
    publish_log: LogLimit,
    redirects: RwLock<Option<Weak<dyn Redirects>>>,
}

/// Stops the tasks when the last handle goes.
struct Alive(watch::Sender<bool>);

impl Drop for Alive {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

/// A handle on the connections. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Driver {
    shared: Arc<Shared>,
    _alive: Arc<Alive>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("addr", &self.shared.server.addr())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Driver {
    /// Opens both connections (failing when Redis cannot be reached) and starts the tasks.
    pub(crate) async fn connect(url: &str, config: ConnectionConfig) -> Result<Self, Error> {
        let client = redis::Client::open(url).map_err(|e| Error::InvalidUrl(e.to_string()))?;
        Self::connect_info(client.get_connection_info().clone(), config).await
    }

    /// The same with a parsed URL (another node of a Redis Cluster: see
    /// [`node_info`](Self::node_info)).
    pub(crate) async fn connect_info(
        info: redis::ConnectionInfo,
        config: ConnectionConfig,
    ) -> Result<Self, Error> {
        let client =
            redis::Client::open(info.clone()).map_err(|e| Error::InvalidUrl(e.to_string()))?;
        let (host, port) = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
            redis::ConnectionAddr::TcpTls { .. } => {
                return Err(Error::Unsupported(
                    "TLS (rediss://) is not supported yet".into(),
                ));
            }
            _ => {
                return Err(Error::Unsupported(
                    "only redis://host:port is supported".into(),
                ));
            }
        };
        let server = Server {
            host,
            port,
            username: info.redis_settings().username().map(str::to_owned),
            password: info.redis_settings().password().map(str::to_owned),
            info: info.clone(),
        };
        let connect_error = |reason: String| Error::Connect {
            addr: server.addr(),
            reason,
        };
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.command_timeout))
            .set_number_of_retries(1)
            .set_max_delay(config.max_reconnect_delay);
        let commands = tokio::time::timeout(
            config.connect_timeout * 2,
            client.get_connection_manager_with_config(manager_config),
        )
        .await
        .map_err(|_| connect_error("timed out".into()))?
        .map_err(|e| connect_error(e.to_string()))?;
        let stream = open(&server, &config).await.map_err(|e| match e {
            Error::Connect { .. } => e,
            other => connect_error(other.to_string()),
        })?;

        let (publish_tx, publish_rx) = mpsc::channel(config.max_publish_queue.max(1));
        let (incoming_tx, incoming_rx) = mpsc::channel(config.max_incoming_queue.max(1));
        let (stop_tx, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            server,
            config,
            publish_tx,
            commands: commands.clone(),
            subs: Mutex::new(SubState {
                next_seq: 1,
                ..SubState::default()
            }),
            sub_wake: Notify::new(),
            status: watch::Sender::new(SubStatus::default()),
            routes: RwLock::new(HashMap::new()),
            counters: Counters::default(),
            drop_log: LogLimit::new(Duration::from_secs(1)),
            publish_log: LogLimit::new(Duration::from_secs(1)),
            redirects: RwLock::new(None),
        });
        tokio::spawn(publisher(
            shared.clone(),
            publish_rx,
            commands,
            stop_rx.clone(),
        ));
        tokio::spawn(dispatcher(shared.clone(), incoming_rx, stop_rx.clone()));
        tokio::spawn(subscriber(shared.clone(), stream, incoming_tx, stop_rx));
        Ok(Self {
            shared,
            _alive: Arc::new(Alive(stop_tx)),
        })
    }

    /// Queues a `PUBLISH` (or `SPUBLISH`). Never waits: a full queue drops the message.
    pub(crate) fn publish_with(
        &self,
        command: &'static str,
        channel: String,
        payload: Bytes,
    ) -> Result<(), Error> {
        let shared = &self.shared;
        match shared.publish_tx.try_send(Outgoing {
            command,
            channel,
            payload,
        }) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(msg)) => {
                let n = shared
                    .counters
                    .publish_dropped
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                if shared.publish_log.allow() {
                    tracing::warn!(
                        channel = %msg.channel,
                        dropped_total = n,
                        "redis publish queue full (Redis slow or down): message dropped"
                    );
                }
                Err(Error::QueueFull)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Error::Closed),
        }
    }

    /// Queues a `PUBLISH`.
    pub(crate) fn publish(&self, channel: String, payload: Bytes) -> Result<(), Error> {
        self.publish_with("PUBLISH", channel, payload)
    }

    /// `PUBSUB NUMSUB <channel>`: connections subscribed to `channel`.
    pub(crate) async fn numsub(&self, channel: &str) -> Result<usize, Error> {
        self.pubsub_count("NUMSUB", channel).await
    }

    /// `PUBSUB <NUMSUB|SHARDNUMSUB> <channel>`: connections subscribed to `channel`.
    pub(crate) async fn pubsub_count(
        &self,
        subcommand: &'static str,
        channel: &str,
    ) -> Result<usize, Error> {
        let cmd = redis::cmd("PUBSUB").arg(subcommand).arg(channel).clone();
        let reply = self.query(&cmd, "PUBSUB").await?;
        match redis::from_redis_value::<(redis::Value, usize)>(reply) {
            Ok((_, n)) => Ok(n),
            Err(_) => Err(Error::Protocol("unexpected PUBSUB reply")),
        }
    }

    /// One command on the command connection, bounded by `command_timeout`.
    pub(crate) async fn query(
        &self,
        cmd: &redis::Cmd,
        what: &'static str,
    ) -> Result<redis::Value, Error> {
        let mut conn = self.shared.commands.clone();
        tokio::time::timeout(
            self.shared.config.command_timeout,
            cmd.query_async::<redis::Value>(&mut conn),
        )
        .await
        .map_err(|_| Error::Timeout(what))?
        .map_err(Error::from)
    }

    /// `host:port` of the server.
    pub(crate) fn addr(&self) -> String {
        self.shared.server.addr()
    }

    /// How to reach another node at `host:port` of the same Redis Cluster: same credentials
    /// and settings as this one.
    pub(crate) fn node_info(&self, host: &str, port: u16) -> redis::ConnectionInfo {
        self.shared
            .server
            .info
            .clone()
            .set_addr(redis::ConnectionAddr::Tcp(host.to_owned(), port))
    }

    /// Whom to tell about `MOVED` answers (Redis Cluster). Without it they are failures.
    pub(crate) fn set_redirects(&self, redirects: Weak<dyn Redirects>) {
        *self
            .shared
            .redirects
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(redirects);
    }

    /// Subscribes `channels` with one command of `kind`, delivering their messages to
    /// `handler`. Returns the subscription's seq (for [`ready`](Self::ready) and
    /// [`unsubscribe`](Self::unsubscribe)); the command goes out at once when connected, and
    /// again after every reconnection.
    pub(crate) fn subscribe(
        &self,
        kind: SubKind,
        channels: Vec<String>,
        handler: Weak<dyn Handler>,
    ) -> u64 {
        let channels: Vec<Bytes> = channels.into_iter().map(Bytes::from).collect();
        {
            let mut routes = self
                .shared
                .routes
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for channel in &channels {
                routes.insert(channel.clone(), handler.clone());
            }
        }
        let seq = {
            let mut subs = lock(&self.shared.subs);
            // A channel dropped and subscribed again before the subscriber task ran (a room
            // deleted and created again): the pending unsubscription must not undo this one.
            subs.unsubs
                .retain(|(k, c)| *k != kind || !channels.contains(c));
            let seq = subs.next_seq;
            subs.next_seq += 1;
            subs.entries.push(SubEntry {
                seq,
                kind,
                channels,
            });
            seq
        };
        self.shared.sub_wake.notify_one();
        seq
    }

    /// Drops a subscription: one unsubscribe command per channel, as Node 8.x `close()` does.
    pub(crate) fn unsubscribe(&self, seq: u64) {
        let removed = {
            let mut subs = lock(&self.shared.subs);
            let Some(at) = subs.entries.iter().position(|e| e.seq == seq) else {
                return;
            };
            let entry = subs.entries.remove(at);
            if entry.seq <= subs.sent_upto {
                for channel in &entry.channels {
                    subs.unsubs.push((entry.kind, channel.clone()));
                }
            }
            entry
        };
        let mut routes = self
            .shared
            .routes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for channel in &removed.channels {
            routes.remove(channel);
        }
        drop(routes);
        self.shared.sub_wake.notify_one();
    }

    /// Waits until every subscription made so far is confirmed by Redis, at most `timeout`.
    pub(crate) async fn ready(&self, timeout: Duration) -> Result<(), Error> {
        let target = {
            let subs = lock(&self.shared.subs);
            subs.entries.last().map_or(0, |e| e.seq)
        };
        let mut status = self.shared.status.subscribe();
        let wait = status.wait_for(|s| (s.connected && s.confirmed >= target) || s.error.is_some());
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(s)) => match &s.error {
                Some(err) => Err(Error::Redis(err.clone())),
                None => Ok(()),
            },
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::Timeout("the Redis subscriptions")),
        }
    }

    /// The counters.
    pub(crate) fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        let status = self.shared.status.borrow().clone();
        let target = lock(&self.shared.subs).entries.last().map_or(0, |e| e.seq);
        Stats {
            published: c.published.load(Ordering::Relaxed),
            publish_dropped: c.publish_dropped.load(Ordering::Relaxed),
            publish_failed: c.publish_failed.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            incoming_dropped: c.incoming_dropped.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
            subscribed: status.connected && status.confirmed >= target && status.error.is_none(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tasks
// ---------------------------------------------------------------------------------------------

const MAX_BATCH: usize = 256;

/// Drains the publish queue, one pipeline per batch.
async fn publisher(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Outgoing>,
    mut conn: ConnectionManager,
    mut stop: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, MAX_BATCH) => if n == 0 { return },
            _ = stop.changed() => return,
        }
        let mut pipe = redis::pipe();
        // One reply per publish: a refused one (e.g. `MOVED` in a Redis Cluster) does not
        // fail the others, which Redis did run.
        pipe.ignore_errors();
        for msg in &batch {
            pipe.cmd(msg.command)
                .arg(msg.channel.as_bytes())
                .arg(&msg.payload[..]);
        }
        let n = batch.len() as u64;
        let mut retried = false;
        loop {
            let sent = tokio::time::timeout(
                shared.config.command_timeout,
                pipe.query_async::<redis::Value>(&mut conn),
            )
            .await;
            match sent {
                Ok(Ok(redis::Value::Array(replies))) if replies.len() == batch.len() => {
                    on_publish_replies(&shared, &mut batch, replies);
                }
                Ok(Ok(_)) => publish_failed(&shared, n, "unexpected pipeline reply"),
                // The connection was found dead (e.g. Redis restarted while this node was
                // idle): the manager reconnects, and the batch is tried once more, so the
                // first publish after an outage is not lost.
                Ok(Err(err)) if !retried && (err.is_connection_dropped() || err.is_io_error()) => {
                    retried = true;
                    continue;
                }
                Ok(Err(err)) => publish_failed(&shared, n, &err.to_string()),
                Err(_) => publish_failed(&shared, n, "timed out"),
            }
            break;
        }
        batch.clear();
    }
}

/// Counts the publishes Redis took, and hands the ones a Redis Cluster node redirected to the
/// router (or counts them failed when there is none).
fn on_publish_replies(shared: &Shared, batch: &mut Vec<Outgoing>, replies: Vec<redis::Value>) {
    let mut ok = 0;
    for (msg, reply) in batch.drain(..).zip(replies) {
        let redis::Value::ServerError(err) = reply else {
            ok += 1;
            continue;
        };
        let redirect = matches!(
            err.kind(),
            Some(redis::ServerErrorKind::Moved | redis::ServerErrorKind::Ask)
        );
        match redirects(shared) {
            Some(to) if redirect => {
                to.publish_moved(&shared.server.addr(), msg.channel, msg.payload)
            }
            _ => publish_failed(shared, 1, err.details().unwrap_or_else(|| err.code())),
        }
    }
    shared.counters.published.fetch_add(ok, Ordering::Relaxed);
}

fn redirects(shared: &Shared) -> Option<Arc<dyn Redirects>> {
    shared
        .redirects
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
        .and_then(Weak::upgrade)
}

fn publish_failed(shared: &Shared, n: u64, reason: &str) {
    let total = shared
        .counters
        .publish_failed
        .fetch_add(n, Ordering::Relaxed)
        + n;
    if shared.publish_log.allow() {
        tracing::warn!(
            lost = n,
            lost_total = total,
            reason,
            "redis publish failed: messages lost for the other nodes"
        );
    }
}

/// Hands each received message to its handler, in arrival order.
async fn dispatcher(
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Incoming>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let msg = tokio::select! {
            msg = rx.recv() => match msg {
                Some(msg) => msg,
                None => return,
            },
            _ = stop.changed() => return,
        };
        let key = msg.pattern.as_ref().unwrap_or(&msg.channel);
        let handler = shared
            .routes
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .and_then(Weak::upgrade);
        match handler {
            Some(handler) => handler.handle(msg),
            None => tracing::trace!(channel = ?msg.channel, "message for no handler"),
        }
    }
}

/// Opens a subscriber connection (TCP, then `AUTH` when the URL has credentials).
async fn open(server: &Server, config: &ConnectionConfig) -> Result<TcpStream, Error> {
    let connect = TcpStream::connect((server.host.as_str(), server.port));
    let mut stream = tokio::time::timeout(config.connect_timeout, connect)
        .await
        .map_err(|_| Error::Connect {
            addr: server.addr(),
            reason: "timed out".into(),
        })?
        .map_err(|e| Error::Connect {
            addr: server.addr(),
            reason: e.to_string(),
        })?;
    let _ = stream.set_nodelay(true);
    if let Some(password) = &server.password {
        let mut out = BytesMut::new();
        match &server.username {
            Some(user) => resp::encode_command(&mut out, &["AUTH", user, password]),
            None => resp::encode_command(&mut out, &["AUTH", password]),
        }
        let reply = tokio::time::timeout(config.connect_timeout, async {
            stream
                .write_all(&out)
                .await
                .map_err(|e| Error::Redis(e.to_string()))?;
            let mut buf = BytesMut::with_capacity(256);
            loop {
                if let Some(frame) = resp::decode(&mut buf, 1024)? {
                    return Ok(frame);
                }
                if stream
                    .read_buf(&mut buf)
                    .await
                    .map_err(|e| Error::Redis(e.to_string()))?
                    == 0
                {
                    return Err(Error::Protocol("connection closed during AUTH"));
                }
            }
        })
        .await
        .map_err(|_| Error::Timeout("AUTH"))??;
        if let Frame::Error(msg) = reply {
            return Err(Error::Connect {
                addr: server.addr(),
                reason: String::from_utf8_lossy(&msg).into_owned(),
            });
        }
    }
    Ok(stream)
}

/// Keeps the subscriber connection up: run it, and on loss reconnect with backoff.
async fn subscriber(
    shared: Arc<Shared>,
    first: TcpStream,
    incoming: mpsc::Sender<Incoming>,
    mut stop: watch::Receiver<bool>,
) {
    let mut stream = Some(first);
    let mut failures: u32 = 0;
    let mut was_connected = false;
    loop {
        let conn = match stream.take() {
            Some(s) => Ok(s),
            None => open(&shared.server, &shared.config).await,
        };
        match conn {
            Ok(conn) => {
                if was_connected {
                    shared.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(addr = %shared.server.addr(), "redis subscriber reconnected: resubscribing");
                }
                was_connected = true;
                failures = 0;
                let reason = run_connection(&shared, conn, &incoming, &mut stop).await;
                shared.status.send_modify(|s| {
                    s.connected = false;
                    s.confirmed = 0;
                });
                match reason {
                    Ok(()) => return,
                    Err(err) => tracing::warn!(
                        addr = %shared.server.addr(),
                        error = %err,
                        "redis subscriber connection lost: cross-node messages are missed until it is back"
                    ),
                }
            }
            Err(err) => {
                failures = failures.saturating_add(1);
                if failures == 1 || failures % 30 == 0 {
                    tracing::warn!(addr = %shared.server.addr(), error = %err, attempts = failures, "redis unreachable: retrying");
                } else {
                    tracing::debug!(addr = %shared.server.addr(), error = %err, "redis unreachable");
                }
            }
        }
        let delay = backoff(failures, shared.config.max_reconnect_delay);
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
    }
}

/// 100 ms doubling per failure up to `max`, with up to 25 % jitter.
fn backoff(failures: u32, max: Duration) -> Duration {
    let base = Duration::from_millis(100)
        .saturating_mul(1u32 << failures.min(16))
        .min(max);
    let mut r = [0u8; 1];
    rand::fill(&mut r);
    base + base.mul_f64(f64::from(r[0]) / 1024.0)
}

/// What the next replies on the subscriber connection answer.
struct Expect {
    /// The subscription entry being confirmed, if it is one.
    seq: Option<u64>,
    /// Replies still expected (one per channel, one for a PING).
    remaining: usize,
    /// The command's channels (to report a refused subscription, to tell an unsubscription's
    /// reply from a push).
    channels: Vec<Bytes>,
    /// An unsubscription: its replies look like the pushes Redis sends by itself.
    unsubscribe: bool,
}

impl Expect {
    fn ping() -> Self {
        Self {
            seq: None,
            remaining: 1,
            channels: Vec::new(),
            unsubscribe: false,
        }
    }
}

/// One subscriber connection: (re)subscribe everything, then read until it fails. `Ok` when
/// stopped.
async fn run_connection(
    shared: &Shared,
    stream: TcpStream,
    incoming: &mpsc::Sender<Incoming>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Error> {
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut expect: VecDeque<Expect> = VecDeque::new();
    {
        let mut subs = lock(&shared.subs);
        subs.sent_upto = 0;
        subs.unsubs.clear();
    }
    shared.status.send_modify(|s| {
        s.connected = true;
        s.confirmed = 0;
        s.error = None;
    });
    let mut ping = tokio::time::interval(shared.config.health_check_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    let mut awaiting_pong = false;
    // Subscriptions made before this connection: sent at once.
    shared.sub_wake.notify_one();
    loop {
        let mut out = BytesMut::new();
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            read = rd.read_buf(&mut buf) => {
                let n = read.map_err(|e| Error::Redis(e.to_string()))?;
                if n == 0 {
                    return Err(Error::Redis("connection closed by Redis".into()));
                }
                while let Some(frame) = resp::decode(&mut buf, shared.config.max_message_size)? {
                    on_frame(shared, frame, &mut expect, &mut awaiting_pong, incoming)?;
                }
            }
            () = shared.sub_wake.notified() => {
                queue_subscriptions(shared, &mut out, &mut expect);
            }
            _ = ping.tick() => {
                if awaiting_pong {
                    return Err(Error::Timeout("a PING reply on the subscriber connection"));
                }
                resp::encode_command(&mut out, &["PING"]);
                expect.push_back(Expect::ping());
                awaiting_pong = true;
            }
        }
        if !out.is_empty() {
            tokio::time::timeout(shared.config.command_timeout, wr.write_all(&out))
                .await
                .map_err(|_| Error::Timeout("a write to the subscriber connection"))?
                .map_err(|e| Error::Redis(e.to_string()))?;
        }
    }
}

/// Encodes the subscriptions not sent yet on this connection, and pending unsubscriptions.
fn queue_subscriptions(shared: &Shared, out: &mut BytesMut, expect: &mut VecDeque<Expect>) {
    let mut subs = lock(&shared.subs);
    let sent_upto = subs.sent_upto;
    for entry in subs.entries.iter().filter(|e| e.seq > sent_upto) {
        let mut args: Vec<&[u8]> = Vec::with_capacity(entry.channels.len() + 1);
        args.push(entry.kind.subscribe().as_bytes());
        args.extend(entry.channels.iter().map(|c| &c[..]));
        resp::encode_command(out, &args);
        expect.push_back(Expect {
            seq: Some(entry.seq),
            remaining: entry.channels.len(),
            channels: entry.channels.clone(),
            unsubscribe: false,
        });
    }
    subs.sent_upto = subs.next_seq - 1;
    for (kind, channel) in std::mem::take(&mut subs.unsubs) {
        resp::encode_command(out, &[kind.unsubscribe().as_bytes(), &channel[..]]);
        expect.push_back(Expect {
            seq: None,
            remaining: 1,
            channels: vec![channel],
            unsubscribe: true,
        });
    }
}

/// One frame from the subscriber connection.
fn on_frame(
    shared: &Shared,
    frame: Frame,
    expect: &mut VecDeque<Expect>,
    awaiting_pong: &mut bool,
    incoming: &mpsc::Sender<Incoming>,
) -> Result<(), Error> {
    let items = match frame {
        Frame::Array(Some(items)) => items,
        Frame::Error(msg) => {
            // A refused command answers once for all its channels.
            let msg = String::from_utf8_lossy(&msg).into_owned();
            match expect.pop_front() {
                // A Redis Cluster node that does not own the channel's slot (wire notes 5.5):
                // the router subscribes it on the right node.
                Some(Expect {
                    seq: Some(_),
                    channels,
                    ..
                }) if msg.starts_with("MOVED ") || msg.starts_with("ASK ") => {
                    match redirects(shared) {
                        Some(to) => {
                            for channel in channels {
                                to.subscription_moved(&shared.server.addr(), channel);
                            }
                        }
                        None => {
                            tracing::error!(error = %msg, "redis refused a subscription");
                            shared.status.send_modify(|s| s.error = Some(msg));
                        }
                    }
                }
                Some(Expect { seq: Some(_), .. }) => {
                    tracing::error!(error = %msg, "redis refused a subscription");
                    shared.status.send_modify(|s| s.error = Some(msg));
                }
                _ => tracing::warn!(error = %msg, "redis error on the subscriber connection"),
            }
            return Ok(());
        }
        Frame::Simple(s) if s.eq_ignore_ascii_case(b"PONG") => {
            expect.pop_front();
            *awaiting_pong = false;
            return Ok(());
        }
        _ => {
            return Err(Error::Protocol(
                "unexpected reply on the subscriber connection",
            ));
        }
    };
    let mut items = items.into_iter();
    let kind = items
        .next()
        .and_then(|k| k.bytes().cloned())
        .ok_or(Error::Protocol("push without a kind"))?;
    let mut next_bytes = || items.next().and_then(|f| f.bytes().cloned());
    let msg = match kind.to_ascii_lowercase().as_slice() {
        b"message" | b"smessage" => {
            let channel = next_bytes().ok_or(Error::Protocol("message without channel"))?;
            let payload = next_bytes().ok_or(Error::Protocol("message without payload"))?;
            Incoming {
                pattern: None,
                channel,
                payload,
            }
        }
        b"pmessage" => {
            let pattern = next_bytes().ok_or(Error::Protocol("pmessage without pattern"))?;
            let channel = next_bytes().ok_or(Error::Protocol("pmessage without channel"))?;
            let payload = next_bytes().ok_or(Error::Protocol("pmessage without payload"))?;
            Incoming {
                pattern: Some(pattern),
                channel,
                payload,
            }
        }
        b"sunsubscribe" | b"unsubscribe" | b"punsubscribe" => {
            let channel = next_bytes().ok_or(Error::Protocol("unsubscribe without channel"))?;
            let answer = expect
                .front()
                .is_some_and(|e| e.unsubscribe && e.channels.contains(&channel));
            if answer {
                expect.pop_front();
            } else {
                // Not an answer: Redis dropped the subscription by itself, which a Redis
                // Cluster node does when the channel's slot moves away (wire notes 5.5).
                match redirects(shared) {
                    Some(to) => to.subscription_moved(&shared.server.addr(), channel),
                    None => tracing::warn!(?channel, "redis dropped a subscription by itself"),
                }
            }
            return Ok(());
        }
        b"subscribe" | b"psubscribe" | b"ssubscribe" => {
            if let Some(front) = expect.front_mut() {
                front.remaining = front.remaining.saturating_sub(1);
                if front.remaining == 0 {
                    let seq = front.seq;
                    expect.pop_front();
                    if let Some(seq) = seq {
                        shared
                            .status
                            .send_modify(|s| s.confirmed = s.confirmed.max(seq));
                    }
                }
            }
            return Ok(());
        }
        b"pong" => {
            expect.pop_front();
            *awaiting_pong = false;
            return Ok(());
        }
        _ => {
            tracing::debug!(kind = ?kind, "unknown push on the subscriber connection");
            return Ok(());
        }
    };
    match incoming.try_send(msg) {
        Ok(()) => {
            shared.counters.received.fetch_add(1, Ordering::Relaxed);
        }
        Err(mpsc::error::TrySendError::Full(msg)) => {
            let n = shared
                .counters
                .incoming_dropped
                .fetch_add(1, Ordering::Relaxed)
                + 1;
            if shared.drop_log.allow() {
                tracing::warn!(
                    channel = ?msg.channel,
                    dropped_total = n,
                    "redis dispatch queue full (handlers too slow): message dropped"
                );
            }
        }
        Err(mpsc::error::TrySendError::Closed(_)) => return Err(Error::Closed),
    }
    Ok(())
}
