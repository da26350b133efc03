//! The live hub: every connected (or briefly disconnected) web chat session has a log of
//! server messages, each with the session's next sequence number. A change to an inbox thread
//! is appended to the log of every session that may see it; a session's socket task sends
//! what its client has not seen. After a dropped connection the client says the last number
//! it saw and gets exactly the messages after it: nothing lost, nothing twice.
//!
//! A log keeps at most [`LOG_CAP`] unsent-or-unacknowledged messages; a client that fell
//! further behind is told to reload (`reset`). Sessions without a socket are forgotten after
//! [`DETACHED_TTL`].
//!
//! A session keeps the credential it was opened (or last resumed) with and the rights that
//! credential had when last checked; the socket task checks it again (see `crate::ws`), and a
//! sign-out closes the sessions of its credential at once ([`Hub::close_credential`]).

use crate::auth::Credential;
use krake_core::Actor;
use krake_core::inbox::Thread;
use krake_core::workspace::WorkspaceSlug;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Messages kept per session for resuming.
pub const LOG_CAP: usize = 512;

/// How long a session without a socket may still be resumed.
pub const DETACHED_TTL: Duration = Duration::from_secs(120);

/// A thread as pushed to web clients (the fields a list row needs).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ThreadEvent {
    /// Thread id.
    pub id: i64,
    /// Workspace slug.
    pub workspace: String,
    /// Kind.
    pub kind: String,
    /// Status.
    pub status: String,
    /// Title (plain text: clients must render it as text).
    pub title: String,
    /// Version.
    pub version: i64,
    /// Who decided, if decided.
    pub decided_by: Option<String>,
    /// Whether Approve/Reject make sense now.
    pub decidable: bool,
}

impl From<&Thread> for ThreadEvent {
    fn from(t: &Thread) -> Self {
        Self {
            id: t.id.0,
            workspace: t.workspace.to_string(),
            kind: t.kind.to_string(),
            status: t.status.to_string(),
            title: t.title.clone(),
            version: t.version,
            decided_by: t.decided_by.as_ref().map(ToString::to_string),
            decidable: t.is_decidable(),
        }
    }
}

#[derive(Debug, Default)]
struct LogState {
    next_seq: u64,
    /// (seq, full JSON text), oldest first.
    buf: VecDeque<(u64, Arc<str>)>,
    /// The highest sequence number handed to a socket.
    sent: u64,
    /// Messages below this were dropped from the buffer unsent or unacknowledged.
    lost_below: u64,
    /// Which socket task owns the session now (a resume takes it over).
    epoch: u64,
    detached_at: Option<Instant>,
    /// Closed for good (signed out): the socket must stop and the session cannot be resumed.
    closed: bool,
}

/// Who a session acts as, and with what they proved it.
#[derive(Debug, Clone)]
struct Auth {
    actor: Actor,
    credential: Credential,
}

/// One web chat session's message log.
#[derive(Debug)]
pub struct Session {
    /// The session id the client resumes with.
    pub id: String,
    /// Who is signed in, and how.
    auth: Mutex<Auth>,
    /// The workspace the widget is for (`data-workspace`), if any: only its threads are pushed.
    pub workspace: Option<WorkspaceSlug>,
    state: Mutex<LogState>,
    /// Woken when a message is appended.
    pub notify: Notify,
    /// Messages and presses this session may still send (a flood is refused, not stored).
    messages: governor::DefaultDirectRateLimiter,
}

/// Messages and presses one web chat session may send: `SOCKET_BURST` at once, then
/// `SOCKET_MESSAGES_PER_MINUTE` a minute. A person never types that fast; a script flooding the
/// socket gets `rate_limited` errors and nothing it sent beyond the limit is stored.
pub const SOCKET_MESSAGES_PER_MINUTE: u32 = 120;
/// See [`SOCKET_MESSAGES_PER_MINUTE`].
pub const SOCKET_BURST: u32 = 20;

fn socket_quota() -> governor::Quota {
    let per_minute =
        std::num::NonZeroU32::new(SOCKET_MESSAGES_PER_MINUTE).unwrap_or(std::num::NonZeroU32::MIN);
    let burst = std::num::NonZeroU32::new(SOCKET_BURST).unwrap_or(std::num::NonZeroU32::MIN);
    governor::Quota::per_minute(per_minute).allow_burst(burst)
}

