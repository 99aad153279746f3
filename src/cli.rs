//! The headless command line: `data inspect`, `train`, `info`. Used by `main`; uses `data`, `train`,
//! `models` and `gpu`, never `ui`.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::Lab;
use crate::compute::Activation;
use crate::compute::cpu::optim::OptimizerKind;
use crate::data::prepare::{DataSpec, Prepared, Role, check_lab, image_side, prepare, split_counts};
use crate::data::table::{delimiter_name, grouped};
use crate::data::{BuiltinFile, CsvOptions, HeaderMode, LoadRequest, MissingPolicy, SynthKind, SynthSpec, Table};
use crate::models::bnn::{BnnConfig, BnnTrainer, Head, KlEstimate, Posterior, default_epochs, train_subset};
use crate::models::flow::{FlowConfig, FlowInit, FlowKind, FlowTrainer, flow_report};
use crate::models::trainer::LrSchedule;
use crate::models::vae::{Likelihood, VaeConfig, VaeTrainer, inputs_are_images, squared_error_for_a_table, vae_inputs};
use crate::train::export::{ExportOptions, export_run, export_split, orders_table};
use crate::train::runfile::{
    AnyRun, CheckpointWriter, KeptModel, RunConfig, RunFileError, first_difference, load_dataset,
};
use crate::train::{Checkpoint, Command, EpochRecord, ModelView, Trainer, TrainerFactory, Worker, WorkerEvent};
use crate::ui::animation_file::AnimationFormat;
use crate::ui::history::ModelHistory;

mod nuts;

/// Exit code for bad input (a file that cannot be read, an unknown column).
pub const EXIT_BAD_INPUT: u8 = 2;

/// bayes-explorer: train a BNN, a VAE and a normalizing flow and watch what they learn.
/// With no command it opens the window.
#[derive(Debug, Parser)]
#[command(name = "bayes-explorer", version, about)]
pub struct Cli {
    /// What to do; none opens the app.
    #[command(subcommand)]
    pub command: Option<CliCommand>,
    /// What draws the window: auto takes wgpu on a GPU and OpenGL where the only adapter is a software
    /// rasteriser (it draws several times cheaper there).
    #[arg(long, value_enum, default_value_t)]
    pub renderer: crate::ui::WindowRenderer,
    /// Open the window in presenter mode: no settings panel, larger text, a light theme (P switches it in the
    /// window; ? lists the keys).
    #[arg(long)]
    pub present: bool,
}

/// The headless commands.
#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Look at datasets.
    Data {
        /// Which data command.
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Train a lab's model without a window.
    Train(Box<TrainArgs>),
    /// Print versions and the compute adapter.
    Info,
    /// Measure compute speed.
    Bench {
        /// Which benchmark.
        #[command(subcommand)]
        command: BenchCommand,
    },
}

/// `bench` subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// GFLOP/s of matmul on the GPU path and on candle, at square sizes and the models' shapes.
    Kernels {
        /// Also print one JSON line with every figure.
        #[arg(long)]
        json: bool,
    },
    /// Seconds for the flow lab's heavy work on the CPU: a RealNVP epoch, the 512 x 512 density, 262,144
    /// points through the inverse.
    Flow {
        /// Also print one JSON line with every figure.
        #[arg(long)]
        json: bool,
        /// Smaller grids, for a quick check.
        #[arg(long)]
        quick: bool,
    },
    /// Milliseconds for the BNN lab on the white wine: a mean-field epoch (training steps only, and with its
    /// evaluation), 100-sample predictions over the test rows on candle and the GPU, a full-covariance epoch.
    Bnn {
        /// Also print one JSON line with every figure.
        #[arg(long)]
        json: bool,
        /// Fewer runs, for a quick check.
        #[arg(long)]
        quick: bool,
    },
    /// Seconds for the VAE lab on MNIST 5k: MLP-VAE epochs (4,250 and 60,000 images), 100 conv-VAE steps at
    /// batch 128, a course-setup conv epoch, and encoding every image and decoding the 20 x 20 manifold.
    Vae {
        /// Also print one JSON line with every figure.
        #[arg(long)]
        json: bool,
        /// Fewer steps and runs (extrapolated), for a quick check.
        #[arg(long)]
        quick: bool,
    },
    /// Epochs a second of a lab's run in the window, with its busiest page open, against the same run with no
    /// window; frames a second and the UI thread's time per frame. Opens a window on the display it finds.
    Window {
        /// Which lab.
        #[arg(value_enum)]
        lab: LabArg,
        /// Seconds measured in each of the two runs.
        #[arg(long, default_value_t = 30.0)]
        seconds: f64,
        /// Seconds each run trains before it is measured.
        #[arg(long, default_value_t = 5.0)]
        warmup: f64,
        /// The page to keep open, by its tab's label (the lab's busiest when not given).
        #[arg(long)]
        page: Option<String>,
        /// What draws the window (as at launch).
        #[arg(long, value_enum, default_value_t)]
        renderer: crate::ui::WindowRenderer,
        /// Also print one JSON line with the figures.
        #[arg(long)]
        json: bool,
    },
}

/// `data` subcommands.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Print what the loader detects in a CSV file (rows, columns, delimiter, types), or the error.
    Inspect {
        /// A CSV file (`,` `;` or tab separated, optionally `.gz`), or a built-in name (wine-red, mnist,
        /// digits, moons, circles, 8gaussians, checkerboard, spirals, pinwheel).
        path: String,
        /// Keep missing or non-numeric cells as missing instead of refusing the file (each column's count is shown, and
        /// the rows the default roles leave out).
        #[arg(long)]
        drop_missing: bool,
        /// The file has no header row.
        #[arg(long, conflicts_with = "header")]
        no_header: bool,
        /// The first row is a header.
        #[arg(long)]
        header: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Which lab's model.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LabArg {
    /// Bayesian neural network lab (wine quality).
    Bnn,
    /// Variational autoencoder lab (MNIST).
    Vae,
    /// Normalizing flow lab (two moons).
    Flow,
}

impl From<LabArg> for Lab {
    fn from(l: LabArg) -> Self {
        match l {
            LabArg::Bnn => Self::Bnn,
            LabArg::Vae => Self::Vae,
            LabArg::Flow => Self::Flow,
        }
    }
}

