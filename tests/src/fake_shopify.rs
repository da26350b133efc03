//! A local fake of Shopify's Admin REST API (version 2024-10) on 127.0.0.1 port 0, for the
//! actions Krake carries out: `GET /admin/api/2024-10/shop.json`,
//! `POST …/orders/{id}/refunds/calculate.json`, `POST …/orders/{id}/refunds.json` and
//! `PUT …/variants/{id}.json`.
//!
//! It checks `X-Shopify-Access-Token` (401 `{"errors":"[API] Invalid API key or access token
//! (unrecognized login or wrong password)"}` otherwise, as Shopify answers), records every
//! request (method, path, raw body text, so ids beyond 2^53 can be checked digit for digit),
//! and answers like Shopify: the calculation returns `suggested_refund` transactions with
//! `parent_id`, `gateway`, `amount` and `maximum_refundable`; a refund returns `201` with the
//! refund. A test may make refunds or variant updates answer `422` with Shopify's `errors`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// One request received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET`, `POST`, `PUT`.
    pub method: String,
    /// The path (`/admin/api/2024-10/orders/1/refunds.json`).
    pub path: String,
    /// The body as sent.
    pub body: String,
}

struct Inner {
    token: String,
    currency: String,
    /// (parent transaction id, gateway, maximum refundable) of every order.
    transaction: (u64, String, String),
    fail_writes: Mutex<Option<Value>>,
    requests: Mutex<Vec<Recorded>>,
}

/// The fake Admin API.
pub struct FakeShopify {
    /// `http://127.0.0.1:PORT` (set as `KRAKE_SHOPIFY_ADMIN_URL`).
    pub base_url: String,
    inner: Arc<Inner>,
}

impl FakeShopify {
    /// Starts the fake for a shop selling in `currency` that accepts `token`; every order has
    /// one captured transaction `parent_id` on the `gateway`, with `maximum_refundable` left.
    pub async fn start(
        token: &str,
        currency: &str,
        parent_id: u64,
        gateway: &str,
        maximum_refundable: &str,
    ) -> Self {
        let inner = Arc::new(Inner {
            token: token.to_owned(),
            currency: currency.to_owned(),
            transaction: (parent_id, gateway.to_owned(), maximum_refundable.to_owned()),
            fail_writes: Mutex::new(None),
            requests: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/admin/api/2024-10/shop.json", get(shop))
            .route(
                "/admin/api/2024-10/orders/{id}/refunds/calculate.json",
                post(calculate),
            )
            .route("/admin/api/2024-10/orders/{id}/refunds.json", post(refund))
            .route("/admin/api/2024-10/variants/{file}", put(variant))
            .fallback(not_found)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeShopify {
            base_url: format!("http://{addr}"),
            inner,
        }
    }

    /// Makes refunds and variant updates answer 422 with these `errors`.
    pub fn fail_writes(&self, errors: Value) {
        *self.inner.fail_writes.lock().unwrap() = Some(errors);
    }

    /// The requests received, in order (rejected ones included).
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }
}

fn check(
    inner: &Inner,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    inner.requests.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        body: String::from_utf8_lossy(body).into_owned(),
    });
    let ok = headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t == inner.token);
    if ok {
        return None;
    }
    Some(
        (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})),
        )
            .into_response(),
    )
}

fn unprocessable(inner: &Inner) -> Option<Response> {
    let errors = inner.fail_writes.lock().unwrap().clone()?;
    Some(
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"errors": errors})),
        )
            .into_response(),
    )
}

async fn shop(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = check(&inner, &method, &uri, &headers, b"") {
        return r;
    }
    axum::Json(json!({"shop": {"id": 548380009, "name": "Lunavo", "currency": inner.currency}}))
        .into_response()
}

async fn calculate(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = check(&inner, &method, &uri, &headers, &body) {
        return r;
    }
    let Ok(order) = id.parse::<u64>() else {
        return not_found().await;
    };
    let (parent, gateway, max) = &inner.transaction;
    // Ids written as JSON numbers by hand: serde_json keeps u64 exact, and so does Shopify.
    let text = format!(
        r#"{{"refund":{{"shipping":{{"amount":"0.00","tax":"0.00","maximum_refundable":"0.00"}},"duties":[],"total_duties_set":{{}},"refund_line_items":[],"transactions":[{{"order_id":{order},"kind":"suggested_refund","gateway":"{gateway}","parent_id":{parent},"amount":"0.00","currency":"{cur}","maximum_refundable":"{max}"}}],"currency":"{cur}"}}}}"#,
        cur = inner.currency
    );
    ([("content-type", "application/json")], text).into_response()
}

async fn refund(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = check(&inner, &method, &uri, &headers, &body) {
        return r;
    }
    if let Some(r) = unprocessable(&inner) {
        return r;
    }
    let Ok(sent) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let transactions = sent
        .pointer("/refund/transactions")
        .cloned()
        .unwrap_or(json!([]));
    let text = format!(
        r#"{{"refund":{{"id":929361467,"order_id":{id},"note":{note},"transactions":{transactions}}}}}"#,
        note = sent.pointer("/refund/note").cloned().unwrap_or(Value::Null)
    );
    (
        StatusCode::CREATED,
        [("content-type", "application/json")],
        text,
    )
        .into_response()
}

async fn variant(
    State(inner): State<Arc<Inner>>,
    Path(file): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = check(&inner, &method, &uri, &headers, &body) {
        return r;
    }
    let Some(id) = file
        .strip_suffix(".json")
        .and_then(|i| i.parse::<u64>().ok())
    else {
        return not_found().await;
    };
    if let Some(r) = unprocessable(&inner) {
        return r;
    }
    let Ok(sent) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let price = sent
        .pointer("/variant/price")
        .and_then(Value::as_str)
        .unwrap_or("0.00")
        .to_owned();
    let text = format!(r#"{{"variant":{{"id":{id},"price":"{price}","title":"Default Title"}}}}"#);
    ([("content-type", "application/json")], text).into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"errors": "Not Found"})),
    )
        .into_response()
}
