//! The MLP VAE's training pass written out by hand: the loss of a minibatch and its gradient with respect to every
//! weight and bias, without candle's autograd. The encoder and decoder go forward and back by
//! [`crate::compute::cpu::dense`]; the minibatch is split into the same [`SHARDS`] row ranges as candle's path
//! ([`crate::models::vae`]), each shard a rayon task with its own buffers; the shards' gradients are added inside the
//! optimiser's update ([`FlatGradients::Sum`]), which saves a pass over the model.
//! candle's autograd of the same loss is the reference the tests compare this with.
//!
//! The loss per row (Kingma and Welling 2014), with the encoder's output split into `[mu, log sigma²]`:
//! z = mu + exp(½ log sigma²) ⊙ eps, then `recon + beta · KL`, where recon is `Σ softplus(l) − x l` over the
//! decoder's logits l (Bernoulli) or `1000 · mean (x − x̂)²` (Gaussian), and `KL = ½ Σ (mu² + sigma² − 1 − log
//! sigma²)`; each term is averaged over the minibatch.

use rayon::prelude::*;

use crate::compute::activation::{exp_f32, ln_1p_unit_f32};
use crate::compute::cpu::dense::{DenseRef, StackPass, gradient_len};
use crate::compute::cpu::optim::FlatGradients;
use serde::{Deserialize, Serialize};

/// `p(x | z)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Likelihood {
    /// Binarised pixels, `Bernoulli(sigmoid(logits))`: binary cross-entropy summed over pixels (nats).
    Bernoulli,
    /// The course's `1000 × mean squared error` (a Gaussian with a fixed variance, up to a constant).
    Gaussian,
}

impl Likelihood {
    /// Name on the command line.
    #[must_use]
    pub fn cli_name(self) -> &'static str {
        match self {
            Self::Bernoulli => "bernoulli",
            Self::Gaussian => "gaussian",
        }
    }
}

/// Minibatches are split into this many shards, each taken forward and backward as its own rayon task; the
/// gradients are averaged by rows. Splitting the matrix products inside candle does not pay on the VAEs' shapes
/// (measured: a step takes as long on two threads as on one); splitting the minibatch does (a conv-VAE step in
/// half the time). Fixed rather than the core count, so that a run gives the same numbers on every machine. The
/// convolutional VAE's batch normalisation uses each shard's own statistics, as data-parallel training on
/// several GPUs does without synchronised batch normalisation; the running averages pool them.
pub const SHARDS: usize = 2;

/// `(first row, rows)` of each shard of a minibatch of `n` rows.
pub(crate) fn shard_bounds(n: usize) -> Vec<(usize, usize)> {
    let count = SHARDS.clamp(1, n.max(1));
    (0..count).map(|k| (k * n / count, (k + 1) * n / count - k * n / count)).collect()
}

/// A minibatch's loss terms, each a mean over its rows (nats per input).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VaeStepLoss {
    /// Reconstruction term.
    pub recon: f64,
    /// KL term (before beta).
    pub kl: f64,
    /// `recon + beta kl`.
    pub total: f64,
}

/// One shard's buffers.
#[derive(Clone, Debug, Default)]
struct ShardWork {
    encoder: StackPass,
    decoder: StackPass,
    /// Latent standard deviations and draws, `[rows, latent]`.
    sd: Vec<f32>,
    z: Vec<f32>,
    /// ∂loss/∂(decoder output), then ∂loss/∂(encoder output).
    grad_out: Vec<f32>,
    grad_enc: Vec<f32>,
    /// This shard's share of ∂loss/∂variable, encoder then decoder.
    gradients: Vec<f32>,
    /// Sums over the shard's rows of the reconstruction and KL terms.
    recon: f64,
    kl: f64,
}

/// Buffers of the pass, kept from one minibatch to the next.
#[derive(Clone, Debug, Default)]
pub struct MlpVaeWorkspace {
    shards: Vec<ShardWork>,
    /// Shards the last minibatch used.
    used: usize,
}

// The shards' gradients reach the optimiser as one share or the sum of two.
const _: () = assert!(SHARDS <= 2, "FlatGradients adds at most two shares");

