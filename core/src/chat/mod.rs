//! Chat: the whole command grammar every front speaks, and its wording.
//!
//! - [`command`]: the one typed [`Command`](command::Command) and its parser (slash syntax and
//!   natural phrasings), with the command table every front's help and slash-command
//!   registration is generated from.
//! - [`schedule`] and [`folder`]: the grammar of `/schedule …` and `/folder …` (re-exported
//!   by [`crate::schedule`] and [`crate::folder`], whose services run them).
//! - [`options`]: typed slash-command options (Discord) into a `Command`, through the same table.
//! - [`runs`]: `/runs`, `/run` and `/cancel`: agents' runs as replies.
//! - [`text`]: the one place outcomes and errors become a chat [`Reply`](crate::reply::Reply):
//!   threads, refusals, help, failures.

pub mod command;
pub mod folder;
pub mod options;
pub mod runs;
pub mod schedule;
pub mod text;
