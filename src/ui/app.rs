//! The application state and the top-level layout.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::Lab;
use crate::data::prepare::DataSpec;
use crate::data::{CsvError, CsvOptions, LoadJob, LoadRequest, MissingPolicy};
use crate::gpu::ComputeInfo;
use crate::train::WorkerEvent;
use crate::ui::lab_data::LabData;
use crate::ui::lab_state::{LabState, LoadTarget};
use crate::ui::message::Message;
use crate::ui::preview::Preview;

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
}

/// The whole app.
pub struct BayesExplorerApp {
    pub(crate) ctx: egui::Context,
    /// Persisted settings.
    pub settings: Settings,
    /// The labs, in tab order.
    pub labs: Vec<LabState>,
    pub(crate) preview: Option<Preview>,
    compute: Option<ComputeInfo>,
    compute_rx: Option<Receiver<ComputeInfo>>,
    dialog_rx: Option<(Receiver<Option<PathBuf>>, Lab, Instant)>,
    /// The last session's models, kept between launches.
    pub(crate) session: crate::ui::session::Session,
    /// A run being saved or opened ("Save run…", "Open run…").
    pub(crate) run_file_job: Option<crate::ui::run_file::RunFileJob>,
    /// Text of the "load from path" field.
    pub path_text: String,
    /// Where "Save image…" writes without asking (tests and scripted demos); `None` asks with the dialog.
    pub(crate) image_folder: Option<PathBuf>,
    /// UI-thread seconds of recent frames (eframe's measure), newest last, with when they were drawn.
    frame_times: std::collections::VecDeque<(Instant, f32)>,
    /// Which renderer draws the window and why (set by [`crate::ui::run_app`]; `None` in tests).
    pub(crate) window_renderer: Option<String>,
    /// Replacements of a trained run waiting for the user's answer (see `discard.rs`).
    pub(crate) pending_discards: Vec<crate::ui::discard::PendingDiscard>,
}

