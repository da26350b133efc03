//! Reading KPI boards: [`KpiReader`] gathers what a board is computed from (metric days,
//! commerce days, folder columns), reads ahead for a request of several boards, and keeps
//! each workspace's decoded days while its KPI version stays the same.

use super::board::{DayAgg, Inputs, Series, WINDOW_DAYS, compute, leaf_id};
use super::desk::{back, day_of};
use super::{Board, CommerceFigure, KpiDef, KpiDesk, MetricDay, Source};
use crate::commerce::DailyKpi;
use crate::folder::ColumnKind;
use crate::ports::RepoError;
use crate::workspace::WorkspaceSlug;
use chrono::NaiveDate;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// Reads KPI boards: everything a board is computed from, without any person's permissions
/// (callers check those). The core service and the agents' `get_kpis` tool share it.
#[derive(Clone)]
pub struct KpiReader {
    pub(super) desk: Arc<KpiDesk>,
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

/// One workspace's figures as read at one KPI version: the days of `names` in the window
/// `from..=to` (with each one's last day before it) and, when asked for, its commerce days.
/// Kept in the [`KpiDesk`] and used again while the workspace's version stays the same.
pub(super) struct WsDays {
    version: i64,
    from: String,
    to: String,
    names: BTreeSet<String>,
    metrics: Arc<Vec<MetricDay>>,
    daily: Option<Arc<Vec<DailyKpi>>>,
}

impl WsDays {
    /// Whether these days answer a read of `names` (and the commerce days, if `daily`) in the
    /// window `from..=to` at `version`.
    fn answers(
        &self,
        version: i64,
        from: &str,
        to: &str,
        names: &BTreeSet<String>,
        daily: bool,
    ) -> bool {
        self.version == version
            && self.from == from
            && self.to == to
            && names.is_subset(&self.names)
            && (!daily || self.daily.is_some())
    }
}

/// Every figure a request's boards read, read ahead, by workspace (the overview: five
/// boards, each workspace's revenue and the Management total would otherwise be some forty
/// reads).
type ReadAhead = HashMap<WorkspaceSlug, Arc<WsDays>>;

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
    /// metric days and one of commerce days, whatever the number of workspaces. Days read
    /// before at the workspace's current KPI version are not read again (one small query of
    /// the versions instead). Boards then read from memory.
    pub async fn read_ahead(
        mut self,
        workspaces: &[WorkspaceSlug],
        today: NaiveDate,
    ) -> Result<Self, RepoError> {
        // What each workspace's boards read: metric names, and whether its commerce days.
        let mut wants: BTreeMap<WorkspaceSlug, (BTreeSet<String>, bool)> = BTreeMap::new();
        let revenue_of =
            |ws: &WorkspaceSlug, wants: &mut BTreeMap<WorkspaceSlug, (BTreeSet<String>, bool)>| {
                let e = wants.entry(ws.clone()).or_default();
                e.0.insert(pushed_name(CommerceFigure::Revenue).to_owned());
                e.1 = true;
            };
        let empty = Vec::new();
        for ws in workspaces {
            revenue_of(ws, &mut wants);
            for source in leaves(self.desk.defs.get(ws).unwrap_or(&empty)).into_values() {
                let name = match source {
                    Source::Metric(m) => m.to_string(),
                    Source::Binance => super::BINANCE_METRIC.to_owned(),
                    Source::Commerce(fig) => {
                        revenue_of(ws, &mut wants);
                        pushed_name(fig).to_owned()
                    }
                    Source::AllRevenue => {
                        for w in self.directory.workspaces() {
                            revenue_of(&w.slug, &mut wants);
                        }
                        continue;
                    }
                    Source::Folder { .. } | Source::Formula(_) => continue,
                };
                wants.entry(ws.clone()).or_default().0.insert(name);
            }
        }
        let (from, to) = (back(today, WINDOW_DAYS).to_string(), today.to_string());
        // The versions first: days read after them are at least that new, so keeping them
        // under these versions never shows a change late.
        let versions = self.desk.metrics.kpi_versions().await?;
        let version_of =
            |ws: &WorkspaceSlug| versions.as_ref().map(|v| v.get(ws).copied().unwrap_or(0));
        let mut have = HashMap::with_capacity(wants.len());
        if let Some(versions) = &versions
            && let Ok(kept) = self.desk.kept.lock()
        {
            wants.retain(|ws, (names, daily)| {
                let version = versions.get(ws).copied().unwrap_or(0);
                match kept.get(ws) {
                    Some(k) if k.answers(version, &from, &to, names, *daily) => {
                        have.insert(ws.clone(), k.clone());
                        false
                    }
                    _ => true,
                }
            });
        }
        if !wants.is_empty() {
            let wanted: Vec<(WorkspaceSlug, Vec<String>)> = wants
                .iter()
                .map(|(w, (n, _))| (w.clone(), n.iter().cloned().collect()))
                .collect();
            let daily: Vec<WorkspaceSlug> = wants
                .iter()
                .filter(|(_, (_, d))| *d)
                .map(|(w, _)| w.clone())
                .collect();
            let commerce = async {
                match &self.commerce {
                    Some(c) if !daily.is_empty() => c.daily_since_of(&daily, &from).await,
                    _ => Ok(Vec::new()),
                }
            };
            let (metric_rows, daily_rows) = tokio::join!(
                self.desk.metrics.metric_days_of(&wanted, &from, &to),
                commerce
            );
            let mut read: HashMap<WorkspaceSlug, (Vec<MetricDay>, Vec<DailyKpi>)> = wants
                .keys()
                .map(|w| (w.clone(), Default::default()))
                .collect();
            for (w, r) in metric_rows? {
                if let Some((rows, _)) = read.get_mut(&w)
                    && wants.get(&w).is_some_and(|(n, _)| n.contains(&r.name))
                {
                    rows.push(r);
                }
            }
            for (w, d) in daily_rows? {
                if let Some((_, rows)) = read.get_mut(&w) {
                    rows.push(d);
                }
            }
            let mut kept = self.desk.kept.lock().ok();
            for (ws, (names, daily)) in wants {
                let (metrics, days) = read.remove(&ws).unwrap_or_default();
                let one = Arc::new(WsDays {
                    version: version_of(&ws).unwrap_or(0),
                    from: from.clone(),
                    to: to.clone(),
                    names,
                    metrics: Arc::new(metrics),
                    daily: daily.then(|| Arc::new(days)),
                });
                if versions.is_some()
                    && let Some(kept) = kept.as_mut()
                {
                    kept.insert(ws.clone(), one.clone());
                }
                have.insert(ws, one);
            }
        }
        self.ahead = Some(Arc::new(have));
        Ok(self)
    }

