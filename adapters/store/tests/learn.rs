//! Files people send become knowledge, through core's accept path and its learner on the
//! store: filed in the event's transaction, learned once (a second copy recognised by its
//! content), refused with the reason (too large, binary, a viewer), leased so that a crashed
//! worker's job is taken over, listed, cited and forgotten (audited). Run against a fresh
//! SQLite file and a fresh PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[macro_use]
mod common;
use common::Db;

use krake_core::Krake;
use krake_core::actor::{Actor, Front, Role, UserName};
use krake_core::config::Directory;
use krake_core::inbound::{Content, IdempotencyKey, Inbound};
use krake_core::knowledge::chat::Learning;
use krake_core::knowledge::learn::{
    FileBody, LEASE as LEARN_LEASE, LearnRepo, Learner, Pass, SentFile,
};
use krake_core::knowledge::{KnowledgeBase, MemoryKnowledge};
use krake_core::outbox::{Destination, OutboxPayload};
use krake_core::ports::OutboxRepo;
use krake_core::time::{ManualClock, Timestamp};
use krake_core::workspace::WorkspaceSlug;
use std::sync::Arc;
use std::time::Duration;

on_both_db!(
    a_sent_file_is_learned_once_and_answered_where_it_was_sent,
    refusals_say_why_and_keep_nothing,
    a_crashed_workers_job_is_taken_over_after_its_lease,
    sources_are_listed_cited_and_forgotten_with_an_audit
);

const FAQ: &str = "# Returns\n\nReturns are accepted within 30 days of delivery.\n\n\
                   Refunds reach the card in 5 working days.";

struct App {
    krake: Krake,
    learner: Learner,
    knowledge: Arc<MemoryKnowledge>,
    clock: Arc<ManualClock>,
}

fn app(db: &Db) -> App {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_800_000_000_000)));
    let knowledge = Arc::new(MemoryKnowledge::new());
    let store = Arc::new(db.store.clone());
    let krake = Krake::new(
        store.clone(),
        store.clone(),
        clock.clone(),
        Directory::default(),
    )
    .with_learning(Learning {
        repo: store.clone(),
        knowledge: knowledge.clone(),
        max_bytes: 1000,
    });
    let learner = Learner::new(store, knowledge.clone(), clock.clone(), 1000);
    App {
        krake,
        learner,
        knowledge,
        clock,
    }
}

fn chat() -> Destination {
    Destination::parse("telegram:42").unwrap()
}

fn person(name: &str, role: Role) -> Actor {
    Actor::new(UserName::parse(name).unwrap(), Front::Telegram, role)
}

async fn send(app: &App, key: &str, who: Actor, content: Content) -> String {
    app.krake
        .accept(Inbound {
            source: Front::Telegram,
            key: IdempotencyKey::parse(key).unwrap(),
            actor: who,
            conversation: "42".into(),
            reply_to: None,
            answer_to: Some(chat()),
            content,
        })
        .await
        .reply
        .text
}

fn file(name: &str, bytes: &[u8]) -> Content {
    Content::File {
        file: SentFile {
            name: name.into(),
            size: None,
            body: FileBody::Bytes(bytes.to_vec()),
        },
        workspace: Some(WorkspaceSlug::parse("lunavo").unwrap()),
    }
}

/// The answers queued for the chat, delivered once, in order (one destination's messages
/// are claimed one at a time).
async fn answers(db: &Db, app: &App) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let jobs = db
            .store
            .claim_outbox(
                None,
                "test",
                app.clock.now_plus(),
                Duration::from_secs(60),
                100,
            )
            .await
            .unwrap();
        if jobs.is_empty() {
            return out;
        }
        let done: Vec<_> = jobs.iter().map(|j| (j.id, None)).collect();
        db.store
            .complete_outbox_many(&done, "test", app.clock.now_plus())
            .await
            .unwrap();
        out.extend(
            jobs.into_iter()
                .filter(|j| j.destination == chat())
                .map(|j| match j.payload {
                    OutboxPayload::Send { reply } | OutboxPayload::Replace { reply, .. } => {
                        reply.text
                    }
                    other => panic!("unexpected {other:?}"),
                }),
        );
    }
}

trait Later {
    fn now_plus(&self) -> Timestamp;
}

impl Later for ManualClock {
    /// Well after now: every held answer is due.
    fn now_plus(&self) -> Timestamp {
        use krake_core::time::Clock;
        self.now().plus(Duration::from_secs(3600))
    }
}

