//! The BERT encoder of all-MiniLM-L6-v2, written for throughput on the CPU with candle's tensor
//! operations. It computes what candle-transformers' `BertModel` (used here before) computes, and
//! the test `minilm::tests::matches_the_reference_vectors` holds it to sentence-transformers'
//! vectors, but with fewer passes over memory and no per-element library calls:
//!
//! - each linear layer is one matrix product over every token of the batch (`(b·s) × h`)
//!   instead of one product per sequence, and query, key and value are one product;
//! - the attention scale is folded into the query weights at load;
//! - the padding mask and the softmax are one pass ([`MaskedSoftmax`]), and GELU is a
//!   vectorisable rational approximation of erf ([`Gelu`], error under 1e-6) instead of
//!   `libm::erff` per element; both run on rayon's pool.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Module, Result, Shape, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use rayon::prelude::*;
use serde::Deserialize;

/// The parts of the model's `config.json` the encoder needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    type_vocab_size: usize,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    hidden_act: Option<String>,
}

fn default_eps() -> f64 {
    1e-12
}

struct Layer {
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    up: Linear,
    down: Linear,
    output_norm: LayerNorm,
}

/// A BERT encoder (embeddings and layers, no pooler).
pub struct Encoder {
    words: Embedding,
    positions: Tensor,
    token_type: Tensor,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_size: usize,
    hidden: usize,
}

fn linear(vb: &VarBuilder, inputs: usize, outputs: usize) -> Result<(Tensor, Tensor)> {
    Ok((
        vb.get((outputs, inputs), "weight")?,
        vb.get(outputs, "bias")?,
    ))
}

fn layer_norm(vb: VarBuilder, size: usize, eps: f64) -> Result<LayerNorm> {
    Ok(LayerNorm::new(
        vb.get(size, "weight")?,
        vb.get(size, "bias")?,
        eps,
    ))
}

impl Encoder {
    /// Loads the weights (with or without a `bert.` prefix).
    pub fn load(vb: VarBuilder, config: &Config) -> Result<Self> {
        if let Some(act) = &config.hidden_act
            && act != "gelu"
        {
            candle_core::bail!("unsupported activation {act}: this encoder runs GELU models");
        }
        let vb = if vb.contains_tensor("embeddings.word_embeddings.weight") {
            vb
        } else {
            vb.pp("bert")
        };
        let h = config.hidden_size;
        let heads = config.num_attention_heads;
        if heads == 0 || !h.is_multiple_of(heads) {
            candle_core::bail!("hidden size {h} does not split into {heads} heads");
        }
        let head_size = h / heads;
        let e = vb.pp("embeddings");
        let words = Embedding::new(
            e.pp("word_embeddings")
                .get((config.vocab_size, h), "weight")?,
            h,
        );
        let positions = e
            .pp("position_embeddings")
            .get((config.max_position_embeddings, h), "weight")?;
        let token_type = e
            .pp("token_type_embeddings")
            .get((config.type_vocab_size, h), "weight")?
            .get(0)?;
        let embedding_norm = layer_norm(e.pp("LayerNorm"), h, config.layer_norm_eps)?;
        let scale = 1.0 / (head_size as f64).sqrt();
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let a = l.pp("attention");
            let s = a.pp("self");
            let (qw, qb) = linear(&s.pp("query"), h, h)?;
            let (kw, kb) = linear(&s.pp("key"), h, h)?;
            let (vw, vb_) = linear(&s.pp("value"), h, h)?;
            let qkv = Linear::new(
                Tensor::cat(&[(qw * scale)?, kw, vw], 0)?,
                Some(Tensor::cat(&[(qb * scale)?, kb, vb_], 0)?),
            );
            let (ow, ob) = linear(&a.pp("output").pp("dense"), h, h)?;
            let (uw, ub) = linear(
                &l.pp("intermediate").pp("dense"),
                h,
                config.intermediate_size,
            )?;
            let (dw, db) = linear(&l.pp("output").pp("dense"), config.intermediate_size, h)?;
            layers.push(Layer {
                qkv,
                attention_out: Linear::new(ow, Some(ob)),
                attention_norm: layer_norm(
                    a.pp("output").pp("LayerNorm"),
                    h,
                    config.layer_norm_eps,
                )?,
                up: Linear::new(uw, Some(ub)),
                down: Linear::new(dw, Some(db)),
                output_norm: layer_norm(l.pp("output").pp("LayerNorm"), h, config.layer_norm_eps)?,
            });
        }
        Ok(Self {
            words,
            positions,
            token_type,
            embedding_norm,
            layers,
            heads,
            head_size,
            hidden: h,
        })
    }

    /// The last hidden states `(batch, seq, hidden)` for token ids `(batch, seq)` (u32) and an
    /// attention mask `(batch, seq)` (1 keeps a token, 0 is padding; converted to f32 when it
    /// is not already).
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, s) = ids.dims2()?;
        let h = self.hidden;
        let x = self
            .words
            .forward(ids)?
            .broadcast_add(&self.positions.narrow(0, 0, s)?)?
            .broadcast_add(&self.token_type)?
            .reshape((b * s, h))?;
        let mut x = self.embedding_norm.forward(&x)?;
        let mask = mask.to_dtype(DType::F32)?.contiguous()?;
        for layer in &self.layers {
            // (b·s, 3h) → (3, b, heads, s, head)
            let qkv = layer
                .qkv
                .forward(&x)?
                .reshape((b, s, 3, self.heads, self.head_size))?
                .permute((2, 0, 3, 1, 4))?
                .contiguous()?;
            let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
            let scores = q.matmul(&k.t()?)?;
            let probs = scores.apply_op2_no_bwd(&mask, &MaskedSoftmax)?;
            let context = probs
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b * s, h))?;
            let attended = (layer.attention_out.forward(&context)? + &x)?;
            let attended = layer.attention_norm.forward(&attended)?;
            let up = layer.up.forward(&attended)?.apply_op1_no_bwd(&Gelu)?;
            let out = (layer.down.forward(&up)? + &attended)?;
            x = layer.output_norm.forward(&out)?;
        }
        x.reshape((b, s, h))
    }
}

