//! Customers on a shop's own pages: the customer widget's publishable keys, its visitors and
//! their conversations with the workspace's customer-service agent.
//!
//! - A **publishable key** (`kpub_…`) is made by an owner of a workspace for that workspace and
//!   one agent (Cassie by default), with the origins (sites) allowed to use it, and can be
//!   revoked. It sits in the shop's page source, so it grants nothing but chatting with that
//!   agent as an anonymous visitor; only its SHA-256 is stored.
//! - A **visitor** is an anonymous guest holding a visitor token (`kvis_…`, kept in the
//!   browser's local storage, stored hashed here) that resumes their conversation after a
//!   reload. A visitor sees only their own conversation: never the inbox, KPIs or anyone else.
//! - What a visitor writes goes through core's one accept path as [`Front::Visitor`]
//!   ([`chat`]): it is never a command; it is a question for the key's agent, which answers
//!   from the knowledge base, or hands over to the team (an escalation thread in the inbox).
//! - Everything that reaches a visitor (the agent's answer, Krake's notices, the team's
//!   replies in the thread) is queued in the outbox for `visitor:<id>` in the transaction that
//!   made it, and kept in the conversation by the web front's sender once per outbox message
//!   ([`VisitorRepo::append_message`] with the message's key).

pub mod chat;

use crate::actor::{Actor, Front, Role, UserName};
use crate::outbox::Destination;
use crate::ports::RepoError;
use crate::time::Timestamp;
use crate::workspace::WorkspaceSlug;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;

/// A publishable key's prefix.
pub const KEY_PREFIX: &str = "kpub_";
/// A visitor token's prefix.
pub const TOKEN_PREFIX: &str = "kvis_";
/// The agent a key chats with when none is named.
pub const DEFAULT_AGENT: &str = "Cassie";
/// The front part of a visitor's destination (`visitor:42`).
pub const FRONT: &str = "visitor";
/// Longest message a visitor may send, in characters.
pub const MAX_MESSAGE_CHARS: usize = 2_000;
/// Messages of a conversation sent back when a visitor resumes it.
pub const HISTORY: u32 = 200;

/// A publishable key's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyId(pub i64);

/// A visitor's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VisitorId(pub i64);

impl fmt::Display for VisitorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl VisitorId {
    /// Where what is sent to this visitor is queued (`visitor:42`).
    pub fn destination(self) -> Option<Destination> {
        Destination::parse(&format!("{FRONT}:{}", self.0)).ok()
    }

    /// The visitor a destination names, when it is a visitor's.
    pub fn of(destination: &Destination) -> Option<Self> {
        destination
            .as_str()
            .strip_prefix("visitor:")
            .and_then(|n| n.parse().ok())
            .map(Self)
    }
}

/// A publishable key as stored (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishableKey {
    /// Its id.
    pub id: KeyId,
    /// The key's first characters (`kpub_3f9a2c`), to tell keys apart and revoke one.
    pub prefix: String,
    /// The workspace its visitors chat with.
    pub workspace: WorkspaceSlug,
    /// The agent that answers them.
    pub agent: String,
    /// The origins (`https://shop.example.com`) whose pages may use it.
    pub origins: Vec<String>,
    /// The owner who made it.
    pub created_by: String,
    /// When.
    pub created_at: Timestamp,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

impl PublishableKey {
    /// Whether a page of `origin` may use the key (exact match of scheme, host and port).
    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }
}

/// A key to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// The workspace.
    pub workspace: WorkspaceSlug,
    /// The agent; [`DEFAULT_AGENT`] when `None`.
    pub agent: Option<String>,
    /// Allowed origins (at least one).
    pub origins: Vec<String>,
}

/// A visitor, with what their key allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visitor {
    /// Their id.
    pub id: VisitorId,
    /// The key they came in with.
    pub key: KeyId,
    /// The workspace they chat with.
    pub workspace: WorkspaceSlug,
    /// The agent that answers them.
    pub agent: String,
    /// When they first came.
    pub created_at: Timestamp,
}

