//! Folders: an agent's excel-like tables. A folder has typed columns (text, number, date,
//! status with allowed values, url) and entries; it renders as a monospace table and goes
//! to and from CSV. A CSV with bad rows imports nothing and lists every bad row.
//!
//! `csv` is a small pure crate (no I/O of its own): reading and writing CSV correctly
//! (quotes, embedded newlines) is part of the domain rule "bad rows are reported per row".

use crate::ports::RepoError;
use crate::time::Timestamp;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;

/// A folder's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FolderId(pub i64);

/// A column's id (stable across renames).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ColumnId(pub i64);

/// An entry's id, shown as `#3` in listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId(pub i64);

/// A folder or column name: 1–60 characters, no control characters, no `=`; compared
/// ignoring case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name(String);

impl Name {
    /// Parses a name.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if t.is_empty() || t.chars().count() > 60 || t.chars().any(|c| c.is_control() || c == '=') {
            return Err(format!(
                "`{}` is not a valid name: use 1 to 60 characters, without `=`",
                t.chars().take(60).collect::<String>()
            ));
        }
        Ok(Self(t.to_owned()))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lowercase key names are unique by.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// A column's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnKind {
    /// Any text.
    Text,
    /// A decimal number.
    Number,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// One of the allowed values.
    Status(Vec<String>),
    /// An `http://` or `https://` address.
    Url,
}

impl ColumnKind {
    /// The stored type name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ColumnKind::Text => "text",
            ColumnKind::Number => "number",
            ColumnKind::Date => "date",
            ColumnKind::Status(_) => "status",
            ColumnKind::Url => "url",
        }
    }

    /// Parses a type name and, for `status`, its allowed values (`draft,posted` or `a|b`).
    pub fn parse(kind: &str, values: Option<&str>) -> Result<Self, String> {
        Ok(match kind.trim().to_lowercase().as_str() {
            "text" | "string" => ColumnKind::Text,
            "number" | "num" | "int" | "decimal" => ColumnKind::Number,
            "date" => ColumnKind::Date,
            "url" | "link" => ColumnKind::Url,
            "status" | "choice" => {
                let vals: Vec<String> = values
                    .unwrap_or("")
                    .split([',', '|'])
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .collect();
                if vals.is_empty() {
                    return Err("a status column needs its allowed values, e.g. `status draft,scheduled,posted`".to_owned());
                }
                ColumnKind::Status(vals)
            }
            other => {
                return Err(format!(
                    "`{other}` is not a column type; use text, number, date, status or url"
                ));
            }
        })
    }

    /// Checks a cell value and returns its canonical form; an empty value is always allowed.
    pub fn check(&self, value: &str) -> Result<String, String> {
        let v = value.trim();
        if v.is_empty() {
            return Ok(String::new());
        }
        match self {
            ColumnKind::Text => {
                if v.chars().count() > 2000 {
                    return Err("is longer than 2000 characters".to_owned());
                }
                Ok(v.to_owned())
            }
            ColumnKind::Number => {
                let cleaned = v.replace('_', "");
                match cleaned.parse::<f64>() {
                    Ok(x) if x.is_finite() && !cleaned.contains(['e', 'E']) => Ok(cleaned),
                    _ => Err(format!("`{v}` is not a number")),
                }
            }
            ColumnKind::Date => chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map(|d| d.format("%Y-%m-%d").to_string())
                .map_err(|_| format!("`{v}` is not a date (YYYY-MM-DD)")),
            ColumnKind::Status(allowed) => allowed
                .iter()
                .find(|a| a.eq_ignore_ascii_case(v))
                .cloned()
                .ok_or_else(|| format!("`{v}` is not one of {}", allowed.join(", "))),
            ColumnKind::Url => {
                let rest = v
                    .strip_prefix("https://")
                    .or_else(|| v.strip_prefix("http://"));
                match rest {
                    Some(r)
                        if !r.is_empty()
                            && !r.starts_with('/')
                            && !v.chars().any(char::is_whitespace) =>
                    {
                        Ok(v.to_owned())
                    }
                    _ => Err(format!("`{v}` is not a URL (http:// or https://)")),
                }
            }
        }
    }

    /// "text", "status: draft|posted".
    pub fn describe(&self) -> String {
        match self {
            ColumnKind::Status(v) => format!("status: {}", v.join("|")),
            k => k.as_str().to_owned(),
        }
    }
}

/// A column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Id.
    pub id: ColumnId,
    /// Name.
    pub name: Name,
    /// Type.
    pub kind: ColumnKind,
}

