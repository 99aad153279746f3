//! The app's own benchmarks (`bayes-explorer bench flow`, `bench bnn`, `bench vae`): wall-clock figures of the heavy work of
//! a lab, on the CPU (candle) and, where there is one, the GPU, printed as a table and as JSON. Reported, never
//! asserted. Used by `cli`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use candle_core::DType;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::Lab;
use crate::compute::{CandleBackend, ComputeBackend, GpuBackend, Rows, WeightsKey};
use crate::data::csv::NoProgress;
use crate::data::prepare::{Prepared, default_spec_for_lab, prepare};
use crate::data::{BuiltinFile, CsvOptions, LoadRequest, SynthKind, SynthSpec, Table};
use crate::models::bnn::{BnnConfig, BnnTrainer, Posterior, predictive_cpu};
use crate::models::flow::{FlowConfig, FlowKind, FlowNet, FlowTrainer, gaussian_points};
use crate::models::vae::{Likelihood, VaeConfig, VaeNetworks, VaeTrainer, vae_inputs};
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

impl BenchFigure {
    /// `name`, timed at `seconds` per run (the median of `runs`), doing `items` of `unit` per run.
    #[must_use]
    pub fn new(name: String, (seconds, runs): (f64, usize), (items, unit): (f64, &'static str)) -> Self {
        Self { name, seconds, runs, items, unit }
    }
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
    figures.push(BenchFigure::new(
        format!("RealNVP epoch ({} points, batch 256)", data.n_train()),
        (epoch, 3),
        (data.n_train() as f64, "points"),
    ));
    // What a checkpoint costs the training thread (issue 22): the copy of the whole training state it takes between
    // two steps (the writing is another thread's), set against one step.
    figures.push(BenchFigure::new(
        "RealNVP training step (batch 256)".to_owned(),
        (epoch / steps as f64, 3),
        (256.0, "points"),
    ));
    let copy = median_seconds(5, || trainer.train_state().map(|_| ()).map_err(|e| e.to_string()))?;
    figures.push(BenchFigure::new("checkpoint: copy of the training state".to_owned(), (copy, 5), (1.0, "copies")));
    let params = trainer.params().map_err(|e| e.to_string())?;
    let net = FlowNet::from_params(&params, DType::F32).map_err(|e| e.to_string())?;
    let side = if quick { 128 } else { 512 };
    let bounds = [-3.0, 3.0, -3.0, 3.0];
    let mut cpu_density = Vec::new();
    let grid = median_seconds(1, || {
        cpu_density = net.stage_density_grid(net.n_layers(), side, bounds).map_err(|e| e.to_string())?.0;
        Ok(())
    })?;
    figures.push(BenchFigure::new(
        format!("density {side} x {side} through all 6 layers"),
        (grid, 1),
        ((side * side) as f64, "points"),
    ));
    figures.extend(gpu_density_figure(&params, side, bounds, &cpu_density)?);
    let n = if quick { 16_384 } else { 262_144 };
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let points = gaussian_points(n, 2, &mut rng);
    let inverse = median_seconds(1, || {
        for chunk in points.chunks(65_536 * 2) {
            net.inverse_stages(chunk, net.n_layers()).map_err(|e| e.to_string())?;
        }
        Ok(())
    })?;
    figures.push(BenchFigure::new(
        format!("inverse of {n} points through all 6 layers"),
        (inverse, 1),
        (n as f64, "points"),
    ));
    Ok(figures)
}

/// The same density grid on the GPU kernels (`flow_view::gpu_stage_density_grid`, the view threads' path on a real
/// GPU), timed warm (the first call uploads the weights and builds the pipelines), with the largest difference
/// from the CPU's grid in the figure's name. None without an adapter; a software adapter (lavapipe) gets a 32 x 32
/// grid, as 512 x 512 would take it most of an hour.
fn gpu_density_figure(
    params: &crate::compute::params::FlowParams,
    side: usize,
    bounds: [f32; 4],
    cpu_density: &[f32],
) -> Result<Option<BenchFigure>, String> {
    let mut gpu = match GpuBackend::new() {
        Ok(gpu) => gpu,
        Err(e) => {
            log::warn!("bench flow: no GPU back end: {e}");
            return Ok(None);
        }
    };
    let software = gpu.context().adapter.is_software();
    let side = if software { 32 } else { side };
    let key = WeightsKey { id: 0xbe0c, version: 1 };
    let k = params.layers.len();
    let run = |gpu: &mut GpuBackend| {
        crate::train::flow_view::gpu_stage_density_grid(gpu, params, key, k, side, bounds).map_err(|e| e.to_string())
    };
    let (density, _) = run(&mut gpu)?;
    let seconds = median_seconds(3, || run(&mut gpu).map(|_| ()))?;
    let agreement = if density.len() == cpu_density.len() {
        let worst =
            density.iter().zip(cpu_density).map(|(g, c)| (g - c).abs() / c.abs().max(1e-3)).fold(0.0f32, f32::max);
        format!(", largest relative difference from the CPU's {worst:.1e}")
    } else {
        String::new()
    };
    Ok(Some(BenchFigure::new(
        format!(
            "density {side} x {side} through all 6 layers, GPU: {}{}{agreement}",
            gpu.name(),
            if software { " (software adapter)" } else { "" }
        ),
        (seconds, 3),
        ((side * side) as f64, "points"),
    )))
}

/// The white-wine file of the BNN benchmark, relative to the repository root (absent on CI machines).
pub const WHITE_WINE_PATH: &str = "../shared/datasets/winequality-white.csv";

/// Monte Carlo samples of the BNN prediction figures (the course's 100).
const BNN_PREDICTIVE_SAMPLES: usize = 100;

/// The white wine, looked for relative to the working directory and then to the crate's own folder; the
/// built-in red wine when it is in neither. Returns the table and a line naming what was used.
fn bnn_table() -> Result<(Table, String), String> {
    let candidates = [PathBuf::from(WHITE_WINE_PATH), Path::new(env!("CARGO_MANIFEST_DIR")).join(WHITE_WINE_PATH)];
    if let Some(path) = candidates.iter().find(|p| p.is_file()) {
        let request = LoadRequest::File { path: path.clone(), options: CsvOptions::default() };
        let table = request.run(&NoProgress).map_err(|e| e.to_string())?;
        let name = format!("white wine ({})", path.display());
        return Ok((table, name));
    }
    let table = BuiltinFile::WineRed.load().map_err(|e| e.to_string())?;
    let name =
        format!("built-in red wine ({WHITE_WINE_PATH} not found; figures are not comparable with the white wine's)");
    Ok((table, name))
}

/// Per-run seconds of a BNN epoch, split as the app runs it.
struct EpochTimes {
    /// The epoch's minibatch steps without the end-of-epoch evaluation: the steps that do not end the epoch,
    /// scaled to the epoch's step count.
    steps_only: f64,
    /// One minibatch step (a full batch).
    step: f64,
    /// The whole epoch: every step, the last one with its evaluation.
    whole: f64,
    /// The last step minus a full step: the evaluation (train and test predictions, history copy, shuffle).
    evaluation: f64,
}

/// Times `runs` epochs of `trainer` (which must be at the start of an epoch, with epochs to spare) and returns the
/// median of each figure. The last step of an epoch runs the evaluation, so the first `steps - 1` steps are timed
/// on their own.
fn time_bnn_epochs(trainer: &mut BnnTrainer, steps: usize, runs: usize) -> Result<EpochTimes, String> {
    let mut steps_only = Vec::with_capacity(runs);
    let mut step = Vec::with_capacity(runs);
    let mut whole = Vec::with_capacity(runs);
    let mut evaluation = Vec::with_capacity(runs);
    let full_steps = steps.saturating_sub(1).max(1);
    for _ in 0..runs {
        let started = Instant::now();
        for _ in 0..steps.saturating_sub(1) {
            trainer.step().map_err(|e| e.to_string())?;
        }
        let body = started.elapsed().as_secs_f64();
        let last_started = Instant::now();
        trainer.step().map_err(|e| e.to_string())?;
        let last = last_started.elapsed().as_secs_f64();
        let per_step = if steps > 1 { body / full_steps as f64 } else { last };
        steps_only.push(per_step * steps as f64);
        step.push(per_step);
        whole.push(body + last);
        evaluation.push((last - per_step).max(0.0));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok(EpochTimes {
        steps_only: median(steps_only),
        step: median(step),
        whole: median(whole),
        evaluation: median(evaluation),
    })
}

/// The BNN lab's figures (issue 4's "Speed"): the course's network ([8, 8] sigmoid, squared error, RMSprop,
/// batch 256) on the white wine, with the mean-field posterior: an epoch of training steps only, one step, a whole
/// epoch with its end-of-epoch evaluation as the app runs it, and the evaluation alone; 100-sample predictions over
/// the test rows on candle (raw samples, and with the summary the app draws) and on the GPU back end when an adapter
/// is found; the full-covariance epoch for comparison. Medians after a warm-up epoch. `quick` takes fewer runs.
/// Returns the figures and a line naming the data set.
pub fn bnn_figures(quick: bool) -> Result<(Vec<BenchFigure>, String), String> {
    let (table, data_name) = bnn_table()?;
    let spec = default_spec_for_lab(Lab::Bnn, &table);
    let data: Arc<Prepared> = Arc::new(prepare(&table, &spec).map_err(|e| e.to_string())?);
    let (n_train, n_test) = (data.n_train(), data.n_test());
    let data_name = format!("{data_name}: {n_train} training rows, {n_test} test rows, {} features", data.n_features());
    let epoch_runs = if quick { 3 } else { 15 };
    let predict_runs = if quick { 5 } else { 31 };
    let mut figures = Vec::new();
    let mut params = None;
    for posterior in [Posterior::MeanField, Posterior::FullCovariance] {
        // Many epochs, so the bench never reaches the end of training.
        let config = BnnConfig { posterior, epochs: 1_000_000, ..BnnConfig::default() };
        let batch = config.batch_size;
        let mut trainer = BnnTrainer::new(config, &data).map_err(|e| e.to_string())?;
        let steps = n_train.div_ceil(batch);
        // Warm up: one whole epoch allocates the optimiser's moments, the allocator's pools and the thread pool.
        for _ in 0..steps {
            trainer.step().map_err(|e| e.to_string())?;
        }
        let times = time_bnn_epochs(&mut trainer, steps, epoch_runs)?;
        let label = if posterior == Posterior::MeanField { "mean-field" } else { "full covariance" };
        let rows = n_train as f64;
        figures.push(BenchFigure::new(
            format!("{label}: epoch, training steps only ({steps} x batch {batch})"),
            (times.steps_only, epoch_runs),
            (rows, "rows"),
        ));
        if posterior == Posterior::MeanField {
            figures.push(BenchFigure::new(
                format!("{label}: one training step (batch {batch})"),
                (times.step, epoch_runs),
                (batch.min(n_train) as f64, "rows"),
            ));
        }
        figures.push(BenchFigure::new(
            format!("{label}: epoch with its evaluation (as the app runs it)"),
            (times.whole, epoch_runs),
            (rows, "rows"),
        ));
        if posterior == Posterior::MeanField {
            figures.push(BenchFigure::new(
                format!("{label}: end-of-epoch evaluation alone"),
                (times.evaluation, epoch_runs),
                ((n_train.min(2000) + n_test) as f64, "rows"),
            ));
            params = Some(trainer.params().map_err(|e| e.to_string())?);
        }
    }
    let params = params.ok_or("no mean-field parameters")?;
    let samples = BNN_PREDICTIVE_SAMPLES;
    let items = (samples * n_test) as f64;
    // (label, back end, runs): a software adapter takes about a second a call, so it gets three.
    let mut backends: Vec<(String, Box<dyn ComputeBackend>, usize)> =
        vec![("candle".to_owned(), Box::new(CandleBackend::new()), predict_runs)];
    match GpuBackend::new() {
        Ok(gpu) => {
            let software = gpu.context().adapter.is_software();
            let name = format!("{}{}", gpu.name(), if software { ", a software adapter" } else { "" });
            backends.push((name, Box::new(gpu), if software { 3 } else { predict_runs }));
        }
        Err(e) => log::warn!("bench bnn: no GPU back end: {e}"),
    }
    for (name, backend, runs) in &mut backends {
        let backend: &mut dyn ComputeBackend = backend.as_mut();
        let mut seed = 0;
        let mut predict = || {
            seed += 1;
            params
                .predict_samples(&mut *backend, &data.x_test, n_test, samples, seed)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        predict()?;
        let seconds = median_seconds(*runs, predict)?;
        figures.push(BenchFigure {
            name: format!("predictions {samples} x {n_test} test rows, {name}"),
            seconds,
            runs: *runs,
            items,
            unit: "row samples",
        });
    }
    // The path the app takes without a real GPU: plain loops over the samples, split over the cores.
    let mut seed = 0;
    let mut loops = || {
        seed += 1;
        std::hint::black_box(params.predict_samples_cpu(&data.x_test, n_test, samples, seed));
        Ok(())
    };
    loops()?;
    let seconds = median_seconds(predict_runs, loops)?;
    figures.push(BenchFigure {
        name: format!("predictions {samples} x {n_test} test rows, CPU loops (the app's path)"),
        seconds,
        runs: predict_runs,
        items,
        unit: "row samples",
    });
    // What the app does with them: the same predictions plus the summary (means, intervals, coverage, NLL).
    let mut seed = 0;
    let mut summarised = || {
        seed += 1;
        std::hint::black_box(predictive_cpu(&params, &data.x_test, &data.y_test, samples, seed));
        Ok(())
    };
    summarised()?;
    let seconds = median_seconds(predict_runs, summarised)?;
    figures.push(BenchFigure {
        name: format!("predictions {samples} x {n_test} + summary, CPU loops"),
        seconds,
        runs: predict_runs,
        items,
        unit: "row samples",
    });
    Ok((figures, data_name))
}

/// Times `steps` training steps (median of `runs` runs, after one warm-up step).
fn time_steps(trainer: &mut VaeTrainer, steps: usize, runs: usize) -> Result<f64, String> {
    trainer.step().map_err(|e| e.to_string())?;
    median_seconds(runs, || {
        for _ in 0..steps {
            trainer.step().map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// The training steps of an epoch of `steps` steps, without its evaluation: in each of `runs` epochs (median),
/// steps 2 to `steps - 1` are timed (or the first `timed` of them, when fewer) and scaled up to `steps`; the
/// first step (a warm-up) and the last (which also runs the end-of-epoch evaluation) are not.
fn time_epoch_steps(trainer: &mut VaeTrainer, steps: usize, timed: usize, runs: usize) -> Result<f64, String> {
    let timed = timed.min(steps.saturating_sub(2)).max(1);
    let mut times = Vec::with_capacity(runs);
    for run in 0..runs {
        let start_epoch = trainer.epochs_done();
        trainer.step().map_err(|e| e.to_string())?;
        let started = Instant::now();
        for _ in 0..timed {
            trainer.step().map_err(|e| e.to_string())?;
        }
        times.push(started.elapsed().as_secs_f64() * steps as f64 / timed as f64);
        // On to the next epoch's start (not after the last run: nothing is timed after it).
        while run + 1 < runs && trainer.epochs_done() == start_epoch {
            trainer.step().map_err(|e| e.to_string())?;
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// The batch of the VAE's PyTorch speed reference (`benches/reference/pytorch_reference.py`), at which `bench vae`
/// and the criterion bench time the VAE's steps (the lab's default batch is 32).
pub const VAE_REFERENCE_BATCH: usize = 128;

/// The VAE lab's figures on MNIST 5k: one MLP-VAE epoch (training steps only) on its 4,250 training images and
/// on 60,000 MNIST-shaped images (the 5k set tiled), both at [`VAE_REFERENCE_BATCH`], 100 steps of the
/// convolutional VAE at that batch (on the 60,000) and a course-setup epoch (batch 32, with its end-of-epoch
/// evaluation), and the views' work on the CPU: encoding all 5,000 images and decoding the 20 x 20 manifold, for
/// both architectures. The training-step figures leave out the step that ends an epoch, which also runs the
/// epoch's evaluation (the PyTorch references time training steps alone), and scale up to the epoch's steps.
/// `quick` times fewer steps and extrapolates.
pub fn vae_figures(quick: bool) -> Result<Vec<BenchFigure>, String> {
    let batch = VAE_REFERENCE_BATCH;
    let table = BuiltinFile::Mnist5k.load().map_err(|e| e.to_string())?;
    let spec = default_spec_for_lab(Lab::Vae, &table);
    let data = Arc::new(prepare(&table, &spec).map_err(|e| e.to_string())?);
    let n_train = data.n_train();
    let mut figures = Vec::new();
    let endless = |config: VaeConfig| VaeConfig { epochs: 1_000_000, ..config };

    // MLP VAE, one epoch of MNIST 5k.
    // At the PyTorch reference's batch (the lab's default is 32), and the steps alone, as the reference's (no weight
    // average, whose update is within the run-to-run noise of a step: BENCHMARKS.md).
    let mlp = endless(VaeConfig { batch_size: batch, weight_average: None, ..VaeConfig::default() });
    let mut trainer = VaeTrainer::new(mlp.clone(), &data).map_err(|e| e.to_string())?;
    let steps = n_train.div_ceil(mlp.batch_size);
    let seconds = time_epoch_steps(&mut trainer, steps, steps, if quick { 1 } else { 3 })?;
    figures.push(BenchFigure {
        name: format!("MLP VAE epoch, {n_train} images (batch {batch}, training steps)"),
        seconds,
        runs: if quick { 1 } else { 3 },
        items: n_train as f64,
        unit: "images",
    });
    let mlp_params = trainer.params().map_err(|e| e.to_string())?;

    // MLP VAE, 60,000 images: the training images tiled.
    let mut big = (*data).clone();
    let n_in = data.n_features();
    big.x_train = big.x_train.iter().copied().cycle().take(60_000 * n_in).collect();
    big.y_train = big.y_train.iter().copied().cycle().take(60_000).collect();
    let big = Arc::new(big);
    let mut trainer = VaeTrainer::new(mlp, &big).map_err(|e| e.to_string())?;
    let full = 60_000usize.div_ceil(batch);
    let seconds = time_epoch_steps(&mut trainer, full, if quick { 60 } else { full }, 1)?;
    figures.push(BenchFigure {
        name: format!("MLP VAE epoch, 60,000 MNIST-shaped images (batch {batch}, training steps)"),
        seconds,
        runs: 1,
        items: 60_000.0,
        unit: "images",
    });

    // Convolutional VAE: 100 steps at the reference's batch, then a course-setup epoch; the steps alone, as the MLP's.
    // On the 60,000 rows, so that the 100 steps stay inside one epoch and time no end-of-epoch evaluation.
    let conv = endless(VaeConfig { batch_size: batch, weight_average: None, ..VaeConfig::course_conv() });
    let mut trainer = VaeTrainer::new(conv, &big).map_err(|e| e.to_string())?;
    let timed = if quick { 10 } else { 100 };
    let seconds = time_steps(&mut trainer, timed, 1)? * 100.0 / timed as f64;
    figures.push(BenchFigure {
        name: format!("conv VAE, 100 steps at batch {batch}"),
        seconds,
        runs: 1,
        items: (100 * batch) as f64,
        unit: "images",
    });
    // The course's own setup: its last step's weights, no moving average.
    let course = VaeConfig { epochs: 2, weight_average: None, ..VaeConfig::course_conv() };
    let mut trainer = VaeTrainer::new(course.clone(), &data).map_err(|e| e.to_string())?;
    let steps = n_train.div_ceil(course.batch_size);
    // The first epoch warms up; the second, with its evaluation, is timed.
    for _ in 0..steps {
        trainer.step().map_err(|e| e.to_string())?;
    }
    let started = Instant::now();
    for _ in 0..steps {
        trainer.step().map_err(|e| e.to_string())?;
    }
    figures.push(BenchFigure::new(
        format!("conv VAE epoch, course setup ({steps} x batch 32, with its evaluation)"),
        (started.elapsed().as_secs_f64(), 1),
        (n_train as f64, "images"),
    ));
    let conv_params = trainer.params().map_err(|e| e.to_string())?;

    // The views' work: every image's q(z | x), and the 20 x 20 manifold.
    let all: Vec<f32> = vae_inputs(&data, Likelihood::Bernoulli)
        .0
        .into_iter()
        .chain(vae_inputs(&data, Likelihood::Bernoulli).1)
        .collect();
    let n_all = all.len() / n_in;
    let grid: Vec<f32> = (0..400).flat_map(|k| [(k % 20) as f32 / 5.0 - 2.0, (k / 20) as f32 / 5.0 - 2.0]).collect();
    let mut cpu = CandleBackend::new();
    let runs = if quick { 1 } else { 5 };
    for (label, params) in [("MLP", &mlp_params), ("conv", &conv_params)] {
        // The view thread's own CPU path.
        let encode = median_seconds(runs, || {
            let out = crate::train::vae_view::encode(&mut cpu, params, &all, n_all);
            out.map(std::hint::black_box).map(|_| ()).map_err(|e| e.to_string())
        })?;
        figures.push(BenchFigure {
            name: format!("{label} VAE: encode all {n_all} images, CPU"),
            seconds: encode,
            runs,
            items: n_all as f64,
            unit: "images",
        });
        let decode = median_seconds(runs, || {
            let out = crate::train::vae_view::decode(&mut cpu, params, &grid, 400);
            out.map(std::hint::black_box).map(|_| ()).map_err(|e| e.to_string())
        })?;
        figures.push(BenchFigure {
            name: format!("{label} VAE: decode the 20 x 20 manifold, CPU"),
            seconds: decode,
            runs,
            items: 400.0,
            unit: "images",
        });
    }
    // The MLP's view work on the GPU kernels, where an adapter exists (the convolutional networks run on candle).
    match GpuBackend::new() {
        Ok(mut gpu) => {
            let software = gpu.context().adapter.is_software();
            let name = format!("{}{}", gpu.name(), if software { ", a software adapter" } else { "" });
            if let VaeNetworks::Mlp { encoder, decoder } = &mlp_params.networks {
                let key = |id| WeightsKey::new(id, 1);
                gpu.mlp_forward(Rows::new(encoder, key(1), &all, n_all)).map_err(|e| e.to_string())?;
                gpu.mlp_forward(Rows::new(decoder, key(2), &grid, 400)).map_err(|e| e.to_string())?;
                let encode = median_seconds(runs, || {
                    gpu.mlp_forward(Rows::new(encoder, key(1), &all, n_all)).map(|_| ()).map_err(|e| e.to_string())
                })?;
                figures.push(BenchFigure {
                    name: format!("MLP VAE: encode all {n_all} images, {name}"),
                    seconds: encode,
                    runs,
                    items: n_all as f64,
                    unit: "images",
                });
                let decode = median_seconds(runs, || {
                    gpu.mlp_forward(Rows::new(decoder, key(2), &grid, 400)).map(|_| ()).map_err(|e| e.to_string())
                })?;
                figures.push(BenchFigure {
                    name: format!("MLP VAE: decode the 20 x 20 manifold, {name}"),
                    seconds: decode,
                    runs,
                    items: 400.0,
                    unit: "images",
                });
            }
        }
        Err(e) => log::warn!("bench vae: no GPU back end: {e}"),
    }
    Ok(figures)
}
