//! The BNN's exact posterior by the No-U-Turn sampler (Hoffman and Gelman, "The No-U-Turn sampler", JMLR 2014),
//! beside the variational one: [`sample_bnn`] runs chains of `nuts-rs` (the sampler behind nutpie, with a
//! diagonal mass matrix and step size adapted during the warm-up) on the log posterior of `density`
//! ([`BnnDensity`]) over every weight and bias, and reports each chain's diagnostics, the rank-normalised R-hat
//! and bulk ESS of every coordinate (`diagnostics`), and the draws ([`NutsPosterior`]).
//!
//! The draws are whole weight samples in the layout of [`BnnParams`]'s forward pass, so predictions go through
//! the same code as the variational model's samples ([`BnnParams::predict_with_weights`], then
//! [`summarize`](crate::models::bnn::summarize)).
//!
//! Plain data only: the UI follows a run through [`NutsControl`] (cancel, pause, progress) from another thread.

mod density;
pub mod diagnostics;

pub use density::{BnnDensity, DensityError, NoiseModel};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nuts_rs::{Chain, CpuLogpFunc, CpuMath, CpuMathError, DiagNutsSettings, HasDims, LogpError, Settings};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::compute::Activation;
use crate::models::bnn::{BnnConfig, BnnLayer, BnnParams, BnnTask, Posterior, Predictive, PredictiveRows, summarize};

/// How the sampler runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NutsSettings {
    /// Independent chains, one thread each.
    pub chains: usize,
    /// Warm-up (tuning) iterations per chain, discarded: the step size and the diagonal mass matrix adapt here.
    pub warmup: usize,
    /// Draws kept per chain.
    pub draws: usize,
    /// Seed: chain `c` is seeded from `(seed, c)`, the row subsample from `seed`.
    pub seed: u64,
    /// Most doublings of a trajectory (at most `2^max_depth - 1` leapfrog steps per draw).
    pub max_depth: u64,
    /// Mean acceptance probability the step size is tuned to.
    pub target_accept: f64,
    /// Data with more rows than this are subsampled to this many rows by a seeded draw (the likelihood's cost
    /// grows with the rows; the result says how many were used). 0: no cap.
    pub max_rows: usize,
    /// The squared-error head's noise: fixed at `σ² = 1/2`, or sampled.
    pub noise: NoiseModel,
}

impl Default for NutsSettings {
    fn default() -> Self {
        Self {
            chains: 4,
            warmup: 500,
            draws: 500,
            seed: 42,
            max_depth: 10,
            target_accept: 0.8,
            max_rows: 2000,
            noise: NoiseModel::Fixed,
        }
    }
}

/// R-hat above this is reported (Vehtari et al. 2021).
pub const RHAT_WARNING: f64 = 1.01;
/// Bulk ESS below this is reported (Vehtari et al. 2021: 100 per chain for four chains).
pub const ESS_WARNING: f64 = 400.0;

/// Where a chain is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Not started yet (finding a starting point).
    #[default]
    Starting,
    /// Tuning the step size and mass matrix; the draws are discarded.
    Warmup,
    /// Drawing the kept samples.
    Sampling,
    /// Finished.
    Done,
}

/// One chain's progress, readable while it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChainProgress {
    /// Iterations done, warm-up included.
    pub done: usize,
    /// Iterations in all (warm-up plus draws).
    pub total: usize,
    /// Where the chain is.
    pub phase: Phase,
    /// Divergent transitions so far, warm-up included.
    pub divergences: usize,
    /// The step size of the last iteration.
    pub step_size: f64,
}

/// Cancels, pauses and follows a run from another thread (clone it; all clones act on the same run).
#[derive(Clone, Debug, Default)]
pub struct NutsControl {
    /// Set to stop the chains; [`sample_bnn`] then returns [`NutsError::Cancelled`] (the draws so far are
    /// dropped).
    pub cancel: Arc<AtomicBool>,
    /// While set, the chains wait between iterations, asleep.
    pub pause: Arc<AtomicBool>,
    progress: Arc<Mutex<Vec<ChainProgress>>>,
}

impl NutsControl {
    /// A control for a run not started yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the chains to stop.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Pauses or resumes the chains.
    pub fn set_paused(&self, paused: bool) {
        self.pause.store(paused, Ordering::Relaxed);
    }

