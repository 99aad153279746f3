//! The NaN guard every trainer shares. A step measures its loss before it updates anything, so a non-finite loss
//! means the previous update led there: the guard names where the failing minibatch's forward pass first went
//! non-finite (running it again with a [`Probe`], at the parameters that produced the loss), puts back the values
//! at which the loss was last finite ([`LastGood`]) and stops with [`TrainError::NonFinite`]. Non-finite gradients
//! and updates are the optimiser's to catch (the optimiser's step).
//!
//! A step uses it in two pieces, [`check_loss`] then [`LastGood::remember`] (or both at once with
//! [`guarded_step`]), so that a step that takes its gradients its own way (the VAE's shards) shares the same code.
//! The hand-written passes skip `remember`'s own pass over the model: the optimiser writes the values it replaces
//! into the guard's copies as it updates them
//! ([`Optimizer::step_with_flat_gradients`](crate::compute::cpu::optim::Optimizer::step_with_flat_gradients)).

use candle_core::{DType, Tensor, Var};
use rayon::prelude::*;

use crate::compute::TrainError;

/// The values of a model's variables at which the loss was last measured finite (deep copies): where the guard
/// goes back to. Empty before the first step. The copies are made once and then overwritten in place at each step
/// (a step that allocated a model's worth of fresh memory would spend as long again in page faults).
#[derive(Debug, Default)]
pub struct LastGood(Vec<Var>);

impl LastGood {
    /// Keeps copies of the current values of `vars`, at which the loss was just measured finite.
    pub fn remember(&mut self, vars: &[Var]) -> candle_core::Result<()> {
        if self.fits(vars) {
            // Variable by variable on the thread pool: the copies are independent.
            self.0.par_iter().zip(vars).try_for_each(|(kept, var)| kept.set(var.as_tensor()))
        } else {
            self.copy_afresh(vars)
        }
    }

    /// The copies, one per variable of `vars` in its shape, for an optimiser that writes the values it replaces
    /// into them in the same pass as its update ([`crate::compute::cpu::optim::Optimizer::step_with_flat_gradients`]):
    /// [`Self::remember`] without a pass of its own. Copies made here hold the current values.
    pub(crate) fn copies_for(&mut self, vars: &[Var]) -> candle_core::Result<&[Var]> {
        if !self.fits(vars) {
            self.copy_afresh(vars)?;
        }
        Ok(&self.0)
    }

    /// Whether the copies have the variables' shapes, types and devices.
    fn fits(&self, vars: &[Var]) -> bool {
        self.0.len() == vars.len()
            && self.0.iter().zip(vars).all(|(kept, var)| {
                kept.shape() == var.shape() && kept.dtype() == var.dtype() && kept.device().same_device(var.device())
            })
    }

    fn copy_afresh(&mut self, vars: &[Var]) -> candle_core::Result<()> {
        // A fresh copy is not a variable, so the new variable owns it alone (a variable's own tensor would be
        // shared, not copied).
        self.0 = vars.iter().map(|v| Var::from_tensor(&v.as_tensor().copy()?)).collect::<candle_core::Result<_>>()?;
        Ok(())
    }

    /// The remembered values as variables of their own, one per variable (none before the first step): after a
    /// step that was taken, the values it started from, at which its loss was measured finite.
    #[must_use]
    pub fn copies(&self) -> &[Var] {
        &self.0
    }

