//! One Engine.IO connection as Socket.IO sees it (Node's `Client`): its decoder, the sockets
//! it has in each namespace, and the rules of the packet sequence (`notes/protocol.md` 2.4).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use engineio::Message;

use crate::Value;
use crate::codec::Decoder;
use crate::handshake::{Handshake, map_get};
use crate::packet::{Packet, PacketType};
use crate::reason::DisconnectReason;
use crate::server::ServerInner;
use crate::socket::{AckSender, Socket};

/// The part of a connection other tasks reach: its sockets by namespace.
pub(crate) struct ClientShared {
    pub(crate) conn: engineio::Socket,
    sockets: Mutex<HashMap<String, Socket>>,
    /// Whether a namespace was ever joined (`connectTimeout`).
    joined: AtomicBool,
}

impl ClientShared {
    fn sockets(&self) -> MutexGuard<'_, HashMap<String, Socket>> {
        self.sockets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, nsp: &str) -> Option<Socket> {
        self.sockets().get(nsp).cloned()
    }

    /// Forgets a socket that left its namespace.
    pub(crate) fn remove(&self, nsp: &str, id: &str) {
        let mut sockets = self.sockets();
        if sockets.get(nsp).is_some_and(|s| s.id() == id) {
            sockets.remove(nsp);
        }
    }

    fn take_sockets(&self) -> Vec<Socket> {
        self.sockets().drain().map(|(_, s)| s).collect()
    }

    /// `socket.disconnect(true)`: every namespace gets `41` and `server namespace disconnect`,
    /// then the connection closes.
    pub(crate) fn disconnect_all(&self) {
        for socket in self.take_sockets() {
            socket.close_with(DisconnectReason::ServerNamespaceDisconnect, true);
        }
        self.conn.close();
    }

    /// Closes the connection; its sockets leave with `reason`.
    pub(crate) fn close(&self, reason: DisconnectReason) {
        self.close_sockets(reason);
        self.conn.close();
    }

    /// Whether a namespace was ever joined (`connectTimeout`).
    pub(crate) fn has_joined(&self) -> bool {
        self.joined.load(Ordering::Acquire)
    }

    pub(crate) fn close_sockets(&self, reason: DisconnectReason) {
        for socket in self.take_sockets() {
            socket.close_with(reason, false);
        }
    }
}

/// One connection's Socket.IO state, owned by the connection's task (opaque).
pub struct Client {
    pub(crate) shared: Arc<ClientShared>,
    decoder: Decoder,
    /// A decode error or a bad sequence closed the connection: later messages are dropped.
    closing: bool,
}

impl Client {
    pub(crate) fn new(server: &ServerInner, conn: &engineio::Socket) -> Self {
        let shared = Arc::new(ClientShared {
            conn: conn.clone(),
            sockets: Mutex::new(HashMap::new()),
            joined: AtomicBool::new(false),
        });
        server
            .connect_timeouts
            .watch(Arc::downgrade(&shared), server.config.connect_timeout);
        let decoder = Decoder::new(server.config.parser, server.parser_limits());
        Self {
            shared,
            decoder,
            closing: false,
        }
    }

    pub(crate) fn on_message(&mut self, server: &ServerInner, message: Message) {
        if self.closing {
            return;
        }
        match self.decoder.decode(message) {
            Ok(Some(packet)) => self.dispatch(server, packet),
            Ok(None) => {}
            Err(err) => {
                // Any decode error closes the whole connection (Node: `forced close`).
                tracing::debug!(sid = %self.shared.conn.id(), %err, "socket.io decode error");
                self.closing = true;
                self.shared.conn.close();
            }
        }
    }

