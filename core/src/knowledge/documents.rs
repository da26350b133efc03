//! Which documents Krake's own records become: an inbox thread (its body, status, decision and
//! replies), an agent folder (its entries, in each workspace of its agent) and a finished agent
//! run (its task and result, as long-term memory).

use super::Document;
use crate::config::Directory;
use crate::folder::{Entry, Folder};
use crate::inbox::{Origin, Thread};
use crate::run::{Run, RunStatus};

/// The source kind of files ingested with `krake ingest`.
pub const FILE: &str = "file";
/// The source kind of inbox threads.
pub const THREAD: &str = "thread";
/// The source kind of agent folders.
pub const FOLDER: &str = "folder";
/// The source kind of finished agent runs.
pub const AGENT_RESULT: &str = "agent_result";

/// A thread (with its replies) as a document of its workspace (source `thread #ID`). `None` for
/// a task someone filed that nobody has answered or decided yet: it holds only the question,
/// and as knowledge it would only echo the next asker.
pub fn thread_document(thread: &Thread) -> Option<Document> {
    if thread.origin == Origin::User && thread.replies.is_empty() && thread.decided_by.is_none() {
        return None;
    }
    let mut text = format!("{}\n\nStatus: {}", thread.body, thread.status);
    if let Some(by) = &thread.decided_by {
        text.push_str(&format!(", decided by {by}"));
    }
    if let Some(reason) = &thread.reason {
        text.push_str(&format!(" (reason: {reason})"));
    }
    for r in &thread.replies {
        text.push_str(&format!("\n\n{}: {}", r.author, r.text));
    }
    Some(Document {
        workspace: thread.workspace.to_string(),
        source_kind: THREAD.to_owned(),
        source: format!("thread {}", thread.id),
        title: thread.title.clone(),
        text,
        time: thread.updated_at.as_millis() / 1000,
    })
}

