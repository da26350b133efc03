//! Who is calling: a signed-in session (cookie `krake_session`, HttpOnly, SameSite=Lax, stored
//! server-side under its SHA-256, with a CSRF token) or a personal API token (Bearer).
//!
//! Passwords are argon2 (PHC strings). Sign-in is limited per address and per user name, and
//! password checks run a bounded number at a time ([`crate::login_limits`]); an unknown user
//! costs the same argon2 work as a wrong password, so timing does not tell which names exist.

use crate::ApiError;
use crate::front::WebState;
use crate::login_limits::Refused;
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::{Form, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use krake_core::actor::{Actor, Front, Role, UserName};
use krake_core::ports::{TokenGrant, TokenScope, UserRecord};
use rand::RngCore;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "krake_session";

/// The pre-session cookie holding the sign-in form's CSRF token (double submit: the form
/// carries the same value in a hidden field, which another site cannot read or set).
pub const LOGIN_CSRF_COOKIE: &str = "krake_login_csrf";

/// The header carrying the CSRF token on API writes made with a session cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Hashes a password with argon2id (default parameters, random salt).
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| {
            tracing::error!(error = %e, "password hashing failed");
            ApiError::Internal
        })
}

/// Whether `password` matches the PHC `hash` (false for a malformed hash).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// 32 random bytes as 64 hex characters (session ids, CSRF tokens).
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Compares two strings in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Recently checked tokens and sessions, so a burst of requests does not read the same user
/// from the database each time. An entry lives `ttl` (2 s by default): a role change or a
/// sign-out in another process takes effect within that; a sign-out here at once; an expired
/// session never counts.
#[derive(Debug)]
pub struct AuthCache {
    ttl: Duration,
    map: Mutex<HashMap<String, (Cached, Instant)>>,
}

#[derive(Debug, Clone)]
enum Cached {
    Token(TokenGrant),
    Session(krake_core::web_accounts::WebSession),
}

impl AuthCache {
    /// A cache keeping entries for `ttl` (zero: no caching).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &str) -> Option<Cached> {
        let map = self.map.lock().ok()?;
        map.get(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(c, _)| c.clone())
    }

    fn put(&self, key: String, value: Cached) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= 10_000 {
                map.clear();
            }
            map.insert(key, (value, Instant::now()));
        }
    }

    /// Forgets a session (signing out).
    pub fn forget_session(&self, id_hash: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(&format!("s:{id_hash}"));
        }
    }
}

/// How a caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A session cookie; state changes must carry this CSRF token.
    Session {
        /// The session's CSRF token.
        csrf: String,
        /// The hash of the session id (to sign out).
        id_hash: String,
    },
    /// A personal API token.
    Token,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who, with their roles.
    pub actor: Actor,
    /// How they signed in.
    pub via: Via,
    /// What they signed in with (to check it again later).
    pub credential: Credential,
}

impl Caller {
    /// Checks the CSRF token of a state change: required for sessions, not for API tokens
    /// (a token is never sent by a browser on its own).
    pub fn check_csrf(&self, given: Option<&str>) -> Result<(), ApiError> {
        match &self.via {
            Via::Token => Ok(()),
            Via::Session { csrf, .. } if given.is_some_and(|g| same(g, csrf)) => Ok(()),
            Via::Session { .. } => Err(ApiError::Forbidden(format!(
                "missing or wrong CSRF token: reload the page and try again (scripts: send the `{CSRF_HEADER}` header, or use an API token)"
            ))),
        }
    }

    /// The CSRF token of a session, if signed in by cookie.
    pub fn csrf(&self) -> Option<&str> {
        match &self.via {
            Via::Session { csrf, .. } => Some(csrf),
            Via::Token => None,
        }
    }
}

/// The actor for a user record coming through `front`.
pub fn actor_of(user: UserRecord, front: Front) -> Actor {
    let mut actor = Actor::new(user.name, front, user.role);
    actor.workspace_roles = user.workspace_roles;
    actor
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// What a caller proved who they are with, by its stored hash: kept by an open web socket so
/// that its rights can be checked again while it stays open.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Credential {
    /// A session cookie, by the SHA-256 of its id.
    Session(String),
    /// A personal API token, by its SHA-256.
    Token(String),
}

/// The live session stored under `id_hash`, through the cache; `None` when it ended or expired.
async fn live_session(
    state: &WebState,
    id_hash: &str,
) -> Result<Option<krake_core::web_accounts::WebSession>, ApiError> {
    let now = state.clock.now();
    let key = format!("s:{id_hash}");
    if let Some(Cached::Session(s)) = state.auth_cache.get(&key)
        && s.expires_at > now
    {
        return Ok(Some(s));
    }
    let s = state.accounts.session(id_hash, now).await?;
    if let Some(s) = &s {
        state.auth_cache.put(key, Cached::Session(s.clone()));
    }
    Ok(s)
}

