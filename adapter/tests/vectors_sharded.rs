//! Golden tests against `sharded.json`: traffic of real Node clusters using
//! `createShardedAdapter` (`@socket.io/redis-adapter` 8.3.0 in `dynamic`, `static` and
//! `dynamic-private` modes, and a mixed 8.2.1 / 8.3.0 cluster). Every payload a node sent is
//! decoded and compared with the capture's JSON view; then the same operation, built from the
//! socketio crate's types the way `ClusterAdapter` builds it, must give Node's exact bytes on
//! the exact channel. Subscriptions and counting commands are checked against the mode rules.

#![allow(clippy::unwrap_used)]

mod support;

use std::borrow::Cow;
use std::collections::BTreeSet;

use socketio::Value;
use socketio_redis::SubscriptionMode;
use socketio_redis::wire::cluster::{
    Body, Message, ShardedChannels, looks_like_socket_id, opts_of,
};
use socketio_redis::wire::{self, Flags};
use support::vectors::{Vector, expected, load, to_hex};

const PREFIX: &str = "socket.io";

/// The namespace of a channel `socket.io#<nsp>#...`.
fn nsp_of(channel: &str) -> String {
    let rest = channel.strip_prefix("socket.io#").unwrap();
    rest.split('#').next().unwrap().to_owned()
}

fn mode_of(scenarios: &serde_json::Value, scenario: &str) -> SubscriptionMode {
    let mode = scenarios[scenario]["mode"].as_str().unwrap_or("dynamic");
    SubscriptionMode::parse(mode).unwrap()
}

fn spublished(vectors: &[Vector]) -> Vec<&Vector> {
    vectors.iter().filter(|v| v.command == "SPUBLISH").collect()
}

fn is_legacy(v: &Vector) -> bool {
    v.scenario == "sharded-mixed-8.2.1-8.3.0" && v.sender.starts_with("A82")
}