/// The gradient as the optimiser takes it from the shards a pass used: each one's share (`gradients` of it), whose
/// sum it is.
pub(crate) fn shard_shares<'a, S>(used: &'a [S], gradients: impl Fn(&'a S) -> &'a [f32]) -> FlatGradients<'a> {
    match used {
        [a, b] => FlatGradients::Sum(gradients(a), gradients(b)),
        [one, ..] => FlatGradients::One(gradients(one)),
        [] => FlatGradients::One(&[]),
    }
}

impl MlpVaeWorkspace {
    /// ∂loss/∂variable after [`mlp_vae_loss_and_gradients`], every variable end to end in the VAE's order (the
    /// encoder's layers, each its weights then its biases, then the decoder's): the shards' shares, whose sum it
    /// is. Empty before the first pass.
    #[must_use]
    pub fn gradients(&self) -> FlatGradients<'_> {
        shard_shares(&self.shards[..self.used], |s| &s.gradients)
    }
}

/// What the pass needs besides the data: the networks and the loss's settings.
#[derive(Clone, Copy, Debug)]
pub struct MlpVae<'a> {
    /// Inputs to `[mu, log sigma²]` (`2 latent` outputs, identity on the last layer).
    pub encoder: &'a [DenseRef<'a>],
    /// Latents to logits (Bernoulli) or values (Gaussian), identity on the last layer.
    pub decoder: &'a [DenseRef<'a>],
    /// Latent dimension.
    pub latent: usize,
    /// Which reconstruction term.
    pub likelihood: Likelihood,
    /// The KL's weight.
    pub beta: f64,
}

/// The loss of the rows of `x` (`[n, n_in]`) with latent noise `eps` (`[n, latent]`), and its gradient in
/// `work.gradients`; `None` for an empty minibatch or inputs whose widths do not fit the networks.
#[must_use]
pub fn mlp_vae_loss_and_gradients(
    vae: MlpVae<'_>,
    x: &[f32],
    eps: &[f32],
    work: &mut MlpVaeWorkspace,
) -> Option<VaeStepLoss> {
    let n_in = vae.encoder.first()?.n_in;
    let latent = vae.latent;
    let rows = x.len().checked_div(n_in)?;
    if rows == 0
        || x.len() != rows * n_in
        || eps.len() != rows * latent
        || vae.encoder.last()?.n_out != 2 * latent
        || vae.decoder.first()?.n_in != latent
        || vae.decoder.last()?.n_out != n_in
    {
        return None;
    }
    let pass = |x: &[f32], eps: &[f32], inv_n, shard: &mut ShardWork| shard_pass(vae, x, eps, inv_n, shard);
    Some(sharded_pass((&mut work.shards, &mut work.used), (x, eps), (n_in, latent), vae.beta, pass))
}

/// Runs `pass(x rows, eps rows, 1 / all rows, shard)` on each of the [`shard_bounds`] of the minibatch `x`
/// `[rows, n_in]` with noise `eps` `[rows, latent]`, as rayon tasks, each with its own element of `shards` (grown
/// as needed) and leaving its `(reconstruction, KL)` sums in it ([`ShardSums`]); sets `used` to how many shards
/// it used and returns the loss.
pub(crate) fn sharded_pass<S: ShardSums + Default + Send>(
    (shards, used): (&mut Vec<S>, &mut usize),
    (x, eps): (&[f32], &[f32]),
    (n_in, latent): (usize, usize),
    beta: f64,
    pass: impl Fn(&[f32], &[f32], f32, &mut S) + Sync,
) -> VaeStepLoss {
    let rows = x.len() / n_in.max(1);
    let bounds = shard_bounds(rows);
    if shards.len() < bounds.len() {
        shards.resize_with(bounds.len(), S::default);
    }
    let inv_n = 1.0 / rows as f32;
    let sums: Vec<(f64, f64)> = shards[..bounds.len()]
        .par_iter_mut()
        .zip(&bounds)
        .map(|(shard, &(start, count))| {
            let (x, eps) = (&x[start * n_in..(start + count) * n_in], &eps[start * latent..(start + count) * latent]);
            pass(x, eps, inv_n, shard);
            shard.sums()
        })
        .collect();
    *used = bounds.len();
    step_loss(sums.into_iter(), rows, beta)
}

