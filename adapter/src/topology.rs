//! Where a sharded channel lives: on the one Redis server, or on the node of a Redis Cluster
//! that owns the channel's hash slot (wire notes 5.1, 5.5). Moves bytes only, through one
//! [`Driver`] per server (per master in a cluster).
//!
//! # Protocol notes
//!
//! - `SSUBSCRIBE` / `SPUBLISH` must reach the node owning `CRC16(channel) mod 16384` (hash tags
//!   `{...}` apply as for keys); one `SSUBSCRIBE` per channel, so a command never spans slots
//!   (5.1). The slot map comes from `CLUSTER SLOTS` on any node; a server answering
//!   "cluster support disabled" is a plain server.
//! - `MOVED` / `ASK` answers (stale map) and the `sunsubscribe` a node pushes by itself when a
//!   slot migrates away (5.5) trigger a refresh of the map: subscriptions whose owner changed
//!   move to the new owner, redirected publishes are sent again once (dropped and counted when
//!   the map still names the node that refused them).
//! - `PUBSUB SHARDNUMSUB` is summed over every master, as Node does (5.4).
//! - Only masters are used (a subscriber could use a replica; not needed here).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::driver::{ConnectionConfig, Driver, Handler, Redirects, Stats, SubKind};
use crate::error::Error;

/// Hash slots of a Redis Cluster.
const SLOTS: usize = 16384;
/// Slot map entry for a slot no master serves.
const NO_NODE: u16 = u16::MAX;

/// CRC16/XMODEM, as Redis Cluster's `keyHashSlot`.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The hash slot of a key or sharded channel: the part between the first `{` and the next `}`
/// when that is not empty (a hash tag), else the whole name.
pub(crate) fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = key.get(open + 1..)?;
        let len = rest.iter().position(|&b| b == b'}')?;
        (len > 0).then(|| &rest[..len])
    });
    crc16(tagged.unwrap_or(key)) & (SLOTS as u16 - 1)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sharded pub/sub on a Redis server or a Redis Cluster. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Router {
    mode: Mode,
}

#[derive(Clone)]
enum Mode {
    Single(Driver),
    Cluster(Arc<Cluster>),
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.mode {
            Mode::Single(driver) => f.debug_tuple("Router::Single").field(driver).finish(),
            Mode::Cluster(c) => f
                .debug_struct("Router::Cluster")
                .field("nodes", &read(&c.topology).nodes.len())
                .finish_non_exhaustive(),
        }
    }
}

/// A subscription made through the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SubId(u64);

impl Router {
    /// Connects to the server at `url`; when it is a Redis Cluster node, to every master.
    pub(crate) async fn connect(url: &str, config: ConnectionConfig) -> Result<Self, Error> {
        let seed = Driver::connect(url, config.clone()).await?;
        let slots = match seed
            .query(&redis::cmd("CLUSTER").arg("SLOTS").clone(), "CLUSTER SLOTS")
            .await
        {
            Ok(reply) => parse_slots(&reply, &seed)?,
            // "ERR This instance has cluster support disabled" (or CLUSTER not allowed): a
            // plain server. Were it a cluster after all, SSUBSCRIBE answers MOVED and
            // `ready()` reports it.
            Err(Error::Redis(msg)) => {
                tracing::debug!(reason = %msg, "not a Redis Cluster: one server");
                return Ok(Self {
                    mode: Mode::Single(seed),
                });
            }
            Err(err) => return Err(err),
        };
        let cluster = Arc::new(Cluster {
            config,
            template: seed.clone(),
            topology: RwLock::new(Topology::empty()),
            subs: Mutex::new(Subs::default()),
            moved: Mutex::new(Vec::new()),
            refresh: Notify::new(),
        });
        let topology = cluster.build(slots, &[seed]).await?;
        *write(&cluster.topology) = topology;
        tokio::spawn(refresher(Arc::downgrade(&cluster)));
        Ok(Self {
            mode: Mode::Cluster(cluster),
        })
    }

