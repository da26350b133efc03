//! # krake-metrics
//!
//! Metrics and request tracing for `krake serve`.
//!
//! Metrics are recorded through the `metrics` facade (adapters such as krake-commerce count
//! their own events without knowing the exporter) and rendered in the Prometheus text format
//! by `metrics-exporter-prometheus` at `GET /metrics`. Gauges that mirror the database (the
//! outbox depth) are read from the store at scrape time, so every replica reports the same
//! shared queue. Each front's state (`krake_front_up`) is read from the supervisors' registry
//! at scrape time too.
//!
//! Agent runs are counted by `agent` and `status` when a run ends; model tokens and cost are
//! counted per call by [`MeteredModel`], which wraps the model the runner uses.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use krake_core::ports::OutboxRepo;
use krake_core::secret::Secret;
use krake_core::supervise::Fronts;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// HTTP requests served, by `method`, `route` (the matched path template) and `status`.
pub const HTTP_REQUESTS: &str = "krake_http_requests_total";
/// HTTP request duration in seconds, by `method` and `route`.
pub const HTTP_DURATION: &str = "krake_http_request_duration_seconds";
/// Messages waiting in the shared outbox (read from the database at scrape time).
pub const OUTBOX_DEPTH: &str = "krake_outbox_depth";
/// Outbox messages handled by this process's deliverers, by `front` and `outcome`.
pub const OUTBOX_DELIVERIES: &str = "krake_outbox_deliveries_total";
/// Duration of one outbox delivery pass in seconds (claim, send, record), by `front`.
pub const DELIVERY_PASS: &str = "krake_delivery_pass_seconds";
/// Time from queueing an outbox message to its delivery in seconds, by `front`.
pub const DELIVERY_LATENCY: &str = "krake_delivery_latency_seconds";
/// Commerce events applied by this process's processor.
pub const COMMERCE_APPLIED: &str = "krake_commerce_events_applied_total";
/// Schedule occurrences handled by this process's coordinator, by `outcome` (ran, skipped, lost).
pub const SCHEDULE_RUNS: &str = "krake_schedule_runs_total";
/// 1 while a front (`front`: telegram, discord, web) is connected to its platform, else 0
/// (starting, retrying, unauthorized or stopped: `/readyz` says which, and why).
pub const FRONT_UP: &str = "krake_front_up";
/// Always 1, labelled with the build's `version`.
pub const BUILD_INFO: &str = "krake_build_info";
/// Webhook events, by `source` and `outcome` (recorded by krake-commerce).
pub const WEBHOOK_EVENTS: &str = krake_commerce::WEBHOOK_EVENTS;

/// Agent runs ended by this process, by `agent` and `status` (`done`, `awaiting_approval`,
/// `escalated`, `failed`, `refused`).
pub const AGENT_RUNS: &str = "krake_agent_runs_total";
/// Model tokens used by this process's calls, by `provider`, `model` and `kind` (`input`,
/// `output`).
pub const MODEL_TOKENS: &str = "krake_model_tokens_total";
/// What this process's model calls cost in micro-dollars (millionths of a US dollar) at the
/// configured prices, by `provider` and `model` (Prometheus counters are integers here).
pub const MODEL_COST: &str = "krake_model_cost_microdollars_total";

/// From a thread's opening to its decision (approvals) or first reply by a person (other
/// kinds), in seconds, by `workspace` and `kind`, for the decisions this process took.
pub const APPROVAL_LATENCY: &str = "krake_approval_latency_seconds";

/// Buckets of [`APPROVAL_LATENCY`]: a minute to a week.
const APPROVAL_BUCKETS: &[f64] = &[
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14_400.0, 28_800.0, 86_400.0, 172_800.0, 345_600.0,
    604_800.0,
];

