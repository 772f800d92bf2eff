//! `connect_timeout`: a connection that joins no namespace in time is closed; one that joined
//! is kept, even after it left every namespace.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::serve;
use socketio::{ConnectError, SocketIo};

const TIMEOUT: Duration = Duration::from_millis(300);

fn server_config() -> socketio::Config {
    let mut config = common::config();
    config.connect_timeout = TIMEOUT;
    // Heartbeats during the test: the client answers them, and they must not count as joining.
    config.engine.ping_interval = Duration::from_millis(100);
    // Generous: a client answers pings only while the test reads from it.
    config.engine.ping_timeout = Duration::from_secs(2);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_joins_nothing_is_closed() {
    let io = SocketIo::new(server_config());
    io.of("/refused")
        .use_middleware(|_| Err(ConnectError::new("no")));
    let server = serve(io).await;

    let start = Instant::now();
    let mut idle = server.client().await;
    let mut refused = server.client().await;
    refused.send("40/refused,").await;
    assert_eq!(refused.recv_text().await, r#"44/refused,{"message":"no"}"#);
    // An unknown namespace does not count either.
    refused.send("40/nope,").await;
    assert_eq!(
        refused.recv_text().await,
        r#"44/nope,{"message":"Invalid namespace"}"#
    );

    assert!(idle.expect_closed().await.is_empty());
    let elapsed = start.elapsed();
    assert!(
        elapsed >= TIMEOUT - Duration::from_millis(20),
        "{elapsed:?}"
    );
    // Far below the 45 s default: it is this timeout that closed it.
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(
        idle.pings >= 1,
        "pings came and were answered before the close"
    );
    assert!(refused.expect_closed().await.is_empty());
    server.wait_clients(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_joined_is_kept() {
    let server = serve(SocketIo::new(server_config())).await;
    let (mut joined, sid) = server.joined("/").await;
    let mut left = server.client().await;
    left.join("/").await;
    left.send("41").await;

    joined.expect_silence(TIMEOUT * 2).await;
    server.socket("/", &sid).emit("still-here", vec![]).unwrap();
    assert_eq!(joined.recv_text().await, r#"42["still-here"]"#);
    left.assert_alive().await;
    assert!(joined.pings >= 1);
    assert_eq!(server.io.engine().clients_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_just_before_the_deadline_is_enough() {
    let server = serve(SocketIo::new(server_config())).await;
    let mut client = server.client().await;
    tokio::time::sleep(TIMEOUT - Duration::from_millis(100)).await;
    let sid = client.join("/").await;
    tokio::time::sleep(TIMEOUT).await;
    server.socket("/", &sid).emit("ok", vec![]).unwrap();
    assert_eq!(client.recv_text().await, r#"42["ok"]"#);
}
