//! Commerce: events from the shops (Shopify) and the print partner (Gelato) in core's words,
//! the KPIs they add up to per workspace, and the rules that turn events into work.
//!
//! Adapters verify and parse the vendor payloads into [`CommerceEvent`]s, which the
//! [`CommerceIntake`] stores as inbound events before the vendor gets its 200. The [`CommerceProcessor`] then applies each
//! stored event exactly once: the order/fulfilment state, the day's roll-up, the threads its
//! rules open and the inbound event's processed mark are written in one transaction.

mod intake;
mod rules;
pub use intake::{CommerceIntake, Taken};
pub use rules::{EventRule, RuleAction, Trigger, default_rules, threads_for};

use crate::actor::Actor;
use crate::inbound::{InboundId, StoredInbound};
use crate::inbox::NewThread;
use crate::ports::{InboundRepo, RepoError};
use crate::time::{Clock, Timestamp};
use crate::workspace::WorkspaceSlug;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

/// An amount of money in minor units (cents) of a currency, kept exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Minor(pub i64);

impl Minor {
    /// Parses a decimal amount as sent by shops (`"403.00"`, `"12.5"`, `"-3"`), without floats.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (neg, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || frac.len() > 2
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let whole: i64 = whole.parse().ok()?;
        let frac: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().ok()? * 10,
            _ => frac.parse().ok()?,
        };
        let v = whole.checked_mul(100)?.checked_add(frac)?;
        Some(Minor(if neg { -v } else { v }))
    }
}

impl std::fmt::Display for Minor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        f.pad(&format!("{sign}{}.{:02}", a / 100, a % 100))
    }
}

/// A shop order as the KPIs need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// The shop's order id, as text so ids beyond 2^53 stay exact.
    pub id: String,
    /// The order's name shown to people (`#1001`).
    pub name: String,
    /// The shop-local day it was created (`2024-06-26`).
    pub day: String,
    /// The shop's UTC offset in minutes when it was created (shops send local times).
    pub utc_offset_minutes: i32,
    /// When it was created.
    pub created_at: Timestamp,
    /// When the shop last changed it (newer data wins; older deliveries are ignored).
    pub updated_at: Timestamp,
    /// ISO 4217 currency of the shop.
    pub currency: String,
    /// The order total.
    pub total: Minor,
    /// Refunded so far.
    pub refunded: Minor,
    /// `paid`, `pending`, `authorized`, `refunded`, `voided`, …
    pub financial_status: String,
    /// The customer's e-mail, if given.
    pub email: Option<String>,
    /// The customer's first name, if given.
    pub customer_name: Option<String>,
}

/// A fulfilment update from the print partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fulfilment {
    /// Gelato's order id.
    pub order_id: String,
    /// The shop's reference for it.
    pub reference: Option<String>,
    /// New fulfilment status (`created`, `passed`, `in_production`, `shipped`, `delivered`,
    /// `canceled`, `failed`, …), when the event carries one.
    pub status: Option<String>,
    /// Latest delivery date promised (`2022-11-05`), when the event carries one.
    pub max_delivery_day: Option<String>,
    /// Tracking URL, when the event carries one.
    pub tracking_url: Option<String>,
}

/// What happened, in core's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CommerceEvent {
    /// A new order (`orders/create`).
    OrderCreated(Order),
    /// An order was paid (`orders/paid`).
    OrderPaid(Order),
    /// A product changed (`products/update`).
    ProductUpdated {
        /// Product id (exact).
        id: String,
        /// Its title.
        title: String,
    },
    /// The shop removed the app (`app/uninstalled`): webhooks stop.
    AppUninstalled {
        /// The shop's domain.
        shop: String,
    },
    /// A fulfilment change from Gelato.
    Fulfilment {
        /// The Gelato event name (`order_status_updated`, …).
        event: String,
        /// The change.
        update: Fulfilment,
    },
    /// A product was deleted from the Gelato store.
    StoreProductDeleted {
        /// The store product id.
        id: String,
    },
    /// Anything else: stored and acknowledged, no effect.
    Other {
        /// The vendor's topic or event name.
        topic: String,
    },
}

