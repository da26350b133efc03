//! The cost ledger: every model call's tokens and cost, summed per agent, workspace, day and
//! month, and the monthly budgets that stop spending.
//!
//! Amounts are integer micro-dollars (millionths of a US dollar), so sums are exact.

use crate::time::Timestamp;
use crate::workspace::WorkspaceSlug;
use async_trait::async_trait;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use crate::ports::RepoError;

/// One model call, as charged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    /// The run it belongs to (`None` for natural-language routing and other calls).
    pub run: Option<i64>,
    /// The workspace charged.
    pub workspace: WorkspaceSlug,
    /// The agent charged (`router` for natural-language routing).
    pub agent: String,
    /// The provider that answered.
    pub provider: String,
    /// The model that answered.
    pub model: String,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Cost in micro-dollars.
    pub cost_micros: i64,
    /// When.
    pub at: Timestamp,
}

impl CallRecord {
    /// The UTC day of the call, `YYYY-MM-DD`.
    pub fn day(&self) -> String {
        self.at.day_at_offset(0)
    }

    /// The UTC month of the call, `YYYY-MM`.
    pub fn month(&self) -> String {
        month_of(self.at)
    }
}

/// The UTC month of an instant, `YYYY-MM`.
pub fn month_of(at: Timestamp) -> String {
    let mut d = at.day_at_offset(0);
    d.truncate(7);
    d
}

/// Tokens, cost and call count of one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Spend {
    /// Calls.
    pub calls: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Cost in micro-dollars.
    pub cost_micros: i64,
}

impl Spend {
    fn add(&mut self, r: &CallRecord) {
        self.calls += 1;
        self.input_tokens += r.input_tokens;
        self.output_tokens += r.output_tokens;
        self.cost_micros += r.cost_micros;
    }
}

/// A month's costs, in total and per workspace, agent and day.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CostReport {
    /// The month, `YYYY-MM`.
    pub month: String,
    /// Only this workspace, if one was asked for.
    pub workspace: Option<WorkspaceSlug>,
    /// Everything in the month.
    pub total: Spend,
    /// Per workspace.
    pub by_workspace: BTreeMap<String, Spend>,
    /// Per agent.
    pub by_agent: BTreeMap<String, Spend>,
    /// Per day (`YYYY-MM-DD`).
    pub by_day: BTreeMap<String, Spend>,
}

impl CostReport {
    /// Builds a report from the month's calls.
    pub fn from_calls<'a>(
        month: &str,
        workspace: Option<&WorkspaceSlug>,
        calls: impl IntoIterator<Item = &'a CallRecord>,
    ) -> Self {
        let mut r = CostReport {
            month: month.to_owned(),
            workspace: workspace.cloned(),
            ..CostReport::default()
        };
        for c in calls {
            r.total.add(c);
            r.by_workspace
                .entry(c.workspace.to_string())
                .or_default()
                .add(c);
            r.by_agent.entry(c.agent.clone()).or_default().add(c);
            r.by_day.entry(c.day()).or_default().add(c);
        }
        r
    }
}

impl CostReport {
    /// Adds another report's figures (of the same month) to this one.
    pub fn merge(&mut self, other: &CostReport) {
        fn add(a: &mut Spend, b: &Spend) {
            a.calls += b.calls;
            a.input_tokens += b.input_tokens;
            a.output_tokens += b.output_tokens;
            a.cost_micros += b.cost_micros;
        }
        add(&mut self.total, &other.total);
        for (k, v) in &other.by_workspace {
            add(self.by_workspace.entry(k.clone()).or_default(), v);
        }
        for (k, v) in &other.by_agent {
            add(self.by_agent.entry(k.clone()).or_default(), v);
        }
        for (k, v) in &other.by_day {
            add(self.by_day.entry(k.clone()).or_default(), v);
        }
    }
}

