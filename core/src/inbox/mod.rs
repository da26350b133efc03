//! The To Do inbox: threads the system creates (approvals, escalations, questions, notices),
//! answered by reply, approved or rejected, archived.
//!
//! A thread is the single source of truth; fronts show copies of it. Every change bumps the
//! thread's `version`, so a button pressed on a stale copy can be recognised.

pub mod api;
pub mod demo;
pub mod rules;
pub mod stats;

use crate::actor::{Front, Role, UserName};
use crate::time::Timestamp;
use crate::workspace::WorkspaceSlug;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A thread's short numeric id (`#12`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ThreadId(pub i64);

impl fmt::Display for ThreadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($(#[$vm])* $var),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];

            /// The lowercase name used in commands and storage.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }

            /// Parses the lowercase name (case-insensitive).
            pub fn parse(s: &str) -> Option<Self> {
                let s = s.to_ascii_lowercase();
                match s.as_str() { $($s => Some($name::$var),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
}

str_enum!(
    /// What a thread asks of people.
    ThreadKind {
        /// Something waits for a yes or no.
        Approval = "approval",
        /// Something went wrong or is beyond an agent; a person must look.
        Escalation = "escalation",
        /// An agent or the system asks a question; a reply answers it.
        Question = "question",
        /// For information; nothing to decide.
        Notice = "notice",
    }
);

str_enum!(
    /// Where a thread stands.
    ThreadStatus {
        /// Waiting for people.
        Open = "open",
        /// Approved (approvals only).
        Approved = "approved",
        /// Rejected, with a reason (approvals only).
        Rejected = "rejected",
        /// A reply answered it (questions).
        Answered = "answered",
        /// Put away; can be unarchived.
        Archived = "archived",
        /// Its expiry passed before anyone decided.
        Expired = "expired",
    }
);

str_enum!(
    /// Who created a thread.
    Origin {
        /// An agent run.
        Agent = "agent",
        /// Krake itself (webhooks, sweepers, schedules).
        System = "system",
        /// A person.
        User = "user",
    }
);

str_enum!(
    /// What happens to an approval whose expiry passes undecided.
    TimeoutRoute {
        /// Mark it expired and open an escalation thread for the workspace owner (the default).
        Escalate = "escalate",
        /// Mark it expired and treat it as rejected.
        Reject = "reject",
        /// Mark it expired and do nothing else.
        Expire = "expire",
    }
);

// The enum comes from a macro, so `#[derive(Default)]` is not at hand.
#[allow(clippy::derivable_impls)]
impl Default for TimeoutRoute {
    fn default() -> Self {
        TimeoutRoute::Escalate
    }
}

/// Who must approve an approval thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Approvers {
    /// Any member (or higher) of the workspace; one approval decides.
    #[default]
    AnyMember,
    /// Anyone holding at least this role; one approval decides.
    Role {
        /// The least role that may decide.
        role: Role,
    },
    /// Only these users; one approval decides.
    Users {
        /// The users allowed to decide.
        users: Vec<UserName>,
    },
    /// `n` distinct members must approve; one rejection decides.
    Quorum {
        /// How many distinct approvals are needed.
        n: u32,
    },
}

impl Approvers {
    /// How many distinct approvals close the thread.
    pub fn needed(&self) -> u32 {
        match self {
            Approvers::Quorum { n } => (*n).max(1),
            _ => 1,
        }
    }

    /// Whether `user` with `role` may approve or reject under this rule.
    pub fn allows(&self, user: &UserName, role: Role) -> bool {
        match self {
            Approvers::AnyMember | Approvers::Quorum { .. } => role >= Role::Member,
            Approvers::Role { role: least } => role >= *least,
            Approvers::Users { users } => users.contains(user),
        }
    }

    /// A short description for people (`any member`, `2 approvals`).
    pub fn describe(&self) -> String {
        match self {
            Approvers::AnyMember => "any member".to_owned(),
            Approvers::Role { role } => format!("a {role} or above"),
            Approvers::Users { users } => {
                let names: Vec<&str> = users.iter().map(UserName::as_str).collect();
                format!("one of {}", names.join(", "))
            }
            Approvers::Quorum { n } => format!("{n} approvals"),
        }
    }
}

/// A typed action an approval proposes; approving executes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProposedAction {
    /// Send a message to a customer or a channel.
    SendMessage {
        /// Where (e-mail address, channel name, customer id).
        to: String,
        /// The text to send.
        text: String,
    },
    /// Publish a social or blog post.
    PublishPost {
        /// Where (`instagram`, `blog`, …).
        channel: String,
        /// The post's text.
        text: String,
    },
    /// Change a product's price.
    ChangePrice {
        /// The product (SKU or handle).
        product: String,
        /// New price in minor units (cents).
        price_minor: i64,
        /// ISO 4217 currency.
        currency: String,
    },
    /// Issue a refund for an order.
    Refund {
        /// The order id, kept as text so ids beyond 2^53 stay exact.
        order_id: String,
        /// Amount in minor units.
        amount_minor: i64,
        /// ISO 4217 currency.
        currency: String,
    },
    /// Call a tool of an outside (MCP) tool server whose policy asks for approval.
    CallTool {
        /// The server's name in the config.
        server: String,
        /// The tool's name on that server.
        tool: String,
        /// The exact arguments (a JSON object) the call will carry.
        arguments: serde_json::Value,
    },
}

impl ProposedAction {
    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            ProposedAction::SendMessage { to, text } => format!("send to {to}: {text}"),
            ProposedAction::PublishPost { channel, text } => {
                format!("publish on {channel}: {text}")
            }
            ProposedAction::ChangePrice {
                product,
                price_minor,
                currency,
            } => {
                format!(
                    "set price of {product} to {} {currency}",
                    minor(*price_minor)
                )
            }
            ProposedAction::Refund {
                order_id,
                amount_minor,
                currency,
            } => {
                format!(
                    "refund {} {currency} on order {order_id}",
                    minor(*amount_minor)
                )
            }
            ProposedAction::CallTool {
                server,
                tool,
                arguments,
            } => format!("call {server}/{tool} with {arguments}"),
        }
    }
}

