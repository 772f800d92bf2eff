//! Jobs: what a client starts, the queue that carries it to a worker, and cancellation.
//!
//! The server side ([`JobQueue`]) enqueues jobs and cancels them; the worker side
//! ([`JobSource`], used by [`crate::worker`]) takes them and reports how they ended. On one node
//! both are the in-process [`LocalQueue`]: a bounded channel plus a registry of live jobs (owner
//! and cancellation signal). With Redis, [`crate::jobs_redis`] puts a stream with a consumer
//! group behind the same two traits (at-least-once; cancellation by pub/sub and a mark).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::events::ErrorCode;

/// A boxed future, for the object-safe traits here.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum JobKind {
    /// A search.
    Search {
        /// The query.
        query: String,
    },
    /// A streamed model answer.
    Model {
        /// The prompt.
        prompt: String,
    },
}

/// A job as a worker gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// Unique id, given to the client in the start ack.
    pub id: String,
    /// The user who started it (`sub`): its events go to `user:<id>`.
    pub user_id: String,
    /// What to do.
    pub kind: JobKind,
    /// When it was enqueued, in ms since the epoch.
    pub created_ms: u64,
}

impl Job {
    /// A new job with a fresh id.
    pub fn new(user_id: impl Into<String>, kind: JobKind) -> Self {
        Self {
            id: engineio::generate_id(),
            user_id: user_id.into(),
            kind,
            created_ms: crate::events::now_ms(),
        }
    }
}

/// Why a start or a cancel was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobError {
    /// The queue is full.
    QueueFull,
    /// No worker is taking jobs.
    NoWorker,
    /// No such live job.
    NotFound,
    /// The job belongs to another user.
    NotOwner,
    /// The queue's Redis is unreachable right now.
    Unreachable,
}

impl JobError {
    /// The ack error code and message.
    pub fn ack(self) -> (ErrorCode, &'static str) {
        match self {
            Self::QueueFull => (
                ErrorCode::QueueFull,
                "too many jobs waiting; try again later",
            ),
            Self::NoWorker => (ErrorCode::Unavailable, "no worker is taking jobs"),
            Self::NotFound => (ErrorCode::NotFound, "no such job, or it is over"),
            Self::NotOwner => (ErrorCode::Forbidden, "the job belongs to another user"),
            Self::Unreachable => (
                ErrorCode::Unavailable,
                "the job queue is unreachable; try again later",
            ),
        }
    }
}

/// How a job ended, as the worker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It ran to the end.
    Completed,
    /// It stopped because it was cancelled.
    Cancelled,
    /// It failed.
    Failed(String),
}

/// A job's cancellation, as the worker observes it.
#[derive(Debug, Clone)]
pub struct CancelSignal(watch::Receiver<bool>);

impl CancelSignal {
    /// A signal that never fires.
    pub fn never() -> Self {
        let (_, rx) = watch::channel(false);
        Self(rx)
    }

    /// A signal that fires when `rx` turns `true` (for other job sources).
    pub fn from_receiver(rx: watch::Receiver<bool>) -> Self {
        Self(rx)
    }

    /// Whether the job was cancelled.
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when the job is cancelled (never, if it is not).
    pub async fn cancelled(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|c| *c).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The server side of a queue.
pub trait JobQueue: Send + Sync + 'static {
    /// Puts a job in the queue.
    fn enqueue(&self, job: Job) -> Result<(), JobError>;
    /// Asks the worker handling `job_id` (or about to) to stop; only its owner `user_id` may.
    fn cancel(&self, job_id: &str, user_id: &str) -> Result<(), JobError>;
    /// Jobs waiting for a worker.
    fn queued(&self) -> usize;
    /// Jobs a worker took and has not finished.
    fn running(&self) -> usize;
    /// Workers taking jobs (with Redis: those with a recent heartbeat).
    fn workers(&self) -> usize;
}

/// A job handed to a worker.
#[derive(Debug)]
pub struct Taken {
    /// The job.
    pub job: Job,
    /// Its cancellation.
    pub cancel: CancelSignal,
    /// Which delivery this is: above 1, an earlier worker took it and never finished (it
    /// crashed, or the job crashed it).
    pub attempt: u32,
}

/// The worker side of a queue.
pub trait JobSource: Send + Sync + 'static {
    /// The next job; `None` when the queue is closed.
    fn next(&self) -> BoxFuture<'_, Option<Taken>>;
    /// Reports how a taken job ended (a stream acknowledges it here).
    fn finish(&self, job_id: &str, outcome: &Outcome);
}

