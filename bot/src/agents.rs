//! Agents in the binary: their settings (`[llm]`, `[budgets]`, `[agent_runs]` and the run
//! keys of `[agents.NAME]`) and the [`Runner`] built on the store, with core's action rules
//! over each workspace's Shopify Admin API (core's `run_worker` is what `krake serve` runs).
//!
//! With no provider under `[[llm.providers]]` Krake is offline: every non-model command works
//! and `ask` answers from the knowledge base alone.

use crate::settings::FileConfig;
use anyhow::Context;
use krake_commerce::settings::AdminAccess;
use krake_commerce::shopify_admin::ShopifyAdmin;
use krake_core::actions::Actions;
use krake_core::config::Directory;
use krake_core::knowledge::Retriever;
use krake_core::ledger::Budgets;
use krake_core::model::ChatModel;
use krake_core::policy::AgentPolicy;
use krake_core::run::{RunLimits, Runner};
use krake_core::time::{Clock, SystemClock};
use krake_llm::OpenAiCompatible;
use krake_mcp::tools::McpTools;
use krake_store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The effective agent settings.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// The model access; `None` is offline mode.
    pub model: Option<Arc<OpenAiCompatible>>,
    /// Per-agent policies (lowercase names).
    pub policies: BTreeMap<String, AgentPolicy>,
    /// Monthly budgets.
    pub budgets: Budgets,
    /// Run limits.
    pub limits: RunLimits,
    /// Runs worked on at once per process.
    pub concurrency: u32,
    /// Shopify Admin API access per workspace, for approved refunds and price changes.
    pub shops: Vec<AdminAccess>,
    /// The MCP tool servers of `[[mcp.servers]]` (started on first use), if any.
    pub tool_servers: Option<Arc<McpTools>>,
}

/// Reads and checks the agent settings (API keys from the environment); `shops` is the
/// commerce settings' Admin API access.
pub fn settings(
    file: &FileConfig,
    directory: &Directory,
    shops: Vec<AdminAccess>,
) -> anyhow::Result<AgentSettings> {
    let model = OpenAiCompatible::from_config(&file.llm).context("[llm]")?;
    let (limits, concurrency) = file.agent_runs.resolve();
    let servers = file
        .mcp
        .resolve(|k| std::env::var(k).ok())
        .map_err(|e| anyhow::anyhow!(e))?;
    let policies = krake_core::config::file::policies(directory, &file.agents)?;
    // An agent granted a server's tools by exact name needs that server.
    for (agent, p) in &policies {
        for grant in &p.tools {
            if let Some((server, _)) = grant
                .strip_prefix(krake_core::tool_servers::PREFIX)
                .and_then(|g| g.split_once('/'))
                && !server.contains('*')
                && !servers.iter().any(|s| s.name() == server)
            {
                anyhow::bail!(
                    "[agents.{agent}]: tools names {grant}, but no [[mcp.servers]] is named {server}"
                );
            }
        }
    }
    Ok(AgentSettings {
        model: model.map(Arc::new),
        policies,
        budgets: file.budgets.resolve(directory)?,
        limits,
        concurrency,
        shops,
        tool_servers: (!servers.is_empty()).then(|| McpTools::new(servers)),
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
    for a in &agents.shops {
        if let Ok(shop) = ShopifyAdmin::new(&a.base_url, a.token.clone()) {
            actions = actions.with_shop(a.workspace.clone(), Arc::new(shop));
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
        .map(|m| -> Arc<dyn ChatModel> { Arc::new(krake_metrics::MeteredModel::new(m)) });
    let runner = Runner::new(
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
    .with_folders(s);
    match &agents.tool_servers {
        Some(t) => runner.with_tool_servers(t.clone()),
        None => runner,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml_text: &str) -> anyhow::Result<AgentSettings> {
        let file: FileConfig = toml::from_str(toml_text)?;
        settings(&file, &Directory::default(), Vec::new())
    }

    #[test]
    fn mcp_tool_servers_and_the_agents_granted_them() {
        let a = load(
            r#"
[[mcp.servers]]
name = "shop"
command = "shop-tools"
[mcp.servers.tools]
"delete_*" = "deny"

[agents.cassie]
tools = ["reply", "mcp:shop/lookup_*", "mcp:*/ping"]
"#,
        )
        .unwrap();
        assert_eq!(format!("{:?}", a.tool_servers), "Some([\"shop\"])");
        assert_eq!(
            a.policies["cassie"].tools,
            ["reply", "mcp:shop/lookup_*", "mcp:*/ping"]
        );
        assert!(load("").unwrap().tool_servers.is_none());
        let e = load("[agents.cassie]\ntools = [\"mcp:files/read\"]").unwrap_err();
        assert!(
            format!("{e:#}").contains("no [[mcp.servers]] is named files"),
            "{e:#}"
        );
        let e = load("[agents.cassie]\ntools = [\"mcp:files\"]").unwrap_err();
        assert!(format!("{e:#}").contains("mcp:SERVER/TOOL"), "{e:#}");
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
