//! The Explain panel of each lab (issue 23, lecture mode): the lecture's equations typeset (`equation.rs`), each
//! with the values of its terms from the run on show, as the trainer reports them and to the digits the window
//! prints them elsewhere. The BNN: the ELBO per training row with its data term, KL / N and N, the prior and the
//! variational posterior, the Monte Carlo predictive with S. The VAE: the reparametrised draw with the mean, sd
//! and a drawn eps of the input under the cursor (or the last one), the loss as reconstruction + beta KL, the KL in
//! closed form. The flow: the change of variables with the picked point's terms, layer by layer, and the layer on
//! show in the step-through. Without a run, the formulas and "Train to see the values". Reads the labs' plain-data
//! state and snapshots only.

use std::hash::{DefaultHasher, Hash, Hasher};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Lab;
use crate::data::prepare::OutputKind;
use crate::models::bnn::{BnnConfig, Head, Posterior, PredictiveRows};
use crate::models::vae::Likelihood;
use crate::train::{EpochRecord, RunSnapshot};
use crate::ui::bnn_state::BnnUiState;
use crate::ui::equation::equation_ui;
use crate::ui::flow::FlowUiState;
use crate::ui::highlight::{Highlight, accent};
use crate::ui::settings_check::number;
use crate::ui::vae_state::VaeUiState;

/// The panel's width until the user drags its edge, at most: the widest formula (the BNN's ELBO) at its size.
const PANEL_WIDTH: f32 = 400.0;

/// The panel's width at least, until the user drags its edge: in a small window (1024 x 700) the figures keep
/// more than half of the room (wider formulas are drawn smaller).
const PANEL_MIN_WIDTH: f32 = 300.0;

/// What the panel says where a value needs a run.
pub const NO_RUN: &str = "Train to see the values.";

/// Latent dimensions written out in a vector at most (the rest are counted).
const MAX_DIMS_SHOWN: usize = 6;

/// The Explain panel's state, per lab.
#[derive(Clone, Debug, Default)]
pub struct ExplainState {
    /// The panel is open.
    pub open: bool,
    /// VAE: the input last under the cursor (or picked), whose numbers stay once the cursor leaves the plane.
    pub(crate) last_input: Option<usize>,
    /// VAE: which draw of eps is on show ("Draw eps again" counts up).
    pub(crate) eps_draw: u64,
    /// The term under the pointer in the last frame, drawn in the accent colour (`highlight.rs`).
    pub(crate) hovered: Highlight,
}

/// The panel's terms while it is drawn: the term hovered in the last frame (drawn linked) and the one hovered in
/// this frame (what the figures highlight).
struct Links {
    /// Under the pointer in the last frame.
    shown: Highlight,
    /// Under the pointer in this frame, so far.
    hovered: Highlight,
}

impl Links {
    /// Takes the term of `response` when it is hovered, and says where it is shown on hover.
    fn link(&mut self, response: egui::Response, link: &Highlight) {
        if !link.is_some() {
            return;
        }
        if response.hovered() {
            self.hovered = link.clone();
        }
        response.on_hover_text(link.hover_text());
    }

    /// True when `link` is the term the figures highlight.
    fn is_shown(&self, link: &Highlight) -> bool {
        link.is_some() && self.shown == *link
    }
}

/// The lab whose page the panel explains, with its views' state.
pub(crate) enum LabViews<'a> {
    /// The BNN lab.
    Bnn(&'a BnnUiState),
    /// The VAE lab.
    Vae(&'a VaeUiState),
    /// The flow lab.
    Flow(&'a FlowUiState),
}

/// The "Explain" toggle, at the right of a line of its own above the lab's views.
pub(crate) fn explain_toggle_ui(explain: &mut ExplainState, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            ui.toggle_value(&mut explain.open, "Explain")
                .on_hover_text("The lecture's equations beside the figures, with this run's numbers");
        });
    });
}

/// The panel, docked at the right of `ui` (the lab's central area) while it is open; `snapshot` is the run on
/// show, if any. Returns the part of a figure that the term under the pointer belongs to, for the figures drawn
/// after it to highlight ([`Highlight::None`] when the panel is closed or no linked term is under the pointer).
pub(crate) fn explain_panel_ui(
    explain: &mut ExplainState,
    snapshot: Option<&RunSnapshot>,
    views: &LabViews<'_>,
    ui: &mut egui::Ui,
) -> Highlight {
    if !explain.open {
        explain.hovered = Highlight::None;
        return Highlight::None;
    }
    let mut links = Links { shown: std::mem::take(&mut explain.hovered), hovered: Highlight::None };
    let lab = match views {
        LabViews::Bnn(_) => Lab::Bnn,
        LabViews::Vae(_) => Lab::Vae,
        LabViews::Flow(_) => Lab::Flow,
    };
    let width = (0.42 * ui.available_width()).clamp(PANEL_MIN_WIDTH, PANEL_WIDTH);
    egui::Panel::right(("explain", lab)).default_size(width).resizable(true).show(ui, |ui| {
        egui::ScrollArea::vertical().id_salt(("explain-scroll", lab)).auto_shrink([false, false]).show(ui, |ui| {
            ui.heading("The lecture's equations");
            match views {
                LabViews::Bnn(bnn) => bnn_ui(bnn, snapshot, &mut links, ui),
                LabViews::Vae(vae) => vae_ui(explain, vae, snapshot, &mut links, ui),
                LabViews::Flow(flow) => flow_ui(flow, snapshot, &mut links, ui),
            }
        });
    });
    // The term hovered now is drawn linked in the next frame; ask for it at once.
    if links.hovered != links.shown {
        ui.ctx().request_repaint();
    }
    explain.hovered = links.hovered.clone();
    links.hovered
}

