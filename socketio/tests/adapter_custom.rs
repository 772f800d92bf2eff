//! `SocketIo::with_adapter`: a namespace's adapter comes from the factory, and every room and
//! broadcast operation goes through it (what a cluster adapter relies on), with the selection
//! and modifiers the operators set. Here a recording adapter wraps the local one.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Log, serve};
use socketio::adapter::BoxFuture;
use socketio::{
    AckResponses, Adapter, AdapterError, BroadcastOptions, LocalAdapter, Packet, Room, SocketInfo,
    SocketIo, Value,
};

/// Delegates to the local adapter and logs each call as text.
struct Recording {
    nsp: String,
    local: Arc<LocalAdapter>,
    log: Log<String>,
}

fn opts_text(o: &BroadcastOptions) -> String {
    format!(
        "rooms={:?} except={:?} local={} volatile={}",
        o.rooms, o.except, o.local, o.volatile
    )
}

impl Recording {
    fn rec(&self, text: String) {
        self.log.push(format!("{} {text}", self.nsp));
    }
}

impl Adapter for Recording {
    fn add_all(&self, id: &str, rooms: &[Room]) {
        let mut rooms = rooms.to_vec();
        rooms.sort();
        self.rec(format!("add_all {rooms:?}"));
        self.local.add_all(id, &rooms);
    }
    fn del(&self, id: &str, room: &str) {
        self.rec(format!("del {room}"));
        self.local.del(id, room);
    }
    fn del_all(&self, id: &str) {
        self.rec("del_all".to_owned());
        self.local.del_all(id);
    }
    fn socket_rooms(&self, id: &str) -> Option<Vec<Room>> {
        self.local.socket_rooms(id)
    }
    fn sockets(&self, opts: &BroadcastOptions) -> Vec<String> {
        self.local.sockets(opts)
    }
    fn broadcast(&self, packet: Packet, opts: &BroadcastOptions) {
        self.rec(format!(
            "broadcast {} {}",
            packet.event_name().unwrap_or("?"),
            opts_text(opts)
        ));
        self.local.broadcast(packet, opts);
    }
    fn broadcast_with_ack(
        &self,
        packet: Packet,
        opts: &BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<AckResponses> {
        self.rec(format!(
            "broadcast_with_ack {} id={:?} {} timeout={timeout:?}",
            packet.event_name().unwrap_or("?"),
            packet.id,
            opts_text(opts)
        ));
        self.local.broadcast_with_ack(packet, opts, timeout)
    }
    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<Result<Vec<SocketInfo>, AdapterError>> {
        self.rec(format!("fetch_sockets {}", opts_text(opts)));
        self.local.fetch_sockets(opts)
    }
    fn add_sockets(&self, opts: &BroadcastOptions, rooms: Vec<Room>) {
        self.rec(format!("add_sockets {rooms:?} {}", opts_text(opts)));
        self.local.add_sockets(opts, rooms);
    }
    fn del_sockets(&self, opts: &BroadcastOptions, rooms: Vec<Room>) {
        self.rec(format!("del_sockets {rooms:?} {}", opts_text(opts)));
        self.local.del_sockets(opts, rooms);
    }
    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool) {
        self.rec(format!(
            "disconnect_sockets close={close} {}",
            opts_text(opts)
        ));
        self.local.disconnect_sockets(opts, close);
    }
    fn server_side_emit(&self, args: Vec<Value>) {
        self.rec(format!(
            "server_side_emit {}",
            common::json(&Value::Array(args))
        ));
    }
    fn server_side_emit_with_ack(
        &self,
        args: Vec<Value>,
        timeout: Duration,
    ) -> BoxFuture<AckResponses> {
        self.rec(format!(
            "server_side_emit_with_ack {} {timeout:?}",
            common::json(&Value::Array(args))
        ));
        Box::pin(async {
            AckResponses {
                timed_out: false,
                responses: vec![vec![Value::from("from node 2")]],
            }
        })
    }
    fn server_count(&self) -> BoxFuture<usize> {
        Box::pin(async { 2 })
    }
    fn all_rooms(&self) -> BoxFuture<Result<Vec<Room>, AdapterError>> {
        self.local.all_rooms()
    }
}

