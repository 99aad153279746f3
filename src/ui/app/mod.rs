//! The application: its state (every lab's, the persisted settings, the threads it waits on) and the window's
//! layout (the tabs, the status bar, the open lab's page, the preview and the discard question). The app's own
//! work is split by concern into the files below this one; the pages and widgets it draws are the other files of
//! `ui/`, which never reach back up here: they return what the user asked, and the app carries it out.
//!
//! - `loading.rs`: datasets coming into the labs (dialog, path field, dropped files, loads, the preview).
//! - `page.rs`: a lab's page as laid out, carrying out what its sections ask.
//! - `replacing.rs`: replacing a lab's run, asking first when it trained a while.
//! - `files.rs`: the `run-file` thread's jobs (save and open runs, export data, save images).
//! - `lecture.rs`: the guided tours (the Lecture menu, the welcome, the tour's panel, its actions and checks).
//! - `persistence.rs`: the last session, restored at launch and kept on eframe's saves.

mod files;
mod lecture;
mod loading;
mod page;
mod persistence;
mod replacing;

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::Lab;
use crate::compute::ComputeInfo;
use crate::data::LoadRequest;
use crate::data::prepare::DataSpec;
use crate::train::WorkerEvent;
use crate::ui::lab_state::{LabState, LoadTarget};
use crate::ui::message::Message;
use crate::ui::presenter::{KeyAsk, PresenterSettings, RunAsk};
use crate::ui::preview::Preview;
use crate::ui::status_bar::StatusBar;

/// Title of the window (and the name of its persistence folder).
pub const APP_TITLE: &str = "bayes-explorer";

/// What survives a restart: the open tab and each lab's dataset and column roles.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The tab that was open.
    pub tab: Lab,
    /// Per lab: the dataset it had and its roles.
    pub labs: Vec<(Lab, LoadRequest, Option<DataSpec>)>,
    /// Per lab: the settings of its next run as the user left them, as JSON (so that one an older or newer
    /// version cannot read is dropped alone).
    pub run_settings: Vec<(Lab, String)>,
    /// The BNN's Compare runs list, oldest first.
    pub bnn_runs: Vec<crate::ui::bnn::RunSummary>,
    /// Presenter mode and its zoom.
    pub presenter: PresenterSettings,
    /// The first launch's welcome has been closed.
    pub welcomed: bool,
}

/// The whole app.
pub struct BayesExplorerApp {
    ctx: egui::Context,
    /// Persisted settings.
    pub settings: Settings,
    /// The labs, in tab order.
    pub labs: Vec<LabState>,
    preview: Option<Preview>,
    compute: Option<ComputeInfo>,
    compute_rx: Option<Receiver<ComputeInfo>>,
    dialog_rx: Option<(Receiver<Option<PathBuf>>, Lab, Instant)>,
    /// The last session's models, kept between launches.
    session: crate::ui::session::Session,
    /// A run being saved or opened ("Save run…", "Open run…").
    run_file_job: Option<crate::ui::file_job::RunFileJob>,
    /// Text of the "load from path" field.
    pub path_text: String,
    /// Where "Save image…" writes without asking (tests and scripted demos); `None` asks with the dialog.
    image_folder: Option<PathBuf>,
    /// UI-thread seconds of recent frames (eframe's measure), newest last, with when they were drawn.
    frame_times: std::collections::VecDeque<(Instant, f32)>,
    /// Which renderer draws the window and why (set by [`crate::ui::run_app`]; `None` in tests).
    pub(crate) window_renderer: Option<String>,
    /// Replacements of a trained run waiting for the user's answer (see `discard.rs`).
    pending_discards: Vec<crate::ui::discard::PendingDiscard>,
    /// A replacement waiting for its run to be saved first (the question's "Save run first…").
    save_first: Option<crate::ui::discard::SaveFirst>,
    /// Where "Save run…" writes without asking (tests and scripted demos); `None` asks with the dialog.
    run_folder: Option<PathBuf>,
    /// The `?` overlay listing the keys is open.
    keys_open: bool,
    /// The mode whose theme and zoom the window has (`None` before the first frame), and the theme it had before
    /// presenter mode made it light.
    presenter_applied: Option<bool>,
    theme_before_presenting: Option<egui::ThemePreference>,
    /// The tours the Lecture menu offers (built in, then a lecturer's own), the files that could not be read, and
    /// the folder a lecturer's own are read from.
    tours: Vec<crate::ui::tour::Tour>,
    tour_errors: Vec<crate::ui::tour::TourError>,
    tour_folder: Option<PathBuf>,
    /// The tour under way.
    tour: Option<crate::ui::tour::TourState>,
    /// The welcome is open.
    welcome_open: bool,
    /// `bench window`'s driver, when the window is a benchmark's.
    pub(crate) bench: Option<crate::ui::window_bench::WindowBench>,
}

