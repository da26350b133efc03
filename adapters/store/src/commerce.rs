//! Commerce state: orders, fulfilments, daily KPI roll-ups.
//!
//! The roll-ups are kept incrementally: applying a batch adds to each day's row the
//! difference between the new and the previous state of every order it changes, read under
//! that order's row lock in the same transaction. Its cost is the batch's, not the day's.

use crate::inbox::create_many_in;
use crate::{Backend, Store, db_err};
use async_trait::async_trait;
use krake_core::Actor;
use krake_core::commerce::{CommerceEvent, CommerceRepo, DailyKpi, Kpis, Minor, Order, ToApply};
use krake_core::inbound::InboundId;
use krake_core::ports::{RepoError, WriteCtx};
use krake_core::time::Timestamp;
use krake_core::workspace::WorkspaceSlug;
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// `$first, $first+1, …` for `n` parameters.
fn params(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The columns of `commerce_orders` an order is written with, in bind order.
const ORDER_COLUMNS: &str = "workspace, order_id, name, day, utc_offset_min, created_at, updated_at, currency, total_minor, refunded_minor, financial_status";

/// `INSERT INTO commerce_orders … VALUES …` for these orders, followed by `tail`.
async fn insert_orders(
    conn: &mut AnyConnection,
    orders: &[(&WorkspaceSlug, &Order)],
    tail: &str,
) -> Result<Vec<sqlx::any::AnyRow>, RepoError> {
    let values = (0..orders.len())
        .map(|i| format!("({})", params(i * 11 + 1, 11)))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("INSERT INTO commerce_orders ({ORDER_COLUMNS}) VALUES {values} {tail}");
    let mut q = sqlx::query(&sql);
    for (ws, o) in orders {
        q = q
            .bind(ws.as_str())
            .bind(o.id.as_str())
            .bind(o.name.as_str())
            .bind(o.day.as_str())
            .bind(i64::from(o.utc_offset_minutes))
            .bind(o.created_at.as_millis())
            .bind(o.updated_at.as_millis())
            .bind(o.currency.as_str())
            .bind(o.total.0)
            .bind(o.refunded.0)
            .bind(o.financial_status.as_str());
    }
    q.fetch_all(&mut *conn).await.map_err(db_err)
}

/// What a stored order adds to its day's roll-up (`kpi_daily`, keyed by workspace, day and
/// currency): the same sums the roll-up's definition takes over the day's orders.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Share {
    orders: i64,
    revenue: i64,
    paid: i64,
    pending: i64,
    refunds: i64,
}

impl Share {
    fn of(total: i64, refunded: i64, status: &str) -> Self {
        Share {
            orders: 1,
            revenue: total,
            paid: i64::from(matches!(status, "paid" | "partially_refunded" | "refunded")),
            pending: i64::from(matches!(
                status,
                "pending" | "authorized" | "partially_paid"
            )),
            refunds: refunded,
        }
    }

    fn add(&mut self, other: Share, sign: i64) {
        self.orders += sign * other.orders;
        self.revenue += sign * other.revenue;
        self.paid += sign * other.paid;
        self.pending += sign * other.pending;
        self.refunds += sign * other.refunds;
    }
}

/// An order as stored: what its roll-up share and the newer-wins rule need.
struct StoredOrder {
    day: String,
    currency: String,
    share: Share,
    updated_at: i64,
}

/// The changes to the roll-ups of one batch, per (workspace, day, currency).
type Deltas<'a> = BTreeMap<(&'a str, String, String), Share>;

