//! # krake-bench
//!
//! Krake's benchmarks, each beside a baseline measured in the same run, as the `krake-bench`
//! binary (`cargo run --release -p krake-bench -- <benchmark>`; they used to be `krake bench`).
//! Durability: SQLite runs in WAL with `synchronous=NORMAL` (a commit survives a process crash,
//! `kill -9`; the last commits may be lost on power loss); PostgreSQL runs with the server's
//! settings (`synchronous_commit=on` by default).
//!
//! - [`common`]: scratch stores, histograms, `wrk`, a loopback server, the `krake` binary.
//! - [`store`]: `inbox` (list 50 threads) and `outbox` (claim + complete throughput).
//! - [`webhooks`]: stored Shopify webhooks per second beside a bare handler.
//! - [`telegram`]: a Telegram update in to its reply queued, in process.
//! - [`reply`]: Telegram webhook in to `sendMessage` out through a running `krake serve`.
//! - [`discord`]: Discord interactions: verification and dispatch.
//! - [`web`]: the web front: WebSocket memory, push fan-out, REST requests/s.
//! - [`schedules`]: the schedule coordinator's tick cost and drift.
//! - [`agents`]: agent run overhead and concurrent runs against a slow model.
//! - [`stream`]: a streamed answer's first words from the model to the web socket.
//! - [`rag`]: retrieval latency in embedded Qdrant and the local embedder's throughput.

pub mod agents;
pub mod common;
pub mod discord;
pub mod kpis;
pub mod learn;
pub mod rag;
pub mod reply;
pub mod schedules;
pub mod store;
pub mod stream;
pub mod telegram;
pub mod visitors;
pub mod web;
pub mod webhooks;

use clap::{Parser, Subcommand};
use krake_bot::settings::{Overrides, Settings};
use std::path::PathBuf;

/// Krake's benchmarks, each beside a baseline measured in the same run. They moved here from
/// `krake bench`, which the `krake` binary no longer has: run one with
/// `cargo run --release -p krake-bench -- <benchmark>`.
#[derive(Debug, Parser)]
#[command(name = "krake-bench", version)]
pub struct Cli {
    /// Settings shared with `krake` (the data directory holds the local embedder's weights).
    #[command(flatten)]
    pub overrides: Overrides,
    /// The `krake` binary that benchmarks against a running Krake start [default: `krake`
    /// beside this binary, e.g. target/release/krake].
    #[arg(long, env = "KRAKE_BIN", global = true)]
    pub krake_bin: Option<PathBuf>,
    /// The benchmark.
    #[command(subcommand)]
    pub command: BenchCmd,
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
    /// The customer widget against a `krake serve` child: memory per connected visitor, and a
    /// visitor's question to the answer telling them a person will reply (no model).
    Visitors {
        /// Visitors to connect.
        #[arg(long, default_value_t = 1000)]
        visitors: usize,
        /// Questions asked (one after another).
        #[arg(long, default_value_t = 200)]
        questions: usize,
    },
    /// Telegram update in to reply queued (no network), on SQLite, against core's
    /// `Krake::accept` alone as baseline: p50/p99/max latency.
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
    /// A streamed answer's first words from the model to a web socket client, in process
    /// (engine, stream pump, web front, socket), beside a frame pushed straight into the same
    /// session.
    Stream {
        /// Streamed answers (and as many direct pushes).
        #[arg(long, default_value_t = 500)]
        answers: u32,
    },
    /// Knowledge retrieval: filtered query latency in embedded Qdrant over 100,000 chunks
    /// (sparse, dense, hybrid, hybrid with the best-sentence step; embedding excluded) and the
    /// local embedder's ingestion throughput.
    Rag(crate::rag::BenchRagArgs),
    /// A file sent in chat learned end to end in process (filed on the accept path, read,
    /// chunked, embedded and stored group by group), beside `krake ingest` of the same shape.
    Learn {
        /// Product sections in the generated Markdown file (about one passage each).
        #[arg(long, default_value_t = 2000)]
        sections: usize,
    },
    /// The Management overview and one workspace's KPI board in process, over the five
    /// default workspaces with a year of daily history each.
    Kpis {
        /// Days of history per metric.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Timed overviews (and as many boards).
        #[arg(long, default_value_t = 1000)]
        iterations: u32,
        /// Also run on this PostgreSQL server (an admin URL; a scratch database is created).
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Reply latency through a running `krake serve`: Telegram webhook updates in distinct
    /// chats at fixed rates until each reply reaches `sendMessage` at a local fake Bot API,
    /// beside the fake receiving a direct POST from this process (the HTTP floor).
    Reply(crate::reply::ReplyArgs),
}

/// Runs one benchmark.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(&cli.overrides, None)?;
    init_logging();
    common::print_conditions();
    let krake_bin = || common::krake_bin(cli.krake_bin.as_deref());
    match cli.command {
        BenchCmd::Inbox { iterations } => store::inbox(settings, iterations).await,
        BenchCmd::Rag(args) => rag::bench(settings, args).await,
        BenchCmd::Webhooks {
            seconds,
            connections,
        } => webhooks::run(seconds, connections).await,
        BenchCmd::Discord {
            requests,
            concurrency,
        } => discord::run(requests, concurrency).await,
        BenchCmd::Outbox {
            jobs,
            batch,
            postgres,
        } => store::outbox(jobs, batch, postgres).await,
        BenchCmd::Telegram { updates } => telegram::run(settings, updates).await,
        BenchCmd::Visitors {
            visitors,
            questions,
        } => visitors::run(&krake_bin()?, visitors, questions).await,
        BenchCmd::Web {
            sessions,
            fanout,
            rounds,
            seconds,
        } => web::run(&krake_bin()?, sessions, fanout, rounds, seconds).await,
        BenchCmd::Schedules {
            schedules,
            ticks,
            days,
            postgres,
        } => schedules::run(&settings, schedules, ticks, days, postgres).await,
        BenchCmd::Agents {
            runs,
            concurrent,
            rounds,
            delay_ms,
            in_process,
        } => agents::run(runs, concurrent, rounds, delay_ms, in_process).await,
        BenchCmd::Reply(args) => reply::run(&krake_bin()?, args).await,
        BenchCmd::Stream { answers } => stream::run(answers).await,
        BenchCmd::Kpis {
            days,
            iterations,
            postgres,
        } => kpis::run(&settings, days, iterations, postgres).await,
        BenchCmd::Learn { sections } => learn::run(&settings, sections).await,
    }
}

/// Warnings only (`KRAKE_LOG` overrides): the figures go to stdout.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("KRAKE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("warn,qdrant_edge=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
