//! The models, in candle only: no egui, no wgpu. Each exposes a config, a [`trainer::Trainer`] and
//! plain-data results. Used by `train` and `cli`.

pub mod bnn;
pub mod conv;
pub mod flow;
pub mod nuts;
pub mod resume;
pub mod stats;
pub mod trainer;
pub mod vae;

use std::sync::Arc;

use crate::compute::params::FlowParams;

/// A model's parameters as plain data, for the views (no tensors).
#[derive(Clone, Debug, PartialEq)]
pub enum ModelView {
    /// A normalizing flow.
    Flow {
        /// The optimisation step the parameters are from.
        step: u64,
        /// The layers.
        params: Arc<FlowParams>,
    },
    /// A variational autoencoder.
    Vae {
        /// The optimisation step the parameters are from.
        step: u64,
        /// The encoder and decoder, and the reconstructions after each epoch.
        view: Arc<vae::VaeView>,
    },
    /// A Bayesian neural network: its posterior now and after each recorded epoch.
    Bnn {
        /// The optimisation step the parameters are from.
        step: u64,
        /// The posterior and its history.
        view: Arc<bnn::BnnView>,
    },
}

impl ModelView {
    /// The optimisation step the copy is from.
    #[must_use]
    pub fn step(&self) -> u64 {
        match self {
            Self::Flow { step, .. } | Self::Bnn { step, .. } | Self::Vae { step, .. } => *step,
        }
    }
}
