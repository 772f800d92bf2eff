//! Sockeye benchmarks: a load generator that speaks Engine.IO v4 / Socket.IO v5 itself, and a
//! "limit" server that does only what the wire needs for the same scenarios.
//!
//! Both binaries run one single-threaded tokio runtime (the benchmark script pins each to its
//! own core), so connections share per-thread scratch buffers instead of owning their own.

pub mod client;
pub mod hist;
pub mod report;
pub mod ws;

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Microseconds since the first call in this process: the clock of payload timestamps.
pub fn now_us() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// The unsigned integer right after the first `key` in `text` (`"t":` in `{"t":123}`).
pub fn find_u64(text: &[u8], key: &[u8]) -> Option<u64> {
    let at = text.windows(key.len()).position(|w| w == key)? + key.len();
    parse_u64(&text[at..]).map(|(v, _)| v)
}

/// Parses the leading decimal digits of `text`: the value and how many bytes it took.
pub fn parse_u64(text: &[u8]) -> Option<(u64, usize)> {
    let mut value: u64 = 0;
    let mut len = 0;
    for &b in text {
        if !b.is_ascii_digit() {
            break;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        len += 1;
    }
    (len > 0).then_some((value, len))
}

/// Appends the decimal form of `v` (no allocation, unlike `format!`).
pub fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// `VmRSS` of a process in KiB, from `/proc/<pid>/status` (`self` for this one).
pub fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time in nanoseconds used by all live threads of a process (`self` for this one), from
/// `/proc/<pid>/task/*/schedstat`.
pub fn cpu_ns(pid: &str) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = task.ok()?.path().join("schedstat");
        if let Ok(text) = std::fs::read_to_string(path) {
            total += text
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_numbers() {
        assert_eq!(
            find_u64(br#"42["bcast",{"t":123456,"r":7}]"#, br#""t":"#),
            Some(123456)
        );
        assert_eq!(
            find_u64(br#"42["bcast",{"t":123456,"r":7}]"#, br#""r":"#),
            Some(7)
        );
        assert_eq!(find_u64(br#"42["bcast",{}]"#, br#""t":"#), None);
        let mut out = Vec::new();
        put_u64(&mut out, 0);
        out.push(b',');
        put_u64(&mut out, u64::MAX);
        assert_eq!(out, b"0,18446744073709551615");
    }
}
