//! The `/folder` commands as Krake carries them out: who may read and change an agent's
//! folders, and the replies.

use super::EntryId;
use super::table::column_names;
use super::{Folder, FolderCommand, Name, check_pairs, parse_csv, render_table, to_csv};
use crate::inbound::Change;
use crate::ports::RepoError;
use std::fmt::Write as _;

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
                let added = {
                    let (agent, name) = (agent.to_string(), f.name.clone());
                    move |ids: &[EntryId]| {
                        let id = ids.first().map_or(0, |i| i.0);
                        Reply::success(format!("Added #{id} to {agent}'s {name}."))
                    }
                };
                let added = std::sync::Arc::new(added);
                let render = added.clone();
                let ctx = ctx.answering(move |c| match c {
                    Change::Added(ids) => Some(render(ids)),
                    _ => None,
                });
                added(&repo.add_entries(f.id, &[v], &ctx).await?)
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
                        let imported = {
                            let (agent, name) = (agent.to_string(), f.name.clone());
                            move |ids: &[EntryId]| {
                                Reply::success(format!(
                                    "Imported {} entr{} into {agent}'s {name}.",
                                    ids.len(),
                                    if ids.len() == 1 { "y" } else { "ies" },
                                ))
                            }
                        };
                        let imported = std::sync::Arc::new(imported);
                        let render = imported.clone();
                        let ctx = ctx.answering(move |c| match c {
                            Change::Added(ids) => Some(render(ids)),
                            _ => None,
                        });
                        imported(&repo.add_entries(f.id, &rows, &ctx).await?)
                    }
                }
            }
        })
    }
}
