//! Shopify webhooks: `X-Shopify-Hmac-Sha256` is base64(HMAC-SHA256(secret, raw body)); the
//! raw bytes must be verified before anything re-reads them.

use crate::{ParseError, local_time};
use base64::Engine;
use hmac::{Hmac, Mac};
use krake_core::commerce::{CommerceEvent, Minor, Order};
use krake_core::time::Timestamp;
use serde_json::Value;
use sha2::Sha256;

/// Whether `header` is the base64 HMAC-SHA256 of `body` under any of `secrets` (the current
/// and, during rotation, the previous one). Compared in constant time.
pub fn verify(secrets: &[&[u8]], body: &[u8], header: &str) -> bool {
    let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(header.trim()) else {
        return false;
    };
    let mut ok = false;
    for secret in secrets {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
            continue;
        };
        mac.update(body);
        // `verify_slice` compares in constant time; every secret is tried.
        ok |= mac.verify_slice(&expected).is_ok();
    }
    ok
}

/// The base64 HMAC-SHA256 of `body` under `secret` (for tests, benchmarks and fake senders).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// An id as exact text: JSON integers beyond 2^53 stay exact (serde_json reads them as u64).
fn exact_id(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(|u| u.to_string())
            .or_else(|| n.as_i64().map(|i| i.to_string())),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn order_id(v: &Value) -> Option<String> {
    exact_id(&v["id"]).or_else(|| {
        v["admin_graphql_api_id"]
            .as_str()
            .and_then(|g| g.rsplit('/').next())
            .map(str::to_owned)
    })
}

fn refunded(v: &Value) -> Minor {
    let mut total = 0i64;
    for r in v["refunds"].as_array().into_iter().flatten() {
        for t in r["transactions"].as_array().into_iter().flatten() {
            let is_refund = t["kind"].as_str() == Some("refund")
                && t["status"].as_str().is_none_or(|s| s == "success");
            if is_refund {
                total += t["amount"]
                    .as_str()
                    .and_then(Minor::parse)
                    .map_or(0, |m| m.0);
            }
        }
    }
    Minor(total)
}

fn order(v: &Value) -> Result<Order, ParseError> {
    let id = order_id(v).ok_or(ParseError::Field("id"))?;
    let created = v["created_at"]
        .as_str()
        .ok_or(ParseError::Field("created_at"))?;
    let (created_ms, offset, day) = local_time(created).ok_or(ParseError::Field("created_at"))?;
    let updated_ms = v["updated_at"]
        .as_str()
        .and_then(local_time)
        .map_or(created_ms, |(ms, _, _)| ms);
    let total = v["total_price"]
        .as_str()
        .or_else(|| v["current_total_price"].as_str())
        .and_then(Minor::parse)
        .ok_or(ParseError::Field("total_price"))?;
    Ok(Order {
        name: v["name"]
            .as_str()
            .map_or_else(|| format!("#{id}"), str::to_owned),
        id,
        day,
        utc_offset_minutes: offset,
        created_at: Timestamp::from_millis(created_ms),
        updated_at: Timestamp::from_millis(updated_ms),
        currency: v["currency"]
            .as_str()
            .ok_or(ParseError::Field("currency"))?
            .to_owned(),
        total,
        refunded: refunded(v),
        financial_status: v["financial_status"]
            .as_str()
            .unwrap_or("pending")
            .to_owned(),
        email: v["email"]
            .as_str()
            .or_else(|| v["contact_email"].as_str())
            .filter(|e| !e.is_empty())
            .map(str::to_owned),
        customer_name: v["customer"]["first_name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
    })
}

/// Parses a webhook body of `topic` into an event. Topics Krake does not use become
/// [`CommerceEvent::Other`] (stored and acknowledged).
pub fn parse(topic: &str, body: &[u8]) -> Result<CommerceEvent, ParseError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
    if !v.is_object() {
        return Err(ParseError::Json("expected a JSON object".into()));
    }
    Ok(match topic {
        "orders/create" => CommerceEvent::OrderCreated(order(&v)?),
        "orders/paid" => CommerceEvent::OrderPaid(order(&v)?),
        "products/update" => CommerceEvent::ProductUpdated {
            id: exact_id(&v["id"]).ok_or(ParseError::Field("id"))?,
            title: v["title"].as_str().unwrap_or_default().to_owned(),
        },
        "app/uninstalled" => CommerceEvent::AppUninstalled {
            shop: v["myshopify_domain"]
                .as_str()
                .or_else(|| v["domain"].as_str())
                .unwrap_or_default()
                .to_owned(),
        },
        other => CommerceEvent::Other {
            topic: other.to_owned(),
        },
    })
}
