//! Issue 28: see `main.rs`. Parts 3 and 4: a trained run is not thrown away without asking (Train, New model,
//! Reset, other data, an opened run), Compare runs names its runs by their data and the settings that differ, in
//! colours that do not repeat, and comes back after a relaunch; the status bar names every lab with a run under
//! way and goes there.

use std::time::{Duration, Instant};

use bayes_explorer::Lab;
use bayes_explorer::data::LoadRequest;
use bayes_explorer::models::bnn::{PredictiveRows, RegressionRow};
use bayes_explorer::train::WorkerState;
use bayes_explorer::ui::{BayesExplorerApp, Settings};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use crate::common::{harness, wait_for_label, wait_until};

/// The question's heading.
const ASKED: &str = "Discard the BNN run?";

fn bnn_step(app: &BayesExplorerApp) -> u64 {
    app.lab(Lab::Bnn).snapshot.as_ref().map_or(0, |s| s.step)
}

fn bnn_epoch(app: &BayesExplorerApp) -> usize {
    app.lab(Lab::Bnn).snapshot.as_ref().map_or(0, |s| s.epoch)
}

/// Steps the window for `secs` seconds of wall time (the run trains meanwhile).
fn keep_stepping(harness: &mut Harness<'_, BayesExplorerApp>, secs: f64) {
    let until = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(30));
        harness.step();
    }
}

/// Trains the BNN with Train for longer than a run that may go without asking (3 s).
fn train_bnn_a_while(harness: &mut Harness<'_, BayesExplorerApp>) {
    harness.get_by_label("Train").click();
    wait_until(harness, "an epoch", |app| bnn_epoch(app) >= 1);
    keep_stepping(harness, 3.5);
}

/// Trains the BNN for `epochs` epochs with `button` and waits for the end (answering the question, if the run on
/// show is asked about).
fn train_bnn_to_the_end(harness: &mut Harness<'_, BayesExplorerApp>, button: &str, epochs: usize) {
    harness.state_mut().bnn_state_mut().config.epochs = epochs;
    harness.run_steps(2);
    harness.get_by_label(button).click();
    harness.run_steps(3);
    if harness.query_by_label_contains(ASKED).is_some() {
        harness.get_by_label("Discard and train").click();
    }
    wait_until(harness, "the run's end", |app| {
        app.lab(Lab::Bnn).worker_state == Some(WorkerState::Finished)
            && app.lab(Lab::Bnn).snapshot.as_ref().is_some_and(|s| s.total_epochs == epochs)
    });
}

#[test]
fn ux_train_new_model_and_reset_ask_before_discarding_a_trained_run() {
    let mut harness = harness();
    train_bnn_a_while(&mut harness);
    for (button, discard) in
        [("New model", "Discard and build"), ("Train", "Discard and train"), ("Reset", "Discard and reset")]
    {
        let before = bnn_step(harness.state());
        harness.get_by_label(button).click();
        harness.run_steps(3);
        // The question names the run and what would replace it; the run is still there, still training.
        harness.get_by_label(ASKED);
        harness.get_by_label_contains(discard);
        harness.get_by_label_contains("has trained for");
        assert!(bnn_step(harness.state()) >= before, "{button}: the run is kept while asking");
        harness.get_by_label("Keep the run").click();
        harness.run_steps(3);
        assert!(harness.query_by_label(ASKED).is_none(), "{button}: the question is gone");
        assert!(bnn_step(harness.state()) >= before, "{button}: the run is kept");
        assert_eq!(harness.state().lab(Lab::Bnn).worker_state, Some(WorkerState::Running), "{button}");
    }
    // Agreeing discards it.
    harness.get_by_label("Reset").click();
    harness.run_steps(3);
    harness.get_by_label("Discard and reset").click();
    wait_until(&mut harness, "the reset", |app| {
        bnn_step(app) == 0 && app.lab(Lab::Bnn).worker_state == Some(WorkerState::Paused)
    });
    // An untrained model goes without asking.
    harness.get_by_label("New model").click();
    harness.run_steps(3);
    assert!(harness.query_by_label(ASKED).is_none(), "an untrained model is not asked about");
}

