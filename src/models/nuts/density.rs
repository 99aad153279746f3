//! The BNN's log posterior over all its weights and biases, in f64, with its gradient by a hand-written backward
//! pass: what the No-U-Turn sampler moves on.
//!
//! The position `θ` is one whole weight sample in the flat layout of [`BnnParams`]'s forward pass (per layer the
//! weights `W` `[n_in, n_out]` row-major, then the biases `b` `[n_out]`; layers in order), followed, for the
//! squared-error head with [`NoiseModel::Sampled`], by `u = log σ`. The density is
//!
//! `log p(θ | D) = Σ_k log N(θ_k; 0, s²) + Σ_i log p(y_i | f(x_i; θ)) [+ log p(σ) + u]` (+ a constant),
//!
//! with the prior `N(0, s²)` of the variational model on every weight and bias, and the likelihood its loss
//! defines:
//! - squared-error head: the loss per row `(y - f)²` is, up to a constant, the negative log density of
//!   `N(y; f, σ²)` with `σ² = 1/2` ([`NoiseModel::Fixed`]); with [`NoiseModel::Sampled`] `σ` is a parameter with
//!   the weak prior `σ ~ HalfNormal(τ)`, `τ` the training targets' standard deviation, sampled as `u = log σ`
//!   with the Jacobian `+u`;
//! - Normal head: `N(y; loc, (softplus(scale) + 1e-3)²)`;
//! - classification: the softmax's log probability of the label.
//!
//! Every constant is kept (`-½ log 2π`, `log s`...), so [`BnnDensity::logp`] is the log density itself, not only
//! up to a constant. Activations are kept unit by unit (`[units, rows]`), as in the f32 forward pass.

use crate::compute::Activation;
use crate::compute::activation::LEAKY_SLOPE;
use crate::models::bnn::{BnnParams, BnnTask, HEAD_SCALE_FLOOR, Head};

/// The squared-error head's noise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum NoiseModel {
    /// `σ² = 1/2`, the variance the squared-error loss implies (the variational model's).
    #[default]
    Fixed,
    /// `σ` sampled too, with the prior `HalfNormal(τ)` (`τ` the training targets' sd), as `log σ`, the last
    /// coordinate.
    Sampled,
}

impl NoiseModel {
    /// Name on the command line.
    #[must_use]
    pub fn cli_name(self) -> &'static str {
        match self {
            Self::Fixed => "fixed",
            Self::Sampled => "sampled",
        }
    }
}

/// Why the density cannot be evaluated at a position.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DensityError {
    /// The position has the wrong length.
    #[error("the position has {found} coordinates; the density has {expected}")]
    Dimension {
        /// Coordinates given.
        found: usize,
        /// Coordinates expected.
        expected: usize,
    },
    /// The log density or its gradient is not finite there (the sampler counts it as a divergence).
    #[error("the log density is not finite at this position")]
    NonFinite,
}

/// One layer's shape.
#[derive(Clone, Copy, Debug)]
struct Layer {
    n_in: usize,
    n_out: usize,
    activation: Activation,
}

impl Layer {
    fn n_params(self) -> usize {
        self.n_in * self.n_out + self.n_out
    }
}

/// The BNN's log posterior on a set of rows, with scratch space for its passes.
#[derive(Clone, Debug)]
pub struct BnnDensity {
    layers: Vec<Layer>,
    task: BnnTask,
    prior_sd: f64,
    noise: NoiseModel,
    /// `τ` of the `HalfNormal(τ)` prior on `σ` ([`NoiseModel::Sampled`]).
    sigma_prior_scale: f64,
    /// Inputs `[n_in, n_rows]`.
    x_t: Vec<f64>,
    /// Targets, or class indices, `[n_rows]`.
    y: Vec<f64>,
    n_rows: usize,
    /// Per layer, the inputs `[n_in, n_rows]` (the first is `x_t`'s copy) and the pre-activations
    /// `[n_out, n_rows]`.
    inputs: Vec<Vec<f64>>,
    pre: Vec<Vec<f64>>,
    /// Scratch for the backward pass: d logp / d (a layer's output), d logp / d (its input).
    delta: Vec<f64>,
    delta_in: Vec<f64>,
    /// The network's outputs `[n_out, n_rows]` (the last activation applied).
    out: Vec<f64>,
}