/// A shard's `(reconstruction, KL)` sums over its rows after its pass.
pub(crate) trait ShardSums {
    /// The sums.
    fn sums(&self) -> (f64, f64);
}

impl ShardSums for ShardWork {
    fn sums(&self) -> (f64, f64) {
        (self.recon, self.kl)
    }
}

/// The minibatch's loss terms from each shard's `(reconstruction, KL)` sums over its rows, `rows` in all: means
/// over the rows, rounded to f32 as candle's loss is (a term past f32's range is infinite, so the NaN guard stops
/// at it and names it, rather than at the update it would lead to).
fn step_loss(sums: impl Iterator<Item = (f64, f64)>, rows: usize, beta: f64) -> VaeStepLoss {
    let round = |v: f64| f64::from(v as f32);
    let (recon, kl) = sums.fold((0.0, 0.0), |(r, k), (a, b)| (r + a, k + b));
    let (recon, kl) = (round(recon / rows as f64), round(kl / rows as f64));
    VaeStepLoss { recon, kl, total: round(recon + beta * kl) }
}

/// One shard forward and back: its loss sums and its rows' share of the gradient (each row weighted `inv_n`, one
/// over the whole minibatch's rows).
fn shard_pass(vae: MlpVae<'_>, x: &[f32], eps: &[f32], inv_n: f32, work: &mut ShardWork) {
    let latent = vae.latent;
    let n_in = vae.encoder[0].n_in;
    let rows = x.len() / n_in;
    let ShardWork { encoder, decoder, sd, z, grad_out, grad_enc, gradients, recon, kl } = work;
    encoder.forward(vae.encoder, x, rows);
    let enc = encoder.output(); // [rows, 2 latent]: mu, then log sigma²
    *kl = reparametrise(enc, eps, latent, sd, z);
    decoder.forward(vae.decoder, z, rows);
    let out = decoder.output(); // [rows, n_in]
    *recon = reconstruction(vae.likelihood, false, out, x, n_in, inv_n, grad_out);
    let (encoder_len, decoder_len) = (gradient_len(vae.encoder), gradient_len(vae.decoder));
    gradients.resize(encoder_len + decoder_len, 0.0);
    let (encoder_grads, decoder_grads) = gradients.split_at_mut(encoder_len);
    decoder.backward(vae.decoder, grad_out, decoder_grads, true);
    let grad_z = decoder.input_gradient(); // [rows, latent]
    encoder_output_gradient(enc, sd, eps, grad_z, latent, (vae.beta as f32, inv_n), grad_enc);
    encoder.backward(vae.encoder, grad_enc, encoder_grads, false);
}

/// The reparametrised draws `z = mu + exp(½ log sigma²) ⊙ eps` and standard deviations (`[rows, latent]` each,
/// cleared first) from the encoder's output `enc` `[rows, 2 latent]` (`[mu, log sigma²]` per row); returns the
/// sum over the rows of `KL = ½ Σ (mu² + sigma² − 1 − log sigma²)`.
pub(crate) fn reparametrise(enc: &[f32], eps: &[f32], latent: usize, sd: &mut Vec<f32>, z: &mut Vec<f32>) -> f64 {
    sd.clear();
    z.clear();
    let mut kl = 0.0f64;
    for (row, eps) in enc.chunks_exact(2 * latent).zip(eps.chunks_exact(latent)) {
        let (mu, logvar) = row.split_at(latent);
        for j in 0..latent {
            let s = (0.5 * logvar[j]).exp();
            sd.push(s);
            z.push(mu[j] + s * eps[j]);
            kl += 0.5 * f64::from(mu[j] * mu[j] + s * s - 1.0 - logvar[j]);
        }
    }
    kl
}

