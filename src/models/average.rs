//! A moving average of a model's weights (Polyak averaging as an exponential moving average): each step that is
//! taken moves each variable's average towards the values the step started from, `a ← d a + (1 − d) w`, with
//! `d = min(decay, (1 + t) / (10 + t))` at step `t` (TensorFlow's `ExponentialMovingAverage` with its step count, so
//! the first steps do not drag the average back to the initial weights). Those values are the NaN guard's copy:
//! the ones at which the step measured its loss finite. So the average holds only weights whose loss was finite,
//! and a step the guard refuses (which sends the weights back to that copy) leaves it as it was; a resumed run
//! continues it exactly, the guard's copy being part of its saved state. The optimiser steps the weights as ever;
//! the model a run shows, evaluates and saves is the average, which smooths the noise a constant learning rate
//! leaves in the last steps.
//!
//! The average lives beside the variables, over the same storage: [`WeightAverage::with_average`] swaps the
//! averaged values into the variables for the length of a closure (an evaluation, a copy for the views) and back.

use std::sync::Mutex;

use candle_core::Var;

use crate::compute::TrainError;
use crate::compute::cpu::dense::{with_cpu_f32, with_cpu_f32_mut};

/// Prefix of the averaged values' names in a run's saved state ("weight average of layer 1 scale net dense 1
/// weights").
const NAME_PREFIX: &str = "weight average of ";

/// The exponential moving average of a list of CPU f32 variables.
pub struct WeightAverage {
    decay: f64,
    /// The variables (sharing their storage with the model's).
    vars: Vec<Var>,
    /// Their names, for the saved state.
    names: Vec<String>,
    /// The averages, one per variable, in its element order. Behind a lock only so that a `&self` evaluation can
    /// swap them in and out.
    values: Mutex<Vec<Vec<f32>>>,
}

