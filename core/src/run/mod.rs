//! Agent runs: the durable record ([`Run`], the [`RunRepo`] port) and the engine
//! ([`Runner`]) that takes a task through retrieval, the model with tools, and the policy.
//!
//! ```text
//! task ─► retrieve (workspace-filtered) ─► prompt ─► model (tools) ─► result + confidence
//!                                                               │
//!                        act (allowed + confident) ◄────────────┼──► approval thread
//!                                                               └──► escalation thread
//! ```
//!
//! A run is a durable job: queued, claimed with a lease, every step recorded. A process that
//! dies mid-run leaves its lease to expire; the next claim resumes the run from its task (it
//! counts as another attempt), and a run interrupted too often is marked failed and escalated.
//! Nothing the model says can call a tool the agent does not have or skip the approval its
//! policy demands: both are checked here, in code.
//!
//! Layout: `repo` (the record and [`RunRepo`]), `executor` ([`ActionExecutor`]), `engine` (the
//! model loop and tool calls), `prompt` (knowledge, memory, prompt), `conclude` (verdicts and
//! the threads a run opens), `delegate` (sub-runs for other agents), `budget`, `follow_up` (decisions and replies), `recovery` (the pass
//! after a crash), `desk` ([`AgentDesk`], what the service asks of the agents) and `tools`
//! (schemas and argument checks).

mod budget;
mod conclude;
mod delegate;
mod desk;
mod engine;
mod executor;
mod follow_up;
mod outside;
mod prompt;
mod recovery;
mod repo;
pub mod settings;
pub mod stream;
mod tools;
mod watch;

pub use desk::AgentDesk;
pub use executor::{ActionExecutor, RecordingExecutor};
pub use recovery::Recovered;
pub use repo::{
    DELEGATION, Delegated, NewRun, Run, RunFilter, RunId, RunOutcome, RunRepo, RunStatus, RunStep,
    VISITOR, VISITOR_TOOLS,
};
pub use tools::tool_specs;
pub use watch::{AgentStatus, Cancel, RunQuery, RunView};

use crate::commerce::CommerceRepo;
use crate::config::Directory;
use crate::delivery::Routes;
use crate::knowledge::Retriever;
use crate::ledger::{Budgets, CostLedger};
use crate::model::ChatModel;
use crate::policy::AgentPolicy;
use crate::ports::{InboxRepo, RepoError};
use crate::time::{Clock, Timestamp};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The name natural-language routing is charged under in the ledger.
pub const ROUTER: &str = "router";

/// Limits of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLimits {
    /// Model calls per run at most.
    pub max_turns: u32,
    /// Malformed answers or failed tool calls fed back before giving up.
    pub max_corrections: u32,
    /// Claims of a run (the first and resumptions after a crash) before it is failed.
    pub max_attempts: i32,
    /// A worker's lease on a run, renewed at every step.
    pub lease: Duration,
    /// Tokens a model may generate per call.
    pub max_output_tokens: u32,
    /// Retrieved passages per run and their token budget.
    pub knowledge_passages: usize,
    /// The token budget of retrieved passages.
    pub knowledge_tokens: usize,
    /// The token budget of the whole prompt; older memory is summarised to stay under it.
    pub prompt_tokens: u64,
    /// How many levels deep agents may delegate (`delegate` tool): 2 lets Penn ask Milli and
    /// Milli ask Vizzy; 0 turns delegation off.
    pub max_delegation_depth: u32,
    /// How long an approval a run opens waits for a decision before it expires (its thread
    /// takes the default timeout route, an escalation, and the run becomes `expired`).
    pub approval_expiry: Duration,
}

impl Default for RunLimits {
    fn default() -> Self {
        Self {
            max_turns: 8,
            max_corrections: 3,
            max_attempts: 2,
            lease: Duration::from_secs(120),
            max_output_tokens: 1024,
            knowledge_passages: 6,
            knowledge_tokens: 1500,
            prompt_tokens: 6000,
            max_delegation_depth: 2,
            approval_expiry: Duration::from_secs(72 * 3600),
        }
    }
}

