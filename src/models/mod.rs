//! The models, in candle only: no egui, no wgpu. Each exposes a config, a [`trainer::Trainer`] and
//! plain-data results. Used by `train` and `cli`.

pub mod average;
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
    /// The same model without the views' own histories (the BNN's earlier posteriors, the VAE's test images and
    /// their reconstructions): what the epoch scrubber keeps of it and a run file saves of a kept model.
    #[must_use]
    pub fn params_only(&self) -> Self {
        match self {
            Self::Flow { .. } => self.clone(),
            Self::Vae { step, view } => Self::Vae {
                step: *step,
                view: Arc::new(vae::VaeView {
                    params: Arc::clone(&view.params),
                    originals: Arc::default(),
                    reconstructions: Arc::default(),
                }),
            },
            Self::Bnn { step, view } => Self::Bnn {
                step: *step,
                view: Arc::new(bnn::BnnView { params: Arc::clone(&view.params), history: Arc::default() }),
            },
        }
    }

    /// The optimisation step the copy is from.
    #[must_use]
    pub fn step(&self) -> u64 {
        match self {
            Self::Flow { step, .. } | Self::Bnn { step, .. } | Self::Vae { step, .. } => *step,
        }
    }
}
