//! Demo history (`krake serve --demo`): a few weeks of plausible daily figures for every
//! metric the workspaces' KPIs read, stored as demo data (shown as such) under keys, so filling
//! twice stores nothing new.

use super::board::leaf_id;
use super::{BINANCE_METRIC, PointInput, Source};
use crate::actor::Actor;
use crate::ports::RepoError;
use crate::service::Krake;
use chrono::{Datelike, Days};

/// A typical daily value and whether it is a level (carried, slowly growing) or a flow.
fn base(name: &str) -> (f64, bool) {
    match name {
        "visitors" => (1200.0, false),
        "commerce.revenue" => (850.0, false),
        "commerce.orders" => (24.0, false),
        "email_signups" => (35.0, false),
        "content_score" => (72.0, true),
        "daily_active_users" => (4200.0, false),
        "app_sessions" => (9800.0, false),
        "social_reach" => (15000.0, false),
        "downloads" => (310.0, false),
        "reach" => (52000.0, false),
        "posts" => (2.0, false),
        "saves" => (1400.0, false),
        "new_followers" => (180.0, false),
        "followers" => (24000.0, true),
        "earnings" => (95.0, false),
        "views" => (61000.0, false),
        BINANCE_METRIC => (18500.0, true),
        "affiliate_revenue" => (64.0, false),
        "active_users" => (3100.0, true),
        "users" => (9000.0, true),
        "conversions" => (140.0, false),
        "visits" => (5200.0, false),
        _ => (100.0, false),
    }
}

/// A repeatable number in [-1, 1] for a name and a day.
fn noise(name: &str, day: u32) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes().chain(day.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % 2001) as f64 / 1000.0 - 1.0
}

/// Fills `days` days of demo history for every workspace; returns the points stored now.
pub async fn fill_history(krake: &Krake, days: u32) -> Result<usize, RepoError> {
    let Some(desk) = krake.kpi_desk.clone() else {
        return Ok(0);
    };
    let today = krake.kpi_today();
    let mut stored = 0;
    for (ws, defs) in &desk.defs {
        let mut names: Vec<String> = Vec::new();
        for d in defs {
            let leaves: Vec<String> = match &d.source {
                Source::Metric(m) => vec![m.to_string()],
                Source::Binance => vec![BINANCE_METRIC.to_owned()],
                Source::Commerce(_) | Source::AllRevenue | Source::Folder { .. } => Vec::new(),
                Source::Formula(f) => f
                    .names()
                    .into_iter()
                    .filter(|n| !defs.iter().any(|x| x.key.as_str() == *n))
                    .filter_map(|n| leaf_id(n).map(|id| (n, id)))
                    .filter(|(_, id)| id.starts_with("metric:") || id.starts_with("commerce."))
                    .map(|(n, _)| n.to_owned())
                    .collect(),
            };
            for n in leaves {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        if defs
            .iter()
            .any(|d| matches!(d.source, Source::Commerce(super::CommerceFigure::Revenue)))
            && !names.iter().any(|n| n == "commerce.revenue")
        {
            names.push("commerce.revenue".into());
        }
        let mut points = Vec::new();
        for name in &names {
            let (b, level) = base(name);
            for back in (0..days).rev() {
                let Some(day) = today.checked_sub_days(Days::new(u64::from(back))) else {
                    continue;
                };
                let t = f64::from(days - back);
                let weekly =
                    1.0 + 0.12 * (f64::from(day.weekday().num_days_from_monday()) * 0.9).sin();
                let growth = if level {
                    1.0 + 0.003 * t
                } else {
                    1.0 + 0.006 * t
                };
                let jitter = 1.0 + 0.08 * noise(name, day.ordinal());
                let mut v = b * growth * if level { 1.0 } else { weekly } * jitter;
                if b >= 10.0 {
                    v = v.round();
                } else {
                    v = (v * 10.0).round() / 10.0;
                }
                points.push(PointInput {
                    name: name.clone(),
                    value: v,
                    at: Some(day.to_string()),
                    key: Some(format!("demo:{name}:{day}")),
                });
            }
        }
        for chunk in points.chunks(super::MAX_POINTS_PER_PUSH) {
            if let Ok(p) = krake
                .push_points(&Actor::system(), ws.as_str(), chunk, true)
                .await?
            {
                stored += p.stored;
            }
        }
    }
    Ok(stored)
}