impl BayesExplorerApp {
    /// Creates the app and starts loading each lab's dataset (the last session's, or the default).
    #[must_use]
    pub fn new(ctx: egui::Context, settings: Settings) -> Self {
        let (tx, rx) = channel();
        let probe_ctx = ctx.clone();
        let _ = std::thread::Builder::new().name("gpu-probe".into()).spawn(move || {
            let _ = tx.send(crate::compute::probe());
            probe_ctx.request_repaint();
        });
        let mut app = Self {
            ctx,
            labs: Lab::ALL.iter().map(|&l| LabState::new(l)).collect(),
            settings,
            preview: None,
            compute: None,
            compute_rx: Some(rx),
            dialog_rx: None,
            run_file_job: None,
            session: crate::ui::session::Session::default(),
            path_text: String::new(),
            image_folder: None,
            save_first: None,
            run_folder: None,
            frame_times: std::collections::VecDeque::new(),
            window_renderer: None,
            pending_discards: Vec::new(),
            keys_open: false,
            presenter_applied: None,
            theme_before_presenting: None,
            tours: crate::ui::tour::built_in(),
            tour_errors: Vec::new(),
            tour_folder: None,
            tour: None,
            welcome_open: false,
            bench: None,
        };
        let compared = app.settings.bnn_runs.clone();
        app.lab_mut(Lab::Bnn).bnn.runs = compared;
        for (lab, json) in app.settings.run_settings.clone() {
            app.lab_mut(lab).restored_settings = crate::ui::session::parse_settings(lab, &json);
        }
        for lab in Lab::ALL {
            let saved = app.settings.labs.iter().find(|(l, _, _)| *l == lab).cloned();
            let (request, spec) = saved.map_or_else(|| (lab.default_data(), None), |(_, r, s)| (r, s));
            app.start_load(lab, request, LoadTarget::Apply(spec));
        }
        app
    }

    /// The state of one lab.
    ///
    /// # Panics
    /// Never: every lab has a state.
    #[must_use]
    pub fn lab(&self, lab: Lab) -> &LabState {
        self.labs.iter().find(|l| l.lab == lab).expect("every lab has a state")
    }

    pub(crate) fn lab_mut(&mut self, lab: Lab) -> &mut LabState {
        self.labs.iter_mut().find(|l| l.lab == lab).expect("every lab has a state")
    }

    /// The settings of the flow lab's next run (for tests and scripted demos).
    pub fn flow_config_mut(&mut self) -> &mut crate::models::flow::FlowConfig {
        &mut self.lab_mut(Lab::Flow).flow.config
    }

    /// The flow lab's step-through and views, read-only (for tests).
    #[must_use]
    pub fn flow_state(&self) -> &crate::ui::flow::FlowUiState {
        &self.lab(Lab::Flow).flow
    }

    /// The flow lab's step-through, views and recorder (for tests and scripted demos).
    pub fn flow_state_mut(&mut self) -> &mut crate::ui::flow::FlowUiState {
        &mut self.lab_mut(Lab::Flow).flow
    }

    /// The VAE lab's views, read-only (for tests).
    #[must_use]
    pub fn vae_state(&self) -> &crate::ui::vae::VaeUiState {
        &self.lab(Lab::Vae).vae
    }

    /// The VAE lab's settings and views (for tests and scripted demos).
    pub fn vae_state_mut(&mut self) -> &mut crate::ui::vae::VaeUiState {
        &mut self.lab_mut(Lab::Vae).vae
    }

    /// The BNN lab's views, read-only (for tests).
    #[must_use]
    pub fn bnn_state(&self) -> &crate::ui::bnn::BnnUiState {
        &self.lab(Lab::Bnn).bnn
    }

    /// The BNN lab's settings and views (for tests and scripted demos).
    pub fn bnn_state_mut(&mut self) -> &mut crate::ui::bnn::BnnUiState {
        &mut self.lab_mut(Lab::Bnn).bnn
    }

    /// True while the CSV preview window is open.
    #[must_use]
    pub fn preview_is_open(&self) -> bool {
        self.preview.is_some()
    }

    /// True while any dataset is loading (for tests that wait for the built-in data).
    #[must_use]
    pub fn any_loading(&self) -> bool {
        self.labs.iter().any(LabState::is_loading)
    }

