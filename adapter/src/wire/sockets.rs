//! Sockets in REMOTE_FETCH responses: `{id, handshake, rooms, data}` (wire notes 3.3).
//!
//! `handshake` is Node's handshake object minus `sessionStore`: `headers, time, address,
//! xdomain, secure, issued, url, query, auth`. Node code reading a remote socket's
//! `handshake.headers` or `handshake.auth` expects those shapes, so a Rust node writes the same
//! fields in the same order, and reads them back into a [`Handshake`].

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};
use socketio::{Handshake, SocketInfo, Value, map_get};

use super::date::{js_date_string, parse_js_date_string};
use super::room_of;

fn object(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

/// A local socket as a REMOTE_FETCH response lists it. `rooms` starts with the socket's own id
/// room, as Node's `socket.rooms` does.
#[must_use]
pub fn socket_to_value(info: &SocketInfo) -> Value {
    let mut rooms: Vec<&str> = info
        .rooms
        .iter()
        .map(String::as_str)
        .filter(|r| *r != info.id)
        .collect();
    rooms.sort_unstable();
    let rooms = std::iter::once(info.id.as_str())
        .chain(rooms)
        .map(Value::from)
        .collect();
    object(vec![
        ("id", Value::from(info.id.as_str())),
        ("handshake", handshake_to_value(&info.handshake)),
        ("rooms", Value::Array(rooms)),
        ("data", info.data.clone()),
    ])
}

/// A socket from another node's REMOTE_FETCH response; `None` without a string `id`. Missing
/// or odd handshake fields get neutral values.
#[must_use]
pub fn socket_from_value(value: &Value) -> Option<SocketInfo> {
    let id = map_get(value, "id")?.as_str()?.to_owned();
    let rooms = match map_get(value, "rooms") {
        Some(Value::Array(items)) => items.iter().filter_map(room_of).collect(),
        _ => vec![id.clone()],
    };
    let handshake = handshake_from_value(map_get(value, "handshake"));
    Some(SocketInfo {
        id,
        handshake,
        rooms,
        data: map_get(value, "data").cloned().unwrap_or(Value::Nil),
    })
}

fn handshake_to_value(h: &Handshake) -> Value {
    object(vec![
        ("headers", headers_to_value(&h.headers)),
        ("time", Value::from(js_date_string(h.time))),
        (
            "address",
            h.address
                .map_or(Value::Nil, |a| Value::from(a.ip().to_string())),
        ),
        ("xdomain", Value::Boolean(h.xdomain)),
        ("secure", Value::Boolean(h.secure)),
        ("issued", Value::from(h.issued)),
        ("url", Value::from(h.url.as_str())),
        ("query", query_to_value(&h.query)),
        ("auth", h.auth.clone()),
    ])
}

/// Node's `req.headers`: lower-case names; repeated headers joined with `, ` (`; ` for
/// `cookie`), `set-cookie` as an array.
fn headers_to_value(headers: &HeaderMap) -> Value {
    let mut entries = Vec::with_capacity(headers.keys_len());
    for name in headers.keys() {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        let value = match name.as_str() {
            "set-cookie" => Value::Array(values.into_iter().map(Value::from).collect()),
            "cookie" => Value::from(values.join("; ")),
            _ => Value::from(values.join(", ")),
        };
        entries.push((Value::from(name.as_str()), value));
    }
    Value::Map(entries)
}

/// Node's parsed query: a repeated key becomes an array.
fn query_to_value(query: &[(String, String)]) -> Value {
    let mut entries: Vec<(String, Vec<&str>)> = Vec::new();
    for (k, v) in query {
        match entries.iter_mut().find(|(name, _)| name == k) {
            Some((_, values)) => values.push(v),
            None => entries.push((k.clone(), vec![v])),
        }
    }
    Value::Map(
        entries
            .into_iter()
            .map(|(k, values)| {
                let v = match values.as_slice() {
                    [one] => Value::from(*one),
                    many => Value::Array(many.iter().map(|v| Value::from(*v)).collect()),
                };
                (Value::from(k), v)
            })
            .collect(),
    )
}

fn handshake_from_value(value: Option<&Value>) -> Handshake {
    let field = |name: &str| value.and_then(|v| map_get(v, name));
    let issued = match field("issued") {
        Some(Value::Integer(n)) => n.as_u64().unwrap_or(0),
        Some(Value::F64(f)) if f.is_finite() && *f >= 0.0 => *f as u64,
        _ => 0,
    };
    let time = field("time")
        .and_then(Value::as_str)
        .and_then(parse_js_date_string)
        .or_else(|| UNIX_EPOCH.checked_add(Duration::from_millis(issued)))
        .unwrap_or(UNIX_EPOCH);
    Handshake {
        headers: headers_from_value(field("headers")).into(),
        time,
        address: field("address")
            .and_then(Value::as_str)
            .and_then(|a| a.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 0)),
        xdomain: field("xdomain").and_then(Value::as_bool).unwrap_or(false),
        secure: field("secure").and_then(Value::as_bool).unwrap_or(false),
        issued,
        url: field("url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        query: query_from_value(field("query")).into(),
        auth: field("auth")
            .cloned()
            .unwrap_or_else(|| Value::Map(Vec::new())),
    }
}

fn headers_from_value(value: Option<&Value>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let Some(Value::Map(entries)) = value else {
        return headers;
    };
    for (name, value) in entries {
        let Some(name) = name
            .as_str()
            .and_then(|n| HeaderName::from_bytes(n.as_bytes()).ok())
        else {
            continue;
        };
        let values: Vec<&str> = match value {
            Value::String(s) => s.as_str().into_iter().collect(),
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for v in values {
            if let Ok(v) = HeaderValue::from_str(v) {
                headers.append(name.clone(), v);
            }
        }
    }
    headers
}

fn query_from_value(value: Option<&Value>) -> Vec<(String, String)> {
    let Some(Value::Map(entries)) = value else {
        return Vec::new();
    };
    let mut query = Vec::new();
    for (k, v) in entries {
        let Some(k) = k.as_str() else { continue };
        match v {
            Value::Array(items) => {
                for item in items {
                    query.push((k.to_owned(), js_string(item)));
                }
            }
            other => query.push((k.to_owned(), js_string(other))),
        }
    }
    query
}

fn js_string(v: &Value) -> String {
    match v.as_str() {
        Some(s) => s.to_owned(),
        None => socketio::value::to_json_string(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_survives_the_round_trip() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:1"));
        headers.append("accept", HeaderValue::from_static("a"));
        headers.append("accept", HeaderValue::from_static("b"));
        let info = SocketInfo {
            id: "sid".into(),
            handshake: Handshake {
                headers: headers.into(),
                time: UNIX_EPOCH + Duration::from_secs(1_795_854_075),
                address: Some("127.0.0.1:5555".parse().unwrap()),
                xdomain: true,
                secure: false,
                issued: 1_795_854_075_224,
                url: "/socket.io/?x=1&x=2".into(),
                query: vec![("x".into(), "1".into()), ("x".into(), "2".into())].into(),
                auth: Value::Map(vec![("k".into(), 1.into())]),
            },
            rooms: vec!["z".into(), "sid".into(), "a".into()],
            data: Value::from("d"),
        };
        let v = socket_to_value(&info);
        assert_eq!(
            socketio::value::to_json_string(&v),
            r#"{"id":"sid","handshake":{"headers":{"host":"127.0.0.1:1","accept":"a, b"},"time":"Sat Nov 28 2026 08:21:15 GMT+0000 (Coordinated Universal Time)","address":"127.0.0.1","xdomain":true,"secure":false,"issued":1795854075224,"url":"/socket.io/?x=1&x=2","query":{"x":["1","2"]},"auth":{"k":1}},"rooms":["sid","a","z"],"data":"d"}"#
        );
        let back = socket_from_value(&v).unwrap();
        assert_eq!(back.id, "sid");
        assert_eq!(back.rooms, ["sid", "a", "z"]);
        assert_eq!(back.handshake.query, info.handshake.query);
        assert_eq!(back.handshake.time, info.handshake.time);
        assert_eq!(back.handshake.issued, info.handshake.issued);
        assert_eq!(
            back.handshake.address.unwrap().ip(),
            info.handshake.address.unwrap().ip()
        );
        assert_eq!(back.handshake.headers.get("host").unwrap(), "127.0.0.1:1");
        assert!(socket_from_value(&Value::from(1)).is_none());
    }
}
