//! The app's side of the guided tours (`tour.rs`): the Lecture menu, the first launch's welcome, the tour's panel
//! docked under the page, carrying out a step's **Do it** and answering its check from the labs' state each frame.

use crate::Lab;
use crate::train::{Command, WorkerState};
use crate::ui::app::BayesExplorerApp;
use crate::ui::flow::{Direction, FlowPage};
use crate::ui::lab_state::RunSource;
use crate::ui::message::Message;
use crate::ui::tour::{ControlGroup, Tour, TourAction, TourAsk, TourCheck, TourState};

impl BayesExplorerApp {
    /// Adds the tours found in `folder` (a lecturer's own) to the Lecture menu, and the files that could not be read.
    pub fn add_tours_from(&mut self, folder: &std::path::Path) {
        let (tours, errors) = crate::ui::tour::read_folder(folder);
        self.tours.extend(tours);
        self.tour_errors.extend(errors);
        self.tour_folder = Some(folder.to_path_buf());
    }

    /// The tours the Lecture menu offers: the built-in ones, then a lecturer's own.
    #[must_use]
    pub fn tours(&self) -> &[Tour] {
        &self.tours
    }

    /// The tour under way, if any (for tests).
    #[must_use]
    pub fn tour(&self) -> Option<&TourState> {
        self.tour.as_ref()
    }

    /// Starts `tour` at its first step, on its lab's page.
    pub fn start_tour(&mut self, tour: Tour) {
        self.settings.tab = tour.lab;
        self.tour = Some(TourState::new(tour));
        self.welcome_open = false;
    }

    /// Opens the welcome (the first launch does).
    pub fn open_welcome(&mut self) {
        self.welcome_open = true;
    }

    /// True while the welcome is open.
    #[must_use]
    pub fn welcome_is_open(&self) -> bool {
        self.welcome_open
    }

    /// The side panel's groups the tour's step on show hides on `lab`'s page (none without a tour of it).
    pub(super) fn tour_hidden_groups(&self, lab: Lab) -> Vec<ControlGroup> {
        self.tour.as_ref().filter(|t| t.tour.lab == lab).map(|t| t.current().hidden.clone()).unwrap_or_default()
    }

    /// The Lecture menu's contents: each tour, the files that could not be read, where a lecturer's own go.
    pub(super) fn lecture_menu_ui(&mut self, ui: &mut egui::Ui) {
        let mut start = None;
        for (i, tour) in self.tours.iter().enumerate() {
            let text = format!("Tour: {} ({} steps)", tour.title, tour.steps.len());
            if ui.button(text).on_hover_text(format!("The {} lab, from {}", tour.lab.tab_name(), tour.source)).clicked()
            {
                start = Some(i);
            }
        }
        for error in &self.tour_errors {
            ui.label(egui::RichText::new(format!("Not read: {error}")).color(ui.visuals().warn_fg_color));
        }
        ui.separator();
        let folder = self
            .tour_folder
            .as_ref()
            .map_or_else(|| "the tours folder beside the app's settings".to_owned(), |f| f.display().to_string());
        ui.label(egui::RichText::new(format!("Your own tours: Markdown files in {folder} (see the README)")).weak());
        if ui.button("Welcome…").clicked() {
            self.welcome_open = true;
        }
        if let Some(i) = start {
            let tour = self.tours[i].clone();
            self.start_tour(tour);
            ui.close();
        }
    }

    /// The first launch's welcome: what the app is, and a tour of each lab.
    pub(super) fn welcome_ui(&mut self, ctx: &egui::Context) {
        if !self.welcome_open {
            return;
        }
        let mut start = None;
        let mut close = false;
        egui::Window::new("Welcome to bayes-explorer")
            .collapsible(false)
            .resizable(false)
            .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
            .show(ctx, |ui| {
                ui.set_max_width(520.0);
                ui.label(
                    "Train the three Bayesian deep-learning models of Lecture 4 and watch what they learn: a Bayesian \
                     neural network, a variational autoencoder and a normalizing flow. Each tour follows the lecture \
                     in a few steps: what to do, what to notice and why. Do it performs a step for you.",
                );
                ui.add_space(6.0);
                for (i, tour) in self.tours.iter().enumerate().filter(|(_, t)| t.source.starts_with("assets/")) {
                    if ui.button(format!("Tour: {}", tour.title)).clicked() {
                        start = Some(i);
                    }
                }
                ui.add_space(6.0);
                ui.label(
                    egui::RichText::new("The Lecture menu at the top brings the tours back; ? lists the keys.").weak(),
                );
                close = ui.button("Close").clicked();
            });
        if let Some(i) = start {
            let tour = self.tours[i].clone();
            self.start_tour(tour);
        }
        if close || start.is_some() {
            self.welcome_open = false;
            self.settings.welcomed = true;
        }
    }

