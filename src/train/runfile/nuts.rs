//! A BNN posterior sampled by NUTS, saved as a run: the same two files as a trained run, the run file (lab `BNN`,
//! model `bnn-nuts-{head}`, the settings [`NutsRunConfig`], the diagnostics in [`NutsArchitecture`], the figures
//! as the one recorded "epoch") and the draws as tensors: `chains.{c}.weights` `[draws, n_weights]` (each row a
//! weight sample in the layout of [`BnnParams`]'s forward pass) and, with a sampled noise, `chains.{c}.sigma`
//! `[draws]`.
//!
//! It is no trained run: it is opened ([`NutsRun::load`]) and its figures recomputed from the draws
//! ([`NutsRun::evaluate`], the same to the last bit), but it is not replayed or continued, and
//! [`AnyRun::load`](super::AnyRun::load) refuses it with [`RunFileError::Sampled`].

use std::path::Path;

use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use super::files::{sha256_hex, weights_path_for};
use super::format::{
    ColumnRecord, DatasetRecord, FORMAT_NAME, FORMAT_VERSION, JsonF64, ProgressRecord, RunFile, RunFileError,
    SavedEpoch, SplitRecord, WeightsRecord, parse_run_file, read_run_file,
};
use super::tensors::{DenseShape, TensorReader, TensorWriter};
use crate::Lab;
use crate::data::Table;
use crate::data::prepare::{DataSpec, OutputKind, Prepared, prepare, split_counts};
use crate::models::bnn::{BnnConfig, BnnLayer, BnnParams, BnnTask, Posterior};
use crate::models::nuts::{ChainDraws, NutsPosterior, NutsSettings, posterior_figures};
use crate::train::EpochRecord;

/// The start of every NUTS run's model name.
const MODEL_PREFIX: &str = "bnn-nuts";

/// Whether a run file holds a NUTS run.
pub(super) fn is_nuts_record(record: &RunFile) -> bool {
    record.lab == Lab::Bnn && record.model.starts_with(MODEL_PREFIX)
}

/// A NUTS run's settings: the network's (its architecture, prior, seed and training fraction; the optimiser's
/// are unused) and the sampler's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NutsRunConfig {
    /// Always "nuts".
    pub sampler: String,
    /// The network's settings.
    pub bnn: BnnConfig,
    /// The sampler's settings.
    pub nuts: NutsSettings,
}

/// One chain's diagnostics (its draws are tensors).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NutsChainRecord {
    /// Kept draws.
    pub draws: usize,
    /// Divergent transitions among them.
    pub divergences: usize,
    /// Divergent transitions during the warm-up.
    pub warmup_divergences: usize,
    /// The step size after the warm-up.
    pub step_size: JsonF64,
    /// Mean tree depth of the kept draws.
    pub mean_tree_depth: JsonF64,
    /// Kept draws stopped at the maximum depth.
    pub max_depth_hits: usize,
    /// Gradient evaluations, warm-up included.
    pub gradient_evaluations: u64,
}

/// The network's layout and the sampler's diagnostics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NutsArchitecture {
    /// What the outputs mean.
    pub task: BnnTask,
    /// Prior standard deviation.
    pub prior_sd: f64,
    /// The layers, first first.
    pub layers: Vec<DenseShape>,
    /// Parameters per draw.
    pub n_weights: usize,
    /// Whether `σ` was sampled (then each chain has a `sigma` tensor).
    pub sigma: bool,
    /// Per chain.
    pub chains: Vec<NutsChainRecord>,
    /// Rank-normalised split R-hat per coordinate.
    pub rhat: Vec<JsonF64>,
    /// Bulk ESS per coordinate.
    pub ess_bulk: Vec<JsonF64>,
    /// Seconds the sampling took.
    pub seconds: JsonF64,
    /// Rows the likelihood ran over.
    pub rows_used: usize,
    /// Training rows given.
    pub rows_total: usize,
}

