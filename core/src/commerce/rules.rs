//! Event rules: what a commerce event opens in the inbox (an approval drafted for an agent, an
//! escalation, a notice), the default rules, and how an event is named and described in the
//! threads it opens.

use super::{CommerceEnvelope, CommerceEvent};
use crate::inbox::{NewThread, Origin, ThreadKind};
use serde::{Deserialize, Serialize};

/// What a rule reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// `orders/create`.
    OrderCreated,
    /// `orders/paid`.
    OrderPaid,
    /// `app/uninstalled`.
    AppUninstalled,
    /// A Gelato order was canceled.
    FulfilmentCanceled,
    /// A Gelato order failed.
    FulfilmentFailed,
    /// Matches nothing.
    Other,
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// An approval thread drafted for the agent (until the agent runner lands, the thread holds
    /// the task; approving it records the decision).
    Approval,
    /// An escalation thread for the workspace's owners.
    Escalation,
    /// A notice thread.
    Notice,
}

/// An event rule: when `on` happens, open a thread (`then`) for `agent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRule {
    /// The trigger.
    pub on: Trigger,
    /// What to open.
    pub then: RuleAction,
    /// The agent doing the work, if any (`Cassie`).
    #[serde(default)]
    pub agent: Option<String>,
    /// The task, in words (`draft the customer thank-you`).
    #[serde(default)]
    pub task: Option<String>,
}

/// The default rules: a thank-you draft for every new order (Cassie, approval); an escalation
/// for a canceled or failed print order and for an uninstalled app.
pub fn default_rules() -> Vec<EventRule> {
    vec![
        EventRule {
            on: Trigger::OrderCreated,
            then: RuleAction::Approval,
            agent: Some("Cassie".into()),
            task: Some("Send the customer a thank-you note".into()),
        },
        EventRule {
            on: Trigger::FulfilmentCanceled,
            then: RuleAction::Escalation,
            agent: None,
            task: None,
        },
        EventRule {
            on: Trigger::FulfilmentFailed,
            then: RuleAction::Escalation,
            agent: None,
            task: None,
        },
        EventRule {
            on: Trigger::AppUninstalled,
            then: RuleAction::Escalation,
            agent: None,
            task: None,
        },
    ]
}

impl CommerceEvent {
    /// What the event is about, by its content: `order:<id>:created`, `order:<id>:paid`,
    /// `fulfilment:<order>:<status>`, `uninstalled:<shop>`, … The same event delivered again
    /// (a retry, or a replay under a new delivery id) has the same subject.
    pub fn subject(&self) -> String {
        match self {
            CommerceEvent::OrderCreated(o) => format!("order:{}:created", o.id),
            CommerceEvent::OrderPaid(o) => format!("order:{}:paid", o.id),
            CommerceEvent::ProductUpdated { id, .. } => format!("product:{id}:updated"),
            CommerceEvent::AppUninstalled { shop } => {
                format!("uninstalled:{}", shop.to_ascii_lowercase())
            }
            CommerceEvent::Fulfilment { event, update } => format!(
                "fulfilment:{}:{}",
                update.order_id,
                update.status.as_deref().unwrap_or(event)
            ),
            CommerceEvent::StoreProductDeleted { id } => format!("store-product:{id}:deleted"),
            CommerceEvent::Other { topic } => format!("other:{topic}"),
        }
    }
}

/// The threads the rules open for one event. Each carries an origin key derived from the
/// event's content (workspace, [`CommerceEvent::subject`], rule), not from its delivery: one
/// thread per order and topic however often the event arrives, under whatever delivery id.
pub fn threads_for(rules: &[EventRule], env: &CommerceEnvelope) -> Vec<NewThread> {
    let trigger = env.event.trigger();
    let subject = env.event.subject();
    rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.on == trigger && trigger != Trigger::Other)
        .map(|(i, r)| {
            let kind = match r.then {
                RuleAction::Approval => ThreadKind::Approval,
                RuleAction::Escalation => ThreadKind::Escalation,
                RuleAction::Notice => ThreadKind::Notice,
            };
            let (title, body) = describe(&env.event, r);
            let mut t = NewThread::new(env.workspace.clone(), kind, title, body);
            t.origin = if r.agent.is_some() {
                Origin::Agent
            } else {
                Origin::System
            };
            t.agent = r.agent.clone();
            if kind == ThreadKind::Escalation {
                t.approvers = crate::inbox::Approvers::Role {
                    role: crate::actor::Role::Owner,
                };
            }
            // `inbound:` marks threads opened by an inbound event (the run queue looks for it).
            t.origin_key = Some(format!("inbound:{}:{subject}:rule:{i}", env.workspace));
            t
        })
        .collect()
}

fn describe(event: &CommerceEvent, rule: &EventRule) -> (String, String) {
    let task = rule.task.clone().unwrap_or_default();
    match event {
        CommerceEvent::OrderCreated(o) | CommerceEvent::OrderPaid(o) => {
            let who = o
                .customer_name
                .clone()
                .or_else(|| o.email.clone())
                .unwrap_or_else(|| "the customer".into());
            let title = if task.is_empty() {
                format!("Order {} from {who}", o.name)
            } else {
                format!("{task}: order {} from {who}", o.name)
            };
            let body = format!(
                "Order {} (id {}) for {} {}, {}.\nCustomer: {who}{}",
                o.name,
                o.id,
                o.total,
                o.currency,
                o.financial_status,
                o.email
                    .as_ref()
                    .map(|e| format!(" <{e}>"))
                    .unwrap_or_default()
            );
            (title, body)
        }
        CommerceEvent::AppUninstalled { shop } => (
            format!("The Krake app was uninstalled from {shop}"),
            format!(
                "{shop} removed the app: no more order webhooks will arrive. Reinstall it, or archive this if it was intended."
            ),
        ),
        CommerceEvent::Fulfilment { event, update } => (
            format!(
                "Print order {} {}",
                update
                    .reference
                    .clone()
                    .unwrap_or_else(|| update.order_id.clone()),
                update.status.clone().unwrap_or_else(|| event.clone())
            ),
            format!(
                "Gelato reported {event}: order {} is {}. Check the order in Gelato and tell the customer.",
                update.order_id,
                update.status.clone().unwrap_or_default()
            ),
        ),
        other => (format!("{other:?}"), String::new()),
    }
}
