//! Values against a folder's columns: `column=value` pairs, CSV import (every bad row listed
//! with its line: nothing imported, or the good rows apart for the dashboard) and export, and
//! the monospace table chat shows.

use super::{Column, Entry, Folder, Values};
use std::borrow::Cow;
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

/// A CSV read row by row: the good rows (with their lines) and every bad row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvRows {
    /// Rows whose every value fits its column, with the line each starts on.
    pub good: Vec<(u64, Values)>,
    /// Bad rows, in order (a bad header is one error on line 1 and no good rows).
    pub bad: Vec<RowError>,
}

/// Reads CSV (header = column names, in any order, a subset allowed) into checked values.
/// Any bad row fails the whole import, listing every bad row.
pub fn parse_csv(folder: &Folder, text: &str) -> Result<Vec<Values>, Vec<RowError>> {
    let rows = read_csv(folder, text);
    if rows.bad.is_empty() {
        Ok(rows.good.into_iter().map(|(_, v)| v).collect())
    } else {
        Err(rows.bad)
    }
}

/// Reads CSV like [`parse_csv`] but keeps the good rows apart from the bad ones, so a front
/// can add the good rows and list the bad ones with their lines. Blank rows are skipped.
pub fn read_csv(folder: &Folder, text: &str) -> CsvRows {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut out = CsvRows::default();
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| import_cell(s.trim()).to_owned()).collect(),
        Err(e) => {
            out.bad.push(RowError {
                line: 1,
                problem: format!("the header cannot be read: {e}"),
            });
            return out;
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
        out.bad.push(RowError {
            line: 1,
            problem: header_errors.join("; "),
        });
        return out;
    }
    for rec in reader.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                out.bad.push(RowError {
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
            out.bad.push(RowError {
                line,
                problem: format!("has {} fields, the header has {}", rec.len(), cols.len()),
            });
            continue;
        }
        let mut values = Values::new();
        let mut problems = Vec::new();
        for (c, field) in cols.iter().zip(rec.iter()) {
            match c.kind.check(import_cell(field)) {
                Ok(v) => {
                    values.insert(c.id, v);
                }
                Err(e) => problems.push(format!("column `{}`: {e}", c.name)),
            }
        }
        if problems.is_empty() {
            out.good.push((line, values));
        } else {
            out.bad.push(RowError {
                line,
                problem: problems.join("; "),
            });
        }
    }
    out
}

/// Whether a spreadsheet would read a cell starting with `c` as a formula (or, for tab and
/// carriage return, strip them and then read one).
fn formula_start(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r')
}

/// A plain decimal number (`-3`, `+1.50`): a spreadsheet reads it as a number, not a formula.
fn plain_number(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    !whole.is_empty()
        && !frac.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// A cell as exported: one a spreadsheet would run as a formula (`=HYPERLINK(…)`, `@SUM(…)`,
/// `+cmd|…`, a leading tab or carriage return) gets a leading `'`, which spreadsheets show as
/// text and do not display; plain numbers such as `-3` stay as they are. A cell that already
/// starts with `'` gets one more, so [`import_cell`] gives every value back exactly.
pub fn export_cell(value: &str) -> Cow<'_, str> {
    match value.chars().next() {
        Some('\'') => Cow::Owned(format!("'{value}")),
        Some(c) if formula_start(c) && !plain_number(value) => Cow::Owned(format!("'{value}")),
        _ => Cow::Borrowed(value),
    }
}

/// A cell as imported: the `'` [`export_cell`] put before a formula-like value (or before a
/// value starting with `'`) is taken off again; anything else is read as written.
pub fn import_cell(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(|c: char| c == '\'' || formula_start(c)) => rest,
        _ => cell,
    }
}

