//! Issue 25: the BNN lab's predictive band. The cubic with a gap, generated in the BNN lab, loads with `x` as the
//! feature and `y` as the target; training it opens on the band view, whose caption and plot show and whose band
//! (computed on the view thread) is finite and follows the training. Wider data (the wine) has no band view.

use bayes_explorer::Lab;
use bayes_explorer::data::prepare::Role;
use bayes_explorer::data::{LoadRequest, SynthKind};
use bayes_explorer::train::WorkerState;
use bayes_explorer::ui::bnn::BnnPage;
use egui_kittest::kittest::Queryable;

use crate::common::{harness, wait_for_label, wait_until};

#[test]
fn ux_band_view_shows_the_cubic_with_a_gap_while_it_trains() {
    let mut harness = harness();
    // The wine (11 features): a new model has no band view.
    harness.get_by_label("New model").click();
    wait_until(&mut harness, "the wine's model", |app| {
        app.lab(Lab::Bnn).worker_state == Some(WorkerState::Paused) && app.bnn_state().has_predictions()
    });
    assert!(!harness.state().bnn_state().has_band_view());
    assert!(harness.query_by_label("Predictive band").is_none(), "no band tab for the wine");
    assert_ne!(harness.state().bnn_state().page, BnnPage::Band);

    // The BNN lab's generated sets are the 1-D regressions, the cubic with a gap first.
    harness.get_by_label_contains("Generated 1-D regression");
    assert!(harness.query_by_label("Two moons").is_none(), "no 2-D density in the BNN lab");
    harness.get_by_label("Generate").click();
    harness.run_steps(3);
    if harness.query_by_label_contains("Discard the BNN run?").is_some() {
        harness.get_by_label("Discard and load the data").click();
    }
    wait_until(&mut harness, "the cubic", |app| {
        app.lab(Lab::Bnn)
            .data
            .as_ref()
            .is_some_and(|d| matches!(&d.request, LoadRequest::Synth(s) if s.kind == SynthKind::CubicGap))
    });
    let data = harness.state().lab(Lab::Bnn).data.as_ref().map(|d| d.spec.roles.clone());
    assert_eq!(data, Some(vec![Role::Feature, Role::Target]), "x the feature, y the target, unasked");

    harness.state_mut().bnn_state_mut().config.epochs = 100_000;
    harness.get_by_label("Train").click();
    harness.run_steps(3);
    if harness.query_by_label_contains("Discard the BNN run?").is_some() {
        harness.get_by_label("Discard and train").click();
    }
    wait_until(&mut harness, "the band", |app| app.bnn_state().band().is_some_and(|b| b.step > 0));
    assert_eq!(harness.state().bnn_state().page, BnnPage::Band, "the band is the first view for 1-D data");
    wait_for_label(&mut harness, "Predictive band of y over x");
    harness.get_by_label_contains("it should widen away from the data and in the gap");
    harness.get_by_label("Predictive band");

    let first = harness.state().bnn_state().band().map(|b| (b.step, b.band.clone())).expect("a band");
    let band = &first.1;
    assert_eq!(band.x.len(), bayes_explorer::models::bnn::BAND_GRID_POINTS);
    let numbers =
        band.mean.iter().chain(&band.function.q025).chain(&band.function.q975).chain(band.sampled.iter().flatten());
    assert!(numbers.into_iter().all(|v| v.is_finite()), "the band's numbers are finite");
    assert_eq!(band.sampled.len(), 5);
    // The grid reaches a quarter of the data's range past it on each side (the data lie in [-1, 1]).
    let (lo, hi) = (band.x[0], band.x[band.x.len() - 1]);
    assert!(lo < -1.3 && hi > 1.3, "grid {lo} .. {hi}");
    for i in 0..band.x.len() {
        let f = &band.function;
        assert!(f.q025[i] <= f.q25[i] && f.q25[i] <= f.q75[i] && f.q75[i] <= f.q975[i], "edges in order at {i}");
    }

    // Live: a later step's band replaces it while the run trains.
    wait_until(&mut harness, "a later band", |app| app.bnn_state().band().is_some_and(|b| b.step > first.0 + 200));
    let later = harness.state().bnn_state().band().map(|b| b.band.clone()).expect("a band");
    assert_ne!(later.mean, first.1.mean, "the band follows the training");
    harness.get_by_label("Pause").click();
    harness.run_steps(2);
}
