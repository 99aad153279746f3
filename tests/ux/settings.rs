//! Issue 28, part 2: settings that are not what the screen shows. Each field that cannot train says so in red
//! under it and disables Train with the reason; an unusual value trains with a note; a setting the app picks for
//! the data is said in the message line; while a run is on show the fields say they are for the next run; a 1-D
//! VAE latent gets a 1-D view.

use bayes_explorer::Lab;
use bayes_explorer::models::bnn::{BnnConfig, Posterior};
use bayes_explorer::ui::{BayesExplorerApp, Settings};
use egui::accesskit::Role;
use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use crate::common::{harness, harness_for, scroll_into_view_over, use_in_the_lab, wait_for_label, wait_until};

/// What the hidden-units fields accept, as their red message says.
const HIDDEN_ACCEPTS: &str = "whole numbers from 1 to 4096, separated by commas";

/// Replaces the text of the field labelled `label` as a user does: focus it (as a click or Tab does; a field scrolled
/// out of the side panel comes into view), select all, type, Enter.
fn type_into(harness: &mut Harness<'_, BayesExplorerApp>, label: &str, text: &str) {
    harness.get_by_label(label).focus();
    harness.run_steps(2);
    harness.key_combination_modifiers(Modifiers::COMMAND, &[Key::A]);
    harness.run_steps(1);
    if text.is_empty() {
        harness.key_press(Key::Backspace);
    } else {
        harness.get_by_label(label).type_text(text);
    }
    harness.run_steps(2);
    harness.key_press(Key::Enter);
    harness.run_steps(3);
}

fn train_is_disabled(harness: &Harness<'_, BayesExplorerApp>) -> bool {
    harness.get_by_label("Train").accesskit_node().is_disabled()
}

fn shows(harness: &Harness<'_, BayesExplorerApp>, text: &str) -> bool {
    harness.query_all_by_label_contains(text).count() > 0
}

fn open_tab(harness: &mut Harness<'_, BayesExplorerApp>, tab: &str) {
    harness.get_by_role_and_label(Role::Button, tab).click();
    harness.run_steps(3);
}

/// Picks `option` in the settings dropdown labelled `combo`, scrolled into view first.
fn choose(harness: &mut Harness<'_, BayesExplorerApp>, combo: &str, option: &str) {
    scroll_into_view_over(harness, egui::pos2(150.0, 600.0), |h| h.get_by_label(combo).rect());
    harness.get_by_label(combo).click();
    harness.run_steps(3);
    harness.get_by_label(option).click();
    harness.run_steps(3);
}

/// Clicks the built-in data set `name` in the side panel of `lab` (on show) and waits until the lab has it.
pub(crate) fn load_builtin(harness: &mut Harness<'_, BayesExplorerApp>, lab: Lab, name: &str) {
    scroll_into_view_over(harness, egui::pos2(150.0, 300.0), |h| h.get_by_label(name).rect());
    harness.get_by_label(name).click();
    let loaded = name.to_owned();
    wait_until(harness, "the data", move |app| app.lab(lab).data.as_ref().is_some_and(|d| d.table.name == loaded));
    harness.run_steps(3);
}