/// Where model calls are charged and summed.
#[async_trait]
pub trait CostLedger: Send + Sync {
    /// Records one call.
    async fn record_call(&self, call: &CallRecord) -> Result<(), RepoError>;
    /// Micro-dollars spent in `month` (`YYYY-MM`) by a workspace, or by one agent in it.
    async fn spent(
        &self,
        workspace: &WorkspaceSlug,
        agent: Option<&str>,
        month: &str,
    ) -> Result<i64, RepoError>;
    /// Micro-dollars spent in `month` by an agent across every workspace.
    async fn spent_by_agent(&self, agent: &str, month: &str) -> Result<i64, RepoError>;
    /// The month's report, for one workspace or all.
    async fn report(
        &self,
        workspace: Option<&WorkspaceSlug>,
        month: &str,
    ) -> Result<CostReport, RepoError>;
    /// What one run's model calls used, in all.
    async fn run_usage(&self, run: i64) -> Result<RunUsage, RepoError>;
    /// Holds `hold.amount` of the budgets it names for one call in flight, unless what is spent
    /// plus what other calls hold (in any process: holds live beside the ledger) plus this
    /// amount would cross one of them. Checking and holding are one atomic step, so processes
    /// racing for the last dollar cannot both pass. Expired holds (a process that died mid-call)
    /// stop counting.
    async fn hold(&self, hold: &BudgetHold) -> Result<Result<(), OverBudget>, RepoError>;
    /// Gives a hold back (after the call is charged, or when it was not made).
    async fn release_hold(&self, id: &str) -> Result<(), RepoError>;
}

/// Budget held for one model call in flight, until it is charged or expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetHold {
    /// Unique to this call.
    pub id: String,
    /// The workspace charged.
    pub workspace: WorkspaceSlug,
    /// The agent charged (lower-case).
    pub agent: String,
    /// The month (`YYYY-MM`).
    pub month: String,
    /// The call's estimated cost, in micro-dollars.
    pub amount: i64,
    /// The workspace's monthly budget, if it has one.
    pub workspace_budget: Option<i64>,
    /// The agent's monthly budget (across workspaces), if it has one.
    pub agent_budget: Option<i64>,
    /// Now.
    pub now: Timestamp,
    /// When the hold stops counting if never released.
    pub expires: Timestamp,
}

/// Which budget a call would cross.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetScope {
    /// The workspace's.
    Workspace,
    /// The agent's.
    Agent,
}

/// Why a hold was refused: the budget, what is spent and what calls in flight hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    /// The budget crossed.
    pub scope: BudgetScope,
    /// Its amount.
    pub budget: i64,
    /// Spent this month.
    pub spent: i64,
    /// Held by calls in flight.
    pub held: i64,
}

impl BudgetHold {
    /// The check every ledger makes, given what is spent and held for the workspace and the
    /// agent.
    pub fn check(&self, ws: (i64, i64), agent: (i64, i64)) -> Result<(), OverBudget> {
        for (scope, budget, (spent, held)) in [
            (BudgetScope::Workspace, self.workspace_budget, ws),
            (BudgetScope::Agent, self.agent_budget, agent),
        ] {
            if let Some(budget) = budget
                && spent.saturating_add(held).saturating_add(self.amount) > budget
            {
                return Err(OverBudget {
                    scope,
                    budget,
                    spent,
                    held,
                });
            }
        }
        Ok(())
    }
}

/// What one run's model calls used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RunUsage {
    /// Model calls charged.
    pub calls: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Cost in micro-dollars.
    pub cost_micros: i64,
}

/// An in-memory [`CostLedger`], for tests and benchmarks.
#[derive(Debug, Default)]
pub struct MemoryLedger(Mutex<Vec<CallRecord>>, Mutex<Vec<BudgetHold>>);

impl MemoryLedger {
    fn calls(&self) -> Result<std::sync::MutexGuard<'_, Vec<CallRecord>>, RepoError> {
        self.0
            .lock()
            .map_err(|_| RepoError::Unavailable("ledger lock poisoned".into()))
    }
}

#[async_trait]
impl CostLedger for MemoryLedger {
    async fn record_call(&self, call: &CallRecord) -> Result<(), RepoError> {
        self.calls()?.push(call.clone());
        Ok(())
    }

