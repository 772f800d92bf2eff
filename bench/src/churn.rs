//! The `churn` scenario: clients that come and go for a set time, in every way a real crowd
//! (or a hostile one) leaves a server: connect, join rooms, emit, then leave with a DISCONNECT
//! or by dropping the TCP connection; polling sessions upgraded to WebSocket; upgrades abandoned
//! after the probe; polling sessions whose client never polls again; WebSockets that never send
//! CONNECT. What the server must do with each is free its state (at the latest at the ping,
//! upgrade or connect timeout); `scripts/soak.sh` checks that it does.
//!
//! Two flavours of server: the testbed `app` profile (rooms by `join`, emits by `to`) and
//! `sockeye --dev` (tokens from `/api/dev/token`, rooms by `presence:subscribe`, emits by
//! `tab:update` to the user's other tabs).

use std::cell::Cell;
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::task::spawn_local;

use bench::client::{Ws, sio_handshake, tcp_connect};

/// Which server the churn talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// The testbed contract's `app` profile.
    Testbed,
    /// `sockeye --dev`.
    Sockeye,
}

/// Parameters of a churn run.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) addr: SocketAddr,
    pub(crate) flavor: Flavor,
    pub(crate) duration: Duration,
    /// Clients churning at once.
    pub(crate) concurrency: usize,
    /// Rooms each full client joins.
    pub(crate) rooms: usize,
    /// Distinct users (sockeye: tokens fetched once; several tabs share a user).
    pub(crate) users: usize,
}

/// How the cycles went.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// WebSocket clients that connected, joined, emitted and left with a DISCONNECT.
    pub(crate) ws_graceful: Cell<u64>,
    /// ... and left by dropping the TCP connection.
    pub(crate) ws_dropped: Cell<u64>,
    /// Polling sessions upgraded to WebSocket, then closed.
    pub(crate) upgraded: Cell<u64>,
    /// Upgrades abandoned after the probe (the `5` never sent).
    pub(crate) upgrades_abandoned: Cell<u64>,
    /// Polling sessions connected to the namespace, then never polled again.
    pub(crate) polls_abandoned: Cell<u64>,
    /// WebSocket sessions that never sent CONNECT.
    pub(crate) connects_abandoned: Cell<u64>,
    /// Cycles that failed (the first few errors are kept).
    pub(crate) errors: Cell<u64>,
    pub(crate) first_errors: std::cell::RefCell<Vec<String>>,
}

impl Stats {
    /// Every cycle started and finished, errors included.
    pub(crate) fn cycles(&self) -> u64 {
        self.ws_graceful.get()
            + self.ws_dropped.get()
            + self.upgraded.get()
            + self.upgrades_abandoned.get()
            + self.polls_abandoned.get()
            + self.connects_abandoned.get()
            + self.errors.get()
    }