    /// Each chain's progress (empty before the run starts).
    #[must_use]
    pub fn progress(&self) -> Vec<ChainProgress> {
        self.progress.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set(&self, chain: usize, value: ChainProgress) {
        if let Some(slot) = self.progress.lock().unwrap_or_else(PoisonError::into_inner).get_mut(chain) {
            *slot = value;
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Sleeps while paused; `true` if cancelled meanwhile.
    fn wait_while_paused(&self) -> bool {
        while self.pause.load(Ordering::Relaxed) && !self.cancelled() {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.cancelled()
    }
}

/// Why a run gave no posterior.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NutsError {
    /// The settings or the data cannot be sampled.
    #[error("{0}")]
    Invalid(String),
    /// A chain failed (no finite starting point, or an unrecoverable error in the sampler).
    #[error("chain {chain}: {message}")]
    Chain {
        /// The chain.
        chain: usize,
        /// What went wrong.
        message: String,
    },
    /// Stopped by [`NutsControl::cancel`].
    #[error("the sampler was cancelled")]
    Cancelled,
}

/// One chain's draws and diagnostics.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainDraws {
    /// The kept draws of the network's parameters, `[draws, n_weights]`, each in [`BnnParams`]'s flat layout.
    pub weights: Vec<f32>,
    /// [`NoiseModel::Sampled`]: `σ` at each draw `[draws]`; empty otherwise.
    pub sigma: Vec<f32>,
    /// Divergent transitions among the kept draws.
    pub divergences: usize,
    /// Divergent transitions during the warm-up.
    pub warmup_divergences: usize,
    /// The step size after the warm-up.
    pub step_size: f64,
    /// Mean tree depth of the kept draws.
    pub mean_tree_depth: f64,
    /// Kept draws whose trajectory stopped at the maximum depth.
    pub max_depth_hits: usize,
    /// Gradient evaluations, warm-up included.
    pub gradient_evaluations: u64,
}

/// What [`sample_bnn`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct NutsPosterior {
    /// The settings it ran with.
    pub settings: NutsSettings,
    /// The network's parameters per draw.
    pub n_weights: usize,
    /// Per chain.
    pub chains: Vec<ChainDraws>,
    /// Rank-normalised split R-hat per coordinate (`n_weights`, then `log σ` when sampled).
    pub rhat: Vec<f64>,
    /// Bulk ESS per coordinate, in the same order.
    pub ess_bulk: Vec<f64>,
    /// Wall-clock seconds of the sampling (diagnostics included).
    pub seconds: f64,
    /// Rows the likelihood ran over.
    pub rows_used: usize,
    /// Rows given (more than `rows_used` when subsampled to `settings.max_rows`).
    pub rows_total: usize,
}

impl NutsPosterior {
    /// The largest R-hat (NaN when some coordinate's is NaN, as with one chain).
    #[must_use]
    pub fn max_rhat(&self) -> f64 {
        self.rhat
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, |a, b| if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) })
    }

    /// The smallest bulk ESS.
    #[must_use]
    pub fn min_ess_bulk(&self) -> f64 {
        self.ess_bulk
            .iter()
            .copied()
            .fold(f64::INFINITY, |a, b| if a.is_nan() || b.is_nan() { f64::NAN } else { a.min(b) })
    }

    /// Divergent transitions among the kept draws, all chains.
    #[must_use]
    pub fn divergences(&self) -> usize {
        self.chains.iter().map(|c| c.divergences).sum()
    }

    /// Kept draws over all chains.
    #[must_use]
    pub fn n_draws(&self) -> usize {
        self.chains.iter().map(|c| c.weights.len() / self.n_weights.max(1)).sum()
    }

    /// Every chain's draws one after the other, `[chains × draws, n_weights]`: weight samples for
    /// [`BnnParams::predict_with_weights`].
    #[must_use]
    pub fn weight_samples(&self) -> Vec<f32> {
        self.chains.iter().flat_map(|c| c.weights.iter().copied()).collect()
    }

    /// The problems, in words: R-hat above [`RHAT_WARNING`], bulk ESS below [`ESS_WARNING`], divergences, draws
    /// at the maximum depth, subsampled rows.
    #[must_use]
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let name = |k: usize| if k == self.n_weights { "log sigma".to_owned() } else { format!("parameter {k}") };
        let high: Vec<usize> =
            (0..self.rhat.len()).filter(|&k| self.rhat[k].is_nan() || self.rhat[k] > RHAT_WARNING).collect();
        if self.chains.len() < 2 {
            out.push("one chain: R-hat needs two or more (four are advised)".to_owned());
        } else if let Some(&worst) = high.iter().max_by(|&&a, &&b| self.rhat[a].total_cmp(&self.rhat[b])) {
            out.push(format!(
                "R-hat above {RHAT_WARNING} for {} of {} coordinates (largest {:.3}, {}): the chains disagree; run longer or read the predictions rather than single weights",
                high.len(),
                self.rhat.len(),
                self.rhat[worst],
                name(worst)
            ));
        }
        let low: Vec<usize> =
            (0..self.ess_bulk.len()).filter(|&k| self.ess_bulk[k].is_nan() || self.ess_bulk[k] < ESS_WARNING).collect();
        if let Some(&worst) = low.iter().min_by(|&&a, &&b| self.ess_bulk[a].total_cmp(&self.ess_bulk[b])) {
            out.push(format!(
                "bulk ESS below {ESS_WARNING:.0} for {} of {} coordinates (smallest {:.0}, {})",
                low.len(),
                self.ess_bulk.len(),
                self.ess_bulk[worst],
                name(worst)
            ));
        }
        let divergences = self.divergences();
        if divergences > 0 {
            let transitions = if divergences == 1 { "transition" } else { "transitions" };
            out.push(format!(
                "{divergences} divergent {transitions} after the warm-up: the sampler missed part of the posterior; \
                 raise the target acceptance from {:.2} (to 0.9 or 0.95: smaller steps, slower draws)",
                self.settings.target_accept
            ));
        }
        let hits: usize = self.chains.iter().map(|c| c.max_depth_hits).sum();
        if hits > 0 {
            out.push(format!("{hits} draws stopped at the maximum tree depth {}", self.settings.max_depth));
        }
        if self.rows_used < self.rows_total {
            out.push(format!(
                "sampled on {} of the {} training rows (a seeded subsample)",
                crate::data::table::grouped(self.rows_used),
                crate::data::table::grouped(self.rows_total)
            ));
        }
        out
    }
}

