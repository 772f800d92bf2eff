//! The runtime edge: HTTP long-polling and WebSocket, on hyper and tokio-tungstenite.

pub(crate) mod polling;
pub(crate) mod websocket;
