//! Per-user token buckets for the events that start jobs.
//!
//! Each user has a bucket of `burst` tokens refilled at `per_minute` tokens a minute; a start
//! takes one token, and with none left it is refused (`rate_limited`). Buckets live on this node
//! (in a cluster a user's sockets on two nodes get a bucket on each). The table is bounded: past
//! [`MAX_BUCKETS`], full buckets are forgotten (a full bucket is the same as none).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Buckets kept before full ones are swept.
pub const MAX_BUCKETS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The token buckets of every user.
#[derive(Debug)]
pub struct RateLimiter {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Buckets of `burst` tokens, refilled at `per_minute` a minute.
    pub fn new(burst: u32, per_minute: u32) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_minute.max(1)) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token from `user`'s bucket now; `false` when it is empty.
    pub fn try_acquire(&self, user: &str) -> bool {
        self.try_acquire_at(user, Instant::now())
    }

    /// Takes a token at time `now`.
    pub fn try_acquire_at(&self, user: &str, now: Instant) -> bool {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(user) {
            let refill = Duration::from_secs_f64(self.burst / self.per_second);
            buckets.retain(|_, b| now.saturating_duration_since(b.updated) < refill);
        }
        let bucket = buckets.entry(user.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Users with a bucket.
    pub fn len(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether no user has a bucket.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_per_user() {
        let limiter = RateLimiter::new(3, 60);
        let t0 = Instant::now();
        assert!((0..3).all(|_| limiter.try_acquire_at("a", t0)));
        assert!(!limiter.try_acquire_at("a", t0));
        assert!(limiter.try_acquire_at("b", t0), "buckets are per user");
        assert!(!limiter.try_acquire_at("a", t0 + Duration::from_millis(500)));
        assert!(limiter.try_acquire_at("a", t0 + Duration::from_millis(1100)));
        assert!(!limiter.try_acquire_at("a", t0 + Duration::from_millis(1200)));
        // Refill stops at the burst size.
        let later = t0 + Duration::from_secs(3600);
        assert!((0..3).all(|_| limiter.try_acquire_at("a", later)));
        assert!(!limiter.try_acquire_at("a", later));
    }
}
