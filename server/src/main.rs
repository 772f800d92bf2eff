//! The `sockeye` binary: `sockeye [serve]`, `sockeye worker --example`, `sockeye events-ts`.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use sockeye::config::{self, AdapterKind, Command};
use sockeye::jobs_redis::RedisSource;
use sockeye::worker::{EmitterPublisher, Publisher, ShardedPublisher, Worker, example};
use sockeye::{Config, Error};

fn main() -> ExitCode {
    let command = match config::parse(std::env::args().skip(1), |name| std::env::var(name).ok()) {
        Ok(command) => command,
        Err(err) => return fail(&err),
    };
    let config = match command {
        Command::Help => {
            print!("{}", config::help());
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("sockeye {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Command::EventsTs => {
            print!("{}", sockeye::events::typescript());
            return ExitCode::SUCCESS;
        }
        Command::Worker(config) => {
            if config.redis_url.is_none() {
                return fail(&Error::config(
                    "REDIS_URL",
                    "`sockeye worker` takes jobs from the Redis job stream: set REDIS_URL \
                     (on one node, run the example worker in the server with --example-worker)",
                ));
            }
            return run(*config, worker);
        }
        Command::Serve(config) => *config,
    };
    run(config, serve)
}

fn run<F: Future<Output = Result<(), Error>>>(config: Config, main: fn(Config) -> F) -> ExitCode {
    sockeye::logging::init(config.log_format, &config.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&Error::io("tokio runtime", err)),
    };
    match runtime.block_on(main(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

fn fail(err: &Error) -> ExitCode {
    eprintln!("sockeye: {err}");
    ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(1))
}

/// `sockeye worker --example`: a consumer of the Redis job stream publishing through Redis
/// (the emitter protocol; SPUBLISH with the sharded adapter). SIGTERM: take no more jobs, give
/// the running ones `SHUTDOWN_GRACE_MS` to end; those that do not are claimed by another
/// worker after `JOB_CLAIM_IDLE_MS`.
async fn worker(config: Config) -> Result<(), Error> {
    let Some(url) = config.redis_url.as_deref() else {
        return Err(Error::config("REDIS_URL", "required by `sockeye worker`"));
    };
    let publisher: Arc<dyn Publisher> = match config.adapter {
        AdapterKind::Classic => Arc::new(EmitterPublisher::connect(url, &config.redis_key).await?),
        AdapterKind::Sharded => Arc::new(ShardedPublisher::connect(url, &config.redis_key).await?),
    };
    let name = format!("worker-{}-{}", config.node_id, std::process::id());
    let source = RedisSource::connect(url, &config.redis_key, &name, config.job_claim_idle).await?;
    let delay = config.example_worker_delay;
    let run = Worker::new(source.clone(), publisher)
        .concurrency(config.worker_concurrency)
        .run(move |ctx| example::handle(ctx, delay));
    tracing::info!(
        consumer = %name,
        adapter = ?config.adapter,
        "example worker taking jobs from the Redis stream"
    );
    tokio::pin!(run);
    tokio::select! {
        () = &mut run => return Ok(()),
        signal = wait_for_signal() => signal?,
    }
    source.close();
    let grace = config.shutdown_grace;
    if tokio::time::timeout(grace, run).await.is_err() {
        tracing::warn!(
            held = source.held(),
            "jobs still running at the end of the grace: another worker will take them over"
        );
    }
    source.drain(Duration::from_secs(1)).await;
    source.leave().await;
    tracing::info!("worker stopped");
    Ok(())
}

async fn serve(config: Config) -> Result<(), Error> {
    let running = sockeye::start(config).await?;
    wait_for_signal().await?;
    running.shutdown().await;
    Ok(())
}

/// SIGTERM or Ctrl-C.
async fn wait_for_signal() -> Result<(), Error> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| Error::io("SIGTERM handler", e))?;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    Ok(())
}
