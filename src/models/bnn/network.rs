//! The BNN's variational layers as candle variables and the math of its loss ([`BnnNet`]): one weight sample per
//! step, the forward pass, the KL in closed form or by Monte Carlo, and the data term of each head, every quantity
//! checked by the NaN guard's probe when a loss is not finite.

use candle_core::{DType, Device, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal, Uniform};

use crate::compute::Activation;
use crate::compute::TrainError;
use crate::compute::cpu::guard::{Located, Probe};
use crate::models::bnn::{
    BnnConfig, BnnLayer, BnnParams, BnnTask, HEAD_SCALE_FLOOR, Head, KlEstimate, MAX_FULL_COVARIANCE_PARAMS, Posterior,
};

/// Initial `rho` of every mean-field weight, sd = softplus(-3) ≈ 0.049: Bayes by Backprop starts near a point
/// estimate and lets the scales grow where the data allow.
const MEAN_FIELD_INITIAL_RHO: f64 = -3.0;
/// Added to the softplus of every scale (the course's 1e-5), so a scale never reaches 0.
const SCALE_FLOOR: f64 = 1e-5;

/// One layer's variational parameters (candle variables).
struct VarLayer {
    n_in: usize,
    n_out: usize,
    posterior: Posterior,
    activation: Activation,
    /// `[k]`.
    mean: Var,
    /// Mean-field: `rho` `[k]`; full: the raw scale `[k, k]` (only its lower triangle is used); none for a
    /// deterministic layer.
    scale: Option<Var>,
}

impl VarLayer {
    fn n_params(&self) -> usize {
        self.n_in * self.n_out + self.n_out
    }
}

/// The network's variables and the math of its loss; generic over F32 (training) and F64 (gradient checks).
pub struct BnnNet {
    layers: Vec<VarLayer>,
    task: BnnTask,
    prior_sd: f64,
    kl_estimate: KlEstimate,
    dtype: DType,
    device: Device,
}

/// The loss of one step, split into its terms (per training row).
pub struct LossTerms {
    /// Mean data term over the batch.
    pub data: Tensor,
    /// KL / N_train (0 for a deterministic network).
    pub kl: Tensor,
    /// `data + kl`, what is minimised.
    pub total: Tensor,
}

impl BnnNet {
    /// A fresh network. Full-covariance layers start as the course's (mean 0, scale softplus(0) ≈ 0.69 on the
    /// diagonal); mean-field layers as in Bayes by Backprop, near a point estimate (Glorot-uniform means, every
    /// sd softplus(-3) ≈ 0.049), so the mean function is learned first and the scales grow where the data allow; deterministic
    /// layers get Glorot-uniform weights and zero biases, as Keras' `Dense`.
    /// `target` (the training targets' mean and sd, for regression) starts the output biases at the data: the
    /// value (or `loc`) at the mean, the Normal head's scale at the sd. Without it a network trained with
    /// a learning rate of 1e-3 spends thousands of steps walking its bias from 0 to a wine quality of 5.9.
    pub fn new(
        config: &BnnConfig,
        n_in: usize,
        task: BnnTask,
        target: Option<(f64, f64)>,
        dtype: DType,
    ) -> Result<Self, TrainError> {
        if config.hidden.contains(&0) {
            return Err(TrainError::Data("every hidden layer needs at least one unit".into()));
        }
        if !(config.prior_sd > 0.0 && config.prior_sd.is_finite()) {
            return Err(TrainError::Data("the prior's standard deviation must be positive".into()));
        }
        let device = Device::Cpu;
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut widths = vec![n_in];
        widths.extend(&config.hidden);
        widths.push(task.n_out());
        let n_layers = widths.len() - 1;
        let mut layers = Vec::with_capacity(n_layers);
        for (i, pair) in widths.windows(2).enumerate() {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let last = i + 1 == n_layers;
            let posterior = if last && !config.bayesian_output { Posterior::Deterministic } else { config.posterior };
            let activation = if last { Activation::Identity } else { config.activation };
            let k = fan_in * fan_out + fan_out;
            if posterior == Posterior::FullCovariance && k > MAX_FULL_COVARIANCE_PARAMS {
                return Err(TrainError::Data(format!(
                    "layer {} has {k} parameters; a full covariance over them needs {k}² scale entries (at most {MAX_FULL_COVARIANCE_PARAMS} parameters per layer). Use fewer units or the mean-field posterior.",
                    i + 1
                )));
            }
            let (mean, scale) = match posterior {
                Posterior::Deterministic => {
                    let w = glorot(&mut rng, fan_in, fan_out)?;
                    (Var::from_tensor(&Tensor::from_vec(w, k, &device)?.to_dtype(dtype)?)?, None)
                }
                Posterior::MeanField => {
                    let w = glorot(&mut rng, fan_in, fan_out)?;
                    let rho = vec![MEAN_FIELD_INITIAL_RHO; k];
                    (
                        Var::from_tensor(&Tensor::from_vec(w, k, &device)?.to_dtype(dtype)?)?,
                        Some(Var::from_tensor(&Tensor::from_vec(rho, k, &device)?.to_dtype(dtype)?)?),
                    )
                }
                Posterior::FullCovariance => {
                    (Var::zeros(k, dtype, &device)?, Some(Var::zeros((k, k), dtype, &device)?))
                }
            };
            if let (true, Some((mean_y, sd_y)), BnnTask::Regression(head)) = (last, target, task) {
                let mut values = mean.as_tensor().to_dtype(DType::F64)?.to_vec1::<f64>()?;
                let bias = fan_in * fan_out;
                values[bias] = mean_y;
                if head == Head::Normal {
                    // softplus⁻¹(sd) = log(e^sd - 1).
                    values[bias + 1] = (sd_y.max(1e-3).exp_m1()).ln();
                }
                mean.set(&Tensor::from_vec(values, k, &device)?.to_dtype(dtype)?)?;
            }
            layers.push(VarLayer { n_in: fan_in, n_out: fan_out, posterior, activation, mean, scale });
        }
        Ok(Self { layers, task, prior_sd: config.prior_sd, kl_estimate: config.kl, dtype, device })
    }

