//! # krake-core
//!
//! The words Krake speaks, free of any vendor crate. Every front (Discord, Telegram, web chat,
//! the terminal, webhooks) converts what it receives into these types and renders what comes back.
//!
//! Layout:
//! - [`workspace`]: workspaces (`lunavo`, `monarch`, …) and their slugs.
//! - [`agent`]: the agent roster (Buddy, Dexter, … Soshie) and their roles.
//! - [`actor`]: who acts, through which front, with which role.
//! - [`inbox`]: the To Do inbox: threads, kinds, statuses, approvers, expiry; its rules for
//!   every caller (`inbox::rules`) and typed operations (`inbox::api`).
//! - [`chat`]: the whole chat grammar: the typed [`Command`](chat::command::Command) and its
//!   parser (slash syntax and natural phrasings, `/schedule` and `/folder` included), typed
//!   slash options to a `Command`, and the one place outcomes, refusals and errors read as
//!   chat replies (`chat::text`).
//! - [`reply`]: the [`Reply`](reply::Reply) every front renders, with typed button payloads.
//! - [`accept`]: the one accept path, [`Krake::accept`](service::Krake::accept), for everything a
//!   person sends through any front.
//! - [`inbound`] and [`outbox`]: the durable in and out queues' types.
//! - [`secret`]: [`Secret`](secret::Secret), which never prints.
//! - [`ports`]: the small traits core needs from the outside (repositories, clock).
//! - [`service`]: [`Krake`](service::Krake), which takes a command and returns a reply.
//! - [`backoff`]: [`Backoff`](backoff::Backoff), exponential backoff with jitter, the one
//!   retry pacing.
//! - [`supervise`]: fronts that survive their platform: the supervisor and the registry of
//!   every front's state.
//! - [`delivery`]: the generic outbox worker ([`Deliverer`](delivery::Deliverer)) over a
//!   front's [`Sender`](delivery::Sender), and [`Routes`](delivery::Routes) for new threads.
//! - [`commerce`]: shop and print-partner events, KPIs, event rules and their processor.
//! - [`dead_letters`]: undeliverable messages for owners: listed, sent again or given up.
//! - [`config`]: the domain part of configuration (workspaces, agents) and their config-file
//!   sections.
//! - [`settings`]: what every config section shares (`KRAKE_…` overrides, the settings error).
//! - [`schedule`]: cron schedules in time zones, the schedule port, `[schedules]` in the config.
//! - [`folder`]: agents' folders (typed tables), CSV import/export, the folder port, and typed
//!   folder reads (HTTP API, dashboard) under the folder rules.
//! - [`coordinator`]: runs due schedules once each and assigns tasks to agents.
//! - [`web_accounts`]: passwords and web sign-in sessions (the port).
//! - [`knowledge`]: the [`Retriever`](knowledge::Retriever) port that RAG fills; the
//!   documents threads, folders and finished runs become, their sync and run memory.
//! - [`model`]: the [`ChatModel`](model::ChatModel) port (messages, tools, usage, errors).
//! - [`policy`]: per-agent tools, thresholds and approvals, and the verdict on a result.
//! - [`run`]: agent runs (durable, leased, stepped) and the [`Runner`](run::Runner) engine;
//!   `tools` holds the tools' schemas and argument checks.
//! - [`run_worker`]: the worker loop over queued runs and the recovery loop, on an injected
//!   clock.
//! - [`actions`]: what approved actions do (shop port, chat delivery).
//! - [`schedule_handoff`]: ran schedule occurrences become agent runs.
//! - [`ledger`]: the cost ledger and monthly budgets.
//! - [`router`]: natural-language routing: a model picks a typed command.
//! - [`tool_servers`]: tools from outside (MCP) servers: the port, per-tool policy (act,
//!   approval, deny), agents' `mcp:SERVER/TOOL` grants and results fenced as data.
//! - [`text`]: small text helpers shared by core and the fronts (one-line previews, edit distance).

pub mod accept;
pub mod actions;
pub mod actor;
pub mod agent;
pub mod backoff;
pub mod chat;
pub mod commerce;
pub mod config;
pub mod coordinator;
pub mod dead_letters;
pub mod delivery;
pub mod folder;
pub mod inbound;
pub mod inbox;
pub mod knowledge;
pub mod kpi;
pub mod ledger;
pub mod model;
pub mod outbox;
pub mod policy;
pub mod ports;
pub mod reply;
pub mod router;
pub mod run;
pub mod run_worker;
pub mod schedule;
pub mod schedule_handoff;
pub mod secret;
pub mod service;
pub mod settings;
pub mod supervise;
pub mod text;
pub mod time;
pub mod tool_servers;
pub mod visitor;
pub mod web_accounts;
pub mod workspace;

#[cfg(test)]
mod test_fakes;

pub use actor::{Actor, Front, Role, UserName};
pub use chat::command::{Command, CommandParser, Parsed};
/// Typed inbox operations (kept at their old path).
pub use inbox::api as thread_api;
pub use reply::Reply;
pub use service::Krake;
