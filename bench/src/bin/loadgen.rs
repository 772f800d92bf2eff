//! `loadgen <scenario> [--option value]...`: drives a server of the testbed contract's `app`
//! profile (or the limit server) and prints one JSON line with the scenario's figures.
//!
//! Scenarios: `connect`, `echo`, `fanout` (also `cluster-fanout`, with two `--addr`), `rooms`,
//! `churn` (clients coming and going for `--seconds`, see `churn.rs`; `--flavor sockeye` for
//! `sockeye --dev`).
//! `loadgen report ...` turns the lines of a run into the table (see `bench/run.sh`).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bench::client::{Ws, sio_connect, sio_connect_polling, sio_handshake, tcp_connect};
use bench::hist::Histogram;
use bench::ws::{OP_TEXT, ReadStatus};
use bench::{cpu_ns, find_u64, now_us, parse_u64, put_u64, rss_kib};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, spawn_local};

#[path = "../churn.rs"]
mod churn;

const USAGE: &str = "usage: loadgen <connect|echo|fanout|cluster-fanout|rooms|churn> [--addr HOST:PORT[,HOST:PORT]] \
[--server LABEL] [--round N] [--name LABEL] [--note TEXT] [scenario options]\n       loadgen report --in FILE.jsonl --out FILE.json";

/// Command-line options: `--name value` pairs; every one must be used by the scenario.
struct Opts {
    values: HashMap<String, String>,
    used: RefCell<HashSet<String>>,
}

impl Opts {
    fn parse(args: &[String]) -> Result<Self, String> {
        let mut values = HashMap::new();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let name = arg
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {arg:?}"))?;
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None => (
                    name.to_owned(),
                    it.next()
                        .ok_or_else(|| format!("--{name} needs a value"))?
                        .clone(),
                ),
            };
            values.insert(name.replace('_', "-"), value);
        }
        Ok(Self {
            values,
            used: RefCell::default(),
        })
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.used.borrow_mut().insert(name.to_owned());
        self.values.get(name).map(String::as_str)
    }

    fn str(&self, name: &str, default: &str) -> String {
        self.raw(name).unwrap_or(default).to_owned()
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.raw(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{name}: bad number {v:?}")),
        }
    }

    /// Fails on options no scenario parameter read.
    fn finish(&self) -> Result<(), String> {
        let used = self.used.borrow();
        let mut unknown: Vec<_> = self.values.keys().filter(|k| !used.contains(*k)).collect();
        unknown.sort();
        match unknown.first() {
            Some(k) => Err(format!("unknown option --{k}")),
            None => Ok(()),
        }
    }

    fn addrs(&self) -> Result<Vec<SocketAddr>, String> {
        self.str("addr", "127.0.0.1:3000")
            .split(',')
            .map(|a| {
                a.trim()
                    .parse()
                    .map_err(|_| format!("--addr: bad address {a:?}"))
            })
            .collect()
    }
}

/// The local address client `i` connects from: with `spread` > 1, clients of a loopback server
/// rotate over 127.0.0.1..=127.0.0.spread (each address has its own ~28 k ephemeral ports).
fn source(addr: SocketAddr, i: usize, spread: usize) -> Option<IpAddr> {
    (spread > 1 && addr.ip().is_loopback() && addr.is_ipv4())
        .then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % spread) as u8)))
}

fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 1000.0).round() / 1000.0
}

