//! The worker thread: one per run, owning its [`Trainer`].

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{
    Checkpoint, Command, EpochRecord, MODEL_VIEW_INTERVAL_SECS, ModelView, RunSnapshot, TrainError, Trainer,
    TrainerFactory, WorkerEvent,
};
use crate::data::job::panic_text;

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerState {
    /// Building the model.
    Starting,
    /// Training.
    Running,
    /// Waiting for a command, model kept.
    Paused,
    /// All epochs done.
    Finished,
    /// Building or a step failed; a reset may recover.
    Failed,
    /// The thread has ended.
    Stopped,
}

impl WorkerState {
    /// Text for the status bar.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "training",
            Self::Paused => "paused",
            Self::Finished => "finished",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
        }
    }
}

/// At most this many snapshots per second are published while running.
const SNAPSHOTS_PER_SECOND: f64 = 30.0;

/// A handle to a running worker thread. Dropping it stops the run and joins the thread.
pub struct Worker {
    commands: Sender<Command>,
    events: Receiver<WorkerEvent>,
    latest: Arc<Mutex<Option<RunSnapshot>>>,
    cancel: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts a named worker thread that builds its trainer with `factory`, then runs (`start_running`) or
    /// waits paused. `repaint` is called after each published snapshot or event.
    pub fn spawn(
        name: &str,
        factory: TrainerFactory,
        start_running: bool,
        repaint: impl Fn() + Send + 'static,
    ) -> std::io::Result<Self> {
        let (command_tx, command_rx) = channel();
        let (event_tx, event_rx) = channel();
        let latest = Arc::new(Mutex::new(None));
        let cancel = Arc::new(AtomicBool::new(false));
        let mut run = Run {
            factory,
            trainer: None,
            commands: command_rx,
            events: event_tx,
            latest: latest.clone(),
            cancel: cancel.clone(),
            repaint: Box::new(repaint),
            state: WorkerState::Starting,
            last_publish: Instant::now(),
            last_model: None,
        };
        let handle = std::thread::Builder::new().name(name.to_owned()).spawn(move || run.main(start_running))?;
        Ok(Self { commands: command_tx, events: event_rx, latest, cancel, handle: Some(handle) })
    }

