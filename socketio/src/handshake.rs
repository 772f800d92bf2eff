//! `socket.handshake`: what the connection brought (Node's `Handshake`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderMap;

use crate::Value;

/// The details of a socket's connection, for handlers and middlewares. Cluster adapters build
/// it from what other nodes send.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// Request headers of the Engine.IO handshake.
    pub headers: Arc<HeaderMap>,
    /// When the socket connected to the namespace.
    pub time: SystemTime,
    /// Peer address.
    pub address: Option<SocketAddr>,
    /// Whether a browser would call the request cross-origin (an `Origin` header was sent).
    pub xdomain: bool,
    /// Whether the connection is encrypted.
    pub secure: bool,
    /// When the handshake was issued, in ms since the epoch.
    pub issued: u64,
    /// The request target of the Engine.IO handshake.
    pub url: String,
    /// Query parameters.
    pub query: Arc<[(String, String)]>,
    /// The CONNECT payload (`{}` when there was none).
    pub auth: Value,
}

impl Handshake {
    pub(crate) fn new(request: &engineio::RequestInfo, auth: Value) -> Self {
        let now = SystemTime::now();
        let issued = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Self {
            headers: request.headers.clone(),
            time: now,
            address: request.remote_addr,
            xdomain: request.headers.contains_key(http::header::ORIGIN),
            secure: request.secure,
            issued,
            url: request.uri.to_string(),
            query: request.query.clone(),
            auth,
        }
    }

    /// The first value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Field `name` of the auth payload, if it is a map with that key.
    pub fn auth_field(&self, name: &str) -> Option<&Value> {
        map_get(&self.auth, name)
    }
}

/// `value[name]` for a map value with string keys.
pub fn map_get<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    value
        .as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(name))
        .map(|(_, v)| v)
}
