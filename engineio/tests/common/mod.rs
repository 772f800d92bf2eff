//! Helpers shared by the engineio integration tests: a handler that records what happens, a
//! server on `127.0.0.1:0`, and small polling (hyper client) and WebSocket (tokio-tungstenite)
//! clients. Every wait has a generous bound, so a broken server fails a test instead of hanging
//! it.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use engineio::{CloseReason, Config, Engine, Frame, Handler, Message, Socket};
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The bound on any single wait: far above what a healthy server needs.
pub const WAIT: Duration = Duration::from_secs(5);

/// The record separator of polling payloads.
pub const SEP: char = '\x1e';

/// Awaits `fut`, failing the test if it takes longer than [`WAIT`].
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {WAIT:?}: {what}"),
    }
}

/// Options with no heartbeat traffic during a test (pings would interleave with the packets
/// a test looks at) and a short wait for the last GET of a server-closed polling session.
pub fn quiet_config() -> Config {
    let mut config = Config::default();
    config.ping_interval = Duration::from_secs(20);
    config.ping_timeout = Duration::from_secs(20);
    config.close_poll_timeout = Duration::from_secs(2);
    config
}

// ---------------------------------------------------------------------------------------------
// The recording handler
// ---------------------------------------------------------------------------------------------

/// What the handler saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Open(String),
    Message(String, Message),
    /// The sid comes from the per-connection state `Conn`, so a close reported with the wrong
    /// state would not match its session.
    Close(String, CloseReason),
}

/// Records every call; with `echo`, sends each message back.
#[derive(Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
    sockets: Mutex<Vec<Socket>>,
    echo: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn echo() -> Self {
        Self {
            echo: true,
            ..Self::default()
        }
    }

    pub fn events(&self) -> Vec<Event> {
        lock(&self.events).clone()
    }

    /// The handle the handler got for session `sid`.
    pub fn socket(&self, sid: &str) -> Socket {
        lock(&self.sockets)
            .iter()
            .find(|s| s.id() == sid)
            .cloned()
            .unwrap_or_else(|| panic!("no socket opened with sid {sid}"))
    }

    pub fn opens(&self, sid: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| matches!(e, Event::Open(s) if s == sid))
            .count()
    }

    pub fn open_count(&self) -> usize {
        self.events()
            .iter()
            .filter(|e| matches!(e, Event::Open(_)))
            .count()
    }

    pub fn messages(&self, sid: &str) -> Vec<Message> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Message(s, m) if s == sid => Some(m),
                _ => None,
            })
            .collect()
    }

    pub fn closes(&self, sid: &str) -> Vec<CloseReason> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Close(s, r) if s == sid => Some(r),
                _ => None,
            })
            .collect()
    }

    /// Waits until `cond` holds for the events seen so far.
    pub async fn wait_for(&self, what: &str, cond: impl Fn(&[Event]) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if cond(&self.events()) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for {what}; events: {:?}",
                self.events()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits for session `sid` to close and returns the reason.
    pub async fn wait_close(&self, sid: &str) -> CloseReason {
        self.wait_for(&format!("on_close of {sid}"), |events| {
            events
                .iter()
                .any(|e| matches!(e, Event::Close(s, _) if s == sid))
        })
        .await;
        self.closes(sid)[0]
    }

    /// Waits for `n` messages on session `sid`.
    pub async fn wait_messages(&self, sid: &str, n: usize) -> Vec<Message> {
        self.wait_for(&format!("{n} messages on {sid}"), |events| {
            events
                .iter()
                .filter(|e| matches!(e, Event::Message(s, _) if s == sid))
                .count()
                >= n
        })
        .await;
        self.messages(sid)
    }
}

impl Handler for Recorder {
    type Conn = String;

    fn on_open(&self, socket: &Socket) -> String {
        lock(&self.sockets).push(socket.clone());
        lock(&self.events).push(Event::Open(socket.id().to_owned()));
        socket.id().to_owned()
    }

    fn on_message(&self, conn: &mut String, socket: &Socket, message: Message) {
        lock(&self.events).push(Event::Message(conn.clone(), message.clone()));
        if self.echo {
            let _ = socket.send(match message {
                Message::Text(text) => Frame::text(&*text),
                Message::Binary(data) => Frame::binary(data),
            });
        }
    }

