//! Per-user token buckets for the events that start jobs.
//!
//! Each user has a bucket of `burst` tokens refilled at `per_minute` tokens a minute; a start
//! takes one token, and with none left it is refused (`rate_limited`). On one node the buckets
//! live in memory. The table is bounded: past [`MAX_BUCKETS`], full buckets are forgotten (a full
//! bucket is the same as none).
//!
//! With Redis the bucket is cluster-wide: a Lua script (atomic, on Redis time, so nodes' clocks
//! do not matter) keeps `sockeye:<REDIS_KEY>:rate:<userId>` = `{tokens, ts}` with a TTL of the
//! time to refill, so idle users cost nothing. When Redis does not answer (down, or slower than
//! the command timeout), the limiter falls back to this node's in-memory bucket: the limit stays
//! enforced per node (at worst `nodes × burst` starts, not unlimited), and users keep working
//! through a Redis outage instead of every start being refused. Failing closed would turn a
//! Redis hiccup into a full outage of job starts; failing wide open would let one user flood the
//! workers exactly when the system is degraded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::presence_cluster::COMMAND_TIMEOUT;

/// Buckets kept before full ones are swept.
pub const MAX_BUCKETS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// KEYS: the user's bucket. ARGV: burst, refill per ms. Returns 1 when a token was taken.
const LUA_BUCKET: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local ok = 0
if tokens >= 1 then tokens = tokens - 1; ok = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1000)
return ok
";

/// The cluster-wide buckets in Redis.
struct Shared {
    conn: ConnectionManager,
    prefix: String,
    metrics: Arc<Metrics>,
}

/// The token buckets of every user.
pub struct RateLimiter {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
    redis: Option<Shared>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("burst", &self.burst)
            .field("per_second", &self.per_second)
            .field("cluster", &self.redis.is_some())
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// Buckets of `burst` tokens, refilled at `per_minute` a minute, in this node's memory.
    pub fn new(burst: u32, per_minute: u32) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_second: f64::from(per_minute.max(1)) / 60.0,
            buckets: Mutex::new(HashMap::new()),
            redis: None,
        }
    }

    /// The same buckets shared by every node through Redis (keys under `sockeye:<redis_key>`),
    /// this node's memory serving only while Redis does not answer (counted in `metrics`).
    pub fn clustered(
        burst: u32,
        per_minute: u32,
        conn: ConnectionManager,
        redis_key: &str,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            redis: Some(Shared {
                conn,
                prefix: format!("sockeye:{redis_key}:rate:"),
                metrics,
            }),
            ..Self::new(burst, per_minute)
        }
    }

    /// Whether the buckets are cluster-wide (then use [`acquire`](Self::acquire)).
    pub fn is_clustered(&self) -> bool {
        self.redis.is_some()
    }

    /// Takes a token from `user`'s bucket: in Redis when clustered, else (or when Redis does not
    /// answer) in this node's memory.
    pub async fn acquire(&self, user: &str) -> bool {
        let Some(redis) = &self.redis else {
            return self.try_acquire(user);
        };
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(LUA_BUCKET)
            .arg(1)
            .arg(format!("{}{user}", redis.prefix))
            .arg(self.burst)
            .arg(self.per_second / 1000.0);
        let mut conn = redis.conn.clone();
        match tokio::time::timeout(COMMAND_TIMEOUT, cmd.query_async::<i64>(&mut conn)).await {
            Ok(Ok(taken)) => taken == 1,
            Ok(Err(err)) => {
                redis.metrics.redis_fallbacks.inc();
                tracing::warn!(%err, "rate limit: Redis failed; using this node's bucket");
                self.try_acquire(user)
            }
            Err(_) => {
                redis.metrics.redis_fallbacks.inc();
                tracing::warn!("rate limit: Redis timed out; using this node's bucket");
                self.try_acquire(user)
            }
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