    fn error(&self, e: String) {
        self.errors.set(self.errors.get() + 1);
        let mut first = self.first_errors.borrow_mut();
        if first.len() < 5 {
            first.push(e);
        }
    }
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

fn other(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

/// Runs the churn; fails only if the server cannot be reached at the start.
pub(crate) async fn run(cfg: Config) -> Result<Rc<Stats>, String> {
    let users = cfg.users.max(1);
    let auths: Vec<Option<String>> = match cfg.flavor {
        Flavor::Testbed => vec![None; users],
        Flavor::Sockeye => {
            let mut out = Vec::with_capacity(users);
            for u in 0..users {
                let token = dev_token(cfg.addr, &format!("churn-{u}"))
                    .await
                    .map_err(|e| format!("dev token from {}: {e}", cfg.addr))?;
                out.push(Some(format!(r#"{{"token":"{token}"}}"#)));
            }
            out
        }
    };
    let auths = Rc::new(auths);
    let cfg = Rc::new(cfg);
    let stats = Rc::new(Stats::default());
    let deadline = Instant::now() + cfg.duration;
    let workers: Vec<_> = (0..cfg.concurrency.max(1))
        .map(|w| {
            let (cfg, stats, auths) = (cfg.clone(), stats.clone(), auths.clone());
            spawn_local(async move {
                let mut n: u64 = 0;
                while Instant::now() < deadline {
                    let i = n * cfg.concurrency as u64 + w as u64;
                    let auth = auths[(i % auths.len() as u64) as usize].as_deref();
                    // The mix: mostly full clients, one in ten of each odd way to leave.
                    let result = match i % 10 {
                        0..=3 => full_ws(&cfg, auth, i, true)
                            .await
                            .map(|()| &stats.ws_graceful),
                        4 | 5 => full_ws(&cfg, auth, i, false)
                            .await
                            .map(|()| &stats.ws_dropped),
                        6 => polling(&cfg, auth, i, Leave::Upgrade)
                            .await
                            .map(|()| &stats.upgraded),
                        7 => polling(&cfg, auth, i, Leave::AbandonUpgrade)
                            .await
                            .map(|()| &stats.upgrades_abandoned),
                        8 => polling(&cfg, auth, i, Leave::AbandonPoll)
                            .await
                            .map(|()| &stats.polls_abandoned),
                        _ => no_connect(&cfg, i)
                            .await
                            .map(|()| &stats.connects_abandoned),
                    };
                    match result {
                        Ok(counter) => bump(counter),
                        Err(e) => {
                            stats.error(format!("cycle {i}: {e}"));
                            // A server that refuses is not hammered in a tight loop.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                    n += 1;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.map_err(|e| e.to_string())?;
    }
    Ok(stats)
}

/// Sends `text` and waits for the ack with id `id` (answering pings meanwhile).
async fn with_ack(ws: &Ws, id: u64, event_and_args: &str) -> io::Result<()> {
    ws.send_text(format!("42{id}[{event_and_args}]").as_bytes())
        .await?;
    let want = format!("43{id}[");
    ws.wait_text(|p| p.starts_with(want.as_bytes())).await
}

/// Joins `rooms` rooms and emits once, as the flavour does it.
async fn join_and_emit(ws: &Ws, cfg: &Config, i: u64) -> io::Result<()> {
    // Room names repeat across clients (so rooms are shared and emptied by many), bounded.
    let room = |k: usize| format!("r{}", (i as usize * 7 + k) % 50);
    match cfg.flavor {
        Flavor::Testbed => {
            for k in 0..cfg.rooms {
                with_ack(ws, k as u64, &format!(r#""join","{}""#, room(k))).await?;
            }
            ws.send_text(format!(r#"42["to","{}",{{"i":{i}}}]"#, room(0)).as_bytes())
                .await
        }
        Flavor::Sockeye => {
            if cfg.rooms > 0 {
                let ids: Vec<String> = (0..cfg.rooms)
                    .map(|k| format!(r#""{}""#, room(k)))
                    .collect();
                with_ack(
                    ws,
                    1,
                    &format!(r#""presence:subscribe",{{"userIds":[{}]}}"#, ids.join(",")),
                )
                .await?;
            }
            with_ack(
                ws,
                2,
                &format!(r#""tab:update",{{"tabId":"t{i}","state":{{"i":{i}}}}}"#),
            )
            .await
        }
    }
}

/// A WebSocket client: connect, join, emit, leave (DISCONNECT, or TCP dropped).
async fn full_ws(cfg: &Config, auth: Option<&str>, i: u64, graceful: bool) -> io::Result<()> {
    let stream = tcp_connect(cfg.addr, None).await?;
    let ws = sio_handshake(stream, cfg.addr, auth, i + 1).await?;
    join_and_emit(&ws, cfg, i).await?;
    if graceful {
        ws.send_text(b"41").await?;
    }
    // Dropping closes the TCP connection with a reset (zero linger).
    Ok(())
}

/// A WebSocket session that never sends CONNECT (the server's connect timeout ends it).
async fn no_connect(cfg: &Config, i: u64) -> io::Result<()> {
    let ws = Ws::connect(
        cfg.addr,
        None,
        "/socket.io/?EIO=4&transport=websocket",
        i + 1,
    )
    .await?;
    ws.wait_text(|p| p.first() == Some(&b'0')).await?;
    // Leave the connection open a moment, then drop it.
    tokio::time::sleep(Duration::from_millis(20)).await;
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Leave {
    /// Upgrade to WebSocket, join and emit there, then DISCONNECT.
    Upgrade,
    /// Probe the WebSocket (`2probe` / `3probe`), then drop everything before `5`.
    AbandonUpgrade,
    /// After the CONNECT reply, never poll again.
    AbandonPoll,
}

/// A polling session connected to `/`, then one of the ways of [`Leave`].
async fn polling(cfg: &Config, auth: Option<&str>, i: u64, leave: Leave) -> io::Result<()> {
    let mut http = Http::connect(cfg.addr).await?;
    let base = "/socket.io/?EIO=4&transport=polling";
    let (status, body) = http.request("GET", base, b"").await?;
    let sid = (status == 200)
        .then(|| sid_of(&body))
        .flatten()
        .ok_or_else(|| other(format!("polling handshake: {status}")))?;
    let path = format!("{base}&sid={sid}");
    let connect = format!("40{}", auth.unwrap_or(""));
    let (status, _) = http.request("POST", &path, connect.as_bytes()).await?;
    if status != 200 {
        return Err(other(format!("polling CONNECT: {status}")));
    }
    if leave == Leave::AbandonPoll {
        return Ok(());
    }
    loop {
        let (status, body) = http.request("GET", &path, b"").await?;
        if status != 200 {
            return Err(other(format!("polling GET: {status}")));
        }
        let packets = || body.split(|&b| b == 0x1e);
        if packets().any(|p| p.starts_with(b"44")) {
            return Err(other("CONNECT refused"));
        }
        if packets().any(|p| p.starts_with(b"40")) {
            break;
        }
    }
    let ws = Ws::connect(
        cfg.addr,
        None,
        &format!("/socket.io/?EIO=4&transport=websocket&sid={sid}"),
        i + 1,
    )
    .await?;
    ws.send_text(b"2probe").await?;
    ws.wait_text(|p| p == b"3probe").await?;
    if leave == Leave::AbandonUpgrade {
        return Ok(());
    }
    ws.send_text(b"5").await?;
    drop(http);
    join_and_emit(&ws, cfg, i).await?;
    ws.send_text(b"41").await
}

fn sid_of(body: &[u8]) -> Option<String> {
    let key = b"\"sid\":\"";
    let at = body.windows(key.len()).position(|w| w == key)? + key.len();
    let len = body[at..].iter().position(|&b| b == b'"')?;
    Some(String::from_utf8_lossy(&body[at..at + len]).into_owned())
}

/// `GET /api/dev/token?user=NAME` of `sockeye --dev`: the token.
async fn dev_token(addr: SocketAddr, user: &str) -> io::Result<String> {
    let mut http = Http::connect(addr).await?;
    let (status, body) = http
        .request("GET", &format!("/api/dev/token?user={user}"), b"")
        .await?;
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| other(format!("{status}: {}", String::from_utf8_lossy(&body))))?;
    value["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| other(format!("{status}: no token in {value}")))
}

/// HTTP/1.1 keep-alive requests with Content-Length bodies (no gzip asked, so none sent).
struct Http {
    stream: TcpStream,
    addr: SocketAddr,
    buf: Vec<u8>,
}

impl Http {
    async fn connect(addr: SocketAddr) -> io::Result<Self> {
        Ok(Self {
            stream: tcp_connect(addr, None).await?,
            addr,
            buf: Vec::with_capacity(1024),
        })
    }

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
        self.write_all(&req).await?;
        let head_len = loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            if self.buf.len() > 16 * 1024 {
                return Err(other("HTTP response head too large"));
            }
            self.fill(self.buf.len() + 1).await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_len]).to_ascii_lowercase();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| other("bad HTTP status line"))?;
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| other("HTTP response without Content-Length"))?;
        self.fill(head_len + len).await?;
        let body = self.buf[head_len..head_len + len].to_vec();
        self.buf.drain(..head_len + len);
        Ok((status, body))
    }

    async fn write_all(&self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            self.stream.writable().await?;
            match self.stream.try_write(data) {
                Ok(n) => data = &data[n..],
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn fill(&mut self, len: usize) -> io::Result<()> {
        while self.buf.len() < len {
            self.stream.readable().await?;
            let have = self.buf.len();
            self.buf.resize(len.max(have + 2048), 0);
            match self.stream.try_read(&mut self.buf[have..]) {
                Ok(0) => {
                    self.buf.truncate(have);
                    return Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "HTTP connection closed",
                    ));
                }
                Ok(n) => self.buf.truncate(have + n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => self.buf.truncate(have),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
