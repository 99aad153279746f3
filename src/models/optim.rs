//! Optimisers over candle variables: RMSprop and Adam as Keras defines them (epsilon 1e-7).
//!
//! An update is computed in full, checked for NaN and infinity, and only then written, so a bad step
//! leaves the parameters and the optimiser state as they were. The check of the loss that comes before it is
//! [`crate::models::guard`]'s.

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
    /// Large models update their variables on two threads (each variable's arithmetic is the same either way);
    /// the error, if any, is the first variable's in order.
    pub fn step(&mut self, vars: &[Var], names: &[String], grads: &GradStore, step: u64) -> Result<(), TrainError> {
        let t = self.steps + 1;
        let update = |i: usize| self.update_one(&vars[i], &self.moments[i], names.get(i), grads, step, t);
        let sizes: Vec<usize> = vars.iter().map(|v| v.as_tensor().elem_count()).collect();
        let results: Vec<Result<Update, TrainError>> = if sizes.iter().sum::<usize>() < PARALLEL_UPDATE_VALUES {
            (0..vars.len()).map(update).collect()
        } else {
            // Two groups of about equal size, the largest variables placed first.
            let mut order: Vec<usize> = (0..vars.len()).collect();
            order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
            let (mut groups, mut load) = ([Vec::new(), Vec::new()], [0usize; 2]);
            for i in order {
                let g = usize::from(load[1] < load[0]);
                groups[g].push(i);
                load[g] += sizes[i];
            }
            let mut slots: Vec<Option<Result<Update, TrainError>>> = (0..vars.len()).map(|_| None).collect();
            std::thread::scope(|scope| {
                let other = scope.spawn(|| groups[1].iter().map(|&i| (i, update(i))).collect::<Vec<_>>());
                for &i in &groups[0] {
                    slots[i] = Some(update(i));
                }
                let done = other.join().unwrap_or_default();
                for (i, r) in done {
                    slots[i] = Some(r);
                }
            });
            slots
                .into_iter()
                .map(|r| r.unwrap_or_else(|| Err(TrainError::Backend("an update thread failed".into()))))
                .collect()
        };
        let updates = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        for (var, u) in vars.iter().zip(&updates) {
            var.set(&u.value)?;
        }
        self.moments = updates.into_iter().map(|u| u.moments).collect();
        self.steps = t;
        Ok(())
    }

    /// The new value and moments of one variable (unchanged without a gradient).
    fn update_one(
        &self,
        var: &Var,
        (m, v): &(Tensor, Tensor),
        name: Option<&String>,
        grads: &GradStore,
        step: u64,
        t: i32,
    ) -> Result<Update, TrainError> {
        let name = name.map_or("a parameter", String::as_str);
        let Some(g) = grads.get(var.as_tensor()) else {
            return Ok(Update { value: var.as_tensor().clone(), moments: (m.clone(), v.clone()) });
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
        Ok(Update { value: value.detach(), moments: (m2.detach(), v2.detach()) })
    }
}

/// Values in all of a model's variables from which an update is split over two threads (below, a thread costs
/// more than it saves).
const PARALLEL_UPDATE_VALUES: usize = 200_000;

/// One variable's new value and moments.
struct Update {
    value: Tensor,
    moments: (Tensor, Tensor),
}

/// Fails with [`TrainError::NonFinite`] naming `location` if any element is NaN or infinite.
pub fn ensure_finite(t: &Tensor, location: &str, step: u64) -> Result<(), TrainError> {
    let total = t.abs()?.sum_all()?.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?;
    if total.is_finite() { Ok(()) } else { Err(TrainError::NonFinite { location: location.to_owned(), step }) }
}
