//! The web front in `krake serve`: its settings (`[web]`), its routes for every workspace
//! (`web:<slug>`, so new and changed threads reach web sessions through the outbox like any
//! front), its router and its outbox deliverer.

use crate::serve::spawn_delivery_loop;
use anyhow::bail;
use krake_core::Krake;
use krake_core::config::Directory;
use krake_core::delivery::{Deliverer, Routes};
use krake_core::secret::Secret;
use krake_store::Store;
use krake_web::front::{WebConfig, WebState};
use krake_web::oidc::OidcConfig;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// `[web]` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebFile {
    /// Mark the session cookie `Secure` (when Krake is served over HTTPS).
    pub secure_cookies: Option<bool>,
    /// Hours a sign-in lasts (default 12).
    pub session_hours: Option<u64>,
    /// Failed sign-ins per user name per 15 minutes before refusing (default 5).
    pub login_attempts: Option<u32>,
    /// Largest API or form body in bytes (default 65536).
    pub max_body_bytes: Option<usize>,
    /// OpenID Connect issuer (`https://accounts.google.com`).
    pub oidc_issuer: Option<String>,
    /// OpenID Connect client id.
    pub oidc_client_id: Option<String>,
    /// OpenID Connect client secret (prefer `KRAKE_OIDC_CLIENT_SECRET`).
    pub oidc_client_secret: Option<String>,
    /// This Krake's public URL, for the OpenID Connect redirect (`https://krake.example.com`).
    pub public_url: Option<String>,
}

/// The web front's settings from `[web]` and the environment.
pub fn settings(file: &WebFile) -> anyhow::Result<WebConfig> {
    let d = WebConfig::default();
    let secret = std::env::var("KRAKE_OIDC_CLIENT_SECRET")
        .ok()
        .or(file.oidc_client_secret.clone())
        .filter(|s| !s.is_empty());
    let issuer = std::env::var("KRAKE_OIDC_ISSUER")
        .ok()
        .or(file.oidc_issuer.clone())
        .filter(|s| !s.is_empty());
    let client = std::env::var("KRAKE_OIDC_CLIENT_ID")
        .ok()
        .or(file.oidc_client_id.clone())
        .filter(|s| !s.is_empty());
    let oidc = match (issuer, client, secret) {
        (Some(issuer), Some(client_id), Some(secret)) => Some(OidcConfig {
            issuer,
            client_id,
            client_secret: Secret::new(secret),
            base_url: file
                .public_url
                .clone()
                .unwrap_or_else(|| "http://127.0.0.1:8080".into()),
        }),
        (None, None, None) => None,
        _ => bail!(
            "[web] OpenID Connect needs all three of oidc_issuer, oidc_client_id and oidc_client_secret (KRAKE_OIDC_CLIENT_SECRET)"
        ),
    };
    Ok(WebConfig {
        secure_cookies: file.secure_cookies.unwrap_or(false),
        session_ttl: file
            .session_hours
            .map(|h| Duration::from_secs(h.max(1) * 3600))
            .unwrap_or(d.session_ttl),
        login_attempts: file.login_attempts.unwrap_or(d.login_attempts).max(1),
        max_body_bytes: file.max_body_bytes.unwrap_or(d.max_body_bytes).max(1024),
        oidc,
        ..d
    })
}

/// `[web]` for `krake config`, secrets redacted.
pub fn redacted(c: &WebConfig) -> String {
    let mut out = format!(
        "\n[web]\nsecure_cookies = {}\nsession_hours = {}\nlogin_attempts = {}\nmax_body_bytes = {}\n",
        c.secure_cookies,
        c.session_ttl.as_secs() / 3600,
        c.login_attempts,
        c.max_body_bytes
    );
    if let Some(o) = &c.oidc {
        out.push_str(&format!(
            "oidc_issuer = {:?}\noidc_client_id = {:?}\noidc_client_secret = \"***\"\npublic_url = {:?}\n",
            o.issuer, o.client_id, o.base_url
        ));
    }
    out
}

/// Posts every workspace's threads to its web sessions.
pub fn add_routes(directory: &Directory, routes: &mut Routes) {
    for w in directory.workspaces() {
        if let Some(d) = krake_web::live::destination(&w.slug) {
            routes.add(w.slug.clone(), d);
        }
    }
}

/// The web front's state, and its outbox deliverer running until `stop`.
pub async fn start(
    krake: &Krake,
    store: &Store,
    config: WebConfig,
    stop: watch::Receiver<bool>,
) -> (WebState, tokio::task::JoinHandle<()>) {
    let s = Arc::new(store.clone());
    let state = WebState::new(
        krake.clone(),
        s.clone(),
        s.clone(),
        s.clone(),
        Arc::new(krake_core::time::SystemClock),
        config,
    );
    let deliverer = Deliverer::new(
        s.clone(),
        s,
        Arc::new(crate::fanout::Announcing::new(
            Arc::new(krake_web::live::WebSender::new(state.hub.clone())),
            store.clone(),
        )),
        Arc::new(krake_core::time::SystemClock),
        format!("web-{}", std::process::id()),
    );
    let listener = crate::fanout::listen(store.clone(), state.hub.clone(), stop.clone()).await;
    let delivery = spawn_delivery_loop(deliverer, stop);
    let task = tokio::spawn(async move {
        let _ = delivery.await;
        let _ = listener.await;
    });
    (state, task)
}
