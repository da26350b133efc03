//! KPIs as dashboard HTML: a workspace's board as cards (the period's value, the change from
//! the period before, the target, stale and demo badges, and a 30-day trend drawn as inline
//! SVG on the server), and the Management overview on the home page (key figures per
//! workspace, the revenue total with the rates used, recent activity).
//!
//! No script and nothing from a CDN: the trend is a `<path>` in the page. Templates (maud)
//! escape every text.

use krake_core::kpi::board::show;
use krake_core::kpi::{Board, Direction, Figure, Overview, Period, age};
use krake_core::time::Timestamp;
use maud::{Markup, html};
use std::fmt::Write as _;

/// The trend's drawing area (the `viewBox`); the page stretches it to the card's width.
const TREND_W: f64 = 120.0;
const TREND_H: f64 = 32.0;
/// Room above and below the line, so the stroke is never cut off.
const TREND_PAD: f64 = 3.0;

/// A workspace's KPIs as a grid of cards; `now` ages stale values.
pub fn board_cards(b: &Board, now: Timestamp) -> Markup {
    let empty: Vec<&str> = b
        .figures
        .iter()
        .filter(|f| f.value.is_none() && f.trend.iter().all(Option::is_none))
        .filter_map(|f| f.source.strip_prefix("metric:"))
        .collect();
    let ws = b.workspace.as_str();
    html! {
        section class="kpi-board" aria-labelledby="kpi-board-h" {
            h2 id="kpi-board-h" {
                "KPIs " small { (b.today) }
                @if b.demo { " " span class="badge demo" { "demo data" } }
            }
            @if b.figures.is_empty() {
                p class="empty" {
                    "No KPIs are defined for " (b.name) ". Add some under " code { "[[kpis]]" } " in the config."
                }
            } @else {
                ul class="kpi-cards" { @for f in &b.figures { (card(f, now)) } }
            }
            @if !empty.is_empty() {
                p class="kpi-hint" {
                    "No data yet for " (empty.join(", ")) ": push it with "
                    code { "krake metric push " (ws) " NAME VALUE" } " or "
                    code { "POST /api/v1/workspaces/" (ws) "/metrics" } "."
                }
            }
            @for n in &b.notes { p class="flash" { (n) } }
        }
    }
}

/// One KPI's card.
fn card(f: &Figure, now: Timestamp) -> Markup {
    let period = match f.period {
        Period::Day => "today",
        Period::Week => "last 7 days",
        Period::Month => "last 30 days",
    };
    let change = f.change_pct.map(|c| {
        let than = match f.period {
            Period::Day => "yesterday",
            Period::Week => "the week before",
            Period::Month => "the month before",
        };
        let (arrow, class) = if c.abs() <= 0.5 {
            ("=", "same")
        } else {
            let up = c > 0.0;
            let good = up == (f.direction == Direction::Higher);
            (
                if up { "▲" } else { "▼" },
                if good { "good" } else { "bad" },
            )
        };
        (class, format!("{arrow} {:.0} % vs {than}", c.abs()))
    });
    let target = f.target.map(|t| {
        let (class, mark) = match f.on_target {
            Some(true) => ("ok", " ✓".to_owned()),
            Some(false) => (
                "off",
                match &f.off_target_since {
                    Some(day) => format!(" ✗ off target since {day}"),
                    None => " ✗".to_owned(),
                },
            ),
            None => ("", String::new()),
        };
        (class, format!("Target {}{mark}", f.show(Some(t))))
    });
    let stale = match (f.stale, f.last_at) {
        (true, Some(at)) => Some(age(now, at)),
        _ => None,
    };
    html! {
        li class="kpi-card" data-kpi=(f.key) {
            h3 { (f.name) }
            p class="kpi-value" {
                span data-value=(f.value.map(|v| v.to_string()).unwrap_or_default()) class=[f.value.is_none().then_some("none")] {
                    (f.show(f.value))
                }
                " "
                span class="kpi-period" { (period) }
            }
            @if f.period != Period::Day && f.today.is_some() {
                p class="kpi-today" { "Today " span data-today { (f.show(f.today)) } }
            }
            @if let Some((class, text)) = &change { p class={ "kpi-change " (class) } { (text) } }
            @if let Some((class, text)) = &target { p class={ "kpi-target " (class) } { (text) } }
            @if stale.is_some() || f.demo {
                p class="badges" {
                    @if let Some(a) = &stale { span class="badge stale" { "stale: " (a) " old" } }
                    @if f.demo { span class="badge demo" { "demo data" } }
                }
            }
            (trend_svg(f))
        }
    }
}

