//! `emitter '<spec JSON>'`: runs one operation of the Rust emitter (`socketio_redis::Emitter`)
//! against a classic cluster, so the JS conformance tests can drive it.
//!
//! Settings come from the environment, as for the testbed: `REDIS_URL` (required) and `KEY`
//! (channel prefix, default `socket.io`). The spec mirrors the testbed's `op` specs:
//!
//! ```text
//! {"op": "emit", "nsp": "/chat", "rooms": ["r"], "except": ["x"], "volatile": false,
//!  "event": "news", "args": [1, {"$bin": "0a0b"}]}
//! {"op": "socketsJoin" | "socketsLeave", "room": "r", "rooms": [...], "except": [...]}
//! {"op": "disconnectSockets", "close": true, "rooms": [...], "except": [...]}
//! {"op": "serverSideEmit", "event": "e", "args": [...]}
//! ```
//!
//! In `args`, an object `{"$bin": "<hex>"}` stands for a binary value. `nsp` defaults to `/`.
//! Exits 0 once Redis accepted the publish; on a bad spec or a Redis error it prints one line
//! to standard error and exits 2.

use std::process::ExitCode;

use socketio::{Value, map_get};
use socketio_redis::{Emitter, EmitterOperator};

fn main() -> ExitCode {
    let result = (|| {
        let spec = std::env::args()
            .nth(1)
            .ok_or("usage: emitter '<spec JSON>' (REDIS_URL, KEY in the environment)")?;
        let spec = socketio::value::from_json_str(&spec).map_err(|e| format!("spec: {e}"))?;
        let url = std::env::var("REDIS_URL").map_err(|_| "REDIS_URL is not set".to_owned())?;
        let key = std::env::var("KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| "socket.io".into());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(run(&url, &key, &spec))
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("emitter: {err}");
            ExitCode::from(2)
        }
    }
}

async fn run(url: &str, key: &str, spec: &Value) -> Result<(), String> {
    let nsp = optional_string(spec, "nsp")?.unwrap_or_else(|| "/".into());
    let emitter = Emitter::connect(url, key)
        .await
        .map_err(|e| e.to_string())?
        .of(&nsp);
    let op = optional_string(spec, "op")?.ok_or("\"op\" must be a string")?;
    let targets = || -> Result<EmitterOperator, String> {
        let mut op = emitter
            .to(rooms(spec, "rooms")?)
            .except(rooms(spec, "except")?);
        if matches!(field(spec, "volatile"), Some(Value::Boolean(true))) {
            op = op.volatile();
        }
        Ok(op)
    };
    let room =
        || optional_string(spec, "room")?.ok_or_else(|| "\"room\" must be a string".to_owned());
    let done = match op.as_str() {
        "emit" => targets()?.emit(&event(spec)?, args(spec)?).await,
        "socketsJoin" => targets()?.sockets_join([room()?]).await,
        "socketsLeave" => targets()?.sockets_leave([room()?]).await,
        "disconnectSockets" => {
            let close = matches!(field(spec, "close"), Some(Value::Boolean(true)));
            targets()?.disconnect_sockets(close).await
        }
        "serverSideEmit" => emitter.server_side_emit(&event(spec)?, args(spec)?).await,
        other => return Err(format!("unknown op {other:?}")),
    };
    done.map_err(|e| e.to_string())
}

fn field<'a>(spec: &'a Value, name: &str) -> Option<&'a Value> {
    map_get(spec, name).filter(|v| !v.is_nil())
}

fn optional_string(spec: &Value, name: &str) -> Result<Option<String>, String> {
    match field(spec, name) {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .map(|s| Some(s.to_owned()))
            .ok_or_else(|| format!("\"{name}\" must be a string")),
    }
}

fn event(spec: &Value) -> Result<String, String> {
    optional_string(spec, "event")?.ok_or_else(|| "\"event\" must be a string".to_owned())
}

fn rooms(spec: &Value, name: &str) -> Result<Vec<String>, String> {
    let Some(v) = field(spec, name) else {
        return Ok(Vec::new());
    };
    v.as_array()
        .and_then(|list| list.iter().map(|r| r.as_str().map(str::to_owned)).collect())
        .ok_or_else(|| format!("\"{name}\" must be an array of strings"))
}

fn args(spec: &Value) -> Result<Vec<Value>, String> {
    match field(spec, "args") {
        None => Ok(Vec::new()),
        Some(Value::Array(list)) => list.iter().map(with_binary).collect(),
        Some(_) => Err("\"args\" must be an array".into()),
    }
}

/// `{"$bin": "<hex>"}` → binary, recursively.
fn with_binary(value: &Value) -> Result<Value, String> {
    Ok(match value {
        Value::Map(entries) => {
            if let [(k, Value::String(hex))] = entries.as_slice()
                && k.as_str() == Some("$bin")
            {
                return hex_bytes(hex.as_str().unwrap_or_default()).map(Value::Binary);
            }
            Value::Map(
                entries
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), with_binary(v)?)))
                    .collect::<Result<_, String>>()?,
            )
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(with_binary).collect::<Result<_, _>>()?)
        }
        other => other.clone(),
    })
}

fn hex_bytes(hex: &str) -> Result<Vec<u8>, String> {
    if hex.len() % 2 != 0 {
        return Err(format!("bad hex {hex:?}"));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or_else(|| format!("bad hex {hex:?}"))
        })
        .collect()
}