/// Every metric name `/metrics` exports (histograms add `_bucket`, `_sum`, `_count`).
pub const ALL: &[&str] = &[
    APPROVAL_LATENCY,
    HTTP_REQUESTS,
    HTTP_DURATION,
    OUTBOX_DEPTH,
    OUTBOX_DELIVERIES,
    DELIVERY_PASS,
    DELIVERY_LATENCY,
    COMMERCE_APPLIED,
    SCHEDULE_RUNS,
    FRONT_UP,
    BUILD_INFO,
    WEBHOOK_EVENTS,
    AGENT_RUNS,
    MODEL_TOKENS,
    MODEL_COST,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once) and returns its handle; `None` when
/// another recorder was installed first.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let durations = &[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ];
            let handle = PrometheusBuilder::new()
                .set_buckets(durations)
                .ok()?
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(APPROVAL_LATENCY.to_owned()),
                    APPROVAL_BUCKETS,
                )
                .ok()?
                .install_recorder()
                .map_err(|e| tracing::warn!(error = %e, "metrics are not available"))
                .ok()?;
            describe();
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            Some(handle)
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(HTTP_REQUESTS, "HTTP requests by route template and status");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "HTTP request duration");
    describe_gauge!(OUTBOX_DEPTH, "Messages waiting in the outbox");
    describe_counter!(
        OUTBOX_DELIVERIES,
        "Outbox messages handled, by front and outcome"
    );
    describe_histogram!(DELIVERY_PASS, Unit::Seconds, "One delivery pass, by front");
    describe_histogram!(
        DELIVERY_LATENCY,
        Unit::Seconds,
        "From queueing an outbox message to its delivery, by front"
    );
    describe_counter!(COMMERCE_APPLIED, "Commerce events applied");
    describe_counter!(SCHEDULE_RUNS, "Schedule occurrences, by outcome");
    describe_gauge!(
        FRONT_UP,
        "1 while the front is connected to its platform, by front"
    );
    describe_gauge!(BUILD_INFO, "Build information");
    describe_counter!(WEBHOOK_EVENTS, "Webhook events by source and outcome");
    describe_counter!(AGENT_RUNS, "Agent runs ended, by agent and status");
    describe_histogram!(
        APPROVAL_LATENCY,
        Unit::Seconds,
        "From a thread's opening to its decision or first reply, by workspace and kind"
    );
    describe_counter!(MODEL_TOKENS, "Model tokens, by provider, model and kind");
    describe_counter!(
        MODEL_COST,
        "Model cost in micro-dollars at the configured prices, by provider and model"
    );
}

/// Hears the inbox's events and records [`APPROVAL_LATENCY`]: a decided approval, or the
/// first reply by a person to any other thread.
#[derive(Debug, Default, Clone, Copy)]
pub struct ApprovalLatency;

#[async_trait::async_trait]
impl krake_core::inbox::rules::InboxListener for ApprovalLatency {
    async fn on_inbox_event(
        &self,
        event: krake_core::inbox::rules::InboxEvent<'_>,
        _actor: &krake_core::Actor,
    ) -> Result<Option<String>, krake_core::ports::RepoError> {
        use krake_core::inbox::ThreadKind;
        use krake_core::inbox::rules::InboxEvent;
        let (th, at) = match event {
            InboxEvent::Decided(th) => (th, th.updated_at),
            InboxEvent::Replied(th) if th.kind != ThreadKind::Approval && th.replies.len() == 1 => {
                match th.replies.first() {
                    Some(r) => (th, r.at),
                    None => return Ok(None),
                }
            }
            InboxEvent::Replied(_) => return Ok(None),
        };
        let seconds = (at.as_millis() - th.created_at.as_millis()).max(0) as f64 / 1000.0;
        metrics::histogram!(
            APPROVAL_LATENCY,
            "workspace" => th.workspace.to_string(),
            "kind" => th.kind.as_str().to_owned()
        )
        .record(seconds);
        Ok(None)
    }
}

/// Records one ended agent run.
pub fn agent_run(agent: &str, status: &str) {
    metrics::counter!(AGENT_RUNS, "agent" => agent.to_owned(), "status" => status.to_owned())
        .increment(1);
}

