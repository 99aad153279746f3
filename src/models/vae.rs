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

use std::sync::Arc;

use candle_core::{DType, Device, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};
use rayon::iter::{IntoParallelRefIterator, ParallelIterator};
use serde::{Deserialize, Serialize};

use crate::Lab;
use crate::compute::Activation;
use crate::compute::TrainError;
use crate::compute::cpu::dense::{DenseRef, with_cpu_f32};
use crate::compute::cpu::guard::{Located, Probe, check_loss, loss_value};
use crate::compute::cpu::optim::OptimizerKind;
use crate::compute::cpu::{conv as conv_cpu, vae as vae_cpu};
use crate::compute::params::{DenseParams, MlpParams};
use crate::data::prepare::{OutputKind, Prepared, image_side};
use crate::models::ModelView;
use crate::models::conv::{BatchStats, ConvVaeNet, ConvVaeParams, NormMode, pool_stats};
use crate::models::trainer::{EpochEnd, EpochLoop, EpochModel, EpochTrainer, Minibatch, StepLoss, Variables};

use crate::compute::cpu::vae::shard_bounds;
pub use crate::compute::cpu::vae::{Likelihood, SHARDS};

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
}

impl Default for VaeConfig {
    /// The MLP VAE: 784-512-256 ReLU encoder, mirrored decoder, latent 2, Bernoulli likelihood, beta 1, Adam 1e-3,
    /// batch 128, 50 epochs.
    fn default() -> Self {
        Self {
            arch: VaeArch::Mlp,
            hidden: vec![512, 256],
            latent: 2,
            likelihood: Likelihood::Bernoulli,
            beta: 1.0,
            beta_schedule: BetaSchedule::Constant,
            learning_rate: 1e-3,
            batch_size: 128,
            epochs: 50,
            seed: 42,
        }
    }
}

impl VaeConfig {
    /// The course's convolutional setup (models.md section 2): the convolutional VAE, `1000 × MSE`, Adam 5e-4,
    /// batch 32, 30 epochs.
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

/// One dense layer's variables.
struct Dense {
    weights: Var, // [in, out]
    biases: Var,  // [out]
    activation: Activation,
}

/// A stack of dense layers.
struct Stack {
    layers: Vec<Dense>,
}

impl Stack {
    /// PyTorch's default `Linear` initialisation: weights and biases uniform on ±1/sqrt(fan_in).
    fn new(
        widths: &[usize],
        hidden: Activation,
        last: Activation,
        rng: &mut ChaCha8Rng,
        dtype: DType,
    ) -> Result<Self, TrainError> {
        let device = Device::Cpu;
        let mut layers = Vec::new();
        for (i, pair) in widths.windows(2).enumerate() {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let bound = 1.0 / (fan_in as f64).sqrt();
            let dist = Uniform::new_inclusive(-bound, bound).map_err(|e| TrainError::Data(e.to_string()))?;
            let w: Vec<f64> = (0..fan_in * fan_out).map(|_| dist.sample(rng)).collect();
            let b: Vec<f64> = (0..fan_out).map(|_| dist.sample(rng)).collect();
            layers.push(Dense {
                weights: Var::from_tensor(&Tensor::from_vec(w, (fan_in, fan_out), &device)?.to_dtype(dtype)?)?,
                biases: Var::from_tensor(&Tensor::from_vec(b, fan_out, &device)?.to_dtype(dtype)?)?,
                activation: if i + 2 == widths.len() { last } else { hidden },
            });
        }
        Ok(Self { layers })
    }

    /// The stack's output for `x`; `probe` checks each layer's pre-activations (the last layer's only if
    /// `check_last`), naming them "{part} layer i's pre-activations".
    fn forward(&self, x: &Tensor, probe: &mut Probe, part: &str, check_last: bool) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        for (i, l) in self.layers.iter().enumerate() {
            let pre = h.matmul(l.weights.as_tensor())?.broadcast_add(l.biases.as_tensor())?;
            if check_last || i + 1 < self.layers.len() {
                probe.check(&pre, || format!("{part} layer {}'s pre-activations", i + 1))?;
            }
            h = l.activation.apply(&pre)?;
        }
        Ok(h)
    }

