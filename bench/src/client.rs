//! The load generator's side of the wire: a WebSocket client connection and the Engine.IO /
//! Socket.IO handshakes (WebSocket only, or polling then upgrade).
//!
//! A [`Ws`] is small while idle: the TCP stream, an empty partial-frame buffer and a small
//! output buffer. Every method takes `&self` (state sits in cells, never borrowed across an
//! `.await`), so a reader task and a writer task may share one connection through an `Rc`.

use std::cell::{Cell, RefCell};
use std::io::{self, ErrorKind};
use std::net::{IpAddr, SocketAddr};

use tokio::net::{TcpSocket, TcpStream};

use crate::ws::{self, FrameReader, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, ReadStatus, Rng};

/// Output buffers above this are freed once written (an idle connection keeps a small one).
const KEEP_OUT: usize = 4096;

pub struct Ws {
    stream: TcpStream,
    reader: RefCell<FrameReader>,
    out: RefCell<Vec<u8>>,
    rng: Cell<Rng>,
}

fn other(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// Opens a TCP connection from `src` (a loopback address other than 127.0.0.1 lets one client
/// open more connections than one address has ports), without lingering on close.
pub async fn tcp_connect(addr: SocketAddr, src: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = src {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    // Closing sends a reset: no TIME_WAIT pile-up across repeated runs.
    stream.set_zero_linger()?;
    Ok(stream)
}

/// Reads an HTTP response head (and what follows it) into `buf`; returns the head's length.
async fn read_head(stream: &TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(end + 4);
        }
        if buf.len() > 16 * 1024 {
            return Err(other("HTTP response head too large"));
        }
        stream.readable().await?;
        let len = buf.len();
        buf.resize(len + 2048, 0);
        match stream.try_read(&mut buf[len..]) {
            Ok(0) => {
                buf.truncate(len);
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "connection closed during HTTP response",
                ));
            }
            Ok(n) => buf.truncate(len + n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => buf.truncate(len),
            Err(e) => return Err(e),
        }
    }
}