/// A [`ChatModel`](krake_core::model::ChatModel) that counts the tokens and cost of every
/// answered call of the model it wraps (the provider and model that answered, after fail-over).
pub struct MeteredModel<M: ?Sized> {
    inner: Arc<M>,
}

impl<M: ?Sized> MeteredModel<M> {
    /// Wraps `inner`.
    pub fn new(inner: Arc<M>) -> Self {
        Self { inner }
    }
}

#[async_trait::async_trait]
impl<M> krake_core::model::ChatModel for MeteredModel<M>
where
    M: krake_core::model::ChatModel + ?Sized,
{
    async fn chat(
        &self,
        request: &krake_core::model::ChatRequest,
    ) -> Result<krake_core::model::ChatResponse, krake_core::model::ModelError> {
        let response = self.inner.chat(request).await?;
        Ok(count(response))
    }

    async fn chat_streaming(
        &self,
        request: &krake_core::model::ChatRequest,
        on: krake_core::model::OnPartial<'_>,
    ) -> Result<krake_core::model::ChatResponse, krake_core::model::ModelError> {
        let response = self.inner.chat_streaming(request, on).await?;
        Ok(count(response))
    }

    fn streams(&self, model: Option<&str>) -> bool {
        self.inner.streams(model)
    }

    async fn context_window(&self, model: Option<&str>) -> Option<u64> {
        self.inner.context_window(model).await
    }

    fn price(&self, model: Option<&str>) -> krake_core::model::Price {
        self.inner.price(model)
    }
}

/// Counts an answered call's tokens and cost.
fn count(response: krake_core::model::ChatResponse) -> krake_core::model::ChatResponse {
    {
        let (provider, model) = (response.provider.clone(), response.model.clone());
        for (kind, n) in [
            ("input", response.usage.input_tokens),
            ("output", response.usage.output_tokens),
        ] {
            metrics::counter!(MODEL_TOKENS, "provider" => provider.clone(), "model" => model.clone(), "kind" => kind)
                .increment(n);
        }
        metrics::counter!(MODEL_COST, "provider" => provider, "model" => model)
            .increment(u64::try_from(response.cost_micros).unwrap_or(0));
    }
    response
}

/// The `method` label: one of the standard methods, or `other` for anything a client made
/// up (each distinct label value is a series kept for the life of the process).
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts and times every request by its matched route template (`/webhooks/gelato/{token}`,
/// never the raw path, so tokens and ids stay out of the labels; `unmatched` for any path no
/// route matched) and a known method ([`method_label`]): what a stranger sends cannot add
/// series.
pub async fn track_http(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method());
    let start = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route.clone())
        .record(start.elapsed().as_secs_f64());
    metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route, "status" => status)
        .increment(1);
    res
}

#[derive(Clone)]
struct MetricsState {
    handle: Option<PrometheusHandle>,
    outbox: Arc<dyn OutboxRepo>,
    fronts: Fronts,
    token: Option<Secret>,
}

/// `GET /metrics`: the Prometheus text format. With a `token`, a scrape must send
/// `Authorization: Bearer <token>` (401 otherwise).
pub fn router(
    handle: Option<PrometheusHandle>,
    outbox: Arc<dyn OutboxRepo>,
    fronts: Fronts,
    token: Option<Secret>,
) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(scrape))
        .with_state(MetricsState {
            handle,
            outbox,
            fronts,
            token,
        })
}

