//! The web front under attack (issue #25, part A): a socket acts with the rights its credential
//! has now (sign-out, demotion, resume), hidden threads answer exactly as unknown ones.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use axum::http::{HeaderMap, Method, StatusCode};
use common::client::{Client, connect, connect_as};
use common::{App, As, spawn, spawn_with, ws};
use krake_core::actor::{Role, UserName};
use krake_core::inbox::ThreadKind;
use krake_core::ports::UserRepo;
use krake_core::time::Clock;
use krake_core::web_accounts::AccountRepo;
use krake_web::front::WebConfig;
use serde_json::json;
use std::time::Duration;
use tower::ServiceExt;

/// No caching of checked credentials: a change in the store counts at the next frame.
fn uncached() -> WebConfig {
    WebConfig {
        auth_cache_ttl: Duration::ZERO,
        ..WebConfig::default()
    }
}

/// A socket opened with `user`'s session cookie (as the browser's upgrade request carries it).
async fn socket_with_cookie(app: &App, cookie: &str) -> Client {
    let mut h = HeaderMap::new();
    h.insert("cookie", format!("krake_session={cookie}").parse().unwrap());
    let caller = krake_web::auth::caller(&app.state, &h).await.unwrap();
    assert!(caller.is_some(), "the cookie is a live session");
    let mut c = connect_as(app, caller);
    c.send(json!({"type":"hello"}));
    assert_eq!(c.next().await["type"], "welcome");
    c
}

