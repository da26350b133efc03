//! Shopify webhooks: `X-Shopify-Hmac-Sha256` is base64(HMAC-SHA256(secret, raw body)); the
//! raw bytes must be verified before anything re-reads them.

use crate::{ParseError, local_time};
use base64::Engine;
use hmac::{Hmac, Mac};
use krake_core::commerce::{CommerceEvent, Minor, Order};
use krake_core::time::Timestamp;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};
use sha2::Sha256;
use std::borrow::Cow;
use std::fmt;

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

/// The top-level fields of an order that [`order`] reads.
const ORDER_FIELDS: &[&str] = &[
    "id",
    "admin_graphql_api_id",
    "name",
    "created_at",
    "updated_at",
    "total_price",
    "current_total_price",
    "currency",
    "financial_status",
    "email",
    "contact_email",
    "customer",
    "refunds",
];

/// An object key, borrowed from the body unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Reads a JSON object keeping only the top-level fields named; the others are checked to be
/// valid JSON and skipped without being built (line items, addresses, … are not needed).
struct Fields<'w>(&'w [&'w str]);

impl<'de> DeserializeSeed<'de> for Fields<'_> {
    type Value = Map<String, Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Fields<'_> {
    type Value = Map<String, Value>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        while let Some(Key(key)) = map.next_key()? {
            if self.0.contains(&key.as_ref()) {
                // A repeated key keeps its last value, as a full parse would.
                out.insert(key.into_owned(), map.next_value()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(out)
    }
}

/// The body as a JSON object holding only the `wanted` top-level fields.
fn top_level(body: &[u8], wanted: &[&str]) -> Result<Value, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let fields = Fields(wanted)
        .deserialize(&mut de)
        .and_then(|m| de.end().map(|()| m))
        .map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ParseError::Json("expected a JSON object".into()),
            _ => ParseError::Json(e.to_string()),
        })?;
    Ok(Value::Object(fields))
}

/// Parses a webhook body of `topic` into an event. Topics Krake does not use become
/// [`CommerceEvent::Other`] (stored and acknowledged). Only the fields the event keeps are
/// built; the rest of the body is checked to be JSON and skipped.
pub fn parse(topic: &str, body: &[u8]) -> Result<CommerceEvent, ParseError> {
    let wanted: &[&str] = match topic {
        "orders/create" | "orders/paid" => ORDER_FIELDS,
        "products/update" => &["id", "title"],
        "app/uninstalled" => &["myshopify_domain", "domain"],
        _ => &[],
    };
    let v = top_level(body, wanted)?;
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// The event a full parse of the whole body gives (what `parse` did before it skipped
    /// the fields it does not need).
    fn full(topic: &str, body: &[u8]) -> CommerceEvent {
        let v: Value = serde_json::from_slice(body).unwrap();
        match topic {
            "orders/create" => CommerceEvent::OrderCreated(order(&v).unwrap()),
            "orders/paid" => CommerceEvent::OrderPaid(order(&v).unwrap()),
            other => panic!("no full parse for {other}"),
        }
    }

    fn fixture(file: &str) -> Vec<u8> {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/shopify")
            .join(file);
        let meta: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        serde_json::to_vec(&meta["response"]).unwrap()
    }

    #[test]
    fn skipping_unused_fields_gives_the_same_order() {
        for (file, topic) in [
            ("docs_metadata_2026-04_orders_create.json", "orders/create"),
            ("docs_metadata_2026-04_orders_paid.json", "orders/paid"),
        ] {
            let body = fixture(file);
            assert_eq!(parse(topic, &body).unwrap(), full(topic, &body), "{file}");
        }
        // Refunds and the customer are nested values that are kept whole.
        let body = br#"{"id": 18446744073709551615, "line_items": [{"id": 1, "x": {"y": [1, 2.5, null, "\u00e9"]}}],
            "created_at": "2026-11-24T12:33:21+01:00", "currency": "EUR", "total_price": "10.00",
            "customer": {"first_name": "Ana"},
            "refunds": [{"transactions": [{"kind": "refund", "status": "success", "amount": "2.50"}]}]}"#;
        let lean = parse("orders/paid", body).unwrap();
        assert_eq!(lean, full("orders/paid", body));
        let CommerceEvent::OrderPaid(o) = lean else {
            panic!("{lean:?}")
        };
        assert_eq!(o.id, "18446744073709551615", "large ids stay exact");
        assert_eq!(o.refunded, Minor(250));
        assert_eq!(o.customer_name.as_deref(), Some("Ana"));
    }

    #[test]
    fn escaped_and_repeated_keys_read_as_a_full_parse_reads_them() {
        let body = br##"{"\u0069d": 7, "created_at": "2026-11-24T12:33:21Z", "currency": "EUR",
            "total_price": "1.00", "name": "#1", "name": "#2"}"##;
        let lean = parse("orders/create", body).unwrap();
        assert_eq!(lean, full("orders/create", body));
        let CommerceEvent::OrderCreated(o) = lean else {
            panic!("{lean:?}")
        };
        assert_eq!((o.id.as_str(), o.name.as_str()), ("7", "#2"));
    }

    #[test]
    fn bodies_that_are_not_one_json_object_are_refused() {
        for (body, want) in [
            (&b"[1, 2]"[..], "expected a JSON object"),
            (b"\"text\"", "expected a JSON object"),
            (b"{\"id\": 1", "EOF"),
            (b"{\"id\": 1} trailing", "trailing"),
            (b"{\"line_items\": [1 2]}", "expected"),
            (b"", "EOF"),
        ] {
            for topic in ["orders/create", "customers/create"] {
                match parse(topic, body) {
                    Err(ParseError::Json(m)) => assert!(m.contains(want), "{topic} {m}"),
                    other => panic!("{topic} {:?}: {other:?}", String::from_utf8_lossy(body)),
                }
            }
        }
        assert_eq!(
            parse("orders/create", b"{\"id\": 1}"),
            Err(ParseError::Field("created_at"))
        );
        assert_eq!(
            parse("customers/create", b"{\"id\": 5}"),
            Ok(CommerceEvent::Other {
                topic: "customers/create".into()
            })
        );
    }
}