/// Whether `headers` carry `Authorization: Bearer <token>`, compared in constant time.
fn bearer_matches(headers: &HeaderMap, token: &Secret) -> bool {
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    let want = token.expose().as_bytes();
    // Every byte is compared whatever differs first; only the length leaks.
    sent.len() == want.len()
        && sent
            .bytes()
            .zip(want)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Sets `krake_front_up` for every registered front.
fn record_fronts(fronts: &Fronts) {
    for (front, s) in fronts.snapshot() {
        let up = if s.state.is_up() { 1.0 } else { 0.0 };
        metrics::gauge!(FRONT_UP, "front" => front).set(up);
    }
}

async fn scrape(State(state): State<MetricsState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.token
        && !bearer_matches(&headers, token)
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "metrics need Authorization: Bearer <KRAKE_METRICS_TOKEN>\n",
        )
            .into_response();
    }
    let Some(handle) = &state.handle else {
        return (StatusCode::NOT_FOUND, "metrics are not enabled\n").into_response();
    };
    match state.outbox.outbox_depth().await {
        Ok(n) => metrics::gauge!(OUTBOX_DEPTH).set(n as f64),
        Err(e) => tracing::warn!(error = %e, "cannot read the outbox depth for /metrics"),
    }
    record_fronts(&state.fronts);
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
        .into_response()
}

/// Records one delivery pass of `front`.
pub fn delivery_pass(front: &str, seconds: f64, stats: &krake_core::delivery::DeliveryStats) {
    let front = front.to_owned();
    metrics::histogram!(DELIVERY_PASS, "front" => front.clone()).record(seconds);
    for (outcome, n) in [
        ("delivered", stats.delivered),
        ("retried", stats.retried),
        ("dead", stats.dead),
        ("lost", stats.lost),
    ] {
        if n > 0 {
            metrics::counter!(OUTBOX_DELIVERIES, "front" => front.clone(), "outcome" => outcome)
                .increment(n as u64);
        }
    }
    let latency = metrics::histogram!(DELIVERY_LATENCY, "front" => front);
    for l in &stats.latencies {
        latency.record(l.as_secs_f64());
    }
}

