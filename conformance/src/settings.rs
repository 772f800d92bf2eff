//! The testbed's settings: environment variables of CONTRACT.md, or the same names as
//! lower-case flags (`--port 3001`), flags winning.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// The profile to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Plain Engine.IO echo at `/engine.io/`.
    EngineIo,
    /// The official Socket.IO protocol suite's server.
    SocketIo,
    /// The client-scenario and cluster server.
    App,
}

/// Every setting of CONTRACT.md.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Profile.
    pub profile: Profile,
    /// `PORT`.
    pub port: u16,
    /// `HOST`.
    pub host: String,
    /// `PING_INTERVAL`.
    pub ping_interval: Duration,
    /// `PING_TIMEOUT`.
    pub ping_timeout: Duration,
    /// `MAX_PAYLOAD`.
    pub max_payload: usize,
    /// `TRANSPORTS`.
    pub transports: String,
    /// `PARSER`: msgpack when true.
    pub msgpack: bool,
    /// `RECOVERY_MS`.
    pub recovery: Option<Duration>,
    /// `REDIS_URL`.
    pub redis_url: Option<String>,
    /// `ADAPTER`.
    pub adapter: String,
    /// `SUBSCRIPTION_MODE`.
    pub subscription_mode: String,
    /// `KEY`.
    pub key: String,
    /// `NODE_NAME`.
    pub node_name: String,
    /// `CORS_ORIGIN`.
    pub cors_origin: Option<String>,
}

/// A bad setting: printed on one line, exit code 2.
#[derive(Debug)]
pub struct SettingsError(pub String);

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Settings {
    /// Reads the command line (profile first) and the environment.
    pub fn from_env_and_args(
        args: impl IntoIterator<Item = String>,
    ) -> Result<Self, SettingsError> {
        let mut args = args.into_iter();
        let mut profile = None;
        let mut flags: HashMap<String, String> = HashMap::new();
        while let Some(arg) = args.next() {
            if let Some(flag) = arg.strip_prefix("--") {
                let (name, value) = match flag.split_once('=') {
                    Some((n, v)) => (n.to_owned(), v.to_owned()),
                    None => {
                        let value = args
                            .next()
                            .ok_or_else(|| SettingsError(format!("missing value for --{flag}")))?;
                        (flag.to_owned(), value)
                    }
                };
                flags.insert(name.replace('-', "_").to_ascii_uppercase(), value);
            } else if profile.is_none() {
                profile = Some(arg);
            } else {
                return Err(SettingsError(format!("unexpected argument {arg:?}")));
            }
        }
        let get = |name: &str| {
            flags
                .get(name)
                .cloned()
                .or_else(|| std::env::var(name).ok())
                .filter(|v| !v.is_empty())
        };
        let profile = match profile.as_deref() {
            Some("engineio") => Profile::EngineIo,
            Some("socketio") => Profile::SocketIo,
            Some("app") => Profile::App,
            Some(other) => {
                return Err(SettingsError(format!(
                    "unknown profile {other:?} (engineio, socketio or app)"
                )));
            }
            None => {
                return Err(SettingsError(
                    "usage: testbed <engineio|socketio|app>".into(),
                ));
            }
        };
        let number = |name: &str, default: u64| -> Result<u64, SettingsError> {
            match get(name) {
                Some(v) => v
                    .parse()
                    .map_err(|_| SettingsError(format!("{name}: not a number: {v:?}"))),
                None => Ok(default),
            }
        };
        let (ping_interval, ping_timeout) = match profile {
            Profile::App => (25_000, 20_000),
            _ => (300, 200),
        };
        let port = number("PORT", 3000)?;
        let port = u16::try_from(port)
            .map_err(|_| SettingsError(format!("PORT: out of range: {port}")))?;
        let transports = get("TRANSPORTS").unwrap_or_else(|| "polling,websocket".into());
        if engineio::Transports::parse(&transports).is_none() {
            return Err(SettingsError(format!(
                "TRANSPORTS: expected polling,websocket or one of them: {transports:?}"
            )));
        }
        let msgpack = match get("PARSER").as_deref() {
            None | Some("json") => false,
            Some("msgpack") => true,
            Some(other) => {
                return Err(SettingsError(format!(
                    "PARSER: expected json or msgpack: {other:?}"
                )));
            }
        };
        let adapter = get("ADAPTER").unwrap_or_else(|| "classic".into());
        if !matches!(adapter.as_str(), "classic" | "sharded") {
            return Err(SettingsError(format!(
                "ADAPTER: expected classic or sharded: {adapter:?}"
            )));
        }
        let subscription_mode = get("SUBSCRIPTION_MODE").unwrap_or_else(|| "dynamic".into());
        if !matches!(
            subscription_mode.as_str(),
            "static" | "dynamic" | "dynamic-private"
        ) {
            return Err(SettingsError(format!(
                "SUBSCRIPTION_MODE: unknown: {subscription_mode:?}"
            )));
        }
        let recovery = match get("RECOVERY_MS") {
            Some(_) => Some(Duration::from_millis(number("RECOVERY_MS", 0)?)),
            None => None,
        };
        Ok(Self {
            profile,
            port,
            host: get("HOST").unwrap_or_else(|| "127.0.0.1".into()),
            ping_interval: Duration::from_millis(number("PING_INTERVAL", ping_interval)?),
            ping_timeout: Duration::from_millis(number("PING_TIMEOUT", ping_timeout)?),
            max_payload: usize::try_from(number("MAX_PAYLOAD", 1_000_000)?)
                .map_err(|_| SettingsError("MAX_PAYLOAD: out of range".into()))?,
            transports,
            msgpack,
            recovery,
            redis_url: get("REDIS_URL"),
            adapter,
            subscription_mode,
            key: get("KEY").unwrap_or_else(|| "socket.io".into()),
            node_name: get("NODE_NAME").unwrap_or_else(|| format!("node-{port}")),
            cors_origin: get("CORS_ORIGIN"),
        })
    }

    /// The Engine.IO options these settings give, for `path`.
    pub fn engine_config(&self, path: &str) -> engineio::Config {
        let mut config = engineio::Config::default();
        config.path = path.to_owned();
        config.ping_interval = self.ping_interval;
        config.ping_timeout = self.ping_timeout;
        config.max_payload = self.max_payload;
        config.transports = engineio::Transports::parse(&self.transports).unwrap_or_default();
        config.cors = self.cors_origin.as_ref().map(|origin| {
            engineio::Cors::new(match origin.as_str() {
                "*" => engineio::CorsOrigin::Any,
                other => engineio::CorsOrigin::Exact(other.to_owned()),
            })
        });
        config
    }
}
