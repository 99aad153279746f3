//! "Save run…" and "Open run…" (and "Export data…", see `export.rs`): the native dialog and the run file's writing
//! or reading (with the run's dataset) happen on a `run-file` thread; the outcome comes back over a channel and is
//! applied on the UI thread, which never waits. A run that fails to open changes nothing.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::time::Instant;

use crate::Lab;
use crate::train::runfile::{AnyRun, OpenedRun, RunConfig, open_run, weights_path_for};
use crate::train::{RunSnapshot, Worker, WorkerState};
use crate::ui::app::BayesExplorerApp;
use crate::ui::lab_data::LabData;
use crate::ui::lab_state::{RunOrigin, RunSource};
use crate::ui::message::Message;

/// How a save or an open ended.
pub(crate) enum RunFileOutcome {
    /// The run was written to this path.
    Saved(PathBuf),
    /// A plot's data was written to this CSV file ("Export data…").
    Exported {
        /// The file.
        path: PathBuf,
        /// Its rows after the header.
        rows: usize,
    },
    /// A figure was written to this PNG file ("Save image…").
    ImageSaved {
        /// The file.
        path: PathBuf,
        /// Its width and height in pixels.
        size: [usize; 2],
        /// No save dialog could be shown, so it went to the working folder.
        no_dialog: bool,
    },
    /// A run file and its data were read and checked.
    Opened(Box<OpenedRun>),
    /// The dialog was closed without a file; `quick` when it answered at once (no desktop portal).
    Cancelled { quick: bool },
    /// Why it failed.
    Failed(String),
}

/// A save or open in progress on the `run-file` thread.
pub(crate) struct RunFileJob {
    outcome: Receiver<RunFileOutcome>,
    /// The lab whose page shows the outcome.
    lab: Lab,
    /// "Saving" or "Opening", for the side panel.
    what: &'static str,
}

/// A dialog closed sooner than this was never shown.
const NO_DIALOG_SECS: f64 = 0.4;

impl BayesExplorerApp {
    /// Saves `lab`'s run (paused or finished) to `path`, or to a file picked in the native dialog when `path` is
    /// `None`, on a background thread; the outcome appears in the lab's message area.
    pub fn save_run(&mut self, lab: Lab, path: Option<PathBuf>) {
        if self.run_file_job.is_some() {
            return;
        }
        let state = self.lab(lab);
        let Some(origin) = state.run_origin.clone() else {
            self.lab_mut(lab).message =
                Some(Message::error("Train a model or open a run first: there is no run to save."));
            return;
        };
        if state.worker_state == Some(WorkerState::Running) {
            self.lab_mut(lab).message = Some(Message::error("Pause the run or let it finish before saving it."));
            return;
        }
        let Some(snapshot) = state.worker.as_ref().and_then(Worker::snapshot).or_else(|| state.snapshot.clone()) else {
            self.lab_mut(lab).message = Some(Message::error("The run has no model yet: nothing to save."));
            return;
        };
        let default_name = format!("{}-run.json", lab.tab_name().to_lowercase());
        self.spawn_run_file_job(lab, "Saving the run…", move || {
            let picked = given_or_picked(path, || save_dialog("Save the run", "Run file", "json", default_name));
            let path = match picked {
                Ok(path) => path,
                Err(cancelled) => return cancelled,
            };
            match save(&origin, &snapshot, &path) {
                Ok(()) => RunFileOutcome::Saved(path),
                Err(e) => RunFileOutcome::Failed(e),
            }
        });
    }

    /// Opens the run file `path`, or one picked in the native dialog when `path` is `None`, with its dataset, on a
    /// background thread; the run then shows in its lab, its settings ready for a re-run.
    pub fn open_run(&mut self, path: Option<PathBuf>) {
        if self.run_file_job.is_some() {
            return;
        }
        let tab = self.settings.tab;
        self.spawn_run_file_job(tab, "Opening the run…", move || {
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
        });
    }

