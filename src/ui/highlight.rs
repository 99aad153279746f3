//! The link between a term of the Explain panel (issue 23) and the part of a figure it belongs to: while the pointer
//! is over a term (its formula or its value lines), the panel names it as a [`Highlight`], the lab's page keeps it in
//! its state for the frame, and the figure that draws that part draws it in the [`accent`] colour over a dark halo,
//! dims the rest, and says what it highlights to screen readers and tests ([`label_figure`]). Plain data, no lab
//! state: the panel (`explain.rs`) and the figures (`bnn_weights.rs`, `bnn_predictions.rs`, `bnn_band.rs`,
//! `vae_latent.rs`, `vae_images.rs`, `flow.rs`, and the loss curves through `lab_page.rs`) both read it.

use egui::Color32;

/// The part of a figure that the term under the pointer in the Explain panel belongs to; `None` when no term is.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Highlight {
    /// No term under the pointer.
    #[default]
    None,
    /// BNN: the prior p(w) = N(0, s²): its density (or its sd) on the weight histograms, and in the picked weight's
    /// plot.
    BnnPrior,
    /// BNN: the variational posterior q(w): the histogram of what it learned, and the picked weight's density.
    BnnPosterior,
    /// BNN: the Monte Carlo predictive over S samples: the predictive mean and its 95 % intervals (or band).
    BnnPredictive,
    /// BNN: the loss's two terms: the data term's and KL / N's curves per epoch.
    BnnLoss,
    /// VAE: the reparametrised draw of input `input` (its index among the encoded inputs) with this `eps`: its mean
    /// mu, its sigma as a 1-sd ellipse, and the drawn z = mu + sigma * eps.
    VaeDraw {
        /// The input, as the latent scatter counts them (training inputs first).
        input: usize,
        /// The eps of the draw on show, one per latent dimension.
        eps: Vec<f64>,
    },
    /// VAE: the KL term's prior N(0, I): its 1- and 2-sd circles on the latent plane.
    VaePrior,
    /// VAE: the reconstruction: the inputs decoded from the test inputs' means (images, or a table's rows).
    VaeReconstruction,
    /// VAE: the loss, reconstruction + beta KL: its curve per epoch.
    VaeLoss,
    /// Flow: the negative log-likelihood: the training and held-out curves per epoch.
    FlowLoss,
    /// Flow: the change of variables as a whole: the picked point's path through every stage.
    FlowPath,
    /// Flow: log p_z(z): the picked point's z, in the Gaussian's stage (stage 0).
    FlowLatent,
    /// Flow: layer k (from 1): its step of the picked point from stage k - 1 to stage k, and the stage plot while
    /// it shows stage k (the layer on show).
    FlowLayer(usize),
}

impl Highlight {
    /// True when a term is under the pointer.
    #[must_use]
    pub fn is_some(&self) -> bool {
        *self != Self::None
    }

    /// What the figure highlights, in words ("the prior's density p(w) on the weight histograms"); empty for
    /// [`Highlight::None`].
    #[must_use]
    pub fn part(&self) -> String {
        match self {
            Self::None => String::new(),
            Self::BnnPrior => "the prior p(w): its density on the weight histograms (Weight distributions)".into(),
            Self::BnnPosterior => {
                "the posterior q(w): the histogram of the weights and the picked weight's density (Weight \
                 distributions)"
                    .into()
            }
            Self::BnnPredictive => {
                "the predictive mean and its 95 % intervals over S samples (Predictions, Predictive band)".into()
            }
            Self::BnnLoss => "the data term's and KL / N's curves per epoch (Loss curves)".into(),
            Self::VaeLoss => "the training loss's curve per epoch (Loss curves)".into(),
            Self::FlowLoss => "the training and held-out NLL per epoch (Loss curves)".into(),
            Self::VaeDraw { input, .. } => format!(
                "input {}'s mean mu, its sigma as a 1-sd ellipse and the draw z = mu + sigma * eps (Latent space)",
                input + 1
            ),
            Self::VaePrior => "the prior N(0, I): its 1- and 2-sd circles on the latent plane (Latent space)".into(),
            Self::VaeReconstruction => "the reconstructions decoded from the test inputs (Reconstructions)".into(),
            Self::FlowPath => "the picked point's path through every stage (Step through the stages)".into(),
            Self::FlowLatent => "the picked point's z in the Gaussian's stage 0 (Step through the stages)".into(),
            Self::FlowLayer(k) => {
                format!(
                    "layer {k}: the picked point's step from stage {} to stage {k} (Step through the stages)",
                    k.saturating_sub(1)
                )
            }
        }
    }

    /// The hover text of the term: where it is shown.
    #[must_use]
    pub fn hover_text(&self) -> String {
        format!("Shown in the figure: {}", self.part())
    }
}

/// The colour of a highlighted part and of the term it belongs to: gold on a dark background, a deep amber on a
/// light one; unlike every figure's own colours.
#[must_use]
pub fn accent(visuals: &egui::Visuals) -> Color32 {
    if visuals.dark_mode { Color32::from_rgb(255, 215, 0) } else { Color32::from_rgb(190, 100, 0) }
}

