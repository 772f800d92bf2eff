//! Helpers of the sockeye integration tests: an in-process server on `127.0.0.1:0`, tokens, a
//! small raw Socket.IO v5 client over WebSocket (it answers pings by itself and buffers what it
//! receives, so a test waits for the event it cares about), and an HTTP/1.1 GET. Every wait is
//! bounded so a broken server fails a test instead of hanging it.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod redis;

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value as Json, json};
use sockeye::{Config, Running};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, mpsc};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The bound on any single wait.
pub const WAIT: Duration = Duration::from_secs(5);

/// The HS256 secret of [`config`].
pub const SECRET: &[u8] = b"integration-test-secret-integration-test";

/// Awaits `fut`, failing the test after [`WAIT`].
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {WAIT:?}: {what}"),
    }
}

/// One node with HS256 [`SECRET`] and the example worker pacing at 20 ms.
pub fn config() -> Config {
    let mut config = Config::for_secret(SECRET);
    config.example_worker = true;
    config.example_worker_delay = Duration::from_millis(20);
    // Polling sessions of tests that never poll again would hold a shutdown for the grace.
    config.shutdown_grace = Duration::from_millis(300);
    config
}

/// A server running in this process.
pub struct Server {
    pub running: Option<Running>,
    pub addr: SocketAddr,
}

pub async fn start(config: Config) -> Server {
    let running = sockeye::start(config).await.expect("server starts");
    let addr = running.local_addr();
    Server {
        running: Some(running),
        addr,
    }
}

impl Server {
    pub fn app(&self) -> &sockeye::App {
        &self.running.as_ref().unwrap().app
    }

    /// A client connected as `user`.
    pub async fn user(&self, user: &str) -> Client {
        Client::connect(self.addr, Some(json!({ "token": token(user) })), &[])
            .await
            .unwrap_or_else(|err| panic!("{user} refused: {err}"))
    }

    pub async fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 token of [`SECRET`] with these claims.
pub fn token_with(claims: &Json) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

/// A valid token for `user`, one hour.
pub fn token(user: &str) -> String {
    token_with(&json!({ "sub": user, "exp": now() + 3600 }))
}

/// A key file of `tests/keys/`.
pub fn key_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keys")
        .join(name)
}

// ---------------------------------------------------------------------------------------------
// The raw client
// ---------------------------------------------------------------------------------------------

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Sink = Arc<Mutex<SplitSink<Ws, WsMessage>>>;

/// A Socket.IO packet of the main namespace, as the client saw it.
#[derive(Debug, Clone)]
pub enum Packet {
    Connect(Json),
    ConnectError(Json),
    Event {
        name: String,
        args: Vec<Json>,
    },
    Ack {
        id: u64,
        args: Vec<Json>,
    },
    Disconnect,
    /// Engine.IO close, or the WebSocket ended.
    Closed,
}

/// A raw Engine.IO v4 / Socket.IO v5 client on the main namespace.
pub struct Client {
    sink: Sink,
    rx: mpsc::Receiver<Packet>,
    buffer: VecDeque<Packet>,
    next_ack: u64,
    pub sid: String,
}

fn parse(text: &str) -> Option<Packet> {
    let rest = text.strip_prefix('4')?;
    let (kind, rest) = rest.split_at_checked(1)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (id, data) = rest.split_at(digits);
    let json = || serde_json::from_str::<Json>(data).unwrap_or(Json::Null);
    let array = || match json() {
        Json::Array(items) => items,
        other => vec![other],
    };
    Some(match kind {
        "0" => Packet::Connect(json()),
        "1" => Packet::Disconnect,
        "2" => {
            let mut args = array();
            let name = args.remove(0).as_str().unwrap_or_default().to_owned();
            Packet::Event { name, args }
        }
        "3" => Packet::Ack {
            id: id.parse().ok()?,
            args: array(),
        },
        "4" => Packet::ConnectError(json()),
        _ => return None,
    })
}

