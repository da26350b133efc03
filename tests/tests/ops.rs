//! Operations against the real `krake serve`: `/metrics` after traffic, logs that carry
//! request ids and never a configured secret, the deploy/ files checked offline, and two
//! processes sharing one PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_tests::krake;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "ops-shopify-secret-4f1c";
const GELATO: &str = "gelato-token-9d2e7a41b8c3";
const PG_PASSWORD: &str = "pg-pass-7c21e0";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(dir: &Path) -> PathBuf {
    config_with(dir, "")
}

/// The shared configuration plus `extra` TOML (appended, so it may open tables).
fn config_with(dir: &Path, extra: &str) -> PathBuf {
    let cfg = dir.join("krake.toml");
    std::fs::write(
        &cfg,
        format!(
            "commerce_lease_secs = 3\n\n[shopify.shops]\n\"lunavo.myshopify.com\" = \"lunavo\"\n\n[gelato.tokens]\nlunavo = \"{GELATO}\"\n{extra}"
        ),
    )
    .unwrap();
    cfg
}

/// A running `krake serve` whose stdout and stderr are collected.
struct Server {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Server {
    fn start(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_with(dir, "", extra, env)
    }

    /// Starts with `toml` appended to the shared configuration.
    fn start_with(dir: &Path, toml: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let mut cmd = krake(dir);
        cmd.arg("--config")
            .arg(config_with(dir, toml))
            .env("KRAKE_SHOPIFY_WEBHOOK_SECRET", SECRET)
            .env("KRAKE_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(extra)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().unwrap();
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                l.lock().unwrap().push_str(&line);
                l.lock().unwrap().push('\n');
            }
        });
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        loop {
            let line = lines
                .next()
                .expect("serve exited before listening")
                .unwrap();
            log.lock().unwrap().push_str(&line);
            log.lock().unwrap().push('\n');
            if line.contains("Krake is running") {
                break;
            }
        }
        let l = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                l.lock().unwrap().push_str(&line);
                l.lock().unwrap().push('\n');
            }
        });
        Server { child, port, log }
    }

    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(100));
        self.log.lock().unwrap().clone()
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// One HTTP/1.1 request on a fresh connection: status, response head and body.
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Option<(u16, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).ok()?;
    let _ = s.write_all(body);
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    Some((status, head.to_owned(), body.to_owned()))
}

fn order_body(i: usize) -> Vec<u8> {
    format!(
        r##"{{"id":{},"name":"#{i}","created_at":"2026-11-24T10:{:02}:00+01:00","updated_at":"2026-11-24T10:{:02}:00+01:00","currency":"EUR","total_price":"{}.00","financial_status":"paid","email":"c{i}@example.com"}}"##,
        700_000_000_000_000_000u64 + i as u64,
        i % 60,
        i % 60,
        10 + i % 7,
    )
    .into_bytes()
}

fn shopify_headers(body: &[u8], id: &str, secret: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "X-Shopify-Hmac-Sha256",
            krake_commerce::shopify::sign(secret.as_bytes(), body),
        ),
        ("X-Shopify-Topic", "orders/create".to_owned()),
        ("X-Shopify-Shop-Domain", "lunavo.myshopify.com".to_owned()),
        ("X-Shopify-Webhook-Id", id.to_owned()),
        ("Content-Type", "application/json".to_owned()),
    ]
}

fn deliver_until_ok(port: u16, i: usize) {
    let body = order_body(i);
    let headers = shopify_headers(&body, &format!("ops-{i}"), SECRET);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((200, _, _)) = request(port, "POST", "/webhooks/shopify", &headers, &body) {
            return;
        }
        assert!(Instant::now() < deadline, "webhook {i} never got a 200");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn scrape(port: u16) -> String {
    let (status, head, body) = request(port, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain")
    );
    body
}

/// The value of the sample `name` whose labels include every `k="v"` of `labels`.
fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            let n = l.split(['{', ' ']).next().unwrap_or("");
            n == name
        })
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .reduce(|a, b| a + b)
}

/// `/readyz` checks the Qdrant server when the knowledge base is on one: a replica that cannot
/// reach it is not ready (and says which server), one that can is.
#[test]
fn readiness_includes_the_qdrant_server() {
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let dir = tempfile::tempdir().unwrap();
    let down = Server::start(
        dir.path(),
        &[],
        &[
            ("KRAKE_RAG_STORE", "qdrant"),
            ("KRAKE_QDRANT_URL", &nowhere),
        ],
    );
    let (status, _, body) = request(down.port, "GET", "/readyz", &[], b"").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains(&format!("Qdrant server at {nowhere} unavailable")),
        "{body}"
    );
    down.stop();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(krake_tests::fake_qdrant::FakeQdrant::start());
    let dir = tempfile::tempdir().unwrap();
    let up = Server::start(
        dir.path(),
        &[],
        &[
            ("KRAKE_RAG_STORE", "qdrant"),
            ("KRAKE_QDRANT_URL", &fake.url),
        ],
    );
    let (status, _, body) = request(up.port, "GET", "/readyz", &[], b"").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        fake.state()
            .calls
            .iter()
            .any(|c| c == "qdrant/health_check")
    );
    up.stop();
}

