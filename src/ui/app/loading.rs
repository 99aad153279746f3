//! Datasets coming into the labs: the file dialog, the path field and dropped files, loads on their background
//! threads, the preview of a user's file, and a loaded dataset put into its lab.

use std::path::PathBuf;
use std::sync::mpsc::{TryRecvError, channel};
use std::time::{Duration, Instant};

use crate::Lab;
use crate::data::prepare::default_spec_for_lab;
use crate::data::{CsvError, CsvOptions, LoadJob, LoadRequest, MissingPolicy, Table};
use crate::ui::app::BayesExplorerApp;
use crate::ui::lab_data::LabData;
use crate::ui::lab_state::{LoadTarget, Loaded};
use crate::ui::message::Message;
use crate::ui::preview::{Preview, PreviewOutcome};

impl BayesExplorerApp {
    /// Starts loading a dataset for a lab on a background thread; what the lab has stays until it succeeds.
    pub(super) fn start_load(&mut self, lab: Lab, request: LoadRequest, target: LoadTarget) {
        let ctx = self.ctx.clone();
        let state = self.lab_mut(lab);
        if let Some((old, _)) = state.loading.take() {
            old.cancel();
        }
        let then = {
            let (request, target) = (request.clone(), target.clone());
            move |table| ready(lab, table, request, target)
        };
        state.loading = Some((LoadJob::spawn_then(request, then, move || ctx.request_repaint()), target));
    }

    /// Puts the table the user chose in the preview into its lab, its rows checked on a loader thread (a
    /// file of millions of rows takes a while to copy without those that miss a value).
    fn use_previewed(&mut self, preview: Preview) {
        let ctx = self.ctx.clone();
        let Preview { lab, table, spec, request, .. } = preview;
        let state = self.lab_mut(lab);
        if let Some((old, _)) = state.loading.take() {
            old.cancel();
        }
        let work = {
            let request = request.clone();
            move |_: &dyn crate::data::csv::Progress| Ok(Loaded::Data(LabData::new(table, spec, request)))
        };
        let job = LoadJob::spawn_work(request, work, move || ctx.request_repaint());
        state.loading = Some((job, LoadTarget::Previewed));
    }

    /// Loads a user's file for the current tab (after the dialog, a drop or the path field); a run file (`.json`) is
    /// opened as a run, so that a run can be opened where no file dialog answers.
    pub(super) fn load_file(&mut self, path: PathBuf) {
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
            self.open_run(Some(path));
            return;
        }
        let request = LoadRequest::File { path, options: CsvOptions::default() };
        self.start_load(self.settings.tab, request, LoadTarget::Preview);
    }

    /// Opens the native file dialog on its own thread.
    pub(super) fn open_file_dialog(&mut self) {
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
    pub(super) fn apply_data(&mut self, lab: Lab, data: LabData) {
        let Some(data) = self.data_or_ask(lab, data) else { return };
        let state = self.lab_mut(lab);
        if let crate::data::LoadRequest::Synth(spec) = &data.request {
            // The generator's fields say what is on show.
            state.generator = Some(*spec);
        }
        state.worker = None;
        state.run_source = crate::ui::lab_state::RunSource::default();
        state.worker_state = None;
        state.snapshot = None;
        state.run_origin = None;
        state.forget_continuation();
        state.view = crate::ui::data_view::DataViewState::default();
        let left = crate::data::prepare::LeftOut::of(&data.table);
        if left.rows > 0 {
            let text = format!("{}: left out {left}", data.table.name);
            state.message = Some(Message::warning(text).about_loading(&data.request));
        } else if state.message.as_ref().is_some_and(|m| !m.is_error()) {
            // Notes are about the data being replaced; errors stay until the user dismisses them.
            state.message = None;
        }
        // Settings that follow the data: the BNN's epochs, the VAE's likelihood on a table.
        let n_features = data.spec.feature_columns().len();
        let followed = match lab {
            Lab::Bnn => {
                let (n_train, _) = crate::data::prepare::split_counts(data.table.n_rows(), data.spec.test_fraction);
                state.bnn.data_classes = match data.spec.output_column() {
                    Some((j, crate::data::Role::Label)) => data.table.columns.get(j).map(|c| c.n_distinct),
                    _ => None,
                };
                state.bnn.set_data_size(n_train, n_features)
            }
            Lab::Vae => {
                let images = crate::data::prepare::features_form_images(&data.table, &data.spec);
                state.vae.set_data_inputs(n_features, images)
            }
            Lab::Flow => None,
        };
        // Said in the message line when the user has seen the settings (not the first data at launch, nor data
        // whose settings the last session's replace).
        if let Some(followed) = followed
            && state.data.is_some()
            && state.restored_settings.is_none()
        {
            state.message = Some(match state.message.take() {
                // A warning about this data, or an error still to dismiss, stays, with the settings after it.
                Some(mut m) if m.is_warning() || m.is_error() => {
                    m.text = format!("{}. {followed}", m.text.trim_end_matches('.'));
                    m
                }
                _ => Message::note(followed),
            });
        }
        let entry = (lab, data.request.clone(), Some(data.spec.clone()));
        state.data = Some(data);
        self.settings.labs.retain(|(l, _, _)| *l != lab);
        self.settings.labs.push(entry);
    }

    pub(super) fn poll_dialog(&mut self) {
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

    pub(super) fn poll_load(&mut self, lab: Lab) {
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
            Ok(Loaded::Data(data)) => {
                self.apply_data(lab, data);
                // The last session's settings, unless its model is still coming (they go in after it); not over
                // the data the user chose.
                if target != LoadTarget::Previewed && !self.restoring(lab) {
                    self.lab_mut(lab).apply_restored_settings();
                }
            }
            Ok(Loaded::Preview(preview)) => self.preview = Some(*preview),
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

    /// Draws the preview window, if open, and carries out what the user chose in it.
    pub(super) fn preview_ui(&mut self, ctx: &egui::Context) {
        let Some(preview) = self.preview.take() else { return };
        match crate::ui::preview::preview_window(preview, ctx) {
            PreviewOutcome::Open(preview) => self.preview = Some(preview),
            PreviewOutcome::Cancelled => {}
            PreviewOutcome::Use(preview) => {
                self.settings.tab = preview.lab;
                self.use_previewed(preview);
            }
            PreviewOutcome::Reload(lab, request) => self.start_load(lab, request, LoadTarget::Preview),
        }
    }
}

/// What a load of `request` for `lab` makes of its `table` on the loader thread, for `target`: the preview of a
/// user's file with the roles the lab would give it, or the lab's data with the roles asked for (where they fit the
/// table) or the lab's own, its rows checked against them.
fn ready(lab: Lab, table: Table, request: LoadRequest, target: LoadTarget) -> Loaded {
    match target {
        LoadTarget::Preview => {
            let spec = default_spec_for_lab(lab, &table);
            Loaded::Preview(Box::new(Preview::new(lab, table, spec, request)))
        }
        LoadTarget::Apply(spec) => {
            let spec =
                spec.filter(|s| s.roles.len() == table.n_cols()).unwrap_or_else(|| default_spec_for_lab(lab, &table));
            Loaded::Data(LabData::new(table, spec, request))
        }
        LoadTarget::Fallback | LoadTarget::Previewed => {
            let spec = default_spec_for_lab(lab, &table);
            Loaded::Data(LabData::new(table, spec, request))
        }
    }
}
