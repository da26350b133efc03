//! An update as core sees it: who wrote, where, what text or which button. Pure functions over
//! teloxide's types, so every fixture can be checked without a network.

use crate::place::Place;
use teloxide::types::{MaybeInaccessibleMessage, Message, Update, UpdateKind, User};

/// The bot itself, from getMe: needed to tell which group messages are meant for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotIdentity {
    /// The bot's user id.
    pub id: u64,
    /// The bot's username, without `@`.
    pub username: String,
}

/// A Telegram user as core needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The Telegram user id (the external id identities are linked by).
    pub id: u64,
    /// A name to show (`@username`, else the first name).
    pub display: String,
}

/// A text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Where it was written (the topic only in forum supergroups).
    pub place: Place,
    /// A private chat with the bot.
    pub private: bool,
    /// Who wrote it.
    pub from: Person,
    /// What they wrote.
    pub text: String,
    /// The message it replies to: its id, and whether the bot wrote it. A forum topic's
    /// messages reply to the topic's first message implicitly; those are not counted.
    pub reply_to: Option<(i32, bool)>,
    /// A file sent with it (a document, or the largest size of a photo); `text` is then its
    /// caption.
    pub file: Option<SentDocument>,
}

/// A file a message carries, as Telegram describes it (its bytes are fetched later with
/// getFile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentDocument {
    /// The `file_id` getFile takes.
    pub file_id: String,
    /// Its file name (`photo.jpg` for a photo, which has none).
    pub name: String,
    /// Its size in bytes, as Telegram says.
    pub size: u64,
}

/// A press on an inline button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonPress {
    /// The callback query id, to answer.
    pub query_id: String,
    /// Who pressed.
    pub from: Person,
    /// The callback data, unchecked.
    pub data: Option<String>,
    /// The message the button is on, when it is in a chat (not an inline message).
    pub message: Option<(Place, i32)>,
}

/// What an update means to Krake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A text message.
    Message(ChatMessage),
    /// A button press.
    Button(ButtonPress),
    /// Nothing to do; the reason is logged.
    Skip(String),
}

/// Converts an update (the bot's id tells replies to the bot apart).
pub fn convert(update: &Update, bot_id: u64) -> Event {
    match &update.kind {
        UpdateKind::Message(m) => message(m, bot_id),
        UpdateKind::EditedMessage(_) => Event::Skip("an edit of an earlier message".into()),
        UpdateKind::CallbackQuery(q) => Event::Button(ButtonPress {
            query_id: q.id.0.clone(),
            from: person(&q.from),
            data: q.data.clone(),
            message: q.message.as_ref().map(|m| match m {
                MaybeInaccessibleMessage::Regular(m) => (place_of(m), m.id.0),
                MaybeInaccessibleMessage::Inaccessible(i) => {
                    (Place::chat(i.chat.id.0), i.message_id.0)
                }
            }),
        }),
        UpdateKind::MyChatMember(c) => {
            let status = if c.new_chat_member.is_banned() || c.new_chat_member.is_left() {
                "removed from"
            } else {
                "changed in"
            };
            Event::Skip(format!("the bot was {status} chat {}", c.chat.id.0))
        }
        UpdateKind::Error(v) => Event::Skip(format!(
            "an update kind Krake does not know or could not read ({})",
            v.as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_else(|| "not an object".into())
        )),
        other => Event::Skip(format!(
            "an update Krake does not use ({})",
            kind_name(other)
        )),
    }
}

fn kind_name(k: &UpdateKind) -> &'static str {
    match k {
        UpdateKind::ChannelPost(_) | UpdateKind::EditedChannelPost(_) => "channel post",
        UpdateKind::InlineQuery(_) | UpdateKind::ChosenInlineResult(_) => "inline query",
        UpdateKind::ChatMember(_) => "chat member",
        UpdateKind::Poll(_) | UpdateKind::PollAnswer(_) => "poll",
        _ => "other",
    }
}

