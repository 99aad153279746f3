//! Activation functions shared by the models, the CPU kernels and the candle reference (the WGSL kernels have
//! their own in `shaders/common.wgsl`).

use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

/// A pointwise non-linearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Activation {
    /// f(x) = x.
    Identity,
    /// f(x) = max(x, 0).
    Relu,
    /// f(x) = x for x > 0, else 0.3 x (the course's slope).
    LeakyRelu,
    /// f(x) = 1 / (1 + e^-x).
    Sigmoid,
    /// f(x) = tanh x.
    Tanh,
    /// f(x) = log(1 + e^x).
    Softplus,
}

/// Negative-side slope of [`Activation::LeakyRelu`] (Keras `LeakyReLU(0.3)`, as in the course's VAE).
pub const LEAKY_SLOPE: f64 = 0.3;

impl Activation {
    /// All activations, in menu order.
    pub const ALL: [Self; 6] = [Self::Identity, Self::Relu, Self::LeakyRelu, Self::Sigmoid, Self::Tanh, Self::Softplus];

    /// The slope below zero of a piecewise-linear activation (1 for none, 0 for ReLU, [`LEAKY_SLOPE`]); `None`
    /// for the curved ones. The fused batch-norm operation and the hand-written conv pass take these.
    #[must_use]
    pub fn negative_slope(self) -> Option<f64> {
        match self {
            Self::Identity => Some(1.0),
            Self::Relu => Some(0.0),
            Self::LeakyRelu => Some(LEAKY_SLOPE),
            Self::Sigmoid | Self::Tanh | Self::Softplus => None,
        }
    }

    /// Lower-case name, as on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Relu => "relu",
            Self::LeakyRelu => "leaky-relu",
            Self::Sigmoid => "sigmoid",
            Self::Tanh => "tanh",
            Self::Softplus => "softplus",
        }
    }

    /// Parses a name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Applies the function to a tensor, differentiably.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Identity => Ok(x.clone()),
            Self::Relu => x.relu(),
            Self::LeakyRelu => x.relu()? - (x.neg()?.relu()? * LEAKY_SLOPE)?,
            // σ(x) = (1 + tanh(x / 2)) / 2: the same function, but its gradient stays finite for any x, where
            // 1 / (1 + e^-x) overflows e^-x to infinity below x = -88 and its backward pass gives 0 · ∞ = NaN.
            Self::Sigmoid => (x.affine(0.5, 0.0)?.tanh()? + 1.0)? * 0.5,
            Self::Tanh => x.tanh(),
            // Stable form: max(x, 0) + log(1 + e^-|x|).
            Self::Softplus => x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?,
        }
    }

    /// Applies the function to every value in place (the CPU loops of small networks). The sigmoid uses
    /// [`exp_f32`], which the compiler vectorises, where a call to the C library's `expf` per value would be most
    /// of a small network's forward pass.
    #[allow(clippy::inline_always, reason = "inlined into the caller's vector-instruction dispatch")]
    #[inline(always)]
    pub fn apply_in_place(self, values: &mut [f32]) {
        match self {
            Self::Identity => {}
            Self::Sigmoid => {
                for v in values {
                    *v = 1.0 / (1.0 + exp_f32(-*v));
                }
            }
            _ => {
                for v in values {
                    *v = self.apply_f32(*v);
                }
            }
        }
    }

    /// The same function on one `f32` (the CPU loops of small networks).
    #[must_use]
    pub fn apply_f32(self, x: f32) -> f32 {
        self.apply_float(x)
    }

    /// The same function on one number (reference for tests and CPU fallbacks).
    #[must_use]
    pub fn apply_scalar(self, x: f64) -> f64 {
        self.apply_float(x)
    }

    /// The function in the precision of `x`, every operation in that type.
    fn apply_float<F: num_traits::Float>(self, x: F) -> F {
        let zero = F::zero();
        match self {
            Self::Identity => x,
            Self::Relu => x.max(zero),
            Self::LeakyRelu => {
                if x > zero {
                    x
                } else {
                    F::from(LEAKY_SLOPE).unwrap_or(zero) * x
                }
            }
            Self::Sigmoid => F::one() / (F::one() + (-x).exp()),
            Self::Tanh => x.tanh(),
            Self::Softplus => x.max(zero) + (-x.abs()).exp().ln_1p(),
        }
    }
}

