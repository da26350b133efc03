//! Shopify's Admin REST API (version 2024-10), for the actions people approve: a refund
//! (`POST orders/{id}/refunds/calculate.json`, then `orders/{id}/refunds.json` with the
//! calculated transactions) and a price change (`PUT variants/{id}.json`, after checking the
//! shop's currency with `GET shop.json`). Every request carries `X-Shopify-Access-Token`.
//!
//! Ids are kept as text or `u64` (Shopify ids go beyond 2^53, where JSON numbers read as
//! floats lose digits). Nothing is retried here: a write that may have happened is never sent
//! twice.

use crate::Secret;
use krake_core::actions::{PriceSet, Refunded, ShopAdmin, ShopError};
use serde_json::{Value, json};
use std::time::Duration;

/// The Admin API version used.
pub const API_VERSION: &str = "2024-10";

/// Why an Admin API call failed (never contains the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AdminError(pub String);

/// A client of one shop's Admin API.
pub struct ShopifyAdmin {
    http: reqwest::Client,
    base: reqwest::Url,
    token: Secret,
}

/// Digits in the minor unit of `currency` (0 for JPY, KRW, …; 3 for BHD, KWD, …; else 2).
pub fn minor_digits(currency: &str) -> u32 {
    const ZERO: [&str; 16] = [
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
        "VUV", "XAF", "XOF",
    ];
    const THREE: [&str; 7] = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
    let c = currency.to_ascii_uppercase();
    if ZERO.contains(&c.as_str()) {
        0
    } else if THREE.contains(&c.as_str()) {
        3
    } else {
        2
    }
}

/// An amount in minor units as Shopify's decimal text (`1999`, `USD` → `19.99`).
pub fn decimal(minor: i64, currency: &str) -> String {
    let digits = minor_digits(currency);
    let sign = if minor < 0 { "-" } else { "" };
    let a = minor.unsigned_abs();
    if digits == 0 {
        return format!("{sign}{a}");
    }
    let unit = 10u64.pow(digits);
    format!(
        "{sign}{}.{:0width$}",
        a / unit,
        a % unit,
        width = digits as usize
    )
}

/// Shopify's decimal text as minor units (`"19.99"`, `USD` → `1999`); `None` if not a number.
pub fn minor_of(text: &str, currency: &str) -> Option<i64> {
    let digits = minor_digits(currency) as usize;
    let (whole, frac) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > digits {
        return None;
    }
    let mut v: i64 = whole.parse().ok()?;
    for _ in 0..digits {
        v = v.checked_mul(10)?;
    }
    let f: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<digits$}").parse().ok()?
    };
    v.checked_add(f)
}

/// The variant id in a proposed action's `product`: `123`, `variant:123` or
/// `gid://shopify/ProductVariant/123`.
pub fn variant_id(product: &str) -> Option<u64> {
    let p = product.trim();
    let id = p
        .strip_prefix("gid://shopify/ProductVariant/")
        .or_else(|| p.strip_prefix("variant:"))
        .unwrap_or(p);
    id.parse().ok().filter(|v| *v > 0)
}

fn order_id(id: &str) -> Result<u64, AdminError> {
    id.trim()
        .trim_start_matches("gid://shopify/Order/")
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| AdminError(format!("`{id}` is not a Shopify order id (digits)")))
}