#[test]
fn ux_loading_data_or_opening_a_run_asks_before_discarding_a_trained_run() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let path = folder.path().join("bnn-run.json");
    let mut harness = harness();
    train_bnn_a_while(&mut harness);
    harness.get_by_label("Pause").click();
    wait_until(&mut harness, "the pause", |app| app.lab(Lab::Bnn).worker_state == Some(WorkerState::Paused));
    harness.state_mut().save_run(Lab::Bnn, Some(path.clone()));
    wait_until(&mut harness, "the save", |app| !app.run_file_busy());
    let step = bnn_step(harness.state());
    assert!(step > 0);

    // Other built-in data: asked once it has loaded; kept, the run and its data stay.
    harness.get_by_label("Digits 8x8 (UCI optdigits)").click();
    wait_for_label(&mut harness, ASKED);
    harness.get_by_label_contains("Loading Digits 8x8 (UCI optdigits) replaces the data");
    harness.get_by_label("Keep the run").click();
    harness.run_steps(3);
    let state = harness.state().lab(Lab::Bnn);
    assert_eq!(state.data.as_ref().map(|d| d.table.n_rows()), Some(1599), "the wine stays");
    assert_eq!(bnn_step(harness.state()), step, "the run stays");
    harness.get_by_label_contains("was not loaded");

    // A generated set, the same.
    harness.get_by_label("Generate").click();
    wait_for_label(&mut harness, ASKED);
    harness.get_by_label("Keep the run").click();
    harness.run_steps(3);
    assert_eq!(bnn_step(harness.state()), step, "the run stays");

    // A run file: asked; agreeing opens it.
    harness.state_mut().open_run(Some(path));
    wait_for_label(&mut harness, ASKED);
    harness.get_by_label("Discard and open the run").click();
    wait_until(&mut harness, "the opened run", |app| {
        app.lab(Lab::Bnn).message.as_ref().is_some_and(|m| m.text.starts_with("Opened"))
    });
}

#[test]
fn ux_save_run_in_the_question_saves_the_run_and_then_goes_ahead_or_keeps_it_when_not_saved() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let mut harness = harness();
    train_bnn_a_while(&mut harness);

    // A save that fails (its folder does not exist): the run stays, paused, where it was; nothing replaces it.
    let missing = folder.path().join("no-such-folder");
    harness.state_mut().save_runs_to(Some(missing));
    harness.get_by_label("Train").click();
    harness.run_steps(3);
    harness.get_by_label_contains("\"Save run first…\" keeps it in a file, then goes ahead.");
    harness.get_by_label("Save run first…").click();
    wait_until(&mut harness, "the failed save", |app| {
        app.lab(Lab::Bnn).message.as_ref().is_some_and(|m| m.text.contains("Not saved: the run was kept (paused)"))
    });
    let kept = bnn_step(harness.state());
    let state = harness.state().lab(Lab::Bnn);
    let message = state.message.as_ref().expect("a message");
    assert!(message.is_error(), "the failure is an error: {}", message.text);
    assert!(
        message.text.ends_with("Not saved: the run was kept (paused), and no new run was started."),
        "{}",
        message.text
    );
    assert_eq!(state.worker_state, Some(WorkerState::Paused), "paused to be saved, and kept");
    assert!(kept > 0, "the trained run is on show");
    keep_stepping(&mut harness, 0.3);
    assert_eq!(bnn_step(harness.state()), kept, "no new run started");

    // A save that works: the file holds the run as it stopped, then the new run starts.
    harness.state_mut().save_runs_to(Some(folder.path().to_owned()));
    harness.get_by_label("Train").click();
    harness.run_steps(3);
    harness.get_by_label("Save run first…").click();
    wait_until(&mut harness, "the new run", |app| {
        app.lab(Lab::Bnn).message.as_ref().is_some_and(|m| m.text.starts_with("Saved the run to"))
            && app.lab(Lab::Bnn).worker_state == Some(WorkerState::Running)
            && bnn_step(app) < kept
    });
    let path = folder.path().join("bnn-run.json");
    let opened = bayes_explorer::train::runfile::AnyRun::load(&path).expect("the saved run reads back");
    assert_eq!(opened.snapshot().step, kept, "the file holds the run where it was paused");
    assert!(harness.query_by_label(ASKED).is_none(), "the question is gone");
}

