//! The session state machine (sans-IO): heartbeat, upgrade and close, driven by packets and a
//! clock given as a parameter. The runtime (`driver.rs`) feeds it and carries out its actions.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

use crate::packet::{Message, Packet};

/// The transport a session currently uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

impl TransportKind {
    /// Node's name for it, as in the `transport` query parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Polling => "polling",
            Self::WebSocket => "websocket",
        }
    }
}

/// Why a session ended: Node's `close` reasons (`notes/protocol.md` 1.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// No pong within `pingTimeout`.
    PingTimeout,
    /// The client closed the transport, or sent a close packet.
    TransportClose,
    /// A transport failure or a protocol violation (duplicate poll, client ping, bad POST...).
    TransportError,
    /// An undecodable packet.
    ParseError,
    /// The server closed the session.
    ForcedClose,
}

impl CloseReason {
    /// Node's reason string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PingTimeout => "ping timeout",
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::ParseError => "parse error",
            Self::ForcedClose => "forced close",
        }
    }
}

/// Where a packet came from: the session's transport, or the WebSocket probing an upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    Main,
    Probe,
}

/// What the runtime must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// Hand a message to the layer above.
    Deliver(Message),
    /// Queue a ping on the session's transport.
    SendPing,
    /// Answer `3probe` on the probe WebSocket.
    SendProbePong,
    /// Answer a pending (or the next) polling GET with a noop, so the client's poll returns and
    /// it can finish the upgrade.
    NoopPoll,
    /// The probe WebSocket becomes the transport; flush the queue over it.
    FinishUpgrade,
    /// Close the probe WebSocket; the session stays on polling.
    AbortUpgrade,
}

#[derive(Debug, Clone, Copy)]
struct Upgrade {
    deadline: Instant,
    probed: bool,
}

/// Heartbeat and upgrade timing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    pub(crate) ping_interval: Duration,
    pub(crate) ping_timeout: Duration,
    pub(crate) upgrade_timeout: Duration,
}

/// One Engine.IO session.
#[derive(Debug)]
pub(crate) struct Session {
    timing: Timing,
    transport: TransportKind,
    upgrade: Option<Upgrade>,
    /// When the next ping goes out (none while waiting for a pong).
    ping_at: Option<Instant>,
    /// When the session dies unless a pong arrives.
    pong_deadline: Option<Instant>,
    /// engine.io ≥ 6.6.10: the first non-pong packet while waiting for a pong restarts the
    /// pong timer once, tolerating a pong queued behind data.
    grace_used: bool,
    /// Set once: why the session ended.
    closed: Option<CloseReason>,
    /// An upgrade was under way when the session ended: the client is leaving polling.
    closed_while_upgrading: bool,
    actions: VecDeque<Action>,
}

impl Session {
    pub(crate) fn new(now: Instant, transport: TransportKind, timing: Timing) -> Self {
        Self {
            timing,
            transport,
            upgrade: None,
            ping_at: Some(now + timing.ping_interval),
            pong_deadline: None,
            grace_used: false,
            closed: None,
            closed_while_upgrading: false,
            actions: VecDeque::new(),
        }
    }

    pub(crate) fn transport(&self) -> TransportKind {
        self.transport
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Why the session ended, once it has.
    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.closed
    }

    /// Whether a probe answered `3probe`: polling GETs are then answered with a noop.
    pub(crate) fn probed(&self) -> bool {
        self.upgrade.is_some_and(|u| u.probed)
    }

    /// A WebSocket arrived for this sid. Returns false when it must be closed at once: the
    /// session already upgraded, or another upgrade is in progress.
    pub(crate) fn start_upgrade(&mut self, now: Instant) -> bool {
        if self.closed.is_some()
            || self.transport != TransportKind::Polling
            || self.upgrade.is_some()
        {
            return false;
        }
        self.upgrade = Some(Upgrade {
            deadline: now + self.timing.upgrade_timeout,
            probed: false,
        });
        true
    }

    pub(crate) fn handle_packet(&mut self, now: Instant, channel: Channel, packet: Packet) {
        if self.closed.is_some() {
            return;
        }
        match channel {
            Channel::Main => self.handle_main(now, packet),
            Channel::Probe => self.handle_probe(packet),
        }
    }