fn message(m: &Message, bot_id: u64) -> Event {
    let Some(from) = m.from.as_ref() else {
        return Event::Skip("a message without a sender (channel or anonymous admin)".into());
    };
    if from.is_bot {
        return Event::Skip("a message from a bot".into());
    }
    let file = m
        .document()
        .map(|d| SentDocument {
            file_id: d.file.id.0.clone(),
            name: d.file_name.clone().unwrap_or_else(|| "document".to_owned()),
            size: u64::from(d.file.size),
        })
        .or_else(|| {
            m.photo()
                .and_then(|sizes| sizes.iter().max_by_key(|p| p.file.size))
                .map(|p| SentDocument {
                    file_id: p.file.id.0.clone(),
                    name: "photo.jpg".to_owned(),
                    size: u64::from(p.file.size),
                })
        });
    let Some(text) = m.text().or(m.caption()).or(file.as_ref().map(|_| "")) else {
        return Event::Skip("a message without text (media, story or service message)".into());
    };
    let reply_to = m.reply_to_message().and_then(|r| {
        // In a forum every message implicitly replies to its topic's first message.
        let topic_root = m.is_topic_message && m.thread_id.is_some_and(|t| t.0 == r.id);
        (!topic_root).then(|| (r.id.0, r.from.as_ref().is_some_and(|u| u.id.0 == bot_id)))
    });
    Event::Message(ChatMessage {
        place: place_of(m),
        private: m.chat.is_private(),
        from: person(from),
        text: text.to_owned(),
        reply_to,
        file,
    })
}

/// Mends older update shapes so teloxide can read them: a user object (`id` and
/// `first_name`) without `is_bot` gets `is_bot: false`. Says whether anything changed.
pub fn mend_old_shapes(v: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Object(o) => {
            let mut changed = false;
            if o.contains_key("id") && o.contains_key("first_name") && !o.contains_key("is_bot") {
                o.insert("is_bot".into(), Value::Bool(false));
                changed = true;
            }
            for (_, child) in o.iter_mut() {
                changed |= mend_old_shapes(child);
            }
            changed
        }
        Value::Array(a) => a.iter_mut().fold(false, |c, x| mend_old_shapes(x) | c),
        _ => false,
    }
}

/// Where a message was written: its chat, and its topic in a forum supergroup. (Reply threads
/// in ordinary supergroups carry a `message_thread_id` too; answers go to the chat.)
pub fn place_of(m: &Message) -> Place {
    match m.thread_id.filter(|_| m.is_topic_message) {
        Some(t) => Place::topic(m.chat.id.0, t.0.0),
        None => Place::chat(m.chat.id.0),
    }
}

fn person(u: &User) -> Person {
    Person {
        id: u.id.0,
        display: u
            .username
            .as_ref()
            .map(|n| format!("@{n}"))
            .unwrap_or_else(|| u.first_name.clone()),
    }
}