/// Where each value sits in the trend's viewBox, `None` for a gap; `None` without values.
fn trend_points(values: &[Option<f64>]) -> Option<Vec<Option<(f64, f64)>>> {
    let known = values.iter().flatten().copied();
    let lo = known.clone().reduce(f64::min)?;
    let hi = known.reduce(f64::max)?;
    let step = TREND_W / (values.len().max(2) - 1) as f64;
    let y = |v: f64| {
        if hi > lo {
            TREND_PAD + (hi - v) / (hi - lo) * (TREND_H - 2.0 * TREND_PAD)
        } else {
            TREND_H / 2.0
        }
    };
    Some(
        values
            .iter()
            .enumerate()
            .map(|(i, v)| v.map(|v| (i as f64 * step, y(v))))
            .collect(),
    )
}

/// The path through the points: a new subpath after every gap, a lone point as a zero-length
/// segment (drawn as a dot by its round cap).
fn trend_path(points: &[Option<(f64, f64)>]) -> String {
    let mut d = String::new();
    let mut drawing = false;
    for (i, p) in points.iter().enumerate() {
        match p {
            Some((x, y)) => {
                let cmd = if drawing { 'L' } else { 'M' };
                let _ = write!(d, "{cmd}{x:.1} {y:.1}");
                let next_known = points.get(i + 1).is_some_and(Option::is_some);
                if !drawing && !next_known {
                    d.push_str("h0");
                }
                drawing = true;
            }
            None => drawing = false,
        }
    }
    d
}

/// The 30-day trend as inline SVG, or a line saying there is none.
fn trend_svg(f: &Figure) -> Markup {
    let Some(points) = trend_points(&f.trend) else {
        return html! { p class="kpi-trend empty" { "No data in the last 30 days." } };
    };
    let d = trend_path(&points);
    let mut known = f.trend.iter().flatten();
    let first = known.next().copied();
    let last = known.next_back().copied().or(first);
    let gaps = f.trend.iter().filter(|v| v.is_none()).count();
    let mut label = format!(
        "{}, last {} days, from {} to {}",
        f.name,
        f.trend.len(),
        f.show(first),
        f.show(last)
    );
    if gaps > 0 {
        let _ = write!(
            label,
            ", no data on {gaps} day{}",
            if gaps == 1 { "" } else { "s" }
        );
    }
    // The latest value gets a dot: where the line ends is what the card's number is about.
    let (ex, ey) = points
        .iter()
        .flatten()
        .next_back()
        .copied()
        .unwrap_or_default();
    html! {
        svg class="kpi-trend" data-trend viewBox={ "0 0 " (TREND_W) " " (TREND_H) } preserveAspectRatio="none" role="img" aria-label=(label) {
            path class="axis" d={ "M0 " (TREND_H) "H" (TREND_W) } stroke-width="1" vector-effect="non-scaling-stroke" {}
            path class="line" d=(d) fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" vector-effect="non-scaling-stroke" {}
            path d=(format!("M{ex:.1} {ey:.1}h0")) stroke="currentColor" stroke-width="6" stroke-linecap="round" vector-effect="non-scaling-stroke" {}
        }
    }
}

