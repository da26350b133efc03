//! The HTTP listener of `krake serve`, bounded against slow and numerous clients: a request's
//! headers must arrive within `header_read_timeout`, its body within `body_read_timeout` of
//! the headers, and at most `max_connections` connections are open at once (further ones wait
//! in the kernel's accept queue until one closes). `axum::serve` offers none of these, so
//! this is its accept loop with hyper's HTTP/1 builder (web socket upgrades included).

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// How long a client may take to send a request's headers by default: 10 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's body by default: 30 s (a 1 MiB webhook at
/// 35 KB/s).
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How many connections may be open at once by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// How long shutdown waits for open requests before it closes their connections.
const DRAIN: Duration = Duration::from_secs(30);

/// The limits of the HTTP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time allowed for a request's headers.
    pub header_read_timeout: Duration,
    /// Time allowed for a request's body, counted from when its headers were read.
    pub body_read_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Requests per minute from one client address (routes people and scripts use).
    pub per_address: Rate,
    /// Requests per minute with one bearer token, from any address.
    pub per_token: Rate,
}

/// A rate: `per_minute` on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Sustained requests per minute.
    pub per_minute: u32,
    /// Requests allowed at once before the sustained rate applies.
    pub burst: u32,
}

/// Requests per minute per client address by default (10 a second, 200 at once).
pub const DEFAULT_PER_ADDRESS: Rate = Rate {
    per_minute: 600,
    burst: 200,
};
/// Requests per minute per token by default.
pub const DEFAULT_PER_TOKEN: Rate = Rate {
    per_minute: 600,
    burst: 200,
};

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            per_address: DEFAULT_PER_ADDRESS,
            per_token: DEFAULT_PER_TOKEN,
        }
    }
}

/// `[http]` in the config file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFile {
    /// Seconds a client may take to send a request's headers (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds a client may take to send a request's body (default 30).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_read_timeout_secs: Option<u64>,
    /// Connections open at once (default 1024).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Requests per minute from one client address to the API, sign-in, dashboard and web
    /// chat (default 600; webhooks and probes are not counted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_minute_per_address: Option<u32>,
    /// Requests one client address may make at once (default 200).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst_per_address: Option<u32>,
    /// Requests per minute with one API token (default 600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_minute_per_token: Option<u32>,
    /// Requests one API token may make at once (default 200).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst_per_token: Option<u32>,
    /// Serve `/metrics` on this address instead of the main listener (e.g. `10.0.0.5:9100`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<String>,
    /// A bearer token `/metrics` requires (prefer `KRAKE_METRICS_TOKEN`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_token: Option<krake_core::secret::Secret>,
}

/// The effective `[http]` settings.
#[derive(Debug, Clone, Default)]
pub struct HttpSettings {
    /// The listener's limits.
    pub limits: HttpLimits,
    /// Where `/metrics` is served, when not on the main listener.
    pub metrics_listen: Option<SocketAddr>,
    /// The bearer token `/metrics` requires, if any.
    pub metrics_token: Option<krake_core::secret::Secret>,
}

impl HttpFile {
    /// The effective settings (`KRAKE_METRICS_TOKEN` preferred over `metrics_token`).
    pub fn resolve(&self) -> Result<HttpSettings, String> {
        let metrics_listen = match &self.metrics_listen {
            Some(a) => Some(a.parse().map_err(|_| {
                format!("[http] metrics_listen `{a}` is not HOST:PORT, e.g. 127.0.0.1:9100")
            })?),
            None => None,
        };
        Ok(HttpSettings {
            limits: self.limits()?,
            metrics_listen,
            metrics_token: krake_core::settings::env_secret(
                "KRAKE_METRICS_TOKEN",
                self.metrics_token.as_ref(),
            ),
        })
    }

