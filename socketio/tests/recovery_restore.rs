//! Connection state recovery (`config.recovery`): the CONNECT reply carries a `pid`, events
//! carry an offset, and a client that lost its connection gets its socket back (same id, rooms,
//! data) with the events it missed, before the CONNECT reply and in order.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, Log, TestServer, parse, serve, val};
use serde_json::json;
use socketio::{DisconnectReason, RecoveryConfig, SocketIo, Value};

fn recovery_io(recovery: RecoveryConfig) -> SocketIo {
    let mut config = common::config();
    config.recovery = Some(recovery);
    SocketIo::new(config)
}

/// Joins `/` and returns the client, sid and pid (checking the reply has exactly both).
async fn join_recoverable(server: &TestServer) -> (Client, String, String) {
    let mut client = server.client().await;
    client.send("40").await;
    let reply = client.recv_text().await;
    let data = parse(&reply).data.unwrap();
    let (sid, pid) = (
        data["sid"].as_str().unwrap().to_owned(),
        data["pid"].as_str().unwrap().to_owned(),
    );
    assert_eq!(reply, format!(r#"40{{"sid":"{sid}","pid":"{pid}"}}"#));
    assert_ne!(sid, pid);
    (client, sid, pid)
}

/// The offset of an event: its last argument.
fn offset_of(text: &str) -> String {
    let pkt = parse(text);
    pkt.data
        .unwrap()
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

type Seen = Log<(String, bool, Vec<String>, serde_json::Value)>;

/// Logs every connection: (sid, recovered, rooms, data); counts middleware runs; logs
/// disconnect reasons.
fn instrument(io: &SocketIo) -> (Seen, Log<()>, Log<DisconnectReason>) {
    let seen = Seen::new();
    let mw = Log::new();
    let gone = Log::new();
    let (s, m, g) = (seen.clone(), mw.clone(), gone.clone());
    io.of("/")
        .use_middleware(move |_| {
            m.push(());
            Ok(())
        })
        .on_connection(move |socket| {
            let mut rooms = socket.rooms();
            rooms.sort();
            s.push((
                socket.id().to_owned(),
                socket.recovered(),
                rooms,
                common::json(&socket.data()),
            ));
        })
        .on_disconnect(move |_, reason| g.push(reason));
    (seen, mw, gone)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_offsets_except_acks_and_volatile() {
    let server = serve(recovery_io(RecoveryConfig::default())).await;
    let (mut client, sid, _) = join_recoverable(&server).await;
    let socket = server.socket("/", &sid);

    socket.emit("direct", vec![Value::from(1)]).unwrap();
    let first = client.recv_text().await;
    let o1 = offset_of(&first);
    assert_eq!(first, format!(r#"42["direct",1,"{o1}"]"#));

    server.io.emit("bcast", vec![]).unwrap();
    let text = client.recv_text().await;
    let o2 = offset_of(&text);
    assert_eq!(text, format!(r#"42["bcast","{o2}"]"#));
    assert_ne!(o1, o2, "each event gets a fresh offset");

    socket.emit("bin", vec![Value::Binary(vec![1])]).unwrap();
    let text = client.recv_text().await;
    let o3 = offset_of(&text);
    assert_eq!(
        text,
        format!(r#"451-["bin",{{"_placeholder":true,"num":0}},"{o3}"]"#)
    );
    assert_eq!(client.recv_binary().await, [1]);

    // Acks and volatile packets have no offset.
    let ack = tokio::spawn(socket.emit_with_ack("q", vec![], Duration::from_secs(2)));
    assert_eq!(client.recv_text().await, r#"420["q"]"#);
    client.send("430[]").await;
    ack.await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    socket.emit_volatile("vol", vec![]).unwrap();
    assert_eq!(client.recv_text().await, r#"42["vol"]"#);
    // Neither do ack answers to the client.
    server
        .io
        .of("/")
        .on("ask", |_, _, ack| ack.unwrap().send(vec![Value::from("a")]));
    client.send(r#"425["ask"]"#).await;
    assert_eq!(client.recv_text().await, r#"435["a"]"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_restored_with_missed_events_rooms_and_data() {
    let io = recovery_io(RecoveryConfig::default());
    let (seen, middleware_runs, gone) = instrument(&io);
    let server = serve(io).await;
    let (mut client, sid, pid) = join_recoverable(&server).await;
    let (mut other, _) = server.joined("/").await;
    let socket = server.socket("/", &sid);
    socket.join(["r"]);
    socket.set_data(val(json!({"user": "ann", "score": 3})));

    socket.emit("seen", vec![]).unwrap();
    let offset = offset_of(&client.recv_text().await);
    // Sent before the drop but (as far as the client is concerned) never read.
    socket.emit("unread", vec![]).unwrap();
    client.drop_tcp();
    gone.wait_len(1).await;
    assert_eq!(gone.get(), [DisconnectReason::TransportClose]);
    assert!(server.io.of("/").socket(&sid).is_none());

    // While it is away: events to its rooms, to everyone, and some it must not get.
    server
        .io
        .to(["r"])
        .emit("m1", vec![Value::from(1)])
        .unwrap();
    server
        .io
        .to(["elsewhere"])
        .emit("not-for-you", vec![])
        .unwrap();
    server.io.emit("m2", vec![Value::from(2)]).unwrap();
    server
        .io
        .of("/")
        .except(["r"])
        .emit("except-r", vec![])
        .unwrap();
    server
        .io
        .to(["r", "elsewhere"])
        .emit("m3", vec![Value::Binary(vec![3])])
        .unwrap();
    server.io.to([sid.as_str()]).emit("m4", vec![]).unwrap();
    // `other` (in no room) gets m2 and except-r, then nothing.
    assert_eq!(parse(&other.recv_text().await).event(), "m2");
    assert_eq!(parse(&other.recv_text().await).event(), "except-r");

    let mut back = server.client().await;
    back.send(&format!(r#"40{{"pid":"{pid}","offset":"{offset}"}}"#))
        .await;
    let mut names = Vec::new();
    loop {
        let text = back.recv_text().await;
        let pkt = parse(&text);
        if pkt.kind == 0 {
            // The CONNECT reply comes last, with the same sid and pid.
            assert_eq!(text, format!(r#"40{{"sid":"{sid}","pid":"{pid}"}}"#));
            break;
        }
        names.push(pkt.event().to_owned());
        if pkt.kind == 5 {
            assert_eq!(back.recv_binary().await, [3]);
        }
        // Each replayed event keeps its offset: the client can resume from it again.
        assert!(pkt.args().last().unwrap().is_string());
    }
    assert_eq!(names, ["unread", "m1", "m2", "m3", "m4"]);

    let seen = seen.wait_len(3).await;
    let (restored_sid, recovered, rooms, data) = seen[2].clone();
    assert_eq!(restored_sid, sid);
    assert!(recovered);
    let mut expected_rooms = vec![sid.clone(), "r".to_owned()];
    expected_rooms.sort();
    assert_eq!(rooms, expected_rooms);
    assert_eq!(data, json!({"user": "ann", "score": 3}));
    // skip_middlewares (the default): not run for the restored socket.
    assert_eq!(middleware_runs.len(), 2);

    // The restored socket is a full member again.
    let restored = server.socket("/", &sid);
    assert!(restored.recovered());
    server.io.to(["r"]).emit("live", vec![]).unwrap();
    let text = back.recv_text().await;
    assert_eq!(parse(&text).event(), "live");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn middlewares_run_for_a_restored_socket_unless_skipped() {
    let mut recovery = RecoveryConfig::default();
    recovery.skip_middlewares = false;
    let io = recovery_io(recovery);
    let (seen, middleware_runs, gone) = instrument(&io);
    let server = serve(io).await;
    let (mut client, sid, pid) = join_recoverable(&server).await;
    server.socket("/", &sid).emit("e", vec![]).unwrap();
    let offset = offset_of(&client.recv_text().await);
    client.drop_tcp();
    gone.wait_len(1).await;

    let mut back = server.client().await;
    let reply = back
        .join_with("/", &format!(r#"{{"pid":"{pid}","offset":"{offset}"}}"#))
        .await;
    assert_eq!(reply["sid"], sid.as_str());
    assert_eq!(middleware_runs.len(), 2, "the middleware ran again");
    assert!(seen.wait_len(2).await[1].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pid_restores_once() {
    let io = recovery_io(RecoveryConfig::default());
    let (seen, _, gone) = instrument(&io);
    let server = serve(io).await;
    let (mut client, sid, pid) = join_recoverable(&server).await;
    server.socket("/", &sid).emit("e", vec![]).unwrap();
    let offset = offset_of(&client.recv_text().await);
    client.drop_tcp();
    gone.wait_len(1).await;
    let auth = format!(r#"{{"pid":"{pid}","offset":"{offset}"}}"#);

    let mut first = server.client().await;
    assert_eq!(first.join_with("/", &auth).await["sid"], sid.as_str());
    // The same pid again, while the restored socket is connected: a new session.
    let mut second = server.client().await;
    let reply = second.join_with("/", &auth).await;
    assert_ne!(reply["sid"], sid.as_str());
    assert_ne!(reply["pid"], pid.as_str());
    let seen = seen.wait_len(3).await;
    assert!(seen[1].1);
    assert!(!seen[2].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_restored_gets_a_new_session() {
    let mut recovery = RecoveryConfig::default();
    recovery.max_disconnection_duration = Duration::from_millis(300);
    let io = recovery_io(recovery);
    let (seen, _, gone) = instrument(&io);
    let server = serve(io).await;

    // Left the namespace on purpose: not recoverable.
    let (mut client, sid, pid) = join_recoverable(&server).await;
    server.socket("/", &sid).emit("e", vec![]).unwrap();
    let offset = offset_of(&client.recv_text().await);
    client.send("41").await;
    gone.wait_len(1).await;
    let reply = client
        .join_with("/", &format!(r#"{{"pid":"{pid}","offset":"{offset}"}}"#))
        .await;
    assert_ne!(reply["sid"], sid.as_str());

    // Dropped, but the offset is unknown, or missing, or the pid is not a string.
    let (mut client, sid, pid) = join_recoverable(&server).await;
    server.socket("/", &sid).emit("e", vec![]).unwrap();
    let offset = offset_of(&client.recv_text().await);
    client.drop_tcp();
    gone.wait_len(2).await;
    let mut back = server.client().await;
    for auth in [
        format!(r#"{{"pid":"{pid}","offset":"not-an-offset"}}"#),
        format!(r#"{{"pid":"{pid}"}}"#),
        format!(r#"{{"pid":1,"offset":"{offset}"}}"#),
    ] {
        let reply = back.join_with("/", &auth).await;
        assert_ne!(reply["sid"], sid.as_str(), "{auth}");
        back.send("41").await;
    }
    // Too late: past max_disconnection_duration.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reply = back
        .join_with("/", &format!(r#"{{"pid":"{pid}","offset":"{offset}"}}"#))
        .await;
    assert_ne!(reply["sid"], sid.as_str());
    assert!(seen.get().iter().all(|(_, recovered, _, _)| !recovered));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_namespace_disconnect_is_not_recoverable_but_a_forced_server_close_is() {
    let io = recovery_io(RecoveryConfig::default());
    let (seen, _, gone) = instrument(&io);
    let server = serve(io).await;

    let (mut client, sid, pid) = join_recoverable(&server).await;
    server.socket("/", &sid).emit("e", vec![]).unwrap();
    let offset = offset_of(&client.recv_text().await);
    server.socket("/", &sid).disconnect(false);
    assert_eq!(client.recv_text().await, "41");
    gone.wait_len(1).await;
    let reply = client
        .join_with("/", &format!(r#"{{"pid":"{pid}","offset":"{offset}"}}"#))
        .await;
    assert_ne!(reply["sid"], sid.as_str());

    // A connection closed for a bad packet (forced server close) is recoverable.
    let (mut client, sid, pid) = join_recoverable(&server).await;
    server.socket("/", &sid).emit("e", vec![]).unwrap();
    let offset = offset_of(&client.recv_text().await);
    client.send(r#"42/not-joined,["x"]"#).await;
    client.expect_closed().await;
    assert_eq!(
        gone.wait_len(2).await[1],
        DisconnectReason::ForcedServerClose
    );
    let mut back = server.client().await;
    let reply = back
        .join_with("/", &format!(r#"{{"pid":"{pid}","offset":"{offset}"}}"#))
        .await;
    assert_eq!(reply["sid"], sid.as_str());
    assert!(seen.wait_len(4).await[3].1);
}
