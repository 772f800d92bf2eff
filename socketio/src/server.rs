//! The Socket.IO server (Node's `Server`): namespaces over an Engine.IO engine.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};

use engineio::{CloseReason, Engine, Message, ResponseBody};
use http::{Request, Response};
use http_body::Body;
use tokio::net::TcpListener;

use crate::Value;
use crate::adapter::{Adapter, Room};
use crate::client::Client;
use crate::config::Config;
use crate::connect_timeout::ConnectTimeouts;
use crate::namespace::{AdapterFactory, HandlerSet, Namespace, ParentNamespace};
use crate::operator::BroadcastOperator;
use crate::parser::json::ParserLimits;
use crate::reason::DisconnectReason;

/// A Socket.IO server. Cheap to clone.
#[derive(Clone)]
pub struct SocketIo {
    inner: Arc<ServerInner>,
    engine: Engine<EngineHandler>,
}

impl std::fmt::Debug for SocketIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIo")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct ServerInner {
    pub(crate) config: Config,
    namespaces: RwLock<HashMap<String, Namespace>>,
    parents: RwLock<Vec<ParentNamespace>>,
    factory: AdapterFactory,
    pub(crate) connect_timeouts: Arc<ConnectTimeouts>,
}

/// The engine's handler: hands each connection to a Socket.IO [`Client`].
pub struct EngineHandler {
    inner: Arc<ServerInner>,
}

impl engineio::Handler for EngineHandler {
    type Conn = Client;

    fn on_open(&self, socket: &engineio::Socket) -> Client {
        Client::new(&self.inner, socket)
    }

    fn on_message(&self, client: &mut Client, _: &engineio::Socket, message: Message) {
        client.on_message(&self.inner, message);
    }

    fn on_close(&self, client: Client, _: &engineio::Socket, reason: CloseReason) {
        client.shared.close_sockets(DisconnectReason::from(reason));
    }
}

fn normalize(name: &str) -> String {
    if name.starts_with('/') {
        name.to_owned()
    } else {
        format!("/{name}")
    }
}

impl ServerInner {
    pub(crate) fn parser_limits(&self) -> ParserLimits {
        ParserLimits {
            max_attachments: self.config.max_attachments,
            max_buffered_bytes: self.config.engine.max_payload,
        }
    }

    fn namespaces(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Namespace>> {
        self.namespaces
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn create(&self, name: &str, handlers: Arc<HandlerSet>) -> Namespace {
        let mut namespaces = self
            .namespaces
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        namespaces
            .entry(name.to_owned())
            .or_insert_with(|| {
                Namespace::new(
                    name.to_owned(),
                    handlers,
                    self.config.parser,
                    self.config.recovery,
                    &self.factory,
                )
            })
            .clone()
    }

    /// The namespace a CONNECT names: a static one, or a child of the first dynamic parent
    /// that accepts it (`notes/protocol.md` 2.7).
    pub(crate) fn namespace_for(&self, name: &str, auth: &Value) -> Option<Namespace> {
        if let Some(ns) = self.namespaces().get(name) {
            return Some(ns.clone());
        }
        let parents = self
            .parents
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let parent = parents.iter().find(|p| (p.matcher)(name, auth))?;
        if self.namespaces().len() >= self.config.max_dynamic_namespaces {
            tracing::warn!(name, "too many namespaces: dynamic namespace refused");
            return None;
        }
        Some(self.create(name, parent.handlers.clone()))
    }
}

impl SocketIo {
    /// A server with the in-memory adapter.
    pub fn new(config: Config) -> Self {
        Self::with_adapter(config, Arc::new(|_: &str, local| local as Arc<dyn Adapter>))
    }

    /// A server whose namespaces get their adapter from `factory` (a cluster adapter wraps the
    /// local one it is given).
    pub fn with_adapter(config: Config, factory: AdapterFactory) -> Self {
        let engine_config = config.engine.clone();
        let inner = Arc::new(ServerInner {
            config,
            namespaces: RwLock::new(HashMap::new()),
            parents: RwLock::new(Vec::new()),
            factory,
            connect_timeouts: Arc::default(),
        });
        let engine = Engine::new(
            engine_config,
            EngineHandler {
                inner: inner.clone(),
            },
        );
        let io = Self { inner, engine };
        io.of("/");
        io
    }

    /// The options.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The namespace `name`, created if needed (`io.of(name)`).
    pub fn of(&self, name: &str) -> Namespace {
        let name = normalize(name);
        if let Some(ns) = self.inner.namespaces().get(&name) {
            return ns.clone();
        }
        self.inner.create(&name, Arc::default())
    }

    /// A dynamic parent: a CONNECT to an unknown namespace whose name (and auth) `matcher`
    /// accepts creates a child sharing the parent's handlers (`io.of(regex or fn)`).
    pub fn of_dynamic(
        &self,
        matcher: impl Fn(&str, &Value) -> bool + Send + Sync + 'static,
    ) -> ParentNamespace {
        let parent = ParentNamespace {
            matcher: Arc::new(matcher),
            handlers: Arc::default(),
        };
        self.inner
            .parents
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(parent.clone());
        parent
    }

    /// An existing namespace.
    pub fn namespace(&self, name: &str) -> Option<Namespace> {
        self.inner.namespaces().get(&normalize(name)).cloned()
    }

    /// Every namespace.
    pub fn namespaces(&self) -> Vec<Namespace> {
        self.inner.namespaces().values().cloned().collect()
    }

    /// The main namespace's operators.
    pub fn to<R: Into<Room>>(&self, rooms: impl IntoIterator<Item = R>) -> BroadcastOperator {
        self.of("/").to(rooms)
    }

    /// Emits to every socket of the main namespace.
    pub fn emit(&self, event: &str, args: Vec<Value>) -> Result<(), crate::Error> {
        self.of("/").emit(event, args)
    }

    /// The Engine.IO engine.
    pub fn engine(&self) -> &Engine<EngineHandler> {
        &self.engine
    }

    /// Answers one HTTP request (for mounting in a hyper or axum application; check
    /// [`Engine::matches`] on the path first).
    pub async fn handle<B>(&self, req: Request<B>) -> Response<ResponseBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
    {
        self.engine.handle(req).await
    }

    /// Serves on `listener` until `shutdown` completes, then closes every connection.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let served = self.engine.serve(listener, shutdown).await;
        self.close();
        served
    }

    /// Closes the server: every socket leaves with `server shutting down`, then every
    /// connection closes.
    pub fn close(&self) {
        for ns in self.namespaces() {
            for socket in ns.sockets() {
                socket.close_with(DisconnectReason::ServerShuttingDown, false);
            }
        }
        self.engine.shutdown();
    }
}
