//! The KPI service on [`Krake`]: boards, the overview, pushed metrics and KPI alerts.

use super::board::{Activity, DayAgg, Inputs, OverviewRow, Series, WINDOW_DAYS, compute, leaf_id};
use super::{
    Board, CommerceFigure, KpiDef, KpiSettings, MetricDay, MetricName, MetricPoint, MetricRepo,
    Overview, Pushed, Source,
};
use crate::actor::{Actor, Role};
use crate::commerce::DailyKpi;
use crate::folder::ColumnKind;
use crate::inbox::{NewThread, ThreadFilter, ThreadKind, ThreadStatus};
use crate::ports::RepoError;
use crate::service::Krake;
use crate::time::Timestamp;
use crate::workspace::WorkspaceSlug;
use chrono::{Days, NaiveDate};
use std::collections::{BTreeMap, BTreeSet, HashMap};
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

fn day_of(tz: chrono_tz::Tz, at: Timestamp) -> NaiveDate {
    chrono::DateTime::from_timestamp_millis(at.as_millis())
        .map(|t| t.with_timezone(&tz).date_naive())
        .unwrap_or_default()
}

fn back(d: NaiveDate, n: u32) -> NaiveDate {
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

/// Reads KPI boards: everything a board is computed from, without any person's permissions
/// (callers check those). The core service and the agents' `get_kpis` tool share it.
#[derive(Clone)]
pub struct KpiReader {
    desk: Arc<KpiDesk>,
    directory: Arc<crate::config::Directory>,
    commerce: Option<Arc<dyn crate::commerce::CommerceRepo>>,
    folders: Option<Arc<dyn crate::folder::FolderRepo>>,
    clock: Arc<dyn crate::time::Clock>,
    tz: chrono_tz::Tz,
    /// Commerce series already read by this reader (only for one request: see
    /// [`KpiReader::for_one_request`]).
    cache: Option<Arc<std::sync::Mutex<SeriesCache>>>,
    /// Figures read ahead for one request (see [`KpiReader::read_ahead`]).
    ahead: Option<Arc<ReadAhead>>,
}

/// Every figure a request's boards read, read ahead in two queries (the overview: five
/// boards, each workspace's revenue and the Management total would otherwise be some forty
/// reads).
struct ReadAhead {
    from: String,
    to: String,
    /// By workspace: the metric names read, and their days (with each one's last day before
    /// the window).
    metrics: HashMap<WorkspaceSlug, (BTreeSet<String>, Vec<MetricDay>)>,
    /// Commerce roll-ups by workspace, for the workspaces read.
    daily: HashMap<WorkspaceSlug, Vec<DailyKpi>>,
}

/// The name of the pushed metric that adds to a commerce figure.
fn pushed_name(fig: CommerceFigure) -> &'static str {
    match fig {
        CommerceFigure::Revenue => "commerce.revenue",
        CommerceFigure::Orders => "commerce.orders",
        CommerceFigure::Refunds => "commerce.refunds",
    }
}

/// The sources a workspace's KPIs read, by leaf id (a formula's names that are not KPIs of
/// the workspace are leaves of their own).
fn leaves(defs: &[KpiDef]) -> BTreeMap<String, Source> {
    let mut leaves = BTreeMap::new();
    for d in defs {
        match &d.source {
            Source::Formula(f) => {
                for n in f.names() {
                    if defs.iter().any(|x| x.key.as_str() == n) {
                        continue;
                    }
                    if let (Some(id), Ok(s)) = (leaf_id(n), Source::parse(n)) {
                        leaves.insert(id, s);
                    }
                }
            }
            other => {
                leaves.insert(other.describe(), other.clone());
            }
        }
    }
    leaves
}

type SeriesCache = std::collections::HashMap<(WorkspaceSlug, CommerceFigure), Series>;

impl KpiReader {
    /// The same reader keeping the commerce series it reads, for one request that reads a
    /// workspace's figures more than once (the overview: each workspace's board, its revenue,
    /// and the Management total over all of them). Never for a long-lived reader.
    pub fn for_one_request(mut self) -> Self {
        self.cache = Some(Arc::default());
        self
    }

    /// A reader over these sources; days are days in `tz`.
    pub fn new(
        desk: Arc<KpiDesk>,
        directory: Arc<crate::config::Directory>,
        commerce: Option<Arc<dyn crate::commerce::CommerceRepo>>,
        folders: Option<Arc<dyn crate::folder::FolderRepo>>,
        clock: Arc<dyn crate::time::Clock>,
        tz: chrono_tz::Tz,
    ) -> Self {
        Self {
            desk,
            directory,
            commerce,
            folders,
            clock,
            tz,
            cache: None,
            ahead: None,
        }
    }

