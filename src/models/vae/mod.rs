//! A variational autoencoder (Kingma and Welling, "Auto-encoding variational Bayes", 2014), as in the course's
//! second notebook (models.md section 2).
//!
//! The encoder maps an input `x` to `q(z | x) = N(mu, diag(sigma²))` (it outputs `mu` and `log sigma²`); a latent
//! is drawn by the reparametrisation `z = mu + sigma ⊙ eps`, `eps ~ N(0, I)`, so gradients flow through the draw;
//! the decoder maps `z` back to the parameters of `p(x | z)`. Training minimises the negative ELBO per input,
//!
//! `loss = reconstruction(x, decoder(z)) + beta · KL(q(z | x) || N(0, I))`,
//!
//! with `KL = ½ Σ_j (mu_j² + sigma_j² - 1 - log sigma_j²)` in closed form and the reconstruction either the
//! Bernoulli negative log-likelihood of binarised pixels (binary cross-entropy summed over pixels, on the
//! decoder's logits) or the course's `1000 × mean squared error`. `beta` follows a schedule (constant, linear
//! warm-up, cyclical). Two architectures: the MLP VAE (784-512-256 ReLU encoder, mirrored decoder) and the
//! course's convolutional VAE ([`crate::models::conv`]: convolutions with batch normalisation and LeakyReLU, and
//! transposed convolutions back).
//!
//! Here: the settings and the model as plain data ([`VaeConfig`], [`VaeParams`], [`VaeView`]) and the inputs a VAE
//! trains on ([`vae_inputs`]); `network.rs` the encoder and decoder as candle variables and the loss ([`VaeNet`]);
//! `trainer.rs` the model in the shared training loop ([`VaeTrainer`]); `score.rs` the k-nearest-neighbour score of
//! the latent means.

mod network;
mod score;
#[cfg(test)]
mod tests;
mod trainer;

pub use network::{VaeLoss, VaeNet, gaussian_kl};
pub use score::knn_accuracy;
pub use trainer::{VaeModel, VaeTrainer};

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use crate::compute::cpu::vae::{Likelihood, SHARDS};
use crate::compute::params::MlpParams;
use crate::data::prepare::{Prepared, image_side};
use crate::models::conv::ConvVaeParams;

/// The networks' shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VaeArch {
    /// Dense layers of [`VaeConfig::hidden`] units (ReLU), the decoder mirroring the encoder.
    #[default]
    Mlp,
    /// The course's convolutional VAE (models.md section 2); images only. [`VaeConfig::hidden`] is not used.
    Conv,
}

impl VaeArch {
    /// Name on the command line.
    #[must_use]
    pub fn cli_name(self) -> &'static str {
        match self {
            Self::Mlp => "mlp",
            Self::Conv => "conv",
        }
    }

    /// Name in the UI.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Mlp => "MLP (dense layers)",
            Self::Conv => "Convolutional (the course's)",
        }
    }
}

/// How `beta` (the KL weight) moves over training.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum BetaSchedule {
    /// Always `beta`.
    Constant,
    /// From 0 up to `beta` over the first `epochs` epochs.
    LinearWarmup {
        /// Epochs of the ramp.
        epochs: usize,
    },
    /// Ramps from 0 to `beta` over the first half of every `period` epochs, then holds (Fu et al., 2019).
    Cyclical {
        /// Epochs per cycle.
        period: usize,
    },
}

impl BetaSchedule {
    /// The weight at a (fractional) epoch, for a target `beta`.
    #[must_use]
    pub fn weight(self, beta: f64, epoch: f64) -> f64 {
        match self {
            Self::Constant => beta,
            Self::LinearWarmup { epochs } => beta * (epoch / epochs.max(1) as f64).min(1.0),
            Self::Cyclical { period } => {
                let period = period.max(1) as f64;
                let phase = (epoch % period) / period;
                beta * (2.0 * phase).min(1.0)
            }
        }
    }
}

