//! Normalizing flows on 2-D data: an invertible map f from a Gaussian latent z to data x, trained by
//! maximum likelihood with the change of variables
//!
//! ```text
//! log p_x(x) = log N(f⁻¹(x); 0, I) − Σ_k log|det ∂f_k/∂u|      (f = f_K ∘ … ∘ f_1, u the input of f_k)
//! ```
//!
//! Three layer types (conventions in [`crate::compute::params`]): the lecture's affine warm-up bijector, RealNVP
//! affine coupling (Dinh, Sohl-Dickstein and Bengio 2017, as in the Keras example) and masked autoregressive
//! layers (Papamakarios, Pavlakou and Murray 2017, MADE masks from Germain et al. 2015, as in the course's TFP
//! notebook). Every layer has a forward map, an inverse and its log-determinant, and [`FlowNet`] returns
//! every intermediate stage, so the views can show any of them.
//!
//! Here: the settings ([`FlowConfig`]); `network.rs` the layers as tensors, both directions with their
//! log-determinants, every stage and density grids ([`FlowNet`]), and the MADE masks; `trainer.rs` the flow in the
//! shared training loop ([`FlowTrainer`]); `report.rs` a trained flow's final figures ([`flow_report`]: NLL, grid
//! mass, round trip, energy distances); `line.rs` the lecture's 1-D flow, a monotone spline from N(0, 1) to a
//! density on a line ([`line::MonotoneSpline`]), and its fit to a column ([`line::LineFit`]).

pub mod line;
mod network;
mod report;
#[cfg(test)]
mod tests;
mod trainer;

pub use network::{FlowNet, Stages, grid_points, made_masks};
pub use report::{
    FlowReport, GRID_MASS_RESOLUTION, energy_distance, energy_distance_capped, flow_report, gaussian_points,
    roundtrip_error,
};
pub use trainer::{FlowModel, FlowTrainer};

use serde::{Deserialize, Serialize};

use crate::compute::cpu::optim::{KERAS_EPSILON, TORCH_EPSILON};
use crate::models::trainer::LrSchedule;

/// Which kind of flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FlowKind {
    /// Affine coupling layers with alternating masks (RealNVP, the Keras example).
    RealNvp,
    /// Masked autoregressive layers, each followed by a swap (the course's notebook).
    Maf,
    /// One elementwise shift and scale (the lecture's warm-up bijector).
    Affine,
}

impl FlowKind {
    /// All kinds, in menu order.
    pub const ALL: [Self; 3] = [Self::RealNvp, Self::Maf, Self::Affine];

    /// Name on the command line.
    #[must_use]
    pub fn cli_name(self) -> &'static str {
        match self {
            Self::RealNvp => "realnvp",
            Self::Maf => "maf",
            Self::Affine => "affine",
        }
    }

    /// Name shown to the user.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::RealNvp => "RealNVP (affine coupling)",
            Self::Maf => "MAF (masked autoregressive)",
            Self::Affine => "Affine (shift and scale)",
        }
    }

    /// Parses a command-line name.
    #[must_use]
    pub fn from_cli(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.cli_name().eq_ignore_ascii_case(name))
    }
}

/// How a flow's conditioner networks draw their initial weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FlowInit {
    /// Glorot-uniform weights, U(±√(6 / (fan_in + fan_out))), and zero biases: Keras' `Dense` defaults, which the
    /// Keras Real NVP example keeps. Every first-layer ReLU then bends along a line through the origin.
    Glorot,
    /// Weights and biases U(±1 / √fan_in): PyTorch's `nn.Linear` default (Kaiming-uniform with a = √5), which a
    /// plain PyTorch RealNVP uses. The first layer's units, with biases as large as their weights, bend all over
    /// the data rather than through one point. The default, with PyTorch's Adam epsilon (see
    /// [`FlowConfig::adam_epsilon`]).
    #[default]
    FanIn,
}

impl FlowInit {
    /// Both, in menu order.
    pub const ALL: [Self; 2] = [Self::FanIn, Self::Glorot];

    /// Name on the command line.
    #[must_use]
    pub fn cli_name(self) -> &'static str {
        match self {
            Self::Glorot => "keras",
            Self::FanIn => "torch",
        }
    }

    /// Name shown to the user.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Glorot => "Keras (Glorot, bias 0)",
            Self::FanIn => "PyTorch (±1/√fan-in)",
        }
    }

    /// What run files written before the choice existed were trained with.
    #[must_use]
    pub fn before_choice() -> Self {
        Self::Glorot
    }
}

