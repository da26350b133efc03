//! Agents' folders on SQL: folders, typed columns (kept by id, so renames touch one row) and
//! entries (a JSON object of column id to value).

use crate::inbound::{mark_applied, write_answer};
use crate::{Store, corrupt, db_err};
use async_trait::async_trait;
use krake_core::folder::{
    Column, ColumnId, ColumnKind, Entry, EntryId, Folder, FolderId, FolderRepo, Name, Values,
};
use krake_core::inbound::Change;
use krake_core::ports::{RepoError, WriteCtx};
use krake_core::time::Timestamp;
use sqlx::{AnyConnection, Row};
use std::collections::BTreeMap;

fn encode(values: &Values) -> Result<String, RepoError> {
    let m: BTreeMap<String, &String> = values.iter().map(|(k, v)| (k.0.to_string(), v)).collect();
    serde_json::to_string(&m).map_err(|e| RepoError::Corrupt(e.to_string()))
}

fn decode(data: &str) -> Result<Values, RepoError> {
    let m: BTreeMap<String, String> =
        serde_json::from_str(data).map_err(|_| corrupt("entry data", data))?;
    m.into_iter()
        .map(|(k, v)| {
            k.parse::<i64>()
                .map(|k| (ColumnId(k), v))
                .map_err(|_| corrupt("entry column", &k))
        })
        .collect()
}

async fn columns(conn: &mut AnyConnection, folder: FolderId) -> Result<Vec<Column>, RepoError> {
    let rows = sqlx::query(
        "SELECT id, name, kind, allowed FROM folder_columns WHERE folder_id = $1 ORDER BY position, id",
    )
    .bind(folder.0)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|r| {
            let name: String = r.try_get("name").map_err(db_err)?;
            let kind: String = r.try_get("kind").map_err(db_err)?;
            let allowed: Option<String> = r.try_get("allowed").map_err(db_err)?;
            let values: Option<Vec<String>> = match &allowed {
                Some(a) => Some(serde_json::from_str(a).map_err(|_| corrupt("allowed", a))?),
                None => None,
            };
            Ok(Column {
                id: ColumnId(r.try_get("id").map_err(db_err)?),
                name: Name::parse(&name).map_err(|_| corrupt("column name", &name))?,
                kind: ColumnKind::parse(&kind, values.map(|v| v.join("|")).as_deref())
                    .map_err(|_| corrupt("column kind", &kind))?,
            })
        })
        .collect()
}

async fn folder_rows(
    conn: &mut AnyConnection,
    sql: &str,
    binds: &[String],
) -> Result<Vec<Folder>, RepoError> {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind(b.as_str());
    }
    let rows = q.fetch_all(&mut *conn).await.map_err(db_err)?;
    let mut out = Vec::new();
    for r in rows {
        let id = FolderId(r.try_get("id").map_err(db_err)?);
        let name: String = r.try_get("name").map_err(db_err)?;
        let entries: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM folder_entries WHERE folder_id = $1")
                .bind(id.0)
                .fetch_one(&mut *conn)
                .await
                .map_err(db_err)?;
        out.push(Folder {
            id,
            agent: r.try_get("agent").map_err(db_err)?,
            name: Name::parse(&name).map_err(|_| corrupt("folder name", &name))?,
            columns: columns(conn, id).await?,
            entries,
        });
    }
    Ok(out)
}

#[async_trait]
impl FolderRepo for Store {
    async fn create_folder(
        &self,
        agent: &str,
        name: &Name,
        now: Timestamp,
    ) -> Result<Option<Folder>, RepoError> {
        let mut tx = self.begin().await?;
        let exists: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM folders WHERE agent_key = $1 AND name_key = $2",
        )
        .bind(agent.to_lowercase())
        .bind(name.key())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        if exists > 0 {
            return Ok(None);
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO folders (agent, agent_key, name, name_key, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(agent)
        .bind(agent.to_lowercase())
        .bind(name.as_str())
        .bind(name.key())
        .bind(now.as_millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(Folder {
            id: FolderId(id),
            agent: agent.to_owned(),
            name: name.clone(),
            columns: Vec::new(),
            entries: 0,
        }))
    }

    async fn folders(&self, agent: Option<&str>) -> Result<Vec<Folder>, RepoError> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        match agent {
            Some(a) => {
                folder_rows(
                    &mut conn,
                    "SELECT id, agent, name FROM folders WHERE agent_key = $1 ORDER BY agent_key, name_key",
                    &[a.to_lowercase()],
                )
                .await
            }
            None => {
                folder_rows(
                    &mut conn,
                    "SELECT id, agent, name FROM folders ORDER BY agent_key, name_key",
                    &[],
                )
                .await
            }
        }
    }

