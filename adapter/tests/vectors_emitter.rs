//! Golden tests against `emitter.json`: what `@socket.io/redis-emitter` 5.1.0 (and one 4.1.1
//! vector) published. Every payload decodes as captured (a Rust node accepts the emitter's
//! messages), and the Rust [`Emitter`] doing the same operation publishes the same bytes on the
//! same channel.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use socketio::Value;
use socketio_redis::wire::{self, Broadcast, EMITTER_UID, Layout, Request};
use socketio_redis::{Emitter, Error};
use support::vectors::{expected, load, to_hex};

type Sent = Arc<Mutex<Vec<(String, Bytes)>>>;

fn capturing_emitter() -> (Emitter, Sent) {
    let sent: Sent = Arc::default();
    let log = sent.clone();
    let emitter = Emitter::with_publisher("socket.io", move |channel, payload| {
        log.lock().unwrap().push((channel, payload));
        Box::pin(async { Ok(()) })
    });
    (emitter, sent)
}

#[test]
fn every_payload_decodes_as_captured() {
    let (vectors, _) = load("emitter.json");
    assert_eq!(vectors.len(), 22);
    for v in &vectors {
        assert_eq!(v.sender, "emitter");
        let mut value = if v.channel.contains("-request#") {
            let request = Request::decode(&v.payload).unwrap();
            assert_eq!(
                to_hex(&request.encode()),
                to_hex(&v.payload),
                "{}",
                v.name()
            );
            match request {
                Request::ServerSideEmit { uid, .. } => assert_eq!(uid, EMITTER_UID),
                other => assert_eq!(other.uid(), None, "{}: no uid", v.name()),
            }
            wire::decode_any(&v.payload).unwrap()
        } else {
            let msg = Broadcast::decode(&v.payload).unwrap();
            assert_eq!(msg.uid, EMITTER_UID);
            assert_eq!(
                to_hex(&msg.encode(Layout::Emitter)),
                to_hex(&v.payload),
                "{}",
                v.name()
            );
            socketio::parser::msgpack::read_value(&v.payload).unwrap()
        };
        wire::normalize_dates(&mut value);
        assert_eq!(value, expected(&v.decoded), "{}", v.name());
    }
}

/// `[event, ...args]` of a captured broadcast or server-side emit.
fn event_and_args(payload: &[u8], request: bool) -> (String, Vec<Value>) {
    let data = if request {
        match Request::decode(payload).unwrap() {
            Request::ServerSideEmit { data, .. } => data,
            other => panic!("{other:?}"),
        }
    } else {
        Broadcast::decode(payload).unwrap().packet.data
    };
    let mut data = data.into_iter();
    let event = data.next().unwrap().as_str().unwrap().to_owned();
    (event, data.collect())
}

#[tokio::test]
async fn the_rust_emitter_publishes_the_same_bytes() -> Result<(), Error> {
    let (vectors, scenarios) = load("emitter.json");
    let sids = &scenarios["emitter-5.1.0"]["sids"];
    let b2 = sids["b2"].as_str().unwrap();
    let (e, sent) = capturing_emitter();
    for v in &vectors {
        sent.lock().unwrap().clear();
        let request = v.channel.contains("-request#");
        let (event, args) = if v.operation.contains("socketsJoin")
            || v.operation.contains("socketsLeave")
            || v.operation.contains("disconnectSockets")
        {
            (String::new(), Vec::new())
        } else {
            event_and_args(&v.payload, request)
        };
        match v.seq {
            0 | 9 | 10 | 11 => e.emit(&event, args).await?,
            1 => e.to(["room1"]).emit(&event, args).await?,
            2 => e.to(["room1", "room2"]).emit(&event, args).await?,
            3 => e.except(["room2"]).emit(&event, args).await?,
            4 => e.to(["room1"]).except(["room2"]).emit(&event, args).await?,
            5 => e.to([b2]).emit(&event, args).await?,
            6 => e.volatile().emit(&event, args).await?,
            7 => e.compress(false).emit(&event, args).await?,
            8 => {
                e.volatile()
                    .compress(false)
                    .to(["room2"])
                    .emit(&event, args)
                    .await?;
            }
            12 => e.of("/chat").emit(&event, args).await?,
            13 => e.of("chat").to(["room1"]).emit(&event, args).await?,
            14 => e.server_side_emit(&event, args).await?,
            15 => e.to([b2]).sockets_join(["room3"]).await?,
            16 => e.in_(["room3"]).emit(&event, args).await?,
            17 => e.sockets_join(["roomX", "roomY"]).await?,
            18 => e.to(["room3"]).sockets_leave(["room3"]).await?,
            19 => {
                e.except(["room1"])
                    .sockets_leave(["roomX", "roomY"])
                    .await?
            }
            20 => e.to([b2]).disconnect_sockets(false).await?,
            21 => {
                e.to(["room2"])
                    .except(["room1"])
                    .disconnect_sockets(true)
                    .await?
            }
            other => panic!("no operation for vector #{other}"),
        }
        let sent = sent.lock().unwrap().clone();
        assert_eq!(sent.len(), 1, "{}", v.name());
        assert_eq!(sent[0].0, v.channel, "channel of {}", v.name());
        assert_eq!(
            to_hex(&sent[0].1),
            to_hex(&v.payload),
            "bytes of {}",
            v.name()
        );
    }
    Ok(())
}

#[tokio::test]
async fn reserved_event_names_are_refused() {
    let (e, sent) = capturing_emitter();
    for name in socketio::RESERVED_EVENTS {
        assert_eq!(
            e.emit(name, vec![]).await,
            Err(Error::ReservedEvent(name.to_owned()))
        );
    }
    assert!(sent.lock().unwrap().is_empty());
}
