//! KPIs per workspace: what each workspace measures ([`KpiDef`], defaults per workspace,
//! overridable in the config's `[[kpis]]`), where the figures come from ([`Source`]: commerce,
//! pushed metrics, folders, Binance, formulas over other KPIs), and how they add up over a
//! day, a week or a month ([`board`]).
//!
//! Pushed metrics are points `{name, value, at}` stored per workspace ([`MetricRepo`]) and
//! rolled up per day; every KPI is computed from daily values, so a board over a year of
//! history reads at most a few hundred small rows.

pub mod board;
mod config;
pub mod demo;
mod desk;
pub mod formula;
mod reader;
mod render;

pub use board::{Board, Figure, Overview, OverviewRow};
pub use config::{KpiEntry, KpiSettings, default_kpis, kpi_defs};
pub use desk::{KpiDesk, MAX_POINTS_PER_PUSH, PointInput, PushRefused};
pub use formula::{Formula, FormulaError};
pub use reader::KpiReader;
pub use render::{age, kpi_cards, render_board, render_overview, sparkline};

use crate::ports::RepoError;
use crate::time::Timestamp;
use crate::workspace::WorkspaceSlug;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A KPI's or a metric's name: lowercase letters, digits, `_` and `.`, 1 to 64 characters,
/// starting with a letter (`visitors`, `binance.portfolio_value`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MetricName(String);

impl MetricName {
    /// Checks a name; the error says what a name may hold.
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "`{}` is not a metric name: use 1 to 64 lowercase letters, digits, `_` or `.`, starting with a letter",
                crate::text::one_line(s, 40)
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MetricName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<MetricName> for String {
    fn from(n: MetricName) -> Self {
        n.0
    }
}

impl std::fmt::Display for MetricName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a KPI's numbers are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unit {
    /// Money in a currency (ISO 4217, `EUR`).
    Money(String),
    /// A count (visitors, downloads).
    Count,
    /// Percentage points (`2.5` is 2.5 %).
    Percent,
    /// A plain ratio (`0.42`).
    Ratio,
}

/// How a KPI's data points add up, per day and over its period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    /// The latest value (a balance, a score, a follower count).
    Last,
    /// The sum (revenue, visitors, downloads).
    #[default]
    Sum,
    /// The mean of the daily values (daily active users over a week).
    Average,
}

/// The span a KPI is judged over, ending today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Today.
    #[default]
    Day,
    /// The last 7 days.
    Week,
    /// The last 30 days.
    Month,
}

impl Period {
    /// Its length in days.
    pub fn days(self) -> u32 {
        match self {
            Period::Day => 1,
            Period::Week => 7,
            Period::Month => 30,
        }
    }

    /// How it reads in a sentence ("today", "7 days", "30 days").
    pub fn label(self) -> &'static str {
        match self {
            Period::Day => "today",
            Period::Week => "7 days",
            Period::Month => "30 days",
        }
    }
}

/// Which way is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// More is better (revenue).
    #[default]
    Higher,
    /// Less is better (refunds, churn).
    Lower,
}

/// A commerce figure, from the orders Krake has applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommerceFigure {
    /// Order totals (converted to the KPI's currency).
    Revenue,
    /// Number of orders.
    Orders,
    /// Refunded amounts.
    Refunds,
}

/// Where a KPI's figures come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The workspace's commerce state (`commerce.revenue`, `commerce.orders`,
    /// `commerce.refunds`).
    Commerce(CommerceFigure),
    /// Every workspace's commerce revenue, converted (`all.revenue`; the Management total).
    AllRevenue,
    /// Pushed points of this metric (`metric:visitors`, or just `visitors`).
    Metric(MetricName),
    /// A folder column: `folder:AGENT/FOLDER.COLUMN`, optionally by a date column's day.
    Folder {
        /// The agent owning the folder.
        agent: String,
        /// The folder.
        folder: String,
        /// The number column aggregated (`count` counts entries).
        column: String,
        /// A date column giving each entry's day (for trends and periods); without it the
        /// KPI is the folder's current total.
        date_column: Option<String>,
    },
    /// The Binance portfolio's value, as polled (the metric `binance.portfolio_value`).
    Binance,
    /// A formula over other KPIs of the workspace or its metrics.
    Formula(Formula),
}

/// The metric the Binance poller writes.
pub const BINANCE_METRIC: &str = "binance.portfolio_value";

impl Source {
    /// Reads `source` as written in the config (`formula` given separately).
    pub fn parse(source: &str) -> Result<Self, String> {
        let s = source.trim();
        Ok(match s {
            "commerce.revenue" => Source::Commerce(CommerceFigure::Revenue),
            "commerce.orders" => Source::Commerce(CommerceFigure::Orders),
            "commerce.refunds" => Source::Commerce(CommerceFigure::Refunds),
            "all.revenue" => Source::AllRevenue,
            "binance" => Source::Binance,
            _ => {
                if let Some(rest) = s.strip_prefix("folder:") {
                    let (path, date_column) = match rest.split_once('@') {
                        Some((p, d)) => (p, Some(d.trim().to_owned())),
                        None => (rest, None),
                    };
                    let (agent, folder_col) = path.split_once('/').ok_or_else(|| {
                        format!("`{s}`: a folder source reads `folder:AGENT/FOLDER.COLUMN` (e.g. `folder:soshie/posts.reach`)")
                    })?;
                    let (folder, column) = folder_col.rsplit_once('.').ok_or_else(|| {
                        format!("`{s}`: name the column after the folder (`folder:{agent}/{folder_col}.reach`, or `.count`)")
                    })?;
                    Source::Folder {
                        agent: agent.trim().to_lowercase(),
                        folder: folder.trim().to_owned(),
                        column: column.trim().to_owned(),
                        date_column,
                    }
                } else {
                    let name = s.strip_prefix("metric:").unwrap_or(s);
                    Source::Metric(MetricName::parse(name).map_err(|e| {
                        format!("source {e}; or use commerce.revenue, commerce.orders, commerce.refunds, all.revenue, binance, folder:AGENT/FOLDER.COLUMN")
                    })?)
                }
            }
        })
    }

