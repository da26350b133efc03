//! The Discord front end to end: the signed interactions endpoint with the real Discord PING and
//! the documented payloads, and the outbox sender against a local fake Discord REST server,
//! all over a real SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod delivery;
mod endpoint;
mod fake;

use async_trait::async_trait;
use ed25519_dalek::{Signer, SigningKey};
use fake::Fake;
use krake_core::Krake;
use krake_core::config::Directory;
use krake_core::delivery::{Deliverer, Routes};
use krake_core::inbound::{Answered, InboundId, InboundRecord, Recorded, StoredInbound};
use krake_core::outbox::KeyedOutbound;
use krake_core::ports::{InboundRepo, RepoError};
use krake_core::time::{ManualClock, Timestamp};
use krake_core::workspace::WorkspaceSlug;
use krake_discord::front::DiscordFront;
use krake_discord::rest::Rest;
use krake_discord::sender::{DiscordSender, channel_destination};
use krake_discord::verify::SignatureVerifier;
use krake_discord::{DiscordConfig, Secret};
use krake_store::Store;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

pub const LUNAVO_CHANNEL: u64 = 1_111_111_111_111_111_111;
pub const APP: u64 = 777_000_000_000_000_777;

/// shared/fixtures/discord beside the repository (or KRAKE_FIXTURES).
pub fn fixture(name: &str) -> PathBuf {
    let base = std::env::var("KRAKE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
        });
    base.join("discord").join(name)
}

pub fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

/// The RFC 8032 test key of generated_ed25519_vectors_rfc8032_key.json.
pub fn rfc_key() -> (SigningKey, String) {
    let v = fixture_json("generated_ed25519_vectors_rfc8032_key.json");
    let mut secret = [0u8; 32];
    hex::decode_to_slice(v["secret_key_hex"].as_str().unwrap(), &mut secret).unwrap();
    (
        SigningKey::from_bytes(&secret),
        v["public_key_hex"].as_str().unwrap().to_owned(),
    )
}

pub fn sign(key: &SigningKey, timestamp: &str, body: &[u8]) -> String {
    let mut msg = timestamp.as_bytes().to_vec();
    msg.extend_from_slice(body);
    hex::encode(key.sign(&msg).to_bytes())
}

/// An inbound repository that holds every new event until the test lets it pass: work that
/// takes as long as the test wants, with no clock involved.
pub struct Gate {
    pub inner: Store,
    pub open: Arc<Semaphore>,
}

#[async_trait]
impl InboundRepo for Gate {
    async fn record_inbound(&self, event: &InboundRecord) -> Result<Recorded, RepoError> {
        self.open.acquire().await.unwrap().forget();
        self.inner.record_inbound(event).await
    }
    async fn complete_inbound(
        &self,
        id: InboundId,
        response: Option<&str>,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        self.inner.complete_inbound(id, response, now).await
    }
    async fn answer_inbound(
        &self,
        id: InboundId,
        response: &str,
        reply: Option<&KeyedOutbound>,
        now: Timestamp,
    ) -> Result<Answered, RepoError> {
        self.inner.answer_inbound(id, response, reply, now).await
    }
    async fn release_answer(
        &self,
        id: InboundId,
        response: &str,
        reply: Option<&KeyedOutbound>,
        again: bool,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        self.inner
            .release_answer(id, response, reply, again, now)
            .await
    }
    async fn claim_inbound(
        &self,
        source: &str,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<StoredInbound>, RepoError> {
        self.inner
            .claim_inbound(source, owner, now, lease, limit)
            .await
    }
}

pub struct World {
    pub store: Store,
    pub clock: Arc<ManualClock>,
    pub krake: Krake,
    pub fake: Fake,
    pub rest: Arc<Rest>,
    pub front: Arc<DiscordFront>,
    pub deliverer: Deliverer,
    pub gate: Arc<Semaphore>,
    pub public_key: String,
    pub key: SigningKey,
    _dir: tempfile::TempDir,
}

impl World {
    /// A deliverer as a restarted process would have: same store, a new owner.
    pub fn new_deliverer(&self, owner: &str) -> Deliverer {
        Deliverer::new(
            Arc::new(self.store.clone()),
            Arc::new(self.store.clone()),
            Arc::new(DiscordSender::new(
                self.rest.clone(),
                Arc::new(self.store.clone()),
            )),
            self.clock.clone(),
            owner,
        )
    }

