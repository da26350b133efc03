//! The web front's test harness: a fresh SQLite store per test, the core service on a manual
//! clock, users with roles, tokens and a password, and helpers that send requests to the
//! router without a socket.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod client;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use krake_core::Krake;
use krake_core::actor::{Actor, Role, UserName};
use krake_core::agent::default_agents;
use krake_core::config::Directory;
use krake_core::inbox::{NewThread, Thread, ThreadKind};
use krake_core::ports::{TokenRepo, UserRepo};
use krake_core::time::{ManualClock, Timestamp};
use krake_core::web_accounts::AccountRepo;
use krake_core::workspace::{WorkspaceSlug, default_workspaces};
use krake_store::Store;
use krake_web::front::{WebConfig, WebState};
use std::sync::Arc;
use tower::ServiceExt;

pub const PASSWORD: &str = "correct horse battery";

pub struct App {
    pub router: Router,
    pub state: WebState,
    pub store: Store,
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

/// Who sends a request.
#[derive(Clone, Copy)]
pub enum As<'a> {
    Nobody,
    Token(&'a str),
    /// A session cookie and the CSRF token to send (None: send none).
    Cookie(&'a str, Option<&'a str>),
}

pub fn ws(s: &str) -> WorkspaceSlug {
    WorkspaceSlug::parse(s).unwrap()
}

pub async fn spawn() -> App {
    spawn_with(WebConfig::default()).await
}

pub async fn spawn_with(config: WebConfig) -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Store::sqlite_url(&dir.path().join("krake.db")))
        .await
        .unwrap();
    store.migrate(|_| {}).await.unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_795_503_000_000)));
    let s = Arc::new(store.clone());
    let krake = Krake::new(
        s.clone(),
        s.clone(),
        clock.clone(),
        Directory::new(default_workspaces(), default_agents()).unwrap(),
    )
    .with_users(s.clone())
    .with_folders(s.clone())
    .with_commerce(s.clone())
    .with_outbox(s.clone())
    .with_agents(Arc::new(krake_core::run::Runner::new(
        s.clone(),
        s.clone(),
        s.clone(),
        None,
        Arc::new(krake_core::knowledge::NoKnowledge),
        Arc::new(krake_core::run::RecordingExecutor::default()),
        clock.clone(),
        Directory::new(default_workspaces(), default_agents()).unwrap(),
    )));
    let now = clock.now_ts();
    // ana: owner everywhere; bo: member of lunavo; vic: viewer of lunavo; mo: member of monarch.
    for (name, role, w) in [
        ("ana", Role::Owner, None),
        ("bo", Role::Member, Some("lunavo")),
        ("vic", Role::Viewer, Some("lunavo")),
        ("mo", Role::Member, Some("monarch")),
    ] {
        let n = UserName::parse(name).unwrap();
        store
            .upsert_user(&n, role, w.map(ws).as_ref(), now)
            .await
            .unwrap();
        store
            .create_api_token(&n, &krake_web::hash_token(&format!("tok-{name}")), "t", now)
            .await
            .unwrap();
        store
            .set_password_hash(&n, &krake_web::auth::hash_password(PASSWORD).unwrap(), now)
            .await
            .unwrap();
    }
    let state = WebState::new(
        krake,
        s.clone(),
        s.clone(),
        s.clone(),
        clock.clone(),
        config,
    );
    App {
        router: krake_web::front::router(state.clone()),
        state,
        store,
        clock,
        _dir: dir,
    }
}

trait NowTs {
    fn now_ts(&self) -> Timestamp;
}
impl NowTs for ManualClock {
    fn now_ts(&self) -> Timestamp {
        krake_core::time::Clock::now(self)
    }
}

impl App {
    pub async fn thread(&self, w: &str, kind: ThreadKind, title: &str) -> Thread {
        self.state
            .krake
            .create_thread(
                &Actor::system(),
                &NewThread::new(ws(w), kind, title, "details"),
            )
            .await
            .unwrap()
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        who: As<'_>,
        body: Option<&str>,
    ) -> (StatusCode, HeaderMap, String) {
        let mut b = Request::builder().method(method).uri(path);
        match who {
            As::Nobody => {}
            As::Token(t) => b = b.header("authorization", format!("Bearer {t}")),
            As::Cookie(c, csrf) => {
                b = b.header("cookie", format!("krake_session={c}"));
                if let Some(x) = csrf {
                    b = b.header("x-csrf-token", x);
                }
            }
        }
        let req = match body {
            Some(s) => b
                .header("content-type", "application/json")
                .body(Body::from(s.to_owned()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = axum::body::to_bytes(res.into_body(), 10 << 20)
            .await
            .unwrap();
        (
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    pub async fn json(
        &self,
        method: Method,
        path: &str,
        who: As<'_>,
        body: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let (s, _, text) = self.send(method, path, who, body).await;
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("not JSON ({e}) from {path}: {text}"));
        (s, v)
    }

    pub async fn get(&self, path: &str, who: As<'_>) -> (StatusCode, serde_json::Value) {
        self.json(Method::GET, path, who, None).await
    }

    pub async fn post(
        &self,
        path: &str,
        who: As<'_>,
        body: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        self.json(Method::POST, path, who, body).await
    }

    /// The sign-in page's CSRF token, from its pre-session cookie (checked equal to the form's).
    pub async fn login_token(&self) -> String {
        let (s, h, page) = self.send(Method::GET, "/login", As::Nobody, None).await;
        assert_eq!(s, StatusCode::OK);
        let set = h
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("krake_login_csrf="))
            .expect("the sign-in page sets its CSRF cookie");
        let token = set
            .split(';')
            .next()
            .unwrap()
            .strip_prefix("krake_login_csrf=")
            .unwrap()
            .to_owned();
        assert!(
            page.contains(&format!(r#"name="csrf" value="{token}""#)),
            "the form carries the cookie's token"
        );
        token
    }

    /// A sign-in form post with the given CSRF cookie and field (None: leave it out).
    pub fn login_request(
        user: &str,
        password: &str,
        cookie: Option<&str>,
        field: Option<&str>,
    ) -> Request<Body> {
        let mut b =
            Request::post("/login").header("content-type", "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            b = b.header("cookie", format!("krake_login_csrf={c}"));
        }
        let mut body = format!("user={user}&password={password}");
        if let Some(f) = field {
            body.push_str(&format!("&csrf={f}"));
        }
        b.body(Body::from(body)).unwrap()
    }

    /// Signs in through the form; returns the session cookie value and its CSRF token.
    pub async fn sign_in(&self, user: &str) -> (String, String) {
        let token = self.login_token().await;
        let req = Self::login_request(user, "correct+horse+battery", Some(&token), Some(&token));
        let res = self.router.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "sign-in of {user}");
        let cookie = res
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let id = cookie
            .split(';')
            .next()
            .unwrap()
            .strip_prefix("krake_session=")
            .unwrap()
            .to_owned();
        let (_, me) = self.get("/api/v1/me", As::Cookie(&id, None)).await;
        (id, me["csrf"].as_str().unwrap().to_owned())
    }
}