    /// Sends a command; ignored if the thread has already ended.
    pub fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// Events since the last call, at most `max` of them. Never blocks.
    #[must_use]
    pub fn drain_events(&self, max: usize) -> Vec<WorkerEvent> {
        let mut out = Vec::new();
        while out.len() < max {
            match self.events.try_recv() {
                Ok(e) => out.push(e),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        out
    }

    /// Waits up to `timeout` for the next event (for the CLI, tests and the window closing, never a frame).
    #[must_use]
    pub fn wait_event(&self, timeout: Duration) -> Option<WorkerEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// The latest published snapshot.
    #[must_use]
    pub fn snapshot(&self) -> Option<RunSnapshot> {
        self.latest.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The model copy of the latest published snapshot (without copying the run's history).
    #[must_use]
    pub fn model(&self) -> Option<ModelView> {
        self.latest.lock().unwrap_or_else(PoisonError::into_inner).as_ref().and_then(|s| s.model.clone())
    }

    /// True once the thread has ended.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        let _ = self.commands.send(Command::Stop);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// The state owned by the worker thread.
struct Run {
    factory: TrainerFactory,
    trainer: Option<Box<dyn Trainer>>,
    commands: Receiver<Command>,
    events: Sender<WorkerEvent>,
    latest: Arc<Mutex<Option<RunSnapshot>>>,
    cancel: Arc<AtomicBool>,
    repaint: Box<dyn Fn() + Send>,
    state: WorkerState,
    last_publish: Instant,
    /// The model copy last published and when it was taken.
    last_model: Option<(ModelView, Instant)>,
}

impl Run {
    fn main(&mut self, start_running: bool) {
        self.build();
        if let Some(state) = self.built_state(start_running) {
            self.set_state(state);
        }
        loop {
            if self.cancel.load(Ordering::Relaxed) {
                break;
            }
            let command = if self.state == WorkerState::Running {
                match self.commands.try_recv() {
                    Ok(c) => Some(c),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => break,
                }
            } else {
                match self.commands.recv() {
                    Ok(c) => Some(c),
                    Err(_) => break,
                }
            };
            match command {
                Some(Command::Stop) => break,
                Some(Command::Pause) if self.state == WorkerState::Running => {
                    self.publish(true);
                    self.set_state(WorkerState::Paused);
                }
                Some(Command::Resume) if self.can_train() => self.set_state(WorkerState::Running),
                Some(Command::Step) if self.can_train() => {
                    self.step_once(true);
                    if self.state == WorkerState::Running {
                        self.set_state(WorkerState::Paused);
                    }
                }
                Some(Command::Reset) => {
                    self.trainer = None;
                    self.last_model = None;
                    self.build();
                    if let Some(state) = self.built_state(false) {
                        self.set_state(state);
                    }
                }
                Some(Command::Checkpoint) => self.checkpoint(),
                Some(Command::SetLearningRate(lr)) => {
                    if let Some(t) = self.trainer.as_mut() {
                        t.set_learning_rate(lr);
                    }
                    self.publish(true);
                }
                Some(_) => {}
                None => self.step_once(false),
            }
        }
        self.set_state(WorkerState::Stopped);
    }

    /// The state a freshly built trainer starts in (`None` when the build failed): running or paused as asked, or
    /// finished when it has nothing left to train (a saved run shown as it was), as there is then nothing to pause,
    /// resume or step.
    fn built_state(&self, start_running: bool) -> Option<WorkerState> {
        let trainer = self.trainer.as_ref()?;
        Some(if trainer.finished() {
            WorkerState::Finished
        } else if start_running {
            WorkerState::Running
        } else {
            WorkerState::Paused
        })
    }

    fn can_train(&self) -> bool {
        matches!(self.state, WorkerState::Paused | WorkerState::Running)
    }

    fn build(&mut self) {
        self.set_state(WorkerState::Starting);
        match catch_unwind(AssertUnwindSafe(|| (self.factory)())) {
            Ok(Ok(trainer)) => {
                self.trainer = Some(trainer);
                self.publish(true);
                self.emit(WorkerEvent::Ready);
            }
            Ok(Err(e)) => self.fail(format!("cannot build the model: {e}")),
            Err(panic) => self.fail(format!("the model builder panicked: {}", panic_text(&*panic))),
        }
    }

    /// One step; `publish_now` bypasses the snapshot rate limit (single steps are shown at once).
    fn step_once(&mut self, publish_now: bool) {
        let Some(trainer) = self.trainer.as_mut() else {
            return;
        };
        let epochs_before = trainer.epochs_done();
        match catch_unwind(AssertUnwindSafe(|| trainer.step())) {
            Ok(Ok(())) => {
                let epochs_after = trainer.epochs_done();
                let finished = trainer.finished();
                let epoch_ended = epochs_after > epochs_before;
                let force = publish_now || epoch_ended || finished;
                // A snapshot copies the run's history: taken only when it will be published.
                if !force && self.last_publish.elapsed().as_secs_f64() < 1.0 / SNAPSHOTS_PER_SECOND {
                    return;
                }
                let snapshot = trainer.snapshot();
                let record = snapshot.history.last().cloned().filter(|_| epoch_ended);
                let lowest = record.is_some() && at_lowest_held_out(trainer.held_out_metric(), &snapshot.history);
                let snapshot_step = snapshot.step;
                // Publish first, so whoever reacts to the events below already sees the final snapshot. An epoch's
                // end is published at once, but its model copy only as often as the views take one (a BNN ends
                // dozens of epochs a second).
                self.publish_snapshot(snapshot, force, publish_now || finished);
                if let Some(record) = record {
                    if lowest {
                        self.send_lowest(record.epoch, snapshot_step);
                    }
                    self.emit(WorkerEvent::EpochDone(record.clone()));
                    if finished {
                        self.emit(WorkerEvent::Finished(record));
                    }
                }
                if finished {
                    self.set_state(WorkerState::Finished);
                }
            }
            Ok(Err(TrainError::NonFinite { location, step })) => {
                // The guard may have gone back to earlier parameters under the same step number: the copy
                // taken at this step shows the ones that blew up, so take a fresh one.
                self.last_model = None;
                self.publish(true);
                self.emit(WorkerEvent::NonFinite { location, step });
                self.set_state(WorkerState::Paused);
            }
            Ok(Err(e)) => self.fail(format!("training stopped: {e}")),
            Err(panic) => {
                // The trainer may be half-updated after a panic: drop it; a reset builds a fresh one.
                self.trainer = None;
                self.fail(format!("the training worker panicked: {}", panic_text(&*panic)));
            }
        }
    }

    /// Takes a checkpoint between two steps and hands it out as an event: a copy of the state and of the model
    /// (a few copies of the parameters, far less than a step), never written here.
    fn checkpoint(&mut self) {
        let Some(trainer) = self.trainer.as_ref() else {
            self.emit(WorkerEvent::CheckpointFailed("the run has no model yet".into()));
            return;
        };
        let taken = catch_unwind(AssertUnwindSafe(|| {
            let state = trainer.train_state()?;
            let model = trainer.model_view();
            Ok::<_, TrainError>(Checkpoint {
                snapshot: RunSnapshot { model, ..trainer.snapshot() },
                state: Arc::new(state),
            })
        }));
        match taken {
            Ok(Ok(checkpoint)) => self.emit(WorkerEvent::Checkpoint(Arc::new(checkpoint))),
            Ok(Err(e)) => self.emit(WorkerEvent::CheckpointFailed(e.to_string())),
            Err(panic) => {
                self.emit(WorkerEvent::CheckpointFailed(format!("taking it panicked: {}", panic_text(&*panic))));
            }
        }
    }

    /// Sends the model of the epoch that just ended at the lowest held-out figure so far: the copy just published
    /// where it is of this step, else a fresh one.
    fn send_lowest(&mut self, epoch: usize, step: u64) {
        let published = self.last_model.as_ref().map(|(m, _)| m).filter(|m| m.step() == step).cloned();
        if let Some(view) = published.or_else(|| self.trainer.as_ref().and_then(|t| t.model_view())) {
            self.emit(WorkerEvent::LowestHeldOut { epoch, view });
        }
    }

    fn publish(&mut self, force: bool) {
        if let Some(snapshot) = self.trainer.as_ref().map(|t| t.snapshot()) {
            self.publish_snapshot(snapshot, force, force);
        }
    }

    /// Publishes `snapshot` (at most [`SNAPSHOTS_PER_SECOND`] unless `force`) with a copy of the model at most
    /// every [`MODEL_VIEW_INTERVAL_SECS`] (unless `force_model`).
    fn publish_snapshot(&mut self, mut snapshot: RunSnapshot, force: bool, force_model: bool) {
        if !force && self.last_publish.elapsed().as_secs_f64() < 1.0 / SNAPSHOTS_PER_SECOND {
            return;
        }
        let fresh = self.last_model.as_ref().is_some_and(|(m, at)| {
            m.step() == snapshot.step || (!force_model && at.elapsed().as_secs_f64() < MODEL_VIEW_INTERVAL_SECS)
        });
        if !fresh && let Some(view) = self.trainer.as_ref().and_then(|t| t.model_view()) {
            self.last_model = Some((view, Instant::now()));
        }
        snapshot.model = self.last_model.as_ref().map(|(m, _)| m.clone());
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) = Some(snapshot);
        self.last_publish = Instant::now();
        (self.repaint)();
    }

    fn fail(&mut self, message: String) {
        log::error!("{message}");
        self.emit(WorkerEvent::Error(message));
        self.set_state(WorkerState::Failed);
    }

    fn set_state(&mut self, state: WorkerState) {
        if self.state != state || state == WorkerState::Starting {
            self.state = state;
            self.emit(WorkerEvent::State(state));
        }
    }

    fn emit(&self, event: WorkerEvent) {
        let _ = self.events.send(event);
        (self.repaint)();
    }
}

/// True where the last of `history`'s epochs is the lowest of its held-out `metric` so far, as
/// [`crate::models::trainer::lowest_held_out`] finds it (averaged over the epochs to each); false without a metric.
fn at_lowest_held_out(metric: Option<&str>, history: &[EpochRecord]) -> bool {
    let Some(metric) = metric else { return false };
    let values: Option<Vec<f64>> = history.iter().map(|r| r.get(metric)).collect();
    values.is_some_and(|v| !v.is_empty() && crate::models::trainer::lowest_held_out(&v) == Some(v.len() - 1))
}