#[test]
fn ux_a_discarded_run_stays_in_compare_runs() {
    let mut harness = harness();
    train_bnn_to_the_end(&mut harness, "Train", 12);
    keep_stepping(&mut harness, 3.2);
    // A long run, discarded after a while by New model.
    harness.state_mut().bnn_state_mut().config.epochs = 100_000;
    harness.get_by_label("Train").click();
    harness.run_steps(3);
    harness.get_by_label_contains("Its figures stay in Compare runs.");
    harness.get_by_label("Discard and train").click();
    wait_until(&mut harness, "an epoch", |app| bnn_epoch(app) >= 2);
    keep_stepping(&mut harness, 3.5);
    harness.get_by_label("New model").click();
    harness.run_steps(3);
    harness.get_by_label_contains("marked with the epoch it stopped at");
    harness.get_by_label("Discard and build a new model").click();
    wait_until(&mut harness, "the new model", |app| {
        app.lab(Lab::Bnn).worker_state == Some(WorkerState::Paused) && app.lab(Lab::Bnn).snapshot.is_some()
    });
    harness.get_by_label("Compare runs").click();
    harness.run_steps(3);
    // Run 1 finished, run 2 was stopped.
    let runs = &harness.state().bnn_state().runs;
    assert_eq!(runs.len(), 2, "both runs are in Compare runs");
    let stopped = runs[1].stopped_at.expect("run 2 was stopped");
    assert!(stopped >= 2 && runs[0].stopped_at.is_none(), "{stopped}");
    // Named by what differs between the two (the epochs), and where it stopped.
    harness.get_by_label("100 % of the training rows, 12 epochs");
    harness.get_by_label(&format!("100 % of the training rows, 100,000 epochs, stopped at epoch {stopped}"));
}

#[test]
fn ux_compare_runs_names_data_and_settings_and_comes_back_after_a_relaunch() {
    let mut harness = harness();
    train_bnn_to_the_end(&mut harness, "Train", 12);
    harness.get_by_label("Compare runs").click();
    harness.run_steps(2);
    train_bnn_to_the_end(&mut harness, "Train on 30 % of the training rows", 12);
    // The lesson in figures: the 30 % run's mean range over the full run's, like for like.
    let ranges: Vec<f64> =
        harness.state().bnn_state().runs.iter().map(|r| r.record.get("mc_range_mean").expect("a mean range")).collect();
    harness.run_steps(2);
    harness.get_by_label_contains(&format!(
        "Run 2 (30 % of the training rows) spreads its predictions {:.2} times as wide as run 1 (all of them): a mean range of {:.3} against {:.3};",
        ranges[1] / ranges[0],
        ranges[1],
        ranges[0]
    ));
    // The same on other data.
    harness.get_by_label("Generate").click();
    harness.run_steps(3);
    wait_until(&mut harness, "the generated data", |app| !app.any_loading());
    if harness.query_by_label(ASKED).is_some() {
        harness.get_by_label("Discard and load the data").click();
    }
    wait_until(&mut harness, "the generated data", |app| {
        app.lab(Lab::Bnn).data.as_ref().is_some_and(|d| matches!(d.request, LoadRequest::Synth(_)))
    });
    harness.state_mut().bnn_state_mut().config.train_fraction = 1.0;
    train_bnn_to_the_end(&mut harness, "Train", 12);
    harness.run_steps(3);

    // Runs on different data are marked as such and named by their data.
    harness.get_by_label_contains("These runs were trained on different data");
    // The built-in data's button, and runs 1 and 2 in the table's data column.
    assert_eq!(harness.query_all_by_label("Wine quality, red (UCI)").count(), 3, "runs 1 and 2 on the wine");
    // The BNN lab's generated sets are 1-D regressions: the first is the cubic with a gap.
    let cubic = harness.state().bnn_state().runs[2].dataset.clone();
    assert!(cubic.starts_with("Cubic with a gap"), "{cubic}");
    // The lab's dataset in the side panel, and run 3 in the data column.
    assert_eq!(harness.query_all_by_label(&cubic).count(), 2, "run 3 named by its data");
    // Each run named by the settings that differ: the training rows (the seed, epochs and the rest are the same).
    harness.get_by_label("30 % of the training rows");
    assert_eq!(harness.query_all_by_label("100 % of the training rows").count(), 2);
    assert!(harness.query_by_label_contains("12 epochs").is_none(), "settings all runs share are not named");

    // A relaunch brings the list back with the rest of the session.
    let runs = harness.state().bnn_state().runs.clone();
    assert_eq!(runs.len(), 3);
    let settings = harness.state_mut().persist(true);
    let json = serde_json::to_string(&settings).expect("the settings serialise");
    let settings: Settings = serde_json::from_str(&json).expect("the settings come back");
    let relaunched = BayesExplorerApp::new(egui::Context::default(), settings);
    assert_eq!(relaunched.bnn_state().runs, runs, "the list comes back");
}

