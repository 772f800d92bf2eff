//! Engine.IO v4 server.
//!
//! A pure core — packet and payload codecs ([`packet`](crate::Frame)), the session state
//! machine, the RFC 6455 frame codec — and a thin runtime edge: hyper for HTTP long-polling
//! and the WebSocket upgrade, one task per session that also reads and writes its WebSocket.
//! The layer above implements [`Handler`] and talks to each connection through its
//! [`Socket`].
//!
//! ```no_run
//! use engineio::{CloseReason, Config, Engine, Frame, Handler, Message, Socket};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     type Conn = ();
//!     fn on_open(&self, _: &Socket) {}
//!     fn on_message(&self, _: &mut (), socket: &Socket, message: Message) {
//!         let _ = socket.send(match message {
//!             Message::Text(text) => Frame::text(&*text),
//!             Message::Binary(data) => Frame::binary(data),
//!         });
//!     }
//!     fn on_close(&self, _: (), _: &Socket, _: CloseReason) {}
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let engine = Engine::new(Config::default(), Echo);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! engine.serve(listener, std::future::pending()).await
//! # }
//! ```

#![warn(missing_docs)]

mod body;
mod config;
mod driver;
mod engine;
mod error;
mod handler;
mod packet;
mod payload;
mod request;
mod session;
mod sid;
mod socket;
mod transport;

pub use body::ResponseBody;
pub use config::{AllowRequest, Config, Cookie, Cors, CorsOrigin, HttpCompression, Transports};
pub use engine::Engine;
pub use error::{DecodeError, Error, RequestError};
pub use handler::Handler;
pub use packet::{Frame, Message, Str};
pub use request::{RemoteAddr, RequestInfo};
pub use session::{CloseReason, TransportKind};
pub use sid::generate as generate_id;
pub use socket::Socket;

/// Decoders exposed for fuzzing only (`fuzz/`); each entry point asserts invariants and panics
/// when one breaks.
#[cfg(fuzzing)]
pub mod fuzz {
    use bytes::Bytes;
    use tokio_tungstenite::tungstenite::Utf8Bytes;

    use crate::error::DecodeError;
    use crate::packet::{Frame, FrameKind, Message, Packet, b64_packet};
    use crate::payload::{self, SEPARATOR};

    /// Decodes a polling payload completely. Checks that:
    /// - iteration stops at the first error, which comes last, and yields at most one packet per
    ///   separated chunk;
    /// - each packet is what the WebSocket text-frame decoder makes of its chunk;
    /// - the packets before any error re-encode to a payload that decodes to the same packets.
    pub fn decode_payload(data: &[u8]) {
        let results: Vec<_> = payload::decode(Bytes::copy_from_slice(data)).collect();
        let chunks: Vec<&[u8]> = data.split(|&b| b == SEPARATOR).collect();
        assert!(
            !results.is_empty() && results.len() <= chunks.len(),
            "{} results for {} chunks",
            results.len(),
            chunks.len()
        );
        let (last, init) = results.split_last().expect("not empty");
        assert!(init.iter().all(Result::is_ok), "a packet after an error");
        if std::str::from_utf8(data).is_err() {
            assert_eq!(results, [Err(DecodeError::InvalidUtf8)]);
            return;
        }
        for (result, chunk) in results.iter().zip(&chunks) {
            let text = std::str::from_utf8(chunk).expect("split next to ASCII");
            let frame = Packet::decode_frame(&Utf8Bytes::from(text));
            assert_eq!(
                *result, frame,
                "payload and frame decoders disagree on {text:?}"
            );
        }
        let complete = last.is_ok();
        let packets: Vec<Packet> = results.into_iter().map_while(Result::ok).collect();
        if complete {
            assert_eq!(
                packets.len(),
                chunks.len(),
                "payload decoding stopped early"
            );
        }
        if packets.is_empty() {
            return;
        }
        let frames: Vec<Frame> = packets.iter().map(to_frame).collect();
        let body = Bytes::from(payload::encode(&frames).concat());
        let again: Vec<_> = payload::decode(body.clone()).collect();
        let expected: Vec<_> = packets.into_iter().map(Ok).collect();
        assert_eq!(again, expected, "re-encoded payload {body:?}");
    }

    /// Decodes `data` as one WebSocket text frame when it is valid UTF-8, and as one binary frame.
    /// Checks the error kinds, that a text message is the frame minus its type byte, that a
    /// decoded packet re-encodes to a frame that decodes to it, and that a binary message survives
    /// the `b64` text form (WebSocket and polling).
    pub fn decode_packet(data: &[u8]) {
        if let Ok(text) = std::str::from_utf8(data) {
            decode_text_frame(text);
        }
        decode_binary_frame(data);
    }

    fn decode_text_frame(text: &str) {
        let frame = Utf8Bytes::from(text);
        let decoded = Packet::decode_frame(&frame);
        match (text.as_bytes().first(), &decoded) {
            (None, result) => assert_eq!(*result, Err(DecodeError::Empty)),
            (Some(b'0'..=b'6'), result) => assert!(result.is_ok(), "{text:?}: {result:?}"),
            (Some(b'b'), Ok(Packet::Message(Message::Binary(_))))
            | (Some(b'b'), Err(DecodeError::InvalidBase64)) => {}
            (Some(_), result) => assert_eq!(*result, Err(DecodeError::UnknownType), "{text:?}"),
        }
        let Ok(packet) = decoded else { return };
        if let Packet::Message(Message::Text(s)) = &packet {
            assert_eq!(s.as_str(), text.get(1..).expect("ASCII type byte"));
        }
        let again = match to_frame(&packet).kind {
            FrameKind::Text(t) => Packet::decode_frame(&t),
            FrameKind::Binary(b) => Ok(Packet::Message(Message::Binary(b))),
        };
        assert_eq!(again, Ok(packet), "re-encoded frame of {text:?}");
    }

    fn decode_binary_frame(data: &[u8]) {
        // As the driver does: a binary frame has no type byte and is always a message.
        let data = Bytes::copy_from_slice(data);
        let packet = Packet::Message(Message::Binary(data.clone()));
        // A `b64` client gets it as a text frame.
        let b64 = Utf8Bytes::from(b64_packet(&data));
        assert_eq!(
            Packet::decode_frame(&b64).as_ref(),
            Ok(&packet),
            "b64 text frame"
        );
        // A polling client gets it in a payload, between two other packets.
        let frames = [Frame::control("6"), Frame::binary(data), Frame::text("x")];
        let body = Bytes::from(payload::encode(&frames).concat());
        let decoded: Vec<_> = payload::decode(body).collect();
        let expected = [
            Ok(Packet::Noop),
            Ok(packet),
            Ok(Packet::Message(Message::Text("x".into()))),
        ];
        assert_eq!(decoded, expected, "polling payload");
    }

    /// The outgoing frame for a decoded packet (`Ping`/`Pong` data other than `probe` is dropped,
    /// as decoding does).
    fn to_frame(packet: &Packet) -> Frame {
        match packet {
            Packet::Open => Frame::control("0"),
            Packet::Close => Frame::control("1"),
            Packet::Ping { probe: false } => Frame::control("2"),
            Packet::Ping { probe: true } => Frame::control("2probe"),
            Packet::Pong { probe: false } => Frame::control("3"),
            Packet::Pong { probe: true } => Frame::control("3probe"),
            Packet::Message(Message::Text(text)) => Frame::text(&**text),
            Packet::Message(Message::Binary(data)) => Frame::binary(data.clone()),
            Packet::Upgrade => Frame::control("5"),
            Packet::Noop => Frame::control("6"),
        }
    }
}
