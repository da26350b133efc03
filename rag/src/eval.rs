//! Retrieval evaluation on BEIR-format data (`corpus.jsonl`, `queries.jsonl`,
//! `qrels/test.tsv`): nDCG@10 and recall@100 for sparse, dense and hybrid retrieval through the
//! real pipeline (chunking, ingestion, the store, fusion), and query latency.

use crate::ingest::{Document, IngestError, Ingestor};
use crate::retrieve::{Fusion, HybridRetriever, Mode};
use crate::store::{Scope, StoreError};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

/// The workspace evaluation data is ingested into.
pub const EVAL_WORKSPACE: &str = "eval";

/// A BEIR dataset.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Documents: (id, title, text).
    pub corpus: Vec<(String, String, String)>,
    /// Queries that have judgments: (id, text).
    pub queries: Vec<(String, String)>,
    /// Relevance: query id → (document id → grade).
    pub qrels: HashMap<String, HashMap<String, u32>>,
}

/// An evaluation failure.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A dataset file is missing or malformed.
    #[error("{0}")]
    Dataset(String),
    /// Ingestion failed.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// Search failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Embedding a query failed.
    #[error("{0}")]
    Embed(String),
}

#[derive(Deserialize)]
struct CorpusLine {
    #[serde(rename = "_id")]
    id: String,
    #[serde(default)]
    title: String,
    text: String,
}

#[derive(Deserialize)]
struct QueryLine {
    #[serde(rename = "_id")]
    id: String,
    text: String,
}

fn read(path: &Path) -> Result<String, EvalError> {
    std::fs::read_to_string(path).map_err(|e| {
        EvalError::Dataset(format!(
            "cannot read {}: {e}; a BEIR dataset directory has corpus.jsonl, queries.jsonl and \
             qrels/test.tsv",
            path.display()
        ))
    })
}

impl Dataset {
    /// Loads a BEIR directory (the `test` split).
    pub fn load(dir: &Path) -> Result<Self, EvalError> {
        Self::load_split(dir, "test")
    }

    /// Loads one split of a BEIR directory: judgments from `qrels/SPLIT.tsv`, queries from
    /// `queries_SPLIT.jsonl` when there is one (SciFact's training queries), else
    /// `queries.jsonl`. Tuning on `train` and reporting `test` keeps the test set honest.
    pub fn load_split(dir: &Path, split: &str) -> Result<Self, EvalError> {
        if split.is_empty() || !split.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(EvalError::Dataset(format!(
                "{split:?} is not a split name (letters, digits and '-', e.g. test or train)"
            )));
        }
        let mut qrels: HashMap<String, HashMap<String, u32>> = HashMap::new();
        let path = dir.join(format!("qrels/{split}.tsv"));
        for (n, line) in read(&path)?.lines().enumerate() {
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() < 3 || (n == 0 && cols[2].parse::<u32>().is_err()) {
                continue;
            }
            let grade = cols[2].trim().parse::<u32>().map_err(|_| {
                EvalError::Dataset(format!(
                    "{}:{}: bad score {:?}",
                    path.display(),
                    n + 1,
                    cols[2]
                ))
            })?;
            if grade > 0 {
                qrels
                    .entry(cols[0].to_owned())
                    .or_default()
                    .insert(cols[1].to_owned(), grade);
            }
        }
        let jsonl = |name: &str| -> Result<Vec<(usize, String)>, EvalError> {
            Ok(read(&dir.join(name))?
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(n, l)| (n + 1, l.to_owned()))
                .collect())
        };
        let bad = |name: &str, n: usize, e: serde_json::Error| {
            EvalError::Dataset(format!("{}:{n}: {e}", dir.join(name).display()))
        };
        let mut corpus = Vec::new();
        for (n, l) in jsonl("corpus.jsonl")? {
            let c: CorpusLine = serde_json::from_str(&l).map_err(|e| bad("corpus.jsonl", n, e))?;
            corpus.push((c.id, c.title, c.text));
        }
        let mut queries = Vec::new();
        let split_queries = format!("queries_{split}.jsonl");
        let queries_file = if dir.join(&split_queries).is_file() {
            split_queries.as_str()
        } else {
            "queries.jsonl"
        };
        for (n, l) in jsonl(queries_file)? {
            let q: QueryLine = serde_json::from_str(&l).map_err(|e| bad(queries_file, n, e))?;
            if qrels.contains_key(&q.id) {
                queries.push((q.id, q.text));
            }
        }
        if queries.is_empty() {
            return Err(EvalError::Dataset(format!(
                "{} has no query with a judgment in qrels/{split}.tsv",
                dir.display()
            )));
        }
        Ok(Self {
            corpus,
            queries,
            qrels,
        })
    }
}