    /// The remembered values in f32, one vector per variable (`None` before the first step), for a checkpoint.
    pub fn values(&self) -> candle_core::Result<Option<Vec<Vec<f32>>>> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let values = self.0.iter().map(|v| v.as_tensor().to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>());
        values.collect::<candle_core::Result<_>>().map(Some)
    }

    /// Remembers `values` (from [`Self::values`]) as the last good values of `vars`, which they must fit one for
    /// one; `None` forgets them (the state before the first step).
    pub fn set_values(&mut self, vars: &[Var], values: Option<&[Vec<f32>]>) -> Result<(), String> {
        let Some(values) = values else {
            self.0.clear();
            return Ok(());
        };
        if values.len() != vars.len() {
            return Err(format!("the guard's copy holds {} variables, not {}", values.len(), vars.len()));
        }
        let copies = vars
            .iter()
            .zip(values)
            .enumerate()
            .map(|(i, (var, v))| {
                let t = var.as_tensor();
                if v.len() != t.elem_count() {
                    return Err(format!(
                        "the guard's copy of variable {} holds {} values, not {}",
                        i + 1,
                        v.len(),
                        t.elem_count()
                    ));
                }
                let copy = Tensor::from_slice(v, t.shape(), t.device()).and_then(|c| c.to_dtype(t.dtype()));
                copy.and_then(|c| Var::from_tensor(&c)).map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, String>>()?;
        self.0 = copies;
        Ok(())
    }

    /// Writes the remembered values back into `vars` (nothing before the first step).
    fn restore(&self, vars: &[Var]) -> candle_core::Result<()> {
        for (var, good) in vars.iter().zip(&self.0) {
            var.set(good.as_tensor())?;
        }
        Ok(())
    }
}

/// Where a forward pass first went non-finite: the name of the quantity, or `None` when every one was finite.
pub type Located = candle_core::Result<Option<String>>;

/// Checks a step's `loss` (its value, as [`loss_value`] reads it). When it is NaN or infinite: `locate` runs the
/// failing forward pass again, at the parameters that produced the loss, and names the first quantity that holds
/// a NaN or an infinity (`None` when all were finite and only the loss itself overflowed: then `loss_name` is
/// named); then `vars` go back to `last_good`, and the error gives the place and `step`. `locate` runs only on
/// failure; if it fails itself, the loss is named.
pub fn check_loss(
    loss: f64,
    vars: &[Var],
    last_good: &LastGood,
    loss_name: &str,
    step: u64,
    locate: impl FnOnce() -> Located,
) -> Result<(), TrainError> {
    if loss.is_finite() {
        return Ok(());
    }
    let location = match locate() {
        Ok(Some(place)) => place,
        Ok(None) => loss_name.to_owned(),
        Err(e) => {
            log::warn!("cannot tell where the loss went non-finite at step {step}: {e}");
            loss_name.to_owned()
        }
    };
    last_good.restore(vars)?;
    Err(TrainError::NonFinite { location, step })
}

/// A scalar loss as the guard reads it: in f32, the precision the models train in (an f64 loss beyond f32's range
/// counts as infinite).
pub fn loss_value(loss: &Tensor) -> candle_core::Result<f64> {
    Ok(f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?))
}

/// Watches the quantities of a forward pass for the first that holds a NaN or an infinity. Off while training
/// (a check then costs one branch and computes nothing); on when the guard runs a failing pass again.
///
/// The names of the quantities go into "a NaN or infinity appeared in {name} at step {step}", so they read as
/// "layer 3's output", "the KL term"; they never look like a variable's name ("layer 3 weights"), which the
/// optimiser's messages use.
#[derive(Debug, Default)]
pub struct Probe {
    on: bool,
    /// Checks made so far in the current pass.
    checks: usize,
    /// The earliest non-finite quantity: its place among the pass's checks, and its name.
    found: Option<(usize, String)>,
}

impl Probe {
    /// A probe that checks nothing: the training path.
    #[must_use]
    pub fn off() -> Self {
        Self::default()
    }

    /// A probe that checks every quantity.
    #[must_use]
    pub fn on() -> Self {
        Self { on: true, ..Self::default() }
    }

    /// Starts another pass of the same computation (the VAE's second shard): what it finds counts only if it
    /// comes earlier in the pass than what was found already.
    pub fn new_pass(&mut self) {
        self.checks = 0;
    }

    /// Checks `t`, which the pass computes now, and names it `name()` if nothing earlier was found and it holds a
    /// NaN or an infinity.
    pub fn check(&mut self, t: &Tensor, name: impl FnOnce() -> String) -> candle_core::Result<()> {
        if !self.on {
            return Ok(());
        }
        self.checks += 1;
        if self.found.as_ref().is_some_and(|(at, _)| *at <= self.checks) {
            return Ok(());
        }
        if !all_finite(t)? {
            self.found = Some((self.checks, name()));
        }
        Ok(())
    }

    /// The first non-finite quantity, if any.
    #[must_use]
    pub fn found(self) -> Option<String> {
        self.found.map(|(_, name)| name)
    }
}

/// True when every element of `t` is finite. `x - x` is 0 for a finite `x` and NaN for a NaN or an infinity, so
/// the sum is NaN exactly when some element is not finite, whatever the sizes of the others (a sum of the values
/// themselves can overflow).
pub fn all_finite(t: &Tensor) -> candle_core::Result<bool> {
    let t = t.detach();
    Ok(t.sub(&t)?.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?.is_finite())
}

/// Helpers for the models' tests of the guard.
#[cfg(test)]
pub(crate) mod testing {
    use candle_core::{DType, Tensor, Var};

