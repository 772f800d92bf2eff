//! Mounting the server in an application's own hyper service with `SocketIo::handle`, next to
//! the application's routes: WebSocket connections, namespaces and events work through it, and
//! the application's other routes stay its own.

#![allow(clippy::unwrap_used)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use common::{Client, Log};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use socketio::{SocketIo, Value};
use tokio::net::TcpListener;

async fn mount(io: SocketIo) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            let io = io.clone();
            let service =
                hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                    let io = io.clone();
                    async move {
                        let res: Response<BoxBody<Bytes, Infallible>> =
                            if io.engine().matches(req.uri().path()) {
                                req.extensions_mut().insert(engineio::RemoteAddr(peer));
                                io.handle(req).await.map(BodyExt::boxed)
                            } else {
                                let mut res = Response::new(
                                    Full::new(Bytes::from_static(b"app route")).boxed(),
                                );
                                *res.status_mut() = StatusCode::IM_A_TEAPOT;
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
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_mounted_in_an_application_service() {
    let io = SocketIo::new(common::config());
    let peers = Log::new();
    let p = peers.clone();
    io.of("/chat")
        .on_connection(move |s| p.push(s.handshake().address))
        .on("echo", |_, args, ack| ack.unwrap().send(args));
    let addr = mount(io.clone()).await;

    // The application's own route.
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut raw,
        b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut response = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut raw, &mut response)
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 418"), "{response}");
    assert!(response.ends_with("app route"));

    let mut client = Client::open(
        &format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"),
        &[],
    )
    .await;
    let sid = client.join("/chat").await;
    client.send(r#"42/chat,1["echo","hi",{"n":1}]"#).await;
    assert_eq!(client.recv_text().await, r#"43/chat,1["hi",{"n":1}]"#);
    io.of("/chat").emit("news", vec![Value::from(1)]).unwrap();
    assert_eq!(client.recv_text().await, r#"42/chat,["news",1]"#);
    assert!(io.of("/chat").socket(&sid).is_some());
    // The peer address passed along reaches the handshake.
    let peer = peers.wait_len(1).await[0].unwrap();
    assert!(peer.ip().is_loopback());
}