/// Writes the newest state of each order (newer data wins: a delayed `orders/create` never
/// overwrites a later `orders/paid`) and adds to `deltas` what each change does to its day's
/// roll-up. Orders not stored yet are inserted (many rows per statement); the others are read
/// under their row locks, and those the batch makes newer are written over. Every step goes
/// in key order, so that two processes lock rows in the same order and never deadlock.
async fn upsert_orders<'a>(
    conn: &mut AnyConnection,
    backend: Backend,
    orders: &[(&'a WorkspaceSlug, &'a Order)],
    deltas: &mut Deltas<'a>,
) -> Result<(), RepoError> {
    let mut stored_now: HashSet<(String, String)> = HashSet::new();
    for chunk in orders.chunks(100) {
        let rows = insert_orders(
            conn,
            chunk,
            "ON CONFLICT (workspace, order_id) DO NOTHING RETURNING workspace, order_id",
        )
        .await?;
        for r in rows {
            stored_now.insert((
                r.try_get("workspace").map_err(db_err)?,
                r.try_get("order_id").map_err(db_err)?,
            ));
        }
    }
    let mut existing: BTreeMap<&WorkspaceSlug, Vec<&Order>> = BTreeMap::new();
    for (ws, o) in orders {
        if stored_now.contains(&(ws.to_string(), o.id.clone())) {
            deltas
                .entry((ws.as_str(), o.day.clone(), o.currency.clone()))
                .or_default()
                .add(Share::of(o.total.0, o.refunded.0, &o.financial_status), 1);
        } else {
            existing.entry(ws).or_default().push(o);
        }
    }
    // The rest were there (or were stored by another transaction since, which the insert
    // waited for): each is read locked, so its previous state is the one this change replaces.
    let lock = if backend == Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let mut newer: Vec<(&WorkspaceSlug, &Order)> = Vec::new();
    for (ws, list) in existing {
        let mut before: HashMap<String, StoredOrder> = HashMap::with_capacity(list.len());
        for chunk in list.chunks(500) {
            let sql = format!(
                "SELECT order_id, day, currency, total_minor, refunded_minor, financial_status, updated_at \
                 FROM commerce_orders WHERE workspace = $1 AND order_id IN ({}) ORDER BY order_id{lock}",
                params(2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(ws.as_str());
            for o in chunk {
                q = q.bind(o.id.as_str());
            }
            for r in q.fetch_all(&mut *conn).await.map_err(db_err)? {
                let status: String = r.try_get("financial_status").map_err(db_err)?;
                before.insert(
                    r.try_get("order_id").map_err(db_err)?,
                    StoredOrder {
                        day: r.try_get("day").map_err(db_err)?,
                        currency: r.try_get("currency").map_err(db_err)?,
                        share: Share::of(
                            r.try_get("total_minor").map_err(db_err)?,
                            r.try_get("refunded_minor").map_err(db_err)?,
                            &status,
                        ),
                        updated_at: r.try_get("updated_at").map_err(db_err)?,
                    },
                );
            }
        }
        for o in list {
            let old = before.get(&o.id).ok_or_else(|| {
                RepoError::Corrupt(format!("order {} of {ws} vanished while applied", o.id))
            })?;
            if o.updated_at.as_millis() < old.updated_at {
                continue;
            }
            // The day an order was created on never changes (it is not rewritten below).
            deltas
                .entry((ws.as_str(), old.day.clone(), old.currency.clone()))
                .or_default()
                .add(old.share, -1);
            deltas
                .entry((ws.as_str(), old.day.clone(), o.currency.clone()))
                .or_default()
                .add(Share::of(o.total.0, o.refunded.0, &o.financial_status), 1);
            newer.push((ws, o));
        }
    }
    for chunk in newer.chunks(100) {
        insert_orders(
            conn,
            chunk,
            "ON CONFLICT (workspace, order_id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at, \
               currency = excluded.currency, total_minor = excluded.total_minor, refunded_minor = excluded.refunded_minor, \
               financial_status = excluded.financial_status",
        )
        .await?;
    }
    Ok(())
}

/// Adds the batch's changes to the days' roll-ups, in key order, in one statement per 100
/// days; a currency left without orders on a day loses its row (as if recomputed).
async fn roll_up(
    conn: &mut AnyConnection,
    deltas: &Deltas<'_>,
    now: Timestamp,
) -> Result<(), RepoError> {
    let changed: Vec<(&(&str, String, String), &Share)> = deltas
        .iter()
        .filter(|(_, d)| **d != Share::default())
        .collect();
    for chunk in changed.chunks(100) {
        let values = (0..chunk.len())
            .map(|i| format!("({})", params(i * 9 + 1, 9)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO kpi_daily (workspace, day, currency, orders, revenue_minor, paid, pending, refunds_minor, updated_at) \
             VALUES {values} ON CONFLICT (workspace, day, currency) DO UPDATE SET \
               orders = kpi_daily.orders + excluded.orders, \
               revenue_minor = kpi_daily.revenue_minor + excluded.revenue_minor, \
               paid = kpi_daily.paid + excluded.paid, \
               pending = kpi_daily.pending + excluded.pending, \
               refunds_minor = kpi_daily.refunds_minor + excluded.refunds_minor, \
               updated_at = excluded.updated_at"
        );
        let mut q = sqlx::query(&sql);
        for ((ws, day, currency), d) in chunk {
            q = q
                .bind(*ws)
                .bind(day.as_str())
                .bind(currency.as_str())
                .bind(d.orders)
                .bind(d.revenue)
                .bind(d.paid)
                .bind(d.pending)
                .bind(d.refunds)
                .bind(now.as_millis());
        }
        q.execute(&mut *conn).await.map_err(db_err)?;
    }
    for ((ws, day, currency), _) in changed.iter().filter(|(_, d)| d.orders < 0) {
        sqlx::query(
            "DELETE FROM kpi_daily WHERE workspace = $1 AND day = $2 AND currency = $3 AND orders = 0",
        )
        .bind(*ws)
        .bind(day.as_str())
        .bind(currency.as_str())
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

fn daily(r: &sqlx::any::AnyRow) -> Result<DailyKpi, RepoError> {
    Ok(DailyKpi {
        day: r.try_get("day").map_err(db_err)?,
        currency: r.try_get("currency").map_err(db_err)?,
        orders: r.try_get("orders").map_err(db_err)?,
        revenue: Minor(r.try_get("revenue_minor").map_err(db_err)?),
        paid: r.try_get("paid").map_err(db_err)?,
        pending: r.try_get("pending").map_err(db_err)?,
        refunds: Minor(r.try_get("refunds_minor").map_err(db_err)?),
    })
}

#[async_trait]
impl CommerceRepo for Store {
    async fn apply_many(
        &self,
        batch: &[ToApply],
        now: Timestamp,
    ) -> Result<Vec<InboundId>, RepoError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin().await?;
        // The processed marks first: an event another process applied meanwhile is skipped.
        let mut fresh = HashSet::with_capacity(batch.len());
        for chunk in batch.chunks(500) {
            let sql = format!(
                "UPDATE inbound SET processed_at = $1, lease_owner = NULL, lease_until = NULL \
                 WHERE processed_at IS NULL AND id IN ({}) RETURNING id",
                params(2, chunk.len())
            );
            let mut q = sqlx::query_scalar::<_, i64>(&sql).bind(now.as_millis());
            for one in chunk {
                q = q.bind(one.inbound.0);
            }
            fresh.extend(q.fetch_all(&mut *tx).await.map_err(db_err)?);
        }
        let todo: Vec<&ToApply> = batch
            .iter()
            .filter(|one| fresh.contains(&one.inbound.0))
            .collect();
        // The newest state of each order in the batch (a later event wins a tie, as applying
        // them one by one would).
        let mut orders: BTreeMap<(&WorkspaceSlug, &str), &Order> = BTreeMap::new();
        for one in &todo {
            let ws = &one.envelope.workspace;
            match &one.envelope.event {
                CommerceEvent::OrderCreated(o) | CommerceEvent::OrderPaid(o) => {
                    let slot = orders.entry((ws, o.id.as_str())).or_insert(o);
                    if o.updated_at >= slot.updated_at {
                        *slot = o;
                    }
                }
                CommerceEvent::Fulfilment { update, .. } => {
                    sqlx::query(
                        "INSERT INTO fulfilment_orders (workspace, order_id, reference, status, max_delivery_day, tracking_url, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (workspace, order_id) DO UPDATE SET \
                           reference = COALESCE(excluded.reference, fulfilment_orders.reference), \
                           status = COALESCE(excluded.status, fulfilment_orders.status), \
                           max_delivery_day = COALESCE(excluded.max_delivery_day, fulfilment_orders.max_delivery_day), \
                           tracking_url = COALESCE(excluded.tracking_url, fulfilment_orders.tracking_url), \
                           updated_at = excluded.updated_at",
                    )
                    .bind(ws.as_str())
                    .bind(update.order_id.as_str())
                    .bind(update.reference.clone())
                    .bind(update.status.clone())
                    .bind(update.max_delivery_day.clone())
                    .bind(update.tracking_url.clone())
                    .bind(now.as_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                }
                CommerceEvent::ProductUpdated { .. }
                | CommerceEvent::AppUninstalled { .. }
                | CommerceEvent::StoreProductDeleted { .. }
                | CommerceEvent::Other { .. } => {}
            }
        }
        let rows: Vec<(&WorkspaceSlug, &Order)> =
            orders.iter().map(|((ws, _), o)| (*ws, *o)).collect();
        let mut deltas = Deltas::new();
        upsert_orders(&mut tx, self.backend(), &rows, &mut deltas).await?;
        let contexts: Vec<WriteCtx> = todo
            .iter()
            .map(|one| WriteCtx {
                actor: Actor::system(),
                inbound: Some(krake_core::inbound::InboundMark::new(one.inbound)),
                now,
            })
            .collect();
        let threads: Vec<(&krake_core::inbox::NewThread, &WriteCtx)> = todo
            .iter()
            .zip(&contexts)
            .flat_map(|(one, ctx)| one.threads.iter().map(move |t| (t, ctx)))
            .collect();
        create_many_in(&mut tx, &threads).await?;
        // The roll-ups last: every transaction takes their row locks after all the others
        // it needs, in key order, and adds its own changes to what is committed.
        roll_up(&mut tx, &deltas, now).await?;
        // Then the versions of the workspaces whose roll-ups changed (readers keep boards'
        // days while these stay the same).
        let changed: BTreeSet<&str> = deltas
            .iter()
            .filter(|(_, d)| **d != Share::default())
            .map(|((ws, _, _), _)| *ws)
            .collect();
        crate::metrics::bump_kpi_versions(&mut tx, &changed).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(todo.iter().map(|one| one.inbound).collect())
    }

    async fn daily_since(
        &self,
        workspace: &WorkspaceSlug,
        from: &str,
    ) -> Result<Vec<DailyKpi>, RepoError> {
        let sql = "SELECT day, currency, orders, revenue_minor, paid, pending, refunds_minor FROM kpi_daily WHERE workspace = $1 AND day >= $2 ORDER BY day, currency";
        if let Some(direct) = &self.direct {
            // On an SQLite file through the direct readers (see `metrics`).
            let binds = vec![
                crate::inbox::ListBind::Text(workspace.to_string()),
                crate::inbox::ListBind::Text(from.to_owned()),
            ];
            return direct
                .rows(sql.to_owned(), binds, |r| {
                    Ok(DailyKpi {
                        day: r.get(0)?,
                        currency: r.get(1)?,
                        orders: r.get(2)?,
                        revenue: Minor(r.get(3)?),
                        paid: r.get(4)?,
                        pending: r.get(5)?,
                        refunds: Minor(r.get(6)?),
                    })
                })
                .await;
        }
        let rows = sqlx::query(sql)
            .bind(workspace.as_str())
            .bind(from)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(daily).collect()
    }

    async fn daily_since_of(
        &self,
        workspaces: &[WorkspaceSlug],
        from: &str,
    ) -> Result<Vec<(WorkspaceSlug, DailyKpi)>, RepoError> {
        if workspaces.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT workspace, day, currency, orders, revenue_minor, paid, pending, refunds_minor \
             FROM kpi_daily WHERE day >= $1 AND workspace IN ({}) ORDER BY workspace, day, currency",
            crate::metrics::placeholders(2, workspaces.len())
        );
        let rows: Vec<(String, DailyKpi)> = if let Some(direct) = &self.direct {
            let mut binds = vec![crate::inbox::ListBind::Text(from.to_owned())];
            binds.extend(
                workspaces
                    .iter()
                    .map(|w| crate::inbox::ListBind::Text(w.to_string())),
            );
            direct
                .rows(sql, binds, |r| {
                    Ok((
                        r.get(0)?,
                        DailyKpi {
                            day: r.get(1)?,
                            currency: r.get(2)?,
                            orders: r.get(3)?,
                            revenue: Minor(r.get(4)?),
                            paid: r.get(5)?,
                            pending: r.get(6)?,
                            refunds: Minor(r.get(7)?),
                        },
                    ))
                })
                .await?
        } else {
            let mut q = sqlx::query(&sql).bind(from);
            for w in workspaces {
                q = q.bind(w.as_str());
            }
            q.fetch_all(&self.pool)
                .await
                .map_err(db_err)?
                .iter()
                .map(|r| Ok((r.try_get("workspace").map_err(db_err)?, daily(r)?)))
                .collect::<Result<_, RepoError>>()?
        };
        Ok(rows
            .into_iter()
            .filter_map(|(w, d)| {
                let ws = workspaces.iter().find(|s| s.as_str() == w)?;
                Some((ws.clone(), d))
            })
            .collect())
    }

    async fn kpis(
        &self,
        workspace: &WorkspaceSlug,
        days: u32,
        now: Timestamp,
    ) -> Result<Kpis, RepoError> {
        let offset: Option<i64> = sqlx::query_scalar("SELECT utc_offset_min FROM commerce_orders WHERE workspace = $1 ORDER BY created_at DESC LIMIT 1")
            .bind(workspace.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        let today = offset.map(|o| now.day_at_offset(i32::try_from(o).unwrap_or(0)));
        let rows = sqlx::query(&format!(
            "SELECT day, currency, orders, revenue_minor, paid, pending, refunds_minor FROM kpi_daily WHERE workspace = $1 ORDER BY day DESC, currency LIMIT {}",
            days.clamp(1, 366)
        ))
        .bind(workspace.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let days: Vec<DailyKpi> = rows.iter().map(daily).collect::<Result<_, _>>()?;
        let today_figures = days
            .iter()
            .filter(|d| Some(&d.day) == today.as_ref())
            .cloned()
            .collect();
        let rows = sqlx::query("SELECT COALESCE(status, 'unknown') AS status, COUNT(*) AS n FROM fulfilment_orders WHERE workspace = $1 GROUP BY COALESCE(status, 'unknown') ORDER BY 1")
            .bind(workspace.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let fulfilment = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("status").map_err(db_err)?,
                    r.try_get::<i64, _>("n").map_err(db_err)?,
                ))
            })
            .collect::<Result<Vec<_>, RepoError>>()?;
        let late_day = today.clone().unwrap_or_else(|| now.day_at_offset(0));
        let late_orders: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM fulfilment_orders WHERE workspace = $1 AND max_delivery_day IS NOT NULL AND max_delivery_day < $2 \
             AND COALESCE(status, '') NOT IN ('delivered', 'canceled', 'cancelled', 'failed')",
        )
        .bind(workspace.as_str())
        .bind(late_day)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(Kpis {
            workspace: workspace.clone(),
            today,
            today_figures,
            days,
            fulfilment,
            late_orders,
        })
    }
}
