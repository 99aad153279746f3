//! Issue 23, presenter mode: one switch hides the settings, makes the theme light and zooms the window (the
//! presenter's zoom kept apart from the desk's); the keys listed by the `?` overlay do what it says, and none of
//! them fires while a text field is being typed in; Space goes to a control that has the keyboard's focus.

#![allow(clippy::float_cmp, reason = "zoom factors and whole stages are set exactly")]

use bayes_explorer::Lab;
use bayes_explorer::train::WorkerState;
use bayes_explorer::ui::presenter::{KEYS, PRESENTER_ZOOM};
use bayes_explorer::ui::{BayesExplorerApp, Settings};
use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use crate::common::{harness_for, wait_for_label, wait_until};

fn press(harness: &mut Harness<'_, BayesExplorerApp>, key: Key) {
    harness.key_press(key);
    harness.run_steps(2);
}

fn worker_state(app: &BayesExplorerApp, lab: Lab) -> Option<WorkerState> {
    app.lab(lab).worker_state
}

/// True when the last frame asked the window to go full screen (`on`) or leave it.
fn asked_fullscreen(harness: &Harness<'_, BayesExplorerApp>, on: bool) -> bool {
    harness
        .output()
        .viewport_output
        .values()
        .any(|v| v.commands.iter().any(|c| matches!(c, egui::ViewportCommand::Fullscreen(f) if *f == on)))
}

#[test]
fn ux_presenter_mode_hides_the_settings_and_the_keys_do_what_the_overlay_says() {
    let mut harness = harness_for(BayesExplorerApp::new(egui::Context::default(), Settings::default()));
    // A long BNN run, so that Space finds it running, then paused, then running.
    harness.state_mut().bnn_state_mut().config.epochs = 100_000;
    assert!(harness.query_by_label("Settings").is_some(), "the side panel's settings are on show at the desk");
    let desk_zoom = harness.ctx.zoom_factor();

    // P: presenter mode, without the settings panel, light and larger; the bar keeps the run's buttons.
    press(&mut harness, Key::P);
    assert!(harness.state().presenting());
    assert!(harness.query_by_label("Settings").is_none(), "presenter mode hides the settings");
    assert!(harness.query_by_label("Load CSV…").is_none(), "and the dataset section");
    assert!(harness.query_by_label("New model").is_none(), "and the training section");
    harness.get_by_label("Leave presenter mode");
    harness.get_by_label("Train");
    assert_eq!(harness.ctx.zoom_factor(), PRESENTER_ZOOM);
    assert_eq!(harness.ctx.options(|o| o.theme_preference), egui::ThemePreference::Light);
    assert_eq!(harness.ctx.theme(), egui::Theme::Light, "drawn light");

    // ?: the overlay lists every key with what it does; Esc closes it.
    press(&mut harness, Key::Questionmark);
    assert!(harness.state().keys_overlay_open());
    for (key, what) in KEYS {
        harness.get_by_label(key);
        harness.get_by_label(what);
    }
    press(&mut harness, Key::Escape);
    assert!(!harness.state().keys_overlay_open(), "Esc closes the list");

    // 1 / 2 / 3: the labs.
    for (key, lab) in [(Key::Num2, Lab::Vae), (Key::Num3, Lab::Flow), (Key::Num1, Lab::Bnn)] {
        press(&mut harness, key);
        assert_eq!(harness.state().settings.tab, lab, "{key:?} opens {}", lab.tab_name());
    }

    // Space: train, pause, resume.
    press(&mut harness, Key::Space);
    wait_until(&mut harness, "the BNN to train", |app| worker_state(app, Lab::Bnn) == Some(WorkerState::Running));
    press(&mut harness, Key::Space);
    wait_until(&mut harness, "the BNN to pause", |app| worker_state(app, Lab::Bnn) == Some(WorkerState::Paused));
    harness.get_by_label("Resume");
    press(&mut harness, Key::Space);
    wait_until(&mut harness, "the BNN to resume", |app| worker_state(app, Lab::Bnn) == Some(WorkerState::Running));
    press(&mut harness, Key::Space);
    wait_until(&mut harness, "the BNN to pause", |app| worker_state(app, Lab::Bnn) == Some(WorkerState::Paused));

    // Left / Right: the flow's stages, on a small flow trained from Space.
    press(&mut harness, Key::Num3);
    *harness.state_mut().flow_config_mut() = bayes_explorer::models::flow::FlowConfig {
        layers: 3,
        hidden: vec![16],
        epochs: 100_000,
        ..bayes_explorer::models::flow::FlowConfig::default()
    };
    harness.state_mut().labs.iter_mut().find(|l| l.lab == Lab::Flow).expect("a flow lab").epochs = 100_000;
    press(&mut harness, Key::Space);
    wait_until(&mut harness, "the flow's stages", |app| {
        app.lab(Lab::Flow).snapshot.as_ref().is_some_and(|s| s.model.is_some())
    });
    wait_for_label(&mut harness, "Stage 0 of 3");
    press(&mut harness, Key::ArrowRight);
    press(&mut harness, Key::ArrowRight);
    assert_eq!(harness.state().flow_state().position, 2.0, "Right twice: stage 2");
    press(&mut harness, Key::ArrowLeft);
    assert_eq!(harness.state().flow_state().position, 1.0, "Left: stage 1");
    wait_for_label(&mut harness, "Stage 1 of 3");
    press(&mut harness, Key::Space);
    wait_until(&mut harness, "the flow to pause", |app| worker_state(app, Lab::Flow) == Some(WorkerState::Paused));

    // F: full screen asked of the window.
    // (The harness steps one frame per event: the key's press is looked at before its release.)
    harness.key_down(Key::F);
    harness.step();
    assert!(asked_fullscreen(&harness, true), "F asks for full screen");
    harness.key_up(Key::F);
    harness.step();

    // Ctrl +: the presenter's zoom, kept apart from the desk's when presenter mode is left and entered again.
    harness.key_press_modifiers(Modifiers::COMMAND, Key::Plus);
    harness.run_steps(3);
    let presenter_zoom = harness.ctx.zoom_factor();
    assert!((presenter_zoom - (PRESENTER_ZOOM + 0.1)).abs() < 1e-6, "Ctrl + zooms in: {presenter_zoom}");
    press(&mut harness, Key::P);
    assert!(!harness.state().presenting());
    assert_eq!(harness.ctx.zoom_factor(), desk_zoom, "leaving presenter mode gives back the desk's zoom");
    assert!(harness.query_by_label("Settings").is_some(), "and the settings");
    assert_ne!(harness.ctx.options(|o| o.theme_preference), egui::ThemePreference::Light, "and the theme");
    harness.get_by_label("Presenter mode").click();
    harness.run_steps(3);
    assert!(harness.state().presenting(), "the top bar's switch enters presenter mode");
    assert_eq!(harness.ctx.zoom_factor(), presenter_zoom, "with the presenter's own zoom");
    assert_eq!(harness.state().settings.presenter.presenter_zoom, presenter_zoom, "kept in the settings");
    harness.get_by_label("Leave presenter mode").click();
    harness.run_steps(3);
    assert!(!harness.state().presenting());
}

