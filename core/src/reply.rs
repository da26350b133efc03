//! What Krake answers: text, optional buttons with typed payloads, an optional thread
//! reference, and optional structured [`Block`]s (tables, thread cards, KPI cards) for fronts
//! that draw more than text. Each front renders a [`Reply`] its own way; the text always says
//! everything the blocks show, so a front that ignores them loses nothing.

use crate::inbox::ThreadId;
use serde::{Deserialize, Serialize};

/// How a reply should be presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Tone {
    /// Plain information.
    #[default]
    Info,
    /// Something was done.
    Success,
    /// Refused or not understood; nothing changed.
    Warning,
    /// Krake failed; nothing changed.
    Error,
}

/// A reply to render.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Reply {
    /// The text, plain (fronts escape it for their markup).
    pub text: String,
    /// Buttons to show under it.
    pub buttons: Vec<Button>,
    /// The inbox thread it is about, if any.
    pub thread: Option<ThreadId>,
    /// How to present it.
    pub tone: Tone,
    /// The person whose words these are, when a person's reply is passed on (a team member's
    /// answer in an escalated thread, shown in a customer's chat under their name); `None`
    /// for Krake's and agents' own replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The same content as structured parts (the web widget draws them as HTML); `text`
    /// stays the full fallback.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<Block>,
}

impl Reply {
    /// A plain informational reply.
    pub fn info(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    /// A reply saying something was done.
    pub fn success(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            tone: Tone::Success,
            ..Self::default()
        }
    }

    /// A refusal or a "did not understand"; nothing changed.
    pub fn warning(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            tone: Tone::Warning,
            ..Self::default()
        }
    }

    /// Krake failed; nothing changed.
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            tone: Tone::Error,
            ..Self::default()
        }
    }

    /// The same reply about `thread`.
    pub fn about(mut self, thread: ThreadId) -> Self {
        self.thread = Some(thread);
        self
    }

    /// The same reply with buttons.
    pub fn with_buttons(mut self, buttons: Vec<Button>) -> Self {
        self.buttons = buttons;
        self
    }

    /// The same reply with structured blocks (what its text says, as parts to draw).
    pub fn with_blocks(mut self, blocks: Vec<Block>) -> Self {
        self.blocks = blocks;
        self
    }
}

/// A structured part of a reply. Plain text only (fronts escape it for their markup); a
/// thread is written `#12` in any cell or text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Block {
    /// Rows under named columns (a thread list, a report).
    Table {
        /// The column headings.
        columns: Vec<String>,
        /// The rows, each with one cell per column.
        rows: Vec<Vec<String>>,
    },
    /// One inbox thread with its state and what can be done to it.
    Thread(ThreadCard),
    /// One key figure.
    Kpi(KpiCard),
}

/// An inbox thread as a card: title, state, quorum progress and its buttons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadCard {
    /// The thread.
    pub id: ThreadId,
    /// Its workspace's slug.
    pub workspace: String,
    /// Its title.
    pub title: String,
    /// `open`, `approved`, `rejected`, …
    pub status: String,
    /// `approval`, `question`, `escalation`, …
    pub kind: String,
    /// Approvals counted so far.
    pub approvals: u32,
    /// Approvals needed to approve it (1 unless a quorum is asked for).
    pub needed: u32,
    /// Who decided it, once decided.
    #[serde(default)]
    pub decided_by: Option<String>,
    /// The reason given with a rejection.
    #[serde(default)]
    pub reason: Option<String>,
    /// What can be done to it now (Approve, Reject), for the thread's current version.
    #[serde(default)]
    pub buttons: Vec<Button>,
}

/// A key figure as a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KpiCard {
    /// What it measures.
    pub label: String,
    /// The value, formatted in its unit (`1,234.50 EUR`, `2.5 %`, `—`).
    pub value: String,
    /// The change from the period before (`▲ 12 % vs yesterday`), if known.
    #[serde(default)]
    pub change: Option<String>,
    /// The period it is judged over when longer than a day (`7 days`).
    #[serde(default)]
    pub period: Option<String>,
    /// The target, formatted, if one is set.
    #[serde(default)]
    pub target: Option<String>,
    /// Whether the value meets the target (`None` without a target or a value).
    #[serde(default)]
    pub on_target: Option<bool>,
    /// The last days as a one-line chart (`▁▃▅█`), empty without data.
    #[serde(default)]
    pub trend: String,
}

/// A button: a label and the typed payload it sends back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// What the button says.
    pub label: String,
    /// What pressing it means.
    pub payload: ButtonPayload,
}

/// What a button does to a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ButtonAction {
    /// Approve the thread.
    Approve,
    /// Reject the thread (the front may ask for a reason).
    Reject,
    /// Archive the thread.
    Archive,
}

