//! What the server keeps of the HTTP request that opened a session (Node's `socket.request`,
//! surfaced to Socket.IO as `handshake`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderMap, Method, Uri};

/// The opening request of a session, or a request being checked by `allow_request`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RequestInfo {
    /// Method.
    pub method: Method,
    /// Request target.
    pub uri: Uri,
    /// Headers (shared with every Socket.IO handshake of the connection).
    pub headers: Arc<HeaderMap>,
    /// Decoded query parameters, in order (shared like the headers).
    pub query: Arc<[(String, String)]>,
    /// Peer address, when the server knows it.
    pub remote_addr: Option<SocketAddr>,
    /// Whether the connection was TLS (`x-forwarded-proto: https` is not trusted).
    pub secure: bool,
    /// When the request arrived.
    pub time: SystemTime,
}

impl RequestInfo {
    pub(crate) fn new(parts: &http::request::Parts, remote_addr: Option<SocketAddr>) -> Self {
        Self {
            method: parts.method.clone(),
            uri: owned_uri(&parts.uri),
            headers: Arc::new(owned_headers(&parts.headers)),
            query: parse_query(parts.uri.query().unwrap_or_default()).into(),
            remote_addr,
            secure: parts.uri.scheme() == Some(&http::uri::Scheme::HTTPS),
            time: SystemTime::now(),
        }
    }

    /// The first value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        query_param(&self.query, name)
    }
}

/// hyper parses headers and the target zero-copy: each value is a slice of the connection's
/// read buffer (8 KiB and up). Kept for a session's lifetime, a clone would pin that whole
/// buffer per connection; a copy keeps only the bytes.
fn owned_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name =
            http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or_else(|_| name.clone());
        let value =
            http::HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        out.append(name, value);
    }
    out
}

fn owned_uri(uri: &Uri) -> Uri {
    Uri::try_from(uri.to_string()).unwrap_or_else(|_| uri.clone())
}

pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

pub(crate) fn query_param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The peer address, passed to the engine as a request extension by the standalone server;
/// an application mounting the engine can insert it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);