#[test]
fn metrics_move_with_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[]);
    let port = server.port;
    deliver_until_ok(port, 1);
    deliver_until_ok(port, 1); // a duplicate
    let body = order_body(2);
    let bad = shopify_headers(&body, "ops-bad", "not-the-secret");
    assert_eq!(
        request(port, "POST", "/webhooks/shopify", &bad, &body)
            .unwrap()
            .0,
        401
    );
    let big = vec![b'x'; krake_commerce::MAX_BODY + 10];
    let _ = request(
        port,
        "POST",
        "/webhooks/shopify",
        &shopify_headers(&big, "ops-big", SECRET),
        &big,
    );
    assert_eq!(
        request(
            port,
            "POST",
            "/webhooks/gelato/wrong-token-0000000",
            &[],
            b"{}"
        )
        .unwrap()
        .0,
        404
    );
    let (status, head, _) = request(port, "GET", "/healthz", &[], b"").unwrap();
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase().contains("x-request-id: "),
        "a request id is echoed: {head}"
    );
    assert_eq!(
        request(port, "GET", "/api/v1/workspaces/lunavo/kpis", &[], b"")
            .unwrap()
            .0,
        401
    );
    // The processor applies the order in the background.
    let deadline = Instant::now() + Duration::from_secs(30);
    let m = loop {
        let m = scrape(port);
        if sample(&m, "krake_commerce_events_applied_total", &[]).unwrap_or(0.0) >= 1.0 {
            break m;
        }
        assert!(Instant::now() < deadline, "no commerce event applied:\n{m}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let hooks = |outcome: &str| {
        sample(
            &m,
            "krake_webhook_events_total",
            &[("source", "shopify"), ("outcome", outcome)],
        )
    };
    assert_eq!(hooks("stored"), Some(1.0), "{m}");
    assert_eq!(hooks("duplicate"), Some(1.0), "{m}");
    assert_eq!(hooks("refused-401"), Some(1.0), "{m}");
    assert_eq!(hooks("refused-413"), Some(1.0), "{m}");
    assert_eq!(
        sample(
            &m,
            "krake_webhook_events_total",
            &[("source", "gelato"), ("outcome", "refused-404")]
        ),
        Some(1.0),
        "{m}"
    );
    let http = |route: &str, status: &str| {
        sample(
            &m,
            "krake_http_requests_total",
            &[("route", route), ("status", status)],
        )
    };
    assert_eq!(http("/webhooks/shopify", "200"), Some(2.0), "{m}");
    assert_eq!(http("/healthz", "200"), Some(1.0), "{m}");
    assert_eq!(
        http("/api/v1/workspaces/{slug}/kpis", "401"),
        Some(1.0),
        "route templates, not raw paths: {m}"
    );
    assert_eq!(http("/webhooks/gelato/{token}", "404"), Some(1.0), "{m}");
    assert!(
        !m.contains("wrong-token"),
        "a raw path leaked into labels: {m}"
    );
    assert!(sample(&m, "krake_outbox_depth", &[]).is_some(), "{m}");
    assert_eq!(
        sample(
            &m,
            "krake_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0),
        "{m}"
    );
    assert!(
        sample(&m, "krake_http_request_duration_seconds_count", &[]).unwrap_or(0.0) >= 6.0,
        "{m}"
    );
    // The order's thank-you thread is pushed to the web front through the outbox: its time
    // from queueing to delivery is measured.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = scrape(port);
        let n = sample(
            &m,
            "krake_delivery_latency_seconds_count",
            &[("front", "web")],
        );
        if n.unwrap_or(0.0) >= 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no delivery latency recorded:\n{m}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server.stop();
}

fn admin_url() -> String {
    std::env::var("KRAKE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh PostgreSQL database, dropped at the end of the test.
struct PgDb {
    name: String,
}

impl PgDb {
    fn create() -> PgDb {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "krake_ops_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        pg_admin(&format!("CREATE DATABASE {name}"));
        PgDb { name }
    }

    /// The database's URL; `password` is added (the test server trusts 127.0.0.1 and ignores it).
    fn url(&self, password: Option<&str>) -> String {
        let admin = admin_url();
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap();
        let base = match password {
            Some(p) => base.replacen("postgres@", &format!("postgres:{p}@"), 1),
            None => base,
        };
        format!("{base}/{}", self.name)
    }

    fn count(&self, sql: &str) -> i64 {
        let url = self.url(None);
        block_on(async move {
            let store = krake_store::Store::open(&url).await.unwrap();
            let n: i64 = sqlx::query_scalar(sql)
                .fetch_one(store.pool())
                .await
                .unwrap();
            store.pool().close().await;
            n
        })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| {
            pg_admin(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
        });
    }
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Makes every schedule of the database at `url` due half a second ago, as if its time had
/// come; returns now (Unix milliseconds): the occurrence is `now - 500`.
fn schedules_fall_due(url: &str) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let url = url.to_owned();
    block_on(async move {
        let store = krake_store::Store::open(&url).await.unwrap();
        sqlx::query("UPDATE schedules SET next_run_at = $1")
            .bind(now - 500)
            .execute(store.pool())
            .await
            .unwrap();
        store.pool().close().await;
    });
    now
}

fn pg_admin(sql: &str) {
    let sql = sql.to_owned();
    block_on(async move {
        let admin = krake_store::Store::open(&admin_url())
            .await
            .expect("PostgreSQL is required (scripts/test starts it)");
        sqlx::query(&sql).execute(admin.pool()).await.unwrap();
        admin.pool().close().await;
    });
}

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn yaml(path: &str) -> serde_yaml::Value {
    let text = std::fs::read_to_string(deploy_dir().join(path)).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"))
}

fn s<'a>(v: &'a serde_yaml::Value, path: &[&str]) -> &'a serde_yaml::Value {
    path.iter().fold(v, |v, k| match k.parse::<usize>() {
        Ok(i) => &v[i],
        Err(_) => &v[*k],
    })
}

fn text(v: &serde_yaml::Value, path: &[&str]) -> String {
    s(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string"))
        .to_owned()
}

/// Metrics recorded by a front's delivery loop (`spawn_delivery_loop`): this test configures
/// no front, so they are not exported here.
const NEEDS_A_FRONT: &[&str] = &[
    "krake_outbox_deliveries_total",
    "krake_delivery_pass_seconds",
    "krake_delivery_latency_seconds",
];

/// Metrics recorded when an agent run ends or a model answers: this test configures no model
/// (tests/tests/agents_e2e.rs scrapes them after a real run).
const NEEDS_A_MODEL: &[&str] = &[
    "krake_agent_runs_total",
    "krake_model_tokens_total",
    "krake_model_cost_microdollars_total",
];

#[test]
fn deploy_files_are_consistent_and_the_dashboard_uses_real_metrics() {
    // Kubernetes: the Deployment.
    let dep = yaml("k8s/deployment.yaml");
    assert_eq!(text(&dep, &["kind"]), "Deployment");
    assert!(s(&dep, &["spec", "replicas"]).as_u64().unwrap() >= 2);
    let labels = s(&dep, &["spec", "template", "metadata", "labels"]).clone();
    assert_eq!(s(&dep, &["spec", "selector", "matchLabels"]), &labels);
    let pod = s(&dep, &["spec", "template", "spec"]);
    assert_eq!(
        s(pod, &["securityContext", "runAsNonRoot"]).as_bool(),
        Some(true)
    );
    assert!(s(pod, &["securityContext", "runAsUser"]).as_u64().unwrap() > 0);
    let c = s(pod, &["containers", "0"]);
    assert_eq!(
        s(c, &["securityContext", "allowPrivilegeEscalation"]).as_bool(),
        Some(false)
    );
    assert_eq!(text(c, &["readinessProbe", "httpGet", "path"]), "/readyz");
    assert_eq!(text(c, &["livenessProbe", "httpGet", "path"]), "/healthz");
    let port_name = text(c, &["ports", "0", "name"]);
    assert_eq!(s(c, &["ports", "0", "containerPort"]).as_u64(), Some(8080));
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(text(c, &[probe, "httpGet", "port"]), port_name);
    }
    let args: Vec<String> = s(c, &["args"])
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(args, ["serve", "--listen", "0.0.0.0:8080"]);
    let image = text(c, &["image"]);
    assert!(image.starts_with("ghcr.io/krake/krake:"), "{image}");
    // Every secret the Deployment reads exists in the example Secret; the database URL, the
    // Shopify secret and the Gelato token come from it, never from the ConfigMap.
    let secret = yaml("k8s/secret.example.yaml");
    assert_eq!(text(&secret, &["kind"]), "Secret");
    let secret_name = text(&secret, &["metadata", "name"]);
    let mut from_secret = Vec::new();
    for e in s(c, &["env"]).as_sequence().unwrap() {
        if let Some(r) = e.get("valueFrom").and_then(|v| v.get("secretKeyRef")) {
            assert_eq!(text(r, &["name"]), secret_name);
            let key = text(r, &["key"]);
            assert!(
                s(&secret, &["stringData", &key]).as_str().is_some(),
                "the Secret has no key {key}"
            );
            from_secret.push(text(e, &["name"]));
        }
    }
    for needed in [
        "KRAKE_DATABASE_URL",
        "KRAKE_SHOPIFY_WEBHOOK_SECRET",
        "KRAKE_GELATO_TOKEN_LUNAVO",
    ] {
        assert!(
            from_secret.iter().any(|n| n == needed),
            "{needed} not from the Secret"
        );
    }
    // The ConfigMap's krake.toml is accepted by the real binary.
    let cm = yaml("k8s/configmap.yaml");
    let volumes = s(pod, &["volumes"]).as_sequence().unwrap();
    assert!(volumes.iter().any(|v| {
        v.get("configMap")
            .is_some_and(|m| text(m, &["name"]) == text(&cm, &["metadata", "name"]))
    }));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("krake.toml");
    std::fs::write(&cfg, text(&cm, &["data", "krake.toml"])).unwrap();
    let (ok, out, err) =
        krake_tests::run(krake(dir.path()).arg("--config").arg(&cfg).arg("config"));
    assert!(ok, "the ConfigMap's krake.toml is refused: {err}");
    assert!(out.contains("log_format = \"json\""), "{out}");
    // Service and PodDisruptionBudget select the Deployment's pods.
    let svc = yaml("k8s/service.yaml");
    assert_eq!(text(&svc, &["kind"]), "Service");
    assert_eq!(s(&svc, &["spec", "selector"]), &labels);
    assert_eq!(text(&svc, &["spec", "ports", "0", "targetPort"]), port_name);
    let pdb = yaml("k8s/pdb.yaml");
    assert_eq!(text(&pdb, &["kind"]), "PodDisruptionBudget");
    assert_eq!(s(&pdb, &["spec", "selector", "matchLabels"]), &labels);
    // Compose: krake, PostgreSQL and Qdrant; the same image as the Deployment.
    let compose = yaml("docker-compose.yml");
    for svc in ["krake", "postgres", "qdrant"] {
        assert!(s(&compose, &["services", svc]).is_mapping(), "no {svc}");
    }
    assert_eq!(text(&compose, &["services", "krake", "image"]), image);
    assert_eq!(
        text(&compose, &["services", "krake", "build", "dockerfile"]),
        "deploy/Dockerfile"
    );
    assert!(
        s(&compose, &["services", "krake", "depends_on", "postgres"]).is_mapping(),
        "krake waits for postgres"
    );
    assert!(
        text(
            &compose,
            &["services", "krake", "environment", "KRAKE_DATABASE_URL"]
        )
        .contains("@postgres:5432/")
    );
    // A deploy file that names a Qdrant server selects it: otherwise each replica would start
    // with its own embedded store. Checked with the real settings of the binary.
    let env = s(&compose, &["services", "krake", "environment"]);
    if let Some(url) = env.get("KRAKE_QDRANT_URL").and_then(|v| v.as_str()) {
        let store = env
            .get("KRAKE_RAG_STORE")
            .and_then(|v| v.as_str())
            .expect("compose names a Qdrant server but does not select it (KRAKE_RAG_STORE)");
        let dir = tempfile::tempdir().unwrap();
        let (ok, out, err) = krake_tests::run(
            krake(dir.path())
                .arg("--config")
                .arg(deploy_dir().join("krake.example.toml"))
                .arg("config")
                .env("KRAKE_RAG_STORE", store)
                .env("KRAKE_QDRANT_URL", url),
        );
        assert!(ok, "{err}");
        assert!(
            out.contains("store = \"qdrant\"") && out.contains(url),
            "a compose replica would not use the Qdrant server: {out}"
        );
    }
    let k8s_env = s(pod, &["containers", "0", "env"]).as_sequence().unwrap();
    let names = |n: &str| k8s_env.iter().any(|e| text(e, &["name"]) == n);
    let cm_toml = text(&cm, &["data", "krake.toml"]);
    let k8s_names_server = names("KRAKE_QDRANT_URL")
        || cm_toml
            .lines()
            .any(|l| l.trim_start().starts_with("qdrant_url"));
    let k8s_selects = names("KRAKE_RAG_STORE")
        || cm_toml
            .lines()
            .any(|l| l.trim_start().starts_with("store") && l.contains("\"qdrant\""));
    assert!(
        !k8s_names_server || k8s_selects,
        "the Kubernetes manifests name a Qdrant server but do not select it"
    );
    // Replicas keep no state of their own: the database is PostgreSQL (from the Secret), the
    // knowledge base the Qdrant server, and the only volume besides the config is scratch.
    assert!(
        k8s_names_server && k8s_selects,
        "replicas would each keep an embedded store"
    );
    assert!(
        k8s_env
            .iter()
            .any(|e| text(e, &["name"]) == "KRAKE_DATABASE_URL"
                && text(e, &["valueFrom", "secretKeyRef", "key"]) == "database-url")
    );
    for v in s(pod, &["volumes"]).as_sequence().unwrap() {
        assert!(
            v.get("configMap").is_some() || v.get("emptyDir").is_some(),
            "a replica volume holding state: {v:?}"
        );
    }
    // Compose runs two replicas and waits for a healthy PostgreSQL and Qdrant; its Qdrant is the
    // version the suite tests against.
    assert!(
        s(&compose, &["services", "krake", "deploy", "replicas"])
            .as_u64()
            .unwrap()
            >= 2
    );
    for dep in ["postgres", "qdrant"] {
        assert_eq!(
            text(
                &compose,
                &["services", "krake", "depends_on", dep, "condition"]
            ),
            "service_healthy"
        );
        assert!(s(&compose, &["services", dep, "healthcheck", "test"]).is_sequence());
    }
    assert!(text(&compose, &["services", "qdrant", "image"]).ends_with(":v1.16.3"));
    // Dockerfile: builder on rust:1.95, a slim runtime, a non-root user, `serve` on 0.0.0.0:8080.
    let docker = std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap();
    let froms: Vec<&str> = docker.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 3, "three stages: {froms:?}");
    assert!(froms[0].starts_with("FROM rust:1.95") && froms[0].ends_with(" AS builder"));
    assert!(froms[1].ends_with(" AS models"));
    assert!(froms[2].contains("debian:bookworm-slim") || froms[2].contains("distroless"));
    assert!(docker.contains("COPY --from=builder "));
    // The embedder's weights are baked in, fetched by the same script (and pinned hash) as a
    // user's, and the runtime is pointed at them.
    assert!(
        docker.contains("COPY scripts/fetch-model ")
            && docker.contains("RUN bash /fetch-model /models")
    );
    assert!(docker.contains("COPY --from=models /models /usr/share/krake/models"));
    assert!(docker.contains("KRAKE_MODELS_DIR=/usr/share/krake/models"));
    assert!(docker.contains("--locked"));
    let user = docker
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("a USER line");
    let user = user.trim_start_matches("USER ").trim();
    assert!(
        !user.is_empty() && !user.starts_with("root") && !user.starts_with("0"),
        "runs as {user}"
    );
    assert!(docker.contains(r#"CMD ["serve", "--listen", "0.0.0.0:8080"]"#));

    // Grafana: every metric its queries use is one the real /metrics exports.
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(deploy_dir().join("grafana/krake-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut used = std::collections::BTreeSet::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(i) = rest.find("krake_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[i + name.len()..];
                used.insert(name);
            }
        }
    }
    assert!(used.len() >= 8, "{used:?}");
    let dir = tempfile::tempdir().unwrap();
    // A schedule due now, so the coordinator runs it and its counter exists.
    krake_tests::chat(
        dir.path(),
        &["/schedule dexter \"summarise sales\" every 15 minutes"],
    );
    sqlite_exec(dir.path(), "UPDATE schedules SET next_run_at = 1000");
    let (ok, _, err) =
        krake_tests::run(krake(dir.path()).args(["user", "add", "ana", "--role", "owner"]));
    assert!(ok, "{err}");
    let (ok, token, err) = krake_tests::run(krake(dir.path()).args(["user", "token", "ana"]));
    assert!(ok, "{err}");
    let bearer = vec![("authorization", format!("Bearer {}", token.trim()))];
    let server = Server::start(dir.path(), &[], &[]);
    deliver_until_ok(server.port, 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut approved = false;
    let m = loop {
        let m = scrape(server.port);
        // The order's thank-you approval, decided here, records the approval latency.
        if !approved
            && let Some((200, _, body)) = request(
                server.port,
                "GET",
                "/api/v1/inbox?kind=approval",
                &bearer,
                b"",
            )
            && let Some(id) = serde_json::from_str::<serde_json::Value>(&body).unwrap()["threads"]
                [0]["id"]
                .as_i64()
        {
            let (status, _, body) = request(
                server.port,
                "POST",
                &format!("/api/v1/inbox/{id}/approve"),
                &bearer,
                b"",
            )
            .unwrap();
            assert_eq!(status, 200, "{body}");
            approved = true;
        }
        if m.contains("krake_schedule_runs_total")
            && m.contains("krake_commerce_events_applied_total")
            && m.contains("krake_approval_latency_seconds_bucket")
        {
            break m;
        }
        assert!(Instant::now() < deadline, "{m}");
        std::thread::sleep(Duration::from_millis(100));
    };
    server.stop();
    let exported: std::collections::BTreeSet<&str> = m
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    for name in &used {
        if NEEDS_A_FRONT
            .iter()
            .chain(NEEDS_A_MODEL)
            .any(|n| name.starts_with(n))
        {
            continue;
        }
        assert!(
            exported.contains(name.as_str()),
            "the dashboard uses {name}, /metrics has {exported:?}"
        );
    }
}

fn sqlite_exec(dir: &Path, sql: &str) {
    let url = krake_store::Store::sqlite_url(&dir.join("krake.db"));
    let sql = sql.to_owned();
    block_on(async move {
        let store = krake_store::Store::open(&url).await.unwrap();
        sqlx::query(&sql).execute(store.pool()).await.unwrap();
        store.pool().close().await;
    });
}

/// Sends webhook `i` to each of `ports` in turn until one answers 200 (a dead process is
/// skipped, as a load balancer would).
fn deliver_to_any(ports: &[u16], i: usize) {
    let body = order_body(i);
    let headers = shopify_headers(&body, &format!("scale-{i}"), SECRET);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for &port in ports {
            if let Some((200, _, _)) = request(port, "POST", "/webhooks/shopify", &headers, &body) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "webhook {i} never got a 200");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The secret the replicas' Telegram webhook expects.
const TELEGRAM_SECRET: &str = "hook-Secret_42";

/// Posts Telegram update `update_id` (`/help` in the private chat of user `user`, from the
/// fixture Telegram sent) to the replicas' webhook, to each of `ports` in turn until one
/// answers 200 (a front answers 503 until it has registered its webhook).
fn telegram_update(ports: &[u16], update_id: u64, user: u64) {
    let path = format!(
        "{}/../../shared/fixtures/telegram/update_message_private_text.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut update: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    update["update_id"] = serde_json::json!(update_id);
    update["message"]["from"]["id"] = serde_json::json!(user);
    update["message"]["chat"]["id"] = serde_json::json!(user);
    update["message"]["text"] = serde_json::json!("/help");
    let body = serde_json::to_vec(&update).unwrap();
    let headers = [
        (
            "X-Telegram-Bot-Api-Secret-Token",
            TELEGRAM_SECRET.to_owned(),
        ),
        ("Content-Type", "application/json".to_owned()),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for &port in ports {
            if let Some((200, _, _)) = request(port, "POST", "/telegram/webhook", &headers, &body) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "Telegram update {update_id} never got a 200"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn chat_on(dir: &Path, url: &str, line: &str) -> String {
    let mut child = krake(dir)
        .args(["--database-url", url, "chat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{line}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Tests on PostgreSQL (skipped on purpose with KRAKE_SKIP_POSTGRES=1).
mod postgres {
    use super::*;

    /// The backup documented in docs/operations.md: `pg_dump -Fc` of a running Krake's
    /// database, restored with `pg_restore` into an empty one, is a Krake that shows the same
    /// inbox and takes new work.
    #[test]
    fn a_pg_dump_restores_into_a_working_krake() {
        let dir = tempfile::tempdir().unwrap();
        let db = PgDb::create();
        let url = db.url(None);
        let u = url.clone();
        let threads = block_on(async move {
            let store = krake_store::Store::open(&u).await.unwrap();
            store.migrate(|_| {}).await.unwrap();
            let s = std::sync::Arc::new(store);
            let krake = krake_core::Krake::new(
                s.clone(),
                s.clone(),
                std::sync::Arc::new(krake_core::time::SystemClock),
                krake_core::config::Directory::default(),
            );
            let n = krake_core::inbox::demo::fill_if_empty(
                &krake,
                krake_core::time::Clock::now(&krake_core::time::SystemClock),
            )
            .await
            .unwrap();
            s.pool().close().await;
            n
        });
        assert!(threads >= 3, "{threads}");
        let before = chat_on(dir.path(), &url, "/todo");
        let dump = dir.path().join("krake.dump");
        let out = Command::new("pg_dump")
            .args(["-Fc", "--no-owner", "-f"])
            .arg(&dump)
            .arg(&url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let restored = PgDb::create();
        let out = Command::new("pg_restore")
            .args(["--no-owner", "-d", &restored.url(None)])
            .arg(&dump)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let after = chat_on(dir.path(), &restored.url(None), "/todo");
        assert_eq!(after, before, "the same inbox");
        assert!(after.contains("#1"), "{after}");
        // It takes new work: an answer to the first thread is stored in the restored database.
        let replied = chat_on(
            dir.path(),
            &restored.url(None),
            "/reply 1 restored and working",
        );
        assert!(!replied.contains("rror"), "{replied}");
        assert_eq!(
            restored
                .count("SELECT COUNT(*) FROM thread_replies WHERE text = 'restored and working'"),
            1
        );
    }

    #[test]
    fn logs_carry_request_ids_and_never_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let db = PgDb::create();
        let url = db.url(Some(PG_PASSWORD));
        // `krake config` shows the database URL without its password.
        let (ok, out, err) = krake_tests::run(
            krake(dir.path())
                .arg("--config")
                .arg(config(dir.path()))
                .args(["--database-url", &url, "config"])
                .env("KRAKE_SHOPIFY_WEBHOOK_SECRET", SECRET),
        );
        assert!(ok, "{err}");
        for s in [SECRET, GELATO, PG_PASSWORD] {
            assert!(!out.contains(s), "`krake config` shows a secret: {out}");
        }
        for format in ["text", "json"] {
            let server = Server::start(
                dir.path(),
                &["--database-url", &url, "--log-format", format],
                &[("KRAKE_LOG", "debug")],
            );
            let port = server.port;
            deliver_until_ok(port, 10);
            let body = br#"{"id":"g-1","event":"order_status_updated","orderId":"o-1","orderReferenceId":"r-1","fulfillmentStatus":"shipped"}"#;
            let _ = request(
                port,
                "POST",
                &format!("/webhooks/gelato/{GELATO}"),
                &[],
                body,
            );
            let bad = shopify_headers(&body[..], "ops-bad", "wrong");
            let _ = request(port, "POST", "/webhooks/shopify", &bad, body);
            let _ = request(port, "GET", "/readyz", &[], b"");
            let _ = request(
                port,
                "GET",
                "/api/v1/workspaces/lunavo/kpis",
                &[("Authorization", "Bearer krk_not_a_real_token".to_owned())],
                b"",
            );
            let deadline = Instant::now() + Duration::from_secs(30);
            while db.count("SELECT COUNT(*) FROM commerce_orders") < 1 {
                assert!(Instant::now() < deadline, "the order was not applied");
                std::thread::sleep(Duration::from_millis(100));
            }
            let log = server.stop();
            assert!(log.len() > 1000, "debug logging is on: {log}");
            for s in [SECRET, GELATO, PG_PASSWORD] {
                assert!(
                    !log.contains(s),
                    "the {format} log holds a secret `{s}`:\n{log}"
                );
            }
            assert!(
                log.contains("request_id"),
                "requests carry an id in the {format} log:\n{log}"
            );
            let coloured: Vec<&str> = log.lines().filter(|l| l.contains('\u{1b}')).collect();
            assert!(
                coloured.is_empty(),
                "a {format} log written to a pipe has no terminal colour codes:\n{}",
                coloured.join("\n")
            );
            if format == "json" {
                for line in log.lines().filter(|l| !l.trim().is_empty()) {
                    serde_json::from_str::<serde_json::Value>(line)
                        .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
                }
            }
        }
    }

    #[test]
    fn two_processes_share_the_work_exactly_once_and_survive_kill_9() {
        const N: usize = 1500;
        const CLIENTS: usize = 4;
        let db = PgDb::create();
        let url = db.url(None);
        let (dir_a, dir_b, dir_c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let (ok, _, err) =
            krake_tests::run(krake(dir_c.path()).args(["--database-url", &url, "migrate"]));
        assert!(ok, "{err}");
        let out = chat_on(
            dir_c.path(),
            &url,
            "/schedule dexter \"summarise sales\" every 15 minutes",
        );
        assert!(out.contains("chedule"), "{out}");
        let a = Server::start(dir_a.path(), &["--database-url", &url], &[]);
        let b = Server::start(dir_b.path(), &["--database-url", &url], &[]);
        let (pa, pb) = (a.port, b.port);
        // One occurrence falls due while both coordinators tick every second.
        let now = schedules_fall_due(&url);
        // Every webhook goes to one process, and again to the other (a retry landing elsewhere).
        let acked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let acked = acked.clone();
                std::thread::spawn(move || {
                    for i in (c..N).step_by(CLIENTS) {
                        let (first, second) = if i % 2 == 0 { (pa, pb) } else { (pb, pa) };
                        deliver_to_any(&[first, second], i);
                        deliver_to_any(&[second, first], i);
                        acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                })
            })
            .collect();
        while acked.load(std::sync::atomic::Ordering::SeqCst) < N / 3 {
            std::thread::sleep(Duration::from_millis(5));
        }
        a.kill9(); // mid-burst, possibly holding claimed events
        for c in clients {
            c.join().unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(90);
        while db
            .count("SELECT COUNT(*) FROM inbound WHERE source = 'shopify' AND processed_at IS NULL")
            > 0
            || db.count("SELECT COUNT(*) FROM schedule_runs") < 1
        {
            assert!(Instant::now() < deadline, "processing did not finish");
            std::thread::sleep(Duration::from_millis(200));
        }
        let m = scrape(pb);
        let log = b.stop();
        let n = N as i64;
        assert_eq!(
            db.count("SELECT COUNT(*) FROM inbound WHERE source = 'shopify'"),
            n,
            "every webhook stored once"
        );
        assert_eq!(db.count("SELECT COUNT(*) FROM commerce_orders"), n);
        assert_eq!(
            db.count("SELECT CAST(SUM(orders) AS BIGINT) FROM kpi_daily"),
            n,
            "the KPIs count each order once"
        );
        assert_eq!(
            db.count("SELECT COUNT(*) FROM threads WHERE kind = 'approval'"),
            n,
            "one thank-you thread per order, none twice"
        );
        // That occurrence: the schedule's next regular one may also fall due meanwhile (the
        // test crossing a quarter hour), and is a different occurrence.
        assert_eq!(
            db.count(&format!(
                "SELECT COUNT(*) FROM schedule_runs WHERE occurrence_at = {}",
                now - 500
            )),
            1,
            "the occurrence ran once"
        );
        // B counts only what B applied: the rest was applied by A before the kill.
        let by_b = sample(&m, "krake_commerce_events_applied_total", &[]).unwrap_or(0.0);
        assert!(
            by_b > 0.0 && by_b < N as f64,
            "both processes applied events (B applied {by_b} of {N})"
        );
        assert!(
            sample(
                &m,
                "krake_webhook_events_total",
                &[("source", "shopify"), ("outcome", "duplicate")]
            )
            .unwrap_or(0.0)
                > 0.0,
            "{m}\n{log}"
        );
    }

    /// Scale-out with everything at once: two `krake serve` on one PostgreSQL, the knowledge base
    /// on the Qdrant server (the real one when `KRAKE_QDRANT_BIN` names it, else the gRPC fake),
    /// a model (the local OpenAI-compatible fake) and a local Telegram Bot API. Webhooks go to
    /// both; chat comes from two fronts (the terminal makes the schedule; Telegram updates reach
    /// the replicas by webhook, one of them delivered to both, and their replies are delivered
    /// to the local Bot API); a schedule falls due and its agent run searches the knowledge
    /// base; the process working on that run is killed (SIGKILL) while the model answers, and
    /// the survivor resumes it. Every order is applied once, every chat message answered once,
    /// and the run ends once, with one notice, answered from the knowledge search.
    #[test]
    fn scale_out_with_a_replica_killed_mid_run_does_everything_once() {
        use krake_tests::fake_openai::{Answer, FakeOpenAi};
        use krake_tests::fake_telegram::{FakeTelegram, TOKEN};
        const N: usize = 300;
        let rt = tokio::runtime::Runtime::new().unwrap();
        let telegram = rt.block_on(FakeTelegram::start());
        let (qdrant_url, _real, _fake) = match krake_tests::real_qdrant::qdrant_bin() {
            Some(bin) => {
                let q = rt.block_on(krake_tests::real_qdrant::RealQdrant::start(bin));
                (q.url(), Some(q), None)
            }
            None => {
                let f = rt.block_on(krake_tests::fake_qdrant::FakeQdrant::start());
                (f.url.clone(), None, Some(f))
            }
        };
        let search = Answer::Tools(vec![(
            "search_knowledge".into(),
            serde_json::json!({"query": "how long do customers have to return a hoodie"})
                .to_string(),
        )]);
        let model = rt.block_on(FakeOpenAi::start(vec![
            // The first attempt's call outlives the process that made it.
            Answer::Slow(Duration::from_secs(4), Box::new(search.clone())),
            search,
            Answer::reply("Customers have 30 days to return a hoodie.", 0.95),
        ]));
        let extra = format!(
            "[telegram]\napi_url = \"{}\"\nmode = \"webhook\"\nwebhook_secret = \"{TELEGRAM_SECRET}\"\nwebhook_url = \"https://krake.example/telegram/webhook\"\n\n[llm]\nmax_retries = 0\n[[llm.providers]]\nname = \"fake\"\nbase_url = \"{}\"\nmodels = [\"fake-model\"]\n\n[agent_runs]\nlease_secs = 3\n\n[rag]\nstore = \"qdrant\"\nqdrant_url = \"{qdrant_url}\"\n\n# Orders open their thank-you threads without an agent run here: the model's script is\n# the scheduled run's.\n[[rules]]\non = \"order_created\"\nthen = \"approval\"\n",
            telegram.url, model.base_url
        );
        let db = PgDb::create();
        let url = db.url(None);
        let (dir_a, dir_b, dir_c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let cfg = config_with(dir_c.path(), &extra);
        let (ok, _, err) =
            krake_tests::run(krake(dir_c.path()).args(["--database-url", &url, "migrate"]));
        assert!(ok, "{err}");
        let out = chat_on(
            dir_c.path(),
            &url,
            "/schedule dexter \"what is our returns policy\" every 15 minutes",
        );
        assert!(out.contains("chedule"), "{out}");
        let u = url.clone();
        let workspace: String = block_on(async move {
            let store = krake_store::Store::open(&u).await.unwrap();
            let w = sqlx::query_scalar("SELECT workspace FROM schedules")
                .fetch_one(store.pool())
                .await
                .unwrap();
            store.pool().close().await;
            w
        });
        // The knowledge the run will find, on the Qdrant server.
        let docs = dir_c.path().join("docs");
        std::fs::create_dir(&docs).unwrap();
        std::fs::write(
            docs.join("returns.md"),
            "# Returns\n\nHoodies can be returned within 30 days of delivery, unworn.\n",
        )
        .unwrap();
        let (ok, _, err) = krake_tests::run(
            krake(dir_c.path())
                .arg("--config")
                .arg(&cfg)
                .args(["--database-url", &url, "ingest"])
                .arg(&docs)
                .args(["--workspace", &workspace]),
        );
        assert!(ok, "{err}");

        let env = [("KRAKE_TELEGRAM_TOKEN", TOKEN)];
        let a = Server::start_with(dir_a.path(), &extra, &["--database-url", &url], &env);
        let b = Server::start_with(dir_b.path(), &extra, &["--database-url", &url], &env);
        let (pa, pb) = (a.port, b.port);
        let clients = std::thread::spawn(move || {
            for i in 0..N {
                let (first, second) = if i % 2 == 0 { (pa, pb) } else { (pb, pa) };
                deliver_to_any(&[first, second], i);
            }
        });
        // A Telegram update delivered to both replicas (Telegram retrying through a load
        // balancer): answered once.
        telegram_update(&[pa], 501, 43);
        telegram_update(&[pb], 501, 43);
        schedules_fall_due(&url);
        // Kill whichever process is working on the run, while its model call is out.
        let owner_of_run = || {
            let u = url.clone();
            block_on(async move {
                let store = krake_store::Store::open(&u).await.unwrap();
                let o: Option<Option<String>> = sqlx::query_scalar(
                    "SELECT lease_owner FROM agent_runs WHERE trigger_kind = 'schedule' AND status = 'running'",
                )
                .fetch_optional(store.pool())
                .await
                .unwrap();
                store.pool().close().await;
                o.flatten()
            })
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let owner = loop {
            if let Some(o) = owner_of_run() {
                break o;
            }
            assert!(Instant::now() < deadline, "the scheduled run never started");
            std::thread::sleep(Duration::from_millis(50));
        };
        // …once its model call is out (the slow answer goes to a process that is gone).
        while model.requests().is_empty() {
            assert!(Instant::now() < deadline, "the run never called the model");
            std::thread::sleep(Duration::from_millis(20));
        }
        let (victim, survivor) = if owner == format!("agents-{}", a.child.id()) {
            (a, b)
        } else {
            assert_eq!(owner, format!("agents-{}", b.child.id()));
            (b, a)
        };
        victim.kill9();
        // After the kill, another Telegram update reaches the survivor.
        telegram_update(&[survivor.port], 502, 44);
        clients.join().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while db.count(
            "SELECT COUNT(*) FROM agent_runs WHERE trigger_kind = 'schedule' AND status = 'done'",
        ) < 1
            || db.count(
                "SELECT COUNT(*) FROM inbound WHERE source = 'shopify' AND processed_at IS NULL",
            ) > 0
        {
            if Instant::now() > deadline {
                let u = url.clone();
                let runs: Vec<(String, i64, Option<String>)> = block_on(async move {
                    let store = krake_store::Store::open(&u).await.unwrap();
                    sqlx::query_as("SELECT status, attempts, error FROM agent_runs")
                        .fetch_all(store.pool())
                        .await
                        .unwrap()
                });
                panic!(
                    "the survivor did not finish the work: runs {runs:?}, unprocessed webhooks {}",
                    db.count(
                        "SELECT COUNT(*) FROM inbound WHERE source = 'shopify' AND processed_at IS NULL"
                    )
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        // Both chat messages answered through the local Bot API, each once.
        let deadline = Instant::now() + Duration::from_secs(30);
        while telegram.sent().len() < 2 {
            assert!(
                Instant::now() < deadline,
                "Telegram replies: {:?}",
                telegram.sent()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_secs(1)); // a duplicate would arrive now
        let log = survivor.stop();
        let mut chats: Vec<i64> = telegram
            .sent()
            .iter()
            .map(|(body, _)| {
                assert!(
                    body["text"].as_str().is_some_and(|t| t.contains("/todo")),
                    "{body}"
                );
                body["chat_id"].as_i64().unwrap()
            })
            .collect();
        chats.sort_unstable();
        assert_eq!(chats, [43, 44], "each chat message answered once");
        let n = N as i64;
        assert_eq!(
            db.count("SELECT COUNT(*) FROM inbound WHERE source = 'shopify'"),
            n
        );
        assert_eq!(db.count("SELECT COUNT(*) FROM commerce_orders"), n, "{log}");
        assert_eq!(
            db.count("SELECT COUNT(*) FROM threads WHERE kind = 'approval'"),
            n,
            "one thread per order, none twice"
        );
        assert_eq!(
            db.count("SELECT COUNT(*) FROM agent_runs WHERE trigger_kind = 'schedule'"),
            1,
            "one run for the occurrence"
        );
        assert_eq!(
            db.count("SELECT attempts FROM agent_runs WHERE trigger_kind = 'schedule'"),
            2,
            "resumed once by the survivor"
        );
        assert_eq!(
            db.count("SELECT COUNT(*) FROM threads WHERE kind = 'notice' AND body LIKE '%30 days to return%'"),
            1,
            "one notice for the run"
        );
        // The answer came from the knowledge search on the Qdrant server.
        let found = model.requests().iter().any(|r| {
            r["messages"].as_array().is_some_and(|m| {
                m.iter().any(|x| {
                    x["role"] == "tool"
                        && x["content"]
                            .as_str()
                            .is_some_and(|c| c.contains("returned within 30 days"))
                })
            })
        });
        assert!(found, "{} model requests", model.requests().len());
    }

    /// Two processes deliver one outbox to one Telegram chat: every thread is posted once,
    /// whichever process accepted its webhook and whichever claimed its delivery.
    #[test]
    fn two_processes_post_each_thread_to_telegram_once() {
        use krake_tests::fake_telegram::{FakeTelegram, TOKEN};
        // Telegram lets a bot send about one message a second to a chat (and 20 a minute to a
        // group), and Krake paces itself to that: a private chat keeps this test short.
        const N: usize = 30;
        let rt = tokio::runtime::Runtime::new().unwrap();
        let fake = rt.block_on(FakeTelegram::start());
        let db = PgDb::create();
        let url = db.url(None);
        let toml = format!(
            "\n[telegram]\napi_url = \"{}\"\npoll_timeout_secs = 1\n\n[[telegram.chats]]\nworkspace = \"lunavo\"\nchat_id = 777001\n",
            fake.url
        );
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let env = [("KRAKE_TELEGRAM_TOKEN", TOKEN)];
        let a = Server::start_with(dir_a.path(), &toml, &["--database-url", &url], &env);
        let b = Server::start_with(dir_b.path(), &toml, &["--database-url", &url], &env);
        let ports = [a.port, b.port];
        for i in 0..N {
            // Each webhook reaches one process, and its retry the other.
            deliver_to_any(&[ports[i % 2]], i);
            deliver_to_any(&[ports[(i + 1) % 2]], i);
        }
        let deadline = Instant::now() + Duration::from_secs(90);
        while fake.sent().len() < N {
            assert!(
                Instant::now() < deadline,
                "only {} of {N} threads reached Telegram; A:\n{}\nB:\n{}",
                fake.sent().len(),
                a.log.lock().unwrap(),
                b.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // Both processes idle a little longer: a duplicate would arrive now.
        std::thread::sleep(Duration::from_secs(3));
        let log_a = a.stop();
        let log_b = b.stop();
        let sent = fake.sent();
        let mut threads: Vec<String> = sent
            .iter()
            .filter_map(|(body, _)| {
                let text = body.get("text")?.as_str()?;
                let n = text.split('#').nth(1)?;
                Some(n.chars().take_while(char::is_ascii_digit).collect())
            })
            .collect();
        assert_eq!(sent.len(), N, "one message per thread:\n{log_a}\n{log_b}");
        threads.sort();
        threads.dedup();
        assert_eq!(threads.len(), N, "each thread posted once: {sent:?}");
        assert_eq!(
            db.count("SELECT COUNT(*) FROM outbox WHERE front = 'telegram' AND state <> 'done'"),
            0,
            "nothing left undelivered"
        );
    }

    /// A web chat session on process B sees inbox changes that process A delivered: B is
    /// stopped (SIGSTOP) while A takes and delivers every web job, then resumed; it hears A's
    /// announcements (LISTEN/NOTIFY) and pushes each thread to its session exactly once.
    #[test]
    fn web_sessions_on_one_process_see_changes_delivered_by_another() {
        use futures_util::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        const N: usize = 8;
        let db = PgDb::create();
        let url = db.url(None);
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (ok, _, err) =
            krake_tests::run(krake(dir_a.path()).args(["--database-url", &url, "migrate"]));
        assert!(ok, "{err}");
        let (ok, _, err) = krake_tests::run(krake(dir_a.path()).args([
            "--database-url",
            &url,
            "user",
            "add",
            "ana",
            "--role",
            "owner",
        ]));
        assert!(ok, "{err}");
        let (ok, token, err) = krake_tests::run(krake(dir_a.path()).args([
            "--database-url",
            &url,
            "user",
            "token",
            "ana",
        ]));
        assert!(ok, "{err}");
        let token = token.trim().to_owned();
        let a = Server::start(dir_a.path(), &["--database-url", &url], &[]);
        let b = Server::start(dir_b.path(), &["--database-url", &url], &[]);
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (mut ws, _) = rt
            .block_on(tokio_tungstenite::connect_async(format!(
                "ws://127.0.0.1:{}/ws/chat",
                b.port
            )))
            .unwrap();
        let recv = |ws: &mut tokio_tungstenite::WebSocketStream<_>,
                    secs: u64|
         -> Option<serde_json::Value> {
            rt.block_on(async {
                loop {
                    match tokio::time::timeout(Duration::from_secs(secs), ws.next()).await {
                        Ok(Some(Ok(Message::Text(t)))) => {
                            return Some(serde_json::from_str(t.as_str()).unwrap());
                        }
                        Ok(Some(Ok(_))) => continue,
                        _ => return None,
                    }
                }
            })
        };
        rt.block_on(ws.send(Message::text(
            serde_json::json!({"type": "hello", "workspace": "lunavo", "token": token}).to_string(),
        )))
        .unwrap();
        let welcome = recv(&mut ws, 10).expect("a welcome");
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        // B cannot claim anything while stopped: A delivers every web job.
        let pid_b = b.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-STOP", &pid_b])
                .status()
                .unwrap()
                .success()
        );
        for i in 0..N {
            deliver_to_any(&[a.port], i);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while db.count("SELECT COUNT(*) FROM outbox WHERE front = 'web' AND state = 'done'")
            < N as i64
        {
            assert!(Instant::now() < deadline, "A did not deliver the web jobs");
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            Command::new("kill")
                .args(["-CONT", &pid_b])
                .status()
                .unwrap()
                .success()
        );
        let mut seen = Vec::new();
        while let Some(m) = recv(&mut ws, 5) {
            if m["type"] == "thread" {
                seen.push(m["thread"]["id"].as_i64().unwrap());
            }
            if seen.len() == N {
                // Anything more would be a duplicate: wait a little for one.
                if let Some(extra) = recv(&mut ws, 2) {
                    panic!("a message after all {N} threads: {extra}");
                }
                break;
            }
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            N,
            "each thread pushed once to B's session: {seen:?}"
        );
        assert_eq!(seen.len(), N, "{seen:?}");
        drop(ws);
        a.stop();
        b.stop();
    }
}
