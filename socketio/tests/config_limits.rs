//! Input limits from `Config` (DESIGN.md rule 2): attachments per packet, total attachment
//! bytes, dynamic namespaces. Over the limit, the connection is closed (or the namespace
//! refused); at the limit, everything works.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Log, serve};
use socketio::{DisconnectReason, SocketIo, Value};

fn placeholders(n: usize) -> String {
    (0..n)
        .map(|i| format!(r#"{{"_placeholder":true,"num":{i}}}"#))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_attachments_per_packet() {
    let mut config = common::config();
    config.max_attachments = 3;
    let io = SocketIo::new(config);
    let got = Log::new();
    let g = got.clone();
    let reasons = Log::new();
    let r = reasons.clone();
    io.of("/")
        .on("bin", move |_, args, _| g.push(args.len()))
        .on_disconnect(move |_, reason| r.push(reason));
    let server = serve(io).await;

    let (mut client, _) = server.joined("/").await;
    client
        .send(&format!(r#"453-["bin",{}]"#, placeholders(3)))
        .await;
    for i in 0..3u8 {
        client.send_binary(&[i]).await;
    }
    assert_eq!(got.wait_len(1).await, [3]);
    client.assert_alive().await;

    client
        .send(&format!(r#"454-["bin",{}]"#, placeholders(4)))
        .await;
    assert!(client.expect_closed().await.is_empty());
    assert_eq!(reasons.wait_len(1).await, [DisconnectReason::ForcedClose]);
    assert_eq!(got.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_of_one_packet_are_bounded_by_max_payload() {
    let mut config = common::config();
    config.engine.max_payload = 1000;
    let io = SocketIo::new(config);
    let got = Log::new();
    let g = got.clone();
    io.of("/").on("bin", move |_, args, _| {
        g.push(
            args.iter()
                .map(|a| a.as_slice().map_or(0, <[u8]>::len))
                .sum::<usize>(),
        );
    });
    let server = serve(io).await;

    // Each attachment fits in a message; together they are at the limit: accepted.
    let (mut client, _) = server.joined("/").await;
    client
        .send(&format!(r#"452-["bin",{}]"#, placeholders(2)))
        .await;
    client.send_binary(&[1; 500]).await;
    client.send_binary(&[2; 500]).await;
    assert_eq!(got.wait_len(1).await, [1000]);
    client.assert_alive().await;

    // Each fits, together they do not: the connection closes.
    client
        .send(&format!(r#"452-["bin",{}]"#, placeholders(2)))
        .await;
    client.send_binary(&[1; 600]).await;
    client.send_binary(&[2; 600]).await;
    assert!(client.expect_closed().await.is_empty());
    assert_eq!(got.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_dynamic_namespaces() {
    let mut config = common::config();
    // "/" counts: room for two children.
    config.max_dynamic_namespaces = 3;
    let io = SocketIo::new(config);
    io.of_dynamic(|name, _| name.starts_with("/d"))
        .on("ping", |_, _, ack| {
            ack.unwrap().send(vec![Value::from("pong")])
        });
    let server = serve(io).await;
    let mut client = server.client().await;
    client.join("/d1").await;
    client.join("/d2").await;
    client.send("40/d3,").await;
    assert_eq!(
        client.recv_text().await,
        r#"44/d3,{"message":"Invalid namespace"}"#
    );
    assert!(server.io.namespace("/d3").is_none());
    // Existing children still accept connections.
    let mut other = server.client().await;
    other.join("/d1").await;
    other.send(r#"42/d1,1["ping"]"#).await;
    assert_eq!(other.recv_text().await, r#"43/d1,1["pong"]"#);
}
