//! Optimisers over candle variables: RMSprop and Adam as Keras defines them (epsilon 1e-7).
//!
//! An update is computed in full, checked for NaN and infinity, and only then written, so a bad step
//! leaves the parameters and the optimiser state as they were. The check of the loss that comes before it is
//! [`crate::models::guard`]'s.

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::models::dense_cpu::with_cpu_f32;
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
    /// Per variable: its first moment (Adam) and second moment.
    moments: Vec<Moments>,
    steps: i32,
}

/// One variable's moments.
enum Moments {
    /// A contiguous f32 variable on the CPU: plain values, updated in one loop ([`Rule::fused_update`]). A step
    /// writes the new moments into `next` and the variable's new values into `value`, and takes them only once every
    /// variable's update is known to be finite; the buffers are reused from step to step.
    Flat { current: (Vec<f32>, Vec<f32>), next: (Vec<f32>, Vec<f32>), value: Vec<f32> },
    /// Any other variable: tensors, updated by candle's operations ([`Rule::update_by_tensor_ops`]).
    Tensors(Tensor, Tensor),
}

/// One variable's gradient, as a tensor (candle's autograd) or as plain values (a hand-written pass).
#[derive(Clone, Copy)]
enum Gradient<'a> {
    Tensor(&'a Tensor),
    Values(&'a [f32]),
}

/// One variable's update, computed and checked but not yet written.
enum Update {
    /// The new values and moments wait in the variable's [`Moments::Flat`] buffers.
    Flat,
    /// The new value and moments as tensors.
    Tensors { value: Tensor, moments: (Tensor, Tensor) },
}

impl Optimizer {
    /// A fresh optimiser for `vars`.
    pub fn new(kind: OptimizerKind, learning_rate: f64, vars: &[Var]) -> candle_core::Result<Self> {
        let moments = vars
            .iter()
            .map(|v| {
                let t = v.as_tensor();
                Ok(if t.dtype() == DType::F32 && t.device().is_cpu() && t.is_contiguous() {
                    let zeros = || (vec![0.0f32; t.elem_count()], vec![0.0f32; t.elem_count()]);
                    Moments::Flat { current: zeros(), next: zeros(), value: vec![0.0f32; t.elem_count()] }
                } else {
                    Moments::Tensors(t.zeros_like()?, t.zeros_like()?)
                })
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(Self { kind, learning_rate, moments, steps: 0 })
    }

    /// True when no moment remembers the graph it was computed from (see the detach in [`update_one`]).
    #[must_use]
    pub fn state_is_detached(&self) -> bool {
        self.moments.iter().all(|m| match m {
            Moments::Flat { .. } => true,
            Moments::Tensors(m, v) => !m.track_op() && !v.track_op(),
        })
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
        let grads: Vec<Option<Gradient<'_>>> =
            (0..vars.len()).map(|i| grads.get(i).and_then(Option::as_ref).map(Gradient::Tensor)).collect();
        self.apply(vars, names, &grads, step)
    }

    /// [`Self::step`] with every variable's gradient end to end in one buffer, in the order of `vars` (a
    /// hand-written pass's output, taken without a copy).
    ///
    /// # Errors
    /// [`TrainError::Backend`] when `grads` is not as long as the variables together.
    pub fn step_with_flat_gradients(
        &mut self,
        vars: &[Var],
        names: &[String],
        grads: &[f32],
        step: u64,
    ) -> Result<(), TrainError> {
        let mut rest = grads;
        let mut split = Vec::with_capacity(vars.len());
        for var in vars {
            let n = var.as_tensor().elem_count();
            if rest.len() < n {
                return Err(TrainError::Backend("fewer gradient values than variable values".into()));
            }
            let (g, tail) = rest.split_at(n);
            split.push(Some(Gradient::Values(g)));
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(TrainError::Backend("more gradient values than variable values".into()));
        }
        self.apply(vars, names, &split, step)
    }

    /// Computes every variable's update (on two threads for large models), and writes them only if all are finite.
    fn apply(
        &mut self,
        vars: &[Var],
        names: &[String],
        grads: &[Option<Gradient<'_>>],
        step: u64,
    ) -> Result<(), TrainError> {
        let t = self.steps + 1;
        let rule = Rule { kind: self.kind, learning_rate: self.learning_rate, t };
        let update = |i: usize, moments: &mut Moments| {
            update_one(rule, &vars[i], moments, names.get(i), grads.get(i).copied().flatten(), step)
        };
        let sizes: Vec<usize> = vars.iter().map(|v| v.as_tensor().elem_count()).collect();
        let results: Vec<Result<Option<Update>, TrainError>> = if sizes.iter().sum::<usize>() < PARALLEL_UPDATE_VALUES {
            self.moments.iter_mut().enumerate().map(|(i, m)| update(i, m)).collect()
        } else {
            // Two groups of about equal size, the largest variables placed first.
            let mut order: Vec<usize> = (0..vars.len()).collect();
            order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
            let (mut group_of, mut load) = (vec![0usize; vars.len()], [0usize; 2]);
            for i in order {
                let g = usize::from(load[1] < load[0]);
                group_of[i] = g;
                load[g] += sizes[i];
            }
            let (mut first, mut second) = (Vec::new(), Vec::new());
            for (i, m) in self.moments.iter_mut().enumerate() {
                if group_of[i] == 0 { first.push((i, m)) } else { second.push((i, m)) }
            }
            let run = |group: Vec<(usize, &mut Moments)>| {
                group.into_iter().map(|(i, m)| (i, update(i, m))).collect::<Vec<_>>()
            };
            let (a, b) = rayon::join(|| run(first), || run(second));
            let mut slots: Vec<Option<Result<Option<Update>, TrainError>>> = (0..vars.len()).map(|_| None).collect();
            for (i, r) in a.into_iter().chain(b) {
                slots[i] = Some(r);
            }
            slots
                .into_iter()
                .map(|r| r.unwrap_or_else(|| Err(TrainError::Backend("a variable was not updated".into()))))
                .collect()
        };
        let updates = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        // Written variable by variable on the thread pool: the copies are independent.
        vars.par_iter().zip(self.moments.par_iter_mut()).zip(updates).try_for_each(|((var, moments), update)| {
            match (moments, update) {
                (_, None) => {}
                (Moments::Flat { current, next, value }, Some(Update::Flat)) => {
                    // Written over the variable's own storage: no new tensor to allocate and copy again.
                    var.as_tensor().inplace_op1(&Overwrite(value))?;
                    std::mem::swap(current, next);
                }
                (Moments::Tensors(m, v), Some(Update::Tensors { value, moments: (m2, v2) })) => {
                    var.set(&value)?;
                    (*m, *v) = (m2, v2);
                }
                _ => return Err(TrainError::Backend("an update does not match its variable's moments".into())),
            }
            Ok(())
        })?;
        self.steps = t;
        Ok(())
    }
}

/// The new value of one variable and its new moments by `rule` (`None` without a gradient: the variable stays).
fn update_one(
    rule: Rule,
    var: &Var,
    moments: &mut Moments,
    name: Option<&String>,
    grad: Option<Gradient<'_>>,
    step: u64,
) -> Result<Option<Update>, TrainError> {
    let name = name.map_or("a parameter", String::as_str);
    let Some(grad) = grad else { return Ok(None) };
    let value = var.as_tensor();
    match moments {
        Moments::Flat { current: (m, v), next: (m2, v2), value: w2 } => {
            let done = match grad {
                Gradient::Values(g) => with_cpu_f32(&[value], |w| rule.fused_update(w[0], m, v, g, (w2, m2, v2))),
                Gradient::Tensor(g) => {
                    let g = g.detach().contiguous()?;
                    with_cpu_f32(&[value, &g], |s| rule.fused_update(s[0], m, v, s[1], (w2, m2, v2)))
                }
            };
            match done {
                Some(Ok(())) => {}
                Some(Err(Refused::Gradient)) => {
                    return Err(TrainError::NonFinite { location: format!("the gradient of {name}"), step });
                }
                Some(Err(Refused::Value)) => return Err(TrainError::NonFinite { location: name.to_owned(), step }),
                None | Some(Err(Refused::Shape)) => {
                    return Err(TrainError::Backend(format!("the gradient of {name} does not fit its variable")));
                }
            }
            Ok(Some(Update::Flat))
        }
        Moments::Tensors(m, v) => {
            let g = match grad {
                Gradient::Tensor(g) => g.detach(),
                Gradient::Values(g) => Tensor::from_slice(g, value.shape(), value.device())?.to_dtype(value.dtype())?,
            };
            // Detached: a moment built from a tensor that remembers its graph would keep every step's
            // activations alive through the chain of moments (a leak of a whole forward pass per step).
            let (value, m2, v2) = rule.update_by_tensor_ops(value, (m, v), &g, name, step)?;
            Ok(Some(Update::Tensors { value, moments: (m2, v2) }))
        }
    }
}

/// An in-place operation that writes its values over a contiguous f32 tensor on the CPU.
struct Overwrite<'a>(&'a [f32]);

impl candle_core::InplaceOp1 for Overwrite<'_> {
    fn name(&self) -> &'static str {
        "overwrite"
    }

    fn cpu_fwd(&self, storage: &mut candle_core::CpuStorage, layout: &candle_core::Layout) -> candle_core::Result<()> {
        let target = match (storage, layout.contiguous_offsets()) {
            (candle_core::CpuStorage::F32(data), Some((start, end))) => data.get_mut(start..end),
            _ => None,
        };
        match target {
            Some(target) if target.len() == self.0.len() => {
                target.copy_from_slice(self.0);
                Ok(())
            }
            _ => Err(candle_core::Error::msg("overwrite: not a contiguous f32 tensor of the values' length")),
        }
    }
}

/// Why [`Rule::fused_update`] refused an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refused {
    Gradient,
    Value,
    Shape,
}

