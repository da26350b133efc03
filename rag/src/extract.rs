//! Files to text for ingestion: Markdown and plain text as they are, HTML without its tags,
//! CSV as one `column: value` block per row, PDF as the text of its pages (lopdf; a PDF
//! without a text layer, such as a scan, is an error). Each file gets a title (its first
//! Markdown heading or HTML `<title>`, else its file name). [`files`] finds what `krake ingest`
//! reads under a path and [`file_documents`] makes them a workspace's documents.

use crate::ingest::Document;
use std::path::{Path, PathBuf};

/// The extensions [`extract`] reads.
pub const EXTENSIONS: &[&str] = &["md", "markdown", "txt", "text", "html", "htm", "csv", "pdf"];

/// A file's title and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// The title.
    pub title: String,
    /// The text (Markdown or plain).
    pub text: String,
}

/// An extraction failure.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The file type is not one Krake reads.
    #[error("{0}: not a supported file type (Markdown, text, HTML, CSV or PDF)")]
    Unsupported(String),
    /// The file could not be read or parsed.
    #[error("{path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Why the files under a path cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// A file of a type Krake does not read.
    #[error("{0} is not a supported file type; Krake reads Markdown, text, HTML, CSV and PDF")]
    Unsupported(String),
    /// Nothing at that path.
    #[error("{0} does not exist")]
    Missing(String),
    /// A folder could not be read.
    #[error("cannot read {path}: {message}")]
    Walk {
        /// The path given.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// The files under `path` that ingestion reads: the file itself (which must be supported), or
/// every supported file in the folder, recursively (following links), sorted.
pub fn files(path: &Path) -> Result<Vec<PathBuf>, FilesError> {
    let shown = || path.display().to_string();
    if path.is_file() {
        if !supported(path) {
            return Err(FilesError::Unsupported(shown()));
        }
        return Ok(vec![path.to_owned()]);
    }
    if !path.is_dir() {
        return Err(FilesError::Missing(shown()));
    }
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(path).follow_links(true) {
        let entry = entry.map_err(|e| FilesError::Walk {
            path: shown(),
            message: e.to_string(),
        })?;
        if entry.file_type().is_file() && supported(entry.path()) {
            out.push(entry.into_path());
        }
    }
    out.sort();
    Ok(out)
}

/// The files at `paths` as documents of `workspace` (source kind `file`, the path as source,
/// written at `time` in Unix seconds), with why each file that could not be read was skipped.
pub fn file_documents(
    paths: &[PathBuf],
    workspace: &str,
    time: i64,
) -> (Vec<Document>, Vec<String>) {
    let mut docs = Vec::with_capacity(paths.len());
    let mut skipped = Vec::new();
    for p in paths {
        match extract(p) {
            Ok(e) => docs.push(Document {
                workspace: workspace.to_owned(),
                source_kind: krake_core::knowledge::documents::FILE.to_owned(),
                source: p.display().to_string(),
                title: e.title,
                text: e.text,
                time,
            }),
            Err(e) => skipped.push(e.to_string()),
        }
    }
    (docs, skipped)
}

/// Whether `path` has an extension [`extract`] reads.
pub fn supported(path: &Path) -> bool {
    extension(path).is_some_and(|e| EXTENSIONS.contains(&e.as_str()))
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

/// Reads a file's title and text.
pub fn extract(path: &Path) -> Result<Extracted, ExtractError> {
    let shown = path.display().to_string();
    let ext = extension(path).unwrap_or_default();
    if !EXTENSIONS.contains(&ext.as_str()) {
        return Err(ExtractError::Unsupported(shown));
    }
    let bytes = std::fs::read(path).map_err(|e| ExtractError::Read {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_owned();
    if ext == "pdf" {
        let text = pdf_text(&bytes).map_err(|message| ExtractError::Read {
            path: shown.clone(),
            message,
        })?;
        return Ok(Extracted { title: stem, text });
    }
    let raw = String::from_utf8_lossy(&bytes).into_owned();
    let (title, text) = match ext.as_str() {
        "html" | "htm" => html(&raw),
        "csv" => (None, csv_text(&raw)),
        _ => (markdown_title(&raw), raw),
    };
    Ok(Extracted {
        title: title.filter(|t| !t.is_empty()).unwrap_or(stem),
        text,
    })
}

/// The text of a PDF's pages, a paragraph break between pages.
pub fn pdf_text(bytes: &[u8]) -> Result<String, String> {
    let doc = lopdf::Document::load_mem(bytes).map_err(|e| format!("not a readable PDF: {e}"))?;
    if doc.is_encrypted() {
        return Err("the PDF is encrypted; Krake reads unencrypted PDFs only".to_owned());
    }
    let mut pages = Vec::new();
    for number in doc.get_pages().keys() {
        let text = doc
            .extract_text(&[*number])
            .map_err(|e| format!("page {number}: {e}"))?;
        let text = text.trim();
        if !text.is_empty() {
            pages.push(text.to_owned());
        }
    }
    if pages.is_empty() {
        return Err(
            "the PDF has no text layer (a scan?); Krake reads PDF text, it does not run OCR"
                .to_owned(),
        );
    }
    Ok(pages.join("\n\n"))
}

/// A small PDF with one page of text per entry (Courier, WinAnsi), for tests.
#[cfg(any(test, feature = "test-support"))]
#[allow(clippy::expect_used)]
pub fn sample_pdf(pages: &[&str]) -> Vec<u8> {
    use lopdf::content::{Content, Operation};
    use lopdf::{Document, Object, Stream, dictionary};
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Courier",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = doc.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font_id },
    });
    let mut kids: Vec<Object> = Vec::new();
    for text in pages {
        let content = Content {
            operations: vec![
                Operation::new("BT", vec![]),
                Operation::new("Tf", vec!["F1".into(), 12.into()]),
                Operation::new("Td", vec![72.into(), 720.into()]),
                Operation::new("Tj", vec![Object::string_literal(*text)]),
                Operation::new("ET", vec![]),
            ],
        };
        let content_id = doc.add_object(Stream::new(
            dictionary! {},
            content.encode().expect("content"),
        ));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        });
        kids.push(page_id.into());
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("save");
    out
}

fn markdown_title(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("# "))
        .map(|t| t.trim().to_owned())
}

