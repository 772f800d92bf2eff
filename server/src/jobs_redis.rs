//! The cluster job queue: a Redis stream with a consumer group, behind the same two traits as
//! the in-process queue ([`JobQueue`] for the nodes, [`JobSource`] for the workers).
//!
//! Keys, all under `<REDIS_KEY>:jobs` (so Node or other workers can speak it too):
//!
//! | key | type | what |
//! |---|---|---|
//! | `<p>:jobs` | stream, group `workers` | one entry per job, field `job` = the [`Job`] as JSON |
//! | `<p>:jobs:live` | hash | job id → `{"owner","createdMs"}` until a worker finishes it |
//! | `<p>:jobs:cancel:<id>` | string, 1 h TTL | set when the owner cancels |
//! | `<p>:jobs:workers` | sorted set | worker name → last heartbeat (ms) |
//! | `<p>:jobs:events` | pub/sub channel | `{"op":"start"/"end"/"cancel","id",...}` |
//!
//! At-least-once: a worker acknowledges (`XACK`) a job only when it is over; a job whose worker
//! died stays pending and another worker claims it (`XAUTOCLAIM`) once it has been idle for
//! `JOB_CLAIM_IDLE_MS`. A live worker keeps its jobs from being claimed by touching them
//! (`XCLAIM ... JUSTID`) well within that time.
//!
//! The traits are synchronous (socket handlers answer at once), so a node keeps a mirror of
//! the live jobs (owner checks for `task:cancel`) and of the counts, refreshed from Redis and
//! from the events channel; its writes go through a bounded outbox to one writer task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::error::Error;
use crate::jobs::{BoxFuture, CancelSignal, Job, JobError, JobQueue, JobSource, Outcome, Taken};

/// The consumer group every worker joins.
pub const GROUP: &str = "workers";
/// How long a cancel mark and a live entry are kept at most.
const JOB_TTL: Duration = Duration::from_secs(3600);
/// A worker counts as alive this long after its last heartbeat.
const WORKER_ALIVE: Duration = Duration::from_secs(5);
/// The stream is trimmed (approximately) to this many entries, a bound if nothing acks.
const STREAM_MAXLEN: usize = 100_000;
/// How often a node refreshes its counts and its mirror of the live jobs.
const REFRESH: Duration = Duration::from_millis(500);

/// The Redis keys of the job queue under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// The stream.
    pub stream: String,
    /// The hash of live jobs.
    pub live: String,
    /// The sorted set of worker heartbeats.
    pub workers: String,
    /// The pub/sub channel of job events.
    pub events: String,
}

impl Keys {
    /// The keys under `prefix` (`REDIS_KEY`).
    pub fn new(prefix: &str) -> Self {
        let base = format!("{prefix}:jobs");
        Self {
            live: format!("{base}:live"),
            workers: format!("{base}:workers"),
            events: format!("{base}:events"),
            stream: base,
        }
    }

    /// The cancel mark of a job.
    pub fn cancel(&self, job_id: &str) -> String {
        format!("{}:cancel:{job_id}", self.stream)
    }
}

/// A message on the events channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
enum Note {
    Start { id: String, owner: String },
    End { id: String },
    Cancel { id: String },
}

/// A live job as the hash holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LiveJob {
    owner: String,
    created_ms: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn redis_error(err: redis::RedisError) -> Error {
    Error::Redis(socketio_redis::Error::from(err))
}

/// Opens a client and a reconnecting connection whose commands time out after `timeout`.
async fn connect(
    url: &str,
    timeout: Duration,
) -> Result<(redis::Client, ConnectionManager), Error> {
    let client = redis::Client::open(url)
        .map_err(|e| Error::config("REDIS_URL", format!("invalid Redis URL: {e}")))?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(timeout))
        .set_max_delay(Duration::from_secs(1))
        .set_number_of_retries(2);
    let conn = client
        .get_connection_manager_with_config(config)
        .await
        .map_err(|e| Error::config("REDIS_URL", format!("cannot connect to Redis: {e}")))?;
    Ok((client, conn))
}

/// Creates the stream and the group if they are missing (`BUSYGROUP` means they exist).
async fn ensure_group(conn: &mut ConnectionManager, keys: &Keys) -> Result<(), redis::RedisError> {
    // From 0: entries added before the group existed (after a Redis restart) still count.
    let created: Result<(), _> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&keys.stream)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Err(err) if err.code() != Some("BUSYGROUP") => Err(err),
        _ => Ok(()),
    }
}

