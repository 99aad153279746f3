//! Run files: a trained model saved so that it can be opened again exactly, shared, and re-run.
//!
//! A run saved as `NAME.json` is two files side by side: the run file ([`RunFile`], JSON: the lab, the model's
//! architecture, every hyperparameter and the seed, the dataset and the sha256 of its values, the columns' roles,
//! the split, the progress and every epoch's metrics) and `NAME.safetensors`, the parameters as f32 tensors.
//! Loading gives back the plain-data parameters bit for bit, so the views predict exactly what they predicted
//! before; re-running the config with its seed on the same data reproduces the metrics (training is seeded).
//!
//! Saving is atomic: a crash at any point leaves either the old run or the new one loadable.
//!
//! - `files`: the weights file's name, atomic writes ([`write_atomically`]) and the files' sha256;
//! - `format`: the run file's records, and reading a run file with every check ([`read_run_file`]);
//! - `dataset`: the run's data: its record ([`DatasetRecord::of`]), identified by [`table_sha256`], and loaded
//!   again ([`load_dataset`]);
//! - `tensors`: [`SavedModel`], what a lab implements, and the named tensors its parameters become;
//! - `bnn`, `vae`, `flow`: each lab's [`SavedModel`] and the records of its architecture;
//! - `kept`: the models a run kept on its way (the epoch scrubber's), saved thinned to the file's limits
//!   ([`KeptModel`], version 3);
//! - `nuts`: a BNN posterior sampled by NUTS ([`NutsRun`]): its draws, settings and diagnostics, in the same two
//!   files (it is no trained run: it is shown, not replayed or continued);
//! - `replay`: a saved run shown through a worker ([`Run::replay_factory`]);
//! - here: [`Run`], one lab's run in memory, saved and opened, and [`AnyRun`], a run of any lab.
//!
//! Each file uses only those listed above it (and `replay` the [`Run`] it plays back).
//!
//! A lab takes part by implementing [`SavedModel`] for its plain-data parameters, and adding one variant to
//! [`RunConfig`] and to [`AnyRun`] (with their match arms). Used by `cli` and `ui`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use safetensors::SafeTensors;

use crate::Lab;
use crate::compute::params::FlowParams;
use crate::data::prepare::{DataSpec, Prepared, prepare, split_counts};
use crate::data::{LoadRequest, Table};
use crate::models::bnn::{BnnConfig, BnnView};
use crate::models::flow::FlowConfig;
use crate::models::resume::TrainState;
use crate::models::vae::{VaeConfig, VaeView};
use crate::train::{EpochRecord, ModelView, RunSnapshot, TrainError, Trainer, TrainerFactory};

mod bnn;
mod checkpoint;
mod dataset;
mod files;
mod flow;
mod format;
mod kept;
mod nuts;
mod replay;
mod state;
mod tensors;
mod vae;

pub use bnn::{BnnArchitecture, BnnHistoryShape, BnnLayerShape};
pub use checkpoint::{CheckpointOutcome, CheckpointWriter};
pub use dataset::{load_dataset, table_sha256};
pub use files::{WEIGHTS_EXTENSION, sha256_hex, weights_path_for, write_atomically};
use files::{pending_path, sync_folder};
pub use flow::{FlowArchitecture, FlowLayerShape};
use format::parse_run_file;
pub use format::{
    ColumnRecord, DatasetRecord, FIRST_CONTINUABLE_VERSION, FORMAT_NAME, FORMAT_VERSION, JsonF64, KeptRecord,
    MetricList, ProgressRecord, RunFile, RunFileError, SavedEpoch, SplitRecord, WeightsRecord, read_run_file,
};
pub use kept::{KEPT_FILE_BUDGET_BYTES, KeptModel, MAX_KEPT_IN_FILE, spread, spread_keeping};
pub use nuts::{NutsArchitecture, NutsChainRecord, NutsRun, NutsRunConfig};
pub use state::{EXACTNESS, ResumeRecord};
use state::{read_state, write_state};
pub use tensors::{DenseShape, SavedModel, TensorReader, TensorWriter, read_mlp, write_mlp};
pub use vae::{ConvLayerShape, VaeArchitecture, VaeNetworksShape};

