//! A real `redis-server` on a free port, started by the test and killed when dropped (it can
//! be stopped and restarted on the same port to test faults). Fails loudly when
//! `redis-server` is not installed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    /// Extra `redis-server` arguments.
    extra: Vec<String>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub fn start() -> Self {
        Self::start_with(Vec::new())
    }

    /// The same with extra `redis-server` arguments.
    pub fn start_with(extra: Vec<String>) -> Self {
        let mut server = Self {
            port: free_port(),
            child: None,
            extra,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): these tests need a real Redis \
                     (Debian: apt-get install redis-server)"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.ping() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut buf = [0u8; 16];
        matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: connections drop at once, as in a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Runs one command on a fresh connection and returns the raw RESP reply.
    pub fn command(&self, args: &[&str]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut cmd = format!("*{}\r\n", args.len());
        for a in args {
            cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(cmd.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let mut buf = vec![0u8; 64 * 1024];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis Cluster of three masters (no replicas) on free ports, created with
/// `redis-cli --cluster create`. Fails loudly when `redis-server` or `redis-cli` is missing.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    dir: std::path::PathBuf,
}

impl RedisCluster {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "sockeye-redis-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let nodes: Vec<RedisServer> = (0..3)
            .map(|i| {
                RedisServer::start_with(vec![
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    format!("nodes-{i}.conf"),
                    "--cluster-node-timeout".into(),
                    "5000".into(),
                    // The bus port defaults to port + 10000, impossible above 55535 (where a
                    // free port often is): give it a free port of its own.
                    "--cluster-port".into(),
                    free_port().to_string(),
                    "--dir".into(),
                    dir.to_string_lossy().into_owned(),
                ])
            })
            .collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run redis-cli ({e}): the Redis Cluster test needs it \
                     (Debian: apt-get install redis-tools)"
                )
            });
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Self { nodes, dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !cluster
            .nodes
            .iter()
            .all(|n| n.command(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        {
            assert!(
                Instant::now() < deadline,
                "the Redis Cluster did not become ok"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// The node whose port is `port`.
    pub fn node(&self, port: u16) -> &RedisServer {
        self.nodes.iter().find(|n| n.port == port).unwrap()
    }

    /// `CLUSTER MYID` of a node.
    pub fn id(&self, node: &RedisServer) -> String {
        let reply = node.command(&["CLUSTER", "MYID"]);
        reply.lines().nth(1).unwrap().to_owned()
    }

    /// `CLUSTER KEYSLOT name`.
    pub fn slot(&self, name: &str) -> u16 {
        let reply = self.nodes[0].command(&["CLUSTER", "KEYSLOT", name]);
        reply.trim().trim_start_matches(':').parse().unwrap()
    }

    /// The node that owns `slot`.
    pub fn owner(&self, slot: u16) -> &RedisServer {
        let reply = self.nodes[0].command(&["CLUSTER", "SLOTS"]);
        let port = owner_port(&reply, slot).unwrap_or_else(|| panic!("no owner for {slot}"));
        self.node(port)
    }

    /// Moves an (empty) slot to `target`, as `redis-cli --cluster reshard` would.
    pub fn move_slot(&self, slot: u16, target: &RedisServer) {
        let source = self.owner(slot);
        let (source_id, target_id) = (self.id(source), self.id(target));
        let slot = slot.to_string();
        let ok = |reply: String| assert!(reply.starts_with("+OK"), "{reply}");
        ok(target.command(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &source_id]));
        ok(source.command(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &target_id]));
        ok(target.command(&["CLUSTER", "SETSLOT", &slot, "NODE", &target_id]));
        ok(source.command(&["CLUSTER", "SETSLOT", &slot, "NODE", &target_id]));
        for node in &self.nodes {
            if node.port != source.port && node.port != target.port {
                ok(node.command(&["CLUSTER", "SETSLOT", &slot, "NODE", &target_id]));
            }
        }
    }
}

/// The master port serving `slot` in a raw `CLUSTER SLOTS` reply.
fn owner_port(reply: &str, slot: u16) -> Option<u16> {
    // Lines: *3 / :start / :end / *N / $len / ip / :port / ...
    let lines: Vec<&str> = reply.split("\r\n").collect();
    let mut i = 0;
    while i + 6 < lines.len() {
        if let (Some(start), Some(end)) = (
            lines[i]
                .strip_prefix(':')
                .and_then(|s| s.parse::<u16>().ok()),
            lines[i + 1]
                .strip_prefix(':')
                .and_then(|s| s.parse::<u16>().ok()),
        ) && lines[i + 2].starts_with('*')
        {
            if (start..=end).contains(&slot) {
                return lines[i + 5].strip_prefix(':').and_then(|p| p.parse().ok());
            }
            i += 2;
            continue;
        }
        i += 1;
    }
    None
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
