//! The web front's state and router: the REST API, sign-in, the dashboard, the web chat and
//! the embedded assets, in one [`router`] that `krake serve` merges beside [`crate::app`].

use crate::live::Hub;
use crate::login_limits::{LoginLimits, LoginLimitsConfig};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use krake_core::Krake;
use krake_core::ports::{TokenRepo, UserRepo};
use krake_core::time::Clock;
use krake_core::web_accounts::AccountRepo;
use std::sync::Arc;
use std::time::Duration;

/// Settings of the web front.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// How long a sign-in lasts.
    pub session_ttl: Duration,
    /// Mark the session cookie `Secure` (serve over HTTPS, e.g. behind a TLS proxy); by
    /// default on when `public_url` is https. It also makes the web chat accept only https
    /// pages' sockets.
    pub secure_cookies: bool,
    /// This Krake's public URL (`https://krake.example.com`), when known: the web chat
    /// accepts sockets only from pages of exactly this origin.
    pub public_url: Option<String>,
    /// Failed sign-ins of one user name from one address before that address must back off
    /// (1 s, 2 s, 4 s, … up to `login_backoff_max`; 429 with `Retry-After` meanwhile).
    pub login_attempts: u32,
    /// How long a failed sign-in is remembered.
    pub login_window: Duration,
    /// The longest backoff.
    pub login_backoff_max: Duration,
    /// Sign-in tries per minute from one address (IPv6: one /64), any user names.
    pub login_per_address_per_minute: u32,
    /// Sign-in tries per minute of one user name from addresses that failed for it and never
    /// signed in as it.
    pub login_per_user_per_minute: u32,
    /// Password checks (argon2, ~19 MiB each) running at once.
    pub password_checks: usize,
    /// Password checks waiting beyond `password_checks`; more are answered 503.
    pub password_queue: usize,
    /// Behind a reverse proxy: the header whose last address is the client's
    /// (`x-forwarded-for`, `x-real-ip`); unset, the peer's address counts.
    pub client_ip_header: Option<String>,
    /// Largest request body accepted by the API and the forms, in bytes (larger: 413).
    pub max_body_bytes: usize,
    /// Largest file learned from an upload, in bytes (`[rag] max_file_mb`): the upload's
    /// body may be this plus a little for the form around it (larger: 413).
    pub max_file_bytes: u64,
    /// OpenID Connect sign-in, when configured.
    pub oidc: Option<crate::oidc::OidcConfig>,
    /// How long a checked token or session is trusted without asking the database again.
    pub auth_cache_ttl: Duration,
    /// How long a new web chat connection may take to say hello before it is closed.
    pub hello_timeout: Duration,
    /// How often an idle web chat socket checks its credential again (a socket that acts or
    /// receives a push checks it then, through the auth cache).
    pub socket_recheck: Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: false,
            public_url: None,
            login_attempts: 5,
            login_window: Duration::from_secs(15 * 60),
            login_backoff_max: Duration::from_secs(15 * 60),
            login_per_address_per_minute: 30,
            login_per_user_per_minute: 10,
            password_checks: std::thread::available_parallelism().map_or(2, |n| n.get()),
            password_queue: 32,
            client_ip_header: None,
            max_body_bytes: 64 * 1024,
            max_file_bytes: krake_core::knowledge::learn::DEFAULT_MAX_FILE_BYTES,
            oidc: None,
            auth_cache_ttl: Duration::from_secs(2),
            hello_timeout: Duration::from_secs(10),
            socket_recheck: Duration::from_secs(30),
        }
    }
}

/// What the web front's handlers share.
#[derive(Clone)]
pub struct WebState {
    /// The core service: every rule about threads lives there.
    pub krake: Krake,
    /// Personal API tokens (Bearer).
    pub tokens: Arc<dyn TokenRepo>,
    /// Passwords and sessions.
    pub accounts: Arc<dyn AccountRepo>,
    /// Users and their roles.
    pub users: Arc<dyn UserRepo>,
    /// Live pushes to connected web sessions.
    pub hub: Arc<Hub>,
    /// Now (sessions expire by it).
    pub clock: Arc<dyn Clock>,
    /// Settings.
    pub config: Arc<WebConfig>,
    /// Sign-in limits and the password check slots.
    pub login_limits: Arc<LoginLimits>,
    /// OpenID Connect sign-ins under way.
    pub oidc: Arc<crate::oidc::OidcState>,
    /// Recently checked tokens and sessions.
    pub auth_cache: Arc<crate::auth::AuthCache>,
    /// The customer widget's open sockets and rate limits.
    pub visitors: Arc<crate::visitor::VisitorHub>,
}

impl WebState {
    /// State with default settings.
    pub fn new(
        krake: Krake,
        tokens: Arc<dyn TokenRepo>,
        accounts: Arc<dyn AccountRepo>,
        users: Arc<dyn UserRepo>,
        clock: Arc<dyn Clock>,
        config: WebConfig,
    ) -> Self {
        let login_limits = LoginLimits::new(LoginLimitsConfig {
            attempts: config.login_attempts,
            window: config.login_window,
            backoff_max: config.login_backoff_max,
            per_address_per_minute: config.login_per_address_per_minute,
            per_user_per_minute: config.login_per_user_per_minute,
            checks: config.password_checks,
            queue: config.password_queue,
        });
        let auth_cache = crate::auth::AuthCache::new(config.auth_cache_ttl);
        Self {
            krake,
            tokens,
            accounts,
            users,
            hub: Arc::new(Hub::new()),
            clock,
            config: Arc::new(config),
            login_limits: Arc::new(login_limits),
            oidc: Arc::new(crate::oidc::OidcState::default()),
            auth_cache: Arc::new(auth_cache),
            visitors: Arc::new(crate::visitor::VisitorHub::default()),
        }
    }

    /// Publishes a thread's current state to the live sessions (after a change made here).
    pub async fn publish(&self, id: krake_core::inbox::ThreadId) {
        match self
            .krake
            .thread_for(&krake_core::Actor::system(), id)
            .await
        {
            Ok(t) => {
                self.hub.publish(&t);
            }
            Err(e) => tracing::warn!(error = %e, thread = id.0, "cannot publish a thread change"),
        }
    }
}

/// The web front: `/api/v1/…`, `/login`, `/logout`, the dashboard, `/ws/chat`, `/widget.js`.
pub fn router(state: WebState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .merge(crate::api::router())
        .merge(crate::auth::router())
        .merge(crate::dashboard::router())
        .merge(crate::ws::router())
        .merge(crate::visitor::router())
        .merge(crate::assets::router())
        .merge(crate::oidc::router())
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::map_response(move |res| {
            crate::api::json_errors(res, limit)
        }))
        .with_state(state)
}
