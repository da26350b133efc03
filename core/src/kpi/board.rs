//! Computing a workspace's KPIs from daily values: today, the period, the period before, the
//! change, the target and a 30-day trend ([`compute`]), and the Management overview's rows.

use super::{Aggregate, Direction, KpiDef, KpiSettings, Period, Source, Unit};
use crate::time::Timestamp;
use crate::workspace::WorkspaceSlug;
use chrono::{Days, NaiveDate};
use serde::Serialize;
use std::collections::BTreeMap;

/// How many days a trend shows.
pub const TREND_DAYS: u32 = 30;
/// How many days back the data for a board is read (a month and the month before, and the
/// streak of an alert).
pub const WINDOW_DAYS: u32 = 60;

/// One day of one source.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DayAgg {
    /// Sum of the day's points.
    pub sum: f64,
    /// How many points.
    pub count: i64,
    /// The latest point's value.
    pub last: f64,
    /// When the latest point was measured, if known.
    pub last_at: Option<Timestamp>,
    /// Demo data.
    pub demo: bool,
}

/// One source's daily values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// By day.
    pub days: BTreeMap<NaiveDate, DayAgg>,
    /// The currency of money values (`None`: the KPI's own).
    pub currency: Option<String>,
}

/// Everything a board is computed from: each source's series by its id ([`Source::describe`]).
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Today, in Krake's time zone.
    pub today: NaiveDate,
    /// Now.
    pub now: Timestamp,
    /// Series by source id.
    pub series: BTreeMap<String, Series>,
}

/// One KPI's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    /// Its key.
    pub key: String,
    /// What people read.
    pub name: String,
    /// `money`, `count`, `percent` or `ratio`.
    pub unit: &'static str,
    /// The currency of a money KPI.
    pub currency: Option<String>,
    /// The span it is judged over (`day`, `week`, `month`).
    pub period: Period,
    /// Today's value.
    pub today: Option<f64>,
    /// The value over the period ending today.
    pub value: Option<f64>,
    /// The value over the period before.
    pub previous: Option<f64>,
    /// The change from the period before, in percent.
    pub change_pct: Option<f64>,
    /// The target over the period.
    pub target: Option<f64>,
    /// Which way is good.
    pub direction: Direction,
    /// Whether the period's value meets the target (`None` without a target or a value).
    pub on_target: Option<bool>,
    /// The first day of the current streak off target, if off target now.
    pub off_target_since: Option<String>,
    /// The last 30 days' daily values, oldest first.
    pub trend: Vec<Option<f64>>,
    /// When its latest data point was measured (for `last` KPIs).
    pub last_at: Option<Timestamp>,
    /// Whether that point is older than the KPI allows.
    pub stale: bool,
    /// Whether any of its figures is demo data.
    pub demo: bool,
    /// Where it comes from, as configured.
    pub source: String,
}

impl Figure {
    /// The value formatted in its unit ("1,234.50 EUR", "2.5 %", "—").
    pub fn show(&self, v: Option<f64>) -> String {
        show(v, self.unit, self.currency.as_deref())
    }
}

/// A workspace's KPIs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Board {
    /// The workspace.
    pub workspace: WorkspaceSlug,
    /// Its display name.
    pub name: String,
    /// Today, `YYYY-MM-DD`.
    pub today: String,
    /// Its KPIs, in the configured order.
    pub figures: Vec<Figure>,
    /// Whether anything shown is demo data.
    pub demo: bool,
    /// Things a reader should know (a currency without a rate, an unreadable folder).
    pub notes: Vec<String>,
}

/// A value in a unit, for people.
pub fn show(v: Option<f64>, unit: &str, currency: Option<&str>) -> String {
    let Some(v) = v else {
        return "—".into();
    };
    match unit {
        "money" => format!("{} {}", grouped(v, 2), currency.unwrap_or("")),
        "percent" => format!("{} %", grouped(v, 1)),
        "ratio" => format!("{v:.2}"),
        _ => {
            if v.fract().abs() < 1e-9 || v.abs() >= 100.0 {
                grouped(v, 0)
            } else {
                grouped(v, 1)
            }
        }
    }
}

/// `1234567.891` with `decimals` as `1,234,567.89`.
fn grouped(v: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, v.abs());
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    let negative = v < 0.0 && out.chars().any(|c| c.is_ascii_digit() && c != '0');
    if negative { format!("-{out}") } else { out }
}