/// `train` options.
#[derive(Debug, clap::Args)]
#[allow(clippy::struct_excessive_bools, reason = "independent command-line switches")]
pub struct TrainArgs {
    /// Which lab.
    pub lab: LabArg,
    /// A CSV file or a built-in name; the lab's default data when left out.
    #[arg(long)]
    pub data: Option<String>,
    /// Keep missing or non-numeric cells (in the file's columns of numbers) as missing instead of refusing it: the rows
    /// that miss a value in a column used are left out.
    #[arg(long)]
    pub drop_missing: bool,
    /// Column to predict as a number (regression).
    #[arg(long, conflicts_with = "label")]
    pub target: Option<String>,
    /// Column to predict as a class (classification).
    #[arg(long)]
    pub label: Option<String>,
    /// Epochs to train.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed of the split, the initial weights and the minibatches.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Flow lab: the kind of flow.
    #[arg(long, value_enum)]
    pub flow: Option<FlowArg>,
    /// Flow lab: number of flow layers.
    #[arg(long)]
    pub layers: Option<usize>,
    /// Flow lab: how the conditioner networks start: `torch` (weights and biases uniform in ±1/√fan-in, PyTorch's
    /// default; the app's) or `keras` (Glorot-uniform weights, zero biases, the Keras example's).
    #[arg(long, value_enum)]
    pub init: Option<FlowInitArg>,
    /// Flow lab: Adam's epsilon (default 1e-8, PyTorch's; the Keras example's is 1e-7).
    #[arg(long, value_name = "X")]
    pub adam_epsilon: Option<f64>,
    /// Flow lab: how the learning rate moves over the run: `constant` (the default, as the Keras example) or
    /// `cosine` (decays to 0 by the last step: a lower training NLL, but a higher held-out NLL on small data sets).
    #[arg(long, value_enum, value_name = "SCHEDULE")]
    pub lr_schedule: Option<LrScheduleArg>,
    /// Flow lab: the largest norm of the whole gradient a step takes, a longer gradient scaled down to it first, or
    /// `off` (RealNVP's default 40, the other flows' off; PyTorch and Keras do not clip unless told to).
    #[arg(long, value_name = "NORM|off", value_parser = parse_clip_norm)]
    pub clip_norm: Option<ClipNormArg>,
    /// Flow and VAE labs: the decay of the moving average of the weights that the run evaluates, shows and saves
    /// (each step keeps that share of the average), or `off` for the last step's weights (RealNVP's and the VAE's
    /// default 0.999, the other flows' off; the Keras examples and plain PyTorch use the last step's weights).
    #[arg(long, value_name = "DECAY|off", value_parser = parse_weight_average)]
    pub weight_average: Option<WeightAverageArg>,
    /// Flow lab (RealNVP): train with candle's autograd, the reference the hand-written training pass is tested
    /// against, instead of that pass (slower; the same model, loss and optimiser).
    #[arg(long)]
    pub autograd: bool,
    /// Flow lab: the two columns to model, by name, as `--columns A B` or `--columns A,B` (default: the first two
    /// feature columns).
    #[arg(long, value_delimiter = ',', num_args = 1..=2, value_names = ["A", "B"])]
    pub columns: Vec<String>,
    /// Rows per minibatch.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// VAE lab: the architecture; `conv` starts from the course's setup (1000 x MSE, Adam 5e-4, batch 32,
    /// 30 epochs), which the other flags override.
    #[arg(long, value_enum)]
    pub arch: Option<VaeArch>,
    /// VAE lab: latent dimension.
    #[arg(long)]
    pub latent: Option<usize>,
    /// VAE lab: the course's 1000 x mean squared error instead of the Bernoulli likelihood (the default of the
    /// conv VAE, and of the MLP VAE on a table: inputs that are not images).
    #[arg(long, conflicts_with = "bernoulli")]
    pub gaussian: bool,
    /// VAE lab: the Bernoulli likelihood on binarised pixels (the default of the MLP VAE on images; refused on a
    /// table, where its cross-entropy has no minimum).
    #[arg(long)]
    pub bernoulli: bool,
    /// BNN lab: fraction of the training split used (a fixed seeded subset; the course compares 0.3 and 1).
    #[arg(long)]
    pub train_fraction: Option<f64>,
    /// BNN lab: the posterior of the hidden layers.
    #[arg(long, value_enum)]
    pub posterior: Option<PosteriorArg>,
    /// BNN lab: the regression head.
    #[arg(long, value_enum)]
    pub head: Option<HeadArg>,
    /// BNN and VAE labs: units of each hidden layer, e.g. `8,8`; the flow lab: of each layer's conditioner
    /// networks (a RealNVP's scale and shift nets, 4 x 256 by default), e.g. `64,64,64,64`.
    #[arg(long, value_delimiter = ',')]
    pub hidden: Vec<usize>,
    /// BNN lab: the hidden activation (identity, relu, leaky-relu, sigmoid, tanh, softplus).
    #[arg(long)]
    pub activation: Option<String>,
    /// BNN lab: the optimiser.
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,
    /// BNN lab: standard deviation of the N(0, s²) prior on every weight.
    #[arg(long)]
    pub prior_sd: Option<f64>,
    /// BNN lab: use the one-sample Monte Carlo KL (the notebook's) instead of the closed form.
    #[arg(long)]
    pub mc_kl: bool,
    /// BNN lab: give the output layer a posterior too.
    #[arg(long)]
    pub bayesian_output: bool,
    /// BNN lab: Monte Carlo forward passes per prediction.
    #[arg(long)]
    pub samples: Option<usize>,
    /// BNN lab: how the posterior is found: `vi`, variational, trained by epochs (the default), or `nuts`, the
    /// exact posterior over every weight sampled by the No-U-Turn sampler (then --chains, --warmup, --draws,
    /// --noise and --max-rows apply; the optimiser's settings do not).
    #[arg(long, value_enum, default_value_t)]
    pub sampler: SamplerArg,
    /// With --sampler nuts: independent chains, one thread each (default 4).
    #[arg(long)]
    pub chains: Option<usize>,
    /// With --sampler nuts: warm-up iterations per chain, discarded (default 500).
    #[arg(long)]
    pub warmup: Option<usize>,
    /// With --sampler nuts: draws kept per chain (default 500).
    #[arg(long)]
    pub draws: Option<usize>,
    /// With --sampler nuts and the squared-error head: the noise, fixed at the variance 1/2 that the squared error
    /// implies (the default), or sampled with the prior sigma ~ HalfNormal(sd of the targets).
    #[arg(long, value_enum)]
    pub noise: Option<NoiseArg>,
    /// With --sampler nuts: sample on at most this many training rows, a seeded subsample (default 2000).
    #[arg(long, value_name = "N")]
    pub max_rows: Option<usize>,
    /// With --sampler nuts: the mean acceptance probability the warm-up tunes the step size to, between 0 and 1
    /// (default 0.8). Raise it (0.9, 0.95) when the sampler reports divergent transitions: smaller steps, slower
    /// draws.
    #[arg(long, value_name = "P")]
    pub target_accept: Option<f64>,
    /// Print one final JSON line of metrics.
    #[arg(long)]
    pub json: bool,
    /// After training, save the run as PATH (a `.json` run file: settings, seed, dataset and its sha256, roles,
    /// split, metrics) with the weights next to it (PATH with the extension `.safetensors`).
    #[arg(long, value_name = "PATH")]
    pub save: Option<PathBuf>,
    /// After training (or opening a run with --load), write the data behind the lab's plots as CSV files into DIR
    /// (created if missing) and print their paths: history.csv (every epoch's metrics) for every lab; for the BNN
    /// weights_histograms.csv (every recorded epoch, layer and quantity, with bin edges), predictive.csv (the test
    /// rows' Monte Carlo predictions) and calibration.csv (regression) or reliability.csv (classes); for the VAE latents.csv (every input's
    /// encoder means and log-variances with its label); for the flow stages.csv (the points at every stage) and
    /// density.csv (each stage's density on a 128 x 128 grid). Numbers are written to full precision.
    #[arg(long, value_name = "DIR")]
    pub export: Option<PathBuf>,
    /// After training (or opening a run with --load), record the lab's figures as animations into DIR (created if
    /// missing) as the window's "Record animation…" does, drawn frame by frame in an offscreen window (a GPU or
    /// Mesa's lavapipe draws them; no display is needed): the flow's stage plot from the Gaussian to the data and
    /// its data stage over the training, the VAE's latent plane over the training, the BNN's first-layer weight
    /// histogram over the training. Over the training, one frame for each model kept on the run's way (a run file
    /// keeps at most 60). GIF files unless --apng.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["rerun", "continue_run"])]
    pub animate: Option<PathBuf>,
    /// With --animate: animated PNG files (lossless) instead of GIFs.
    #[arg(long, requires = "animate")]
    pub apng: bool,
    /// Before training, write the exact rows the run trains and tests on into DIR (created if missing):
    /// train.csv and test.csv (the features as the model sees them, standardised, then the target standardised or
    /// the label as a class index) and split.csv (each feature's mean and scale). For comparing with a reference
    /// implementation on the same rows (benches/reference/parity.py).
    #[arg(long, value_name = "DIR")]
    pub export_split: Option<PathBuf>,
    /// Flow lab: before training, write to PATH the order in which each of the run's epochs takes the training rows
    /// (CSV: epoch, minibatch, row; row counts the rows of --export-split's train.csv from 0). A flow draws nothing at
    /// random while it trains, so its orders are fixed before its first step. For a reference implementation fed the
    /// run's own minibatches (benches/reference/parity.py --reference-orders app).
    #[arg(long, value_name = "PATH")]
    pub export_orders: Option<PathBuf>,
    /// Stop before the first step: load and split the data, build the model, write what --export-split and
    /// --export-orders ask for, print their paths and exit.
    #[arg(long, conflicts_with_all = ["save", "export", "animate", "checkpoint", "json"])]
    pub prepare_only: bool,
    /// Open a saved run (its `.json` run file) instead of training: load the model and its dataset, print the
    /// metrics it reached and recompute them from the loaded weights (the BNN's and the VAE's test figures come
    /// out the same to the last bit; the flow's are its report). The settings come from the run file.
    #[arg(long, value_name = "PATH", conflicts_with_all = [
        "data", "target", "label", "seed", "lr", "flow", "layers", "init", "adam_epsilon", "lr_schedule", "clip_norm", "weight_average", "autograd", "columns", "batch_size", "arch",
        "latent", "gaussian", "bernoulli", "train_fraction", "posterior", "head", "hidden", "activation", "optimizer",
        "prior_sd", "mc_kl", "bayesian_output", "samples", "sampler", "chains", "warmup", "draws", "noise", "max_rows",
        "target_accept",
        "export_orders", "prepare_only",
    ])]
    pub load: Option<PathBuf>,
    /// With --load: train the run's settings again from scratch, with its seed and data, and check that every
    /// epoch's metrics come out the same (exit code 1 when they do not). --save then saves the new run.
    #[arg(long, requires = "load")]
    pub rerun: bool,
    /// With --load: continue the run exactly where it was saved (a version 2 run file; a checkpoint), to its set
    /// number of epochs plus --epochs N more; the result is the run that would have come out had it never stopped,
    /// to the last bit. --save saves it, --checkpoint checkpoints it.
    #[arg(long = "continue", requires = "load", conflicts_with = "rerun")]
    pub continue_run: bool,
    /// While training, write a checkpoint (a run file that --load PATH --continue carries on from, exactly) as
    /// PATH every --every seconds, atomically, on its own thread; the last one when the run ends.
    #[arg(long, value_name = "PATH")]
    pub checkpoint: Option<PathBuf>,
    /// Seconds between checkpoints (with --checkpoint).
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, requires = "checkpoint")]
    pub every: f64,
}

