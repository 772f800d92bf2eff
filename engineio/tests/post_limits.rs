//! The limits on a polling POST body besides its size: `http_request_body_timeout` (Node's
//! `httpRequestBodyTimeout`: a body dripped too slowly gets 408) and `max_buffered_chunks`
//! (Node's `maxBufferedChunks`: a body in too many chunks gets 413). Either ends the session
//! with `transport error`, and the server keeps serving others.

mod common;

use std::time::{Duration, Instant};

use common::*;
use engineio::{CloseReason, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn config() -> Config {
    let mut config = quiet_config();
    config.http_request_body_timeout = Duration::from_millis(300);
    config.max_buffered_chunks = 8;
    config
}

/// Sends the head of a POST to the session, then `body_parts` with a pause between them, and
/// returns the status line of the answer.
async fn raw_post(server: &Server<Recorder>, sid: &str, head: &str, parts: &[&[u8]]) -> String {
    let mut tcp = TcpStream::connect(server.addr).await.expect("connect");
    let path = &server.engine.config().path;
    let request = format!(
        "POST {path}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: localhost\r\n{head}\r\n"
    );
    tcp.write_all(request.as_bytes()).await.expect("write head");
    for part in parts {
        // A write refused after the server answered is part of the story, not a failure.
        if tcp.write_all(part).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    within("the POST's answer", async {
        while !answer.windows(2).any(|w| w == b"\r\n") {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_body_dripped_slower_than_the_timeout_gets_408_and_ends_the_session() {
    let server = serve(config(), Recorder::new()).await;
    let http = server.http();
    let polling = Polling::open(&http, "").await;
    let started = Instant::now();
    // Announces 100 bytes, sends 2, then nothing.
    let status = raw_post(&server, &polling.sid, "Content-Length: 100\r\n", &[b"4a"]).await;
    assert!(status.starts_with("HTTP/1.1 408"), "{status}");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "not before the timeout"
    );
    assert_eq!(
        server.handler().wait_close(&polling.sid).await,
        CloseReason::TransportError
    );
    // Nothing lost for others: a fresh session works.
    let fresh = Polling::open(&http, "").await;
    fresh.send("4ok").await;
    server.handler().wait_messages(&fresh.sid, 1).await;
}

#[tokio::test]
async fn a_body_in_more_chunks_than_allowed_gets_413_and_ends_the_session() {
    let server = serve(config(), Recorder::new()).await;
    let http = server.http();
    let polling = Polling::open(&http, "").await;
    // `4` then 19 one-byte chunks: 20 chunks of a 20-byte body, far under maxPayload.
    let mut chunks: Vec<Vec<u8>> = vec![b"1\r\n4\r\n".to_vec()];
    chunks.extend((0..19).map(|_| b"1\r\nx\r\n".to_vec()));
    chunks.push(b"0\r\n\r\n".to_vec());
    let parts: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
    let status = raw_post(
        &server,
        &polling.sid,
        "Transfer-Encoding: chunked\r\n",
        &parts,
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    assert_eq!(
        server.handler().wait_close(&polling.sid).await,
        CloseReason::TransportError
    );
    assert!(
        server.handler().messages(&polling.sid).is_empty(),
        "nothing of the refused body is delivered"
    );
    // The same body in few chunks is fine on a fresh session.
    let fresh = Polling::open(&http, "").await;
    let status = raw_post(
        &server,
        &fresh.sid,
        "Content-Length: 20\r\n",
        &[format!("4{}", "x".repeat(19)).as_bytes()],
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(
        server.handler().wait_messages(&fresh.sid, 1).await,
        [text(&"x".repeat(19))]
    );
}
