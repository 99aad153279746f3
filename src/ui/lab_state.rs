//! One lab's state: its dataset and the load in progress, its message, its training run (worker, snapshot, what
//! the run was started from and where it came from), and each lab page's own settings and views.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::Lab;
use crate::data::prepare::{DataSpec, Prepared};
use crate::data::{LoadJob, LoadRequest, Table};
use crate::models::bnn::BnnView;
use crate::models::vae::VaeView;
use crate::train::runfile::{AnyRun, KeptModel, RunConfig};
use crate::train::{ModelView, RunSnapshot, Worker, WorkerState};
use crate::ui::export::{ExportKind, ExportRequest, history_request};
use crate::ui::history::{ModelBytes, ModelHistory};
use crate::ui::lab_data::LabData;
use crate::ui::message::Message;

/// One lab's state: its data, its run and what the user sees of them.
pub struct LabState {
    /// Which lab.
    pub lab: Lab,
    /// The dataset in use; a failed load leaves it as it was.
    pub data: Option<LabData>,
    /// A load whose result replaces `data` when it succeeds (or opens the preview): read and readied on the loader
    /// thread.
    pub(crate) loading: Option<(LoadJob<Loaded>, LoadTarget)>,
    /// The generator's fields (kind, points, noise, seed): the generated set on show once one is (whoever generated
    /// it: here, the last session, a run file), so that "Generate" makes it again; `None` for the lab's default.
    pub(crate) generator: Option<crate::data::SynthSpec>,
    /// An error or note for the user.
    pub message: Option<Message>,
    /// The training run, if any.
    pub(crate) worker: Option<Worker>,
    /// Where the run stands.
    pub worker_state: Option<WorkerState>,
    /// Latest snapshot of the run.
    pub snapshot: Option<RunSnapshot>,
    /// Epochs for the next run.
    pub epochs: usize,
    /// Learning rate for the next run, or to send to the running one.
    pub learning_rate: f64,
    pub(crate) view: crate::ui::data_view::DataViewState,
    /// The flow lab's settings and views (unused by the other labs).
    pub(crate) flow: crate::ui::flow::FlowUiState,
    /// The BNN lab's settings and views (unused by the other labs).
    pub(crate) bnn: crate::ui::bnn_state::BnnUiState,
    /// The VAE lab's settings and views (unused by the other labs).
    pub(crate) vae: crate::ui::vae_state::VaeUiState,
    /// The settings and data the run on show was started from (for "Save run…").
    pub(crate) run_origin: Option<RunOrigin>,
    /// The last session's settings for the next run, applied once its data (and its model) are back.
    pub(crate) restored_settings: Option<RunConfig>,
    /// Where the run on show comes from, which decides whether replacing it asks first (`discard.rs`).
    pub(crate) run_source: RunSource,
    /// The run opened from a file (or the last session's) on show, kept for "Continue" (`continuing.rs`).
    pub(crate) saved_run: Option<SavedRun>,
    /// "Epochs to add" as the user set it; `None` for its default.
    pub(crate) continue_epochs: Option<usize>,
    /// "Continue" was clicked for a run trained here: its epochs to add, until the worker's checkpoint comes.
    pub(crate) continue_asked: Option<usize>,
    /// "Save run…" was clicked for a run trained here: where to, until the worker's checkpoint comes.
    pub(crate) save_asked: Option<PendingSave>,
    /// The Explain panel beside the views: open or not, and what it keeps (`explain.rs`).
    pub explain: crate::ui::explain::ExplainState,
}

/// A run opened from a file (or the last session's), kept to be continued from the state it holds.
#[derive(Clone, Debug)]
pub(crate) struct SavedRun {
    /// The run, with its training state when it has one.
    pub run: Arc<AnyRun>,
    /// Its data, prepared as for training.
    pub prepared: Arc<Prepared>,
}

/// A "Save run…" waiting for the worker's checkpoint.
#[derive(Clone, Debug)]
pub(crate) struct PendingSave {
    /// Where to save the run; `None` asks with the save dialog.
    pub path: Option<PathBuf>,
}