struct Live {
    owner: String,
    cancel: watch::Sender<bool>,
}

/// The in-process queue of a single node: a bounded channel and the registry of live jobs.
pub struct LocalQueue {
    tx: mpsc::Sender<Job>,
    rx: tokio::sync::Mutex<mpsc::Receiver<Job>>,
    live: Mutex<HashMap<String, Live>>,
    workers: AtomicUsize,
    running: AtomicUsize,
}

impl std::fmt::Debug for LocalQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalQueue")
            .field("queued", &self.queued())
            .field("running", &self.running())
            .finish_non_exhaustive()
    }
}

impl LocalQueue {
    /// A queue holding at most `capacity` waiting jobs.
    pub fn new(capacity: usize) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        Arc::new(Self {
            tx,
            rx: tokio::sync::Mutex::new(rx),
            live: Mutex::new(HashMap::new()),
            workers: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
        })
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a worker taking from this queue; jobs are refused (`unavailable`) while none
    /// is. The worker is counted until the returned guard drops.
    pub fn attach_worker(self: &Arc<Self>) -> WorkerGuard {
        self.workers.fetch_add(1, Ordering::AcqRel);
        WorkerGuard(self.clone())
    }
}

/// Keeps a worker counted on a [`LocalQueue`].
#[derive(Debug)]
pub struct WorkerGuard(Arc<LocalQueue>);

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        self.0.workers.fetch_sub(1, Ordering::AcqRel);
    }
}

impl JobQueue for LocalQueue {
    fn enqueue(&self, job: Job) -> Result<(), JobError> {
        if self.workers.load(Ordering::Acquire) == 0 {
            return Err(JobError::NoWorker);
        }
        let (cancel, _) = watch::channel(false);
        let id = job.id.clone();
        self.live().insert(
            id.clone(),
            Live {
                owner: job.user_id.clone(),
                cancel,
            },
        );
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(_) => {
                self.live().remove(&id);
                Err(JobError::QueueFull)
            }
        }
    }

    fn cancel(&self, job_id: &str, user_id: &str) -> Result<(), JobError> {
        let live = self.live();
        let job = live.get(job_id).ok_or(JobError::NotFound)?;
        if job.owner != user_id {
            return Err(JobError::NotOwner);
        }
        job.cancel.send_replace(true);
        Ok(())
    }

    fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    fn workers(&self) -> usize {
        self.workers.load(Ordering::Acquire)
    }
}

impl JobSource for LocalQueue {
    fn next(&self) -> BoxFuture<'_, Option<Taken>> {
        Box::pin(async move {
            let job = self.rx.lock().await.recv().await?;
            let cancel = match self.live().get(&job.id) {
                Some(live) => CancelSignal(live.cancel.subscribe()),
                None => CancelSignal::never(),
            };
            self.running.fetch_add(1, Ordering::AcqRel);
            Some(Taken {
                job,
                cancel,
                attempt: 1,
            })
        })
    }

    fn finish(&self, job_id: &str, _: &Outcome) {
        if self.live().remove(job_id).is_some() {
            self.running.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(user: &str) -> Job {
        Job::new(user, JobKind::Search { query: "q".into() })
    }

    #[tokio::test]
    async fn enqueue_take_cancel_finish() {
        let q = LocalQueue::new(2);
        assert_eq!(q.enqueue(search("a")), Err(JobError::NoWorker));
        let _worker = q.attach_worker();
        let job = search("a");
        let id = job.id.clone();
        q.enqueue(job).unwrap();
        q.enqueue(search("a")).unwrap();
        assert_eq!(q.enqueue(search("a")), Err(JobError::QueueFull));
        assert_eq!(q.queued(), 2);
        assert_eq!(q.cancel(&id, "b"), Err(JobError::NotOwner));
        assert_eq!(q.cancel("nope", "a"), Err(JobError::NotFound));
        let taken = q.next().await.unwrap();
        assert_eq!(taken.job.id, id);
        assert!(!taken.cancel.is_cancelled());
        q.cancel(&id, "a").unwrap();
        assert!(taken.cancel.is_cancelled());
        taken.cancel.cancelled().await;
        assert_eq!(q.running(), 1);
        q.finish(&id, &Outcome::Cancelled);
        assert_eq!(q.running(), 0);
        assert_eq!(q.cancel(&id, "a"), Err(JobError::NotFound));
    }

    #[test]
    fn jobs_serialize_for_a_stream() {
        let job = search("a");
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(json["kind"]["type"], "search");
        assert_eq!(json["userId"], "a");
    }
}