/// The Management overview for the home page: a card per workspace with its first three
/// figures, the 30-day revenue total (with the fixed rates used) and recent activity.
pub fn overview(o: &Overview, now: Timestamp) -> Markup {
    html! {
        section class="overview" aria-labelledby="overview-h" {
            h1 id="overview-h" { "Overview" }
            @if o.rows.is_empty() {
                p class="empty" { "You see no workspace yet." }
            } @else {
                ul class="overview-rows" {
                    @for r in &o.rows {
                        @let b = &r.board;
                        li class="overview-row" data-overview-workspace=(b.workspace.as_str()) {
                            h2 {
                                a href={ "/workspaces/" (b.workspace.as_str()) } { (b.name) }
                                @if b.demo { " " span class="badge demo" { "demo data" } }
                            }
                            @if b.figures.is_empty() {
                                p class="empty" { "No KPIs." }
                            } @else {
                                dl {
                                    @for f in b.figures.iter().take(3) {
                                        div data-kpi=(f.key) { dt { (f.name) } dd { (f.show(f.value)) } }
                                    }
                                }
                            }
                            @if r.revenue_30d.is_some() {
                                p class="overview-revenue" {
                                    "Revenue, 30 days: " (show(r.revenue_30d, "money", Some(&o.currency)))
                                }
                            }
                        }
                    }
                }
            }
            p class="overview-total" {
                "Revenue, 30 days, these workspaces: "
                strong data-overview-total { (show(o.total_revenue_30d, "money", Some(&o.currency))) }
                @if !o.rates.is_empty() {
                    " "
                    small {
                        "(fixed rates from the config: "
                        @for (i, (c, r)) in o.rates.iter().enumerate() {
                            @if i > 0 { ", " }
                            span class="rate" { "1 " (c) " = " (r) " " (o.currency) }
                        }
                        ")"
                    }
                }
            }
            @if !o.activity.is_empty() {
                h2 { "Lately" }
                ol class="activity" {
                    @for a in o.activity.iter().take(10) {
                        li data-kind=(a.kind) {
                            span class="age" { (age(now, a.at)) " ago" } " "
                            @if let Some(w) = &a.workspace { span class="ws" { (w.as_str()) } " " }
                            @match a.thread {
                                Some(id) => {
                                    @let prefix = format!("#{id} ");
                                    a href={ "/threads/" (id) } { "#" (id) }
                                    " " (a.text.strip_prefix(&prefix).unwrap_or(&a.text))
                                }
                                None => (a.text),
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use krake_core::kpi::OverviewRow;
    use krake_core::kpi::board::Activity;
    use krake_core::workspace::WorkspaceSlug;

    fn figure(name: &str, trend: Vec<Option<f64>>) -> Figure {
        Figure {
            key: "visitors".into(),
            name: name.into(),
            unit: "count",
            currency: None,
            period: Period::Day,
            today: Some(1250.0),
            value: Some(1250.0),
            previous: Some(1000.0),
            change_pct: Some(25.0),
            target: None,
            direction: Direction::Higher,
            on_target: None,
            off_target_since: None,
            trend,
            last_at: None,
            stale: false,
            demo: false,
            source: "metric:visitors".into(),
        }
    }

    fn board(figures: Vec<Figure>) -> Board {
        Board {
            workspace: WorkspaceSlug::parse("lunavo").unwrap(),
            name: "Lunavo".into(),
            today: "2026-12-08".into(),
            figures,
            demo: false,
            notes: Vec::new(),
        }
    }

    #[test]
    fn a_gap_starts_a_new_line_and_a_lone_value_is_a_dot() {
        let d = trend_path(
            &trend_points(&[
                Some(1.0),
                Some(2.0),
                None,
                Some(3.0),
                None,
                Some(2.0),
                Some(1.0),
            ])
            .unwrap(),
        );
        assert_eq!(d.matches('M').count(), 3, "{d}");
        // The lone value in the middle is a zero-length segment, drawn by its round cap.
        assert!(d.contains("M60.0 3.0h0"), "{d}");
        assert!(d.starts_with("M0.0 29.0L20.0 16.0"), "{d}");
    }

    #[test]
    fn a_flat_series_is_a_line_through_the_middle() {
        let d = trend_path(&trend_points(&[Some(5.0); 30]).unwrap());
        assert_eq!(d.matches('M').count(), 1);
        assert!(d.starts_with("M0.0 16.0L"), "{d}");
        assert!(d.ends_with("L120.0 16.0"), "{d}");
    }

    #[test]
    fn no_values_draw_no_chart() {
        assert_eq!(trend_points(&[None; 30]), None);
        let html = card(
            &figure("Visitors", vec![None; 30]),
            Timestamp::from_millis(0),
        )
        .into_string();
        assert!(!html.contains("<svg"), "{html}");
        assert!(html.contains("No data in the last 30 days."), "{html}");
    }

    #[test]
    fn the_chart_is_labelled_for_screen_readers() {
        let mut trend = vec![None; 28];
        trend.extend([Some(1100.0), Some(1250.0)]);
        let html = trend_svg(&figure("Visitors", trend)).into_string();
        assert!(html.contains(r#"role="img""#), "{html}");
        assert!(html.contains("data-trend"), "{html}");
        assert!(
            html.contains(
                r#"aria-label="Visitors, last 30 days, from 1,100 to 1,250, no data on 28 days""#
            ),
            "{html}"
        );
        // The latest value, the highest, has its dot at the right edge, at the top.
        assert!(html.contains(r#"d="M120.0 3.0h0""#), "{html}");
    }

    #[test]
    fn a_rise_is_good_when_higher_is_better_and_bad_when_lower_is() {
        let now = Timestamp::from_millis(0);
        let mut f = figure("Visitors", vec![Some(1.0)]);
        assert!(
            card(&f, now)
                .into_string()
                .contains(r#"kpi-change good">▲ 25 % vs yesterday"#)
        );
        f.direction = Direction::Lower;
        assert!(
            card(&f, now)
                .into_string()
                .contains(r#"kpi-change bad">▲ 25 %"#)
        );
        f.change_pct = Some(-10.0);
        assert!(
            card(&f, now)
                .into_string()
                .contains(r#"kpi-change good">▼ 10 %"#)
        );
        f.target = Some(1000.0);
        f.on_target = Some(false);
        f.off_target_since = Some("2026-12-01".into());
        assert!(
            card(&f, now)
                .into_string()
                .contains("Target 1,000 ✗ off target since 2026-12-01")
        );
    }

    #[test]
    fn every_text_is_escaped() {
        let x = "<script>alert(1)</script>";
        let mut f = figure(x, vec![Some(1.0), Some(2.0)]);
        f.key = format!("k\"{x}");
        f.off_target_since = Some(x.into());
        f.target = Some(1.0);
        f.on_target = Some(false);
        let mut b = board(vec![f]);
        b.name = x.into();
        b.notes = vec![x.into()];
        let now = Timestamp::from_millis(0);
        let html = board_cards(&b, now).into_string();
        let o = Overview {
            rows: vec![OverviewRow {
                board: b,
                revenue_30d: None,
            }],
            currency: x.into(),
            total_revenue_30d: Some(1.0),
            rates: vec![(x.into(), 0.5)],
            activity: vec![Activity {
                at: now,
                workspace: None,
                kind: "decision",
                text: format!("#7 approved by ana: {x}"),
                thread: Some(7),
            }],
        };
        let home = overview(&o, now).into_string();
        for page in [&html, &home] {
            assert!(!page.contains("<script"), "{page}");
            assert!(page.contains("&lt;script&gt;"), "{page}");
        }
        assert!(!html.contains(r#"data-kpi="k""#), "{html}");
        assert!(home.contains(r##"<a href="/threads/7">#7</a> approved by ana: &lt;script&gt;"##));
    }
}