    /// The tour's panel under the page (captions in presenter mode), after its step's check is answered.
    pub(super) fn tour_panel(&mut self, ui: &mut egui::Ui) {
        let Some(state) = &self.tour else { return };
        let lab = state.tour.lab;
        if let Some(check) = state.current().check.clone()
            && self.check_holds(lab, &check, state.started)
            && let Some(state) = &mut self.tour
        {
            let step = state.step;
            state.done[step] = true;
        }
        let presenting = self.settings.presenter.presenting;
        let Some(state) = &mut self.tour else { return };
        // The narration gets at most a third of the window (in presenter mode, where it is a caption, 40 %); it
        // scrolls beyond.
        let max_height = ui.available_height() * if presenting { 0.4 } else { 1.0 / 3.0 };
        // The controls first, on the window's foot (a step they move to shows at once above them), then the text.
        let ask = egui::Panel::bottom("tour-controls")
            .resizable(false)
            .show_separator_line(false)
            .show(ui, |ui| crate::ui::tour::tour_controls_ui(state, ui))
            .inner;
        egui::Panel::bottom("tour")
            .resizable(false)
            .show(ui, |ui| crate::ui::tour::tour_text_ui(state, presenting, max_height, ui));
        match ask {
            Some(TourAsk::DoIt(action)) => self.carry_out_tour_action(lab, &action),
            Some(TourAsk::End) => self.tour = None,
            None => {}
        }
    }

    /// A key's step through the tour: forward (its action first, then the next step) or back.
    pub(super) fn step_tour(&mut self, forward: bool) {
        let Some(state) = &mut self.tour else { return };
        let lab = state.tour.lab;
        if !forward {
            state.back();
            return;
        }
        match state.forward() {
            Some(TourAsk::DoIt(action)) => self.carry_out_tour_action(lab, &action),
            Some(TourAsk::End) => self.tour = None,
            None => {}
        }
    }

    /// Carries out a step's action on `lab`, opening its page first.
    pub(super) fn carry_out_tour_action(&mut self, lab: Lab, action: &TourAction) {
        self.settings.tab = lab;
        match action {
            TourAction::Train => self.replace_run(lab, crate::ui::discard::Replacement::Train),
            TourAction::Pause => {
                let state = self.lab(lab);
                if state.worker_state == Some(WorkerState::Running)
                    && let Some(worker) = &state.worker
                {
                    worker.send(Command::Pause);
                }
            }
            TourAction::Stage(k) => self.lab_mut(lab).flow.show_stage(*k),
            TourAction::Inference(on) => {
                self.lab_mut(lab).flow.set_direction(if *on { Direction::Inference } else { Direction::Generation });
            }
            TourAction::Page(name) => {
                if !self.open_page(lab, name) {
                    self.lab_mut(lab).message = Some(Message::error(format!(
                        "The tour asks for a page named \"{name}\", which the {} lab does not have.",
                        lab.tab_name()
                    )));
                }
            }
            TourAction::TrainFraction(f) => self.lab_mut(lab).bnn.config.train_fraction = *f,
            TourAction::Weights(quantity) => {
                if lab == Lab::Bnn {
                    let bnn = &mut self.lab_mut(lab).bnn;
                    bnn.page = crate::ui::bnn::BnnPage::Weights;
                    bnn.quantity = *quantity;
                } else {
                    self.lab_mut(lab).message = Some(Message::error(format!(
                        "The tour asks for the weights' {}, which the {} lab does not have.",
                        quantity.label(),
                        lab.tab_name()
                    )));
                }
            }
        }
    }

    /// Opens `lab`'s page whose tab reads `name` (any case); false when there is none.
    fn open_page(&mut self, lab: Lab, name: &str) -> bool {
        let state = self.lab_mut(lab);
        let same = |label: &str| label.eq_ignore_ascii_case(name.trim());
        match lab {
            Lab::Bnn => crate::ui::bnn::BnnPage::ALL.into_iter().find(|p| same(p.label())).map(|p| state.bnn.page = p),
            Lab::Vae => crate::ui::vae::VaePage::ALL.into_iter().find(|p| same(p.label())).map(|p| state.vae.page = p),
            Lab::Flow => FlowPage::ALL.into_iter().find(|p| same(p.label())).map(|p| state.flow.page = p),
        }
        .is_some()
    }

    /// The tab of `lab`'s open page.
    fn page_label(&self, lab: Lab) -> &'static str {
        let state = self.lab(lab);
        match lab {
            Lab::Bnn => state.bnn.page.label(),
            Lab::Vae => state.vae.page.label(),
            Lab::Flow => state.flow.page.label(),
        }
    }

    /// True when `check` holds for `lab` now, in a tour that began at `started`.
    fn check_holds(&self, lab: Lab, check: &TourCheck, started: std::time::Instant) -> bool {
        let state = self.lab(lab);
        match check {
            // A run started (or continued) since the tour began: the one on show at its start does not count.
            TourCheck::Epoch(n) => {
                matches!(state.run_source, RunSource::Started(t) if t >= started)
                    && state.snapshot.as_ref().is_some_and(|s| s.epoch >= *n)
            }
            TourCheck::Paused => state.worker_state == Some(WorkerState::Paused),
            TourCheck::Stage(k) => {
                state.snapshot.as_ref().is_some_and(|s| s.model.is_some())
                    && state.flow.at_whole_stage()
                    && state.flow.stage() == *k
            }
            TourCheck::Inference(on) => (state.flow.direction == Direction::Inference) == *on,
            TourCheck::Page(name) => self.page_label(lab).eq_ignore_ascii_case(name.trim()),
            TourCheck::TrainFraction(f) => (state.bnn.config.train_fraction - f).abs() < 1e-9,
            TourCheck::Weights(quantity) => {
                lab == Lab::Bnn && state.bnn.page == crate::ui::bnn::BnnPage::Weights && state.bnn.quantity == *quantity
            }
        }
    }
}