/// A BNN posterior sampled by NUTS, with the data it was sampled on.
#[derive(Clone, Debug, PartialEq)]
pub struct NutsRun {
    /// The settings.
    pub config: NutsRunConfig,
    /// The network's architecture (zero weights; the draws are in `posterior`).
    pub template: BnnParams,
    /// The draws and their diagnostics.
    pub posterior: NutsPosterior,
    /// The figures when it was made ([`posterior_figures`] on the test rows).
    pub metrics: Vec<(String, f64)>,
    /// The dataset.
    pub dataset: DatasetRecord,
    /// Column names, in order.
    pub column_names: Vec<String>,
    /// Column roles and split.
    pub spec: DataSpec,
}

impl NutsRun {
    /// The model's name: `bnn-nuts-{mse|normal|softmax}`.
    #[must_use]
    pub fn model_name(&self) -> String {
        let head = match self.template.task {
            BnnTask::Classification { .. } => "softmax",
            BnnTask::Regression(head) => head.cli_name(),
        };
        format!("{MODEL_PREFIX}-{head}")
    }

    /// The column names of `table`, for [`Self::column_names`].
    #[must_use]
    pub fn column_names_of(table: &Table) -> Vec<String> {
        table.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// Saves the run as `path` (`NAME.json`) and `NAME.safetensors`, atomically.
    pub fn save(&self, path: &Path) -> Result<(), RunFileError> {
        let file = path.display().to_string();
        let fail = |message: String| RunFileError::Write { file: file.clone(), message };
        let weights_path = weights_path_for(path).map_err(&fail)?;
        let p = &self.posterior;
        let sigma = p.chains.iter().any(|c| !c.sigma.is_empty());
        let mut tensors = TensorWriter::default();
        let mut chains = Vec::with_capacity(p.chains.len());
        for (c, chain) in p.chains.iter().enumerate() {
            let draws = chain.weights.len() / p.n_weights.max(1);
            tensors.add(format!("chains.{c}.weights"), vec![draws, p.n_weights], &chain.weights).map_err(&fail)?;
            if sigma {
                tensors.add(format!("chains.{c}.sigma"), vec![draws], &chain.sigma).map_err(&fail)?;
            }
            chains.push(NutsChainRecord {
                draws,
                divergences: chain.divergences,
                warmup_divergences: chain.warmup_divergences,
                step_size: JsonF64(chain.step_size),
                mean_tree_depth: JsonF64(chain.mean_tree_depth),
                max_depth_hits: chain.max_depth_hits,
                gradient_evaluations: chain.gradient_evaluations,
            });
        }
        let architecture = NutsArchitecture {
            task: self.template.task,
            prior_sd: self.template.prior_sd,
            layers: self
                .template
                .layers
                .iter()
                .map(|l| DenseShape { n_in: l.n_in, n_out: l.n_out, activation: l.activation })
                .collect(),
            n_weights: p.n_weights,
            sigma,
            chains,
            rhat: p.rhat.iter().copied().map(JsonF64).collect(),
            ess_bulk: p.ess_bulk.iter().copied().map(JsonF64).collect(),
            seconds: JsonF64(p.seconds),
            rows_used: p.rows_used,
            rows_total: p.rows_total,
        };
        let weights = tensors.serialize(Lab::Bnn).map_err(&fail)?;
        let weights_name = weights_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| fail("no file name".into()))?;
        let (n_train, n_test) = split_counts(self.dataset.rows, self.spec.test_fraction);
        let iterations = (p.settings.warmup + p.settings.draws) * p.chains.len();
        let history = vec![SavedEpoch::from(&EpochRecord { epoch: 1, metrics: self.metrics.clone() })];
        if self.column_names.len() != self.spec.roles.len() {
            return Err(fail(format!("{} column names for {} roles", self.column_names.len(), self.spec.roles.len())));
        }
        let record = RunFile {
            format: FORMAT_NAME.to_owned(),
            format_version: FORMAT_VERSION,
            app_version: env!("CARGO_PKG_VERSION").to_owned(),
            lab: Lab::Bnn,
            model: self.model_name(),
            seed: self.config.nuts.seed,
            config: serde_json::to_value(&self.config).map_err(|e| fail(format!("the settings: {e}")))?,
            architecture: serde_json::to_value(&architecture).map_err(|e| fail(format!("the architecture: {e}")))?,
            dataset: self.dataset.clone(),
            columns: self
                .column_names
                .iter()
                .zip(&self.spec.roles)
                .map(|(name, role)| ColumnRecord { name: name.clone(), role: *role })
                .collect(),
            split: SplitRecord {
                test_fraction: self.spec.test_fraction,
                seed: self.spec.seed,
                standardize: self.spec.standardize,
                text_features: self.spec.text_features,
                n_train,
                n_test,
            },
            progress: ProgressRecord {
                epochs_done: 1,
                total_epochs: 1,
                step: iterations as u64,
                steps_per_epoch: iterations,
                learning_rate: JsonF64(0.0),
                batch_loss: JsonF64(f64::NAN),
            },
            metrics: history.last().cloned(),
            history,
            weights: WeightsRecord { file: weights_name, bytes: weights.len() as u64, sha256: sha256_hex(&weights) },
            resume: None,
            kept: Vec::new(),
        };
        let mut json = serde_json::to_vec_pretty(&record).map_err(|e| fail(e.to_string()))?;
        json.push(b'\n');
        let back = parse_run_file(&json, &file).map_err(|e| fail(format!("it would not read back: {e}")))?;
        serde_json::from_value::<NutsRunConfig>(back.config)
            .map_err(|e| fail(format!("the settings would not read back: {e}")))?;
        super::commit_run_files(path, &weights_path, &weights, &json)
    }

