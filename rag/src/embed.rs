//! Embedding: core's [`Embedder`] port (re-exported here with its helpers).
//! [`crate::minilm::MiniLm`] is the local, offline default; [`HashEmbedder`] is a tiny
//! deterministic one for tests.

use async_trait::async_trait;

pub use krake_core::knowledge::embed::{EmbedError, Embedder, dot, normalise};

/// Feature hashing of lower-cased words into `dimensions` buckets, normalised: similar word
/// sets give similar vectors. Deterministic and instant; for tests only.
#[derive(Debug, Clone)]
pub struct HashEmbedder {
    dimensions: usize,
    id: String,
}

impl HashEmbedder {
    /// A hashing embedder with this many dimensions.
    pub fn new(dimensions: usize) -> Self {
        Self {
            dimensions: dimensions.max(1),
            id: format!("hash-{dimensions}"),
        }
    }

    /// The vector of one text.
    pub fn vector(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0.0f32; self.dimensions];
        for w in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            let h = crate::sparse::term_id(&w.to_lowercase()) as usize;
            v[h % self.dimensions] += 1.0;
        }
        normalise(&mut v);
        v
    }
}

#[async_trait]
impl Embedder for HashEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|t| self.vector(t)).collect())
    }
}
