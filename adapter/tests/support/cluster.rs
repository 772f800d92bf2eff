//! Socket.IO nodes on a Redis cluster (classic or sharded adapter), served on `127.0.0.1:0`,
//! and a small raw WebSocket client speaking Engine.IO v4 / Socket.IO v5 by hand (it answers
//! pings itself). Every wait has a bound.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use socketio::{AdapterFactory, Config, SocketIo, Value, map_get};
use socketio_redis::{ClassicCluster, RedisAdapterConfig, ShardedCluster, ShardedConfig, Stats};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The bound on any single wait.
pub const WAIT: Duration = Duration::from_secs(10);

pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {WAIT:?}: {what}"),
    }
}

/// Server-side events a node received: `(event, args)`.
pub type Received = Arc<Mutex<Vec<(String, Vec<Value>)>>>;

/// The adapters' connection handles, as the tests use them.
pub trait Backend: Send + Sync + 'static {
    fn factory(&self) -> AdapterFactory;
    fn ready(&self) -> impl Future<Output = Result<(), socketio_redis::Error>> + Send;
    fn stats(&self) -> Stats;
}

impl Backend for ClassicCluster {
    fn factory(&self) -> AdapterFactory {
        Self::factory(self)
    }
    fn ready(&self) -> impl Future<Output = Result<(), socketio_redis::Error>> + Send {
        Self::ready(self)
    }
    fn stats(&self) -> Stats {
        Self::stats(self)
    }
}

impl Backend for ShardedCluster {
    fn factory(&self) -> AdapterFactory {
        Self::factory(self)
    }
    fn ready(&self) -> impl Future<Output = Result<(), socketio_redis::Error>> + Send {
        Self::ready(self)
    }
    fn stats(&self) -> Stats {
        Self::stats(self)
    }
}

/// One Socket.IO server on the cluster.
pub struct Node<C = ClassicCluster> {
    pub name: String,
    pub io: SocketIo,
    pub cluster: C,
    pub addr: SocketAddr,
    /// Server-side events received: `(event, args)`.
    pub received: Received,
    stop: Option<oneshot::Sender<()>>,
}

impl Node<ClassicCluster> {
    /// A node on the classic adapter (see [`Node::with_cluster`]).
    pub async fn start(name: &str, redis_url: &str, config: RedisAdapterConfig) -> Self {
        let cluster = ClassicCluster::connect(redis_url, config).await.unwrap();
        Self::with_cluster(name, cluster).await
    }
}

impl Node<ShardedCluster> {
    /// A node on the sharded adapter (see [`Node::with_cluster`]).
    pub async fn start_sharded(name: &str, redis_url: &str, config: ShardedConfig) -> Self {
        let cluster = ShardedCluster::connect(redis_url, config).await.unwrap();
        Self::with_cluster(name, cluster).await
    }
}

impl<C: Backend> Node<C> {
    /// A node with namespaces `/` and `/chat`: a socket joins the rooms of its auth's `rooms`
    /// and keeps the auth as `data`; server-side events are recorded and answered with the
    /// node's name.
    pub async fn with_cluster(name: &str, cluster: C) -> Self {
        let io = SocketIo::with_adapter(Config::default(), cluster.factory());
        let received: Received = Arc::default();
        for nsp in ["/", "/chat"] {
            let ns = io.of(nsp);
            let log = received.clone();
            let node = name.to_owned();
            ns.on_server_side(move |event, args, ack| {
                log.lock().unwrap().push((event.to_owned(), args));
                if let Some(ack) = ack {
                    ack.send(vec![Value::from(node.as_str())]);
                }
            });
            ns.on_connection(|socket| {
                let auth = socket.handshake().auth.clone();
                if let Some(Value::Array(rooms)) = map_get(&auth, "rooms") {
                    socket.join(
                        rooms
                            .iter()
                            .filter_map(|r| r.as_str().map(str::to_owned))
                            .collect::<Vec<_>>(),
                    );
                }
                socket.set_data(auth);
            });
        }
        cluster.ready().await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let served = io.clone();
        tokio::spawn(async move {
            let _ = served
                .serve(listener, async {
                    let _ = rx.await;
                })
                .await;
        });
        Self {
            name: name.to_owned(),
            io,
            cluster,
            addr,
            received,
            stop: Some(tx),
        }
    }

    /// A client connected to `nsp` with this auth JSON; returns it and its socket id.
    pub async fn client(&self, nsp: &str, auth: &str) -> (Client, String) {
        let mut client = Client::open(self.addr).await;
        let sid = client.join(nsp, auth).await;
        (client, sid)
    }

    /// Waits until Redis subscriptions are all confirmed (after a reconnection).
    pub async fn wait_subscribed(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while !self.cluster.stats().subscribed {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: not resubscribed: {:?}",
                self.name,
                self.cluster.stats()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl<C> Drop for Node<C> {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw Engine.IO v4 WebSocket client.
pub struct Client {
    ws: Ws,
}

impl Client {
    pub async fn open(addr: SocketAddr) -> Self {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = within(
            "WebSocket handshake",
            tokio_tungstenite::connect_async_with_config(url, None, true),
        )
        .await
        .unwrap();
        let mut client = Self { ws };
        let open = client.recv().await;
        assert!(open.starts_with('0'), "open packet: {open}");
        client
    }

    pub async fn send(&mut self, text: &str) {
        within(
            "send",
            self.ws.send(WsMessage::Text(text.to_owned().into())),
        )
        .await
        .unwrap();
    }

    /// Sends a binary WebSocket message (an attachment).
    pub async fn send_binary(&mut self, data: Vec<u8>) {
        within("send binary", self.ws.send(WsMessage::Binary(data.into())))
            .await
            .unwrap();
    }

    async fn next(&mut self, wait: Duration) -> Option<String> {
        loop {
            let msg = tokio::time::timeout(wait, self.ws.next()).await.ok()?;
            match msg {
                None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => {
                    return Some("<closed>".into());
                }
                Some(Ok(WsMessage::Text(t))) if t.as_str() == "2" => self.send("3").await,
                Some(Ok(WsMessage::Text(t))) => return Some(t.as_str().to_owned()),
                Some(Ok(WsMessage::Binary(b))) => return Some(format!("<binary {b:?}>")),
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next text message (`42[...]`, Engine.IO type included).
    pub async fn recv(&mut self) -> String {
        match self.next(WAIT).await {
            Some(m) => m,
            None => panic!("timed out after {WAIT:?} waiting for a message"),
        }
    }

    /// The next message if one comes within `wait`.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<String> {
        self.next(wait).await
    }

    /// Connects to `nsp` with an auth payload; returns the socket id.
    pub async fn join(&mut self, nsp: &str, auth: &str) -> String {
        let packet = if nsp == "/" {
            format!("40{auth}")
        } else {
            format!("40{nsp},{auth}")
        };
        self.send(&packet).await;
        let reply = self.recv().await;
        let json = reply
            .split_once('{')
            .map(|(_, rest)| format!("{{{rest}"))
            .unwrap_or_else(|| panic!("CONNECT reply: {reply}"));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["sid"].as_str().unwrap().to_owned()
    }
}

/// `value` as JSON.
pub fn json(value: &Value) -> serde_json::Value {
    serde_json::from_str(&socketio::value::to_json_string(value)).unwrap()
}