    /// The same reader with everything the boards of `workspaces` and their revenue read
    /// (and, for a Management total, every workspace's revenue) read ahead: two queries of
    /// metric days and one of commerce days, whatever the number of workspaces. For one
    /// request (the overview); boards then read from memory.
    pub async fn read_ahead(
        mut self,
        workspaces: &[WorkspaceSlug],
        today: NaiveDate,
    ) -> Result<Self, RepoError> {
        let mut names: BTreeMap<WorkspaceSlug, BTreeSet<String>> = BTreeMap::new();
        let mut daily: BTreeSet<WorkspaceSlug> = BTreeSet::new();
        let mut revenue_of =
            |ws: &WorkspaceSlug, names: &mut BTreeMap<WorkspaceSlug, BTreeSet<String>>| {
                names
                    .entry(ws.clone())
                    .or_default()
                    .insert(pushed_name(CommerceFigure::Revenue).to_owned());
                daily.insert(ws.clone());
            };
        let empty = Vec::new();
        for ws in workspaces {
            revenue_of(ws, &mut names);
            for source in leaves(self.desk.defs.get(ws).unwrap_or(&empty)).into_values() {
                let name = match source {
                    Source::Metric(m) => m.to_string(),
                    Source::Binance => super::BINANCE_METRIC.to_owned(),
                    Source::Commerce(fig) => {
                        revenue_of(ws, &mut names);
                        pushed_name(fig).to_owned()
                    }
                    Source::AllRevenue => {
                        for w in self.directory.workspaces() {
                            revenue_of(&w.slug, &mut names);
                        }
                        continue;
                    }
                    Source::Folder { .. } | Source::Formula(_) => continue,
                };
                names.entry(ws.clone()).or_default().insert(name);
            }
        }
        let (from, to) = (back(today, WINDOW_DAYS).to_string(), today.to_string());
        let wanted: Vec<(WorkspaceSlug, Vec<String>)> = names
            .iter()
            .map(|(w, n)| (w.clone(), n.iter().cloned().collect()))
            .collect();
        let daily: Vec<WorkspaceSlug> = daily.into_iter().collect();
        let commerce = async {
            match &self.commerce {
                Some(c) => c.daily_since_of(&daily, &from).await,
                None => Ok(Vec::new()),
            }
        };
        let (metric_rows, daily_rows) = tokio::join!(
            self.desk.metrics.metric_days_of(&wanted, &from, &to),
            commerce
        );
        let mut ahead = ReadAhead {
            metrics: names
                .into_iter()
                .map(|(w, n)| (w, (n, Vec::new())))
                .collect(),
            daily: daily.into_iter().map(|w| (w, Vec::new())).collect(),
            from,
            to,
        };
        for (w, r) in metric_rows? {
            if let Some((n, rows)) = ahead.metrics.get_mut(&w)
                && n.contains(&r.name)
            {
                rows.push(r);
            }
        }
        for (w, d) in daily_rows? {
            if let Some(rows) = ahead.daily.get_mut(&w) {
                rows.push(d);
            }
        }
        self.ahead = Some(Arc::new(ahead));
        Ok(self)
    }

    /// A workspace's metric days: from what was read ahead when it holds them, else read.
    async fn metric_days(
        &self,
        ws: &WorkspaceSlug,
        names: &[String],
        from: &str,
        to: &str,
    ) -> Result<Vec<MetricDay>, RepoError> {
        if let Some(a) = &self.ahead
            && a.from == from
            && a.to == to
            && let Some((have, rows)) = a.metrics.get(ws)
            && names.iter().all(|n| have.contains(n))
        {
            return Ok(rows
                .iter()
                .filter(|r| names.contains(&r.name))
                .cloned()
                .collect());
        }
        self.desk.metrics.metric_days(ws, names, from, to).await
    }

    /// A workspace's commerce days: from what was read ahead when it holds them, else read.
    async fn daily_since(
        &self,
        commerce: &dyn crate::commerce::CommerceRepo,
        ws: &WorkspaceSlug,
        from: &str,
    ) -> Result<Vec<DailyKpi>, RepoError> {
        if let Some(a) = &self.ahead
            && a.from == from
            && let Some(rows) = a.daily.get(ws)
        {
            return Ok(rows.clone());
        }
        commerce.daily_since(ws, from).await
    }

