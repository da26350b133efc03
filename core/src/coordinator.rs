//! The coordinator: assigns tasks to agents and runs due schedules, each occurrence once.
//!
//! A tick asks the store for active schedules whose next run has come (an indexed query on
//! `next_run_at`), and for each claims the occurrence with a compare-and-set on `next_run_at`
//! in the same transaction that posts the task. Several coordinators (several `krake serve`
//! processes on one PostgreSQL) can tick at once: exactly one wins each occurrence.
//!
//! Until agents run models, running a schedule posts its task to the To Do inbox as a question
//! thread for the assigned agent.

use crate::agent::Agent;
use crate::config::Directory;
use crate::inbox::{NewThread, Origin, ThreadId, ThreadKind};
use crate::ports::RepoError;
use crate::schedule::{
    Assignment, CatchUp, RunTrigger, Schedule, ScheduleRepo, ScheduleRun, local_time,
};
use crate::text::{capitalise, one_line};
use crate::time::{Clock, Timestamp};
use crate::workspace::WorkspaceSlug;
use std::sync::Arc;
use std::time::Duration;

/// Picks the agent for a task.
///
/// - `who` names an agent: that agent.
/// - `who` names a role (`data analyst`, `seo`): the agent with that role whose home is the
///   workspace, else one working there, else the first with that role.
/// - no `who`: the agent whose role and description share the most words with the task,
///   among those working in the workspace (if one is given).
///
/// `Err` says why no agent fits.
pub fn assign(
    directory: &Directory,
    who: Option<&str>,
    workspace: Option<&WorkspaceSlug>,
    task: &str,
) -> Result<Assignment, String> {
    let in_ws = |a: &Agent| workspace.is_none_or(|w| a.workspaces.contains(w));
    let home_ws = |a: &Agent| workspace.is_some_and(|w| a.home() == Some(w));
    if let Some(who) = who.map(str::trim).filter(|w| !w.is_empty()) {
        if let Some(a) = directory.agent(who) {
            return Ok(Assignment {
                agent: a.name.to_string(),
                role: None,
                reason: "named in the task".to_owned(),
            });
        }
        let role = who.to_lowercase();
        let with_role: Vec<&Agent> = directory
            .agents()
            .iter()
            .filter(|a| a.role.to_lowercase() == role)
            .collect();
        if with_role.is_empty() {
            let roles: Vec<&str> = directory.agents().iter().map(|a| a.role.as_str()).collect();
            return Err(format!(
                "there is no agent or role called `{}`; see /agents (roles: {})",
                who.chars().take(40).collect::<String>(),
                roles.join(", ")
            ));
        }
        let pick = with_role
            .iter()
            .find(|a| home_ws(a))
            .or_else(|| with_role.iter().find(|a| in_ws(a)))
            .or_else(|| with_role.first())
            .copied();
        let Some(a) = pick else {
            return Err("no agent has that role".to_owned());
        };
        let place = match workspace {
            Some(w) if a.workspaces.contains(w) => format!(" in {w}"),
            Some(w) => format!(" (none works in {w}; picked the first)"),
            None => String::new(),
        };
        return Ok(Assignment {
            agent: a.name.to_string(),
            role: Some(a.role.clone()),
            reason: format!("picked by role: the {}{place}", a.role),
        });
    }
    let task_words = significant_words(task);
    let mut best: Option<(&Agent, usize)> = None;
    for a in directory.agents().iter().filter(|a| in_ws(a)) {
        let profile = significant_words(&format!("{} {}", a.role, a.description));
        let score = task_words
            .iter()
            .filter(|w| profile.iter().any(|p| same_stem(p, w)))
            .count();
        if score > 0 && best.is_none_or(|(_, s)| score > s) {
            best = Some((a, score));
        }
    }
    match best {
        Some((a, _)) => Ok(Assignment {
            agent: a.name.to_string(),
            role: Some(a.role.clone()),
            reason: format!(
                "picked by the coordinator: the task matches the {} role{}",
                a.role,
                workspace.map(|w| format!(" in {w}")).unwrap_or_default()
            ),
        }),
        None => Err(
            "I could not tell which agent should do that; name an agent or a role (see /agents)"
                .to_owned(),
        ),
    }
}

