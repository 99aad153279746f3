//! Which back end a job should run on. The estimate is `time = latency + flops / rate` for each side
//! (a GPU round trip costs a submit, a fence and a readback however small the job); the smaller wins.

use serde::{Deserialize, Serialize};

use crate::compute::AdapterSummary;

/// Where to run a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BackendChoice {
    /// [`crate::compute::CandleBackend`].
    Cpu,
    /// [`crate::compute::GpuBackend`].
    Gpu,
}

/// Measured or assumed speeds of the two sides.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// GPU matmul rate, GFLOP/s.
    pub gpu_gflops: f64,
    /// Fixed cost of one GPU request (upload, submit, wait, readback), seconds.
    pub gpu_latency_secs: f64,
    /// candle matmul rate, GFLOP/s.
    pub cpu_gflops: f64,
    /// Fixed cost of one candle call, seconds.
    pub cpu_latency_secs: f64,
}

impl Throughput {
    /// Conservative assumptions for an adapter that was not measured: a real GPU at 2 TFLOP/s behind a
    /// 200 us round trip, a software one (lavapipe) at 3 GFLOP/s behind 1 ms (the figures of BENCHMARKS.md),
    /// and candle at 50 GFLOP/s behind 5 us.
    #[must_use]
    pub fn assumed(adapter: &AdapterSummary) -> Self {
        let (gpu_gflops, gpu_latency_secs) = if adapter.is_software() { (3.0, 1e-3) } else { (2000.0, 2e-4) };
        Self { gpu_gflops, gpu_latency_secs, cpu_gflops: 50.0, cpu_latency_secs: 5e-6 }
    }
}

/// Picks the back end for a job of `flops` floating-point operations: the CPU when there is no adapter,
/// otherwise whichever side `throughput` (measured, or [`Throughput::assumed`] when `None`) predicts to
/// finish first. Small work (a 256 x 11 by 11 x 8 product is 45 kFLOP) never pays for a GPU round trip, and
/// on a software adapter the assumed figures always favour candle.
#[must_use]
pub fn choose_backend(adapter: Option<&AdapterSummary>, flops: f64, throughput: Option<Throughput>) -> BackendChoice {
    let Some(adapter) = adapter else {
        return BackendChoice::Cpu;
    };
    let t = throughput.unwrap_or_else(|| Throughput::assumed(adapter));
    let gpu = t.gpu_latency_secs + flops / (t.gpu_gflops.max(1e-9) * 1e9);
    let cpu = t.cpu_latency_secs + flops / (t.cpu_gflops.max(1e-9) * 1e9);
    if gpu < cpu { BackendChoice::Gpu } else { BackendChoice::Cpu }
}