/// What to do with a finished load.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum LoadTarget {
    /// Use it at once (built-in data, restoring the last session).
    Apply(Option<DataSpec>),
    /// Show the preview first (a user's file).
    Preview,
    /// Use it at once in place of data that could not be loaded: the error that says why stays on show.
    Fallback,
    /// Use the table the user chose in the preview, with its roles; only its rows are left to check.
    Previewed,
}

/// What a load made on the loader thread, so that the UI thread only puts it in place.
pub(crate) enum Loaded {
    /// A lab's data, its rows checked against its roles ([`LabData::new`]).
    Data(LabData),
    /// A user's file, with the roles the lab would give it, for the preview.
    Preview(Box<crate::ui::preview::Preview>),
}

/// What a run was started from: what "Save run…" needs besides the worker's snapshot.
#[derive(Clone, Debug)]
pub(crate) struct RunOrigin {
    /// The settings the run was built with.
    pub config: RunConfig,
    /// Its data.
    pub table: Arc<Table>,
    /// How the data was loaded.
    pub request: LoadRequest,
    /// Roles and split.
    pub spec: DataSpec,
    /// The models the lab's epoch scrubber kept, for a run file: filled by [`LabState::origin_to_save`] (empty in
    /// the lab's own copy).
    pub kept: Vec<KeptModel>,
}

/// Where a lab's run comes from, which decides whether replacing it asks first (`discard.rs`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum RunSource {
    /// The last session's, restored at launch (or none): its only copy is the session folder's file, which the
    /// lab's next run replaces.
    #[default]
    LastSession,
    /// Started here, then.
    Started(Instant),
    /// Opened with "Open run…": the file keeps it.
    File,
}

impl LabState {
    pub(crate) fn new(lab: Lab) -> Self {
        Self {
            lab,
            data: None,
            loading: None,
            generator: None,
            message: None,
            worker: None,
            worker_state: None,
            snapshot: None,
            epochs: 100,
            learning_rate: 1e-3,
            view: crate::ui::data_view::DataViewState::default(),
            flow: crate::ui::flow::FlowUiState::default(),
            bnn: crate::ui::bnn_state::BnnUiState::default(),
            vae: crate::ui::vae_state::VaeUiState::default(),
            run_origin: None,
            restored_settings: None,
            run_source: RunSource::default(),
            saved_run: None,
            continue_epochs: None,
            continue_asked: None,
            save_asked: None,
            explain: crate::ui::explain::ExplainState::default(),
        }
    }

    /// The settings of this lab's next run, as JSON for the persisted settings' `run_settings`.
    pub(crate) fn settings_json(&self) -> Option<(Lab, String)> {
        let json = match self.lab {
            Lab::Bnn => serde_json::to_string(&self.bnn.config),
            Lab::Vae => serde_json::to_string(&self.vae.config),
            Lab::Flow => serde_json::to_string(&self.flow.config),
        };
        json.map_err(|e| log::warn!("cannot keep the {} settings: {e}", self.lab.tab_name()))
            .ok()
            .map(|j| (self.lab, j))
    }

    /// Puts the settings a run was made with (or the last session's) into this lab's settings panel.
    pub(crate) fn show_settings(&mut self, config: RunConfig) {
        match config {
            RunConfig::Bnn(config) => self.bnn.restore_config(config),
            RunConfig::Vae(config) => self.vae.restore_config(config),
            RunConfig::Flow(config) => self.flow.config = config,
        }
    }

    /// Puts the last session's settings in place, once (see [`Self::restored_settings`]).
    pub(crate) fn apply_restored_settings(&mut self) {
        if let Some(config) = self.restored_settings.take() {
            self.show_settings(config);
        }
    }

    /// Forgets what "Continue" would carry on from (the run on show is being replaced).
    pub(crate) fn forget_continuation(&mut self) {
        self.saved_run = None;
        self.continue_epochs = None;
        self.continue_asked = None;
        self.save_asked = None;
    }

    /// True while a dataset is being loaded.
    #[must_use]
    pub fn is_loading(&self) -> bool {
        self.loading.is_some()
    }

    /// Why this lab's next run cannot train with its settings (the first setting refused), or `None`.
    #[must_use]
    pub fn settings_refusal(&self) -> Option<String> {
        match self.lab {
            Lab::Bnn => self.bnn.settings_refusal(),
            Lab::Vae => self.vae.settings_refusal(),
            Lab::Flow => self.flow.settings_refusal(),
        }
    }

