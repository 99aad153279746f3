//! The compute API the models and views call: [`ComputeBackend`], implemented by
//! [`crate::compute::CandleBackend`] (CPU, the reference) and [`crate::compute::GpuBackend`] (wgpu kernels).
//! Everything goes in and out as plain row-major `Vec<f32>`.

use serde::{Deserialize, Serialize};

use crate::compute::Activation;
use crate::compute::params::{FlowParams, MlpParams};

/// What can go wrong in a compute call. Callers that get `NoAdapter`, `Device` or `TooLarge` from the GPU
/// back end fall back to [`crate::compute::CandleBackend`].
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    /// wgpu found no adapter.
    #[error("no GPU adapter found")]
    NoAdapter,
    /// The adapter refused a device, or the device was lost.
    #[error("GPU device error: {0}")]
    Device(String),
    /// Input lengths do not match the shapes given.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A buffer would exceed the adapter's limits.
    #[error("{bytes} bytes exceed the adapter's buffer limit of {limit} bytes")]
    TooLarge {
        /// Bytes requested.
        bytes: u64,
        /// The adapter's largest storage binding.
        limit: u64,
    },
    /// Reading a result back failed.
    #[error("reading the GPU result failed: {0}")]
    Readback(String),
    /// candle reported an error.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Shape of `C = op(A) · op(B)`: `op(A)` is `[m, k]`, `op(B)` is `[k, n]`, `C` is `[m, n]`, all row-major.
/// With `trans_a` the slice `a` holds `A^T` stored as `[k, m]`; with `trans_b`, `b` holds `[n, k]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MatmulShape {
    /// Rows of `C`.
    pub m: usize,
    /// Inner dimension.
    pub k: usize,
    /// Columns of `C`.
    pub n: usize,
    /// `a` is stored transposed (`[k, m]`).
    pub trans_a: bool,
    /// `b` is stored transposed (`[n, k]`).
    pub trans_b: bool,
}

impl MatmulShape {
    /// A plain product `[m, k] · [k, n]`.
    #[must_use]
    pub fn new(m: usize, k: usize, n: usize) -> Self {
        Self { m, k, n, trans_a: false, trans_b: false }
    }

    /// Floating-point operations of the product (2 m n k).
    #[must_use]
    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64
    }

    /// Checks the slice lengths against the shape.
    pub fn check(&self, a: &[f32], b: &[f32]) -> Result<(), ComputeError> {
        if a.len() != self.m * self.k || b.len() != self.k * self.n {
            return Err(ComputeError::Shape(format!(
                "matmul {}x{} · {}x{} got {} and {} values",
                self.m,
                self.k,
                self.k,
                self.n,
                a.len(),
                b.len()
            )));
        }
        Ok(())
    }
}

/// Identifies a set of weights for the GPU's upload cache: the same `id` with the same `version` is
/// uploaded once; a new `version` (the caller bumps it after each optimiser step) replaces the upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WeightsKey {
    /// Which network (e.g. one per lab and model part).
    pub id: u64,
    /// Which state of its weights.
    pub version: u64,
}

impl WeightsKey {
    /// Weights that are used once: uploaded for this call and not cached.
    pub const TRANSIENT: Self = Self { id: u64::MAX, version: 0 };

    /// A key for network `id` at `version`.
    #[must_use]
    pub fn new(id: u64, version: u64) -> Self {
        Self { id, version }
    }

    /// True for [`Self::TRANSIENT`].
    #[must_use]
    pub fn is_transient(&self) -> bool {
        self.id == u64::MAX
    }
}

/// One mean-field Gaussian dense layer of a Bayesian network: every weight and bias is an independent
/// normal `N(mean, sd²)`. A sample computes `y = act(x · W_s + b_s)` with `W_s = mean + sd ⊙ eps_s`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanFieldLayer {
    /// Inputs per row.
    pub n_in: usize,
    /// Outputs per row.
    pub n_out: usize,
    /// `[n_in, n_out]` row-major, as [`crate::compute::params::DenseParams::weights`].
    pub weight_mean: Vec<f32>,
    /// `[n_in, n_out]`, positive.
    pub weight_sd: Vec<f32>,
    /// `[n_out]`.
    pub bias_mean: Vec<f32>,
    /// `[n_out]`, non-negative (0 for a deterministic bias).
    pub bias_sd: Vec<f32>,
    /// Applied to every output.
    pub activation: Activation,
}

impl MeanFieldLayer {
    /// Parameters per sample: `n_in n_out` weights then `n_out` biases, the layout of the noise.
    #[must_use]
    pub fn n_params(&self) -> usize {
        self.n_in * self.n_out + self.n_out
    }

    /// `[weight_mean, bias_mean]` and `[weight_sd, bias_sd]`, each `[n_params]`.
    #[must_use]
    pub fn packed(&self) -> (Vec<f32>, Vec<f32>) {
        let mut mean = self.weight_mean.clone();
        mean.extend_from_slice(&self.bias_mean);
        let mut sd = self.weight_sd.clone();
        sd.extend_from_slice(&self.bias_sd);
        (mean, sd)
    }

