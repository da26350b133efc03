//! Settings: a TOML file (`--config`, `KRAKE_CONFIG`), overridden by `KRAKE_…` environment
//! variables and command-line flags. Every key is documented in `deploy/krake.example.toml`.

use anyhow::{Context, bail};
use krake_core::agent::{Agent, AgentName, default_agents};
use krake_core::config::Directory;
use krake_core::text::capitalise;
use krake_core::workspace::{Workspace, WorkspaceSlug, default_workspaces};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The config file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where Krake keeps its data (the SQLite file).
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address.
    pub listen: Option<String>,
    /// `sqlite://PATH` or `postgres://…`; default: `krake.db` in the data directory.
    pub database_url: Option<String>,
    /// `text` or `json`.
    pub log_format: Option<String>,
    /// Seconds between expiry sweeps.
    pub sweep_interval_secs: Option<u64>,
    /// Replaces the default workspaces when present.
    pub workspaces: Option<Vec<WorkspaceEntry>>,
    /// Overrides or adds agents, keyed by name.
    #[serde(default)]
    pub agents: BTreeMap<String, AgentEntry>,
    /// The time zone of schedules that name none (IANA name); default `UTC`.
    pub schedule_timezone: Option<String>,
    /// Seconds between coordinator ticks; default 1.
    pub coordinator_tick_secs: Option<u64>,
    /// Seconds a process holds a claimed batch of commerce events before another process may
    /// take it over (after a crash); default 60.
    pub commerce_lease_secs: Option<u64>,
    /// An occurrence found more than this many seconds late counts as missed; default 60.
    pub schedule_grace_secs: Option<u64>,
    /// Schedules defined in the config, keyed by name.
    #[serde(default)]
    pub schedules: BTreeMap<String, ScheduleEntry>,
    /// Shopify webhooks.
    #[serde(default)]
    pub shopify: ShopifyFile,
    /// Gelato webhooks.
    #[serde(default)]
    pub gelato: GelatoFile,
    /// Event rules; the defaults apply when absent.
    pub rules: Option<Vec<krake_core::commerce::EventRule>>,
    /// The Telegram front.
    #[serde(default)]
    pub telegram: crate::telegram::TelegramFile,
    /// The Discord front.
    #[serde(default)]
    pub discord: DiscordFile,
    /// The web front (sign-in, sessions, OpenID Connect).
    #[serde(default)]
    pub web: crate::web::WebFile,
    /// Model providers (`[[llm.providers]]`), timeouts and retries; none means offline mode.
    #[serde(default)]
    pub llm: krake_llm::LlmConfig,
    /// Monthly model budgets per workspace and agent, in US dollars.
    #[serde(default)]
    pub budgets: crate::agents::BudgetsFile,
    /// Limits of agent runs.
    #[serde(default)]
    pub agent_runs: crate::agents::AgentRunsFile,
    /// The knowledge base: vector store and embedder.
    #[serde(default)]
    pub rag: crate::rag::RagFile,
}

/// `[discord]` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordFile {
    /// The bot token (prefer `KRAKE_DISCORD_TOKEN`): gateway, posting threads, registration.
    pub token: Option<String>,
    /// The application's public key, hex (`KRAKE_DISCORD_PUBLIC_KEY`): the interactions endpoint.
    pub public_key: Option<String>,
    /// The application id (`KRAKE_DISCORD_APPLICATION_ID`), needed by `krake discord register`.
    pub application_id: Option<String>,
    /// REST base URL (`KRAKE_DISCORD_API_URL`); default `https://discord.com`.
    pub api_url: Option<String>,
    /// Gateway URL (`KRAKE_DISCORD_GATEWAY_URL`); default: the one Discord names.
    pub gateway_url: Option<String>,
    /// Milliseconds before a slow command is deferred (default 2000; Discord allows 3000).
    pub defer_after_ms: Option<u64>,
    /// Largest interaction body accepted, in bytes (default 65536).
    pub max_body_bytes: Option<usize>,
    /// Workspace slug → channel id where its new inbox threads are posted.
    #[serde(default)]
    pub channels: BTreeMap<String, String>,
}

/// `[shopify]` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopifyFile {
    /// The webhook secret (prefer `KRAKE_SHOPIFY_WEBHOOK_SECRET`).
    pub webhook_secret: Option<String>,
    /// The previous secret during rotation (prefer `KRAKE_SHOPIFY_WEBHOOK_SECRET_PREVIOUS`).
    pub webhook_secret_previous: Option<String>,
    /// Shop domain → workspace slug.
    #[serde(default)]
    pub shops: BTreeMap<String, String>,
    /// Workspace slug → Admin API access token, for approved refunds and price changes
    /// (prefer `KRAKE_SHOPIFY_ADMIN_TOKEN_<WORKSPACE>`).
    #[serde(default)]
    pub admin_tokens: BTreeMap<String, String>,
}