impl ShopifyAdmin {
    /// A client for `base` (`https://SHOP.myshopify.com`) with the app's access token.
    pub fn new(base: &str, token: Secret) -> Result<Self, AdminError> {
        let base = reqwest::Url::parse(base)
            .map_err(|e| AdminError(format!("the Shopify URL `{base}` is not a URL: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| AdminError(e.to_string()))?;
        Ok(Self { http, base, token })
    }

    fn url(&self, path: &[&str]) -> Result<reqwest::Url, AdminError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| AdminError("the Shopify URL cannot take a path".to_owned()))?
            .pop_if_empty()
            .extend(["admin", "api", API_VERSION])
            .extend(path);
        Ok(url)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &[&str],
        body: Option<Value>,
    ) -> Result<Value, AdminError> {
        let what = format!("{method} {}", path.join("/"));
        let mut req = self
            .http
            .request(method, self.url(path)?)
            .header("X-Shopify-Access-Token", self.token.expose())
            .header("Accept", "application/json");
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req
            .send()
            .await
            .map_err(|e| AdminError(format!("{what}: {}", e.without_url())))?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        if !status.is_success() {
            let detail: String = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("errors").map(Value::to_string))
                .unwrap_or(text)
                .chars()
                .take(300)
                .collect();
            let hint = match status.as_u16() {
                401 | 403 => " (check the Admin API access token and its scopes)",
                404 => " (no such order or variant in this shop)",
                _ => "",
            };
            return Err(AdminError(format!(
                "{what}: Shopify answered {status}{hint}: {detail}"
            )));
        }
        serde_json::from_str(&text)
            .map_err(|e| AdminError(format!("{what}: Shopify's answer is not JSON: {e}")))
    }

    /// Refunds `amount_minor` of `currency` on order `order`, spread over the transactions
    /// Shopify calculates as refundable. Returns the refund's id.
    pub async fn refund(
        &self,
        order: &str,
        amount_minor: i64,
        currency: &str,
        note: &str,
    ) -> Result<String, AdminError> {
        if amount_minor <= 0 {
            return Err(AdminError("a refund amount must be above 0".to_owned()));
        }
        let id = order_id(order)?.to_string();
        let calc = self
            .call(
                reqwest::Method::POST,
                &["orders", &id, "refunds", "calculate.json"],
                Some(json!({"refund": {"currency": currency, "shipping": {"amount": "0.00"}, "refund_line_items": []}})),
            )
            .await?;
        let refund = calc
            .get("refund")
            .ok_or_else(|| AdminError("the refund calculation has no `refund`".to_owned()))?;
        if let Some(c) = refund.get("currency").and_then(Value::as_str)
            && !c.eq_ignore_ascii_case(currency)
        {
            return Err(AdminError(format!(
                "order {id} is in {c}, the refund was proposed in {currency}: nothing refunded"
            )));
        }
        let calculated = refund
            .get("transactions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut left = amount_minor;
        let mut transactions = Vec::new();
        for t in &calculated {
            if left == 0 {
                break;
            }
            let max = t
                .get("maximum_refundable")
                .and_then(Value::as_str)
                .and_then(|m| minor_of(m, currency))
                .unwrap_or(0);
            let (Some(parent), Some(gateway)) = (t.get("parent_id"), t.get("gateway")) else {
                continue;
            };
            let take = left.min(max);
            if take <= 0 {
                continue;
            }
            left -= take;
            transactions.push(json!({
                "parent_id": parent,
                "amount": decimal(take, currency),
                "kind": "refund",
                "gateway": gateway,
            }));
        }
        if left > 0 {
            return Err(AdminError(format!(
                "order {id} has only {} {currency} refundable, less than {} {currency}: nothing refunded",
                decimal(amount_minor - left, currency),
                decimal(amount_minor, currency)
            )));
        }
        let done = self
            .call(
                reqwest::Method::POST,
                &["orders", &id, "refunds.json"],
                Some(json!({"refund": {
                    "currency": currency,
                    "notify": false,
                    "note": note,
                    "transactions": transactions,
                }})),
            )
            .await?;
        Ok(done
            .pointer("/refund/id")
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_else(|| "?".to_owned()))
    }

    /// Sets variant `variant`'s price to `price_minor` of `currency`, after checking that the
    /// shop sells in `currency`. Returns the price Shopify now shows.
    pub async fn set_price(
        &self,
        variant: u64,
        price_minor: i64,
        currency: &str,
    ) -> Result<String, AdminError> {
        if price_minor < 0 {
            return Err(AdminError("a price cannot be negative".to_owned()));
        }
        let shop = self
            .call(reqwest::Method::GET, &["shop.json"], None)
            .await?;
        match shop.pointer("/shop/currency").and_then(Value::as_str) {
            Some(c) if c.eq_ignore_ascii_case(currency) => {}
            Some(c) => {
                return Err(AdminError(format!(
                    "the shop sells in {c}, the price was proposed in {currency}: nothing changed"
                )));
            }
            None => {
                return Err(AdminError(
                    "Shopify's shop.json has no currency: nothing changed".to_owned(),
                ));
            }
        }
        let price = decimal(price_minor, currency);
        let id = variant.to_string();
        let done = self
            .call(
                reqwest::Method::PUT,
                &["variants", &format!("{id}.json")],
                Some(json!({"variant": {"id": variant, "price": price}})),
            )
            .await?;
        Ok(done
            .pointer("/variant/price")
            .and_then(Value::as_str)
            .unwrap_or(&price)
            .to_owned())
    }
}

/// The Admin API as core's [`ShopAdmin`] port: what an approved refund or price change does
/// in the shop. A proposed product must name a variant (digits, `variant:ID` or
/// `gid://shopify/ProductVariant/ID`); amounts are written as Shopify shows them.
#[async_trait::async_trait]
impl ShopAdmin for ShopifyAdmin {
    fn name(&self) -> &str {
        "Shopify"
    }