/// The halo under a highlighted line or marker: near-black, half opaque, so the accent shows on any colour.
#[must_use]
pub fn halo() -> Color32 {
    Color32::from_rgba_unmultiplied(0, 0, 0, 170)
}

/// `colour` faded, for what a highlight leaves in the background.
#[must_use]
pub fn dim(colour: Color32) -> Color32 {
    colour.gamma_multiply(0.3)
}

/// Draws `points` highlighted in `plot`: an accent line `width` wide over a dark halo 4 points wider, neither of them
/// in the legend nor hovered (`id` tells them from the plot's other unnamed items).
pub fn accent_line(
    plot: &mut egui_plot::PlotUi<'_>,
    id: impl std::hash::Hash + Clone,
    points: Vec<[f64; 2]>,
    width: f32,
    colour: Color32,
) {
    halo_line(plot, id.clone(), points.clone(), width);
    let line = egui_plot::Line::new("", egui_plot::PlotPoints::from(points)).id(("accent", id));
    plot.line(line.color(colour).width(width).allow_hover(false).allow_band(false));
}

/// Draws a highlighted marker at `point` in `plot`: `shape` in the accent `colour`, `radius` points, over a dark
/// halo (not in the legend).
pub fn accent_marker(
    plot: &mut egui_plot::PlotUi<'_>,
    id: impl std::hash::Hash + Clone,
    point: [f64; 2],
    (shape, radius): (egui_plot::MarkerShape, f32),
    colour: Color32,
) {
    let marker = |part: &str| {
        egui_plot::Points::new("", vec![point]).id((part.to_owned(), id.clone())).shape(shape).allow_hover(false)
    };
    plot.points(marker("halo").radius(radius + 2.5).color(halo()));
    plot.points(marker("accent").radius(radius).color(colour));
}

/// A label beside a highlighted part of a plot, in the accent `colour` on the halo, placed by `anchor` at `at` (not
/// in the legend).
pub fn accent_text(
    plot: &mut egui_plot::PlotUi<'_>,
    id: impl std::hash::Hash,
    (at, anchor): ([f64; 2], egui::Align2),
    text: &str,
    colour: Color32,
) {
    let text =
        egui::RichText::new(text).text_style(egui::TextStyle::Body).strong().color(colour).background_color(halo());
    plot.text(
        egui_plot::Text::new("", egui_plot::PlotPoint::new(at[0], at[1]), text)
            .id(("text", id))
            .color(colour)
            .anchor(anchor)
            .allow_hover(false),
    );
}

/// Where a label at `at` reads inside `plot`: to the left of a point in the plot's right half, else to its right.
#[must_use]
pub fn inward(plot: &egui_plot::PlotUi<'_>, at: [f64; 2]) -> egui::Align2 {
    if at[0] > plot.plot_bounds().center().x { egui::Align2::RIGHT_BOTTOM } else { egui::Align2::LEFT_BOTTOM }
}

/// The dark halo, 4 points wider than `width`, to draw under a highlighted line of `points` (not in the legend).
pub fn halo_line(plot: &mut egui_plot::PlotUi<'_>, id: impl std::hash::Hash, points: Vec<[f64; 2]>, width: f32) {
    let line = egui_plot::Line::new("", egui_plot::PlotPoints::from(points)).id(("halo", id));
    plot.line(line.color(halo()).width(width + 4.0).allow_hover(false).allow_band(false));
}

/// What a figure's screen-reader label says while it highlights `what`.
#[must_use]
pub fn figure_label(what: &str) -> String {
    format!("Highlighted in the figure: {what}")
}

/// Names what the figure `response` highlights for screen readers (and tests): its accessibility label becomes
/// [`figure_label`] of `what`.
pub fn label_figure(response: &egui::Response, what: &str) {
    let label = figure_label(what);
    response.ctx.accesskit_node_builder(response.id, |node| node.set_label(label));
}

#[cfg(test)]
mod tests {
    use super::Highlight;

    #[test]
    fn every_highlight_names_its_part() {
        let all = [
            Highlight::BnnPrior,
            Highlight::BnnPosterior,
            Highlight::BnnPredictive,
            Highlight::BnnLoss,
            Highlight::VaeLoss,
            Highlight::FlowLoss,
            Highlight::VaeDraw { input: 4, eps: vec![0.1, -0.2] },
            Highlight::VaePrior,
            Highlight::VaeReconstruction,
            Highlight::FlowPath,
            Highlight::FlowLatent,
            Highlight::FlowLayer(2),
        ];
        for h in &all {
            assert!(h.is_some());
            assert_eq!(h.hover_text(), format!("Shown in the figure: {}", h.part()));
            // Each names the page its figure is on, in brackets at the end.
            assert!(h.part().ends_with(')') && h.part().len() > 30, "{h:?}: {}", h.part());
        }
        assert!(!Highlight::None.is_some());
        assert_eq!(Highlight::None.part(), "");
        assert!(all[6].part().starts_with("input 5's mean mu"), "{}", all[6].part());
        assert!(all[11].part().contains("from stage 1 to stage 2"), "{}", all[11].part());
    }
}
