//! The BNN as plain data: each layer's posterior ([`BnnLayer`]) and the network ([`BnnParams`]), with seeded
//! weight samples run through any [`ComputeBackend`] or through plain CPU loops, and the view the UI draws
//! ([`BnnView`]: the posterior now and after each recorded epoch).

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::compute::Activation;
use crate::compute::{ComputeBackend, ComputeError, MeanFieldLayer, MeanFieldParams, Noise, Rows, WeightsKey};
use crate::models::bnn::{BnnTask, Posterior};

/// A run of weight samples through the network, written for [`pulp`]'s dispatch: `with_simd` is inlined into a
/// function compiled for the detected instruction set, so the loops inside are vectorised for it.
struct SampleForwards<'a> {
    params: &'a BnnParams,
    /// All samples' weights `[n_samples, n_params]`.
    weights: &'a [f32],
    /// Inputs `[n_in, n_rows]`.
    x_t: &'a [f32],
    n_rows: usize,
    /// Index of the sample that fills the start of `outputs`.
    first_sample: usize,
    /// `[samples of this run, n_rows, n_out]`.
    outputs: &'a mut [f32],
}

impl pulp::WithSimd for SampleForwards<'_> {
    type Output = ();

    #[allow(clippy::inline_always, reason = "pulp compiles it for the detected instruction set only when inlined")]
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let (n_rows, n_params, n_out) = (self.n_rows, self.params.n_params(), self.params.task.n_out());
        let (mut h, mut next) = (Vec::new(), Vec::new());
        for (k, sample_out) in self.outputs.chunks_mut(n_rows * n_out).enumerate() {
            let s = self.first_sample + k;
            let w = &self.weights[s * n_params..(s + 1) * n_params];
            self.params.forward_one_sample(w, self.x_t, n_rows, &mut h, &mut next);
            // [n_out, n_rows] back to [n_rows, n_out].
            for (j, unit) in h.chunks_exact(n_rows).enumerate() {
                for (i, &v) in unit.iter().enumerate() {
                    sample_out[i * n_out + j] = v;
                }
            }
        }
    }
}

/// One layer's posterior as plain data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BnnLayer {
    /// Inputs per row.
    pub n_in: usize,
    /// Outputs per row.
    pub n_out: usize,
    /// Form of the posterior.
    pub posterior: Posterior,
    /// Posterior means `[k]`: the weights `[n_in, n_out]` row-major, then the biases `[n_out]`.
    pub mean: Vec<f32>,
    /// Marginal posterior standard deviations `[k]` (zeros for a deterministic layer).
    pub sd: Vec<f32>,
    /// Full covariance only: the scale `L` `[k, k]` row-major (`Σ = L Lᵀ`); empty otherwise, and in copies kept
    /// for the history (the marginals `sd` describe every single weight exactly).
    pub scale_tril: Vec<f32>,
    /// Applied to the outputs.
    pub activation: Activation,
}

impl BnnLayer {
    /// Parameters `k = n_in n_out + n_out`.
    #[must_use]
    pub fn n_params(&self) -> usize {
        self.n_in * self.n_out + self.n_out
    }

    /// Appends one weight sample `[k]` to `out`.
    fn sample_into(&self, rng: &mut ChaCha8Rng, out: &mut Vec<f32>) {
        let k = self.n_params();
        match self.posterior {
            Posterior::Deterministic => out.extend_from_slice(&self.mean),
            Posterior::MeanField => {
                out.extend(self.mean.iter().zip(&self.sd).map(|(m, s)| m + s * std_normal(rng)));
            }
            Posterior::FullCovariance if self.scale_tril.len() == k * k => {
                let eps: Vec<f32> = (0..k).map(|_| std_normal(rng)).collect();
                out.extend((0..k).map(|i| {
                    let row = &self.scale_tril[i * k..=i * k + i];
                    self.mean[i] + row.iter().zip(&eps).map(|(l, e)| l * e).sum::<f32>()
                }));
            }
            // History copies drop the scale; the marginals still give each weight's distribution.
            Posterior::FullCovariance => {
                out.extend(self.mean.iter().zip(&self.sd).map(|(m, s)| m + s * std_normal(rng)));
            }
        }
    }