/// What the token stored under `hash` grants, through the cache; `None` when unknown,
/// expired or revoked.
async fn token_grant(state: &WebState, hash: &str) -> Result<Option<TokenGrant>, ApiError> {
    let now = state.clock.now();
    let key = format!("t:{hash}");
    if let Some(Cached::Token(g)) = state.auth_cache.get(&key)
        && g.expires_at.is_none_or(|e| e > now)
    {
        return Ok(Some(g));
    }
    let g = state.tokens.token_grant(hash, now).await?;
    if let Some(g) = &g {
        state.auth_cache.put(key, Cached::Token(g.clone()));
    }
    Ok(g)
}

/// The actor a token grant stands for through `front`: its user with their roles, or for a
/// widget token, the user's role in the widget's workspace only, at most member.
pub fn actor_of_grant(grant: TokenGrant, front: Front) -> Actor {
    match grant.scope {
        TokenScope::Personal => actor_of(grant.user, front),
        TokenScope::Widget(w) => {
            let role = grant
                .user
                .workspace_roles
                .get(&w)
                .copied()
                .unwrap_or(grant.user.role)
                .min(Role::Member);
            let mut actor = Actor::new(grant.user.name, front, Role::Guest);
            actor.workspace_roles.insert(w, role);
            actor
        }
    }
}

/// Who a credential stands for now on the web chat, with their rights as they are now
/// (through the cache, so at most [`crate::front::WebConfig::auth_cache_ttl`] old); `None`
/// when it no longer counts (signed out, expired, revoked, the user removed).
pub async fn recheck(state: &WebState, credential: &Credential) -> Result<Option<Actor>, ApiError> {
    match credential {
        Credential::Session(id_hash) => Ok(live_session(state, id_hash)
            .await?
            .map(|s| actor_of(s.user, Front::Web))),
        Credential::Token(hash) => Ok(token_grant(state, hash)
            .await?
            .map(|g| actor_of_grant(g, Front::Web))),
    }
}

/// The caller of a request: its bearer token, else its session cookie; `None` for neither.
/// A token or cookie that is present but unknown or expired is refused (401).
pub async fn caller(state: &WebState, headers: &HeaderMap) -> Result<Option<Caller>, ApiError> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let token = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthenticated)?;
        let hash = crate::hash_token(token);
        let grant = token_grant(state, &hash)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        // A widget token sits in a page's source: it opens the chat, nothing else.
        if grant.scope != TokenScope::Personal {
            return Err(ApiError::Unauthenticated);
        }
        return Ok(Some(Caller {
            actor: actor_of(grant.user, Front::Api),
            via: Via::Token,
            credential: Credential::Token(hash),
        }));
    }
    let Some(id) = cookie(headers, SESSION_COOKIE).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let id_hash = crate::hash_token(id);
    let session = live_session(state, &id_hash)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    Ok(Some(Caller {
        actor: actor_of(session.user, Front::Web),
        via: Via::Session {
            csrf: session.csrf,
            id_hash: id_hash.clone(),
        },
        credential: Credential::Session(id_hash),
    }))
}

impl FromRequestParts<WebState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, ApiError> {
        caller(state, &parts.headers)
            .await?
            .ok_or(ApiError::Unauthenticated)
    }
}

/// The sign-in form's CSRF token: the browser's pre-session cookie when it holds a well-formed
/// one, else a new token.
pub fn login_token(headers: Option<&HeaderMap>) -> String {
    headers
        .and_then(|h| cookie(h, LOGIN_CSRF_COOKIE))
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .map_or_else(random_token, str::to_owned)
}

/// The `Set-Cookie` value carrying the sign-in form's CSRF token (an empty token clears it).
pub fn login_token_cookie(state: &WebState, token: &str) -> Result<HeaderValue, ApiError> {
    let secure = if state.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let max_age = if token.is_empty() { 0 } else { 3600 };
    HeaderValue::from_str(&format!(
        "{LOGIN_CSRF_COOKIE}={token}; Path=/login; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .map_err(|_| ApiError::Internal)
}

/// Sign-in and sign-out routes.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/login", get(crate::dashboard::login_page).post(login))
        .route("/logout", post(logout))
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
    /// The sign-in form's CSRF token (must equal the pre-session cookie's).
    #[serde(default)]
    pub csrf: String,
}

/// The address a request comes from: the peer's, or with `client_ip_header` set (behind a
/// reverse proxy that sets it), the last address in that header. Unknown (no socket, as in
/// tests without one): the unspecified address, one bucket for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The client address of a request's parts.
    pub fn of(parts: &Parts, config: &crate::front::WebConfig) -> Self {
        let forwarded = config.client_ip_header.as_deref().and_then(|name| {
            parts
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|a| a.trim().parse::<IpAddr>().ok())
                .next_back()
        });
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        ClientAddr(
            forwarded
                .or(peer)
                .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
        )
    }
}

impl FromRequestParts<WebState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(Self::of(parts, &state.config))
    }
}

