//! Small in-memory stand-ins for the store's repositories, for core's unit tests. Each holds
//! what the tests put in and implements the calls the code under test makes; any other call
//! fails loudly with [`RepoError::Unavailable`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::folder::{
    Column, ColumnId, ColumnKind, Entry, EntryId, Folder, FolderId, FolderRepo, Name, Values,
};
use crate::inbox::{
    AuditEntry, Decision, DecisionOutcome, Expired, NewThread, Thread, ThreadFilter, ThreadId,
    ThreadReply,
};
use crate::outbox::{Destination, NewOutbound, OutboxId, OutboxJob, RetryOutcome, RetryPolicy};
use crate::ports::{ArchiveOutcome, InboxRepo, OutboxRepo, RepoError, ThreadCopy, WriteCtx};
use crate::run::{NewRun, Run, RunId, RunOutcome, RunRepo, RunStatus, RunStep};
use crate::schedule::{NewSchedule, Schedule, ScheduleId, ScheduleRepo, ScheduleRun};
use crate::time::Timestamp;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

fn unsupported<T>(what: &str) -> Result<T, RepoError> {
    Err(RepoError::Unavailable(format!(
        "{what}: not supported by this fake"
    )))
}

/// Threads by id.
#[derive(Debug, Default)]
pub struct FakeInbox(Mutex<BTreeMap<i64, Thread>>);

impl FakeInbox {
    /// Adds or replaces a thread.
    pub fn put(&self, t: Thread) {
        self.0.lock().unwrap().insert(t.id.0, t);
    }
    /// Removes a thread.
    pub fn remove(&self, id: i64) {
        self.0.lock().unwrap().remove(&id);
    }
    /// One thread.
    pub fn thread(&self, id: i64) -> Option<Thread> {
        self.0.lock().unwrap().get(&id).cloned()
    }
}

#[async_trait]
impl InboxRepo for FakeInbox {
    async fn create(&self, _new: &NewThread, _ctx: &WriteCtx) -> Result<Thread, RepoError> {
        unsupported("create")
    }
    async fn get(&self, id: ThreadId) -> Result<Option<Thread>, RepoError> {
        Ok(self.thread(id.0))
    }
    async fn list(&self, filter: &ThreadFilter) -> Result<Vec<Thread>, RepoError> {
        let limit = if filter.limit == 0 { 50 } else { filter.limit } as usize;
        Ok(self
            .0
            .lock()
            .unwrap()
            .values()
            .rev()
            .filter(|t| filter.before.is_none_or(|b| t.id.0 < b.0))
            .take(limit)
            .map(|t| Thread {
                replies: Vec::new(),
                ..t.clone()
            })
            .collect())
    }
    async fn reply(
        &self,
        id: ThreadId,
        text: &str,
        ctx: &WriteCtx,
    ) -> Result<Option<Thread>, RepoError> {
        let mut map = self.0.lock().unwrap();
        let Some(t) = map.get_mut(&id.0) else {
            return Ok(None);
        };
        t.replies.push(ThreadReply {
            author: ctx.actor.user.clone(),
            front: ctx.actor.front,
            text: text.to_owned(),
            at: ctx.now,
        });
        t.updated_at = ctx.now;
        Ok(Some(t.clone()))
    }
    async fn decide(
        &self,
        _id: ThreadId,
        _decision: &Decision,
        _expected_version: Option<i64>,
        _ctx: &WriteCtx,
    ) -> Result<Option<DecisionOutcome>, RepoError> {
        unsupported("decide")
    }
    async fn set_archived(
        &self,
        _id: ThreadId,
        _archived: bool,
        _ctx: &WriteCtx,
    ) -> Result<Option<ArchiveOutcome>, RepoError> {
        unsupported("set_archived")
    }
    async fn sweep_expired(
        &self,
        _now: Timestamp,
        _limit: u32,
        _routes: &crate::delivery::Routes,
    ) -> Result<Vec<Expired>, RepoError> {
        unsupported("sweep_expired")
    }
    async fn audit(&self, _id: ThreadId) -> Result<Vec<AuditEntry>, RepoError> {
        unsupported("audit")
    }
    async fn add_copy(&self, _copy: &ThreadCopy) -> Result<(), RepoError> {
        unsupported("add_copy")
    }
    async fn copies(&self, _id: ThreadId) -> Result<Vec<ThreadCopy>, RepoError> {
        unsupported("copies")
    }
    async fn copy_at(
        &self,
        _destination: &Destination,
        _message_id: &str,
    ) -> Result<Option<ThreadCopy>, RepoError> {
        unsupported("copy_at")
    }
    async fn response_times(
        &self,
        _since: Timestamp,
    ) -> Result<Vec<crate::inbox::stats::ResponseTime>, RepoError> {
        unsupported("response_times")
    }
}