    pub fn endpoint(&self) -> axum::Router {
        krake_discord::interactions::router(
            self.front.clone(),
            SignatureVerifier::from_hex(&self.public_key).unwrap(),
        )
    }
}

/// A world whose inbound events pass freely.
pub async fn world() -> World {
    world_with(|_| {}).await
}

pub async fn world_with(tune: impl FnOnce(&mut DiscordConfig)) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Store::sqlite_url(&dir.path().join("k.db")))
        .await
        .unwrap();
    store.migrate(|_| {}).await.unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_795_503_000_000)));
    let fake = Fake::start().await;
    let (key, public_key) = rfc_key();
    let lunavo = WorkspaceSlug::parse("lunavo").unwrap();
    let mut config = DiscordConfig {
        token: Some(Secret::new("test-token")),
        public_key: Some(public_key.clone()),
        application_id: Some(APP),
        api_url: fake.url.clone(),
        ..DiscordConfig::default()
    };
    config.channels.insert(lunavo.clone(), LUNAVO_CHANNEL);
    tune(&mut config);
    let mut routes = Routes::new();
    for (ws, ch) in &config.channels {
        routes.add(ws.clone(), channel_destination(*ch).unwrap());
    }
    let gate = Arc::new(Semaphore::new(Semaphore::MAX_PERMITS));
    let krake = Krake::new(
        Arc::new(store.clone()),
        Arc::new(Gate {
            inner: store.clone(),
            open: gate.clone(),
        }),
        clock.clone(),
        Directory::default(),
    )
    .with_routes(routes)
    .with_users(Arc::new(store.clone()))
    // Agents without a model: runs can be listed and cancelled; none starts.
    .with_agents(Arc::new(krake_core::run::Runner::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        None,
        Arc::new(krake_core::knowledge::NoKnowledge),
        Arc::new(krake_core::run::RecordingExecutor::default()),
        clock.clone(),
        Directory::default(),
    )));
    let rest = Arc::new(Rest::new(&fake.url, Secret::new("test-token"), clock.clone()).unwrap());
    let front = Arc::new(DiscordFront::new(
        krake.clone(),
        Arc::new(store.clone()),
        config,
        Some(rest.clone()),
    ));
    let deliverer = Deliverer::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(DiscordSender::new(rest.clone(), Arc::new(store.clone()))),
        clock.clone(),
        "discord-test",
    );
    World {
        store,
        clock,
        krake,
        fake,
        rest,
        front,
        deliverer,
        gate,
        public_key,
        key,
        _dir: dir,
    }
}

/// Signs `body` with the RFC 8032 key and posts it to the endpoint; (status, JSON answer).
pub async fn signed(w: &World, body: &Value) -> (u16, Value) {
    use tower::ServiceExt;
    let bytes = serde_json::to_vec(body).unwrap();
    let ts = "1795503000";
    let req = axum::http::Request::post("/discord/interactions")
        .header("X-Signature-Ed25519", sign(&w.key, ts, &bytes))
        .header("X-Signature-Timestamp", ts)
        .body(axum::body::Body::from(bytes))
        .unwrap();
    let res = w.endpoint().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The documented button click, pressed by `user` in the Lunavo channel with `custom_id`.
pub async fn press(w: &World, user: &str, custom_id: &str) -> (u16, Value) {
    // Every click is its own interaction, with its own id (the fixture's id once each).
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut p = fixture_json("docs_message_component_button_click.json");
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if n > 0 {
        p["id"] = Value::from(format!("{}{n}", p["id"].as_str().unwrap_or("1")));
    }
    p["data"]["custom_id"] = Value::from(custom_id);
    p["member"]["user"]["id"] = Value::from(user);
    p["channel_id"] = Value::from(LUNAVO_CHANNEL.to_string());
    signed(w, &p).await
}

/// Adds Krake user `name` (member) and links Discord user `discord_id` to it with `/link`.
pub async fn link(w: &World, discord_id: &str, name: &str) {
    use krake_core::actor::{Role, UserName};
    use krake_core::ports::UserRepo;
    use krake_core::time::Clock;
    let user = UserName::parse(name).unwrap();
    w.store
        .upsert_user(&user, Role::Member, None, w.clock.now())
        .await
        .unwrap();
    let code = format!("K{}", name.to_uppercase());
    w.store
        .create_link_code(&user, &code, w.clock.now().plus(Duration::from_secs(900)))
        .await
        .unwrap();
    let mut cmd = fixture_json("docs_application_command_slash_with_options.json");
    cmd["id"] = Value::from(format!("9{discord_id}"));
    cmd["member"]["user"]["id"] = Value::from(discord_id);
    cmd["data"] = serde_json::json!({
        "type": 1, "name": "link", "id": "1",
        "options": [{ "type": 3, "name": "code", "value": code.to_lowercase() }]
    });
    let (status, answer) = signed(w, &cmd).await;
    assert_eq!(status, 200);
    let content = answer["data"]["content"].as_str().unwrap();
    assert!(content.starts_with("Linked"), "{content}");
}
