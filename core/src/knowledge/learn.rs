//! Files people send become knowledge: a document dropped in a Telegram chat, a Discord
//! channel (or `/learn`), the web widget or the knowledge API is learned into the
//! conversation's workspace by the same pipeline as `krake ingest`.
//!
//! - The accept path ([`Krake::learn`](crate::Krake)) checks the role (member) and the size the
//!   platform announced, and files a durable job ([`LearnRepo::enqueue`]) in the event's own
//!   transaction: the chat answer does not wait for embedding.
//! - The [`Learner`] claims jobs with a lease (a crash returns the job to the queue), fetches
//!   the bytes through the front's [`FileFetcher`] when the front gave only a reference,
//!   checks the type by content, recognises a file already learned by its content hash,
//!   writes the passages (showing progress on long files by editing one message) and answers
//!   where the file was sent. A failed job leaves nothing partial in the knowledge base.
//! - [`Source`]s are what `/sources` lists and `/forget` removes.

use super::{Document, KnowledgeBase, KnowledgeError, documents::FILE};
use crate::actor::Front;
use crate::delivery::{Delivery, LiveSenders};
use crate::outbox::{Destination, KeyedOutbound, NewOutbound, OutboxPayload};
use crate::ports::{RepoError, WriteCtx};
use crate::reply::Reply;
use crate::time::{Clock, Timestamp};
use crate::workspace::WorkspaceSlug;
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The largest file learned when the configuration says nothing (`[rag] max_file_mb`).
pub const DEFAULT_MAX_FILE_BYTES: u64 = 20 * 1024 * 1024;

/// How long a claimed job is someone's before another process may take it over; each group of
/// passages written extends it.
pub const LEASE: Duration = Duration::from_secs(30);

/// How many times a job is tried before it is refused with its last error.
pub const MAX_ATTEMPTS: i64 = 5;

/// A file with at least this many passages shows its progress in chat.
pub const PROGRESS_FROM: usize = 40;

/// A file someone sent: its name, the size the platform announced, and its bytes or where the
/// front fetches them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentFile {
    /// The file name as shown and cited (see [`clean_name`]).
    pub name: String,
    /// The size the platform announced, when it did (checked before anything is fetched).
    pub size: Option<u64>,
    /// The bytes, or where to fetch them.
    pub body: FileBody,
}

/// A sent file's bytes, or the reference its front fetches them by.
#[derive(Clone, PartialEq, Eq)]
pub enum FileBody {
    /// The bytes themselves (an upload).
    Bytes(Vec<u8>),
    /// What the front's [`FileFetcher`] fetches (a Telegram `file_id`, a Discord attachment
    /// URL).
    Remote(String),
}

impl std::fmt::Debug for FileBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileBody::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            FileBody::Remote(r) => f.debug_tuple("Remote").field(r).finish(),
        }
    }
}

/// A file name safe to show and cite: the last path component, control characters and
/// spaces at the ends removed, at most 120 characters; `file` when nothing is left.
pub fn clean_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let name: String = last
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c.is_whitespace() { '-' } else { c })
        .take(120)
        .collect();
    let name = name.trim_matches(['-', '.']).to_owned();
    if name.is_empty() {
        "file".to_owned()
    } else {
        name
    }
}

/// The workspace the words sent with a file name (`/learn monarch`), whatever the front.
pub fn named_workspace(words: &str) -> Option<WorkspaceSlug> {
    let rest = words.trim().strip_prefix("/learn")?;
    WorkspaceSlug::parse(rest.trim()).ok()
}

/// Megabytes with one decimal, for messages.
pub fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
}

/// A learn job's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LearnId(pub i64);

/// Where a sent file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceStatus {
    /// Waiting for the learner.
    Queued,
    /// Learned: its passages are in the knowledge base.
    Learned,
    /// Not learned, with the reason.
    Refused,
    /// The same content was already learned; nothing was added.
    Duplicate,
    /// A newer file of the same name replaced it.
    Replaced,
    /// Someone removed it with `/forget`.
    Forgotten,
}

