//! [`VisitorRepo`] on SQL: publishable keys, visitors and their conversations (the customer
//! widget), and the rule that passes a person's reply in a thread on to the visitors whose
//! conversation shows it.

use crate::{Store, Tx, corrupt, db_err};
use async_trait::async_trait;
use krake_core::actor::UserName;
use krake_core::inbox::ThreadId;
use krake_core::outbox::{Destination, OutboxPayload};
use krake_core::ports::{RepoError, WriteCtx};
use krake_core::reply::Reply;
use krake_core::time::Timestamp;
use krake_core::visitor::{
    KeyId, NewKey, NewVisitorMessage, PublishableKey, Speaker, Visitor, VisitorId, VisitorMessage,
    VisitorRepo,
};
use krake_core::workspace::WorkspaceSlug;
use sqlx::Row;
use sqlx::any::AnyRow;

const KEY_COLUMNS: &str =
    "id, prefix, workspace, agent, origins, created_by, created_at, revoked_at";

fn key_from_row(r: &AnyRow) -> Result<PublishableKey, RepoError> {
    let ws: String = r.try_get("workspace").map_err(db_err)?;
    let origins: String = r.try_get("origins").map_err(db_err)?;
    Ok(PublishableKey {
        id: KeyId(r.try_get("id").map_err(db_err)?),
        prefix: r.try_get("prefix").map_err(db_err)?,
        workspace: WorkspaceSlug::parse(&ws).map_err(|_| corrupt("workspace", &ws))?,
        agent: r.try_get("agent").map_err(db_err)?,
        origins: serde_json::from_str(&origins).map_err(|_| corrupt("origins", &origins))?,
        created_by: r.try_get("created_by").map_err(db_err)?,
        created_at: Timestamp::from_millis(r.try_get("created_at").map_err(db_err)?),
        revoked_at: r
            .try_get::<Option<i64>, _>("revoked_at")
            .map_err(db_err)?
            .map(Timestamp::from_millis),
    })
}

fn visitor_from_row(r: &AnyRow) -> Result<Visitor, RepoError> {
    let ws: String = r.try_get("workspace").map_err(db_err)?;
    Ok(Visitor {
        id: VisitorId(r.try_get("id").map_err(db_err)?),
        key: KeyId(r.try_get("key_id").map_err(db_err)?),
        workspace: WorkspaceSlug::parse(&ws).map_err(|_| corrupt("workspace", &ws))?,
        agent: r.try_get("agent").map_err(db_err)?,
        created_at: Timestamp::from_millis(r.try_get("created_at").map_err(db_err)?),
    })
}

fn message_from_row(r: &AnyRow) -> Result<VisitorMessage, RepoError> {
    let speaker: String = r.try_get("speaker").map_err(db_err)?;
    Ok(VisitorMessage {
        seq: r.try_get("id").map_err(db_err)?,
        from: Speaker::parse(&speaker).ok_or_else(|| corrupt("speaker", &speaker))?,
        name: r.try_get("name").map_err(db_err)?,
        text: r.try_get("text").map_err(db_err)?,
        at: Timestamp::from_millis(r.try_get("at").map_err(db_err)?),
    })
}

const VISITOR_SELECT: &str = "SELECT v.id, v.key_id, v.created_at, k.workspace, k.agent \
     FROM visitors v JOIN publishable_keys k ON k.id = v.key_id";

#[async_trait]
impl VisitorRepo for Store {
    async fn create_key(
        &self,
        key: &NewKey,
        agent: &str,
        hash: &str,
        prefix: &str,
        by: &UserName,
        now: Timestamp,
    ) -> Result<PublishableKey, RepoError> {
        let origins =
            serde_json::to_string(&key.origins).map_err(|e| RepoError::Corrupt(e.to_string()))?;
        let row = sqlx::query(&format!(
            "INSERT INTO publishable_keys (key_hash, prefix, workspace, agent, origins, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {KEY_COLUMNS}"
        ))
        .bind(hash)
        .bind(prefix)
        .bind(key.workspace.as_str())
        .bind(agent)
        .bind(origins)
        .bind(by.as_str())
        .bind(now.as_millis())
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        key_from_row(&row)
    }

