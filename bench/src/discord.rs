//! `discord`: Discord interactions: signature verification plus dispatch (p50/p99/max, in
//! process) and verified requests/s over loopback, each beside a bare axum handler.

use axum::Router;
use krake_core::Krake;
use krake_core::time::SystemClock;
use krake_discord::DiscordConfig;
use krake_discord::front::DiscordFront;
use krake_discord::verify::SignatureVerifier;
use krake_store::Store;
use std::sync::Arc;

/// Runs the benchmark: signature verification plus dispatch, in process (p50/p99/max) and
/// over loopback HTTP (requests/s), each beside a bare axum handler answering 200.
pub async fn run(requests: u32, concurrency: u32) -> anyhow::Result<()> {
    use axum::body::Body;
    use axum::http::Request;
    use ed25519_dalek::{Signer, SigningKey};
    use hdrhistogram::Histogram;
    use std::time::Instant;
    use tower::ServiceExt;

    // RFC 8032 section 7.1, test 1: a published test key, for benchmarks only.
    let secret: [u8; 32] = [
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c,
        0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae,
        0x7f, 0x60,
    ];
    let key = SigningKey::from_bytes(&secret);
    let public_hex: String = key
        .verifying_key()
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = tempfile::tempdir()?;
    let store = Store::open(&Store::sqlite_url(&dir.path().join("bench.db"))).await?;
    store.migrate(|_| {}).await?;
    let krake = Krake::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(SystemClock),
        krake_core::config::Directory::default(),
    );
    let front = Arc::new(DiscordFront::new(
        krake,
        Arc::new(store.clone()),
        DiscordConfig::default(),
        None,
    ));
    let endpoint =
        krake_discord::interactions::router(front, SignatureVerifier::from_hex(&public_hex)?);
    let bare = Router::new().route(
        krake_discord::interactions::PATH,
        axum::routing::post(|| async { "{\"type\":1}" }),
    );
    let ts = "1795503000";
    let signed = |body: &str| -> (String, Vec<u8>) {
        let mut msg = ts.as_bytes().to_vec();
        msg.extend_from_slice(body.as_bytes());
        let sig: String = key
            .sign(&msg)
            .to_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        (sig, body.as_bytes().to_vec())
    };
    let ping = signed(r#"{"id":"1","application_id":"2","type":1,"token":"t","version":1}"#);
    let request = |(sig, body): &(String, Vec<u8>)| {
        Request::post(krake_discord::interactions::PATH)
            .header("X-Signature-Ed25519", sig.as_str())
            .header("X-Signature-Timestamp", ts)
            .body(Body::from(body.clone()))
    };
    let n = requests.max(100);
    let measure = async |name: &str,
                         app: &Router,
                         make: &dyn Fn(u32) -> (String, Vec<u8>)|
           -> anyhow::Result<()> {
        let mut h = Histogram::<u64>::new(3)?;
        for i in 0..n {
            let req = request(&make(i))?;
            let t = Instant::now();
            let res = app.clone().oneshot(req).await?;
            let _ = axum::body::to_bytes(res.into_body(), 1 << 16).await?;
            h.record(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX))?;
        }
        println!(
            "{name:<48} n={n:<7} p50={:>8.1}µs p99={:>8.1}µs max={:>8.1}µs",
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            h.max() as f64 / 1000.0
        );
        Ok(())
    };
    println!("in process (router.oneshot, no socket):");
    measure("baseline: bare axum handler", &bare, &|_| ping.clone()).await?;
    measure("verify + PING -> PONG", &endpoint, &|_| ping.clone()).await?;
    let commands: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            signed(&format!(
                r#"{{"id":"{}","application_id":"2","type":2,"token":"t","channel_id":"3","member":{{"user":{{"id":"4","username":"ana"}}}},"data":{{"name":"help","type":1}}}}"#,
                1000 + i
            ))
        })
        .collect();
    measure(
        "verify + /help through core (SQLite idempotency write)",
        &endpoint,
        &|i| commands[i as usize].clone(),
    )
    .await?;
    let press = signed(
        r#"{"id":"9","application_id":"2","type":3,"token":"t","channel_id":"3","member":{"user":{"id":"4","username":"ana"}},"data":{"custom_id":"k1:a:999:1","component_type":2}}"#,
    );
    measure(
        "verify + button decode + identify + press",
        &endpoint,
        &|_| press.clone(),
    )
    .await?;

    println!("over loopback HTTP ({concurrency} connections, keep-alive):");
    for (name, app) in [
        ("baseline: bare axum handler", bare),
        ("verified PING on /discord/interactions", endpoint),
    ] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::new();
        let url = format!("http://{addr}{}", krake_discord::interactions::PATH);
        let per = (n / concurrency.max(1)).max(1);
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency.max(1) {
            let (client, url, (sig, body)) = (client.clone(), url.clone(), ping.clone());
            tasks.push(tokio::spawn(async move {
                let mut ok = 0u32;
                for _ in 0..per {
                    let r = client
                        .post(&url)
                        .header("X-Signature-Ed25519", &sig)
                        .header("X-Signature-Timestamp", ts)
                        .body(body.clone())
                        .send()
                        .await;
                    if let Ok(r) = r
                        && r.status().is_success()
                        && r.bytes().await.is_ok()
                    {
                        ok += 1;
                    }
                }
                ok
            }));
        }
        let mut ok = 0;
        for task in tasks {
            ok += task.await.unwrap_or(0);
        }
        let secs = t.elapsed().as_secs_f64();
        server.abort();
        println!(
            "{name:<48} {ok} ok in {secs:.2}s = {:>8.0} req/s",
            f64::from(ok) / secs
        );
    }
    store.pool().close().await;
    Ok(())
}