async fn write_all(stream: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        stream.writable().await?;
        match stream.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn status_of(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\r').next()?;
    let code = line.split(|&b| b == b' ').nth(1)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

impl Ws {
    /// TCP connect and the WebSocket handshake for `path` (with its query).
    pub async fn connect(
        addr: SocketAddr,
        src: Option<IpAddr>,
        path: &str,
        seed: u64,
    ) -> io::Result<Self> {
        let stream = tcp_connect(addr, src).await?;
        Self::handshake(stream, addr, path, seed).await
    }

    /// The WebSocket handshake on a connected stream.
    pub async fn handshake(
        stream: TcpStream,
        addr: SocketAddr,
        path: &str,
        seed: u64,
    ) -> io::Result<Self> {
        let mut rng = Rng::new(seed);
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            rng.ws_key()
        );
        write_all(&stream, request.as_bytes()).await?;
        let mut buf = Vec::with_capacity(512);
        let head_len = read_head(&stream, &mut buf).await?;
        if status_of(&buf[..head_len]) != Some(101) {
            let line = String::from_utf8_lossy(buf.split(|&b| b == b'\r').next().unwrap_or(&[]))
                .into_owned();
            return Err(other(format!("WebSocket handshake refused: {line}")));
        }
        let rest = buf[head_len..].to_vec();
        Ok(Self {
            stream,
            reader: RefCell::new(FrameReader::with_partial(rest)),
            out: RefCell::new(Vec::new()),
            rng: Cell::new(rng),
        })
    }

    fn mask(&self) -> [u8; 4] {
        let mut rng = self.rng.get();
        let m = rng.mask();
        self.rng.set(rng);
        m
    }

    /// Waits for data and calls `on_frame(opcode, payload)` for every complete frame of one
    /// read. WebSocket pings are answered here; Engine.IO pings are the caller's.
    pub async fn read(&self, mut on_frame: impl FnMut(u8, &mut [u8])) -> io::Result<ReadStatus> {
        loop {
            if !self.reader.borrow().has_frame()? {
                self.stream.readable().await?;
            }
            let mut ws_pings = 0;
            let mut closed = false;
            let status = self
                .reader
                .borrow_mut()
                .read_available(&self.stream, |op, payload| match op {
                    OP_PING => ws_pings += 1,
                    OP_CLOSE => closed = true,
                    OP_PONG => {}
                    _ => on_frame(op, payload),
                });
            match status {
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
                Ok(status) => {
                    for _ in 0..ws_pings {
                        self.queue(OP_PONG, b"");
                    }
                    if ws_pings > 0 {
                        self.flush().await?;
                    }
                    return Ok(if closed { ReadStatus::Eof } else { status });
                }
            }
        }
    }

    /// Adds a frame to the output buffer (sent by the next [`Ws::flush`]).
    pub fn queue(&self, opcode: u8, payload: &[u8]) {
        let mask = self.mask();
        ws::put_client_frame(&mut self.out.borrow_mut(), opcode, payload, mask);
    }

    /// Adds a text frame whose payload `write` appends.
    pub fn queue_text_with(&self, write: impl FnOnce(&mut Vec<u8>)) {
        let mask = self.mask();
        ws::put_client_frame_with(&mut self.out.borrow_mut(), OP_TEXT, mask, write);
    }

    /// Writes the output buffer; all frames queued so far go out in as few writes as the
    /// socket takes.
    pub async fn flush(&self) -> io::Result<()> {
        loop {
            {
                let mut out = self.out.borrow_mut();
                if out.is_empty() {
                    return Ok(());
                }
                match self.stream.try_write(&out) {
                    Ok(n) => {
                        out.drain(..n);
                        if out.is_empty() {
                            if out.capacity() > KEEP_OUT {
                                *out = Vec::new();
                            }
                            return Ok(());
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            self.stream.writable().await?;
        }
    }

    /// Sends one text frame.
    pub async fn send_text(&self, payload: &[u8]) -> io::Result<()> {
        self.queue(OP_TEXT, payload);
        self.flush().await
    }

    /// Reads until a text frame for which `want` returns true; answers Engine.IO pings meanwhile.
    /// The frames before it are dropped (only used while nothing else is expected).
    pub async fn wait_text(&self, mut want: impl FnMut(&[u8]) -> bool) -> io::Result<()> {
        let mut found = false;
        while !found {
            let mut pongs = 0;
            let status = self
                .read(|op, p| {
                    if op != OP_TEXT || found {
                        return;
                    }
                    if p == b"2" {
                        pongs += 1;
                    } else if want(p) {
                        found = true;
                    }
                })
                .await?;
            for _ in 0..pongs {
                self.queue(OP_TEXT, b"3");
            }
            self.flush().await?;
            if status == ReadStatus::Eof && !found {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "server closed the connection",
                ));
            }
        }
        Ok(())
    }

    /// Reads forever, answering pings: what an idle client does. Returns when the server closes.
    pub async fn idle(&self) -> io::Result<()> {
        loop {
            let mut pongs = 0;
            let status = self
                .read(|op, p| {
                    if op == OP_TEXT && p == b"2" {
                        pongs += 1;
                    }
                })
                .await?;
            for _ in 0..pongs {
                self.queue(OP_TEXT, b"3");
            }
            self.flush().await?;
            if status == ReadStatus::Eof {
                return Ok(());
            }
        }
    }
}

/// A Socket.IO client on namespace `/` over WebSocket only: the open packet, then CONNECT
/// (with `auth` as its payload) and its reply.
pub async fn sio_connect(
    addr: SocketAddr,
    src: Option<IpAddr>,
    auth: Option<&str>,
    seed: u64,
) -> io::Result<Ws> {
    let stream = tcp_connect(addr, src).await?;
    sio_handshake(stream, addr, auth, seed).await
}

/// [`sio_connect`] on an open TCP connection.
pub async fn sio_handshake(
    stream: TcpStream,
    addr: SocketAddr,
    auth: Option<&str>,
    seed: u64,
) -> io::Result<Ws> {
    let ws = Ws::handshake(stream, addr, "/socket.io/?EIO=4&transport=websocket", seed).await?;
    ws.wait_text(|p| p.first() == Some(&b'0')).await?;
    let mut connect = b"40".to_vec();
    if let Some(auth) = auth {
        connect.extend_from_slice(auth.as_bytes());
    }
    ws.send_text(&connect).await?;
    let mut refused = None;
    ws.wait_text(|p| {
        if p.starts_with(b"44") {
            refused = Some(String::from_utf8_lossy(p).into_owned());
            return true;
        }
        p.starts_with(b"40")
    })
    .await?;
    match refused {
        Some(reply) => Err(other(format!("CONNECT refused: {reply}"))),
        None => Ok(ws),
    }
}

/// A minimal HTTP/1.1 keep-alive client for the polling requests.
struct Http {
    stream: TcpStream,
    addr: SocketAddr,
    buf: Vec<u8>,
}

impl Http {
    /// Sends a request and returns the status and body (Content-Length or chunked).
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> io::Result<(u16, Vec<u8>)> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr).into_bytes();
        if method == "POST" {
            req.extend_from_slice(
                format!(
                    "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n",
                    body.len()
                )
                .as_bytes(),
            );
        }
        req.extend_from_slice(b"\r\n");
        req.extend_from_slice(body);
        write_all(&self.stream, &req).await?;
        let head_len = read_head(&self.stream, &mut self.buf).await?;
        let head = String::from_utf8_lossy(&self.buf[..head_len]).to_ascii_lowercase();
        let status = status_of(head.as_bytes()).ok_or_else(|| other("bad HTTP status line"))?;
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
        };
        self.buf.drain(..head_len);
        let body = if let Some(len) = header("content-length:") {
            let len: usize = len.parse().map_err(|_| other("bad Content-Length"))?;
            self.fill(len).await?;
            self.buf.drain(..len).collect()
        } else if header("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
            let mut body = Vec::new();
            loop {
                let line_end = loop {
                    if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break p;
                    }
                    let want = self.buf.len() + 1;
                    self.fill(want).await?;
                };
                let size = std::str::from_utf8(&self.buf[..line_end])
                    .ok()
                    .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
                    .ok_or_else(|| other("bad chunk size"))?;
                self.fill(line_end + 2 + size + 2).await?;
                body.extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
                self.buf.drain(..line_end + 2 + size + 2);
                if size == 0 {
                    break body;
                }
            }
        } else {
            return Err(other("HTTP response without length"));
        };
        Ok((status, body))
    }

    /// Reads until the buffer holds `len` bytes.
    async fn fill(&mut self, len: usize) -> io::Result<()> {
        while self.buf.len() < len {
            self.stream.readable().await?;
            let have = self.buf.len();
            self.buf.resize(len.max(have + 1024), 0);
            match self.stream.try_read(&mut self.buf[have..]) {
                Ok(0) => {
                    self.buf.truncate(have);
                    return Err(io::Error::new(ErrorKind::UnexpectedEof, "HTTP body cut"));
                }
                Ok(n) => self.buf.truncate(have + n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.buf.truncate(have),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// What a polling-then-upgrade connection took.
pub struct PollingConnect {
    pub ws: Ws,
    /// Microseconds until the Socket.IO CONNECT reply (over polling).
    pub connected_us: u64,
    /// Microseconds until the upgrade to WebSocket completed.
    pub upgraded_us: u64,
}

/// A Socket.IO client as the official one connects by default: Engine.IO handshake over
/// polling, CONNECT over polling, then the WebSocket probe and upgrade. The polling connection
/// is closed afterwards.
pub async fn sio_connect_polling(
    addr: SocketAddr,
    src: Option<IpAddr>,
    seed: u64,
) -> io::Result<PollingConnect> {
    let start = crate::now_us();
    let stream = tcp_connect(addr, src).await?;
    let mut http = Http {
        stream,
        addr,
        buf: Vec::with_capacity(1024),
    };
    let base = "/socket.io/?EIO=4&transport=polling";
    let (status, body) = http.request("GET", base, b"").await?;
    if status != 200 || body.first() != Some(&b'0') {
        return Err(other(format!(
            "polling handshake: {status} {}",
            String::from_utf8_lossy(&body)
        )));
    }
    let sid = {
        let key = b"\"sid\":\"";
        let at = body
            .windows(key.len())
            .position(|w| w == key)
            .ok_or_else(|| other("no sid in open packet"))?
            + key.len();
        let len = body[at..]
            .iter()
            .position(|&b| b == b'"')
            .ok_or_else(|| other("bad sid"))?;
        String::from_utf8_lossy(&body[at..at + len]).into_owned()
    };
    let path = format!("{base}&sid={sid}");
    let (status, body) = http.request("POST", &path, b"40").await?;
    if status != 200 {
        return Err(other(format!(
            "polling POST: {status} {}",
            String::from_utf8_lossy(&body)
        )));
    }
    loop {
        let (status, body) = http.request("GET", &path, b"").await?;
        if status != 200 {
            return Err(other(format!("polling GET: {status}")));
        }
        if body.split(|&b| b == 0x1e).any(|p| p.starts_with(b"40")) {
            break;
        }
        if body.split(|&b| b == 0x1e).any(|p| p.starts_with(b"44")) {
            return Err(other("CONNECT refused"));
        }
    }
    let connected_us = crate::now_us() - start;
    let ws = Ws::connect(
        addr,
        src,
        &format!("/socket.io/?EIO=4&transport=websocket&sid={sid}"),
        seed,
    )
    .await?;
    ws.send_text(b"2probe").await?;
    ws.wait_text(|p| p == b"3probe").await?;
    ws.send_text(b"5").await?;
    let upgraded_us = crate::now_us() - start;
    drop(http);
    Ok(PollingConnect {
        ws,
        connected_us,
        upgraded_us,
    })
}
