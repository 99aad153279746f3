//! Issue 25: the BNN lab's "VI vs NUTS" page. Before a trained run it says what to do first; after a short
//! variational run it samples the exact posterior with NUTS from the window (a few draws: quick on two cores),
//! shows the figures of `posterior_figures` for the same draws and the warnings that so few draws earn; Pause,
//! Resume and Cancel act on a run under way.

use std::time::Duration;

use bayes_explorer::Lab;
use bayes_explorer::data::prepare::prepare;
use bayes_explorer::data::{LoadRequest, SynthKind};
use bayes_explorer::models::bnn::{BnnConfig, Posterior};
use bayes_explorer::models::nuts::posterior_figures;
use bayes_explorer::train::WorkerState;
use egui_kittest::kittest::Queryable;

use crate::common::{harness, wait_for_label, wait_until, wait_within};

#[test]
fn ux_vi_vs_nuts_samples_from_the_window_shows_the_clis_figures_and_cancels() {
    let mut harness = harness();
    // A tiny network for a few epochs on the red wine.
    {
        let bnn = harness.state_mut().bnn_state_mut();
        bnn.config.hidden = vec![4];
        bnn.hidden_text = "4".into();
        bnn.config.epochs = 3;
    }
    // An untrained model: the page says what to do first.
    harness.get_by_label("New model").click();
    wait_for_label(&mut harness, "VI vs NUTS");
    harness.get_by_label("VI vs NUTS").click();
    // The new network is built on the worker's thread: until then the lab says "Building the network…".
    wait_for_label(&mut harness, "No trained variational model yet");

    harness.get_by_label("Train").click();
    wait_within(&mut harness, Duration::from_mins(2), "the variational run's end", |app| {
        app.lab(Lab::Bnn).worker_state == Some(WorkerState::Finished)
    });
    wait_for_label(&mut harness, "Sample the exact posterior");
    // All of the training rows: counted once ("of 1359" only for a run on a share of them).
    harness.get_by_label_contains("Data: the 1,359 training rows the variational run used, its architecture");
    {
        let s = &mut harness.state_mut().bnn_state_mut().nuts.settings;
        assert_eq!((s.chains, s.warmup, s.draws), (4, 300, 300), "the quick look's defaults");
        s.chains = 2;
        s.warmup = 30;
        s.draws = 30;
        s.max_rows = 100;
        assert!((s.target_accept - 0.8).abs() < 1e-12, "the sampler's default acceptance");
        s.target_accept = 0.9;
    }
    harness.run_steps(2);
    harness.get_by_label_contains("seeded subsample of 100");
    assert_eq!(harness.get_by_label("Target acceptance").value().as_deref(), Some("0.90"), "the field shows it");
    harness.get_by_label("Sample the exact posterior").click();
    harness.run_steps(2);
    assert!(harness.state().bnn_state().nuts.is_running());
    wait_within(&mut harness, Duration::from_mins(2), "the NUTS draws", |app| {
        !app.bnn_state().nuts.is_running() && app.bnn_state().nuts.result.is_some()
    });

    // The page's figures are posterior_figures of the same draws on the lab's test rows (the CLI's function).
    let result = harness.state().bnn_state().nuts.result.clone().expect("a result");
    let data = harness.state().lab(Lab::Bnn).data.as_ref().expect("the wine");
    let prepared = prepare(&data.table, &data.spec).expect("the wine prepares");
    assert_eq!(
        result.figures,
        posterior_figures(&result.template, &result.posterior, &prepared.x_test, &prepared.y_test)
    );
    assert_eq!(result.posterior.n_draws(), 60);
    assert_eq!(result.posterior.rows_used, 100);
    let rmse = result.figure("test_rmse").expect("a regression");
    let vi_rmse = result.vi_figure("test_rmse").expect("the VI figure");
    assert!(rmse.is_finite() && vi_rmse.is_finite() && result.mean_sd_ratio().is_finite());
    for shown in [format!("{rmse:.3}"), format!("{vi_rmse:.3}")] {
        assert!(harness.query_all_by_label(&shown).next().is_some(), "{shown} is on the page");
    }
    // The acceptance the warm-up tuned to, and the command line that gives the same figures.
    assert!((result.posterior.settings.target_accept - 0.9).abs() < 1e-12, "tuned to 0.9");
    harness.get_by_label_contains("--max-rows 100 --seed 42 --target-accept 0.9.");
    // Sixty draws are far too few: the warnings say so on the page.
    harness.get_by_label_contains("bulk ESS below 400");
    harness.get_by_label_contains("sampled on 100 of the");
    // The wine's squared-error head: its coverage is of the weights' spread alone, which the summary says.
    harness.get_by_label_contains("the weights' uncertainty alone (epistemic)");
    // The wine has eleven features: no bands.
    assert!(result.bands.is_none() && harness.query_by_label("Predictive bands").is_none());
    // The other sections draw.
    for section in ["Weight marginals", "Test rows side by side", "Calibration of both", "Diagnostics and summary"] {
        harness.get_by_label(section).click();
        harness.run_steps(2);
    }

    // A long run paused, resumed and cancelled: no result replaces the last one.
    harness.state_mut().bnn_state_mut().nuts.settings.warmup = 5000;
    harness.state_mut().bnn_state_mut().nuts.settings.draws = 5000;
    harness.run_steps(2);
    harness.get_by_label("Sample the exact posterior").click();
    harness.run_steps(3);
    harness.get_by_label("Pause sampling").click();
    harness.run_steps(2);
    harness.get_by_label("Resume sampling").click();
    harness.run_steps(2);
    harness.get_by_label("Cancel sampling").click();
    wait_within(&mut harness, Duration::from_secs(30), "the cancel", |app| !app.bnn_state().nuts.is_running());
    harness.get_by_label_contains("Cancelled");
    assert_eq!(harness.state().bnn_state().nuts.result.as_ref().map(|r| r.posterior.n_draws()), Some(60));
}

