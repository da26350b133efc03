//! Chat text: how outcomes, refusals and errors read as a [`Reply`] on every chat front (the
//! one place that words them; the HTTP API words the same refusals in
//! [`inbox::api`](crate::inbox::api)).

use crate::actor::{Actor, Role};
use crate::chat::command::{COMMANDS, ListQuery, Parsed, StatusFilter, spec};
use crate::config::Directory;
use crate::inbox::rules::Refusal;
use crate::inbox::{Thread, ThreadId, ThreadKind, ThreadStatus};
use crate::ports::RepoError;
use crate::reply::{Block, Button, ButtonAction, ButtonPayload, Reply, ThreadCard, Tone};
use crate::text::capitalise;
use std::fmt::Write as _;

pub(crate) fn not_linked() -> Reply {
    Reply::warning(
        "You are not linked to a Krake user yet, so you can chat but not act on threads. Ask a workspace owner for a code (`krake user link-code NAME`) and send /link CODE here.",
    )
}

/// A refused inbox change, as chat text; `what` is what the actor tried ("reply", "decide",
/// "archive them").
pub(crate) fn chat_refusal(actor: &Actor, id: ThreadId, r: &Refusal, what: &str) -> Reply {
    match r {
        // A thread of a workspace the actor cannot see does not exist for them.
        Refusal::NotFound | Refusal::Hidden(_) => no_thread(id),
        Refusal::NotLinked => not_linked(),
        Refusal::RoleTooLow {
            role: Role::Guest, ..
        } => no_thread(id),
        Refusal::RoleTooLow { .. } => Reply::warning(format!(
            "Viewers can read threads but not {what}. Ask a workspace admin for the member role."
        )),
        Refusal::NotApproval(th) => Reply::warning(format!(
            "#{} is {} {}, not an approval: there is nothing to approve or reject. Reply to it with /reply {} <text>, or archive it.",
            id.0,
            article(th.kind.as_str()),
            th.kind,
            id.0
        )),
        Refusal::NotApprover(th) => Reply::warning(format!(
            "You cannot decide #{}: it needs {}.",
            id.0,
            th.approvers.describe()
        )),
        Refusal::EmptyReply => {
            let _ = actor;
            Reply::warning(format!("A reply needs some text: /reply {} <text>.", id.0))
        }
    }
}

pub(crate) fn link_hint(actor: &Actor) -> &'static str {
    if actor.unlinked {
        " If you have a Krake account, link it: ask an owner for a code and send /link CODE."
    } else {
        ""
    }
}

pub(crate) fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

pub(crate) fn no_thread(id: ThreadId) -> Reply {
    Reply::warning(format!("no thread #{}. See what is open with /todo.", id.0))
}

pub(crate) fn refusal(th: &Thread, version: Option<i64>) -> String {
    let by = th
        .decided_by
        .as_ref()
        .map(|u| format!(" by {u}"))
        .unwrap_or_default();
    match th.status {
        ThreadStatus::Open if version.is_some() => {
            format!(
                "This button is out of date: #{} changed since it was shown. Look again with /show {}.",
                th.id.0, th.id.0
            )
        }
        ThreadStatus::Approved | ThreadStatus::Rejected => {
            format!(
                "#{} was already {}{by}; nothing changed.",
                th.id.0, th.status
            )
        }
        s => format!(
            "#{} is {s}; it can no longer be decided. Nothing changed.",
            th.id.0
        ),
    }
}

pub(crate) fn failure(e: &RepoError) -> Reply {
    tracing::error!(error = %e, "command failed");
    Reply::error(
        "Something went wrong on my side and nothing was changed. Please try again in a moment; if it keeps failing, check `krake serve`'s log.",
    )
}