    async fn keys(
        &self,
        workspace: Option<&WorkspaceSlug>,
    ) -> Result<Vec<PublishableKey>, RepoError> {
        let rows = match workspace {
            Some(w) => sqlx::query(&format!(
                "SELECT {KEY_COLUMNS} FROM publishable_keys WHERE workspace = $1 ORDER BY id DESC"
            ))
            .bind(w.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?,
            None => sqlx::query(&format!(
                "SELECT {KEY_COLUMNS} FROM publishable_keys ORDER BY id DESC"
            ))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?,
        };
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_keys(
        &self,
        prefix: &str,
        now: Timestamp,
    ) -> Result<Vec<PublishableKey>, RepoError> {
        // The prefix is compared as text, not as a LIKE pattern (no wildcards from input).
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE publishable_keys SET revoked_at = $1 \
             WHERE revoked_at IS NULL AND substr(prefix, 1, length($2)) = $2",
        )
        .bind(now.as_millis())
        .bind(prefix)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM publishable_keys WHERE substr(prefix, 1, length($1)) = $1 ORDER BY id"
        ))
        .bind(prefix)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<PublishableKey>, RepoError> {
        let row = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM publishable_keys WHERE key_hash = $1"
        ))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn create_visitor(
        &self,
        key: KeyId,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Visitor, RepoError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO visitors (key_id, token_hash, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(key.0)
        .bind(token_hash)
        .bind(now.as_millis())
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        self.visitor(VisitorId(id))
            .await?
            .ok_or_else(|| RepoError::Corrupt("a new visitor could not be read back".into()))
    }

    async fn visitor_by_token(
        &self,
        key: KeyId,
        token_hash: &str,
    ) -> Result<Option<Visitor>, RepoError> {
        let row = sqlx::query(&format!(
            "{VISITOR_SELECT} WHERE v.token_hash = $1 AND v.key_id = $2"
        ))
        .bind(token_hash)
        .bind(key.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(visitor_from_row).transpose()
    }

    async fn visitor(&self, id: VisitorId) -> Result<Option<Visitor>, RepoError> {
        let row = sqlx::query(&format!("{VISITOR_SELECT} WHERE v.id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(visitor_from_row).transpose()
    }

    async fn append_message(
        &self,
        visitor: VisitorId,
        message: &NewVisitorMessage<'_>,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<VisitorMessage>, RepoError> {
        let row = sqlx::query(
            "INSERT INTO visitor_messages (visitor_id, msg_key, speaker, name, text, at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (msg_key) DO NOTHING \
             RETURNING id, speaker, name, text, at",
        )
        .bind(visitor.0)
        .bind(key)
        .bind(message.from.as_str())
        .bind(message.name)
        .bind(message.text)
        .bind(now.as_millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(message_from_row).transpose()
    }

    async fn messages(
        &self,
        visitor: VisitorId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<VisitorMessage>, RepoError> {
        let rows = sqlx::query(
            "SELECT id, speaker, name, text, at FROM visitor_messages \
             WHERE visitor_id = $1 AND id > $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(visitor.0)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let mut out = rows
            .iter()
            .map(message_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }
}

/// A thread shown in a visitor's conversation has its copy there from the start (it needs
/// no platform message), so a reply made before the post is delivered reaches them too.
pub(crate) async fn shown_to_visitors(
    conn: &mut Tx,
    thread: ThreadId,
    post_to: &[Destination],
) -> Result<(), RepoError> {
    for d in post_to.iter().filter(|d| VisitorId::of(d).is_some()) {
        sqlx::query(
            "INSERT INTO thread_copies (thread_id, destination, message_id) VALUES ($1, $2, $3) \
             ON CONFLICT (thread_id, destination) DO NOTHING",
        )
        .bind(thread.0)
        .bind(d.as_str())
        .bind(format!("thread-{}", thread.0))
        .execute(&mut **conn)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

/// A person's reply in `thread` goes, in the reply's own transaction, to every visitor whose
/// conversation shows the thread (a copy at `visitor:<id>`), under the person's name.
pub(crate) async fn pass_on_reply(
    conn: &mut Tx,
    thread: ThreadId,
    text: &str,
    ctx: &WriteCtx,
) -> Result<(), RepoError> {
    if ctx.actor.front == krake_core::actor::Front::Visitor {
        return Ok(());
    }
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT destination FROM thread_copies WHERE thread_id = $1 AND substr(destination, 1, 8) = 'visitor:'",
    )
    .bind(thread.0)
    .fetch_all(&mut **conn)
    .await
    .map_err(db_err)?;
    for d in rows {
        let destination = Destination::parse(&d).map_err(|_| corrupt("destination", &d))?;
        let reply = Reply {
            text: text.to_owned(),
            thread: Some(thread),
            by: Some(ctx.actor.user.to_string()),
            ..Reply::default()
        };
        crate::outbox::insert(conn, &destination, &OutboxPayload::Send { reply }, ctx.now).await?;
    }
    Ok(())
}