    /// The compute status line once the adapter probe has answered.
    #[must_use]
    pub fn compute_status(&self) -> String {
        self.compute.as_ref().map_or_else(|| "Compute: looking for a GPU adapter…".to_owned(), ComputeInfo::status_line)
    }

    /// Everything that arrives from other threads: loads, the dialog, the adapter probe, worker events.
    pub(crate) fn poll(&mut self) {
        if let Some(rx) = &self.compute_rx
            && let Ok(info) = rx.try_recv()
        {
            self.compute = Some(info);
            self.compute_rx = None;
        }
        self.poll_dialog();
        self.poll_run_file();
        self.poll_session();
        for lab in Lab::ALL {
            self.poll_load(lab);
            self.poll_worker(lab);
        }
        self.poll_save_first();
    }

    fn poll_worker(&mut self, lab: Lab) {
        for (failed, why) in self.session.take_failures() {
            self.lab_mut(failed).message = Some(Message::warning(format!(
                "The checkpoint of this run for the next session could not be written: {why}. Training goes on; the last checkpoint that was written is kept."
            )));
        }
        let mut checkpoints = Vec::new();
        let ctx = self.ctx.clone();
        let state = self.lab_mut(lab);
        let Some(worker) = &state.worker else { return };
        for event in worker.drain_events(256) {
            match event {
                WorkerEvent::State(s) => state.worker_state = Some(s),
                WorkerEvent::Error(text) => state.message = Some(Message::error(text)),
                WorkerEvent::NonFinite { location, step } => {
                    state.message = Some(Message::error(format!(
                        "Training paused: a NaN or infinity appeared in {location} at step {step}. The last good parameters are kept; lower the learning rate and resume."
                    )));
                }
                WorkerEvent::Finished(record) if lab == Lab::Bnn => {
                    let dataset = state.run_origin.as_ref().map(|o| o.request.describe()).unwrap_or_default();
                    // Every epoch takes the same steps: the run's last step is its epochs times them.
                    let steps_per_epoch = state.snapshot.as_ref().map_or(1, |s| s.steps_per_epoch.max(1));
                    state.bnn.finished(&record, &dataset, (record.epoch * steps_per_epoch) as u64);
                }
                WorkerEvent::Ready | WorkerEvent::EpochDone(_) | WorkerEvent::Finished(_) => {}
                WorkerEvent::Checkpoint(checkpoint) => checkpoints.push(Ok(checkpoint)),
                WorkerEvent::CheckpointFailed(why) => checkpoints.push(Err(why)),
                WorkerEvent::LowestHeldOut { epoch, view } => match lab {
                    Lab::Flow => state.flow.keep_lowest(epoch, view),
                    Lab::Vae => state.vae.keep_lowest(epoch, view),
                    Lab::Bnn => {}
                },
            }
        }
        if let Some(s) = worker.snapshot() {
            state.snapshot = Some(s);
        }
        let (origin, shown) = (state.origin_to_save(), state.snapshot.clone());
        let first = checkpoints.first().cloned();
        for checkpoint in checkpoints {
            match (checkpoint, origin.clone()) {
                (Ok(checkpoint), Some(origin)) => self.session.write_checkpoint(lab, origin, &checkpoint),
                // A run without a training state (a version 1 file shown again): kept as it is shown.
                (Err(why), Some(origin)) => {
                    log::info!("no checkpoint of the {} run ({why}); keeping it as shown", lab.tab_name());
                    if let Some(shown) = shown.clone() {
                        self.session.write_shown(lab, origin, shown);
                    }
                }
                (_, None) => {}
            }
        }
        // "Save run…" (`files.rs`) and "Continue" (`continuing.rs`) on a run trained here wait for a checkpoint,
        // which the session keeps too; the save goes first, while the run is still the one it was asked for.
        if let Some(first) = first {
            self.save_checkpoint(lab, first.clone());
            let state = self.lab_mut(lab);
            if state.continue_asked.is_some() {
                crate::ui::continuing::from_checkpoint(state, ctx, first);
            }
        }
    }

