//! `limit [--port 3000] [--host 127.0.0.1]`: the physical limit for the benchmark scenarios.
//!
//! A WebSocket server that does only what the wire needs for them, with the same bytes as a
//! Socket.IO server: the Engine.IO open packet and heartbeat (`2`/`3`), the CONNECT reply of
//! namespace `/` (joining the `rooms` of its payload), and the events `echo` (ack with the same
//! arguments), `broadcast` (`bcast` to every socket), `to` (`bcast` to a room), `join` and
//! `leave`. Polling and everything else is left out.
//!
//! How it goes fast: one thread; one task per connection; reads into one shared scratch
//! buffer; every outgoing frame is encoded once and its bytes appended to each recipient's
//! output buffer; a connection writes all its pending frames in one `write`.
//!
//! Settings as the testbed: `PORT`, `HOST`, `PING_INTERVAL`, `PING_TIMEOUT` (or `--port` ...).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{self, ErrorKind};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use bench::put_u64;
use bench::ws::{
    FrameReader, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, ReadStatus, Rng, put_server_frame,
};
use serde_json::value::RawValue;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::spawn_local;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Output buffers above this are freed once written.
const KEEP_OUT: usize = 1024;
const MAX_PAYLOAD: usize = 1_000_000;

struct Conn {
    stream: TcpStream,
    /// Frames not written yet: `out[written..]`.
    out: RefCell<Vec<u8>>,
    written: Cell<usize>,
    notify: Notify,
    reader: RefCell<FrameReader>,
    slot: Cell<u32>,
    /// Joined Socket.IO namespace `/`.
    connected: Cell<bool>,
    rooms: RefCell<Vec<Box<str>>>,
    /// A ping was sent and no pong came back yet.
    awaiting_pong: Cell<bool>,
    closing: Cell<bool>,
}

impl Conn {
    fn push(&self, frame: &[u8]) {
        let mut out = self.out.borrow_mut();
        if out.len() == self.written.get() {
            self.notify.notify_one();
        }
        out.extend_from_slice(frame);
    }