/// An amount in minor units (cents) as a two-decimal figure, `-0.50` for -50.
pub(crate) fn minor(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

/// A reply in a thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadReply {
    /// Who wrote it.
    pub author: UserName,
    /// Through which front.
    pub front: Front,
    /// What they wrote.
    pub text: String,
    /// When.
    pub at: Timestamp,
}

/// An inbox thread with its replies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thread {
    /// Short numeric id.
    pub id: ThreadId,
    /// The workspace it belongs to.
    pub workspace: WorkspaceSlug,
    /// What it asks.
    pub kind: ThreadKind,
    /// Where it stands.
    pub status: ThreadStatus,
    /// Who created it.
    pub origin: Origin,
    /// The agent involved, if any (`Penn`).
    pub agent: Option<String>,
    /// One line.
    pub title: String,
    /// The details.
    pub body: String,
    /// What approving does, if anything.
    pub action: Option<ProposedAction>,
    /// Who may decide.
    pub approvers: Approvers,
    /// When it expires undecided, if ever.
    pub expires_at: Option<Timestamp>,
    /// What an expiry does.
    pub timeout_route: TimeoutRoute,
    /// Who decided, when decided.
    pub decided_by: Option<UserName>,
    /// The rejection reason, when rejected.
    pub reason: Option<String>,
    /// Distinct approvals so far (for quorums).
    pub approvals: Vec<UserName>,
    /// Bumped by every change.
    pub version: i64,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Replies, oldest first.
    pub replies: Vec<ThreadReply>,
}

impl Thread {
    /// Whether approve/reject buttons make sense now.
    pub fn is_decidable(&self) -> bool {
        self.kind == ThreadKind::Approval && self.status == ThreadStatus::Open
    }
}

/// What is needed to create a thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewThread {
    /// The workspace.
    pub workspace: WorkspaceSlug,
    /// The kind.
    pub kind: ThreadKind,
    /// Who creates it.
    pub origin: Origin,
    /// The agent involved, if any.
    pub agent: Option<String>,
    /// One line.
    pub title: String,
    /// Details.
    pub body: String,
    /// What approving does.
    pub action: Option<ProposedAction>,
    /// Who may decide.
    pub approvers: Approvers,
    /// Expiry, if any.
    pub expires_at: Option<Timestamp>,
    /// What an expiry does.
    pub timeout_route: TimeoutRoute,
    /// Where to post the thread when it is created (filled from the workspace's routes).
    pub post_to: Vec<crate::outbox::Destination>,
    /// A unique key for threads opened by automation (`inbound:12:rule:0`): creating a thread
    /// with a key that exists returns the existing thread instead of a second one.
    pub origin_key: Option<String>,
}

