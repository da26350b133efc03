//! The client against the local fake Binance (krake-tests' `fake_binance`), which checks keys,
//! signatures and timestamps as Binance does and records every path asked for.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_binance::{BinanceClient, BinanceConfig, BinanceError, Secret};
use krake_tests::fake_binance::{
    FakeBinance, FakeBinanceState, balance, price, read_only_restrictions,
};
use std::time::Duration;

fn holdings() -> FakeBinanceState {
    FakeBinanceState {
        balances: vec![
            balance("USDT", "100.50000000", "0.00000000"),
            balance("BTC", "0.40000000", "0.10000000"),
            balance("TRY", "320.00000000", "0.00000000"),
            balance("XYZ", "1000.00000000", "0.00000000"),
            balance("NOPE", "3.00000000", "0.00000000"),
            balance("EMPTY", "0.00000000", "0.00000000"),
        ],
        prices: vec![
            price("BTCUSDT", "60000.00000000"),
            price("ETHBTC", "0.05000000"),
            price("USDTTRY", "32.00000000"),
            price("XYZBTC", "0.00010000"),
        ],
        ..FakeBinanceState::default()
    }
}

fn client_with_secret(fake: &FakeBinance, secret: &str) -> BinanceClient {
    BinanceClient::new(BinanceConfig {
        base_url: fake.base_url.clone(),
        ..BinanceConfig::new(
            Secret::new(FakeBinanceState::default().api_key),
            Secret::new(secret),
        )
    })
    .unwrap()
}

fn client(fake: &FakeBinance) -> BinanceClient {
    client_with_secret(fake, &FakeBinanceState::default().api_secret)
}

/// The one property the whole crate exists to keep.
fn assert_no_order_path(fake: &FakeBinance) {
    let paths = fake.paths();
    assert!(
        !paths
            .iter()
            .any(|p| p.to_ascii_lowercase().contains("order")),
        "{paths:?}"
    );
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6 * b.abs().max(1.0)
}

#[tokio::test]
async fn portfolio_values_direct_inverted_and_via_btc_and_lists_unpriced() {
    let fake = FakeBinance::start(holdings()).await;
    let client = client(&fake);
    let p = client.portfolio().await.unwrap();
    assert_eq!(p.quote, "USDT");
    let value = |a: &str| p.assets.iter().find(|x| x.asset == a).unwrap().value;
    assert!(close(value("USDT").unwrap(), 100.5));
    assert!(close(value("BTC").unwrap(), 30_000.0), "direct BTCUSDT");
    assert!(close(value("TRY").unwrap(), 10.0), "inverted USDTTRY");
    assert!(close(value("XYZ").unwrap(), 6_000.0), "XYZBTC x BTCUSDT");
    assert_eq!(value("NOPE"), None);
    assert_eq!(p.unpriced, ["NOPE"]);
    assert!(!p.assets.iter().any(|a| a.asset == "EMPTY"));
    assert!(close(p.total, 100.5 + 30_000.0 + 10.0 + 6_000.0));
    assert_eq!(p.assets[0].asset, "BTC");
    assert!(p.at_ms > 1_600_000_000_000);
    assert_eq!(
        fake.paths(),
        ["/api/v3/time", "/api/v3/account", "/api/v3/ticker/price"]
    );
    // time 1 + account 20 + every price 4.
    assert_eq!(client.used_weight(), Some(25));
    assert_eq!(fake.used_weight(), 25);
    assert_no_order_path(&fake);
}

