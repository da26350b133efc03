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

struct Env {
    app: Router,
    store: Store,
    processor: CommerceProcessor,
    _dir: tempfile::TempDir,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Store::sqlite_url(&dir.path().join("k.db")))
        .await
        .unwrap();
    store.migrate(|_| {}).await.unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_719_420_000_000)));
    let lunavo = WorkspaceSlug::parse("lunavo").unwrap();
    let config = WebhookConfig {
        shopify_secret: Some(Secret::new("hush")),
        shopify_secret_previous: Some(Secret::new("old-hush")),
        shops: [("lunavo.myshopify.com".to_owned(), lunavo.clone())]
            .into_iter()
            .collect(),
        gelato_tokens: vec![(
            WorkspaceSlug::parse("monarch").unwrap(),
            Secret::new(GELATO_TOKEN),
        )],
    };
    let app = router(
        config,
        Arc::new(GroupCommit::start(store.clone(), 64)),
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
        shopify_req(&raw, hmac, "wh-1", "orders/create", "lunavo.myshopify.com"),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // Shopify retries with the same webhook id: acknowledged, not stored again.
    let (s, _) = send(
        &e.app,
        shopify_req(&raw, hmac, "wh-1", "orders/create", "lunavo.myshopify.com"),
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
        shopify_req(
            &raw,
            "AAAA",
            "wh-2",
            "orders/create",
            "lunavo.myshopify.com",
        ),
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
            shopify_req(&re, &good, "wh-3", "orders/create", "lunavo.myshopify.com")
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
            "lunavo.myshopify.com",
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
                "lunavo.myshopify.com"
            )
        )
        .await
        .0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // No webhook id.
    let req = Request::post("/webhooks/shopify")
        .header("X-Shopify-Hmac-Sha256", &good)
        .header("X-Shopify-Shop-Domain", "lunavo.myshopify.com")
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
        .header("shopify-shop-domain", "lunavo.myshopify.com")
        .header("shopify-webhook-id", "wh-7")
        .body(Body::from(raw.clone()))
        .unwrap();
    assert_eq!(send(&e.app, req).await.0, StatusCode::OK);
    assert_eq!(inbound_count(&e.store).await, 1);
    // Shop domains are matched without regard to case.
    let req = shopify_req(&raw, &good, "wh-8", "orders/create", "Lunavo.MyShopify.com");
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
                "lunavo.myshopify.com",
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
            "lunavo.myshopify.com",
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
