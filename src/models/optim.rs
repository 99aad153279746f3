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
        let grads: Vec<Option<Tensor>> = vars.iter().map(|v| grads.get(v.as_tensor()).cloned()).collect();
        self.step_with_gradients(vars, names, &grads, step)
    }

    /// [`Self::step`] with the gradients given one per variable (`None`: no gradient, the variable stays), for a
    /// pass that computes them without candle's autograd.
    pub fn step_with_gradients(
        &mut self,
        vars: &[Var],
        names: &[String],
        grads: &[Option<Tensor>],
        step: u64,
    ) -> Result<(), TrainError> {
        let t = self.steps + 1;
        let update = |i: usize| {
            self.update_one(&vars[i], &self.moments[i], names.get(i), grads.get(i).and_then(Option::as_ref), step, t)
        };
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
        grad: Option<&Tensor>,
        step: u64,
        t: i32,
    ) -> Result<Update, TrainError> {
        let name = name.map_or("a parameter", String::as_str);
        let Some(g) = grad else {
            return Ok(Update { value: var.as_tensor().clone(), moments: (m.clone(), v.clone()) });
        };
        // Detached: a moment built from a tensor that remembers its graph would keep every step's
        // activations alive through the chain of moments (a leak of a whole forward pass per step).
        let g = &g.detach();
        if let Some(update) = self.fused_update(var.as_tensor(), m, v, g, name, step, t) {
            return update;
        }
        self.update_by_tensor_ops(var.as_tensor(), (m, v), g, name, step, t)
    }

    /// [`Self::update_one`] as candle tensor operations: the reference for [`Self::fused_update`], and the path for
    /// tensors it does not take.
    fn update_by_tensor_ops(
        &self,
        value: &Tensor,
        (m, v): (&Tensor, &Tensor),
        g: &Tensor,
        name: &str,
        step: u64,
        t: i32,
    ) -> Result<Update, TrainError> {
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
        let value = (value - (delta * self.learning_rate)?)?;
        ensure_finite(&value, name, step)?;
        Ok(Update { value: value.detach(), moments: (m2.detach(), v2.detach()) })
    }

    /// The same update as [`Self::update_by_tensor_ops`], in one loop over the values, for contiguous f32 tensors
    /// on the CPU (`None` for any other): candle would run about ten operations, each writing a new tensor through
    /// its thread pool, which cost a RealNVP step more than its gradient.
    #[allow(clippy::too_many_arguments, reason = "one variable's update: its value, moments, gradient and step")]
    fn fused_update(
        &self,
        value: &Tensor,
        m: &Tensor,
        v: &Tensor,
        g: &Tensor,
        name: &str,
        step: u64,
        t: i32,
    ) -> Option<Result<Update, TrainError>> {
        let (w, m, v, g) = (cpu_f32(value)?, cpu_f32(m)?, cpu_f32(v)?, cpu_f32(g)?);
        let n = w.len();
        if [m.len(), v.len(), g.len()] != [n; 3] {
            return None;
        }
        // The same test as [`ensure_finite`]: the sum of magnitudes in f32, which also refuses values so large that
        // they add up past f32's range (a parameter near 1e38 is as good as infinite).
        let finite = |x: &[f32]| x.iter().map(|v| v.abs()).sum::<f32>().is_finite();
        if !finite(&g) {
            return Some(Err(TrainError::NonFinite { location: format!("the gradient of {name}"), step }));
        }
        let (mut w2, mut m2, mut v2) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
        let (lr, eps) = (self.learning_rate as f32, EPSILON as f32);
        match self.kind {
            OptimizerKind::RmsProp => {
                let (rho, one_minus_rho) = (RHO as f32, (1.0 - RHO) as f32);
                for i in 0..n {
                    v2[i] = v[i] * rho + g[i] * g[i] * one_minus_rho;
                    m2[i] = m[i];
                    w2[i] = w[i] - g[i] / (v2[i].sqrt() + eps) * lr;
                }
            }
            OptimizerKind::Adam => {
                let (b1, b2) = (BETA1 as f32, BETA2 as f32);
                let (one_minus_b1, one_minus_b2) = ((1.0 - BETA1) as f32, (1.0 - BETA2) as f32);
                let (c1, c2) = ((1.0 / (1.0 - BETA1.powi(t))) as f32, (1.0 / (1.0 - BETA2.powi(t))) as f32);
                for i in 0..n {
                    m2[i] = m[i] * b1 + g[i] * one_minus_b1;
                    v2[i] = v[i] * b2 + g[i] * g[i] * one_minus_b2;
                    w2[i] = w[i] - (m2[i] * c1) / ((v2[i] * c2).sqrt() + eps) * lr;
                }
            }
        }
        if !finite(&w2) {
            return Some(Err(TrainError::NonFinite { location: name.to_owned(), step }));
        }
        let shape = value.shape();
        let device = value.device();
        let tensor = |data: Vec<f32>| Tensor::from_vec(data, shape, device).map_err(TrainError::from);
        Some((|| Ok(Update { value: tensor(w2)?, moments: (tensor(m2)?, tensor(v2)?) }))())
    }
}