impl Session {
    /// Whether this session may send one more message or press now (it counts it).
    pub fn allow_message(&self) -> bool {
        self.messages.check().is_ok()
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A poisoned lock only means a panic elsewhere while holding it; the data is still
        // a consistent log (every mutation is a single step), so go on with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn auth(&self) -> MutexGuard<'_, Auth> {
        // Poisoning: as in `lock`, every change is one assignment.
        self.auth.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Who the session acts as, with their rights as last checked.
    pub fn actor(&self) -> Actor {
        self.auth().actor.clone()
    }

    /// The credential the session was opened or last resumed with.
    pub fn credential(&self) -> Credential {
        self.auth().credential.clone()
    }

    /// Replaces who the session acts as (a resume with a fresh credential, or rights looked
    /// up again). The user stays the same: a session never changes hands.
    pub fn reauthorize(&self, actor: Actor, credential: Credential) {
        let mut a = self.auth();
        if a.actor.user == actor.user {
            *a = Auth { actor, credential };
        }
    }

    /// Ends the session for good: its socket stops and it cannot be resumed.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
    }

    /// Whether the session was closed.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Appends a message `{"seq":N,<body>}` where `body` is a JSON object's inside (without
    /// braces); returns its sequence number.
    pub fn push(&self, body: &str) -> u64 {
        let seq = {
            let mut s = self.lock();
            s.next_seq += 1;
            let seq = s.next_seq;
            let text: Arc<str> = Arc::from(format!("{{\"seq\":{seq},{body}}}"));
            s.buf.push_back((seq, text));
            while s.buf.len() > LOG_CAP {
                if let Some((old, _)) = s.buf.pop_front() {
                    s.lost_below = old + 1;
                }
            }
            seq
        };
        self.notify.notify_one();
        seq
    }

    /// Appends a typed message (serialized with a `type` tag).
    pub fn push_json(&self, kind: &str, fields: serde_json::Value) -> u64 {
        let mut obj = serde_json::Map::new();
        obj.insert("type".into(), serde_json::Value::String(kind.into()));
        if let serde_json::Value::Object(m) = fields {
            obj.extend(m);
        }
        let text = serde_json::Value::Object(obj).to_string();
        self.push(&text[1..text.len() - 1])
    }

    /// Whether messages wait to be handed to the socket.
    pub fn has_unsent(&self) -> bool {
        let s = self.lock();
        s.next_seq > s.sent
    }

    /// The messages after the last one handed to the socket of `epoch`, marking them sent.
    /// `None` when another socket took the session over (this one must stop).
    pub fn take_unsent(&self, epoch: u64) -> Option<Vec<Arc<str>>> {
        let mut s = self.lock();
        if s.epoch != epoch {
            return None;
        }
        let sent = s.sent;
        let out: Vec<Arc<str>> = s
            .buf
            .iter()
            .filter(|(seq, _)| *seq > sent)
            .map(|(_, t)| t.clone())
            .collect();
        s.sent = s.next_seq;
        Some(out)
    }

    /// A socket attaches, its client having seen everything up to `last` (0: nothing). Returns
    /// the new epoch and whether messages after `last` were lost (the client must reload).
    pub fn attach(&self, last: u64) -> (u64, bool) {
        let mut s = self.lock();
        s.epoch += 1;
        s.detached_at = None;
        // What the client has seen needs no keeping; what it has not will be sent again.
        while s.buf.front().is_some_and(|(seq, _)| *seq <= last) {
            s.buf.pop_front();
        }
        let last = last.min(s.next_seq);
        let lost = s.lost_below > last + 1;
        s.sent = last;
        (s.epoch, lost)
    }

    /// The client received everything up to `seq`: those messages need no keeping.
    pub fn ack(&self, seq: u64) {
        let mut s = self.lock();
        let upto = seq.min(s.sent);
        while s.buf.front().is_some_and(|(q, _)| *q <= upto) {
            s.buf.pop_front();
        }
    }

    /// The socket of `epoch` went away; the session stays resumable for a while.
    pub fn detach(&self, epoch: u64) {
        let mut s = self.lock();
        if s.epoch == epoch {
            s.detached_at = Some(Instant::now());
        }
    }

    fn expired(&self) -> bool {
        let s = self.lock();
        s.closed || s.detached_at.is_some_and(|at| at.elapsed() > DETACHED_TTL)
    }