/// The agent run engine.
#[derive(Clone)]
pub struct Runner {
    runs: Arc<dyn RunRepo>,
    inbox: Arc<dyn InboxRepo>,
    ledger: Arc<dyn CostLedger>,
    model: Option<Arc<dyn ChatModel>>,
    retriever: Arc<dyn Retriever>,
    executor: Arc<dyn ActionExecutor>,
    commerce: Option<Arc<dyn CommerceRepo>>,
    kpis: Option<crate::kpi::KpiReader>,
    folders: Option<Arc<dyn crate::folder::FolderRepo>>,
    tool_servers: Option<Arc<dyn crate::tool_servers::ToolServers>>,
    clock: Arc<dyn Clock>,
    directory: Arc<Directory>,
    routes: Arc<Routes>,
    policies: Arc<BTreeMap<String, AgentPolicy>>,
    budgets: Arc<Budgets>,
    limits: RunLimits,
    wake: Arc<tokio::sync::Notify>,
    /// Where answers stream live, by front (`telegram`, `discord`, `web`).
    stream_senders: crate::delivery::LiveSenders,
    /// The outbox, for the last word of a streamed answer whose run was cancelled.
    outbox: Option<Arc<dyn crate::ports::OutboxRepo>>,
    /// The answers streaming now in this process, by run.
    streams: Arc<std::sync::Mutex<BTreeMap<RunId, stream::AnswerStream>>>,
}