/// The text meant for Krake, or `None` when a group message is not for the bot. In private
/// chats every text is; in groups commands (for this bot or no bot in particular), mentions of
/// the bot and replies to the bot are. `/cmd@thisbot` becomes `/cmd`; a mention is removed.
pub fn addressed_text(msg: &ChatMessage, me: &BotIdentity) -> Option<String> {
    let text = msg.text.trim();
    if let Some(rest) = text.strip_prefix('/') {
        let (head, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let name = match head.split_once('@') {
            Some((name, bot)) if bot.eq_ignore_ascii_case(&me.username) => name,
            Some(_) => return None,
            None => head,
        };
        if name.is_empty() {
            return msg.private.then(|| text.to_owned());
        }
        // Telegram's convention: `/start` (with an optional deep-link payload) opens a chat
        // with a bot; Krake answers it with its help.
        if name == "start" {
            return Some("/help".to_owned());
        }
        let tail = tail.trim();
        return Some(if tail.is_empty() {
            format!("/{name}")
        } else {
            format!("/{name} {tail}")
        });
    }
    if msg.private || msg.reply_to.is_some_and(|(_, to_bot)| to_bot) {
        return Some(text.to_owned());
    }
    let mention = format!("@{}", me.username);
    // ASCII lowercasing keeps byte offsets (usernames are ASCII).
    let lower = text.to_ascii_lowercase();
    lower.find(&mention.to_ascii_lowercase()).map(|at| {
        let without = format!("{}{}", &text[..at], &text[at + mention.len()..]);
        without
            .trim()
            .trim_start_matches([',', ':'])
            .trim()
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> BotIdentity {
        BotIdentity {
            id: 999,
            username: "KrakeBot".into(),
        }
    }

    fn msg(text: &str, private: bool, reply_to: Option<(i32, bool)>) -> ChatMessage {
        ChatMessage {
            place: Place::chat(if private { 5 } else { -5 }),
            private,
            from: Person {
                id: 1,
                display: "a".into(),
            },
            text: text.into(),
            reply_to,
            file: None,
        }
    }

    #[test]
    fn documents_and_photos_carry_their_file() {
        let doc: Update = serde_json::from_str(
            &serde_json::json!({
                "update_id": 7,
                "message": {
                    "message_id": 9, "date": 1_795_503_000,
                    "from": {"id": 42, "is_bot": false, "first_name": "Ana"},
                    "chat": {"id": 42, "type": "private", "first_name": "Ana"},
                    "caption": "/learn monarch",
                    "document": {"file_name": "returns.pdf", "mime_type": "application/pdf",
                        "file_id": "F1", "file_unique_id": "U1", "file_size": 1234}
                }
            })
            .to_string(),
        )
        .expect("update");
        let Event::Message(m) = convert(&doc, 1) else {
            panic!("{:?}", convert(&doc, 1))
        };
        assert_eq!(m.text, "/learn monarch");
        assert_eq!(
            m.file,
            Some(SentDocument {
                file_id: "F1".into(),
                name: "returns.pdf".into(),
                size: 1234
            })
        );
        let photo: Update = serde_json::from_str(&serde_json::json!({
            "update_id": 8,
            "message": {
                "message_id": 10, "date": 1_795_503_000,
                "from": {"id": 42, "is_bot": false, "first_name": "Ana"},
                "chat": {"id": 42, "type": "private", "first_name": "Ana"},
                "photo": [
                    {"file_id": "S", "file_unique_id": "s", "width": 90, "height": 90, "file_size": 10},
                    {"file_id": "L", "file_unique_id": "l", "width": 900, "height": 900, "file_size": 900}
                ]
            }
        }).to_string())
        .expect("update");
        let Event::Message(m) = convert(&photo, 1) else {
            panic!("{:?}", convert(&photo, 1))
        };
        assert_eq!(m.text, "");
        assert_eq!(
            m.file.map(|f| (f.file_id, f.name)),
            Some(("L".into(), "photo.jpg".into()))
        );
    }

    #[test]
    fn old_shapes_are_mended() {
        let mut v = serde_json::json!({
            "update_id": 1,
            "message": {"from": {"id": 1, "first_name": "A"}, "chat": {"id": 1, "type": "private", "first_name": "A"},
                        "reply_to_message": {"from": {"id": 2, "first_name": "B", "is_bot": true}}}
        });
        assert!(mend_old_shapes(&mut v));
        assert_eq!(v["message"]["from"]["is_bot"], false);
        assert_eq!(v["message"]["reply_to_message"]["from"]["is_bot"], true);
        assert!(!mend_old_shapes(&mut v), "nothing left to mend");
    }

    #[test]
    fn private_chats_get_everything() {
        assert_eq!(
            addressed_text(&msg("what's open?", true, None), &me()).as_deref(),
            Some("what's open?")
        );
    }

    #[test]
    fn groups_get_commands_mentions_and_replies() {
        let m = me();
        let a = |t: &str, r| addressed_text(&msg(t, false, r), &m);
        assert_eq!(
            a("/todo@krakebot lunavo", None).as_deref(),
            Some("/todo lunavo")
        );
        assert_eq!(a("/todo", None).as_deref(), Some("/todo"));
        assert_eq!(a("/todo@otherbot", None), None);
        assert_eq!(a("hello all", None), None);
        assert_eq!(
            a("@KrakeBot what's open?", None).as_deref(),
            Some("what's open?")
        );
        assert_eq!(a("@krakebot: list", None).as_deref(), Some("list"));
        assert_eq!(a("é @krakebot", None).as_deref(), Some("é"));
        assert_eq!(a("sure", Some((7, true))).as_deref(), Some("sure"));
        assert_eq!(a("sure", Some((7, false))), None);
        assert_eq!(a("/start", None).as_deref(), Some("/help"));
        assert_eq!(a("/start@krakebot ref42", None).as_deref(), Some("/help"));
    }
}