/// Writes a folder's entries as CSV, header first (columns in order, no ids). Every cell goes
/// through [`export_cell`], so a value a stranger typed cannot run as a spreadsheet formula.
pub fn to_csv(folder: &Folder, entries: &[Entry]) -> String {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let _ = w.write_record(
        folder
            .columns
            .iter()
            .map(|c| export_cell(c.name.as_str()).into_owned()),
    );
    for e in entries {
        let _ = w.write_record(
            folder
                .columns
                .iter()
                .map(|c| export_cell(e.values.get(&c.id).map_or("", String::as_str)).into_owned()),
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
    fn exported_cells_never_start_a_formula_and_import_gives_them_back() {
        let f = folder();
        let title = f.column("title").unwrap().id;
        let mut entries = Vec::new();
        let hostile = [
            "=HYPERLINK(\"https://evil.test\",\"click\")",
            "+cmd|' /C calc'!A0",
            "-2+3",
            "@SUM(A1:A9)",
            "\t=1+1",
            "\r=1+1",
            "'=already quoted",
            "'plain apostrophe",
            "-3",
            "+1.50",
            "harmless = text",
            "",
        ];
        for (i, v) in hostile.iter().enumerate() {
            let mut values = Values::new();
            values.insert(title, (*v).to_owned());
            entries.push(Entry {
                id: EntryId(i as i64 + 1),
                values,
            });
        }
        let text = to_csv(&f, &entries);
        let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
        let cells: Vec<String> = reader
            .records()
            .map(|r| r.unwrap().get(0).unwrap().to_owned())
            .collect();
        for (cell, v) in cells.iter().zip(hostile) {
            let runs = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
            let number = v == "-3" || v == "+1.50";
            assert!(!runs || number, "{v:?} was exported as {cell:?}");
        }
        assert_eq!(cells[0], "'=HYPERLINK(\"https://evil.test\",\"click\")");
        assert_eq!(cells[8], "-3", "plain numbers stay numbers");
        // Import gives back every value exactly.
        let back = parse_csv(&f, &text).unwrap();
        let values: Vec<&str> = back
            .iter()
            .map(|v| v.get(&title).map_or("", String::as_str))
            .collect();
        // (Text values are stored trimmed: the tab and carriage return go, as on any input.)
        let want: Vec<&str> = hostile
            .iter()
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .collect();
        assert_eq!(values, want);
        assert_eq!(import_cell("'hello"), "'hello", "a typed apostrophe stays");
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
    fn csv_rows_keep_good_rows_apart_from_bad_ones() {
        let f = folder();
        let text = "title,date,status\nok,2026-12-01,draft\nbad date,2026-13-01,draft\n\n,,\nfine,,POSTED\n\"two\nlines\",,\"maybe\"\n";
        let rows = read_csv(&f, text);
        let good: Vec<u64> = rows.good.iter().map(|(l, _)| *l).collect();
        assert_eq!(good, [2, 6], "{rows:?}");
        let title = f.column("title").unwrap().id;
        let status = f.column("status").unwrap().id;
        assert_eq!(rows.good[1].1.get(&title).map(String::as_str), Some("fine"));
        assert_eq!(
            rows.good[1].1.get(&status).map(String::as_str),
            Some("posted"),
            "a status is stored as the column spells it"
        );
        let bad: Vec<u64> = rows.bad.iter().map(|e| e.line).collect();
        assert_eq!(
            bad,
            [3, 7],
            "a quoted newline keeps the line the row starts on"
        );
        assert!(rows.bad[0].problem.contains("`date`"), "{:?}", rows.bad);
        assert!(
            rows.bad[1].problem.contains("`maybe` is not one of"),
            "{:?}",
            rows.bad
        );
        assert_eq!(
            rows.bad[0].to_string(),
            format!("line 3: {}", rows.bad[0].problem)
        );
        // A bad header: one error on line 1, and no row is taken.
        let rows = read_csv(&f, "title,colour\nx,red\n");
        assert!(rows.good.is_empty());
        assert_eq!(rows.bad.len(), 1);
        assert_eq!(rows.bad[0].line, 1);
        // Nothing but a header: nothing either way.
        assert_eq!(read_csv(&f, "title\n"), CsvRows::default());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

        /// CSV import reads whatever a stranger uploads without panicking, and whatever it
        /// accepts exports without a cell that would run as a formula.
        #[test]
        fn csv_import_never_panics(text in "[a-z,\"\n\r\t=+@'\\-0-9.:/ \u{00e9}\u{1F600}]{0,200}") {
            let f = folder();
            let header = "title,date,status,reach,link\n";
            for input in [text.clone(), format!("{header}{text}")] {
                if let Ok(rows) = parse_csv(&f, &input) {
                    let entries: Vec<Entry> = rows
                        .into_iter()
                        .enumerate()
                        .map(|(i, values)| Entry { id: EntryId(i as i64 + 1), values })
                        .collect();
                    let out = to_csv(&f, &entries);
                    let mut reader = csv::ReaderBuilder::new().from_reader(out.as_bytes());
                    for rec in reader.records() {
                        for cell in rec.unwrap().iter() {
                            proptest::prop_assert!(
                                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']) || plain_number(cell),
                                "{cell:?}"
                            );
                        }
                    }
                }
            }
        }
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