    fn handle_main(&mut self, now: Instant, packet: Packet) {
        match packet {
            Packet::Pong { .. } => {
                self.pong_deadline = None;
                self.grace_used = false;
                self.ping_at = Some(now + self.timing.ping_interval);
                return;
            }
            // v4: only the server pings ("invalid heartbeat direction").
            Packet::Ping { .. } => return self.close(CloseReason::TransportError),
            Packet::Close => return self.close(CloseReason::TransportClose),
            Packet::Message(msg) => self.actions.push_back(Action::Deliver(msg)),
            // Node ignores these from a client.
            Packet::Open | Packet::Upgrade | Packet::Noop => {}
        }
        if self.pong_deadline.is_some() && !self.grace_used {
            self.grace_used = true;
            self.pong_deadline = Some(now + self.timing.ping_timeout);
        }
    }

    fn handle_probe(&mut self, packet: Packet) {
        let Some(upgrade) = self.upgrade.as_mut() else {
            return;
        };
        match packet {
            Packet::Ping { probe: true } => {
                upgrade.probed = true;
                self.actions.push_back(Action::SendProbePong);
                self.actions.push_back(Action::NoopPoll);
            }
            // Node completes the upgrade on `5` even without a probe.
            Packet::Upgrade => {
                self.upgrade = None;
                self.transport = TransportKind::WebSocket;
                self.actions.push_back(Action::FinishUpgrade);
            }
            // Anything else on the probe cancels the upgrade.
            _ => self.abort_upgrade(),
        }
    }

    /// The probe WebSocket closed or failed.
    pub(crate) fn probe_closed(&mut self) {
        if self.upgrade.take().is_some() {
            self.closed_while_upgrading = true;
            self.actions.push_back(Action::AbortUpgrade);
        }
    }

    /// Whether an upgrade was under way when the session ended.
    pub(crate) fn closed_while_upgrading(&self) -> bool {
        self.closed_while_upgrading
    }

    fn abort_upgrade(&mut self) {
        self.upgrade = None;
        self.actions.push_back(Action::AbortUpgrade);
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.closed.is_some() {
            return;
        }
        if self.upgrade.is_some_and(|u| u.deadline <= now) {
            self.abort_upgrade();
        }
        if self.pong_deadline.is_some_and(|d| d <= now) {
            return self.close(CloseReason::PingTimeout);
        }
        if let Some(ping_at) = self.ping_at.filter(|t| *t <= now) {
            self.ping_at = None;
            // Counted from when the ping was due, not from a late timer, so the session is
            // dead exactly pingInterval + pingTimeout after the last sign of life (the suites
            // probe at that instant); a stalled process still gives the client some time.
            let deadline = ping_at + self.timing.ping_timeout;
            self.pong_deadline = Some(deadline.max(now + self.timing.ping_timeout / 2));
            self.actions.push_back(Action::SendPing);
        }
    }