/// Folders with their entries.
#[derive(Debug, Default)]
pub struct FakeFolders(Mutex<BTreeMap<i64, (Folder, Vec<Entry>)>>);

impl FakeFolders {
    /// Adds or replaces a folder and its entries.
    pub fn put(&self, f: Folder, entries: Vec<Entry>) {
        self.0.lock().unwrap().insert(f.id.0, (f, entries));
    }
    /// Removes a folder.
    pub fn remove(&self, id: i64) {
        self.0.lock().unwrap().remove(&id);
    }
}

#[async_trait]
impl FolderRepo for FakeFolders {
    async fn create_folder(
        &self,
        _agent: &str,
        _name: &Name,
        _now: Timestamp,
    ) -> Result<Option<Folder>, RepoError> {
        unsupported("create_folder")
    }
    async fn folders(&self, agent: Option<&str>) -> Result<Vec<Folder>, RepoError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .values()
            .filter(|(f, _)| agent.is_none_or(|a| f.agent.eq_ignore_ascii_case(a)))
            .map(|(f, _)| f.clone())
            .collect())
    }
    async fn folder(&self, _agent: &str, _name: &str) -> Result<Option<Folder>, RepoError> {
        unsupported("folder")
    }
    async fn rename_folder(&self, _id: FolderId, _name: &Name) -> Result<bool, RepoError> {
        unsupported("rename_folder")
    }
    async fn delete_folder(&self, _id: FolderId) -> Result<u64, RepoError> {
        unsupported("delete_folder")
    }
    async fn add_column(
        &self,
        _folder: FolderId,
        _name: &Name,
        _kind: &ColumnKind,
    ) -> Result<Option<Column>, RepoError> {
        unsupported("add_column")
    }
    async fn rename_column(
        &self,
        _folder: FolderId,
        _column: ColumnId,
        _name: &Name,
    ) -> Result<bool, RepoError> {
        unsupported("rename_column")
    }
    async fn remove_column(&self, _folder: FolderId, _column: ColumnId) -> Result<(), RepoError> {
        unsupported("remove_column")
    }
    async fn add_entries(
        &self,
        _folder: FolderId,
        _entries: &[Values],
        _ctx: &WriteCtx,
    ) -> Result<Vec<EntryId>, RepoError> {
        unsupported("add_entries")
    }
    async fn update_entry(
        &self,
        _folder: FolderId,
        _id: EntryId,
        _values: &Values,
        _now: Timestamp,
    ) -> Result<Option<Entry>, RepoError> {
        unsupported("update_entry")
    }
    async fn delete_entry(&self, _folder: FolderId, _id: EntryId) -> Result<bool, RepoError> {
        unsupported("delete_entry")
    }
    async fn entries(&self, folder: FolderId) -> Result<Vec<Entry>, RepoError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(&folder.0)
            .map(|(_, e)| e.clone())
            .unwrap_or_default())
    }
}

/// Runs by id.
#[derive(Debug, Default)]
pub struct FakeRuns(Mutex<BTreeMap<i64, Run>>);

impl FakeRuns {
    /// Adds or replaces a run.
    pub fn put(&self, r: Run) {
        self.0.lock().unwrap().insert(r.id.0, r);
    }
    /// Every run, by id.
    pub fn all(&self) -> Vec<Run> {
        self.0.lock().unwrap().values().cloned().collect()
    }
}