    /// A workspace's metric days (of `names` and maybe others: callers pick by name): from
    /// what was read ahead when it holds them, else read.
    async fn metric_days(
        &self,
        ws: &WorkspaceSlug,
        names: &[String],
        from: &str,
        to: &str,
    ) -> Result<Arc<Vec<MetricDay>>, RepoError> {
        if let Some(w) = self.ahead.as_ref().and_then(|a| a.get(ws))
            && w.from == from
            && w.to == to
            && names.iter().all(|n| w.names.contains(n))
        {
            return Ok(w.metrics.clone());
        }
        Ok(Arc::new(
            self.desk.metrics.metric_days(ws, names, from, to).await?,
        ))
    }

    /// A workspace's commerce days: from what was read ahead when it holds them, else read.
    async fn daily_since(
        &self,
        commerce: &dyn crate::commerce::CommerceRepo,
        ws: &WorkspaceSlug,
        from: &str,
    ) -> Result<Arc<Vec<DailyKpi>>, RepoError> {
        if let Some(w) = self.ahead.as_ref().and_then(|a| a.get(ws))
            && w.from == from
            && let Some(rows) = &w.daily
        {
            return Ok(rows.clone());
        }
        Ok(Arc::new(commerce.daily_since(ws, from).await?))
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
        let reader = self
            .clone()
            .read_ahead(std::slice::from_ref(&w.slug), today)
            .await?;
        Ok(Some(
            reader.board_of(&self.desk, &w.slug, &w.name, today).await?,
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
        let name = pushed_name(fig);
        let rows = self
            .metric_days(
                ws,
                &[name.to_owned()],
                &from.to_string(),
                &today.to_string(),
            )
            .await?;
        for r in rows.iter().filter(|r| r.name == name) {
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
        for d in self
            .daily_since(c.as_ref(), ws, &from.to_string())
            .await?
            .iter()
        {
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