/// The settings one update needs.
#[derive(Clone, Copy, Debug)]
struct Rule {
    kind: OptimizerKind,
    learning_rate: f64,
    /// The step number, from 1 (Adam's bias correction).
    t: i32,
}

impl Rule {
    /// The update of one variable in one loop: from its values `w`, moments `m`, `v` and gradient `g`, the new
    /// values and moments into `next`. candle would run about ten operations, each writing a new tensor through its
    /// thread pool, which cost a RealNVP step more than its gradient. The same update as
    /// [`Rule::update_by_tensor_ops`] (the reference the tests compare it with).
    #[allow(clippy::type_complexity, reason = "the three outputs of one update")]
    fn fused_update(
        self,
        w: &[f32],
        m: &[f32],
        v: &[f32],
        g: &[f32],
        (w2, m2, v2): (&mut [f32], &mut [f32], &mut [f32]),
    ) -> Result<(), Refused> {
        let n = w.len();
        if [m.len(), v.len(), g.len(), w2.len(), m2.len(), v2.len()] != [n; 6] {
            return Err(Refused::Shape);
        }
        if !sum_of_magnitudes_is_finite(g) {
            return Err(Refused::Gradient);
        }
        let (lr, eps) = (self.learning_rate as f32, EPSILON as f32);
        // Zipped iterators rather than indices, so that the loops run without bounds checks, on vector registers.
        let outputs = w2.iter_mut().zip(m2.iter_mut()).zip(v2.iter_mut());
        let inputs = w.iter().zip(m).zip(v).zip(g);
        match self.kind {
            OptimizerKind::RmsProp => {
                let (rho, one_minus_rho) = (RHO as f32, (1.0 - RHO) as f32);
                for (((w2, m2), v2), (((&w, &m), &v), &g)) in outputs.zip(inputs) {
                    *v2 = v * rho + g * g * one_minus_rho;
                    *m2 = m;
                    *w2 = w - g / (v2.sqrt() + eps) * lr;
                }
            }
            OptimizerKind::Adam => {
                let (b1, b2) = (BETA1 as f32, BETA2 as f32);
                let (one_minus_b1, one_minus_b2) = ((1.0 - BETA1) as f32, (1.0 - BETA2) as f32);
                let t = self.t;
                let (c1, c2) = ((1.0 / (1.0 - BETA1.powi(t))) as f32, (1.0 / (1.0 - BETA2.powi(t))) as f32);
                for (((w2, m2), v2), (((&w, &m), &v), &g)) in outputs.zip(inputs) {
                    *m2 = m * b1 + g * one_minus_b1;
                    *v2 = v * b2 + g * g * one_minus_b2;
                    *w2 = w - (*m2 * c1) / ((*v2 * c2).sqrt() + eps) * lr;
                }
            }
        }
        if sum_of_magnitudes_is_finite(w2) { Ok(()) } else { Err(Refused::Value) }
    }

