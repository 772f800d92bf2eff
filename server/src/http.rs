//! The HTTP routes that share the port with Socket.IO.
//!
//! In order: the official client bundle (`/socket.io/socket.io.min.js` and friends, as Node's
//! `serveClient` offers it, read from the `socket.io-client` npm package), Engine.IO (every
//! other path the engine matches), then the server's own routes:
//!
//! | route | what |
//! |---|---|
//! | `GET /` | the demo page |
//! | `GET /events.ts` | the TypeScript event catalogue |
//! | `GET /api/health` | JSON: node id, uptime, connections, Redis `up`/`down`/`off`, jobs |
//! | `GET /metrics` | Prometheus text |
//! | `GET /api/dev/token?user=NAME` | `--dev` only: a token for NAME |
//!
//! With `FRONTEND_ORIGIN`, allowed origins get CORS headers on `/api/*` (and on Engine.IO, set
//! in its config); without it no CORS header is ever sent.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_REQUEST_HEADERS, CACHE_CONTROL, CONTENT_TYPE, ETAG, HOST, IF_NONE_MATCH, ORIGIN,
    VARY,
};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};

use crate::app::App;
use crate::config::Origins;

/// The body of every response.
pub type Body = BoxBody<Bytes, Infallible>;

/// The demo page.
const DEMO_PAGE: &str = include_str!("demo.html");
/// The TypeScript catalogue, as committed.
const EVENTS_TS: &str = include_str!("../events.ts");
/// The client bundle files served under the engine path.
const CLIENT_FILES: &[&str] = &[
    "socket.io.js",
    "socket.io.js.map",
    "socket.io.min.js",
    "socket.io.min.js.map",
    "socket.io.esm.min.js",
    "socket.io.esm.min.js.map",
    "socket.io.msgpack.min.js",
    "socket.io.msgpack.min.js.map",
];
/// How long a dev token lives.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(3600);

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed()
}

fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut res = Response::new(full(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    response(status, "application/json", value.to_string())
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "error": message }))
}

/// Answers one request.
pub async fn route<B>(app: &App, req: Request<B>) -> Response<Body>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
    let path = req.uri().path().to_owned();
    let engine_path = app.io.config().engine.path.clone();
    if let Some(file) = path
        .strip_prefix(engine_path.as_str())
        .filter(|f| CLIENT_FILES.contains(f))
    {
        app.metrics.http_requests.inc();
        return client_file(app, file, req.headers()).await;
    }
    if app.io.engine().matches(&path) {
        return app.io.handle(req).await.map(BodyExt::boxed);
    }
    app.metrics.http_requests.inc();
    let cors = cors_headers(app, req.headers(), &path);
    let mut res = match (req.method(), path.as_str()) {
        (&Method::OPTIONS, p) if p.starts_with("/api/") => preflight(req.headers()),
        (&Method::GET | &Method::HEAD, "/api/health") => health(app),
        (&Method::GET, "/metrics") => metrics(app),
        (&Method::GET, "/") => response(StatusCode::OK, "text/html; charset=utf-8", DEMO_PAGE),
        (&Method::GET, "/events.ts") => {
            response(StatusCode::OK, "text/plain; charset=utf-8", EVENTS_TS)
        }
        (&Method::GET, "/api/dev/token") => dev_token(app, req.uri().query().unwrap_or_default()),
        _ => error(StatusCode::NOT_FOUND, "not found"),
    };
    res.headers_mut().extend(cors);
    res
}

