//! The app's work on the `run-file` thread, one job at a time: "Save run…" and "Open run…" (`run_file.rs`),
//! "Export data…" (`export.rs`) and "Save image…" (`image_export.rs`); each outcome said in its lab's message area,
//! and an opened run put into its lab.

use std::path::PathBuf;
use std::sync::Arc;

use crate::Lab;
use crate::train::runfile::{OpenedRun, RunConfig, weights_path_for};
use crate::train::{Checkpoint, Command, RunSnapshot, TrainState, Worker, WorkerState};
use crate::ui::animation::{take_recorded, write_animation_job};
use crate::ui::app::BayesExplorerApp;
use crate::ui::discard::Replacement;
use crate::ui::export::{ExportKind, ExportRequest, export_job};
use crate::ui::file_job::{RunFileJob, RunFileOutcome};
use crate::ui::image_export::{CapturedImage, NO_DIALOG_NOTE, take_captured, write_image_job};
use crate::ui::lab_data::LabData;
use crate::ui::lab_state::{PendingSave, RunOrigin, RunSource, SavedRun};
use crate::ui::message::Message;
use crate::ui::run_file::{open_run_job, save_run_job};

impl BayesExplorerApp {
    /// Saves `lab`'s run (paused or finished) to `path`, or to a file picked in the native dialog when `path` is
    /// `None`, on a background thread; the outcome appears in the lab's message area.
    pub fn save_run(&mut self, lab: Lab, path: Option<PathBuf>) {
        if self.run_file_busy() {
            return;
        }
        let state = self.lab(lab);
        let Some(origin) = state.origin_to_save() else {
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
        // An opened run still as its file has it keeps the file's training state; a run trained here is saved from
        // a checkpoint its worker takes first (`save_checkpoint`), so that "Continue" can carry it on.
        if let Some(saved) = &state.saved_run {
            let train_state = saved.run.state().filter(|_| saved.run.snapshot().step == snapshot.step).cloned();
            self.spawn_save(lab, origin, snapshot, train_state, path);
        } else if let Some(worker) = &state.worker {
            worker.send(Command::Checkpoint);
            self.lab_mut(lab).save_asked = Some(PendingSave { path });
        } else {
            self.spawn_save(lab, origin, snapshot, None, path);
        }
    }

    /// The checkpoint "Save run…" asked `lab`'s worker for came (or could not be taken: the run is saved as shown).
    pub(super) fn save_checkpoint(&mut self, lab: Lab, checkpoint: Result<Arc<Checkpoint>, String>) {
        let state = self.lab_mut(lab);
        let Some(PendingSave { path }) = state.save_asked.take() else { return };
        let Some(origin) = state.origin_to_save() else { return };
        if self.run_file_job.is_some() {
            self.lab_mut(lab).message =
                Some(Message::warning("A file is being written or read; save the run again once it is done."));
            return;
        }
        let (snapshot, train_state) = match checkpoint {
            Ok(c) => (c.snapshot.clone(), Some(Arc::clone(&c.state))),
            Err(why) => {
                log::info!("saving the {} run without its training state: {why}", lab.tab_name());
                let state = self.lab(lab);
                let shown = state.worker.as_ref().and_then(Worker::snapshot).or_else(|| state.snapshot.clone());
                let Some(shown) = shown else { return };
                (shown, None)
            }
        };
        self.spawn_save(lab, origin, snapshot, train_state, path);
    }

    fn spawn_save(
        &mut self,
        lab: Lab,
        origin: RunOrigin,
        snapshot: RunSnapshot,
        train_state: Option<Arc<TrainState>>,
        path: Option<PathBuf>,
    ) {
        let default_name = run_file_name(lab);
        self.spawn_run_file_job(lab, "Saving the run…", move || {
            save_run_job(&origin, &snapshot, train_state, path, default_name)
        });
    }

    /// Opens the run file `path`, or one picked in the native dialog when `path` is `None`, with its dataset, on a
    /// background thread; the run then shows in its lab, its settings ready for a re-run.
    pub fn open_run(&mut self, path: Option<PathBuf>) {
        if self.run_file_job.is_some() {
            return;
        }
        let tab = self.settings.tab;
        self.spawn_run_file_job(tab, "Opening the run…", move || open_run_job(path));
    }

    /// True while a run is being saved or opened.
    #[must_use]
    pub fn run_file_busy(&self) -> bool {
        self.run_file_job.is_some() || Lab::ALL.iter().any(|&lab| self.lab(lab).save_asked.is_some())
    }

    /// Runs `job` on the `run-file` thread; its outcome shows on `lab`'s page.
    fn spawn_run_file_job(
        &mut self,
        lab: Lab,
        what: &'static str,
        job: impl FnOnce() -> RunFileOutcome + Send + 'static,
    ) {
        match RunFileJob::spawn(lab, what, self.ctx.clone(), job) {
            Ok(job) => self.run_file_job = Some(job),
            Err(e) => {
                self.lab_mut(lab).message = Some(Message::error(format!("cannot start the run-file thread: {e}")));
            }
        }
    }

    /// Applies a finished save, open, export or image (called every frame; never waits).
    pub(super) fn poll_run_file(&mut self) {
        let Some(job) = &self.run_file_job else { return };
        let lab = job.lab();
        let Some(outcome) = job.try_outcome() else { return };
        self.run_file_job = None;
        // A save the question before discarding a run asked for decides whether the replacement goes ahead: saved,
        // or not and whether the outcome said why (in the lab's message, below).
        let saved = match &outcome {
            RunFileOutcome::Saved { .. } => Some((true, false)),
            RunFileOutcome::Cancelled { quick } => Some((false, *quick)),
            RunFileOutcome::Failed(_) => Some((false, true)),
            _ => None,
        };
        match outcome {
            RunFileOutcome::Saved { path, no_dialog } => {
                let weights = weights_path_for(&path).map(|w| w.display().to_string()).unwrap_or_default();
                let why = if no_dialog { NO_DIALOG_NOTE } else { "" };
                self.lab_mut(lab).message =
                    Some(Message::note(format!("Saved the run to {} (weights in {weights}).{why}", path.display())));
            }
            RunFileOutcome::Exported { path, rows, no_dialog } => {
                let why = if no_dialog { NO_DIALOG_NOTE } else { "" };
                self.lab_mut(lab).message = Some(Message::note(format!(
                    "Exported {} of data to {}.{why}",
                    crate::ui::count::count(rows, "row"),
                    path.display()
                )));
            }
            RunFileOutcome::ImageSaved { path, size: [w, h], no_dialog } => {
                let why = if no_dialog { NO_DIALOG_NOTE } else { "" };
                self.lab_mut(lab).message =
                    Some(Message::note(format!("Saved the figure ({w} x {h} pixels) to {}.{why}", path.display())));
            }
            RunFileOutcome::AnimationSaved { path, frames, size: [w, h], fps, no_dialog } => {
                let why = if no_dialog { NO_DIALOG_NOTE } else { "" };
                self.lab_mut(lab).message = Some(Message::note(format!(
                    "Saved the animation ({frames} frames of {w} x {h} pixels, {:.1} s at {fps} frames a second) to {}.{why}",
                    frames as f32 / fps,
                    path.display()
                )));
            }
            RunFileOutcome::Opened(opened) => {
                // Asks first when the run it replaces (in the run's own lab) has trained a while.
                self.replace_run(opened.run.lab(), Replacement::Run(opened));
            }
            RunFileOutcome::Cancelled { quick: true } => {
                self.lab_mut(lab).message = Some(Message::warning(
                    "No file dialog answered (no desktop portal is running). To open a run file, type its path in the field under \"Load CSV…\" or drop it onto the window; on the command line, `bayes-explorer train <lab> … --load PATH` opens one.",
                ));
            }
            RunFileOutcome::Cancelled { quick: false } => {}
            RunFileOutcome::Failed(text) => self.lab_mut(lab).message = Some(Message::error(text)),
        }
        if let Some((saved, said_why)) = saved {
            self.saved_first(lab, saved, said_why);
        }
    }

    /// Shows an opened run in its lab: its data, its settings for the next run, and a worker that plays the saved
    /// model and metrics back (so the views are the ones the trainer would publish). `restored`: the last
    /// session's run, shown where it was left (the open tab stays).
    pub(super) fn apply_opened_run(&mut self, opened: OpenedRun, restored: bool) {
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
        // The models it kept on its way: the epoch scrubber goes back through them.
        state.restore_kept(run.kept());
        state.snapshot = None;
        let name = format!("train-{}", lab.tab_name().to_lowercase());
        match Worker::spawn(&name, run.replay_factory(), true, crate::ui::lab_page::training_repaint(ctx)) {
            Ok(w) => {
                state.worker = Some(w);
                state.worker_state = Some(WorkerState::Starting);
            }
            Err(e) => {
                state.message = Some(Message::error(format!("cannot start the run's thread: {e}")));
                return;
            }
        }
        state.run_origin =
            Some(RunOrigin { config: run.config(), table, request, spec: run.spec().clone(), kept: Vec::new() });
        if !restored {
            state.run_source = RunSource::File;
        }
        let s = run.snapshot();
        let what = if restored { "Restored the last session's model from" } else { "Opened" };
        // A run with its training state is offered to be continued (`continuing.rs`); one without is re-run.
        let next = if run.why_not_continued().is_none() {
            format!(
                "Continue carries it on from epoch {}; Train runs it again from scratch with the same settings and seed.",
                s.epoch
            )
        } else {
            "Train runs it again from scratch with the same settings and seed.".to_owned()
        };
        state.message = Some(Message::note(format!(
            "{what} {}: {}, {} of {}, {}. {next}",
            path.display(),
            run.model_name(),
            s.epoch,
            crate::ui::count::count(s.total_epochs, "epoch"),
            crate::ui::count::count(s.step, "step")
        )));
        state.saved_run = Some(SavedRun { run: Arc::new(run), prepared });
        if !restored {
            self.settings.tab = lab;
        }
    }

    /// Writes the table of `request` as CSV to `path`, or to a file picked in the native save dialog when `path`
    /// is `None`, on a background thread; the outcome appears in `lab`'s message area.
    pub(super) fn export_data(&mut self, lab: Lab, request: ExportRequest, path: Option<PathBuf>) {
        if self.run_file_busy() {
            self.lab_mut(lab).message =
                Some(Message::warning("A file is being written or read; export again once it is done."));
            return;
        }
        self.spawn_run_file_job(lab, "Exporting data…", move || export_job(request, path));
    }

    /// Exports what one of `lab`'s plots shows to `path` without a dialog, as its "Export data…" button would (for
    /// tests and scripted demos). False when the lab has no such data yet (nothing is written).
    pub fn export_view(&mut self, lab: Lab, kind: ExportKind, path: PathBuf) -> bool {
        let Some(request) = self.lab(lab).export_request(kind) else { return false };
        self.export_data(lab, request, Some(path));
        true
    }

    /// Starts the export a page asked for this frame, if any (called after the lab's page is drawn).
    pub(super) fn start_requested_export(&mut self, lab: Lab) {
        if let Some(request) = self.lab_mut(lab).take_export_request() {
            self.export_data(lab, request, None);
        }
    }

    /// Saves runs ("Save run…" in the side panel, "Save run first…" in the question before a run is discarded) to
    /// `folder` under their default names instead of asking with the save dialog (for tests and scripted demos);
    /// `None` asks again.
    pub fn save_runs_to(&mut self, folder: Option<PathBuf>) {
        self.run_folder = folder;
    }

    /// Where "Save run…" saves `lab`'s run without asking ([`Self::save_runs_to`]); `None`: the dialog asks.
    pub(super) fn run_path(&self, lab: Lab) -> Option<PathBuf> {
        self.run_folder.as_ref().map(|f| f.join(run_file_name(lab)))
    }

    /// Saves PNGs and recorded animations to `folder` under their default names instead of asking with the save
    /// dialog (for tests and scripted demos); `None` asks again.
    pub fn save_images_to(&mut self, folder: Option<PathBuf>) {
        self.image_folder = folder;
    }

    /// Starts writing the figures captured in the window of `ctx` since the last frame (called every frame; never
    /// waits). A figure captured while another file is being written waits for it.
    pub(super) fn poll_images(&mut self, ctx: &egui::Context) {
        if self.run_file_busy() {
            return;
        }
        if let Some(captured) = take_captured(ctx) {
            let lab = self.settings.tab;
            self.save_image(lab, captured);
        } else if let Some(recorded) = take_recorded(ctx) {
            let lab = self.settings.tab;
            let given = self.image_folder.as_ref().map(|f| f.join(&recorded.name));
            self.spawn_run_file_job(lab, "Saving the animation…", move || write_animation_job(recorded, given));
        }
    }

    fn save_image(&mut self, lab: Lab, captured: CapturedImage) {
        let CapturedImage { name, image } = &captured;
        if image.size[0] == 0 || image.size[1] == 0 {
            self.lab_mut(lab).message =
                Some(Message::error(format!("{name}: the figure is not on screen; scroll to it and save it again.")));
            return;
        }
        let given = self.image_folder.as_ref().map(|f| f.join(name));
        self.spawn_run_file_job(lab, "Saving the image…", move || write_image_job(captured, given));
    }
}

/// The name a run file of `lab` is saved under by default ("bnn-run.json").
fn run_file_name(lab: Lab) -> String {
    format!("{}-run.json", lab.tab_name().to_lowercase())
}
