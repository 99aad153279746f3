//! Criterion benches of the flow lab on the CPU (candle): one RealNVP training step (Keras settings, batch
//! 256) and the data-space density on a 64 x 64 grid. The full-size figures (512 x 512 grid, 262,144 points)
//! come from `bayes-explorer bench flow`, which times them once each; see BENCHMARKS.md.

use std::sync::Arc;

use bayes_explorer::Lab;
use bayes_explorer::data::prepare::{default_spec_for_lab, prepare};
use bayes_explorer::data::{SynthKind, SynthSpec};
use bayes_explorer::models::flow::{FlowConfig, FlowNet, FlowTrainer};
use bayes_explorer::train::Trainer;
use criterion::{Criterion, criterion_group, criterion_main};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn flow(c: &mut Criterion) {
    let table = SynthSpec::default_for(SynthKind::Moons).generate();
    let data = Arc::new(prepare(&table, &default_spec_for_lab(Lab::Flow, &table)).expect("moons"));
    // Many epochs, so the bench never reaches the end of training.
    let config = FlowConfig { epochs: 1_000_000, ..FlowConfig::default() };
    let mut trainer = FlowTrainer::new(config, &data).expect("flow");
    let mut group = c.benchmark_group("flow");
    group.sample_size(20);
    group.bench_function("realnvp step, batch 256", |b| b.iter(|| trainer.step().expect("step")));
    let net = FlowNet::from_params(&trainer.params().expect("params"), candle_core::DType::F32).expect("net");
    group.bench_function("density 64 x 64, 6 layers", |b| {
        b.iter(|| net.stage_density_grid(6, 64, [-3.0, 3.0, -3.0, 3.0]).expect("grid"));
    });
    group.finish();
}

criterion_group!(benches, flow);
criterion_main!(benches);
