//! [`CommandParser`]: slash syntax (`/todo lunavo`, `/approve 12`, `/reject 12 too expensive`),
//! the verbs and their arguments, and the suggestion when a verb is not understood.

use super::{COMMANDS, Command, ListQuery, Parsed, StatusFilter, spec};
use crate::agent::{Agent, AgentName};
use crate::folder::parse_folder_command;
use crate::inbox::{ThreadId, ThreadKind, ThreadStatus};
use crate::schedule::{ScheduleCommand, parse_schedule_command};
use crate::text::edit_distance;
use crate::workspace::{Workspace, WorkspaceSlug};

/// Longest input the parser looks at; anything longer is refused before parsing.
pub const MAX_INPUT_CHARS: usize = 8000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verb {
    Help,
    Workspaces,
    Agents,
    List,
    Show,
    Reply,
    Approve,
    Reject,
    Archive,
    Unarchive,
    Ask,
    Link,
    Kpi,
    Overview,
    Search,
    Sources,
    Source,
    Forget,
    Costs,
    Schedule,
    Schedules,
    Folder,
    Folders,
    Runs,
    Run,
    Cancel,
    Stats,
    DeadLetters,
}

pub(super) fn verb(word: &str) -> Option<Verb> {
    Some(match word {
        "help" | "?" | "commands" | "start" => Verb::Help,
        "workspaces" | "ws" => Verb::Workspaces,
        "agents" | "team" => Verb::Agents,
        "todo" | "todos" | "inbox" | "list" | "ls" => Verb::List,
        "show" | "view" | "open" | "thread" => Verb::Show,
        "reply" | "respond" | "answer" => Verb::Reply,
        "approve" | "accept" => Verb::Approve,
        "reject" | "decline" | "deny" => Verb::Reject,
        "archive" => Verb::Archive,
        "unarchive" | "restore" => Verb::Unarchive,
        "ask" | "tell" => Verb::Ask,
        "link" => Verb::Link,
        "kpi" | "kpis" | "sales" => Verb::Kpi,
        "overview" => Verb::Overview,
        "search" | "lookup" => Verb::Search,
        "sources" | "knowledge" => Verb::Sources,
        "source" | "passage" => Verb::Source,
        "forget" | "unlearn" => Verb::Forget,
        "stats" | "latency" => Verb::Stats,
        "deadletters" | "dead-letters" | "undelivered" => Verb::DeadLetters,
        "costs" | "cost" | "spend" | "budget" | "budgets" => Verb::Costs,
        "schedule" => Verb::Schedule,
        "schedules" => Verb::Schedules,
        "folder" => Verb::Folder,
        "folders" => Verb::Folders,
        "runs" => Verb::Runs,
        "run" => Verb::Run,
        "cancel" | "stop" => Verb::Cancel,
        _ => return None,
    })
}

/// Turns text into a [`Command`]. Knows the configured workspaces and agents so that
/// "what's open in hard life mode?" and "ask penn …" resolve.
#[derive(Debug, Clone)]
pub struct CommandParser {
    workspaces: Vec<Workspace>,
    pub(super) agents: Vec<AgentName>,
}

impl CommandParser {
    /// A parser for these workspaces and agents.
    pub fn new(workspaces: &[Workspace], agents: &[Agent]) -> Self {
        Self {
            workspaces: workspaces.to_vec(),
            agents: agents.iter().map(|a| a.name.clone()).collect(),
        }
    }

    /// Parses one message.
    pub fn parse(&self, input: &str) -> Parsed {
        let input = input.trim();
        if input.is_empty() {
            return Parsed::Empty;
        }
        if input.chars().count() > MAX_INPUT_CHARS {
            return Parsed::NotUnderstood {
                problem: format!(
                    "that message is too long for a command (over {MAX_INPUT_CHARS} characters)"
                ),
                suggestion: Some("/help".to_owned()),
            };
        }
        if let Some(rest) = input.strip_prefix('/') {
            return self.parse_slash(rest);
        }
        self.parse_natural(input)
    }

