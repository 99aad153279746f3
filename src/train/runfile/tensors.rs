//! What a lab implements for its runs to be saved ([`SavedModel`]), and the named f32 tensors its parameters
//! become: the writer, the reader that checks every name and shape, and the dense layers every lab uses.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use safetensors::{Dtype, SafeTensors};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::format::{FORMAT_NAME, FORMAT_VERSION};
use crate::Lab;
use crate::compute::Activation;
use crate::compute::params::{DenseParams, MlpParams};
use crate::data::prepare::Prepared;
use crate::models::resume::TrainState;
use crate::train::{EpochRecord, ModelView, TrainError, Trainer};

/// A lab's model as plain data that goes into a run file and comes back bit for bit.
///
/// To add a lab: implement this for its plain-data model (what its [`ModelView`] carries), then add a variant to
/// [`RunConfig`](super::RunConfig) and [`AnyRun`](super::AnyRun) and the match arms that go with them.
pub trait SavedModel: Sized + Clone + Send + Sync + 'static {
    /// The lab whose model this is.
    const LAB: Lab;
    /// The lab's settings: every hyperparameter, the seed among them.
    type Config: Clone + std::fmt::Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// Everything about the parameters but their values, saved as JSON.
    type Architecture: Serialize + DeserializeOwned;

    /// The seed in `config`.
    fn seed(config: &Self::Config) -> u64;
    /// Short name of the model for the run file and the command line.
    fn model_name(&self, config: &Self::Config) -> String;
    /// Adds every parameter to `tensors` and returns the layout that [`Self::read`] needs.
    fn write(&self, tensors: &mut TensorWriter) -> Result<Self::Architecture, String>;
    /// Rebuilds the model from [`Self::write`]'s layout and tensors, checking every name and shape.
    fn read(architecture: &Self::Architecture, tensors: &mut TensorReader<'_>) -> Result<Self, String>;
    /// Whether the model fits the data (number of inputs, kind of output).
    fn check_data(&self, data: &Prepared) -> Result<(), String>;
    /// The model inside a copy the worker published, if it is this lab's.
    fn from_model_view(view: &ModelView) -> Option<Self>;
    /// The copy the worker would publish at `step`.
    fn model_view(&self, step: u64) -> ModelView;
    /// A fresh, untrained model for `config` on `data` (training it again from scratch).
    fn trainer(config: &Self::Config, data: &Arc<Prepared>) -> Result<Box<dyn Trainer>, TrainError>;
    /// `config` set to last `epochs` epochs.
    fn with_epochs(config: &Self::Config, epochs: usize) -> Self::Config;
    /// The trainer of `config` on `data` put into `state`, with `history` behind it and `view` (the model's copy
    /// at the same step) for the views' histories, set to last `total_epochs`: it continues the run exactly.
    fn resumed_trainer(
        config: &Self::Config,
        data: &Arc<Prepared>,
        state: &TrainState,
        history: Vec<EpochRecord>,
        total_epochs: usize,
        view: &ModelView,
    ) -> Result<Box<dyn Trainer>, TrainError>;
    /// Figures recomputed from the parameters alone on the run's data after `epochs` epochs (the command line's
    /// `--load`). Those named as in the epoch records are computed as the trainer computed them, so for a run
    /// saved at an epoch's end they equal the saved ones to the last bit.
    fn evaluate(&self, config: &Self::Config, data: &Prepared, epochs: usize)
    -> Result<Vec<(String, f64)>, TrainError>;
}

/// Named tensors (f32, and the u32 of a saved minibatch order) on their way into a weights file.
#[derive(Debug, Default)]
pub struct TensorWriter {
    tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    names: HashSet<String>,
}

impl TensorWriter {
    /// Adds `values` under `name` with `shape` (row-major).
    pub fn add(&mut self, name: String, shape: Vec<usize>, values: &[f32]) -> Result<(), String> {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push(name, Dtype::F32, shape, values.len(), bytes)
    }

    /// Adds the integers `values` under `name` as a u32 tensor `[len]`.
    pub fn add_u32(&mut self, name: String, values: &[u32]) -> Result<(), String> {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push(name, Dtype::U32, vec![values.len()], values.len(), bytes)
    }