    /// The settings in effect, as they would be written in the file (the token as `***`).
    pub fn effective(s: &HttpSettings) -> Self {
        Self {
            header_read_timeout_secs: Some(s.limits.header_read_timeout.as_secs()),
            body_read_timeout_secs: Some(s.limits.body_read_timeout.as_secs()),
            max_connections: Some(s.limits.max_connections),
            requests_per_minute_per_address: Some(s.limits.per_address.per_minute),
            burst_per_address: Some(s.limits.per_address.burst),
            requests_per_minute_per_token: Some(s.limits.per_token.per_minute),
            burst_per_token: Some(s.limits.per_token.burst),
            metrics_listen: s.metrics_listen.map(|a| a.to_string()),
            metrics_token: s.metrics_token.clone(),
        }
    }

    /// The listener's limits; a zero is refused (it would refuse every request).
    fn limits(&self) -> Result<HttpLimits, String> {
        let d = HttpLimits::default();
        let secs = |v: Option<u64>, key: &str, default: Duration| match v {
            Some(0) => Err(format!("[http] {key} must be at least 1")),
            Some(s) => Ok(Duration::from_secs(s)),
            None => Ok(default),
        };
        Ok(HttpLimits {
            header_read_timeout: secs(
                self.header_read_timeout_secs,
                "header_read_timeout_secs",
                d.header_read_timeout,
            )?,
            body_read_timeout: secs(
                self.body_read_timeout_secs,
                "body_read_timeout_secs",
                d.body_read_timeout,
            )?,
            max_connections: match self.max_connections {
                Some(0) => return Err("[http] max_connections must be at least 1".into()),
                Some(n) => n,
                None => d.max_connections,
            },
            per_address: rate(
                self.requests_per_minute_per_address,
                self.burst_per_address,
                "per_address",
                d.per_address,
            )?,
            per_token: rate(
                self.requests_per_minute_per_token,
                self.burst_per_token,
                "per_token",
                d.per_token,
            )?,
        })
    }
}

fn rate(
    per_minute: Option<u32>,
    burst: Option<u32>,
    key: &str,
    default: Rate,
) -> Result<Rate, String> {
    let r = Rate {
        per_minute: per_minute.unwrap_or(default.per_minute),
        burst: burst.unwrap_or(default.burst),
    };
    if r.per_minute == 0 || r.burst == 0 {
        return Err(format!(
            "[http] requests_per_minute_{key} and burst_{key} must be at least 1"
        ));
    }
    Ok(r)
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then lets open
/// requests finish (up to 30 s). Each request carries the client's address as
/// [`ConnectInfo<SocketAddr>`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limiters = Arc::new(Limiters::new(&limits));
    let app = app
        .layer(axum::middleware::from_fn_with_state(
            limiters.clone(),
            rate_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            limits.body_read_timeout,
            body_deadline,
        ));
    // Keys that have not been seen for a while hold nothing back: drop them, so addresses
    // and tokens a stranger makes up do not grow the tables for ever.
    let janitor = {
        let limiters = limiters.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                limiters.retain_recent();
            }
        })
    };
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
        };
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(remote));
            app.clone().oneshot(req.map(Body::new))
        });
        let conn = http
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut conn = std::pin::pin!(conn);
            let stopping = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            let stopped = tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, %remote, "connection ended");
                    }
                    false
                }
                () = stopping => true,
            };
            if stopped {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(DRAIN, conn).await;
            }
        });
    }
    drop(listener);
    janitor.abort();
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it ends: wait until all are back (bounded by DRAIN
    // in each connection's task).
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN + Duration::from_secs(1), slots.acquire_many(all)).await;
    Ok(())
}

type Keyed<K> = governor::RateLimiter<
    K,
    governor::state::keyed::DefaultKeyedStateStore<K>,
    governor::clock::DefaultClock,
>;

/// The rate limiters of one listener: per client address and per bearer token (by a keyed
/// hash of the token, never the token itself).
struct Limiters {
    address: Keyed<std::net::IpAddr>,
    token: Keyed<u64>,
    hasher: std::hash::RandomState,
}

fn quota(r: Rate) -> governor::Quota {
    let per_minute = std::num::NonZeroU32::new(r.per_minute).unwrap_or(std::num::NonZeroU32::MIN);
    let burst = std::num::NonZeroU32::new(r.burst).unwrap_or(std::num::NonZeroU32::MIN);
    governor::Quota::per_minute(per_minute).allow_burst(burst)
}

