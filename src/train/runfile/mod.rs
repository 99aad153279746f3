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
//! - `format`: the run file's records, and reading a run file with every check ([`read_run_file`]);
//! - `files`: the weights file's name, atomic writes ([`write_atomically`]) and the files' sha256;
//! - `dataset`: the run's data, identified by [`table_sha256`] and loaded again ([`load_dataset`]);
//! - `tensors`: [`SavedModel`], what a lab implements, and the named tensors its parameters become;
//!
//! A lab takes part by implementing [`SavedModel`] for its plain-data parameters, and adding one variant to
//! [`RunConfig`] and to [`AnyRun`] (with their match arms). Used by `cli` and `ui`.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use safetensors::SafeTensors;
use serde::{Deserialize, Serialize};

use crate::Lab;
use crate::compute::Activation;
use crate::compute::params::{FlowLayerParams, FlowParams, MlpParams};
use crate::data::prepare::{DataSpec, OutputKind, Prepared, image_side, prepare, split_counts};
use crate::data::{LoadRequest, Table};
use crate::models::bnn::{
    BnnConfig, BnnLayer, BnnParams, BnnTask, BnnTrainer, BnnView, Posterior, evaluation_metrics, train_subset,
};
use crate::models::conv::{ConvGeometry, ConvKind, ConvLayerParams, ConvVaeParams, NormParams};
use crate::models::flow::{FlowConfig, FlowTrainer, flow_report};
use crate::models::vae::{Likelihood, VaeConfig, VaeNetworks, VaeParams, VaeTrainer, VaeView};
use crate::train::{EpochRecord, ModelView, RunSnapshot, TrainError, Trainer, TrainerFactory};

mod dataset;
mod files;
mod format;
mod tensors;

pub use dataset::{load_dataset, table_sha256};
pub use files::{WEIGHTS_EXTENSION, sha256_hex, weights_path_for, write_atomically};
use files::{pending_path, sync_folder};
use format::parse_run_file;
pub use format::{
    ColumnRecord, DatasetRecord, FORMAT_NAME, FORMAT_VERSION, JsonF64, MetricList, ProgressRecord, RunFile,
    RunFileError, SavedEpoch, SplitRecord, WeightsRecord, read_run_file,
};
pub use tensors::{DenseShape, SavedModel, TensorReader, TensorWriter, read_mlp, write_mlp};
use tensors::{read_dense, write_dense};

// ---------------------------------------------------------------------------------------------------------
// The BNN lab: the posterior now and after each recorded epoch.

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
            (Some((_, OutputKind::Classes { classes })), BnnTask::Classification { n_classes }) => {
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

    /// The epoch's evaluation of [`BnnTrainer`]: Monte Carlo predictions of the rows in use (at most 2,000, at
    /// most 30 samples) and of the test rows, seeded by `seed + epoch`, and the mean predictor's test RMSE.
    fn evaluate(&self, config: &BnnConfig, data: &Prepared, epochs: usize) -> Result<Vec<(String, f64)>, TrainError> {
        let used = train_subset(data.n_train(), config.train_fraction, config.seed);
        Ok(evaluation_metrics(&self.params, config, data, &used, epochs))
    }
}

// ---------------------------------------------------------------------------------------------------------
// The flow lab.

/// One flow layer's layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FlowLayerShape {
    /// Tensors `layers.{k}.shift` and `layers.{k}.log_scale` `[dim]`.
    Affine,
    /// Tensors `layers.{k}.mask` `[dim]`, `layers.{k}.scale_net.{j}.*` and `layers.{k}.shift_net.{j}.*`.
    Coupling {
        /// The scale network's layers.
        scale_net: Vec<DenseShape>,
        /// The shift network's layers.
        shift_net: Vec<DenseShape>,
    },
    /// Tensors `layers.{k}.made.{j}.*` (the masks already applied to the weights).
    Maf {
        /// The masked network's layers.
        made: Vec<DenseShape>,
    },
}

/// The flow's layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowArchitecture {
    /// Dimension of the points.
    pub dim: usize,
    /// Layer 1 first.
    pub layers: Vec<FlowLayerShape>,
}

impl SavedModel for FlowParams {
    const LAB: Lab = Lab::Flow;
    type Config = FlowConfig;
    type Architecture = FlowArchitecture;

    fn seed(config: &FlowConfig) -> u64 {
        config.seed
    }

