//! The dashboard's Costs page (`/costs?month=YYYY-MM&workspace=SLUG`): a month's model tokens
//! and cost in total and per workspace, agent and day, from the same core report as
//! `GET /api/v1/costs` ([`cost_report`](krake_core::Krake::cost_report)), with each workspace's
//! and agent's monthly budget and how much of it is used, and links to the previous and next
//! months.

use crate::ApiError;
use crate::auth::Caller;
use crate::dashboard::{html, page, signed_in};
use crate::front::WebState;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use krake_core::ledger::{Budgets, CostReport, Spend, dollars, month_of, percent};
use krake_core::workspace::WorkspaceSlug;
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::BTreeMap;

/// Costs page routes.
pub fn router() -> Router<WebState> {
    Router::new().route("/costs", get(costs))
}

/// `?month=YYYY-MM&workspace=SLUG` (both optional: this month, every workspace one sees).
#[derive(Debug, Default, Deserialize)]
pub struct CostsQuery {
    /// The month, `YYYY-MM`.
    pub month: Option<String>,
    /// Only this workspace.
    pub workspace: Option<String>,
}

/// A month as year and month number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Month {
    year: i32,
    month: u32,
}

impl Month {
    /// Parses `YYYY-MM`.
    fn parse(s: &str) -> Option<Self> {
        let (y, m) = s.trim().split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let year: i32 = y.parse().ok()?;
        let month: u32 = m.parse().ok()?;
        (1..=12).contains(&month).then_some(Self { year, month })
    }

    fn previous(self) -> Self {
        if self.month == 1 {
            Self {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Self {
                month: self.month - 1,
                ..self
            }
        }
    }

    fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                month: self.month + 1,
                ..self
            }
        }
    }

    /// `2026-12`.
    fn key(self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }

    /// `December 2026`.
    fn words(self) -> String {
        const NAMES: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        let name = NAMES
            .get(self.month.saturating_sub(1) as usize)
            .copied()
            .unwrap_or("");
        format!("{name} {}", self.year)
    }
}

async fn costs(
    State(state): State<WebState>,
    headers: HeaderMap,
    q: Result<Query<CostsQuery>, QueryRejection>,
) -> Response {
    let who = match signed_in(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let this_month = Month::parse(&month_of(state.krake.now())).unwrap_or(Month {
        year: 2026,
        month: 1,
    });
    let month = match q.month.as_deref().filter(|m| !m.trim().is_empty()) {
        None => this_month,
        Some(m) => match Month::parse(m) {
            Some(m) => m,
            None => {
                return failed(
                    &who,
                    ApiError::BadRequest(format!(
                        "`{m}` is not a month; use YYYY-MM, e.g. {}",
                        this_month.key()
                    )),
                );
            }
        },
    };
    let ws = match q.workspace.as_deref().filter(|w| !w.trim().is_empty()) {
        None => None,
        Some(slug) => match WorkspaceSlug::parse(slug)
            .ok()
            .filter(|w| state.krake.directory().workspace(w).is_some())
        {
            Some(w) if who.actor.can_see(&w) => Some(w),
            Some(w) => {
                return failed(
                    &who,
                    ApiError::Forbidden(format!("{} may not see {w}", who.actor.user)),
                );
            }
            None => {
                return failed(
                    &who,
                    ApiError::NotFound(format!("there is no workspace `{slug}`")),
                );
            }
        },
    };
    let report = match state
        .krake
        .cost_report(&who.actor, ws.as_ref(), Some(&month.key()))
        .await
    {
        Ok(Some(r)) => r,
        Ok(None) => {
            return failed(
                &who,
                ApiError::NotFound(
                    "costs are not available here: agents are not set up (see docs/user-guide/agents.md)"
                        .into(),
                ),
            );
        }
        Err(e) => return failed(&who, ApiError::from(e)),
    };
    let budgets = state.krake.cost_budgets(&who.actor);
    let mut ws_opts = vec![(String::new(), "All workspaces".to_owned())];
    for w in state.krake.directory().workspaces() {
        if who.actor.can_see(&w.slug) {
            ws_opts.push((w.slug.to_string(), w.name.clone()));
        }
    }
    let body = render(&report, month, this_month, ws.as_ref(), &ws_opts, &budgets);
    html(
        StatusCode::OK,
        page(
            &format!("Costs · {}", month.words()),
            Some(&who),
            &body.into_string(),
        ),
    )
}

fn failed(who: &Caller, e: ApiError) -> Response {
    let body = html! {
        h1 { "Costs" }
        p.flash.error role="alert" { (e.to_string()) }
        p { a href="/costs" { "This month's costs" } }
    };
    html(e.status(), page("Costs", Some(who), &body.into_string()))
}

fn link(month: Month, ws: Option<&WorkspaceSlug>) -> String {
    match ws {
        Some(w) => format!("/costs?month={}&workspace={}", month.key(), w.as_str()),
        None => format!("/costs?month={}", month.key()),
    }
}

fn render(
    r: &CostReport,
    month: Month,
    this_month: Month,
    ws: Option<&WorkspaceSlug>,
    ws_opts: &[(String, String)],
    budgets: &Budgets,
) -> Markup {
    let scope = ws.map_or_else(|| "all your workspaces".to_owned(), |w| w.to_string());
    let current = ws.map_or("", WorkspaceSlug::as_str);
    html! {
        h1 { "Costs " small { (month.words()) } }
        nav.months aria-label="Months" {
            a #previous-month rel="prev" href=(link(month.previous(), ws)) { "← " (month.previous().words()) }
            @if month < this_month {
                a #next-month rel="next" href=(link(month.next(), ws)) { (month.next().words()) " →" }
            }
            @if month != this_month {
                a href=(link(this_month, ws)) { "This month" }
            }
        }
        form.filters method="get" action="/costs" {
            label { "Month " input type="month" name="month" value=(month.key()) max=(this_month.key()); }
            label {
                "Workspace "
                select name="workspace" {
                    @for (value, text) in ws_opts {
                        option value=(value) selected[value == current] { (text) }
                    }
                }
            }
            button type="submit" { "Show" }
        }
        @if r.total.calls == 0 {
            div.empty #no-costs {
                p { "No model calls in " (month.words()) " for " (scope) "." }
                p { "Costs are counted per model call an agent makes: ask one in the chat, e.g. "
                    code { "/ask dexter how were sales last week?" } ", and its tokens and cost show here." }
            }
        } @else {
            dl.totals #cost-total {
                div { dt { "Cost" } dd data-micros=(r.total.cost_micros) { (dollars(r.total.cost_micros)) } }
                div { dt { "Model calls" } dd { (r.total.calls) } }
                div { dt { "Tokens in" } dd { (r.total.input_tokens) } }
                div { dt { "Tokens out" } dd { (r.total.output_tokens) } }
            }
            h2 { "By workspace" }
            (spend_table("by-workspace", "Workspace", &r.by_workspace, |w| budgets.workspaces.get(w).copied()))
            h2 { "By agent" }
            (spend_table("by-agent", "Agent", &r.by_agent, |a| budgets.agents.get(&a.to_lowercase()).copied()))
            h2 { "By day" }
            (spend_table("by-day", "Day", &r.by_day, |_| None))
            p.hint { "Amounts are what the model providers' prices give for the tokens counted (US dollars). Budgets are monthly, set in the config file under " code { "[budgets]" } "." }
        }
    }
}

