//! Convolutions, transposed convolutions and batch normalisation for the convolutional VAE, built from candle
//! operations that candle differentiates: a gather (`index_select`), one matrix product per layer and a
//! scatter-add (`index_add`).
//!
//! A batch of feature maps is held as rows of channels, `[n · height · width, channels]` (NHWC, flattened), so
//! that a layer is a matrix product over channels:
//! - **convolution** (im2col): gather, for every output position, the `k × k` input rows its kernel covers
//!   (`[n · h_out · w_out · k², c_in]`, a zero row where a tap falls in the padding), view them as
//!   `[n · h_out · w_out, k² · c_in]` and multiply by the weights `[k² · c_in, c_out]`;
//! - **transposed convolution** (col2im), the adjoint of a convolution with the same geometry: multiply the
//!   small map's rows by the weights `[c_in, k² · c_out]`, view the product as `[n · h · w · k², c_out]` and add
//!   every row into the big-map position its tap lands on (taps that land in the padding are dropped).
//!
//! One [`ConvGeometry`] describes both directions: the same tap table gathers for the convolution (big map ->
//! small map) and scatters for the transposed one (small map -> big map). So a decoder built from the encoder's
//! geometries in reverse gives back exactly the input's size, for any image side. Padding follows Keras'
//! `padding="same"`: `ceil(size / stride)` outputs, the odd padding cell at the bottom and right.
//!
//! Batch normalisation (Ioffe and Szegedy, 2015) normalises every channel by the batch's mean and (biased)
//! variance while training, and by running averages of them (momentum 0.1, PyTorch's default; Keras' 0.99
//! needs thousands of steps to settle) when evaluating; then scales by `gamma` and shifts by `beta`.

use candle_core::{DType, Device, Tensor, Var};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Uniform};
use serde::{Deserialize, Serialize};

use crate::compute::Activation;
use crate::compute::TrainError;
pub use crate::compute::conv_geometry::{BatchStats, ConvGeometry, ConvKind, NORM_EPSILON, NormMode, NormStats};
use crate::compute::cpu::conv as conv_cpu;
use crate::compute::cpu::guard::Probe;
use crate::compute::cpu::norm_act::{NormAct, Statistics};

/// Weight of the newest batch in the running averages.
pub const NORM_MOMENTUM: f64 = 0.1;

/// Convolution: `x` `[n · big_len, c_in]`, `weights` `[k² · c_in, c_out]` (row `(ty · k + tx) · c_in + i`),
/// `biases` `[c_out]` if any -> `[n · small_len, c_out]`.
pub fn conv2d(
    x: &Tensor,
    weights: &Tensor,
    biases: Option<&Tensor>,
    geometry: &ConvGeometry,
    n: usize,
) -> candle_core::Result<Tensor> {
    let c_in = x.dim(1)?;
    let taps = geometry.tap_tensor(n, x.device())?;
    let columns = x
        .contiguous()?
        .index_select(&taps, 0)? // [n · small_len · k², c_in]
        .reshape((n * geometry.small_len(), geometry.taps_per_position() * c_in))?;
    add_biases(&columns.matmul(weights)?, biases)
}

fn add_biases(h: &Tensor, biases: Option<&Tensor>) -> candle_core::Result<Tensor> {
    match biases {
        Some(b) => h.broadcast_add(b),
        None => Ok(h.clone()),
    }
}

/// Transposed convolution, the adjoint of [`conv2d`] with the same geometry: `x` `[n · small_len, c_in]`,
/// `weights` `[c_in, k² · c_out]` (column `(ty · k + tx) · c_out + o`), `biases` `[c_out]` if any ->
/// `[n · big_len, c_out]`.
pub fn conv_transpose2d(
    x: &Tensor,
    weights: &Tensor,
    biases: Option<&Tensor>,
    geometry: &ConvGeometry,
    n: usize,
) -> candle_core::Result<Tensor> {
    let c_out = weights.dim(1)? / geometry.taps_per_position().max(1);
    let taps = geometry.tap_tensor(n, x.device())?;
    let columns = x.matmul(weights)?.reshape((n * geometry.small_len() * geometry.taps_per_position(), c_out))?;
    let zeros = Tensor::zeros((n * geometry.big_len(), c_out), x.dtype(), x.device())?;
    add_biases(&zeros.index_add(&taps, &columns, 0)?, biases)
}

