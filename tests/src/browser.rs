//! Browser-test helpers: `krake serve`, chromedriver and a headless Chromium session
//! (fantoccini), waiting on page state, screenshots (`KRAKE_SCREENSHOTS=DIR`), signing in and
//! users. Used by every `tests/tests/browser*.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use crate::krake;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The password every browser test's users sign in with.
pub const PASSWORD: &str = "correct horse battery";

/// A child process killed (and reaped) when dropped.
pub struct Killed(pub Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `krake serve` on a free port with the data directory `dir`; the process and its port.
pub fn serve(dir: &Path) -> (Killed, u16) {
    let mut child = krake(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let port = crate::listening_port(&mut child);
    (Killed(child), port)
}

/// `krake serve` with a model provider at `base_url` (streaming or not); the server, its port
/// and the config file.
pub fn serve_with_model(
    dir: &Path,
    base_url: &str,
    stream: bool,
) -> (Killed, u16, std::path::PathBuf) {
    let cfg = dir.join("krake.toml");
    std::fs::write(
        &cfg,
        format!(
            "[llm]\nmax_retries = 0\n\n[[llm.providers]]\nname = \"fake\"\nbase_url = \"{base_url}\"\nmodels = [\"fake-model\"]\nstream = {stream}\n"
        ),
    )
    .unwrap();
    let mut child = krake(dir)
        .arg("--config")
        .arg(&cfg)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let port = crate::listening_port(&mut child);
    (Killed(child), port, cfg)
}

/// chromedriver on a free port; panics (never skips) when Chromium or the driver is missing.
pub fn chromedriver() -> (Killed, u16) {
    let path = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or_else(|| {
            panic!("chromedriver is missing: install the Debian packages `chromium` and `chromium-driver` (scripts/test does)")
        });
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "chromium is missing: install the Debian packages `chromium` and `chromium-driver` (scripts/test does)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Killed(child), port)
}

/// A headless Chromium session through the chromedriver on `driver_port`.
pub async fn browser(driver_port: u16) -> Client {
    // Two rustls backends are linked into this test binary; WebDriver over loopback HTTP uses
    // neither, but the client builder needs one chosen.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900"]
        }),
    );
    ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a Chromium session through chromedriver")
}

/// Evaluates `expr` in the page until it is truthy (10 s at most); returns its value.
pub async fn until(c: &Client, what: &str, expr: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = c
            .execute(&format!("return ({expr});"), vec![])
            .await
            .unwrap_or(Value::Null);
        if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
            return v;
        }
        if Instant::now() > deadline {
            let html = c.source().await.unwrap_or_default();
            panic!("timed out waiting for {what} ({expr}); page:\n{html}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Saves a screenshot named `name` when `KRAKE_SCREENSHOTS=DIR` is set.
pub async fn shot(c: &Client, name: &str) {
    if let Ok(dir) = std::env::var("KRAKE_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        let png = c.screenshot().await.unwrap();
        std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).unwrap();
    }
}

/// Types `text` into the chat widget and presses Enter.
pub async fn say(c: &Client, text: &str) {
    let input = c.find(Locator::Css(".krake-input")).await.unwrap();
    input.send_keys(text).await.unwrap();
    input.send_keys("\u{E007}").await.unwrap(); // Enter submits the widget's form
}

/// Signs in as `ana` (the owner made by [`owner_with_password`]).
pub async fn sign_in(c: &Client, base: &str) {
    sign_in_as(c, base, "ana").await;
}

/// Signs in as `user`, whose password is [`PASSWORD`], and waits for the home page.
pub async fn sign_in_as(c: &Client, base: &str, user: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    until(c, "the sign-in page", "document.querySelector('#user')").await;
    for (id, text) in [("user", user), ("password", PASSWORD)] {
        c.find(Locator::Id(id))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }
    c.find(Locator::Css("form.login button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(c, "the inbox", "location.pathname === '/'").await;
}

/// `krake user add ana --role owner` with [`PASSWORD`].
pub fn owner_with_password(dir: &Path) {
    let mut add = krake(dir)
        .args(["user", "add", "ana", "--role", "owner", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(add.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(add.wait_with_output().unwrap().status.success());
}

/// Saves a screenshot of the whole page at `width` (the window grown to the page's height),
/// then restores the window to `width` × `height`.
pub async fn full_shot(c: &Client, name: &str, width: u32, height: u32) {
    let tall = c
        .execute("return document.documentElement.scrollHeight;", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap();
    c.set_window_size(width, u32::try_from(tall).unwrap().max(height))
        .await
        .unwrap();
    shot(c, name).await;
    c.set_window_size(width, height).await.unwrap();
}

/// `krake user add NAME --role ROLE --workspace WS`, with the password on the first call.
pub fn member(dir: &Path, name: &str, role: &str, workspace: &str, password: bool) {
    let mut cmd = krake(dir);
    cmd.args([
        "user",
        "add",
        name,
        "--role",
        role,
        "--workspace",
        workspace,
    ]);
    if password {
        cmd.arg("--password-stdin");
    }
    let mut add = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if password {
        writeln!(add.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    }
    let out = add.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A request with a bearer token: the status and the JSON body.
pub async fn api(port: u16, token: &str, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let body = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(body).unwrap()
    };
    let auth = format!("Bearer {token}");
    let res = crate::raw_http(port, method, path, &[("Authorization", &auth)], &body).await;
    let (head, body) = res.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}