    fn model_name(&self, config: &FlowConfig) -> String {
        config.kind.cli_name().to_owned()
    }

    fn write(&self, tensors: &mut TensorWriter) -> Result<FlowArchitecture, String> {
        let layers = self
            .layers
            .iter()
            .enumerate()
            .map(|(k, layer)| match layer {
                FlowLayerParams::Affine { shift, log_scale } => {
                    tensors.add(format!("layers.{k}.shift"), vec![shift.len()], shift)?;
                    tensors.add(format!("layers.{k}.log_scale"), vec![log_scale.len()], log_scale)?;
                    Ok(FlowLayerShape::Affine)
                }
                FlowLayerParams::Coupling { mask, scale_net, shift_net } => {
                    tensors.add(format!("layers.{k}.mask"), vec![mask.len()], mask)?;
                    Ok(FlowLayerShape::Coupling {
                        scale_net: write_mlp(tensors, &format!("layers.{k}.scale_net"), scale_net)?,
                        shift_net: write_mlp(tensors, &format!("layers.{k}.shift_net"), shift_net)?,
                    })
                }
                FlowLayerParams::Maf { made } => {
                    Ok(FlowLayerShape::Maf { made: write_mlp(tensors, &format!("layers.{k}.made"), made)? })
                }
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(FlowArchitecture { dim: self.dim, layers })
    }

    fn read(arch: &FlowArchitecture, tensors: &mut TensorReader<'_>) -> Result<Self, String> {
        let dim = arch.dim;
        if dim == 0 {
            return Err("the flow has dimension 0".into());
        }
        // Every network must map `dim` inputs to `n_out` outputs, or the views would index out of range.
        let ends = |net: &MlpParams, n_out: usize, what: &str| -> Result<(), String> {
            if net.layers.is_empty() || net.n_in() != dim || net.n_out() != n_out {
                Err(format!("{what} maps {} to {} values; the flow needs {dim} to {n_out}", net.n_in(), net.n_out()))
            } else {
                Ok(())
            }
        };
        let layers = arch
            .layers
            .iter()
            .enumerate()
            .map(|(k, shape)| match shape {
                FlowLayerShape::Affine => Ok(FlowLayerParams::Affine {
                    shift: tensors.take(&format!("layers.{k}.shift"), &[dim])?,
                    log_scale: tensors.take(&format!("layers.{k}.log_scale"), &[dim])?,
                }),
                FlowLayerShape::Coupling { scale_net, shift_net } => {
                    let mask = tensors.take(&format!("layers.{k}.mask"), &[dim])?;
                    let scale_net = read_mlp(tensors, &format!("layers.{k}.scale_net"), scale_net)?;
                    let shift_net = read_mlp(tensors, &format!("layers.{k}.shift_net"), shift_net)?;
                    ends(&scale_net, dim, &format!("layer {} scale net", k + 1))?;
                    ends(&shift_net, dim, &format!("layer {} shift net", k + 1))?;
                    Ok(FlowLayerParams::Coupling { mask, scale_net, shift_net })
                }
                FlowLayerShape::Maf { made } => {
                    let made = read_mlp(tensors, &format!("layers.{k}.made"), made)?;
                    ends(&made, 2 * dim, &format!("layer {} MADE", k + 1))?;
                    Ok(FlowLayerParams::Maf { made })
                }
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self { dim, layers })
    }

    fn check_data(&self, data: &Prepared) -> Result<(), String> {
        if self.dim == data.n_features() {
            Ok(())
        } else {
            Err(format!("the flow models {} columns but the data has {} features", self.dim, data.n_features()))
        }
    }

    fn from_model_view(view: &ModelView) -> Option<Self> {
        match view {
            ModelView::Flow { params, .. } => Some((**params).clone()),
            _ => None,
        }
    }

    fn model_view(&self, step: u64) -> ModelView {
        ModelView::Flow { step, params: Arc::new(self.clone()) }
    }

    fn trainer(config: &FlowConfig, data: &Arc<Prepared>) -> Result<Box<dyn Trainer>, TrainError> {
        Ok(Box::new(FlowTrainer::new(config.clone(), data)?))
    }

    /// [`flow_report`]'s figures with the run's seed: what `train flow --json` printed for the run.
    fn evaluate(&self, config: &FlowConfig, data: &Prepared, _epochs: usize) -> Result<Vec<(String, f64)>, TrainError> {
        let r = flow_report(self, data, config.seed)?;
        Ok(vec![
            ("train_nll".to_owned(), r.train_nll),
            ("heldout_nll".to_owned(), r.heldout_nll),
            ("grid_mass".to_owned(), r.grid_mass),
            ("roundtrip_max_err".to_owned(), r.roundtrip_max_err),
            ("energy_distance".to_owned(), r.energy_distance),
            ("energy_distance_train_vs_heldout".to_owned(), r.energy_distance_train_vs_heldout),
        ])
    }
}

// ---------------------------------------------------------------------------------------------------------
// The VAE lab: the encoder and decoder of either architecture (the batch normalisation's running averages
// with them: evaluation uses them), and the reconstructions recorded after each epoch.

/// A size in a convolutional layout larger than this is not one of ours (and would overflow the tensors' sizes).
const MAX_CONV_SIZE: usize = 1 << 16;

/// One convolutional layer's layout. Tensors `{prefix}.{i}.weights` (`[k² · c_in, c_out]` for a convolution,
/// `[c_in, k² · c_out]` for a transposed one), `{prefix}.{i}.biases` `[c_out]` if the layer has biases, and with
/// batch normalisation `{prefix}.{i}.norm.gamma`, `.norm.beta`, `.norm.running_mean` and
/// `.norm.running_variance` `[c_out]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvLayerShape {
    /// Convolution (big map -> small) or transposed convolution (small -> big).
    pub kind: ConvKind,
    /// Map sizes, kernel, stride and padding.
    pub geometry: ConvGeometry,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Whether the layer adds biases (a layer that batch normalisation follows has none).
    pub biases: bool,
    /// Whether batch normalisation follows the convolution.
    pub norm: bool,
    /// Applied last.
    pub activation: Activation,
}

/// The VAE's networks' layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "arch", rename_all = "snake_case")]
pub enum VaeNetworksShape {
    /// Dense layers: tensors `encoder.{j}.*` (input -> `[mu, log sigma²]`) and `decoder.{j}.*` (latent -> input).
    Mlp {
        /// The encoder's layers.
        encoder: Vec<DenseShape>,
        /// The decoder's layers.
        decoder: Vec<DenseShape>,
    },
    /// The convolutional VAE: tensors `encoder.{i}.*`, `to_latent.*`, `from_latent.*` and `decoder.{i}.*`.
    Conv {
        /// Side of the square images.
        side: usize,
        /// The encoder's convolutions, first first.
        encoder: Vec<ConvLayerShape>,
        /// Flattened last feature map -> `[mu, log sigma²]`.
        to_latent: DenseShape,
        /// Latent -> the decoder's first feature map.
        from_latent: DenseShape,
        /// The decoder's transposed convolutions, first first.
        decoder: Vec<ConvLayerShape>,
    },
}

/// The VAE's layout. Besides the networks' tensors: `originals` `[recorded_inputs, n_in]` (the fixed test
/// inputs) and `reconstructions.{h}` `[recorded_inputs, n_in]` (their reconstructions after the `h`-th recorded
/// epoch).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaeArchitecture {
    /// Latent dimension.
    pub latent: usize,
    /// `p(x | z)`.
    pub likelihood: Likelihood,
    /// Side of the square image an input forms, if it is one.
    pub image_side: Option<usize>,
    /// The encoder and decoder.
    pub networks: VaeNetworksShape,
    /// Test inputs whose reconstructions were recorded.
    pub recorded_inputs: usize,
    /// The epochs after which they were recorded (0 is the untrained model), oldest first.
    pub reconstruction_epochs: Vec<usize>,
}

/// The shape of a convolutional layer's weights (see [`ConvLayerParams::weights`]).
fn conv_weights_shape(
    kind: ConvKind,
    geometry: &ConvGeometry,
    c_in: usize,
    c_out: usize,
) -> Result<[usize; 2], String> {
    let too_large = || "a convolution is too large".to_owned();
    let k2 = geometry.kernel.checked_mul(geometry.kernel).ok_or_else(too_large)?;
    Ok(match kind {
        ConvKind::Conv => [k2.checked_mul(c_in).ok_or_else(too_large)?, c_out],
        ConvKind::Transposed => [c_in, k2.checked_mul(c_out).ok_or_else(too_large)?],
    })
}

fn write_conv_layers(
    tensors: &mut TensorWriter,
    prefix: &str,
    layers: &[ConvLayerParams],
) -> Result<Vec<ConvLayerShape>, String> {
    layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let shape = conv_weights_shape(l.kind, &l.geometry, l.c_in, l.c_out)?;
            tensors.add(format!("{prefix}.{i}.weights"), shape.to_vec(), &l.weights)?;
            let biases = !l.biases.is_empty();
            if biases {
                tensors.add(format!("{prefix}.{i}.biases"), vec![l.c_out], &l.biases)?;
            }
            if let Some(n) = &l.norm {
                tensors.add(format!("{prefix}.{i}.norm.gamma"), vec![l.c_out], &n.gamma)?;
                tensors.add(format!("{prefix}.{i}.norm.beta"), vec![l.c_out], &n.beta)?;
                tensors.add(format!("{prefix}.{i}.norm.running_mean"), vec![l.c_out], &n.running_mean)?;
                tensors.add(format!("{prefix}.{i}.norm.running_variance"), vec![l.c_out], &n.running_variance)?;
            }
            Ok(ConvLayerShape {
                kind: l.kind,
                geometry: l.geometry,
                c_in: l.c_in,
                c_out: l.c_out,
                biases,
                norm: l.norm.is_some(),
                activation: l.activation,
            })
        })
        .collect()
}