/// HTML to text: `<script>`/`<style>` dropped, block elements become paragraph breaks,
/// headings become Markdown headings, entities decoded.
pub fn html(raw: &str) -> (Option<String>, String) {
    let mut out = String::new();
    let mut title = None;
    let mut rest = raw;
    let mut skip_until: Option<&str> = None;
    while let Some(lt) = rest.find('<') {
        if skip_until.is_none() {
            out.push_str(&decode(&rest[..lt]));
        }
        let Some(gt) = rest[lt..].find('>') else {
            break;
        };
        let tag = rest[lt + 1..lt + gt].trim().to_ascii_lowercase();
        rest = &rest[lt + gt + 1..];
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if let Some(end) = skip_until {
            if tag.starts_with('/') && name == end {
                skip_until = None;
            }
            continue;
        }
        match name.as_str() {
            "script" | "style" | "head" if !tag.starts_with('/') => {
                if name == "head"
                    && let Some(s) = rest.find("<title>")
                    && let Some(e) = rest[s..].find("</title>")
                {
                    title = Some(decode(&rest[s + 7..s + e]).trim().to_owned());
                }
                skip_until = Some(match name.as_str() {
                    "script" => "script",
                    "style" => "style",
                    _ => "head",
                });
            }
            "title" if !tag.starts_with('/') => {
                if let Some(e) = rest.find("</title>") {
                    title = Some(decode(&rest[..e]).trim().to_owned());
                }
            }
            h if h.len() == 2 && h.starts_with('h') && h.as_bytes()[1].is_ascii_digit() => {
                if tag.starts_with('/') {
                    out.push_str("\n\n");
                } else {
                    let level = usize::from(h.as_bytes()[1] - b'0');
                    out.push_str("\n\n");
                    out.push_str(&"#".repeat(level.clamp(1, 6)));
                    out.push(' ');
                }
            }
            "p" | "div" | "section" | "article" | "li" | "tr" | "br" | "ul" | "ol" | "table"
            | "pre" | "blockquote" => out.push_str("\n\n"),
            _ => {}
        }
    }
    if skip_until.is_none() {
        out.push_str(&decode(rest));
    }
    // Collapse runs of blank lines and trailing spaces.
    let mut text = String::new();
    let mut blank = 0;
    for line in out.lines() {
        let l = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if l.is_empty() {
            blank += 1;
            continue;
        }
        if !text.is_empty() {
            text.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        text.push_str(&l);
    }
    (title, text)
}

fn decode(s: &str) -> String {
    s.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// CSV to text: each row becomes a paragraph of `column: value` lines.
fn csv_text(raw: &str) -> String {
    let mut rows = raw.lines().filter(|l| !l.trim().is_empty()).map(split_csv);
    let Some(header) = rows.next() else {
        return String::new();
    };
    rows.map(|row| {
        header
            .iter()
            .zip(row.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(h, v)| format!("{h}: {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    })
    .collect::<Vec<_>>()
    .join("\n\n")
}

/// One CSV line's fields (RFC 4180 quoting, within the line).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field).trim().to_owned()),
            _ => field.push(c),
        }
    }
    fields.push(field.trim().to_owned());
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folders_supported_files_become_documents_and_unreadable_ones_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("policies");
        std::fs::create_dir(&sub).expect("mkdir");
        std::fs::write(sub.join("returns.md"), "# Returns\n\nWithin 30 days.").expect("write");
        std::fs::write(dir.path().join("sizes.txt"), "Hoodies run small.").expect("write");
        std::fs::write(dir.path().join("photo.jpg"), [0u8]).expect("write");
        std::fs::write(dir.path().join("scan.pdf"), b"not a pdf").expect("write");
        let found = files(dir.path()).expect("files");
        let names: Vec<String> = found
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .expect("under")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["policies/returns.md", "scan.pdf", "sizes.txt"]);
        let (docs, skipped) = file_documents(&found, "lunavo", 1_700_000_000);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].title, "Returns");
        assert_eq!(docs[0].source, found[0].display().to_string());
        assert_eq!(
            (
                docs[0].workspace.as_str(),
                docs[0].source_kind.as_str(),
                docs[0].time
            ),
            ("lunavo", "file", 1_700_000_000)
        );
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].contains("scan.pdf"), "{skipped:?}");
        let one = files(&dir.path().join("sizes.txt")).expect("one file");
        assert_eq!(one.len(), 1);
        let e = files(&dir.path().join("photo.jpg")).expect_err("unsupported");
        assert!(e.to_string().ends_with("photo.jpg is not a supported file type; Krake reads Markdown, text, HTML, CSV and PDF"), "{e}");
        let e = files(&dir.path().join("nowhere")).expect_err("missing");
        assert!(e.to_string().ends_with("nowhere does not exist"), "{e}");
    }

    #[test]
    fn pdf_pages_become_text_and_bad_pdfs_say_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("Returns policy.pdf");
        std::fs::write(
            &good,
            sample_pdf(&[
                "Lunavo refunds hoodies within 30 days.",
                "Exchanges are free.",
            ]),
        )
        .expect("write");
        let e = extract(&good).expect("extract");
        assert_eq!(e.title, "Returns policy");
        assert!(
            e.text.contains("Lunavo refunds hoodies within 30 days."),
            "{:?}",
            e.text
        );
        assert!(e.text.contains("Exchanges are free."), "{:?}", e.text);
        assert!(supported(&good));
        let broken = dir.path().join("broken.pdf");
        std::fs::write(&broken, b"%PDF-1.5\nthis is not a PDF body").expect("write");
        let err = extract(&broken).expect_err("broken");
        assert!(err.to_string().contains("not a readable PDF"), "{err}");
        assert!(err.to_string().contains("broken.pdf"), "{err}");
        let blank = dir.path().join("scan.pdf");
        std::fs::write(&blank, sample_pdf(&[""])).expect("write");
        let err = extract(&blank).expect_err("no text");
        assert!(err.to_string().contains("no text layer"), "{err}");
    }

    #[test]
    fn html_loses_tags_scripts_and_keeps_structure() {
        let (title, text) = html(
            "<html><head><title>Returns &amp; refunds</title><style>p{}</style></head>\
             <body><h1>Returns</h1><p>Within <b>30</b> days.</p><script>x()</script>\
             <p>Ask&nbsp;us.</p></body></html>",
        );
        assert_eq!(title.as_deref(), Some("Returns & refunds"));
        assert_eq!(text, "# Returns\n\nWithin 30 days.\n\nAsk us.");
    }

    #[test]
    fn csv_rows_become_labelled_paragraphs() {
        assert_eq!(
            csv_text("sku,name,note\nH1,Hoodie,\"warm, soft\"\nT2,Tee,\n"),
            "sku: H1\nname: Hoodie\nnote: warm, soft\n\nsku: T2\nname: Tee"
        );
    }

    #[test]
    fn files_get_titles_and_unsupported_types_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let md = dir.path().join("faq.md");
        std::fs::write(&md, "# Shipping FAQ\n\nWe ship daily.").expect("write");
        let txt = dir.path().join("notes.txt");
        std::fs::write(&txt, "plain").expect("write");
        assert_eq!(extract(&md).expect("md").title, "Shipping FAQ");
        assert_eq!(extract(&txt).expect("txt").title, "notes");
        let bin = dir.path().join("photo.jpg");
        std::fs::write(&bin, [0u8, 1]).expect("write");
        assert!(!supported(&bin));
        assert!(
            extract(&bin)
                .expect_err("jpg")
                .to_string()
                .contains("not a supported")
        );
    }
}
