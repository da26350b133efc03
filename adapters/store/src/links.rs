//! [`ThreadLinkRepo`] on SQL: which place on a front (a Discord thread) stands for which inbox
//! thread.

use crate::{Store, corrupt, db_err};
use async_trait::async_trait;
use krake_core::actor::Front;
use krake_core::inbox::ThreadId;
use krake_core::ports::{RepoError, ThreadLink, ThreadLinkRepo};
use krake_core::workspace::WorkspaceSlug;
use sqlx::Row;

#[async_trait]
impl ThreadLinkRepo for Store {
    async fn link_thread(
        &self,
        front: Front,
        place: &str,
        link: &ThreadLink,
    ) -> Result<(), RepoError> {
        sqlx::query(
            "INSERT INTO thread_links (front, place, thread_id) VALUES ($1, $2, $3) \
             ON CONFLICT (front, place) DO NOTHING",
        )
        .bind(front.as_str())
        .bind(place)
        .bind(link.thread.0)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn linked_thread(
        &self,
        front: Front,
        place: &str,
    ) -> Result<Option<ThreadLink>, RepoError> {
        let row = sqlx::query(
            "SELECT l.thread_id, t.workspace FROM thread_links l JOIN threads t ON t.id = l.thread_id \
             WHERE l.front = $1 AND l.place = $2",
        )
        .bind(front.as_str())
        .bind(place)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let ws: String = row.try_get("workspace").map_err(db_err)?;
        Ok(Some(ThreadLink {
            thread: ThreadId(row.try_get("thread_id").map_err(db_err)?),
            workspace: WorkspaceSlug::parse(&ws).map_err(|_| corrupt("workspace", &ws))?,
        }))
    }
}
