//! `testbed <profile>`: the program of CONTRACT.md.

use std::io::Write;
use std::process::ExitCode;

use conformance::profiles;
use conformance::settings::{Profile, Settings};
use engineio::{CloseReason, Engine, Frame, Handler, Message, Socket};

/// Profile `engineio`: every message goes back to its sender unchanged.
struct Echo;

impl Handler for Echo {
    type Conn = ();

    fn on_open(&self, _: &Socket) {}

    fn on_message(&self, _: &mut (), socket: &Socket, message: Message) {
        let frame = match message {
            Message::Text(text) => Frame::text(&*text),
            Message::Binary(data) => Frame::binary(data),
        };
        let _ = socket.send(frame);
    }

    fn on_close(&self, _: (), _: &Socket, _: CloseReason) {}
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let settings = match Settings::from_env_and_args(std::env::args().skip(1)) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("testbed: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("testbed: {err}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run(settings))
}

async fn run(settings: Settings) -> ExitCode {
    let addr = format!("{}:{}", settings.host, settings.port);
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("testbed: cannot listen on {addr}: {err}");
            return ExitCode::from(2);
        }
    };
    let served = match settings.profile {
        Profile::EngineIo => {
            let engine = Engine::new(settings.engine_config("/engine.io/"), Echo);
            announce(&settings);
            engine.serve(listener, shutdown_signal()).await
        }
        Profile::SocketIo => {
            let io = profiles::socketio_profile(&settings);
            announce(&settings);
            io.serve(listener, shutdown_signal()).await
        }
        Profile::App => {
            let config = profiles::socketio_config(&settings);
            let (io, cluster) = match &settings.redis_url {
                None => (socketio::SocketIo::new(config), None),
                Some(url) => match Cluster::connect(url, &settings).await {
                    Ok(cluster) => (
                        socketio::SocketIo::with_adapter(config, cluster.factory()),
                        Some(cluster),
                    ),
                    Err(err) => {
                        eprintln!("testbed: {err}");
                        return ExitCode::from(2);
                    }
                },
            };
            profiles::app_profile(&settings, &io);
            // Announce only once Redis confirmed every namespace's subscriptions (CONTRACT.md).
            if let Some(cluster) = &cluster
                && let Err(err) = cluster.ready().await
            {
                eprintln!("testbed: Redis subscriptions failed: {err}");
                return ExitCode::from(2);
            }
            announce(&settings);
            io.serve(listener, shutdown_signal()).await
        }
    };
    // Let the close frames and final polls go out.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("testbed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The Redis adapter of `ADAPTER`: `classic` (`createAdapter`, prefix `KEY`) or `sharded`
/// (`createShardedAdapter`, `channelPrefix` `KEY`, `SUBSCRIPTION_MODE`).
enum Cluster {
    Classic(socketio_redis::ClassicCluster),
    Sharded(socketio_redis::ShardedCluster),
}

impl Cluster {
    async fn connect(url: &str, settings: &Settings) -> Result<Self, String> {
        match settings.adapter.as_str() {
            "classic" => {
                let mut options = socketio_redis::RedisAdapterConfig::default();
                options.key = settings.key.clone();
                socketio_redis::ClassicCluster::connect(url, options)
                    .await
                    .map(Self::Classic)
                    .map_err(|e| e.to_string())
            }
            "sharded" => {
                let mode = socketio_redis::SubscriptionMode::parse(&settings.subscription_mode)
                    .ok_or_else(|| {
                        format!(
                            "SUBSCRIPTION_MODE: unknown: {:?}",
                            settings.subscription_mode
                        )
                    })?;
                let options = socketio_redis::ShardedConfig::new(settings.key.clone(), mode);
                socketio_redis::ShardedCluster::connect(url, options)
                    .await
                    .map(Self::Sharded)
                    .map_err(|e| e.to_string())
            }
            other => Err(format!("ADAPTER: expected classic or sharded: {other:?}")),
        }
    }

    fn factory(&self) -> socketio::AdapterFactory {
        match self {
            Self::Classic(c) => c.factory(),
            Self::Sharded(c) => c.factory(),
        }
    }

    async fn ready(&self) -> Result<(), socketio_redis::Error> {
        match self {
            Self::Classic(c) => c.ready().await,
            Self::Sharded(c) => c.ready().await,
        }
    }
}

fn announce(settings: &Settings) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}:{}", settings.host, settings.port);
    let _ = out.flush();
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
