//! `loadgen report --in RUNS.jsonl --out FILE.json [--base sockeye] [--meta key=value]...`:
//! medians over the rounds of each scenario and server, ratios of the base server to the others,
//! a Markdown table on standard output and everything in one JSON file.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

/// Which way a figure is better.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
    /// Context only (no ratio).
    Info,
}

/// The figures shown in the table, in this order, when a scenario has them.
const HEADLINE: &[(&str, &str, Better)] = &[
    ("kib_per_conn", "server KiB per connection", Better::Lower),
    ("connected", "connections open", Better::Higher),
    ("failed", "connections failed", Better::Lower),
    ("connect_p50_ms", "connect p50 ms", Better::Lower),
    ("connect_p99_ms", "connect p99 ms", Better::Lower),
    ("upgrade_p99_ms", "upgrade done p99 ms", Better::Lower),
    ("acks_per_s", "acks/s", Better::Higher),
    (
        "acks_per_server_cpu_s",
        "acks per server CPU-second",
        Better::Higher,
    ),
    ("deliveries_per_s", "deliveries/s", Better::Higher),
    (
        "deliveries_per_server_cpu_s",
        "deliveries per server CPU-second",
        Better::Higher,
    ),
    ("p50_ms", "latency p50 ms", Better::Lower),
    ("p99_ms", "latency p99 ms", Better::Lower),
    ("max_ms", "latency max ms", Better::Lower),
    ("loss_pct", "loss %", Better::Lower),
    ("misdelivered", "misdelivered", Better::Lower),
    ("errors", "errors", Better::Lower),
    ("server_cpu_pct", "server CPU % of a core", Better::Info),
];

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1000.0 {
        let s = format!("{}", v.round() as i64);
        let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if v == v.trunc() {
        format!("{}", v as i64)
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn fmt_ratio(r: f64) -> String {
    if !r.is_finite() {
        "–".into()
    } else if r >= 10.0 {
        format!("{r:.1}×")
    } else {
        format!("{r:.2}×")
    }
}

fn order_of<'a>(items: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.iter().any(|o| o == item) {
            out.push(item.to_owned());
        }
    }
    out
}

