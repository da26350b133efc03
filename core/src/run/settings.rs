//! `[agent_runs]` and `[budgets]` in the config file: read into [`RunLimits`] (with the
//! process's run concurrency) and [`Budgets`], and written back for `krake config`.

use super::RunLimits;
use crate::config::Directory;
use crate::ledger::Budgets;
use crate::settings::{SettingsError, known_workspace};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// `[budgets]`: monthly model budgets in US dollars.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetsFile {
    /// Workspace slug → dollars per month.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub workspaces: BTreeMap<String, f64>,
    /// Agent name → dollars per month (across workspaces).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub agents: BTreeMap<String, f64>,
}

/// `[agent_runs]`: limits of agent runs.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentRunsFile {
    /// Model calls per run at most (default 8).
    pub max_turns: Option<u32>,
    /// Corrections fed back before a run fails (default 3).
    pub max_corrections: Option<u32>,
    /// Seconds a worker's lease on a run lasts, renewed at every step (default 120); after a
    /// crash the run resumes this long later.
    pub lease_secs: Option<u64>,
    /// Claims of a run before it is failed and escalated (default 2).
    pub max_attempts: Option<i32>,
    /// Prompt token budget; older thread memory is cut to stay under it (default 6000).
    pub prompt_tokens: Option<u64>,
    /// Tokens a model may write per call (default 1024).
    pub max_output_tokens: Option<u32>,
    /// Runs one process works on at once (default 64).
    pub concurrency: Option<u32>,
    /// How many levels deep agents may hand sub-tasks to each other with `delegate`
    /// (default 2; 0 turns delegation off).
    pub delegation_depth: Option<u32>,
    /// Hours an approval opened by a run waits for a decision before it expires and the run
    /// is marked `expired` (default 72).
    pub approval_expiry_hours: Option<u64>,
}

/// The default of `[agent_runs] concurrency`.
pub const DEFAULT_CONCURRENCY: u32 = 64;

impl AgentRunsFile {
    /// The run limits and the runs one process works on at once.
    pub fn resolve(&self) -> (RunLimits, u32) {
        let d = RunLimits::default();
        let limits = RunLimits {
            max_turns: self.max_turns.unwrap_or(d.max_turns).max(1),
            max_corrections: self.max_corrections.unwrap_or(d.max_corrections),
            max_attempts: self.max_attempts.unwrap_or(d.max_attempts).max(1),
            lease: self
                .lease_secs
                .map_or(d.lease, |s| Duration::from_secs(s.max(1))),
            max_output_tokens: self
                .max_output_tokens
                .unwrap_or(d.max_output_tokens)
                .max(16),
            prompt_tokens: self.prompt_tokens.unwrap_or(d.prompt_tokens).max(500),
            max_delegation_depth: self
                .delegation_depth
                .unwrap_or(d.max_delegation_depth)
                .min(5),
            approval_expiry: self.approval_expiry_hours.map_or(d.approval_expiry, |h| {
                Duration::from_secs(h.clamp(1, 24 * 365) * 3600)
            }),
            ..d
        };
        let concurrency = self
            .concurrency
            .unwrap_or(DEFAULT_CONCURRENCY)
            .clamp(1, 1000);
        (limits, concurrency)
    }

    /// The limits in effect, as they would be written in the file.
    pub fn effective(limits: &RunLimits, concurrency: u32) -> Self {
        Self {
            max_turns: Some(limits.max_turns),
            max_corrections: Some(limits.max_corrections),
            lease_secs: Some(limits.lease.as_secs()),
            max_attempts: Some(limits.max_attempts),
            prompt_tokens: Some(limits.prompt_tokens),
            max_output_tokens: Some(limits.max_output_tokens),
            concurrency: Some(concurrency),
            delegation_depth: Some(limits.max_delegation_depth),
            approval_expiry_hours: Some(limits.approval_expiry.as_secs() / 3600),
        }
    }
}

fn micros(dollars: f64, what: &str) -> Result<i64, SettingsError> {
    if !(dollars.is_finite() && dollars >= 0.0) {
        return Err(SettingsError::new(format!(
            "{what}: a budget is a number of US dollars, 0 or more (got {dollars})"
        )));
    }
    Ok((dollars * 1_000_000.0).round() as i64)
}

impl BudgetsFile {
    /// The budgets in micro-dollars, each workspace and agent checked against `directory`
    /// (`router`, the natural-language router, has a budget too).
    pub fn resolve(&self, directory: &Directory) -> Result<Budgets, SettingsError> {
        let mut budgets = Budgets::default();
        for (ws, d) in &self.workspaces {
            let slug = known_workspace(directory, ws, "[budgets.workspaces]")?;
            budgets
                .workspaces
                .insert(slug.to_string(), micros(*d, "[budgets.workspaces]")?);
        }
        for (agent, d) in &self.agents {
            let known = directory.agent(agent).is_some() || agent.eq_ignore_ascii_case("router");
            if !known {
                return Err(SettingsError::new(format!(
                    "[budgets.agents]: there is no agent `{agent}`"
                )));
            }
            budgets
                .agents
                .insert(agent.to_lowercase(), micros(*d, "[budgets.agents]")?);
        }
        Ok(budgets)
    }

    /// The budgets in effect, in dollars, as they would be written in the file.
    pub fn effective(budgets: &Budgets) -> Self {
        let dollars = |m: &BTreeMap<String, i64>| {
            m.iter()
                .map(|(k, v)| (k.clone(), *v as f64 / 1e6))
                .collect()
        };
        Self {
            workspaces: dollars(&budgets.workspaces),
            agents: dollars(&budgets.agents),
        }
    }
}
