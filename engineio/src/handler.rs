//! The interface between the engine and the layer above (Socket.IO, or an application).

use crate::packet::Message;
use crate::session::CloseReason;
use crate::socket::Socket;

/// Receives a connection's life. Every call for one connection comes from that connection's
/// task, in order, so the per-connection state `Conn` needs no lock (DESIGN.md rule 3).
/// Calls must not block: hand long work to another task.
pub trait Handler: Send + Sync + 'static {
    /// State the layer keeps per connection.
    type Conn: Send + 'static;

    /// A session opened (after its open packet was queued or sent).
    fn on_open(&self, socket: &Socket) -> Self::Conn;

    /// A message arrived, in order.
    fn on_message(&self, conn: &mut Self::Conn, socket: &Socket, message: Message);

    /// The session ended; called exactly once.
    fn on_close(&self, conn: Self::Conn, socket: &Socket, reason: CloseReason);
}
