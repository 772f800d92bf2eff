//! The engine: the session table and the HTTP entry point that validates every request in
//! Node's order (`notes/protocol.md` 1.2) and routes it to its session.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_REQUEST_HEADERS, CONNECTION, CONTENT_TYPE, ORIGIN,
    SET_COOKIE, UPGRADE, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use hyper::upgrade::OnUpgrade;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::body::ResponseBody;
use crate::config::{Config, CorsOrigin};
use crate::driver::{Cmd, Driver};
use crate::error::RequestError;
use crate::handler::Handler;
use crate::packet::Frame;
use crate::request::{RemoteAddr, RequestInfo, parse_query, query_param};
use crate::session::{Session, Timing, TransportKind};
use crate::socket::{Shared, Socket};
use crate::transport::{polling, websocket};

/// An Engine.IO server. Cheap to clone; all clones share the sessions.
pub struct Engine<H: Handler> {
    inner: Arc<EngineInner<H>>,
}

impl<H: Handler> Clone for Engine<H> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

pub(crate) struct EngineInner<H: Handler> {
    pub(crate) config: Config,
    pub(crate) handler: H,
    sessions: Mutex<HashMap<Box<str>, Entry>>,
    /// Set by [`Engine::shutdown`]: `serve` stops accepting.
    stopped: watch::Sender<bool>,
}

/// A live session as the HTTP side reaches it.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) socket: Socket,
}

impl Entry {
    /// Hands a request to the session's task; given back if the session has ended.
    pub(crate) fn send(&self, cmd: Cmd) -> Result<(), Cmd> {
        self.socket.shared.send_cmd(cmd)
    }
}

impl<H: Handler> EngineInner<H> {
    fn sessions(&self) -> MutexGuard<'_, HashMap<Box<str>, Entry>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the engine was shut down: closing sessions then do not wait for clients.
    pub(crate) fn is_stopped(&self) -> bool {
        *self.stopped.borrow()
    }

    pub(crate) fn remove(&self, sid: &str) {
        self.sessions().remove(sid);
    }

    fn get(&self, sid: &str) -> Option<Entry> {
        self.sessions().get(sid).cloned()
    }
}

impl<H: Handler> Engine<H> {
    /// An engine with these options, handing connections to `handler`.
    pub fn new(config: Config, handler: H) -> Self {
        Self {
            inner: Arc::new(EngineInner {
                config,
                handler,
                sessions: Mutex::new(HashMap::new()),
                stopped: watch::Sender::new(false),
            }),
        }
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.inner.handler
    }

    /// The options.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Open sessions (Node's `clientsCount`).
    pub fn clients_count(&self) -> usize {
        self.inner.sessions().len()
    }

    /// Every open session.
    pub fn sockets(&self) -> Vec<Socket> {
        self.inner
            .sessions()
            .values()
            .map(|e| e.socket.clone())
            .collect()
    }

    /// Stops the engine: `serve` accepts no more connections and every session is closed
    /// (Node's `engine.close()` with its HTTP server).
    pub fn shutdown(&self) {
        self.inner.stopped.send_replace(true);
        self.close_all();
    }

    /// Closes every session (`forced close`), sending what each has queued first.
    pub fn close_all(&self) {
        for socket in self.sockets() {
            socket.close();
        }
    }

    /// Whether a request path belongs to the engine (prefix match on `path`, as Node).
    pub fn matches(&self, path: &str) -> bool {
        path.starts_with(self.inner.config.path.as_str())
    }

    /// Answers one HTTP request. Requests outside `path` get 404: an application mounting the
    /// engine checks [`Engine::matches`] first. A peer address can be passed as a
    /// [`RemoteAddr`] extension.
    pub async fn handle<B>(&self, mut req: Request<B>) -> Response<ResponseBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
    {
        if !self.matches(req.uri().path()) {
            return polling::empty(StatusCode::NOT_FOUND);
        }
        let on_upgrade = websocket::is_upgrade(req.headers()).then(|| hyper::upgrade::on(&mut req));
        let (parts, body) = req.into_parts();
        let cors = self.cors_headers(&parts.headers);
        let mut response = match (&cors, &parts.method) {
            (Some(_), &Method::OPTIONS) => preflight(&parts.headers),
            _ => self.route(parts, body, on_upgrade).await,
        };
        if let Some(cors) = cors {
            response.headers_mut().extend(cors);
        }
        response
    }

    async fn route<B>(
        &self,
        parts: http::request::Parts,
        body: B,
        on_upgrade: Option<OnUpgrade>,
    ) -> Response<ResponseBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
    {
        let is_ws = on_upgrade.is_some();
        match self.route_checked(parts, body, on_upgrade).await {
            Ok(response) => response,
            Err(err) => {
                tracing::debug!(
                    code = err.code(),
                    message = err.message(),
                    "request refused"
                );
                err.into_response(is_ws)
            }
        }
    }