impl SourceStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceStatus::Queued => "queued",
            SourceStatus::Learned => "learned",
            SourceStatus::Refused => "refused",
            SourceStatus::Duplicate => "duplicate",
            SourceStatus::Replaced => "replaced",
            SourceStatus::Forgotten => "forgotten",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => SourceStatus::Queued,
            "learned" => SourceStatus::Learned,
            "refused" => SourceStatus::Refused,
            "duplicate" => SourceStatus::Duplicate,
            "replaced" => SourceStatus::Replaced,
            "forgotten" => SourceStatus::Forgotten,
            _ => return None,
        })
    }
}

/// A file to learn, as the accept path files it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLearn {
    /// The workspace it goes to.
    pub workspace: WorkspaceSlug,
    /// The file.
    pub file: SentFile,
    /// Who sent it.
    pub added_by: String,
    /// Through which front.
    pub front: Front,
    /// Where the answer goes (the chat it was sent in); `None` answers only in the reply.
    pub answer_to: Option<Destination>,
}

/// A claimed learn job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnJob {
    /// Its id.
    pub id: LearnId,
    /// The workspace.
    pub workspace: WorkspaceSlug,
    /// The file name.
    pub name: String,
    /// The announced size.
    pub size: Option<u64>,
    /// The bytes, once fetched or uploaded.
    pub body: Option<Vec<u8>>,
    /// Where the front fetches them, when it gave a reference.
    pub locator: Option<String>,
    /// Who sent it.
    pub added_by: String,
    /// Through which front.
    pub front: Front,
    /// Where the answer goes.
    pub answer_to: Option<Destination>,
    /// The message showing progress, once one was sent.
    pub progress_message: Option<String>,
    /// How many times it was claimed (this one included).
    pub attempts: i64,
}

/// A file the knowledge base learned (or tried to), as `/sources` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Its id.
    pub id: LearnId,
    /// The workspace.
    pub workspace: WorkspaceSlug,
    /// The file name (what answers cite).
    pub name: String,
    /// Its title (first heading, HTML title, else the name).
    pub title: String,
    /// What it was read as (`pdf`, `markdown`, `text`, `html`, `csv`).
    pub kind: String,
    /// Who sent it.
    pub added_by: String,
    /// Through which front.
    pub front: String,
    /// Its size in bytes, when known.
    pub size: Option<u64>,
    /// How many passages it became.
    pub passages: i64,
    /// Its status.
    pub status: SourceStatus,
    /// Why it was refused.
    pub error: Option<String>,
    /// When it was sent.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Learned.
    Learned {
        /// The file's title.
        title: String,
        /// What it was read as.
        kind: String,
        /// The text read from it (kept: `/source` shows its passages).
        text: String,
        /// How many passages it became.
        passages: usize,
    },
    /// The same content is already learned as the source named.
    Duplicate {
        /// The learned file with the same content.
        of: String,
    },
    /// Not learned: why.
    Refused(String),
}

