//! A local fake of Binance's spot REST API on 127.0.0.1 port 0, for the read-only endpoints
//! `krake-binance` calls: `GET /api/v3/time`, `GET /api/v3/ticker/price`, and the signed
//! `GET /api/v3/account` and `GET /sapi/v1/account/apiRestrictions`.
//!
//! It checks what Binance checks, in Binance's words: signed requests need the known key in
//! `X-MBX-APIKEY` (401, -2015), a `timestamp` (400, -1102), `signature` last in the query
//! with the HMAC-SHA256 of everything before it (400, -1022), and a timestamp inside
//! `recvWindow` (default 5000, at most 60000) of the fake's own clock, which runs
//! `time_offset_ms` ahead of ours (400, -1021). Every answer carries `X-MBX-USED-WEIGHT-1M`,
//! the weight used since start (time 1, apiRestrictions 1, ticker/price 4 for every symbol or
//! 2 for one, account 20). A test can make the next requests answer 429 or 418 with
//! `Retry-After`, change the clock, balances, prices or key permissions, and read every path
//! asked for (whatever the method, unknown paths included).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// The API key of Binance's documented signing example.
pub const DOC_API_KEY: &str = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A";
/// The secret of Binance's documented signing example.
pub const DOC_API_SECRET: &str = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";

/// What the fake account holds and answers.
#[derive(Debug, Clone)]
pub struct FakeBinanceState {
    /// The only API key accepted.
    pub api_key: String,
    /// The secret signatures are checked with.
    pub api_secret: String,
    /// (asset, free, locked) as Binance writes them (decimal text, sent as given).
    pub balances: Vec<(String, String, String)>,
    /// (symbol, price) as Binance writes them.
    pub prices: Vec<(String, String)>,
    /// The body of `/sapi/v1/account/apiRestrictions`.
    pub restrictions: Value,
    /// The fake's clock minus ours, in milliseconds.
    pub time_offset_ms: i64,
}

impl Default for FakeBinanceState {
    /// The documented example key and secret, a read-only key, nothing held, no prices.
    fn default() -> Self {
        Self {
            api_key: DOC_API_KEY.into(),
            api_secret: DOC_API_SECRET.into(),
            balances: Vec::new(),
            prices: Vec::new(),
            restrictions: read_only_restrictions(),
            time_offset_ms: 0,
        }
    }
}

/// The documented `apiRestrictions` answer of a key that can only read.
pub fn read_only_restrictions() -> Value {
    json!({
        "ipRestrict": false,
        "createTime": 1698645219000_i64,
        "enableReading": true,
        "enableWithdrawals": false,
        "enableInternalTransfer": false,
        "enableMargin": false,
        "enableFutures": false,
        "permitsUniversalTransfer": false,
        "enableVanillaOptions": false,
        "enableFixApiTrade": false,
        "enableFixReadOnly": true,
        "enableSpotAndMarginTrading": false,
        "enablePortfolioMarginTrading": false
    })
}

/// (asset, free, locked) for [`FakeBinanceState::balances`].
pub fn balance(asset: &str, free: &str, locked: &str) -> (String, String, String) {
    (asset.into(), free.into(), locked.into())
}

/// (symbol, price) for [`FakeBinanceState::prices`].
pub fn price(symbol: &str, price: &str) -> (String, String) {
    (symbol.into(), price.into())
}

struct Inner {
    state: Mutex<FakeBinanceState>,
    paths: Mutex<Vec<String>>,
    used_weight: Mutex<u64>,
    /// (status 429 or 418, Retry-After seconds, how many more requests get it).
    refuse: Mutex<Option<(u16, u64, usize)>>,
}

/// The fake Binance.
#[derive(Clone)]
pub struct FakeBinance {
    /// `http://127.0.0.1:PORT`, the base URL to configure.
    pub base_url: String,
    inner: Arc<Inner>,
}