/// `[gelato]` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GelatoFile {
    /// Workspace slug → webhook path token (prefer `KRAKE_GELATO_TOKEN_<WORKSPACE>`).
    #[serde(default)]
    pub tokens: BTreeMap<String, String>,
    /// The Order API key (prefer `KRAKE_GELATO_API_KEY`): with it, a status that makes Krake
    /// act is confirmed with Gelato first.
    pub api_key: Option<String>,
    /// The Order API's base URL (default `https://order.gelatoapis.com`).
    pub api_url: Option<String>,
}

/// A schedule in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleEntry {
    /// The agent (a name) or a role; omitted: the coordinator picks by the task.
    pub agent: Option<String>,
    /// The workspace; default: the agent's home.
    pub workspace: Option<String>,
    /// What to do.
    pub task: String,
    /// When: a phrasing (`every monday 09:00`) or `cron 0 9 * * 1`.
    pub when: String,
    /// Time zone (IANA); default `schedule_timezone`.
    pub timezone: Option<String>,
    /// `once` (default) or `skip`.
    pub catch_up: Option<String>,
}

/// A workspace in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceEntry {
    /// Display name.
    pub name: String,
    /// Slug; derived from the name when absent.
    pub slug: Option<String>,
}

/// An agent in the config file: fields given override the default agent of that name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEntry {
    /// Role.
    pub role: Option<String>,
    /// One sentence.
    pub description: Option<String>,
    /// Workspaces (slugs), home first.
    pub workspaces: Option<Vec<String>>,
    /// System prompt (`prompt` works too).
    #[serde(alias = "prompt")]
    pub system_prompt: Option<String>,
    /// The model it uses (one of a provider's `models`); default: the first provider's first.
    pub model: Option<String>,
    /// Sampling temperature (0 to 2).
    pub temperature: Option<f32>,
    /// The tools it may call: reply, request_approval, escalate, search_knowledge, get_kpis,
    /// add_folder_entry.
    pub tools: Option<Vec<String>>,
    /// Action kinds that always need approval: send_message, publish_post, change_price, refund.
    pub needs_approval: Option<Vec<String>>,
    /// At or above this confidence it acts on its own (unless `needs_approval`); default 0.8.
    pub act_threshold: Option<f64>,
    /// Below this confidence its run is escalated; default 0.4.
    pub escalate_threshold: Option<f64>,
    /// Remove this agent from the roster.
    #[serde(default)]
    pub disabled: bool,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Overrides from flags and environment variables (clap reads both).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Config file (TOML).
    #[arg(long, env = "KRAKE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory [default: ./krake-data].
    #[arg(long, env = "KRAKE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL [default: sqlite file krake.db in the data directory].
    #[arg(
        long,
        env = "KRAKE_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Log format.
    #[arg(long, env = "KRAKE_LOG_FORMAT", global = true)]
    pub log_format: Option<LogFormat>,
}

/// The effective settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Data directory.
    pub data_dir: PathBuf,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Database URL (may hold a password: print with [`redacted`](Self::redacted)).
    pub database_url: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Seconds between expiry sweeps.
    pub sweep_interval_secs: u64,
    /// Workspaces and agents.
    pub directory: Directory,
    /// The config file read, if any.
    pub config_file: Option<PathBuf>,
    /// The default time zone of schedules.
    pub schedule_timezone: chrono_tz::Tz,
    /// Seconds between coordinator ticks.
    pub coordinator_tick_secs: u64,
    /// Lease on claimed commerce events.
    pub commerce_lease_secs: u64,
    /// Lateness after which an occurrence counts as missed.
    pub schedule_grace_secs: u64,
    /// Config-defined schedules, checked (timing, zone, agent).
    pub schedules: Vec<ConfigSchedule>,
    /// Shopify and Gelato webhooks.
    pub webhooks: krake_commerce::WebhookConfig,
    /// Event rules.
    pub rules: Vec<krake_core::commerce::EventRule>,
    /// Gelato's Order API (base URL, key), when a key is set.
    pub gelato_api: Option<(String, krake_commerce::Secret)>,
    /// The Telegram front, when a token is set.
    pub telegram: Option<krake_telegram::TelegramConfig>,
    /// The Discord front.
    pub discord: krake_discord::DiscordConfig,
    /// The web front.
    pub web: krake_web::front::WebConfig,
    /// Agents' models, policies, budgets and run limits.
    pub agents: crate::agents::AgentSettings,
    /// The `[llm]` section as written (for `krake config`).
    pub llm: krake_llm::LlmConfig,
    /// The knowledge base's store and embedder.
    pub rag: crate::rag::RagSettings,
}