    /// Every variable, with a name for error messages.
    #[must_use]
    pub fn vars(&self) -> (Vec<Var>, Vec<String>) {
        let mut vars = Vec::new();
        let mut names = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            vars.push(l.mean.clone());
            names.push(format!("layer {} posterior means", i + 1));
            if let Some(s) = &l.scale {
                vars.push(s.clone());
                names.push(format!("layer {} posterior scales", i + 1));
            }
        }
        (vars, names)
    }

    /// Standard normal draws for one step: one `[k]` vector per variational layer (empty for the others).
    pub fn draw_noise(&self, rng: &mut ChaCha8Rng) -> candle_core::Result<Vec<Option<Tensor>>> {
        self.layers
            .iter()
            .map(|l| {
                if l.posterior == Posterior::Deterministic {
                    return Ok(None);
                }
                let eps: Vec<f64> = (0..l.n_params()).map(|_| StandardNormal.sample(rng)).collect();
                Ok(Some(Tensor::from_vec(eps, l.n_params(), &self.device)?.to_dtype(self.dtype)?))
            })
            .collect()
    }

    /// `L` of a full-covariance layer from its raw scale: strict lower triangle as is, diagonal through
    /// `softplus + 1e-5`. Also returns the diagonal `[k]`.
    fn scale_tril(&self, raw: &Tensor, k: usize) -> candle_core::Result<(Tensor, Tensor)> {
        let eye = Tensor::eye(k, self.dtype, &self.device)?;
        let strict: Vec<f32> = (0..k * k).map(|idx| if idx / k > idx % k { 1.0 } else { 0.0 }).collect();
        let strict = Tensor::from_vec(strict, (k, k), &self.device)?.to_dtype(self.dtype)?;
        let diag = (Activation::Softplus.apply(&raw.mul(&eye)?.sum(1)?)? + SCALE_FLOOR)?; // [k]
        let l = (raw.mul(&strict)? + eye.broadcast_mul(&diag.unsqueeze(0)?)?)?; // [k, k]
        Ok((l, diag))
    }

    /// The weights of one sample, `[k]` per layer: `mu + softplus(rho) eps` or `mu + L eps`; `probe` checks each.
    fn sample(&self, eps: &[Option<Tensor>], probe: &mut Probe) -> candle_core::Result<Vec<Tensor>> {
        let mut weights = Vec::with_capacity(self.layers.len());
        for (i, (l, e)) in self.layers.iter().zip(eps).enumerate() {
            let w = match (l.posterior, &l.scale, e) {
                (Posterior::MeanField, Some(rho), Some(e)) => {
                    let sd = (Activation::Softplus.apply(rho.as_tensor())? + SCALE_FLOOR)?;
                    (l.mean.as_tensor() + sd.mul(e)?)?
                }
                (Posterior::FullCovariance, Some(raw), Some(e)) => {
                    let (tril, _) = self.scale_tril(raw.as_tensor(), l.n_params())?;
                    (l.mean.as_tensor() + tril.matmul(&e.unsqueeze(1)?)?.squeeze(1)?)?
                }
                _ => l.mean.as_tensor().clone(),
            };
            probe.check(&w, || format!("layer {}'s weight sample", i + 1))?;
            weights.push(w);
        }
        Ok(weights)
    }

    /// The network's raw outputs `[n, n_out]` with the given weights; `probe` checks each layer's pre-activations
    /// and activations.
    fn forward(&self, x: &Tensor, weights: &[Tensor], probe: &mut Probe) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        for (i, (l, w)) in self.layers.iter().zip(weights).enumerate() {
            let n_w = l.n_in * l.n_out;
            let mat = w.narrow(0, 0, n_w)?.reshape((l.n_in, l.n_out))?; // [in, out]
            let bias = w.narrow(0, n_w, l.n_out)?; // [out]
            let pre = h.matmul(&mat)?.broadcast_add(&bias)?; // [n, out]
            probe.check(&pre, || format!("layer {}'s pre-activations", i + 1))?;
            h = l.activation.apply(&pre)?;
            probe.check(&h, || format!("layer {}'s activations", i + 1))?;
        }
        Ok(h)
    }

    /// KL(q || p) summed over the layers, p = N(0, s² I):
    /// - mean-field: Σ_i [ log(s / σ_i) + (σ_i² + μ_i²) / (2 s²) - 1/2 ];
    /// - full: ½ [ (tr(L Lᵀ) + μᵀμ) / s² - k + 2k log s - 2 Σ log L_ii ];
    /// - Monte Carlo: log q(w) - log p(w) at the sample `w`, with `w - μ = σ ⊙ eps` or `L eps`.
    ///
    /// `probe` checks each layer's term.
    fn kl(&self, weights: &[Tensor], eps: &[Option<Tensor>], probe: &mut Probe) -> candle_core::Result<Tensor> {
        let s = self.prior_sd;
        let mut total = Tensor::zeros((), self.dtype, &self.device)?;
        for (i, ((l, w), e)) in self.layers.iter().zip(weights).zip(eps).enumerate() {
            let k = l.n_params() as f64;
            let (Some(scale), Some(e)) = (&l.scale, e) else { continue };
            // Σ log σ_i: the log-determinant of the scale, both forms.
            let (log_det, sum_sq_scale) = if l.posterior == Posterior::MeanField {
                let sd = (Activation::Softplus.apply(scale.as_tensor())? + SCALE_FLOOR)?;
                (sd.log()?.sum_all()?, sd.sqr()?.sum_all()?)
            } else {
                let (tril, diag) = self.scale_tril(scale.as_tensor(), l.n_params())?;
                (diag.log()?.sum_all()?, tril.sqr()?.sum_all()?)
            };
            let layer_kl = match self.kl_estimate {
                KlEstimate::ClosedForm => {
                    let mean_sq = l.mean.as_tensor().sqr()?.sum_all()?;
                    let quad = ((sum_sq_scale + mean_sq)? / (2.0 * s * s))?;
                    ((quad - log_det)? + (k * s.ln() - 0.5 * k))?
                }
                KlEstimate::MonteCarlo => {
                    // log q(w) = -Σ log σ - |eps|²/2 - k/2 log 2π;  log p(w) = -k log s - |w|²/(2s²) - k/2 log 2π.
                    let log_q = (log_det.neg()? - (e.sqr()?.sum_all()? * 0.5)?)?;
                    let log_p = ((w.sqr()?.sum_all()? / (-2.0 * s * s))? - k * s.ln())?;
                    (log_q - log_p)?
                }
            };
            probe.check(&layer_kl, || format!("layer {}'s KL term", i + 1))?;
            total = (total + layer_kl)?;
        }
        Ok(total)
    }

    /// The data term's mean over rows: squared error, Gaussian NLL of the Normal head, or cross-entropy.
    fn data_term(&self, out: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
        match self.task {
            BnnTask::Regression(Head::Mse) => out.squeeze(1)?.sub(y)?.sqr()?.mean_all(),
            BnnTask::Regression(Head::Normal) => {
                let loc = out.narrow(1, 0, 1)?.squeeze(1)?; // [n]
                let sd = (Activation::Softplus.apply(&out.narrow(1, 1, 1)?.squeeze(1)?)? + HEAD_SCALE_FLOOR)?; // [n]
                let z_sq = (y.sub(&loc)?.sqr()? / sd.sqr()?)?;
                let nll = ((sd.log()? + (z_sq * 0.5)?)? + 0.5 * (2.0 * std::f64::consts::PI).ln())?;
                nll.mean_all()
            }
            BnnTask::Classification { .. } => {
                let max = out.max_keepdim(1)?;
                let shifted = out.broadcast_sub(&max)?;
                let lse = shifted.exp()?.sum_keepdim(1)?.log()?;
                let log_p = shifted.broadcast_sub(&lse)?;
                log_p.gather(&y.unsqueeze(1)?, 1)?.neg()?.mean_all()
            }
        }
    }

    /// KL(q || p) of the whole network, by the configured estimate (the Monte Carlo one at the weights `eps`
    /// gives).
    pub fn kl_divergence(&self, eps: &[Option<Tensor>]) -> candle_core::Result<Tensor> {
        self.kl(&self.sample(eps, &mut Probe::off())?, eps, &mut Probe::off())
    }

    /// Switches between the closed-form and the Monte Carlo KL.
    pub fn set_kl_estimate(&mut self, estimate: KlEstimate) {
        self.kl_estimate = estimate;
    }

    /// The loss of a batch `x` `[n, d]`, `y` `[n]` with the weight noise `eps`, KL scaled by `1 / n_train`.
    pub fn loss(
        &self,
        x: &Tensor,
        y: &Tensor,
        eps: &[Option<Tensor>],
        n_train: usize,
    ) -> candle_core::Result<LossTerms> {
        self.loss_probed(x, y, eps, n_train, &mut Probe::off())
    }

    /// [`Self::loss`], checking every quantity of the pass with `probe` in the order it is computed.
    fn loss_probed(
        &self,
        x: &Tensor,
        y: &Tensor,
        eps: &[Option<Tensor>],
        n_train: usize,
        probe: &mut Probe,
    ) -> candle_core::Result<LossTerms> {
        let weights = self.sample(eps, probe)?;
        let out = self.forward(x, &weights, probe)?;
        let data = self.data_term(&out, y)?;
        probe.check(&data, || "the likelihood term".to_owned())?;
        let kl = (self.kl(&weights, eps, probe)? / n_train.max(1) as f64)?;
        probe.check(&kl, || "the KL term".to_owned())?;
        let total = (&data + &kl)?;
        Ok(LossTerms { data, kl, total })
    }

    /// Where the pass of [`Self::loss`] first holds a NaN or an infinity (`None` when only the total does): for the
    /// NaN guard.
    pub(super) fn locate_non_finite(&self, x: &Tensor, y: &Tensor, eps: &[Option<Tensor>], n_train: usize) -> Located {
        let mut probe = Probe::on();
        self.loss_probed(x, y, eps, n_train, &mut probe)?;
        Ok(probe.found())
    }

    /// The posterior as plain data.
    pub fn params(&self) -> candle_core::Result<BnnParams> {
        let layers = self
            .layers
            .iter()
            .map(|l| {
                let k = l.n_params();
                let mean = l.mean.as_tensor().to_dtype(DType::F32)?.to_vec1::<f32>()?;
                let (sd, scale_tril) = match (&l.scale, l.posterior) {
                    (Some(rho), Posterior::MeanField) => {
                        let sd = (Activation::Softplus.apply(rho.as_tensor())? + SCALE_FLOOR)?;
                        (sd.to_dtype(DType::F32)?.to_vec1::<f32>()?, Vec::new())
                    }
                    (Some(raw), Posterior::FullCovariance) => {
                        let (tril, _) = self.scale_tril(raw.as_tensor(), k)?;
                        // Marginal sd_i = sqrt(Σ_j L_ij²), the diagonal of L Lᵀ.
                        let sd = tril.sqr()?.sum(1)?.sqrt()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
                        (sd, tril.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
                    }
                    _ => (vec![0.0; k], Vec::new()),
                };
                Ok(BnnLayer {
                    n_in: l.n_in,
                    n_out: l.n_out,
                    posterior: l.posterior,
                    mean,
                    sd,
                    scale_tril,
                    activation: l.activation,
                })
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(BnnParams { layers, task: self.task, prior_sd: self.prior_sd })
    }
}

/// Glorot-uniform weights `[fan_in * fan_out]` followed by `fan_out` zero biases, as Keras' `Dense`.
fn glorot(rng: &mut ChaCha8Rng, fan_in: usize, fan_out: usize) -> Result<Vec<f64>, TrainError> {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
    let dist = Uniform::new_inclusive(-limit, limit).map_err(|e| TrainError::Data(e.to_string()))?;
    let mut w: Vec<f64> = (0..fan_in * fan_out).map(|_| dist.sample(rng)).collect();
    w.extend(std::iter::repeat_n(0.0, fan_out));
    Ok(w)
}