impl Limiters {
    fn new(limits: &HttpLimits) -> Self {
        Self {
            address: governor::RateLimiter::keyed(quota(limits.per_address)),
            token: governor::RateLimiter::keyed(quota(limits.per_token)),
            hasher: std::hash::RandomState::new(),
        }
    }

    fn retain_recent(&self) {
        self.address.retain_recent();
        self.address.shrink_to_fit();
        self.token.retain_recent();
        self.token.shrink_to_fit();
    }
}

/// Whether requests to `path` count against the limits: what people and scripts call (the
/// API, sign-in, the dashboard, the web chat). Webhooks are signed by the platforms, which
/// burst and retry on their own (a 429 would only delay them), and probes and `/metrics` are
/// the operator's.
fn limited(path: &str) -> bool {
    !(path.starts_with("/webhooks/")
        || path == "/discord/interactions"
        || path == "/telegram/webhook"
        || path == "/healthz"
        || path == "/readyz"
        || path == "/metrics")
}

/// 429 with `Retry-After` when the client's address, or the bearer token it sends, is over
/// its rate. Bad-token guesses count like any request: against the address, and against the
/// guessed token.
async fn rate_limit(State(limiters): State<Arc<Limiters>>, req: Request, next: Next) -> Response {
    use governor::clock::{Clock as _, DefaultClock};
    use std::hash::BuildHasher;
    if !limited(req.uri().path()) {
        return next.run(req).await;
    }
    let address = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let token = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| limiters.hasher.hash_one(t.trim()));
    let over = address
        .and_then(|a| limiters.address.check_key(&a).err())
        .or_else(|| token.and_then(|t| limiters.token.check_key(&t).err()));
    match over {
        None => next.run(req).await,
        Some(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            tracing::info!(?address, retry_after = secs, "rate limited");
            let mut res = axum::response::IntoResponse::into_response((
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                axum::Json(serde_json::json!({"error": {
                    "code": "rate_limited",
                    "message": format!("too many requests; retry in {} s", secs.max(1)),
                }})),
            ));
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs.max(1)),
            );
            res
        }
    }
}

/// Gives the request's body a deadline: reading it fails once `timeout` has passed since the
/// headers were read, however the bytes trickle in (a timeout per read would let one byte
/// every few seconds hold the connection forever).
async fn body_deadline(State(timeout): State<Duration>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let body = Body::new(DeadlineBody {
        inner: body,
        deadline: Box::pin(tokio::time::sleep(timeout)),
    });
    next.run(Request::from_parts(parts, body)).await
}