#[async_trait]
impl RunRepo for FakeRuns {
    async fn create_run(&self, new: &NewRun, now: Timestamp) -> Result<Run, RepoError> {
        let mut map = self.0.lock().unwrap();
        let id = map.keys().next_back().copied().unwrap_or(0) + 1;
        let run = Run {
            id: RunId(id),
            workspace: new.workspace.clone(),
            agent: new.agent.clone(),
            task: new.task.clone(),
            trigger: new.trigger.clone(),
            requested_by: new.requested_by.clone(),
            status: RunStatus::Queued,
            steps: Vec::new(),
            result: None,
            error: None,
            attempts: 0,
            thread: None,
            parent: new.parent,
            feedback: new.feedback.clone(),
            answer_to: new.answer_to.clone(),
            stream_message: None,
            created_at: now,
            updated_at: now,
        };
        map.insert(id, run.clone());
        Ok(run)
    }
    async fn claim_runs(
        &self,
        _owner: &str,
        _now: Timestamp,
        _lease: Duration,
        _limit: u32,
    ) -> Result<Vec<Run>, RepoError> {
        unsupported("claim_runs")
    }
    async fn add_step(
        &self,
        _id: RunId,
        _step: &RunStep,
        _lease_until: Timestamp,
    ) -> Result<bool, RepoError> {
        unsupported("add_step")
    }
    async fn extend_lease(&self, _id: RunId, _lease_until: Timestamp) -> Result<bool, RepoError> {
        unsupported("extend_lease")
    }
    async fn cancel_run(
        &self,
        _id: RunId,
        _by: &str,
        _reason: Option<&str>,
        _now: Timestamp,
    ) -> Result<Option<Run>, RepoError> {
        unsupported("cancel_run")
    }
    async fn finish_run(
        &self,
        _id: RunId,
        _from: RunStatus,
        _outcome: &RunOutcome,
        _now: Timestamp,
    ) -> Result<bool, RepoError> {
        unsupported("finish_run")
    }
    async fn set_stream_message(&self, _id: RunId, _message_id: &str) -> Result<(), RepoError> {
        unsupported("set_stream_message")
    }
    async fn finish_run_answering(
        &self,
        _id: RunId,
        _from: RunStatus,
        _outcome: &RunOutcome,
        _answer: &crate::outbox::KeyedOutbound,
        _now: Timestamp,
    ) -> Result<bool, RepoError> {
        unsupported("finish_run_answering")
    }
    async fn run(&self, id: RunId) -> Result<Option<Run>, RepoError> {
        Ok(self.0.lock().unwrap().get(&id.0).cloned())
    }
    async fn run_for_thread(&self, _thread: ThreadId) -> Result<Option<Run>, RepoError> {
        unsupported("run_for_thread")
    }
    async fn queue_from_threads(
        &self,
        _prefix: &str,
        _since: Timestamp,
        _now: Timestamp,
        _limit: u32,
    ) -> Result<Vec<RunId>, RepoError> {
        unsupported("queue_from_threads")
    }
    async fn runs_with_status(
        &self,
        _status: RunStatus,
        _updated_before: Timestamp,
        _limit: u32,
    ) -> Result<Vec<Run>, RepoError> {
        unsupported("runs_with_status")
    }
    async fn list_runs(&self, f: &crate::run::RunFilter) -> Result<Vec<Run>, RepoError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .values()
            .rev()
            .filter(|r| f.workspace.as_ref().is_none_or(|w| &r.workspace == w))
            .filter(|r| f.visible.as_ref().is_none_or(|v| v.contains(&r.workspace)))
            .filter(|r| {
                f.agent
                    .as_ref()
                    .is_none_or(|a| r.agent.eq_ignore_ascii_case(a))
            })
            .filter(|r| f.status.is_none_or(|s| r.status == s))
            .filter(|r| f.parent.is_none_or(|p| r.parent == Some(p)))
            .filter(|r| f.before.is_none_or(|b| r.id < b))
            .take(f.limit as usize)
            .cloned()
            .collect())
    }
    async fn start_delegated(
        &self,
        _new: &NewRun,
        _key: &str,
        _owner: &str,
        _now: Timestamp,
        _lease: Duration,
    ) -> Result<crate::run::Delegated, RepoError> {
        unsupported("start_delegated")
    }
}

/// Schedules by id.
#[derive(Debug, Default)]
pub struct FakeSchedules(Mutex<BTreeMap<i64, Schedule>>);

impl FakeSchedules {
    /// Adds or replaces a schedule.
    pub fn put(&self, s: Schedule) {
        self.0.lock().unwrap().insert(s.id.0, s);
    }
}