    fn vars(&self) -> impl Iterator<Item = Var> + '_ {
        self.layers.iter().flat_map(|l| [l.weights.clone(), l.biases.clone()])
    }

    /// The stack from plain data (a saved model's).
    fn from_params(p: &MlpParams, dtype: DType) -> candle_core::Result<Self> {
        let device = Device::Cpu;
        let layers = p
            .layers
            .iter()
            .map(|l| {
                Ok(Dense {
                    weights: Var::from_tensor(
                        &Tensor::from_slice(&l.weights, (l.n_in, l.n_out), &device)?.to_dtype(dtype)?,
                    )?,
                    biases: Var::from_tensor(&Tensor::from_slice(&l.biases, l.n_out, &device)?.to_dtype(dtype)?)?,
                    activation: l.activation,
                })
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(Self { layers })
    }

    fn params(&self) -> candle_core::Result<MlpParams> {
        let layers = self
            .layers
            .iter()
            .map(|l| {
                let (n_in, n_out) = l.weights.as_tensor().dims2()?;
                Ok(DenseParams {
                    n_in,
                    n_out,
                    weights: l.weights.as_tensor().to_dtype(DType::F32)?.flatten_all()?.to_vec1()?,
                    biases: l.biases.as_tensor().to_dtype(DType::F32)?.to_vec1()?,
                    activation: l.activation,
                })
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(MlpParams { layers })
    }
}

/// `KL(N(mu, diag(exp(logvar))) || N(0, I)) = ½ Σ_j (mu_j² + exp(logvar_j) - 1 - logvar_j)` per row:
/// `mu`, `logvar` `[n, d]` -> `[n]`.
pub fn gaussian_kl(mu: &Tensor, logvar: &Tensor) -> candle_core::Result<Tensor> {
    ((mu.sqr()? + logvar.exp()?)? - logvar)?.affine(0.5, -0.5)?.sum(1)
}

/// The two networks of either architecture.
enum Networks {
    Mlp { encoder: Stack, decoder: Stack },
    Conv(ConvVaeNet),
}

/// Images per forward pass of the convolutional networks when evaluating (bounds the gathered columns'
/// memory: 256 images of 28 × 28 gather about 60 MB at the widest layer).
const CONV_EVAL_CHUNK: usize = 256;

/// The encoder and decoder, and the math of the loss; F32 for training, F64 for gradient checks.
pub struct VaeNet {
    networks: Networks,
    latent: usize,
    likelihood: Likelihood,
    dtype: DType,
}

/// One batch's loss terms, each a mean over its rows (nats per input).
pub struct VaeLoss {
    /// Reconstruction term.
    pub recon: Tensor,
    /// KL term (before beta).
    pub kl: Tensor,
    /// `recon + beta kl`.
    pub total: Tensor,
    /// Batch statistics of the convolutional networks' normalised layers (encoder's, decoder's), for the
    /// running averages; empty when evaluating and for the MLP.
    pub norm_stats: (BatchStats, BatchStats),
}

impl VaeNet {
    /// Whether this is the MLP VAE (the one [`vae_cpu`]'s hand-written pass takes).
    fn is_mlp(&self) -> bool {
        matches!(self.networks, Networks::Mlp { .. })
    }

    /// Runs `f` on the MLP VAE's networks and loss settings (KL weight `beta`), the weights borrowed from the
    /// variables without a copy; `None` for the convolutional VAE or variables that are not CPU f32.
    fn with_mlp_values<R>(&self, beta: f64, f: impl FnOnce(vae_cpu::MlpVae<'_>) -> R) -> Option<R> {
        let Networks::Mlp { encoder, decoder } = &self.networks else { return None };
        let tensors: Vec<&Tensor> = [encoder, decoder]
            .iter()
            .flat_map(|stack| stack.layers.iter().flat_map(|d| [d.weights.as_tensor(), d.biases.as_tensor()]))
            .collect();
        if tensors.iter().any(|t| t.rank() > 2) {
            return None;
        }
        with_cpu_f32(&tensors, |values| {
            let mut values = values.iter().copied();
            let mut refs = |stack: &Stack| -> Option<Vec<DenseRef<'_>>> {
                let mut layers = Vec::with_capacity(stack.layers.len());
                for d in &stack.layers {
                    let (weights, biases) = (values.next()?, values.next()?);
                    let (n_in, n_out) = d.weights.as_tensor().dims2().ok()?;
                    layers.push(DenseRef { weights, biases, n_in, n_out, activation: d.activation });
                }
                Some(layers)
            };
            let (encoder, decoder) = (refs(encoder)?, refs(decoder)?);
            Some(f(vae_cpu::MlpVae {
                encoder: &encoder,
                decoder: &decoder,
                latent: self.latent,
                likelihood: self.likelihood,
                beta,
            }))
        })
        .flatten()
    }

    /// A fresh network for inputs of `n_in` values (a square number for the convolutional VAE).
    pub fn new(config: &VaeConfig, n_in: usize, dtype: DType) -> Result<Self, TrainError> {
        if config.latent == 0 || config.hidden.contains(&0) {
            return Err(TrainError::Data("the latent dimension and every layer need at least one unit".into()));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let networks = match config.arch {
            VaeArch::Mlp => {
                let mut enc = vec![n_in];
                enc.extend(&config.hidden);
                enc.push(2 * config.latent);
                let mut dec = vec![config.latent];
                dec.extend(config.hidden.iter().rev());
                dec.push(n_in);
                // Bernoulli: the decoder gives logits (the loss applies the sigmoid stably); Gaussian: values.
                Networks::Mlp {
                    encoder: Stack::new(&enc, Activation::Relu, Activation::Identity, &mut rng, dtype)?,
                    decoder: Stack::new(&dec, Activation::Relu, Activation::Identity, &mut rng, dtype)?,
                }
            }
            VaeArch::Conv => {
                let Some(side) = image_side(n_in) else {
                    return Err(TrainError::Data(format!(
                        "the convolutional VAE needs square images; this data has {n_in} features per row, \
                         which is not a square number (use the MLP VAE for tables)"
                    )));
                };
                Networks::Conv(ConvVaeNet::new(side, config.latent, &mut rng, dtype)?)
            }
        };
        Ok(Self { networks, latent: config.latent, likelihood: config.likelihood, dtype })
    }

    /// The networks of saved parameters (`params` as [`Self::params`] gives them): the same outputs to the
    /// last bit in F32.
    pub fn from_params(params: &VaeParams, dtype: DType) -> Result<Self, TrainError> {
        let networks = match &params.networks {
            VaeNetworks::Mlp { encoder, decoder } => Networks::Mlp {
                encoder: Stack::from_params(encoder, dtype)?,
                decoder: Stack::from_params(decoder, dtype)?,
            },
            VaeNetworks::Conv(conv) => Networks::Conv(ConvVaeNet::from_params(conv, dtype)?),
        };
        Ok(Self { networks, latent: params.latent, likelihood: params.likelihood, dtype })
    }

    /// Every variable, with names for error messages.
    #[must_use]
    pub fn vars(&self) -> (Vec<Var>, Vec<String>) {
        match &self.networks {
            Networks::Mlp { encoder, decoder } => {
                let mut vars = Vec::new();
                let mut names = Vec::new();
                for (part, stack) in [("encoder", encoder), ("decoder", decoder)] {
                    for (i, v) in stack.vars().enumerate() {
                        let what = if i % 2 == 0 { "weights" } else { "biases" };
                        names.push(format!("{part} layer {} {what}", i / 2 + 1));
                        vars.push(v);
                    }
                }
                (vars, names)
            }
            Networks::Conv(net) => net.vars(),
        }
    }

    /// The encoder's `[mu, log sigma²]` and, for the convolutional VAE in `mode` [`NormMode::Batch`], its batch
    /// statistics; `probe` checks every layer, then the means and the log-variances.
    fn encode_in(
        &self,
        x: &Tensor,
        mode: NormMode,
        probe: &mut Probe,
    ) -> candle_core::Result<(Tensor, Tensor, BatchStats)> {
        let (out, stats) = match &self.networks {
            Networks::Mlp { encoder, .. } => (encoder.forward(x, probe, "encoder", false)?, Vec::new()),
            // Evaluation by the hand-written pass where it can (its results are not differentiated).
            Networks::Conv(net) => match (mode == NormMode::Running).then(|| net.running_by_hand(x, false)).flatten() {
                Some(out) => (out, Vec::new()),
                None => net.encode_probed(x, mode, probe)?,
            },
        }; // [n, 2 latent]
        let (mu, logvar) = (out.narrow(1, 0, self.latent)?, out.narrow(1, self.latent, self.latent)?);
        let last_layer = || match &self.networks {
            Networks::Mlp { encoder, .. } => format!("encoder layer {}", encoder.layers.len()),
            Networks::Conv(_) => "the encoder dense layer".to_owned(),
        };
        probe.check(&mu, || format!("the latent means from {}", last_layer()))?;
        probe.check(&logvar, || format!("the log-variance from {}", last_layer()))?;
        Ok((mu, logvar, stats))
    }

    /// The decoder's output and batch statistics (as [`Self::encode_in`]); `probe` checks every layer.
    fn decode_in(&self, z: &Tensor, mode: NormMode, probe: &mut Probe) -> candle_core::Result<(Tensor, BatchStats)> {
        match &self.networks {
            Networks::Mlp { decoder, .. } => Ok((decoder.forward(z, probe, "decoder", true)?, Vec::new())),
            Networks::Conv(net) => match (mode == NormMode::Running).then(|| net.running_by_hand(z, true)).flatten() {
                Some(out) => Ok((out, Vec::new())),
                None => net.decode_probed(z, mode, probe),
            },
        }
    }

    /// `mu`, `logvar` `[n, latent]` for inputs `x` `[n, n_in]`, as in evaluation (the convolutional VAE's
    /// batch normalisation uses its running averages, and works through large inputs in chunks).
    pub fn encode(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let n = x.dim(0)?;
        if let Networks::Conv(net) = &self.networks
            && let Some(out) = net.running_by_hand(x, false)
        {
            return Ok((out.narrow(1, 0, self.latent)?, out.narrow(1, self.latent, self.latent)?));
        }
        if matches!(self.networks, Networks::Mlp { .. }) || n <= CONV_EVAL_CHUNK {
            let (mu, logvar, _) = self.encode_in(x, NormMode::Running, &mut Probe::off())?;
            return Ok((mu, logvar));
        }
        let (mut mus, mut logvars) = (Vec::new(), Vec::new());
        for start in (0..n).step_by(CONV_EVAL_CHUNK) {
            let (mu, logvar, _) = self.encode_in(
                &x.narrow(0, start, CONV_EVAL_CHUNK.min(n - start))?,
                NormMode::Running,
                &mut Probe::off(),
            )?;
            // Detached: a chunk's result would otherwise keep every activation of its pass alive until the end.
            mus.push(mu.detach());
            logvars.push(logvar.detach());
        }
        Ok((Tensor::cat(&mus, 0)?, Tensor::cat(&logvars, 0)?))
    }

    /// The mean of `p(x | z)` from the decoder's output: the sigmoid of logits (Bernoulli; the convolutional
    /// decoder under either likelihood) or the output itself (the MLP under the Gaussian likelihood).
    fn output_mean(&self, out: &Tensor) -> candle_core::Result<Tensor> {
        if self.likelihood == Likelihood::Bernoulli || matches!(self.networks, Networks::Conv(_)) {
            Activation::Sigmoid.apply(out)
        } else {
            Ok(out.clone())
        }
    }

    /// Reconstruction term per row `[n]`: Bernoulli `Σ softplus(l) - x l` over the logits `l`, or `1000 × mean
    /// (x - x̂)²`.
    fn recon_per_row(&self, x: &Tensor, out: &Tensor) -> candle_core::Result<Tensor> {
        match self.likelihood {
            Likelihood::Bernoulli => (Activation::Softplus.apply(out)? - x.mul(out)?)?.sum(1),
            Likelihood::Gaussian => x.sub(&self.output_mean(out)?)?.sqr()?.mean(1)? * 1000.0,
        }
    }

    /// The training loss of a batch `x` `[n, n_in]` with latent noise `eps` `[n, latent]` and KL weight `beta`:
    /// batch normalisation (convolutional VAE) uses the batch's statistics, which the result carries.
    pub fn loss(&self, x: &Tensor, eps: &Tensor, beta: f64) -> candle_core::Result<VaeLoss> {
        self.loss_in(x, eps, beta, NormMode::Batch, &mut Probe::off())
    }

    /// The loss as in evaluation: batch normalisation uses its running averages.
    pub fn eval_loss(&self, x: &Tensor, eps: &Tensor, beta: f64) -> candle_core::Result<VaeLoss> {
        self.loss_in(x, eps, beta, NormMode::Running, &mut Probe::off())
    }

    /// The loss; `probe` checks every quantity in the order it is computed.
    fn loss_in(
        &self,
        x: &Tensor,
        eps: &Tensor,
        beta: f64,
        mode: NormMode,
        probe: &mut Probe,
    ) -> candle_core::Result<VaeLoss> {
        let (mu, logvar, encoder_stats) = self.encode_in(x, mode, probe)?;
        let sd = logvar.affine(0.5, 0.0)?.exp()?; // [n, latent]
        probe.check(&sd, || "the latent standard deviations".to_owned())?;
        let z = (&mu + (sd * eps)?)?; // [n, latent]
        probe.check(&z, || "the latent draws z".to_owned())?;
        let (out, decoder_stats) = self.decode_in(&z, mode, probe)?; // [n, n_in]
        let recon_rows = self.recon_per_row(x, &out)?;
        probe.check(&recon_rows, || "the reconstruction term".to_owned())?;
        let recon = recon_rows.mean_all()?;
        probe.check(&recon, || "the reconstruction term".to_owned())?;
        let kl_rows = gaussian_kl(&mu, &logvar)?;
        probe.check(&kl_rows, || "the KL term".to_owned())?;
        let kl = kl_rows.mean_all()?;
        probe.check(&kl, || "the KL term".to_owned())?;
        let total = (&recon + (&kl * beta)?)?;
        Ok(VaeLoss { recon, kl, total, norm_stats: (encoder_stats, decoder_stats) })
    }

    /// Where the training pass over `x` with noise `eps` first holds a NaN or an infinity (`None` when only the
    /// total does), shard by shard as [`VaeTrainer`] takes a step: for the NaN guard.
    fn locate_non_finite(&self, x: &Tensor, eps: &Tensor, beta: f64) -> Located {
        let mut probe = Probe::on();
        for (start, rows) in shard_bounds(x.dim(0)?) {
            probe.new_pass();
            self.loss_in(&x.narrow(0, start, rows)?, &eps.narrow(0, start, rows)?, beta, NormMode::Batch, &mut probe)?;
        }
        Ok(probe.found())
    }

    /// Rows per forward pass when evaluating many inputs.
    fn eval_chunk(&self) -> usize {
        match self.networks {
            Networks::Mlp { .. } => 1024,
            Networks::Conv(_) => CONV_EVAL_CHUNK,
        }
    }

    /// Folds a training step's batch statistics into the running averages (convolutional VAE only).
    pub fn update_running(&mut self, stats: &(BatchStats, BatchStats)) {
        if let Networks::Conv(net) = &mut self.networks {
            net.update_running(&stats.0, &stats.1);
        }
    }

    /// Standard normal draws `[n, latent]` from `rng`.
    pub fn draw_noise(&self, n: usize, rng: &mut ChaCha8Rng) -> candle_core::Result<Tensor> {
        let eps: Vec<f64> = (0..n * self.latent).map(|_| StandardNormal.sample(rng)).collect();
        Tensor::from_vec(eps, (n, self.latent), &Device::Cpu)?.to_dtype(self.dtype)
    }

    /// The mean of `p(x | z)` for latents `z` `[n, latent]`: pixel probabilities or values `[n, n_in]`, as in
    /// evaluation.
    pub fn decode_mean(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        let n = z.dim(0)?;
        if matches!(self.networks, Networks::Mlp { .. }) || n <= CONV_EVAL_CHUNK {
            return self.output_mean(&self.decode_in(z, NormMode::Running, &mut Probe::off())?.0);
        }
        let parts = (0..n)
            .step_by(CONV_EVAL_CHUNK)
            .map(|start| {
                let (out, _) = self.decode_in(
                    &z.narrow(0, start, CONV_EVAL_CHUNK.min(n - start))?,
                    NormMode::Running,
                    &mut Probe::off(),
                )?;
                Ok(self.output_mean(&out)?.detach())
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Tensor::cat(&parts, 0)
    }

    /// Plain-data copies of the two networks.
    pub fn params(&self, image_side: Option<usize>) -> candle_core::Result<VaeParams> {
        let networks = match &self.networks {
            Networks::Mlp { encoder, decoder } => {
                VaeNetworks::Mlp { encoder: encoder.params()?, decoder: decoder.params()? }
            }
            Networks::Conv(net) => VaeNetworks::Conv(net.params()?),
        };
        Ok(VaeParams { networks, latent: self.latent, likelihood: self.likelihood, image_side })
    }
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
    let (train, test) = (raw(&data.x_train), raw(&data.x_test));
    let side = image_side(d);
    let max = train.iter().chain(&test).copied().fold(0f32, f32::max).max(1e-12);
    // Undoing the standardisation leaves round-off (a 0 pixel comes back as -4e-6): pixels are non-negative up to
    // that.
    let non_negative = train.iter().chain(&test).all(|&v| v >= -1e-4 * max);
    match side {
        Some(side) if non_negative => {
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

/// The VAE's side of its training: the networks, the inputs, the hand-written passes' buffers and the
/// reconstructions kept after each epoch.
pub struct VaeModel {
    config: VaeConfig,
    net: VaeNet,
    n_in: usize,
    image_side: Option<usize>,
    x_train: Tensor, // [n_train, n_in]
    x_test: Tensor,  // [n_test, n_in]
    /// Class labels of the training and test rows, when the data has a label column (for the kNN score).
    labels: Option<(Vec<u32>, Vec<u32>)>,
    /// Steps go by the hand-written passes (the default: [`vae_cpu`] for the MLP VAE, [`conv_cpu`] for the
    /// convolutional one) rather than candle's autograd: the same loss and gradients in less time (BENCHMARKS.md).
    hand_written_pass: bool,
    /// The hand-written passes' buffers, reused from step to step (one of them stays empty).
    workspace: vae_cpu::MlpVaeWorkspace,
    conv_workspace: conv_cpu::ConvVaeWorkspace,
    /// The first [`RECON_IMAGES`] test inputs `[k, n_in]`.
    originals: Tensor,
    reconstructions: Arc<Vec<(usize, Vec<f32>)>>,
}

/// The VAE and its training state: a [`VaeModel`] in the shared loop. Its loss terms, averaged per epoch, are the
/// reconstruction term, the KL term and the loss (reconstruction + beta KL).
pub type VaeTrainer = EpochTrainer<VaeModel, 3>;

/// One shard's share of a step.
struct Shard {
    rows: usize,
    recon: f64,
    kl: f64,
    total: f64,
    /// `None` when the loss was not finite (no backward pass then).
    grads: Option<candle_core::backprop::GradStore>,
    norm_stats: (BatchStats, BatchStats),
}

/// One step's inputs: the minibatch `x` `[batch, n_in]`, its latent noise `eps` `[batch, latent]`, the KL weight
/// and the step's number.
struct StepInputs<'a> {
    x: &'a Tensor,
    eps: &'a Tensor,
    beta: f64,
    step: u64,
}

/// Rows of the training split evaluated at each epoch's end (all of the test split is).
const EVAL_TRAIN_ROWS: usize = 1000;

/// What the guard names when only the VAE's loss itself is not finite.
const LOSS_NAME: &str = "the loss (reconstruction + KL)";

impl VaeTrainer {
    /// Builds the VAE for `data` (its features; a label column, if any, only colours the views and scores the
    /// latent space).
    pub fn new(config: VaeConfig, data: &Arc<Prepared>) -> Result<Self, TrainError> {
        let n_in = data.n_features();
        let n_train = data.n_train();
        if n_in == 0 || n_train == 0 {
            return Err(TrainError::Data("the VAE needs feature columns and training rows".into()));
        }
        if config.batch_size == 0 {
            return Err(TrainError::Data("the batch size must be at least 1".into()));
        }
        let (train, test, image_side) = vae_inputs(data, config.likelihood);
        if config.arch == VaeArch::Conv && image_side.is_none() {
            return Err(TrainError::Data(format!(
                "the convolutional VAE needs images: a square number of non-negative features per row; this data \
                 has {n_in} features{}",
                if crate::data::prepare::image_side(n_in).is_some() { " with negative values" } else { "" }
            )));
        }
        let net = VaeNet::new(&config, n_in, DType::F32)?;
        let (vars, names) = net.vars();
        let variables = Variables::new(vars, names, OptimizerKind::Adam, config.learning_rate)?;
        let rng = ChaCha8Rng::seed_from_u64(config.seed ^ 0x0000_7ae5);
        let epochs = EpochLoop::new(n_train, config.batch_size, config.epochs, rng);
        let labels = match &data.output {
            Some((_, OutputKind::Classes { .. })) => Some((
                data.y_train.iter().map(|&c| c as u32).collect(),
                data.y_test.iter().map(|&c| c as u32).collect(),
            )),
            _ => None,
        };
        let device = Device::Cpu;
        let x_test = Tensor::from_vec(test, (data.n_test(), n_in), &device)?;
        let originals = x_test.narrow(0, 0, data.n_test().min(RECON_IMAGES))?;
        let mut model = VaeModel {
            x_train: Tensor::from_vec(train, (n_train, n_in), &device)?,
            x_test,
            originals,
            reconstructions: Arc::new(Vec::new()),
            n_in,
            image_side,
            labels,
            hand_written_pass: true,
            workspace: vae_cpu::MlpVaeWorkspace::default(),
            conv_workspace: conv_cpu::ConvVaeWorkspace::default(),
            net,
            config,
        };
        model.record_reconstructions(0)?;
        Ok(Self { model, variables, epochs })
    }

    /// Whether steps take the hand-written passes (the default) or candle's autograd (for comparisons).
    pub fn set_hand_written_pass(&mut self, on: bool) {
        self.model.hand_written_pass = on;
    }

    /// Recon, KL and negative ELBO (beta 1) per input over `x`, one seeded latent draw per input.
    pub fn elbo(&self, x: &Tensor, seed: u64) -> Result<ElboFigures, TrainError> {
        self.model.elbo(x, seed)
    }

    /// Test-split figures.
    pub fn test_elbo(&self) -> Result<ElboFigures, TrainError> {
        self.model.test_elbo()
    }

    /// Latent means `[n, latent]` of the training and test inputs.
    pub fn latent_means(&self) -> Result<(Vec<f32>, Vec<f32>), TrainError> {
        self.model.latent_means()
    }

    /// The share of test inputs whose 5 nearest training latent means (Euclidean) vote for their label; `None`
    /// without labels.
    pub fn knn5_accuracy(&self) -> Result<Option<f64>, TrainError> {
        self.model.knn5_accuracy()
    }

    /// `decoder(mean of encoder(x))` of the first `n` test inputs `[n, n_in]` (fewer if the split is smaller).
    pub fn test_reconstructions(&self, n: usize) -> Result<Vec<f32>, TrainError> {
        let model = &self.model;
        let x = model.x_test.narrow(0, 0, n.min(model.x_test.dim(0)?))?;
        let (mu, _) = model.net.encode(&x)?;
        Ok(model.net.decode_mean(&mu)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
    }

    /// The first `n` test inputs `[n, n_in]` as the model sees them (scaled, binarised for Bernoulli).
    pub fn test_inputs(&self, n: usize) -> Result<Vec<f32>, TrainError> {
        let x_test = &self.model.x_test;
        Ok(x_test.narrow(0, 0, n.min(x_test.dim(0)?))?.flatten_all()?.to_vec1()?)
    }

    /// Mean squared error of `decoder(mean of encoder(x))` against `x` over the test inputs.
    pub fn roundtrip_mse(&self) -> Result<f64, TrainError> {
        let model = &self.model;
        let (mu, _) = model.net.encode(&model.x_test)?;
        let back = model.net.decode_mean(&mu)?;
        Ok(f64::from(back.sub(&model.x_test)?.sqr()?.mean_all()?.to_dtype(DType::F32)?.to_scalar::<f32>()?))
    }

    /// The network as plain data.
    pub fn params(&self) -> Result<VaeParams, TrainError> {
        self.model.params()
    }

    /// Inputs per row.
    #[must_use]
    pub fn n_in(&self) -> usize {
        self.model.n_in
    }

    /// The trainer of [`Self::new`] with the networks of `params` (a saved model's) in place of fresh ones, for
    /// evaluating them as the trainer does ([`Self::test_elbo`], [`Self::knn5_accuracy`]): the same figures to
    /// the last bit as the model gave when it was trained. Training from here starts a fresh optimiser.
    pub fn with_params(config: VaeConfig, data: &Arc<Prepared>, params: &VaeParams) -> Result<Self, TrainError> {
        if params.arch() != config.arch || params.latent != config.latent || params.likelihood != config.likelihood {
            return Err(TrainError::Data(format!(
                "the saved VAE ({}, latent {}, {}) is not the one the settings describe ({}, latent {}, {})",
                params.arch().cli_name(),
                params.latent,
                params.likelihood.cli_name(),
                config.arch.cli_name(),
                config.latent,
                config.likelihood.cli_name()
            )));
        }
        let mut trainer = Self::new(config, data)?;
        if params.n_in() != trainer.model.n_in {
            return Err(TrainError::Data(format!(
                "the saved VAE takes {} values per input but the data has {}",
                params.n_in(),
                trainer.model.n_in
            )));
        }
        trainer.model.net = VaeNet::from_params(params, DType::F32)?;
        let (vars, names) = trainer.model.net.vars();
        trainer.variables = Variables::new(vars, names, OptimizerKind::Adam, trainer.model.config.learning_rate)?;
        trainer.model.reconstructions = Arc::new(Vec::new());
        trainer.model.record_reconstructions(0)?;
        Ok(trainer)
    }
}

impl VaeModel {
    /// The loss and its gradients for the minibatch `x` with noise `eps`, in [`SHARDS`] parts as parallel tasks.
    fn forward_backward_in_shards(&self, x: &Tensor, eps: &Tensor, beta: f64) -> Result<Vec<Shard>, TrainError> {
        let n = x.dim(0)?;
        let net = &self.net;
        let run = |start: usize, rows: usize| -> Result<Shard, TrainError> {
            let l = net.loss(&x.narrow(0, start, rows)?, &eps.narrow(0, start, rows)?, beta)?;
            let total = loss_value(&l.total)?;
            let grads = if total.is_finite() { Some(l.total.backward()?) } else { None };
            let (recon, kl) = (loss_value(&l.recon)?, loss_value(&l.kl)?);
            Ok(Shard { rows, recon, kl, total, grads, norm_stats: l.norm_stats })
        };
        let bounds = shard_bounds(n);
        if bounds.len() == 1 {
            return Ok(vec![run(0, n)?]);
        }
        // Rayon tasks in the pool candle's matrix products use: a shard's products run on its own worker while the
        // other is busy, and help the other shard when it is not; no thread waits spinning on another.
        bounds.par_iter().map(|&(start, rows)| run(start, rows)).collect()
    }

    /// One step by the hand-written pass ([`vae_cpu`] for the MLP VAE, [`conv_cpu`] for the convolutional one):
    /// the loss terms of the step's minibatch, after the guard's check and the update (and the convolutional VAE's
    /// running averages).
    fn hand_written_step(&mut self, variables: &mut Variables, inputs: &StepInputs) -> Result<StepLoss<3>, TrainError> {
        let StepInputs { x, eps, beta, step } = *inputs;
        let points: Vec<f32> = x.flatten_all()?.to_vec1()?;
        let noise: Vec<f32> = eps.flatten_all()?.to_vec1()?;
        let net = &self.net;
        let loss = match &net.networks {
            Networks::Mlp { .. } => {
                let work = &mut self.workspace;
                net.with_mlp_values(beta, |vae| vae_cpu::mlp_vae_loss_and_gradients(vae, &points, &noise, work))
            }
            Networks::Conv(conv) => {
                let work = &mut self.conv_workspace;
                conv.with_values(net.likelihood, beta, |vae| {
                    conv_cpu::conv_vae_loss_and_gradients(vae, &points, &noise, work)
                })
            }
        };
        let loss = loss
            .flatten()
            .ok_or_else(|| TrainError::Backend("the hand-written pass needs the VAE's variables in f32".into()))?;
        let gradients = if net.is_mlp() { self.workspace.gradients() } else { self.conv_workspace.gradients() };
        variables.guarded_flat_step(loss.total, gradients, LOSS_NAME, step, || net.locate_non_finite(x, eps, beta))?;
        if !self.net.is_mlp() {
            let stats = pool_stats(&self.conv_workspace.batch_stats());
            self.net.update_running(&stats);
        }
        Ok(StepLoss { total: loss.total, terms: [loss.recon, loss.kl, loss.total] })
    }

    /// One step by candle's autograd, in [`SHARDS`] parallel shards: the loss terms, after the guard's check and
    /// the update (and the convolutional VAE's running averages).
    fn candle_step(&mut self, variables: &mut Variables, inputs: &StepInputs) -> Result<StepLoss<3>, TrainError> {
        let StepInputs { x, eps, beta, step } = *inputs;
        let shards = self.forward_backward_in_shards(x, eps, beta)?;
        let n = x.dim(0)?;
        let share = |s: &Shard| s.rows as f64 / n as f64;
        let mean = |f: fn(&Shard) -> f64| shards.iter().map(|s| share(s) * f(s)).sum::<f64>();
        let (recon, kl, total) = (mean(|s| s.recon), mean(|s| s.kl), mean(|s| s.total));
        // The NaN guard, in its two pieces (the gradients come from the shards, not from one backward pass).
        let net = &self.net;
        let Variables { vars, names, optimizer, last_good } = variables;
        check_loss(total, vars, last_good, LOSS_NAME, step, || net.locate_non_finite(x, eps, beta))?;
        last_good.remember(vars)?;
        // The minibatch's gradient: the shards' weighted by their rows, into the first shard's store.
        let mut shards = shards;
        let mut grads = shards[0].grads.take().ok_or_else(|| TrainError::Backend("no gradients".into()))?;
        for var in vars.iter() {
            let mut sum: Option<Tensor> = None;
            for (k, shard) in shards.iter().enumerate() {
                let g = if k == 0 {
                    grads.get(var.as_tensor())
                } else {
                    shard.grads.as_ref().and_then(|g| g.get(var.as_tensor()))
                };
                if let Some(g) = g {
                    let part = (g * share(shard))?;
                    sum = Some(match sum {
                        Some(t) => (t + part)?,
                        None => part,
                    });
                }
            }
            if let Some(sum) = sum {
                grads.insert(var.as_tensor(), sum);
            }
        }
        optimizer.step(vars, names, &grads, step)?;
        let parts: Vec<(usize, &(BatchStats, BatchStats))> = shards.iter().map(|s| (s.rows, &s.norm_stats)).collect();
        self.net.update_running(&pool_stats(&parts));
        Ok(StepLoss { total, terms: [recon, kl, total] })
    }

    /// Records the reconstructions of the fixed test inputs after `epoch`.
    fn record_reconstructions(&mut self, epoch: usize) -> Result<(), TrainError> {
        if self.originals.dim(0)? == 0 {
            return Ok(());
        }
        let (mu, _) = self.net.encode(&self.originals)?;
        let back = self.net.decode_mean(&mu)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let history = Arc::make_mut(&mut self.reconstructions);
        history.push((epoch, back));
        crate::models::trainer::thin_history(history, MAX_RECONSTRUCTIONS);
        Ok(())
    }

    /// The KL weight after `progress` epochs (fractional).
    fn beta_at(&self, progress: f64) -> f64 {
        self.config.beta_schedule.weight(self.config.beta, progress)
    }

    /// See [`VaeTrainer::elbo`].
    fn elbo(&self, x: &Tensor, seed: u64) -> Result<ElboFigures, TrainError> {
        let n = x.dim(0)?;
        if n == 0 {
            return Ok(ElboFigures { recon: f64::NAN, kl: f64::NAN, neg_elbo: f64::NAN });
        }
        let (mut recon, mut kl) = (0.0, 0.0);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let chunk = self.net.eval_chunk();
        for start in (0..n).step_by(chunk) {
            let len = (n - start).min(chunk);
            let xb = x.narrow(0, start, len)?;
            let eps = self.net.draw_noise(len, &mut rng)?;
            let l = self.net.eval_loss(&xb, &eps, 1.0)?;
            recon += f64::from(l.recon.to_dtype(DType::F32)?.to_scalar::<f32>()?) * len as f64;
            kl += f64::from(l.kl.to_dtype(DType::F32)?.to_scalar::<f32>()?) * len as f64;
        }
        let (recon, kl) = (recon / n as f64, kl / n as f64);
        Ok(ElboFigures { recon, kl, neg_elbo: recon + kl })
    }

    /// See [`VaeTrainer::test_elbo`].
    fn test_elbo(&self) -> Result<ElboFigures, TrainError> {
        self.elbo(&self.x_test, self.config.seed ^ 0x7e57)
    }

    /// See [`VaeTrainer::latent_means`].
    fn latent_means(&self) -> Result<(Vec<f32>, Vec<f32>), TrainError> {
        let enc = |x: &Tensor| -> Result<Vec<f32>, TrainError> {
            Ok(self.net.encode(x)?.0.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?)
        };
        Ok((enc(&self.x_train)?, enc(&self.x_test)?))
    }

    /// See [`VaeTrainer::knn5_accuracy`].
    fn knn5_accuracy(&self) -> Result<Option<f64>, TrainError> {
        let Some((train_labels, test_labels)) = &self.labels else { return Ok(None) };
        let (train, test) = self.latent_means()?;
        Ok(Some(knn_accuracy(&train, train_labels, &test, test_labels, self.config.latent, 5)))
    }

    /// See [`VaeTrainer::params`].
    fn params(&self) -> Result<VaeParams, TrainError> {
        Ok(self.net.params(self.image_side)?)
    }
}

impl EpochModel<3> for VaeModel {
    const LAB: Lab = Lab::Vae;

    fn train_on(&mut self, batch: &mut Minibatch, variables: &mut Variables) -> Result<StepLoss<3>, TrainError> {
        let x = batch.select(&self.x_train)?; // [batch, n_in]
        let eps = self.net.draw_noise(batch.len(), &mut batch.rng)?; // [batch, latent]
        let inputs = StepInputs { x: &x, eps: &eps, beta: self.beta_at(batch.progress), step: batch.step };
        if self.hand_written_pass {
            self.hand_written_step(variables, &inputs)
        } else {
            self.candle_step(variables, &inputs)
        }
    }

    fn end_epoch(&mut self, end: &EpochEnd<3>) -> Result<Vec<(String, f64)>, TrainError> {
        let epoch = end.epoch;
        let n_eval = self.x_train.dim(0)?.min(EVAL_TRAIN_ROWS);
        let train = self.elbo(&self.x_train.narrow(0, 0, n_eval)?, self.config.seed.wrapping_add(epoch as u64))?;
        let test = self.test_elbo()?;
        let [recon_loss, kl_loss, loss] = end.means;
        let mut metrics = vec![
            ("loss".to_owned(), loss),
            ("recon_loss".to_owned(), recon_loss),
            ("kl_loss".to_owned(), kl_loss),
            // The epoch's end: `epoch` whole epochs done.
            ("beta".to_owned(), self.beta_at(epoch as f64)),
            ("train_neg_elbo".to_owned(), train.neg_elbo),
            ("test_neg_elbo".to_owned(), test.neg_elbo),
            ("test_recon".to_owned(), test.recon),
            ("test_kl".to_owned(), test.kl),
        ];
        if let Some(accuracy) = self.knn5_accuracy()? {
            metrics.push(("knn5_accuracy".to_owned(), accuracy));
        }
        // KL per latent dimension over the test inputs: a dimension near 0 has collapsed to the prior.
        let (mu, logvar) = self.net.encode(&self.x_test)?;
        let per_dim = ((mu.sqr()? + logvar.exp()?)? - &logvar)?.affine(0.5, -0.5)?.mean(0)?;
        for (j, v) in per_dim.to_dtype(DType::F32)?.to_vec1::<f32>()?.iter().enumerate() {
            metrics.push((format!("kl_dim_{}", j + 1), f64::from(*v)));
        }
        self.record_reconstructions(epoch)?;
        Ok(metrics)
    }

    fn model_view(&self, step: u64) -> Option<ModelView> {
        let params = self.params().ok()?;
        let originals = self.originals.flatten_all().ok()?.to_vec1::<f32>().ok()?;
        Some(ModelView::Vae {
            step,
            view: Arc::new(VaeView {
                params: Arc::new(params),
                originals: Arc::new(originals),
                reconstructions: Arc::clone(&self.reconstructions),
            }),
        })
    }
}

/// k-nearest-neighbour classification accuracy of `test` points by `train` points (rows of `dim` values).
#[must_use]
pub fn knn_accuracy(
    train: &[f32],
    train_labels: &[u32],
    test: &[f32],
    test_labels: &[u32],
    dim: usize,
    k: usize,
) -> f64 {
    if test_labels.is_empty() || train_labels.is_empty() {
        return f64::NAN;
    }
    let mut correct = 0usize;
    let mut best: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
    for (q, &label) in test.chunks_exact(dim).zip(test_labels) {
        best.clear();
        for (p, &l) in train.chunks_exact(dim).zip(train_labels) {
            let d: f32 = q.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum();
            if best.len() < k || d < best[best.len() - 1].0 {
                let at = best.partition_point(|(bd, _)| *bd <= d);
                best.insert(at, (d, l));
                best.truncate(k);
            }
        }
        // Majority vote; ties go to the nearer neighbour's label.
        let mut votes: Vec<(u32, usize, usize)> = Vec::new(); // (label, count, first rank)
        for (rank, (_, l)) in best.iter().enumerate() {
            match votes.iter_mut().find(|v| v.0 == *l) {
                Some(v) => v.1 += 1,
                None => votes.push((*l, 1, rank)),
            }
        }
        let winner = votes.iter().max_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2))).map(|v| v.0);
        correct += usize::from(winner == Some(label));
    }
    correct as f64 / test_labels.len() as f64
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{BatchStats, Networks, VaeArch, VaeConfig, VaeModel, VaeNet, VaeNetworks, VaeTrainer, pool_stats};
    use crate::Lab;
    use crate::data::BuiltinFile;
    use crate::data::prepare::{Prepared, default_spec_for_lab, prepare};
    use crate::models::trainer::Trainer;
    use crate::models::trainer::testing::assert_the_guard_catches;

    /// The convolutional networks' running averages, layer by layer.
    fn running_averages(model: &VaeModel) -> Vec<(Vec<f32>, Vec<f32>)> {
        match model.params().expect("parameters").networks {
            VaeNetworks::Conv(c) => c
                .encoder
                .iter()
                .chain(&c.decoder)
                .filter_map(|l| l.norm.as_ref().map(|n| (n.running_mean.clone(), n.running_variance.clone())))
                .collect(),
            VaeNetworks::Mlp { .. } => Vec::new(),
        }
    }

    /// A NaN, an infinity or a huge value put into one variable after two steps, in both architectures: the third
    /// step fails, the guard names the quantity where the pass (shard by shard, as the step ran it) first holds a
    /// NaN or an infinity, the variables go back to their values before step 2, and nothing of the failed step
    /// counts (not the step, the cursor, the epoch's sums, the latent draws nor the running averages): the next
    /// step, at a lower rate, redoes it ([`assert_the_guard_catches`]).
    #[test]
    fn the_guard_names_where_an_injected_non_finite_value_first_appears() {
        let table = BuiltinFile::Digits8x8.load().expect("digits");
        let mut data = prepare(&table, &default_spec_for_lab(Lab::Vae, &table)).expect("digits prepare");
        let n_in = data.n_features();
        data.x_train.truncate(256 * n_in);
        data.y_train.truncate(256);
        data.x_test.truncate(64 * n_in);
        data.y_test.truncate(64);
        let data = Arc::new(data);
        let inf = f32::INFINITY;
        // (architecture, variable, element (all when None), value, what the guard must name)
        let cases = [
            (VaeArch::Mlp, "encoder layer 1 biases", Some(0), inf, "encoder layer 1's pre-activations"),
            // The last encoder layer gives [mu, log sigma²] (latent 2).
            (VaeArch::Mlp, "encoder layer 2 biases", Some(1), inf, "the latent means from encoder layer 2"),
            (VaeArch::Mlp, "encoder layer 2 biases", Some(2), inf, "the log-variance from encoder layer 2"),
            // exp(½ · 200) overflows f32.
            (VaeArch::Mlp, "encoder layer 2 biases", Some(3), 200.0, "the latent standard deviations"),
            // Infinite, not NaN: a ReLU turns a NaN into 0, and the loss stays finite.
            (VaeArch::Mlp, "decoder layer 1 biases", Some(5), inf, "decoder layer 1's pre-activations"),
            // Logits of 3e37: every pixel that is off costs 3e37, more than a dozen of them overflow.
            (VaeArch::Mlp, "decoder layer 2 biases", None, 3e37, "the reconstruction term"),
            // A mean of 1e20: finite draws and reconstructions, but mu² in the KL is past f32.
            (VaeArch::Mlp, "encoder layer 2 biases", Some(0), 1e20, "the KL term"),
            (VaeArch::Conv, "encoder convolution 2 kernel", Some(7), inf, "encoder convolution 2's output"),
            (
                VaeArch::Conv,
                "encoder convolution 1 batch-norm scale",
                Some(3),
                inf,
                "encoder convolution 1's batch normalisation",
            ),
            (
                VaeArch::Conv,
                "encoder dense layer biases",
                Some(3),
                inf,
                "the log-variance from the encoder dense layer",
            ),
            (VaeArch::Conv, "decoder dense layer biases", Some(0), inf, "the decoder dense layer's output"),
            (VaeArch::Conv, "decoder convolution 2 kernel", Some(0), f32::NAN, "decoder convolution 2's output"),
            // NaN, not ∞: the likelihood's sigmoid would take ∞ to 1.
            (VaeArch::Conv, "decoder convolution 4 biases", None, f32::NAN, "decoder convolution 4's output"),
        ];
        let batch_size = 32;
        for (arch, name, index, value, expected) in cases {
            let config = match arch {
                VaeArch::Mlp => VaeConfig { hidden: vec![16], batch_size, epochs: 2, ..VaeConfig::default() },
                VaeArch::Conv => VaeConfig { batch_size, epochs: 2, ..VaeConfig::course_conv() },
            };
            let mut trainer = VaeTrainer::new(config, &data).expect("a VAE");
            let what = format!("{arch:?}, {name}[{index:?}] = {value}");
            let poked = (name, index, value, expected);
            assert_the_guard_catches(&mut trainer, poked, batch_size, 1e-4, running_averages, &what);
        }
    }

    /// A hand-written pass: from the network, the minibatch and the noise, its loss terms, flat gradient and
    /// pooled batch statistics.
    type HandPass<'a> =
        dyn FnMut(&VaeNet, &[f32], &[f32]) -> (super::vae_cpu::VaeStepLoss, Vec<f32>, (BatchStats, BatchStats)) + 'a;

    /// The shard-by-shard reference of a step by candle's autograd (as [`VaeTrainer`] takes it) against a
    /// hand-written pass `by_hand` (its loss terms and flat gradient) on the first `rows` training rows with fresh
    /// noise, KL weight 0.7: the loss terms, every gradient value, and for the convolutional VAE the pooled batch
    /// statistics `by_hand` reports.
    fn assert_the_step_matches_candle(
        trainer: &VaeTrainer,
        rows: usize,
        rng: &mut rand_chacha::ChaCha8Rng,
        by_hand: &mut HandPass<'_>,
    ) {
        let model = &trainer.model;
        let what = format!("{:?} {:?}, {rows} rows", model.config.arch, model.config.likelihood);
        let x = model.x_train.narrow(0, 0, rows).expect("rows");
        let eps = model.net.draw_noise(rows, rng).expect("noise");
        let shards = model.forward_backward_in_shards(&x, &eps, 0.7).expect("candle's shards");
        let share = |s: &super::Shard| s.rows as f64 / rows as f64;
        let points: Vec<f32> = x.flatten_all().and_then(|t| t.to_vec1()).expect("x");
        let noise: Vec<f32> = eps.flatten_all().and_then(|t| t.to_vec1()).expect("eps");
        let (got, gradients, stats) = by_hand(&model.net, &points, &noise);
        for (term, a, pick) in [
            ("recon", got.recon, (|s: &super::Shard| s.recon) as fn(&super::Shard) -> f64),
            ("kl", got.kl, |s| s.kl),
            ("total", got.total, |s| s.total),
        ] {
            let b: f64 = shards.iter().map(|s| share(s) * pick(s)).sum();
            assert!((a - b).abs() < 1e-5 * (1.0 + b.abs()), "{what} {term}: {a} vs {b}");
        }
        let mut offset = 0;
        for (var, name) in trainer.variables.vars.iter().zip(&trainer.variables.names) {
            let mut want = vec![0f32; var.as_tensor().elem_count()];
            for shard in &shards {
                let g = shard.grads.as_ref().and_then(|g| g.get(var.as_tensor())).expect("a gradient");
                let g: Vec<f32> = g.flatten_all().and_then(|t| t.to_vec1()).expect("values");
                want.iter_mut().zip(g).for_each(|(w, g)| *w += (share(shard) * f64::from(g)) as f32);
            }
            let have = &gradients[offset..offset + want.len()];
            offset += want.len();
            let scale = want.iter().fold(0.0f32, |a, &b| a.max(b.abs())).max(1e-3);
            for (i, (&g, &w)) in have.iter().zip(&want).enumerate() {
                assert!((g - w).abs() <= 2e-4 * scale, "{what}: {name}[{i}]: {g} vs {w}");
            }
        }
        assert_eq!(offset, gradients.len(), "{what}: one gradient value per variable value");
        let parts: Vec<(usize, &(BatchStats, BatchStats))> = shards.iter().map(|s| (s.rows, &s.norm_stats)).collect();
        let (want, have) = (pool_stats(&parts), stats);
        assert_eq!(want.0.len() + want.1.len(), have.0.len() + have.1.len(), "{what}: statistics per layer");
        for (layer, (w, h)) in want.0.iter().chain(&want.1).zip(have.0.iter().chain(&have.1)).enumerate() {
            assert_eq!(w.is_some(), h.is_some(), "{what}: layer {layer} normalised");
            if let (Some(w), Some(h)) = (w, h) {
                for (a, b) in w.mean.iter().chain(&w.variance).zip(h.mean.iter().chain(&h.variance)) {
                    assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "{what}: layer {layer} statistics {b} vs {a}");
                }
            }
        }
    }

    /// `steps` steps by the hand-written pass and as many by candle's autograd, from the same start, give the same
    /// minibatch losses, and the same running averages after the first. Adam moves every value by about its
    /// learning rate whatever the gradient's size, so where a gradient value is within rounding of zero the two
    /// paths' rounding sends it different ways, and the runs drift apart: for the convolutional VAE on 8 × 8 digits
    /// under the Gaussian likelihood the losses agreed to 7e-8 for three steps, then to 1e-5, 2e-4 and 2e-3 (and
    /// the running variances by a few per cent by the tenth step), while each step's gradient from the same values
    /// agrees ([`assert_the_step_matches_candle`]).
    fn assert_steps_agree(config: &VaeConfig, data: &Arc<Prepared>, steps: usize) {
        let mut by_hand = VaeTrainer::new(config.clone(), data).expect("a VAE");
        let mut by_candle = VaeTrainer::new(config.clone(), data).expect("a VAE");
        by_candle.set_hand_written_pass(false);
        for step in 0..steps {
            by_hand.step().expect("step");
            by_candle.step().expect("step");
            let (a, b) = (by_hand.epoch_loop().batch_loss(), by_candle.epoch_loop().batch_loss());
            assert!((a - b).abs() < 1e-3 * (1.0 + b.abs()), "{config:?} step {step}: {a} vs candle {b}");
            if step == 0 {
                for ((m1, v1), (m2, v2)) in
                    running_averages(&by_hand.model).iter().zip(&running_averages(&by_candle.model))
                {
                    for (a, b) in m1.iter().chain(v1).zip(m2.iter().chain(v2)) {
                        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{config:?} running averages: {a} vs {b}");
                    }
                }
            }
        }
    }

    /// The hand-written MLP pass (models::vae_cpu) gives candle autograd's loss terms and gradients, for both
    /// likelihoods, a KL weight that is not 1, three latent dimensions and odd widths, on a trained network, with a
    /// full and a ragged minibatch and a single row (one shard, where the others have two; one workspace for all);
    /// then ten steps each way from the same start agree.
    #[test]
    fn the_hand_written_mlp_pass_matches_candle_autograd() {
        use rand::SeedableRng;

        use super::{Likelihood, vae_cpu};
        let table = BuiltinFile::Digits8x8.load().expect("digits");
        let data = Arc::new(prepare(&table, &default_spec_for_lab(Lab::Vae, &table)).expect("digits prepare"));
        for likelihood in [Likelihood::Bernoulli, Likelihood::Gaussian] {
            let config = VaeConfig {
                hidden: vec![19, 11],
                latent: 3,
                likelihood,
                beta: 0.7,
                batch_size: 48,
                learning_rate: 3e-3,
                ..VaeConfig::default()
            };
            let mut trainer = VaeTrainer::new(config.clone(), &data).expect("a VAE");
            for _ in 0..15 {
                trainer.step().expect("step");
            }
            let mut work = vae_cpu::MlpVaeWorkspace::default();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
            for rows in [48, 29, 1] {
                assert_the_step_matches_candle(&trainer, rows, &mut rng, &mut |net, points, noise| {
                    let loss = net
                        .with_mlp_values(0.7, |vae| vae_cpu::mlp_vae_loss_and_gradients(vae, points, noise, &mut work))
                        .flatten()
                        .expect("an MLP VAE");
                    (loss, work.gradients().to_vec(), (Vec::new(), Vec::new()))
                });
            }
            assert_steps_agree(&config, &data, 10);
        }
    }

    /// The hand-written convolutional pass (models::conv_cpu) gives candle autograd's loss terms, gradients and
    /// batch statistics, shard by shard, for both likelihoods, a KL weight that is not 1 and three latent
    /// dimensions, on a network trained a little (so that the batch-norm scales and shifts are not 1 and 0), on
    /// 8 × 8 and 28 × 28 images, with a full and a ragged minibatch and a single image (one shard); then three steps
    /// each way from the same start agree, running averages included.
    #[test]
    fn the_hand_written_conv_pass_matches_candle_autograd() {
        use rand::SeedableRng;

        use super::{Likelihood, conv_cpu};
        for (file, batch) in [(BuiltinFile::Digits8x8, 48), (BuiltinFile::Mnist5k, 12)] {
            let table = file.load().expect("digits");
            let data = Arc::new(prepare(&table, &default_spec_for_lab(Lab::Vae, &table)).expect("prepare"));
            for likelihood in [Likelihood::Bernoulli, Likelihood::Gaussian] {
                let config = VaeConfig {
                    arch: VaeArch::Conv,
                    latent: 3,
                    likelihood,
                    beta: 0.7,
                    batch_size: batch,
                    learning_rate: 3e-3,
                    ..VaeConfig::default()
                };
                let mut trainer = VaeTrainer::new(config.clone(), &data).expect("a VAE");
                trainer.set_hand_written_pass(false);
                for _ in 0..5 {
                    trainer.step().expect("step");
                }
                let mut work = conv_cpu::ConvVaeWorkspace::default();
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
                for rows in [batch, batch / 2 + 3, 1] {
                    assert_the_step_matches_candle(&trainer, rows, &mut rng, &mut |net, points, noise| {
                        let Networks::Conv(conv) = &net.networks else { panic!("a convolutional VAE") };
                        let loss = conv
                            .with_values(likelihood, 0.7, |vae| {
                                conv_cpu::conv_vae_loss_and_gradients(vae, points, noise, &mut work)
                            })
                            .flatten()
                            .expect("f32 variables");
                        (loss, work.gradients().to_vec(), pool_stats(&work.batch_stats()))
                    });
                }
                assert_steps_agree(&config, &data, 3);
            }
        }
    }

    /// The hand-written evaluation pass (batch normalisation on the running averages) encodes and decodes as
    /// candle's does, on a trained convolutional VAE, over more images than one chunk (the last one ragged), on the
    /// calling thread (the views) and on rayon's (the trainer).
    #[test]
    fn the_hand_written_conv_evaluation_matches_candle() {
        let table = BuiltinFile::Mnist5k.load().expect("MNIST 5k");
        let data = Arc::new(prepare(&table, &default_spec_for_lab(Lab::Vae, &table)).expect("prepare"));
        let config = VaeConfig { arch: VaeArch::Conv, latent: 3, batch_size: 32, ..VaeConfig::default() };
        let mut trainer = VaeTrainer::new(config, &data).expect("a VAE");
        for _ in 0..20 {
            trainer.step().expect("step");
        }
        let VaeNetworks::Conv(conv) = trainer.params().expect("parameters").networks else { panic!("conv") };
        let n = crate::compute::cpu::conv::EVAL_CHUNK + 45;
        let images = &data.x_train[..n * 784];
        let close = |what: &str, got: &[f32], want: &[f32]| {
            assert_eq!(got.len(), want.len(), "{what}");
            let scale = want.iter().fold(0.0f32, |a, &b| a.max(b.abs()));
            for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
                assert!((g - w).abs() <= 1e-4 * scale, "{what}[{i}]: {g} vs candle {w}");
            }
        };
        let encoded = conv.encode_cpu(images, n).expect("encode");
        close("encode", &encoded, &conv.encode_by_candle(images, n, 64).expect("candle encode"));
        let z: Vec<f32> = encoded.chunks_exact(6).flat_map(|row| row[..3].to_vec()).collect();
        close("decode", &conv.decode_cpu(&z, n).expect("decode"), &conv.decode_by_candle(&z, n, 64).expect("candle"));
        // The trainer's evaluation takes the same pass on rayon's threads.
        let Networks::Conv(net) = &trainer.model.net.networks else { panic!("conv") };
        let x = candle_core::Tensor::from_slice(images, (n, 784), &candle_core::Device::Cpu).expect("tensor");
        let parallel = net.running_by_hand(&x, false).expect("the hand-written pass");
        close("encode on two threads", &parallel.flatten_all().and_then(|t| t.to_vec1()).expect("values"), &encoded);
        assert!(conv.encode_cpu(&images[1..], n).is_err(), "a wrong length is refused");
    }
}
