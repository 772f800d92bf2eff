//! JWT authentication of Socket.IO connections.
//!
//! The token comes from the CONNECT auth payload `{ token }` (what the official client sends as
//! `auth`) or, failing that, an `Authorization: Bearer` header of the handshake request. The
//! signature, `exp` (required), `nbf`, and `iss` / `aud` when configured are checked; only the
//! algorithm of the configured key is accepted, so `alg: none` and algorithm confusion (an
//! HS256 token signed with an RSA public key as secret) are refused. The user id is the `sub`
//! claim.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use socketio::{Handshake, Value};

use crate::config::{Config, JwtKey};
use crate::error::Error;

/// Tokens longer than this are refused without being parsed.
const MAX_TOKEN_LEN: usize = 8 * 1024;
/// `sub` claims longer than this are refused (the user id becomes a room name).
const MAX_SUB_LEN: usize = 256;

/// Why a connection was refused: `connect_error` with message `unauthorized` and `data.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No token in the auth payload nor an `Authorization: Bearer` header.
    MissingToken,
    /// Malformed, badly signed, wrong algorithm, issuer, audience, not yet valid, no `sub`...
    InvalidToken,
    /// `exp` has passed.
    TokenExpired,
}

impl AuthFailure {
    /// The `data.code` string.
    pub fn code(self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::InvalidToken => "invalid_token",
            Self::TokenExpired => "token_expired",
        }
    }

    /// The refusal sent to the client.
    pub fn connect_error(self) -> socketio::ConnectError {
        socketio::ConnectError::new("unauthorized").with_data(Value::Map(vec![(
            Value::from("code"),
            Value::from(self.code()),
        )]))
    }
}

/// The claims we read. Others are ignored.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
}

/// The claims of a dev token.
#[derive(Debug, Serialize)]
struct DevClaims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// Checks tokens with the configured key; in dev mode also issues them.
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
    /// `--dev` with a secret: the key that signs `/api/dev/token` tokens.
    dev_signer: Option<EncodingKey>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("algorithms", &self.validation.algorithms)
            .field("dev", &self.dev_signer.is_some())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// The authenticator for this configuration; a key file that is not an RSA or P-256 public
    /// key is a configuration error.
    pub fn new(config: &Config) -> Result<Self, Error> {
        let (key, algorithm, secret) = match &config.jwt_key {
            JwtKey::Secret(secret) | JwtKey::DevSecret(secret) => (
                DecodingKey::from_secret(secret),
                Algorithm::HS256,
                Some(secret.as_slice()),
            ),
            JwtKey::PublicKeyPem { path, pem } => {
                let (key, algorithm) = public_key(pem).ok_or_else(|| {
                    Error::config(
                        "JWT_PUBLIC_KEY_FILE",
                        format!("{path:?} is not a PEM RSA or P-256 (EC) public key"),
                    )
                })?;
                (key, algorithm, None)
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.algorithms = vec![algorithm];
        validation.leeway = config.jwt_leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        required.extend(config.jwt_issuer.as_ref().map(|_| "iss"));
        required.extend(config.jwt_audience.as_ref().map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        match &config.jwt_issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &config.jwt_audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let dev_signer = config
            .dev_tokens()
            .then_some(secret)
            .flatten()
            .map(EncodingKey::from_secret);
        Ok(Self {
            key,
            validation,
            dev_signer,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
        })
    }

    /// Checks a token; the user id (`sub`) when it is valid.
    pub fn verify(&self, token: &str) -> Result<String, AuthFailure> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthFailure::InvalidToken);
        }
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|err| {
                match err.kind() {
                    ErrorKind::ExpiredSignature => AuthFailure::TokenExpired,
                    _ => AuthFailure::InvalidToken,
                }
            })?;
        let sub = data.claims.sub;
        if sub.is_empty() || sub.len() > MAX_SUB_LEN {
            return Err(AuthFailure::InvalidToken);
        }
        Ok(sub)
    }

    /// Authenticates a handshake: its token, checked.
    pub fn authenticate(&self, handshake: &Handshake) -> Result<String, AuthFailure> {
        self.verify(token_of(handshake)?)
    }

    /// Whether this process issues dev tokens.
    pub fn issues_dev_tokens(&self) -> bool {
        self.dev_signer.is_some()
    }

    /// A dev token for `user`, valid for `ttl` (`None` outside dev mode).
    pub fn dev_token(&self, user: &str, ttl: Duration) -> Option<String> {
        let signer = self.dev_signer.as_ref()?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = DevClaims {
            sub: user,
            iat: now,
            exp: now + ttl.as_secs(),
            iss: self.issuer.as_deref(),
            aud: self.audience.as_deref(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, signer).ok()
    }
}