// ---------------------------------------------------------------------------------------------------------
// A run of one lab, in memory.

/// A run: the model, its settings, where training had got to, and the data it was trained on.
#[derive(Clone, Debug)]
pub struct Run<M: SavedModel> {
    /// Every hyperparameter and the seed.
    pub config: M::Config,
    /// The trained parameters.
    pub model: M,
    /// Progress and metrics (`model` is `None` here; see [`Run::model_view`]).
    pub snapshot: RunSnapshot,
    /// The dataset.
    pub dataset: DatasetRecord,
    /// Column names, in order.
    pub column_names: Vec<String>,
    /// Column roles and split.
    pub spec: DataSpec,
    /// The training state at the snapshot's step, from which the run continues exactly; `None` for a version 1
    /// file or a run saved without it (shown and re-run, but not continued).
    pub state: Option<Arc<TrainState>>,
    /// The format version of the file it was opened from ([`FORMAT_VERSION`] for a run made here).
    pub format_version: u32,
    /// Models kept on the way (the epoch scrubber's), oldest first; saved thinned to the file's limits.
    pub kept: Vec<KeptModel>,
}

impl<M: SavedModel> Run<M> {
    /// A run from what the worker published: `snapshot.model` must hold this lab's model, taken at the
    /// snapshot's step (pause a running worker first).
    pub fn from_snapshot(
        config: M::Config,
        snapshot: &RunSnapshot,
        table: &Table,
        dataset: DatasetRecord,
        spec: DataSpec,
    ) -> Result<Self, String> {
        let Some(view) = &snapshot.model else {
            return Err("the run has no model yet".into());
        };
        if view.step() != snapshot.step {
            return Err("the model's copy is older than the run's progress; pause the run and try again".into());
        }
        let model = M::from_model_view(view).ok_or("the run's model belongs to another lab")?;
        let snapshot = RunSnapshot { model: None, ..snapshot.clone() };
        let column_names = table.columns.iter().map(|c| c.name.clone()).collect();
        Ok(Self {
            config,
            model,
            snapshot,
            dataset,
            column_names,
            spec,
            state: None,
            format_version: FORMAT_VERSION,
            kept: Vec::new(),
        })
    }

    /// The run with the training state `state`, taken at the same step as its snapshot, to continue from.
    pub fn with_state(self, state: Arc<TrainState>) -> Result<Self, String> {
        if state.epochs.step != self.snapshot.step {
            return Err(format!(
                "the training state is from step {}, the run's progress from step {}",
                state.epochs.step, self.snapshot.step
            ));
        }
        Ok(Self { state: Some(state), ..self })
    }

    /// The run with `kept`, the models kept on its way (oldest first, one model per step).
    /// Those after the run's step (copies taken after the checkpoint it is saved from) are left out.
    #[must_use]
    pub fn with_kept(self, mut kept: Vec<KeptModel>) -> Self {
        kept.retain(|k| k.step <= self.snapshot.step);
        Self { kept, ..self }
    }

    /// The copy of the model the worker published at the run's step.
    #[must_use]
    pub fn model_view(&self) -> ModelView {
        self.model.model_view(self.snapshot.step)
    }