/// nDCG@k of a ranking (document ids, best first) against graded judgments.
pub fn ndcg_at(k: usize, ranking: &[String], relevant: &HashMap<String, u32>) -> f64 {
    let dcg: f64 = ranking
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| f64::from(relevant.get(d).copied().unwrap_or(0)) / (i as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<u32> = relevant.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, g)| f64::from(*g) / (i as f64 + 2.0).log2())
        .sum();
    if idcg == 0.0 { 0.0 } else { dcg / idcg }
}

/// Recall@k: the share of relevant documents in the first `k`.
pub fn recall_at(k: usize, ranking: &[String], relevant: &HashMap<String, u32>) -> f64 {
    if relevant.is_empty() {
        return 0.0;
    }
    let found = ranking
        .iter()
        .take(k)
        .filter(|d| relevant.contains_key(*d))
        .count();
    found as f64 / relevant.len() as f64
}

/// Figures for one retrieval mode.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeReport {
    /// The mode.
    pub mode: Mode,
    /// How it is shown (`hybrid` for the retriever's own fusion, else the fusion tried).
    pub label: String,
    /// Mean nDCG@10.
    pub ndcg10: f64,
    /// Mean recall@100.
    pub recall100: f64,
    /// Query latency without embedding, median.
    pub p50: Duration,
    /// Query latency without embedding, 99th percentile.
    pub p99: Duration,
}

/// An evaluation's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Documents ingested.
    pub documents: usize,
    /// Chunks stored.
    pub chunks: usize,
    /// Queries evaluated.
    pub queries: usize,
    /// Time to ingest the corpus (chunking, embedding, storing).
    pub ingest_time: Duration,
    /// Query embedding latency, median and 99th percentile (zero without an embedder).
    pub embed_p50: Duration,
    /// See `embed_p50`.
    pub embed_p99: Duration,
    /// One entry per mode that ran.
    pub modes: Vec<ModeReport>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} documents ({} chunks) ingested in {:.1} s; {} queries",
            self.documents,
            self.chunks,
            self.ingest_time.as_secs_f64(),
            self.queries
        )?;
        writeln!(
            f,
            "mode                      nDCG@10  recall@100  p50 (ms)  p99 (ms)   [latency excludes the query embedding]"
        )?;
        for m in &self.modes {
            writeln!(
                f,
                "{:<25} {:>7.4}  {:>10.4}  {:>8.2}  {:>8.2}",
                m.label,
                m.ndcg10,
                m.recall100,
                m.p50.as_secs_f64() * 1e3,
                m.p99.as_secs_f64() * 1e3
            )?;
        }
        if self.embed_p50 > Duration::ZERO {
            writeln!(
                f,
                "query embedding: p50 {:.2} ms, p99 {:.2} ms",
                self.embed_p50.as_secs_f64() * 1e3,
                self.embed_p99.as_secs_f64() * 1e3
            )?;
        }
        Ok(())
    }
}