/// A section's title.
fn section(ui: &mut egui::Ui, title: &str) {
    ui.add_space(8.0);
    ui.strong(title);
}

/// The value lines under a formula, or [`NO_RUN`] when there are none.
fn values_ui(ui: &mut egui::Ui, lines: Option<Vec<String>>) {
    match lines {
        Some(lines) => {
            for line in lines {
                ui.label(line);
            }
        }
        None => {
            ui.label(egui::RichText::new(NO_RUN).weak());
        }
    }
}

/// A formula of term `link`: framed in the accent colour while the figures highlight its part.
fn linked_equation_ui(ui: &mut egui::Ui, latex: &str, links: &mut Links, link: &Highlight) {
    let response = equation_ui(ui, latex);
    if links.is_shown(link) {
        let stroke = egui::Stroke::new(2.0, accent(ui.visuals()));
        ui.painter().rect_stroke(response.rect.expand(2.0), 3.0, stroke, egui::StrokeKind::Outside);
    }
    links.link(response, link);
}

/// A line of text of term `link`: in the accent colour while the figures highlight its part.
fn linked_label(ui: &mut egui::Ui, text: impl Into<String>, links: &mut Links, link: &Highlight) {
    let text = egui::RichText::new(text.into());
    let text = if links.is_shown(link) { text.color(accent(ui.visuals())) } else { text };
    let response = ui.label(text);
    links.link(response, link);
}

/// [`values_ui`] of term `link`.
fn linked_values_ui(ui: &mut egui::Ui, lines: Option<Vec<String>>, links: &mut Links, link: &Highlight) {
    match lines {
        Some(lines) => {
            for line in lines {
                linked_label(ui, line, links, link);
            }
        }
        None => values_ui(ui, None),
    }
}

// --- BNN -------------------------------------------------------------------------------------------------------

/// The ELBO per training row.
pub const BNN_ELBO: &str = r"\frac{\mathrm{ELBO}}{N} = \frac{1}{N}\sum_{i=1}^{N}\mathbb{E}_{q(w)}\left[\log p(y_i \mid x_i, w)\right] - \frac{\mathrm{KL}\left(q(w)\,\|\,p(w)\right)}{N}";
/// The loss the BNN minimises: minus the ELBO per row, estimated on a minibatch with one weight sample.
pub const BNN_LOSS: &str = r"\text{loss} = \underbrace{-\frac{1}{N}\sum_{i=1}^{N}\log p(y_i \mid x_i, w)}_{\text{data term}} + \underbrace{\frac{\mathrm{KL}\left(q(w)\,\|\,p(w)\right)}{N}}_{\mathrm{KL}/N}";
/// The squared-error head's data term.
pub const BNN_MSE: &str = r"-\log p(y \mid x, w) = \left(y - f_w(x)\right)^2 + \text{const}";
/// The Normal head's data term.
pub const BNN_NORMAL: &str = r"-\log p(y \mid x, w) = \log\sigma_w(x) + \frac{\left(y - \mu_w(x)\right)^2}{2\,\sigma_w(x)^2} + \frac{1}{2}\log 2\pi";
/// A label's data term.
pub const BNN_CLASSES: &str = r"-\log p(y \mid x, w) = -\log\,\mathrm{softmax}\left(f_w(x)\right)_y";
/// The prior on every weight and bias.
pub const BNN_PRIOR: &str = r"p(w) = \mathcal{N}\left(w \mid 0,\, s^2\right)";
/// The mean-field posterior.
pub const BNN_MEAN_FIELD: &str =
    r"q(w_j) = \mathcal{N}\left(w_j \mid \mu_j,\, \sigma_j^2\right), \quad \sigma_j = \log\left(1 + e^{\rho_j}\right)";
/// The full-covariance posterior of a layer.
pub const BNN_FULL_COVARIANCE: &str =
    r"q(\mathbf{w}_\ell) = \mathcal{N}\left(\mathbf{w}_\ell \mid \boldsymbol{\mu}_\ell,\, L_\ell L_\ell^{\top}\right)";
