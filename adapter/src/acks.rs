//! Gathering the answers to one broadcast with acks across nodes, for both the classic and the
//! cluster (sharded) adapters. socket.io core's rule: the broadcast is answered when every
//! counted node reported its client count and that many acks arrived, or at the deadline with
//! what came.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use socketio::{AckResponses, Socket, Value};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::wire::normalize_dates;

/// Answers from other nodes to one broadcast with acks.
#[derive(Default)]
pub(crate) struct AckState {
    inner: Mutex<AckInner>,
    notify: Notify,
}

#[derive(Default)]
struct AckInner {
    /// Nodes that reported a client count.
    servers: usize,
    /// Sum of their counts.
    clients: u64,
    /// Acks accepted so far (never more than `clients`).
    accepted: u64,
    /// Acks not yet collected by the waiting future.
    fresh: Vec<Vec<Value>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AckState {
    /// A node reported how many of its clients got the packet.
    pub(crate) fn client_count(&self, count: u64) {
        {
            let mut state = lock(&self.inner);
            state.servers += 1;
            state.clients = state.clients.saturating_add(count);
        }
        self.notify.notify_one();
    }

    /// A remote client's ack.
    pub(crate) fn ack(&self, packet: Option<Value>) {
        {
            let mut state = lock(&self.inner);
            // Counts come before acks from each node (one publisher connection, in order), so
            // more acks than announced clients are bogus.
            if state.accepted >= state.clients {
                return;
            }
            state.accepted += 1;
            let mut value = packet.unwrap_or(Value::Nil);
            normalize_dates(&mut value);
            state.fresh.push(vec![value]);
        }
        self.notify.notify_one();
    }
}

/// Waits for the answers: local ones on `local_rx` (from `sockets`, sent with `ack_id`), remote
/// ones through `state`; `server_count` runs beside the collection, as in socket.io core.
pub(crate) async fn collect<E>(
    state: Arc<AckState>,
    server_count: impl Future<Output = Result<usize, E>>,
    mut local_rx: mpsc::Receiver<Vec<Value>>,
    sockets: Vec<Socket>,
    ack_id: Option<u64>,
    timeout: Duration,
) -> AckResponses {
    let deadline = Instant::now() + timeout;
    let local_expected = sockets.len() as u64;
    let mut result = AckResponses::default();
    let mut local_open = true;
    tokio::pin!(server_count);
    let mut expected_servers: Option<Option<usize>> = None;
    loop {
        let (servers, clients) = {
            let mut s = lock(&state.inner);
            result.responses.append(&mut s.fresh);
            (s.servers, s.clients)
        };
        if let Some(Some(expected)) = expected_servers
            && expected == servers + 1
            && result.responses.len() as u64 == local_expected + clients
        {
            return result;
        }
        tokio::select! {
            n = &mut server_count, if expected_servers.is_none() => {
                expected_servers = Some(n.ok());
            }
            answer = local_rx.recv(), if local_open => match answer {
                Some(args) => result.responses.push(args),
                None => local_open = false,
            },
            () = state.notify.notified() => {}
            () = tokio::time::sleep_until(deadline) => {
                result.timed_out = true;
                if let Some(id) = ack_id {
                    for socket in &sockets {
                        socket.remove_ack_waiter(id);
                    }
                }
                let mut s = lock(&state.inner);
                result.responses.append(&mut s.fresh);
                return result;
            }
        }
    }
}
