//! The REST API against a real SQLite store: filters and paging, roles per workspace, the
//! error shape and codes (400/401/403/404/409/413), CSRF, sign-in, and the OpenAPI document.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use axum::http::{Method, StatusCode};
use common::{As, spawn};
use krake_core::inbox::ThreadKind;

fn assert_error(v: &serde_json::Value, code: &str) {
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
}

#[tokio::test]
async fn list_filters_and_pages() {
    let app = spawn().await;
    for i in 0..5 {
        app.thread("lunavo", ThreadKind::Approval, &format!("approve {i}"))
            .await;
    }
    for i in 0..2 {
        app.thread("monarch", ThreadKind::Question, &format!("q {i}"))
            .await;
    }
    let ana = As::Token("tok-ana");
    let (s, v) = app.get("/api/v1/inbox", ana).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["threads"].as_array().unwrap().len(), 7);
    assert!(v["next_before"].is_null());
    let (_, v) = app.get("/api/v1/inbox?workspace=lunavo", ana).await;
    assert_eq!(v["threads"].as_array().unwrap().len(), 5);
    let (_, v) = app.get("/api/v1/inbox?kind=question", ana).await;
    assert_eq!(v["threads"].as_array().unwrap().len(), 2);
    let (_, v) = app.get("/api/v1/inbox?status=approved", ana).await;
    assert_eq!(v["threads"].as_array().unwrap().len(), 0);
    // Paging: newest first, 3 per page.
    let (_, p1) = app.get("/api/v1/inbox?limit=3", ana).await;
    let ids1: Vec<i64> = p1["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids1, [7, 6, 5]);
    let next = p1["next_before"].as_i64().unwrap();
    let (_, p2) = app
        .get(&format!("/api/v1/inbox?limit=3&before={next}"), ana)
        .await;
    let ids2: Vec<i64> = p2["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids2, [4, 3, 2]);
    // A member of Monarch sees only Monarch's threads.
    let (_, v) = app.get("/api/v1/inbox", As::Token("tok-mo")).await;
    assert_eq!(v["threads"].as_array().unwrap().len(), 2);
    assert!(
        v["threads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["workspace"] == "monarch")
    );
}

#[tokio::test]
async fn malformed_requests_are_400_with_the_error_shape() {
    let app = spawn().await;
    let t = app.thread("lunavo", ThreadKind::Question, "q").await;
    let ana = As::Token("tok-ana");
    for path in [
        "/api/v1/inbox?status=bogus",
        "/api/v1/inbox?kind=nope",
        "/api/v1/inbox?limit=0",
        "/api/v1/inbox?limit=abc",
        "/api/v1/inbox?colour=red",
        "/api/v1/inbox/abc",
        "/api/v1/inbox/-3",
    ] {
        let (s, v) = app.get(path, ana).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert_error(&v, "bad_request");
    }
    let reply = format!("/api/v1/inbox/{}/reply", t.id.0);
    for body in [
        "{not json",
        r#"{"text": 12}"#,
        r#"{"text":"hi","extra":1}"#,
        r#"{"text":"   "}"#,
        "[]",
    ] {
        let (s, v) = app.post(&reply, ana, Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_error(&v, "bad_request");
    }
    // Nothing was changed by the bad requests.
    let (_, v) = app.get(&format!("/api/v1/inbox/{}", t.id.0), ana).await;
    assert_eq!(v["replies"].as_array().unwrap().len(), 0);
    assert_eq!(v["status"], "open");
    // Approving a question is a bad request too.
    let (s, v) = app
        .post(&format!("/api/v1/inbox/{}/approve", t.id.0), ana, None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = spawn().await;
    let t = app.thread("lunavo", ThreadKind::Question, "q").await;
    let big = format!(r#"{{"text":"{}"}}"#, "x".repeat(100 * 1024));
    let (s, v) = app
        .post(
            &format!("/api/v1/inbox/{}/reply", t.id.0),
            As::Token("tok-ana"),
            Some(&big),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_error(&v, "payload_too_large");
}

#[tokio::test]
async fn unknown_forged_and_expired_credentials_are_401() {
    let app = spawn().await;
    app.thread("lunavo", ThreadKind::Approval, "a").await;
    for who in [
        As::Nobody,
        As::Token("tok-nobody"),
        As::Cookie("forged", None),
    ] {
        let (s, v) = app.get("/api/v1/inbox", who).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
        assert_error(&v, "unauthenticated");
    }
    let (cookie, _) = app.sign_in("bo").await;
    let (s, _) = app.get("/api/v1/inbox", As::Cookie(&cookie, None)).await;
    assert_eq!(s, StatusCode::OK);
    app.clock.advance(std::time::Duration::from_secs(13 * 3600));
    let (s, v) = app.get("/api/v1/inbox", As::Cookie(&cookie, None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "expired session: {v}");
    // The dashboard sends an expired session to the sign-in page.
    let (s, h, _) = app
        .send(Method::GET, "/", As::Cookie(&cookie, None), None)
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], "/login");
}

#[tokio::test]
async fn roles_per_workspace_decide_who_may_do_what() {
    let app = spawn().await;
    let a = app.thread("lunavo", ThreadKind::Approval, "a").await;
    let approve = format!("/api/v1/inbox/{}/approve", a.id.0);
    // A viewer reads but may not decide.
    let (s, _) = app
        .get(&format!("/api/v1/inbox/{}", a.id.0), As::Token("tok-vic"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = app.post(&approve, As::Token("tok-vic"), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_error(&v, "forbidden");
    let (s, _) = app
        .post(
            &format!("/api/v1/inbox/{}/archive", a.id.0),
            As::Token("tok-vic"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A member of another workspace may neither read nor decide, nor list it; the thread
    // is "not found" to them (see security.rs).
    let (s, _) = app
        .get(&format!("/api/v1/inbox/{}", a.id.0), As::Token("tok-mo"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.post(&approve, As::Token("tok-mo"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .get("/api/v1/inbox?workspace=lunavo", As::Token("tok-mo"))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .get("/api/v1/inbox?workspace=atlantis", As::Token("tok-mo"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app.get("/api/v1/inbox/999", As::Token("tok-ana")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Nothing changed so far.
    let (_, v) = app
        .get(&format!("/api/v1/inbox/{}", a.id.0), As::Token("tok-ana"))
        .await;
    assert_eq!(v["status"], "open");
    // A member decides; a second decision is a conflict carrying the current state.
    let (s, v) = app.post(&approve, As::Token("tok-bo"), Some("")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["outcome"], "decided");
    assert_eq!(v["thread"]["status"], "approved");
    assert_eq!(v["thread"]["decided_by"], "bo");
    let (s, v) = app
        .post(
            &format!("/api/v1/inbox/{}/reject", a.id.0),
            As::Token("tok-ana"),
            Some(r#"{"reason":"late"}"#),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_error(&v, "conflict");
    assert_eq!(v["error"]["current"]["status"], "approved");
    // The decision is audited with the user and the front.
    let (s, v) = app
        .get(
            &format!("/api/v1/inbox/{}/audit", a.id.0),
            As::Token("tok-vic"),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let approved: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "approved")
        .collect();
    assert_eq!(approved.len(), 1, "{v}");
    assert_eq!(approved[0]["actor"], "bo");
    assert_eq!(approved[0]["front"], "api");
}

#[tokio::test]
async fn a_stale_version_is_refused() {
    let app = spawn().await;
    let a = app.thread("lunavo", ThreadKind::Approval, "a").await;
    let (s, v) = app
        .post(
            &format!("/api/v1/inbox/{}/approve", a.id.0),
            As::Token("tok-bo"),
            Some(&format!(r#"{{"version":{}}}"#, a.version + 3)),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["current"]["status"], "open");
}

#[tokio::test]
async fn reply_archive_unarchive() {
    let app = spawn().await;
    let q = app
        .thread("lunavo", ThreadKind::Question, "which colour?")
        .await;
    let bo = As::Token("tok-bo");
    let (s, v) = app
        .post(
            &format!("/api/v1/inbox/{}/reply", q.id.0),
            bo,
            Some(r#"{"text":"blue"}"#),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "answered");
    assert_eq!(v["replies"][0]["text"], "blue");
    assert_eq!(v["replies"][0]["author"], "bo");
    let (_, v) = app
        .post(&format!("/api/v1/inbox/{}/archive", q.id.0), bo, None)
        .await;
    assert_eq!(v["status"], "archived");
    let (_, l) = app.get("/api/v1/inbox", bo).await;
    assert_eq!(
        l["threads"].as_array().unwrap().len(),
        0,
        "archived threads are not listed by default"
    );
    let (_, l) = app.get("/api/v1/inbox?status=archived", bo).await;
    assert_eq!(l["threads"].as_array().unwrap().len(), 1);
    let (_, v) = app
        .post(&format!("/api/v1/inbox/{}/unarchive", q.id.0), bo, None)
        .await;
    assert_eq!(v["status"], "answered");
}

#[tokio::test]
async fn session_writes_need_the_csrf_token() {
    let app = spawn().await;
    let a = app.thread("lunavo", ThreadKind::Approval, "a").await;
    let (cookie, csrf) = app.sign_in("bo").await;
    let path = format!("/api/v1/inbox/{}/approve", a.id.0);
    let (s, v) = app.post(&path, As::Cookie(&cookie, None), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = app
        .post(&path, As::Cookie(&cookie, Some("wrong")), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = app
        .post(&path, As::Cookie(&cookie, Some(&csrf)), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, audit) = app
        .get(
            &format!("/api/v1/inbox/{}/audit", a.id.0),
            As::Token("tok-bo"),
        )
        .await;
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "approved" && e["front"] == "web" && e["actor"] == "bo"),
        "{audit}"
    );
}

#[tokio::test]
async fn sign_in_sets_a_safe_cookie_and_is_rate_limited() {
    let app = spawn().await;
    let token = app.login_token().await;
    let form =
        |user: &str, pw: &str| common::App::login_request(user, pw, Some(&token), Some(&token));
    use tower::ServiceExt;
    let res = app
        .router
        .clone()
        .oneshot(form("ana", "correct+horse+battery"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let c = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Path=/"),
        "{c}"
    );
    let res = app
        .router
        .clone()
        .oneshot(form("nobody", "x"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    for _ in 0..5 {
        let res = app
            .router
            .clone()
            .oneshot(form("bo", "wrong"))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // Backing off now, even with the right password (from this address).
    let res = app
        .router
        .clone()
        .oneshot(form("bo", "correct+horse+battery"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    // Other users are not affected.
    let res = app
        .router
        .clone()
        .oneshot(form("vic", "correct+horse+battery"))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let app = spawn().await;
    let (cookie, csrf) = app.sign_in("ana").await;
    use tower::ServiceExt;
    let req = axum::http::Request::post("/logout")
        .header("cookie", format!("krake_session={cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(format!("csrf={csrf}")))
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (s, _) = app.get("/api/v1/me", As::Cookie(&cookie, None)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn workspaces_agents_and_me_follow_the_roles() {
    let app = spawn().await;
    let (_, v) = app.get("/api/v1/workspaces", As::Token("tok-mo")).await;
    assert_eq!(
        v,
        serde_json::json!([{"slug":"monarch","name":"Monarch","role":"member"}])
    );
    let (_, v) = app.get("/api/v1/workspaces", As::Token("tok-ana")).await;
    assert_eq!(v.as_array().unwrap().len(), 5);
    let (_, v) = app.get("/api/v1/agents", As::Token("tok-ana")).await;
    assert_eq!(v.as_array().unwrap().len(), 12);
    let (_, v) = app.get("/api/v1/agents", As::Token("tok-mo")).await;
    assert!(v.as_array().unwrap().iter().all(|a| {
        a["workspaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w == "monarch")
    }));
    let (_, v) = app.get("/api/v1/me", As::Token("tok-vic")).await;
    assert_eq!(v["user"], "vic");
    assert_eq!(v["via"], "token");
    assert!(v["csrf"].is_null());
}

/// The OpenAPI document stays true: every documented operation is routed (it answers 401
/// without credentials, not 404/405), every route of the API is documented, and the documented
/// properties of a thread are the ones a real response has.
#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let app = spawn().await;
    let t = app.thread("lunavo", ThreadKind::Approval, "a").await;
    let (s, doc) = app.get("/api/v1/openapi.json", As::Nobody).await;
    assert_eq!(s, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (path, ops) in paths {
        for (method, _) in ops.as_object().unwrap() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let concrete = path
                .replace("{id}", &t.id.0.to_string())
                .replace("{agent}", "soshie")
                .replace("{folder}", "calendar")
                .replace("{column}", "title")
                .replace("{slug}", "lunavo");
            let (s, _, body) = app.send(m.clone(), &concrete, As::Nobody, None).await;
            assert_eq!(
                s,
                StatusCode::UNAUTHORIZED,
                "{method} {path} is documented but answers {s}: {body}"
            );
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    documented.sort();
    let mut expected = vec![
        "GET /api/v1/inbox",
        "GET /api/v1/inbox/{id}",
        "GET /api/v1/inbox/{id}/audit",
        "POST /api/v1/inbox/{id}/reply",
        "POST /api/v1/inbox/{id}/approve",
        "POST /api/v1/inbox/{id}/reject",
        "POST /api/v1/inbox/{id}/archive",
        "POST /api/v1/inbox/{id}/unarchive",
        "GET /api/v1/workspaces",
        "GET /api/v1/agents",
        "GET /api/v1/me",
        "GET /api/v1/folders",
        "GET /api/v1/folders/{agent}/{folder}",
        "GET /api/v1/folders/{agent}/{folder}/csv",
        "POST /api/v1/folders/{agent}/{folder}/csv",
        "POST /api/v1/folders/{agent}/{folder}/entries",
        "PATCH /api/v1/folders/{agent}/{folder}/entries/{id}",
        "DELETE /api/v1/folders/{agent}/{folder}/entries/{id}",
        "POST /api/v1/folders",
        "PATCH /api/v1/folders/{agent}/{folder}",
        "DELETE /api/v1/folders/{agent}/{folder}",
        "POST /api/v1/folders/{agent}/{folder}/columns",
        "PATCH /api/v1/folders/{agent}/{folder}/columns/{column}",
        "DELETE /api/v1/folders/{agent}/{folder}/columns/{column}",
        "GET /api/v1/overview",
        "POST /api/v1/workspaces/{slug}/metrics",
        "GET /api/v1/runs",
        "GET /api/v1/runs/{id}",
        "POST /api/v1/runs/{id}/cancel",
        "GET /api/v1/deadletters",
        "POST /api/v1/deadletters/{id}/retry",
        "POST /api/v1/deadletters/{id}/discard",
        "GET /api/v1/workspaces/{slug}/knowledge",
        "POST /api/v1/workspaces/{slug}/knowledge",
        "DELETE /api/v1/workspaces/{slug}/knowledge/{name}",
        "GET /api/v1/workspaces/{slug}/knowledge/search",
    ];
    expected.sort();
    assert_eq!(documented, expected);
    // Routes that are not documented do not exist.
    let (s, _, _) = app
        .send(
            Method::DELETE,
            &format!("/api/v1/inbox/{}", t.id.0),
            As::Token("tok-ana"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    // Schema properties = the keys of real responses.
    let schemas = &doc["components"]["schemas"];
    let props = |name: &str| -> Vec<String> {
        let mut v: Vec<String> = schemas[name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{name}: {}", schemas[name]))
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    };
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let (_, page) = app.get("/api/v1/inbox", As::Token("tok-ana")).await;
    assert_eq!(props("ThreadPage"), keys(&page));
    assert_eq!(props("ThreadSummary"), keys(&page["threads"][0]));
    let (_, (_, decision)) = (
        (),
        app.post(
            &format!("/api/v1/inbox/{}/approve", t.id.0),
            As::Token("tok-ana"),
            None,
        )
        .await,
    );
    assert_eq!(props("DecisionView"), keys(&decision));
    let (_, audit) = app
        .get(
            &format!("/api/v1/inbox/{}/audit", t.id.0),
            As::Token("tok-ana"),
        )
        .await;
    assert_eq!(props("AuditView"), keys(&audit[0]));
    let (_, me) = app.get("/api/v1/me", As::Token("tok-ana")).await;
    assert_eq!(props("MeView"), keys(&me));
    // ThreadView flattens ThreadSummary: its own properties plus the summary's.
    let (_, full) = app
        .get(&format!("/api/v1/inbox/{}", t.id.0), As::Token("tok-ana"))
        .await;
    let mut view = Vec::new();
    for part in schemas["ThreadView"]["allOf"].as_array().unwrap() {
        let part = match part["$ref"].as_str() {
            Some(r) => &schemas[r.rsplit('/').next().unwrap()],
            None => part,
        };
        view.extend(part["properties"].as_object().unwrap().keys().cloned());
    }
    view.sort();
    assert_eq!(view, keys(&full));
}

#[tokio::test]
async fn the_dashboard_shows_user_text_as_text() {
    let app = spawn().await;
    let evil = "<script>alert(1)</script>";
    let t = app.thread("lunavo", ThreadKind::Approval, evil).await;
    let (cookie, _) = app.sign_in("ana").await;
    for path in ["/".to_owned(), format!("/threads/{}", t.id.0)] {
        let (s, h, html) = app
            .send(Method::GET, &path, As::Cookie(&cookie, None), None)
            .await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}"
        );
        assert!(!html.contains(evil), "{path} has the raw script");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("script-src 'self'")
        );
    }
    let (s, h, _) = app.send(Method::GET, "/", As::Nobody, None).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], "/login");
}

#[tokio::test]
async fn dashboard_forms_decide_with_csrf_and_show_conflicts() {
    let app = spawn().await;
    let t = app.thread("lunavo", ThreadKind::Approval, "ship it").await;
    let (cookie, csrf) = app.sign_in("bo").await;
    use tower::ServiceExt;
    let post = |body: String| {
        axum::http::Request::post(format!("/threads/{}", t.id.0))
            .header("cookie", format!("krake_session={cookie}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(axum::body::Body::from(body))
            .unwrap()
    };
    let res = app
        .router
        .clone()
        .oneshot(post("action=approve&csrf=forged".into()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app
        .router
        .clone()
        .oneshot(post(format!(
            "action=approve&csrf={csrf}&version={}",
            t.version
        )))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = app
        .router
        .clone()
        .oneshot(post(format!("action=reject&csrf={csrf}&text=no")))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let html = String::from_utf8(
        axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(html.contains("already approved by bo"), "{html}");
}

#[tokio::test]
async fn folders_are_tables_for_those_who_see_the_agents_workspaces() {
    let app = spawn().await;
    let ana = krake_core::actor::Actor::new(
        krake_core::actor::UserName::parse("ana").unwrap(),
        krake_core::actor::Front::Cli,
        krake_core::actor::Role::Owner,
    );
    for cmd in [
        r#"/folder create soshie calendar"#,
        r#"/folder addcol soshie calendar title text"#,
        r#"/folder addcol soshie calendar status status draft,posted"#,
        r#"/folder add soshie calendar title="<b>Hoodie</b> launch" status=draft"#,
    ] {
        let r = app.state.krake.handle_text(&ana, cmd).await;
        assert_eq!(
            r.tone,
            krake_core::reply::Tone::Success,
            "{cmd}: {}",
            r.text
        );
    }
    let (s, v) = app.get("/api/v1/folders", As::Token("tok-vic")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        serde_json::json!([{"agent":"Soshie","name":"calendar","columns":["title","status"],"entries":1}])
    );
    let (s, v) = app
        .get("/api/v1/folders/soshie/calendar", As::Token("tok-vic"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["columns"][1],
        serde_json::json!({"name":"status","kind":"status: draft|posted"})
    );
    assert_eq!(
        v["entries"][0]["values"],
        serde_json::json!({"title":"<b>Hoodie</b> launch","status":"draft"})
    );
    let (s, _, csv) = app
        .send(
            Method::GET,
            "/api/v1/folders/soshie/calendar/csv",
            As::Token("tok-vic"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(csv.starts_with("title,status"), "{csv}");
    // Monarch's member sees none of Soshie's workspaces.
    let (s, _) = app
        .get("/api/v1/folders/soshie/calendar", As::Token("tok-mo"))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, v) = app.get("/api/v1/folders", As::Token("tok-mo")).await;
    assert_eq!(v, serde_json::json!([]));
    let (s, _) = app
        .get("/api/v1/folders/nobody/calendar", As::Token("tok-ana"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .get("/api/v1/folders/soshie/nothing", As::Token("tok-ana"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The dashboard shows it as an HTML table, values escaped.
    let (cookie, _) = app.sign_in("vic").await;
    let (s, _, html) = app
        .send(
            Method::GET,
            "/folders/soshie/calendar",
            As::Cookie(&cookie, None),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains(r#"<td data-column="title">&lt;b&gt;Hoodie&lt;/b&gt; launch</td><td data-column="status">draft</td>"#),
        "{html}"
    );
    let (_, _, list) = app
        .send(Method::GET, "/folders", As::Cookie(&cookie, None), None)
        .await;
    assert!(
        list.contains(r#"<a href="/folders/Soshie/calendar">calendar</a>"#),
        "{list}"
    );
}

#[tokio::test]
async fn folder_entries_change_through_the_api_with_checked_values() {
    let app = spawn().await;
    let ana = krake_core::actor::Actor::new(
        krake_core::actor::UserName::parse("ana").unwrap(),
        krake_core::actor::Front::Cli,
        krake_core::actor::Role::Owner,
    );
    for cmd in [
        "/folder create soshie calendar",
        "/folder addcol soshie calendar title text",
        "/folder addcol soshie calendar day date",
        "/folder addcol soshie calendar status status draft,posted",
    ] {
        let r = app.state.krake.handle_text(&ana, cmd).await;
        assert_eq!(
            r.tone,
            krake_core::reply::Tone::Success,
            "{cmd}: {}",
            r.text
        );
    }
    let base = "/api/v1/folders/soshie/calendar";
    let bo = As::Token("tok-bo");
    let (s, v) = app
        .post(
            &format!("{base}/entries"),
            bo,
            Some(r#"{"values":{"title":"Launch","day":"2026-12-01","status":"draft"}}"#),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_i64().unwrap();
    assert_eq!(v["values"]["status"], "draft");
    // Bad values are refused and change nothing.
    let (s, v) = app
        .post(
            &format!("{base}/entries"),
            bo,
            Some(r#"{"values":{"day":"tomorrow","status":"gone","colour":"red"}}"#),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("day") && m.contains("status") && m.contains("colour"),
        "{m}"
    );
    let (s, v) = app
        .json(
            Method::PATCH,
            &format!("{base}/entries/{id}"),
            bo,
            Some(r#"{"values":{"status":"posted"}}"#),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["values"]["status"], "posted");
    assert_eq!(v["values"]["title"], "Launch");
    // A viewer may read but not change.
    let (s, _) = app
        .json(
            Method::PATCH,
            &format!("{base}/entries/{id}"),
            As::Token("tok-vic"),
            Some(r#"{"values":{"status":"draft"}}"#),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // CSV import: all or nothing, every bad row named.
    let bad = "title,day,status\nA,2026-12-02,draft\nB,not-a-date,draft\nC,2026-12-03,maybe\n";
    let req = |body: &str| {
        axum::http::Request::post(format!("{base}/csv"))
            .header("authorization", "Bearer tok-bo")
            .header("content-type", "text/csv")
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap()
    };
    use tower::ServiceExt;
    let res = app.router.clone().oneshot(req(bad)).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let text = String::from_utf8(
        axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(text.contains("line 3") && text.contains("line 4"), "{text}");
    let (_, v) = app.get(base, bo).await;
    assert_eq!(
        v["entries"].as_array().unwrap().len(),
        1,
        "nothing was imported"
    );
    let res = app
        .router
        .clone()
        .oneshot(req(
            "title,day,status\nA,2026-12-02,draft\nB,2026-12-03,posted\n",
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (_, v) = app.get(base, bo).await;
    assert_eq!(v["entries"].as_array().unwrap().len(), 3);
    let (s, _, _) = app
        .send(Method::DELETE, &format!("{base}/entries/{id}"), bo, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = app
        .send(Method::DELETE, &format!("{base}/entries/{id}"), bo, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A session needs the CSRF token for changes.
    let (cookie, _) = app.sign_in("bo").await;
    let (s, _) = app
        .post(
            &format!("{base}/entries"),
            As::Cookie(&cookie, None),
            Some(r#"{"values":{"title":"x"}}"#),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_kpi_panel_shows_a_workspaces_figures_to_its_members_only() {
    use krake_core::commerce::{CommerceEnvelope, CommerceEvent, CommerceRepo, Minor, Order};
    use krake_core::inbound::{IdempotencyKey, InboundRecord, Recorded};
    use krake_core::ports::InboundRepo;
    let app = spawn().await;
    let now = krake_core::time::Clock::now(app.clock.as_ref());
    let order = |id: &str, total: i64, status: &str, refunded: i64| Order {
        id: id.into(),
        name: format!("#{id}"),
        day: "2026-11-24".into(),
        utc_offset_minutes: 60,
        created_at: now,
        updated_at: now,
        currency: "EUR".into(),
        total: Minor(total),
        refunded: Minor(refunded),
        financial_status: status.into(),
        email: None,
        customer_name: Some("Eve".into()),
    };
    let events = [
        order("1001", 2050, "paid", 0),
        order("1002", 3000, "partially_refunded", 500),
        order("1003", 1525, "pending", 0),
    ];
    for (i, o) in events.into_iter().enumerate() {
        let ev = InboundRecord {
            source: "shopify".into(),
            idempotency_key: IdempotencyKey::parse(&format!("shopify:kpi-{i}")).unwrap(),
            actor: krake_core::actor::UserName::parse("shopify").unwrap(),
            conversation: "lunavo.myshopify.com".into(),
            content: String::new(),
            received_at: now,
        };
        let Recorded::New(id) = app.store.record_inbound(&ev).await.unwrap() else {
            panic!("the event was new")
        };
        let env = CommerceEnvelope {
            workspace: common::ws("lunavo"),
            event: CommerceEvent::OrderCreated(o),
        };
        app.store.apply(id, &env, &[], now).await.unwrap();
    }
    // vic is a viewer of lunavo: sees its figures.
    let (cookie, _) = app.sign_in("vic").await;
    let (s, _, html) = app
        .send(
            Method::GET,
            "/workspaces/lunavo",
            As::Cookie(&cookie, None),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    for want in [
        r#"data-kpi="revenue">65.75 EUR"#,
        r#"data-kpi="orders">3<"#,
        r#"data-kpi="aov">21.91 EUR"#,
        r#"data-kpi="paid">2 / 1<"#,
        r#"data-kpi="refunds">5.00 EUR"#,
        r#"data-kpi="late">Late print orders: 0"#,
        "<td>2026-11-24</td><td>3</td>",
    ] {
        assert!(html.contains(want), "missing {want} in {html}");
    }
    // The workspaces page links to it.
    let (_, _, list) = app
        .send(Method::GET, "/workspaces", As::Cookie(&cookie, None), None)
        .await;
    assert!(list.contains(r#"href="/workspaces/lunavo""#));
    // mo belongs to monarch only: 403, and no figure leaks.
    let (mo, _) = app.sign_in("mo").await;
    let (s, _, html) = app
        .send(
            Method::GET,
            "/workspaces/lunavo",
            As::Cookie(&mo, None),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(!html.contains("65.75"));
    assert!(html.contains("ask one of its owners"));
    // monarch has no orders yet.
    let (s, _, html) = app
        .send(
            Method::GET,
            "/workspaces/monarch",
            As::Cookie(&mo, None),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("No orders yet."));
    // An unknown workspace is 404; signed out goes to the sign-in page.
    let (s, _, _) = app
        .send(Method::GET, "/workspaces/nope", As::Cookie(&mo, None), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, h, _) = app
        .send(Method::GET, "/workspaces/lunavo", As::Nobody, None)
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], "/login");
}

#[tokio::test]
async fn sign_in_needs_the_sign_in_pages_csrf_token() {
    use tower::ServiceExt;
    let app = spawn().await;
    let token = app.login_token().await;
    // A visitor without the cookie gets a token of their own.
    let (_, h, page) = app.send(Method::GET, "/login", As::Nobody, None).await;
    assert!(!page.contains(&token), "a new visitor gets a new token");
    assert!(
        h["set-cookie"]
            .to_str()
            .unwrap()
            .contains("SameSite=Strict")
    );
    // With the cookie, the page keeps the browser's token, so two open tabs both work.
    let req = axum::http::Request::get("/login")
        .header("cookie", format!("krake_login_csrf={token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&bytes).contains(&format!(r#"value="{token}""#)));
    let other = "0".repeat(64);
    for (cookie, field, why) in [
        (None, None, "neither"),
        (Some(token.as_str()), None, "no field"),
        (None, Some(token.as_str()), "no cookie"),
        (Some(token.as_str()), Some(other.as_str()), "a forged field"),
        (Some(""), Some(""), "empty ones"),
    ] {
        let req = common::App::login_request("ana", "correct+horse+battery", cookie, field);
        let res = app.router.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{why}");
        let fresh = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("krake_login_csrf="));
        assert!(fresh, "{why}: the refusal hands out a fresh form");
        assert!(
            res.headers()
                .get_all("set-cookie")
                .iter()
                .all(|c| !c.to_str().unwrap().starts_with("krake_session=")),
            "{why}: no session"
        );
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        let html = String::from_utf8_lossy(&bytes);
        assert!(
            html.contains("Sign in again with the form below"),
            "{why}: {html}"
        );
    }
    // A wrong password keeps the token; the matching pair signs in and clears it.
    let req = common::App::login_request("ana", "wrong", Some(&token), Some(&token));
    let res = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&bytes).contains(&token));
    let req =
        common::App::login_request("ana", "correct+horse+battery", Some(&token), Some(&token));
    let res = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let set: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .collect();
    assert!(
        set.iter().any(|c| c.starts_with("krake_session=")),
        "{set:?}"
    );
    assert!(
        set.iter()
            .any(|c| c.starts_with("krake_login_csrf=;") && c.contains("Max-Age=0")),
        "{set:?}"
    );
}

/// Folders and columns are created, renamed and deleted over the API under the chat commands'
/// rules: names are checked, a taken name is 409, a viewer may not, another workspace's member
/// may not even see it, and values survive a column rename.
#[tokio::test]
async fn folders_and_columns_are_made_renamed_and_deleted_through_the_api() {
    let app = spawn().await;
    let bo = As::Token("tok-bo");
    let (s, v) = app
        .post(
            "/api/v1/folders",
            bo,
            Some(r#"{"agent":"soshie","name":"calendar"}"#),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["agent"], "Soshie");
    assert_eq!(v["columns"], serde_json::json!([]));
    let (s, v) = app
        .post(
            "/api/v1/folders",
            bo,
            Some(r#"{"agent":"Soshie","name":"CALENDAR"}"#),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "names compare ignoring case: {v}");
    assert_error(&v, "conflict");
    assert!(v["error"].get("current").is_none(), "{v}");
    for (body, want) in [
        (r#"{"agent":"soshie"}"#, "`name` is required"),
        (r#"{"agent":"soshie","name":"a=b"}"#, "not a valid name"),
        (
            r#"{"agent":"soshie","name":"x","colour":1}"#,
            "unknown field",
        ),
        (r#"{"agent":"nobody","name":"x"}"#, "no agent"),
    ] {
        let (s, v) = app.post("/api/v1/folders", bo, Some(body)).await;
        let m = v["error"]["message"].as_str().unwrap_or_default();
        assert!(m.contains(want), "{body}: {v}");
        assert!(
            s == StatusCode::BAD_REQUEST || s == StatusCode::NOT_FOUND,
            "{body}: {s}"
        );
    }
    let cols = "/api/v1/folders/soshie/calendar/columns";
    let (s, v) = app
        .post(cols, bo, Some(r#"{"name":"title","kind":"text"}"#))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v, serde_json::json!({"name":"title","kind":"text"}));
    let (s, v) = app
        .post(
            cols,
            bo,
            Some(r#"{"name":"state","kind":"status","values":["draft","posted"]}"#),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["kind"], "status: draft|posted");
    let (s, v) = app
        .post(cols, bo, Some(r#"{"name":"when","kind":"status: a|b"}"#))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    for body in [
        r#"{"name":"x","kind":"colour"}"#,
        r#"{"name":"x","kind":"status"}"#,
        r#"{"name":"x"}"#,
    ] {
        let (s, v) = app.post(cols, bo, Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
    }
    let (s, _) = app
        .post(cols, bo, Some(r#"{"name":"Title","kind":"text"}"#))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, v) = app
        .post(
            "/api/v1/folders/soshie/calendar/entries",
            bo,
            Some(r#"{"values":{"title":"Launch","state":"draft"}}"#),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Renaming a column keeps its values.
    let (s, v) = app
        .json(
            Method::PATCH,
            &format!("{cols}/title"),
            bo,
            Some(r#"{"name":"headline"}"#),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "headline");
    let (s, v) = app
        .json(
            Method::PATCH,
            &format!("{cols}/headline"),
            bo,
            Some(r#"{"name":"state"}"#),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, _, _) = app
        .send(Method::DELETE, &format!("{cols}/when"), bo, None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = app
        .send(Method::DELETE, &format!("{cols}/when"), bo, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = app.get("/api/v1/folders/soshie/calendar", bo).await;
    assert_eq!(
        v["columns"],
        serde_json::json!([{"name":"headline","kind":"text"},{"name":"state","kind":"status: draft|posted"}])
    );
    assert_eq!(
        v["entries"][0]["values"],
        serde_json::json!({"headline":"Launch","state":"draft"})
    );
    // Rename the folder; the old name is gone.
    let (s, v) = app
        .json(
            Method::PATCH,
            "/api/v1/folders/soshie/calendar",
            bo,
            Some(r#"{"name":"posts"}"#),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "posts");
    assert_eq!(v["entries"].as_array().unwrap().len(), 1);
    let (s, _) = app.get("/api/v1/folders/soshie/calendar", bo).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A viewer may not change the structure; a member of another workspace may not see it.
    let (s, _) = app
        .post(
            "/api/v1/folders",
            As::Token("tok-vic"),
            Some(r#"{"agent":"soshie","name":"mine"}"#),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = app
        .send(
            Method::DELETE,
            "/api/v1/folders/soshie/posts",
            As::Token("tok-vic"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, _) = app
        .send(
            Method::DELETE,
            "/api/v1/folders/soshie/posts",
            As::Token("tok-mo"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The member deletes it, with its entry.
    let (s, _, body) = app
        .send(Method::DELETE, "/api/v1/folders/soshie/posts", bo, None)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"deleted_entries": 1})
    );
    let (_, v) = app.get("/api/v1/folders", bo).await;
    assert_eq!(v, serde_json::json!([]));
}

#[tokio::test]
async fn csv_exports_cannot_run_formulas_and_download_as_files() {
    let app = spawn().await;
    let ana = krake_core::actor::Actor::new(
        krake_core::actor::UserName::parse("ana").unwrap(),
        krake_core::actor::Front::Cli,
        krake_core::actor::Role::Owner,
    );
    for cmd in [
        r#"/folder create soshie leads"#,
        r#"/folder addcol soshie leads name text"#,
        r#"/folder addcol soshie leads note text"#,
        r#"/folder add soshie leads name="=HYPERLINK(""http://evil.test"",""x"")" note="@SUM(1+1)*cmd|' /C calc'!A0""#,
        r#"/folder add soshie leads name="+1+1" note=-2-3"#,
        r#"/folder add soshie leads name=Ana note=-3"#,
    ] {
        let r = app.state.krake.handle_text(&ana, cmd).await;
        assert_eq!(
            r.tone,
            krake_core::reply::Tone::Success,
            "{cmd}: {}",
            r.text
        );
    }
    let (s, headers, csv) = app
        .send(
            Method::GET,
            "/api/v1/folders/soshie/leads/csv",
            As::Token("tok-vic"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{csv}");
    let mut reader = csv::ReaderBuilder::new().from_reader(csv.as_bytes());
    let mut cells = 0;
    for rec in reader.records() {
        for cell in rec.unwrap().iter() {
            cells += 1;
            assert!(
                cell == "-3" || !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell:?} would run as a formula: {csv}"
            );
        }
    }
    assert_eq!(cells, 6, "{csv}");
    assert!(csv.contains("'=HYPERLINK"), "{csv}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"soshie-leads.csv\""
    );
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
}

/// Runs over REST: the caller's workspaces only, filters and paging, one run with its steps
/// and usage, and cancelling with the member role (403 below it, 404 when hidden, 409 once
/// ended).
#[tokio::test]
async fn runs_are_listed_shown_and_cancelled() {
    use krake_core::run::{NewRun, RunRepo};
    let app = spawn().await;
    let now = krake_core::time::Clock::now(app.clock.as_ref());
    let mut ids = Vec::new();
    for (w, agent) in [
        ("lunavo", "Penn"),
        ("monarch", "Penn"),
        ("lunavo", "Soshie"),
    ] {
        let r = app
            .store
            .create_run(
                &NewRun {
                    workspace: common::ws(w),
                    agent: agent.into(),
                    task: format!("task for {agent} in {w}"),
                    trigger: "command".into(),
                    requested_by: "ana".into(),
                    parent: None,
                    feedback: None,
                    answer_to: None,
                },
                now,
            )
            .await
            .unwrap();
        ids.push(r.id.0);
    }
    let (bo, vic, mo) = (
        As::Token("tok-bo"),
        As::Token("tok-vic"),
        As::Token("tok-mo"),
    );
    let listed = |v: &serde_json::Value| -> Vec<i64> {
        v["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect()
    };
    let (s, v) = app.get("/api/v1/runs", vic).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(listed(&v), [ids[2], ids[0]], "lunavo's runs only");
    let (_, v) = app
        .get("/api/v1/runs?agent=penn", As::Token("tok-ana"))
        .await;
    assert_eq!(listed(&v), [ids[1], ids[0]]);
    let (_, v) = app.get("/api/v1/runs?limit=1", vic).await;
    assert_eq!(listed(&v), [ids[2]]);
    let next = v["next_before"].as_i64().unwrap();
    let (_, v) = app
        .get(&format!("/api/v1/runs?limit=1&before={next}"), vic)
        .await;
    assert_eq!(listed(&v), [ids[0]]);
    for path in [
        "/api/v1/runs?status=sideways",
        "/api/v1/runs?limit=0",
        "/api/v1/runs/x",
    ] {
        let (s, v) = app.get(path, vic).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert_error(&v, "bad_request");
    }
    let one = format!("/api/v1/runs/{}", ids[0]);
    let (s, v) = app.get(&one, vic).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "queued");
    assert_eq!(v["model_calls"], 0);
    assert!(v["steps"].as_array().unwrap().is_empty());
    let (s, v) = app.get(&one, mo).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "hidden from monarch: {v}");
    let cancel = format!("{one}/cancel");
    let (s, v) = app.post(&cancel, vic, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a viewer may not cancel: {v}");
    let (s, v) = app.post(&cancel, mo, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = app
        .post(&cancel, bo, Some(r#"{"reason":"wrong brief"}"#))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "cancelled");
    assert_eq!(v["error"], "cancelled by bo: wrong brief");
    let (s, v) = app.post(&cancel, bo, None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["current"]["status"], "cancelled");
    let (_, v) = app.get(&one, vic).await;
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.last().unwrap()["kind"], "cancelled", "{v}");
    let (_, v) = app.get("/api/v1/runs?status=cancelled", vic).await;
    assert_eq!(listed(&v), [ids[0]]);
    let (_, doc) = app.get("/api/v1/openapi.json", As::Nobody).await;
    for p in [
        "/api/v1/runs",
        "/api/v1/runs/{id}",
        "/api/v1/runs/{id}/cancel",
    ] {
        assert!(
            doc["paths"][p].is_object(),
            "{p} is in the OpenAPI document"
        );
    }
}

/// The Runs pages: the list shows the caller's runs (text as text), a run's page its steps
/// and a Cancel form for members; the form cancels with the CSRF token and says so.
#[tokio::test]
async fn the_runs_pages_list_show_and_cancel() {
    use krake_core::run::{NewRun, RunRepo};
    use tower::ServiceExt;
    let app = spawn().await;
    let now = krake_core::time::Clock::now(app.clock.as_ref());
    let evil = "<img src=x onerror=alert(1)>";
    let run = app
        .store
        .create_run(
            &NewRun {
                workspace: common::ws("lunavo"),
                agent: "Penn".into(),
                task: format!("draft {evil}"),
                trigger: "command".into(),
                requested_by: "ana".into(),
                parent: None,
                feedback: None,
                answer_to: None,
            },
            now,
        )
        .await
        .unwrap();
    let (cookie, csrf) = app.sign_in("bo").await;
    let (s, _, html) = app
        .send(
            Method::GET,
            "/runs?agent=penn",
            As::Cookie(&cookie, None),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains(&format!(r#"data-run="{}""#, run.id.0)),
        "{html}"
    );
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!html.contains(evil));
    let page = format!("/runs/{}", run.id.0);
    let (s, _, html) = app
        .send(Method::GET, &page, As::Cookie(&cookie, None), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains(r#"id="run-cancel""#),
        "a member sees Cancel: {html}"
    );
    assert!(html.contains("No steps yet"));
    // A viewer sees the run, not the form.
    let (vic, _) = app.sign_in("vic").await;
    let (_, _, html) = app
        .send(Method::GET, &page, As::Cookie(&vic, None), None)
        .await;
    assert!(html.contains("queued") && !html.contains(r#"id="run-cancel""#));
    let post = |body: String| {
        axum::http::Request::post(page.clone())
            .header("cookie", format!("krake_session={cookie}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(axum::body::Body::from(body))
            .unwrap()
    };
    let res = app
        .router
        .clone()
        .oneshot(post("csrf=forged".into()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = app
        .router
        .clone()
        .oneshot(post(format!("csrf={csrf}&reason=wrong+brief")))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, _, html) = app
        .send(Method::GET, &page, As::Cookie(&cookie, None), None)
        .await;
    assert!(html.contains(r#"data-status="cancelled""#), "{html}");
    assert!(html.contains("cancelled by bo: wrong brief"));
    assert!(!html.contains(r#"id="run-cancel""#));
    let res = app
        .router
        .clone()
        .oneshot(post(format!("csrf={csrf}")))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT, "already ended");
}

/// Dead letters over REST: owners only; retry queues the message again, discard gives up;
/// an id that is not a dead letter is 404.
#[tokio::test]
async fn dead_letters_are_for_owners_and_can_be_sent_again_or_discarded() {
    use krake_core::outbox::{Destination, NewOutbound, OutboxPayload, RetryPolicy};
    use krake_core::ports::OutboxRepo;
    use krake_core::reply::Reply;
    let app = spawn().await;
    let now = krake_core::time::Clock::now(app.clock.as_ref());
    for text in ["a", "b"] {
        app.store
            .enqueue(
                &[NewOutbound {
                    destination: Destination::parse("telegram:42").unwrap(),
                    payload: OutboxPayload::Send {
                        reply: Reply::info(text),
                    },
                }],
                now,
            )
            .await
            .unwrap();
        let job = app
            .store
            .claim_outbox(None, "w", now, std::time::Duration::from_secs(30), 1)
            .await
            .unwrap()
            .remove(0);
        let policy = RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        };
        app.store
            .retry_outbox(job.id, "w", "chat not found", now, None, &policy)
            .await
            .unwrap();
    }
    let (s, v) = app.get("/api/v1/deadletters", As::Token("tok-bo")).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "a member is refused: {v}");
    let (s, v) = app.get("/api/v1/deadletters", As::Token("tok-ana")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let list = v["dead_letters"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{v}");
    assert_eq!(list[0]["destination"], "telegram:42");
    assert_eq!(list[0]["error"], "chat not found");
    let (newest, oldest) = (
        list[0]["id"].as_i64().unwrap(),
        list[1]["id"].as_i64().unwrap(),
    );
    let ana = As::Token("tok-ana");
    let (owner, _) = app.sign_in("ana").await;
    let (s, _, html) = app
        .send(Method::GET, "/deadletters", As::Cookie(&owner, None), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(&format!(r#"data-dead="{oldest}""#)), "{html}");
    assert!(html.contains("Send again") && html.contains("chat not found"));
    let (s, v) = app
        .post(&format!("/api/v1/deadletters/{oldest}/retry"), ana, None)
        .await;
    assert_eq!(
        (s, v["outcome"].as_str()),
        (StatusCode::OK, Some("retried")),
        "{v}"
    );
    let (s, v) = app
        .post(&format!("/api/v1/deadletters/{newest}/discard"), ana, None)
        .await;
    assert_eq!(
        (s, v["outcome"].as_str()),
        (StatusCode::OK, Some("discarded")),
        "{v}"
    );
    let (s, _) = app
        .post(&format!("/api/v1/deadletters/{newest}/retry"), ana, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = app.get("/api/v1/deadletters", ana).await;
    assert!(v["dead_letters"].as_array().unwrap().is_empty(), "{v}");
    // The retried message is pending again, once.
    assert_eq!(app.store.outbox_depth().await.unwrap(), 1);
    // The page: owners only.
    let (bo, _) = app.sign_in("bo").await;
    let (s, _, html) = app
        .send(Method::GET, "/deadletters", As::Cookie(&bo, None), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(html.contains("Only owners"));
    let (s, _, html) = app
        .send(Method::GET, "/deadletters", As::Cookie(&owner, None), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("No dead letters"), "{html}");
}