fn unit_name(u: &Unit) -> (&'static str, Option<String>) {
    match u {
        Unit::Money(c) => ("money", Some(c.clone())),
        Unit::Count => ("count", None),
        Unit::Percent => ("percent", None),
        Unit::Ratio => ("ratio", None),
    }
}

/// The id of the series a formula's name reads when it names no KPI.
pub fn leaf_id(name: &str) -> Option<String> {
    Source::parse(name).ok().map(|s| s.describe())
}

struct Eval<'a> {
    defs: &'a [KpiDef],
    inputs: &'a Inputs,
    settings: &'a KpiSettings,
    depth: u8,
}

fn day_value(d: &DayAgg, agg: Aggregate) -> f64 {
    match agg {
        Aggregate::Sum => d.sum,
        Aggregate::Average => {
            if d.count > 0 {
                d.sum / d.count as f64
            } else {
                d.sum
            }
        }
        Aggregate::Last => d.last,
    }
}

impl Eval<'_> {
    fn series_value(
        &self,
        s: &Series,
        agg: Aggregate,
        from: NaiveDate,
        to: NaiveDate,
        currency: Option<&str>,
    ) -> Option<f64> {
        let v = match agg {
            Aggregate::Last => s.days.range(..=to).next_back().map(|(_, d)| d.last)?,
            Aggregate::Sum => {
                let mut any = false;
                let mut total = 0.0;
                for d in s.days.range(from..=to).map(|(_, d)| d) {
                    any = true;
                    total += d.sum;
                }
                if !any {
                    return None;
                }
                total
            }
            Aggregate::Average => {
                let vals: Vec<f64> = s
                    .days
                    .range(from..=to)
                    .map(|(_, d)| day_value(d, Aggregate::Average))
                    .collect();
                if vals.is_empty() {
                    return None;
                }
                vals.iter().sum::<f64>() / vals.len() as f64
            }
        };
        match (&s.currency, currency) {
            (Some(from_c), Some(to_c)) => self.settings.convert(v, from_c, to_c),
            _ => Some(v),
        }
    }

    /// The value of KPI `key` (or of a source named in a formula, with `agg`) over a window.
    fn named(
        &self,
        name: &str,
        agg: Aggregate,
        currency: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Option<f64> {
        if let Some(d) = self.defs.iter().find(|d| d.key.as_str() == name) {
            return self.kpi(d, from, to);
        }
        let s = self.inputs.series.get(&leaf_id(name)?)?;
        self.series_value(s, agg, from, to, currency)
    }

    fn kpi(&self, d: &KpiDef, from: NaiveDate, to: NaiveDate) -> Option<f64> {
        if self.depth > 8 {
            return None;
        }
        let currency = match &d.unit {
            Unit::Money(c) => Some(c.as_str()),
            _ => None,
        };
        match &d.source {
            Source::Formula(f) => {
                let inner = Eval {
                    defs: self.defs,
                    inputs: self.inputs,
                    settings: self.settings,
                    depth: self.depth + 1,
                };
                f.eval(&|n| inner.named(n, d.aggregate, currency, from, to))
            }
            other => {
                let s = self.inputs.series.get(&other.describe())?;
                self.series_value(s, d.aggregate, from, to, currency)
            }
        }
    }

    /// The series a KPI reads directly (for its freshness and demo mark).
    fn leaves(&self, d: &KpiDef) -> Vec<&Series> {
        match &d.source {
            Source::Formula(f) => f
                .names()
                .into_iter()
                .filter(|n| !self.defs.iter().any(|x| x.key.as_str() == *n))
                .filter_map(|n| self.inputs.series.get(&leaf_id(n)?))
                .collect(),
            other => self
                .inputs
                .series
                .get(&other.describe())
                .into_iter()
                .collect(),
        }
    }
}

fn back(d: NaiveDate, n: u32) -> NaiveDate {
    d.checked_sub_days(Days::new(u64::from(n))).unwrap_or(d)
}

fn meets(v: f64, target: f64, dir: Direction) -> bool {
    match dir {
        Direction::Higher => v >= target,
        Direction::Lower => v <= target,
    }
}