impl Visitor {
    /// The actor a visitor's messages are accepted as: a guest with no role anywhere,
    /// through [`Front::Visitor`], whose external id is the visitor's id.
    pub fn actor(&self) -> Actor {
        let user = UserName::parse(&format!("visitor-{}", self.id.0))
            .unwrap_or_else(|_| UserName::local());
        let mut actor = Actor::new(user, Front::Visitor, Role::Guest);
        actor.external_id = Some(self.id.0.to_string());
        actor
    }
}

/// Who wrote a message of a visitor's conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Speaker {
    /// The visitor.
    Visitor,
    /// The key's agent (and Krake's own notices, in the agent's name).
    Agent,
    /// A person of the team, answering in the escalated thread.
    Team,
}

impl Speaker {
    /// The lowercase name stored and sent to the widget.
    pub fn as_str(self) -> &'static str {
        match self {
            Speaker::Visitor => "visitor",
            Speaker::Agent => "agent",
            Speaker::Team => "team",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "visitor" => Speaker::Visitor,
            "agent" => Speaker::Agent,
            "team" => Speaker::Team,
            _ => return None,
        })
    }
}

/// One message of a visitor's conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VisitorMessage {
    /// Its place in the conversation (increasing; the widget shows each once).
    pub seq: i64,
    /// Who wrote it.
    pub from: Speaker,
    /// The name shown with it (the agent's, the team member's); `None` for the visitor.
    pub name: Option<String>,
    /// The text.
    pub text: String,
    /// When it was kept.
    pub at: Timestamp,
}

impl VisitorMessage {
    /// The sources an answer cites (`returns-policy.pdf §2`), in order, once each.
    pub fn citations(&self) -> Vec<String> {
        citations(&self.text)
    }
}

/// A message to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewVisitorMessage<'a> {
    /// Who wrote it.
    pub from: Speaker,
    /// The name shown with it.
    pub name: Option<&'a str>,
    /// The text.
    pub text: &'a str,
}

/// Where publishable keys, visitors and their conversations are kept.
#[async_trait]
pub trait VisitorRepo: Send + Sync {
    /// Stores a new key under its hash.
    async fn create_key(
        &self,
        key: &NewKey,
        agent: &str,
        hash: &str,
        prefix: &str,
        by: &UserName,
        now: Timestamp,
    ) -> Result<PublishableKey, RepoError>;
    /// Every key (of one workspace, or all), newest first.
    async fn keys(
        &self,
        workspace: Option<&WorkspaceSlug>,
    ) -> Result<Vec<PublishableKey>, RepoError>;
    /// Revokes the keys whose prefix starts with `prefix` (at least 9 characters); returns the
    /// keys so matched (already revoked ones keep their first revocation time).
    async fn revoke_keys(
        &self,
        prefix: &str,
        now: Timestamp,
    ) -> Result<Vec<PublishableKey>, RepoError>;
    /// The key stored under `hash`.
    async fn key_by_hash(&self, hash: &str) -> Result<Option<PublishableKey>, RepoError>;
    /// A new visitor of `key` holding the token hashed as `token_hash`.
    async fn create_visitor(
        &self,
        key: KeyId,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Visitor, RepoError>;
    /// The visitor of `key` holding the token hashed as `token_hash`.
    async fn visitor_by_token(
        &self,
        key: KeyId,
        token_hash: &str,
    ) -> Result<Option<Visitor>, RepoError>;
    /// A visitor by id (with their key's workspace and agent).
    async fn visitor(&self, id: VisitorId) -> Result<Option<Visitor>, RepoError>;
    /// Keeps a message of `visitor`'s conversation once per `key`: `None` when a message with
    /// that key is already kept.
    async fn append_message(
        &self,
        visitor: VisitorId,
        message: &NewVisitorMessage<'_>,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<VisitorMessage>, RepoError>;
    /// The conversation's messages after `after`, oldest first, at most `limit` (the newest
    /// `limit` when there are more).
    async fn messages(
        &self,
        visitor: VisitorId,
        after: i64,
        limit: u32,
    ) -> Result<Vec<VisitorMessage>, RepoError>;
}

/// SHA-256 (hex) of a key or token, as stored.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Why a publishable key could not be made, listed or revoked.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Only owners manage keys.
    #[error("only an owner of {0} can manage its publishable keys")]
    NotOwner(WorkspaceSlug),
    /// No such workspace.
    #[error("there is no workspace `{0}`; see /workspaces")]
    NoWorkspace(String),
    /// No such agent.
    #[error("there is no agent called {0}; see /agents")]
    NoAgent(String),
    /// An origin is not `scheme://host[:port]`.
    #[error(
        "`{0}` is not an origin: write it as https://shop.example.com (scheme, host and port only, no path)"
    )]
    BadOrigin(String),
    /// No origin given.
    #[error(
        "a publishable key needs the site(s) that may use it: add --origin https://shop.example.com"
    )]
    NoOrigin,
    /// The generated key does not look like one.
    #[error("a publishable key starts with kpub_ and has at least 24 more characters")]
    BadKey,
    /// A prefix too short to name one key.
    #[error(
        "name the key by at least its first 9 characters (kpub_ and 4 more), as `krake key list` shows them"
    )]
    ShortPrefix,
    /// No key matches.
    #[error("no publishable key starts with `{0}`; see `krake key list`")]
    NoKey(String),
    /// The store failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// Why a visitor's widget was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not a key this Krake made.
    #[error(
        "This chat is not set up correctly (unknown key). If you run this site, check the widget's data-key."
    )]
    BadKey,
    /// The key was revoked.
    #[error("This chat is no longer available on this site.")]
    Revoked,
    /// The page's site is not among the key's origins.
    #[error(
        "This chat is not enabled for this site. If you run it, add its origin to the key (krake key create … --origin)."
    )]
    Origin,
}

