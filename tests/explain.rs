//! Issue 23, lecture mode: each lab's Explain panel opens from its toggle beside the figures, shows the lecture's
//! formulas typeset (images whose alt text is their LaTeX, drawn by the SVG loader), says "Train to see the values."
//! before a run, and after a short run shows the trainer's own figures exactly as the window prints them.

use std::time::Duration;

use bayes_explorer::Lab;
use bayes_explorer::ui::BayesExplorerApp;
use bayes_explorer::ui::equation::{formula_em, typeset_cached};
use bayes_explorer::ui::explain;
use bayes_explorer::ui::highlight::{Highlight, figure_label};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

mod common;
use common::{click_at, harness, wait_for_label, wait_until, wait_within};

/// Opens the Explain panel of the lab on show and checks it has the formula `latex` typeset and drawn, and says
/// what training would show.
fn open_explain(harness: &mut Harness<'_, BayesExplorerApp>, lab: Lab, latex: &str) {
    harness.get_by_label("Explain").click();
    harness.run_steps(3);
    assert!(harness.state().lab(lab).explain.open, "the toggle opens the {lab:?} panel");
    assert!(harness.query_all_by_label("Train to see the values.").count() >= 1, "no run: the panel says so");
    // The formula is an image labelled by its LaTeX, and the SVG loader rasterised it.
    let image = harness.get_by_label(latex).rect();
    assert!(image.width() > 40.0 && image.height() > 10.0, "{latex}: {image:?}");
    let ctx = harness.ctx.clone();
    let style = ctx.global_style();
    let em = egui::TextStyle::Body.resolve(&style).size * 1.2;
    let colour = style.visuals.strong_text_color();
    let typeset = typeset_cached(latex, colour, em).expect("the formula typesets");
    let loaded = ctx.try_load_texture(
        &typeset.uri,
        egui::TextureOptions::default(),
        egui::SizeHint::Size { width: 200, height: 40, maintain_aspect_ratio: true },
    );
    match loaded {
        Ok(egui::load::TexturePoll::Ready { texture }) => assert!(texture.size.x > 40.0, "{latex}: {:?}", texture.size),
        Ok(egui::load::TexturePoll::Pending { .. }) => panic!("{latex}: still loading"),
        Err(e) => panic!("{latex}: the SVG loader failed: {e}"),
    }
}

/// The VAE panel's line of eps.
fn eps_line(harness: &Harness<'_, BayesExplorerApp>) -> String {
    harness
        .query_all_by_label_contains("eps = (")
        .filter_map(|n| n.accesskit_node().label().or_else(|| n.accesskit_node().value()))
        .find(|l| l.starts_with("eps = ("))
        .expect("a line of eps")
}

/// Waits for the run of `lab` to end.
fn wait_for_the_end(harness: &mut Harness<'_, BayesExplorerApp>, lab: Lab) {
    wait_within(harness, Duration::from_mins(4), "the run's end", |app| {
        app.lab(lab).snapshot.as_ref().is_some_and(|s| s.epoch >= s.total_epochs && !s.history.is_empty())
            && app.lab(lab).worker_state == Some(bayes_explorer::train::WorkerState::Finished)
    });
}