    /// Opens a NUTS run (only its files, not its data; see [`load_dataset`](super::load_dataset)).
    pub fn load(path: &Path) -> Result<Self, RunFileError> {
        let (record, weights) = read_run_file(path)?;
        let file = path.display().to_string();
        let corrupt = |why: String| RunFileError::Corrupt { file: file.clone(), why };
        if !is_nuts_record(&record) {
            return Err(corrupt(format!("it holds a {} run, not a NUTS run", record.model)));
        }
        let config: NutsRunConfig =
            serde_json::from_value(record.config).map_err(|e| corrupt(format!("the settings: {e}")))?;
        let arch: NutsArchitecture =
            serde_json::from_value(record.architecture).map_err(|e| corrupt(format!("the architecture: {e}")))?;
        let tensors = SafeTensors::deserialize(&weights).map_err(|e| corrupt(format!("the weights file: {e:?}")))?;
        let mut reader = TensorReader::new(tensors);
        let template = template_of(&arch).map_err(&corrupt)?;
        if template.n_params() != arch.n_weights {
            return Err(corrupt(format!(
                "{} parameters per draw for a network of {}",
                arch.n_weights,
                template.n_params()
            )));
        }
        let mut chains = Vec::with_capacity(arch.chains.len());
        for (c, r) in arch.chains.iter().enumerate() {
            let weights = reader
                .take(&format!("chains.{c}.weights"), &[r.draws, arch.n_weights])
                .map_err(|e| corrupt(format!("the draws: {e}")))?;
            let sigma = if arch.sigma {
                reader.take(&format!("chains.{c}.sigma"), &[r.draws]).map_err(|e| corrupt(format!("the draws: {e}")))?
            } else {
                Vec::new()
            };
            chains.push(ChainDraws {
                weights,
                sigma,
                divergences: r.divergences,
                warmup_divergences: r.warmup_divergences,
                step_size: r.step_size.0,
                mean_tree_depth: r.mean_tree_depth.0,
                max_depth_hits: r.max_depth_hits,
                gradient_evaluations: r.gradient_evaluations,
            });
        }
        reader.finish().map_err(&corrupt)?;
        let dim = arch.n_weights + usize::from(arch.sigma);
        if arch.rhat.len() != dim || arch.ess_bulk.len() != dim {
            return Err(corrupt(format!("the diagnostics cover {} coordinates, not {dim}", arch.rhat.len())));
        }
        let metrics = record.history.last().map(|e| EpochRecord::from(e).metrics).unwrap_or_default();
        let spec = DataSpec {
            roles: record.columns.iter().map(|c| c.role).collect(),
            standardize: record.split.standardize,
            test_fraction: record.split.test_fraction,
            seed: record.split.seed,
            text_features: record.split.text_features,
        };
        let posterior = NutsPosterior {
            settings: config.nuts.clone(),
            n_weights: arch.n_weights,
            chains,
            rhat: arch.rhat.iter().map(|v| v.0).collect(),
            ess_bulk: arch.ess_bulk.iter().map(|v| v.0).collect(),
            seconds: arch.seconds.0,
            rows_used: arch.rows_used,
            rows_total: arch.rows_total,
        };
        Ok(Self {
            config,
            template,
            posterior,
            metrics,
            dataset: record.dataset,
            column_names: record.columns.into_iter().map(|c| c.name).collect(),
            spec,
        })
    }