    /// Today in the reader's time zone.
    pub fn today(&self) -> NaiveDate {
        day_of(self.tz, self.clock.now())
    }

    /// A workspace's board (`None` for an unknown workspace).
    pub async fn board(&self, workspace: &WorkspaceSlug) -> Result<Option<Board>, RepoError> {
        let Some(w) = self.directory.workspace(workspace) else {
            return Ok(None);
        };
        let today = self.today();
        Ok(Some(
            self.board_of(&self.desk, &w.slug, &w.name, today).await?,
        ))
    }

    pub(crate) async fn board_of(
        &self,
        desk: &KpiDesk,
        ws: &WorkspaceSlug,
        name: &str,
        today: NaiveDate,
    ) -> Result<Board, RepoError> {
        let empty = Vec::new();
        let defs = desk.defs.get(ws).unwrap_or(&empty);
        let leaves = leaves(defs);
        let from = back(today, WINDOW_DAYS);
        let mut series = BTreeMap::new();
        let mut metric_names = Vec::new();
        for (id, s) in &leaves {
            match s {
                Source::Metric(m) => metric_names.push((id.clone(), m.to_string())),
                Source::Binance => metric_names.push((id.clone(), super::BINANCE_METRIC.into())),
                Source::Commerce(fig) => {
                    series.insert(
                        id.clone(),
                        self.commerce_series(desk, ws, *fig, today).await?,
                    );
                }
                Source::AllRevenue => {
                    let mut total = Series {
                        currency: Some(desk.settings.currency.clone()),
                        ..Series::default()
                    };
                    for w in self.directory.workspaces() {
                        let s = self
                            .commerce_series(desk, &w.slug, CommerceFigure::Revenue, today)
                            .await?;
                        for (day, d) in s.days {
                            let e = total.days.entry(day).or_default();
                            e.sum += d.sum;
                            e.last = e.sum;
                            e.count = 1;
                        }
                    }
                    series.insert(id.clone(), total);
                }
                Source::Folder { .. } => {
                    series.insert(id.clone(), self.folder_series(s, today).await?);
                }
                Source::Formula(_) => {}
            }
        }
        if !metric_names.is_empty() {
            let names: Vec<String> = metric_names.iter().map(|(_, n)| n.clone()).collect();
            let rows = self
                .metric_days(ws, &names, &from.to_string(), &today.to_string())
                .await?;
            for (id, n) in &metric_names {
                let mut s = Series::default();
                for r in rows.iter().filter(|r| &r.name == n) {
                    if let Ok(day) = r.day.parse::<NaiveDate>() {
                        s.days.insert(
                            day,
                            DayAgg {
                                sum: r.sum,
                                count: r.count,
                                last: r.last,
                                last_at: Some(r.last_at),
                                demo: r.demo,
                            },
                        );
                    }
                }
                series.insert(id.clone(), s);
            }
        }
        let inputs = Inputs {
            today,
            now: self.clock.now(),
            series,
        };
        Ok(compute(ws, name, defs, &inputs, &desk.settings))
    }

    pub(crate) async fn commerce_series(
        &self,
        desk: &KpiDesk,
        ws: &WorkspaceSlug,
        fig: CommerceFigure,
        today: NaiveDate,
    ) -> Result<Series, RepoError> {
        if let Some(cache) = &self.cache
            && let Ok(c) = cache.lock()
            && let Some(s) = c.get(&(ws.clone(), fig))
        {
            return Ok(s.clone());
        }
        let s = self.read_commerce_series(desk, ws, fig, today).await?;
        if let Some(cache) = &self.cache
            && let Ok(mut c) = cache.lock()
        {
            c.insert((ws.clone(), fig), s.clone());
        }
        Ok(s)
    }