    /// The learning rate of this lab's next run, as its settings panel has it.
    pub(crate) fn next_learning_rate(&self) -> f64 {
        match self.lab {
            Lab::Bnn => self.bnn.config.learning_rate,
            Lab::Vae => self.vae.config.learning_rate,
            Lab::Flow => self.flow.config.learning_rate,
        }
    }

    /// What "Export data…" writes for `kind` from what this lab's page shows now (its loss curves' history, or a
    /// plot of the lab's own); `None` when it has no such data yet.
    pub(crate) fn export_request(&self, kind: ExportKind) -> Option<ExportRequest> {
        match (self.lab, kind) {
            (lab, ExportKind::History) => self.snapshot.as_ref().map(|s| history_request(lab, s)),
            (Lab::Bnn, _) => self.bnn.export_request(kind),
            (Lab::Vae, _) => self.vae.export_request(kind),
            (Lab::Flow, _) => self.flow.export_request(kind),
        }
    }

    /// The export an "Export data…" button on this lab's page asked for this frame, if any (taken: asked once).
    pub(crate) fn take_export_request(&mut self) -> Option<ExportRequest> {
        [&mut self.bnn.export, &mut self.vae.export, &mut self.flow.export].into_iter().find_map(Option::take)
    }

    /// What a run file of the lab's run needs besides its snapshot, with the models its epoch scrubber kept; `None`
    /// without a run.
    pub(crate) fn origin_to_save(&self) -> Option<RunOrigin> {
        let origin = self.run_origin.clone()?;
        let kept = match self.lab {
            Lab::Flow => kept_models(&self.flow.scrubber.history, |step, params| ModelView::Flow { step, params }),
            Lab::Vae => kept_models(&self.vae.scrubber.history, |step, params| {
                let view = VaeView { params, originals: Arc::default(), reconstructions: Arc::default() };
                ModelView::Vae { step, view: Arc::new(view) }
            }),
            Lab::Bnn => kept_models(&self.bnn.scrubber.history, |step, params| ModelView::Bnn {
                step,
                view: Arc::new(BnnView { params, history: Arc::default() }),
            }),
        };
        Some(RunOrigin { kept, ..origin })
    }

    /// The lab's epoch scrubber's memory, in words ("21 models of this run kept, 199 MiB of 200 MiB"), once it
    /// keeps any.
    pub(crate) fn kept_summary(&self) -> Option<String> {
        let (n, bytes, budget) = match self.lab {
            Lab::Flow => history_size(&self.flow.scrubber.history),
            Lab::Vae => history_size(&self.vae.scrubber.history),
            Lab::Bnn => history_size(&self.bnn.scrubber.history),
        };
        let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
        (n > 0).then(|| {
            format!(
                "{} of this run kept for the epoch scrubber, {:.1} MiB of at most {:.0} MiB",
                crate::ui::count::count(n, "model"),
                mib(bytes),
                mib(budget)
            )
        })
    }

    /// Puts an opened run's kept models into the lab's epoch scrubber.
    pub(crate) fn restore_kept(&mut self, kept: &[KeptModel]) {
        for k in kept {
            match &k.model {
                ModelView::Flow { params, .. } => self.flow.scrubber.history.push(k.step, k.epoch, Arc::clone(params)),
                ModelView::Vae { view, .. } => {
                    self.vae.scrubber.history.push(k.step, k.epoch, Arc::clone(&view.params));
                }
                ModelView::Bnn { view, .. } => {
                    self.bnn.scrubber.history.push(k.step, k.epoch, Arc::clone(&view.params));
                }
            }
        }
    }

    /// The model step the lab's views show (`None` before they show one): for `bench window`.
    pub(crate) fn views_step(&self) -> Option<u64> {
        match self.lab {
            Lab::Bnn => self.bnn.view.as_ref().map(|_| self.bnn.view_step),
            Lab::Vae => self.vae.view.as_ref().map(|_| self.vae.view_step),
            Lab::Flow => self.flow.views_step(),
        }
    }

