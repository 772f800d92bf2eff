//! Helpers shared by the socketio integration tests: a real `SocketIo` served on
//! `127.0.0.1:0`, a small raw WebSocket client speaking Engine.IO v4 / Socket.IO v5 by hand
//! (it answers pings by itself), a parser for the packets it reads, and a log handlers write
//! into. Every wait has a bound, so a broken server fails a test instead of hanging it.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use socketio::{Config, SocketIo, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The bound on any single wait: far above what a healthy server needs.
pub const WAIT: Duration = Duration::from_secs(5);

/// Awaits `fut`, failing the test if it takes longer than [`WAIT`].
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {WAIT:?}: {what}"),
    }
}

/// Default options: no heartbeat during a test (the client answers pings anyway).
pub fn config() -> Config {
    Config::default()
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

/// A `SocketIo` serving on `127.0.0.1:0` in a spawned task.
pub struct TestServer {
    pub io: SocketIo,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// Serves `io` on a fresh port.
pub async fn serve(io: SocketIo) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let served = io.clone();
    let task = tokio::spawn(async move {
        served
            .serve(listener, async {
                let _ = rx.await;
            })
            .await
    });
    TestServer {
        io,
        addr,
        stop: Some(tx),
        task: Some(task),
    }
}

impl TestServer {
    /// The WebSocket URL of the server, with extra query parameters (`&a=b`).
    pub fn url(&self, extra_query: &str) -> String {
        format!(
            "ws://{}/socket.io/?EIO=4&transport=websocket{extra_query}",
            self.addr
        )
    }

    /// A client with an open Engine.IO session (no namespace joined yet).
    pub async fn client(&self) -> Client {
        Client::open(&self.url(""), &[]).await
    }

    /// A client with extra query parameters and request headers.
    pub async fn client_with(&self, extra_query: &str, headers: &[(&str, &str)]) -> Client {
        Client::open(&self.url(extra_query), headers).await
    }

    /// A client connected to namespace `nsp`; returns it and its socket id.
    pub async fn joined(&self, nsp: &str) -> (Client, String) {
        let mut client = self.client().await;
        let sid = client.join(nsp).await;
        (client, sid)
    }

    /// The server-side socket `sid` of namespace `nsp`.
    pub fn socket(&self, nsp: &str, sid: &str) -> socketio::Socket {
        self.io
            .namespace(nsp)
            .unwrap_or_else(|| panic!("no namespace {nsp}"))
            .socket(sid)
            .unwrap_or_else(|| panic!("no socket {sid} in {nsp}"))
    }

    /// Waits until the engine counts `n` open sessions (a session is forgotten shortly after
    /// its client saw the close).
    pub async fn wait_clients(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.io.engine().clients_count() != n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {n} sessions, have {}",
                self.io.engine().clients_count()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Stops serving (every connection closes) and waits for `serve` to return.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            within("serve() to return", task).await.unwrap().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The raw client
// ---------------------------------------------------------------------------------------------

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One WebSocket message as the client saw it: Engine.IO text (`42[...]`, with the Engine.IO
/// type digit) or a binary message (an attachment, or a msgpack packet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

impl Frame {
    pub fn text(&self) -> &str {
        match self {
            Self::Text(t) => t,
            Self::Binary(b) => panic!("expected a text frame, got binary {b:?}"),
        }
    }

    pub fn binary(&self) -> &[u8] {
        match self {
            Self::Binary(b) => b,
            Self::Text(t) => panic!("expected a binary frame, got text {t:?}"),
        }
    }
}

/// A raw Engine.IO v4 WebSocket client.
pub struct Client {
    ws: Ws,
    /// The Engine.IO session id from the open packet.
    pub eio_sid: String,
    /// The open packet's JSON.
    pub open: serde_json::Value,
    /// Pings answered so far.
    pub pings: usize,
}

impl Client {
    /// Connects and reads the open packet.
    pub async fn open(url: &str, headers: &[(&str, &str)]) -> Self {
        let mut req = url.into_client_request().unwrap();
        for (name, value) in headers {
            req.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        // TCP_NODELAY: back-to-back small frames must not wait for a delayed ACK (Nagle).
        let (ws, _) = within(
            "WebSocket handshake",
            tokio_tungstenite::connect_async_with_config(req, None, true),
        )
        .await
        .unwrap();
        Self::start(ws).await
    }

    /// Connects with a small, fixed TCP receive buffer (no autotuning), so that a client that
    /// stops reading blocks the server's writes after a few megabytes at most.
    pub async fn open_small_rcvbuf(addr: SocketAddr, rcvbuf: u32) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(rcvbuf).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = within(
            "WebSocket handshake",
            tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)),
        )
        .await
        .unwrap();
        Self::start(ws).await
    }

    async fn start(ws: Ws) -> Self {
        let mut client = Self {
            ws,
            eio_sid: String::new(),
            open: serde_json::Value::Null,
            pings: 0,
        };
        let open = client.recv_raw().await.expect("open packet");
        let text = open.text();
        assert!(
            text.starts_with('0'),
            "expected the open packet, got {text:?}"
        );
        client.open = serde_json::from_str(&text[1..]).unwrap();
        client.eio_sid = client.open["sid"].as_str().unwrap().to_owned();
        client
    }

    /// Sends a text message as is (`42["x"]`: Engine.IO type included).
    pub async fn send(&mut self, text: &str) {
        within(
            "WebSocket send",
            self.ws.send(WsMessage::Text(text.to_owned().into())),
        )
        .await
        .unwrap();
    }

    /// Sends a binary message (an attachment, or a msgpack packet).
    pub async fn send_binary(&mut self, data: &[u8]) {
        within(
            "WebSocket send",
            self.ws.send(WsMessage::Binary(data.to_vec().into())),
        )
        .await
        .unwrap();
    }

    /// The next message, `None` when the connection closed. Pings are answered and skipped;
    /// so are WebSocket control frames.
    async fn recv_raw(&mut self) -> Option<Frame> {
        loop {
            let msg = within("a message from the server", self.ws.next()).await;
            match msg {
                None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => return None,
                Some(Ok(WsMessage::Text(t))) if t.as_str() == "2" => {
                    self.pings += 1;
                    self.send("3").await;
                }
                Some(Ok(WsMessage::Text(t))) => return Some(Frame::Text(t.as_str().to_owned())),
                Some(Ok(WsMessage::Binary(b))) => return Some(Frame::Binary(b.to_vec())),
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next message; fails if the connection closed.
    pub async fn recv(&mut self) -> Frame {
        match self.recv_raw().await {
            Some(frame) => frame,
            None => panic!("the server closed the connection"),
        }
    }

    /// The next message, which must be text.
    pub async fn recv_text(&mut self) -> String {
        self.recv().await.text().to_owned()
    }

    /// The next message, which must be binary.
    pub async fn recv_binary(&mut self) -> Vec<u8> {
        self.recv().await.binary().to_vec()
    }

    /// The next message, parsed as a Socket.IO text packet.
    pub async fn recv_packet(&mut self) -> Pkt {
        parse(&self.recv_text().await)
    }

    /// The next `n` messages.
    pub async fn recv_n(&mut self, n: usize) -> Vec<Frame> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.recv().await);
        }
        out
    }

    /// Connects to a namespace with no auth payload; returns the socket id.
    pub async fn join(&mut self, nsp: &str) -> String {
        self.send(&connect_packet(nsp, None)).await;
        let reply = self.recv_packet().await;
        assert_eq!(
            (reply.kind, reply.nsp.as_str()),
            (0, nsp),
            "CONNECT reply: {reply:?}"
        );
        reply.data.unwrap()["sid"].as_str().unwrap().to_owned()
    }

    /// Connects to a namespace with an auth payload (JSON text); returns the CONNECT reply
    /// data (`{"sid":...}`).
    pub async fn join_with(&mut self, nsp: &str, auth: &str) -> serde_json::Value {
        self.send(&connect_packet(nsp, Some(auth))).await;
        let reply = self.recv_packet().await;
        assert_eq!(
            (reply.kind, reply.nsp.as_str()),
            (0, nsp),
            "CONNECT reply: {reply:?}"
        );
        reply.data.unwrap()
    }

    /// Reads until the server closes the connection; returns what came before.
    pub async fn expect_closed(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(frame) = self.recv_raw().await {
            frames.push(frame);
            assert!(frames.len() < 10_000, "the connection does not close");
        }
        frames
    }

    /// Asserts that nothing but pings arrives for `dur`, and that the connection stays open.
    pub async fn expect_silence(&mut self, dur: Duration) {
        let deadline = tokio::time::Instant::now() + dur;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(WsMessage::Text(t)))) if t.as_str() == "2" => {
                    self.pings += 1;
                    self.send("3").await;
                }
                Ok(Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_)))) => {}
                Ok(other) => panic!("expected silence, got {other:?}"),
            }
        }
    }

    /// Whether the server still answers: a CONNECT to a namespace nobody registered gets
    /// `Invalid namespace` on an open connection.
    pub async fn assert_alive(&mut self) {
        self.send("40/__probe__,").await;
        assert_eq!(
            self.recv_text().await,
            r#"44/__probe__,{"message":"Invalid namespace"}"#
        );
    }

    /// Drops the TCP connection without a WebSocket close handshake.
    pub fn drop_tcp(self) {
        drop(self.ws);
    }

    /// Sends a WebSocket close frame and waits for the server's.
    pub async fn close(mut self) {
        let _ = within("WebSocket close", self.ws.close(None)).await;
        while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, self.ws.next()).await {}
    }
}

