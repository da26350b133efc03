//! Commerce state: orders, fulfilments, daily KPI roll-ups.

use crate::inbox::create_in;
use crate::{Store, db_err};
use async_trait::async_trait;
use krake_core::Actor;
use krake_core::commerce::{
    CommerceEnvelope, CommerceEvent, CommerceRepo, DailyKpi, Kpis, Minor, Order,
};
use krake_core::inbound::InboundId;
use krake_core::inbox::NewThread;
use krake_core::ports::{RepoError, WriteCtx};
use krake_core::time::Timestamp;
use krake_core::workspace::WorkspaceSlug;
use sqlx::{AnyConnection, Row};

async fn upsert_order(
    conn: &mut AnyConnection,
    ws: &WorkspaceSlug,
    o: &Order,
) -> Result<(), RepoError> {
    // Newer data wins: a delayed `orders/create` never overwrites a later `orders/paid`.
    sqlx::query(
        "INSERT INTO commerce_orders (workspace, order_id, name, day, utc_offset_min, created_at, updated_at, currency, total_minor, refunded_minor, financial_status) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (workspace, order_id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at, \
           currency = excluded.currency, total_minor = excluded.total_minor, refunded_minor = excluded.refunded_minor, \
           financial_status = excluded.financial_status \
         WHERE excluded.updated_at >= commerce_orders.updated_at",
    )
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
    .bind(o.financial_status.as_str())
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    // The roll-up of the order's day is recomputed from the orders of that day.
    let day: String = sqlx::query_scalar(
        "SELECT day FROM commerce_orders WHERE workspace = $1 AND order_id = $2",
    )
    .bind(ws.as_str())
    .bind(o.id.as_str())
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    sqlx::query("DELETE FROM kpi_daily WHERE workspace = $1 AND day = $2")
        .bind(ws.as_str())
        .bind(day.as_str())
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    sqlx::query(
        "INSERT INTO kpi_daily (workspace, day, currency, orders, revenue_minor, paid, pending, refunds_minor, updated_at) \
         SELECT workspace, day, currency, COUNT(*), SUM(total_minor), \
           SUM(CASE WHEN financial_status IN ('paid', 'partially_refunded', 'refunded') THEN 1 ELSE 0 END), \
           SUM(CASE WHEN financial_status IN ('pending', 'authorized', 'partially_paid') THEN 1 ELSE 0 END), \
           SUM(refunded_minor), $3 \
         FROM commerce_orders WHERE workspace = $1 AND day = $2 GROUP BY workspace, day, currency",
    )
    .bind(ws.as_str())
    .bind(day.as_str())
    .bind(o.updated_at.as_millis())
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
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
    async fn apply(
        &self,
        inbound: InboundId,
        env: &CommerceEnvelope,
        threads: &[NewThread],
        now: Timestamp,
    ) -> Result<(), RepoError> {
        let mut tx = self.begin().await?;
        let ctx = WriteCtx {
            actor: Actor::system(),
            inbound: Some(krake_core::inbound::InboundMark::new(inbound)),
            now,
        };
        let done = sqlx::query("UPDATE inbound SET processed_at = $1, lease_owner = NULL, lease_until = NULL WHERE id = $2 AND processed_at IS NULL")
            .bind(now.as_millis())
            .bind(inbound.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(RepoError::AlreadyApplied);
        }
        let ws = &env.workspace;
        match &env.event {
            CommerceEvent::OrderCreated(o) | CommerceEvent::OrderPaid(o) => {
                if self.backend() == crate::Backend::Postgres {
                    // Two processes recomputing one workspace's roll-up at once would each miss
                    // the other's order: serialise them (SQLite's writer lock already does).
                    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                        .bind(format!("krake:kpi:{ws}"))
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                }
                upsert_order(&mut tx, ws, o).await?
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
        for t in threads {
            create_in(&mut tx, t, &ctx).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(())
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
