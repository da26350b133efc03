//! Discord's REST API: serenity's [`Route`]s and request builder (pointed at a configurable
//! base URL through its `proxy` parameter) executed on a reqwest client, so Krake sees every
//! status, header and body. serenity's own `Http::request` turns a 429 into an error without
//! the `retry_after` body field or the `X-RateLimit-*` headers, and its ratelimiter ignores a
//! proxy, so rate limits are Krake's job here: global and per-route buckets are tracked from the
//! headers, a request to an exhausted bucket is not sent, and a 429 reports how long to wait.

use crate::{DEFAULT_API_URL, Secret};
use krake_core::time::{Clock, Timestamp};
use serde_json::Value;
use serenity::http::{LightMethod, Request, Route};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A REST failure, already classified for retrying.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RestError {
    /// 429, or a bucket known to be empty: try again after this long.
    #[error("rate limited for {after:?} (global: {global})")]
    RateLimited {
        /// How long to wait.
        after: Duration,
        /// Whether the whole bot is limited.
        global: bool,
    },
    /// May pass: 5xx, timeouts, connection failures.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// Will not pass: 4xx (not found, missing permissions, bad request).
    #[error("Discord refused the request ({status}, code {code:?}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Discord's JSON error code, if given.
        code: Option<u64>,
        /// Discord's message.
        message: String,
    },
}

#[derive(Debug, Default)]
struct Limits {
    global_until: Option<Timestamp>,
    /// Route key → Discord's bucket id.
    bucket_of: HashMap<String, String>,
    /// (bucket id, major parameter) → (remaining, reset at).
    buckets: HashMap<(String, String), (u64, Timestamp)>,
}

/// The REST client.
pub struct Rest {
    client: reqwest::Client,
    token: Secret,
    proxy: Option<String>,
    clock: Arc<dyn Clock>,
    limits: Mutex<Limits>,
}

impl std::fmt::Debug for Rest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rest")
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

/// Builds a route key: the method and path with every id after the first (the major
/// parameter, which has its own bucket) replaced, e.g. `PATCH /channels/1/messages/{id}`.
fn route_key(method: LightMethod, path: &str) -> (String, String) {
    let path = path.split('?').next().unwrap_or(path);
    let after_api = path.split("/api/v10").nth(1).unwrap_or(path);
    let mut major = String::new();
    let mut parts = Vec::new();
    for seg in after_api.split('/') {
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            if major.is_empty() {
                major = seg.to_owned();
                parts.push(seg.to_owned());
            } else {
                parts.push("{id}".to_owned());
            }
        } else if seg.len() > 40 {
            // Interaction tokens: part of the webhook's major parameter.
            parts.push("{token}".to_owned());
        } else {
            parts.push(seg.to_owned());
        }
    }
    (format!("{method:?} {}", parts.join("/")), major)
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn seconds(s: f64) -> Duration {
    if s.is_finite() && s > 0.0 {
        Duration::from_secs_f64(s.min(86_400.0))
    } else {
        Duration::ZERO
    }
}

fn until(now: Timestamp, then: Timestamp) -> Duration {
    Duration::from_millis(u64::try_from(then.as_millis() - now.as_millis()).unwrap_or(0))
}