impl CommerceEvent {
    /// The rule trigger this event matches.
    pub fn trigger(&self) -> Trigger {
        match self {
            CommerceEvent::OrderCreated(_) => Trigger::OrderCreated,
            CommerceEvent::OrderPaid(_) => Trigger::OrderPaid,
            CommerceEvent::AppUninstalled { .. } => Trigger::AppUninstalled,
            CommerceEvent::Fulfilment { update, .. } => match update.status.as_deref() {
                Some("canceled" | "cancelled") => Trigger::FulfilmentCanceled,
                Some("failed") => Trigger::FulfilmentFailed,
                _ => Trigger::Other,
            },
            _ => Trigger::Other,
        }
    }
}

/// A stored commerce event: the workspace it belongs to and what happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommerceEnvelope {
    /// The workspace (from the shop domain or the Gelato token).
    pub workspace: WorkspaceSlug,
    /// The event.
    pub event: CommerceEvent,
}

/// A day's figures for one workspace and currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyKpi {
    /// The shop-local day (`2024-06-26`).
    pub day: String,
    /// The currency.
    pub currency: String,
    /// Orders created that day.
    pub orders: i64,
    /// Their total.
    pub revenue: Minor,
    /// Of them, paid.
    pub paid: i64,
    /// Of them, pending (pending, authorized, partially paid).
    pub pending: i64,
    /// Refunded on them.
    pub refunds: Minor,
}

impl DailyKpi {
    /// Average order value (0 when there are no orders).
    pub fn average_order_value(&self) -> Minor {
        if self.orders == 0 {
            Minor(0)
        } else {
            Minor(self.revenue.0 / self.orders)
        }
    }
}

/// A workspace's KPIs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kpis {
    /// The workspace.
    pub workspace: WorkspaceSlug,
    /// The day "today" refers to (the shop-local day of the newest order; `None` before any).
    pub today: Option<String>,
    /// Today's figures, one per currency.
    pub today_figures: Vec<DailyKpi>,
    /// Recent days, newest first (the daily roll-ups).
    pub days: Vec<DailyKpi>,
    /// Print orders by fulfilment status.
    pub fulfilment: Vec<(String, i64)>,
    /// Print orders past their latest delivery day and not delivered or canceled.
    pub late_orders: i64,
}

/// One stored event ready to apply: what it says and the threads its rules open.
#[derive(Debug, Clone)]
pub struct ToApply {
    /// The stored inbound event.
    pub inbound: InboundId,
    /// What it says.
    pub envelope: CommerceEnvelope,
    /// The threads its rules open.
    pub threads: Vec<NewThread>,
}

/// Where commerce state lives.
#[async_trait]
pub trait CommerceRepo: Send + Sync {
    /// Applies stored events in one transaction, each exactly once: the order or fulfilment
    /// state (newer wins), the roll-up of each day touched (changed by what the batch changes
    /// in its orders), the rule threads, and each event's processed mark. An event applied before (by this or
    /// another process) is skipped with everything it would have written; returns the events
    /// applied now.
    async fn apply_many(
        &self,
        batch: &[ToApply],
        now: Timestamp,
    ) -> Result<Vec<InboundId>, RepoError>;