#[test]
fn ux_bnn_hidden_units_refuse_bad_text_and_train_never_trains_another_network() {
    let mut harness = harness();
    for bad in ["abc", "0", "8,,x", "-3"] {
        type_into(&mut harness, "Hidden units", bad);
        assert_eq!(harness.get_by_label("Hidden units").value().as_deref(), Some(bad), "the field keeps the text");
        assert!(shows(&harness, HIDDEN_ACCEPTS), "{bad}: a red message says what is accepted");
        assert!(train_is_disabled(&harness), "{bad}: Train is disabled");
    }
    // The reason is on Train's hover, and Train (disabled) starts nothing.
    harness.get_by_label("Train").hover();
    harness.run_steps(40);
    assert!(shows(&harness, "Cannot train: Hidden units:"), "the hover says why");
    harness.get_by_label("Train").click();
    harness.run_steps(3);
    assert!(harness.state().lab(Lab::Bnn).worker_state.is_none(), "no run started");
    // New model is refused too, saying why in the message line.
    harness.get_by_label("New model").click();
    harness.run_steps(3);
    assert!(harness.state().lab(Lab::Bnn).worker_state.is_none(), "no model built");
    let message = harness.state().lab(Lab::Bnn).message.clone().map(|m| m.text).unwrap_or_default();
    assert!(message.starts_with("Cannot train: Hidden units:"), "{message}");
    harness.get_by_label("Dismiss").click();
    harness.run_steps(2);
    // Empty says plainly that it is a linear model, and trains one.
    type_into(&mut harness, "Hidden units", "");
    assert!(shows(&harness, "a linear model"));
    assert!(!train_is_disabled(&harness));
    assert_eq!(harness.state().bnn_state().config.hidden, Vec::<usize>::new());
    type_into(&mut harness, "Hidden units", "16, 4");
    assert!(!shows(&harness, HIDDEN_ACCEPTS) && !train_is_disabled(&harness));
    assert_eq!(harness.state().bnn_state().config.hidden, vec![16, 4], "the field is what will be trained");
}

#[test]
fn ux_bnn_hidden_units_too_large_for_a_full_covariance_are_refused_before_train() {
    let mut harness = harness();
    // The red wine's 11 features into 512 units: 6,144 parameters, past the full covariance's 2,048.
    type_into(&mut harness, "Hidden units", "512");
    assert!(shows(&harness, "layer 1 would have 6,144 parameters"));
    assert!(train_is_disabled(&harness));
    harness.get_by_label("Posterior").click();
    harness.run_steps(2);
    harness.get_by_label("mean-field Gaussian").click();
    harness.run_steps(3);
    assert!(!train_is_disabled(&harness), "the mean-field posterior trains it");
}

#[test]
fn ux_bnn_posterior_menu_says_what_each_posterior_is() {
    let mut harness = harness();
    harness.get_by_label("Posterior").click();
    harness.run_steps(2);
    for (option, says) in [
        ("full-covariance Gaussian", "The course's: one Gaussian over all of a layer's weights"),
        ("mean-field Gaussian", "test RMSE 0.715 ± 0.022 against the full covariance's 0.745 ± 0.024"),
        ("none (deterministic baseline)", "whose predictions have no spread"),
    ] {
        assert!(!shows(&harness, says), "{option}: not before the hover");
        harness.get_by_label(option).hover();
        harness.run_steps(40);
        assert!(shows(&harness, says), "{option}: its hover");
    }
    assert_eq!(harness.state().bnn_state().config.posterior, Posterior::FullCovariance, "hovering chooses nothing");
}

#[test]
fn ux_vae_hidden_units_refuse_bad_text() {
    let mut harness = harness();
    open_tab(&mut harness, "VAE");
    let before = harness.state().vae_state().config.hidden.clone();
    type_into(&mut harness, "Hidden units", "8,,x");
    assert!(shows(&harness, HIDDEN_ACCEPTS));
    assert!(train_is_disabled(&harness));
    assert_eq!(harness.state().vae_state().config.hidden, before);
    type_into(&mut harness, "Hidden units", "64");
    assert!(!train_is_disabled(&harness));
    assert_eq!(harness.state().vae_state().config.hidden, vec![64]);
}

