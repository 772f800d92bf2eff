//! The `socketio` and `app` profiles of CONTRACT.md on the `socketio` crate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socketio::{
    BroadcastOperator, Config, Namespace, ParserKind, RecoveryConfig, Socket, SocketIo, Value,
    map_get,
};

use crate::settings::Settings;

/// The Socket.IO options of the settings.
pub fn socketio_config(settings: &Settings) -> Config {
    let mut config = Config::default();
    config.engine = settings.engine_config("/socket.io/");
    config.parser = if settings.msgpack {
        ParserKind::Msgpack
    } else {
        ParserKind::Json
    };
    config.recovery = settings.recovery.map(|max| {
        let mut recovery = RecoveryConfig::default();
        recovery.max_disconnection_duration = max;
        recovery
    });
    config
}

/// Profile `socketio`: the server the official Socket.IO protocol suite expects.
pub fn socketio_profile(settings: &Settings) -> SocketIo {
    let mut config = socketio_config(settings);
    config.connect_timeout = Duration::from_millis(1000);
    let io = SocketIo::new(config);
    // The suite's client (ws ≥ 8.17) handles all frames of one TCP read at once and only starts
    // listening for `auth` after the CONNECT reply: if both arrive in one read, it misses `auth`
    // (Node's own server fails it now and then). So `auth` leaves a moment after the reply —
    // or at once if the client sends an event first, so it still comes before any answer.
    let pending: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
    let send_auth = {
        let pending = pending.clone();
        move |socket: &Socket| {
            let auth = pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(socket.id());
            if let Some(auth) = auth {
                let _ = socket.emit("auth", vec![auth]);
            }
        }
    };
    for name in ["/", "/custom"] {
        let ns = io.of(name);
        let (pending_c, send_auth_c) = (pending.clone(), send_auth.clone());
        ns.on_connection(move |socket| {
            let auth = socket.handshake().auth.clone();
            pending_c
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(socket.id().to_owned(), auth);
            let socket = socket.clone();
            let send_auth = send_auth_c.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                send_auth(&socket);
            });
        });
        let pending = pending.clone();
        ns.on_disconnect(move |socket, _| {
            pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(socket.id());
        });
        let send_auth = send_auth.clone();
        ns.on_any(move |socket, _, _| send_auth(socket));
    }
    io.of("/")
        .on("message", |socket, args, _| {
            let _ = socket.emit("message-back", args);
        })
        .on("message-with-ack", |_, args, ack| {
            if let Some(ack) = ack {
                ack.send(args);
            }
        });
    io
}

/// Profile `app`: namespaces `/` and `/chat` with the events and ops of CONTRACT.md.
pub fn app_profile(settings: &Settings, io: &SocketIo) {
    for name in ["/", "/chat"] {
        setup_app_namespace(io.of(name), settings.node_name.clone());
    }
}

fn string(value: &Value) -> Option<&str> {
    value.as_str()
}

fn string_list(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

fn sorted_strings(mut list: Vec<String>) -> Value {
    list.sort();
    Value::Array(list.into_iter().map(Value::from).collect())
}

fn setup_app_namespace(ns: Namespace, node_name: String) {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    {
        let received = received.clone();
        ns.on_server_side(move |event, args, ack| {
            received
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(map(vec![
                    ("event", Value::from(event)),
                    ("args", Value::Array(args)),
                ]));
            if let Some(ack) = ack {
                ack.send(vec![Value::from(node_name.as_str())]);
            }
        });
    }
    ns.on_connection(|socket| {
        if socket.recovered() {
            return;
        }
        let auth = socket.handshake().auth.clone();
        if let Some(rooms) = map_get(&auth, "rooms").and_then(string_list) {
            socket.join(rooms);
        }
        socket.set_data(auth);
    })
    .on("echo", |_, args, ack| {
        if let Some(ack) = ack {
            ack.send(args);
        }
    })
    .on("broadcast", |socket, args, ack| {
        let payload = args.into_iter().next().unwrap_or(Value::Nil);
        let _ = socket.ns().emit("bcast", vec![payload]);
        if let Some(ack) = ack {
            ack.send(vec![]);
        }
    })
    .on("to", |socket, args, ack| {
        let mut args = args.into_iter();
        if let Some(Value::String(room)) = args.next()
            && let Some(room) = room.into_str()
        {
            let payload = args.next().unwrap_or(Value::Nil);
            let _ = socket.ns().to([room]).emit("bcast", vec![payload]);
        }
        if let Some(ack) = ack {
            ack.send(vec![]);
        }
    })
    .on("join", |socket, args, ack| {
        match args.first() {
            Some(Value::String(room)) => socket.join([room.as_str().unwrap_or_default()]),
            Some(list) => {
                if let Some(rooms) = string_list(list) {
                    socket.join(rooms);
                }
            }
            None => {}
        }
        if let Some(ack) = ack {
            ack.send(vec![]);
        }
    })
    .on("leave", |socket, args, ack| {
        if let Some(room) = args.first().and_then(string) {
            socket.leave(room);
        }
        if let Some(ack) = ack {
            ack.send(vec![]);
        }
    })
    .on("op", move |socket, args, ack| {
        let ns = socket.ns().clone();
        let spec = args.into_iter().next().unwrap_or(Value::Nil);
        let reply = |result: Result<Value, String>| {
            let result =
                result.unwrap_or_else(|message| map(vec![("error", Value::from(message))]));
            if let Some(ack) = ack {
                ack.send(vec![result]);
            }
        };
        // Ops that only send run here, in arrival order (as Node runs them synchronously in
        // the handler); ops that wait for answers run in a task.
        match run_sync_op(&ns, &received, &spec) {
            Some(result) => reply(result),
            None => {
                tokio::spawn(async move { reply(run_async_op(&ns, &spec).await) });
            }
        }
    });
}

fn field<'a>(spec: &'a Value, name: &str) -> Option<&'a Value> {
    map_get(spec, name).filter(|v| !v.is_nil())
}

