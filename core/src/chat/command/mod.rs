//! The one typed [`Command`] every front speaks, and its parser.
//!
//! The parser takes slash syntax (`/todo lunavo`, `/approve 12`, `/reject 12 too expensive`)
//! and common natural phrasings ("what's open in lunavo?", "approve 12", "archive #7",
//! "ask penn to draft a tagline for the hoodie"). Text it does not understand becomes
//! [`Parsed::NotUnderstood`] with a suggestion; it never panics.
//!
//! Layout: `spec` (the command table), `parser` (slash syntax and verbs), `natural` (natural
//! phrasings).

mod natural;
mod parser;
mod spec;

pub use parser::{CommandParser, MAX_INPUT_CHARS, MAX_THREADS_AT_ONCE};
pub(crate) use parser::{batch, take_ids};
pub use spec::{COMMANDS, CommandSpec, spec};

use crate::agent::AgentName;
use crate::folder::FolderCommand;
use crate::inbox::{ThreadId, ThreadKind, ThreadStatus};
use crate::schedule::ScheduleCommand;
use crate::workspace::WorkspaceSlug;

/// Which statuses a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusFilter {
    /// Open threads (the default).
    #[default]
    Open,
    /// Every status except archived.
    All,
    /// Exactly this status.
    Is(ThreadStatus),
}

/// A listing of the To Do inbox.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListQuery {
    /// Only this workspace.
    pub workspace: Option<WorkspaceSlug>,
    /// Only this kind.
    pub kind: Option<ThreadKind>,
    /// Which statuses.
    pub status: StatusFilter,
}

/// Everything a person can ask Krake, whatever the front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Show help, optionally about one command.
    Help {
        /// The command asked about.
        topic: Option<String>,
    },
    /// List the workspaces.
    Workspaces,
    /// List the agents.
    Agents,
    /// List inbox threads.
    List(ListQuery),
    /// Show one thread with its replies.
    Show(ThreadId),
    /// Reply in a thread.
    Reply {
        /// The thread.
        id: ThreadId,
        /// The reply.
        text: String,
    },
    /// Approve a thread.
    Approve(ThreadId),
    /// Reject a thread.
    Reject {
        /// The thread.
        id: ThreadId,
        /// Why.
        reason: Option<String>,
    },
    /// Archive a thread.
    Archive(ThreadId),
    /// Bring an archived thread back.
    Unarchive(ThreadId),
    /// How long people took to decide or answer threads this month (median, p95).
    Stats {
        /// The workspace; every workspace the person can see when absent.
        workspace: Option<WorkspaceSlug>,
    },
    /// What could not be delivered (owners): list, send again, give up.
    DeadLetters(crate::dead_letters::DeadLetterCommand),
    /// List agents' runs (`/runs lunavo penn running`).
    Runs(crate::run::RunQuery),
    /// Show one run: its task, status, every step and tool call, tokens and cost.
    Run(crate::run::RunId),
    /// Stop a run: no model call and no action after this.
    Cancel {
        /// The run.
        id: crate::run::RunId,
        /// Why (audited with who).
        reason: Option<String>,
    },
    /// The same approval, rejection or archiving for several threads (`approve 13 14 15`):
    /// each is handled on its own and its outcome reported; never one silently dropped.
    Batch(Vec<Command>),
    /// Search a workspace's knowledge base: cited passages, no model.
    Search {
        /// The workspace; the first one the person can see when absent.
        workspace: Option<WorkspaceSlug>,
        /// What to look for.
        text: String,
    },
    /// List what a workspace's knowledge holds: files sent in chat or uploaded.
    Sources {
        /// The workspace; the first one the person can see when absent.
        workspace: Option<WorkspaceSlug>,
    },
    /// Show one passage of a learned file (`/source returns-policy.pdf §3`).
    Source {
        /// The workspace; the first one the person can see when absent.
        workspace: Option<WorkspaceSlug>,
        /// The file name.
        source: String,
        /// The passage, counted from 1.
        position: u32,
    },
    /// Remove a learned file from a workspace's knowledge (member role; audited).
    Forget {
        /// The workspace; the first one the person can see when absent.
        workspace: Option<WorkspaceSlug>,
        /// The file name.
        source: String,
    },
    /// Show a workspace's KPIs: today, the period, the change, the target.
    Kpi {
        /// The workspace; the first one the person can see when absent.
        workspace: Option<WorkspaceSlug>,
    },
    /// The Management overview: every visible workspace's key figures, totals, activity.
    Overview,
    /// Show the month's model costs and budgets, for one workspace or all visible.
    Costs {
        /// The workspace; every workspace the person can see when absent.
        workspace: Option<WorkspaceSlug>,
    },
    /// Link this platform account to a Krake user with a one-time code.
    Link {
        /// The code from `krake user link-code NAME`.
        code: String,
    },
    /// Give an agent a task.
    Ask {
        /// The agent.
        agent: AgentName,
        /// The task.
        text: String,
    },
    /// Create, list, pause, resume, delete or run a schedule.
    Schedule(ScheduleCommand),
    /// Work with agents' folders (tables).
    Folder(FolderCommand),
}

/// What the parser made of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A command.
    Command(Command),
    /// Nothing to do (empty input).
    Empty,
    /// Not understood: why, and what the person may have meant.
    NotUnderstood {
        /// What was wrong, in plain words.
        problem: String,
        /// A command to try instead, if one is close.
        suggestion: Option<String>,
    },
}