impl Client {
    /// Opens the WebSocket (with extra request headers) and reads the Engine.IO open packet.
    pub async fn open(addr: SocketAddr, headers: &[(&str, &str)]) -> Self {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let mut req = url.into_client_request().unwrap();
        for (name, value) in headers {
            req.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let (ws, _) = within(
            "WebSocket handshake",
            tokio_tungstenite::connect_async_with_config(req, None, true),
        )
        .await
        .expect("WebSocket handshake");
        let (sink, mut stream) = ws.split();
        let sink: Sink = Arc::new(Mutex::new(sink));
        let (tx, rx) = mpsc::channel(1024);
        let pinger = sink.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let WsMessage::Text(text) = msg else { continue };
                let text = text.as_str();
                if text == "2" {
                    let _ = pinger.lock().await.send(WsMessage::text("3")).await;
                } else if text.starts_with('1') {
                    break;
                } else if let Some(packet) = parse(text) {
                    if tx.send(packet).await.is_err() {
                        return;
                    }
                }
            }
            let _ = tx.send(Packet::Closed).await;
        });
        let mut client = Self {
            sink,
            rx,
            buffer: VecDeque::new(),
            next_ack: 0,
            sid: String::new(),
        };
        client.sid = String::new();
        client
    }

    /// Connects to the main namespace with `auth` (and handshake headers): `Ok` when accepted,
    /// `Err(data of CONNECT_ERROR)` when refused.
    pub async fn connect(
        addr: SocketAddr,
        auth: Option<Json>,
        headers: &[(&str, &str)],
    ) -> Result<Self, Json> {
        let mut client = Self::open(addr, headers).await;
        let connect = match auth {
            Some(auth) => format!("40{auth}"),
            None => "40".to_owned(),
        };
        client.send_raw(connect).await;
        loop {
            match client.recv().await {
                Packet::Connect(data) => {
                    client.sid = data["sid"].as_str().unwrap_or_default().to_owned();
                    return Ok(client);
                }
                Packet::ConnectError(data) => return Err(data),
                Packet::Closed => return Err(Json::Null),
                _ => {}
            }
        }
    }

    pub async fn send_raw(&self, text: String) {
        self.sink
            .lock()
            .await
            .send(WsMessage::text(text))
            .await
            .expect("send");
    }

    async fn recv(&mut self) -> Packet {
        if let Some(packet) = self.buffer.pop_front() {
            return packet;
        }
        within("a packet", self.rx.recv())
            .await
            .unwrap_or(Packet::Closed)
    }

    /// Emits an event with these arguments, no ack.
    pub async fn emit_args(&self, event: &str, args: &[Json]) {
        let mut data = vec![json!(event)];
        data.extend_from_slice(args);
        self.send_raw(format!("42{}", Json::Array(data))).await;
    }

    /// Emits an event with one payload argument, no ack.
    pub async fn emit(&self, event: &str, payload: Json) {
        self.emit_args(event, &[payload]).await;
    }

    /// Emits with arguments and waits for the ack; its first argument.
    pub async fn ack_args(&mut self, event: &str, args: &[Json]) -> Json {
        let id = self.next_ack;
        self.next_ack += 1;
        let mut data = vec![json!(event)];
        data.extend_from_slice(args);
        self.send_raw(format!("42{id}{}", Json::Array(data))).await;
        let found = self
            .take(
                &format!("ack {id} of {event}"),
                |p| matches!(p, Packet::Ack { id: got, .. } if *got == id),
            )
            .await;
        match found {
            Packet::Ack { mut args, .. } if !args.is_empty() => args.remove(0),
            _ => Json::Null,
        }
    }

    /// Emits one payload and waits for the ack.
    pub async fn ack(&mut self, event: &str, payload: Json) -> Json {
        self.ack_args(event, &[payload]).await
    }

    /// Waits for a packet matching `want`, keeping the others for later.
    async fn take(&mut self, what: &str, want: impl Fn(&Packet) -> bool) -> Packet {
        if let Some(i) = self.buffer.iter().position(&want) {
            return self.buffer.remove(i).unwrap();
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let packet = match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(packet)) => packet,
                Ok(None) => Packet::Closed,
                Err(_) => panic!("timed out waiting for {what}; buffered: {:?}", self.buffer),
            };
            if want(&packet) {
                return packet;
            }
            if let Packet::Closed = packet {
                panic!(
                    "connection closed while waiting for {what}; buffered: {:?}",
                    self.buffer
                );
            }
            self.buffer.push_back(packet);
        }
    }

    /// The first argument of the next event `name`.
    pub async fn event(&mut self, name: &str) -> Json {
        match self
            .take(
                name,
                |p| matches!(p, Packet::Event { name: n, .. } if n == name),
            )
            .await
        {
            Packet::Event { mut args, .. } if !args.is_empty() => args.remove(0),
            _ => Json::Null,
        }
    }

    /// Asserts that no event `name` arrives within `window`.
    pub async fn no_event(&mut self, name: &str, window: Duration) {
        let is = |p: &Packet| matches!(p, Packet::Event { name: n, .. } if n == name);
        assert!(
            !self.buffer.iter().any(is),
            "unexpected {name}: {:?}",
            self.buffer
        );
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(packet)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            assert!(!is(&packet), "unexpected {name}: {packet:?}");
            self.buffer.push_back(packet);
        }
    }

    /// Every buffered and arriving event `name` within `window`.
    pub async fn collect(&mut self, name: &str, window: Duration) -> Vec<Json> {
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(packet)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            self.buffer.push_back(packet);
        }
        let mut out = Vec::new();
        self.buffer.retain(|p| match p {
            Packet::Event { name: n, args } if n == name => {
                out.push(args.first().cloned().unwrap_or(Json::Null));
                false
            }
            _ => true,
        });
        out
    }

    /// Waits until the server ends the socket or the connection.
    pub async fn closed(&mut self) -> Packet {
        self.take("the connection to close", |p| {
            matches!(p, Packet::Closed | Packet::Disconnect)
        })
        .await
    }

    pub async fn close(self) {
        let _ = self.sink.lock().await.close().await;
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/// A response: status, headers, body.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Json {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One HTTP/1.1 request with these headers.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let stream = within("TCP connect", TcpStream::connect(addr))
        .await
        .unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Empty::<Bytes>::new()).unwrap();
    let res = within("HTTP response", sender.send_request(req))
        .await
        .unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = within("HTTP body", res.into_body().collect())
        .await
        .unwrap()
        .to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// `GET path`.
pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[]).await
}
