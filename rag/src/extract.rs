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

/// What a file's first bytes say it is, when it is not text Krake reads.
fn binary_kind(bytes: &[u8]) -> Option<&'static str> {
    let image = |b: &[u8]| {
        b.starts_with(b"\x89PNG\r\n\x1a\n")
            || b.starts_with(&[0xFF, 0xD8, 0xFF])
            || b.starts_with(b"GIF87a")
            || b.starts_with(b"GIF89a")
            || (b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP")
            || b.starts_with(b"II*\0")
            || b.starts_with(b"MM\0*")
            || (b.len() >= 12
                && &b[4..8] == b"ftyp"
                && matches!(&b[8..12], b"heic" | b"heix" | b"avif" | b"mif1"))
    };
    if image(bytes) {
        return Some("image");
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return Some("archive");
    }
    None
}

/// Reads a sent file by its content, not its name: a PDF by its `%PDF-` header (text layer
/// only; encrypted ones and scans refused), images and archives refused with what to send
/// instead, anything else must be UTF-8 text without NUL bytes: HTML (by its markup),
/// CSV (by name), Markdown or plain text. The error says why in words for the sender.
pub fn read_bytes(name: &str, bytes: &[u8]) -> Result<krake_core::knowledge::FileText, String> {
    let stem = std::path::Path::new(name)
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(name)
        .to_owned();
    let ext = extension(std::path::Path::new(name)).unwrap_or_default();
    let file = |kind: &str, title: Option<String>, text: String| krake_core::knowledge::FileText {
        title: title
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| stem.clone()),
        kind: kind.to_owned(),
        text,
    };
    if bytes.starts_with(b"%PDF-") {
        let text = pdf_text(bytes).map_err(|why| match why.as_str() {
            w if w.contains("encrypted") => "it is an encrypted (password-protected) PDF; send it without the password protection".to_owned(),
            w if w.contains("no text layer") => "it is a PDF without a text layer (a scan?); Krake reads PDF text and does not run OCR yet".to_owned(),
            w => format!("it is a PDF Krake cannot read ({w})"),
        })?;
        return Ok(file("pdf", None, text));
    }
    match binary_kind(bytes) {
        Some("image") => {
            return Err(
                "it is an image; Krake reads text (Markdown, text, HTML, CSV, PDF with a text layer) and does not run OCR yet"
                    .to_owned(),
            );
        }
        Some(_) => {
            return Err(
                "it is an archive or office file (ZIP); export it as PDF, Markdown or text and send that"
                    .to_owned(),
            );
        }
        None => {}
    }
    let head = &bytes[..bytes.len().min(8192)];
    if head.contains(&0) {
        return Err(
            "it is a binary file, not text; send Markdown, text, HTML, CSV or a PDF".to_owned(),
        );
    }
    let raw = std::str::from_utf8(bytes).map_err(|_| {
        "it is not UTF-8 text; save it as UTF-8 (or PDF) and send it again".to_owned()
    })?;
    let raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
    let start = raw
        .trim_start()
        .get(..15)
        .unwrap_or("")
        .to_ascii_lowercase();
    if matches!(ext.as_str(), "html" | "htm")
        || start.starts_with("<!doctype html")
        || start.starts_with("<html")
    {
        let (title, text) = html(raw);
        return Ok(file("html", title, text));
    }
    if ext == "csv" {
        return Ok(file("csv", None, csv_text(raw)));
    }
    let kind = if matches!(ext.as_str(), "md" | "markdown") || markdown_title(raw).is_some() {
        "markdown"
    } else {
        "text"
    };
    Ok(file(kind, markdown_title(raw), raw.to_owned()))
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

/// [`sample_pdf`] encrypted with the user password `password` (RC4, 40 bits), for tests.
#[cfg(any(test, feature = "test-support"))]
#[allow(clippy::expect_used)]
pub fn sample_encrypted_pdf(pages: &[&str], password: &str) -> Vec<u8> {
    use lopdf::{EncryptionState, EncryptionVersion, Object, Permissions};
    let mut doc = lopdf::Document::load_mem(&sample_pdf(pages)).expect("sample");
    let id = Object::string_literal(b"0123456789abcdef".to_vec());
    doc.trailer.set("ID", Object::Array(vec![id.clone(), id]));
    let state = EncryptionState::try_from(EncryptionVersion::V1 {
        document: &doc,
        owner_password: "owner",
        user_password: password,
        permissions: Permissions::all(),
    })
    .expect("encryption");
    doc.encrypt(&state).expect("encrypt");
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
    fn sent_files_are_read_by_content_not_by_name() {
        let pdf = sample_pdf(&["Returns are accepted within 30 days."]);
        let f = read_bytes("policy.txt", &pdf).expect("a PDF named .txt is read as PDF");
        assert_eq!((f.kind.as_str(), f.title.as_str()), ("pdf", "policy"));
        assert!(f.text.contains("30 days"), "{}", f.text);
        let md = read_bytes("notes", b"# Shipping\n\nDHL to Porto.").expect("markdown");
        assert_eq!(
            (md.kind.as_str(), md.title.as_str()),
            ("markdown", "Shipping")
        );
        let html =
            read_bytes("page.bin", b"<!DOCTYPE html><title>FAQ</title><p>Hi</p>").expect("html");
        assert_eq!((html.kind.as_str(), html.title.as_str()), ("html", "FAQ"));
        let csv = read_bytes("orders.csv", b"id,total\n1,20\n").expect("csv");
        assert_eq!(csv.kind, "csv");
        assert!(csv.text.contains("total: 20"), "{}", csv.text);
        let txt = read_bytes("readme.txt", "\u{feff}Plain words.".as_bytes()).expect("text");
        assert_eq!(
            (txt.kind.as_str(), txt.text.as_str()),
            ("text", "Plain words.")
        );
    }

    #[test]
    fn images_scans_encrypted_pdfs_and_binaries_are_refused_with_the_reason() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let e = read_bytes("policy.pdf", png).expect_err("an image named .pdf");
        assert!(e.starts_with("it is an image;") && e.contains("OCR"), "{e}");
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10];
        assert!(
            read_bytes("a.md", &jpeg)
                .expect_err("jpeg")
                .starts_with("it is an image")
        );
        let scan = sample_pdf(&[""]);
        let e = read_bytes("scan.pdf", &scan).expect_err("no text layer");
        assert!(e.contains("without a text layer"), "{e}");
        let locked = sample_encrypted_pdf(&["Secret prices."], "s3cret");
        let e = read_bytes("prices.pdf", &locked).expect_err("encrypted");
        assert!(e.starts_with("it is an encrypted"), "{e}");
        let zip = b"PK\x03\x04\x14\0\0\0";
        assert!(read_bytes("a.docx", zip).expect_err("zip").contains("ZIP"));
        let e = read_bytes("a.txt", b"abc\0def").expect_err("nul");
        assert!(e.starts_with("it is a binary file"), "{e}");
        let e = read_bytes("a.txt", &[0xC3, 0x28, b'a']).expect_err("latin-1");
        assert!(e.contains("not UTF-8"), "{e}");
        let broken = b"%PDF-1.5 not really";
        assert!(
            read_bytes("b.pdf", broken)
                .expect_err("broken")
                .starts_with("it is a PDF Krake cannot read")
        );
    }

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
