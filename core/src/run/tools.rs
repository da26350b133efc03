//! The agents' tools: their JSON Schemas as offered to the model, their strictly parsed
//! arguments, and the checks every argument passes (like any other input) before a tool runs.

use crate::inbox::ProposedAction;
use crate::knowledge::Passage;
use crate::model::ToolSpec;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The structured end of a run, from one of the final tools.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Final {
    Result {
        text: String,
        confidence: f64,
        action: Option<ProposedAction>,
    },
    Escalate {
        reason: String,
    },
    /// An answer in plain text instead of a tool call: its confidence is unknown, so it
    /// goes to a person for approval and is never acted on.
    Plain {
        text: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplyArgs {
    pub(crate) text: String,
    pub(crate) confidence: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApprovalArgs {
    pub(crate) summary: String,
    pub(crate) confidence: f64,
    pub(crate) action: ProposedAction,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EscalateArgs {
    pub(crate) reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchArgs {
    pub(crate) query: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KpiArgs {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FolderArgs {
    pub(crate) folder: String,
    pub(crate) values: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DelegateArgs {
    pub(crate) agent: String,
    pub(crate) task: String,
}

/// A plain-text answer read as a result: a JSON object `{"text": …, "confidence": …}`.
pub(crate) fn parse_plain_result(text: &str) -> Option<Final> {
    let t = text.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .map(|s| s.trim_end_matches("```").trim())
        .unwrap_or(t);
    let a: ReplyArgs = serde_json::from_str(t).ok()?;
    let confidence = check_confidence(a.confidence).ok()?;
    let text = non_empty("text", &a.text).ok()?;
    Some(Final::Result {
        text,
        confidence,
        action: None,
    })
}

pub(crate) fn check_confidence(c: f64) -> Result<f64, String> {
    if c.is_finite() && (0.0..=1.0).contains(&c) {
        Ok(c)
    } else {
        Err(format!(
            "confidence must be a number between 0 and 1, got {c}"
        ))
    }
}

pub(crate) fn non_empty(field: &str, s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        Err(format!("`{field}` must not be empty"))
    } else if t.chars().count() > 8000 {
        Err(format!("`{field}` is longer than 8000 characters"))
    } else {
        Ok(t.to_owned())
    }
}

/// Validates a proposed action like any other input.
pub(crate) fn check_action(a: &ProposedAction) -> Result<(), String> {
    let currency = |c: &str| {
        if c.len() == 3 && c.chars().all(|x| x.is_ascii_uppercase()) {
            Ok(())
        } else {
            Err(format!(
                "currency must be an ISO 4217 code like EUR, got `{c}`"
            ))
        }
    };
    match a {
        ProposedAction::SendMessage { to, text } => {
            non_empty("to", to)?;
            non_empty("text", text).map(|_| ())
        }
        ProposedAction::PublishPost { channel, text } => {
            non_empty("channel", channel)?;
            non_empty("text", text).map(|_| ())
        }
        ProposedAction::ChangePrice {
            product,
            price_minor,
            currency: c,
        } => {
            non_empty("product", product)?;
            if *price_minor <= 0 {
                return Err(format!("price_minor must be positive, got {price_minor}"));
            }
            currency(c)
        }
        ProposedAction::Refund {
            order_id,
            amount_minor,
            currency: c,
        } => {
            non_empty("order_id", order_id)?;
            if *amount_minor <= 0 {
                return Err(format!("amount_minor must be positive, got {amount_minor}"));
            }
            currency(c)
        }
        ProposedAction::CallTool { .. } => Err(
            "call_tool is not an action to propose: call the outside tool itself (its policy decides whether a person approves it)"
                .to_owned(),
        ),
    }
}

pub(crate) fn render_passages(p: &[Passage]) -> String {
    if p.is_empty() {
        return "Nothing found.".to_owned();
    }
    let mut t = String::new();
    for (i, x) in p.iter().enumerate() {
        let _ = writeln!(t, "[{}] {} ({})", i + 1, x.text.trim(), x.citation());
    }
    t.trim_end().to_owned()
}

/// The core tools with their argument schemas.
pub fn tool_specs() -> Vec<ToolSpec> {
    use serde_json::json;
    let action = json!({
        "type": "object",
        "description": "The action, by type: send_message {to, text}, publish_post {channel, text}, change_price {product, price_minor, currency}, refund {order_id, amount_minor, currency}. Amounts are in minor units (cents).",
        "properties": {
            "type": {"type": "string", "enum": ["send_message", "publish_post", "change_price", "refund"]},
            "to": {"type": "string"}, "text": {"type": "string"}, "channel": {"type": "string"},
            "product": {"type": "string"}, "price_minor": {"type": "integer"},
            "order_id": {"type": "string"}, "amount_minor": {"type": "integer"},
            "currency": {"type": "string"}
        },
        "required": ["type"]
    });
    vec![
        ToolSpec {
            name: "reply".into(),
            description: "Finish with your answer and your confidence in it (0 to 1).".into(),
            parameters: json!({"type": "object", "properties": {"text": {"type": "string"}, "confidence": {"type": "number", "minimum": 0, "maximum": 1}}, "required": ["text", "confidence"], "additionalProperties": false}),
        },
        ToolSpec {
            name: "request_approval".into(),
            description: "Finish by proposing an action that changes something outside Krake; a person approves it unless your policy lets you act.".into(),
            parameters: json!({"type": "object", "properties": {"summary": {"type": "string"}, "confidence": {"type": "number", "minimum": 0, "maximum": 1}, "action": action}, "required": ["summary", "confidence", "action"], "additionalProperties": false}),
        },
        ToolSpec {
            name: "escalate".into(),
            description: "Finish by handing the task to a person, saying why.".into(),
            parameters: json!({"type": "object", "properties": {"reason": {"type": "string"}}, "required": ["reason"], "additionalProperties": false}),
        },
        ToolSpec {
            name: "search_knowledge".into(),
            description: "Search this workspace's knowledge base; returns cited passages.".into(),
            parameters: json!({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"], "additionalProperties": false}),
        },
        ToolSpec {
            name: "add_folder_entry".into(),
            description: "Add a row to one of your own folders (tables); values by column name, checked against the column types.".into(),
            parameters: json!({"type": "object", "properties": {"folder": {"type": "string"}, "values": {"type": "object", "additionalProperties": {"type": "string"}}}, "required": ["folder", "values"], "additionalProperties": false}),
        },
        ToolSpec {
            name: "delegate".into(),
            description: "Hand a sub-task to another agent, by name (Milli) or role (copywriter); returns its answer. It works with its own tools in this workspace.".into(),
            parameters: json!({"type": "object", "properties": {"agent": {"type": "string"}, "task": {"type": "string"}}, "required": ["agent", "task"], "additionalProperties": false}),
        },
        ToolSpec {
            name: "get_kpis".into(),
            description: "This workspace's KPIs: each figure over its period, the change from the period before, the target and a 30-day trend.".into(),
            parameters: json!({"type": "object", "properties": {}, "additionalProperties": false}),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_answers_are_checked_like_input() {
        let refund = |amount, currency: &str| ProposedAction::Refund {
            order_id: "1042".into(),
            amount_minor: amount,
            currency: currency.into(),
        };
        assert!(check_action(&refund(4500, "EUR")).is_ok());
        assert!(check_action(&refund(0, "EUR")).is_err());
        assert!(check_action(&refund(100, "euro")).is_err());
        let post = ProposedAction::PublishPost {
            channel: " ".into(),
            text: "hi".into(),
        };
        assert!(check_action(&post).unwrap_err().contains("channel"));
        assert!(check_confidence(1.01).is_err());
        assert!(check_confidence(f64::NAN).is_err());
        assert!(non_empty("text", &"x".repeat(8001)).is_err());
        assert!(matches!(
            parse_plain_result("```json\n{\"text\": \"Glow up\", \"confidence\": 0.8}\n```"),
            Some(Final::Result { confidence, .. }) if confidence == 0.8
        ));
        assert_eq!(parse_plain_result("Sure! Glow up."), None);
        assert_eq!(
            parse_plain_result("{\"text\": \"x\", \"confidence\": 0.5, \"extra\": 1}"),
            None,
            "unknown fields are refused"
        );
        let names: Vec<String> = tool_specs().into_iter().map(|t| t.name).collect();
        for t in crate::policy::TOOLS {
            assert!(names.iter().any(|n| n == t), "{t} has a schema");
        }
    }
}
