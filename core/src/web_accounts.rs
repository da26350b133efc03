//! Web sign-in: password hashes of users and server-side sessions. Hashing (argon2) and
//! cookies are the web front's business; core only names what is stored.

use crate::actor::UserName;
use crate::ports::{RepoError, UserRecord};
use crate::time::Timestamp;
use async_trait::async_trait;

/// A signed-in web session, as stored (the session id itself is never stored, only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// The user signed in, with their roles as they are now.
    pub user: UserRecord,
    /// The token forms must carry to change anything (CSRF protection).
    pub csrf: String,
    /// When the session ends.
    pub expires_at: Timestamp,
}

/// Passwords and sessions.
#[async_trait]
pub trait AccountRepo: Send + Sync {
    /// Sets (or replaces) a user's password hash (a PHC string) and ends all of the user's
    /// sessions (a new password signs out everywhere).
    async fn set_password_hash(
        &self,
        user: &UserName,
        hash: &str,
        now: Timestamp,
    ) -> Result<(), RepoError>;
    /// A user's password hash, if they have a password.
    async fn password_hash(&self, user: &UserName) -> Result<Option<String>, RepoError>;
    /// Stores a new session under the hash of its id.
    async fn create_session(
        &self,
        id_hash: &str,
        user: &UserName,
        csrf: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), RepoError>;
    /// The live session with this id hash (`None` when unknown or expired at `now`).
    async fn session(&self, id_hash: &str, now: Timestamp)
    -> Result<Option<WebSession>, RepoError>;
    /// Ends a session (signing out). Ending an unknown session does nothing.
    async fn delete_session(&self, id_hash: &str) -> Result<(), RepoError>;
}