    async fn route_checked<B>(
        &self,
        parts: http::request::Parts,
        body: B,
        on_upgrade: Option<OnUpgrade>,
    ) -> Result<Response<ResponseBody>, RequestError>
    where
        B: Body + Send + 'static,
        B::Data: Send,
    {
        let config = &self.inner.config;
        let query = parse_query(parts.uri.query().unwrap_or_default());
        let transport = match query_param(&query, "transport") {
            Some("polling") if config.transports.polling => TransportKind::Polling,
            Some("websocket") if config.transports.websocket => TransportKind::WebSocket,
            _ => return Err(RequestError::UnknownTransport),
        };
        if parts
            .headers
            .get(ORIGIN)
            .is_some_and(|o| !valid_header_chars(o.as_bytes()))
        {
            return Err(RequestError::BadRequest);
        }
        let upgrade = match on_upgrade {
            Some(on_upgrade) if transport == TransportKind::WebSocket => Some(on_upgrade),
            _ => None,
        };
        if let Some(sid) = query_param(&query, "sid") {
            let entry = self.inner.get(sid).ok_or(RequestError::UnknownSid)?;
            // The protocol revision is fixed at the handshake (CVE-2026-102599); Node checks
            // it on every request of the session.
            if query_param(&query, "EIO") != Some("4") {
                return Err(RequestError::BadRequest);
            }
            return match upgrade {
                Some(on_upgrade) => self.upgrade(entry, &parts.headers, on_upgrade),
                None if entry.socket.transport() != transport => Err(RequestError::BadRequest),
                None if transport == TransportKind::WebSocket => Err(RequestError::BadRequest),
                None => Ok(match parts.method {
                    Method::GET => polling::get(&entry, config, &parts.headers).await?,
                    Method::POST => polling::post(&entry, config, &parts.headers, body).await,
                    _ => polling::empty(StatusCode::INTERNAL_SERVER_ERROR),
                }),
            };
        }
        if parts.method != Method::GET {
            return Err(RequestError::BadHandshakeMethod);
        }
        if transport == TransportKind::WebSocket && upgrade.is_none() {
            return Err(RequestError::BadRequest);
        }
        let remote = parts.extensions.get::<RemoteAddr>().map(|r| r.0);
        let info = RequestInfo::new(&parts, remote);
        if let Some(allow) = &config.allow_request {
            (allow.0)(&info).map_err(RequestError::Forbidden)?;
        }
        if query_param(&query, "EIO") != Some("4") {
            return Err(RequestError::UnsupportedProtocolVersion);
        }
        self.handshake(info, upgrade)
    }

