//! `/runs`, `/run 12` and `/cancel 12 [reason]` in chat: the typed run operations
//! ([`run::watch`](crate::run::RunQuery)) rendered as replies a newcomer can read.

use crate::actor::Actor;
use crate::chat::text::link_hint;
use crate::ledger::dollars;
use crate::ports::RepoError;
use crate::reply::Reply;
use crate::run::{AgentStatus, Cancel, Run, RunId, RunQuery, RunStatus, RunView};
use crate::service::Krake;
use crate::text::one_line;
use std::fmt::Write as _;

/// Without agents there are no runs.
fn no_agents() -> Reply {
    Reply::info("No runs: agents are not set up here.")
}

impl Krake {
    /// `/runs [workspace] [agent] [status]`.
    pub(crate) async fn chat_runs(&self, actor: &Actor, q: &RunQuery) -> Result<Reply, RepoError> {
        if let Some(w) = q.workspace.as_ref().filter(|w| !actor.can_see(w)) {
            return Ok(Reply::warning(format!(
                "You are not a member of {w}, so its runs are hidden from you.{}",
                link_hint(actor)
            )));
        }
        let Some(runs) = self.runs(actor, q).await? else {
            return Ok(no_agents());
        };
        Ok(render_runs(q, &runs))
    }

    /// `/run 12`.
    pub(crate) async fn chat_run(&self, actor: &Actor, id: RunId) -> Result<Reply, RepoError> {
        if self.agents.is_none() {
            return Ok(no_agents());
        }
        Ok(match self.run_view(actor, id).await? {
            Some(v) => render_run(&v),
            None => Reply::warning(format!(
                "There is no {id} you can see. /runs lists the runs you can see."
            )),
        })
    }

    /// `/cancel 12 [reason]`.
    pub(crate) async fn chat_cancel(
        &self,
        actor: &Actor,
        id: RunId,
        reason: Option<&str>,
    ) -> Result<Reply, RepoError> {
        if self.agents.is_none() {
            return Ok(no_agents());
        }
        Ok(render_cancel(
            actor,
            id,
            &self.cancel_run(actor, id, reason).await?,
        ))
    }
}

/// A list of runs, one line each.
pub fn render_runs(q: &RunQuery, runs: &[Run]) -> Reply {
    let mut scope = String::from("runs");
    if let Some(s) = q.status {
        scope = format!("{s} runs");
    }
    if let Some(a) = &q.agent {
        let _ = write!(scope, " of {a}");
    }
    if let Some(w) = &q.workspace {
        let _ = write!(scope, " in {w}");
    }
    if runs.is_empty() {
        return Reply::info(format!(
            "No {scope}. Give an agent a task with /ask, e.g. /ask penn draft a tagline."
        ));
    }
    let mut t = format!("{} ({}):\n", crate::text::capitalise(&scope), runs.len());
    for r in runs {
        let _ = writeln!(
            t,
            "  {:<8} {:<7} {:<15} {:<17} {}",
            r.id.to_string(),
            r.agent,
            r.workspace,
            r.status,
            one_line(&r.task, 50)
        );
    }
    t.push_str("Open one with /run <id>; stop one with /cancel <id>.");
    Reply::info(t)
}

/// One run: what, who, where it stands, what it used, and every step.
pub fn render_run(v: &RunView) -> Reply {
    let r = &v.run;
    let mut t = format!(
        "{} — {} in {}: {}\nTask: {}\nAsked by {} ({}), {}.\n",
        capital(&r.id.to_string()),
        r.agent,
        r.workspace,
        r.status,
        one_line(&r.task, 200),
        r.requested_by,
        r.trigger,
        r.created_at.to_utc_string()
    );
    if let Some(th) = r.thread {
        let _ = writeln!(t, "Thread: #{} (/show {})", th.0, th.0);
    }
    if let Some(p) = r.parent {
        if r.trigger == crate::run::DELEGATION {
            let _ = writeln!(t, "Delegated by {p} (/run {}).", p.0);
        } else {
            let _ = writeln!(t, "Follows {p}.");
        }
    }
    let u = v.usage;
    let _ = writeln!(
        t,
        "Model calls: {}; tokens: {} in, {} out; cost {}.",
        u.calls,
        u.input_tokens,
        u.output_tokens,
        dollars(u.cost_micros)
    );
    if let Some(res) = &r.result {
        let _ = writeln!(t, "Result: {}", one_line(res, 300));
    }
    if let Some(e) = &r.error {
        let _ = writeln!(t, "Why: {}", one_line(e, 300));
    }
    if r.steps.is_empty() {
        t.push_str("No steps yet.");
    } else {
        let _ = writeln!(t, "Steps ({}):", r.steps.len());
        for s in &r.steps {
            let time = s.at.to_utc_string();
            let clock = time.get(11..16).unwrap_or(&time);
            let _ = writeln!(t, "  {clock} {:<12} {}", s.kind, one_line(&s.detail, 120));
        }
    }
    if r.status.cancellable() {
        let _ = write!(t, "\nStop it with /cancel {}.", r.id.0);
    }
    let reply = Reply::info(t.trim_end());
    match r.thread {
        Some(th) => reply.about(th),
        None => reply,
    }
}

