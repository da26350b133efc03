//! `[[workspaces]]` and `[agents.NAME]` in the config file: read into a [`Directory`] and each
//! agent's [`AgentPolicy`], and written back from them for `krake config`.

use super::Directory;
use crate::agent::{Agent, AgentName, default_agents};
use crate::policy::AgentPolicy;
use crate::settings::SettingsError;
use crate::text::capitalise;
use crate::workspace::{Workspace, WorkspaceSlug, default_workspaces};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A workspace in the config file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceEntry {
    /// Display name.
    pub name: String,
    /// Slug; derived from the name when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
}

/// An agent in the config file: fields given override the default agent of that name.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEntry {
    /// Role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// One sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Workspaces (slugs), home first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspaces: Option<Vec<String>>,
    /// System prompt (`prompt` works too).
    #[serde(alias = "prompt", skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// The model it uses (one of a provider's `models`); default: the first provider's first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Sampling temperature (0 to 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// The tools it may call: reply, request_approval, escalate, search_knowledge, get_kpis,
    /// add_folder_entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
    /// Action kinds that always need approval: send_message, publish_post, change_price, refund.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needs_approval: Option<Vec<String>>,
    /// At or above this confidence it acts on its own (unless `needs_approval`); default 0.8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act_threshold: Option<f64>,
    /// Below this confidence its run is escalated; default 0.4.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalate_threshold: Option<f64>,
    /// Remove this agent from the roster.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

/// The workspaces (the defaults unless `workspaces` is given) and agents (the defaults with
/// `agents` applied: overridden, added or disabled).
pub fn directory(
    workspaces: Option<&[WorkspaceEntry]>,
    agents_file: &BTreeMap<String, AgentEntry>,
) -> Result<Directory, SettingsError> {
    let err = |e: &dyn std::fmt::Display| SettingsError::new(e.to_string());
    let list = match workspaces {
        None => default_workspaces(),
        Some(list) => list
            .iter()
            .map(|w| match &w.slug {
                Some(s) => Ok(Workspace {
                    slug: WorkspaceSlug::parse(s)?,
                    name: w.name.clone(),
                }),
                None => Workspace::from_name(&w.name),
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(&e))?,
    };
    let slugs = |v: &Vec<String>| {
        v.iter()
            .map(|s| WorkspaceSlug::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(&e))
    };
    let mut agents = default_agents();
    for (name, e) in agents_file {
        let pos = agents.iter().position(|a| a.name.matches(name));
        if e.disabled {
            if let Some(i) = pos {
                agents.remove(i);
            }
            continue;
        }
        match pos {
            Some(i) => {
                let a = &mut agents[i];
                if let Some(r) = &e.role {
                    a.role = r.clone();
                }
                if let Some(d) = &e.description {
                    a.description = d.clone();
                }
                if let Some(w) = &e.workspaces {
                    a.workspaces = slugs(w)?;
                }
                if let Some(p) = &e.system_prompt {
                    a.system_prompt = p.clone();
                }
            }
            None => {
                let (Some(role), Some(ws)) = (&e.role, &e.workspaces) else {
                    return Err(SettingsError::new(format!(
                        "new agent `{name}` needs at least `role` and `workspaces`"
                    )));
                };
                let name = AgentName::parse(&capitalise(name)).map_err(|e| err(&e))?;
                let description = e.description.clone().unwrap_or_default();
                agents.push(Agent {
                    system_prompt: e.system_prompt.clone().unwrap_or_else(|| {
                        format!("You are {name}, the {role} agent of a small business team. {description}")
                    }),
                    name,
                    role: role.clone(),
                    description,
                    workspaces: slugs(ws)?,
                });
            }
        }
    }
    if workspaces.is_some() {
        // Default agents follow a replaced workspace list: they keep the workspaces that still
        // exist, or move to the first one. Agents written in the file are checked as written.
        let known: Vec<WorkspaceSlug> = list.iter().map(|w| w.slug.clone()).collect();
        for a in &mut agents {
            if agents_file.keys().any(|k| a.name.matches(k)) {
                continue;
            }
            a.workspaces.retain(|w| known.contains(w));
            if a.workspaces.is_empty() {
                a.workspaces = known.first().cloned().into_iter().collect();
            }
        }
    }
    Directory::new(list, agents).map_err(|e| err(&e))
}

/// Each agent's run policy (lowercase name → policy): its role's defaults with the file's
/// `[agents.NAME]` run keys applied, checked.
pub fn policies(
    directory: &Directory,
    agents_file: &BTreeMap<String, AgentEntry>,
) -> Result<BTreeMap<String, AgentPolicy>, SettingsError> {
    let mut out = BTreeMap::new();
    for a in directory.agents() {
        let mut p = AgentPolicy::for_agent(a.name.as_str());
        if let Some((_, e)) = agents_file.iter().find(|(k, _)| a.name.matches(k)) {
            if let Some(m) = &e.model {
                p.model = Some(m.clone());
            }
            if let Some(t) = e.temperature {
                p.temperature = t;
            }
            if let Some(t) = &e.tools {
                p.tools = t.clone();
            }
            if let Some(n) = &e.needs_approval {
                p.needs_approval = n.clone();
            }
            if let Some(t) = e.act_threshold {
                p.act_threshold = t;
            }
            if let Some(t) = e.escalate_threshold {
                p.escalate_threshold = t;
            }
        }
        let key = a.name.as_str().to_lowercase();
        p.validate()
            .map_err(|e| SettingsError::new(format!("[agents.{key}]: {e}")))?;
        out.insert(key, p);
    }
    Ok(out)
}

/// The workspaces in effect, as they would be written in the file.
pub fn effective_workspaces(directory: &Directory) -> Vec<WorkspaceEntry> {
    directory
        .workspaces()
        .iter()
        .map(|w| WorkspaceEntry {
            name: w.name.clone(),
            slug: Some(w.slug.to_string()),
        })
        .collect()
}

/// The agents in effect with their run policies, as they would be written in the file (system
/// prompts left out: they are long).
pub fn effective_agents(
    directory: &Directory,
    policies: &BTreeMap<String, AgentPolicy>,
) -> BTreeMap<String, AgentEntry> {
    directory
        .agents()
        .iter()
        .map(|a| {
            let key = a.name.as_str().to_lowercase();
            let p = policies.get(&key);
            let entry = AgentEntry {
                role: Some(a.role.clone()),
                description: Some(a.description.clone()),
                workspaces: Some(a.workspaces.iter().map(|w| w.to_string()).collect()),
                system_prompt: None,
                model: p.and_then(|p| p.model.clone()),
                temperature: p.map(|p| p.temperature),
                tools: p.map(|p| p.tools.clone()),
                needs_approval: p.map(|p| p.needs_approval.clone()),
                act_threshold: p.map(|p| p.act_threshold),
                escalate_threshold: p.map(|p| p.escalate_threshold),
                disabled: false,
            };
            (key, entry)
        })
        .collect()
}