/// A folder with its columns, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// Id.
    pub id: FolderId,
    /// The agent it belongs to (`Soshie`).
    pub agent: String,
    /// Name.
    pub name: Name,
    /// Columns, in order.
    pub columns: Vec<Column>,
    /// How many entries it has.
    pub entries: i64,
}

impl Folder {
    /// The column with this name (ignoring case).
    pub fn column(&self, name: &str) -> Option<&Column> {
        let k = name.trim().to_lowercase();
        self.columns.iter().find(|c| c.name.key() == k)
    }
}

/// Cell values by column.
pub type Values = BTreeMap<ColumnId, String>;

/// An entry (a row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Id.
    pub id: EntryId,
    /// Values by column; columns without a value are blank.
    pub values: Values,
}

/// Folders' storage.
#[async_trait]
pub trait FolderRepo: Send + Sync {
    /// Creates a folder; `None` if the agent already has one of that name.
    async fn create_folder(
        &self,
        agent: &str,
        name: &Name,
        now: Timestamp,
    ) -> Result<Option<Folder>, RepoError>;
    /// The folders of an agent (all agents' when `None`), by agent and name.
    async fn folders(&self, agent: Option<&str>) -> Result<Vec<Folder>, RepoError>;
    /// One folder with its columns.
    async fn folder(&self, agent: &str, name: &str) -> Result<Option<Folder>, RepoError>;
    /// Renames a folder; `false` if the new name is taken.
    async fn rename_folder(&self, id: FolderId, name: &Name) -> Result<bool, RepoError>;
    /// Deletes a folder with its columns and entries; returns how many entries went.
    async fn delete_folder(&self, id: FolderId) -> Result<u64, RepoError>;
    /// Adds a column at the end; `None` if the name is taken.
    async fn add_column(
        &self,
        folder: FolderId,
        name: &Name,
        kind: &ColumnKind,
    ) -> Result<Option<Column>, RepoError>;
    /// Renames a column; `false` if the new name is taken.
    async fn rename_column(
        &self,
        folder: FolderId,
        column: ColumnId,
        name: &Name,
    ) -> Result<bool, RepoError>;
    /// Removes a column and its values.
    async fn remove_column(&self, folder: FolderId, column: ColumnId) -> Result<(), RepoError>;
    /// Adds entries in one transaction (all or nothing), marking `ctx.inbound` applied in it.
    async fn add_entries(
        &self,
        folder: FolderId,
        entries: &[Values],
        ctx: &crate::ports::WriteCtx,
    ) -> Result<Vec<EntryId>, RepoError>;
    /// Sets some values of an entry; `None` if there is no such entry in the folder.
    async fn update_entry(
        &self,
        folder: FolderId,
        id: EntryId,
        values: &Values,
        now: Timestamp,
    ) -> Result<Option<Entry>, RepoError>;
    /// Deletes an entry; `false` if absent.
    async fn delete_entry(&self, folder: FolderId, id: EntryId) -> Result<bool, RepoError>;
    /// The entries of a folder, by id.
    async fn entries(&self, folder: FolderId) -> Result<Vec<Entry>, RepoError>;
}

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

/// Checks `column=value` pairs against a folder's columns.
pub fn check_pairs(folder: &Folder, pairs: &[(String, String)]) -> Result<Values, Vec<String>> {
    let mut values = Values::new();
    let mut errors = Vec::new();
    for (k, v) in pairs {
        match folder.column(k) {
            None => errors.push(format!(
                "there is no column `{k}` (columns: {})",
                column_names(folder)
            )),
            Some(c) => match c.kind.check(v) {
                Ok(v) => {
                    values.insert(c.id, v);
                }
                Err(e) => errors.push(format!("column `{}`: {e}", c.name)),
            },
        }
    }
    if errors.is_empty() {
        Ok(values)
    } else {
        Err(errors)
    }
}

