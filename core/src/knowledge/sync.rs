//! The knowledge sync: inbox threads and agent folders kept in their workspaces' knowledge. A
//! pass reads the store each time and writes to the knowledge base (which the embedded store
//! locks while open) only when something changed since its last successful pass.

use super::documents::{FOLDER, THREAD, folder_documents, thread_document};
use super::{Document, DocumentSet, KnowledgeBase, KnowledgeError};
use crate::config::Directory;
use crate::folder::FolderRepo;
use crate::inbox::ThreadFilter;
use crate::ports::InboxRepo;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Threads read per page.
const PAGE: u32 = 500;

/// What a pass over the store ingested.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreSync {
    /// Thread documents written (new or changed).
    pub threads: usize,
    /// Folder documents written (new or changed).
    pub folders: usize,
    /// Documents removed because their thread or folder is gone.
    pub removed: usize,
}

impl std::fmt::Display for StoreSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} thread{} and {} folder document{} written, {} removed",
            self.threads,
            if self.threads == 1 { "" } else { "s" },
            self.folders,
            if self.folders == 1 { "" } else { "s" },
            self.removed
        )
    }
}

/// The documents the store holds for the knowledge base, by workspace: one per inbox thread
/// (source kind `thread`) and one per agent folder in each workspace of its agent (source kind
/// `folder`). Every configured workspace has an entry, empty or not, so a workspace whose
/// threads are all gone loses their documents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct StoreDocuments {
    threads: BTreeMap<String, Vec<Document>>,
    folders: BTreeMap<String, Vec<Document>>,
}

impl StoreDocuments {
    /// Reads every thread (body, status, decision, replies) and every folder's entries.
    pub async fn read(
        inbox: &dyn InboxRepo,
        folders: &dyn FolderRepo,
        directory: &Directory,
    ) -> Result<Self, KnowledgeError> {
        let mut out = Self::default();
        for w in directory.workspaces() {
            out.threads.entry(w.slug.to_string()).or_default();
            out.folders.entry(w.slug.to_string()).or_default();
        }
        let mut before = None;
        loop {
            let page = inbox
                .list(&ThreadFilter {
                    limit: PAGE,
                    before,
                    ..ThreadFilter::default()
                })
                .await?;
            let Some(last) = page.last() else { break };
            before = Some(last.id);
            for t in &page {
                let Some(full) = inbox.get(t.id).await? else {
                    continue;
                };
                if let Some(doc) = thread_document(&full) {
                    out.threads
                        .entry(doc.workspace.clone())
                        .or_default()
                        .push(doc);
                }
            }
            if page.len() < PAGE as usize {
                break;
            }
        }
        for f in folders.folders(None).await? {
            let entries = folders.entries(f.id).await?;
            for doc in folder_documents(&f, &entries, directory) {
                out.folders
                    .entry(doc.workspace.clone())
                    .or_default()
                    .push(doc);
            }
        }
        Ok(out)
    }

    /// A digest of every document: equal digests mean there is nothing new to ingest.
    pub fn digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }

    /// Makes the knowledge base hold exactly these documents for threads and folders:
    /// unchanged ones cost a hash, changed ones are replaced, vanished ones removed.
    pub async fn apply(&self, knowledge: &dyn KnowledgeBase) -> Result<StoreSync, KnowledgeError> {
        let sets = |kind: &str, by_ws: &BTreeMap<String, Vec<Document>>| {
            by_ws
                .iter()
                .map(|(ws, docs)| DocumentSet {
                    workspace: ws.clone(),
                    source_kind: kind.to_owned(),
                    documents: docs.clone(),
                })
                .collect::<Vec<_>>()
        };
        let threads = sets(THREAD, &self.threads);
        let n_threads = threads.len();
        let mut all = threads;
        all.extend(sets(FOLDER, &self.folders));
        let counts = knowledge.sync(&all).await?;
        let mut out = StoreSync::default();
        for (i, c) in counts.iter().enumerate() {
            if i < n_threads {
                out.threads += c.added + c.replaced;
            } else {
                out.folders += c.added + c.replaced;
            }
            out.removed += c.removed;
        }
        Ok(out)
    }
}

