//! Rooms (join, leave, the own-id room, `to`/`except`, `socket.to` excluding the sender) and
//! how sockets leave: the `disconnecting` / `disconnect` handlers and their reasons for each
//! way out, and what the client sees.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Log, serve};
use socketio::{DisconnectReason, Socket, SocketIo, Value};

fn sorted(mut rooms: Vec<String>) -> Vec<String> {
    rooms.sort();
    rooms
}

/// A server whose namespaces `/` and `/admin` log `disconnecting` (with the rooms seen then)
/// and `disconnect` (with the rooms left, which must be none).
fn logging_server(log: &Log<(String, String, DisconnectReason, Vec<String>)>) -> SocketIo {
    let io = SocketIo::new(common::config());
    for nsp in ["/", "/admin"] {
        let (l1, l2) = (log.clone(), log.clone());
        io.of(nsp)
            .on_disconnecting(move |s: &Socket, reason| {
                l1.push((
                    "disconnecting".into(),
                    s.ns().name().into(),
                    reason,
                    sorted(s.rooms()),
                ));
            })
            .on_disconnect(move |s: &Socket, reason| {
                assert!(!s.connected());
                l2.push((
                    "disconnect".into(),
                    s.ns().name().into(),
                    reason,
                    sorted(s.rooms()),
                ));
            });
    }
    io
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_leave_and_rooms() {
    let server = serve(SocketIo::new(common::config())).await;
    let (mut a, sid_a) = server.joined("/").await;
    let (mut b, sid_b) = server.joined("/").await;
    let sa = server.socket("/", &sid_a);
    let sb = server.socket("/", &sid_b);

    // Every socket is in the room named after its id.
    assert_eq!(sa.rooms(), std::slice::from_ref(&sid_a));
    server.io.to([sid_a.as_str()]).emit("own", vec![]).unwrap();
    assert_eq!(a.recv_text().await, r#"42["own"]"#);

    sa.join(["red", "blue"]);
    sa.join(["red"]);
    sb.join(["blue".to_owned()]);
    assert_eq!(
        sorted(sa.rooms()),
        sorted(vec![sid_a.clone(), "red".into(), "blue".into()])
    );
    let mut all = server.io.of("/").local().local_rooms();
    all.sort();
    assert_eq!(
        all,
        sorted(vec![
            sid_a.clone(),
            sid_b.clone(),
            "red".into(),
            "blue".into()
        ])
    );

    server.io.to(["red"]).emit("red", vec![]).unwrap();
    server
        .io
        .to(["blue"])
        .except(["red"])
        .emit("blue-not-red", vec![])
        .unwrap();
    // A socket in several targeted rooms gets the packet once.
    server
        .io
        .to(["red", "blue"])
        .emit("red-or-blue", vec![])
        .unwrap();
    assert_eq!(a.recv_text().await, r#"42["red"]"#);
    assert_eq!(a.recv_text().await, r#"42["red-or-blue"]"#);
    assert_eq!(b.recv_text().await, r#"42["blue-not-red"]"#);
    assert_eq!(b.recv_text().await, r#"42["red-or-blue"]"#);

    // socket.to / socket.broadcast leave the sender out.
    sa.to(["blue"]).emit("from-a", vec![]).unwrap();
    sa.broadcast().emit("bcast-from-a", vec![]).unwrap();
    assert_eq!(b.recv_text().await, r#"42["from-a"]"#);
    assert_eq!(b.recv_text().await, r#"42["bcast-from-a"]"#);

    sa.leave("red");
    sa.leave("not-joined");
    assert_eq!(
        sorted(sa.rooms()),
        sorted(vec![sid_a.clone(), "blue".into()])
    );
    // An empty room disappears.
    assert!(
        !server
            .io
            .of("/")
            .local()
            .local_rooms()
            .contains(&"red".to_owned())
    );
    server.io.to(["red"]).emit("red", vec![]).unwrap();
    a.expect_silence(Duration::from_millis(50)).await;
    b.expect_silence(Duration::from_millis(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_namespace_disconnect() {
    let log = Log::new();
    let server = serve(logging_server(&log)).await;
    let (mut client, sid) = server.joined("/").await;
    let admin_sid = client.join("/admin").await;
    server.socket("/", &sid).join(["room"]);

    client.send("41").await;
    log.wait_len(2).await;
    assert_eq!(
        log.get(),
        [
            (
                "disconnecting".into(),
                "/".into(),
                DisconnectReason::ClientNamespaceDisconnect,
                sorted(vec![sid.clone(), "room".into()])
            ),
            (
                "disconnect".into(),
                "/".into(),
                DisconnectReason::ClientNamespaceDisconnect,
                vec![]
            ),
        ]
    );
    assert_eq!(
        DisconnectReason::ClientNamespaceDisconnect.to_string(),
        "client namespace disconnect"
    );
    // No reply; the other namespace and the connection go on; the room is gone.
    client.expect_silence(Duration::from_millis(50)).await;
    assert!(server.io.of("/").socket(&sid).is_none());
    assert!(
        !server
            .io
            .of("/")
            .local()
            .local_rooms()
            .contains(&"room".to_owned())
    );
    server
        .socket("/admin", &admin_sid)
        .emit("still", vec![])
        .unwrap();
    assert_eq!(client.recv_text().await, r#"42/admin,["still"]"#);
    // The namespace can be joined again, with a new socket.
    let again = client.join("/").await;
    assert_ne!(again, sid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_namespace_disconnect() {
    let log = Log::new();
    let server = serve(logging_server(&log)).await;
    let (mut client, sid) = server.joined("/").await;
    let admin_sid = client.join("/admin").await;

    server.socket("/admin", &admin_sid).disconnect(false);
    assert_eq!(client.recv_text().await, "41/admin,");
    server.socket("/", &sid).disconnect(false);
    assert_eq!(client.recv_text().await, "41");
    let got = log.wait_len(4).await;
    assert!(
        got.iter()
            .all(|(_, _, reason, _)| *reason == DisconnectReason::ServerNamespaceDisconnect),
        "{got:?}"
    );
    assert_eq!(got[0].1, "/admin");
    assert_eq!(got[2].1, "/");
    // The connection stays open.
    client.assert_alive().await;
    client.join("/admin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_close_sends_41_for_every_namespace_then_closes() {
    let log = Log::new();
    let server = serve(logging_server(&log)).await;
    let (mut client, sid) = server.joined("/").await;
    client.join("/admin").await;

    server.socket("/", &sid).disconnect(true);
    let frames = client.expect_closed().await;
    let mut texts: Vec<String> = frames.iter().map(|f| f.text().to_owned()).collect();
    texts.sort();
    assert_eq!(texts, ["41", "41/admin,"]);
    let got = log.wait_len(4).await;
    let mut disconnects: Vec<_> = got
        .iter()
        .filter(|e| e.0 == "disconnect")
        .map(|e| (e.1.clone(), e.2))
        .collect();
    disconnects.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        disconnects,
        [
            ("/".to_owned(), DisconnectReason::ServerNamespaceDisconnect),
            (
                "/admin".to_owned(),
                DisconnectReason::ServerNamespaceDisconnect
            ),
        ]
    );
    server.wait_clients(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_close_when_the_client_drops_the_connection() {
    let log = Log::new();
    let server = serve(logging_server(&log)).await;
    let (mut client, sid) = server.joined("/").await;
    client.join("/admin").await;
    server.socket("/", &sid).join(["kept-until-disconnecting"]);
    client.drop_tcp();
    let got = log.wait_len(4).await;
    assert!(
        got.iter()
            .all(|(_, _, reason, _)| *reason == DisconnectReason::TransportClose),
        "{got:?}"
    );
    let main: Vec<_> = got.iter().filter(|e| e.1 == "/").collect();
    assert_eq!(main[0].0, "disconnecting");
    assert!(main[0].3.contains(&"kept-until-disconnecting".to_owned()));
    assert_eq!(main[1].0, "disconnect");

    // A clean WebSocket close is a transport close too.
    log.clear();
    let (client, _) = server.joined("/").await;
    client.close().await;
    let got = log.wait_len(2).await;
    assert_eq!(got[1].2, DisconnectReason::TransportClose);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_for_a_namespace_not_joined_is_a_forced_server_close() {
    let log = Log::new();
    let server = serve(logging_server(&log)).await;
    for bad in [
        r#"42/admin,["x"]"#,
        "41/admin,",
        r#"43/admin,1[]"#,
        r#"44{"message":"x"}"#,
    ] {
        log.clear();
        let (mut client, _) = server.joined("/").await;
        client.send(bad).await;
        assert!(client.expect_closed().await.is_empty(), "{bad}");
        let got = log.wait_len(2).await;
        assert_eq!(
            got[1],
            (
                "disconnect".into(),
                "/".into(),
                DisconnectReason::ForcedServerClose,
                vec![]
            ),
            "{bad}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn io_close_is_server_shutting_down() {
    let log = Log::new();
    let server = serve(logging_server(&log)).await;
    let (mut a, _) = server.joined("/").await;
    let (mut b, _) = server.joined("/").await;
    b.join("/admin").await;

    server.io.close();
    // The sockets leave without a `41`; the connections close.
    assert!(a.expect_closed().await.is_empty());
    assert!(b.expect_closed().await.is_empty());
    let got = log.wait_len(6).await;
    assert!(
        got.iter()
            .all(|(_, _, reason, _)| *reason == DisconnectReason::ServerShuttingDown),
        "{got:?}"
    );
    assert!(server.io.of("/").sockets().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_serve_is_server_shutting_down() {
    let log = Log::new();
    let server = serve(logging_server(&log)).await;
    let (mut a, _) = server.joined("/").await;
    server.stop().await;
    assert!(a.expect_closed().await.is_empty());
    let got = log.wait_len(2).await;
    assert_eq!(got[1].2, DisconnectReason::ServerShuttingDown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_can_emit_to_others_while_a_socket_leaves() {
    // A disconnecting handler that broadcasts to the socket's rooms reaches the others, not
    // the leaving socket.
    let io = SocketIo::new(common::config());
    io.of("/").on_disconnecting(|s, _| {
        for room in s.rooms() {
            if room != s.id() {
                s.to([room.as_str()])
                    .emit("left", vec![Value::from(room.as_str())])
                    .unwrap();
            }
        }
    });
    let server = serve(io).await;
    let (leaving, sid_l) = server.joined("/").await;
    let (mut staying, sid_s) = server.joined("/").await;
    server.socket("/", &sid_l).join(["game"]);
    server.socket("/", &sid_s).join(["game"]);
    leaving.drop_tcp();
    assert_eq!(staying.recv_text().await, r#"42["left","game"]"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_can_disconnect_their_own_socket() {
    let log = Log::new();
    let io = logging_server(&log);
    io.of("/")
        .on("leave-ns", |s, _, _| s.disconnect(false))
        .on("leave-all", |s, _, ack| {
            // The ack goes out before the `41`s and the close.
            ack.unwrap().send(vec![Value::from("bye")]);
            s.disconnect(true);
        });
    let server = serve(io).await;

    let (mut client, _) = server.joined("/").await;
    client.send(r#"42["leave-ns"]"#).await;
    assert_eq!(client.recv_text().await, "41");
    client.assert_alive().await;

    client.join("/").await;
    client.join("/admin").await;
    log.clear();
    client.send(r#"421["leave-all"]"#).await;
    let frames = client.expect_closed().await;
    let texts: Vec<&str> = frames.iter().map(common::Frame::text).collect();
    assert_eq!(texts[0], r#"431["bye"]"#);
    let mut rest = texts[1..].to_vec();
    rest.sort_unstable();
    assert_eq!(rest, ["41", "41/admin,"]);
    let got = log.wait_len(4).await;
    assert!(
        got.iter()
            .all(|(_, _, reason, _)| *reason == DisconnectReason::ServerNamespaceDisconnect),
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_joined_in_a_middleware_are_left_when_the_socket_is_refused() {
    use socketio::{BroadcastOptions, ConnectError};
    let io = SocketIo::new(common::config());
    io.of("/")
        .use_middleware(|s| {
            s.join(["lobby"]);
            Ok(())
        })
        .use_middleware(|_| Err(ConnectError::new("no")));
    let server = serve(io).await;
    let mut client = server.client().await;
    client.send("40").await;
    assert_eq!(client.recv_text().await, r#"44{"message":"no"}"#);
    let ns = server.io.of("/");
    assert!(ns.sockets().is_empty());
    assert_eq!(ns.local().local_rooms(), Vec::<String>::new());
    assert_eq!(
        ns.adapter().sockets(&BroadcastOptions::all()),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_after_disconnect_is_a_no_op() {
    use socketio::BroadcastOptions;
    let io = SocketIo::new(common::config());
    let gone = Log::new();
    let g = gone.clone();
    io.of("/").on_disconnect(move |_, _| g.push(()));
    let server = serve(io).await;
    let (mut client, sid) = server.joined("/").await;
    let socket = server.socket("/", &sid);
    client.send("41").await;
    gone.wait_len(1).await;

    socket.join(["late"]);
    let ns = server.io.of("/");
    assert_eq!(ns.local().local_rooms(), Vec::<String>::new());
    assert_eq!(
        ns.adapter().sockets(&BroadcastOptions::all()),
        Vec::<String>::new()
    );
    assert!(socket.rooms().is_empty());
}
