//! Agents in the binary: their settings (`[llm]`, `[budgets]`, `[agent_runs]` and the run
//! keys of `[agents.NAME]`), the [`Runner`] built on the store, and the worker loop that
//! `krake serve` runs.
//!
//! With no provider under `[[llm.providers]]` Krake is offline: every non-model command works
//! and `ask` answers from the knowledge base alone.

use crate::settings::{AgentEntry, FileConfig};
use anyhow::{Context, bail};
use async_trait::async_trait;
use krake_core::actor::Actor;
use krake_core::config::Directory;
use krake_core::inbox::ProposedAction;
use krake_core::knowledge::Retriever;
use krake_core::ledger::Budgets;
use krake_core::model::ChatModel;
use krake_core::outbox::{Destination, NewOutbound, OutboxPayload};
use krake_core::policy::AgentPolicy;
use krake_core::ports::{InboxRepo, OutboxRepo, WriteCtx};
use krake_core::reply::Reply;
use krake_core::run::{ActionExecutor, NewRun, RunLimits, RunStatus, Runner};
use krake_core::time::{Clock, SystemClock};
use krake_core::workspace::WorkspaceSlug;
use krake_llm::{LlmConfig, OpenAiCompatible};
use krake_store::Store;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// `[budgets]`: monthly model budgets in US dollars.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetsFile {
    /// Workspace slug → dollars per month.
    #[serde(default)]
    pub workspaces: BTreeMap<String, f64>,
    /// Agent name → dollars per month (across workspaces).
    #[serde(default)]
    pub agents: BTreeMap<String, f64>,
}

/// `[agent_runs]`: limits of agent runs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRunsFile {
    /// Model calls per run at most (default 8).
    pub max_turns: Option<u32>,
    /// Corrections fed back before a run fails (default 3).
    pub max_corrections: Option<u32>,
    /// Seconds a worker's lease on a run lasts, renewed at every step (default 120); after a
    /// crash the run resumes this long later.
    pub lease_secs: Option<u64>,
    /// Claims of a run before it is failed and escalated (default 2).
    pub max_attempts: Option<i32>,
    /// Prompt token budget; older thread memory is cut to stay under it (default 6000).
    pub prompt_tokens: Option<u64>,
    /// Tokens a model may write per call (default 1024).
    pub max_output_tokens: Option<u32>,
    /// Runs one process works on at once (default 64).
    pub concurrency: Option<u32>,
    /// Hours an approval opened by a run waits for a decision before it expires and the run
    /// is marked `expired` (default 72).
    pub approval_expiry_hours: Option<u64>,
}

/// The effective agent settings.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// The model access; `None` is offline mode.
    pub model: Option<Arc<OpenAiCompatible>>,
    /// Provider names, for `krake config`.
    pub providers: Vec<String>,
    /// Per-agent policies (lowercase names).
    pub policies: BTreeMap<String, AgentPolicy>,
    /// Monthly budgets.
    pub budgets: Budgets,
    /// Run limits.
    pub limits: RunLimits,
    /// Runs worked on at once per process.
    pub concurrency: u32,
    /// Shopify Admin API access per workspace: (workspace, base URL, access token).
    pub shops: Vec<(WorkspaceSlug, String, krake_commerce::Secret)>,
}

/// Shopify Admin API access per workspace: the token from `KRAKE_SHOPIFY_ADMIN_TOKEN_<WS>` or
/// `[shopify.admin_tokens]`, the shop from `[shopify.shops]` (`https://DOMAIN`), or every
/// workspace's base URL from `KRAKE_SHOPIFY_ADMIN_URL` (a proxy, or a test's fake).
fn shops(
    file: &FileConfig,
    directory: &Directory,
) -> anyhow::Result<Vec<(WorkspaceSlug, String, krake_commerce::Secret)>> {
    for ws in file.shopify.admin_tokens.keys() {
        let known = WorkspaceSlug::parse(ws)
            .ok()
            .is_some_and(|s| directory.workspace(&s).is_some());
        if !known {
            bail!("[shopify.admin_tokens]: there is no workspace `{ws}`");
        }
    }
    let url_override = std::env::var("KRAKE_SHOPIFY_ADMIN_URL")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let mut out = Vec::new();
    for w in directory.workspaces() {
        let env = format!(
            "KRAKE_SHOPIFY_ADMIN_TOKEN_{}",
            w.slug.as_str().to_uppercase().replace('-', "_")
        );
        let token = std::env::var(&env)
            .ok()
            .or_else(|| file.shopify.admin_tokens.get(w.slug.as_str()).cloned())
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        let Some(token) = token else { continue };
        let shop = file
            .shopify
            .shops
            .iter()
            .find(|(_, ws)| ws.as_str() == w.slug.as_str())
            .map(|(domain, _)| format!("https://{}", domain.to_ascii_lowercase()));
        let Some(base) = url_override.clone().or(shop) else {
            bail!(
                "a Shopify Admin token is set for {} but no shop: add its domain under [shopify.shops] (\"SHOP.myshopify.com\" = \"{}\")",
                w.slug,
                w.slug
            );
        };
        krake_commerce::shopify_admin::ShopifyAdmin::new(&base, krake_commerce::Secret::new(""))
            .map_err(|e| anyhow::anyhow!("Shopify Admin API of {}: {e}", w.slug))?;
        out.push((w.slug.clone(), base, krake_commerce::Secret::new(token)));
    }
    Ok(out)
}