/// `40` / `40/nsp,` with an optional JSON auth payload.
pub fn connect_packet(nsp: &str, auth: Option<&str>) -> String {
    let auth = auth.unwrap_or("");
    if nsp == "/" {
        format!("40{auth}")
    } else {
        format!("40{nsp},{auth}")
    }
}

// ---------------------------------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------------------------------

/// A Socket.IO text packet as read from the wire (`4` + Socket.IO packet).
#[derive(Debug, Clone, PartialEq)]
pub struct Pkt {
    pub kind: u8,
    pub attachments: Option<usize>,
    pub nsp: String,
    pub id: Option<u64>,
    pub data: Option<serde_json::Value>,
}

impl Pkt {
    /// The event name of an EVENT.
    pub fn event(&self) -> &str {
        self.data.as_ref().unwrap()[0].as_str().unwrap()
    }

    /// The arguments of an EVENT (after the name).
    pub fn args(&self) -> Vec<serde_json::Value> {
        self.data.as_ref().unwrap().as_array().unwrap()[1..].to_vec()
    }
}

/// Parses an Engine.IO message text carrying a Socket.IO packet (`42/nsp,1["x"]`).
pub fn parse(text: &str) -> Pkt {
    let rest = text
        .strip_prefix('4')
        .unwrap_or_else(|| panic!("not an Engine.IO message: {text:?}"));
    let mut chars = rest.char_indices().peekable();
    let (_, kind) = chars.next().expect("packet type");
    let kind = kind.to_digit(10).expect("packet type digit") as u8;
    let mut pos = 1;
    let mut attachments = None;
    if kind == 5 || kind == 6 {
        let dash = rest[pos..].find('-').expect("attachment count") + pos;
        attachments = Some(rest[pos..dash].parse().unwrap());
        pos = dash + 1;
    }
    let mut nsp = "/".to_owned();
    if rest[pos..].starts_with('/') {
        let end = rest[pos..].find(',').map_or(rest.len(), |i| i + pos);
        nsp = rest[pos..end].to_owned();
        pos = (end + 1).min(rest.len());
    }
    let digits = rest[pos..].bytes().take_while(u8::is_ascii_digit).count();
    let id = (digits > 0).then(|| rest[pos..pos + digits].parse().unwrap());
    pos += digits;
    let data = (pos < rest.len()).then(|| serde_json::from_str(&rest[pos..]).unwrap());
    Pkt {
        kind,
        attachments,
        nsp,
        id,
        data,
    }
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

/// A payload value from JSON.
pub fn val(json: serde_json::Value) -> Value {
    socketio::to_value(&json).unwrap()
}

/// A payload value as JSON (no binary inside).
pub fn json(value: &Value) -> serde_json::Value {
    socketio::from_value(value.clone()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// A log handlers write into
// ---------------------------------------------------------------------------------------------

/// A shared list that handlers push to and tests wait on.
#[derive(Debug)]
pub struct Log<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Log<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Default for Log<T> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<T: Clone + std::fmt::Debug> Log<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&self, item: T) {
        self.0.lock().unwrap().push(item);
    }

    pub fn get(&self) -> Vec<T> {
        self.0.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Waits until `cond` holds for the items so far.
    pub async fn wait_until(&self, what: &str, cond: impl Fn(&[T]) -> bool) -> Vec<T> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let items = self.get();
            if cond(&items) {
                return items;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for {what}; log: {items:?}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Waits for at least `n` items.
    pub async fn wait_len(&self, n: usize) -> Vec<T> {
        self.wait_until(&format!("{n} log entries"), |items| items.len() >= n)
            .await
    }
}
