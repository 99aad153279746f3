//! Criterion benches of the VAE lab on the CPU: one training step of the MLP VAE (784-512-256-2, Bernoulli, batch
//! 128, MNIST 5k) by the hand-written pass (the default) and by candle's autograd. The epoch figures come from
//! `bayes-explorer bench vae`; see BENCHMARKS.md.

use std::sync::Arc;

use bayes_explorer::Lab;
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
    // Many epochs, so the bench never reaches the end of training.
    let config = VaeConfig { epochs: 1_000_000, batch_size: 128, ..VaeConfig::default() };
    let mut group = c.benchmark_group("vae");
    group.sample_size(30);
    for (name, hand_written) in
        [("mlp step, batch 128, hand-written pass", true), ("mlp step, batch 128, candle", false)]
    {
        let mut trainer = VaeTrainer::new(config.clone(), &data).expect("vae");
        trainer.set_hand_written_pass(hand_written);
        group.bench_function(name, |b| b.iter(|| trainer.step().expect("step")));
    }
    group.finish();
}

criterion_group!(benches, vae);
criterion_main!(benches);