/// erf(x) as a ratio of polynomials in x² on [-4, 4] (erf is ±1 to f32 precision beyond): the
/// approximation Eigen and XLA use for f32, absolute error about 1e-7. Branch-free and without
/// `mul_add` (a library call unless the build targets FMA), so the compiler vectorises it.
#[inline]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 - 2.101_024e-6;
    p = p * x2 - 5.692_506_4e-5;
    p = p * x2 - 7.349_906_3e-4;
    p = p * x2 - 2.954_600_1e-3;
    p = p * x2 - 1.609_603_3e-2;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 - 2.133_740_6e-4;
    q = q * x2 - 1.682_827e-3;
    q = q * x2 - 7.373_329_2e-3;
    q = q * x2 - 1.426_474e-2;
    x * p / q
}

/// GELU with erf, as BERT defines it: `x · (1 + erf(x / √2)) / 2`.
#[inline]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

const PAR_CHUNK: usize = 16 * 1024;

/// [`gelu`] over a contiguous f32 tensor.
struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "krake-gelu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("gelu needs a contiguous tensor");
        };
        let src = &storage.as_slice::<f32>()?[start..end];
        let mut dst = vec![0f32; src.len()];
        dst.par_chunks_mut(PAR_CHUNK)
            .zip(src.par_chunks(PAR_CHUNK))
            .for_each(|(d, s)| {
                for (d, &s) in d.iter_mut().zip(s) {
                    *d = gelu(s);
                }
            });
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

/// Softmax over the last dimension of attention scores `(b, heads, s, s)`, where keys whose
/// mask `(b, s)` is 0 get no weight (as adding f32::MIN before the softmax does).
struct MaskedSoftmax;

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "krake-masked-softmax"
    }

    fn cpu_fwd(
        &self,
        scores: &CpuStorage,
        scores_layout: &Layout,
        mask: &CpuStorage,
        mask_layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (Some((s0, s1)), Some((m0, m1))) = (
            scores_layout.contiguous_offsets(),
            mask_layout.contiguous_offsets(),
        ) else {
            candle_core::bail!("masked softmax needs contiguous tensors");
        };
        let (b, heads, rows, cols) = scores_layout.shape().dims4()?;
        let (mb, ms) = mask_layout.shape().dims2()?;
        if mb != b || ms != cols {
            candle_core::bail!(
                "mask ({mb}, {ms}) does not fit scores ({b}, {heads}, {rows}, {cols})"
            );
        }
        let src = &scores.as_slice::<f32>()?[s0..s1];
        let mask = &mask.as_slice::<f32>()?[m0..m1];
        let mut dst = vec![0f32; src.len()];
        let per_sequence = heads * rows * cols;
        dst.par_chunks_mut(cols)
            .zip(src.par_chunks(cols))
            .enumerate()
            .for_each(|(row, (d, s))| {
                let keep = &mask[(row * cols / per_sequence) * cols..][..cols];
                let mut max = f32::NEG_INFINITY;
                for (&v, &k) in s.iter().zip(keep) {
                    if k != 0.0 && v > max {
                        max = v;
                    }
                }
                if max == f32::NEG_INFINITY {
                    // Every key is padding: the reference gives a uniform row.
                    d.fill(1.0 / cols as f32);
                    return;
                }
                let mut sum = 0.0;
                for ((o, &v), &k) in d.iter_mut().zip(s).zip(keep) {
                    let e = if k != 0.0 { (v - max).exp() } else { 0.0 };
                    *o = e;
                    sum += e;
                }
                let inv = 1.0 / sum;
                d.iter_mut().for_each(|o| *o *= inv);
            });
        Ok((CpuStorage::F32(dst), scores_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_libm_closely() {
        let mut worst = 0f32;
        for i in -6000..=6000 {
            let x = i as f32 / 1000.0;
            let want = libm_erf(x as f64) as f32;
            worst = worst.max((erf(x) - want).abs());
        }
        assert!(worst < 1e-6, "worst absolute error {worst}");
    }

    fn libm_erf(x: f64) -> f64 {
        candle_core::cpu::erf::erf_f64(x)
    }

    #[test]
    fn gelu_is_exact_at_known_points() {
        assert_eq!(gelu(0.0), 0.0);
        assert!((gelu(1.0) - 0.841_344_7).abs() < 1e-6);
        assert!((gelu(-1.0) + 0.158_655_26).abs() < 1e-6);
        assert!((gelu(10.0) - 10.0).abs() < 1e-5);
        assert!(gelu(-10.0).abs() < 1e-5);
    }
}
