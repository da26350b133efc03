//! The one typed [`Command`] every front speaks, and its parser.
//!
//! The parser takes slash syntax (`/todo lunavo`, `/approve 12`, `/reject 12 too expensive`)
//! and common natural phrasings ("what's open in lunavo?", "approve 12", "archive #7",
//! "ask penn to draft a tagline for the hoodie"). Text it does not understand becomes
//! [`Parsed::NotUnderstood`] with a suggestion; it never panics.

use crate::agent::{Agent, AgentName};
use crate::folder::{FolderCommand, parse_folder_command};
use crate::inbox::{ThreadId, ThreadKind, ThreadStatus};
use crate::schedule::{
    ScheduleCommand, parse_natural_schedule, parse_schedule_command, starts_like_schedule,
};
use crate::workspace::{Workspace, WorkspaceSlug};

/// Which statuses a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusFilter {
    /// Open threads (the default).
    #[default]
    Open,
    /// Every status except archived.
    All,
    /// Exactly this status.
    Is(ThreadStatus),
}

/// A listing of the To Do inbox.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListQuery {
    /// Only this workspace.
    pub workspace: Option<WorkspaceSlug>,
    /// Only this kind.
    pub kind: Option<ThreadKind>,
    /// Which statuses.
    pub status: StatusFilter,
}

/// Everything a person can ask Krake, whatever the front.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Show help, optionally about one command.
    Help {
        /// The command asked about.
        topic: Option<String>,
    },
    /// List the workspaces.
    Workspaces,
    /// List the agents.
    Agents,
    /// List inbox threads.
    List(ListQuery),
    /// Show one thread with its replies.
    Show(ThreadId),
    /// Reply in a thread.
    Reply {
        /// The thread.
        id: ThreadId,
        /// The reply.
        text: String,
    },
    /// Approve a thread.
    Approve(ThreadId),
    /// Reject a thread.
    Reject {
        /// The thread.
        id: ThreadId,
        /// Why.
        reason: Option<String>,
    },
    /// Archive a thread.
    Archive(ThreadId),
    /// Bring an archived thread back.
    Unarchive(ThreadId),
    /// Show a workspace's KPIs (revenue, orders, fulfilment).
    Kpi {
        /// The workspace; the first one the person can see when absent.
        workspace: Option<WorkspaceSlug>,
    },
    /// Show the month's model costs and budgets, for one workspace or all visible.
    Costs {
        /// The workspace; every workspace the person can see when absent.
        workspace: Option<WorkspaceSlug>,
    },
    /// Link this platform account to a Krake user with a one-time code.
    Link {
        /// The code from `krake user link-code NAME`.
        code: String,
    },
    /// Give an agent a task.
    Ask {
        /// The agent.
        agent: AgentName,
        /// The task.
        text: String,
    },
    /// Create, list, pause, resume, delete or run a schedule.
    Schedule(ScheduleCommand),
    /// Work with agents' folders (tables).
    Folder(FolderCommand),
}

/// What the parser made of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A command.
    Command(Command),
    /// Nothing to do (empty input).
    Empty,
    /// Not understood: why, and what the person may have meant.
    NotUnderstood {
        /// What was wrong, in plain words.
        problem: String,
        /// A command to try instead, if one is close.
        suggestion: Option<String>,
    },
}

/// One command's definition: the single source for help text and for the command lists that
/// fronts register with their platforms (Telegram `setMyCommands`, Discord slash commands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// The name, without slash.
    pub name: &'static str,
    /// The arguments, for help (`<id> [reason]`).
    pub args: &'static str,
    /// What it does (at most 100 characters: Discord's limit for descriptions).
    pub about: &'static str,
    /// An example.
    pub example: &'static str,
}

