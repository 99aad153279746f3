//! "Continue": a lab's run carried on exactly from its training state for more epochs, keeping its history, loss
//! curves and views. A run opened with "Open run…" or restored from the last session continues from the state its
//! file holds; a run trained here (paused or finished) from a checkpoint its worker takes first. Either way the
//! continued trainer is built on a new worker thread, never here.
//!
//! "Epochs to add" counts from the epoch the run stopped at: by default the epochs it had left, or, once it has done
//! them all, as many again as it was set to. A run stopped before its end continues at least to that end (the run
//! file's continuation only lengthens a run; pause it earlier to stop sooner).

use std::sync::Arc;
use std::time::Instant;

use crate::data::prepare::prepare;
use crate::train::runfile::AnyRun;
use crate::train::{Checkpoint, Command, RunSnapshot, TrainError, Trainer, TrainerFactory, Worker, WorkerState};
use crate::ui::count::count;
use crate::ui::lab_state::{LabState, RunOrigin, RunSource, SavedRun};
use crate::ui::message::Message;

/// Where a continued run starts from.
enum Source {
    /// An opened run's file.
    Saved(SavedRun),
    /// A checkpoint of a run trained here, with what it was started from.
    Checkpoint(Box<RunOrigin>, Arc<Checkpoint>),
}

/// The epochs a run at `snapshot` has left of those it was set to.
fn remaining(snapshot: &RunSnapshot) -> usize {
    snapshot.total_epochs.saturating_sub(snapshot.epoch)
}

/// The default of "Epochs to add" for a run at `snapshot`: the epochs it has left, else its own number of epochs.
#[must_use]
pub(crate) fn default_epochs_to_add(snapshot: &RunSnapshot) -> usize {
    match remaining(snapshot) {
        0 => snapshot.total_epochs.max(1),
        left => left,
    }
}

/// The snapshot "Continue" would carry on from: the opened run's, else the live run's latest.
fn continued_snapshot(state: &LabState) -> Option<&RunSnapshot> {
    state.saved_run.as_ref().map(|s| s.run.snapshot()).or(state.snapshot.as_ref())
}

