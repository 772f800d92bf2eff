//! Fuzzes the Engine.IO packet decoder (`engineio::fuzz::decode_packet`): the input is one
//! WebSocket text frame (when it is valid UTF-8) and one binary frame. The entry point asserts
//! the error kinds, the re-encode round trip, and that a binary message survives its `b64` text
//! form.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    engineio::fuzz::decode_packet(data);
});
