//! The VAE lab's settings panel: architecture (each with its settings), hidden units or channels, latent
//! dimension, likelihood, KL weight and its schedule, Adam's learning rate, batch size, epochs, seed, and the
//! manifold's cells per side.

use crate::models::vae::{BetaSchedule, Likelihood, VaeArch, VaeConfig, WEIGHT_AVERAGE, squared_error_for_a_table};
use crate::ui::settings_check::{
    self, HIDDEN_ACCEPTS, Verdict, average_label, choice_row, epochs_row, hidden_row, number_row, options_row,
    seed_row, verdict_row,
};
use crate::ui::vae_state::{NO_HIDDEN, VaeUiState, data_refusal};

/// The KL weight's verdict: refused out of range, a note at 0.
fn beta_verdict(beta: f64) -> Verdict {
    match settings_check::BETA.check(beta) {
        Verdict::Fine if beta == 0.0 => {
            Verdict::Note("0: no KL term, so nothing pulls the codes towards the prior (a plain autoencoder).".into())
        }
        verdict => verdict,
    }
}

/// The VAE's settings in the side panel; `running`: the settings of the run on show, if any; `rows`: the training
/// rows of the lab's data, if known.
pub(crate) fn vae_settings_ui(
    vae: &mut VaeUiState,
    running: Option<&VaeConfig>,
    rows: Option<usize>,
    ui: &mut egui::Ui,
) {
    let on_show = running.is_some();
    let mut hidden_edited = false;
    let c = &mut vae.config;
    let (data_inputs, by_data) = (vae.data_inputs, &mut vae.likelihood_by_data);
    egui::Grid::new("vae-settings").num_columns(2).show(ui, |ui| {
        let mut arch = c.arch;
        choice_row(ui, "Architecture", "vae-arch", arch.label(), on_show, |ui| {
            for a in [VaeArch::Mlp, VaeArch::Conv] {
                ui.selectable_value(&mut arch, a, a.label());
            }
        });
        if arch != c.arch {
            // Each architecture comes with its settings (the conv VAE with the course's); latent size and seed stay.
            let preset = if arch == VaeArch::Conv { VaeConfig::course_conv() } else { VaeConfig::default() };
            *c = VaeConfig { latent: c.latent, seed: c.seed, hidden: c.hidden.clone(), ..preset };
            // On a table the MLP's Bernoulli gives way to the squared error, as when the table arrived.
            *by_data = data_inputs.is_some_and(|(_, images)| squared_error_for_a_table(c, images));
        }
        if c.arch == VaeArch::Conv {
            verdict_row(ui, &data_refusal(c, data_inputs).map_or(Verdict::Fine, Verdict::Refused));
            let id = ui.label("Channels").id;
            ui.label("32, 64, 64, 64 (3 x 3)").labelled_by(id);
            ui.end_row();
        } else {
            let hover = format!("Units per hidden layer of the encoder (the decoder mirrors it): {HIDDEN_ACCEPTS}");
            let running_hidden = running.map(|r| r.hidden.as_slice());
            hidden_edited = hidden_row(ui, &mut vae.hidden_text, hover, running_hidden, |text| {
                settings_check::hidden(text, NO_HIDDEN)
            });
        }
        number_row(ui, "Latent dimension", &mut c.latent, 0.05, running.map(|r| r.latent), |v| {
            match settings_check::LATENT.check(v as f64) {
                Verdict::Fine if v == 1 => Verdict::Note(
                    "One dimension: the latent page shows z1 by class and a row of images decoded along it.".into(),
                ),
                verdict => verdict,
            }
        });
        let likelihood = match c.likelihood {
            Likelihood::Bernoulli => "Bernoulli (binarised pixels)",
            Likelihood::Gaussian => "1000 x squared error (course)",
        };
        let before = c.likelihood;
        choice_row(ui, "Likelihood", "vae-likelihood", likelihood, on_show, |ui| {
            ui.selectable_value(&mut c.likelihood, Likelihood::Bernoulli, "Bernoulli (binarised pixels)");
            ui.selectable_value(&mut c.likelihood, Likelihood::Gaussian, "1000 x squared error (course)");
        });
        if c.likelihood != before {
            *by_data = false;
        }
        if c.arch == VaeArch::Mlp {
            let verdict = match (data_refusal(c, data_inputs), data_inputs) {
                (Some(why), _) => Verdict::Refused(why),
                (None, Some((n_features, false))) if *by_data => Verdict::Note(format!(
                    "Set by the data: these {n_features} features are a table, not images, and the Bernoulli \
                     likelihood is for pixels."
                )),
                _ => Verdict::Fine,
            };
            verdict_row(ui, &verdict);
        }
        number_row(ui, "KL weight (beta)", &mut c.beta, 0.01, running.map(|r| r.beta), beta_verdict);
        let label = match c.beta_schedule {
            BetaSchedule::Constant => "constant".to_owned(),
            BetaSchedule::LinearWarmup { epochs } => {
                format!("linear warm-up over {}", crate::ui::count::count(epochs, "epoch"))
            }
            BetaSchedule::Cyclical { period } => {
                format!("cyclical, every {}", crate::ui::count::count(period, "epoch"))
            }
        };
        choice_row(ui, "Beta schedule", "vae-beta-schedule", label, on_show, |ui| {
            ui.selectable_value(&mut c.beta_schedule, BetaSchedule::Constant, "constant");
            ui.selectable_value(
                &mut c.beta_schedule,
                BetaSchedule::LinearWarmup { epochs: 10 },
                "linear warm-up over 10 epochs",
            );
            ui.selectable_value(
                &mut c.beta_schedule,
                BetaSchedule::Cyclical { period: 10 },
                "cyclical, every 10 epochs",
            );
        });
        let run = running.map(|r| (r.learning_rate, r.batch_size));
        settings_check::adam_rows(ui, &mut c.learning_rate, &mut c.batch_size, run, rows);
        epochs_row(ui, &mut c.epochs, running.map(|r| r.epochs));
        let running_average = running.is_some_and(|r| r.weight_average != c.weight_average);
        let measured = match c.arch {
            VaeArch::Mlp => {
                "From the same runs it lowered the MLP VAE's test negative ELBO by 2.7 nats on average over forty \
                 seeds, on every one of them."
            }
            VaeArch::Conv => {
                "From the same runs, beside the batch normalisation's running statistics, it lowered the \
                 convolutional VAE's test loss (1000 x squared error + KL) from 51.5 to 50.5 on average over five \
                 seeds, on every one of them."
            }
        };
        let averaged = format!(
            "The model the run shows, evaluates and saves is a moving average of its weights: after every step the \
             average keeps {WEIGHT_AVERAGE} of itself and takes {:.3} of the new weights (about the last thousand \
             steps, eight epochs at batch 32; fewer in the first steps). Over the last epochs the weights overfit a \
             little and move from epoch to epoch; their average sits nearer the middle. {measured} The steps \
             themselves, and the batches' loss curve, are the weights'. The default.",
            1.0 - WEIGHT_AVERAGE
        );
        options_row(
            ui,
            ("Weight average", "vae-weight-average"),
            &mut c.weight_average,
            running_average,
            average_label,
            &[
                (Some(WEIGHT_AVERAGE), &averaged),
                (None, "The model is the last step's weights, as in the course's Keras examples and plain PyTorch."),
            ],
        );
        seed_row(ui, &mut c.seed, running.map(|r| r.seed));
        // A table's latent page decodes the features at the cursor, not a manifold of images: no grid to size.
        let table = matches!(vae.data_inputs, Some((_, false)));
        if !table {
            number_row(ui, "Manifold cells per side", &mut vae.cells, 0.05, None, |v| {
                settings_check::CELLS.check(v as f64)
            })
            .on_hover_text("The decoded manifold's grid on the latent page; the run on show takes it at once");
        }
        // A view setting: a count the page cannot draw stays in the field, refused, and the page keeps the last one.
        if settings_check::CELLS.check(vae.cells as f64).refusal().is_none() {
            vae.cells_shown = vae.cells;
        }
    });
    vae.sync_hidden(hidden_edited);
    let note = match vae.config.arch {
        VaeArch::Mlp => {
            "Dense layers, the decoder mirroring the encoder; Adam 1e-3, batch 32, 50 epochs, the moving average \
             of the weights as the model. The Keras example's batch of 128 was made for MNIST's 60,000 images: on \
             the built-in 4,250 training digits it gives a quarter of the steps, and the test negative ELBO ends \
             2.5 nats higher on average over ten seeds. Choosing an architecture loads its settings."
        }
        VaeArch::Conv => {
            "The course's VAE: 3 x 3 convolutions (strides 1, 2, 2, 1) with batch normalisation and \
             LeakyReLU(0.3), transposed convolutions back; images only. Choosing it loaded the course's settings \
             (1000 x squared error, Adam 5e-4, batch 32, 30 epochs), with the moving average of the weights as the \
             model where the course keeps its last step's. About 14 times the MLP's work per image."
        }
    };
    ui.label(egui::RichText::new(note).weak());
}