fn significant_words(s: &str) -> Vec<String> {
    const STOP: &[&str] = &[
        "the", "and", "for", "with", "from", "that", "this", "our", "your", "what", "into",
        "about", "last", "next", "week", "weeks", "today", "day", "days", "each", "every", "make",
        "write", "their", "them", "then", "they", "when",
    ];
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3 && !STOP.contains(w))
        .map(str::to_owned)
        .collect()
}

fn same_stem(a: &str, b: &str) -> bool {
    let n = 5.min(a.len()).min(b.len());
    n >= 3 && a.get(..n) == b.get(..n) && (a.len().abs_diff(b.len()) <= 4 || n >= 5)
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Occurrences run (threads posted).
    pub ran: Vec<(crate::schedule::ScheduleId, Timestamp, ThreadId)>,
    /// Occurrences skipped under the `skip` catch-up policy.
    pub skipped: usize,
    /// Occurrences another coordinator claimed first.
    pub lost: usize,
}

/// Runs due schedules.
#[derive(Clone)]
pub struct Coordinator {
    repo: Arc<dyn ScheduleRepo>,
    clock: Arc<dyn Clock>,
    directory: Arc<Directory>,
    grace: Duration,
}

impl Coordinator {
    /// A coordinator; an occurrence found more than `grace` late counts as missed (downtime)
    /// and follows the schedule's catch-up policy.
    pub fn new(
        repo: Arc<dyn ScheduleRepo>,
        clock: Arc<dyn Clock>,
        directory: Directory,
        grace: Duration,
    ) -> Self {
        Self {
            repo,
            clock,
            directory: Arc::new(directory),
            grace,
        }
    }

    /// Runs every occurrence due now, each once across all coordinators.
    #[tracing::instrument(skip_all)]
    pub async fn tick(&self) -> Result<TickReport, RepoError> {
        self.tick_at(self.clock.now()).await
    }

    /// Like [`tick`](Self::tick) at a given instant (benchmarks and simulations).
    pub async fn tick_at(&self, now: Timestamp) -> Result<TickReport, RepoError> {
        let mut report = TickReport::default();
        loop {
            let due = self.repo.due_schedules(now, 200).await?;
            let n = due.len();
            for s in due {
                self.run_due(&s, now, &mut report).await?;
            }
            if n < 200 {
                return Ok(report);
            }
        }
    }

    async fn run_due(
        &self,
        s: &Schedule,
        now: Timestamp,
        report: &mut TickReport,
    ) -> Result<(), RepoError> {
        let Some(occurrence) = s.next_run_at else {
            return Ok(());
        };
        let next = s.cadence.next_after(now);
        let late = now.as_millis() - occurrence.as_millis()
            > i64::try_from(self.grace.as_millis()).unwrap_or(i64::MAX);
        let missed = if late {
            1 + s.cadence.count_between(occurrence, now, 10_000)
        } else {
            1
        };
        let trigger = if late {
            RunTrigger::CatchUp
        } else {
            RunTrigger::Due
        };
        if late && s.catch_up == CatchUp::Skip {
            match self
                .repo
                .claim_occurrence(s.id, occurrence, next, None, now)
                .await?
            {
                Some(_) => {
                    tracing::info!(
                        schedule = s.id.0,
                        missed,
                        "missed occurrences skipped (catch-up: skip)"
                    );
                    report.skipped += missed;
                }
                None => report.lost += 1,
            }
            return Ok(());
        }
        let (run, thread) = self.prepare(s, occurrence, now, trigger, missed);
        match self
            .repo
            .claim_occurrence(s.id, occurrence, next, Some((&run, &thread)), now)
            .await?
        {
            Some(Some(t)) => {
                tracing::info!(schedule = s.id.0, thread = t.0, agent = %run.agent, trigger = trigger.as_str(), "schedule ran");
                report.ran.push((s.id, occurrence, t));
            }
            Some(None) => {}
            None => report.lost += 1,
        }
        Ok(())
    }

    /// The run record and inbox thread for one occurrence (see [`prepare_run`]).
    pub fn prepare(
        &self,
        s: &Schedule,
        occurrence: Timestamp,
        now: Timestamp,
        trigger: RunTrigger,
        missed: usize,
    ) -> (ScheduleRun, NewThread) {
        prepare_run(&self.directory, s, occurrence, now, trigger, missed)
    }
}