#[test]
fn ux_compare_runs_colours_are_distinct_for_many_runs() {
    use bayes_explorer::ui::bnn::run_style;
    let styles: Vec<_> = (0..40).map(run_style).collect();
    // Ten qualitative colours, far apart from each other.
    for i in 0..10 {
        for j in 0..i {
            let (a, b) = (styles[i].0, styles[j].0);
            let distance = (i32::from(a.r()) - i32::from(b.r())).abs()
                + (i32::from(a.g()) - i32::from(b.g())).abs()
                + (i32::from(a.b()) - i32::from(b.b())).abs();
            assert!(distance > 60, "runs {} and {} look alike: {a:?} and {b:?}", j + 1, i + 1);
        }
    }
    // Then the same colours in other line styles: no two of 40 runs look the same.
    for i in 0..styles.len() {
        for j in 0..i {
            assert_ne!(styles[i], styles[j], "runs {} and {} look the same", j + 1, i + 1);
        }
    }
}

#[test]
fn ux_status_bar_names_every_lab_training_and_goes_there() {
    let app = BayesExplorerApp::new(egui::Context::default(), Settings::default());
    let mut harness = Harness::builder()
        .with_size([1024.0, 700.0])
        .build_ui_state(|ui, app: &mut BayesExplorerApp| app.show(ui), app);
    wait_until(&mut harness, "the datasets", |app| !app.any_loading());
    // A long run: its bar's text, "epoch 100/100000", is wider than the bar's narrow width beside another lab's run.
    harness.state_mut().bnn_state_mut().config.epochs = 100_000;
    harness.run_steps(2);
    harness.get_by_label("Train").click();
    wait_until(&mut harness, "an epoch", |app| bnn_epoch(app) >= 1);
    harness.get_by_label("Flow").click();
    harness.run_steps(2);
    harness.get_by_label("Train").click();
    wait_until(&mut harness, "the flow's start", |app| app.lab(Lab::Flow).worker_state == Some(WorkerState::Running));
    harness.get_by_label("VAE").click();
    harness.run_steps(3);
    // Both labs named with their epoch, whole in a 1024-wide window.
    for name in ["BNN: training, epoch ", "Flow: training, epoch "] {
        let node = harness.get_by_label_contains(name);
        let rect = node.rect();
        assert!(rect.min.x >= 0.0 && rect.max.x <= 1024.0, "{name} is in the window: {rect:?}");
        assert!(rect.min.y > 600.0, "{name} is in the status bar: {rect:?}");
    }
    harness.get_by_label_contains("Worker (VAE): no run");
    harness.get_by_label_contains("BNN: training, epoch ").click();
    harness.run_steps(3);
    assert_eq!(harness.state().settings.tab, Lab::Bnn, "the click goes to the BNN");
    // The open lab's run is in its own place; the flow is still named.
    harness.get_by_label_contains("Worker (BNN): training");
    harness.get_by_label_contains("Flow: training, epoch ");
    assert!(harness.query_by_label_contains("BNN: training, epoch ").is_none());
    // The BNN's bar holds its whole text (it showed "epoch 6666/1200" for 6666 of 12000 epochs).
    wait_until(&mut harness, "a hundred epochs", |app| bnn_epoch(app) >= 100);
    let bar = harness.get_by_label_contains("/100000");
    let text = bar.accesskit_node().label().expect("the bar's text");
    assert!(text.starts_with("epoch ") && text.ends_with("/100000"), "{text}");
    let font = egui::TextStyle::Button.resolve(&harness.ctx.global_style());
    let width = harness.ctx.fonts_mut(|f| f.layout_no_wrap(text.clone(), font, egui::Color32::WHITE).size().x);
    assert!(bar.rect().width() >= width + 8.0, "the bar ({:?}) holds its text, {width} wide", bar.rect());
    harness.get_by_label_contains("Flow: training, epoch ").click();
    harness.run_steps(3);
    assert_eq!(harness.state().settings.tab, Lab::Flow, "the click goes to the flow");
}

