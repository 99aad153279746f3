//! The `bench kernels` command's measurements: GFLOP/s of `C = A · B` at square sizes and at the models'
//! real shapes, on the GPU path (upload, kernels, readback: what a caller waits for) and on candle, in one
//! run. Used by `cli` and reported in BENCHMARKS.md; nothing here asserts a speed.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::compute::{CandleBackend, ComputeBackend, GpuBackend, MatmulShape};

/// One shape to measure, with a name.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct BenchShape {
    /// Label in the table ("square 512", "BNN layer").
    pub label: &'static str,
    /// The product.
    pub shape: MatmulShape,
}

/// The shapes of `bench kernels`: 256..2048 square, then the BNN's first layer (256 x 11 · 11 x 8), the
/// flow's first coupling layer over a 512 x 512 grid (262144 x 2 · 2 x 256) and its hidden layer
/// (262144 x 256 · 256 x 256).
#[must_use]
pub fn default_shapes() -> Vec<BenchShape> {
    let mut shapes: Vec<BenchShape> =
        [("square 256", 256), ("square 512", 512), ("square 1024", 1024), ("square 2048", 2048)]
            .into_iter()
            .map(|(label, n)| BenchShape { label, shape: MatmulShape::new(n, n, n) })
            .collect();
    shapes.push(BenchShape { label: "BNN layer", shape: MatmulShape::new(256, 11, 8) });
    shapes.push(BenchShape { label: "flow grid, first layer", shape: MatmulShape::new(262_144, 2, 256) });
    shapes.push(BenchShape { label: "flow grid, hidden layer", shape: MatmulShape::new(262_144, 256, 256) });
    shapes
}

/// One measurement.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    /// The shape's label.
    pub label: String,
    /// `m`, `k`, `n`.
    pub m: usize,
    /// Inner dimension.
    pub k: usize,
    /// Columns.
    pub n: usize,
    /// "gpu" or "candle".
    pub path: String,
    /// Mean seconds per call after one warm-up call.
    pub secs_per_call: f64,
    /// 2 m n k / secs_per_call / 1e9.
    pub gflops: f64,
    /// Timed calls.
    pub calls: usize,
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// The GPU back end's name, or why there is none.
    pub gpu: String,
    /// The candle back end's name.
    pub cpu: String,
    /// Every measurement.
    pub rows: Vec<BenchRow>,
}

impl BenchReport {
    /// A plain-text table, one line per shape and path.
    #[must_use]
    pub fn table(&self) -> String {
        let mut out = format!("GPU path: {}\nCPU path: {}\n", self.gpu, self.cpu);
        let _ = writeln!(
            out,
            "{:<26} {:>22} {:>7} {:>12} {:>10} {:>6}",
            "shape", "m x k · k x n", "path", "ms/call", "GFLOP/s", "calls"
        );
        for r in &self.rows {
            let dims = format!("{}x{}·{}x{}", r.m, r.k, r.k, r.n);
            let _ = writeln!(
                out,
                "{:<26} {:>22} {:>7} {:>12.3} {:>10.2} {:>6}",
                r.label,
                dims,
                r.path,
                r.secs_per_call * 1e3,
                r.gflops,
                r.calls
            );
        }
        out
    }
}

/// Times `call`: one warm-up, then repeats until `budget` has passed (at least once, at most 100 times).
/// A warm-up call that alone takes longer than `budget` is the measurement (slow paths are not run twice).
fn time_calls(budget: Duration, mut call: impl FnMut() -> bool) -> Option<(f64, usize)> {
    let warm_up = Instant::now();
    if !call() {
        return None;
    }
    if warm_up.elapsed() > budget {
        return Some((warm_up.elapsed().as_secs_f64(), 1));
    }
    let start = Instant::now();
    let mut calls = 0;
    while calls == 0 || (start.elapsed() < budget && calls < 100) {
        if !call() {
            return None;
        }
        calls += 1;
    }
    Some((start.elapsed().as_secs_f64() / calls as f64, calls))
}

/// Measures every shape on both paths, spending about `budget` per shape and path (the big shapes on a
/// software adapter take longer: one warm-up and one timed call at least).
#[must_use]
pub fn run(shapes: &[BenchShape], budget: Duration) -> BenchReport {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut cpu = CandleBackend::new();
    let mut gpu = match GpuBackend::new() {
        Ok(g) => Some(g),
        Err(e) => {
            log::warn!("bench: no GPU path: {e}");
            None
        }
    };
    let gpu_name = gpu.as_ref().map_or_else(|| "not measured: no GPU adapter".to_owned(), ComputeBackend::name);
    let mut rows = Vec::new();
    for s in shapes {
        let MatmulShape { m, k, n, .. } = s.shape;
        let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut paths: Vec<(&str, &mut dyn ComputeBackend)> = vec![("candle", &mut cpu)];
        if let Some(g) = gpu.as_mut() {
            paths.push(("gpu", g));
        }
        for (path, backend) in paths {
            let timed = time_calls(budget, || match backend.matmul(&a, &b, s.shape) {
                Ok(_) => true,
                Err(e) => {
                    log::warn!("bench {} on {path}: {e}", s.label);
                    false
                }
            });
            if let Some((secs, calls)) = timed {
                log::info!("bench {} on {path}: {:.3} ms", s.label, secs * 1e3);
                rows.push(BenchRow {
                    label: s.label.to_owned(),
                    m,
                    k,
                    n,
                    path: path.to_owned(),
                    secs_per_call: secs,
                    gflops: s.shape.flops() / secs / 1e9,
                    calls,
                });
            }
        }
    }
    BenchReport { gpu: gpu_name, cpu: cpu.name(), rows }
}