/// Which flow (`train flow --flow`).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FlowArg {
    /// Affine coupling layers (RealNVP, the Keras example).
    Realnvp,
    /// Masked autoregressive layers (the course's notebook).
    Maf,
    /// One shift-and-scale bijector (the lecture's warm-up).
    Affine,
}

/// How a flow starts (`train flow --init`).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FlowInitArg {
    /// Weights and biases uniform in ±1/√fan-in (PyTorch's default; the app's).
    Torch,
    /// Glorot-uniform weights and zero biases (the Keras example's).
    Keras,
}

/// `--clip-norm`: a norm above 0, or `off` (`None`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClipNormArg(pub Option<f64>);

/// A number that `accept` takes, or `off` (`None`); otherwise a message saying that `expected` was.
fn parse_number_or_off(text: &str, accept: impl Fn(f64) -> bool, expected: &str) -> Result<Option<f64>, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(x) if accept(x) => Ok(Some(x)),
        _ => Err(format!("expected {expected} or `off`, not `{text}`")),
    }
}

/// Reads `--clip-norm`'s value.
fn parse_clip_norm(text: &str) -> Result<ClipNormArg, String> {
    parse_number_or_off(text, |norm| norm.is_finite() && norm > 0.0, "a number above 0").map(ClipNormArg)
}

/// `--weight-average`: a decay in (0, 1), or `off` (`None`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeightAverageArg(pub Option<f64>);

/// Reads `--weight-average`'s value.
fn parse_weight_average(text: &str) -> Result<WeightAverageArg, String> {
    parse_number_or_off(text, |decay| decay > 0.0 && decay < 1.0, "a decay above 0 and below 1 (0.999)")
        .map(WeightAverageArg)
}

/// How the flow's learning rate moves (`train flow --lr-schedule`).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LrScheduleArg {
    /// Decays as a half cosine from the set rate to 0 over the run.
    Cosine,
    /// The set rate throughout.
    Constant,
}

impl From<LrScheduleArg> for LrSchedule {
    fn from(a: LrScheduleArg) -> Self {
        match a {
            LrScheduleArg::Cosine => Self::Cosine,
            LrScheduleArg::Constant => Self::Constant,
        }
    }
}

impl From<FlowInitArg> for FlowInit {
    fn from(f: FlowInitArg) -> Self {
        match f {
            FlowInitArg::Torch => Self::FanIn,
            FlowInitArg::Keras => Self::Glorot,
        }
    }
}

impl From<VaeArch> for crate::models::vae::VaeArch {
    fn from(a: VaeArch) -> Self {
        match a {
            VaeArch::Mlp => Self::Mlp,
            VaeArch::Conv => Self::Conv,
        }
    }
}

impl From<FlowArg> for FlowKind {
    fn from(f: FlowArg) -> Self {
        match f {
            FlowArg::Realnvp => Self::RealNvp,
            FlowArg::Maf => Self::Maf,
            FlowArg::Affine => Self::Affine,
        }
    }
}

/// VAE architecture (`train vae --arch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum VaeArch {
    /// Dense encoder and decoder (784-512-256).
    Mlp,
    /// The course's convolutional VAE.
    Conv,
}

/// BNN posterior (`train bnn --posterior`).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PosteriorArg {
    /// One Gaussian per layer with a full covariance (the course's).
    Full,
    /// Independent Gaussians (Bayes by Backprop).
    MeanField,
    /// No posterior: the deterministic baseline network.
    None,
}

impl From<PosteriorArg> for Posterior {
    fn from(p: PosteriorArg) -> Self {
        match p {
            PosteriorArg::Full => Self::FullCovariance,
            PosteriorArg::MeanField => Self::MeanField,
            PosteriorArg::None => Self::Deterministic,
        }
    }
}

/// BNN regression head (`train bnn --head`).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum HeadArg {
    /// One output, squared error (the course's BNN).
    Mse,
    /// Normal(loc, scale) output, Gaussian NLL (the course's probabilistic BNN).
    Normal,
}

/// How the BNN's posterior is found (`train bnn --sampler`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum SamplerArg {
    /// Variational inference, trained by epochs.
    #[default]
    Vi,
    /// The No-U-Turn sampler on the exact posterior.
    Nuts,
}

/// The squared-error head's noise under NUTS (`train bnn --noise`).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum NoiseArg {
    /// The variance 1/2 the squared error implies.
    Fixed,
    /// Sampled, sigma ~ HalfNormal(sd of the targets).
    Sampled,
}

/// Optimiser (`train bnn --optimizer`).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OptimizerArg {
    /// RMSprop (the course's).
    Rmsprop,
    /// Adam.
    Adam,
}

