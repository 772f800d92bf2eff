//! The worker library: take jobs, publish their progress to the user's tabs, observe
//! cancellation.
//!
//! ```no_run
//! # async fn run(source: std::sync::Arc<dyn sockeye::jobs::JobSource>,
//! #              publisher: std::sync::Arc<dyn sockeye::worker::Publisher>) {
//! use sockeye::jobs::{JobKind, Outcome};
//! use sockeye::worker::Worker;
//!
//! Worker::new(source, publisher)
//!     .concurrency(4)
//!     .run(|ctx| async move {
//!         let JobKind::Model { prompt } = &ctx.job().kind else {
//!             return Outcome::Failed("not a model job".into());
//!         };
//!         for (i, word) in prompt.split(' ').enumerate() {
//!             if ctx.sleep_or_cancel(std::time::Duration::from_millis(50)).await {
//!                 return Outcome::Cancelled; // the library tells the client
//!             }
//!             if let Err(err) = ctx.model_chunk(i as u32, word).await {
//!                 return Outcome::Failed(err.to_string());
//!             }
//!         }
//!         Outcome::Completed
//!     })
//!     .await;
//! # }
//! ```
//!
//! Events go to the room `user:<userId>` of the main namespace, inside the catalogue envelope,
//! through a [`Publisher`]: [`LocalPublisher`] in the server's process, [`EmitterPublisher`]
//! (the `socketio-redis` emitter, the same bytes as Node's `@socket.io/redis-emitter`) anywhere
//! else in a classic cluster, and [`ShardedPublisher`] in a sharded one (the emitter protocol
//! does not reach sharded nodes).

pub mod example;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use socketio::{SocketIo, Value};
use tokio::sync::Semaphore;

use crate::error::Error;
use crate::events::{self, name};
use crate::jobs::{BoxFuture, CancelSignal, Job, JobSource, Outcome};
use crate::metrics::Metrics;
use crate::presence::user_room;

/// Sends an event to the sockets of a room, wherever they are connected.
pub trait Publisher: Send + Sync + 'static {
    /// Emits `event` with one argument, `payload`, to `room`.
    fn publish(
        &self,
        room: String,
        event: &'static str,
        payload: Value,
    ) -> BoxFuture<'_, Result<(), Error>>;
}

/// Publishes through the server's own `SocketIo` (cluster-wide when it has the Redis adapter).
#[derive(Debug, Clone)]
pub struct LocalPublisher {
    io: SocketIo,
    metrics: Arc<Metrics>,
}

impl LocalPublisher {
    /// A publisher on `io`, counting broadcasts in `metrics`.
    pub fn new(io: SocketIo, metrics: Arc<Metrics>) -> Self {
        Self { io, metrics }
    }
}

impl Publisher for LocalPublisher {
    fn publish(
        &self,
        room: String,
        event: &'static str,
        payload: Value,
    ) -> BoxFuture<'_, Result<(), Error>> {
        self.metrics.broadcasts.inc();
        let sent = self.io.to([room]).emit(event, vec![payload]);
        Box::pin(async move { sent.map_err(Error::from) })
    }
}

/// Publishes through Redis with the `socketio-redis` emitter (a worker in its own process).
#[derive(Debug, Clone)]
pub struct EmitterPublisher(socketio_redis::Emitter);

impl EmitterPublisher {
    /// Connects to Redis; `key` is the cluster's channel prefix (`REDIS_KEY`).
    pub async fn connect(url: &str, key: &str) -> Result<Self, Error> {
        Ok(Self(socketio_redis::Emitter::connect(url, key).await?))
    }
}

impl Publisher for EmitterPublisher {
    fn publish(
        &self,
        room: String,
        event: &'static str,
        payload: Value,
    ) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            self.0
                .to([room])
                .emit(event, vec![payload])
                .await
                .map_err(Error::from)
        })
    }
}

/// Publishes to the nodes of a sharded cluster (`ADAPTER=sharded`) from a worker process: the
/// broadcast a sharded node would send (ClusterAdapter message type 3, `SPUBLISH` on the
/// channel Node's `computeChannel` picks in mode [`crate::cluster::SHARDED_MODE`]). One Redis
/// server; not a Redis Cluster (the publish would have to go to the slot's master).
#[derive(Clone)]
pub struct ShardedPublisher {
    conn: redis::aio::ConnectionManager,
    channels: socketio_redis::wire::cluster::ShardedChannels,
    /// A uid of its own, as a node has: no node takes the broadcast for its own.
    uid: String,
}

