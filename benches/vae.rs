//! Criterion benches of the VAE lab on the CPU: one training step of the MLP VAE (784-512-256-2, Bernoulli, MNIST
//! 5k, at the PyTorch reference's batch of 128) by the hand-written pass (the default) and by candle's autograd.
//! The epoch figures come from `bayes-explorer bench vae`; see BENCHMARKS.md.

use std::sync::Arc;

use bayes_explorer::Lab;
use bayes_explorer::bench::VAE_REFERENCE_BATCH;
use bayes_explorer::data::BuiltinFile;
use bayes_explorer::data::prepare::{default_spec_for_lab, prepare};
use bayes_explorer::models::vae::{VaeConfig, VaeTrainer};
use bayes_explorer::train::Trainer;
use criterion::{Criterion, criterion_group, criterion_main};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn vae(c: &mut Criterion) {
    let table = BuiltinFile::Mnist5k.load().expect("MNIST 5k");
    let data = Arc::new(prepare(&table, &default_spec_for_lab(Lab::Vae, &table)).expect("prepare"));
    // Many epochs, so the bench never reaches the end of training; the steps alone, as the PyTorch reference's (no
    // weight average, whose update is within the run-to-run noise of a step: BENCHMARKS.md).
    let config =
        VaeConfig { epochs: 1_000_000, batch_size: VAE_REFERENCE_BATCH, weight_average: None, ..VaeConfig::default() };
    let mut group = c.benchmark_group("vae");
    group.sample_size(30);
    for (pass, hand_written) in [("hand-written pass", true), ("candle", false)] {
        let name = format!("mlp step, batch {VAE_REFERENCE_BATCH}, {pass}");
        let mut trainer = VaeTrainer::new(config.clone(), &data).expect("vae");
        trainer.set_hand_written_pass(hand_written);
        group.bench_function(name, |b| b.iter(|| trainer.step().expect("step")));
    }
    group.finish();
}

criterion_group!(benches, vae);
criterion_main!(benches);