/// `log(1 + e^x)`, stable.
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// `1 / (1 + e^-x)`, stable.
fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The derivative of `activation` at the pre-activation `z`, whose value `activation(z)` is `a` (the sigmoid's
/// and tanh's derivatives come from `a`, without another exponential).
fn activation_derivative(activation: Activation, z: f64, a: f64) -> f64 {
    match activation {
        Activation::Identity => 1.0,
        Activation::Relu => {
            if z > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::LeakyRelu => {
            if z > 0.0 {
                1.0
            } else {
                LEAKY_SLOPE
            }
        }
        Activation::Sigmoid => a * (1.0 - a),
        Activation::Tanh => 1.0 - a * a,
        Activation::Softplus => sigmoid(z),
    }
}

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

impl BnnDensity {
    /// The posterior of `template`'s architecture (its layers' shapes and activations, its task, its prior sd) on
    /// rows `x` `[n_rows, n_in]` with targets (class indices for a label) `y` `[n_rows]`. `noise` matters for the
    /// squared-error head only.
    ///
    /// # Panics
    /// Never; a short `x` or `y` is read as far as it goes (use [`super::sample_bnn`], which checks them).
    #[must_use]
    pub fn new(template: &BnnParams, x: &[f32], y: &[f32], n_rows: usize, noise: NoiseModel) -> Self {
        let layers: Vec<Layer> =
            template.layers.iter().map(|l| Layer { n_in: l.n_in, n_out: l.n_out, activation: l.activation }).collect();
        let n_in = template.n_in();
        let mut x_t = vec![0f64; n_in * n_rows];
        for (i, row) in x.chunks_exact(n_in.max(1)).take(n_rows).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                x_t[k * n_rows + i] = f64::from(v);
            }
        }
        let y: Vec<f64> = y.iter().take(n_rows).map(|&v| f64::from(v)).collect();
        let noise = if template.task == BnnTask::Regression(Head::Mse) { noise } else { NoiseModel::Fixed };
        let mean = y.iter().sum::<f64>() / y.len().max(1) as f64;
        let sd = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / y.len().max(1) as f64).sqrt();
        Self {
            inputs: layers.iter().map(|l| vec![0.0; l.n_in * n_rows]).collect(),
            pre: layers.iter().map(|l| vec![0.0; l.n_out * n_rows]).collect(),
            layers,
            task: template.task,
            prior_sd: template.prior_sd,
            noise,
            sigma_prior_scale: if sd > 0.0 && sd.is_finite() { sd } else { 1.0 },
            x_t,
            y,
            n_rows,
            delta: Vec::new(),
            delta_in: Vec::new(),
            out: Vec::new(),
        }
    }

    /// Coordinates of a position: the network's parameters, plus `log σ` when it is sampled.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.n_weights() + usize::from(self.samples_sigma())
    }

    /// The network's parameters (one weight sample).
    #[must_use]
    pub fn n_weights(&self) -> usize {
        self.layers.iter().map(|l| l.n_params()).sum()
    }

    /// Whether the last coordinate is `log σ`.
    #[must_use]
    pub fn samples_sigma(&self) -> bool {
        self.noise == NoiseModel::Sampled
    }

    /// `τ` of the `HalfNormal(τ)` prior on `σ`.
    #[must_use]
    pub fn sigma_prior_scale(&self) -> f64 {
        self.sigma_prior_scale
    }

    /// The prior's standard deviation `s`.
    #[must_use]
    pub fn prior_sd(&self) -> f64 {
        self.prior_sd
    }

    /// Rows the likelihood runs over.
    #[must_use]
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// The log posterior density at `theta` `[dim]`, its gradient written into `gradient` `[dim]`.
    pub fn logp(&mut self, theta: &[f64], gradient: &mut [f64]) -> Result<f64, DensityError> {
        let dim = self.dim();
        if theta.len() != dim || gradient.len() != dim {
            return Err(DensityError::Dimension { found: theta.len().min(gradient.len()), expected: dim });
        }
        let n_rows = self.n_rows;
        let n_weights = self.n_weights();
        // Prior: Σ log N(θ_k; 0, s²), gradient -θ_k / s².
        let s2 = self.prior_sd * self.prior_sd;
        let mut logp = -(n_weights as f64) * (self.prior_sd.ln() + HALF_LN_2PI);
        for (g, &w) in gradient.iter_mut().zip(&theta[..n_weights]) {
            logp -= 0.5 * w * w / s2;
            *g = -w / s2;
        }

        // Forward pass, keeping each layer's input and pre-activation.
        let mut offset = 0;
        for (l, layer) in self.layers.iter().enumerate() {
            let (n_in, n_out) = (layer.n_in, layer.n_out);
            if l == 0 {
                self.inputs[0].copy_from_slice(&self.x_t);
            } else {
                let previous = self.layers[l - 1].activation;
                for (dst, &z) in self.inputs[l].iter_mut().zip(&self.pre[l - 1]) {
                    *dst = previous.apply_scalar(z);
                }
            }
            let w = &theta[offset..offset + n_in * n_out]; // [n_in, n_out]
            let b = &theta[offset + n_in * n_out..offset + layer.n_params()]; // [n_out]
            let input = &self.inputs[l];
            for (j, dst) in self.pre[l].chunks_exact_mut(n_rows.max(1)).enumerate() {
                dst.fill(b[j]);
                for (k, src) in input.chunks_exact(n_rows.max(1)).enumerate() {
                    let wkj = w[k * n_out + j];
                    for (d, &v) in dst.iter_mut().zip(src) {
                        *d += wkj * v;
                    }
                }
            }
            offset += layer.n_params();
        }
        let Some(last) = self.layers.last().copied() else {
            return Ok(logp);
        };
        let n_last = self.layers.len() - 1;
        // The network's outputs [n_out, n_rows] (the last activation applied) and d logp / d outputs.
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        out.extend(self.pre[n_last].iter().map(|&z| last.activation.apply_scalar(z)));
        self.delta.clear();
        self.delta.resize(last.n_out * n_rows, 0.0);
        let unit = |j: usize| &out[j * n_rows..(j + 1) * n_rows];
        match self.task {
            BnnTask::Regression(Head::Mse) => {
                let f = unit(0);
                if self.samples_sigma() {
                    let u = theta[n_weights];
                    let sigma2 = (2.0 * u).exp();
                    let mut sq = 0.0;
                    for (i, (&fi, &yi)) in f.iter().zip(&self.y).enumerate() {
                        let r = yi - fi;
                        sq += r * r;
                        self.delta[i] = r / sigma2;
                    }
                    let n = n_rows as f64;
                    logp += -n * (u + HALF_LN_2PI) - 0.5 * sq / sigma2;
                    // log HalfNormal(σ; τ) + u (the Jacobian of σ = e^u).
                    let tau = self.sigma_prior_scale;
                    logp += std::f64::consts::LN_2 - HALF_LN_2PI - tau.ln() - 0.5 * sigma2 / (tau * tau) + u;
                    gradient[n_weights] = -n + sq / sigma2 - sigma2 / (tau * tau) + 1.0;
                } else {
                    // N(y; f, 1/2): -(y - f)² - ½ log π per row.
                    let half_ln_pi = 0.5 * std::f64::consts::PI.ln();
                    for (i, (&fi, &yi)) in f.iter().zip(&self.y).enumerate() {
                        let r = yi - fi;
                        logp -= r * r + half_ln_pi;
                        self.delta[i] = 2.0 * r;
                    }
                }
            }
            BnnTask::Regression(Head::Normal) => {
                let (loc, raw) = (unit(0), unit(1));
                for (i, ((&m, &a), &yi)) in loc.iter().zip(raw).zip(&self.y).enumerate() {
                    let sd = softplus(a) + HEAD_SCALE_FLOOR;
                    let r = yi - m;
                    logp -= sd.ln() + HALF_LN_2PI + 0.5 * r * r / (sd * sd);
                    self.delta[i] = r / (sd * sd);
                    self.delta[n_rows + i] = (-1.0 / sd + r * r / (sd * sd * sd)) * sigmoid(a);
                }
            }
            BnnTask::Classification { n_classes } => {
                let mut logits = vec![0f64; n_classes];
                for (i, &yi) in self.y.iter().enumerate() {
                    for (j, l) in logits.iter_mut().enumerate() {
                        *l = out[j * n_rows + i];
                    }
                    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let total: f64 = logits.iter().map(|l| (l - max).exp()).sum();
                    let lse = max + total.ln();
                    let label = yi as usize;
                    logp += logits.get(label).copied().unwrap_or(f64::NAN) - lse;
                    for (j, &l) in logits.iter().enumerate() {
                        self.delta[j * n_rows + i] = f64::from(u8::from(j == label)) - (l - lse).exp();
                    }
                }
            }
        }

        // Backward pass: delta holds d logp / d (layer l's output); through its activation, into its weights and
        // biases, and on to its input.
        for l in (0..self.layers.len()).rev() {
            let layer = self.layers[l];
            let (n_in, n_out) = (layer.n_in, layer.n_out);
            offset -= layer.n_params();
            // The layer's outputs: the next layer's inputs, or the network's.
            let post = if l == n_last { &out } else { &self.inputs[l + 1] };
            for ((d, &z), &a) in self.delta.iter_mut().zip(&self.pre[l]).zip(post) {
                *d *= activation_derivative(layer.activation, z, a);
            }
            let input = &self.inputs[l];
            let (gw, gb) = gradient[offset..offset + layer.n_params()].split_at_mut(n_in * n_out);
            for (j, dj) in self.delta.chunks_exact(n_rows.max(1)).enumerate() {
                gb[j] += dj.iter().sum::<f64>();
                for (k, src) in input.chunks_exact(n_rows.max(1)).enumerate() {
                    gw[k * n_out + j] += src.iter().zip(dj).map(|(a, b)| a * b).sum::<f64>();
                }
            }
            if l > 0 {
                let w = &theta[offset..offset + n_in * n_out];
                self.delta_in.clear();
                self.delta_in.resize(n_in * n_rows, 0.0);
                for (k, dst) in self.delta_in.chunks_exact_mut(n_rows.max(1)).enumerate() {
                    for (j, dj) in self.delta.chunks_exact(n_rows.max(1)).enumerate() {
                        let wkj = w[k * n_out + j];
                        for (d, &v) in dst.iter_mut().zip(dj) {
                            *d += wkj * v;
                        }
                    }
                }
                std::mem::swap(&mut self.delta, &mut self.delta_in);
            }
        }
        self.out = out;
        if logp.is_finite() && gradient.iter().all(|g| g.is_finite()) { Ok(logp) } else { Err(DensityError::NonFinite) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    pub(crate) fn template(widths: &[usize], activation: Activation, task: BnnTask, prior_sd: f64) -> BnnParams {
        crate::models::nuts::template_of_widths(widths, activation, task, prior_sd)
    }

    /// The log density written out row by row, sample by sample, with no shared code.
    fn naive_logp(t: &BnnParams, theta: &[f64], x: &[f32], y: &[f32], noise: NoiseModel, tau: f64) -> f64 {
        let n_w = t.n_params();
        let s = t.prior_sd;
        let mut lp = 0.0;
        for &w in &theta[..n_w] {
            lp += -0.5 * (w / s).powi(2) - s.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln();
        }
        let d = t.n_in();
        for (row, &yi) in x.chunks(d).zip(y) {
            let mut h: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
            let mut off = 0;
            for l in &t.layers {
                let mut next = vec![0.0; l.n_out];
                for (j, nj) in next.iter_mut().enumerate() {
                    let mut z = theta[off + l.n_in * l.n_out + j];
                    for (k, hk) in h.iter().enumerate() {
                        z += hk * theta[off + k * l.n_out + j];
                    }
                    *nj = l.activation.apply_scalar(z);
                }
                h = next;
                off += l.n_params();
            }
            let yi = f64::from(yi);
            let normal = |y: f64, m: f64, sd: f64| {
                -0.5 * ((y - m) / sd).powi(2) - sd.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
            };
            lp += match t.task {
                BnnTask::Regression(Head::Mse) => match noise {
                    NoiseModel::Fixed => normal(yi, h[0], 0.5f64.sqrt()),
                    NoiseModel::Sampled => normal(yi, h[0], theta[n_w].exp()),
                },
                BnnTask::Regression(Head::Normal) => normal(yi, h[0], (1.0 + h[1].exp()).ln() + 1e-3),
                BnnTask::Classification { .. } => {
                    let z: f64 = h.iter().map(|v| v.exp()).sum();
                    h[yi as usize] - z.ln()
                }
            };
        }
        if noise == NoiseModel::Sampled {
            let sigma = theta[n_w].exp();
            // HalfNormal(τ) density 2 N(σ; 0, τ²), and the Jacobian dσ/du = σ.
            lp += 2f64.ln() + normal_ln(sigma, tau) + sigma.ln();
        }
        lp
    }

    fn normal_ln(x: f64, sd: f64) -> f64 {
        -0.5 * (x / sd).powi(2) - sd.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
    }

    fn case(task: BnnTask, activation: Activation, noise: NoiseModel, seed: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (d, n_rows) = (3, 7);
        let n_out = task.n_out();
        let t = template(&[d, 4, 3, n_out], activation, task, 0.8);
        let x: Vec<f32> = (0..d * n_rows).map(|_| rng.random_range(-2.0..2.0)).collect();
        let y: Vec<f32> = (0..n_rows)
            .map(|_| match task {
                BnnTask::Classification { n_classes } => rng.random_range(0..n_classes) as f32,
                BnnTask::Regression(_) => rng.random_range(-1.5..1.5),
            })
            .collect();
        let mut density = BnnDensity::new(&t, &x, &y, n_rows, noise);
        let dim = density.dim();
        let theta: Vec<f64> = (0..dim).map(|_| rng.random_range(-1.2..1.2)).collect();
        let mut grad = vec![0.0; dim];
        let lp = density.logp(&theta, &mut grad).unwrap();
        let naive = naive_logp(&t, &theta, &x, &y, noise, density.sigma_prior_scale());
        assert!((lp - naive).abs() < 1e-10 * naive.abs().max(1.0), "{task:?} {activation:?}: {lp} against {naive}");
        // Central differences, step 1e-5: error O(h²) ≈ 1e-10 relative; rounding ≈ 1e-16 / 1e-5.
        let h = 1e-5;
        let mut scratch = vec![0.0; dim];
        for k in 0..dim {
            let mut plus = theta.clone();
            plus[k] += h;
            let mut minus = theta.clone();
            minus[k] -= h;
            let fd =
                (density.logp(&plus, &mut scratch).unwrap() - density.logp(&minus, &mut scratch).unwrap()) / (2.0 * h);
            let tol = 1e-6 * fd.abs().max(1.0);
            assert!(
                (grad[k] - fd).abs() < tol,
                "{task:?} {activation:?} {noise:?} coordinate {k}: {} against {fd}",
                grad[k]
            );
        }
    }

    #[test]
    fn logp_matches_a_plain_computation_and_the_gradient_finite_differences() {
        let smooth = [Activation::Sigmoid, Activation::Tanh, Activation::Softplus, Activation::Identity];
        for (i, &a) in smooth.iter().enumerate() {
            case(BnnTask::Regression(Head::Mse), a, NoiseModel::Fixed, i as u64);
            case(BnnTask::Regression(Head::Mse), a, NoiseModel::Sampled, 10 + i as u64);
            case(BnnTask::Regression(Head::Normal), a, NoiseModel::Fixed, 20 + i as u64);
            case(BnnTask::Classification { n_classes: 3 }, a, NoiseModel::Fixed, 30 + i as u64);
        }
        // Piecewise linear: a kink is almost never within h of a pre-activation at random positions.
        for (i, a) in [Activation::Relu, Activation::LeakyRelu].into_iter().enumerate() {
            case(BnnTask::Regression(Head::Mse), a, NoiseModel::Fixed, 40 + i as u64);
            case(BnnTask::Classification { n_classes: 2 }, a, NoiseModel::Fixed, 50 + i as u64);
        }
    }

    #[test]
    fn a_wrong_length_is_an_error() {
        let t = template(&[1, 2, 1], Activation::Tanh, BnnTask::Regression(Head::Mse), 1.0);
        let mut density = BnnDensity::new(&t, &[0.5], &[1.0], 1, NoiseModel::Fixed);
        let mut g = vec![0.0; 3];
        assert!(matches!(density.logp(&[0.0; 3], &mut g), Err(DensityError::Dimension { .. })));
    }
}