impl std::fmt::Debug for ShardedPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedPublisher")
            .field("uid", &self.uid)
            .finish_non_exhaustive()
    }
}

impl ShardedPublisher {
    /// Connects to Redis; `key` is the cluster's channel prefix (`REDIS_KEY`).
    pub async fn connect(url: &str, key: &str) -> Result<Self, Error> {
        let client = redis::Client::open(url)
            .map_err(|e| Error::config("REDIS_URL", format!("invalid Redis URL: {e}")))?;
        let conn = client
            .get_connection_manager()
            .await
            .map_err(|e| Error::config("REDIS_URL", format!("cannot connect to Redis: {e}")))?;
        Ok(Self {
            conn,
            channels: socketio_redis::wire::cluster::ShardedChannels::new(key, "/"),
            uid: socketio_redis::wire::cluster::new_id(),
        })
    }
}

impl Publisher for ShardedPublisher {
    fn publish(
        &self,
        room: String,
        event: &'static str,
        payload: Value,
    ) -> BoxFuture<'_, Result<(), Error>> {
        use socketio_redis::wire::cluster::{Body, Message, opts_of};
        let message = Message {
            uid: self.uid.clone(),
            nsp: Some("/".into()),
            body: Body::Broadcast {
                data: std::borrow::Cow::Owned(vec![Value::from(event), payload]),
                request_id: None,
                opts: opts_of(&[room], &[], socketio_redis::wire::Flags::new()),
            },
        };
        let channel = self
            .channels
            .for_message(&message, crate::cluster::SHARDED_MODE);
        let bytes = message.encode();
        let mut conn = self.conn.clone();
        Box::pin(async move {
            redis::cmd("SPUBLISH")
                .arg(channel)
                .arg(&bytes[..])
                .query_async::<i64>(&mut conn)
                .await
                .map(drop)
                .map_err(|e| Error::Redis(socketio_redis::Error::from(e)))
        })
    }
}

/// What a job handler gets: the job, its cancellation, and ways to publish. Cheap to clone.
#[derive(Clone)]
pub struct JobContext {
    job: Job,
    cancel: CancelSignal,
    publisher: Arc<dyn Publisher>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("job", &self.job)
            .finish_non_exhaustive()
    }
}

impl JobContext {
    /// A context (for tests and other job sources).
    pub fn new(job: Job, cancel: CancelSignal, publisher: Arc<dyn Publisher>) -> Self {
        Self {
            job,
            cancel,
            publisher,
        }
    }

    /// The job.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// Whether the job was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Resolves when the job is cancelled.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }

    /// Waits `duration`, or less if the job is cancelled meanwhile; `true` if it was.
    pub async fn sleep_or_cancel(&self, duration: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(duration) => self.is_cancelled(),
            () = self.cancelled() => true,
        }
    }

    /// Publishes a catalogue event, in its envelope, to the job owner's tabs.
    pub async fn publish<T: Serialize>(
        &self,
        event: &'static str,
        payload: &T,
    ) -> Result<(), Error> {
        let payload = events::envelope(payload)?;
        self.publisher
            .publish(user_room(&self.job.user_id), event, payload)
            .await
    }

    /// `task:progress:v1`.
    pub async fn progress(&self, progress: f64, stage: &str) -> Result<(), Error> {
        self.publish(
            name::TASK_PROGRESS,
            &events::TaskProgress {
                job_id: self.job.id.clone(),
                progress: progress.clamp(0.0, 1.0),
                stage: stage.to_owned(),
            },
        )
        .await
    }

    /// `search:started`.
    pub async fn search_started(&self, query: &str) -> Result<(), Error> {
        self.publish(
            name::SEARCH_STARTED,
            &events::SearchStarted {
                job_id: self.job.id.clone(),
                query: query.to_owned(),
            },
        )
        .await
    }

    /// `search:result:v1`.
    pub async fn search_result(&self, index: u32, result: events::SearchHit) -> Result<(), Error> {
        self.publish(
            name::SEARCH_RESULT,
            &events::SearchResult {
                job_id: self.job.id.clone(),
                index,
                result,
            },
        )
        .await
    }

    /// `search:complete:v1`.
    pub async fn search_complete(&self, total: u32, duration: Duration) -> Result<(), Error> {
        self.publish(
            name::SEARCH_COMPLETE,
            &events::SearchComplete {
                job_id: self.job.id.clone(),
                total,
                duration_ms: duration.as_millis() as u64,
            },
        )
        .await
    }

    /// `model:chunk:v1`.
    pub async fn model_chunk(&self, index: u32, chunk: &str) -> Result<(), Error> {
        self.publish(
            name::MODEL_CHUNK,
            &events::ModelChunk {
                job_id: self.job.id.clone(),
                index,
                chunk: chunk.to_owned(),
            },
        )
        .await
    }

    /// `model:complete:v1`.
    pub async fn model_complete(
        &self,
        text: &str,
        tokens: u32,
        duration: Duration,
    ) -> Result<(), Error> {
        self.publish(
            name::MODEL_COMPLETE,
            &events::ModelComplete {
                job_id: self.job.id.clone(),
                text: text.to_owned(),
                tokens,
                duration_ms: duration.as_millis() as u64,
            },
        )
        .await
    }

    /// `download:progress:v1`.
    pub async fn download_progress(&self, received: u64, total: Option<u64>) -> Result<(), Error> {
        self.publish(
            name::DOWNLOAD_PROGRESS,
            &events::DownloadProgress {
                job_id: self.job.id.clone(),
                received_bytes: received,
                total_bytes: total,
            },
        )
        .await
    }
}

