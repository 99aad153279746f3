//! "Save run…" and "Open run…": the side panel's two buttons, and the jobs that write a run file (with its weights)
//! or read one (with its dataset) on the `run-file` thread (`file_job.rs`). A run that fails to open changes
//! nothing.

use std::path::PathBuf;
use std::sync::Arc;

use crate::train::runfile::{AnyRun, open_run};
use crate::train::{RunSnapshot, TrainState, WorkerState};
use crate::ui::file_job::{RunFileOutcome, given_or_picked};
use crate::ui::image_export::figure_path;
use crate::ui::lab_state::{LabState, RunOrigin};

/// "Save run…" on the `run-file` thread: the run started from `origin`, as `snapshot` holds it, with the training
/// state taken at the same step when there is one (so that "Continue" can carry it on), written to `path` or to a
/// file picked in the save dialog (offered as `default_name`; with no dialog, the working folder: [`figure_path`]).
pub(crate) fn save_run_job(
    origin: &RunOrigin,
    snapshot: &RunSnapshot,
    train_state: Option<Arc<TrainState>>,
    path: Option<PathBuf>,
    default_name: String,
) -> RunFileOutcome {
    let (path, no_dialog) = match figure_path(path, ("Save the run", "Run file", "json"), default_name) {
        Ok(picked) => picked,
        Err(cancelled) => return cancelled,
    };
    match save(origin, snapshot, train_state, &path) {
        Ok(()) => RunFileOutcome::Saved { path, no_dialog },
        Err(e) => RunFileOutcome::Failed(e),
    }
}

/// "Open run…" on the `run-file` thread: the run file `path`, or one picked in the open dialog, read with its
/// dataset and checked.
pub(crate) fn open_run_job(path: Option<PathBuf>) -> RunFileOutcome {
    let picked = given_or_picked(path, || {
        rfd::FileDialog::new()
            .set_title("Open a run")
            .add_filter("Run file", &["json"])
            .add_filter("All files", &["*"])
            .pick_file()
    });
    let path = match picked {
        Ok(path) => path,
        Err(cancelled) => return cancelled,
    };
    match open_run(&path) {
        Ok(opened) => RunFileOutcome::Opened(Box::new(opened)),
        Err(e) => RunFileOutcome::Failed(e.to_string()),
    }
}

/// Builds the run from what the lab holds and writes it (on the `run-file` thread: hashing the data and writing
/// take a while).
fn save(
    origin: &RunOrigin,
    snapshot: &RunSnapshot,
    train_state: Option<Arc<TrainState>>,
    path: &std::path::Path,
) -> Result<(), String> {
    let run =
        AnyRun::from_snapshot(origin.config.clone(), snapshot, &origin.table, &origin.request, origin.spec.clone())
            .map(|run| run.with_kept(origin.kept.clone()))
            .and_then(|run| match train_state {
                Some(state) => run.with_state(state),
                None => Ok(run),
            })
            .map_err(|e| format!("{}: cannot save the run: {e}", path.display()))?;
    run.save(path).map_err(|e| e.to_string())
}

/// What the user asked of the side panel's run-file buttons this frame.
pub(crate) enum RunFileAsk {
    /// "Save run…": save the lab's run, asking where.
    Save,
    /// "Open run…": open a run file, asking which.
    Open,
}

/// The side panel's "Save run…" and "Open run…" buttons for `state`'s lab; `busy`: what the `run-file` thread is
/// doing, if anything. The caller carries out the answer.
pub(crate) fn run_file_ui(state: &LabState, busy: Option<&str>, ui: &mut egui::Ui) -> Option<RunFileAsk> {
    let mut ask = None;
    ui.strong("Run file");
    let settled = matches!(state.worker_state, Some(WorkerState::Paused | WorkerState::Finished));
    let can_save = busy.is_none() && state.run_origin.is_some() && settled;
    let why_not = if busy.is_some() {
        "A run file is being read or written"
    } else {
        "Train a model and pause it or let it finish, or open a run, first"
    };
    ui.horizontal_wrapped(|ui| {
        if ui
            .add_enabled(can_save, egui::Button::new("Save run…"))
            .on_hover_text("Save the model, its settings and seed, the data's checksum, roles and split, and the metrics: a .json run file and a .safetensors file next to it")
            .on_disabled_hover_text(why_not)
            .clicked()
        {
            ask = Some(RunFileAsk::Save);
        }
        if ui
            .add_enabled(busy.is_none(), egui::Button::new("Open run…"))
            .on_hover_text("Open a saved run (its .json file) in its lab: the model, its views, its data and its settings")
            .clicked()
        {
            ask = Some(RunFileAsk::Open);
        }
    });
    if let Some(what) = busy {
        ui.label(egui::RichText::new(what).weak());
    }
    ask
}
