//! The `/folder` family of commands ([`FolderCommand`]) and its parser.

use crate::folder::{ColumnKind, EntryId};

/// The `/folder` family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderCommand {
    /// List folders, of one agent or all.
    List {
        /// The agent.
        agent: Option<String>,
    },
    /// Create a folder.
    Create {
        /// The agent.
        agent: String,
        /// Its name.
        name: String,
    },
    /// Rename a folder.
    Rename {
        /// The agent.
        agent: String,
        /// The folder.
        folder: String,
        /// New name.
        to: String,
    },
    /// Delete a folder.
    Delete {
        /// The agent.
        agent: String,
        /// The folder.
        folder: String,
    },
    /// Show a folder as a table.
    Show {
        /// The agent.
        agent: String,
        /// The folder.
        folder: String,
    },
    /// Add a column.
    AddColumn {
        /// The agent.
        agent: String,
        /// The folder.
        folder: String,
        /// The column's name.
        column: String,
        /// The column's type.
        kind: ColumnKind,
    },
    /// Rename a column.
    RenameColumn {
        /// The agent.
        agent: String,
        /// The folder.
        folder: String,
        /// The column.
        column: String,
        /// New name.
        to: String,
    },
    /// Remove a column.
    RemoveColumn {
        /// The agent.
        agent: String,
        /// The folder.
        folder: String,
        /// The column.
        column: String,
    },
    /// Add an entry.
    AddEntry {
        /// The agent.
        agent: String,
        /// The folder.
        folder: String,
        /// `column=value` pairs.
        values: Vec<(String, String)>,
    },
    /// Update an entry.
    UpdateEntry {
        /// The agent.
        agent: String,
        /// The folder.
        folder: String,
        /// The entry.
        id: EntryId,
        /// `column=value` pairs.
        values: Vec<(String, String)>,
    },
    /// Delete an entry.
    DeleteEntry {
        /// The agent.
        agent: String,
        /// The folder.
        folder: String,
        /// The entry.
        id: EntryId,
    },
    /// Export as CSV.
    Export {
        /// The agent.
        agent: String,
        /// The folder.
        folder: String,
    },
    /// Import CSV (given on the lines after the command).
    Import {
        /// The agent.
        agent: String,
        /// The folder.
        folder: String,
        /// The CSV text, header first.
        csv: String,
    },
}

