//! The `krake` command line.

use crate::settings::Overrides;
use clap::{Parser, Subcommand};

/// Krake: a chat-first operations bot.
#[derive(Debug, Parser)]
#[command(name = "krake", version, about, long_about = None)]
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
    /// Run Krake: the HTTP server (health probes now; API, web chat and webhooks as they land),
    /// the expiry sweeper and, later, the platform fronts.
    Serve(ServeArgs),
    /// Chat with Krake in the terminal as user `local` (reads one message per line when piped).
    Chat,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the effective configuration, secrets redacted.
    Config,
    /// Fill the inbox with a few realistic threads in several workspaces.
    Demo,
    /// Manage users: add them with a role, list them, make link codes for chat accounts.
    #[command(subcommand)]
    User(UserCmd),
    /// Run a benchmark and print its figures.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// Discord: register the slash commands.
    #[command(subcommand)]
    Discord(DiscordCmd),
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
    /// Fill the inbox with demo threads first (only when it is empty).
    #[arg(long)]
    pub demo: bool,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// Parse and execute `/todo` over 50 threads in process on SQLite: p50/p99/max latency.
    Inbox {
        /// How many timed iterations.
        #[arg(long, default_value_t = 5000)]
        iterations: u32,
    },
    /// Outbox claim + complete throughput on SQLite (and PostgreSQL with --postgres), against a
    /// raw INSERT/UPDATE loop as baseline.
    Outbox {
        /// How many jobs.
        #[arg(long, default_value_t = 20000)]
        jobs: u32,
        /// Jobs claimed per call.
        #[arg(long, default_value_t = 100)]
        batch: u32,
        /// Also run on this PostgreSQL server (an admin URL; a scratch database is created).
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Discord interactions: signature verification plus dispatch (p50/p99/max, in process)
    /// and verified requests/s over loopback, each beside a bare axum handler.
    Discord {
        /// Requests per measurement.
        #[arg(long, default_value_t = 20000)]
        requests: u32,
        /// Concurrent connections for the loopback measurement.
        #[arg(long, default_value_t = 32)]
        concurrency: u32,
    },
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
    },
    /// List users and their roles.
    List,
    /// Print a new personal API token for scripts (`Authorization: Bearer …`); only its hash is kept.
    Token {
        /// The user name.
        name: String,
        /// What the token is for.
        #[arg(long, default_value = "api")]
        label: String,
    },
    /// Print a one-time code (valid 15 minutes) that links a Telegram or Discord account to
    /// this user: send `/link CODE` to the bot there.
    LinkCode {
        /// The user name.
        name: String,
    },
}
