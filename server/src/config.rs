//! Configuration from command-line flags and environment variables.
//!
//! Every setting has one name in both places: `PORT` is the variable, `--port` the flag; a flag
//! wins over the variable. A bad value is refused before anything starts, with a one-line message
//! naming the setting ([`Error::Config`], exit status 2). `--help` prints [`help`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;

/// One setting: its variable, its flag, its default and what it does.
struct Spec {
    env: &'static str,
    /// `None` for a boolean switch (`--dev`).
    metavar: Option<&'static str>,
    default: &'static str,
    help: &'static str,
}

impl Spec {
    /// `PORT` → `--port`, `JWT_SECRET` → `--jwt-secret`.
    fn flag(&self) -> String {
        format!("--{}", self.env.to_ascii_lowercase().replace('_', "-"))
    }
}

const fn setting(
    env: &'static str,
    metavar: &'static str,
    default: &'static str,
    help: &'static str,
) -> Spec {
    Spec {
        env,
        metavar: Some(metavar),
        default,
        help,
    }
}

const fn switch(env: &'static str, help: &'static str) -> Spec {
    Spec {
        env,
        metavar: None,
        default: "off",
        help,
    }
}

/// Every setting, in the order `--help` lists them.
const SPECS: &[Spec] = &[
    setting("PORT", "PORT", "4000", "TCP port for Socket.IO and HTTP"),
    setting("HOST", "ADDR", "0.0.0.0", "address to listen on"),
    setting(
        "NODE_ID",
        "ID",
        "random",
        "this node's id in health, metrics and logs",
    ),
    switch(
        "DEV",
        "development mode: random per-process JWT secret, GET /api/dev/token?user=NAME, example worker",
    ),
    setting(
        "REDIS_URL",
        "URL",
        "unset: one node, in memory",
        "Redis for a cluster (redis://host:port)",
    ),
    switch("DISABLE_REDIS", "force one node even when REDIS_URL is set"),
    setting(
        "ADAPTER",
        "KIND",
        "classic",
        "cluster adapter: classic | sharded",
    ),
    setting(
        "REDIS_KEY",
        "PREFIX",
        "socket.io",
        "channel prefix of the Redis adapter and emitter",
    ),
    setting(
        "FRONTEND_ORIGIN",
        "ORIGINS",
        "unset: no CORS headers",
        "CORS allow-list, comma-separated origins (scheme://host[:port])",
    ),
    setting(
        "JWT_SECRET",
        "SECRET",
        "unset",
        "HS256 secret (at least 32 bytes)",
    ),
    setting(
        "JWT_PUBLIC_KEY_FILE",
        "PATH",
        "unset",
        "PEM public key: RSA (RS256) or P-256 (ES256)",
    ),
    setting(
        "JWT_ISSUER",
        "ISS",
        "unset: not checked",
        "required `iss` claim",
    ),
    setting(
        "JWT_AUDIENCE",
        "AUD",
        "unset: not checked",
        "required `aud` claim",
    ),
    setting(
        "JWT_LEEWAY_SECS",
        "SECS",
        "0",
        "clock skew allowed on exp and nbf",
    ),
    setting(
        "RATE_LIMIT_BURST",
        "N",
        "5",
        "search:start / model:start per user: bucket size",
    ),
    setting(
        "RATE_LIMIT_PER_MINUTE",
        "N",
        "30",
        "search:start / model:start per user: refill rate",
    ),
    setting(
        "PRESENCE_TTL_MS",
        "MS",
        "15000",
        "cluster: a node's presence entries live this long without a heartbeat (a crashed node's users go offline after about this)",
    ),
    setting(
        "JOB_QUEUE_CAPACITY",
        "N",
        "1024",
        "jobs waiting for a worker (in the cluster, with Redis); past it, starts are refused",
    ),
    setting(
        "JOB_CLAIM_IDLE_MS",
        "MS",
        "30000",
        "Redis job stream: a job whose worker stopped (crashed) for this long is run by another",
    ),
    switch(
        "EXAMPLE_WORKER",
        "run the example worker in this process (implied by --dev); with REDIS_URL it takes jobs from the cluster's stream beside any `sockeye worker`",
    ),
    setting(
        "EXAMPLE_WORKER_DELAY_MS",
        "MS",
        "120",
        "the example worker's pause between results and chunks",
    ),
    setting("WORKER_CONCURRENCY", "N", "4", "jobs a worker runs at once"),
    setting(
        "SHUTDOWN_GRACE_MS",
        "MS",
        "5000",
        "on SIGTERM, how long connections get to drain",
    ),
    setting(
        "CLIENT_DIR",
        "PATH",
        "server/node_modules/socket.io-client/dist",
        "where the official client bundle is served from",
    ),
    setting("LOG_FORMAT", "FORMAT", "text", "log format: text | json"),
    setting(
        "LOG_LEVEL",
        "FILTER",
        "info",
        "log filter (tracing EnvFilter syntax)",
    ),
];

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run the server (the default).
    Serve(Box<Config>),
    /// Run a worker process (`sockeye worker --example`).
    Worker(Box<Config>),
    /// Print the TypeScript event catalogue (`sockeye events-ts`).
    EventsTs,
    /// Print [`help`].
    Help,
    /// Print the version.
    Version,
}