/// The statistics of a whole batch from those of its parts (`rows` each, every part with the same layers):
/// the weighted mean of the means, and of the variances plus the means' spread around the whole's (the law of
/// total variance).
#[must_use]
pub fn pool_stats(parts: &[(usize, &(BatchStats, BatchStats))]) -> (BatchStats, BatchStats) {
    let total = parts.iter().map(|(rows, _)| *rows).sum::<usize>().max(1) as f64;
    let pool = |pick: fn(&(BatchStats, BatchStats)) -> &BatchStats| -> BatchStats {
        let Some((_, first)) = parts.first() else { return Vec::new() };
        (0..pick(first).len())
            .map(|layer| {
                let layer_parts: Vec<(f64, &NormStats)> = parts
                    .iter()
                    .filter_map(|(rows, s)| pick(s).get(layer)?.as_ref().map(|st| (*rows as f64 / total, st)))
                    .collect();
                let (_, any) = layer_parts.first()?;
                let c = any.mean.len();
                let mean: Vec<f64> =
                    (0..c).map(|j| layer_parts.iter().map(|(w, st)| w * f64::from(st.mean[j])).sum()).collect();
                let variance = (0..c).map(|j| {
                    layer_parts
                        .iter()
                        .map(|(w, st)| w * (f64::from(st.variance[j]) + (f64::from(st.mean[j]) - mean[j]).powi(2)))
                        .sum::<f64>()
                });
                Some(NormStats {
                    mean: mean.iter().map(|&m| m as f32).collect(),
                    variance: variance.map(|v| v as f32).collect(),
                })
            })
            .collect()
    };
    (pool(|s| &s.0), pool(|s| &s.1))
}

/// Batch normalisation's parameters as plain data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NormParams {
    /// Scale per channel.
    pub gamma: Vec<f32>,
    /// Shift per channel.
    pub beta: Vec<f32>,
    /// Running mean per channel.
    pub running_mean: Vec<f32>,
    /// Running variance per channel.
    pub running_variance: Vec<f32>,
}

/// One convolutional layer as plain data: `act(norm(conv(x)))`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvLayerParams {
    /// Direction.
    pub kind: ConvKind,
    /// Where the kernel goes.
    pub geometry: ConvGeometry,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// `[k² · c_in, c_out]` for a convolution, `[c_in, k² · c_out]` for a transposed one, row-major.
    pub weights: Vec<f32>,
    /// `[c_out]`; empty for a normalised layer (batch normalisation subtracts any bias again).
    pub biases: Vec<f32>,
    /// Batch normalisation after the convolution, if any.
    pub norm: Option<NormParams>,
    /// Applied last.
    pub activation: Activation,
}

impl ConvLayerParams {
    /// Positions of the input map.
    #[must_use]
    pub fn in_len(&self) -> usize {
        self.kind.map_lens(&self.geometry).0
    }

    /// Positions of the output map.
    #[must_use]
    pub fn out_len(&self) -> usize {
        self.kind.map_lens(&self.geometry).1
    }

    /// The layer as [`conv_cpu`] takes it; `None` for an activation the hand-written pass does not have.
    #[must_use]
    pub fn as_ref(&self) -> Option<conv_cpu::ConvLayerRef<'_>> {
        Some(conv_cpu::ConvLayerRef {
            kind: self.kind,
            geometry: self.geometry,
            c_in: self.c_in,
            c_out: self.c_out,
            weights: &self.weights,
            biases: if self.biases.is_empty() { None } else { Some(&self.biases) },
            norm: self.norm.as_ref().map(|n| (n.gamma.as_slice(), n.beta.as_slice())),
            running: self.norm.as_ref().map(|n| (n.running_mean.as_slice(), n.running_variance.as_slice())),
            slope: self.activation.negative_slope()?,
        })
    }

    /// Multiply-adds per image, for FLOP counts.
    #[must_use]
    pub fn macs_per_image(&self) -> usize {
        let positions = self.geometry.small_len() * self.geometry.taps_per_position();
        positions * self.c_in * self.c_out
    }
}

/// Batch normalisation's variables and running averages.
struct Norm {
    gamma: Var, // [c]
    beta: Var,  // [c]
    running_mean: Vec<f32>,
    running_variance: Vec<f32>,
}

/// One convolutional layer's variables.
pub struct ConvLayer {
    kind: ConvKind,
    geometry: ConvGeometry,
    c_in: usize,
    c_out: usize,
    weights: Var,
    biases: Option<Var>,
    norm: Option<Norm>,
    activation: Activation,
}

/// The kernel's matrix shape: `[k² · c_in, c_out]` for a convolution, `[c_in, k² · c_out]` for a transposed one.
fn weight_shape(kind: ConvKind, k2: usize, c_in: usize, c_out: usize) -> (usize, usize) {
    match kind {
        ConvKind::Conv => (k2 * c_in, c_out),
        ConvKind::Transposed => (c_in, k2 * c_out),
    }
}

/// Glorot (Xavier) uniform draws, Keras' default initialiser: `U(±sqrt(6 / (fan_in + fan_out)))`.
fn glorot(len: usize, fan_in: usize, fan_out: usize, rng: &mut ChaCha8Rng) -> Result<Vec<f64>, TrainError> {
    let bound = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt();
    let dist = Uniform::new_inclusive(-bound, bound).map_err(|e| TrainError::Data(e.to_string()))?;
    Ok((0..len).map(|_| dist.sample(rng)).collect())
}