/// Splits into words, keeping "quoted text" (straight or curly quotes) together, also after
/// `key=`.
pub fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in s.chars() {
        if matches!(c, '"' | '“' | '”') {
            quoted = !quoted;
            any = true;
        } else if c.is_whitespace() && !quoted {
            if any || !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
                any = false;
            }
        } else {
            cur.push(c);
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

const USAGE: &str = "folder commands: /folders [agent], /folder create|show|delete|export <agent> <folder>, /folder rename <agent> <folder> <new>, /folder addcol <agent> <folder> <column> <text|number|date|url|status a,b>, /folder renamecol|dropcol …, /folder add <agent> <folder> col=value …, /folder update|remove <agent> <folder> <entry#> …, /folder import <agent> <folder> + CSV lines";

/// Parses the arguments of `/folder` (`list` for `/folders`). `agents` are the known agent
/// names; `Err` says what is wrong.
pub fn parse_folder_command(args: &str, agents: &[&str]) -> Result<FolderCommand, String> {
    // The first line holds the command; an import's CSV follows on the next lines.
    let (first, more) = match args.split_once('\n') {
        Some((f, m)) => (f, Some(m)),
        None => (args, None),
    };
    let w = words(first);
    let verb = w.first().map(|s| s.to_lowercase()).unwrap_or_default();
    let agent_at = |i: usize| -> Result<String, String> {
        let Some(name) = w.get(i) else {
            return Err(format!("say whose folder: {USAGE}"));
        };
        agents
            .iter()
            .find(|a| a.eq_ignore_ascii_case(name))
            .map(|a| (*a).to_owned())
            .ok_or_else(|| {
                format!(
                    "there is no agent called `{}`; the agents are {}",
                    name.chars().take(32).collect::<String>(),
                    agents.join(", ")
                )
            })
    };
    let arg = |i: usize, what: &str| -> Result<String, String> {
        w.get(i)
            .cloned()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| format!("`/folder {verb}` needs {what}"))
    };
    let entry_id = |i: usize| -> Result<EntryId, String> {
        let s = arg(i, "an entry number")?;
        s.trim_start_matches('#')
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .map(EntryId)
            .ok_or_else(|| format!("`{s}` is not an entry number"))
    };
    let pairs = |from: usize| -> Result<Vec<(String, String)>, String> {
        let mut v = Vec::new();
        for p in w.iter().skip(from) {
            let Some((k, val)) = p.split_once('=') else {
                return Err(format!(
                    "`{p}` is not column=value; quote values with spaces: title=\"Hoodie launch\""
                ));
            };
            v.push((k.trim().to_owned(), val.to_owned()));
        }
        if v.is_empty() {
            return Err("give values as column=value".to_owned());
        }
        Ok(v)
    };
    let drop_to = |i: usize| -> usize {
        if w.get(i).is_some_and(|s| s.eq_ignore_ascii_case("to")) {
            i + 1
        } else {
            i
        }
    };
    Ok(match verb.as_str() {
        "" | "list" | "ls" => FolderCommand::List {
            agent: if w.len() > 1 {
                Some(agent_at(1)?)
            } else {
                None
            },
        },
        "create" | "new" | "make" => FolderCommand::Create {
            agent: agent_at(1)?,
            name: arg(2, "a folder name")?,
        },
        "rename" => FolderCommand::Rename {
            agent: agent_at(1)?,
            folder: arg(2, "a folder")?,
            to: arg(drop_to(3), "the new name")?,
        },
        "delete" | "rm" => FolderCommand::Delete {
            agent: agent_at(1)?,
            folder: arg(2, "a folder")?,
        },
        "show" | "view" | "open" | "table" => FolderCommand::Show {
            agent: agent_at(1)?,
            folder: arg(2, "a folder")?,
        },
        "addcol" | "add-column" | "column" => {
            let agent = agent_at(1)?;
            let folder = arg(2, "a folder")?;
            let column = arg(3, "a column name")?;
            let kind = arg(4, "a column type (text, number, date, status, url)")?;
            let values = (w.len() > 5).then(|| w[5..].join(","));
            FolderCommand::AddColumn {
                agent,
                folder,
                column,
                kind: ColumnKind::parse(&kind, values.as_deref())?,
            }
        }
        "renamecol" | "rename-column" => FolderCommand::RenameColumn {
            agent: agent_at(1)?,
            folder: arg(2, "a folder")?,
            column: arg(3, "a column")?,
            to: arg(drop_to(4), "the new name")?,
        },
        "dropcol" | "removecol" | "remove-column" | "delcol" => FolderCommand::RemoveColumn {
            agent: agent_at(1)?,
            folder: arg(2, "a folder")?,
            column: arg(3, "a column")?,
        },
        "add" | "insert" => FolderCommand::AddEntry {
            agent: agent_at(1)?,
            folder: arg(2, "a folder")?,
            values: pairs(3)?,
        },
        "update" | "set" | "edit" => FolderCommand::UpdateEntry {
            agent: agent_at(1)?,
            folder: arg(2, "a folder")?,
            id: entry_id(3)?,
            values: pairs(4)?,
        },
        "remove" | "del" => FolderCommand::DeleteEntry {
            agent: agent_at(1)?,
            folder: arg(2, "a folder")?,
            id: entry_id(3)?,
        },
        "export" | "csv" => FolderCommand::Export {
            agent: agent_at(1)?,
            folder: arg(2, "a folder")?,
        },
        "import" => {
            let agent = agent_at(1)?;
            let folder = arg(2, "a folder")?;
            let csv = more.unwrap_or("").trim_matches('\n').to_owned();
            if csv.trim().is_empty() {
                return Err("put the CSV (header first) on the lines after `/folder import <agent> <folder>`, or use `krake folder import` with a file".to_owned());
            }
            FolderCommand::Import { agent, folder, csv }
        }
        other => {
            return Err(format!(
                "`{}` is not a folder command; {USAGE}",
                other.chars().take(30).collect::<String>()
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        let agents = ["Soshie", "Dexter"];
        assert_eq!(
            parse_folder_command("create soshie \"Content calendar\"", &agents),
            Ok(FolderCommand::Create {
                agent: "Soshie".into(),
                name: "Content calendar".into()
            })
        );
        assert_eq!(
            parse_folder_command(
                "add soshie calendar title=\"Hoodie launch\" status=draft",
                &agents
            ),
            Ok(FolderCommand::AddEntry {
                agent: "Soshie".into(),
                folder: "calendar".into(),
                values: vec![
                    ("title".into(), "Hoodie launch".into()),
                    ("status".into(), "draft".into())
                ]
            })
        );
        assert!(matches!(
            parse_folder_command("addcol soshie calendar status status draft, posted", &agents),
            Ok(FolderCommand::AddColumn { kind: ColumnKind::Status(v), .. }) if v == ["draft", "posted"]
        ));
        assert!(parse_folder_command("addcol soshie calendar status status", &agents).is_err());
        assert!(parse_folder_command("create nobody x", &agents).is_err());
        assert!(parse_folder_command("update soshie cal x a=b", &agents).is_err());
        assert!(parse_folder_command("frob", &agents).is_err());
        assert!(matches!(
            parse_folder_command("import dexter leads\nname\nAcme", &agents),
            Ok(FolderCommand::Import { csv, .. }) if csv == "name\nAcme"
        ));
    }
}
