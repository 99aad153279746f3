//! "Export data…": the CSV of what a plot shows. A page asks for an export by leaving an [`ExportRequest`] (a
//! default file name and a closure that builds the table from plain data the page already holds); the app hands it
//! to [`export_job`] on the `run-file` thread (`app/files.rs`), which runs the save dialog, builds the table and
//! writes the file, like "Save run…". The outcome appears in the lab's message area.

use std::path::PathBuf;

use crate::Lab;
use crate::train::RunSnapshot;
use crate::train::export::{ExportTable, history_table};
use crate::ui::file_job::RunFileOutcome;
use crate::ui::image_export::figure_path;

/// A plot's data to export: what the file is called by default and how to build its table (on the thread).
pub(crate) struct ExportRequest {
    /// Offered in the save dialog.
    pub default_name: String,
    /// Builds the table; runs on the `run-file` thread.
    pub build: Box<dyn FnOnce() -> ExportTable + Send>,
}

impl ExportRequest {
    /// An export named `default_name` whose table `build` makes.
    pub(crate) fn new(default_name: impl Into<String>, build: impl FnOnce() -> ExportTable + Send + 'static) -> Self {
        Self { default_name: default_name.into(), build: Box::new(build) }
    }
}

/// The "Export data…" button next to a plot; true when clicked.
pub(crate) fn export_button(ui: &mut egui::Ui) -> bool {
    ui.button("Export data…")
        .on_hover_text("Save the numbers behind this plot as a CSV file (full precision, one header row)")
        .clicked()
}

/// "Export data…" on the `run-file` thread: the table of `request` written as CSV to `path`, or to a file picked in
/// the save dialog (with no dialog, the working folder: [`figure_path`]).
pub(crate) fn export_job(request: ExportRequest, path: Option<PathBuf>) -> RunFileOutcome {
    let ExportRequest { default_name, build } = request;
    let (path, no_dialog) = match figure_path(path, ("Export data as CSV", "CSV", "csv"), default_name) {
        Ok(picked) => picked,
        Err(cancelled) => return cancelled,
    };
    let table = build();
    match table.write(&path) {
        Ok(()) => RunFileOutcome::Exported { path, rows: table.rows.len(), no_dialog },
        Err(e) => RunFileOutcome::Failed(e.to_string()),
    }
}

/// Which plot's data to export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportKind {
    /// The loss curves: every epoch's metrics (any lab).
    History,
    /// The BNN's weight histograms as the weights page shows them (one epoch, or the stack).
    WeightHistograms,
    /// The BNN's predictive table of the test rows.
    Predictive,
    /// The BNN's interval coverage.
    Calibration,
    /// The VAE's encoder means and log-variances of every input.
    Latents,
    /// The flow's points at every stage.
    Stages,
    /// The flow's density grids (each stage's latest).
    Density,
}

/// The loss curves' data: every epoch's metrics.
pub(crate) fn history_request(lab: Lab, snapshot: &RunSnapshot) -> ExportRequest {
    let history = snapshot.history.clone();
    ExportRequest::new(format!("{}-history.csv", lab.tab_name().to_lowercase()), move || history_table(&history))
}
