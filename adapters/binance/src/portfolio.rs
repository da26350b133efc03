//! Balances, prices and their valuation in one quote asset: pure code, no network.

use std::collections::HashMap;

/// One asset held on the spot account.
#[derive(Debug, Clone, PartialEq)]
pub struct Balance {
    /// The asset code (`BTC`).
    pub asset: String,
    /// Available to trade or withdraw.
    pub free: f64,
    /// Held by open orders.
    pub locked: f64,
}

impl Balance {
    /// Everything held: free plus locked.
    pub fn total(&self) -> f64 {
        self.free + self.locked
    }
}

/// The last price of every spot symbol (`BTCUSDT` → 60000.0: one BTC costs that many USDT).
/// Only positive prices are kept (Binance lists halted symbols at 0).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prices(HashMap<String, f64>);

impl Prices {
    /// The price of `symbol`, if listed and positive.
    pub fn get(&self, symbol: &str) -> Option<f64> {
        self.0.get(symbol).copied()
    }

    /// How many symbols have a price.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no symbol has a price.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many `to` one `from` is worth: 1 for the same asset, else the `FROMTO` price, else
    /// the inverse of the `TOFROM` price.
    fn rate(&self, from: &str, to: &str) -> Option<f64> {
        if from == to {
            return Some(1.0);
        }
        self.get(&format!("{from}{to}"))
            .or_else(|| self.get(&format!("{to}{from}")).map(|p| 1.0 / p))
    }
}

impl FromIterator<(String, f64)> for Prices {
    fn from_iter<I: IntoIterator<Item = (String, f64)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .filter(|(_, p)| p.is_finite() && *p > 0.0)
                .collect(),
        )
    }
}

/// The asset through which assets without a pair to the quote are valued.
pub const BRIDGE_ASSET: &str = "BTC";

/// One asset of a [`Portfolio`].
#[derive(Debug, Clone, PartialEq)]
pub struct AssetValue {
    /// The asset code.
    pub asset: String,
    /// Free plus locked.
    pub amount: f64,
    /// Worth in the quote asset; `None` when no price leads there.
    pub value: Option<f64>,
}

/// A spot account valued in one quote asset.
#[derive(Debug, Clone, PartialEq)]
pub struct Portfolio {
    /// The asset values are in (`USDT`).
    pub quote: String,
    /// Sum of the priced assets' values (unpriced assets are not in it).
    pub total: f64,
    /// Every non-zero asset, the most valuable first, unpriced ones last.
    pub assets: Vec<AssetValue>,
    /// Assets with no price route to the quote, by name: held, but not counted in `total`.
    pub unpriced: Vec<String>,
    /// When it was valued, in Binance's time (Unix milliseconds).
    pub at_ms: i64,
}

impl Portfolio {
    /// Values each non-zero balance in `quote`: the quote itself at 1; else by the
    /// `ASSETQUOTE` price; else by the inverse of `QUOTEASSET`; else through [`BRIDGE_ASSET`]
    /// (asset to BTC, then BTC to the quote, each leg direct or inverted). Assets with no
    /// route are listed in `unpriced`, never valued at 0.
    pub fn value(quote: &str, balances: &[Balance], prices: &Prices, at_ms: i64) -> Self {
        let mut assets: Vec<AssetValue> = balances
            .iter()
            .filter(|b| b.total() > 0.0)
            .map(|b| AssetValue {
                asset: b.asset.clone(),
                amount: b.total(),
                value: value_in(&b.asset, quote, prices).map(|rate| rate * b.total()),
            })
            .collect();
        assets.sort_by(|a, b| {
            // Priced before unpriced, larger before smaller, then by name.
            let key = |v: &AssetValue| v.value.unwrap_or(f64::NEG_INFINITY);
            key(b)
                .total_cmp(&key(a))
                .then_with(|| a.asset.cmp(&b.asset))
        });
        let total = assets.iter().filter_map(|a| a.value).sum();
        let unpriced = assets
            .iter()
            .filter(|a| a.value.is_none())
            .map(|a| a.asset.clone())
            .collect();
        Self {
            quote: quote.to_owned(),
            total,
            assets,
            unpriced,
            at_ms,
        }
    }
}

