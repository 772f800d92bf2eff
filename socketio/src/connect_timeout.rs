//! `connectTimeout`: a connection that joins no namespace in time is closed (Node's
//! `Client#connectTimeout`).
//!
//! Every connection has the same timeout, so deadlines come in the order connections open: one
//! FIFO and one task for the whole server, instead of a timer task per connection (which
//! costs more memory than the rest of an idle connection's Socket.IO state).

use std::collections::VecDeque;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;

use crate::client::ClientShared;
use crate::reason::DisconnectReason;

#[derive(Default)]
pub(crate) struct ConnectTimeouts {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// (deadline, connection), deadlines increasing.
    queue: VecDeque<(Instant, Weak<ClientShared>)>,
    /// The task, while there are connections to watch. (Checked for being finished too: a
    /// runtime that shut down takes its tasks with it.)
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ConnectTimeouts {
    /// Watches `client` until `timeout` from now. `self` must be in an `Arc` the task can hold.
    pub(crate) fn watch(
        self: &std::sync::Arc<Self>,
        client: Weak<ClientShared>,
        timeout: Duration,
    ) {
        let mut state = self.lock();
        state.queue.push_back((Instant::now() + timeout, client));
        if state
            .task
            .as_ref()
            .is_none_or(tokio::task::JoinHandle::is_finished)
        {
            let this = self.clone();
            state.task = Some(tokio::spawn(async move { this.run().await }));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn run(&self) {
        loop {
            let next = {
                let mut state = self.lock();
                let now = Instant::now();
                let mut expired = Vec::new();
                while let Some((deadline, _)) = state.queue.front() {
                    if *deadline > now {
                        break;
                    }
                    if let Some((_, client)) = state.queue.pop_front() {
                        expired.push(client);
                    }
                }
                let next = state.queue.front().map(|(deadline, _)| *deadline);
                if next.is_none() {
                    state.task = None;
                    state.queue = VecDeque::new();
                }
                drop(state);
                for client in expired {
                    if let Some(client) = client.upgrade()
                        && !client.has_joined()
                    {
                        tracing::debug!(sid = %client.conn.id(), "no namespace joined within connectTimeout");
                        client.close(DisconnectReason::ForcedServerClose);
                    }
                }
                next
            };
            match next {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => return,
            }
        }
    }
}