    /// Applies one stored event exactly once (see [`CommerceRepo::apply_many`]). Fails with
    /// [`RepoError::AlreadyApplied`] if it was applied before.
    async fn apply(
        &self,
        inbound: InboundId,
        env: &CommerceEnvelope,
        threads: &[NewThread],
        now: Timestamp,
    ) -> Result<(), RepoError> {
        let one = ToApply {
            inbound,
            envelope: env.clone(),
            threads: threads.to_vec(),
        };
        if self.apply_many(&[one], now).await?.is_empty() {
            return Err(RepoError::AlreadyApplied);
        }
        Ok(())
    }
    /// The daily roll-ups of a workspace from `from` (a day, inclusive), oldest first: one
    /// query, for KPI boards.
    async fn daily_since(
        &self,
        workspace: &WorkspaceSlug,
        from: &str,
    ) -> Result<Vec<DailyKpi>, RepoError> {
        let k = self.kpis(workspace, 366, Timestamp::from_millis(0)).await?;
        Ok(k.days
            .into_iter()
            .filter(|d| d.day.as_str() >= from)
            .collect())
    }
    /// [`CommerceRepo::daily_since`] for several workspaces at once (the overview), each row
    /// with its workspace. The default asks one workspace at a time; the store in one query.
    async fn daily_since_of(
        &self,
        workspaces: &[WorkspaceSlug],
        from: &str,
    ) -> Result<Vec<(WorkspaceSlug, DailyKpi)>, RepoError> {
        let mut out = Vec::new();
        for ws in workspaces {
            let days = self.daily_since(ws, from).await?;
            out.extend(days.into_iter().map(|d| (ws.clone(), d)));
        }
        Ok(out)
    }
    /// The KPIs of a workspace, with `days` daily roll-ups; `today` is the shop-local day
    /// "now" falls on (from the newest order's UTC offset).
    async fn kpis(
        &self,
        workspace: &WorkspaceSlug,
        days: u32,
        now: Timestamp,
    ) -> Result<Kpis, RepoError>;
}

/// The print partner's API could not be asked (down, refused, answered nonsense).
#[derive(Debug, thiserror::Error)]
#[error("the print partner could not be asked: {0}")]
pub struct LookupError(pub String);

/// The print partner's own record of its orders. Gelato signs no webhook, so before a status
/// that makes Krake act (a cancelled or failed order opens an escalation) the processor asks
/// the partner for the order's current status and acts on that answer instead.
#[async_trait]
pub trait FulfilmentSource: Send + Sync {
    /// The order's current fulfilment status (`shipped`, `canceled`, …); `Ok(None)` when the
    /// partner does not know the order.
    async fn fulfilment_status(
        &self,
        workspace: &WorkspaceSlug,
        order_id: &str,
    ) -> Result<Option<String>, LookupError>;
}

/// Applies stored commerce events: claims them with a lease, so a crashed process's events
/// return to the queue, and applies each exactly once.
pub struct CommerceProcessor {
    inbound: Arc<dyn InboundRepo>,
    commerce: Arc<dyn CommerceRepo>,
    clock: Arc<dyn Clock>,
    rules: Vec<EventRule>,
    routes: crate::delivery::Routes,
    owner: String,
    lease: Duration,
    reconcile: Option<Arc<dyn FulfilmentSource>>,
}

/// The inbound sources commerce events are stored under.
pub const SOURCES: [&str; 2] = ["shopify", "gelato"];

impl CommerceProcessor {
    /// A processor with these rules; threads it opens are posted to `routes`.
    pub fn new(
        inbound: Arc<dyn InboundRepo>,
        commerce: Arc<dyn CommerceRepo>,
        clock: Arc<dyn Clock>,
        rules: Vec<EventRule>,
        routes: crate::delivery::Routes,
        owner: impl Into<String>,
    ) -> Self {
        Self {
            inbound,
            commerce,
            clock,
            rules,
            routes,
            owner: owner.into(),
            lease: Duration::from_secs(60),
            reconcile: None,
        }
    }

    /// Confirms fulfilment statuses that would make Krake act with the partner's API first.
    pub fn with_reconciliation(mut self, source: Arc<dyn FulfilmentSource>) -> Self {
        self.reconcile = Some(source);
        self
    }