    /// Saves the run as `path` (the run file, normally `NAME.json`) and `NAME.safetensors`, atomically.
    pub fn save(&self, path: &Path) -> Result<(), RunFileError> {
        let file = path.display().to_string();
        let fail = |message: String| RunFileError::Write { file: file.clone(), message };
        let weights_path = weights_path_for(path).map_err(&fail)?;
        let mut tensors = TensorWriter::default();
        let architecture = self.model.write(&mut tensors).map_err(&fail)?;
        let resume = match &self.state {
            Some(state) => {
                let record = write_state(state, &mut tensors).map_err(|e| fail(format!("the training state: {e}")))?;
                Some(serde_json::to_value(record).map_err(|e| fail(format!("the training state: {e}")))?)
            }
            None => None,
        };
        let kept =
            kept::write_kept::<M>(&self.kept, &mut tensors).map_err(|e| fail(format!("the kept models: {e}")))?;
        let weights = tensors.serialize(M::LAB).map_err(&fail)?;
        let weights_name = weights_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| fail("no file name".into()))?;
        let (n_train, n_test) = split_counts(self.dataset.rows, self.spec.test_fraction);
        let s = &self.snapshot;
        let history: Vec<SavedEpoch> = s.history.iter().map(SavedEpoch::from).collect();
        let record = RunFile {
            format: FORMAT_NAME.to_owned(),
            format_version: FORMAT_VERSION,
            app_version: env!("CARGO_PKG_VERSION").to_owned(),
            lab: M::LAB,
            model: self.model.model_name(&self.config),
            seed: M::seed(&self.config),
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
                epochs_done: s.epoch,
                total_epochs: s.total_epochs,
                step: s.step,
                steps_per_epoch: s.steps_per_epoch,
                learning_rate: JsonF64(s.learning_rate),
                batch_loss: JsonF64(s.batch_loss),
            },
            metrics: history.last().cloned(),
            history,
            weights: WeightsRecord { file: weights_name, bytes: weights.len() as u64, sha256: sha256_hex(&weights) },
            resume,
            kept,
        };
        if record.columns.len() != self.spec.roles.len() {
            return Err(fail(format!("{} column names for {} roles", self.column_names.len(), self.spec.roles.len())));
        }
        let mut json = serde_json::to_vec_pretty(&record).map_err(|e| fail(e.to_string()))?;
        json.push(b'\n');
        // What is about to be written must read back (a NaN in the settings would turn into `null`).
        let back = parse_run_file(&json, &file).map_err(|e| fail(format!("it would not read back: {e}")))?;
        serde_json::from_value::<M::Config>(back.config)
            .map_err(|e| fail(format!("the settings would not read back: {e}")))?;

        commit_run_files(path, &weights_path, &weights, &json)
    }

    /// Opens a run of this lab (only the run files, not its data; see [`load_dataset`]).
    pub fn load(path: &Path) -> Result<Self, RunFileError> {
        let (record, weights) = read_run_file(path)?;
        Self::from_record(path, record, &weights)
    }

    fn from_record(path: &Path, record: RunFile, weights: &[u8]) -> Result<Self, RunFileError> {
        let file = path.display().to_string();
        let corrupt = |why: String| RunFileError::Corrupt { file: file.clone(), why };
        if record.lab != M::LAB {
            return Err(RunFileError::WrongLab { file, found: record.lab.tab_name(), expected: M::LAB.tab_name() });
        }
        if nuts::is_nuts_record(&record) {
            return Err(RunFileError::Sampled { file });
        }
        let config: M::Config =
            serde_json::from_value(record.config).map_err(|e| corrupt(format!("the settings: {e}")))?;
        let architecture: M::Architecture =
            serde_json::from_value(record.architecture).map_err(|e| corrupt(format!("the architecture: {e}")))?;
        let tensors = SafeTensors::deserialize(weights).map_err(|e| corrupt(format!("the weights file: {e:?}")))?;
        let mut reader = TensorReader::new(tensors);
        let model = M::read(&architecture, &mut reader).map_err(|e| corrupt(format!("the weights: {e}")))?;
        let state = match record.resume {
            Some(resume) => {
                let resume: ResumeRecord =
                    serde_json::from_value(resume).map_err(|e| corrupt(format!("the training state: {e}")))?;
                let state =
                    read_state(&resume, &mut reader).map_err(|e| corrupt(format!("the training state: {e}")))?;
                if state.epochs.step != record.progress.step {
                    return Err(corrupt(format!(
                        "the training state is from step {}, the progress from step {}",
                        state.epochs.step, record.progress.step
                    )));
                }
                Some(Arc::new(state))
            }
            None => None,
        };
        let kept = kept::read_kept::<M>(&record.kept, &mut reader).map_err(&corrupt)?;
        if let Some(after) = kept.iter().find(|k| k.step > record.progress.step) {
            return Err(corrupt(format!("a model kept at step {} is after the run's step", after.step)));
        }
        reader.finish().map_err(corrupt)?;
        let p = &record.progress;
        let history: Vec<EpochRecord> = record.history.iter().map(EpochRecord::from).collect();
        if history.len() != p.epochs_done {
            return Err(corrupt(format!("{} epochs are recorded but {} are done", history.len(), p.epochs_done)));
        }
        let snapshot = RunSnapshot {
            lab: M::LAB,
            epoch: p.epochs_done,
            total_epochs: p.total_epochs,
            step: p.step,
            steps_per_epoch: p.steps_per_epoch,
            learning_rate: p.learning_rate.0,
            batch_loss: p.batch_loss.0,
            history,
            model: None,
        };
        let spec = DataSpec {
            roles: record.columns.iter().map(|c| c.role).collect(),
            standardize: record.split.standardize,
            test_fraction: record.split.test_fraction,
            seed: record.split.seed,
            text_features: record.split.text_features,
        };
        let column_names = record.columns.into_iter().map(|c| c.name).collect();
        let format_version = record.format_version;
        Ok(Self { config, model, snapshot, dataset: record.dataset, column_names, spec, state, format_version, kept })
    }

    /// The run's data split and standardised as it was for training, checked against the model.
    pub fn prepare(&self, table: &Table) -> Result<Prepared, String> {
        let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        if names.iter().copied().ne(self.column_names.iter().map(String::as_str)) {
            return Err(format!("the data's columns are not the run's: {}", names.join(", ")));
        }
        let prepared = prepare(table, &self.spec).map_err(|e| e.to_string())?;
        self.model.check_data(&prepared)?;
        Ok(prepared)
    }

    /// Trains the run's config from scratch on `data` (the run's data, prepared) on this thread; `on_epoch` gets
    /// the epochs done after each one. The result has the same data and spec.
    pub fn rerun(&self, data: &Arc<Prepared>, mut on_epoch: impl FnMut(usize)) -> Result<Self, TrainError> {
        let mut trainer = M::trainer(&self.config, data)?;
        while !trainer.finished() {
            let before = trainer.epochs_done();
            trainer.step()?;
            if trainer.epochs_done() > before {
                on_epoch(trainer.epochs_done());
            }
        }
        let view = trainer.model_view().ok_or_else(|| TrainError::Backend("the model offers no copy".into()))?;
        let model =
            M::from_model_view(&view).ok_or_else(|| TrainError::Backend("the model is another lab's".into()))?;
        let state = Some(Arc::new(trainer.train_state()?));
        // A new run: the old one's kept models are not its own.
        Ok(Self {
            model,
            snapshot: trainer.snapshot(),
            state,
            format_version: FORMAT_VERSION,
            kept: Vec::new(),
            ..self.clone()
        })
    }

    /// Why the run cannot be continued, or `None` when it can.
    #[must_use]
    pub fn why_not_continued(&self) -> Option<String> {
        if self.state.is_some() {
            None
        } else if self.format_version < FIRST_CONTINUABLE_VERSION {
            Some(format!(
                "the run file has format version {} (an earlier release): it can be shown and re-run but not continued",
                self.format_version
            ))
        } else {
            Some("the run was saved without its training state: it can be shown and re-run but not continued".into())
        }
    }

    /// A trainer that carries on from the saved state on `data` (the run's data, prepared), for `add_epochs`
    /// epochs more than the run was set to last: its history, views and every next step are the run's own, as if
    /// it had never stopped. The run's settings then say the new number of epochs ([`SavedModel::with_epochs`]).
    ///
    /// # Errors
    /// When the run has no training state ([`Self::why_not_continued`]) or the state does not fit.
    pub fn continued_trainer(&self, data: &Arc<Prepared>, add_epochs: usize) -> Result<Box<dyn Trainer>, TrainError> {
        let Some(state) = &self.state else {
            return Err(TrainError::Data(self.why_not_continued().unwrap_or_default()));
        };
        let total = self.snapshot.total_epochs.max(self.snapshot.epoch) + add_epochs;
        let config = M::with_epochs(&self.config, total);
        M::resumed_trainer(&config, data, state, self.snapshot.history.clone(), total, &self.model_view())
    }

    /// The settings of the run continued for `add_epochs` more epochs (see [`Self::continued_trainer`]).
    #[must_use]
    pub fn continued_config(&self, add_epochs: usize) -> M::Config {
        M::with_epochs(&self.config, self.snapshot.total_epochs.max(self.snapshot.epoch) + add_epochs)
    }
}

