//! The task that owns one session: it feeds the state machine with packets, commands from HTTP
//! requests and timers, and carries out its actions. The only place a session's state changes
//! (DESIGN.md rule 3).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use hyper::upgrade::OnUpgrade;
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep_until};

use crate::engine::EngineInner;
use crate::handler::Handler;
use crate::packet::{Frame, Message, Packet};
use crate::payload;
use crate::session::{Action, Channel, CloseReason, Session, TransportKind};
use crate::socket::{Shared, Socket};
use crate::transport::frame::Incoming;
use crate::transport::websocket::{self, CLOSE_GRACE, WsConn, WsEvent};

/// Commands from the HTTP side to a session's task.
pub(crate) enum Cmd {
    /// A polling GET waiting for packets.
    Poll(oneshot::Sender<PollReply>),
    /// A polling POST body, fully read; answered once its packets are handled.
    /// (Boxed: commands sit in a channel block of 32 slots per session, so they stay small.)
    Post(Box<(Bytes, oneshot::Sender<()>)>),
    /// A WebSocket opened with this sid (an upgrade probe).
    WebSocket(Box<WsConn>),
    /// A transport failure seen by a request handler (bad or duplicate POST, 413, 408).
    Fail(CloseReason),
}

/// The answer to a polling GET.
pub(crate) enum PollReply {
    Frames(Vec<Frame>),
    /// A second concurrent GET: 400.
    Overlap,
    /// The session upgraded meanwhile: 400, code 3.
    Upgraded,
}

/// How long a server close may spend sending what was queued before the socket is dropped.
const FLUSH_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) struct Driver<H: Handler> {
    engine: Arc<EngineInner<H>>,
    socket: Socket,
    session: Session,
    /// The pending polling GET.
    poll: Option<oneshot::Sender<PollReply>>,
    /// The WebSocket transport, read and written by this task.
    ws: Option<WsConn>,
    /// The WebSocket probing an upgrade, until it becomes the transport or is closed.
    probe: Option<Box<WsConn>>,
}

