//! The webhook endpoints. Each answers 200 only after the event is durably stored (through
//! core's [`CommerceIntake`], group-committed by the store); the processor applies it later.

use crate::{gelato, shopify};
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use krake_core::commerce::{CommerceEnvelope, CommerceIntake, Taken};
use krake_core::inbound::IdempotencyKey;
pub use krake_core::secret::Secret;
use krake_core::time::Clock;
use krake_core::workspace::WorkspaceSlug;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The counter of webhook events, by `source` (shopify, gelato) and `outcome` (`stored`,
/// `duplicate`, or `refused-STATUS` such as `refused-401`, `refused-413`, `failed-503`).
/// Recorded through the `metrics` facade; the binary decides how it is exported.
pub const WEBHOOK_EVENTS: &str = "krake_webhook_events_total";

/// Largest accepted body: 1 MiB; larger ones get 413.
pub const MAX_BODY: usize = 1024 * 1024;

/// How old a Shopify event (by `X-Shopify-Triggered-At`) may be by default: 24 hours.
/// Shopify retries a failed delivery for about 4 hours, so a retry after an outage is never
/// refused, while a captured body replayed days later is.
pub const DEFAULT_MAX_EVENT_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// What the webhook endpoints need to know.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Shopify's current webhook secret (the app's secret, for every shop without its own).
    pub shopify_secret: Option<Secret>,
    /// The previous secret, accepted during rotation.
    pub shopify_secret_previous: Option<Secret>,
    /// Shop domain (`lunavo.myshopify.com`, lowercase) → workspace.
    pub shops: HashMap<String, WorkspaceSlug>,
    /// Shop domain (lowercase) → that shop's own secrets (current, then previous). A shop
    /// listed here is verified with its own secrets only, never with the shared ones, so a
    /// body signed for one shop cannot be replayed under another shop's domain.
    pub shop_secrets: HashMap<String, Vec<Secret>>,
    /// Events whose `X-Shopify-Triggered-At` is older than this are refused (400).
    pub max_event_age: Duration,
    /// Per-workspace Gelato path tokens.
    pub gelato_tokens: Vec<(WorkspaceSlug, Secret)>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            shopify_secret: None,
            shopify_secret_previous: None,
            shops: HashMap::new(),
            shop_secrets: HashMap::new(),
            max_event_age: DEFAULT_MAX_EVENT_AGE,
            gelato_tokens: Vec::new(),
        }
    }
}

#[derive(Clone)]
struct AppState {
    config: Arc<WebhookConfig>,
    intake: CommerceIntake,
    clock: Arc<dyn Clock>,
}

/// The webhook routes: `POST /webhooks/shopify`, `POST /webhooks/gelato/{token}`. Verified
/// events go to core's `intake`; `clock` dates the replay check.
pub fn router(config: WebhookConfig, intake: CommerceIntake, clock: Arc<dyn Clock>) -> Router {
    Router::new()
        .route("/webhooks/shopify", post(shopify_hook))
        .route("/webhooks/gelato/{token}", post(gelato_hook))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(AppState {
            config: Arc::new(config),
            intake,
            clock,
        })
}

/// A webhook delivery: its headers, moved out of the request rather than copied, and its
/// body, read within the [`MAX_BODY`] limit (413 beyond it).
struct Delivery {
    headers: HeaderMap,
    body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for Delivery {
    type Rejection = Response;

    async fn from_request(mut req: Request, state: &S) -> Result<Self, Response> {
        let headers = std::mem::take(req.headers_mut());
        match Bytes::from_request(req, state).await {
            Ok(body) => Ok(Self { headers, body }),
            Err(rejection) => Err(rejection.into_response()),
        }
    }
}

/// Counts an answer that is not a 200 (stored and duplicate events, both 200, are counted
/// where they are stored), the 413 of the body limit included, and passes it on.
fn counted(source: &'static str, res: Response) -> Response {
    let status = res.status();
    if status != StatusCode::OK {
        let kind = if status.is_server_error() {
            "failed"
        } else {
            "refused"
        };
        metrics::counter!(WEBHOOK_EVENTS, "source" => source, "outcome" => format!("{kind}-{}", status.as_u16()))
            .increment(1);
    }
    res
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": { "code": code, "message": message.into() } })),
    )
        .into_response()
}

