//! Fuzzes the Engine.IO polling payload decoder (`engineio::fuzz::decode_payload`): the input is
//! one POST body. The entry point asserts that decoding agrees with the WebSocket frame decoder
//! packet by packet and that the decoded packets re-encode to a payload that decodes to them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    engineio::fuzz::decode_payload(data);
});
