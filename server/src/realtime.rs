//! The Socket.IO side: authentication middleware, the user and presence rooms, and the handlers
//! of the client events of the catalogue.
//!
//! Every client event is validated first; an invalid payload gets an `invalid_payload` ack and
//! nothing else happens. Handlers run on the connection's task and never block: enqueueing a
//! job, cancelling it and relaying are all immediate; what needs Redis (the cluster-wide rate
//! limit and presence status) runs in a spawned task that sends the ack when it is done.

use std::sync::Arc;

use socketio::{AckSender, Namespace, Socket, SocketIo, Value};

use crate::auth::{AuthFailure, Authenticator};
use crate::events::{
    self, ErrorCode, JobAccepted, ModelStart, PresenceSnapshot, PresenceStatus, PresenceSubscribe,
    SearchStart, TabUpdate, TabUpdated, TaskCancel, UserPresence, name,
};
use crate::jobs::{Job, JobKind, JobQueue};
use crate::metrics::Metrics;
use crate::presence::{self, Presence, user_room};
use crate::rate_limit::RateLimiter;

/// What the handlers share.
pub struct Realtime {
    /// The server.
    pub io: SocketIo,
    /// Token checks.
    pub auth: Authenticator,
    /// Users online.
    pub presence: Presence,
    /// Job start limits.
    pub limiter: RateLimiter,
    /// Where jobs go.
    pub jobs: Arc<dyn JobQueue>,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Realtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realtime").finish_non_exhaustive()
    }
}