/// A job delivered more often than this is not run again: it failed (`task:failed:v1`) and is
/// acknowledged, so a job that crashes its workers does not take them all down in turn.
pub const MAX_ATTEMPTS: u32 = 3;

/// Takes jobs from a source and runs a handler on each, a few at a time.
pub struct Worker {
    source: Arc<dyn JobSource>,
    publisher: Arc<dyn Publisher>,
    concurrency: usize,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker taking from `source` and publishing through `publisher`, one job at a time.
    pub fn new(source: Arc<dyn JobSource>, publisher: Arc<dyn Publisher>) -> Self {
        Self {
            source,
            publisher,
            concurrency: 1,
            metrics: None,
        }
    }

    /// Jobs run at once.
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Counts outcomes in `metrics`.
    #[must_use]
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Runs until the source closes, then waits for the jobs it started. After the handler,
    /// the library tells the client about a cancellation (`task:cancelled:v1`) or a failure
    /// (`task:failed:v1`); a job cancelled before it started does not reach the handler, nor
    /// does one delivered more than [`MAX_ATTEMPTS`] times (it fails).
    pub async fn run<H, F>(self, handler: H)
    where
        H: Fn(JobContext) -> F + Send + Sync + 'static,
        F: Future<Output = Outcome> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let permits = Arc::new(Semaphore::new(self.concurrency));
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let Some(taken) = self.source.next().await else {
                drop(permit);
                break;
            };
            let source = self.source.clone();
            let publisher = self.publisher.clone();
            let metrics = self.metrics.clone();
            let handler = handler.clone();
            tokio::spawn(async move {
                let job_id = taken.job.id.clone();
                let ctx = JobContext::new(taken.job, taken.cancel, publisher);
                let outcome = if ctx.is_cancelled() {
                    Outcome::Cancelled
                } else if taken.attempt > MAX_ATTEMPTS {
                    tracing::warn!(job = %job_id, attempt = taken.attempt, "giving up on a job that never finished");
                    Outcome::Failed(format!(
                        "gave up after {MAX_ATTEMPTS} attempts: the job never finished"
                    ))
                } else {
                    let outcome = handler(ctx.clone()).await;
                    tracing::debug!(job = %job_id, user = %ctx.job.user_id, ?outcome, "job finished");
                    outcome
                };
                let told = match &outcome {
                    Outcome::Completed => Ok(()),
                    Outcome::Cancelled => {
                        ctx.publish(
                            name::TASK_CANCELLED,
                            &events::TaskCancelled {
                                job_id: job_id.clone(),
                            },
                        )
                        .await
                    }
                    Outcome::Failed(message) => {
                        ctx.publish(
                            name::TASK_FAILED,
                            &events::TaskFailed {
                                job_id: job_id.clone(),
                                message: message.clone(),
                            },
                        )
                        .await
                    }
                };
                if let Err(err) = told {
                    tracing::warn!(job = %job_id, %err, "could not tell the client how the job ended");
                }
                if let Some(metrics) = &metrics {
                    match &outcome {
                        Outcome::Completed => metrics.jobs_completed.inc(),
                        Outcome::Cancelled => metrics.jobs_cancelled.inc(),
                        Outcome::Failed(_) => metrics.jobs_failed.inc(),
                    }
                }
                source.finish(&job_id, &outcome);
                drop(permit);
            });
        }
        // Every permit back: every job started here is over (and finished at its source).
        let _ = permits
            .acquire_many(u32::try_from(self.concurrency).unwrap_or(u32::MAX))
            .await;
    }
}
