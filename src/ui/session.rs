//! The last session, restored on launch: the open tab, each lab's dataset and settings and the BNN's Compare runs
//! list (in [`crate::ui::Settings`], which eframe persists), and each lab's last model, kept as a run file per lab
//! in a session folder ([`Session`]; the app's side is `app/persistence.rs`).
//!
//! Whenever eframe saves (every 30 s and on exit), each lab whose run changed since the last save is written,
//! on a `session-save` thread, as `<lab>-run.json` plus its weights, atomically (see `train::runfile`); a lab
//! left without a run has its file removed. On exit the app waits for the checkpoints that save asked of the
//! labs' workers and for those writes (`on_exit`, `finish_session` in `app/persistence.rs`). On launch each lab's
//! file is opened on a `session-open` thread, like "Open run…", and shown when ready; a file that no longer opens is
//! left in place, with a message naming it.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::Lab;
use crate::train::runfile::{AnyRun, OpenedRun, RunConfig, open_run, weights_path_for};
use crate::train::{Checkpoint, Command, RunSnapshot, TrainState, Worker, WorkerState};
use crate::ui::lab_state::{LabState, RunOrigin};

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
    /// Labs whose worker was asked for a checkpoint to keep, and has not answered yet.
    awaiting: Vec<Lab>,
    /// Checkpoints that could not be written, with why (naming the file), for the labs' messages.
    failures: Arc<Mutex<Vec<(Lab, String)>>>,
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

/// RealNVP's gradient clip before 2026-12-05, when [`crate::models::flow::CLIP_NORM`] moved from it to 40.
const CLIP_NORM_BEFORE: f64 = 20.0;

/// A lab's settings from [`crate::ui::Settings::run_settings`]; `None` when they no longer parse (another version's).
pub(crate) fn parse_settings(lab: Lab, json: &str) -> Option<RunConfig> {
    let parsed = match lab {
        Lab::Bnn => serde_json::from_str(json).map(RunConfig::Bnn),
        Lab::Vae => serde_json::from_str::<serde_json::Value>(json).and_then(|mut value| {
            // Settings left before the VAE's weight average was a choice did not choose it: they get today's default
            // for their architecture (a run file from then reads as what it was trained with, the last weights).
            use crate::models::vae::{VaeArch, VaeConfig};
            if let Some(fields) = value.as_object_mut() {
                let arch = fields.get("arch").cloned().and_then(|a| serde_json::from_value::<VaeArch>(a).ok());
                let defaults =
                    if arch == Some(VaeArch::Conv) { VaeConfig::course_conv() } else { VaeConfig::default() };
                fields.entry("weight_average").or_insert_with(|| serde_json::json!(defaults.weight_average));
            }
            serde_json::from_value(value).map(RunConfig::Vae)
        }),
        Lab::Flow => serde_json::from_str::<serde_json::Value>(json).and_then(|mut value| {
            // Settings left before the flow's initial weights, Adam epsilon and rate schedule were choices did not
            // choose them: they get today's defaults for their kind of flow (a run file from then reads as what it
            // was trained with, Keras').
            use crate::models::flow::{FlowConfig, FlowKind};
            if let Some(fields) = value.as_object_mut() {
                let kind = fields.get("kind").cloned().and_then(|k| serde_json::from_value::<FlowKind>(k).ok());
                let defaults = FlowConfig::default_for(kind.unwrap_or(FlowKind::RealNvp));
                fields.entry("init").or_insert_with(|| serde_json::json!(defaults.init));
                fields.entry("adam_epsilon").or_insert_with(|| serde_json::json!(defaults.adam_epsilon));
                fields.entry("lr_schedule").or_insert_with(|| serde_json::json!(defaults.lr_schedule));
                fields.entry("clip_norm").or_insert_with(|| serde_json::json!(defaults.clip_norm));
                fields.entry("weight_average").or_insert_with(|| serde_json::json!(defaults.weight_average));
                // Until 2026-12-05 the lab's one clip was at norm 20 (RealNVP's default then, and its only choice
                // besides off): settings clipped there chose "the clip", which is at today's norm.
                if kind == Some(FlowKind::RealNvp)
                    && fields.get("clip_norm").and_then(serde_json::Value::as_f64) == Some(CLIP_NORM_BEFORE)
                {
                    fields.insert("clip_norm".to_owned(), serde_json::json!(defaults.clip_norm));
                }
            }
            serde_json::from_value(value).map(RunConfig::Flow)
        }),
    };
    parsed.map_err(|e| log::warn!("the last session's {} settings are dropped: {e}", lab.tab_name())).ok()
}

