//! Joining a namespace: the CONNECT reply comes before anything the connection handler emits;
//! the socket id is fresh (not the Engine.IO sid); `handshake.auth` is the CONNECT payload or
//! `{}`.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Log, json, serve};
use serde_json::json;
use socketio::{SocketIo, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_reply_comes_before_what_the_connection_handler_emits() {
    let io = SocketIo::new(common::config());
    let auths = Log::new();
    for nsp in ["/", "/admin"] {
        let auths = auths.clone();
        io.of(nsp).on_connection(move |s| {
            auths.push((s.ns().name().to_owned(), json(&s.handshake().auth)));
            // Emits from the handler, to the socket and to a room it joins right now.
            s.emit("welcome", vec![Value::from(s.id())]).unwrap();
            s.join(["lobby"]);
            s.ns().to(["lobby"]).emit("joined", vec![]).unwrap();
        });
    }
    let server = serve(io).await;
    let mut client = server.client().await;

    client.send("40").await;
    let reply = client.recv_text().await;
    let pkt = common::parse(&reply);
    assert_eq!(pkt.kind, 0);
    let sid = pkt.data.as_ref().unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    // Exactly {"sid":...}: no pid without connection state recovery.
    assert_eq!(reply, format!(r#"40{{"sid":"{sid}"}}"#));
    assert_ne!(
        sid, client.eio_sid,
        "socket id must differ from the Engine.IO sid"
    );
    assert_eq!(
        client.recv_text().await,
        format!(r#"42["welcome","{sid}"]"#)
    );
    assert_eq!(client.recv_text().await, r#"42["joined"]"#);

    client.send(r#"40/admin,{"token":"abc","n":[1,2]}"#).await;
    let reply = client.recv_text().await;
    let admin_sid = common::parse(&reply).data.unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(reply, format!(r#"40/admin,{{"sid":"{admin_sid}"}}"#));
    assert_ne!(admin_sid, sid);
    assert_ne!(admin_sid, client.eio_sid);
    assert_eq!(
        client.recv_text().await,
        format!(r#"42/admin,["welcome","{admin_sid}"]"#)
    );
    assert_eq!(client.recv_text().await, r#"42/admin,["joined"]"#);

    assert_eq!(
        auths.get(),
        [
            ("/".to_owned(), json!({})),
            ("/admin".to_owned(), json!({"token": "abc", "n": [1, 2]})),
        ]
    );
    // The server-side socket agrees, and both ride the same Engine.IO connection.
    let socket = server.socket("/", &sid);
    assert_eq!(socket.id(), sid);
    assert_eq!(socket.conn().id(), client.eio_sid);
    assert_eq!(
        server.socket("/admin", &admin_sid).conn().id(),
        client.eio_sid
    );
    assert!(socket.connected());
    assert!(!socket.recovered());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_ids_are_unique_across_connections() {
    let server = serve(SocketIo::new(common::config())).await;
    let mut ids = std::collections::HashSet::new();
    let mut clients = Vec::new();
    for _ in 0..20 {
        let (client, sid) = server.joined("/").await;
        assert!(ids.insert(sid.clone()), "duplicate socket id {sid}");
        assert!(ids.insert(client.eio_sid.clone()));
        clients.push(client);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_twice_to_a_namespace_closes_the_connection() {
    let server = serve(SocketIo::new(common::config())).await;
    let (mut client, _) = server.joined("/").await;
    client.send("40").await;
    assert!(client.expect_closed().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_handlers_run_in_registration_order() {
    let io = SocketIo::new(common::config());
    for i in 0..3 {
        io.of("/")
            .on_connection(move |s| s.emit("h", vec![Value::from(i)]).unwrap());
    }
    let server = serve(io).await;
    let (mut client, _) = server.joined("/").await;
    for i in 0..3 {
        assert_eq!(client.recv_text().await, format!(r#"42["h",{i}]"#));
    }
}