/// The MLP VAE's default batch. The Keras example's 128 was made for MNIST's 60,000 images: on the built-in 4,250
/// training images it leaves 50 epochs 1,700 steps, and the test negative ELBO is still falling at the last one.
/// Batch 32 (the course's notebook's) gives 6,650 steps. Over ten seeds the test negative ELBO ended 2.5 nats lower
/// in the app (152.1 against 154.6) and 1.6 in plain PyTorch on the same rows (152.6 against 154.2); one of the app's
/// ten seeds ended above 155, where four were at 128 (BENCHMARKS.md, "The MLP VAE's batch").
pub const MLP_BATCH: usize = 32;

/// Architecture and training settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VaeConfig {
    /// The networks' shape.
    pub arch: VaeArch,
    /// Units of the encoder's hidden layers (the decoder mirrors them; MLP only).
    pub hidden: Vec<usize>,
    /// Latent dimension.
    pub latent: usize,
    /// `p(x | z)`.
    pub likelihood: Likelihood,
    /// Target weight of the KL term.
    pub beta: f64,
    /// How the weight reaches `beta`.
    pub beta_schedule: BetaSchedule,
    /// Learning rate (Adam).
    pub learning_rate: f64,
    /// Rows per minibatch.
    pub batch_size: usize,
    /// Epochs to train.
    pub epochs: usize,
    /// Seed of the weights, the minibatch order and the draws.
    pub seed: u64,
    /// The decay of the moving average of the weights that the run shows, evaluates and saves
    /// ([`crate::models::average`]); `None`: the last step's weights, as the Keras examples and plain PyTorch. Both
    /// architectures' default is [`WEIGHT_AVERAGE`] (the convolutional VAE's since 2026-12-06: beside its batch
    /// normalisation's running statistics the average lowered its test loss by 1.06 over five seeds, on every one;
    /// BENCHMARKS.md). Run files from before read as `None`, what they were trained with.
    #[serde(default)]
    pub weight_average: Option<f64>,
}

/// The VAE's moving average of its weights: each step keeps 0.999 of the average (about the last thousand steps,
/// eight epochs of the built-in 4,250 digits at batch 32; less over the first steps, see [`crate::models::average`]).
/// At batch 32 the MLP VAE's test negative ELBO overfits a little over the last epochs and moves from epoch to epoch;
/// the average of the same runs' weights ended 2.7 nats lower over forty seeds (lower on every one), and as much in
/// plain PyTorch (BENCHMARKS.md, "A moving average of the MLP VAE's weights"). The convolutional VAE's test loss
/// (1000 x squared error + KL) fell from 51.51 to 50.45 over five seeds, on every one ("The convolutional VAE with
/// the weight average").
pub const WEIGHT_AVERAGE: f64 = 0.999;

impl Default for VaeConfig {
    /// The MLP VAE: 784-512-256 ReLU encoder, mirrored decoder, latent 2, Bernoulli likelihood, beta 1, Adam 1e-3,
    /// batch 32 ([`MLP_BATCH`]), 50 epochs, the moving average of the weights ([`WEIGHT_AVERAGE`]) as the model.
    fn default() -> Self {
        Self {
            arch: VaeArch::Mlp,
            hidden: vec![512, 256],
            latent: 2,
            likelihood: Likelihood::Bernoulli,
            beta: 1.0,
            beta_schedule: BetaSchedule::Constant,
            learning_rate: 1e-3,
            batch_size: MLP_BATCH,
            epochs: 50,
            seed: 42,
            weight_average: Some(WEIGHT_AVERAGE),
        }
    }
}

impl VaeConfig {
    /// The course's convolutional setup (models.md section 2): the convolutional VAE, `1000 × MSE`, Adam 5e-4,
    /// batch 32, 30 epochs; the model is the moving average of its weights ([`WEIGHT_AVERAGE`]), where the course's
    /// is its last step's weights (`weight_average: None`).
    #[must_use]
    pub fn course_conv() -> Self {
        Self {
            arch: VaeArch::Conv,
            likelihood: Likelihood::Gaussian,
            learning_rate: 5e-4,
            batch_size: 32,
            epochs: 30,
            ..Self::default()
        }
    }
}

