//! Web chat sessions across processes: several `krake serve` on one PostgreSQL each hold their
//! own sessions, while a thread change is delivered (through the outbox) by one of them. That
//! one announces it (`NOTIFY`, see [`krake_store::THREADS_CHANNEL`]); the others hear it, load
//! the thread and push it to their sessions. The hub pushes a thread version once, so the
//! announcing process's own sessions are not told twice.

use async_trait::async_trait;
use krake_core::delivery::{Delivery, SendError, Sender, Sent};
use krake_core::outbox::Destination;
use krake_core::ports::InboxRepo;
use krake_store::Store;
use krake_web::live::Hub;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A sender that, after its inner sender showed a thread, tells the other processes.
pub struct Announcing {
    inner: Arc<dyn Sender>,
    store: Store,
}

impl Announcing {
    /// Wraps `inner`, announcing through `store`.
    pub fn new(inner: Arc<dyn Sender>, store: Store) -> Self {
        Self { inner, store }
    }
}

#[async_trait]
impl Sender for Announcing {
    fn front(&self) -> &str {
        self.inner.front()
    }

    async fn send(
        &self,
        destination: &Destination,
        delivery: &Delivery,
    ) -> Result<Sent, SendError> {
        let sent = self.inner.send(destination, delivery).await?;
        if let Delivery::Post { thread } | Delivery::Edit { thread, .. } = delivery
            && let Err(e) = self.store.notify_thread_changed(thread.id).await
        {
            // The local sessions have it; the others catch up on their next change.
            tracing::warn!(thread = thread.id.0, error = %e, "could not announce a thread change to other processes");
        }
        Ok(sent)
    }
}

/// Pushes thread changes announced by any process to this process's sessions until `stop`.
/// Returns once it listens (so a session opened afterwards misses no announcement); does
/// nothing on SQLite.
pub async fn listen(
    store: Store,
    hub: Arc<Hub>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let first = store.listen_thread_changes().await;
    tokio::spawn(async move {
        let mut next = Some(first);
        loop {
            let attempt = match next.take() {
                Some(a) => a,
                None => store.listen_thread_changes().await,
            };
            let mut changes = match attempt {
                Ok(Some(c)) => c,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for thread changes; retrying in 2 s");
                    tokio::select! {
                        _ = stop.changed() => return,
                        _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    }
                }
            };
            loop {
                let id = tokio::select! {
                    _ = stop.changed() => return,
                    id = changes.next() => id,
                };
                match id {
                    Ok(id) => match InboxRepo::get(&store, id).await {
                        Ok(Some(thread)) => {
                            hub.publish(&thread);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(thread = id.0, error = %e, "cannot load an announced thread")
                        }
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the thread-change listener; reconnecting");
                        break;
                    }
                }
            }
        }
    })
}