/// The dataset section's path field.
fn path_field<'h>(harness: &'h Harness<'_, BayesExplorerApp>) -> egui_kittest::Node<'h> {
    harness.query_all_by_role(egui::accesskit::Role::TextInput).next().expect("the path field")
}

#[test]
fn ux_no_key_fires_while_a_text_field_is_typed_in_and_space_presses_a_focused_control() {
    let mut harness = harness_for(BayesExplorerApp::new(egui::Context::default(), Settings::default()));
    path_field(&harness).focus();
    harness.run_steps(2);
    for (key, text) in [(Key::Num2, "2"), (Key::P, "p"), (Key::Space, " "), (Key::F, "f")] {
        harness.key_press(key);
        path_field(&harness).type_text(text);
        harness.run_steps(2);
    }
    // A control with the keyboard's focus (Tab) takes Space: it presses the control and trains nothing.
    harness.get_by_label("Keys").focus();
    harness.run_steps(2);
    press(&mut harness, Key::Space);
    assert!(harness.state().keys_overlay_open(), "Space pressed the focused Keys button");
    let app = harness.state();
    assert_eq!(app.path_text, "2p f", "the keys went into the field");
    assert_eq!(app.settings.tab, Lab::Bnn, "2 typed in the field opens no lab");
    assert!(!app.presenting(), "p typed in the field does not present");
    assert_eq!(worker_state(app, Lab::Bnn), None, "Space typed in the field trains nothing");
}
