//! Overfitting read off a run's loss curves: the held-out loss has risen well above its lowest while the training
//! loss went on falling: the model fits its training rows ever more closely and the density they came from ever less
//! well. Seen in the flow lab on the Palmer penguins' bills (274 training
//! points, the course's RealNVP of 6 couplings of 4 x 256): held-out NLL lowest at epoch 24 (2.68), 2.96 at epoch
//! 300, while the training NLL fell from 2.63 to 2.36. Not on the four built-in 2-D sets at their defaults (seed 42):
//! the moons' held-out NLL is lowest at the last epoch, the circles' and the pinwheel's rise 0.02 nats past their
//! lowest, and the eight Gaussians' 0.15 nats over the last 70 epochs with the training NLL level (a few held-out
//! points between the modes, not a fit to the training points).

use crate::train::{HELD_OUT_WINDOW, RunSnapshot, lowest_held_out, trailing_mean};

/// Epochs each curve is averaged over (trailing), so that one epoch's jump neither makes nor hides a rise: the
/// window the trainer keeps the model of the held-out loss's lowest by.
pub(crate) const WINDOW: usize = HELD_OUT_WINDOW;

/// The held-out loss's rise from its lowest (averaged, in the loss's units: nats) that is called overfitting, when
/// the training loss has fallen by at least [`FELL`] meanwhile.
pub(crate) const RISE: f64 = 0.1;

/// How much the training loss must have fallen since the held-out loss's lowest: a held-out loss that rises while
/// the training loss stays level is no fit to the training rows.
pub(crate) const FELL: f64 = 0.05;

/// The held-out loss past its lowest, as the curves show it (each averaged over the [`WINDOW`] epochs to it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rise {
    /// The epoch of the held-out loss's lowest.
    pub best_epoch: usize,
    /// The held-out loss there, and at the last epoch.
    pub held_out: (f64, f64),
    /// The training loss there, and at the last epoch.
    pub train: (f64, f64),
}

impl Rise {
    /// What the rise means and what to do, for a lab whose losses are `held_out` and `train` ("held-out NLL",
    /// "training NLL") over `n_train` rows.
    pub(crate) fn note(&self, (held_out, train): (&str, &str), n_train: Option<usize>) -> String {
        let rows = n_train.map_or_else(
            || "its training rows".to_owned(),
            |n| format!("its {} training rows", crate::data::table::grouped(n)),
        );
        let Self { best_epoch, held_out: (best, last), train: (train_best, train_last) } = *self;
        format!(
            "Overfitting: the {held_out} has risen from {best:.2} at epoch {best_epoch}, its lowest, to {last:.2}, \
             while the {train} went on falling ({train_best:.2} to {train_last:.2}). Since epoch {best_epoch} the \
             model has learned {rows} more closely than the density they were drawn from. Fewer epochs, fewer \
             hidden units or more rows keep it general."
        )
    }
}

/// The held-out curve `held_out`'s rise past its lowest against the training curve `train`, where it is overfitting
/// ([`RISE`], [`FELL`]); `None` otherwise, and for a run of fewer than three [`WINDOW`]s of epochs.
pub(crate) fn held_out_rise(snapshot: &RunSnapshot, train: &str, held_out: &str) -> Option<Rise> {
    let points = curves(snapshot, train, held_out);
    if points.len() < 3 * WINDOW {
        return None;
    }
    let trained: Vec<f64> = points.iter().map(|p| p.1).collect();
    let held: Vec<f64> = points.iter().map(|p| p.2).collect();
    // The lowest as the trainer finds it, which sends that epoch's model.
    let best = lowest_held_out(&held)?;
    let last = points.len() - 1;
    let rise = Rise {
        best_epoch: points[best].0,
        held_out: (trailing_mean(&held, best), trailing_mean(&held, last)),
        train: (trailing_mean(&trained, best), trailing_mean(&trained, last)),
    };
    (rise.held_out.1 - rise.held_out.0 >= RISE && rise.train.0 - rise.train.1 >= FELL).then_some(rise)
}

