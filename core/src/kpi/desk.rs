//! The KPI service on [`Krake`]: boards, the overview, pushed metrics and KPI alerts.

use super::board::{Activity, OverviewRow};
use super::reader::KpiReader;
use super::{
    Board, CommerceFigure, KpiDef, KpiSettings, MetricName, MetricPoint, MetricRepo, Overview,
    Pushed,
};
use crate::actor::{Actor, Role};
use crate::inbox::{NewThread, ThreadFilter, ThreadKind, ThreadStatus};
use crate::ports::RepoError;
use crate::service::Krake;
use crate::time::Timestamp;
use crate::workspace::WorkspaceSlug;
use chrono::{Days, NaiveDate};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What the KPI service needs: each workspace's KPIs, how currencies add up, and where
/// pushed metrics live.
pub struct KpiDesk {
    /// KPIs by workspace.
    pub defs: BTreeMap<WorkspaceSlug, Vec<KpiDef>>,
    /// Currency and rates.
    pub settings: KpiSettings,
    /// Pushed metrics.
    pub metrics: Arc<dyn MetricRepo>,
    /// Each workspace's days as last read, with the KPI version they were read at.
    pub(super) kept: std::sync::Mutex<HashMap<WorkspaceSlug, Arc<super::reader::WsDays>>>,
}

impl KpiDesk {
    /// The KPI service's setup: each workspace's KPIs, the currency settings, and the store
    /// of pushed metrics (which also keeps the KPI versions, see [`MetricRepo::kpi_versions`]).
    pub fn new(
        defs: BTreeMap<WorkspaceSlug, Vec<KpiDef>>,
        settings: KpiSettings,
        metrics: Arc<dyn MetricRepo>,
    ) -> Self {
        Self {
            defs,
            settings,
            metrics,
            kept: std::sync::Mutex::default(),
        }
    }
}

/// At most this many points per push.
pub const MAX_POINTS_PER_PUSH: usize = 1000;

/// One point as pushed (API or CLI), before it is checked.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct PointInput {
    /// The metric's name.
    pub name: String,
    /// Its value.
    pub value: f64,
    /// When it was measured: RFC 3339 (`2026-12-07T09:00:00Z`) or a day (`2026-12-07`);
    /// default now.
    #[serde(default)]
    pub at: Option<String>,
    /// Makes the push idempotent: a point with a key stored before is not stored again.
    #[serde(default)]
    pub key: Option<String>,
}

/// Why a push was refused (nothing of it was stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushRefused {
    /// No such workspace, or one the person may not see.
    #[error("no workspace `{0}` you may see")]
    Workspace(String),
    /// The person may see the workspace but not add to it (viewers, guests).
    #[error("{user} may not push metrics to {workspace}: it needs the member role there")]
    Role {
        /// Who.
        user: String,
        /// Where.
        workspace: String,
    },
    /// KPIs are not set up in this process.
    #[error("KPIs are not available here")]
    Unavailable,
    /// A point is malformed; `index` is its position in the batch.
    #[error("point {index}: {reason}")]
    Point {
        /// Its position, from 0.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The batch is empty or too large.
    #[error("{0}")]
    Batch(String),
}

pub(super) fn day_of(tz: chrono_tz::Tz, at: Timestamp) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(at.as_millis())
        .map(|t| t.with_timezone(&tz).date_naive())
        .unwrap_or_default()
}

pub(super) fn back(d: NaiveDate, n: u32) -> NaiveDate {
    d.checked_sub_days(Days::new(u64::from(n))).unwrap_or(d)
}

/// Parses a point's time: RFC 3339, or a day (noon in `tz`).
fn parse_at(s: &str, tz: chrono_tz::Tz) -> Result<Timestamp, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s.trim()) {
        return Ok(Timestamp::from_millis(t.timestamp_millis()));
    }
    if let Ok(d) = s.trim().parse::<NaiveDate>() {
        let noon = d.and_hms_opt(12, 0, 0).unwrap_or_default();
        if let Some(t) = noon.and_local_timezone(tz).earliest() {
            return Ok(Timestamp::from_millis(t.timestamp_millis()));
        }
    }
    Err(format!(
        "`at` `{}` is not a time: use RFC 3339 (2026-12-07T09:00:00Z) or a day (2026-12-07)",
        crate::text::one_line(s, 40)
    ))
}

