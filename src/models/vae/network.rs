//! The VAE's encoder and decoder as candle variables, for either architecture, and the math of its loss
//! ([`VaeNet`]): the encoder's `q(z | x)`, the reparametrised draw, the decoder, the reconstruction term and the
//! closed-form KL, every quantity checked by the NaN guard's probe when a loss is not finite.

use candle_core::{DType, Device, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};

use crate::compute::Activation;
use crate::compute::TrainError;
use crate::compute::cpu::dense::{DenseRef, with_cpu_f32};
use crate::compute::cpu::guard::{Located, Probe};
use crate::compute::cpu::vae::{self as vae_cpu, shard_bounds};
use crate::compute::params::{DenseParams, MlpParams};
use crate::data::prepare::{MIN_IMAGE_SIDE, image_side};
use crate::models::conv::{BatchStats, ConvVaeNet, NormMode};
use crate::models::vae::{Likelihood, VaeArch, VaeConfig, VaeNetworks, VaeParams};

/// One dense layer's variables.
struct Dense {
    weights: Var, // [in, out]
    biases: Var,  // [out]
    activation: Activation,
}

/// A stack of dense layers.
pub(super) struct Stack {
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
pub(super) enum Networks {
    Mlp { encoder: Stack, decoder: Stack },
    Conv(ConvVaeNet),
}

/// Images per forward pass of the convolutional networks when evaluating (bounds the gathered columns'
/// memory: 256 images of 28 × 28 gather about 60 MB at the widest layer).
const CONV_EVAL_CHUNK: usize = 256;

/// The encoder and decoder, and the math of the loss; F32 for training, F64 for gradient checks.
pub struct VaeNet {
    pub(super) networks: Networks,
    latent: usize,
    pub(super) likelihood: Likelihood,
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
    pub(super) fn is_mlp(&self) -> bool {
        matches!(self.networks, Networks::Mlp { .. })
    }

    /// Runs `f` on the MLP VAE's networks and loss settings (KL weight `beta`), the weights borrowed from the
    /// variables without a copy; `None` for the convolutional VAE or variables that are not CPU f32.
    pub(super) fn with_mlp_values<R>(&self, beta: f64, f: impl FnOnce(vae_cpu::MlpVae<'_>) -> R) -> Option<R> {
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
                        "the convolutional VAE needs square images of at least {MIN_IMAGE_SIDE} x {MIN_IMAGE_SIDE} \
                         pixels; this data has {n_in} features per row (use the MLP VAE for tables)"
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
    /// total does), shard by shard as [`VaeTrainer`](super::VaeTrainer) takes a step: for the NaN guard.
    pub(super) fn locate_non_finite(&self, x: &Tensor, eps: &Tensor, beta: f64) -> Located {
        let mut probe = Probe::on();
        for (start, rows) in shard_bounds(x.dim(0)?) {
            probe.new_pass();
            self.loss_in(&x.narrow(0, start, rows)?, &eps.narrow(0, start, rows)?, beta, NormMode::Batch, &mut probe)?;
        }
        Ok(probe.found())
    }

    /// Rows per forward pass when evaluating many inputs.
    pub(super) fn eval_chunk(&self) -> usize {
        match self.networks {
            Networks::Mlp { .. } => 1024,
            Networks::Conv(_) => CONV_EVAL_CHUNK,
        }
    }

    /// The convolutional networks' running averages (see [`ConvVaeNet::running_stats`]); none for the MLP.
    #[must_use]
    pub fn running_stats(&self) -> Vec<(String, Vec<f32>)> {
        match &self.networks {
            Networks::Conv(net) => net.running_stats(),
            Networks::Mlp { .. } => Vec::new(),
        }
    }

    /// Puts back what [`Self::running_stats`] took.
    ///
    /// # Errors
    /// A message naming what does not fit.
    pub fn set_running_stats(&mut self, stats: &[(String, Vec<f32>)]) -> Result<(), String> {
        match &mut self.networks {
            Networks::Conv(net) => net.set_running_stats(stats),
            Networks::Mlp { .. } if stats.is_empty() => Ok(()),
            Networks::Mlp { .. } => Err("the MLP VAE keeps no running averages".into()),
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