impl Session {
    pub(crate) fn new(folder: Option<PathBuf>) -> Self {
        Self { folder, ..Self::default() }
    }

    /// Starts opening the run file each lab left in the session folder, each on a `session-open` thread that asks
    /// `ctx` for a repaint when done.
    pub(crate) fn open_runs(&mut self, ctx: &egui::Context) {
        let Some(folder) = self.folder.clone() else { return };
        for lab in Lab::ALL {
            let path = session_run_path(&folder, lab);
            if !path.exists() {
                continue;
            }
            let (tx, rx) = channel();
            let ctx = ctx.clone();
            let spawned = std::thread::Builder::new().name("session-open".into()).spawn(move || {
                let opened = std::panic::catch_unwind(|| open_run(&path).map_err(|e| e.to_string()))
                    .unwrap_or_else(|panic| Err(crate::data::job::panic_text(&*panic)));
                let _ = tx.send(opened);
                ctx.request_repaint();
            });
            match spawned {
                Ok(_) => self.opening.push((lab, rx)),
                Err(e) => log::warn!("cannot start the session-open thread: {e}"),
            }
        }
    }

    /// True while `lab`'s last model is being opened.
    pub(crate) fn restoring(&self, lab: Lab) -> bool {
        self.opening.iter().any(|(l, _)| *l == lab)
    }

    /// True while any lab's last model is being opened.
    pub(crate) fn is_restoring(&self) -> bool {
        !self.opening.is_empty()
    }

    /// The run files opened (or not) since the last call, each with its lab; those still opening stay (never
    /// waits).
    pub(crate) fn take_opened(&mut self) -> Vec<(Lab, Result<OpenedRun, String>)> {
        let mut done = Vec::new();
        self.opening.retain(|(lab, rx)| match rx.try_recv() {
            Err(TryRecvError::Empty) => true,
            Ok(opened) => {
                done.push((*lab, opened));
                false
            }
            Err(TryRecvError::Disconnected) => {
                done.push((*lab, Err("the thread opening it stopped".to_owned())));
                false
            }
        });
        done
    }

    /// `lab`'s run was restored from its file: what is on disk is this run, not to be written again until it
    /// changes.
    pub(crate) fn restored(&mut self, lab: Lab, opened: &OpenedRun) {
        self.written.push((lab, run_key(&opened.run.config(), opened.run.snapshot())));
    }

    /// `lab`'s file failed to open: it stays until the lab's next run replaces it. Returns its path.
    pub(crate) fn keep_failed(&mut self, lab: Lab) -> PathBuf {
        self.kept.push(lab);
        self.folder.as_ref().map(|f| session_run_path(f, lab)).unwrap_or_default()
    }

    /// The labs asked for a checkpoint to keep that have not answered yet (on exit the app waits for them).
    pub(crate) fn awaiting_checkpoints(&self) -> Vec<Lab> {
        self.awaiting.clone()
    }

    /// Waits for the run files being written.
    pub(crate) fn finish_writes(&mut self) {
        for writer in self.writers.drain(..) {
            let _ = writer.join();
        }
    }

    /// Starts writing, on `session-save` threads, the run of each of `labs` that changed since it was last written;
    /// a lab left without a run has its file removed.
    ///
    /// With `ask_checkpoints`, a lab whose worker is alive is asked for a checkpoint instead (taken between two
    /// steps, so a run that trains is kept too, with its training state); the app hands it to
    /// [`Self::write_checkpoint`] when it comes (on exit the app waits a few seconds for it: `finish_session`).
    pub(crate) fn write_runs(&mut self, labs: &[LabState], ask_checkpoints: bool) {
        let Some(folder) = self.folder.clone() else { return };
        self.writers.retain(|w| !w.is_finished());
        // A checkpoint asked for by the save before (30 s ago, answered within a step) is not waited for: its worker
        // may since have been replaced by a new run's, which will never send it.
        self.awaiting.clear();
        for state in labs {
            let lab = state.lab;
            // Still opening, or kept after failing to open: the file is not this session's to replace yet.
            if self.restoring(lab) || (self.kept.contains(&lab) && state.run_origin.is_none()) {
                continue;
            }
            let run = state
                .origin_to_save()
                .zip(state.worker.as_ref().and_then(Worker::snapshot).or_else(|| state.snapshot.clone()));
            let path = session_run_path(&folder, lab);
            let Some((origin, snapshot)) = run.filter(|(_, s)| s.model.is_some()) else {
                if self.written.iter().any(|(l, _)| *l == lab) || path.exists() {
                    remove_run_files(&path);
                    self.written.retain(|(l, _)| *l != lab);
                }
                continue;
            };
            let key = run_key(&origin.config, &snapshot);
            if self.written.contains(&(lab, key)) {
                continue;
            }
            self.written.retain(|(l, _)| *l != lab);
            self.written.push((lab, key));
            self.kept.retain(|l| *l != lab);
            let alive =
                matches!(state.worker_state, Some(WorkerState::Running | WorkerState::Paused | WorkerState::Finished));
            if ask_checkpoints && let Some(worker) = state.worker.as_ref().filter(|_| alive) {
                worker.send(Command::Checkpoint);
                if !self.awaiting.contains(&lab) {
                    self.awaiting.push(lab);
                }
                continue;
            }
            self.write(lab, origin, snapshot, None);
        }
    }