/// The uids of a scenario's nodes.
fn uids(scenarios: &serde_json::Value, scenario: &str) -> Vec<String> {
    scenarios[scenario]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("uid"))
        .map(|(_, v)| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_spublished_payload_decodes_as_captured() {
    let (vectors, _) = load("sharded.json");
    let published = spublished(&vectors);
    assert_eq!(published.len(), 56, "SPUBLISH vectors in sharded.json");
    for v in published {
        let mut value = wire::decode_any(&v.payload).unwrap();
        wire::normalize_dates(&mut value);
        assert_eq!(value, expected(&v.decoded), "{}", v.name());
        assert_eq!(
            v.payload.first() == Some(&b'{'),
            v.encoding == "json",
            "first-byte rule: {}",
            v.name()
        );
        let message = Message::decode(&v.payload).unwrap();
        if is_legacy(v) {
            assert_eq!(message.nsp, None, "8.2.1 sends no nsp: {}", v.name());
        } else {
            assert_eq!(message.nsp.as_deref(), Some(nsp_of(&v.channel).as_str()));
        }
    }
}

/// Rebuilds a message from the socketio crate's types, as `ClusterAdapter` builds it.
fn rebuild(message: &Message<'_>) -> Option<Message<'static>> {
    let body = match &message.body {
        Body::Broadcast {
            data,
            request_id,
            opts,
        } => {
            let flags = opts.flags.as_ref().unwrap();
            if flags.get("expectSingleResponse").is_some() {
                // RemoteSocket.emit: the socketio crate has no such flag.
                return None;
            }
            let options = opts.to_options();
            let mut new_flags = Flags::from_options(&options);
            if let Some(ms) = flags.timeout_ms() {
                new_flags.set("timeout", Value::from(ms));
            }
            Body::Broadcast {
                data: Cow::Owned(data.to_vec()),
                request_id: request_id.clone(),
                opts: opts_of(&options.rooms, &options.except, new_flags),
            }
        }
        Body::SocketsJoin { opts, rooms } => {
            let options = opts.to_options();
            Body::SocketsJoin {
                opts: opts_of(
                    &options.rooms,
                    &options.except,
                    Flags::from_options(&options),
                ),
                rooms: rooms.clone(),
            }
        }
        Body::SocketsLeave { opts, rooms } => {
            let options = opts.to_options();
            Body::SocketsLeave {
                opts: opts_of(
                    &options.rooms,
                    &options.except,
                    Flags::from_options(&options),
                ),
                rooms: rooms.clone(),
            }
        }
        Body::DisconnectSockets { opts, close } => {
            let options = opts.to_options();
            Body::DisconnectSockets {
                opts: opts_of(
                    &options.rooms,
                    &options.except,
                    Flags::from_options(&options),
                ),
                close: *close,
            }
        }
        Body::FetchSockets { opts, request_id } => {
            let options = opts.to_options();
            Body::FetchSockets {
                opts: opts_of(
                    &options.rooms,
                    &options.except,
                    Flags::from_options(&options),
                ),
                request_id: request_id.clone(),
            }
        }
        Body::FetchSocketsResponse {
            request_id,
            sockets,
        } => {
            // Node's sockets read into SocketInfo and written back: a Rust node answers
            // fetchSockets with Node's shape.
            let infos: Vec<_> = sockets
                .iter()
                .map(|s| wire::socket_from_value(s).unwrap())
                .collect();
            Body::FetchSocketsResponse {
                request_id: request_id.clone(),
                sockets: infos.iter().map(wire::socket_to_value).collect(),
            }
        }
        other => other.clone().into_owned_body(),
    };
    Some(Message {
        uid: message.uid.clone(),
        nsp: message.nsp.clone(),
        body,
    })
}

trait IntoOwned {
    fn into_owned_body(self) -> Body<'static>;
}

impl IntoOwned for Body<'_> {
    fn into_owned_body(self) -> Body<'static> {
        match self {
            Body::Broadcast {
                data,
                request_id,
                opts,
            } => Body::Broadcast {
                data: Cow::Owned(data.into_owned()),
                request_id,
                opts,
            },
            Body::ServerSideEmit { request_id, packet } => {
                Body::ServerSideEmit { request_id, packet }
            }
            Body::ServerSideEmitResponse { request_id, packet } => {
                Body::ServerSideEmitResponse { request_id, packet }
            }
            Body::BroadcastClientCount {
                request_id,
                client_count,
            } => Body::BroadcastClientCount {
                request_id,
                client_count,
            },
            Body::BroadcastAck { request_id, packet } => Body::BroadcastAck { request_id, packet },
            other => panic!("not expected here: {other:?}"),
        }
    }
}

