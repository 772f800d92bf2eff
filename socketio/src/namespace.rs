//! Namespaces: their handlers, middlewares, sockets and adapter (Node's `Namespace`).
//!
//! Handlers are registered per namespace, not per socket: `ns.on("event", ...)` serves every
//! socket of the namespace. Every handler of one socket runs on that connection's task, in the
//! order the packets arrived (DESIGN.md rule 3), so handlers must not block; they can spawn.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, Weak};
use std::time::Duration;

use crate::Value;
use crate::adapter::{AckResponses, Adapter, LocalAdapter, Room};
use crate::config::{ParserKind, RecoveryConfig};
use crate::error::Error;
use crate::operator::BroadcastOperator;
use crate::packet::Packet;
use crate::reason::DisconnectReason;
use crate::socket::{AckSender, Socket};

/// A namespace middleware's refusal: the client gets `CONNECT_ERROR {message, data}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectError {
    /// `message`.
    pub message: String,
    /// `data`, omitted when `None`.
    pub data: Option<Value>,
}

impl ConnectError {
    /// A refusal with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            data: None,
        }
    }

    /// Adds `data`.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub(crate) fn to_value(&self) -> Value {
        let mut map = vec![(Value::from("message"), Value::from(self.message.as_str()))];
        if let Some(data) = &self.data {
            map.push((Value::from("data"), data.clone()));
        }
        Value::Map(map)
    }
}

type Middleware = Arc<dyn Fn(&Socket) -> Result<(), ConnectError> + Send + Sync>;
type ConnectionHandler = Arc<dyn Fn(&Socket) + Send + Sync>;
type EventHandler = Arc<dyn Fn(&Socket, Vec<Value>, Option<AckSender>) + Send + Sync>;
type AnyHandler = Arc<dyn Fn(&Socket, &str, &[Value]) + Send + Sync>;
type PacketMiddleware = Arc<dyn Fn(&Socket, &str, &[Value]) -> Result<(), String> + Send + Sync>;
type ErrorHandler = Arc<dyn Fn(&Socket, &str) + Send + Sync>;
type DisconnectHandler = Arc<dyn Fn(&Socket, DisconnectReason) + Send + Sync>;
pub(crate) type Matcher = dyn Fn(&str, &Value) -> bool + Send + Sync;
type ServerSideHandler = Arc<dyn Fn(&str, Vec<Value>, Option<ServerAck>) + Send + Sync>;

/// The answer to a server-side emit with ack from another node.
pub struct ServerAck(pub(crate) Box<dyn FnOnce(Vec<Value>) + Send>);

impl ServerAck {
    /// Wraps an answer function (used by cluster adapters).
    pub fn new(f: impl FnOnce(Vec<Value>) + Send + 'static) -> Self {
        Self(Box::new(f))
    }

    /// Answers with these arguments.
    pub fn send(self, args: Vec<Value>) {
        (self.0)(args);
    }
}

impl std::fmt::Debug for ServerAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerAck")
    }
}

/// Everything registered on a namespace (shared by the children of a dynamic parent).
#[derive(Default, Clone)]
pub(crate) struct Handlers {
    middlewares: Vec<Middleware>,
    connection: Vec<ConnectionHandler>,
    events: HashMap<String, EventHandler>,
    any: Vec<AnyHandler>,
    any_outgoing: Vec<AnyHandler>,
    packet_middlewares: Vec<PacketMiddleware>,
    error: Vec<ErrorHandler>,
    disconnecting: Vec<DisconnectHandler>,
    disconnect: Vec<DisconnectHandler>,
    server_side: Vec<ServerSideHandler>,
}

/// Handlers behind a lock taken briefly: registration swaps in a new set, dispatch clones the
/// `Arc`.
#[derive(Default)]
pub(crate) struct HandlerSet(RwLock<Arc<Handlers>>);

impl HandlerSet {
    fn get(&self) -> Arc<Handlers> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut Handlers)) {
        let mut guard = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut handlers = (**guard).clone();
        f(&mut handlers);
        *guard = Arc::new(handlers);
    }
}