/// `e^x` for `f32` without branches or library calls, so loops over slices vectorise: Cody–Waite range reduction
/// `x = n ln 2 + r` with `|r| <= ln 2 / 2`, the Cephes `expf` polynomial for `e^r`, and `2^n` built in the
/// exponent bits. Within 2 ulp of `f32::exp` on [-87, 88]; inputs beyond are clamped there (`e^-87` ≈ 1.6e-38,
/// `e^88` ≈ 1.7e38).
#[must_use]
#[allow(clippy::inline_always, reason = "inlined into the caller's vector-instruction dispatch")]
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer with plain additions.
    const ROUND: f32 = 12_582_912.0;
    // max and min, not clamp (which checks its bounds and keeps NaN): they map to vector instructions.
    #[allow(clippy::manual_clamp, reason = "see above")]
    let x = x.max(-87.0).min(88.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e_r = p * r * r + r + 1.0;
    // The low bits of `shifted` hold n (its bits are those of 1.5 * 2^23 + n): integer work on the bits, where a
    // float-to-int cast would not vectorise. n is in [-126, 127], so 2^n is a normal number.
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f32::from_bits(n_bits.wrapping_add(127) << 23);
    e_r * scale
}

/// `ln(1 + e)` for `e` in [0, 1] without library calls, so loops over slices vectorise (the softplus of the
/// Bernoulli loss, with `e = e^-|l|`): `2 atanh(s)` with `s = e / (2 + e)` in [0, 1/3], by its odd series to s¹¹.
/// The series' tail is below 1.1e-7 there, and `s` carries no cancellation, so small `e` keep their precision;
/// within 3 ulp of the exact value (tested).
#[must_use]
#[allow(clippy::inline_always, reason = "inlined into the caller's vector-instruction dispatch")]
#[inline(always)]
pub fn ln_1p_unit_f32(e: f32) -> f32 {
    let s = e / (2.0 + e);
    let s2 = s * s;
    let mut p = 1.0 / 11.0_f32;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    p = p * s2 + 1.0;
    2.0 * s * p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_series_ln_1p_is_within_three_ulp_of_the_exact_value_on_the_unit_interval() {
        let mut worst = 0f64;
        for i in 0..=1_000_000 {
            let e = i as f32 * 1e-6;
            let (fast, exact) = (ln_1p_unit_f32(e), f64::from(e).ln_1p());
            // One unit in the last place of f32 near the exact value (up to a factor 2 within a binade).
            let ulp = f64::from(f32::EPSILON) * exact.max(f64::from(f32::MIN_POSITIVE));
            worst = worst.max((f64::from(fast) - exact).abs() / ulp);
        }
        assert!(worst <= 3.0, "worst error {worst} ulp");
        assert!(ln_1p_unit_f32(0.0).abs() < f32::MIN_POSITIVE);
        assert!((ln_1p_unit_f32(1e-30) - 1e-30).abs() < 1e-36);
    }

    #[test]
    fn the_branch_free_exp_is_within_two_ulp_of_the_library_one() {
        let mut worst = 0f32;
        for i in -870_000..=880_000 {
            let x = i as f32 * 1e-4;
            let (fast, exact) = (exp_f32(x), x.exp());
            let ulp = (i64::from(exact.to_bits()) - i64::from(fast.to_bits())).abs() as f32;
            worst = worst.max(ulp);
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert!(exp_f32(-1000.0) > 0.0 && exp_f32(-1000.0) < 1e-37);
        assert!(exp_f32(1000.0).is_finite());
    }

    #[test]
    fn activation_gradients_stay_finite_far_from_zero() {
        let xs = [-200.0f32, -90.0, -5.0, 0.0, 5.0, 90.0, 200.0];
        for a in Activation::ALL {
            let x = candle_core::Var::from_slice(&xs, xs.len(), &candle_core::Device::Cpu).unwrap();
            let y = a.apply(x.as_tensor()).unwrap();
            let grads = y.sum_all().unwrap().backward().unwrap();
            let g = grads.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
            let values = y.to_vec1::<f32>().unwrap();
            for ((x, v), g) in xs.iter().zip(&values).zip(&g) {
                assert!(v.is_finite() && g.is_finite(), "{a:?} at {x}: value {v}, gradient {g}");
                let reference = a.apply_scalar(f64::from(*x)) as f32;
                assert!((v - reference).abs() <= 1e-6 * reference.abs().max(1.0), "{a:?}({x}) = {v}, not {reference}");
            }
        }
    }

    #[test]
    fn in_place_activations_match_the_scalar_ones() {
        let xs: Vec<f32> = (-200..=200).map(|i| i as f32 * 0.05).collect();
        for a in Activation::ALL {
            let mut v = xs.clone();
            a.apply_in_place(&mut v);
            for (x, y) in xs.iter().zip(&v) {
                let reference = a.apply_scalar(f64::from(*x)) as f32;
                assert!((y - reference).abs() <= 1e-6 * reference.abs().max(1.0), "{a:?}({x}) = {y}, not {reference}");
            }
        }
    }
}