    /// The values of every variable, flattened, in f32.
    pub fn values(vars: &[Var]) -> Vec<Vec<f32>> {
        vars.iter()
            .map(|v| v.as_tensor().to_dtype(DType::F32).and_then(|t| t.flatten_all()?.to_vec1()).expect("values"))
            .collect()
    }

    /// Sets element `index` (in row-major order) of the variable called `name`, or every element when `None`, to
    /// `value`.
    pub fn poke(vars: &[Var], names: &[String], name: &str, index: Option<usize>, value: f32) {
        let Some(at) = names.iter().position(|n| n == name) else { panic!("no variable {name:?} in {names:?}") };
        let var = &vars[at];
        let mut flat = values(std::slice::from_ref(var)).remove(0);
        match index {
            Some(i) => flat[i] = value,
            None => flat.fill(value),
        }
        let t = Tensor::from_vec(flat, var.as_tensor().shape().clone(), var.device()).expect("tensor");
        var.set(&t.to_dtype(var.dtype()).expect("dtype")).expect("set");
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor, Var};

    use super::{LastGood, Probe, all_finite, check_loss};
    use crate::compute::TrainError;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v, v.len(), &Device::Cpu).expect("tensor")
    }

    #[test]
    fn all_finite_sees_every_nan_and_infinity_and_no_overflow() {
        assert!(all_finite(&t(&[0.0, -1.0, 3e38, 3e38, 3e38])).expect("check"), "finite values whose sum overflows");
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert!(!all_finite(&t(&[1.0, bad, 2.0])).expect("check"), "{bad}");
        }
        assert!(all_finite(&t(&[])).expect("check"), "empty");
    }

    #[test]
    fn a_probe_names_the_earliest_non_finite_quantity_over_passes() {
        let (good, bad) = (t(&[1.0]), t(&[f32::INFINITY]));
        let mut probe = Probe::on();
        probe.check(&good, || "first".into()).expect("check");
        probe.check(&good, || "second".into()).expect("check");
        probe.check(&bad, || "third".into()).expect("check");
        probe.check(&bad, || "fourth".into()).expect("check");
        // A second pass that fails earlier wins; one that fails later does not.
        probe.new_pass();
        probe.check(&bad, || "first in the second pass".into()).expect("check");
        assert_eq!(probe.found().as_deref(), Some("first in the second pass"));

        let mut probe = Probe::on();
        probe.check(&bad, || "first".into()).expect("check");
        probe.new_pass();
        probe.check(&good, || "first".into()).expect("check");
        probe.check(&bad, || "second".into()).expect("check");
        assert_eq!(probe.found().as_deref(), Some("first"));

        let mut off = Probe::off();
        off.check(&bad, || unreachable!("an off probe names nothing")).expect("check");
        assert_eq!(off.found(), None);
    }

    #[test]
    fn check_loss_locates_before_restoring_and_names_the_loss_when_nothing_else_is_to_blame() {
        let var = Var::from_tensor(&t(&[1.0, 2.0])).expect("var");
        let vars = [var.clone()];
        let mut last_good = LastGood::default();
        last_good.remember(&vars).expect("remember");
        assert_eq!(check_loss(3.0, &vars, &last_good, "the loss", 7, || unreachable!("only on failure")), Ok(()));

        var.set(&t(&[f32::INFINITY, 5.0])).expect("set");
        let seen = std::cell::RefCell::new(Vec::new());
        let result = check_loss(f64::NAN, &vars, &last_good, "the loss", 8, || {
            seen.borrow_mut().extend(var.as_tensor().to_vec1::<f32>()?);
            Ok(Some("layer 1's output".into()))
        });
        assert_eq!(result, Err(TrainError::NonFinite { location: "layer 1's output".into(), step: 8 }));
        assert_eq!(*seen.borrow(), [f32::INFINITY, 5.0], "locate runs at the values that failed");
        assert_eq!(var.as_tensor().to_vec1::<f32>().expect("values"), [1.0, 2.0], "then they are restored");

        let result = check_loss(f64::INFINITY, &vars, &last_good, "the loss", 9, || Ok(None));
        assert_eq!(result, Err(TrainError::NonFinite { location: "the loss".into(), step: 9 }));
        let result = check_loss(f64::INFINITY, &vars, &last_good, "the loss", 9, || candle_core::bail!("broken"));
        assert_eq!(result, Err(TrainError::NonFinite { location: "the loss".into(), step: 9 }));
    }
}
