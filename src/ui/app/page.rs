//! A lab's page as the window lays it out: the side panel (the lab's name, its dataset, training and run-file
//! sections) and the central panel (the message area, then the views), carrying out at once what each section
//! asks of the app, in the order the sections are drawn.

use crate::Lab;
use crate::ui::app::BayesExplorerApp;
use crate::ui::file_job::RunFileJob;
use crate::ui::lab::DatasetAsk;
use crate::ui::lab_state::LoadTarget;
use crate::ui::message::MessageAnswer;
use crate::ui::run_file::RunFileAsk;
use crate::ui::tour::ControlGroup;

/// The side panel's width until the user drags its edge: room for the widest lab's settings (the VAE's), so that
/// every lab's panel is as wide and switching tabs moves nothing.
const SIDE_PANEL_WIDTH: f32 = 360.0;

impl BayesExplorerApp {
    /// Draws the page of `lab`.
    pub(super) fn lab_page_ui(&mut self, lab: Lab, ui: &mut egui::Ui) {
        // Presenter mode hides the settings: its bar at the top keeps the run's buttons. A tour's step may hide
        // some of the panel's groups, or all of them.
        let hidden = self.tour_hidden_groups(lab);
        if !self.settings.presenter.presenting && !ControlGroup::ALL.iter().all(|g| hidden.contains(g)) {
            self.side_panel_ui(lab, &hidden, ui);
        }
        egui::CentralPanel::default().show(ui, |ui| {
            let answer = self.lab(lab).message.as_ref().and_then(|m| crate::ui::message::message_ui(m, ui));
            match answer {
                Some(MessageAnswer::RetryDropping(retry)) => {
                    self.start_load(lab, retry, LoadTarget::Preview);
                    self.lab_mut(lab).message = None;
                }
                Some(MessageAnswer::Dismiss) => self.lab_mut(lab).message = None,
                None => {}
            }
            let presenting = self.settings.presenter.presenting;
            crate::ui::lab::views_ui(self.lab_mut(lab), presenting, ui);
        });
        // An "Export data…" button on the page asks here, where the app's file thread and message area are at hand.
        self.start_requested_export(lab);
    }

    /// The side panel of `lab`: its name, dataset, training and run-file sections, less the `hidden` ones.
    fn side_panel_ui(&mut self, lab: Lab, hidden: &[ControlGroup], ui: &mut egui::Ui) {
        egui::Panel::left(("lab-side", lab)).default_size(SIDE_PANEL_WIDTH).resizable(true).show(ui, |ui| {
            // Scrolls both ways inside the panel's width: a wider line (a long metric's name, a run's numbers)
            // scrolls rather than widen the panel, which would move the whole page (and keep the new width).
            egui::ScrollArea::both().auto_shrink([false, true]).show(ui, |ui| {
                ui.heading(lab.title());
                ui.add_space(4.0);
                let state = self.labs.iter_mut().find(|l| l.lab == lab).expect("every lab has a state");
                if !hidden.contains(&ControlGroup::Dataset) {
                    match crate::ui::lab::dataset_ui(state, &mut self.path_text, ui) {
                        Some(DatasetAsk::Dialog) => self.open_file_dialog(),
                        Some(DatasetAsk::File(path)) => self.load_file(path),
                        Some(DatasetAsk::Load(request)) => self.start_load(lab, request, LoadTarget::Apply(None)),
                        None => {}
                    }
                    ui.separator();
                }
                if !hidden.contains(&ControlGroup::Training) {
                    let show_settings = !hidden.contains(&ControlGroup::Settings);
                    if let Some(replacement) = crate::ui::lab::training_ui(self.lab_mut(lab), show_settings, ui) {
                        self.replace_run(lab, replacement);
                    }
                    ui.separator();
                }
                if !hidden.contains(&ControlGroup::Files) {
                    let busy = self.run_file_job.as_ref().map(RunFileJob::what);
                    match crate::ui::run_file::run_file_ui(self.lab(lab), busy, ui) {
                        Some(RunFileAsk::Save) => self.save_run(lab, self.run_path(lab)),
                        Some(RunFileAsk::Open) => self.open_run(None),
                        None => {}
                    }
                }
            });
        });
    }
}
