//! Knowledge from where people are, end to end on the real `krake serve` against a local
//! Telegram (getFile and the file endpoint serve the bytes as Telegram does): files sent in
//! chat are learned once and answered from with their citation; too large files, images and
//! encrypted PDFs are refused with the reason; a viewer can neither add nor forget; a kill in
//! the middle of a long file resumes and learns it once.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_rag::extract::{sample_encrypted_pdf, sample_pdf};
use krake_tests::fake_telegram::{FakeTelegram, TOKEN};
use krake_tests::{krake, run, spawn_serve, stop};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const ANA: i64 = 42;
const VI: i64 = 43;

fn message(update_id: u64, user: i64, body: Value) -> Value {
    let mut m = json!({
        "message_id": 100 + update_id,
        "from": {"id": user, "is_bot": false, "first_name": "Person"},
        "chat": {"id": user, "type": "private", "first_name": "Person"},
        "date": 1_795_503_000
    });
    for (k, v) in body.as_object().unwrap() {
        m[k] = v.clone();
    }
    json!({"update_id": update_id, "message": m})
}

fn text(update_id: u64, user: i64, t: &str) -> Value {
    message(update_id, user, json!({"text": t}))
}

fn document(update_id: u64, user: i64, file_id: &str, name: &str, size: usize) -> Value {
    message(
        update_id,
        user,
        json!({"document": {
            "file_name": name, "mime_type": "application/octet-stream",
            "file_id": file_id, "file_unique_id": format!("u-{file_id}"), "file_size": size
        }}),
    )
}

async fn serve(fake: &FakeTelegram, dir: &Path, models: bool) -> (std::process::Child, u16) {
    let config = dir.join("krake.toml");
    std::fs::write(
        &config,
        format!(
            "[telegram]\napi_url = \"{}\"\npoll_timeout_secs = 1\n",
            fake.url
        ),
    )
    .unwrap();
    let mut cmd = krake(dir);
    cmd.args(["--config"])
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KRAKE_TELEGRAM_TOKEN", TOKEN)
        .env("KRAKE_LOG", "info");
    if models {
        let models = std::env::var("KRAKE_MODELS_DIR")
            .expect("KRAKE_MODELS_DIR names the local embedder's weights (scripts/test sets it)");
        cmd.env("KRAKE_MODELS_DIR", models);
    }
    let (child, port, logs) = spawn_serve(cmd).await;
    // The server's log goes to the test's stderr (shown when the test fails).
    std::thread::spawn(move || {
        for line in logs {
            eprintln!("serve: {line}");
        }
    });
    (child, port)
}

/// Adds `name` with `role` and links Telegram user `user` to them.
async fn linked(fake: &FakeTelegram, dir: &Path, name: &str, role: &str, user: i64, update: u64) {
    let (ok, _, err) = run(krake(dir).args(["user", "add", name, "--role", role]));
    assert!(ok, "{err}");
    let (ok, code, err) = run(krake(dir).args(["user", "link-code", name]));
    assert!(ok, "{err}");
    let before = fake.sent().len();
    fake.push_update(text(update, user, &format!("/link {}", code.trim())));
    said(fake, before, |t| t.contains("Linked")).await;
}

