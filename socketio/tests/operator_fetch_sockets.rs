//! Operators on selections of sockets on one node: `fetch_sockets`, `sockets_join`,
//! `sockets_leave`, `disconnect_sockets` with rooms and exclusions, and the `RemoteSocket`
//! handles.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{Client, Log, TestServer, serve, val};
use serde_json::json;
use socketio::{DisconnectReason, SocketIo, Value};

/// Four sockets: s0 in {a}, s1 in {a, b}, s2 in {b}, s3 in no room; each with `data` {"i": n}
/// and auth {"n": n}.
async fn four(server: &TestServer) -> (Vec<Client>, Vec<String>) {
    let mut clients = Vec::new();
    let mut ids = Vec::new();
    for (i, rooms) in [vec!["a"], vec!["a", "b"], vec!["b"], vec![]]
        .into_iter()
        .enumerate()
    {
        let mut client = server.client().await;
        let reply = client.join_with("/", &format!(r#"{{"n":{i}}}"#)).await;
        let sid = reply["sid"].as_str().unwrap().to_owned();
        let socket = server.socket("/", &sid);
        socket.join(rooms);
        socket.set_data(val(json!({"i": i})));
        clients.push(client);
        ids.push(sid);
    }
    (clients, ids)
}

fn ids_of(sockets: &[socketio::RemoteSocket]) -> BTreeSet<String> {
    sockets.iter().map(|s| s.id().to_owned()).collect()
}

fn set(ids: &[String], which: &[usize]) -> BTreeSet<String> {
    which.iter().map(|&i| ids[i].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sockets_with_rooms_and_exclusions() {
    let server = serve(SocketIo::new(common::config())).await;
    let (_clients, ids) = four(&server).await;
    let ns = server.io.of("/");

    let all = ns.broadcast().fetch_sockets().await.unwrap();
    assert_eq!(ids_of(&all), set(&ids, &[0, 1, 2, 3]));
    assert_eq!(
        ids_of(&ns.to(["a"]).fetch_sockets().await.unwrap()),
        set(&ids, &[0, 1])
    );
    let a_or_b = ns.to(["a", "b"]).fetch_sockets().await.unwrap();
    assert_eq!(a_or_b.len(), 3, "each socket once");
    assert_eq!(ids_of(&a_or_b), set(&ids, &[0, 1, 2]));
    assert_eq!(
        ids_of(&ns.to(["a"]).except(["b"]).fetch_sockets().await.unwrap()),
        set(&ids, &[0])
    );
    assert_eq!(
        ids_of(&ns.except(["a"]).fetch_sockets().await.unwrap()),
        set(&ids, &[2, 3])
    );
    assert!(ns.to(["nobody"]).fetch_sockets().await.unwrap().is_empty());
    assert_eq!(
        ids_of(&ns.to([ids[3].as_str()]).fetch_sockets().await.unwrap()),
        set(&ids, &[3])
    );

    // What a RemoteSocket tells about its socket.
    let s1 = all.iter().find(|s| s.id() == ids[1]).unwrap();
    let mut rooms = s1.rooms().to_vec();
    rooms.sort();
    let mut expected = vec![ids[1].clone(), "a".into(), "b".into()];
    expected.sort();
    assert_eq!(rooms, expected);
    assert_eq!(common::json(s1.data()), json!({"i": 1}));
    assert_eq!(common::json(&s1.handshake().auth), json!({"n": 1}));
    assert!(s1.handshake().address.unwrap().ip().is_loopback());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_join_and_leave_by_selection() {
    let server = serve(SocketIo::new(common::config())).await;
    let (_clients, ids) = four(&server).await;
    let ns = server.io.of("/");

    ns.to(["a"]).except(["b"]).sockets_join(["x", "y"]);
    assert_eq!(
        ids_of(&ns.to(["x"]).fetch_sockets().await.unwrap()),
        set(&ids, &[0])
    );
    ns.except(["a"]).sockets_join(["x"]);
    assert_eq!(
        ids_of(&ns.to(["x"]).fetch_sockets().await.unwrap()),
        set(&ids, &[0, 2, 3])
    );
    ns.broadcast().sockets_join(["everyone"]);
    assert_eq!(ns.to(["everyone"]).fetch_sockets().await.unwrap().len(), 4);

    ns.to(["b"]).sockets_leave(["x", "everyone"]);
    assert_eq!(
        ids_of(&ns.to(["x"]).fetch_sockets().await.unwrap()),
        set(&ids, &[0, 3])
    );
    assert_eq!(
        ids_of(&ns.to(["everyone"]).fetch_sockets().await.unwrap()),
        set(&ids, &[0, 3])
    );
    ns.broadcast().sockets_leave(["y"]);
    assert!(ns.to(["y"]).fetch_sockets().await.unwrap().is_empty());
    assert!(!ns.local().local_rooms().contains(&"y".to_owned()));
    // The sockets themselves agree.
    assert!(
        server
            .socket("/", &ids[3])
            .rooms()
            .contains(&"x".to_owned())
    );
    assert!(
        !server
            .socket("/", &ids[2])
            .rooms()
            .contains(&"x".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_sockets_by_selection() {
    let io = SocketIo::new(common::config());
    let log = Log::new();
    let l = log.clone();
    io.of("/")
        .on_disconnect(move |s, reason| l.push((s.id().to_owned(), reason)));
    let server = serve(io).await;
    let (mut clients, ids) = four(&server).await;
    let ns = server.io.of("/");

    // Namespace disconnect of the sockets in a but not b: only s0, which gets `41`.
    ns.to(["a"]).except(["b"]).disconnect_sockets(false);
    assert_eq!(clients[0].recv_text().await, "41");
    assert_eq!(
        log.wait_len(1).await,
        [(ids[0].clone(), DisconnectReason::ServerNamespaceDisconnect)]
    );
    clients[0].assert_alive().await;

    // With close: s2 (b, not a) gets `41` and its connection closes.
    ns.to(["b"]).except(["a"]).disconnect_sockets(true);
    assert_eq!(
        clients[2]
            .expect_closed()
            .await
            .iter()
            .map(|f| f.text().to_owned())
            .collect::<Vec<_>>(),
        ["41"]
    );
    log.wait_len(2).await;
    assert_eq!(
        ids_of(&ns.broadcast().fetch_sockets().await.unwrap()),
        set(&ids, &[1, 3])
    );
    for i in [1, 3] {
        clients[i].expect_silence(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_socket_emit_join_leave_disconnect() {
    let io = SocketIo::new(common::config());
    let log = Log::new();
    let l = log.clone();
    io.of("/")
        .on_disconnect(move |s, reason| l.push((s.id().to_owned(), reason)));
    let server = serve(io).await;
    let (mut clients, ids) = four(&server).await;
    let ns = server.io.of("/");

    let remote = ns
        .to([ids[2].as_str()])
        .fetch_sockets()
        .await
        .unwrap()
        .pop()
        .unwrap();
    remote.emit("just-you", vec![Value::from(2)]).unwrap();
    assert_eq!(clients[2].recv_text().await, r#"42["just-you",2]"#);
    for i in [0, 1, 3] {
        clients[i].expect_silence(Duration::from_millis(10)).await;
    }

    remote.join(["vip"]);
    assert!(
        server
            .socket("/", &ids[2])
            .rooms()
            .contains(&"vip".to_owned())
    );
    ns.to(["vip"]).emit("vip", vec![]).unwrap();
    assert_eq!(clients[2].recv_text().await, r#"42["vip"]"#);
    remote.leave(["vip", "b"]);
    assert_eq!(server.socket("/", &ids[2]).rooms(), [ids[2].clone()]);
    // The handle is a snapshot: its rooms are those at fetch time.
    assert!(remote.rooms().contains(&"b".to_owned()));

    remote.disconnect(false);
    assert_eq!(clients[2].recv_text().await, "41");
    assert_eq!(
        log.wait_len(1).await,
        [(ids[2].clone(), DisconnectReason::ServerNamespaceDisconnect)]
    );
    // Emitting to a socket that is gone reaches no one and is no error.
    remote.emit("gone", vec![]).unwrap();
    clients[2].assert_alive().await;

    let remote3 = ns
        .to([ids[3].as_str()])
        .fetch_sockets()
        .await
        .unwrap()
        .pop()
        .unwrap();
    remote3.disconnect(true);
    let frames = clients[3].expect_closed().await;
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].text(), "41");
}