/// The durable learn jobs and the sources they became.
#[async_trait]
pub trait LearnRepo: Send + Sync {
    /// Files a job, marking `ctx.inbound` applied and writing its answer in the same
    /// transaction.
    async fn enqueue_learn(&self, new: &NewLearn, ctx: &WriteCtx) -> Result<LearnId, RepoError>;
    /// Claims the oldest queued job whose lease is free (counting the attempt), leased until
    /// `now + lease`.
    async fn claim_learn(
        &self,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<LearnJob>, RepoError>;
    /// Keeps the bytes' content hash with the job, and the bytes themselves when `keep` (they
    /// were fetched, so an attempt after a crash does not fetch them again).
    async fn save_body(
        &self,
        id: LearnId,
        bytes: &[u8],
        hash: &str,
        keep: bool,
    ) -> Result<(), RepoError>;
    /// Records progress (passages written of the total) and the message showing it, and
    /// extends the job's lease to `lease_until`.
    async fn learn_progress(
        &self,
        id: LearnId,
        done: usize,
        total: usize,
        message: Option<&str>,
        lease_until: Timestamp,
    ) -> Result<(), RepoError>;
    /// Ends a job: its status, title and passages, the bytes dropped, an older learned file of
    /// the same name marked replaced, and `answer` queued, all in one transaction.
    async fn finish_learn(
        &self,
        id: LearnId,
        finish: &Finish,
        answer: Option<&KeyedOutbound>,
        now: Timestamp,
    ) -> Result<(), RepoError>;
    /// The learned source of `workspace` whose bytes hash to `hash`.
    async fn learned_with_hash(
        &self,
        workspace: &WorkspaceSlug,
        hash: &str,
    ) -> Result<Option<Source>, RepoError>;
    /// The sources of `workspace` that are learned or waiting, newest first.
    async fn sources(&self, workspace: &WorkspaceSlug) -> Result<Vec<Source>, RepoError>;
    /// A learned source by name, with the text read from it.
    async fn source_text(
        &self,
        workspace: &WorkspaceSlug,
        name: &str,
    ) -> Result<Option<(Source, String)>, RepoError>;
    /// Marks the learned source `name` forgotten by `ctx.actor` (audited), marking
    /// `ctx.inbound` applied and writing its answer in the same transaction; `None` when
    /// there is no such learned source.
    async fn forget_source(
        &self,
        workspace: &WorkspaceSlug,
        name: &str,
        ctx: &WriteCtx,
    ) -> Result<Option<Source>, RepoError>;
}

/// Why a front could not fetch a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Larger than the limit (stopped at the limit, or refused by the announced size).
    #[error("it is larger than the limit of {}", megabytes(*.0))]
    TooLarge(u64),
    /// The platform did not give it.
    #[error("it could not be fetched: {0}")]
    Failed(String),
}

/// Fetches the bytes of a file a front gave only a reference for.
#[async_trait]
pub trait FileFetcher: Send + Sync {
    /// The front whose references it reads (`telegram`, `discord`).
    fn front(&self) -> &str;
    /// The file's bytes, at most `max_bytes` of them.
    async fn fetch(&self, locator: &str, max_bytes: u64) -> Result<Vec<u8>, FetchError>;
}

/// The content hash of a file's bytes (SHA-256, hex).
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The worker that turns learn jobs into knowledge.
#[derive(Clone)]
pub struct Learner {
    repo: Arc<dyn LearnRepo>,
    knowledge: Arc<dyn KnowledgeBase>,
    fetchers: BTreeMap<String, Arc<dyn FileFetcher>>,
    live: LiveSenders,
    clock: Arc<dyn Clock>,
    max_bytes: u64,
}

impl std::fmt::Debug for Learner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Learner")
            .field("fetchers", &self.fetchers.keys().collect::<Vec<_>>())
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

/// What one pass of the learner did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pass {
    /// No job was waiting.
    Idle,
    /// A job ended (learned, duplicate or refused).
    Done(LearnId),
    /// A job failed for now; it is tried again once its lease passes.
    Retry(LearnId, String),
}

impl Learner {
    /// A learner writing to `knowledge`, files at most `max_bytes` each.
    pub fn new(
        repo: Arc<dyn LearnRepo>,
        knowledge: Arc<dyn KnowledgeBase>,
        clock: Arc<dyn Clock>,
        max_bytes: u64,
    ) -> Self {
        Self {
            repo,
            knowledge,
            fetchers: BTreeMap::new(),
            live: LiveSenders::new(),
            clock,
            max_bytes,
        }
    }

