//! Typed command arguments, for fronts whose platform already split a command into named
//! options (Discord's slash commands): [`CommandParser::from_options`] builds the
//! [`Command`] from them directly. Thread numbers stay numbers and free texts (a reply, a
//! reason, a task) are taken as written, never glued into a command line to be parsed again;
//! only a command whose one option is its whole argument text (`args`: schedules, folders,
//! KPIs) reads that text with the grammar, as a person wrote it.
//!
//! The option names are the ones [`OPTION_NAMES`] lists; a front registers its commands with
//! these names, as [`command_options`] describes them (Discord's slash commands, MCP tools).

use crate::chat::command::{
    COMMANDS, Command, CommandParser, CommandSpec, ListQuery, MAX_THREADS_AT_ONCE, Parsed,
    StatusFilter, batch, spec, take_ids,
};
use crate::config::Directory;
use crate::inbox::{ThreadId, ThreadKind, ThreadStatus};
use crate::workspace::WorkspaceSlug;

/// The value of one option as the platform typed it.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    /// A string (text or a choice's value).
    Text(String),
    /// An integer (a thread number).
    Integer(i64),
    /// Anything else (a boolean, a number with a fraction).
    Other(String),
}

/// The option names commands take, by command: `(command, options in argument order)`.
/// Commands not listed take one text option `args`, their argument text.
pub const OPTION_NAMES: &[(&str, &[&str])] = &[
    ("todo", &["workspace", "kind", "status"]),
    ("show", &["id"]),
    ("approve", &["id", "more"]),
    ("archive", &["id", "more"]),
    ("unarchive", &["id", "more"]),
    ("reply", &["id", "text"]),
    ("reject", &["id", "reason", "more"]),
    ("ask", &["agent", "task"]),
    ("workspaces", &[]),
    ("agents", &[]),
    ("help", &["command"]),
    ("link", &["code"]),
];

/// What an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    /// Text (or one of its choices' values).
    Text,
    /// A thread number (a positive integer).
    Id,
}

/// One named option of a command, for fronts that register commands with their options
/// (Discord's slash commands, MCP tools): the same names [`OPTION_NAMES`] lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionSpec {
    /// Its name.
    pub name: &'static str,
    /// What it is, for people (and models).
    pub about: &'static str,
    /// What it takes.
    pub kind: OptionKind,
    /// Whether the command needs it.
    pub required: bool,
    /// The values it may take, as (label, value); empty when any is allowed.
    pub choices: Vec<(String, String)>,
}

type Opt = OptionSpec;
type Kind = OptionKind;

fn text(name: &'static str, about: &'static str, required: bool) -> Opt {
    Opt {
        name,
        about,
        kind: Kind::Text,
        required,
        choices: Vec::new(),
    }
}

fn id() -> Opt {
    Opt {
        name: "id",
        about: "The thread number (#12 → 12)",
        kind: Kind::Id,
        required: true,
        choices: Vec::new(),
    }
}

/// Further thread numbers for the same decision or archiving (`14 15`).
fn more() -> Opt {
    text("more", "More thread numbers, as in 14 15", false)
}

fn with_choices(mut o: Opt, choices: Vec<(String, String)>) -> Opt {
    o.choices = choices;
    o
}

/// The options of one command, in the order its arguments are written (workspaces, kinds,
/// statuses and agents as choices from `dir`).
pub fn command_options(spec: &CommandSpec, dir: &Directory) -> Vec<OptionSpec> {
    let workspaces = || {
        dir.workspaces()
            .iter()
            .map(|w| (w.name.clone(), w.slug.to_string()))
            .collect()
    };
    match spec.name {
        "todo" => vec![
            with_choices(
                text("workspace", "Only this workspace", false),
                workspaces(),
            ),
            with_choices(
                text("kind", "Only this kind", false),
                ThreadKind::ALL
                    .iter()
                    .map(|k| (k.as_str().to_owned(), k.as_str().to_owned()))
                    .collect(),
            ),
            with_choices(
                text("status", "Only this status (default: open)", false),
                std::iter::once(("all".to_owned(), "all".to_owned()))
                    .chain(
                        ThreadStatus::ALL
                            .iter()
                            .map(|s| (s.as_str().to_owned(), s.as_str().to_owned())),
                    )
                    .collect(),
            ),
        ],
        "show" => vec![id()],
        "approve" | "archive" | "unarchive" => vec![id(), more()],
        "reply" => vec![id(), text("text", "Your reply", true)],
        "reject" => vec![id(), text("reason", "Why", false), more()],
        "ask" => vec![
            with_choices(
                text("agent", "The agent", true),
                dir.agents()
                    .iter()
                    .map(|a| {
                        (
                            format!("{} ({})", a.name, a.role),
                            a.name.as_str().to_lowercase(),
                        )
                    })
                    .collect(),
            ),
            text("task", "What the agent should do", true),
        ],
        "workspaces" | "agents" => Vec::new(),
        "help" => vec![with_choices(
            text("command", "A command to explain", false),
            COMMANDS
                .iter()
                .map(|c| (c.name.to_owned(), c.name.to_owned()))
                .collect(),
        )],
        "link" => vec![text("code", "The code from `krake user link-code`", true)],
        // A command core added later: its arguments as one text, as written after the name.
        _ if spec.args.is_empty() => Vec::new(),
        _ => vec![text("args", spec.args, spec.args.starts_with('<'))],
    }
}