    /// True while a run is being saved or opened.
    #[must_use]
    pub fn run_file_busy(&self) -> bool {
        self.run_file_job.is_some()
    }

    pub(crate) fn spawn_run_file_job(
        &mut self,
        lab: Lab,
        what: &'static str,
        job: impl FnOnce() -> RunFileOutcome + Send + 'static,
    ) {
        let (tx, rx) = channel();
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new().name("run-file".into()).spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or_else(|panic| {
                RunFileOutcome::Failed(format!("the run file failed: {}", crate::data::job::panic_text(&*panic)))
            });
            let _ = tx.send(outcome);
            ctx.request_repaint();
        });
        match spawned {
            Ok(_) => self.run_file_job = Some(RunFileJob { outcome: rx, lab, what }),
            Err(e) => {
                self.lab_mut(lab).message = Some(Message::error(format!("cannot start the run-file thread: {e}")));
            }
        }
    }

    /// Applies a finished save or open (called every frame; never waits).
    pub(crate) fn poll_run_file(&mut self) {
        let Some(job) = &self.run_file_job else { return };
        let lab = job.lab;
        let outcome = match job.outcome.try_recv() {
            Ok(outcome) => outcome,
            Err(TryRecvError::Empty) => return,
            Err(TryRecvError::Disconnected) => RunFileOutcome::Failed("the run-file thread stopped".into()),
        };
        self.run_file_job = None;
        match outcome {
            RunFileOutcome::Saved(path) => {
                let weights = weights_path_for(&path).map(|w| w.display().to_string()).unwrap_or_default();
                self.lab_mut(lab).message =
                    Some(Message::note(format!("Saved the run to {} (weights in {weights}).", path.display())));
            }
            RunFileOutcome::Exported { path, rows } => {
                self.lab_mut(lab).message = Some(Message::note(format!(
                    "Exported {} of data to {}.",
                    crate::ui::count::count(rows, "row"),
                    path.display()
                )));
            }
            RunFileOutcome::ImageSaved { path, size: [w, h], no_dialog } => {
                let why = if no_dialog {
                    " No file dialog answered (no desktop portal is running), so it went to the working folder."
                } else {
                    ""
                };
                self.lab_mut(lab).message =
                    Some(Message::note(format!("Saved the figure ({w} x {h} pixels) to {}.{why}", path.display())));
            }
            RunFileOutcome::Opened(opened) => {
                // Asks first when the run it replaces (in the run's own lab) has trained a while.
                self.replace_run(opened.run.lab(), crate::ui::discard::Replacement::Run(opened));
            }
            RunFileOutcome::Cancelled { quick: true } => {
                self.lab_mut(lab).message = Some(Message::warning(
                    "No file dialog answered (no desktop portal is running). On the command line, `bayes-explorer train <lab> … --save PATH` saves a run, `--load PATH` opens one and `--export DIR` writes its data as CSV files.",
                ));
            }
            RunFileOutcome::Cancelled { quick: false } => {}
            RunFileOutcome::Failed(text) => self.lab_mut(lab).message = Some(Message::error(text)),
        }
    }

    /// Shows an opened run in its lab: its data, its settings for the next run, and a worker that plays the saved
    /// model and metrics back (so the views are the ones the trainer would publish). `restored`: the last
    /// session's run, shown where it was left (the open tab stays).
    pub(crate) fn apply_opened_run(&mut self, opened: OpenedRun, restored: bool) {
        let OpenedRun { path, run, table, request, prepared } = opened;
        let lab = run.lab();
        // A dataset still loading for this lab would replace the run's data when it lands.
        if let Some((job, _)) = self.lab_mut(lab).loading.take() {
            job.cancel();
        }
        self.apply_data(lab, LabData::new(table, run.spec().clone(), request.clone()));
        let ctx = self.ctx.clone();
        let state = self.lab_mut(lab);
        let Some(table) = state.data.as_ref().map(|d| Arc::clone(&d.table)) else { return };
        state.show_settings(run.config());
        match run.config() {
            RunConfig::Bnn(config) => {
                state.bnn.new_run(Arc::clone(&prepared), config);
                state.bnn.show_data = false;
            }
            RunConfig::Vae(_) => {
                state.vae.new_run(Arc::clone(&prepared));
                state.vae.show_data = false;
            }
            RunConfig::Flow(_) => {
                state.flow.new_run(Arc::clone(&prepared));
                state.flow.show_data = false;
            }
        }
        state.snapshot = None;
        let name = format!("train-{}", lab.tab_name().to_lowercase());
        match Worker::spawn(&name, run.replay_factory(), true, move || ctx.request_repaint()) {
            Ok(w) => {
                state.worker = Some(w);
                state.worker_state = Some(WorkerState::Starting);
            }
            Err(e) => {
                state.message = Some(Message::error(format!("cannot start the run's thread: {e}")));
                return;
            }
        }
        state.run_origin = Some(RunOrigin { config: run.config(), table, request, spec: run.spec().clone() });
        if !restored {
            state.run_source = RunSource::File;
        }
        let s = run.snapshot();
        let what = if restored { "Restored the last session's model from" } else { "Opened" };
        state.message = Some(Message::note(format!(
            "{what} {}: {}, {} of {}, {}. Train runs it again from scratch with the same settings and seed.",
            path.display(),
            run.model_name(),
            s.epoch,
            crate::ui::count::count(s.total_epochs, "epoch"),
            crate::ui::count::count(s.step, "step")
        )));
        if !restored {
            self.settings.tab = lab;
        }
    }
}

