//! Natural phrasings ("what's open in lunavo?", "approve 12", "archive #7", "ask penn to draft a
//! tagline for the hoodie"): greetings and filler words dropped, the rest read as a command.

use super::parser::{Verb, closest_verb, split_word, strip_words, take_any_id, take_id, verb};
use super::{Command, CommandParser, Parsed};
use crate::schedule::{parse_natural_schedule, starts_like_schedule};

const GREETINGS: &[&str] = &["hello", "hi", "hey", "hallo", "yo", "morning", "start"];

const FILLER: &[&str] = &[
    "please", "pls", "can", "could", "would", "you", "kindly", "krake", "hey", "hi", "ok", "okay",
    "now", "just", "go", "ahead", "and", "i", "want", "to", "let's", "lets",
];

impl CommandParser {
    pub(super) fn parse_natural(&self, input: &str) -> Parsed {
        let cleaned = input.trim_end_matches(['?', '!', '.']).trim();
        // "every weekday at 8 have Soshie draft today's post", "pause schedule 3"
        if starts_like_schedule(cleaned) {
            return self.schedule(cleaned);
        }
        if let Some(c) = parse_natural_schedule(cleaned) {
            return Parsed::Command(Command::Schedule(c));
        }
        // "penn, draft a tagline" / "have soshie draft today's post"
        let (first, rest) = split_word(cleaned);
        let first_l = first.trim_end_matches([',', ':']).to_lowercase();
        if first.ends_with([',', ':']) && self.agents.iter().any(|a| a.matches(&first_l)) {
            return self.ask(cleaned);
        }
        if first_l == "have" || first_l == "get" {
            let (name, _) = split_word(rest);
            if self.agents.iter().any(|a| a.matches(name)) {
                return self.ask(rest);
            }
        }
        // Skip polite filler, then look for a verb.
        let mut text = cleaned;
        loop {
            let (w, r) = split_word(text);
            if w.is_empty() {
                break;
            }
            let wl = w.trim_end_matches(',').to_lowercase();
            if FILLER.contains(&wl.as_str()) {
                text = r;
                continue;
            }
            if let Some(v) = verb(&wl) {
                // "show me the escalations" is a listing, "show 12" / "show me #12" a thread.
                if v == Verb::Show {
                    let r2 = strip_words(r, &["me", "thread", "the"]);
                    if take_id(r2).is_some() {
                        return self.with_args(Verb::Show, r2, false);
                    }
                    return self.natural_list(r);
                }
                if v == Verb::List {
                    return self.natural_list(r);
                }
                return self.with_args(v, r, false);
            }
            break;
        }
        let lower = cleaned.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-'))
            .filter(|w| !w.is_empty())
            .collect();
        if words.contains(&"overview") {
            return Parsed::Command(Command::Overview);
        }
        let kpi_words = ["sales", "revenue", "kpi", "kpis", "turnover", "numbers"];
        if words.iter().any(|w| kpi_words.contains(w)) {
            return Parsed::Command(Command::Kpi {
                workspace: self.find_workspace(&lower),
            });
        }
        let listy = [
            "open",
            "pending",
            "todo",
            "todos",
            "inbox",
            "escalations",
            "approvals",
            "questions",
            "notices",
            "waiting",
            "outstanding",
            "what's",
            "whats",
            "anything",
            "list",
        ];
        if words.iter().any(|w| listy.contains(w)) && take_any_id(&lower).is_none() {
            return self.natural_list(cleaned);
        }
        if words.first().is_some_and(|w| GREETINGS.contains(w)) {
            return Parsed::Command(Command::Help { topic: None });
        }
        let suggestion = words.first().and_then(|w| closest_verb(w)).map(|name| {
            let rest = cleaned
                .split_once(char::is_whitespace)
                .map(|(_, r)| r.trim())
                .unwrap_or("");
            if rest.is_empty() {
                format!("/{name}")
            } else {
                format!("/{name} {rest}")
            }
        });
        Parsed::NotUnderstood {
            problem: "I did not understand that".to_owned(),
            suggestion: suggestion.or_else(|| Some("/help".to_owned())),
        }
    }

    fn natural_list(&self, text: &str) -> Parsed {
        match self.list_query(text, false) {
            Ok(q) => Parsed::Command(Command::List(q)),
            Err(p) => p,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::AgentName;
    use crate::chat::command::parser::tests::{cmd, ws};
    use crate::chat::command::{ListQuery, StatusFilter};
    use crate::inbox::{ThreadId, ThreadKind};

    #[test]
    fn natural_phrasings() {
        assert_eq!(
            cmd("what's open in lunavo?"),
            Command::List(ListQuery {
                workspace: ws("lunavo"),
                ..Default::default()
            })
        );
        assert_eq!(
            cmd("show me the escalations"),
            Command::List(ListQuery {
                kind: Some(ThreadKind::Escalation),
                ..Default::default()
            })
        );
        assert_eq!(cmd("approve 12"), Command::Approve(ThreadId(12)));
        assert_eq!(cmd("Please approve #12"), Command::Approve(ThreadId(12)));
        assert_eq!(cmd("archive #7"), Command::Archive(ThreadId(7)));
        assert_eq!(cmd("show me #4"), Command::Show(ThreadId(4)));
        assert_eq!(
            cmd("reject 5 because the price is wrong"),
            Command::Reject {
                id: ThreadId(5),
                reason: Some("the price is wrong".into())
            }
        );
        assert_eq!(
            cmd("reply to 9: ship it friday"),
            Command::Reply {
                id: ThreadId(9),
                text: "ship it friday".into()
            }
        );
        assert_eq!(
            cmd("ask penn to draft a tagline for the hoodie"),
            Command::Ask {
                agent: AgentName::parse("Penn").unwrap(),
                text: "draft a tagline for the hoodie".into()
            }
        );
        assert_eq!(
            cmd("Soshie, draft today's post"),
            Command::Ask {
                agent: AgentName::parse("Soshie").unwrap(),
                text: "draft today's post".into()
            }
        );
        assert_eq!(
            cmd("any approvals waiting in Hard Life Mode?"),
            Command::List(ListQuery {
                workspace: ws("hard-life-mode"),
                kind: Some(ThreadKind::Approval),
                status: StatusFilter::Open
            })
        );
        assert_eq!(cmd("hello"), Command::Help { topic: None });
        assert_eq!(cmd("hello there"), Command::Help { topic: None });
    }
}