fn micros(dollars: f64, what: &str) -> anyhow::Result<i64> {
    if !(dollars.is_finite() && dollars >= 0.0) {
        bail!("{what}: a budget is a number of US dollars, 0 or more (got {dollars})");
    }
    Ok((dollars * 1_000_000.0).round() as i64)
}

/// The default policy of an agent, by role: analysts read KPIs, nobody acts on money or
/// customers without approval.
pub fn default_policy(agent: &str) -> AgentPolicy {
    let mut p = AgentPolicy::default();
    if agent.eq_ignore_ascii_case("gigi") || agent.eq_ignore_ascii_case("vizzy") {
        // Coaching and errands: a message to the owner needs no approval.
        p.needs_approval.retain(|a| a != "send_message");
    }
    p
}

fn policy(name: &str, e: Option<&AgentEntry>) -> anyhow::Result<AgentPolicy> {
    let mut p = default_policy(name);
    if let Some(e) = e {
        if let Some(m) = &e.model {
            p.model = Some(m.clone());
        }
        if let Some(t) = e.temperature {
            p.temperature = t;
        }
        if let Some(t) = &e.tools {
            p.tools = t.clone();
        }
        if let Some(n) = &e.needs_approval {
            p.needs_approval = n.clone();
        }
        if let Some(a) = e.act_threshold {
            p.act_threshold = a;
        }
        if let Some(s) = e.escalate_threshold {
            p.escalate_threshold = s;
        }
    }
    p.validate()
        .with_context(|| format!("[agents.{}]", name.to_lowercase()))?;
    Ok(p)
}

/// Reads and checks the agent settings (API keys from the environment).
pub fn settings(file: &FileConfig, directory: &Directory) -> anyhow::Result<AgentSettings> {
    let model = OpenAiCompatible::from_config(&file.llm).context("[llm]")?;
    let mut policies = BTreeMap::new();
    for a in directory.agents() {
        let entry = file
            .agents
            .iter()
            .find(|(k, _)| a.name.matches(k))
            .map(|(_, e)| e);
        policies.insert(
            a.name.as_str().to_lowercase(),
            policy(a.name.as_str(), entry)?,
        );
    }
    let mut budgets = Budgets::default();
    for (ws, d) in &file.budgets.workspaces {
        let slug = WorkspaceSlug::parse(ws)
            .ok()
            .filter(|s| directory.workspace(s).is_some())
            .with_context(|| format!("[budgets.workspaces]: there is no workspace `{ws}`"))?;
        budgets
            .workspaces
            .insert(slug.to_string(), micros(*d, "[budgets.workspaces]")?);
    }
    for (agent, d) in &file.budgets.agents {
        let known = directory.agent(agent).is_some() || agent.eq_ignore_ascii_case("router");
        if !known {
            bail!("[budgets.agents]: there is no agent `{agent}`");
        }
        budgets
            .agents
            .insert(agent.to_lowercase(), micros(*d, "[budgets.agents]")?);
    }
    let r = &file.agent_runs;
    let d = RunLimits::default();
    let limits = RunLimits {
        max_turns: r.max_turns.unwrap_or(d.max_turns).max(1),
        max_corrections: r.max_corrections.unwrap_or(d.max_corrections),
        max_attempts: r.max_attempts.unwrap_or(d.max_attempts).max(1),
        lease: r
            .lease_secs
            .map_or(d.lease, |s| Duration::from_secs(s.max(1))),
        max_output_tokens: r.max_output_tokens.unwrap_or(d.max_output_tokens).max(16),
        prompt_tokens: r.prompt_tokens.unwrap_or(d.prompt_tokens).max(500),
        approval_expiry: r.approval_expiry_hours.map_or(d.approval_expiry, |h| {
            Duration::from_secs(h.clamp(1, 24 * 365) * 3600)
        }),
        ..d
    };
    Ok(AgentSettings {
        model: model.map(Arc::new),
        providers: file.llm.providers.iter().map(|p| p.name.clone()).collect(),
        policies,
        budgets,
        limits,
        concurrency: r.concurrency.unwrap_or(64).clamp(1, 1000),
        shops: shops(file, directory)?,
    })
}

