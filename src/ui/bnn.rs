//! The BNN lab's page: the views of what the network learns, one at a time — for a regression on one feature the
//! predictive band over that feature (`bnn_band.rs`), weight distributions
//! (`bnn_weights.rs`), Monte Carlo predictions with intervals and their calibration (`bnn_predictions.rs`), an
//! out-of-distribution probe (`bnn_probe.rs`), the loss terms, and a comparison of runs (`bnn_compare.rs`). Its
//! state is `bnn_state.rs`, its settings panel `bnn_settings.rs`.

use crate::train::RunSnapshot;
use crate::ui::bnn_state::HistoryMode;
use crate::ui::highlight::Highlight;
use crate::ui::image_export::take_record_asked;
use crate::ui::lab_page::{EpochCurves, epoch_series, figure_height, loss_page, shared_x, view_tabs, waiting};
use crate::ui::record::{FrameTarget, Subject};

pub use crate::ui::bnn_compare::{RunSummary, run_names, run_style};
pub use crate::ui::bnn_state::{BnnPage, BnnUiState};

/// The BNN page's central area.
pub(crate) fn bnn_view_ui(bnn: &mut BnnUiState, snapshot: Option<&RunSnapshot>, running: bool, ui: &mut egui::Ui) {
    // A recording shows each of its frames in turn: a model of the run, in the figure recorded (on its page).
    if let Some(FrameTarget::Model(step)) = bnn.recorder.frame_to_show(ui.ctx()) {
        bnn.scrubber.step = Some(step);
        bnn.scrubber.stop_replay();
        bnn.follow_scrubber();
        if let Some(page) = bnn.recorder.figure().and_then(BnnPage::of_figure) {
            bnn.page = page;
        }
        if bnn.recorder.figure() == Some("bnn-histogram") {
            bnn.history_mode = HistoryMode::Single;
        }
    }
    bnn.poll(snapshot, ui.ctx());
    // The band view only for a regression on one feature.
    let band_data = bnn.has_band_view();
    let pages = BnnPage::ALL.into_iter().filter(|p| band_data || *p != BnnPage::Band);
    view_tabs(ui, bnn.error.as_deref(), &mut bnn.page, pages.map(|p| (p, p.label())));
    let Some(view) = bnn.view.clone() else {
        waiting(ui, "Building the network…");
        return;
    };
    // The comparison of runs and the sampler's page show whole runs, not one of their epochs.
    let ready = bnn.scrubber.scrubbed().is_none_or(|e| bnn.views_show(e.step));
    if !matches!(bnn.page, BnnPage::Compare | BnnPage::VsNuts) && bnn.scrubber.ui("every view", ready, ui) {
        bnn.follow_scrubber();
    }
    bnn.recorder.capture_progress_ui(ui);
    let n_train = bnn.prepared.as_ref().map(|d| d.n_train());
    if let Some(note) = snapshot.and_then(|s| at_the_prior(s, n_train)) {
        ui.colored_label(ui.visuals().warn_fg_color, note);
    }
    let scrubbed = bnn.scrubber.scrubbed_epoch();
    // Both ways: what is wider than the window (the comparison's table of runs, and the plot under it that takes
    // its width) scrolls into view rather than stay cut off.
    egui::ScrollArea::both().auto_shrink([false, false]).show(ui, |ui| match bnn.page {
        BnnPage::Band => crate::ui::bnn_band::band_ui(bnn, ui),
        BnnPage::Weights => crate::ui::bnn_weights::weights_ui(bnn, &view, ui),
        BnnPage::Predictions => crate::ui::bnn_predictions::predictions_ui(bnn, ui),
        BnnPage::Calibration => crate::ui::bnn_predictions::calibration_ui(bnn, ui),
        BnnPage::Probe => crate::ui::bnn_probe::probe_ui(bnn, ui),
        BnnPage::VsNuts => crate::ui::bnn_nuts::vs_nuts_ui(bnn, ui),
        BnnPage::Loss => {
            let emphasised = bnn.highlight == Highlight::BnnLoss;
            let busy = bnn.recorder.busy();
            loss_page(ui, (crate::Lab::Bnn, busy), snapshot, &mut bnn.export, "bnn-loss", |s, ui| {
                bnn_loss_ui(s, (emphasised, scrubbed), ui);
            });
        }
        BnnPage::Compare => {
            // A "Train on …" button: the next run takes that share of the training rows, started by the lab.
            if let Some(fraction) = crate::ui::bnn_compare::compare_ui(&mut bnn.runs, ui) {
                bnn.config.train_fraction = fraction;
                bnn.start_requested = true;
                ui.ctx().request_repaint();
            }
        }
    });
    // "Record animation…" of any figure on the page: a frame once the figure shows the frame's model.
    if let Some(key) = take_record_asked(ui.ctx()) {
        bnn.recorder.open_figure(&key);
    }
    let ready = match bnn.recorder.current_target() {
        Some(FrameTarget::Model(step)) => bnn.views_show(step),
        _ => true,
    };
    bnn.recorder.after_page(ui.ctx(), ready);
    let models = bnn.scrubber.history.epochs();
    let name = match bnn.recorder.figure() {
        Some("bnn-histogram") => format!("bnn-layer-{}-{}", bnn.layer + 1, bnn.quantity.csv_name()),
        Some("bnn-weight-matrix") => format!("bnn-layer-{}-weight-matrix", bnn.layer + 1),
        Some(key) => key.to_owned(),
        None => "bnn".to_owned(),
    };
    let figure_size = bnn.recorder.figure_size();
    let subject = Subject { name: &name, stages: None, models: &models, running, figure_size };
    bnn.recorder.window_ui(ui.ctx(), &subject);
}