impl Krake {
    /// The same service with KPIs (`/kpi`, `/overview`, pushed metrics).
    pub fn with_kpis(mut self, desk: Arc<KpiDesk>) -> Self {
        self.kpi_desk = Some(desk);
        self
    }

    /// Today in Krake's time zone.
    pub fn kpi_today(&self) -> NaiveDate {
        day_of(self.default_tz, self.clock.now())
    }

    /// Checks and stores pushed points for a workspace (member role there). All or nothing:
    /// one bad point refuses the batch and says which and why.
    pub async fn push_metrics(
        &self,
        actor: &Actor,
        workspace: &str,
        points: &[PointInput],
    ) -> Result<Result<Pushed, PushRefused>, RepoError> {
        self.push_points(actor, workspace, points, false).await
    }

    pub(crate) async fn push_points(
        &self,
        actor: &Actor,
        workspace: &str,
        points: &[PointInput],
        demo: bool,
    ) -> Result<Result<Pushed, PushRefused>, RepoError> {
        let Some(desk) = &self.kpi_desk else {
            return Ok(Err(PushRefused::Unavailable));
        };
        let ws = match WorkspaceSlug::parse(workspace) {
            Ok(ws) if self.directory.workspace(&ws).is_some() && actor.can_see(&ws) => ws,
            _ => return Ok(Err(PushRefused::Workspace(workspace.to_owned()))),
        };
        if actor.unlinked || actor.role_in(&ws) < Role::Member {
            return Ok(Err(PushRefused::Role {
                user: actor.user.to_string(),
                workspace: ws.to_string(),
            }));
        }
        if points.is_empty() {
            return Ok(Err(PushRefused::Batch(
                "no points: send at least one".into(),
            )));
        }
        if points.len() > MAX_POINTS_PER_PUSH {
            return Ok(Err(PushRefused::Batch(format!(
                "{} points: send at most {MAX_POINTS_PER_PUSH} per request",
                points.len()
            ))));
        }
        let now = self.clock.now();
        let earliest = now.as_millis() - 400 * 86_400_000;
        let latest = now.as_millis() + 86_400_000;
        let mut checked = Vec::with_capacity(points.len());
        for (index, p) in points.iter().enumerate() {
            let refuse = |reason: String| Ok(Err(PushRefused::Point { index, reason }));
            let name = match MetricName::parse(&p.name) {
                Ok(n) => n,
                Err(e) => return refuse(e),
            };
            if !p.value.is_finite() {
                return refuse("`value` must be a finite number".into());
            }
            let at = match &p.at {
                None => now,
                Some(s) => match parse_at(s, self.default_tz) {
                    Ok(t) => t,
                    Err(e) => return refuse(e),
                },
            };
            if at.as_millis() < earliest || at.as_millis() > latest {
                return refuse(format!(
                    "`at` {} is more than 400 days ago or more than a day ahead",
                    at.to_utc_string()
                ));
            }
            if let Some(k) = &p.key
                && (k.is_empty() || k.len() > 200)
            {
                return refuse("`key` must be 1 to 200 characters".into());
            }
            checked.push(MetricPoint {
                name,
                value: p.value,
                at,
                day: day_of(self.default_tz, at).to_string(),
                key: p.key.clone(),
                demo,
            });
        }
        let pushed = desk.metrics.record_metrics(&ws, &checked).await?;
        if pushed.stored > 0 && !demo {
            // A KPI this push moved off its target opens its notice now, not at the next sweep.
            if let Err(e) = self.check_kpi_alerts(Some(&ws)).await {
                tracing::warn!(error = %e, workspace = %ws, "checking KPI alerts failed; the sweep will retry");
            }
        }
        Ok(Ok(pushed))
    }

    /// Stores a value Krake measured itself now (the Binance portfolio) as a point of `name`.
    pub async fn record_measured(
        &self,
        workspace: &WorkspaceSlug,
        name: &str,
        value: f64,
    ) -> Result<Result<Pushed, PushRefused>, RepoError> {
        let at = chrono::DateTime::from_timestamp_millis(self.clock.now().as_millis())
            .map(|t| t.to_rfc3339());
        let point = PointInput {
            name: name.to_owned(),
            value,
            at,
            key: None,
        };
        self.push_points(&Actor::system(), workspace.as_str(), &[point], false)
            .await
    }