    fn check(&self) -> Result<(), ComputeError> {
        let w = self.n_in * self.n_out;
        if self.weight_mean.len() != w
            || self.weight_sd.len() != w
            || self.bias_mean.len() != self.n_out
            || self.bias_sd.len() != self.n_out
        {
            return Err(ComputeError::Shape(format!(
                "mean-field layer {}x{} has wrong lengths",
                self.n_in, self.n_out
            )));
        }
        Ok(())
    }
}

/// A mean-field Bayesian network: layers applied in order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MeanFieldParams {
    /// First layer first.
    pub layers: Vec<MeanFieldLayer>,
}

impl MeanFieldParams {
    /// Noise values one sample needs (Σ over layers of `n_params`); uploaded noise is `[n_samples, this]`,
    /// each sample's block laid out layer by layer.
    #[must_use]
    pub fn noise_per_sample(&self) -> usize {
        self.layers.iter().map(MeanFieldLayer::n_params).sum()
    }

    /// Checks the network and a [`ComputeBackend::bnn_predictive`] call's inputs: `x` holds `n_rows` rows of the
    /// first layer's width, and uploaded noise `n_samples` samples' worth. Returns that width.
    pub fn check_predictive(
        &self,
        x: &[f32],
        n_rows: usize,
        n_samples: usize,
        noise: Noise<'_>,
    ) -> Result<usize, ComputeError> {
        self.check()?;
        let n_in = self.layers.first().map_or(0, |l| l.n_in);
        check_rows(x, n_rows, n_in, "bnn input")?;
        let needed = n_samples * self.noise_per_sample();
        if let Noise::Uploaded(eps) = noise
            && eps.len() != needed
        {
            return Err(ComputeError::Shape(format!(
                "noise has {} values, {n_samples} samples need {needed}",
                eps.len()
            )));
        }
        Ok(n_in)
    }

    /// Width of the output rows (0 for an empty network).
    #[must_use]
    pub fn n_out(&self) -> usize {
        self.layers.last().map_or(0, |l| l.n_out)
    }

    /// Checks lengths and that consecutive layers fit.
    pub fn check(&self) -> Result<(), ComputeError> {
        for l in &self.layers {
            l.check()?;
        }
        check_chain(self.layers.iter().map(|l| (l.n_in, l.n_out)), "layer")
    }
}

/// Where a Bayesian network's weight noise comes from.
#[derive(Clone, Copy, Debug)]
pub enum Noise<'a> {
    /// Drawn from the shared counter-based generator ([`crate::compute::noise`]) with this seed; layer `l`
    /// uses stream `l`, sample `s` and parameter `j` use index `s * n_params + j`.
    Seeded(u64),
    /// Given: `[n_samples, noise_per_sample]`.
    Uploaded(&'a [f32]),
}

/// The rows a network takes in one call: its plain-data parameters, the key its uploaded weights are cached
/// under, and the input `x` `[n_rows, n_in]`, row-major.
#[derive(Debug)]
pub struct Rows<'a, P> {
    /// The network.
    pub params: &'a P,
    /// Which cached copy of its weights a GPU may reuse ([`WeightsKey::TRANSIENT`]: none).
    pub key: WeightsKey,
    /// The input rows.
    pub x: &'a [f32],
    /// How many rows `x` holds.
    pub n_rows: usize,
}

impl<'a, P> Rows<'a, P> {
    /// `n_rows` rows `x` for `params`, whose weights are cached under `key`.
    #[must_use]
    pub fn new(params: &'a P, key: WeightsKey, x: &'a [f32], n_rows: usize) -> Self {
        Self { params, key, x, n_rows }
    }
}

// By hand: the derive would ask `P: Clone`, and the parameters are only borrowed.
impl<P> Clone for Rows<'_, P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P> Copy for Rows<'_, P> {}

/// The matrix work of the models, as plain data in and out.
///
/// The math of each call is stated on the method; shapes are row-major.
pub trait ComputeBackend {
    /// Short name for logs and the bench table ("candle (CPU)", "wgpu: <adapter>").
    fn name(&self) -> String;

    /// `C = op(A) · op(B)` (see [`MatmulShape`]); returns `C` `[m, n]`.
    fn matmul(&mut self, a: &[f32], b: &[f32], shape: MatmulShape) -> Result<Vec<f32>, ComputeError>;