#[test]
fn ux_vi_vs_nuts_on_the_cubic_with_a_gap_draws_both_bands_and_finds_the_gap() {
    let mut harness = harness();
    harness.get_by_label("Generate").click();
    harness.run_steps(3);
    wait_until(&mut harness, "the cubic", |app| {
        app.lab(Lab::Bnn)
            .data
            .as_ref()
            .is_some_and(|d| matches!(&d.request, LoadRequest::Synth(s) if s.kind == SynthKind::CubicGap))
    });
    // One feature: the side panel offers the 1-D preset, which sets the next run's settings.
    harness.get_by_label("Settings for a 1-D curve").click_accesskit();
    harness.run_steps(2);
    let config = harness.state().bnn_state().config.clone();
    assert_eq!(BnnConfig { epochs: config.epochs, ..BnnConfig::curve(config.seed) }, config);
    assert_eq!(config.posterior, Posterior::MeanField);
    harness.state_mut().bnn_state_mut().config.epochs = 300;
    harness.get_by_label("Train").click();
    harness.run_steps(3);
    if harness.query_by_label_contains("Discard the BNN run?").is_some() {
        harness.get_by_label("Discard and train").click();
    }
    wait_within(&mut harness, Duration::from_mins(2), "the variational run's end", |app| {
        app.lab(Lab::Bnn).worker_state == Some(WorkerState::Finished)
    });
    harness.get_by_label("VI vs NUTS").click();
    wait_for_label(&mut harness, "Sample the exact posterior");
    {
        let s = &mut harness.state_mut().bnn_state_mut().nuts.settings;
        s.chains = 2;
        s.warmup = 40;
        s.draws = 40;
    }
    harness.run_steps(2);
    harness.get_by_label("Sample the exact posterior").click();
    wait_within(&mut harness, Duration::from_mins(3), "the NUTS draws", |app| {
        !app.bnn_state().nuts.is_running() && app.bnn_state().nuts.result.is_some()
    });
    harness.run_steps(2);
    // On one-feature data the bands come first.
    harness.get_by_label_contains("cannot make its band wider in the gap");
    let result = harness.state().bnn_state().nuts.result.clone().expect("a result");
    let bands = result.bands.as_ref().expect("bands for the cubic");
    // The cubic's inputs have no point between -0.3 and 0.3: that is the gap found.
    let (lo, hi) = bands.gap.expect("the gap");
    assert!((lo + 0.3).abs() < 0.05 && (hi - 0.3).abs() < 0.05, "gap {lo} .. {hi}");
    harness.get_by_label(&format!("in the gap, {lo:.2} to {hi:.2}"));
    assert_eq!(bands.vi.x, bands.nuts.x, "one grid");
    let w = bands.widths();
    for v in w.data.iter().chain(&w.gap).chain(&w.outside) {
        assert!(v.is_finite() && *v > 0.0, "{w:?}");
    }
    for v in [w.data[0], w.data[1], w.gap[1]] {
        assert!(harness.query_all_by_label(&format!("{v:.3}")).next().is_some(), "{v:.3} is on the page");
    }
    for section in ["Weight marginals", "Test rows side by side", "Diagnostics and summary", "Predictive bands"] {
        harness.get_by_label(section).click();
        harness.run_steps(2);
        if section == "Diagnostics and summary" {
            // The Normal head's intervals hold the noise it learned: no note that they are the weights' alone.
            assert!(harness.query_by_label_contains("the weights' uncertainty alone").is_none());
        }
    }
}
