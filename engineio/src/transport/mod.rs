//! The runtime edge: HTTP long-polling and WebSocket, on hyper; WebSocket frames are our own codec (`frame`).

pub(crate) mod frame;
pub(crate) mod polling;
pub(crate) mod websocket;