/// Checks a user name and password from `addr`: the user's record when they match. Refused
/// (429, or 503 when too many checks are under way) before any password work when the limits
/// of [`crate::login_limits`] say so.
pub async fn check_password(
    state: &WebState,
    user: &str,
    password: &str,
    addr: IpAddr,
) -> Result<Option<UserRecord>, ApiError> {
    let key = user.trim().to_lowercase();
    state.login_limits.admit(&key, addr).map_err(refused)?;
    let name = UserName::parse(user.trim()).ok();
    let hash = match &name {
        Some(n) => state.accounts.password_hash(n).await?,
        None => None,
    };
    // Unknown users cost the same work as known ones.
    let known = hash.is_some();
    let password = password.to_owned();
    let ok = state
        .login_limits
        .check(move || {
            let hash = hash.unwrap_or_else(dummy_hash);
            verify_password(&hash, &password)
        })
        .await
        .map_err(refused)?
        && known;
    let user = match (ok, name) {
        (true, Some(n)) => state.users.user(&n).await?,
        _ => None,
    };
    match user {
        Some(u) => {
            state.login_limits.succeed(&key, addr);
            Ok(Some(u))
        }
        None => {
            state.login_limits.fail(&key, addr);
            Ok(None)
        }
    }
}

fn refused(r: Refused) -> ApiError {
    match r {
        Refused::TooMany(secs) => ApiError::TooManyRequests(secs),
        Refused::Busy(secs) => ApiError::Busy(secs),
    }
}

/// A hash verified against when the user does not exist, made once.
fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| hash_password(&random_token()).unwrap_or_default())
        .clone()
}

/// Starts a session for `user`: stores it and returns the `Set-Cookie` value.
pub async fn start_session(state: &WebState, user: &UserName) -> Result<HeaderValue, ApiError> {
    let id = random_token();
    let csrf = random_token();
    let now = state.clock.now();
    let ttl = state.config.session_ttl;
    state
        .accounts
        .create_session(&crate::hash_token(&id), user, &csrf, now.plus(ttl), now)
        .await?;
    let secure = if state.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        ttl.as_secs()
    ))
    .map_err(|_| ApiError::Internal)
}

async fn login(
    State(state): State<WebState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return crate::dashboard::login_response(
            StatusCode::BAD_REQUEST,
            "Enter a user name and a password.",
            &state,
            Some(&headers),
        );
    };
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same(&form.csrf, expected) {
        tracing::info!("sign-in refused: missing or wrong sign-in CSRF token");
        return crate::dashboard::login_response(
            StatusCode::FORBIDDEN,
            "This sign-in form was not sent from Krake's sign-in page, or it has expired. Sign in again with the form below (cookies must be allowed).",
            &state,
            None,
        );
    }
    match check_password(&state, &form.user, &form.password, addr).await {
        Ok(Some(user)) => match (
            start_session(&state, &user.name).await,
            login_token_cookie(&state, ""),
        ) {
            (Ok(cookie), Ok(clear)) => {
                tracing::info!(user = %user.name, "signed in");
                let mut res = Redirect::to("/").into_response();
                res.headers_mut().append(header::SET_COOKIE, cookie);
                res.headers_mut().append(header::SET_COOKIE, clear);
                res
            }
            (Err(e), _) | (_, Err(e)) => e.into_response(),
        },
        Ok(None) => crate::dashboard::login_response(
            StatusCode::UNAUTHORIZED,
            "That user name and password do not match. Try again.",
            &state,
            Some(&headers),
        ),
        Err(e @ (ApiError::TooManyRequests(_) | ApiError::Busy(_))) => {
            let (status, wait, text) = match e {
                ApiError::Busy(wait) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    wait,
                    format!(
                        "Krake is busy checking other sign-ins. Wait {wait} seconds and try again."
                    ),
                ),
                ApiError::TooManyRequests(wait) => (
                    StatusCode::TOO_MANY_REQUESTS,
                    wait,
                    format!("Too many sign-in attempts. Wait {wait} seconds and try again."),
                ),
                _ => (StatusCode::TOO_MANY_REQUESTS, 1, String::new()),
            };
            let mut res = crate::dashboard::login_response(status, &text, &state, Some(&headers));
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            res
        }
        Err(e) => e.into_response(),
    }
}

/// The sign-out form.
#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token.
    pub csrf: String,
}

async fn logout(
    State(state): State<WebState>,
    caller: Caller,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    caller.check_csrf(Some(&form.csrf))?;
    if let Via::Session { id_hash, .. } = &caller.via {
        state.accounts.delete_session(id_hash).await?;
        state.auth_cache.forget_session(id_hash);
        // The web chat sockets opened with this session end now, not at their next check.
        let closed = state
            .hub
            .close_credential(&Credential::Session(id_hash.clone()));
        tracing::info!(user = %caller.actor.user, sockets = closed, "signed out");
    }
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("krake_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    Ok(res)
}
