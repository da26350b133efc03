//! Web sign-in storage (password hashes, sessions with expiry, a new password ending the
//! sessions; API tokens with scopes, expiry and revocation), on a fresh SQLite file and a fresh
//! PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[macro_use]
mod common;
use common::Db;

use krake_core::actor::{Role, UserName};
use krake_core::ports::{NewToken, TokenRepo, TokenScope, UserRepo};
use krake_core::time::Timestamp;
use krake_core::web_accounts::AccountRepo;
use krake_core::workspace::WorkspaceSlug;
use krake_store::Store;

on_both!(
    passwords_and_sessions,
    a_new_password_ends_the_users_sessions,
    tokens_expire_are_revoked_and_keep_their_scope,
);

async fn passwords_and_sessions(store: &Store) {
    let now = Timestamp::from_millis(1_795_503_000_000);
    let ana = UserName::parse("ana").unwrap();
    let lunavo = WorkspaceSlug::parse("lunavo").unwrap();
    store
        .upsert_user(&ana, Role::Member, Some(&lunavo), now)
        .await
        .unwrap();
    assert_eq!(store.password_hash(&ana).await.unwrap(), None);
    store
        .set_password_hash(&ana, "$argon2id$one", now)
        .await
        .unwrap();
    store
        .set_password_hash(&ana, "$argon2id$two", now)
        .await
        .unwrap();
    assert_eq!(
        store.password_hash(&ana).await.unwrap().as_deref(),
        Some("$argon2id$two")
    );

    let later = now.plus(std::time::Duration::from_secs(3600));
    store
        .create_session("h1", &ana, "csrf1", later, now)
        .await
        .unwrap();
    let s = store.session("h1", now).await.unwrap().unwrap();
    assert_eq!(s.user.name, ana);
    assert_eq!(s.user.workspace_roles.get(&lunavo), Some(&Role::Member));
    assert_eq!(s.csrf, "csrf1");
    // Unknown and expired sessions are not sessions.
    assert!(store.session("nope", now).await.unwrap().is_none());
    assert!(store.session("h1", later).await.unwrap().is_none());
    // A new session sweeps expired ones.
    store
        .create_session(
            "h2",
            &ana,
            "csrf2",
            later.plus(std::time::Duration::from_secs(60)),
            later,
        )
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM web_sessions")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(left, 1);
    store.delete_session("h2").await.unwrap();
    assert!(store.session("h2", later).await.unwrap().is_none());
    store.delete_session("h2").await.unwrap();
}

async fn a_new_password_ends_the_users_sessions(store: &Store) {
    let now = Timestamp::from_millis(1_795_503_000_000);
    let later = now.plus(std::time::Duration::from_secs(3600));
    let (ana, bo) = (
        UserName::parse("ana").unwrap(),
        UserName::parse("bo").unwrap(),
    );
    for u in [&ana, &bo] {
        store.upsert_user(u, Role::Member, None, now).await.unwrap();
        store
            .set_password_hash(u, "$argon2id$one", now)
            .await
            .unwrap();
    }
    store
        .create_session("a1", &ana, "c", later, now)
        .await
        .unwrap();
    store
        .create_session("a2", &ana, "c", later, now)
        .await
        .unwrap();
    store
        .create_session("b1", &bo, "c", later, now)
        .await
        .unwrap();
    store
        .set_password_hash(&ana, "$argon2id$two", now)
        .await
        .unwrap();
    assert!(store.session("a1", now).await.unwrap().is_none());
    assert!(store.session("a2", now).await.unwrap().is_none());
    assert!(
        store.session("b1", now).await.unwrap().is_some(),
        "only ana's"
    );
}

async fn tokens_expire_are_revoked_and_keep_their_scope(store: &Store) {
    let now = Timestamp::from_millis(1_795_503_000_000);
    let hour = std::time::Duration::from_secs(3600);
    let ana = UserName::parse("ana").unwrap();
    let lunavo = WorkspaceSlug::parse("lunavo").unwrap();
    store
        .upsert_user(&ana, Role::Owner, None, now)
        .await
        .unwrap();
    store
        .create_api_token(&ana, "aaaa1111", "old", now)
        .await
        .unwrap();
    store
        .create_token(&NewToken {
            user: &ana,
            token_hash: "bbbb2222",
            label: "ci",
            scope: TokenScope::Personal,
            expires_at: Some(now.plus(hour)),
            now,
        })
        .await
        .unwrap();
    store
        .create_token(&NewToken {
            user: &ana,
            token_hash: "cccc3333",
            label: "shop widget",
            scope: TokenScope::Widget(lunavo.clone()),
            expires_at: None,
            now: now.plus(std::time::Duration::from_secs(1)),
        })
        .await
        .unwrap();
    let g = store.token_grant("aaaa1111", now).await.unwrap().unwrap();
    assert_eq!(
        (g.user.name.clone(), g.scope, g.expires_at),
        (ana.clone(), TokenScope::Personal, None)
    );
    assert_eq!(
        store
            .token_grant("cccc3333", now)
            .await
            .unwrap()
            .unwrap()
            .scope,
        TokenScope::Widget(lunavo.clone())
    );
    // Expiry.
    assert!(store.token_grant("bbbb2222", now).await.unwrap().is_some());
    assert!(
        store
            .token_grant("bbbb2222", now.plus(hour))
            .await
            .unwrap()
            .is_none()
    );
    // Listing shows ids (hash starts), never more.
    let list = store.tokens(&ana).await.unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0].label, "shop widget");
    assert_eq!(list[0].id, "cccc3333");
    // Revoking one by its id, then all.
    assert_eq!(
        store.revoke_tokens(&ana, Some("CCCC"), now).await.unwrap(),
        1
    );
    assert!(store.token_grant("cccc3333", now).await.unwrap().is_none());
    assert!(store.token_grant("aaaa1111", now).await.unwrap().is_some());
    assert_eq!(
        store.revoke_tokens(&ana, Some("x%"), now).await.unwrap(),
        0,
        "not a wildcard"
    );
    assert_eq!(store.revoke_tokens(&ana, None, now).await.unwrap(), 2);
    assert!(store.token_grant("aaaa1111", now).await.unwrap().is_none());
    let list = store.tokens(&ana).await.unwrap();
    assert!(list.iter().all(|t| t.revoked_at == Some(now)));
    assert_eq!(store.revoke_tokens(&ana, None, now).await.unwrap(), 0);
}
