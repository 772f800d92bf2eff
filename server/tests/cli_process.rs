//! The real `sockeye` binary: `--help`, refusals at start (one line naming the setting, exit
//! 2), `--dev` (loud log line, dev tokens, example worker), and SIGTERM (clients are closed,
//! exit 0).

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Client, get, within};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const BIN: &str = env!("CARGO_BIN_EXE_sockeye");

fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_clear().envs(env.iter().copied());
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.kill_on_drop(true);
    cmd
}

/// Runs to completion: (exit code, stdout, stderr).
async fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = within("sockeye to exit", command(args, env).output())
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn help_lists_every_setting_with_defaults() {
    let (code, out, _) = run(&["--help"], &[]).await;
    assert_eq!(code, 0);
    for name in [
        "PORT",
        "HOST",
        "REDIS_URL",
        "DISABLE_REDIS",
        "ADAPTER",
        "FRONTEND_ORIGIN",
        "JWT_SECRET",
        "JWT_PUBLIC_KEY_FILE",
        "JWT_ISSUER",
        "JWT_AUDIENCE",
        "RATE_LIMIT_BURST",
        "RATE_LIMIT_PER_MINUTE",
        "LOG_FORMAT",
        "--dev",
        "--port",
        "--example-worker",
    ] {
        assert!(out.contains(name), "{name} missing from --help:\n{out}");
    }
    assert!(out.contains("[default: 4000]"));
}

#[tokio::test]
async fn bad_settings_stop_the_start_with_one_line_naming_them() {
    let secret = ("JWT_SECRET", "0123456789abcdef0123456789abcdef");
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case<'_>] = &[
        (&["--port", "99999"], &[secret], "sockeye: PORT:"),
        (&[], &[secret, ("PORT", "http")], "sockeye: PORT:"),
        (
            &[],
            &[secret, ("LOG_FORMAT", "yaml")],
            "sockeye: LOG_FORMAT:",
        ),
        (
            &[],
            &[secret, ("FRONTEND_ORIGIN", "app.example")],
            "sockeye: FRONTEND_ORIGIN:",
        ),
        (
            &[],
            &[secret, ("RATE_LIMIT_PER_MINUTE", "-1")],
            "sockeye: RATE_LIMIT_PER_MINUTE:",
        ),
        (&[], &[], "sockeye: JWT_SECRET:"),
        (&[], &[("JWT_SECRET", "short")], "sockeye: JWT_SECRET:"),
        (
            &[],
            &[("JWT_PUBLIC_KEY_FILE", "/nonexistent.pem")],
            "sockeye: JWT_PUBLIC_KEY_FILE:",
        ),
        (
            &[],
            &[
                secret,
                ("REDIS_URL", "redis://127.0.0.1:6379"),
                ("ADAPTER", "sharded-cluster"),
            ],
            "sockeye: ADAPTER:",
        ),
        (
            &[],
            &[secret, ("REDIS_URL", "redis://127.0.0.1:1")],
            "sockeye: REDIS_URL:",
        ),
        (&["--frobnicate"], &[secret], "--frobnicate"),
        (&["worker", "--example"], &[], "sockeye: REDIS_URL:"),
    ];
    for (args, env, expected) in cases {
        let (code, _, err) = run(args, env).await;
        assert_eq!(code, 2, "{args:?} {env:?}: {err}");
        assert_eq!(
            err.lines().count(),
            1,
            "{args:?} {env:?}: not one line: {err}"
        );
        assert!(
            err.starts_with("sockeye: ") && err.contains(expected),
            "{args:?} {env:?}: {err}"
        );
    }
    let (_, _, err) = run(&[], &[]).await;
    assert!(err.contains("--dev"), "{err}");
}

/// A running `sockeye` and its stderr lines.
struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
    addr: std::net::SocketAddr,
}

async fn spawn(args: &[&str], env: &[(&str, &str)]) -> Process {
    let mut env = env.to_vec();
    env.extend([("HOST", "127.0.0.1"), ("PORT", "0"), ("LOG_LEVEL", "info")]);
    let mut child = command(args, &env).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, mut lines) = mpsc::channel(1024);
    tokio::spawn(async move {
        let mut reader = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            if tx.send(line).await.is_err() {
                return;
            }
        }
    });
    let mut log = Vec::new();
    let addr = loop {
        let line = within("the listening line", lines.recv())
            .await
            .expect("sockeye exited");
        log.push(line.clone());
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                .collect();
            break addr.parse().unwrap();
        }
    };
    Process {
        child,
        lines,
        log,
        addr,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_serves_and_sigterm_shuts_down_gracefully() {
    let mut process = spawn(&["--dev", "--example-worker-delay-ms", "10"], &[]).await;
    assert!(
        process
            .log
            .iter()
            .any(|l| l.contains("WARN") && l.contains("DEV MODE")),
        "no loud dev-mode line: {:?}",
        process.log
    );
    let addr = process.addr;
    let token = get(addr, "/api/dev/token?user=erin").await.json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut client = Client::connect(addr, Some(json!({ "token": token })), &[])
        .await
        .unwrap();
    let ack = client.ack("search:start", json!({ "query": "dev" })).await;
    assert_eq!(ack["ok"], true, "{ack}");
    client.event("search:complete:v1").await;

    let pid = process.child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    // The client is closed by the server (it would reconnect elsewhere)...
    client.closed().await;
    // ...and the process exits 0.
    let status = within("exit after SIGTERM", process.child.wait())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    while let Ok(Some(line)) =
        tokio::time::timeout(Duration::from_millis(200), process.lines.recv()).await
    {
        process.log.push(line);
    }
    assert!(
        process.log.iter().any(|l| l.contains("shutting down")),
        "{:?}",
        process.log
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs() {
    let mut process = spawn(
        &["--log-format", "json"],
        &[("JWT_SECRET", "0123456789abcdef0123456789abcdef")],
    )
    .await;
    let line = process.log.last().unwrap();
    let parsed: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(parsed["level"], "INFO");
    let _ = process.child.kill().await;
}