impl WeightAverage {
    /// An average of `vars` (named `names`) with `decay` (in (0, 1)), starting at their values now.
    ///
    /// # Errors
    /// A variable that is not a contiguous f32 tensor on the CPU.
    pub fn new(decay: f64, vars: &[Var], names: &[String]) -> Result<Self, TrainError> {
        let values = vars.iter().map(values_of).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { decay, vars: vars.to_vec(), names: names.to_vec(), values: Mutex::new(values) })
    }

    /// The factor the average keeps at step `step` (1-based).
    #[must_use]
    pub fn factor(&self, step: u64) -> f64 {
        let t = step as f64;
        self.decay.min((1.0 + t) / (10.0 + t))
    }

    /// Moves the average towards `weights` (values of the variables, one per variable in their order: the values
    /// step `step`, 1-based, started from).
    ///
    /// # Errors
    /// Weights that do not fit the variables, or that are not contiguous f32 tensors on the CPU.
    pub fn update(&mut self, weights: &[Var], step: u64) -> Result<(), TrainError> {
        let d = self.factor(step) as f32;
        let values = self.values.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        if weights.len() != values.len() {
            return Err(TrainError::Backend(format!("{} weights for an average of {}", weights.len(), values.len())));
        }
        for (var, average) in weights.iter().zip(values.iter_mut()) {
            if var.as_tensor().elem_count() != average.len() {
                return Err(TrainError::Backend("weights of another shape than their average".into()));
            }
            with_cpu_f32(&[var.as_tensor()], |w| blend(average, w[0], d)).ok_or_else(not_on_cpu)?;
        }
        Ok(())
    }

    /// Runs `f` with the averaged values in the variables, then puts the variables' own values back (also when `f`
    /// panics).
    ///
    /// # Errors
    /// A variable that is no longer a contiguous f32 tensor on the CPU (the variables are then as they were).
    pub fn with_average<R>(&self, f: impl FnOnce() -> R) -> Result<R, TrainError> {
        let mut values = self.values.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let swapped = Swapped::new(&self.vars, &mut values)?;
        let result = f();
        drop(swapped);
        Ok(result)
    }

    /// The averages as named values, for a run's saved state.
    #[must_use]
    pub fn state(&self) -> Vec<(String, Vec<f32>)> {
        let values = self.values.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.names.iter().map(|n| format!("{NAME_PREFIX}{n}")).zip(values.iter().cloned()).collect()
    }

    /// Puts back averages [`Self::state`] took from the same model.
    ///
    /// # Errors
    /// A message naming an average that is missing, unknown or of the wrong size; the average is then unchanged.
    pub fn restore(&mut self, state: &[(String, Vec<f32>)]) -> Result<(), String> {
        let values = self.values.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.len() != values.len() {
            return Err(format!("{} weight averages for {} variables", state.len(), values.len()));
        }
        for ((name, saved), (own, mine)) in state.iter().zip(self.names.iter().zip(values.iter())) {
            if name.strip_prefix(NAME_PREFIX) != Some(own.as_str()) {
                return Err(format!("\"{name}\" where the {NAME_PREFIX}{own} was expected"));
            }
            if saved.len() != mine.len() {
                return Err(format!("the {name} holds {} values, not {}", saved.len(), mine.len()));
            }
        }
        for (mine, (_, saved)) in values.iter_mut().zip(state) {
            mine.copy_from_slice(saved);
        }
        Ok(())
    }

    /// `f()` of the model a run keeps: with `average`'s values in the variables where the run keeps one (and theirs
    /// back afterwards), else of the variables as they are.
    ///
    /// # Errors
    /// `f`'s, or a variable that is no longer a contiguous f32 tensor on the CPU.
    pub fn apply<R>(average: Option<&Self>, f: impl FnOnce() -> Result<R, TrainError>) -> Result<R, TrainError> {
        match average {
            Some(average) => average.with_average(f)?,
            None => f(),
        }
    }

    /// [`Self::apply`] for an `f` that needs the average's owner mutably: the average is taken out of the owner's
    /// `slot` for the call and put back.
    ///
    /// # Errors
    /// As [`Self::apply`].
    pub fn apply_mut<T, R>(
        owner: &mut T,
        slot: fn(&mut T) -> &mut Option<Self>,
        f: impl FnOnce(&mut T) -> Result<R, TrainError>,
    ) -> Result<R, TrainError> {
        let Some(average) = slot(owner).take() else { return f(owner) };
        let result = average.with_average(|| f(owner));
        *slot(owner) = Some(average);
        result?
    }

    /// Puts the averages among a model's saved extra values back into `slot` and returns the other values; a saved
    /// average where the model (`model`, for the message) keeps none is refused.
    ///
    /// # Errors
    /// As [`Self::restore`], or averages saved for a model that keeps none.
    pub fn restore_from(
        slot: &mut Option<Self>,
        extra: &[(String, Vec<f32>)],
        model: &str,
    ) -> Result<Vec<(String, Vec<f32>)>, String> {
        let (averages, rest): (Vec<_>, Vec<_>) = extra.iter().cloned().partition(|(name, _)| Self::owns(name));
        match (slot, averages.first()) {
            (Some(average), _) => average.restore(&averages)?,
            (None, None) => {}
            (None, Some((name, _))) => return Err(format!("this {model} keeps no {name}")),
        }
        Ok(rest)
    }

    /// Whether a saved value's name is one of an average's.
    #[must_use]
    pub fn owns(name: &str) -> bool {
        name.starts_with(NAME_PREFIX)
    }
}

/// Values per task of [`blend`]: large enough that a task outweighs its scheduling, small enough that a layer's
/// weights are shared among the threads.
const BLEND_CHUNK: usize = 1 << 15;

/// `a ← d a + (1 − d) w`, element by element, in chunks on rayon's threads: the update reads and writes every
/// weight's average once per step (about 13 MB for the MLP VAE), which one core does at the speed of its memory;
/// two or more share it.
fn blend(average: &mut [f32], weights: &[f32], d: f32) {
    use rayon::prelude::{IndexedParallelIterator, ParallelIterator, ParallelSlice, ParallelSliceMut};
    let one = |a: &mut [f32], w: &[f32]| {
        for (a, &w) in a.iter_mut().zip(w) {
            *a = d * *a + (1.0 - d) * w;
        }
    };
    if average.len() <= BLEND_CHUNK {
        one(average, weights);
    } else {
        average.par_chunks_mut(BLEND_CHUNK).zip(weights.par_chunks(BLEND_CHUNK)).for_each(|(a, w)| one(a, w));
    }
}

/// The variables with the averages swapped in; dropping it swaps them back.
struct Swapped<'a> {
    vars: &'a [Var],
    values: &'a mut [Vec<f32>],
}

impl<'a> Swapped<'a> {
    fn new(vars: &'a [Var], values: &'a mut [Vec<f32>]) -> Result<Self, TrainError> {
        for (k, (var, average)) in vars.iter().zip(values.iter_mut()).enumerate() {
            if with_cpu_f32_mut(var.as_tensor(), |w| w.swap_with_slice(average)).is_none() {
                // Put back the ones already swapped.
                for (var, average) in vars.iter().zip(values.iter_mut()).take(k) {
                    with_cpu_f32_mut(var.as_tensor(), |w| w.swap_with_slice(average));
                }
                return Err(not_on_cpu());
            }
        }
        Ok(Self { vars, values })
    }
}