#[test]
fn ux_numeric_settings_that_cannot_train_are_refused_inline_in_every_lab() {
    let mut harness = harness();
    let cases = [
        ("BNN", "Learning rate", "0", "Learning rate must be from 0.000001 to 1.", "0.001"),
        ("BNN", "Epochs", "0", "Epochs must be from 1 to 100,000.", "20"),
        ("BNN", "Batch size", "0", "Batch size must be from 1 to 100,000.", "256"),
        ("BNN", "Prior sd", "0", "Prior sd must be from 0.01 to 100.", "1"),
        ("BNN", "Monte Carlo samples", "0", "Monte Carlo samples must be from 1 to 10,000.", "100"),
        ("VAE", "Learning rate (Adam)", "0", "Learning rate must be from 0.000001 to 1.", "0.001"),
        ("VAE", "Latent dimension", "0", "Latent dimension must be from 1 to 64.", "2"),
        ("VAE", "Epochs", "0", "Epochs must be from 1 to 100,000.", "2"),
        ("Flow", "Layers", "0", "Layers must be from 1 to 32.", "4"),
        ("Flow", "Hidden units", "1", "Hidden units must be from 2 to 1,024.", "64"),
        ("Flow", "Epochs", "0", "Epochs must be from 1 to 100,000.", "20"),
    ];
    for (tab, label, bad, message, good) in cases {
        open_tab(&mut harness, tab);
        type_into(&mut harness, label, bad);
        assert!(shows(&harness, message), "{tab} {label} = {bad}: {message:?} is shown");
        assert!(train_is_disabled(&harness), "{tab} {label} = {bad}: Train is disabled");
        type_into(&mut harness, label, good);
        assert!(!shows(&harness, message) && !train_is_disabled(&harness), "{tab} {label} = {good} trains");
    }
}

#[test]
fn ux_a_batch_larger_than_the_training_rows_trains_with_a_note() {
    let mut harness = harness();
    // The red wine: 1,359 training rows.
    type_into(&mut harness, "Batch size", "5000");
    assert!(shows(&harness, "Larger than the 1,359 training rows: each step takes all of them"));
    assert!(!train_is_disabled(&harness), "unusual, not refused");
    assert_eq!(harness.state().bnn_state().config.batch_size, 5000);
}

#[test]
fn ux_loading_data_says_when_it_sets_the_epochs_and_keeps_the_users_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.csv");
    let rows: Vec<String> = (0..400).map(|i| format!("{},{}", i % 17, (i * 7) % 13)).collect();
    let csv = format!("x,y\n{}\n", rows.join("\n"));
    std::fs::write(&path, csv).unwrap();
    let load = |harness: &mut Harness<'_, BayesExplorerApp>| {
        harness.state_mut().path_text = path.display().to_string();
        harness.get_by_label("Load").click();
        wait_until(harness, "the preview", BayesExplorerApp::preview_is_open);
        use_in_the_lab(harness, Lab::Bnn);
    };
    let mut harness = harness();
    assert_eq!(harness.state().bnn_state().config.epochs, 2000, "the red wine's default");
    load(&mut harness);
    let epochs = harness.state().bnn_state().config.epochs;
    assert_ne!(epochs, 2000);
    let message = harness.state().lab(Lab::Bnn).message.clone().map(|m| m.text).unwrap_or_default();
    assert!(message.starts_with(&format!("Epochs set to {epochs} for ")), "{message}");
    assert!(shows(&harness, &format!("Epochs set to {epochs} for ")), "in the message line");
    // The user's own value stays, and the message says what the data's default would be.
    type_into(&mut harness, "Epochs", "50");
    load(&mut harness);
    assert_eq!(harness.state().bnn_state().config.epochs, 50);
    let message = harness.state().lab(Lab::Bnn).message.clone().map(|m| m.text).unwrap_or_default();
    assert!(message.starts_with("Epochs kept at 50, your value"), "{message}");
}