/// The log density in `nuts-rs`'s terms.
struct Logp(BnnDensity);

impl HasDims for Logp {
    fn dim_sizes(&self) -> HashMap<String, u64> {
        let dim = self.0.dim() as u64;
        HashMap::from([("unconstrained_parameter".to_owned(), dim), ("dim".to_owned(), dim)])
    }
}

impl LogpError for DensityError {
    fn is_recoverable(&self) -> bool {
        matches!(self, Self::NonFinite)
    }
}

impl CpuLogpFunc for Logp {
    type LogpError = DensityError;
    type FlowParameters = ();
    type ExpandedVector = Vec<f64>;

    fn dim(&self) -> usize {
        self.0.dim()
    }

    fn logp(&mut self, position: &[f64], gradient: &mut [f64]) -> Result<f64, DensityError> {
        self.0.logp(position, gradient)
    }

    fn expand_vector<R: nuts_rs::rand::Rng + ?Sized>(
        &mut self,
        _rng: &mut R,
        position: &[f64],
    ) -> Result<Vec<f64>, CpuMathError> {
        Ok(position.to_vec())
    }
}

/// SplitMix64's mixing step: distinct, well-spread seeds from `(seed, chain)`.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The seed of chain `chain`'s generator.
fn chain_seed(seed: u64, chain: usize) -> u64 {
    mix(mix(seed) ^ chain as u64)
}