fn required_string(spec: &Value, name: &str) -> Result<String, String> {
    field(spec, name)
        .and_then(string)
        .map(str::to_owned)
        .ok_or_else(|| format!("\"{name}\" must be a string"))
}

fn optional_rooms(spec: &Value, name: &str) -> Result<Vec<String>, String> {
    match field(spec, name) {
        None => Ok(Vec::new()),
        Some(v) => string_list(v).ok_or_else(|| format!("\"{name}\" must be an array of strings")),
    }
}

fn optional_bool(spec: &Value, name: &str) -> Result<bool, String> {
    match field(spec, name) {
        None => Ok(false),
        Some(Value::Boolean(b)) => Ok(*b),
        Some(_) => Err(format!("\"{name}\" must be a boolean")),
    }
}

fn args_of(spec: &Value) -> Result<Vec<Value>, String> {
    match field(spec, "args") {
        None => Ok(Vec::new()),
        Some(Value::Array(args)) => Ok(args.clone()),
        Some(_) => Err("\"args\" must be an array".into()),
    }
}

fn optional_timeout(spec: &Value) -> Result<Option<Duration>, String> {
    let Some(v) = field(spec, "timeout") else {
        return Ok(None);
    };
    let ms = match v {
        Value::Integer(i) => i.as_f64(),
        Value::F32(f) => Some(f64::from(*f)),
        Value::F64(f) => Some(*f),
        _ => None,
    };
    match ms {
        Some(ms) if ms.is_finite() && ms >= 0.0 => Ok(Some(Duration::from_secs_f64(ms / 1000.0))),
        _ => Err("\"timeout\" must be a non-negative number".into()),
    }
}

/// `io.of(nsp).to(rooms).except(except).local.volatile`, as the spec selects.
fn targets(ns: &Namespace, spec: &Value) -> Result<BroadcastOperator, String> {
    let mut op = ns
        .to(optional_rooms(spec, "rooms")?)
        .except(optional_rooms(spec, "except")?);
    if optional_bool(spec, "local")? {
        op = op.local();
    }
    if optional_bool(spec, "volatile")? {
        op = op.volatile();
    }
    Ok(op)
}

fn ack_result(responses: socketio::AckResponses) -> Value {
    let err = if responses.timed_out {
        Value::from("timeout")
    } else {
        Value::Nil
    };
    let list = responses
        .responses
        .into_iter()
        .map(|args| args.into_iter().next().unwrap_or(Value::Nil))
        .collect();
    map(vec![("err", err), ("responses", Value::Array(list))])
}

fn op_name(spec: &Value) -> Result<String, String> {
    if !spec.is_map() {
        return Err("op spec must be an object".into());
    }
    Ok(field(spec, "op")
        .and_then(string)
        .unwrap_or_default()
        .to_owned())
}