/// The background pass of `krake serve` that keeps threads and folders in the knowledge base.
pub struct KnowledgeSync {
    knowledge: Arc<dyn KnowledgeBase>,
    inbox: Arc<dyn InboxRepo>,
    folders: Arc<dyn FolderRepo>,
    directory: Directory,
    synced: Option<u64>,
}

impl KnowledgeSync {
    /// A sync from the store's threads and folders into `knowledge`.
    pub fn new(
        knowledge: Arc<dyn KnowledgeBase>,
        inbox: Arc<dyn InboxRepo>,
        folders: Arc<dyn FolderRepo>,
        directory: Directory,
    ) -> Self {
        Self {
            knowledge,
            inbox,
            folders,
            directory,
            synced: None,
        }
    }

    /// One pass: `None` when nothing changed since the last successful one (the knowledge base
    /// is then not touched). A failed pass (the knowledge base busy with `krake ingest`, say)
    /// is retried in full by the next.
    pub async fn pass(&mut self) -> Result<Option<StoreSync>, KnowledgeError> {
        let docs =
            StoreDocuments::read(self.inbox.as_ref(), self.folders.as_ref(), &self.directory)
                .await?;
        let digest = docs.digest();
        if self.synced == Some(digest) {
            return Ok(None);
        }
        let done = docs.apply(self.knowledge.as_ref()).await?;
        self.synced = Some(digest);
        Ok(Some(done))
    }