fn kind_name(body: &Body<'_>) -> &'static str {
    match body {
        Body::Broadcast {
            request_id: None, ..
        } => "BROADCAST",
        Body::Broadcast { .. } => "BROADCAST (acks)",
        Body::SocketsJoin { .. } => "SOCKETS_JOIN",
        Body::SocketsLeave { .. } => "SOCKETS_LEAVE",
        Body::DisconnectSockets { .. } => "DISCONNECT_SOCKETS",
        Body::FetchSockets { .. } => "FETCH_SOCKETS",
        Body::FetchSocketsResponse { .. } => "FETCH_SOCKETS_RESPONSE",
        Body::ServerSideEmit {
            request_id: None, ..
        } => "SERVER_SIDE_EMIT",
        Body::ServerSideEmit { .. } => "SERVER_SIDE_EMIT (ack)",
        Body::ServerSideEmitResponse { .. } => "SERVER_SIDE_EMIT_RESPONSE",
        Body::BroadcastClientCount { .. } => "BROADCAST_CLIENT_COUNT",
        Body::BroadcastAck { .. } => "BROADCAST_ACK",
        _ => "other",
    }
}

#[test]
fn messages_reencode_to_node_bytes_on_node_channels() {
    let (vectors, scenarios) = load("sharded.json");
    let mut kinds = BTreeSet::new();
    let mut same_operation = 0;
    let mut msgpack = 0;
    for v in spublished(&vectors) {
        if is_legacy(v) {
            eprintln!("{}: decode only (8.2.1 key order, no nsp)", v.name());
            continue;
        }
        let message = Message::decode(&v.payload).unwrap();
        kinds.insert(kind_name(&message.body));
        // Round trip of the decoded message: same bytes, same encoding choice.
        assert_eq!(
            to_hex(&message.encode()),
            to_hex(&v.payload),
            "round trip: {}",
            v.name()
        );
        if v.encoding == "msgpack" {
            msgpack += 1;
        }
        // Where a node in this scenario's mode publishes it.
        let nsp = nsp_of(&v.channel);
        let channels = ShardedChannels::new(PREFIX, &nsp);
        let mode = mode_of(&scenarios, &v.scenario);
        let channel = if message.body.is_response() {
            // To the requester: the other node of the scenario.
            let requester = uids(&scenarios, &v.scenario)
                .into_iter()
                .find(|u| *u != message.uid)
                .unwrap();
            channels.private(&requester)
        } else {
            channels.for_message(&message, mode)
        };
        if nsp == "/" {
            assert_eq!(channel, v.channel, "channel: {}", v.name());
        }
        // The same operation from socketio types.
        match rebuild(&message) {
            Some(rebuilt) => {
                assert_eq!(
                    String::from_utf8_lossy(&rebuilt.encode()),
                    String::from_utf8_lossy(&v.payload),
                    "same operation: {}",
                    v.name()
                );
                assert_eq!(
                    to_hex(&rebuilt.encode()),
                    to_hex(&v.payload),
                    "{}",
                    v.name()
                );
                same_operation += 1;
            }
            None => eprintln!("{}: round trip only (RemoteSocket flag)", v.name()),
        }
    }
    assert_eq!(
        kinds.len(),
        12,
        "message kinds covered (all but the heartbeat variant's; with/without ack apart): {kinds:?}"
    );
    assert_eq!(msgpack, 5, "binary messages (msgpack)");
    assert_eq!(same_operation, 53);
}

#[test]
fn encoding_is_json_unless_binary() {
    // The same broadcast with and without binary: JSON, then msgpack of the same keys.
    let mut message = Message {
        uid: "261754499a87911c".into(),
        nsp: Some("/".into()),
        body: Body::Broadcast {
            data: Cow::Owned(vec![Value::from("e"), Value::from(1)]),
            request_id: None,
            opts: opts_of(&[], &[], Flags::new()),
        },
    };
    assert_eq!(message.encode()[0], b'{');
    message.body = Body::Broadcast {
        data: Cow::Owned(vec![Value::from("e"), Value::Binary(vec![1])]),
        request_id: None,
        opts: opts_of(&[], &[], Flags::new()),
    };
    assert_eq!(message.encode()[0], 0x84, "fixmap(4)");
    assert_eq!(Message::decode(&message.encode()).unwrap(), message);
    // Types that cannot hold binary stay JSON (their data has none anyway).
    let count = Message {
        uid: "u".into(),
        nsp: Some("/".into()),
        body: Body::BroadcastClientCount {
            request_id: "r".into(),
            client_count: 0,
        },
    };
    assert_eq!(
        &count.encode()[..],
        br#"{"type":11,"data":{"requestId":"r","clientCount":0},"uid":"u","nsp":"/"}"#
    );
}

/// `SSUBSCRIBE` / `SUNSUBSCRIBE` / `PUBSUB` commands of the capture, against the mode rules a
/// Rust node follows.
#[test]
fn subscriptions_and_counting_follow_the_mode() {
    let (vectors, scenarios) = load("sharded.json");
    let mut checked = 0;
    for v in &vectors {
        let args: Vec<&str> = match v.decoded.get("command").and_then(|c| c.as_array()) {
            Some(c) => c.iter().skip(1).map(|a| a.as_str().unwrap()).collect(),
            None => continue,
        };
        match v.command.as_str() {
            "SSUBSCRIBE" | "SUNSUBSCRIBE" => {
                // One channel per command (5.1).
                assert_eq!(args.len(), 1, "{}", v.name());
                let channel = args[0];
                let nsp = nsp_of(channel);
                let channels = ShardedChannels::new(PREFIX, &nsp);
                if channel == channels.main() {
                    checked += 1;
                    continue;
                }
                let inner = channel
                    .strip_prefix(channels.main())
                    .unwrap()
                    .strip_suffix('#')
                    .unwrap();
                if inner.len() == 16 && inner.bytes().all(|b| b.is_ascii_hexdigit()) {
                    // A private channel: a 16-hex uid (2.5).
                    checked += 1;
                    continue;
                }
                // A room channel: only in the dynamic modes, socket-id rooms only in
                // dynamic-private (5.2).
                let mode = mode_of(&scenarios, &v.scenario);
                let sids = &scenarios[&v.scenario]["sids"];
                let is_sid = sids
                    .as_object()
                    .unwrap()
                    .values()
                    .any(|s| s.as_str() == Some(inner));
                assert_eq!(is_sid, looks_like_socket_id(inner), "{}", v.name());
                assert!(mode.subscribes_room(is_sid), "{}: {mode:?}", v.name());
                assert_eq!(channels.room(inner), channel);
                checked += 1;
            }
            "PUBSUB" if args.first() == Some(&"SHARDNUMSUB") => {
                let channels = ShardedChannels::new(PREFIX, &nsp_of(args[1]));
                assert_eq!(args, ["SHARDNUMSUB", channels.main()], "{}", v.name());
                checked += 1;
            }
            _ => {}
        }
    }
    assert_eq!(checked, 88);
    // Startup order per namespace: main, then private (Node's constructor).
    for scenario in [
        "sharded-8.3.0-dynamic",
        "sharded-8.3.0-static",
        "sharded-8.3.0-dynamic-private",
    ] {
        let a_sub: Vec<&str> = vectors
            .iter()
            .filter(|v| v.scenario == scenario && v.sender == "A-sub" && v.operation == "startup")
            .map(|v| v.channel.as_str())
            .collect();
        let uid_a = scenarios[scenario]["uidA"].as_str().unwrap();
        let channels = ShardedChannels::new(PREFIX, "/");
        assert_eq!(a_sub[0], channels.main(), "{scenario}");
        assert_eq!(a_sub[1], channels.private(uid_a), "{scenario}");
    }
}

#[test]
fn legacy_and_hostile_messages() {
    let (vectors, _) = load("sharded.json");
    // 8.2.1 messages (uid first, no nsp) decode; a Rust node takes them for its namespace.
    let legacy: Vec<_> = vectors
        .iter()
        .filter(|v| is_legacy(v) && v.command == "SPUBLISH")
        .collect();
    assert_eq!(legacy.len(), 2);
    for v in legacy {
        let m = Message::decode(&v.payload).unwrap();
        assert!(matches!(m.body, Body::Broadcast { .. }), "{}", v.name());
        assert_eq!(m.uid, "b7dbfb7126555c97");
    }
    // The classic emitter's PUBLISH is not a cluster message (it reaches no sharded node).
    let emitter = vectors
        .iter()
        .find(|v| v.sender == "emitter" && v.command == "PUBLISH")
        .unwrap();
    assert!(Message::decode(&emitter.payload).is_err());
    // Every truncation of every payload fails cleanly (no panic).
    for v in spublished(&vectors) {
        for cut in 0..v.payload.len() {
            let _ = Message::decode(&v.payload[..cut]);
        }
    }
}