    /// Starts a replay of the run's training at `now` (the window's clock, in seconds), or stops the one under way
    /// (R): see [`crate::ui::history::EpochScrubber::toggle_replay`]. Every view follows the model on show.
    pub(crate) fn toggle_replay(&mut self, now: f64) {
        match self.lab {
            Lab::Bnn => {
                if self.bnn.scrubber.toggle_replay(now) {
                    self.bnn.follow_scrubber();
                }
            }
            Lab::Vae => {
                self.vae.scrubber.toggle_replay(now);
            }
            Lab::Flow => self.flow.toggle_replay(now),
        }
    }

    /// The label of the page on show.
    pub(crate) fn page_label(&self) -> &'static str {
        match self.lab {
            Lab::Bnn => self.bnn.page.label(),
            Lab::Vae => self.vae.page.label(),
            Lab::Flow => self.flow.page.label(),
        }
    }

    /// Opens the page whose tab reads `label` (any case).
    pub(crate) fn open_page(&mut self, label: &str) -> Result<(), String> {
        let wanted = label.to_lowercase();
        let found = match self.lab {
            Lab::Bnn => crate::ui::bnn_state::BnnPage::ALL
                .into_iter()
                .find(|p| p.label().to_lowercase() == wanted)
                .map(|p| self.bnn.page = p),
            Lab::Vae => crate::ui::vae_state::VaePage::ALL
                .into_iter()
                .find(|p| p.label().to_lowercase() == wanted)
                .map(|p| self.vae.page = p),
            Lab::Flow => crate::ui::flow::FlowPage::ALL
                .into_iter()
                .find(|p| p.label().to_lowercase() == wanted)
                .map(|p| self.flow.page = p),
        };
        found.ok_or_else(|| {
            let pages: Vec<&str> = match self.lab {
                Lab::Bnn => crate::ui::bnn_state::BnnPage::ALL.iter().map(|p| p.label()).collect(),
                Lab::Vae => crate::ui::vae_state::VaePage::ALL.iter().map(|p| p.label()).collect(),
                Lab::Flow => crate::ui::flow::FlowPage::ALL.iter().map(|p| p.label()).collect(),
            };
            format!("the {} lab has no page {label:?}; its pages are: {}", self.lab.tab_name(), pages.join(", "))
        })
    }

    /// Opens the page whose views cost the most while a run trains: the flow's stages (points, grid and density
    /// of every stage), the VAE's latent space (every image encoded, the manifold decoded), the BNN's weights
    /// (every weight's histogram and the matrix).
    pub(crate) fn open_busiest_page(&mut self) {
        self.bnn.page = crate::ui::bnn_state::BnnPage::Weights;
        self.vae.page = crate::ui::vae_state::VaePage::Latent;
        self.flow.page = crate::ui::flow::FlowPage::StepThrough;
    }

    /// Sets the epochs of this lab's next run.
    pub(crate) fn set_next_epochs(&mut self, epochs: usize) {
        self.epochs = epochs;
        match self.lab {
            Lab::Bnn => self.bnn.config.epochs = epochs,
            Lab::Vae => self.vae.config.epochs = epochs,
            Lab::Flow => self.flow.config.epochs = epochs,
        }
    }

    /// Training rows of this lab's data (its split's), once it is loaded.
    pub(crate) fn training_rows(&self) -> Option<usize> {
        let data = self.data.as_ref()?;
        Some(crate::data::prepare::split_counts(data.table.n_rows(), data.spec.test_fraction).0)
    }
}

/// The models of `history` as the worker's copies, for a run file.
fn kept_models<P: ModelBytes>(history: &ModelHistory<P>, view: impl Fn(u64, Arc<P>) -> ModelView) -> Vec<KeptModel> {
    let pinned = history.pinned();
    history
        .entries()
        .iter()
        .map(|e| KeptModel {
            step: e.step,
            epoch: e.epoch,
            model: view(e.step, Arc::clone(&e.params)),
            pinned: pinned == Some(e.step),
        })
        .collect()
}

/// Models kept, their bytes and the budget.
fn history_size<P: ModelBytes>(history: &ModelHistory<P>) -> (usize, usize, usize) {
    (history.entries().len(), history.bytes(), history.budget_bytes())
}