/// Architecture and training settings of a flow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowConfig {
    /// Layer type.
    pub kind: FlowKind,
    /// Number of flow layers (stages are 0..=layers).
    pub layers: usize,
    /// Hidden widths of each conditioner network (ReLU).
    pub hidden: Vec<usize>,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Points per minibatch.
    pub batch_size: usize,
    /// Epochs to train.
    pub epochs: usize,
    /// Seed of the initial weights and the minibatch order.
    pub seed: u64,
    /// How the conditioner networks start (RealNVP and MAF; the affine layer starts at the identity).
    #[serde(default = "FlowInit::before_choice")]
    pub init: FlowInit,
    /// Adam's epsilon, added to √v in the update's denominator: PyTorch's 1e-8 (the default) or Keras' 1e-7 (the
    /// Keras example's). Half of a RealNVP's gradients start below 1e-7 (its networks' first layers, behind four
    /// layers of small weights), so Keras' epsilon slows exactly the weights that carry the flow off its early
    /// plateau near 1.5-1.6 nats on the moons: from the same initial weights, seed 1 of the parity harness ends at
    /// 1.50 with 1e-7 and at 1.19 with 1e-8, where PyTorch ends at 1.19 (BENCHMARKS.md, issue 21).
    #[serde(default = "keras_epsilon")]
    pub adam_epsilon: f64,
    /// How the learning rate moves over the run: constant (the default, as the Keras example) or cosine decay to 0.
    /// On eight Gaussians the decay ended the RealNVP's training NLL 0.1 nats lower and its held-out NLL 0.13 higher
    /// (it fits the training rows more tightly; the constant rate's noise keeps it from it), so it is a choice, not
    /// the default (BENCHMARKS.md, issue 21).
    #[serde(default = "LrSchedule::before_choice")]
    pub lr_schedule: LrSchedule,
    /// The largest norm of the whole gradient a step takes (a longer one is scaled down to it); `None`: no limit, as
    /// PyTorch and Keras train unless told otherwise. RealNVP's default is [`CLIP_NORM`]: on the parity harness's
    /// sharp data sets unclipped runs ended 0.02-0.07 nats above plain PyTorch on the training rows over 5-22 seeds;
    /// clipped at 40, level with it on the training rows of all four and the held-out rows of three (BENCHMARKS.md,
    /// issue 21). Run files from before read as `None`.
    #[serde(default)]
    pub clip_norm: Option<f64>,
    /// The decay of the moving average of the weights that the run shows, evaluates and saves
    /// ([`crate::models::average`]); `None`: the last step's weights, as the Keras example and plain PyTorch.
    /// RealNVP's default is [`WEIGHT_AVERAGE`]: at a constant rate the last steps' weights wander about the
    /// optimum; on the parity harness's sharp sets the average of the same runs' weights ended 0.08-0.11 nats lower
    /// on the held-out rows than their last step's, and as much in PyTorch (BENCHMARKS.md, issue 21). Run files
    /// from before read as `None`.
    #[serde(default)]
    pub weight_average: Option<f64>,
}

/// RealNVP's moving average of its weights: each step keeps 0.999 of the average (about the last thousand steps,
/// a hundred epochs of the Keras example's 2,400 rows; less over the first steps, see [`crate::models::average`]).
pub const WEIGHT_AVERAGE: f64 = 0.999;

/// RealNVP's gradient clip: its whole gradient is about 12 long most of the time (p90 about 20, the largest of a
/// 300-epoch run 30-45) on the parity harness's data sets, so the clip shortens only the steps of the loss's jumps.
/// A clip at 20 (the default before 2026-12-05), which shortens the longest tenth, let the flow settle into its
/// training points: on eight Gaussians its held-out NLL rose 0.16 above the clip at 40's over 22 seeds.
pub const CLIP_NORM: f64 = 40.0;

/// What run files written before the choice existed were trained with.
fn keras_epsilon() -> f64 {
    KERAS_EPSILON
}

impl FlowConfig {
    /// The course's settings for each kind: RealNVP as the Keras example (6 layers, 4 x 256, Adam 1e-4,
    /// batch 256, 300 epochs); MAF as the TFP notebook (3 layers, MADE [128, 128], Adam 1e-3, batch 32);
    /// the affine warm-up with a large step, since it has four parameters.
    #[must_use]
    pub fn default_for(kind: FlowKind) -> Self {
        match kind {
            FlowKind::RealNvp => Self {
                kind,
                layers: 6,
                hidden: vec![256; 4],
                learning_rate: 1e-4,
                batch_size: 256,
                epochs: 300,
                seed: 42,
                init: FlowInit::default(),
                adam_epsilon: TORCH_EPSILON,
                lr_schedule: LrSchedule::Constant,
                clip_norm: Some(CLIP_NORM),
                weight_average: Some(WEIGHT_AVERAGE),
            },
            FlowKind::Maf => Self {
                kind,
                layers: 3,
                hidden: vec![128, 128],
                learning_rate: 1e-3,
                batch_size: 32,
                epochs: 100,
                seed: 42,
                init: FlowInit::default(),
                adam_epsilon: TORCH_EPSILON,
                lr_schedule: LrSchedule::Constant,
                clip_norm: None,
                weight_average: None,
            },
            FlowKind::Affine => Self {
                kind,
                layers: 1,
                hidden: Vec::new(),
                learning_rate: 1e-2,
                batch_size: 256,
                epochs: 50,
                seed: 42,
                init: FlowInit::default(),
                adam_epsilon: TORCH_EPSILON,
                lr_schedule: LrSchedule::Constant,
                clip_norm: None,
                weight_average: None,
            },
        }
    }
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self::default_for(FlowKind::RealNvp)
    }
}