/// The run record and inbox thread for one occurrence. The agent is re-checked against the
/// directory: if the assigned agent is gone, the role (or the task) picks again.
pub fn prepare_run(
    directory: &Directory,
    s: &Schedule,
    occurrence: Timestamp,
    now: Timestamp,
    trigger: RunTrigger,
    missed: usize,
) -> (ScheduleRun, NewThread) {
    let assignment = if directory.agent(&s.assignment.agent).is_some() {
        s.assignment.clone()
    } else {
        assign(
            directory,
            s.assignment.role.as_deref(),
            Some(&s.workspace),
            &s.task,
        )
        .map(|mut a| {
            a.reason = format!("{} was removed; {}", s.assignment.agent, a.reason);
            a
        })
        .unwrap_or_else(|_| s.assignment.clone())
    };
    let role = directory
        .agent(&assignment.agent)
        .map(|a| a.role.clone())
        .unwrap_or_default();
    let when = match trigger {
        RunTrigger::Due => format!("due {}", local_time(occurrence, s.cadence.timezone())),
        RunTrigger::CatchUp if missed > 1 => format!(
            "catching up: {missed} occurrences were missed while Krake was down (first {}); running once",
            local_time(occurrence, s.cadence.timezone())
        ),
        RunTrigger::CatchUp => format!(
            "catching up: the occurrence of {} was missed while Krake was down",
            local_time(occurrence, s.cadence.timezone())
        ),
        RunTrigger::Manual => "run now on request".to_owned(),
    };
    let mut thread = NewThread::new(
        s.workspace.clone(),
        ThreadKind::Question,
        format!("Task for {}: {}", assignment.agent, one_line(&s.task, 80)),
        format!(
            "Scheduled task for {} ({role}): {}\nSchedule {}, {} ({}); {when}.\nAssigned: {}.\nWith a model configured the agent runs it and answers here; otherwise a person can pick it up here.",
            assignment.agent,
            s.task,
            s.id.0,
            s.description,
            s.cadence.timezone().name(),
            assignment.reason
        ),
    );
    thread.origin = Origin::System;
    thread.agent = Some(assignment.agent.clone());
    // One thread per occurrence, even if a claim were ever repeated.
    thread.origin_key = Some(format!(
        "schedule:{}:{}:{}",
        s.id.0,
        occurrence.as_millis(),
        trigger.as_str()
    ));
    let run = ScheduleRun {
        schedule: s.id,
        occurrence_at: occurrence,
        ran_at: now,
        trigger,
        agent: assignment.agent,
        reason: assignment.reason,
        thread: None,
    };
    (run, thread)
}

/// A schedule the actor may change, or the reply saying why not: a schedule of a workspace
/// they cannot see does not exist for them; changing one needs the member role there.
async fn changeable(
    repo: &dyn crate::schedule::ScheduleRepo,
    actor: &crate::actor::Actor,
    id: crate::schedule::ScheduleId,
) -> Result<Result<crate::schedule::Schedule, crate::reply::Reply>, RepoError> {
    use crate::reply::Reply;
    let Some(s) = repo
        .get_schedule(id)
        .await?
        .filter(|s| actor.can_see(&s.workspace))
    else {
        return Ok(Err(Reply::warning(format!(
            "There is no schedule {id}. See /schedules."
        ))));
    };
    if actor.role_in(&s.workspace) < crate::actor::Role::Member {
        return Ok(Err(Reply::warning(
            "You can see this workspace's schedules but not change them: that needs the member role there.",
        )));
    }
    Ok(Ok(s))
}