    /// Writes the checkpoint a lab's worker took when [`Self::write_runs`] asked (with its training state, so the
    /// run can be continued after a crash), on a `session-save` thread; a failure comes back through
    /// [`Self::take_failures`].
    pub(crate) fn write_checkpoint(&mut self, lab: Lab, origin: RunOrigin, checkpoint: &Checkpoint) {
        self.awaiting.retain(|l| *l != lab);
        if self.folder.is_none() || self.restoring(lab) {
            return;
        }
        self.write(lab, origin, checkpoint.snapshot.clone(), Some(Arc::clone(&checkpoint.state)));
    }

    /// Writes the run as shown (without a training state) when its worker could not take a checkpoint: a run
    /// opened from a version 1 file.
    pub(crate) fn write_shown(&mut self, lab: Lab, origin: RunOrigin, snapshot: RunSnapshot) {
        self.awaiting.retain(|l| *l != lab);
        if self.folder.is_none() || self.restoring(lab) || snapshot.model.is_none() {
            return;
        }
        self.write(lab, origin, snapshot, None);
    }

    /// The checkpoints that could not be written since the last call, with why.
    pub(crate) fn take_failures(&mut self) -> Vec<(Lab, String)> {
        std::mem::take(&mut *self.failures.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn write(&mut self, lab: Lab, origin: RunOrigin, snapshot: RunSnapshot, state: Option<Arc<TrainState>>) {
        let Some(folder) = self.folder.clone() else { return };
        let path = session_run_path(&folder, lab);
        self.writers.retain(|w| !w.is_finished());
        let failures = Arc::clone(&self.failures);
        let checkpoint = state.is_some();
        let spawned = std::thread::Builder::new().name("session-save".into()).spawn(move || {
            let written =
                std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display())).and_then(|()| {
                    let run =
                        AnyRun::from_snapshot(origin.config, &snapshot, &origin.table, &origin.request, origin.spec)?
                            .with_kept(origin.kept);
                    let run = match state {
                        Some(state) => run.with_state(state)?,
                        None => run,
                    };
                    run.save(&path).map_err(|e| e.to_string())
                });
            if let Err(e) = written {
                log::warn!("cannot keep the {} run for the next session: {e}", lab.tab_name());
                if checkpoint {
                    failures.lock().unwrap_or_else(PoisonError::into_inner).push((lab, e));
                }
            }
        });
        match spawned {
            Ok(writer) => self.writers.push(writer),
            Err(e) => log::warn!("cannot start the session-save thread: {e}"),
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

#[cfg(test)]
mod tests {
    use super::parse_settings;
    use crate::Lab;
    use crate::models::flow::{FlowConfig, FlowInit};
    use crate::models::trainer::LrSchedule;
    use crate::train::runfile::RunConfig;

    /// Flow settings kept before the initial weights, Adam's epsilon, the rate schedule, the gradient clip and the
    /// weight average were choices come back with today's
    /// defaults; settings that chose them keep their choice.
    #[test]
    fn flow_settings_from_before_the_choice_get_todays_defaults() {
        let chosen = FlowConfig {
            init: FlowInit::Glorot,
            adam_epsilon: 1e-7,
            lr_schedule: LrSchedule::Cosine,
            clip_norm: None,
            weight_average: None,
            epochs: 7,
            ..FlowConfig::default()
        };
        let mut old = serde_json::to_value(&chosen).expect("json");
        let Some(RunConfig::Flow(kept)) = parse_settings(Lab::Flow, &old.to_string()) else { panic!("parses") };
        assert_eq!(kept, chosen);
        let fields = old.as_object_mut().expect("an object");
        fields.remove("init");
        fields.remove("adam_epsilon");
        fields.remove("lr_schedule");
        fields.remove("clip_norm");
        fields.remove("weight_average");
        let Some(RunConfig::Flow(upgraded)) = parse_settings(Lab::Flow, &old.to_string()) else { panic!("parses") };
        let defaults = FlowConfig::default();
        assert_eq!((upgraded.init, upgraded.adam_epsilon.to_bits()), (defaults.init, defaults.adam_epsilon.to_bits()));
        assert_eq!(upgraded.lr_schedule, LrSchedule::Constant, "today's default");
        assert_eq!(upgraded.clip_norm, Some(crate::models::flow::CLIP_NORM), "today's default");
        assert_eq!(upgraded.weight_average, Some(crate::models::flow::WEIGHT_AVERAGE), "today's default");
        assert_eq!(upgraded.epochs, 7, "the rest is the user's");
        assert!(parse_settings(Lab::Flow, "not json").is_none());
    }

    /// VAE settings kept before the weight average was a choice come back with their architecture's default (the
    /// average, for both since 2026-12-06); settings that chose, the average or none, keep their choice.
    #[test]
    fn vae_settings_from_before_the_weight_average_get_todays_default() {
        use crate::models::vae::{VaeConfig, WEIGHT_AVERAGE};
        for (chosen, before) in [
            (VaeConfig { weight_average: None, epochs: 7, ..VaeConfig::default() }, Some(WEIGHT_AVERAGE)),
            (VaeConfig { weight_average: None, epochs: 7, ..VaeConfig::course_conv() }, Some(WEIGHT_AVERAGE)),
            (VaeConfig { weight_average: Some(0.99), epochs: 7, ..VaeConfig::course_conv() }, Some(WEIGHT_AVERAGE)),
        ] {
            let mut old = serde_json::to_value(&chosen).expect("json");
            let Some(RunConfig::Vae(kept)) = parse_settings(Lab::Vae, &old.to_string()) else { panic!("parses") };
            assert_eq!(kept, chosen);
            old.as_object_mut().expect("an object").remove("weight_average");
            let Some(RunConfig::Vae(upgraded)) = parse_settings(Lab::Vae, &old.to_string()) else { panic!("parses") };
            assert_eq!(upgraded, VaeConfig { weight_average: before, ..chosen }, "today's default, the rest kept");
        }
        // A run file's settings from then read as what they trained with: the last step's weights.
        let mut old = serde_json::to_value(VaeConfig::default()).expect("json");
        old.as_object_mut().expect("an object").remove("weight_average");
        let read: VaeConfig = serde_json::from_value(old).expect("reads");
        assert_eq!(read.weight_average, None);
        assert!(parse_settings(Lab::Vae, "not json").is_none());
    }

    /// RealNVP settings clipped at norm 20, the clip the lab offered before its default moved to 40, come back
    /// clipped at today's norm; off stays off, and another flow's settings are left as they are.
    #[test]
    fn realnvp_settings_clipped_at_the_old_norm_get_todays_clip() {
        use crate::models::flow::{CLIP_NORM, FlowKind};
        let parse = |config: &FlowConfig| match parse_settings(Lab::Flow, &serde_json::to_string(config).expect("json"))
        {
            Some(RunConfig::Flow(c)) => c,
            other => panic!("parses: {other:?}"),
        };
        assert_ne!(CLIP_NORM.to_bits(), super::CLIP_NORM_BEFORE.to_bits(), "the default moved");
        let old = FlowConfig { clip_norm: Some(super::CLIP_NORM_BEFORE), epochs: 9, ..FlowConfig::default() };
        let upgraded = parse(&old);
        assert_eq!(upgraded.clip_norm, Some(CLIP_NORM));
        assert_eq!(upgraded, FlowConfig { clip_norm: Some(CLIP_NORM), ..old }, "nothing else changes");
        for kept in [
            FlowConfig { clip_norm: None, ..FlowConfig::default() },
            FlowConfig { clip_norm: Some(25.0), ..FlowConfig::default() },
            FlowConfig { clip_norm: Some(super::CLIP_NORM_BEFORE), ..FlowConfig::default_for(FlowKind::Maf) },
        ] {
            assert_eq!(parse(&kept), kept);
        }
    }
}