/// The two networks as plain data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum VaeNetworks {
    /// Dense layers.
    Mlp {
        /// Input -> `[mu, log sigma²]` (`2 latent` outputs).
        encoder: MlpParams,
        /// Latent -> the likelihood's parameters (logits for Bernoulli, values for Gaussian).
        decoder: MlpParams,
    },
    /// The convolutional VAE; its decoder gives logits for either likelihood.
    Conv(ConvVaeParams),
}

/// The trained network as plain data, for the views and the GPU code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VaeParams {
    /// The encoder and decoder.
    pub networks: VaeNetworks,
    /// Latent dimension.
    pub latent: usize,
    /// `p(x | z)`.
    pub likelihood: Likelihood,
    /// Side of the square image an input forms, if it is one.
    pub image_side: Option<usize>,
}

/// A plain-data view of a VAE for the UI.
#[derive(Clone, Debug, PartialEq)]
pub struct VaeView {
    /// The networks now.
    pub params: Arc<VaeParams>,
    /// The fixed test inputs whose reconstructions are recorded `[RECON_IMAGES, n_in]`.
    pub originals: Arc<Vec<f32>>,
    /// After each epoch (0 = untrained): `decoder(mean of encoder(x))` of the originals.
    pub reconstructions: Arc<Vec<(usize, Vec<f32>)>>,
}

/// Most epochs whose reconstructions are kept (about 50 kB each for MNIST); a longer run keeps every other one,
/// the first always, so the slider still reaches back to the start.
pub const MAX_RECONSTRUCTIONS: usize = 200;

/// Test inputs whose reconstructions are recorded every epoch (the course's 4 x 4 figure).
pub const RECON_IMAGES: usize = 16;

impl VaeParams {
    /// Values per input.
    #[must_use]
    pub fn n_in(&self) -> usize {
        match &self.networks {
            VaeNetworks::Mlp { encoder, .. } => encoder.n_in(),
            VaeNetworks::Conv(c) => c.side * c.side,
        }
    }

    /// True when the decoder's outputs go through a sigmoid to give the mean of `p(x | z)` (Bernoulli logits,
    /// and the convolutional decoder's outputs under either likelihood).
    #[must_use]
    pub fn sigmoid_output(&self) -> bool {
        self.likelihood == Likelihood::Bernoulli || matches!(self.networks, VaeNetworks::Conv(_))
    }

    /// Multiply-adds of the decoder per latent point.
    #[must_use]
    pub fn decoder_macs(&self) -> usize {
        match &self.networks {
            VaeNetworks::Mlp { decoder, .. } => decoder.macs_per_row(),
            VaeNetworks::Conv(c) => c.decoder_macs(),
        }
    }

    /// The architecture.
    #[must_use]
    pub fn arch(&self) -> VaeArch {
        match self.networks {
            VaeNetworks::Mlp { .. } => VaeArch::Mlp,
            VaeNetworks::Conv(_) => VaeArch::Conv,
        }
    }
}

/// Per-input figures over a set of inputs, in nats per input.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ElboFigures {
    /// Mean reconstruction term.
    pub recon: f64,
    /// Mean KL(q(z | x) || N(0, I)).
    pub kl: f64,
    /// `recon + kl`: the negative ELBO (beta 1).
    pub neg_elbo: f64,
}

