//! A run's training state ([`TrainState`]) in a run file (format version 2): the small numbers in the run file's
//! `resume` record ([`ResumeRecord`]: the generator's seed, stream and position, the cursor, the step, the
//! epoch's sums, the optimiser's kind, learning rate and step count, and the names and shapes of what lies in
//! the weights file), the large ones as tensors beside the parameters in the weights file: `state.order` (u32),
//! `state.var.{i}`, `state.m.{i}`, `state.v.{i}`, `state.guard.{i}` and `state.model.{name}` (f32).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::format::JsonF64;
use super::tensors::{TensorReader, TensorWriter};
use crate::compute::cpu::optim::{OptimizerKind, OptimizerState};
use crate::models::resume::{LoopState, RngState, TrainState, VariableState};

/// What a continued run is promised, as the run file says it.
pub const EXACTNESS: &str = "continued by the same build of bayes-explorer on a CPU with the same instruction set, \
with the same number of threads, the run takes exactly the steps it would have taken without stopping, to the last bit; on another CPU (other SIMD \
kernels) or another build the parameters agree to float rounding (about 1e-6 relative per step) and then drift as \
training amplifies rounding";

/// The generator's state in JSON: the seed as hex, the position as a decimal string (a u128).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RngRecord {
    /// The 32-byte key, lower-case hex.
    pub seed: String,
    /// The stream.
    pub stream: u64,
    /// Words consumed, in decimal.
    pub word_pos: String,
}

/// One variable's name and shape (its values, moments and guard copy are tensors).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableRecord {
    /// The model's name for it.
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
}

/// The optimiser's scalars.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizerRecord {
    /// Which optimiser.
    pub kind: OptimizerKind,
    /// The learning rate in use.
    pub learning_rate: JsonF64,
    /// Updates taken.
    pub steps: i32,
}

/// The `resume` record of a version 2 run file: what the next step depends on, beyond the settings, data and
/// history (see [`TrainState`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResumeRecord {
    /// What a continued run is promised ([`EXACTNESS`]).
    pub exactness: String,
    /// The generator of the minibatch order and of every step's draws.
    pub rng: RngRecord,
    /// Rows of this epoch's order (`state.order`) taken so far.
    pub cursor: usize,
    /// Steps taken in all.
    pub step: u64,
    /// This epoch's sums of the loss terms.
    pub sums: Vec<JsonF64>,
    /// Minibatches in those sums.
    pub batches: usize,
    /// The latest minibatch's loss.
    pub batch_loss: JsonF64,
    /// The optimiser.
    pub optimizer: OptimizerRecord,
    /// The variables, in the optimiser's order.
    pub variables: Vec<VariableRecord>,
    /// Whether the NaN guard's copy is saved (none before the first step).
    pub guard: bool,
    /// The model's own state outside its variables: names and lengths.
    pub model_state: Vec<(String, usize)>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(2 * bytes.len()), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Writes `state`'s large parts into `tensors` and returns the record of the rest.
pub fn write_state(state: &TrainState, tensors: &mut TensorWriter) -> Result<ResumeRecord, String> {
    let e = &state.epochs;
    tensors.add_u32("state.order".into(), &e.order)?;
    for (i, v) in state.variables.iter().enumerate() {
        tensors.add(format!("state.var.{i}"), v.shape.clone(), &v.values)?;
    }
    if state.optimizer.moments.len() != state.variables.len() {
        return Err("the optimiser's moments do not match the variables".into());
    }
    for (i, ((m, v), var)) in state.optimizer.moments.iter().zip(&state.variables).enumerate() {
        tensors.add(format!("state.m.{i}"), var.shape.clone(), m)?;
        tensors.add(format!("state.v.{i}"), var.shape.clone(), v)?;
    }
    if let Some(guard) = &state.last_good {
        for (i, (g, var)) in guard.iter().zip(&state.variables).enumerate() {
            tensors.add(format!("state.guard.{i}"), var.shape.clone(), g)?;
        }
    }
    for (name, values) in &state.model {
        tensors.add(format!("state.model.{name}"), vec![values.len()], values)?;
    }
    Ok(ResumeRecord {
        exactness: EXACTNESS.to_owned(),
        rng: RngRecord { seed: hex(&e.rng.seed), stream: e.rng.stream, word_pos: e.rng.word_pos.to_string() },
        cursor: e.cursor,
        step: e.step,
        sums: e.sums.iter().map(|&s| JsonF64(s)).collect(),
        batches: e.batches,
        batch_loss: JsonF64(e.batch_loss),
        optimizer: OptimizerRecord {
            kind: state.optimizer.kind,
            learning_rate: JsonF64(state.optimizer.learning_rate),
            steps: state.optimizer.steps,
        },
        variables: state
            .variables
            .iter()
            .map(|v| VariableRecord { name: v.name.clone(), shape: v.shape.clone() })
            .collect(),
        guard: state.last_good.is_some(),
        model_state: state.model.iter().map(|(n, v)| (n.clone(), v.len())).collect(),
    })
}

/// Reads what [`write_state`] wrote, checking every tensor's name and shape against the record (whether the state
/// fits the model is the trainer's check when it resumes).
pub fn read_state(record: &ResumeRecord, tensors: &mut TensorReader<'_>) -> Result<TrainState, String> {
    let seed = unhex(&record.rng.seed).ok_or("the generator's seed is not 64 hex digits")?;
    let word_pos: u128 = record.rng.word_pos.parse().map_err(|_| "the generator's position is not a number")?;
    let n_order = tensors.tensors.tensor("state.order").map_or(0, |t| t.shape().iter().product());
    let order = tensors.take_u32("state.order", n_order)?;
    let mut variables = Vec::with_capacity(record.variables.len());
    let mut moments = Vec::with_capacity(record.variables.len());
    let mut guard = record.guard.then(Vec::new);
    for (i, v) in record.variables.iter().enumerate() {
        let values = tensors.take(&format!("state.var.{i}"), &v.shape)?;
        moments
            .push((tensors.take(&format!("state.m.{i}"), &v.shape)?, tensors.take(&format!("state.v.{i}"), &v.shape)?));
        if let Some(guard) = &mut guard {
            guard.push(tensors.take(&format!("state.guard.{i}"), &v.shape)?);
        }
        variables.push(VariableState { name: v.name.clone(), shape: v.shape.clone(), values });
    }
    let model = record
        .model_state
        .iter()
        .map(|(name, len)| Ok((name.clone(), tensors.take(&format!("state.model.{name}"), &[*len])?)))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(TrainState {
        epochs: LoopState {
            order,
            cursor: record.cursor,
            rng: RngState { seed, stream: record.rng.stream, word_pos },
            step: record.step,
            sums: record.sums.iter().map(|s| s.0).collect(),
            batches: record.batches,
            batch_loss: record.batch_loss.0,
        },
        variables,
        optimizer: OptimizerState {
            kind: record.optimizer.kind,
            learning_rate: record.optimizer.learning_rate.0,
            steps: record.optimizer.steps,
            moments,
        },
        last_good: guard,
        model,
    })
}