#[tokio::test]
async fn account_reads_balances_and_refuses_non_numeric_amounts() {
    let fake = FakeBinance::start(holdings()).await;
    let client = client(&fake);
    let balances = client.account().await.unwrap();
    let btc = balances.iter().find(|b| b.asset == "BTC").unwrap();
    assert!(close(btc.free, 0.4) && close(btc.locked, 0.1));
    assert!(
        !balances.iter().any(|b| b.asset == "EMPTY"),
        "omitZeroBalances"
    );

    fake.set_balances(vec![balance("BTC", "lots", "0")]);
    let err = client.account().await.unwrap_err();
    assert!(matches!(err, BinanceError::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("BTC free"), "{err}");

    fake.set_prices(vec![price("BTCUSDT", "NaN")]);
    assert!(matches!(
        client.prices().await,
        Err(BinanceError::Decode { .. })
    ));
    assert_no_order_path(&fake);
}

#[tokio::test]
async fn read_only_key_is_accepted() {
    let fake = FakeBinance::start(FakeBinanceState::default()).await;
    let k = client(&fake).check_key_is_read_only().await.unwrap();
    assert!(!k.ip_restricted);
    assert_eq!(
        fake.paths(),
        ["/api/v3/time", "/sapi/v1/account/apiRestrictions"]
    );
}

#[tokio::test]
async fn trading_or_withdrawing_key_is_refused() {
    let fake = FakeBinance::start(FakeBinanceState::default()).await;
    let client = client(&fake);

    let mut trading = read_only_restrictions();
    trading["enableSpotAndMarginTrading"] = true.into();
    fake.set_restrictions(trading);
    match client.check_key_is_read_only().await {
        Err(BinanceError::KeyCanTrade(on)) => assert_eq!(on, ["enableSpotAndMarginTrading"]),
        other => panic!("{other:?}"),
    }

    let mut withdrawing = read_only_restrictions();
    withdrawing["enableWithdrawals"] = true.into();
    withdrawing["permitsUniversalTransfer"] = true.into();
    fake.set_restrictions(withdrawing);
    let err = client.check_key_is_read_only().await.unwrap_err();
    assert!(
        matches!(&err, BinanceError::KeyCanTrade(on) if on == &["enableWithdrawals", "permitsUniversalTransfer"]),
        "{err:?}"
    );
    assert!(err.to_string().contains("enableWithdrawals"), "{err}");

    let mut blind = read_only_restrictions();
    blind["enableReading"] = false.into();
    fake.set_restrictions(blind);
    assert!(matches!(
        client.check_key_is_read_only().await,
        Err(BinanceError::KeyCannotRead)
    ));
    assert_no_order_path(&fake);
}

#[tokio::test]
async fn rate_limit_429_is_honoured_without_sending() {
    let fake = FakeBinance::start(holdings()).await;
    let client = client(&fake);
    fake.rate_limit_next(1, 7);
    match client.prices().await {
        Err(BinanceError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Duration::from_secs(7))
        }
        other => panic!("{other:?}"),
    }
    let sent = fake.request_count();
    for _ in 0..3 {
        match client.portfolio().await {
            Err(BinanceError::RateLimited { retry_after }) => {
                assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(7))
            }
            other => panic!("{other:?}"),
        }
        assert!(client.prices().await.is_err());
        assert!(client.check_key_is_read_only().await.is_err());
    }
    assert_eq!(
        fake.request_count(),
        sent,
        "nothing is sent while backing off"
    );

    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(8)).await;
    tokio::time::resume();
    assert!(client.portfolio().await.is_ok());
    assert!(fake.request_count() > sent);
    assert_no_order_path(&fake);
}

#[tokio::test]
async fn near_the_weight_limit_nothing_more_is_sent_this_minute() {
    let fake = FakeBinance::start(holdings()).await;
    let client = client(&fake);
    // Another program on this address has used most of the minute's 6,000.
    fake.set_used_weight(krake_binance::client::WEIGHT_BUDGET_1M as u64 - 2);
    assert!(client.prices().await.is_ok(), "this answer still fits");
    assert!(client.used_weight().unwrap() >= krake_binance::client::WEIGHT_BUDGET_1M);
    let sent = fake.request_count();
    match client.portfolio().await {
        Err(BinanceError::RateLimited { retry_after }) => {
            assert!(retry_after <= Duration::from_secs(61), "{retry_after:?}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        fake.request_count(),
        sent,
        "nothing is sent past the budget"
    );
    assert_no_order_path(&fake);
}

#[tokio::test]
async fn ban_418_is_honoured_without_sending() {
    let fake = FakeBinance::start(holdings()).await;
    let client = client(&fake);
    client.sync_time().await.unwrap();
    fake.ban_next(1, 120);
    match client.account().await {
        Err(BinanceError::Banned { retry_after }) => {
            assert_eq!(retry_after, Duration::from_secs(120))
        }
        other => panic!("{other:?}"),
    }
    let sent = fake.request_count();
    match client.sync_time().await {
        Err(BinanceError::Banned { retry_after }) => {
            assert!(retry_after > Duration::from_secs(100))
        }
        other => panic!("{other:?}"),
    }
    assert!(client.portfolio().await.is_err());
    assert_eq!(fake.request_count(), sent);

    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(60)).await;
    tokio::time::resume();
    assert!(matches!(
        client.prices().await,
        Err(BinanceError::Banned { .. })
    ));
    assert_eq!(fake.request_count(), sent, "still banned after 60 of 120 s");

    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(61)).await;
    tokio::time::resume();
    assert!(client.account().await.is_ok());
    assert_eq!(fake.request_count(), sent + 1);
}