    async fn run_usage(&self, run: i64) -> Result<RunUsage, RepoError> {
        Ok(self
            .calls()?
            .iter()
            .filter(|c| c.run == Some(run))
            .fold(RunUsage::default(), |u, c| RunUsage {
                calls: u.calls + 1,
                input_tokens: u.input_tokens + c.input_tokens,
                output_tokens: u.output_tokens + c.output_tokens,
                cost_micros: u.cost_micros + c.cost_micros,
            }))
    }

    async fn spent(
        &self,
        workspace: &WorkspaceSlug,
        agent: Option<&str>,
        month: &str,
    ) -> Result<i64, RepoError> {
        Ok(self
            .calls()?
            .iter()
            .filter(|c| &c.workspace == workspace && c.month() == month)
            .filter(|c| agent.is_none_or(|a| c.agent.eq_ignore_ascii_case(a)))
            .map(|c| c.cost_micros)
            .sum())
    }

    async fn spent_by_agent(&self, agent: &str, month: &str) -> Result<i64, RepoError> {
        Ok(self
            .calls()?
            .iter()
            .filter(|c| c.agent.eq_ignore_ascii_case(agent) && c.month() == month)
            .map(|c| c.cost_micros)
            .sum())
    }

    async fn hold(&self, hold: &BudgetHold) -> Result<Result<(), OverBudget>, RepoError> {
        let spent_ws = self.spent(&hold.workspace, None, &hold.month).await?;
        let spent_agent = self.spent_by_agent(&hold.agent, &hold.month).await?;
        let mut holds = self
            .1
            .lock()
            .map_err(|_| RepoError::Unavailable("ledger lock poisoned".into()))?;
        holds.retain(|h| h.expires > hold.now);
        let held = |f: &dyn Fn(&BudgetHold) -> bool| -> i64 {
            holds
                .iter()
                .filter(|h| h.month == hold.month && f(h))
                .map(|h| h.amount)
                .sum()
        };
        let ws = (spent_ws, held(&|h| h.workspace == hold.workspace));
        let agent = (spent_agent, held(&|h| h.agent == hold.agent));
        if let Err(over) = hold.check(ws, agent) {
            return Ok(Err(over));
        }
        holds.push(hold.clone());
        Ok(Ok(()))
    }

    async fn release_hold(&self, id: &str) -> Result<(), RepoError> {
        self.1
            .lock()
            .map_err(|_| RepoError::Unavailable("ledger lock poisoned".into()))?
            .retain(|h| h.id != id);
        Ok(())
    }

    async fn report(
        &self,
        workspace: Option<&WorkspaceSlug>,
        month: &str,
    ) -> Result<CostReport, RepoError> {
        let calls = self.calls()?;
        Ok(CostReport::from_calls(
            month,
            workspace,
            calls
                .iter()
                .filter(|c| c.month() == month && workspace.is_none_or(|w| &c.workspace == w)),
        ))
    }
}

/// Monthly budgets in micro-dollars: per workspace and per agent (across workspaces).
/// A missing entry means no limit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Budgets {
    /// Per workspace slug.
    pub workspaces: BTreeMap<String, i64>,
    /// Per agent name (lowercase).
    pub agents: BTreeMap<String, i64>,
}

impl crate::service::Krake {
    /// The monthly budgets a person may see: every agent's, and those of the workspaces they
    /// see (none without agents).
    pub fn cost_budgets(&self, actor: &crate::actor::Actor) -> Budgets {
        let Some(agents) = &self.agents else {
            return Budgets::default();
        };
        let mut b = agents.budgets();
        b.workspaces
            .retain(|w, _| WorkspaceSlug::parse(w).is_ok_and(|w| actor.can_see(&w)));
        b
    }
}

/// Dollars from micro-dollars, for people: `$1.234567` → `$1.23`, small amounts keep digits.
pub fn dollars(micros: i64) -> String {
    let d = micros as f64 / 1_000_000.0;
    if micros != 0 && d.abs() < 0.01 {
        format!("${d:.4}")
    } else {
        format!("${d:.2}")
    }
}

