//! The last session, restored on launch: the open tab, each lab's dataset and settings and the BNN's Compare runs
//! list (in [`Settings`], which eframe persists), and each lab's last model, kept as a run file per lab in a
//! session folder.
//!
//! Whenever eframe saves (every 30 s and on exit), each lab whose run changed since the last save is written,
//! on a `session-save` thread, as `<lab>-run.json` plus its weights, atomically (see `train::runfile`); a lab
//! left without a run has its file removed. On exit the app waits for those writes ([`BayesExplorerApp::on_exit`]
//! via `finish_session_writes`). On launch each lab's file is opened on a `session-open` thread, like "Open
//! run…", and shown when ready; a file that no longer opens is left in place, with a message naming it.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::thread::JoinHandle;

use crate::Lab;
use crate::train::runfile::{AnyRun, OpenedRun, RunConfig, open_run, weights_path_for};
use crate::train::{RunSnapshot, Worker};
use crate::ui::app::{BayesExplorerApp, Settings};
use crate::ui::message::Message;

/// The session's run files and what is happening to them.
#[derive(Default)]
pub(crate) struct Session {
    /// Where the run files live; `None` keeps no models between launches (tests that do not ask for it).
    folder: Option<PathBuf>,
    /// Per lab: the key of the run last written (see [`run_key`]).
    written: Vec<(Lab, u64)>,
    /// Writes in progress.
    writers: Vec<JoinHandle<()>>,
    /// Run files being opened at launch.
    opening: Vec<(Lab, Receiver<Result<OpenedRun, String>>)>,
    /// Labs whose file failed to open: it stays until the lab's next run replaces it.
    kept: Vec<Lab>,
}

/// The run file of `lab` in `folder`.
#[must_use]
pub fn session_run_path(folder: &Path, lab: Lab) -> PathBuf {
    folder.join(format!("{}-run.json", lab.tab_name().to_lowercase()))
}

/// What identifies a run's state for saving: its settings and how far it got (an unchanged run is not written
/// again).
fn run_key(config: &RunConfig, snapshot: &RunSnapshot) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    format!("{config:?}").hash(&mut h);
    (snapshot.epoch, snapshot.total_epochs, snapshot.step, snapshot.batch_loss.to_bits()).hash(&mut h);
    snapshot.history.last().map(|r| format!("{r:?}")).hash(&mut h);
    h.finish()
}

/// A lab's settings from [`Settings::run_settings`]; `None` when they no longer parse (another version's).
pub(crate) fn parse_settings(lab: Lab, json: &str) -> Option<RunConfig> {
    let parsed = match lab {
        Lab::Bnn => serde_json::from_str(json).map(RunConfig::Bnn),
        Lab::Vae => serde_json::from_str(json).map(RunConfig::Vae),
        Lab::Flow => serde_json::from_str(json).map(RunConfig::Flow),
    };
    parsed.map_err(|e| log::warn!("the last session's {} settings are dropped: {e}", lab.tab_name())).ok()
}

impl Session {
    pub(crate) fn new(folder: Option<PathBuf>) -> Self {
        Self { folder, ..Self::default() }
    }
}

impl BayesExplorerApp {
    /// Creates the app as [`BayesExplorerApp::new`] does and keeps each lab's last model in `session_folder`:
    /// the models found there are opened and shown, and [`Self::persist`] writes them there.
    #[must_use]
    pub fn with_session(ctx: egui::Context, settings: Settings, session_folder: Option<PathBuf>) -> Self {
        let mut app = Self::new(ctx, settings);
        app.session = Session::new(session_folder);
        app.open_session_runs();
        app
    }

    /// Starts opening the run file each lab left in the session folder.
    fn open_session_runs(&mut self) {
        let Some(folder) = self.session.folder.clone() else { return };
        for lab in Lab::ALL {
            let path = session_run_path(&folder, lab);
            if !path.exists() {
                continue;
            }
            let (tx, rx) = channel();
            let ctx = self.ctx.clone();
            let spawned = std::thread::Builder::new().name("session-open".into()).spawn(move || {
                let opened = std::panic::catch_unwind(|| open_run(&path).map_err(|e| e.to_string()))
                    .unwrap_or_else(|panic| Err(crate::data::job::panic_text(&*panic)));
                let _ = tx.send(opened);
                ctx.request_repaint();
            });
            match spawned {
                Ok(_) => self.session.opening.push((lab, rx)),
                Err(e) => log::warn!("cannot start the session-open thread: {e}"),
            }
        }
    }

