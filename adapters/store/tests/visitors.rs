//! The customer widget's rules on the store: publishable keys made, checked and revoked by
//! owners only; visitors resuming their conversation, each message kept once; a visitor's
//! question on core's accept path (never a command, filed once for the team when offline) and
//! the team's reply queued for the visitor in the reply's own transaction. Run against a fresh
//! SQLite file and a fresh PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[macro_use]
mod common;
use common::Db;

use krake_core::Krake;
use krake_core::actor::{Actor, Front, Role, UserName};
use krake_core::chat::command::Command;
use krake_core::config::Directory;
use krake_core::inbound::{Content, IdempotencyKey, Inbound};
use krake_core::inbox::{ThreadFilter, ThreadKind};
use krake_core::outbox::OutboxPayload;
use krake_core::ports::OutboxRepo;
use krake_core::time::{ManualClock, Timestamp};
use krake_core::visitor::{
    KeyError, NewKey, NewVisitorMessage, Refused, Speaker, VisitorId, Visitors,
};
use krake_core::workspace::WorkspaceSlug;
use std::sync::Arc;
use std::time::Duration;

on_both_db!(
    keys_are_made_checked_and_revoked_by_owners_only,
    a_visitor_resumes_their_conversation_and_each_message_is_kept_once,
    an_offline_question_is_filed_once_and_the_team_reply_is_queued_for_the_visitor
);

const KEY: &str = "kpub_0123456789abcdef0123456789abcdef";
const SHOP: &str = "https://shop.example.com";

/// Past any answer hold: what is queued is due.
fn later(c: &ManualClock) -> Timestamp {
    krake_core::time::Clock::now(c).plus(Duration::from_secs(3600))
}

fn lunavo() -> WorkspaceSlug {
    WorkspaceSlug::parse("lunavo").unwrap()
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::from_millis(1_800_000_000_000)))
}

fn rules(db: &Db, clock: Arc<ManualClock>) -> Visitors {
    Visitors::new(
        Arc::new(db.store.clone()),
        Arc::new(Directory::default()),
        clock,
    )
}

fn person(name: &str, role: Role) -> Actor {
    Actor::new(UserName::parse(name).unwrap(), Front::Web, role)
}

fn new_key() -> NewKey {
    NewKey {
        workspace: lunavo(),
        agent: None,
        origins: vec![format!("{SHOP}/")],
    }
}

async fn keys_are_made_checked_and_revoked_by_owners_only(db: &Db) {
    let v = rules(db, clock());
    let owner = person("ana", Role::Owner);
    let mut member = person("bo", Role::Member);
    member.workspace_roles.insert(lunavo(), Role::Member);
    assert!(matches!(
        v.create_key(&member, &new_key(), KEY).await,
        Err(KeyError::NotOwner(_))
    ));
    let bad_origin = NewKey {
        origins: vec!["shop.example.com/path".into()],
        ..new_key()
    };
    assert!(matches!(
        v.create_key(&owner, &bad_origin, KEY).await,
        Err(KeyError::BadOrigin(_))
    ));
    let no_agent = NewKey {
        agent: Some("Nobody".into()),
        ..new_key()
    };
    assert!(matches!(
        v.create_key(&owner, &no_agent, KEY).await,
        Err(KeyError::NoAgent(_))
    ));
    assert!(matches!(
        v.create_key(&owner, &new_key(), "kpub_short").await,
        Err(KeyError::BadKey)
    ));
    let k = v.create_key(&owner, &new_key(), KEY).await.unwrap();
    assert_eq!(k.agent, "Cassie");
    assert_eq!(k.origins, vec![SHOP.to_owned()]);
    assert_eq!(k.prefix, &KEY[..11]);

    // The page's origin, exactly; an unknown key; the key's hash only is stored.
    assert_eq!(v.check(KEY, Some(SHOP)).await.unwrap().id, k.id);
    assert_eq!(
        v.check(KEY, Some("https://shop.example.com:8443")).await,
        Err(Refused::Origin)
    );
    assert_eq!(v.check(KEY, None).await, Err(Refused::Origin));
    assert_eq!(
        v.check("kpub_0123456789abcdef0123456789abcdee", Some(SHOP))
            .await,
        Err(Refused::BadKey)
    );
    let stored = v.repo().keys(None).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!format!("{stored:?}").contains(&KEY[11..]), "{stored:?}");

    // Listing and revoking: owners of the key's workspace only.
    assert!(v.keys(&member, None).await.unwrap().is_empty());
    assert_eq!(v.keys(&owner, None).await.unwrap().len(), 1);
    assert!(matches!(
        v.revoke(&member, &KEY[..11]).await,
        Err(KeyError::NotOwner(_))
    ));
    assert!(matches!(
        v.revoke(&owner, "kpub_").await,
        Err(KeyError::ShortPrefix)
    ));
    assert!(matches!(
        v.revoke(&owner, "kpub_ffff").await,
        Err(KeyError::NoKey(_))
    ));
    let revoked = v.revoke(&owner, &KEY[..11]).await.unwrap();
    assert_eq!(revoked.len(), 1);
    assert!(revoked[0].revoked_at.is_some());
    assert_eq!(v.check(KEY, Some(SHOP)).await, Err(Refused::Revoked));
}

