//! The compute layer: the matrix work under the models, apart from what each model is (as candle-core and
//! burn's backends stand apart from their models).
//!
//! - the root holds what both sides share: [`ComputeBackend`] (the API the models and views call for their matrix
//!   work) with its shapes and errors ([`backend`]), [`CandleBackend`] (candle on the CPU: the reference every
//!   kernel is tested against, and the fallback; [`reference`]), plain-data networks and flows ([`params`]),
//!   activations ([`activation`]), the convolutions' geometry ([`conv_geometry`]), the counter-based normal
//!   generator WGSL and the CPU share ([`noise`]), the `bench kernels` figures ([`bench`]) and [`TrainError`];
//! - [`cpu`]: the hand-written CPU kernels and the optimiser's step;
//! - [`gpu`]: wgpu, its adapters and the WGSL kernels.
//!
//! Uses `data` at most; used by `models`, `train`, `ui` and `cli`. Never sees egui.

pub mod activation;
pub mod backend;
pub mod bench;
pub mod conv_geometry;
pub mod cpu;
pub mod gpu;
pub mod noise;
pub mod params;
pub mod reference;

pub use activation::Activation;
pub use backend::{
    ComputeBackend, ComputeError, MatmulShape, MeanFieldLayer, MeanFieldParams, Noise, Rows, WeightsKey,
};
pub use gpu::adapters::{AdapterSummary, ComputeInfo, probe};
pub use gpu::choose::{BackendChoice, Throughput, choose_backend};
pub use gpu::context::ComputeContext;
pub use gpu::kernels::{GpuBackend, GpuPending};
pub use gpu::real::RealGpu;
pub use reference::CandleBackend;

/// Why a training step could not be taken: what the optimiser, the NaN guard and every model's step return.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum TrainError {
    /// A value became NaN or infinite; the last good parameters are kept (the update was not applied, or the
    /// parameters went back to those at which the loss was last finite).
    #[error("a non-finite value appeared in {location} at step {step}; the last good parameters are kept")]
    NonFinite {
        /// Where (worded as the worker's `NonFinite` event says it).
        location: String,
        /// Step number.
        step: u64,
    },
    /// The data does not suit the model.
    #[error("{0}")]
    Data(String),
    /// candle or another library failed.
    #[error("{0}")]
    Backend(String),
}

impl From<candle_core::Error> for TrainError {
    fn from(e: candle_core::Error) -> Self {
        Self::Backend(e.to_string())
    }
}
