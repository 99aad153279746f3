//! The app's own benchmarks (`bayes-explorer bench flow`): wall-clock figures of the heavy work of a lab, on
//! the CPU (candle), printed as a table and as JSON. Reported, never asserted. Used by `cli`.

use std::sync::Arc;
use std::time::Instant;

use candle_core::DType;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::Lab;
use crate::data::prepare::{default_spec_for_lab, prepare};
use crate::data::{SynthKind, SynthSpec};
use crate::models::flow::{FlowConfig, FlowKind, FlowNet, FlowTrainer, gaussian_points};
use crate::train::Trainer;

/// One measured figure.
#[derive(Clone, Debug, Serialize)]
pub struct BenchFigure {
    /// What was timed.
    pub name: String,
    /// Seconds per run (the median of `runs`).
    pub seconds: f64,
    /// How many runs the median is over.
    pub runs: usize,
    /// Work done per run, for a rate (points, steps).
    pub items: f64,
    /// Unit of `items`.
    pub unit: &'static str,
}

fn median_seconds(runs: usize, mut f: impl FnMut() -> Result<(), String>) -> Result<f64, String> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        f()?;
        times.push(started.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// The flow lab's figures with the Keras RealNVP (6 layers, 4 x 256): one epoch on 2,400 moons points at
/// batch 256, the 512 x 512 data-space density through all 6 layers, and 262,144 points pulled back through
/// the inverse. `quick` uses smaller grids (for a smoke run).
pub fn flow_figures(quick: bool) -> Result<Vec<BenchFigure>, String> {
    let table = SynthSpec::default_for(SynthKind::Moons).generate();
    let spec = default_spec_for_lab(Lab::Flow, &table);
    let data = Arc::new(prepare(&table, &spec).map_err(|e| e.to_string())?);
    let config = FlowConfig::default_for(FlowKind::RealNvp);
    let mut trainer = FlowTrainer::new(config, &data).map_err(|e| e.to_string())?;
    let steps = data.n_train().div_ceil(256);
    let mut figures = Vec::new();
    // Warm up: the first steps allocate the optimiser's moments and the allocator's pools.
    trainer.step().map_err(|e| e.to_string())?;
    let epoch = median_seconds(3, || {
        for _ in 0..steps {
            trainer.step().map_err(|e| e.to_string())?;
        }
        Ok(())
    })?;
    figures.push(BenchFigure {
        name: format!("RealNVP epoch ({} points, batch 256)", data.n_train()),
        seconds: epoch,
        runs: 3,
        items: data.n_train() as f64,
        unit: "points",
    });
    let params = trainer.params().map_err(|e| e.to_string())?;
    let net = FlowNet::from_params(&params, DType::F32).map_err(|e| e.to_string())?;
    let side = if quick { 128 } else { 512 };
    let grid = median_seconds(1, || {
        net.stage_density_grid(net.n_layers(), side, [-3.0, 3.0, -3.0, 3.0]).map(|_| ()).map_err(|e| e.to_string())
    })?;
    figures.push(BenchFigure {
        name: format!("density {side} x {side} through all 6 layers"),
        seconds: grid,
        runs: 1,
        items: (side * side) as f64,
        unit: "points",
    });
    let n = if quick { 16_384 } else { 262_144 };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let points = gaussian_points(n, 2, &mut rng);
    let inverse = median_seconds(1, || {
        for chunk in points.chunks(65_536 * 2) {
            net.inverse_stages(chunk, net.n_layers()).map_err(|e| e.to_string())?;
        }
        Ok(())
    })?;
    figures.push(BenchFigure {
        name: format!("inverse of {n} points through all 6 layers"),
        seconds: inverse,
        runs: 1,
        items: n as f64,
        unit: "points",
    });
    Ok(figures)
}
