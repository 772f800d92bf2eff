//! `Config::http_compression`: polling responses are gzip- or deflate-compressed when the
//! payload reaches the threshold, some frame allows it and the client accepts it.

mod common;

use std::io::Read;

use common::*;
use engineio::{Config, Frame, HttpCompression};
use flate2::read::{GzDecoder, ZlibDecoder};

/// Opens a polling session, queues `frames` on it, then GETs them with these headers.
async fn fetch(config: Config, frames: Vec<Frame>, headers: &[(&str, &str)]) -> Resp {
    let server = serve(config, Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    server
        .handler()
        .socket(&polling.sid)
        .send_all(frames)
        .expect("queued");
    let res = server.http().get_with(&polling.query(), headers).await;
    assert_eq!(res.status, http::StatusCode::OK);
    assert_eq!(
        res.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    res
}

fn gunzip(body: &[u8]) -> String {
    let mut out = String::new();
    GzDecoder::new(body)
        .read_to_string(&mut out)
        .expect("valid gzip");
    out
}

fn inflate(body: &[u8]) -> String {
    let mut out = String::new();
    ZlibDecoder::new(body)
        .read_to_string(&mut out)
        .expect("valid zlib");
    out
}

/// Text of `n` characters that compresses well.
fn filler(n: usize) -> String {
    "abcdefghij".chars().cycle().take(n).collect()
}

const GZIP: &[(&str, &str)] = &[("accept-encoding", "gzip, deflate, br")];

#[tokio::test]
async fn large_payload_is_gzipped() {
    let big = filler(4000);
    let res = fetch(
        quiet_config(),
        vec![Frame::text(&big), Frame::binary(vec![7u8; 10])],
        GZIP,
    )
    .await;
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    assert!(
        res.body.len() < 1000,
        "compressed: {} bytes",
        res.body.len()
    );
    assert_eq!(gunzip(&res.body), format!("4{big}\x1ebBwcHBwcHBwcHBw=="));
}

#[tokio::test]
async fn deflate_when_gzip_is_not_accepted() {
    let big = filler(2000);
    let res = fetch(
        quiet_config(),
        vec![Frame::text(&big)],
        &[("accept-encoding", "gzip;q=0, deflate")],
    )
    .await;
    assert_eq!(res.header("content-encoding"), Some("deflate"));
    assert_eq!(inflate(&res.body), format!("4{big}"));
}

#[tokio::test]
async fn threshold_counts_the_whole_payload() {
    // "4" + 1023 characters = 1024 bytes: at the default threshold, compressed.
    let at = filler(1023);
    let res = fetch(quiet_config(), vec![Frame::text(&at)], GZIP).await;
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&res.body), format!("4{at}"));

    // One byte less: sent as is.
    let below = filler(1022);
    let res = fetch(quiet_config(), vec![Frame::text(&below)], GZIP).await;
    assert_eq!(res.header("content-encoding"), None);
    assert_eq!(res.text(), format!("4{below}"));

    // Several small frames that add up to the threshold, separators included.
    let frames = (0..4).map(|_| Frame::text(filler(255))).collect();
    let res = fetch(quiet_config(), frames, GZIP).await;
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&res.body).split(SEP).count(), 4);
}

#[tokio::test]
async fn custom_threshold() {
    let mut config = quiet_config();
    let mut compression = HttpCompression::default();
    compression.threshold = 10;
    config.http_compression = Some(compression);
    let res = fetch(config, vec![Frame::text("hello world")], GZIP).await;
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&res.body), "4hello world");
}

#[tokio::test]
async fn frames_that_refuse_compression_are_sent_as_is() {
    let big = filler(4000);
    let res = fetch(
        quiet_config(),
        vec![Frame::text(&big).compress(false)],
        GZIP,
    )
    .await;
    assert_eq!(res.header("content-encoding"), None);
    assert_eq!(res.text(), format!("4{big}"));

    // One frame allowing it is enough (Node: `packets.some(p => p.options.compress)`).
    let res = fetch(
        quiet_config(),
        vec![
            Frame::text(&big).compress(false),
            Frame::text("x").compress(true),
        ],
        GZIP,
    )
    .await;
    assert_eq!(res.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&res.body), format!("4{big}\x1e4x"));
}

#[tokio::test]
async fn no_compression_without_an_accepted_encoding() {
    let big = filler(4000);
    let res = fetch(quiet_config(), vec![Frame::text(&big)], &[]).await;
    assert_eq!(res.header("content-encoding"), None);
    assert_eq!(res.text(), format!("4{big}"));

    let res = fetch(
        quiet_config(),
        vec![Frame::text(&big)],
        &[("accept-encoding", "br, identity")],
    )
    .await;
    assert_eq!(res.header("content-encoding"), None);
    assert_eq!(res.text(), format!("4{big}"));
}

#[tokio::test]
async fn compression_off_never_compresses() {
    let mut config = quiet_config();
    config.http_compression = None;
    let big = filler(100_000);
    let res = fetch(config, vec![Frame::text(&big)], GZIP).await;
    assert_eq!(res.header("content-encoding"), None);
    assert_eq!(res.text(), format!("4{big}"));
}
