//! Asking before a trained run is thrown away.
//!
//! A lab's run (its model, figures and loss curves) is replaced by Train, New model and Reset, by loading other
//! data into the lab (a built-in set, a generated one, a CSV file) and by opening a run file. When the run on show
//! has trained for more than [`ASK_AFTER_SECS`] seconds, or is the last session's model, each of these first asks
//! in a modal window, naming what would be lost and what replaces it; the run goes on training while
//! the question is open. A run that trained only a moment, an untrained new model, or a run opened from a file
//! (which the file keeps) is replaced at once.
//!
//! Asking, rather than discarding at once with an Undo, because a student needs to know at the moment of the
//! click that the figures they are looking at are about to go: an Undo that disappears after a while is easily
//! missed, and would have to keep a second model (and its thread) alive out of sight.
//!
//! As a desktop program's question about unsaved work does, it offers to save first: "Save run first…" pauses a
//! run that trains, saves it as "Save run…" does (the save dialog asks where), and then goes ahead; a save cancelled
//! or failed keeps the run (paused) and says what did not happen.
//!
//! A BNN run discarded before its last epoch is kept in Compare runs, marked with the epoch it stopped at
//! (finished runs are already there).
//!
//! Here: what would replace a run, when to ask, and the question; the app asks and carries out the answer
//! (`app/replacing.rs`).

use crate::Lab;
use crate::train::WorkerState;
use crate::train::runfile::OpenedRun;
use crate::ui::lab_data::LabData;
use crate::ui::lab_state::{LabState, RunSource};

/// A run that has trained (taken steps) for at least this long since it started is not discarded without asking.
pub const ASK_AFTER_SECS: f64 = 3.0;

/// What would replace a lab's run.
pub(crate) enum Replacement {
    /// A new run, training at once ("Train", and the comparison page's buttons).
    Train,
    /// A new untrained model, paused ("New model").
    NewModel,
    /// The same run's model, rebuilt untrained ("Reset").
    Reset,
    /// Other data for the lab (a load finished or a preview accepted); the run cannot stay with it.
    Data(Box<LabData>),
    /// A run opened from a file.
    Run(Box<OpenedRun>),
}

impl Replacement {
    /// The confirming button's text.
    fn button(&self) -> &'static str {
        match self {
            Self::Train => "Discard and train",
            Self::NewModel => "Discard and build a new model",
            Self::Reset => "Discard and reset",
            Self::Data(_) => "Discard and load the data",
            Self::Run(_) => "Discard and open the run",
        }
    }

    /// What did not happen when the run was kept instead (after a "Save run first…" that saved nothing), in words.
    fn not_done(&self) -> String {
        match self {
            Self::Train => "no new run was started".to_owned(),
            Self::NewModel => "no new model was built".to_owned(),
            Self::Reset => "it was not reset".to_owned(),
            Self::Data(data) => format!("{} was not loaded", data.request.describe()),
            Self::Run(opened) => format!("{} was not opened", opened.path.display()),
        }
    }

    /// What happens to the lab when the user agrees, in words.
    fn describe(&self) -> String {
        match self {
            Self::Train => "Train starts a new run from scratch".to_owned(),
            Self::NewModel => "New model builds an untrained one".to_owned(),
            Self::Reset => "Reset rebuilds the model untrained".to_owned(),
            Self::Data(data) => format!("Loading {} replaces the data it was trained on", data.request.describe()),
            Self::Run(opened) => format!("Opening {} replaces it", opened.path.display()),
        }
    }
}

/// A replacement waiting for the user's answer.
pub(crate) struct PendingDiscard {
    /// The lab whose run it replaces.
    pub lab: Lab,
    /// What replaces the run.
    pub replacement: Replacement,
}

/// The user's answer to the question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Discard the run; the replacement goes ahead.
    Discard,
    /// Keep the run; the replacement is dropped.
    Keep,
    /// Save the run to a file first (pausing it if it trains); the replacement goes ahead once it is saved, and is
    /// dropped if it is not (the dialog cancelled, the file not written).
    SaveFirst,
}

/// A replacement waiting for the run it replaces to be saved (the question's "Save run first…").
pub(crate) struct SaveFirst {
    pub pending: PendingDiscard,
    /// The run was training, and was paused to be saved.
    pub paused: bool,
    /// The save has started (the run had paused); its outcome decides.
    pub saving: bool,
}

impl SaveFirst {
    /// The lab's message once the save saved nothing (`why`, if it said why): the run is kept, and what did not
    /// happen. Kept as an error where the save failed.
    pub(crate) fn kept(&self, why: Option<&crate::ui::message::Message>) -> crate::ui::message::Message {
        use crate::ui::message::Message;
        let not_done = self.pending.replacement.not_done();
        let kept = if self.paused { "the run was kept (paused)" } else { "the run was kept" };
        match why {
            Some(m) if m.is_error() || m.is_warning() => {
                Message { text: format!("{} Not saved: {kept}, and {not_done}.", m.text), ..m.clone() }
            }
            _ => Message::note(format!("Not saved: {kept}, and {not_done}.")),
        }
    }
}