/// Socket ids are random: the log shows `<id>` for them.
fn redact(entry: &str, ids: &[&str]) -> String {
    ids.iter()
        .fold(entry.to_owned(), |e, id| e.replace(id, "<id>"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_room_and_broadcast_operation_goes_through_the_adapter() {
    let log = Log::<String>::new();
    let created = Log::<String>::new();
    let (l, c) = (log.clone(), created.clone());
    let io = SocketIo::with_adapter(
        common::config(),
        Arc::new(move |nsp: &str, local: Arc<LocalAdapter>| {
            c.push(nsp.to_owned());
            Arc::new(Recording {
                nsp: nsp.to_owned(),
                local,
                log: l.clone(),
            }) as Arc<dyn Adapter>
        }),
    );
    io.of("/admin");
    let server = serve(io).await;
    assert_eq!(created.get(), ["/", "/admin"], "one adapter per namespace");

    let (mut a, sid) = server.joined("/").await;
    let socket = server.socket("/", &sid);
    socket.join(["r1"]);
    socket.leave("r1");
    socket.emit("direct", vec![]).unwrap();
    assert_eq!(a.recv_text().await, r#"42["direct"]"#);
    socket.to(["r2"]).emit("to-r2", vec![]).unwrap();
    let ns = server.io.of("/");
    ns.except(["x"])
        .local()
        .volatile()
        .emit("mods", vec![])
        .unwrap();
    // Volatile: it may be dropped while the previous write is still in flight, so not awaited.
    let res = ns
        .to(["nobody"])
        .timeout(Duration::from_millis(10))
        .emit_with_ack("vote", vec![])
        .await
        .unwrap();
    assert!(res.responses.is_empty());
    ns.to(["nobody"]).fetch_sockets().await.unwrap();
    ns.to(["nobody"]).sockets_join(["j"]);
    ns.to(["nobody"]).sockets_leave(["j"]);
    ns.to(["nobody"]).disconnect_sockets(true);
    ns.server_side_emit("hello", vec![Value::from(1)]).unwrap();
    let res = ns
        .server_side_emit_with_ack("ping", vec![], Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(res.responses, [vec![Value::from("from node 2")]]);
    a.send("41").await;
    log.wait_until("del_all", |l| l.iter().any(|e| e.ends_with("del_all")))
        .await;

    let got: Vec<String> = log.get().iter().map(|e| redact(e, &[&sid])).collect();
    assert_eq!(
        got,
        [
            r#"/ add_all ["<id>"]"#,
            r#"/ add_all ["r1"]"#,
            "/ del r1",
            // socket.emit goes straight to its connection (no recovery): not via the adapter.
            r#"/ broadcast to-r2 rooms=["r2"] except=["<id>"] local=false volatile=false"#,
            r#"/ broadcast mods rooms=[] except=["x"] local=true volatile=true"#,
            r#"/ broadcast_with_ack vote id=Some(0) rooms=["nobody"] except=[] local=false volatile=false timeout=10ms"#,
            r#"/ fetch_sockets rooms=["nobody"] except=[] local=false volatile=false"#,
            r#"/ add_sockets ["j"] rooms=["nobody"] except=[] local=false volatile=false"#,
            r#"/ del_sockets ["j"] rooms=["nobody"] except=[] local=false volatile=false"#,
            r#"/ disconnect_sockets close=true rooms=["nobody"] except=[] local=false volatile=false"#,
            r#"/ server_side_emit ["hello",1]"#,
            r#"/ server_side_emit_with_ack ["ping"] 50ms"#,
            "/ del_all",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_events_reach_the_listeners() {
    let io = SocketIo::new(common::config());
    let got = Log::new();
    let (g1, g2) = (got.clone(), got.clone());
    io.of("/")
        .on_server_side(move |event, args, ack| {
            g1.push(format!(
                "first {event} {} ack={}",
                args.len(),
                ack.is_some()
            ));
            if let Some(ack) = ack {
                ack.send(vec![Value::from("answer")]);
            }
        })
        .on_server_side(move |event, _, ack| {
            g2.push(format!("second {event} ack={}", ack.is_some()));
        });
    let ns = io.of("/");
    // On one node there is no one to tell.
    ns.server_side_emit("hello", vec![]).unwrap();
    let res = ns
        .server_side_emit_with_ack("hello", vec![], Duration::from_millis(50))
        .await
        .unwrap();
    assert!(res.responses.is_empty());
    assert!(got.get().is_empty(), "a node does not hear itself");

    // What a cluster adapter hands over from another node.
    let answer = Log::new();
    let a = answer.clone();
    ns.receive_server_side(
        "job",
        vec![Value::from(1), Value::from(2)],
        Some(socketio::ServerAck::new(move |args| a.push(args))),
    );
    ns.receive_server_side("news", vec![], None);
    assert_eq!(
        got.get(),
        [
            "first job 2 ack=true",
            "second job ack=false",
            "first news 0 ack=false",
            "second news ack=false",
        ]
    );
    assert_eq!(answer.get(), [vec![Value::from("answer")]]);
}