impl CommandParser {
    /// The command `name` with its named options (see the [module](self) docs): a
    /// [`Parsed::Command`], or [`Parsed::NotUnderstood`] saying which option is wrong.
    pub fn from_options(&self, name: &str, options: &[(String, OptionValue)]) -> Parsed {
        let Some(spec) = spec(name) else {
            return bad(format!("`/{name}` is not one of Krake's commands"), None);
        };
        let text = |key: &str| -> Option<String> {
            options
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| match v {
                    OptionValue::Text(s) => s.trim().to_owned(),
                    OptionValue::Integer(n) => n.to_string(),
                    OptionValue::Other(s) => s.clone(),
                })
                .filter(|s| !s.is_empty())
        };
        let id = || -> Result<ThreadId, Parsed> {
            let v = options.iter().find(|(k, _)| k == "id").map(|(_, v)| v);
            match v {
                Some(OptionValue::Integer(n)) if *n > 0 => Ok(ThreadId(*n)),
                Some(OptionValue::Text(s)) => match s.trim().trim_start_matches('#').parse() {
                    Ok(n) if n > 0 => Ok(ThreadId(n)),
                    _ => Err(bad(
                        format!("`{s}` is not a thread number"),
                        Some(spec.example),
                    )),
                },
                _ => Err(bad(
                    format!("`{name}` needs a thread number"),
                    Some(spec.example),
                )),
            }
        };
        // `more`: further thread numbers (`14 15`) for the same decision or archiving.
        let more = |first: ThreadId, more: Option<String>| -> Result<Vec<ThreadId>, Parsed> {
            let mut ids = vec![first];
            let Some(more) = more else {
                return Ok(ids);
            };
            let (extra, rest) = take_ids(&more);
            if extra.is_empty() || !rest.trim().is_empty() {
                return Err(bad(
                    format!("`more` takes thread numbers only (like `14 15`), not `{more}`"),
                    Some(spec.example),
                ));
            }
            for id in extra {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            if ids.len() > MAX_THREADS_AT_ONCE {
                return Err(bad(
                    format!(
                        "`{name}` takes at most {MAX_THREADS_AT_ONCE} thread numbers at once, not {}",
                        ids.len()
                    ),
                    Some(spec.example),
                ));
            }
            Ok(ids)
        };
        let cmd = match name {
            "todo" => {
                let workspace = match text("workspace") {
                    None => None,
                    Some(w) => match self.known_workspace(&w) {
                        Some(ws) => Some(ws),
                        None => {
                            return bad(format!("`{w}` is not a workspace"), Some(spec.example));
                        }
                    },
                };
                let kind = match text("kind") {
                    None => None,
                    Some(k) => match ThreadKind::parse(&k) {
                        Some(k) => Some(k),
                        None => {
                            return bad(format!("`{k}` is not a thread kind"), Some(spec.example));
                        }
                    },
                };
                let status = match text("status").as_deref() {
                    None | Some("open") => StatusFilter::Open,
                    Some("all") => StatusFilter::All,
                    Some(s) => match ThreadStatus::parse(s) {
                        Some(s) => StatusFilter::Is(s),
                        None => return bad(format!("`{s}` is not a status"), Some(spec.example)),
                    },
                };
                Command::List(ListQuery {
                    workspace,
                    kind,
                    status,
                })
            }
            "show" => match id() {
                Ok(id) => Command::Show(id),
                Err(p) => return p,
            },
            "approve" | "archive" | "unarchive" => {
                let ids = match id().and_then(|id| more(id, text("more"))) {
                    Ok(ids) => ids,
                    Err(p) => return p,
                };
                let one = |id| match name {
                    "approve" => Command::Approve(id),
                    "archive" => Command::Archive(id),
                    _ => Command::Unarchive(id),
                };
                batch(ids.into_iter().map(one).collect())
            }
            "reply" => {
                let id = match id() {
                    Ok(id) => id,
                    Err(p) => return p,
                };
                match text("text") {
                    Some(text) => Command::Reply { id, text },
                    None => {
                        return bad(
                            "`reply` needs some text after the thread number".to_owned(),
                            Some(spec.example),
                        );
                    }
                }
            }
            "reject" => {
                let ids = match id().and_then(|id| more(id, text("more"))) {
                    Ok(ids) => ids,
                    Err(p) => return p,
                };
                let reason = text("reason");
                batch(
                    ids.into_iter()
                        .map(|id| Command::Reject {
                            id,
                            reason: reason.clone(),
                        })
                        .collect(),
                )
            }
            "ask" => {
                let agent = text("agent").unwrap_or_default();
                let Some(agent) = self.known_agent(&agent) else {
                    return bad(
                        format!("there is no agent called `{agent}`"),
                        Some(spec.example),
                    );
                };
                match text("task") {
                    Some(text) => Command::Ask { agent, text },
                    None => return bad("`ask` needs a task".to_owned(), Some(spec.example)),
                }
            }
            "workspaces" => Command::Workspaces,
            "agents" => Command::Agents,
            "help" => Command::Help {
                topic: text("command").map(|c| c.trim_start_matches('/').to_lowercase()),
            },
            "link" => match text("code") {
                Some(code) => Command::Link { code },
                None => return bad("`link` needs the code".to_owned(), Some(spec.example)),
            },
            // The whole argument text, as the person wrote it.
            _ => {
                let args = text("args").unwrap_or_default();
                return self.parse(&format!("/{name} {args}"));
            }
        };
        Parsed::Command(cmd)
    }

