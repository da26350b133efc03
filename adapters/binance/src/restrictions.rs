//! Whether an API key is read-only, from `GET /sapi/v1/account/apiRestrictions`.

use crate::error::BinanceError;
use serde_json::{Map, Value};

/// Permissions that let a key do more than read: trade, withdraw, transfer, borrow.
pub const WRITE_PERMISSIONS: [&str; 9] = [
    "enableSpotAndMarginTrading",
    "enableWithdrawals",
    "enableInternalTransfer",
    "permitsUniversalTransfer",
    "enableMargin",
    "enableFutures",
    "enableVanillaOptions",
    "enablePortfolioMarginTrading",
    "enableFixApiTrade",
];

/// `enable…` fields that grant reading only.
const READ_PERMISSIONS: [&str; 2] = ["enableReading", "enableFixReadOnly"];

/// What Binance says about a key that passed [`check`]: it can read and do nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRestrictions {
    /// Whether the key only works from listed IP addresses (`ipRestrict`).
    pub ip_restricted: bool,
    /// When the key was made (`createTime`, Unix milliseconds), if Binance says.
    pub created_at_ms: Option<i64>,
}

/// Accepts a key only if `enableReading` is true and no other permission is on: the known
/// [`WRITE_PERMISSIONS`], and any `enable…`/`permits…` field Binance may add later that is
/// not a read permission. A known permission that is missing counts as off; one that is not
/// a boolean is an error.
pub(crate) fn check(
    endpoint: &'static str,
    body: &Map<String, Value>,
) -> Result<KeyRestrictions, BinanceError> {
    let flag = |name: &str| -> Result<Option<bool>, BinanceError> {
        match body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(BinanceError::Decode {
                endpoint,
                reason: format!("{name} is {other}, not true or false"),
            }),
        }
    };
    let mut granted: Vec<String> = Vec::new();
    for name in WRITE_PERMISSIONS {
        if flag(name)? == Some(true) {
            granted.push(name.to_owned());
        }
    }
    for (name, value) in body {
        let permission = name.starts_with("enable") || name.starts_with("permits");
        if permission
            && !READ_PERMISSIONS.contains(&name.as_str())
            && !WRITE_PERMISSIONS.contains(&name.as_str())
            && value != &Value::Bool(false)
            && value != &Value::Null
        {
            granted.push(name.clone());
        }
    }
    if !granted.is_empty() {
        return Err(BinanceError::KeyCanTrade(granted));
    }
    match flag("enableReading")? {
        Some(true) => {}
        Some(false) => return Err(BinanceError::KeyCannotRead),
        None => {
            return Err(BinanceError::Decode {
                endpoint,
                reason: "enableReading is missing".into(),
            });
        }
    }
    Ok(KeyRestrictions {
        ip_restricted: flag("ipRestrict")?.unwrap_or(false),
        created_at_ms: body.get("createTime").and_then(Value::as_i64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The response documented for `GET /sapi/v1/account/apiRestrictions`, made read-only.
    fn read_only() -> Value {
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

    fn verdict(v: &Value) -> Result<KeyRestrictions, BinanceError> {
        check("/sapi/v1/account/apiRestrictions", v.as_object().unwrap())
    }

    #[test]
    fn read_only_key_passes() {
        let k = verdict(&read_only()).unwrap();
        assert!(!k.ip_restricted);
        assert_eq!(k.created_at_ms, Some(1698645219000));
    }

    #[test]
    fn every_write_permission_is_refused_by_name() {
        for name in WRITE_PERMISSIONS {
            let mut v = read_only();
            v[name] = json!(true);
            match verdict(&v) {
                Err(BinanceError::KeyCanTrade(names)) => assert_eq!(names, [name]),
                other => panic!("{name}: {other:?}"),
            }
        }
        let mut v = read_only();
        v["enableWithdrawals"] = json!(true);
        v["enableSpotAndMarginTrading"] = json!(true);
        let err = verdict(&v).unwrap_err();
        assert!(
            err.to_string()
                .contains("enableSpotAndMarginTrading, enableWithdrawals")
        );
    }

    #[test]
    fn unknown_future_permission_is_refused() {
        let mut v = read_only();
        v["enableCopyTrading"] = json!(true);
        assert!(
            matches!(verdict(&v), Err(BinanceError::KeyCanTrade(n)) if n == ["enableCopyTrading"])
        );
    }

    #[test]
    fn reading_off_or_missing_is_refused() {
        let mut v = read_only();
        v["enableReading"] = json!(false);
        assert!(matches!(verdict(&v), Err(BinanceError::KeyCannotRead)));
        v.as_object_mut().unwrap().remove("enableReading");
        assert!(matches!(verdict(&v), Err(BinanceError::Decode { .. })));
    }

    #[test]
    fn non_boolean_permission_is_an_error() {
        let mut v = read_only();
        v["enableWithdrawals"] = json!("false");
        assert!(matches!(verdict(&v), Err(BinanceError::Decode { .. })));
    }
}