/// A config-defined schedule, validated at load.
#[derive(Debug, Clone)]
pub struct ConfigSchedule {
    /// Its key in the file.
    pub name: String,
    /// Workspace.
    pub workspace: krake_core::workspace::WorkspaceSlug,
    /// The coordinator's choice of agent.
    pub assignment: krake_core::schedule::Assignment,
    /// Task.
    pub task: String,
    /// When.
    pub cadence: krake_core::schedule::Cadence,
    /// For people.
    pub description: String,
    /// Missed-run policy.
    pub catch_up: krake_core::schedule::CatchUp,
}

impl Settings {
    /// Loads the config file (if any) and applies overrides; `listen` comes from `serve --listen`.
    pub fn load(o: &Overrides, listen: Option<&str>) -> anyhow::Result<Self> {
        let file = match &o.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let data_dir = o
            .data_dir
            .clone()
            .or(file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("./krake-data"));
        let listen_s = listen
            .map(str::to_owned)
            .or(file.listen.clone())
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen: SocketAddr = listen_s.parse().with_context(|| {
            format!("listen address `{listen_s}` is not HOST:PORT, e.g. 127.0.0.1:8080")
        })?;
        let database_url = o
            .database_url
            .clone()
            .or(file.database_url.clone())
            .unwrap_or_else(|| krake_store::Store::sqlite_url(&data_dir.join("krake.db")));
        let log_format = match (o.log_format, file.log_format.as_deref()) {
            (Some(f), _) => f,
            (None, None | Some("text")) => LogFormat::Text,
            (None, Some("json")) => LogFormat::Json,
            (None, Some(other)) => bail!("log_format must be `text` or `json`, not `{other}`"),
        };
        let directory = directory(&file).with_context(|| match &o.config {
            Some(p) => format!("invalid workspaces or agents in {}", p.display()),
            None => "invalid workspaces or agents".to_owned(),
        })?;
        let schedule_timezone = match &file.schedule_timezone {
            Some(t) => krake_core::schedule::parse_timezone(t)
                .map_err(|e| anyhow::anyhow!("schedule_timezone: {e}"))?,
            None => chrono_tz::Tz::UTC,
        };
        let schedules = config_schedules(&file, &directory, schedule_timezone)?;
        let directory_ref = directory.clone();
        Ok(Self {
            data_dir,
            listen,
            database_url,
            log_format,
            sweep_interval_secs: file.sweep_interval_secs.unwrap_or(5).max(1),
            directory,
            config_file: o.config.clone(),
            schedule_timezone,
            coordinator_tick_secs: file.coordinator_tick_secs.unwrap_or(1).max(1),
            commerce_lease_secs: file.commerce_lease_secs.unwrap_or(60).max(1),
            schedule_grace_secs: file.schedule_grace_secs.unwrap_or(60),
            schedules,
            webhooks: webhooks(&file, &directory_ref)?,
            gelato_api: secret("KRAKE_GELATO_API_KEY", file.gelato.api_key.as_ref()).map(|k| {
                let url = env_or("KRAKE_GELATO_API_URL", file.gelato.api_url.as_ref())
                    .unwrap_or_else(|| krake_commerce::gelato_api::DEFAULT_BASE_URL.to_owned());
                (url, k)
            }),
            telegram: crate::telegram::settings(&file.telegram, &directory_ref)?,
            discord: discord(&file.discord, &directory_ref)?,
            web: crate::web::settings(&file.web)?,
            agents: crate::agents::settings(&file, &directory_ref)?,
            llm: file.llm.clone(),
            rag: crate::rag::settings(&file.rag)?,
            rules: file
                .rules
                .clone()
                .unwrap_or_else(krake_core::commerce::default_rules),
        })
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn redacted(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "# effective configuration{}\n",
            self.config_file
                .as_ref()
                .map(|p| format!(" (file: {})", p.display()))
                .unwrap_or_else(|| " (no config file)".into())
        ));
        out.push_str(&format!(
            "data_dir = {:?}\n",
            self.data_dir.display().to_string()
        ));
        out.push_str(&format!("listen = \"{}\"\n", self.listen));
        out.push_str(&format!(
            "database_url = {:?}\n",
            krake_store::redact_url(&self.database_url)
        ));
        out.push_str(&format!(
            "log_format = \"{}\"\n",
            match self.log_format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            }
        ));
        out.push_str(&format!(
            "sweep_interval_secs = {}\n",
            self.sweep_interval_secs
        ));
        out.push_str(&format!(
            "schedule_timezone = \"{}\"\ncoordinator_tick_secs = {}\nschedule_grace_secs = {}\n",
            self.schedule_timezone.name(),
            self.coordinator_tick_secs,
            self.schedule_grace_secs
        ));
        out.push_str(&format!(
            "commerce_lease_secs = {}\n",
            self.commerce_lease_secs
        ));
        let set = |s: &Option<krake_commerce::Secret>| {
            if s.is_some() {
                "\"***\""
            } else {
                "\"\" # not set"
            }
        };
        out.push_str(&format!(
            "\n[shopify]\nwebhook_secret = {}\nwebhook_secret_previous = {}\n",
            set(&self.webhooks.shopify_secret),
            set(&self.webhooks.shopify_secret_previous)
        ));
        let mut shops: Vec<_> = self.webhooks.shops.iter().collect();
        shops.sort();
        out.push_str("[shopify.shops]\n");
        for (shop, ws) in shops {
            out.push_str(&format!("{shop:?} = \"{ws}\"\n"));
        }
        out.push_str(&format!(
            "\n[gelato]\napi_key = {}\n",
            set(&self.gelato_api.as_ref().map(|(_, k)| k.clone()))
        ));
        if let Some((url, _)) = &self.gelato_api {
            out.push_str(&format!("api_url = {url:?}\n"));
        }
        out.push_str("[gelato.tokens]\n");
        for (ws, _) in &self.webhooks.gelato_tokens {
            out.push_str(&format!("{ws} = \"***\"\n"));
        }
        for r in &self.rules {
            out.push_str(&format!(
                "\n[[rules]]\non = {:?}\nthen = {:?}\n",
                serde_plain(&r.on),
                serde_plain(&r.then)
            ));
            if let Some(a) = &r.agent {
                out.push_str(&format!("agent = {a:?}\n"));
            }
            if let Some(t) = &r.task {
                out.push_str(&format!("task = {t:?}\n"));
            }
        }
        out.push_str(&crate::telegram::redacted(self.telegram.as_ref()));
        out.push_str(&discord_redacted(&self.discord));
        out.push_str(&crate::web::redacted(&self.web));
        out.push_str(&crate::agents::redacted(&self.agents, &self.llm));
        for w in self.directory.workspaces() {
            out.push_str(&format!(
                "\n[[workspaces]]\nname = {:?}\nslug = \"{}\"\n",
                w.name, w.slug
            ));
        }
        for a in self.directory.agents() {
            let ws: Vec<String> = a.workspaces.iter().map(|w| format!("\"{w}\"")).collect();
            out.push_str(&format!(
                "\n[agents.{}]\nrole = {:?}\ndescription = {:?}\nworkspaces = [{}]\n",
                a.name.as_str().to_lowercase(),
                a.role,
                a.description,
                ws.join(", ")
            ));
        }
        for s in &self.schedules {
            out.push_str(&format!(
                "\n[schedules.{}]\nagent = \"{}\"\nworkspace = \"{}\"\ntask = {:?}\nwhen = \"cron {}\"\ntimezone = \"{}\"\ncatch_up = \"{}\"\n",
                s.name,
                s.assignment.agent,
                s.workspace,
                s.task,
                s.cadence.expression(),
                s.cadence.timezone().name(),
                s.catch_up
            ));
        }
        out
    }
}

