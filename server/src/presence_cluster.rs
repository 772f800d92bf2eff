//! Presence across the cluster: which users have a socket on some live node, kept in Redis.
//!
//! Each node mirrors its own per-user socket counts into a hash
//! `sockeye:{<REDIS_KEY>}:presence:node:<nodeId>`, and keeps a deadline (Redis time + TTL) in
//! the sorted set `sockeye:{<REDIS_KEY>}:presence:nodes`. A user is online when a node whose
//! deadline has not passed counts a socket of theirs. The braces are a hash tag: every key lives
//! in one slot, which the scripts need (they read other nodes' hashes).
//!
//! Who announces: every change runs in a Lua script (atomic in Redis) that compares the user's
//! status before and after against the other live nodes; the one call that flips it returns the
//! user, and that node broadcasts `user:presence:v1` to `presence:<userId>` through the adapter,
//! which reaches subscribers on every node. So each transition is announced exactly once.
//!
//! One task per node writes its hash: handlers only mark users dirty (never await Redis), and
//! the task pushes their current local counts in order, so a connect and a disconnect cannot be
//! applied out of order. It also heartbeats (every TTL/3), and reaps nodes whose deadline passed
//! (a crashed node): their users that are online nowhere else are announced offline, so a crash
//! costs at most about TTL + TTL/3 of stale presence. A node that was reaped (or missed its
//! deadline, e.g. cut off from Redis) pushes all its counts again and announces what changed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::error::Error;

/// The bound on one Redis command: a handler waiting on Redis must not hang an ack.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_millis(1000);

/// Users per script call in the incremental path (keeps each call short for Redis).
const BATCH: usize = 512;

/// Dead nodes reaped per heartbeat.
const REAP_PER_TICK: usize = 16;

/// Opens the command connection the presence and rate-limit scripts share (it reconnects by
/// itself; each command is bounded by [`COMMAND_TIMEOUT`]).
pub(crate) async fn connect(url: &str) -> Result<ConnectionManager, Error> {
    let client = redis::Client::open(url).map_err(|e| Error::config("REDIS_URL", e.to_string()))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(COMMAND_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(2));
    tokio::time::timeout(
        COMMAND_TIMEOUT * 3,
        client.get_connection_manager_with_config(config),
    )
    .await
    .map_err(|_| Error::config("REDIS_URL", "timed out connecting"))?
    .map_err(|e| Error::config("REDIS_URL", e.to_string()))
}

/// Redis time in ms, and whether another live node counts `user`. Shared by the scripts.
const LUA_COMMON: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function elsewhere(prefix, nodes, self, user)
  for _, n in ipairs(nodes) do
    if n ~= self then
      local c = tonumber(redis.call('HGET', prefix .. n, user) or '0') or 0
      if c > 0 then return true end
    end
  end
  return false
end
";

/// KEYS: nodes zset, own hash. ARGV: own id, hash prefix, ttl ms, full (0|1), user, count, ...
/// Returns {1, went online, went offline}, or {0, {}, {}} when this node is not live and the
/// call is not a full push (the caller must push everything).
const LUA_SYNC: &str = r"
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
local live = score and tonumber(score) >= now
local full = ARGV[4] == '1'
if not live and not full then return {0, {}, {}} end
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
local nodes = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
local users, counts = {}, {}
for i = 5, #ARGV - 1, 2 do
  if counts[ARGV[i]] == nil then table.insert(users, ARGV[i]) end
  counts[ARGV[i]] = tonumber(ARGV[i + 1]) or 0
end
if full then
  for _, u in ipairs(redis.call('HKEYS', KEYS[2])) do
    if counts[u] == nil then table.insert(users, u); counts[u] = 0 end
  end
end
local on, off = {}, {}
for _, u in ipairs(users) do
  local before = (tonumber(redis.call('HGET', KEYS[2], u) or '0') or 0) > 0
  local after = counts[u] > 0
  if before ~= after and not elsewhere(ARGV[2], nodes, ARGV[1], u) then
    if after then table.insert(on, u) else table.insert(off, u) end
  end
  if after then redis.call('HSET', KEYS[2], u, counts[u]) else redis.call('HDEL', KEYS[2], u) end
end
redis.call('PEXPIRE', KEYS[2], ttl * 4)
redis.call('PEXPIRE', KEYS[1], ttl * 4)
return {1, on, off}
";