/// Computes a workspace's board from its KPI definitions and inputs.
pub fn compute(
    workspace: &WorkspaceSlug,
    name: &str,
    defs: &[KpiDef],
    inputs: &Inputs,
    settings: &KpiSettings,
) -> Board {
    let e = Eval {
        defs,
        inputs,
        settings,
        depth: 0,
    };
    let today = inputs.today;
    let mut figures = Vec::with_capacity(defs.len());
    let mut notes = Vec::new();
    for d in defs {
        let n = d.period.days();
        let value = e.kpi(d, back(today, n - 1), today);
        let previous = e.kpi(d, back(today, 2 * n - 1), back(today, n));
        let change_pct = match (value, previous) {
            (Some(v), Some(p)) if p != 0.0 => Some((v - p) / p.abs() * 100.0),
            _ => None,
        };
        let trend = (0..TREND_DAYS)
            .rev()
            .map(|i| {
                let day = back(today, i);
                e.kpi(d, day, day)
            })
            .collect();
        let on_target = match (value, d.target) {
            (Some(v), Some(t)) => Some(meets(v, t, d.direction)),
            _ => None,
        };
        let off_target_since = match (on_target, d.target) {
            (Some(false), Some(t)) => {
                let mut since = today;
                for i in 1..WINDOW_DAYS - n {
                    let end = back(today, i);
                    match e.kpi(d, back(end, n - 1), end) {
                        Some(v) if !meets(v, t, d.direction) => since = end,
                        _ => break,
                    }
                }
                Some(since.to_string())
            }
            _ => None,
        };
        let leaves = e.leaves(d);
        let demo = leaves.iter().any(|s| s.days.values().any(|x| x.demo));
        let last_at = leaves
            .iter()
            .filter_map(|s| s.days.values().filter_map(|x| x.last_at).max())
            .max();
        let stale_after = d.stale_after_hours.or(match (&d.source, d.aggregate) {
            (Source::Binance, _) => Some(2),
            (_, Aggregate::Last) => Some(48),
            _ => None,
        });
        let stale = match (stale_after, last_at) {
            (Some(h), Some(at)) => {
                inputs.now.as_millis() - at.as_millis() > i64::from(h) * 3_600_000
            }
            _ => false,
        };
        if let (Unit::Money(c), Some(s)) = (&d.unit, leaves.first())
            && let Some(from) = &s.currency
            && settings.convert(1.0, from, c).is_none()
        {
            notes.push(format!(
                "{}: no exchange rate from {from} to {c} (add it under [kpi] rates)",
                d.name
            ));
        }
        let (unit, currency) = unit_name(&d.unit);
        figures.push(Figure {
            key: d.key.to_string(),
            name: d.name.clone(),
            unit,
            currency,
            period: d.period,
            today: e.kpi(d, today, today),
            value,
            previous,
            change_pct,
            target: d.target,
            direction: d.direction,
            on_target,
            off_target_since,
            trend,
            last_at: if d.aggregate == Aggregate::Last || matches!(d.source, Source::Binance) {
                last_at
            } else {
                None
            },
            stale,
            demo,
            source: d.source.describe(),
        });
    }
    Board {
        workspace: workspace.clone(),
        name: name.to_owned(),
        today: today.to_string(),
        demo: figures.iter().any(|f| f.demo),
        figures,
        notes,
    }
}

/// One workspace's line in the Management overview.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverviewRow {
    /// The workspace's board (its first KPIs are its key figures).
    pub board: Board,
    /// Its commerce revenue over 30 days, in the overview's currency.
    pub revenue_30d: Option<f64>,
}

/// Something that happened, for the overview's activity feed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Activity {
    /// When.
    pub at: Timestamp,
    /// The workspace, if it belongs to one.
    pub workspace: Option<WorkspaceSlug>,
    /// `decision`, `escalation`, `run` or `delivery`.
    pub kind: &'static str,
    /// One line.
    pub text: String,
    /// The thread it is about, if any.
    pub thread: Option<i64>,
}

