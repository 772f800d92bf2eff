//! Dynamic parent namespaces (`of_dynamic`): a CONNECT to an unknown name the matcher accepts
//! creates a child that runs the parent's middlewares and handlers; other names get
//! `Invalid namespace` on a connection that stays open.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Log, serve};
use socketio::{ConnectError, SocketIo, Value, map_get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matching_name_creates_a_child_running_the_parent_handlers() {
    let io = SocketIo::new(common::config());
    let log = Log::new();
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    io.of_dynamic(|name, _| name.starts_with("/dyn-"))
        .use_middleware(move |s| {
            l1.push(format!("middleware {}", s.ns().name()));
            Ok(())
        })
        .on_connection(move |s| {
            l2.push(format!("connection {}", s.ns().name()));
            s.emit("hello", vec![Value::from(s.ns().name())]).unwrap();
        })
        .on("ping", move |s, args, ack| {
            l3.push(format!("ping {}", s.ns().name()));
            ack.unwrap().send(args);
        });
    let server = serve(io).await;
    assert!(server.io.namespace("/dyn-42").is_none());

    let mut client = server.client().await;
    let sid = client.join("/dyn-42").await;
    assert_eq!(client.recv_text().await, r#"42/dyn-42,["hello","/dyn-42"]"#);
    client.send(r#"42/dyn-42,3["ping",1]"#).await;
    assert_eq!(client.recv_text().await, "43/dyn-42,3[1]");
    assert_eq!(
        log.get(),
        ["middleware /dyn-42", "connection /dyn-42", "ping /dyn-42"]
    );

    // The child exists afterwards, as a namespace like any other.
    let child = server.io.namespace("/dyn-42").expect("child namespace");
    assert_eq!(child.name(), "/dyn-42");
    assert!(child.socket(&sid).is_some());
    child.emit("from-server", vec![]).unwrap();
    assert_eq!(client.recv_text().await, r#"42/dyn-42,["from-server"]"#);

    // A second child from the same parent is independent of the first.
    let sid7 = client.join("/dyn-7").await;
    assert_eq!(client.recv_text().await, r#"42/dyn-7,["hello","/dyn-7"]"#);
    assert!(
        server
            .io
            .namespace("/dyn-7")
            .unwrap()
            .socket(&sid7)
            .is_some()
    );
    assert!(
        server
            .io
            .namespace("/dyn-42")
            .unwrap()
            .socket(&sid7)
            .is_none()
    );

    // A name no parent accepts.
    client.send("40/other,").await;
    assert_eq!(
        client.recv_text().await,
        r#"44/other,{"message":"Invalid namespace"}"#
    );
    assert!(server.io.namespace("/other").is_none());
    // Still open and connected.
    client.send(r#"42/dyn-42,4["ping"]"#).await;
    assert_eq!(client.recv_text().await, "43/dyn-42,4[]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_are_tried_in_order_and_static_namespaces_win() {
    let io = SocketIo::new(common::config());
    let log = Log::new();
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    // The matcher sees the auth payload.
    io.of_dynamic(|name, auth| {
        name.starts_with("/t-") && map_get(auth, "tenant").and_then(Value::as_str) == Some("a")
    })
    .on_connection(move |s| l1.push(format!("A {}", s.ns().name())));
    io.of_dynamic(|name, _| name.starts_with("/t-"))
        .use_middleware(|_| Err(ConnectError::new("tenant unknown")))
        .on_connection(move |s| l2.push(format!("B {}", s.ns().name())));
    io.of("/t-static")
        .on_connection(move |s| l3.push(format!("static {}", s.ns().name())));
    let server = serve(io).await;
    let mut client = server.client().await;

    client.join_with("/t-1", r#"{"tenant":"a"}"#).await;
    // Second parent: its middleware refuses, with its own message.
    client.send(r#"40/t-2,{"tenant":"b"}"#).await;
    assert_eq!(
        client.recv_text().await,
        r#"44/t-2,{"message":"tenant unknown"}"#
    );
    client.join("/t-static").await;
    log.wait_len(2).await;
    assert_eq!(log.get(), ["A /t-1", "static /t-static"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_names_are_normalized_and_namespaces_listed() {
    let io = SocketIo::new(common::config());
    let a = io.of("admin");
    assert_eq!(a.name(), "/admin");
    a.on("who", |s, _, ack| {
        ack.unwrap().send(vec![Value::from(s.ns().name())])
    });
    // The same namespace whichever way it is named.
    assert_eq!(io.of("/admin").name(), "/admin");
    assert!(io.namespace("admin").is_some());
    let mut names: Vec<String> = io
        .namespaces()
        .iter()
        .map(|n| n.name().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["/", "/admin"]);
    let server = serve(io).await;
    let mut client = server.client().await;
    client.join("/admin").await;
    client.send(r#"42/admin,1["who"]"#).await;
    assert_eq!(client.recv_text().await, r#"43/admin,1["/admin"]"#);
}
