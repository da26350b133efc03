//! Property tests over what a stranger can send the webhook endpoints' parsers: arbitrary
//! bytes, and the real fixtures with bytes flipped, cut or spliced. None may panic. A fixed
//! number of cases, so CI is deterministic in time.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_commerce::{gelato, shopify};
use proptest::prelude::*;
use std::path::PathBuf;

fn fixture(path: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures")
        .join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn bodies() -> Vec<Vec<u8>> {
    let mut out = vec![fixture("shopify/orders_create_test_notification_raw.json")];
    for f in [
        "gelato/order_status_updated.docs.json",
        "gelato/order_item_status_updated.docs.json",
        "gelato/store_product_deleted.docs.json",
    ] {
        out.push(fixture(f));
    }
    out
}

const TOPICS: &[&str] = &[
    "orders/create",
    "orders/paid",
    "products/update",
    "app/uninstalled",
    "customers/create",
    "",
];

/// A fixture mutated: bytes replaced at positions, then cut.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let n = bodies().len();
    (
        0..n,
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(i, flips, cut)| {
            let mut b = bodies().swap_remove(i);
            for (at, byte) in flips {
                let at = at.index(b.len());
                b[at] = byte;
            }
            let cut = cut.index(b.len() + 1);
            b.truncate(cut.max(b.len() / 2));
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn shopify_parsing_never_panics_on_bytes(topic in prop::sample::select(TOPICS), body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = shopify::parse_delivery(topic, &body);
        let _ = shopify::verify(&[b"hush"], &body, "AAAA");
    }

    #[test]
    fn shopify_parsing_never_panics_on_mutated_fixtures(topic in prop::sample::select(TOPICS), body in mutated()) {
        let _ = shopify::parse_delivery(topic, &body);
    }

    #[test]
    fn shopify_parsing_never_panics_on_json_of_odd_shapes(
        id in prop_oneof![Just("1".to_owned()), Just("-1".to_owned()), Just("18446744073709551616".to_owned()), Just("1e400".to_owned()), Just("\"\"".to_owned()), Just("null".to_owned())],
        time in "\\PC{0,30}",
        money in "[-0-9.e]{0,12}",
        url in "\\PC{0,40}",
    ) {
        let body = format!(
            r#"{{"id":{id},"created_at":{t:?},"updated_at":{t:?},"total_price":{m:?},"currency":"EUR","order_status_url":{u:?},"refunds":[{{"transactions":[{{"kind":"refund","amount":{m:?}}}]}}],"myshopify_domain":{u:?}}}"#,
            t = time, m = money, u = url
        );
        for topic in TOPICS {
            let _ = shopify::parse_delivery(topic, body.as_bytes());
        }
    }

    #[test]
    fn gelato_parsing_never_panics(body in mutated()) {
        let _ = gelato::parse(&body);
    }

    #[test]
    fn gelato_parsing_never_panics_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = gelato::parse(&body);
    }
}
