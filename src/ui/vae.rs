//! The VAE lab's page: the views of its latent space, one at a time — the latent plane with the decoded point and
//! manifold (`vae_latent.rs`), reconstructions after every epoch and samples from the prior (`vae_images.rs`), and
//! the loss terms with the KL of each latent dimension. Its state is `vae_state.rs`, its settings panel
//! `vae_settings.rs`.

use crate::models::vae::Likelihood;
use crate::train::RunSnapshot;
use crate::ui::highlight::Highlight;
use crate::ui::image_export::take_record_asked;
use crate::ui::lab_page::{EpochCurves, epoch_series, figure_height, loss_page, shared_x, view_tabs, waiting};
use crate::ui::record::{FrameTarget, Subject};

pub use crate::ui::vae_state::{VaePage, VaeUiState};

/// A latent dimension whose KL is below this (nats per input) has collapsed to the prior.
pub const COLLAPSE_NATS: f64 = 0.05;

/// The training loss's curve.
const TRAIN_LOSS: &str = "train: reconstruction + beta KL (batches)";

/// The loss page's heading, with its hover, by likelihood: the Bernoulli's terms are nats; the course's `1000 x`
/// mean squared error is a Gaussian's negative log-likelihood without its constant, so its curves are nats up to one.
fn loss_heading(likelihood: Likelihood) -> (&'static str, &'static str) {
    match likelihood {
        Likelihood::Bernoulli => (
            "Nats per input",
            "The negative ELBO, -log p(x | z) + KL(q(z | x) || N(0, I)), averaged over the inputs: the Bernoulli \
             likelihood's cross-entropy summed over the pixels, plus the KL term.",
        ),
        Likelihood::Gaussian => (
            "Per input: 1000 x squared error + KL (nats up to a constant)",
            "The course's loss: 1000 x the mean squared error over an input's D values, plus the KL term. The first \
             term is -log p(x | z) for a Gaussian of variance D / 2000 on each value (0.39 for MNIST's 784 pixels) \
             less its constant, so the curves are negative ELBOs in nats shifted by that constant; they compare with \
             each other, not with the Bernoulli's.",
        ),
    }
}

/// What the loss page says of a run that keeps a weight average.
const AVERAGED_CURVES: &str = "Every curve but the batches' is of the moving average of the weights, the \
     model the run shows and saves; the batches' curve is each minibatch's loss at the weights its step took.";

/// The VAE page's central area.
/// `averaged`: the run on show keeps a moving average of its weights as its model (the ELBO curves are its).
pub(crate) fn vae_view_ui(
    vae: &mut VaeUiState,
    snapshot: Option<&RunSnapshot>,
    (running, averaged): (bool, bool),
    ui: &mut egui::Ui,
) {
    // A recording shows each of its frames in turn: a model of the run, in the figure recorded (on its page).
    if let Some(FrameTarget::Model(step)) = vae.recorder.frame_to_show(ui.ctx()) {
        vae.scrubber.step = Some(step);
        vae.scrubber.stop_replay();
        if let Some(page) = vae.recorder.figure().and_then(VaePage::of_figure) {
            vae.page = page;
        }
    }
    vae.poll(snapshot, running, ui.ctx());
    view_tabs(ui, vae.error.as_deref(), &mut vae.page, VaePage::ALL.map(|p| (p, p.label())));
    let Some(view) = vae.view.clone() else {
        waiting(ui, "Building the network…");
        return;
    };
    let ready = vae.scrubber.scrubbed().is_none_or(|e| vae.views_show(e.step));
    vae.scrubber.ui("every view", ready, ui);
    vae.recorder.capture_progress_ui(ui);
    let scrubbed = vae.scrubber.scrubbed_epoch();
    // Scrolls where the window is too short for the page (1024 x 700, a projector).
    egui::ScrollArea::vertical().id_salt("vae-page").auto_shrink([false, false]).show(ui, |ui| match vae.page {
        VaePage::Latent => crate::ui::vae_latent::latent_ui(vae, ui),
        VaePage::Reconstructions => crate::ui::vae_images::reconstructions_ui(vae, &view, ui),
        VaePage::Prior => crate::ui::vae_images::prior_ui(vae, ui),
        VaePage::Loss => {
            let emphasised = vae.highlight == Highlight::VaeLoss;
            let busy = vae.recorder.busy();
            // The epoch of the model kept nearest to an epoch: the one the overfitting note's "Show epoch" puts on show.
            let history = &vae.scrubber.history;
            let kept_near = |epoch| history.nearest_epoch(epoch);
            let n_train = Some(vae.n_train).filter(|n| *n > 0);
            let mut show = None;
            loss_page(ui, (crate::Lab::Vae, busy), snapshot, &mut vae.export, "vae-loss", |s, ui| {
                show =
                    vae_loss_ui(s, view.params.likelihood, (emphasised, scrubbed, averaged), (n_train, kept_near), ui);
            });
            if let Some(epoch) = show {
                vae.scrubber.show_nearest(epoch);
            }
        }
    });
    // "Record animation…" of any figure on the page: a frame once the figure shows the frame's model.
    if let Some(key) = take_record_asked(ui.ctx()) {
        vae.recorder.open_figure(&key);
    }
    let ready = match vae.recorder.current_target() {
        Some(FrameTarget::Model(step)) => vae.views_show(step),
        _ => true,
    };
    vae.recorder.after_page(ui.ctx(), ready);
    let models = vae.scrubber.history.epochs();
    let name = vae.recorder.figure().unwrap_or("vae").to_owned();
    let figure_size = vae.recorder.figure_size();
    let subject = Subject { name: &name, stages: None, models: &models, running, figure_size };
    vae.recorder.window_ui(ui.ctx(), &subject);
}