fn config_schedules(
    file: &FileConfig,
    directory: &Directory,
    default_tz: chrono_tz::Tz,
) -> anyhow::Result<Vec<ConfigSchedule>> {
    use krake_core::schedule::{CatchUp, parse_timezone, parse_when};
    let mut out = Vec::new();
    for (name, e) in &file.schedules {
        let ctx = || format!("schedule `{name}`");
        let when = parse_when(&e.when).map_err(|err| anyhow::anyhow!("{}: when: {err}", ctx()))?;
        let tz = match &e.timezone {
            Some(t) => Some(
                parse_timezone(t).map_err(|err| anyhow::anyhow!("{}: timezone: {err}", ctx()))?,
            ),
            None => None,
        };
        let cadence =
            krake_core::schedule::Cadence::new(&when.cron, tz.or(when.tz).unwrap_or(default_tz))
                .map_err(|err| anyhow::anyhow!("{}: {err}", ctx()))?;
        let workspace = match &e.workspace {
            Some(w) => {
                let slug = WorkspaceSlug::parse(w).with_context(ctx)?;
                if directory.workspace(&slug).is_none() {
                    bail!("{}: `{w}` is not a configured workspace", ctx());
                }
                Some(slug)
            }
            None => None,
        };
        let assignment = krake_core::coordinator::assign(
            directory,
            e.agent.as_deref(),
            workspace.as_ref(),
            &e.task,
        )
        .map_err(|err| anyhow::anyhow!("{}: {err}", ctx()))?;
        let workspace = workspace
            .or_else(|| {
                directory
                    .agent(&assignment.agent)
                    .and_then(|a| a.home().cloned())
            })
            .or_else(|| directory.workspaces().first().map(|w| w.slug.clone()))
            .ok_or_else(|| anyhow::anyhow!("{}: no workspace", ctx()))?;
        let catch_up = match &e.catch_up {
            Some(c) => CatchUp::parse(c).ok_or_else(|| {
                anyhow::anyhow!("{}: catch_up must be `once` or `skip`, not `{c}`", ctx())
            })?,
            None => CatchUp::Once,
        };
        if e.task.trim().is_empty() {
            bail!("{}: task is empty", ctx());
        }
        out.push(ConfigSchedule {
            name: name.clone(),
            workspace,
            assignment,
            task: e.task.trim().to_owned(),
            cadence,
            description: when.description,
            catch_up,
        });
    }
    Ok(out)
}