fn read_conv_layers(
    tensors: &mut TensorReader<'_>,
    prefix: &str,
    shapes: &[ConvLayerShape],
) -> Result<Vec<ConvLayerParams>, String> {
    shapes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let shape = conv_weights_shape(s.kind, &s.geometry, s.c_in, s.c_out)?;
            let c = [s.c_out];
            let norm = if s.norm {
                Some(NormParams {
                    gamma: tensors.take(&format!("{prefix}.{i}.norm.gamma"), &c)?,
                    beta: tensors.take(&format!("{prefix}.{i}.norm.beta"), &c)?,
                    running_mean: tensors.take(&format!("{prefix}.{i}.norm.running_mean"), &c)?,
                    running_variance: tensors.take(&format!("{prefix}.{i}.norm.running_variance"), &c)?,
                })
            } else {
                None
            };
            Ok(ConvLayerParams {
                kind: s.kind,
                geometry: s.geometry,
                c_in: s.c_in,
                c_out: s.c_out,
                weights: tensors.take(&format!("{prefix}.{i}.weights"), &shape)?,
                biases: if s.biases { tensors.take(&format!("{prefix}.{i}.biases"), &c)? } else { Vec::new() },
                norm,
                activation: s.activation,
            })
        })
        .collect()
}

/// Checks that the convolutional networks fit together: `side × side` images of one channel through the
/// encoder's convolutions to `[mu, log sigma²]`, and the latent through the decoder back to one channel of
/// `side × side` (so that every reshape of the forward passes holds).
fn check_conv_layout(
    side: usize,
    latent: usize,
    encoder: &[ConvLayerShape],
    to_latent: &DenseShape,
    from_latent: &DenseShape,
    decoder: &[ConvLayerShape],
) -> Result<(), String> {
    if side == 0 || side > MAX_CONV_SIZE {
        return Err(format!("the convolutional VAE's image side {side} is out of range"));
    }
    if encoder.is_empty() || decoder.is_empty() {
        return Err("the convolutional VAE needs convolutions in the encoder and in the decoder".into());
    }
    let parts = encoder.iter().map(|l| ("encoder", l)).chain(decoder.iter().map(|l| ("decoder", l)));
    for (i, (part, l)) in parts.enumerate() {
        let g = &l.geometry;
        let sizes = [g.big.0, g.big.1, g.small.0, g.small.1, g.kernel, g.stride, g.pad.0, g.pad.1, l.c_in, l.c_out];
        let n = if i < encoder.len() { i + 1 } else { i + 1 - encoder.len() };
        if sizes.iter().any(|&v| v > MAX_CONV_SIZE) || [g.kernel, g.stride, l.c_in, l.c_out].contains(&0) {
            return Err(format!("{part} convolution {n} has sizes out of range"));
        }
        if *g != ConvGeometry::same(g.big, g.kernel, g.stride) {
            return Err(format!("{part} convolution {n} has a geometry that is not \"same\" padding"));
        }
        let expected = if part == "encoder" { ConvKind::Conv } else { ConvKind::Transposed };
        if l.kind != expected {
            return Err(format!("{part} convolution {n} is a {:?} layer; the {part} has {expected:?} layers", l.kind));
        }
    }
    let describe = |map: (usize, usize), c: usize| format!("{}x{}x{c}", map.0, map.1);
    let (mut map, mut c) = ((side, side), 1);
    for (i, l) in encoder.iter().enumerate() {
        if l.geometry.big != map || l.c_in != c {
            return Err(format!(
                "encoder convolution {} takes {} maps but gets {}",
                i + 1,
                describe(l.geometry.big, l.c_in),
                describe(map, c)
            ));
        }
        (map, c) = (l.geometry.small, l.c_out);
    }
    let flat = map.0 * map.1 * c;
    let twice = latent.checked_mul(2).ok_or("the latent dimension is too large")?;
    if to_latent.n_in != flat || to_latent.n_out != twice {
        return Err(format!(
            "the encoder's dense layer maps {} to {} values; the network needs {flat} to {twice}",
            to_latent.n_in, to_latent.n_out
        ));
    }
    let first = &decoder[0];
    let (mut map, mut c) = (first.geometry.small, first.c_in);
    if from_latent.n_in != latent || from_latent.n_out != map.0 * map.1 * c {
        return Err(format!(
            "the decoder's dense layer maps {} to {} values; the network needs {latent} to {}",
            from_latent.n_in,
            from_latent.n_out,
            map.0 * map.1 * c
        ));
    }
    for (i, l) in decoder.iter().enumerate() {
        if l.geometry.small != map || l.c_in != c {
            return Err(format!(
                "decoder convolution {} takes {} maps but gets {}",
                i + 1,
                describe(l.geometry.small, l.c_in),
                describe(map, c)
            ));
        }
        (map, c) = (l.geometry.big, l.c_out);
    }
    if map != (side, side) || c != 1 {
        return Err(format!("the decoder gives {} maps, not the {side}x{side}x1 images", describe(map, c)));
    }
    Ok(())
}