    /// Writes what the socket takes. `Ok(true)` when everything is out.
    fn try_flush(&self) -> io::Result<bool> {
        let mut out = self.out.borrow_mut();
        let mut pos = self.written.get();
        while pos < out.len() {
            match self.stream.try_write(&out[pos..]) {
                Ok(n) => pos += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        let done = pos == out.len();
        if done {
            if out.capacity() > KEEP_OUT {
                *out = Vec::new();
            } else {
                out.clear();
            }
            pos = 0;
        }
        self.written.set(pos);
        Ok(done)
    }

    fn has_output(&self) -> bool {
        self.out.borrow().len() > self.written.get()
    }
}

struct Server {
    conns: RefCell<Vec<Option<Rc<Conn>>>>,
    free: RefCell<Vec<u32>>,
    rooms: RefCell<HashMap<Box<str>, Vec<u32>>>,
    /// Scratch buffers: a Socket.IO packet, then its frame (built once per emit).
    packet: RefCell<Vec<u8>>,
    frame: RefCell<Vec<u8>>,
    rng: Cell<Rng>,
    ping_interval: Duration,
    ping_timeout: Duration,
}

impl Server {
    fn token(&self, out: &mut Vec<u8>) {
        let mut rng = self.rng.get();
        rng.token(out, 20);
        self.rng.set(rng);
    }

    fn register(&self, conn: &Rc<Conn>) {
        let mut conns = self.conns.borrow_mut();
        let slot = match self.free.borrow_mut().pop() {
            Some(slot) => {
                conns[slot as usize] = Some(conn.clone());
                slot
            }
            None => {
                conns.push(Some(conn.clone()));
                (conns.len() - 1) as u32
            }
        };
        conn.slot.set(slot);
    }

    fn unregister(&self, conn: &Conn) {
        let slot = conn.slot.get();
        for room in conn.rooms.borrow().iter() {
            self.leave_slot(room, slot);
        }
        self.conns.borrow_mut()[slot as usize] = None;
        self.free.borrow_mut().push(slot);
    }

    fn join(&self, conn: &Conn, room: &str) {
        let mut rooms = conn.rooms.borrow_mut();
        if rooms.iter().any(|r| &**r == room) {
            return;
        }
        rooms.push(room.into());
        self.rooms
            .borrow_mut()
            .entry(room.into())
            .or_default()
            .push(conn.slot.get());
    }

    fn leave(&self, conn: &Conn, room: &str) {
        let mut rooms = conn.rooms.borrow_mut();
        if let Some(i) = rooms.iter().position(|r| &**r == room) {
            rooms.swap_remove(i);
            self.leave_slot(room, conn.slot.get());
        }
    }

    fn leave_slot(&self, room: &str, slot: u32) {
        let mut rooms = self.rooms.borrow_mut();
        if let Some(members) = rooms.get_mut(room) {
            if let Some(i) = members.iter().position(|&s| s == slot) {
                members.swap_remove(i);
            }
            if members.is_empty() {
                rooms.remove(room);
            }
        }
    }

    /// Frames the packet in `self.packet` once, then hands its bytes to `send`.
    fn with_frame(&self, send: impl FnOnce(&[u8])) {
        let packet = self.packet.borrow();
        let mut frame = self.frame.borrow_mut();
        frame.clear();
        put_server_frame(&mut frame, OP_TEXT, &packet);
        send(&frame);
    }

    fn broadcast(&self) {
        self.with_frame(|frame| {
            for conn in self.conns.borrow().iter().flatten() {
                if conn.connected.get() {
                    conn.push(frame);
                }
            }
        });
    }

    fn to_room(&self, room: &str) {
        self.with_frame(|frame| {
            let rooms = self.rooms.borrow();
            let conns = self.conns.borrow();
            for &slot in rooms.get(room).map(Vec::as_slice).unwrap_or_default() {
                if let Some(conn) = &conns[slot as usize] {
                    conn.push(frame);
                }
            }
        });
    }

    /// Writes `43<id>[<args>]` into the packet scratch and sends it to `conn`.
    fn ack(&self, conn: &Conn, id: Option<u64>, args: &[&RawValue]) {
        let Some(id) = id else { return };
        {
            let mut p = self.packet.borrow_mut();
            p.clear();
            p.extend_from_slice(b"43");
            put_u64(&mut p, id);
            p.push(b'[');
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    p.push(b',');
                }
                p.extend_from_slice(a.get().as_bytes());
            }
            p.push(b']');
        }
        self.with_frame(|frame| conn.push(frame));
    }

    /// `42["bcast",<payload>]` into the packet scratch.
    fn bcast_packet(&self, payload: Option<&RawValue>) {
        let mut p = self.packet.borrow_mut();
        p.clear();
        p.extend_from_slice(b"42[\"bcast\",");
        p.extend_from_slice(payload.map_or("null", RawValue::get).as_bytes());
        p.push(b']');
    }

    fn on_text(&self, conn: &Conn, p: &[u8]) {
        match p {
            b"3" => conn.awaiting_pong.set(false),
            b"1" => conn.closing.set(true),
            _ if p.starts_with(b"40") => self.on_connect(conn, &p[2..]),
            _ if p.starts_with(b"42") && conn.connected.get() => self.on_event(conn, &p[2..]),
            _ => {}
        }
    }

    fn on_connect(&self, conn: &Conn, auth: &[u8]) {
        if conn.connected.get() {
            return;
        }
        if !auth.is_empty() {
            // Only namespace `/`, whose CONNECT payload is an object (`40{...}`).
            let Ok(serde_json::Value::Object(auth)) = serde_json::from_slice(auth) else {
                conn.closing.set(true);
                return;
            };
            if let Some(rooms) = auth.get("rooms").and_then(|r| r.as_array()) {
                for room in rooms.iter().filter_map(|r| r.as_str()) {
                    self.join(conn, room);
                }
            }
        }
        conn.connected.set(true);
        {
            let mut p = self.packet.borrow_mut();
            p.clear();
            p.extend_from_slice(b"40{\"sid\":\"");
            self.token(&mut p);
            p.extend_from_slice(b"\"}");
        }
        self.with_frame(|frame| conn.push(frame));
    }