/// The `q`-quantile of durations (nearest rank).
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Ingests `dataset` with `ingestor` into the [`EVAL_WORKSPACE`] (calling `progress` with the
/// number of documents done) and evaluates each mode with `retriever` (dense modes only when it
/// has an embedder), then hybrid again with each of `other_fusions`.
pub async fn evaluate(
    dataset: &Dataset,
    ingestor: &Ingestor,
    retriever: &HybridRetriever,
    other_fusions: &[Fusion],
    mut progress: impl FnMut(usize),
) -> Result<Report, EvalError> {
    let docs: Vec<Document> = dataset
        .corpus
        .iter()
        .map(|(id, title, text)| Document {
            workspace: EVAL_WORKSPACE.to_owned(),
            source_kind: "file".to_owned(),
            source: id.clone(),
            title: title.clone(),
            text: text.clone(),
            time: 0,
        })
        .collect();
    let started = Instant::now();
    let mut done = 0;
    let report = ingestor
        .sync(
            EVAL_WORKSPACE,
            "file",
            &docs,
            |_| true,
            |_, _| {
                done += 1;
                progress(done);
            },
        )
        .await?;
    let ingest_time = started.elapsed();
    let scope = Scope {
        workspace: EVAL_WORKSPACE.to_owned(),
        source_kind: None,
    };
    // Embed every query once, timed apart from the search.
    let mut embedded = Vec::with_capacity(dataset.queries.len());
    let mut embed_times = Vec::new();
    for (_, text) in &dataset.queries {
        let t = Instant::now();
        let v = retriever
            .embed_query(text)
            .await
            .map_err(|e| EvalError::Embed(e.to_string()))?;
        if v.is_some() {
            embed_times.push(t.elapsed());
        }
        embedded.push(v);
    }
    embed_times.sort();
    let mut runs: Vec<(Mode, String, HybridRetriever)> =
        vec![(Mode::Sparse, "sparse".into(), retriever.clone())];
    if retriever.has_embedder() {
        runs.push((Mode::Dense, "dense".into(), retriever.clone()));
        runs.push((Mode::Hybrid, "hybrid".into(), retriever.clone()));
        for f in other_fusions {
            runs.push((
                Mode::Hybrid,
                f.to_string(),
                retriever.clone().with_fusion(*f),
            ));
        }
    }
    let mut out = Vec::new();
    for (mode, label, retriever) in runs {
        let (mut ndcg, mut recall) = (0.0, 0.0);
        let mut times = Vec::with_capacity(dataset.queries.len());
        for ((qid, text), dense) in dataset.queries.iter().zip(&embedded) {
            let t = Instant::now();
            let hits = retriever
                .search_with(&scope, text, dense.as_deref(), 300, mode)
                .await?;
            times.push(t.elapsed());
            // A document ranks where its best chunk does.
            let mut seen = HashSet::new();
            let ranking: Vec<String> = hits
                .into_iter()
                .filter(|h| seen.insert(h.meta.source.clone()))
                .map(|h| h.meta.source)
                .collect();
            let empty = HashMap::new();
            let relevant = dataset.qrels.get(qid).unwrap_or(&empty);
            ndcg += ndcg_at(10, &ranking, relevant);
            recall += recall_at(100, &ranking, relevant);
        }
        times.sort();
        let n = dataset.queries.len() as f64;
        out.push(ModeReport {
            mode,
            label,
            ndcg10: ndcg / n,
            recall100: recall / n,
            p50: percentile(&times, 0.5),
            p99: percentile(&times, 0.99),
        });
    }
    Ok(Report {
        documents: docs.len(),
        chunks: report.chunks,
        queries: dataset.queries.len(),
        ingest_time,
        embed_p50: percentile(&embed_times, 0.5),
        embed_p99: percentile(&embed_times, 0.99),
        modes: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(pairs: &[(&str, u32)]) -> HashMap<String, u32> {
        pairs.iter().map(|(d, g)| ((*d).to_owned(), *g)).collect()
    }

    fn ranking(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn ndcg_and_recall_match_hand_computed_values() {
        let r = rel(&[("a", 1), ("b", 1)]);
        assert!((ndcg_at(10, &ranking(&["a", "b", "c"]), &r) - 1.0).abs() < 1e-12);
        // Relevant at ranks 2 and 3: (1/log2(3) + 1/log2(4)) / (1 + 1/log2(3)).
        let expected = (1.0 / 3f64.log2() + 0.5) / (1.0 + 1.0 / 3f64.log2());
        assert!((ndcg_at(10, &ranking(&["c", "a", "b"]), &r) - expected).abs() < 1e-12);
        assert_eq!(recall_at(1, &ranking(&["c", "a", "b"]), &r), 0.0);
        assert_eq!(recall_at(2, &ranking(&["c", "a", "b"]), &r), 0.5);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&d, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&d, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&[], 0.99), Duration::ZERO);
    }

    #[test]
    fn a_directory_without_beir_files_says_what_is_expected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Dataset::load(dir.path()).expect_err("empty");
        assert!(err.to_string().contains("corpus.jsonl"), "{err}");
    }

    #[test]
    fn a_split_reads_its_own_judgments_and_queries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path();
        std::fs::create_dir(p.join("qrels")).expect("qrels");
        let write = |name: &str, text: &str| std::fs::write(p.join(name), text).expect("write");
        write(
            "corpus.jsonl",
            "{\"_id\":\"d1\",\"title\":\"T\",\"text\":\"one\"}\n",
        );
        write(
            "queries.jsonl",
            "{\"_id\":\"q1\",\"text\":\"test query\"}\n",
        );
        write(
            "queries_train.jsonl",
            "{\"_id\":\"q2\",\"text\":\"train query\"}\n",
        );
        write("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n");
        write("qrels/train.tsv", "query-id\tcorpus-id\tscore\nq2\td1\t1\n");
        let test = Dataset::load(p).expect("test split");
        assert_eq!(test.queries, [("q1".to_owned(), "test query".to_owned())]);
        let train = Dataset::load_split(p, "train").expect("train split");
        assert_eq!(train.queries, [("q2".to_owned(), "train query".to_owned())]);
        let err = Dataset::load_split(p, "../x").expect_err("not a split name");
        assert!(err.to_string().contains("not a split name"), "{err}");
        let err = Dataset::load_split(p, "dev").expect_err("no dev split");
        assert!(err.to_string().contains("qrels/dev.tsv"), "{err}");
    }
}