    /// Adds every tensor of `other` under `prefix` + its name.
    pub(super) fn absorb(&mut self, prefix: &str, other: TensorWriter) -> Result<(), String> {
        for (name, dtype, shape, bytes) in other.tensors {
            let name = format!("{prefix}{name}");
            if !self.names.insert(name.clone()) {
                return Err(format!("two tensors are named {name}"));
            }
            self.tensors.push((name, dtype, shape, bytes));
        }
        Ok(())
    }

    /// Bytes of the tensors added so far.
    pub(super) fn bytes(&self) -> usize {
        self.tensors.iter().map(|t| t.3.len()).sum()
    }

    fn push(
        &mut self,
        name: String,
        dtype: Dtype,
        shape: Vec<usize>,
        len: usize,
        bytes: Vec<u8>,
    ) -> Result<(), String> {
        if shape.iter().product::<usize>() != len {
            return Err(format!("{name}: {len} values do not fill the shape {shape:?}"));
        }
        if !self.names.insert(name.clone()) {
            return Err(format!("two tensors are named {name}"));
        }
        self.tensors.push((name, dtype, shape, bytes));
        Ok(())
    }

    /// The safetensors file: an 8-byte header length, the JSON header, the tensors' bytes. Written here rather than
    /// by `safetensors::serialize`, whose metadata is a `HashMap` and comes out in a different order from one save
    /// to the next: here every key of the header is in sorted order, so the same tensors always give the same bytes
    /// (and the same sha256). The layout is safetensors' own: tensors by descending alignment, then by name.
    pub(super) fn serialize(&self, lab: Lab) -> Result<Vec<u8>, String> {
        let mut order: Vec<&(String, Dtype, Vec<usize>, Vec<u8>)> = self.tensors.iter().collect();
        order.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let metadata = BTreeMap::from([
            ("format".to_owned(), format!("{FORMAT_NAME} weights")),
            ("format_version".to_owned(), FORMAT_VERSION.to_string()),
            ("lab".to_owned(), lab.tab_name().to_owned()),
        ]);
        let mut header = BTreeMap::new();
        header.insert("__metadata__".to_owned(), serde_json::to_value(metadata).map_err(|e| e.to_string())?);
        let mut offset = 0usize;
        for (name, dtype, shape, bytes) in &order {
            let entry = serde_json::json!({
                "dtype": dtype,
                "shape": shape,
                "data_offsets": [offset, offset + bytes.len()],
            });
            header.insert(name.clone(), entry);
            offset += bytes.len();
        }
        let mut header = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
        header.resize(header.len().next_multiple_of(8), b' ');
        let mut out = Vec::with_capacity(8 + header.len() + offset);
        out.extend((header.len() as u64).to_le_bytes());
        out.extend(header);
        for (_, _, _, bytes) in order {
            out.extend(bytes);
        }
        // What was written must read back as safetensors.
        SafeTensors::deserialize(&out).map_err(|e| format!("the weights would not read back: {e:?}"))?;
        Ok(out)
    }
}

/// The tensors of a weights file, read one by one; every tensor must be read exactly once.
pub struct TensorReader<'a> {
    pub(super) tensors: SafeTensors<'a>,
    pub(super) taken: HashSet<String>,
    /// Put before every name asked for: a kept model's tensors are its own names under `kept.K.`.
    pub(super) prefix: String,
}

impl<'a> TensorReader<'a> {
    /// A reader of `tensors`, none read yet.
    pub(super) fn new(tensors: SafeTensors<'a>) -> Self {
        Self { tensors, taken: HashSet::new(), prefix: String::new() }
    }