/// A secret from the environment (preferred) or the config file; empty values count as unset.
fn secret(env: &str, file: Option<&String>) -> Option<krake_commerce::Secret> {
    env_or(env, file).map(krake_commerce::Secret::new)
}

fn webhooks(
    file: &FileConfig,
    directory: &Directory,
) -> anyhow::Result<krake_commerce::WebhookConfig> {
    let known = |slug: &str, what: &str| -> anyhow::Result<WorkspaceSlug> {
        let ws = WorkspaceSlug::parse(slug)
            .with_context(|| format!("{what}: `{slug}` is not a workspace slug"))?;
        if directory.workspace(&ws).is_none() {
            bail!("{what}: there is no workspace `{slug}`");
        }
        Ok(ws)
    };
    let mut shops = std::collections::HashMap::new();
    for (shop, ws) in &file.shopify.shops {
        shops.insert(
            shop.to_ascii_lowercase(),
            known(ws, &format!("[shopify.shops] \"{shop}\""))?,
        );
    }
    for ws in file.gelato.tokens.keys() {
        known(ws, "[gelato.tokens]")?;
    }
    let mut gelato_tokens = Vec::new();
    for w in directory.workspaces() {
        let env = format!(
            "KRAKE_GELATO_TOKEN_{}",
            w.slug.as_str().to_uppercase().replace('-', "_")
        );
        if let Some(t) = secret(&env, file.gelato.tokens.get(w.slug.as_str())) {
            if t.expose().len() < 16 {
                bail!(
                    "the Gelato token for {} is too short to be unguessable: use at least 16 random characters",
                    w.slug
                );
            }
            gelato_tokens.push((w.slug.clone(), t));
        }
    }
    Ok(krake_commerce::WebhookConfig {
        shopify_secret: secret(
            "KRAKE_SHOPIFY_WEBHOOK_SECRET",
            file.shopify.webhook_secret.as_ref(),
        ),
        shopify_secret_previous: secret(
            "KRAKE_SHOPIFY_WEBHOOK_SECRET_PREVIOUS",
            file.shopify.webhook_secret_previous.as_ref(),
        ),
        shops,
        gelato_tokens,
    })
}