impl Drop for Swapped<'_> {
    fn drop(&mut self) {
        for (var, average) in self.vars.iter().zip(self.values.iter_mut()) {
            with_cpu_f32_mut(var.as_tensor(), |w| w.swap_with_slice(average));
        }
    }
}

fn values_of(var: &Var) -> Result<Vec<f32>, TrainError> {
    with_cpu_f32(&[var.as_tensor()], |w| w[0].to_vec()).ok_or_else(not_on_cpu)
}

fn not_on_cpu() -> TrainError {
    TrainError::Backend("a weight average needs contiguous f32 variables on the CPU".into())
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::WeightAverage;
    use crate::compute::cpu::dense::with_cpu_f32;

    fn values(var: &Var) -> Vec<f32> {
        with_cpu_f32(&[var.as_tensor()], |w| w[0].to_vec()).unwrap()
    }

    /// The average after a sequence of values equals the closed form Σ_t w_t (1 − d_t) Π_{s>t} d_s + w_0 Π d_s,
    /// and a constant variable's average stays at its value.
    #[test]
    fn the_average_follows_its_recursion_and_swaps_in_and_out() {
        let var = Var::from_slice(&[1.0f32, -2.0], 2, &Device::Cpu).unwrap();
        let still = Var::from_slice(&[0.5f32], 1, &Device::Cpu).unwrap();
        let names = vec!["a".to_owned(), "b".to_owned()];
        let mut average = WeightAverage::new(0.9, &[var.clone(), still.clone()], &names).unwrap();
        let mut expected = [1.0f64, -2.0];
        let mut w = [1.0f32, -2.0];
        for step in 1..=40u64 {
            w = [w[0] + 0.25, w[1] * 0.9 + 0.1];
            var.set(&candle_core::Tensor::from_slice(&w, 2, &Device::Cpu).unwrap()).unwrap();
            average.update(&[var.clone(), still.clone()], step).unwrap();
            let d = 0.9f64.min((1.0 + step as f64) / (10.0 + step as f64));
            for (e, &v) in expected.iter_mut().zip(&w) {
                *e = d * *e + (1.0 - d) * f64::from(v);
            }
        }
        assert!((average.factor(1) - 2.0 / 11.0).abs() < 1e-12, "the first steps are weighted up");
        assert!((average.factor(1000) - 0.9).abs() < 1e-12);
        let seen = average.with_average(|| (values(&var), values(&still))).unwrap();
        for (got, want) in seen.0.iter().zip(expected) {
            assert!((f64::from(*got) - want).abs() < 1e-4, "{got} against {want}");
        }
        assert_eq!(seen.1, [0.5], "a variable that does not move averages to itself");
        // The variables' own values are back afterwards, and a saved state restores the same average.
        assert_eq!(values(&var), w);
        let state = average.state();
        assert_eq!(state[0].0, "weight average of a");
        let mut other = WeightAverage::new(0.9, &[var.clone(), still.clone()], &names).unwrap();
        assert_ne!(other.state(), state);
        other.restore(&state).unwrap();
        assert_eq!(other.state(), state);
        assert!(other.restore(&state[..1]).is_err(), "a state of another model");
        assert!(other.update(std::slice::from_ref(&var), 41).is_err(), "weights of another model");
    }

    /// A variable of several of [`super::BLEND_CHUNK`]'s chunks (the last one ragged), updated on rayon's threads,
    /// gets the element-wise recursion to the bit.
    #[test]
    fn a_large_variable_blends_in_chunks_as_element_by_element() {
        let n = 3 * super::BLEND_CHUNK + 5;
        let start: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        let next: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
        let var = Var::from_slice(&start, n, &Device::Cpu).unwrap();
        let mut average = WeightAverage::new(0.9, std::slice::from_ref(&var), &["big".to_owned()]).unwrap();
        var.set(&candle_core::Tensor::from_slice(&next, n, &Device::Cpu).unwrap()).unwrap();
        average.update(std::slice::from_ref(&var), 1000).unwrap();
        let d = 0.9f32;
        let expected: Vec<f32> = start.iter().zip(&next).map(|(&a, &w)| d * a + (1.0 - d) * w).collect();
        assert_eq!(average.state()[0].1, expected);
    }
}
