//! The command table: every command's name, arguments, help text and example, the single
//! source for help and for the command lists fronts register with their platforms.

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
        args: "<id> [more ids]",
        about: "Approve a thread, or several: /approve 13 14 15",
        example: "/approve 12",
    },
    CommandSpec {
        name: "reject",
        args: "<id> [more ids] [reason]",
        about: "Reject a thread (or several), with a reason",
        example: "/reject 12 too expensive",
    },
    CommandSpec {
        name: "archive",
        args: "<id> [more ids]",
        about: "Archive a thread, or several",
        example: "/archive 7",
    },
    CommandSpec {
        name: "unarchive",
        args: "<id> [more ids]",
        about: "Bring archived threads back",
        example: "/unarchive 7",
    },
    CommandSpec {
        name: "runs",
        args: "[workspace] [agent] [status]",
        about: "List agents' runs, optionally filtered",
        example: "/runs lunavo penn running",
    },
    CommandSpec {
        name: "run",
        args: "<id>",
        about: "Show one run: its steps and tool calls, tokens and cost",
        example: "/run 12",
    },
    CommandSpec {
        name: "cancel",
        args: "<run id> [reason]",
        about: "Stop a run: no more model calls, no action",
        example: "/cancel 12 wrong brief",
    },
    CommandSpec {
        name: "stats",
        args: "[workspace]",
        about: "How fast threads are decided or answered this month (median, p95)",
        example: "/stats lunavo",
    },
    CommandSpec {
        name: "deadletters",
        args: "[retry <id> | discard <id>]",
        about: "Messages that could not be delivered (owners): send again or give up",
        example: "/deadletters retry 41",
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
        name: "search",
        args: "[workspace] <text>",
        about: "Search a workspace's knowledge base: cited passages",
        example: "/search lunavo return policy",
    },
    CommandSpec {
        name: "sources",
        args: "[workspace]",
        about: "List what a workspace's knowledge holds: files sent in chat or uploaded",
        example: "/sources lunavo",
    },
    CommandSpec {
        name: "source",
        args: "[workspace] <file> [§n]",
        about: "Show the passage an answer cited: /source returns-policy.pdf §3",
        example: "/source returns-policy.pdf §3",
    },
    CommandSpec {
        name: "forget",
        args: "[workspace] <file>",
        about: "Remove a learned file from a workspace's knowledge",
        example: "/forget lunavo returns-policy.pdf",
    },
    CommandSpec {
        name: "kpi",
        args: "[workspace]",
        about: "Show a workspace's KPIs: today, the period, the change and the target",
        example: "/kpi lunavo",
    },
    CommandSpec {
        name: "overview",
        args: "",
        about: "Every workspace's key figures, total revenue and what happened lately",
        example: "/overview",
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

/// The definition of `name`, if it is a command.
pub fn spec(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::command::Parsed;
    use crate::chat::command::parser::tests::p;

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
}
