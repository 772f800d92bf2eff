//! Counters, and their Prometheus text exposition (`GET /metrics`).
//!
//! Bytes are counted on the TCP connections of the listening port ([`CountingStream`]), so they
//! include HTTP framing and WebSocket frames. Socket.IO events are counted by name (catalogue
//! names, anything else as `other`) as they arrive and as they leave for each recipient.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::events::CATALOGUE;

/// A monotonic counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters per catalogue event name, plus `other`: a fixed set, so hostile names cannot grow it.
#[derive(Debug)]
pub struct EventCounters {
    names: Vec<&'static str>,
    counts: Vec<Counter>,
    other: Counter,
}

impl Default for EventCounters {
    fn default() -> Self {
        let names: Vec<&'static str> = CATALOGUE.iter().map(|s| s.name).collect();
        let counts = names.iter().map(|_| Counter::default()).collect();
        Self {
            names,
            counts,
            other: Counter::default(),
        }
    }
}

impl EventCounters {
    /// Counts one event named `name`.
    pub fn inc(&self, name: &str) {
        match self.names.iter().position(|n| *n == name) {
            Some(i) => self.counts[i].inc(),
            None => self.other.inc(),
        }
    }

    /// `(name, count)` pairs with a non-zero count, `other` last.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let mut out: Vec<_> = self
            .names
            .iter()
            .zip(&self.counts)
            .map(|(n, c)| (*n, c.get()))
            .filter(|(_, c)| *c > 0)
            .collect();
        out.push(("other", self.other.get()));
        out
    }
}

/// Every counter of the server.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Bytes read from client connections.
    pub bytes_in: Counter,
    /// Bytes written to client connections.
    pub bytes_out: Counter,
    /// TCP connections accepted.
    pub tcp_accepted: Counter,
    /// HTTP requests to the server's own routes (not Engine.IO).
    pub http_requests: Counter,
    /// Socket.IO events received, by name.
    pub events_in: EventCounters,
    /// Socket.IO events sent, by name, once per recipient.
    pub events_out: EventCounters,
    /// Emits to rooms (one per publish, whatever the number of recipients).
    pub broadcasts: Counter,
    /// Sockets that passed authentication.
    pub sockets_connected: Counter,
    /// Refused connections, by `data.code`.
    pub auth_missing: Counter,
    /// See [`Metrics::auth_missing`].
    pub auth_invalid: Counter,
    /// See [`Metrics::auth_missing`].
    pub auth_expired: Counter,
    /// Client payloads refused with `invalid_payload`.
    pub invalid_payloads: Counter,
    /// Starts refused with `rate_limited`.
    pub rate_limited: Counter,
    /// Rate-limit decisions and presence statuses answered from this node's memory because
    /// Redis did not answer.
    pub redis_fallbacks: Counter,
    /// Jobs accepted into the queue.
    pub jobs_enqueued: Counter,
    /// Jobs refused because the queue was full.
    pub jobs_queue_full: Counter,
    /// Jobs a worker finished.
    pub jobs_completed: Counter,
    /// Jobs stopped by a cancellation.
    pub jobs_cancelled: Counter,
    /// Jobs that failed.
    pub jobs_failed: Counter,
}

/// What only the server knows at scrape time.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Node id.
    pub node_id: String,
    /// Seconds since start.
    pub uptime_secs: f64,
    /// Engine.IO sessions by transport name.
    pub connections: BTreeMap<&'static str, u64>,
    /// Users online on this node.
    pub users_online: u64,
    /// Socket.IO sockets on this node, every namespace.
    pub sockets: u64,
    /// Rooms with a member on this node, every namespace (each socket's own id room included).
    pub rooms: u64,
    /// Jobs waiting in the queue.
    pub jobs_queued: u64,
    /// Jobs taken by a worker and not finished.
    pub jobs_running: u64,
    /// Workers taking jobs (cluster-wide with Redis).
    pub job_workers: u64,
    /// Redis: `None` when off; else (up, adapter stats).
    pub redis: Option<(bool, socketio_redis::Stats)>,
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: impl std::fmt::Display) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

