//! The web front under attack (issue #25, part A): a socket acts with the rights its credential
//! has now (sign-out, demotion, resume), hidden threads answer exactly as unknown ones, sign-in
//! backs off per name and address (an attacker cannot lock the owner out) and bounds its
//! password checks.
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

/// A sign-in form post from `addr` (as the peer address a socket would give).
fn login_from(
    app_token: &str,
    user: &str,
    password: &str,
    addr: &str,
) -> axum::http::Request<axum::body::Body> {
    let mut req = App::login_request(user, password, Some(app_token), Some(app_token));
    let addr: std::net::SocketAddr = format!("{addr}:40000").parse().unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(addr));
    req
}

#[tokio::test]
async fn an_attacker_hammering_a_name_does_not_lock_its_owner_out() {
    let app = spawn().await;
    let token = app.login_token().await;
    let send = |user: &str, pw: &str, addr: &str| {
        let req = login_from(&token, user, pw, addr);
        let router = app.router.clone();
        async move { router.oneshot(req).await.unwrap() }
    };
    // The attacker's address backs off after 5 failures, even with the right password.
    for _ in 0..5 {
        assert_eq!(
            send("bo", "guess", "203.0.113.9").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let res = send("bo", "correct+horse+battery", "203.0.113.9").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    // bo at their own address signs in meanwhile, after a typo of their own too.
    assert_eq!(
        send("bo", "typo", "198.51.100.7").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let res = send("bo", "correct+horse+battery", "198.51.100.7").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // Many attacking addresses together meet the per-name limit (10 a minute by default)...
    let mut limited = 0;
    for i in 0..30 {
        let a = format!("192.0.2.{i}");
        send("bo", "guess", &a).await;
        if send("bo", "guess", &a).await.status() == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert!(limited >= 15, "only {limited} of 30 addresses were limited");
    // ...while bo, at an address they signed in from, still gets in after a typo.
    assert_eq!(
        send("bo", "typo", "198.51.100.7").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let res = send("bo", "correct+horse+battery", "198.51.100.7").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn one_address_cannot_spray_many_names() {
    let app = spawn().await;
    let token = app.login_token().await;
    let mut statuses = Vec::new();
    let started = std::time::Instant::now();
    for i in 0..40 {
        let req = login_from(&token, &format!("user{i}"), "guess", "203.0.113.9");
        statuses.push(app.router.clone().oneshot(req).await.unwrap().status());
    }
    // 30 at once, then one more every 2 s: each try checks a password (argon2), so on a
    // loaded machine the 40 tries take long enough for a few to be let through again.
    let refilled = (started.elapsed().as_secs_f64() / 2.0).ceil() as usize;
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    let allowed = statuses.len() - limited;
    assert!(
        (30..=30 + refilled).contains(&allowed) && limited > 0,
        "30 tries a minute per address ({refilled} refilled): {statuses:?}"
    );
    assert!(
        statuses[..30]
            .iter()
            .all(|s| *s != StatusCode::TOO_MANY_REQUESTS),
        "the first 30 are not limited: {statuses:?}"
    );
    // Another address is not limited by it.
    let req = login_from(&token, "ana", "correct+horse+battery", "198.51.100.7");
    assert_eq!(
        app.router.clone().oneshot(req).await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn password_checks_beyond_the_queue_answer_503_with_retry_after() {
    let app = spawn_with(WebConfig {
        password_checks: 1,
        password_queue: 1,
        ..WebConfig::default()
    })
    .await;
    let token = app.login_token().await;
    let tries: Vec<_> = (0..12)
        .map(|i| {
            let req = login_from(&token, "ana", "guess", &format!("192.0.2.{i}"));
            tokio::spawn(app.router.clone().oneshot(req))
        })
        .collect();
    let mut busy = 0;
    for t in tries {
        let res = t.await.unwrap().unwrap();
        match res.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(res.headers().contains_key("retry-after"));
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        busy >= 1,
        "with one check and one waiting, some of 12 at once are turned away"
    );
    assert_eq!(app.state.login_limits.pending(), 0);
}

#[tokio::test]
async fn a_new_password_ends_every_session_and_its_sockets() {
    let app = spawn_with(uncached()).await;
    let (cookie, _) = app.sign_in("bo").await;
    let mut c = socket_with_cookie(&app, &cookie).await;
    let bo = UserName::parse("bo").unwrap();
    let hash = krake_web::auth::hash_password("a new long passphrase").unwrap();
    app.store
        .set_password_hash(&bo, &hash, app.clock.now())
        .await
        .unwrap();
    let (s, _) = app.get("/api/v1/me", As::Cookie(&cookie, None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    c.send(json!({"type":"say","id":"m1","text":"/todo"}));
    assert_eq!(c.next().await["code"], "unauthenticated");
    c.closed().await;
}

#[tokio::test]
async fn revoked_and_expired_tokens_stop_working_on_the_api_and_the_socket() {
    use krake_core::ports::{NewToken, TokenRepo, TokenScope};
    let app = spawn_with(uncached()).await;
    let bo = UserName::parse("bo").unwrap();
    let mut c = connect(&app);
    c.send(json!({"type":"hello","token":"tok-bo"}));
    assert_eq!(c.next().await["type"], "welcome");
    assert_eq!(
        app.get("/api/v1/me", As::Token("tok-bo")).await.0,
        StatusCode::OK
    );
    let n = app
        .store
        .revoke_tokens(&bo, None, app.clock.now())
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        app.get("/api/v1/me", As::Token("tok-bo")).await.0,
        StatusCode::UNAUTHORIZED
    );
    c.send(json!({"type":"say","id":"m1","text":"/todo"}));
    assert_eq!(c.next().await["code"], "unauthenticated");
    c.closed().await;
    // A token with an expiry works until then.
    app.store
        .create_token(&NewToken {
            user: &bo,
            token_hash: &krake_web::hash_token("tok-bo-1h"),
            label: "ci",
            scope: TokenScope::Personal,
            expires_at: Some(app.clock.now().plus(Duration::from_secs(3600))),
            now: app.clock.now(),
        })
        .await
        .unwrap();
    assert_eq!(
        app.get("/api/v1/me", As::Token("tok-bo-1h")).await.0,
        StatusCode::OK
    );
    app.clock.advance(Duration::from_secs(3600));
    assert_eq!(
        app.get("/api/v1/me", As::Token("tok-bo-1h")).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_widget_token_opens_one_workspaces_chat_and_nothing_else() {
    use krake_core::ports::{NewToken, TokenRepo, TokenScope};
    let app = spawn().await;
    let lunavo = app
        .thread("lunavo", ThreadKind::Approval, "lunavo thing")
        .await;
    let monarch = app
        .thread("monarch", ThreadKind::Approval, "monarch thing")
        .await;
    // ana is an owner everywhere; her widget token is for Lunavo's page.
    app.store
        .create_token(&NewToken {
            user: &UserName::parse("ana").unwrap(),
            token_hash: &krake_web::hash_token("krkw_shop"),
            label: "shop widget",
            scope: TokenScope::Widget(ws("lunavo")),
            expires_at: None,
            now: app.clock.now(),
        })
        .await
        .unwrap();
    // Not a key to the API.
    let (s, v) = app.get("/api/v1/inbox", As::Token("krkw_shop")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    // Not for another workspace's widget.
    let mut c = connect(&app);
    c.send(json!({"type":"hello","token":"krkw_shop","workspace":"monarch"}));
    assert_eq!(c.next().await["code"], "forbidden");
    // Lunavo's chat, with nothing of Monarch in it.
    let mut c = connect(&app);
    c.send(json!({"type":"hello","token":"krkw_shop","workspace":"lunavo"}));
    assert_eq!(c.next().await["type"], "welcome");
    c.send(json!({"type":"say","id":"m1","text":"/todo"}));
    let r = c.next().await;
    let text = r["text"].as_str().unwrap();
    assert!(
        text.contains("lunavo thing") && !text.contains("monarch thing"),
        "{r}"
    );
    c.send(json!({"type":"press","payload":format!("k1:a:{}:{}", monarch.id.0, monarch.version)}));
    let r = c.next().await;
    assert!(!r["text"].as_str().unwrap().starts_with("Approved"), "{r}");
    assert_eq!(status_of(&app, monarch.id.0).await, "open");
    // As a member of Lunavo it may approve there.
    c.send(json!({"type":"press","payload":format!("k1:a:{}:{}", lunavo.id.0, lunavo.version)}));
    let r = c.next().await;
    assert!(r["text"].as_str().unwrap().starts_with("Approved"), "{r}");
}

#[tokio::test]
async fn oversized_bodies_and_bad_path_encodings_answer_the_json_error_shape() {
    let app = spawn().await;
    let (cookie, csrf) = app.sign_in("bo").await;
    let big = format!("csrf={csrf}&pad={}", "x".repeat(100 * 1024));
    let req = axum::http::Request::post("/logout")
        .header("cookie", format!("krake_session={cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(big))
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = axum::body::to_bytes(res.into_body(), 1 << 16)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large", "{v}");
    let (s, v) = app
        .get("/api/v1/folders/%FF%FE/calendar", As::Token("tok-bo"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "bad_request");
    let (s, v) = app
        .get(
            "/api/v1/folders/soshie/calendar/entries/%FF",
            As::Token("tok-bo"),
        )
        .await;
    assert!(s.is_client_error(), "{s}");
    assert!(v["error"]["code"].is_string(), "{v}");
}

#[test]
fn the_sockets_origin_check_compares_the_scheme() {
    use krake_web::ws::same_origin;
    let headers = |origin: &str| {
        let mut h = HeaderMap::new();
        h.insert("host", "krake.example.com".parse().unwrap());
        h.insert("origin", origin.parse().unwrap());
        h
    };
    let plain = WebConfig::default();
    assert!(same_origin(&headers("http://krake.example.com"), &plain));
    assert!(same_origin(&headers("https://krake.example.com"), &plain));
    assert!(!same_origin(&headers("https://evil.example"), &plain));
    assert!(!same_origin(&headers("ftp://krake.example.com"), &plain));
    let https = WebConfig {
        secure_cookies: true,
        ..WebConfig::default()
    };
    assert!(same_origin(&headers("https://krake.example.com"), &https));
    assert!(!same_origin(&headers("http://krake.example.com"), &https));
    let public = WebConfig {
        public_url: Some("https://krake.example.com/".into()),
        ..WebConfig::default()
    };
    assert!(same_origin(&headers("https://krake.example.com"), &public));
    assert!(!same_origin(&headers("http://krake.example.com"), &public));
    assert!(!same_origin(
        &headers("https://krake.example.com:8443"),
        &public
    ));
}

#[tokio::test]
async fn a_socket_flood_is_refused_beyond_the_burst_and_not_stored() {
    let app = spawn().await;
    let mut c = connect(&app);
    c.send(json!({"type":"hello","token":"tok-bo"}));
    assert_eq!(c.next().await["type"], "welcome");
    let sent = 300;
    for i in 0..sent {
        c.send(json!({"type":"say","id":format!("m{i}"),"text":"/help"}));
    }
    let (mut replies, mut limited) = (0, 0);
    while replies + limited < sent {
        let m = c.next().await;
        match (m["type"].as_str(), m["code"].as_str()) {
            (Some("error"), Some("rate_limited")) => limited += 1,
            (Some("error"), other) => panic!("unexpected error {other:?}: {m}"),
            (Some("reply"), _) => replies += 1,
            _ => {}
        }
    }
    assert!(
        replies <= krake_web::live::SOCKET_BURST as usize + 2,
        "{replies} messages handled: the burst is {}",
        krake_web::live::SOCKET_BURST
    );
    assert!(limited >= sent - replies, "{limited} refused");
}

/// Fuzzing the socket's frames (a fixed number of cases, deterministic): arbitrary text,
/// JSON of every shape, and valid frames with arbitrary fields never end the connection or the
/// process; each gets a `bad_frame`/`bad_button` error or a reply, and a plain message still
/// gets its answer afterwards.
#[tokio::test]
async fn arbitrary_frames_get_an_error_and_the_socket_goes_on() {
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let app = spawn().await;
    let mut runner = TestRunner::deterministic();
    let garbage = prop_oneof![
        any::<String>(),
        "[{}\\[\\]\":,a-z0-9 ]{0,40}",
        (any::<String>(), any::<String>())
            .prop_map(|(t, x)| json!({"type": t, "id": x}).to_string()),
        any::<String>().prop_map(|p| json!({"type":"press","payload":p}).to_string()),
        any::<i64>().prop_map(|n| json!({"type":"ack","seq":n}).to_string()),
        "[a-z]{1,8}".prop_map(|t| format!("{{\"type\":\"{t}\"")),
    ];
    // Several sessions, so the per-session message limit is not what answers.
    for _ in 0..8 {
        let mut c = connect(&app);
        c.send(json!({"type":"hello","token":"tok-bo"}));
        assert_eq!(c.next().await["type"], "welcome");
        for _ in 0..15 {
            let frame = garbage.new_tree(&mut runner).unwrap().current();
            c.raw(krake_web::ws::Incoming::Text(frame));
        }
        // Every frame was answered with an error, a reply or nothing (an ack); the connection
        // is still there and a plain message gets its answer.
        c.send(json!({"type":"say","id":"after","text":"/help"}));
        loop {
            let m = c.next().await;
            let kind = m["type"].as_str().unwrap_or_default().to_owned();
            assert!(
                kind == "error" || kind == "reply" || kind == "thread",
                "{m}"
            );
            if kind == "reply" && m["re"] == "after" {
                break;
            }
        }
    }
}