impl Runner {
    /// A runner over its ports. Without a model it runs nothing: `ask` answers offline.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        runs: Arc<dyn RunRepo>,
        inbox: Arc<dyn InboxRepo>,
        ledger: Arc<dyn CostLedger>,
        model: Option<Arc<dyn ChatModel>>,
        retriever: Arc<dyn Retriever>,
        executor: Arc<dyn ActionExecutor>,
        clock: Arc<dyn Clock>,
        directory: Directory,
    ) -> Self {
        Self {
            runs,
            inbox,
            ledger,
            model,
            retriever,
            executor,
            commerce: None,
            kpis: None,
            folders: None,
            tool_servers: None,
            clock,
            directory: Arc::new(directory),
            routes: Arc::new(Routes::new()),
            policies: Arc::new(BTreeMap::new()),
            budgets: Arc::new(Budgets::default()),
            limits: RunLimits::default(),
            wake: Arc::new(tokio::sync::Notify::new()),
            stream_senders: crate::delivery::LiveSenders::new(),
            outbox: None,
            streams: Arc::new(std::sync::Mutex::new(BTreeMap::new())),
        }
    }

    /// Streams answers live through the fronts' senders (added as each front starts) to
    /// where each task was asked; `outbox` takes the last word of a stream whose run was
    /// cancelled. Without this, answers still reach where they were asked, whole, through
    /// the outbox.
    pub fn with_streaming(
        mut self,
        senders: crate::delivery::LiveSenders,
        outbox: Arc<dyn crate::ports::OutboxRepo>,
    ) -> Self {
        self.stream_senders = senders;
        self.outbox = Some(outbox);
        self
    }

    /// Posts new threads to `routes`.
    pub fn with_routes(mut self, routes: Routes) -> Self {
        self.routes = Arc::new(routes);
        self
    }

    /// Per-agent policies (lowercase names); agents not listed get the default policy.
    pub fn with_policies(mut self, policies: BTreeMap<String, AgentPolicy>) -> Self {
        self.policies = Arc::new(
            policies
                .into_iter()
                .map(|(k, v)| (k.to_lowercase(), v))
                .collect(),
        );
        self
    }

    /// Monthly budgets.
    pub fn with_budgets(mut self, budgets: Budgets) -> Self {
        self.budgets = Arc::new(budgets);
        self
    }

    /// Run limits.
    pub fn with_limits(mut self, limits: RunLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Offers `get_kpis` (to agents allowed it) from this commerce store.
    pub fn with_commerce(mut self, commerce: Arc<dyn CommerceRepo>) -> Self {
        self.commerce = Some(commerce);
        self
    }

    /// Makes `get_kpis` answer with every KPI of the run's workspace (and the shop's print
    /// orders), not only the commerce figures.
    pub fn with_kpis(mut self, kpis: crate::kpi::KpiReader) -> Self {
        self.kpis = Some(kpis);
        self
    }

    /// Offers `add_folder_entry` (to agents allowed it) on this folder store: an agent adds
    /// rows to its own folders, checked against the columns like typed input.
    pub fn with_folders(mut self, folders: Arc<dyn crate::folder::FolderRepo>) -> Self {
        self.folders = Some(folders);
        self
    }

    /// Offers the outside (MCP) tools of `servers` to the agents whose `tools` grant them,
    /// each call under its tool's policy (act, approval, deny).
    pub fn with_tool_servers(mut self, servers: Arc<dyn crate::tool_servers::ToolServers>) -> Self {
        self.tool_servers = Some(servers);
        self
    }

    /// Whether a model is configured (otherwise `ask` answers offline).
    pub fn has_model(&self) -> bool {
        self.model.is_some()
    }

    /// The budgets in force.
    pub fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    /// The run limits.
    pub fn limits(&self) -> &RunLimits {
        &self.limits
    }

    /// Claims up to `limit` runs for `owner` (queued, or abandoned by a dead worker).
    pub async fn claim(&self, owner: &str, limit: u32) -> Result<Vec<Run>, RepoError> {
        self.runs
            .claim_runs(owner, self.clock.now(), self.limits.lease, limit)
            .await
    }

    /// The ledger.
    pub fn ledger(&self) -> &Arc<dyn CostLedger> {
        &self.ledger
    }

    /// The run store.
    pub fn runs(&self) -> &Arc<dyn RunRepo> {
        &self.runs
    }

    /// Completes when a run was queued since the last wait (for worker loops).
    pub async fn queued(&self) {
        self.wake.notified().await;
    }

    /// The policy of an agent.
    pub fn policy(&self, agent: &str) -> AgentPolicy {
        self.policies
            .get(&agent.to_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    /// A workspace's name (`Lunavo`), or its slug when it is not configured.
    pub(crate) fn workspace_name(&self, w: &crate::workspace::WorkspaceSlug) -> String {
        self.directory
            .workspace(w)
            .map_or_else(|| w.to_string(), |x| x.name.clone())
    }

    /// Queues a run and wakes the workers.
    pub async fn start(&self, new: &NewRun) -> Result<Run, RepoError> {
        // The roster's spelling (`Penn`), so the ledger and threads group one agent once.
        let mut new = new.clone();
        if let Some(a) = self.directory.agent(&new.agent) {
            new.agent = a.name.to_string();
        }
        let run = self.runs.create_run(&new, self.clock.now()).await?;
        tracing::info!(run = run.id.0, agent = %run.agent, workspace = %run.workspace, trigger = %run.trigger, "run queued");
        self.wake.notify_one();
        Ok(run)
    }

    /// Queues runs for the threads event rules opened for an agent since `since` (see
    /// [`RunRepo::queue_from_threads`]); returns how many. Nothing without a model.
    pub async fn queue_event_tasks(&self, since: Timestamp) -> Result<usize, RepoError> {
        if self.model.is_none() {
            return Ok(0);
        }
        let ids = self
            .runs
            .queue_from_threads("inbound:", since, self.clock.now(), 100)
            .await?;
        if !ids.is_empty() {
            tracing::info!(runs = ids.len(), "runs queued for event rules");
            self.wake.notify_one();
        }
        Ok(ids.len())
    }

    /// Claims up to `limit` runs for `owner` and executes them concurrently; returns how
    /// many it took. Needs a tokio runtime.
    pub async fn work_once(&self, owner: &str, limit: u32) -> Result<usize, RepoError> {
        let claimed = self
            .runs
            .claim_runs(owner, self.clock.now(), self.limits.lease, limit)
            .await?;
        let n = claimed.len();
        let mut set = tokio::task::JoinSet::new();
        for run in claimed {
            let me = self.clone();
            set.spawn(async move {
                let id = run.id;
                if let Err(e) = me.execute(run).await {
                    // The lease expires and another claim resumes it.
                    tracing::warn!(run = id.0, error = %e, "run interrupted by a storage error; it will resume");
                }
            });
        }
        while set.join_next().await.is_some() {}
        Ok(n)
    }
}
