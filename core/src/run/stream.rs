//! Answers shown as they are produced, where they were asked.
//!
//! A run started from a chat knows its **answer destination** (the chat, channel or web
//! session it was asked in). While its model streams, [`AnswerStream`] shows the answer so far
//! there: a typing indicator while the run works, then one message opened with the first words
//! and edited as more arrive, at most once per [`Sender::stream_interval`] (a second on
//! Telegram and Discord; every change on the web socket), coalescing what arrived meanwhile,
//! and waiting out a 429 rather than dropping the stream. These live edits are best-effort and
//! bypass the outbox; the **final** text goes through the outbox (keyed by the run, so it is
//! delivered once, even after a crash mid-stream) as an edit of the same message
//! (the message's id is stored with the run, so a resumed run edits it too), or as a message of
//! its own when nothing was streamed. Either way the final text is the answer the run ended
//! with, exactly as it reads unstreamed.

use super::{RunId, RunRepo};
use crate::delivery::{Delivery, SendError, Sender};
use crate::model::Partial;
use crate::outbox::Destination;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often the typing indicator is renewed (Telegram shows it for five seconds).
const TYPING_EVERY: Duration = Duration::from_secs(4);

/// What the person would see of a partial answer: the `text` of a `reply` call, or the
/// plain text when no tool is being called (a small model answering in prose). `None` while
/// there is nothing to show (a tool other than `reply`, or no words yet).
pub fn visible(p: Partial<'_>) -> Option<String> {
    if let Some(reply) = p.tool_calls.iter().find(|c| c.name.trim() == "reply") {
        return partial_string_field(&reply.arguments, "text").filter(|t| !t.trim().is_empty());
    }
    if p.tool_calls.is_empty() {
        let t = p.content.trim_start();
        // An answer written as JSON (`{"text": …}`) shows its text, not its braces.
        if t.starts_with('{') || t.starts_with("```") {
            return partial_string_field(t, "text").filter(|t| !t.trim().is_empty());
        }
        if !t.trim().is_empty() {
            return Some(t.to_owned());
        }
    }
    None
}

/// The value of string field `field` in a JSON object that may be cut off anywhere: what
/// is there of it so far, escapes decoded, an escape cut in half left out.
pub fn partial_string_field(json: &str, field: &str) -> Option<String> {
    let key = format!("\"{field}\"");
    let mut from = 0;
    let rest = loop {
        let at = json[from..].find(&key)? + from;
        let after = json[at + key.len()..].trim_start();
        if let Some(v) = after.strip_prefix(':') {
            break v.trim_start();
        }
        from = at + key.len();
    };
    let mut chars = rest.strip_prefix('"')?.chars();
    let mut out = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('b') => out.push('\u{8}'),
                Some('f') => out.push('\u{c}'),
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        Some(ch) if hex.len() == 4 => out.push(ch),
                        // A surrogate pair or a cut escape: leave it for the final text.
                        _ => break,
                    }
                }
                Some(other) => out.push(other),
                None => break,
            },
            c => out.push(c),
        }
    }
    Some(out)
}

/// Shows one run's answer as it streams to one destination (see the [module](self) docs).
pub struct AnswerStream {
    text: watch::Sender<Option<String>>,
    task: tokio::task::JoinHandle<Option<String>>,
}

impl AnswerStream {
    /// Starts streaming `run`'s answer to `destination` through `sender`, editing `message`
    /// if a message was opened before (a resumed run).
    pub fn start(
        sender: Arc<dyn Sender>,
        destination: Destination,
        run: RunId,
        runs: Arc<dyn RunRepo>,
        message: Option<String>,
    ) -> Self {
        let (tx, rx) = watch::channel(None);
        let task = tokio::spawn(pump(sender, destination, run, runs, message, rx));
        Self { text: tx, task }
    }

    /// The answer so far (called from the model's stream; cheap, never waits).
    pub fn update(&self, text: String) {
        self.text.send_if_modified(|old| {
            if old.as_deref() == Some(text.as_str()) {
                false
            } else {
                *old = Some(text);
                true
            }
        });
    }

    /// Stops streaming (the typing indicator too); the id of the message it opened, for the
    /// final edit.
    pub async fn finish(self) -> Option<String> {
        drop(self.text);
        self.task.await.ok().flatten()
    }
}