/// `path` if given, else what the native dialog returns; when the dialog is closed without a file, the outcome to
/// report (on the `run-file` thread: the dialog blocks).
pub(crate) fn given_or_picked(
    path: Option<PathBuf>,
    dialog: impl FnOnce() -> Option<PathBuf>,
) -> Result<PathBuf, RunFileOutcome> {
    if let Some(path) = path {
        return Ok(path);
    }
    let asked = Instant::now();
    dialog().ok_or_else(|| RunFileOutcome::Cancelled { quick: asked.elapsed().as_secs_f64() < NO_DIALOG_SECS })
}

/// The native save dialog: `title`, one filter (`filter` for files ending in `extension`) and `default_name`;
/// the picked path gets `extension` if it has none. `None` when closed without a file (blocks: call it on a
/// thread).
pub(crate) fn save_dialog(title: &str, filter: &str, extension: &str, default_name: String) -> Option<PathBuf> {
    let mut path = rfd::FileDialog::new()
        .set_title(title)
        .add_filter(filter, &[extension])
        .set_file_name(default_name)
        .save_file()?;
    if path.extension().is_none() {
        path.set_extension(extension);
    }
    Some(path)
}

/// Builds the run from what the lab holds and writes it (on the `run-file` thread: hashing the data and writing
/// take a while).
fn save(origin: &RunOrigin, snapshot: &RunSnapshot, path: &std::path::Path) -> Result<(), String> {
    let run =
        AnyRun::from_snapshot(origin.config.clone(), snapshot, &origin.table, &origin.request, origin.spec.clone())
            .map_err(|e| format!("{}: cannot save the run: {e}", path.display()))?;
    run.save(path).map_err(|e| e.to_string())
}

/// The side panel's "Save run…" and "Open run…" buttons.
pub(crate) fn run_file_ui(app: &mut BayesExplorerApp, lab: Lab, ui: &mut egui::Ui) {
    ui.strong("Run file");
    let state = app.lab(lab);
    let busy = app.run_file_job.as_ref().map(|j| j.what);
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
            app.save_run(lab, None);
        }
        if ui
            .add_enabled(busy.is_none(), egui::Button::new("Open run…"))
            .on_hover_text("Open a saved run (its .json file) in its lab: the model, its views, its data and its settings")
            .clicked()
        {
            app.open_run(None);
        }
    });
    if let Some(what) = busy {
        ui.label(egui::RichText::new(what).weak());
    }
}
