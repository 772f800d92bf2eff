//! Reserved event names: the server cannot emit them, and a client sending one is a decode
//! error that closes its connection.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Log, serve};
use socketio::{DisconnectReason, Error, RESERVED_EVENTS, SocketIo, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_cannot_emit_reserved_names() {
    let server = serve(SocketIo::new(common::config())).await;
    let (mut client, sid) = server.joined("/").await;
    let socket = server.socket("/", &sid);
    let ns = server.io.of("/");
    for name in RESERVED_EVENTS {
        let reserved =
            |r: Result<(), Error>| matches!(r, Err(Error::ReservedEvent(n)) if n == name);
        assert!(reserved(socket.emit(name, vec![])), "socket.emit({name})");
        assert!(
            reserved(socket.emit_volatile(name, vec![])),
            "emit_volatile({name})"
        );
        assert!(reserved(server.io.emit(name, vec![])), "io.emit({name})");
        assert!(
            reserved(ns.to(["r"]).emit(name, vec![])),
            "to().emit({name})"
        );
        assert!(
            reserved(socket.broadcast().emit(name, vec![])),
            "broadcast({name})"
        );
        let ack = socket
            .emit_with_ack(name, vec![], Duration::from_secs(1))
            .await;
        assert!(
            matches!(ack, Err(Error::ReservedEvent(_))),
            "emit_with_ack({name})"
        );
        let ack = ns
            .broadcast()
            .timeout(Duration::from_secs(1))
            .emit_with_ack(name, vec![])
            .await;
        assert!(
            matches!(ack, Err(Error::ReservedEvent(_))),
            "broadcast ack({name})"
        );
    }
    assert_eq!(
        socket.emit("disconnect", vec![]).unwrap_err().to_string(),
        r#""disconnect" is a reserved event name"#
    );
    // Server-side events have their own reserved names.
    assert!(matches!(
        ns.server_side_emit("connection", vec![]),
        Err(Error::ReservedEvent(_))
    ));
    // Nothing went out, and the socket is fine.
    client.expect_silence(Duration::from_millis(50)).await;
    socket.emit("fine", vec![Value::from("ok")]).unwrap();
    assert_eq!(client.recv_text().await, r#"42["fine","ok"]"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_a_reserved_name_is_disconnected() {
    let io = SocketIo::new(common::config());
    let log = Log::new();
    let (l1, l2) = (log.clone(), log.clone());
    io.of("/")
        .on_any(move |_, event, _| l1.push(format!("event {event}")))
        .on_disconnect(move |s, reason| l2.push(format!("disconnect {} {reason}", s.ns().name())));
    io.of("/admin").on_disconnect({
        let log = log.clone();
        move |s, reason| log.push(format!("disconnect {} {reason}", s.ns().name()))
    });
    let server = serve(io).await;

    for name in ["disconnecting", "connect", "disconnect", "newListener"] {
        log.clear();
        let (mut client, _) = server.joined("/").await;
        client.join("/admin").await;
        client.send(&format!(r#"42["{name}"]"#)).await;
        assert!(client.expect_closed().await.is_empty());
        let mut got = log.wait_len(2).await;
        got.sort();
        // Both namespaces of the connection leave; no handler saw the event.
        assert_eq!(
            got,
            [
                format!("disconnect / {}", DisconnectReason::ForcedClose),
                format!("disconnect /admin {}", DisconnectReason::ForcedClose),
            ],
            "{name}"
        );
    }
}
