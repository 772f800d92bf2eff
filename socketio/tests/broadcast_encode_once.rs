//! DESIGN.md rule 1: one broadcast is one encode, whatever the number of recipients, and every
//! recipient gets the same bytes; a binary packet and its attachments reach each client as one
//! contiguous run of frames.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, Frame, parse, serve, val};
use serde_json::json;
use socketio::{SocketIo, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_to_50_sockets_is_encoded_once_and_identical_everywhere() {
    let server = serve(SocketIo::new(common::config())).await;
    let mut clients: Vec<Client> = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..50 {
        let (client, sid) = server.joined("/").await;
        clients.push(client);
        ids.push(sid);
    }
    let ns = server.io.of("/");
    assert_eq!(ns.sockets().len(), 50);
    let before = ns.local().broadcast_encodes();

    server
        .io
        .emit(
            "news",
            vec![
                val(json!({"title": "hello", "tags": ["a", "b"], "n": 1.5})),
                Value::from("é\u{1e}"),
            ],
        )
        .unwrap();

    assert_eq!(
        ns.local().broadcast_encodes(),
        before + 1,
        "one broadcast to 50 sockets must encode once"
    );
    let expected = r#"42["news",{"title":"hello","tags":["a","b"],"n":1.5},"é\u001e"]"#;
    for client in &mut clients {
        assert_eq!(client.recv_text().await, expected);
    }

    // A room broadcast with an exclusion: still one encode, only the selected sockets get it
    // (clients 1..10: in the room, not excluded).
    for id in &ids[..10] {
        ns.socket(id).unwrap().join(["ten"]);
    }
    let before = ns.local().broadcast_encodes();
    ns.to(["ten"])
        .except([ids[0].as_str()])
        .emit("ten", vec![])
        .unwrap();
    assert_eq!(ns.local().broadcast_encodes(), before + 1);
    server.io.emit("marker", vec![]).unwrap();
    for (i, client) in clients.iter_mut().enumerate() {
        if (1..10).contains(&i) {
            assert_eq!(client.recv_text().await, r#"42["ten"]"#);
        }
        assert_eq!(client.recv_text().await, r#"42["marker"]"#);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_to_nobody_sends_nothing() {
    let server = serve(SocketIo::new(common::config())).await;
    let (mut client, _) = server.joined("/").await;
    server.io.to(["empty-room"]).emit("x", vec![]).unwrap();
    client.expect_silence(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_broadcast_frames_stay_contiguous_under_concurrent_emits() {
    const CLIENTS: usize = 8;
    const PER_THREAD: usize = 40;
    let server = serve(SocketIo::new(common::config())).await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (client, _) = server.joined("/").await;
        clients.push(client);
    }
    let ns = server.io.of("/");
    let before = ns.local().broadcast_encodes();

    // Two threads broadcast binary packets (2 attachments each) while a third emits text
    // packets to each socket individually.
    let mut threads = Vec::new();
    for t in 0..2u8 {
        let io = server.io.clone();
        threads.push(std::thread::spawn(move || {
            for i in 0..PER_THREAD {
                let n = u8::try_from(i).unwrap();
                io.emit(
                    "bin",
                    vec![
                        Value::from(format!("{t}-{i}")),
                        Value::Binary(vec![t, n, 1]),
                        val(json!({"nested": [0]})),
                        Value::Binary(vec![t, n, 2, 2]),
                    ],
                )
                .unwrap();
            }
        }));
    }
    {
        let ns = ns.clone();
        threads.push(std::thread::spawn(move || {
            for i in 0..PER_THREAD {
                for socket in ns.sockets() {
                    socket.emit("txt", vec![Value::from(i as u64)]).unwrap();
                }
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        ns.local().broadcast_encodes(),
        before + 2 * PER_THREAD as u64,
        "each binary broadcast encodes once"
    );

    for client in &mut clients {
        let mut bins = 0;
        let mut txts = 0;
        while bins + txts < 3 * PER_THREAD {
            let frame = client.recv().await;
            let pkt = parse(frame.text());
            match pkt.kind {
                5 => {
                    assert_eq!(pkt.attachments, Some(2));
                    let label = pkt.args()[0].as_str().unwrap().to_owned();
                    let (t, i) = label.split_once('-').unwrap();
                    let (t, i): (u8, u8) = (t.parse().unwrap(), i.parse().unwrap());
                    assert_eq!(
                        frame.text(),
                        format!(
                            r#"452-["bin","{label}",{{"_placeholder":true,"num":0}},{{"nested":[0]}},{{"_placeholder":true,"num":1}}]"#
                        )
                    );
                    // The attachments follow at once, in order: nothing in between.
                    assert_eq!(client.recv().await, Frame::Binary(vec![t, i, 1]));
                    assert_eq!(client.recv().await, Frame::Binary(vec![t, i, 2, 2]));
                    bins += 1;
                }
                2 => {
                    assert_eq!(pkt.event(), "txt");
                    txts += 1;
                }
                other => panic!("unexpected packet type {other}: {frame:?}"),
            }
        }
        assert_eq!((bins, txts), (2 * PER_THREAD, PER_THREAD));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_and_direct_emits_from_one_thread_keep_their_order() {
    const N: u64 = 300;
    let server = serve(SocketIo::new(common::config())).await;
    let (mut client, sid) = server.joined("/").await;
    let socket = server.socket("/", &sid);
    socket.join(["r"]);
    let io = server.io.clone();
    std::thread::spawn(move || {
        for i in 0..N {
            match i % 3 {
                0 => io.emit("n", vec![Value::from(i)]).unwrap(),
                1 => socket.emit("n", vec![Value::from(i)]).unwrap(),
                _ => io
                    .to(["r"])
                    .emit("n", vec![Value::Binary(vec![1]), Value::from(i)])
                    .unwrap(),
            }
        }
    })
    .join()
    .unwrap();
    for i in 0..N {
        let pkt = parse(&client.recv_text().await);
        assert_eq!(pkt.args().last().unwrap(), &json!(i));
        if i % 3 == 2 {
            assert_eq!(client.recv().await, Frame::Binary(vec![1]));
        }
    }
}