async fn a_visitor_resumes_their_conversation_and_each_message_is_kept_once(db: &Db) {
    let v = rules(db, clock());
    v.create_key(&person("ana", Role::Owner), &new_key(), KEY)
        .await
        .unwrap();
    let first = v
        .open(KEY, Some(SHOP), None, || "kvis_first".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.token, "kvis_first");
    assert_eq!(first.title, "Lunavo");
    assert!(first.history.is_empty());
    let id = first.visitor.id;
    let repo = v.repo();
    let said = NewVisitorMessage {
        from: Speaker::Visitor,
        name: None,
        text: "Where is my order?",
    };
    let now = Timestamp::from_millis(1_800_000_000_000);
    assert!(
        repo.append_message(id, &said, "in:1", now)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        repo.append_message(id, &said, "in:1", now)
            .await
            .unwrap()
            .is_none(),
        "the same key is kept once"
    );
    let answer = NewVisitorMessage {
        from: Speaker::Agent,
        name: Some("Cassie"),
        text: "It left today (shipping.md §2).",
    };
    repo.append_message(id, &answer, "out:7", now)
        .await
        .unwrap();

    // Resumed with the token: the same visitor and the conversation, in order.
    let again = v
        .open(KEY, Some(SHOP), Some("kvis_first"), || "kvis_unused".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.visitor.id, id);
    assert_eq!(again.token, "kvis_first");
    let texts: Vec<&str> = again.history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        ["Where is my order?", "It left today (shipping.md §2)."]
    );
    assert_eq!(again.history[1].citations(), ["shipping.md §2"]);
    assert_eq!(again.history[1].name.as_deref(), Some("Cassie"));
    let after = v.messages_after(id, again.history[0].seq).await.unwrap();
    assert_eq!(after.len(), 1);

    // An unknown token starts a new, empty conversation.
    let other = v
        .open(KEY, Some(SHOP), Some("kvis_someone-else"), || {
            "kvis_second".into()
        })
        .await
        .unwrap()
        .unwrap();
    assert_ne!(other.visitor.id, id);
    assert_eq!(other.token, "kvis_second");
    assert!(other.history.is_empty());
}