/// The Monte Carlo predictive.
pub const BNN_PREDICTIVE: &str = r"p(y^* \mid x^*, \mathcal{D}) \approx \frac{1}{S}\sum_{s=1}^{S} p\left(y^* \mid x^*, w^{(s)}\right), \quad w^{(s)} \sim q(w)";
/// The predictive mean over S samples.
pub const BNN_MEAN: &str = r"\hat{\mu}(x^*) = \frac{1}{S}\sum_{s=1}^{S} f_{w^{(s)}}(x^*)";
/// The predictive spread over S samples.
pub const BNN_SPREAD: &str =
    r"\hat{\sigma}(x^*)^2 = \frac{1}{S}\sum_{s=1}^{S}\left(f_{w^{(s)}}(x^*) - \hat{\mu}(x^*)\right)^2";
/// The predictive class probabilities over S samples.
pub const BNN_CLASS_MEAN: &str =
    r"\bar{p}(c \mid x^*) = \frac{1}{S}\sum_{s=1}^{S}\mathrm{softmax}\left(f_{w^{(s)}}(x^*)\right)_c";

/// The record of the epoch the views show: with a model scrubbed back (`scrubbed`, its epoch), the last epoch that
/// had finished by then; else the latest. None before the first epoch's end.
#[must_use]
pub fn record_on_show(snapshot: &RunSnapshot, scrubbed: Option<f64>) -> Option<&EpochRecord> {
    match scrubbed {
        Some(epoch) => snapshot.history.iter().rev().find(|r| r.epoch as f64 <= epoch + 1e-9),
        None => snapshot.history.last(),
    }
}

/// What the loss's values say with a model scrubbed back to before the first epoch's end.
pub const BEFORE_FIRST_EPOCH: &str =
    "The model on show is from before the end of the first epoch: no epoch's figures yet.";

/// The value lines `lines` makes of the record on show ([`record_on_show`]); before the first epoch's end, with
/// epochs done since, a line that says so; None without a run.
fn values_on_show(
    snapshot: Option<&RunSnapshot>,
    scrubbed: Option<f64>,
    lines: impl Fn(&EpochRecord) -> Option<Vec<String>>,
) -> Option<Vec<String>> {
    let snapshot = snapshot?;
    match record_on_show(snapshot, scrubbed) {
        Some(record) => lines(record),
        None if !snapshot.history.is_empty() => Some(vec![BEFORE_FIRST_EPOCH.to_owned()]),
        None => None,
    }
}

/// The BNN's value lines of the loss: its terms as the trainer reports them (four decimals, as "Latest epoch"), at
/// the epoch of `last` (the one on show).
#[must_use]
pub fn bnn_loss_lines(last: &EpochRecord, rows_used: Option<usize>) -> Option<Vec<String>> {
    let (data, kl, loss) = (last.get("data_loss")?, last.get("kl_loss")?, last.get("loss")?);
    let n = rows_used.map_or_else(|| "?".to_owned(), |n| number(n as f64));
    Some(vec![
        format!("data term = {data:.4}, KL/N = {kl:.4}, N = {n}"),
        format!("loss = {loss:.4}, so ELBO/N = {:.4} (epoch {})", -loss, last.epoch),
    ])
}

