//! The contract between a model and the worker thread that trains it: [`Trainer`] (one step, the snapshot, the
//! learning rate), the plain-data [`RunSnapshot`] and [`EpochRecord`] the views draw (with a [`ModelView`], a copy of
//! the parameters) and [`thin_history`] for bounded per-epoch histories. Every model in `models` implements
//! [`Trainer`]; `train` runs it on its own thread and re-exports these types.

use serde::{Deserialize, Serialize};

use crate::Lab;
use crate::compute::TrainError;
use crate::models::ModelView;

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

impl RunSnapshot {
    /// Fraction of the run done, 0 to 1.
    #[must_use]
    pub fn fraction(&self) -> f32 {
        let total = (self.total_epochs * self.steps_per_epoch.max(1)) as f32;
        if total == 0.0 { 0.0 } else { (self.step as f32 / total).min(1.0) }
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
    /// Completed epochs, oldest first (the last one also comes as the worker's `EpochDone` event).
    fn epochs_done(&self) -> usize;
    /// A plain-data copy of the parameters for the views, if the model offers one. Called at most every
    /// [`MODEL_VIEW_INTERVAL_SECS`] while running, so it may copy.
    fn model_view(&self) -> Option<ModelView> {
        None
    }
}

/// Thins a per-epoch history `(epoch, record)` that has grown past `max` entries: keeps the epochs that are
/// multiples of the smallest power-of-two stride that brings it within `max` (epoch 0 always), and the latest.
/// A long run thus stays visible from its start, evenly at a coarser step, with the newest epochs at full
/// resolution until the next thinning, and its memory stays bounded.
pub fn thin_history<T>(history: &mut Vec<(usize, T)>, max: usize) {
    let max = max.max(2);
    if history.len() <= max {
        return;
    }
    let last = history.len() - 1;
    let kept_at =
        |stride: usize| history.iter().enumerate().filter(|(i, (e, _))| *i == last || e % stride == 0).count();
    let mut stride = 2;
    while kept_at(stride) > max {
        stride *= 2;
    }
    let mut i = 0;
    history.retain(|(epoch, _)| {
        let keep = i == last || epoch % stride == 0;
        i += 1;
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::thin_history;

    /// A history recorded every epoch for 10,000 epochs and thinned as it grows never holds more than the limit,
    /// keeps the first and the latest epoch, and covers the run evenly: no gap wider than twice the run over the
    /// limit (a history that halved itself from the front would leave one gap of thousands of epochs after epoch 0).
    #[test]
    fn a_thinned_history_stays_bounded_keeps_both_ends_and_covers_the_run_evenly() {
        let (max, epochs) = (400, 10_000usize);
        let mut history = Vec::new();
        for epoch in 0..=epochs {
            history.push((epoch, ()));
            thin_history(&mut history, max);
            assert!(history.len() <= max, "{} entries after epoch {epoch}", history.len());
            assert_eq!((history[0].0, history[history.len() - 1].0), (0, epoch));
        }
        let widest = history.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap_or(0);
        assert!(widest <= 2 * epochs / max, "widest gap {widest} epochs");
        assert!(history.len() >= max / 2, "{} entries kept", history.len());
    }
}