    /// True while `lab`'s last model is being opened at launch.
    pub(crate) fn restoring(&self, lab: Lab) -> bool {
        self.session.opening.iter().any(|(l, _)| *l == lab)
    }

    /// True while a lab's last model is being opened at launch.
    #[must_use]
    pub fn restoring_session(&self) -> bool {
        !self.session.opening.is_empty()
    }

    /// Shows the session's runs that have been opened (called every frame; never waits).
    pub(crate) fn poll_session(&mut self) {
        let mut still = Vec::new();
        for (lab, rx) in std::mem::take(&mut self.session.opening) {
            match rx.try_recv() {
                Err(TryRecvError::Empty) => still.push((lab, rx)),
                Ok(Ok(_)) if self.lab(lab).run_origin.is_some() => {
                    // A run started while this one was opening: that one is the lab's now.
                    self.finish_restoring(lab);
                }
                Ok(Ok(opened)) => {
                    let path = opened.path.clone();
                    // What is on disk is this run: no need to write it again until it changes.
                    self.session.written.push((lab, run_key(&opened.run.config(), opened.run.snapshot())));
                    self.apply_opened_run(opened, true);
                    self.finish_restoring(lab);
                    log::info!("restored the last {} run from {}", lab.tab_name(), path.display());
                }
                outcome => {
                    let why = match outcome {
                        Ok(Err(why)) => why,
                        _ => "the thread opening it stopped".to_owned(),
                    };
                    let path = self.session.folder.as_ref().map(|f| session_run_path(f, lab)).unwrap_or_default();
                    self.session.kept.push(lab);
                    self.finish_restoring(lab);
                    self.lab_mut(lab).message = Some(Message::error(format!(
                        "The last session's {} model could not be restored: {why}. Its run file stays at {} until this lab's next run replaces it; \"Open run…\" can try it again.",
                        lab.tab_name(),
                        path.display()
                    )));
                }
            }
        }
        self.session.opening = still;
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
        self.write_session_runs();
        if wait {
            self.finish_session_writes();
        }
        self.settings.clone()
    }

    /// Waits for the session's run files being written.
    pub(crate) fn finish_session_writes(&mut self) {
        for writer in self.session.writers.drain(..) {
            let _ = writer.join();
        }
    }

    fn write_session_runs(&mut self) {
        let Some(folder) = self.session.folder.clone() else { return };
        self.session.writers.retain(|w| !w.is_finished());
        for lab in Lab::ALL {
            // Still opening, or kept after failing to open: the file is not this session's to replace yet.
            if self.restoring(lab) || (self.session.kept.contains(&lab) && self.lab(lab).run_origin.is_none()) {
                continue;
            }
            let state = self.lab(lab);
            let run = state
                .run_origin
                .clone()
                .zip(state.worker.as_ref().and_then(Worker::snapshot).or_else(|| state.snapshot.clone()));
            let path = session_run_path(&folder, lab);
            let Some((origin, snapshot)) = run.filter(|(_, s)| s.model.is_some()) else {
                if self.session.written.iter().any(|(l, _)| *l == lab) || path.exists() {
                    remove_run_files(&path);
                    self.session.written.retain(|(l, _)| *l != lab);
                }
                continue;
            };
            let key = run_key(&origin.config, &snapshot);
            if self.session.written.contains(&(lab, key)) {
                continue;
            }
            self.session.written.retain(|(l, _)| *l != lab);
            self.session.written.push((lab, key));
            self.session.kept.retain(|l| *l != lab);
            let folder = folder.clone();
            let spawned = std::thread::Builder::new().name("session-save".into()).spawn(move || {
                let written = std::fs::create_dir_all(&folder).map_err(|e| e.to_string()).and_then(|()| {
                    AnyRun::from_snapshot(origin.config, &snapshot, &origin.table, &origin.request, origin.spec)?
                        .save(&path)
                        .map_err(|e| e.to_string())
                });
                if let Err(e) = written {
                    log::warn!("cannot keep the {} run for the next session: {e}", lab.tab_name());
                }
            });
            match spawned {
                Ok(writer) => self.session.writers.push(writer),
                Err(e) => log::warn!("cannot start the session-save thread: {e}"),
            }
        }
    }
}

/// Removes a run file and its weights (what is not there is not an error).
fn remove_run_files(path: &Path) {
    let _ = std::fs::remove_file(path);
    if let Ok(weights) = weights_path_for(path) {
        let _ = std::fs::remove_file(weights);
    }
}
