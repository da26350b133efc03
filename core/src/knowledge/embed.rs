//! The [`Embedder`] port: texts to dense vectors. Core owns the trait (as rig does); krake-rag
//! has the local model and a cache, krake-llm an OpenAI-compatible embeddings server.

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

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalise(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    #[async_trait]
    impl Embedder for Fixed {
        fn id(&self) -> &str {
            "fixed"
        }
        fn dimensions(&self) -> usize {
            2
        }
        async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
            Ok(texts.iter().map(|_| vec![1.0, 0.0]).collect())
        }
        fn cached(&self, text: &str) -> Option<Vec<f32>> {
            (text == "known").then(|| vec![0.6, 0.8])
        }
    }

    #[test]
    fn normalise_makes_unit_length_and_keeps_zero() {
        let mut v = [3.0, 4.0];
        normalise(&mut v);
        assert_eq!(v, [0.6, 0.8]);
        let mut z = [0.0, 0.0];
        normalise(&mut z);
        assert_eq!(z, [0.0, 0.0]);
        assert!((dot(&[0.6, 0.8], &[0.6, 0.8]) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn cached_similarities_score_only_cached_texts() {
        let s = Fixed.cached_similarities(&["known".into(), "other".into()], &[1.0, 0.0]);
        assert_eq!(s, vec![Some(0.6), None]);
    }
}
