//! KPIs in the config file: `[[kpis]]` entries applied to each workspace's default KPIs,
//! and `[kpi]` (the currency totals are shown in and its fixed rates).

use super::{Aggregate, Direction, Formula, KpiDef, MetricName, Period, Source, Unit};
use crate::workspace::WorkspaceSlug;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A KPI in the config file (`[[kpis]]`): fields given override the default KPI of that key
/// in that workspace; a new key adds a KPI.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KpiEntry {
    /// The workspace's slug.
    pub workspace: String,
    /// The KPI's key.
    pub key: String,
    /// What people read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `money`, `count`, `percent` or `ratio`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// For `money`: the currency (ISO 4217).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// `commerce.revenue`, `commerce.orders`, `commerce.refunds`, `all.revenue`, `binance`,
    /// `metric:NAME` (or just `NAME`), `folder:AGENT/FOLDER.COLUMN[@DATE_COLUMN]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A formula over other KPIs' keys and metrics (`100 * orders / visitors`), instead of
    /// a source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    /// `last`, `sum` or `average`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<Aggregate>,
    /// `day`, `week` or `month`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// The value aimed at over the period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    /// `higher` (default) or `lower` is better.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// Hours after which a `last` value shows as stale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_after_hours: Option<u32>,
    /// Remove this KPI.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

/// `[kpi]`: how figures of several currencies are added up.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KpiSettings {
    /// The currency totals are shown in (default `EUR`).
    #[serde(default = "default_currency")]
    pub currency: String,
    /// What one unit of each other currency is worth in `currency` (`USD = 0.92`). Fixed
    /// rates from the config, not live ones: the overview says which rates it used.
    #[serde(default)]
    pub rates: BTreeMap<String, f64>,
}

fn default_currency() -> String {
    "EUR".into()
}

impl Default for KpiSettings {
    fn default() -> Self {
        Self {
            currency: default_currency(),
            rates: BTreeMap::from([
                ("USD".to_owned(), 0.92),
                ("USDT".to_owned(), 0.92),
                ("GBP".to_owned(), 1.17),
            ]),
        }
    }
}

impl KpiSettings {
    /// `amount` of `from` in `to`; `None` without a rate for either.
    pub fn convert(&self, amount: f64, from: &str, to: &str) -> Option<f64> {
        if from.eq_ignore_ascii_case(to) {
            return Some(amount);
        }
        let rate = |c: &str| -> Option<f64> {
            if c.eq_ignore_ascii_case(&self.currency) {
                Some(1.0)
            } else {
                self.rates
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(c))
                    .map(|(_, v)| *v)
                    .filter(|v| v.is_finite() && *v > 0.0)
            }
        };
        Some(amount * rate(from)? / rate(to)?)
    }
}

fn def(
    key: &str,
    name: &str,
    unit: Unit,
    source: &str,
    aggregate: Aggregate,
    period: Period,
) -> Option<KpiDef> {
    let source = if let Some(f) = source.strip_prefix('=') {
        Source::Formula(Formula::parse(f).ok()?)
    } else {
        Source::parse(source).ok()?
    };
    Some(KpiDef {
        key: MetricName::parse(key).ok()?,
        name: name.to_owned(),
        unit,
        source,
        aggregate,
        period,
        target: None,
        direction: Direction::Higher,
        stale_after_hours: None,
    })
}