/// CORS headers for a route of ours: only `/api/*`, only for allowed origins.
fn cors_headers(
    app: &App,
    headers: &HeaderMap,
    path: &str,
) -> Vec<(http::HeaderName, HeaderValue)> {
    let Some(origins) = &app.config.frontend_origin else {
        return Vec::new();
    };
    if !path.starts_with("/api/") {
        return Vec::new();
    }
    match origins {
        Origins::Any => vec![(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"))],
        Origins::List(list) => {
            let mut out = vec![(VARY, HeaderValue::from_static("Origin"))];
            if let Some(origin) = headers.get(ORIGIN)
                && list.iter().any(|a| a.as_bytes() == origin.as_bytes())
            {
                out.push((ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()));
            }
            out
        }
    }
}

fn preflight(headers: &HeaderMap) -> Response<Body> {
    let mut res = Response::new(full(Bytes::new()));
    *res.status_mut() = StatusCode::NO_CONTENT;
    let out = res.headers_mut();
    out.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET,HEAD,OPTIONS"),
    );
    if let Some(requested) = headers.get(ACCESS_CONTROL_REQUEST_HEADERS) {
        out.insert(ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
    }
    res
}

/// Whether a handshake's `Origin` may connect: none (not a browser), an allowed one, or the
/// server's own (the demo page).
pub fn origin_allowed(origins: &Origins, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let list = match origins {
        Origins::Any => return true,
        Origins::List(list) => list,
    };
    if list.iter().any(|a| a.as_bytes() == origin.as_bytes()) {
        return true;
    }
    let own = origin.to_str().ok().and_then(|o| {
        o.strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"))
    });
    matches!((own, headers.get(HOST).and_then(|h| h.to_str().ok())), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

fn health(app: &App) -> Response<Body> {
    let connections = app.connections();
    let total: u64 = connections.values().sum();
    let body = serde_json::json!({
        "status": "ok",
        "nodeId": app.config.node_id,
        "uptimeSecs": app.started.elapsed().as_secs(),
        "connections": {
            "total": total,
            "polling": connections.get("polling").copied().unwrap_or(0),
            "websocket": connections.get("websocket").copied().unwrap_or(0),
        },
        "usersOnline": app.realtime.presence.online_users(),
        "redis": app.cluster.status().as_str(),
        "jobs": {
            "queued": app.realtime.jobs.queued(),
            "running": app.realtime.jobs.running(),
            "worker": app.config.example_worker,
        },
    });
    json(StatusCode::OK, &body)
}

fn metrics(app: &App) -> Response<Body> {
    let text = app.metrics.render(&app.gauges());
    response(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        text,
    )
}

fn dev_token(app: &App, query: &str) -> Response<Body> {
    if !app.realtime.auth.issues_dev_tokens() {
        return error(StatusCode::NOT_FOUND, "not found");
    }
    let user = query.split('&').find_map(|kv| kv.strip_prefix("user="));
    let Some(user) = user.filter(|u| {
        (1..=64).contains(&u.len())
            && u.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    }) else {
        return error(
            StatusCode::BAD_REQUEST,
            "user must be 1 to 64 characters of A-Z a-z 0-9 - _ .",
        );
    };
    match app.realtime.auth.dev_token(user, DEV_TOKEN_TTL) {
        Some(token) => json(
            StatusCode::OK,
            &serde_json::json!({ "token": token, "userId": user, "expiresIn": DEV_TOKEN_TTL.as_secs() }),
        ),
        None => error(StatusCode::INTERNAL_SERVER_ERROR, "could not sign a token"),
    }
}

async fn client_file(app: &App, file: &str, headers: &HeaderMap) -> Response<Body> {
    let path = app.config.client_dir.join(file);
    let Ok(data) = tokio::fs::read(&path).await else {
        return response(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "the socket.io-client package is not installed: run `npm ci` in server/ (or set CLIENT_DIR)\n",
        );
    };
    let etag = format!("\"{:x}-{:x}\"", data.len(), fnv1a(&data));
    if headers
        .get(IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        let mut res = Response::new(full(Bytes::new()));
        *res.status_mut() = StatusCode::NOT_MODIFIED;
        return res;
    }
    let content_type = if file.ends_with(".map") {
        "application/json"
    } else {
        "application/javascript; charset=utf-8"
    };
    let mut res = response(StatusCode::OK, content_type, data);
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        res.headers_mut().insert(ETAG, etag);
    }
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=0"));
    res
}

/// A cheap content hash for the ETag.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_origin_and_listed_origins_pass() {
        let list = Origins::List(vec!["https://app.example".into()]);
        let mut h = HeaderMap::new();
        assert!(origin_allowed(&list, &h), "no Origin: not a browser");
        h.insert(ORIGIN, HeaderValue::from_static("https://app.example"));
        assert!(origin_allowed(&list, &h));
        h.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!origin_allowed(&list, &h));
        h.insert(HOST, HeaderValue::from_static("evil.example"));
        assert!(origin_allowed(&list, &h), "same origin as the server");
        assert!(origin_allowed(&Origins::Any, &h));
    }
}