fn latency(prefix: &str, h: &Histogram, out: &mut serde_json::Map<String, Value>) {
    out.insert(format!("{prefix}p50_ms"), json!(ms(h.quantile(0.50))));
    out.insert(format!("{prefix}p99_ms"), json!(ms(h.quantile(0.99))));
    out.insert(format!("{prefix}max_ms"), json!(ms(h.max())));
    out.insert(
        format!("{prefix}mean_ms"),
        json!((h.mean() / 1000.0 * 1000.0).round() / 1000.0),
    );
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Engine.IO pings seen in a read are answered after it.
async fn pong(ws: &Ws, pongs: usize) -> std::io::Result<()> {
    if pongs > 0 {
        for _ in 0..pongs {
            ws.queue(OP_TEXT, b"3");
        }
        ws.flush().await?;
    }
    Ok(())
}

/// Connects `n` Socket.IO clients, at most `concurrency` at a time; client `i` goes to
/// `addrs[i % len]` and, with `room(i)`, joins that room (`join` with an ack) before it counts.
async fn connect_many(
    addrs: &[SocketAddr],
    n: usize,
    spread: usize,
    room: impl Fn(usize) -> Option<String>,
) -> Result<Vec<Rc<Ws>>, String> {
    let sem = Rc::new(Semaphore::new(200));
    let handles: Vec<JoinHandle<Result<Ws, String>>> = (0..n)
        .map(|i| {
            let sem = sem.clone();
            let addr = addrs[i % addrs.len()];
            let room = room(i);
            spawn_local(async move {
                let _permit = sem.acquire().await.map_err(|e| e.to_string())?;
                let ws = Box::pin(sio_connect(
                    addr,
                    source(addr, i, spread),
                    None,
                    i as u64 + 1,
                ))
                .await
                .map_err(|e| format!("client {i} to {addr}: {e}"))?;
                if let Some(room) = room {
                    let ack = format!("42{i}[\"join\",\"{room}\"]");
                    ws.send_text(ack.as_bytes())
                        .await
                        .map_err(|e| e.to_string())?;
                    let want = format!("43{i}[");
                    ws.wait_text(|p| p.starts_with(want.as_bytes()))
                        .await
                        .map_err(|e| format!("client {i} join: {e}"))?;
                }
                Ok(ws)
            })
        })
        .collect();
    let mut conns = Vec::with_capacity(n);
    for h in handles {
        conns.push(Rc::new(h.await.map_err(|e| e.to_string())??));
    }
    Ok(conns)
}

type Metrics = serde_json::Map<String, Value>;

thread_local! {
    /// The server's process id (`--pid`), for its memory and CPU time.
    static SERVER_PID: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// CPU time of the server's processes (`--pid A[,B]`), summed.
fn server_cpu_ns() -> Option<u64> {
    SERVER_PID.with_borrow(|p| p.as_deref()?.split(',').map(cpu_ns).sum())
}

/// The memory of the (first) server process.
fn server_rss_kib() -> Option<u64> {
    SERVER_PID.with_borrow(|p| rss_kib(p.as_deref()?.split(',').next()?))
}

/// CPU time of the server and of this process over a phase of a scenario: shows which side
/// was the bottleneck (a side near 100 % of its core).
struct CpuWindow {
    wall: Instant,
    server: Option<u64>,
    me: Option<u64>,
}

impl CpuWindow {
    fn start() -> Self {
        Self {
            wall: Instant::now(),
            server: server_cpu_ns(),
            me: cpu_ns("self"),
        }
    }

    /// Adds the CPU shares to `m`, and `work` (acks, deliveries, connections) per CPU-second
    /// of the server as `<name>_per_server_cpu_s`: a figure that other load on the machine
    /// disturbs less than the rate per wall-clock second.
    fn finish_with(self, m: &mut Metrics, name: &str, work: u64) {
        let server_before = self.server;
        let server = server_cpu_ns();
        self.finish(m);
        if let (Some(a), Some(b)) = (server_before, server)
            && b > a
        {
            let per = work as f64 / ((b - a) as f64 / 1e9);
            m.insert(format!("{name}_per_server_cpu_s"), json!(per.round()));
        }
    }

    fn finish(self, m: &mut Metrics) {
        let wall = self.wall.elapsed().as_nanos() as f64;
        let pct = |before: Option<u64>, after: Option<u64>| {
            Some(round3(
                100.0 * after?.checked_sub(before?)? as f64 / wall.max(1.0),
            ))
        };
        let server = server_cpu_ns();
        if let Some(v) = pct(self.server, server) {
            m.insert("server_cpu_pct".into(), json!(v));
        }
        if let Some(v) = pct(self.me, cpu_ns("self")) {
            m.insert("loadgen_cpu_pct".into(), json!(v));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// connect

#[derive(Default)]
struct ConnectStats {
    connected: Cell<usize>,
    failed: Cell<usize>,
    closed: Cell<usize>,
    first_error: RefCell<Option<String>>,
    connect: RefCell<Histogram>,
    tcp: RefCell<Histogram>,
    upgrade: RefCell<Histogram>,
}

async fn connect(opts: &Opts, params: &mut Metrics) -> Result<Metrics, String> {
    let addr = opts.addrs()?[0];
    let n: usize = opts.num("n", 10_000)?;
    let rate: f64 = opts.num("rate", 2000.0)?;
    let transport = opts.str("transport", "websocket");
    let settle_ms: u64 = opts.num("settle-ms", 1000)?;
    // Past a few thousand connections from one address, the kernel's search for a free
    // ephemeral port makes each connect() slow (the load generator, not the server, became
    // the bottleneck at 20 k): spread them over more source addresses.
    let spread: usize = opts.num("spread", 1 + n / 4000)?;
    opts.finish()?;
    let polling = match transport.as_str() {
        "websocket" => false,
        "polling" => true,
        other => {
            return Err(format!(
                "--transport: {other:?} is not websocket or polling"
            ));
        }
    };
    params.insert("n".into(), json!(n));
    params.insert("rate".into(), json!(rate));
    params.insert("transport".into(), json!(transport));
    params.insert("source_addresses".into(), json!(spread));

    let rss_before = server_rss_kib();
    let self_before = rss_kib("self");
    let stats = Rc::new(ConnectStats::default());
    let cpu = CpuWindow::start();
    let start = Instant::now();
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
        let stats = stats.clone();
        handles.push(spawn_local(async move {
            let t0 = now_us();
            let src = source(addr, i, spread);
            let seed = i as u64 + 1;
            let ws = if polling {
                Box::pin(sio_connect_polling(addr, src, seed))
                    .await
                    .map(|c| {
                        stats.connect.borrow_mut().record(c.connected_us);
                        stats.upgrade.borrow_mut().record(c.upgraded_us);
                        c.ws
                    })
            } else {
                Box::pin(async {
                    let stream = tcp_connect(addr, src).await?;
                    stats.tcp.borrow_mut().record(now_us() - t0);
                    sio_handshake(stream, addr, None, seed).await
                })
                .await
                .inspect(|_| stats.connect.borrow_mut().record(now_us() - t0))
            };
            match ws {
                Ok(ws) => {
                    stats.connected.set(stats.connected.get() + 1);
                    let _ = ws.idle().await;
                    stats.closed.set(stats.closed.get() + 1);
                }
                Err(e) => {
                    stats.failed.set(stats.failed.get() + 1);
                    stats
                        .first_error
                        .borrow_mut()
                        .get_or_insert_with(|| e.to_string());
                }
            }
        }));
    }
    // Wait for every connection, while they keep coming (10 s without one ends the wait).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last = (0, Instant::now());
    loop {
        let done = stats.connected.get() + stats.failed.get();
        if done >= n || Instant::now() > deadline {
            break;
        }
        if done != last.0 {
            last = (done, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(10) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let open_s = start.elapsed().as_secs_f64();
    let mut m = Metrics::new();
    cpu.finish(&mut m);
    tokio::time::sleep(Duration::from_millis(settle_ms)).await;
    let rss_after = server_rss_kib();
    let self_after = rss_kib("self");
    let connected = stats.connected.get();
    m.insert("connected".into(), json!(connected));
    m.insert("failed".into(), json!(stats.failed.get()));
    m.insert("closed_by_server".into(), json!(stats.closed.get()));
    if let Some(e) = stats.first_error.borrow().as_ref() {
        m.insert("first_error".into(), json!(e));
    }
    m.insert("open_s".into(), json!(round3(open_s)));
    latency("connect_", &stats.connect.borrow(), &mut m);
    if !polling {
        latency("tcp_", &stats.tcp.borrow(), &mut m);
    }
    if polling {
        latency("upgrade_", &stats.upgrade.borrow(), &mut m);
    }
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        m.insert("server_rss_before_kib".into(), json!(before));
        m.insert("server_rss_after_kib".into(), json!(after));
        if connected > 0 {
            let per = (after as f64 - before as f64) / connected as f64;
            m.insert("kib_per_conn".into(), json!(round3(per)));
        }
    }
    if let (Some(before), Some(after)) = (self_before, self_after)
        && connected > 0
    {
        let per = (after as f64 - before as f64) / connected as f64;
        m.insert("loadgen_kib_per_conn".into(), json!(round3(per)));
    }
    for h in handles {
        h.abort();
    }
    Ok(m)
}

// ---------------------------------------------------------------------------------------------
// echo

#[derive(Default)]
struct EchoStats {
    acks: Cell<u64>,
    hist: RefCell<Histogram>,
}

async fn echo_loop(ws: Rc<Ws>, stats: Rc<EchoStats>, from: u64, until: u64) -> Result<(), String> {
    let mut id: u64 = 0;
    loop {
        let t0 = now_us();
        if t0 >= until {
            return Ok(());
        }
        ws.queue_text_with(|o| {
            o.extend_from_slice(b"42");
            put_u64(o, id);
            o.extend_from_slice(b"[\"echo\",{\"n\":");
            put_u64(o, id);
            o.extend_from_slice(b",\"s\":\"hello\"}]");
        });
        ws.flush().await.map_err(|e| e.to_string())?;
        let mut got = false;
        while !got {
            let mut pongs = 0;
            let status = ws
                .read(|op, p| {
                    if op != OP_TEXT {
                        return;
                    }
                    if let Some(rest) = p.strip_prefix(b"43") {
                        if parse_u64(rest).map(|(v, _)| v) == Some(id) {
                            got = true;
                        }
                    } else if p == b"2" {
                        pongs += 1;
                    }
                })
                .await
                .map_err(|e| e.to_string())?;
            pong(&ws, pongs).await.map_err(|e| e.to_string())?;
            if status == ReadStatus::Eof && !got {
                return Err("server closed an echo client".into());
            }
        }
        let t1 = now_us();
        if t0 >= from && t1 <= until {
            stats.acks.set(stats.acks.get() + 1);
            stats.hist.borrow_mut().record(t1 - t0);
        }
        id += 1;
    }
}

async fn echo(opts: &Opts, params: &mut Metrics) -> Result<Metrics, String> {
    let addrs = opts.addrs()?;
    let clients: usize = opts.num("clients", 100)?;
    let duration: f64 = opts.num("duration", 5.0)?;
    let warmup: f64 = opts.num("warmup", 1.0)?;
    opts.finish()?;
    params.insert("clients".into(), json!(clients));
    params.insert("duration_s".into(), json!(duration));
    let conns = connect_many(&addrs, clients, 1, |_| None).await?;
    let stats = Rc::new(EchoStats::default());
    let from = now_us() + (warmup * 1e6) as u64;
    let until = from + (duration * 1e6) as u64;
    let handles: Vec<_> = conns
        .iter()
        .map(|ws| spawn_local(echo_loop(ws.clone(), stats.clone(), from, until)))
        .collect();
    tokio::time::sleep(Duration::from_micros(from.saturating_sub(now_us()))).await;
    let cpu = CpuWindow::start();
    tokio::time::sleep(Duration::from_micros(until.saturating_sub(now_us()))).await;
    let mut m = Metrics::new();
    cpu.finish_with(&mut m, "acks", stats.acks.get());
    let mut errors = 0;
    let mut first_error = None;
    for h in handles {
        if let Err(e) = h.await.map_err(|e| e.to_string()).and_then(|r| r) {
            errors += 1;
            first_error.get_or_insert(e);
        }
    }
    let acks = stats.acks.get();
    m.insert("acks_per_s".into(), json!((acks as f64 / duration).round()));
    m.insert("acks".into(), json!(acks));
    latency("", &stats.hist.borrow(), &mut m);
    m.insert("errors".into(), json!(errors));
    if let Some(e) = first_error {
        m.insert("first_error".into(), json!(e));
    }
    Ok(m)
}

// ---------------------------------------------------------------------------------------------
// fanout, cluster-fanout, rooms

#[derive(Default)]
struct Deliveries {
    delivered: Cell<u64>,
    misdelivered: Cell<u64>,
    last_us: Cell<u64>,
    closed: Cell<u64>,
    hist: RefCell<Histogram>,
}

/// A receiver: counts `bcast` events, their latency from the `t` in the payload, and (in the
/// rooms scenario) those whose `r` is not its room.
async fn receive(ws: Rc<Ws>, stats: Rc<Deliveries>, room: Option<u64>) {
    const BCAST: &[u8] = b"42[\"bcast\",";
    loop {
        let mut pongs = 0;
        let mut now = 0;
        let status = ws
            .read(|op, p| {
                if op != OP_TEXT {
                    return;
                }
                if p.starts_with(BCAST) {
                    if now == 0 {
                        now = now_us();
                    }
                    let body = &p[BCAST.len()..];
                    if let Some(t) = find_u64(body, b"\"t\":") {
                        stats.hist.borrow_mut().record(now.saturating_sub(t));
                    }
                    if let Some(room) = room
                        && find_u64(body, b"\"r\":") != Some(room)
                    {
                        stats.misdelivered.set(stats.misdelivered.get() + 1);
                    } else {
                        stats.delivered.set(stats.delivered.get() + 1);
                    }
                } else if p == b"2" {
                    pongs += 1;
                }
            })
            .await;
        if now != 0 {
            stats.last_us.set(now);
        }
        let ok = matches!(status, Ok(ReadStatus::Open)) && pong(&ws, pongs).await.is_ok();
        if !ok {
            stats.closed.set(stats.closed.get() + 1);
            return;
        }
    }
}

/// What the sender emits.
enum Emit {
    /// `broadcast` to the namespace.
    Broadcast,
    /// `to` each of this many rooms in turn.
    Rooms(u64),
}

fn put_emit(o: &mut Vec<u8>, emit: &Emit, i: u64) {
    match emit {
        Emit::Broadcast => {
            o.extend_from_slice(b"42[\"broadcast\",{\"t\":");
            put_u64(o, now_us());
            o.extend_from_slice(b",\"i\":");
            put_u64(o, i);
        }
        Emit::Rooms(k) => {
            let room = i % k;
            o.extend_from_slice(b"42[\"to\",\"r");
            put_u64(o, room);
            o.extend_from_slice(b"\",{\"t\":");
            put_u64(o, now_us());
            o.extend_from_slice(b",\"r\":");
            put_u64(o, room);
        }
    }
    o.extend_from_slice(b"}]");
}

/// Connects the receivers and the sender, sends `messages` emits (at `rate` per second, or as
/// fast as the socket takes them with rate 0), and waits for the deliveries.
async fn deliveries(
    addrs: &[SocketAddr],
    receivers: usize,
    messages: u64,
    rate: f64,
    idle_timeout: Duration,
    emit: Emit,
) -> Result<Metrics, String> {
    let rooms = match emit {
        Emit::Rooms(k) => Some(k),
        Emit::Broadcast => None,
    };
    let conns = connect_many(addrs, receivers, 1, |i| {
        rooms.map(|k| format!("r{}", i as u64 % k))
    })
    .await?;
    let sender = Rc::new(
        sio_connect(addrs[0], None, None, u64::MAX)
            .await
            .map_err(|e| format!("sender: {e}"))?,
    );
    let stats = Rc::new(Deliveries::default());
    let mut handles: Vec<_> = conns
        .iter()
        .enumerate()
        .map(|(i, ws)| {
            spawn_local(receive(
                ws.clone(),
                stats.clone(),
                rooms.map(|k| i as u64 % k),
            ))
        })
        .collect();
    // The sender's own deliveries (broadcast includes it) are read and dropped.
    let sender_stats = Rc::new(Deliveries::default());
    handles.push(spawn_local(receive(sender.clone(), sender_stats, None)));
    let expected = match emit {
        Emit::Broadcast => messages * receivers as u64,
        // Each emit reaches the members of one room; client i is in room i % k.
        Emit::Rooms(k) => {
            let n = receivers as u64;
            let size = |room: u64| n / k + u64::from(room < n % k);
            (0..messages).map(|m| size(m % k)).sum()
        }
    };

    let cpu = CpuWindow::start();
    let t0 = now_us();
    if rate <= 0.0 {
        let mut i = 0;
        while i < messages {
            let end = (i + 64).min(messages);
            for j in i..end {
                sender.queue_text_with(|o| put_emit(o, &emit, j));
            }
            sender.flush().await.map_err(|e| format!("sender: {e}"))?;
            i = end;
        }
    } else {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        for j in 0..messages {
            tick.tick().await;
            sender.queue_text_with(|o| put_emit(o, &emit, j));
            sender.flush().await.map_err(|e| format!("sender: {e}"))?;
        }
    }
    let sent_us = now_us();
    let hard_deadline = sent_us + 120_000_000;
    loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = now_us();
        let got = stats.delivered.get() + stats.misdelivered.get();
        let quiet_since = stats.last_us.get().max(sent_us);
        if got >= expected
            || now.saturating_sub(quiet_since) > idle_timeout.as_micros() as u64
            || now > hard_deadline
            || stats.closed.get() as usize == receivers
        {
            break;
        }
    }
    let mut m = Metrics::new();
    cpu.finish_with(&mut m, "deliveries", stats.delivered.get());
    // Late extra deliveries (duplicates) would show within a moment.
    tokio::time::sleep(Duration::from_millis(50)).await;
    for h in handles {
        h.abort();
    }
    let delivered = stats.delivered.get();
    let span = stats.last_us.get().saturating_sub(t0).max(1);
    m.insert(
        "deliveries_per_s".into(),
        json!((delivered as f64 / (span as f64 / 1e6)).round()),
    );
    m.insert("delivered".into(), json!(delivered));
    m.insert("expected".into(), json!(expected));
    let lost = expected.saturating_sub(delivered + stats.misdelivered.get());
    m.insert("lost".into(), json!(lost));
    m.insert(
        "loss_pct".into(),
        json!(round3(100.0 * lost as f64 / expected.max(1) as f64)),
    );
    if rooms.is_some() {
        m.insert("misdelivered".into(), json!(stats.misdelivered.get()));
    }
    m.insert(
        "extra".into(),
        json!((delivered + stats.misdelivered.get()).saturating_sub(expected)),
    );
    m.insert("closed_by_server".into(), json!(stats.closed.get()));
    m.insert("send_s".into(), json!(round3((sent_us - t0) as f64 / 1e6)));
    m.insert("span_s".into(), json!(round3(span as f64 / 1e6)));
    latency("", &stats.hist.borrow(), &mut m);
    Ok(m)
}

async fn fanout(opts: &Opts, params: &mut Metrics, cluster: bool) -> Result<Metrics, String> {
    let addrs = opts.addrs()?;
    if cluster && addrs.len() < 2 {
        return Err("cluster-fanout needs two servers: --addr A,B".into());
    }
    let receivers: usize = opts.num("receivers", 1000)?;
    let rate: f64 = opts.num("rate", 0.0)?;
    let duration: f64 = opts.num("duration", 5.0)?;
    let default_messages = if rate > 0.0 {
        (rate * duration).round() as u64
    } else {
        1000
    };
    let messages: u64 = opts.num("messages", default_messages)?;
    let idle: u64 = opts.num("idle-timeout-ms", 3000)?;
    opts.finish()?;
    params.insert("receivers".into(), json!(receivers));
    params.insert("messages".into(), json!(messages));
    params.insert("rate".into(), json!(rate));
    params.insert("servers".into(), json!(addrs.len()));
    deliveries(
        &addrs,
        receivers,
        messages,
        rate,
        Duration::from_millis(idle),
        Emit::Broadcast,
    )
    .await
}

async fn rooms(opts: &Opts, params: &mut Metrics) -> Result<Metrics, String> {
    let addrs = opts.addrs()?;
    let clients: usize = opts.num("clients", 1000)?;
    let rooms: u64 = opts.num("rooms", 10)?;
    let rounds: u64 = opts.num("rounds", 300)?;
    let rate: f64 = opts.num("rate", 0.0)?;
    let idle: u64 = opts.num("idle-timeout-ms", 3000)?;
    opts.finish()?;
    if rooms == 0 {
        return Err("--rooms must be at least 1".into());
    }
    params.insert("clients".into(), json!(clients));
    params.insert("rooms".into(), json!(rooms));
    params.insert("rounds".into(), json!(rounds));
    params.insert("emits".into(), json!(rounds * rooms));
    deliveries(
        &addrs,
        clients,
        rounds * rooms,
        rate,
        Duration::from_millis(idle),
        Emit::Rooms(rooms),
    )
    .await
}

async fn churn(opts: &Opts, params: &mut Metrics) -> Result<Metrics, String> {
    let addr = *opts.addrs()?.first().ok_or("--addr: no address")?;
    let flavor = match opts.str("flavor", "testbed").as_str() {
        "testbed" => churn::Flavor::Testbed,
        "sockeye" => churn::Flavor::Sockeye,
        other => return Err(format!("--flavor: testbed or sockeye, not {other:?}")),
    };
    let seconds: f64 = opts.num("seconds", 60.0)?;
    let concurrency: usize = opts.num("concurrency", 32)?;
    let rooms: usize = opts.num("rooms", 3)?;
    let users: usize = opts.num("users", 20)?;
    opts.finish()?;
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err("--seconds must be positive".into());
    }
    params.insert("seconds".into(), json!(seconds));
    params.insert("concurrency".into(), json!(concurrency));
    params.insert("rooms".into(), json!(rooms));
    params.insert("users".into(), json!(users));
    let started = Instant::now();
    let stats = churn::run(churn::Config {
        addr,
        flavor,
        duration: Duration::from_secs_f64(seconds),
        concurrency,
        rooms,
        users,
    })
    .await?;
    let mut m = Metrics::new();
    let cycles = stats.cycles();
    m.insert("cycles".into(), json!(cycles));
    m.insert(
        "cycles_per_s".into(),
        json!(round3(cycles as f64 / started.elapsed().as_secs_f64())),
    );
    m.insert("ws_graceful".into(), json!(stats.ws_graceful.get()));
    m.insert("ws_dropped".into(), json!(stats.ws_dropped.get()));
    m.insert("upgraded".into(), json!(stats.upgraded.get()));
    m.insert(
        "upgrades_abandoned".into(),
        json!(stats.upgrades_abandoned.get()),
    );
    m.insert("polls_abandoned".into(), json!(stats.polls_abandoned.get()));
    m.insert(
        "connects_abandoned".into(),
        json!(stats.connects_abandoned.get()),
    );
    m.insert("errors".into(), json!(stats.errors.get()));
    m.insert("first_errors".into(), json!(*stats.first_errors.borrow()));
    Ok(m)
}

// ---------------------------------------------------------------------------------------------

async fn run(scenario: &str, opts: &Opts) -> Value {
    let mut params = Metrics::new();
    params.insert("addr".into(), json!(opts.str("addr", "127.0.0.1:3000")));
    let name = opts.str("name", scenario);
    let server = opts.str("server", "unknown");
    let round: u64 = opts.num("round", 1).unwrap_or(1);
    let note = opts.raw("note").map(str::to_owned);
    // The server's process, for its memory (`VmRSS`).
    SERVER_PID.set(opts.raw("pid").map(str::to_owned));
    let started = Instant::now();
    let result = match scenario {
        "connect" => connect(opts, &mut params).await,
        "echo" => echo(opts, &mut params).await,
        "fanout" => fanout(opts, &mut params, false).await,
        "cluster-fanout" => fanout(opts, &mut params, true).await,
        "rooms" => rooms(opts, &mut params).await,
        "churn" => churn(opts, &mut params).await,
        other => Err(format!("unknown scenario {other:?}\n{USAGE}")),
    };
    let mut line = json!({
        "scenario": name,
        "server": server,
        "round": round,
        "params": params,
        "wall_s": round3(started.elapsed().as_secs_f64()),
    });
    if let Some(note) = note {
        line["note"] = json!(note);
    }
    match result {
        Ok(mut metrics) => {
            if let Some(rss) = server_rss_kib() {
                metrics.insert("server_rss_end_kib".into(), json!(rss));
            }
            line["metrics"] = Value::Object(metrics);
        }
        Err(e) => line["error"] = json!(e),
    }
    line
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(scenario) = args.first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if scenario == "report" {
        return match bench::report::main(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("loadgen report: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if scenario == "-h" || scenario == "--help" {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let opts = match Opts::parse(&args[1..]) {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("loadgen: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    now_us();
    let local = tokio::task::LocalSet::new();
    let line = local.block_on(&runtime, run(scenario, &opts));
    println!("{line}");
    // Do not wait for the connections' tasks: the process ends and the kernel resets them.
    runtime.shutdown_background();
    if line.get("error").is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
