//! The `sockeye` binary: `sockeye [serve]`, `sockeye worker --example`, `sockeye events-ts`.

use std::process::ExitCode;

use sockeye::config::{self, Command};
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
        Command::Worker(_) => {
            return fail(&Error::config(
                "REDIS_URL",
                "`sockeye worker` takes jobs from the Redis job stream, which is not built yet; \
                 on one node run the example worker in the server with --example-worker (or --dev)",
            ));
        }
        Command::Serve(config) => *config,
    };
    sockeye::logging::init(config.log_format, &config.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&Error::io("tokio runtime", err)),
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

fn fail(err: &Error) -> ExitCode {
    eprintln!("sockeye: {err}");
    ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(1))
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