    /// A workspace's KPIs, if the person may see it (`None` otherwise or without KPIs).
    pub async fn kpi_board(
        &self,
        actor: &Actor,
        workspace: &WorkspaceSlug,
    ) -> Result<Option<Board>, RepoError> {
        let Some(reader) = self.kpi_reader() else {
            return Ok(None);
        };
        if !actor.can_see(workspace) {
            return Ok(None);
        }
        reader.board(workspace).await
    }
}

impl Krake {
    /// The KPI reader over this service's sources (`None` without KPIs).
    pub fn kpi_reader(&self) -> Option<KpiReader> {
        Some(KpiReader::new(
            self.kpi_desk.clone()?,
            self.directory.clone(),
            self.commerce.clone(),
            self.folders.clone(),
            self.clock.clone(),
            self.default_tz,
        ))
    }

    /// The Management overview for `actor`: the workspaces they may see, totals in one
    /// currency, recent activity they may see.
    pub async fn overview(&self, actor: &Actor) -> Result<Option<Overview>, RepoError> {
        let Some(reader) = self.kpi_reader().map(KpiReader::for_one_request) else {
            return Ok(None);
        };
        let today = self.kpi_today();
        let visible: Vec<_> = self
            .directory
            .workspaces()
            .iter()
            .filter(|w| actor.can_see(&w.slug))
            .cloned()
            .collect();
        // Every figure the boards read is read ahead in three queries, beside the activity
        // feed's reads: the overview costs about its slowest read rather than forty of them
        // (measured: `krake-bench kpis`).
        let slugs: Vec<WorkspaceSlug> = visible.iter().map(|w| w.slug.clone()).collect();
        let (reader, activity) = tokio::join!(
            reader.read_ahead(&slugs, today),
            self.activity(actor, &visible)
        );
        let (reader, activity) = (reader?, activity?);
        let desk = &reader.desk;
        let row = |w: &crate::workspace::Workspace| {
            let reader = &reader;
            let (slug, name) = (w.slug.clone(), w.name.clone());
            async move {
                let board = reader.board_of(desk, &slug, &name, today).await?;
                let revenue = reader
                    .commerce_series(desk, &slug, CommerceFigure::Revenue, today)
                    .await?;
                let from = back(today, 29);
                let v: Vec<f64> = revenue
                    .days
                    .range(from..=today)
                    .map(|(_, d)| d.sum)
                    .collect();
                Ok::<_, RepoError>(OverviewRow {
                    board,
                    revenue_30d: (!v.is_empty()).then(|| v.iter().sum()),
                })
            }
        };
        let rows = futures_util::future::try_join_all(visible.iter().map(row)).await?;
        let total = rows
            .iter()
            .filter_map(|r| r.revenue_30d)
            .fold(None::<f64>, |t, r| Some(t.unwrap_or(0.0) + r));
        Ok(Some(Overview {
            rows,
            currency: desk.settings.currency.clone(),
            total_revenue_30d: total,
            rates: desk
                .settings
                .rates
                .iter()
                .map(|(c, r)| (c.clone(), *r))
                .collect(),
            activity,
        }))
    }

