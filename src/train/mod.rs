//! Training runs on a background thread. The UI (or the CLI) sends [`Command`]s; the worker owns the model,
//! publishes the latest [`RunSnapshot`] (plain data, no tensors) and rare [`WorkerEvent`]s, and calls a
//! repaint hook. Used by `ui` and `cli`; uses `models` through the [`Trainer`] trait.

pub mod bnn_view;
pub mod export;
pub mod flow_view;
pub mod line_fit;
pub mod nuts_job;
pub mod runfile;
pub mod vae_view;
pub mod view_thread;
mod worker;

use std::sync::Arc;

pub use worker::{Worker, WorkerState};

pub use crate::models::resume::TrainState;

pub use crate::compute::TrainError;
pub use crate::models::ModelView;
pub use crate::models::trainer::{
    EpochRecord, HELD_OUT_WINDOW, MODEL_VIEW_INTERVAL_SECS, RunSnapshot, Trainer, lowest_held_out, trailing_mean,
};

/// What the UI asks of a run.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Train continuously.
    Resume,
    /// Stop after the current step; the model stays.
    Pause,
    /// Do one optimisation step, then pause.
    Step,
    /// Throw the model away and build a fresh one (paused, or finished when it has nothing to train).
    Reset,
    /// Change the learning rate from the next step on.
    SetLearningRate(f64),
    /// Take a checkpoint at the next step boundary: the worker answers with [`WorkerEvent::Checkpoint`] (or
    /// [`WorkerEvent::CheckpointFailed`]) and goes on as it was; writing it is the caller's, on another thread.
    Checkpoint,
    /// End the run and the thread.
    Stop,
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
    /// The checkpoint asked for with [`Command::Checkpoint`], taken between two steps.
    Checkpoint(Arc<Checkpoint>),
    /// A checkpoint could not be taken (a replayed run has no training state); the message says why.
    CheckpointFailed(String),
    /// An epoch ended at the lowest of the run's held-out curve so far ([`Trainer::held_out_metric`], averaged as
    /// [`lowest_held_out`] averages it): the model of that epoch's end, sent once, so that the views can keep the
    /// very model the overfitting note names (the snapshots carry the latest model only).
    LowestHeldOut {
        /// The epoch that ended.
        epoch: usize,
        /// The model at its end.
        view: ModelView,
    },
}

/// A consistent copy of a run between two steps: the snapshot with the model's copy at the same step, and the
/// whole training state, from which the run continues exactly. Plain data only.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// Progress, history and the model's copy (`snapshot.model` is from `snapshot.step`).
    pub snapshot: RunSnapshot,
    /// The training state at the same step.
    pub state: Arc<TrainState>,
}

/// Builds a fresh trainer; called on the worker thread at start and on every reset.
pub type TrainerFactory = Box<dyn FnMut() -> Result<Box<dyn Trainer>, TrainError> + Send>;