fn bnn_ui(bnn: &BnnUiState, snapshot: Option<&RunSnapshot>, links: &mut Links, ui: &mut egui::Ui) {
    // The settings of the run on show, or of the next run before any.
    let config: &BnnConfig = bnn.run_config.as_ref().unwrap_or(&bnn.config);
    let classes = bnn.prepared.as_ref().is_some_and(|p| matches!(p.output, Some((_, OutputKind::Classes { .. }))));
    section(ui, "The objective: the evidence lower bound (ELBO)");
    equation_ui(ui, BNN_ELBO);
    ui.label("Training minimises minus the ELBO per training row, on a minibatch, with one weight sample w ~ q(w):");
    // Linked to the loss curves' two terms once there are values.
    let lines = values_on_show(snapshot, bnn.scrubber.scrubbed_epoch(), |r| bnn_loss_lines(r, bnn.run_rows_used()));
    let loss = if lines.is_some() { Highlight::BnnLoss } else { Highlight::None };
    linked_equation_ui(ui, BNN_LOSS, links, &loss);
    linked_values_ui(ui, lines, links, &loss);
    let (head, head_note) = match (classes, config.head) {
        (true, _) => (BNN_CLASSES, "Labels: the cross-entropy of the softmax."),
        (false, Head::Mse) => (BNN_MSE, "The squared-error head: a Gaussian of variance 1/2, up to a constant."),
        (false, Head::Normal) => (BNN_NORMAL, "The Normal head: it learns the noise's sd as well as the mean."),
    };
    ui.label(head_note);
    equation_ui(ui, head);

    section(ui, "Prior and posterior of each weight");
    // Linked to the weight histograms once a run has them.
    let (prior, posterior) = if snapshot.is_some() && bnn.view.is_some() {
        (Highlight::BnnPrior, Highlight::BnnPosterior)
    } else {
        (Highlight::None, Highlight::None)
    };
    linked_equation_ui(ui, BNN_PRIOR, links, &prior);
    let s = format!("s = {} (the prior's sd, on every weight and bias)", number(config.prior_sd));
    linked_label(ui, s, links, &prior);
    match config.posterior {
        Posterior::MeanField => {
            ui.label("Mean field: one independent Gaussian per weight, its sd a softplus of rho.");
            linked_equation_ui(ui, BNN_MEAN_FIELD, links, &posterior);
        }
        Posterior::FullCovariance => {
            ui.label("Full covariance: one Gaussian over each layer's weights, L lower-triangular.");
            linked_equation_ui(ui, BNN_FULL_COVARIANCE, links, &posterior);
        }
        Posterior::Deterministic => {
            ui.label("Deterministic: plain weights, no posterior and no KL term.");
        }
    }

    section(ui, "The predictive: an average over S weight samples");
    let predictive = bnn.predictive.as_ref().filter(|_| snapshot.is_some());
    // Linked to the predictive mean and intervals of a regression (a classifier's predictions are a table).
    let link = if predictive.is_some() && !classes { Highlight::BnnPredictive } else { Highlight::None };
    linked_equation_ui(ui, BNN_PREDICTIVE, links, &link);
    if classes {
        equation_ui(ui, BNN_CLASS_MEAN);
    } else {
        linked_equation_ui(ui, BNN_MEAN, links, &link);
        linked_equation_ui(ui, BNN_SPREAD, links, &link);
    }
    linked_values_ui(
        ui,
        predictive.map(|pv| {
            let p = &pv.predictive;
            let mut lines = vec![format!("S = {} forward passes (the Predictions page's)", p.n_samples)];
            match &p.rows {
                // The actual value as the probe and the predictive table write it ("actual quality: 5").
                PredictiveRows::Regression(rows) => {
                    if let Some(r) = rows.first() {
                        let actual = bnn.prepared.as_deref().map_or_else(
                            || format!("actual {:.2}", r.actual),
                            |p| crate::ui::bnn_probe::actual_text(p, r.actual),
                        );
                        lines.push(format!("test row 1: mean = {:.2}, sd = {:.3} ({actual})", r.mean, r.epistemic_sd));
                    }
                }
                PredictiveRows::Classes(rows) => {
                    if let Some(r) = rows.first() {
                        let top = r.probabilities.get(r.predicted).copied().unwrap_or(f32::NAN);
                        let class = |k: usize| match bnn.prepared.as_deref().and_then(|p| p.output.as_ref()) {
                            Some((_, kind @ OutputKind::Classes { .. })) => kind.class_name(k),
                            _ => format!("class {}", k + 1),
                        };
                        #[allow(clippy::cast_precision_loss)] // a class index, small
                        let actual = bnn.prepared.as_deref().map_or_else(
                            || format!("actual {}", class(r.actual)),
                            |p| crate::ui::bnn_probe::actual_text(p, r.actual as f32),
                        );
                        lines.push(format!(
                            "test row 1: {} with mean probability {top:.3} ({actual})",
                            class(r.predicted)
                        ));
                    }
                }
            }
            lines
        }),
        links,
        &link,
    );
}

// --- VAE -------------------------------------------------------------------------------------------------------

/// The reparametrised draw.
pub const VAE_REPARAM: &str =
    r"z = \mu_\phi(x) + \sigma_\phi(x) \odot \varepsilon, \qquad \varepsilon \sim \mathcal{N}(0, I)";
/// The loss per input.
pub const VAE_LOSS: &str = r"\text{loss} = \underbrace{-\log p_\theta(x \mid z)}_{\text{reconstruction}} + \beta\, \underbrace{\mathrm{KL}\left(q_\phi(z \mid x)\,\|\,\mathcal{N}(0, I)\right)}_{\mathrm{KL}}";
/// The Bernoulli likelihood's reconstruction term.
pub const VAE_BERNOULLI: &str =
    r"-\log p_\theta(x \mid z) = -\sum_{i=1}^{D}\left[x_i \log \hat{x}_i + (1 - x_i)\log(1 - \hat{x}_i)\right]";
/// The course's squared-error reconstruction term.
pub const VAE_GAUSSIAN: &str =
    r"\text{reconstruction} = 1000 \cdot \frac{1}{D}\sum_{i=1}^{D}\left(x_i - \hat{x}_i\right)^2";