impl crate::service::Krake {
    /// Handles the `/schedule` family.
    pub(crate) async fn schedule_command(
        &self,
        actor: &crate::actor::Actor,
        cmd: crate::schedule::ScheduleCommand,
        ctx: &crate::ports::WriteCtx,
    ) -> Result<crate::reply::Reply, RepoError> {
        use crate::actor::Role;
        use crate::reply::Reply;
        use crate::schedule::{NewSchedule, ScheduleCommand};
        use std::fmt::Write as _;
        let Some(repo) = self.schedules.clone() else {
            return Ok(Reply::warning("Schedules are not available on this front."));
        };
        let now = ctx.now;
        match cmd {
            ScheduleCommand::Create(req) => {
                let cadence = match req.when.cadence(self.default_tz) {
                    Ok(c) => c,
                    Err(e) => return Ok(Reply::warning(format!("{e}. Nothing was scheduled."))),
                };
                let assignment = match assign(
                    &self.directory,
                    req.who.as_deref(),
                    req.workspace.as_ref(),
                    &req.task,
                ) {
                    Ok(a) => a,
                    Err(e) => {
                        return Ok(Reply::warning(format!(
                            "{}. Nothing was scheduled.",
                            capitalise(&e)
                        )));
                    }
                };
                let workspace = req
                    .workspace
                    .clone()
                    .or_else(|| {
                        self.directory
                            .agent(&assignment.agent)
                            .and_then(|a| a.home().cloned())
                    })
                    .or_else(|| self.directory.workspaces().first().map(|w| w.slug.clone()));
                let Some(workspace) = workspace else {
                    return Ok(Reply::error("No workspace is configured."));
                };
                if actor.role_in(&workspace) < Role::Member {
                    return Ok(Reply::warning(format!(
                        "Scheduling in {workspace} needs the member role there. Nothing was scheduled."
                    )));
                }
                let next = cadence.next_after(now);
                let new = NewSchedule {
                    name: None,
                    workspace,
                    assignment,
                    task: req.task.clone(),
                    cadence,
                    description: req.when.description.clone(),
                    catch_up: req.catch_up,
                    created_by: actor.user.to_string(),
                    next_run_at: next,
                };
                let directory = self.directory.clone();
                let ctx = ctx.answering(move |c| match c {
                    crate::inbound::Change::Scheduled(s) => Some(scheduled(&directory, s, now)),
                    _ => None,
                });
                let s = repo.create_schedule(&new, &ctx).await?;
                Ok(scheduled(&self.directory, &s, now))
            }
            ScheduleCommand::List => {
                let all: Vec<_> = repo
                    .list_schedules()
                    .await?
                    .into_iter()
                    .filter(|s| actor.can_see(&s.workspace))
                    .collect();
                if all.is_empty() {
                    return Ok(Reply::info(
                        "No schedules yet. Create one: /schedule dexter \"summarise last week's sales\" every monday 09:00 Europe/Berlin",
                    ));
                }
                let mut t = format!("Schedules ({}):\n", all.len());
                for s in &all {
                    let next = match (s.paused, s.next_run_at) {
                        (true, _) => "paused".to_owned(),
                        (false, Some(n)) => local_time(n, s.cadence.timezone()),
                        (false, None) => "never again".to_owned(),
                    };
                    let _ = writeln!(
                        t,
                        "  {:<4} {:<7} {:<14} next: {:<26} {} ({}){}\n       {}",
                        s.id.0,
                        s.assignment.agent,
                        s.workspace,
                        next,
                        s.description,
                        s.cadence.timezone().name(),
                        s.name
                            .as_ref()
                            .map(|n| format!(" [config: {n}]"))
                            .unwrap_or_default(),
                        one_line(&s.task, 70)
                    );
                }
                t.push_str(
                    "Pause, resume, delete or run one: /schedule pause|resume|delete|run <n>.",
                );
                Ok(Reply::info(t))
            }
            ScheduleCommand::Pause(id) => {
                let s = match changeable(repo.as_ref(), actor, id).await? {
                    Ok(s) => s,
                    Err(refusal) => return Ok(refusal),
                };
                if s.paused {
                    return Ok(Reply::info(format!("Schedule {id} is already paused.")));
                }
                repo.set_schedule_paused(id, true, None, now).await?;
                Ok(Reply::success(format!(
                    "Paused schedule {id} ({}: {}). Resume it with /schedule resume {id}.",
                    s.assignment.agent,
                    one_line(&s.task, 60)
                )))
            }
            ScheduleCommand::Resume(id) => {
                let s = match changeable(repo.as_ref(), actor, id).await? {
                    Ok(s) => s,
                    Err(refusal) => return Ok(refusal),
                };
                if !s.paused {
                    return Ok(Reply::info(format!("Schedule {id} is not paused.")));
                }
                let next = s.cadence.next_after(now);
                repo.set_schedule_paused(id, false, next, now).await?;
                Ok(Reply::success(format!(
                    "Resumed schedule {id}; next run {}.",
                    next.map_or_else(
                        || "never".to_owned(),
                        |n| local_time(n, s.cadence.timezone())
                    )
                )))
            }
            ScheduleCommand::Delete(id) => {
                let s = match changeable(repo.as_ref(), actor, id).await? {
                    Ok(s) => s,
                    Err(refusal) => return Ok(refusal),
                };
                repo.delete_schedule(id).await?;
                let note = if s.name.is_some() {
                    " It is defined in the config file: remove it there too, or it comes back at the next start."
                } else {
                    ""
                };
                Ok(Reply::success(format!(
                    "Deleted schedule {id} ({}: {}).{note}",
                    s.assignment.agent,
                    one_line(&s.task, 60)
                )))
            }
            ScheduleCommand::RunNow(id) => {
                let s = match changeable(repo.as_ref(), actor, id).await? {
                    Ok(s) => s,
                    Err(refusal) => return Ok(refusal),
                };
                let (run, thread) =
                    prepare_run(&self.directory, &s, now, now, RunTrigger::Manual, 1);
                let ran = {
                    let (id, workspace, agent, reason) = (
                        id,
                        s.workspace.to_string(),
                        run.agent.clone(),
                        run.reason.clone(),
                    );
                    let next = s.next_run_at.map_or_else(
                        || "paused".to_owned(),
                        |n| local_time(n, s.cadence.timezone()),
                    );
                    move |th: crate::inbox::ThreadId| {
                        Reply::success(format!(
                            "Ran schedule {id} now: posted #{} in {workspace} for {agent} ({reason}). Its regular next run stays {next}.",
                            th.0
                        ))
                        .about(th)
                    }
                };
                let ran = std::sync::Arc::new(ran);
                let render = ran.clone();
                let ctx = ctx.answering(move |c| match c {
                    crate::inbound::Change::RanNow(th) => Some(render(th)),
                    _ => None,
                });
                let th = repo.record_manual_run(&run, &thread, &ctx).await?;
                Ok(ran(th))
            }
        }
    }
}

