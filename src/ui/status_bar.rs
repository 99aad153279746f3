//! The status bar: compute backend and adapter, the current lab's worker state and progress.

use crate::ui::app::BayesExplorerApp;

/// The progress bars' widths.
const EPOCH_BAR_WIDTH: f32 = 180.0;
const LOADING_BAR_WIDTH: f32 = 120.0;

/// Draws the status bar.
pub(crate) fn status_bar_ui(app: &BayesExplorerApp, ui: &mut egui::Ui) {
    let lab = app.lab(app.settings.tab);
    let state = lab.worker_state.map_or("no run", |s| s.label());
    let worker = format!("Worker ({}): {state}", lab.lab.tab_name());
    let frames =
        app.frame_summary().map(|(fps, slowest_ms)| format!("UI: {fps:.0} frames/s, slowest frame {slowest_ms:.1} ms"));
    // The compute line gives way first in a narrow window (elided, whole on hover), so that the worker's state and
    // the frame rate to its right stay readable: it gets the width the rest of the bar leaves.
    let text_width = |text: &str| {
        egui::WidgetText::from(text)
            .into_galley(ui, Some(egui::TextWrapMode::Extend), f32::INFINITY, egui::TextStyle::Body)
            .size()
            .x
    };
    let spacing = ui.spacing().item_spacing.x;
    let separator = 2.0 * spacing + 1.0;
    let mut rest = separator + text_width(&worker) + spacing;
    if lab.snapshot.is_some() {
        rest += EPOCH_BAR_WIDTH + spacing;
    }
    if let Some(frames) = &frames {
        rest += separator + text_width(frames) + spacing;
    }
    if lab.loading.is_some() {
        rest += separator + LOADING_BAR_WIDTH + spacing;
    }
    let compute_width = (ui.available_width() - rest).max(120.0);
    ui.horizontal(|ui| {
        ui.scope(|ui| {
            ui.set_max_width(compute_width);
            ui.add(egui::Label::new(app.compute_status()).truncate());
        });
        ui.separator();
        ui.label(worker);
        if let Some(s) = &lab.snapshot {
            ui.add(
                egui::ProgressBar::new(s.fraction())
                    .desired_width(EPOCH_BAR_WIDTH)
                    .text(format!("epoch {}/{}", s.epoch, s.total_epochs)),
            );
        }
        if let Some(frames) = frames {
            ui.separator();
            let mut hover = "Over the last two seconds: frames drawn, and the UI thread's time for the slowest (under 16.7 ms keeps 60 frames per second)".to_owned();
            if let Some(note) = &app.window_renderer {
                hover = format!("{hover}. {note}.");
            }
            ui.label(frames).on_hover_text(hover);
        }
        if let Some((job, _)) = &lab.loading {
            ui.separator();
            ui.add(egui::ProgressBar::new(job.fraction()).desired_width(LOADING_BAR_WIDTH).text("loading"));
        }
    });
}
