//! Training runs on a background thread. The UI (or the CLI) sends [`Command`]s; the worker owns the model,
//! publishes the latest [`RunSnapshot`] (plain data, no tensors) and rare [`WorkerEvent`]s, and calls a
//! repaint hook. Used by `ui` and `cli`; uses `models` through the [`Trainer`] trait.

pub mod bnn_view;
pub mod export;
pub mod flow_view;
pub mod runfile;
pub mod vae_view;
pub mod view_thread;
mod worker;

pub use worker::{Worker, WorkerState};

use serde::{Deserialize, Serialize};

use crate::Lab;

/// What the UI asks of a run.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Train continuously.
    Resume,
    /// Stop after the current step; the model stays.
    Pause,
    /// Do one optimisation step, then pause.
    Step,
    /// Throw the model away and build a fresh one (paused).
    Reset,
    /// Change the learning rate from the next step on.
    SetLearningRate(f64),
    /// End the run and the thread.
    Stop,
}

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Named metrics (`train_loss`, `test_rmse`, ...), in a stable order.
    pub metrics: Vec<(String, f64)>,
}

impl EpochRecord {
    /// The value of a metric.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// What a run looks like now: plain data the UI can draw.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSnapshot {
    /// Which lab's model.
    pub lab: Lab,
    /// Epochs completed.
    pub epoch: usize,
    /// Epochs the run is set to last.
    pub total_epochs: usize,
    /// Optimisation steps taken in all.
    pub step: u64,
    /// Steps in one epoch.
    pub steps_per_epoch: usize,
    /// Learning rate in use.
    pub learning_rate: f64,
    /// Loss of the latest minibatch.
    pub batch_loss: f64,
    /// Every completed epoch, oldest first.
    pub history: Vec<EpochRecord>,
    /// A plain-data copy of the model for the views; refreshed at most every [`MODEL_VIEW_INTERVAL_SECS`]
    /// while running, and at once on a step, a pause or an epoch's end.
    #[serde(skip)]
    pub model: Option<ModelView>,
}

/// Seconds between copies of the model's parameters while a run is going.
pub const MODEL_VIEW_INTERVAL_SECS: f64 = 0.5;

/// A model's parameters as plain data, for the views (no tensors).
#[derive(Clone, Debug, PartialEq)]
pub enum ModelView {
    /// A normalizing flow.
    Flow {
        /// The optimisation step the parameters are from.
        step: u64,
        /// The layers.
        params: std::sync::Arc<crate::models::params::FlowParams>,
    },
    /// A variational autoencoder.
    Vae {
        /// The optimisation step the parameters are from.
        step: u64,
        /// The encoder and decoder, and the reconstructions after each epoch.
        view: std::sync::Arc<crate::models::vae::VaeView>,
    },
    /// A Bayesian neural network: its posterior now and after each recorded epoch.
    Bnn {
        /// The optimisation step the parameters are from.
        step: u64,
        /// The posterior and its history.
        view: std::sync::Arc<crate::models::bnn::BnnView>,
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

impl RunSnapshot {
    /// Fraction of the run done, 0 to 1.
    #[must_use]
    pub fn fraction(&self) -> f32 {
        let total = (self.total_epochs * self.steps_per_epoch.max(1)) as f32;
        if total == 0.0 { 0.0 } else { (self.step as f32 / total).min(1.0) }
    }
}

/// Something that happened in a run.
#[derive(Clone, Debug, PartialEq)]
pub enum WorkerEvent {
    /// The model is built; the run is paused or running as asked.
    Ready,
    /// An epoch finished.
    EpochDone(EpochRecord),
    /// All epochs are done; the final metrics.
    Finished(EpochRecord),
    /// A loss, gradient or parameter became NaN or infinite; the run paused with the last good parameters.
    NonFinite {
        /// Where, worded to follow "appeared in": the first quantity of the forward pass that held one when the
        /// loss did ("layer 3's output", "the KL term"), "the gradient of layer 2 weights", "layer 2 weights", ...
        location: String,
        /// The step at which it happened.
        step: u64,
    },
    /// Building or training failed (including a panic); the message says why.
    Error(String),
    /// The worker changed state.
    State(WorkerState),
}

/// Why a step could not be taken.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum TrainError {
    /// A value became NaN or infinite; the last good parameters are kept (the update was not applied, or the
    /// parameters went back to those at which the loss was last finite).
    #[error("a non-finite value appeared in {location} at step {step}; the last good parameters are kept")]
    NonFinite {
        /// Where (as in [`WorkerEvent::NonFinite`]).
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

/// A model being trained. Implemented by each lab's model; owned by one worker thread.
pub trait Trainer: Send {
    /// Takes one optimisation step (one minibatch). On error the parameters are unchanged.
    fn step(&mut self) -> Result<(), TrainError>;
    /// True when the configured number of epochs is done.
    fn finished(&self) -> bool;
    /// The latest state as plain data.
    fn snapshot(&self) -> RunSnapshot;
    /// Sets the learning rate for the following steps.
    fn set_learning_rate(&mut self, learning_rate: f64);
    /// Completed epochs, oldest first (the last one also comes as [`WorkerEvent::EpochDone`]).
    fn epochs_done(&self) -> usize;
    /// A plain-data copy of the parameters for the views, if the model offers one. Called at most every
    /// [`MODEL_VIEW_INTERVAL_SECS`] while running, so it may copy.
    fn model_view(&self) -> Option<ModelView> {
        None
    }
}

/// Builds a fresh trainer; called on the worker thread at start and on every reset.
pub type TrainerFactory = Box<dyn FnMut() -> Result<Box<dyn Trainer>, TrainError> + Send>;