/// Below this KL / N (nats per training row) a variational posterior is taken to be the prior.
const AT_THE_PRIOR_NATS: f64 = 0.002;

/// What to say when the run's latest epoch has a posterior back at the prior (a KL / N above 0 and below
/// [`AT_THE_PRIOR_NATS`]) and tests no better than a model that learned nothing (the commonest class, or the training
/// mean): the network predicts the same for every input, and the figures of the other pages are of the prior. Seen on
/// a small Titanic file: 211 rows, the course's [8, 8] full-covariance network, KL / N 0.0002 after 3,000 epochs and
/// every passenger given 0.51. `None` otherwise, a network without a posterior (KL 0) included.
pub(crate) fn at_the_prior(snapshot: &RunSnapshot, n_train: Option<usize>) -> Option<String> {
    let last = snapshot.history.last()?;
    let kl = last.get("kl_loss").filter(|kl| *kl > 0.0 && *kl < AT_THE_PRIOR_NATS)?;
    let (error, level, what, baseline) = match (last.get("test_error_rate"), last.get("test_rmse")) {
        (Some(rate), _) => {
            (rate, last.get("mode_predictor_test_error_rate")?, "error rate", "predicting the commonest class")
        }
        (None, Some(rmse)) => (rmse, last.get("mean_predictor_test_rmse")?, "RMSE", "predicting the training mean"),
        (None, None) => return None,
    };
    (error >= 0.98 * level).then(|| {
        let rows =
            n_train.map_or_else(String::new, |n| format!(" on {} training rows", crate::data::table::grouped(n)));
        format!(
            "The posterior has gone back to the prior: KL / N is {kl:.4} nats, and the test {what} ({error:.3}) is no \
             better than {baseline} ({level:.3}). The network gives every input nearly the same prediction: what \
             the data say{rows} has not paid for moving the weights away from N(0, 1²). A mean-field posterior, \
             fewer hidden units or more rows let it learn."
        )
    })
}