/// Writes a run's two files: the weights under a pending name, then the run file (the switch from the old run to
/// the new one), then the weights under their own name (a crash at any point leaves one run or the other).
fn commit_run_files(path: &Path, weights_path: &Path, weights: &[u8], json: &[u8]) -> Result<(), RunFileError> {
    let fail = |message: String| RunFileError::Write { file: path.display().to_string(), message };
    let pending = pending_path(weights_path);
    write_atomically(&pending, |f| f.write_all(weights))
        .map_err(|e| RunFileError::Write { file: pending.display().to_string(), message: e.to_string() })?;
    if let Err(e) = write_atomically(path, |f| f.write_all(json)) {
        let _ = std::fs::remove_file(&pending);
        return Err(fail(e.to_string()));
    }
    std::fs::rename(&pending, weights_path).map_err(|e| RunFileError::Write {
        file: weights_path.display().to_string(),
        message: format!("{e}; the weights were left in {}, where opening the run finds them", pending.display()),
    })?;
    sync_folder(weights_path);
    Ok(())
}

/// The first difference between two runs' metrics, epoch by epoch and to the last bit; `None` when they agree.
#[must_use]
pub fn first_difference(a: &[EpochRecord], b: &[EpochRecord]) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("{} epochs against {}", a.len(), b.len()));
    }
    for (x, y) in a.iter().zip(b) {
        let names = |r: &EpochRecord| r.metrics.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        if x.epoch != y.epoch || names(x) != names(y) {
            return Some(format!("epoch {} records other metrics", x.epoch));
        }
        for ((name, u), (_, v)) in x.metrics.iter().zip(&y.metrics) {
            if u.to_bits() != v.to_bits() {
                return Some(format!("epoch {}: {name} is {u} against {v}", x.epoch));
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------------------
// Any lab's run.

/// The settings of a run of any lab that can be saved.
#[derive(Clone, Debug, PartialEq)]
pub enum RunConfig {
    /// The BNN lab.
    Bnn(BnnConfig),
    /// The VAE lab.
    Vae(VaeConfig),
    /// The flow lab.
    Flow(FlowConfig),
}

impl RunConfig {
    /// The decay of the moving average of the weights the run keeps as its model, if it keeps one (a flow's or a
    /// VAE's).
    #[must_use]
    pub fn weight_average(&self) -> Option<f64> {
        match self {
            Self::Bnn(_) => None,
            Self::Vae(c) => c.weight_average,
            Self::Flow(c) => c.weight_average,
        }
    }

    /// The same settings set to last `epochs` epochs.
    #[must_use]
    pub fn with_epochs(&self, epochs: usize) -> Self {
        match self {
            Self::Bnn(c) => Self::Bnn(BnnView::with_epochs(c, epochs)),
            Self::Vae(c) => Self::Vae(VaeView::with_epochs(c, epochs)),
            Self::Flow(c) => Self::Flow(FlowParams::with_epochs(c, epochs)),
        }
    }

    /// A fresh, untrained trainer of these settings on `data`.
    pub fn fresh_trainer(&self, data: &Arc<Prepared>) -> Result<Box<dyn Trainer>, TrainError> {
        match self {
            Self::Bnn(c) => BnnView::trainer(c, data),
            Self::Vae(c) => VaeView::trainer(c, data),
            Self::Flow(c) => FlowParams::trainer(c, data),
        }
    }
}

/// A run of any lab that can be saved.
#[derive(Clone, Debug)]
pub enum AnyRun {
    /// The BNN lab.
    Bnn(Run<BnnView>),
    /// The VAE lab.
    Vae(Run<VaeView>),
    /// The flow lab.
    Flow(Run<FlowParams>),
}

impl From<Run<BnnView>> for AnyRun {
    fn from(run: Run<BnnView>) -> Self {
        Self::Bnn(run)
    }
}

impl From<Run<VaeView>> for AnyRun {
    fn from(run: Run<VaeView>) -> Self {
        Self::Vae(run)
    }
}

impl From<Run<FlowParams>> for AnyRun {
    fn from(run: Run<FlowParams>) -> Self {
        Self::Flow(run)
    }
}

/// What every lab's [`Run`] offers, without its types.
trait ErasedRun {
    fn save(&self, path: &Path) -> Result<(), RunFileError>;
    fn snapshot(&self) -> &RunSnapshot;
    fn dataset(&self) -> &DatasetRecord;
    fn spec(&self) -> &DataSpec;
    fn model_name(&self) -> String;
    fn seed(&self) -> u64;
    fn model_view(&self) -> ModelView;
    fn prepare(&self, table: &Table) -> Result<Prepared, String>;
    fn replay_factory(&self) -> TrainerFactory;
    fn rerun(&self, data: &Arc<Prepared>, on_epoch: &mut dyn FnMut(usize)) -> Result<AnyRun, TrainError>;
    fn evaluate(&self, data: &Prepared) -> Result<Vec<(String, f64)>, TrainError>;
    fn why_not_continued(&self) -> Option<String>;
    fn continued_trainer(&self, data: &Arc<Prepared>, add_epochs: usize) -> Result<Box<dyn Trainer>, TrainError>;
    fn state(&self) -> Option<&Arc<TrainState>>;
}

impl<M: SavedModel> ErasedRun for Run<M>
where
    Run<M>: Into<AnyRun>,
{
    fn save(&self, path: &Path) -> Result<(), RunFileError> {
        Run::save(self, path)
    }
    fn snapshot(&self) -> &RunSnapshot {
        &self.snapshot
    }
    fn dataset(&self) -> &DatasetRecord {
        &self.dataset
    }
    fn spec(&self) -> &DataSpec {
        &self.spec
    }
    fn model_name(&self) -> String {
        self.model.model_name(&self.config)
    }
    fn seed(&self) -> u64 {
        M::seed(&self.config)
    }
    fn model_view(&self) -> ModelView {
        Run::model_view(self)
    }
    fn prepare(&self, table: &Table) -> Result<Prepared, String> {
        Run::prepare(self, table)
    }
    fn replay_factory(&self) -> TrainerFactory {
        Run::replay_factory(self)
    }
    fn rerun(&self, data: &Arc<Prepared>, on_epoch: &mut dyn FnMut(usize)) -> Result<AnyRun, TrainError> {
        Run::rerun(self, data, on_epoch).map(Into::into)
    }
    fn evaluate(&self, data: &Prepared) -> Result<Vec<(String, f64)>, TrainError> {
        self.model.evaluate(&self.config, data, self.snapshot.epoch)
    }
    fn why_not_continued(&self) -> Option<String> {
        Run::why_not_continued(self)
    }
    fn continued_trainer(&self, data: &Arc<Prepared>, add_epochs: usize) -> Result<Box<dyn Trainer>, TrainError> {
        Run::continued_trainer(self, data, add_epochs)
    }
    fn state(&self) -> Option<&Arc<TrainState>> {
        self.state.as_ref()
    }
}

impl AnyRun {
    fn inner(&self) -> &dyn ErasedRun {
        match self {
            Self::Bnn(run) => run,
            Self::Vae(run) => run,
            Self::Flow(run) => run,
        }
    }

    /// A run from what a worker published (see [`Run::from_snapshot`]); `table` is the run's data, loaded by
    /// `request` (its values are hashed: call it off the UI thread).
    pub fn from_snapshot(
        config: RunConfig,
        snapshot: &RunSnapshot,
        table: &Table,
        request: &LoadRequest,
        spec: DataSpec,
    ) -> Result<Self, String> {
        Self::from_snapshot_with_dataset(config, snapshot, table, DatasetRecord::of(table, request), spec)
    }

    /// [`Self::from_snapshot`] with the dataset's record already made (its hash taken once for many saves).
    pub fn from_snapshot_with_dataset(
        config: RunConfig,
        snapshot: &RunSnapshot,
        table: &Table,
        dataset: DatasetRecord,
        spec: DataSpec,
    ) -> Result<Self, String> {
        match config {
            RunConfig::Bnn(c) => Run::from_snapshot(c, snapshot, table, dataset, spec).map(Self::Bnn),
            RunConfig::Vae(c) => Run::from_snapshot(c, snapshot, table, dataset, spec).map(Self::Vae),
            RunConfig::Flow(c) => Run::from_snapshot(c, snapshot, table, dataset, spec).map(Self::Flow),
        }
    }

    /// The run with `kept`, the models kept on its way (see [`Run::with_kept`]).
    #[must_use]
    pub fn with_kept(self, kept: Vec<KeptModel>) -> Self {
        match self {
            Self::Bnn(run) => Self::Bnn(run.with_kept(kept)),
            Self::Vae(run) => Self::Vae(run.with_kept(kept)),
            Self::Flow(run) => Self::Flow(run.with_kept(kept)),
        }
    }

    /// The models kept on the run's way, oldest first.
    #[must_use]
    pub fn kept(&self) -> &[KeptModel] {
        match self {
            Self::Bnn(run) => &run.kept,
            Self::Vae(run) => &run.kept,
            Self::Flow(run) => &run.kept,
        }
    }

    /// Opens a run file of any lab (only the run files, not its data; see [`load_dataset`]).
    pub fn load(path: &Path) -> Result<Self, RunFileError> {
        let (record, weights) = read_run_file(path)?;
        match record.lab {
            Lab::Bnn => Run::from_record(path, record, &weights).map(Self::Bnn),
            Lab::Vae => Run::from_record(path, record, &weights).map(Self::Vae),
            Lab::Flow => Run::from_record(path, record, &weights).map(Self::Flow),
        }
    }

    /// The lab.
    #[must_use]
    pub fn lab(&self) -> Lab {
        match self {
            Self::Bnn(_) => Lab::Bnn,
            Self::Vae(_) => Lab::Vae,
            Self::Flow(_) => Lab::Flow,
        }
    }

    /// The run's settings.
    #[must_use]
    pub fn config(&self) -> RunConfig {
        match self {
            Self::Bnn(run) => RunConfig::Bnn(run.config.clone()),
            Self::Vae(run) => RunConfig::Vae(run.config.clone()),
            Self::Flow(run) => RunConfig::Flow(run.config.clone()),
        }
    }

    /// Saves the run (see [`Run::save`]).
    pub fn save(&self, path: &Path) -> Result<(), RunFileError> {
        self.inner().save(path)
    }

    /// Progress and metrics.
    #[must_use]
    pub fn snapshot(&self) -> &RunSnapshot {
        self.inner().snapshot()
    }

    /// The dataset.
    #[must_use]
    pub fn dataset(&self) -> &DatasetRecord {
        self.inner().dataset()
    }

    /// Column roles and split.
    #[must_use]
    pub fn spec(&self) -> &DataSpec {
        self.inner().spec()
    }

    /// Short name of the model.
    #[must_use]
    pub fn model_name(&self) -> String {
        self.inner().model_name()
    }

    /// The run's seed.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.inner().seed()
    }

    /// The copy of the model the worker published at the run's step.
    #[must_use]
    pub fn model_view(&self) -> ModelView {
        self.inner().model_view()
    }

    /// The run's data prepared as for training, checked against the model (see [`Run::prepare`]).
    pub fn prepare(&self, table: &Table) -> Result<Prepared, String> {
        self.inner().prepare(table)
    }

    /// A worker factory that shows the run as saved (see [`Run::replay_factory`]).
    #[must_use]
    pub fn replay_factory(&self) -> TrainerFactory {
        self.inner().replay_factory()
    }

    /// Figures recomputed from the parameters on the run's data (see [`SavedModel::evaluate`]).
    pub fn evaluate(&self, data: &Prepared) -> Result<Vec<(String, f64)>, TrainError> {
        self.inner().evaluate(data)
    }

    /// Why the run cannot be continued, or `None` when it can (see [`Run::why_not_continued`]).
    #[must_use]
    pub fn why_not_continued(&self) -> Option<String> {
        self.inner().why_not_continued()
    }

    /// The training state saved with the run, if any.
    #[must_use]
    pub fn state(&self) -> Option<&Arc<TrainState>> {
        self.inner().state()
    }

    /// A trainer that continues the run exactly for `add_epochs` more epochs (see [`Run::continued_trainer`]).
    pub fn continued_trainer(&self, data: &Arc<Prepared>, add_epochs: usize) -> Result<Box<dyn Trainer>, TrainError> {
        self.inner().continued_trainer(data, add_epochs)
    }

    /// The run's settings once continued for `add_epochs` more epochs.
    #[must_use]
    pub fn continued_config(&self, add_epochs: usize) -> RunConfig {
        match self {
            Self::Bnn(run) => RunConfig::Bnn(run.continued_config(add_epochs)),
            Self::Vae(run) => RunConfig::Vae(run.continued_config(add_epochs)),
            Self::Flow(run) => RunConfig::Flow(run.continued_config(add_epochs)),
        }
    }

    /// The run with the training state `state` (taken at its snapshot's step; see [`Run::with_state`]).
    pub fn with_state(self, state: Arc<TrainState>) -> Result<Self, String> {
        match self {
            Self::Bnn(run) => run.with_state(state).map(Self::Bnn),
            Self::Vae(run) => run.with_state(state).map(Self::Vae),
            Self::Flow(run) => run.with_state(state).map(Self::Flow),
        }
    }

    /// Trains the run's settings again from scratch (see [`Run::rerun`]).
    pub fn rerun(&self, data: &Arc<Prepared>, mut on_epoch: impl FnMut(usize)) -> Result<Self, TrainError> {
        self.inner().rerun(data, &mut on_epoch)
    }
}

// ---------------------------------------------------------------------------------------------------------
// A run opened with its data.

/// A run file opened with its data, ready to show.
#[derive(Clone, Debug)]
pub struct OpenedRun {
    /// The run file's path.
    pub path: PathBuf,
    /// The run.
    pub run: AnyRun,
    /// Its dataset.
    pub table: Table,
    /// How the dataset was loaded this time.
    pub request: LoadRequest,
    /// The dataset prepared as for training.
    pub prepared: Arc<Prepared>,
}

/// Opens a run file and its dataset and prepares the data, checking everything (for a background thread).
pub fn open_run(path: &Path) -> Result<OpenedRun, RunFileError> {
    let run = AnyRun::load(path)?;
    let (table, request) = load_dataset(path, run.dataset(), run.spec())?;
    let prepared =
        run.prepare(&table).map_err(|message| RunFileError::Dataset { file: path.display().to_string(), message })?;
    Ok(OpenedRun { path: path.to_owned(), run, table, request, prepared: Arc::new(prepared) })
}
