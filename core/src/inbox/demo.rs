//! The demo inbox: a few realistic threads in several workspaces (`krake demo`, `krake serve
//! --demo`), so a new user sees something on every front.

use super::{Approvers, NewThread, Origin, ProposedAction, ThreadFilter, ThreadKind};
use crate::Krake;
use crate::actor::Actor;
use crate::ports::RepoError;
use crate::time::Timestamp;
use crate::workspace::WorkspaceSlug;
use std::time::Duration;

fn thread(
    ws: &str,
    kind: ThreadKind,
    agent: Option<&str>,
    title: &str,
    body: &str,
) -> Option<NewThread> {
    let mut t = NewThread::new(WorkspaceSlug::parse(ws).ok()?, kind, title, body);
    t.origin = if agent.is_some() {
        Origin::Agent
    } else {
        Origin::System
    };
    t.agent = agent.map(str::to_owned);
    Some(t)
}

/// The demo threads, in creation order. Threads for workspaces that are not configured are skipped.
pub fn demo_threads(now: Timestamp) -> Vec<NewThread> {
    let mut out = Vec::new();
    if let Some(mut t) = thread(
        "lunavo",
        ThreadKind::Approval,
        Some("Penn"),
        "Publish the hoodie launch post on Instagram",
        "Draft: \"Moonlight, stitched. The Lunavo night hoodie is here: heavyweight cotton, glow-in-the-dark crescent. Limited first run.\"\nConfidence 0.72: below the act threshold for public posts.",
    ) {
        t.action = Some(ProposedAction::PublishPost {
            channel: "instagram".into(),
            text: "Moonlight, stitched. The Lunavo night hoodie is here.".into(),
        });
        out.push(t);
    }
    if let Some(mut t) = thread(
        "lunavo",
        ThreadKind::Approval,
        Some("Cassie"),
        "Refund order #1042 (print arrived damaged)",
        "The customer sent two photos of a torn print. Gelato confirms the parcel was damaged in transit.",
    ) {
        t.action = Some(ProposedAction::Refund {
            order_id: "820982911946154508".into(),
            amount_minor: 3490,
            currency: "EUR".into(),
        });
        t.expires_at = Some(now.plus(Duration::from_secs(24 * 3600)));
        out.push(t);
    }
    out.extend(thread(
        "monarch",
        ThreadKind::Escalation,
        None,
        "Gelato order 8712 failed: address undeliverable",
        "Gelato reported order_status_updated → failed for order 8712 (3 items). The customer's address lacks a house number.",
    ));
    out.extend(thread(
        "monarch",
        ThreadKind::Question,
        Some("Milli"),
        "Offer 10% to the wholesale lead from Berlin?",
        "The lead (Kiez Concept Store) asks for 40 units. Our usual wholesale discount is 7%.",
    ));
    if let Some(mut t) = thread(
        "hard-life-mode",
        ThreadKind::Approval,
        Some("Soshie"),
        "Schedule tomorrow's 6 a.m. motivation reel",
        "Caption: \"Discipline is remembering what you want.\" 28 s reel, cut from Sunday's shoot.",
    ) {
        t.action = Some(ProposedAction::PublishPost {
            channel: "tiktok".into(),
            text: "Discipline is remembering what you want.".into(),
        });
        out.push(t);
    }
    out.extend(thread(
        "management",
        ThreadKind::Notice,
        Some("Dexter"),
        "Weekly summary: revenue up 12% week over week",
        "Lunavo 4,210 EUR (+18%), Monarch 2,980 EUR (+4%). Best seller: Night hoodie (31 units).",
    ));
    out.extend(thread(
        "lunabots",
        ThreadKind::Question,
        Some("Seomi"),
        "Target \"robot kit for kids\" or \"ai robot kit\"?",
        "\"robot kit for kids\" has 3x the searches; \"ai robot kit\" converts better and has less competition.",
    ));
    if let Some(mut t) = thread(
        "management",
        ThreadKind::Approval,
        Some("Scouty"),
        "Hire a part-time designer (20 h/week)",
        "Three candidates shortlisted; Mara Lind is the strongest portfolio. Needs two approvals.",
    ) {
        t.approvers = Approvers::Quorum { n: 2 };
        out.push(t);
    }
    out
}

/// Adds the demo threads if the inbox is empty; returns how many were added.
pub async fn fill_if_empty(krake: &Krake, now: Timestamp) -> Result<usize, RepoError> {
    let any = krake
        .list_threads(&ThreadFilter {
            limit: 1,
            ..ThreadFilter::default()
        })
        .await?;
    if !any.is_empty() {
        return Ok(0);
    }
    let actor = Actor::system();
    let mut n = 0;
    for t in demo_threads(now) {
        krake.create_thread(&actor, &t).await?;
        n += 1;
    }
    Ok(n)
}
