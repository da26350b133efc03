//! Typed reads, entry changes and structure changes (folders, columns) of agents' folders for
//! structured fronts (the HTTP API, the dashboard), under the `/folder` commands' rules: an
//! agent's folders are readable by whoever sees one of the agent's workspaces and changed by a
//! member of one of them; every value is checked against its column's type; a CSV import with
//! a bad row imports nothing ([`Krake::import_folder_csv`]), or adds the good rows and names
//! the bad ones ([`Krake::import_folder_csv_rows`], the dashboard's upload).

/// What a row-by-row CSV import did: how many entries were added and every bad row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvImport {
    /// Entries added (the good rows).
    pub added: usize,
    /// The rows left out, with their lines and why (a bad header leaves every row out).
    pub bad: Vec<RowError>,
}

use crate::actor::{Actor, Role};
use crate::folder::{
    Column, ColumnKind, Entry, EntryId, Folder, Name, RowError, check_pairs, parse_csv, read_csv,
};
use crate::ports::WriteCtx;
use crate::service::Krake;
use crate::thread_api::ThreadError;

impl Krake {
    fn may_read_folders_of(&self, actor: &Actor, agent: &str) -> bool {
        self.directory
            .agent(agent)
            .is_some_and(|a| a.workspaces.iter().any(|w| actor.can_see(w)))
    }

    /// The folders the actor may read, of one agent or of all, by agent and name.
    pub async fn folders_for(
        &self,
        actor: &Actor,
        agent: Option<&str>,
    ) -> Result<Vec<Folder>, ThreadError> {
        let repo = self
            .folders
            .clone()
            .ok_or_else(|| ThreadError::NotFound("folders are not available here".into()))?;
        if let Some(a) = agent {
            if self.directory.agent(a).is_none() {
                return Err(ThreadError::NotFound(format!("there is no agent `{a}`")));
            }
            if !self.may_read_folders_of(actor, a) {
                return Err(ThreadError::Forbidden(format!(
                    "{} sees none of the workspaces {a} works in",
                    actor.user
                )));
            }
        }
        let all = repo.folders(agent).await?;
        Ok(all
            .into_iter()
            .filter(|f| self.may_read_folders_of(actor, &f.agent))
            .collect())
    }

    /// One folder with its entries, if the actor may read it.
    pub async fn folder_for(
        &self,
        actor: &Actor,
        agent: &str,
        name: &str,
    ) -> Result<(Folder, Vec<Entry>), ThreadError> {
        let repo = self
            .folders
            .clone()
            .ok_or_else(|| ThreadError::NotFound("folders are not available here".into()))?;
        let canonical = self
            .directory
            .agent(agent)
            .map(|a| a.name.to_string())
            .ok_or_else(|| ThreadError::NotFound(format!("there is no agent `{agent}`")))?;
        if !self.may_read_folders_of(actor, agent) {
            return Err(ThreadError::Forbidden(format!(
                "{} sees none of the workspaces {canonical} works in",
                actor.user
            )));
        }
        let folder = repo
            .folder(&canonical, name)
            .await?
            .ok_or_else(|| ThreadError::NotFound(format!("{canonical} has no folder `{name}`")))?;
        let entries = repo.entries(folder.id).await?;
        Ok((folder, entries))
    }

    /// A folder the actor may change (member of one of the agent's workspaces).
    async fn writable_folder(
        &self,
        actor: &Actor,
        agent: &str,
        name: &str,
    ) -> Result<Folder, ThreadError> {
        let (folder, _) = self.folder_for(actor, agent, name).await?;
        self.writable_agent(actor, &folder.agent)?;
        Ok(folder)
    }

    fn folder_ctx(&self, actor: &Actor) -> WriteCtx {
        WriteCtx {
            actor: actor.clone(),
            inbound: None,
            now: self.clock.now(),
        }
    }

    /// Adds an entry from `column = value` pairs; every value is checked against its column.
    pub async fn add_folder_entry(
        &self,
        actor: &Actor,
        agent: &str,
        name: &str,
        pairs: &[(String, String)],
    ) -> Result<Entry, ThreadError> {
        let folder = self.writable_folder(actor, agent, name).await?;
        let values = check_pairs(&folder, pairs).map_err(|errs| {
            ThreadError::Invalid(format!("nothing was added: {}", errs.join("; ")))
        })?;
        let repo = self
            .folders
            .clone()
            .ok_or_else(|| ThreadError::NotFound("folders are not available here".into()))?;
        let ids = repo
            .add_entries(
                folder.id,
                std::slice::from_ref(&values),
                &self.folder_ctx(actor),
            )
            .await?;
        let id = ids
            .first()
            .copied()
            .ok_or_else(|| ThreadError::Invalid("nothing was added".into()))?;
        Ok(Entry { id, values })
    }

