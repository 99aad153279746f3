//! Overfitting read off a run's loss curves: the held-out loss has risen well above its lowest while the training
//! loss went on falling: the model fits its training rows ever more closely and the density they came from ever less
//! well. Seen in the flow lab on the Palmer penguins' bills (274 training
//! points, the course's RealNVP of 6 couplings of 4 x 256): held-out NLL lowest at epoch 24 (2.68), 2.96 at epoch
//! 300, while the training NLL fell from 2.63 to 2.36. Not on the four built-in 2-D sets at their defaults (seed 42):
//! the moons' held-out NLL is lowest at the last epoch, the circles' and the pinwheel's rise 0.02 nats past their
//! lowest, and the eight Gaussians' 0.15 nats over the last 70 epochs with the training NLL level (a few held-out
//! points between the modes, not a fit to the training points).
//!
//! Seen in the VAE lab on MNIST 5k (the course's MLP VAE, seed 42): the test negative ELBO is lowest at epoch 36
//! (147.7), 148.9 at the course's 50 epochs, 169.9 at epoch 200, while the training figure fell from 131.1 to 111.9.
//! Not on the Palmer penguins' table over 400 epochs (the test figure still falling, 46.0 at the end).

use crate::train::{HELD_OUT_WINDOW, RunSnapshot, lowest_held_out, trailing_mean};
use crate::ui::lab_page::epoch_number;

/// Epochs each curve is averaged over (trailing), so that one epoch's jump neither makes nor hides a rise: the
/// window the trainer keeps the model of the held-out loss's lowest by.
pub(crate) const WINDOW: usize = HELD_OUT_WINDOW;

/// A lab's training and held-out loss curves, and how far the one must rise as the other falls to call it
/// overfitting.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LossPair {
    /// The epoch records' names of the training and the held-out figure.
    pub metrics: (&'static str, &'static str),
    /// How the note names them.
    pub names: (&'static str, &'static str),
    /// The held-out loss's rise from its lowest (averaged, in the loss's units) that is called overfitting, when the
    /// training loss has fallen by at least `fell` meanwhile: a held-out loss that rises while the training loss
    /// stays level is no fit to the training rows.
    pub rise: f64,
    pub fell: f64,
}

/// The flow's: nats per point of two coordinates.
pub(crate) const FLOW: LossPair =
    LossPair { metrics: ("train_nll", "heldout_nll"), names: ("training NLL", "held-out NLL"), rise: 0.1, fell: 0.05 };

/// The VAE's: a negative ELBO per input of hundreds of values (MNIST's 147.7 at its lowest), ten times the flow's
/// step so that an epoch's noise is none; MNIST's rise passes it about 20 epochs after the lowest.
pub(crate) const VAE: LossPair = LossPair {
    metrics: ("train_neg_elbo", "test_neg_elbo"),
    names: ("training negative ELBO", "test negative ELBO"),
    rise: 1.0,
    fell: 0.5,
};

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
    /// What the rise of `pair`'s held-out loss means and what to do, for a run on `n_train` rows.
    pub(crate) fn note(&self, pair: &LossPair, n_train: Option<usize>) -> String {
        let rows = n_train.map_or_else(
            || "its training rows".to_owned(),
            |n| format!("its {} training rows", crate::data::table::grouped(n)),
        );
        let (train, held_out) = pair.names;
        let Self { best_epoch, held_out: (best, last), train: (train_best, train_last) } = *self;
        format!(
            "Overfitting: the {held_out} has risen from {best:.2} at epoch {best_epoch}, its lowest, to {last:.2}, \
             while the {train} went on falling ({train_best:.2} to {train_last:.2}). Since epoch {best_epoch} the \
             model has learned {rows} more closely than the density they were drawn from. Fewer epochs, fewer \
             hidden units or more rows keep it general."
        )
    }
}

/// `pair`'s held-out curve's rise past its lowest against its training curve, where it is overfitting (`pair`'s
/// `rise` and `fell`); `None` otherwise, and for a run of fewer than three [`WINDOW`]s of epochs.
pub(crate) fn held_out_rise(snapshot: &RunSnapshot, pair: &LossPair) -> Option<Rise> {
    let points = curves(snapshot, pair.metrics.0, pair.metrics.1);
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
    (rise.held_out.1 - rise.held_out.0 >= pair.rise && rise.train.0 - rise.train.1 >= pair.fell).then_some(rise)
}

