//! Engine.IO v4 server.
//!
//! A pure core — packet and payload codecs ([`packet`](crate::Frame)), the session state
//! machine — and a thin runtime edge: hyper for HTTP long-polling, tokio-tungstenite for
//! WebSocket, one task per session. The layer above implements [`Handler`] and talks to each
//! connection through its [`Socket`].
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

/// Decoders exposed for fuzzing only.
#[cfg(fuzzing)]
pub mod fuzz {
    /// Decodes a polling payload completely.
    pub fn decode_payload(data: &[u8]) {
        for _ in crate::payload::decode(bytes::Bytes::copy_from_slice(data)) {}
    }
}
