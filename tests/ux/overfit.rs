//! A flow on a small file (the Palmer penguins' bills: 274 training points) went on training long after its
//! held-out NLL had turned up; the loss curves showed it, but nothing said what it meant, and the views showed the
//! last, overfitted model. Now a note under the curves names the lowest held-out NLL's epoch, what the rise means,
//! and a button puts the model of that epoch on show. The VAE's test negative ELBO, which turns up on MNIST 5k
//! after epoch 36, has the same note and button.

use std::fmt::Write as _;
use std::time::Duration;

use bayes_explorer::Lab;
use bayes_explorer::train::WorkerState;
use bayes_explorer::ui::{BayesExplorerApp, Settings};
use egui_kittest::kittest::{NodeT, Queryable};

use crate::common::{harness_for, load_typed, use_in_the_lab, wait_for_label, wait_until, wait_within};

/// Sixty points of three round clusters: far too few for the course's RealNVP, which learns them one by one.
fn three_clusters() -> String {
    let mut text = "bill_length,bill_depth\n".to_owned();
    let mut state = 12_345_u64;
    let mut uniform = || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    for i in 0..60 {
        let centre = [[-1.5, 0.8], [0.5, 0.6], [1.0, -1.2]][i % 3];
        let (radius, angle) = ((-2.0 * uniform().ln()).sqrt() * 0.5, std::f64::consts::TAU * uniform());
        let _ = writeln!(text, "{:.3},{:.3}", centre[0] + radius * angle.cos(), centre[1] + radius * angle.sin());
    }
    text
}

/// The overfitting note that starts with `start`, and the epoch of the lowest it names.
fn overfitting_note(harness: &egui_kittest::Harness<'_, BayesExplorerApp>, start: &str) -> (String, f64) {
    let note = harness.get_by_label_contains(start);
    let note = note.accesskit_node().label().or_else(|| note.accesskit_node().value()).unwrap_or_default();
    let lowest = note
        .split(" at epoch ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the note names the epoch of the lowest: {note:?}"));
    (note, lowest)
}

/// Sixty rows of eight measurements of two hidden factors under as much noise: far too few for the MLP VAE's 512 and
/// 256 units, which learns its 51 training rows (on the command line: the test negative ELBO lowest at epoch 12,
/// 516.6, then 559.8 at epoch 50 and 611.1 at epoch 100).
fn two_factors() -> String {
    let mut text = (0..8).map(|j| format!("m{j}")).collect::<Vec<_>>().join(",");
    text.push('\n');
    let mut state = 54_321_u64;
    let mut normal = || {
        let mut uniform = || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos()
    };
    for _ in 0..60 {
        let factors = [normal(), normal()];
        let row: Vec<String> =
            (0..8).map(|j| format!("{:.3}", factors[j % 2] * (1.0 + 0.1 * j as f64) + normal())).collect();
        let _ = writeln!(text, "{}", row.join(","));
    }
    text
}

#[test]
fn ux_a_vae_that_overfits_says_so_and_shows_its_best_epoch() {
    let mut harness =
        harness_for(BayesExplorerApp::new(egui::Context::default(), Settings { tab: Lab::Vae, ..Settings::default() }));
    wait_until(&mut harness, "the datasets", |app| !app.any_loading());
    let _dir = load_typed(&mut harness, "factors.csv", &two_factors());
    wait_until(&mut harness, "the preview", BayesExplorerApp::preview_is_open);
    use_in_the_lab(&mut harness, Lab::Vae);
    harness.state_mut().vae_state_mut().config.epochs = 100;
    harness.get_by_label("Train").click();
    wait_within(&mut harness, Duration::from_mins(3), "the run's end", |app| {
        app.lab(Lab::Vae).worker_state == Some(WorkerState::Finished)
    });
    harness.get_by_label("Loss curves").click();
    harness.run_steps(3);
    let (note, lowest) = overfitting_note(&harness, "Overfitting: the test negative ELBO has risen from");
    assert!(note.contains("while the training negative ELBO went on falling"), "{note}");
    assert!(note.contains("its 51 training rows"), "{note}");
    assert!(lowest < 40.0, "the test figure is lowest early: epoch {lowest}");
    // The trainer sent that epoch's model: the button shows that very epoch.
    harness.get_by_label(&format!("Show epoch {lowest}")).click();
    harness.run_steps(3);
    assert_eq!(harness.state().vae_state().scrubber.scrubbed_epoch(), Some(lowest), "every view shows it");
    assert!(harness.query_all_by_label_contains("Show epoch").next().is_none(), "on show: no button");
}

#[test]
fn ux_a_flow_that_overfits_says_so_and_shows_its_best_epoch() {
    let mut harness = harness_for(BayesExplorerApp::new(
        egui::Context::default(),
        Settings { tab: Lab::Flow, ..Settings::default() },
    ));
    wait_until(&mut harness, "the datasets", |app| !app.any_loading());
    let _dir = load_typed(&mut harness, "bills.csv", &three_clusters());
    wait_until(&mut harness, "the preview", BayesExplorerApp::preview_is_open);
    use_in_the_lab(&mut harness, Lab::Flow);
    harness.state_mut().flow_config_mut().epochs = 150;
    harness.get_by_label("Train").click();
    wait_within(&mut harness, Duration::from_mins(3), "the run's end", |app| {
        app.lab(Lab::Flow).worker_state == Some(WorkerState::Finished)
    });
    harness.run_steps(3);
    let (_, lowest) = overfitting_note(&harness, "Overfitting: the held-out NLL has risen from");
    harness.get_by_label_contains("the model has learned its 48 training rows more closely than the density");
    // The trainer sent that epoch's model, so the button shows that very epoch, not the model kept nearest to it.
    let button = harness.query_all_by_label_contains("Show epoch").next().expect("the way back to the lowest");
    assert_eq!(button.accesskit_node().label().unwrap_or_default(), format!("Show epoch {lowest}"));
    button.click();
    harness.run_steps(3);
    assert_eq!(harness.state().flow_state().scrubbed_epoch(), Some(lowest), "every view shows the model there");
    assert!(lowest < 100.0, "the held-out NLL is lowest early: epoch {lowest}");
    assert!(harness.query_all_by_label_contains("Show epoch").next().is_none(), "on show: no button");

    // Saved and opened in a new window: the run's file keeps that epoch's model, so the note's button shows it too.
    let folder = tempfile::tempdir().expect("a temporary folder");
    let path = folder.path().join("bills-run.json");
    harness.state_mut().save_run(Lab::Flow, Some(path.clone()));
    wait_until(&mut harness, "the save", |app| !app.run_file_busy());
    drop(harness);
    let mut harness = harness_for(BayesExplorerApp::new(
        egui::Context::default(),
        Settings { tab: Lab::Flow, ..Settings::default() },
    ));
    wait_until(&mut harness, "the datasets", |app| !app.any_loading());
    harness.state_mut().open_run(Some(path));
    wait_until(&mut harness, "the opened run", |app| {
        app.lab(Lab::Flow).message.as_ref().is_some_and(|m| m.text.starts_with("Opened"))
    });
    wait_for_label(&mut harness, "Overfitting: the held-out NLL has risen from");
    harness.get_by_label(&format!("Show epoch {lowest}")).click();
    harness.run_steps(3);
    assert_eq!(harness.state().flow_state().scrubbed_epoch(), Some(lowest), "the opened run shows that epoch too");
}