/// Samples the posterior of `template`'s network (its layers' shapes and activations, its task and prior sd; its
/// weights are ignored) given rows `x` `[n_rows, n_in]` and targets `y` `[n_rows]` (class indices for a label,
/// as in [`Prepared`](crate::data::prepare::Prepared)'s training split), with `settings.chains` chains of NUTS on
/// threads. Rows beyond `settings.max_rows` are left out by a seeded draw.
///
/// Blocks until every chain is done; `control` cancels (an error, the draws dropped), pauses and reports progress
/// from another thread.
pub fn sample_bnn(
    template: &BnnParams,
    x: &[f32],
    y: &[f32],
    n_rows: usize,
    settings: &NutsSettings,
    control: &NutsControl,
) -> Result<NutsPosterior, NutsError> {
    let start = Instant::now();
    let invalid = |m: String| Err(NutsError::Invalid(m));
    let n_in = template.n_in();
    if template.layers.is_empty() || n_in == 0 {
        return invalid("the network has no layers".into());
    }
    if template.layers.windows(2).any(|w| w[0].n_out != w[1].n_in)
        || template.layers.last().map(|l| l.n_out) != Some(template.task.n_out())
    {
        return invalid("the network's layers do not fit together".into());
    }
    if !(template.prior_sd > 0.0 && template.prior_sd.is_finite()) {
        return invalid(format!("the prior's standard deviation must be positive, not {}", template.prior_sd));
    }
    if x.len() < n_rows * n_in || y.len() < n_rows || n_rows == 0 {
        return invalid(format!(
            "{n_rows} rows of {n_in} features are needed; got {} values and {} targets",
            x.len(),
            y.len()
        ));
    }
    if let BnnTask::Classification { n_classes } = template.task
        && y[..n_rows].iter().any(|&c| !(c >= 0.0 && (c as usize) < n_classes && c.fract() == 0.0))
    {
        return invalid(format!("a label is not a class index below {n_classes}"));
    }
    if settings.chains == 0 || settings.draws < 4 {
        return invalid("at least one chain and 4 draws are needed".into());
    }
    if !(settings.target_accept > 0.0 && settings.target_accept < 1.0) || settings.max_depth == 0 {
        return invalid("the target acceptance must be in (0, 1) and the maximum depth at least 1".into());
    }
    // The rows: all of them, or a seeded subsample.
    let (x_used, y_used, rows_used) = if settings.max_rows > 0 && n_rows > settings.max_rows {
        let mut rows: Vec<usize> = (0..n_rows).collect();
        rows.shuffle(&mut ChaCha8Rng::seed_from_u64(settings.seed ^ 0x005e_ed0f_d47a));
        rows.truncate(settings.max_rows);
        rows.sort_unstable();
        let x: Vec<f32> = rows.iter().flat_map(|&i| x[i * n_in..(i + 1) * n_in].iter().copied()).collect();
        let y: Vec<f32> = rows.iter().map(|&i| y[i]).collect();
        (x, y, rows.len())
    } else {
        (x[..n_rows * n_in].to_vec(), y[..n_rows].to_vec(), n_rows)
    };
    let density = BnnDensity::new(template, &x_used, &y_used, rows_used, settings.noise);
    let n_weights = density.n_weights();
    let dim = density.dim();

    let mut adapt_options = DiagNutsSettings::default().adapt_options;
    adapt_options.step_size_settings.target_accept = settings.target_accept;
    let nuts = DiagNutsSettings {
        num_tune: settings.warmup as u64,
        num_draws: settings.draws as u64,
        maxdepth: settings.max_depth,
        num_chains: settings.chains,
        seed: settings.seed,
        adapt_options,
        ..DiagNutsSettings::default()
    };

    let total = settings.warmup + settings.draws;
    *control.progress.lock().unwrap_or_else(PoisonError::into_inner) =
        vec![ChainProgress { total, ..ChainProgress::default() }; settings.chains];
    let results: Vec<Result<(ChainDraws, Vec<f64>), NutsError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..settings.chains)
            .map(|c| {
                let density = density.clone();
                let nuts = &nuts;
                std::thread::Builder::new()
                    .name(format!("nuts-chain-{c}"))
                    .spawn_scoped(scope, move || run_chain(c, density, nuts, settings, control))
            })
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(c, h)| match h {
                Ok(handle) => handle.join().unwrap_or_else(|_| {
                    Err(NutsError::Chain { chain: c, message: "the chain's thread panicked".into() })
                }),
                Err(e) => Err(NutsError::Chain { chain: c, message: format!("cannot start its thread: {e}") }),
            })
            .collect()
    });
    if control.cancelled() {
        return Err(NutsError::Cancelled);
    }
    let mut chains = Vec::with_capacity(results.len());
    let mut positions = Vec::with_capacity(results.len());
    for r in results {
        let (chain, position) = r?;
        chains.push(chain);
        positions.push(position);
    }
    // Per coordinate, each chain's draws in order: positions are [draws, dim] per chain.
    let mut rhat = Vec::with_capacity(dim);
    let mut ess = Vec::with_capacity(dim);
    let mut columns: Vec<Vec<f64>> = vec![Vec::with_capacity(settings.draws); positions.len()];
    for k in 0..dim {
        for (column, p) in columns.iter_mut().zip(&positions) {
            column.clear();
            column.extend(p.chunks_exact(dim).map(|row| row[k]));
        }
        let refs: Vec<&[f64]> = columns.iter().map(Vec::as_slice).collect();
        rhat.push(diagnostics::rank_rhat(&refs));
        ess.push(diagnostics::ess_bulk(&refs));
    }
    Ok(NutsPosterior {
        settings: settings.clone(),
        n_weights,
        chains,
        rhat,
        ess_bulk: ess,
        seconds: start.elapsed().as_secs_f64(),
        rows_used,
        rows_total: n_rows,
    })
}

