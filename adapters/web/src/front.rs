//! The web front's state and router: the REST API, sign-in, the dashboard, the web chat and
//! the embedded assets, in one [`router`] that `krake serve` merges beside [`crate::app`].

use crate::auth::LoginLimiter;
use crate::live::Hub;
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
    /// Mark the session cookie `Secure` (serve over HTTPS, e.g. behind a TLS proxy).
    pub secure_cookies: bool,
    /// Failed sign-ins allowed per user name within `login_window` before refusing (429).
    pub login_attempts: u32,
    /// The window of `login_attempts`.
    pub login_window: Duration,
    /// Largest request body accepted by the API and the forms, in bytes (larger: 413).
    pub max_body_bytes: usize,
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
            login_attempts: 5,
            login_window: Duration::from_secs(15 * 60),
            max_body_bytes: 64 * 1024,
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
    /// Failed sign-in counts.
    pub limiter: Arc<LoginLimiter>,
    /// OpenID Connect sign-ins under way.
    pub oidc: Arc<crate::oidc::OidcState>,
    /// Recently checked tokens and sessions.
    pub auth_cache: Arc<crate::auth::AuthCache>,
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
        let limiter = LoginLimiter::new(config.login_attempts, config.login_window);
        let auth_cache = crate::auth::AuthCache::new(config.auth_cache_ttl);
        Self {
            krake,
            tokens,
            accounts,
            users,
            hub: Arc::new(Hub::new()),
            clock,
            config: Arc::new(config),
            limiter: Arc::new(limiter),
            oidc: Arc::new(crate::oidc::OidcState::default()),
            auth_cache: Arc::new(auth_cache),
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
        .merge(crate::assets::router())
        .merge(crate::oidc::router())
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}
