//! The [`Embedder`] port: texts to dense vectors. [`crate::minilm::MiniLm`] is the local,
//! offline default; [`HashEmbedder`] is a tiny deterministic one for tests.

use async_trait::async_trait;

/// An embedding failure.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model files are missing or wrong; the message says which command fixes it.
    #[error("{0}")]
    Model(String),
    /// Running the model failed.
    #[error("embedding failed: {0}")]
    Run(String),
}

/// Texts to unit-length dense vectors.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// A name for the model and its settings; stored with each document so that changing the
    /// model re-embeds everything.
    fn id(&self) -> &str;
    /// The vectors' length.
    fn dimensions(&self) -> usize;
    /// One vector per text, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
    /// The vector of `text` when it is at hand without running the model (a cache); `None`
    /// by default.
    fn cached(&self, _text: &str) -> Option<Vec<f32>> {
        None
    }
    /// For each text, the dot product of its cached vector with `query` (the cosine, as
    /// vectors are unit length), or `None` where [`Self::cached`] has none. A cache overrides
    /// it to score in place, without copying each vector out.
    fn cached_similarities(&self, texts: &[String], query: &[f32]) -> Vec<Option<f32>> {
        texts
            .iter()
            .map(|t| self.cached(t).map(|v| dot(&v, query)))
            .collect()
    }
}

/// The dot product of two vectors (over the shorter length).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

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

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}
