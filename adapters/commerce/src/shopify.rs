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

#[cfg(test)]
fn order_id(v: &Value) -> Option<String> {
    exact_id(&v["id"]).or_else(|| {
        v["admin_graphql_api_id"]
            .as_str()
            .and_then(|g| g.rsplit('/').next())
            .map(str::to_owned)
    })
}

/// The successful refund transactions of an order's `refunds`, added up.
fn refunded(refunds: &Value) -> Minor {
    let mut total = 0i64;
    for r in refunds.as_array().into_iter().flatten() {
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

/// The reference reading of an order from a whole parsed body; [`OrderFields`] must agree
/// with it (tests check both on the fixtures).
#[cfg(test)]
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
        refunded: refunded(&v["refunds"]),
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

/// One JSON value as the order reader needs it, nothing built that is not kept: a string
/// (borrowed from the body unless it has escapes), an integer as exact text (beyond 2^53 too),
/// an object's `first_name` (its last one, as a full parse keeps), or nothing for any other
/// value, which is checked and skipped.
enum Json<'de> {
    Str(Cow<'de, str>),
    Int(String),
    Object { first_name: Option<Cow<'de, str>> },
    Other,
}

impl<'de> Json<'de> {
    /// The string, as `Value::as_str` gives it.
    fn text(self) -> Option<Cow<'de, str>> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// An id, as [`exact_id`] reads it: an integer or a non-empty string.
    fn id(self) -> Option<String> {
        match self {
            Json::Int(i) => Some(i),
            Json::Str(s) if !s.is_empty() => Some(s.into_owned()),
            _ => None,
        }
    }

    /// An object's `first_name` string.
    fn first_name(self) -> Option<Cow<'de, str>> {
        match self {
            Json::Object { first_name } => first_name,
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Int(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Int(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Json<'de>, E> {
        Ok(Json::Other)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Json<'de>, E> {
        Ok(Json::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Json<'de>, E> {
        Ok(Json::Other)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Json::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut first_name = None;
        while let Some(Key(key)) = map.next_key()? {
            if key == "first_name" {
                first_name = map.next_value::<Json<'de>>()?.text();
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Json::Object { first_name })
    }
}

/// The top-level fields of an order that Krake keeps, read straight from the body: strings
/// are borrowed where they have no escapes, everything else is checked and skipped. A repeated
/// key keeps its last value, as a full parse would.
#[derive(Default)]
struct OrderFields<'de> {
    id: Option<String>,
    gid: Option<Cow<'de, str>>,
    name: Option<Cow<'de, str>>,
    created_at: Option<Cow<'de, str>>,
    updated_at: Option<Cow<'de, str>>,
    total_price: Option<Cow<'de, str>>,
    current_total_price: Option<Cow<'de, str>>,
    currency: Option<Cow<'de, str>>,
    financial_status: Option<Cow<'de, str>>,
    email: Option<Cow<'de, str>>,
    contact_email: Option<Cow<'de, str>>,
    first_name: Option<Cow<'de, str>>,
    order_status_url: Option<Cow<'de, str>>,
    refunds: Value,
}

impl<'de> Visitor<'de> for OrderFields<'de> {
    type Value = OrderFields<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self, A::Error> {
        while let Some(Key(key)) = map.next_key()? {
            let text = match key.as_ref() {
                "id" => {
                    self.id = map.next_value::<Json<'de>>()?.id();
                    continue;
                }
                "customer" => {
                    self.first_name = map.next_value::<Json<'de>>()?.first_name();
                    continue;
                }
                "refunds" => {
                    self.refunds = map.next_value()?;
                    continue;
                }
                "admin_graphql_api_id" => &mut self.gid,
                "name" => &mut self.name,
                "created_at" => &mut self.created_at,
                "updated_at" => &mut self.updated_at,
                "total_price" => &mut self.total_price,
                "current_total_price" => &mut self.current_total_price,
                "currency" => &mut self.currency,
                "financial_status" => &mut self.financial_status,
                "email" => &mut self.email,
                "contact_email" => &mut self.contact_email,
                "order_status_url" => &mut self.order_status_url,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *text = map.next_value::<Json<'de>>()?.text();
        }
        Ok(self)
    }
}

impl<'de> OrderFields<'de> {
    /// Reads the body, which must be one JSON object.
    fn read(body: &'de [u8]) -> Result<Self, ParseError> {
        let mut de = serde_json::Deserializer::from_slice(body);
        de.deserialize_map(OrderFields::default())
            .and_then(|f| de.end().map(|()| f))
            .map_err(json_error)
    }

    /// The `*.myshopify.com` shop the order's status page is on, when it is on one.
    fn shop(&self) -> Option<String> {
        self.order_status_url.as_deref().and_then(myshopify_host)
    }

    fn order(self) -> Result<Order, ParseError> {
        let id = self
            .id
            .or_else(|| {
                self.gid
                    .as_deref()
                    .and_then(|g| g.rsplit('/').next())
                    .map(str::to_owned)
            })
            .ok_or(ParseError::Field("id"))?;
        let created = self.created_at.ok_or(ParseError::Field("created_at"))?;
        let (created_ms, offset, day) =
            local_time(&created).ok_or(ParseError::Field("created_at"))?;
        let updated_ms = self
            .updated_at
            .as_deref()
            .and_then(local_time)
            .map_or(created_ms, |(ms, _, _)| ms);
        let total = self
            .total_price
            .or(self.current_total_price)
            .as_deref()
            .and_then(Minor::parse)
            .ok_or(ParseError::Field("total_price"))?;
        Ok(Order {
            name: self.name.map_or_else(|| format!("#{id}"), Cow::into_owned),
            id,
            day,
            utc_offset_minutes: offset,
            created_at: Timestamp::from_millis(created_ms),
            updated_at: Timestamp::from_millis(updated_ms),
            currency: self
                .currency
                .ok_or(ParseError::Field("currency"))?
                .into_owned(),
            total,
            refunded: refunded(&self.refunds),
            financial_status: self
                .financial_status
                .map_or_else(|| "pending".to_owned(), Cow::into_owned),
            email: self
                .email
                .or(self.contact_email)
                .filter(|e| !e.is_empty())
                .map(Cow::into_owned),
            customer_name: self
                .first_name
                .filter(|n| !n.is_empty())
                .map(Cow::into_owned),
        })
    }
}

fn json_error(e: serde_json::Error) -> ParseError {
    match e.classify() {
        serde_json::error::Category::Data => ParseError::Json("expected a JSON object".into()),
        _ => ParseError::Json(e.to_string()),
    }
}

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
        .map_err(json_error)?;
    Ok(Value::Object(fields))
}

/// The host of `url` when it is a shop's own `*.myshopify.com` domain, lowercased
/// (`https://Lunavo.myshopify.com/1/orders/x` → `lunavo.myshopify.com`); `None` for a custom
/// domain or anything that is not such a URL.
fn myshopify_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.split(':').next()?.to_ascii_lowercase();
    let shop = host.strip_suffix(".myshopify.com")?;
    let valid = !shop.is_empty() && shop.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    valid.then_some(host)
}

/// A parsed webhook body: the event, and the shop the body itself names, if it names one
/// (an order's status page on `<shop>.myshopify.com`, the uninstalled shop's
/// `myshopify_domain`). The endpoint refuses a body whose shop is not the one in the
/// `X-Shopify-Shop-Domain` header, so a body signed for one shop cannot be replayed into
/// another shop's workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// What happened.
    pub event: CommerceEvent,
    /// The `*.myshopify.com` domain the body names, lowercased.
    pub shop: Option<String>,
}

/// Parses a webhook body of `topic` into an event. Topics Krake does not use become
/// [`CommerceEvent::Other`] (stored and acknowledged). Only the fields the event keeps are
/// built; the rest of the body is checked to be JSON and skipped.
pub fn parse(topic: &str, body: &[u8]) -> Result<CommerceEvent, ParseError> {
    parse_delivery(topic, body).map(|p| p.event)
}

/// [`parse`], also reading the shop the body names (see [`Parsed`]).
pub fn parse_delivery(topic: &str, body: &[u8]) -> Result<Parsed, ParseError> {
    match topic {
        "orders/create" | "orders/paid" => {
            let fields = OrderFields::read(body)?;
            let shop = fields.shop();
            let order = fields.order()?;
            let event = if topic == "orders/create" {
                CommerceEvent::OrderCreated(order)
            } else {
                CommerceEvent::OrderPaid(order)
            };
            return Ok(Parsed { event, shop });
        }
        _ => {}
    }
    let wanted: &[&str] = match topic {
        "products/update" => &["id", "title"],
        "app/uninstalled" => &["myshopify_domain", "domain"],
        _ => &[],
    };
    let v = top_level(body, wanted)?;
    let shop = v["myshopify_domain"]
        .as_str()
        .map(str::trim)
        .and_then(|d| myshopify_host(&format!("https://{d}")));
    let event = match topic {
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
    };
    Ok(Parsed { event, shop })
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
    fn fields_of_unexpected_types_read_as_a_full_parse_reads_them() {
        let base =
            r#""created_at": "2026-11-24T12:33:21Z", "currency": "EUR", "total_price": "1.00""#;
        for extra in [
            r#""id": 7"#,
            r#""id": -7"#,
            r#""id": 7.5, "admin_graphql_api_id": "gid://shopify/Order/99""#,
            r#""id": "", "admin_graphql_api_id": "gid://shopify/Order/99""#,
            r#""id": null"#,
            r#""id": [1], "admin_graphql_api_id": 5"#,
            r#""id": {"a": 1}"#,
            r#""id": "abc", "name": 12, "email": null, "contact_email": "c@x.io""#,
            r#""id": 1, "email": "", "contact_email": "c@x.io""#,
            r#""id": 1, "customer": "Ana""#,
            r#""id": 1, "customer": {"first_name": 3}"#,
            r#""id": 1, "customer": {"first_name": "Ana", "first_name": "Bo"}"#,
            r#""id": 1, "customer": {"first_name": "Ana"}, "customer": null"#,
            r#""id": 1, "customer": [{"first_name": "Ana"}]"#,
            r#""id": 1, "financial_status": false, "updated_at": "not a time""#,
            r#""id": 1, "total_price": 10, "current_total_price": "2.50""#,
            r#""id": 1, "total_price": "x""#,
            r#""id": 1, "currency": ["EUR"]"#,
            r#""id": 1, "created_at": 5"#,
            r##""id": 1, "name": "caf\u00e9 \"#1\"""##,
            r#""id": 1, "refunds": {"transactions": []}"#,
        ] {
            let body = format!("{{{base}, {extra}}}");
            let whole: Value = serde_json::from_slice(body.as_bytes()).unwrap();
            let lean = match parse("orders/paid", body.as_bytes()) {
                Ok(CommerceEvent::OrderPaid(o)) => Ok(o),
                Ok(other) => panic!("{other:?}"),
                Err(e) => Err(e),
            };
            assert_eq!(lean, order(&whole), "{body}");
        }
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
