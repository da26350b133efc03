//! OpenID Connect sign-in ("Sign in with Google"), on when an issuer, a client id and a
//! client secret are configured (the `openidconnect` crate: discovery, authorization code
//! flow with PKCE, ID token verified against the issuer's JWKS, nonce checked).
//!
//! `GET /login/oidc` sends the browser to the issuer; `GET /login/oidc/callback` takes the
//! code back, and signs in the Krake user whose name is the verified e-mail address (add one
//! with `krake user add ana@example.com --role member`). Nobody gets an account by signing in.

use crate::front::WebState;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use krake_core::actor::UserName;
use krake_core::secret::Secret;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// How long a sign-in may take at the issuer.
const PENDING_TTL: Duration = Duration::from_secs(600);

struct Pending {
    nonce: Nonce,
    verifier: PkceCodeVerifier,
    at: Instant,
}

/// Sign-ins under way (by their `state`) and the issuer's discovered metadata.
#[derive(Default)]
pub struct OidcState {
    pending: Mutex<HashMap<String, Pending>>,
    metadata: tokio::sync::OnceCell<CoreProviderMetadata>,
}

impl std::fmt::Debug for OidcState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OidcState")
    }
}

/// Why an OpenID Connect sign-in failed (shown on the sign-in page; details are logged).
#[derive(Debug, thiserror::Error)]
enum OidcError {
    #[error("Sign-in with the identity provider is not set up on this Krake.")]
    Off,
    #[error("The identity provider cannot be reached; try again later.")]
    Provider,
    #[error("That sign-in link is unknown or expired; start again.")]
    State,
    #[error("The identity provider's answer could not be verified; start again.")]
    Token,
    #[error(
        "There is no Krake account for {0}. Ask an owner to add it: krake user add {0} --role member"
    )]
    NoAccount(String),
    #[error("The identity provider did not confirm an e-mail address.")]
    NoEmail,
}

impl OidcError {
    fn status(&self) -> StatusCode {
        match self {
            OidcError::Off => StatusCode::NOT_FOUND,
            OidcError::Provider => StatusCode::BAD_GATEWAY,
            OidcError::State => StatusCode::BAD_REQUEST,
            OidcError::Token | OidcError::NoEmail => StatusCode::UNAUTHORIZED,
            OidcError::NoAccount(_) => StatusCode::FORBIDDEN,
        }
    }
}

/// OpenID Connect routes.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/login/oidc", get(start))
        .route("/login/oidc/callback", get(callback))
}

fn http() -> Result<openidconnect::reqwest::Client, OidcError> {
    openidconnect::reqwest::ClientBuilder::new()
        // Following redirects would open the client to SSRF.
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| {
            tracing::error!(error = %e, "cannot build the OpenID Connect HTTP client");
            OidcError::Provider
        })
}

async fn metadata<'a>(
    state: &'a WebState,
    cfg: &OidcConfig,
    http: &openidconnect::reqwest::Client,
) -> Result<&'a CoreProviderMetadata, OidcError> {
    state
        .oidc
        .metadata
        .get_or_try_init(|| async {
            let issuer = IssuerUrl::new(cfg.issuer.clone()).map_err(|e| {
                tracing::error!(error = %e, "the OpenID Connect issuer is not a URL");
                OidcError::Provider
            })?;
            CoreProviderMetadata::discover_async(issuer, http)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "OpenID Connect discovery failed");
                    OidcError::Provider
                })
        })
        .await
}

macro_rules! client {
    ($cfg:expr, $meta:expr) => {
        CoreClient::from_provider_metadata(
            $meta.clone(),
            ClientId::new($cfg.client_id.clone()),
            Some(ClientSecret::new($cfg.client_secret.expose().to_owned())),
        )
        .set_redirect_uri(
            RedirectUrl::new(format!(
                "{}/login/oidc/callback",
                $cfg.base_url.trim_end_matches('/')
            ))
            .map_err(|_| OidcError::Provider)?,
        )
    };
}

fn failed(state: &WebState, e: &OidcError) -> Response {
    crate::dashboard::login_response(e.status(), &e.to_string(), state, None)
}

async fn start(State(state): State<WebState>) -> Response {
    match begin(&state).await {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => failed(&state, &e),
    }
}

async fn begin(state: &WebState) -> Result<String, OidcError> {
    let cfg = state.config.oidc.as_ref().ok_or(OidcError::Off)?;
    let http = http()?;
    let meta = metadata(state, cfg, &http).await?;
    let client = client!(cfg, meta);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    if let Ok(mut p) = state.oidc.pending.lock() {
        p.retain(|_, v| v.at.elapsed() < PENDING_TTL);
        p.insert(
            csrf.secret().clone(),
            Pending {
                nonce,
                verifier,
                at: Instant::now(),
            },
        );
    }
    Ok(url.to_string())
}

/// What the issuer sends back.
#[derive(Debug, Deserialize)]
pub struct Callback {
    /// The authorization code.
    code: Option<String>,
    /// The state given at the start.
    state: Option<String>,
    /// An error the issuer reports (the person cancelled).
    error: Option<String>,
}

async fn callback(
    State(state): State<WebState>,
    q: Result<Query<Callback>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return failed(&state, &OidcError::State);
    };
    match finish(&state, q).await {
        Ok(cookie) => {
            let mut res = Redirect::to("/").into_response();
            res.headers_mut().insert(header::SET_COOKIE, cookie);
            res
        }
        Err(e) => failed(&state, &e),
    }
}

async fn finish(state: &WebState, q: Callback) -> Result<HeaderValue, OidcError> {
    let cfg = state.config.oidc.as_ref().ok_or(OidcError::Off)?;
    if let Some(e) = q.error {
        tracing::info!(error = %e, "the identity provider refused the sign-in");
        return Err(OidcError::State);
    }
    let (Some(code), Some(key)) = (q.code, q.state) else {
        return Err(OidcError::State);
    };
    let pending = state
        .oidc
        .pending
        .lock()
        .ok()
        .and_then(|mut p| p.remove(&key))
        .filter(|p| p.at.elapsed() < PENDING_TTL)
        .ok_or(OidcError::State)?;
    let http = http()?;
    let meta = metadata(state, cfg, &http).await?;
    let client = client!(cfg, meta);
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| {
            tracing::error!(error = %e, "the issuer has no token endpoint");
            OidcError::Provider
        })?
        .set_pkce_verifier(pending.verifier)
        .request_async(&http)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "the OpenID Connect token exchange failed");
            OidcError::Token
        })?;
    let id_token = token.id_token().ok_or(OidcError::Token)?;
    let claims = id_token
        .claims(&client.id_token_verifier(), &pending.nonce)
        .map_err(|e| {
            tracing::warn!(error = %e, "an ID token failed verification");
            OidcError::Token
        })?;
    let email = match (claims.email(), claims.email_verified()) {
        (Some(e), Some(true)) => e.as_str().to_owned(),
        _ => return Err(OidcError::NoEmail),
    };
    let user = match UserName::parse(&email) {
        Ok(name) => state.users.user(&name).await.map_err(|e| {
            tracing::error!(error = %e, "cannot read users");
            OidcError::Provider
        })?,
        Err(_) => None,
    }
    .ok_or_else(|| OidcError::NoAccount(email.clone()))?;
    tracing::info!(user = %user.name, "signed in with OpenID Connect");
    crate::auth::start_session(state, &user.name)
        .await
        .map_err(|_| OidcError::Provider)
}