    fn on_event(&self, conn: &Conn, p: &[u8]) {
        let (id, rest) = match bench::parse_u64(p) {
            Some((id, len)) => (Some(id), &p[len..]),
            None => (None, p),
        };
        let Ok(args) = serde_json::from_slice::<Vec<&RawValue>>(rest) else {
            conn.closing.set(true);
            return;
        };
        let Some(event) = args.first() else { return };
        let string = |i: usize| {
            args.get(i)
                .and_then(|a| serde_json::from_str::<String>(a.get()).ok())
        };
        match event.get() {
            "\"echo\"" => self.ack(conn, id, &args[1..]),
            "\"broadcast\"" => {
                self.bcast_packet(args.get(1).copied());
                self.broadcast();
                self.ack(conn, id, &[]);
            }
            "\"to\"" => {
                if let Some(room) = string(1) {
                    self.bcast_packet(args.get(2).copied());
                    self.to_room(&room);
                }
                self.ack(conn, id, &[]);
            }
            "\"join\"" => {
                if let Some(room) = string(1) {
                    self.join(conn, &room);
                }
                self.ack(conn, id, &[]);
            }
            "\"leave\"" => {
                if let Some(room) = string(1) {
                    self.leave(conn, &room);
                }
                self.ack(conn, id, &[]);
            }
            _ => self.ack(conn, id, &[]),
        }
    }

    /// Every ping interval: a ping to every connection (one frame for all), and connections
    /// that did not answer the previous one are closed (a timeout of one ping interval, a
    /// little more lenient than Node's `pingTimeout`).
    async fn heartbeat(self: Rc<Self>) {
        const PING: &[u8] = &[0x81, 0x01, b'2'];
        let mut tick = tokio::time::interval(self.ping_interval);
        tick.tick().await;
        loop {
            tick.tick().await;
            for conn in self.conns.borrow().iter().flatten() {
                if conn.awaiting_pong.get() {
                    conn.closing.set(true);
                    conn.notify.notify_one();
                } else {
                    conn.awaiting_pong.set(true);
                    conn.push(PING);
                }
            }
        }
    }
}

/// Reads the HTTP upgrade request and answers it; returns bytes read past the request head.
async fn handshake(server: &Server, stream: &TcpStream) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(512);
    let head_len = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if buf.len() > 8192 {
            return Err(io::Error::other("request head too large"));
        }
        stream.readable().await?;
        let len = buf.len();
        buf.resize(len + 1024, 0);
        match stream.try_read(&mut buf[len..]) {
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf.truncate(len + n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => buf.truncate(len),
            Err(e) => return Err(e),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_len]);
    let target = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .unwrap_or("");
    let key = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_owned())
    });
    let ok_target = target.starts_with("/socket.io/")
        && target.contains("transport=websocket")
        && target.contains("EIO=4");
    let (Some(key), true) = (key, ok_target) else {
        let _ = stream.try_write(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return Err(io::Error::other("not a Socket.IO WebSocket request"));
    };
    let mut reply = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    )
    .into_bytes();
    let mut open = b"0{\"sid\":\"".to_vec();
    server.token(&mut open);
    open.extend_from_slice(b"\",\"upgrades\":[],\"pingInterval\":");
    put_u64(&mut open, server.ping_interval.as_millis() as u64);
    open.extend_from_slice(b",\"pingTimeout\":");
    put_u64(&mut open, server.ping_timeout.as_millis() as u64);
    open.extend_from_slice(b",\"maxPayload\":");
    put_u64(&mut open, MAX_PAYLOAD as u64);
    open.push(b'}');
    put_server_frame(&mut reply, OP_TEXT, &open);
    let mut data = &reply[..];
    while !data.is_empty() {
        stream.writable().await?;
        match stream.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(buf[head_len..].to_vec())
}

/// Reads what is there and handles its frames. `Ok(false)` when the connection is over.
fn on_readable(server: &Server, conn: &Conn) -> io::Result<bool> {
    let mut open = true;
    let status = conn
        .reader
        .borrow_mut()
        .read_available(&conn.stream, |op, payload| match op {
            OP_TEXT => server.on_text(conn, payload),
            OP_PING => {
                let mut frame = Vec::with_capacity(payload.len() + 2);
                put_server_frame(&mut frame, OP_PONG, payload);
                conn.push(&frame);
            }
            OP_CLOSE => open = false,
            _ => {}
        });
    match status {
        Ok(ReadStatus::Open) => Ok(open),
        Ok(ReadStatus::Eof) => Ok(false),
        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(true),
        Err(e) => Err(e),
    }
}