    /// One variable's update as candle tensor operations (value, first moment, second moment): the path for
    /// variables that are not CPU f32, and the reference for [`Rule::fused_update`].
    fn update_by_tensor_ops(
        self,
        value: &Tensor,
        (m, v): (&Tensor, &Tensor),
        g: &Tensor,
        name: &str,
        step: u64,
    ) -> Result<(Tensor, Tensor, Tensor), TrainError> {
        let t = self.t;
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
        Ok((value.detach(), m2.detach(), v2.detach()))
    }
}

/// Whether Σ|x| stays finite in f32: the same test as [`ensure_finite`], which also refuses values so large that they
/// add up past f32's range (a parameter near 1e38 is as good as infinite). Summed in 16 independent lanes and then
/// across them, so that it runs on vector registers: one running sum would wait on each addition in turn, which
/// made the check slower than the update itself.
fn sum_of_magnitudes_is_finite(x: &[f32]) -> bool {
    const LANES: usize = 16;
    let mut lanes = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|v| v.abs()).sum();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += v.abs();
        }
    }
    (lanes.iter().sum::<f32>() + tail).is_finite()
}

/// Values in all of a model's variables from which an update is split over two threads (below, a thread costs
/// more than it saves).
const PARALLEL_UPDATE_VALUES: usize = 200_000;