impl Refused {
    /// The error code the widget receives (`bad_key`, `revoked`, `origin`).
    pub fn code(&self) -> &'static str {
        match self {
            Refused::BadKey => "bad_key",
            Refused::Revoked => "revoked",
            Refused::Origin => "origin",
        }
    }
}

/// A visitor let in: who they are, the token to keep (new or the one they came with), the
/// workspace's name and the conversation so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// The visitor.
    pub visitor: Visitor,
    /// Their token.
    pub token: String,
    /// The workspace's name (`Lunavo`).
    pub title: String,
    /// The conversation so far (the last [`HISTORY`] messages).
    pub history: Vec<VisitorMessage>,
}

/// The customer widget's rules: making and revoking keys, letting visitors in.
#[derive(Clone)]
pub struct Visitors {
    repo: Arc<dyn VisitorRepo>,
    directory: Arc<crate::config::Directory>,
    clock: Arc<dyn crate::time::Clock>,
}

impl Visitors {
    /// The rules over `repo`, for the workspaces and agents of `directory`.
    pub fn new(
        repo: Arc<dyn VisitorRepo>,
        directory: Arc<crate::config::Directory>,
        clock: Arc<dyn crate::time::Clock>,
    ) -> Self {
        Self {
            repo,
            directory,
            clock,
        }
    }

    /// The store.
    pub fn repo(&self) -> &Arc<dyn VisitorRepo> {
        &self.repo
    }

