//! Web sign-in on SQL: password hashes and sessions (stored under the hash of their id).

use crate::{Store, db_err};
use async_trait::async_trait;
use krake_core::actor::UserName;
use krake_core::ports::RepoError;
use krake_core::time::Timestamp;
use krake_core::web_accounts::{AccountRepo, WebSession};
use sqlx::Row;

#[async_trait]
impl AccountRepo for Store {
    async fn set_password_hash(
        &self,
        user: &UserName,
        hash: &str,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        // A new password ends every session of the user, in the same transaction: whoever
        // knew the old one is signed out everywhere.
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO user_passwords (user_name, hash, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_name) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at",
        )
        .bind(user.as_str())
        .bind(hash)
        .bind(now.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query("DELETE FROM web_sessions WHERE user_name = $1")
            .bind(user.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    async fn password_hash(&self, user: &UserName) -> Result<Option<String>, RepoError> {
        sqlx::query_scalar("SELECT hash FROM user_passwords WHERE user_name = $1")
            .bind(user.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn create_session(
        &self,
        id_hash: &str,
        user: &UserName,
        csrf: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        // Expired sessions are removed as new ones are made, so the table stays small.
        sqlx::query("DELETE FROM web_sessions WHERE expires_at <= $1")
            .bind(now.as_millis())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, user_name, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id_hash)
        .bind(user.as_str())
        .bind(csrf)
        .bind(now.as_millis())
        .bind(expires_at.as_millis())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn session(
        &self,
        id_hash: &str,
        now: Timestamp,
    ) -> Result<Option<WebSession>, RepoError> {
        let row = sqlx::query(
            "SELECT user_name, csrf, expires_at FROM web_sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now.as_millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let name: String = row.try_get("user_name").map_err(db_err)?;
        let Some(user) = self.load_user(&name).await? else {
            return Ok(None);
        };
        Ok(Some(WebSession {
            user,
            csrf: row.try_get("csrf").map_err(db_err)?,
            expires_at: Timestamp::from_millis(row.try_get("expires_at").map_err(db_err)?),
        }))
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), RepoError> {
        sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
