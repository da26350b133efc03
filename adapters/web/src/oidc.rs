//! OpenID Connect sign-in ("Sign in with Google"), on when an issuer, a client id and a
//! client secret are configured.

use crate::front::WebState;
use axum::Router;
use krake_core::secret::Secret;

/// OpenID Connect settings.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The issuer URL (`https://accounts.google.com`).
    pub issuer: String,
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: Secret,
    /// This Krake's public base URL (the redirect URI is `<base>/login/oidc/callback`).
    pub base_url: String,
}

/// OpenID Connect routes (none until configured).
pub fn router() -> Router<WebState> {
    Router::new()
}