/// Registration methods shared by namespaces and dynamic parents.
macro_rules! registration_methods {
    () => {
        /// Adds a namespace middleware; an `Err` refuses the connection.
        pub fn use_middleware(
            &self,
            f: impl Fn(&Socket) -> Result<(), ConnectError> + Send + Sync + 'static,
        ) -> &Self {
            self.handlers().update(|h| h.middlewares.push(Arc::new(f)));
            self
        }

        /// Adds a `connection` handler, run after the CONNECT reply went out.
        pub fn on_connection(&self, f: impl Fn(&Socket) + Send + Sync + 'static) -> &Self {
            self.handlers().update(|h| h.connection.push(Arc::new(f)));
            self
        }

        /// Sets the handler of an event; it gets the arguments and, when the client asked
        /// for one, the ack to answer.
        pub fn on(
            &self,
            event: &str,
            f: impl Fn(&Socket, Vec<Value>, Option<AckSender>) + Send + Sync + 'static,
        ) -> &Self {
            let event = event.to_owned();
            self.handlers().update(move |h| {
                h.events.insert(event, Arc::new(f));
            });
            self
        }

        /// Adds a catch-all listener of incoming events (`onAny`).
        pub fn on_any(&self, f: impl Fn(&Socket, &str, &[Value]) + Send + Sync + 'static) -> &Self {
            self.handlers().update(|h| h.any.push(Arc::new(f)));
            self
        }

        /// Adds a catch-all listener of outgoing events, broadcasts included (`onAnyOutgoing`).
        pub fn on_any_outgoing(
            &self,
            f: impl Fn(&Socket, &str, &[Value]) + Send + Sync + 'static,
        ) -> &Self {
            self.handlers().update(|h| h.any_outgoing.push(Arc::new(f)));
            self
        }

        /// Adds a packet middleware (`socket.use`): an `Err` stops the event and goes to the
        /// `error` handlers; the client is not told.
        pub fn use_packet_middleware(
            &self,
            f: impl Fn(&Socket, &str, &[Value]) -> Result<(), String> + Send + Sync + 'static,
        ) -> &Self {
            self.handlers()
                .update(|h| h.packet_middlewares.push(Arc::new(f)));
            self
        }

        /// Adds an `error` handler (packet middleware refusals).
        pub fn on_error(&self, f: impl Fn(&Socket, &str) + Send + Sync + 'static) -> &Self {
            self.handlers().update(|h| h.error.push(Arc::new(f)));
            self
        }

        /// Adds a `disconnecting` handler: the socket's rooms are still there.
        pub fn on_disconnecting(
            &self,
            f: impl Fn(&Socket, DisconnectReason) + Send + Sync + 'static,
        ) -> &Self {
            self.handlers()
                .update(|h| h.disconnecting.push(Arc::new(f)));
            self
        }

        /// Adds a `disconnect` handler.
        pub fn on_disconnect(
            &self,
            f: impl Fn(&Socket, DisconnectReason) + Send + Sync + 'static,
        ) -> &Self {
            self.handlers().update(|h| h.disconnect.push(Arc::new(f)));
            self
        }

        /// Adds a listener of server-side events from other nodes (`serverSideEmit`); it gets
        /// the event, its arguments and, when the sender waits for one, the answer handle.
        pub fn on_server_side(
            &self,
            f: impl Fn(&str, Vec<Value>, Option<ServerAck>) + Send + Sync + 'static,
        ) -> &Self {
            self.handlers().update(|h| h.server_side.push(Arc::new(f)));
            self
        }
    };
}

/// A namespace. Cheap to clone.
#[derive(Clone)]
pub struct Namespace {
    pub(crate) inner: Arc<NamespaceInner>,
}

pub(crate) struct NamespaceInner {
    name: String,
    handlers: Arc<HandlerSet>,
    sockets: RwLock<foldhash::HashMap<String, Socket>>,
    local: Arc<LocalAdapter>,
    adapter: Arc<dyn Adapter>,
    /// One ack id counter per namespace, as Node.
    ack_ids: AtomicU64,
    parser: ParserKind,
    recovery: Option<RecoveryConfig>,
}