fn label_escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        family(&mut out, "sockeye_info", "gauge", "This node.");
        sample(
            &mut out,
            "sockeye_info",
            &format!(
                "node_id=\"{}\",version=\"{}\"",
                label_escape(&gauges.node_id),
                env!("CARGO_PKG_VERSION")
            ),
            1,
        );
        family(
            &mut out,
            "sockeye_uptime_seconds",
            "gauge",
            "Seconds since the server started.",
        );
        sample(&mut out, "sockeye_uptime_seconds", "", gauges.uptime_secs);
        family(
            &mut out,
            "sockeye_connections",
            "gauge",
            "Open Engine.IO connections by transport.",
        );
        for transport in ["polling", "websocket"] {
            let n = gauges.connections.get(transport).copied().unwrap_or(0);
            sample(
                &mut out,
                "sockeye_connections",
                &format!("transport=\"{transport}\""),
                n,
            );
        }
        family(
            &mut out,
            "sockeye_users_online",
            "gauge",
            "Users with a connected socket on this node.",
        );
        sample(&mut out, "sockeye_users_online", "", gauges.users_online);
        family(
            &mut out,
            "sockeye_sockets",
            "gauge",
            "Socket.IO sockets on this node, every namespace.",
        );
        sample(&mut out, "sockeye_sockets", "", gauges.sockets);
        family(
            &mut out,
            "sockeye_rooms",
            "gauge",
            "Rooms with a member on this node, every namespace (socket id rooms included).",
        );
        sample(&mut out, "sockeye_rooms", "", gauges.rooms);
        let counters: [(&str, &str, &Counter); 9] = [
            (
                "sockeye_tcp_connections_total",
                "TCP connections accepted.",
                &self.tcp_accepted,
            ),
            (
                "sockeye_http_requests_total",
                "HTTP requests to the server's own routes.",
                &self.http_requests,
            ),
            (
                "sockeye_bytes_received_total",
                "Bytes read from client connections (HTTP and WebSocket).",
                &self.bytes_in,
            ),
            (
                "sockeye_bytes_sent_total",
                "Bytes written to client connections (HTTP and WebSocket).",
                &self.bytes_out,
            ),
            (
                "sockeye_sockets_connected_total",
                "Sockets that passed authentication.",
                &self.sockets_connected,
            ),
            (
                "sockeye_broadcasts_total",
                "Emits to rooms (once per publish).",
                &self.broadcasts,
            ),
            (
                "sockeye_invalid_payloads_total",
                "Client payloads refused with invalid_payload.",
                &self.invalid_payloads,
            ),
            (
                "sockeye_rate_limited_total",
                "Job starts refused with rate_limited.",
                &self.rate_limited,
            ),
            (
                "sockeye_redis_fallbacks_total",
                "Rate limits and presence statuses answered locally because Redis did not answer.",
                &self.redis_fallbacks,
            ),
        ];
        for (name, help, counter) in counters {
            family(&mut out, name, "counter", help);
            sample(&mut out, name, "", counter.get());
        }
        family(
            &mut out,
            "sockeye_auth_failures_total",
            "counter",
            "Refused connections by code.",
        );
        for (code, counter) in [
            ("missing_token", &self.auth_missing),
            ("invalid_token", &self.auth_invalid),
            ("token_expired", &self.auth_expired),
        ] {
            sample(
                &mut out,
                "sockeye_auth_failures_total",
                &format!("code=\"{code}\""),
                counter.get(),
            );
        }
        for (name, help, counters) in [
            (
                "sockeye_events_received_total",
                "Socket.IO events received, by event.",
                &self.events_in,
            ),
            (
                "sockeye_events_sent_total",
                "Socket.IO events sent, by event, once per recipient.",
                &self.events_out,
            ),
        ] {
            family(&mut out, name, "counter", help);
            for (event, n) in counters.snapshot() {
                sample(&mut out, name, &format!("event=\"{event}\""), n);
            }
        }
        family(
            &mut out,
            "sockeye_jobs_total",
            "counter",
            "Jobs by outcome: enqueued, queue_full (refused), completed, cancelled, failed.",
        );
        for (outcome, counter) in [
            ("enqueued", &self.jobs_enqueued),
            ("queue_full", &self.jobs_queue_full),
            ("completed", &self.jobs_completed),
            ("cancelled", &self.jobs_cancelled),
            ("failed", &self.jobs_failed),
        ] {
            sample(
                &mut out,
                "sockeye_jobs_total",
                &format!("outcome=\"{outcome}\""),
                counter.get(),
            );
        }
        family(
            &mut out,
            "sockeye_jobs",
            "gauge",
            "Jobs now, by state: queued, running.",
        );
        sample(
            &mut out,
            "sockeye_jobs",
            "state=\"queued\"",
            gauges.jobs_queued,
        );
        sample(
            &mut out,
            "sockeye_jobs",
            "state=\"running\"",
            gauges.jobs_running,
        );
        family(
            &mut out,
            "sockeye_job_workers",
            "gauge",
            "Workers taking jobs (with Redis: heartbeats in the last 5 s, cluster-wide).",
        );
        sample(&mut out, "sockeye_job_workers", "", gauges.job_workers);
        family(
            &mut out,
            "sockeye_redis_up",
            "gauge",
            "1 when the Redis adapter is subscribed, 0 when down; absent when Redis is off.",
        );
        if let Some((up, stats)) = &gauges.redis {
            sample(&mut out, "sockeye_redis_up", "", u8::from(*up));
            family(
                &mut out,
                "sockeye_adapter_messages_total",
                "counter",
                "Redis adapter messages: published, received, publish_dropped, publish_failed, incoming_dropped.",
            );
            for (what, n) in [
                ("published", stats.published),
                ("received", stats.received),
                ("publish_dropped", stats.publish_dropped),
                ("publish_failed", stats.publish_failed),
                ("incoming_dropped", stats.incoming_dropped),
            ] {
                sample(
                    &mut out,
                    "sockeye_adapter_messages_total",
                    &format!("kind=\"{what}\""),
                    n,
                );
            }
            family(
                &mut out,
                "sockeye_adapter_reconnects_total",
                "counter",
                "Times the Redis subscriber connection was opened again.",
            );
            sample(
                &mut out,
                "sockeye_adapter_reconnects_total",
                "",
                stats.reconnects,
            );
        }
        out
    }
}