#[tokio::test]
async fn clock_skew_is_absorbed_by_the_offset() {
    // Binance's clock an hour ahead of ours: the first signed request syncs first.
    let fake = FakeBinance::start(FakeBinanceState {
        time_offset_ms: 3_600_000,
        ..holdings()
    })
    .await;
    let client = client(&fake);
    client.account().await.unwrap();
    let offset = client.time_offset_ms().unwrap();
    assert!((offset - 3_600_000).abs() < 1_000, "{offset}");

    // Binance's clock jumps 30 s back: -1021, one resync, one retry, success.
    fake.set_time_offset(-30_000);
    client.account().await.unwrap();
    assert!((client.time_offset_ms().unwrap() + 30_000).abs() < 1_000);
    assert_eq!(
        fake.paths(),
        [
            "/api/v3/time",
            "/api/v3/account",
            "/api/v3/account",
            "/api/v3/time",
            "/api/v3/account"
        ]
    );
    assert_no_order_path(&fake);
}

#[tokio::test]
async fn wrong_secret_is_a_clear_signature_error() {
    let fake = FakeBinance::start(holdings()).await;
    let secret = "this-is-not-the-secret";
    let client = client_with_secret(&fake, secret);
    let err = client.account().await.unwrap_err();
    match &err {
        BinanceError::Api {
            status, code, msg, ..
        } => {
            assert_eq!((*status, *code), (400, -1022));
            assert_eq!(msg, "Signature for this request is not valid.");
        }
        other => panic!("{other:?}"),
    }
    for shown in [err.to_string(), format!("{err:?}"), format!("{client:?}")] {
        assert!(!shown.contains(secret), "{shown}");
        assert!(!shown.contains("signature="), "{shown}");
        assert!(
            !shown.contains(&FakeBinanceState::default().api_key),
            "{shown}"
        );
    }
    assert_eq!(
        fake.paths(),
        ["/api/v3/time", "/api/v3/account"],
        "no retry"
    );
}

#[tokio::test]
async fn unknown_key_is_refused_by_binance() {
    let fake = FakeBinance::start(holdings()).await;
    let client = BinanceClient::new(BinanceConfig {
        base_url: fake.base_url.clone(),
        ..BinanceConfig::new(Secret::new("someone-else"), Secret::new("x"))
    })
    .unwrap();
    assert!(matches!(
        client.check_key_is_read_only().await,
        Err(BinanceError::Api {
            code: -2015,
            status: 401,
            ..
        })
    ));
}

#[tokio::test]
async fn oversized_answer_is_refused() {
    let fake = FakeBinance::start(FakeBinanceState::default()).await;
    fake.set_prices(
        (0..120_000)
            .map(|i| price(&format!("SYMBOL{i:08}USDT"), "1.00000000"))
            .collect(),
    );
    assert!(matches!(
        client(&fake).prices().await,
        Err(BinanceError::TooLarge { .. })
    ));
}

#[tokio::test]
async fn unreachable_server_is_an_http_error_without_the_query() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = BinanceClient::new(BinanceConfig {
        base_url: format!("http://127.0.0.1:{port}"),
        ..BinanceConfig::new(Secret::new("k"), Secret::new("s"))
    })
    .unwrap();
    let err = client.account().await.unwrap_err();
    assert!(
        matches!(
            err,
            BinanceError::Http {
                endpoint: "/api/v3/time",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!format!("{err:?}").contains("timestamp="), "{err:?}");
}

#[tokio::test]
async fn no_order_path_is_ever_requested() {
    let fake = FakeBinance::start(holdings()).await;
    let client = client(&fake);
    client.sync_time().await.unwrap();
    client.check_key_is_read_only().await.unwrap();
    client.account().await.unwrap();
    client.prices().await.unwrap();
    client.portfolio().await.unwrap();
    assert!(fake.request_count() >= 6);
    assert_no_order_path(&fake);
}