/// What text the grammar did not understand gets as a reply (the problem, and a suggestion).
pub fn render_unparsed(p: Parsed) -> Reply {
    match p {
        Parsed::Empty => Reply::info("Say something, or /help to see what I understand."),
        Parsed::NotUnderstood {
            problem,
            suggestion,
        } => {
            let mut t = capitalise(&problem);
            t.push('.');
            if let Some(s) = suggestion {
                if s == "/help" {
                    t.push_str(" Type /help to see what I understand.");
                } else {
                    let _ = write!(t, " Did you mean `{s}`?");
                }
            }
            Reply::warning(t)
        }
        Parsed::Command(_) => Reply::info(""),
    }
}

pub(crate) fn help(topic: Option<&str>) -> Reply {
    if let Some(name) = topic {
        return match spec(name) {
            Some(s) => Reply::info(format!(
                "/{} {}\n{}\nExample: {}",
                s.name, s.args, s.about, s.example
            )),
            None => Reply::warning(format!(
                "There is no command `{name}`. Type /help for the list."
            )),
        };
    }
    let mut t = String::from("I keep your To Do inbox and pass tasks to your agents. Commands:\n");
    for s in COMMANDS {
        let usage = if s.args.is_empty() {
            format!("/{}", s.name)
        } else {
            format!("/{} {}", s.name, s.args)
        };
        let _ = writeln!(t, "  {usage:<40} {}", s.about);
    }
    t.push_str("You can also just write: \"what's open in lunavo?\", \"approve 12\", \"ask penn to draft a tagline\", \"every weekday at 8 have soshie draft today's post\".");
    Reply::info(t)
}

/// "open threads in Lunavo", "rejected approvals", "threads in any status".
pub(crate) fn describe_query(q: &ListQuery, d: &Directory) -> String {
    let what = q
        .kind
        .map_or_else(|| "threads".to_owned(), |k| format!("{k}s"));
    let ws = q
        .workspace
        .as_ref()
        .map(|w| {
            format!(
                " in {}",
                d.workspace(w)
                    .map_or_else(|| w.to_string(), |x| x.name.clone())
            )
        })
        .unwrap_or_default();
    match q.status {
        StatusFilter::Open => format!("open {what}{ws}"),
        StatusFilter::Is(s) => format!("{s} {what}{ws}"),
        StatusFilter::All => format!("{what}{ws} in any status but archived"),
    }
}

/// Renders a thread in full, with Approve/Reject buttons when it can be decided.
pub fn render_thread(th: &Thread) -> Reply {
    let mut t = format!(
        "#{} [{} · {} · {}] {}\n",
        th.id.0, th.workspace, th.kind, th.status, th.title
    );
    if let Some(agent) = &th.agent {
        let _ = writeln!(t, "From {agent} ({})", th.origin);
    }
    if !th.body.is_empty() {
        let _ = writeln!(t, "{}", th.body);
    }
    if let Some(a) = &th.action {
        let _ = writeln!(t, "Proposed: {}", a.describe());
    }
    if th.kind == ThreadKind::Approval && th.status == ThreadStatus::Open {
        let _ = write!(t, "Needs {}", th.approvers.describe());
        if th.approvers.needed() > 1 {
            let _ = write!(t, " (have {})", th.approvals.len());
        }
        t.push('\n');
    }
    if let Some(exp) = th.expires_at.filter(|_| th.status == ThreadStatus::Open) {
        let _ = writeln!(
            t,
            "Expires {} (then: {})",
            exp.to_utc_string(),
            th.timeout_route
        );
    }
    if let Some(by) = &th.decided_by {
        let _ = write!(t, "Decided by {by}");
        if let Some(r) = &th.reason {
            let _ = write!(t, ": {r}");
        }
        t.push('\n');
    }
    for r in &th.replies {
        let _ = writeln!(
            t,
            "  {} ({}, {}): {}",
            r.author,
            r.front,
            r.at.to_utc_string(),
            r.text
        );
    }
    let card = thread_card(th);
    Reply::info(t.trim_end())
        .about(th.id)
        .with_buttons(card.buttons.clone())
        .with_blocks(vec![Block::Thread(card)])
}