impl FakeBinance {
    /// Starts the fake holding `state`.
    pub async fn start(state: FakeBinanceState) -> Self {
        let inner = Arc::new(Inner {
            state: Mutex::new(state),
            paths: Mutex::new(Vec::new()),
            used_weight: Mutex::new(0),
            refuse: Mutex::new(None),
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeBinance {
            base_url: format!("http://{addr}"),
            inner,
        }
    }

    /// Every path asked for, in order (without the query, so no signature).
    pub fn paths(&self) -> Vec<String> {
        self.inner.paths.lock().unwrap().clone()
    }

    /// How many requests arrived.
    pub fn request_count(&self) -> usize {
        self.inner.paths.lock().unwrap().len()
    }

    /// The weight used since start, as the last `X-MBX-USED-WEIGHT-1M` said.
    pub fn used_weight(&self) -> u64 {
        *self.inner.used_weight.lock().unwrap()
    }

    /// Sets the weight used this minute (as another program on the same address would).
    pub fn set_used_weight(&self, weight: u64) {
        *self.inner.used_weight.lock().unwrap() = weight;
    }

    /// Answers the next `n` requests with 429 and `Retry-After: retry_after_s`.
    pub fn rate_limit_next(&self, n: usize, retry_after_s: u64) {
        *self.inner.refuse.lock().unwrap() = Some((429, retry_after_s, n));
    }

    /// Answers the next `n` requests with 418 (IP banned) and `Retry-After: retry_after_s`.
    pub fn ban_next(&self, n: usize, retry_after_s: u64) {
        *self.inner.refuse.lock().unwrap() = Some((418, retry_after_s, n));
    }

    /// Sets the fake's clock to run `ms` ahead of ours (negative: behind).
    pub fn set_time_offset(&self, ms: i64) {
        self.inner.state.lock().unwrap().time_offset_ms = ms;
    }

    /// Replaces the `apiRestrictions` answer.
    pub fn set_restrictions(&self, restrictions: Value) {
        self.inner.state.lock().unwrap().restrictions = restrictions;
    }

    /// Replaces the balances.
    pub fn set_balances(&self, balances: Vec<(String, String, String)>) {
        self.inner.state.lock().unwrap().balances = balances;
    }

    /// Replaces the prices.
    pub fn set_prices(&self, prices: Vec<(String, String)>) {
        self.inner.state.lock().unwrap().prices = prices;
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn param<'a>(params: &[(&'a str, &'a str)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

fn error(status: StatusCode, code: i64, msg: &str) -> (StatusCode, Value) {
    (status, json!({ "code": code, "msg": msg }))
}

fn mandatory(name: &str) -> (StatusCode, Value) {
    error(
        StatusCode::BAD_REQUEST,
        -1102,
        &format!("Mandatory parameter '{name}' was not sent, was empty/null, or malformed."),
    )
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().to_owned();
    inner.paths.lock().unwrap().push(path.clone());
    let query = uri.query().unwrap_or("");
    let params: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    let param = |name: &str| param(&params, name);
    let known = method == Method::GET
        && matches!(
            path.as_str(),
            "/api/v3/time"
                | "/api/v3/ticker/price"
                | "/api/v3/account"
                | "/sapi/v1/account/apiRestrictions"
        );
    let weight = match path.as_str() {
        _ if !known => 0,
        "/api/v3/account" => 20,
        "/api/v3/ticker/price" if param("symbol").is_some() => 2,
        "/api/v3/ticker/price" => 4,
        _ => 1,
    };
    let used = {
        let mut w = inner.used_weight.lock().unwrap();
        *w += weight;
        *w
    };
    let refusal = {
        let mut refuse = inner.refuse.lock().unwrap();
        match *refuse {
            Some((status, after, n)) if n > 0 => {
                *refuse = (n > 1).then_some((status, after, n - 1));
                Some((status, after))
            }
            _ => None,
        }
    };
    let weight_header = [("x-mbx-used-weight-1m", used.to_string())];
    if let Some((status, after)) = refusal {
        let (status, body) = if status == 418 {
            error(
                StatusCode::IM_A_TEAPOT,
                -1003,
                &format!(
                    "Way too much request weight used; IP banned until {}. Please use WebSocket Streams for live updates to avoid bans.",
                    now_ms() + after as i64 * 1000
                ),
            )
        } else {
            error(
                StatusCode::TOO_MANY_REQUESTS,
                -1003,
                "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
            )
        };
        return (
            status,
            weight_header,
            [("retry-after", after.to_string())],
            axum::Json(body),
        )
            .into_response();
    }
    if !known {
        return (StatusCode::NOT_FOUND, weight_header, "").into_response();
    }
    let state = inner.state.lock().unwrap().clone();
    let server_now = now_ms() + state.time_offset_ms;
    let signed = matches!(
        path.as_str(),
        "/api/v3/account" | "/sapi/v1/account/apiRestrictions"
    );
    let answer = if signed {
        check_signed(&state, &headers, query, &params, server_now)
    } else {
        Ok(())
    };
    let (status, body) = match answer {
        Err(e) => e,
        Ok(()) => match path.as_str() {
            "/api/v3/time" => (StatusCode::OK, json!({ "serverTime": server_now })),
            "/api/v3/ticker/price" => ticker(&state, param("symbol")),
            "/api/v3/account" => (
                StatusCode::OK,
                account(
                    &state,
                    param("omitZeroBalances") == Some("true"),
                    server_now,
                ),
            ),
            _ => (StatusCode::OK, state.restrictions.clone()),
        },
    };
    (status, weight_header, axum::Json(body)).into_response()
}

/// Binance's checks of a SIGNED request, in its order: key, parameters, signature, time.
fn check_signed(
    state: &FakeBinanceState,
    headers: &HeaderMap,
    query: &str,
    params: &[(&str, &str)],
    server_now: i64,
) -> Result<(), (StatusCode, Value)> {
    let param = |name: &str| param(params, name);
    let key = headers.get("x-mbx-apikey").and_then(|v| v.to_str().ok());
    match key {
        None => return Err(mandatory("apiKey")),
        Some(k) if k != state.api_key => {
            return Err(error(
                StatusCode::UNAUTHORIZED,
                -2015,
                "Invalid API-key, IP, or permissions for action.",
            ));
        }
        Some(_) => {}
    }
    let Some(timestamp) = param("timestamp").and_then(|t| t.parse::<i64>().ok()) else {
        return Err(mandatory("timestamp"));
    };
    let recv_window = match param("recvWindow") {
        None => 5000,
        Some(w) => match w.parse::<i64>() {
            Ok(w) if w > 60_000 => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    -1131,
                    "recvWindow must be less than 60000",
                ));
            }
            Ok(w) => w,
            Err(_) => return Err(mandatory("recvWindow")),
        },
    };
    // Binance wants the signature as the last parameter and signs everything before it.
    let Some((signed, signature)) = query.rsplit_once("&signature=") else {
        return Err(mandatory("signature"));
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(state.api_secret.as_bytes()).unwrap();
    mac.update(signed.as_bytes());
    let expected = hex::encode(mac.finalize().into_bytes());
    if !signature.eq_ignore_ascii_case(&expected) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            -1022,
            "Signature for this request is not valid.",
        ));
    }
    if timestamp >= server_now + 1000 {
        return Err(error(
            StatusCode::BAD_REQUEST,
            -1021,
            "Timestamp for this request was 1000ms ahead of the server's time.",
        ));
    }
    if server_now - timestamp > recv_window {
        return Err(error(
            StatusCode::BAD_REQUEST,
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
        ));
    }
    Ok(())
}

