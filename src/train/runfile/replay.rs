//! A saved run shown through a worker, as it was saved: finished, with its metrics and model.

use super::Run;
use super::tensors::SavedModel;
use crate::train::{ModelView, RunSnapshot, TrainError, Trainer, TrainerFactory};

impl<M: SavedModel> Run<M> {
    /// A factory for a worker that shows this run as it was saved: finished, with its metrics and model.
    #[must_use]
    pub fn replay_factory(&self) -> TrainerFactory {
        let (snapshot, view) = (self.snapshot.clone(), self.model_view());
        Box::new(move || {
            Ok(Box::new(ReplayTrainer { snapshot: snapshot.clone(), view: view.clone() }) as Box<dyn Trainer>)
        })
    }
}

/// A finished run played back to the worker: it never trains, and shows the saved metrics and model.
struct ReplayTrainer {
    snapshot: RunSnapshot,
    view: ModelView,
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
}
