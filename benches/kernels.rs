//! Criterion benchmarks of the matmul on candle and on the GPU path (when an adapter exists). Reported, not
//! asserted; `bayes-explorer bench kernels` prints the same figures as a table. Run with
//! `cargo bench --bench kernels`.

use std::hint::black_box;

use bayes_explorer::compute::{CandleBackend, ComputeBackend, GpuBackend, MatmulShape};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn matmul(c: &mut Criterion) {
    let mut cpu = CandleBackend::new();
    let mut gpu = GpuBackend::new().ok();
    let mut group = c.benchmark_group("matmul");
    group.sample_size(10);
    for shape in [MatmulShape::new(256, 11, 8), MatmulShape::new(256, 256, 256), MatmulShape::new(512, 512, 512)] {
        let a: Vec<f32> = (0..shape.m * shape.k).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect();
        let b: Vec<f32> = (0..shape.k * shape.n).map(|i| ((i % 13) as f32 - 6.0) / 6.0).collect();
        let name = format!("{}x{}x{}", shape.m, shape.k, shape.n);
        group.throughput(Throughput::Elements(shape.flops() as u64));
        group.bench_function(format!("candle/{name}"), |bench| bench.iter(|| black_box(cpu.matmul(&a, &b, shape))));
        if let Some(gpu) = gpu.as_mut() {
            group.bench_function(format!("gpu/{name}"), |bench| bench.iter(|| black_box(gpu.matmul(&a, &b, shape))));
        }
    }
    group.finish();
}

criterion_group!(benches, matmul);
criterion_main!(benches);
