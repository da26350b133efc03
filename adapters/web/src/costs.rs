//! `GET /api/v1/costs[?workspace=SLUG&month=YYYY-MM]`: model tokens and cost of a month, in
//! total and per workspace, agent and day (micro-dollars), for a personal API token. Without
//! `workspace` it covers every workspace the token's user sees.

use crate::{ApiError, AppState, authenticate};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use krake_core::workspace::WorkspaceSlug;
use std::collections::HashMap;

/// The costs route.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/costs", get(costs))
}

fn valid_month(m: &str) -> bool {
    let b = m.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[5..].iter().all(u8::is_ascii_digit)
        && matches!(
            &m[5..],
            "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12"
        )
}

async fn costs(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (workspace, month) = (q.get("workspace"), q.get("month"));
    let api = state
        .api
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("the API is not enabled".into()))?;
    let actor = authenticate(api, &headers).await?;
    if let Some(m) = month
        && !valid_month(m)
    {
        return Err(ApiError::NotFound(format!(
            "`{m}` is not a month; use YYYY-MM, e.g. 2026-11"
        )));
    }
    let ws = match workspace {
        Some(slug) => Some(
            WorkspaceSlug::parse(slug)
                .ok()
                .filter(|w| api.krake.directory().workspace(w).is_some())
                .ok_or_else(|| ApiError::NotFound(format!("there is no workspace `{slug}`")))?,
        ),
        None => None,
    };
    if let Some(w) = &ws
        && !actor.can_see(w)
    {
        return Err(ApiError::Forbidden(format!(
            "{} may not see {w}",
            actor.user
        )));
    }
    let report = api
        .krake
        .cost_report(&actor, ws.as_ref(), month.map(String::as_str))
        .await?
        .ok_or_else(|| ApiError::NotFound("costs are not available".into()))?;
    Ok(Json(report).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_checked() {
        assert!(valid_month("2026-11"));
        assert!(!valid_month("2026-13"));
        assert!(!valid_month("26-11"));
        assert!(!valid_month("2026-1x"));
    }
}
