//! The HTTP routes beside Socket.IO: health, metrics, demo page, client bundle, dev tokens, and
//! CORS allow and deny (our routes and Engine.IO, polling and WebSocket).

#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, config, get, request, start};
use serde_json::json;
use sockeye::config::Origins;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics() {
    let server = start(config()).await;
    let mut alice = server.user("alice").await;
    let ack = alice.ack("search:start", json!({ "query": "x" })).await;
    assert_eq!(ack["ok"], true);
    alice.event("search:complete:v1").await;

    let health = get(server.addr, "/api/health").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.header("content-type"), Some("application/json"));
    let h = health.json();
    assert_eq!(h["status"], "ok");
    assert_eq!(h["nodeId"], "test");
    assert_eq!(h["redis"], "off");
    assert_eq!(h["connections"]["websocket"], 1);
    assert_eq!(h["connections"]["total"], 1);
    assert_eq!(h["usersOnline"], 1);
    assert!(h["uptimeSecs"].is_u64());

    let metrics = get(server.addr, "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.body;
    for line in [
        "sockeye_connections{transport=\"websocket\"} 1",
        "sockeye_connections{transport=\"polling\"} 0",
        "sockeye_events_received_total{event=\"search:start\"} 1",
        "sockeye_events_sent_total{event=\"search:result:v1\"} 5",
        "sockeye_jobs_total{outcome=\"enqueued\"} 1",
        "sockeye_jobs_total{outcome=\"completed\"} 1",
        "sockeye_sockets_connected_total 1",
        "# TYPE sockeye_bytes_received_total counter",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let bytes = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    };
    assert!(bytes("sockeye_bytes_received_total") > 100);
    assert!(bytes("sockeye_bytes_sent_total") > 500);
    assert!(bytes("sockeye_broadcasts_total") >= 12);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_page_events_ts_and_client_bundle() {
    let dir = std::env::temp_dir().join(format!("sockeye-client-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("socket.io.min.js"), "/* the client */").unwrap();
    let mut config = config();
    config.client_dir = dir.clone();
    let server = start(config).await;

    let page = get(server.addr, "/").await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.body
            .contains("<script src=\"/socket.io/socket.io.min.js\"></script>")
    );
    let ts = get(server.addr, "/events.ts").await;
    assert!(ts.body.contains("export interface ServerToClientEvents"));

    let bundle = get(server.addr, "/socket.io/socket.io.min.js").await;
    assert_eq!(bundle.status, 200);
    assert_eq!(bundle.body, "/* the client */");
    assert!(
        bundle
            .header("content-type")
            .unwrap()
            .starts_with("application/javascript")
    );
    let etag = bundle.header("etag").unwrap().to_owned();
    let cached = request(
        server.addr,
        "GET",
        "/socket.io/socket.io.min.js",
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(cached.status, 304);
    // Not installed → a hint; not a bundle file → Engine.IO answers.
    let missing = get(server.addr, "/socket.io/socket.io.js").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("npm ci"), "{}", missing.body);
    let engine = get(server.addr, "/socket.io/other.js").await;
    assert_eq!(engine.status, 400, "{}", engine.body);

    assert_eq!(get(server.addr, "/nope").await.status, 404);
    // Not in dev mode: no dev tokens.
    assert_eq!(
        get(server.addr, "/api/dev/token?user=alice").await.status,
        404
    );
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_tokens_in_dev_mode() {
    let mut config = config();
    config.dev = true;
    let server = start(config).await;
    let reply = get(server.addr, "/api/dev/token?user=dana").await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["userId"], "dana");
    let token = body["token"].as_str().unwrap();
    let client = Client::connect(server.addr, Some(json!({ "token": token })), &[])
        .await
        .unwrap();
    let socket = server.app().io.of("/").socket(&client.sid).unwrap();
    assert!(socket.rooms().contains(&"user:dana".to_owned()));
    for bad in ["", "a%20b", &"x".repeat(65)] {
        let reply = get(server.addr, &format!("/api/dev/token?user={bad}")).await;
        assert_eq!(reply.status, 400, "{bad}");
    }
    assert_eq!(get(server.addr, "/api/dev/token").await.status, 400);
    server.shutdown().await;
}

const ALLOWED: &str = "https://app.example";
const DENIED: &str = "https://evil.example";
const HANDSHAKE: &str = "/socket.io/?EIO=4&transport=polling";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_frontend_origin_no_cors_headers() {
    let server = start(config()).await;
    for path in ["/api/health", HANDSHAKE] {
        let reply = request(server.addr, "GET", path, &[("origin", ALLOWED)]).await;
        assert_eq!(reply.status, 200, "{path}");
        assert!(
            reply.header("access-control-allow-origin").is_none(),
            "{path}"
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frontend_origin_allows_and_denies() {
    let mut config = config();
    config.frontend_origin = Some(Origins::List(vec![ALLOWED.into()]));
    let server = start(config).await;
    let addr = server.addr;

    // Our API.
    let allowed = request(addr, "GET", "/api/health", &[("origin", ALLOWED)]).await;
    assert_eq!(allowed.header("access-control-allow-origin"), Some(ALLOWED));
    assert_eq!(allowed.header("vary"), Some("Origin"));
    let denied = request(addr, "GET", "/api/health", &[("origin", DENIED)]).await;
    assert!(denied.header("access-control-allow-origin").is_none());
    let preflight = request(
        addr,
        "OPTIONS",
        "/api/health",
        &[
            ("origin", ALLOWED),
            ("access-control-request-headers", "authorization"),
        ],
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some(ALLOWED)
    );
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("authorization")
    );

    // Engine.IO polling handshake.
    let allowed = request(addr, "GET", HANDSHAKE, &[("origin", ALLOWED)]).await;
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(ALLOWED));
    let denied = request(addr, "GET", HANDSHAKE, &[("origin", DENIED)]).await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    assert!(denied.header("access-control-allow-origin").is_none());
    // No Origin (not a browser), and the server's own origin (the demo page), are fine.
    assert_eq!(request(addr, "GET", HANDSHAKE, &[]).await.status, 200);
    let own = format!("http://{addr}");
    assert_eq!(
        request(addr, "GET", HANDSHAKE, &[("origin", &own)])
            .await
            .status,
        200
    );

    // WebSocket: the allowed origin connects, another is refused.
    Client::connect(
        addr,
        Some(json!({ "token": common::token("a") })),
        &[("origin", ALLOWED)],
    )
    .await
    .unwrap();
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("origin", DENIED.parse().unwrap());
    let refused = tokio_tungstenite::connect_async(req).await;
    assert!(
        refused.is_err(),
        "a WebSocket from a denied origin was accepted"
    );
    server.shutdown().await;
}
