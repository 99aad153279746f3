//! Continue (issue 22): a run carried on from its file, or where it was trained, keeps its first epochs and ends as
//! the same run trained without stopping would, to the last bit; the last session's run, checkpointed while it trained and never
//! closed (as after a crash), is offered to be continued from its epoch and goes on from there.

use bayes_explorer::Lab;
use bayes_explorer::models::flow::FlowConfig;
use bayes_explorer::train::runfile::{AnyRun, first_difference};
use bayes_explorer::train::{EpochRecord, WorkerState};
use bayes_explorer::ui::{BayesExplorerApp, Settings, session_run_path};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use crate::common::{harness_for, wait_until};

/// Epochs of the saved run; Continue's default for a finished run adds as many again.
const A: usize = 3;

/// A small flow (quick on two shared cores) set to last `epochs` epochs.
fn tiny_flow(epochs: usize) -> FlowConfig {
    FlowConfig { layers: 2, hidden: vec![8], batch_size: 64, epochs, ..FlowConfig::default() }
}

/// The window on the flow lab, with a session folder when given.
fn flow_window(session: Option<std::path::PathBuf>, settings: Settings) -> Harness<'static, BayesExplorerApp> {
    let app =
        BayesExplorerApp::with_session(egui::Context::default(), Settings { tab: Lab::Flow, ..settings }, session);
    harness_for(app)
}

fn flow_history(app: &BayesExplorerApp) -> Vec<EpochRecord> {
    app.lab(Lab::Flow).snapshot.as_ref().map(|s| s.history.clone()).unwrap_or_default()
}

fn flow_epoch(app: &BayesExplorerApp) -> usize {
    app.lab(Lab::Flow).snapshot.as_ref().map_or(0, |s| s.epoch)
}

/// Trains the tiny flow for `epochs` epochs with Train and returns its history.
fn train_to_the_end(harness: &mut Harness<'_, BayesExplorerApp>, epochs: usize) -> Vec<EpochRecord> {
    *harness.state_mut().flow_config_mut() = tiny_flow(epochs);
    harness.get_by_label("Train").click();
    wait_until(harness, "the run's end", |app| {
        app.lab(Lab::Flow).worker_state == Some(WorkerState::Finished) && flow_epoch(app) == epochs
    });
    flow_history(harness.state())
}

#[test]
fn ux_continue_carries_a_run_on_in_place_and_from_its_file_exactly_as_if_it_had_not_stopped() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let path = folder.path().join("flow-run.json");

    // The same settings trained for 2A epochs without stopping.
    let mut harness = flow_window(None, Settings::default());
    let whole = train_to_the_end(&mut harness, 2 * A);
    drop(harness);

    // Trained for A epochs and saved.
    let mut harness = flow_window(None, Settings::default());
    let first = train_to_the_end(&mut harness, A);
    harness.state_mut().save_run(Lab::Flow, Some(path.clone()));
    wait_until(&mut harness, "the save", |app| !app.run_file_busy());
    // Continued where it was trained (from a checkpoint its worker takes): the same as without stopping.
    harness.get_by_label("Continue").click();
    wait_until(&mut harness, "the run continued in place", |app| {
        app.lab(Lab::Flow).worker_state == Some(WorkerState::Finished) && flow_epoch(app) == 2 * A
    });
    assert_eq!(first_difference(&whole, &flow_history(harness.state())), None, "continued in place");
    drop(harness);

    // Opened in a new window: offered to be continued, then continued for the default A epochs.
    let mut harness = flow_window(None, Settings::default());
    harness.state_mut().open_run(Some(path));
    wait_until(&mut harness, "the opened run", |app| {
        app.lab(Lab::Flow).message.as_ref().is_some_and(|m| m.text.starts_with("Opened"))
    });
    let offer = &harness.state().lab(Lab::Flow).message.as_ref().expect("the message").text;
    assert!(offer.contains(&format!("Continue carries it on from epoch {A}")), "{offer}");
    harness.get_by_label("Continue").click();
    wait_until(&mut harness, "the continued run's end", |app| {
        app.lab(Lab::Flow).worker_state == Some(WorkerState::Finished) && flow_epoch(app) == 2 * A
    });
    let continued = flow_history(harness.state());
    let epochs: Vec<usize> = continued.iter().map(|r| r.epoch).collect();
    assert_eq!(epochs, (1..=2 * A).collect::<Vec<_>>(), "epochs A+1..2A follow the first A");
    assert_eq!(first_difference(&first, &continued[..A]), None, "the first A epochs are the saved run's");
    assert_eq!(first_difference(&whole, &continued), None, "the same as the run trained without stopping");
    let snapshot = harness.state().lab(Lab::Flow).snapshot.clone().expect("a snapshot");
    assert_eq!(snapshot.total_epochs, 2 * A, "the run now lasts 2A epochs");
    assert!(harness.state().lab(Lab::Flow).message.as_ref().is_some_and(|m| m.text.starts_with("Continuing")));
}