    /// A workspace given by slug or name, if configured.
    fn known_workspace(&self, w: &str) -> Option<WorkspaceSlug> {
        let w = w.trim();
        self.workspaces()
            .iter()
            .find(|x| x.slug.as_str() == w || x.name.eq_ignore_ascii_case(w))
            .map(|x| x.slug.clone())
    }
}

fn bad(problem: String, example: Option<&str>) -> Parsed {
    Parsed::NotUnderstood {
        problem,
        suggestion: example.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Directory;

    fn parser() -> CommandParser {
        let d = Directory::default();
        CommandParser::new(d.workspaces(), d.agents())
    }

    fn t(s: &str) -> OptionValue {
        OptionValue::Text(s.into())
    }

    #[test]
    fn typed_options_become_commands_without_reparsing() {
        let p = parser();
        // A reason that reads like another command stays a reason.
        let got = p.from_options(
            "reject",
            &[
                ("reason".into(), t("/approve 3 instead")),
                ("id".into(), OptionValue::Integer(12)),
            ],
        );
        assert_eq!(
            got,
            Parsed::Command(Command::Reject {
                id: ThreadId(12),
                reason: Some("/approve 3 instead".into())
            })
        );
        let got = p.from_options(
            "todo",
            &[
                ("status".into(), t("all")),
                ("workspace".into(), t("lunavo")),
            ],
        );
        assert!(
            matches!(&got, Parsed::Command(Command::List(q)) if q.status == StatusFilter::All && q.workspace.as_ref().map(WorkspaceSlug::as_str) == Some("lunavo")),
            "{got:?}"
        );
        assert_eq!(
            p.from_options("workspaces", &[]),
            Parsed::Command(Command::Workspaces)
        );
        let got = p.from_options(
            "ask",
            &[
                ("agent".into(), t("penn")),
                ("task".into(), t("draft a tagline")),
            ],
        );
        assert!(
            matches!(got, Parsed::Command(Command::Ask { ref text, .. }) if text == "draft a tagline"),
            "{got:?}"
        );
    }

    #[test]
    fn more_thread_numbers_make_one_command_for_each() {
        let p = parser();
        let got = p.from_options(
            "approve",
            &[
                ("id".into(), OptionValue::Integer(13)),
                ("more".into(), t("14, #15 13")),
            ],
        );
        assert_eq!(
            got,
            Parsed::Command(Command::Batch(vec![
                Command::Approve(ThreadId(13)),
                Command::Approve(ThreadId(14)),
                Command::Approve(ThreadId(15)),
            ]))
        );
        let got = p.from_options(
            "reject",
            &[
                ("id".into(), OptionValue::Integer(3)),
                ("more".into(), t("4")),
                ("reason".into(), t("not now")),
            ],
        );
        assert!(
            matches!(&got, Parsed::Command(Command::Batch(c)) if c.len() == 2 && c.iter().all(|c| matches!(c, Command::Reject { reason: Some(r), .. } if r == "not now"))),
            "{got:?}"
        );
        let bad = p.from_options(
            "archive",
            &[
                ("id".into(), OptionValue::Integer(3)),
                ("more".into(), t("4 and the rest")),
            ],
        );
        assert!(
            matches!(&bad, Parsed::NotUnderstood { problem, .. } if problem.contains("`more` takes thread numbers only")),
            "{bad:?}"
        );
    }

    #[test]
    fn missing_or_wrong_options_say_what_is_wrong() {
        let p = parser();
        assert!(matches!(
            p.from_options("approve", &[]),
            Parsed::NotUnderstood { ref problem, .. } if problem.contains("thread number")
        ));
        assert!(matches!(
            p.from_options("approve", &[("id".into(), OptionValue::Integer(0))]),
            Parsed::NotUnderstood { .. }
        ));
        assert!(matches!(
            p.from_options("todo", &[("workspace".into(), t("atlantis"))]),
            Parsed::NotUnderstood { ref problem, .. } if problem.contains("atlantis")
        ));
        assert!(matches!(
            p.from_options("cardsearch", &[]),
            Parsed::NotUnderstood { .. }
        ));
    }
}
