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
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
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
        })
    }
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
    let app = app.layer(axum::middleware::from_fn_with_state(
        limits.body_read_timeout,
        body_deadline,
    ));
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
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it ends: wait until all are back (bounded by DRAIN
    // in each connection's task).
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN + Duration::from_secs(1), slots.acquire_many(all)).await;
    Ok(())
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
        }
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
