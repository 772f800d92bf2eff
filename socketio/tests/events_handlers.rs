//! Events from the client: typed payloads, ack answers (text and binary), `on_any`, packet
//! middlewares and `on_error`, `on_any_outgoing`, and arrival order.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Frame, Log, serve, val};
use serde::{Deserialize, Serialize};
use serde_json::json;
use socketio::{SocketIo, Value};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
struct Chat {
    room: String,
    text: String,
    #[serde(default)]
    tags: Vec<String>,
    priority: Option<u8>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_payload_and_ack_answer() {
    let io = SocketIo::new(common::config());
    let got = Log::new();
    for nsp in ["/", "/chat"] {
        let got = got.clone();
        io.of(nsp).on("chat", move |_, args, ack| {
            let chat: Chat = socketio::from_value(args[0].clone()).unwrap();
            got.push(chat.clone());
            if let Some(ack) = ack {
                let reply = socketio::to_value(&json!({"ok": true, "len": chat.text.len()}));
                ack.send(vec![reply.unwrap(), Value::from(chat.room)]);
            }
        });
    }
    let server = serve(io).await;
    let (mut client, _) = server.joined("/").await;
    client.join("/chat").await;

    client
        .send(r#"4212["chat",{"room":"a","text":"héllo","tags":["x"],"priority":3}]"#)
        .await;
    assert_eq!(client.recv_text().await, r#"4312[{"ok":true,"len":6},"a"]"#);
    client
        .send(r#"42/chat,0["chat",{"room":"b","text":"","priority":null}]"#)
        .await;
    assert_eq!(
        client.recv_text().await,
        r#"43/chat,0[{"ok":true,"len":0},"b"]"#
    );
    // Without an ack id the handler gets no AckSender and nothing is sent back.
    client.send(r#"42["chat",{"room":"c","text":"x"}]"#).await;
    got.wait_len(3).await;
    client.expect_silence(Duration::from_millis(50)).await;

    assert_eq!(
        got.get(),
        [
            Chat {
                room: "a".into(),
                text: "héllo".into(),
                tags: vec!["x".into()],
                priority: Some(3)
            },
            Chat {
                room: "b".into(),
                text: String::new(),
                tags: vec![],
                priority: None
            },
            Chat {
                room: "c".into(),
                text: "x".into(),
                tags: vec![],
                priority: None
            },
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_in_and_binary_ack_out() {
    let io = SocketIo::new(common::config());
    io.of("/").on("upload", |_, args, ack| {
        // The attachment arrives as binary in its place; answer with it reversed.
        let Value::Binary(data) = &args[1] else {
            panic!("expected binary, got {args:?}")
        };
        let mut rev = data.clone();
        rev.reverse();
        ack.unwrap().send(vec![
            Value::from(args[0].as_str().unwrap()),
            val(json!({"size": data.len()})),
            Value::Binary(rev),
        ]);
    });
    io.of("/files").on("get", |_, _, ack| {
        ack.unwrap()
            .send(vec![Value::Binary(vec![9, 8]), Value::Binary(vec![])]);
    });
    let server = serve(io).await;
    let (mut client, _) = server.joined("/").await;
    client.join("/files").await;

    client
        .send(r#"451-5["upload","name.bin",{"_placeholder":true,"num":0}]"#)
        .await;
    client.send_binary(&[1, 2, 3, 4]).await;
    assert_eq!(
        client.recv_text().await,
        r#"461-5["name.bin",{"size":4},{"_placeholder":true,"num":0}]"#
    );
    assert_eq!(client.recv().await, Frame::Binary(vec![4, 3, 2, 1]));

    client.send(r#"42/files,77["get"]"#).await;
    assert_eq!(
        client.recv_text().await,
        r#"462-/files,77[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#
    );
    assert_eq!(client.recv().await, Frame::Binary(vec![9, 8]));
    assert_eq!(client.recv().await, Frame::Binary(vec![]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_sender_can_answer_later_from_a_task() {
    let io = SocketIo::new(common::config());
    io.of("/").on("slow", |_, args, ack| {
        let ack = ack.unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            ack.send(args);
        });
    });
    io.of("/").on("fast", |_, _, ack| ack.unwrap().send(vec![]));
    let server = serve(io).await;
    let (mut client, _) = server.joined("/").await;
    client.send(r#"421["slow","a"]"#).await;
    client.send(r#"422["fast"]"#).await;
    assert_eq!(client.recv_text().await, "432[]");
    assert_eq!(client.recv_text().await, r#"431["a"]"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_any_sees_every_event_before_its_handler() {
    let io = SocketIo::new(common::config());
    let log = Log::new();
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    io.of("/")
        .on_any(move |_, event, args| l1.push(format!("any1 {event} {}", args.len())))
        .on_any(move |_, event, _| l2.push(format!("any2 {event}")))
        .on("known", move |_, _, _| l3.push("handler known".to_owned()));
    let server = serve(io).await;
    let (mut client, _) = server.joined("/").await;

    client.send(r#"42["known",1,2]"#).await;
    client.send(r#"42["unknown"]"#).await;
    // Numeric event names are accepted and given as text.
    client.send("42[7,true]").await;
    log.wait_len(7).await;
    assert_eq!(
        log.get(),
        [
            "any1 known 2",
            "any2 known",
            "handler known",
            "any1 unknown 0",
            "any2 unknown",
            "any1 7 1",
            "any2 7",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packet_middleware_refusal_stops_the_handler_and_goes_to_on_error() {
    let io = SocketIo::new(common::config());
    let log = Log::new();
    let (l1, l2, l3, l4, l5) = (
        log.clone(),
        log.clone(),
        log.clone(),
        log.clone(),
        log.clone(),
    );
    io.of("/")
        .on_any(move |_, event, _| l1.push(format!("any {event}")))
        .use_packet_middleware(move |_, event, _| {
            l2.push(format!("mw1 {event}"));
            Ok(())
        })
        .use_packet_middleware(move |_, event, args| {
            l3.push(format!("mw2 {event}"));
            if event == "secret" {
                Err(format!("{event} is forbidden ({} args)", args.len()))
            } else {
                Ok(())
            }
        })
        .on_error(move |s, err| l4.push(format!("error {err} connected={}", s.connected())))
        .on("secret", |_, _, ack| {
            ack.unwrap().send(vec![Value::from("leaked")])
        })
        .on("open", move |_, _, ack| {
            l5.push("handler open".to_owned());
            ack.unwrap().send(vec![Value::from("ok")]);
        });
    let server = serve(io).await;
    let (mut client, sid) = server.joined("/").await;

    client.send(r#"421["secret",1]"#).await;
    log.wait_len(4).await;
    // The client is not told: no ack, no error packet, no disconnect.
    client.expect_silence(Duration::from_millis(100)).await;
    client.send(r#"422["open"]"#).await;
    assert_eq!(client.recv_text().await, r#"432["ok"]"#);
    assert_eq!(
        log.get(),
        [
            "any secret",
            "mw1 secret",
            "mw2 secret",
            "error secret is forbidden (1 args) connected=true",
            "any open",
            "mw1 open",
            "mw2 open",
            "handler open",
        ]
    );
    assert!(server.socket("/", &sid).connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_any_outgoing_sees_emits_acks_and_broadcasts() {
    let io = SocketIo::new(common::config());
    let log = Log::new();
    let l = log.clone();
    io.of("/")
        .on_any_outgoing(move |s, event, args| {
            l.push((
                s.id().to_owned(),
                event.to_owned(),
                common::json(&Value::Array(args.to_vec())),
            ));
        })
        .on("trigger", |s, _, _| {
            s.emit("direct", vec![Value::from(1)]).unwrap();
        });
    let server = serve(io).await;
    let (mut a, sid_a) = server.joined("/").await;
    let (mut b, sid_b) = server.joined("/").await;

    a.send(r#"42["trigger"]"#).await;
    assert_eq!(a.recv_text().await, r#"42["direct",1]"#);
    server.io.emit("everyone", vec![Value::from("x")]).unwrap();
    assert_eq!(a.recv_text().await, r#"42["everyone","x"]"#);
    assert_eq!(b.recv_text().await, r#"42["everyone","x"]"#);
    let socket_b = server.socket("/", &sid_b);
    let ack = socket_b.emit_with_ack("question", vec![], Duration::from_secs(2));
    assert_eq!(b.recv_text().await, r#"420["question"]"#);
    b.send("430[]").await;
    ack.await.unwrap();

    let mut got = log.get();
    // The broadcast's two notifications may come in any order.
    got[1..3].sort_by(|x, y| x.0.cmp(&y.0));
    let mut expected = vec![
        (sid_a.clone(), "direct".to_owned(), json!([1])),
        (sid_a.clone(), "everyone".to_owned(), json!(["x"])),
        (sid_b.clone(), "everyone".to_owned(), json!(["x"])),
        (sid_b.clone(), "question".to_owned(), json!([])),
    ];
    expected[1..3].sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_of_one_socket_run_in_arrival_order() {
    const N: usize = 200;
    let io = SocketIo::new(common::config());
    let order = Log::new();
    let o = order.clone();
    io.of("/").on("n", move |_, args, ack| {
        o.push(args[0].as_u64().unwrap());
        if let Some(ack) = ack {
            ack.send(vec![]);
        }
    });
    io.of("/").on("m", {
        let o = order.clone();
        move |_, args, _| o.push(1000 + args[0].as_u64().unwrap())
    });
    let server = serve(io).await;
    let (mut client, _) = server.joined("/").await;
    // Interleave two event names, one of them with binary attachments (reassembled before
    // dispatch), and ask for an ack at the end to sync.
    for i in 0..N {
        if i % 10 == 5 {
            client
                .send(&format!(r#"451-["m",{i},{{"_placeholder":true,"num":0}}]"#))
                .await;
            client.send_binary(&[0]).await;
        } else {
            client.send(&format!(r#"42["n",{i}]"#)).await;
        }
    }
    client.send(&format!(r#"429["n",{N}]"#)).await;
    assert_eq!(client.recv_text().await, "439[]");
    let expected: Vec<u64> = (0..=N as u64)
        .map(|i| {
            if i % 10 == 5 && i < N as u64 {
                1000 + i
            } else {
                i
            }
        })
        .collect();
    assert_eq!(order.get(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_does_not_leak_its_socket_or_connection() {
    let io = SocketIo::new(common::config());
    let reasons = Log::new();
    let r = reasons.clone();
    io.of("/")
        .on("boom", |_, _, _| panic!("a bug in a handler"))
        .on_disconnect(move |_, reason| r.push(reason));
    let server = serve(io).await;
    let (mut client, sid) = server.joined("/").await;
    client.send(r#"42["boom"]"#).await;
    // The connection ends and the socket leaves like any other closed connection.
    client.expect_closed().await;
    reasons.wait_len(1).await;
    assert!(server.io.of("/").socket(&sid).is_none());
    server.wait_clients(0).await;
}