/// How tokens are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKey {
    /// HS256 with this secret.
    Secret(Vec<u8>),
    /// RS256 or ES256 with the PEM public key read from this file.
    PublicKeyPem {
        /// The file.
        path: PathBuf,
        /// Its contents.
        pem: Vec<u8>,
    },
    /// `--dev` without a configured key: a random secret for this process.
    DevSecret(Vec<u8>),
}

/// The cluster adapter kind (`ADAPTER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterKind {
    /// `@socket.io/redis-adapter` `createAdapter` (pub/sub).
    Classic,
    /// `createShardedAdapter` (sharded pub/sub, Redis 7).
    Sharded,
}

/// The allowed cross-origin callers (`FRONTEND_ORIGIN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    /// Any origin (`*`).
    Any,
    /// These origins, exactly.
    List(Vec<String>),
}

/// Log output (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The checked settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// `PORT`.
    pub port: u16,
    /// `HOST`.
    pub host: IpAddr,
    /// `NODE_ID`.
    pub node_id: String,
    /// `--dev`.
    pub dev: bool,
    /// `REDIS_URL`, unless `DISABLE_REDIS`.
    pub redis_url: Option<String>,
    /// `ADAPTER`.
    pub adapter: AdapterKind,
    /// `REDIS_KEY`.
    pub redis_key: String,
    /// `FRONTEND_ORIGIN`; `None`: no CORS headers.
    pub frontend_origin: Option<Origins>,
    /// `JWT_SECRET` / `JWT_PUBLIC_KEY_FILE` / the dev secret.
    pub jwt_key: JwtKey,
    /// `JWT_ISSUER`.
    pub jwt_issuer: Option<String>,
    /// `JWT_AUDIENCE`.
    pub jwt_audience: Option<String>,
    /// `JWT_LEEWAY_SECS`.
    pub jwt_leeway: u64,
    /// `RATE_LIMIT_BURST`.
    pub rate_limit_burst: u32,
    /// `RATE_LIMIT_PER_MINUTE`.
    pub rate_limit_per_minute: u32,
    /// `PRESENCE_TTL_MS`.
    pub presence_ttl: Duration,
    /// `JOB_QUEUE_CAPACITY`.
    pub job_queue_capacity: usize,
    /// `JOB_CLAIM_IDLE_MS`.
    pub job_claim_idle: Duration,
    /// `EXAMPLE_WORKER` (or `--dev`).
    pub example_worker: bool,
    /// `EXAMPLE_WORKER_DELAY_MS`.
    pub example_worker_delay: Duration,
    /// `WORKER_CONCURRENCY`.
    pub worker_concurrency: usize,
    /// `SHUTDOWN_GRACE_MS`.
    pub shutdown_grace: Duration,
    /// `CLIENT_DIR`.
    pub client_dir: PathBuf,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `LOG_LEVEL`.
    pub log_level: String,
}