/// One chain: seeded from `(settings.seed, chain)`, started at a seeded point near 0 (each parameter uniform in
/// `±min(prior sd, 1)`, `log σ` within ±0.5 of `log τ`). Returns the draws and the positions in f64
/// `[draws, dim]` for the diagnostics.
fn run_chain(
    chain: usize,
    density: BnnDensity,
    nuts: &DiagNutsSettings,
    settings: &NutsSettings,
    control: &NutsControl,
) -> Result<(ChainDraws, Vec<f64>), NutsError> {
    let fail = |message: String| NutsError::Chain { chain, message };
    let seed = chain_seed(settings.seed, chain);
    let n_weights = density.n_weights();
    let dim = density.dim();
    let samples_sigma = density.samples_sigma();
    let log_tau = density.sigma_prior_scale().ln();
    let spread = 1f64.min(density.prior_sd());
    let mut init_rng = ChaCha8Rng::seed_from_u64(mix(seed));
    let mut rng = <nuts_rs::rand::rngs::ChaCha8Rng as nuts_rs::rand::SeedableRng>::seed_from_u64(seed);
    let mut sampler =
        nuts.new_chain(chain as u64, CpuMath::new(Logp(density)), &mut rng).map_err(|e| fail(e.to_string()))?;
    // A few tries at a point where the density is finite.
    let mut started = Err(String::new());
    for _ in 0..20 {
        let mut init: Vec<f64> = (0..n_weights).map(|_| init_rng.random_range(-spread..=spread)).collect();
        if samples_sigma {
            init.push(log_tau + init_rng.random_range(-0.5..=0.5));
        }
        started = sampler.set_position(&init).map_err(|e| e.to_string());
        if started.is_ok() {
            break;
        }
    }
    started.map_err(|e| fail(format!("no finite starting point: {e}")))?;

    let total = settings.warmup + settings.draws;
    let mut out = ChainDraws {
        weights: Vec::with_capacity(settings.draws * n_weights),
        sigma: Vec::new(),
        divergences: 0,
        warmup_divergences: 0,
        step_size: f64::NAN,
        mean_tree_depth: 0.0,
        max_depth_hits: 0,
        gradient_evaluations: 0,
    };
    let mut positions = Vec::with_capacity(settings.draws * dim);
    let mut depth_sum = 0u64;
    let mut progress = ChainProgress { total, phase: Phase::Warmup, ..ChainProgress::default() };
    control.set(chain, progress);
    let report_every = (total / 200).max(1);
    for i in 0..total {
        if control.wait_while_paused() {
            return Err(NutsError::Cancelled);
        }
        let (position, _, stats, info) = sampler.expanded_draw().map_err(|e| fail(e.to_string()))?;
        let kept = i >= settings.warmup;
        out.gradient_evaluations += info.num_gradients;
        if kept {
            out.divergences += usize::from(info.diverging);
            depth_sum += stats.depth;
            out.max_depth_hits += usize::from(stats.maxdepth_reached);
            out.weights.extend(position[..n_weights].iter().map(|&v| v as f32));
            if samples_sigma {
                out.sigma.push(position[n_weights].exp() as f32);
            }
            positions.extend_from_slice(&position);
        } else {
            out.warmup_divergences += usize::from(info.diverging);
        }
        out.step_size = info.step_size;
        progress.done = i + 1;
        progress.divergences = out.divergences + out.warmup_divergences;
        progress.step_size = info.step_size;
        progress.phase = if i + 1 == total {
            Phase::Done
        } else if i + 1 >= settings.warmup {
            Phase::Sampling
        } else {
            Phase::Warmup
        };
        if (i + 1) % report_every == 0 || i + 1 == total {
            control.set(chain, progress);
        }
    }
    out.mean_tree_depth = depth_sum as f64 / settings.draws.max(1) as f64;
    Ok((out, positions))
}