/// A window keeping its session in a temporary folder (kept alive by the first value), with the session's flow run
/// file, and a tiny flow set to 10,000 epochs trained with Train to its second epoch.
fn training_with_a_session() -> (tempfile::TempDir, std::path::PathBuf, Harness<'static, BayesExplorerApp>) {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let mut harness = flow_window(Some(folder.path().join("session")), Settings::default());
    *harness.state_mut().flow_config_mut() = tiny_flow(10_000);
    harness.get_by_label("Train").click();
    wait_until(&mut harness, "two epochs", |app| flow_epoch(app) >= 2);
    let session = folder.path().join("session");
    (folder, session, harness)
}

#[test]
fn ux_the_last_sessions_run_checkpointed_while_training_is_offered_to_continue() {
    // Training, long enough not to end: the autosave asks for a checkpoint, then the window goes without closing.
    let (_folder, session, mut harness) = training_with_a_session();
    let file = session_run_path(&session, Lab::Flow);
    let settings = harness.state_mut().persist(false);
    wait_until(&mut harness, "the checkpoint", |_| AnyRun::load(&file).is_ok_and(|run| run.state().is_some()));
    drop(harness);
    let saved = AnyRun::load(&file).expect("the checkpoint");
    let n = saved.snapshot().epoch;

    // The next launch restores it and offers to continue it from its epoch.
    let mut harness = flow_window(Some(session), settings);
    wait_until(&mut harness, "the restored run", |app| {
        !app.restoring_session() && app.lab(Lab::Flow).message.as_ref().is_some_and(|m| m.text.starts_with("Restored"))
    });
    let offer = &harness.state().lab(Lab::Flow).message.as_ref().expect("the message").text;
    assert!(offer.contains(&format!("Continue carries it on from epoch {n}")), "{offer}");
    harness.get_by_label("Continue").click();
    wait_until(&mut harness, "epochs past the checkpoint", |app| flow_epoch(app) > n + 1);
    harness.get_by_label("Pause").click();
    let history = flow_history(harness.state());
    assert_eq!(first_difference(&saved.snapshot().history, &history[..n]), None, "the checkpoint's epochs stay");
    assert_eq!(harness.state().lab(Lab::Flow).snapshot.as_ref().map(|s| s.total_epochs), Some(10_000));
}

