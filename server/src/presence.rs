//! Who is online: the number of connected sockets of each user.
//!
//! A user is online from their first socket's connection to their last socket's disconnection;
//! each change goes to the room `presence:<userId>`, which sockets join with
//! `presence:subscribe`. One node keeps the counts in memory and announces itself. With Redis,
//! the counts here are this node's share and [`ClusterPresence`] decides, cluster-wide, when a
//! user's first socket arrives or their last leaves (see `presence_cluster`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::metrics::Metrics;
use crate::presence_cluster::lock;
pub use crate::presence_cluster::{Announce, ClusterPresence};

/// The room of sockets following `user`'s presence.
pub fn room(user: &str) -> String {
    format!("presence:{user}")
}

/// The room of `user`'s sockets.
pub fn user_room(user: &str) -> String {
    format!("user:{user}")
}

/// Connected sockets per user.
#[derive(Debug, Default)]
pub struct Presence {
    counts: Arc<Mutex<HashMap<String, usize>>>,
    cluster: Option<ClusterPresence>,
}

impl Presence {
    /// Presence across the cluster: this node's counts go to Redis through `conn`, and the
    /// cluster's transitions are announced with `announce`.
    pub(crate) fn clustered(
        conn: redis::aio::ConnectionManager,
        redis_key: &str,
        node_id: &str,
        ttl: std::time::Duration,
        announce: Announce,
    ) -> Self {
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let cluster =
            ClusterPresence::start(conn, redis_key, node_id, ttl, counts.clone(), announce);
        Self {
            counts,
            cluster: Some(cluster),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        lock(&self.counts)
    }

    /// The cluster side, `None` on one node.
    pub fn cluster(&self) -> Option<&ClusterPresence> {
        self.cluster.as_ref()
    }

    /// A socket of `user` connected; `true` if the caller must announce them online (their
    /// first socket, on one node; in a cluster the sync task announces, so always `false`).
    pub fn connect(&self, user: &str) -> bool {
        let first = {
            let mut counts = self.counts();
            let count = counts.entry(user.to_owned()).or_insert(0);
            *count += 1;
            *count == 1
        };
        match &self.cluster {
            Some(cluster) => {
                cluster.touch(user);
                false
            }
            None => first,
        }
    }

    /// A socket of `user` left; `true` if the caller must announce them offline (their last
    /// socket, on one node; in a cluster the sync task announces, so always `false`).
    pub fn disconnect(&self, user: &str) -> bool {
        let last = {
            let mut counts = self.counts();
            match counts.get_mut(user) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    false
                }
                Some(_) => {
                    counts.remove(user);
                    true
                }
                None => return false,
            }
        };
        match &self.cluster {
            Some(cluster) => {
                cluster.touch(user);
                false
            }
            None => last,
        }
    }

    /// Whether `user` has a connected socket on this node.
    pub fn is_online(&self, user: &str) -> bool {
        self.counts().contains_key(user)
    }

    /// Whether each of `users` is online: cluster-wide with Redis. When Redis cannot answer,
    /// this node's view (a user connected here is online; others are reported offline) beats
    /// failing the subscription (counted in `metrics`).
    pub async fn statuses(&self, users: &[String], metrics: &Metrics) -> Vec<bool> {
        if let Some(cluster) = &self.cluster {
            match cluster.statuses(users).await {
                Ok(statuses) => return statuses,
                Err(err) => {
                    metrics.redis_fallbacks.inc();
                    tracing::warn!(%err, "presence: status from Redis failed; answering with this node's view")
                }
            }
        }
        users.iter().map(|u| self.is_online(u)).collect()
    }

    /// Users online on this node.
    pub fn online_users(&self) -> usize {
        self.counts().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_and_last_socket() {
        let p = Presence::default();
        assert!(p.connect("a"));
        assert!(!p.connect("a"));
        assert!(p.is_online("a"));
        assert!(!p.disconnect("a"));
        assert!(p.disconnect("a"));
        assert!(!p.is_online("a"));
        assert!(!p.disconnect("a"));
        assert_eq!(p.online_users(), 0);
    }
}