pub fn main(args: &[String]) -> Result<(), String> {
    let mut input = None;
    let mut output = None;
    let mut base = None;
    let mut meta = serde_json::Map::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--in" => input = Some(value()?),
            "--out" => output = Some(value()?),
            "--base" => base = Some(value()?),
            "--meta" => {
                let kv = value()?;
                let (k, v) = kv.split_once('=').ok_or("--meta takes key=value")?;
                meta.insert(k.to_owned(), json!(v));
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let input = input.ok_or("--in FILE is required")?;
    let text = std::fs::read_to_string(&input).map_err(|e| format!("{input}: {e}"))?;
    let runs: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{input}: {e}: {l}")))
        .collect::<Result<_, _>>()?;

    let name = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
    let scenarios = order_of(runs.iter().filter_map(|r| r.get("scenario")?.as_str()));
    let servers = order_of(runs.iter().filter_map(|r| r.get("server")?.as_str()));
    let base = base.unwrap_or_else(|| servers.first().cloned().unwrap_or_default());
    let others: Vec<&String> = servers.iter().filter(|s| **s != base).collect();

    // scenario -> server -> metric -> values over rounds
    let mut values: BTreeMap<(String, String), BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    let mut notes: Vec<String> = Vec::new();
    let mut rounds: BTreeMap<(String, String), usize> = BTreeMap::new();
    for run in &runs {
        let key = (name(run, "scenario"), name(run, "server"));
        for field in ["skipped", "error", "note"] {
            if let Some(msg) = run.get(field).and_then(Value::as_str) {
                let note = if field == "note" {
                    format!("{}: {msg}", key.0)
                } else {
                    format!("{} on {}: {field}: {msg}", key.0, key.1)
                };
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
        }
        let Some(metrics) = run.get("metrics").and_then(Value::as_object) else {
            continue;
        };
        *rounds.entry(key.clone()).or_default() += 1;
        let entry = values.entry(key).or_default();
        for (metric, v) in metrics {
            if let Some(v) = v.as_f64() {
                entry.entry(metric.clone()).or_default().push(v);
            }
        }
    }
    let mut medians: BTreeMap<(String, String), BTreeMap<String, f64>> = BTreeMap::new();
    for (key, metrics) in &mut values {
        let m = medians.entry(key.clone()).or_default();
        for (metric, vs) in metrics.iter_mut() {
            if let Some(med) = median(vs) {
                m.insert(metric.clone(), med);
            }
        }
    }

    // The table.
    let mut table = String::new();
    let mut header = String::from("| scenario | figure |");
    let mut rule = String::from("|---|---|");
    for s in &servers {
        let _ = write!(header, " {s} |");
        rule.push_str("---:|");
    }
    for o in &others {
        let _ = write!(header, " {base}/{o} |");
        rule.push_str("---:|");
    }
    let _ = writeln!(table, "{header}\n{rule}");
    let mut json_medians = serde_json::Map::new();
    let mut json_ratios = serde_json::Map::new();
    for scenario in &scenarios {
        let mut sc_medians = serde_json::Map::new();
        for s in &servers {
            if let Some(m) = medians.get(&(scenario.clone(), s.clone())) {
                let mut obj = serde_json::Map::new();
                for (k, v) in m {
                    obj.insert(k.clone(), json!(v));
                }
                obj.insert(
                    "rounds".into(),
                    json!(rounds.get(&(scenario.clone(), s.clone()))),
                );
                sc_medians.insert(s.clone(), Value::Object(obj));
            }
        }
        json_medians.insert(scenario.clone(), Value::Object(sc_medians));
        let mut sc_ratios = serde_json::Map::new();
        for (metric, label, better) in HEADLINE {
            let cell = |server: &str| {
                medians
                    .get(&(scenario.clone(), server.to_owned()))
                    .and_then(|m| m.get(*metric).copied())
            };
            if servers.iter().all(|s| cell(s).is_none()) {
                continue;
            }
            let arrow = match better {
                Better::Higher => " ↑",
                Better::Lower => " ↓",
                Better::Info => "",
            };
            let _ = write!(table, "| {scenario} | {label}{arrow} |");
            for s in &servers {
                let text = match cell(s) {
                    Some(v) => fmt_num(v),
                    None => {
                        let key = (scenario.clone(), s.clone());
                        if runs.iter().any(|r| {
                            name(r, "scenario") == key.0
                                && name(r, "server") == key.1
                                && r.get("skipped").is_some()
                        }) {
                            "skipped".into()
                        } else if runs.iter().any(|r| {
                            name(r, "scenario") == key.0
                                && name(r, "server") == key.1
                                && r.get("error").is_some()
                        }) {
                            "error".into()
                        } else {
                            "n/a".into()
                        }
                    }
                };
                let _ = write!(table, " {text} |");
            }
            let mut ratios = serde_json::Map::new();
            for o in &others {
                let text = match (cell(&base), cell(o)) {
                    (Some(a), Some(b)) if b != 0.0 && *better != Better::Info => {
                        ratios.insert((*o).clone(), json!(a / b));
                        fmt_ratio(a / b)
                    }
                    _ => "–".into(),
                };
                let _ = write!(table, " {text} |");
            }
            table.push('\n');
            if !ratios.is_empty() {
                sc_ratios.insert((*metric).to_owned(), Value::Object(ratios));
            }
        }
        json_ratios.insert(scenario.clone(), Value::Object(sc_ratios));
    }
    print!("{table}");
    if !notes.is_empty() {
        println!();
        for note in &notes {
            println!("- {note}");
        }
    }
    if let Some(output) = output {
        let doc = json!({
            "meta": meta,
            "servers": servers,
            "base": base,
            "scenarios": scenarios,
            "medians": json_medians,
            "ratios": json_ratios,
            "notes": notes,
            "table_markdown": table,
            "runs": runs,
        });
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        std::fs::write(&output, text + "\n").map_err(|e| format!("{output}: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(fmt_num(1234567.0), "1,234,567");
        assert_eq!(fmt_num(-1234.0), "-1,234");
        assert_eq!(fmt_num(3.0), "3");
        assert_eq!(fmt_num(4.56789), "4.57");
        assert_eq!(fmt_num(21.53), "21.5");
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