    /// Fetches files of the fetcher's front.
    pub fn with_fetcher(mut self, fetcher: Arc<dyn FileFetcher>) -> Self {
        self.fetchers.insert(fetcher.front().to_owned(), fetcher);
        self
    }

    /// Shows progress through the fronts' live senders.
    pub fn with_live(mut self, live: LiveSenders) -> Self {
        self.live = live;
        self
    }

    /// Learns jobs until `stop` resolves, polling every `idle` while none waits.
    pub async fn run(&self, idle: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let wait = match self.next().await {
                Ok(Pass::Done(_)) => Duration::ZERO,
                Ok(Pass::Idle) => idle,
                Ok(Pass::Retry(id, why)) => {
                    tracing::warn!(job = id.0, error = %why, "learning a file failed; it will be tried again");
                    idle
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the learn queue cannot be read");
                    idle
                }
            };
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Claims and works one job.
    pub async fn next(&self) -> Result<Pass, RepoError> {
        let Some(job) = self.repo.claim_learn(self.clock.now(), LEASE).await? else {
            return Ok(Pass::Idle);
        };
        let id = job.id;
        let mut job = job;
        match self.work(&mut job).await {
            Ok(finish) => {
                self.finish(&job, &finish).await?;
                Ok(Pass::Done(id))
            }
            Err(why) if job.attempts >= MAX_ATTEMPTS => {
                self.finish(
                    &job,
                    &Finish::Refused(format!("it could not be stored: {why}")),
                )
                .await?;
                Ok(Pass::Done(id))
            }
            Err(why) => Ok(Pass::Retry(id, why)),
        }
    }

    /// Learns one job's file; `Err` for a failure worth another attempt.
    async fn work(&self, job: &mut LearnJob) -> Result<Finish, String> {
        let bytes = match &job.body {
            Some(b) => b.clone(),
            None => match self.fetch(job).await {
                Ok(b) => b,
                Err(FetchError::TooLarge(limit)) => {
                    return Ok(Finish::Refused(format!(
                        "it is larger than the limit of {}",
                        megabytes(limit)
                    )));
                }
                Err(FetchError::Failed(why)) => return Err(why),
            },
        };
        if bytes.len() as u64 > self.max_bytes {
            return Ok(Finish::Refused(format!(
                "it is {}, larger than the limit of {}",
                megabytes(bytes.len() as u64),
                megabytes(self.max_bytes)
            )));
        }
        let hash = content_hash(&bytes);
        self.repo
            .save_body(job.id, &bytes, &hash, job.body.is_none())
            .await
            .map_err(|e| e.to_string())?;
        if let Some(known) = self
            .repo
            .learned_with_hash(&job.workspace, &hash)
            .await
            .map_err(|e| e.to_string())?
            .filter(|s| s.id != job.id)
        {
            return Ok(Finish::Duplicate { of: known.name });
        }
        let file = match self.knowledge.read_file(&job.name, &bytes) {
            Ok(f) => f,
            Err(why) => return Ok(Finish::Refused(why)),
        };
        if file.text.trim().is_empty() {
            return Ok(Finish::Refused("it holds no text".to_owned()));
        }
        let doc = Document {
            workspace: job.workspace.to_string(),
            source_kind: FILE.to_owned(),
            source: job.name.clone(),
            title: file.title.clone(),
            text: file.text.clone(),
            time: self.clock.now().as_millis() / 1000,
        };
        let progress = Progress::start(self, job);
        let learned = self
            .knowledge
            .learn(&doc, &|done, total| progress.set(done, total))
            .await;
        if let Some(m) = progress.finish().await {
            job.progress_message = Some(m);
        }
        match learned {
            Ok(passages) => Ok(Finish::Learned {
                title: file.title,
                kind: file.kind,
                text: file.text,
                passages,
            }),
            Err(e) => {
                // Nothing partial stays: what was written of this file goes.
                if let Err(gone) = self
                    .knowledge
                    .forget(&doc.workspace, FILE, &doc.source)
                    .await
                {
                    tracing::warn!(job = job.id.0, error = %gone, "a partly learned file could not be removed yet");
                }
                match e {
                    KnowledgeError::Ingest(why) => Ok(Finish::Refused(why)),
                    other => Err(other.to_string()),
                }
            }
        }
    }

    async fn fetch(&self, job: &LearnJob) -> Result<Vec<u8>, FetchError> {
        if job.size.is_some_and(|s| s > self.max_bytes) {
            return Err(FetchError::TooLarge(self.max_bytes));
        }
        let Some(locator) = &job.locator else {
            return Err(FetchError::Failed(
                "the file's bytes were never received".into(),
            ));
        };
        let Some(fetcher) = self.fetchers.get(job.front.as_str()) else {
            return Err(FetchError::Failed(format!(
                "{} files cannot be fetched by this process",
                job.front.as_str()
            )));
        };
        fetcher.fetch(locator, self.max_bytes).await
    }

    async fn finish(&self, job: &LearnJob, finish: &Finish) -> Result<(), RepoError> {
        let reply = answer(job, finish);
        let answer = job.answer_to.as_ref().map(|d| KeyedOutbound {
            message: NewOutbound {
                destination: d.clone(),
                payload: match &job.progress_message {
                    Some(m) => OutboxPayload::Replace {
                        message_id: m.clone(),
                        reply: reply.clone(),
                    },
                    None => OutboxPayload::Send {
                        reply: reply.clone(),
                    },
                },
            },
            key: format!("learn:{}", job.id.0),
        });
        self.repo
            .finish_learn(job.id, finish, answer.as_ref(), self.clock.now())
            .await
    }
}

/// The answer to a finished job, as the person who sent the file reads it.
pub fn answer(job: &LearnJob, finish: &Finish) -> Reply {
    match finish {
        Finish::Learned { passages, .. } => Reply::success(format!(
            "Learned {}: {passages} passage{} in {}. Ask me about it.",
            job.name,
            if *passages == 1 { "" } else { "s" },
            job.workspace
        )),
        Finish::Duplicate { of } if *of == job.name => Reply::info(format!(
            "{} is already known in {}: it is the same file, so nothing was added.",
            job.name, job.workspace
        )),
        Finish::Duplicate { of } => Reply::info(format!(
            "{} has the same content as {of}, already known in {}: nothing was added.",
            job.name, job.workspace
        )),
        Finish::Refused(why) => Reply::warning(format!(
            "I could not learn {}: {why}. Nothing from it was kept.",
            job.name
        )),
    }
}

/// Shows a long file's progress by editing one message, at the platform's pace.
struct Progress {
    tx: tokio::sync::watch::Sender<(usize, usize)>,
    task: tokio::task::JoinHandle<Option<String>>,
}

impl Progress {
    fn start(learner: &Learner, job: &LearnJob) -> Self {
        let (tx, mut rx) = tokio::sync::watch::channel((0, 0));
        let sender = job
            .answer_to
            .as_ref()
            .and_then(|d| learner.live.get(d.front()).map(|s| (d.clone(), s)));
        let repo = learner.repo.clone();
        let clock = learner.clock.clone();
        let id = job.id;
        let name = job.name.clone();
        let mut message = job.progress_message.clone();
        let task = tokio::spawn(async move {
            let mut next = tokio::time::Instant::now();
            while rx.changed().await.is_ok() {
                tokio::time::sleep_until(next).await;
                let (done, total) = *rx.borrow_and_update();
                let shown = total >= PROGRESS_FROM && done > 0 && done < total;
                if let Some((to, sender)) = sender.as_ref().filter(|_| shown) {
                    let text = format!(
                        "Learning {name}: {done} of {total} passages ({}%)…",
                        done * 100 / total.max(1)
                    );
                    let delivery = Delivery::Stream {
                        message_id: message.clone(),
                        text,
                    };
                    match sender.send(to, &delivery).await {
                        Ok(sent) => {
                            if message.is_none() {
                                message = sent.message_id;
                            }
                        }
                        Err(e) => tracing::debug!(error = %e, "progress not shown"),
                    }
                    next = tokio::time::Instant::now() + sender.stream_interval();
                }
                let lease = clock.now().plus(LEASE);
                if let Err(e) = repo
                    .learn_progress(id, done, total, message.as_deref(), lease)
                    .await
                {
                    tracing::debug!(error = %e, "progress not recorded");
                }
            }
            message
        });
        Self { tx, task }
    }

