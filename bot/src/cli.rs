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
    /// Verified, deduplicated, durably stored Shopify webhooks per second, against a bare axum
    /// handler answering 200, side by side with `wrk` (Debian package `wrk`) on 127.0.0.1.
    Webhooks {
        /// Seconds per run.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// Concurrent connections. The default, 128, is where both servers reach their peak
        /// rate on 2 cores (the bare handler already at 32; Krake needs more requests in flight
        /// to fill its group commits).
        #[arg(long, default_value_t = 128)]
        connections: u32,
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
    /// The web front against a `krake serve` child: memory per idle WebSocket session, push
    /// latency of one change to many sessions, and REST inbox requests/s with wrk.
    Web {
        /// Idle sessions to open.
        #[arg(long, default_value_t = 10000)]
        sessions: usize,
        /// Sessions that receive each change.
        #[arg(long, default_value_t = 1000)]
        fanout: usize,
        /// Changes pushed.
        #[arg(long, default_value_t = 20)]
        rounds: usize,
        /// Seconds per wrk run.
        #[arg(long, default_value_t = 8)]
        seconds: u32,
    },
    /// Telegram update in to reply queued (no network), on SQLite, against core's
    /// `handle_message` alone as baseline: p50/p99/max latency.
    Telegram {
        /// How many timed updates.
        #[arg(long, default_value_t = 5000)]
        updates: u32,
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
    /// The schedule coordinator with 10,000 active schedules: per-tick cost when nothing and
    /// when some are due, and drift over a simulated week on a manual clock.
    Schedules {
        /// How many active schedules.
        #[arg(long, default_value_t = 10000)]
        schedules: u32,
        /// Timed ticks for each of the two tick measurements.
        #[arg(long, default_value_t = 2000)]
        ticks: u32,
        /// Simulated days for the drift run (0 skips it).
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// Also run on this PostgreSQL server (an admin URL; a scratch database is created).
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Agent runs: overhead per run without model time (in process and over loopback HTTP),
    /// then rounds of concurrent runs against a slow local model server, checking that none is
    /// lost and that memory does not grow.
    Agents {
        /// Timed sequential runs for the overhead measurement.
        #[arg(long, default_value_t = 300)]
        runs: u32,
        /// Runs at once in each concurrency round.
        #[arg(long, default_value_t = 200)]
        concurrent: u32,
        /// Concurrency rounds.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Milliseconds the model server takes per call in the concurrency rounds.
        #[arg(long, default_value_t = 1000)]
        delay_ms: u64,
        /// Concurrency rounds against an in-process model instead of the HTTP server (tells
        /// the engine's memory apart from the HTTP stack's).
        #[arg(long)]
        in_process: bool,
    },
    /// Knowledge retrieval: filtered query latency in embedded Qdrant over 100,000 chunks
    /// (sparse, dense, hybrid, hybrid with the best-sentence step; embedding excluded) and the
    /// local embedder's ingestion throughput.
    Rag(crate::rag::BenchRagArgs),
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