/// A Shopify header's two spellings: `X-Shopify-Topic` and the newer `shopify-topic`.
type Spellings = [HeaderName; 2];

const fn spellings(prefixed: &'static str, plain: &'static str) -> Spellings {
    [
        HeaderName::from_static(prefixed),
        HeaderName::from_static(plain),
    ]
}

const HMAC: Spellings = spellings("x-shopify-hmac-sha256", "shopify-hmac-sha256");
const SHOP_DOMAIN: Spellings = spellings("x-shopify-shop-domain", "shopify-shop-domain");
const WEBHOOK_ID: Spellings = spellings("x-shopify-webhook-id", "shopify-webhook-id");
const TOPIC: Spellings = spellings("x-shopify-topic", "shopify-topic");
const EVENT_ID: Spellings = spellings("x-shopify-event-id", "shopify-event-id");
const TRIGGERED_AT: Spellings = spellings("x-shopify-triggered-at", "shopify-triggered-at");

/// A Shopify header under either spelling, trimmed; `None` when absent or empty.
fn header<'a>(h: &'a HeaderMap, names: &Spellings) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| h.get(n))
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

async fn store(
    state: &AppState,
    source: &'static str,
    key: String,
    actor: &str,
    conversation: &str,
    env: CommerceEnvelope,
) -> Response {
    let Ok(key) = IdempotencyKey::parse(&key) else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_id",
            "the event id is too long or not printable",
        );
    };
    let key_text = key.as_str().to_owned();
    match state
        .intake
        .take(source, key, actor, conversation, &env)
        .await
    {
        Ok(taken) => {
            let duplicate = taken == Taken::Duplicate;
            tracing::debug!(source, key = key_text, duplicate, "webhook stored");
            let outcome = if duplicate { "duplicate" } else { "stored" };
            metrics::counter!(WEBHOOK_EVENTS, "source" => source, "outcome" => outcome)
                .increment(1);
            (
                StatusCode::OK,
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                r#"{"ok":true}"#,
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(source, error = %e, "could not store a webhook; the sender will retry");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the event could not be stored; retry later",
            )
        }
    }
}

async fn shopify_hook(
    State(state): State<AppState>,
    delivery: Result<Delivery, Response>,
) -> Response {
    counted(
        "shopify",
        match delivery {
            Ok(d) => shopify(&state, &d.headers, d.body).await,
            Err(refused) => refused,
        },
    )
}

