//! The BNN lab's settings panel: posterior, head, hidden units, activation, prior, KL term, optimiser, learning rate,
//! batch size, epochs (by default the course's step budget for the data), the share of the training rows, seed and
//! Monte Carlo samples; the course's defaults.

use crate::compute::Activation;
use crate::compute::cpu::optim::OptimizerKind;
use crate::models::bnn::{BnnConfig, DEFAULT_STEP_BUDGET, Head, KlEstimate, Posterior, default_epochs};
use crate::ui::bnn_state::{BnnUiState, hidden_verdict};
use crate::ui::settings_check::{
    self, HIDDEN_ACCEPTS, Verdict, choice_row, epochs_row, hidden_row, next_run_only, number_row, number_row_with,
    options_row, seed_row, verdict_row,
};

/// The BNN's settings in the side panel; `running`: the settings of the run on show, if any (its values are shown
/// beside the fields that differ, and the fields say they apply to the next run).
pub(crate) fn bnn_settings_ui(bnn: &mut BnnUiState, running: Option<&BnnConfig>, ui: &mut egui::Ui) {
    let rows_used = bnn.rows_used();
    let on_show = running.is_some();
    let mut hidden_edited = false;
    let data_classes = bnn.data_classes;
    let c = &mut bnn.config;
    egui::Grid::new("bnn-settings").num_columns(2).show(ui, |ui| {
        options_row(
            ui,
            ("Posterior", "bnn-posterior"),
            &mut c.posterior,
            on_show,
            |p| p.label().to_owned(),
            &POSTERIOR_OPTIONS,
        );
        choice_row(ui, "Head (regression)", "bnn-head", c.head.label(), on_show, |ui| {
            for h in Head::ALL {
                ui.selectable_value(&mut c.head, h, h.label());
            }
        });
        if let Some(classes) = data_classes {
            verdict_row(
                ui,
                &Verdict::Note(format!(
                    "This data's label has {classes} classes: the network ends in a softmax over them, whatever \
                     the head (it is for a regression target)."
                )),
            );
        }
        let hover = format!("Units per hidden layer, e.g. 8, 8: {HIDDEN_ACCEPTS}. Empty: a linear model.");
        let running_hidden = running.map(|r| r.hidden.as_slice());
        hidden_edited = hidden_row(ui, &mut bnn.hidden_text, hover, running_hidden, |text| {
            hidden_verdict(text, bnn.n_features, c.posterior)
        });
        choice_row(ui, "Activation", "bnn-activation", c.activation.name(), on_show, |ui| {
            for a in Activation::ALL {
                ui.selectable_value(&mut c.activation, a, a.name());
            }
        });
        number_row(ui, "Prior sd", &mut c.prior_sd, 0.01, running.map(|r| r.prior_sd), |v| {
            settings_check::PRIOR_SD.check(v)
        });
        let kl = if c.kl == KlEstimate::ClosedForm { "closed form" } else { "one-sample Monte Carlo" };
        choice_row(ui, "KL term", "bnn-kl", kl, on_show, |ui| {
            ui.selectable_value(&mut c.kl, KlEstimate::ClosedForm, "closed form");
            ui.selectable_value(&mut c.kl, KlEstimate::MonteCarlo, "one-sample Monte Carlo");
        });
        choice_row(ui, "Optimiser", "bnn-optimizer", c.optimizer.name(), on_show, |ui| {
            ui.selectable_value(&mut c.optimizer, OptimizerKind::RmsProp, "rmsprop");
            ui.selectable_value(&mut c.optimizer, OptimizerKind::Adam, "adam");
        });
        number_row_with(
            ui,
            "Learning rate",
            &mut c.learning_rate,
            1e-4,
            (running.map(|r| r.learning_rate), true),
            settings_check::learning_rate,
        );
        number_row(ui, "Batch size", &mut c.batch_size, 1.0, running.map(|r| r.batch_size), |v| {
            settings_check::batch_size(v, rows_used)
        });
        epochs_row(ui, &mut c.epochs, running.map(|r| r.epochs)).on_hover_text(format!(
            "Default: about {DEFAULT_STEP_BUDGET} steps over the whole training split, whatever share a run uses (the course's 500 epochs on its white wine are 8,500)"
        ));
        let id = ui.label("Training rows used").id;
        let r = ui
            .add(
                egui::Slider::new(&mut c.train_fraction, 0.05..=1.0)
                    .custom_formatter(|v, _| format!("{:.0} %", v * 100.0)),
            )
            .labelled_by(id)
            .on_hover_text("A fixed, seeded subset of the training split (the course compares 30 % with 100 %)");
        next_run_only(r, on_show);
        ui.end_row();
        seed_row(ui, &mut c.seed, running.map(|r| r.seed));
        number_row(ui, "Monte Carlo samples", &mut bnn.n_samples, 1.0, None, |v| {
            settings_check::MC_SAMPLES.check(v as f64)
        })
        .on_hover_text("Draws of the weights behind each prediction on the page; the run on show takes a new count at once");
    });
    bnn.sync_hidden(hidden_edited);
    if settings_check::MC_SAMPLES.check(bnn.n_samples as f64) == Verdict::Fine {
        bnn.config.predictive_samples = bnn.n_samples;
    }
    let r = ui
        .checkbox(&mut bnn.config.bayesian_output, "Output layer has a posterior too")
        .on_hover_text("The course keeps the output layer deterministic (Dense); tick to make every layer variational");
    next_run_only(r, on_show);
    let one_feature = bnn.n_features == Some(1);
    ui.horizontal(|ui| {
        course_defaults_button(bnn, ui);
        if one_feature && ui.button("Settings for a 1-D curve").on_hover_text(CURVE_SETTINGS_HOVER).clicked() {
            apply(bnn, BnnConfig::curve(bnn.config.seed));
        }
    });
}

