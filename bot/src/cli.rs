//! The `krake` command line.

use crate::settings::Overrides;
use clap::{Parser, Subcommand};

/// Krake, a chat-first operations bot. `krake serve` starts it (web on http://127.0.0.1:8080);
/// `krake chat` talks to it in this terminal.
#[derive(Debug, Parser)]
#[command(name = "krake", version, long_about = None)]
pub struct Cli {
    /// Settings that every command shares.
    #[command(flatten)]
    pub overrides: Overrides,
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run Krake: the web dashboard, web chat, API and webhooks on one HTTP listener, the
    /// Telegram and Discord fronts when their tokens are set, agents, schedules and deliveries.
    Serve(ServeArgs),
    /// Chat with Krake in the terminal as user `local` (reads one message per line when piped).
    Chat,
    /// Serve Krake's commands as MCP tools over stdin/stdout (for a desktop assistant), as the
    /// user of the personal API token in KRAKE_MCP_TOKEN.
    Mcp,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the effective configuration, secrets redacted.
    Config,
    /// Fill the inbox with a few realistic threads in several workspaces.
    Demo,
    /// Manage users: add them with a role, list them, make link codes for chat accounts.
    #[command(subcommand)]
    User(UserCmd),
    /// Discord: register the slash commands.
    #[command(subcommand)]
    Discord(DiscordCmd),
    /// Export an agent's folder to CSV, or import CSV rows into it (all or nothing).
    #[command(subcommand)]
    Folder(FolderCmd),
    /// Make files the knowledge of a workspace (Markdown, text, HTML, CSV; folders recursively):
    /// unchanged files are skipped, changed ones replaced, deleted ones removed. With --store:
    /// the inbox threads and agent folders instead.
    Ingest(crate::rag::IngestArgs),
    /// Evaluate retrieval quality.
    #[command(subcommand)]
    Eval(crate::rag::EvalCmd),
    /// Push data points that KPIs are computed from (as user `local`).
    #[command(subcommand)]
    Metric(MetricCmd),
    /// The customer widget's publishable keys (for a shop's own pages): create, list, revoke.
    #[command(subcommand)]
    Key(KeyCmd),
}

/// `krake key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Make a publishable key for WORKSPACE's customer widget: visitors of the --origin sites
    /// chat with --agent (Cassie by default). Prints the key once.
    Create {
        /// The workspace (`lunavo`).
        workspace: String,
        /// The agent that answers visitors.
        #[arg(long)]
        agent: Option<String>,
        /// A site allowed to use the key (`https://shop.example.com`); repeat for several.
        #[arg(long = "origin", required = true)]
        origins: Vec<String>,
    },
    /// List the keys (of one workspace): prefix, workspace, agent, origins, made, revoked.
    List {
        /// Only this workspace's keys.
        workspace: Option<String>,
    },
    /// Revoke a key by its prefix as `krake key list` shows it: its visitors are refused.
    Revoke {
        /// The key's first characters (`kpub_3f9a2c`).
        prefix: String,
    },
}

/// `krake metric …`.
#[derive(Debug, Subcommand)]
pub enum MetricCmd {
    /// Store one data point of a metric for a workspace (`krake metric push lunavo visitors 1200`).
    Push {
        /// The workspace (`lunavo`).
        workspace: String,
        /// The metric (`visitors`).
        name: String,
        /// The value.
        #[arg(allow_negative_numbers = true)]
        value: f64,
        /// When it was measured: RFC 3339 or a day (`2026-12-07`); default now.
        #[arg(long)]
        at: Option<String>,
        /// An idempotency key: pushing the same key again stores nothing.
        #[arg(long)]
        key: Option<String>,
    },
}

/// `krake folder …`.
#[derive(Debug, Subcommand)]
pub enum FolderCmd {
    /// Write a folder as CSV (header = column names) to a file, or stdout with `-`.
    Export {
        /// The agent (`soshie`).
        agent: String,
        /// The folder's name.
        folder: String,
        /// The file to write [default: stdout].
        #[arg(long, short, default_value = "-")]
        output: String,
    },
    /// Add the rows of a CSV file to a folder; any bad row imports nothing and every bad row
    /// is listed.
    Import {
        /// The agent.
        agent: String,
        /// The folder's name.
        folder: String,
        /// The CSV file (`-` for stdin).
        file: String,
    },
}

/// `krake discord …`.
#[derive(Debug, Subcommand)]
pub enum DiscordCmd {
    /// Register (bulk-overwrite) Krake's slash commands, globally or in one guild (instant).
    Register {
        /// Register in this guild only (a guild id).
        #[arg(long)]
        guild: Option<String>,
    },
}

/// Flags of `krake serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "KRAKE_LISTEN")]
    pub listen: Option<String>,
    /// Fill the inbox with demo threads first (only when it is empty) and every workspace's
    /// KPIs with nine weeks of history marked as demo data.
    #[arg(long)]
    pub demo: bool,
}

/// `krake user …`.
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Add a user, or change their role (everywhere, or in one workspace with --workspace).
    Add {
        /// The user name.
        name: String,
        /// owner, admin, member or viewer.
        #[arg(long, default_value = "member")]
        role: String,
        /// Only in this workspace (the user is a guest elsewhere unless given a role there too).
        #[arg(long)]
        workspace: Option<String>,
        /// Set the web sign-in password from the first line of stdin (or set
        /// `KRAKE_USER_PASSWORD`); it is never printed and only its argon2 hash is kept.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users and their roles.
    List,
    /// Print a new API token (`Authorization: Bearer …` for scripts, or `data-token` for the
    /// chat widget with --widget); only its hash is kept. Or list or revoke a user's tokens.
    Token {
        /// The user name.
        name: String,
        /// What the token is for.
        #[arg(long, default_value = "api")]
        label: String,
        /// The token stops working after this many days (default: never).
        #[arg(long, value_name = "DAYS")]
        expires_days: Option<u64>,
        /// A widget token: only the web chat of this workspace, as at most a member there;
        /// refused by the API.
        #[arg(long, value_name = "WORKSPACE")]
        widget: Option<String>,
        /// List the user's tokens (ids, labels, scopes, expiry; never the tokens).
        #[arg(long, conflicts_with_all = ["revoke", "widget", "expires_days"])]
        list: bool,
        /// Revoke the user's token with this id (from --list), or `all` of them.
        #[arg(long, value_name = "ID|all", conflicts_with_all = ["widget", "expires_days"])]
        revoke: Option<String>,
    },
    /// Print a one-time code (valid 15 minutes) that links a Telegram or Discord account to
    /// this user: send `/link CODE` to the bot there.
    LinkCode {
        /// The user name.
        name: String,
    },
}