/// Builds the adapter of a namespace around its local adapter.
pub type AdapterFactory = Arc<dyn Fn(&str, Arc<LocalAdapter>) -> Arc<dyn Adapter> + Send + Sync>;

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

impl Namespace {
    pub(crate) fn new(
        name: String,
        handlers: Arc<HandlerSet>,
        parser: ParserKind,
        recovery: Option<RecoveryConfig>,
        factory: &AdapterFactory,
    ) -> Self {
        let inner = Arc::new_cyclic(|weak: &Weak<NamespaceInner>| {
            let local = Arc::new(LocalAdapter::new(weak.clone(), parser, recovery));
            let adapter = factory(&name, local.clone());
            NamespaceInner {
                name,
                handlers,
                sockets: RwLock::new(foldhash::HashMap::default()),
                local,
                adapter,
                ack_ids: AtomicU64::new(0),
                parser,
                recovery,
            }
        });
        Self { inner }
    }

    fn handlers(&self) -> &HandlerSet {
        &self.inner.handlers
    }

    registration_methods!();

    /// The name, starting with `/`.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The adapter.
    pub fn adapter(&self) -> &Arc<dyn Adapter> {
        &self.inner.adapter
    }

    /// The in-memory part of the adapter.
    pub fn local(&self) -> &Arc<LocalAdapter> {
        &self.inner.local
    }

    /// The connected sockets of this node.
    pub fn sockets(&self) -> Vec<Socket> {
        self.sockets_map().values().cloned().collect()
    }

    /// A connected socket of this node.
    pub fn socket(&self, id: &str) -> Option<Socket> {
        self.sockets_map().get(id).cloned()
    }

    pub(crate) fn sockets_map(&self) -> RwLockReadGuard<'_, foldhash::HashMap<String, Socket>> {
        self.inner
            .sockets
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Targets rooms.
    pub fn to<R: Into<Room>>(&self, rooms: impl IntoIterator<Item = R>) -> BroadcastOperator {
        BroadcastOperator::new(self.clone()).to(rooms)
    }

    /// Leaves out rooms.
    pub fn except<R: Into<Room>>(&self, rooms: impl IntoIterator<Item = R>) -> BroadcastOperator {
        BroadcastOperator::new(self.clone()).except(rooms)
    }

