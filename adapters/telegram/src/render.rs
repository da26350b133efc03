//! Replies and threads as Telegram messages.
//!
//! Texts are sent as plain text, without `parse_mode`: core's texts are plain, and plain text
//! needs no escaping, so nothing a user or agent writes can break the markup. Telegram limits a
//! message to 4096 characters counted in UTF-16 code units; longer texts are split into parts
//! at a line break when one is near, never inside a character (so never inside a surrogate
//! pair). Buttons go on the last part.

use krake_core::delivery::Delivery;
use krake_core::reply::{Reply, Tone};
use krake_core::service::render_thread;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

/// Telegram's limit on a message's text, in UTF-16 code units.
pub const MAX_TEXT_UTF16: usize = 4096;

/// Telegram's limit on a callback query answer's text, in characters.
pub const MAX_ANSWER_CHARS: usize = 200;

/// A reply ready to send: its text parts and the keyboard for the last one.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// One or more texts of at most [`MAX_TEXT_UTF16`] UTF-16 units.
    pub parts: Vec<String>,
    /// Inline buttons (callback data = the encoded [`ButtonPayload`](krake_core::reply::ButtonPayload)).
    pub keyboard: Option<InlineKeyboardMarkup>,
}

/// Renders a reply.
pub fn reply(r: &Reply) -> Rendered {
    let prefix = match r.tone {
        Tone::Info => "",
        Tone::Success => "✅ ",
        Tone::Warning => "⚠️ ",
        Tone::Error => "❌ ",
    };
    let text = format!("{prefix}{}", r.text);
    let keyboard = (!r.buttons.is_empty()).then(|| {
        InlineKeyboardMarkup::new([r
            .buttons
            .iter()
            .map(|b| InlineKeyboardButton::callback(b.label.clone(), b.payload.encode()))
            .collect::<Vec<_>>()])
    });
    Rendered {
        parts: split_utf16(&text, MAX_TEXT_UTF16),
        keyboard,
    }
}

/// Renders what the outbox asks for (a reply, a thread to post, a thread to edit, an answer
/// so far or final). A typing indicator has no text.
pub fn delivery(d: &Delivery) -> Rendered {
    match d {
        Delivery::Send { reply: r } | Delivery::Replace { reply: r, .. } => reply(r),
        Delivery::Post { thread } | Delivery::Edit { thread, .. } => reply(&render_thread(thread)),
        Delivery::Stream { text, .. } => Rendered {
            parts: vec![one_message(text)],
            keyboard: None,
        },
        Delivery::Typing => Rendered {
            parts: Vec::new(),
            keyboard: None,
        },
    }
}

/// A text cut to one message (for edits, which cannot add parts), ending in `…` when cut.
pub fn one_message(text: &str) -> String {
    if utf16_len(text) <= MAX_TEXT_UTF16 {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        if used + c.len_utf16() > MAX_TEXT_UTF16 - 1 {
            break;
        }
        used += c.len_utf16();
        out.push(c);
    }
    out.push('…');
    out
}

/// A text cut to [`MAX_ANSWER_CHARS`] for answerCallbackQuery.
pub fn answer_text(text: &str) -> String {
    if text.chars().count() <= MAX_ANSWER_CHARS {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(MAX_ANSWER_CHARS - 1).collect();
    s.push('…');
    s
}

/// The length of a text in UTF-16 code units (how Telegram counts).
pub fn utf16_len(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// Splits a text into parts of at most `max` UTF-16 units (at least 2, so any character fits),
/// on character boundaries; a part ends after a line break when one falls in its second half.
/// An empty text gives one empty part.
pub fn split_utf16(text: &str, max: usize) -> Vec<String> {
    let max = max.max(2);
    let mut parts = Vec::new();
    let mut rest = text;
    while utf16_len(rest) > max {
        // The longest prefix within `max` units, as a byte index on a char boundary.
        let mut used = 0;
        let mut cut = 0;
        let mut last_newline = None;
        for (i, c) in rest.char_indices() {
            if used + c.len_utf16() > max {
                break;
            }
            used += c.len_utf16();
            cut = i + c.len_utf8();
            if c == '\n' && used > max / 2 {
                last_newline = Some(cut);
            }
        }
        let cut = last_newline.unwrap_or(cut);
        parts.push(rest[..cut].to_owned());
        rest = &rest[cut..];
    }
    parts.push(rest.to_owned());
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use krake_core::inbox::ThreadId;
    use krake_core::reply::{Button, ButtonAction, ButtonPayload};

    #[test]
    fn split_5000_ascii() {
        let text = "x".repeat(5000);
        let parts = split_utf16(&text, MAX_TEXT_UTF16);
        assert_eq!(parts.len(), 2);
        assert_eq!(utf16_len(&parts[0]), 4096);
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn split_never_inside_a_surrogate_pair() {
        // 'a' then emoji (2 UTF-16 units each): the 4096th unit would be half an emoji.
        let text = format!("a{}", "😀".repeat(2500));
        let parts = split_utf16(&text, MAX_TEXT_UTF16);
        assert_eq!(parts.concat(), text);
        assert!(parts.iter().all(|p| utf16_len(p) <= MAX_TEXT_UTF16));
        assert_eq!(utf16_len(&parts[0]), 4095, "stops before the split emoji");
        assert!(parts[1].starts_with('😀'));
    }

    #[test]
    fn split_prefers_line_breaks() {
        let text = format!("{}\n{}", "a".repeat(3000), "b".repeat(2000));
        let parts = split_utf16(&text, MAX_TEXT_UTF16);
        assert_eq!(
            parts,
            vec![format!("{}\n", "a".repeat(3000)), "b".repeat(2000)]
        );
    }

    #[test]
    fn short_and_empty() {
        assert_eq!(split_utf16("", 4096), vec![String::new()]);
        assert_eq!(split_utf16("hi", 4096), vec!["hi".to_owned()]);
    }

    #[test]
    fn buttons_carry_encoded_payloads() {
        let p = ButtonPayload {
            thread: ThreadId(12),
            action: ButtonAction::Approve,
            version: 3,
        };
        let r = reply(&Reply::info("x").with_buttons(vec![Button {
            label: "Approve".into(),
            payload: p,
        }]));
        let json = serde_json::to_value(r.keyboard.unwrap()).unwrap();
        assert_eq!(json["inline_keyboard"][0][0]["callback_data"], "k1:a:12:3");
        assert_eq!(json["inline_keyboard"][0][0]["text"], "Approve");
    }

    #[test]
    fn cuts() {
        let long = "é".repeat(5000);
        let one = one_message(&long);
        assert_eq!(utf16_len(&one), 4096);
        assert!(one.ends_with('…'));
        assert_eq!(answer_text(&"z".repeat(300)).chars().count(), 200);
    }

    proptest::proptest! {
        #[test]
        fn split_round_trips(s in "\\PC{0,300}", max in 2usize..50) {
            let parts = split_utf16(&s, max);
            proptest::prop_assert_eq!(parts.concat(), s);
            for p in &parts { proptest::prop_assert!(utf16_len(p) <= max); }
        }
    }
}
