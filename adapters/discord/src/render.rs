//! Core replies and threads rendered as Discord message bodies: content split at 2000
//! characters (on character boundaries, preferring line breaks), Approve / Reject buttons whose
//! `custom_id` is the typed [`ButtonPayload`](krake_core::reply::ButtonPayload) encoding, and
//! no pings (`allowed_mentions` empty).

use krake_core::inbox::{Thread, ThreadKind, ThreadStatus};
use krake_core::reply::{Button, ButtonAction, ButtonPayload, Reply};
use krake_core::service::render_thread;
use serde_json::{Value, json};

/// Discord's limit on a message's content. Measured in UTF-16 code units, which is never less
/// than the number of characters, so a piece within it is within Discord's count too.
pub const MAX_CONTENT: usize = 2000;

/// Longest thread name Discord accepts.
pub const MAX_THREAD_NAME: usize = 100;

fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// Splits `text` into pieces of at most `max` UTF-16 units, cutting on character boundaries and
/// preferring the last line break, then the last space, within each piece.
pub fn split(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut out = Vec::new();
    let mut rest = text;
    while utf16_len(rest) > max {
        // The byte index where `max` units end.
        let mut units = 0;
        let mut hard = 0;
        for (i, c) in rest.char_indices() {
            if units + c.len_utf16() > max {
                break;
            }
            units += c.len_utf16();
            hard = i + c.len_utf8();
        }
        let window = &rest[..hard];
        let cut = window
            .rfind('\n')
            .filter(|i| *i > 0)
            .map(|i| (i, i + 1))
            .or_else(|| window.rfind(' ').filter(|i| *i > 0).map(|i| (i, i + 1)))
            .unwrap_or((hard, hard));
        out.push(rest[..cut.0].to_owned());
        rest = &rest[cut.1..];
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

/// Cuts `text` to at most `max` UTF-16 units, ending with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if utf16_len(text) <= max {
        return text.to_owned();
    }
    let mut units = 0;
    let mut out = String::new();
    for c in text.chars() {
        if units + c.len_utf16() + 1 > max {
            break;
        }
        units += c.len_utf16();
        out.push(c);
    }
    out.push('…');
    out
}

fn style(action: ButtonAction) -> u8 {
    match action {
        ButtonAction::Approve => 3, // green
        ButtonAction::Reject => 4,  // red
        ButtonAction::Archive => 2, // grey
    }
}

/// One action row with these buttons (at most 5 per row), or nothing.
pub fn components(buttons: &[Button], disabled: bool) -> Vec<Value> {
    if buttons.is_empty() {
        return Vec::new();
    }
    buttons
        .chunks(5)
        .take(5)
        .map(|row| {
            let items: Vec<Value> = row
                .iter()
                .map(|b| {
                    json!({
                        "type": 2,
                        "style": style(b.payload.action),
                        "label": truncate(&b.label, 80),
                        "custom_id": b.payload.encode(),
                        "disabled": disabled,
                    })
                })
                .collect();
            json!({ "type": 1, "components": items })
        })
        .collect()
}

/// A message body.
pub fn body(content: &str, components: Vec<Value>) -> Value {
    json!({
        "content": content,
        "components": components,
        "allowed_mentions": { "parse": [] },
    })
}

/// A reply as message bodies: the text split in pieces, buttons under the last one.
pub fn reply_bodies(reply: &Reply) -> Vec<Value> {
    let text = if reply.text.trim().is_empty() {
        "…"
    } else {
        reply.text.as_str()
    };
    let pieces = split(text, MAX_CONTENT);
    let last = pieces.len().saturating_sub(1);
    pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let c = if i == last {
                components(&reply.buttons, false)
            } else {
                Vec::new()
            };
            body(p, c)
        })
        .collect()
}

/// A thread as Discord shows it: the main message (at most 2000 characters, with its buttons;
/// edited on every change) and the overflow posted inside its Discord thread.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadMessage {
    /// The main message's body.
    pub main: Value,
    /// The rest of a long text, posted in the Discord thread.
    pub overflow: Vec<String>,
    /// The Discord thread's name.
    pub name: String,
}

/// Renders a thread. An open approval has live Approve / Reject buttons; a decided one keeps
/// them disabled and leads with the outcome and who decided.
pub fn thread_message(th: &Thread) -> ThreadMessage {
    let reply = render_thread(th);
    let decided = th.kind == ThreadKind::Approval
        && matches!(th.status, ThreadStatus::Approved | ThreadStatus::Rejected);
    let mut text = String::new();
    if decided {
        let outcome = if th.status == ThreadStatus::Approved {
            "✅ Approved"
        } else {
            "❌ Rejected"
        };
        let by = th
            .decided_by
            .as_ref()
            .map(|u| format!(" by {u}"))
            .unwrap_or_default();
        text.push_str(&format!("**{outcome}{by}**\n"));
    } else if th.kind == ThreadKind::Approval && th.status != ThreadStatus::Open {
        text.push_str(&format!("**{}**\n", th.status));
    }
    text.push_str(&reply.text);
    let pieces = split(&text, MAX_CONTENT);
    let buttons = if decided {
        // The same buttons, disabled: the decision shows where it was taken.
        [ButtonAction::Approve, ButtonAction::Reject]
            .into_iter()
            .map(|action| Button {
                label: if action == ButtonAction::Approve {
                    "Approve".into()
                } else {
                    "Reject".into()
                },
                payload: ButtonPayload {
                    thread: th.id,
                    action,
                    version: th.version,
                },
            })
            .collect()
    } else {
        reply.buttons.clone()
    };
    let main = body(
        pieces.first().map(String::as_str).unwrap_or("…"),
        components(&buttons, decided),
    );
    ThreadMessage {
        main,
        overflow: pieces.into_iter().skip(1).collect(),
        name: truncate(&format!("#{} {}", th.id.0, th.title), MAX_THREAD_NAME),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_prefers_line_breaks_and_keeps_everything() {
        let line = "a".repeat(1500);
        let text = format!("{line}\n{line}\n{line}");
        let parts = split(&text, MAX_CONTENT);
        assert_eq!(parts, vec![line.clone(), line.clone(), line]);
        let short = split("hello", MAX_CONTENT);
        assert_eq!(short, vec!["hello".to_owned()]);
    }

    #[test]
    fn split_cuts_on_char_boundaries() {
        // 4-byte, 2-unit characters and no break at all.
        let text = "🦑".repeat(1500);
        let parts = split(&text, MAX_CONTENT);
        assert!(parts.iter().all(|p| utf16_len(p) <= MAX_CONTENT));
        assert_eq!(parts.concat(), text);
        let mixed = format!("{} {}", "é".repeat(1999), "x".repeat(10));
        let parts = split(&mixed, MAX_CONTENT);
        assert_eq!(parts, vec!["é".repeat(1999), "x".repeat(10)]);
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("short", 10), "short");
        let t = truncate(&"x".repeat(200), 100);
        assert_eq!(t.chars().count(), 100);
        assert!(t.ends_with('…'));
    }
}