/// The user id a socket authenticated as (kept in `socket.data`).
pub fn user_of(socket: &Socket) -> Option<String> {
    socketio::map_get(&socket.data(), "userId")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn reply(ack: Option<AckSender>, value: Value) {
    if let Some(ack) = ack {
        ack.send(vec![value]);
    }
}

impl Realtime {
    /// Registers everything on the main namespace.
    pub fn install(self: &Arc<Self>) {
        let ns = self.io.of("/");
        self.install_connection(&ns);
        self.install_events(&ns);
    }

    fn install_connection(self: &Arc<Self>, ns: &Namespace) {
        let rt = self.clone();
        ns.use_middleware(
            move |socket| match rt.auth.authenticate(socket.handshake()) {
                Ok(user) => {
                    socket.set_data(Value::Map(vec![(Value::from("userId"), Value::from(user))]));
                    Ok(())
                }
                Err(failure) => {
                    match failure {
                        AuthFailure::MissingToken => rt.metrics.auth_missing.inc(),
                        AuthFailure::InvalidToken => rt.metrics.auth_invalid.inc(),
                        AuthFailure::TokenExpired => rt.metrics.auth_expired.inc(),
                    }
                    tracing::debug!(code = failure.code(), "connection refused");
                    Err(failure.connect_error())
                }
            },
        );
        let rt = self.clone();
        ns.on_connection(move |socket| {
            let Some(user) = user_of(socket) else {
                socket.disconnect(false);
                return;
            };
            rt.metrics.sockets_connected.inc();
            socket.join([user_room(&user)]);
            if rt.presence.connect(&user) {
                rt.announce(&user, true);
            }
        });
        let rt = self.clone();
        ns.on_disconnect(move |socket, _| {
            if let Some(user) = user_of(socket)
                && rt.presence.disconnect(&user)
            {
                rt.announce(&user, false);
            }
        });
        let rt = self.clone();
        ns.on_any(move |_, event, _| rt.metrics.events_in.inc(event));
        let rt = self.clone();
        ns.on_any_outgoing(move |_, event, _| rt.metrics.events_out.inc(event));
    }

    fn install_events(self: &Arc<Self>, ns: &Namespace) {
        let rt = self.clone();
        ns.on(name::SEARCH_START, move |socket, args, ack| {
            rt.start_job(socket, args, ack, |p: SearchStart| JobKind::Search {
                query: p.query,
            });
        });
        let rt = self.clone();
        ns.on(name::MODEL_START, move |socket, args, ack| {
            rt.start_job(socket, args, ack, |p: ModelStart| JobKind::Model {
                prompt: p.prompt,
            });
        });
        let rt = self.clone();
        ns.on(name::TASK_CANCEL, move |socket, args, ack| {
            let (user, payload) = match rt.parse::<TaskCancel>(socket, args) {
                Ok(parsed) => parsed,
                Err(refusal) => return reply(ack, refusal),
            };
            let answer = match rt.jobs.cancel(&payload.job_id, &user) {
                Ok(()) => events::ack_ok_empty(),
                Err(err) => {
                    let (code, message) = err.ack();
                    events::ack_error(code, message)
                }
            };
            reply(ack, answer);
        });
        let rt = self.clone();
        ns.on(name::TAB_UPDATE, move |socket, args, ack| {
            let (user, payload) = match rt.parse::<TabUpdate>(socket, args) {
                Ok(parsed) => parsed,
                Err(refusal) => return reply(ack, refusal),
            };
            let relayed = TabUpdated {
                tab_id: payload.tab_id,
                state: payload.state,
            };
            match events::envelope(&relayed) {
                Ok(envelope) => {
                    rt.metrics.broadcasts.inc();
                    let _ = socket
                        .to([user_room(&user)])
                        .emit(name::TAB_UPDATED, vec![envelope]);
                }
                Err(err) => tracing::warn!(%err, "tab:update envelope"),
            }
            reply(ack, events::ack_ok_empty());
        });
        let rt = self.clone();
        ns.on(name::PRESENCE_SUBSCRIBE, move |socket, args, ack| {
            let payload = match rt.parse::<PresenceSubscribe>(socket, args) {
                Ok((_, payload)) => payload,
                Err(refusal) => return reply(ack, refusal),
            };
            // Join before reading the status: a change in between is then heard, not lost.
            socket.join(payload.user_ids.iter().map(|u| presence::room(u)));
            let snapshot = |user_ids: Vec<String>, online: Vec<bool>| {
                let users = user_ids
                    .into_iter()
                    .zip(online)
                    .map(|(user_id, online)| PresenceStatus { user_id, online })
                    .collect();
                events::ack_ok(&PresenceSnapshot { users })
            };
            if rt.presence.cluster().is_none() {
                let online = payload
                    .user_ids
                    .iter()
                    .map(|u| rt.presence.is_online(u))
                    .collect();
                return reply(ack, snapshot(payload.user_ids, online));
            }
            let rt = rt.clone();
            tokio::spawn(async move {
                let online = rt.presence.statuses(&payload.user_ids, &rt.metrics).await;
                reply(ack, snapshot(payload.user_ids, online));
            });
        });
    }

    /// The socket's user and the payload, or the ack that refuses it (`invalid_payload`).
    fn parse<T: serde::de::DeserializeOwned + events::Validate>(
        &self,
        socket: &Socket,
        args: Vec<Value>,
    ) -> Result<(String, T), Value> {
        let Some(user) = user_of(socket) else {
            return Err(events::ack_error(ErrorCode::Forbidden, "not authenticated"));
        };
        match events::parse_client::<T>(args) {
            Ok(payload) => Ok((user, payload)),
            Err(message) => {
                self.metrics.invalid_payloads.inc();
                tracing::debug!(%message, "invalid payload");
                Err(events::ack_error(ErrorCode::InvalidPayload, message))
            }
        }
    }

    fn start_job<T: serde::de::DeserializeOwned + events::Validate>(
        self: &Arc<Self>,
        socket: &Socket,
        args: Vec<Value>,
        ack: Option<AckSender>,
        kind: impl FnOnce(T) -> JobKind + Send + 'static,
    ) {
        let (user, payload) = match self.parse::<T>(socket, args) {
            Ok(parsed) => parsed,
            Err(refusal) => return reply(ack, refusal),
        };
        let job = Job::new(user, kind(payload));
        if !self.limiter.is_clustered() {
            let allowed = self.limiter.try_acquire(&job.user_id);
            return self.enqueue(job, allowed, ack);
        }
        let rt = self.clone();
        tokio::spawn(async move {
            let allowed = rt.limiter.acquire(&job.user_id).await;
            rt.enqueue(job, allowed, ack);
        });
    }

    /// Enqueues `job` unless the rate limit refused it (`allowed` false), and acks.
    fn enqueue(&self, job: Job, allowed: bool, ack: Option<AckSender>) {
        if !allowed {
            self.metrics.rate_limited.inc();
            return reply(
                ack,
                events::ack_error(ErrorCode::RateLimited, "too many jobs started; slow down"),
            );
        }
        let job_id = job.id.clone();
        match self.jobs.enqueue(job) {
            Ok(()) => {
                self.metrics.jobs_enqueued.inc();
                reply(ack, events::ack_ok(&JobAccepted { job_id }));
            }
            Err(err) => {
                if err == crate::jobs::JobError::QueueFull {
                    self.metrics.jobs_queue_full.inc();
                }
                let (code, message) = err.ack();
                reply(ack, events::ack_error(code, message));
            }
        }
    }

    /// Tells the followers of `user` that they came online or went offline.
    fn announce(&self, user: &str, online: bool) {
        announce_presence(&self.io, &self.metrics, user, online);
    }
}

/// Sends `user:presence:v1` to the followers of `user` (the room `presence:<userId>`, on every
/// node through the adapter).
pub fn announce_presence(io: &SocketIo, metrics: &Metrics, user: &str, online: bool) {
    let payload = UserPresence {
        user_id: user.to_owned(),
        online,
    };
    match events::envelope(&payload) {
        Ok(envelope) => {
            metrics.broadcasts.inc();
            let _ = io
                .to([presence::room(user)])
                .emit(name::USER_PRESENCE, vec![envelope]);
        }
        Err(err) => tracing::warn!(%err, "presence envelope"),
    }
}
