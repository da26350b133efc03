//! Agents in the binary: their settings (`[llm]`, `[budgets]`, `[agent_runs]` and the run
//! keys of `[agents.NAME]`) and the [`Runner`] built on the store, with core's action rules
//! over each workspace's Shopify Admin API (core's `run_worker` is what `krake serve` runs).
//!
//! With no provider under `[[llm.providers]]` Krake is offline: every non-model command works
//! and `ask` answers from the knowledge base alone.

use crate::settings::{AgentEntry, FileConfig};
use anyhow::{Context, bail};
use krake_commerce::shopify_admin::ShopifyAdmin;
use krake_core::actions::Actions;
use krake_core::config::Directory;
use krake_core::knowledge::Retriever;
use krake_core::ledger::Budgets;
use krake_core::model::ChatModel;
use krake_core::policy::AgentPolicy;
use krake_core::run::{RunLimits, Runner};
use krake_core::time::{Clock, SystemClock};
use krake_core::workspace::WorkspaceSlug;
use krake_llm::{LlmConfig, OpenAiCompatible};
use krake_store::Store;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

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
        ShopifyAdmin::new(&base, krake_commerce::Secret::new(""))
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

fn policy(name: &str, e: Option<&AgentEntry>) -> anyhow::Result<AgentPolicy> {
    let mut p = AgentPolicy::for_agent(name);
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

/// Core's action rules with each workspace's Shopify Admin API as its shop.
fn actions(
    store: &Store,
    agents: &AgentSettings,
    clock: Arc<dyn Clock>,
    routes: krake_core::delivery::Routes,
) -> Actions {
    let mut actions = Actions::new(Arc::new(store.clone()), clock, routes);
    for (ws, base, token) in &agents.shops {
        if let Ok(shop) = ShopifyAdmin::new(base, token.clone()) {
            actions = actions.with_shop(ws.clone(), Arc::new(shop));
        }
    }
    actions
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
        Arc::new(actions(store, agents, clock.clone(), routes.clone())),
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