impl Config {
    /// A configuration for tests and embedding: one node on `127.0.0.1:0`, HS256 with `secret`,
    /// no example worker; every other setting at its default.
    pub fn for_secret(secret: &[u8]) -> Self {
        Self {
            port: 0,
            host: IpAddr::from([127, 0, 0, 1]),
            node_id: "test".into(),
            dev: false,
            redis_url: None,
            adapter: AdapterKind::Classic,
            redis_key: "socket.io".into(),
            frontend_origin: None,
            jwt_key: JwtKey::Secret(secret.to_vec()),
            jwt_issuer: None,
            jwt_audience: None,
            jwt_leeway: 0,
            rate_limit_burst: 5,
            rate_limit_per_minute: 30,
            presence_ttl: Duration::from_secs(15),
            job_queue_capacity: 1024,
            job_claim_idle: Duration::from_secs(30),
            example_worker: false,
            example_worker_delay: Duration::from_millis(120),
            worker_concurrency: 4,
            shutdown_grace: Duration::from_secs(5),
            client_dir: default_client_dir(),
            log_format: LogFormat::Text,
            log_level: "info".into(),
        }
    }

    /// Whether clients may get tokens from `GET /api/dev/token`.
    pub fn dev_tokens(&self) -> bool {
        self.dev && !matches!(self.jwt_key, JwtKey::PublicKeyPem { .. })
    }
}

/// The usage text, with every setting and its default.
pub fn help() -> String {
    let mut out = String::from(
        "sockeye: the Sockeye real-time server (Socket.IO, JWT auth, jobs, health and metrics)\n\n\
         USAGE:\n  \
           sockeye [serve] [OPTIONS]      run the server\n  \
           sockeye worker --example       run the example worker as its own process: it takes jobs\n                                 \
           from the Redis job stream (REDIS_URL required) and publishes\n                                 \
           to the users' tabs (classic: the redis-emitter protocol;\n                                 \
           sharded: SPUBLISH as a sharded node does). SIGTERM: takes no\n                                 \
           more jobs, finishes its own. A node with REDIS_URL and\n                                 \
           --example-worker also runs one, beside these\n  \
           sockeye events-ts              print the TypeScript event catalogue (server/events.ts)\n\n\
         OPTIONS: each flag has an environment variable of the same name; flags win.\n",
    );
    for spec in SPECS {
        let flag = match spec.metavar {
            Some(metavar) => format!("{} {metavar}", spec.flag()),
            None => spec.flag(),
        };
        out.push_str(&format!(
            "  {flag:<32} {env:<24} {help} [default: {default}]\n",
            env = spec.env,
            help = spec.help,
            default = spec.default
        ));
    }
    out.push_str("  -h, --help                       print this help\n");
    out
}

/// Parses the command line (without the program name) and the environment.
pub fn parse<I, S>(args: I, env: impl Fn(&str) -> Option<String>) -> Result<Command, Error>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let args: Vec<String> = args.into_iter().map(Into::into).collect();
    if args
        .iter()
        .any(|a| a == "--help" || a == "-h" || a == "help")
    {
        return Ok(Command::Help);
    }
    if args.iter().any(|a| a == "--version" || a == "-V") {
        return Ok(Command::Version);
    }
    let mut rest = args.as_slice();
    let mut worker = false;
    match rest.first().map(String::as_str) {
        Some("serve") => rest = &rest[1..],
        Some("worker") => {
            worker = true;
            rest = &rest[1..];
        }
        Some("events-ts") => return Ok(Command::EventsTs),
        Some(other) if !other.starts_with('-') => {
            return Err(Error::config(
                "command",
                format!("unknown command {other:?} (serve, worker, events-ts; see --help)"),
            ));
        }
        _ => {}
    }

    let mut raw: HashMap<&'static str, String> = HashMap::new();
    for spec in SPECS {
        if let Some(value) = env(spec.env) {
            raw.insert(spec.env, value);
        }
    }
    let mut example = false;
    let mut i = 0;
    while i < rest.len() {
        let arg = &rest[i];
        i += 1;
        if worker && arg == "--example" {
            example = true;
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (arg.as_str(), None),
        };
        let Some(spec) = SPECS.iter().find(|s| s.flag() == name) else {
            return Err(Error::config(
                "command line",
                format!("unknown argument {arg:?} (see --help)"),
            ));
        };
        let value = match (spec.metavar, inline) {
            (_, Some(value)) => value,
            (None, None) => "1".to_owned(),
            (Some(_), None) => {
                let Some(value) = rest.get(i) else {
                    return Err(Error::config(spec.env, format!("{name} needs a value")));
                };
                i += 1;
                value.clone()
            }
        };
        raw.insert(spec.env, value);
    }
    if worker {
        if !example {
            return Err(Error::config(
                "command line",
                "`sockeye worker` needs --example (the only worker built in)",
            ));
        }
        return Ok(Command::Worker(Box::new(build(&raw, true)?)));
    }
    Ok(Command::Serve(Box::new(build(&raw, false)?)))
}