/// A TCP stream that counts the bytes it reads and writes into [`Metrics`].
#[derive(Debug)]
pub struct CountingStream<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> CountingStream<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CountingStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.metrics
                .bytes_in
                .add((buf.filled().len() - before) as u64);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountingStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.metrics.bytes_out.add(n as u64);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            self.metrics.bytes_out.add(n as u64);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_and_bounded_event_labels() {
        let m = Metrics::default();
        m.events_in.inc("search:start");
        m.events_in.inc("whatever the client invents");
        m.jobs_enqueued.inc();
        let text = m.render(&Gauges {
            node_id: "n1".into(),
            ..Gauges::default()
        });
        assert!(text.contains("sockeye_events_received_total{event=\"search:start\"} 1"));
        assert!(text.contains("sockeye_events_received_total{event=\"other\"} 1"));
        assert!(text.contains("sockeye_jobs_total{outcome=\"enqueued\"} 1"));
        assert!(text.contains("sockeye_connections{transport=\"websocket\"} 0"));
        assert!(text.contains("\nsockeye_sockets 0\n"));
        assert!(text.contains("\nsockeye_rooms 0\n"));
        assert!(text.contains("\nsockeye_job_workers 0\n"));
        assert!(!text.contains("\nsockeye_redis_up "));
        assert!(text.contains("sockeye_info{node_id=\"n1\""));
    }
}