    /// How it is written in the config.
    pub fn describe(&self) -> String {
        match self {
            Source::Commerce(CommerceFigure::Revenue) => "commerce.revenue".into(),
            Source::Commerce(CommerceFigure::Orders) => "commerce.orders".into(),
            Source::Commerce(CommerceFigure::Refunds) => "commerce.refunds".into(),
            Source::AllRevenue => "all.revenue".into(),
            Source::Metric(m) => format!("metric:{m}"),
            Source::Folder {
                agent,
                folder,
                column,
                date_column,
            } => match date_column {
                Some(d) => format!("folder:{agent}/{folder}.{column}@{d}"),
                None => format!("folder:{agent}/{folder}.{column}"),
            },
            Source::Binance => "binance".into(),
            Source::Formula(f) => format!("formula {f}"),
        }
    }
}

/// One KPI of a workspace.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiDef {
    /// Its key, unique in the workspace (`conversion_rate`); formulas name KPIs by it.
    pub key: MetricName,
    /// What people read ("Conversion rate").
    pub name: String,
    /// Its unit.
    pub unit: Unit,
    /// Where its figures come from.
    pub source: Source,
    /// How points add up.
    pub aggregate: Aggregate,
    /// The span it is judged over.
    pub period: Period,
    /// The value aimed at over the period, if any.
    pub target: Option<f64>,
    /// Which way is good.
    pub direction: Direction,
    /// A value older than this many hours is shown as stale (for `last` KPIs).
    pub stale_after_hours: Option<u32>,
}

/// A pushed data point.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// The metric.
    pub name: MetricName,
    /// Its value.
    pub value: f64,
    /// When it was measured.
    pub at: Timestamp,
    /// The day it counts for (in Krake's time zone), `YYYY-MM-DD`.
    pub day: String,
    /// A key making the push idempotent: a point whose key was stored before is not stored
    /// again.
    pub key: Option<String>,
    /// Demo data (`krake serve --demo`), shown as such.
    pub demo: bool,
}

/// One metric's roll-up for one day.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDay {
    /// The metric.
    pub name: String,
    /// The day, `YYYY-MM-DD`.
    pub day: String,
    /// Sum of the day's points.
    pub sum: f64,
    /// How many points.
    pub count: i64,
    /// The latest point's value.
    pub last: f64,
    /// When the latest point was measured.
    pub last_at: Timestamp,
    /// Whether any of the day's points is demo data.
    pub demo: bool,
}

/// What a push stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Pushed {
    /// Points stored now.
    pub stored: usize,
    /// Points whose key was stored before (not stored again).
    pub duplicates: usize,
}

/// Where pushed metrics live.
#[async_trait]
pub trait MetricRepo: Send + Sync {
    /// Stores points for a workspace in one transaction and adds them to their days'
    /// roll-ups; a point whose key exists is skipped.
    async fn record_metrics(
        &self,
        workspace: &WorkspaceSlug,
        points: &[MetricPoint],
    ) -> Result<Pushed, RepoError>;
    /// The daily roll-ups of these metrics from `from` to `to` (days, inclusive), plus for
    /// each metric its latest day before `from` (so a `last` value carries into the window).
    async fn metric_days(
        &self,
        workspace: &WorkspaceSlug,
        names: &[String],
        from: &str,
        to: &str,
    ) -> Result<Vec<MetricDay>, RepoError>;
    /// Each workspace's KPI version: a counter raised in every transaction that changes what
    /// its boards read (its pushed metrics or its commerce roll-ups), in any process. A
    /// workspace without an entry has never changed. A store that keeps versions raises them
    /// for its commerce roll-ups too, so a reader's commerce repo must be the same store.
    /// `None` (the default): this store keeps no versions, and readers read every time.
    async fn kpi_versions(
        &self,
    ) -> Result<Option<std::collections::HashMap<WorkspaceSlug, i64>>, RepoError> {
        Ok(None)
    }
    /// [`MetricRepo::metric_days`] for several workspaces at once (the overview reads every
    /// workspace's), each row with its workspace. The default asks one workspace at a time;
    /// the store answers it in two queries.
    async fn metric_days_of(
        &self,
        wanted: &[(WorkspaceSlug, Vec<String>)],
        from: &str,
        to: &str,
    ) -> Result<Vec<(WorkspaceSlug, MetricDay)>, RepoError> {
        let mut out = Vec::new();
        for (ws, names) in wanted {
            let days = self.metric_days(ws, names, from, to).await?;
            out.extend(days.into_iter().map(|d| (ws.clone(), d)));
        }
        Ok(out)
    }
}