fn flag_bool(raw: &HashMap<&'static str, String>, name: &'static str) -> Result<bool, Error> {
    match raw.get(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) => match v.as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" | "" => Ok(false),
            _ => Err(Error::config(
                name,
                format!("{v:?} is not a boolean (1/0, true/false)"),
            )),
        },
    }
}

fn non_empty(raw: &HashMap<&'static str, String>, name: &'static str) -> Option<String> {
    raw.get(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    raw: &HashMap<&'static str, String>,
    name: &'static str,
    default: T,
    min: T,
) -> Result<T, Error> {
    let Some(value) = non_empty(raw, name) else {
        return Ok(default);
    };
    match value.parse::<T>() {
        Ok(n) if n >= min => Ok(n),
        Ok(_) => Err(Error::config(name, format!("must be at least {min}"))),
        Err(_) => Err(Error::config(
            name,
            format!("{value:?} is not a whole number"),
        )),
    }
}

/// Checks one origin: `scheme://host[:port]`, nothing after.
fn parse_origin(origin: &str) -> Result<String, Error> {
    let bad = || {
        Error::config(
            "FRONTEND_ORIGIN",
            format!("{origin:?} is not an origin (scheme://host[:port])"),
        )
    };
    let uri: http::Uri = origin.parse().map_err(|_| bad())?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let path_empty = uri
        .path_and_query()
        .is_none_or(|p| matches!(p.as_str(), "" | "/"));
    if !scheme_ok || uri.authority().is_none() || !path_empty || origin.ends_with('/') {
        return Err(bad());
    }
    Ok(origin.to_owned())
}

fn default_client_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/node_modules/socket.io-client/dist"
    ))
}

