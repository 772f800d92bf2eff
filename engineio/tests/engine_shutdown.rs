//! `Engine::close_all` and the shutdown future of `Engine::serve`: every session is closed
//! (`forced close`) after what it has queued is sent.

mod common;

use bytes::Bytes;
use common::*;
use engineio::{CloseReason, Frame};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

#[tokio::test]
async fn close_all_closes_every_session_after_its_queue() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let http = server.http();
    let polls = [
        Polling::open(&http, "").await,
        Polling::open(&http, "").await,
    ];
    let url = server.ws_url("EIO=4&transport=websocket");
    let mut sockets = [ws_open(&url).await, ws_open(&url).await];
    assert_eq!(server.engine.clients_count(), 4);
    for socket in server.engine.sockets() {
        socket.send(Frame::text("bye")).unwrap();
    }

    server.engine.close_all();

    for (ws, sid) in &mut sockets {
        let (data, _) = ws_until_closed(ws).await;
        assert_eq!(data, [WsMessage::text("4bye")]);
        assert_eq!(
            server.handler().wait_close(sid).await,
            CloseReason::ForcedClose
        );
    }
    for polling in &polls {
        assert_eq!(polling.poll().await, ["4bye", "1"]);
        assert_eq!(
            server.handler().wait_close(&polling.sid).await,
            CloseReason::ForcedClose
        );
    }
    server.wait_clients(0).await;
    for sid in polls
        .iter()
        .map(|p| p.sid.as_str())
        .chain(sockets.iter().map(|(_, sid)| sid.as_str()))
    {
        assert_eq!(server.handler().closes(sid), [CloseReason::ForcedClose]);
    }

    // The engine itself keeps serving.
    let again = Polling::open(&http, "").await;
    again.send("4hello").await;
    assert_eq!(
        server.handler().wait_messages(&again.sid, 1).await,
        [text("hello")]
    );
}

#[tokio::test]
async fn serve_shutdown_closes_every_session_and_stops_accepting() {
    let mut server = serve(quiet_config(), Recorder::new()).await;
    let (mut ws, ws_sid) = ws_open(&server.ws_url("EIO=4&transport=websocket")).await;

    // A keep-alive connection, opened before the shutdown, to poll after it.
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut conn, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(driver);
    let mut get = async |query: String| {
        let req = Request::get(format!("/engine.io/?{query}"))
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let res = within("GET", conn.send_request(req)).await.unwrap();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    };
    let open = get("EIO=4&transport=polling".to_owned()).await;
    let poll_sid = open_sid(&open);
    server
        .handler()
        .socket(&poll_sid)
        .send(Frame::text("last"))
        .unwrap();
    assert_eq!(server.engine.clients_count(), 2);

    server.shutdown().await.unwrap();

    let (data, _) = ws_until_closed(&mut ws).await;
    assert!(data.is_empty(), "{data:?}");
    assert_eq!(
        server.handler().wait_close(&ws_sid).await,
        CloseReason::ForcedClose
    );
    assert_eq!(
        server.handler().wait_close(&poll_sid).await,
        CloseReason::ForcedClose
    );
    assert_eq!(
        get(format!("EIO=4&transport=polling&sid={poll_sid}")).await,
        "4last\x1e1"
    );
    server.wait_clients(0).await;

    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "the listener is closed"
    );
}
