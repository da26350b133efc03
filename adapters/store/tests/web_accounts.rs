//! Web sign-in storage (password hashes, sessions with expiry), on a fresh SQLite file and a
//! fresh PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[macro_use]
mod common;
use common::Db;

use krake_core::actor::{Role, UserName};
use krake_core::ports::UserRepo;
use krake_core::time::Timestamp;
use krake_core::web_accounts::AccountRepo;
use krake_core::workspace::WorkspaceSlug;
use krake_store::Store;

on_both!(passwords_and_sessions);

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
