//! `Config::cookie`: the sticky-session cookie, set on the handshake response only.

mod common;

use common::*;
use engineio::{Config, Cookie};
use http::StatusCode;

fn with_cookie(cookie: Cookie) -> Config {
    let mut config = quiet_config();
    config.cookie = Some(cookie);
    config
}

#[tokio::test]
async fn no_cookie_unless_configured() {
    let server = serve(quiet_config(), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    assert_eq!(polling.handshake.header("set-cookie"), None);
    let (_ws, res) = ws_connect(&server.ws_url("EIO=4&transport=websocket"))
        .await
        .unwrap();
    assert_eq!(res.headers().get("set-cookie"), None);
}

#[tokio::test]
async fn polling_handshake_sets_the_cookie_and_later_responses_do_not() {
    let server = serve(with_cookie(Cookie::default()), Recorder::echo()).await;
    let polling = Polling::open(&server.http(), "").await;
    let cookies: Vec<_> = polling
        .handshake
        .headers
        .get_all("set-cookie")
        .iter()
        .collect();
    assert_eq!(cookies.len(), 1);
    assert_eq!(
        cookies[0].to_str().unwrap(),
        format!("io={}; Path=/; HttpOnly; SameSite=Lax", polling.sid)
    );

    // A POST, the GET that carries the echo, and the 101 of the upgrade: no cookie.
    let post = polling.post("4hello").await;
    assert_eq!(post.status, StatusCode::OK);
    assert_eq!(post.header("set-cookie"), None, "POST response");
    let get = polling.get().await;
    assert_eq!(get.packets(), ["4hello"]);
    assert_eq!(get.header("set-cookie"), None, "GET response");
    let url = server.ws_url(&format!("EIO=4&transport=websocket&sid={}", polling.sid));
    let (_ws, res) = ws_connect(&url).await.unwrap();
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(res.headers().get("set-cookie"), None, "upgrade 101");

    // Nor on an error answer.
    let err = server.http().get("EIO=4&transport=polling&sid=nope").await;
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert_eq!(err.header("set-cookie"), None, "error response");
}

#[tokio::test]
async fn websocket_handshake_sets_the_cookie_on_the_101() {
    let server = serve(with_cookie(Cookie::default()), Recorder::new()).await;
    let (mut ws, res) = ws_connect(&server.ws_url("EIO=4&transport=websocket"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    let sid = open_sid(&ws_text(&mut ws).await);
    let cookies: Vec<_> = res.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies.len(), 1);
    assert_eq!(
        cookies[0].to_str().unwrap(),
        format!("io={sid}; Path=/; HttpOnly; SameSite=Lax")
    );
}

#[tokio::test]
async fn custom_cookie_name_and_attributes() {
    let mut cookie = Cookie::default();
    cookie.name = "sticky".to_owned();
    let server = serve(with_cookie(cookie), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    assert_eq!(
        polling.handshake.header("set-cookie").unwrap(),
        format!("sticky={}; Path=/; HttpOnly; SameSite=Lax", polling.sid)
    );

    let mut cookie = Cookie::default();
    cookie.name = "lb".to_owned();
    cookie.path = "/app".to_owned();
    cookie.http_only = false;
    cookie.same_site = "Strict".to_owned();
    let server = serve(with_cookie(cookie), Recorder::new()).await;
    let polling = Polling::open(&server.http(), "").await;
    assert_eq!(
        polling.handshake.header("set-cookie").unwrap(),
        format!("lb={}; Path=/app; SameSite=Strict", polling.sid)
    );
    let (mut ws, res) = ws_connect(&server.ws_url("EIO=4&transport=websocket"))
        .await
        .unwrap();
    let sid = open_sid(&ws_text(&mut ws).await);
    assert_eq!(
        res.headers().get("set-cookie").unwrap().to_str().unwrap(),
        format!("lb={sid}; Path=/app; SameSite=Strict")
    );
}