/// Each epoch's (epoch, training, held-out) figures, where both are in; none where one is not finite (a run stopped
/// by a NaN has nothing to say about overfitting).
fn curves(snapshot: &RunSnapshot, train: &str, held_out: &str) -> Vec<(usize, f64, f64)> {
    let points: Vec<(usize, f64, f64)> =
        snapshot.history.iter().filter_map(|r| Some((r.epoch, r.get(train)?, r.get(held_out)?))).collect();
    if points.iter().any(|(_, t, h)| !t.is_finite() || !h.is_finite()) { Vec::new() } else { points }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::EpochRecord;

    fn run(curves: impl Iterator<Item = (f64, f64)>) -> RunSnapshot {
        let history = curves
            .enumerate()
            .map(|(i, (train, held))| EpochRecord {
                epoch: i + 1,
                metrics: vec![("train_nll".into(), train), ("heldout_nll".into(), held)],
            })
            .collect();
        RunSnapshot { history, ..RunSnapshot::default() }
    }

    /// The penguins' curves in shape: the held-out loss falls to epoch 24, then climbs as the training loss falls.
    #[test]
    fn a_held_out_loss_that_climbs_as_the_training_loss_falls_is_overfitting() {
        let curves = (1..=300).map(|e| {
            let e = f64::from(e);
            let train = 2.7 - 0.001 * e;
            let held = if e <= 24.0 { 2.7 - 0.001 * e } else { 2.676 + 0.001 * (e - 24.0) };
            // A wobble of an epoch's noise on both.
            let wobble = 0.02 * (e * 1.7).sin();
            (train + wobble, held - wobble)
        });
        let snapshot = run(curves);
        let rise = held_out_rise(&snapshot, "train_nll", "heldout_nll").expect("overfitting");
        // The epoch whose model the trainer sends to keep ([`crate::train::lowest_held_out`]) is the note's.
        let held: Vec<f64> = snapshot.history.iter().filter_map(|r| r.get("heldout_nll")).collect();
        assert_eq!(lowest_held_out(&held).map(|i| i + 1), Some(rise.best_epoch), "the model to keep");
        assert!((20..=30).contains(&rise.best_epoch), "{rise:?}");
        assert!(rise.held_out.1 - rise.held_out.0 > 0.25 && rise.train.0 - rise.train.1 > 0.25, "{rise:?}");
        let note = rise.note(("held-out NLL", "training NLL"), Some(274));
        assert!(note.starts_with("Overfitting: the held-out NLL has risen from 2.6"), "{note}");
        assert!(note.contains("its 274 training rows"), "{note}");
    }

    /// Falling to the end (the moons), a rise with the training loss level (the eight Gaussians' held-out jumps), a
    /// rise too small, one as the training loss falls too little, and a run too short: none is called overfitting.
    #[test]
    fn other_curves_are_not_overfitting() {
        let falling = (1..=300).map(|e| (1.5 - 0.001 * f64::from(e), 1.55 - 0.001 * f64::from(e)));
        assert_eq!(held_out_rise(&run(falling), "train_nll", "heldout_nll"), None);
        let level = (1..=300).map(|e| (0.05, if e < 230 { 0.04 } else { 0.04 + 0.003 * f64::from(e - 230) }));
        assert_eq!(held_out_rise(&run(level), "train_nll", "heldout_nll"), None, "0.2 nats with the training level");
        let small = (1..=300).map(|e| (2.0 - 0.001 * f64::from(e), 2.0 + 0.0002 * f64::from(e)));
        assert_eq!(held_out_rise(&run(small), "train_nll", "heldout_nll"), None, "a rise of 0.06");
        let barely = (1..=300).map(|e| (2.0 - 0.0001 * f64::from(e), 2.0 + 0.001 * f64::from(e)));
        assert_eq!(held_out_rise(&run(barely), "train_nll", "heldout_nll"), None, "the training loss fell 0.03");
        let short = (1..=14).map(|e| (2.0 - 0.1 * f64::from(e), 2.0 + 0.1 * f64::from(e)));
        assert_eq!(held_out_rise(&run(short), "train_nll", "heldout_nll"), None, "three windows needed");
        // The same climb as the first test is called once long enough.
        let long = (1..=15).map(|e| (2.0 - 0.1 * f64::from(e), 2.0 + 0.1 * f64::from(e)));
        assert!(held_out_rise(&run(long), "train_nll", "heldout_nll").is_some());
    }
}