    /// The values of tensor `name`, which must be f32 of exactly `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let name = &format!("{}{name}", self.prefix);
        let view = self.tensors.tensor(name).map_err(|_| format!("the weights have no tensor {name}"))?;
        if view.dtype() != Dtype::F32 {
            return Err(format!("tensor {name} is {:?}, not F32", view.dtype()));
        }
        if view.shape() != shape {
            return Err(format!("tensor {name} has shape {:?}; the architecture says {shape:?}", view.shape()));
        }
        if !self.taken.insert(name.to_owned()) {
            return Err(format!("tensor {name} is used twice"));
        }
        Ok(view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    /// The integers of the u32 tensor `name`, which must hold `len` of them.
    pub fn take_u32(&mut self, name: &str, len: usize) -> Result<Vec<u32>, String> {
        let name = &format!("{}{name}", self.prefix);
        let view = self.tensors.tensor(name).map_err(|_| format!("the weights have no tensor {name}"))?;
        if view.dtype() != Dtype::U32 || view.shape() != [len] {
            return Err(format!("tensor {name} is {:?} {:?}, not U32 [{len}]", view.dtype(), view.shape()));
        }
        if !self.taken.insert(name.to_owned()) {
            return Err(format!("tensor {name} is used twice"));
        }
        Ok(view.data().chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    /// Whether the weights hold a tensor `name`.
    #[must_use]
    pub fn has(&self, name: &str) -> bool {
        self.tensors.tensor(&format!("{}{name}", self.prefix)).is_ok()
    }

    /// Fails if some tensor was never read (the architecture does not describe it).
    pub(super) fn finish(self) -> Result<(), String> {
        let mut extra: Vec<&str> = self.tensors.names().into_iter().filter(|n| !self.taken.contains(*n)).collect();
        extra.sort_unstable();
        match extra.first() {
            None => Ok(()),
            Some(first) => {
                Err(format!("the weights hold {} tensors the architecture does not name, such as {first}", extra.len()))
            }
        }
    }
}

/// A dense layer's shape and activation (its weights `[n_in, n_out]` and biases `[n_out]` are tensors).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenseShape {
    /// Inputs.
    pub n_in: usize,
    /// Outputs.
    pub n_out: usize,
    /// Activation of the outputs.
    pub activation: Activation,
}

/// Writes a dense stack as `{prefix}.{j}.weights` `[n_in, n_out]` and `{prefix}.{j}.biases` `[n_out]`.
pub fn write_mlp(tensors: &mut TensorWriter, prefix: &str, mlp: &MlpParams) -> Result<Vec<DenseShape>, String> {
    mlp.layers.iter().enumerate().map(|(j, l)| write_dense(tensors, &format!("{prefix}.{j}"), l)).collect()
}

/// Reads what [`write_mlp`] wrote, checking that each layer's inputs are the previous layer's outputs.
pub fn read_mlp(tensors: &mut TensorReader<'_>, prefix: &str, shapes: &[DenseShape]) -> Result<MlpParams, String> {
    let mut layers = Vec::with_capacity(shapes.len());
    for (j, s) in shapes.iter().enumerate() {
        if let Some(prev) = layers.last().map(|l: &DenseParams| l.n_out)
            && prev != s.n_in
        {
            return Err(format!("{prefix}: layer {j} takes {} inputs but the layer before gives {prev}", s.n_in));
        }
        layers.push(read_dense(tensors, &format!("{prefix}.{j}"), s)?);
    }
    Ok(MlpParams { layers })
}

/// Writes one dense layer as `{prefix}.weights` `[n_in, n_out]` and `{prefix}.biases` `[n_out]`.
pub(super) fn write_dense(tensors: &mut TensorWriter, prefix: &str, d: &DenseParams) -> Result<DenseShape, String> {
    tensors.add(format!("{prefix}.weights"), vec![d.n_in, d.n_out], &d.weights)?;
    tensors.add(format!("{prefix}.biases"), vec![d.n_out], &d.biases)?;
    Ok(DenseShape { n_in: d.n_in, n_out: d.n_out, activation: d.activation })
}

/// Reads what [`write_dense`] wrote.
pub(super) fn read_dense(tensors: &mut TensorReader<'_>, prefix: &str, s: &DenseShape) -> Result<DenseParams, String> {
    Ok(DenseParams {
        n_in: s.n_in,
        n_out: s.n_out,
        weights: tensors.take(&format!("{prefix}.weights"), &[s.n_in, s.n_out])?,
        biases: tensors.take(&format!("{prefix}.biases"), &[s.n_out])?,
        activation: s.activation,
    })
}