    fn dispatch(&mut self, server: &ServerInner, packet: Packet) {
        let socket = self.shared.get(&packet.nsp);
        match (socket, packet.kind) {
            (None, PacketType::Connect) => self.connect(server, packet.nsp, packet.data),
            (Some(socket), PacketType::Disconnect) => {
                socket.close_with(DisconnectReason::ClientNamespaceDisconnect, false);
            }
            (Some(socket), PacketType::Event) => {
                // `42` with no payload is accepted by Node and goes nowhere.
                let Some(data) = packet.data else { return };
                // The msgpack parser does not check event names (Node's neither): a reserved
                // or non-string name must never reach a handler (CVE-2024-38355).
                if !crate::packet::is_valid_event_data(&data) {
                    tracing::debug!(sid = %self.shared.conn.id(), "invalid event name");
                    self.closing = true;
                    self.shared.conn.close();
                    return;
                }
                let Value::Array(mut data) = data else { return };
                let name = crate::namespace::event_name(&data.remove(0));
                let ack = packet.id.map(|id| AckSender::new(socket.clone(), id));
                socket
                    .ns()
                    .clone()
                    .dispatch_event(&socket, &name, data, ack);
            }
            (Some(socket), PacketType::Ack) => {
                if let (Some(id), Some(Value::Array(args))) = (packet.id, packet.data) {
                    socket.on_ack(id, args);
                }
            }
            // CONNECT twice, a packet for a namespace not joined, CONNECT_ERROR from a client.
            (_, kind) => {
                tracing::debug!(sid = %self.shared.conn.id(), nsp = %packet.nsp, ?kind, "invalid packet sequence");
                self.closing = true;
                self.shared.close(DisconnectReason::ForcedServerClose);
            }
        }
    }

    fn connect(&self, server: &ServerInner, nsp: String, auth: Option<Value>) {
        let auth = auth.unwrap_or_else(|| Value::Map(Vec::new()));
        let Some(ns) = server.namespace_for(&nsp, &auth) else {
            let message = Value::Map(vec![(
                Value::from("message"),
                Value::from("Invalid namespace"),
            )]);
            self.send(server, &Packet::connect_error(nsp, message));
            return;
        };
        let restored = ns.recovery().and_then(|_| {
            let pid = map_get(&auth, "pid")?.as_str()?;
            let offset = map_get(&auth, "offset")?.as_str()?;
            ns.local().restore_session(pid, offset)
        });
        let recovered = restored.is_some();
        let (id, pid, data, rooms, missed) = match restored {
            Some(r) => (r.sid, Some(r.pid), r.data, r.rooms, r.missed),
            None => (
                engineio::generate_id(),
                ns.recovery().map(|_| engineio::generate_id()),
                Value::Map(Vec::new()),
                Vec::new(),
                Vec::new(),
            ),
        };
        let handshake = Handshake::new(self.shared.conn.request(), auth);
        let socket = Socket::new(
            id,
            pid,
            ns.clone(),
            self.shared.clone(),
            handshake,
            data,
            recovered,
        );
        let skip = recovered && ns.recovery().is_some_and(|r| r.skip_middlewares);
        if !skip && let Err(err) = ns.run_middlewares(&socket) {
            socket.refuse();
            self.send(server, &Packet::connect_error(ns.name(), err.to_value()));
            return;
        }
        if self.shared.conn.is_closed() {
            socket.refuse();
            return;
        }
        self.shared.joined.store(true, Ordering::Release);
        self.shared
            .sockets()
            .insert(ns.name().to_owned(), socket.clone());
        ns.add_socket(&socket, &rooms);
        // Node writes the missed packets before the CONNECT reply.
        for packet in &missed {
            socket.send_packet(packet);
        }
        let mut reply = vec![(Value::from("sid"), Value::from(socket.id()))];
        if let Some(pid) = socket.pid() {
            reply.push((Value::from("pid"), Value::from(pid)));
        }
        socket.send_packet(&Packet::connect(ns.name(), Some(Value::Map(reply))));
        tracing::debug!(id = %socket.id(), nsp = %ns.name(), recovered, "socket connected");
        ns.run_connection(&socket);
    }

    fn send(&self, server: &ServerInner, packet: &Packet) {
        let _ = self
            .shared
            .conn
            .send_all(crate::codec::encode(server.config.parser, packet));
    }
}
