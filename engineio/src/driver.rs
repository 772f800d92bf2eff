//! The task that owns one session: it feeds the state machine with packets, commands from HTTP
//! requests and timers, and carries out its actions. The only place a session's state changes
//! (DESIGN.md rule 3).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

use crate::engine::EngineInner;
use crate::handler::Handler;
use crate::packet::{Frame, Message, Packet};
use crate::payload;
use crate::session::{Action, Channel, CloseReason, Session, TransportKind};
use crate::socket::{Shared, Socket};
use crate::transport::websocket::{self, WsStream, WsStreamRx};

/// Commands from the HTTP side to a session's task.
pub(crate) enum Cmd {
    /// A polling GET waiting for packets.
    Poll(oneshot::Sender<PollReply>),
    /// A polling POST body, fully read; answered once its packets are handled.
    /// (Boxed: commands sit in a channel block of 32 slots per session, so they stay small.)
    Post(Box<(Bytes, oneshot::Sender<()>)>),
    /// A WebSocket opened with this sid (an upgrade probe).
    WebSocket(Box<WsStream>),
    /// A transport failure seen by a request handler (bad or duplicate POST, 413, 408).
    Fail(CloseReason),
    /// The WebSocket writer ended, with this reason.
    WriterDone(CloseReason),
}

/// The answer to a polling GET.
pub(crate) enum PollReply {
    Frames(Vec<Frame>),
    /// A second concurrent GET: 400.
    Overlap,
    /// The session upgraded meanwhile: 400, code 3.
    Upgraded,
}

/// WebSocket close codes (RFC 6455 7.4.1) for the errors we close on.
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_INVALID_DATA: u16 = 1007;
const CLOSE_PROTOCOL: u16 = 1002;

/// How long a server close may spend sending what was queued before the socket is dropped.
const FLUSH_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) struct Driver<H: Handler> {
    engine: Arc<EngineInner<H>>,
    socket: Socket,
    session: Session,
    cmds: mpsc::Receiver<Cmd>,
    cmd_tx: mpsc::Sender<Cmd>,
    /// The pending polling GET.
    poll: Option<oneshot::Sender<PollReply>>,
    ws_rx: Option<WsStreamRx>,
    /// The WebSocket probing an upgrade, until it becomes the transport or is closed.
    probe: Option<WsStream>,
}

impl<H: Handler> Driver<H> {
    pub(crate) fn new(
        engine: Arc<EngineInner<H>>,
        socket: Socket,
        session: Session,
        cmds: mpsc::Receiver<Cmd>,
        cmd_tx: mpsc::Sender<Cmd>,
    ) -> Self {
        Self {
            engine,
            socket,
            session,
            cmds,
            cmd_tx,
            poll: None,
            ws_rx: None,
            probe: None,
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.socket.shared
    }

    /// Runs a session. For a WebSocket handshake, `ws` is its socket and the open packet is
    /// already queued.
    pub(crate) async fn run(mut self, ws: Option<WsStream>) {
        if let Some(ws) = ws {
            self.attach_websocket(ws);
        }
        let engine = self.engine.clone();
        let socket = self.socket.clone();
        let Some(mut conn) = guarded(|| engine.handler.on_open(&socket)) else {
            return Box::pin(self.finish(None, CloseReason::ForcedClose)).await;
        };
        let reason = self.event_loop(&mut conn).await;
        // Boxed: the end of a session must not make every live session's task bigger.
        Box::pin(self.finish(Some(conn), reason)).await;
    }

    fn attach_websocket(&mut self, ws: WsStream) {
        let (tx, rx) = ws.split();
        self.ws_rx = Some(rx);
        self.shared().set_transport(TransportKind::WebSocket);
        websocket::spawn_writer(self.shared().clone(), tx, self.cmd_tx.clone());
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
                cmd = self.cmds.recv() => match cmd {
                    Some(cmd) => self.on_cmd(conn, cmd).await,
                    None => self.session.close(CloseReason::ForcedClose),
                },
                msg = websocket::next(&mut self.ws_rx), if self.ws_rx.is_some() => {
                    self.on_ws(Channel::Main, msg);
                }
                msg = websocket::next_probe(&mut self.probe), if self.probe.is_some() => {
                    self.on_ws(Channel::Probe, msg);
                }
                () = self.socket.shared.notify.notified(), if polling => self.on_queue(),
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
                    self.shared().queue().push_control(Frame::control("2"));
                    match self.session.transport() {
                        TransportKind::Polling => self.flush_poll(),
                        TransportKind::WebSocket => self.shared().notify.notify_one(),
                    }
                }
                Action::SendProbePong => {
                    if let Some(probe) = self.probe.as_mut()
                        && Box::pin(websocket::send_text(probe, "3probe"))
                            .await
                            .is_err()
                    {
                        self.session.probe_closed();
                    }
                }
                Action::NoopPoll => self.answer_poll(vec![Frame::control("6")]),
                Action::FinishUpgrade => {
                    if let Some(ws) = self.probe.take() {
                        // A GET still pending on the old transport returns empty-handed.
                        self.answer_poll(vec![Frame::control("6")]);
                        self.attach_websocket(ws);
                        tracing::debug!(sid = %self.socket.id(), "upgraded to websocket");
                    }
                }
                Action::AbortUpgrade => {
                    if let Some(probe) = self.probe.take() {
                        websocket::close_later(probe);
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
                    && let Some(msg) = probe.next().now_or_never()
                {
                    self.on_ws(Channel::Probe, msg);
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
                    self.probe = Some(*ws);
                } else {
                    // Already upgraded or upgrading: accepted, then closed at once (Node).
                    websocket::close_later(*ws);
                }
            }
            Cmd::Fail(reason) | Cmd::WriterDone(reason) => self.session.close(reason),
        }
    }