    /// Draws the whole window (also called by the UI tests).
    pub fn show(&mut self, ui: &mut egui::Ui) {
        self.poll();
        let training = self.labs.iter().any(|l| l.worker_state == Some(crate::train::WorkerState::Running));
        crate::ui::lab_page::set_training_now(ui.ctx(), training);
        self.poll_images(ui.ctx());
        self.handle_dropped_files(ui.ctx());
        for ask in crate::ui::presenter::read_keys(ui.ctx()) {
            self.carry_out_key(ask, ui.ctx());
        }
        self.apply_presenter_mode(ui.ctx());
        let presenting = self.settings.presenter.presenting;
        egui::Panel::top("tabs").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading(APP_TITLE);
                ui.separator();
                for (i, lab) in Lab::ALL.into_iter().enumerate() {
                    let selected = self.settings.tab == lab;
                    let hover = format!("{} (key {})", lab.title(), i + 1);
                    if ui.selectable_label(selected, lab.tab_name()).on_hover_text(hover).clicked() {
                        self.settings.tab = lab;
                    }
                }
                ui.separator();
                ui.menu_button("Lecture", |ui| self.lecture_menu_ui(ui));
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if ui.button("Keys").on_hover_text("The keyboard's keys (?)").clicked() {
                        self.keys_open = !self.keys_open;
                    }
                    if !presenting
                        && ui
                            .button("Presenter mode")
                            .on_hover_text("For a projector: no settings panel, larger text, a light theme (P)")
                            .clicked()
                    {
                        self.settings.presenter.presenting = true;
                    }
                });
            });
            if presenting {
                let tab = self.settings.tab;
                let (run, leave) = crate::ui::presenter::presenter_bar_ui(self.lab_mut(tab), ui);
                if let Some(run) = run {
                    self.carry_out_run(tab, run);
                }
                if leave {
                    self.settings.presenter.presenting = false;
                }
            }
        });
        egui::Panel::bottom("status").show(ui, |ui| {
            let bar = StatusBar {
                labs: &self.labs,
                tab: self.settings.tab,
                compute: self.compute_status(),
                frames: self.frame_summary(),
                renderer: self.window_renderer.as_deref(),
            };
            if let Some(lab) = crate::ui::status_bar::status_bar_ui(bar, ui) {
                self.settings.tab = lab;
            }
        });
        self.tour_panel(ui);
        let tab = self.settings.tab;
        egui::CentralPanel::default().show(ui, |ui| self.lab_page_ui(tab, ui));
        self.welcome_ui(ui.ctx());
        self.preview_ui(ui.ctx());
        self.discard_dialog_ui(ui.ctx());
        if self.keys_open && crate::ui::presenter::keys_overlay_ui(ui.ctx()) {
            self.keys_open = false;
        }
        drop_overlay(ui.ctx());
    }

    /// True while presenter mode is on.
    #[must_use]
    pub fn presenting(&self) -> bool {
        self.settings.presenter.presenting
    }

    /// Turns presenter mode on or off (`--present` at launch; the switch, the bar's button and P in the window).
    pub fn set_presenting(&mut self, on: bool) {
        self.settings.presenter.presenting = on;
    }

    /// True while the `?` overlay lists the keys.
    #[must_use]
    pub fn keys_overlay_open(&self) -> bool {
        self.keys_open
    }

    /// Carries out what a key asks.
    fn carry_out_key(&mut self, ask: KeyAsk, ctx: &egui::Context) {
        let tab = self.settings.tab;
        let fullscreen = ctx.input(|i| i.viewport().fullscreen.unwrap_or(false));
        match ask {
            KeyAsk::TogglePresenter => self.settings.presenter.presenting ^= true,
            // Not under a question or the preview, which take the keyboard's answer themselves (Escape closes them).
            KeyAsk::TrainOrPause
            | KeyAsk::Escape
            | KeyAsk::TourBack
            | KeyAsk::TourForward
            | KeyAsk::PreviousStage
            | KeyAsk::NextStage
                if !self.pending_discards.is_empty() || self.preview.is_some() => {}
            // In a tour the arrows walk its steps, as Page Up and Page Down do.
            KeyAsk::PreviousStage | KeyAsk::TourBack if self.tour.is_some() => self.step_tour(false),
            KeyAsk::NextStage | KeyAsk::TourForward if self.tour.is_some() => self.step_tour(true),
            KeyAsk::TrainOrPause => {
                let state = self.lab(tab);
                if let Some(run) = RunAsk::for_space(state.worker_state, crate::ui::continuing::carries_on(state)) {
                    self.carry_out_run(tab, run);
                }
            }
            KeyAsk::PreviousStage | KeyAsk::NextStage if tab == Lab::Flow => {
                self.lab_mut(Lab::Flow).flow.step_stage(ask == KeyAsk::NextStage);
            }
            KeyAsk::OpenLab(lab) => self.settings.tab = lab,
            KeyAsk::ToggleFullscreen => ctx.send_viewport_cmd(egui::ViewportCommand::Fullscreen(!fullscreen)),
            KeyAsk::Replay => {
                let now = ctx.input(|i| i.time);
                self.lab_mut(tab).toggle_replay(now);
            }
            KeyAsk::ToggleKeys => self.keys_open ^= true,
            KeyAsk::Escape if self.keys_open => self.keys_open = false,
            KeyAsk::Escape if fullscreen => ctx.send_viewport_cmd(egui::ViewportCommand::Fullscreen(false)),
            // Stages are the flow's; Esc with nothing to close does nothing.
            KeyAsk::PreviousStage | KeyAsk::NextStage | KeyAsk::TourBack | KeyAsk::TourForward | KeyAsk::Escape => {}
        }
    }

    /// Carries out a run's button of the presenter bar, or Space.
    fn carry_out_run(&mut self, lab: Lab, run: RunAsk) {
        let command = match run {
            RunAsk::Train => return self.replace_run(lab, crate::ui::discard::Replacement::Train),
            RunAsk::Pause => crate::train::Command::Pause,
            RunAsk::Resume => crate::train::Command::Resume,
            RunAsk::Continue => {
                let ctx = self.ctx.clone();
                return crate::ui::continuing::start_as_set(self.lab_mut(lab), ctx);
            }
        };
        if let Some(worker) = &self.lab(lab).worker {
            worker.send(command);
        }
    }

    /// Gives the window the theme and zoom of the mode it is in: on entering presenter mode a light theme and the
    /// presenter's zoom, on leaving it the theme and zoom it had; between changes, the zoom the user sets (Ctrl +
    /// and Ctrl -) is kept for the mode in use. At launch outside presenter mode eframe's own zoom stays.
    fn apply_presenter_mode(&mut self, ctx: &egui::Context) {
        let presenter = &mut self.settings.presenter;
        let on = presenter.presenting;
        if self.presenter_applied == Some(on) {
            if on {
                presenter.presenter_zoom = ctx.zoom_factor();
            } else {
                presenter.desk_zoom = ctx.zoom_factor();
            }
            return;
        }
        if on {
            self.theme_before_presenting = Some(ctx.options(|o| o.theme_preference));
            ctx.set_theme(egui::ThemePreference::Light);
            ctx.set_zoom_factor(presenter.presenter_zoom);
        } else if self.presenter_applied == Some(true) {
            ctx.set_theme(self.theme_before_presenting.take().unwrap_or(egui::ThemePreference::System));
            ctx.set_zoom_factor(presenter.desk_zoom);
        }
        self.presenter_applied = Some(on);
    }

    fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        if let Some(path) = dropped.into_iter().next().map(|f| f.path().to_path_buf()) {
            self.load_file(path);
        }
    }
}