/// Waits for a message sent after the first `from` that `matches`, and returns its text.
async fn said(fake: &FakeTelegram, from: usize, matches: impl Fn(&str) -> bool) -> String {
    let found = async {
        loop {
            let texts: Vec<String> = fake
                .sent()
                .iter()
                .skip(from)
                .chain(fake.edits().iter())
                .map(|(b, _)| {
                    // The tone's mark the front puts first (✅, ⚠️, ❌) is not part of the words.
                    let t = b["text"].as_str().unwrap_or_default();
                    ["✅ ", "⚠\u{fe0f} ", "❌ "]
                        .iter()
                        .find_map(|m| t.strip_prefix(m))
                        .unwrap_or(t)
                        .to_owned()
                })
                .collect();
            if let Some(t) = texts.into_iter().find(|t| matches(t)) {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(150), found)
        .await
        .unwrap_or_else(|_| {
            let all: Vec<Value> = fake
                .sent()
                .into_iter()
                .map(|(b, _)| b["text"].clone())
                .collect();
            panic!("no such message; sent: {all:#?}")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_sent_on_telegram_are_learned_once_and_answered_from_with_the_citation() {
    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (child, _port) = serve(&fake, dir.path(), false).await;
    linked(&fake, dir.path(), "ana", "member", ANA, 1).await;

    let pdf = sample_pdf(&[
        "Returns are accepted within 30 days of delivery.",
        "Refunds reach the card within 5 working days of the return arriving.",
    ]);
    fake.add_file("pdf-1", pdf.clone());
    let n = fake.sent().len();
    fake.push_update(document(2, ANA, "pdf-1", "returns-policy.pdf", pdf.len()));
    let queued = said(&fake, n, |t| t.starts_with("Reading returns-policy.pdf")).await;
    assert!(
        queued.contains("I'll say here when it is learned"),
        "{queued}"
    );
    let learned = said(&fake, n, |t| t.starts_with("Learned returns-policy.pdf")).await;
    assert!(
        learned.ends_with("passages in lunavo. Ask me about it.")
            || learned.ends_with("passage in lunavo. Ask me about it."),
        "{learned}"
    );

    let md = "# Shipping\n\nWe ship hoodies to Porto with DHL within 3 days.";
    fake.add_file("md-1", md.as_bytes().to_vec());
    fake.push_update(document(3, ANA, "md-1", "shipping.md", md.len()));
    said(&fake, n, |t| {
        t.starts_with("Learned shipping.md: 1 passage in lunavo")
    })
    .await;

    // The next ask is answered from both, with their citations (offline: no model here).
    let n = fake.sent().len();
    fake.push_update(text(4, ANA, "/ask cassie how many days do refunds take?"));
    let answer = said(&fake, n, |t| t.contains("Offline answer")).await;
    assert!(answer.contains("(returns-policy.pdf §1)"), "{answer}");
    assert!(answer.contains("5 working days"), "{answer}");
    let n = fake.sent().len();
    fake.push_update(text(5, ANA, "/ask cassie which courier goes to Porto?"));
    let answer = said(&fake, n, |t| t.contains("Offline answer")).await;
    assert!(answer.contains("(shipping.md §1)"), "{answer}");
    // A citation opens its passage.
    let n = fake.sent().len();
    fake.push_update(text(6, ANA, "/source returns-policy.pdf §1"));
    let passage = said(&fake, n, |t| t.starts_with("returns-policy.pdf §1 of")).await;
    assert!(passage.contains("Refunds reach the card"), "{passage}");

    // The same file sent again (a new file_id, the same bytes) is recognised: nothing twice.
    fake.add_file("pdf-2", pdf.clone());
    let n = fake.sent().len();
    fake.push_update(document(7, ANA, "pdf-2", "returns-policy.pdf", pdf.len()));
    said(&fake, n, |t| {
        t == "returns-policy.pdf is already known in lunavo: it is the same file, so nothing was added."
    })
    .await;
    let n = fake.sent().len();
    fake.push_update(text(8, ANA, "/sources"));
    let sources = said(&fake, n, |t| t.starts_with("lunavo knows")).await;
    assert!(sources.starts_with("lunavo knows 2 files:"), "{sources}");
    assert!(sources.contains("returns-policy.pdf — pdf, "), "{sources}");
    assert!(sources.contains("added by ana on telegram"), "{sources}");

    // Forgotten: the next ask no longer finds it.
    let n = fake.sent().len();
    fake.push_update(text(9, ANA, "/forget returns-policy.pdf"));
    said(&fake, n, |t| {
        t == "Forgot returns-policy.pdf: lunavo's agents no longer know it."
    })
    .await;
    let n = fake.sent().len();
    fake.push_update(text(10, ANA, "/ask cassie how many days do refunds take?"));
    let answer = said(&fake, n, |t| t.contains("Offline")).await;
    assert!(!answer.contains("returns-policy.pdf"), "{answer}");
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_files_images_and_encrypted_pdfs_are_refused_and_viewers_cannot_add_or_forget() {
    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (child, _port) = serve(&fake, dir.path(), false).await;
    linked(&fake, dir.path(), "ana", "member", ANA, 1).await;
    linked(&fake, dir.path(), "vi", "viewer", VI, 2).await;

    // 30 MB, as Telegram announces it: refused before anything is downloaded.
    let n = fake.sent().len();
    fake.push_update(document(3, ANA, "big-1", "catalogue.pdf", 30 * 1024 * 1024));
    let big = said(&fake, n, |t| t.starts_with("catalogue.pdf is")).await;
    assert!(
        big.contains("30.0 MB; the limit is 20.0 MB per file"),
        "{big}"
    );

    // A photo: fetched, recognised as an image by its bytes.
    fake.add_file(
        "photo-1",
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01".to_vec(),
    );
    fake.push_update(message(
        4,
        ANA,
        json!({"photo": [{"file_id": "photo-1", "file_unique_id": "p1", "width": 1, "height": 1, "file_size": 20}]}),
    ));
    let photo = said(&fake, n, |t| t.starts_with("I could not learn photo.jpg")).await;
    assert!(
        photo.contains("it is an image") && photo.contains("OCR"),
        "{photo}"
    );

    let locked = sample_encrypted_pdf(&["Wholesale prices."], "s3cret");
    fake.add_file("enc-1", locked.clone());
    fake.push_update(document(5, ANA, "enc-1", "prices.pdf", locked.len()));
    let enc = said(&fake, n, |t| t.starts_with("I could not learn prices.pdf")).await;
    assert!(enc.contains("encrypted"), "{enc}");

    // A viewer can neither add nor forget.
    let md = b"# Sizes\n\nHoodies run small.".to_vec();
    fake.add_file("md-v", md.clone());
    fake.push_update(document(6, VI, "md-v", "sizes.md", md.len()));
    let refused = said(&fake, n, |t| {
        t.starts_with("Only members of lunavo can add")
    })
    .await;
    assert!(refused.contains("you are a viewer there"), "{refused}");
    fake.add_file("md-a", md.clone());
    fake.push_update(document(7, ANA, "md-a", "sizes.md", md.len()));
    said(&fake, n, |t| t.starts_with("Learned sizes.md")).await;
    fake.push_update(text(8, VI, "/forget sizes.md"));
    said(&fake, n, |t| {
        t.starts_with("Only members of lunavo can remove")
    })
    .await;
    let m = fake.sent().len();
    fake.push_update(text(9, VI, "/sources"));
    let sources = said(&fake, m, |t| t.starts_with("lunavo knows")).await;
    assert!(sources.starts_with("lunavo knows 1 file:"), "{sources}");

    // Nothing was downloaded for the refused 30 MB file; nothing was kept of the refused ones.
    assert!(
        fake.calls_of("getFile")
            .iter()
            .all(|c| c.body["file_id"] != json!("big-1")),
        "the large file was never fetched"
    );
    assert_eq!(fake.downloads().len(), 3, "{:?}", fake.downloads());
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_in_the_middle_of_a_long_file_resumes_and_learns_it_once() {
    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, _port) = serve(&fake, dir.path(), true).await;
    linked(&fake, dir.path(), "ana", "member", ANA, 1).await;
    // About 1,200 passages: long enough to show progress and to be killed part-way.
    let long: String = (0..1200)
        .map(|i| {
            format!(
                "## Product {i}\n\nThe hoodie model {i} is made of organic cotton batch {}, \
                 ships from warehouse {} and costs {} euros.\n\n",
                i * 7,
                i % 13,
                20 + i % 50
            )
        })
        .collect();
    fake.add_file("long-1", long.clone().into_bytes());
    let n = fake.sent().len();
    fake.push_update(document(2, ANA, "long-1", "catalogue.md", long.len()));
    let progress = said(&fake, n, |t| t.starts_with("Learning catalogue.md:")).await;
    assert!(progress.contains("passages"), "{progress}");
    child.kill().unwrap();
    child.wait().unwrap();

    let (child, _port) = serve(&fake, dir.path(), true).await;
    let done = said(&fake, n, |t| t.starts_with("Learned catalogue.md:")).await;
    let passages: usize = done
        .trim_start_matches("Learned catalogue.md: ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(passages >= 1200, "{done}");
    stop(child);
    // The knowledge base holds each passage once.
    let k = krake_rag::knowledge::Knowledge::open_at(
        &dir.path().join("knowledge"),
        Path::new(&std::env::var("KRAKE_MODELS_DIR").unwrap()),
        &dir.path().join("embedding-cache"),
    )
    .unwrap();
    assert_eq!(k.store.count().await.unwrap(), passages);
    let learned: Vec<_> = fake
        .sent()
        .iter()
        .chain(fake.edits().iter())
        .filter(|(b, _)| {
            b["text"]
                .as_str()
                .unwrap_or_default()
                .contains("Learned catalogue.md")
        })
        .map(|(_, id)| *id)
        .collect();
    assert_eq!(learned.len(), 1, "answered once");
}