/// The KL of a diagonal Gaussian from the standard normal, in closed form.
pub const VAE_KL: &str =
    r"\mathrm{KL} = \frac{1}{2}\sum_{j=1}^{J}\left(\mu_j^2 + \sigma_j^2 - \log\sigma_j^2 - 1\right)";

/// A vector of numbers as "(a, b, c)", with three decimals, the first [`MAX_DIMS_SHOWN`] of them.
fn vector(values: impl ExactSizeIterator<Item = f64>) -> String {
    let n = values.len();
    let mut parts: Vec<String> = values.take(MAX_DIMS_SHOWN).map(|v| format!("{v:.3}")).collect();
    if n > MAX_DIMS_SHOWN {
        parts.push(format!("... {} more", n - MAX_DIMS_SHOWN));
    }
    format!("({})", parts.join(", "))
}

/// The eps of draw `draw` for `input`: `latent` standard normals, the same for the same input and draw.
#[must_use]
pub fn vae_eps(input: usize, draw: u64, latent: usize) -> Vec<f64> {
    let mut hasher = DefaultHasher::new();
    (input, draw).hash(&mut hasher);
    let mut rng = ChaCha8Rng::seed_from_u64(hasher.finish());
    (0..latent).map(|_| rng.sample::<f64, _>(rand_distr::StandardNormal)).collect()
}

/// The value lines of the reparametrised draw for an input whose encoder gives `mu` and `logvar`, with `eps`:
/// mu, sigma, eps and z, each with three decimals.
#[must_use]
pub fn vae_draw_lines(mu: &[f32], logvar: &[f32], eps: &[f64]) -> Vec<String> {
    let sigma: Vec<f64> = logvar.iter().map(|&l| (0.5 * f64::from(l)).exp()).collect();
    let z: Vec<f64> = mu.iter().zip(&sigma).zip(eps).map(|((&m, s), e)| f64::from(m) + s * e).collect();
    vec![
        format!("mu = {}", vector(mu.iter().map(|&m| f64::from(m)))),
        format!("sigma = {}", vector(sigma.iter().copied())),
        format!("eps = {}", vector(eps.iter().copied())),
        format!("z = mu + sigma * eps = {}", vector(z.iter().copied())),
    ]
}

/// The closed-form KL of one input's q(z|x) from N(0, I), in nats.
#[must_use]
pub fn vae_input_kl(mu: &[f32], logvar: &[f32]) -> f64 {
    mu.iter()
        .zip(logvar)
        .map(|(&m, &l)| {
            let (m, l) = (f64::from(m), f64::from(l));
            0.5 * (m * m + l.exp() - l - 1.0)
        })
        .sum()
}

/// The VAE's value lines of the loss: its terms as the trainer reports them (four decimals, as "Latest epoch"), at
/// the epoch of `last` (the one on show).
#[must_use]
pub fn vae_loss_lines(last: &EpochRecord) -> Option<Vec<String>> {
    let (recon, kl, loss) = (last.get("recon_loss")?, last.get("kl_loss")?, last.get("loss")?);
    let beta = last.get("beta").unwrap_or(f64::NAN);
    Some(vec![
        format!("reconstruction = {recon:.4}, beta = {beta:.4}, KL = {kl:.4}"),
        format!("loss = {loss:.4} (epoch {}, the mean over its minibatches)", last.epoch),
    ])
}