    fn parse_slash(&self, rest: &str) -> Parsed {
        let (head, args) = split_word(rest);
        // Telegram appends the bot's name in groups: `/todo@KrakeBot`.
        let head = head.split('@').next().unwrap_or("").to_lowercase();
        match verb(&head) {
            Some(v) => self.with_args(v, args, true),
            None => not_understood_verb(&head),
        }
    }

    pub(super) fn with_args(&self, v: Verb, args: &str, strict: bool) -> Parsed {
        let args = args.trim();
        let need_id = |name: &str| Parsed::NotUnderstood {
            problem: format!("`{name}` needs a thread number"),
            suggestion: spec(name).map(|s| s.example.to_owned()),
        };
        match v {
            Verb::Help => Parsed::Command(Command::Help {
                topic: first_word(args).map(|w| w.trim_start_matches('/').to_lowercase()),
            }),
            Verb::Workspaces => Parsed::Command(Command::Workspaces),
            Verb::Agents => Parsed::Command(Command::Agents),
            Verb::List => match self.list_query(args, strict) {
                Ok(q) => Parsed::Command(Command::List(q)),
                Err(p) => p,
            },
            Verb::Show => {
                let Some((id, rest)) = take_id(args) else {
                    return need_id("show");
                };
                if strict && !rest.trim().is_empty() {
                    return Parsed::NotUnderstood {
                        problem: format!(
                            "`show` takes only a thread number, not `{}`",
                            rest.trim()
                        ),
                        suggestion: spec("show").map(|s| s.example.to_owned()),
                    };
                }
                Parsed::Command(Command::Show(id))
            }
            Verb::Approve | Verb::Archive | Verb::Unarchive => {
                let name = match v {
                    Verb::Approve => "approve",
                    Verb::Archive => "archive",
                    _ => "unarchive",
                };
                let (ids, rest) = take_ids(args);
                if ids.is_empty() {
                    return need_id(name);
                }
                if let Some(p) = leftover(name, &ids, rest, strict) {
                    return p;
                }
                let one = |id| match v {
                    Verb::Approve => Command::Approve(id),
                    Verb::Archive => Command::Archive(id),
                    _ => Command::Unarchive(id),
                };
                Parsed::Command(batch(ids.into_iter().map(one).collect()))
            }
            Verb::Reply => {
                let args = strip_words(args, &["to"]);
                let Some((id, rest)) = take_id(args) else {
                    return need_id("reply");
                };
                let text = rest.trim().trim_start_matches([':', '-', ',']).trim();
                if text.is_empty() {
                    return Parsed::NotUnderstood {
                        problem: "`reply` needs some text after the thread number".to_owned(),
                        suggestion: Some("/reply 12 ship it friday".to_owned()),
                    };
                }
                Parsed::Command(Command::Reply {
                    id,
                    text: text.to_owned(),
                })
            }
            Verb::Reject => {
                let (ids, rest) = take_ids(args);
                if ids.is_empty() {
                    return need_id("reject");
                }
                if ids.len() > MAX_THREADS_AT_ONCE {
                    return too_many("reject", ids.len());
                }
                let mut reason = rest.trim().trim_start_matches([':', '-', ',']).trim();
                for lead in ["because ", "since ", "reason: ", "reason "] {
                    if let Some(r) = strip_prefix_ci(reason, lead) {
                        reason = r.trim();
                    }
                }
                let reason = (!reason.is_empty()).then(|| reason.to_owned());
                Parsed::Command(batch(
                    ids.into_iter()
                        .map(|id| Command::Reject {
                            id,
                            reason: reason.clone(),
                        })
                        .collect(),
                ))
            }
            Verb::Ask => self.ask(args),
            Verb::Runs => self.runs_query(args, strict),
            Verb::Run | Verb::Cancel => {
                let name = if v == Verb::Run { "run" } else { "cancel" };
                let args = strip_words(args, &["run"]);
                let Some((id, rest)) = take_id(args) else {
                    return Parsed::NotUnderstood {
                        problem: format!("`{name}` needs a run number"),
                        suggestion: spec(name).map(|s| s.example.to_owned()),
                    };
                };
                let id = crate::run::RunId(id.0);
                let rest = rest.trim().trim_start_matches([':', '-', ',']).trim();
                if v == Verb::Run {
                    if strict && !rest.is_empty() {
                        return Parsed::NotUnderstood {
                            problem: format!("`run` takes only a run number, not `{rest}`"),
                            suggestion: spec("run").map(|s| s.example.to_owned()),
                        };
                    }
                    return Parsed::Command(Command::Run(id));
                }
                let mut reason = rest;
                for lead in ["because ", "since ", "reason: ", "reason "] {
                    if let Some(r) = strip_prefix_ci(reason, lead) {
                        reason = r.trim();
                    }
                }
                Parsed::Command(Command::Cancel {
                    id,
                    reason: (!reason.is_empty()).then(|| reason.to_owned()),
                })
            }
            Verb::DeadLetters => {
                use crate::dead_letters::DeadLetterCommand;
                let (word, rest) = split_word(args);
                let word = word.to_lowercase();
                if word.is_empty() || word == "list" {
                    return Parsed::Command(Command::DeadLetters(DeadLetterCommand::List));
                }
                let id = take_id(rest).map(|(id, _)| crate::outbox::OutboxId(id.0));
                match (word.as_str(), id) {
                    ("retry" | "resend", Some(id)) => {
                        Parsed::Command(Command::DeadLetters(DeadLetterCommand::Retry(id)))
                    }
                    ("discard" | "drop", Some(id)) => {
                        Parsed::Command(Command::DeadLetters(DeadLetterCommand::Discard(id)))
                    }
                    _ => Parsed::NotUnderstood {
                        problem:
                            "`deadletters` takes `retry N` or `discard N`, or nothing to list them"
                                .to_owned(),
                        suggestion: spec("deadletters").map(|s| s.example.to_owned()),
                    },
                }
            }
            Verb::Stats => {
                let words = args.trim().to_lowercase();
                if words.is_empty() {
                    return Parsed::Command(Command::Stats { workspace: None });
                }
                match self.find_workspace(&words) {
                    Some(ws) => Parsed::Command(Command::Stats {
                        workspace: Some(ws),
                    }),
                    None if strict => Parsed::NotUnderstood {
                        problem: format!("`{}` is not a workspace", args.trim()),
                        suggestion: spec("stats").map(|s| s.example.to_owned()),
                    },
                    None => Parsed::Command(Command::Stats { workspace: None }),
                }
            }
            Verb::Search => {
                let text = args.trim();
                if text.is_empty() {
                    return Parsed::NotUnderstood {
                        problem: "`search` needs something to look for".to_owned(),
                        suggestion: spec("search").map(|s| s.example.to_owned()),
                    };
                }
                // A workspace may come first: `/search lunavo return policy`.
                let (first, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
                match self.find_workspace(first) {
                    Some(ws) if !rest.trim().is_empty() => Parsed::Command(Command::Search {
                        workspace: Some(ws),
                        text: rest.trim().to_owned(),
                    }),
                    _ => Parsed::Command(Command::Search {
                        workspace: None,
                        text: text.to_owned(),
                    }),
                }
            }
            Verb::Overview => Parsed::Command(Command::Overview),
            Verb::Sources => {
                let words = args.trim();
                if words.is_empty() {
                    return Parsed::Command(Command::Sources { workspace: None });
                }
                match self.find_workspace(&words.to_lowercase()) {
                    Some(ws) => Parsed::Command(Command::Sources {
                        workspace: Some(ws),
                    }),
                    None => Parsed::NotUnderstood {
                        problem: format!("`{words}` is not a workspace"),
                        suggestion: spec("sources").map(|s| s.example.to_owned()),
                    },
                }
            }
            Verb::Forget | Verb::Source => self.source_command(v, args),
            Verb::Kpi => {
                let words = args.trim().to_lowercase();
                if words.is_empty() {
                    return Parsed::Command(Command::Kpi { workspace: None });
                }
                match self.find_workspace(&words) {
                    Some(ws) => Parsed::Command(Command::Kpi {
                        workspace: Some(ws),
                    }),
                    None if strict => {
                        let names: Vec<&str> =
                            self.workspaces.iter().map(|w| w.slug.as_str()).collect();
                        Parsed::NotUnderstood {
                            problem: format!(
                                "`{}` is not a workspace; workspaces are {}",
                                args.trim(),
                                names.join(", ")
                            ),
                            suggestion: Some("/kpi lunavo".to_owned()),
                        }
                    }
                    None => Parsed::Command(Command::Kpi { workspace: None }),
                }
            }
            Verb::Costs => {
                let words = args.trim().to_lowercase();
                if words.is_empty() {
                    return Parsed::Command(Command::Costs { workspace: None });
                }
                match self.find_workspace(&words) {
                    Some(ws) => Parsed::Command(Command::Costs {
                        workspace: Some(ws),
                    }),
                    None => Parsed::NotUnderstood {
                        problem: format!("`{}` is not a workspace", args.trim()),
                        suggestion: Some("/costs lunavo".to_owned()),
                    },
                }
            }
            Verb::Link => {
                let (code, rest) = split_word(args);
                let ok = (4..=32).contains(&code.len())
                    && code.bytes().all(|b| b.is_ascii_alphanumeric());
                if !ok || !rest.trim().is_empty() {
                    return Parsed::NotUnderstood {
                        problem: "`link` needs the one-time code you were given".to_owned(),
                        suggestion: Some("/link K7M2Q9XD".to_owned()),
                    };
                }
                Parsed::Command(Command::Link {
                    code: code.to_owned(),
                })
            }
            Verb::Schedule => self.schedule(args),
            Verb::Schedules => Parsed::Command(Command::Schedule(ScheduleCommand::List)),
            Verb::Folder => self.folder(args),
            Verb::Folders => self.folder(&format!("list {args}")),
        }
    }

    pub(super) fn schedule(&self, args: &str) -> Parsed {
        match parse_schedule_command(args, &self.workspaces) {
            Ok(c) => Parsed::Command(Command::Schedule(c)),
            Err(problem) => Parsed::NotUnderstood {
                problem,
                suggestion: spec("schedule").map(|s| s.example.to_owned()),
            },
        }
    }

    fn folder(&self, args: &str) -> Parsed {
        let names: Vec<&str> = self.agents.iter().map(AgentName::as_str).collect();
        match parse_folder_command(args, &names) {
            Ok(c) => Parsed::Command(Command::Folder(c)),
            Err(problem) => Parsed::NotUnderstood {
                problem,
                suggestion: Some("/help folder".to_owned()),
            },
        }
    }

    pub(super) fn ask(&self, args: &str) -> Parsed {
        let (name, rest) = split_word(args);
        let name = name.trim_end_matches([',', ':']);
        let Some(agent) = self.agents.iter().find(|a| a.matches(name)) else {
            let names: Vec<&str> = self.agents.iter().map(AgentName::as_str).collect();
            return Parsed::NotUnderstood {
                problem: if name.is_empty() {
                    "`ask` needs an agent and a task".to_owned()
                } else {
                    format!(
                        "there is no agent called `{name}`; the agents are {}",
                        names.join(", ")
                    )
                },
                suggestion: Some("/ask penn draft a tagline for the hoodie".to_owned()),
            };
        };
        let text = strip_words(rest.trim(), &["to"]).trim();
        if text.is_empty() {
            return Parsed::NotUnderstood {
                problem: format!("what should {agent} do?"),
                suggestion: Some(format!(
                    "/ask {} draft a tagline for the hoodie",
                    agent.as_str().to_lowercase()
                )),
            };
        }
        Parsed::Command(Command::Ask {
            agent: agent.clone(),
            text: text.to_owned(),
        })
    }

    /// Reads workspace, kind and status filters from the words of `text`. Strict mode (slash
    /// commands) refuses unknown words; natural mode ignores them.
    pub(super) fn list_query(&self, text: &str, strict: bool) -> Result<ListQuery, Parsed> {
        let lower = text.to_lowercase();
        let mut q = ListQuery::default();
        let mut rest = format!(" {} ", lower.replace(['?', '!', ',', '.'], " "));
        // Multi-word workspace names first ("hard life mode"), longest first.
        let mut ws: Vec<&Workspace> = self.workspaces.iter().collect();
        ws.sort_by_key(|w| std::cmp::Reverse(w.name.len()));
        for w in ws {
            for needle in [w.name.to_lowercase(), w.slug.as_str().to_owned()] {
                let pat = format!(" {needle} ");
                if rest.contains(&pat) {
                    if q.workspace.as_ref().is_some_and(|s| s != &w.slug) && strict {
                        return Err(Parsed::NotUnderstood {
                            problem: "name one workspace at a time".to_owned(),
                            suggestion: Some("/todo lunavo".to_owned()),
                        });
                    }
                    q.workspace.get_or_insert_with(|| w.slug.clone());
                    rest = rest.replacen(&pat, " ", 1);
                }
            }
        }
        for word in rest.split_whitespace() {
            let singular = word.strip_suffix('s').unwrap_or(word);
            if let Some(k) = ThreadKind::parse(word).or_else(|| ThreadKind::parse(singular)) {
                q.kind = Some(k);
            } else if word == "all" || word == "everything" {
                q.status = StatusFilter::All;
            } else if ["open", "pending", "waiting", "outstanding"].contains(&word) {
                q.status = StatusFilter::Open;
            } else if let Some(s) = ThreadStatus::parse(word) {
                q.status = StatusFilter::Is(s);
            } else if strict {
                let names: Vec<&str> = self.workspaces.iter().map(|w| w.slug.as_str()).collect();
                return Err(Parsed::NotUnderstood {
                    problem: format!(
                        "`{word}` is not a workspace, kind or status; workspaces are {}, kinds approval, escalation, question, notice, statuses open, approved, rejected, answered, archived, expired, all",
                        names.join(", ")
                    ),
                    suggestion: Some("/todo lunavo approvals".to_owned()),
                });
            }
        }
        Ok(q)
    }

    /// The workspace named (by slug or display name) anywhere in `text`, longest name first.
    /// `/runs [workspace] [agent] [status]`, in any order.
    fn runs_query(&self, args: &str, strict: bool) -> Parsed {
        let mut q = crate::run::RunQuery::default();
        for word in args.split_whitespace() {
            let w = word.to_lowercase();
            let status = match w.as_str() {
                "awaiting" | "waiting" | "approval" => {
                    Some(crate::run::RunStatus::AwaitingApproval)
                }
                other => crate::run::RunStatus::parse(other),
            };
            if let Some(st) = status.filter(|_| q.status.is_none()) {
                q.status = Some(st);
            } else if let Some(a) = self.known_agent(&w).filter(|_| q.agent.is_none()) {
                q.agent = Some(a.to_string());
            } else if let Some(ws) = self.find_workspace(&w).filter(|_| q.workspace.is_none()) {
                q.workspace = Some(ws);
            } else if strict {
                let statuses: Vec<&str> = crate::run::RunStatus::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect();
                return Parsed::NotUnderstood {
                    problem: format!(
                        "`{word}` is not a workspace, an agent or a run status ({})",
                        statuses.join(", ")
                    ),
                    suggestion: spec("runs").map(|s| s.example.to_owned()),
                };
            }
        }
        Parsed::Command(Command::Runs(q))
    }

    /// `/forget [workspace] <file>` and `/source [workspace] <file> [§N]`.
    fn source_command(&self, verb: Verb, args: &str) -> Parsed {
        let name = if verb == Verb::Forget {
            "forget"
        } else {
            "source"
        };
        let text = args.trim();
        let (first, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        // Only an exact workspace name comes first (a file may be called `lunavo.md`).
        let exact = self
            .workspaces
            .iter()
            .find(|w| w.slug.as_str() == first.to_lowercase() || w.name.eq_ignore_ascii_case(first))
            .map(|w| w.slug.clone());
        let (workspace, rest) = match exact {
            Some(ws) if !rest.trim().is_empty() => (Some(ws), rest.trim()),
            _ => (None, text),
        };
        // A citation's position: `returns-policy.pdf §3` (or `#3`, or `3` after the name).
        let (file, position) = match rest.rsplit_once(char::is_whitespace) {
            Some((file, pos)) if verb == Verb::Source => {
                match pos.trim_start_matches(['§', '#']).parse::<u32>() {
                    Ok(n) if n >= 1 => (file.trim(), Some(n)),
                    _ => (rest, None),
                }
            }
            _ => (rest, None),
        };
        if file.is_empty() {
            return Parsed::NotUnderstood {
                problem: format!("`{name}` needs the name of a file the knowledge base holds"),
                suggestion: spec(name).map(|s| s.example.to_owned()),
            };
        }
        let source = file.to_owned();
        Parsed::Command(match verb {
            Verb::Forget => Command::Forget { workspace, source },
            _ => Command::Source {
                workspace,
                source,
                position: position.unwrap_or(1),
            },
        })
    }

    pub(super) fn find_workspace(&self, text: &str) -> Option<WorkspaceSlug> {
        let padded = format!(
            " {} ",
            text.to_lowercase().replace(['?', '!', ',', '.'], " ")
        );
        let mut ws: Vec<&Workspace> = self.workspaces.iter().collect();
        ws.sort_by_key(|w| std::cmp::Reverse(w.name.len()));
        ws.into_iter()
            .find(|w| {
                padded.contains(&format!(" {} ", w.name.to_lowercase()))
                    || padded.contains(&format!(" {} ", w.slug.as_str()))
            })
            .map(|w| w.slug.clone())
    }

    /// The configured workspaces.
    pub(crate) fn workspaces(&self) -> &[Workspace] {
        &self.workspaces
    }

    /// The agent a name stands for, if there is one.
    pub(crate) fn known_agent(&self, name: &str) -> Option<AgentName> {
        self.agents.iter().find(|a| a.matches(name.trim())).cloned()
    }
}

fn not_understood_verb(head: &str) -> Parsed {
    let shown: String = head.chars().take(40).collect();
    Parsed::NotUnderstood {
        problem: format!("there is no command `/{shown}`"),
        suggestion: Some(
            closest_verb(head).map_or_else(|| "/help".to_owned(), |n| format!("/{n}")),
        ),
    }
}

/// The command name closest to a misspelt word, if any is close enough.
pub(super) fn closest_verb(word: &str) -> Option<&'static str> {
    if word.chars().count() > 20 || word.chars().count() < 3 {
        return None;
    }
    COMMANDS
        .iter()
        .map(|s| (s.name, edit_distance(word, s.name)))
        .filter(|(n, d)| *d <= 2 && *d < n.len() / 2 + 1)
        .min_by_key(|(_, d)| *d)
        .map(|(n, _)| n)
}

pub(super) fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

fn first_word(s: &str) -> Option<&str> {
    let (w, _) = split_word(s);
    (!w.is_empty()).then_some(w)
}

pub(super) fn strip_words<'a>(mut s: &'a str, words: &[&str]) -> &'a str {
    loop {
        let (w, r) = split_word(s);
        if !w.is_empty() && words.iter().any(|x| x.eq_ignore_ascii_case(w)) {
            s = r;
        } else {
            return s.trim_start();
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The most threads one command may name (`approve 13 14 15`).
pub const MAX_THREADS_AT_ONCE: usize = 20;

/// One command, or a [`Command::Batch`] of several.
pub(crate) fn batch(mut commands: Vec<Command>) -> Command {
    if commands.len() == 1
        && let Some(one) = commands.pop()
    {
        return one;
    }
    Command::Batch(commands)
}

fn too_many(name: &str, n: usize) -> Parsed {
    Parsed::NotUnderstood {
        problem: format!(
            "`{name}` takes at most {MAX_THREADS_AT_ONCE} thread numbers at once, not {n}; nothing was changed"
        ),
        suggestion: Some(format!("/{name} 13 14 15")),
    }
}

/// What follows the thread numbers of `approve`, `archive` or `unarchive`: nothing, or (in a
/// sentence) words that name no other thread. Text that might name more threads refuses the
/// whole command rather than dropping them.
fn leftover(name: &str, ids: &[ThreadId], rest: &str, strict: bool) -> Option<Parsed> {
    if ids.len() > MAX_THREADS_AT_ONCE {
        return Some(too_many(name, ids.len()));
    }
    let rest = rest.trim();
    let unclear = if strict {
        !rest.is_empty()
    } else {
        rest.split_whitespace().any(|w| {
            w.trim_start_matches('#')
                .starts_with(|c: char| c.is_ascii_digit())
        })
    };
    unclear.then(|| Parsed::NotUnderstood {
        problem: format!("`{name}` takes only thread numbers, not `{rest}`; nothing was changed"),
        suggestion: Some(format!("/{name} 13 14 15")),
    })
}

/// Reads thread numbers (`13 14 15`, `#13, #14 and #15`, `13,14`) at the start of `s`, each
/// once, and the text after them.
pub(crate) fn take_ids(s: &str) -> (Vec<ThreadId>, &str) {
    let mut ids: Vec<ThreadId> = Vec::new();
    let mut rest = s;
    loop {
        let r = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        let r = if ids.is_empty() {
            r
        } else {
            strip_words(r, &["and", "&"])
        };
        let digits = r.strip_prefix('#').unwrap_or(r);
        let n = digits.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 18 {
            break;
        }
        let after = &digits[n..];
        // `12x` is not a thread number.
        if after
            .starts_with(|c: char| !c.is_whitespace() && !matches!(c, ',' | ':' | '.' | '?' | '!'))
        {
            break;
        }
        match digits[..n].parse::<i64>() {
            Ok(v) if v > 0 => {
                if !ids.contains(&ThreadId(v)) {
                    ids.push(ThreadId(v));
                }
            }
            _ => break,
        }
        rest = after.trim_start_matches([':', '.', '?', '!']);
    }
    (ids, rest)
}

/// Reads a thread number (`12`, `#12`, `12:`) at the start of `s`.
pub(super) fn take_id(s: &str) -> Option<(ThreadId, &str)> {
    let (w, rest) = split_word(s);
    let w = w
        .trim_start_matches('#')
        .trim_end_matches([':', ',', '.', '?', '!']);
    if w.is_empty() || w.len() > 18 || !w.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = w.parse().ok()?;
    (n > 0).then_some((ThreadId(n), rest))
}

pub(super) fn take_any_id(s: &str) -> Option<ThreadId> {
    s.split_whitespace()
        .find_map(|w| take_id(w).map(|(id, _)| id))
}

#[cfg(test)]
#[path = "parser_tests.rs"]
pub(super) mod tests;