/// True when `state`'s run is worth asking about before it is replaced: it has taken steps, and it either started
/// here [`ASK_AFTER_SECS`] or more ago, or is the last session's model. A run opened from a file is in that file.
#[must_use]
pub(crate) fn worth_asking(state: &LabState) -> bool {
    let trained = state.snapshot.as_ref().is_some_and(|s| s.step > 0);
    if state.worker.is_none() || !trained {
        return false;
    }
    match state.run_source {
        RunSource::LastSession => true,
        RunSource::Started(at) => at.elapsed().as_secs_f64() >= ASK_AFTER_SECS,
        RunSource::File => false,
    }
}

/// Whether "Save run first…" can save `state`'s run now: it has what a run file needs and is training (to be
/// paused), paused or finished (a failed or ended worker has no checkpoint to give); `files_busy`: another file is
/// being written or read, or another save is waiting.
pub(crate) fn can_save_first(state: &LabState, files_busy: bool) -> bool {
    let settled =
        matches!(state.worker_state, Some(WorkerState::Running | WorkerState::Paused | WorkerState::Finished));
    state.run_origin.is_some() && settled && !files_busy
}

/// The question about `state`'s run being replaced by `replacement`, in a modal window: `Some(answer)` once the user
/// answers (closing the window keeps the run), `None` while it stays open. `can_save`: whether "Save run first…"
/// can save the run now (see [`can_save_first`]).
pub(crate) fn ask(ctx: &egui::Context, state: &LabState, replacement: &Replacement, can_save: bool) -> Option<Answer> {
    let question = question(state, replacement);
    let button = replacement.button();
    let mut answer = None;
    let modal = egui::Modal::new(egui::Id::unique("discard-run")).show(ctx, |ui| {
        ui.set_max_width(440.0);
        ui.heading(format!("Discard the {} run?", state.lab.tab_name()));
        ui.add_space(6.0);
        ui.label(question);
        ui.add_space(10.0);
        ui.horizontal(|ui| {
            let then = button.trim_start_matches("Discard and ");
            if ui
                .add_enabled(can_save, egui::Button::new("Save run first…"))
                .on_hover_text(format!(
                    "Save the run to a file (pausing it while it trains), then {then}; if it is not saved, the run stays"
                ))
                .on_disabled_hover_text("A file is being written or read, or the run has nothing to save yet")
                .clicked()
            {
                answer = Some(Answer::SaveFirst);
            }
            if ui.button(button).clicked() {
                answer = Some(Answer::Discard);
            }
            if ui.button("Keep the run").clicked() {
                answer = Some(Answer::Keep);
            }
        });
    });
    if answer.is_none() && modal.should_close() {
        answer = Some(Answer::Keep);
    }
    answer
}

/// The question's text: the run, how far it got, what replaces it and what of it stays.
fn question(state: &LabState, replacement: &Replacement) -> String {
    let dataset = state.run_origin.as_ref().map(|o| o.request.describe());
    let on = dataset.map(|d| format!(" on {d}")).unwrap_or_default();
    let progress = state.snapshot.as_ref().map_or_else(String::new, |s| {
        format!(
            " has trained for {} of {} ({})",
            crate::data::table::grouped(s.epoch),
            crate::ui::count::count(s.total_epochs, "epoch"),
            crate::ui::count::count(s.step, "step")
        )
    });
    let stays = if state.lab == Lab::Bnn && state.snapshot.as_ref().is_some_and(|s| s.epoch > 0) {
        if state.worker_state == Some(WorkerState::Finished) {
            " Its figures stay in Compare runs."
        } else {
            " Its figures stay in Compare runs, marked with the epoch it stopped at."
        }
    } else {
        ""
    };
    format!(
        "The {} run{on}{progress}. {}: this run's model, figures and loss curves will be gone.{stays} \"Save run first…\" keeps it in a file, then goes ahead.",
        state.lab.tab_name(),
        replacement.describe(),
    )
}

/// A BNN run discarded before its last epoch joins the comparison (a finished one is there already).
pub(crate) fn keep_in_comparison(state: &mut LabState) {
    if state.lab != Lab::Bnn {
        return;
    }
    let Some(snapshot) = &state.snapshot else { return };
    let Some(record) = snapshot.history.last() else { return };
    let dataset = state.run_origin.as_ref().map(|o| o.request.describe()).unwrap_or_default();
    let stopped_at = (snapshot.epoch < snapshot.total_epochs).then_some(snapshot.epoch);
    state.bnn.keep_run(record, &dataset, stopped_at);
}