fn vae_ui(
    explain: &mut ExplainState,
    vae: &VaeUiState,
    snapshot: Option<&RunSnapshot>,
    links: &mut Links,
    ui: &mut egui::Ui,
) {
    let running = snapshot.is_some();
    // The input under the cursor, else the last one that was (or was picked).
    if let Some(i) = vae.input_under_cursor.or_else(|| vae.picked.last().copied()).filter(|_| running) {
        explain.last_input = Some(i);
    }
    if !running {
        explain.last_input = None;
    }
    section(ui, "The encoder's draw: the reparametrisation trick");
    let moments = explain.last_input.and_then(|i| vae.latent_moments(i));
    // Linked to the input's mu, sigma and z on the latent plane once there is an input.
    let draw = match (explain.last_input, moments) {
        (Some(input), Some((mu, _))) => Highlight::VaeDraw { input, eps: vae_eps(input, explain.eps_draw, mu.len()) },
        _ => Highlight::None,
    };
    linked_equation_ui(ui, VAE_REPARAM, links, &draw);
    match (explain.last_input, moments) {
        (Some(i), Some((mu, logvar))) => {
            let which = if i < vae.n_train {
                format!("Training input {}", i + 1)
            } else {
                format!("Test input {}", i - vae.n_train + 1)
            };
            let when = if vae.input_under_cursor == Some(i) { "nearest the cursor" } else { "the last one shown" };
            ui.label(format!("{which}, {when}:"));
            let eps = vae_eps(i, explain.eps_draw, mu.len());
            linked_values_ui(ui, Some(vae_draw_lines(mu, logvar, &eps)), links, &draw);
            if ui.button("Draw eps again").on_hover_text("Another eps ~ N(0, I) for this input").clicked() {
                explain.eps_draw += 1;
            }
        }
        _ if running => {
            ui.label(
                egui::RichText::new("Move the cursor over the latent space to see an input's mu, sigma and a draw.")
                    .weak(),
            );
        }
        _ => values_ui(ui, None),
    }

    section(ui, "The loss: reconstruction + beta KL");
    // Linked to the training loss's curve once there are values.
    let on_show = snapshot.and_then(|s| record_on_show(s, vae.scrubber.scrubbed_epoch()));
    let lines = values_on_show(snapshot, vae.scrubber.scrubbed_epoch(), vae_loss_lines);
    let loss = if lines.is_some() { Highlight::VaeLoss } else { Highlight::None };
    linked_equation_ui(ui, VAE_LOSS, links, &loss);
    linked_values_ui(ui, lines, links, &loss);
    let likelihood = vae.view.as_ref().map_or(vae.config.likelihood, |v| v.params.likelihood);
    // Linked to the reconstructions: the images, or a table's errors per feature.
    let reconstruction = if running { Highlight::VaeReconstruction } else { Highlight::None };
    match likelihood {
        Likelihood::Bernoulli => {
            ui.label("Bernoulli pixels: the binary cross-entropy, summed over the D pixels.");
            linked_equation_ui(ui, VAE_BERNOULLI, links, &reconstruction);
        }
        Likelihood::Gaussian => {
            ui.label("The course's reconstruction: 1000 x the mean squared error.");
            linked_equation_ui(ui, VAE_GAUSSIAN, links, &reconstruction);
        }
    }

    section(ui, "The KL term in closed form, per latent dimension j");
    // Linked to the prior's circles on the latent plane.
    let prior = if running { Highlight::VaePrior } else { Highlight::None };
    linked_equation_ui(ui, VAE_KL, links, &prior);
    if let Some((mu, logvar)) = moments {
        linked_label(ui, format!("For this input: KL = {:.4} nats", vae_input_kl(mu, logvar)), links, &prior);
    }
    let per_dim: Option<Vec<String>> = on_show.map(|last| {
        last.metrics.iter().filter_map(|(k, v)| k.strip_prefix("kl_dim_").map(|j| format!("z{j} = {v:.4}"))).collect()
    });
    match per_dim.filter(|d| !d.is_empty()) {
        Some(dims) => {
            linked_label(ui, format!("Test inputs, nats per dimension: {}", dims.join(", ")), links, &prior);
        }
        None if running => {}
        None => values_ui(ui, None),
    }
}

// --- Flow ------------------------------------------------------------------------------------------------------

/// The change of variables.
pub const FLOW_DENSITY: &str = r"p_x(x) = p_z\left(f(x)\right)\left|\det\frac{\partial f(x)}{\partial x}\right|";
/// Its logarithm, layer by layer.
pub const FLOW_LOG_DENSITY: &str =
    r"\log p_x(x) = \log p_z(z) + \sum_{k=1}^{K}\log\left|\det J_k\right|, \qquad z = f(x)";
/// The loss the flow minimises.
pub const FLOW_NLL: &str = r"\text{loss} = -\frac{1}{n}\sum_{i=1}^{n}\log p_x(x_i)";
/// A RealNVP coupling layer.
pub const FLOW_COUPLING: &str =
    r"y_{1:d} = x_{1:d}, \qquad y_{d+1:D} = x_{d+1:D} \odot \exp\left(s(x_{1:d})\right) + t(x_{1:d})";
/// A coupling layer's log-determinant.
pub const FLOW_COUPLING_LOG_DET: &str =
    r"\log\left|\det\frac{\partial y}{\partial x}\right| = \sum_{j=d+1}^{D} s_j(x_{1:d})";
/// A masked autoregressive layer.
pub const FLOW_MAF: &str = r"y_i = x_i \exp\left(\alpha_i(y_{<i})\right) + \mu_i(y_{<i}), \qquad \log\left|\det\frac{\partial y}{\partial x}\right| = \sum_{i=1}^{D}\alpha_i(y_{<i})";
/// The affine layer.
pub const FLOW_AFFINE: &str =
    r"y = x \odot \exp(s) + t, \qquad \log\left|\det\frac{\partial y}{\partial x}\right| = \sum_{j=1}^{D} s_j";

