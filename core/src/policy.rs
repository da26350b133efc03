//! What an agent may do on its own: its model settings, allowed tools, thresholds and the
//! actions that always need a person's approval; and the decision a result leads to.

use crate::inbox::ProposedAction;
use serde::{Deserialize, Serialize};

/// The core tools an agent can be given.
pub const TOOLS: [&str; 7] = [
    "reply",
    "request_approval",
    "escalate",
    "search_knowledge",
    "get_kpis",
    "add_folder_entry",
    "delegate",
];

/// The kinds of [`ProposedAction`], as named in `needs_approval`.
pub const ACTION_KINDS: [&str; 4] = ["send_message", "publish_post", "change_price", "refund"];

/// The kind of an action as named in `needs_approval` (`refund`, `publish_post`, …).
pub fn action_kind(a: &ProposedAction) -> &'static str {
    match a {
        ProposedAction::SendMessage { .. } => "send_message",
        ProposedAction::PublishPost { .. } => "publish_post",
        ProposedAction::ChangePrice { .. } => "change_price",
        ProposedAction::Refund { .. } => "refund",
        ProposedAction::CallTool { .. } => "call_tool",
    }
}

/// One agent's run settings (`[agents.NAME]` in the config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentPolicy {
    /// The model to use; `None` takes the first provider's first model.
    pub model: Option<String>,
    /// Sampling temperature.
    pub temperature: f32,
    /// The tools it may call; anything else is refused in code, whatever the prompt says.
    pub tools: Vec<String>,
    /// Action kinds that always go to a person for approval, however confident the agent is.
    pub needs_approval: Vec<String>,
    /// At or above this confidence (and not on `needs_approval`) the agent acts on its own.
    pub act_threshold: f64,
    /// Below this confidence the run is escalated to the workspace owner.
    pub escalate_threshold: f64,
}

impl Default for AgentPolicy {
    fn default() -> Self {
        Self {
            model: None,
            temperature: 0.3,
            tools: TOOLS.iter().map(|t| (*t).to_owned()).collect(),
            needs_approval: ACTION_KINDS.iter().map(|t| (*t).to_owned()).collect(),
            act_threshold: 0.8,
            escalate_threshold: 0.4,
        }
    }
}

impl AgentPolicy {
    /// The default policy of an agent, by role: nobody acts on money or customers without
    /// approval, but the coaching and errand agents (Gigi, Vizzy) may message the owner.
    pub fn for_agent(agent: &str) -> Self {
        let mut p = Self::default();
        if agent.eq_ignore_ascii_case("gigi") || agent.eq_ignore_ascii_case("vizzy") {
            p.needs_approval.retain(|a| a != "send_message");
        }
        p
    }
}

/// Why a policy is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A tool name that does not exist.
    #[error("unknown tool `{0}`; the tools are: {tools}, and outside tools as mcp:SERVER/TOOL (`*` patterns allowed)", tools = TOOLS.join(", "))]
    UnknownTool(String),
    /// An action kind that does not exist.
    #[error("unknown action `{0}` in needs_approval; the actions are: {kinds}", kinds = ACTION_KINDS.join(", "))]
    UnknownAction(String),
    /// Thresholds outside [0, 1] or in the wrong order.
    #[error(
        "thresholds must satisfy 0 <= escalate_threshold <= act_threshold <= 1 (got escalate {escalate}, act {act})"
    )]
    Thresholds {
        /// The escalate threshold.
        escalate: String,
        /// The act threshold.
        act: String,
    },
    /// Temperature outside [0, 2].
    #[error("temperature must be between 0 and 2 (got {0})")]
    Temperature(String),
}