/// The KPIs a workspace measures when the config names none (by its slug; none for others).
pub fn default_kpis(workspace: &str) -> Vec<KpiDef> {
    use Aggregate::{Average, Last, Sum};
    use Period::{Day, Month, Week};
    let eur = || Unit::Money("EUR".into());
    let usd = || Unit::Money("USD".into());
    let list = match workspace {
        "lunavo" => vec![
            def(
                "revenue_today",
                "Revenue today",
                eur(),
                "commerce.revenue",
                Sum,
                Day,
            ),
            def(
                "visitors",
                "Visitors",
                Unit::Count,
                "metric:visitors",
                Sum,
                Day,
            ),
            def(
                "conversion_rate",
                "Conversion rate",
                Unit::Percent,
                "=100 * commerce.orders / visitors",
                Sum,
                Week,
            ),
            def(
                "email_signups",
                "Email signups",
                Unit::Count,
                "metric:email_signups",
                Sum,
                Week,
            ),
            def(
                "content_score",
                "Content score",
                Unit::Count,
                "metric:content_score",
                Last,
                Week,
            ),
        ],
        "monarch" => vec![
            def(
                "daily_active_users",
                "Daily active users",
                Unit::Count,
                "metric:daily_active_users",
                Average,
                Week,
            ),
            def(
                "app_sessions",
                "App sessions",
                Unit::Count,
                "metric:app_sessions",
                Sum,
                Week,
            ),
            def(
                "social_reach",
                "Social reach",
                Unit::Count,
                "metric:social_reach",
                Sum,
                Week,
            ),
            def(
                "downloads",
                "Downloads",
                Unit::Count,
                "metric:downloads",
                Sum,
                Week,
            ),
        ],
        "hard-life-mode" => vec![
            def(
                "reach_per_post",
                "Reach per post",
                Unit::Count,
                "=reach / posts",
                Sum,
                Week,
            ),
            def(
                "save_rate",
                "Save rate",
                Unit::Percent,
                "=100 * saves / reach",
                Sum,
                Week,
            ),
            def(
                "follower_growth_rate",
                "Follower growth rate",
                Unit::Percent,
                "=100 * new_followers / followers",
                Sum,
                Week,
            ),
            def(
                "earnings_per_mille",
                "Earnings per mille",
                usd(),
                "=1000 * earnings / views",
                Sum,
                Month,
            ),
        ],
        "lunabots" => vec![
            def(
                "portfolio_value",
                "Finance bot (portfolio value)",
                Unit::Money("USDT".into()),
                "binance",
                Last,
                Day,
            ),
            def(
                "affiliate_revenue",
                "Affiliate bot (affiliate revenue)",
                usd(),
                "metric:affiliate_revenue",
                Sum,
                Month,
            ),
        ],
        "management" => vec![
            def(
                "total_revenue",
                "Total revenue (all workspaces)",
                eur(),
                "all.revenue",
                Sum,
                Month,
            ),
            def(
                "active_user_ratio",
                "Active user ratio",
                Unit::Percent,
                "=100 * active_users / users",
                Last,
                Week,
            ),
            def(
                "system_conversion",
                "System conversion",
                Unit::Percent,
                "=100 * conversions / visits",
                Sum,
                Week,
            ),
        ],
        _ => Vec::new(),
    };
    list.into_iter().flatten().collect()
}