/// Runs a subscriber on `channel` for as long as the task lives, reconnecting after a loss,
/// and hands each payload to `on_note`.
fn subscribe(
    client: redis::Client,
    channel: String,
    on_note: impl Fn(Note) + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match client.get_async_pubsub().await {
                Ok(mut pubsub) => {
                    if let Err(err) = pubsub.subscribe(&channel).await {
                        tracing::debug!(%err, "job events: subscribe failed");
                    } else {
                        let mut messages = pubsub.on_message();
                        while let Some(msg) = messages.next().await {
                            // Anyone can publish here: a bad message is skipped.
                            match serde_json::from_slice::<Note>(msg.get_payload_bytes()) {
                                Ok(note) => on_note(note),
                                Err(err) => tracing::debug!(%err, "job events: bad message"),
                            }
                        }
                    }
                }
                Err(err) => tracing::debug!(%err, "job events: cannot connect"),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
}

fn now_ms() -> u64 {
    crate::events::now_ms()
}

// ---------------------------------------------------------------------------------------------
// The node side
// ---------------------------------------------------------------------------------------------

enum Command {
    Enqueue(Job),
    Cancel(String),
}

struct Mirrored {
    owner: String,
    /// When this node learned of it: an entry only this node knows (still in its outbox) is
    /// kept through a refresh that does not see it yet.
    seen: Instant,
}

struct NodeShared {
    keys: Keys,
    live: Mutex<HashMap<String, Mirrored>>,
    /// Jobs that ended lately: a refresh that read the hash before the end must not bring
    /// them back.
    ended: Mutex<HashMap<String, Instant>>,
    queued: AtomicUsize,
    running: AtomicUsize,
    workers: AtomicUsize,
    up: AtomicBool,
}

impl NodeShared {
    fn live(&self) -> MutexGuard<'_, HashMap<String, Mirrored>> {
        lock(&self.live)
    }

    fn on_note(&self, note: Note) {
        match note {
            Note::Start { id, owner } => {
                if !lock(&self.ended).contains_key(&id) {
                    self.live().insert(
                        id,
                        Mirrored {
                            owner,
                            seen: Instant::now(),
                        },
                    );
                }
            }
            Note::End { id } => {
                self.live().remove(&id);
                lock(&self.ended).insert(id, Instant::now());
            }
            Note::Cancel { .. } => {}
        }
    }

    /// Counts and the live mirror from Redis; drops live entries past their TTL.
    async fn refresh(&self, conn: &mut ConnectionManager) -> Result<(), redis::RedisError> {
        let now = now_ms();
        let alive_since = now.saturating_sub(WORKER_ALIVE.as_millis() as u64);
        let (live, workers): (HashMap<String, String>, usize) = redis::pipe()
            .hgetall(&self.keys.live)
            .cmd("ZCOUNT")
            .arg(&self.keys.workers)
            .arg(alive_since)
            .arg("+inf")
            .query_async(conn)
            .await?;
        // XPENDING fails when the stream or group is gone (a Redis restart): recreate them.
        let pending: Result<redis::Value, _> = redis::cmd("XPENDING")
            .arg(&self.keys.stream)
            .arg(GROUP)
            .query_async(conn)
            .await;
        let running = match pending {
            Ok(redis::Value::Array(items)) => match items.first() {
                Some(redis::Value::Int(n)) => usize::try_from(*n).unwrap_or(0),
                _ => 0,
            },
            Ok(_) => 0,
            Err(err) if err.code() == Some("NOGROUP") => {
                ensure_group(conn, &self.keys).await?;
                0
            }
            Err(err) => return Err(err),
        };
        let ttl_ms = JOB_TTL.as_millis() as u64;
        let mut expired = Vec::new();
        let mut fresh = HashMap::with_capacity(live.len());
        for (id, value) in live {
            match serde_json::from_str::<LiveJob>(&value) {
                Ok(job) if now.saturating_sub(job.created_ms) < ttl_ms => {
                    fresh.insert(id, job.owner);
                }
                _ => expired.push(id),
            }
        }
        if !expired.is_empty() {
            let _: () = redis::cmd("HDEL")
                .arg(&self.keys.live)
                .arg(&expired)
                .query_async(conn)
                .await?;
        }
        let total = fresh.len();
        let recent = Duration::from_secs(10);
        let ended = {
            let mut ended = lock(&self.ended);
            ended.retain(|_, at| at.elapsed() < recent * 3);
            ended
                .keys()
                .cloned()
                .collect::<std::collections::HashSet<_>>()
        };
        {
            let mut mirror = self.live();
            mirror.retain(|id, m| fresh.contains_key(id) || m.seen.elapsed() < recent);
            for (id, owner) in fresh {
                if ended.contains(&id) {
                    continue;
                }
                mirror.entry(id).or_insert_with(|| Mirrored {
                    owner,
                    seen: Instant::now(),
                });
            }
        }
        self.running.store(running, Ordering::Release);
        self.queued
            .store(total.saturating_sub(running), Ordering::Release);
        self.workers.store(workers, Ordering::Release);
        self.up.store(true, Ordering::Release);
        Ok(())
    }
}