/// Every command, in the order help shows them.
pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "todo",
        args: "[workspace] [kind] [status]",
        about: "List the To Do inbox, optionally filtered",
        example: "/todo lunavo approvals",
    },
    CommandSpec {
        name: "show",
        args: "<id>",
        about: "Show one thread with its replies",
        example: "/show 12",
    },
    CommandSpec {
        name: "reply",
        args: "<id> <text>",
        about: "Reply in a thread",
        example: "/reply 12 ship it friday",
    },
    CommandSpec {
        name: "approve",
        args: "<id>",
        about: "Approve a thread",
        example: "/approve 12",
    },
    CommandSpec {
        name: "reject",
        args: "<id> [reason]",
        about: "Reject a thread, with a reason",
        example: "/reject 12 too expensive",
    },
    CommandSpec {
        name: "archive",
        args: "<id>",
        about: "Archive a thread",
        example: "/archive 7",
    },
    CommandSpec {
        name: "unarchive",
        args: "<id>",
        about: "Bring an archived thread back",
        example: "/unarchive 7",
    },
    CommandSpec {
        name: "ask",
        args: "<agent> <task>",
        about: "Give an agent a task",
        example: "/ask penn draft a tagline for the hoodie",
    },
    CommandSpec {
        name: "schedule",
        args: "<agent|role> \"<task>\" <when>",
        about: "Schedule a recurring task; /schedule pause|resume|delete|run <n> manages one",
        example: "/schedule dexter \"summarise last week's sales\" every monday 09:00 Europe/Berlin",
    },
    CommandSpec {
        name: "schedules",
        args: "",
        about: "List the schedules with their next runs",
        example: "/schedules",
    },
    CommandSpec {
        name: "folder",
        args: "<action> <agent> <folder> …",
        about: "An agent's folder (a typed table): create, show, add, update, remove, addcol, export, import",
        example: "/folder show soshie \"content calendar\"",
    },
    CommandSpec {
        name: "folders",
        args: "[agent]",
        about: "List the agents' folders",
        example: "/folders soshie",
    },
    CommandSpec {
        name: "workspaces",
        args: "",
        about: "List the workspaces",
        example: "/workspaces",
    },
    CommandSpec {
        name: "agents",
        args: "",
        about: "List the agents and their roles",
        example: "/agents",
    },
    CommandSpec {
        name: "kpi",
        args: "[workspace]",
        about: "Show revenue, orders and fulfilment for a workspace",
        example: "/kpi lunavo",
    },
    CommandSpec {
        name: "costs",
        args: "[workspace]",
        about: "Show this month's model costs per agent and day, and the budgets",
        example: "/costs lunavo",
    },
    CommandSpec {
        name: "link",
        args: "<code>",
        about: "Link this chat account to your Krake user with a one-time code",
        example: "/link K7M2Q9XD",
    },
    CommandSpec {
        name: "help",
        args: "[command]",
        about: "Show what Krake understands",
        example: "/help reject",
    },
];

/// Longest input the parser looks at; anything longer is refused before parsing.
pub const MAX_INPUT_CHARS: usize = 8000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
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
    Costs,
    Schedule,
    Schedules,
    Folder,
    Folders,
}

fn verb(word: &str) -> Option<Verb> {
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
        "kpi" | "kpis" | "sales" | "stats" => Verb::Kpi,
        "costs" | "cost" | "spend" | "budget" | "budgets" => Verb::Costs,
        "schedule" => Verb::Schedule,
        "schedules" => Verb::Schedules,
        "folder" => Verb::Folder,
        "folders" => Verb::Folders,
        _ => return None,
    })
}

const GREETINGS: &[&str] = &["hello", "hi", "hey", "hallo", "yo", "morning", "start"];

const FILLER: &[&str] = &[
    "please", "pls", "can", "could", "would", "you", "kindly", "krake", "hey", "hi", "ok", "okay",
    "now", "just", "go", "ahead", "and", "i", "want", "to", "let's", "lets",
];

/// Turns text into a [`Command`]. Knows the configured workspaces and agents so that
/// "what's open in hard life mode?" and "ask penn …" resolve.
#[derive(Debug, Clone)]
pub struct CommandParser {
    workspaces: Vec<Workspace>,
    agents: Vec<AgentName>,
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

