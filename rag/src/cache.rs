//! An embedding cache: vectors kept on disk by SHA-256 of (model, text), so re-ingesting a
//! changed document re-embeds only its changed chunks, and evaluations rerun without
//! embedding again. One append-only file per model: records of a 32-byte key and the vector.

use crate::embed::{EmbedError, Embedder};
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

type Key = [u8; 32];

/// An [`Embedder`] that remembers what it embedded, in a file.
pub struct CachedEmbedder {
    inner: Arc<dyn Embedder>,
    path: PathBuf,
    known: Mutex<HashMap<Key, Vec<f32>>>,
}

impl std::fmt::Debug for CachedEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedEmbedder")
            .field("model", &self.inner.id())
            .field("path", &self.path)
            .finish()
    }
}

fn key(model: &str, text: &str) -> Key {
    let mut h = Sha256::new();
    h.update(model.as_bytes());
    h.update([0]);
    h.update(text.as_bytes());
    h.finalize().into()
}

impl CachedEmbedder {
    /// Wraps `inner`, keeping vectors in `dir` (created if needed). A damaged tail (a record
    /// cut short by a crash) is ignored.
    pub fn open(inner: Arc<dyn Embedder>, dir: &Path) -> Result<Self, EmbedError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            EmbedError::Model(format!(
                "cannot create the embedding cache {}: {e}",
                dir.display()
            ))
        })?;
        let name: String = inner
            .id()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{name}.vectors"));
        let dims = inner.dimensions();
        let record = 32 + 4 * dims;
        let mut known = HashMap::new();
        if let Ok(bytes) = std::fs::read(&path) {
            for rec in bytes.chunks_exact(record) {
                let mut k = [0u8; 32];
                k.copy_from_slice(&rec[..32]);
                let v = rec[32..]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                known.insert(k, v);
            }
        }
        Ok(Self {
            inner,
            path,
            known: Mutex::new(known),
        })
    }

    /// How many vectors are cached.
    pub fn len(&self) -> usize {
        self.known.lock().map_or(0, |k| k.len())
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl Embedder for CachedEmbedder {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }

    fn cached(&self, text: &str) -> Option<Vec<f32>> {
        let k = key(self.inner.id(), text);
        self.known.lock().ok()?.get(&k).cloned()
    }

    fn cached_similarities(&self, texts: &[String], query: &[f32]) -> Vec<Option<f32>> {
        let model = self.inner.id();
        let keys: Vec<Key> = texts.iter().map(|t| key(model, t)).collect();
        let Ok(known) = self.known.lock() else {
            return vec![None; texts.len()];
        };
        keys.iter()
            .map(|k| known.get(k).map(|v| crate::embed::dot(v, query)))
            .collect()
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let model = self.inner.id().to_owned();
        let keys: Vec<Key> = texts.iter().map(|t| key(&model, t)).collect();
        let mut out: Vec<Option<Vec<f32>>> = {
            let known = self
                .known
                .lock()
                .map_err(|e| EmbedError::Run(e.to_string()))?;
            keys.iter().map(|k| known.get(k).cloned()).collect()
        };
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| out[i].is_none()).collect();
        if !missing.is_empty() {
            let todo: Vec<String> = missing.iter().map(|&i| texts[i].clone()).collect();
            let vectors = self.inner.embed(&todo).await?;
            let mut bytes = Vec::with_capacity(vectors.len() * (32 + 4 * self.dimensions()));
            {
                let mut known = self
                    .known
                    .lock()
                    .map_err(|e| EmbedError::Run(e.to_string()))?;
                for (&i, v) in missing.iter().zip(vectors) {
                    bytes.extend_from_slice(&keys[i]);
                    for x in &v {
                        bytes.extend_from_slice(&x.to_le_bytes());
                    }
                    known.insert(keys[i], v.clone());
                    out[i] = Some(v);
                }
            }
            // Losing the cache only costs time, so a failed write is logged, not fatal.
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .and_then(|mut f| f.write_all(&bytes));
            if let Err(e) = written {
                tracing::warn!(
                    "cannot write the embedding cache {}: {e}",
                    self.path.display()
                );
            }
        }
        Ok(out.into_iter().map(Option::unwrap_or_default).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::HashEmbedder;

    #[tokio::test]
    async fn vectors_survive_a_reopen_and_match_the_model() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inner: Arc<dyn Embedder> = Arc::new(HashEmbedder::new(8));
        let texts = vec!["hoodie refunds".to_owned(), "sizes".to_owned()];
        let direct = inner.embed(&texts).await.expect("embed");
        let cache = CachedEmbedder::open(inner.clone(), dir.path()).expect("open");
        assert_eq!(cache.embed(&texts).await.expect("embed"), direct);
        assert_eq!(cache.len(), 2);
        let reopened = CachedEmbedder::open(inner, dir.path()).expect("reopen");
        assert_eq!(reopened.len(), 2);
        let more = vec!["sizes".to_owned(), "new text".to_owned()];
        let got = reopened.embed(&more).await.expect("embed");
        assert_eq!(got[0], direct[1]);
        assert_eq!(reopened.len(), 3);
    }

    #[tokio::test]
    async fn similarities_are_read_in_place_and_missing_texts_give_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inner: Arc<dyn Embedder> = Arc::new(HashEmbedder::new(384));
        let cache = CachedEmbedder::open(inner.clone(), dir.path()).expect("open");
        let known = vec!["hoodie refund".to_owned(), "late parcel".to_owned()];
        let vectors = cache.embed(&known).await.expect("embed");
        let query = inner
            .embed(&["hoodie refund policy".to_owned()])
            .await
            .expect("embed")
            .remove(0);
        let asked = vec![
            known[1].clone(),
            "never embedded".to_owned(),
            known[0].clone(),
        ];
        let got = cache.cached_similarities(&asked, &query);
        let want = [
            Some(crate::embed::dot(&vectors[1], &query)),
            None,
            Some(crate::embed::dot(&vectors[0], &query)),
        ];
        assert_eq!(got, want);
        assert!(
            got[2] > got[0],
            "the hoodie text is the closer one: {got:?}"
        );
        // The default (copying through `cached`) agrees with the in-place override.
        let plain: Vec<Option<f32>> = asked
            .iter()
            .map(|t| cache.cached(t).map(|v| crate::embed::dot(&v, &query)))
            .collect();
        assert_eq!(plain, got);
    }
}
