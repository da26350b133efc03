//! Gelato's Order API, asked before Krake acts on a fulfilment status: `GET {base}/v4/orders/{id}`
//! with the account's `X-API-KEY`, answering the order with its `fulfillmentStatus`.

use crate::Secret;
use async_trait::async_trait;
use krake_core::commerce::{FulfilmentSource, LookupError};
use krake_core::workspace::WorkspaceSlug;
use std::time::Duration;

/// Gelato's public Order API.
pub const DEFAULT_BASE_URL: &str = "https://order.gelatoapis.com";

/// A client of Gelato's Order API.
pub struct GelatoOrders {
    http: reqwest::Client,
    base: reqwest::Url,
    key: Secret,
}

impl GelatoOrders {
    /// A client for `base` (e.g. [`DEFAULT_BASE_URL`]) with the account's API key.
    pub fn new(base: &str, key: Secret) -> Result<Self, LookupError> {
        let base = reqwest::Url::parse(base)
            .map_err(|e| LookupError(format!("the Gelato API URL `{base}` is not a URL: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| LookupError(e.to_string()))?;
        Ok(Self { http, base, key })
    }

    fn order_url(&self, order_id: &str) -> Result<reqwest::Url, LookupError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| LookupError("the Gelato API URL cannot take a path".to_owned()))?
            .pop_if_empty()
            .extend(["v4", "orders", order_id]);
        Ok(url)
    }
}

#[async_trait]
impl FulfilmentSource for GelatoOrders {
    async fn fulfilment_status(
        &self,
        _workspace: &WorkspaceSlug,
        order_id: &str,
    ) -> Result<Option<String>, LookupError> {
        if order_id.is_empty() || order_id.len() > 100 {
            return Ok(None);
        }
        let res = self
            .http
            .get(self.order_url(order_id)?)
            .header("X-API-KEY", self.key.expose())
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| LookupError(format!("GET order: {}", e.without_url())))?;
        let status = res.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(LookupError(format!("Gelato answered {status}")));
        }
        let body: serde_json::Value = res
            .json()
            .await
            .map_err(|e| LookupError(format!("Gelato's answer is not JSON: {e}")))?;
        match body.get("fulfillmentStatus").and_then(|s| s.as_str()) {
            Some(s) if !s.is_empty() => Ok(Some(s.to_owned())),
            _ => Err(LookupError(
                "Gelato's order has no fulfillmentStatus".to_owned(),
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn order_urls_are_built_and_escaped() {
        let g = GelatoOrders::new("http://127.0.0.1:9/", Secret::new("k")).unwrap();
        assert_eq!(
            g.order_url("37365096-6628").unwrap().as_str(),
            "http://127.0.0.1:9/v4/orders/37365096-6628"
        );
        assert_eq!(
            g.order_url("a/b?c").unwrap().as_str(),
            "http://127.0.0.1:9/v4/orders/a%2Fb%3Fc"
        );
        assert!(GelatoOrders::new("not a url", Secret::new("k")).is_err());
    }
}