    fn with_args(&self, v: Verb, args: &str, strict: bool) -> Parsed {
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
            Verb::Show | Verb::Approve | Verb::Archive | Verb::Unarchive => {
                let name = match v {
                    Verb::Show => "show",
                    Verb::Approve => "approve",
                    Verb::Archive => "archive",
                    _ => "unarchive",
                };
                let Some((id, rest)) = take_id(args) else {
                    return need_id(name);
                };
                if strict && !rest.trim().is_empty() {
                    return Parsed::NotUnderstood {
                        problem: format!(
                            "`{name}` takes only a thread number, not `{}`",
                            rest.trim()
                        ),
                        suggestion: spec(name).map(|s| s.example.to_owned()),
                    };
                }
                Parsed::Command(match v {
                    Verb::Show => Command::Show(id),
                    Verb::Approve => Command::Approve(id),
                    Verb::Archive => Command::Archive(id),
                    _ => Command::Unarchive(id),
                })
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
                let Some((id, rest)) = take_id(args) else {
                    return need_id("reject");
                };
                let mut reason = rest.trim().trim_start_matches([':', '-', ',']).trim();
                for lead in ["because ", "since ", "reason: ", "reason "] {
                    if let Some(r) = strip_prefix_ci(reason, lead) {
                        reason = r.trim();
                    }
                }
                Parsed::Command(Command::Reject {
                    id,
                    reason: (!reason.is_empty()).then(|| reason.to_owned()),
                })
            }
            Verb::Ask => self.ask(args),
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

    fn schedule(&self, args: &str) -> Parsed {
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

    fn ask(&self, args: &str) -> Parsed {
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

    fn parse_natural(&self, input: &str) -> Parsed {
        let cleaned = input.trim_end_matches(['?', '!', '.']).trim();
        // "every weekday at 8 have Soshie draft today's post", "pause schedule 3"
        if starts_like_schedule(cleaned) {
            return self.schedule(cleaned);
        }
        if let Some(c) = parse_natural_schedule(cleaned) {
            return Parsed::Command(Command::Schedule(c));
        }
        // "penn, draft a tagline" / "have soshie draft today's post"
        let (first, rest) = split_word(cleaned);
        let first_l = first.trim_end_matches([',', ':']).to_lowercase();
        if first.ends_with([',', ':']) && self.agents.iter().any(|a| a.matches(&first_l)) {
            return self.ask(cleaned);
        }
        if first_l == "have" || first_l == "get" {
            let (name, _) = split_word(rest);
            if self.agents.iter().any(|a| a.matches(name)) {
                return self.ask(rest);
            }
        }
        // Skip polite filler, then look for a verb.
        let mut text = cleaned;
        loop {
            let (w, r) = split_word(text);
            if w.is_empty() {
                break;
            }
            let wl = w.trim_end_matches(',').to_lowercase();
            if FILLER.contains(&wl.as_str()) {
                text = r;
                continue;
            }
            if let Some(v) = verb(&wl) {
                // "show me the escalations" is a listing, "show 12" / "show me #12" a thread.
                if v == Verb::Show {
                    let r2 = strip_words(r, &["me", "thread", "the"]);
                    if take_id(r2).is_some() {
                        return self.with_args(Verb::Show, r2, false);
                    }
                    return self.natural_list(r);
                }
                if v == Verb::List {
                    return self.natural_list(r);
                }
                return self.with_args(v, r, false);
            }
            break;
        }
        let lower = cleaned.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-'))
            .filter(|w| !w.is_empty())
            .collect();
        let kpi_words = ["sales", "revenue", "kpi", "kpis", "turnover", "numbers"];
        if words.iter().any(|w| kpi_words.contains(w)) {
            return Parsed::Command(Command::Kpi {
                workspace: self.find_workspace(&lower),
            });
        }
        let listy = [
            "open",
            "pending",
            "todo",
            "todos",
            "inbox",
            "escalations",
            "approvals",
            "questions",
            "notices",
            "waiting",
            "outstanding",
            "what's",
            "whats",
            "anything",
            "list",
        ];
        if words.iter().any(|w| listy.contains(w)) && take_any_id(&lower).is_none() {
            return self.natural_list(cleaned);
        }
        if words.first().is_some_and(|w| GREETINGS.contains(w)) {
            return Parsed::Command(Command::Help { topic: None });
        }
        let suggestion = words.first().and_then(|w| closest_verb(w)).map(|name| {
            let rest = cleaned
                .split_once(char::is_whitespace)
                .map(|(_, r)| r.trim())
                .unwrap_or("");
            if rest.is_empty() {
                format!("/{name}")
            } else {
                format!("/{name} {rest}")
            }
        });
        Parsed::NotUnderstood {
            problem: "I did not understand that".to_owned(),
            suggestion: suggestion.or_else(|| Some("/help".to_owned())),
        }
    }

    fn natural_list(&self, text: &str) -> Parsed {
        match self.list_query(text, false) {
            Ok(q) => Parsed::Command(Command::List(q)),
            Err(p) => p,
        }
    }

    /// Reads workspace, kind and status filters from the words of `text`. Strict mode (slash
    /// commands) refuses unknown words; natural mode ignores them.
    fn list_query(&self, text: &str, strict: bool) -> Result<ListQuery, Parsed> {
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
}

impl CommandParser {
    /// The workspace named (by slug or display name) anywhere in `text`, longest name first.
    fn find_workspace(&self, text: &str) -> Option<WorkspaceSlug> {
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

/// The definition of `name`, if it is a command.
pub fn spec(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|s| s.name == name)
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
fn closest_verb(word: &str) -> Option<&'static str> {
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

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn split_word(s: &str) -> (&str, &str) {
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

fn strip_words<'a>(mut s: &'a str, words: &[&str]) -> &'a str {
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

/// Reads a thread number (`12`, `#12`, `12:`) at the start of `s`.
fn take_id(s: &str) -> Option<(ThreadId, &str)> {
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

fn take_any_id(s: &str) -> Option<ThreadId> {
    s.split_whitespace()
        .find_map(|w| take_id(w).map(|(id, _)| id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::default_agents;
    use crate::workspace::default_workspaces;
    use proptest::prelude::*;

    fn p() -> CommandParser {
        CommandParser::new(&default_workspaces(), &default_agents())
    }

    fn cmd(s: &str) -> Command {
        match p().parse(s) {
            Parsed::Command(c) => c,
            other => panic!("{s:?} parsed as {other:?}"),
        }
    }

    fn ws(s: &str) -> Option<WorkspaceSlug> {
        Some(WorkspaceSlug::parse(s).unwrap())
    }

    #[test]
    fn slash_commands() {
        assert_eq!(
            cmd("/todo lunavo"),
            Command::List(ListQuery {
                workspace: ws("lunavo"),
                ..Default::default()
            })
        );
        assert_eq!(cmd("/approve 12"), Command::Approve(ThreadId(12)));
        assert_eq!(
            cmd("/reject 12 too expensive"),
            Command::Reject {
                id: ThreadId(12),
                reason: Some("too expensive".into())
            }
        );
        assert_eq!(
            cmd("/reject 12"),
            Command::Reject {
                id: ThreadId(12),
                reason: None
            }
        );
        assert_eq!(
            cmd("/reply 12 ship it friday"),
            Command::Reply {
                id: ThreadId(12),
                text: "ship it friday".into()
            }
        );
        assert_eq!(cmd("/todo@KrakeBot"), Command::List(ListQuery::default()));
        assert_eq!(cmd("/archive #7"), Command::Archive(ThreadId(7)));
        assert_eq!(cmd("/unarchive 7"), Command::Unarchive(ThreadId(7)));
        assert_eq!(cmd("/show 3"), Command::Show(ThreadId(3)));
        assert_eq!(cmd("/workspaces"), Command::Workspaces);
        assert_eq!(cmd("/agents"), Command::Agents);
        assert_eq!(
            cmd("/kpi lunavo"),
            Command::Kpi {
                workspace: ws("lunavo")
            }
        );
        assert_eq!(cmd("/kpi"), Command::Kpi { workspace: None });
        assert_eq!(
            cmd("how are sales in hard life mode?"),
            Command::Kpi {
                workspace: ws("hard-life-mode")
            }
        );
        assert!(matches!(
            p().parse("/kpi narnia"),
            Parsed::NotUnderstood { .. }
        ));
        assert_eq!(
            cmd("/link k7m2q9xd"),
            Command::Link {
                code: "k7m2q9xd".into()
            }
        );
        assert!(matches!(p().parse("/link"), Parsed::NotUnderstood { .. }));
        assert!(matches!(
            p().parse("/link a b"),
            Parsed::NotUnderstood { .. }
        ));
        assert_eq!(
            cmd("/help reject"),
            Command::Help {
                topic: Some("reject".into())
            }
        );
        assert_eq!(
            cmd("/todo hard-life-mode escalations all"),
            Command::List(ListQuery {
                workspace: ws("hard-life-mode"),
                kind: Some(ThreadKind::Escalation),
                status: StatusFilter::All
            })
        );
        assert_eq!(
            cmd("/ask penn draft a tagline"),
            Command::Ask {
                agent: AgentName::parse("Penn").unwrap(),
                text: "draft a tagline".into()
            }
        );
    }

    #[test]
    fn natural_phrasings() {
        assert_eq!(
            cmd("what's open in lunavo?"),
            Command::List(ListQuery {
                workspace: ws("lunavo"),
                ..Default::default()
            })
        );
        assert_eq!(
            cmd("show me the escalations"),
            Command::List(ListQuery {
                kind: Some(ThreadKind::Escalation),
                ..Default::default()
            })
        );
        assert_eq!(cmd("approve 12"), Command::Approve(ThreadId(12)));
        assert_eq!(cmd("Please approve #12"), Command::Approve(ThreadId(12)));
        assert_eq!(cmd("archive #7"), Command::Archive(ThreadId(7)));
        assert_eq!(cmd("show me #4"), Command::Show(ThreadId(4)));
        assert_eq!(
            cmd("reject 5 because the price is wrong"),
            Command::Reject {
                id: ThreadId(5),
                reason: Some("the price is wrong".into())
            }
        );
        assert_eq!(
            cmd("reply to 9: ship it friday"),
            Command::Reply {
                id: ThreadId(9),
                text: "ship it friday".into()
            }
        );
        assert_eq!(
            cmd("ask penn to draft a tagline for the hoodie"),
            Command::Ask {
                agent: AgentName::parse("Penn").unwrap(),
                text: "draft a tagline for the hoodie".into()
            }
        );
        assert_eq!(
            cmd("Soshie, draft today's post"),
            Command::Ask {
                agent: AgentName::parse("Soshie").unwrap(),
                text: "draft today's post".into()
            }
        );
        assert_eq!(
            cmd("any approvals waiting in Hard Life Mode?"),
            Command::List(ListQuery {
                workspace: ws("hard-life-mode"),
                kind: Some(ThreadKind::Approval),
                status: StatusFilter::Open
            })
        );
        assert_eq!(cmd("hello"), Command::Help { topic: None });
        assert_eq!(cmd("hello there"), Command::Help { topic: None });
    }

    #[test]
    fn not_understood_has_suggestions() {
        match p().parse("/aprove 12") {
            Parsed::NotUnderstood {
                problem,
                suggestion,
            } => {
                assert!(problem.contains("/aprove"));
                assert_eq!(suggestion.as_deref(), Some("/approve"));
            }
            other => panic!("{other:?}"),
        }
        match p().parse("aprove 12") {
            Parsed::NotUnderstood { suggestion, .. } => {
                assert_eq!(suggestion.as_deref(), Some("/approve 12"))
            }
            other => panic!("{other:?}"),
        }
        match p().parse("the weather is nice") {
            Parsed::NotUnderstood { suggestion, .. } => {
                assert_eq!(suggestion.as_deref(), Some("/help"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            p().parse("/approve"),
            Parsed::NotUnderstood { .. }
        ));
        assert!(matches!(
            p().parse("/approve twelve"),
            Parsed::NotUnderstood { .. }
        ));
        assert!(matches!(
            p().parse("/approve 0"),
            Parsed::NotUnderstood { .. }
        ));
        assert!(matches!(
            p().parse("/reply 3"),
            Parsed::NotUnderstood { .. }
        ));
        assert!(matches!(
            p().parse("/ask nobody do it"),
            Parsed::NotUnderstood { .. }
        ));
        assert!(matches!(
            p().parse("/todo narnia"),
            Parsed::NotUnderstood { .. }
        ));
        assert_eq!(p().parse("   "), Parsed::Empty);
    }

    #[test]
    fn schedule_and_folder_commands() {
        use crate::folder::FolderCommand;
        use crate::schedule::{ScheduleCommand, ScheduleId};
        let Command::Schedule(ScheduleCommand::Create(r)) = cmd(
            "/schedule dexter \"summarise last week's sales\" every monday 09:00 Europe/Berlin",
        ) else {
            panic!()
        };
        assert_eq!(r.who.as_deref(), Some("dexter"));
        assert_eq!(r.when.description, "every Monday at 09:00");
        let Command::Schedule(ScheduleCommand::Create(r)) =
            cmd("every weekday at 8 have Soshie draft today's post")
        else {
            panic!()
        };
        assert_eq!(r.who.as_deref(), Some("Soshie"));
        assert_eq!(r.when.cron, "0 0 8 * * MON-FRI");
        let Command::Schedule(ScheduleCommand::Create(r)) =
            cmd("schedule penn to write the newsletter every friday at 10")
        else {
            panic!()
        };
        assert_eq!(r.task, "write the newsletter");
        assert_eq!(cmd("/schedules"), Command::Schedule(ScheduleCommand::List));
        assert_eq!(
            cmd("/schedule pause 3"),
            Command::Schedule(ScheduleCommand::Pause(ScheduleId(3)))
        );
        assert_eq!(
            cmd("run schedule 3 now"),
            Command::Schedule(ScheduleCommand::RunNow(ScheduleId(3)))
        );
        assert_eq!(
            cmd("/folders"),
            Command::Folder(FolderCommand::List { agent: None })
        );
        assert_eq!(
            cmd("/folders soshie"),
            Command::Folder(FolderCommand::List {
                agent: Some("Soshie".into())
            })
        );
        assert!(matches!(
            cmd("/folder show soshie \"content calendar\""),
            Command::Folder(FolderCommand::Show { folder, .. }) if folder == "content calendar"
        ));
        for bad in [
            "/schedule dexter \"x\" cron 0 25 * * *",
            "/schedule dexter \"x\" every monday 09:00 Europe/Berln",
            "/schedule",
            "/folder create nobody x",
            "/folder frobnicate",
        ] {
            match p().parse(bad) {
                Parsed::NotUnderstood { problem, .. } => assert!(!problem.is_empty()),
                other => panic!("{bad}: {other:?}"),
            }
        }
        match p().parse("/schedule dexter \"x\" every monday 09:00 Europe/Berln") {
            Parsed::NotUnderstood { problem, .. } => {
                assert!(problem.contains("Europe/Berln") && problem.contains("Europe/Berlin"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_spec_example_parses() {
        for s in COMMANDS {
            assert!(
                matches!(p().parse(s.example), Parsed::Command(_)),
                "{}",
                s.example
            );
            assert!(s.about.len() <= 100);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn parser_never_panics(s in "\\PC{0,200}") {
            let _ = p().parse(&s);
        }

        #[test]
        fn parser_never_panics_on_commandish(v in "(/)?(approve|reject|reply|todo|show|ask|archive|help|unarchive)", rest in "[ #0-9a-zA-Z:,\\-\u{00e9}\u{1F600}]{0,40}") {
            let _ = p().parse(&format!("{v} {rest}"));
        }

        #[test]
        fn parser_never_panics_on_schedules_and_folders(v in "(/)?(schedule|schedules|folder|folders|every|pause schedule|run schedule)", rest in "[ #0-9a-zA-Z:,/=\"\n\\-\u{00e9}\u{1F600}*]{0,60}") {
            let _ = p().parse(&format!("{v} {rest}"));
        }
    }
}