    /// Whether this is a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.mode, Mode::Cluster(_))
    }

    /// Queues an `SPUBLISH` on the node owning `channel`. Never waits.
    pub(crate) fn publish(&self, channel: String, payload: Bytes) -> Result<(), Error> {
        match &self.mode {
            Mode::Single(driver) => driver.publish_with("SPUBLISH", channel, payload),
            Mode::Cluster(c) => match read(&c.topology).owner(channel.as_bytes()) {
                Some((_, driver)) => driver.publish_with("SPUBLISH", channel, payload),
                None => {
                    c.refresh.notify_one();
                    Err(Error::Redis(format!(
                        "no Redis Cluster node serves {channel}"
                    )))
                }
            },
        }
    }

    /// `SSUBSCRIBE channel` on the node owning it, delivering to `handler`; kept across
    /// reconnections and slot moves.
    pub(crate) fn subscribe(&self, channel: String, handler: Weak<dyn Handler>) -> SubId {
        match &self.mode {
            Mode::Single(driver) => {
                SubId(driver.subscribe(SubKind::Sharded, vec![channel], handler))
            }
            Mode::Cluster(c) => {
                let mut subs = lock(&c.subs);
                subs.next += 1;
                let id = subs.next;
                let mut record = SubRecord {
                    channel,
                    handler,
                    on: None,
                    lost: false,
                };
                c.place(&read(&c.topology), &mut record);
                subs.live.insert(id, record);
                SubId(id)
            }
        }
    }

    /// `SUNSUBSCRIBE` a subscription.
    pub(crate) fn unsubscribe(&self, id: SubId) {
        match &self.mode {
            Mode::Single(driver) => driver.unsubscribe(id.0),
            Mode::Cluster(c) => {
                let record = lock(&c.subs).live.remove(&id.0);
                if let Some(SubRecord {
                    on: Some((_, driver, seq)),
                    ..
                }) = record
                {
                    driver.unsubscribe(seq);
                }
            }
        }
    }

    /// `PUBSUB SHARDNUMSUB channel`, summed over every master of a cluster (wire notes 5.4).
    pub(crate) async fn shard_numsub(&self, channel: &str) -> Result<usize, Error> {
        match &self.mode {
            Mode::Single(driver) => driver.pubsub_count("SHARDNUMSUB", channel).await,
            Mode::Cluster(c) => {
                let drivers = read(&c.topology).drivers();
                let mut total = 0;
                for driver in drivers {
                    total += driver.pubsub_count("SHARDNUMSUB", channel).await?;
                }
                Ok(total)
            }
        }
    }

    /// Waits until every subscription is confirmed on every node, at most `timeout` each.
    pub(crate) async fn ready(&self, timeout: Duration) -> Result<(), Error> {
        for driver in self.drivers() {
            driver.ready(timeout).await?;
        }
        Ok(())
    }

    /// The counters, summed over the nodes.
    pub(crate) fn stats(&self) -> Stats {
        let mut total = Stats {
            subscribed: true,
            ..Stats::default()
        };
        for driver in self.drivers() {
            let s = driver.stats();
            total.published += s.published;
            total.publish_dropped += s.publish_dropped;
            total.publish_failed += s.publish_failed;
            total.received += s.received;
            total.incoming_dropped += s.incoming_dropped;
            total.reconnects += s.reconnects;
            total.subscribed &= s.subscribed;
        }
        if let Mode::Cluster(c) = &self.mode {
            let subs = lock(&c.subs);
            total.subscribed &= subs.live.values().all(|r| r.on.is_some() && !r.lost);
        }
        total
    }

    fn drivers(&self) -> Vec<Driver> {
        match &self.mode {
            Mode::Single(driver) => vec![driver.clone()],
            Mode::Cluster(c) => read(&c.topology).drivers(),
        }
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// Redis Cluster
// ---------------------------------------------------------------------------------------------

/// The masters and who owns which slot.
struct Topology {
    /// `host:port` and driver of each master.
    nodes: Vec<(String, Driver)>,
    /// Index into `nodes` per slot ([`NO_NODE`] when unserved).
    slots: Box<[u16]>,
}

impl Topology {
    fn empty() -> Self {
        Self {
            nodes: Vec::new(),
            slots: vec![NO_NODE; SLOTS].into_boxed_slice(),
        }
    }

    fn owner(&self, channel: &[u8]) -> Option<(&str, &Driver)> {
        let index = *self.slots.get(usize::from(key_slot(channel)))?;
        self.nodes
            .get(usize::from(index))
            .map(|(addr, driver)| (addr.as_str(), driver))
    }

    fn drivers(&self) -> Vec<Driver> {
        self.nodes.iter().map(|(_, d)| d.clone()).collect()
    }
}

#[derive(Default)]
struct Subs {
    next: u64,
    live: HashMap<u64, SubRecord>,
}

struct SubRecord {
    channel: String,
    handler: Weak<dyn Handler>,
    /// The node it is subscribed on: address, driver and the driver's seq.
    on: Option<(String, Driver, u64)>,
    /// Redis refused or dropped it there: subscribe again, even on the same node.
    lost: bool,
}

/// A publish a node redirected, to send again after the next refresh.
struct Moved {
    from: String,
    channel: String,
    payload: Bytes,
}

struct Cluster {
    config: ConnectionConfig,
    /// The first node connected to: credentials and settings for the others.
    template: Driver,
    topology: RwLock<Topology>,
    subs: Mutex<Subs>,
    moved: Mutex<Vec<Moved>>,
    refresh: Notify,
}

/// `(first slot, last slot, host, port)` of each master.
type SlotRanges = Vec<(u16, u16, String, u16)>;

/// Reads `CLUSTER SLOTS`: `[[start, end, [host, port, id, ...], replicas...], ...]`. An empty
/// or `?` host means "the node you asked".
fn parse_slots(reply: &redis::Value, asked: &Driver) -> Result<SlotRanges, Error> {
    use redis::Value as V;
    let bad = || Error::Protocol("unexpected CLUSTER SLOTS reply");
    let V::Array(ranges) = reply else {
        return Err(bad());
    };
    let asked_addr = asked.addr();
    let asked_host = asked_addr
        .rsplit_once(':')
        .map_or(asked_addr.as_str(), |(h, _)| h);
    let mut out = Vec::with_capacity(ranges.len());
    for range in ranges {
        let V::Array(items) = range else {
            return Err(bad());
        };
        let (Some(V::Int(start)), Some(V::Int(end)), Some(V::Array(master))) =
            (items.first(), items.get(1), items.get(2))
        else {
            return Err(bad());
        };
        let host = match master.first() {
            Some(V::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(V::SimpleString(s)) => s.clone(),
            _ => return Err(bad()),
        };
        let host = if host.is_empty() || host == "?" {
            asked_host.to_owned()
        } else {
            host
        };
        let Some(V::Int(port)) = master.get(1) else {
            return Err(bad());
        };
        let (Ok(start), Ok(end), Ok(port)) = (
            u16::try_from(*start),
            u16::try_from(*end),
            u16::try_from(*port),
        ) else {
            return Err(bad());
        };
        if start > end || usize::from(end) >= SLOTS {
            return Err(bad());
        }
        out.push((start, end, host, port));
    }
    Ok(out)
}

impl Cluster {
    /// A topology for `ranges`, reusing the drivers of `known` nodes and connecting the others.
    async fn build(
        self: &Arc<Self>,
        ranges: SlotRanges,
        known: &[Driver],
    ) -> Result<Topology, Error> {
        let mut topology = Topology::empty();
        for (start, end, host, port) in ranges {
            let addr = format!("{host}:{port}");
            let index = match topology.nodes.iter().position(|(a, _)| *a == addr) {
                Some(i) => i,
                None => {
                    let driver = match known.iter().find(|d| d.addr() == addr) {
                        Some(d) => d.clone(),
                        None => {
                            let info = self.template.node_info(&host, port);
                            Driver::connect_info(info, self.config.clone()).await?
                        }
                    };
                    let weak: Weak<Self> = Arc::downgrade(self);
                    let redirects: Weak<dyn Redirects> = weak;
                    driver.set_redirects(redirects);
                    topology.nodes.push((addr, driver));
                    topology.nodes.len() - 1
                }
            };
            let index = u16::try_from(index).map_err(|_| Error::Protocol("too many masters"))?;
            for slot in &mut topology.slots[usize::from(start)..=usize::from(end)] {
                *slot = index;
            }
        }
        Ok(topology)
    }

    /// Subscribes `record` on the owner of its channel (a stale subscription elsewhere is
    /// dropped first).
    fn place(&self, topology: &Topology, record: &mut SubRecord) {
        let owner = topology.owner(record.channel.as_bytes());
        let same = matches!((&record.on, owner), (Some((on, ..)), Some((addr, _))) if on == addr);
        if same && !record.lost {
            return;
        }
        if let Some((_, driver, seq)) = record.on.take() {
            driver.unsubscribe(seq);
        }
        record.lost = false;
        match owner {
            Some((addr, driver)) => {
                let seq = driver.subscribe(
                    SubKind::Sharded,
                    vec![record.channel.clone()],
                    record.handler.clone(),
                );
                record.on = Some((addr.to_owned(), driver.clone(), seq));
            }
            None => {
                tracing::warn!(channel = %record.channel, "no Redis Cluster node serves this channel yet");
                self.refresh.notify_one();
            }
        }
    }

    /// Reloads the slot map, moves subscriptions and sends redirected publishes again.
    async fn refresh(self: &Arc<Self>) -> Result<(), Error> {
        let known = read(&self.topology).drivers();
        let mut reply = Err(Error::Redis("no Redis Cluster node reachable".into()));
        for driver in known.iter().chain(std::iter::once(&self.template)) {
            match driver
                .query(&redis::cmd("CLUSTER").arg("SLOTS").clone(), "CLUSTER SLOTS")
                .await
            {
                Ok(r) => {
                    reply = parse_slots(&r, driver);
                    break;
                }
                Err(err) => reply = Err(err),
            }
        }
        let topology = self.build(reply?, &known).await?;
        *write(&self.topology) = topology;
        {
            let mut subs = lock(&self.subs);
            let topology = read(&self.topology);
            for record in subs.live.values_mut() {
                self.place(&topology, record);
            }
        }
        let moved = std::mem::take(&mut *lock(&self.moved));
        let topology = read(&self.topology);
        for m in moved {
            match topology.owner(m.channel.as_bytes()) {
                Some((addr, driver)) if addr != m.from => {
                    let _ = driver.publish_with("SPUBLISH", m.channel, m.payload);
                }
                _ => {
                    tracing::warn!(channel = %m.channel, "redis publish lost: the cluster still redirects it")
                }
            }
        }
        Ok(())
    }
}

impl Redirects for Cluster {
    fn publish_moved(&self, from: &str, channel: String, payload: Bytes) {
        {
            let mut moved = lock(&self.moved);
            if moved.len() >= self.config.max_publish_queue {
                tracing::warn!(%channel, "redis publish lost: too many redirected publishes");
                return;
            }
            moved.push(Moved {
                from: from.to_owned(),
                channel,
                payload,
            });
        }
        self.refresh.notify_one();
    }

    fn subscription_moved(&self, from: &str, channel: Bytes) {
        tracing::info!(
            ?channel,
            from,
            "redis cluster moved a subscription: refreshing the slot map"
        );
        for record in lock(&self.subs).live.values_mut() {
            if record.channel.as_bytes() == &channel[..]
                && record.on.as_ref().is_some_and(|(on, ..)| on == from)
            {
                record.lost = true;
            }
        }
        self.refresh.notify_one();
    }
}

/// Refreshes the slot map when asked, until the cluster handle is gone.
async fn refresher(cluster: Weak<Cluster>) {
    let mut failures: u32 = 0;
    loop {
        let Some(c) = cluster.upgrade() else { return };
        // Wake up every second, so the cluster is released soon after its last handle.
        let notified = tokio::select! {
            () = c.refresh.notified() => true,
            () = tokio::time::sleep(Duration::from_secs(1)) => false,
        };
        drop(c);
        if !notified {
            continue;
        }
        // Let a burst of redirections arrive first.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Some(c) = cluster.upgrade() else { return };
        match c.refresh().await {
            Ok(()) => failures = 0,
            Err(err) => {
                failures = failures.saturating_add(1);
                tracing::warn!(error = %err, "redis cluster slot map refresh failed: retrying");
                let delay = Duration::from_millis(200).saturating_mul(failures.min(10));
                tokio::time::sleep(delay.min(c.config.max_reconnect_delay)).await;
                c.refresh.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_as_redis_computes_them() {
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    }
}