/// Carries out approved (or confidently proposed) actions: refunds and price changes through
/// the shop's Admin API; messages and posts through the outbox to the workspace's chat
/// destinations (Krake has no e-mail or social-network adapter: a post is delivered to the
/// team labelled as a post to publish by hand). The runner calls it once per action.
struct Executor {
    shops: BTreeMap<WorkspaceSlug, krake_commerce::shopify_admin::ShopifyAdmin>,
    outbox: Arc<dyn OutboxRepo>,
    clock: Arc<dyn Clock>,
    routes: krake_core::delivery::Routes,
}

impl Executor {
    fn shop(
        &self,
        workspace: &WorkspaceSlug,
    ) -> Result<&krake_commerce::shopify_admin::ShopifyAdmin, String> {
        self.shops.get(workspace).ok_or_else(|| {
            format!(
                "{workspace} has no Shopify Admin API access: set KRAKE_SHOPIFY_ADMIN_TOKEN_{} (or [shopify.admin_tokens]) and its shop under [shopify.shops]",
                workspace.as_str().to_uppercase().replace('-', "_")
            )
        })
    }

    /// Enqueues `text` to `destinations`, once per action and destination.
    async fn deliver(
        &self,
        destinations: &[Destination],
        text: String,
        key: &str,
    ) -> Result<usize, String> {
        let now = self.clock.now();
        for d in destinations {
            let msg = NewOutbound {
                destination: d.clone(),
                payload: OutboxPayload::Send {
                    reply: Reply::info(text.clone()),
                },
            };
            self.outbox
                .enqueue_once(&msg, &format!("action:{key}:{}", d.as_str()), now)
                .await
                .map_err(|e| format!("cannot queue the message: {e}"))?;
        }
        Ok(destinations.len())
    }

    /// Where a message `to` goes: a destination of the workspace named exactly, the workspace's
    /// destinations on one front (`telegram`), or all of them.
    fn destinations(
        &self,
        workspace: &WorkspaceSlug,
        to: &str,
    ) -> Result<Vec<Destination>, String> {
        let all = self.routes.for_workspace(workspace);
        if all.is_empty() {
            return Err(format!(
                "{workspace} has no chat destination to deliver to (configure a Telegram chat, Discord channel or the web front for it)"
            ));
        }
        let to = to.trim();
        if let Some(d) = all.iter().find(|d| d.as_str() == to) {
            return Ok(vec![d.clone()]);
        }
        let front: Vec<Destination> = all.iter().filter(|d| d.front() == to).cloned().collect();
        if !front.is_empty() {
            return Ok(front);
        }
        Ok(all.to_vec())
    }
}

