//! The classic picture of a 1-D Bayesian regression: over a grid of inputs, the predictive mean, the central 50 %
//! and 95 % bands and a few sampled functions, computed from the raw outputs of `S` weight samples
//! ([`band_from_outputs`]). The weight samples may come from the variational posterior ([`vi_band`]) or from any
//! other posterior whose samples share [`BnnParams::sample_weights`]'s flat layout ([`band_from_weights`]).
//!
//! Two bands can be drawn:
//! - of the network's output `f(x)` (the head's `loc`): the quantiles of the `S` values `f_s(x)`, the epistemic
//!   spread alone (all the squared-error head has);
//! - for the Normal head, of a new observation `y`: the quantiles of the mixture `(1/S) Σ_s N(loc_s(x), σ_s(x)²)`
//!   with `σ_s = softplus(scale_s) + 1e-3`, epistemic and aleatoric together, found by bisection on its CDF.

use crate::models::bnn::{BnnParams, BnnTask, HEAD_SCALE_FLOOR, Head};
use crate::models::stats::quantile_sorted;

/// The quantile levels of a band's edges: the 95 % band runs from the first to the last, the 50 % band between the
/// middle two.
pub const BAND_LEVELS: [f64; 4] = [0.025, 0.25, 0.75, 0.975];

/// Sampled functions a band keeps for drawing (the first weight samples).
pub const BAND_SAMPLED_FUNCTIONS: usize = 5;

/// Grid points of a band.
pub const BAND_GRID_POINTS: usize = 200;

/// How far the grid reaches past the data on each side, as a share of the data's range.
pub const BAND_MARGIN: f32 = 0.25;

/// The edges of the central 50 % and 95 % bands at each grid point.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuantileBand {
    /// 2.5 % quantile, per grid point.
    pub q025: Vec<f32>,
    /// 25 % quantile.
    pub q25: Vec<f32>,
    /// 75 % quantile.
    pub q75: Vec<f32>,
    /// 97.5 % quantile.
    pub q975: Vec<f32>,
}

impl QuantileBand {
    fn with_capacity(n: usize) -> Self {
        Self {
            q025: Vec::with_capacity(n),
            q25: Vec::with_capacity(n),
            q75: Vec::with_capacity(n),
            q975: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, q: [f64; 4]) {
        self.q025.push(q[0] as f32);
        self.q25.push(q[1] as f32);
        self.q75.push(q[2] as f32);
        self.q975.push(q[3] as f32);
    }

    /// Width of the 95 % band at grid point `i` (NaN past the end).
    #[must_use]
    pub fn width_95(&self, i: usize) -> f32 {
        match (self.q025.get(i), self.q975.get(i)) {
            (Some(lo), Some(hi)) => hi - lo,
            _ => f32::NAN,
        }
    }
}

/// A 1-D regression's predictive band over a grid of inputs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PredictiveBand {
    /// The grid, in whatever units the caller gave (the views: the feature's own units).
    pub x: Vec<f32>,
    /// Mean over the weight samples of `f(x)` (the head's `loc`), per grid point.
    pub mean: Vec<f32>,
    /// The band of `f(x)`: the spread over the weight samples (epistemic).
    pub function: QuantileBand,
    /// Normal head only: the band of a new observation `y`, the noise the head learned included.
    pub observation: Option<QuantileBand>,
    /// The first [`BAND_SAMPLED_FUNCTIONS`] samples' `f(x)`, one curve per sample, over the grid.
    pub sampled: Vec<Vec<f32>>,
}

/// The band from raw outputs `outputs` `[n_samples, n_grid, n_out]` (as [`BnnParams::predict_samples_cpu`] returns
/// them) at the grid points `grid` `[n_grid]`. `task` says what the outputs are: the band is of output 0 (the
/// value, or the Normal head's `loc`); for the Normal head the observation band also uses output 1 (the scale
/// before its softplus). A classification's band would be of its first logit: the views draw bands of regressions
/// only. Outputs missing from a too-short `outputs` count as NaN.
#[must_use]
pub fn band_from_outputs(outputs: &[f32], n_samples: usize, grid: &[f32], task: BnnTask) -> PredictiveBand {
    let n_grid = grid.len();
    let n_out = task.n_out();
    let at = |s: usize, i: usize, j: usize| outputs.get((s * n_grid + i) * n_out + j).copied().unwrap_or(f32::NAN);
    let normal = task == BnnTask::Regression(Head::Normal);
    let mut band = PredictiveBand {
        x: grid.to_vec(),
        mean: Vec::with_capacity(n_grid),
        function: QuantileBand::with_capacity(n_grid),
        observation: normal.then(|| QuantileBand::with_capacity(n_grid)),
        sampled: (0..n_samples.min(BAND_SAMPLED_FUNCTIONS))
            .map(|s| (0..n_grid).map(|i| at(s, i, 0)).collect())
            .collect(),
    };
    let mut locs = vec![0f32; n_samples];
    let mut scales = vec![0f64; if normal { n_samples } else { 0 }];
    for i in 0..n_grid {
        for (s, loc) in locs.iter_mut().enumerate() {
            *loc = at(s, i, 0);
        }
        for (s, scale) in scales.iter_mut().enumerate() {
            *scale = softplus(f64::from(at(s, i, 1))) + HEAD_SCALE_FLOOR;
        }
        let mean = locs.iter().map(|&v| f64::from(v)).sum::<f64>() / n_samples.max(1) as f64;
        band.mean.push(if n_samples == 0 { f32::NAN } else { mean as f32 });
        if let Some(observation) = &mut band.observation {
            observation.push(BAND_LEVELS.map(|q| mixture_quantile(&locs, &scales, q)));
        }
        locs.sort_by(f32::total_cmp);
        band.function.push(BAND_LEVELS.map(|q| quantile_sorted(&locs, q)));
    }
    band
}