async fn a_sent_file_is_learned_once_and_answered_where_it_was_sent(db: &Db) {
    let app = app(db);
    let said = send(
        &app,
        "t:1",
        person("ana", Role::Member),
        file("faq.md", FAQ.as_bytes()),
    )
    .await;
    assert!(
        said.starts_with("Reading faq.md into lunavo's knowledge"),
        "{said}"
    );
    // The chat answer did not wait: nothing is in the knowledge base yet.
    assert!(app.knowledge.documents().is_empty());
    assert!(matches!(app.learner.next().await.unwrap(), Pass::Done(_)));
    assert!(matches!(app.learner.next().await.unwrap(), Pass::Idle));
    let docs = app.knowledge.documents();
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].source, "faq.md");
    assert_eq!(docs[0].title, "Returns");
    assert_eq!(docs[0].workspace, "lunavo");
    let passages = app.knowledge.passages(FAQ).len();
    assert_eq!(passages, 3);
    let out = answers(db, &app).await;
    assert!(
        out.contains(&format!(
            "Learned faq.md: {passages} passages in lunavo. Ask me about it."
        )),
        "{out:?}"
    );
    // A redelivered update files nothing again.
    send(
        &app,
        "t:1",
        person("ana", Role::Member),
        file("faq.md", FAQ.as_bytes()),
    )
    .await;
    assert!(matches!(app.learner.next().await.unwrap(), Pass::Idle));
    // The same bytes under another name: recognised by content, nothing added.
    send(
        &app,
        "t:2",
        person("bo", Role::Member),
        file("copy-of-faq.md", FAQ.as_bytes()),
    )
    .await;
    assert!(matches!(app.learner.next().await.unwrap(), Pass::Done(_)));
    assert_eq!(app.knowledge.documents().len(), 1);
    let out = answers(db, &app).await;
    assert!(
        out.iter().any(|a| a
            == "copy-of-faq.md has the same content as faq.md, already known in lunavo: nothing was added."),
        "{out:?}"
    );
    // A new version under the same name replaces the old one's passages.
    send(
        &app,
        "t:3",
        person("ana", Role::Member),
        file("faq.md", b"# Returns\n\n60 days now."),
    )
    .await;
    app.learner.next().await.unwrap();
    let docs = app.knowledge.documents();
    assert_eq!(docs.len(), 1);
    assert!(docs[0].text.contains("60 days"));
    let listed = app
        .krake
        .accept(Inbound {
            source: Front::Telegram,
            key: IdempotencyKey::parse("t:4").unwrap(),
            actor: person("ana", Role::Member),
            conversation: "42".into(),
            reply_to: None,
            answer_to: None,
            content: Content::Text("/sources lunavo".into()),
        })
        .await
        .reply
        .text;
    assert!(listed.starts_with("lunavo knows 1 file:"), "{listed}");
    assert!(
        listed.contains("faq.md — Returns, markdown, 2 passages, added by ana on telegram"),
        "{listed}"
    );
}

async fn refusals_say_why_and_keep_nothing(db: &Db) {
    let app = app(db);
    let viewer = send(
        &app,
        "r:1",
        person("vi", Role::Viewer),
        file("faq.md", FAQ.as_bytes()),
    )
    .await;
    assert_eq!(
        viewer,
        "Only members of lunavo can add to its knowledge; you are a viewer there."
    );
    let large = send(
        &app,
        "r:2",
        person("ana", Role::Member),
        file("big.md", &[b'a'; 2000]),
    )
    .await;
    assert!(
        large.starts_with("big.md is 0.0 MB; the limit is 0.0 MB"),
        "{large}"
    );
    // Nothing was filed for those two.
    assert!(matches!(app.learner.next().await.unwrap(), Pass::Idle));
    send(
        &app,
        "r:3",
        person("ana", Role::Member),
        file("notes.bin", &[0u8, 1, 2, 3, 0, 9]),
    )
    .await;
    app.learner.next().await.unwrap();
    let said = send(
        &app,
        "r:4",
        person("ana", Role::Member),
        file("logo.md", b"\x89PNG\r\n\x1a\n\0\0"),
    )
    .await;
    assert!(said.starts_with("Reading logo.md"), "{said}");
    let pass = app.learner.next().await.unwrap();
    assert!(matches!(pass, Pass::Done(_)), "{pass:?}");
    assert!(app.knowledge.documents().is_empty());
    let out = answers(db, &app).await;
    assert!(
        out.iter()
            .any(|a| a.starts_with("I could not learn notes.bin: it is not a text file")),
        "{out:?}"
    );
    assert!(
        out.iter()
            .any(|a| a.starts_with("I could not learn logo.md")),
        "{out:?}"
    );
    let none = send(
        &app,
        "r:5",
        person("ana", Role::Member),
        Content::Text("/sources lunavo".into()),
    )
    .await;
    assert!(
        none.starts_with("lunavo's knowledge holds no files yet"),
        "{none}"
    );
}