/// An RS256 or ES256 decoding key from a PEM public key.
fn public_key(pem: &[u8]) -> Option<(DecodingKey, Algorithm)> {
    let text = std::str::from_utf8(pem).ok()?;
    if text.contains("PRIVATE KEY") {
        return None;
    }
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Some((key, Algorithm::RS256));
    }
    DecodingKey::from_ec_pem(pem)
        .ok()
        .map(|key| (key, Algorithm::ES256))
}

/// The token of a handshake: `auth.token`, else `Authorization: Bearer <token>`.
fn token_of(handshake: &Handshake) -> Result<&str, AuthFailure> {
    match handshake.auth_field("token") {
        Some(Value::String(s)) => match s.as_str() {
            Some("") => {}
            Some(token) => return Ok(token),
            None => return Err(AuthFailure::InvalidToken),
        },
        None | Some(Value::Nil) => {}
        Some(_) => return Err(AuthFailure::InvalidToken),
    }
    let Some(header) = handshake.headers.get(http::header::AUTHORIZATION) else {
        return Err(AuthFailure::MissingToken);
    };
    let header = header.to_str().map_err(|_| AuthFailure::InvalidToken)?;
    match header.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(AuthFailure::InvalidToken),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn hs256(claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap()
    }

    fn auth() -> Authenticator {
        Authenticator::new(&Config::for_secret(SECRET)).unwrap()
    }

    #[test]
    fn valid_expired_and_not_yet_valid() {
        let a = auth();
        let exp = now() + 60;
        assert_eq!(
            a.verify(&hs256(&serde_json::json!({"sub": "alice", "exp": exp}))),
            Ok("alice".into())
        );
        assert_eq!(
            a.verify(&hs256(
                &serde_json::json!({"sub": "alice", "exp": now() - 10})
            )),
            Err(AuthFailure::TokenExpired)
        );
        assert_eq!(
            a.verify(&hs256(
                &serde_json::json!({"sub": "alice", "exp": exp, "nbf": now() + 30})
            )),
            Err(AuthFailure::InvalidToken)
        );
        // No exp, no sub, a numeric sub.
        for claims in [
            serde_json::json!({"sub": "alice"}),
            serde_json::json!({"exp": exp}),
            serde_json::json!({"sub": 7, "exp": exp}),
            serde_json::json!({"sub": "", "exp": exp}),
        ] {
            assert_eq!(
                a.verify(&hs256(&claims)),
                Err(AuthFailure::InvalidToken),
                "{claims}"
            );
        }
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        let a = auth();
        let b64 = |s: &str| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
        };
        let claims = format!(r#"{{"sub":"alice","exp":{}}}"#, now() + 60);
        let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(&claims));
        assert_eq!(a.verify(&none), Err(AuthFailure::InvalidToken));
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &serde_json::json!({"sub": "alice", "exp": now() + 60}),
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(a.verify(&hs512), Err(AuthFailure::InvalidToken));
        assert_eq!(a.verify("garbage"), Err(AuthFailure::InvalidToken));
        let wrong = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "alice", "exp": now() + 60}),
            &EncodingKey::from_secret(b"another secret another secret !!"),
        )
        .unwrap();
        assert_eq!(a.verify(&wrong), Err(AuthFailure::InvalidToken));
    }

    #[test]
    fn issuer_and_audience_when_configured() {
        let mut config = Config::for_secret(SECRET);
        config.jwt_issuer = Some("https://id.example".into());
        config.jwt_audience = Some("sockeye".into());
        let a = Authenticator::new(&config).unwrap();
        let exp = now() + 60;
        let good = serde_json::json!({"sub": "a", "exp": exp, "iss": "https://id.example", "aud": "sockeye"});
        assert_eq!(a.verify(&hs256(&good)), Ok("a".into()));
        for bad in [
            serde_json::json!({"sub": "a", "exp": exp, "aud": "sockeye"}),
            serde_json::json!({"sub": "a", "exp": exp, "iss": "https://evil.example", "aud": "sockeye"}),
            serde_json::json!({"sub": "a", "exp": exp, "iss": "https://id.example", "aud": "other"}),
        ] {
            assert_eq!(
                a.verify(&hs256(&bad)),
                Err(AuthFailure::InvalidToken),
                "{bad}"
            );
        }
        // Without audience configured, a token with one is still fine.
        assert_eq!(auth().verify(&hs256(&good)), Ok("a".into()));
    }

    #[test]
    fn dev_tokens_only_in_dev_mode() {
        assert!(auth().dev_token("bob", Duration::from_secs(60)).is_none());
        let mut config = Config::for_secret(SECRET);
        config.dev = true;
        let a = Authenticator::new(&config).unwrap();
        let token = a.dev_token("bob", Duration::from_secs(60)).unwrap();
        assert_eq!(a.verify(&token), Ok("bob".into()));
    }
}