/// Wraps the whole app: an `x-request-id` per request (kept when the caller sends one, a UUID
/// otherwise, and echoed in the response), a tracing span carrying it for every log line of
/// the request, and the HTTP metrics. Spans name the route template, never the raw path
/// (a Gelato path holds a secret token).
pub fn instrument(app: axum::Router) -> axum::Router {
    use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
    use tower_http::trace::TraceLayer;
    let id = axum::http::HeaderName::from_static("x-request-id");
    app.layer(axum::middleware::from_fn(track_http))
        .layer(PropagateRequestIdLayer::new(id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let request_id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map(MatchedPath::as_str)
                .unwrap_or("unmatched");
            tracing::info_span!("http", request_id, method = %req.method(), route)
        }))
        .layer(SetRequestIdLayer::new(id, MakeRequestUuid))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    fn series(rendered: &str, route: &str) -> Vec<String> {
        rendered
            .lines()
            .filter(|l| l.starts_with(HTTP_REQUESTS) && l.contains(&format!("route=\"{route}\"")))
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn made_up_methods_add_no_series() {
        let handle = install().expect("the test binary installs the recorder");
        let app =
            instrument(axum::Router::new().route("/probe", axum::routing::any(|| async { "ok" })));
        let send = |method: String, path: &'static str| {
            let app = app.clone();
            async move {
                let req = Request::builder()
                    .method(method.as_str())
                    .uri(path)
                    .body(Body::empty())
                    .unwrap();
                app.oneshot(req).await.unwrap().status()
            }
        };
        for m in ["GET", "POST"] {
            assert_eq!(send(m.to_owned(), "/probe").await, StatusCode::OK);
        }
        let before = handle.render();
        let known = series(&before, "/probe").len();
        assert_eq!(known, 2, "{before}");
        // 300 requests with made-up methods, on a route and on no route at all.
        for i in 0..300 {
            send(format!("PROBE{i}"), "/probe").await;
            send(format!("X{i}"), "/nowhere").await;
        }
        let after = handle.render();
        assert!(!after.contains("PROBE"), "a made-up method became a label");
        let probe = series(&after, "/probe");
        assert_eq!(probe.len(), 3, "GET, POST and one `other`: {probe:?}");
        assert!(
            probe
                .iter()
                .any(|l| l.contains("method=\"other\"") && l.ends_with(" 300")),
            "{probe:?}"
        );
        assert!(
            series(&after, "unmatched").len() <= 2,
            "{:?}",
            series(&after, "unmatched")
        );
    }

    #[tokio::test]
    async fn decisions_and_first_replies_record_the_wait() {
        use krake_core::inbox::rules::{InboxEvent, InboxListener};
        use krake_core::inbox::{NewThread, Thread, ThreadKind, ThreadReply, ThreadStatus};
        use krake_core::time::Timestamp;
        use krake_core::workspace::WorkspaceSlug;
        let handle = install().expect("the test binary installs the recorder");
        let thread = |kind: ThreadKind, opened: i64, changed: i64| {
            let n = NewThread::new(WorkspaceSlug::parse("lunavo").unwrap(), kind, "t", "");
            Thread {
                id: krake_core::inbox::ThreadId(1),
                workspace: n.workspace,
                kind,
                status: ThreadStatus::Approved,
                origin: n.origin,
                agent: None,
                title: n.title,
                body: n.body,
                action: None,
                approvers: n.approvers,
                approvals: Vec::new(),
                expires_at: None,
                timeout_route: n.timeout_route,
                decided_by: None,
                reason: None,
                version: 2,
                created_at: Timestamp::from_millis(opened),
                updated_at: Timestamp::from_millis(changed),
                replies: Vec::new(),
            }
        };
        let who = krake_core::Actor::local();
        // Approved 20 minutes after it opened.
        let approved = thread(ThreadKind::Approval, 0, 1_200_000);
        ApprovalLatency
            .on_inbox_event(InboxEvent::Decided(&approved), &who)
            .await
            .unwrap();
        // A question answered after 2 hours; a second reply records nothing more.
        let mut q = thread(ThreadKind::Question, 0, 0);
        for at in [7_200_000, 9_000_000] {
            q.replies.push(ThreadReply {
                author: who.user.clone(),
                front: krake_core::Front::Cli,
                text: "ok".into(),
                at: Timestamp::from_millis(at),
            });
            ApprovalLatency
                .on_inbox_event(InboxEvent::Replied(&q), &who)
                .await
                .unwrap();
        }
        let out = handle.render();
        let line = |kind: &str, suffix: &str| {
            out.lines()
                .find(|l| {
                    l.starts_with(&format!("{APPROVAL_LATENCY}{suffix}"))
                        && l.contains(&format!("kind=\"{kind}\""))
                        && l.contains("workspace=\"lunavo\"")
                })
                .unwrap_or_else(|| panic!("no {kind}{suffix} in {out}"))
                .to_owned()
        };
        assert!(line("approval", "_sum").ends_with(" 1200"), "{out}");
        assert!(line("question", "_count").ends_with(" 1"), "{out}");
        assert!(line("question", "_sum").ends_with(" 7200"), "{out}");
        let bucket = out
            .lines()
            .find(|l| l.contains("kind=\"approval\"") && l.contains("le=\"1800\""))
            .unwrap_or_else(|| panic!("the approval buckets are a minute to a week: {out}"));
        assert!(bucket.ends_with(" 1"), "{bucket}");
    }

    #[test]
    fn the_bearer_token_must_match_exactly() {
        let token = Secret::new("scrape-me-0123456789");
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            h
        };
        assert!(bearer_matches(&with("Bearer scrape-me-0123456789"), &token));
        for bad in [
            "Bearer scrape-me-012345678",
            "Bearer scrape-me-0123456789x",
            "Bearer SCRAPE-ME-0123456789",
            "Basic scrape-me-0123456789",
            "scrape-me-0123456789",
            "Bearer ",
        ] {
            assert!(!bearer_matches(&with(bad), &token), "{bad}");
        }
        assert!(!bearer_matches(&HeaderMap::new(), &token));
    }
}