    async fn read_commerce_series(
        &self,
        desk: &KpiDesk,
        ws: &WorkspaceSlug,
        fig: CommerceFigure,
        today: NaiveDate,
    ) -> Result<Series, RepoError> {
        let mut s = Series::default();
        if fig != CommerceFigure::Orders {
            s.currency = Some(desk.settings.currency.clone());
        }
        // Figures pushed as metrics of the same name (`commerce.revenue`, in the overview's
        // currency) add to the orders': a shop selling elsewhere too, or the demo history.
        let from = back(today, WINDOW_DAYS);
        for r in self
            .metric_days(
                ws,
                &[pushed_name(fig).to_owned()],
                &from.to_string(),
                &today.to_string(),
            )
            .await?
        {
            if let Ok(day) = r.day.parse::<NaiveDate>() {
                let e = s.days.entry(day).or_default();
                e.sum += r.sum;
                e.last = e.sum;
                e.count = 1;
                e.demo |= r.demo;
            }
        }
        let Some(c) = &self.commerce else {
            return Ok(s);
        };
        for d in &self.daily_since(c.as_ref(), ws, &from.to_string()).await? {
            let Ok(day) = d.day.parse::<NaiveDate>() else {
                continue;
            };
            let v = match fig {
                CommerceFigure::Orders => d.orders as f64,
                CommerceFigure::Revenue => desk
                    .settings
                    .convert(
                        d.revenue.0 as f64 / 100.0,
                        &d.currency,
                        &desk.settings.currency,
                    )
                    .unwrap_or(0.0),
                CommerceFigure::Refunds => desk
                    .settings
                    .convert(
                        d.refunds.0 as f64 / 100.0,
                        &d.currency,
                        &desk.settings.currency,
                    )
                    .unwrap_or(0.0),
            };
            let e = s.days.entry(day).or_default();
            e.sum += v;
            e.last = e.sum;
            e.count = 1;
        }
        // Days without orders count as zero once the shop has any.
        if let Some(first) = s.days.keys().next().copied() {
            let mut d = first;
            while d <= today {
                s.days.entry(d).or_insert(DayAgg {
                    count: 1,
                    ..DayAgg::default()
                });
                match d.succ_opt() {
                    Some(n) => d = n,
                    None => break,
                }
            }
        }
        Ok(s)
    }

    async fn folder_series(&self, source: &Source, today: NaiveDate) -> Result<Series, RepoError> {
        let mut s = Series::default();
        let (
            Some(repo),
            Source::Folder {
                agent,
                folder,
                column,
                date_column,
            },
        ) = (&self.folders, source)
        else {
            return Ok(s);
        };
        let agent = self
            .directory
            .agent(agent)
            .map_or_else(|| agent.clone(), |a| a.name.to_string());
        let Some(f) = repo.folder(&agent, folder).await? else {
            return Ok(s);
        };
        let counting = column.eq_ignore_ascii_case("count");
        let col = if counting {
            None
        } else {
            match f.column(column) {
                Some(c) if c.kind == ColumnKind::Number => Some(c.id),
                _ => return Ok(s),
            }
        };
        let date_col = date_column.as_ref().and_then(|d| f.column(d)).map(|c| c.id);
        for e in repo.entries(f.id).await? {
            let v = match col {
                None => 1.0,
                Some(id) => match e.values.get(&id).and_then(|v| v.trim().parse::<f64>().ok()) {
                    Some(v) if v.is_finite() => v,
                    _ => continue,
                },
            };
            let day = match date_col {
                None => today,
                Some(id) => match e.values.get(&id).and_then(|v| v.parse::<NaiveDate>().ok()) {
                    Some(d) => d,
                    None => continue,
                },
            };
            let d = s.days.entry(day).or_default();
            d.sum += v;
            d.count += 1;
            d.last = v;
        }
        Ok(s)
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
        let threads = self
            .inbox
            .list(&ThreadFilter {
                visible: Some(visible.iter().map(|w| w.slug.clone()).collect()),
                limit: 12,
                ..ThreadFilter::default()
            })
            .await?;
        for t in threads {
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
        if let Some(agents) = &self.agents {
            let runs = agents
                .runs(
                    actor,
                    &crate::run::RunQuery {
                        limit: Some(8),
                        ..crate::run::RunQuery::default()
                    },
                )
                .await?;
            for r in runs
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
        }
        if let (Some(outbox), true) = (
            &self.outbox,
            crate::dead_letters::may_manage(actor, self.directory.workspaces()),
        ) {
            let dead = outbox.dead_letters(100).await?;
            if !dead.is_empty() {
                out.push(Activity {
                    at: self.clock.now(),
                    workspace: None,
                    kind: "delivery",
                    text: format!(
                        "{} message(s) could not be delivered; see /deadletters",
                        dead.len()
                    ),
                    thread: None,
                });
            }
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
        let mut opened = Vec::new();
        for w in self.directory.workspaces() {
            if only.is_some_and(|o| o != &w.slug)
                || desk
                    .defs
                    .get(&w.slug)
                    .is_none_or(|d| d.iter().all(|k| k.target.is_none()))
            {
                continue;
            }
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
