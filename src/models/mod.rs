//! The models, in candle only: no egui, no wgpu. Each exposes a config, a [`crate::train::Trainer`] and
//! plain-data results. Used by `train` and `cli`.

pub mod activation;
pub mod bnn;
pub mod conv;
pub mod flow;
pub mod guard;
pub mod mlp;
pub mod norm_act;
pub mod optim;
pub mod params;
pub mod stats;
pub mod vae;

pub use activation::Activation;
