//! The cluster seam: which adapter the `SocketIo` gets.
//!
//! No `REDIS_URL` (or `DISABLE_REDIS`): one node, the in-memory adapter. With `REDIS_URL`: the
//! `socketio-redis` classic adapter (Node's `@socket.io/redis-adapter` `createAdapter`), so
//! rooms, broadcasts and worker emits reach sockets on every node. `ADAPTER=sharded`: the
//! sharded adapter (Node's `createShardedAdapter`, Redis ≥ 7 sharded pub/sub, subscription
//! mode `dynamic`). Node's `@socket.io/redis-emitter` speaks only the classic protocol, so with
//! sharded a worker publishes with [`crate::worker::ShardedPublisher`] instead.
//!
//! The job queue of a cluster is not here: see [`crate::jobs_redis`].

use socketio::AdapterFactory;
use socketio_redis::{
    ClassicCluster, RedisAdapterConfig, ShardedCluster, ShardedConfig, Stats, SubscriptionMode,
};

use crate::config::{AdapterKind, Config};
use crate::error::Error;

/// How this node reaches the others.
#[derive(Debug, Clone)]
pub enum Cluster {
    /// One node.
    Off,
    /// A classic Redis cluster.
    Redis(ClassicCluster),
    /// A sharded Redis cluster.
    Sharded(ShardedCluster),
}

/// The subscription mode of the sharded adapter: Node's default; every node and worker of a
/// cluster must agree on it.
pub const SHARDED_MODE: SubscriptionMode = SubscriptionMode::Dynamic;

/// Redis as `/api/health` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisStatus {
    /// Not configured.
    Off,
    /// Subscribed.
    Up,
    /// Configured but not subscribed right now.
    Down,
}

impl RedisStatus {
    /// `off` / `up` / `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

impl Cluster {
    /// Connects as the configuration says.
    pub async fn connect(config: &Config) -> Result<Self, Error> {
        let Some(url) = &config.redis_url else {
            return Ok(Self::Off);
        };
        if config.adapter == AdapterKind::Sharded {
            let sharded_config = ShardedConfig::new(config.redis_key.clone(), SHARDED_MODE);
            let cluster = ShardedCluster::connect(url, sharded_config)
                .await
                .map_err(|err| Error::config("REDIS_URL", err.to_string()))?;
            return Ok(Self::Sharded(cluster));
        }
        let adapter_config = RedisAdapterConfig::with_key(config.redis_key.clone());
        let cluster = ClassicCluster::connect(url, adapter_config)
            .await
            .map_err(|err| Error::config("REDIS_URL", err.to_string()))?;
        Ok(Self::Redis(cluster))
    }

    /// The adapter factory for `SocketIo::with_adapter`, `None` for the in-memory adapter.
    pub fn factory(&self) -> Option<AdapterFactory> {
        match self {
            Self::Off => None,
            Self::Redis(cluster) => Some(cluster.factory()),
            Self::Sharded(cluster) => Some(cluster.factory()),
        }
    }

    /// Waits until the namespaces created so far are subscribed.
    pub async fn ready(&self) -> Result<(), Error> {
        match self {
            Self::Off => Ok(()),
            Self::Redis(cluster) => Ok(cluster.ready().await?),
            Self::Sharded(cluster) => Ok(cluster.ready().await?),
        }
    }

    /// The adapter's counters, `None` when off.
    pub fn stats(&self) -> Option<Stats> {
        match self {
            Self::Off => None,
            Self::Redis(cluster) => Some(cluster.stats()),
            Self::Sharded(cluster) => Some(cluster.stats()),
        }
    }

    /// Redis as health reports it.
    pub fn status(&self) -> RedisStatus {
        match self.stats() {
            None => RedisStatus::Off,
            Some(stats) if stats.subscribed => RedisStatus::Up,
            Some(_) => RedisStatus::Down,
        }
    }
}