impl ButtonAction {
    fn code(self) -> char {
        match self {
            ButtonAction::Approve => 'a',
            ButtonAction::Reject => 'r',
            ButtonAction::Archive => 'x',
        }
    }

    fn from_code(c: &str) -> Option<Self> {
        Some(match c {
            "a" => ButtonAction::Approve,
            "r" => ButtonAction::Reject,
            "x" => ButtonAction::Archive,
            _ => return None,
        })
    }
}

/// A button's payload: thread, action and the thread version the button was drawn for.
///
/// Encoded compactly as `k1:a:12:3` (at most 45 bytes, within Telegram's 64-byte
/// callback data and Discord's 100-character custom id) and checked when it comes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ButtonPayload {
    /// The thread.
    pub thread: ThreadId,
    /// What to do.
    pub action: ButtonAction,
    /// The thread version the button was drawn for; a stale one is refused.
    pub version: i64,
}

/// Why a button payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this button is not one of Krake's (or comes from an older version): `{0}`")]
pub struct PayloadError(String);

impl ButtonPayload {
    /// Encodes as `k1:<action>:<thread>:<version>`.
    pub fn encode(&self) -> String {
        format!(
            "k1:{}:{}:{}",
            self.action.code(),
            self.thread.0,
            self.version
        )
    }

    /// Decodes and checks a payload produced by [`encode`](Self::encode).
    pub fn decode(s: &str) -> Result<Self, PayloadError> {
        let bad = || PayloadError(s.chars().take(100).collect());
        if s.len() > 64 {
            return Err(bad());
        }
        let mut parts = s.split(':');
        let (Some("k1"), Some(a), Some(t), Some(v), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad());
        };
        let action = ButtonAction::from_code(a).ok_or_else(bad)?;
        let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
        if !digits(t) || !digits(v) {
            return Err(bad());
        }
        let thread = t.parse::<i64>().map_err(|_| bad())?;
        let version = v.parse::<i64>().map_err(|_| bad())?;
        if thread <= 0 {
            return Err(bad());
        }
        Ok(Self {
            thread: ThreadId(thread),
            action,
            version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn payload_round_trip_and_size() {
        let p = ButtonPayload {
            thread: ThreadId(i64::MAX),
            action: ButtonAction::Reject,
            version: i64::MAX,
        };
        let s = p.encode();
        assert!(s.len() <= 64, "{} bytes", s.len());
        assert_eq!(ButtonPayload::decode(&s), Ok(p));
    }

    #[test]
    fn payload_rejects_forgeries() {
        for bad in [
            "",
            "k1",
            "k1:a:12",
            "k2:a:12:3",
            "k1:z:12:3",
            "k1:a:-1:3",
            "k1:a:0:3",
            "k1:a:12:3:9",
            "k1:a:+12:3",
            "k1:a:99999999999999999999:1",
        ] {
            assert!(ButtonPayload::decode(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn blocks_are_optional_in_stored_replies_and_tagged_by_type() {
        // A reply stored before blocks existed still reads.
        let old: Reply =
            serde_json::from_str(r#"{"text":"hi","buttons":[],"thread":null,"tone":"info"}"#)
                .unwrap();
        assert!(old.blocks.is_empty());
        // A reply without blocks is stored as before.
        let json = serde_json::to_value(Reply::info("hi")).unwrap();
        assert!(json.get("blocks").is_none(), "{json}");
        let r = Reply::info("Open threads (1):").with_blocks(vec![
            Block::Table {
                columns: vec!["#".into(), "Title".into()],
                rows: vec![vec!["#12".into(), "Refund".into()]],
            },
            Block::Thread(ThreadCard {
                id: ThreadId(12),
                workspace: "lunavo".into(),
                title: "Refund".into(),
                status: "open".into(),
                kind: "approval".into(),
                approvals: 1,
                needed: 2,
                decided_by: None,
                reason: None,
                buttons: vec![],
            }),
        ]);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["blocks"][0]["type"], "table");
        assert_eq!(json["blocks"][0]["rows"][0][0], "#12");
        assert_eq!(json["blocks"][1]["type"], "thread");
        assert_eq!(json["blocks"][1]["id"], 12);
        assert_eq!(json["blocks"][1]["needed"], 2);
        let back: Reply = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }

    proptest! {
        #[test]
        fn decode_never_panics(s in ".{0,120}") {
            let _ = ButtonPayload::decode(&s);
        }

        #[test]
        fn encode_decode_round_trips(t in 1i64.., v in 0i64.., a in 0u8..3) {
            let action = [ButtonAction::Approve, ButtonAction::Reject, ButtonAction::Archive][a as usize];
            let p = ButtonPayload { thread: ThreadId(t), action, version: v };
            prop_assert_eq!(ButtonPayload::decode(&p.encode()), Ok(p));
        }
    }
}