fn drop_overlay(ctx: &egui::Context) {
    if ctx.input(|i| i.raw.hovered_files.is_empty()) {
        return;
    }
    let painter = ctx.layer_painter(egui::LayerId::new(egui::Order::Foreground, egui::Id::unique("drop-overlay")));
    let rect = ctx.content_rect();
    painter.rect_filled(rect, 0.0, egui::Color32::from_black_alpha(180));
    painter.text(
        rect.center(),
        egui::Align2::CENTER_CENTER,
        "Drop a CSV file to load it, or a run file to open it",
        egui::FontId::proportional(28.0),
        egui::Color32::WHITE,
    );
}

impl BayesExplorerApp {
    /// Records the UI thread's time for the previous frame (what eframe measured).
    fn record_frame_time(&mut self, seconds: f32) {
        let now = Instant::now();
        self.frame_times.push_back((now, seconds));
        while self.frame_times.front().is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(2)) {
            self.frame_times.pop_front();
        }
    }

    /// Frames drawn in the last two seconds and the slowest one's UI-thread milliseconds (for the status bar:
    /// a frame under 16.7 ms keeps 60 frames per second).
    #[must_use]
    pub fn frame_summary(&self) -> Option<(f64, f32)> {
        let (first, _) = self.frame_times.front()?;
        let span = first.elapsed().as_secs_f64().max(1e-3);
        let slowest = self.frame_times.iter().map(|(_, s)| *s).fold(0.0, f32::max);
        Some((self.frame_times.len() as f64 / span.max(1.0), slowest * 1000.0))
    }
}

impl eframe::App for BayesExplorerApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let previous_frame = frame.info().cpu_usage;
        if let Some(seconds) = previous_frame {
            self.record_frame_time(seconds);
        }
        if let Some(mut bench) = self.bench.take() {
            bench.frame(self, ui.ctx(), previous_frame);
            self.bench = Some(bench);
        }
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if self.bench.is_some() {
            return; // a benchmark's window keeps nothing of its own
        }
        let settings = self.persist(false);
        eframe::set_value(storage, eframe::APP_KEY, &settings);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        // eframe saved just before, asking the running labs for checkpoints: keep them, and let the last session's
        // run files reach the disk.
        self.finish_session();
    }
}