/// Approve and Reject for the thread's current version, when it can be decided.
fn decide_buttons(th: &Thread) -> Vec<Button> {
    if !th.is_decidable() {
        return Vec::new();
    }
    [
        ("Approve", ButtonAction::Approve),
        ("Reject", ButtonAction::Reject),
    ]
    .into_iter()
    .map(|(label, action)| Button {
        label: label.into(),
        payload: ButtonPayload {
            thread: th.id,
            action,
            version: th.version,
        },
    })
    .collect()
}

/// A thread as a card: title, state, quorum progress and, while it can be decided, Approve
/// and Reject for its current version.
pub(crate) fn thread_card(th: &Thread) -> ThreadCard {
    ThreadCard {
        id: th.id,
        workspace: th.workspace.to_string(),
        title: th.title.clone(),
        status: th.status.to_string(),
        kind: th.kind.to_string(),
        approvals: u32::try_from(th.approvals.len()).unwrap_or(u32::MAX),
        needed: th.approvers.needed(),
        decided_by: th.decided_by.as_ref().map(ToString::to_string),
        reason: th.reason.clone(),
        buttons: decide_buttons(th),
    }
}

/// The reply about `th` with its card added (a decision's reply: the thread as it is now).
pub(crate) fn with_card(reply: Reply, th: &Thread) -> Reply {
    reply.with_blocks(vec![Block::Thread(thread_card(th))])
}

/// The reply to a command about several threads: how many were done, then each outcome
/// (its first line marked, the rest indented), in the order named. The tone is the worst
/// of them, so a refusal among successes is not missed.
pub fn each(replies: Vec<Reply>) -> Reply {
    let done = replies.iter().filter(|r| r.tone == Tone::Success).count();
    let mut text = format!("{done} of {} done:", replies.len());
    for r in &replies {
        for (i, line) in r.text.lines().enumerate() {
            text.push('\n');
            text.push_str(if i == 0 { "• " } else { "  " });
            text.push_str(line);
        }
    }
    let rank = |t: Tone| match t {
        Tone::Info => 0,
        Tone::Success => 1,
        Tone::Warning => 2,
        Tone::Error => 3,
    };
    let tone = replies
        .iter()
        .map(|r| r.tone)
        .max_by_key(|t| rank(*t))
        .unwrap_or_default();
    let blocks = replies.into_iter().flat_map(|r| r.blocks).collect();
    Reply {
        text,
        tone,
        blocks,
        ..Reply::default()
    }
}