/// A body that errs once its deadline passes.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, axum::BoxError>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body was not sent within the body read timeout",
            ))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// A server with an echo route and the given limits; returns its address and a stop.
    async fn server(limits: HttpLimits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let app = Router::new()
            .route("/", axum::routing::get(|| async { "hello" }))
            .route(
                "/echo",
                axum::routing::post(|body: Bytes| async move { body }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, app, limits, async move {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    /// Reads until the server closes the connection (or `within` passes): what it sent, and
    /// how long it held the connection.
    async fn until_closed(s: &mut TcpStream, within: Duration) -> (String, Duration) {
        let start = Instant::now();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(within, s.read_to_end(&mut out)).await;
        (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
    }

    fn limits(header: u64, body: u64, connections: usize) -> HttpLimits {
        HttpLimits {
            header_read_timeout: Duration::from_secs(header),
            body_read_timeout: Duration::from_secs(body),
            max_connections: connections,
            ..HttpLimits::default()
        }
    }

    /// Sends one request on a new connection; the status and the Retry-After header.
    async fn status_of(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, Option<u64>) {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let (answer, _) = until_closed(&mut s, Duration::from_secs(5)).await;
        let status = answer[9..12].parse().unwrap();
        let retry = answer
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("retry-after: ")
                    .map(str::to_owned)
            })
            .map(|v| v.trim().parse().unwrap());
        (status, retry)
    }

    #[tokio::test]
    async fn a_flood_from_one_address_or_one_token_gets_429_with_retry_after() {
        let few = Rate {
            per_minute: 6,
            burst: 5,
        };
        let (addr, _stop) = server(HttpLimits {
            per_address: few,
            ..HttpLimits::default()
        })
        .await;
        for _ in 0..5 {
            assert_eq!(status_of(addr, "/", None).await.0, 200);
        }
        let (status, retry) = status_of(addr, "/", None).await;
        assert_eq!(status, 429);
        let retry = retry.expect("Retry-After");
        assert!((1..=10).contains(&retry), "{retry}");
        // Webhooks are the platforms' and are not counted.
        assert_eq!(status_of(addr, "/webhooks/x", None).await.0, 404);

        // Per token: one token's flood (guessed or real) does not starve another's.
        let (addr, _stop) = server(HttpLimits {
            per_token: few,
            ..HttpLimits::default()
        })
        .await;
        for _ in 0..5 {
            assert_eq!(status_of(addr, "/", Some("guess-1")).await.0, 200);
        }
        assert_eq!(status_of(addr, "/", Some("guess-1")).await.0, 429);
        assert_eq!(status_of(addr, "/", Some("other-token")).await.0, 200);
        assert_eq!(status_of(addr, "/", None).await.0, 200);
    }

    #[tokio::test]
    async fn half_sent_requests_are_cut_off_at_the_header_timeout() {
        let (addr, _stop) = server(limits(1, 30, 64)).await;
        let mut clients = Vec::new();
        for _ in 0..20 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await
                .unwrap();
            clients.push(s);
        }
        for s in &mut clients {
            let (_, held) = until_closed(s, Duration::from_secs(10)).await;
            assert!(held < Duration::from_secs(4), "held {held:?}");
        }
        // A client that sends its request in time is served.
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (answer, _) = until_closed(&mut s, Duration::from_secs(5)).await;
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello"),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn a_body_at_one_byte_per_five_seconds_is_cut_off_at_the_body_timeout() {
        let (addr, _stop) = server(limits(10, 2, 64)).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
            .await
            .unwrap();
        let start = Instant::now();
        let trickle = async {
            // One byte every 5 s: each read finishes well within any per-read timeout.
            loop {
                if s.write_all(b"a").await.is_err() {
                    break;
                }
                let mut buf = [0u8; 512];
                match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
                    Ok(Ok(0) | Err(_)) => break,
                    Ok(Ok(n)) => return String::from_utf8_lossy(&buf[..n]).into_owned(),
                    Err(_) => {}
                }
            }
            String::new()
        };
        let answer = tokio::time::timeout(Duration::from_secs(20), trickle)
            .await
            .expect("the slow body was never cut off");
        let held = start.elapsed();
        assert!(held < Duration::from_secs(4), "held {held:?}: {answer}");
        assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
        // A body sent in time is echoed.
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello")
            .await
            .unwrap();
        let (answer, _) = until_closed(&mut s, Duration::from_secs(5)).await;
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("hello"),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_wait_until_one_closes() {
        let (addr, _stop) = server(limits(2, 30, 3)).await;
        // Three idle connections take every slot...
        let mut idle = Vec::new();
        for _ in 0..3 {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        // ...so a fourth is not served while they are open...
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        assert!(
            tokio::time::timeout(Duration::from_millis(800), s.read(&mut buf))
                .await
                .is_err(),
            "served beyond the connection limit"
        );
        // ...and is once the header timeout has closed them (2 s).
        let start = Instant::now();
        let (answer, _) = until_closed(&mut s, Duration::from_secs(10)).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn zero_limits_are_refused_and_defaults_apply() {
        assert_eq!(
            HttpFile::default().resolve().unwrap().limits,
            HttpLimits::default()
        );
        let zero = HttpFile {
            body_read_timeout_secs: Some(0),
            ..Default::default()
        };
        assert!(
            zero.resolve()
                .unwrap_err()
                .contains("body_read_timeout_secs")
        );
        let bad = HttpFile {
            metrics_listen: Some("nowhere".into()),
            ..Default::default()
        };
        assert!(bad.resolve().unwrap_err().contains("metrics_listen"));
    }
}
