//! The VAE lab's image grids: the grey tiles every image view draws, the test images against their reconstructions
//! by the model on show, and samples decoded from the prior.

use egui::{Color32, ColorImage};

use crate::models::vae::VaeView;
use crate::train::vae_view::PRIOR_SAMPLES;
use crate::ui::highlight::{Highlight, accent, halo, label_figure};
use crate::ui::image_export::{capture_if_asked, record_button, save_image_button, saveable};
use crate::ui::vae_state::VaeUiState;

/// Grey tiles of `images` (`[n, side * side]`, values 0..1), `cols` per row, 1-pixel gaps.
pub(crate) fn tiles(images: &[f32], side: usize, cols: usize) -> ColorImage {
    let n = images.len() / (side * side).max(1);
    let rows = n.div_ceil(cols.max(1));
    let (w, h) = (cols * (side + 1) + 1, rows * (side + 1) + 1);
    let mut pixels = vec![Color32::from_gray(40); w * h];
    for (k, image) in images.chunks_exact(side * side).enumerate() {
        let (r, c) = (k / cols, k % cols);
        for (p, &v) in image.iter().enumerate() {
            let (y, x) = (p / side, p % side);
            let g = (v.clamp(0.0, 1.0) * 255.0) as u8;
            pixels[(1 + r * (side + 1) + y) * w + 1 + c * (side + 1) + x] = Color32::from_gray(g);
        }
    }
    ColorImage::new([w, h], pixels)
}

pub(crate) fn reconstructions_ui(vae: &mut VaeUiState, view: &VaeView, ui: &mut egui::Ui) {
    let history = &view.reconstructions;
    if history.is_empty() {
        return;
    }
    // The model on show's: the latest epoch's, or with a model scrubbed back (the time machine's slider, over every
    // view), the last epoch it had finished.
    let index = vae
        .scrubber
        .scrubbed_epoch()
        .map_or(history.len() - 1, |epoch| history.iter().rposition(|(e, _)| *e as f64 <= epoch + 1e-9).unwrap_or(0));
    let (epoch, recon) = &history[index];
    let Some(side) = vae.image_side else {
        crate::ui::vae_table::reconstructions_ui(vae, view, (*epoch, recon), ui);
        return;
    };
    ui.horizontal(|ui| {
        save_image_button(ui, "vae-reconstructions");
        record_button(ui, "vae-reconstructions", vae.recorder.busy());
    });
    let originals = vae.texture(ui.ctx(), "vae-originals", vae.run, || tiles(&view.originals, side, 4));
    let reconstructed = vae.texture(ui.ctx(), "vae-recon", *epoch as u64, || tiles(recon, side, 4));
    // Room for the accent frame (9 points outside the image) that the Explain panel's hover draws round the
    // reconstructions, so that beside the panel it is not cut at the edge.
    let side_points = fitted_side(ui.available_size() - egui::vec2(2.0 * FRAME_ROOM, 0.0), 2, 200.0, 520.0);
    let emphasised = vae.highlight == Highlight::VaeReconstruction;
    saveable(
        ui,
        "vae-reconstructions",
        || format!("vae-reconstructions-epoch-{epoch}.png"),
        |ui| {
            ui.columns(2, |cols| {
                cols[0].strong("16 test images");
                cols[0].image((originals.id(), egui::vec2(side_points, side_points)));
                let title = format!("decoder(encoder mean) after epoch {epoch}");
                let title = if emphasised {
                    egui::RichText::new(title).strong().color(accent(cols[1].visuals()))
                } else {
                    egui::RichText::new(title).strong()
                };
                cols[1].label(title);
                let shown = cols[1].image((reconstructed.id(), egui::vec2(side_points, side_points)));
                // The Explain panel's reconstruction term: the decoded images framed in the accent colour.
                if emphasised {
                    let painter = cols[1].painter();
                    let rect = shown.rect.expand(3.0);
                    painter.rect_stroke(rect, 2.0, egui::Stroke::new(6.0, halo()), egui::StrokeKind::Outside);
                    let stroke = egui::Stroke::new(3.0, accent(cols[1].visuals()));
                    painter.rect_stroke(rect, 2.0, stroke, egui::StrokeKind::Outside);
                    label_figure(&shown, "the reconstructions decoded from the 16 test images' means");
                }
            });
        },
    );
}

/// Points kept free beside each grid of reconstructions for the highlight's frame.
const FRAME_ROOM: f32 = 10.0;

/// Side of `across` square image grids side by side in `room`, each under a one-line title, between `min` and `max`
/// points (the page scrolls below `min`; past `max` a digit would only grow blocky).
fn fitted_side(room: egui::Vec2, across: usize, min: f32, max: f32) -> f32 {
    #[allow(clippy::cast_precision_loss)] // one or two grids
    let across = across.max(1) as f32;
    let gap = 16.0;
    let title = 24.0;
    ((room.x - gap * (across - 1.0)) / across).min(room.y - title).clamp(min, max)
}

pub(crate) fn prior_ui(vae: &mut VaeUiState, ui: &mut egui::Ui) {
    let Some(side) = vae.image_side else {
        crate::ui::vae_table::prior_ui(vae, ui);
        return;
    };
    let Some((step, images)) = vae.prior.clone() else {
        ui.spinner();
        return;
    };
    let cols = (PRIOR_SAMPLES as f64).sqrt() as usize;
    ui.label(format!(
        "{PRIOR_SAMPLES} draws z ~ N(0, I) decoded by the model at step {step} (the same draws for the whole run)."
    ));
    ui.horizontal(|ui| {
        save_image_button(ui, "vae-prior");
        record_button(ui, "vae-prior", vae.recorder.busy());
    });
    let t = vae.texture(ui.ctx(), "vae-prior", step, || tiles(&images, side, cols));
    let side_points = fitted_side(ui.available_size(), 1, 280.0, 640.0);
    let shown = ui.image((t.id(), egui::vec2(side_points, side_points)));
    capture_if_asked(ui, "vae-prior", shown.rect, || format!("vae-prior-samples-step-{step}.png"));
}

#[cfg(test)]
mod tests {
    use super::fitted_side;

    #[test]
    fn image_grids_fill_the_room_they_have() {
        let side =
            |w: f32, h: f32, across, min, max| (fitted_side(egui::vec2(w, h), across, min, max) * 10.0).round() / 10.0;
        // The reconstructions' two grids in a 1280 x 800 window: 890 x 660 points left, half the width each.
        assert!((side(890.0, 660.0, 2, 200.0, 520.0) - 437.0).abs() < 0.01);
        // A short window: the height decides.
        assert!((side(890.0, 330.0, 2, 200.0, 520.0) - 306.0).abs() < 0.01);
        // Never below the least side (the page scrolls), never past the largest.
        assert!((side(300.0, 200.0, 2, 200.0, 520.0) - 200.0).abs() < 0.01);
        assert!((side(2400.0, 1400.0, 1, 280.0, 640.0) - 640.0).abs() < 0.01);
    }
}