    /// A copy without the `[k, k]` scale, for the history.
    #[must_use]
    pub fn without_scale(&self) -> Self {
        Self { scale_tril: Vec::new(), ..self.clone() }
    }
}

/// A trained (or training) network as plain data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BnnParams {
    /// First layer first; the last one is the output layer.
    pub layers: Vec<BnnLayer>,
    /// What the outputs mean.
    pub task: BnnTask,
    /// Prior standard deviation.
    pub prior_sd: f64,
}

impl BnnParams {
    /// Inputs per row.
    #[must_use]
    pub fn n_in(&self) -> usize {
        self.layers.first().map_or(0, |l| l.n_in)
    }

    /// Parameters of one whole weight sample.
    #[must_use]
    pub fn n_params(&self) -> usize {
        self.layers.iter().map(BnnLayer::n_params).sum()
    }

    /// `n_samples` weight samples `[n_samples, n_params]`, each laid out layer by layer, seeded.
    #[must_use]
    pub fn sample_weights(&self, n_samples: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = Vec::with_capacity(n_samples * self.n_params());
        for _ in 0..n_samples {
            for layer in &self.layers {
                layer.sample_into(&mut rng, &mut out);
            }
        }
        out
    }

    /// The network for [`ComputeBackend::bnn_predictive`] with pre-drawn weights: every layer has mean 0 and
    /// scale 1, so the uploaded "noise" of sample `s` is exactly sample `s`'s weights. This covers all three
    /// posterior forms (a full covariance cannot be written as independent scales).
    #[must_use]
    pub fn presampled_layers(&self) -> MeanFieldParams {
        MeanFieldParams {
            layers: self
                .layers
                .iter()
                .map(|l| MeanFieldLayer {
                    n_in: l.n_in,
                    n_out: l.n_out,
                    weight_mean: vec![0.0; l.n_in * l.n_out],
                    weight_sd: vec![1.0; l.n_in * l.n_out],
                    bias_mean: vec![0.0; l.n_out],
                    bias_sd: vec![1.0; l.n_out],
                    activation: l.activation,
                })
                .collect(),
        }
    }

    /// The raw outputs of `n_samples` sampled networks on rows `x` `[n_rows, n_in]`:
    /// `[n_samples, n_rows, n_out]`, on whichever back end is given.
    pub fn predict_samples(
        &self,
        backend: &mut dyn ComputeBackend,
        x: &[f32],
        n_rows: usize,
        n_samples: usize,
        seed: u64,
    ) -> Result<Vec<f32>, ComputeError> {
        let weights = self.sample_weights(n_samples, seed);
        backend.bnn_predictive(
            Rows::new(&self.presampled_layers(), WeightsKey::TRANSIENT, x, n_rows),
            n_samples,
            Noise::Uploaded(&weights),
        )
    }

    /// The same as [`Self::predict_samples`] (the same weight samples for the same seed), computed by plain loops
    /// on the CPU, the samples split over the cores. Activations are kept unit by unit (`[units, rows]`), so each
    /// weight scales one contiguous run of rows: long loops the compiler vectorises, where tensor operations on
    /// networks this small (the course's has 177 weights) spend their time writing a fresh
    /// `[samples, rows, units]` tensor per step. candle's path stays the reference the tests compare with.
    #[must_use]
    pub fn predict_samples_cpu(&self, x: &[f32], n_rows: usize, n_samples: usize, seed: u64) -> Vec<f32> {
        let weights = self.sample_weights(n_samples, seed);
        self.predict_with_weights(&weights, n_samples, x, n_rows)
    }

