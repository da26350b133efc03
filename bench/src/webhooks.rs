//! `webhooks`: verified, deduplicated, durably stored Shopify webhooks per second, beside a
//! bare axum handler answering 200, both loaded with `wrk` on 127.0.0.1.

use crate::common::{scratch_sqlite, serve_on, wrk};
use krake_core::time::SystemClock;
use krake_core::workspace::WorkspaceSlug;
use std::sync::Arc;

const BENCH_SECRET: &str = "bench-secret";

/// A realistic orders/create body (about 1.5 KB).
fn bench_order() -> String {
    let items: Vec<String> = (0..4)
        .map(|i| format!(r#"{{"id":{},"title":"Night hoodie {i}","quantity":1,"price":"49.00","sku":"LNV-HD-{i}","vendor":"Lunavo"}}"#, 866_550_311_766_439_000u64 + i))
        .collect();
    format!(
        r##"{{"id":820982911946154508,"admin_graphql_api_id":"gid://shopify/Order/820982911946154508","name":"#9999","email":"jon@example.com","created_at":"2026-11-24T12:33:21+01:00","updated_at":"2026-11-24T12:33:22+01:00","currency":"EUR","total_price":"196.00","subtotal_price":"196.00","total_tax":"0.00","financial_status":"paid","fulfillment_status":null,"customer":{{"id":115310627314723954,"first_name":"Jon","last_name":"Doe","email":"jon@example.com"}},"line_items":[{}],"refunds":[]}}"##,
        items.join(",")
    )
}

/// Runs the benchmark.
pub async fn run(seconds: u32, connections: u32) -> anyhow::Result<()> {
    use axum::routing::post;
    let dir = tempfile::tempdir()?;
    let body = bench_order();
    let hmac = krake_commerce::shopify::sign(BENCH_SECRET.as_bytes(), body.as_bytes());
    let script = dir.path().join("shopify.lua");
    let lua_body = body.replace('\\', "\\\\").replace('"', "\\\"");
    std::fs::write(
        &script,
        format!(
            r#"local counter = 0
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
wrk.method = "POST"
wrk.body = "{lua_body}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Shopify-Hmac-Sha256"] = "{hmac}"
wrk.headers["X-Shopify-Topic"] = "orders/create"
wrk.headers["X-Shopify-Shop-Domain"] = "lunavo.myshopify.com"
request = function()
  counter = counter + 1
  wrk.headers["X-Shopify-Webhook-Id"] = "bench-" .. tostring(tid) .. "-" .. counter
  return wrk.format()
end
"#
        ),
    )?;

    // Baseline: a bare axum handler that reads the body and answers 200.
    let bare = axum::Router::new().route(
        "/webhooks/shopify",
        post(|_body: bytes::Bytes| async { axum::http::StatusCode::OK }),
    );
    let (addr, stop) = serve_on(bare).await?;
    let (bare_rps, bare_bad, bare_lat) = wrk(
        &format!("http://{addr}/webhooks/shopify"),
        &script,
        seconds,
        connections,
    )
    .await?;
    let _ = stop.send(());

    // Krake: verify the HMAC, parse, deduplicate, group-commit to SQLite, then answer 200.
    let store = scratch_sqlite(&dir).await?;
    let config = krake_commerce::WebhookConfig {
        shopify_secret: Some(krake_commerce::Secret::new(BENCH_SECRET)),
        shops: [(
            "lunavo.myshopify.com".to_owned(),
            WorkspaceSlug::parse("lunavo")?,
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    let app = krake_commerce::router(
        config,
        krake_core::commerce::CommerceIntake::new(
            Arc::new(krake_store::GroupCommit::start(store.clone(), 256)),
            Arc::new(SystemClock),
        ),
        Arc::new(SystemClock),
    );
    let (addr, stop) = serve_on(app).await?;
    let (rps, bad, lat) = wrk(
        &format!("http://{addr}/webhooks/shopify"),
        &script,
        seconds,
        connections,
    )
    .await?;
    let _ = stop.send(());
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbound")
        .fetch_one(store.pool())
        .await?;
    println!(
        "webhooks: wrk -t2 -c{connections} -d{seconds}s, {} byte orders/create body, 127.0.0.1 (target: Krake ≥ 0.5 × bare):",
        body.len()
    );
    println!(
        "  bare axum 200 handler      {bare_rps:>9.0} req/s  (non-2xx {bare_bad})  latency {bare_lat}"
    );
    println!("  POST /webhooks/shopify     {rps:>9.0} req/s  (non-2xx {bad})  latency {lat}");
    println!(
        "  ratio Krake / bare: {:.2}; events durably stored: {stored} (SQLite WAL, synchronous=NORMAL, group commit ≤ 256)",
        rps / bare_rps
    );
    Ok(())
}