/// The KPIs of every workspace: each workspace's defaults with the config's `[[kpis]]`
/// applied (a key that exists is overridden field by field, a new key is added, `disabled`
/// removes). Errors name the entry and what is wrong.
pub fn kpi_defs(
    workspaces: &[crate::workspace::Workspace],
    entries: &[KpiEntry],
) -> Result<BTreeMap<WorkspaceSlug, Vec<KpiDef>>, String> {
    let mut out: BTreeMap<WorkspaceSlug, Vec<KpiDef>> = workspaces
        .iter()
        .map(|w| (w.slug.clone(), default_kpis(w.slug.as_str())))
        .collect();
    for e in entries {
        let at = format!("[[kpis]] `{}` in `{}`", e.key, e.workspace);
        let ws = WorkspaceSlug::parse(&e.workspace).map_err(|x| format!("{at}: {x}"))?;
        let list = out
            .get_mut(&ws)
            .ok_or_else(|| format!("{at}: no workspace `{ws}` (see [[workspaces]])"))?;
        let key = MetricName::parse(&e.key).map_err(|x| format!("{at}: key {x}"))?;
        let pos = list.iter().position(|d| d.key == key);
        if e.disabled {
            if let Some(i) = pos {
                list.remove(i);
            }
            continue;
        }
        let mut d = match pos {
            Some(i) => list.remove(i),
            None => {
                if e.source.is_none() && e.formula.is_none() {
                    return Err(format!("{at}: a new KPI needs a `source` or a `formula`"));
                }
                KpiDef {
                    key: key.clone(),
                    name: crate::text::capitalise(&key.as_str().replace(['_', '.'], " ")),
                    unit: Unit::Count,
                    source: Source::Metric(key.clone()),
                    aggregate: Aggregate::Sum,
                    period: Period::Day,
                    target: None,
                    direction: Direction::Higher,
                    stale_after_hours: None,
                }
            }
        };
        if let Some(n) = &e.name {
            d.name = n.clone();
        }
        match (&e.source, &e.formula) {
            (Some(_), Some(_)) => {
                return Err(format!("{at}: give a `source` or a `formula`, not both"));
            }
            (Some(s), None) => d.source = Source::parse(s).map_err(|x| format!("{at}: {x}"))?,
            (None, Some(f)) => {
                d.source = Source::Formula(Formula::parse(f).map_err(|x| format!("{at}: {x}"))?)
            }
            (None, None) => {}
        }
        if let Some(u) = &e.unit {
            d.unit = match u.as_str() {
                "money" => {
                    let cur = e
                        .currency
                        .clone()
                        .or_else(|| match &d.unit {
                            Unit::Money(c) => Some(c.clone()),
                            _ => None,
                        })
                        .ok_or_else(|| format!("{at}: a `money` KPI needs its `currency`"))?;
                    Unit::Money(cur)
                }
                "count" => Unit::Count,
                "percent" => Unit::Percent,
                "ratio" => Unit::Ratio,
                other => {
                    return Err(format!(
                        "{at}: unit `{other}` is not one of money, count, percent, ratio"
                    ));
                }
            };
        } else if let (Some(c), Unit::Money(_)) = (&e.currency, &d.unit) {
            d.unit = Unit::Money(c.clone());
        }
        if let Unit::Money(c) = &d.unit
            && !(c.len() >= 3 && c.len() <= 5 && c.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(format!(
                "{at}: currency `{c}` is not a code like EUR or USD"
            ));
        }
        if let Some(a) = e.aggregate {
            d.aggregate = a;
        }
        if let Some(p) = e.period {
            d.period = p;
        }
        if let Some(t) = e.target {
            if !t.is_finite() {
                return Err(format!("{at}: the target must be a number"));
            }
            d.target = Some(t);
        }
        if let Some(dir) = e.direction {
            d.direction = dir;
        }
        if e.stale_after_hours.is_some() {
            d.stale_after_hours = e.stale_after_hours;
        }
        match pos {
            Some(i) => list.insert(i, d),
            None => list.push(d),
        }
    }
    // A formula may name another KPI of its workspace; cycles would never end.
    for (ws, list) in &out {
        for d in list {
            if let Some(path) = cycle_from(list, d) {
                return Err(format!(
                    "[[kpis]] in `{ws}`: the formulas of {} name each other in a circle",
                    path.join(" → ")
                ));
            }
        }
    }
    Ok(out)
}

