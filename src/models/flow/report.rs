//! A trained flow's final figures ([`flow_report`]: exact train and held-out NLL, the density's mass on a grid,
//! the round-trip error, energy distances between generated and held-out points) and the sampling and distance
//! functions they use.

use candle_core::DType;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::Distribution;
use serde::{Deserialize, Serialize};

use crate::compute::TrainError;
use crate::compute::params::FlowParams;
use crate::data::prepare::Prepared;
use crate::models::flow::FlowNet;

/// Final figures of a trained flow (the CLI's JSON line and the acceptance checks).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowReport {
    /// Mean negative log-likelihood of the training points, nats per point.
    pub train_nll: f64,
    /// Mean negative log-likelihood of the held-out points, nats per point.
    pub heldout_nll: f64,
    /// Σ density x cell area over a [`GRID_MASS_RESOLUTION`]² grid covering the data with a margin (≈ 1 for
    /// a proper density).
    pub grid_mass: f64,
    /// Bounds `[x0, x1, y0, y1]` of that grid.
    pub grid_bounds: [f32; 4],
    /// Largest |inverse(forward(z)) − z| over 10,000 Gaussian points, over every layer and the whole flow.
    pub roundtrip_max_err: f64,
    /// Energy distance between samples from the flow and the held-out points.
    pub energy_distance: f64,
    /// Energy distance between the training and held-out points (the same statistic for two samples of the data).
    pub energy_distance_train_vs_heldout: f64,
}

impl FlowReport {
    /// The figures by the names `train flow --json` prints them under, in that order (the grid's bounds aside).
    #[must_use]
    pub fn metrics(&self) -> Vec<(String, f64)> {
        [
            ("train_nll", self.train_nll),
            ("heldout_nll", self.heldout_nll),
            ("grid_mass", self.grid_mass),
            ("roundtrip_max_err", self.roundtrip_max_err),
            ("energy_distance", self.energy_distance),
            ("energy_distance_train_vs_heldout", self.energy_distance_train_vs_heldout),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }
}

/// The final figures of a flow on its data: exact train and held-out NLL, the mass of the density on a
/// [`GRID_MASS_RESOLUTION`]² grid covering the data, the round-trip error on 10,000 Gaussian points and the
/// energy distances.
pub fn flow_report(params: &FlowParams, data: &Prepared, seed: u64) -> Result<FlowReport, TrainError> {
    let net = FlowNet::from_params(params, DType::F32)?;
    let mean_nll = |x: &[f32]| -> candle_core::Result<f64> {
        if x.is_empty() {
            return Ok(f64::NAN);
        }
        let mut sum = 0.0;
        for chunk in x.chunks(8192) {
            sum -= net.log_density(chunk)?.iter().map(|&v| f64::from(v)).sum::<f64>();
        }
        Ok(sum / (x.len() / 2) as f64)
    };
    let train_nll = mean_nll(&data.x_train)?;
    let heldout_nll = mean_nll(&data.x_test)?;
    // A grid over the data's range with a margin of 1.5 (standardised units) on every side.
    let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
    for p in data.x_train.chunks_exact(2).chain(data.x_test.chunks_exact(2)) {
        for c in 0..2 {
            lo[c] = lo[c].min(p[c]);
            hi[c] = hi[c].max(p[c]);
        }
    }
    let bounds = [lo[0] - 1.5, hi[0] + 1.5, lo[1] - 1.5, hi[1] + 1.5];
    let resolution = GRID_MASS_RESOLUTION;
    let cell = f64::from((bounds[1] - bounds[0]) * (bounds[3] - bounds[2])) / (resolution * resolution) as f64;
    let (density, _) = net.stage_density_grid(net.n_layers(), resolution, bounds)?;
    let grid_mass = density.iter().map(|&d| f64::from(d)).sum::<f64>() * cell;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let z = gaussian_points(10_000, 2, &mut rng);
    let roundtrip_max_err = roundtrip_error(&net, &z)?;
    let samples = net.forward_stages(&gaussian_points(data.n_test().max(1), 2, &mut rng))?;
    let generated = samples.points.last().cloned().unwrap_or_default();
    let energy_distance = energy_distance_capped(&generated, &data.x_test, 2);
    let energy_distance_train_vs_heldout = energy_distance_capped(&data.x_train, &data.x_test, 2);
    Ok(FlowReport {
        train_nll,
        heldout_nll,
        grid_mass,
        grid_bounds: bounds,
        roundtrip_max_err,
        energy_distance,
        energy_distance_train_vs_heldout,
    })
}

/// Cells per side of the grid [`flow_report`] integrates the density over.
pub const GRID_MASS_RESOLUTION: usize = 400;

/// Largest |inverse(forward(z)) − z| over the rows of `z`, checked layer by layer and for the whole flow.
pub fn roundtrip_error(net: &FlowNet, z: &[f32]) -> candle_core::Result<f64> {
    let forward = net.forward_stages(z)?;
    let mut worst = 0.0f64;
    let max_diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| f64::from((x - y).abs())).fold(0.0, f64::max);
    for k in 1..=net.n_layers() {
        // One layer back from stage k must land on stage k-1.
        let back = net.inverse_stages(&forward.points[k], k)?;
        worst = worst.max(max_diff(&back.points[k - 1], &forward.points[k - 1]));
        // And the whole way back must land on z.
        worst = worst.max(max_diff(&back.points[0], z));
    }
    Ok(worst)
}

/// `n` points from N(0, I_dim), row-major.
pub fn gaussian_points(n: usize, dim: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let normal = rand_distr::StandardNormal;
    (0..n * dim).map(|_| Distribution::<f32>::sample(&normal, rng)).collect()
}

/// Energy distance (Székely and Rizzo 2013) between two samples of `dim`-vectors:
/// 2 E|X − Y| − E|X − X'| − E|Y − Y'|, zero exactly when the distributions agree.
#[must_use]
pub fn energy_distance(a: &[f32], b: &[f32], dim: usize) -> f64 {
    let mean_dist = |p: &[f32], q: &[f32]| {
        let (np, nq) = (p.len() / dim, q.len() / dim);
        let mut sum = 0.0f64;
        for i in 0..np {
            for j in 0..nq {
                let d2: f64 = (0..dim).map(|c| f64::from(p[i * dim + c] - q[j * dim + c]).powi(2)).sum();
                sum += d2.sqrt();
            }
        }
        sum / (np * nq).max(1) as f64
    };
    2.0 * mean_dist(a, b) - mean_dist(a, a) - mean_dist(b, b)
}

/// [`energy_distance`] on at most the first 2,000 rows of each sample (it is quadratic in the sizes).
#[must_use]
pub fn energy_distance_capped(a: &[f32], b: &[f32], dim: usize) -> f64 {
    let cap = 2000 * dim;
    energy_distance(&a[..a.len().min(cap)], &b[..b.len().min(cap)], dim)
}