async fn shopify(state: &AppState, headers: &HeaderMap, body: Bytes) -> Response {
    let config = &state.config;
    let shop = header(headers, &SHOP_DOMAIN);
    let lower: Option<std::borrow::Cow<'_, str>> = shop.map(|shop| {
        if shop.bytes().any(|b| b.is_ascii_uppercase()) {
            shop.to_ascii_lowercase().into()
        } else {
            shop.into()
        }
    });
    // A shop with its own secrets is verified with those alone; every other shop with the
    // app's shared secret (current and previous).
    let own = lower.as_deref().and_then(|s| config.shop_secrets.get(s));
    let secrets: Vec<&[u8]> = match own {
        Some(own) => own.iter().map(|s| s.expose().as_bytes()).collect(),
        None => [&config.shopify_secret, &config.shopify_secret_previous]
            .into_iter()
            .flatten()
            .map(|s| s.expose().as_bytes())
            .collect(),
    };
    if secrets.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "not_configured",
            "Shopify webhooks are not configured (KRAKE_SHOPIFY_WEBHOOK_SECRET)",
        );
    }
    let Some(hmac) = header(headers, &HMAC) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "unsigned",
            "missing X-Shopify-Hmac-Sha256",
        );
    };
    if !shopify::verify(&secrets, &body, hmac) {
        return error(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "the HMAC does not match the body",
        );
    }
    let (Some(shop), Some(lower)) = (shop, lower) else {
        return error(
            StatusCode::BAD_REQUEST,
            "no_shop",
            "missing X-Shopify-Shop-Domain",
        );
    };
    let Some(workspace) = config.shops.get(lower.as_ref()).cloned() else {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_shop",
            format!("no workspace is configured for {shop} ([shopify.shops])"),
        );
    };
    let Some(webhook_id) = header(headers, &WEBHOOK_ID) else {
        return error(
            StatusCode::BAD_REQUEST,
            "no_webhook_id",
            "missing X-Shopify-Webhook-Id",
        );
    };
    let triggered_at = header(headers, &TRIGGERED_AT);
    if let Some(refused) = too_old(triggered_at, state.clock.now(), config.max_event_age) {
        return refused;
    }
    let topic = header(headers, &TOPIC).unwrap_or("unknown");
    let parsed = match shopify::parse_delivery(topic, &body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_payload", e.to_string()),
    };
    if let Some(named) = parsed
        .shop
        .as_deref()
        .filter(|named| *named != lower.as_ref())
    {
        tracing::warn!(
            header = shop,
            body = named,
            topic,
            "shopify webhook for another shop refused"
        );
        return error(
            StatusCode::FORBIDDEN,
            "shop_mismatch",
            "the body belongs to another shop than X-Shopify-Shop-Domain",
        );
    }
    if let Some(event_id) = header(headers, &EVENT_ID) {
        tracing::debug!(webhook_id, event_id, triggered_at, topic, "shopify webhook");
    }
    store(
        state,
        "shopify",
        format!("shopify:{webhook_id}"),
        "shopify",
        shop,
        CommerceEnvelope {
            workspace,
            event: parsed.event,
        },
    )
    .await
}

/// The refusal of an event triggered longer than `max_age` before `now`, by its
/// `X-Shopify-Triggered-At` (RFC 3339). The header is not signed, so this only stops a
/// captured body replayed as it was captured; what an event does is idempotent by its content
/// whatever its headers say (core's commerce processor). An absent or unreadable header is
/// let through: the signature is what authenticates.
fn too_old(
    triggered_at: Option<&str>,
    now: krake_core::time::Timestamp,
    max_age: Duration,
) -> Option<Response> {
    let at = chrono::DateTime::parse_from_rfc3339(triggered_at?).ok()?;
    let age_ms = now.as_millis().saturating_sub(at.timestamp_millis());
    let max_ms = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
    (age_ms > max_ms).then(|| {
        error(
            StatusCode::BAD_REQUEST,
            "stale_event",
            format!(
                "the event was triggered more than {} s ago (X-Shopify-Triggered-At)",
                max_age.as_secs()
            ),
        )
    })
}

async fn gelato_hook(
    State(state): State<AppState>,
    token: Result<Path<String>, PathRejection>,
    delivery: Result<Delivery, Response>,
) -> Response {
    counted(
        "gelato",
        match (token, delivery) {
            (Ok(Path(token)), Ok(d)) => gelato(&state, &token, d.body).await,
            (Err(refused), _) => refused.into_response(),
            (_, Err(refused)) => refused,
        },
    )
}

async fn gelato(state: &AppState, token: &str, body: Bytes) -> Response {
    // Every configured token is compared, in constant time, whatever matches first.
    let mut found: Option<WorkspaceSlug> = None;
    for (ws, t) in &state.config.gelato_tokens {
        if bool::from(t.expose().as_bytes().ct_eq(token.as_bytes())) {
            found = Some(ws.clone());
        }
    }
    let Some(workspace) = found else {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_token",
            "no workspace has this Gelato webhook token",
        );
    };
    let conversation = workspace.to_string();
    let parsed = match gelato::parse(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_payload", e.to_string()),
    };
    store(
        state,
        "gelato",
        format!("gelato:{}", parsed.key),
        "gelato",
        &conversation,
        CommerceEnvelope {
            workspace,
            event: parsed.event,
        },
    )
    .await
}
