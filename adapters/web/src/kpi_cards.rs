//! KPIs as dashboard HTML: a workspace's board as cards (the period's value, the change from
//! the period before, the target, stale and demo badges, and a 30-day trend drawn as inline
//! SVG on the server), and the Management overview on the home page (key figures per
//! workspace, the revenue total with the rates used, recent activity).
//!
//! No script and nothing from a CDN: the trend is a `<path>` in the page. Every text goes
//! through [`esc`].

use crate::dashboard::esc;
use krake_core::kpi::board::show;
use krake_core::kpi::{Board, Direction, Figure, Overview, Period, age};
use krake_core::time::Timestamp;
use std::fmt::Write as _;

/// The trend's drawing area (the `viewBox`); the page stretches it to the card's width.
const TREND_W: f64 = 120.0;
const TREND_H: f64 = 32.0;
/// Room above and below the line, so the stroke is never cut off.
const TREND_PAD: f64 = 3.0;

/// A workspace's KPIs as a grid of cards; `now` ages stale values.
pub fn board_cards(b: &Board, now: Timestamp) -> String {
    let mut s = String::from(r#"<section class="kpi-board" aria-labelledby="kpi-board-h">"#);
    let _ = write!(
        s,
        r#"<h2 id="kpi-board-h">KPIs <small>{}</small>{}</h2>"#,
        esc(&b.today),
        if b.demo {
            r#" <span class="badge demo">demo data</span>"#
        } else {
            ""
        }
    );
    if b.figures.is_empty() {
        let _ = write!(
            s,
            r#"<p class="empty">No KPIs are defined for {}. Add some under <code>[[kpis]]</code> in the config.</p>"#,
            esc(&b.name)
        );
    } else {
        s.push_str(r#"<ul class="kpi-cards">"#);
        for f in &b.figures {
            s.push_str(&card(f, now));
        }
        s.push_str("</ul>");
    }
    let empty: Vec<&str> = b
        .figures
        .iter()
        .filter(|f| f.value.is_none() && f.trend.iter().all(Option::is_none))
        .filter_map(|f| f.source.strip_prefix("metric:"))
        .collect();
    if !empty.is_empty() {
        let _ = write!(
            s,
            r#"<p class="kpi-hint">No data yet for {}: push it with <code>krake metric push {ws} NAME VALUE</code> or <code>POST /api/v1/workspaces/{ws}/metrics</code>.</p>"#,
            esc(&empty.join(", ")),
            ws = esc(b.workspace.as_str()),
        );
    }
    for n in &b.notes {
        let _ = write!(s, r#"<p class="flash">{}</p>"#, esc(n));
    }
    s.push_str("</section>");
    s
}

/// One KPI's card.
fn card(f: &Figure, now: Timestamp) -> String {
    let mut s = format!(
        r#"<li class="kpi-card" data-kpi="{key}"><h3>{name}</h3><p class="kpi-value"><span data-value="{raw}"{none}>{value}</span> <span class="kpi-period">{period}</span></p>"#,
        key = esc(&f.key),
        name = esc(&f.name),
        raw = f.value.map(|v| v.to_string()).unwrap_or_default(),
        none = if f.value.is_none() {
            r#" class="none""#
        } else {
            ""
        },
        value = esc(&f.show(f.value)),
        period = match f.period {
            Period::Day => "today",
            Period::Week => "last 7 days",
            Period::Month => "last 30 days",
        },
    );
    if f.period != Period::Day && f.today.is_some() {
        let _ = write!(
            s,
            r#"<p class="kpi-today">Today <span data-today>{}</span></p>"#,
            esc(&f.show(f.today))
        );
    }
    if let Some(c) = f.change_pct {
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
        let _ = write!(
            s,
            r#"<p class="kpi-change {class}">{arrow} {:.0} % vs {than}</p>"#,
            c.abs()
        );
    }
    if let Some(t) = f.target {
        let (class, mark) = match f.on_target {
            Some(true) => ("ok", " ✓".to_owned()),
            Some(false) => (
                "off",
                match &f.off_target_since {
                    Some(day) => format!(" ✗ off target since {}", esc(day)),
                    None => " ✗".to_owned(),
                },
            ),
            None => ("", String::new()),
        };
        let _ = write!(
            s,
            r#"<p class="kpi-target {class}">Target {}{mark}</p>"#,
            esc(&f.show(Some(t)))
        );
    }
    let mut badges = String::new();
    if let (true, Some(at)) = (f.stale, f.last_at) {
        let _ = write!(
            badges,
            r#"<span class="badge stale">stale: {} old</span>"#,
            esc(&age(now, at))
        );
    }
    if f.demo {
        badges.push_str(r#"<span class="badge demo">demo data</span>"#);
    }
    if !badges.is_empty() {
        let _ = write!(s, r#"<p class="badges">{badges}</p>"#);
    }
    s.push_str(&trend_svg(f));
    s.push_str("</li>");
    s
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
fn trend_svg(f: &Figure) -> String {
    let Some(points) = trend_points(&f.trend) else {
        return r#"<p class="kpi-trend empty">No data in the last 30 days.</p>"#.to_owned();
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
    format!(
        r#"<svg class="kpi-trend" data-trend viewBox="0 0 {TREND_W} {TREND_H}" preserveAspectRatio="none" role="img" aria-label="{}"><path class="axis" d="M0 {TREND_H}H{TREND_W}" stroke-width="1" vector-effect="non-scaling-stroke"/><path class="line" d="{d}" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" vector-effect="non-scaling-stroke"/><path d="M{ex:.1} {ey:.1}h0" stroke="currentColor" stroke-width="6" stroke-linecap="round" vector-effect="non-scaling-stroke"/></svg>"#,
        esc(&label)
    )
}

/// The Management overview for the home page: a card per workspace with its first three
/// figures, the 30-day revenue total (with the fixed rates used) and recent activity.
pub fn overview(o: &Overview, now: Timestamp) -> String {
    let mut s = String::from(
        r#"<section class="overview" aria-labelledby="overview-h"><h1 id="overview-h">Overview</h1>"#,
    );
    if o.rows.is_empty() {
        s.push_str(r#"<p class="empty">You see no workspace yet.</p>"#);
    } else {
        s.push_str(r#"<ul class="overview-rows">"#);
        for r in &o.rows {
            let b = &r.board;
            let _ = write!(
                s,
                r#"<li class="overview-row" data-overview-workspace="{slug}"><h2><a href="/workspaces/{slug}">{name}</a>{demo}</h2>"#,
                slug = esc(b.workspace.as_str()),
                name = esc(&b.name),
                demo = if b.demo {
                    r#" <span class="badge demo">demo data</span>"#
                } else {
                    ""
                },
            );
            if b.figures.is_empty() {
                s.push_str(r#"<p class="empty">No KPIs.</p>"#);
            } else {
                s.push_str("<dl>");
                for f in b.figures.iter().take(3) {
                    let _ = write!(
                        s,
                        r#"<div data-kpi="{}"><dt>{}</dt><dd>{}</dd></div>"#,
                        esc(&f.key),
                        esc(&f.name),
                        esc(&f.show(f.value))
                    );
                }
                s.push_str("</dl>");
            }
            if r.revenue_30d.is_some() {
                let _ = write!(
                    s,
                    r#"<p class="overview-revenue">Revenue, 30 days: {}</p>"#,
                    esc(&show(r.revenue_30d, "money", Some(&o.currency)))
                );
            }
            s.push_str("</li>");
        }
        s.push_str("</ul>");
    }
    let rates: Vec<String> = o
        .rates
        .iter()
        .map(|(c, r)| {
            format!(
                r#"<span class="rate">1 {} = {r} {}</span>"#,
                esc(c),
                esc(&o.currency)
            )
        })
        .collect();
    let _ = write!(
        s,
        r#"<p class="overview-total">Revenue, 30 days, these workspaces: <strong data-overview-total>{}</strong>{}</p>"#,
        esc(&show(o.total_revenue_30d, "money", Some(&o.currency))),
        if rates.is_empty() {
            String::new()
        } else {
            format!(
                r#" <small>(fixed rates from the config: {})</small>"#,
                rates.join(", ")
            )
        }
    );
    if !o.activity.is_empty() {
        s.push_str(r#"<h2>Lately</h2><ol class="activity">"#);
        for a in o.activity.iter().take(10) {
            let _ = write!(
                s,
                r#"<li data-kind="{kind}"><span class="age">{age} ago</span> "#,
                kind = esc(a.kind),
                age = esc(&age(now, a.at)),
            );
            if let Some(w) = &a.workspace {
                let _ = write!(s, r#"<span class="ws">{}</span> "#, esc(w.as_str()));
            }
            match a.thread {
                Some(id) => {
                    let prefix = format!("#{id} ");
                    let text = a.text.strip_prefix(&prefix).unwrap_or(&a.text);
                    let _ = write!(s, r##"<a href="/threads/{id}">#{id}</a> {}"##, esc(text));
                }
                None => s.push_str(&esc(&a.text)),
            }
            s.push_str("</li>");
        }
        s.push_str("</ol>");
    }
    s.push_str("</section>");
    s
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
        );
        assert!(!html.contains("<svg"), "{html}");
        assert!(html.contains("No data in the last 30 days."), "{html}");
    }

    #[test]
    fn the_chart_is_labelled_for_screen_readers() {
        let mut trend = vec![None; 28];
        trend.extend([Some(1100.0), Some(1250.0)]);
        let html = trend_svg(&figure("Visitors", trend));
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
        assert!(card(&f, now).contains(r#"kpi-change good">▲ 25 % vs yesterday"#));
        f.direction = Direction::Lower;
        assert!(card(&f, now).contains(r#"kpi-change bad">▲ 25 %"#));
        f.change_pct = Some(-10.0);
        assert!(card(&f, now).contains(r#"kpi-change good">▼ 10 %"#));
        f.target = Some(1000.0);
        f.on_target = Some(false);
        f.off_target_since = Some("2026-12-01".into());
        assert!(card(&f, now).contains("Target 1,000 ✗ off target since 2026-12-01"));
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
        let html = board_cards(&b, now);
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
        let home = overview(&o, now);
        for page in [&html, &home] {
            assert!(!page.contains("<script"), "{page}");
            assert!(page.contains("&lt;script&gt;"), "{page}");
        }
        assert!(!html.contains(r#"data-kpi="k""#), "{html}");
        assert!(home.contains(r##"<a href="/threads/7">#7</a> approved by ana: &lt;script&gt;"##));
    }
}