impl BayesExplorerApp {
    /// Creates the app and starts loading each lab's dataset (the last session's, or the default).
    #[must_use]
    pub fn new(ctx: egui::Context, settings: Settings) -> Self {
        let (tx, rx) = channel();
        let probe_ctx = ctx.clone();
        let _ = std::thread::Builder::new().name("gpu-probe".into()).spawn(move || {
            let _ = tx.send(crate::gpu::probe());
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
            frame_times: std::collections::VecDeque::new(),
            window_renderer: None,
            pending_discards: Vec::new(),
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

    /// Starts loading a dataset for a lab on a background thread; what the lab has stays until it succeeds.
    pub(crate) fn start_load(&mut self, lab: Lab, request: LoadRequest, target: LoadTarget) {
        let ctx = self.ctx.clone();
        let state = self.lab_mut(lab);
        if let Some((old, _)) = state.loading.take() {
            old.cancel();
        }
        state.loading = Some((LoadJob::spawn(request, move || ctx.request_repaint()), target));
    }

    /// Loads a user's file for the current tab (after the dialog, a drop or the path field).
    pub(crate) fn load_file(&mut self, path: PathBuf) {
        let request = LoadRequest::File { path, options: CsvOptions::default() };
        self.start_load(self.settings.tab, request, LoadTarget::Preview);
    }

    /// Opens the native file dialog on its own thread.
    pub(crate) fn open_file_dialog(&mut self) {
        if self.dialog_rx.is_some() {
            return;
        }
        let (tx, rx) = channel();
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new().name("file-dialog".into()).spawn(move || {
            let picked = rfd::FileDialog::new()
                .set_title("Load a CSV dataset")
                .add_filter("CSV", &["csv", "tsv", "txt", "gz"])
                .add_filter("All files", &["*"])
                .pick_file();
            let _ = tx.send(picked);
            ctx.request_repaint();
        });
        match spawned {
            Ok(_) => self.dialog_rx = Some((rx, self.settings.tab, Instant::now())),
            Err(e) => {
                let tab = self.settings.tab;
                self.lab_mut(tab).message = Some(Message::error(format!("cannot open the file dialog: {e}")));
            }
        }
    }

    /// Puts a loaded dataset into a lab, stopping a run trained on other data.
    pub(crate) fn apply_data(&mut self, lab: Lab, data: LabData) {
        let Some(data) = self.data_or_ask(lab, data) else { return };
        let state = self.lab_mut(lab);
        state.worker = None;
        state.run_source = crate::ui::lab_state::RunSource::default();
        state.worker_state = None;
        state.snapshot = None;
        state.run_origin = None;
        state.view = crate::ui::data_view::DataViewState::default();
        let dropped = data.table.csv.as_ref().map_or(0, |c| c.dropped_rows);
        if dropped > 0 {
            let text = format!(
                "{}: dropped {} with missing or non-numeric cells",
                data.table.name,
                crate::ui::count::count(dropped, "row")
            );
            state.message = Some(Message::warning(text).about_loading(&data.request));
        } else if state.message.as_ref().is_some_and(|m| !m.is_error()) {
            // Notes are about the data being replaced; errors stay until the user dismisses them.
            state.message = None;
        }
        if lab == Lab::Bnn {
            let (n_train, _) = crate::data::prepare::split_counts(data.table.n_rows(), data.spec.test_fraction);
            let epochs = state.bnn.set_data_size(n_train, data.spec.feature_columns().len());
            // Said in the message line when the user has seen the settings (not the first data at launch, nor
            // data whose settings the last session's replace).
            if let Some(epochs) = epochs
                && state.data.is_some()
                && state.restored_settings.is_none()
            {
                state.message = Some(match state.message.take() {
                    // A warning about this data, or an error still to dismiss, stays, with the epochs after it.
                    Some(mut m) if m.is_warning() || m.is_error() => {
                        m.text = format!("{}. {epochs}", m.text.trim_end_matches('.'));
                        m
                    }
                    _ => Message::note(epochs),
                });
            }
        }
        let entry = (lab, data.request.clone(), Some(data.spec.clone()));
        state.data = Some(data);
        self.settings.labs.retain(|(l, _, _)| *l != lab);
        self.settings.labs.push(entry);
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
    }

    fn poll_dialog(&mut self) {
        let Some((rx, lab, opened)) = &self.dialog_rx else {
            return;
        };
        let (lab, opened) = (*lab, *opened);
        match rx.try_recv() {
            Ok(Some(path)) => {
                self.dialog_rx = None;
                self.settings.tab = lab;
                self.load_file(path);
            }
            Ok(None) => {
                self.dialog_rx = None;
                if opened.elapsed() < Duration::from_millis(400) {
                    self.lab_mut(lab).message = Some(Message::warning(
                        "No file dialog answered (no desktop portal is running). Drop a CSV file onto the window, or type its path in the field under \"Load CSV…\".",
                    ));
                }
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Disconnected) => self.dialog_rx = None,
        }
    }

    fn poll_load(&mut self, lab: Lab) {
        let state = self.lab_mut(lab);
        let Some((job, _)) = &state.loading else {
            return;
        };
        let Some(result) = job.try_take() else { return };
        let Some((job, target)) = state.loading.take() else {
            return;
        };
        // A load that worked makes an earlier load's error or warning stale, except where this load stands in for
        // data that could not be read: then the error says why the lab shows other data.
        if result.is_ok() && target != LoadTarget::Fallback && state.message.as_ref().is_some_and(|m| m.from_load) {
            state.message = None;
        }
        match result {
            Ok(table) => match target {
                LoadTarget::Apply(_) | LoadTarget::Fallback => {
                    let spec = match target {
                        LoadTarget::Apply(spec) => spec,
                        LoadTarget::Fallback | LoadTarget::Preview => None,
                    };
                    let spec = spec
                        .filter(|s| s.roles.len() == table.n_cols())
                        .unwrap_or_else(|| crate::data::prepare::default_spec_for_lab(lab, &table));
                    self.apply_data(lab, LabData::new(table, spec, job.request));
                    // The last session's settings, unless its model is still coming (they go in after it).
                    if !self.restoring(lab) {
                        self.lab_mut(lab).apply_restored_settings();
                    }
                }
                LoadTarget::Preview => {
                    let spec = crate::data::prepare::default_spec_for_lab(lab, &table);
                    self.preview = Some(Preview::new(lab, table, spec, job.request));
                }
            },
            Err(CsvError::Cancelled { .. }) => {}
            Err(e) => {
                let mut message = Message::error(e.to_string()).about_loading(&job.request);
                if e.is_bad_cell()
                    && let LoadRequest::File { path, options } = &job.request
                {
                    let options = CsvOptions { missing: MissingPolicy::DropRows, ..options.clone() };
                    message.retry_dropping = Some(LoadRequest::File { path: path.clone(), options });
                }
                state.message = Some(message);
                // A lab left with nothing (the last session's file is gone) falls back to its built-in data.
                if state.data.is_none() && job.request != lab.default_data() {
                    self.start_load(lab, lab.default_data(), LoadTarget::Fallback);
                }
            }
        }
    }

    fn poll_worker(&mut self, lab: Lab) {
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
                    state.bnn.finished(&record, &dataset);
                }
                WorkerEvent::Ready | WorkerEvent::EpochDone(_) | WorkerEvent::Finished(_) => {}
            }
        }
        if let Some(s) = worker.snapshot() {
            state.snapshot = Some(s);
        }
    }

    /// Draws the whole window (also called by the UI tests).
    pub fn show(&mut self, ui: &mut egui::Ui) {
        self.poll();
        self.poll_images(ui.ctx());
        self.handle_dropped_files(ui.ctx());
        egui::Panel::top("tabs").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading(crate::ui::APP_TITLE);
                ui.separator();
                for lab in Lab::ALL {
                    let selected = self.settings.tab == lab;
                    if ui.selectable_label(selected, lab.tab_name()).on_hover_text(lab.title()).clicked() {
                        self.settings.tab = lab;
                    }
                }
            });
        });
        egui::Panel::bottom("status").show(ui, |ui| crate::ui::status_bar::status_bar_ui(self, ui));
        let tab = self.settings.tab;
        egui::CentralPanel::default().show(ui, |ui| crate::ui::lab::lab_ui(self, tab, ui));
        if let Some(preview) = self.preview.take() {
            self.preview = crate::ui::preview::preview_window(self, preview, ui.ctx());
        }
        self.discard_dialog_ui(ui.ctx());
        drop_overlay(ui.ctx());
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
        "Drop a CSV file to load it",
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
        if let Some(seconds) = frame.info().cpu_usage {
            self.record_frame_time(seconds);
        }
        self.show(ui);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        let settings = self.persist(false);
        eframe::set_value(storage, eframe::APP_KEY, &settings);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        // eframe saved just before: let the last session's run files reach the disk.
        self.finish_session_writes();
    }
}
