//! `[schedules.NAME]` in the config file: read and checked (timing, zone, agent, workspace)
//! into [`ConfigSchedule`]s, and written back from them for `krake config`.

use super::{Assignment, Cadence, CatchUp, parse_timezone, parse_when};
use crate::config::Directory;
use crate::settings::{SettingsError, known_workspace};
use crate::workspace::WorkspaceSlug;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A schedule in the config file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleEntry {
    /// The agent (a name) or a role; omitted: the coordinator picks by the task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The workspace; default: the agent's home.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// What to do.
    pub task: String,
    /// When: a phrasing (`every monday 09:00`) or `cron 0 9 * * 1`.
    pub when: String,
    /// Time zone (IANA); default `schedule_timezone`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// `once` (default) or `skip`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catch_up: Option<String>,
}

/// A config-defined schedule, validated at load.
#[derive(Debug, Clone)]
pub struct ConfigSchedule {
    /// Its key in the file.
    pub name: String,
    /// Workspace.
    pub workspace: WorkspaceSlug,
    /// The coordinator's choice of agent.
    pub assignment: Assignment,
    /// Task.
    pub task: String,
    /// When.
    pub cadence: Cadence,
    /// For people.
    pub description: String,
    /// Missed-run policy.
    pub catch_up: CatchUp,
}

/// Checks every schedule of the file; `default_tz` is `schedule_timezone`.
pub fn config_schedules(
    entries: &BTreeMap<String, ScheduleEntry>,
    directory: &Directory,
    default_tz: chrono_tz::Tz,
) -> Result<Vec<ConfigSchedule>, SettingsError> {
    let mut out = Vec::new();
    for (name, e) in entries {
        let ctx =
            |err: &dyn std::fmt::Display| SettingsError::new(format!("schedule `{name}`: {err}"));
        let when = parse_when(&e.when).map_err(|err| ctx(&format!("when: {err}")))?;
        let tz = match &e.timezone {
            Some(t) => Some(parse_timezone(t).map_err(|err| ctx(&format!("timezone: {err}")))?),
            None => None,
        };
        let cadence = Cadence::new(&when.cron, tz.or(when.tz).unwrap_or(default_tz))
            .map_err(|err| ctx(&err))?;
        let workspace = match &e.workspace {
            Some(w) => Some(known_workspace(directory, w, "workspace").map_err(|err| ctx(&err))?),
            None => None,
        };
        let assignment =
            crate::coordinator::assign(directory, e.agent.as_deref(), workspace.as_ref(), &e.task)
                .map_err(|err| ctx(&err))?;
        let workspace = workspace
            .or_else(|| {
                directory
                    .agent(&assignment.agent)
                    .and_then(|a| a.home().cloned())
            })
            .or_else(|| directory.workspaces().first().map(|w| w.slug.clone()))
            .ok_or_else(|| ctx(&"no workspace"))?;
        let catch_up = match &e.catch_up {
            Some(c) => CatchUp::parse(c)
                .ok_or_else(|| ctx(&format!("catch_up must be `once` or `skip`, not `{c}`")))?,
            None => CatchUp::Once,
        };
        if e.task.trim().is_empty() {
            return Err(ctx(&"task is empty"));
        }
        out.push(ConfigSchedule {
            name: name.clone(),
            workspace,
            assignment,
            task: e.task.trim().to_owned(),
            cadence,
            description: when.description,
            catch_up,
        });
    }
    Ok(out)
}

impl ConfigSchedule {
    /// The schedule as it would be written in the file, its timing as the cron it resolved to.
    pub fn effective(&self) -> ScheduleEntry {
        ScheduleEntry {
            agent: Some(self.assignment.agent.clone()),
            workspace: Some(self.workspace.to_string()),
            task: self.task.clone(),
            when: format!("cron {}", self.cadence.expression()),
            timezone: Some(self.cadence.timezone().name().to_owned()),
            catch_up: Some(self.catch_up.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(agent: &str, task: &str, when: &str) -> ScheduleEntry {
        ScheduleEntry {
            agent: Some(agent.into()),
            task: task.into(),
            when: when.into(),
            ..ScheduleEntry::default()
        }
    }

    fn check(entries: &[(&str, ScheduleEntry)]) -> Result<Vec<ConfigSchedule>, SettingsError> {
        let map = entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        config_schedules(&map, &Directory::default(), chrono_tz::Europe::Berlin)
    }

    #[test]
    fn schedules_from_config_are_checked() {
        let posts = ScheduleEntry {
            workspace: Some("lunavo".into()),
            timezone: Some("UTC".into()),
            catch_up: Some("skip".into()),
            ..entry("social media", "draft today's post", "cron 0 8 * * 1-5")
        };
        let s = check(&[
            (
                "weekly-sales",
                entry(
                    "dexter",
                    "summarise last week's sales",
                    "every monday 09:00",
                ),
            ),
            ("posts", posts),
        ])
        .unwrap();
        assert_eq!(s.len(), 2);
        let posts = &s[0];
        assert_eq!(posts.assignment.agent, "Soshie");
        assert_eq!(posts.cadence.timezone(), chrono_tz::Tz::UTC);
        assert_eq!(posts.catch_up, CatchUp::Skip);
        let weekly = &s[1];
        assert_eq!(weekly.cadence.timezone(), chrono_tz::Europe::Berlin);
        assert_eq!(weekly.workspace.as_str(), "management");
        // Written back, it reads back to the same timing.
        let again = check(&[("weekly-sales", weekly.effective())]).unwrap();
        assert_eq!(again[0].cadence.expression(), weekly.cadence.expression());
        let e = check(&[("x", entry("penn", "t", "cron 0 25 * * *"))]).unwrap_err();
        assert!(
            e.0.contains("schedule `x`") && e.0.contains("0 25 * * *"),
            "{e}"
        );
        let mars = ScheduleEntry {
            timezone: Some("Mars/Base".into()),
            ..entry("penn", "t", "every day")
        };
        let e = check(&[("x", mars)]).unwrap_err();
        assert!(e.0.contains("Mars/Base"), "{e}");
        let e = check(&[("x", entry("penn", " ", "every day"))]).unwrap_err();
        assert!(e.0.contains("task is empty"), "{e}");
    }
}