impl AgentPolicy {
    /// Checks names and ranges.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if let Some(t) = self
            .tools
            .iter()
            .find(|t| !TOOLS.contains(&t.as_str()) && !crate::tool_servers::valid_grant(t))
        {
            return Err(PolicyError::UnknownTool(t.clone()));
        }
        if let Some(a) = self
            .needs_approval
            .iter()
            .find(|a| !ACTION_KINDS.contains(&a.as_str()))
        {
            return Err(PolicyError::UnknownAction(a.clone()));
        }
        let ok = (0.0..=1.0).contains(&self.escalate_threshold)
            && (0.0..=1.0).contains(&self.act_threshold)
            && self.escalate_threshold <= self.act_threshold;
        if !ok {
            return Err(PolicyError::Thresholds {
                escalate: self.escalate_threshold.to_string(),
                act: self.act_threshold.to_string(),
            });
        }
        if !(0.0..=2.0).contains(&self.temperature) {
            return Err(PolicyError::Temperature(self.temperature.to_string()));
        }
        Ok(())
    }

    /// Whether the agent may call `tool`.
    pub fn allows(&self, tool: &str) -> bool {
        self.tools.iter().any(|t| t == tool)
    }

    /// Whether the agent may call `server`'s outside `tool` (its `tools` name it as
    /// `mcp:SERVER/TOOL`, patterns allowed); the tool's own policy applies on top.
    pub fn allows_outside(&self, server: &str, tool: &str) -> bool {
        crate::tool_servers::granted(&self.tools, server, tool)
    }

    /// What to do with a result of `confidence` proposing `action`. A call of an outside
    /// tool proposed as an action always goes to a person: its tool's policy asked for that.
    pub fn decide(&self, confidence: f64, action: Option<&ProposedAction>) -> Verdict {
        if matches!(action, Some(ProposedAction::CallTool { .. })) {
            return Verdict::Approve;
        }
        if !confidence.is_finite() || confidence < self.escalate_threshold {
            return Verdict::Escalate;
        }
        let gated = action.is_some_and(|a| self.needs_approval.iter().any(|k| k == action_kind(a)));
        if confidence >= self.act_threshold && !gated {
            Verdict::Act
        } else {
            Verdict::Approve
        }
    }
}

/// What the policy made of a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Act (execute any action) and post a notice.
    Act,
    /// Open an approval thread; Approve executes the action, Reject revises.
    Approve,
    /// Open an escalation thread for the workspace owner.
    Escalate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_default_only_gigi_and_vizzy_message_without_approval() {
        for a in ["Gigi", "vizzy"] {
            let p = AgentPolicy::for_agent(a);
            assert!(
                !p.needs_approval.contains(&"send_message".to_owned()),
                "{a}"
            );
            assert!(p.needs_approval.contains(&"refund".to_owned()), "{a}");
        }
        let penn = AgentPolicy::for_agent("Penn");
        assert_eq!(penn, AgentPolicy::default());
        assert!(penn.needs_approval.contains(&"send_message".to_owned()));
    }

    fn refund() -> ProposedAction {
        ProposedAction::Refund {
            order_id: "1".into(),
            amount_minor: 100,
            currency: "EUR".into(),
        }
    }

    fn post() -> ProposedAction {
        ProposedAction::PublishPost {
            channel: "blog".into(),
            text: "hi".into(),
        }
    }

    #[test]
    fn each_policy_branch() {
        let p = AgentPolicy {
            needs_approval: vec!["refund".into()],
            ..AgentPolicy::default()
        };
        assert_eq!(p.decide(0.9, None), Verdict::Act);
        assert_eq!(p.decide(0.9, Some(&post())), Verdict::Act);
        assert_eq!(
            p.decide(0.8, Some(&post())),
            Verdict::Act,
            "at the threshold"
        );
        assert_eq!(p.decide(1.0, Some(&refund())), Verdict::Approve);
        assert_eq!(p.decide(0.6, Some(&post())), Verdict::Approve);
        assert_eq!(p.decide(0.6, None), Verdict::Approve);
        assert_eq!(p.decide(0.39, Some(&post())), Verdict::Escalate);
        assert_eq!(p.decide(f64::NAN, None), Verdict::Escalate);
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(AgentPolicy::default().validate().is_ok());
        let bad = AgentPolicy {
            tools: vec!["shell".into()],
            ..AgentPolicy::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("shell"));
        let bad = AgentPolicy {
            act_threshold: 0.3,
            escalate_threshold: 0.5,
            ..AgentPolicy::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(PolicyError::Thresholds { .. })
        ));
        let bad = AgentPolicy {
            needs_approval: vec!["nuke".into()],
            ..AgentPolicy::default()
        };
        assert!(matches!(bad.validate(), Err(PolicyError::UnknownAction(_))));
    }
}
