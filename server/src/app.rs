//! The server assembled: configuration → Socket.IO with its adapter, handlers, job queue and
//! in-process worker, HTTP listener; and its graceful shutdown.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use engineio::{AllowRequest, Cors, CorsOrigin, RemoteAddr, TransportKind};
use http::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use socketio::SocketIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::Authenticator;
use crate::cluster::Cluster;
use crate::config::{Config, JwtKey, Origins};
use crate::error::Error;
use crate::jobs::{JobQueue, JobSource, LocalQueue};
use crate::jobs_redis::{RedisQueue, RedisSource};
use crate::metrics::{CountingStream, Gauges, Metrics};
use crate::presence::Presence;
use crate::rate_limit::RateLimiter;
use crate::realtime::Realtime;
use crate::worker::{LocalPublisher, Worker, example};

/// Everything a request or a handler may need.
#[derive(Debug)]
pub struct App {
    /// The settings.
    pub config: Config,
    /// Socket.IO.
    pub io: SocketIo,
    /// Handlers' shared state.
    pub realtime: Arc<Realtime>,
    /// The adapter choice.
    pub cluster: Cluster,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Start time.
    pub started: Instant,
}

impl App {
    /// Open Engine.IO connections by transport.
    pub fn connections(&self) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::from([("polling", 0), ("websocket", 0)]);
        for socket in self.io.engine().sockets() {
            let key = match socket.transport() {
                TransportKind::Polling => "polling",
                TransportKind::WebSocket => "websocket",
            };
            *out.entry(key).or_insert(0) += 1;
        }
        out
    }

    /// The gauges of `/metrics`.
    pub fn gauges(&self) -> Gauges {
        let namespaces = self.io.namespaces();
        Gauges {
            node_id: self.config.node_id.clone(),
            uptime_secs: self.started.elapsed().as_secs_f64(),
            connections: self.connections(),
            users_online: self.realtime.presence.online_users() as u64,
            sockets: namespaces.iter().map(|ns| ns.sockets().len() as u64).sum(),
            rooms: namespaces
                .iter()
                .map(|ns| ns.local().local_rooms().len() as u64)
                .sum(),
            jobs_queued: self.realtime.jobs.queued() as u64,
            jobs_running: self.realtime.jobs.running() as u64,
            job_workers: self.realtime.jobs.workers() as u64,
            redis: self.cluster.stats().map(|stats| (stats.subscribed, stats)),
        }
    }
}

/// A started server.
#[derive(Debug)]
pub struct Running {
    /// Its state.
    pub app: Arc<App>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    accept: JoinHandle<()>,
    worker: Option<JoinHandle<()>>,
}

fn socketio_config(config: &Config) -> socketio::Config {
    let mut io_config = socketio::Config::default();
    if let Some(origins) = &config.frontend_origin {
        io_config.engine.cors = Some(Cors::new(match origins {
            Origins::Any => CorsOrigin::Any,
            Origins::List(list) => CorsOrigin::List(list.clone()),
        }));
        if let Origins::List(_) = origins {
            let origins = origins.clone();
            io_config.engine.allow_request = Some(AllowRequest::new(move |req| {
                if crate::http::origin_allowed(&origins, &req.headers) {
                    Ok(())
                } else {
                    Err("origin not allowed".to_owned())
                }
            }));
        }
    }
    io_config
}

/// Presence and the rate limit: in memory on one node, cluster-wide through Redis otherwise
/// (their own command connection, beside the adapter's).
async fn presence_and_limits(
    config: &Config,
    io: &SocketIo,
    metrics: &Arc<Metrics>,
) -> Result<(Presence, RateLimiter), Error> {
    let (burst, per_minute) = (config.rate_limit_burst, config.rate_limit_per_minute);
    let Some(url) = &config.redis_url else {
        return Ok((Presence::default(), RateLimiter::new(burst, per_minute)));
    };
    let conn = crate::presence_cluster::connect(url).await?;
    let (io, announce_metrics) = (io.clone(), metrics.clone());
    let announce: crate::presence::Announce = Arc::new(move |user, online| {
        crate::realtime::announce_presence(&io, &announce_metrics, user, online);
    });
    let presence = Presence::clustered(
        conn.clone(),
        &config.redis_key,
        &config.node_id,
        config.presence_ttl,
        announce,
    );
    let limiter =
        RateLimiter::clustered(burst, per_minute, conn, &config.redis_key, metrics.clone());
    Ok((presence, limiter))
}