fn var(values: Vec<f64>, shape: impl Into<candle_core::Shape>, dtype: DType) -> candle_core::Result<Var> {
    Var::from_tensor(&Tensor::from_vec(values, shape, &Device::Cpu)?.to_dtype(dtype)?)
}

fn var_f32(values: &[f32], shape: impl Into<candle_core::Shape>, dtype: DType) -> candle_core::Result<Var> {
    Var::from_tensor(&Tensor::from_slice(values, shape, &Device::Cpu)?.to_dtype(dtype)?)
}

fn to_f32(v: &Var) -> candle_core::Result<Vec<f32>> {
    v.as_tensor().to_dtype(DType::F32)?.flatten_all()?.to_vec1()
}

impl ConvLayer {
    /// A fresh layer: Glorot-uniform kernel (fans `k² · c_in` and `k² · c_out`), `gamma` 1 and `beta` 0, and
    /// zero biases where there is no batch normalisation (which would subtract them again: their gradient is 0).
    #[allow(clippy::too_many_arguments, reason = "a layer's full description; called from one builder")]
    fn new(
        kind: ConvKind,
        geometry: ConvGeometry,
        c_in: usize,
        c_out: usize,
        normalised: bool,
        activation: Activation,
        rng: &mut ChaCha8Rng,
        dtype: DType,
    ) -> Result<Self, TrainError> {
        let k2 = geometry.taps_per_position();
        let shape = weight_shape(kind, k2, c_in, c_out);
        let weights = var(glorot(k2 * c_in * c_out, k2 * c_in, k2 * c_out, rng)?, shape, dtype)?;
        let norm = if normalised {
            Some(Norm {
                gamma: var(vec![1.0; c_out], c_out, dtype)?,
                beta: var(vec![0.0; c_out], c_out, dtype)?,
                running_mean: vec![0.0; c_out],
                running_variance: vec![1.0; c_out],
            })
        } else {
            None
        };
        Ok(Self {
            kind,
            geometry,
            c_in,
            c_out,
            weights,
            biases: if normalised { None } else { Some(var(vec![0.0; c_out], c_out, dtype)?) },
            norm,
            activation,
        })
    }

    /// The layer from plain data.
    fn from_params(p: &ConvLayerParams, dtype: DType) -> candle_core::Result<Self> {
        let shape = weight_shape(p.kind, p.geometry.taps_per_position(), p.c_in, p.c_out);
        let norm = match &p.norm {
            Some(n) => Some(Norm {
                gamma: var_f32(&n.gamma, p.c_out, dtype)?,
                beta: var_f32(&n.beta, p.c_out, dtype)?,
                running_mean: n.running_mean.clone(),
                running_variance: n.running_variance.clone(),
            }),
            None => None,
        };
        Ok(Self {
            kind: p.kind,
            geometry: p.geometry,
            c_in: p.c_in,
            c_out: p.c_out,
            weights: var_f32(&p.weights, shape, dtype)?,
            biases: if p.biases.is_empty() { None } else { Some(var_f32(&p.biases, p.c_out, dtype)?) },
            norm,
            activation: p.activation,
        })
    }

    fn params(&self) -> candle_core::Result<ConvLayerParams> {
        let norm = match &self.norm {
            Some(n) => Some(NormParams {
                gamma: to_f32(&n.gamma)?,
                beta: to_f32(&n.beta)?,
                running_mean: n.running_mean.clone(),
                running_variance: n.running_variance.clone(),
            }),
            None => None,
        };
        Ok(ConvLayerParams {
            kind: self.kind,
            geometry: self.geometry,
            c_in: self.c_in,
            c_out: self.c_out,
            weights: to_f32(&self.weights)?,
            biases: match &self.biases {
                Some(b) => to_f32(b)?,
                None => Vec::new(),
            },
            norm,
            activation: self.activation,
        })
    }

    /// `x` `[n · in_len, c_in]` -> `[n · out_len, c_out]`, and the batch statistics when `mode` asks for them.
    /// `probe` checks the convolution's output and the normalised activations, naming them after `label`
    /// ("encoder convolution 2").
    fn forward(
        &self,
        x: &Tensor,
        n: usize,
        mode: NormMode,
        probe: &mut Probe,
        label: &dyn Fn() -> String,
    ) -> candle_core::Result<(Tensor, Option<NormStats>)> {
        let (w, b) = (self.weights.as_tensor(), self.biases.as_ref().map(Var::as_tensor));
        let h = match self.kind {
            ConvKind::Conv => conv2d(x, w, b, &self.geometry, n)?,
            ConvKind::Transposed => conv_transpose2d(x, w, b, &self.geometry, n)?,
        };
        probe.check(&h, || format!("{}'s output", label()))?;
        let (y, stats) = self.normalise_and_activate(&h, mode)?;
        if self.norm.is_some() {
            probe.check(&y, || format!("{}'s batch normalisation", label()))?;
        }
        Ok((y, stats))
    }