/// KEYS: nodes zset. ARGV: hash prefix, own id, max nodes. Deletes nodes whose deadline passed;
/// returns their users online on no live node (to announce offline).
const LUA_REAP: &str = r"
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now, 'LIMIT', 0, tonumber(ARGV[3]))
if #dead == 0 then return {} end
local nodes = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
local off, seen = {}, {}
for _, d in ipairs(dead) do
  if d ~= ARGV[2] then
    local h = redis.call('HGETALL', ARGV[1] .. d)
    for i = 1, #h - 1, 2 do
      local u = h[i]
      if not seen[u] and (tonumber(h[i + 1]) or 0) > 0 and not elsewhere(ARGV[1], nodes, '', u) then
        seen[u] = true
        table.insert(off, u)
      end
    end
    redis.call('DEL', ARGV[1] .. d)
    redis.call('ZREM', KEYS[1], d)
  end
end
return off
";

/// KEYS: nodes zset. ARGV: hash prefix, user, ... Returns 1/0 per user: online on a live node.
const LUA_STATUS: &str = r"
local nodes = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
local out = {}
for i = 2, #ARGV do
  out[#out + 1] = elsewhere(ARGV[1], nodes, '', ARGV[i]) and 1 or 0
end
return out
";

/// KEYS: nodes zset, own hash. ARGV: own id. A clean leave (after the local counts were pushed
/// as zeros): the node stops being live at once.
const LUA_LEAVE: &str = r"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
";

fn script(body: &str) -> String {
    format!("{LUA_COMMON}{body}")
}

/// Tells a user's followers that they came online (`true`) or went offline.
pub type Announce = Arc<dyn Fn(&str, bool) + Send + Sync>;

/// Local socket counts per user: what this node knows for sure.
pub(crate) type Counts = Mutex<HashMap<String, usize>>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Keys {
    nodes: String,
    hash_prefix: String,
    own: String,
    node_id: String,
}

struct Shared {
    conn: ConnectionManager,
    keys: Keys,
    ttl: Duration,
    counts: Arc<Counts>,
    dirty: Mutex<HashSet<String>>,
    wake: Notify,
    announce: Announce,
}

/// This node's side of cluster-wide presence: the sync task and the status query.
pub struct ClusterPresence {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for ClusterPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterPresence")
            .field("node", &self.shared.keys.node_id)
            .finish_non_exhaustive()
    }
}

async fn eval<T: redis::FromRedisValue>(
    conn: &ConnectionManager,
    cmd: &redis::Cmd,
) -> Result<T, String> {
    let mut conn = conn.clone();
    match tokio::time::timeout(COMMAND_TIMEOUT, cmd.query_async::<T>(&mut conn)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err("timed out".to_owned()),
    }
}

impl ClusterPresence {
    /// Starts the sync task of node `node_id` (its first run registers the node).
    pub(crate) fn start(
        conn: ConnectionManager,
        redis_key: &str,
        node_id: &str,
        ttl: Duration,
        counts: Arc<Counts>,
        announce: Announce,
    ) -> Self {
        let base = format!("sockeye:{{{redis_key}}}:presence:");
        let keys = Keys {
            nodes: format!("{base}nodes"),
            hash_prefix: format!("{base}node:"),
            own: format!("{base}node:{node_id}"),
            node_id: node_id.to_owned(),
        };
        let shared = Arc::new(Shared {
            conn,
            keys,
            ttl: ttl.max(Duration::from_millis(300)),
            counts,
            dirty: Mutex::new(HashSet::new()),
            wake: Notify::new(),
            announce,
        });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(shared.clone(), stopped));
        Self {
            shared,
            stop,
            task: Mutex::new(Some(task)),
        }
    }

    /// `user`'s local count changed: the task pushes it soon.
    pub(crate) fn touch(&self, user: &str) {
        lock(&self.shared.dirty).insert(user.to_owned());
        self.shared.wake.notify_one();
    }

    /// Whether each of `users` is online on some live node.
    pub(crate) async fn statuses(&self, users: &[String]) -> Result<Vec<bool>, String> {
        let keys = &self.shared.keys;
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script(LUA_STATUS))
            .arg(1)
            .arg(&keys.nodes)
            .arg(&keys.hash_prefix);
        for user in users {
            cmd.arg(user);
        }
        let flags: Vec<i64> = eval(&self.shared.conn, &cmd).await?;
        if flags.len() != users.len() {
            return Err("presence status: short reply".into());
        }
        Ok(flags.into_iter().map(|f| f == 1).collect())
    }

    /// A clean leave: pushes the last counts (offline announcements included) and removes the
    /// node, waiting at most `grace`.
    pub async fn leave(&self, grace: Duration) {
        let _ = self.stop.send(true);
        let task = lock(&self.task).take();
        if let Some(task) = task
            && tokio::time::timeout(grace, task).await.is_err()
        {
            tracing::warn!("presence: leave timed out; the node will expire from Redis");
        }
    }
}

