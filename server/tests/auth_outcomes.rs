//! Every authentication outcome over a real connection: accepted tokens (auth payload, Bearer
//! header, HS256 / RS256 / ES256), and the `connect_error` codes `missing_token`,
//! `invalid_token`, `token_expired` for everything else.

#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use common::{Client, SECRET, config, key_path, now, start, token, token_with};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value as Json, json};
use sockeye::config::JwtKey;

async fn refused(
    addr: std::net::SocketAddr,
    auth: Option<Json>,
    headers: &[(&str, &str)],
) -> String {
    match Client::connect(addr, auth, headers).await {
        Ok(_) => panic!("connection accepted"),
        Err(data) => {
            assert_eq!(data["message"], "unauthorized", "{data}");
            data["data"]["code"].as_str().unwrap_or_default().to_owned()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hs256_outcomes() {
    let server = start(config()).await;
    let addr = server.addr;

    // Accepted from the auth payload, and from the Bearer header.
    let client = Client::connect(addr, Some(json!({ "token": token("alice") })), &[])
        .await
        .unwrap();
    assert!(!client.sid.is_empty());
    let bearer = format!("Bearer {}", token("bob"));
    Client::connect(addr, None, &[("authorization", &bearer)])
        .await
        .unwrap();

    // The socket joined user:<sub>.
    let ns = server.app().io.of("/");
    let socket = ns.socket(&client.sid).unwrap();
    assert!(
        socket.rooms().contains(&"user:alice".to_owned()),
        "{:?}",
        socket.rooms()
    );

    assert_eq!(refused(addr, None, &[]).await, "missing_token");
    assert_eq!(refused(addr, Some(json!({})), &[]).await, "missing_token");
    assert_eq!(
        refused(addr, Some(json!({ "token": "" })), &[]).await,
        "missing_token"
    );
    assert_eq!(
        refused(addr, Some(json!({ "token": 42 })), &[]).await,
        "invalid_token"
    );
    assert_eq!(
        refused(addr, Some(json!({ "token": "not.a.jwt" })), &[]).await,
        "invalid_token"
    );
    assert_eq!(
        refused(addr, None, &[("authorization", "Basic abc")]).await,
        "invalid_token"
    );
    let expired = token_with(&json!({ "sub": "alice", "exp": now() - 60 }));
    assert_eq!(
        refused(addr, Some(json!({ "token": expired })), &[]).await,
        "token_expired"
    );
    let early = token_with(&json!({ "sub": "alice", "exp": now() + 600, "nbf": now() + 300 }));
    assert_eq!(
        refused(addr, Some(json!({ "token": early })), &[]).await,
        "invalid_token"
    );
    let no_sub = token_with(&json!({ "exp": now() + 600 }));
    assert_eq!(
        refused(addr, Some(json!({ "token": no_sub })), &[]).await,
        "invalid_token"
    );
    let no_exp = token_with(&json!({ "sub": "alice" }));
    assert_eq!(
        refused(addr, Some(json!({ "token": no_exp })), &[]).await,
        "invalid_token"
    );

    // alg none, another HMAC algorithm, another secret.
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let claims = json!({ "sub": "alice", "exp": now() + 600 }).to_string();
    for alg in ["none", "None", "NONE"] {
        let none = format!(
            "{}.{}.",
            b64(&format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#)),
            b64(&claims)
        );
        assert_eq!(
            refused(addr, Some(json!({ "token": none })), &[]).await,
            "invalid_token"
        );
    }
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &json!({ "sub": "alice", "exp": now() + 600 }),
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    assert_eq!(
        refused(addr, Some(json!({ "token": hs512 })), &[]).await,
        "invalid_token"
    );
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({ "sub": "alice", "exp": now() + 600 }),
        &EncodingKey::from_secret(b"some-other-secret-some-other-secret!"),
    )
    .unwrap();
    assert_eq!(
        refused(addr, Some(json!({ "token": forged })), &[]).await,
        "invalid_token"
    );

    let metrics = common::get(addr, "/metrics").await.body;
    assert!(
        metrics.contains("sockeye_auth_failures_total{code=\"token_expired\"} 1"),
        "{metrics}"
    );
    server.shutdown().await;
}

/// The auth limits (`docs/limits.md`): a correctly signed token over 8 KiB, or with a `sub` over
/// 256 bytes, is refused as `invalid_token`; right at the limits it is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_tokens_and_user_ids_are_refused_even_when_signed() {
    let server = start(config()).await;
    let addr = server.addr;
    let connects = |token: String| async move {
        Client::connect(addr, Some(json!({ "token": token })), &[]).await
    };

    let longest_sub = "u".repeat(256);
    assert!(
        connects(token(&longest_sub)).await.is_ok(),
        "a 256-byte sub"
    );
    assert_eq!(
        refused(addr, Some(json!({ "token": token(&"u".repeat(257)) })), &[]).await,
        "invalid_token"
    );

    // Padding in an extra claim: find the sizes just under and over 8 KiB.
    let padded = |pad: usize| {
        token_with(&json!({ "sub": "alice", "exp": now() + 600, "pad": "p".repeat(pad) }))
    };
    let mut pad = 5000;
    while padded(pad + 1).len() <= 8 * 1024 {
        pad += 1;
    }
    assert!(padded(pad).len() <= 8 * 1024 && padded(pad + 1).len() > 8 * 1024);
    assert!(connects(padded(pad)).await.is_ok(), "a token of 8 KiB");
    let over = padded(pad + 4);
    assert!(over.len() > 8 * 1024);
    assert_eq!(
        refused(addr, Some(json!({ "token": over })), &[]).await,
        "invalid_token"
    );
    server.shutdown().await;
}

fn sign(alg: Algorithm, private_pem: &str, claims: &Json) -> String {
    let pem = std::fs::read(key_path(private_pem)).unwrap();
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
        _ => EncodingKey::from_ec_pem(&pem).unwrap(),
    };
    jsonwebtoken::encode(&Header::new(alg), claims, &key).unwrap()
}

async fn public_key_server(public_pem: &str) -> common::Server {
    let mut config = config();
    let path = key_path(public_pem);
    config.jwt_key = JwtKey::PublicKeyPem {
        pem: std::fs::read(&path).unwrap(),
        path,
    };
    config.jwt_issuer = Some("https://id.example".into());
    config.jwt_audience = Some("sockeye".into());
    start(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_and_es256_with_issuer_and_audience() {
    let claims = |iss: &str, aud: &str| json!({ "sub": "carol", "exp": now() + 600, "iss": iss, "aud": aud });
    for (public, private, alg) in [
        ("rsa_public.pem", "rsa_private.pem", Algorithm::RS256),
        ("ec_public.pem", "ec_private.pem", Algorithm::ES256),
    ] {
        let server = public_key_server(public).await;
        let addr = server.addr;
        let good = sign(alg, private, &claims("https://id.example", "sockeye"));
        Client::connect(addr, Some(json!({ "token": good })), &[])
            .await
            .unwrap_or_else(|e| panic!("{alg:?} refused: {e}"));
        let wrong_iss = sign(alg, private, &claims("https://evil.example", "sockeye"));
        assert_eq!(
            refused(addr, Some(json!({ "token": wrong_iss })), &[]).await,
            "invalid_token"
        );
        let wrong_aud = sign(alg, private, &claims("https://id.example", "other"));
        assert_eq!(
            refused(addr, Some(json!({ "token": wrong_aud })), &[]).await,
            "invalid_token"
        );
        // An HS256 token "signed" with the public key as secret (algorithm confusion).
        let public_pem = std::fs::read(key_path(public)).unwrap();
        let confused = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims("https://id.example", "sockeye"),
            &EncodingKey::from_secret(&public_pem),
        )
        .unwrap();
        assert_eq!(
            refused(addr, Some(json!({ "token": confused })), &[]).await,
            "invalid_token"
        );
        // An HS256 token of a random secret.
        assert_eq!(
            refused(addr, Some(json!({ "token": token("carol") })), &[]).await,
            "invalid_token"
        );
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_key_file_is_a_configuration_error() {
    let mut config = config();
    let path = key_path("rsa_private.pem");
    config.jwt_key = JwtKey::PublicKeyPem {
        pem: std::fs::read(&path).unwrap(),
        path,
    };
    let err = sockeye::start(config).await.err().unwrap();
    assert!(err.to_string().starts_with("JWT_PUBLIC_KEY_FILE:"), "{err}");
    assert_eq!(err.exit_code(), 2);
}
