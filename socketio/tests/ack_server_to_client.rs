//! Acks the server waits for: `socket.emit_with_ack` (answer, timeout, late answer ignored,
//! one id counter per namespace) and broadcast `timeout(d).emit_with_ack` (one answer per
//! socket in arrival order, partial answers on timeout, immediate timeout without one).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Log, serve, val};
use serde_json::json;
use socketio::{Error, SocketIo, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_with_ack_resolves_with_the_client_answer() {
    let io = SocketIo::new(common::config());
    io.of("/admin");
    let server = serve(io).await;
    let (mut client, sid) = server.joined("/").await;
    let admin_sid = client.join("/admin").await;
    let socket = server.socket("/", &sid);

    let pending = tokio::spawn(socket.emit_with_ack(
        "question",
        vec![Value::from(1), val(json!({"q": "?"}))],
        Duration::from_secs(2),
    ));
    assert_eq!(client.recv_text().await, r#"420["question",1,{"q":"?"}]"#);
    client.send(r#"430["yes",{"n":2},null]"#).await;
    let answer = pending.await.unwrap().unwrap();
    assert_eq!(
        common::json(&Value::Array(answer)),
        json!(["yes", {"n": 2}, null])
    );

    // Another namespace: its own counter (starts at 0 again), its own prefix; binary answers.
    let admin = server.socket("/admin", &admin_sid);
    let pending = tokio::spawn(admin.emit_with_ack("q", vec![], Duration::from_secs(2)));
    assert_eq!(client.recv_text().await, r#"42/admin,0["q"]"#);
    client
        .send(r#"461-/admin,0[{"_placeholder":true,"num":0}]"#)
        .await;
    client.send_binary(&[7, 7]).await;
    assert_eq!(pending.await.unwrap().unwrap(), [Value::Binary(vec![7, 7])]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_with_ack_times_out_and_a_late_answer_is_ignored() {
    let io = SocketIo::new(common::config());
    let events = Log::new();
    let e = events.clone();
    io.of("/")
        .on_any(move |_, event, _| e.push(event.to_owned()));
    let server = serve(io).await;
    let (mut client, sid) = server.joined("/").await;
    let socket = server.socket("/", &sid);

    let start = Instant::now();
    let pending = tokio::spawn(socket.emit_with_ack("q", vec![], Duration::from_millis(150)));
    assert_eq!(client.recv_text().await, r#"420["q"]"#);
    let result = pending.await.unwrap();
    assert!(matches!(result, Err(Error::AckTimeout)), "{result:?}");
    assert!(start.elapsed() >= Duration::from_millis(140));
    assert_eq!(Error::AckTimeout.to_string(), "operation has timed out");

    // The late answer goes nowhere: no error, the connection stays up, the next ack works.
    client.send(r#"430["late"]"#).await;
    let pending = tokio::spawn(socket.emit_with_ack("q2", vec![], Duration::from_secs(2)));
    assert_eq!(client.recv_text().await, r#"421["q2"]"#);
    // An answer for the old id again, then the right one.
    client.send(r#"430["late again"]"#).await;
    client.send(r#"431["on time"]"#).await;
    assert_eq!(pending.await.unwrap().unwrap(), [Value::from("on time")]);
    // A second answer for an id already answered is ignored too.
    client.send(r#"431["twice"]"#).await;
    client.assert_alive().await;
    assert!(socket.connected());
    assert!(events.get().is_empty(), "acks are not events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_with_ack_fails_when_the_socket_leaves() {
    let server = serve(SocketIo::new(common::config())).await;
    let (mut client, sid) = server.joined("/").await;
    let socket = server.socket("/", &sid);
    let pending = tokio::spawn(socket.emit_with_ack("q", vec![], Duration::from_secs(3)));
    assert_eq!(client.recv_text().await, r#"420["q"]"#);
    client.send("41").await;
    let start = Instant::now();
    let result = common::within("emit_with_ack after disconnect", pending)
        .await
        .unwrap();
    assert!(matches!(result, Err(Error::Closed)), "{result:?}");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "must not wait for the timeout"
    );

    // Emitting to a disconnected socket fails at once, and nothing goes out.
    assert!(matches!(socket.emit("x", vec![]), Err(Error::Closed)));
    client.expect_silence(Duration::from_millis(50)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_with_ack_on_a_disconnected_socket_fails_at_once() {
    let server = serve(SocketIo::new(common::config())).await;
    let (mut client, sid) = server.joined("/").await;
    let socket = server.socket("/", &sid);
    client.send("41").await;
    Log::<()>::new()
        .wait_until("socket disconnected", |_| !socket.connected())
        .await;
    let start = Instant::now();
    let result = socket
        .emit_with_ack("q", vec![], Duration::from_millis(500))
        .await;
    assert!(matches!(result, Err(Error::Closed)), "{result:?}");
    assert!(start.elapsed() < Duration::from_millis(100));
    // The client left the namespace: it must not get an event for it.
    client.expect_silence(Duration::from_millis(50)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_ids_are_one_counter_per_namespace_across_sockets() {
    let server = serve(SocketIo::new(common::config())).await;
    let (mut a, sid_a) = server.joined("/").await;
    let (mut b, sid_b) = server.joined("/").await;
    let (sa, sb) = (server.socket("/", &sid_a), server.socket("/", &sid_b));

    let p0 = tokio::spawn(sa.emit_with_ack("q", vec![Value::from("a0")], Duration::from_secs(2)));
    assert_eq!(a.recv_text().await, r#"420["q","a0"]"#);
    let p1 = tokio::spawn(sb.emit_with_ack("q", vec![Value::from("b1")], Duration::from_secs(2)));
    assert_eq!(b.recv_text().await, r#"421["q","b1"]"#);
    let p2 = tokio::spawn(sa.emit_with_ack("q", vec![Value::from("a2")], Duration::from_secs(2)));
    assert_eq!(a.recv_text().await, r#"422["q","a2"]"#);

    // Acks are matched per socket: b answering id 0 (a's) does not resolve a's ack.
    b.send(r#"430["wrong socket"]"#).await;
    b.send(r#"431["b"]"#).await;
    a.send(r#"432["a2"]"#).await;
    a.send(r#"430["a0"]"#).await;
    assert_eq!(p1.await.unwrap().unwrap(), [Value::from("b")]);
    assert_eq!(p2.await.unwrap().unwrap(), [Value::from("a2")]);
    assert_eq!(p0.await.unwrap().unwrap(), [Value::from("a0")]);

    // A broadcast with ack takes the next id of the same counter.
    let op = server
        .io
        .of("/")
        .broadcast()
        .timeout(Duration::from_secs(2));
    let pending = tokio::spawn(async move { op.emit_with_ack("all", vec![]).await });
    assert_eq!(a.recv_text().await, r#"423["all"]"#);
    assert_eq!(b.recv_text().await, r#"423["all"]"#);
    a.send("433[1]").await;
    b.send("433[2]").await;
    let res = pending.await.unwrap().unwrap();
    assert!(!res.timed_out);
    assert_eq!(res.responses.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_ack_gathers_one_answer_per_socket_in_arrival_order() {
    let server = serve(SocketIo::new(common::config())).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (client, sid) = server.joined("/").await;
        server.socket("/", &sid).join(["voters"]);
        clients.push(client);
    }
    // Not in the room: must not get the packet.
    let (mut outsider, _) = server.joined("/").await;

    let op = server.io.to(["voters"]).timeout(Duration::from_secs(2));
    let start = Instant::now();
    let pending =
        tokio::spawn(async move { op.emit_with_ack("vote", vec![Value::from("?")]).await });
    for client in &mut clients {
        assert_eq!(client.recv_text().await, r#"420["vote","?"]"#);
    }
    // Answer in the order 2, 0, 1; each answer is in before the next is sent.
    for (i, answer) in [(2, "c"), (0, "a"), (1, "b")] {
        clients[i].send(&format!(r#"430["{answer}",{i}]"#)).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let res = pending.await.unwrap().unwrap();
    assert!(!res.timed_out);
    assert_eq!(
        res.responses
            .iter()
            .map(|r| common::json(&Value::Array(r.clone())))
            .collect::<Vec<_>>(),
        [json!(["c", 2]), json!(["a", 0]), json!(["b", 1])]
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "returns once all answered"
    );
    outsider.expect_silence(Duration::from_millis(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_ack_times_out_with_partial_answers() {
    let server = serve(SocketIo::new(common::config())).await;
    let (mut a, _) = server.joined("/").await;
    let (mut b, _) = server.joined("/").await;
    let op = server
        .io
        .of("/")
        .broadcast()
        .timeout(Duration::from_millis(200));
    let start = Instant::now();
    let pending = tokio::spawn(async move { op.emit_with_ack("vote", vec![]).await });
    assert_eq!(a.recv_text().await, r#"420["vote"]"#);
    assert_eq!(b.recv_text().await, r#"420["vote"]"#);
    a.send(r#"430["only me"]"#).await;
    let res = pending.await.unwrap().unwrap();
    assert!(start.elapsed() >= Duration::from_millis(190));
    assert!(res.timed_out);
    assert_eq!(res.responses, [vec![Value::from("only me")]]);
    // b's late answer is ignored.
    b.send(r#"430["late"]"#).await;
    b.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_ack_without_timeout_times_out_at_once() {
    let server = serve(SocketIo::new(common::config())).await;
    let (mut a, _) = server.joined("/").await;
    let start = Instant::now();
    let res = common::within(
        "broadcast emit_with_ack without timeout",
        server.io.of("/").broadcast().emit_with_ack("vote", vec![]),
    )
    .await
    .unwrap();
    assert!(start.elapsed() < Duration::from_millis(500));
    assert!(res.timed_out);
    assert!(res.responses.is_empty());
    // A late answer to it is harmless.
    let text = a.recv_text().await;
    assert_eq!(text, r#"420["vote"]"#);
    a.send(r#"430[1]"#).await;
    a.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_ack_to_nobody_returns_no_answers() {
    let server = serve(SocketIo::new(common::config())).await;
    let res = common::within(
        "broadcast emit_with_ack to an empty room",
        server
            .io
            .to(["nobody"])
            .timeout(Duration::from_millis(100))
            .emit_with_ack("vote", vec![]),
    )
    .await
    .unwrap();
    assert!(res.responses.is_empty());
    assert!(
        !res.timed_out,
        "nobody to wait for is not a timeout: {res:?}"
    );
}