/// The job queue and, when configured, the example worker taking from it: in process on one
/// node; with `REDIS_URL` the cluster's Redis stream, where this node's worker is one consumer
/// beside any `sockeye worker` process.
async fn jobs_and_worker(
    config: &Config,
    io: &SocketIo,
    metrics: &Arc<Metrics>,
) -> Result<(Arc<dyn JobQueue>, Option<JoinHandle<()>>), Error> {
    let capacity = config.job_queue_capacity;
    let (queue, source, guard): (Arc<dyn JobQueue>, Arc<dyn JobSource>, _) = match &config.redis_url
    {
        None => {
            let queue = LocalQueue::new(capacity);
            let guard = config.example_worker.then(|| queue.attach_worker());
            (queue.clone(), queue, guard)
        }
        Some(url) if config.example_worker => {
            // The worker first: its heartbeat is then in the queue's first count.
            let name = format!("{}-{}", config.node_id, engineio::generate_id());
            let source =
                RedisSource::connect(url, &config.redis_key, &name, config.job_claim_idle).await?;
            let queue = RedisQueue::connect(url, &config.redis_key, capacity).await?;
            (queue, source, None)
        }
        Some(url) => {
            let queue = RedisQueue::connect(url, &config.redis_key, capacity).await?;
            return Ok((queue, None));
        }
    };
    if !config.example_worker {
        return Ok((queue, None));
    }
    let delay = config.example_worker_delay;
    let worker = Worker::new(
        source,
        Arc::new(LocalPublisher::new(io.clone(), metrics.clone())),
    )
    .concurrency(config.worker_concurrency)
    .metrics(metrics.clone());
    let task = tokio::spawn(async move {
        let _guard = guard;
        worker.run(move |ctx| example::handle(ctx, delay)).await;
    });
    Ok((queue, Some(task)))
}

/// Starts the server: connects the adapter, binds the port, spawns the accept loop and, when
/// configured, the example worker.
pub async fn start(config: Config) -> Result<Running, Error> {
    let auth = Authenticator::new(&config)?;
    let cluster = Cluster::connect(&config).await?;
    let io_config = socketio_config(&config);
    let io = match cluster.factory() {
        Some(factory) => SocketIo::with_adapter(io_config, factory),
        None => SocketIo::new(io_config),
    };
    cluster.ready().await?;
    let metrics = Arc::new(Metrics::default());
    let (presence, limiter) = presence_and_limits(&config, &io, &metrics).await?;
    let (jobs, worker) = jobs_and_worker(&config, &io, &metrics).await?;
    let realtime = Arc::new(Realtime {
        io: io.clone(),
        auth,
        presence,
        limiter,
        jobs,
        metrics: metrics.clone(),
    });
    realtime.install();

    let listener = TcpListener::bind((config.host, config.port))
        .await
        .map_err(|e| {
            Error::io(
                format!("cannot listen on {}:{}", config.host, config.port),
                e,
            )
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("local address", e))?;

    if let JwtKey::DevSecret(_) = config.jwt_key {
        tracing::warn!(
            "DEV MODE: tokens are signed with a random secret of this process, and \
             GET /api/dev/token?user=NAME hands one to anyone. Never run --dev in production."
        );
    }
    if config.redis_url.is_none() && !config.example_worker {
        tracing::warn!(
            "no worker: search:start and model:start will be refused (unavailable); \
             give --example-worker or --dev to run the example worker in this process"
        );
    }

    let app = Arc::new(App {
        config,
        io,
        realtime,
        cluster,
        metrics,
        started: Instant::now(),
    });
    let (stop, stopped) = watch::channel(false);
    let accept = tokio::spawn(accept_loop(app.clone(), listener, stopped));
    tracing::info!(
        node = %app.config.node_id,
        redis = app.cluster.status().as_str(),
        "listening on http://{addr}"
    );
    Ok(Running {
        app,
        addr,
        stop,
        accept,
        worker,
    })
}

async fn accept_loop(app: Arc<App>, listener: TcpListener, mut stopped: watch::Receiver<bool>) {
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        app.metrics.tcp_accepted.inc();
        let _ = stream.set_nodelay(true);
        let stream = CountingStream::new(stream, app.metrics.clone());
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(RemoteAddr(peer));
            let app = app.clone();
            async move { Ok::<_, Infallible>(crate::http::route(&app, req).await) }
        });
        tokio::spawn(async move {
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(err) = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%err, "http connection error");
            }
        });
    }
}

impl Running {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Graceful shutdown: stop accepting, make every socket leave (`server shutting down`) and
    /// close every connection after what it has queued (clients reconnect, elsewhere in a
    /// cluster), then wait up to `SHUTDOWN_GRACE_MS` for the connections to drain.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.accept.await;
        let sockets = self.app.io.engine().clients_count();
        tracing::info!(sockets, "shutting down");
        self.app.io.close();
        let deadline = tokio::time::Instant::now() + self.app.config.shutdown_grace;
        while self.app.io.engine().clients_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        if let Some(worker) = self.worker {
            worker.abort();
        }
        // Announce this node's users offline now rather than when its presence entries expire.
        if let Some(presence) = self.app.realtime.presence.cluster() {
            presence.leave(std::time::Duration::from_secs(1)).await;
        }
        tracing::info!(left = self.app.io.engine().clients_count(), "shut down");
    }
}
