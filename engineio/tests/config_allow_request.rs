//! `Config::allow_request`: the hook that accepts or refuses a handshake, seeing its headers and
//! query (Node's `allowRequest`).

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use engineio::{AllowRequest, Config, RequestInfo};
use http::StatusCode;
use tokio_tungstenite::tungstenite::Error as WsError;

/// What the hook saw of one request: its `x-token` header and its query.
type Seen = Arc<Mutex<Vec<(Option<String>, Vec<(String, String)>)>>>;

/// Accepts requests carrying `x-token: letmein`, refuses the others with a message holding
/// quotes (it must come back JSON-escaped).
fn guarded(seen: &Seen) -> Config {
    let seen = seen.clone();
    let mut config = quiet_config();
    config.allow_request = Some(AllowRequest::new(move |req: &RequestInfo| {
        let token = req
            .headers
            .get("x-token")
            .map(|v| v.to_str().expect("ASCII header").to_owned());
        seen.lock()
            .expect("hook lock")
            .push((token.clone(), req.query.to_vec()));
        match token.as_deref() {
            Some("letmein") => Ok(()),
            _ => Err("missing \"x-token\"".to_owned()),
        }
    }));
    config
}

#[tokio::test]
async fn refused_polling_handshake_gets_403_with_the_hook_message() {
    let seen = Seen::default();
    let server = serve(guarded(&seen), Recorder::new()).await;
    let res = server
        .http()
        .get_with("EIO=4&transport=polling", &[("x-token", "wrong")])
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(res.text(), r#"{"code":4,"message":"missing \"x-token\""}"#);
    assert_eq!(seen.lock().unwrap().len(), 1, "the hook ran once");
    assert_eq!(server.engine.clients_count(), 0, "no session was created");
    assert_eq!(server.handler().open_count(), 0, "on_open was not called");
}

#[tokio::test]
async fn refused_websocket_handshake_gets_400_and_no_upgrade() {
    let seen = Seen::default();
    let server = serve(guarded(&seen), Recorder::new()).await;
    let err = ws_connect(&server.ws_url("EIO=4&transport=websocket"))
        .await
        .expect_err("the WebSocket handshake must be refused");
    let WsError::Http(res) = err else {
        panic!("expected an HTTP answer instead of a 101, got {err:?}");
    };
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(seen.lock().unwrap().len(), 1, "the hook ran once");
    assert_eq!(server.engine.clients_count(), 0);
    assert_eq!(server.handler().open_count(), 0);
}

#[tokio::test]
async fn accepted_polling_handshake_opens_a_session_and_the_hook_sees_headers_and_query() {
    let seen = Seen::default();
    let server = serve(guarded(&seen), Recorder::new()).await;
    let http = server.http();
    let polling = Polling::open_with(&http, "&room=a%20b&t=xyz", &[("x-token", "letmein")]).await;
    assert_eq!(polling.handshake.packets().len(), 1, "just the open packet");
    assert_eq!(server.handler().opens(&polling.sid), 1);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (token, query) = &seen[0];
    assert_eq!(token.as_deref(), Some("letmein"));
    let pairs: Vec<(&str, &str)> = query
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("EIO", "4"),
            ("transport", "polling"),
            ("room", "a b"),
            ("t", "xyz")
        ],
        "the query is decoded, in order"
    );

    // The session works normally.
    polling.send("4hello").await;
    server.handler().wait_messages(&polling.sid, 1).await;
    assert_eq!(server.handler().messages(&polling.sid), [text("hello")]);
}

#[tokio::test]
async fn accepted_websocket_handshake_opens_a_session() {
    let seen = Seen::default();
    let server = serve(guarded(&seen), Recorder::new()).await;
    let url = server.ws_url("EIO=4&transport=websocket&who=me");
    let (mut ws, res) = ws_connect_with(&url, &[("x-token", "letmein")])
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    let sid = open_sid(&ws_text(&mut ws).await);
    assert_eq!(server.handler().opens(&sid), 1);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0.as_deref(), Some("letmein"));
    assert!(seen[0].1.contains(&("who".to_owned(), "me".to_owned())));
    ws_send(&mut ws, "4hi").await;
    assert_eq!(server.handler().wait_messages(&sid, 1).await, [text("hi")]);
}

/// As Node, the hook guards handshakes: the later requests of an accepted session, and its
/// upgrade to WebSocket, are not checked again.
#[tokio::test]
async fn the_hook_runs_once_per_session() {
    let seen = Seen::default();
    let server = serve(guarded(&seen), Recorder::new()).await;
    let http = server.http();
    let polling = Polling::open_with(&http, "", &[("x-token", "letmein")]).await;
    polling.send("4one").await;
    let mut ws = upgrade(&server, &polling, "").await;
    ws_send(&mut ws, "4two").await;
    assert_eq!(
        server.handler().wait_messages(&polling.sid, 2).await,
        [text("one"), text("two")]
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}