    async fn folder(&self, agent: &str, name: &str) -> Result<Option<Folder>, RepoError> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        Ok(folder_rows(
            &mut conn,
            "SELECT id, agent, name FROM folders WHERE agent_key = $1 AND name_key = $2",
            &[agent.to_lowercase(), name.trim().to_lowercase()],
        )
        .await?
        .into_iter()
        .next())
    }

    async fn rename_folder(&self, id: FolderId, name: &Name) -> Result<bool, RepoError> {
        let mut tx = self.begin().await?;
        let taken: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM folders WHERE name_key = $1 AND id <> $2 AND agent_key = (SELECT agent_key FROM folders WHERE id = $3)",
        )
        .bind(name.key())
        .bind(id.0)
        .bind(id.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        if taken > 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE folders SET name = $1, name_key = $2 WHERE id = $3")
            .bind(name.as_str())
            .bind(name.key())
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn delete_folder(&self, id: FolderId) -> Result<u64, RepoError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query("DELETE FROM folder_entries WHERE folder_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        sqlx::query("DELETE FROM folder_columns WHERE folder_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query("DELETE FROM folders WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(n)
    }

    async fn add_column(
        &self,
        folder: FolderId,
        name: &Name,
        kind: &ColumnKind,
    ) -> Result<Option<Column>, RepoError> {
        let mut tx = self.begin().await?;
        let taken: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM folder_columns WHERE folder_id = $1 AND name_key = $2",
        )
        .bind(folder.0)
        .bind(name.key())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        if taken > 0 {
            return Ok(None);
        }
        let pos: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(position), 0) + 1 FROM folder_columns WHERE folder_id = $1",
        )
        .bind(folder.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let allowed = match kind {
            ColumnKind::Status(v) => {
                Some(serde_json::to_string(v).map_err(|e| RepoError::Corrupt(e.to_string()))?)
            }
            _ => None,
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO folder_columns (folder_id, name, name_key, kind, allowed, position) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(folder.0)
        .bind(name.as_str())
        .bind(name.key())
        .bind(kind.as_str())
        .bind(allowed)
        .bind(pos)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(Column {
            id: ColumnId(id),
            name: name.clone(),
            kind: kind.clone(),
        }))
    }

    async fn rename_column(
        &self,
        folder: FolderId,
        column: ColumnId,
        name: &Name,
    ) -> Result<bool, RepoError> {
        let mut tx = self.begin().await?;
        let taken: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM folder_columns WHERE folder_id = $1 AND name_key = $2 AND id <> $3",
        )
        .bind(folder.0)
        .bind(name.key())
        .bind(column.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        if taken > 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE folder_columns SET name = $1, name_key = $2 WHERE id = $3 AND folder_id = $4",
        )
        .bind(name.as_str())
        .bind(name.key())
        .bind(column.0)
        .bind(folder.0)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn remove_column(&self, folder: FolderId, column: ColumnId) -> Result<(), RepoError> {
        let mut tx = self.begin().await?;
        let rows = sqlx::query("SELECT id, data FROM folder_entries WHERE folder_id = $1")
            .bind(folder.0)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        for r in rows {
            let id: i64 = r.try_get("id").map_err(db_err)?;
            let data: String = r.try_get("data").map_err(db_err)?;
            let mut v = decode(&data)?;
            if v.remove(&column).is_some() {
                sqlx::query("UPDATE folder_entries SET data = $1 WHERE id = $2")
                    .bind(encode(&v)?)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
        }
        sqlx::query("DELETE FROM folder_columns WHERE id = $1 AND folder_id = $2")
            .bind(column.0)
            .bind(folder.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    async fn add_entries(
        &self,
        folder: FolderId,
        entries: &[Values],
        ctx: &WriteCtx,
    ) -> Result<Vec<EntryId>, RepoError> {
        let mut tx = self.begin().await?;
        mark_applied(&mut tx, ctx).await?;
        let mut ids = Vec::with_capacity(entries.len());
        for v in entries {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO folder_entries (folder_id, data, created_at, updated_at) VALUES ($1, $2, $3, $3) RETURNING id",
            )
            .bind(folder.0)
            .bind(encode(v)?)
            .bind(ctx.now.as_millis())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
            ids.push(EntryId(id));
        }
        write_answer(&mut tx, ctx, Change::Added(&ids)).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(ids)
    }

    async fn update_entry(
        &self,
        folder: FolderId,
        id: EntryId,
        values: &Values,
        now: Timestamp,
    ) -> Result<Option<Entry>, RepoError> {
        let mut tx = self.begin().await?;
        let lock = if self.backend == crate::Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let data: Option<String> = sqlx::query_scalar(&format!(
            "SELECT data FROM folder_entries WHERE id = $1 AND folder_id = $2{lock}"
        ))
        .bind(id.0)
        .bind(folder.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let Some(data) = data else {
            return Ok(None);
        };
        let mut v = decode(&data)?;
        for (k, val) in values {
            v.insert(*k, val.clone());
        }
        sqlx::query("UPDATE folder_entries SET data = $1, updated_at = $2 WHERE id = $3")
            .bind(encode(&v)?)
            .bind(now.as_millis())
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(Entry { id, values: v }))
    }

    async fn delete_entry(&self, folder: FolderId, id: EntryId) -> Result<bool, RepoError> {
        let n = sqlx::query("DELETE FROM folder_entries WHERE id = $1 AND folder_id = $2")
            .bind(id.0)
            .bind(folder.0)
            .execute(&self.pool)
            .await
            .map_err(db_err)?
            .rows_affected();
        Ok(n > 0)
    }

    async fn entries(&self, folder: FolderId) -> Result<Vec<Entry>, RepoError> {
        let rows =
            sqlx::query("SELECT id, data FROM folder_entries WHERE folder_id = $1 ORDER BY id")
                .bind(folder.0)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let data: String = r.try_get("data").map_err(db_err)?;
                Ok(Entry {
                    id: EntryId(r.try_get("id").map_err(db_err)?),
                    values: decode(&data)?,
                })
            })
            .collect()
    }
}