    /// Batch normalisation (if the layer has it) and the activation of the convolution's output `h`.
    fn normalise_and_activate(&self, h: &Tensor, mode: NormMode) -> candle_core::Result<(Tensor, Option<NormStats>)> {
        let Some(norm) = &self.norm else { return Ok((self.activation.apply(h)?, None)) };
        let (gamma, beta) = (norm.gamma.as_tensor(), norm.beta.as_tensor());
        let slope = self.activation.negative_slope();
        let running = (norm.running_mean.as_slice(), norm.running_variance.as_slice());
        let Some(slope) = slope else {
            let (y, stats) = batch_norm_reference(h, gamma, beta, mode, running)?;
            return Ok((self.activation.apply(&y)?, stats));
        };
        let statistics = match mode {
            NormMode::Batch => Statistics::Batch,
            NormMode::Running => Statistics::Fixed { mean: running.0.to_vec(), variance: running.1.to_vec() },
        };
        let op = NormAct::new(statistics, NORM_EPSILON, slope);
        let y = op.apply(h, gamma, beta)?;
        Ok((y, op.batch_stats()))
    }

    fn vars(&self) -> Vec<(Var, &'static str)> {
        let mut v = vec![(self.weights.clone(), "kernel")];
        if let Some(b) = &self.biases {
            v.push((b.clone(), "biases"));
        }
        if let Some(n) = &self.norm {
            v.push((n.gamma.clone(), "batch-norm scale"));
            v.push((n.beta.clone(), "batch-norm shift"));
        }
        v
    }
}

/// Batch normalisation of rows `[r, c]`, `gamma · (x - mean) / sqrt(variance + eps) + beta` per channel, from
/// candle's own operations: the reference for [`NormAct`], and the path for activations it does not fuse. `running`
/// holds the running means and variances for [`NormMode::Running`].
pub fn batch_norm_reference(
    h: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    mode: NormMode,
    running: (&[f32], &[f32]),
) -> candle_core::Result<(Tensor, Option<NormStats>)> {
    let c = h.dim(1)?;
    let (centred, scale, stats) = match mode {
        NormMode::Batch => {
            let mean = h.mean_keepdim(0)?; // [1, c]
            let centred = h.broadcast_sub(&mean)?;
            let variance = centred.sqr()?.mean_keepdim(0)?; // [1, c], biased
            let scale = (variance.clone() + NORM_EPSILON)?.sqrt()?.recip()?;
            let stats = NormStats {
                mean: mean.detach().to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
                variance: variance.detach().to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
            };
            (centred, scale, Some(stats))
        }
        NormMode::Running => {
            let mean = Tensor::from_slice(running.0, (1, c), h.device())?.to_dtype(h.dtype())?;
            let variance = Tensor::from_slice(running.1, (1, c), h.device())?.to_dtype(h.dtype())?;
            (h.broadcast_sub(&mean)?, (variance + NORM_EPSILON)?.sqrt()?.recip()?, None)
        }
    };
    let gamma = gamma.reshape((1, c))?;
    let y = centred.broadcast_mul(&scale.broadcast_mul(&gamma)?)?.broadcast_add(beta)?;
    Ok((y, stats))
}

/// The course's convolutional VAE as plain data (see [`ConvVaeNet::new`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvVaeParams {
    /// Side of the square input images.
    pub side: usize,
    /// Latent dimension.
    pub latent: usize,
    /// The encoder's convolutions, first first.
    pub encoder: Vec<ConvLayerParams>,
    /// Flattened last feature map -> `[mu, log sigma²]`.
    pub to_latent: crate::compute::params::DenseParams,
    /// Latent -> the decoder's first feature map, flattened.
    pub from_latent: crate::compute::params::DenseParams,
    /// The decoder's transposed convolutions; the last gives one channel of logits.
    pub decoder: Vec<ConvLayerParams>,
}

impl ConvVaeParams {
    /// Multiply-adds of the encoder per image.
    #[must_use]
    pub fn encoder_macs(&self) -> usize {
        self.encoder.iter().map(ConvLayerParams::macs_per_image).sum::<usize>()
            + self.to_latent.n_in * self.to_latent.n_out
    }

    /// Multiply-adds of the decoder per image.
    #[must_use]
    pub fn decoder_macs(&self) -> usize {
        self.decoder.iter().map(ConvLayerParams::macs_per_image).sum::<usize>()
            + self.from_latent.n_in * self.from_latent.n_out
    }

    /// `[mu, log sigma²]` `[n, 2 latent]` of images `inputs` `[n, side²]`, on the CPU by the hand-written forward
    /// pass ([`conv_cpu::encode_running`]), batch normalisation using the running averages; on the calling thread
    /// alone (the views call it while a run trains on rayon's threads).
    pub fn encode_cpu(&self, inputs: &[f32], n: usize) -> candle_core::Result<Vec<f32>> {
        if inputs.len() != n * self.side * self.side {
            candle_core::bail!("{} values are not {n} images of {} x {}", inputs.len(), self.side, self.side);
        }
        self.with_refs(|vae| conv_cpu::encode_running(&vae, inputs, false))
            .flatten()
            .ok_or_else(|| candle_core::Error::msg("the convolutional VAE's layers do not fit together"))
    }