    /// Sets how long a claimed batch stays with this process (default 60 s); after a crash,
    /// another process takes the batch over when the lease ends.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Claims and applies up to `limit` events per source; returns how many were applied.
    /// Each claimed batch is applied in one transaction (see [`CommerceRepo::apply_many`]).
    pub async fn run_once(&self, limit: u32) -> Result<usize, RepoError> {
        let mut applied = 0;
        for source in SOURCES {
            let now = self.clock.now();
            let claimed = self
                .inbound
                .claim_inbound(source, &self.owner, now, self.lease, limit)
                .await?;
            let mut batch = Vec::with_capacity(claimed.len());
            for stored in &claimed {
                if let Some(one) = self.prepare(stored).await? {
                    batch.push(one);
                }
            }
            if !batch.is_empty() {
                applied += self
                    .commerce
                    .apply_many(&batch, self.clock.now())
                    .await?
                    .len();
            }
        }
        Ok(applied)
    }

    /// What applying one stored event writes, or `None` when it is settled without applying
    /// (unreadable, unknown to the print partner) or must wait (the partner could not be asked).
    async fn prepare(&self, stored: &StoredInbound) -> Result<Option<ToApply>, RepoError> {
        let env: CommerceEnvelope = match serde_json::from_str(&stored.event.content) {
            Ok(e) => e,
            Err(e) => {
                // Stored by an older or newer Krake in a shape this one cannot read: keep the
                // row (processed, with the reason) rather than retrying forever.
                tracing::error!(id = stored.id.0, error = %e, "unreadable commerce event; marked processed");
                let note = format!(
                    "{{\"error\":\"unreadable event: {}\"}}",
                    e.to_string().replace('"', "'")
                );
                self.inbound
                    .complete_inbound(stored.id, Some(&note), self.clock.now())
                    .await?;
                return Ok(None);
            }
        };
        let mut env = env;
        let mut threads = threads_for(&self.rules, &env);
        if let (Some(source), false) = (&self.reconcile, threads.is_empty()) {
            let CommerceEnvelope { workspace, event } = &mut env;
            if let CommerceEvent::Fulfilment { update, .. } = event {
                match source.fulfilment_status(workspace, &update.order_id).await {
                    Ok(Some(current)) => {
                        if update.status.as_deref() != Some(current.as_str()) {
                            tracing::info!(
                                order = %update.order_id,
                                sent = ?update.status,
                                current = %current,
                                "the print partner reports another status; acting on its answer"
                            );
                            update.status = Some(current);
                        }
                    }
                    Ok(None) => {
                        tracing::warn!(id = stored.id.0, order = %update.order_id, "the print partner does not know this order; the event is recorded and not acted on");
                        self.inbound
                            .complete_inbound(
                                stored.id,
                                Some("{\"error\":\"order unknown to the print partner; not acted on\"}"),
                                self.clock.now(),
                            )
                            .await?;
                        return Ok(None);
                    }
                    Err(e) => {
                        // The event stays claimed; another pass takes it up when the lease ends.
                        tracing::warn!(id = stored.id.0, error = %e, "could not confirm a fulfilment status; will retry");
                        return Ok(None);
                    }
                }
            }
            threads = threads_for(&self.rules, &env);
        }
        for t in &mut threads {
            t.post_to = self.routes.for_workspace(&t.workspace).to_vec();
        }
        Ok(Some(ToApply {
            inbound: stored.id,
            envelope: env,
            threads,
        }))
    }
}

