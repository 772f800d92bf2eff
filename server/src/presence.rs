//! Who is online: the number of connected sockets of each user on this node.
//!
//! A user is online from their first socket's connection to their last socket's disconnection;
//! each change goes to the room `presence:<userId>`, which sockets join with
//! `presence:subscribe`. In a cluster the count has to be cluster-wide: that comes with the
//! cluster pass (the counts here are this node's).

use std::collections::HashMap;
use std::sync::Mutex;

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
    counts: Mutex<HashMap<String, usize>>,
}

impl Presence {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A socket of `user` connected; `true` if it is the first (the user came online).
    pub fn connect(&self, user: &str) -> bool {
        let mut counts = self.counts();
        let count = counts.entry(user.to_owned()).or_insert(0);
        *count += 1;
        *count == 1
    }

    /// A socket of `user` left; `true` if it was the last (the user went offline).
    pub fn disconnect(&self, user: &str) -> bool {
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
            None => false,
        }
    }

    /// Whether `user` has a connected socket.
    pub fn is_online(&self, user: &str) -> bool {
        self.counts().contains_key(user)
    }

    /// Users online.
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
