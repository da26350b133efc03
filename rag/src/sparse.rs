//! BM25 as a sparse vector: text to stemmed terms, terms to hashed dimensions, and the BM25
//! term-frequency weight per dimension. The inverse document frequency is applied by the vector
//! store at query time (Qdrant's `idf` modifier), so a document's vector never goes stale when
//! the collection grows.

use crate::store::SparseVector;
use qdrant_rust_stemmers::{Algorithm, Stemmer};
use std::collections::BTreeMap;

/// English words too common to help ranking.
const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "me",
    "more",
    "most",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

/// BM25 parameters and the English analyser (lowercase, alphanumeric tokens, stopwords removed,
/// Porter/Snowball stemming).
pub struct Bm25 {
    k1: f32,
    b: f32,
    avg_len: f32,
    stemmer: Stemmer,
}

impl std::fmt::Debug for Bm25 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bm25")
            .field("k1", &self.k1)
            .field("b", &self.b)
            .field("avg_len", &self.avg_len)
            .finish()
    }
}

impl Default for Bm25 {
    fn default() -> Self {
        Self::new(0.9, 0.4, 120.0)
    }
}

impl Bm25 {
    /// BM25 with saturation `k1`, length normalisation `b` and an expected document length in
    /// terms (`avg_len`; chunks are about one size, so a fixed figure serves).
    pub fn new(k1: f32, b: f32, avg_len: f32) -> Self {
        Self {
            k1,
            b,
            avg_len: avg_len.max(1.0),
            stemmer: Stemmer::create(Algorithm::English),
        }
    }

    /// The analysed terms of `text`, in order.
    pub fn terms(&self, text: &str) -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|t| !t.is_empty())
            .map(str::to_lowercase)
            .filter(|t| !STOPWORDS.contains(&t.as_str()))
            .map(|t| self.stemmer.stem(&t).into_owned())
            .collect()
    }

    /// A document's vector: BM25's saturated, length-normalised term frequency per term.
    pub fn document(&self, text: &str) -> SparseVector {
        let terms = self.terms(text);
        let len = terms.len() as f32;
        let mut tf: BTreeMap<u32, f32> = BTreeMap::new();
        for t in &terms {
            *tf.entry(term_id(t)).or_default() += 1.0;
        }
        let norm = self.k1 * (1.0 - self.b + self.b * len / self.avg_len);
        let (indices, values) = tf
            .into_iter()
            .map(|(i, f)| (i, f * (self.k1 + 1.0) / (f + norm)))
            .unzip();
        SparseVector { indices, values }
    }

    /// A query's vector: one per distinct term (the store multiplies by the term's IDF).
    pub fn query(&self, text: &str) -> SparseVector {
        let mut ids: Vec<u32> = self.terms(text).iter().map(|t| term_id(t)).collect();
        ids.sort_unstable();
        ids.dedup();
        let values = vec![1.0; ids.len()];
        SparseVector {
            indices: ids,
            values,
        }
    }
}

/// A term's dimension: 32-bit FNV-1a of its bytes (stable across versions and machines).
pub fn term_id(term: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in term.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Inverse document frequency as Qdrant computes it: `ln(1 + (N - n + 0.5) / (n + 0.5))`.
pub fn idf(documents: usize, containing: usize) -> f32 {
    let n = documents as f32;
    let df = containing as f32;
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_lowercased_stemmed_and_without_stopwords() {
        let b = Bm25::default();
        assert_eq!(
            b.terms("The Hoodies are SHIPPING, and 3 orders shipped!"),
            vec!["hoodi", "ship", "3", "order", "ship"]
        );
    }

    #[test]
    fn document_weights_saturate_and_queries_are_flat() {
        let b = Bm25::default();
        let d = b.document("refund refund refund policy");
        let refund = d
            .indices
            .iter()
            .position(|&i| i == term_id("refund"))
            .map(|p| d.values[p]);
        let policy = d
            .indices
            .iter()
            .position(|&i| i == term_id("polici"))
            .map(|p| d.values[p]);
        let (Some(r), Some(p)) = (refund, policy) else {
            panic!("both terms present: {d:?}")
        };
        assert!(r > p && r < 3.0 * p, "saturated: {r} vs {p}");
        let q = b.query("refund refunds policy");
        assert_eq!(q.indices.len(), 2);
        assert!(q.values.iter().all(|&v| v == 1.0));
        assert!(q.indices.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn rare_terms_weigh_more() {
        assert!(idf(1000, 2) > idf(1000, 500));
        assert!(idf(1000, 1000) > 0.0);
    }
}
