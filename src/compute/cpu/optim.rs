//! Optimisers over candle variables: RMSprop and Adam as Keras defines them (epsilon 1e-7 unless a model sets its
//! own, as PyTorch's 1e-8).
//!
//! An update is checked for NaN and infinity before it is kept: a bad step leaves the parameters and the optimiser
//! state as they were. The check of the loss that comes before it is
//! [`crate::compute::cpu::guard`]'s.

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::compute::TrainError;
use crate::compute::cpu::dense::{with_cpu_f32, with_cpu_f32_mut};
use crate::compute::cpu::guard::{LastGood, Located, check_loss, loss_value};

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

/// Keras' epsilon, the default: added to the root of the second moment in the update's denominator.
pub const KERAS_EPSILON: f64 = 1e-7;
/// PyTorch's `torch.optim.Adam` epsilon.
pub const TORCH_EPSILON: f64 = 1e-8;
const RHO: f64 = 0.9;
const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;

/// An [`Optimizer`]'s state as plain data ([`Optimizer::state`], [`Optimizer::restore`]).
#[derive(Clone, Debug, PartialEq)]
pub struct OptimizerState {
    /// Which optimiser.
    pub kind: OptimizerKind,
    /// The learning rate in use (the run's, as changed while it trained).
    pub learning_rate: f64,
    /// Updates taken (Adam's bias correction counts them).
    pub steps: i32,
    /// Per variable, in the variables' order: the first moment (Adam; zeros for RMSprop) and the second moment.
    pub moments: Vec<(Vec<f32>, Vec<f32>)>,
}

/// Optimiser state for a fixed list of variables.
pub struct Optimizer {
    kind: OptimizerKind,
    /// Learning rate.
    pub learning_rate: f64,
    /// What the learning rate is multiplied by in the next update: a schedule's factor, set before each step (1
    /// unless a schedule sets it). Not part of the state: a schedule gives it again from the step.
    pub rate_factor: f64,
    /// Per variable: its first moment (Adam) and second moment.
    moments: Vec<Moments>,
    steps: i32,
    /// Added to √v in the update's denominator ([`KERAS_EPSILON`] unless set).
    epsilon: f64,
    /// The largest norm of the whole gradient (all variables together) an update takes: a longer gradient is
    /// scaled down to it first. `None`: no limit.
    clip_norm: Option<f64>,
}

/// One variable's moments.
enum Moments {
    /// A contiguous f32 variable on the CPU: plain values, updated in one loop ([`Rule::fused_update`]). A step
    /// writes the new moments into `next`, and takes them only once every variable's update is known to be finite;
    /// it writes the variable's new values where they lie, and the values they replace into `previous` (or into the
    /// guard's copy, when it is given one), from where a refused step puts them back. The buffers are reused from
    /// step to step; `previous` stays empty until a step needs it.
    Flat { current: (Vec<f32>, Vec<f32>), next: (Vec<f32>, Vec<f32>), previous: Vec<f32> },
    /// Any other variable: tensors, updated by candle's operations ([`Rule::update_by_tensor_ops`]).
    Tensors(Tensor, Tensor),
}

/// One variable's gradient, as a tensor (candle's autograd) or as plain values (a hand-written pass).
#[derive(Clone, Copy)]
enum Gradient<'a> {
    Tensor(&'a Tensor),
    Values(FlatGradients<'a>),
}

/// Gradient values end to end in the variables' order (each variable's in its own order): one buffer, or the sum of
/// two, as a pass that splits its minibatch into two shards gives them (the VAE's); adding the shares inside the
/// update saves a pass over the model.
#[derive(Clone, Copy, Debug)]
pub enum FlatGradients<'a> {
    /// The gradient.
    One(&'a [f32]),
    /// Two shares whose sum is the gradient.
    Sum(&'a [f32], &'a [f32]),
}

impl FlatGradients<'_> {
    /// Values (each share's, for a sum; `None` when the shares' lengths differ).
    #[must_use]
    pub fn len(self) -> Option<usize> {
        match self {
            Self::One(g) => Some(g.len()),
            Self::Sum(a, b) => (a.len() == b.len()).then_some(a.len()),
        }
    }

    /// Whether there are no values.
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.len() == Some(0)
    }

    /// The first `n` values and the rest.
    fn split_at(self, n: usize) -> (Self, Self) {
        match self {
            Self::One(g) => {
                let (head, tail) = g.split_at(n);
                (Self::One(head), Self::One(tail))
            }
            Self::Sum(a, b) => {
                let ((a_head, a_tail), (b_head, b_tail)) = (a.split_at(n), b.split_at(n));
                (Self::Sum(a_head, b_head), Self::Sum(a_tail, b_tail))
            }
        }
    }

    /// The gradient as one buffer.
    #[must_use]
    pub fn to_vec(self) -> Vec<f32> {
        match self {
            Self::One(g) => g.to_vec(),
            Self::Sum(a, b) => a.iter().zip(b).map(|(x, y)| x + y).collect(),
        }
    }
}

