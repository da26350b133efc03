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
/// Up to 270 s: a 1,200-passage file learned in a debug build on a loaded 2-core machine took
/// over 150 s (the test's nextest limit is 300 s).
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
    tokio::time::timeout(Duration::from_secs(270), found)
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

/// Discord: files sent as message attachments (over the gateway) and with `/learn` (through
/// the signed interactions endpoint) on `krake serve`, against the local Discord, which serves
/// the attachments from its own host as Discord's CDN does.
mod discord {
    use super::{krake, run, sample_pdf, spawn_serve, stop};
    use ed25519_dalek::{Signer, SigningKey};
    use krake_tests::fake_discord::{APP, BOT, FakeDiscord};
    use serde_json::{Value, json};
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    /// lunavo's home channel.
    const LUNAVO: u64 = 1_311_111_111_111_111_111;
    const GUILD: u64 = 290_926_798_626_357_999;
    const ANA: u64 = 53_908_232_506_183_680;
    const VI: u64 = 53_908_232_506_183_681;
    /// The RFC 8032 test key (shared/fixtures/discord/generated_ed25519_vectors_rfc8032_key.json).
    const SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    static NEXT: AtomicU64 = AtomicU64::new(1_320_000_000_000_000_000);

    fn snowflake() -> u64 {
        NEXT.fetch_add(1, Ordering::SeqCst)
    }

    async fn serve(fake: &FakeDiscord, dir: &Path) -> std::process::Child {
        let config = dir.join("krake.toml");
        std::fs::write(
            &config,
            format!("[discord.channels]\nlunavo = \"{LUNAVO}\"\n"),
        )
        .unwrap();
        let mut cmd = krake(dir);
        cmd.args(["--config"])
            .arg(&config)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("KRAKE_DISCORD_TOKEN", "MTIz.NDU2.fake-token")
            .env("KRAKE_DISCORD_API_URL", &fake.url)
            .env("KRAKE_DISCORD_GATEWAY_URL", fake.gateway_url())
            .env("KRAKE_DISCORD_PUBLIC_KEY", PUBLIC)
            .env("KRAKE_DISCORD_APPLICATION_ID", APP.to_string())
            .env("KRAKE_LOG", "info");
        let (child, port, logs) = spawn_serve(cmd).await;
        std::thread::spawn(move || {
            for line in logs {
                eprintln!("serve: {line}");
            }
        });
        PORT.store(u64::from(port), Ordering::SeqCst);
        fake.ready().await;
        child
    }

    static PORT: AtomicU64 = AtomicU64::new(0);

    /// A MESSAGE_CREATE from `user` in `channel` (a DM when `guild` is false).
    fn message(user: u64, channel: u64, guild: bool, text: &str, attachments: Value) -> Value {
        let mentions = if text.contains(&format!("<@{BOT}>")) {
            json!([{"id": BOT.to_string(), "username": "Krake", "discriminator": "0", "avatar": null, "bot": true}])
        } else {
            json!([])
        };
        let mut m = json!({
            "id": snowflake().to_string(), "channel_id": channel.to_string(), "type": 0,
            "author": {"id": user.to_string(), "username": format!("user{user}"), "discriminator": "0", "avatar": null},
            "content": text, "timestamp": "2026-12-07T10:00:00.000000+00:00", "edited_timestamp": null,
            "tts": false, "mention_everyone": false, "mentions": mentions, "mention_roles": [],
            "attachments": attachments, "embeds": [], "pinned": false, "flags": 0
        });
        if guild {
            m["guild_id"] = json!(GUILD.to_string());
        }
        m
    }

    /// An attachment object as MESSAGE_CREATE and `resolved` carry it.
    fn attachment(id: u64, name: &str, size: usize, url: &str) -> Value {
        json!({"id": id.to_string(), "filename": name, "size": size, "url": url, "proxy_url": url,
               "content_type": "application/octet-stream"})
    }

