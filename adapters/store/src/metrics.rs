//! Pushed metrics: points as sent (idempotent by key) and their daily roll-ups.

use crate::{Store, db_err};
use async_trait::async_trait;
use krake_core::kpi::{MetricDay, MetricPoint, MetricRepo, Pushed};
use krake_core::ports::RepoError;
use krake_core::time::Timestamp;
use krake_core::workspace::WorkspaceSlug;
use sqlx::Row;
use std::collections::HashMap;

fn day_row(r: &sqlx::any::AnyRow) -> Result<MetricDay, RepoError> {
    Ok(MetricDay {
        name: r.try_get("name").map_err(db_err)?,
        day: r.try_get("day").map_err(db_err)?,
        sum: r.try_get("sum").map_err(db_err)?,
        count: r.try_get("count").map_err(db_err)?,
        last: r.try_get("last_value").map_err(db_err)?,
        last_at: Timestamp::from_millis(r.try_get("last_at").map_err(db_err)?),
        demo: r.try_get::<i64, _>("demo").map_err(db_err)? != 0,
    })
}

const COLUMNS: &str = "name, day, sum, count, last_value, last_at, demo";

/// A `MetricDay` from a direct reader's row whose columns are [`COLUMNS`] from `at` on.
fn direct_day(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<MetricDay> {
    Ok(MetricDay {
        name: r.get(at)?,
        day: r.get(at + 1)?,
        sum: r.get(at + 2)?,
        count: r.get(at + 3)?,
        last: r.get(at + 4)?,
        last_at: Timestamp::from_millis(r.get(at + 5)?),
        demo: r.get::<_, i64>(at + 6)? != 0,
    })
}

impl Store {
    /// Rows of a query with text parameters: on an SQLite file through the direct readers
    /// (`direct`; a board reads a few of these per workspace, and the pool's one connection
    /// made each cost a millisecond), otherwise through the pool (`pooled`).
    async fn text_query<T: Send + 'static>(
        &self,
        sql: String,
        binds: &[&str],
        direct: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
        pooled: fn(&sqlx::any::AnyRow) -> Result<T, RepoError>,
    ) -> Result<Vec<T>, RepoError> {
        if let Some(readers) = &self.direct {
            let binds = binds
                .iter()
                .map(|b| crate::inbox::ListBind::Text((*b).to_owned()))
                .collect();
            return readers.rows(sql, binds, direct).await;
        }
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(*b);
        }
        q.fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(pooled)
            .collect()
    }

    /// Daily rows of a query selecting [`COLUMNS`].
    async fn metric_rows(&self, sql: String, binds: &[&str]) -> Result<Vec<MetricDay>, RepoError> {
        self.text_query(sql, binds, |r| direct_day(r, 0), day_row)
            .await
    }

    /// Daily rows of a query selecting the workspace, then [`COLUMNS`].
    async fn metric_rows_of(
        &self,
        sql: String,
        binds: &[&str],
    ) -> Result<Vec<(String, MetricDay)>, RepoError> {
        self.text_query(
            sql,
            binds,
            |r| Ok((r.get(0)?, direct_day(r, 1)?)),
            |r| Ok((r.try_get("workspace").map_err(db_err)?, day_row(r)?)),
        )
        .await
    }
}