/// Runs a headless command and returns the process exit code.
#[must_use]
pub fn run(command: CliCommand) -> ExitCode {
    let result = match command {
        CliCommand::Data { command: DataCommand::Inspect { path, drop_missing, no_header, header, json } } => {
            let header = if no_header {
                HeaderMode::Absent
            } else if header {
                HeaderMode::Present
            } else {
                HeaderMode::Auto
            };
            let missing = if drop_missing { MissingPolicy::DropRows } else { MissingPolicy::Refuse };
            inspect(&path, CsvOptions { header, missing, ..CsvOptions::default() }, json)
        }
        CliCommand::Train(args) => train(&args),
        CliCommand::Info => {
            info();
            Ok(())
        }
        CliCommand::Bench { command: BenchCommand::Kernels { json } } => {
            let report =
                crate::compute::bench::run(&crate::compute::bench::default_shapes(), Duration::from_millis(500));
            print!("{}", report.table());
            if json {
                println!("{}", serde_json::to_string(&report).unwrap_or_default());
            }
            Ok(())
        }
        CliCommand::Bench { command: BenchCommand::Flow { json, quick } } => bench_flow(json, quick),
        CliCommand::Bench { command: BenchCommand::Bnn { json, quick } } => bench_bnn(json, quick),
        CliCommand::Bench { command: BenchCommand::Vae { json, quick } } => bench_vae(json, quick),
        CliCommand::Bench { command: BenchCommand::Window { lab, seconds, warmup, page, renderer, json } } => {
            let plan = crate::ui::window_bench::WindowBenchPlan { lab: lab.into(), page, seconds, warmup };
            bench_window(&plan, renderer, json)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::BadInput(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
        Err(CliError::Failed(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// How a command failed.
#[derive(Debug)]
enum CliError {
    /// The input was wrong (exit code 2).
    BadInput(String),
    /// Something else went wrong (exit code 1).
    Failed(String),
}

/// Resolves a `--data` value: a built-in name, or a path.
#[must_use]
pub fn resolve_data(name: &str, options: CsvOptions) -> LoadRequest {
    if let Some(b) = BuiltinFile::from_cli(name) {
        LoadRequest::Builtin(b)
    } else if let Some(k) = SynthKind::from_cli(name) {
        LoadRequest::Synth(SynthSpec::default_for(k))
    } else {
        LoadRequest::File { path: PathBuf::from(name), options }
    }
}

fn load(request: &LoadRequest) -> Result<Table, CliError> {
    request.run(&crate::data::csv::NoProgress).map_err(|e| {
        // The window offers a button; on the command line, the flag that does the same.
        let flag = if e.is_bad_cell() {
            "\n--drop-missing keeps such cells as missing and leaves out the rows that miss a value in a column used"
        } else {
            ""
        };
        CliError::BadInput(format!("{e}{flag}"))
    })
}

fn inspect(path: &str, options: CsvOptions, as_json: bool) -> Result<(), CliError> {
    let table = load(&resolve_data(path, options))?;
    let spec = DataSpec::default_for(&table);
    let left = crate::data::prepare::left_out(&table, &spec);
    let (n_train, n_test) = split_counts(table.n_rows() - left.rows, spec.test_fraction);
    let labs: Vec<(Lab, Result<(), String>)> = Lab::ALL.iter().map(|&l| (l, check_lab(l, &table, &spec))).collect();
    let image = image_side(spec.feature_columns().len());
    if as_json {
        let columns: Vec<_> = table
            .columns
            .iter()
            .zip(&spec.roles)
            .map(|(c, r)| {
                let mut info = json!({"name": c.name, "type": c.kind.name(), "min": c.min, "max": c.max, "distinct": c.n_distinct, "role": r.label()});
                if c.kind == crate::data::table::ColumnKind::Text {
                    info["categories"] = json!(c.categories);
                }
                info
            })
            .collect();
        let csv = table.csv.as_ref();
        let line = json!({
            "name": table.name,
            "rows": table.n_rows(),
            "columns": table.n_cols(),
            "delimiter": csv.map(|c| (c.delimiter as char).to_string()),
            "header": csv.map(|c| c.has_header),
            "gzip": csv.map(|c| c.gzipped),
            "bom": csv.map(|c| c.had_bom),
            "crlf": csv.map(|c| c.crlf),
            "missing": csv.map(|c| c.missing.iter().map(|m| (table.columns[m.column].name.clone(), m.count)).collect::<std::collections::BTreeMap<_, _>>()),
            "dropped_rows": left.rows,
            "split": {"train": n_train, "test": n_test, "seed": spec.seed},
            "image_side": image,
            "inputs": crate::data::prepare::input_count(&table, &spec),
            "labs": labs.iter().map(|(l, r)| (l.tab_name(), r.as_ref().err().cloned())).collect::<std::collections::BTreeMap<_, _>>(),
            "column_info": columns,
        });
        println!("{line}");
        return Ok(());
    }
    let mut out = String::new();
    let _ = writeln!(out, "{}: {} rows x {} columns", table.name, grouped(table.n_rows()), table.n_cols());
    if let Some(c) = &table.csv {
        let _ = writeln!(
            out,
            "delimiter: {}; decimal mark: {}; header: {}; gzip: {}; byte order mark: {}; line ends: {}",
            delimiter_name(c.delimiter),
            if c.decimal_comma { "comma" } else { "point" },
            if c.has_header { "yes" } else { "no" },
            if c.gzipped { "yes" } else { "no" },
            if c.had_bom { "yes" } else { "no" },
            if c.crlf { "CR LF" } else { "LF" }
        );
        for m in &c.missing {
            let (name, (_, line, text)) = (&table.columns[m.column].name, &m.first);
            let _ =
                writeln!(out, "missing cells in \"{name}\": {} (the first on line {line}: {text:?})", grouped(m.count));
        }
        if left.rows > 0 {
            let _ = writeln!(out, "left out: {left}");
        }
    }
    let _ = writeln!(out, "split (seed {}): {} train, {} test", spec.seed, grouped(n_train), grouped(n_test));
    if let Some(side) = image {
        let _ = writeln!(out, "features form {side}x{side} images");
    }
    let width = table.columns.iter().map(|c| c.name.len()).max().unwrap_or(4).clamp(4, 28);
    let _ = writeln!(
        out,
        "{:>4}  {:<width$}  {:<7}  {:>12}  {:>12}  {:>8}  role",
        "#", "name", "type", "min", "max", "distinct"
    );
    let shown = table.columns.len().min(40);
    for (j, (c, r)) in table.columns.iter().zip(&spec.roles).enumerate().take(shown) {
        let distinct = if c.n_distinct > crate::data::table::DISTINCT_CAP {
            format!(">{}", crate::data::table::DISTINCT_CAP)
        } else {
            c.n_distinct.to_string()
        };
        // A text column's first and last categories (its numbers 0 and n - 1), cut to the column's width.
        let end = |v: f32| {
            let text = c.value_text(v);
            if text.chars().count() > 12 { format!("{}…", text.chars().take(11).collect::<String>()) } else { text }
        };
        let _ = writeln!(
            out,
            "{:>4}  {:<width$}  {:<7}  {:>12}  {:>12}  {:>8}  {}",
            j + 1,
            c.name,
            c.kind.name(),
            end(c.min),
            end(c.max),
            distinct,
            if crate::data::prepare::goes_in_one_hot(&table, &spec, j) {
                format!("feature, one-hot: {} inputs", c.categories.len())
            } else {
                r.label().to_owned()
            }
        );
    }
    if table.columns.len() > shown {
        let _ = writeln!(out, "      ... and {} more columns", table.columns.len() - shown);
    }
    for (lab, r) in &labs {
        let _ = writeln!(out, "{} lab: {}", lab.tab_name(), r.as_ref().err().map_or("usable", String::as_str));
    }
    print!("{out}");
    Ok(())
}

fn info() {
    println!("bayes-explorer {}", env!("CARGO_PKG_VERSION"));
    println!("stack: eframe 0.37.0, egui_plot 0.38.0, wgpu 30.0.1, candle-core 0.11.1, rfd 0.17.2");
    let compute = crate::compute::probe();
    println!("{}", compute.status_line());
    for a in &compute.adapters {
        println!(
            "  adapter: {} | {} | {} | driver {} | max storage binding {} MiB | max workgroup x {}",
            a.name,
            a.backend,
            a.device_type,
            a.driver,
            a.max_storage_buffer_binding_size / (1024 * 1024),
            a.max_compute_workgroup_size_x
        );
    }
    let renderer = crate::ui::window_renderer(crate::ui::WindowRenderer::Auto, compute.best());
    println!("{} (--renderer auto)", crate::ui::renderer_note(renderer, &compute));
}

fn train(args: &TrainArgs) -> Result<(), CliError> {
    let lab = Lab::from(args.lab);
    if let Some(path) = &args.load {
        return open_saved_run(args, path);
    }
    let missing = if args.drop_missing { MissingPolicy::DropRows } else { MissingPolicy::Refuse };
    let options = CsvOptions { missing, ..CsvOptions::default() };
    let request = args.data.as_deref().map_or_else(|| lab.default_data(), |d| resolve_data(d, options));
    let table = load(&request)?;
    let mut spec = crate::data::prepare::default_spec_for_lab(lab, &table);
    spec.seed = args.seed;
    if !args.columns.is_empty() {
        if lab != Lab::Flow {
            return Err(CliError::BadInput("--columns is for the flow lab; use --target or --label".into()));
        }
        if args.columns.len() != 2 {
            return Err(CliError::BadInput(format!(
                "--columns takes two column names (`--columns A B` or `--columns A,B`); got {}",
                args.columns.len()
            )));
        }
        let mut picked = Vec::new();
        for name in &args.columns {
            let Some(j) = table.column_index(name) else {
                let available = table.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
                return Err(CliError::BadInput(format!(
                    "{}: no column is named {name:?}; the columns are: {available}",
                    table.name
                )));
            };
            picked.push(j);
        }
        for (j, role) in spec.roles.iter_mut().enumerate() {
            if picked.contains(&j) {
                *role = Role::Feature;
            } else if *role == Role::Feature {
                *role = Role::Ignored;
            }
        }
    }
    for (name, role) in [(&args.target, Role::Target), (&args.label, Role::Label)] {
        if let Some(name) = name {
            let Some(j) = table.column_index(name) else {
                let available = table.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
                return Err(CliError::BadInput(format!(
                    "{}: no column is named {name:?}; the columns are: {available}",
                    table.name
                )));
            };
            spec.set_output(j, role);
        }
    }
    check_lab(lab, &table, &spec)
        .map_err(|e| CliError::BadInput(format!("{}: the {} lab {e}", table.name, lab.tab_name())))?;
    let table = crate::data::prepare::complete_rows(table, &spec);
    let left = crate::data::prepare::LeftOut::of(&table);
    if left.rows > 0 {
        eprintln!("{}: left out {left}", table.name);
    }
    if let Some(note) = crate::data::prepare::ordered_text_note(&table, &spec) {
        eprintln!("note: {}: {note}", table.name);
    }
    if let Some(note) = crate::data::prepare::one_hot_note(&table, &spec) {
        eprintln!("{}: {note}", table.name);
    }
    if lab == Lab::Flow
        && let Some(note) = crate::data::prepare::flow_few_values_note(&table, &spec)
    {
        eprintln!("note: {}: {note}", table.name);
    }
    let prepared = Arc::new(prepare(&table, &spec).map_err(|e| CliError::BadInput(format!("{}: {e}", table.name)))?);
    let flow_only = args.init.is_some()
        || args.adam_epsilon.is_some()
        || args.lr_schedule.is_some()
        || args.clip_norm.is_some()
        || args.autograd
        || args.export_orders.is_some();
    if flow_only && lab != Lab::Flow {
        return Err(CliError::BadInput(
            "--init, --adam-epsilon, --lr-schedule, --clip-norm, --autograd and --export-orders are for the flow lab"
                .into(),
        ));
    }
    if args.weight_average.is_some() && lab == Lab::Bnn {
        return Err(CliError::BadInput("--weight-average is for the flow and VAE labs".into()));
    }
    if args.sampler == SamplerArg::Nuts && args.prepare_only {
        return Err(CliError::BadInput("--prepare-only is for training by epochs, not --sampler nuts".into()));
    }
    if args.sampler == SamplerArg::Nuts {
        return nuts::train_nuts(args, &table, &request, spec, &prepared);
    }
    nuts::check_vi_args(args)?;
    let mut flow_config = None;
    let mut orders_file = None;
    let mut bnn_config_used: Option<BnnConfig> = None;
    let mut vae_config_used: Option<VaeConfig> = None;
    let factory: TrainerFactory = match lab {
        Lab::Bnn => {
            let config = bnn_config(args, prepared.n_train())?;
            bnn_config_used = Some(config.clone());
            let prepared = Arc::clone(&prepared);
            Box::new(move || Ok(Box::new(BnnTrainer::new(config.clone(), &prepared)?) as Box<dyn Trainer>))
        }
        Lab::Flow => {
            let kind = args.flow.map_or(FlowKind::RealNvp, FlowKind::from);
            let mut config = FlowConfig { seed: args.seed, ..FlowConfig::default_for(kind) };
            if let Some(e) = args.epochs {
                config.epochs = e;
            }
            if let Some(lr) = args.lr {
                config.learning_rate = lr;
            }
            if let Some(k) = args.layers {
                config.layers = k;
            }
            if let Some(b) = args.batch_size {
                config.batch_size = b;
            }
            if !args.hidden.is_empty() {
                config.hidden.clone_from(&args.hidden);
            }
            if let Some(init) = args.init {
                config.init = init.into();
            }
            if let Some(epsilon) = args.adam_epsilon {
                if !(epsilon.is_finite() && epsilon > 0.0) {
                    return Err(CliError::BadInput(format!("--adam-epsilon {epsilon}: give a number above 0")));
                }
                config.adam_epsilon = epsilon;
            }
            if let Some(schedule) = args.lr_schedule {
                config.lr_schedule = schedule.into();
            }
            if let Some(ClipNormArg(norm)) = args.clip_norm {
                config.clip_norm = norm;
            }
            if let Some(WeightAverageArg(decay)) = args.weight_average {
                config.weight_average = decay;
            }
            flow_config = Some(config.clone());
            if let Some(path) = &args.export_orders {
                let orders = FlowTrainer::new(config.clone(), &prepared)
                    .map_err(|e| CliError::BadInput(format!("{}: {e}", table.name)))?
                    .minibatch_orders();
                let written = orders_table(&orders, config.batch_size);
                written.write(path).map_err(|e| CliError::Failed(e.to_string()))?;
                orders_file = Some(path.clone());
            }
            let prepared = Arc::clone(&prepared);
            let hand_written = !args.autograd;
            Box::new(move || {
                let mut trainer = FlowTrainer::new(config.clone(), &prepared)?;
                trainer.set_hand_written_pass(hand_written);
                Ok(Box::new(trainer) as Box<dyn Trainer>)
            })
        }
        Lab::Vae => {
            // The convolutional VAE starts from the course's setup (1000 x MSE, Adam 5e-4, batch 32, 30 epochs).
            let base = if args.arch == Some(VaeArch::Conv) { VaeConfig::course_conv() } else { VaeConfig::default() };
            let mut config = VaeConfig { seed: args.seed, ..base };
            if let Some(e) = args.epochs {
                config.epochs = e;
            }
            if let Some(lr) = args.lr {
                config.learning_rate = lr;
            }
            if let Some(b) = args.batch_size {
                config.batch_size = b;
            }
            if let Some(d) = args.latent {
                config.latent = d;
            }
            if !args.hidden.is_empty() {
                config.hidden.clone_from(&args.hidden);
            }
            if args.gaussian {
                config.likelihood = Likelihood::Gaussian;
            }
            if args.bernoulli {
                config.likelihood = Likelihood::Bernoulli;
            }
            if !args.gaussian && !args.bernoulli && squared_error_for_a_table(&mut config, inputs_are_images(&prepared))
            {
                eprintln!(
                    "note: these {} features are a table, not images: the likelihood is the squared error \
                     (--gaussian); the Bernoulli likelihood is for pixels",
                    prepared.n_features()
                );
            }
            if let Some(WeightAverageArg(decay)) = args.weight_average {
                config.weight_average = decay;
            }
            vae_config_used = Some(config.clone());
            let prepared = Arc::clone(&prepared);
            Box::new(move || Ok(Box::new(VaeTrainer::new(config.clone(), &prepared)?) as Box<dyn Trainer>))
        }
    };
    let split_files = match &args.export_split {
        Some(dir) => {
            // The VAE sees its inputs rescaled (images to [0, 1], binarised for the Bernoulli likelihood): those
            // are its rows.
            let mut seen = vae_config_used.as_ref().map_or_else(
                || Prepared::clone(&prepared),
                |config| {
                    let (x_train, x_test, _) = vae_inputs(&prepared, config.likelihood);
                    let d = prepared.n_features();
                    Prepared {
                        x_train,
                        x_test,
                        feature_mean: vec![0.0; d],
                        feature_scale: vec![1.0; d],
                        ..(*prepared).clone()
                    }
                },
            );
            // A BNN on a fraction of its training split trains on that seeded subset only.
            if let Some(config) = &bnn_config_used
                && config.train_fraction < 1.0
            {
                let d = seen.n_features();
                let rows = train_subset(seen.n_train(), config.train_fraction, config.seed);
                seen.x_train = rows.iter().flat_map(|&i| prepared.x_train[i * d..(i + 1) * d].to_vec()).collect();
                seen.y_train = rows.iter().map(|&i| prepared.y_train[i]).collect();
            }
            export_split(dir, &seen).map_err(|e| CliError::Failed(e.to_string()))?
        }
        None => Vec::new(),
    };
    if args.prepare_only {
        print_exported(&split_files.into_iter().chain(orders_file).collect::<Vec<_>>());
        return Ok(());
    }
    let run_config = bnn_config_used
        .clone()
        .map(RunConfig::Bnn)
        .or_else(|| vae_config_used.clone().map(RunConfig::Vae))
        .or_else(|| flow_config.clone().map(RunConfig::Flow));
    let table = Arc::new(table);
    let checkpoints = match (&args.checkpoint, &run_config) {
        (Some(path), Some(config)) => {
            Some(Checkpoints::start(path, args.every, config.clone(), &table, &request, &spec)?)
        }
        _ => None,
    };
    let worker = Worker::spawn(&format!("train-{}", lab.tab_name().to_lowercase()), factory, true, || {})
        .map_err(|e| CliError::Failed(format!("cannot start the training thread: {e}")))?;
    // --animate keeps the models on the run's way, as the window's epoch scrubber does.
    let mut kept = args.animate.as_ref().map(|_| ModelHistory::<ModelView>::default());
    let final_state = args.save.is_some() || args.animate.is_some();
    let (record, last) = drive(&worker, args.json, checkpoints.as_ref(), final_state, kept.as_mut())?;
    if let Some(c) = checkpoints {
        c.finish();
    }
    let mut metrics = record.metrics.clone();
    let mut model = String::new();
    if let Some(config) = &vae_config_used {
        model = format!("vae-{}-{}", config.arch.cli_name(), config.likelihood.cli_name());
    }
    if let Some(config) = &bnn_config_used {
        let classes = matches!(prepared.output, Some((_, crate::data::prepare::OutputKind::Classes { .. })));
        let head = if classes { "softmax" } else { config.head.cli_name() };
        model = format!("bnn-{}-{head}", config.posterior.cli_name());
        metrics.extend([
            ("train_fraction".to_owned(), config.train_fraction),
            ("epochs".to_owned(), config.epochs as f64),
            ("samples".to_owned(), config.predictive_samples as f64),
        ]);
    }
    if let (Some(config), Some(ModelView::Flow { params, .. })) =
        (&flow_config, worker.snapshot().and_then(|s| s.model))
    {
        config.kind.cli_name().clone_into(&mut model);
        let figures = flow_report(&params, &prepared, args.seed)
            .map_err(|e| CliError::Failed(format!("cannot evaluate the trained flow: {e}")))?;
        metrics.retain(|(k, _)| k != "train_nll" && k != "heldout_nll");
        metrics.extend(figures.metrics());
        metrics.extend([("layers".to_owned(), config.layers as f64), ("epochs".to_owned(), config.epochs as f64)]);
    }
    worker.send(Command::Stop);
    let mut exported = split_files.clone();
    exported.extend(orders_file);
    if let Some(dir) = &args.export {
        let samples = bnn_config_used.as_ref().map_or(100, |c| c.predictive_samples);
        let snapshot = worker.snapshot().unwrap_or_default();
        exported.extend(export_trained(dir, &snapshot.history, snapshot.model, &prepared, samples)?);
    }
    report(lab, &model, &table, args, &metrics, &exported);
    if args.save.is_none() && args.animate.is_none() {
        return Ok(());
    }
    let kept: Vec<KeptModel> = kept
        .map(|history| {
            let steps_per_epoch = last.as_ref().map_or(1, |c| c.snapshot.steps_per_epoch.max(1)) as f64;
            let pinned = history.pinned();
            history
                .entries()
                .iter()
                .map(|e| KeptModel {
                    step: e.step,
                    epoch: e.step as f64 / steps_per_epoch,
                    model: e.params.params_only(),
                    pinned: pinned == Some(e.step),
                })
                .collect()
        })
        .unwrap_or_default();
    let run = trained_run(run_config, last, &table, &request, spec)?.with_kept(kept);
    if let Some(path) = &args.save {
        run.save(path).map_err(|e| CliError::Failed(e.to_string()))?;
        eprintln!("saved the run to {}", path.display());
    }
    if let Some(dir) = &args.animate {
        if let Some(path) = &args.save {
            animate(args, path, dir)?;
        } else {
            // The offscreen window opens the run as "Open run…" does: from a run file, here a temporary one.
            let path = std::env::temp_dir().join(format!("bayes-explorer-animate-{}.json", std::process::id()));
            run.save(&path).map_err(|e| CliError::Failed(e.to_string()))?;
            let made = animate(args, &path, dir);
            for file in [path.clone(), path.with_extension(crate::train::runfile::WEIGHTS_EXTENSION)] {
                let _ = std::fs::remove_file(file);
            }
            made?;
        }
    }
    Ok(())
}

/// `--animate DIR`: the lab's animations of the run file `run`, recorded offscreen; prints each file.
fn animate(args: &TrainArgs, run: &std::path::Path, dir: &std::path::Path) -> Result<(), CliError> {
    let format = if args.apng { AnimationFormat::Apng } else { AnimationFormat::Gif };
    let made = crate::ui::animate::animate_run(run, dir, format, |what| eprintln!("animate: {what}…"))
        .map_err(|e| CliError::Failed(format!("--animate {}: {e}", dir.display())))?;
    for animation in made {
        println!("animation: {} ({})", animation.path.display(), animation.what);
    }
    Ok(())
}

/// `--checkpoint PATH --every SECONDS`: the writer thread, where it writes and how often it is asked.
struct Checkpoints {
    writer: CheckpointWriter,
    path: PathBuf,
    every: Duration,
}

impl Checkpoints {
    fn start(
        path: &std::path::Path,
        every: f64,
        config: RunConfig,
        table: &Arc<Table>,
        request: &LoadRequest,
        spec: &DataSpec,
    ) -> Result<Self, CliError> {
        if !(every.is_finite() && every > 0.0) {
            return Err(CliError::BadInput(format!("--every {every}: give a number of seconds above 0")));
        }
        let writer = CheckpointWriter::spawn(config, Arc::clone(table), request.clone(), spec.clone(), || {})
            .map_err(|e| CliError::Failed(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Self { writer, path: path.to_owned(), every: Duration::from_secs_f64(every) })
    }

    /// Reports the writes finished so far: a failed one is a warning, and training goes on.
    fn report(&self) {
        report_checkpoints(self.writer.outcomes());
    }

    /// Waits for the last checkpoint to be written and reports it.
    fn finish(self) {
        report_checkpoints(self.writer.finish());
    }
}

fn report_checkpoints(outcomes: Vec<crate::train::runfile::CheckpointOutcome>) {
    for outcome in outcomes {
        match outcome.result {
            Ok(()) => log::info!("checkpoint at step {} written to {}", outcome.step, outcome.path.display()),
            Err(message) => eprintln!("warning: {message}; training goes on"),
        }
    }
}

/// Follows a training worker to its end: the progress bar, checkpoints every `checkpoints.every` (asked of the
/// worker, written on their own thread), and at the end, when a checkpoint is written or `final_state` is asked
/// for, one last checkpoint of the finished run. Returns the last epoch's record and that checkpoint.
fn drive(
    worker: &Worker,
    json: bool,
    checkpoints: Option<&Checkpoints>,
    final_state: bool,
    mut kept: Option<&mut ModelHistory<ModelView>>,
) -> Result<(EpochRecord, Option<Arc<Checkpoint>>), CliError> {
    let bar = progress_bar(json);
    let mut last_asked = Instant::now();
    let mut finished: Option<EpochRecord> = None;
    loop {
        if let Some(c) = checkpoints {
            c.report();
            if finished.is_none() && last_asked.elapsed() >= c.every {
                worker.send(Command::Checkpoint);
                last_asked = Instant::now();
            }
        }
        // The model copies the worker publishes (as often as the window's views take them), kept as the epoch
        // scrubber keeps them, spread by step (epochs are steps in proportion).
        if let (Some(kept), Some(model)) = (kept.as_deref_mut(), worker.model()) {
            let step = model.step();
            kept.push(step, step as f64, Arc::new(model));
        }
        let Some(event) = worker.wait_event(Duration::from_millis(50)) else {
            if worker.is_finished() {
                return Err(CliError::Failed("the training thread ended unexpectedly".into()));
            }
            continue;
        };
        match event {
            WorkerEvent::EpochDone(record) => {
                if let Some(bar) = &bar {
                    if let Some(s) = worker.snapshot() {
                        bar.set_length(s.total_epochs as u64);
                    }
                    bar.set_position(record.epoch as u64);
                    bar.set_message(format_metrics(&record.metrics));
                }
            }
            WorkerEvent::Finished(record) => {
                if let Some(bar) = &bar {
                    bar.finish_and_clear();
                }
                if checkpoints.is_none() && !final_state {
                    return Ok((record, None));
                }
                finished = Some(record);
                worker.send(Command::Checkpoint);
            }
            WorkerEvent::Checkpoint(checkpoint) => {
                if let Some(c) = checkpoints {
                    c.writer.write(Arc::clone(&checkpoint), c.path.clone());
                }
                if let Some(record) =
                    finished.take_if(|_| checkpoint.snapshot.history.len() == checkpoint.snapshot.total_epochs)
                {
                    return Ok((record, Some(checkpoint)));
                }
            }
            WorkerEvent::CheckpointFailed(message) => {
                if let Some(record) = finished.take() {
                    eprintln!("warning: cannot take the final checkpoint: {message}");
                    return Ok((record, None));
                }
                eprintln!("warning: cannot take a checkpoint: {message}; training goes on");
            }
            WorkerEvent::NonFinite { location, step } => {
                return Err(CliError::Failed(format!(
                    "a NaN or infinity appeared in {location} at step {step}; try a smaller --lr"
                )));
            }
            WorkerEvent::Error(message) => return Err(CliError::Failed(message)),
            // The model of the lowest held-out figure so far, kept as the epoch scrubber keeps it.
            WorkerEvent::LowestHeldOut { view, .. } => {
                if let Some(kept) = kept.as_deref_mut() {
                    let step = view.step();
                    kept.pin(step, step as f64, Arc::new(view));
                }
            }
            WorkerEvent::Ready | WorkerEvent::State(_) => {}
        }
    }
}

/// The BNN settings from the defaults and the command line.
fn bnn_config(args: &TrainArgs, n_train: usize) -> Result<BnnConfig, CliError> {
    let mut config = BnnConfig { seed: args.seed, bayesian_output: args.bayesian_output, ..BnnConfig::default() };
    if let Some(lr) = args.lr {
        config.learning_rate = lr;
    }
    if let Some(b) = args.batch_size {
        config.batch_size = b;
    }
    if let Some(f) = args.train_fraction {
        if !(f > 0.0 && f <= 1.0) {
            return Err(CliError::BadInput(format!("--train-fraction must be in (0, 1], got {f}")));
        }
        config.train_fraction = f;
    }
    if let Some(p) = args.posterior {
        config.posterior = p.into();
    }
    if let Some(h) = args.head {
        config.head = match h {
            HeadArg::Mse => Head::Mse,
            HeadArg::Normal => Head::Normal,
        };
    }
    if !args.hidden.is_empty() {
        config.hidden.clone_from(&args.hidden);
    }
    if let Some(name) = &args.activation {
        config.activation = Activation::from_name(name).ok_or_else(|| {
            let known = Activation::ALL.map(Activation::name).join(", ");
            CliError::BadInput(format!("--activation {name:?} is not one of: {known}"))
        })?;
    }
    if let Some(o) = args.optimizer {
        config.optimizer = match o {
            OptimizerArg::Rmsprop => OptimizerKind::RmsProp,
            OptimizerArg::Adam => OptimizerKind::Adam,
        };
    }
    if let Some(s) = args.prior_sd {
        config.prior_sd = s;
    }
    if args.mc_kl {
        config.kl = KlEstimate::MonteCarlo;
    }
    if let Some(n) = args.samples {
        config.predictive_samples = n.max(1);
    }
    config.epochs = args.epochs.unwrap_or_else(|| default_epochs(n_train, config.batch_size));
    Ok(config)
}

fn bench_flow(json: bool, quick: bool) -> Result<(), CliError> {
    let figures = crate::bench::flow_figures(quick).map_err(CliError::Failed)?;
    println!("{:<52} {:>10} {:>14}", "flow lab, CPU", "seconds", "points/s");
    for f in &figures {
        println!("{:<52} {:>10.3} {:>14.0}", f.name, f.seconds, f.items / f.seconds.max(1e-12));
    }
    if json {
        println!("{}", serde_json::to_string(&figures).unwrap_or_default());
    }
    Ok(())
}

fn bench_window(
    plan: &crate::ui::window_bench::WindowBenchPlan,
    renderer: crate::ui::WindowRenderer,
    json: bool,
) -> Result<(), CliError> {
    let report = crate::ui::window_bench::run(plan, renderer).map_err(CliError::Failed)?;
    println!("{}", crate::ui::window_bench::WindowBenchReport::TABLE_HEADER);
    println!("{}", report.table_row());
    println!("{}", report.renderer);
    if !report.cores.is_empty() {
        println!(
            "Cores kept busy while the window's run was measured, by thread: {}",
            crate::ui::thread_cpu::describe(&report.cores)
        );
    }
    if json {
        println!("{}", serde_json::to_string(&report).map_err(|e| CliError::Failed(e.to_string()))?);
    }
    Ok(())
}

fn bench_vae(json: bool, quick: bool) -> Result<(), CliError> {
    let figures = crate::bench::vae_figures(quick).map_err(CliError::Failed)?;
    let width = figures.iter().map(|f| f.name.len()).max().unwrap_or(0);
    println!("{:<width$} {:>10} {:>18}", "VAE lab, MNIST 5k", "seconds", "per second");
    for f in &figures {
        let rate = format!("{:.0} {}", f.items / f.seconds.max(1e-12), f.unit);
        println!("{:<width$} {:>10.4} {:>18}", f.name, f.seconds, rate);
    }
    println!(
        "PyTorch CPU reference (issue 5): 4.3 s per 60,000-image MLP epoch, 8 s per 100 conv steps at batch 128 (quoted); BENCHMARKS.md compares with PyTorch timed on this machine (benches/reference/pytorch_reference.py)."
    );
    if json {
        println!("{}", serde_json::to_string(&figures).unwrap_or_default());
    }
    Ok(())
}

fn bench_bnn(json: bool, quick: bool) -> Result<(), CliError> {
    let (figures, data) = crate::bench::bnn_figures(quick).map_err(CliError::Failed)?;
    println!("data: {data}");
    let width = figures.iter().map(|f| f.name.len()).max().unwrap_or(0);
    println!("{:<width$} {:>10} {:>22}", "BNN lab ([8, 8] sigmoid, squared error)", "ms", "per second");
    for f in &figures {
        let rate = format!("{:.0} {}", f.items / f.seconds.max(1e-12), f.unit);
        println!("{:<width$} {:>10.3} {:>22}", f.name, f.seconds * 1e3, rate);
    }
    println!(
        "PyTorch CPU reference (issue 4): 22 ms per epoch, 6 ms for the 100 x 735 predictions; 3x faster is 7.3 ms and 2 ms."
    );
    if json {
        let line = json!({"data": data, "figures": figures});
        println!("{line}");
    }
    Ok(())
}

fn progress_bar(json: bool) -> Option<indicatif::ProgressBar> {
    if json && !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(1);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} epoch {pos}/{len} {msg}") {
        bar.set_style(style);
    }
    Some(bar)
}

fn format_metrics(metrics: &[(String, f64)]) -> String {
    metrics.iter().map(|(k, v)| format!("{k} {v:.4}")).collect::<Vec<_>>().join("  ")
}

fn report(lab: Lab, model: &str, table: &Table, args: &TrainArgs, metrics: &[(String, f64)], exported: &[PathBuf]) {
    if args.json {
        let mut line = serde_json::Map::new();
        line.insert("lab".into(), json!(lab.tab_name().to_lowercase()));
        line.insert("model".into(), json!(model));
        line.insert("data".into(), json!(table.name));
        line.insert("seed".into(), json!(args.seed));
        for (k, v) in metrics {
            line.insert(k.clone(), json!(v));
        }
        if args.export.is_some() || args.export_split.is_some() || args.export_orders.is_some() {
            line.insert("exported".into(), exported_json(exported));
        }
        println!("{}", serde_json::Value::Object(line));
    } else {
        println!("{} on {}: {}", lab.title(), table.name, format_metrics(metrics));
        print_exported(exported);
    }
}

/// The exported files' paths, for the JSON line.
fn exported_json(exported: &[PathBuf]) -> serde_json::Value {
    json!(exported.iter().map(|p| p.display().to_string()).collect::<Vec<_>>())
}

/// The exported files' paths, one per line.
fn print_exported(exported: &[PathBuf]) {
    for path in exported {
        println!("exported {}", path.display());
    }
}

/// `train … --export DIR`: writes the CSVs of the finished run (its model is in the final snapshot).
fn export_trained(
    dir: &std::path::Path,
    history: &[crate::train::EpochRecord],
    model: Option<ModelView>,
    data: &crate::data::prepare::Prepared,
    bnn_samples: usize,
) -> Result<Vec<PathBuf>, CliError> {
    let Some(model) = model else {
        return Err(CliError::Failed(format!("{}: the run has no model to export", dir.display())));
    };
    let options = ExportOptions { bnn_samples, ..ExportOptions::default() };
    export_run(dir, history, &model, data, options).map_err(|e| CliError::Failed(e.to_string()))
}

/// `train … --save`: writes the finished run (its model is in the final snapshot).
fn save_trained(
    path: &std::path::Path,
    config: Option<RunConfig>,
    last: Option<Arc<Checkpoint>>,
    table: &Table,
    request: &LoadRequest,
    spec: DataSpec,
) -> Result<(), CliError> {
    let run = trained_run(config, last, table, request, spec).map_err(|e| match e {
        CliError::Failed(why) => CliError::Failed(format!("{}: {why}", path.display())),
        other @ CliError::BadInput(_) => other,
    })?;
    run.save(path).map_err(|e| CliError::Failed(e.to_string()))?;
    eprintln!("saved the run to {}", path.display());
    Ok(())
}

/// The finished run, from its final checkpoint (its model and training state).
fn trained_run(
    config: Option<RunConfig>,
    last: Option<Arc<Checkpoint>>,
    table: &Table,
    request: &LoadRequest,
    spec: DataSpec,
) -> Result<AnyRun, CliError> {
    let (Some(config), Some(last)) = (config, last) else {
        return Err(CliError::Failed("the run has no model to save".into()));
    };
    AnyRun::from_snapshot(config, &last.snapshot, table, request, spec)
        .and_then(|run| run.with_state(Arc::clone(&last.state)))
        .map_err(|e| CliError::Failed(format!("cannot save the run: {e}")))
}

/// `train <lab> --load PATH [--rerun] [--save PATH]`: opens a run file and its dataset, then prints the saved
/// metrics with those recomputed from the loaded weights, or trains the settings again and compares.
fn open_saved_run(args: &TrainArgs, path: &std::path::Path) -> Result<(), CliError> {
    let lab = Lab::from(args.lab);
    let bad = |e: RunFileError| CliError::BadInput(e.to_string());
    let run = match AnyRun::load(path) {
        Err(RunFileError::Sampled { .. }) if lab == Lab::Bnn => return nuts::open_nuts_run(args, path),
        loaded => loaded.map_err(bad)?,
    };
    if run.lab() != lab {
        return Err(bad(RunFileError::WrongLab {
            file: path.display().to_string(),
            found: run.lab().tab_name(),
            expected: lab.tab_name(),
        }));
    }
    let (table, request) = load_dataset(path, run.dataset(), run.spec()).map_err(bad)?;
    let prepared = Arc::new(run.prepare(&table).map_err(|e| CliError::BadInput(format!("{}: {e}", path.display())))?);
    if args.continue_run {
        return continue_saved_run(args, path, &run, table, &request, &prepared);
    }
    if args.epochs.is_some() || args.checkpoint.is_some() {
        return Err(CliError::BadInput("--epochs and --checkpoint with --load need --continue".into()));
    }
    let saved = run.snapshot().history.last().map(|r| r.metrics.clone()).unwrap_or_default();
    let as_object = |metrics: &[(String, f64)]| -> serde_json::Value {
        metrics.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>().into()
    };
    let mut line = serde_json::Map::new();
    line.insert("lab".into(), json!(lab.tab_name().to_lowercase()));
    line.insert("model".into(), json!(run.model_name()));
    line.insert("data".into(), json!(run.dataset().name));
    line.insert("seed".into(), json!(run.seed()));
    line.insert("run".into(), json!(path.display().to_string()));
    line.insert("epochs".into(), json!(run.snapshot().epoch));
    line.insert("step".into(), json!(run.snapshot().step));
    line.insert("saved".into(), as_object(&saved));
    // For the text output, in the trainer's order.
    let mut lines = vec![("saved", saved)];
    let mut outcome = Ok(());
    let kept = if args.rerun {
        let bar = progress_bar(args.json);
        if let Some(bar) = &bar {
            bar.set_length(run.snapshot().total_epochs as u64);
        }
        let again = run
            .rerun(&prepared, |epoch| {
                if let Some(bar) = &bar {
                    bar.set_position(epoch as u64);
                }
            })
            .map_err(|e| CliError::Failed(format!("the re-run stopped: {e}")))?;
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let new = again.snapshot().history.last().map(|r| r.metrics.clone()).unwrap_or_default();
        line.insert("rerun".into(), as_object(&new));
        lines.push(("re-run", new));
        let difference = first_difference(&run.snapshot().history, &again.snapshot().history);
        line.insert("reproduced".into(), json!(difference.is_none()));
        if let Some(d) = difference {
            line.insert("first_difference".into(), json!(d));
            outcome = Err(CliError::Failed(format!("the re-run's metrics differ from the run file's: {d}")));
        }
        again
    } else {
        let evaluated =
            run.evaluate(&prepared).map_err(|e| CliError::Failed(format!("cannot evaluate the run: {e}")))?;
        line.insert("evaluated".into(), as_object(&evaluated));
        lines.push(("evaluated", evaluated));
        run
    };
    let exported = match &args.export {
        Some(dir) => {
            let samples = match kept.config() {
                RunConfig::Bnn(c) => c.predictive_samples,
                RunConfig::Vae(_) | RunConfig::Flow(_) => 100,
            };
            export_trained(dir, &kept.snapshot().history, Some(kept.model_view()), &prepared, samples)?
        }
        None => Vec::new(),
    };
    if args.export.is_some() {
        line.insert("exported".into(), exported_json(&exported));
    }
    if args.json {
        println!("{}", serde_json::Value::Object(line));
    } else {
        println!("{} run {} on {}:", lab.title(), path.display(), kept.dataset().name);
        for (key, metrics) in &lines {
            println!("  {key}: {}", format_metrics(metrics));
        }
        if let Some(r) = line.get("reproduced") {
            println!("  reproduced to the last bit: {r}");
        }
        print_exported(&exported);
    }
    if let Some(save) = &args.save {
        kept.save(save).map_err(|e| CliError::Failed(e.to_string()))?;
        eprintln!("saved the run to {}", save.display());
    }
    if let Some(dir) = &args.animate {
        animate(args, path, dir)?;
    }
    outcome
}

/// `train <lab> --load PATH --continue [--epochs N] [--save OUT] [--checkpoint CP]`: carries a saved run on from
/// its training state, exactly, to its set number of epochs plus N.
fn continue_saved_run(
    args: &TrainArgs,
    path: &std::path::Path,
    run: &AnyRun,
    table: Table,
    request: &LoadRequest,
    prepared: &Arc<crate::data::prepare::Prepared>,
) -> Result<(), CliError> {
    if let Some(why) = run.why_not_continued() {
        return Err(CliError::BadInput(format!("{}: {why}", path.display())));
    }
    let add = args.epochs.unwrap_or(0);
    let s = run.snapshot();
    if s.epoch >= s.total_epochs && add == 0 {
        return Err(CliError::BadInput(format!(
            "{}: the run has done all its {} epochs; --epochs N continues it for N more",
            path.display(),
            s.total_epochs
        )));
    }
    // Built once here, so that a state that does not fit is an error before any thread starts.
    let first =
        run.continued_trainer(prepared, add).map_err(|e| CliError::BadInput(format!("{}: {e}", path.display())))?;
    let mut first = Some(first);
    let (again, data) = (run.clone(), Arc::clone(prepared));
    let factory: TrainerFactory = Box::new(move || match first.take() {
        Some(trainer) => Ok(trainer),
        None => again.continued_trainer(&data, add),
    });
    let config = run.continued_config(add);
    let table = Arc::new(table);
    let checkpoints = match &args.checkpoint {
        Some(cp) => Some(Checkpoints::start(cp, args.every, config.clone(), &table, request, run.spec())?),
        None => None,
    };
    let worker = Worker::spawn(&format!("train-{}", run.lab().tab_name().to_lowercase()), factory, true, || {})
        .map_err(|e| CliError::Failed(format!("cannot start the training thread: {e}")))?;
    let (record, last) = drive(&worker, args.json, checkpoints.as_ref(), args.save.is_some(), None)?;
    if let Some(c) = checkpoints {
        c.finish();
    }
    worker.send(Command::Stop);
    if args.json {
        let metrics: serde_json::Map<_, _> = record.metrics.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let line = json!({
            "lab": run.lab().tab_name().to_lowercase(),
            "model": run.model_name(),
            "continued_from": path.display().to_string(),
            "from_step": s.step,
            "epochs": record.epoch,
            "metrics": metrics,
        });
        println!("{line}");
    } else {
        println!(
            "{} run {} continued from step {} to epoch {}: {}",
            run.lab().title(),
            path.display(),
            s.step,
            record.epoch,
            format_metrics(&record.metrics)
        );
    }
    if let Some(save) = &args.save {
        save_trained(save, Some(config), last, &table, request, run.spec().clone())?;
    }
    Ok(())
}