    /// Opens a session: the polling response carries the open packet, or the WebSocket's first
    /// frame does.
    fn handshake(
        &self,
        info: RequestInfo,
        upgrade: Option<OnUpgrade>,
    ) -> Result<Response<ResponseBody>, RequestError> {
        let config = &self.inner.config;
        let transport = if upgrade.is_some() {
            TransportKind::WebSocket
        } else {
            TransportKind::Polling
        };
        let accept = match &upgrade {
            Some(_) => Some(websocket::accept_key(&info.headers)?),
            None => None,
        };
        let sid = crate::sid::generate();
        let upgrades: &[&str] = match transport {
            TransportKind::Polling if config.allow_upgrades && config.transports.websocket => {
                &["websocket"]
            }
            _ => &[],
        };
        let open = Frame::control_owned(open_packet(&sid, upgrades, config));
        let headers = info.headers.clone();
        let shared = Arc::new(Shared::new(
            sid.clone(),
            info,
            transport,
            config.max_buffered_bytes,
        ));
        let socket = Socket { shared };
        let timing = Timing {
            ping_interval: config.ping_interval,
            ping_timeout: config.ping_timeout,
            upgrade_timeout: config.upgrade_timeout,
        };
        let session = Session::new(Instant::now(), transport, timing);
        self.inner.sessions().insert(
            sid.clone().into_boxed_str(),
            Entry {
                socket: socket.clone(),
            },
        );
        tracing::debug!(sid = %sid, transport = transport.as_str(), "session opened");
        let driver = Driver::new(self.inner.clone(), socket.clone(), session);
        let mut frames = vec![open];
        frames.extend(config.initial_packet.clone());

        let mut response = match (upgrade, accept) {
            (Some(on_upgrade), Some(accept)) => {
                {
                    let mut queue = socket.shared.queue();
                    for frame in frames {
                        queue.push_control(frame);
                    }
                }
                tokio::spawn(driver.run(Some((on_upgrade, config.max_payload))));
                switching_protocols(&accept)
            }
            _ => {
                tokio::spawn(driver.run(None));
                polling::payload_response(&frames, config, &headers)
            }
        };
        if let Some(cookie) = &config.cookie {
            let mut value = format!("{}={sid}; Path={}", cookie.name, cookie.path);
            if cookie.http_only {
                value.push_str("; HttpOnly");
            }
            if !cookie.same_site.is_empty() {
                value.push_str("; SameSite=");
                value.push_str(&cookie.same_site);
            }
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(SET_COOKIE, value);
            }
        }
        Ok(response)
    }

    /// A WebSocket for an existing session: after the 101 it goes to the session's task,
    /// which probes the upgrade or closes it.
    fn upgrade(
        &self,
        entry: Entry,
        headers: &HeaderMap,
        on_upgrade: OnUpgrade,
    ) -> Result<Response<ResponseBody>, RequestError> {
        let accept = websocket::accept_key(headers)?;
        let max_payload = self.inner.config.max_payload;
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let ws = websocket::WsConn::new(upgraded, max_payload);
                if let Err(Cmd::WebSocket(ws)) = entry.send(Cmd::WebSocket(Box::new(ws))) {
                    websocket::close_later(*ws);
                }
            }
        });
        Ok(switching_protocols(&accept))
    }

    fn cors_headers(&self, headers: &HeaderMap) -> Option<Vec<(HeaderName, HeaderValue)>> {
        let cors = self.inner.config.cors.as_ref()?;
        let mut out = Vec::new();
        let origin = headers.get(ORIGIN);
        match &cors.origin {
            CorsOrigin::Any => {
                out.push((ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")))
            }
            CorsOrigin::Exact(allowed) => {
                if let Ok(v) = HeaderValue::from_str(allowed) {
                    out.push((ACCESS_CONTROL_ALLOW_ORIGIN, v));
                }
                out.push((VARY, HeaderValue::from_static("Origin")));
            }
            CorsOrigin::Reflect | CorsOrigin::List(_) => {
                let allowed = match &cors.origin {
                    CorsOrigin::List(list) => {
                        origin.filter(|o| list.iter().any(|a| a.as_bytes() == o.as_bytes()))
                    }
                    _ => origin,
                };
                if let Some(origin) = allowed {
                    out.push((ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()));
                }
                out.push((VARY, HeaderValue::from_static("Origin")));
            }
        }
        if cors.credentials {
            out.push((
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            ));
        }
        Some(out)
    }

    /// Serves the engine alone on `listener` until `shutdown` completes, then closes every
    /// session.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut stopped = self.inner.stopped.subscribe();
        loop {
            let (stream, addr) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    // Out of descriptors and the like: keep serving the others.
                    Err(err) => {
                        tracing::warn!(%err, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
                () = async {
                    let _ = stopped.wait_for(|stopped| *stopped).await;
                } => break,
            };
            self.serve_connection(stream, addr);
        }
        self.close_all();
        Ok(())
    }

    /// Serves one accepted TCP connection (HTTP/1.1 with upgrades, or HTTP/2).
    pub fn serve_connection(&self, stream: tokio::net::TcpStream, addr: SocketAddr) {
        let _ = stream.set_nodelay(true);
        let engine = self.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(RemoteAddr(addr));
            let engine = engine.clone();
            async move { Ok::<_, Infallible>(engine.handle(req).await) }
        });
        tokio::spawn(async move {
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(err) = builder.serve_connection_with_upgrades(io, service).await {
                tracing::debug!(%err, "http connection error");
            }
        });
    }
}

/// Node's `checkInvalidHeaderChar`: tab, visible ASCII and obs-text only.
fn valid_header_chars(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80)
}

/// `0{"sid":...,"upgrades":[...],"pingInterval":...,"pingTimeout":...,"maxPayload":...}`:
/// exactly Node's five keys, in Node's order.
fn open_packet(sid: &str, upgrades: &[&str], config: &Config) -> String {
    let upgrades = upgrades
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "0{{\"sid\":\"{sid}\",\"upgrades\":[{upgrades}],\"pingInterval\":{},\"pingTimeout\":{},\"maxPayload\":{}}}",
        config.ping_interval.as_millis(),
        config.ping_timeout.as_millis(),
        config.max_payload
    )
}

fn switching_protocols(accept: &str) -> Response<ResponseBody> {
    let mut response = polling::empty(StatusCode::SWITCHING_PROTOCOLS);
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(accept) {
        headers.insert("sec-websocket-accept", accept);
    }
    response
}

/// CORS preflight, as the `cors` package answers it.
fn preflight(headers: &HeaderMap) -> Response<ResponseBody> {
    let mut response = polling::empty(StatusCode::NO_CONTENT);
    let out = response.headers_mut();
    out.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET,HEAD,PUT,PATCH,POST,DELETE"),
    );
    if let Some(requested) = headers.get(ACCESS_CONTROL_REQUEST_HEADERS) {
        out.insert(ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
        out.append(
            VARY,
            HeaderValue::from_static("Access-Control-Request-Headers"),
        );
    }
    out.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    response
}

impl RequestError {
    /// The HTTP answer: JSON `{code, message}` for HTTP requests; for WebSocket upgrade
    /// requests Node writes a raw 400 with the message as `text/html` and drops the socket.
    pub(crate) fn into_response(self, websocket: bool) -> Response<ResponseBody> {
        let (status, content_type, body) = if websocket {
            (
                StatusCode::BAD_REQUEST,
                "text/html",
                self.message().to_owned(),
            )
        } else {
            (self.status(), "application/json", self.body())
        };
        let mut response = Response::new(ResponseBody::from(body));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        if websocket {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}