/// The reply to a schedule just created: what, when, who, and its next three runs.
fn scheduled(
    directory: &crate::config::Directory,
    s: &crate::schedule::Schedule,
    now: crate::time::Timestamp,
) -> crate::reply::Reply {
    use std::fmt::Write as _;
    let mut t = format!(
        "Scheduled {}: {} ({}) in {}: {}\nWhen: {} ({}); missed runs: {}.\nAssigned: {}.\nNext runs: ",
        s.id,
        s.assignment.agent,
        directory
            .agent(&s.assignment.agent)
            .map(|a| a.role.as_str())
            .unwrap_or("agent"),
        s.workspace,
        s.task,
        s.description,
        s.cadence.timezone().name(),
        catch_up_words(s.catch_up),
        s.assignment.reason
    );
    let mut at = now;
    let mut shown = Vec::new();
    for _ in 0..3 {
        match s.cadence.next_after(at) {
            Some(x) => {
                shown.push(local_time(x, s.cadence.timezone()));
                at = x;
            }
            None => break,
        }
    }
    let _ = write!(t, "{}.", shown.join(", "));
    crate::reply::Reply::success(t)
}

fn catch_up_words(c: CatchUp) -> &'static str {
    match c {
        CatchUp::Once => "run once after downtime",
        CatchUp::Skip => "skipped after downtime",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_by_name_role_and_task() {
        let d = Directory::default();
        let lunavo = WorkspaceSlug::parse("lunavo").unwrap();
        let a = assign(&d, Some("DEXTER"), None, "x").unwrap();
        assert_eq!(a.agent, "Dexter");
        assert_eq!(a.reason, "named in the task");
        let a = assign(&d, Some("social media"), Some(&lunavo), "x").unwrap();
        assert_eq!(a.agent, "Soshie");
        assert!(a.reason.contains("social media in lunavo"), "{}", a.reason);
        let a = assign(&d, None, Some(&lunavo), "answer customer support tickets").unwrap();
        assert_eq!(a.agent, "Cassie", "{a:?}");
        let a = assign(&d, None, None, "improve our SEO keywords").unwrap();
        assert_eq!(a.agent, "Seomi", "{a:?}");
        assert!(assign(&d, Some("astronaut"), None, "x").is_err());
        assert!(assign(&d, None, None, "zzz qqq").is_err());
    }
}