    fn wants(&self, t: &Thread) -> bool {
        self.auth().actor.can_see(&t.workspace)
            && self.workspace.as_ref().is_none_or(|w| *w == t.workspace)
    }
}

#[derive(Debug, Default)]
struct HubState {
    sessions: HashMap<String, Arc<Session>>,
    /// The newest version pushed per thread: a change arriving twice (from this process and
    /// through the outbox) is pushed once.
    versions: HashMap<i64, i64>,
}

/// All sessions of this process.
#[derive(Debug, Default)]
pub struct Hub {
    state: Mutex<HubState>,
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session for `actor`, who proved it with `credential`.
    pub fn open(
        &self,
        actor: Actor,
        credential: Credential,
        workspace: Option<WorkspaceSlug>,
    ) -> Arc<Session> {
        let session = Arc::new(Session {
            id: crate::auth::random_token()[..24].to_owned(),
            auth: Mutex::new(Auth { actor, credential }),
            workspace,
            state: Mutex::new(LogState::default()),
            notify: Notify::new(),
            messages: governor::RateLimiter::direct(socket_quota()),
        });
        let mut h = self.lock();
        h.sessions.retain(|_, s| !s.expired());
        h.sessions.insert(session.id.clone(), session.clone());
        session
    }

    /// The session `id` if it exists and belongs to `user`.
    pub fn resume(&self, id: &str, user: &krake_core::UserName) -> Option<Arc<Session>> {
        let h = self.lock();
        h.sessions
            .get(id)
            .filter(|s| s.auth().actor.user == *user && !s.expired())
            .cloned()
    }

    /// Closes every session opened or resumed with `credential` (a sign-out) and forgets
    /// them; returns how many.
    pub fn close_credential(&self, credential: &Credential) -> usize {
        let closed: Vec<Arc<Session>> = {
            let mut h = self.lock();
            let ids: Vec<String> = h
                .sessions
                .iter()
                .filter(|(_, s)| s.auth().credential == *credential)
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| h.sessions.remove(id)).collect()
        };
        for s in &closed {
            s.close();
        }
        closed.len()
    }

    /// The live session `id`, if there is one.
    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        self.lock()
            .sessions
            .get(id)
            .filter(|s| !s.expired())
            .cloned()
    }

    /// Forgets a session (closed after its rights ended).
    pub fn remove(&self, id: &str) {
        self.lock().sessions.remove(id);
    }

    /// Sessions held (attached or resumable).
    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pushes a thread's state to every session that may see it, unless this version (or a
    /// newer one) was pushed before. Returns how many sessions it went to.
    pub fn publish(&self, t: &Thread) -> usize {
        let targets: Vec<Arc<Session>> = {
            let mut h = self.lock();
            let newest = h.versions.entry(t.id.0).or_insert(i64::MIN);
            if *newest >= t.version {
                return 0;
            }
            *newest = t.version;
            h.sessions
                .values()
                .filter(|s| s.wants(t))
                .cloned()
                .collect()
        };
        let body =
            serde_json::json!({ "type": "thread", "thread": ThreadEvent::from(t) }).to_string();
        let inner = &body[1..body.len() - 1];
        for s in &targets {
            s.push(inner);
        }
        targets.len()
    }
}

/// The web front's outbox sender: a thread posted or edited for destination `web:<workspace>`
/// is pushed to the live sessions of this process (the "message id" of a web copy is the
/// thread id). An agent's answer for `web:session:<id>` goes to that session: `typing`, then
/// `answer` frames as it is produced (the first with the text so far, then only what was
/// added, so a long answer costs no more than its length), and the final text (`final: true`).
/// A session that is gone gets nothing (the answer is in the inbox too). Chat replies are
/// never queued for the web: a session gets its replies directly.
pub struct WebSender {
    hub: std::sync::Arc<Hub>,
    /// What each streamed answer shows so far, by its id (bounded; ended answers leave).
    shown: Mutex<HashMap<String, String>>,
}

/// Streamed answers remembered at most (older ones are forgotten and resent whole).
const MAX_STREAMS: usize = 1024;

impl WebSender {
    /// A sender pushing to `hub`.
    pub fn new(hub: std::sync::Arc<Hub>) -> Self {
        Self {
            hub,
            shown: Mutex::new(HashMap::new()),
        }
    }

