//! The app's side of the last session (`session.rs`): opening each lab's last model at launch and showing it when
//! ready, and what eframe persists, with each lab's changed run written to the session folder.

use std::path::PathBuf;

use crate::Lab;
use crate::train::WorkerEvent;
use crate::ui::app::{BayesExplorerApp, Settings};
use crate::ui::message::Message;
use crate::ui::session::Session;

/// How long closing the window waits for the labs' checkpoints in all: a step's time, or a worker that hangs.
const EXIT_CHECKPOINT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl BayesExplorerApp {
    /// Creates the app as [`BayesExplorerApp::new`] does and keeps each lab's last model in `session_folder`:
    /// the models found there are opened and shown, and [`Self::persist`] writes them there.
    #[must_use]
    pub fn with_session(ctx: egui::Context, settings: Settings, session_folder: Option<PathBuf>) -> Self {
        let mut app = Self::new(ctx, settings);
        app.session = Session::new(session_folder);
        app.session.open_runs(&app.ctx);
        app
    }

    /// True while `lab`'s last model is being opened at launch.
    pub(super) fn restoring(&self, lab: Lab) -> bool {
        self.session.restoring(lab)
    }

    /// True while a lab's last model is being opened at launch.
    #[must_use]
    pub fn restoring_session(&self) -> bool {
        self.session.is_restoring()
    }

    /// Shows the session's runs that have been opened (called every frame; never waits).
    pub(super) fn poll_session(&mut self) {
        for (lab, opened) in self.session.take_opened() {
            match opened {
                Ok(_) if self.lab(lab).run_origin.is_some() => {
                    // A run started while this one was opening: that one is the lab's now.
                    self.finish_restoring(lab);
                }
                Ok(opened) => {
                    let path = opened.path.clone();
                    self.session.restored(lab, &opened);
                    self.apply_opened_run(opened, true);
                    self.finish_restoring(lab);
                    log::info!("restored the last {} run from {}", lab.tab_name(), path.display());
                }
                Err(why) => {
                    let path = self.session.keep_failed(lab);
                    self.finish_restoring(lab);
                    self.lab_mut(lab).message = Some(Message::error(format!(
                        "The last session's {} model could not be restored: {why}. Its run file stays at {} until this lab's next run replaces it; \"Open run…\" can try it again.",
                        lab.tab_name(),
                        path.display()
                    )));
                }
            }
        }
    }

    /// The lab's last model is shown (or could not be): the settings the user left go back in place of the run's.
    fn finish_restoring(&mut self, lab: Lab) {
        self.lab_mut(lab).apply_restored_settings();
    }

    /// The settings to persist, after starting to write each lab's changed run to the session folder; with
    /// `wait`, returns once the files are written (on exit, and in tests).
    pub fn persist(&mut self, wait: bool) -> Settings {
        self.settings.run_settings = Lab::ALL.iter().filter_map(|&lab| self.lab(lab).settings_json()).collect();
        self.settings.bnn_runs = self.lab(Lab::Bnn).bnn.runs.clone();
        self.session.write_runs(&self.labs, !wait);
        if wait {
            self.finish_session_writes();
        }
        self.settings.clone()
    }

    /// Waits for the session's run files being written.
    pub(super) fn finish_session_writes(&mut self) {
        self.session.finish_writes();
    }

    /// What the window does on closing, after eframe's last save ([`Self::persist`] without waiting): waits for the
    /// checkpoints that save asked of the labs' workers (at most [`EXIT_CHECKPOINT_WAIT`] in all), writes them, and
    /// waits for every run file to reach the disk. Without it the last session kept each run as the autosave before
    /// last had it, up to 30 s earlier, or not at all when the window closed within 30 s of Train.
    pub fn finish_session(&mut self) {
        let deadline = std::time::Instant::now() + EXIT_CHECKPOINT_WAIT;
        for lab in self.session.awaiting_checkpoints() {
            let Some(state) = self.labs.iter().find(|s| s.lab == lab) else { continue };
            let (Some(worker), Some(origin)) = (state.worker.as_ref(), state.origin_to_save()) else { continue };
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                match worker.wait_event(left) {
                    Some(WorkerEvent::Checkpoint(checkpoint)) => {
                        self.session.write_checkpoint(lab, origin, &checkpoint);
                        break;
                    }
                    Some(WorkerEvent::CheckpointFailed(why)) => {
                        log::info!("no checkpoint of the {} run on exit ({why}); keeping it as shown", lab.tab_name());
                        if let Some(shown) = worker.snapshot().or_else(|| state.snapshot.clone()) {
                            self.session.write_shown(lab, origin, shown);
                        }
                        break;
                    }
                    Some(_) => {}
                    None => {
                        log::warn!("the {} run's checkpoint did not come before the window closed", lab.tab_name());
                        break;
                    }
                }
            }
        }
        self.finish_session_writes();
    }
}