fn cycle_from(list: &[KpiDef], start: &KpiDef) -> Option<Vec<String>> {
    fn walk(list: &[KpiDef], d: &KpiDef, path: &mut Vec<String>) -> bool {
        let Source::Formula(f) = &d.source else {
            return false;
        };
        if path.iter().any(|p| p == d.key.as_str()) {
            path.push(d.key.to_string());
            return true;
        }
        path.push(d.key.to_string());
        for n in f.names() {
            if let Some(next) = list.iter().find(|x| x.key.as_str() == n)
                && walk(list, next, path)
            {
                return true;
            }
        }
        path.pop();
        false
    }
    let mut path = Vec::new();
    walk(list, start, &mut path).then_some(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::workspace::default_workspaces;

    fn entry(ws: &str, key: &str) -> KpiEntry {
        KpiEntry {
            workspace: ws.into(),
            key: key.into(),
            ..KpiEntry::default()
        }
    }

    #[test]
    fn every_default_workspace_has_its_named_kpis() {
        let defs = kpi_defs(&default_workspaces(), &[]).unwrap();
        let names = |ws: &str| -> Vec<String> {
            defs[&WorkspaceSlug::parse(ws).unwrap()]
                .iter()
                .map(|d| d.name.clone())
                .collect()
        };
        assert_eq!(
            names("lunavo"),
            [
                "Revenue today",
                "Visitors",
                "Conversion rate",
                "Email signups",
                "Content score"
            ]
        );
        assert_eq!(names("monarch").len(), 4);
        assert_eq!(names("hard-life-mode").len(), 4);
        assert_eq!(names("lunabots").len(), 2);
        assert_eq!(names("management").len(), 3);
    }

    #[test]
    fn the_config_overrides_adds_and_removes() {
        let mut target = entry("lunavo", "visitors");
        target.target = Some(1000.0);
        let mut new = entry("monarch", "churn");
        new.unit = Some("percent".into());
        new.source = Some("churn".into());
        new.direction = Some(Direction::Lower);
        let mut gone = entry("lunavo", "content_score");
        gone.disabled = true;
        let defs = kpi_defs(&default_workspaces(), &[target, new, gone]).unwrap();
        let lunavo = &defs[&WorkspaceSlug::parse("lunavo").unwrap()];
        assert_eq!(lunavo[1].target, Some(1000.0));
        assert!(lunavo.iter().all(|d| d.key.as_str() != "content_score"));
        let churn = defs[&WorkspaceSlug::parse("monarch").unwrap()]
            .last()
            .unwrap();
        assert_eq!(
            churn.source,
            Source::Metric(MetricName::parse("churn").unwrap())
        );
        assert_eq!(churn.unit, Unit::Percent);
    }

    #[test]
    fn bad_kpi_entries_are_refused_with_the_reason() {
        let mut bad_unit = entry("lunavo", "visitors");
        bad_unit.unit = Some("pounds".into());
        let mut both = entry("lunavo", "x");
        both.source = Some("x".into());
        both.formula = Some("1".into());
        let mut circle_a = entry("lunavo", "a");
        circle_a.formula = Some("b + 1".into());
        let mut circle_b = entry("lunavo", "b");
        circle_b.formula = Some("a * 2".into());
        let mut bad_formula = entry("lunavo", "y");
        bad_formula.formula = Some("orders /".into());
        for (entries, why) in [
            (vec![bad_unit], "not one of money"),
            (vec![entry("nowhere", "x")], "no workspace"),
            (vec![entry("lunavo", "new_one")], "needs a `source`"),
            (vec![both], "not both"),
            (vec![circle_a, circle_b], "circle"),
            (vec![bad_formula], "ends where a value"),
            (vec![entry("lunavo", "Bad Key")], "not a metric name"),
        ] {
            let e = kpi_defs(&default_workspaces(), &entries).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn sources_read_as_written() {
        for s in [
            "commerce.revenue",
            "all.revenue",
            "binance",
            "metric:visitors",
            "folder:soshie/posts.reach",
            "folder:soshie/posts.count@posted",
        ] {
            assert_eq!(Source::parse(s).unwrap().describe(), s);
        }
        assert!(Source::parse("folder:posts").is_err());
        assert_eq!(
            KpiSettings::default().convert(100.0, "USD", "EUR"),
            Some(92.0)
        );
        assert_eq!(KpiSettings::default().convert(1.0, "JPY", "EUR"), None);
    }
}