async fn pump(
    sender: Arc<dyn Sender>,
    destination: Destination,
    run: RunId,
    runs: Arc<dyn RunRepo>,
    mut message: Option<String>,
    mut rx: watch::Receiver<Option<String>>,
) -> Option<String> {
    let every = sender.stream_interval();
    let mut shown: Option<String> = None;
    let mut next_edit = tokio::time::Instant::now();
    let mut next_typing = tokio::time::Instant::now();
    let mut broken = false;
    loop {
        if !broken && shown.is_none() && tokio::time::Instant::now() >= next_typing {
            // Typing while nothing is shown yet; best-effort.
            let _ = sender.send(&destination, &Delivery::Typing).await;
            next_typing = tokio::time::Instant::now() + TYPING_EVERY;
        }
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    // The final text follows through the outbox: not before the interval since
                    // the last edit has passed, so it too keeps to the platform's pace.
                    if shown.is_some() {
                        tokio::time::sleep_until(next_edit).await;
                    }
                    return message;
                }
            }
            () = tokio::time::sleep_until(next_typing), if shown.is_none() && !broken => continue,
        }
        if broken {
            continue;
        }
        // At most one edit per interval: what arrived meanwhile is coalesced.
        tokio::time::sleep_until(next_edit).await;
        let Some(text) = rx.borrow_and_update().clone() else {
            continue;
        };
        if shown.as_deref() == Some(text.as_str()) {
            continue;
        }
        let delivery = Delivery::Stream {
            message_id: message.clone(),
            text: text.clone(),
        };
        match sender.send(&destination, &delivery).await {
            Ok(sent) => {
                if message.is_none()
                    && let Some(id) = sent.message_id
                {
                    if let Err(e) = runs.set_stream_message(run, &id).await {
                        tracing::warn!(run = run.0, error = %e, "could not record the streamed message");
                    }
                    message = Some(id);
                }
                shown = Some(text);
                next_edit = tokio::time::Instant::now() + every;
            }
            Err(SendError::RateLimited(after)) => {
                // The platform's 429: nothing goes there before it has passed.
                next_edit = tokio::time::Instant::now() + after.max(every);
                rx.mark_changed();
            }
            Err(e) => {
                tracing::warn!(run = run.0, error = %e, "streaming stopped; the answer comes whole");
                broken = true;
            }
        }
    }
}

impl super::Runner {
    /// Starts streaming `run`'s answer (a typing indicator at once) when it has somewhere to
    /// go that this process can reach live.
    pub(super) fn open_stream(&self, run: &super::Run) {
        let Some(to) = &run.answer_to else { return };
        let Some(sender) = self.stream_senders.get(to.front()) else {
            return;
        };
        let s = AnswerStream::start(
            sender,
            to.clone(),
            run.id,
            self.runs.clone(),
            run.stream_message.clone(),
        );
        if let Ok(mut m) = self.streams.lock() {
            m.insert(run.id, s);
        }
    }

    /// Whether `run`'s answer is streaming here.
    pub(super) fn streaming(&self, run: RunId) -> bool {
        self.streams.lock().is_ok_and(|m| m.contains_key(&run))
    }

    /// The answer so far of `run`.
    pub(super) fn stream_update(&self, run: RunId, text: String) {
        if let Ok(m) = self.streams.lock()
            && let Some(s) = m.get(&run)
        {
            s.update(text);
        }
    }

    /// Stops streaming `run`'s answer; the message it opened, if any.
    pub(super) async fn close_stream(&self, run: RunId) -> Option<String> {
        let s = self.streams.lock().ok().and_then(|mut m| m.remove(&run))?;
        s.finish().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ToolCall;

    fn call(name: &str, args: &str) -> ToolCall {
        ToolCall {
            id: "c".into(),
            name: name.into(),
            arguments: args.into(),
        }
    }

    #[test]
    fn the_visible_answer_is_the_reply_text_so_far() {
        let p = |content: &'static str, calls: &'static [ToolCall]| Partial {
            content,
            tool_calls: calls,
        };
        assert_eq!(
            partial_string_field(r#"{"text": "Navy ni"#, "text").as_deref(),
            Some("Navy ni")
        );
        assert_eq!(
            partial_string_field(
                r#"{"confidence": 0.9, "text" : "a \"b\"\nc\u00e9"}"#,
                "text"
            )
            .as_deref(),
            Some("a \"b\"\ncé")
        );
        assert_eq!(
            partial_string_field(r#"{"text": "cut \u00"#, "text").as_deref(),
            Some("cut ")
        );
        assert_eq!(
            partial_string_field(r#"{"text": "cut \"#, "text").as_deref(),
            Some("cut ")
        );
        assert_eq!(partial_string_field(r#"{"te"#, "text"), None);
        assert_eq!(
            partial_string_field(r#"{"context": "x", "text": "y"}"#, "text").as_deref(),
            Some("y")
        );
        let reply = [call(" reply", r#"{"text": "Glow"#)];
        assert_eq!(
            visible(p("", Box::leak(Box::new(reply)))).as_deref(),
            Some("Glow")
        );
        let other = [call("search_knowledge", r#"{"query": "x"}"#)];
        assert_eq!(visible(p("thinking", Box::leak(Box::new(other)))), None);
        assert_eq!(
            visible(p("Sure, navy.", &[])).as_deref(),
            Some("Sure, navy.")
        );
        assert_eq!(visible(p("{\"text\": \"Na", &[])).as_deref(), Some("Na"));
        assert_eq!(visible(p("  ", &[])), None);
    }
}