impl SavedModel for VaeView {
    const LAB: Lab = Lab::Vae;
    type Config = VaeConfig;
    type Architecture = VaeArchitecture;

    fn seed(config: &VaeConfig) -> u64 {
        config.seed
    }

    fn model_name(&self, _config: &VaeConfig) -> String {
        format!("vae-{}-{}", self.params.arch().cli_name(), self.params.likelihood.cli_name())
    }

    fn write(&self, tensors: &mut TensorWriter) -> Result<VaeArchitecture, String> {
        let p = &self.params;
        let networks = match &p.networks {
            VaeNetworks::Mlp { encoder, decoder } => VaeNetworksShape::Mlp {
                encoder: write_mlp(tensors, "encoder", encoder)?,
                decoder: write_mlp(tensors, "decoder", decoder)?,
            },
            VaeNetworks::Conv(c) => {
                if c.latent != p.latent {
                    return Err(format!("the networks' latent dimension {} is not the model's {}", c.latent, p.latent));
                }
                VaeNetworksShape::Conv {
                    side: c.side,
                    encoder: write_conv_layers(tensors, "encoder", &c.encoder)?,
                    to_latent: write_dense(tensors, "to_latent", &c.to_latent)?,
                    from_latent: write_dense(tensors, "from_latent", &c.from_latent)?,
                    decoder: write_conv_layers(tensors, "decoder", &c.decoder)?,
                }
            }
        };
        let n_in = p.n_in().max(1);
        let recorded_inputs = self.originals.len() / n_in;
        tensors.add("originals".into(), vec![recorded_inputs, n_in], &self.originals)?;
        for (h, (epoch, images)) in self.reconstructions.iter().enumerate() {
            tensors
                .add(format!("reconstructions.{h}"), vec![recorded_inputs, n_in], images)
                .map_err(|e| format!("the reconstructions after epoch {epoch}: {e}"))?;
        }
        Ok(VaeArchitecture {
            latent: p.latent,
            likelihood: p.likelihood,
            image_side: p.image_side,
            networks,
            recorded_inputs,
            reconstruction_epochs: self.reconstructions.iter().map(|(epoch, _)| *epoch).collect(),
        })
    }