#[test]
fn ux_settings_edited_while_a_run_trains_say_they_are_for_the_next_run() {
    let mut harness = harness();
    harness.get_by_label("Train").click();
    wait_until(&mut harness, "the run", |app| app.lab(Lab::Bnn).snapshot.is_some());
    assert!(shows(&harness, "These settings are for the next run"));
    type_into(&mut harness, "Epochs", "7");
    assert!(shows(&harness, "this run: 2,000"), "the run on show keeps its epochs, beside the field");
    assert_eq!(harness.state().lab(Lab::Bnn).snapshot.as_ref().map(|s| s.total_epochs), Some(2000));
    harness.get_by_label("Epochs").scroll_to_me();
    harness.run_steps(3);
    harness.get_by_label("Epochs").hover();
    harness.run_steps(40);
    assert!(shows(&harness, "Applies to the next run"), "the hover says which run");
    harness.get_by_label("Learning rate").scroll_to_me();
    harness.run_steps(3);
    harness.get_by_label("Learning rate").hover();
    harness.run_steps(40);
    assert!(shows(&harness, "Applies to the run on show at once"), "the learning rate applies now");
    // Pause, then Train: the next run takes the edited count.
    harness.get_by_label("Pause").click();
    harness.run_steps(3);
    harness.get_by_label("Train").click();
    wait_until(&mut harness, "the next run", |app| {
        app.lab(Lab::Bnn).snapshot.as_ref().is_some_and(|s| s.total_epochs == 7)
    });
    assert!(!shows(&harness, "this run: "), "the new run has the settings the fields show");
}

#[test]
fn ux_settings_restored_from_the_last_session_that_cannot_train_say_so() {
    let config = BnnConfig { hidden: vec![8, 0], epochs: 0, ..BnnConfig::default() };
    let json = serde_json::to_string(&config).unwrap();
    let settings = Settings { run_settings: vec![(Lab::Bnn, json)], ..Settings::default() };
    let mut harness = harness_for(BayesExplorerApp::new(egui::Context::default(), settings));
    harness.run_steps(3);
    assert_eq!(harness.get_by_label("Hidden units").value().as_deref(), Some("8, 0"));
    assert!(shows(&harness, HIDDEN_ACCEPTS), "the restored layers are refused in red");
    assert!(shows(&harness, "Epochs must be from 1 to 100,000."));
    assert!(train_is_disabled(&harness));
}

#[test]
fn ux_the_generator_fields_say_which_generated_set_is_on_show_after_a_relaunch() {
    use bayes_explorer::data::{LoadRequest, SynthKind, SynthSpec};
    let spirals = SynthSpec { kind: SynthKind::Spirals, n_points: 1200, noise: 0.15, seed: 3 };
    let settings =
        Settings { tab: Lab::Flow, labs: vec![(Lab::Flow, LoadRequest::Synth(spirals), None)], ..Settings::default() };
    let mut harness = harness_for(BayesExplorerApp::new(egui::Context::default(), settings));
    wait_until(&mut harness, "the last session's set", |app| {
        app.lab(Lab::Flow).data.as_ref().is_some_and(|d| matches!(d.request, LoadRequest::Synth(s) if s == spirals))
    });
    harness.run_steps(2);
    // The fields are the set's (not the moons' defaults): Generate makes it again.
    assert!(shows(&harness, "Two spirals"));
    assert_eq!(harness.get_by_label("Points").value().as_deref(), Some("1200"));
    assert_eq!(harness.get_by_label("Noise").value().as_deref(), Some("0.150"));
    // The generator's seed is the panel's first (the run's own comes under Settings).
    let seed = harness.query_all_by_label("Seed").next().expect("the generator's seed");
    assert_eq!(seed.value().as_deref(), Some("3"));
}

#[test]
fn ux_flow_layers_of_different_widths_are_shown_as_they_train() {
    let mut harness = harness();
    open_tab(&mut harness, "Flow");
    harness.state_mut().flow_config_mut().hidden = vec![32, 16];
    harness.run_steps(3);
    assert!(shows(&harness, "Hidden units per layer: 32, 16"));
}

/// The VAE lab with a latent of `dimensions` typed in, as a user types it, trained for one epoch: once its latent
/// means are in.
fn vae_trained_with_latent(dimensions: usize) -> Harness<'static, BayesExplorerApp> {
    let mut harness = harness();
    open_tab(&mut harness, "VAE");
    type_into(&mut harness, "Latent dimension", &dimensions.to_string());
    type_into(&mut harness, "Epochs", "1");
    assert_eq!(harness.state().vae_state().config.latent, dimensions);
    harness.get_by_label("Train").click();
    wait_until(&mut harness, "the latents", |app| app.vae_state().has_latents());
    harness
}

