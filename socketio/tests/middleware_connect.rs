//! Namespace middlewares (`use_middleware`): a refusal is a CONNECT_ERROR with Node's exact
//! payload and leaves the connection open; middlewares run in order and the first refusal
//! wins; the handshake (auth, query, headers, address) is visible to them.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Log, serve, val};
use serde_json::json;
use socketio::{ConnectError, SocketIo, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_sends_connect_error_with_data_and_keeps_the_connection() {
    let io = SocketIo::new(common::config());
    let connected = Log::new();
    let disconnected = Log::new();
    for nsp in ["/", "/guarded"] {
        let c = connected.clone();
        let d = disconnected.clone();
        io.of(nsp)
            .use_middleware(|_| {
                Err(ConnectError::new("not authorized")
                    .with_data(val(json!({"reason": "bad token", "code": 7}))))
            })
            .on_connection(move |s| c.push(s.id().to_owned()))
            .on_disconnect(move |s, _| d.push(s.id().to_owned()));
    }
    io.of("/open");
    let server = serve(io).await;
    let mut client = server.client().await;

    client.send("40").await;
    assert_eq!(
        client.recv_text().await,
        r#"44{"message":"not authorized","data":{"reason":"bad token","code":7}}"#
    );
    client.send(r#"40/guarded,{"token":"x"}"#).await;
    assert_eq!(
        client.recv_text().await,
        r#"44/guarded,{"message":"not authorized","data":{"reason":"bad token","code":7}}"#
    );

    // The connection is still open and can join another namespace.
    let sid = client.join("/open").await;
    assert!(server.io.of("/open").socket(&sid).is_some());
    // A refused socket never existed: no connection, no disconnect, not listed.
    assert!(server.io.of("/").sockets().is_empty());
    assert!(server.io.of("/guarded").sockets().is_empty());
    client.expect_silence(Duration::from_millis(50)).await;
    assert!(connected.get().is_empty());
    assert!(disconnected.get().is_empty());

    // Refused again: a refused CONNECT does not count as "already connected".
    client.send("40").await;
    assert!(
        client
            .recv_text()
            .await
            .starts_with(r#"44{"message":"not authorized""#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_without_data_omits_the_data_key() {
    let io = SocketIo::new(common::config());
    io.of("/admin")
        .use_middleware(|_| Err(ConnectError::new("admins only")));
    let server = serve(io).await;
    let mut client = server.client().await;
    client.send("40/admin,").await;
    assert_eq!(
        client.recv_text().await,
        r#"44/admin,{"message":"admins only"}"#
    );
    client.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middlewares_run_in_order_and_the_first_refusal_wins() {
    let io = SocketIo::new(common::config());
    let ran = Log::new();
    let connections = Log::new();
    let (r1, r2, r3) = (ran.clone(), ran.clone(), ran.clone());
    let c = connections.clone();
    io.of("/")
        .use_middleware(move |_| {
            r1.push("first");
            Ok(())
        })
        .use_middleware(move |s| {
            r2.push("second");
            match s.handshake().auth_field("pass") {
                Some(v) if v.as_bool() == Some(true) => Ok(()),
                _ => Err(ConnectError::new("second says no")),
            }
        })
        .use_middleware(move |_| {
            r3.push("third");
            Err(ConnectError::new("third says no"))
        })
        .on_connection(move |_| c.push("connection"));
    io.of("/open")
        .use_middleware(|_| Ok(()))
        .use_middleware(|_| Ok(()));
    let server = serve(io).await;
    let mut client = server.client().await;

    client.send("40").await;
    assert_eq!(
        client.recv_text().await,
        r#"44{"message":"second says no"}"#
    );
    assert_eq!(ran.get(), ["first", "second"]);

    client.send(r#"40{"pass":true}"#).await;
    assert_eq!(client.recv_text().await, r#"44{"message":"third says no"}"#);
    assert_eq!(ran.get(), ["first", "second", "first", "second", "third"]);
    assert!(connections.get().is_empty());

    // Middlewares that all accept: the connection goes through.
    client.join("/open").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middleware_sees_auth_query_headers_and_address_and_can_set_data() {
    let io = SocketIo::new(common::config());
    let seen = Log::new();
    let s2 = seen.clone();
    io.of("/")
        .use_middleware(move |socket| {
            let hs = socket.handshake();
            s2.push(json!({
                "token": common::json(hs.auth_field("token").unwrap_or(&Value::Nil)),
                "room": hs.query_param("room"),
                "name": hs.query_param("name"),
                "eio": hs.query_param("EIO"),
                "header": hs.headers.get("x-api-key").map(|v| v.to_str().unwrap().to_owned()),
                "loopback": hs.address.is_some_and(|a| a.ip().is_loopback()),
                "xdomain": hs.xdomain,
                "secure": hs.secure,
                "url_has_room": hs.url.contains("room=lobby"),
            }));
            if hs.auth_field("token").and_then(Value::as_str) != Some("s3cret") {
                return Err(ConnectError::new("bad token"));
            }
            // What a middleware stores in `data` is there for the handlers.
            socket.set_data(val(json!({"user": "ann"})));
            Ok(())
        })
        .on("whoami", |socket, _, ack| {
            ack.unwrap().send(vec![socket.data()]);
        });
    let server = serve(io).await;

    let mut client = server
        .client_with(
            "&room=lobby&name=J%C3%BCrgen%20K",
            &[("x-api-key", "k-1"), ("origin", "http://example.com")],
        )
        .await;
    client.send(r#"40{"token":"wrong"}"#).await;
    assert_eq!(client.recv_text().await, r#"44{"message":"bad token"}"#);
    client.send(r#"40{"token":"s3cret"}"#).await;
    let reply = common::parse(&client.recv_text().await);
    assert_eq!(reply.kind, 0);
    let expected = |token: &str| {
        json!({
            "token": token, "room": "lobby", "name": "Jürgen K", "eio": "4", "header": "k-1",
            "loopback": true, "xdomain": true, "secure": false, "url_has_room": true,
        })
    };
    assert_eq!(seen.get(), [expected("wrong"), expected("s3cret")]);

    client.send(r#"421["whoami"]"#).await;
    assert_eq!(client.recv_text().await, r#"431[{"user":"ann"}]"#);
}