/// The network of `config`'s architecture for `n_in` inputs and `task`, with zero weights: the template
/// [`sample_bnn`] takes (every layer [`Posterior::Deterministic`](crate::models::bnn::Posterior); the hidden layers
/// with `config.activation`, the output layer the identity; the prior sd `config.prior_sd`).
#[must_use]
pub fn bnn_template(config: &BnnConfig, n_in: usize, task: BnnTask) -> BnnParams {
    let mut widths = vec![n_in];
    widths.extend(&config.hidden);
    widths.push(task.n_out());
    template_of_widths(&widths, config.activation, task, config.prior_sd)
}

/// A network of layers `widths[0] -> widths[1] -> ...` with zero weights, `activation` on the hidden layers and the
/// identity on the output layer, every layer deterministic: [`bnn_template`]'s, and the tests' for any widths.
pub(crate) fn template_of_widths(widths: &[usize], activation: Activation, task: BnnTask, prior_sd: f64) -> BnnParams {
    let n_layers = widths.len().saturating_sub(1);
    let layers = widths
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let k = w[0] * w[1] + w[1];
            BnnLayer {
                n_in: w[0],
                n_out: w[1],
                posterior: Posterior::Deterministic,
                mean: vec![0.0; k],
                sd: vec![0.0; k],
                scale_tril: Vec::new(),
                activation: if i + 1 == n_layers { Activation::Identity } else { activation },
            }
        })
        .collect();
    BnnParams { layers, task, prior_sd }
}

/// The figures of a sampled posterior: its diagnostics (`max_rhat`, `min_ess_bulk`, `divergences`,
/// `max_depth_hits`, `seconds`, `rows_used`, `samples`) and its predictions on the rows `x_test` `[n, n_in]` with
/// targets `y_test`, every kept draw a weight sample through [`BnnParams::predict_with_weights`] and
/// [`summarize`]: `test_rmse` (or `test_error_rate`), `test_nll`, `coverage_50`, `coverage_80`, `coverage_95`
/// (named as the variational run's figures) and, for regression, `interval_width_95` (the mean width of the 95 %
/// interval). Deterministic: the same draws give the same figures to the last bit.
#[must_use]
pub fn posterior_figures(
    template: &BnnParams,
    posterior: &NutsPosterior,
    x_test: &[f32],
    y_test: &[f32],
) -> Vec<(String, f64)> {
    let n_samples = posterior.n_draws();
    let outputs = template.predict_with_weights(&posterior.weight_samples(), n_samples, x_test, y_test.len());
    let test = summarize(template.task, &outputs, n_samples, y_test);
    let mut figures = predictive_figures(template.task, &test);
    let hits: usize = posterior.chains.iter().map(|c| c.max_depth_hits).sum();
    figures.extend([
        ("max_rhat".to_owned(), posterior.max_rhat()),
        ("min_ess_bulk".to_owned(), posterior.min_ess_bulk()),
        ("divergences".to_owned(), posterior.divergences() as f64),
        ("max_depth_hits".to_owned(), hits as f64),
        ("seconds".to_owned(), posterior.seconds),
        ("rows_used".to_owned(), posterior.rows_used as f64),
        ("samples".to_owned(), n_samples as f64),
    ]);
    figures
}

/// The prediction figures of `test` (a model's predictions of the test rows), named as [`posterior_figures`]
/// names them: `test_rmse` (or `test_error_rate`), `test_nll`, `coverage_50`, `coverage_80`, `coverage_95` and,
/// for regression, `interval_width_95` (the mean width of the 95 % interval). The variational model's predictions
/// give the same figures under the same names.
#[must_use]
pub fn predictive_figures(task: BnnTask, test: &Predictive) -> Vec<(String, f64)> {
    let quality = if matches!(task, BnnTask::Classification { .. }) { "error_rate" } else { "rmse" };
    let mut figures = vec![(format!("test_{quality}"), test.error), ("test_nll".to_owned(), test.nll)];
    for (level, fraction) in &test.coverage {
        figures.push((format!("coverage_{:.0}", level * 100.0), *fraction));
    }
    if let PredictiveRows::Regression(rows) = &test.rows {
        let width = rows.iter().map(|r| f64::from(r.interval_95().1 - r.interval_95().0)).sum::<f64>();
        figures.push(("interval_width_95".to_owned(), width / rows.len().max(1) as f64));
    }
    figures
}

#[cfg(test)]
mod tests;