impl NewThread {
    /// A thread of `kind` in `workspace` with defaults for everything optional.
    pub fn new(
        workspace: WorkspaceSlug,
        kind: ThreadKind,
        title: impl Into<String>,
        body: impl Into<String>,
    ) -> Self {
        Self {
            workspace,
            kind,
            origin: Origin::System,
            agent: None,
            title: title.into(),
            body: body.into(),
            action: None,
            approvers: Approvers::default(),
            expires_at: None,
            timeout_route: TimeoutRoute::default(),
            post_to: Vec::new(),
            origin_key: None,
        }
    }
}

/// Filters for listing threads. `None` means any.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ThreadFilter {
    /// Only this workspace.
    pub workspace: Option<WorkspaceSlug>,
    /// Only this kind.
    pub kind: Option<ThreadKind>,
    /// Only this status.
    pub status: Option<ThreadStatus>,
    /// Only these workspaces (what the asking user may see); `None` means all.
    pub visible: Option<Vec<WorkspaceSlug>>,
    /// At most this many (newest first); 0 means the default of 50.
    pub limit: u32,
    /// Only ids below this one (paging, newest first).
    pub before: Option<ThreadId>,
}

/// A decision on an approval thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Yes.
    Approve,
    /// No, with an optional reason.
    Reject {
        /// Why.
        reason: Option<String>,
    },
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecisionOutcome {
    /// The thread is now decided.
    Decided(Thread),
    /// The approval counted, more are needed.
    Counted {
        /// The thread after counting.
        thread: Thread,
        /// Approvals still missing.
        missing: u32,
    },
    /// This user already approved; nothing changed.
    AlreadyCounted(Thread),
    /// Refused: the thread was not open (or the button was stale); shows the current state.
    Refused(Thread),
}

/// An entry in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The thread concerned.
    pub thread: ThreadId,
    /// Who.
    pub actor: UserName,
    /// Through which front.
    pub front: Front,
    /// What (`created`, `replied`, `approved`, `rejected`, `archived`, `unarchived`, `expired`, …).
    pub action: String,
    /// Details (a reason, a status change).
    pub detail: String,
    /// When.
    pub at: Timestamp,
}

/// What the expiry sweeper did to one thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// The thread that expired.
    pub thread: ThreadId,
    /// The route it took.
    pub route: TimeoutRoute,
    /// The escalation opened for it, if the route escalates.
    pub escalation: Option<ThreadId>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip() {
        for k in ThreadKind::ALL {
            assert_eq!(ThreadKind::parse(k.as_str()), Some(*k));
        }
        for s in ThreadStatus::ALL {
            assert_eq!(ThreadStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(ThreadStatus::parse("OPEN"), Some(ThreadStatus::Open));
        assert_eq!(ThreadKind::parse("nonsense"), None);
    }

    #[test]
    fn approver_rules() {
        let ana = UserName::parse("ana").unwrap();
        let bo = UserName::parse("bo").unwrap();
        assert!(Approvers::AnyMember.allows(&ana, Role::Member));
        assert!(!Approvers::AnyMember.allows(&ana, Role::Viewer));
        assert!(Approvers::Role { role: Role::Admin }.allows(&ana, Role::Owner));
        assert!(!Approvers::Role { role: Role::Admin }.allows(&ana, Role::Member));
        let only_ana = Approvers::Users {
            users: vec![ana.clone()],
        };
        assert!(only_ana.allows(&ana, Role::Viewer));
        assert!(!only_ana.allows(&bo, Role::Owner));
        assert_eq!(Approvers::Quorum { n: 3 }.needed(), 3);
        assert_eq!(Approvers::Quorum { n: 0 }.needed(), 1);
    }

    #[test]
    fn actions_describe_money_exactly() {
        let a = ProposedAction::Refund {
            order_id: "820982911946154508".into(),
            amount_minor: 1999,
            currency: "EUR".into(),
        };
        assert_eq!(a.describe(), "refund 19.99 EUR on order 820982911946154508");
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<ProposedAction>(&json).unwrap(), a);
    }
}
