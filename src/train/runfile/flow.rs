//! The flow lab's runs: the layers of the flow (affine, coupling or masked autoregressive).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::tensors::{DenseShape, SavedModel, TensorReader, TensorWriter, read_mlp, write_mlp};
use crate::Lab;
use crate::compute::params::{FlowLayerParams, FlowParams, MlpParams};
use crate::data::prepare::Prepared;
use crate::models::flow::{FlowConfig, FlowTrainer, flow_report};
use crate::models::resume::TrainState;
use crate::train::{EpochRecord, ModelView, TrainError, Trainer};

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

    fn with_epochs(config: &FlowConfig, epochs: usize) -> FlowConfig {
        FlowConfig { epochs, ..config.clone() }
    }

    fn resumed_trainer(
        config: &FlowConfig,
        data: &Arc<Prepared>,
        state: &TrainState,
        history: Vec<EpochRecord>,
        total_epochs: usize,
        view: &ModelView,
    ) -> Result<Box<dyn Trainer>, TrainError> {
        let trainer = FlowTrainer::new(config.clone(), data)?;
        Ok(Box::new(trainer.resume(state, history, total_epochs, Some(view))?))
    }

    /// [`flow_report`]'s figures with the run's seed: what `train flow --json` printed for the run.
    fn evaluate(&self, config: &FlowConfig, data: &Prepared, _epochs: usize) -> Result<Vec<(String, f64)>, TrainError> {
        Ok(flow_report(self, data, config.seed)?.metrics())
    }
}
