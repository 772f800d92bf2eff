//! HTTP long-polling: GET hands out queued packets, POST brings packets in
//! (`notes/protocol.md` 1.5).

use std::io::Write;
use std::sync::atomic::Ordering;

use bytes::{Buf, Bytes};
use flate2::Compression;
use flate2::write::{GzEncoder, ZlibEncoder};
use http::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body::Body;
use http_body_util::BodyExt;
use tokio::sync::oneshot;

use crate::body::ResponseBody;
use crate::config::Config;
use crate::driver::{Cmd, PollReply};
use crate::engine::Entry;
use crate::error::RequestError;
use crate::packet::Frame;
use crate::payload;
use crate::session::CloseReason;

const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=UTF-8");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// A polling GET on a session: waits for packets.
pub(crate) async fn get(
    entry: &Entry,
    config: &Config,
    headers: &HeaderMap,
) -> Result<Response<ResponseBody>, RequestError> {
    let (tx, rx) = oneshot::channel();
    entry
        .send(Cmd::Poll(tx))
        .map_err(|_| RequestError::UnknownSid)?;
    match rx.await {
        Ok(PollReply::Frames(frames)) => Ok(payload_response(&frames, config, headers)),
        Ok(PollReply::Overlap) => Ok(empty(StatusCode::BAD_REQUEST)),
        Ok(PollReply::Upgraded) => Err(RequestError::BadRequest),
        // The session ended while the request waited.
        Err(_) => Err(RequestError::UnknownSid),
    }
}

/// The response carrying a polling payload, compressed when Node would.
pub(crate) fn payload_response(
    frames: &[Frame],
    config: &Config,
    headers: &HeaderMap,
) -> Response<ResponseBody> {
    let chunks = payload::encode(frames);
    let len: usize = chunks.iter().map(Bytes::len).sum();
    let mut response = Response::builder()
        .header(CONTENT_TYPE, TEXT_PLAIN)
        .header(CACHE_CONTROL, NO_STORE);
    let compress = config
        .http_compression
        .filter(|c| len >= c.threshold && frames.iter().any(|f| f.compress));
    if let Some(encoding) = compress.and_then(|_| accepted_encoding(headers))
        && let Some(body) = compressed(&chunks, encoding)
    {
        response = response.header(CONTENT_ENCODING, encoding.name());
        return response.body(ResponseBody::from(body)).unwrap_or_default();
    }
    response
        .body(ResponseBody::from_chunks(chunks))
        .unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Gzip,
    Deflate,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
        }
    }
}

/// gzip, else deflate, if `Accept-Encoding` allows it (q > 0), as Node's `accepts` picks from
/// `["gzip", "deflate"]`.
fn accepted_encoding(headers: &HeaderMap) -> Option<Encoding> {
    let accept = headers.get(ACCEPT_ENCODING)?.to_str().ok()?;
    let allows = |name: &str| {
        accept.split(',').any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let q_zero = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            (coding.eq_ignore_ascii_case(name) || coding == "*") && !q_zero
        })
    };
    [Encoding::Gzip, Encoding::Deflate]
        .into_iter()
        .find(|e| allows(e.name()))
}

fn compressed(chunks: &[Bytes], encoding: Encoding) -> Option<Bytes> {
    fn write_all<W: Write>(mut w: W, chunks: &[Bytes]) -> std::io::Result<W> {
        for chunk in chunks {
            w.write_all(chunk)?;
        }
        Ok(w)
    }
    let out = Vec::new();
    let out = match encoding {
        Encoding::Gzip => {
            write_all(GzEncoder::new(out, Compression::default()), chunks).and_then(|w| w.finish())
        }
        Encoding::Deflate => write_all(ZlibEncoder::new(out, Compression::default()), chunks)
            .and_then(|w| w.finish()),
    };
    out.ok().map(Bytes::from)
}

/// A polling POST: reads the body within the limits, hands it to the session, answers `ok`.
pub(crate) async fn post<B>(
    entry: &Entry,
    config: &Config,
    headers: &HeaderMap,
    body: B,
) -> Response<ResponseBody>
where
    B: Body,
    B::Data: Send,
{
    let shared = &entry.socket.shared;
    // Binary bodies do not exist in v4; answering and closing matters (CVE-2026-59725).
    if headers.get(CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes()
            .eq_ignore_ascii_case(b"application/octet-stream")
    }) {
        return fail(entry, StatusCode::BAD_REQUEST).await;
    }
    if shared.post_busy.swap(true, Ordering::AcqRel) {
        // "data request overlap from client"
        return fail(entry, StatusCode::BAD_REQUEST).await;
    }
    let read = read_body(body, config).await;
    shared.post_busy.store(false, Ordering::Release);
    let body = match read {
        Ok(body) => body,
        Err(status) => return fail(entry, status).await,
    };
    let (done, wait) = oneshot::channel();
    if entry.send(Cmd::Post(Box::new((body, done)))).is_err() || wait.await.is_err() {
        return RequestError::UnknownSid.into_response(false);
    }
    Response::builder()
        .header(CONTENT_TYPE, HeaderValue::from_static("text/html"))
        .header(CACHE_CONTROL, NO_STORE)
        .body(ResponseBody::from("ok"))
        .unwrap_or_default()
}

async fn fail(entry: &Entry, status: StatusCode) -> Response<ResponseBody> {
    let _ = entry.send(Cmd::Fail(CloseReason::TransportError));
    empty(status)
}

/// Reads a POST body: at most `max_payload` bytes (413, CVE-2020-36048) in at most
/// `max_buffered_chunks` chunks (413), within `http_request_body_timeout` (408).
async fn read_body<B>(body: B, config: &Config) -> Result<Bytes, StatusCode>
where
    B: Body,
{
    let read = async {
        let mut body = std::pin::pin!(body);
        let mut parts: Vec<Bytes> = Vec::new();
        let (mut len, mut chunks) = (0usize, 0usize);
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return Err(StatusCode::BAD_REQUEST);
            };
            let Ok(mut data) = frame.into_data() else {
                continue;
            };
            let chunk = data.copy_to_bytes(data.remaining());
            len += chunk.len();
            chunks += 1;
            if len > config.max_payload || chunks > config.max_buffered_chunks {
                return Err(StatusCode::PAYLOAD_TOO_LARGE);
            }
            parts.push(chunk);
        }
        // One chunk (the usual case) stays zero-copy; more are joined once.
        Ok(match parts.len() {
            1 => parts.pop().unwrap_or_default(),
            _ => Bytes::from(parts.concat()),
        })
    };
    tokio::time::timeout(config.http_request_body_timeout, read)
        .await
        .unwrap_or(Err(StatusCode::REQUEST_TIMEOUT))
}

pub(crate) fn empty(status: StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_encoding_like_node() {
        let h = |v: &'static str| {
            let mut m = HeaderMap::new();
            m.insert(ACCEPT_ENCODING, HeaderValue::from_static(v));
            m
        };
        assert_eq!(
            accepted_encoding(&h("gzip, deflate, br")),
            Some(Encoding::Gzip)
        );
        assert_eq!(accepted_encoding(&h("deflate")), Some(Encoding::Deflate));
        assert_eq!(
            accepted_encoding(&h("gzip;q=0, deflate")),
            Some(Encoding::Deflate)
        );
        assert_eq!(accepted_encoding(&h("br")), None);
        assert_eq!(accepted_encoding(&HeaderMap::new()), None);
    }
}
