//! The webhook endpoints with the real fixtures, on a real SQLite store, through the router
//! (no socket), and the processor that turns stored events into KPIs and threads.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use krake_commerce::{Secret, WebhookConfig, router, shopify};
use krake_core::commerce::{CommerceProcessor, CommerceRepo, default_rules};
use krake_core::delivery::Routes;
use krake_core::inbox::{ThreadFilter, ThreadKind};
use krake_core::ports::InboxRepo;
use krake_core::time::{ManualClock, Timestamp};
use krake_core::workspace::WorkspaceSlug;
use krake_store::{GroupCommit, Store};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

fn fixture(path: &str) -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures")
        .join(path);
    std::fs::read(&root).unwrap_or_else(|e| panic!("fixture {} missing: {e}", root.display()))
}

const GELATO_TOKEN: &str = "gelato-token-0123456789abcdef";
/// The shop the byte-exact test notification belongs to (its `order_status_url`).
const RAW_SHOP: &str = "devkanvas.myshopify.com";
/// The shop of Shopify's documented example payloads.
const DOCS_SHOP: &str = "jsmith.myshopify.com";
/// When the test clock stands (2024-06-26T16:40:00Z).
const NOW_MS: i64 = 1_719_420_000_000;

struct Env {
    app: Router,
    store: Store,
    processor: CommerceProcessor,
    _dir: tempfile::TempDir,
}

async fn env() -> Env {
    env_with(|_| {}).await
}

/// An environment whose webhook configuration `change` adjusts first.
async fn env_with(change: impl FnOnce(&mut WebhookConfig)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Store::sqlite_url(&dir.path().join("k.db")))
        .await
        .unwrap();
    store.migrate(|_| {}).await.unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(NOW_MS)));
    let lunavo = WorkspaceSlug::parse("lunavo").unwrap();
    let mut config = WebhookConfig {
        shopify_secret: Some(Secret::new("hush")),
        shopify_secret_previous: Some(Secret::new("old-hush")),
        shops: [RAW_SHOP, DOCS_SHOP, "lunavo.myshopify.com"]
            .into_iter()
            .map(|shop| (shop.to_owned(), lunavo.clone()))
            .collect(),
        gelato_tokens: vec![(
            WorkspaceSlug::parse("monarch").unwrap(),
            Secret::new(GELATO_TOKEN),
        )],
        ..WebhookConfig::default()
    };
    change(&mut config);
    let app = router(
        config,
        krake_core::commerce::CommerceIntake::new(
            Arc::new(GroupCommit::start(store.clone(), 64)),
            clock.clone(),
        ),
        clock.clone(),
    );
    let processor = CommerceProcessor::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        clock,
        default_rules(),
        Routes::new(),
        "test",
    );
    Env {
        app,
        store,
        processor,
        _dir: dir,
    }
}

