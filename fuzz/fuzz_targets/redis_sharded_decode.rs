//! Fuzzes the sharded Redis adapter decoder (`socketio_redis::wire::cluster::Message`): the
//! ClusterAdapter envelope `{type, data, uid, nsp}` a node reads from `SPUBLISH`es, JSON or
//! msgpack by the first byte. Anyone who can SPUBLISH can send these bytes.
//!
//! Whatever decodes must reach a canonical form in both encodings: encoding it, decoding that,
//! and encoding again gives the same bytes. The channel a message would be published on must be
//! computable for every subscription mode.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socketio_redis::SubscriptionMode;
use socketio_redis::wire::cluster::{Message, ShardedChannels};

fuzz_target!(|data: &[u8]| {
    let Ok(message) = Message::decode(data) else {
        return;
    };
    for encode in [
        Message::encode,
        Message::encode_json,
        Message::encode_msgpack,
    ] {
        let first = encode(&message);
        let again = Message::decode(&first).expect("own message decodes");
        assert_eq!(first, encode(&again), "message not a fixpoint: {message:?}");
    }
    let channels = ShardedChannels::new("socket.io", message.nsp.as_deref().unwrap_or("/"));
    for mode in ["static", "dynamic", "dynamic-private"] {
        let mode = SubscriptionMode::parse(mode).expect("known mode");
        let _ = channels.for_message(&message, mode);
    }
});