    fn set(&self, done: usize, total: usize) {
        let _ = self.tx.send((done, total));
    }

    /// Stops showing progress; the message that showed it, if one was sent.
    async fn finish(self) -> Option<String> {
        drop(self.tx);
        self.task.await.ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned_to_a_last_component_without_control_characters() {
        assert_eq!(clean_name("returns-policy.pdf"), "returns-policy.pdf");
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\Users\\ana\\FAQ 2026.md"), "FAQ-2026.md");
        assert_eq!(clean_name("bad\u{0}\u{7}name.txt"), "badname.txt");
        assert_eq!(clean_name("..."), "file");
        assert_eq!(clean_name(""), "file");
        assert_eq!(clean_name(&"x".repeat(500)).chars().count(), 120);
    }

    #[test]
    fn words_with_a_file_may_name_its_workspace() {
        let ws = |s: &str| Some(WorkspaceSlug::parse(s).expect("slug"));
        assert_eq!(named_workspace("/learn monarch"), ws("monarch"));
        assert_eq!(
            named_workspace("  /learn   hard-life-mode "),
            ws("hard-life-mode")
        );
        assert_eq!(named_workspace("/learn"), None);
        assert_eq!(named_workspace("here is the policy"), None);
        assert_eq!(named_workspace("/learn Not A Slug!"), None);
    }

    #[test]
    fn sizes_read_in_megabytes() {
        assert_eq!(megabytes(30 * 1024 * 1024), "30.0 MB");
        assert_eq!(megabytes(DEFAULT_MAX_FILE_BYTES), "20.0 MB");
        assert_eq!(megabytes(1536 * 1024), "1.5 MB");
    }

    #[test]
    fn answers_say_what_happened_in_words() {
        let job = LearnJob {
            id: LearnId(1),
            workspace: WorkspaceSlug::parse("lunavo").expect("slug"),
            name: "faq.md".into(),
            size: None,
            body: None,
            locator: None,
            added_by: "ana".into(),
            front: Front::Telegram,
            answer_to: None,
            progress_message: None,
            attempts: 1,
        };
        let learned = |passages| Finish::Learned {
            title: "FAQ".into(),
            kind: "markdown".into(),
            text: String::new(),
            passages,
        };
        assert_eq!(
            answer(&job, &learned(1)).text,
            "Learned faq.md: 1 passage in lunavo. Ask me about it."
        );
        assert_eq!(
            answer(&job, &learned(14)).text,
            "Learned faq.md: 14 passages in lunavo. Ask me about it."
        );
        assert_eq!(
            answer(
                &job,
                &Finish::Duplicate {
                    of: "old.md".into()
                }
            )
            .text,
            "faq.md has the same content as old.md, already known in lunavo: nothing was added."
        );
        assert_eq!(
            answer(&job, &Finish::Refused("it is an image".into())).text,
            "I could not learn faq.md: it is an image. Nothing from it was kept."
        );
        for s in [
            SourceStatus::Queued,
            SourceStatus::Learned,
            SourceStatus::Refused,
            SourceStatus::Duplicate,
            SourceStatus::Replaced,
            SourceStatus::Forgotten,
        ] {
            assert_eq!(SourceStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(SourceStatus::parse("lost"), None);
    }
}
