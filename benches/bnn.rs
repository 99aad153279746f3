//! Criterion benches of the BNN lab on the CPU (candle): one mean-field training step of the course's network
//! ([8, 8] sigmoid, squared error, RMSprop, batch 256) on the white wine, and 100-sample predictions over its test
//! rows. Falls back to the built-in red wine when `../shared/datasets/winequality-white.csv` is absent. The epoch
//! figures (with and without the end-of-epoch evaluation) come from `bayes-explorer bench bnn`; see BENCHMARKS.md.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bayes_explorer::Lab;
use bayes_explorer::bench::WHITE_WINE_PATH;
use bayes_explorer::compute::CandleBackend;
use bayes_explorer::data::csv::NoProgress;
use bayes_explorer::data::prepare::{default_spec_for_lab, prepare};
use bayes_explorer::data::{BuiltinFile, CsvOptions, LoadRequest};
use bayes_explorer::models::bnn::{BnnConfig, BnnTrainer, Posterior};
use bayes_explorer::train::Trainer;
use criterion::{Criterion, criterion_group, criterion_main};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn bnn(c: &mut Criterion) {
    // `cargo bench` runs in the crate's folder, so the relative path is the repository's.
    let path = PathBuf::from(WHITE_WINE_PATH);
    let table = if path.is_file() {
        LoadRequest::File { path, options: CsvOptions::default() }.run(&NoProgress).expect("white wine")
    } else {
        eprintln!("{WHITE_WINE_PATH} not found: benchmarking on the built-in red wine");
        BuiltinFile::WineRed.load().expect("red wine")
    };
    let data = Arc::new(prepare(&table, &default_spec_for_lab(Lab::Bnn, &table)).expect("wine"));
    // Many epochs, so the bench never reaches the end of training.
    let config = BnnConfig { posterior: Posterior::MeanField, epochs: 1_000_000, ..BnnConfig::default() };
    let steps_per_epoch = data.n_train().div_ceil(config.batch_size);
    let mut trainer = BnnTrainer::new(config, &data).expect("bnn");
    let mut group = c.benchmark_group("bnn");
    group.sample_size(20);
    // The last step of an epoch also runs the end-of-epoch evaluation (and has a short batch): it is run but not
    // timed, so the figure is one full training step; `bench bnn` times whole epochs.
    let mut steps_done = 0_usize;
    group.bench_function("mean-field step, batch 256", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                if steps_done % steps_per_epoch == steps_per_epoch - 1 {
                    trainer.step().expect("step");
                    steps_done += 1;
                }
                let started = Instant::now();
                trainer.step().expect("step");
                timed += started.elapsed();
                steps_done += 1;
            }
            timed
        });
    });
    let params = trainer.params().expect("params");
    let mut cpu = CandleBackend::new();
    let n_test = data.n_test();
    group.bench_function(format!("predictions 100 x {n_test}, candle"), |b| {
        b.iter(|| params.predict_samples(&mut cpu, &data.x_test, n_test, 100, 7).expect("predictions"));
    });
    group.bench_function(format!("predictions 100 x {n_test}, CPU loops (the app's path)"), |b| {
        b.iter(|| params.predict_samples_cpu(&data.x_test, n_test, 100, 7));
    });
    group.finish();
}

criterion_group!(benches, bnn);
criterion_main!(benches);