/// The node side of the Redis job queue: enqueues to the stream, cancels by the events
/// channel, and answers counts and owner checks from its mirror.
pub struct RedisQueue {
    shared: Arc<NodeShared>,
    outbox: mpsc::Sender<Command>,
    capacity: usize,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("stream", &self.shared.keys.stream)
            .field("queued", &self.queued())
            .field("running", &self.running())
            .finish_non_exhaustive()
    }
}

impl Drop for RedisQueue {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl RedisQueue {
    /// Connects to Redis at `url` with key prefix `prefix`; at most `capacity` jobs may wait
    /// in the cluster (and in this node's outbox) before starts are refused.
    pub async fn connect(url: &str, prefix: &str, capacity: usize) -> Result<Arc<Self>, Error> {
        let (client, mut conn) = connect(url, Duration::from_secs(2)).await?;
        let keys = Keys::new(prefix);
        ensure_group(&mut conn, &keys).await.map_err(redis_error)?;
        let shared = Arc::new(NodeShared {
            keys,
            live: Mutex::new(HashMap::new()),
            ended: Mutex::new(HashMap::new()),
            queued: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            workers: AtomicUsize::new(0),
            up: AtomicBool::new(false),
        });
        shared.refresh(&mut conn).await.map_err(redis_error)?;

        let capacity = capacity.max(1);
        let (outbox, rx) = mpsc::channel(capacity);
        let on_note = shared.clone();
        let tasks = vec![
            tokio::spawn(write_loop(shared.clone(), conn.clone(), rx)),
            tokio::spawn(refresh_loop(shared.clone(), conn)),
            subscribe(client, shared.keys.events.clone(), move |note| {
                on_note.on_note(note);
            }),
        ];
        Ok(Arc::new(Self {
            shared,
            outbox,
            capacity,
            tasks,
        }))
    }
}

async fn refresh_loop(shared: Arc<NodeShared>, mut conn: ConnectionManager) {
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(err) = shared.refresh(&mut conn).await {
            if shared.up.swap(false, Ordering::AcqRel) {
                tracing::warn!(%err, "job queue: Redis unreachable; starts are refused");
            }
        }
    }
}