impl Rest {
    /// A client for `api_url` (`https://discord.com`, or a proxy or test server standing in),
    /// authenticating with the bot token.
    pub fn new(api_url: &str, token: Secret, clock: Arc<dyn Clock>) -> Result<Self, RestError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| RestError::Transient(format!("cannot build the HTTP client: {e}")))?;
        let base = api_url.trim_end_matches('/');
        let token = if token.expose().starts_with("Bot ") {
            token
        } else {
            Secret::new(format!("Bot {}", token.expose()))
        };
        Ok(Self {
            client,
            token,
            proxy: (base != DEFAULT_API_URL).then(|| base.to_owned()),
            clock,
            limits: Mutex::new(Limits::default()),
        })
    }

    /// Sends one request with a JSON body; returns the JSON answer (`null` for 204).
    #[tracing::instrument(skip_all, fields(route = ?method))]
    pub async fn call(
        &self,
        method: LightMethod,
        route: Route<'_>,
        body: Option<&Value>,
    ) -> Result<Value, RestError> {
        let bytes = match body {
            Some(b) => Some(serde_json::to_vec(b).map_err(|e| RestError::Refused {
                status: 0,
                code: None,
                message: format!("unserialisable body: {e}"),
            })?),
            None => None,
        };
        let request = Request::new(route, method)
            .body(bytes)
            .build(&self.client, self.token.expose(), self.proxy.as_deref())
            .map_err(|e| RestError::Refused {
                status: 0,
                code: None,
                message: format!("cannot build the request: {e}"),
            })?
            .build()
            .map_err(|e| RestError::Refused {
                status: 0,
                code: None,
                message: format!("cannot build the request: {e}"),
            })?;
        let (key, major) = route_key(method, request.url().path());
        self.check_limits(&key, &major)?;
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| RestError::Transient(format!("request failed: {e}")))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response
            .bytes()
            .await
            .map_err(|e| RestError::Transient(format!("reading the answer failed: {e}")))?;
        let json: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&text).unwrap_or(Value::Null)
        };
        self.record_limits(&key, &major, &headers);
        match status {
            200..=299 => Ok(json),
            429 => Err(self.rate_limited(&key, &major, &headers, &json)),
            500..=599 => Err(RestError::Transient(format!("Discord answered {status}"))),
            _ => Err(RestError::Refused {
                status,
                code: json.get("code").and_then(Value::as_u64),
                message: json
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .chars()
                    .take(300)
                    .collect(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Limits> {
        // A poisoned lock only means another send panicked mid-update; the numbers are hints.
        self.limits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn check_limits(&self, key: &str, major: &str) -> Result<(), RestError> {
        let now = self.clock.now();
        let l = self.lock();
        if let Some(until_ts) = l.global_until.filter(|t| *t > now) {
            return Err(RestError::RateLimited {
                after: until(now, until_ts),
                global: true,
            });
        }
        if let Some(bucket) = l.bucket_of.get(key)
            && let Some((remaining, reset)) = l.buckets.get(&(bucket.clone(), major.to_owned()))
            && *remaining == 0
            && *reset > now
        {
            return Err(RestError::RateLimited {
                after: until(now, *reset),
                global: false,
            });
        }
        Ok(())
    }

    fn record_limits(&self, key: &str, major: &str, h: &reqwest::header::HeaderMap) {
        let Some(bucket) = header(h, "x-ratelimit-bucket") else {
            return;
        };
        let remaining = header(h, "x-ratelimit-remaining").and_then(|v| v.parse::<u64>().ok());
        let reset_after = header(h, "x-ratelimit-reset-after").and_then(|v| v.parse::<f64>().ok());
        let now = self.clock.now();
        let mut l = self.lock();
        l.bucket_of.insert(key.to_owned(), bucket.to_owned());
        if let (Some(remaining), Some(after)) = (remaining, reset_after) {
            l.buckets.insert(
                (bucket.to_owned(), major.to_owned()),
                (remaining, now.plus(seconds(after))),
            );
        }
    }

    fn rate_limited(
        &self,
        key: &str,
        major: &str,
        h: &reqwest::header::HeaderMap,
        body: &Value,
    ) -> RestError {
        let after = body
            .get("retry_after")
            .and_then(Value::as_f64)
            .or_else(|| header(h, "retry-after").and_then(|v| v.parse::<f64>().ok()))
            .map(seconds)
            .unwrap_or(Duration::from_secs(1));
        let global = body.get("global").and_then(Value::as_bool) == Some(true)
            || header(h, "x-ratelimit-global") == Some("true");
        let now = self.clock.now();
        let mut l = self.lock();
        if global {
            l.global_until = Some(now.plus(after));
        } else if header(h, "x-ratelimit-scope") != Some("shared") {
            // A per-route limit: hold this route's bucket until retry_after passes. A shared
            // (per-resource) limit does not count against the bot's buckets.
            let bucket = header(h, "x-ratelimit-bucket")
                .map(str::to_owned)
                .or_else(|| l.bucket_of.get(key).cloned())
                .unwrap_or_else(|| key.to_owned());
            l.bucket_of.insert(key.to_owned(), bucket.clone());
            l.buckets
                .insert((bucket, major.to_owned()), (0, now.plus(after)));
        }
        tracing::info!(?after, global, route = key, "Discord rate limit");
        RestError::RateLimited { after, global }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_keys_keep_the_major_parameter() {
        let (k, m) = route_key(LightMethod::Patch, "/api/v10/channels/123/messages/456");
        assert_eq!(k, "Patch /channels/123/messages/{id}");
        assert_eq!(m, "123");
        let (k2, _) = route_key(LightMethod::Patch, "/api/v10/channels/123/messages/789");
        assert_eq!(k, k2);
        let (k3, m3) = route_key(
            LightMethod::Patch,
            &format!("/api/v10/webhooks/42/{}/messages/@original", "t".repeat(60)),
        );
        assert_eq!(k3, "Patch /webhooks/42/{token}/messages/@original");
        assert_eq!(m3, "42");
    }

    #[test]
    fn retry_after_seconds_are_floats() {
        assert_eq!(seconds(64.57), Duration::from_millis(64_570));
        assert_eq!(seconds(-1.0), Duration::ZERO);
        assert_eq!(seconds(f64::NAN), Duration::ZERO);
    }
}