    /// Ends the session (the first reason wins); later inputs are ignored.
    pub(crate) fn close(&mut self, reason: CloseReason) {
        if self.closed.is_some() {
            return;
        }
        self.closed = Some(reason);
        self.ping_at = None;
        self.pong_deadline = None;
        if self.upgrade.take().is_some() {
            self.actions.push_back(Action::AbortUpgrade);
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [
            self.ping_at,
            self.pong_deadline,
            self.upgrade.map(|u| u.deadline),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        let action = self.actions.pop_front();
        if action.is_none() && self.actions.capacity() > 0 {
            // Idle sessions keep no buffer (DESIGN.md: a few KiB per idle connection).
            self.actions = VecDeque::new();
        }
        action
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::Str;

    const MS: Duration = Duration::from_millis(1);

    fn session(now: Instant) -> Session {
        Session::new(
            now,
            TransportKind::Polling,
            Timing {
                ping_interval: 300 * MS,
                ping_timeout: 200 * MS,
                upgrade_timeout: 1000 * MS,
            },
        )
    }

    fn drain(s: &mut Session) -> Vec<Action> {
        std::iter::from_fn(|| s.poll_action()).collect()
    }

    #[test]
    fn pings_then_times_out() {
        let t0 = Instant::now();
        let mut s = session(t0);
        assert_eq!(s.next_deadline(), Some(t0 + 300 * MS));
        s.handle_timeout(t0 + 299 * MS);
        assert!(drain(&mut s).is_empty());
        s.handle_timeout(t0 + 300 * MS);
        assert_eq!(drain(&mut s), vec![Action::SendPing]);
        assert_eq!(s.next_deadline(), Some(t0 + 500 * MS));
        s.handle_timeout(t0 + 500 * MS);
        assert_eq!(s.close_reason(), Some(CloseReason::PingTimeout));
        assert_eq!(s.next_deadline(), None);
    }

    #[test]
    fn next_ping_is_an_interval_after_the_pong() {
        let t0 = Instant::now();
        let mut s = session(t0);
        s.handle_timeout(t0 + 300 * MS);
        drain(&mut s);
        s.handle_packet(t0 + 350 * MS, Channel::Main, Packet::Pong { probe: false });
        assert_eq!(s.next_deadline(), Some(t0 + 650 * MS));
    }

    #[test]
    fn first_data_packet_while_waiting_for_pong_extends_once() {
        let t0 = Instant::now();
        let mut s = session(t0);
        s.handle_timeout(t0 + 300 * MS);
        drain(&mut s);
        let msg = || Packet::Message(Message::Text(Str::from("x")));
        s.handle_packet(t0 + 400 * MS, Channel::Main, msg());
        assert_eq!(s.next_deadline(), Some(t0 + 600 * MS));
        s.handle_packet(t0 + 450 * MS, Channel::Main, msg());
        assert_eq!(s.next_deadline(), Some(t0 + 600 * MS));
    }

    #[test]
    fn client_ping_and_close_end_the_session() {
        let t0 = Instant::now();
        let mut s = session(t0);
        s.handle_packet(t0, Channel::Main, Packet::Ping { probe: false });
        assert_eq!(s.close_reason(), Some(CloseReason::TransportError));
        let mut s = session(t0);
        s.handle_packet(t0, Channel::Main, Packet::Close);
        s.close(CloseReason::ForcedClose);
        assert_eq!(
            s.close_reason(),
            Some(CloseReason::TransportClose),
            "the first reason wins"
        );
        s.handle_packet(
            t0,
            Channel::Main,
            Packet::Message(Message::Text(Str::from("x"))),
        );
        assert!(
            drain(&mut s).is_empty(),
            "nothing is delivered after the close"
        );
    }

    #[test]
    fn upgrade_probe_then_upgrade() {
        let t0 = Instant::now();
        let mut s = session(t0);
        assert!(s.start_upgrade(t0));
        assert!(
            !s.start_upgrade(t0),
            "a second WebSocket during an upgrade is refused"
        );
        s.handle_packet(t0, Channel::Probe, Packet::Ping { probe: true });
        assert!(s.probed());
        assert_eq!(drain(&mut s), vec![Action::SendProbePong, Action::NoopPoll]);
        s.handle_packet(t0, Channel::Probe, Packet::Upgrade);
        assert_eq!(drain(&mut s), vec![Action::FinishUpgrade]);
        assert_eq!(s.transport(), TransportKind::WebSocket);
        assert!(
            !s.start_upgrade(t0),
            "a WebSocket after the upgrade is refused"
        );
    }

    #[test]
    fn upgrade_expires_and_other_packets_cancel_it() {
        let t0 = Instant::now();
        let mut s = session(Instant::now());
        let mut long = s.timing;
        long.ping_interval = 10_000 * MS;
        s = Session::new(t0, TransportKind::Polling, long);
        assert!(s.start_upgrade(t0));
        assert_eq!(s.next_deadline(), Some(t0 + 1000 * MS));
        s.handle_timeout(t0 + 1000 * MS);
        assert_eq!(drain(&mut s), vec![Action::AbortUpgrade]);
        assert_eq!(s.transport(), TransportKind::Polling);
        assert!(s.start_upgrade(t0));
        s.handle_packet(
            t0,
            Channel::Probe,
            Packet::Message(Message::Text(Str::from("x"))),
        );
        assert_eq!(drain(&mut s), vec![Action::AbortUpgrade]);
    }
}
