//! Pushed metrics: points as sent (idempotent by key) and their daily roll-ups.

use crate::{Store, db_err};
use async_trait::async_trait;
use krake_core::kpi::{MetricDay, MetricPoint, MetricRepo, Pushed};
use krake_core::ports::RepoError;
use krake_core::time::Timestamp;
use krake_core::workspace::WorkspaceSlug;
use sqlx::Row;

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

impl Store {
    /// Daily rows of a query with text parameters: on an SQLite file through the direct
    /// readers (a board reads a few of these per workspace; the pool's one connection made
    /// each cost a millisecond), otherwise through the pool.
    async fn metric_rows(&self, sql: String, binds: &[&str]) -> Result<Vec<MetricDay>, RepoError> {
        if let Some(direct) = &self.direct {
            let binds = binds
                .iter()
                .map(|b| crate::inbox::ListBind::Text((*b).to_owned()))
                .collect();
            return direct
                .rows(sql, binds, |r| {
                    Ok(MetricDay {
                        name: r.get(0)?,
                        day: r.get(1)?,
                        sum: r.get(2)?,
                        count: r.get(3)?,
                        last: r.get(4)?,
                        last_at: Timestamp::from_millis(r.get(5)?),
                        demo: r.get::<_, i64>(6)? != 0,
                    })
                })
                .await;
        }
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(*b);
        }
        q.fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(day_row)
            .collect()
    }

    /// [`Store::metric_rows`] of a query whose first column is the workspace.
    async fn metric_rows_of(
        &self,
        sql: String,
        binds: &[&str],
    ) -> Result<Vec<(String, MetricDay)>, RepoError> {
        if let Some(direct) = &self.direct {
            let binds = binds
                .iter()
                .map(|b| crate::inbox::ListBind::Text((*b).to_owned()))
                .collect();
            return direct
                .rows(sql, binds, |r| {
                    Ok((
                        r.get(0)?,
                        MetricDay {
                            name: r.get(1)?,
                            day: r.get(2)?,
                            sum: r.get(3)?,
                            count: r.get(4)?,
                            last: r.get(5)?,
                            last_at: Timestamp::from_millis(r.get(6)?),
                            demo: r.get::<_, i64>(7)? != 0,
                        },
                    ))
                })
                .await;
        }
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(*b);
        }
        q.fetch_all(&self.pool)
            .await
            .map_err(db_err)?
            .iter()
            .map(|r| Ok((r.try_get("workspace").map_err(db_err)?, day_row(r)?)))
            .collect()
    }
}

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
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
