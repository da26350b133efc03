//! Fronts' small durable state: update-stream cursors and the parts of outbox messages sent.

use crate::{Store, db_err};
use async_trait::async_trait;
use krake_core::outbox::OutboxId;
use krake_core::ports::{FrontStateRepo, RepoError};
use krake_core::time::Timestamp;
use sqlx::Row;

#[async_trait]
impl FrontStateRepo for Store {
    async fn cursor(&self, front: &str) -> Result<Option<i64>, RepoError> {
        sqlx::query_scalar("SELECT cursor FROM front_cursors WHERE front = $1")
            .bind(front)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn save_cursor(&self, front: &str, cursor: i64) -> Result<(), RepoError> {
        // Only forward: a slow writer never moves the cursor back over handled updates.
        sqlx::query(
            "INSERT INTO front_cursors (front, cursor, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (front) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at \
             WHERE front_cursors.cursor < excluded.cursor",
        )
        .bind(front)
        .bind(cursor)
        .bind(now_millis())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn sent_parts(&self, outbox: OutboxId) -> Result<Vec<(i32, String)>, RepoError> {
        let rows = sqlx::query(
            "SELECT part, message_id FROM front_sent_parts WHERE outbox_id = $1 ORDER BY part",
        )
        .bind(outbox.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let part: i64 = r.try_get("part").map_err(db_err)?;
                Ok((
                    i32::try_from(part).unwrap_or(i32::MAX),
                    r.try_get("message_id").map_err(db_err)?,
                ))
            })
            .collect()
    }

    async fn record_sent_part(
        &self,
        outbox: OutboxId,
        part: i32,
        message_id: &str,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        sqlx::query(
            "INSERT INTO front_sent_parts (outbox_id, part, message_id, sent_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (outbox_id, part) DO NOTHING",
        )
        .bind(outbox.0)
        .bind(i64::from(part))
        .bind(message_id)
        .bind(now.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