/// Fails with [`TrainError::NonFinite`] naming `location` if any element is NaN or infinite.
pub fn ensure_finite(t: &Tensor, location: &str, step: u64) -> Result<(), TrainError> {
    let total = t.abs()?.sum_all()?.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?;
    if total.is_finite() { Ok(()) } else { Err(TrainError::NonFinite { location: location.to_owned(), step }) }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::{Optimizer, OptimizerKind, Overwrite, Refused, Rule};
    use crate::train::TrainError;

    /// The one-loop update gives the tensor operations' values and moments (to a few float roundings), for both
    /// optimisers, on a first step and a later one, and refuses a non-finite gradient or value.
    #[test]
    fn the_fused_update_equals_the_tensor_operations() {
        let device = Device::Cpu;
        let values: Vec<f32> = (0..1000).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
        let make = |f: &dyn Fn(f32) -> f32| values.iter().map(|&x| f(x)).collect::<Vec<f32>>();
        let (w, m, v, g) = (make(&|x| x), make(&|x| 0.1 * x.sin()), make(&|x| 0.01 * x * x), make(&|x| x.cos() - 0.3));
        let tensor = |data: &[f32]| Tensor::from_slice(data, (40, 25), &device).expect("tensor");
        for kind in [OptimizerKind::Adam, OptimizerKind::RmsProp] {
            for t in [1, 5] {
                let rule = Rule { kind, learning_rate: 3e-3, t };
                let (mut w2, mut m2, mut v2) = (vec![0.0; 1000], vec![0.0; 1000], vec![0.0; 1000]);
                rule.fused_update(&w, &m, &v, &g, (&mut w2, &mut m2, &mut v2)).expect("update");
                let reference = rule
                    .update_by_tensor_ops(&tensor(&w), (&tensor(&m), &tensor(&v)), &tensor(&g), "w", 1)
                    .expect("update");
                let pairs = [(&w2, &reference.0), (&m2, &reference.1), (&v2, &reference.2)];
                for (what, (a, b)) in ["value", "first moment", "second moment"].iter().zip(pairs) {
                    let b: Vec<f32> = b.flatten_all().and_then(|t| t.to_vec1()).expect("b");
                    for (x, y) in a.iter().zip(&b) {
                        assert!((x - y).abs() <= 1e-6 * (1.0 + y.abs()), "{kind:?} t {t} {what}: {x} vs {y}");
                    }
                }
            }
            let rule = Rule { kind, learning_rate: 3e-3, t: 1 };
            let (mut w2, mut m2, mut v2) = (vec![0.0; 1000], vec![0.0; 1000], vec![0.0; 1000]);
            let mut bad = g.clone();
            bad[500] = f32::NAN;
            assert_eq!(rule.fused_update(&w, &m, &v, &bad, (&mut w2, &mut m2, &mut v2)), Err(Refused::Gradient));
            let mut huge = w.clone();
            huge[3] = 3e38;
            huge[4] = 3e38;
            assert_eq!(rule.fused_update(&huge, &m, &v, &g, (&mut w2, &mut m2, &mut v2)), Err(Refused::Value));
        }
    }

    /// Through the optimiser: the flat gradients and the tensor gradients give the same steps; a refused step
    /// leaves the variables and the moments as they were, so the next step is the one it would have been.
    #[test]
    fn a_refused_step_changes_nothing_and_flat_gradients_equal_tensor_gradients() {
        let device = Device::Cpu;
        let start: Vec<f32> = (0..600).map(|i| (i as f32 * 0.37).sin()).collect();
        let grad_at = |k: usize| -> Vec<f32> { (0..600).map(|i| ((i + 7 * k) as f32 * 0.11).cos()).collect() };
        let vars = || {
            [
                Var::from_slice(&start[..500], (20, 25), &device).expect("a"),
                Var::from_slice(&start[500..], 100, &device).expect("b"),
            ]
        };
        let names = ["a".to_owned(), "b".to_owned()];
        let read = |vars: &[Var; 2]| -> Vec<f32> {
            vars.iter()
                .flat_map(|v| v.as_tensor().flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("values"))
                .collect()
        };
        let (flat_vars, tensor_vars, refused_vars) = (vars(), vars(), vars());
        let mut flat = Optimizer::new(OptimizerKind::Adam, 1e-2, &flat_vars).expect("optimiser");
        let mut by_tensor = Optimizer::new(OptimizerKind::Adam, 1e-2, &tensor_vars).expect("optimiser");
        let mut refused = Optimizer::new(OptimizerKind::Adam, 1e-2, &refused_vars).expect("optimiser");
        for k in 0..4 {
            let g = grad_at(k);
            flat.step_with_flat_gradients(&flat_vars, &names, &g, k as u64).expect("flat step");
            let tensors = [
                Some(Tensor::from_slice(&g[..500], (20, 25), &device).expect("ga")),
                Some(Tensor::from_slice(&g[500..], 100, &device).expect("gb")),
            ];
            by_tensor.step_with_gradients(&tensor_vars, &names, &tensors, k as u64).expect("tensor step");
            if k == 2 {
                // The first variable's gradient is fine, the second's is not: neither variable may move.
                let before = read(&refused_vars);
                let mut bad = g.clone();
                bad[550] = f32::INFINITY;
                let err = refused.step_with_flat_gradients(&refused_vars, &names, &bad, 9).expect_err("refused");
                assert!(
                    matches!(err, TrainError::NonFinite { ref location, step: 9 } if location == "the gradient of b"),
                    "{err:?}"
                );
                assert_eq!(read(&refused_vars), before);
            }
            refused.step_with_flat_gradients(&refused_vars, &names, &g, k as u64).expect("step");
            assert_eq!(read(&flat_vars), read(&tensor_vars), "step {k}");
            assert_eq!(read(&flat_vars), read(&refused_vars), "step {k}");
        }
        assert_ne!(read(&flat_vars), start);
        assert!(flat.step_with_flat_gradients(&flat_vars, &names, &[0.0; 599], 5).is_err());
    }

    /// The in-place write fills a variable's own storage, which every clone of it sees, and refuses values of
    /// another length or a tensor that is not contiguous f32.
    #[test]
    fn overwrite_writes_into_the_variable_s_own_storage() {
        let device = Device::Cpu;
        let var = Var::from_slice(&[1.0f32, 2.0, 3.0, 4.0], (2, 2), &device).expect("var");
        let alias = var.as_tensor().clone();
        var.as_tensor().inplace_op1(&Overwrite(&[5.0, 6.0, 7.0, 8.0])).expect("overwrite");
        let seen: Vec<f32> = alias.flatten_all().and_then(|t| t.to_vec1()).expect("values");
        assert_eq!(seen, vec![5.0, 6.0, 7.0, 8.0]);
        assert!(var.as_tensor().inplace_op1(&Overwrite(&[1.0, 2.0])).is_err());
        let wide = Var::from_slice(&[1.0f64, 2.0], 2, &device).expect("f64 var");
        assert!(wide.as_tensor().inplace_op1(&Overwrite(&[1.0, 2.0])).is_err());
    }
}