/// A wait for people: `45 s`, `14 min`, `3 h 20 min`, `2 d 4 h`.
pub fn waited(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 if (s % 3600) / 60 == 0 => format!("{} h", s / 3600),
        3600..86_400 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ if (s % 86_400) / 3600 == 0 => format!("{} d", s / 86_400),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// `/stats`: this month's response times per workspace and kind.
pub fn render_stats(
    stats: &[crate::inbox::stats::ResponseStats],
    now: crate::time::Timestamp,
) -> Reply {
    let month = crate::ledger::month_of(now);
    if stats.is_empty() {
        return Reply::info(format!(
            "No thread was decided or answered in {month} yet. /todo shows what waits."
        ));
    }
    let mut t =
        format!("Time to a decision (approvals) or a first reply (other threads), {month}:\n");
    for s in stats {
        let _ = writeln!(
            t,
            "  {:<15} {:<10} {:>4} done   median {:<12} p95 {}",
            s.workspace,
            s.kind,
            s.count,
            waited(s.median),
            waited(s.p95)
        );
    }
    Reply::info(t.trim_end())
}

/// `/deadletters`: what could not be delivered, where and why, per destination; or what
/// retrying or discarding did.
pub fn render_dead_letters(o: &crate::dead_letters::DeadLetterOutcome) -> Reply {
    use crate::dead_letters::DeadLetterOutcome as O;
    match o {
        O::Listed(list) if list.is_empty() => {
            Reply::success("No dead letters: everything was delivered or is still being tried.")
        }
        O::Listed(list) => {
            let mut per: std::collections::BTreeMap<&str, usize> =
                std::collections::BTreeMap::new();
            for d in list {
                *per.entry(d.destination.as_str()).or_default() += 1;
            }
            let mut t = format!("Dead letters ({}), newest first:\n", list.len());
            for d in list {
                let _ = writeln!(
                    t,
                    "  #{:<6} {:<28} {}",
                    d.id.0,
                    d.destination.as_str(),
                    crate::text::one_line(&d.error, 80)
                );
            }
            let places: Vec<String> = per.iter().map(|(d, n)| format!("{d} ×{n}")).collect();
            let _ = writeln!(t, "By destination: {}.", places.join(", "));
            t.push_str("Send one again with /deadletters retry <id>, or give up with /deadletters discard <id>.");
            Reply::warning(t)
        }
        O::Retried(id) => Reply::success(format!(
            "Dead letter #{} is queued again; it goes out after anything already waiting for its destination.",
            id.0
        )),
        O::Discarded(id) => Reply::success(format!("Dead letter #{} is discarded.", id.0)),
        O::NotFound(id) => Reply::warning(format!(
            "There is no dead letter #{}. /deadletters lists them.",
            id.0
        )),
        O::NotOwner => {
            Reply::warning("Only owners see dead letters: they may hold any workspace's messages.")
        }
        O::Unavailable => Reply::info("Dead letters are not available here."),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::actor::UserName;
    use crate::inbox::{Approvers, Origin};
    use crate::knowledge::documents::tests::thread;

    #[test]
    fn a_thread_reply_carries_a_card_matching_its_text_and_buttons() {
        let mut th = thread(12, "lunavo", Origin::Agent, "Refund order 1042?");
        th.kind = ThreadKind::Approval;
        th.approvers = Approvers::Quorum { n: 2 };
        th.approvals = vec![UserName::parse("ana").unwrap()];
        th.version = 3;
        let r = render_thread(&th);
        let [Block::Thread(card)] = r.blocks.as_slice() else {
            panic!("one thread card expected: {:?}", r.blocks);
        };
        assert_eq!(card.id, th.id);
        assert!(r.text.starts_with(&format!(
            "#12 [{} · {} · {}] {}",
            card.workspace, card.kind, card.status, card.title
        )));
        assert_eq!((card.approvals, card.needed), (1, 2));
        assert!(r.text.contains("Needs 2 approvals (have 1)"), "{}", r.text);
        // The card's buttons are the reply's: Approve and Reject for version 3.
        assert_eq!(card.buttons, r.buttons);
        assert_eq!(
            card.buttons
                .iter()
                .map(|b| b.payload.encode())
                .collect::<Vec<_>>(),
            ["k1:a:12:3", "k1:r:12:3"]
        );
        // Decided: a card without buttons, saying who and why.
        th.status = ThreadStatus::Rejected;
        th.decided_by = Some(UserName::parse("bo").unwrap());
        th.reason = Some("too late".into());
        let r = render_thread(&th);
        let [Block::Thread(card)] = r.blocks.as_slice() else {
            panic!("one thread card expected: {:?}", r.blocks);
        };
        assert!(card.buttons.is_empty() && r.buttons.is_empty());
        assert_eq!(card.status, "rejected");
        assert_eq!(card.decided_by.as_deref(), Some("bo"));
        assert!(r.text.contains("Decided by bo: too late"), "{}", r.text);
    }

    #[test]
    fn several_outcomes_keep_every_card() {
        let a = with_card(
            Reply::success("Approved #1"),
            &thread(1, "lunavo", Origin::User, ""),
        );
        let b = with_card(
            Reply::warning("no"),
            &thread(2, "monarch", Origin::User, ""),
        );
        let r = each(vec![a, b]);
        assert_eq!(r.blocks.len(), 2);
        assert_eq!(r.tone, Tone::Warning);
    }
}