/// ∂loss/∂(the encoder's output) `[rows, 2 latent]` into `out` (cleared first), from ∂loss/∂z `grad_z`, through the
/// draws of [`reparametrise`] and the KL weighted `beta`, each row weighted `inv_n`.
pub(crate) fn encoder_output_gradient(
    enc: &[f32],
    sd: &[f32],
    eps: &[f32],
    grad_z: &[f32],
    latent: usize,
    (beta, inv_n): (f32, f32),
    out: &mut Vec<f32>,
) {
    out.clear();
    let rows = enc.chunks_exact(2 * latent).zip(sd.chunks_exact(latent)).zip(eps.chunks_exact(latent));
    for (((row, sd), eps), grad_z) in rows.zip(grad_z.chunks_exact(latent)) {
        let mu = &row[..latent];
        // ∂/∂mu: through z, and the KL's mu²/2.
        out.extend((0..latent).map(|j| grad_z[j] + beta * mu[j] * inv_n));
        // ∂/∂log sigma²: through z = mu + exp(½ log sigma²) eps, and the KL's ½ (sigma² − log sigma²).
        out.extend((0..latent).map(|j| 0.5 * grad_z[j] * eps[j] * sd[j] + beta * 0.5 * (sd[j] * sd[j] - 1.0) * inv_n));
    }
}

/// The reconstruction term summed over the rows of `x` `[rows, n_in]` given the decoder's output `out`, and its
/// derivative (each row weighted `inv_n`) into `grad` (cleared first): Bernoulli on logits, or `1000 · mean
/// (x − x̂)²` on the output itself or, when `sigmoid_mean`, on the sigmoid of logits (the convolutional VAE).
pub(crate) fn reconstruction(
    likelihood: Likelihood,
    sigmoid_mean: bool,
    out: &[f32],
    x: &[f32],
    n_in: usize,
    inv_n: f32,
    grad: &mut Vec<f32>,
) -> f64 {
    grad.clear();
    let mut sum = 0.0f64;
    match likelihood {
        Likelihood::Bernoulli => {
            grad.resize(out.len(), 0.0);
            for ((l, t), g) in out.chunks_exact(n_in).zip(x.chunks_exact(n_in)).zip(grad.chunks_exact_mut(n_in)) {
                sum += bernoulli_row(l, t, g, inv_n);
            }
        }
        Likelihood::Gaussian => {
            let scale = 1000.0 / n_in as f32;
            for (&value, &target) in out.iter().zip(x) {
                // The mean and its derivative with respect to the output.
                let (mean, slope) = if sigmoid_mean {
                    let s = 1.0 / (1.0 + (-value).exp());
                    (s, s * (1.0 - s))
                } else {
                    (value, 1.0)
                };
                let d = mean - target;
                sum += f64::from(scale * d * d);
                grad.push(2.0 * scale * d * slope * inv_n);
            }
        }
    }
    sum
}

/// One row's Bernoulli term `Σ softplus(l) − x l` over its logits `l` and targets `x`, with its derivative
/// `(sigmoid(l) − x) · inv_n` written into `grad`; both from one exponential of −|l|. Branch-free functions
/// ([`exp_f32`], [`ln_1p_unit_f32`]) and sums in independent lanes let the loop run on vector registers, where the
/// library's `log1pf` per pixel was a tenth of a step.
fn bernoulli_row(logits: &[f32], targets: &[f32], grad: &mut [f32], inv_n: f32) -> f64 {
    const LANES: usize = 16;
    let term = |l: f32, t: f32| -> (f32, f32) {
        let e = exp_f32(-l.abs());
        let inv = 1.0 / (1.0 + e);
        let sigmoid = if l >= 0.0 { inv } else { e * inv };
        (l.max(0.0) + ln_1p_unit_f32(e) - t * l, sigmoid - t)
    };
    let mut lanes = [0.0f32; LANES];
    let whole = logits.len() / LANES * LANES;
    let chunks = logits[..whole].chunks_exact(LANES).zip(targets[..whole].chunks_exact(LANES));
    for ((l, t), g) in chunks.zip(grad[..whole].chunks_exact_mut(LANES)) {
        for k in 0..LANES {
            let (loss, d) = term(l[k], t[k]);
            lanes[k] += loss;
            g[k] = d * inv_n;
        }
    }
    let mut sum: f64 = lanes.iter().map(|&v| f64::from(v)).sum();
    for i in whole..logits.len() {
        let (loss, d) = term(logits[i], targets[i]);
        sum += f64::from(loss);
        grad[i] = d * inv_n;
    }
    sum
}