/// The metric `name` of the last epoch of `lab`'s run on show.
fn metric(app: &BayesExplorerApp, lab: Lab, name: &str) -> f64 {
    let snapshot = app.lab(lab).snapshot.as_ref().expect("a run");
    snapshot.history.last().and_then(|r| r.get(name)).unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn explain_bnn_shows_the_elbo_terms_n_and_s_of_the_run() {
    let mut harness = harness();
    harness.state_mut().bnn_state_mut().config.epochs = 3;
    open_explain(&mut harness, Lab::Bnn, explain::BNN_ELBO);
    harness.get_by_label(explain::BNN_LOSS);
    harness.get_by_label(explain::BNN_PRIOR);
    harness.get_by_label(explain::BNN_FULL_COVARIANCE);
    harness.get_by_label(explain::BNN_PREDICTIVE);
    harness.get_by_label("Train").click();
    wait_for_the_end(&mut harness, Lab::Bnn);
    wait_until(&mut harness, "the predictions", |app| app.bnn_state().has_predictions());
    let app = harness.state();
    let (data, kl, loss) =
        (metric(app, Lab::Bnn, "data_loss"), metric(app, Lab::Bnn, "kl_loss"), metric(app, Lab::Bnn, "loss"));
    // The red wine's 1,359 training rows, all of them used.
    harness.get_by_label(&format!("data term = {data:.4}, KL/N = {kl:.4}, N = 1,359"));
    harness.get_by_label(&format!("loss = {loss:.4}, so ELBO/N = {:.4} (epoch 3)", -loss));
    // The same digits as the side panel's latest epoch.
    for v in [data, kl, loss] {
        assert!(harness.query_all_by_label(&format!("{v:.4}")).count() >= 1, "the side panel prints {v:.4}");
    }
    // S: the Monte Carlo passes of the views (the Predictions page's count).
    let s = harness.state().bnn_state().n_samples;
    harness.get_by_label(&format!("S = {s} forward passes (the Predictions page's)"));
    // The test row's actual value as the predictive table and the probe write it: the wine's whole quality.
    let row = harness.get_by_label_contains("test row 1: mean = ");
    let row = row.accesskit_node().label().or_else(|| row.accesskit_node().value()).unwrap_or_default();
    let actual = row.split("(actual quality: ").nth(1).unwrap_or_else(|| panic!("named by the target: {row}"));
    assert!(actual.trim_end_matches(')').parse::<u8>().is_ok(), "a whole quality: {row}");
    harness.get_by_label("s = 1 (the prior's sd, on every weight and bias)");
    assert_eq!(harness.query_all_by_label("Train to see the values.").count(), 0, "every value is in");
    // Closed again, the panel is gone.
    harness.get_by_label("Explain").click();
    harness.run_steps(3);
    assert!(harness.query_by_label(explain::BNN_ELBO).is_none(), "the panel closes");
}

#[test]
fn explain_vae_shows_the_draw_of_the_input_under_the_cursor_and_the_loss_terms() {
    let mut harness = harness();
    harness.get_by_label("VAE").click();
    harness.run_steps(2);
    harness.state_mut().vae_state_mut().config.epochs = 1;
    open_explain(&mut harness, Lab::Vae, explain::VAE_REPARAM);
    harness.get_by_label(explain::VAE_LOSS);
    harness.get_by_label(explain::VAE_KL);
    harness.get_by_label("Train").click();
    wait_for_the_end(&mut harness, Lab::Vae);
    wait_until(&mut harness, "the latent means", |app| app.vae_state().has_final_latents());
    let app = harness.state();
    let (recon, kl, loss, beta) = (
        metric(app, Lab::Vae, "recon_loss"),
        metric(app, Lab::Vae, "kl_loss"),
        metric(app, Lab::Vae, "loss"),
        metric(app, Lab::Vae, "beta"),
    );
    harness.get_by_label(&format!("reconstruction = {recon:.4}, beta = {beta:.4}, KL = {kl:.4}"));
    harness.get_by_label(&format!("loss = {loss:.4} (epoch 1, the mean over its minibatches)"));
    harness.get_by_label_contains("Test inputs, nats per dimension: z1 = ");
    // Beside the panel the page is too narrow for the latent plane and the manifold side by side: the manifold goes
    // under the plane, not under the panel.
    let heading = harness.get_by_label_contains("Encoder means of every input").rect();
    let manifold = harness.get_by_label_contains("Decoded manifold").rect();
    let panel = harness.get_by_label("The lecture's equations").rect();
    assert!(manifold.min.y > heading.max.y + 100.0, "the manifold {manifold:?} is under the plane {heading:?}");
    assert!(manifold.max.x <= panel.min.x, "the manifold {manifold:?} is left of the panel {panel:?}");
    // An input under the cursor: its mean and sd as the encoder gives them.
    harness.hover_at(heading.left_bottom() + egui::vec2(80.0, 120.0));
    wait_until(&mut harness, "an input under the cursor", |app| app.vae_state().input_under_cursor().is_some());
    let input = harness.state().vae_state().input_under_cursor().expect("an input");
    let (mu, logvar) =
        harness.state().vae_state().latent_moments(input).map(|(m, l)| (m.to_vec(), l.to_vec())).unwrap();
    assert_eq!(mu.len(), 2, "the MLP VAE's two latent dimensions");
    let sd = |j: usize| (0.5 * f64::from(logvar[j])).exp();
    let mu_line = format!("mu = ({:.3}, {:.3})", mu[0], mu[1]);
    let sigma_line = format!("sigma = ({:.3}, {:.3})", sd(0), sd(1));
    harness.get_by_label(&mu_line);
    harness.get_by_label(&sigma_line);
    harness.get_by_label_contains("z = mu + sigma * eps = (");
    let kl_input: f64 =
        (0..2).map(|j| 0.5 * (f64::from(mu[j]).powi(2) + sd(j).powi(2) - f64::from(logvar[j]) - 1.0)).sum();
    harness.get_by_label(&format!("For this input: KL = {kl_input:.4} nats"));
    // The cursor moves over to the panel: the numbers stay, and a new eps can be drawn.
    let eps_before = eps_line(&harness);
    let draw = harness.get_by_label("Draw eps again").rect().center();
    click_at(&mut harness, draw);
    harness.get_by_label(&mu_line);
    let eps_after = eps_line(&harness);
    assert_ne!(eps_before, eps_after, "another eps");
}

#[test]
fn explain_flow_shows_the_picked_points_change_of_variables_layer_by_layer() {
    let mut harness = harness();
    harness.get_by_label("Flow").click();
    harness.run_steps(2);
    *harness.state_mut().flow_config_mut() = bayes_explorer::models::flow::FlowConfig {
        layers: 2,
        hidden: vec![16],
        epochs: 3,
        ..bayes_explorer::models::flow::FlowConfig::default()
    };
    open_explain(&mut harness, Lab::Flow, explain::FLOW_DENSITY);
    harness.get_by_label(explain::FLOW_LOG_DENSITY);
    harness.get_by_label(explain::FLOW_COUPLING);
    harness.get_by_label("Train").click();
    wait_for_the_end(&mut harness, Lab::Flow);
    common::wait_for_label(&mut harness, "Stage 0 of 2");
    let app = harness.state();
    let (train, heldout) = (metric(app, Lab::Flow, "train_nll"), metric(app, Lab::Flow, "heldout_nll"));
    harness.get_by_label(&format!("training = {train:.4}, held-out = {heldout:.4} nats per point (epoch 3)"));
    // Layer 1's coupling at stage 0 (the layer that leaves the Gaussian).
    harness.get_by_label(&explain::flow_coupling_at(1));
    // Click the plot, between the heat map's choices above it and the note under it.
    let above = harness.get_by_label("Heat map:").rect();
    let below = harness.get_by_label("Click the plot to follow a point through every stage.").rect();
    click_at(&mut harness, egui::pos2(above.left() + 200.0, f32::midpoint(above.bottom(), below.top())));
    wait_until(&mut harness, "the picked point's path", |app| app.flow_state().probe_path().is_some());
    let path = harness.state().flow_state().probe_path().cloned().expect("a path");
    assert_eq!(path.layer_terms.len(), 2);
    harness.get_by_label(&format!("log p_z(z) = {:+.4}", path.log_pz));
    for (k, term) in path.layer_terms.iter().enumerate() {
        harness.get_by_label(&format!("layer {}: log|det J_{}| = {term:+.4}", k + 1, k + 1));
    }
    harness.get_by_label(&format!("log p_x(x) = {:+.4}, p_x(x) = {:.5}", path.log_px, path.log_px.exp()));
    // The flow page's own column prints the same terms.
    harness.get_by_label(&format!("{:+.4}", path.log_px));
    // Stage 1 is what layer 1 made; stage 2 what layer 2 made: its coupling, with its term at the picked point.
    harness.get_by_label("Next >").click();
    harness.run_steps(3);
    harness.get_by_label(&explain::flow_coupling_at(1));
    let (t1, t2) = (path.layer_terms[0], path.layer_terms[1]);
    harness.get_by_label(&format!(
        "At the picked point, layer 1: log|det J_1| = {t1:+.4}, so the sum of s is {:+.4}",
        -t1
    ));
    harness.get_by_label("Next >").click();
    harness.run_steps(3);
    harness.get_by_label_contains("Stage 2 of 2: after layer 2");
    harness.get_by_label(&explain::flow_coupling_at(2));
    harness.get_by_label(&format!(
        "At the picked point, layer 2: log|det J_2| = {t2:+.4}, so the sum of s is {:+.4}",
        -t2
    ));
}

/// Hovers the panel's term labelled `label` (a formula's LaTeX or a value line) and lets the figures redraw.
fn hover_term(harness: &mut Harness<'_, BayesExplorerApp>, label: &str) {
    harness.get_by_label(label).hover();
    harness.run_steps(3);
}

/// The figures' labels that say what they highlight.
fn highlighted(harness: &Harness<'_, BayesExplorerApp>) -> Vec<String> {
    harness.query_all_by_label_contains(&figure_label("")).filter_map(|n| n.accesskit_node().label()).collect()
}

/// Moves the pointer off the panel (onto the side panel's Train button): no term is hovered, nothing is highlighted.
fn leave_the_panel(harness: &mut Harness<'_, BayesExplorerApp>) {
    harness.get_by_label("Train").hover();
    harness.run_steps(3);
    assert!(highlighted(harness).is_empty(), "the highlight goes with the pointer: {:?}", highlighted(harness));
}

#[test]
fn explain_bnn_terms_highlight_the_prior_the_posterior_and_the_predictive_in_the_figures() {
    let mut harness = harness();
    harness.state_mut().bnn_state_mut().config.epochs = 2;
    open_explain(&mut harness, Lab::Bnn, explain::BNN_PRIOR);
    harness.get_by_label("Train").click();
    wait_for_the_end(&mut harness, Lab::Bnn);
    wait_until(&mut harness, "the predictions", |app| app.bnn_state().has_predictions());
    assert!(highlighted(&harness).is_empty(), "nothing hovered, nothing highlighted");
    // The red wine opens on the weight histograms: the prior's formula lights up its density there.
    hover_term(&mut harness, explain::BNN_PRIOR);
    assert_eq!(harness.state().bnn_state().highlight(), &Highlight::BnnPrior);
    let labels = highlighted(&harness);
    assert!(labels.contains(&figure_label("the prior's density N(0, 1²)")), "{labels:?}");
    leave_the_panel(&mut harness);
    assert_eq!(harness.state().bnn_state().highlight(), &Highlight::None);
    // Its value line too.
    hover_term(&mut harness, "s = 1 (the prior's sd, on every weight and bias)");
    assert_eq!(harness.state().bnn_state().highlight(), &Highlight::BnnPrior);
    // The posterior: the histogram of what it learned.
    hover_term(&mut harness, explain::BNN_FULL_COVARIANCE);
    assert_eq!(harness.state().bnn_state().highlight(), &Highlight::BnnPosterior);
    let labels = highlighted(&harness);
    assert!(labels.iter().any(|l| l.starts_with(&figure_label("the histogram of the posterior's"))), "{labels:?}");
    leave_the_panel(&mut harness);
    // The predictive, on the Predictions page: the means and intervals of the test rows.
    harness.get_by_label("Predictions").click();
    wait_for_label(&mut harness, "Predicted against actual");
    let s = harness.state().bnn_state().n_samples;
    hover_term(&mut harness, &format!("S = {s} forward passes (the Predictions page's)"));
    assert_eq!(harness.state().bnn_state().highlight(), &Highlight::BnnPredictive);
    let labels = highlighted(&harness);
    assert!(labels.contains(&figure_label("the predictive mean and 95 % interval of each test row")), "{labels:?}");
    hover_term(&mut harness, explain::BNN_MEAN);
    assert_eq!(highlighted(&harness).len(), 1, "the mean's formula lights up the same figure");
    leave_the_panel(&mut harness);
    // The loss's terms, on the Loss curves page: its two curves.
    harness.get_by_label("Loss curves").click();
    harness.run_steps(3);
    hover_term(&mut harness, explain::BNN_LOSS);
    assert_eq!(harness.state().bnn_state().highlight(), &Highlight::BnnLoss);
    assert_eq!(highlighted(&harness), vec![figure_label("the curves of data term and KL / N")]);
    leave_the_panel(&mut harness);
    // A term with no part in the figures (the ELBO) highlights nothing.
    hover_term(&mut harness, explain::BNN_ELBO);
    assert_eq!(harness.state().bnn_state().highlight(), &Highlight::None);
    assert!(highlighted(&harness).is_empty());
}

#[test]
fn explain_vae_terms_highlight_the_draw_the_prior_and_the_reconstructions() {
    let mut harness = harness();
    harness.get_by_label("VAE").click();
    harness.run_steps(2);
    harness.state_mut().vae_state_mut().config.epochs = 1;
    open_explain(&mut harness, Lab::Vae, explain::VAE_REPARAM);
    harness.get_by_label("Train").click();
    wait_for_the_end(&mut harness, Lab::Vae);
    wait_until(&mut harness, "the latent means", |app| app.vae_state().has_final_latents());
    // An input under the cursor, then the cursor over its draw's formula.
    let heading = harness.get_by_label_contains("Encoder means of every input").rect();
    harness.hover_at(heading.left_bottom() + egui::vec2(80.0, 120.0));
    wait_until(&mut harness, "an input under the cursor", |app| app.vae_state().input_under_cursor().is_some());
    let input = harness.state().vae_state().input_under_cursor().expect("an input");
    hover_term(&mut harness, explain::VAE_REPARAM);
    let eps_line = eps_line(&harness);
    match harness.state().vae_state().highlight() {
        Highlight::VaeDraw { input: i, eps } => {
            assert_eq!(*i, input, "the input whose numbers the panel shows");
            assert_eq!(eps_line, format!("eps = ({:.3}, {:.3})", eps[0], eps[1]), "the eps the panel shows");
        }
        other => panic!("the draw is highlighted, not {other:?}"),
    }
    let labels = highlighted(&harness);
    let draw = format!("input {}'s mu, its 1-sd ellipse of sigma and the draw z = mu + sigma * eps", input + 1);
    assert!(labels.contains(&figure_label(&draw)), "{labels:?}");
    // Its value lines too.
    hover_term(&mut harness, &eps_line);
    assert!(highlighted(&harness).contains(&figure_label(&draw)));
    leave_the_panel(&mut harness);
    // The KL term: the prior's circles.
    hover_term(&mut harness, explain::VAE_KL);
    assert_eq!(harness.state().vae_state().highlight(), &Highlight::VaePrior);
    assert!(highlighted(&harness).contains(&figure_label("the prior N(0, I): its 1- and 2-sd circles")));
    leave_the_panel(&mut harness);
    // The reconstruction term: the reconstructed images, on their page.
    harness.get_by_label("Reconstructions").click();
    harness.run_steps(3);
    let reconstruction = if harness.query_by_label(explain::VAE_BERNOULLI).is_some() {
        explain::VAE_BERNOULLI
    } else {
        explain::VAE_GAUSSIAN
    };
    hover_term(&mut harness, reconstruction);
    assert_eq!(harness.state().vae_state().highlight(), &Highlight::VaeReconstruction);
    assert!(
        highlighted(&harness).contains(&figure_label("the reconstructions decoded from the 16 test images' means")),
        "{:?}",
        highlighted(&harness)
    );
    leave_the_panel(&mut harness);
}

#[test]
fn explain_flow_terms_highlight_the_picked_points_z_and_each_layers_step() {
    let mut harness = harness();
    harness.get_by_label("Flow").click();
    harness.run_steps(2);
    *harness.state_mut().flow_config_mut() = bayes_explorer::models::flow::FlowConfig {
        layers: 2,
        hidden: vec![16],
        epochs: 2,
        ..bayes_explorer::models::flow::FlowConfig::default()
    };
    open_explain(&mut harness, Lab::Flow, explain::FLOW_DENSITY);
    harness.get_by_label("Train").click();
    wait_for_the_end(&mut harness, Lab::Flow);
    common::wait_for_label(&mut harness, "Stage 0 of 2");
    // Before a point is picked, the layer on show is all a layer's term has in the figure.
    hover_term(&mut harness, &explain::flow_coupling_at(1));
    assert_eq!(harness.state().flow_state().highlight(), &Highlight::FlowLayer(1));
    assert_eq!(highlighted(&harness), vec![figure_label("layer 1: the stage's plot (the layer on show)")]);
    leave_the_panel(&mut harness);
    let above = harness.get_by_label("Heat map:").rect();
    let below = harness.get_by_label("Click the plot to follow a point through every stage.").rect();
    click_at(&mut harness, egui::pos2(above.left() + 200.0, f32::midpoint(above.bottom(), below.top())));
    wait_until(&mut harness, "the picked point's path", |app| app.flow_state().probe_path().is_some());
    let path = harness.state().flow_state().probe_path().cloned().expect("a path");
    // log p_z(z): the picked point's z.
    hover_term(&mut harness, &format!("log p_z(z) = {:+.4}", path.log_pz));
    assert_eq!(harness.state().flow_state().highlight(), &Highlight::FlowLatent);
    assert_eq!(highlighted(&harness), vec![figure_label("the picked point's z at stage 0, the Gaussian's")]);
    // Layer 1 (on show at stage 0) and layer 2 (not on show): each one's step.
    let (t1, t2) = (path.layer_terms[0], path.layer_terms[1]);
    hover_term(&mut harness, &format!("layer 1: log|det J_1| = {t1:+.4}"));
    assert_eq!(
        highlighted(&harness),
        vec![figure_label(
            "layer 1: the picked point's step from stage 0 to stage 1, the stage's plot (the layer on show)"
        )]
    );
    hover_term(&mut harness, &format!("layer 2: log|det J_2| = {t2:+.4}"));
    assert_eq!(harness.state().flow_state().highlight(), &Highlight::FlowLayer(2));
    assert_eq!(highlighted(&harness), vec![figure_label("layer 2: the picked point's step from stage 1 to stage 2")]);
    // The change of variables as a whole: the path.
    hover_term(&mut harness, explain::FLOW_LOG_DENSITY);
    assert_eq!(highlighted(&harness), vec![figure_label("the picked point's path through every stage")]);
    // The negative log-likelihood: the loss curves above the step-through.
    hover_term(&mut harness, explain::FLOW_NLL);
    assert_eq!(harness.state().flow_state().highlight(), &Highlight::FlowLoss);
    assert_eq!(
        highlighted(&harness),
        vec![figure_label("the curves of train NLL (the steps' minibatches) and held-out NLL (the weight average)")]
    );
    leave_the_panel(&mut harness);
    assert_eq!(harness.state().flow_state().highlight(), &Highlight::None);
}

/// The formulas are drawn at the body size's em the panel uses.
#[test]
fn explain_formulas_use_the_body_size() {
    let ctx = egui::Context::default();
    let mut em = 0.0;
    let _ = ctx.run_ui(egui::RawInput::default(), |ui| em = formula_em(ui));
    assert!((em - egui::TextStyle::Body.resolve(&ctx.global_style()).size * 1.2).abs() < 1e-4, "{em}");
}

#[test]
fn explain_shows_the_figures_of_the_epoch_the_scrubber_shows() {
    let mut harness = harness();
    harness.state_mut().bnn_state_mut().config.epochs = 40;
    harness.get_by_label("Explain").click();
    harness.run_steps(3);
    harness.get_by_label("Train").click();
    wait_for_the_end(&mut harness, Lab::Bnn);
    harness.get_by_label_contains("(epoch 40)");
    // Scrubbed back to a model kept inside the run: the panel gives the figures of the last epoch finished by then,
    // as the loss curves' marker and every view do, not the latest epoch's.
    let entries: Vec<(u64, f64)> =
        harness.state().bnn_state().scrubber.history.entries().iter().map(|e| (e.step, e.epoch)).collect();
    let &(step, epoch) =
        entries.iter().find(|(_, e)| *e >= 1.0 && *e < 40.0).unwrap_or_else(|| panic!("a model inside: {entries:?}"));
    harness.state_mut().bnn_state_mut().scrubber.step = Some(step);
    harness.run_steps(3);
    let snapshot = harness.state().lab(Lab::Bnn).snapshot.clone().expect("a run");
    let record = explain::record_on_show(&snapshot, Some(epoch)).expect("an epoch had finished");
    assert_eq!(record.epoch, epoch.floor() as usize, "the last epoch finished at {epoch}");
    let loss = record.get("loss").expect("a loss");
    harness.get_by_label(&format!("loss = {loss:.4}, so ELBO/N = {:.4} (epoch {})", -loss, record.epoch));
    assert!(harness.query_by_label_contains("(epoch 40)").is_none(), "the latest epoch's figures are not shown");
    // Scrubbed to the model before the first epoch's end, the panel says there are no figures yet, not "Train".
    let first = entries.first().expect("the first model").0;
    harness.state_mut().bnn_state_mut().scrubber.step = Some(first);
    harness.run_steps(3);
    if entries[0].1 < 1.0 {
        harness.get_by_label(explain::BEFORE_FIRST_EPOCH);
        assert_eq!(harness.query_all_by_label("Train to see the values.").count(), 0);
    }
    // Latest again: the last epoch's.
    harness.state_mut().bnn_state_mut().scrubber.step = None;
    harness.run_steps(3);
    harness.get_by_label_contains("(epoch 40)");
}
