//! bayes-explorer: train a Bayesian neural network, a variational autoencoder and a normalizing flow,
//! and watch what they learn. See `ARCHITECTURE.md` for the map of the modules.

pub mod bench;
pub mod cli;
pub mod compute;
pub mod data;
pub mod models;
pub mod train;
pub mod ui;

use serde::{Deserialize, Serialize};

/// The three labs of the app, one per model of the lecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Lab {
    /// Bayesian neural network (wine quality).
    #[default]
    Bnn,
    /// Variational autoencoder (MNIST).
    Vae,
    /// Normalizing flow (two moons).
    Flow,
}

impl Lab {
    /// All labs, in tab order.
    pub const ALL: [Self; 3] = [Self::Bnn, Self::Vae, Self::Flow];

    /// Tab title.
    #[must_use]
    pub fn tab_name(self) -> &'static str {
        match self {
            Self::Bnn => "BNN",
            Self::Vae => "VAE",
            Self::Flow => "Flow",
        }
    }

    /// Full name.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Self::Bnn => "Bayesian neural network",
            Self::Vae => "Variational autoencoder",
            Self::Flow => "Normalizing flow",
        }
    }

    /// The dataset a lab opens with.
    #[must_use]
    pub fn default_data(self) -> data::LoadRequest {
        match self {
            Self::Bnn => data::LoadRequest::Builtin(data::BuiltinFile::WineRed),
            Self::Vae => data::LoadRequest::Builtin(data::BuiltinFile::Mnist5k),
            Self::Flow => data::LoadRequest::Synth(data::SynthSpec::default_for(data::SynthKind::Moons)),
        }
    }
}