    /// Waits for a text Krake sent that `matches`, and returns it.
    async fn said(fake: &FakeDiscord, matches: impl Fn(&str) -> bool) -> String {
        let found = async {
            loop {
                if let Some(t) = fake.texts().into_iter().find(|t| matches(t)) {
                    return t;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(150), found)
            .await
            .unwrap_or_else(|_| panic!("no such message; sent: {:#?}", fake.texts()))
    }

    /// Adds `name` with `role` and links Discord user `user` to them (a DM with `/link`).
    async fn linked(fake: &FakeDiscord, dir: &Path, name: &str, role: &str, user: u64) {
        let (ok, _, err) = run(krake(dir).args(["user", "add", name, "--role", role]));
        assert!(ok, "{err}");
        let (ok, code, err) = run(krake(dir).args(["user", "link-code", name]));
        assert!(ok, "{err}");
        let dm = user + 1_000;
        let before = fake.said_in(dm).len();
        let m = message(
            user,
            dm,
            false,
            &format!("/link {}", code.trim()),
            json!([]),
        );
        fake.dispatch("MESSAGE_CREATE", m);
        let found = async {
            while !fake
                .said_in(dm)
                .iter()
                .skip(before)
                .any(|t| t.contains("Linked"))
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), found)
            .await
            .unwrap_or_else(|_| panic!("not linked; sent: {:#?}", fake.texts()));
    }

    /// Posts a signed interaction to the endpoint and returns the response body.
    async fn interaction(body: &Value) -> Value {
        let key = SigningKey::from_bytes(&hex::decode(SECRET).unwrap().try_into().unwrap());
        let raw = body.to_string();
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .to_string();
        let mut signed = ts.as_bytes().to_vec();
        signed.extend_from_slice(raw.as_bytes());
        let sig = hex::encode(key.sign(&signed).to_bytes());
        let port = PORT.load(Ordering::SeqCst) as u16;
        let res = krake_tests::raw_http(
            port,
            "POST",
            "/discord/interactions",
            &[
                ("X-Signature-Ed25519", sig.as_str()),
                ("X-Signature-Timestamp", ts.as_str()),
            ],
            raw.as_bytes(),
        )
        .await;
        assert!(res.starts_with("HTTP/1.1 200"), "{res}");
        let body = &res[res.find("\r\n\r\n").unwrap() + 4..];
        serde_json::from_str(body).unwrap()
    }

    /// `/learn` used by `user` in `channel` with attachment `file`.
    fn learn(user: u64, channel: u64, file: Value, workspace: Option<&str>) -> Value {
        let id = file["id"].as_str().unwrap().to_owned();
        let mut options = vec![json!({"type": 11, "name": "file", "value": id})];
        if let Some(w) = workspace {
            options.push(json!({"type": 3, "name": "workspace", "value": w}));
        }
        let i = snowflake();
        json!({
            "id": i.to_string(), "application_id": APP.to_string(), "type": 2,
            "token": format!("token-{i}"), "guild_id": GUILD.to_string(), "channel_id": channel.to_string(),
            "member": {"user": {"id": user.to_string(), "username": format!("user{user}")}, "nick": null},
            "data": {"id": "1", "name": "learn", "type": 1, "options": options,
                     "resolved": {"attachments": {id: file}}}
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn files_sent_on_discord_are_learned_and_answered_from_with_the_citation() {
        let fake = FakeDiscord::start().await;
        let dir = tempfile::tempdir().unwrap();
        let child = serve(&fake, dir.path()).await;
        linked(&fake, dir.path(), "ana", "member", ANA).await;

        // A Markdown file attached to a message in lunavo's channel.
        let md = "# Shipping\n\nWe ship hoodies to Porto with DHL within 3 days.";
        let id = snowflake();
        let url = fake.add_attachment(LUNAVO, id, "shipping.md", md.as_bytes().to_vec());
        let files = json!([attachment(id, "shipping.md", md.len(), &url)]);
        let m = message(ANA, LUNAVO, true, "our shipping rules", files);
        fake.dispatch("MESSAGE_CREATE", m.clone());
        let reading = said(&fake, |t| t.starts_with("Reading shipping.md")).await;
        assert!(
            reading.contains("I'll say here when it is learned"),
            "{reading}"
        );
        let learned = said(&fake, |t| t.starts_with("Learned shipping.md")).await;
        assert_eq!(
            learned,
            "Learned shipping.md: 1 passage in lunavo. Ask me about it."
        );
        assert!(
            fake.said_in(LUNAVO).contains(&learned),
            "said in the channel the file was sent in"
        );
        // The same message again (a gateway replay) does nothing twice.
        fake.dispatch("MESSAGE_CREATE", m);

        // A PDF with /learn, in the same channel: answered inline, learned into its workspace.
        let pdf = sample_pdf(&[
            "Returns are accepted within 30 days of delivery.",
            "Refunds reach the card within 5 working days of the return arriving.",
        ]);
        let id = snowflake();
        let url = fake.add_attachment(LUNAVO, id, "returns-policy.pdf", pdf.clone());
        let answer = interaction(&learn(
            ANA,
            LUNAVO,
            attachment(id, "returns-policy.pdf", pdf.len(), &url),
            None,
        ))
        .await;
        assert_eq!(answer["type"], 4, "{answer}");
        let inline = answer["data"]["content"].as_str().unwrap_or_default();
        assert!(inline.contains("Reading returns-policy.pdf"), "{answer}");
        let learned = said(&fake, |t| t.starts_with("Learned returns-policy.pdf")).await;
        assert!(
            learned.contains(" in lunavo. Ask me about it."),
            "{learned}"
        );
        assert!(fake.said_in(LUNAVO).contains(&learned));

        // The next ask is answered from both, with their citations (offline: no model here).
        let ask = format!("<@{BOT}> /ask cassie how many days do refunds take?");
        fake.dispatch(
            "MESSAGE_CREATE",
            message(ANA, LUNAVO, true, &ask, json!([])),
        );
        let answer = said(&fake, |t| t.contains("(returns-policy.pdf §1)")).await;
        assert!(answer.contains("Offline answer"), "{answer}");
        assert!(answer.contains("5 working days"), "{answer}");
        let ask = format!("<@{BOT}> /ask cassie which courier goes to Porto?");
        fake.dispatch(
            "MESSAGE_CREATE",
            message(ANA, LUNAVO, true, &ask, json!([])),
        );
        let answer = said(&fake, |t| t.contains("(shipping.md §1)")).await;
        assert!(answer.contains("DHL"), "{answer}");

        // Each file was downloaded once, from the local Discord's own host.
        let downloads = fake.downloads();
        assert_eq!(downloads.len(), 2, "{downloads:?}");
        let learned_md = fake
            .texts()
            .iter()
            .filter(|t| t.starts_with("Learned shipping.md"))
            .count();
        assert_eq!(learned_md, 1, "the replayed message learned nothing twice");
        stop(child);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn too_large_attachments_are_refused_unread_and_viewers_cannot_add() {
        let fake = FakeDiscord::start().await;
        let dir = tempfile::tempdir().unwrap();
        let child = serve(&fake, dir.path()).await;
        linked(&fake, dir.path(), "ana", "member", ANA).await;
        linked(&fake, dir.path(), "vi", "viewer", VI).await;

        // 30 MB as Discord announces it: refused before anything is downloaded.
        let id = snowflake();
        let url = format!("{}/attachments/{LUNAVO}/{id}/catalogue.pdf", fake.url);
        let big = json!([{"id": id.to_string(), "filename": "catalogue.pdf", "size": 31_457_280,
                          "url": url, "proxy_url": url, "content_type": "application/pdf"}]);
        fake.dispatch("MESSAGE_CREATE", message(ANA, LUNAVO, true, "", big));
        let refused = said(&fake, |t| t.starts_with("catalogue.pdf is")).await;
        assert!(
            refused.contains("30.0 MB; the limit is 20.0 MB per file"),
            "{refused}"
        );

        // A viewer can add nothing, by message or by /learn.
        let md = b"# Sizes\n\nHoodies run small.".to_vec();
        let id = snowflake();
        let url = fake.add_attachment(LUNAVO, id, "sizes.md", md.clone());
        let file = attachment(id, "sizes.md", md.len(), &url);
        let text = format!("<@{BOT}> sizes");
        fake.dispatch(
            "MESSAGE_CREATE",
            message(VI, LUNAVO, true, &text, json!([file.clone()])),
        );
        let refused = said(&fake, |t| t.starts_with("Only members of lunavo can add")).await;
        assert!(refused.contains("you are a viewer there"), "{refused}");
        let answer = interaction(&learn(VI, LUNAVO, file, Some("lunavo"))).await;
        let inline = answer["data"]["content"].as_str().unwrap_or_default();
        assert!(
            inline.starts_with("Only members of lunavo can add"),
            "{answer}"
        );

        // Chatter with a file in a channel that is no workspace's home is someone else's.
        let id = snowflake();
        let url = fake.add_attachment(5, id, "notes.md", md.clone());
        fake.dispatch(
            "MESSAGE_CREATE",
            message(
                ANA,
                5,
                true,
                "notes",
                json!([attachment(id, "notes.md", md.len(), &url)]),
            ),
        );
        // Something for Krake after it shows the chatter was passed over, not answered.
        let n = fake.said_in(LUNAVO).len();
        let ask = format!("<@{BOT}> /sources");
        fake.dispatch(
            "MESSAGE_CREATE",
            message(ANA, LUNAVO, true, &ask, json!([])),
        );
        let found = async {
            while fake.said_in(LUNAVO).len() == n {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), found)
            .await
            .unwrap();
        assert_eq!(
            fake.said_in(5),
            Vec::<String>::new(),
            "nothing said in channel 5"
        );

        // Nothing was downloaded: the large file was refused by its size, the rest by role.
        assert_eq!(fake.downloads(), Vec::<String>::new());
        stop(child);
    }
}
