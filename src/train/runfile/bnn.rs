//! The BNN lab's runs: the posterior now and after each recorded epoch.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::tensors::{SavedModel, TensorReader, TensorWriter};
use crate::Lab;
use crate::compute::Activation;
use crate::data::prepare::{OutputKind, Prepared};
use crate::models::bnn::{
    BnnConfig, BnnLayer, BnnParams, BnnTask, BnnTrainer, BnnView, Posterior, evaluation_metrics, train_subset,
};
use crate::models::resume::TrainState;
use crate::train::{EpochRecord, ModelView, TrainError, Trainer};

/// One BNN layer's layout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BnnLayerShape {
    /// Inputs.
    pub n_in: usize,
    /// Outputs.
    pub n_out: usize,
    /// Form of the posterior.
    pub posterior: Posterior,
    /// Activation of the outputs.
    pub activation: Activation,
    /// Whether the full scale matrix `[k, k]` is saved (full covariance only).
    pub scale_tril: bool,
}

/// A recorded epoch's posterior: the same layers, usually without full scales.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BnnHistoryShape {
    /// The epoch (0 is the initial state).
    pub epoch: usize,
    /// Per layer, whether its full scale matrix is saved.
    pub scale_tril: Vec<bool>,
}

/// The BNN's layout. Tensors: `layers.{i}.mean` and `layers.{i}.sd` `[k]`, `layers.{i}.scale_tril` `[k, k]`,
/// and the same under `history.{h}.` for each recorded epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BnnArchitecture {
    /// What the outputs mean.
    pub task: BnnTask,
    /// Prior standard deviation.
    pub prior_sd: f64,
    /// First layer first.
    pub layers: Vec<BnnLayerShape>,
    /// The recorded epochs, oldest first.
    pub history: Vec<BnnHistoryShape>,
}

fn write_bnn_layers(tensors: &mut TensorWriter, prefix: &str, params: &BnnParams) -> Result<Vec<bool>, String> {
    params
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let k = l.n_params();
            tensors.add(format!("{prefix}layers.{i}.mean"), vec![k], &l.mean)?;
            tensors.add(format!("{prefix}layers.{i}.sd"), vec![k], &l.sd)?;
            let full = !l.scale_tril.is_empty();
            if full {
                tensors.add(format!("{prefix}layers.{i}.scale_tril"), vec![k, k], &l.scale_tril)?;
            }
            Ok(full)
        })
        .collect()
}

fn read_bnn_layers(
    tensors: &mut TensorReader<'_>,
    prefix: &str,
    shapes: &[BnnLayerShape],
    full: &[bool],
) -> Result<Vec<BnnLayer>, String> {
    if full.len() != shapes.len() {
        return Err(format!("{prefix}: {} scale flags for {} layers", full.len(), shapes.len()));
    }
    shapes
        .iter()
        .zip(full)
        .enumerate()
        .map(|(i, (s, &full))| {
            let k = s.n_in.checked_mul(s.n_out).and_then(|w| w.checked_add(s.n_out)).ok_or("a layer is too large")?;
            let scale_tril = if full {
                k.checked_mul(k).ok_or("a scale matrix is too large")?;
                tensors.take(&format!("{prefix}layers.{i}.scale_tril"), &[k, k])?
            } else {
                Vec::new()
            };
            Ok(BnnLayer {
                n_in: s.n_in,
                n_out: s.n_out,
                posterior: s.posterior,
                mean: tensors.take(&format!("{prefix}layers.{i}.mean"), &[k])?,
                sd: tensors.take(&format!("{prefix}layers.{i}.sd"), &[k])?,
                scale_tril,
                activation: s.activation,
            })
        })
        .collect()
}

impl SavedModel for BnnView {
    const LAB: Lab = Lab::Bnn;
    type Config = BnnConfig;
    type Architecture = BnnArchitecture;

    fn seed(config: &BnnConfig) -> u64 {
        config.seed
    }

    fn model_name(&self, config: &BnnConfig) -> String {
        let head = match self.params.task {
            BnnTask::Classification { .. } => "softmax",
            BnnTask::Regression(head) => head.cli_name(),
        };
        format!("bnn-{}-{head}", config.posterior.cli_name())
    }

    fn write(&self, tensors: &mut TensorWriter) -> Result<BnnArchitecture, String> {
        let full = write_bnn_layers(tensors, "", &self.params)?;
        let layers = self
            .params
            .layers
            .iter()
            .zip(full)
            .map(|(l, scale_tril)| BnnLayerShape {
                n_in: l.n_in,
                n_out: l.n_out,
                posterior: l.posterior,
                activation: l.activation,
                scale_tril,
            })
            .collect::<Vec<_>>();
        let mut history = Vec::with_capacity(self.history.len());
        for (h, (epoch, params)) in self.history.iter().enumerate() {
            let same = params.task == self.params.task
                && params.prior_sd.to_bits() == self.params.prior_sd.to_bits()
                && params.layers.len() == layers.len()
                && params.layers.iter().zip(&layers).all(|(l, s)| {
                    (l.n_in, l.n_out, l.posterior, l.activation) == (s.n_in, s.n_out, s.posterior, s.activation)
                });
            if !same {
                return Err(format!("the posterior recorded at epoch {epoch} has other layers than the model"));
            }
            let scale_tril = write_bnn_layers(tensors, &format!("history.{h}."), params)?;
            history.push(BnnHistoryShape { epoch: *epoch, scale_tril });
        }
        Ok(BnnArchitecture { task: self.params.task, prior_sd: self.params.prior_sd, layers, history })
    }

