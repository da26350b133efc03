//! A place in Telegram where Krake writes: a chat, or a topic of a forum supergroup.

use krake_core::outbox::Destination;
use std::fmt;

/// A chat, optionally narrowed to a forum topic (`message_thread_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Place {
    /// The chat id (negative for groups).
    pub chat: i64,
    /// The forum topic, if any.
    pub topic: Option<i32>,
}

/// Why a destination is not a Telegram place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Telegram destination (telegram:<chat id> or telegram:<chat id>:topic:<id>): `{0}`")]
pub struct PlaceError(String);

impl Place {
    /// A whole chat.
    pub fn chat(chat: i64) -> Self {
        Self { chat, topic: None }
    }

    /// A forum topic of a chat.
    pub fn topic(chat: i64, topic: i32) -> Self {
        Self {
            chat,
            topic: Some(topic),
        }
    }

    /// Parses `telegram:<chat>` or `telegram:<chat>:topic:<id>`.
    pub fn parse(destination: &Destination) -> Result<Self, PlaceError> {
        let bad = || PlaceError(destination.as_str().chars().take(100).collect());
        let rest = destination
            .as_str()
            .strip_prefix("telegram:")
            .ok_or_else(bad)?;
        let mut parts = rest.split(':');
        let chat = parts
            .next()
            .and_then(|c| c.parse::<i64>().ok())
            .ok_or_else(bad)?;
        match (parts.next(), parts.next(), parts.next()) {
            (None, _, _) => Ok(Self::chat(chat)),
            (Some("topic"), Some(t), None) => {
                let topic = t.parse::<i32>().ok().filter(|t| *t > 0).ok_or_else(bad)?;
                Ok(Self::topic(chat, topic))
            }
            _ => Err(bad()),
        }
    }

    /// The outbox destination of this place.
    pub fn destination(&self) -> Destination {
        match Destination::parse(&self.to_string()) {
            Ok(d) => d,
            // `telegram:` followed by digits is always a valid destination.
            Err(_) => unreachable!("a Telegram place is a valid destination"),
        }
    }

    /// Whether the chat is a group (groups have negative ids and a tighter rate limit).
    pub fn is_group(&self) -> bool {
        self.chat < 0
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.topic {
            Some(t) => write!(f, "telegram:{}:topic:{t}", self.chat),
            None => write!(f, "telegram:{}", self.chat),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for p in [
            Place::chat(42),
            Place::chat(-1001847508954),
            Place::topic(-100, 4),
        ] {
            assert_eq!(Place::parse(&p.destination()), Ok(p));
        }
        assert_eq!(
            Place::topic(-100, 4).destination().as_str(),
            "telegram:-100:topic:4"
        );
    }

    #[test]
    fn refuses_others() {
        for bad in [
            "discord:channel:1",
            "telegram:abc",
            "telegram:1:topic:x",
            "telegram:1:topic:0",
            "telegram:1:thread:2",
            "telegram:1:topic:2:3",
        ] {
            let d = Destination::parse(bad).unwrap();
            assert!(Place::parse(&d).is_err(), "{bad}");
        }
    }
}
