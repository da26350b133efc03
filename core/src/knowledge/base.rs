//! The [`KnowledgeBase`] port: where the knowledge rules write documents (threads, folders,
//! agent results), kept in step with their sources by content. krake-rag fills it (chunks,
//! vectors, Qdrant); [`MemoryKnowledge`] is the in-memory one for tests.

use crate::ports::RepoError;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// A document of a workspace's knowledge.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Document {
    /// The workspace that owns it.
    pub workspace: String,
    /// `file`, `thread`, `agent_result`, `folder`, …
    pub source_kind: String,
    /// Its identity within the kind (a path, `thread #12`, …).
    pub source: String,
    /// Its title.
    pub title: String,
    /// Its text (Markdown or plain).
    pub text: String,
    /// When it was written or changed (Unix seconds).
    pub time: i64,
}

/// Every document of one kind in one workspace: a [`KnowledgeBase::sync`] makes the base hold
/// exactly these (a document of that kind and workspace not among them is removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentSet {
    /// The workspace.
    pub workspace: String,
    /// The source kind.
    pub source_kind: String,
    /// The documents.
    pub documents: Vec<Document>,
}

/// What a sync of one [`DocumentSet`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    /// New documents.
    pub added: usize,
    /// Changed documents (replaced).
    pub replaced: usize,
    /// Unchanged documents (nothing done).
    pub unchanged: usize,
    /// Documents removed because they are no longer in the set.
    pub removed: usize,
}

/// A knowledge failure.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// The knowledge base could not be opened (busy with another process, unreachable).
    #[error("the knowledge base is unavailable: {0}")]
    Unavailable(String),
    /// Writing to it failed; what was written before stays.
    #[error("ingestion failed: {0}")]
    Ingest(String),
    /// Reading the sources (threads, folders, runs) failed.
    #[error(transparent)]
    Store(#[from] RepoError),
}

/// A file's text as [`KnowledgeBase::read_file`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileText {
    /// Its title (first heading, HTML title, else the file name without extension).
    pub title: String,
    /// What it was read as (`pdf`, `markdown`, `text`, `html`, `csv`).
    pub kind: String,
    /// Its text.
    pub text: String,
}

/// Where knowledge documents are written. Each call is whole: the base is opened for it (the
/// embedded store locks its directory while open) and what it wrote is durable when it returns.
#[async_trait]
pub trait KnowledgeBase: Send + Sync {
    /// Ingests `docs` one by one: new ones added, changed ones replaced, unchanged ones left
    /// alone. Returns how many were written (new or changed).
    async fn ingest(&self, docs: &[Document]) -> Result<usize, KnowledgeError>;
    /// Makes the base hold exactly each set's documents for its workspace and kind; one count
    /// per set, in order.
    async fn sync(&self, sets: &[DocumentSet]) -> Result<Vec<SyncCounts>, KnowledgeError>;

    /// Reads a sent file by its content (not its name): its title, kind and text, or why it
    /// cannot be learned (an image, a scan, an encrypted PDF, a binary file), said so that
    /// the sender knows what to send instead. The default reads UTF-8 text without NUL bytes
    /// only, titled by its first Markdown heading.
    fn read_file(&self, name: &str, bytes: &[u8]) -> Result<FileText, String> {
        let text = std::str::from_utf8(bytes)
            .ok()
            .filter(|t| !t.contains('\0'))
            .ok_or_else(|| "it is not a text file".to_owned())?;
        let heading = text.lines().find_map(|l| l.strip_prefix("# "));
        Ok(FileText {
            title: heading.unwrap_or(name).trim().to_owned(),
            kind: if heading.is_some() {
                "markdown"
            } else {
                "text"
            }
            .to_owned(),
            text: text.to_owned(),
        })
    }

    /// Writes one whole document, replacing whatever was stored under its source (even a
    /// part written by an attempt that crashed), calling `progress(done, total)` in passages
    /// as it goes; returns how many passages it became. `KnowledgeError::Ingest` means the
    /// document itself cannot be stored (not worth another attempt).
    async fn learn(
        &self,
        doc: &Document,
        progress: &(dyn Fn(usize, usize) + Send + Sync),
    ) -> Result<usize, KnowledgeError> {
        self.forget(&doc.workspace, &doc.source_kind, &doc.source)
            .await?;
        self.ingest(std::slice::from_ref(doc)).await?;
        let n = self.passages(&doc.text).len();
        progress(n, n);
        Ok(n)
    }

    /// Removes every passage of one document (nothing when there is none).
    async fn forget(
        &self,
        workspace: &str,
        source_kind: &str,
        source: &str,
    ) -> Result<(), KnowledgeError>;