    /// Makes a publishable key `key` (generated by the caller: `kpub_` and random characters)
    /// for `actor`, an owner of the workspace.
    pub async fn create_key(
        &self,
        actor: &Actor,
        new: &NewKey,
        key: &str,
    ) -> Result<PublishableKey, KeyError> {
        if self.directory.workspace(&new.workspace).is_none() {
            return Err(KeyError::NoWorkspace(new.workspace.to_string()));
        }
        if actor.role_in(&new.workspace) < Role::Owner {
            return Err(KeyError::NotOwner(new.workspace.clone()));
        }
        let wanted = new.agent.as_deref().unwrap_or(DEFAULT_AGENT);
        let agent = self
            .directory
            .agent(wanted)
            .ok_or_else(|| KeyError::NoAgent(wanted.to_owned()))?;
        if new.origins.is_empty() {
            return Err(KeyError::NoOrigin);
        }
        let mut origins = Vec::with_capacity(new.origins.len());
        for o in &new.origins {
            origins.push(origin(o).ok_or_else(|| KeyError::BadOrigin(o.clone()))?);
        }
        let rest = key.strip_prefix(KEY_PREFIX).ok_or(KeyError::BadKey)?;
        if rest.len() < 24 || !rest.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(KeyError::BadKey);
        }
        let new = NewKey {
            origins,
            ..new.clone()
        };
        Ok(self
            .repo
            .create_key(
                &new,
                agent.name.as_str(),
                &hash(key),
                &key[..KEY_PREFIX.len() + 6],
                &actor.user,
                self.clock.now(),
            )
            .await?)
    }

    /// The keys of the workspaces `actor` owns (of one workspace when named).
    pub async fn keys(
        &self,
        actor: &Actor,
        workspace: Option<&WorkspaceSlug>,
    ) -> Result<Vec<PublishableKey>, KeyError> {
        if let Some(w) = workspace
            && actor.role_in(w) < Role::Owner
        {
            return Err(KeyError::NotOwner(w.clone()));
        }
        Ok(self
            .repo
            .keys(workspace)
            .await?
            .into_iter()
            .filter(|k| actor.role_in(&k.workspace) >= Role::Owner)
            .collect())
    }

    /// Revokes the key whose prefix starts with `prefix`, for an owner of its workspace. Its
    /// visitors are refused from then on (open widgets at their next message).
    pub async fn revoke(
        &self,
        actor: &Actor,
        prefix: &str,
    ) -> Result<Vec<PublishableKey>, KeyError> {
        if prefix.len() < KEY_PREFIX.len() + 4 || !prefix.starts_with(KEY_PREFIX) {
            return Err(KeyError::ShortPrefix);
        }
        let mine: Vec<PublishableKey> = self
            .repo
            .keys(None)
            .await?
            .into_iter()
            .filter(|k| k.prefix.starts_with(prefix) || prefix.starts_with(&k.prefix))
            .collect();
        if mine.is_empty() {
            return Err(KeyError::NoKey(prefix.to_owned()));
        }
        if let Some(k) = mine
            .iter()
            .find(|k| actor.role_in(&k.workspace) < Role::Owner)
        {
            return Err(KeyError::NotOwner(k.workspace.clone()));
        }
        let prefix = if prefix.len() > mine[0].prefix.len() {
            &prefix[..mine[0].prefix.len()]
        } else {
            prefix
        };
        Ok(self.repo.revoke_keys(prefix, self.clock.now()).await?)
    }

    /// The key `key` if a page of `origin` may use it now.
    pub async fn check(&self, key: &str, origin: Option<&str>) -> Result<PublishableKey, Refused> {
        if !key.starts_with(KEY_PREFIX) || key.len() > 128 {
            return Err(Refused::BadKey);
        }
        let Ok(Some(k)) = self.repo.key_by_hash(&hash(key)).await else {
            return Err(Refused::BadKey);
        };
        if k.revoked_at.is_some() {
            return Err(Refused::Revoked);
        }
        // A browser always sends Origin on a WebSocket upgrade; none means not a page.
        match origin {
            Some(o) if k.allows(o) => Ok(k),
            _ => Err(Refused::Origin),
        }
    }

    /// Lets a visitor in with `key` from a page of `origin`: resumes the conversation of
    /// `token` (a visitor of the same key), or starts one with `new_token` (`kvis_…`, made by
    /// the caller), whose token is then the one to keep.
    pub async fn open(
        &self,
        key: &str,
        origin: Option<&str>,
        token: Option<&str>,
        new_token: impl FnOnce() -> String,
    ) -> Result<Result<Welcome, Refused>, RepoError> {
        let k = match self.check(key, origin).await {
            Ok(k) => k,
            Err(r) => return Ok(Err(r)),
        };
        let known = match token.filter(|t| t.starts_with(TOKEN_PREFIX) && t.len() <= 128) {
            Some(t) => self
                .repo
                .visitor_by_token(k.id, &hash(t))
                .await?
                .map(|v| (v, t.to_owned())),
            None => None,
        };
        let (visitor, token) = match known {
            Some(found) => found,
            None => {
                let t = new_token();
                let v = self
                    .repo
                    .create_visitor(k.id, &hash(&t), self.clock.now())
                    .await?;
                (v, t)
            }
        };
        let history = self.repo.messages(visitor.id, 0, HISTORY).await?;
        let title = self
            .directory
            .workspace(&visitor.workspace)
            .map_or_else(|| visitor.workspace.to_string(), |w| w.name.clone());
        Ok(Ok(Welcome {
            visitor,
            token,
            title,
            history,
        }))
    }

    /// Whether `visitor` may still chat: their key exists and is not revoked.
    pub async fn still_allowed(&self, visitor: &Visitor) -> Result<Result<(), Refused>, RepoError> {
        let keys = self.repo.keys(Some(&visitor.workspace)).await?;
        Ok(match keys.iter().find(|k| k.id == visitor.key) {
            Some(k) if k.revoked_at.is_none() => Ok(()),
            Some(_) => Err(Refused::Revoked),
            None => Err(Refused::BadKey),
        })
    }

    /// The conversation's messages after `after` (for a widget catching up).
    pub async fn messages_after(
        &self,
        visitor: VisitorId,
        after: i64,
    ) -> Result<Vec<VisitorMessage>, RepoError> {
        self.repo.messages(visitor, after, HISTORY).await
    }
}