    async fn activity(
        &self,
        actor: &Actor,
        visible: &[crate::workspace::Workspace],
    ) -> Result<Vec<Activity>, RepoError> {
        let mut out = Vec::new();
        if visible.is_empty() {
            return Ok(out);
        }
        // The three reads at once: the overview waits for the slowest, not for their sum.
        let filter = ThreadFilter {
            visible: Some(visible.iter().map(|w| w.slug.clone()).collect()),
            limit: 12,
            ..ThreadFilter::default()
        };
        let threads = self.inbox.list(&filter);
        let runs = async {
            match &self.agents {
                Some(agents) => {
                    agents
                        .runs(
                            actor,
                            &crate::run::RunQuery {
                                limit: Some(8),
                                ..crate::run::RunQuery::default()
                            },
                        )
                        .await
                }
                None => Ok(Vec::new()),
            }
        };
        let dead = async {
            match (
                &self.outbox,
                crate::dead_letters::may_manage(actor, self.directory.workspaces()),
            ) {
                (Some(outbox), true) => outbox.dead_letters(100).await.map(|d| d.len()),
                _ => Ok(0),
            }
        };
        let (threads, runs, dead) = tokio::join!(threads, runs, dead);
        for t in threads? {
            let (kind, text) = match (t.kind, t.status) {
                (_, ThreadStatus::Approved | ThreadStatus::Rejected) => (
                    "decision",
                    format!(
                        "#{} {} by {}: {}",
                        t.id.0,
                        t.status.as_str(),
                        t.decided_by.as_ref().map_or("someone", |u| u.as_str()),
                        t.title
                    ),
                ),
                (ThreadKind::Escalation, _) => {
                    ("escalation", format!("#{} escalated: {}", t.id.0, t.title))
                }
                _ => continue,
            };
            out.push(Activity {
                at: t.updated_at,
                workspace: Some(t.workspace.clone()),
                kind,
                text,
                thread: Some(t.id.0),
            });
        }
        for r in runs?
            .into_iter()
            .filter(|r| visible.iter().any(|w| w.slug == r.workspace))
        {
            out.push(Activity {
                at: r.updated_at,
                workspace: Some(r.workspace.clone()),
                kind: "run",
                text: format!(
                    "{} run {}: {}",
                    r.agent,
                    r.status.as_str(),
                    crate::text::one_line(&r.task, 60)
                ),
                thread: r.thread.map(|t| t.0),
            });
        }
        let dead = dead?;
        if dead > 0 {
            out.push(Activity {
                at: self.clock.now(),
                workspace: None,
                kind: "delivery",
                text: format!("{dead} message(s) could not be delivered; see /deadletters"),
                thread: None,
            });
        }
        out.sort_by_key(|a| std::cmp::Reverse(a.at));
        out.truncate(15);
        Ok(out)
    }

    /// Opens one notice thread per KPI whose period value left its target, per streak (the
    /// thread's key names the streak's first day, so evaluating again opens nothing new).
    /// Returns the alert threads, whether opened now or before.
    /// `only`: one workspace's KPIs (after a push there); `None`: every workspace's.
    pub async fn check_kpi_alerts(
        &self,
        only: Option<&WorkspaceSlug>,
    ) -> Result<Vec<crate::inbox::ThreadId>, RepoError> {
        let Some(reader) = self.kpi_reader() else {
            return Ok(Vec::new());
        };
        let desk = reader.desk.clone();
        let today = self.kpi_today();
        let with_targets: Vec<&crate::workspace::Workspace> = self
            .directory
            .workspaces()
            .iter()
            .filter(|w| {
                only.is_none_or(|o| o == &w.slug)
                    && desk
                        .defs
                        .get(&w.slug)
                        .is_some_and(|d| d.iter().any(|k| k.target.is_some()))
            })
            .collect();
        if with_targets.is_empty() {
            return Ok(Vec::new());
        }
        let slugs: Vec<WorkspaceSlug> = with_targets.iter().map(|w| w.slug.clone()).collect();
        let reader = reader.read_ahead(&slugs, today).await?;
        let mut opened = Vec::new();
        for w in with_targets {
            let board = reader.board_of(&desk, &w.slug, &w.name, today).await?;
            for f in &board.figures {
                let (Some(since), Some(target)) = (&f.off_target_since, f.target) else {
                    continue;
                };
                let key = format!("kpi:{}:{}:{since}", w.slug, f.key);
                let mut new = NewThread::new(
                    w.slug.clone(),
                    ThreadKind::Notice,
                    format!("{} is off target: {}", f.name, f.show(f.value)),
                    format!(
                        "{} in {} is {} over {} (target {}, {} is better) since {since}.",
                        f.name,
                        w.name,
                        f.show(f.value),
                        f.period.label(),
                        f.show(Some(target)),
                        match f.direction {
                            super::Direction::Higher => "higher",
                            super::Direction::Lower => "lower",
                        }
                    ),
                );
                new.origin_key = Some(key);
                opened.push(self.create_thread(&Actor::system(), &new).await?.id);
            }
        }
        Ok(opened)
    }
}