/// Raises the KPI version of each workspace (inside the caller's transaction, so the change
/// and its version commit together), in key order: two transactions take these row locks in
/// the same order, after every other lock of theirs, and never deadlock on them.
pub(crate) async fn bump_kpi_versions(
    conn: &mut sqlx::AnyConnection,
    workspaces: &std::collections::BTreeSet<&str>,
) -> Result<(), RepoError> {
    for ws in workspaces {
        sqlx::query(
            "INSERT INTO kpi_versions (workspace, version) VALUES ($1, 1) \
             ON CONFLICT (workspace) DO UPDATE SET version = kpi_versions.version + 1",
        )
        .bind(*ws)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

/// `$first, $first+1, …` for `n` values.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl MetricRepo for Store {
    async fn record_metrics(
        &self,
        workspace: &WorkspaceSlug,
        points: &[MetricPoint],
    ) -> Result<Pushed, RepoError> {
        let mut tx = self.begin().await?;
        let mut pushed = Pushed::default();
        for p in points {
            let stored = sqlx::query(
                "INSERT INTO metric_points (workspace, name, value, at, day, idem_key, demo) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (workspace, idem_key) DO NOTHING",
            )
            .bind(workspace.as_str())
            .bind(p.name.as_str())
            .bind(p.value)
            .bind(p.at.as_millis())
            .bind(p.day.as_str())
            .bind(p.key.clone())
            .bind(i64::from(p.demo))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            if stored.rows_affected() == 0 {
                pushed.duplicates += 1;
                continue;
            }
            pushed.stored += 1;
            sqlx::query(
                "INSERT INTO metric_daily (workspace, name, day, sum, count, last_value, last_at, demo) \
                 VALUES ($1, $2, $3, $4, 1, $4, $5, $6) \
                 ON CONFLICT (workspace, name, day) DO UPDATE SET \
                   sum = metric_daily.sum + excluded.sum, \
                   count = metric_daily.count + 1, \
                   last_value = CASE WHEN excluded.last_at >= metric_daily.last_at THEN excluded.last_value ELSE metric_daily.last_value END, \
                   last_at = CASE WHEN excluded.last_at >= metric_daily.last_at THEN excluded.last_at ELSE metric_daily.last_at END, \
                   demo = CASE WHEN excluded.demo > metric_daily.demo THEN excluded.demo ELSE metric_daily.demo END",
            )
            .bind(workspace.as_str())
            .bind(p.name.as_str())
            .bind(p.day.as_str())
            .bind(p.value)
            .bind(p.at.as_millis())
            .bind(i64::from(p.demo))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        if pushed.stored > 0 {
            bump_kpi_versions(&mut tx, &std::iter::once(workspace.as_str()).collect()).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(pushed)
    }

    async fn metric_days(
        &self,
        workspace: &WorkspaceSlug,
        names: &[String],
        from: &str,
        to: &str,
    ) -> Result<Vec<MetricDay>, RepoError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let list = (0..names.len())
            .map(|i| format!("${}", i + 4))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {COLUMNS} FROM metric_daily WHERE workspace = $1 AND day >= $2 AND day <= $3 AND name IN ({list}) ORDER BY name, day"
        );
        let mut binds = vec![workspace.as_str(), from, to];
        binds.extend(names.iter().map(String::as_str));
        let mut out = self.metric_rows(sql, &binds).await?;
        // Each metric's latest day before the window, so a `last` value carries into it: one
        // query for all of them (each an index probe on the primary key).
        let list = (0..names.len())
            .map(|i| format!("${}", i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT m.name AS name, m.day AS day, m.sum AS sum, m.count AS count, m.last_value AS last_value, \
               m.last_at AS last_at, m.demo AS demo \
             FROM metric_daily m JOIN ( \
               SELECT name, MAX(day) AS day FROM metric_daily \
               WHERE workspace = $1 AND day < $2 AND name IN ({list}) GROUP BY name) l \
             ON m.workspace = $1 AND m.name = l.name AND m.day = l.day"
        );
        let mut binds = vec![workspace.as_str(), from];
        binds.extend(names.iter().map(String::as_str));
        out.extend(self.metric_rows(sql, &binds).await?);
        Ok(out)
    }

    async fn kpi_versions(&self) -> Result<Option<HashMap<WorkspaceSlug, i64>>, RepoError> {
        let sql = "SELECT workspace, version FROM kpi_versions";
        let rows: Vec<(String, i64)> = if let Some(direct) = &self.direct {
            direct
                .rows(sql.to_owned(), Vec::new(), |r| Ok((r.get(0)?, r.get(1)?)))
                .await?
        } else {
            sqlx::query_as(sql)
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?
        };
        let mut out = HashMap::with_capacity(rows.len());
        for (ws, v) in rows {
            let ws = WorkspaceSlug::parse(&ws)
                .map_err(|e| RepoError::Corrupt(format!("kpi_versions: {e}")))?;
            out.insert(ws, v);
        }
        Ok(Some(out))
    }

    async fn metric_days_of(
        &self,
        wanted: &[(WorkspaceSlug, Vec<String>)],
        from: &str,
        to: &str,
    ) -> Result<Vec<(WorkspaceSlug, MetricDay)>, RepoError> {
        let pairs: Vec<(&WorkspaceSlug, &String)> = wanted
            .iter()
            .flat_map(|(w, names)| names.iter().map(move |n| (w, n)))
            .collect();
        if pairs.is_empty() {
            return Ok(Vec::new());
        }
        let mut workspaces: Vec<&str> = wanted.iter().map(|(w, _)| w.as_str()).collect();
        workspaces.sort_unstable();
        workspaces.dedup();
        let mut names: Vec<&str> = pairs.iter().map(|(_, n)| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        // The window: every wanted workspace and name (a superset of the pairs, trimmed
        // below), index probes on the primary key. Parameters appear in order (`$1`, `$2`…):
        // SQLite numbers them by first appearance.
        let sql = format!(
            "SELECT workspace, {COLUMNS} FROM metric_daily WHERE day >= $1 AND day <= $2 \
             AND workspace IN ({}) AND name IN ({}) ORDER BY workspace, name, day",
            placeholders(3, workspaces.len()),
            placeholders(3 + workspaces.len(), names.len())
        );
        let mut binds = vec![from, to];
        binds.extend(&workspaces);
        binds.extend(&names);
        let window = self.metric_rows_of(sql, &binds);
        // Each pair's latest day before the window: one probe per pair, in one statement.
        let probes = (0..pairs.len())
            .map(|i| {
                format!(
                    "SELECT * FROM (SELECT workspace, {COLUMNS} FROM metric_daily \
                     WHERE day < $1 AND workspace = ${} AND name = ${} ORDER BY day DESC LIMIT 1) p{i}",
                    2 + 2 * i,
                    3 + 2 * i
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let mut probe_binds = vec![from];
        for (w, n) in &pairs {
            probe_binds.push(w.as_str());
            probe_binds.push(n.as_str());
        }
        let before = self.metric_rows_of(probes, &probe_binds);
        let (window, before) = tokio::join!(window, before);
        let wanted: std::collections::HashMap<(&str, &str), &WorkspaceSlug> = pairs
            .iter()
            .map(|(w, n)| ((w.as_str(), n.as_str()), *w))
            .collect();
        let mut out = Vec::new();
        for (w, d) in window?.into_iter().chain(before?) {
            if let Some(ws) = wanted.get(&(w.as_str(), d.name.as_str())) {
                out.push(((*ws).clone(), d));
            }
        }
        Ok(out)
    }
}