fn build(raw: &HashMap<&'static str, String>, worker: bool) -> Result<Config, Error> {
    let port = number::<u16>(raw, "PORT", 4000, 0)?;
    let host = match non_empty(raw, "HOST") {
        None => IpAddr::from([0, 0, 0, 0]),
        Some(h) if h == "localhost" => IpAddr::from([127, 0, 0, 1]),
        Some(h) => h
            .parse()
            .map_err(|_| Error::config("HOST", format!("{h:?} is not an IP address")))?,
    };
    let node_id = non_empty(raw, "NODE_ID").unwrap_or_else(engineio::generate_id);
    if node_id.len() > 64 || !node_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::config(
            "NODE_ID",
            "must be 1 to 64 printable ASCII characters",
        ));
    }
    let dev = flag_bool(raw, "DEV")?;
    let disable_redis = flag_bool(raw, "DISABLE_REDIS")?;
    let redis_url = match non_empty(raw, "REDIS_URL") {
        Some(url) if !disable_redis => {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(Error::config(
                    "REDIS_URL",
                    format!("{url:?} is not a redis:// URL"),
                ));
            }
            Some(url)
        }
        _ => None,
    };
    let adapter = match non_empty(raw, "ADAPTER").as_deref() {
        None | Some("classic") => AdapterKind::Classic,
        Some("sharded") => AdapterKind::Sharded,
        Some(other) => {
            return Err(Error::config(
                "ADAPTER",
                format!("{other:?} is not classic or sharded"),
            ));
        }
    };
    let redis_key = non_empty(raw, "REDIS_KEY").unwrap_or_else(|| "socket.io".into());
    let frontend_origin = match non_empty(raw, "FRONTEND_ORIGIN") {
        None => None,
        Some(list) if list == "*" => Some(Origins::Any),
        Some(list) => Some(Origins::List(
            list.split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(parse_origin)
                .collect::<Result<_, _>>()?,
        )),
    };

    let secret = non_empty(raw, "JWT_SECRET");
    let key_file = non_empty(raw, "JWT_PUBLIC_KEY_FILE");
    let jwt_key = match (secret, key_file) {
        (Some(_), Some(_)) => {
            return Err(Error::config(
                "JWT_SECRET",
                "set JWT_SECRET or JWT_PUBLIC_KEY_FILE, not both",
            ));
        }
        (Some(secret), None) => {
            if secret.len() < 32 {
                return Err(Error::config(
                    "JWT_SECRET",
                    "must be at least 32 bytes (HS256)",
                ));
            }
            JwtKey::Secret(secret.into_bytes())
        }
        (None, Some(path)) => {
            let pem = std::fs::read(&path).map_err(|e| {
                Error::config("JWT_PUBLIC_KEY_FILE", format!("cannot read {path:?}: {e}"))
            })?;
            JwtKey::PublicKeyPem {
                path: PathBuf::from(path),
                pem,
            }
        }
        (None, None) if dev => {
            let mut secret = vec![0u8; 32];
            rand::fill(secret.as_mut_slice());
            JwtKey::DevSecret(secret)
        }
        // A worker checks no tokens.
        (None, None) if worker => JwtKey::Secret(Vec::new()),
        (None, None) => {
            return Err(Error::config(
                "JWT_SECRET",
                "no JWT configuration: set JWT_SECRET or JWT_PUBLIC_KEY_FILE, or run with --dev",
            ));
        }
    };
    let rate_limit_burst = number::<u32>(raw, "RATE_LIMIT_BURST", 5, 1)?;
    let rate_limit_per_minute = number::<u32>(raw, "RATE_LIMIT_PER_MINUTE", 30, 1)?;
    let log_format = match non_empty(raw, "LOG_FORMAT").as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => {
            return Err(Error::config(
                "LOG_FORMAT",
                format!("{other:?} is not text or json"),
            ));
        }
    };
    let log_level = non_empty(raw, "LOG_LEVEL").unwrap_or_else(|| "info".into());
    if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
        return Err(Error::config(
            "LOG_LEVEL",
            format!("{log_level:?} is not a log filter"),
        ));
    }
    Ok(Config {
        port,
        host,
        node_id,
        dev,
        redis_url,
        adapter,
        redis_key,
        frontend_origin,
        jwt_key,
        jwt_issuer: non_empty(raw, "JWT_ISSUER"),
        jwt_audience: non_empty(raw, "JWT_AUDIENCE"),
        jwt_leeway: number::<u64>(raw, "JWT_LEEWAY_SECS", 0, 0)?,
        rate_limit_burst,
        rate_limit_per_minute,
        presence_ttl: Duration::from_millis(number::<u64>(raw, "PRESENCE_TTL_MS", 15_000, 300)?),
        job_queue_capacity: number::<usize>(raw, "JOB_QUEUE_CAPACITY", 1024, 1)?,
        job_claim_idle: Duration::from_millis(number::<u64>(
            raw,
            "JOB_CLAIM_IDLE_MS",
            30_000,
            100,
        )?),
        example_worker: dev || flag_bool(raw, "EXAMPLE_WORKER")?,
        example_worker_delay: Duration::from_millis(number::<u64>(
            raw,
            "EXAMPLE_WORKER_DELAY_MS",
            120,
            0,
        )?),
        worker_concurrency: number::<usize>(raw, "WORKER_CONCURRENCY", 4, 1)?,
        shutdown_grace: Duration::from_millis(number::<u64>(raw, "SHUTDOWN_GRACE_MS", 5000, 0)?),
        client_dir: non_empty(raw, "CLIENT_DIR").map_or_else(default_client_dir, PathBuf::from),
        log_format,
        log_level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str], env: &[(&str, &str)]) -> Result<Config, Error> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        match parse(args.iter().copied(), |k| env.get(k).cloned())? {
            Command::Serve(config) => Ok(*config),
            other => panic!("not serve: {other:?}"),
        }
    }

    fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
        match serve(args, env) {
            Err(err) => err.to_string(),
            Ok(config) => panic!("accepted: {config:?}"),
        }
    }

    const SECRET: (&str, &str) = ("JWT_SECRET", "0123456789abcdef0123456789abcdef");

    #[test]
    fn defaults() {
        let c = serve(&[], &[SECRET]).unwrap();
        assert_eq!(c.port, 4000);
        assert_eq!(c.host, IpAddr::from([0, 0, 0, 0]));
        assert_eq!(c.redis_url, None);
        assert_eq!(c.frontend_origin, None);
        assert_eq!(c.rate_limit_burst, 5);
        assert!(!c.example_worker);
        assert!(!c.dev_tokens());
        let c = Config::for_secret(b"x");
        assert_eq!(c.port, 0);
    }

    #[test]
    fn flags_win_over_env_and_take_both_forms() {
        let c = serve(
            &["--port", "5000", "--host=127.0.0.1"],
            &[SECRET, ("PORT", "1")],
        )
        .unwrap();
        assert_eq!(c.port, 5000);
        assert_eq!(c.host, IpAddr::from([127, 0, 0, 1]));
        let c = serve(&["serve", "--dev"], &[]).unwrap();
        assert!(c.dev && c.example_worker && c.dev_tokens());
        assert!(matches!(c.jwt_key, JwtKey::DevSecret(ref s) if s.len() == 32));
    }

    #[test]
    fn bad_values_name_the_setting() {
        assert!(refused(&["--port", "x"], &[SECRET]).starts_with("PORT:"));
        assert!(refused(&[], &[SECRET, ("PORT", "70000")]).starts_with("PORT:"));
        assert!(refused(&[], &[SECRET, ("HOST", "nope")]).starts_with("HOST:"));
        assert!(refused(&[], &[SECRET, ("ADAPTER", "x")]).starts_with("ADAPTER:"));
        assert!(refused(&[], &[SECRET, ("LOG_FORMAT", "xml")]).starts_with("LOG_FORMAT:"));
        assert!(refused(&[], &[SECRET, ("DISABLE_REDIS", "maybe")]).starts_with("DISABLE_REDIS:"));
        assert!(
            refused(&[], &[SECRET, ("RATE_LIMIT_BURST", "0")]).starts_with("RATE_LIMIT_BURST:")
        );
        assert!(
            refused(&[], &[SECRET, ("FRONTEND_ORIGIN", "http://a.example/path")])
                .starts_with("FRONTEND_ORIGIN:")
        );
        assert!(refused(&[], &[SECRET, ("REDIS_URL", "http://x")]).starts_with("REDIS_URL:"));
        assert!(
            refused(&[], &[SECRET, ("JOB_CLAIM_IDLE_MS", "10")]).starts_with("JOB_CLAIM_IDLE_MS:")
        );
        assert!(refused(&[], &[("JWT_SECRET", "short")]).starts_with("JWT_SECRET:"));
        assert!(refused(&["--bogus"], &[SECRET]).contains("--bogus"));
        assert!(refused(&["--port"], &[SECRET]).starts_with("PORT:"));
    }

    #[test]
    fn no_jwt_configuration_is_refused_without_dev() {
        let msg = refused(&[], &[]);
        assert!(
            msg.starts_with("JWT_SECRET:") && msg.contains("--dev"),
            "{msg}"
        );
        assert!(refused(&[], &[SECRET, ("JWT_PUBLIC_KEY_FILE", "/x")]).contains("not both"));
        assert!(
            refused(&[], &[("JWT_PUBLIC_KEY_FILE", "/nonexistent")])
                .starts_with("JWT_PUBLIC_KEY_FILE:")
        );
    }

    #[test]
    fn origins_and_redis() {
        let c = serve(
            &[],
            &[
                SECRET,
                (
                    "FRONTEND_ORIGIN",
                    "http://a.example, https://b.example:8443",
                ),
                ("REDIS_URL", "redis://127.0.0.1:6379"),
            ],
        )
        .unwrap();
        assert_eq!(
            c.frontend_origin,
            Some(Origins::List(vec![
                "http://a.example".into(),
                "https://b.example:8443".into()
            ]))
        );
        assert_eq!(c.redis_url.as_deref(), Some("redis://127.0.0.1:6379"));
        let c = serve(
            &["--disable-redis"],
            &[SECRET, ("REDIS_URL", "redis://127.0.0.1:6379")],
        )
        .unwrap();
        assert_eq!(c.redis_url, None);
    }

    #[test]
    fn help_lists_every_setting_with_its_default() {
        let help = help();
        for spec in SPECS {
            assert!(
                help.contains(spec.env) && help.contains(&spec.flag()),
                "{}",
                spec.env
            );
        }
        assert!(help.contains("[default: 4000]"));
        assert_eq!(parse(["--help"], |_| None).unwrap(), Command::Help);
        assert_eq!(parse(["events-ts"], |_| None).unwrap(), Command::EventsTs);
        assert!(matches!(
            parse(["worker", "--example"], |_| None),
            Ok(Command::Worker(_))
        ));
        assert!(parse(["worker"], |_| None).is_err());
    }
}