fn spend_table(
    id: &str,
    what: &str,
    rows: &BTreeMap<String, Spend>,
    budget: impl Fn(&str) -> Option<i64>,
) -> Markup {
    let any_budget = rows.keys().any(|k| budget(k).is_some());
    html! {
        div.scroll {
            table.costs id=(id) {
                thead {
                    tr {
                        th scope="col" { (what) }
                        th.num scope="col" { "Calls" }
                        th.num scope="col" { "Tokens in" }
                        th.num scope="col" { "Tokens out" }
                        th.num scope="col" { "Cost" }
                        @if any_budget { th scope="col" { "Budget used" } }
                    }
                }
                tbody {
                    @for (k, s) in rows {
                        tr data-key=(k) {
                            th scope="row" data-label=(what) { (k) }
                            td.num data-label="Calls" { (s.calls) }
                            td.num data-label="Tokens in" { (s.input_tokens) }
                            td.num data-label="Tokens out" { (s.output_tokens) }
                            td.num.cost data-label="Cost" { (dollars(s.cost_micros)) }
                            @if any_budget {
                                td.budget data-label="Budget used" {
                                    @if let Some(b) = budget(k) {
                                        meter min="0" max=(b) value=(s.cost_micros.min(b)) high=(b * 8 / 10) optimum="0" {}
                                        " " (percent(s.cost_micros, b)) "% of " (dollars(b))
                                    } @else {
                                        span.muted { "no budget" }
                                    }
                                }
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
    use super::*;

    #[test]
    fn months_parse_and_step_over_years() {
        let m = Month::parse("2026-12").unwrap();
        assert_eq!(m.next().key(), "2027-01");
        assert_eq!(m.previous().key(), "2026-11");
        assert_eq!(Month::parse("2026-01").unwrap().previous().key(), "2025-12");
        assert_eq!(m.words(), "December 2026");
        for bad in ["2026-13", "2026-00", "26-11", "2026-1x", "", "2026/11"] {
            assert!(Month::parse(bad).is_none(), "{bad}");
        }
    }
}