fn column_names(folder: &Folder) -> String {
    if folder.columns.is_empty() {
        return "none yet".to_owned();
    }
    folder
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One bad CSV row: its line number (the header is line 1) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line of the record (the header is line 1).
    pub line: u64,
    /// The problems, joined.
    pub problem: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

/// Reads CSV (header = column names, in any order, a subset allowed) into checked values.
/// Any bad row fails the whole import, listing every bad row.
pub fn parse_csv(folder: &Folder, text: &str) -> Result<Vec<Values>, Vec<RowError>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_owned()).collect(),
        Err(e) => {
            return Err(vec![RowError {
                line: 1,
                problem: format!("the header cannot be read: {e}"),
            }]);
        }
    };
    let mut cols = Vec::new();
    let mut header_errors = Vec::new();
    for (i, h) in header.iter().enumerate() {
        match folder.column(h) {
            Some(c) if cols.iter().any(|x: &&Column| x.id == c.id) => {
                header_errors.push(format!("column `{h}` appears twice"))
            }
            Some(c) => cols.push(c),
            None => header_errors.push(format!(
                "column {} `{h}` is not a column of {} (columns: {})",
                i + 1,
                folder.name,
                column_names(folder)
            )),
        }
    }
    if !header_errors.is_empty() {
        return Err(vec![RowError {
            line: 1,
            problem: header_errors.join("; "),
        }]);
    }
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for rec in reader.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(RowError {
                    line,
                    problem: format!("cannot be read: {e}"),
                });
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        if rec.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if rec.len() != cols.len() {
            errors.push(RowError {
                line,
                problem: format!("has {} fields, the header has {}", rec.len(), cols.len()),
            });
            continue;
        }
        let mut values = Values::new();
        let mut problems = Vec::new();
        for (c, field) in cols.iter().zip(rec.iter()) {
            match c.kind.check(field) {
                Ok(v) => {
                    values.insert(c.id, v);
                }
                Err(e) => problems.push(format!("column `{}`: {e}", c.name)),
            }
        }
        if problems.is_empty() {
            rows.push(values);
        } else {
            errors.push(RowError {
                line,
                problem: problems.join("; "),
            });
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// Writes a folder's entries as CSV, header first (columns in order, no ids).
pub fn to_csv(folder: &Folder, entries: &[Entry]) -> String {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let _ = w.write_record(folder.columns.iter().map(|c| c.name.as_str()));
    for e in entries {
        let _ = w.write_record(
            folder
                .columns
                .iter()
                .map(|c| e.values.get(&c.id).map_or("", String::as_str)),
        );
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

fn cell(s: &str, width: usize) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let n = s.chars().count();
    if n > width {
        let cut: String = s.chars().take(width.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        format!("{s}{}", " ".repeat(width - n))
    }
}

/// Renders a folder as a monospace table (at most 28 characters per cell).
pub fn render_table(folder: &Folder, entries: &[Entry]) -> String {
    const MAX: usize = 28;
    let ids: Vec<String> = entries.iter().map(|e| format!("#{}", e.id.0)).collect();
    let id_w = ids.iter().map(|s| s.len()).max().unwrap_or(1).max(1);
    let widths: Vec<usize> = folder
        .columns
        .iter()
        .map(|c| {
            entries
                .iter()
                .map(|e| e.values.get(&c.id).map_or(0, |v| v.chars().count()))
                .chain(std::iter::once(c.name.as_str().chars().count()))
                .max()
                .unwrap_or(1)
                .clamp(1, MAX)
        })
        .collect();
    let mut t = String::new();
    let _ = write!(t, "{}", cell("", id_w));
    for (c, w) in folder.columns.iter().zip(&widths) {
        let _ = write!(t, " | {}", cell(c.name.as_str(), *w));
    }
    t = t.trim_end().to_owned();
    t.push('\n');
    let _ = write!(t, "{}", "-".repeat(id_w));
    for w in &widths {
        let _ = write!(t, "-+-{}", "-".repeat(*w));
    }
    t.push('\n');
    for (e, id) in entries.iter().zip(&ids) {
        let mut line = cell(id, id_w);
        for (c, w) in folder.columns.iter().zip(&widths) {
            let _ = write!(
                line,
                " | {}",
                cell(e.values.get(&c.id).map_or("", String::as_str), *w)
            );
        }
        t.push_str(line.trim_end());
        t.push('\n');
    }
    t.trim_end().to_owned()
}

impl crate::service::Krake {
    /// Handles the `/folder` family.
    pub(crate) async fn folder_command(
        &self,
        actor: &crate::actor::Actor,
        cmd: FolderCommand,
        ctx: &crate::ports::WriteCtx,
    ) -> Result<crate::reply::Reply, RepoError> {
        use crate::actor::Role;
        use crate::reply::Reply;
        let Some(repo) = self.folders.clone() else {
            return Ok(Reply::warning("Folders are not available on this front."));
        };
        let reads = matches!(
            cmd,
            FolderCommand::List { .. } | FolderCommand::Show { .. } | FolderCommand::Export { .. }
        );
        // An agent's folders are as visible as the agent's workspaces: readable by whoever
        // sees one of them, writable by a member of one of them.
        let agent_ws = |agent: &str| -> Vec<crate::workspace::WorkspaceSlug> {
            self.directory
                .agent(agent)
                .map(|a| a.workspaces.clone())
                .unwrap_or_default()
        };
        let may_read = |agent: &str| agent_ws(agent).iter().any(|w| actor.can_see(w));
        let may_write = |agent: &str| {
            agent_ws(agent)
                .iter()
                .any(|w| actor.role_in(w) >= Role::Member)
        };
        let target = match &cmd {
            FolderCommand::List { agent } => agent.clone(),
            FolderCommand::Create { agent, .. }
            | FolderCommand::Rename { agent, .. }
            | FolderCommand::Delete { agent, .. }
            | FolderCommand::Show { agent, .. }
            | FolderCommand::AddColumn { agent, .. }
            | FolderCommand::RenameColumn { agent, .. }
            | FolderCommand::RemoveColumn { agent, .. }
            | FolderCommand::AddEntry { agent, .. }
            | FolderCommand::UpdateEntry { agent, .. }
            | FolderCommand::DeleteEntry { agent, .. }
            | FolderCommand::Export { agent, .. }
            | FolderCommand::Import { agent, .. } => Some(agent.clone()),
        };
        if let Some(agent) = &target {
            if !may_read(agent) {
                return Ok(Reply::warning(format!(
                    "{agent}'s folders are hidden from you: you are not a member of the workspaces {agent} works in."
                )));
            }
            if !reads && !may_write(agent) {
                return Ok(Reply::warning(format!(
                    "Changing {agent}'s folders needs the member role in a workspace {agent} works in."
                )));
            }
        }
        let name = |s: &str| Name::parse(s);
        // Loads the folder or answers that it does not exist.
        macro_rules! load {
            ($agent:expr, $folder:expr) => {
                match repo.folder(&$agent, &$folder).await? {
                    Some(f) => f,
                    None => {
                        return Ok(Reply::warning(format!(
                            "{} has no folder `{}`. See /folders {}.",
                            $agent,
                            $folder,
                            $agent.to_lowercase()
                        )));
                    }
                }
            };
        }
        macro_rules! column {
            ($f:expr, $c:expr) => {
                match $f.column(&$c) {
                    Some(c) => c.clone(),
                    None => {
                        return Ok(Reply::warning(format!(
                            "{} has no column `{}` (columns: {}).",
                            $f.name,
                            $c,
                            column_names(&$f)
                        )));
                    }
                }
            };
        }
        Ok(match cmd {
            FolderCommand::List { agent } => {
                let all: Vec<Folder> = repo
                    .folders(agent.as_deref())
                    .await?
                    .into_iter()
                    .filter(|f| may_read(&f.agent))
                    .collect();
                if all.is_empty() {
                    return Ok(Reply::info(match agent {
                        Some(a) => format!(
                            "{a} has no folders yet. Create one: /folder create {} \"content calendar\"",
                            a.to_lowercase()
                        ),
                        None => {
                            "No folders yet. Create one: /folder create soshie \"content calendar\""
                                .to_owned()
                        }
                    }));
                }
                let mut t = String::from("Folders:\n");
                for f in &all {
                    let _ = writeln!(
                        t,
                        "  {:<7} {:<28} {} column(s), {} entr{}",
                        f.agent,
                        f.name.as_str(),
                        f.columns.len(),
                        f.entries,
                        if f.entries == 1 { "y" } else { "ies" }
                    );
                }
                t.push_str("Open one with /folder show <agent> <folder>.");
                Reply::info(t)
            }
            FolderCommand::Create { agent, name: n } => {
                let n = match name(&n) {
                    Ok(n) => n,
                    Err(e) => return Ok(Reply::warning(e)),
                };
                match repo.create_folder(&agent, &n, ctx.now).await? {
                    Some(f) => Reply::success(format!(
                        "Created folder {} for {}. Add columns: /folder addcol {} \"{}\" <column> <text|number|date|url|status a,b>",
                        f.name,
                        agent,
                        agent.to_lowercase(),
                        f.name
                    )),
                    None => Reply::warning(format!("{agent} already has a folder called {n}.")),
                }
            }
            FolderCommand::Rename { agent, folder, to } => {
                let f = load!(agent, folder);
                let to = match name(&to) {
                    Ok(n) => n,
                    Err(e) => return Ok(Reply::warning(e)),
                };
                if repo.rename_folder(f.id, &to).await? {
                    Reply::success(format!("Renamed {agent}'s folder {} to {to}.", f.name))
                } else {
                    Reply::warning(format!("{agent} already has a folder called {to}."))
                }
            }
            FolderCommand::Delete { agent, folder } => {
                let f = load!(agent, folder);
                let n = repo.delete_folder(f.id).await?;
                Reply::success(format!(
                    "Deleted {agent}'s folder {} with its {n} entr{}.",
                    f.name,
                    if n == 1 { "y" } else { "ies" }
                ))
            }
            FolderCommand::Show { agent, folder } => {
                let f = load!(agent, folder);
                let entries = repo.entries(f.id).await?;
                if f.columns.is_empty() {
                    return Ok(Reply::info(format!(
                        "{agent}'s folder {} has no columns yet. Add one: /folder addcol {} \"{}\" title text",
                        f.name,
                        agent.to_lowercase(),
                        f.name
                    )));
                }
                let kinds: Vec<String> = f
                    .columns
                    .iter()
                    .map(|c| format!("{}: {}", c.name, c.kind.describe()))
                    .collect();
                Reply::info(format!(
                    "{agent} / {} ({} entr{}; {})\n{}",
                    f.name,
                    entries.len(),
                    if entries.len() == 1 { "y" } else { "ies" },
                    kinds.join(", "),
                    render_table(&f, &entries)
                ))
            }
            FolderCommand::AddColumn {
                agent,
                folder,
                column,
                kind,
            } => {
                let f = load!(agent, folder);
                let n = match name(&column) {
                    Ok(n) => n,
                    Err(e) => return Ok(Reply::warning(e)),
                };
                match repo.add_column(f.id, &n, &kind).await? {
                    Some(c) => Reply::success(format!(
                        "Added column {} ({}) to {}.",
                        c.name,
                        c.kind.describe(),
                        f.name
                    )),
                    None => Reply::warning(format!("{} already has a column called {n}.", f.name)),
                }
            }
            FolderCommand::RenameColumn {
                agent,
                folder,
                column,
                to,
            } => {
                let f = load!(agent, folder);
                let c = column!(f, column);
                let to = match name(&to) {
                    Ok(n) => n,
                    Err(e) => return Ok(Reply::warning(e)),
                };
                if repo.rename_column(f.id, c.id, &to).await? {
                    Reply::success(format!("Renamed column {} of {} to {to}.", c.name, f.name))
                } else {
                    Reply::warning(format!("{} already has a column called {to}.", f.name))
                }
            }
            FolderCommand::RemoveColumn {
                agent,
                folder,
                column,
            } => {
                let f = load!(agent, folder);
                let c = column!(f, column);
                repo.remove_column(f.id, c.id).await?;
                Reply::success(format!(
                    "Removed column {} and its values from {}.",
                    c.name, f.name
                ))
            }
            FolderCommand::AddEntry {
                agent,
                folder,
                values,
            } => {
                let f = load!(agent, folder);
                let v = match check_pairs(&f, &values) {
                    Ok(v) => v,
                    Err(errs) => {
                        return Ok(Reply::warning(format!(
                            "Nothing was added: {}.",
                            errs.join("; ")
                        )));
                    }
                };
                let ids = repo.add_entries(f.id, &[v], ctx).await?;
                let id = ids.first().map_or(0, |i| i.0);
                Reply::success(format!("Added #{id} to {agent}'s {}.", f.name))
            }
            FolderCommand::UpdateEntry {
                agent,
                folder,
                id,
                values,
            } => {
                let f = load!(agent, folder);
                let v = match check_pairs(&f, &values) {
                    Ok(v) => v,
                    Err(errs) => {
                        return Ok(Reply::warning(format!(
                            "Nothing was changed: {}.",
                            errs.join("; ")
                        )));
                    }
                };
                match repo.update_entry(f.id, id, &v, ctx.now).await? {
                    Some(_) => Reply::success(format!("Updated #{} in {}.", id.0, f.name)),
                    None => Reply::warning(format!("{} has no entry #{}.", f.name, id.0)),
                }
            }
            FolderCommand::DeleteEntry { agent, folder, id } => {
                let f = load!(agent, folder);
                if repo.delete_entry(f.id, id).await? {
                    Reply::success(format!("Deleted #{} from {}.", id.0, f.name))
                } else {
                    Reply::warning(format!("{} has no entry #{}.", f.name, id.0))
                }
            }
            FolderCommand::Export { agent, folder } => {
                let f = load!(agent, folder);
                let entries = repo.entries(f.id).await?;
                Reply::info(to_csv(&f, &entries).trim_end().to_owned())
            }
            FolderCommand::Import { agent, folder, csv } => {
                let f = load!(agent, folder);
                match parse_csv(&f, &csv) {
                    Err(errs) => Reply::warning(format!(
                        "Imported nothing: {} bad row{}:\n{}",
                        errs.len(),
                        if errs.len() == 1 { "" } else { "s" },
                        errs.iter()
                            .map(|e| format!("  {e}"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    )),
                    Ok(rows) => {
                        let ids = repo.add_entries(f.id, &rows, ctx).await?;
                        Reply::success(format!(
                            "Imported {} entr{} into {agent}'s {}.",
                            ids.len(),
                            if ids.len() == 1 { "y" } else { "ies" },
                            f.name
                        ))
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder() -> Folder {
        Folder {
            id: FolderId(1),
            agent: "Soshie".into(),
            name: Name::parse("Content calendar").unwrap(),
            columns: vec![
                Column {
                    id: ColumnId(1),
                    name: Name::parse("title").unwrap(),
                    kind: ColumnKind::Text,
                },
                Column {
                    id: ColumnId(2),
                    name: Name::parse("date").unwrap(),
                    kind: ColumnKind::Date,
                },
                Column {
                    id: ColumnId(3),
                    name: Name::parse("status").unwrap(),
                    kind: ColumnKind::parse("status", Some("draft,posted")).unwrap(),
                },
                Column {
                    id: ColumnId(4),
                    name: Name::parse("reach").unwrap(),
                    kind: ColumnKind::Number,
                },
                Column {
                    id: ColumnId(5),
                    name: Name::parse("link").unwrap(),
                    kind: ColumnKind::Url,
                },
            ],
            entries: 0,
        }
    }

    #[test]
    fn types_check_and_canonicalise() {
        let f = folder();
        assert_eq!(f.columns[2].kind.check("DRAFT"), Ok("draft".into()));
        assert!(f.columns[2].kind.check("maybe").is_err());
        assert!(f.columns[1].kind.check("2026-02-30").is_err());
        assert_eq!(f.columns[3].kind.check("1_000.5"), Ok("1000.5".into()));
        assert!(f.columns[3].kind.check("lots").is_err());
        assert!(f.columns[3].kind.check("NaN").is_err());
        assert!(f.columns[4].kind.check("ftp://x").is_err());
        assert!(f.columns[4].kind.check("https://").is_err());
        assert_eq!(f.columns[4].kind.check(""), Ok(String::new()));
    }

    #[test]
    fn csv_round_trip_with_quotes_and_newlines() {
        let f = folder();
        let text = "title,date,status,reach,link\n\"Launch, part 1\",2026-12-01,draft,10,https://x.test/a\n\"two\nlines\",,posted,,\n";
        let rows = parse_csv(&f, text).unwrap();
        assert_eq!(rows.len(), 2);
        let entries: Vec<Entry> = rows
            .into_iter()
            .enumerate()
            .map(|(i, values)| Entry {
                id: EntryId(i as i64 + 1),
                values,
            })
            .collect();
        assert_eq!(to_csv(&f, &entries), text);
    }

    #[test]
    fn csv_with_bad_rows_lists_every_one() {
        let f = folder();
        let text = "title,date,status\nok,2026-12-01,draft\nbad date,2026-13-01,draft\nbad status,,maybe\nshort\nfine,,posted\n";
        let errs = parse_csv(&f, text).unwrap_err();
        let lines: Vec<u64> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 5], "{errs:?}");
        assert!(errs[0].problem.contains("2026-13-01"));
        assert!(errs[1].problem.contains("maybe"));
        assert!(errs[2].problem.contains("1 fields"));
        let errs = parse_csv(&f, "title,colour\nx,red\n").unwrap_err();
        assert_eq!(errs[0].line, 1);
        assert!(errs[0].problem.contains("colour"));
    }

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

    #[test]
    fn table_renders_monospace() {
        let f = folder();
        let mut v = Values::new();
        v.insert(ColumnId(1), "Hoodie launch".into());
        v.insert(ColumnId(3), "draft".into());
        let t = render_table(
            &f,
            &[Entry {
                id: EntryId(7),
                values: v,
            }],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[0].starts_with("   | title"), "{t}");
        assert!(lines[2].starts_with("#7 | Hoodie launch | "), "{t}");
    }
}