    /// The `answer` frame bringing message `id` from what it showed to `text`.
    fn frame(
        &self,
        id: &str,
        text: &str,
        fin: bool,
        tone: Option<krake_core::reply::Tone>,
    ) -> serde_json::Value {
        let mut shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
        let before = if fin {
            shown.remove(id)
        } else {
            shown.get(id).cloned()
        };
        if !fin {
            if shown.len() >= MAX_STREAMS && !shown.contains_key(id) {
                shown.clear();
            }
            shown.insert(id.to_owned(), text.to_owned());
        }
        match before.as_deref().and_then(|b| text.strip_prefix(b)) {
            Some(added) if !fin => serde_json::json!({"id": id, "append": added}),
            _ => serde_json::json!({"id": id, "text": text, "final": fin, "tone": tone}),
        }
    }
}

/// The destination of a workspace's web sessions (`web:lunavo`).
pub fn destination(workspace: &WorkspaceSlug) -> Option<krake_core::outbox::Destination> {
    krake_core::outbox::Destination::parse(&format!("web:{workspace}")).ok()
}

/// The session of a `web:session:<id>` destination.
fn session_of(d: &krake_core::outbox::Destination) -> Option<&str> {
    d.as_str().strip_prefix("web:session:")
}

/// A new streamed answer's id in this process.
fn answer_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    format!(
        "a{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

#[async_trait::async_trait]
impl krake_core::delivery::Sender for WebSender {
    fn front(&self) -> &str {
        "web"
    }

    /// A web socket takes every change: frames go out as tokens arrive.
    fn stream_interval(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    async fn send(
        &self,
        destination: &krake_core::outbox::Destination,
        delivery: &krake_core::delivery::Delivery,
    ) -> Result<krake_core::delivery::Sent, krake_core::delivery::SendError> {
        use krake_core::delivery::{Delivery, Sent};
        if let Some(sid) = session_of(destination) {
            let session = self.hub.session(sid);
            let push = |fields: serde_json::Value, kind: &str| {
                if let Some(s) = &session {
                    s.push_json(kind, fields);
                }
            };
            return Ok(match delivery {
                Delivery::Typing => {
                    push(serde_json::json!({}), "typing");
                    Sent { message_id: None }
                }
                Delivery::Stream { message_id, text } => {
                    let id = message_id.clone().unwrap_or_else(answer_id);
                    push(self.frame(&id, text, false, None), "answer");
                    Sent {
                        message_id: Some(id),
                    }
                }
                Delivery::Replace { message_id, reply } => {
                    push(
                        self.frame(message_id, &reply.text, true, Some(reply.tone)),
                        "answer",
                    );
                    Sent {
                        message_id: Some(message_id.clone()),
                    }
                }
                Delivery::Send { reply } => {
                    let id = answer_id();
                    push(
                        self.frame(&id, &reply.text, true, Some(reply.tone)),
                        "answer",
                    );
                    Sent {
                        message_id: Some(id),
                    }
                }
                Delivery::Post { .. } | Delivery::Edit { .. } => Sent { message_id: None },
            });
        }
        Ok(match delivery {
            Delivery::Post { thread } => {
                self.hub.publish(thread);
                Sent {
                    message_id: Some(thread.id.0.to_string()),
                }
            }
            Delivery::Edit { thread, message_id } => {
                self.hub.publish(thread);
                Sent {
                    message_id: Some(message_id.clone()),
                }
            }
            _ => Sent { message_id: None },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use krake_core::actor::{Front, Role, UserName};
    use krake_core::inbox::{ThreadKind, ThreadStatus};

    fn thread(id: i64, ws: &str, version: i64) -> Thread {
        let mut t = Thread {
            id: krake_core::inbox::ThreadId(id),
            workspace: WorkspaceSlug::parse(ws).unwrap(),
            kind: ThreadKind::Approval,
            status: ThreadStatus::Open,
            origin: krake_core::inbox::Origin::System,
            agent: None,
            title: "t".into(),
            body: String::new(),
            action: None,
            approvers: Default::default(),
            expires_at: None,
            timeout_route: Default::default(),
            decided_by: None,
            reason: None,
            approvals: vec![],
            version,
            created_at: krake_core::time::Timestamp::from_millis(0),
            updated_at: krake_core::time::Timestamp::from_millis(0),
            replies: vec![],
        };
        t.version = version;
        t
    }

    fn cred() -> Credential {
        Credential::Token("t".into())
    }

    fn member_of(ws: &str) -> Actor {
        let mut a = Actor::new(UserName::parse("bo").unwrap(), Front::Web, Role::Guest);
        a.workspace_roles
            .insert(WorkspaceSlug::parse(ws).unwrap(), Role::Member);
        a
    }

    #[test]
    fn pushes_only_to_sessions_that_may_see_and_once_per_version() {
        let hub = Hub::new();
        let lunavo = hub.open(member_of("lunavo"), cred(), None);
        let monarch = hub.open(member_of("monarch"), cred(), None);
        assert_eq!(hub.publish(&thread(1, "lunavo", 1)), 1);
        assert_eq!(
            hub.publish(&thread(1, "lunavo", 1)),
            0,
            "same version twice"
        );
        assert_eq!(hub.publish(&thread(1, "lunavo", 0)), 0, "older version");
        let (e, _) = lunavo.attach(0);
        let got = lunavo.take_unsent(e).unwrap();
        assert_eq!(got.len(), 1);
        assert!(got[0].starts_with("{\"seq\":1,"), "{}", got[0]);
        assert!(got[0].contains("\"type\":\"thread\""), "{}", got[0]);
        let (e2, _) = monarch.attach(0);
        assert!(monarch.take_unsent(e2).unwrap().is_empty());
    }

    #[test]
    fn resume_after_a_drop_sends_exactly_what_was_missed() {
        let hub = Hub::new();
        let s = hub.open(member_of("lunavo"), cred(), None);
        let (e1, _) = s.attach(0);
        for v in 1..=3 {
            hub.publish(&thread(1, "lunavo", v));
        }
        let first = s.take_unsent(e1).unwrap();
        assert_eq!(first.len(), 3);
        // The client saw only seq 1 and 2 before the socket dropped; 3 and 4 come later.
        s.detach(e1);
        hub.publish(&thread(1, "lunavo", 4));
        let (e2, lost) = s.attach(2);
        assert!(!lost);
        assert_eq!(s.take_unsent(e1), None, "the old socket must stop");
        let again = s.take_unsent(e2).unwrap();
        let seqs: Vec<&str> = again.iter().map(|m| &m[..9]).collect();
        assert_eq!(seqs, ["{\"seq\":3,", "{\"seq\":4,"]);
        assert!(s.take_unsent(e2).unwrap().is_empty());
    }

    #[test]
    fn a_client_too_far_behind_is_told_to_reload() {
        let hub = Hub::new();
        let s = hub.open(member_of("lunavo"), cred(), None);
        for v in 1..=(LOG_CAP as i64 + 10) {
            hub.publish(&thread(1, "lunavo", v));
        }
        let (_, lost) = s.attach(0);
        assert!(lost);
    }

    #[test]
    fn widget_sessions_for_one_workspace_get_only_its_threads() {
        let hub = Hub::new();
        let mut both = member_of("lunavo");
        both.workspace_roles
            .insert(WorkspaceSlug::parse("monarch").unwrap(), Role::Member);
        let s = hub.open(both, cred(), Some(WorkspaceSlug::parse("monarch").unwrap()));
        assert_eq!(hub.publish(&thread(1, "lunavo", 1)), 0);
        assert_eq!(hub.publish(&thread(2, "monarch", 1)), 1);
        assert!(hub.resume(&s.id, &UserName::parse("bo").unwrap()).is_some());
        assert!(
            hub.resume(&s.id, &UserName::parse("eve").unwrap())
                .is_none()
        );
    }

    #[test]
    fn closing_a_credential_ends_its_sessions_only() {
        let hub = Hub::new();
        let signed_out = hub.open(member_of("lunavo"), Credential::Session("a".into()), None);
        let other = hub.open(member_of("lunavo"), Credential::Session("b".into()), None);
        assert_eq!(hub.close_credential(&Credential::Session("a".into())), 1);
        assert!(signed_out.is_closed() && !other.is_closed());
        let bo = UserName::parse("bo").unwrap();
        assert!(hub.resume(&signed_out.id, &bo).is_none());
        assert!(hub.resume(&other.id, &bo).is_some());
        assert_eq!(hub.publish(&thread(1, "lunavo", 1)), 1, "only the open one");
    }
}