    /// Logits `[n, side²]` of latents `z` `[n, latent]`, on the CPU by the hand-written forward pass
    /// ([`conv_cpu::decode_running`]), on the calling thread alone.
    pub fn decode_cpu(&self, z: &[f32], n: usize) -> candle_core::Result<Vec<f32>> {
        if z.len() != n * self.latent {
            candle_core::bail!("{} values are not {n} rows of {}", z.len(), self.latent);
        }
        self.with_refs(|vae| conv_cpu::decode_running(&vae, z, false))
            .flatten()
            .ok_or_else(|| candle_core::Error::msg("the convolutional VAE's layers do not fit together"))
    }

    /// [`Self::encode_cpu`] by candle's operations, in `chunk`-image passes: the reference.
    pub fn encode_by_candle(&self, inputs: &[f32], n: usize, chunk: usize) -> candle_core::Result<Vec<f32>> {
        let net = ConvVaeNet::from_params(self, DType::F32)?;
        let len = self.side * self.side;
        Self::in_chunks(inputs, n, len, chunk, |x| Ok(net.encode(x, NormMode::Running)?.0))
    }

    /// [`Self::decode_cpu`] by candle's operations, in `chunk`-point passes: the reference.
    pub fn decode_by_candle(&self, z: &[f32], n: usize, chunk: usize) -> candle_core::Result<Vec<f32>> {
        let net = ConvVaeNet::from_params(self, DType::F32)?;
        Self::in_chunks(z, n, self.latent, chunk, |z| Ok(net.decode(z, NormMode::Running)?.0))
    }

