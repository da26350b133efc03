//! Schedules: recurring tasks for agents, written as cron expressions or natural phrasings
//! ("every monday 09:00 Europe/Berlin", "every weekday at 8"), evaluated in a time zone.
//!
//! - [`Cadence`]: a validated cron expression in a time zone and its next occurrences,
//!   with Krake's daylight-saving rules (see [`Cadence::next_after`]).
//! - [`parse_when`]: natural phrasings and raw cron to a [`WhenSpec`].
//! - [`ScheduleCommand`] and [`parse_schedule_command`]: the `/schedule` family of commands.
//! - [`Krake::schedules_for`](crate::service::Krake::schedules_for): the schedules a person
//!   sees, with their last run, for a page.
//! - [`ScheduleRepo`]: the storage port; claiming an occurrence is a compare-and-set on the
//!   schedule's `next_run_at`, so with several `krake serve` processes exactly one runs it.

mod cadence;
mod overview;
mod repo;
pub mod settings;
mod when;

pub use crate::chat::schedule::{
    ScheduleCommand, ScheduleRequest, parse_natural_schedule, parse_schedule_command,
    starts_like_schedule,
};
pub use cadence::{Cadence, ScheduleError, local_time, parse_timezone};
pub use overview::ScheduleStatus;
pub use repo::{
    Assignment, CatchUp, NewSchedule, RunTrigger, Schedule, ScheduleId, ScheduleRepo, ScheduleRun,
};
pub use when::{WhenSpec, parse_when};