async fn an_offline_question_is_filed_once_and_the_team_reply_is_queued_for_the_visitor(db: &Db) {
    let clock = clock();
    let store = Arc::new(db.store.clone());
    let visitors = rules(db, clock.clone());
    let krake = Krake::new(
        store.clone(),
        store.clone(),
        clock.clone(),
        Directory::default(),
    )
    .with_outbox(store.clone())
    .with_visitors(visitors.clone());
    visitors
        .create_key(&person("ana", Role::Owner), &new_key(), KEY)
        .await
        .unwrap();
    let welcome = visitors
        .open(KEY, Some(SHOP), None, || "kvis_x".into())
        .await
        .unwrap()
        .unwrap();
    let visitor = welcome.visitor;
    let to = visitor.id.destination().unwrap();
    let said = |key: &str, text: &str| Inbound {
        source: Front::Visitor,
        key: IdempotencyKey::parse(key).unwrap(),
        actor: visitor.actor(),
        conversation: to.as_str().into(),
        reply_to: Some(to.clone()),
        answer_to: Some(to.clone()),
        content: Content::Text(text.into()),
    };

    // A command is refused and files nothing.
    let r = krake.accept(said("visitor:1:v1", "/todo")).await;
    assert!(
        r.reply
            .text
            .contains("Commands are only for the Lunavo team"),
        "{}",
        r.reply.text
    );
    // A question is filed once, however often it is delivered.
    let r = krake
        .accept(said("visitor:1:v2", "Do you ship to Norway?"))
        .await;
    assert!(r.fresh);
    assert!(
        r.reply.text.contains("A person will reply here"),
        "{}",
        r.reply.text
    );
    let again = krake
        .accept(said("visitor:1:v2", "Do you ship to Norway?"))
        .await;
    assert!(!again.fresh);
    let threads = krake
        .list_threads(&ThreadFilter {
            workspace: Some(lunavo()),
            ..ThreadFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(threads.len(), 1, "{threads:?}");
    assert_eq!(threads[0].kind, ThreadKind::Question);
    assert_eq!(
        threads[0].title,
        "Website visitor asks: Do you ship to Norway?"
    );
    let history = visitors.messages_after(visitor.id, 0).await.unwrap();
    let mine: Vec<&str> = history
        .iter()
        .filter(|m| m.from == Speaker::Visitor)
        .map(|m| m.text.as_str())
        .collect();
    assert_eq!(mine, ["/todo", "Do you ship to Norway?"]);

    // The team replies (as on any front): queued for the visitor under the person's name.
    let mut ana = person("ana", Role::Owner);
    ana.front = Front::Telegram;
    let r = krake
        .accept(Inbound {
            source: Front::Telegram,
            key: IdempotencyKey::parse("tg:1").unwrap(),
            actor: ana,
            conversation: "42".into(),
            reply_to: None,
            answer_to: None,
            content: Content::Command(Command::Reply {
                id: threads[0].id,
                text: "Yes, in 4 days.".into(),
            }),
        })
        .await;
    assert!(r.reply.text.contains("Replied"), "{}", r.reply.text);
    let mut sent = Vec::new();
    loop {
        let jobs = db
            .store
            .claim_outbox(
                Some("visitor"),
                "test",
                later(&clock),
                Duration::from_secs(60),
                100,
            )
            .await
            .unwrap();
        if jobs.is_empty() {
            break;
        }
        let done: Vec<_> = jobs.iter().map(|j| (j.id, None)).collect();
        db.store
            .complete_outbox_many(&done, "test", later(&clock))
            .await
            .unwrap();
        for j in jobs {
            assert_eq!(VisitorId::of(&j.destination), Some(visitor.id));
            if let OutboxPayload::Send { reply } = j.payload {
                sent.push((reply.by.clone(), reply.text));
            }
        }
    }
    let team: Vec<_> = sent.iter().filter(|(by, _)| by.is_some()).collect();
    assert_eq!(
        team,
        [&(Some("ana".to_owned()), "Yes, in 4 days.".to_owned())],
        "{sent:?}"
    );
    assert_eq!(
        sent.iter()
            .filter(|(_, t)| t.contains("A person will reply here"))
            .count(),
        1,
        "{sent:?}"
    );
}
