//! MCP wiring: `krake mcp` (Krake's tools over stdin/stdout for a desktop assistant) and the
//! token check of the `/mcp` endpoint on `krake serve`.

use crate::settings::Settings;
use crate::wiring;
use anyhow::Context;
use async_trait::async_trait;
use krake_core::actor::{Actor, Front};
use krake_core::ports::{TokenRepo, TokenScope};
use krake_core::time::{Clock, SystemClock};
use std::sync::Arc;

/// The variable `krake mcp` reads its API token from.
pub const TOKEN_VAR: &str = "KRAKE_MCP_TOKEN";

/// Personal API tokens, checked in the store (a widget token opens the web chat only).
pub struct TokenAuth(pub Arc<dyn TokenRepo>);

#[async_trait]
impl krake_mcp::Authenticate for TokenAuth {
    async fn actor(&self, token: &str) -> Result<Option<Actor>, String> {
        let grant = self
            .0
            .token_grant(&krake_web::hash_token(token), SystemClock.now())
            .await
            .map_err(|e| e.to_string())?;
        Ok(grant
            .filter(|g| g.scope == TokenScope::Personal)
            .map(|g| krake_web::auth::actor_of(g.user, Front::Mcp)))
    }
}

/// `krake mcp`: serves the tools over stdio as the user of `KRAKE_MCP_TOKEN` until the
/// client closes. Nothing but the protocol goes to stdout.
pub async fn stdio(settings: Settings) -> anyhow::Result<()> {
    let token = std::env::var(TOKEN_VAR)
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .with_context(|| {
            format!(
                "set {TOKEN_VAR} to a personal API token (make one with `krake user token NAME`)"
            )
        })?;
    let store = wiring::open_store(&settings, false).await?;
    let krake = wiring::krake(&store, &settings);
    let actor = krake_mcp::Authenticate::actor(&TokenAuth(Arc::new(store.clone())), &token)
        .await
        .map_err(|e| anyhow::anyhow!("cannot check {TOKEN_VAR}: {e}"))?
        .with_context(|| {
            format!("{TOKEN_VAR} is unknown, expired or revoked, or not a personal token")
        })?;
    krake_mcp::serve_stdio(krake, actor).await?;
    store.pool().close().await;
    Ok(())
}