/// The values of a contiguous f32 tensor on the CPU, copied straight from its storage (`None` for any other tensor).
fn cpu_f32(t: &Tensor) -> Option<Vec<f32>> {
    if t.dtype() != candle_core::DType::F32 || !t.device().is_cpu() {
        return None;
    }
    let (storage, layout) = t.storage_and_layout();
    let (start, end) = layout.contiguous_offsets()?;
    match &*storage {
        candle_core::Storage::Cpu(cpu) => {
            cpu.as_slice::<f32>().ok().and_then(|s| s.get(start..end)).map(<[f32]>::to_vec)
        }
        _ => None,
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

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::{Optimizer, OptimizerKind};
    use crate::train::TrainError;

    /// The one-loop update gives the tensor operations' values and moments (to a few float roundings), for both
    /// optimisers, on a first step and a later one, and refuses a non-finite gradient with the same message.
    #[test]
    fn the_fused_update_equals_the_tensor_operations() {
        let device = Device::Cpu;
        let values: Vec<f32> = (0..1000).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
        let tensor =
            |f: &dyn Fn(f32) -> f32| Tensor::from_vec(values.iter().map(|&x| f(x)).collect(), (40, 25), &device);
        let w = tensor(&|x| x).expect("w");
        let m = tensor(&|x| 0.1 * x.sin()).expect("m");
        let v = tensor(&|x| 0.01 * x * x).expect("v");
        let g = tensor(&|x| x.cos() - 0.3).expect("g");
        for kind in [OptimizerKind::Adam, OptimizerKind::RmsProp] {
            let optimizer = Optimizer { kind, learning_rate: 3e-3, moments: Vec::new(), steps: 0 };
            for t in [1, 5] {
                let fused =
                    optimizer.fused_update(&w, &m, &v, &g, "w", 1, t).expect("a CPU f32 tensor").expect("update");
                let reference = optimizer.update_by_tensor_ops(&w, (&m, &v), &g, "w", 1, t).expect("update");
                let pairs = [
                    (&fused.value, &reference.value),
                    (&fused.moments.0, &reference.moments.0),
                    (&fused.moments.1, &reference.moments.1),
                ];
                for (what, (a, b)) in ["value", "first moment", "second moment"].iter().zip(pairs) {
                    let a: Vec<f32> = a.flatten_all().and_then(|t| t.to_vec1()).expect("a");
                    let b: Vec<f32> = b.flatten_all().and_then(|t| t.to_vec1()).expect("b");
                    for (x, y) in a.iter().zip(&b) {
                        assert!((x - y).abs() <= 1e-6 * (1.0 + y.abs()), "{kind:?} t {t} {what}: {x} vs {y}");
                    }
                }
            }
            let bad = g.broadcast_mul(&Tensor::new(f32::NAN, &device).expect("nan")).expect("nan grad");
            let refused = optimizer.fused_update(&w, &m, &v, &bad, "w", 7, 1).expect("CPU f32");
            assert!(
                matches!(refused, Err(TrainError::NonFinite { ref location, step: 7 }) if location == "the gradient of w"),
                "{kind:?}"
            );
        }
    }
}
