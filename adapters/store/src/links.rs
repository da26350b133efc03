//! [`ThreadLinkRepo`] on SQL: which place on a front (a Discord thread) stands for which inbox
//! thread.

use crate::{Store, db_err};
use async_trait::async_trait;
use krake_core::actor::Front;
use krake_core::inbox::ThreadId;
use krake_core::ports::{RepoError, ThreadLinkRepo};

#[async_trait]
impl ThreadLinkRepo for Store {
    async fn link_thread(
        &self,
        front: Front,
        place: &str,
        thread: ThreadId,
    ) -> Result<(), RepoError> {
        sqlx::query(
            "INSERT INTO thread_links (front, place, thread_id) VALUES ($1, $2, $3) \
             ON CONFLICT (front, place) DO NOTHING",
        )
        .bind(front.as_str())
        .bind(place)
        .bind(thread.0)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn linked_thread(
        &self,
        front: Front,
        place: &str,
    ) -> Result<Option<ThreadId>, RepoError> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT thread_id FROM thread_links WHERE front = $1 AND place = $2",
        )
        .bind(front.as_str())
        .bind(place)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(id.map(ThreadId))
    }
}