    /// Every socket of the namespace, with modifiers to add.
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.clone())
    }

    /// Emits to every socket of the namespace.
    pub fn emit(&self, event: &str, args: Vec<Value>) -> Result<(), Error> {
        self.broadcast().emit(event, args)
    }

    /// Sends an event to the namespace on the other nodes of the cluster (`serverSideEmit`).
    /// A single node has no one to tell: nothing happens.
    pub fn server_side_emit(&self, event: &str, args: Vec<Value>) -> Result<(), Error> {
        self.adapter()
            .server_side_emit(server_side_args(event, args)?);
        Ok(())
    }

    /// `serverSideEmitWithAck`: one answer per other node, or a timeout.
    pub async fn server_side_emit_with_ack(
        &self,
        event: &str,
        args: Vec<Value>,
        timeout: Duration,
    ) -> Result<AckResponses, Error> {
        Ok(self
            .adapter()
            .server_side_emit_with_ack(server_side_args(event, args)?, timeout)
            .await)
    }

    /// Hands a server-side event from another node to the listeners.
    pub fn receive_server_side(&self, event: &str, args: Vec<Value>, ack: Option<ServerAck>) {
        let handlers = self.handlers().get();
        let mut ack = ack;
        for handler in &handlers.server_side {
            handler(event, args.clone(), ack.take());
        }
    }

    pub(crate) fn parser(&self) -> ParserKind {
        self.inner.parser
    }

    pub(crate) fn recovery(&self) -> Option<RecoveryConfig> {
        self.inner.recovery
    }

    /// A fresh ack id of this namespace (one counter per namespace, as Node's `_ids`): a
    /// cluster adapter numbers the packets of another node's broadcast with acks with it.
    pub fn next_ack_id(&self) -> u64 {
        self.inner.ack_ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Runs the middlewares in order; the first refusal wins.
    pub(crate) fn run_middlewares(&self, socket: &Socket) -> Result<(), ConnectError> {
        self.handlers()
            .get()
            .middlewares
            .iter()
            .try_for_each(|mw| mw(socket))
    }

    pub(crate) fn add_socket(&self, socket: &Socket, rooms: &[Room]) {
        self.inner
            .sockets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(socket.id().to_owned(), socket.clone());
        let mut all = Vec::with_capacity(rooms.len() + 1);
        all.push(socket.id().to_owned());
        all.extend(rooms.iter().cloned());
        self.adapter().add_all(socket.id(), &all);
        socket.set_connected();
    }

    pub(crate) fn remove_socket(&self, socket: &Socket) {
        self.adapter().del_all(socket.id());
        self.inner
            .sockets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(socket.id());
    }

    pub(crate) fn run_connection(&self, socket: &Socket) {
        for handler in &self.handlers().get().connection {
            handler(socket);
        }
    }

    /// An EVENT from the client: `onAny` listeners, packet middlewares, then the handler.
    pub(crate) fn dispatch_event(
        &self,
        socket: &Socket,
        event: &str,
        args: Vec<Value>,
        ack: Option<AckSender>,
    ) {
        let handlers = self.handlers().get();
        for any in &handlers.any {
            any(socket, event, &args);
        }
        for mw in &handlers.packet_middlewares {
            if let Err(err) = mw(socket, event, &args) {
                for on_error in &handlers.error {
                    on_error(socket, &err);
                }
                return;
            }
        }
        match handlers.events.get(event) {
            Some(handler) => handler(socket, args, ack),
            None => tracing::trace!(event, "no handler for event"),
        }
    }

    /// Tells `onAnyOutgoing` listeners about a packet leaving for `socket`.
    pub(crate) fn notify_outgoing(&self, socket: &Socket, packet: &Packet) {
        let handlers = self.handlers().get();
        if handlers.any_outgoing.is_empty() {
            return;
        }
        if let Some(Value::Array(data)) = &packet.data
            && let Some((event, args)) = data.split_first()
        {
            let event = event_name(event);
            for listener in &handlers.any_outgoing {
                listener(socket, &event, args);
            }
        }
    }

    pub(crate) fn has_outgoing_listeners(&self) -> bool {
        !self.handlers().get().any_outgoing.is_empty()
    }

    pub(crate) fn run_disconnecting(&self, socket: &Socket, reason: DisconnectReason) {
        for handler in &self.handlers().get().disconnecting {
            handler(socket, reason);
        }
    }

    pub(crate) fn run_disconnect(&self, socket: &Socket, reason: DisconnectReason) {
        for handler in &self.handlers().get().disconnect {
            handler(socket, reason);
        }
    }
}

/// An event name as a string: names may also be numbers (`427[1,2]`).
pub(crate) fn event_name(value: &Value) -> String {
    match value {
        Value::String(s) => s.as_str().unwrap_or_default().to_owned(),
        other => crate::value::to_json_string(other),
    }
}

/// Node refuses these names for server-side events.
fn server_side_args(event: &str, args: Vec<Value>) -> Result<Vec<Value>, Error> {
    if matches!(event, "connect" | "connection" | "new_namespace") {
        return Err(Error::ReservedEvent(event.to_owned()));
    }
    let mut all = Vec::with_capacity(args.len() + 1);
    all.push(Value::from(event));
    all.extend(args);
    Ok(all)
}

/// A dynamic parent namespace (`io.of(regex or fn)`): a CONNECT to an unknown name it accepts
/// creates a child that shares its handlers.
#[derive(Clone)]
pub struct ParentNamespace {
    pub(crate) matcher: Arc<Matcher>,
    pub(crate) handlers: Arc<HandlerSet>,
}

impl ParentNamespace {
    fn handlers(&self) -> &HandlerSet {
        &self.handlers
    }

    registration_methods!();
}

impl std::fmt::Debug for ParentNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ParentNamespace")
    }
}
