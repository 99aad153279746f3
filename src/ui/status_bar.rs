//! The status bar: compute backend and adapter, the current lab's worker state and progress.

use crate::ui::app::BayesExplorerApp;

/// Draws the status bar.
pub(crate) fn status_bar_ui(app: &BayesExplorerApp, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        ui.label(app.compute_status());
        ui.separator();
        let lab = app.lab(app.settings.tab);
        let state = lab.worker_state.map_or("no run", |s| s.label());
        ui.label(format!("Worker ({}): {state}", lab.lab.tab_name()));
        if let Some(s) = &lab.snapshot {
            ui.add(
                egui::ProgressBar::new(s.fraction())
                    .desired_width(180.0)
                    .text(format!("epoch {}/{}", s.epoch, s.total_epochs)),
            );
        }
        if let Some((fps, slowest_ms)) = app.frame_summary() {
            ui.separator();
            let mut hover = "Over the last two seconds: frames drawn, and the UI thread's time for the slowest (under 16.7 ms keeps 60 frames per second)".to_owned();
            if let Some(note) = &app.window_renderer {
                hover = format!("{hover}. {note}.");
            }
            ui.label(format!("UI: {fps:.0} frames/s, slowest frame {slowest_ms:.1} ms")).on_hover_text(hover);
        }
        if let Some((job, _)) = &lab.loading {
            ui.separator();
            ui.add(egui::ProgressBar::new(job.fraction()).desired_width(120.0).text("loading"));
        }
    });
}
