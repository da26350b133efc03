//! KPIs as chat text: `/kpi` and `/overview`.

use super::board::{Board, Figure, Overview, show};
use crate::time::Timestamp;
use std::fmt::Write as _;

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A one-line chart of values (`▁▃▅█`, a space where there is no value).
pub fn sparkline(values: &[Option<f64>]) -> String {
    let known: Vec<f64> = values.iter().flatten().copied().collect();
    let (Some(lo), Some(hi)) = (
        known.iter().copied().reduce(f64::min),
        known.iter().copied().reduce(f64::max),
    ) else {
        return String::new();
    };
    values
        .iter()
        .map(|v| match v {
            None => ' ',
            Some(v) if hi > lo => {
                let i = ((v - lo) / (hi - lo) * 7.0).round();
                BARS[(i.clamp(0.0, 7.0)) as usize]
            }
            Some(_) => BARS[3],
        })
        .collect()
}

/// "3 h", "2 d": how old something is.
pub fn age(now: Timestamp, at: Timestamp) -> String {
    let mins = (now.as_millis() - at.as_millis()).max(0) / 60_000;
    match mins {
        0..=59 => format!("{mins} min"),
        60..=2879 => format!("{} h", mins / 60),
        _ => format!("{} d", mins / 1440),
    }
}

fn change(f: &Figure) -> String {
    let Some(c) = f.change_pct else {
        return String::new();
    };
    let arrow = if c > 0.5 {
        "▲"
    } else if c < -0.5 {
        "▼"
    } else {
        "="
    };
    let than = match f.period.days() {
        1 => "yesterday",
        7 => "the week before",
        _ => "the month before",
    };
    format!("{arrow} {:.0} % vs {than}", c.abs())
}

fn line(t: &mut String, f: &Figure, now: Timestamp, width: usize) {
    let mut notes = Vec::new();
    if f.period.days() > 1 {
        notes.push(f.period.label().to_owned());
        if f.today.is_some() {
            notes.push(format!("today {}", f.show(f.today)));
        }
    }
    let ch = change(f);
    if !ch.is_empty() {
        notes.push(ch);
    }
    if let Some(target) = f.target {
        let mark = match f.on_target {
            Some(true) => "✓".to_owned(),
            Some(false) => match &f.off_target_since {
                Some(since) => format!("✗ since {since}"),
                None => "✗".to_owned(),
            },
            None => String::new(),
        };
        notes.push(
            format!("target {} {mark}", f.show(Some(target)))
                .trim_end()
                .to_owned(),
        );
    }
    if let Some(at) = f.last_at
        && f.stale
    {
        notes.push(format!("stale: {} old", age(now, at)));
    }
    let row = format!(
        "  {:<width$} {:>16}  {}",
        crate::text::one_line(&f.name, width),
        f.show(f.value),
        notes.join(" · ")
    );
    let _ = writeln!(t, "{}", row.trim_end());
    let spark = sparkline(&f.trend);
    if !spark.trim().is_empty() {
        let _ = writeln!(t, "  {:<width$} {spark}", "");
    }
}

