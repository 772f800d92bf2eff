//! The emitter: lets a process without Socket.IO server (a worker) reach the clients of a
//! classic cluster, publishing exactly what `@socket.io/redis-emitter` 5.1 publishes (wire
//! notes 6). It never subscribes, so it is not counted by `PUBSUB NUMSUB` and gets no answers:
//! no acks, no fetchSockets.
//!
//! ```no_run
//! # async fn run() -> Result<(), socketio_redis::Error> {
//! use socketio_redis::Emitter;
//! use socketio::Value;
//!
//! let emitter = Emitter::connect("redis://127.0.0.1:6379", "socket.io").await?;
//! emitter.to(["room1"]).emit("news", vec![Value::from("hello")]).await?;
//! emitter.of("/chat").volatile().emit("tick", vec![]).await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use bytes::Bytes;
use socketio::adapter::BoxFuture;
use socketio::{Room, Value};

use crate::error::Error;
use crate::wire::{self, Channels, EMITTER_UID, Flags, Layout, Opts, Request};

type Publisher = Arc<dyn Fn(String, Bytes) -> BoxFuture<Result<(), Error>> + Send + Sync>;

/// Publishes to the namespace `nsp` of a classic cluster. Cheap to clone.
#[derive(Clone)]
pub struct Emitter {
    publish: Publisher,
    key: Arc<str>,
    nsp: String,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("key", &self.key)
            .field("nsp", &self.nsp)
            .finish_non_exhaustive()
    }
}

impl Emitter {
    /// An emitter publishing on `conn` (any `redis` async connection, e.g. a
    /// `ConnectionManager` or a `MultiplexedConnection`) with channel prefix `key`, for the
    /// main namespace.
    pub fn new<C>(conn: C, key: impl Into<String>) -> Self
    where
        C: redis::aio::ConnectionLike + Clone + Send + Sync + 'static,
    {
        Self::with_publisher(key, move |channel, payload| {
            let mut conn = conn.clone();
            Box::pin(async move {
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(&payload[..])
                    .query_async::<i64>(&mut conn)
                    .await
                    .map(drop)
                    .map_err(Error::from)
            })
        })
    }

    /// Connects to Redis and returns an emitter for the main namespace.
    ///
    /// # Errors
    ///
    /// A bad URL, or Redis unreachable.
    pub async fn connect(url: &str, key: impl Into<String>) -> Result<Self, Error> {
        let client = redis::Client::open(url).map_err(|e| Error::InvalidUrl(e.to_string()))?;
        let conn = client
            .get_connection_manager()
            .await
            .map_err(|e| Error::Connect {
                addr: url.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self::new(conn, key))
    }

    /// An emitter publishing through `publish(channel, payload)`: for another transport, or
    /// to look at the bytes.
    pub fn with_publisher(
        key: impl Into<String>,
        publish: impl Fn(String, Bytes) -> BoxFuture<Result<(), Error>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            publish: Arc::new(publish),
            key: Arc::from(key.into()),
            nsp: "/".into(),
        }
    }

    /// The same emitter for namespace `nsp` (a missing leading `/` is added, as Node does).
    #[must_use]
    pub fn of(&self, nsp: &str) -> Self {
        let nsp = if nsp.starts_with('/') {
            nsp.to_owned()
        } else {
            format!("/{nsp}")
        };
        Self {
            publish: self.publish.clone(),
            key: self.key.clone(),
            nsp,
        }
    }

    fn operator(&self) -> EmitterOperator {
        EmitterOperator {
            emitter: self.clone(),
            rooms: Vec::new(),
            except: Vec::new(),
            flags: Flags::new(),
        }
    }

    /// Targets rooms.
    #[must_use]
    pub fn to<R: Into<Room>>(&self, rooms: impl IntoIterator<Item = R>) -> EmitterOperator {
        self.operator().to(rooms)
    }

    /// Same as [`to`](Self::to) (Node's `in`).
    #[must_use]
    pub fn in_<R: Into<Room>>(&self, rooms: impl IntoIterator<Item = R>) -> EmitterOperator {
        self.operator().to(rooms)
    }

    /// Leaves out rooms.
    #[must_use]
    pub fn except<R: Into<Room>>(&self, rooms: impl IntoIterator<Item = R>) -> EmitterOperator {
        self.operator().except(rooms)
    }

    /// Dropped for clients that cannot take it right now.
    #[must_use]
    pub fn volatile(&self) -> EmitterOperator {
        self.operator().volatile()
    }

    /// Whether polling responses may be compressed.
    #[must_use]
    pub fn compress(&self, compress: bool) -> EmitterOperator {
        self.operator().compress(compress)
    }

    /// Emits to every client of the namespace.
    ///
    /// # Errors
    ///
    /// A reserved event name, or the publish failed.
    pub async fn emit(&self, event: &str, args: Vec<Value>) -> Result<(), Error> {
        self.operator().emit(event, args).await
    }

    /// Makes every socket of the namespace join rooms.
    ///
    /// # Errors
    ///
    /// The publish failed.
    pub async fn sockets_join<R: Into<Room>>(
        &self,
        rooms: impl IntoIterator<Item = R>,
    ) -> Result<(), Error> {
        self.operator().sockets_join(rooms).await
    }

    /// Makes every socket of the namespace leave rooms.
    ///
    /// # Errors
    ///
    /// The publish failed.
    pub async fn sockets_leave<R: Into<Room>>(
        &self,
        rooms: impl IntoIterator<Item = R>,
    ) -> Result<(), Error> {
        self.operator().sockets_leave(rooms).await
    }

