//! Values against a folder's columns: `column=value` pairs, CSV import (every bad row listed,
//! nothing imported) and export, and the monospace table chat shows.

use super::{Column, Entry, Folder, Values};
use std::fmt;
use std::fmt::Write as _;

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

pub(super) fn column_names(folder: &Folder) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::folder::repo::tests::folder;
    use crate::folder::{ColumnId, EntryId};

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