/// Carries enqueues and cancels to Redis in order, retrying while Redis is away (the outbox
/// is bounded, so starts are refused once it is full).
async fn write_loop(
    shared: Arc<NodeShared>,
    mut conn: ConnectionManager,
    mut rx: mpsc::Receiver<Command>,
) {
    while let Some(command) = rx.recv().await {
        let mut delay = Duration::from_millis(50);
        loop {
            let written = match &command {
                Command::Enqueue(job) => write_job(&shared.keys, &mut conn, job).await,
                Command::Cancel(id) => write_cancel(&shared.keys, &mut conn, id).await,
            };
            match written {
                Ok(()) => break,
                Err(err) => {
                    tracing::warn!(%err, "job queue: write failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

async fn write_job(
    keys: &Keys,
    conn: &mut ConnectionManager,
    job: &Job,
) -> Result<(), redis::RedisError> {
    let live = LiveJob {
        owner: job.user_id.clone(),
        created_ms: job.created_ms,
    };
    let (Ok(live), Ok(body), Ok(note)) = (
        serde_json::to_string(&live),
        serde_json::to_string(job),
        serde_json::to_string(&Note::Start {
            id: job.id.clone(),
            owner: job.user_id.clone(),
        }),
    ) else {
        return Ok(()); // plain strings: cannot fail
    };
    // The live entry first, in one transaction: a worker that takes the entry finds it.
    let _: () = redis::pipe()
        .atomic()
        .hset(&keys.live, &job.id, live)
        .ignore()
        .cmd("XADD")
        .arg(&keys.stream)
        .arg("MAXLEN")
        .arg("~")
        .arg(STREAM_MAXLEN)
        .arg("*")
        .arg("job")
        .arg(body)
        .ignore()
        .cmd("PUBLISH")
        .arg(&keys.events)
        .arg(note)
        .ignore()
        .query_async(conn)
        .await?;
    Ok(())
}

async fn write_cancel(
    keys: &Keys,
    conn: &mut ConnectionManager,
    id: &str,
) -> Result<(), redis::RedisError> {
    let Ok(note) = serde_json::to_string(&Note::Cancel { id: id.to_owned() }) else {
        return Ok(());
    };
    // The mark for a worker that takes it later or missed the message; the message for the
    // one running it now.
    let _: () = redis::pipe()
        .cmd("SET")
        .arg(keys.cancel(id))
        .arg(now_ms())
        .arg("EX")
        .arg(JOB_TTL.as_secs())
        .ignore()
        .cmd("PUBLISH")
        .arg(&keys.events)
        .arg(note)
        .ignore()
        .query_async(conn)
        .await?;
    Ok(())
}

impl JobQueue for RedisQueue {
    fn enqueue(&self, job: Job) -> Result<(), JobError> {
        if !self.shared.up.load(Ordering::Acquire) {
            return Err(JobError::Unreachable);
        }
        if self.workers() == 0 {
            return Err(JobError::NoWorker);
        }
        let waiting = self.queued() + (self.outbox.max_capacity() - self.outbox.capacity());
        if waiting >= self.capacity {
            return Err(JobError::QueueFull);
        }
        let id = job.id.clone();
        self.shared.live().insert(
            id.clone(),
            Mirrored {
                owner: job.user_id.clone(),
                seen: Instant::now(),
            },
        );
        if self.outbox.try_send(Command::Enqueue(job)).is_err() {
            self.shared.live().remove(&id);
            return Err(JobError::QueueFull);
        }
        Ok(())
    }

    fn cancel(&self, job_id: &str, user_id: &str) -> Result<(), JobError> {
        match self.shared.live().get(job_id) {
            None => return Err(JobError::NotFound),
            Some(job) if job.owner != user_id => return Err(JobError::NotOwner),
            Some(_) => {}
        }
        self.outbox
            .try_send(Command::Cancel(job_id.to_owned()))
            .map_err(|_| JobError::QueueFull)
    }

    fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Acquire)
    }

    fn running(&self) -> usize {
        self.shared.running.load(Ordering::Acquire)
    }

    /// Workers that sent a heartbeat lately, as of the last refresh.
    fn workers(&self) -> usize {
        self.shared.workers.load(Ordering::Acquire)
    }
}

// ---------------------------------------------------------------------------------------------
// The worker side
// ---------------------------------------------------------------------------------------------

struct Held {
    entry: String,
    cancel: watch::Sender<bool>,
}

struct WorkerShared {
    keys: Keys,
    consumer: String,
    conn: ConnectionManager,
    held: Mutex<HashMap<String, Held>>,
    finishing: AtomicUsize,
}

impl WorkerShared {
    fn held(&self) -> MutexGuard<'_, HashMap<String, Held>> {
        lock(&self.held)
    }

    fn cancel(&self, job_id: &str) {
        if let Some(held) = self.held().get(job_id) {
            held.cancel.send_replace(true);
        }
    }

    /// Heartbeat, keeps held jobs from being claimed, and picks up cancel marks it missed.
    async fn beat(&self) -> Result<(), redis::RedisError> {
        let mut conn = self.conn.clone();
        let (jobs, entries): (Vec<String>, Vec<String>) = self
            .held()
            .iter()
            .map(|(id, h)| (id.clone(), h.entry.clone()))
            .unzip();
        let mut pipe = redis::pipe();
        pipe.cmd("ZADD")
            .arg(&self.keys.workers)
            .arg(now_ms())
            .arg(&self.consumer)
            .ignore();
        if !entries.is_empty() {
            pipe.cmd("XCLAIM")
                .arg(&self.keys.stream)
                .arg(GROUP)
                .arg(&self.consumer)
                .arg(0)
                .arg(&entries)
                .arg("JUSTID")
                .ignore();
            let marks: Vec<String> = jobs.iter().map(|id| self.keys.cancel(id)).collect();
            pipe.cmd("MGET").arg(marks);
        }
        let marks: Vec<Vec<Option<String>>> = pipe.query_async(&mut conn).await?;
        if let Some(marks) = marks.first() {
            for (id, mark) in jobs.iter().zip(marks) {
                if mark.is_some() {
                    self.cancel(id);
                }
            }
        }
        Ok(())
    }
}

/// The worker side of the Redis job queue: a consumer of the group.
pub struct RedisSource {
    shared: Arc<WorkerShared>,
    /// The blocking reads get their own connection: they would hold up the others.
    reader: tokio::sync::Mutex<ConnectionManager>,
    claim_idle: Duration,
    closed: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RedisSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSource")
            .field("consumer", &self.shared.consumer)
            .field("stream", &self.shared.keys.stream)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisSource {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// One stream entry read or claimed.
enum Read {
    Job(String, Job),
    /// An entry that is not a job: acknowledged and dropped.
    Bad(String),
}

/// The entries of an `XREADGROUP` or `XAUTOCLAIM` reply: `[id, [field, value, ...]]` items.
fn entries(items: &[redis::Value]) -> Vec<Read> {
    let mut out = Vec::new();
    for item in items {
        let redis::Value::Array(pair) = item else {
            continue;
        };
        let Some(Ok(id)) = pair.first().map(redis::from_redis_value_ref::<String>) else {
            continue;
        };
        let fields: Vec<String> = match pair.get(1) {
            Some(v) => redis::from_redis_value_ref(v).unwrap_or_default(),
            None => Vec::new(),
        };
        let job = fields
            .chunks_exact(2)
            .find(|kv| kv[0] == "job")
            .and_then(|kv| serde_json::from_str::<Job>(&kv[1]).ok())
            .filter(|job| !job.id.is_empty() && job.id.len() <= 128);
        out.push(match job {
            Some(job) => Read::Job(id, job),
            None => Read::Bad(id),
        });
    }
    out
}

impl RedisSource {
    /// Joins the group as consumer `name` (unique per worker); a job pending for longer than
    /// `claim_idle` on a worker that stopped touching it is taken over.
    pub async fn connect(
        url: &str,
        prefix: &str,
        name: &str,
        claim_idle: Duration,
    ) -> Result<Arc<Self>, Error> {
        let block = Self::block(claim_idle);
        let (client, mut conn) = connect(url, Duration::from_secs(2)).await?;
        let (_, reader) = connect(url, block + Duration::from_secs(2)).await?;
        let keys = Keys::new(prefix);
        ensure_group(&mut conn, &keys).await.map_err(redis_error)?;
        let shared = Arc::new(WorkerShared {
            keys,
            consumer: name.to_owned(),
            conn,
            held: Mutex::new(HashMap::new()),
            finishing: AtomicUsize::new(0),
        });
        shared.beat().await.map_err(redis_error)?;
        let beat = shared.clone();
        let period = (claim_idle / 3).clamp(Duration::from_millis(50), Duration::from_secs(1));
        let on_note = shared.clone();
        let tasks = vec![
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                loop {
                    tick.tick().await;
                    if let Err(err) = beat.beat().await {
                        tracing::warn!(%err, "worker heartbeat failed");
                    }
                }
            }),
            subscribe(client, shared.keys.events.clone(), move |note| {
                if let Note::Cancel { id } = note {
                    on_note.cancel(&id);
                }
            }),
        ];
        let (closed, _) = watch::channel(false);
        Ok(Arc::new(Self {
            shared,
            reader: tokio::sync::Mutex::new(reader),
            claim_idle,
            closed,
            tasks,
        }))
    }

    fn block(claim_idle: Duration) -> Duration {
        claim_idle.clamp(Duration::from_millis(100), Duration::from_secs(1))
    }

    /// The consumer name.
    pub fn name(&self) -> &str {
        &self.shared.consumer
    }

    /// Stops handing out jobs: [`JobSource::next`] returns `None` (within a second).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Waits (at most `timeout`) for the acknowledgements of finished jobs to reach Redis.
    pub async fn drain(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.shared.finishing.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the heartbeat and leaves the workers set (the last thing a worker does). Jobs
    /// still held stay pending: another worker claims them after the idle time.
    pub async fn leave(&self) {
        for task in &self.tasks {
            task.abort();
        }
        let mut conn = self.shared.conn.clone();
        let _: Result<(), _> = redis::cmd("ZREM")
            .arg(&self.shared.keys.workers)
            .arg(&self.shared.consumer)
            .query_async(&mut conn)
            .await;
    }

    /// Jobs taken and not finished.
    pub fn held(&self) -> usize {
        self.shared.held().len()
    }

    /// New entries, or one claimed from a dead worker (`true`).
    async fn read(&self) -> Result<(Vec<Read>, bool), redis::RedisError> {
        let keys = &self.shared.keys;
        let mut conn = self.reader.lock().await;
        // A job of a worker that died first.
        let claimed: redis::Value = redis::cmd("XAUTOCLAIM")
            .arg(&keys.stream)
            .arg(GROUP)
            .arg(&self.shared.consumer)
            .arg(self.claim_idle.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut *conn)
            .await?;
        if let redis::Value::Array(parts) = &claimed
            && let Some(redis::Value::Array(items)) = parts.get(1)
            && !items.is_empty()
        {
            let found = entries(items);
            if !found.is_empty() {
                tracing::info!(consumer = %self.shared.consumer, "claimed a job left by another worker");
                return Ok((found, true));
            }
        }
        let read: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(&self.shared.consumer)
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(Self::block(self.claim_idle).as_millis() as u64)
            .arg("STREAMS")
            .arg(&keys.stream)
            .arg(">")
            .query_async(&mut *conn)
            .await?;
        // [[stream, [entries]]] (RESP2) or {stream: [entries]} (RESP3); nil on timeout.
        let streams: Vec<&redis::Value> = match &read {
            redis::Value::Array(streams) => streams
                .iter()
                .filter_map(|s| match s {
                    redis::Value::Array(pair) => pair.get(1),
                    _ => None,
                })
                .collect(),
            redis::Value::Map(map) => map.iter().map(|(_, v)| v).collect(),
            _ => Vec::new(),
        };
        let found = streams
            .into_iter()
            .flat_map(|v| match v {
                redis::Value::Array(items) => entries(items),
                _ => Vec::new(),
            })
            .collect();
        Ok((found, false))
    }

    /// Acknowledges and deletes stream entries, and forgets the jobs.
    async fn settle(
        shared: &WorkerShared,
        entry: &str,
        job_id: Option<&str>,
    ) -> Result<(), redis::RedisError> {
        let mut conn = shared.conn.clone();
        let mut pipe = redis::pipe();
        pipe.cmd("XACK")
            .arg(&shared.keys.stream)
            .arg(GROUP)
            .arg(entry)
            .ignore()
            .cmd("XDEL")
            .arg(&shared.keys.stream)
            .arg(entry)
            .ignore();
        if let Some(id) = job_id {
            let note = serde_json::to_string(&Note::End { id: id.to_owned() }).unwrap_or_default();
            pipe.hdel(&shared.keys.live, id)
                .ignore()
                .del(shared.keys.cancel(id))
                .ignore()
                .cmd("PUBLISH")
                .arg(&shared.keys.events)
                .arg(note)
                .ignore();
        }
        pipe.query_async(&mut conn).await
    }

    /// How many times the entry was delivered (1 when Redis does not say).
    async fn deliveries(&self, entry: &str) -> u32 {
        let mut conn = self.shared.conn.clone();
        // [[id, consumer, idle, deliveries]]
        let info: Result<redis::Value, _> = redis::cmd("XPENDING")
            .arg(&self.shared.keys.stream)
            .arg(GROUP)
            .arg(entry)
            .arg(entry)
            .arg(1)
            .query_async(&mut conn)
            .await;
        if let Ok(redis::Value::Array(rows)) = info
            && let Some(redis::Value::Array(row)) = rows.first()
            && let Some(redis::Value::Int(n)) = row.get(3)
        {
            return u32::try_from(*n).unwrap_or(u32::MAX).max(1);
        }
        1
    }

    async fn take(&self, entry: String, job: Job, claimed: bool) -> Taken {
        let attempt = if claimed {
            self.deliveries(&entry).await
        } else {
            1
        };
        let mut conn = self.shared.conn.clone();
        // Cancelled while it waited: the worker library reports it without running it.
        let cancelled: bool = redis::cmd("EXISTS")
            .arg(self.shared.keys.cancel(&job.id))
            .query_async(&mut conn)
            .await
            .unwrap_or(false);
        let (tx, rx) = watch::channel(cancelled);
        self.shared
            .held()
            .insert(job.id.clone(), Held { entry, cancel: tx });
        Taken {
            job,
            cancel: CancelSignal::from_receiver(rx),
            attempt,
        }
    }
}

impl JobSource for RedisSource {
    fn next(&self) -> BoxFuture<'_, Option<Taken>> {
        Box::pin(async move {
            let mut closed = self.closed.subscribe();
            loop {
                if *closed.borrow_and_update() {
                    return None;
                }
                let read = tokio::select! {
                    read = self.read() => read,
                    _ = closed.changed() => return None,
                };
                match read {
                    Ok((found, claimed)) => {
                        for read in found {
                            match read {
                                Read::Job(entry, job) => {
                                    // A redelivered job this worker already holds: keep one.
                                    if self.shared.held().contains_key(&job.id) {
                                        continue;
                                    }
                                    return Some(self.take(entry, job, claimed).await);
                                }
                                Read::Bad(entry) => {
                                    tracing::warn!(%entry, "job stream: not a job; dropped");
                                    let _ = Self::settle(&self.shared, &entry, None).await;
                                }
                            }
                        }
                    }
                    Err(err) if err.code() == Some("NOGROUP") => {
                        let mut conn = self.shared.conn.clone();
                        if let Err(err) = ensure_group(&mut conn, &self.shared.keys).await {
                            tracing::warn!(%err, "job stream: cannot create the group");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(%err, "job stream: read failed");
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_millis(500)) => {}
                            _ = closed.changed() => return None,
                        }
                    }
                }
            }
        })
    }

    fn finish(&self, job_id: &str, outcome: &Outcome) {
        let Some(held) = self.shared.held().remove(job_id) else {
            return;
        };
        tracing::debug!(job = %job_id, ?outcome, "acknowledging");
        let shared = self.shared.clone();
        let job_id = job_id.to_owned();
        shared.finishing.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            // If this fails the job stays pending and runs again elsewhere: at-least-once.
            if let Err(err) = Self::settle(&shared, &held.entry, Some(&job_id)).await {
                tracing::warn!(job = %job_id, %err, "could not acknowledge a finished job");
            }
            shared.finishing.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_notes() {
        let keys = Keys::new("socket.io");
        assert_eq!(keys.stream, "socket.io:jobs");
        assert_eq!(keys.cancel("j1"), "socket.io:jobs:cancel:j1");
        let note: Note = serde_json::from_str(r#"{"op":"cancel","id":"j1"}"#).unwrap();
        assert_eq!(note, Note::Cancel { id: "j1".into() });
        assert!(serde_json::from_str::<Note>(r#"{"op":"explode"}"#).is_err());
    }

    #[test]
    fn entries_skip_what_is_not_a_job() {
        use redis::Value as V;
        let s = |t: &str| V::BulkString(t.as_bytes().to_vec());
        let job = Job::new("a", crate::jobs::JobKind::Search { query: "q".into() });
        let body = serde_json::to_string(&job).unwrap();
        let items = vec![
            V::Array(vec![s("1-0"), V::Array(vec![s("job"), s(&body)])]),
            V::Array(vec![s("2-0"), V::Array(vec![s("job"), s("{not json")])]),
            V::Array(vec![s("3-0"), V::Array(vec![s("other"), s("x")])]),
            V::Nil,
        ];
        let read = entries(&items);
        assert_eq!(read.len(), 3);
        assert!(matches!(&read[0], Read::Job(id, j) if id == "1-0" && *j == job));
        assert!(matches!(&read[1], Read::Bad(id) if id == "2-0"));
        assert!(matches!(&read[2], Read::Bad(id) if id == "3-0"));
    }
}
