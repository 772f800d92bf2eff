//! Fuzzes the default Socket.IO parser (`socketio::JsonDecoder`).
//!
//! The input is used twice:
//! 1. whole, as one text packet when it is valid UTF-8;
//! 2. as a message sequence: the first byte's bits say, for each of the following chunks (split
//!    on `0x1e`, as in a polling payload), whether it is a text (0) or binary (1) message; text
//!    chunks that are not UTF-8 are decoded lossily. The decoder keeps going after errors, so its
//!    state after a failure is exercised too.
//!
//! Every decoded packet must survive a canonical round trip: re-encoding what decoding the
//! encoded packet gives yields the same text and attachments.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use socketio::parser::json::encode;
use socketio::{JsonDecoder, Packet, ParserLimits};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(Some(packet)) = JsonDecoder::default().decode_text(text)
    {
        check_roundtrip(&packet);
    }

    let Some((&kinds, rest)) = data.split_first() else {
        return;
    };
    let limits = ParserLimits {
        max_attachments: 4,
        max_buffered_bytes: 4096,
    };
    let mut decoder = JsonDecoder::new(limits);
    for (i, chunk) in rest.split(|&b| b == 0x1e).enumerate() {
        let binary = kinds
            .checked_shr(u32::try_from(i % 8).unwrap_or(0))
            .unwrap_or(0)
            & 1
            == 1;
        let result = if binary {
            decoder.decode_binary(Bytes::copy_from_slice(chunk))
        } else {
            decoder.decode_text(&String::from_utf8_lossy(chunk))
        };
        if let Ok(Some(packet)) = result {
            check_roundtrip(&packet);
        }
    }
});

fn check_roundtrip(packet: &Packet) {
    let first = encode(packet);
    let again = decode_encoded(&first.text, &first.attachments);
    let second = encode(&again);
    assert_eq!(
        first, second,
        "canonical form is not a fixpoint for {packet:?}"
    );
}

fn decode_encoded(text: &str, attachments: &[Bytes]) -> Packet {
    let limits = ParserLimits {
        max_attachments: usize::MAX,
        max_buffered_bytes: usize::MAX,
    };
    let mut decoder = JsonDecoder::new(limits);
    let mut decoded = decoder.decode_text(text).expect("own output decodes");
    for attachment in attachments {
        assert!(decoded.is_none(), "packet complete before its attachments");
        decoded = decoder
            .decode_binary(attachment.clone())
            .expect("own attachment decodes");
    }
    decoded.expect("packet complete after its attachments")
}
