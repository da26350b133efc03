//! Gelato webhooks: documented examples carry an event `id`, an `event` name and the order.

use crate::ParseError;
use krake_core::commerce::{CommerceEvent, Fulfilment};
use serde_json::Value;

/// A parsed Gelato delivery: its dedup key part and the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GelatoEvent {
    /// `<event>:<id>`: Gelato's event id, qualified by the event name (the documented
    /// examples reuse ids across event kinds).
    pub key: String,
    /// The event.
    pub event: CommerceEvent,
}

fn text(v: &Value, field: &str) -> Option<String> {
    v[field]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Parses a Gelato webhook body.
pub fn parse(body: &[u8]) -> Result<GelatoEvent, ParseError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| ParseError::Json(e.to_string()))?;
    if !v.is_object() {
        return Err(ParseError::Json("expected a JSON object".into()));
    }
    let id = text(&v, "id").ok_or(ParseError::Field("id"))?;
    // Older payloads name the event in `object` instead of `event`.
    let name = text(&v, "event")
        .or_else(|| text(&v, "object"))
        .ok_or(ParseError::Field("event"))?;
    let order = |v: &Value| -> Result<Fulfilment, ParseError> {
        Ok(Fulfilment {
            order_id: text(v, "orderId").ok_or(ParseError::Field("orderId"))?,
            reference: text(v, "orderReferenceId"),
            status: None,
            max_delivery_day: None,
            tracking_url: None,
        })
    };
    let event = match name.as_str() {
        "order_status_updated" | "orderStatus" => {
            let mut f = order(&v)?;
            f.status =
                Some(text(&v, "fulfillmentStatus").ok_or(ParseError::Field("fulfillmentStatus"))?);
            CommerceEvent::Fulfilment {
                event: "order_status_updated".into(),
                update: f,
            }
        }
        // An item's status is not the order's: recorded, no status change.
        "order_item_status_updated" => CommerceEvent::Fulfilment {
            event: name.clone(),
            update: order(&v)?,
        },
        "order_item_tracking_code_updated" => {
            let mut f = order(&v)?;
            f.tracking_url = text(&v, "trackingUrl");
            CommerceEvent::Fulfilment {
                event: name.clone(),
                update: f,
            }
        }
        "order_delivery_estimate_updated" => {
            let mut f = order(&v)?;
            f.max_delivery_day = text(&v, "maxDeliveryDate");
            CommerceEvent::Fulfilment {
                event: name.clone(),
                update: f,
            }
        }
        "store_product_deleted" => CommerceEvent::StoreProductDeleted {
            id: text(&v, "storeProductId").ok_or(ParseError::Field("storeProductId"))?,
        },
        other => CommerceEvent::Other {
            topic: other.to_owned(),
        },
    };
    Ok(GelatoEvent {
        key: format!("{name}:{id}"),
        event,
    })
}