/// Why `state`'s run cannot be continued now (a sentence), or `None` when "Continue" can go ahead.
#[must_use]
pub(crate) fn why_not(state: &LabState) -> Option<String> {
    if state.continue_asked.is_some() {
        return Some("Taking the run's checkpoint…".into());
    }
    if let Some(saved) = &state.saved_run {
        return saved.run.why_not_continued().map(|why| capitalised(&why));
    }
    if state.worker.is_none() || state.run_origin.is_none() {
        return Some("Train a model or open a run first.".into());
    }
    match state.worker_state {
        Some(WorkerState::Paused | WorkerState::Finished) => None,
        Some(WorkerState::Running) => Some("Pause the run or let it finish first.".into()),
        Some(WorkerState::Starting) => Some("The run is starting.".into()),
        _ => Some("The run has failed or stopped: there is no state to continue from.".into()),
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// True when `state`'s run stopped before its end and "Continue" can carry it on now (Space does then).
#[must_use]
pub(crate) fn carries_on(state: &LabState) -> bool {
    why_not(state).is_none() && continued_snapshot(state).is_some_and(|s| remaining(s) > 0)
}

/// The epochs "Continue" adds: the field's value, else its default, and at least to the run's end.
fn epochs_to_add(state: &LabState) -> usize {
    let snapshot = continued_snapshot(state);
    let (left, default) = snapshot.map_or((0, 1), |s| (remaining(s), default_epochs_to_add(s)));
    state.continue_epochs.unwrap_or(default).max(left.max(1))
}

/// Continues `state`'s run for the epochs "Epochs to add" holds, as the button does.
pub(crate) fn start_as_set(state: &mut LabState, ctx: egui::Context) {
    let add = epochs_to_add(state);
    start(state, ctx, add);
}

/// "Continue" and its "Epochs to add" field, under the run's buttons of `state`'s lab; a click continues the run
/// (from its file at once, or from a checkpoint the worker is asked for).
pub(crate) fn continue_ui(state: &mut LabState, ui: &mut egui::Ui) {
    if state.worker.is_none() && state.saved_run.is_none() {
        return;
    }
    let why = why_not(state);
    let snapshot = continued_snapshot(state).cloned();
    let (epoch, left, default) =
        snapshot.as_ref().map_or((0, 0, 1), |s| (s.epoch, remaining(s), default_epochs_to_add(s)));
    let mut add = epochs_to_add(state);
    let default_text = if left > 0 {
        format!(
            "By default the {} the run had left of its {}",
            count(left, "epoch"),
            snapshot.as_ref().map_or(0, |s| s.total_epochs)
        )
    } else {
        format!("By default as many again as the run was set to ({})", count(default, "epoch"))
    };
    let mut clicked = false;
    ui.horizontal_wrapped(|ui| {
        clicked = ui
            .add_enabled(why.is_none(), egui::Button::new("Continue"))
            .on_hover_text(format!(
                "Carry this run on exactly from where it stopped (epoch {epoch}) for the epochs to add, keeping its history, loss curves and views"
            ))
            .on_disabled_hover_text(format!("Cannot continue: {}", why.as_deref().unwrap_or_default()))
            .clicked();
        let label = ui.label("Epochs to add").id;
        let field = ui
            .add_enabled(why.is_none(), egui::DragValue::new(&mut add).range(left.max(1)..=1_000_000).speed(1))
            .labelled_by(label)
            .on_hover_text(format!(
                "Counted from epoch {epoch}. {default_text}; a run stopped before its end goes at least to its end (pause it to stop sooner)."
            ));
        if field.changed() {
            state.continue_epochs = Some(add);
        }
    });
    if clicked {
        start(state, ui.ctx().clone(), add);
    }
}

/// Continues `state`'s run for `add` epochs (counted from where it stopped): from its file at once, or, for a run
/// trained here, from the checkpoint its worker is asked for ([`from_checkpoint`] carries on when it comes).
pub(crate) fn start(state: &mut LabState, ctx: egui::Context, add: usize) {
    if let Some(why) = why_not(state) {
        state.message = Some(Message::error(format!("Cannot continue: {why}")));
        return;
    }
    if let Some(saved) = state.saved_run.clone() {
        let Some(origin) = state.run_origin.clone() else { return };
        spawn(state, ctx, origin, Source::Saved(saved), add);
    } else if let Some(worker) = &state.worker {
        worker.send(Command::Checkpoint);
        state.continue_asked = Some(add);
    }
}

/// The checkpoint asked for by [`start`] came (or could not be taken): the run continues from it.
pub(crate) fn from_checkpoint(state: &mut LabState, ctx: egui::Context, checkpoint: Result<Arc<Checkpoint>, String>) {
    let Some(add) = state.continue_asked.take() else { return };
    match (checkpoint, state.run_origin.clone()) {
        (Ok(checkpoint), Some(origin)) => {
            spawn(state, ctx, origin.clone(), Source::Checkpoint(Box::new(origin), checkpoint), add);
        }
        (Err(why), _) => state.message = Some(Message::error(format!("Cannot continue the run: {why}."))),
        (Ok(_), None) => {}
    }
}

/// The continued trainer from `source` (on the worker thread: a checkpoint's run is made and its data prepared
/// there), lengthened by `extra` epochs past the run's set number.
fn continued(source: Source, extra: usize) -> Result<Box<dyn Trainer>, TrainError> {
    match source {
        Source::Saved(saved) => saved.run.continued_trainer(&saved.prepared, extra),
        Source::Checkpoint(origin, checkpoint) => {
            let run =
                AnyRun::from_snapshot(origin.config, &checkpoint.snapshot, &origin.table, &origin.request, origin.spec)
                    .and_then(|run| run.with_state(Arc::clone(&checkpoint.state)))
                    .map_err(TrainError::Data)?;
            let prepared = Arc::new(run.prepare(&origin.table).map_err(TrainError::Data)?);
            run.continued_trainer(&prepared, extra)
        }
    }
}

/// Starts the worker that carries the run on from `source` for `add` epochs, in place of the lab's worker; the
/// history and views stay on show until it publishes the same history.
fn spawn(state: &mut LabState, ctx: egui::Context, origin: RunOrigin, source: Source, add: usize) {
    let snapshot = match &source {
        Source::Saved(saved) => saved.run.snapshot().clone(),
        Source::Checkpoint(_, checkpoint) => checkpoint.snapshot.clone(),
    };
    // The run file's continuation adds epochs past the run's set number: those left count towards `add`.
    let extra = add.saturating_sub(remaining(&snapshot));
    let total = snapshot.total_epochs.max(snapshot.epoch) + extra;
    let config = origin.config.with_epochs(total);
    let (fresh_config, table, spec) = (config.clone(), Arc::clone(&origin.table), origin.spec.clone());
    let mut source = Some(source);
    // Built once from the source; Reset later builds a fresh, untrained model of the same settings.
    let factory: TrainerFactory = Box::new(move || {
        if let Some(source) = source.take() {
            return continued(source, extra);
        }
        let data = Arc::new(prepare(&table, &spec).map_err(|e| TrainError::Data(e.to_string()))?);
        fresh_config.fresh_trainer(&data)
    });
    let name = format!("train-{}", state.lab.tab_name().to_lowercase());
    // Dropping the old worker (paused, finished or playing the file back) stops and joins it first.
    state.worker = None;
    match Worker::spawn(&name, factory, true, crate::ui::lab_page::training_repaint(ctx)) {
        Ok(worker) => {
            state.worker = Some(worker);
            state.worker_state = Some(WorkerState::Starting);
            state.run_origin = Some(RunOrigin { config, ..origin });
            state.run_source = RunSource::Started(Instant::now());
            state.saved_run = None;
            state.continue_epochs = None;
            state.message = Some(Message::note(format!(
                "Continuing the run from epoch {} for {}, to epoch {total}.",
                snapshot.epoch,
                count(total - snapshot.epoch, "epoch")
            )));
        }
        Err(e) => state.message = Some(Message::error(format!("cannot start the training thread: {e}"))),
    }
}