    async fn refund(
        &self,
        order_id: &str,
        amount_minor: i64,
        currency: &str,
        note: &str,
    ) -> Result<Refunded, ShopError> {
        let id = ShopifyAdmin::refund(self, order_id, amount_minor, currency, note)
            .await
            .map_err(|e| ShopError(e.to_string()))?;
        Ok(Refunded {
            id,
            amount: decimal(amount_minor, currency),
        })
    }

    async fn set_price(
        &self,
        product: &str,
        price_minor: i64,
        currency: &str,
    ) -> Result<PriceSet, ShopError> {
        let variant = variant_id(product).ok_or_else(|| {
            ShopError(format!(
                "`{product}` is not a Shopify variant id (digits, `variant:ID` or `gid://shopify/ProductVariant/ID`): nothing changed"
            ))
        })?;
        let price = ShopifyAdmin::set_price(self, variant, price_minor, currency)
            .await
            .map_err(|e| ShopError(e.to_string()))?;
        Ok(PriceSet {
            variant: variant.to_string(),
            price,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn amounts_and_ids() {
        assert_eq!(decimal(1999, "USD"), "19.99");
        assert_eq!(decimal(5, "EUR"), "0.05");
        assert_eq!(decimal(1500, "JPY"), "1500");
        assert_eq!(decimal(1234, "KWD"), "1.234");
        assert_eq!(minor_of("19.99", "USD"), Some(1999));
        assert_eq!(minor_of("161.0", "USD"), Some(16100));
        assert_eq!(minor_of("7", "USD"), Some(700));
        assert_eq!(minor_of("1.234", "USD"), None);
        assert_eq!(minor_of("x", "USD"), None);
        assert_eq!(variant_id("9007199254740993"), Some(9_007_199_254_740_993));
        assert_eq!(variant_id("variant:42"), Some(42));
        assert_eq!(variant_id("gid://shopify/ProductVariant/42"), Some(42));
        assert_eq!(variant_id("hoodie-black"), None);
        assert!(order_id("12/../x").is_err());
        assert_eq!(order_id("450789469").unwrap(), 450_789_469);
    }

    #[test]
    fn urls_are_versioned_admin_paths() {
        let s = ShopifyAdmin::new("http://127.0.0.1:9/", Secret::new("t")).unwrap();
        assert_eq!(
            s.url(&["orders", "1", "refunds.json"]).unwrap().as_str(),
            "http://127.0.0.1:9/admin/api/2024-10/orders/1/refunds.json"
        );
    }

    #[tokio::test]
    async fn as_the_shop_port_a_product_that_is_no_variant_changes_nothing() {
        let s = ShopifyAdmin::new("http://127.0.0.1:9/", Secret::new("t")).unwrap();
        let shop: &dyn ShopAdmin = &s;
        assert_eq!(shop.name(), "Shopify");
        let e = shop
            .set_price("hoodie-black", 1999, "USD")
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "`hoodie-black` is not a Shopify variant id (digits, `variant:ID` or `gid://shopify/ProductVariant/ID`): nothing changed"
        );
    }
}