/// Closing the window keeps each run as it is at that moment, with its training state: a run paused a few seconds
/// after Train, before the 30-second autosave, was not kept at all (the save on closing asked the worker for a
/// checkpoint and the window was gone before it came), and a longer one was kept as the autosave before last had it.
#[test]
fn ux_closing_the_window_keeps_the_run_as_it_is_then() {
    let (_folder, session, mut harness) = training_with_a_session();
    let file = session_run_path(&session, Lab::Flow);
    harness.get_by_label("Pause").click();
    wait_until(&mut harness, "the pause", |app| app.lab(Lab::Flow).worker_state == Some(WorkerState::Paused));
    let paused = harness.state().lab(Lab::Flow).snapshot.clone().expect("the paused run");
    assert!(!file.exists(), "no autosave yet");
    // What eframe does on closing: its last save, then on_exit, with no frame between them.
    let settings = harness.state_mut().persist(false);
    harness.state_mut().finish_session();
    let kept = AnyRun::load(&file).expect("the run kept on closing");
    assert!(kept.state().is_some(), "with its training state, so that Continue can carry it on");
    assert_eq!((kept.snapshot().epoch, kept.snapshot().step), (paused.epoch, paused.step), "as it was when closed");
    drop(harness);
    // The next launch shows it at that epoch, and Space carries it on from there, as it resumed it before the window
    // closed (it offered to discard it and train from scratch).
    let mut harness = flow_window(Some(session), settings);
    wait_until(&mut harness, "the restored run", |app| !app.restoring_session() && flow_epoch(app) == paused.epoch);
    harness.run_steps(2);
    harness.get_by_label_contains("Worker (Flow): stopped before its end");
    harness.key_press(egui::Key::Space);
    harness.run_steps(2);
    assert!(harness.query_by_label_contains("Discard the Flow run?").is_none(), "Space does not ask to discard it");
    wait_until(&mut harness, "epochs past the restored one", |app| flow_epoch(app) > paused.epoch);
    let history = flow_history(harness.state());
    assert_eq!(first_difference(&paused.history, &history[..paused.epoch]), None, "its epochs stay");
    harness.get_by_label("Pause").click();
}

#[test]
fn ux_continue_is_disabled_for_a_version_1_run_file_and_the_message_does_not_offer_it() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1/flow_affine.json");
    let mut harness = flow_window(None, Settings::default());
    harness.state_mut().open_run(Some(path));
    wait_until(&mut harness, "the opened run", |app| {
        app.lab(Lab::Flow).message.as_ref().is_some_and(|m| m.text.starts_with("Opened"))
    });
    let message = &harness.state().lab(Lab::Flow).message.as_ref().expect("the message").text;
    assert!(!message.contains("Continue"), "{message}");
    assert!(harness.get_by_label("Continue").accesskit_node().is_disabled(), "Continue is disabled");
    // The reason shows on hover (once the tooltip's delay has passed).
    harness.get_by_label("Continue").hover();
    for _ in 0..100 {
        if harness.query_by_label_contains("format version 1").is_some() {
            break;
        }
        harness.step();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    harness.get_by_label_contains("format version 1");
}

/// A session checkpoint that cannot be written (the session folder's place is taken by a file; a read-only
/// folder does not stop root, who runs the tests) says so in the lab, and training goes on.
#[test]
fn ux_a_session_checkpoint_that_cannot_be_written_is_a_warning_and_training_goes_on() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let blocker = folder.path().join("not-a-folder");
    std::fs::write(&blocker, "a file where the session folder would go").expect("the blocking file");
    let mut harness = flow_window(Some(blocker.join("session")), Settings::default());
    *harness.state_mut().flow_config_mut() = tiny_flow(10_000);
    harness.get_by_label("Train").click();
    wait_until(&mut harness, "two epochs", |app| flow_epoch(app) >= 2);
    harness.state_mut().persist(false);
    wait_until(&mut harness, "the warning", |app| {
        app.lab(Lab::Flow).message.as_ref().is_some_and(|m| m.text.contains("could not be written"))
    });
    let message = harness.state().lab(Lab::Flow).message.as_ref().expect("the message").text.clone();
    assert!(message.contains("not-a-folder"), "the message names where: {message}");
    let epoch = flow_epoch(harness.state());
    wait_until(&mut harness, "training going on", |app| flow_epoch(app) > epoch + 1);
    assert_eq!(harness.state().lab(Lab::Flow).worker_state, Some(WorkerState::Running));
    harness.get_by_label("Pause").click();
}
