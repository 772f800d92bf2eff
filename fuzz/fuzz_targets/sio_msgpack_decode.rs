//! Fuzzes the msgpack Socket.IO parser (`socketio::parser::msgpack::decode`).
//!
//! Every decoded packet must survive a canonical round trip: re-encoding what decoding the
//! encoded packet gives yields the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socketio::parser::msgpack::{decode, encode, read_value};

fuzz_target!(|data: &[u8]| {
    let _ = read_value(data);
    if let Ok(packet) = decode(data) {
        let first = encode(&packet);
        let again = decode(&first).expect("own output decodes");
        let second = encode(&again);
        assert_eq!(
            first, second,
            "canonical form is not a fixpoint for {packet:?}"
        );
    }
});
