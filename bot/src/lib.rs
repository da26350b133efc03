//! # krake-bot
//!
//! Wires Krake together and holds the `krake` command line. `main.rs` only parses flags and
//! calls [`run`].
//!
//! - [`cli`]: the command line (clap).
//! - [`settings`]: configuration from file, environment and flags.
//! - [`wiring`]: opening the store and building the core service.
//! - [`serve`]: `krake serve`: HTTP, sweeper, graceful shutdown.
//! - [`chat`]: `krake chat`: the terminal front.
//! - [`demo`]: `krake demo`: realistic sample threads.
//! - [`users`]: `krake user`: accounts, roles and link codes.
//! - [`telegram`]: the Telegram front's start inside `krake serve`.
//! - [`discord`]: the Discord front in `krake serve`, and `krake discord register`.
//! - [`coordinator`]: the schedule coordinator's loop in `krake serve`.
//! - [`web`]: the web front in `krake serve`: routes, deliverer.
//!
//! Metrics live in krake-metrics, the HTTP listener and its limits in `krake_web::server`,
//! and each config section with the part that owns it.
//! - [`agents`]: agent settings, the run engine on the store, the run worker in `krake serve`.
//! - [`fanout`]: thread changes pushed to the web sessions of every process (PostgreSQL NOTIFY).
//! - [`folder_cli`]: `krake folder export|import`: folders to and from CSV files.
//! - [`rag`]: the knowledge base (RAG): its retriever, `krake ingest`, `krake eval rag`.

pub mod agents;
pub mod chat;
pub mod cli;
pub mod coordinator;
pub mod demo;
pub mod discord;
pub mod fanout;
pub mod folder_cli;
pub mod keys;
pub mod mcp;
pub mod rag;
pub mod serve;
pub mod settings;
pub mod telegram;
pub mod users;
pub mod web;
pub mod wiring;

use cli::{Cli, Cmd};
use settings::{LogFormat, Settings};

/// Runs one `krake` invocation.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let listen = match &cli.command {
        Cmd::Serve(s) => s.listen.as_deref(),
        _ => None,
    };
    let settings = Settings::load(&cli.overrides, listen)?;
    let quiet = matches!(
        cli.command,
        Cmd::Chat
            | Cmd::Mcp
            | Cmd::Config
            | Cmd::User(_)
            | Cmd::Folder(_)
            | Cmd::Discord(_)
            | Cmd::Ingest(_)
            | Cmd::Eval(_)
            | Cmd::Metric(_)
            | Cmd::Key(_)
    );
    init_logging(settings.log_format, quiet);
    match cli.command {
        Cmd::Serve(args) => serve::serve(settings, args.demo).await,
        Cmd::Chat => chat::chat(settings).await,
        Cmd::Mcp => mcp::stdio(settings).await,
        Cmd::Migrate => wiring::open_store(&settings, true).await.map(|_| ()),
        Cmd::Config => {
            print!("{}", settings.redacted()?);
            Ok(())
        }
        Cmd::Demo => demo::demo_command(settings).await,
        Cmd::User(u) => users::run(settings, u).await,
        Cmd::Folder(f) => folder_cli::run(settings, f).await,
        Cmd::Ingest(a) => rag::ingest(settings, a).await,
        Cmd::Eval(e) => rag::eval(settings, e).await,
        Cmd::Metric(cli::MetricCmd::Push {
            workspace,
            name,
            value,
            at,
            key,
        }) => {
            let store = wiring::open_store(&settings, false).await?;
            let point = krake_core::kpi::PointInput {
                name,
                value,
                at,
                key,
            };
            let krake = wiring::krake(&store, &settings);
            match krake
                .push_metrics(&krake_core::Actor::local(), &workspace, &[point])
                .await?
            {
                Ok(p) if p.stored == 1 => println!("stored"),
                Ok(_) => println!("already stored (same --key)"),
                Err(e) => anyhow::bail!("{e}"),
            }
            Ok(())
        }
        Cmd::Key(k) => keys::run(settings, k).await,
        Cmd::Discord(cli::DiscordCmd::Register { guild }) => {
            discord::register(&settings, guild.as_deref()).await
        }
    }
}

fn init_logging(format: LogFormat, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if quiet {
        "warn,qdrant_edge=error"
    } else {
        "info,sqlx=warn,qdrant_edge=error"
    };
    let filter = EnvFilter::try_from_env("KRAKE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only on a terminal: a log written to a file or a journal stays plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