/// A folder's entries as documents (source `AGENT/FOLDER`), one in each workspace its agent
/// works in (none when the agent is no longer configured). Each entry is a block of
/// `column: value` lines (blank values left out).
pub fn folder_documents(
    folder: &Folder,
    entries: &[Entry],
    directory: &Directory,
) -> Vec<Document> {
    let names: std::collections::BTreeMap<_, _> = folder
        .columns
        .iter()
        .map(|c| (c.id, c.name.to_string()))
        .collect();
    let text = entries
        .iter()
        .map(|e| {
            e.values
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(c, v)| format!("{}: {v}", names.get(c).map_or("?", String::as_str)))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    let workspaces = directory
        .agent(&folder.agent)
        .map(|a| a.workspaces.clone())
        .unwrap_or_default();
    workspaces
        .into_iter()
        .map(|ws| Document {
            workspace: ws.to_string(),
            source_kind: FOLDER.to_owned(),
            source: format!("{}/{}", folder.agent, folder.name),
            title: format!("{}'s folder {}", folder.agent, folder.name),
            text: text.clone(),
            time: 0,
        })
        .collect()
}

/// A finished run as a document of its workspace (source kind `agent_result`, source
/// `run #ID`): the task and the result. `None` unless the run is done and has a result.
pub fn run_document(run: &Run) -> Option<Document> {
    if run.status != RunStatus::Done {
        return None;
    }
    let result = run
        .result
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())?;
    let task: String = run.task.chars().take(80).collect();
    Some(Document {
        workspace: run.workspace.to_string(),
        source_kind: AGENT_RESULT.to_owned(),
        source: format!("run #{}", run.id.0),
        title: format!("{}: {task}", run.agent),
        text: format!("Task: {}\n\nResult ({}): {result}", run.task, run.agent),
        time: run.updated_at.as_millis() / 1000,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::actor::{Front, UserName};
    use crate::folder::{Column, ColumnId, ColumnKind, EntryId, FolderId, Name};
    use crate::inbox::{ThreadId, ThreadKind, ThreadReply, ThreadStatus};
    use crate::run::RunId;
    use crate::time::Timestamp;
    use crate::workspace::WorkspaceSlug;

    /// A thread of `workspace` as the store would hold it.
    pub(crate) fn thread(id: i64, workspace: &str, origin: Origin, body: &str) -> Thread {
        Thread {
            id: ThreadId(id),
            workspace: WorkspaceSlug::parse(workspace).expect("slug"),
            kind: ThreadKind::Question,
            status: ThreadStatus::Open,
            origin,
            agent: None,
            title: format!("Thread {id}"),
            body: body.to_owned(),
            action: None,
            approvers: Default::default(),
            expires_at: None,
            timeout_route: Default::default(),
            decided_by: None,
            reason: None,
            approvals: Vec::new(),
            version: 1,
            created_at: Timestamp::from_millis(1_000),
            updated_at: Timestamp::from_millis(42_000),
            replies: Vec::new(),
        }
    }

    pub(crate) fn reply(author: &str, text: &str) -> ThreadReply {
        ThreadReply {
            author: UserName::parse(author).expect("name"),
            front: Front::Cli,
            text: text.to_owned(),
            at: Timestamp::from_millis(2_000),
        }
    }

    pub(crate) fn folder(id: i64, agent: &str, name: &str, columns: &[&str]) -> Folder {
        Folder {
            id: FolderId(id),
            agent: agent.to_owned(),
            name: Name::parse(name).expect("name"),
            columns: columns
                .iter()
                .enumerate()
                .map(|(i, c)| Column {
                    id: ColumnId(i as i64 + 1),
                    name: Name::parse(c).expect("name"),
                    kind: ColumnKind::Text,
                })
                .collect(),
            entries: 0,
        }
    }

    pub(crate) fn entry(id: i64, values: &[(i64, &str)]) -> Entry {
        Entry {
            id: EntryId(id),
            values: values
                .iter()
                .map(|(c, v)| (ColumnId(*c), (*v).to_owned()))
                .collect(),
        }
    }

    pub(crate) fn run(id: i64, status: RunStatus, result: Option<&str>) -> Run {
        Run {
            id: RunId(id),
            workspace: WorkspaceSlug::parse("lunavo").expect("slug"),
            agent: "Cassie".to_owned(),
            task: "find why order 1042 is late".to_owned(),
            trigger: "command".to_owned(),
            requested_by: "ana".to_owned(),
            status,
            steps: Vec::new(),
            result: result.map(str::to_owned),
            error: None,
            attempts: 1,
            thread: None,
            parent: None,
            feedback: None,
            answer_to: None,
            stream_message: None,
            created_at: Timestamp::from_millis(1_000),
            updated_at: Timestamp::from_millis(7_000),
        }
    }

    #[test]
    fn a_thread_document_holds_body_status_decision_and_replies() {
        let mut t = thread(12, "lunavo", Origin::System, "Which courier for Porto?");
        t.status = ThreadStatus::Rejected;
        t.decided_by = Some(UserName::parse("ana").expect("name"));
        t.reason = Some("too slow".into());
        t.replies = vec![reply("ana", "DHL delivers to Porto")];
        let d = thread_document(&t).expect("document");
        assert_eq!(d.workspace, "lunavo");
        assert_eq!(d.source_kind, "thread");
        assert_eq!(d.source, "thread #12");
        assert_eq!(d.title, "Thread 12");
        assert_eq!(d.time, 42);
        assert_eq!(
            d.text,
            "Which courier for Porto?\n\nStatus: rejected, decided by ana (reason: too slow)\n\n\
             ana: DHL delivers to Porto"
        );
    }

    #[test]
    fn a_filed_task_nobody_answered_is_not_knowledge_yet() {
        let mut t = thread(3, "lunavo", Origin::User, "how long do refunds take?");
        assert_eq!(thread_document(&t), None);
        t.replies.push(reply("ana", "30 days"));
        assert!(thread_document(&t).is_some(), "answered: it is");
        let agent = thread(4, "lunavo", Origin::Agent, "Late parcel");
        assert!(thread_document(&agent).is_some(), "an agent's thread is");
    }

    #[test]
    fn a_folder_becomes_one_document_per_workspace_of_its_agent() {
        let directory = Directory::default();
        let f = folder(1, "Soshie", "suppliers", &["name", "note"]);
        let entries = [
            entry(1, &[(1, "Lumiprint"), (2, "Glow ink")]),
            entry(2, &[(1, "Inkwell"), (2, "")]),
        ];
        let docs = folder_documents(&f, &entries, &directory);
        let workspaces: Vec<&str> = docs.iter().map(|d| d.workspace.as_str()).collect();
        assert_eq!(workspaces, ["lunavo", "hard-life-mode", "lunabots"]);
        for d in &docs {
            assert_eq!(d.source_kind, "folder");
            assert_eq!(d.source, "Soshie/suppliers");
            assert_eq!(d.title, "Soshie's folder suppliers");
            assert_eq!(d.text, "name: Lumiprint\nnote: Glow ink\n\nname: Inkwell");
        }
        let gone = folder(2, "Nobody", "x", &["a"]);
        assert!(folder_documents(&gone, &entries, &directory).is_empty());
    }

    #[test]
    fn only_a_done_run_with_a_result_is_remembered() {
        let d = run_document(&run(7, RunStatus::Done, Some(" Gelato is late. "))).expect("done");
        assert_eq!(d.source_kind, "agent_result");
        assert_eq!(d.source, "run #7");
        assert_eq!(d.title, "Cassie: find why order 1042 is late");
        assert_eq!(
            d.text,
            "Task: find why order 1042 is late\n\nResult (Cassie): Gelato is late."
        );
        assert_eq!(d.time, 7);
        assert_eq!(run_document(&run(8, RunStatus::Done, Some("  "))), None);
        assert_eq!(run_document(&run(9, RunStatus::Done, None)), None);
        assert_eq!(
            run_document(&run(10, RunStatus::Failed, Some("unreachable"))),
            None
        );
        let mut long = run(11, RunStatus::Done, Some("ok"));
        long.task = "x".repeat(200);
        let d = run_document(&long).expect("done");
        assert_eq!(d.title, format!("Cassie: {}", "x".repeat(80)));
    }
}
