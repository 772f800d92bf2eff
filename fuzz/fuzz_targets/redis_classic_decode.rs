//! Fuzzes the classic Redis adapter decoders (`socketio_redis::wire`): what a node reads from
//! `PUBLISH`es of other nodes and of `@socket.io/redis-emitter` — broadcasts (msgpack
//! `[uid, packet, opts]`), requests and responses (JSON, or msgpack for BROADCAST / BROADCAST_ACK),
//! and the sockets of REMOTE_FETCH responses. Anyone who can PUBLISH can send these bytes.
//!
//! Each input goes through every decoder (a node tells them apart by channel, not by content).
//! Whatever decodes must reach a canonical form: encoding it, decoding that, and encoding again
//! gives the same bytes (so a relayed or re-published message does not drift).
#![no_main]

use libfuzzer_sys::fuzz_target;
use socketio_redis::wire::{
    Broadcast, Layout, Request, Response, decode_any, normalize_dates, socket_from_value,
    socket_to_value,
};

fuzz_target!(|data: &[u8]| {
    let _ = decode_any(data);

    if let Ok(broadcast) = Broadcast::decode(data) {
        for layout in [Layout::Node, Layout::Emitter] {
            let first = broadcast.encode(layout);
            let again = Broadcast::decode(&first).expect("own broadcast decodes");
            assert_eq!(
                first,
                again.encode(layout),
                "broadcast not a fixpoint: {broadcast:?}"
            );
        }
        // What the receiving node does before the local broadcast.
        let mut args = broadcast.packet.data;
        args.iter_mut().for_each(normalize_dates);
    }

    if let Ok(request) = Request::decode(data) {
        let first = request.encode();
        let again = Request::decode(&first).expect("own request decodes");
        assert_eq!(first, again.encode(), "request not a fixpoint: {request:?}");
    }

    if let Ok(response) = Response::decode(data) {
        let first = response.encode();
        let again = Response::decode(&first).expect("own response decodes");
        assert_eq!(
            first,
            again.encode(),
            "response not a fixpoint: {response:?}"
        );
        if let Response::Sockets { sockets, .. } = &response {
            for value in sockets {
                // A fetched socket read back and listed again lists the same.
                if let Some(info) = socket_from_value(value) {
                    let listed = socket_to_value(&info);
                    let back = socket_from_value(&listed).expect("own socket listing decodes");
                    assert_eq!(
                        listed,
                        socket_to_value(&back),
                        "socket listing not a fixpoint: {value:?}"
                    );
                }
            }
        }
    }
});
