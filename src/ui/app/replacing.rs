//! Replacing a lab's run (Train, New model, Reset, other data, an opened run), asking first in a modal window when
//! the run has trained a while (`discard.rs` says when and what), and carrying out the answer.

use std::time::Instant;

use crate::Lab;
use crate::train::Command;
use crate::ui::app::BayesExplorerApp;
use crate::ui::discard::{PendingDiscard, Replacement, keep_in_comparison, worth_asking};
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
        let Some(discard) = crate::ui::discard::ask(ctx, self.lab(lab), &pending.replacement) else { return };
        let pending = self.pending_discards.remove(0);
        if discard {
            self.discard_and_replace(pending.lab, pending.replacement);
        } else if let Replacement::Data(data) = &pending.replacement {
            self.lab_mut(lab).message = Some(Message::note(format!(
                "Kept the run: {} was not loaded. Load it again to replace the run.",
                data.request.describe()
            )));
        }
    }
}