async fn serve(server: Rc<Server>, stream: TcpStream) {
    let Ok(partial) = handshake(&server, &stream).await else {
        return;
    };
    let conn = Rc::new(Conn {
        stream,
        out: RefCell::new(Vec::new()),
        written: Cell::new(0),
        notify: Notify::new(),
        reader: RefCell::new(FrameReader::with_partial(partial)),
        slot: Cell::new(0),
        connected: Cell::new(false),
        rooms: RefCell::new(Vec::new()),
        awaiting_pong: Cell::new(false),
        closing: Cell::new(false),
    });
    server.register(&conn);
    // Frames sent right behind the upgrade request (none from a client that waits for the
    // open packet, as Socket.IO clients do).
    let mut open = true;
    while open && conn.reader.borrow().has_frame().unwrap_or(false) {
        open = on_readable(&server, &conn).unwrap_or(false);
    }
    while open {
        let want_write = conn.has_output();
        let mut done = false;
        tokio::select! {
            biased;
            ready = conn.stream.readable() => {
                done = ready.is_err() || !on_readable(&server, &conn).unwrap_or(false);
            }
            ready = conn.stream.writable(), if want_write => {
                done = ready.is_err() || conn.try_flush().is_err();
            }
            () = conn.notify.notified(), if !want_write => {}
        }
        open = !done;
        if !open {
            break;
        }
        if conn.closing.get() {
            // A close packet, a bad packet or a missed pong: a close frame, then goodbye.
            let mut frame = Vec::new();
            put_server_frame(&mut frame, OP_CLOSE, b"");
            conn.push(&frame);
            let _ = conn.try_flush();
            break;
        }
    }
    server.unregister(&conn);
}

fn setting(args: &[String], name: &str, default: &str) -> String {
    let flag = format!("--{}", name.to_ascii_lowercase().replace('_', "-"));
    let flag_us = format!("--{}", name.to_ascii_lowercase());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if *a == flag || *a == flag_us {
            if let Some(v) = it.next() {
                return v.clone();
            }
        } else if let Some(v) = a
            .strip_prefix(&format!("{flag}="))
            .or_else(|| a.strip_prefix(&format!("{flag_us}=")))
        {
            return v.to_owned();
        }
    }
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let host = setting(&args, "HOST", "127.0.0.1");
    let port = setting(&args, "PORT", "3000");
    let millis = |name: &str, default: &str| -> Result<Duration, String> {
        let v = setting(&args, name, default);
        v.parse()
            .map(Duration::from_millis)
            .map_err(|_| format!("{name} must be a number of milliseconds, got {v:?}"))
    };
    let (ping_interval, ping_timeout) = match (
        millis("PING_INTERVAL", "25000"),
        millis("PING_TIMEOUT", "20000"),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("limit: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("limit: {e}");
            return ExitCode::from(2);
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let addr = format!("{host}:{port}");
        let listener = match TcpListener::bind(&addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("limit: cannot listen on {addr}: {e}");
                return ExitCode::from(2);
            }
        };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        let server = Rc::new(Server {
            conns: RefCell::default(),
            free: RefCell::default(),
            rooms: RefCell::default(),
            packet: RefCell::default(),
            frame: RefCell::default(),
            rng: Cell::new(Rng::new(seed)),
            ping_interval,
            ping_timeout,
        });
        spawn_local(server.clone().heartbeat());
        println!("listening on {host}:{port}");
        let _ = io::Write::flush(&mut io::stdout());
        let shutdown = async {
            use tokio::signal::unix::{SignalKind, signal};
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => std::future::pending().await,
            }
        };
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        spawn_local(serve(server.clone(), stream));
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: pause instead of spinning.
                        eprintln!("limit: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                () = &mut shutdown => break,
            }
        }
        ExitCode::SUCCESS
    })
}