    fn on_ws(&mut self, channel: Channel, msg: Option<Result<WsMessage, WsError>>) {
        let now = Instant::now();
        let packet = match msg {
            Some(Ok(WsMessage::Text(text))) => match Packet::decode_frame(&text) {
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
            Some(Ok(WsMessage::Binary(data))) => Packet::Message(Message::Binary(data)),
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => return,
            Some(Ok(WsMessage::Close(_))) | None => {
                return match channel {
                    Channel::Main => self.session.close(CloseReason::TransportClose),
                    Channel::Probe => self.session.probe_closed(),
                };
            }
            Some(Err(err)) => {
                tracing::debug!(sid = %self.socket.id(), %err, "websocket error");
                if channel == Channel::Probe {
                    return self.session.probe_closed();
                }
                let code = match err {
                    // The peer went away without a close frame: Node's ws reports a close.
                    WsError::Io(_)
                    | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                        return self.session.close(CloseReason::TransportClose);
                    }
                    WsError::Capacity(_) => CLOSE_TOO_BIG,
                    WsError::Utf8(_) => CLOSE_INVALID_DATA,
                    WsError::Protocol(_) => CLOSE_PROTOCOL,
                    _ => 0,
                };
                self.shared().ws_close_code.store(code, Ordering::Release);
                return self.session.close(CloseReason::TransportError);
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

    /// The layer above queued something or asked to close.
    fn on_queue(&mut self) {
        let close = self.shared().queue().close;
        match close {
            Some(request) => self.session.close(request.reason),
            None => self.flush_poll(),
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
        if self.session.transport() == TransportKind::WebSocket {
            // The writer sends what it must and the close frame; one that a client does not
            // read is stopped, at once or after a grace for a flushing close.
            let shared = self.shared().clone();
            if flush {
                tokio::spawn(async move {
                    tokio::time::sleep(FLUSH_GRACE).await;
                    shared.kill.notify_one();
                });
            } else {
                shared.kill.notify_one();
            }
        }
        if let Some(probe) = self.probe.take() {
            websocket::close_later(probe);
        }
        if let Some(conn) = conn {
            let (engine, socket) = (&self.engine, &self.socket);
            guarded(|| engine.handler.on_close(conn, socket, reason));
        }
        if self.session.transport() == TransportKind::Polling {
            self.close_polling(reason, flush).await;
        }
        self.engine.remove(self.socket.id());
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
                cmd = self.cmds.recv() => match cmd {
                    Some(Cmd::Poll(reply)) => {
                        let _ = reply.send(PollReply::Frames(close_frames(self.shared())));
                        return;
                    }
                    Some(Cmd::Post(post)) => { let _ = post.1.send(()); }
                    Some(Cmd::WebSocket(ws)) => websocket::close_later(*ws),
                    Some(_) => {}
                    None => return,
                },
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

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
