//! Optimisers over candle variables: RMSprop and Adam as Keras defines them (epsilon 1e-7).
//!
//! An update is computed in full, checked for NaN and infinity, and only then written, so a bad step
//! leaves the parameters and the optimiser state as they were.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::train::TrainError;

/// Which optimiser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OptimizerKind {
    /// RMSprop, rho 0.9 (the course's BNN).
    RmsProp,
    /// Adam, beta1 0.9, beta2 0.999.
    Adam,
}

impl OptimizerKind {
    /// Lower-case name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::RmsProp => "rmsprop",
            Self::Adam => "adam",
        }
    }
}

const EPSILON: f64 = 1e-7;
const RHO: f64 = 0.9;
const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;

/// Optimiser state for a fixed list of variables.
pub struct Optimizer {
    kind: OptimizerKind,
    /// Learning rate.
    pub learning_rate: f64,
    /// Per variable: (first moment, second moment); RMSprop uses only the second.
    moments: Vec<(Tensor, Tensor)>,
    steps: i32,
}

impl Optimizer {
    /// A fresh optimiser for `vars`.
    pub fn new(kind: OptimizerKind, learning_rate: f64, vars: &[Var]) -> candle_core::Result<Self> {
        let moments = vars
            .iter()
            .map(|v| Ok((v.as_tensor().zeros_like()?, v.as_tensor().zeros_like()?)))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self { kind, learning_rate, moments, steps: 0 })
    }

    /// True when no moment remembers the graph it was computed from (see the detach in [`Self::step`]).
    #[must_use]
    pub fn state_is_detached(&self) -> bool {
        self.moments.iter().all(|(m, v)| !m.track_op() && !v.track_op())
    }

    /// Applies one update from `grads`. `names[i]` names `vars[i]` in error messages; `step` is the step number.
    pub fn step(&mut self, vars: &[Var], names: &[String], grads: &GradStore, step: u64) -> Result<(), TrainError> {
        let t = self.steps + 1;
        let mut new_values = Vec::with_capacity(vars.len());
        let mut new_moments = Vec::with_capacity(vars.len());
        for (i, (var, (m, v))) in vars.iter().zip(&self.moments).enumerate() {
            let name = names.get(i).map_or("a parameter", String::as_str);
            let Some(g) = grads.get(var.as_tensor()) else {
                new_values.push(var.as_tensor().clone());
                new_moments.push((m.clone(), v.clone()));
                continue;
            };
            // Detached: a moment built from a tensor that remembers its graph would keep every step's
            // activations alive through the chain of moments (a leak of a whole forward pass per step).
            let g = &g.detach();
            ensure_finite(g, &format!("the gradient of {name}"), step)?;
            let (m2, v2, delta) = match self.kind {
                OptimizerKind::RmsProp => {
                    let v2 = ((v * RHO)? + (g.sqr()? * (1.0 - RHO))?)?;
                    let delta = g.div(&(v2.sqrt()? + EPSILON)?)?;
                    (m.clone(), v2, delta)
                }
                OptimizerKind::Adam => {
                    let m2 = ((m * BETA1)? + (g * (1.0 - BETA1))?)?;
                    let v2 = ((v * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
                    let m_hat = (&m2 / (1.0 - BETA1.powi(t)))?;
                    let v_hat = (&v2 / (1.0 - BETA2.powi(t)))?;
                    let delta = m_hat.div(&(v_hat.sqrt()? + EPSILON)?)?;
                    (m2, v2, delta)
                }
            };
            let value = (var.as_tensor() - (delta * self.learning_rate)?)?;
            ensure_finite(&value, name, step)?;
            new_values.push(value.detach());
            new_moments.push((m2.detach(), v2.detach()));
        }
        for (var, value) in vars.iter().zip(&new_values) {
            var.set(value)?;
        }
        self.moments = new_moments;
        self.steps = t;
        Ok(())
    }
}

/// One guarded optimisation step on `loss`, the NaN guard of every model: when the loss is NaN or infinite,
/// the previous update led here, so the variables go back to `last_good` (the values at which the loss was
/// last finite) and the error names `loss_name`; otherwise `last_good` keeps copies of the current values,
/// and the gradients are taken and applied. Returns the loss.
pub fn guarded_step(
    optimizer: &mut Optimizer,
    vars: &[Var],
    names: &[String],
    last_good: &mut Vec<Tensor>,
    loss: &Tensor,
    loss_name: &str,
    step: u64,
) -> Result<f64, TrainError> {
    if let Err(e) = ensure_finite(loss, loss_name, step) {
        for (var, good) in vars.iter().zip(last_good.iter()) {
            var.set(good)?;
        }
        return Err(e);
    }
    *last_good = vars.iter().map(|v| v.as_tensor().copy()).collect::<candle_core::Result<_>>()?;
    let grads = loss.backward()?;
    optimizer.step(vars, names, &grads, step)?;
    Ok(f64::from(loss.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?))
}

/// Fails with [`TrainError::NonFinite`] naming `location` if any element is NaN or infinite.
pub fn ensure_finite(t: &Tensor, location: &str, step: u64) -> Result<(), TrainError> {
    let total = t.abs()?.sum_all()?.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?;
    if total.is_finite() { Ok(()) } else { Err(TrainError::NonFinite { location: location.to_owned(), step }) }
}
