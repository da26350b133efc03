//! Settings: a TOML file (`--config`, `KRAKE_CONFIG`), overridden by `KRAKE_…` environment
//! variables and command-line flags. Every key is documented in `deploy/krake.example.toml`.
//!
//! Each part owns its section's type and reads it (`krake_telegram::settings::TelegramFile`,
//! `krake_core::schedule::settings::ScheduleEntry`, …); this module puts the sections together.
//! `krake config` writes the effective settings back in the same types, so what it prints is a
//! config file; secrets print as `***` because every secret is a `Secret`, whose serialisation
//! is the one redaction there is.

use anyhow::{Context, bail};
use krake_commerce::settings::{CommerceSettings, GelatoFile, ShopifyFile};
use krake_core::config::Directory;
use krake_core::config::file::{AgentEntry, WorkspaceEntry};
use krake_core::run::settings::{AgentRunsFile, BudgetsFile};
use krake_core::schedule::settings::{ConfigSchedule, ScheduleEntry, config_schedules};
use krake_discord::settings::DiscordFile;
use krake_telegram::settings::TelegramFile;
use krake_web::settings::WebFile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use krake_core::settings::env_or;

/// The config file as written (and as `krake config` writes the effective settings).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
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
    /// The time zone of schedules that name none (IANA name); default `UTC`.
    pub schedule_timezone: Option<String>,
    /// Seconds between coordinator ticks; default 1.
    pub coordinator_tick_secs: Option<u64>,
    /// Seconds a process holds a claimed batch of commerce events before another process may
    /// take it over (after a crash); default 60.
    pub commerce_lease_secs: Option<u64>,
    /// How many batches of commerce events one process applies at once; default 2 on
    /// PostgreSQL, 1 on SQLite (one writer); 0 stores webhooks without applying them (an
    /// intake replica: another process on the same database applies them).
    pub commerce_workers: Option<usize>,
    /// An occurrence found more than this many seconds late counts as missed; default 60.
    pub schedule_grace_secs: Option<u64>,
    /// Replaces the default workspaces when present.
    pub workspaces: Option<Vec<WorkspaceEntry>>,
    /// Overrides or adds agents, keyed by name.
    #[serde(default)]
    pub agents: BTreeMap<String, AgentEntry>,
    /// Schedules defined in the config, keyed by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub schedules: BTreeMap<String, ScheduleEntry>,
    /// Shopify webhooks and Admin API access.
    pub shopify: Option<ShopifyFile>,
    /// Gelato webhooks and Order API.
    pub gelato: Option<GelatoFile>,
    /// Event rules; the defaults apply when absent.
    pub rules: Option<Vec<krake_core::commerce::EventRule>>,
    /// The Telegram front.
    pub telegram: Option<TelegramFile>,
    /// The Discord front.
    pub discord: Option<DiscordFile>,
    /// The web front (sign-in, sessions, OpenID Connect).
    pub web: Option<WebFile>,
    /// The HTTP listener: timeouts, connection limit, where `/metrics` is served.
    pub http: Option<krake_web::server::HttpFile>,
    /// Model providers (`[[llm.providers]]`), timeouts and retries; none means offline mode.
    #[serde(default)]
    pub llm: krake_llm::LlmConfig,
    /// Monthly model budgets per workspace and agent, in US dollars.
    #[serde(default)]
    pub budgets: BudgetsFile,
    /// Limits of agent runs.
    #[serde(default)]
    pub agent_runs: AgentRunsFile,
    /// The knowledge base: vector store and embedder.
    #[serde(default)]
    pub rag: krake_rag::settings::RagFile,
    /// MCP tool servers for agents (`[[mcp.servers]]`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub mcp: krake_mcp::tools::McpFile,
    /// How KPIs of several currencies add up (`[kpi]`: currency and fixed rates).
    pub kpi: Option<krake_core::kpi::KpiSettings>,
    /// KPIs per workspace (`[[kpis]]`), overriding or adding to the defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kpis: Vec<krake_core::kpi::KpiEntry>,
    /// The read-only Binance portfolio (`[binance]`).
    pub binance: Option<krake_binance::poller::BinanceFile>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
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