    /// Sets some values of an entry.
    pub async fn update_folder_entry(
        &self,
        actor: &Actor,
        agent: &str,
        name: &str,
        id: EntryId,
        pairs: &[(String, String)],
    ) -> Result<Entry, ThreadError> {
        let folder = self.writable_folder(actor, agent, name).await?;
        let values = check_pairs(&folder, pairs).map_err(|errs| {
            ThreadError::Invalid(format!("nothing was changed: {}", errs.join("; ")))
        })?;
        let repo = self
            .folders
            .clone()
            .ok_or_else(|| ThreadError::NotFound("folders are not available here".into()))?;
        repo.update_entry(folder.id, id, &values, self.clock.now())
            .await?
            .ok_or_else(|| {
                ThreadError::NotFound(format!("{} has no entry #{}", folder.name.as_str(), id.0))
            })
    }

    /// Deletes an entry.
    pub async fn delete_folder_entry(
        &self,
        actor: &Actor,
        agent: &str,
        name: &str,
        id: EntryId,
    ) -> Result<(), ThreadError> {
        let folder = self.writable_folder(actor, agent, name).await?;
        let repo = self
            .folders
            .clone()
            .ok_or_else(|| ThreadError::NotFound("folders are not available here".into()))?;
        if repo.delete_entry(folder.id, id).await? {
            Ok(())
        } else {
            Err(ThreadError::NotFound(format!(
                "{} has no entry #{}",
                folder.name.as_str(),
                id.0
            )))
        }
    }

    /// Imports CSV rows (header = column names): all or nothing; a bad row imports nothing and
    /// every bad row is named with its line. Returns how many entries were added.
    pub async fn import_folder_csv(
        &self,
        actor: &Actor,
        agent: &str,
        name: &str,
        csv: &str,
    ) -> Result<usize, ThreadError> {
        let folder = self.writable_folder(actor, agent, name).await?;
        let rows = parse_csv(&folder, csv).map_err(|errs| {
            let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
            ThreadError::Invalid(format!("nothing was imported: {}", lines.join("; ")))
        })?;
        let repo = self
            .folders
            .clone()
            .ok_or_else(|| ThreadError::NotFound("folders are not available here".into()))?;
        let ids = repo
            .add_entries(folder.id, &rows, &self.folder_ctx(actor))
            .await?;
        Ok(ids.len())
    }

    /// Imports CSV rows (header = column names) row by row: the good rows are added in one
    /// write, every bad row is returned with its line and why. A bad header adds nothing.
    pub async fn import_folder_csv_rows(
        &self,
        actor: &Actor,
        agent: &str,
        name: &str,
        csv: &str,
    ) -> Result<CsvImport, ThreadError> {
        let folder = self.writable_folder(actor, agent, name).await?;
        let rows = read_csv(&folder, csv);
        if rows.good.is_empty() {
            return Ok(CsvImport {
                added: 0,
                bad: rows.bad,
            });
        }
        let values: Vec<_> = rows.good.into_iter().map(|(_, v)| v).collect();
        let ids = self
            .folder_repo()?
            .add_entries(folder.id, &values, &self.folder_ctx(actor))
            .await?;
        Ok(CsvImport {
            added: ids.len(),
            bad: rows.bad,
        })
    }
}

/// Structure changes: folders and columns (the same rules as the `/folder` chat commands:
/// a member of one of the agent's workspaces may make them).
impl Krake {
    fn folder_repo(&self) -> Result<std::sync::Arc<dyn crate::folder::FolderRepo>, ThreadError> {
        self.folders
            .clone()
            .ok_or_else(|| ThreadError::NotFound("folders are not available here".into()))
    }

    /// Whether the actor may change the agent's folders (add, edit and delete entries, import,
    /// change columns): a front shows its forms only then; the changes check it again.
    pub fn may_change_folders_of(&self, actor: &Actor, agent: &str) -> Result<(), ThreadError> {
        self.writable_agent(actor, agent).map(|_| ())
    }