#[async_trait]
impl ActionExecutor for Executor {
    async fn execute(
        &self,
        workspace: &WorkspaceSlug,
        action: &ProposedAction,
        key: &str,
    ) -> Result<String, String> {
        use krake_commerce::shopify_admin::{decimal, variant_id};
        match action {
            ProposedAction::Refund {
                order_id,
                amount_minor,
                currency,
            } => {
                let id = self
                    .shop(workspace)?
                    .refund(
                        order_id,
                        *amount_minor,
                        currency,
                        &format!("Approved in Krake ({key})"),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(format!(
                    "refunded {} {currency} on order {order_id} in Shopify (refund {id})",
                    decimal(*amount_minor, currency)
                ))
            }
            ProposedAction::ChangePrice {
                product,
                price_minor,
                currency,
            } => {
                let shop = self.shop(workspace)?;
                let variant = variant_id(product).ok_or_else(|| {
                    format!(
                        "`{product}` is not a Shopify variant id (digits, `variant:ID` or `gid://shopify/ProductVariant/ID`): nothing changed"
                    )
                })?;
                let now = shop
                    .set_price(variant, *price_minor, currency)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(format!(
                    "price of variant {variant} set to {now} {currency} in Shopify"
                ))
            }
            ProposedAction::SendMessage { to, text } => {
                let dests = self.destinations(workspace, to)?;
                let n = self
                    .deliver(
                        &dests,
                        format!("Message for {to} (approved in Krake):\n{text}"),
                        key,
                    )
                    .await?;
                Ok(format!("message for {to} sent to {n} chat destination(s)"))
            }
            ProposedAction::PublishPost { channel, text } => {
                let dests = self.destinations(workspace, "")?;
                let n = self
                    .deliver(
                        &dests,
                        format!(
                            "Post to publish on {channel} (approved in Krake; Krake cannot post to {channel} itself, so please copy it there):\n{text}"
                        ),
                        key,
                    )
                    .await?;
                Ok(format!(
                    "post for {channel} delivered to {n} chat destination(s) for a person to publish (Krake has no {channel} API)"
                ))
            }
        }
    }
}

/// The run engine on the store, for this configuration.
pub fn runner(
    store: &Store,
    agents: &AgentSettings,
    directory: &Directory,
    routes: krake_core::delivery::Routes,
    retriever: Arc<dyn Retriever>,
) -> Runner {
    let s = Arc::new(store.clone());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let model = agents
        .model
        .clone()
        .map(|m| -> Arc<dyn ChatModel> { Arc::new(crate::telemetry::MeteredModel::new(m)) });
    Runner::new(
        s.clone(),
        s.clone(),
        s.clone(),
        model,
        retriever,
        Arc::new(Executor {
            shops: agents
                .shops
                .iter()
                .filter_map(|(ws, base, token)| {
                    krake_commerce::shopify_admin::ShopifyAdmin::new(base, token.clone())
                        .ok()
                        .map(|c| (ws.clone(), c))
                })
                .collect(),
            outbox: s.clone(),
            clock: clock.clone(),
            routes: routes.clone(),
        }),
        clock,
        directory.clone(),
    )
    .with_routes(routes)
    .with_policies(agents.policies.clone())
    .with_budgets(agents.budgets.clone())
    .with_limits(agents.limits.clone())
    .with_commerce(s.clone())
    .with_folders(s)
}

/// Works on queued runs until `stop`, up to `concurrency` at once: a free slot claims the next
/// run right away (a slow run never holds back the others). It looks for work when a run is
/// queued in this process, when a run ends, and every second (another process, `krake chat`,
/// may have queued one; a crashed worker's run comes back when its lease ends).
pub fn spawn_worker(
    runner: Runner,
    concurrency: u32,
    memory: Option<crate::rag::RunMemory>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if !runner.has_model() {
            return;
        }
        let owner = format!("agents-{}", std::process::id());
        // Event-rule threads from shortly before this start on become runs (a crash between
        // an event and its run is covered; older threads stay for people).
        let since =
            krake_core::time::Timestamp::from_millis(SystemClock.now().as_millis() - 3_600_000);
        let slots = Arc::new(tokio::sync::Semaphore::new(concurrency as usize));
        let ended = Arc::new(tokio::sync::Notify::new());
        let mut running = tokio::task::JoinSet::new();
        // Runs an approval finished (outside this worker) are remembered by a pass over the
        // recent ones now and then.
        let mut last_memory_pass: Option<std::time::Instant> = None;
        loop {
            while running.try_join_next().is_some() {}
            if let Some(m) = &memory
                && last_memory_pass.is_none_or(|t| t.elapsed() >= Duration::from_secs(300))
            {
                last_memory_pass = Some(std::time::Instant::now());
                let (m, runs) = (m.clone(), runner.runs().clone());
                running.spawn(async move {
                    if let Err(e) = m.remember_recent(runs.as_ref(), 200).await {
                        tracing::warn!(error = %format!("{e:#}"), "remembering agent results failed; will retry");
                    }
                });
            }
            if let Err(e) = runner.queue_event_tasks(since).await {
                tracing::warn!(error = %e, "queueing runs for events failed; will retry");
            }
            let free = u32::try_from(slots.available_permits()).unwrap_or(0);
            let mut wait = Duration::from_secs(1);
            if free > 0 {
                match runner.claim(&owner, free).await {
                    Ok(runs) => {
                        if !runs.is_empty() {
                            wait = Duration::ZERO;
                        }
                        for run in runs {
                            let Ok(permit) = slots.clone().try_acquire_owned() else {
                                break;
                            };
                            let (r, done, m) = (runner.clone(), ended.clone(), memory.clone());
                            running.spawn(async move {
                                let (id, agent) = (run.id, run.agent.clone());
                                match r.execute(run).await {
                                    Ok(status) => {
                                        crate::telemetry::agent_run(&agent, status.as_str());
                                        if let Some(m) = m
                                            && status == RunStatus::Done
                                        {
                                            remember(&r, &m, id).await;
                                        }
                                    }
                                    Err(e) => {
                                        tracing::warn!(run = id.0, error = %e, "run interrupted by a storage error; it resumes after its lease");
                                    }
                                }
                                drop(permit);
                                done.notify_one();
                            });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming agent runs failed; will retry");
                        wait = Duration::from_secs(2);
                    }
                }
            }
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = runner.queued() => {}
                _ = ended.notified() => {}
                _ = stop.changed() => break,
            }
        }
        // Runs in flight finish their current step's work; unfinished ones resume elsewhere.
        running.abort_all();
        while running.join_next().await.is_some() {}
    })
}

