//! The Redis job stream on a real `redis-server`: what a node enqueues a worker takes once and
//! acknowledges; a worker that dies leaves its job to another (at-least-once); a cancel from any
//! node reaches the worker running the job, or marks a job still waiting; only the owner may
//! cancel; starts are refused with no worker and while Redis is away; a stream entry that is not
//! a job is dropped without stopping the worker.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::redis::RedisServer;
use common::within;
use sockeye::jobs::{Job, JobError, JobKind, JobQueue, JobSource, Outcome};
use sockeye::jobs_redis::{GROUP, Keys, RedisQueue, RedisSource};
use sockeye::worker::{MAX_ATTEMPTS, Publisher, Worker};

const PREFIX: &str = "jobs-test";

fn search(user: &str) -> Job {
    Job::new(
        user,
        JobKind::Search {
            query: "stream".into(),
        },
    )
}

async fn redis(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn source(server: &RedisServer, name: &str, claim_idle: Duration) -> Arc<RedisSource> {
    RedisSource::connect(&server.url(), PREFIX, name, claim_idle)
        .await
        .unwrap()
}

async fn queue(server: &RedisServer) -> Arc<RedisQueue> {
    RedisQueue::connect(&server.url(), PREFIX, 100)
        .await
        .unwrap()
}

/// Polls `check` every 20 ms until it holds (bounded by `within`).
async fn eventually(what: &str, check: impl Fn() -> bool) {
    within(what, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

async fn pending(conn: &mut redis::aio::MultiplexedConnection) -> i64 {
    let summary: redis::Value = redis::cmd("XPENDING")
        .arg(Keys::new(PREFIX).stream)
        .arg(GROUP)
        .query_async(conn)
        .await
        .unwrap();
    match summary {
        redis::Value::Array(items) => match items.first() {
            Some(redis::Value::Int(n)) => *n,
            _ => 0,
        },
        _ => panic!("XPENDING: {summary:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_taken_once_acknowledged_and_cancelled_from_another_node() {
    let server = RedisServer::start();
    let mut conn = redis(&server).await;
    let keys = Keys::new(PREFIX);

    // No worker yet: refused, nothing written.
    let node_a = queue(&server).await;
    assert_eq!(node_a.enqueue(search("alice")), Err(JobError::NoWorker));

    let worker = source(&server, "w1", Duration::from_secs(30)).await;
    let node_b = queue(&server).await;
    eventually("node a sees the worker", || node_a.workers() == 1).await;

    let job = search("alice");
    let id = job.id.clone();
    node_a.enqueue(job.clone()).unwrap();
    let taken = within("take", worker.next()).await.unwrap();
    assert_eq!(taken.job, job, "the job arrives as it was enqueued");
    assert!(!taken.cancel.is_cancelled());
    eventually("running counted on both nodes", || {
        node_a.running() == 1 && node_b.running() == 1
    })
    .await;

    // Node b learned of the job through the events channel: it checks the owner.
    eventually("node b knows the job", || {
        node_b.cancel(&id, "mallory") == Err(JobError::NotOwner)
    })
    .await;
    assert_eq!(
        node_b.cancel("no-such-job", "alice"),
        Err(JobError::NotFound)
    );
    assert!(
        !taken.cancel.is_cancelled(),
        "a refused cancel does nothing"
    );
    node_b.cancel(&id, "alice").unwrap();
    within("the cancel reaches the worker", taken.cancel.cancelled()).await;

    worker.finish(&id, &Outcome::Cancelled);
    eventually("the job is over on both nodes", || {
        node_a.cancel(&id, "alice") == Err(JobError::NotFound)
            && node_b.cancel(&id, "alice") == Err(JobError::NotFound)
    })
    .await;
    worker.drain(Duration::from_secs(2)).await;
    assert_eq!(pending(&mut conn).await, 0, "acknowledged");
    let len: i64 = redis::cmd("XLEN")
        .arg(&keys.stream)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(len, 0, "acknowledged entries are deleted");
    let live: i64 = redis::cmd("HLEN")
        .arg(&keys.live)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(live, 0);
    eventually("counts back to zero", || {
        node_a.running() == 0 && node_a.queued() == 0
    })
    .await;

    // The next job goes to the worker once: nothing else is waiting.
    node_a.enqueue(search("alice")).unwrap();
    let second = within("take", worker.next()).await.unwrap();
    worker.finish(&second.job.id, &Outcome::Completed);
    worker.close();
    assert!(
        within("closed", worker.next()).await.is_none(),
        "a closed source hands out nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_workers_job_is_taken_over_and_a_waiting_job_stays_cancelled() {
    let server = RedisServer::start();
    let mut conn = redis(&server).await;
    let idle = Duration::from_millis(400);
    let first = source(&server, "doomed", idle).await;
    let node = queue(&server).await;
    eventually("worker seen", || node.workers() == 1).await;

    let job = search("bob");
    node.enqueue(job.clone()).unwrap();
    let taken = within("take", first.next()).await.unwrap();
    assert_eq!(taken.job.id, job.id);
    assert_eq!(taken.attempt, 1);

    // A live worker keeps its job: another one does not get it while it touches it.
    let second = source(&server, "survivor", idle).await;
    let early = tokio::time::timeout(idle * 3, second.next()).await;
    assert!(early.is_err(), "a held job was taken from a live worker");

    // The first worker dies without acknowledging: its heartbeat stops with it.
    drop(taken);
    drop(first);
    let again = within("the job is claimed again", second.next())
        .await
        .unwrap();
    assert_eq!(again.job, job, "the same job, run again (at-least-once)");
    assert_eq!(again.attempt, 2);
    second.finish(&job.id, &Outcome::Completed);
    second.drain(Duration::from_secs(2)).await;
    assert_eq!(pending(&mut conn).await, 0);

    // Cancelled while it waits: the worker that takes it sees it cancelled at once.
    let waiting = search("bob");
    node.enqueue(waiting.clone()).unwrap();
    // Taken by nobody yet: give the node's write a moment to land, then cancel.
    eventually("queued", || node.queued() == 1).await;
    node.cancel(&waiting.id, "bob").unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let late = within("take", second.next()).await.unwrap();
    assert_eq!(late.job.id, waiting.id);
    assert!(late.cancel.is_cancelled(), "the cancel mark was found");
    second.finish(&waiting.id, &Outcome::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_entries_are_dropped_and_a_lost_redis_refuses_starts() {
    let server = RedisServer::start();
    let mut conn = redis(&server).await;
    let keys = Keys::new(PREFIX);
    let worker = source(&server, "w", Duration::from_secs(30)).await;
    let node = queue(&server).await;
    eventually("worker seen", || node.workers() == 1).await;

    // Hostile producers: not JSON, the wrong shape, no job field.
    for (field, value) in [
        ("job", "{not json"),
        ("job", r#"{"id":"x"}"#),
        ("other", "1"),
    ] {
        let _: String = redis::cmd("XADD")
            .arg(&keys.stream)
            .arg("*")
            .arg(field)
            .arg(value)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let job = search("carol");
    node.enqueue(job.clone()).unwrap();
    let taken = within("the good job after the bad ones", worker.next())
        .await
        .unwrap();
    assert_eq!(taken.job, job);
    worker.finish(&job.id, &Outcome::Completed);
    worker.drain(Duration::from_secs(2)).await;
    assert_eq!(pending(&mut conn).await, 0, "bad entries acknowledged too");

    // Redis goes away: starts are refused with a clean error instead of being lost.
    let _: Result<(), _> = redis::cmd("SHUTDOWN")
        .arg("NOSAVE")
        .query_async(&mut conn)
        .await;
    eventually("the node notices", || {
        node.enqueue(search("carol")) == Err(JobError::Unreachable)
    })
    .await;
}

/// Records what a worker publishes (the worker side only: the Redis path is the subject).
#[derive(Default)]
struct Recorded(std::sync::Mutex<Vec<(String, &'static str, socketio::Value)>>);

impl Publisher for Recorded {
    fn publish(
        &self,
        room: String,
        event: &'static str,
        payload: socketio::Value,
    ) -> sockeye::jobs::BoxFuture<'_, Result<(), sockeye::Error>> {
        self.0.lock().unwrap().push((room, event, payload));
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_kills_every_worker_is_given_up_and_reported() {
    let server = RedisServer::start();
    let mut conn = redis(&server).await;
    let idle = Duration::from_millis(200);
    let mut doomed = source(&server, "doomed-0", idle).await;
    let node = queue(&server).await;
    eventually("worker seen", || node.workers() == 1).await;
    let job = search("dave");
    node.enqueue(job.clone()).unwrap();
    // Every worker that takes it dies.
    for attempt in 1..=MAX_ATTEMPTS {
        let taken = within("take", doomed.next()).await.unwrap();
        assert_eq!(
            (taken.job.id.as_str(), taken.attempt),
            (job.id.as_str(), attempt)
        );
        drop(taken);
        doomed = source(&server, &format!("doomed-{attempt}"), idle).await;
    }
    let publisher = Arc::new(Recorded::default());
    let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = ran.clone();
    let worker = Worker::new(doomed.clone(), publisher.clone()).run(move |_| {
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        async { Outcome::Completed }
    });
    let run = tokio::spawn(worker);
    eventually("the failure is reported", || {
        publisher
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|(room, event, payload)| {
                room == "user:dave"
                    && *event == "task:failed:v1"
                    && socketio::map_get(payload, "jobId").and_then(socketio::Value::as_str)
                        == Some(job.id.as_str())
            })
    })
    .await;
    assert!(
        !ran.load(std::sync::atomic::Ordering::SeqCst),
        "the job ran a fourth time"
    );
    doomed.close();
    within("the worker stops", run).await.unwrap();
    doomed.drain(Duration::from_secs(2)).await;
    assert_eq!(pending(&mut conn).await, 0, "given up means acknowledged");
    eventually("over for the node", || {
        node.cancel(&job.id, "dave") == Err(JobError::NotFound)
    })
    .await;
}