/// Why a VAE with `arch` and `likelihood` cannot train on inputs of `n_in` features that form images (`images`: a
/// square number of non-negative features, see [`vae_inputs`]) or do not, or `None`. The convolutional VAE needs
/// images. So does the Bernoulli likelihood: it is for pixels in [0, 1], binarised; a table's rows are standardised
/// to real values, below 0 and above 1, where its cross-entropy `softplus(l) - x l` has no minimum (for `x > 1` it
/// falls without end as the logit `l` grows), so the loss would run to minus infinity instead of training.
#[must_use]
pub fn inputs_refusal(arch: VaeArch, likelihood: Likelihood, n_in: usize, images: bool) -> Option<String> {
    if images {
        return None;
    }
    let what = format!(
        "{n_in} features{}",
        if crate::data::prepare::image_side(n_in).is_some() { " with negative values" } else { "" }
    );
    match (arch, likelihood) {
        (VaeArch::Conv, _) => Some(format!(
            "the convolutional VAE needs images: a square number (25 or more) of non-negative features per row; \
             this data has {what}"
        )),
        (VaeArch::Mlp, Likelihood::Bernoulli) => Some(format!(
            "the Bernoulli likelihood is for images, pixels in [0, 1]; this data has {what}, a table whose rows the \
             VAE standardises to real values, on which its cross-entropy has no minimum: use the squared error \
             (\"1000 x squared error\" in the window, --gaussian on the command line)"
        )),
        (VaeArch::Mlp, Likelihood::Gaussian) => None,
    }
}

/// On inputs that are not `images` (a table), the MLP VAE's Bernoulli likelihood, which [`inputs_refusal`] refuses
/// there, gives way to the squared error; returns true when it did. The one rule by which the window and
/// `train vae` pick the likelihood for the data.
pub fn squared_error_for_a_table(config: &mut VaeConfig, images: bool) -> bool {
    let switch = !images && config.arch == VaeArch::Mlp && config.likelihood == Likelihood::Bernoulli;
    if switch {
        config.likelihood = Likelihood::Gaussian;
    }
    switch
}

/// Whether `data`'s features are images as the VAE takes them: a square number of them (25 or more, see
/// `image_side`), none negative once the standardisation is undone (up to its round-off: a 0 pixel comes back as
/// -4e-6).
#[must_use]
pub fn inputs_are_images(data: &Prepared) -> bool {
    let d = data.n_features();
    if crate::data::prepare::image_side(d).is_none() {
        return false;
    }
    let raw = || {
        data.x_train.chunks_exact(d).chain(data.x_test.chunks_exact(d)).flat_map(|row| {
            row.iter().zip(data.feature_mean.iter().zip(&data.feature_scale)).map(|(z, (m, s))| z * s + m)
        })
    };
    let max = raw().fold(0f32, f32::max).max(1e-12);
    raw().all(|v| v >= -1e-4 * max)
}

/// The inputs a VAE trains on, from prepared data: images (a square number of non-negative features, scaled to
/// [0, 1] by the largest value, binarised at 0.5 for the Bernoulli likelihood) or standardised table rows.
/// Returns the train and test inputs and the image side.
#[must_use]
pub fn vae_inputs(data: &Prepared, likelihood: Likelihood) -> (Vec<f32>, Vec<f32>, Option<usize>) {
    let d = data.n_features();
    let raw = |x: &[f32]| -> Vec<f32> {
        x.chunks_exact(d.max(1))
            .flat_map(|row| {
                row.iter().zip(data.feature_mean.iter().zip(&data.feature_scale)).map(|(z, (m, s))| z * s + m)
            })
            .collect()
    };
    match image_side(d).filter(|_| inputs_are_images(data)) {
        Some(side) => {
            let (train, test) = (raw(&data.x_train), raw(&data.x_test));
            let max = train.iter().chain(&test).copied().fold(0f32, f32::max).max(1e-12);
            let scale = |v: Vec<f32>| -> Vec<f32> {
                v.into_iter()
                    .map(|p| {
                        let p = (p / max).clamp(0.0, 1.0);
                        if likelihood == Likelihood::Bernoulli { f32::from(u8::from(p >= 0.5)) } else { p }
                    })
                    .collect()
            };
            (scale(train), scale(test), Some(side))
        }
        _ => (data.x_train.clone(), data.x_test.clone(), None),
    }
}