async fn logout(app: &App, cookie: &str, csrf: &str) {
    let req = axum::http::Request::post("/logout")
        .header("cookie", format!("krake_session={cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(format!("csrf={csrf}")))
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

async fn demote(app: &App, user: &str, workspace: &str) {
    app.store
        .upsert_user(
            &UserName::parse(user).unwrap(),
            Role::Viewer,
            Some(&ws(workspace)),
            app.clock.now(),
        )
        .await
        .unwrap();
}

async fn status_of(app: &App, id: i64) -> String {
    let (_, v) = app
        .get(&format!("/api/v1/inbox/{id}"), As::Token("tok-ana"))
        .await;
    v["status"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn signing_out_closes_the_sessions_sockets_at_once() {
    let app = spawn().await;
    let (cookie, csrf) = app.sign_in("bo").await;
    let mut c = socket_with_cookie(&app, &cookie).await;
    c.send(json!({"type":"say","id":"m1","text":"/todo"}));
    assert_eq!(c.next().await["type"], "reply");
    // Another of bo's sessions (another browser) is not signed out.
    let (other, _) = app.sign_in("bo").await;
    let mut d = socket_with_cookie(&app, &other).await;
    logout(&app, &cookie, &csrf).await;
    let e = c.next().await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("unauthenticated")),
        "{e}"
    );
    c.closed().await;
    d.send(json!({"type":"say","id":"m1","text":"/todo"}));
    assert_eq!(d.next().await["type"], "reply");
}

#[tokio::test]
async fn a_socket_whose_session_ended_elsewhere_stops_at_its_next_frame() {
    // Another `krake serve` signed the session out (or a password change ended it): this
    // process only sees that the stored session is gone.
    let app = spawn_with(uncached()).await;
    let t = app.thread("lunavo", ThreadKind::Approval, "ship it").await;
    let (cookie, _) = app.sign_in("bo").await;
    let mut c = socket_with_cookie(&app, &cookie).await;
    app.store
        .delete_session(&krake_web::hash_token(&cookie))
        .await
        .unwrap();
    c.send(json!({"type":"press","id":"p1","payload":format!("k1:a:{}:{}", t.id.0, t.version)}));
    let e = c.next().await;
    assert_eq!(e["code"], "unauthenticated", "{e}");
    c.closed().await;
    assert_eq!(
        status_of(&app, t.id.0).await,
        "open",
        "nothing was approved"
    );
    assert!(app.state.hub.is_empty(), "the session is forgotten");
}

#[tokio::test]
async fn a_demoted_socket_no_longer_approves_and_its_resume_has_the_new_rights() {
    let app = spawn_with(uncached()).await;
    let t = app.thread("lunavo", ThreadKind::Approval, "ship it").await;
    let press = json!({"type":"press","payload":format!("k1:a:{}:{}", t.id.0, t.version)});
    let mut c = connect(&app);
    c.send(json!({"type":"hello","token":"tok-bo"}));
    let w = c.next().await;
    let session = w["session"].as_str().unwrap().to_owned();
    demote(&app, "bo", "lunavo").await;
    c.send(press.clone());
    let e = c.next().await;
    assert_eq!(e["code"], "reconnect", "{e}");
    c.closed().await;
    assert_eq!(status_of(&app, t.id.0).await, "open");
    // The widget reconnects and resumes: the session acts as a viewer now.
    let mut c = connect(&app);
    c.send(json!({"type":"hello","token":"tok-bo","session":session,"last":1}));
    c.send(press);
    let r = c.next().await;
    assert_eq!(r["type"], "reply", "{r}");
    assert!(r["text"].as_str().unwrap().contains("cannot decide"), "{r}");
    assert_eq!(status_of(&app, t.id.0).await, "open");
}

#[tokio::test]
async fn a_resume_looks_the_user_up_again() {
    // Default cache: the resume itself must look again, whatever the socket saw before.
    let app = spawn().await;
    let t = app.thread("lunavo", ThreadKind::Approval, "ship it").await;
    let mut c = connect(&app);
    c.send(json!({"type":"hello","token":"tok-bo"}));
    let w = c.next().await;
    let session = w["session"].as_str().unwrap().to_owned();
    c.drop_connection().await;
    demote(&app, "bo", "lunavo").await;
    tokio::time::sleep(Duration::from_millis(2100)).await; // the auth cache's 2 s
    let mut c = connect(&app);
    c.send(json!({"type":"hello","token":"tok-bo","session":session,"last":1}));
    c.send(json!({"type":"press","payload":format!("k1:a:{}:{}", t.id.0, t.version)}));
    let r = c.next().await;
    assert!(r["text"].as_str().unwrap().contains("cannot decide"), "{r}");
    assert_eq!(status_of(&app, t.id.0).await, "open");
}

#[tokio::test]
async fn a_thread_the_caller_may_not_see_is_not_found_on_every_route() {
    let app = spawn().await;
    let hidden = app.thread("lunavo", ThreadKind::Approval, "secret").await;
    let h = hidden.id.0;
    let unknown = h + 1000;
    let mo = As::Token("tok-mo");
    for (method, route, body) in [
        (Method::GET, "", None),
        (Method::GET, "/audit", None),
        (Method::POST, "/reply", Some(r#"{"text":"hi"}"#)),
        (Method::POST, "/approve", None),
        (Method::POST, "/reject", Some(r#"{"reason":"no"}"#)),
        (Method::POST, "/archive", None),
        (Method::POST, "/unarchive", None),
    ] {
        let (s1, v1) = app
            .json(
                method.clone(),
                &format!("/api/v1/inbox/{h}{route}"),
                mo,
                body,
            )
            .await;
        let (s2, v2) = app
            .json(
                method.clone(),
                &format!("/api/v1/inbox/{unknown}{route}"),
                mo,
                body,
            )
            .await;
        assert_eq!(s1, StatusCode::NOT_FOUND, "{method} {route}: {v1}");
        assert_eq!(s2, StatusCode::NOT_FOUND);
        let m1 = v1["error"]["message"].as_str().unwrap();
        let m2 = v2["error"]["message"].as_str().unwrap();
        assert_eq!(
            m1.replace(&h.to_string(), "N"),
            m2.replace(&unknown.to_string(), "N")
        );
        assert!(!m1.contains("lunavo") && !m1.contains("member"), "{m1}");
    }
    // The dashboard's thread page too.
    let (cookie, _) = app.sign_in("mo").await;
    let (s, _, page) = app
        .send(
            Method::GET,
            &format!("/threads/{h}"),
            As::Cookie(&cookie, None),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        !page.contains("lunavo") && !page.contains("secret"),
        "{page}"
    );
    assert_eq!(status_of(&app, h).await, "open");
}