    /// Disconnects every socket of the namespace (`close`: their connections too).
    ///
    /// # Errors
    ///
    /// The publish failed.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), Error> {
        self.operator().disconnect_sockets(close).await
    }

    /// Sends a server-side event to every node (`serverSideEmit`; no acks: nobody can answer
    /// an emitter).
    ///
    /// # Errors
    ///
    /// The publish failed.
    pub async fn server_side_emit(&self, event: &str, args: Vec<Value>) -> Result<(), Error> {
        let mut data = Vec::with_capacity(args.len() + 1);
        data.push(Value::from(event));
        data.extend(args);
        let request = Request::ServerSideEmit {
            uid: EMITTER_UID.into(),
            request_id: None,
            data,
        };
        self.publish_request(&request).await
    }

    fn channels(&self) -> Channels {
        Channels::new(&self.key, &self.nsp)
    }

    async fn publish_request(&self, request: &Request) -> Result<(), Error> {
        (self.publish)(self.channels().request().to_owned(), request.encode()).await
    }
}

/// A selection of rooms and flags, then an action (Node's emitter `BroadcastOperator`).
#[derive(Debug, Clone)]
pub struct EmitterOperator {
    emitter: Emitter,
    rooms: Vec<Room>,
    except: Vec<Room>,
    flags: Flags,
}

fn add_rooms<R: Into<Room>>(set: &mut Vec<Room>, rooms: impl IntoIterator<Item = R>) {
    for room in rooms {
        let room = room.into();
        if !set.contains(&room) {
            set.push(room);
        }
    }
}

impl EmitterOperator {
    /// Adds rooms to target.
    #[must_use]
    pub fn to<R: Into<Room>>(mut self, rooms: impl IntoIterator<Item = R>) -> Self {
        add_rooms(&mut self.rooms, rooms);
        self
    }

    /// Same as [`to`](Self::to).
    #[must_use]
    pub fn in_<R: Into<Room>>(self, rooms: impl IntoIterator<Item = R>) -> Self {
        self.to(rooms)
    }

    /// Adds rooms to leave out.
    #[must_use]
    pub fn except<R: Into<Room>>(mut self, rooms: impl IntoIterator<Item = R>) -> Self {
        add_rooms(&mut self.except, rooms);
        self
    }

    /// `flags.volatile = true`.
    #[must_use]
    pub fn volatile(mut self) -> Self {
        self.flags.set("volatile", Value::Boolean(true));
        self
    }

    /// `flags.compress = compress`.
    #[must_use]
    pub fn compress(mut self, compress: bool) -> Self {
        self.flags.set("compress", Value::Boolean(compress));
        self
    }

    /// The channel and bytes [`emit`](Self::emit) publishes.
    ///
    /// # Errors
    ///
    /// A reserved event name (`connect`, `disconnect`, ...), as Node's emitter throws.
    pub fn encode_emit(&self, event: &str, args: Vec<Value>) -> Result<(String, Bytes), Error> {
        if socketio::is_reserved_event(event) {
            return Err(Error::ReservedEvent(event.to_owned()));
        }
        let mut data = Vec::with_capacity(args.len() + 1);
        data.push(Value::from(event));
        data.extend(args);
        let opts = Opts {
            rooms: self.rooms.clone(),
            except: self.except.clone(),
            flags: Some(self.flags.clone()),
        };
        let channels = self.emitter.channels();
        let payload = wire::encode_broadcast(
            EMITTER_UID,
            &data,
            &self.emitter.nsp,
            &opts,
            Layout::Emitter,
        );
        Ok((channels.broadcast_for(&self.rooms), payload))
    }

    /// Emits to the selected clients (binary arguments stay binary).
    ///
    /// # Errors
    ///
    /// A reserved event name, or the publish failed.
    pub async fn emit(&self, event: &str, args: Vec<Value>) -> Result<(), Error> {
        let (channel, payload) = self.encode_emit(event, args)?;
        (self.emitter.publish)(channel, payload).await
    }

    fn targets(&self) -> Opts {
        Opts {
            rooms: self.rooms.clone(),
            except: self.except.clone(),
            flags: None,
        }
    }

    /// Makes the selected sockets join rooms.
    ///
    /// # Errors
    ///
    /// The publish failed.
    pub async fn sockets_join<R: Into<Room>>(
        &self,
        rooms: impl IntoIterator<Item = R>,
    ) -> Result<(), Error> {
        let request = Request::RemoteRooms {
            join: true,
            uid: None,
            opts: self.targets(),
            rooms: rooms.into_iter().map(Into::into).collect(),
        };
        self.emitter.publish_request(&request).await
    }

    /// Makes the selected sockets leave rooms.
    ///
    /// # Errors
    ///
    /// The publish failed.
    pub async fn sockets_leave<R: Into<Room>>(
        &self,
        rooms: impl IntoIterator<Item = R>,
    ) -> Result<(), Error> {
        let request = Request::RemoteRooms {
            join: false,
            uid: None,
            opts: self.targets(),
            rooms: rooms.into_iter().map(Into::into).collect(),
        };
        self.emitter.publish_request(&request).await
    }

    /// Disconnects the selected sockets (`close`: their connections too).
    ///
    /// # Errors
    ///
    /// The publish failed.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), Error> {
        let request = Request::RemoteDisconnect {
            uid: None,
            opts: self.targets(),
            close,
        };
        self.emitter.publish_request(&request).await
    }
}
