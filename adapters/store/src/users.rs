//! Users, roles, link codes and platform identities.

use crate::{Store, corrupt, db_err};
use async_trait::async_trait;
use krake_core::actor::{Front, Role, UserName};
use krake_core::ports::{
    NewToken, RepoError, TokenGrant, TokenInfo, TokenScope, UserRecord, UserRepo,
};
use krake_core::time::Timestamp;
use krake_core::workspace::WorkspaceSlug;
use sqlx::Row;
use std::collections::BTreeMap;

impl Store {
    pub(crate) async fn load_user(&self, name: &str) -> Result<Option<UserRecord>, RepoError> {
        let Some(role) = sqlx::query_scalar::<_, String>("SELECT role FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
        else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT workspace, role FROM user_roles WHERE user_name = $1 ORDER BY workspace",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let mut workspace_roles = BTreeMap::new();
        for r in rows {
            let w: String = r.try_get("workspace").map_err(db_err)?;
            let role: String = r.try_get("role").map_err(db_err)?;
            workspace_roles.insert(
                WorkspaceSlug::parse(&w).map_err(|_| corrupt("workspace", &w))?,
                Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
            );
        }
        Ok(Some(UserRecord {
            name: UserName::parse(name).map_err(|_| corrupt("user", name))?,
            role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
            workspace_roles,
        }))
    }
}

#[async_trait]
impl UserRepo for Store {
    async fn upsert_user(
        &self,
        name: &UserName,
        role: Role,
        workspace: Option<&WorkspaceSlug>,
        now: Timestamp,
    ) -> Result<UserRecord, RepoError> {
        let mut tx = self.begin().await?;
        // A user added for one workspace is a guest elsewhere.
        let everywhere = if workspace.is_some() {
            Role::Guest
        } else {
            role
        };
        sqlx::query("INSERT INTO users (name, role, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(name.as_str())
            .bind(everywhere.as_str())
            .bind(now.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        match workspace {
            None => {
                sqlx::query("UPDATE users SET role = $1 WHERE name = $2")
                    .bind(role.as_str())
                    .bind(name.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            Some(w) => {
                sqlx::query(
                    "INSERT INTO user_roles (user_name, workspace, role) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_name, workspace) DO UPDATE SET role = excluded.role",
                )
                .bind(name.as_str())
                .bind(w.as_str())
                .bind(role.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            }
        }
        tx.commit().await.map_err(db_err)?;
        self.load_user(name.as_str())
            .await?
            .ok_or_else(|| RepoError::Corrupt("user vanished".into()))
    }

    async fn user(&self, name: &UserName) -> Result<Option<UserRecord>, RepoError> {
        self.load_user(name.as_str()).await
    }

    async fn users(&self) -> Result<Vec<UserRecord>, RepoError> {
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM users ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            out.extend(self.load_user(&n).await?);
        }
        Ok(out)
    }

    async fn create_link_code(
        &self,
        user: &UserName,
        code: &str,
        expires_at: Timestamp,
    ) -> Result<(), RepoError> {
        sqlx::query("INSERT INTO link_codes (code, user_name, expires_at) VALUES ($1, $2, $3)")
            .bind(code)
            .bind(user.as_str())
            .bind(expires_at.as_millis())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn redeem_link_code(
        &self,
        code: &str,
        front: Front,
        external_id: &str,
        now: Timestamp,
    ) -> Result<Option<UserName>, RepoError> {
        let mut tx = self.begin().await?;
        // The conditional update is the one-time check: only one redemption can flip used_at.
        let user: Option<String> = sqlx::query_scalar(
            "UPDATE link_codes SET used_at = $1 WHERE code = $2 AND used_at IS NULL AND expires_at > $3 RETURNING user_name",
        )
        .bind(now.as_millis())
        .bind(code)
        .bind(now.as_millis())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(user) = user else { return Ok(None) };
        sqlx::query(
            "INSERT INTO identities (front, external_id, user_name, linked_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (front, external_id) DO UPDATE SET user_name = excluded.user_name, linked_at = excluded.linked_at",
        )
        .bind(front.as_str())
        .bind(external_id)
        .bind(user.as_str())
        .bind(now.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(
            UserName::parse(&user).map_err(|_| corrupt("user", &user))?,
        ))
    }

    async fn linked_user(
        &self,
        front: Front,
        external_id: &str,
    ) -> Result<Option<UserName>, RepoError> {
        let user: Option<String> = sqlx::query_scalar(
            "SELECT user_name FROM identities WHERE front = $1 AND external_id = $2",
        )
        .bind(front.as_str())
        .bind(external_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        user.map(|u| UserName::parse(&u).map_err(|_| corrupt("user", &u)))
            .transpose()
    }
}

#[async_trait]
impl krake_core::ports::TokenRepo for Store {
    async fn create_token(&self, t: &NewToken<'_>) -> Result<(), RepoError> {
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, user_name, label, created_at, scope, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(t.token_hash)
        .bind(t.user.as_str())
        .bind(t.label)
        .bind(t.now.as_millis())
        .bind(t.scope.as_stored())
        .bind(t.expires_at.map(|e| e.as_millis()))
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn token_grant(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<TokenGrant>, RepoError> {
        let row = sqlx::query(
            "SELECT user_name, scope, expires_at FROM api_tokens WHERE token_hash = $1 \
             AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(token_hash)
        .bind(now.as_millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let name: String = row.try_get("user_name").map_err(db_err)?;
        let scope: String = row.try_get("scope").map_err(db_err)?;
        let expires_at: Option<i64> = row.try_get("expires_at").map_err(db_err)?;
        // A scope this version does not know grants nothing.
        let Some(scope) = TokenScope::from_stored(&scope) else {
            return Ok(None);
        };
        Ok(self.load_user(&name).await?.map(|user| TokenGrant {
            user,
            scope,
            expires_at: expires_at.map(Timestamp::from_millis),
        }))
    }

    async fn tokens(&self, user: &UserName) -> Result<Vec<TokenInfo>, RepoError> {
        let rows = sqlx::query(
            "SELECT token_hash, label, scope, created_at, expires_at, revoked_at FROM api_tokens \
             WHERE user_name = $1 ORDER BY created_at DESC, token_hash",
        )
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let hash: String = r.try_get("token_hash").map_err(db_err)?;
                let scope: String = r.try_get("scope").map_err(db_err)?;
                let at = |c: &str| -> Result<Option<Timestamp>, RepoError> {
                    Ok(r.try_get::<Option<i64>, _>(c)
                        .map_err(db_err)?
                        .map(Timestamp::from_millis))
                };
                Ok(TokenInfo {
                    id: hash.chars().take(12).collect(),
                    label: r.try_get("label").map_err(db_err)?,
                    scope: TokenScope::from_stored(&scope),
                    created_at: Timestamp::from_millis(r.try_get("created_at").map_err(db_err)?),
                    expires_at: at("expires_at")?,
                    revoked_at: at("revoked_at")?,
                })
            })
            .collect()
    }

    async fn revoke_tokens(
        &self,
        user: &UserName,
        id: Option<&str>,
        now: Timestamp,
    ) -> Result<u64, RepoError> {
        // Hash ids are lower-case hex; anything else matches nothing.
        let prefix = match id {
            Some(i) if !i.is_empty() && i.bytes().all(|b| b.is_ascii_hexdigit()) => {
                format!("{}%", i.to_ascii_lowercase())
            }
            Some(_) => return Ok(0),
            None => "%".to_owned(),
        };
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE user_name = $2 AND token_hash LIKE $3 \
             AND revoked_at IS NULL",
        )
        .bind(now.as_millis())
        .bind(user.as_str())
        .bind(prefix)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected())
    }
}