    /// Passes every `every` (the first one interval after the start) until `stop` changes.
    pub async fn run(mut self, every: Duration, mut stop: watch::Receiver<bool>) {
        let start = tokio::time::Instant::now() + every;
        let mut ticks = tokio::time::interval_at(start, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.changed() => break,
            }
            match self.pass().await {
                Ok(Some(done)) => {
                    tracing::info!(%done, "threads and folders synced into the knowledge base")
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    error = %e,
                    "syncing threads and folders into the knowledge base failed; the next pass retries"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbox::Origin;
    use crate::knowledge::MemoryKnowledge;
    use crate::knowledge::documents::tests::{entry, folder, reply, thread};
    use crate::test_fakes::{FakeFolders, FakeInbox};

    struct World {
        kb: Arc<MemoryKnowledge>,
        inbox: Arc<FakeInbox>,
        folders: Arc<FakeFolders>,
        sync: KnowledgeSync,
    }

    fn world() -> World {
        let kb = Arc::new(MemoryKnowledge::new());
        let inbox = Arc::new(FakeInbox::default());
        let folders = Arc::new(FakeFolders::default());
        let sync = KnowledgeSync::new(
            kb.clone(),
            inbox.clone(),
            folders.clone(),
            Directory::default(),
        );
        World {
            kb,
            inbox,
            folders,
            sync,
        }
    }

    fn docs_of(kb: &MemoryKnowledge, ws: &str, kind: &str) -> Vec<Document> {
        kb.documents()
            .into_iter()
            .filter(|d| d.workspace == ws && d.source_kind == kind)
            .collect()
    }

    #[tokio::test]
    async fn a_pass_writes_only_when_something_changed_and_per_workspace() {
        let mut w = world();
        w.inbox.put(thread(
            1,
            "lunavo",
            Origin::System,
            "Which courier for Porto?",
        ));
        w.inbox.put(thread(
            2,
            "monarch",
            Origin::System,
            "Payroll runs on the 25th.",
        ));
        // A task someone filed and nobody answered: not knowledge.
        w.inbox.put(thread(
            3,
            "lunavo",
            Origin::User,
            "how long do refunds take?",
        ));
        w.folders.put(
            folder(1, "Soshie", "suppliers", &["note"]),
            vec![entry(1, &[(1, "Glow ink comes from Lumiprint")])],
        );
        let first = w.sync.pass().await.expect("pass");
        // Soshie's folder goes to each of her three workspaces.
        assert_eq!(
            first,
            Some(StoreSync {
                threads: 2,
                folders: 3,
                removed: 0
            })
        );
        assert_eq!(w.kb.calls(), 1);
        let again = w.sync.pass().await.expect("pass");
        assert_eq!(again, None, "nothing changed");
        assert_eq!(w.kb.calls(), 1, "the knowledge base is not opened");

        let mut porto = w.inbox.thread(1).expect("thread");
        porto.replies.push(reply("ana", "DHL delivers to Porto"));
        w.inbox.put(porto);
        let after = w.sync.pass().await.expect("pass");
        assert_eq!(
            after,
            Some(StoreSync {
                threads: 1,
                folders: 0,
                removed: 0
            })
        );
        let lunavo = docs_of(&w.kb, "lunavo", "thread");
        assert_eq!(lunavo.len(), 1, "{lunavo:?}");
        assert!(lunavo[0].text.contains("ana: DHL delivers to Porto"));
        assert!(
            docs_of(&w.kb, "monarch", "folder").is_empty(),
            "Soshie's folder stays out of monarch"
        );
        assert_eq!(docs_of(&w.kb, "lunabots", "folder").len(), 1);
    }

    #[tokio::test]
    async fn vanished_threads_and_folders_are_removed_from_every_workspace() {
        let mut w = world();
        w.inbox.put(thread(
            1,
            "monarch",
            Origin::System,
            "Payroll runs on the 25th.",
        ));
        w.folders.put(
            folder(1, "Soshie", "suppliers", &["note"]),
            vec![entry(1, &[(1, "Lumiprint")])],
        );
        w.sync.pass().await.expect("pass");
        w.inbox.remove(1);
        w.folders.remove(1);
        let done = w.sync.pass().await.expect("pass");
        assert_eq!(
            done,
            Some(StoreSync {
                threads: 0,
                folders: 0,
                removed: 4
            })
        );
        assert!(w.kb.documents().is_empty(), "{:?}", w.kb.documents());
    }

    #[tokio::test]
    async fn a_failed_pass_is_retried_in_full_by_the_next() {
        let mut w = world();
        w.inbox
            .put(thread(1, "lunavo", Origin::System, "Late parcel"));
        w.kb.set_unavailable(Some("locked by krake ingest"));
        let e = w.sync.pass().await.expect_err("busy");
        assert!(e.to_string().contains("locked by krake ingest"), "{e}");
        w.kb.set_unavailable(None);
        let done = w.sync.pass().await.expect("pass");
        assert_eq!(
            done,
            Some(StoreSync {
                threads: 1,
                folders: 0,
                removed: 0
            })
        );
    }

    #[tokio::test]
    async fn every_thread_is_read_across_pages() {
        let mut w = world();
        let n = PAGE as i64 * 2 + 3;
        for id in 1..=n {
            w.inbox
                .put(thread(id, "lunavo", Origin::System, &format!("note {id}")));
        }
        let done = w.sync.pass().await.expect("pass").expect("changed");
        assert_eq!(done.threads, n as usize);
        assert_eq!(docs_of(&w.kb, "lunavo", "thread").len(), n as usize);
    }

    #[tokio::test(start_paused = true)]
    async fn the_loop_passes_every_interval_from_one_interval_after_the_start_until_stopped() {
        let w = world();
        w.inbox
            .put(thread(1, "lunavo", Origin::System, "Late parcel"));
        let (kb, inbox) = (w.kb.clone(), w.inbox.clone());
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(w.sync.run(Duration::from_secs(300), rx));
        tokio::time::sleep(Duration::from_secs(299)).await;
        assert_eq!(kb.calls(), 0, "no pass before the first interval");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(kb.calls(), 1);
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert_eq!(kb.calls(), 1, "unchanged: not opened");
        inbox.put(thread(2, "lunavo", Origin::System, "Another"));
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert_eq!(kb.calls(), 2);
        stop.send(true).expect("stop");
        task.await.expect("ends");
    }
}
