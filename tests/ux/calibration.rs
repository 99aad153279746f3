//! The BNN's pages on classes: where Calibration said "Calibration is for regression", a class-predicting network
//! gets the reliability diagram, its table and its expected calibration error, of the predictions on show; Compare
//! runs gives its error rate where it gave a dash under "Test RMSE".

use std::time::Duration;

use bayes_explorer::Lab;
use bayes_explorer::models::bnn::{PredictiveRows, RELIABILITY_BINS, reliability};
use bayes_explorer::train::WorkerState;
use egui_kittest::kittest::Queryable;

use crate::common::{harness, wait_until, wait_within};

#[test]
fn ux_calibration_of_a_class_predicting_network_is_its_reliability_diagram() {
    let mut harness = harness();
    crate::settings::load_builtin(&mut harness, Lab::Bnn, "Digits 8x8 (UCI optdigits)");
    {
        let bnn = harness.state_mut().bnn_state_mut();
        bnn.config.epochs = 20;
        bnn.config.hidden = vec![4];
        bnn.hidden_text = "4".into();
    }
    harness.get_by_label("Train").click();
    wait_within(&mut harness, Duration::from_mins(2), "the run's end", |app| {
        app.lab(Lab::Bnn).worker_state == Some(WorkerState::Finished)
    });
    harness.get_by_label("Calibration").click();
    // The predictions of the finished model: on a busy machine those of a model from before the run's end may come
    // first, and the last model's then replace them.
    wait_until(&mut harness, "the finished model's predictions", |app| {
        let last = app.lab(Lab::Bnn).snapshot.as_ref().map(|s| s.step);
        app.bnn_state().predictive().is_some_and(|p| Some(p.step) == last)
    });
    harness.run_steps(3);
    assert!(harness.query_by_label_contains("Calibration is for regression").is_none());
    let predictive = harness.state().bnn_state().predictive().expect("predictions").predictive.clone();
    let PredictiveRows::Classes(rows) = &predictive.rows else { panic!("the digits are classes") };
    let diagram = reliability(rows, RELIABILITY_BINS);
    assert_eq!(diagram.bins.iter().map(|b| b.rows).sum::<usize>(), 270, "the test rows, each in one bin");
    harness.get_by_label_contains(&format!("Expected calibration error {:.3}", diagram.ece));
    // The table: a line per bin with rows, its mean confidence and how many were right.
    for bin in diagram.bins.iter().filter(|b| b.rows > 0) {
        harness.get_by_label(&format!("{:.0} .. {:.0} %", bin.lo * 100.0, bin.hi * 100.0));
        harness.get_by_label(&format!("{:.1} %", bin.confidence * 100.0));
    }
    harness.get_by_label("Export data…");

    // Predictions: beside the table, the confusion matrix of the same rows, and what it says in words.
    harness.get_by_label("Predictions").click();
    harness.run_steps(3);
    harness.get_by_label("Confusion matrix: actual class down, predicted across");
    let right = rows.iter().filter(|r| r.actual == r.predicted).count();
    harness.get_by_label_contains(&format!("Right: {right} of 270 (the diagonal)."));
    assert!(bayes_explorer::ui::figure_rect(&harness.ctx, "bnn-confusion").is_some(), "the matrix is drawn");

    // Compare runs gives the run's error rate where a regression has its RMSE, and no interval coverage.
    harness.get_by_label("Compare runs").click();
    harness.run_steps(3);
    harness.get_by_label("Test error rate");
    assert!(harness.query_by_label("Test RMSE").is_none() && harness.query_by_label("95 % coverage").is_none());
    let error = harness.state().lab(Lab::Bnn).snapshot.as_ref().and_then(|s| s.history.last()?.get("test_error_rate"));
    harness.get_by_label(&format!("{:.3}", error.expect("an error rate")));

    // VI vs NUTS's calibration of both: the two models' diagrams, where it said "for regression" too.
    harness.get_by_label("VI vs NUTS").click();
    wait_until(&mut harness, "the page", |app| app.bnn_state().nuts.result.is_none());
    {
        let s = &mut harness.state_mut().bnn_state_mut().nuts.settings;
        (s.chains, s.warmup, s.draws, s.max_rows) = (2, 30, 30, 100);
    }
    harness.run_steps(2);
    harness.get_by_label("Sample the exact posterior").click();
    wait_within(&mut harness, Duration::from_mins(3), "the NUTS draws", |app| {
        !app.bnn_state().nuts.is_running() && app.bnn_state().nuts.result.is_some()
    });
    harness.get_by_label("Calibration of both").click();
    harness.run_steps(3);
    let result = harness.state().bnn_state().nuts.result.clone().expect("a result");
    let (PredictiveRows::Classes(vi), PredictiveRows::Classes(nuts)) = (&result.vi.rows, &result.nuts.rows) else {
        panic!("both predict classes")
    };
    let (vi, nuts) = (reliability(vi, RELIABILITY_BINS), reliability(nuts, RELIABILITY_BINS));
    harness.get_by_label(&format!("Expected calibration error: VI {:.3}, NUTS {:.3}.", vi.ece, nuts.ece));
    assert!(harness.query_by_label_contains("Calibration is for regression").is_none());
}