    fn on_close(&self, conn: String, _socket: &Socket, reason: CloseReason) {
        lock(&self.events).push(Event::Close(conn, reason));
    }
}

pub fn text(s: &str) -> Message {
    Message::Text(engineio::Str::from(s))
}

pub fn binary(data: &[u8]) -> Message {
    Message::Binary(Bytes::copy_from_slice(data))
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

/// An engine served by [`Engine::serve`] on a fresh port.
pub struct Server<H: Handler> {
    pub engine: Engine<H>,
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

pub async fn serve<H: Handler>(config: Config, handler: H) -> Server<H> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    let engine = Engine::new(config, handler);
    let (tx, rx) = oneshot::channel::<()>();
    let served = engine.clone();
    let task = tokio::spawn(async move {
        served
            .serve(listener, async {
                let _ = rx.await;
            })
            .await
    });
    Server {
        engine,
        addr,
        shutdown: Some(tx),
        task: Some(task),
    }
}

impl<H: Handler> Server<H> {
    pub fn handler(&self) -> &H {
        self.engine.handler()
    }

    pub fn http(&self) -> Http {
        Http::new(self.addr, &self.engine.config().path)
    }

    /// `ws://` URL of the engine with this query.
    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}{}?{query}", self.addr, self.engine.config().path)
    }

    /// Completes the shutdown future given to `serve` and waits for `serve` to return.
    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let task = self.task.take().expect("server already shut down");
        within("serve to return", task)
            .await
            .expect("serve panicked")
    }

    /// Waits until the engine holds `n` sessions.
    pub async fn wait_clients(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.engine.clients_count() != n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "clients_count stayed {} (wanted {n})",
                self.engine.clients_count()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP (polling)
// ---------------------------------------------------------------------------------------------

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("body is not UTF-8")
    }

    /// The packets of a polling payload.
    pub fn packets(&self) -> Vec<String> {
        self.text().split(SEP).map(str::to_owned).collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("header is not visible ASCII"))
    }
}

/// An HTTP/1.1 client for one engine path.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Http {
    pub fn new(addr: SocketAddr, path: &str) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{addr}{path}"),
        }
    }

    pub async fn request(
        &self,
        method: Method,
        query: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Resp {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}?{query}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("valid request");
        within(&format!("response to {query}"), async {
            let res = self.client.request(req).await.expect("HTTP request failed");
            let (parts, body) = res.into_parts();
            Resp {
                status: parts.status,
                headers: parts.headers,
                body: body.collect().await.expect("response body").to_bytes(),
            }
        })
        .await
    }

    pub async fn get(&self, query: &str) -> Resp {
        self.request(Method::GET, query, &[], "").await
    }

    pub async fn get_with(&self, query: &str, headers: &[(&str, &str)]) -> Resp {
        self.request(Method::GET, query, headers, "").await
    }

    pub async fn post(&self, query: &str, body: &str) -> Resp {
        self.request(Method::POST, query, &[], body).await
    }
}

/// The sid in an open packet `0{...}`.
pub fn open_sid(open: &str) -> String {
    let json = open
        .strip_prefix('0')
        .unwrap_or_else(|| panic!("not an open packet: {open}"));
    let value: serde_json::Value = serde_json::from_str(json).expect("open packet JSON");
    value["sid"]
        .as_str()
        .expect("sid in the open packet")
        .to_owned()
}

/// A polling session.
pub struct Polling {
    pub http: Http,
    pub sid: String,
    /// The handshake response.
    pub handshake: Resp,
}

impl Polling {
    /// Opens a session with a polling handshake (`extra` is appended to the query).
    pub async fn open(http: &Http, extra: &str) -> Self {
        Self::open_with(http, extra, &[]).await
    }

    pub async fn open_with(http: &Http, extra: &str, headers: &[(&str, &str)]) -> Self {
        let handshake = http
            .get_with(&format!("EIO=4&transport=polling{extra}"), headers)
            .await;
        assert_eq!(handshake.status, StatusCode::OK, "{:?}", handshake.body);
        let sid = open_sid(&handshake.packets()[0]);
        Self {
            http: http.clone(),
            sid,
            handshake,
        }
    }