    /// The agent's canonical name (`soshie` → `Soshie`), if the actor may change its folders.
    fn writable_agent(&self, actor: &Actor, agent: &str) -> Result<String, ThreadError> {
        let a = self
            .directory
            .agent(agent)
            .ok_or_else(|| ThreadError::NotFound(format!("there is no agent `{agent}`")))?;
        if !a.workspaces.iter().any(|w| actor.can_see(w)) {
            return Err(ThreadError::Forbidden(format!(
                "{} sees none of the workspaces {} works in",
                actor.user, a.name
            )));
        }
        if actor.unlinked
            || !a
                .workspaces
                .iter()
                .any(|w| actor.role_in(w) >= Role::Member)
        {
            return Err(ThreadError::Forbidden(format!(
                "changing {}'s folders needs the member role in a workspace {} works in",
                a.name, a.name
            )));
        }
        Ok(a.name.to_string())
    }

    /// Creates an empty folder for an agent; a name the agent already uses is a conflict.
    pub async fn create_folder_for(
        &self,
        actor: &Actor,
        agent: &str,
        name: &str,
    ) -> Result<Folder, ThreadError> {
        let agent = self.writable_agent(actor, agent)?;
        let name = Name::parse(name).map_err(ThreadError::Invalid)?;
        self.folder_repo()?
            .create_folder(&agent, &name, self.clock.now())
            .await?
            .ok_or_else(|| {
                ThreadError::Exists(format!("{agent} already has a folder called {name}"))
            })
    }

    /// Renames a folder; a name the agent already uses is a conflict.
    pub async fn rename_folder_for(
        &self,
        actor: &Actor,
        agent: &str,
        folder: &str,
        to: &str,
    ) -> Result<Folder, ThreadError> {
        let f = self.writable_folder(actor, agent, folder).await?;
        let to = Name::parse(to).map_err(ThreadError::Invalid)?;
        let repo = self.folder_repo()?;
        if !repo.rename_folder(f.id, &to).await? {
            return Err(ThreadError::Exists(format!(
                "{} already has a folder called {to}",
                f.agent
            )));
        }
        repo.folder(&f.agent, to.as_str())
            .await?
            .ok_or_else(|| ThreadError::NotFound(format!("{} has no folder `{to}`", f.agent)))
    }

    /// Deletes a folder with its columns and entries; returns how many entries went.
    pub async fn delete_folder_for(
        &self,
        actor: &Actor,
        agent: &str,
        folder: &str,
    ) -> Result<u64, ThreadError> {
        let f = self.writable_folder(actor, agent, folder).await?;
        Ok(self.folder_repo()?.delete_folder(f.id).await?)
    }

    /// Adds a column at the end of a folder; a name the folder already uses is a conflict.
    pub async fn add_folder_column(
        &self,
        actor: &Actor,
        agent: &str,
        folder: &str,
        column: &str,
        kind: &ColumnKind,
    ) -> Result<Column, ThreadError> {
        let f = self.writable_folder(actor, agent, folder).await?;
        let name = Name::parse(column).map_err(ThreadError::Invalid)?;
        self.folder_repo()?
            .add_column(f.id, &name, kind)
            .await?
            .ok_or_else(|| {
                ThreadError::Exists(format!("{} already has a column called {name}", f.name))
            })
    }

    /// Renames a column (its values stay); a name the folder already uses is a conflict.
    pub async fn rename_folder_column(
        &self,
        actor: &Actor,
        agent: &str,
        folder: &str,
        column: &str,
        to: &str,
    ) -> Result<Column, ThreadError> {
        let f = self.writable_folder(actor, agent, folder).await?;
        let c = Self::column_of(&f, column)?;
        let to = Name::parse(to).map_err(ThreadError::Invalid)?;
        if !self.folder_repo()?.rename_column(f.id, c.id, &to).await? {
            return Err(ThreadError::Exists(format!(
                "{} already has a column called {to}",
                f.name
            )));
        }
        Ok(Column { name: to, ..c })
    }

    /// Removes a column and its values.
    pub async fn remove_folder_column(
        &self,
        actor: &Actor,
        agent: &str,
        folder: &str,
        column: &str,
    ) -> Result<(), ThreadError> {
        let f = self.writable_folder(actor, agent, folder).await?;
        let c = Self::column_of(&f, column)?;
        Ok(self.folder_repo()?.remove_column(f.id, c.id).await?)
    }

    fn column_of(f: &Folder, column: &str) -> Result<Column, ThreadError> {
        f.column(column).cloned().ok_or_else(|| {
            let names: Vec<&str> = f.columns.iter().map(|c| c.name.as_str()).collect();
            ThreadError::NotFound(format!(
                "{} has no column `{column}` (columns: {})",
                f.name,
                if names.is_empty() {
                    "none yet".to_owned()
                } else {
                    names.join(", ")
                }
            ))
        })
    }
}