/// The recovery pass of executed actions, at start and every `every` until `stop`: actions
/// left `executing` past the run lease (a crash while calling out) are failed and escalated,
/// never tried again; decisions taken but never handled (a crash right after approving) are
/// handled. Runs with or without a model (a run may have been left by an earlier start).
pub fn spawn_recovery(
    runner: Runner,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match runner.recover().await {
                Ok(r) if r != krake_core::run::Recovered::default() => {
                    tracing::warn!(
                        interrupted = r.interrupted.len(),
                        decided = r.decided.len(),
                        expired = r.expired.len(),
                        "recovered actions"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the recovery pass of actions failed; will retry")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => break,
            }
        }
    })
}

/// Ingests a finished run's result as long-term memory (logged, never fatal: the run is done).
async fn remember(runner: &Runner, memory: &crate::rag::RunMemory, id: krake_core::run::RunId) {
    let run = match runner.runs().run(id).await {
        Ok(Some(run)) => run,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(run = id.0, error = %e, "cannot read the finished run to remember it");
            return;
        }
    };
    if let Err(e) = memory.remember(std::slice::from_ref(&run)).await {
        tracing::warn!(run = id.0, error = %format!("{e:#}"), "remembering the run's result failed; a later pass retries");
    }
}

/// Turns the occurrences a coordinator tick ran into agent runs: the schedule's task for the
/// assigned agent, and a reply on the occurrence's question thread naming the run (which
/// answers it). The occurrence's thread is written first, in the claim's transaction, so a
/// crash between the two leaves the task in the inbox for a person, never lost.
#[derive(Clone)]
pub struct ScheduleHandOff {
    runner: Runner,
    schedules: Arc<dyn krake_core::schedule::ScheduleRepo>,
    inbox: Arc<dyn InboxRepo>,
}

impl ScheduleHandOff {
    /// The hand-off, when a model is configured.
    pub fn new(store: &Store, runner: &Runner) -> Option<Self> {
        runner.has_model().then(|| Self {
            runner: runner.clone(),
            schedules: Arc::new(store.clone()),
            inbox: Arc::new(store.clone()),
        })
    }

    /// Starts one run per occurrence in the report.
    pub async fn start_runs(&self, report: &krake_core::coordinator::TickReport) {
        for (id, _, thread) in &report.ran {
            if let Err(e) = self.start_one(*id, *thread).await {
                tracing::warn!(schedule = id.0, thread = thread.0, error = %e, "could not start the agent run of a schedule; the task stays in the inbox");
            }
        }
    }

    async fn start_one(
        &self,
        id: krake_core::schedule::ScheduleId,
        thread: krake_core::inbox::ThreadId,
    ) -> anyhow::Result<()> {
        let Some(s) = self.schedules.get_schedule(id).await? else {
            return Ok(());
        };
        let th = self.inbox.get(thread).await?;
        let agent = th
            .as_ref()
            .and_then(|t| t.agent.clone())
            .unwrap_or_else(|| s.assignment.agent.clone());
        let run = self
            .runner
            .start(&NewRun {
                workspace: s.workspace.clone(),
                agent: agent.clone(),
                task: s.task.clone(),
                trigger: "schedule".into(),
                requested_by: "krake".into(),
                parent: None,
                feedback: None,
            })
            .await
            .context("cannot queue the agent run")?;
        let ctx = WriteCtx {
            actor: Actor::system(),
            inbound: None,
            now: SystemClock.now(),
        };
        self.inbox
            .reply(
                thread,
                &format!(
                    "{agent} is on it ({}); the result comes as a new thread.",
                    run.id
                ),
                &ctx,
            )
            .await?;
        Ok(())
    }
}