/// Renders a report for chat, with the budgets that apply.
pub fn render_report(r: &CostReport, budgets: &Budgets) -> String {
    let scope = r
        .workspace
        .as_ref()
        .map_or_else(|| "all workspaces".to_owned(), |w| w.to_string());
    let mut t = format!(
        "Model costs for {scope} in {}: {} ({} calls, {} tokens in, {} out)\n",
        r.month,
        dollars(r.total.cost_micros),
        r.total.calls,
        r.total.input_tokens,
        r.total.output_tokens
    );
    if r.total.calls == 0 {
        t.push_str("No model calls this month.\n");
    }
    for (ws, s) in &r.by_workspace {
        let budget = budgets
            .workspaces
            .get(ws)
            .map(|b| {
                format!(
                    " of {} budget ({}%)",
                    dollars(*b),
                    percent(s.cost_micros, *b)
                )
            })
            .unwrap_or_default();
        let _ = writeln!(t, "  workspace {ws:<16} {}{budget}", dollars(s.cost_micros));
    }
    for (agent, s) in &r.by_agent {
        let budget = budgets
            .agents
            .get(&agent.to_lowercase())
            .map(|b| format!(" of {} budget", dollars(*b)))
            .unwrap_or_default();
        let _ = writeln!(
            t,
            "  agent     {agent:<16} {} in {} calls{budget}",
            dollars(s.cost_micros),
            s.calls
        );
    }
    for (day, s) in &r.by_day {
        let _ = writeln!(t, "  day       {day:<16} {}", dollars(s.cost_micros));
    }
    t.trim_end().to_owned()
}

/// `spent` as a whole percentage of `budget` (0 when there is no budget).
pub fn percent(spent: i64, budget: i64) -> i64 {
    if budget <= 0 {
        return if spent > 0 { 100 } else { 0 };
    }
    spent.saturating_mul(100) / budget
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(ws: &str, agent: &str, at: i64, cost: i64) -> CallRecord {
        CallRecord {
            run: None,
            workspace: WorkspaceSlug::parse(ws).unwrap(),
            agent: agent.into(),
            provider: "p".into(),
            model: "m".into(),
            input_tokens: 10,
            output_tokens: 5,
            cost_micros: cost,
            at: Timestamp::from_millis(at),
        }
    }

    #[tokio::test]
    async fn memory_ledger_sums_per_scope_and_month() {
        let l = MemoryLedger::default();
        // 2026-11-24 and 2026-12-01 (UTC).
        let nov = 1_795_503_000_000;
        let dec = 1_796_083_200_000;
        l.record_call(&call("lunavo", "Penn", nov, 100))
            .await
            .unwrap();
        l.record_call(&call("lunavo", "Soshie", nov, 50))
            .await
            .unwrap();
        l.record_call(&call("monarch", "Penn", nov, 7))
            .await
            .unwrap();
        l.record_call(&call("lunavo", "Penn", dec, 1000))
            .await
            .unwrap();
        let lunavo = WorkspaceSlug::parse("lunavo").unwrap();
        assert_eq!(l.spent(&lunavo, None, "2026-11").await.unwrap(), 150);
        assert_eq!(
            l.spent(&lunavo, Some("penn"), "2026-11").await.unwrap(),
            100
        );
        assert_eq!(l.spent_by_agent("penn", "2026-11").await.unwrap(), 107);
        assert_eq!(l.spent(&lunavo, None, "2026-12").await.unwrap(), 1000);
        let r = l.report(Some(&lunavo), "2026-11").await.unwrap();
        assert_eq!(r.total.calls, 2);
        assert_eq!(r.by_agent["Penn"].cost_micros, 100);
        assert_eq!(r.by_day["2026-11-24"].cost_micros, 150);
        let all = l.report(None, "2026-11").await.unwrap();
        assert_eq!(all.total.cost_micros, 157);
        let text = render_report(&all, &Budgets::default());
        assert!(text.contains("3 calls"), "{text}");
    }

    #[test]
    fn dollars_and_percent_read_well() {
        assert_eq!(dollars(1_234_567), "$1.23");
        assert_eq!(dollars(140), "$0.0001");
        assert_eq!(dollars(0), "$0.00");
        assert_eq!(percent(80, 100), 80);
        assert_eq!(percent(1, 0), 100);
    }
}