impl<H: Handler> Driver<H> {
    pub(crate) fn new(engine: Arc<EngineInner<H>>, socket: Socket, session: Session) -> Self {
        Self {
            engine,
            socket,
            session,
            poll: None,
            ws: None,
            probe: None,
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.socket.shared
    }

    /// Runs a session. For a WebSocket handshake, `upgrade` is the pending upgrade (and the
    /// `maxPayload`) and the open packet is already queued.
    pub(crate) async fn run(mut self, upgrade: Option<(OnUpgrade, usize)>) {
        if let Some((on_upgrade, max_payload)) = upgrade {
            match on_upgrade.await {
                Ok(upgraded) => self.attach_websocket(WsConn::new(upgraded, max_payload)),
                Err(err) => {
                    tracing::debug!(sid = %self.socket.id(), %err, "websocket handshake failed");
                    self.engine.remove(self.socket.id());
                    return;
                }
            }
        }
        let engine = self.engine.clone();
        let socket = self.socket.clone();
        let Some(mut conn) = guarded(|| engine.handler.on_open(&socket)) else {
            return self.finish_boxed(None, CloseReason::ForcedClose).await;
        };
        let reason = self.event_loop(&mut conn).await;
        self.finish_boxed(Some(conn), reason).await;
    }

    /// The end of a session, boxed by a plain function: it must not make every live
    /// session's task bigger (an async fn would reserve its room in the task).
    fn finish_boxed(
        self,
        conn: Option<H::Conn>,
        reason: CloseReason,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(self.finish(conn, reason))
    }

    fn attach_websocket(&mut self, ws: WsConn) {
        self.ws = Some(ws);
        self.shared().set_transport(TransportKind::WebSocket);
    }

    async fn event_loop(&mut self, conn: &mut H::Conn) -> CloseReason {
        loop {
            self.act(conn).await;
            if let Some(reason) = self.session.close_reason() {
                return reason;
            }
            let deadline = self.session.next_deadline();
            let polling = self.session.transport() == TransportKind::Polling;
            tokio::select! {
                event = ws_io(&mut self.ws, &self.socket.shared), if self.ws.is_some() => {
                    self.on_ws(Channel::Main, event);
                }
                event = probe_io(&mut self.probe), if self.probe.is_some() => {
                    self.on_ws(Channel::Probe, event);
                }
                () = self.socket.shared.notify.notified() => {
                    for cmd in self.socket.shared.take_cmds() {
                        self.on_cmd(conn, cmd).await;
                    }
                    self.on_queue(polling);
                }
                () = poll_aborted(&mut self.poll), if self.poll.is_some() => {
                    tracing::debug!(sid = %self.socket.id(), "poll connection closed prematurely");
                    self.poll = None;
                    self.session.close(CloseReason::TransportError);
                }
                () = sleep_until_opt(deadline) => self.session.handle_timeout(Instant::now()),
            }
        }
    }

    /// Carries out the machine's actions.
    async fn act(&mut self, conn: &mut H::Conn) {
        while let Some(action) = self.session.poll_action() {
            match action {
                Action::Deliver(message) => self.deliver(conn, message),
                Action::SendPing => {
                    // On WebSocket the event loop writes it on its next turn.
                    self.shared().queue().push_control(Frame::control("2"));
                    if self.session.transport() == TransportKind::Polling {
                        self.flush_poll();
                    }
                }
                Action::SendProbePong => {
                    if let Some(probe) = self.probe.as_mut() {
                        probe.push_text("3probe");
                    }
                }
                Action::NoopPoll => self.answer_poll(vec![Frame::control("6")]),
                Action::FinishUpgrade => {
                    if let Some(ws) = self.probe.take() {
                        // A GET still pending on the old transport returns empty-handed.
                        self.answer_poll(vec![Frame::control("6")]);
                        self.attach_websocket(*ws);
                        tracing::debug!(sid = %self.socket.id(), "upgraded to websocket");
                    }
                }
                Action::AbortUpgrade => {
                    if let Some(probe) = self.probe.take() {
                        websocket::close_later(*probe);
                    }
                }
            }
        }
        // What the handlers queued answers a pending GET now, as Node writes to a writable
        // transport at once.
        if self.session.transport() == TransportKind::Polling {
            self.flush_poll();
        }
    }

    fn deliver(&mut self, conn: &mut H::Conn, message: Message) {
        let (engine, socket) = (&self.engine, &self.socket);
        if guarded(|| engine.handler.on_message(conn, socket, message)).is_none() {
            self.session.close(CloseReason::ForcedClose);
        }
    }

    async fn on_cmd(&mut self, conn: &mut H::Conn, cmd: Cmd) {
        // A request that arrives after a deadline passed, before its timer fired, must find
        // the session as the deadline left it.
        self.session.handle_timeout(Instant::now());
        if self.session.is_closed() {
            if let Cmd::Post(post) = cmd {
                let (_, done) = *post;
                let _ = done.send(());
            }
            return;
        }
        match cmd {
            Cmd::Poll(reply) => {
                // The client may have sent `5` on the probe just before this GET; read what the
                // probe already holds so the GET sees the upgrade (Node handles both in
                // arrival order).
                while let Some(probe) = self.probe.as_mut()
                    && let Some(event) = probe.try_next()
                {
                    self.on_ws(Channel::Probe, event);
                    self.act(conn).await;
                }
                if self.session.transport() != TransportKind::Polling {
                    let _ = reply.send(PollReply::Upgraded);
                    return;
                }
                self.on_poll(reply);
            }
            Cmd::Post(post) => {
                let (body, done) = *post;
                let now = Instant::now();
                for packet in payload::decode(body) {
                    match packet {
                        Ok(packet) => self.session.handle_packet(now, Channel::Main, packet),
                        Err(err) => {
                            tracing::debug!(sid = %self.socket.id(), %err, "bad polling payload");
                            self.session.close(CloseReason::ParseError);
                        }
                    }
                    // Deliver in order, before the POST is answered.
                    self.act(conn).await;
                    if self.session.is_closed() {
                        break;
                    }
                }
                let _ = done.send(());
            }
            Cmd::WebSocket(ws) => {
                if self.session.start_upgrade(Instant::now()) {
                    self.probe = Some(ws);
                } else {
                    // Already upgraded or upgrading: accepted, then closed at once (Node).
                    websocket::close_later(*ws);
                }
            }
            Cmd::Fail(reason) => self.session.close(reason),
        }
    }

    fn on_ws(&mut self, channel: Channel, event: WsEvent) {
        let now = Instant::now();
        let packet = match event {
            WsEvent::Message(Incoming::Text(text)) => match Packet::decode_frame(&text) {
                Ok(packet) => packet,
                Err(err) => {
                    tracing::debug!(sid = %self.socket.id(), %err, "bad websocket packet");
                    return match channel {
                        Channel::Main => self.session.close(CloseReason::ParseError),
                        Channel::Probe => self.session.probe_closed(),
                    };
                }
            },
            // Binary frames carry no type byte: always a message.
            WsEvent::Message(Incoming::Binary(data)) => Packet::Message(Message::Binary(data)),
            WsEvent::Message(Incoming::Ping(payload)) => {
                match channel {
                    Channel::Main => self.ws.as_mut().map(|ws| ws.push_pong(&payload)),
                    Channel::Probe => self.probe.as_mut().map(|ws| ws.push_pong(&payload)),
                };
                return;
            }
            WsEvent::Message(Incoming::Pong) => return,
            WsEvent::Message(Incoming::Close(code)) => {
                return match channel {
                    Channel::Main => {
                        // The close frame sent back echoes the client's code (RFC 6455 5.5.1).
                        let code = code.unwrap_or(0);
                        self.shared().ws_close_code.store(code, Ordering::Release);
                        self.session.close(CloseReason::TransportClose)
                    }
                    Channel::Probe => self.session.probe_closed(),
                };
            }
            WsEvent::Refused(err) => {
                tracing::debug!(sid = %self.socket.id(), %err, "websocket frame refused");
                return match channel {
                    Channel::Main => {
                        let code = err.close_code();
                        self.shared().ws_close_code.store(code, Ordering::Release);
                        self.session.close(CloseReason::TransportError)
                    }
                    Channel::Probe => self.session.probe_closed(),
                };
            }
            WsEvent::Gone(err) => {
                if let Some(err) = err {
                    tracing::debug!(sid = %self.socket.id(), %err, "websocket connection failed");
                }
                // Nothing more can be written: drop the socket at once.
                return match channel {
                    Channel::Main => {
                        self.ws = None;
                        self.session.close(CloseReason::TransportClose)
                    }
                    Channel::Probe => {
                        self.probe = None;
                        self.session.probe_closed()
                    }
                };
            }
        };
        self.session.handle_packet(now, channel, packet);
    }

    fn on_poll(&mut self, reply: oneshot::Sender<PollReply>) {
        if self.poll.is_some() {
            // Node: "overlap from client": the newcomer gets 400, the pending one `1`.
            let _ = reply.send(PollReply::Overlap);
            return self.session.close(CloseReason::TransportError);
        }
        if self.session.probed() {
            let _ = reply.send(PollReply::Frames(vec![Frame::control("6")]));
            return;
        }
        self.poll = Some(reply);
        self.shared().writable.store(true, Ordering::Release);
        self.flush_poll();
    }

    /// The layer above queued something or asked to close. (On WebSocket the queue is
    /// written by the event loop's next turn.)
    fn on_queue(&mut self, polling: bool) {
        let close = self.shared().queue().close;
        match close {
            Some(request) => self.session.close(request.reason),
            None if polling => self.flush_poll(),
            None => {}
        }
    }

    fn flush_poll(&mut self) {
        if self.poll.is_none() || self.session.probed() {
            return;
        }
        let frames = self.shared().queue().take();
        if !frames.is_empty() {
            self.answer_poll(frames.into());
        }
    }

    fn answer_poll(&mut self, frames: Vec<Frame>) {
        if let Some(poll) = self.poll.take() {
            self.shared().writable.store(false, Ordering::Release);
            let _ = poll.send(PollReply::Frames(frames));
        }
    }

    /// Ends the session: the close reason goes up once, the transport is closed, the sid is
    /// forgotten.
    async fn finish(mut self, conn: Option<H::Conn>, reason: CloseReason) {
        tracing::debug!(sid = %self.socket.id(), reason = reason.as_str(), "session closed");
        let flush = {
            let queue = self.shared().queue();
            queue.close.is_some_and(|r| r.flush)
        };
        self.shared().request_close(reason, flush);
        self.shared().writable.store(false, Ordering::Release);
        if let Some(probe) = self.probe.take() {
            websocket::close_later(*probe);
        }
        if let Some(conn) = conn {
            let (engine, socket) = (&self.engine, &self.socket);
            guarded(|| engine.handler.on_close(conn, socket, reason));
        }
        if self.session.transport() == TransportKind::Polling {
            self.close_polling(reason, flush).await;
        }
        self.shared().end_cmds();
        self.engine.remove(self.socket.id());
        if let Some(mut ws) = self.ws.take() {
            // What was queued goes first when the close flushes; then the close frame, with no
            // code as Node sends it (the client sees 1005) unless a limit was hit or the
            // client's code is echoed. A client that does not read is cut after the grace.
            let grace = if flush {
                let frames = self.shared().queue().take();
                for frame in &frames {
                    ws.push(frame, self.shared().b64);
                }
                FLUSH_GRACE
            } else {
                CLOSE_GRACE
            };
            let code = match self.shared().ws_close_code.load(Ordering::Acquire) {
                0 => None,
                code => Some(code),
            };
            ws.close(code, grace).await;
        }
    }

    /// Polling: a pending GET gets `6` when the client closed, else the queued packets (when
    /// flushing) and `1`. A server close with no GET pending waits for the next one, so the
    /// client learns of the close instead of finding its sid unknown.
    async fn close_polling(&mut self, reason: CloseReason, flush: bool) {
        let close_frames = |shared: &Shared| {
            let mut frames: Vec<Frame> = if flush {
                shared.queue().take().into()
            } else {
                Vec::new()
            };
            frames.push(Frame::control("1"));
            frames
        };
        if reason == CloseReason::TransportClose {
            self.answer_poll(vec![Frame::control("6")]);
            return;
        }
        if self.poll.is_some() {
            let frames = close_frames(self.shared());
            self.answer_poll(frames);
            return;
        }
        // Mid-upgrade the client has paused polling and may never send that GET: do not hold
        // the session (a shutdown would wait for it).
        if reason != CloseReason::ForcedClose
            || self.session.closed_while_upgrading()
            || self.engine.is_stopped()
        {
            return;
        }
        let deadline = Instant::now() + self.engine.config.close_poll_timeout;
        loop {
            tokio::select! {
                () = self.socket.shared.notify.notified() => {
                    for cmd in self.socket.shared.take_cmds() {
                        match cmd {
                            Cmd::Poll(reply) => {
                                let _ = reply.send(PollReply::Frames(close_frames(self.shared())));
                                return;
                            }
                            Cmd::Post(post) => { let _ = post.1.send(()); }
                            Cmd::WebSocket(ws) => websocket::close_later(*ws),
                            Cmd::Fail(_) => {}
                        }
                    }
                }
                () = sleep_until(deadline) => return,
            }
        }
    }
}

/// Runs a handler call; a panic in it is logged and ends only this session, whose cleanup
/// still runs (a panicking task would leak the session and its socket).
fn guarded<R>(f: impl FnOnce() -> R) -> Option<R> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(_) => {
            tracing::error!("a connection handler panicked: closing that session");
            None
        }
    }
}

async fn poll_aborted(poll: &mut Option<oneshot::Sender<PollReply>>) {
    match poll {
        Some(tx) => tx.closed().await,
        None => std::future::pending().await,
    }
}

/// The WebSocket transport's next event; its queue is written on the way.
async fn ws_io(ws: &mut Option<WsConn>, shared: &Shared) -> WsEvent {
    match ws {
        Some(ws) => std::future::poll_fn(|cx| ws.poll_io(cx, Some(shared))).await,
        None => std::future::pending().await,
    }
}

async fn probe_io(probe: &mut Option<Box<WsConn>>) -> WsEvent {
    match probe {
        Some(probe) => std::future::poll_fn(|cx| probe.poll_io(cx, None)).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