    fn read(arch: &VaeArchitecture, tensors: &mut TensorReader<'_>) -> Result<Self, String> {
        let latent = arch.latent;
        if latent == 0 {
            return Err("the latent dimension is 0".into());
        }
        let twice = latent.checked_mul(2).ok_or("the latent dimension is too large")?;
        let networks = match &arch.networks {
            VaeNetworksShape::Mlp { encoder, decoder } => {
                if encoder.is_empty() || decoder.is_empty() {
                    return Err("the encoder and the decoder need at least one layer each".into());
                }
                if encoder.iter().chain(decoder).any(|l| l.n_in == 0 || l.n_out == 0) {
                    return Err("a layer has no inputs or no outputs".into());
                }
                let encoder = read_mlp(tensors, "encoder", encoder)?;
                let decoder = read_mlp(tensors, "decoder", decoder)?;
                if encoder.n_out() != twice {
                    return Err(format!(
                        "the encoder gives {} values; a latent dimension of {latent} needs {twice} (means and \
                         log-variances)",
                        encoder.n_out()
                    ));
                }
                if decoder.n_in() != latent || decoder.n_out() != encoder.n_in() {
                    return Err(format!(
                        "the decoder maps {} to {} values; the model needs {latent} to {}",
                        decoder.n_in(),
                        decoder.n_out(),
                        encoder.n_in()
                    ));
                }
                VaeNetworks::Mlp { encoder, decoder }
            }
            VaeNetworksShape::Conv { side, encoder, to_latent, from_latent, decoder } => {
                check_conv_layout(*side, latent, encoder, to_latent, from_latent, decoder)?;
                if arch.image_side != Some(*side) {
                    return Err(format!(
                        "the convolutional VAE takes {side}x{side} images but the model's image side is {}",
                        arch.image_side.map_or_else(|| "missing".to_owned(), |s| s.to_string())
                    ));
                }
                VaeNetworks::Conv(ConvVaeParams {
                    side: *side,
                    latent,
                    encoder: read_conv_layers(tensors, "encoder", encoder)?,
                    to_latent: read_dense(tensors, "to_latent", to_latent)?,
                    from_latent: read_dense(tensors, "from_latent", from_latent)?,
                    decoder: read_conv_layers(tensors, "decoder", decoder)?,
                })
            }
        };
        let params = VaeParams { networks, latent, likelihood: arch.likelihood, image_side: arch.image_side };
        let n_in = params.n_in();
        if let Some(side) = arch.image_side
            && (side < 2 || side.checked_mul(side) != Some(n_in))
        {
            return Err(format!("{n_in} values per input do not form {side}x{side} images"));
        }
        let shape = [arch.recorded_inputs, n_in];
        let originals = tensors.take("originals", &shape)?;
        let reconstructions = arch
            .reconstruction_epochs
            .iter()
            .enumerate()
            .map(|(h, &epoch)| Ok((epoch, tensors.take(&format!("reconstructions.{h}"), &shape)?)))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self {
            params: Arc::new(params),
            originals: Arc::new(originals),
            reconstructions: Arc::new(reconstructions),
        })
    }

    fn check_data(&self, data: &Prepared) -> Result<(), String> {
        let (n_in, d) = (self.params.n_in(), data.n_features());
        if n_in != d {
            return Err(format!("the VAE takes {n_in} values per input but the data has {d} features"));
        }
        if let Some(side) = self.params.image_side
            && image_side(d) != Some(side)
        {
            return Err(format!("the VAE takes {side}x{side} images but the data's {d} features are not"));
        }
        Ok(())
    }

    fn from_model_view(view: &ModelView) -> Option<Self> {
        match view {
            ModelView::Vae { view, .. } => Some((**view).clone()),
            _ => None,
        }
    }

    fn model_view(&self, step: u64) -> ModelView {
        ModelView::Vae { step, view: Arc::new(self.clone()) }
    }

    fn trainer(config: &VaeConfig, data: &Arc<Prepared>) -> Result<Box<dyn Trainer>, TrainError> {
        Ok(Box::new(VaeTrainer::new(config.clone(), data)?))
    }

    /// The test figures of [`VaeTrainer`]'s epoch records (negative ELBO, reconstruction and KL terms with the
    /// same seeded latent draws, and the 5-NN accuracy of the latent means when the data has labels), computed
    /// by the trainer with the loaded networks in place of fresh ones.
    fn evaluate(&self, config: &VaeConfig, data: &Prepared, _epochs: usize) -> Result<Vec<(String, f64)>, TrainError> {
        let data = Arc::new(data.clone());
        let trainer = VaeTrainer::with_params(config.clone(), &data, &self.params)?;
        let test = trainer.test_elbo()?;
        let mut metrics = vec![
            ("test_neg_elbo".to_owned(), test.neg_elbo),
            ("test_recon".to_owned(), test.recon),
            ("test_kl".to_owned(), test.kl),
        ];
        if let Some(accuracy) = trainer.knn5_accuracy()? {
            metrics.push(("knn5_accuracy".to_owned(), accuracy));
        }
        Ok(metrics)
    }
}

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
        Ok(Self { config, model, snapshot, dataset, column_names, spec })
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

        // The weights under a pending name, then the run file (the switch from the old run to the new one),
        // then the weights under their own name.
        let pending = pending_path(&weights_path);
        write_atomically(&pending, |f| f.write_all(&weights))
            .map_err(|e| RunFileError::Write { file: pending.display().to_string(), message: e.to_string() })?;
        if let Err(e) = write_atomically(path, |f| f.write_all(&json)) {
            let _ = std::fs::remove_file(&pending);
            return Err(fail(e.to_string()));
        }
        std::fs::rename(&pending, &weights_path).map_err(|e| RunFileError::Write {
            file: weights_path.display().to_string(),
            message: format!("{e}; the weights were left in {}, where opening the run finds them", pending.display()),
        })?;
        sync_folder(&weights_path);
        Ok(())
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
        let config: M::Config =
            serde_json::from_value(record.config).map_err(|e| corrupt(format!("the settings: {e}")))?;
        let architecture: M::Architecture =
            serde_json::from_value(record.architecture).map_err(|e| corrupt(format!("the architecture: {e}")))?;
        let tensors = SafeTensors::deserialize(weights).map_err(|e| corrupt(format!("the weights file: {e:?}")))?;
        let mut reader = TensorReader { tensors, taken: HashSet::new() };
        let model = M::read(&architecture, &mut reader).map_err(|e| corrupt(format!("the weights: {e}")))?;
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
        };
        let column_names = record.columns.into_iter().map(|c| c.name).collect();
        Ok(Self { config, model, snapshot, dataset: record.dataset, column_names, spec })
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

    /// A factory for a worker that shows this run as it was saved: finished, with its metrics and model.
    #[must_use]
    pub fn replay_factory(&self) -> TrainerFactory {
        let (snapshot, view) = (self.snapshot.clone(), self.model_view());
        Box::new(move || {
            Ok(Box::new(ReplayTrainer { snapshot: snapshot.clone(), view: view.clone() }) as Box<dyn Trainer>)
        })
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
        Ok(Self { model, snapshot: trainer.snapshot(), ..self.clone() })
    }
}