    /// Runs `f` on the networks as [`conv_cpu`] takes them (the loss's settings unused: Bernoulli, beta 0);
    /// `None` for an activation the hand-written pass does not have.
    fn with_refs<R>(&self, f: impl FnOnce(conv_cpu::ConvVae<'_>) -> R) -> Option<R> {
        let encoder = self.encoder.iter().map(ConvLayerParams::as_ref).collect::<Option<Vec<_>>>()?;
        let decoder = self.decoder.iter().map(ConvLayerParams::as_ref).collect::<Option<Vec<_>>>()?;
        Some(f(conv_cpu::ConvVae {
            side: self.side,
            latent: self.latent,
            encoder: &encoder,
            to_latent: self.to_latent.as_ref(),
            from_latent: self.from_latent.as_ref(),
            decoder: &decoder,
            likelihood: crate::compute::cpu::vae::Likelihood::Bernoulli,
            beta: 0.0,
        }))
    }

    fn in_chunks(
        rows: &[f32],
        n: usize,
        width: usize,
        chunk: usize,
        f: impl Fn(&Tensor) -> candle_core::Result<Tensor>,
    ) -> candle_core::Result<Vec<f32>> {
        if rows.len() != n * width {
            candle_core::bail!("{} values are not {n} rows of {width}", rows.len());
        }
        let mut out = Vec::new();
        for part in rows.chunks(chunk.max(1) * width.max(1)) {
            let x = Tensor::from_slice(part, (part.len() / width.max(1), width), &Device::Cpu)?;
            out.extend(f(&x)?.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    /// Number of trained values (the running averages are not counted).
    #[must_use]
    pub fn n_params(&self) -> usize {
        let layer =
            |l: &ConvLayerParams| l.weights.len() + l.biases.len() + l.norm.as_ref().map_or(0, |n| 2 * n.gamma.len());
        let dense = |d: &crate::compute::params::DenseParams| d.weights.len() + d.biases.len();
        self.encoder.iter().chain(&self.decoder).map(layer).sum::<usize>()
            + dense(&self.to_latent)
            + dense(&self.from_latent)
    }
}

/// A dense layer's variables.
struct Dense {
    weights: Var, // [in, out]
    biases: Var,  // [out]
    activation: Activation,
}

impl Dense {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.activation.apply(&self.pre_activation(x)?)
    }

    /// `x W + b`, before the activation.
    fn pre_activation(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.matmul(self.weights.as_tensor())?.broadcast_add(self.biases.as_tensor())
    }

    fn params(&self) -> candle_core::Result<crate::compute::params::DenseParams> {
        let (n_in, n_out) = self.weights.as_tensor().dims2()?;
        Ok(crate::compute::params::DenseParams {
            n_in,
            n_out,
            weights: to_f32(&self.weights)?,
            biases: to_f32(&self.biases)?,
            activation: self.activation,
        })
    }

    fn from_params(p: &crate::compute::params::DenseParams, dtype: DType) -> candle_core::Result<Self> {
        Ok(Self {
            weights: var_f32(&p.weights, (p.n_in, p.n_out), dtype)?,
            biases: var_f32(&p.biases, p.n_out, dtype)?,
            activation: p.activation,
        })
    }
}

/// Channels of the encoder's convolutions and their strides (models.md section 2).
pub const ENCODER_CHANNELS: [(usize, usize); 4] = [(32, 1), (64, 2), (64, 2), (64, 1)];

/// Kernel side of every convolution.
pub const KERNEL: usize = 3;

/// The convolutional VAE's networks.
pub struct ConvVaeNet {
    side: usize,
    latent: usize,
    encoder: Vec<ConvLayer>,
    to_latent: Dense,
    from_latent: Dense,
    decoder: Vec<ConvLayer>,
}

impl ConvVaeNet {
    /// The course's architecture (models.md section 2) for `side × side` images:
    /// - encoder: 3 × 3 convolutions with 32 (stride 1), 64 (2), 64 (2) and 64 (1) channels, each followed by
    ///   batch normalisation and LeakyReLU(0.3); flatten; dense to `[mu, log sigma²]`;
    /// - decoder: dense to the encoder's last map (LeakyReLU(0.3)), then transposed convolutions mirroring the
    ///   encoder's geometries in reverse: 64 (stride 1), 64 (2), 32 (2), each with batch normalisation and
    ///   LeakyReLU(0.3), and one on the first geometry to a single channel of logits (the likelihood applies the
    ///   sigmoid).
    ///
    /// About 106 k + 103 k parameters at 28 × 28, as in the course.
    pub fn new(side: usize, latent: usize, rng: &mut ChaCha8Rng, dtype: DType) -> Result<Self, TrainError> {
        if side == 0 || latent == 0 {
            return Err(TrainError::Data("the convolutional VAE needs images and at least one latent unit".into()));
        }
        let mut encoder = Vec::new();
        let mut geometries = Vec::new();
        let (mut map, mut c_in) = ((side, side), 1);
        for (c_out, stride) in ENCODER_CHANNELS {
            let g = ConvGeometry::same(map, KERNEL, stride);
            encoder.push(ConvLayer::new(ConvKind::Conv, g, c_in, c_out, true, Activation::LeakyRelu, rng, dtype)?);
            geometries.push((g, c_in, c_out));
            (map, c_in) = (g.small, c_out);
        }
        let flat = map.0 * map.1 * c_in;
        let dense = |n_in: usize, n_out: usize, activation, rng: &mut ChaCha8Rng| -> Result<Dense, TrainError> {
            Ok(Dense {
                weights: var(glorot(n_in * n_out, n_in, n_out, rng)?, (n_in, n_out), dtype)?,
                biases: var(vec![0.0; n_out], n_out, dtype)?,
                activation,
            })
        };
        let to_latent = dense(flat, 2 * latent, Activation::Identity, rng)?;
        let from_latent = dense(latent, flat, Activation::LeakyRelu, rng)?;
        // Mirror: the last encoder layer's geometry first, each layer giving back its encoder twin's input width,
        // except the last, which gives one channel.
        let mut decoder = Vec::new();
        let mut c = c_in;
        for (i, &(g, enc_in, _)) in geometries.iter().enumerate().rev() {
            let (c_out, normalised, activation) =
                if i == 0 { (1, false, Activation::Identity) } else { (enc_in, true, Activation::LeakyRelu) };
            decoder.push(ConvLayer::new(ConvKind::Transposed, g, c, c_out, normalised, activation, rng, dtype)?);
            c = c_out;
        }
        Ok(Self { side, latent, encoder, to_latent, from_latent, decoder })
    }

    /// The networks from plain data.
    pub fn from_params(p: &ConvVaeParams, dtype: DType) -> candle_core::Result<Self> {
        Ok(Self {
            side: p.side,
            latent: p.latent,
            encoder: p.encoder.iter().map(|l| ConvLayer::from_params(l, dtype)).collect::<candle_core::Result<_>>()?,
            to_latent: Dense::from_params(&p.to_latent, dtype)?,
            from_latent: Dense::from_params(&p.from_latent, dtype)?,
            decoder: p.decoder.iter().map(|l| ConvLayer::from_params(l, dtype)).collect::<candle_core::Result<_>>()?,
        })
    }

    /// Plain-data copy.
    pub fn params(&self) -> candle_core::Result<ConvVaeParams> {
        Ok(ConvVaeParams {
            side: self.side,
            latent: self.latent,
            encoder: self.encoder.iter().map(ConvLayer::params).collect::<candle_core::Result<_>>()?,
            to_latent: self.to_latent.params()?,
            from_latent: self.from_latent.params()?,
            decoder: self.decoder.iter().map(ConvLayer::params).collect::<candle_core::Result<_>>()?,
        })
    }

    /// Every variable, with names for error messages.
    #[must_use]
    pub fn vars(&self) -> (Vec<Var>, Vec<String>) {
        let mut vars = Vec::new();
        let mut names = Vec::new();
        let mut push = |part: &str, layers: &[ConvLayer]| {
            for (i, l) in layers.iter().enumerate() {
                for (v, what) in l.vars() {
                    vars.push(v);
                    names.push(format!("{part} convolution {} {what}", i + 1));
                }
            }
        };
        push("encoder", &self.encoder);
        push("decoder", &self.decoder);
        for (dense, name) in [(&self.to_latent, "encoder dense layer"), (&self.from_latent, "decoder dense layer")] {
            vars.push(dense.weights.clone());
            names.push(format!("{name} weights"));
            vars.push(dense.biases.clone());
            names.push(format!("{name} biases"));
        }
        (vars, names)
    }

    /// Runs `f` on the networks as [`crate::compute::cpu::conv`]'s hand-written pass takes them, with the loss's
    /// `likelihood` and KL weight `beta`, the values borrowed from the variables without a copy; `None` (and `f` not
    /// run) unless every variable is a contiguous CPU f32 tensor and every activation one the pass has.
    pub fn with_values<R>(
        &self,
        likelihood: crate::compute::cpu::vae::Likelihood,
        beta: f64,
        f: impl FnOnce(conv_cpu::ConvVae<'_>) -> R,
    ) -> Option<R> {
        let (vars, _) = self.vars();
        let tensors: Vec<&Tensor> = vars.iter().map(Var::as_tensor).collect();
        crate::compute::cpu::dense::with_cpu_f32(&tensors, |values| {
            // The values in the order of `vars`: the convolutions' (kernel, biases, gamma, beta), then the dense
            // layers' (weights, biases).
            let mut values = values.iter().copied();
            let mut layers = |decoder: bool| -> Option<Vec<conv_cpu::ConvLayerRef<'_>>> {
                let layers = if decoder { &self.decoder } else { &self.encoder };
                let mut refs = Vec::with_capacity(layers.len());
                for l in layers {
                    let weights = values.next()?;
                    let biases = if l.biases.is_some() { Some(values.next()?) } else { None };
                    let norm = if l.norm.is_some() { Some((values.next()?, values.next()?)) } else { None };
                    refs.push(conv_cpu::ConvLayerRef {
                        kind: l.kind,
                        geometry: l.geometry,
                        c_in: l.c_in,
                        c_out: l.c_out,
                        weights,
                        biases,
                        norm,
                        running: l.norm.as_ref().map(|n| (n.running_mean.as_slice(), n.running_variance.as_slice())),
                        slope: l.activation.negative_slope()?,
                    });
                }
                Some(refs)
            };
            let (encoder, decoder) = (layers(false)?, layers(true)?);
            let mut dense = |d: &Dense| -> Option<crate::compute::cpu::dense::DenseRef<'_>> {
                let (n_in, n_out) = d.weights.as_tensor().dims2().ok()?;
                let (weights, biases) = (values.next()?, values.next()?);
                Some(crate::compute::cpu::dense::DenseRef { weights, biases, n_in, n_out, activation: d.activation })
            };
            let (to_latent, from_latent) = (dense(&self.to_latent)?, dense(&self.from_latent)?);
            Some(f(conv_cpu::ConvVae {
                side: self.side,
                latent: self.latent,
                encoder: &encoder,
                to_latent,
                from_latent,
                decoder: &decoder,
                likelihood,
                beta,
            }))
        })
        .flatten()
    }

    /// The encoder's `[mu, log sigma²]` `[n, 2 latent]` (or with `decode` the decoder's logits `[n, side²]`) of
    /// `x`, batch normalisation on the running averages, by the hand-written evaluation pass
    /// ([`conv_cpu::encode_running`]) on rayon's threads (the trainer's evaluation, between its steps); `None` (for candle's path to take it) unless `x` and the variables are f32
    /// on the CPU.
    #[must_use]
    pub fn running_by_hand(&self, x: &Tensor, decode: bool) -> Option<Tensor> {
        if x.dtype() != DType::F32 || !x.device().is_cpu() {
            return None;
        }
        let n = x.dim(0).ok()?;
        let values: Vec<f32> = x.flatten_all().ok()?.to_vec1().ok()?;
        let out = self
            .with_values(crate::compute::cpu::vae::Likelihood::Bernoulli, 0.0, |vae| {
                if decode {
                    conv_cpu::decode_running(&vae, &values, true)
                } else {
                    conv_cpu::encode_running(&vae, &values, true)
                }
            })
            .flatten()?;
        let width = out.len().checked_div(n)?;
        Tensor::from_vec(out, (n, width), &Device::Cpu).ok()
    }

    /// `[mu, log sigma²]` `[n, 2 latent]` of images `x` `[n, side²]`, and the batch statistics.
    pub fn encode(&self, x: &Tensor, mode: NormMode) -> candle_core::Result<(Tensor, BatchStats)> {
        self.encode_probed(x, mode, &mut Probe::off())
    }

    /// [`Self::encode`], checking every convolution's output and normalised activations with `probe` (the dense
    /// layer's output, `[mu, log sigma²]`, is the caller's to check).
    pub fn encode_probed(
        &self,
        x: &Tensor,
        mode: NormMode,
        probe: &mut Probe,
    ) -> candle_core::Result<(Tensor, BatchStats)> {
        let n = x.dim(0)?;
        let mut h = x.reshape((n * self.side * self.side, 1))?; // [n · side², 1]
        let mut stats = Vec::new();
        for (i, layer) in self.encoder.iter().enumerate() {
            let (next, s) = layer.forward(&h, n, mode, probe, &|| format!("encoder convolution {}", i + 1))?;
            h = next;
            stats.push(s);
        }
        let flat = h.reshape((n, ()))?; // [n, h · w · c]
        Ok((self.to_latent.forward(&flat)?, stats))
    }

    /// Logits `[n, side²]` of latents `z` `[n, latent]`, and the batch statistics.
    pub fn decode(&self, z: &Tensor, mode: NormMode) -> candle_core::Result<(Tensor, BatchStats)> {
        self.decode_probed(z, mode, &mut Probe::off())
    }

    /// [`Self::decode`], checking the dense layer's output and every convolution's output and normalised
    /// activations with `probe`.
    pub fn decode_probed(
        &self,
        z: &Tensor,
        mode: NormMode,
        probe: &mut Probe,
    ) -> candle_core::Result<(Tensor, BatchStats)> {
        let n = z.dim(0)?;
        let c = self.decoder.first().map_or(1, |l| l.c_in);
        let pre = self.from_latent.pre_activation(z)?;
        probe.check(&pre, || "the decoder dense layer's output".to_owned())?;
        let mut h = self.from_latent.activation.apply(&pre)?.reshape(((), c))?; // [n · h · w, c]
        let mut stats = Vec::new();
        for (i, layer) in self.decoder.iter().enumerate() {
            let (next, s) = layer.forward(&h, n, mode, probe, &|| format!("decoder convolution {}", i + 1))?;
            h = next;
            stats.push(s);
        }
        Ok((h.reshape((n, self.side * self.side))?, stats))
    }

    /// The running averages of every normalised layer, named `{encoder|decoder}.{i}.running_{mean|variance}`:
    /// what a continued run needs beyond the variables.
    #[must_use]
    pub fn running_stats(&self) -> Vec<(String, Vec<f32>)> {
        let mut out = Vec::new();
        for (part, layers) in [("encoder", &self.encoder), ("decoder", &self.decoder)] {
            for (i, layer) in layers.iter().enumerate() {
                if let Some(norm) = &layer.norm {
                    out.push((format!("{part}.{i}.running_mean"), norm.running_mean.clone()));
                    out.push((format!("{part}.{i}.running_variance"), norm.running_variance.clone()));
                }
            }
        }
        out
    }

    /// Puts back what [`Self::running_stats`] took: the same names, in the same order, of the same lengths.
    ///
    /// # Errors
    /// A message naming the first that does not fit; nothing is changed then.
    pub fn set_running_stats(&mut self, stats: &[(String, Vec<f32>)]) -> Result<(), String> {
        let mine = self.running_stats();
        if mine.len() != stats.len() {
            return Err(format!("{} running averages are saved; the network has {}", stats.len(), mine.len()));
        }
        for ((name, values), (saved, saved_values)) in mine.iter().zip(stats) {
            if name != saved || values.len() != saved_values.len() {
                return Err(format!("the saved {saved} ({} values) is not the network's {name}", saved_values.len()));
            }
        }
        let mut saved = stats.iter();
        for layers in [&mut self.encoder, &mut self.decoder] {
            for layer in layers.iter_mut() {
                if let Some(norm) = &mut layer.norm
                    && let (Some((_, mean)), Some((_, variance))) = (saved.next(), saved.next())
                {
                    norm.running_mean.clone_from(mean);
                    norm.running_variance.clone_from(variance);
                }
            }
        }
        Ok(())
    }

    /// Folds the batch statistics of a training step (encoder's, then decoder's) into the running averages.
    pub fn update_running(&mut self, encoder: &BatchStats, decoder: &BatchStats) {
        let layers = self.encoder.iter_mut().zip(encoder).chain(self.decoder.iter_mut().zip(decoder));
        for (layer, stats) in layers {
            if let (Some(norm), Some(s)) = (layer.norm.as_mut(), stats) {
                let blend = |running: &mut [f32], batch: &[f32]| {
                    for (r, b) in running.iter_mut().zip(batch) {
                        *r = ((1.0 - NORM_MOMENTUM) * f64::from(*r) + NORM_MOMENTUM * f64::from(*b)) as f32;
                    }
                };
                blend(&mut norm.running_mean, &s.mean);
                blend(&mut norm.running_variance, &s.variance);
            }
        }
    }
}