#[test]
fn ux_a_one_dimensional_vae_latent_gets_a_strip_and_a_row_of_decoded_images() {
    let mut harness = vae_trained_with_latent(1);
    wait_for_label(&mut harness, "Decoded along z1, 20 latent points");
    assert!(shows(&harness, "Encoder means of every input: z1 by class"));
    assert!(!shows(&harness, "Decoded manifold"), "no 2-D manifold of z1 against z1");
    wait_for_label(&mut harness, "20 points along z1 from ");
    // Hovering the strip decodes z1 alone.
    let strip = harness.get_by_label_contains("Encoder means of every input").rect();
    let at = egui::pos2(strip.center().x + 40.0, strip.bottom() + 150.0);
    harness.hover_at(at);
    wait_until(&mut harness, "the decoded image", |app| app.vae_state().hover_image().is_some());
    wait_for_label(&mut harness, "Decoded at z1 = ");
}

#[test]
fn ux_a_three_dimensional_vae_latent_names_its_dimensions_from_z1_as_the_axes_do() {
    let mut harness = vae_trained_with_latent(3);
    // The two fields of the dimensions on show read as the axes are labelled, z1 and z2 (not z0 and z1).
    assert_eq!(harness.get_by_label("x axis").value().as_deref(), Some("z1"));
    assert_eq!(harness.get_by_label("y axis").value().as_deref(), Some("z2"));
    // Put z3 on the y axis, as a user types it.
    type_into(&mut harness, "y axis", "3");
    assert_eq!(harness.state().vae_state().dims, (0, 2), "the third dimension, held from 0");
    assert_eq!(harness.get_by_label("y axis").value().as_deref(), Some("z3"));
    assert!(!shows(&harness, "against itself"), "two dimensions on show");
    // One dimension on both axes is said, not silently drawn as a diagonal.
    type_into(&mut harness, "x axis", "3");
    assert!(shows(&harness, "z3 against itself"), "the same dimension on both axes is said");
    type_into(&mut harness, "x axis", "1");
    assert!(!shows(&harness, "against itself"));
    // The decoded point is named by the dimensions on show.
    let plane = harness.get_by_label_contains("Encoder means of every input").rect();
    harness.hover_at(egui::pos2(plane.center().x + 40.0, plane.bottom() + 150.0));
    wait_until(&mut harness, "the decoded image", |app| app.vae_state().hover_image().is_some());
    wait_for_label(&mut harness, "Decoded at z1 = ");
    assert!(shows(&harness, ", z3 = "), "the decoded point names z3");
    // Other axes: the same point on them is another z, decoded anew, and named only once its image is in (it named
    // the new axes beside the old axes' image).
    // The run's last model in, and its image of the point (a live model's would be replaced anyway).
    wait_until(&mut harness, "the run's end", |app| {
        app.lab(Lab::Vae).worker_state == Some(bayes_explorer::train::WorkerState::Finished)
    });
    harness.run_steps(20);
    let before = harness.state().vae_state().hover_image().expect("an image").to_vec();
    type_into(&mut harness, "x axis", "2");
    wait_for_label(&mut harness, "Decoded at z2 = ");
    let after = harness.state().vae_state().hover_image().expect("an image");
    assert!(after != before.as_slice(), "the image named z2 and z3 is decoded on z2 and z3, not on z1 and z3");
    // z3 on both axes: the point gives z3 alone, named once.
    type_into(&mut harness, "x axis", "3");
    wait_for_label(&mut harness, "Decoded at z3 = ");
    assert!(!shows(&harness, ", z3 = "), "one dimension, named once");
}