/// Layer `k`'s coupling in two dimensions, in the step-through's notation (h^(k) the points at stage k): layers 1,
/// 3, ... keep the second coordinate and move the first (the Keras example's masks), layers 2, 4, ... the reverse.
#[must_use]
pub fn flow_coupling_at(k: usize) -> String {
    let (moved, kept) = if k % 2 == 1 { (1, 2) } else { (2, 1) };
    let p = k.saturating_sub(1);
    format!(
        r"h^{{({k})}}_{moved} = h^{{({p})}}_{moved}\, e^{{s_{k}(h^{{({p})}}_{kept})}} + t_{k}\left(h^{{({p})}}_{kept}\right), \quad h^{{({k})}}_{kept} = h^{{({p})}}_{kept}"
    )
}

/// The flow's value lines of the loss, as the trainer reports them (four decimals, as "Latest epoch"), at the epoch
/// of `last` (the one on show).
#[must_use]
pub fn flow_loss_lines(last: &EpochRecord) -> Option<Vec<String>> {
    let train = last.get("train_nll")?;
    let heldout = last.get("heldout_nll").map_or_else(String::new, |h| format!(", held-out = {h:.4}"));
    Some(vec![format!("training = {train:.4}{heldout} nats per point (epoch {})", last.epoch)])
}

fn flow_ui(flow: &FlowUiState, snapshot: Option<&RunSnapshot>, links: &mut Links, ui: &mut egui::Ui) {
    let running = snapshot.is_some();
    section(ui, "The change of variables");
    ui.label("f takes a data point x to the Gaussian's z through the layers; J_k is layer k's Jacobian on the way.");
    let path = flow.probe_path().filter(|_| running);
    // Linked to the picked point's path in the step-through, once there is one.
    let whole = if path.is_some() { Highlight::FlowPath } else { Highlight::None };
    linked_equation_ui(ui, FLOW_DENSITY, links, &whole);
    linked_equation_ui(ui, FLOW_LOG_DENSITY, links, &whole);
    match path {
        Some(path) => {
            let (Some(x), Some(z)) = (path.positions.last(), path.positions.first()) else { return };
            let picked = format!("Picked point: x = ({:.3}, {:.3}), z = ({:.3}, {:.3})", x[0], x[1], z[0], z[1]);
            linked_label(ui, picked, links, &whole);
            linked_label(ui, format!("log p_z(z) = {:+.4}", path.log_pz), links, &Highlight::FlowLatent);
            for (k, term) in path.layer_terms.iter().enumerate() {
                let line = format!("layer {}: log|det J_{}| = {term:+.4}", k + 1, k + 1);
                linked_label(ui, line, links, &Highlight::FlowLayer(k + 1));
            }
            let px = format!("log p_x(x) = {:+.4}, p_x(x) = {:.5}", path.log_px, path.log_px.exp());
            linked_label(ui, px, links, &whole);
        }
        None if running => {
            ui.label(
                egui::RichText::new("Click a point in the step-through's plot to follow it through the layers.").weak(),
            );
        }
        None => values_ui(ui, None),
    }
    section(ui, "Training: the negative log-likelihood");
    // Linked to the loss curves above the step-through once there are values.
    let lines = values_on_show(snapshot, flow.scrubbed_epoch(), flow_loss_lines);
    let loss = if lines.is_some() { Highlight::FlowLoss } else { Highlight::None };
    linked_equation_ui(ui, FLOW_NLL, links, &loss);
    linked_values_ui(ui, lines, links, &loss);
    ui.label(
        egui::RichText::new(
            "The sum runs over the training points. The same sum over the held-out points, which the flow never \
             trains on, says how well it has learned the density rather than the points: where it climbs while the \
             training figure falls, the flow overfits, and a note under the loss curves says so.",
        )
        .weak(),
    );

    let kinds = flow.layer_kinds();
    let kind = kinds.first().copied().unwrap_or(match flow.config.kind {
        crate::models::flow::FlowKind::RealNvp => "coupling",
        crate::models::flow::FlowKind::Maf => "MAF",
        crate::models::flow::FlowKind::Affine => "affine",
    });
    let k_max = kinds.len();
    // The layer that made the stage on show (layer 1 at the Gaussian's stage 0).
    let k = flow.stage().clamp(1, k_max.max(1));
    // Linked to layer k in the step-through once the stages are in.
    let layer = if running && k_max > 0 { Highlight::FlowLayer(k) } else { Highlight::None };
    match kind {
        "coupling" => {
            section(ui, "A coupling layer (RealNVP)");
            linked_equation_ui(ui, FLOW_COUPLING, links, &layer);
            linked_equation_ui(ui, FLOW_COUPLING_LOG_DET, links, &layer);
            if k_max > 0 {
                ui.label(format!(
                    "Layer {k} of {k_max}, on show in the step-through (h^(k): the points at stage k, d = 1 of D = 2):"
                ));
                linked_equation_ui(ui, &flow_coupling_at(k), links, &layer);
            }
        }
        "MAF" => {
            section(ui, "A masked autoregressive layer (MAF), then a swap of the coordinates");
            linked_equation_ui(ui, FLOW_MAF, links, &layer);
        }
        _ => {
            section(ui, "The affine layer: one shift and scale per coordinate");
            linked_equation_ui(ui, FLOW_AFFINE, links, &layer);
        }
    }
    if let Some(term) = path.and_then(|p| p.layer_terms.get(k - 1)) {
        // J_k is the layer's Jacobian from x towards z, the inverse of the formula above (from z towards x).
        let forward = if kind == "MAF" { "the sum of alpha" } else { "the sum of s" };
        let line =
            format!("At the picked point, layer {k}: log|det J_{k}| = {term:+.4}, so {forward} is {:+.4}", -term);
        linked_label(ui, line, links, &layer);
    }
}