impl Drop for ClusterPresence {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

impl Shared {
    /// Pushes `pairs` (user, local count); `full` replaces the whole hash. `Ok(false)`: the node
    /// is not live, push everything.
    async fn sync(&self, pairs: &[(String, usize)], full: bool) -> Result<bool, String> {
        let keys = &self.keys;
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script(LUA_SYNC))
            .arg(2)
            .arg(&keys.nodes)
            .arg(&keys.own)
            .arg(&keys.node_id)
            .arg(&keys.hash_prefix)
            .arg(u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX))
            .arg(if full { "1" } else { "0" });
        for (user, count) in pairs {
            cmd.arg(user).arg(*count);
        }
        let (ok, online, offline): (i64, Vec<String>, Vec<String>) = eval(&self.conn, &cmd).await?;
        for user in &online {
            (self.announce)(user, true);
        }
        for user in &offline {
            (self.announce)(user, false);
        }
        Ok(ok == 1)
    }

    async fn reap(&self) -> Result<(), String> {
        let keys = &self.keys;
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script(LUA_REAP))
            .arg(1)
            .arg(&keys.nodes)
            .arg(&keys.hash_prefix)
            .arg(&keys.node_id)
            .arg(REAP_PER_TICK);
        let offline: Vec<String> = eval(&self.conn, &cmd).await?;
        if !offline.is_empty() {
            tracing::info!(users = offline.len(), "presence: reaped a dead node");
        }
        for user in &offline {
            (self.announce)(user, false);
        }
        Ok(())
    }

    fn snapshot(&self) -> Vec<(String, usize)> {
        lock(&self.counts)
            .iter()
            .map(|(u, c)| (u.clone(), *c))
            .collect()
    }

    fn take_dirty(&self) -> Vec<(String, usize)> {
        let users: Vec<String> = lock(&self.dirty).drain().collect();
        let counts = lock(&self.counts);
        users
            .into_iter()
            .map(|u| {
                let count = counts.get(&u).copied().unwrap_or(0);
                (u, count)
            })
            .collect()
    }

    fn redirty(&self, pairs: Vec<(String, usize)>) {
        lock(&self.dirty).extend(pairs.into_iter().map(|(u, _)| u));
    }

    /// One round: reap (on heartbeats), then push what changed. `Err` leaves the work dirty.
    async fn round(&self, full: &mut bool, heartbeat: bool) -> Result<(), String> {
        if heartbeat {
            self.reap().await?;
        }
        if *full {
            // Pending dirty users are covered by the snapshot.
            let _ = self.take_dirty();
            let live = self.sync(&self.snapshot(), true).await?;
            *full = !live;
            return Ok(());
        }
        let pairs = self.take_dirty();
        if pairs.is_empty() {
            if heartbeat && !self.sync(&[], false).await? {
                *full = true;
            }
            return Ok(());
        }
        for chunk in pairs.chunks(BATCH) {
            match self.sync(chunk, false).await {
                Ok(true) => {}
                Ok(false) => {
                    *full = true;
                    return Ok(());
                }
                Err(err) => {
                    self.redirty(pairs);
                    return Err(err);
                }
            }
        }
        Ok(())
    }
}

async fn run(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let beat = shared.ttl / 3;
    let mut next_beat = tokio::time::Instant::now();
    // The first round registers the node.
    let mut full = true;
    let mut failing = false;
    loop {
        let heartbeat = tokio::time::Instant::now() >= next_beat;
        if heartbeat {
            next_beat = tokio::time::Instant::now() + beat;
        }
        match shared.round(&mut full, heartbeat).await {
            Ok(()) if full => continue,
            Ok(()) => {
                if failing {
                    tracing::info!("presence: Redis reachable again");
                    failing = false;
                }
            }
            Err(err) => {
                if !failing {
                    tracing::warn!(%err, "presence: Redis sync failed; retrying");
                    failing = true;
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stopped.changed() => {}
                }
            }
        }
        if *stopped.borrow() {
            break;
        }
        tokio::select! {
            () = shared.wake.notified() => {}
            () = tokio::time::sleep_until(next_beat) => {}
            _ = stopped.changed() => {}
        }
        if *stopped.borrow() {
            break;
        }
    }
    // Leaving: every local user counts zero now (sockets were closed), announce and go.
    let zeros: Vec<(String, usize)> = shared.snapshot().into_iter().map(|(u, _)| (u, 0)).collect();
    if let Err(err) = shared.sync(&zeros, true).await {
        tracing::warn!(%err, "presence: final push failed; the node will expire from Redis");
        return;
    }
    let keys = &shared.keys;
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(LUA_LEAVE)
        .arg(2)
        .arg(&keys.nodes)
        .arg(&keys.own)
        .arg(&keys.node_id);
    if let Err(err) = eval::<i64>(&shared.conn, &cmd).await {
        tracing::warn!(%err, "presence: leave failed");
    }
}