/// Issue 21: the flow's initial weights, Adam's epsilon and weight average are settings of their own (PyTorch's
/// initial weights and epsilon, and RealNVP's average, by default), the Keras example's one click away, and the next
/// run trains with the choice; the affine flow, which has no networks, does not offer initial weights.
#[test]
fn ux_flow_initial_weights_adam_epsilon_and_weight_average_are_chosen_in_the_settings() {
    use bayes_explorer::models::flow::{FlowInit, FlowKind};
    let mut harness = harness();
    open_tab(&mut harness, "Flow");
    let combo = harness.get_by_label("Initial weights");
    assert_eq!(combo.value().as_deref(), Some(FlowInit::FanIn.label()), "PyTorch's is the default");
    combo.click();
    harness.run_steps(3);
    harness.get_by_label(FlowInit::Glorot.label()).click();
    harness.run_steps(3);
    assert_eq!(harness.state_mut().flow_config_mut().init, FlowInit::Glorot);
    assert_eq!(harness.get_by_label("Initial weights").value().as_deref(), Some(FlowInit::Glorot.label()));
    let combo = harness.get_by_label("Adam ε");
    assert_eq!(combo.value().as_deref(), Some("1e-8 (PyTorch)"));
    combo.click();
    harness.run_steps(3);
    harness.get_by_label("1e-7 (Keras)").click();
    harness.run_steps(3);
    assert_eq!(harness.state_mut().flow_config_mut().adam_epsilon.to_bits(), 1e-7_f64.to_bits());
    // The weight average: RealNVP's default, the last step's weights one choice away (below the window's edge at
    // first: the side panel is scrolled to it, as a user would).
    scroll_into_view_over(&mut harness, egui::pos2(150.0, 600.0), |h| h.get_by_label("Weight average").rect());
    let combo = harness.get_by_label("Weight average");
    assert_eq!(combo.value().as_deref(), Some("Moving average, 0.999"));
    combo.click();
    harness.run_steps(3);
    harness.get_by_label("Off (last step's)").click();
    harness.run_steps(3);
    assert_eq!(harness.state_mut().flow_config_mut().weight_average, None);
    assert_eq!(harness.get_by_label("Weight average").value().as_deref(), Some("Off (last step's)"));
    harness.state_mut().flow_config_mut().kind = FlowKind::Affine;
    harness.run_steps(3);
    assert_eq!(harness.query_all_by_label("Initial weights").count(), 0, "no networks, no initial weights");
}

/// The VAE's weight average: the default of both architectures, the last step's weights one choice away; choosing
/// an architecture brings its settings back with the average, and the hover says what it gave that architecture.
#[test]
fn ux_vae_weight_average_is_chosen_in_the_settings_and_follows_the_architecture() {
    let mut harness = harness();
    open_tab(&mut harness, "VAE");
    let average = |h: &Harness<'_, BayesExplorerApp>| h.state().vae_state().config.weight_average;
    scroll_into_view_over(&mut harness, egui::pos2(150.0, 600.0), |h| h.get_by_label("Weight average").rect());
    let combo = harness.get_by_label("Weight average");
    assert_eq!(combo.value().as_deref(), Some("Moving average, 0.999"), "the MLP VAE's default");
    assert_eq!(average(&harness), Some(0.999));
    combo.click();
    harness.run_steps(3);
    harness.get_by_label("Off (last step's)").click();
    harness.run_steps(3);
    assert_eq!(average(&harness), None);
    assert_eq!(harness.get_by_label("Weight average").value().as_deref(), Some("Off (last step's)"));
    for (arch, expected, figure) in [
        ("Convolutional (the course's)", Some(0.999), "from 51.5 to 50.5"),
        ("MLP (dense layers)", Some(0.999), "by 2.7 nats"),
    ] {
        choose(&mut harness, "Architecture", arch);
        assert_eq!(average(&harness), expected, "{arch}'s settings");
        scroll_into_view_over(&mut harness, egui::pos2(150.0, 600.0), |h| h.get_by_label("Weight average").rect());
        harness.get_by_label("Weight average").click();
        harness.run_steps(3);
        assert!(!shows(&harness, figure), "{arch}: not before the hover");
        harness.get_by_label("Moving average, 0.999").hover();
        harness.run_steps(40);
        assert!(shows(&harness, figure), "{arch}: the average's hover gives its figure");
        harness.get_by_label("Weight average").click();
        harness.run_steps(3);
    }
}