/// The `[llm]`, `[budgets]` and run settings for `krake config` (keys never printed).
pub fn redacted(a: &AgentSettings, llm: &LlmConfig) -> String {
    let mut out = String::from("\n[llm]\n");
    out.push_str(&format!(
        "timeout_secs = {}\nmax_retries = {}\n",
        llm.timeout_secs, llm.max_retries
    ));
    for p in &llm.providers {
        out.push_str(&format!(
            "\n[[llm.providers]]\nname = {:?}\nbase_url = {:?}\nmodels = {:?}\napi_key_env = {:?}\n",
            p.name,
            p.base_url,
            p.models,
            p.api_key_env.as_deref().unwrap_or("")
        ));
    }
    if a.model.is_none() {
        out.push_str("# no provider: offline mode\n");
    }
    out.push_str("\n[budgets.workspaces]\n");
    for (w, m) in &a.budgets.workspaces {
        out.push_str(&format!("{w} = {}\n", *m as f64 / 1e6));
    }
    out.push_str("\n[budgets.agents]\n");
    for (w, m) in &a.budgets.agents {
        out.push_str(&format!("{w} = {}\n", *m as f64 / 1e6));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml_text: &str) -> anyhow::Result<AgentSettings> {
        let file: FileConfig = toml::from_str(toml_text)?;
        settings(&file, &Directory::default())
    }

    #[test]
    fn agents_budgets_and_providers_from_the_file() {
        let a = load(
            r#"
[[llm.providers]]
name = "local"
base_url = "http://127.0.0.1:11434/v1"
models = ["llama3.1"]
input_price_per_million = 0.5

[budgets.workspaces]
lunavo = 20.0
[budgets.agents]
Penn = 5.5
router = 1

[agents.penn]
prompt = "You are Penn."
model = "llama3.1"
temperature = 0.9
tools = ["reply", "request_approval"]
needs_approval = ["publish_post"]
act_threshold = 0.9
escalate_threshold = 0.5
"#,
        )
        .unwrap();
        assert!(a.model.is_some());
        assert_eq!(a.budgets.workspaces["lunavo"], 20_000_000);
        assert_eq!(a.budgets.agents["penn"], 5_500_000);
        let p = &a.policies["penn"];
        assert_eq!(p.tools, ["reply", "request_approval"]);
        assert_eq!(p.needs_approval, ["publish_post"]);
        assert_eq!(p.act_threshold, 0.9);
        assert_eq!(p.model.as_deref(), Some("llama3.1"));
        assert_eq!(a.policies.len(), 12, "every agent has a policy");
        assert!(
            a.policies["cassie"]
                .needs_approval
                .contains(&"refund".to_owned())
        );
    }

    #[test]
    fn no_provider_is_offline() {
        let a = load("").unwrap();
        assert!(a.model.is_none());
    }

    #[test]
    fn bad_agent_settings_are_refused_with_the_reason() {
        let e = format!(
            "{:#}",
            load("[agents.penn]\ntools = [\"shell\"]\n").unwrap_err()
        );
        assert!(e.contains("[agents.penn]") && e.contains("shell"), "{e}");
        let e = format!(
            "{:#}",
            load("[agents.penn]\nact_threshold = 0.2\nescalate_threshold = 0.5\n").unwrap_err()
        );
        assert!(e.contains("thresholds"), "{e}");
        let e = format!(
            "{:#}",
            load("[budgets.workspaces]\nnarnia = 3.0\n").unwrap_err()
        );
        assert!(e.contains("narnia"), "{e}");
        let e = format!("{:#}", load("[budgets.agents]\npenn = -1\n").unwrap_err());
        assert!(e.contains("0 or more"), "{e}");
        let e = format!(
            "{:#}",
            load(
                "[[llm.providers]]\nname = \"openai\"\nbase_url = \"https://api.openai.com/v1\"\napi_key_env = \"KRAKE_TEST_SURELY_UNSET_KEY\"\nmodels = [\"gpt-4o-mini\"]\n"
            )
            .unwrap_err()
        );
        assert!(e.contains("KRAKE_TEST_SURELY_UNSET_KEY"), "{e}");
    }
}