/// Renders KPIs as a compact monospace table for chat.
pub fn render_kpis(k: &Kpis, workspace_name: &str) -> String {
    let mut t = String::new();
    match &k.today {
        None => {
            let _ = write!(t, "No orders in {workspace_name} yet.");
        }
        Some(day) => {
            let _ = writeln!(t, "{workspace_name} today ({day}):");
            if k.today_figures.is_empty() {
                let _ = writeln!(t, "  no orders yet today");
            }
            for d in &k.today_figures {
                let _ = writeln!(
                    t,
                    "  revenue   {:>12} {}",
                    d.revenue.to_string(),
                    d.currency
                );
                let _ = writeln!(t, "  orders    {:>12}", d.orders);
                let _ = writeln!(
                    t,
                    "  avg order {:>12} {}",
                    d.average_order_value().to_string(),
                    d.currency
                );
                let _ = writeln!(t, "  paid      {:>12}   pending {}", d.paid, d.pending);
                if d.refunds.0 != 0 {
                    let _ = writeln!(
                        t,
                        "  refunds   {:>12} {}",
                        d.refunds.to_string(),
                        d.currency
                    );
                }
            }
            let older: Vec<&DailyKpi> = k
                .days
                .iter()
                .filter(|d| Some(&d.day) != k.today.as_ref())
                .take(6)
                .collect();
            if !older.is_empty() {
                let _ = writeln!(t, "Earlier days:");
                for d in older {
                    let _ = writeln!(
                        t,
                        "  {}  {:>4} orders  {:>12} {}",
                        d.day,
                        d.orders,
                        d.revenue.to_string(),
                        d.currency
                    );
                }
            }
        }
    }
    if !k.fulfilment.is_empty() || k.late_orders > 0 {
        let states: Vec<String> = k
            .fulfilment
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        let _ = write!(
            t,
            "\nPrint orders: {}; late: {}",
            states.join(", "),
            k.late_orders
        );
    }
    t.trim_end().to_owned()
}

/// The actor commerce rules act as.
pub fn commerce_actor() -> Actor {
    Actor::system()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::ThreadKind;

    #[test]
    fn money_parses_exactly() {
        assert_eq!(Minor::parse("403.00"), Some(Minor(40300)));
        assert_eq!(Minor::parse("12.5"), Some(Minor(1250)));
        assert_eq!(Minor::parse("7"), Some(Minor(700)));
        assert_eq!(Minor::parse("-3.10"), Some(Minor(-310)));
        assert_eq!(
            Minor::parse("1585.90").map(|m| m.to_string()),
            Some("1585.90".to_owned())
        );
        for bad in ["", "abc", "1.234", "1,00", "--1", ".5", "1e3"] {
            assert_eq!(Minor::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn rules_open_threads_with_stable_keys() {
        let o = Order {
            id: "820982911946154508".into(),
            name: "#9999".into(),
            day: "2024-06-26".into(),
            utc_offset_minutes: -240,
            created_at: Timestamp::from_millis(0),
            updated_at: Timestamp::from_millis(0),
            currency: "USD".into(),
            total: Minor(158590),
            refunded: Minor(0),
            financial_status: "voided".into(),
            email: Some("jon@example.com".into()),
            customer_name: Some("Jon".into()),
        };
        let env = CommerceEnvelope {
            workspace: WorkspaceSlug::parse("lunavo").unwrap(),
            event: CommerceEvent::OrderCreated(o),
        };
        let t = threads_for(&default_rules(), &env);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].kind, ThreadKind::Approval);
        assert_eq!(t[0].agent.as_deref(), Some("Cassie"));
        assert_eq!(
            t[0].origin_key.as_deref(),
            Some("inbound:lunavo:order:820982911946154508:created:rule:0"),
            "keyed by content, not by delivery"
        );
        assert!(t[0].body.contains("820982911946154508") && t[0].body.contains("1585.90 USD"));
        let failed = CommerceEnvelope {
            workspace: WorkspaceSlug::parse("monarch").unwrap(),
            event: CommerceEvent::Fulfilment {
                event: "order_status_updated".into(),
                update: Fulfilment {
                    order_id: "g1".into(),
                    reference: Some("R1".into()),
                    status: Some("failed".into()),
                    max_delivery_day: None,
                    tracking_url: None,
                },
            },
        };
        let t = threads_for(&default_rules(), &failed);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].kind, ThreadKind::Escalation);
        let shipped = CommerceEnvelope {
            workspace: WorkspaceSlug::parse("monarch").unwrap(),
            event: CommerceEvent::Fulfilment {
                event: "order_status_updated".into(),
                update: Fulfilment {
                    order_id: "g1".into(),
                    reference: None,
                    status: Some("shipped".into()),
                    max_delivery_day: None,
                    tracking_url: None,
                },
            },
        };
        assert!(threads_for(&default_rules(), &shipped).is_empty());
    }
}