/// A setting from the environment (preferred) or the config file, trimmed; empty values count
/// as unset. The one reader of `KRAKE_*` overrides for every front's and store's settings.
pub(crate) fn env_or(env: &str, file: Option<&String>) -> Option<String> {
    std::env::var(env)
        .ok()
        .or_else(|| file.cloned())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn discord(
    file: &DiscordFile,
    directory: &Directory,
) -> anyhow::Result<krake_discord::DiscordConfig> {
    let mut c = krake_discord::DiscordConfig {
        token: env_or("KRAKE_DISCORD_TOKEN", file.token.as_ref()).map(krake_discord::Secret::new),
        public_key: env_or("KRAKE_DISCORD_PUBLIC_KEY", file.public_key.as_ref()),
        ..Default::default()
    };
    if let Some(key) = &c.public_key {
        krake_discord::verify::SignatureVerifier::from_hex(key)
            .context("discord.public_key / KRAKE_DISCORD_PUBLIC_KEY")?;
    }
    if let Some(app) = env_or("KRAKE_DISCORD_APPLICATION_ID", file.application_id.as_ref()) {
        c.application_id = Some(krake_discord::snowflake(&app).with_context(|| {
            format!("discord.application_id: `{app}` is not a Discord id (a number)")
        })?);
    }
    if let Some(url) = env_or("KRAKE_DISCORD_API_URL", file.api_url.as_ref()) {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("discord.api_url: `{url}` is not an http(s) URL");
        }
        c.api_url = url;
    }
    c.gateway_url = env_or("KRAKE_DISCORD_GATEWAY_URL", file.gateway_url.as_ref());
    if let Some(ms) = file.defer_after_ms {
        c.defer_after = std::time::Duration::from_millis(ms.clamp(100, 2800));
    }
    if let Some(n) = file.max_body_bytes {
        c.max_body_bytes = n.clamp(1024, 1 << 20);
    }
    for (ws, channel) in &file.channels {
        let slug = WorkspaceSlug::parse(ws)
            .with_context(|| format!("[discord.channels]: `{ws}` is not a workspace slug"))?;
        if directory.workspace(&slug).is_none() {
            bail!("[discord.channels]: there is no workspace `{ws}`");
        }
        let id = krake_discord::snowflake(channel).with_context(|| {
            format!("[discord.channels] {ws}: `{channel}` is not a Discord channel id")
        })?;
        c.channels.insert(slug, id);
    }
    Ok(c)
}

fn discord_redacted(c: &krake_discord::DiscordConfig) -> String {
    let mut out = String::from("\n[discord]\n");
    out.push_str(if c.token.is_some() {
        "token = \"***\"\n"
    } else {
        "token = \"\" # not set: no gateway, no posting\n"
    });
    match &c.public_key {
        // A public key is not a secret.
        Some(k) => out.push_str(&format!("public_key = {k:?}\n")),
        None => out.push_str("public_key = \"\" # not set: no interactions endpoint\n"),
    }
    if let Some(app) = c.application_id {
        out.push_str(&format!("application_id = \"{app}\"\n"));
    }
    out.push_str(&format!("api_url = {:?}\n", c.api_url));
    if let Some(g) = &c.gateway_url {
        out.push_str(&format!("gateway_url = {g:?}\n"));
    }
    out.push_str(&format!(
        "defer_after_ms = {}\nmax_body_bytes = {}\n[discord.channels]\n",
        c.defer_after.as_millis(),
        c.max_body_bytes
    ));
    for (ws, ch) in &c.channels {
        out.push_str(&format!("{ws} = \"{ch}\"\n"));
    }
    out
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
}