/// Every formula the panel of `lab` can show (for the tests that typeset them all).
#[must_use]
pub fn formulas(lab: Lab) -> Vec<String> {
    let fixed: &[&str] = match lab {
        Lab::Bnn => &[
            BNN_ELBO,
            BNN_LOSS,
            BNN_MSE,
            BNN_NORMAL,
            BNN_CLASSES,
            BNN_PRIOR,
            BNN_MEAN_FIELD,
            BNN_FULL_COVARIANCE,
            BNN_PREDICTIVE,
            BNN_MEAN,
            BNN_SPREAD,
            BNN_CLASS_MEAN,
        ],
        Lab::Vae => &[VAE_REPARAM, VAE_LOSS, VAE_BERNOULLI, VAE_GAUSSIAN, VAE_KL],
        Lab::Flow => {
            &[FLOW_DENSITY, FLOW_LOG_DENSITY, FLOW_NLL, FLOW_COUPLING, FLOW_COUPLING_LOG_DET, FLOW_MAF, FLOW_AFFINE]
        }
    };
    let mut all: Vec<String> = fixed.iter().map(|&f| f.to_owned()).collect();
    if lab == Lab::Flow {
        all.extend((1..=4).map(flow_coupling_at));
    }
    all
}

#[cfg(test)]
mod tests {
    use super::{flow_coupling_at, formulas, vae_draw_lines, vae_eps, vae_input_kl};
    use crate::Lab;
    use crate::ui::equation::typeset;

    /// Every formula of every lab's panel typesets, to an SVG of glyph outlines (paths, not text), with room to
    /// show.
    #[test]
    fn every_panel_formula_typesets_to_paths() {
        for lab in Lab::ALL {
            let all = formulas(lab);
            assert!(all.len() >= 5, "{lab:?} has its formulas");
            for latex in all {
                let t = typeset(&latex, egui::Color32::WHITE, 15.0)
                    .unwrap_or_else(|e| panic!("{lab:?}: {latex:?} does not typeset: {e}"));
                let svg = std::str::from_utf8(&t.svg).expect("UTF-8");
                assert!(svg.len() > 200, "{latex:?}: an empty SVG");
                assert!(svg.matches("<path").count() >= 3, "{latex:?}: glyphs as paths");
                assert!(!svg.contains("<text"), "{latex:?}: no text elements");
                assert!(t.size.x > 20.0 && t.size.y > 10.0, "{latex:?}: {:?}", t.size);
            }
        }
    }

    #[test]
    fn the_coupling_of_odd_layers_moves_the_first_coordinate() {
        assert!(flow_coupling_at(1).starts_with(r"h^{(1)}_1 = h^{(0)}_1"), "{}", flow_coupling_at(1));
        assert!(flow_coupling_at(2).starts_with(r"h^{(2)}_2 = h^{(1)}_2"), "{}", flow_coupling_at(2));
    }

    #[test]
    fn the_draw_is_mu_plus_sigma_times_eps_and_the_kl_is_closed_form() {
        let lines = vae_draw_lines(&[1.0, -2.0], &[0.0, 2.0_f32.ln() * 2.0], &[0.5, -1.0]);
        assert_eq!(lines[0], "mu = (1.000, -2.000)");
        assert_eq!(lines[1], "sigma = (1.000, 2.000)");
        assert_eq!(lines[2], "eps = (0.500, -1.000)");
        assert_eq!(lines[3], "z = mu + sigma * eps = (1.500, -4.000)");
        // 1/2 (mu^2 + sigma^2 - log sigma^2 - 1): 1/2 (1 + 1 - 0 - 1) + 1/2 (4 + 4 - ln 4 - 1).
        let kl = vae_input_kl(&[1.0, -2.0], &[0.0, 4.0_f32.ln()]);
        assert!((kl - (0.5 + 0.5 * (7.0 - 4.0_f64.ln()))).abs() < 1e-6, "{kl}");
        assert_eq!(vae_eps(3, 0, 2), vae_eps(3, 0, 2), "the same draw for the same input");
        assert_ne!(vae_eps(3, 0, 2), vae_eps(3, 1, 2), "another draw when asked");
    }
}