/// Loss terms per epoch and the KL of each latent dimension; `emphasised`: the Explain panel's loss is hovered (the
/// training loss's curve highlighted); `scrubbed`: the epoch the scrubber put on show, marked; `averaged`: the run
/// keeps a weight average, whose figures every curve but the batches' is (that one is at the weights each step
/// took), which a line under the heading says. The heading says the loss's units for the run's `likelihood`. Under
/// the loss curves, where the test negative ELBO has climbed from its lowest, the overfitting note, whose button
/// shows the model kept nearest to it (`kept_near`, for a run on `n_train` rows): the epoch to show comes back.
pub(crate) fn vae_loss_ui(
    snapshot: &RunSnapshot,
    likelihood: Likelihood,
    (emphasised, scrubbed, averaged): (bool, Option<f64>, bool),
    (n_train, kept_near): (Option<usize>, impl Fn(f64) -> Option<f64>),
    ui: &mut egui::Ui,
) -> Option<f64> {
    let series = |name: &str| epoch_series(snapshot, name);
    let curves = vec![
        (TRAIN_LOSS, series("loss")),
        ("train: negative ELBO", series("train_neg_elbo")),
        ("test: negative ELBO", series("test_neg_elbo")),
        ("test: reconstruction", series("test_recon")),
    ];
    let loss: &[&str] = if emphasised { &[TRAIN_LOSS] } else { &[] };
    // The two plots share the page below the heading where the window has the room, the loss plot the larger part;
    // room is left under them for the heading between them and a line on collapsed dimensions.
    let height = figure_height(ui, 1.0, 90.0, (360.0, 800.0));
    let mut loss_curves = EpochCurves::new("vae-loss", height * 5.0 / 9.0, curves).marked(scrubbed);
    let dims: Vec<String> = snapshot
        .history
        .last()
        .map(|r| r.metrics.iter().filter(|(k, _)| k.starts_with("kl_dim_")).map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    let curves: Vec<(String, Vec<[f64; 2]>)> = std::iter::once(("KL, all dimensions".to_owned(), series("test_kl")))
        .chain(dims.iter().map(|k| (k.replace("kl_dim_", "z"), series(k))))
        .collect();
    let mut kl_curves = EpochCurves::new("vae-kl-dims", height * 4.0 / 9.0, curves).marked(scrubbed);
    // The two plots over one x range: an epoch, and the epoch on show, at the same x on both.
    let x = shared_x([loss_curves.reach(), kl_curves.reach()]);
    loss_curves.heading(ui, |ui| {
        let (heading, hover) = loss_heading(likelihood);
        ui.strong(heading).on_hover_text(hover);
    });
    if averaged {
        ui.label(egui::RichText::new(AVERAGED_CURVES).weak());
    }
    loss_curves.show(ui, loss, x);
    let show = crate::ui::overfit::note_ui(ui, snapshot, &crate::ui::overfit::VAE, (n_train, scrubbed), kept_near);
    kl_curves.heading(ui, |ui| {
        ui.strong("KL per latent dimension (test inputs)");
    });
    kl_curves.show(ui, &[], x);
    if let Some(last) = snapshot.history.last() {
        let collapsed: Vec<String> = dims
            .iter()
            .filter(|k| last.get(k).is_some_and(|v| v < COLLAPSE_NATS))
            .map(|k| k.replace("kl_dim_", "z"))
            .collect();
        if !collapsed.is_empty() {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!("Collapsed to the prior (KL below {COLLAPSE_NATS} nats): {}. These dimensions carry no information about the input.", collapsed.join(", ")),
            );
        }
    }
    show
}