async fn a_crashed_workers_job_is_taken_over_after_its_lease(db: &Db) {
    let app = app(db);
    send(
        &app,
        "c:1",
        person("ana", Role::Member),
        file("faq.md", FAQ.as_bytes()),
    )
    .await;
    use krake_core::time::Clock;
    // Another worker claims it and dies without finishing.
    let taken = db
        .store
        .claim_learn(app.clock.now(), LEARN_LEASE)
        .await
        .unwrap()
        .expect("a job");
    assert_eq!(taken.attempts, 1);
    assert!(
        matches!(app.learner.next().await.unwrap(), Pass::Idle),
        "leased"
    );
    app.clock.advance(LEARN_LEASE + Duration::from_secs(1));
    assert!(matches!(app.learner.next().await.unwrap(), Pass::Done(_)));
    assert_eq!(app.knowledge.documents().len(), 1);
    // The dead worker coming back cannot finish it a second time.
    db.store
        .finish_learn(
            taken.id,
            &krake_core::knowledge::learn::Finish::Refused("late".into()),
            None,
            app.clock.now(),
        )
        .await
        .unwrap();
    let sources = db
        .store
        .sources(&WorkspaceSlug::parse("lunavo").unwrap())
        .await
        .unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].passages, 3);
    let out = answers(db, &app).await;
    assert_eq!(
        out.iter()
            .filter(|a| a.starts_with("Learned faq.md"))
            .count(),
        1,
        "{out:?}"
    );
}

async fn sources_are_listed_cited_and_forgotten_with_an_audit(db: &Db) {
    let app = app(db);
    send(
        &app,
        "s:1",
        person("ana", Role::Member),
        file("faq.md", FAQ.as_bytes()),
    )
    .await;
    app.learner.next().await.unwrap();
    let member = || person("ana", Role::Member);
    let cited = send(
        &app,
        "s:2",
        member(),
        Content::Text("/source faq.md §2".into()),
    )
    .await;
    assert_eq!(
        cited,
        "faq.md §2 of 3 (Returns):\nReturns are accepted within 30 days of delivery."
    );
    let beyond = send(
        &app,
        "s:3",
        member(),
        Content::Text("/source faq.md §9".into()),
    )
    .await;
    assert_eq!(beyond, "faq.md has 3 passages; ask for §1 to §3.");
    let viewer = send(
        &app,
        "s:4",
        person("vi", Role::Viewer),
        Content::Text("/forget faq.md".into()),
    )
    .await;
    assert!(
        viewer.starts_with("Only members of lunavo can remove from"),
        "{viewer}"
    );
    assert_eq!(
        app.knowledge.documents().len(),
        1,
        "a viewer forgets nothing"
    );
    let forgot = send(
        &app,
        "s:5",
        member(),
        Content::Text("/forget lunavo faq.md".into()),
    )
    .await;
    assert_eq!(forgot, "Forgot faq.md: lunavo's agents no longer know it.");
    assert!(app.knowledge.documents().is_empty());
    let again = send(
        &app,
        "s:6",
        member(),
        Content::Text("/forget faq.md".into()),
    )
    .await;
    assert!(
        again.starts_with("lunavo has learned no file called faq.md"),
        "{again}"
    );
    let audit = db
        .store
        .knowledge_audit(&WorkspaceSlug::parse("lunavo").unwrap())
        .await
        .unwrap();
    assert_eq!(
        audit,
        vec![
            (
                "faq.md".into(),
                "ana".into(),
                "telegram".into(),
                "learned".into()
            ),
            (
                "faq.md".into(),
                "ana".into(),
                "telegram".into(),
                "forgot".into()
            ),
        ]
    );
}