/// What cancelling gave, with what to do next.
pub fn render_cancel(actor: &Actor, id: RunId, c: &Cancel) -> Reply {
    match c {
        Cancel::Cancelled(r) => Reply::success(format!(
            "Cancelled {} ({}: {}). It makes no more model calls and carries out nothing.",
            r.id,
            r.agent,
            one_line(&r.task, 60)
        )),
        Cancel::Ended(r) if r.status == RunStatus::Cancelled => Reply::info(format!(
            "{} was already cancelled ({}).",
            capital(&r.id.to_string()),
            r.error.as_deref().unwrap_or("no reason given")
        )),
        Cancel::Ended(r) => Reply::info(format!(
            "{} has already ended ({}); there is nothing to stop.",
            capital(&r.id.to_string()),
            r.status
        )),
        Cancel::Executing(r) => Reply::warning(format!(
            "{}'s approved action is being carried out right now and cannot be stopped half-way. /run {} shows how it ends.",
            capital(&r.id.to_string()),
            r.id.0
        )),
        Cancel::NotFound => Reply::warning(format!(
            "There is no {id} you can see. /runs lists the runs you can see."
        )),
        Cancel::NotLinked => Reply::warning(format!(
            "Cancelling a run needs a linked Krake account.{}",
            link_hint(actor)
        )),
        Cancel::RoleTooLow { run, role } => Reply::warning(format!(
            "Only members of {} can cancel its runs; you are a {role} there.",
            run.workspace
        )),
    }
}

/// `run 12` → `Run 12`.
fn capital(s: &str) -> String {
    crate::text::capitalise(s)
}

/// `/agents` with agents set up: each agent of the roster with what it is doing (idle, or the
/// runs it works on), this month's runs and cost against its budget, and its last result; its
/// tools once for all when they share them.
pub fn render_agents(roster: &[crate::agent::Agent], status: &[AgentStatus]) -> Reply {
    let mut t = String::from("Agents:");
    for a in roster {
        let homes: Vec<&str> = a.workspaces.iter().map(|w| w.as_str()).collect();
        let _ = write!(
            t,
            "\n  {:<7} {:<21} {}  [{}]",
            a.name,
            a.role,
            a.description,
            homes.join(", ")
        );
        let Some(s) = status.iter().find(|s| s.name == a.name.as_str()) else {
            continue;
        };
        let doing = match s.working_on.as_slice() {
            [] => "idle".to_owned(),
            ids => format!(
                "working on {}",
                ids.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let budget = s
            .budget_micros
            .map(|b| format!(" of {}", dollars(b)))
            .unwrap_or_default();
        let _ = write!(
            t,
            "\n          {doing} · {} run{} this month · {}{budget}",
            s.runs_this_month,
            if s.runs_this_month == 1 { "" } else { "s" },
            dollars(s.spent_micros)
        );
        if let Some((id, result)) = &s.last_result {
            let _ = write!(t, " · last ({id}): {}", one_line(result, 60));
        }
    }
    let shared = status
        .first()
        .filter(|f| status.iter().all(|s| s.tools == f.tools));
    match shared {
        Some(f) => {
            let _ = write!(t, "\nTools (every agent): {}.", f.tools.join(", "));
        }
        None => {
            for s in status {
                let _ = write!(t, "\nTools of {}: {}.", s.name, s.tools.join(", "));
            }
        }
    }
    t.push_str("\nSee a run with /run <id>; all of them with /runs.");
    Reply::info(t)
}