/// The convolutional VAE's settings stay inside the side panel: its long choices ("Convolutional (the course's)",
/// "1000 x squared error (course)") are cut short rather than widening the grid, so the note under the grid wraps
/// at the panel's edge instead of running past it out of sight.
#[test]
fn ux_conv_vae_settings_fit_the_side_panel() {
    let mut harness = harness();
    open_tab(&mut harness, "VAE");
    choose(&mut harness, "Architecture", "Convolutional (the course's)");
    harness.run_steps(2);
    let combo = harness.get_by_label("Architecture");
    assert_eq!(combo.value().as_deref(), Some("Convolutional (the course's)"), "the whole name for readers");
    // The side panel's edge: the page's text begins past it, its separator and the page's margin (about 16 points).
    // Before the cut, the likelihood's dropdown and the note ran to 383 here, against the page's text at 384.
    let page = harness.get_by_label_contains("evenly spaced through the file").rect().left();
    let edge = page - 16.0;
    assert!(combo.rect().right() <= edge, "the architecture's dropdown ends at {} (edge {edge})", combo.rect().right());
    let likelihood = harness.get_by_label("Likelihood").rect();
    assert!(likelihood.right() <= edge, "the likelihood's dropdown ends at {} (edge {edge})", likelihood.right());
    let note = harness.get_by_label_contains("The course's VAE: 3 x 3 convolutions").rect();
    assert!(note.right() <= edge, "the note ends at {} (edge {edge})", note.right());
}

/// A table in the VAE lab (the red wine): the MLP VAE's Bernoulli likelihood, which is for pixels, becomes the
/// squared error, said in the message line and under the field; choosing the Bernoulli back is refused in red with
/// Train disabled, as is the convolutional VAE; images (MNIST) bring the Bernoulli back where the table had put it
/// aside.
#[test]
fn ux_vae_on_a_table_takes_the_squared_error_and_refuses_what_needs_images() {
    use bayes_explorer::models::vae::{Likelihood, VaeArch};
    let mut harness = harness();
    open_tab(&mut harness, "VAE");
    let likelihood = |h: &Harness<'_, BayesExplorerApp>| h.state().vae_state().config.likelihood;
    assert_eq!(likelihood(&harness), Likelihood::Bernoulli, "MNIST at launch");
    load_builtin(&mut harness, Lab::Vae, "Wine quality, red (UCI)");
    assert_eq!(likelihood(&harness), Likelihood::Gaussian);
    let said = "Likelihood set to 1000 x squared error: these 11 features are a table, not images";
    assert!(shows(&harness, said), "in the message line");
    assert!(shows(&harness, "Set by the data: these 11 features are a table"), "under the field");
    assert!(!train_is_disabled(&harness));
    choose(&mut harness, "Likelihood", "Bernoulli (binarised pixels)");
    assert!(shows(&harness, "The Bernoulli likelihood is for images"), "refused in red");
    assert!(train_is_disabled(&harness));
    choose(&mut harness, "Likelihood", "1000 x squared error (course)");
    assert!(!train_is_disabled(&harness));
    assert!(!shows(&harness, "Set by the data"), "chosen, not set by the data");
    choose(&mut harness, "Architecture", "Convolutional (the course's)");
    assert_eq!(harness.state().vae_state().config.arch, VaeArch::Conv);
    assert!(shows(&harness, "The convolutional VAE needs images"), "refused in red");
    assert!(train_is_disabled(&harness));
    // Back to the MLP: its preset's Bernoulli gives way to the squared error on the table again.
    choose(&mut harness, "Architecture", "MLP (dense layers)");
    assert_eq!(likelihood(&harness), Likelihood::Gaussian);
    assert!(shows(&harness, "Set by the data"));
    assert!(!train_is_disabled(&harness));
    load_builtin(&mut harness, Lab::Vae, "MNIST, 5,000 digits");
    assert_eq!(likelihood(&harness), Likelihood::Bernoulli, "images bring it back");
    assert!(shows(&harness, "Likelihood set back to Bernoulli (binarised pixels) for these images"));
    assert!(!train_is_disabled(&harness));
}

