//! Volatile emits are dropped while the connection cannot take them (a client that stopped
//! reading, with its socket buffers full), and delivered to an idle connection. Non-volatile
//! packets sent meanwhile are all delivered, in order.
//!
//! Deterministic: the slow client has a fixed 64 KiB receive buffer and the server is handed
//! 12 MiB it cannot flush, so the writer stays blocked until the client reads.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, serve};
use socketio::{SocketIo, Value};

const CHUNK: usize = 4 << 20;
const CHUNKS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volatile_emits_are_dropped_while_the_client_is_not_reading() {
    let mut config = common::config();
    config.engine.max_buffered_bytes = 64 << 20;
    let server = serve(SocketIo::new(config)).await;

    let mut slow = Client::open_small_rcvbuf(server.addr, 64 << 10).await;
    let slow_sid = slow.join("/").await;
    let (mut idle, idle_sid) = server.joined("/").await;
    let slow_socket = server.socket("/", &slow_sid);
    let idle_socket = server.socket("/", &idle_sid);

    // While both clients read (and their writers are idle), a volatile emit goes through.
    tokio::time::sleep(Duration::from_millis(100)).await;
    slow_socket
        .emit_volatile("vol", vec![Value::from(0)])
        .unwrap();
    assert_eq!(slow.recv_text().await, r#"42["vol",0]"#);

    // The slow client stops reading: more than its buffers can hold.
    for i in 0..CHUNKS {
        slow_socket
            .emit(
                "big",
                vec![Value::from(i), Value::Binary(vec![i as u8; CHUNK])],
            )
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 1..=5 {
        slow_socket
            .emit_volatile("vol", vec![Value::from(i)])
            .unwrap();
    }
    // A volatile broadcast: dropped for the slow client, delivered to the idle one.
    server
        .io
        .of("/")
        .broadcast()
        .volatile()
        .emit("vol-all", vec![])
        .unwrap();
    assert_eq!(idle.recv_text().await, r#"42["vol-all"]"#);
    slow_socket.emit("after", vec![]).unwrap();
    idle_socket.emit("idle-after", vec![]).unwrap();
    assert_eq!(idle.recv_text().await, r#"42["idle-after"]"#);

    // Now the slow client reads everything: every non-volatile packet, in order, and none of
    // the volatile ones sent while it was blocked.
    for i in 0..CHUNKS {
        assert_eq!(
            slow.recv_text().await,
            format!(r#"451-["big",{i},{{"_placeholder":true,"num":0}}]"#)
        );
        let data = slow.recv_binary().await;
        assert_eq!(data.len(), CHUNK);
        assert!(data.iter().all(|&b| b == i as u8));
    }
    assert_eq!(slow.recv_text().await, r#"42["after"]"#);
    slow.expect_silence(Duration::from_millis(50)).await;

    // Drained and idle again: volatile emits are delivered.
    slow_socket
        .emit_volatile("vol", vec![Value::from(6)])
        .unwrap();
    assert_eq!(slow.recv_text().await, r#"42["vol",6]"#);
    assert!(slow_socket.connected());
}