/// The band of the network `params` for given weight samples `weights` `[n_samples, n_params]` (in
/// [`BnnParams::sample_weights`]'s layout, from any posterior) at the model's inputs `grid_inputs` `[n_grid]` (a
/// one-feature network's standardised input), reported at `grid_x` `[n_grid]` (the same points in the feature's
/// own units). Computed by the CPU loops ([`BnnParams::predict_with_weights`]).
#[must_use]
pub fn band_from_weights(
    params: &BnnParams,
    weights: &[f32],
    n_samples: usize,
    grid_inputs: &[f32],
    grid_x: &[f32],
) -> PredictiveBand {
    let outputs = params.predict_with_weights(weights, n_samples, grid_inputs, grid_x.len());
    band_from_outputs(&outputs, n_samples, grid_x, params.task)
}

/// The variational posterior's band: `n_samples` weight samples drawn from `params` with `seed`
/// ([`BnnParams::sample_weights`]), then [`band_from_weights`].
#[must_use]
pub fn vi_band(params: &BnnParams, grid_inputs: &[f32], grid_x: &[f32], n_samples: usize, seed: u64) -> PredictiveBand {
    let weights = params.sample_weights(n_samples, seed);
    band_from_weights(params, &weights, n_samples, grid_inputs, grid_x)
}

/// `n_points` evenly spaced points from `lo - margin` to `hi + margin`, `margin = BAND_MARGIN (hi - lo)` (half a
/// unit each side when `hi == lo`): the data's range and some way beyond it, where the band should widen.
#[must_use]
pub fn extended_grid(lo: f32, hi: f32, n_points: usize) -> Vec<f32> {
    let margin = if hi > lo { BAND_MARGIN * (hi - lo) } else { 0.5 };
    let (from, to) = (lo - margin, hi + margin);
    match n_points {
        0 => Vec::new(),
        1 => vec![0.5 * (from + to)],
        n => (0..n).map(|i| from + (to - from) * i as f32 / (n - 1) as f32).collect(),
    }
}

/// Mixed into the seed of a band's variational weight samples (the views' and the VI vs NUTS page's), so that they
/// are not the same draws as the training step's with the same number.
pub const BAND_SEED_SALT: u64 = 0xba4d_5eed;

/// The widest empty stretch between two neighbouring values of `xs` (any order), as `(lo, hi)`, when it is wider
/// than `min_share` of their whole range: the gap between two clusters of inputs, where a posterior should be
/// uncertain. `None` for fewer than three values or when every stretch is narrower.
#[must_use]
pub fn largest_gap(xs: &[f32], min_share: f32) -> Option<(f32, f32)> {
    let mut sorted: Vec<f32> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if sorted.len() < 3 {
        return None;
    }
    sorted.sort_by(f32::total_cmp);
    let range = sorted[sorted.len() - 1] - sorted[0];
    let (lo, hi) = sorted.windows(2).map(|w| (w[0], w[1])).max_by(|a, b| (a.1 - a.0).total_cmp(&(b.1 - b.0)))?;
    (range > 0.0 && hi - lo > min_share * range).then_some((lo, hi))
}

/// The `q`-quantile of the equal mixture of `N(locs[s], scales[s]²)`, by bisection on the mixture's CDF (to far
/// below `f32`'s precision). NaN for an empty mixture or a NaN parameter.
#[must_use]
pub fn mixture_quantile(locs: &[f32], scales: &[f64], q: f64) -> f64 {
    if locs.is_empty() || locs.len() != scales.len() {
        return f64::NAN;
    }
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (&m, &s) in locs.iter().zip(scales) {
        let m = f64::from(m);
        lo = lo.min(m - 10.0 * s);
        hi = hi.max(m + 10.0 * s);
    }
    if !(lo.is_finite() && hi.is_finite()) {
        return f64::NAN;
    }
    let n = locs.len() as f64;
    let cdf = |y: f64| locs.iter().zip(scales).map(|(&m, &s)| normal_cdf((y - f64::from(m)) / s)).sum::<f64>() / n;
    for _ in 0..40 {
        let mid = 0.5 * (lo + hi);
        if cdf(mid) < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The standard normal CDF `Φ(z) = erfc(-z / √2) / 2`.
#[must_use]
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// The complementary error function, by the Chebyshev fit of Numerical Recipes (`erfcc`, fractional error below
/// 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * (-z * z + poly).exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

fn softplus(x: f64) -> f64 {
    if x > 30.0 { x } else { x.exp().ln_1p() }
}