impl LogFormat {
    /// Its name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Json => "json",
        }
    }
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
    /// Commerce workers per process (`None`: by the database, see [`FileConfig`]).
    pub commerce_workers: Option<usize>,
    /// Lateness after which an occurrence counts as missed.
    pub schedule_grace_secs: u64,
    /// Config-defined schedules, checked (timing, zone, agent).
    pub schedules: Vec<ConfigSchedule>,
    /// Shopify and Gelato: webhooks, the Order API, Admin API access.
    pub commerce: CommerceSettings,
    /// Event rules.
    pub rules: Vec<krake_core::commerce::EventRule>,
    /// The Telegram front, when a token is set.
    pub telegram: Option<krake_telegram::TelegramConfig>,
    /// The Discord front.
    pub discord: krake_discord::DiscordConfig,
    /// The web front.
    pub web: krake_web::front::WebConfig,
    /// The HTTP listener's limits and where `/metrics` is served.
    pub http: krake_web::server::HttpSettings,
    /// Agents' models, policies, budgets and run limits.
    pub agents: crate::agents::AgentSettings,
    /// The `[llm]` section as written (for `krake config`).
    pub llm: krake_llm::LlmConfig,
    /// The `[mcp]` section as written, `env` values hidden (for `krake config`).
    pub mcp: krake_mcp::tools::McpFile,
    /// The knowledge base's store and embedder.
    pub rag: krake_rag::settings::RagSettings,
    /// Each workspace's KPIs.
    pub kpi_defs: BTreeMap<krake_core::workspace::WorkspaceSlug, Vec<krake_core::kpi::KpiDef>>,
    /// `[kpi]`: currency and rates.
    pub kpi: krake_core::kpi::KpiSettings,
    /// `[[kpis]]` as written (for `krake config`).
    pub kpi_entries: Vec<krake_core::kpi::KpiEntry>,
    /// `[binance]` as written; the poller reads its key from the environment when it starts.
    pub binance: Option<krake_binance::poller::BinanceFile>,
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
        let directory =
            krake_core::config::file::directory(file.workspaces.as_deref(), &file.agents)
                .with_context(|| match &o.config {
                    Some(p) => format!("invalid workspaces or agents in {}", p.display()),
                    None => "invalid workspaces or agents".to_owned(),
                })?;
        let schedule_timezone = match &file.schedule_timezone {
            Some(t) => krake_core::schedule::parse_timezone(t)
                .map_err(|e| anyhow::anyhow!("schedule_timezone: {e}"))?,
            None => chrono_tz::Tz::UTC,
        };
        let schedules = config_schedules(&file.schedules, &directory, schedule_timezone)?;
        let kpi_defs = krake_core::kpi::kpi_defs(directory.workspaces(), &file.kpis)
            .map_err(|e| anyhow::anyhow!(e))?;
        if let Some(b) = &file.binance {
            let ws = krake_core::workspace::WorkspaceSlug::parse(&b.workspace)
                .map_err(|e| anyhow::anyhow!("[binance] workspace: {e}"))?;
            if directory.workspace(&ws).is_none() {
                bail!("[binance] workspace `{ws}` is not one of the workspaces");
            }
        }
        let commerce = krake_commerce::settings::resolve(
            &file.shopify.clone().unwrap_or_default(),
            &file.gelato.clone().unwrap_or_default(),
            &directory,
        )?;
        Ok(Self {
            data_dir,
            listen,
            database_url,
            log_format,
            sweep_interval_secs: file.sweep_interval_secs.unwrap_or(5).max(1),
            config_file: o.config.clone(),
            schedule_timezone,
            coordinator_tick_secs: file.coordinator_tick_secs.unwrap_or(1).max(1),
            commerce_lease_secs: file.commerce_lease_secs.unwrap_or(60).max(1),
            commerce_workers: file.commerce_workers.map(|n| n.min(16)),
            schedule_grace_secs: file.schedule_grace_secs.unwrap_or(60),
            schedules,
            telegram: file
                .telegram
                .clone()
                .unwrap_or_default()
                .resolve(&directory)?,
            discord: file
                .discord
                .clone()
                .unwrap_or_default()
                .resolve(&directory)?,
            web: file.web.clone().unwrap_or_default().resolve()?,
            http: file
                .http
                .clone()
                .unwrap_or_default()
                .resolve()
                .map_err(|e| anyhow::anyhow!(e))?,
            agents: crate::agents::settings(&file, &directory, commerce.admin.clone())?,
            commerce,
            llm: file.llm.clone(),
            mcp: file.mcp.redacted(),
            rag: file.rag.resolve()?,
            rules: file
                .rules
                .clone()
                .unwrap_or_else(krake_core::commerce::default_rules),
            directory,
            kpi_defs,
            kpi: file.kpi.clone().unwrap_or_default(),
            kpi_entries: file.kpis.clone(),
            binance: file.binance.clone(),
        })
    }

    /// The settings in effect, as a config file.
    pub fn effective(&self) -> FileConfig {
        let (shopify, gelato) = self.commerce.effective();
        FileConfig {
            data_dir: Some(self.data_dir.clone()),
            listen: Some(self.listen.to_string()),
            database_url: Some(krake_store::redact_url(&self.database_url)),
            log_format: Some(self.log_format.as_str().to_owned()),
            sweep_interval_secs: Some(self.sweep_interval_secs),
            schedule_timezone: Some(self.schedule_timezone.name().to_owned()),
            coordinator_tick_secs: Some(self.coordinator_tick_secs),
            commerce_lease_secs: Some(self.commerce_lease_secs),
            commerce_workers: self.commerce_workers,
            schedule_grace_secs: Some(self.schedule_grace_secs),
            workspaces: Some(krake_core::config::file::effective_workspaces(
                &self.directory,
            )),
            agents: krake_core::config::file::effective_agents(
                &self.directory,
                &self.agents.policies,
            ),
            schedules: self
                .schedules
                .iter()
                .map(|s| (s.name.clone(), s.effective()))
                .collect(),
            shopify: Some(shopify),
            gelato: Some(gelato),
            rules: Some(self.rules.clone()),
            telegram: self.telegram.as_ref().map(TelegramFile::effective),
            discord: self
                .discord
                .enabled()
                .then(|| DiscordFile::effective(&self.discord)),
            web: Some(WebFile::effective(&self.web)),
            http: Some(krake_web::server::HttpFile::effective(&self.http)),
            llm: self.llm.clone(),
            budgets: BudgetsFile::effective(&self.agents.budgets),
            agent_runs: AgentRunsFile::effective(&self.agents.limits, self.agents.concurrency),
            rag: krake_rag::settings::RagFile::effective(&self.rag),
            mcp: self.mcp.clone(),
            kpi: Some(self.kpi.clone()),
            kpis: self.kpi_entries.clone(),
            binance: self.binance.clone(),
        }
    }

    /// `krake config`: the effective settings as TOML, secrets as `***`, with a header that says
    /// which fronts are off and why.
    pub fn redacted(&self) -> anyhow::Result<String> {
        let mut out = format!(
            "# effective configuration{}\n# secrets show as \"***\"; keys left out are unset\n",
            self.config_file
                .as_ref()
                .map(|p| format!(" (file: {})", p.display()))
                .unwrap_or_else(|| " (no config file)".into())
        );
        if self.telegram.is_none() {
            out.push_str("# telegram: off (set KRAKE_TELEGRAM_TOKEN to turn it on)\n");
        }
        if !self.discord.enabled() {
            out.push_str(
                "# discord: off (set KRAKE_DISCORD_TOKEN or KRAKE_DISCORD_PUBLIC_KEY to turn it on)\n",
            );
        }
        if self.agents.model.is_none() {
            out.push_str("# models: none (offline mode; add [[llm.providers]] to use one)\n");
        }
        out.push('\n');
        out.push_str(&toml::to_string(&self.effective()).context("writing the settings as TOML")?);
        Ok(out)
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
}