#[async_trait]
impl ScheduleRepo for FakeSchedules {
    async fn create_schedule(
        &self,
        _new: &NewSchedule,
        _ctx: &WriteCtx,
    ) -> Result<Schedule, RepoError> {
        unsupported("create_schedule")
    }
    async fn sync_config_schedule(
        &self,
        _new: &NewSchedule,
        _now: Timestamp,
    ) -> Result<Schedule, RepoError> {
        unsupported("sync_config_schedule")
    }
    async fn prune_config_schedules(&self, _keep: &[String]) -> Result<u64, RepoError> {
        unsupported("prune_config_schedules")
    }
    async fn get_schedule(&self, id: ScheduleId) -> Result<Option<Schedule>, RepoError> {
        Ok(self.0.lock().unwrap().get(&id.0).cloned())
    }
    async fn list_schedules(&self) -> Result<Vec<Schedule>, RepoError> {
        unsupported("list_schedules")
    }
    async fn set_schedule_paused(
        &self,
        _id: ScheduleId,
        _paused: bool,
        _next_run_at: Option<Timestamp>,
        _now: Timestamp,
    ) -> Result<Option<Schedule>, RepoError> {
        unsupported("set_schedule_paused")
    }
    async fn delete_schedule(&self, _id: ScheduleId) -> Result<bool, RepoError> {
        unsupported("delete_schedule")
    }
    async fn due_schedules(
        &self,
        _now: Timestamp,
        _limit: u32,
    ) -> Result<Vec<Schedule>, RepoError> {
        unsupported("due_schedules")
    }
    async fn next_due(&self) -> Result<Option<Timestamp>, RepoError> {
        unsupported("next_due")
    }
    async fn claim_occurrence(
        &self,
        _id: ScheduleId,
        _expected: Timestamp,
        _next: Option<Timestamp>,
        _run: Option<(&ScheduleRun, &NewThread)>,
        _now: Timestamp,
    ) -> Result<Option<Option<ThreadId>>, RepoError> {
        unsupported("claim_occurrence")
    }
    async fn record_manual_run(
        &self,
        _run: &ScheduleRun,
        _thread: &NewThread,
        _ctx: &WriteCtx,
    ) -> Result<ThreadId, RepoError> {
        unsupported("record_manual_run")
    }
    async fn schedule_runs(
        &self,
        _id: ScheduleId,
        _limit: u32,
    ) -> Result<Vec<ScheduleRun>, RepoError> {
        unsupported("schedule_runs")
    }
}

/// Messages queued, with their keys.
#[derive(Debug, Default)]
pub struct FakeOutbox(Mutex<Vec<(NewOutbound, String, Timestamp)>>);

impl FakeOutbox {
    /// What was queued: (message, key, time), in order.
    pub fn queued(&self) -> Vec<(NewOutbound, String, Timestamp)> {
        self.0.lock().unwrap().clone()
    }
}

#[async_trait]
impl OutboxRepo for FakeOutbox {
    async fn enqueue(
        &self,
        _messages: &[NewOutbound],
        _now: Timestamp,
    ) -> Result<Vec<OutboxId>, RepoError> {
        unsupported("enqueue")
    }
    async fn enqueue_once(
        &self,
        message: &NewOutbound,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<OutboxId>, RepoError> {
        let mut q = self.0.lock().unwrap();
        if q.iter().any(|(_, k, _)| k == key) {
            return Ok(None);
        }
        q.push((message.clone(), key.to_owned(), now));
        Ok(Some(OutboxId(q.len() as i64)))
    }
    async fn claim_outbox(
        &self,
        _front: Option<&str>,
        _owner: &str,
        _now: Timestamp,
        _lease: Duration,
        _limit: u32,
    ) -> Result<Vec<OutboxJob>, RepoError> {
        unsupported("claim_outbox")
    }
    async fn complete_outbox(
        &self,
        _id: OutboxId,
        _owner: &str,
        _platform_message_id: Option<&str>,
        _now: Timestamp,
    ) -> Result<bool, RepoError> {
        unsupported("complete_outbox")
    }
    async fn complete_outbox_many(
        &self,
        _done: &[(OutboxId, Option<String>)],
        _owner: &str,
        _now: Timestamp,
    ) -> Result<usize, RepoError> {
        unsupported("complete_outbox_many")
    }
    async fn retry_outbox(
        &self,
        _id: OutboxId,
        _owner: &str,
        _error: &str,
        _now: Timestamp,
        _not_before: Option<Timestamp>,
        _policy: &RetryPolicy,
    ) -> Result<RetryOutcome, RepoError> {
        unsupported("retry_outbox")
    }
    async fn outbox_depth(&self) -> Result<i64, RepoError> {
        unsupported("outbox_depth")
    }
    async fn dead_letters(
        &self,
        _limit: u32,
    ) -> Result<Vec<(OutboxId, Destination, String)>, RepoError> {
        unsupported("dead_letters")
    }
    async fn retry_dead_letter(&self, _id: OutboxId, _now: Timestamp) -> Result<bool, RepoError> {
        unsupported("retry_dead_letter")
    }
    async fn discard_dead_letter(&self, _id: OutboxId) -> Result<bool, RepoError> {
        unsupported("discard_dead_letter")
    }
}