fn shopify_req(
    body: &[u8],
    hmac: &str,
    webhook_id: &str,
    topic: &str,
    shop: &str,
) -> Request<Body> {
    Request::post("/webhooks/shopify")
        .header("X-Shopify-Hmac-Sha256", hmac)
        .header("X-Shopify-Topic", topic)
        .header("X-Shopify-Shop-Domain", shop)
        .header("X-Shopify-Webhook-Id", webhook_id)
        .header("X-Shopify-Event-Id", format!("ev-{webhook_id}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .unwrap()
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, String) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 2 * 1024 * 1024)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn inbound_count(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM inbound")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[test]
fn every_published_hmac_vector_gives_the_published_answer() {
    let v: Value = serde_json::from_slice(&fixture("shopify/hmac_vectors.json")).unwrap();
    let published = v["published_vectors"].as_array().unwrap();
    let mut checked = 0;
    for vec in published {
        let body = vec["body"].as_str().unwrap().as_bytes();
        let secret = vec["secret"].as_str().unwrap().as_bytes();
        if let Some(h) = vec["expected_header"].as_str() {
            assert_eq!(shopify::sign(secret, body), h, "{}", vec["source"]);
            if vec
                .get("expected_valid_with_current_secret_secret_and_old_secret_old_secret")
                .is_some()
            {
                // Rotation: the header made with the old secret verifies when both are configured.
                assert!(shopify::verify(&[b"secret", b"old_secret"], body, h));
                assert!(
                    !shopify::verify(&[b"secret"], body, h),
                    "not with the current secret alone"
                );
            } else {
                assert_eq!(
                    shopify::verify(&[secret], body, h),
                    vec["expected_valid"].as_bool().unwrap()
                );
            }
        } else {
            let h = vec["header"].as_str().unwrap();
            assert_eq!(
                shopify::verify(&[secret], body, h),
                vec["expected_valid"].as_bool().unwrap()
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 4);
    for d in v["derived_vectors_computed_locally"].as_array().unwrap() {
        let secret = d["secret"].as_str().unwrap().as_bytes();
        if let Some(file) = d["body_file"].as_str() {
            let raw = fixture(&format!("shopify/{file}"));
            assert!(shopify::verify(
                &[secret],
                &raw,
                d["expected_header"].as_str().unwrap()
            ));
        } else if let Some(h) = d["expected_header"].as_str() {
            assert_eq!(
                shopify::sign(secret, d["body"].as_str().unwrap().as_bytes()),
                h
            );
        } else {
            // The re-serialised body must not verify against the original's header.
            let raw = fixture("shopify/orders_create_test_notification_raw.json");
            let value: Value = serde_json::from_slice(&raw).unwrap();
            let reserialised = serde_json::to_vec_pretty(&value).unwrap();
            assert_ne!(reserialised, raw);
            assert!(!shopify::verify(
                &[secret],
                &reserialised,
                d["header_of_original"].as_str().unwrap()
            ));
            assert!(shopify::verify(
                &[secret],
                &raw,
                d["header_of_original"].as_str().unwrap()
            ));
        }
    }
}

#[tokio::test]
async fn the_byte_exact_test_notification_is_stored_once_and_applied_once() {
    let e = env().await;
    let raw = fixture("shopify/orders_create_test_notification_raw.json");
    let hmac = "AeHotwA+AV6cdeWQidU6qEensl6ON6I3T3/MMLoSG7A=";
    let (s, body) = send(
        &e.app,
        shopify_req(&raw, hmac, "wh-1", "orders/create", RAW_SHOP),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // Shopify retries with the same webhook id: acknowledged, not stored again.
    let (s, _) = send(
        &e.app,
        shopify_req(&raw, hmac, "wh-1", "orders/create", RAW_SHOP),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(inbound_count(&e.store).await, 1);
    let content: String = sqlx::query_scalar("SELECT content FROM inbound")
        .fetch_one(e.store.pool())
        .await
        .unwrap();
    assert!(
        content.contains("\"820982911946154508\""),
        "the 18-digit id is kept exactly: {content}"
    );

    assert_eq!(e.processor.run_once(10).await.unwrap(), 1);
    assert_eq!(e.processor.run_once(10).await.unwrap(), 0, "applied once");
    let lunavo = WorkspaceSlug::parse("lunavo").unwrap();
    let k = e
        .store
        .kpis(&lunavo, 7, Timestamp::from_millis(1_719_420_000_000))
        .await
        .unwrap();
    assert_eq!(k.days.len(), 1);
    assert_eq!(k.days[0].day, "2024-06-26");
    assert_eq!(k.days[0].orders, 1);
    assert_eq!(k.days[0].currency, "USD");
    let threads = e.store.list(&ThreadFilter::default()).await.unwrap();
    assert_eq!(threads.len(), 1, "the thank-you rule opened one approval");
    assert_eq!(threads[0].kind, ThreadKind::Approval);
    assert_eq!(threads[0].agent.as_deref(), Some("Cassie"));
    assert!(threads[0].body.contains("820982911946154508"));
}

#[tokio::test]
async fn bad_requests_are_refused_and_store_nothing() {
    let e = env().await;
    let raw = fixture("shopify/orders_create_test_notification_raw.json");
    let good = shopify::sign(b"hush", &raw);
    // Bad signature.
    let (s, body) = send(
        &e.app,
        shopify_req(&raw, "AAAA", "wh-2", "orders/create", RAW_SHOP),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(body.contains("\"code\":\"bad_signature\""), "{body}");
    // A re-serialised body with the original signature (same JSON value, other bytes).
    let re = serde_json::to_vec_pretty(&serde_json::from_slice::<Value>(&raw).unwrap()).unwrap();
    assert_ne!(re, raw);
    assert_eq!(
        send(
            &e.app,
            shopify_req(&re, &good, "wh-3", "orders/create", RAW_SHOP)
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    // Unknown shop.
    assert_eq!(
        send(
            &e.app,
            shopify_req(&raw, &good, "wh-4", "orders/create", "other.myshopify.com")
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    // Malformed JSON, correctly signed.
    let junk = b"{\"id\": 1,".to_vec();
    let (s, body) = send(
        &e.app,
        shopify_req(
            &junk,
            &shopify::sign(b"hush", &junk),
            "wh-5",
            "orders/create",
            RAW_SHOP,
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("not valid JSON"), "{body}");
    // Oversized.
    let big = vec![b' '; krake_commerce::MAX_BODY + 1];
    assert_eq!(
        send(
            &e.app,
            shopify_req(
                &big,
                &shopify::sign(b"hush", &big),
                "wh-6",
                "orders/create",
                RAW_SHOP
            )
        )
        .await
        .0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // No webhook id.
    let req = Request::post("/webhooks/shopify")
        .header("X-Shopify-Hmac-Sha256", &good)
        .header("X-Shopify-Shop-Domain", RAW_SHOP)
        .header("X-Shopify-Topic", "orders/create")
        .body(Body::from(raw.clone()))
        .unwrap();
    assert_eq!(send(&e.app, req).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        inbound_count(&e.store).await,
        0,
        "nothing refused was stored"
    );
    // None of it disturbed a good request, with the newer lowercase unprefixed header names
    // and the previous secret (rotation).
    let req = Request::post("/webhooks/shopify")
        .header("shopify-hmac-sha256", shopify::sign(b"old-hush", &raw))
        .header("shopify-topic", "orders/create")
        .header("shopify-shop-domain", RAW_SHOP)
        .header("shopify-webhook-id", "wh-7")
        .body(Body::from(raw.clone()))
        .unwrap();
    assert_eq!(send(&e.app, req).await.0, StatusCode::OK);
    assert_eq!(inbound_count(&e.store).await, 1);
    // Shop domains are matched without regard to case.
    let req = shopify_req(
        &raw,
        &good,
        "wh-8",
        "orders/create",
        "DevKanvas.MyShopify.com",
    );
    assert_eq!(send(&e.app, req).await.0, StatusCode::OK);
    assert_eq!(inbound_count(&e.store).await, 2);
}

#[tokio::test]
async fn documented_topics_parse_and_others_are_stored() {
    let e = env().await;
    for (i, (file, topic)) in [
        ("docs_metadata_2026-04_orders_create.json", "orders/create"),
        ("docs_metadata_2026-04_orders_paid.json", "orders/paid"),
        (
            "docs_metadata_2026-04_products_update.json",
            "products/update",
        ),
        (
            "docs_metadata_2026-04_app_uninstalled.json",
            "app/uninstalled",
        ),
    ]
    .iter()
    .enumerate()
    {
        let meta: Value = serde_json::from_slice(&fixture(&format!("shopify/{file}"))).unwrap();
        let body = serde_json::to_vec(&meta["response"]).unwrap();
        let (s, b) = send(
            &e.app,
            shopify_req(
                &body,
                &shopify::sign(b"hush", &body),
                &format!("doc-{i}"),
                topic,
                DOCS_SHOP,
            ),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{topic}: {b}");
    }
    let other = b"{\"id\": 5}".to_vec();
    let (s, _) = send(
        &e.app,
        shopify_req(
            &other,
            &shopify::sign(b"hush", &other),
            "doc-9",
            "customers/create",
            DOCS_SHOP,
        ),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "unused topics are stored and acknowledged"
    );
    assert_eq!(inbound_count(&e.store).await, 5);
    assert_eq!(e.processor.run_once(50).await.unwrap(), 5);
    let escalations = e
        .store
        .list(&ThreadFilter {
            kind: Some(ThreadKind::Escalation),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(escalations.len(), 1, "app/uninstalled escalates");
    assert!(escalations[0].title.contains("uninstalled"));
}

#[tokio::test]
async fn gelato_events_by_token() {
    let e = env().await;
    let files = [
        "order_status_updated.docs.json",
        "order_item_status_updated.docs.json",
        "order_item_tracking_code_updated.docs.json",
        "order_delivery_estimate_updated.docs.json",
        "store_product_deleted.docs.json",
    ];
    for f in files {
        let req = Request::post(format!("/webhooks/gelato/{GELATO_TOKEN}"))
            .body(Body::from(fixture(&format!("gelato/{f}"))))
            .unwrap();
        let (s, b) = send(&e.app, req).await;
        assert_eq!(s, StatusCode::OK, "{f}: {b}");
    }
    assert_eq!(inbound_count(&e.store).await, 5);
    let req = Request::post("/webhooks/gelato/wrong-token-0123456789")
        .body(Body::from(fixture("gelato/order_status_updated.docs.json")))
        .unwrap();
    assert_eq!(send(&e.app, req).await.0, StatusCode::NOT_FOUND);
    let req = Request::post(format!("/webhooks/gelato/{GELATO_TOKEN}"))
        .body(Body::from("{not json"))
        .unwrap();
    assert_eq!(send(&e.app, req).await.0, StatusCode::BAD_REQUEST);
    let req = Request::post(format!("/webhooks/gelato/{GELATO_TOKEN}"))
        .body(Body::from("{\"event\":\"order_status_updated\"}"))
        .unwrap();
    assert_eq!(
        send(&e.app, req).await.0,
        StatusCode::BAD_REQUEST,
        "no event id"
    );

    // A failed order escalates in the token's workspace.
    let failed = String::from_utf8(fixture("gelato/order_status_updated.docs.json"))
        .unwrap()
        .replace("\"os_5e5680ce494f6\"", "\"os_failed1\"")
        .replace(
            "\"fulfillmentStatus\": \"shipped\",\n    \"items\"",
            "\"fulfillmentStatus\": \"failed\",\n    \"items\"",
        );
    assert!(failed.contains("\"failed\""));
    let req = Request::post(format!("/webhooks/gelato/{GELATO_TOKEN}"))
        .body(Body::from(failed))
        .unwrap();
    assert_eq!(send(&e.app, req).await.0, StatusCode::OK);
    assert_eq!(e.processor.run_once(50).await.unwrap(), 6);
    let monarch = WorkspaceSlug::parse("monarch").unwrap();
    let esc = e
        .store
        .list(&ThreadFilter {
            workspace: Some(monarch.clone()),
            kind: Some(ThreadKind::Escalation),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(esc.len(), 1);
    let k = e
        .store
        .kpis(&monarch, 7, Timestamp::from_millis(1_719_420_000_000))
        .await
        .unwrap();
    assert_eq!(
        k.fulfilment,
        vec![("failed".to_owned(), 1), ("unknown".to_owned(), 1)],
        "the item-only order has no order status"
    );
    assert_eq!(k.late_orders, 0, "a failed order is not late; it escalated");
}

async fn threads_of(store: &Store, kind: ThreadKind) -> Vec<krake_core::inbox::Thread> {
    store
        .list(&ThreadFilter {
            kind: Some(kind),
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_signed_body_replayed_under_new_webhook_ids_opens_one_thread_and_counts_once() {
    let e = env().await;
    let raw = fixture("shopify/orders_create_test_notification_raw.json");
    let hmac = shopify::sign(b"hush", &raw);
    // The same signed body, delivered under three different webhook ids (a replay, or a
    // resend from the shop's admin): three deliveries are stored, as Shopify sends them...
    for id in ["wh-1", "wh-replay-1", "wh-replay-2"] {
        let (s, b) = send(
            &e.app,
            shopify_req(&raw, &hmac, id, "orders/create", RAW_SHOP),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    assert_eq!(inbound_count(&e.store).await, 3);
    assert_eq!(e.processor.run_once(10).await.unwrap(), 3);
    // ...but what the event does happens once: one thank-you approval for the order.
    let approvals = threads_of(&e.store, ThreadKind::Approval).await;
    assert_eq!(
        approvals.len(),
        1,
        "one thread per order and topic: {approvals:?}"
    );
    let lunavo = WorkspaceSlug::parse("lunavo").unwrap();
    let k = e
        .store
        .kpis(&lunavo, 7, Timestamp::from_millis(NOW_MS))
        .await
        .unwrap();
    assert_eq!(k.days[0].orders, 1, "the order is counted once");
    // A later delivery of the same order under another topic is another subject.
    let (s, _) = send(
        &e.app,
        shopify_req(&raw, &hmac, "wh-paid", "orders/paid", RAW_SHOP),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(e.processor.run_once(10).await.unwrap(), 1);
    assert_eq!(threads_of(&e.store, ThreadKind::Approval).await.len(), 1);
}

#[tokio::test]
async fn a_body_signed_for_one_shop_does_not_land_in_another_shops_workspace() {
    let monarch = WorkspaceSlug::parse("monarch").unwrap();
    let m = monarch.clone();
    let e = env_with(move |c| {
        c.shops.insert("monarch.myshopify.com".into(), m.clone());
        c.shops.insert("hardlife.myshopify.com".into(), m);
        c.shop_secrets.insert(
            "hardlife.myshopify.com".into(),
            vec![Secret::new("hardlife-secret"), Secret::new("hardlife-old")],
        );
    })
    .await;
    // The test notification names its shop (devkanvas) in its order_status_url: signed with
    // the shared app secret and sent under Monarch's domain, it is refused.
    let raw = fixture("shopify/orders_create_test_notification_raw.json");
    let hmac = shopify::sign(b"hush", &raw);
    let (s, b) = send(
        &e.app,
        shopify_req(
            &raw,
            &hmac,
            "wh-x1",
            "orders/create",
            "Monarch.myshopify.com",
        ),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert!(b.contains("shop_mismatch"), "{b}");
    // A body that names no shop (products/update) is tied by per-shop secrets: Hard Life
    // Mode's deliveries verify with its own secrets only, never with the shared one...
    let meta: Value = serde_json::from_slice(&fixture(
        "shopify/docs_metadata_2026-04_products_update.json",
    ))
    .unwrap();
    let product = serde_json::to_vec(&meta["response"]).unwrap();
    let shared = shopify::sign(b"hush", &product);
    let (s, _) = send(
        &e.app,
        shopify_req(
            &product,
            &shared,
            "wh-x2",
            "products/update",
            "hardlife.myshopify.com",
        ),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "the shared secret does not sign for it"
    );
    // ...and a body signed with its secret is refused under any other shop's domain.
    let own = shopify::sign(b"hardlife-secret", &product);
    let (s, _) = send(
        &e.app,
        shopify_req(
            &product,
            &own,
            "wh-x3",
            "products/update",
            "lunavo.myshopify.com",
        ),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(
        inbound_count(&e.store).await,
        0,
        "nothing refused was stored"
    );
    // Its own deliveries pass, with its current and its previous secret.
    for (id, secret) in [("wh-x4", "hardlife-secret"), ("wh-x5", "hardlife-old")] {
        let sig = shopify::sign(secret.as_bytes(), &product);
        let (s, b) = send(
            &e.app,
            shopify_req(
                &product,
                &sig,
                id,
                "products/update",
                "hardlife.myshopify.com",
            ),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{secret}: {b}");
    }
    // The body's own shop under its own domain is accepted.
    let (s, _) = send(
        &e.app,
        shopify_req(&raw, &hmac, "wh-x6", "orders/create", RAW_SHOP),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(inbound_count(&e.store).await, 3);
    let stored: Vec<String> = sqlx::query_scalar("SELECT conversation FROM inbound ORDER BY id")
        .fetch_all(e.store.pool())
        .await
        .unwrap();
    assert_eq!(
        stored,
        ["hardlife.myshopify.com", "hardlife.myshopify.com", RAW_SHOP]
    );
}

/// `X-Shopify-Triggered-At` for a moment `ms_before_now` before the test clock: RFC 3339 in
/// UTC with nanoseconds, as Shopify writes it.
fn at(ms_before_now: i64) -> String {
    chrono::DateTime::from_timestamp_millis(NOW_MS - ms_before_now)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[tokio::test]
async fn events_triggered_beyond_the_horizon_are_refused() {
    const HOUR: i64 = 3_600_000;
    assert_eq!(at(0), "2024-06-26T16:40:00.000000000Z");
    let raw = fixture("shopify/orders_create_test_notification_raw.json");
    let hmac = shopify::sign(b"hush", &raw);
    let triggered = |id: &str, when: &str| {
        let mut req = shopify_req(&raw, &hmac, id, "orders/create", RAW_SHOP);
        req.headers_mut()
            .insert("X-Shopify-Triggered-At", when.parse().unwrap());
        req
    };
    let e = env().await;
    // A retry 5 hours after the event (Shopify retries for about 4) is accepted...
    assert_eq!(
        send(&e.app, triggered("wh-t1", &at(5 * HOUR))).await.0,
        StatusCode::OK
    );
    // ...a body captured 25 hours ago is not (the default horizon is 24 h).
    let (s, b) = send(&e.app, triggered("wh-t2", &at(25 * HOUR))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(b.contains("stale_event"), "{b}");
    // The newer unprefixed header name counts too.
    let mut req = shopify_req(&raw, &hmac, "wh-t3", "orders/create", RAW_SHOP);
    req.headers_mut()
        .insert("shopify-triggered-at", at(90 * 24 * HOUR).parse().unwrap());
    assert_eq!(send(&e.app, req).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(inbound_count(&e.store).await, 1);
    // The horizon is configurable.
    let e = env_with(|c| c.max_event_age = std::time::Duration::from_secs(3600)).await;
    assert_eq!(
        send(&e.app, triggered("wh-t4", &at(2 * HOUR))).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(&e.app, triggered("wh-t5", &at(HOUR / 2))).await.0,
        StatusCode::OK
    );
}
