//! Mounting the engine in an application's own hyper service with `Engine::handle`, next to the
//! application's routes: polling, WebSocket handshakes and upgrades all go through it.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use engineio::{Config, Engine, Frame, RemoteAddr, TransportKind};
use futures_util::SinkExt;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// An application on plain hyper (HTTP/1.1 with upgrades): `/other` is its own; whatever
/// `Engine::matches` claims goes to the engine, with the peer address passed along.
async fn app(config: Config) -> (Engine<Recorder>, SocketAddr) {
    let engine = Engine::new(config, Recorder::echo());
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    let mounted = engine.clone();
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.expect("accept");
            let engine = mounted.clone();
            let service =
                hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                    let engine = engine.clone();
                    async move {
                        let res: Response<BoxBody<Bytes, Infallible>> = if engine
                            .matches(req.uri().path())
                        {
                            req.extensions_mut().insert(RemoteAddr(peer));
                            engine.handle(req).await.map(BodyExt::boxed)
                        } else if req.uri().path() == "/other" {
                            Response::new(Full::new(Bytes::from_static(b"app says hi")).boxed())
                        } else {
                            let mut res =
                                Response::new(Full::new(Bytes::from_static(b"app 404")).boxed());
                            *res.status_mut() = StatusCode::NOT_FOUND;
                            res
                        };
                        Ok::<_, Infallible>(res)
                    }
                });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    (engine, addr)
}

#[tokio::test]
async fn app_routes_and_engine_routes_share_one_server() {
    let (engine, addr) = app(quiet_config()).await;
    let other = Http::new(addr, "/other").get("").await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.text(), "app says hi");
    // Node matches the path with its trailing slash: `/engine.io` is the application's.
    let bare = Http::new(addr, "/engine.io")
        .get("EIO=4&transport=polling")
        .await;
    assert_eq!(bare.status, StatusCode::NOT_FOUND);
    assert_eq!(bare.text(), "app 404");
    assert_eq!(engine.clients_count(), 0);

    let http = Http::new(addr, "/engine.io/");
    let polling = Polling::open(&http, "").await;
    let socket = engine.handler().socket(&polling.sid);
    assert!(socket.request().remote_addr.unwrap().ip().is_loopback());
    polling.send("4echo me").await;
    assert_eq!(polling.poll().await, ["4echo me"]);
    // Engine errors are the engine's, not the app's.
    let unknown = http.get("EIO=4&transport=polling&sid=nope").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        unknown.text(),
        r#"{"code":1,"message":"Session ID unknown"}"#
    );
}

#[tokio::test]
async fn websocket_through_the_mounted_service() {
    let (engine, addr) = app(quiet_config()).await;
    let url = format!("ws://{addr}/engine.io/?EIO=4&transport=websocket");
    let (mut ws, sid) = ws_open(&url).await;
    assert_eq!(
        engine.handler().socket(&sid).transport(),
        TransportKind::WebSocket
    );
    ws_send(&mut ws, "4hello").await;
    assert_eq!(ws_text(&mut ws).await, "4hello");
    ws.send(WsMessage::binary(vec![9u8, 8])).await.unwrap();
    assert_eq!(ws_recv(&mut ws).await, WsMessage::binary(vec![9u8, 8]));
}

#[tokio::test]
async fn upgrade_through_the_mounted_service() {
    let (engine, addr) = app(quiet_config()).await;
    let polling = Polling::open(&Http::new(addr, "/engine.io/"), "").await;
    let url = format!(
        "ws://{addr}/engine.io/?EIO=4&transport=websocket&sid={}",
        polling.sid
    );
    let (mut ws, res) = ws_connect(&url).await.unwrap();
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    ws_send(&mut ws, "5").await;
    let socket = engine.handler().socket(&polling.sid);
    within("the upgrade", async {
        while socket.transport() != TransportKind::WebSocket {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    ws_send(&mut ws, "4after upgrade").await;
    assert_eq!(ws_text(&mut ws).await, "4after upgrade");
    socket.send(Frame::text("pushed")).unwrap();
    assert_eq!(ws_text(&mut ws).await, "4pushed");
}

#[tokio::test]
async fn custom_path() {
    let mut config = quiet_config();
    config.path = "/realtime/".to_owned();
    let (engine, addr) = app(config).await;
    let polling = Polling::open(&Http::new(addr, "/realtime/"), "").await;
    assert_eq!(engine.clients_count(), 1);
    polling.send("4x").await;
    assert_eq!(polling.poll().await, ["4x"]);
    let default_path = Http::new(addr, "/engine.io/")
        .get("EIO=4&transport=polling")
        .await;
    assert_eq!(default_path.text(), "app 404");
    let url = format!("ws://{addr}/realtime/?EIO=4&transport=websocket");
    let (mut ws, _) = ws_open(&url).await;
    ws_send(&mut ws, "4y").await;
    assert_eq!(ws_text(&mut ws).await, "4y");
}

#[tokio::test]
async fn handle_answers_404_outside_its_path() {
    let engine = Engine::new(quiet_config(), Recorder::new());
    let req = Request::get("/elsewhere/?EIO=4&transport=polling")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = engine.handle(req).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(engine.clients_count(), 0);
}