/// The Management overview: every workspace the person may see, totals in one currency, and
/// what happened lately.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    /// One row per workspace.
    pub rows: Vec<OverviewRow>,
    /// The currency totals are in.
    pub currency: String,
    /// Commerce revenue of those workspaces over 30 days.
    pub total_revenue_30d: Option<f64>,
    /// The rates used (`USD = 0.92`), as configured.
    pub rates: Vec<(String, f64)>,
    /// Recent activity, newest first.
    pub activity: Vec<Activity>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::kpi::{Formula, MetricName};

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn series(points: &[(&str, f64)]) -> Series {
        Series {
            days: points
                .iter()
                .map(|(d, v)| {
                    (
                        day(d),
                        DayAgg {
                            sum: *v,
                            count: 1,
                            last: *v,
                            last_at: None,
                            demo: false,
                        },
                    )
                })
                .collect(),
            currency: None,
        }
    }

    fn kpi(key: &str, source: Source, agg: Aggregate, period: Period) -> KpiDef {
        KpiDef {
            key: MetricName::parse(key).unwrap(),
            name: key.into(),
            unit: Unit::Count,
            source,
            aggregate: agg,
            period,
            target: None,
            direction: Direction::Higher,
            stale_after_hours: None,
        }
    }

    #[test]
    fn sums_averages_and_last_over_periods() {
        let inputs = Inputs {
            today: day("2026-12-07"),
            now: Timestamp::from_millis(0),
            series: BTreeMap::from([
                (
                    "metric:visitors".into(),
                    series(&[
                        ("2026-12-07", 100.0),
                        ("2026-12-06", 50.0),
                        ("2026-11-30", 10.0),
                    ]),
                ),
                ("metric:score".into(), series(&[("2026-11-20", 7.0)])),
            ]),
        };
        let visitors = Source::Metric(MetricName::parse("visitors").unwrap());
        let defs = vec![
            kpi("v", visitors.clone(), Aggregate::Sum, Period::Week),
            kpi("a", visitors, Aggregate::Average, Period::Week),
            kpi(
                "s",
                Source::Metric(MetricName::parse("score").unwrap()),
                Aggregate::Last,
                Period::Day,
            ),
        ];
        let b = compute(
            &WorkspaceSlug::parse("x").unwrap(),
            "X",
            &defs,
            &inputs,
            &KpiSettings::default(),
        );
        assert_eq!(b.figures[0].value, Some(150.0));
        assert_eq!(b.figures[0].previous, Some(10.0));
        assert_eq!(b.figures[0].change_pct, Some(1400.0));
        assert_eq!(b.figures[0].today, Some(100.0));
        assert_eq!(b.figures[1].value, Some(75.0));
        // A `last` value carries forward to today.
        assert_eq!(b.figures[2].value, Some(7.0));
        assert_eq!(b.figures[2].trend.last(), Some(&Some(7.0)));
        assert_eq!(b.figures[0].trend.len(), TREND_DAYS as usize);
    }

    #[test]
    fn a_derived_kpi_with_a_zero_divisor_shows_a_dash() {
        let inputs = Inputs {
            today: day("2026-12-07"),
            now: Timestamp::from_millis(0),
            series: BTreeMap::from([
                ("commerce.orders".into(), series(&[("2026-12-07", 3.0)])),
                ("metric:visitors".into(), series(&[("2026-12-07", 0.0)])),
            ]),
        };
        let mut conv = kpi(
            "conversion",
            Source::Formula(Formula::parse("100 * commerce.orders / visitors").unwrap()),
            Aggregate::Sum,
            Period::Day,
        );
        conv.unit = Unit::Percent;
        let b = compute(
            &WorkspaceSlug::parse("x").unwrap(),
            "X",
            &[conv],
            &inputs,
            &KpiSettings::default(),
        );
        assert_eq!(b.figures[0].value, None);
        assert_eq!(b.figures[0].show(b.figures[0].value), "—");
    }

    #[test]
    fn an_alert_streak_starts_where_the_value_left_its_target() {
        let inputs = Inputs {
            today: day("2026-12-07"),
            now: Timestamp::from_millis(0),
            series: BTreeMap::from([(
                "metric:signups".into(),
                series(&[
                    ("2026-12-03", 20.0),
                    ("2026-12-04", 20.0),
                    ("2026-12-05", 3.0),
                    ("2026-12-06", 4.0),
                    ("2026-12-07", 2.0),
                ]),
            )]),
        };
        let mut k = kpi(
            "signups",
            Source::Metric(MetricName::parse("signups").unwrap()),
            Aggregate::Sum,
            Period::Day,
        );
        k.target = Some(10.0);
        let b = compute(
            &WorkspaceSlug::parse("x").unwrap(),
            "X",
            &[k],
            &inputs,
            &KpiSettings::default(),
        );
        assert_eq!(b.figures[0].on_target, Some(false));
        assert_eq!(b.figures[0].off_target_since.as_deref(), Some("2026-12-05"));
    }

    #[test]
    fn values_read_well() {
        assert_eq!(show(Some(1234.5), "money", Some("EUR")), "1,234.50 EUR");
        assert_eq!(show(Some(-1234567.0), "count", None), "-1,234,567");
        assert_eq!(show(Some(2.456), "percent", None), "2.5 %");
        assert_eq!(show(Some(0.4), "count", None), "0.4");
        assert_eq!(show(None, "money", Some("EUR")), "—");
    }
}