/// Runs an op that completes without waiting; `None` for the ops that wait (run those with
/// [`run_async_op`]).
fn run_sync_op(
    ns: &Namespace,
    received: &Mutex<Vec<Value>>,
    spec: &Value,
) -> Option<Result<Value, String>> {
    let name = match op_name(spec) {
        Ok(name) => name,
        Err(err) => return Some(Err(err)),
    };
    let result = match name.as_str() {
        "emit" if field(spec, "timeout").is_none() => (|| {
            let event = required_string(spec, "event")?;
            let args = args_of(spec)?;
            targets(ns, spec)?
                .emit(&event, args)
                .map_err(|e| e.to_string())?;
            Ok(map(vec![]))
        })(),
        "socketsJoin" => (|| {
            let room = required_string(spec, "room")?;
            targets(ns, spec)?.sockets_join([room]);
            Ok(map(vec![]))
        })(),
        "socketsLeave" => (|| {
            let room = required_string(spec, "room")?;
            targets(ns, spec)?.sockets_leave([room]);
            Ok(map(vec![]))
        })(),
        "disconnectSockets" => (|| {
            let close = optional_bool(spec, "close")?;
            targets(ns, spec)?.disconnect_sockets(close);
            Ok(map(vec![]))
        })(),
        "serverSideEmit" if field(spec, "timeout").is_none() => (|| {
            let event = required_string(spec, "event")?;
            let args = args_of(spec)?;
            ns.server_side_emit(&event, args)
                .map_err(|e| e.to_string())?;
            Ok(map(vec![]))
        })(),
        "received" => {
            let events = received
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            Ok(map(vec![("events", Value::Array(events))]))
        }
        "emit" | "serverSideEmit" | "fetchSockets" | "serverCount" | "allRooms" | "remote" => {
            return None;
        }
        other => Err(format!("unknown op \"{other}\"")),
    };
    Some(result)
}

/// Runs an op that waits for answers (from this node's clients or the cluster).
async fn run_async_op(ns: &Namespace, spec: &Value) -> Result<Value, String> {
    match op_name(spec)?.as_str() {
        "emit" => {
            let event = required_string(spec, "event")?;
            let args = args_of(spec)?;
            let timeout = optional_timeout(spec)?.unwrap_or_default();
            let op = targets(ns, spec)?;
            let responses = op
                .timeout(timeout)
                .emit_with_ack(&event, args)
                .await
                .map_err(|e| e.to_string())?;
            Ok(ack_result(responses))
        }
        "serverSideEmit" => {
            let event = required_string(spec, "event")?;
            let args = args_of(spec)?;
            let timeout = optional_timeout(spec)?.unwrap_or_default();
            let responses = ns
                .server_side_emit_with_ack(&event, args, timeout)
                .await
                .map_err(|e| e.to_string())?;
            Ok(ack_result(responses))
        }
        "fetchSockets" => {
            let mut sockets = targets(ns, spec)?
                .fetch_sockets()
                .await
                .map_err(|e| e.to_string())?;
            sockets.sort_by(|a, b| a.id().cmp(b.id()));
            let list = sockets
                .iter()
                .map(|s| {
                    map(vec![
                        ("id", Value::from(s.id())),
                        ("rooms", sorted_strings(s.rooms().to_vec())),
                        ("data", s.data().clone()),
                    ])
                })
                .collect();
            Ok(map(vec![("sockets", Value::Array(list))]))
        }
        "serverCount" => {
            let count = ns.adapter().server_count().await;
            Ok(map(vec![("count", Value::from(count as u64))]))
        }
        "allRooms" => {
            // Rooms exist only while they hold sockets: the union of every socket's rooms
            // across the cluster (as the Node testbed computes it).
            let sockets = ns
                .broadcast()
                .fetch_sockets()
                .await
                .map_err(|e| e.to_string())?;
            let mut rooms: Vec<String> = sockets
                .iter()
                .flat_map(|s| s.rooms().iter().cloned())
                .collect();
            rooms.sort();
            rooms.dedup();
            Ok(map(vec![("rooms", sorted_strings(rooms))]))
        }
        "remote" => {
            let id = required_string(spec, "id")?;
            let action = required_string(spec, "action")?;
            let (event, args, room) = match action.as_str() {
                "emit" => (Some(required_string(spec, "event")?), args_of(spec)?, None),
                "join" | "leave" => (None, Vec::new(), Some(required_string(spec, "room")?)),
                "disconnect" => (None, Vec::new(), None),
                other => return Err(format!("unknown remote action \"{other}\"")),
            };
            let sockets = ns
                .to([id.as_str()])
                .fetch_sockets()
                .await
                .map_err(|e| e.to_string())?;
            let Some(socket) = sockets.into_iter().find(|s| s.id() == id) else {
                return Ok(map(vec![("found", Value::from(false))]));
            };
            match (action.as_str(), event, room) {
                ("emit", Some(event), _) => socket.emit(&event, args).map_err(|e| e.to_string())?,
                ("join", _, Some(room)) => socket.join([room]),
                ("leave", _, Some(room)) => socket.leave([room]),
                _ => socket.disconnect(false),
            }
            Ok(map(vec![("found", Value::from(true))]))
        }
        other => Err(format!("unknown op \"{other}\"")),
    }
}