    pub fn query(&self) -> String {
        format!("EIO=4&transport=polling&sid={}", self.sid)
    }

    /// One GET, whatever its status.
    pub async fn get(&self) -> Resp {
        self.http.get(&self.query()).await
    }

    /// One GET that must succeed; its packets.
    pub async fn poll(&self) -> Vec<String> {
        let res = self.get().await;
        assert_eq!(res.status, StatusCode::OK, "GET failed: {:?}", res.body);
        res.packets()
    }

    /// A GET in the background.
    pub fn spawn_poll(&self) -> JoinHandle<Resp> {
        let http = self.http.clone();
        let query = self.query();
        tokio::spawn(async move { http.get(&query).await })
    }

    /// One POST, whatever its status.
    pub async fn post(&self, payload: &str) -> Resp {
        self.http.post(&self.query(), payload).await
    }

    /// One POST that must be answered `ok`.
    pub async fn send(&self, payload: &str) {
        let res = self.post(payload).await;
        assert_eq!(res.status, StatusCode::OK, "POST failed: {:?}", res.body);
        assert_eq!(res.text(), "ok");
    }
}

// ---------------------------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------------------------

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub type WsResponse = tokio_tungstenite::tungstenite::handshake::client::Response;

pub async fn ws_connect(url: &str) -> Result<(Ws, WsResponse), WsError> {
    ws_connect_with(url, &[]).await
}

pub async fn ws_connect_with(
    url: &str,
    headers: &[(&'static str, &str)],
) -> Result<(Ws, WsResponse), WsError> {
    let mut req = url.into_client_request().expect("valid ws URL");
    for (name, value) in headers {
        req.headers_mut()
            .insert(*name, value.parse().expect("header value"));
    }
    within(
        &format!("WebSocket handshake {url}"),
        tokio_tungstenite::connect_async(req),
    )
    .await
}

/// A WebSocket-only session: connects and reads the open packet.
pub async fn ws_open(url: &str) -> (Ws, String) {
    let (mut ws, res) = ws_connect(url).await.expect("WebSocket handshake");
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    let open = ws_text(&mut ws).await;
    let sid = open_sid(&open);
    (ws, sid)
}

/// The next data frame (text or binary) or close frame; WebSocket-level pings are skipped.
pub async fn ws_recv(ws: &mut Ws) -> WsMessage {
    within("a WebSocket frame", async {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                Some(Ok(msg)) => return msg,
                other => panic!("WebSocket ended while a frame was expected: {other:?}"),
            }
        }
    })
    .await
}

/// The next frame, which must be text.
pub async fn ws_text(ws: &mut Ws) -> String {
    match ws_recv(ws).await {
        WsMessage::Text(text) => text.as_str().to_owned(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

pub async fn ws_send(ws: &mut Ws, text: &str) {
    within(
        "WebSocket send",
        ws.send(WsMessage::Text(text.to_owned().into())),
    )
    .await
    .expect("WebSocket send");
}

/// Waits for the server to end the WebSocket; returns its close frame (if it sent one).
/// Data frames still in flight are returned as well, in order.
pub async fn ws_until_closed(ws: &mut Ws) -> (Vec<WsMessage>, Option<CloseFrame>) {
    within("the server to close the WebSocket", async {
        let mut data = Vec::new();
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Close(frame))) => return (data, frame),
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                Some(Ok(msg)) => data.push(msg),
                None | Some(Err(_)) => return (data, None),
            }
        }
    })
    .await
}

/// Upgrades a polling session to WebSocket the way the official client does: probe, then `5`.
pub async fn upgrade<H: Handler>(server: &Server<H>, polling: &Polling, extra: &str) -> Ws {
    let url = server.ws_url(&format!(
        "EIO=4&transport=websocket&sid={}{extra}",
        polling.sid
    ));
    let (mut ws, res) = ws_connect(&url).await.expect("WebSocket handshake");
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    ws_send(&mut ws, "5").await;
    ws
}
