//! Plain-data copies of trained networks: what a model hands to the views and to the compute back ends
//! (candle on the CPU, wgpu kernels on a GPU). No tensors here: `Vec<f32>` in row-major order, so the UI and
//! the GPU code can hold them without touching candle.
//!
//! Conventions shared by every back end:
//! - A dense layer computes `y = act(x · W + b)` for a row `x` of length `n_in`; `W` is `[n_in, n_out]`
//!   row-major (`weights[i * n_out + j]` connects input `i` to output `j`).
//! - A flow maps the Gaussian latent `z` (stage 0) to data `x` (stage K) through layers 1..=K. Layer `k` maps
//!   stage `k - 1` to stage `k` ("generation", the forward direction); its inverse maps stage `k` back to
//!   stage `k - 1` ("inference"). `log_det` is always log|det ∂(stage k)/∂(stage k-1)| of the forward map.

use serde::{Deserialize, Serialize};

use crate::compute::Activation;

/// One dense layer as plain data: `y = act(x · W + b)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DenseParams {
    /// Inputs per row.
    pub n_in: usize,
    /// Outputs per row.
    pub n_out: usize,
    /// `[n_in, n_out]`, row-major.
    pub weights: Vec<f32>,
    /// `[n_out]`.
    pub biases: Vec<f32>,
    /// Applied to every output.
    pub activation: Activation,
}

/// A stack of dense layers applied in order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MlpParams {
    /// First layer first.
    pub layers: Vec<DenseParams>,
}

impl MlpParams {
    /// Width of the input rows (0 for an empty stack).
    #[must_use]
    pub fn n_in(&self) -> usize {
        self.layers.first().map_or(0, |l| l.n_in)
    }

    /// Width of the output rows (0 for an empty stack).
    #[must_use]
    pub fn n_out(&self) -> usize {
        self.layers.last().map_or(0, |l| l.n_out)
    }

    /// Multiply-adds per row, for FLOP counts.
    #[must_use]
    pub fn macs_per_row(&self) -> usize {
        self.layers.iter().map(|l| l.n_in * l.n_out).sum()
    }
}

/// One invertible layer of a flow, as plain data. See the module docs for the direction convention.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FlowLayerParams {
    /// Elementwise affine map (the lecture's warm-up bijector):
    /// forward `x = z · exp(log_scale) + shift`; log_det = Σ log_scale.
    Affine {
        /// `[dim]`.
        shift: Vec<f32>,
        /// `[dim]`.
        log_scale: Vec<f32>,
    },
    /// RealNVP affine coupling (Dinh et al. 2017, as in the Keras example). With `m` the mask (1 = passed
    /// through), the conditioner input is `m ⊙ u` (full width, zeros where masked out), `s = scale_net(m ⊙ u)`
    /// (its last layer has tanh), `t = shift_net(m ⊙ u)`, and
    /// forward `v = m ⊙ u + (1 - m) ⊙ (u ⊙ exp(s) + t)`; inverse `u = m ⊙ v + (1 - m) ⊙ ((v - t) ⊙ exp(-s))`
    /// with `s, t` from `m ⊙ v` (which equals `m ⊙ u`); log_det = Σ (1 - m) ⊙ s.
    Coupling {
        /// `[dim]`, 1.0 where the coordinate conditions the others and passes through unchanged.
        mask: Vec<f32>,
        /// `dim -> dim`, tanh on the last layer.
        scale_net: MlpParams,
        /// `dim -> dim`, identity on the last layer.
        shift_net: MlpParams,
    },
    /// Masked autoregressive flow layer (Papamakarios et al. 2017, TFP's MaskedAutoregressiveFlow) followed by
    /// reversing the coordinates. `made` maps `dim -> 2 dim` with the autoregressive masks already applied to
    /// its weights: outputs `[shift_0..shift_{d-1}, log_scale_0..log_scale_{d-1}]`, where output `i` depends
    /// only on inputs `< i`. With `rev` the coordinate reversal:
    /// forward `w_i = u_i · exp(log_scale_i(w)) + shift_i(w)` (sequential in i, `dim` passes of `made`),
    /// then `v = rev(w)`; inverse `w = rev(v)`, `u = (w - shift(w)) ⊙ exp(-log_scale(w))` (one pass);
    /// log_det = Σ log_scale(w).
    Maf {
        /// The masked network `dim -> 2 dim`.
        made: MlpParams,
    },
}

impl FlowLayerParams {
    /// Short name for labels: "affine", "coupling", "MAF".
    #[must_use]
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Affine { .. } => "affine",
            Self::Coupling { .. } => "coupling",
            Self::Maf { .. } => "MAF",
        }
    }
}

/// A whole flow: base N(0, I_dim), then `layers` in forward (generation) order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowParams {
    /// Dimension of `z` and `x`.
    pub dim: usize,
    /// Layer 1 first.
    pub layers: Vec<FlowLayerParams>,
}
