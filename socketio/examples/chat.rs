//! A minimal Socket.IO server: a namespace, an event with an ack, a room broadcast.
//!
//! `cargo run -p socketio --example chat`, then connect with the official client:
//! `io("http://localhost:3000/chat", { auth: { room: "lobby" } })`.

use socketio::{Config, SocketIo, Value, map_get};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let io = SocketIo::new(Config::default());
    io.of("/chat")
        // Runs after the CONNECT reply: join the room named in the auth payload.
        .on_connection(|socket| {
            let room = map_get(&socket.handshake().auth, "room")
                .and_then(Value::as_str)
                .unwrap_or("lobby");
            socket.join([room]);
        })
        // `socket.emit("message", room, text, ack)` from the client: everyone else in the room
        // gets it, the sender gets an ack.
        .on("message", |socket, args, ack| {
            if let [Value::String(room), text] = args.as_slice() {
                let room = room.as_str().unwrap_or_default();
                let _ = socket.to([room]).emit("message", vec![text.clone()]);
            }
            if let Some(ack) = ack {
                ack.send(vec![Value::from("delivered")]);
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    io.serve(listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