/// One variable's update, computed and checked but not yet written.
enum Update {
    /// The new values are written, the old kept, and the new moments wait in the variable's [`Moments::Flat`]
    /// buffers.
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
                    Moments::Flat { current: zeros(), next: zeros(), previous: Vec::new() }
                } else {
                    Moments::Tensors(t.zeros_like()?, t.zeros_like()?)
                })
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(Self { kind, learning_rate, rate_factor: 1.0, moments, steps: 0, epsilon: KERAS_EPSILON, clip_norm: None })
    }

    /// Sets the epsilon added to √v in the update's denominator: where the gradients of many weights are near it (a
    /// deep network's first layers), it sets how fast they move.
    pub fn set_epsilon(&mut self, epsilon: f64) {
        self.epsilon = epsilon;
    }

    /// Sets the largest norm of the whole gradient an update takes (`None`: no limit).
    pub fn set_clip_norm(&mut self, clip_norm: Option<f64>) {
        self.clip_norm = clip_norm;
    }

    /// The optimiser's whole state as plain data, for a checkpoint that continues the run exactly: its kind, the
    /// learning rate in use, the steps taken (Adam's bias correction) and every variable's moments in f32.
    pub fn state(&self) -> candle_core::Result<OptimizerState> {
        let moments = self
            .moments
            .iter()
            .map(|m| match m {
                Moments::Flat { current: (m, v), .. } => Ok((m.clone(), v.clone())),
                Moments::Tensors(m, v) => {
                    let flat = |t: &Tensor| t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>();
                    Ok((flat(m)?, flat(v)?))
                }
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(OptimizerState { kind: self.kind, learning_rate: self.learning_rate, steps: self.steps, moments })
    }

    /// Puts back a state [`Self::state`] took from an optimiser of the same kind over variables of the same sizes.
    ///
    /// # Errors
    /// A message naming what does not fit (the kind, the number of variables, a variable's size); the optimiser is
    /// then unchanged.
    pub fn restore(&mut self, state: &OptimizerState) -> Result<(), String> {
        if state.kind != self.kind {
            return Err(format!("the optimiser is {}, not {}", state.kind.name(), self.kind.name()));
        }
        if state.moments.len() != self.moments.len() {
            return Err(format!("moments of {} variables for {}", state.moments.len(), self.moments.len()));
        }
        for (i, (mine, (m, v))) in self.moments.iter().zip(&state.moments).enumerate() {
            let len = match mine {
                Moments::Flat { current, .. } => current.0.len(),
                Moments::Tensors(t, _) => t.elem_count(),
            };
            if m.len() != len || v.len() != len {
                return Err(format!("variable {}'s moments hold {} values, not {len}", i + 1, m.len()));
            }
        }
        for (mine, (m, v)) in self.moments.iter_mut().zip(&state.moments) {
            match mine {
                Moments::Flat { current, .. } => {
                    current.0.copy_from_slice(m);
                    current.1.copy_from_slice(v);
                }
                Moments::Tensors(tm, tv) => {
                    let back = |t: &Tensor, values: &[f32]| {
                        Tensor::from_slice(values, t.shape(), t.device())?.to_dtype(t.dtype())
                    };
                    let (m2, v2) = (back(tm, m).map_err(|e| e.to_string())?, back(tv, v).map_err(|e| e.to_string())?);
                    (*tm, *tv) = (m2, v2);
                }
            }
        }
        self.learning_rate = state.learning_rate;
        self.steps = state.steps;
        Ok(())
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
        self.apply(vars, names, &grads, None, step)
    }

    /// [`Self::step`] with every variable's gradient end to end, in the order of `vars` (a hand-written pass's
    /// output, taken without a copy). Given the guard's `last_good`, the values the update
    /// replaces go into its copies in the same pass over the model: what [`LastGood::remember`] would do before the
    /// step, without a pass of its own.
    ///
    /// # Errors
    /// [`TrainError::Backend`] when `grads` is not as long as the variables together.
    pub fn step_with_flat_gradients(
        &mut self,
        vars: &[Var],
        names: &[String],
        grads: FlatGradients<'_>,
        last_good: Option<&mut LastGood>,
        step: u64,
    ) -> Result<(), TrainError> {
        let Some(mut left) = grads.len() else {
            return Err(TrainError::Backend("the gradient's shares differ in length".into()));
        };
        let mut rest = grads;
        let mut split = Vec::with_capacity(vars.len());
        for var in vars {
            let n = var.as_tensor().elem_count();
            if left < n {
                return Err(TrainError::Backend("fewer gradient values than variable values".into()));
            }
            let (g, tail) = rest.split_at(n);
            split.push(Some(Gradient::Values(g)));
            (rest, left) = (tail, left - n);
        }
        if left > 0 {
            return Err(TrainError::Backend("more gradient values than variable values".into()));
        }
        self.apply(vars, names, &split, last_good, step)
    }

    /// Computes every variable's update (on two threads for large models) and keeps them only if all are finite:
    /// otherwise the variables written in place are put back, and the moments stay. With `last_good`, the values
    /// each update replaces are written into the guard's copies.
    fn apply(
        &mut self,
        vars: &[Var],
        names: &[String],
        grads: &[Option<Gradient<'_>>],
        last_good: Option<&mut LastGood>,
        step: u64,
    ) -> Result<(), TrainError> {
        let t = self.steps + 1;
        let learning_rate = self.learning_rate * self.rate_factor;
        let grad_scale = match self.clip_norm {
            Some(limit) => {
                let norm = gradient_norm(grads)?;
                if norm.is_finite() && norm > limit { (limit / norm) as f32 } else { 1.0 }
            }
            None => 1.0,
        };
        let rule = Rule { kind: self.kind, learning_rate, t, epsilon: self.epsilon, grad_scale };
        let kept: Option<&[Var]> = match last_good {
            Some(last_good) => Some(last_good.copies_for(vars)?),
            None => None,
        };
        let update = |i: usize, moments: &mut Moments| {
            let grad = grads.get(i).copied().flatten();
            update_one(rule, &vars[i], kept.map(|k| &k[i]), moments, names.get(i), grad, step)
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
        if results.iter().any(Result::is_err) {
            // The error is the first variable's in order; every variable already written goes back.
            for (i, result) in results.iter().enumerate() {
                if let (Ok(Some(Update::Flat)), Moments::Flat { previous, .. }) = (result, &self.moments[i]) {
                    put_back(&vars[i], kept.map(|k| &k[i]), previous)?;
                }
            }
        }
        let updates = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        for (i, (moments, update)) in self.moments.iter_mut().zip(updates).enumerate() {
            match (moments, update) {
                (_, None) => {}
                (Moments::Flat { current, next, .. }, Some(Update::Flat)) => std::mem::swap(current, next),
                (Moments::Tensors(m, v), Some(Update::Tensors { value, moments: (m2, v2) })) => {
                    if let Some(kept) = kept {
                        kept[i].set(vars[i].as_tensor())?;
                    }
                    vars[i].set(&value)?;
                    (*m, *v) = (m2, v2);
                }
                _ => return Err(TrainError::Backend("an update does not match its variable's moments".into())),
            }
        }
        self.steps = t;
        Ok(())
    }
}

/// Writes the values an in-place update replaced (in `kept`, or else in `previous`) back into `var`.
fn put_back(var: &Var, kept: Option<&Var>, previous: &[f32]) -> Result<(), TrainError> {
    let restored = match kept {
        Some(kept) => {
            with_cpu_f32(&[kept.as_tensor()], |old| with_cpu_f32_mut(var.as_tensor(), |w| w.copy_from_slice(old[0])))
                .flatten()
        }
        None => with_cpu_f32_mut(var.as_tensor(), |w| w.copy_from_slice(previous)),
    };
    restored.ok_or_else(|| TrainError::Backend("a refused update could not be put back".into()))
}

/// The new value of one variable and its new moments by `rule` (`None` without a gradient: the variable stays).
/// A CPU f32 variable is updated where it lies, the values it replaces going to `kept` (the guard's copy) or to
/// its own `previous` buffer; a refused update puts them back before it returns.
fn update_one(
    rule: Rule,
    var: &Var,
    kept: Option<&Var>,
    moments: &mut Moments,
    name: Option<&String>,
    grad: Option<Gradient<'_>>,
    step: u64,
) -> Result<Option<Update>, TrainError> {
    let name = name.map_or("a parameter", String::as_str);
    let Some(grad) = grad else { return Ok(None) };
    let value = var.as_tensor();
    match moments {
        Moments::Flat { current: (m, v), next: (m2, v2), previous } => {
            let mut run = |g: FlatGradients<'_>| {
                with_cpu_f32_mut(value, |w| {
                    if let Some(kept) = kept {
                        with_cpu_f32_mut(kept.as_tensor(), |keep| rule.fused_update(w, keep, (m, v), g, (m2, v2)))
                            .unwrap_or(Err(Refused::Shape))
                    } else {
                        previous.resize(w.len(), 0.0);
                        rule.fused_update(w, previous, (m, v), g, (m2, v2))
                    }
                })
            };
            let done = match grad {
                Gradient::Values(g) => run(g),
                Gradient::Tensor(g) => {
                    let g = g.detach().contiguous()?;
                    with_cpu_f32(&[&g], |s| run(FlatGradients::One(s[0]))).flatten()
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
                Gradient::Values(g) => {
                    Tensor::from_vec(g.to_vec(), value.shape(), value.device())?.to_dtype(value.dtype())?
                }
            };
            // Detached: a moment built from a tensor that remembers its graph would keep every step's
            // activations alive through the chain of moments (a leak of a whole forward pass per step).
            let (value, m2, v2) = rule.update_by_tensor_ops(value, (m, v), &g, name, step)?;
            Ok(Some(Update::Tensors { value, moments: (m2, v2) }))
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
    /// Added to √v in the denominator.
    epsilon: f64,
    /// What the gradient is multiplied by first (1 unless a clip norm shortens it).
    grad_scale: f32,
}

impl Rule {
    /// The update of one variable in one pass over its values, where they lie: from its values `w`, moments `m`,
    /// `v` and gradient `g`, the new values into `w`, the old ones into `keep` and the new moments into `next`.
    /// Refused (with `w` put back from `keep`) when Σ|g| or the new Σ|w| is not finite in f32, the same test as
    /// [`ensure_finite`], which also refuses values so large that they add up past f32's range. candle would run
    /// about ten operations, each writing a new tensor through its thread pool, which cost a RealNVP step more than
    /// its gradient. The same update as [`Rule::update_by_tensor_ops`] (the reference the tests compare it with).
    fn fused_update(
        self,
        w: &mut [f32],
        keep: &mut [f32],
        (m, v): (&[f32], &[f32]),
        g: FlatGradients<'_>,
        (m2, v2): (&mut [f32], &mut [f32]),
    ) -> Result<(), Refused> {
        let n = w.len();
        if [keep.len(), m.len(), v.len(), m2.len(), v2.len()] != [n; 5] || g.len() != Some(n) {
            return Err(Refused::Shape);
        }
        let lr = self.learning_rate as f32;
        let eps = self.epsilon as f32;
        let scale = self.grad_scale;
        let (grad_sum, value_sum) = match self.kind {
            OptimizerKind::RmsProp => {
                let (rho, one_minus_rho) = (RHO as f32, (1.0 - RHO) as f32);
                update_in_lanes(w, keep, (m, v), g, (m2, v2), |w, m, v, g| {
                    let g = g * scale;
                    let v2 = v * rho + g * g * one_minus_rho;
                    (w - g / (v2.sqrt() + eps) * lr, m, v2)
                })
            }
            OptimizerKind::Adam => {
                let (b1, b2) = (BETA1 as f32, BETA2 as f32);
                let (one_minus_b1, one_minus_b2) = ((1.0 - BETA1) as f32, (1.0 - BETA2) as f32);
                let t = self.t;
                let (c1, c2) = ((1.0 / (1.0 - BETA1.powi(t))) as f32, (1.0 / (1.0 - BETA2.powi(t))) as f32);
                update_in_lanes(w, keep, (m, v), g, (m2, v2), |w, m, v, g| {
                    let g = g * scale;
                    let m2 = m * b1 + g * one_minus_b1;
                    let v2 = v * b2 + g * g * one_minus_b2;
                    (w - (m2 * c1) / ((v2 * c2).sqrt() + eps) * lr, m2, v2)
                })
            }
        };
        let refused = if !grad_sum.is_finite() {
            Refused::Gradient
        } else if !value_sum.is_finite() {
            Refused::Value
        } else {
            return Ok(());
        };
        w.copy_from_slice(keep);
        Err(refused)
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
        let scaled;
        // Exactly 1 unless a clip shortened the gradient: then it is taken as it is, with no rounding of its own.
        let g = if self.grad_scale.to_bits() == 1.0f32.to_bits() {
            g
        } else {
            scaled = (g * f64::from(self.grad_scale))?;
            &scaled
        };
        let (m2, v2, delta) = match self.kind {
            OptimizerKind::RmsProp => {
                let v2 = ((v * RHO)? + (g.sqr()? * (1.0 - RHO))?)?;
                let delta = g.div(&(v2.sqrt()? + self.epsilon)?)?;
                (m.clone(), v2, delta)
            }
            OptimizerKind::Adam => {
                let m2 = ((m * BETA1)? + (g * (1.0 - BETA1))?)?;
                let v2 = ((v * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?;
                let m_hat = (&m2 / (1.0 - BETA1.powi(t)))?;
                let v_hat = (&v2 / (1.0 - BETA2.powi(t)))?;
                let delta = m_hat.div(&(v_hat.sqrt()? + self.epsilon)?)?;
                (m2, v2, delta)
            }
        };
        let value = (value - (delta * self.learning_rate)?)?;
        ensure_finite(&value, name, step)?;
        Ok((value.detach(), m2.detach(), v2.detach()))
    }
}

/// Lanes of the sums in [`update_in_lanes`].
const LANES: usize = 16;

/// Runs `rule` (values, first moment, second moment, gradient -> new values and moments) over every value, keeping
/// the old values in `keep`, and returns Σ|g| and the new Σ|w|. Both sums run in 16 independent lanes and then
/// across them, so that the loop runs on vector registers: one running sum would wait on each addition in turn,
/// which made a finiteness check slower than the update itself.
fn update_in_lanes(
    w: &mut [f32],
    keep: &mut [f32],
    moments: (&[f32], &[f32]),
    g: FlatGradients<'_>,
    next: (&mut [f32], &mut [f32]),
    rule: impl Fn(f32, f32, f32, f32) -> (f32, f32, f32),
) -> (f32, f32) {
    match g {
        FlatGradients::One(g) => lanes_loop(w, keep, moments, g.chunks(LANES).map(|c| c.iter().copied()), next, rule),
        FlatGradients::Sum(a, b) => {
            let sums = a.chunks(LANES).zip(b.chunks(LANES)).map(|(a, b)| a.iter().zip(b).map(|(x, y)| x + y));
            lanes_loop(w, keep, moments, sums, next, rule)
        }
    }
}

/// [`update_in_lanes`]'s loop, with the gradient as chunks of `LANES` values.
fn lanes_loop<G: Iterator<Item = f32>>(
    w: &mut [f32],
    keep: &mut [f32],
    (m, v): (&[f32], &[f32]),
    g: impl Iterator<Item = G>,
    (m2, v2): (&mut [f32], &mut [f32]),
    rule: impl Fn(f32, f32, f32, f32) -> (f32, f32, f32),
) -> (f32, f32) {
    let (mut grad_lanes, mut value_lanes) = ([0.0f32; LANES], [0.0f32; LANES]);
    let outputs = w.chunks_mut(LANES).zip(keep.chunks_mut(LANES)).zip(m2.chunks_mut(LANES).zip(v2.chunks_mut(LANES)));
    let inputs = m.chunks(LANES).zip(v.chunks(LANES)).zip(g);
    for (((w, keep), (m2, v2)), ((m, v), g)) in outputs.zip(inputs) {
        // Zipped rather than indexed, so that the loop runs without bounds checks; a short last chunk runs the
        // same loop over fewer lanes.
        let lanes = grad_lanes.iter_mut().zip(value_lanes.iter_mut());
        let outs = w.iter_mut().zip(keep.iter_mut()).zip(m2.iter_mut().zip(v2.iter_mut()));
        let ins = m.iter().zip(v).zip(g);
        for ((grad_lane, value_lane), (((w, keep), (m2, v2)), ((&m, &v), g))) in lanes.zip(outs.zip(ins)) {
            let (w_new, m_new, v_new) = rule(*w, m, v, g);
            *grad_lane += g.abs();
            *value_lane += w_new.abs();
            *keep = *w;
            *w = w_new;
            *m2 = m_new;
            *v2 = v_new;
        }
    }
    (grad_lanes.iter().sum(), value_lanes.iter().sum())
}

/// The Euclidean norm of the whole gradient, all variables together, summed in f64: in chunks on rayon's threads,
/// the chunks' sums then added in order, so that a run gives the same norm, to the bit, on any number of threads.
/// (Memory-bound: one read of the gradient; its cost was not timed on its own, see BENCHMARKS.md for the epoch.)
fn gradient_norm(grads: &[Option<Gradient<'_>>]) -> Result<f64, TrainError> {
    use rayon::prelude::*;
    /// Values per chunk: large enough that a chunk outweighs handing it to a thread.
    const CHUNK: usize = 1 << 15;
    // Sixteen running sums (they run on vector registers and do not wait on each other). `b`: a second share to add.
    fn squares(a: &[f32], b: Option<&[f32]>) -> f64 {
        let mut lanes = [0.0f64; 16];
        match b {
            None => {
                for c in a.chunks(16) {
                    for (lane, &x) in lanes.iter_mut().zip(c) {
                        *lane += f64::from(x) * f64::from(x);
                    }
                }
            }
            Some(b) => {
                for (c, d) in a.chunks(16).zip(b.chunks(16)) {
                    for (lane, (&x, &y)) in lanes.iter_mut().zip(c.iter().zip(d)) {
                        let g = f64::from(x + y);
                        *lane += g * g;
                    }
                }
            }
        }
        lanes.iter().sum()
    }
    /// One variable's share of the norm: so many of the chunks below are its own, or its sum of squares is already
    /// known (a tensor's).
    enum Part {
        Chunks(usize),
        Sum(f64),
    }
    // Every variable's chunks go to rayon in one pass (a RealNVP has 72 variables, most of them small: one dispatch
    // each cost more than their sums). The sums are then added per variable and across variables in the same order
    // as one variable at a time would, so the norm does not depend on how the chunks were shared out.
    let mut pieces: Vec<(&[f32], Option<&[f32]>)> = Vec::new();
    let mut parts: Vec<Part> = Vec::with_capacity(grads.len());
    for grad in grads.iter().flatten() {
        let before = pieces.len();
        match *grad {
            Gradient::Values(FlatGradients::One(g)) => pieces.extend(g.chunks(CHUNK).map(|c| (c, None))),
            Gradient::Values(FlatGradients::Sum(a, b)) => {
                pieces.extend(a.chunks(CHUNK).zip(b.chunks(CHUNK)).map(|(a, b)| (a, Some(b))));
            }
            Gradient::Tensor(g) => {
                parts.push(Part::Sum(g.to_dtype(DType::F64)?.sqr()?.sum_all()?.to_scalar::<f64>()?));
                continue;
            }
        }
        parts.push(Part::Chunks(pieces.len() - before));
    }
    let sums: Vec<f64> = pieces.par_iter().map(|&(a, b)| squares(a, b)).collect();
    let mut total = 0.0;
    let mut next = 0;
    for part in parts {
        total += match part {
            Part::Chunks(count) => {
                next += count;
                sums[next - count..next].iter().sum::<f64>()
            }
            Part::Sum(sum) => sum,
        };
    }
    Ok(total.sqrt())
}

/// Values in all of a model's variables from which an update is split over two threads (below, a thread costs
/// more than it saves).
const PARALLEL_UPDATE_VALUES: usize = 200_000;

/// Fails with [`TrainError::NonFinite`] naming `location` if any element is NaN or infinite.
pub fn ensure_finite(t: &Tensor, location: &str, step: u64) -> Result<(), TrainError> {
    let total = t.abs()?.sum_all()?.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?;
    if total.is_finite() { Ok(()) } else { Err(TrainError::NonFinite { location: location.to_owned(), step }) }
}

/// One guarded optimisation step on `loss`: the guard's [`check_loss`] (with `locate`), then [`LastGood::remember`], then the
/// gradients, taken and applied by `optimizer` (which refuses non-finite gradients and values, naming the variable
/// by `names`). Returns the loss.
#[allow(clippy::too_many_arguments, reason = "the step's parts, each from a different field of the trainer")]
pub fn guarded_step(
    optimizer: &mut Optimizer,
    vars: &[Var],
    names: &[String],
    last_good: &mut LastGood,
    loss: &Tensor,
    loss_name: &str,
    step: u64,
    locate: impl FnOnce() -> Located,
) -> Result<f64, TrainError> {
    let value = loss_value(loss)?;
    check_loss(value, vars, last_good, loss_name, step, locate)?;
    last_good.remember(vars)?;
    let grads = loss.backward()?;
    optimizer.step(vars, names, &grads, step)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::{
        FlatGradients, Gradient, KERAS_EPSILON, Optimizer, OptimizerKind, Refused, Rule, TORCH_EPSILON, gradient_norm,
    };
    use crate::compute::TrainError;

    /// The one-loop update gives the tensor operations' values and moments (to a few float roundings), for both
    /// optimisers, on a first step and a later one, and refuses a non-finite gradient or value.
    #[test]
    fn the_fused_update_equals_the_tensor_operations() {
        let device = Device::Cpu;
        let values: Vec<f32> = (0..1000).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
        let make = |f: &dyn Fn(f32) -> f32| values.iter().map(|&x| f(x)).collect::<Vec<f32>>();
        let (w, m, v, g) = (make(&|x| x), make(&|x| 0.1 * x.sin()), make(&|x| 0.01 * x * x), make(&|x| x.cos() - 0.3));
        let tensor = |data: &[f32]| Tensor::from_slice(data, (40, 25), &device).expect("tensor");
        for (kind, epsilon) in [
            (OptimizerKind::Adam, KERAS_EPSILON),
            (OptimizerKind::Adam, TORCH_EPSILON),
            (OptimizerKind::RmsProp, KERAS_EPSILON),
        ] {
            for t in [1, 5] {
                let rule = Rule { kind, learning_rate: 3e-3, t, epsilon, grad_scale: 1.0 };
                let (mut w2, mut keep, mut m2, mut v2) = (w.clone(), vec![0.0; 1000], vec![0.0; 1000], vec![0.0; 1000]);
                rule.fused_update(&mut w2, &mut keep, (&m, &v), FlatGradients::One(&g), (&mut m2, &mut v2))
                    .expect("update");
                assert_eq!(keep, w, "the old values are kept");
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
                // A gradient given as two shares is their sum, to the last bit.
                let (a, b): (Vec<f32>, Vec<f32>) = g.iter().map(|&x| (0.3 * x + 0.1, 0.7 * x - 0.1)).unzip();
                let summed = FlatGradients::Sum(&a, &b).to_vec();
                assert_ne!(summed, g);
                let mut by_parts = (w.clone(), vec![0.0; 1000], vec![0.0; 1000], vec![0.0; 1000]);
                let mut by_sum = by_parts.clone();
                for (state, grads) in
                    [(&mut by_parts, FlatGradients::Sum(&a, &b)), (&mut by_sum, FlatGradients::One(&summed))]
                {
                    let (w2, keep, m2, v2) = state;
                    rule.fused_update(w2, keep, (&m, &v), grads, (m2, v2)).expect("update");
                }
                assert_eq!(by_parts, by_sum, "{kind:?} t {t}");
            }
            // Refused: the values are put back as they were.
            let rule = Rule { kind, learning_rate: 3e-3, t: 1, epsilon: KERAS_EPSILON, grad_scale: 1.0 };
            let (mut keep, mut m2, mut v2) = (vec![0.0; 1000], vec![0.0; 1000], vec![0.0; 1000]);
            let mut bad = g.clone();
            bad[500] = f32::NAN;
            let mut w2 = w.clone();
            let refused = rule.fused_update(&mut w2, &mut keep, (&m, &v), FlatGradients::One(&bad), (&mut m2, &mut v2));
            assert_eq!((refused, &w2), (Err(Refused::Gradient), &w));
            let mut huge = w.clone();
            huge[3] = 3e38;
            huge[4] = 3e38;
            let mut w2 = huge.clone();
            let refused = rule.fused_update(&mut w2, &mut keep, (&m, &v), FlatGradients::One(&g), (&mut m2, &mut v2));
            assert_eq!((refused, &w2), (Err(Refused::Value), &huge));
            let mut short = vec![0.0; 999];
            let refused = rule.fused_update(&mut w2, &mut short, (&m, &v), FlatGradients::One(&g), (&mut m2, &mut v2));
            assert_eq!((refused, &w2), (Err(Refused::Shape), &huge));
        }
    }

    /// Adam's first step from zero moments is lr · g / (|g| + ε) (both moments' bias corrections give back g and g²):
    /// for a gradient of 1e-7, Keras' ε (the default) halves the step and PyTorch's (as set) leaves 1/1.1 of it.
    #[test]
    fn adams_first_step_is_lr_g_over_g_plus_epsilon() {
        let device = Device::Cpu;
        let grads: Vec<f32> = vec![1e-7, -1e-7, 1e-3, 0.0];
        for (epsilon, as_set) in [(KERAS_EPSILON, false), (TORCH_EPSILON, true)] {
            let var = Var::from_slice(&[0f32; 4], 4, &device).expect("var");
            let mut optimizer = Optimizer::new(OptimizerKind::Adam, 1e-3, std::slice::from_ref(&var)).expect("adam");
            if as_set {
                optimizer.set_epsilon(epsilon);
            }
            let g = Tensor::from_slice(&grads, 4, &device).expect("g");
            optimizer.step_with_gradients(std::slice::from_ref(&var), &["w".to_owned()], &[Some(g)], 1).expect("step");
            let moved: Vec<f32> = var.as_tensor().to_vec1().expect("values");
            for (&w, &g) in moved.iter().zip(&grads) {
                let expected = -1e-3 * f64::from(g) / (f64::from(g).abs() + epsilon);
                assert!(
                    (f64::from(w) - expected).abs() <= 1e-6 * expected.abs() + 1e-12,
                    "ε {epsilon}: {w} vs {expected}"
                );
            }
            let half = f64::from(moved[0]) / -1e-3;
            let expected = if as_set { 1.0 / 1.1 } else { 0.5 };
            assert!((half - expected).abs() < 1e-5, "ε {epsilon}: a 1e-7 gradient moves {half} of the learning rate");
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
            flat.step_with_flat_gradients(&flat_vars, &names, FlatGradients::One(&g), None, k as u64)
                .expect("flat step");
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
                let err = refused
                    .step_with_flat_gradients(&refused_vars, &names, FlatGradients::One(&bad), None, 9)
                    .expect_err("refused");
                assert!(
                    matches!(err, TrainError::NonFinite { ref location, step: 9 } if location == "the gradient of b"),
                    "{err:?}"
                );
                assert_eq!(read(&refused_vars), before);
            }
            refused
                .step_with_flat_gradients(&refused_vars, &names, FlatGradients::One(&g), None, k as u64)
                .expect("step");
            assert_eq!(read(&flat_vars), read(&tensor_vars), "step {k}");
            assert_eq!(read(&flat_vars), read(&refused_vars), "step {k}");
        }
        assert_ne!(read(&flat_vars), start);
        assert!(flat.step_with_flat_gradients(&flat_vars, &names, FlatGradients::One(&[0.0; 599]), None, 5).is_err());
    }

    /// The gradient norm over many variables of mixed sizes and kinds (one buffer, two shares, a tensor, none, an
    /// empty one) is the square root of the f64 sum of squares, and the same to the bit however many threads share
    /// the chunks out.
    #[test]
    fn the_gradient_norm_is_the_sum_of_squares_over_all_variables_on_any_number_of_threads() {
        let sizes = [1usize, 256, 0, 65_536, 3, 100_000, 17, 32_768, 512];
        let values: Vec<Vec<f32>> = sizes
            .iter()
            .enumerate()
            .map(|(v, &n)| (0..n).map(|i| (((i * 31 + v * 7) % 101) as f32 - 50.0) / 7.0).collect())
            .collect();
        let halves: Vec<(Vec<f32>, Vec<f32>)> =
            values.iter().map(|g| g.iter().map(|&x| (0.5 * x, x - 0.5 * x)).unzip()).collect();
        let tensor = Tensor::from_slice(&values[5], (400, 250), &Device::Cpu).expect("tensor");
        let grads: Vec<Option<Gradient<'_>>> = (0..sizes.len())
            .map(|v| match v % 4 {
                0 => Some(Gradient::Values(FlatGradients::One(&values[v]))),
                1 => Some(Gradient::Values(FlatGradients::Sum(&halves[v].0, &halves[v].1))),
                2 => None,
                _ => Some(if v == 5 {
                    Gradient::Tensor(&tensor)
                } else {
                    Gradient::Values(FlatGradients::One(&values[v]))
                }),
            })
            .collect();
        let want: f64 = (0..sizes.len())
            .filter(|v| v % 4 != 2)
            .flat_map(|v| values[v].iter().map(|&x| f64::from(x) * f64::from(x)))
            .sum::<f64>()
            .sqrt();
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
            pool.install(|| gradient_norm(&grads)).expect("norm")
        };
        let one = on(1);
        assert!((one - want).abs() <= 1e-12 * want, "norm {one} against {want}");
        for threads in [2, 3, 8] {
            assert_eq!(on(threads).to_bits(), one.to_bits(), "{threads} threads");
        }
    }

    /// With a clip norm, a gradient longer than it steps as that gradient scaled to it, and a shorter one as itself:
    /// by flat gradients (one buffer or two shares) and by tensors alike, for Adam and RMSprop. The gradients grow
    /// from step to step (a constant scale would not show: both optimisers divide it out).
    #[test]
    fn a_clip_norm_scales_a_long_gradient_to_it_and_leaves_a_short_one() {
        let device = Device::Cpu;
        let start: Vec<f32> = (0..70_000).map(|i| (i as f32 * 0.37).sin()).collect();
        let vars = || {
            [
                Var::from_slice(&start[..60_000], (200, 300), &device).expect("a"),
                Var::from_slice(&start[60_000..], 10_000, &device).expect("b"),
            ]
        };
        let read = |vars: &[Var]| -> Vec<f32> {
            vars.iter().flat_map(|v| v.as_tensor().flatten_all().and_then(|t| t.to_vec1()).expect("values")).collect()
        };
        let names = ["a".to_owned(), "b".to_owned()];
        let base: Vec<f32> = (0..70_000).map(|i| ((i * 13 % 97) as f32 - 48.0) / 16.0).collect();
        let norm = base.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt();
        let limit = 2.0 * norm;
        // Step k's gradient is (1 + 3k) times `base`: inside the limit, then 4 and 7 times as long, scaled to it.
        let grads: Vec<Vec<f32>> = (0..3).map(|k| base.iter().map(|&g| g * (1 + 3 * k) as f32).collect()).collect();
        let scales = [1.0f32, 0.5, 2.0 / 7.0];
        for kind in [OptimizerKind::Adam, OptimizerKind::RmsProp] {
            let runs: Vec<([Var; 2], Optimizer)> = (0..5)
                .map(|_| {
                    let v = vars();
                    let o = Optimizer::new(kind, 1e-2, &v).expect("optimiser");
                    (v, o)
                })
                .collect();
            let [mut flat, mut shares, mut tensors, mut scaled, mut unclipped]: [([Var; 2], Optimizer); 5] =
                runs.try_into().unwrap_or_else(|_| unreachable!("five runs"));
            for run in [&mut flat, &mut shares, &mut tensors] {
                run.1.set_clip_norm(Some(limit));
            }
            for (k, (g, scale)) in grads.iter().zip(scales).enumerate() {
                let step = k as u64;
                flat.1.step_with_flat_gradients(&flat.0, &names, FlatGradients::One(g), None, step).expect("flat");
                let (a, b): (Vec<f32>, Vec<f32>) = g.iter().map(|&x| (0.25 * x, 0.75 * x)).unzip();
                shares
                    .1
                    .step_with_flat_gradients(&shares.0, &names, FlatGradients::Sum(&a, &b), None, step)
                    .expect("sum");
                let as_tensors = [
                    Some(Tensor::from_slice(&g[..60_000], (200, 300), &device).expect("ga")),
                    Some(Tensor::from_slice(&g[60_000..], 10_000, &device).expect("gb")),
                ];
                tensors.1.step_with_gradients(&tensors.0, &names, &as_tensors, step).expect("tensors");
                let by_hand: Vec<f32> = g.iter().map(|&x| x * scale).collect();
                scaled
                    .1
                    .step_with_flat_gradients(&scaled.0, &names, FlatGradients::One(&by_hand), None, step)
                    .expect("s");
                unclipped
                    .1
                    .step_with_flat_gradients(&unclipped.0, &names, FlatGradients::One(g), None, step)
                    .expect("u");
            }
            let want = read(&scaled.0);
            let close = |got: &[f32]| got.iter().zip(&want).all(|(x, y)| (x - y).abs() <= 1e-5 * (1.0 + y.abs()));
            for (how, run) in [("one buffer", &flat), ("two shares", &shares), ("tensors", &tensors)] {
                assert!(close(&read(&run.0)), "{kind:?}, {how}: not the steps of the gradients scaled to the limit");
            }
            assert!(!close(&read(&unclipped.0)), "{kind:?}: the test must tell clipped from unclipped steps");
        }
    }
}