/// A finished run played back to the worker: it never trains, and shows the saved metrics and model.
struct ReplayTrainer {
    snapshot: RunSnapshot,
    view: ModelView,
}

impl Trainer for ReplayTrainer {
    fn step(&mut self) -> Result<(), TrainError> {
        Ok(())
    }

    fn finished(&self) -> bool {
        true
    }

    fn snapshot(&self) -> RunSnapshot {
        self.snapshot.clone()
    }

    fn set_learning_rate(&mut self, learning_rate: f64) {
        self.snapshot.learning_rate = learning_rate;
    }

    fn epochs_done(&self) -> usize {
        self.snapshot.history.len()
    }

    fn model_view(&self) -> Option<ModelView> {
        Some(self.view.clone())
    }
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
        let dataset = DatasetRecord::of(table, request);
        match config {
            RunConfig::Bnn(c) => Run::from_snapshot(c, snapshot, table, dataset, spec).map(Self::Bnn),
            RunConfig::Vae(c) => Run::from_snapshot(c, snapshot, table, dataset, spec).map(Self::Vae),
            RunConfig::Flow(c) => Run::from_snapshot(c, snapshot, table, dataset, spec).map(Self::Flow),
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
    let (table, request) = load_dataset(path, run.dataset())?;
    let prepared =
        run.prepare(&table).map_err(|message| RunFileError::Dataset { file: path.display().to_string(), message })?;
    Ok(OpenedRun { path: path.to_owned(), run, table, request, prepared: Arc::new(prepared) })
}