    /// The raw outputs `[n_samples, n_rows, n_out]` of given weight samples `weights` `[n_samples, n_params]`
    /// (each in the layout of [`Self::sample_weights`]; the posterior's means and scales are not used) on rows `x`
    /// `[n_rows, n_in]`, by the same CPU loops as [`Self::predict_samples_cpu`]: draws of an MCMC sampler go
    /// through the very forward pass of the variational samples. Zeros when `weights` or `x` is too short.
    #[must_use]
    pub fn predict_with_weights(&self, weights: &[f32], n_samples: usize, x: &[f32], n_rows: usize) -> Vec<f32> {
        let (n_in, n_out) = (self.n_in(), self.task.n_out());
        if weights.len() < n_samples * self.n_params() {
            return vec![0f32; n_samples * n_rows * n_out];
        }
        let mut out = vec![0f32; n_samples * n_rows * n_out];
        if out.is_empty() || x.len() < n_rows * n_in || weights.len() < n_samples * self.n_params() {
            return out;
        }
        // [n_in, n_rows]: every sample starts from the same transposed inputs.
        let mut x_t = vec![0f32; n_in * n_rows];
        for (i, row) in x.chunks_exact(n_in).take(n_rows).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                x_t[k * n_rows + i] = v;
            }
        }
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).min(n_samples);
        let per_thread = n_samples.div_ceil(threads);
        std::thread::scope(|scope| {
            for (chunk, outputs) in out.chunks_mut(per_thread * n_rows * n_out).enumerate() {
                let x_t = &x_t;
                // With the CPU's widest vector instructions (AVX2 and FMA where present), chosen at run time.
                scope.spawn(move || {
                    let first_sample = chunk * per_thread;
                    pulp::Arch::new().dispatch(SampleForwards {
                        params: self,
                        weights,
                        x_t,
                        n_rows,
                        first_sample,
                        outputs,
                    });
                });
            }
        });
        out
    }

    /// One weight sample `w` `[n_params]` through every layer for inputs `x_t` `[n_in, n_rows]` (unit-major);
    /// the outputs end in `h` `[n_out, n_rows]` (`next` is scratch). Always inlined, so it is compiled with the
    /// vector instructions of the caller's dispatch.
    #[allow(clippy::inline_always, reason = "inlined into the vector-instruction dispatch of `SampleForwards`")]
    #[inline(always)]
    fn forward_one_sample(&self, w: &[f32], x_t: &[f32], n_rows: usize, h: &mut Vec<f32>, next: &mut Vec<f32>) {
        h.clear();
        h.extend_from_slice(x_t);
        let mut offset = 0;
        for layer in &self.layers {
            let (n_in, n_out) = (layer.n_in, layer.n_out);
            let weights = &w[offset..offset + n_in * n_out]; // [n_in, n_out]
            let biases = &w[offset + n_in * n_out..offset + n_in * n_out + n_out]; // [n_out]
            next.clear();
            next.resize(n_out * n_rows, 0.0);
            for (j, dst) in next.chunks_exact_mut(n_rows).enumerate() {
                dst.fill(biases[j]);
                for (k, src) in h.chunks_exact(n_rows).enumerate() {
                    let wkj = weights[k * n_out + j];
                    for (d, &v) in dst.iter_mut().zip(src) {
                        *d += wkj * v;
                    }
                }
                layer.activation.apply_in_place(dst);
            }
            std::mem::swap(h, next);
            offset += layer.n_params();
        }
    }

    /// Histories keep these: the same parameters without the full scale matrices.
    #[must_use]
    pub fn without_scales(&self) -> Self {
        Self { layers: self.layers.iter().map(BnnLayer::without_scale).collect(), ..self.clone() }
    }
}

fn std_normal(rng: &mut ChaCha8Rng) -> f32 {
    StandardNormal.sample(rng)
}

/// Most parameter copies the history keeps; beyond it every other one is dropped, oldest first (the first
/// epoch always stays), so the whole run stays visible at a coarser step.
pub const MAX_HISTORY: usize = 400;

/// The posterior after each recorded epoch (epoch 0 is the initial state).
pub type ParamHistory = Vec<(usize, Arc<BnnParams>)>;

/// A plain-data view of a BNN for the UI.
#[derive(Clone, Debug, PartialEq)]
pub struct BnnView {
    /// The current posterior (with full scales).
    pub params: Arc<BnnParams>,
    /// Earlier posteriors, without full scales.
    pub history: Arc<ParamHistory>,
}
