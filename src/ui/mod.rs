//! The window: three labs as tabs, the dataset loader and preview, the status bar. Uses `train` (workers
//! and snapshots) and `data`; never holds a tensor.

mod app;
pub mod bnn;
pub mod bnn_weights;
mod data_view;
pub mod export;
mod flow;
mod image_export;
mod lab;
mod preview;
mod run_file;
mod session;
mod status_bar;
pub mod vae;

pub use app::{BayesExplorerApp, LabState, Settings};
pub use image_export::{crop, write_png};
pub use session::session_run_path;

/// A spinner and what is being waited for.
pub(crate) fn waiting(ui: &mut egui::Ui, what: &str) {
    ui.horizontal(|ui| {
        ui.spinner();
        ui.label(what);
    });
}

/// Title of the window (and the name of its persistence folder).
pub const APP_TITLE: &str = "bayes-explorer";

/// Opens the window and runs until it is closed.
pub fn run_app() -> Result<(), eframe::Error> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(APP_TITLE)
            .with_app_id(APP_TITLE)
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([720.0, 480.0])
            .with_drag_and_drop(true),
        persist_window: true,
        ..eframe::NativeOptions::default()
    };
    eframe::run_native(
        APP_TITLE,
        options,
        Box::new(|cc| {
            let settings =
                cc.storage.and_then(|s| eframe::get_value::<Settings>(s, eframe::APP_KEY)).unwrap_or_default();
            let session = eframe::storage_dir(APP_TITLE).map(|d| d.join("session"));
            Ok(Box::new(BayesExplorerApp::with_session(cc.egui_ctx.clone(), settings, session)))
        }),
    )
}