    /// `y = act_L(... act_1(x · W_1 + b_1) ...)`: `x` `[n_rows, n_in]` -> `[n_rows, n_out]`.
    fn mlp_forward(&mut self, rows: Rows<'_, MlpParams>) -> Result<Vec<f32>, ComputeError>;

    /// Generation: maps stage-0 latents `z` `[n_rows, dim]` through layers `1..=up_to_stage`; returns the
    /// stage `up_to_stage` points and Σ log|det ∂(stage k)/∂(stage k-1)| `[n_rows]`.
    fn flow_forward(
        &mut self,
        rows: Rows<'_, FlowParams>,
        up_to_stage: usize,
    ) -> Result<(Vec<f32>, Vec<f32>), ComputeError>;

    /// Inference: maps points `x` `[n_rows, dim]` at stage `from_stage` back to stage 0 through the inverses
    /// of layers `from_stage..=1`; returns `z` and the forward log-det Σ `[n_rows]` (so
    /// `log p(x) = log N(z; 0, I) - log_det`).
    fn flow_inverse(
        &mut self,
        rows: Rows<'_, FlowParams>,
        from_stage: usize,
    ) -> Result<(Vec<f32>, Vec<f32>), ComputeError>;

    /// `log N(z; 0, I_dim) = -½ Σ z² - ½ dim log 2π` per row: `z` `[n_rows, dim]` -> `[n_rows]`.
    fn std_normal_log_density(&mut self, z: &[f32], n_rows: usize, dim: usize) -> Result<Vec<f32>, ComputeError>;

    /// The predictive samples of a mean-field Bayesian network: for each weight sample `s`,
    /// `W_s = mean + sd ⊙ eps_s` in every layer and `y_s = net_{W_s}(x)`. `x` `[n_rows, n_in]` ->
    /// `[n_samples, n_rows, n_out]`.
    fn bnn_predictive(
        &mut self,
        rows: Rows<'_, MeanFieldParams>,
        n_samples: usize,
        noise: Noise<'_>,
    ) -> Result<Vec<f32>, ComputeError>;

    /// Density of a flow at data points (stage K): `log p(x) = log N(z; 0, I) - log_det`, `[n_rows]`.
    fn flow_log_density(&mut self, rows: Rows<'_, FlowParams>) -> Result<Vec<f32>, ComputeError> {
        let (z, log_det) = self.flow_inverse(rows, rows.params.layers.len())?;
        let base = self.std_normal_log_density(&z, rows.n_rows, rows.params.dim)?;
        Ok(base.iter().zip(&log_det).map(|(b, l)| b - l).collect())
    }
}

/// Checks `x` against `n_rows * width`.
pub(crate) fn check_rows(x: &[f32], n_rows: usize, width: usize, what: &str) -> Result<(), ComputeError> {
    if x.len() == n_rows * width {
        Ok(())
    } else {
        Err(ComputeError::Shape(format!("{what}: {} values for {n_rows} rows of {width}", x.len())))
    }
}

/// Checks an MLP's layer sizes.
pub(crate) fn check_mlp(params: &MlpParams) -> Result<(), ComputeError> {
    for (i, l) in params.layers.iter().enumerate() {
        if l.weights.len() != l.n_in * l.n_out || l.biases.len() != l.n_out {
            return Err(ComputeError::Shape(format!("dense layer {i} ({}x{}) has wrong lengths", l.n_in, l.n_out)));
        }
    }
    check_chain(params.layers.iter().map(|l| (l.n_in, l.n_out)), "dense layer")
}

/// Checks that each layer's output width, of `(n_in, n_out)` in order, is the next one's input width; `what`
/// names a layer in the message ("dense layer 2 gives 8 outputs, layer 3 takes 4").
fn check_chain(widths: impl Iterator<Item = (usize, usize)>, what: &str) -> Result<(), ComputeError> {
    let widths: Vec<(usize, usize)> = widths.collect();
    for (i, pair) in widths.windows(2).enumerate() {
        let ((_, n_out), (next_in, _)) = (pair[0], pair[1]);
        if next_in != n_out {
            return Err(ComputeError::Shape(format!(
                "{what} {i} gives {n_out} outputs, layer {} takes {next_in}",
                i + 1
            )));
        }
    }
    Ok(())
}

/// Checks a flow's stage argument and layer sizes.
pub(crate) fn check_flow(params: &FlowParams, stage: usize) -> Result<(), ComputeError> {
    if stage > params.layers.len() {
        return Err(ComputeError::Shape(format!("stage {stage} of a flow with {} layers", params.layers.len())));
    }
    for layer in &params.layers {
        match layer {
            crate::compute::params::FlowLayerParams::Affine { shift, log_scale } => {
                if shift.len() != params.dim || log_scale.len() != params.dim {
                    return Err(ComputeError::Shape("affine layer width differs from the flow's".to_owned()));
                }
            }
            crate::compute::params::FlowLayerParams::Coupling { mask, scale_net, shift_net } => {
                check_mlp(scale_net)?;
                check_mlp(shift_net)?;
                let fits = |n: &MlpParams| n.n_in() == params.dim && n.n_out() == params.dim;
                if mask.len() != params.dim || !fits(scale_net) || !fits(shift_net) {
                    return Err(ComputeError::Shape("coupling layer width differs from the flow's".to_owned()));
                }
            }
            crate::compute::params::FlowLayerParams::Maf { made } => {
                check_mlp(made)?;
                if made.n_in() != params.dim || made.n_out() != 2 * params.dim {
                    return Err(ComputeError::Shape("MAF network must map dim -> 2 dim".to_owned()));
                }
            }
        }
    }
    Ok(())
}
