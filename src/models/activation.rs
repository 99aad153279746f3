//! Activation functions shared by the models (and, later, the GPU kernels).

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
            Self::Sigmoid => (x.neg()?.exp()? + 1.0)?.recip(),
            Self::Tanh => x.tanh(),
            // Stable form: max(x, 0) + log(1 + e^-|x|).
            Self::Softplus => x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?,
        }
    }

    /// The same function on one number (reference for tests and CPU fallbacks).
    #[must_use]
    pub fn apply_scalar(self, x: f64) -> f64 {
        match self {
            Self::Identity => x,
            Self::Relu => x.max(0.0),
            Self::LeakyRelu => {
                if x > 0.0 {
                    x
                } else {
                    LEAKY_SLOPE * x
                }
            }
            Self::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Self::Tanh => x.tanh(),
            Self::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
        }
    }
}