/// Under a lab's loss curves: where `pair`'s held-out loss has climbed from its lowest as the training loss fell, the
/// note that says so, with the way back to the model at its lowest (the model kept nearest to it, `kept_near` says
/// which), unless it is on show (`scrubbed_epoch`). Returns the epoch to show when the button is clicked.
pub(crate) fn note_ui(
    ui: &mut egui::Ui,
    snapshot: &RunSnapshot,
    pair: &LossPair,
    (n_train, scrubbed_epoch): (Option<usize>, Option<f64>),
    kept_near: impl Fn(f64) -> Option<f64>,
) -> Option<f64> {
    let rise = held_out_rise(snapshot, pair)?;
    let (train, held_out) = pair.names;
    let mut show = None;
    ui.horizontal_wrapped(|ui| {
        ui.colored_label(ui.visuals().warn_fg_color, rise.note(pair, n_train)).on_hover_text(format!(
            "Each figure is the mean of the {WINDOW} epochs to it. Said where the {held_out} has risen {} or more \
             above its lowest while the {train} fell {} or more.",
            pair.rise, pair.fell
        ));
        let hover = format!(
            "Every view shows the model at the {held_out}'s lowest (the trainer keeps it; for a run opened from a \
             file, the model kept nearest to it), as the epoch slider would; Latest follows the run again."
        );
        if let Some(kept) = kept_near(rise.best_epoch as f64)
            && scrubbed_epoch != Some(kept)
            && ui.button(format!("Show epoch {}", epoch_number(kept))).on_hover_text(hover).clicked()
        {
            show = Some(kept);
        }
    });
    show
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
        let rise = held_out_rise(&snapshot, &FLOW).expect("overfitting");
        // The epoch whose model the trainer sends to keep ([`crate::train::lowest_held_out`]) is the note's.
        let held: Vec<f64> = snapshot.history.iter().filter_map(|r| r.get("heldout_nll")).collect();
        assert_eq!(lowest_held_out(&held).map(|i| i + 1), Some(rise.best_epoch), "the model to keep");
        assert!((20..=30).contains(&rise.best_epoch), "{rise:?}");
        assert!(rise.held_out.1 - rise.held_out.0 > 0.25 && rise.train.0 - rise.train.1 > 0.25, "{rise:?}");
        let note = rise.note(&FLOW, Some(274));
        assert!(note.starts_with("Overfitting: the held-out NLL has risen from 2.6"), "{note}");
        assert!(note.contains("its 274 training rows"), "{note}");
    }

    /// The VAE's figures are a hundred times the flow's: MNIST 5k's curves in shape (the test figure lowest at epoch
    /// 36, 147.7, then up 0.11 an epoch as the training figure falls 0.1) are overfitting by epoch 60 on the VAE's
    /// scale, not by epoch 42 (its five-epoch mean 0.3 up, which the flow's scale would call so).
    #[test]
    fn the_vaes_rise_is_measured_on_its_own_scale() {
        let mnist = |epochs: u32| {
            let history = (1..=epochs)
                .map(|e| {
                    let e = f64::from(e);
                    let test = if e <= 36.0 { 147.7 + 0.2 * (36.0 - e) } else { 147.7 + 0.11 * (e - 36.0) };
                    EpochRecord {
                        epoch: e as usize,
                        metrics: vec![("train_neg_elbo".into(), 135.0 - 0.1 * e), ("test_neg_elbo".into(), test)],
                    }
                })
                .collect();
            RunSnapshot { history, ..RunSnapshot::default() }
        };
        let rise = held_out_rise(&mnist(60), &VAE).expect("overfitting by epoch 60");
        assert!((36..=40).contains(&rise.best_epoch), "the lowest of the five-epoch means: {rise:?}");
        assert!(rise.note(&VAE, Some(4250)).starts_with("Overfitting: the test negative ELBO has risen from 147."));
        assert_eq!(held_out_rise(&mnist(42), &VAE), None, "0.3 up on a figure of 148");
        let flow_scale = LossPair { metrics: VAE.metrics, ..FLOW };
        assert!(held_out_rise(&mnist(42), &flow_scale).is_some(), "the flow's scale would say so");
    }

    /// Falling to the end (the moons), a rise with the training loss level (the eight Gaussians' held-out jumps), a
    /// rise too small, one as the training loss falls too little, and a run too short: none is called overfitting.
    #[test]
    fn other_curves_are_not_overfitting() {
        let falling = (1..=300).map(|e| (1.5 - 0.001 * f64::from(e), 1.55 - 0.001 * f64::from(e)));
        assert_eq!(held_out_rise(&run(falling), &FLOW), None);
        let level = (1..=300).map(|e| (0.05, if e < 230 { 0.04 } else { 0.04 + 0.003 * f64::from(e - 230) }));
        assert_eq!(held_out_rise(&run(level), &FLOW), None, "0.2 nats with the training level");
        let small = (1..=300).map(|e| (2.0 - 0.001 * f64::from(e), 2.0 + 0.0002 * f64::from(e)));
        assert_eq!(held_out_rise(&run(small), &FLOW), None, "a rise of 0.06");
        let barely = (1..=300).map(|e| (2.0 - 0.0001 * f64::from(e), 2.0 + 0.001 * f64::from(e)));
        assert_eq!(held_out_rise(&run(barely), &FLOW), None, "the training loss fell 0.03");
        let short = (1..=14).map(|e| (2.0 - 0.1 * f64::from(e), 2.0 + 0.1 * f64::from(e)));
        assert_eq!(held_out_rise(&run(short), &FLOW), None, "three windows needed");
        // The same climb as the first test is called once long enough.
        let long = (1..=15).map(|e| (2.0 - 0.1 * f64::from(e), 2.0 + 0.1 * f64::from(e)));
        assert!(held_out_rise(&run(long), &FLOW).is_some());
    }
}
