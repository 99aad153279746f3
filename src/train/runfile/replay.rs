//! A saved run shown through a worker, as it was saved: finished, with its metrics and model.

use std::sync::Arc;

use super::Run;
use super::tensors::SavedModel;
use crate::compute::cpu::optim::OptimizerState;
use crate::models::resume::TrainState;
use crate::train::{ModelView, RunSnapshot, TrainError, Trainer, TrainerFactory};

impl<M: SavedModel> Run<M> {
    /// A factory for a worker that shows this run as it was saved: finished, with its metrics and model.
    #[must_use]
    pub fn replay_factory(&self) -> TrainerFactory {
        let (snapshot, view, state) = (self.snapshot.clone(), self.model_view(), self.state.clone());
        Box::new(move || {
            let trainer = ReplayTrainer { snapshot: snapshot.clone(), view: view.clone(), state: state.clone() };
            Ok(Box::new(trainer) as Box<dyn Trainer>)
        })
    }
}

/// A finished run played back to the worker: it never trains, and shows the saved metrics and model.
struct ReplayTrainer {
    snapshot: RunSnapshot,
    view: ModelView,
    /// The saved training state, handed on when the run is saved again (so that it can still be continued).
    state: Option<Arc<TrainState>>,
}

impl Trainer for ReplayTrainer {
    fn step(&mut self) -> Result<(), TrainError> {
        Ok(())
    }

    fn finished(&self) -> bool {
        true
    }

    fn snapshot(&self) -> RunSnapshot {
        self.snapshot.clone()
    }

    fn set_learning_rate(&mut self, learning_rate: f64) {
        self.snapshot.learning_rate = learning_rate;
    }

    fn epochs_done(&self) -> usize {
        self.snapshot.history.len()
    }

    fn model_view(&self) -> Option<ModelView> {
        Some(self.view.clone())
    }

    fn train_state(&self) -> Result<TrainState, TrainError> {
        match &self.state {
            Some(state) => Ok(TrainState {
                optimizer: OptimizerState { learning_rate: self.snapshot.learning_rate, ..state.optimizer.clone() },
                ..(**state).clone()
            }),
            None => {
                Err(TrainError::Data("this run was opened without a training state; it cannot be continued".into()))
            }
        }
    }
}