/// What the 1-D preset is and why.
/// The posterior menu's options in [`Posterior::ALL`]'s order, each with what it is and, for mean-field, what it
/// measured against the course's on the white wine (BENCHMARKS.md, "The BNN's spread ratio: what moves it").
const POSTERIOR_OPTIONS: [(Posterior, &str); 3] = [
    (
        Posterior::FullCovariance,
        "The course's: one Gaussian over all of a layer's weights and biases with a full covariance, starting at mean 0 and a wide scale (softplus(0) = 0.69)",
    ),
    (
        Posterior::MeanField,
        "Bayes by Backprop: an independent Gaussian per weight, starting near a point estimate (Glorot-uniform means, sd 0.05). On the white wine at the defaults, over twenty seeds: test RMSE 0.715 ± 0.022 against the full covariance's 0.745 ± 0.024, and the 30 % run 1.32 ± 0.05 times as wide as the full one against 1.33 ± 0.11. On the red wine the two are level (seeds 1-3: 0.648 against 0.653)",
    ),
    (Posterior::Deterministic, "Plain weights: the baseline network, whose predictions have no spread"),
];

const CURVE_SETTINGS_HOVER: &str = "For a regression on one feature: [8, 8] tanh, mean-field, a Normal head that learns the noise, Adam 1e-2. The course's sigmoid with squared error (whose fixed noise sd is 0.71) and RMSprop 1e-3 fit a curve slowly and loosely; these settings fit it, and mean-field is the posterior whose band the VI vs NUTS page puts beside the exact one";

fn course_defaults_button(bnn: &mut BnnUiState, ui: &mut egui::Ui) {
    if ui
        .button("Course defaults")
        .on_hover_text("The course's BNN: [8, 8] sigmoid, full covariance, squared error, RMSprop 1e-3, batch 256; epochs for the step budget")
        .clicked()
    {
        apply(bnn, BnnConfig { seed: bnn.config.seed, ..BnnConfig::default() });
    }
}

/// Takes `config` for the next run, with the default epochs for the data's step budget.
fn apply(bnn: &mut BnnUiState, config: BnnConfig) {
    bnn.config = config;
    if let Some(n) = bnn.n_train_rows {
        bnn.config.epochs = default_epochs(n, bnn.config.batch_size);
    }
    bnn.epochs_picked = Some(bnn.config.epochs);
    bnn.hidden_text = settings_check::hidden_text(&bnn.config.hidden);
    bnn.n_samples = bnn.config.predictive_samples;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_posterior_menu_offers_every_posterior_in_menu_order() {
        let offered: Vec<Posterior> = POSTERIOR_OPTIONS.iter().map(|(p, _)| *p).collect();
        assert_eq!(offered, Posterior::ALL);
    }
}