fn ticker(state: &FakeBinanceState, symbol: Option<&str>) -> (StatusCode, Value) {
    let entry = |(s, p): &(String, String)| json!({ "symbol": s, "price": p });
    match symbol {
        None => (
            StatusCode::OK,
            Value::Array(state.prices.iter().map(entry).collect()),
        ),
        Some(symbol) => match state.prices.iter().find(|(s, _)| s == symbol) {
            Some(p) => (StatusCode::OK, entry(p)),
            None => error(StatusCode::BAD_REQUEST, -1121, "Invalid symbol."),
        },
    }
}

fn account(state: &FakeBinanceState, omit_zero: bool, server_now: i64) -> Value {
    let zero = |s: &str| s.parse::<f64>().is_ok_and(|v| v == 0.0);
    let balances: Vec<Value> = state
        .balances
        .iter()
        .filter(|(_, free, locked)| !(omit_zero && zero(free) && zero(locked)))
        .map(|(asset, free, locked)| json!({ "asset": asset, "free": free, "locked": locked }))
        .collect();
    json!({
        "makerCommission": 15,
        "takerCommission": 15,
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": { "maker": "0.00150000", "taker": "0.00150000", "buyer": "0.00000000", "seller": "0.00000000" },
        "canTrade": true,
        "canWithdraw": true,
        "canDeposit": true,
        "brokered": false,
        "requireSelfTradePrevention": false,
        "preventSor": false,
        "updateTime": server_now,
        "accountType": "SPOT",
        "balances": balances,
        "permissions": ["SPOT"],
        "uid": 354937868
    })
}
