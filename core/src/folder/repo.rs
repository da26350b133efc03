//! Folders as stored: ids, names, typed columns ([`ColumnKind`] checks and canonicalises a
//! value), entries, and the storage port [`FolderRepo`].

use crate::ports::RepoError;
use crate::time::Timestamp;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::fmt;

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
    /// Adds entries in one transaction (all or nothing), marking `ctx.inbound` applied and
    /// writing its answer ([`InboundMark::answer`](crate::inbound::InboundMark::answer)) in it.
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A folder with a column of each kind, for the folder tests.
    pub(in crate::folder) fn folder() -> Folder {
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
}
