//! Fuzzes the JWT-bearing CONNECT path: a Socket.IO CONNECT packet decoded by the JSON or msgpack
//! parser, its auth payload (`{token}`) or an `Authorization: Bearer` header handed to sockeye's
//! `Authenticator` (HS256 with a fixed secret), as the server does for every connection.
//!
//! The first byte picks the mode:
//! - bit 0 clear, raw: the rest is the packet (bit 1: msgpack, else JSON text, lossy UTF-8);
//!   random tokens, so this exercises the parsers, token lookup and the JWT decoding of garbage.
//! - bit 0 set, signed: the rest is `header 0x1f claims`; the target signs
//!   `b64url(header).b64url(claims)` with the server's secret, so the claims validation (`exp`,
//!   `nbf`, `sub`, the algorithm in the header) sees well-signed hostile tokens. Bit 1 sends the
//!   token in the header instead of the auth payload.
//!
//! A token is only accepted if its header says HS256 (no `none`, no algorithm confusion) and its
//! claims hold a string `sub` equal to the user id, of 1..=256 bytes, an `exp` not past and no
//! `nbf` to come.
#![no_main]

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue};
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use socketio::{Handshake, JsonDecoder, Packet, PacketType, Value};
use sockeye::Config;
use sockeye::auth::Authenticator;

const SECRET: &[u8] = b"fuzz-secret-0123456789abcdef0123";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let auth = Authenticator::new(&Config::for_secret(SECRET)).expect("HS256 config");
    if mode & 1 == 0 {
        let packet = if mode & 2 == 0 {
            JsonDecoder::default()
                .decode_text(&String::from_utf8_lossy(rest))
                .ok()
                .flatten()
        } else {
            socketio::parser::msgpack::decode(rest).ok()
        };
        if let Some(packet) = packet {
            let _ = connect(&auth, packet, HeaderMap::new());
        }
        return;
    }

    let (header, claims) = match rest.iter().position(|&b| b == 0x1f) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&br#"{"alg":"HS256","typ":"JWT"}"#[..], rest),
    };
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let key = EncodingKey::from_secret(SECRET);
    let signature = jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, Algorithm::HS256)
        .expect("HMAC signs anything");
    let token = format!("{signing_input}.{signature}");

    let mut headers = HeaderMap::new();
    let text = if mode & 2 == 0 {
        // Through the parser, as the client sends it: `0{"token":"..."}`.
        format!(r#"0{{"token":"{token}"}}"#)
    } else {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).expect("base64url header");
        headers.insert(http::header::AUTHORIZATION, value);
        "0".to_owned()
    };
    let packet = JsonDecoder::default()
        .decode_text(&text)
        .expect("CONNECT with a token decodes")
        .expect("CONNECT has no attachments");
    if let Ok(user) = connect(&auth, packet, headers) {
        check_accepted(header, claims, &user);
    }
});

/// What the server does with a CONNECT: the auth payload (`{}` when absent) into the handshake,
/// then the authenticator.
fn connect(auth: &Authenticator, packet: Packet, headers: HeaderMap) -> Result<String, ()> {
    if packet.kind != PacketType::Connect {
        return Err(());
    }
    let handshake = Handshake {
        headers: headers.into(),
        time: SystemTime::now(),
        address: None,
        xdomain: false,
        secure: false,
        issued: 0,
        url: "/socket.io/?EIO=4&transport=websocket".to_owned(),
        query: Vec::<(String, String)>::new().into(),
        auth: packet.data.unwrap_or_else(|| Value::Map(Vec::new())),
    };
    let result = auth.authenticate(&handshake);
    if let Ok(user) = &result {
        assert!(!user.is_empty() && user.len() <= 256, "user id {user:?}");
    }
    result.map_err(|_| ())
}

/// What the checks read of an accepted token, parsed as the server parses it (serde skips
/// other fields without validating them: invalid UTF-8 or out-of-range numbers there are fine).
#[derive(serde::Deserialize)]
struct Head {
    alg: String,
}

#[derive(serde::Deserialize)]
struct Seen {
    sub: String,
    exp: f64,
    #[serde(default)]
    nbf: Option<serde_json::Value>,
}

/// An accepted signed token really said HS256, carried this `sub`, had not expired and was
/// already valid.
fn check_accepted(header: &[u8], claims: &[u8], user: &str) {
    let header: Head = serde_json::from_slice(header).expect("accepted header has an alg");
    assert_eq!(
        header.alg, "HS256",
        "accepted a token with alg {:?}",
        header.alg
    );
    let claims: Seen = serde_json::from_slice(claims).expect("accepted claims have sub and exp");
    assert_eq!(claims.sub, user, "sub of the accepted token");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    assert!(
        claims.exp >= now.floor() - 1.0,
        "accepted an expired token: exp {}",
        claims.exp
    );
    if let Some(nbf) = claims.nbf.as_ref().and_then(serde_json::Value::as_f64) {
        assert!(
            nbf <= now.ceil() + 1.0,
            "accepted a token not yet valid: nbf {nbf}"
        );
    }
}