#[test]
fn ux_the_last_sessions_model_is_asked_about_and_an_opened_file_is_not() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let session = folder.path().join("session");
    let app = BayesExplorerApp::with_session(egui::Context::default(), Settings::default(), Some(session.clone()));
    let mut harness = crate::common::harness_for(app);
    train_bnn_a_while(&mut harness);
    harness.get_by_label("Pause").click();
    wait_until(&mut harness, "the pause", |app| app.lab(Lab::Bnn).worker_state == Some(WorkerState::Paused));
    let saved = folder.path().join("bnn-run.json");
    harness.state_mut().save_run(Lab::Bnn, Some(saved.clone()));
    wait_until(&mut harness, "the save", |app| !app.run_file_busy());
    let settings = harness.state_mut().persist(true);
    drop(harness);

    // Relaunched: the last session's model is its only copy, so New model asks.
    let app = BayesExplorerApp::with_session(egui::Context::default(), settings, Some(session));
    let mut harness = crate::common::harness_for(app);
    wait_until(&mut harness, "the last session's model", |app| !app.restoring_session() && bnn_step(app) > 0);
    harness.get_by_label("New model").click();
    harness.run_steps(3);
    harness.get_by_label(ASKED);
    harness.get_by_label("Keep the run").click();
    harness.run_steps(3);

    // A run opened from its file (asked, as it replaces the restored one) is kept by the file: Train goes at once.
    harness.state_mut().open_run(Some(saved));
    wait_for_label(&mut harness, ASKED);
    harness.get_by_label("Discard and open the run").click();
    wait_until(&mut harness, "the opened run", |app| {
        app.lab(Lab::Bnn).message.as_ref().is_some_and(|m| m.text.starts_with("Opened")) && bnn_step(app) > 0
    });
    keep_stepping(&mut harness, 3.2);
    harness.get_by_label("Train").click();
    harness.run_steps(3);
    assert!(harness.query_by_label(ASKED).is_none(), "a run opened from a file is not asked about");
}

/// Compare runs draws a finished run's spread of predictions from its last model. The run was recorded with the
/// predictions on show when it finished, which the view thread may have made with an earlier model, so the
/// histogram could disagree with the run's mean range (its dashed line).
#[test]
fn ux_compare_runs_spread_is_of_the_runs_last_model() {
    let mut harness = harness();
    harness.state_mut().bnn_state_mut().config.predictive_samples = 30;
    train_bnn_to_the_end(&mut harness, "Train", 40);
    let last = harness.state().lab(Lab::Bnn).snapshot.as_ref().map_or(0, |s| s.step);
    wait_until(&mut harness, "the last model's predictions", |app| {
        app.bnn_state().predictive().is_some_and(|p| p.step == last)
    });
    let predictive = harness.state().bnn_state().predictive().expect("predictions").clone();
    let PredictiveRows::Regression(rows) = &predictive.predictive.rows else { panic!("the wine's quality") };
    let ranges: Vec<f32> = rows.iter().map(RegressionRow::range).collect();
    let runs = &harness.state().bnn_state().runs;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].ranges, ranges, "the run's spread is that of its last model (step {last})");
    // The table's figures are the run's last record's. The views drew the last model with that evaluation's seed,
    // so Predictions, Calibration and the table give the same figures (they gave 21.9 % and 21.2 % as the 95 %
    // coverage of one model on the white wine, two draws of 100 passes).
    let (record, p) = (&runs[0].record, &predictive.predictive);
    assert_eq!(record.get("test_rmse"), Some(p.error), "test RMSE");
    assert_eq!(record.get("mc_range_mean"), Some(p.mc_range_mean), "mean range");
    assert_eq!(record.get("test_nll"), Some(p.nll), "test NLL");
    for &(level, fraction) in &p.coverage {
        let key = format!("coverage_{:.0}", level * 100.0);
        assert_eq!(record.get(&key), Some(fraction), "{key}");
    }
    let coverage = p.coverage.iter().find(|c| (c.0 - 0.95).abs() < 1e-9).expect("a 95 % interval").1;
    let shown = format!("{:.1} %", coverage * 100.0);
    for page in ["Compare runs", "Calibration"] {
        harness.get_by_label(page).click();
        harness.run_steps(2);
        assert!(harness.query_all_by_label(&shown).next().is_some(), "{page} shows the 95 % coverage {shown}");
    }
}

/// Where no file dialog answers (no desktop portal), "Open run…" could not open a run in the window at all. A run
/// file's path typed in the path field (as a CSV's is) now opens the run, in the lab it belongs to.
#[test]
fn ux_a_run_files_path_typed_in_the_path_field_opens_the_run() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let mut harness = harness();
    train_bnn_to_the_end(&mut harness, "Train", 5);
    let saved = folder.path().join("bnn-run.json");
    harness.state_mut().save_run(Lab::Bnn, Some(saved.clone()));
    wait_until(&mut harness, "the save", |app| !app.run_file_busy());
    let step = bnn_step(harness.state());
    drop(harness);

    let mut harness = crate::common::harness();
    harness.get_by_label("Flow").click();
    harness.run_steps(2);
    harness.state_mut().path_text = saved.display().to_string();
    harness.get_by_label("Load").click();
    wait_until(&mut harness, "the opened run", |app| {
        app.lab(Lab::Bnn).message.as_ref().is_some_and(|m| m.text.starts_with("Opened")) && bnn_step(app) == step
    });
    assert!(!harness.state().preview_is_open(), "no preview of the run file as a CSV");
}