    fn read(arch: &BnnArchitecture, tensors: &mut TensorReader<'_>) -> Result<Self, String> {
        let Some(first) = arch.layers.first() else {
            return Err("the network has no layers".into());
        };
        if first.n_in == 0 || arch.layers.iter().any(|l| l.n_out == 0) {
            return Err("a layer has no inputs or no outputs".into());
        }
        for (i, pair) in arch.layers.windows(2).enumerate() {
            if pair[0].n_out != pair[1].n_in {
                return Err(format!(
                    "layer {} gives {} outputs but layer {} takes {}",
                    i + 1,
                    pair[0].n_out,
                    i + 2,
                    pair[1].n_in
                ));
            }
        }
        let n_out = arch.layers.last().map_or(0, |l| l.n_out);
        if n_out != arch.task.n_out() {
            return Err(format!("the last layer gives {n_out} outputs; the task needs {}", arch.task.n_out()));
        }
        if arch.layers.iter().any(|l| l.scale_tril && l.posterior != Posterior::FullCovariance) {
            return Err("only a full-covariance layer has a scale matrix".into());
        }
        let full: Vec<bool> = arch.layers.iter().map(|l| l.scale_tril).collect();
        let layers = read_bnn_layers(tensors, "", &arch.layers, &full)?;
        let params = BnnParams { layers, task: arch.task, prior_sd: arch.prior_sd };
        let mut history = Vec::with_capacity(arch.history.len());
        for (h, entry) in arch.history.iter().enumerate() {
            let layers = read_bnn_layers(tensors, &format!("history.{h}."), &arch.layers, &entry.scale_tril)?;
            history.push((entry.epoch, Arc::new(BnnParams { layers, task: arch.task, prior_sd: arch.prior_sd })));
        }
        Ok(Self { params: Arc::new(params), history: Arc::new(history) })
    }

    fn check_data(&self, data: &Prepared) -> Result<(), String> {
        if self.params.n_in() != data.n_features() {
            return Err(format!(
                "the network takes {} features but the data has {}",
                self.params.n_in(),
                data.n_features()
            ));
        }
        let fits = match (&data.output, self.params.task) {
            (Some((_, OutputKind::Regression)), BnnTask::Regression(_)) => true,
            (Some((_, OutputKind::Classes { classes, .. })), BnnTask::Classification { n_classes }) => {
                classes.len().max(2) == n_classes
            }
            _ => false,
        };
        if fits { Ok(()) } else { Err("the data's target or label does not match the network's outputs".into()) }
    }

    fn from_model_view(view: &ModelView) -> Option<Self> {
        match view {
            ModelView::Bnn { view, .. } => Some((**view).clone()),
            _ => None,
        }
    }

    fn model_view(&self, step: u64) -> ModelView {
        ModelView::Bnn { step, view: Arc::new(self.clone()) }
    }

    fn trainer(config: &BnnConfig, data: &Arc<Prepared>) -> Result<Box<dyn Trainer>, TrainError> {
        Ok(Box::new(BnnTrainer::new(config.clone(), data)?))
    }

    fn with_epochs(config: &BnnConfig, epochs: usize) -> BnnConfig {
        BnnConfig { epochs, ..config.clone() }
    }

    fn resumed_trainer(
        config: &BnnConfig,
        data: &Arc<Prepared>,
        state: &TrainState,
        history: Vec<EpochRecord>,
        total_epochs: usize,
        view: &ModelView,
    ) -> Result<Box<dyn Trainer>, TrainError> {
        let trainer = BnnTrainer::new(config.clone(), data)?;
        Ok(Box::new(trainer.resume(state, history, total_epochs, Some(view))?))
    }

    /// The epoch's evaluation of [`BnnTrainer`]: Monte Carlo predictions of the rows in use (at most 2,000, at
    /// most 30 samples) and of the test rows, seeded by `seed + epoch`, and the mean predictor's test RMSE.
    fn evaluate(&self, config: &BnnConfig, data: &Prepared, epochs: usize) -> Result<Vec<(String, f64)>, TrainError> {
        let used = train_subset(data.n_train(), config.train_fraction, config.seed);
        Ok(evaluation_metrics(&self.params, config, data, &used, epochs))
    }
}