/// `scheme://host[:port]` of an origin as typed (lowercased, no trailing slash), when it is one.
pub fn origin(s: &str) -> Option<String> {
    let s = s.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, rest) = s.split_once("://")?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.len() > 200 {
        return None;
    }
    let ok = rest
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    ok.then_some(s)
}

/// The sources a text cites (`returns-policy.pdf §2`): a word with a dot in it followed by
/// `§` and a number, in order, once each.
pub fn citations(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let words: Vec<&str> = text.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        let Some(num) = w.strip_prefix('§') else {
            continue;
        };
        let num: String = num.chars().take_while(char::is_ascii_digit).collect();
        let Some(prev) = i.checked_sub(1).and_then(|p| words.get(p)) else {
            continue;
        };
        let name = prev.trim_start_matches(['(', '[', '"', '`']);
        if num.is_empty() || !name.contains('.') {
            continue;
        }
        let c = format!("{name} §{num}");
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert_eq!(
            origin("HTTPS://Shop.Example.com/").as_deref(),
            Some("https://shop.example.com")
        );
        assert_eq!(
            origin("http://127.0.0.1:8081").as_deref(),
            Some("http://127.0.0.1:8081")
        );
        for bad in [
            "shop.example.com",
            "ftp://x",
            "https://",
            "https://x/path",
            "https://x?q",
            "javascript://x",
        ] {
            assert_eq!(origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn citations_are_found_once_in_order() {
        let t = "You have 30 days (returns-policy.pdf §2). Shipping is free over €50 (shipping.md §1); see returns-policy.pdf §2.";
        assert_eq!(
            citations(t),
            vec![
                "returns-policy.pdf §2".to_owned(),
                "shipping.md §1".to_owned()
            ]
        );
        assert!(citations("Section § 3 of nothing").is_empty());
    }

    #[test]
    fn a_visitor_is_a_guest_with_no_role_anywhere() {
        let v = Visitor {
            id: VisitorId(7),
            key: KeyId(1),
            workspace: WorkspaceSlug::parse("lunavo").unwrap(),
            agent: "Cassie".into(),
            created_at: Timestamp::from_millis(0),
        };
        let a = v.actor();
        assert_eq!(a.front, Front::Visitor);
        assert_eq!(a.role_in(&v.workspace), Role::Guest);
        assert!(!a.can_see(&v.workspace));
        assert_eq!(a.external_id.as_deref(), Some("7"));
        let d = v.id.destination().unwrap();
        assert_eq!(d.as_str(), "visitor:7");
        assert_eq!(VisitorId::of(&d), Some(VisitorId(7)));
    }
}