/// How many `quote` one `asset` is worth, if some route of prices leads there.
fn value_in(asset: &str, quote: &str, prices: &Prices) -> Option<f64> {
    prices.rate(asset, quote).or_else(|| {
        if asset == BRIDGE_ASSET || quote == BRIDGE_ASSET {
            return None;
        }
        Some(prices.rate(asset, BRIDGE_ASSET)? * prices.rate(BRIDGE_ASSET, quote)?)
    })
}

/// A non-negative decimal as Binance writes amounts and prices (`"0.00120000"`), without
/// panicking: only digits with at most one `.`; no sign, exponent, `inf` or `NaN`.
pub fn parse_decimal(text: &str) -> Option<f64> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !digits(int) || !digits(frac) {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balance(asset: &str, free: f64, locked: f64) -> Balance {
        Balance {
            asset: asset.into(),
            free,
            locked,
        }
    }

    fn prices(list: &[(&str, f64)]) -> Prices {
        list.iter().map(|(s, p)| ((*s).to_owned(), *p)).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn decimals_parse_strictly() {
        assert_eq!(parse_decimal("0.00120000"), Some(0.0012));
        assert_eq!(parse_decimal("42"), Some(42.0));
        assert_eq!(parse_decimal(".5"), Some(0.5));
        for bad in [
            "", ".", "-1", "+1", "1e5", "inf", "NaN", "1.2.3", " 1", "abc", "１",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
        assert_eq!(parse_decimal(&"9".repeat(400)), None);
    }

    #[test]
    fn values_by_every_route() {
        let p = prices(&[
            ("BTCUSDT", 60_000.0),
            ("ETHUSDT", 3_000.0),
            ("USDTTRY", 32.0),
            ("XYZBTC", 0.0001),
            ("BTCABC", 2_000.0),
            ("DEADUSDT", 0.0),
        ]);
        let balances = [
            balance("USDT", 100.0, 5.0),
            balance("ETH", 1.0, 1.0),
            balance("TRY", 320.0, 0.0),
            balance("XYZ", 1_000.0, 0.0),
            balance("ABC", 4_000.0, 0.0),
            balance("DEAD", 7.0, 0.0),
            balance("NOPE", 1.0, 0.0),
            balance("ZERO", 0.0, 0.0),
        ];
        let v = Portfolio::value("USDT", &balances, &p, 7);
        let of = |a: &str| v.assets.iter().find(|x| x.asset == a).unwrap().value;
        assert!(close(of("USDT").unwrap(), 105.0));
        assert!(close(of("ETH").unwrap(), 6_000.0));
        assert!(close(of("TRY").unwrap(), 10.0));
        assert!(close(of("XYZ").unwrap(), 6_000.0));
        // ABC: BTCABC inverted (1/2000 BTC each), then BTCUSDT.
        assert!(close(of("ABC").unwrap(), 120_000.0));
        assert_eq!(of("DEAD"), None, "a zero price is no price");
        assert_eq!(v.unpriced, ["DEAD", "NOPE"]);
        assert!(!v.assets.iter().any(|a| a.asset == "ZERO"));
        assert!(close(v.total, 105.0 + 6_000.0 + 10.0 + 6_000.0 + 120_000.0));
        assert_eq!(v.assets[0].asset, "ABC");
        assert_eq!(v.at_ms, 7);
    }

    #[test]
    fn bridge_is_not_used_for_btc_itself() {
        let p = prices(&[("BTCEUR", 50_000.0)]);
        let v = Portfolio::value("USDT", &[balance("BTC", 1.0, 0.0)], &p, 0);
        assert_eq!(v.unpriced, ["BTC"]);
        assert_eq!(v.total, 0.0);
        let v = Portfolio::value("BTC", &[balance("EUR", 100_000.0, 0.0)], &p, 0);
        assert!(close(v.total, 2.0));
    }
}
