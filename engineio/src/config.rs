//! Server options, with Node's names and defaults (engine.io 6.6 `ServerOptions`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::packet::Frame;
use crate::request::RequestInfo;

/// Engine.IO server options. Every input size has a limit here (DESIGN.md rule 2).
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// Request path prefix, with the trailing slash (`path`, default `/engine.io/`).
    pub path: String,
    /// `pingInterval` (default 25 s).
    pub ping_interval: Duration,
    /// `pingTimeout` (default 20 s).
    pub ping_timeout: Duration,
    /// `upgradeTimeout`: how long an upgrade may take before the probe WebSocket is closed
    /// (default 10 s).
    pub upgrade_timeout: Duration,
    /// `maxHttpBufferSize`: the largest POST body and WebSocket message, advertised to clients
    /// as `maxPayload` (default 1 MB).
    pub max_payload: usize,
    /// `httpRequestBodyTimeout`: a POST body must arrive within this (default 30 s) → 408.
    pub http_request_body_timeout: Duration,
    /// `maxBufferedChunks`: a POST body split into more chunks is refused → 413 (default 10 000).
    pub max_buffered_chunks: usize,
    /// `transports` (default both).
    pub transports: Transports,
    /// `allowUpgrades` (default true).
    pub allow_upgrades: bool,
    /// `cors`: off by default (CVE-2020-28481).
    pub cors: Option<Cors>,
    /// `allowRequest`: a hook that can refuse a handshake or upgrade (403, code 4).
    pub allow_request: Option<AllowRequest>,
    /// `cookie`: off by default; when set, the handshake response sets `<name>=<sid>`.
    pub cookie: Option<Cookie>,
    /// `initialPacket`: a message sent right after the open packet.
    pub initial_packet: Option<Frame>,
    /// `httpCompression` for polling responses (default on, threshold 1024 bytes).
    pub http_compression: Option<HttpCompression>,
    /// Bytes a connection may hold in its outbound queue. Above it, volatile messages are
    /// dropped and other messages close the connection (`transport error`): a client that
    /// stopped reading is cut, never silently starved. Default 16 MiB.
    pub max_buffered_bytes: usize,
    /// How long a server-closed polling session waits for the client's next GET to hand it the
    /// queued packets and the close packet (Node: 30 s).
    pub close_poll_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            path: "/engine.io/".to_owned(),
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_payload: 1_000_000,
            http_request_body_timeout: Duration::from_millis(30_000),
            max_buffered_chunks: 10_000,
            transports: Transports::default(),
            allow_upgrades: true,
            cors: None,
            allow_request: None,
            cookie: None,
            initial_packet: None,
            http_compression: Some(HttpCompression::default()),
            max_buffered_bytes: 16 << 20,
            close_poll_timeout: Duration::from_millis(30_000),
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("path", &self.path)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("max_payload", &self.max_payload)
            .field("transports", &self.transports)
            .field("allow_upgrades", &self.allow_upgrades)
            .field("cors", &self.cors)
            .field("allow_request", &self.allow_request.is_some())
            .field("cookie", &self.cookie)
            .field("http_compression", &self.http_compression)
            .finish_non_exhaustive()
    }
}

/// Which transports are enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transports {
    /// HTTP long-polling.
    pub polling: bool,
    /// WebSocket.
    pub websocket: bool,
}

impl Default for Transports {
    fn default() -> Self {
        Self {
            polling: true,
            websocket: true,
        }
    }
}

impl Transports {
    /// Parses Node's list form: `polling,websocket`, `polling` or `websocket`.
    pub fn parse(list: &str) -> Option<Self> {
        let mut t = Self {
            polling: false,
            websocket: false,
        };
        for name in list.split(',').map(str::trim) {
            match name {
                "polling" => t.polling = true,
                "websocket" => t.websocket = true,
                _ => return None,
            }
        }
        (t.polling || t.websocket).then_some(t)
    }
}

/// CORS settings, as the `cors` npm package applies them to every Engine.IO HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cors {
    /// Allowed origin.
    pub origin: CorsOrigin,
    /// `Access-Control-Allow-Credentials: true`.
    pub credentials: bool,
}

impl Cors {
    /// CORS allowing `origin` (`*` for any), without credentials.
    pub fn new(origin: CorsOrigin) -> Self {
        Self {
            origin,
            credentials: false,
        }
    }
}

/// The `origin` setting of CORS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigin {
    /// `*`.
    Any,
    /// This one origin, whatever the request's (the `cors` package with a string).
    Exact(String),
    /// The request's own origin, reflected (the `cors` package's `origin: true`).
    Reflect,
    /// The request's origin if it is one of these.
    List(Vec<String>),
}

/// The sticky-session cookie set on the handshake response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cookie {
    /// Cookie name (Node: `io`).
    pub name: String,
    /// `Path` (Node: `/`).
    pub path: String,
    /// `HttpOnly` (Node: true).
    pub http_only: bool,
    /// `SameSite` (Node: `Lax`).
    pub same_site: String,
}

impl Default for Cookie {
    fn default() -> Self {
        Self {
            name: "io".to_owned(),
            path: "/".to_owned(),
            http_only: true,
            same_site: "Lax".to_owned(),
        }
    }
}

/// Polling response compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpCompression {
    /// Bodies shorter than this are sent as is (Node: 1024).
    pub threshold: usize,
}

impl Default for HttpCompression {
    fn default() -> Self {
        Self { threshold: 1024 }
    }
}

/// The `allowRequest` hook: `Err(message)` refuses the handshake or upgrade with 403 code 4
/// (on WebSocket: a plain 400, as Node).
#[derive(Clone)]
pub struct AllowRequest(pub(crate) Arc<AllowFn>);

type AllowFn = dyn Fn(&RequestInfo) -> Result<(), String> + Send + Sync;

impl AllowRequest {
    /// Wraps a check of the request.
    pub fn new(f: impl Fn(&RequestInfo) -> Result<(), String> + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}