    /// The run's data split and standardised as it was for sampling, checked against the network.
    pub fn prepare(&self, table: &Table) -> Result<Prepared, String> {
        let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        if names.iter().copied().ne(self.column_names.iter().map(String::as_str)) {
            return Err(format!("the data's columns are not the run's: {}", names.join(", ")));
        }
        let prepared = prepare(table, &self.spec).map_err(|e| e.to_string())?;
        if prepared.n_features() != self.template.n_in() {
            return Err(format!(
                "the network takes {} features but the data has {}",
                self.template.n_in(),
                prepared.n_features()
            ));
        }
        let fits = match (&prepared.output, self.template.task) {
            (Some((_, OutputKind::Regression)), BnnTask::Regression(_)) => true,
            (Some((_, OutputKind::Classes { classes, .. })), BnnTask::Classification { n_classes }) => {
                classes.len().max(2) == n_classes
            }
            _ => false,
        };
        if !fits {
            return Err("the data's target or label does not match the network's outputs".into());
        }
        Ok(prepared)
    }

    /// The figures recomputed from the draws on the run's test rows ([`posterior_figures`]): the saved ones, to
    /// the last bit.
    #[must_use]
    pub fn evaluate(&self, data: &Prepared) -> Vec<(String, f64)> {
        posterior_figures(&self.template, &self.posterior, &data.x_test, &data.y_test)
    }
}

/// The network of a saved layout, with zero weights.
fn template_of(arch: &NutsArchitecture) -> Result<BnnParams, String> {
    let Some(first) = arch.layers.first() else {
        return Err("the network has no layers".into());
    };
    if first.n_in == 0 || arch.layers.iter().any(|l| l.n_out == 0) {
        return Err("a layer has no inputs or no outputs".into());
    }
    if arch.layers.windows(2).any(|w| w[0].n_out != w[1].n_in) {
        return Err("the layers do not fit together".into());
    }
    if arch.layers.last().map(|l| l.n_out) != Some(arch.task.n_out()) {
        return Err("the last layer's outputs do not fit the task".into());
    }
    let layers = arch
        .layers
        .iter()
        .map(|s| {
            let k = s.n_in.checked_mul(s.n_out).and_then(|w| w.checked_add(s.n_out)).ok_or("a layer is too large")?;
            Ok(BnnLayer {
                n_in: s.n_in,
                n_out: s.n_out,
                posterior: Posterior::Deterministic,
                mean: vec![0.0; k],
                sd: vec![0.0; k],
                scale_tril: Vec::new(),
                activation: s.activation,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(BnnParams { layers, task: arch.task, prior_sd: arch.prior_sd })
}