fn directory(file: &FileConfig) -> anyhow::Result<Directory> {
    let workspaces = match &file.workspaces {
        None => default_workspaces(),
        Some(list) => list
            .iter()
            .map(|w| match &w.slug {
                Some(s) => Ok(Workspace {
                    slug: WorkspaceSlug::parse(s)?,
                    name: w.name.clone(),
                }),
                None => Workspace::from_name(&w.name),
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let mut agents = default_agents();
    for (name, e) in &file.agents {
        let pos = agents.iter().position(|a| a.name.matches(name));
        if e.disabled {
            if let Some(i) = pos {
                agents.remove(i);
            }
            continue;
        }
        let slugs = |v: &Vec<String>| {
            v.iter()
                .map(|s| WorkspaceSlug::parse(s))
                .collect::<Result<Vec<_>, _>>()
        };
        match pos {
            Some(i) => {
                let a = &mut agents[i];
                if let Some(r) = &e.role {
                    a.role = r.clone();
                }
                if let Some(d) = &e.description {
                    a.description = d.clone();
                }
                if let Some(w) = &e.workspaces {
                    a.workspaces = slugs(w)?;
                }
                if let Some(p) = &e.system_prompt {
                    a.system_prompt = p.clone();
                }
            }
            None => {
                let (Some(role), Some(ws)) = (&e.role, &e.workspaces) else {
                    bail!("new agent `{name}` needs at least `role` and `workspaces`");
                };
                let name = AgentName::parse(&capitalise(name))?;
                let description = e.description.clone().unwrap_or_default();
                agents.push(Agent {
                    system_prompt: e.system_prompt.clone().unwrap_or_else(|| {
                        format!("You are {name}, the {role} agent of a small business team. {description}")
                    }),
                    name,
                    role: role.clone(),
                    description,
                    workspaces: slugs(ws)?,
                });
            }
        }
    }
    if file.workspaces.is_some() {
        // Default agents follow a replaced workspace list: they keep the workspaces that still
        // exist, or move to the first one. Agents written in the file are checked as written.
        let known: Vec<WorkspaceSlug> = workspaces.iter().map(|w| w.slug.clone()).collect();
        for a in &mut agents {
            if file.agents.keys().any(|k| a.name.matches(k)) {
                continue;
            }
            a.workspaces.retain(|w| known.contains(w));
            if a.workspaces.is_empty() {
                a.workspaces = known.first().cloned().into_iter().collect();
            }
        }
    }
    Ok(Directory::new(workspaces, agents)?)
}

/// The serde name of a unit enum value (`order_created`).
fn serde_plain<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(toml_text: &str) -> anyhow::Result<Settings> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("krake.toml");
        std::fs::write(&path, toml_text)?;
        Settings::load(
            &Overrides {
                config: Some(path),
                ..Default::default()
            },
            None,
        )
    }

    #[test]
    fn defaults_without_a_file() {
        let s = Settings::load(&Overrides::default(), None).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.data_dir, PathBuf::from("./krake-data"));
        assert!(s.database_url.starts_with("sqlite://"));
        assert_eq!(s.directory.workspaces().len(), 5);
        assert_eq!(s.directory.agents().len(), 12);
    }

    #[test]
    fn file_overrides_and_agents() {
        let s = load_str(
            r#"
listen = "127.0.0.1:9999"
[agents.penn]
role = "headline writer"
[agents.gigi]
disabled = true
[agents.otto]
role = "accountant"
workspaces = ["management"]
"#,
        )
        .unwrap();
        assert_eq!(s.listen.port(), 9999);
        assert_eq!(s.directory.agent("penn").unwrap().role, "headline writer");
        assert!(s.directory.agent("gigi").is_none());
        assert_eq!(s.directory.agent("otto").unwrap().name.as_str(), "Otto");
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = format!(
            "{:#}",
            load_str("listen = \"127.0.0.1:1\"\nlisen = 5\n").unwrap_err()
        );
        assert!(e.contains("krake.toml"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        assert!(e.contains("lisen"), "{e}");
        let e = format!(
            "{:#}",
            load_str("sweep_interval_secs = \"soon\"\n").unwrap_err()
        );
        assert!(
            e.contains("line 1") && e.contains("sweep_interval_secs"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            load_str("[agents.zed]\nrole = \"x\"\nworkspaces = [\"narnia\"]\n").unwrap_err()
        );
        assert!(e.contains("narnia"), "{e}");
    }

    #[test]
    fn schedules_from_config_are_checked() {
        let s = load_str(
            r#"
schedule_timezone = "Europe/Berlin"
[schedules.weekly-sales]
agent = "dexter"
task = "summarise last week's sales"
when = "every monday 09:00"
[schedules.posts]
agent = "social media"
workspace = "lunavo"
task = "draft today's post"
when = "cron 0 8 * * 1-5"
timezone = "UTC"
catch_up = "skip"
"#,
        )
        .unwrap();
        assert_eq!(s.schedules.len(), 2);
        let posts = &s.schedules[0];
        assert_eq!(posts.assignment.agent, "Soshie");
        assert_eq!(posts.cadence.timezone(), chrono_tz::Tz::UTC);
        let weekly = &s.schedules[1];
        assert_eq!(weekly.cadence.timezone(), chrono_tz::Europe::Berlin);
        assert_eq!(weekly.workspace.as_str(), "management");
        let e = format!(
            "{:#}",
            load_str("[schedules.x]\ntask = \"t\"\nagent = \"penn\"\nwhen = \"cron 0 25 * * *\"\n")
                .unwrap_err()
        );
        assert!(
            e.contains("schedule `x`") && e.contains("0 25 * * *"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            load_str("[schedules.x]\ntask = \"t\"\nagent = \"penn\"\nwhen = \"every day\"\ntimezone = \"Mars/Base\"\n").unwrap_err()
        );
        assert!(e.contains("Mars/Base"), "{e}");
    }

    #[test]
    fn webhook_settings_and_rules() {
        let s = load_str(
            r#"
[shopify]
webhook_secret = "file-secret"
[shopify.shops]
"Lunavo.myshopify.com" = "lunavo"
[gelato.tokens]
monarch = "0123456789abcdef0123"
[[rules]]
on = "order_paid"
then = "notice"
agent = "Dexter"
"#,
        )
        .unwrap();
        assert_eq!(
            s.webhooks
                .shops
                .get("lunavo.myshopify.com")
                .map(|w| w.as_str()),
            Some("lunavo")
        );
        assert_eq!(s.webhooks.gelato_tokens.len(), 1);
        assert_eq!(s.rules.len(), 1);
        let out = s.redacted();
        assert!(
            !out.contains("file-secret") && !out.contains("0123456789abcdef0123"),
            "{out}"
        );
        assert!(out.contains("on = \"order_paid\""), "{out}");
        let e = format!(
            "{:#}",
            load_str("[shopify.shops]\n\"x.myshopify.com\" = \"narnia\"\n").unwrap_err()
        );
        assert!(e.contains("narnia"), "{e}");
        let e = format!(
            "{:#}",
            load_str("[gelato.tokens]\nlunavo = \"short\"\n").unwrap_err()
        );
        assert!(e.contains("too short"), "{e}");
    }

    #[test]
    fn telegram_settings_and_redaction() {
        let s = load_str(
            r#"
[telegram]
token = "123456:SECRET-token_x"
mode = "webhook"
webhook_secret = "hook-secret_1"
webhook_url = "https://krake.example/telegram/webhook"
[[telegram.chats]]
workspace = "lunavo"
chat_id = -1001847508954
topic = 4
"#,
        )
        .unwrap();
        let t = s.telegram.as_ref().unwrap();
        assert_eq!(t.chats.len(), 1);
        assert_eq!(
            t.chats[0].place.destination().as_str(),
            "telegram:-1001847508954:topic:4"
        );
        let out = s.redacted();
        assert!(
            !out.contains("SECRET") && !out.contains("hook-secret"),
            "{out}"
        );
        assert!(out.contains("[telegram]\ntoken = \"***\""), "{out}");
        assert!(out.contains("topic = 4"), "{out}");
        assert!(!format!("{s:?}").contains("SECRET"));
        let e = format!(
            "{:#}",
            load_str("[telegram]\ntoken = \"1:a\"\n[[telegram.chats]]\nworkspace = \"narnia\"\nchat_id = 1\n")
                .unwrap_err()
        );
        assert!(e.contains("narnia"), "{e}");
        let e = format!(
            "{:#}",
            load_str("[telegram]\ntoken = \"1:a\"\nmode = \"webhook\"\n").unwrap_err()
        );
        assert!(e.contains("KRAKE_TELEGRAM_WEBHOOK_SECRET"), "{e}");
        assert!(load_str("[telegram]\ntoken = \"not a token\"\n").is_err());
    }

    #[test]
    fn the_example_config_is_valid() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/krake.example.toml");
        let s = Settings::load(
            &Overrides {
                config: Some(path),
                ..Default::default()
            },
            None,
        )
        .unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.directory.agents().len(), 12);
    }

    #[test]
    fn discord_settings_are_checked_and_the_token_never_printed() {
        let s = load_str(
            r#"
[discord]
token = "MTIz.NDU2.s3cret-token"
public_key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
application_id = "827290144020496384"
api_url = "http://127.0.0.1:9"
defer_after_ms = 1500
[discord.channels]
lunavo = "1111111111111111111"
"#,
        )
        .unwrap();
        let d = &s.discord;
        assert!(d.enabled());
        assert_eq!(d.application_id, Some(827_290_144_020_496_384));
        assert_eq!(d.api_url, "http://127.0.0.1:9");
        assert_eq!(d.defer_after.as_millis(), 1500);
        assert_eq!(
            d.workspace_of(1_111_111_111_111_111_111)
                .map(|w| w.as_str()),
            Some("lunavo")
        );
        let out = s.redacted();
        assert!(!out.contains("s3cret"), "{out}");
        assert!(out.contains("[discord]\ntoken = \"***\""), "{out}");
        assert!(!format!("{s:?}").contains("s3cret"));
        for (bad, says) in [
            ("[discord]\npublic_key = \"xyz\"\n", "public key"),
            ("[discord.channels]\nnarnia = \"1\"\n", "narnia"),
            ("[discord.channels]\nlunavo = \"#general\"\n", "#general"),
            ("[discord]\napplication_id = \"abc\"\n", "application_id"),
            ("[discord]\ntokn = \"x\"\n", "tokn"),
        ] {
            let e = format!("{:#}", load_str(bad).unwrap_err());
            assert!(e.contains(says), "{bad}: {e}");
        }
        // Nothing configured: the front is off.
        assert!(!load_str("").unwrap().discord.enabled());
    }

    #[test]
    fn config_output_hides_passwords() {
        let o = Overrides {
            database_url: Some("postgres://krake:s3cret@db/krake".into()),
            ..Default::default()
        };
        let s = Settings::load(&o, None).unwrap();
        let out = s.redacted();
        assert!(!out.contains("s3cret"), "{out}");
        assert!(out.contains("postgres://krake:***@db/krake"));
    }
}
