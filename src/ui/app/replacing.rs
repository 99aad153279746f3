//! Replacing a lab's run (Train, New model, Reset, other data, an opened run), asking first in a modal window when
//! the run has trained a while (`discard.rs` says when and what), and carrying out the answer: discard the run, keep
//! it, or save it first and go ahead once it is saved.

use std::time::Instant;

use crate::Lab;
use crate::train::{Command, WorkerState};
use crate::ui::app::BayesExplorerApp;
use crate::ui::discard::{Answer, PendingDiscard, Replacement, SaveFirst, keep_in_comparison, worth_asking};
use crate::ui::lab_data::LabData;
use crate::ui::lab_state::RunSource;
use crate::ui::message::Message;

impl BayesExplorerApp {
    /// Replaces `lab`'s run with `replacement`, asking first when the run is [`worth_asking`] about.
    pub(super) fn replace_run(&mut self, lab: Lab, replacement: Replacement) {
        // Settings that cannot train are refused before the question: nothing would replace the run.
        if matches!(replacement, Replacement::Train | Replacement::NewModel)
            && let Some(why) = self.lab(lab).settings_refusal()
        {
            self.lab_mut(lab).message = Some(Message::error(format!("Cannot train: {why}")));
            return;
        }
        if worth_asking(self.lab(lab)) {
            self.pending_discards.push(PendingDiscard { lab, replacement });
        } else {
            self.carry_out(lab, replacement);
        }
    }

    /// Data that would replace `lab`'s run: `Some(data)` to put it in now, or `None` when the user is asked first
    /// (the data then waits with the question).
    pub(super) fn data_or_ask(&mut self, lab: Lab, data: LabData) -> Option<LabData> {
        if worth_asking(self.lab(lab)) {
            self.pending_discards.push(PendingDiscard { lab, replacement: Replacement::Data(Box::new(data)) });
            None
        } else {
            Some(data)
        }
    }

    fn carry_out(&mut self, lab: Lab, replacement: Replacement) {
        let ctx = self.ctx.clone();
        match replacement {
            Replacement::Train => crate::ui::lab::start_run(self.lab_mut(lab), ctx, true),
            Replacement::NewModel => crate::ui::lab::start_run(self.lab_mut(lab), ctx, false),
            Replacement::Reset => {
                let state = self.lab_mut(lab);
                state.forget_continuation();
                if let Some(w) = &state.worker {
                    w.send(Command::Reset);
                    state.run_source = RunSource::Started(Instant::now());
                }
            }
            Replacement::Data(data) => self.apply_data(lab, *data),
            Replacement::Run(opened) => self.apply_opened_run(*opened, false),
        }
    }

    /// The user agreed: a BNN run stopped before its end joins the comparison, then the replacement goes ahead.
    fn discard_and_replace(&mut self, lab: Lab, replacement: Replacement) {
        let state = self.lab_mut(lab);
        keep_in_comparison(state);
        // The question was answered: the data or run that follows is put in without asking again.
        if matches!(replacement, Replacement::Data(_) | Replacement::Run(_)) {
            state.worker = None;
            state.worker_state = None;
            state.snapshot = None;
            state.run_origin = None;
            state.run_source = RunSource::default();
        }
        self.carry_out(lab, replacement);
    }

    /// Draws the open question, if any (called every frame, after the page).
    pub(super) fn discard_dialog_ui(&mut self, ctx: &egui::Context) {
        let Some(pending) = self.pending_discards.first() else { return };
        let lab = pending.lab;
        if !worth_asking(self.lab(lab)) {
            // The run went meanwhile (another replacement, a failed start): nothing to ask about.
            let pending = self.pending_discards.remove(0);
            self.carry_out(pending.lab, pending.replacement);
            return;
        }
        let files_busy = self.run_file_busy() || self.save_first.is_some();
        let can_save = crate::ui::discard::can_save_first(self.lab(lab), files_busy);
        let Some(answer) = crate::ui::discard::ask(ctx, self.lab(lab), &pending.replacement, can_save) else {
            return;
        };
        let pending = self.pending_discards.remove(0);
        match answer {
            Answer::Discard => self.discard_and_replace(pending.lab, pending.replacement),
            Answer::SaveFirst => {
                // Saved from a paused run (a checkpoint of where it stopped); the save starts once it has paused.
                let state = self.lab(lab);
                let paused = state.worker_state == Some(WorkerState::Running);
                if paused && let Some(worker) = &state.worker {
                    worker.send(Command::Pause);
                }
                self.save_first = Some(SaveFirst { pending, paused, saving: false });
            }
            Answer::Keep => {
                if let Replacement::Data(data) = &pending.replacement {
                    self.lab_mut(lab).message = Some(Message::note(format!(
                        "Kept the run: {} was not loaded. Load it again to replace the run.",
                        data.request.describe()
                    )));
                }
            }
        }
    }

    /// Carries on the question's "Save run first…": once the run has paused, saves it (where [`Self::save_runs_to`]
    /// says, else where the save dialog says). A save refused at once keeps the run.
    pub(super) fn poll_save_first(&mut self) {
        let Some(first) = &self.save_first else { return };
        let lab = first.pending.lab;
        match self.lab(lab).worker_state {
            _ if first.saving => return,
            // Pausing.
            Some(WorkerState::Running | WorkerState::Starting) => return,
            Some(WorkerState::Paused | WorkerState::Finished) => {}
            // The worker failed or ended meanwhile: nothing to save from; the run stays as it is.
            _ => {
                if let Some(first) = self.save_first.take() {
                    self.lab_mut(lab).message = Some(first.kept(None));
                }
                return;
            }
        }
        let path = self.run_path(lab);
        let before = self.lab(lab).message.clone();
        self.save_run(lab, path);
        if self.run_file_busy() {
            if let Some(first) = &mut self.save_first {
                first.saving = true;
            }
        } else if let Some(first) = self.save_first.take() {
            // Refused (`save_run` says why in the lab's message): the run stays.
            let said = self.lab(lab).message.clone().filter(|m| Some(m) != before.as_ref());
            self.lab_mut(lab).message = Some(first.kept(said.as_ref()));
        }
    }

    /// The save the question's "Save run first…" started for `lab` has ended, `saved` or not (cancelled, failed;
    /// `said_why`: the lab's message says why). Saved, the replacement goes ahead, the lab's message naming the file
    /// before what the replacement says; not saved, the run stays and the message says what did not happen.
    pub(super) fn saved_first(&mut self, lab: Lab, saved: bool, said_why: bool) {
        let Some(first) = self.save_first.take_if(|f| f.saving && f.pending.lab == lab) else { return };
        if !saved {
            let why = self.lab(lab).message.clone().filter(|_| said_why);
            self.lab_mut(lab).message = Some(first.kept(why.as_ref()));
            return;
        }
        let note = self.lab(lab).message.clone();
        self.discard_and_replace(lab, first.pending.replacement);
        let state = self.lab_mut(lab);
        state.message = match (note, state.message.take()) {
            (Some(note), Some(after)) if after != note => {
                Some(Message { text: format!("{} {}", note.text, after.text), ..after })
            }
            (note, after) => after.or(note),
        };
    }
}