/// A workspace's KPIs for chat.
pub fn render_board(b: &Board, now: Timestamp) -> String {
    let mut t = String::new();
    let demo = if b.demo { " — demo data" } else { "" };
    let _ = writeln!(t, "{} KPIs, {}{demo}:", b.name, b.today);
    if b.figures.is_empty() {
        let _ = writeln!(
            t,
            "  No KPIs are defined for {}. Add some under [[kpis]] in the config.",
            b.name
        );
    }
    let width = b
        .figures
        .iter()
        .map(|f| f.name.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(12, 32);
    for f in &b.figures {
        line(&mut t, f, now, width);
    }
    let empty: Vec<&str> = b
        .figures
        .iter()
        .filter(|f| f.value.is_none() && f.trend.iter().all(Option::is_none))
        .filter_map(|f| f.source.strip_prefix("metric:"))
        .collect();
    if !empty.is_empty() {
        let _ = writeln!(
            t,
            "No data yet for {}: push it with `krake metric push {} NAME VALUE` or POST /api/v1/workspaces/{}/metrics.",
            empty.join(", "),
            b.workspace,
            b.workspace
        );
    }
    for n in &b.notes {
        let _ = writeln!(t, "Note: {n}");
    }
    t.trim_end().to_owned()
}

/// A workspace's KPIs as cards (what [`render_board`] writes, one card per figure).
pub fn kpi_cards(b: &Board) -> Vec<crate::reply::Block> {
    b.figures
        .iter()
        .map(|f| {
            let change = change(f);
            crate::reply::Block::Kpi(crate::reply::KpiCard {
                label: f.name.clone(),
                value: f.show(f.value),
                change: (!change.is_empty()).then_some(change),
                period: (f.period.days() > 1).then(|| f.period.label().to_owned()),
                target: f.target.map(|t| f.show(Some(t))),
                on_target: f.on_target,
                trend: sparkline(&f.trend).trim_end().to_owned(),
            })
        })
        .collect()
}

/// The Management overview for chat.
pub fn render_overview(o: &Overview, now: Timestamp) -> String {
    let mut t = String::new();
    let demo = if o.rows.iter().any(|r| r.board.demo) {
        " — includes demo data"
    } else {
        ""
    };
    let _ = writeln!(t, "Overview{demo}:");
    if o.rows.is_empty() {
        let _ = writeln!(t, "  You see no workspace yet.");
    }
    for r in &o.rows {
        let key: Vec<String> = r
            .board
            .figures
            .iter()
            .take(3)
            .map(|f| format!("{} {}", f.name, f.show(f.value)))
            .collect();
        let figures = if key.is_empty() {
            "no KPIs".to_owned()
        } else {
            key.join(" · ")
        };
        let _ = writeln!(
            t,
            "  {:<16} {figures}",
            crate::text::one_line(&r.board.name, 16)
        );
    }
    let rates: Vec<String> = o
        .rates
        .iter()
        .map(|(c, r)| format!("1 {c} = {r} {}", o.currency))
        .collect();
    let _ = writeln!(
        t,
        "Revenue, 30 days, all these workspaces: {}{}",
        show(o.total_revenue_30d, "money", Some(&o.currency)),
        if rates.is_empty() {
            String::new()
        } else {
            format!(" (fixed rates from the config: {})", rates.join(", "))
        }
    );
    if !o.activity.is_empty() {
        let _ = writeln!(t, "Lately:");
        for a in o.activity.iter().take(8) {
            let ws = a
                .workspace
                .as_ref()
                .map(|w| format!("{w}: "))
                .unwrap_or_default();
            let _ = writeln!(t, "  {:>6} ago  {ws}{}", age(now, a.at), a.text);
        }
    }
    t.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kpi_cards_say_what_the_board_text_says() {
        let figure = |name: &str, unit, value, change_pct, period, target| Figure {
            key: name.to_lowercase(),
            name: name.to_owned(),
            unit,
            currency: Some("EUR".to_owned()),
            period,
            today: Some(10.0),
            value,
            previous: None,
            change_pct,
            target,
            direction: crate::kpi::Direction::Higher,
            on_target: target.zip(value).map(|(t, v)| v >= t),
            off_target_since: None,
            trend: vec![Some(1.0), None, Some(3.0)],
            last_at: None,
            stale: false,
            demo: false,
            source: "metric:x".to_owned(),
        };
        let b = Board {
            workspace: crate::workspace::WorkspaceSlug::parse("lunavo").unwrap(),
            name: "Lunavo".to_owned(),
            today: "2026-12-07".to_owned(),
            figures: vec![
                figure(
                    "Revenue",
                    "money",
                    Some(1234.5),
                    Some(12.0),
                    crate::kpi::Period::Week,
                    Some(1000.0),
                ),
                figure("Orders", "count", None, None, crate::kpi::Period::Day, None),
            ],
            demo: false,
            notes: vec![],
        };
        let text = render_board(&b, Timestamp::from_millis(0));
        let cards = kpi_cards(&b);
        assert_eq!(cards.len(), b.figures.len());
        for card in &cards {
            let crate::reply::Block::Kpi(k) = card else {
                panic!("not a KPI card: {card:?}");
            };
            assert!(text.contains(&k.label), "{} not in {text}", k.label);
            assert!(text.contains(&k.value), "{} not in {text}", k.value);
            if let Some(c) = &k.change {
                assert!(text.contains(c.as_str()), "{c} not in {text}");
            }
        }
        let crate::reply::Block::Kpi(revenue) = &cards[0] else {
            unreachable!()
        };
        assert_eq!(revenue.change.as_deref(), Some("▲ 12 % vs the week before"));
        assert_eq!(revenue.on_target, Some(true));
        assert_eq!(revenue.trend, "▁ █");
        assert_eq!(revenue.period.as_deref(), Some("7 days"));
    }

    #[test]
    fn sparklines_scale_between_low_and_high() {
        assert_eq!(sparkline(&[Some(0.0), Some(7.0), None, Some(3.5)]), "▁█ ▅");
        assert_eq!(sparkline(&[None, None]), "");
        assert_eq!(sparkline(&[Some(2.0), Some(2.0)]), "▄▄");
    }
}