    /// The passages a text becomes, in order (what `source §N` cites). The default splits
    /// paragraphs.
    fn passages(&self, text: &str) -> Vec<String> {
        text.split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

type Key = (String, String, String);

#[derive(Debug, Default)]
struct MemoryState {
    docs: BTreeMap<Key, Document>,
    calls: usize,
    unavailable: Option<String>,
}

/// An in-memory [`KnowledgeBase`], for tests: a document is unchanged when its title and text
/// are; it counts the calls that reached it (each one an opening of a real base).
#[derive(Debug, Default)]
pub struct MemoryKnowledge(Mutex<MemoryState>);

fn key(d: &Document) -> Key {
    (d.workspace.clone(), d.source_kind.clone(), d.source.clone())
}

impl MemoryKnowledge {
    /// An empty base.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> Result<std::sync::MutexGuard<'_, MemoryState>, KnowledgeError> {
        self.0
            .lock()
            .map_err(|_| KnowledgeError::Unavailable("lock poisoned".into()))
    }

    /// Every document held, by workspace, kind and source.
    pub fn documents(&self) -> Vec<Document> {
        self.0
            .lock()
            .map(|s| s.docs.values().cloned().collect())
            .unwrap_or_default()
    }

    /// How many calls reached the base (failed ones included).
    pub fn calls(&self) -> usize {
        self.0.lock().map(|s| s.calls).unwrap_or_default()
    }

    /// Makes every later call fail as unavailable with `why` (`None`: available again).
    pub fn set_unavailable(&self, why: Option<&str>) {
        if let Ok(mut s) = self.0.lock() {
            s.unavailable = why.map(str::to_owned);
        }
    }

    fn open(&self) -> Result<std::sync::MutexGuard<'_, MemoryState>, KnowledgeError> {
        let mut s = self.state()?;
        s.calls += 1;
        if let Some(why) = &s.unavailable {
            return Err(KnowledgeError::Unavailable(why.clone()));
        }
        Ok(s)
    }
}

/// Writes one document: `Some(true)` new, `Some(false)` changed, `None` unchanged.
fn put(state: &mut MemoryState, doc: &Document) -> Option<bool> {
    match state.docs.get(&key(doc)) {
        Some(old) if old.title == doc.title && old.text == doc.text => None,
        old => {
            let new = old.is_none();
            state.docs.insert(key(doc), doc.clone());
            Some(new)
        }
    }
}

#[async_trait]
impl KnowledgeBase for MemoryKnowledge {
    async fn ingest(&self, docs: &[Document]) -> Result<usize, KnowledgeError> {
        let mut s = self.open()?;
        Ok(docs.iter().filter(|d| put(&mut s, d).is_some()).count())
    }

    async fn sync(&self, sets: &[DocumentSet]) -> Result<Vec<SyncCounts>, KnowledgeError> {
        let mut s = self.open()?;
        let mut out = Vec::with_capacity(sets.len());
        for set in sets {
            let mut c = SyncCounts::default();
            for d in &set.documents {
                match put(&mut s, d) {
                    Some(true) => c.added += 1,
                    Some(false) => c.replaced += 1,
                    None => c.unchanged += 1,
                }
            }
            let gone: Vec<Key> = s
                .docs
                .keys()
                .filter(|(w, k, src)| {
                    *w == set.workspace
                        && *k == set.source_kind
                        && !set.documents.iter().any(|d| d.source == *src)
                })
                .cloned()
                .collect();
            for g in gone {
                s.docs.remove(&g);
                c.removed += 1;
            }
            out.push(c);
        }
        Ok(out)
    }

    async fn forget(
        &self,
        workspace: &str,
        source_kind: &str,
        source: &str,
    ) -> Result<(), KnowledgeError> {
        let mut s = self.open()?;
        s.docs.remove(&(
            workspace.to_owned(),
            source_kind.to_owned(),
            source.to_owned(),
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(ws: &str, source: &str, text: &str) -> Document {
        Document {
            workspace: ws.into(),
            source_kind: "thread".into(),
            source: source.into(),
            title: source.into(),
            text: text.into(),
            time: 0,
        }
    }

    #[tokio::test]
    async fn memory_knowledge_adds_replaces_skips_and_removes_per_workspace() {
        let kb = MemoryKnowledge::new();
        assert_eq!(
            kb.ingest(&[doc("lunavo", "a", "1"), doc("monarch", "a", "1")])
                .await
                .expect("ingest"),
            2
        );
        assert_eq!(
            kb.ingest(&[doc("lunavo", "a", "1")]).await.expect("again"),
            0
        );
        let set = |docs: Vec<Document>| DocumentSet {
            workspace: "lunavo".into(),
            source_kind: "thread".into(),
            documents: docs,
        };
        let counts = kb
            .sync(&[set(vec![doc("lunavo", "a", "2"), doc("lunavo", "b", "1")])])
            .await
            .expect("sync");
        assert_eq!(
            counts,
            vec![SyncCounts {
                added: 1,
                replaced: 1,
                unchanged: 0,
                removed: 0
            }]
        );
        let counts = kb.sync(&[set(vec![])]).await.expect("sync");
        assert_eq!(counts[0].removed, 2);
        assert_eq!(
            kb.documents(),
            vec![doc("monarch", "a", "1")],
            "monarch untouched"
        );
        assert_eq!(kb.calls(), 4);
        kb.set_unavailable(Some("busy"));
        let e = kb.ingest(&[]).await.expect_err("unavailable");
        assert!(e.to_string().contains("busy"), "{e}");
        assert_eq!(kb.calls(), 5);
    }
}