/// The last session left the VAE lab on the red wine with the Bernoulli likelihood (settings from before the
/// likelihood followed the data): they come back with the squared error, which the note under the field says the
/// data set, and Train is enabled.
#[test]
fn ux_vae_settings_restored_with_the_bernoulli_on_a_table_take_the_squared_error() {
    use bayes_explorer::data::{BuiltinFile, LoadRequest};
    use bayes_explorer::models::vae::{Likelihood, VaeConfig};
    let json = serde_json::to_string(&VaeConfig { epochs: 3, ..VaeConfig::default() }).unwrap();
    let settings = Settings {
        run_settings: vec![(Lab::Vae, json)],
        labs: vec![(Lab::Vae, LoadRequest::Builtin(BuiltinFile::WineRed), None)],
        ..Settings::default()
    };
    let mut harness = harness_for(BayesExplorerApp::new(egui::Context::default(), settings));
    wait_until(&mut harness, "the wine", |app| {
        app.lab(Lab::Vae).data.as_ref().is_some_and(|d| d.table.name == "Wine quality, red (UCI)")
    });
    harness.run_steps(3);
    open_tab(&mut harness, "VAE");
    let config = &harness.state().vae_state().config;
    assert_eq!(
        (config.likelihood, config.epochs),
        (Likelihood::Gaussian, 3),
        "the restored settings, the likelihood set"
    );
    assert!(shows(&harness, "Set by the data: these 11 features are a table"));
    assert!(!train_is_disabled(&harness));
}

/// The VAE trained on the red wine colours its latent means by the wine's quality, each of the six values its
/// colour and legend entry, as the data's scatter does.
#[test]
fn ux_vae_latents_of_the_wine_are_coloured_by_its_quality() {
    let mut harness = harness();
    open_tab(&mut harness, "VAE");
    load_builtin(&mut harness, Lab::Vae, "Wine quality, red (UCI)");
    let config = &mut harness.state_mut().vae_state_mut().config;
    (config.hidden, config.epochs) = (vec![16], 2);
    harness.get_by_label("Train").click();
    wait_until(&mut harness, "the latent means", |app| app.vae_state().has_latents());
    wait_for_label(&mut harness, "quality 5");
    // The latent page, not the data's scatter (whose legend names the qualities too), is on show.
    assert!(shows(&harness, "Encoder means of every input"));
    assert!(!shows(&harness, "fixed acidity"), "the data's scatter is not on show");
    for quality in 3..=8 {
        assert!(harness.query_by_label(&format!("quality {quality}")).is_some(), "quality {quality} in the legend");
    }
    assert!(harness.query_by_label("inputs").is_none(), "not one colour for every input");
}

/// The BNN on data with a label (the 8 x 8 digits) ends in a softmax over its classes: a note under the regression
/// head says so, and goes with data whose output is a target (the wine).
#[test]
fn ux_bnn_head_says_a_label_makes_a_softmax() {
    let mut harness = harness();
    let note = "This data's label has 10 classes: the network ends in a softmax over them";
    assert!(!shows(&harness, "This data's label has"), "the wine's quality is a target");
    load_builtin(&mut harness, Lab::Bnn, "Digits 8x8 (UCI optdigits)");
    assert!(shows(&harness, note), "under the head");
    load_builtin(&mut harness, Lab::Bnn, "Wine quality, red (UCI)");
    assert!(!shows(&harness, "This data's label has"), "a target again");
}