/// Loss terms and errors per epoch; `emphasised`: the Explain panel's loss is hovered (its two terms highlighted);
/// `scrubbed`: the epoch the scrubber put on show, marked.
pub(crate) fn bnn_loss_ui(snapshot: &RunSnapshot, (emphasised, scrubbed): (bool, Option<f64>), ui: &mut egui::Ui) {
    let series = |name: &str| epoch_series(snapshot, name);
    let curves = vec![("total", series("loss")), ("data term", series("data_loss")), ("KL / N", series("kl_loss"))];
    let terms: &[&str] = if emphasised { &["data term", "KL / N"] } else { &[] };
    // Each of the two plots takes half the page below its heading where the window has the room.
    let height = figure_height(ui, 0.5, 64.0, (200.0, 400.0));
    let mut loss_curves = EpochCurves::new("bnn-loss", height, curves).marked(scrubbed);
    let classification = snapshot.history.last().is_some_and(|r| r.get("test_error_rate").is_some());
    // Each with the level a model that learned nothing would reach: the training mean's RMSE, or the error rate of
    // the commonest class.
    let (train, test, label, (level_name, level)) = if classification {
        (
            "train_error_rate",
            "test_error_rate",
            "Error rate",
            ("test, predicting the commonest class", "mode_predictor_test_error_rate"),
        )
    } else {
        (
            "train_rmse",
            "test_rmse",
            "RMSE of the predictive mean",
            ("test, predicting the training mean", "mean_predictor_test_rmse"),
        )
    };
    let mut error_curves =
        EpochCurves::new("bnn-error", height, vec![("train", series(train)), ("test", series(test))]).marked(scrubbed);
    if let Some(b) = snapshot.history.last().and_then(|r| r.get(level)) {
        error_curves = error_curves.with_level(level_name, b);
    }
    // The two plots over one x range: an epoch, and the epoch on show, at the same x on both.
    let x = shared_x([loss_curves.reach(), error_curves.reach()]);
    loss_curves.heading(ui, |ui| {
        ui.strong("Loss per training row: data term + KL / N");
    });
    loss_curves.show(ui, terms, x);
    error_curves.heading(ui, |ui| {
        ui.strong(label);
    });
    error_curves.show(ui, &[], x);
}

#[cfg(test)]
mod tests {
    use super::at_the_prior;
    use crate::models::trainer::EpochRecord;
    use crate::train::RunSnapshot;

    fn last_epoch(metrics: &[(&str, f64)]) -> RunSnapshot {
        let metrics = metrics.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect();
        RunSnapshot { history: vec![EpochRecord { epoch: 3000, metrics }], ..RunSnapshot::default() }
    }

    /// Back at the prior and no better than a model that learned nothing: said, with the figures. Having learned, or
    /// at the prior yet better than that, or without a posterior: nothing said.
    #[test]
    fn a_posterior_back_at_the_prior_that_predicts_nothing_is_said() {
        // The small Titanic file's run: every passenger given 0.51.
        let collapsed = [("kl_loss", 0.0002), ("test_error_rate", 0.5135), ("mode_predictor_test_error_rate", 0.5135)];
        let note = at_the_prior(&last_epoch(&collapsed), Some(211)).expect("said");
        assert!(note.contains("0.0002 nats") && note.contains("error rate (0.513)"), "{note}");
        assert!(note.contains("on 211 training rows") && note.contains("commonest class (0.513)"), "{note}");
        let regression = [("kl_loss", 0.001), ("test_rmse", 0.80), ("mean_predictor_test_rmse", 0.79)];
        let note = at_the_prior(&last_epoch(&regression), None).expect("said");
        assert!(note.contains("RMSE (0.800)") && note.contains("training mean (0.790)"), "{note}");
        // Learned (the same file with one hidden layer of 4), at the prior yet better, no posterior at all.
        let learned = [("kl_loss", 0.0427), ("test_error_rate", 0.3243), ("mode_predictor_test_error_rate", 0.5135)];
        let better = [("kl_loss", 0.0010), ("test_error_rate", 0.40), ("mode_predictor_test_error_rate", 0.5135)];
        let none = [("kl_loss", 0.0), ("test_error_rate", 0.5135), ("mode_predictor_test_error_rate", 0.5135)];
        for metrics in [&learned, &better, &none] {
            assert_eq!(at_the_prior(&last_epoch(metrics), Some(211)), None, "{metrics:?}");
        }
        assert_eq!(at_the_prior(&RunSnapshot::default(), None), None, "no epoch yet");
    }
}
