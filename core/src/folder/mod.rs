//! Folders: an agent's excel-like tables. A folder has typed columns (text, number, date,
//! status with allowed values, url) and entries; it renders as a monospace table and goes
//! to and from CSV. A CSV with bad rows imports nothing and lists every bad row (chat, the API);
//! the dashboard adds the good rows and lists the bad ones with their lines.
//!
//! `csv` is a small pure crate (no I/O of its own): reading and writing CSV correctly
//! (quotes, embedded newlines) is part of the domain rule "bad rows are reported per row".
//!
//! Layout: `repo` (the types and [`FolderRepo`]), `command` ([`FolderCommand`] and its parser),
//! `table` (checks, CSV, rendering), `chat` (the `/folder` commands carried out) and `api`
//! (typed reads and changes for the HTTP API and the dashboard).

mod api;
mod chat;
mod repo;
mod table;

pub use crate::chat::folder::{FolderCommand, parse_folder_command, words};
pub use api::CsvImport;
pub use repo::{
    Column, ColumnId, ColumnKind, Entry, EntryId, Folder, FolderId, FolderRepo, Name, Values,
};
pub use table::{
    CsvRows, RowError, check_pairs, export_cell, import_cell, parse_csv, read_csv, render_table,
    to_csv,
};
