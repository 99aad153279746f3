//! The BNN lab's page: the network's settings, and the views of what it learns — weight distributions
//! (`bnn_weights.rs`), Monte Carlo predictions with intervals, their calibration, an out-of-distribution probe,
//! the loss terms, and a comparison of runs (the course's 30 % against 100 % lesson).

use std::sync::Arc;

use egui::Color32;
use egui_extras::{Column, TableBuilder};
use egui_plot::{Bar, BarChart, FilledArea, HLine, Line, MarkerShape, PlotPoints, Points, VLine};
use serde::{Deserialize, Serialize};

use crate::data::prepare::{OutputKind, Prepared};
use crate::models::Activation;
use crate::models::bnn::{
    BnnConfig, BnnView, DEFAULT_STEP_BUDGET, Head, KlEstimate, MAX_FULL_COVARIANCE_PARAMS, Posterior, PredictiveRows,
    default_epochs,
};
use crate::models::optim::OptimizerKind;
use crate::models::stats::{Histogram, INTERVAL_LEVELS, freedman_diaconis_bins};
use crate::train::bnn_view::{BnnProbe, BnnViewRequest, BnnViewResult, BnnViewWorker, PredictiveView, ProbeView};
use crate::train::export::{
    calibration_table, class_values, epoch_histogram, predictive_table, stacked_histograms, weight_histograms_table,
};
use crate::train::{EpochRecord, ModelView, RunSnapshot};
use crate::ui::bnn_weights::{HeatQuantity, HistoryMode, WeightQuantity};
use crate::ui::count::count;
use crate::ui::export::{ExportKind, ExportRequest, export_button};
use crate::ui::image_export::{save_image_button, saveable};
use crate::ui::lab_page::{
    epoch_curves, epoch_series, legend_figure, loss_page, start_view_thread, view_tabs, waiting,
};
use crate::ui::plot_axes;
use crate::ui::settings_check::{
    self, HIDDEN_ACCEPTS, Verdict, choice_row, epochs_row, hidden_row, next_run_only, number_row, number_row_with,
    seed_row,
};

/// Which view the page shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BnnPage {
    /// Histograms, heat map, picked weight.
    Weights,
    /// The predictive table and predicted-vs-actual plot.
    Predictions,
    /// Interval coverage against nominal.
    Calibration,
    /// Move a test wine's features and watch the prediction.
    Probe,
    /// Loss terms and errors per epoch.
    Loss,
    /// Finished runs side by side.
    Compare,
}

impl BnnPage {
    const ALL: [Self; 6] =
        [Self::Weights, Self::Predictions, Self::Calibration, Self::Probe, Self::Loss, Self::Compare];

    fn label(self) -> &'static str {
        match self {
            Self::Weights => "Weight distributions",
            Self::Predictions => "Predictions",
            Self::Calibration => "Calibration",
            Self::Probe => "Out-of-distribution probe",
            Self::Loss => "Loss curves",
            Self::Compare => "Compare runs",
        }
    }
}

/// A run's figures, for the comparison: a finished run, or one discarded before its end (kept with the session).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSummary {
    /// The dataset it trained on, as the lab names it ("Wine quality, red (UCI)", a file's name).
    pub dataset: String,
    /// Its settings.
    pub config: BnnConfig,
    /// The last epoch it completed when it was discarded before its end; `None` when it finished.
    pub stopped_at: Option<usize>,
    /// The last epoch's metrics.
    pub record: EpochRecord,
    /// Per test row, max - min of the Monte Carlo predictions (for the distribution of ranges).
    pub ranges: Vec<f32>,
}

impl Default for RunSummary {
    fn default() -> Self {
        Self {
            dataset: String::new(),
            config: BnnConfig::default(),
            stopped_at: None,
            record: EpochRecord { epoch: 0, metrics: Vec::new() },
            ranges: Vec::new(),
        }
    }
}

/// The BNN page's state (transient, except the settings, which the caller may persist).
pub struct BnnUiState {
    /// Settings of the next run.
    pub config: BnnConfig,
    /// The hidden layers as typed ("8, 8").
    pub hidden_text: String,
    /// The view on show.
    pub page: BnnPage,
    /// Show the data table in place of the views.
    pub show_data: bool,
    /// Layer of the histograms and heat map.
    pub layer: usize,
    /// What the histograms count.
    pub quantity: WeightQuantity,
    /// One epoch or stacked.
    pub history_mode: HistoryMode,
    /// Index into the history on the epoch slider; `None` follows the training.
    pub epoch_index: Option<usize>,
    /// What the heat map colours.
    pub heat: HeatQuantity,
    /// (layer, parameter index) of the picked weight.
    pub selected_weight: Option<(usize, usize)>,
    /// Monte Carlo passes for the views.
    pub n_samples: usize,
    /// The probed test row.
    pub probe_row: usize,
    /// The probe's features in the data's units.
    pub probe_values: Vec<f32>,
    /// The feature the probe sweeps.
    pub sweep_feature: usize,
    /// Finished runs, oldest first.
    pub runs: Vec<RunSummary>,
    /// Set by "Train …" buttons on the page; the lab starts a run and clears it.
    pub(crate) start_requested: bool,
    /// Names of the features (rows of the first layer's matrix).
    pub(crate) feature_names: Vec<String>,
    /// Set by an "Export data…" button; the lab starts the export and clears it.
    pub(crate) export: Option<ExportRequest>,
    /// Training rows of the lab's dataset, for the default epochs.
    n_train_rows: Option<usize>,
    /// Feature columns of the lab's dataset (the first layer's inputs), for the full covariance's limit.
    n_features: Option<usize>,
    /// The epochs the app last chose for the data (or the defaults); a different value in the field is the
    /// user's own, which new data keeps.
    epochs_picked: Option<usize>,
    prepared: Option<Arc<Prepared>>,
    /// The settings of the run on show.
    run_config: Option<BnnConfig>,
    run: u64,
    worker: Option<BnnViewWorker>,
    view: Option<Arc<BnnView>>,
    view_step: u64,
    predictive: Option<Arc<PredictiveView>>,
    probe: Option<Arc<ProbeView>>,
    last_request: Option<(u64, u64, usize, Option<BnnProbe>)>,
    error: Option<String>,
}

impl Default for BnnUiState {
    fn default() -> Self {
        let config = BnnConfig::default();
        Self {
            hidden_text: settings_check::hidden_text(&config.hidden),
            config,
            page: BnnPage::Weights,
            show_data: false,
            layer: 0,
            quantity: WeightQuantity::Samples,
            history_mode: HistoryMode::Single,
            epoch_index: None,
            heat: HeatQuantity::Mean,
            selected_weight: None,
            n_samples: 100,
            probe_row: 0,
            probe_values: Vec::new(),
            sweep_feature: 0,
            runs: Vec::new(),
            start_requested: false,
            feature_names: Vec::new(),
            export: None,
            n_train_rows: None,
            n_features: None,
            epochs_picked: Some(BnnConfig::default().epochs),
            prepared: None,
            run_config: None,
            run: 0,
            worker: None,
            view: None,
            view_step: 0,
            predictive: None,
            probe: None,
            last_request: None,
            error: None,
        }
    }
}

impl BnnUiState {
    /// Forgets the views of the previous run; `prepared` is the new run's data, `config` its settings.
    pub(crate) fn new_run(&mut self, prepared: Arc<Prepared>, config: BnnConfig) {
        self.feature_names.clone_from(&prepared.feature_names);
        self.probe_row = self.probe_row.min(prepared.n_test().saturating_sub(1));
        self.probe_values = test_row_in_units(&prepared, self.probe_row);
        self.sweep_feature = self.sweep_feature.min(prepared.n_features().saturating_sub(1));
        self.prepared = Some(prepared);
        self.run_config = Some(config);
        self.run += 1;
        self.view = None;
        self.predictive = None;
        self.probe = None;
        self.last_request = None;
        self.epoch_index = None;
        self.selected_weight = None;
        self.error = None;
    }

    /// Takes the settings of an opened run as those of the next run (shown in the side panel).
    pub(crate) fn restore_config(&mut self, config: BnnConfig) {
        self.hidden_text = settings_check::hidden_text(&config.hidden);
        // Whose epochs these are is not known: new data sets its default, saying so.
        self.epochs_picked = None;
        self.n_samples = config.predictive_samples.max(1);
        self.config = config;
    }

    /// A dataset with `n_train` training rows arrived: the epochs go to their default for it (the course's step
    /// budget, [`default_epochs`]), unless the user typed their own, which stays. Returns what was done, for the
    /// lab's message line, when the field changed or the user's value differs from the data's default.
    pub(crate) fn set_data_size(&mut self, n_train: usize, n_features: usize) -> Option<String> {
        self.n_train_rows = Some(n_train);
        self.n_features = Some(n_features);
        let default = default_epochs(n_train, self.config.batch_size);
        let before = self.config.epochs;
        let rows = settings_check::number(n_train as f64);
        if self.epochs_picked.is_some_and(|picked| picked != before) {
            return (before != default).then(|| {
                format!(
                    "Epochs kept at {before}, your value; the default for {rows} training rows would be {default} (about {} steps).",
                    settings_check::number(DEFAULT_STEP_BUDGET as f64)
                )
            });
        }
        self.config.epochs = default;
        self.epochs_picked = Some(default);
        (before != default).then(|| {
            format!(
                "Epochs set to {default} for {rows} training rows (about {} steps); change it under Settings.",
                settings_check::number(DEFAULT_STEP_BUDGET as f64)
            )
        })
    }

    /// Records a finished run, trained on `dataset`, for the comparison.
    pub(crate) fn finished(&mut self, record: &EpochRecord, dataset: &str) {
        self.keep_run(record, dataset, None);
    }

    /// Records the run on show for the comparison: finished (`stopped_at` is `None`), or discarded after
    /// `stopped_at` epochs. A run already there is not added twice.
    pub(crate) fn keep_run(&mut self, record: &EpochRecord, dataset: &str, stopped_at: Option<usize>) {
        let Some(config) = &self.run_config else { return };
        let ranges = match self.predictive.as_ref().map(|p| &p.predictive.rows) {
            Some(PredictiveRows::Regression(rows)) => {
                rows.iter().map(crate::models::bnn::RegressionRow::range).collect()
            }
            Some(PredictiveRows::Classes(rows)) => rows.iter().map(|r| r.max - r.min).collect(),
            None => Vec::new(),
        };
        let run = RunSummary {
            dataset: dataset.to_owned(),
            config: config.clone(),
            stopped_at,
            record: record.clone(),
            ranges,
        };
        if !self.runs.iter().any(|r| r.config == run.config && r.dataset == run.dataset && r.record == run.record) {
            self.runs.push(run);
        }
    }

    /// What "Export data…" writes for `kind`, from what the page shows now; `None` when it has no such data yet.
    pub(crate) fn export_request(&self, kind: ExportKind) -> Option<ExportRequest> {
        match kind {
            ExportKind::WeightHistograms => {
                let view = BnnView::clone(self.view.as_ref()?);
                let (layer, quantity) = (self.layer, self.quantity);
                match self.history_mode {
                    HistoryMode::Single => {
                        let index = self.epoch_index.unwrap_or(usize::MAX).min(view.history.len().checked_sub(1)?);
                        Some(ExportRequest::new("bnn-weight-histogram.csv", move || {
                            let shown: Vec<_> = epoch_histogram(&view, layer, quantity, index).into_iter().collect();
                            weight_histograms_table(&shown)
                        }))
                    }
                    HistoryMode::Stacked => Some(ExportRequest::new("bnn-weight-histograms.csv", move || {
                        weight_histograms_table(&stacked_histograms(&view, layer, quantity))
                    })),
                }
            }
            ExportKind::Predictive => {
                let shown = Arc::clone(self.predictive.as_ref()?);
                let classes = self.prepared.as_deref().map(class_values).unwrap_or_default();
                Some(ExportRequest::new("bnn-predictive.csv", move || predictive_table(&shown.predictive, &classes)))
            }
            ExportKind::Calibration => {
                let shown = Arc::clone(self.predictive.as_ref()?);
                Some(ExportRequest::new("bnn-calibration.csv", move || calibration_table(&shown.predictive)))
            }
            ExportKind::History | ExportKind::Latents | ExportKind::Stages | ExportKind::Density => None,
        }
    }

    /// True once the view thread has sent the test set's predictions (for tests).
    #[must_use]
    pub fn has_predictions(&self) -> bool {
        self.predictive.is_some()
    }

    fn poll(&mut self, snapshot: Option<&RunSnapshot>, ctx: &egui::Context) {
        if let Some(ModelView::Bnn { step, view }) = snapshot.and_then(|s| s.model.clone()) {
            self.view = Some(view);
            self.view_step = step;
        }
        let (Some(view), Some(prepared)) = (&self.view, &self.prepared) else { return };
        start_view_thread(&mut self.worker, &mut self.error, ctx, crate::train::bnn_view::spawn);
        let Some(worker) = &self.worker else { return };
        for result in worker.drain() {
            match result {
                BnnViewResult::Predictive(p) if p.run == self.run => self.predictive = Some(p),
                BnnViewResult::Predictive(_) => {}
                BnnViewResult::Probe(p) => self.probe = Some(p),
                BnnViewResult::Error(e) => self.error = Some(e),
            }
        }
        let probe =
            (self.page == BnnPage::Probe && self.probe_values.len() == prepared.n_features()).then(|| BnnProbe {
                features: self
                    .probe_values
                    .iter()
                    .zip(prepared.feature_mean.iter().zip(&prepared.feature_scale))
                    .map(|(v, (m, s))| (v - m) / s)
                    .collect(),
                sweep_feature: self.sweep_feature,
            });
        // The last accepted count (a 0 typed in the field is refused there, not drawn with).
        let n_samples = self.config.predictive_samples.clamp(1, 10_000);
        let key = (self.run, self.view_step, n_samples, probe.clone());
        if self.last_request.as_ref() != Some(&key) {
            worker.request(BnnViewRequest {
                params: Arc::clone(&view.params),
                step: self.view_step,
                run: self.run,
                data: Arc::clone(prepared),
                n_samples,
                probe,
            });
            self.last_request = Some(key);
        }
    }
}

/// A test row's features in the data's units.
fn test_row_in_units(prepared: &Prepared, row: usize) -> Vec<f32> {
    let d = prepared.n_features();
    prepared
        .x_test
        .get(row * d..(row + 1) * d)
        .map(|z| {
            z.iter()
                .zip(prepared.feature_mean.iter().zip(&prepared.feature_scale))
                .map(|(z, (m, s))| z * s + m)
                .collect()
        })
        .unwrap_or_default()
}

/// A run's settings in words, one phrase per setting, the training rows' fraction (the comparison's subject) first.
fn settings_in_words(c: &BnnConfig) -> Vec<String> {
    let posterior = match c.posterior {
        Posterior::Deterministic => "deterministic",
        Posterior::MeanField => "mean-field",
        Posterior::FullCovariance => "full covariance",
    };
    let kl = match c.kl {
        KlEstimate::ClosedForm => "closed-form KL",
        KlEstimate::MonteCarlo => "Monte Carlo KL",
    };
    vec![
        format!("{:.0} % of the training rows", c.train_fraction * 100.0),
        format!("{posterior} posterior"),
        format!("{} head", c.head.cli_name()),
        format!("hidden [{}]", settings_check::hidden_text(&c.hidden)),
        format!("{:?} activation", c.activation).to_lowercase(),
        if c.bayesian_output { "Bayesian output layer" } else { "deterministic output layer" }.to_owned(),
        format!("prior sd {}", c.prior_sd),
        kl.to_owned(),
        c.optimizer.name().to_owned(),
        format!("learning rate {}", c.learning_rate),
        format!("batch {}", c.batch_size),
        count(c.epochs, "epoch"),
        format!("seed {}", c.seed),
        count(c.predictive_samples, "pass"),
    ]
}

/// Every setting of a run, in words (the comparison's hover text).
fn run_label(c: &BnnConfig) -> String {
    settings_in_words(c).join(", ")
}

/// The runs' names in the comparison: each run's training rows and the settings that differ between `runs`
/// (what is the same for all of them says nothing), and where it stopped if it was discarded before its end.
#[must_use]
pub fn run_names(runs: &[RunSummary]) -> Vec<String> {
    let words: Vec<Vec<String>> = runs.iter().map(|r| settings_in_words(&r.config)).collect();
    let n_settings = words.first().map_or(0, Vec::len);
    let differ = |k: usize| words.iter().any(|w| w.get(k) != words[0].get(k));
    let shown: Vec<usize> = (0..n_settings).filter(|&k| k == 0 || differ(k)).collect();
    runs.iter()
        .zip(&words)
        .map(|(r, w)| {
            let mut name = shown.iter().filter_map(|&k| w.get(k).cloned()).collect::<Vec<_>>().join(", ");
            if let Some(epoch) = r.stopped_at {
                name = format!("{name}, stopped at epoch {epoch}");
            }
            name
        })
        .collect()
}

/// The datasets of `runs`, each with its runs' 1-based numbers, in order of first use.
fn datasets_of(runs: &[RunSummary]) -> Vec<(&str, Vec<usize>)> {
    let mut out: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        match out.iter_mut().find(|(d, _)| *d == r.dataset) {
            Some((_, numbers)) => numbers.push(i + 1),
            None => out.push((&r.dataset, vec![i + 1])),
        }
    }
    out
}

/// What an empty hidden-units field means in the BNN.
const LINEAR_MODEL: &str = "Empty: no hidden layer, a linear model (the inputs straight to the output).";

impl BnnUiState {
    /// Training rows the next run uses (its share of the training split), once the data is known.
    fn rows_used(&self) -> Option<usize> {
        self.n_train_rows.map(|n| train_subset_len(n, self.config.train_fraction))
    }

    /// Why the next run cannot train with these settings (the first setting refused), or `None`.
    #[must_use]
    pub fn settings_refusal(&self) -> Option<String> {
        let c = &self.config;
        settings_check::first_refusal(&[
            self.hidden_verdict(),
            settings_check::PRIOR_SD.check(c.prior_sd),
            settings_check::learning_rate(c.learning_rate),
            settings_check::batch_size(c.batch_size, self.rows_used()),
            settings_check::EPOCHS.check(c.epochs as f64),
            settings_check::MC_SAMPLES.check(self.n_samples as f64),
        ])
    }

    /// The hidden-units field's verdict: as every lab's, and refused when a full-covariance layer would be too
    /// large to train (the output layer, deterministic unless asked, is left to the trainer).
    fn hidden_verdict(&self) -> Verdict {
        hidden_verdict(&self.hidden_text, self.n_features, self.config.posterior)
    }
}

/// The BNN's hidden-units verdict for `text` with `n_features` inputs (when known) and `posterior` (see
/// [`BnnUiState::hidden_verdict`]).
fn hidden_verdict(text: &str, n_features: Option<usize>, posterior: Posterior) -> Verdict {
    let verdict = settings_check::hidden(text, LINEAR_MODEL);
    let (Ok(hidden), Some(d)) = (settings_check::parse_hidden(text), n_features) else {
        return verdict;
    };
    if posterior != Posterior::FullCovariance {
        return verdict;
    }
    let widths: Vec<usize> = std::iter::once(d).chain(hidden).collect();
    for (i, pair) in widths.windows(2).enumerate() {
        let k = pair[0] * pair[1] + pair[1];
        if k > MAX_FULL_COVARIANCE_PARAMS {
            return Verdict::Refused(format!(
                "Hidden units: layer {} would have {} parameters; the full-covariance posterior takes at most {} per layer. Use fewer units or the mean-field posterior.",
                i + 1,
                settings_check::number(k as f64),
                settings_check::number(MAX_FULL_COVARIANCE_PARAMS as f64)
            ));
        }
    }
    verdict
}

impl BnnUiState {
    /// The hidden layers from the field when it parses; when the field was not edited and the settings changed
    /// elsewhere (a script, a test), the field follows them. Either way, while the field is accepted it and the
    /// settings agree.
    fn sync_hidden(&mut self, edited: bool) {
        settings_check::sync_hidden(&mut self.hidden_text, &mut self.config.hidden, edited);
    }
}

/// Rows [`crate::models::bnn::train_subset`] keeps of `n_train` for `fraction`.
fn train_subset_len(n_train: usize, fraction: f64) -> usize {
    if fraction >= 1.0 { n_train } else { ((n_train as f64 * fraction).round() as usize).clamp(1, n_train.max(1)) }
}

/// The BNN's settings in the side panel; `running`: the settings of the run on show, if any (its values are shown
/// beside the fields that differ, and the fields say they apply to the next run).
pub(crate) fn bnn_settings_ui(bnn: &mut BnnUiState, running: Option<&BnnConfig>, ui: &mut egui::Ui) {
    let rows_used = bnn.rows_used();
    let on_show = running.is_some();
    let mut hidden_edited = false;
    let c = &mut bnn.config;
    egui::Grid::new("bnn-settings").num_columns(2).show(ui, |ui| {
        choice_row(ui, "Posterior", "bnn-posterior", c.posterior.label(), on_show, |ui| {
            for p in Posterior::ALL {
                ui.selectable_value(&mut c.posterior, p, p.label());
            }
        });
        choice_row(ui, "Head (regression)", "bnn-head", c.head.label(), on_show, |ui| {
            for h in Head::ALL {
                ui.selectable_value(&mut c.head, h, h.label());
            }
        });
        let hover = format!("Units per hidden layer, e.g. 8, 8: {HIDDEN_ACCEPTS}. Empty: a linear model.");
        let running_hidden = running.map(|r| r.hidden.as_slice());
        hidden_edited = hidden_row(ui, &mut bnn.hidden_text, hover, running_hidden, |text| {
            hidden_verdict(text, bnn.n_features, c.posterior)
        });
        choice_row(ui, "Activation", "bnn-activation", c.activation.name(), on_show, |ui| {
            for a in Activation::ALL {
                ui.selectable_value(&mut c.activation, a, a.name());
            }
        });
        number_row(ui, "Prior sd", &mut c.prior_sd, 0.01, running.map(|r| r.prior_sd), |v| {
            settings_check::PRIOR_SD.check(v)
        });
        let kl = if c.kl == KlEstimate::ClosedForm { "closed form" } else { "one-sample Monte Carlo" };
        choice_row(ui, "KL term", "bnn-kl", kl, on_show, |ui| {
            ui.selectable_value(&mut c.kl, KlEstimate::ClosedForm, "closed form");
            ui.selectable_value(&mut c.kl, KlEstimate::MonteCarlo, "one-sample Monte Carlo");
        });
        choice_row(ui, "Optimiser", "bnn-optimizer", c.optimizer.name(), on_show, |ui| {
            ui.selectable_value(&mut c.optimizer, OptimizerKind::RmsProp, "rmsprop");
            ui.selectable_value(&mut c.optimizer, OptimizerKind::Adam, "adam");
        });
        number_row_with(
            ui,
            "Learning rate",
            &mut c.learning_rate,
            1e-4,
            (running.map(|r| r.learning_rate), true),
            settings_check::learning_rate,
        );
        number_row(ui, "Batch size", &mut c.batch_size, 1.0, running.map(|r| r.batch_size), |v| {
            settings_check::batch_size(v, rows_used)
        });
        epochs_row(ui, &mut c.epochs, running.map(|r| r.epochs)).on_hover_text(format!(
            "Default: about {DEFAULT_STEP_BUDGET} steps over the whole training split, whatever share a run uses (the course's 500 epochs on its white wine are 8,500)"
        ));
        let id = ui.label("Training rows used").id;
        let r = ui
            .add(
                egui::Slider::new(&mut c.train_fraction, 0.05..=1.0)
                    .custom_formatter(|v, _| format!("{:.0} %", v * 100.0)),
            )
            .labelled_by(id)
            .on_hover_text("A fixed, seeded subset of the training split (the course compares 30 % with 100 %)");
        next_run_only(r, on_show);
        ui.end_row();
        seed_row(ui, &mut c.seed, running.map(|r| r.seed));
        number_row(ui, "Monte Carlo samples", &mut bnn.n_samples, 1.0, None, |v| {
            settings_check::MC_SAMPLES.check(v as f64)
        })
        .on_hover_text("Draws of the weights behind each prediction on the page; the run on show takes a new count at once");
    });
    bnn.sync_hidden(hidden_edited);
    if settings_check::MC_SAMPLES.check(bnn.n_samples as f64) == Verdict::Fine {
        bnn.config.predictive_samples = bnn.n_samples;
    }
    let r = ui
        .checkbox(&mut bnn.config.bayesian_output, "Output layer has a posterior too")
        .on_hover_text("The course keeps the output layer deterministic (Dense); tick to make every layer variational");
    next_run_only(r, on_show);
    if ui
        .button("Course defaults")
        .on_hover_text("The course's BNN: [8, 8] sigmoid, full covariance, squared error, RMSprop 1e-3, batch 256; epochs for the step budget")
        .clicked()
    {
        bnn.config = BnnConfig { seed: bnn.config.seed, ..BnnConfig::default() };
        if let Some(n) = bnn.n_train_rows {
            bnn.config.epochs = default_epochs(n, bnn.config.batch_size);
        }
        bnn.epochs_picked = Some(bnn.config.epochs);
        bnn.hidden_text = settings_check::hidden_text(&bnn.config.hidden);
        bnn.n_samples = bnn.config.predictive_samples;
    }
}

/// The BNN page's central area.
pub(crate) fn bnn_view_ui(bnn: &mut BnnUiState, snapshot: Option<&RunSnapshot>, ui: &mut egui::Ui) {
    bnn.poll(snapshot, ui.ctx());
    view_tabs(ui, bnn.error.as_deref(), &mut bnn.page, BnnPage::ALL.map(|p| (p, p.label())));
    let Some(view) = bnn.view.clone() else {
        waiting(ui, "Building the network…");
        return;
    };
    // Both ways: what is wider than the window (the comparison's table of runs, and the plot under it that takes
    // its width) scrolls into view rather than stay cut off.
    egui::ScrollArea::both().auto_shrink([false, false]).show(ui, |ui| match bnn.page {
        BnnPage::Weights => crate::ui::bnn_weights::weights_ui(bnn, &view, ui),
        BnnPage::Predictions => predictions_ui(bnn, ui),
        BnnPage::Calibration => calibration_ui(bnn, ui),
        BnnPage::Probe => probe_ui(bnn, ui),
        BnnPage::Loss => loss_page(ui, crate::Lab::Bnn, snapshot, &mut bnn.export, "bnn-loss", bnn_loss_ui),
        BnnPage::Compare => compare_ui(bnn, ui),
    });
}

fn predictions_ui(bnn: &mut BnnUiState, ui: &mut egui::Ui) {
    let Some(pv) = bnn.predictive.clone() else {
        waiting(ui, "Sampling predictions…");
        return;
    };
    let p = &pv.predictive;
    let target = bnn.prepared.as_ref().and_then(|d| d.output.as_ref()).map_or("target".to_owned(), |(n, _)| n.clone());
    match &p.rows {
        PredictiveRows::Regression(rows) => {
            let baseline = bnn.prepared.as_ref().map_or(f64::NAN, |d| {
                let mean = d.y_train.iter().map(|&v| f64::from(v)).sum::<f64>() / d.y_train.len().max(1) as f64;
                (d.y_test.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / d.y_test.len().max(1) as f64)
                    .sqrt()
            });
            ui.label(format!(
                "{}, step {}). Test RMSE of the mean {:.3} (predicting the training mean: {baseline:.3}); mean range of the passes {:.3}.",
                sampled(rows.len(), &pv),
                pv.step,
                p.error,
                p.mc_range_mean
            ));
            let aleatoric = rows.first().is_some_and(|r| r.aleatoric_sd.is_some());
            ui.horizontal(|ui| {
                ui.strong("Predicted against actual, with 95 % intervals");
                save_image_button(ui, "bnn-pred-vs-actual");
                plot_axes::legend_toggle(ui, "bnn-pred-vs-actual");
            });
            predicted_vs_actual_plot(rows, &target, ui);
            ui.horizontal(|ui| {
                ui.strong("Predictive table");
                if export_button(ui) {
                    bnn.export = bnn.export_request(ExportKind::Predictive);
                }
            });
            let mut table = TableBuilder::new(ui)
                .id_salt("bnn-predictive-table")
                .striped(true)
                .resizable(false)
                .max_scroll_height(320.0)
                .column(Column::auto().at_least(40.0));
            for _ in 0..(if aleatoric { 7 } else { 6 }) {
                table = table.column(Column::auto().at_least(60.0));
            }
            table
                .header(20.0, |mut h| {
                    let mut cols = vec!["Row", "Actual", "Mean", "Min", "Max", "Range", "95 % interval"];
                    if aleatoric {
                        cols.push("Aleatoric sd");
                    }
                    for c in cols {
                        h.col(|ui| {
                            ui.strong(c);
                        });
                    }
                })
                .body(|body| {
                    body.rows(18.0, rows.len(), |mut row| {
                        let i = row.index();
                        let r = rows[i];
                        let (lo, hi) = r.interval_95();
                        let mut cells = vec![
                            format!("{}", i + 1),
                            format!("{:.2}", r.actual),
                            format!("{:.2}", r.mean),
                            format!("{:.2}", r.min),
                            format!("{:.2}", r.max),
                            format!("{:.2}", r.range()),
                            format!("{lo:.2} .. {hi:.2}"),
                        ];
                        if let Some(a) = r.aleatoric_sd {
                            cells.push(format!("{a:.2}"));
                        }
                        for c in cells {
                            row.col(|ui| {
                                ui.monospace(c);
                            });
                        }
                    });
                });
        }
        PredictiveRows::Classes(rows) => {
            ui.label(format!(
                "{}). Error rate {:.3}; mean range of the predicted class's probability {:.3}.",
                sampled(rows.len(), &pv),
                p.error,
                p.mc_range_mean
            ));
            let classes = match bnn.prepared.as_ref().and_then(|d| d.output.clone()) {
                Some((_, OutputKind::Classes { classes })) => classes,
                _ => Vec::new(),
            };
            let name = |k: usize| classes.get(k).map_or(k.to_string(), |v| format!("{v}"));
            if export_button(ui) {
                bnn.export = bnn.export_request(ExportKind::Predictive);
            }
            TableBuilder::new(ui)
                .id_salt("bnn-class-table")
                .striped(true)
                .max_scroll_height(360.0)
                .columns(Column::auto().at_least(60.0), 5)
                .header(20.0, |mut h| {
                    for c in ["Row", "Actual", "Predicted", "Probability", "Min .. max"] {
                        h.col(|ui| {
                            ui.strong(c);
                        });
                    }
                })
                .body(|body| {
                    body.rows(18.0, rows.len(), |mut row| {
                        let i = row.index();
                        let r = &rows[i];
                        let cells = [
                            format!("{}", i + 1),
                            name(r.actual),
                            name(r.predicted),
                            format!("{:.2}", r.probabilities.get(r.predicted).copied().unwrap_or(0.0)),
                            format!("{:.2} .. {:.2}", r.min, r.max),
                        ];
                        for c in cells {
                            row.col(|ui| {
                                ui.monospace(c);
                            });
                        }
                    });
                });
        }
    }
}

/// How the predictions of `n_rows` test rows were sampled, as the predictions page says it first: "400 test rows,
/// 100 forward passes each (CPU in 12 ms" (the caller closes the bracket).
fn sampled(n_rows: usize, pv: &PredictiveView) -> String {
    format!(
        "{}, {} each ({} in {:.0} ms",
        count(n_rows, "test row"),
        count(pv.predictive.n_samples, "forward pass"),
        pv.device,
        pv.seconds * 1000.0
    )
}

fn predicted_vs_actual_plot(rows: &[crate::models::bnn::RegressionRow], target: &str, ui: &mut egui::Ui) {
    // Integer targets (wine quality) pile up; a small deterministic jitter spreads each column.
    let integer = rows.iter().all(|r| r.actual.fract() == 0.0);
    let jitter = |i: usize| if integer { ((i * 7919) % 101) as f64 / 101.0 * 0.5 - 0.25 } else { 0.0 };
    let (lo, hi) = rows.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
        let (a, b) = r.interval_95();
        (lo.min(f64::from(a.min(r.actual))), hi.max(f64::from(b.max(r.actual))))
    });
    let entries = ["perfect prediction", "95 % interval", "predictive mean"];
    let mut occupied = plot_axes::Occupied::for_legend(&entries, egui::vec2(ui.available_width(), 260.0));
    occupied.line(&[[lo, lo], [hi, hi]]);
    for (i, r) in rows.iter().enumerate().take(1500) {
        let (a, b) = r.interval_95();
        let x = f64::from(r.actual) + jitter(i);
        occupied.points(&[[x, f64::from(a)], [x, f64::from(r.mean)], [x, f64::from(b)]]);
    }
    legend_figure(ui, "bnn-pred-vs-actual", "bnn-predicted-vs-actual.png", &occupied, |plot, ui| {
        plot.height(260.0)
            .x_axis_label(format!("actual {target}"))
            .y_axis_label(format!("predicted {target}"))
            .allow_scroll(false)
            .show(ui, |plot| {
                plot.line(
                    Line::new("perfect prediction", PlotPoints::from(vec![[lo, lo], [hi, hi]])).color(Color32::GRAY),
                );
                let bar_colour = Color32::from_rgba_unmultiplied(90, 140, 210, 90);
                for (i, r) in rows.iter().enumerate().take(1500) {
                    let x = f64::from(r.actual) + jitter(i);
                    let (a, b) = r.interval_95();
                    plot.line(
                        Line::new("95 % interval", PlotPoints::from(vec![[x, f64::from(a)], [x, f64::from(b)]]))
                            .color(bar_colour)
                            .width(1.0),
                    );
                }
                let means: Vec<[f64; 2]> = rows
                    .iter()
                    .enumerate()
                    .map(|(i, r)| [f64::from(r.actual) + jitter(i), f64::from(r.mean)])
                    .collect();
                plot.points(
                    Points::new("predictive mean", PlotPoints::from(means))
                        .radius(2.0)
                        .shape(MarkerShape::Circle)
                        .color(Color32::from_rgb(40, 90, 170)),
                );
            })
    });
}

fn calibration_ui(bnn: &mut BnnUiState, ui: &mut egui::Ui) {
    let Some(pv) = bnn.predictive.clone() else {
        waiting(ui, "Sampling predictions…");
        return;
    };
    let p = &pv.predictive;
    if p.coverage.is_empty() {
        ui.label("Calibration is for regression; this network predicts classes.");
        return;
    }
    let aleatoric =
        matches!(&p.rows, PredictiveRows::Regression(r) if r.first().is_some_and(|r| r.aleatoric_sd.is_some()));
    ui.horizontal_wrapped(|ui| {
        ui.label("The share of test rows whose actual value falls inside each central predictive interval, against the share it should hold.");
        if export_button(ui) {
            bnn.export = bnn.export_request(ExportKind::Calibration);
        }
        save_image_button(ui, "bnn-calibration");
        plot_axes::legend_toggle(ui, "bnn-calibration");
    });
    egui::Grid::new("bnn-coverage").num_columns(3).striped(true).show(ui, |ui| {
        ui.strong("Interval");
        ui.strong("Should hold");
        ui.strong("Holds");
        ui.end_row();
        for (nominal, observed) in &p.coverage {
            ui.label(format!("central {:.0} %", nominal * 100.0));
            ui.monospace(format!("{:.0} %", nominal * 100.0));
            ui.monospace(format!("{:.1} %", observed * 100.0));
            ui.end_row();
        }
    });
    let size = egui::vec2(ui.available_width().min(260.0 * 1.6), 260.0);
    let mut occupied = plot_axes::Occupied::for_legend(&["perfectly calibrated", "observed"], size);
    occupied.line(&[[0.0, 0.0], [1.0, 1.0]]);
    for (n, o) in &p.coverage {
        // A bar, from the axis up to its top.
        occupied.line(&[[*n, 0.0], [*n, *o]]);
    }
    legend_figure(ui, "bnn-calibration", "bnn-calibration.png", &occupied, |plot, ui| {
        plot.height(260.0)
            .x_axis_label("nominal level")
            .y_axis_label("observed coverage")
            .include_x(0.0)
            .include_x(1.0)
            .include_y(0.0)
            .include_y(1.0)
            .view_aspect(1.6)
            .allow_scroll(false)
            .show(ui, |plot| {
                plot.line(
                    Line::new("perfectly calibrated", PlotPoints::from(vec![[0.0, 0.0], [1.0, 1.0]]))
                        .color(Color32::GRAY),
                );
                let bars: Vec<Bar> = p.coverage.iter().map(|(n, o)| Bar::new(*n, *o).width(0.06)).collect();
                plot.bar_chart(BarChart::new("observed", bars).color(Color32::from_rgb(90, 140, 210)));
            })
    });
    let note = if aleatoric {
        "The Normal head's intervals add the noise it learned (aleatoric) to the spread of the weights (epistemic): mean ± z·sd with sd² = var(loc) + mean(scale²)."
    } else {
        "This head predicts a value, not a distribution: its intervals hold only the weights' uncertainty (epistemic), the quantiles of the Monte Carlo passes. The wine's own noise is missing, so they hold far fewer rows than their level. The Normal head adds it."
    };
    ui.label(egui::RichText::new(note).weak());
    let _ = INTERVAL_LEVELS;
}

fn probe_ui(bnn: &mut BnnUiState, ui: &mut egui::Ui) {
    let Some(prepared) = bnn.prepared.clone() else { return };
    let d = prepared.n_features();
    let n_test = prepared.n_test();
    if n_test == 0 || d == 0 {
        ui.label("There are no test rows to probe.");
        return;
    }
    ui.horizontal(|ui| {
        let id = ui.label("Test row").id;
        let mut row = bnn.probe_row + 1;
        if ui.add(egui::DragValue::new(&mut row).range(1..=n_test)).labelled_by(id).changed() {
            bnn.probe_row = row - 1;
            bnn.probe_values = test_row_in_units(&prepared, bnn.probe_row);
        }
        if ui.button("Reset to this row").clicked() {
            bnn.probe_values = test_row_in_units(&prepared, bnn.probe_row);
        }
        if let Some(y) = prepared.y_test.get(bnn.probe_row) {
            ui.label(format!("actual value {y}"));
        }
    });
    if bnn.probe_values.len() != d {
        bnn.probe_values = test_row_in_units(&prepared, bnn.probe_row);
    }
    // Each feature's training range, in the data's units.
    let ranges: Vec<(f32, f32)> = (0..d)
        .map(|j| {
            let (lo, hi) = prepared
                .x_train
                .chunks_exact(d)
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), r| (lo.min(r[j]), hi.max(r[j])));
            let (m, s) = (prepared.feature_mean[j], prepared.feature_scale[j]);
            (lo * s + m, hi * s + m)
        })
        .collect();
    ui.columns(2, |cols| {
        let ui = &mut cols[0];
        ui.label("Move any feature, also far outside the training data (shaded range: ±10 sd). Sweep: the feature the plot on the right varies.");
        egui::Grid::new("bnn-probe-features").num_columns(3).show(ui, |ui| {
            for (j, range) in ranges.iter().enumerate() {
                let (m, s) = (prepared.feature_mean[j], prepared.feature_scale[j]);
                let lo = m - crate::train::bnn_view::SWEEP_HALF_WIDTH * s;
                let hi = m + crate::train::bnn_view::SWEEP_HALF_WIDTH * s;
                ui.radio_value(&mut bnn.sweep_feature, j, "");
                let id = ui.label(&prepared.feature_names[j]).id;
                let inside = (range.0..=range.1).contains(&bnn.probe_values[j]);
                let slider = egui::Slider::new(&mut bnn.probe_values[j], lo..=hi).max_decimals(3);
                let r = ui.add(slider).labelled_by(id);
                if !inside {
                    r.on_hover_text("outside the training data's range");
                }
                ui.end_row();
            }
        });
        let ui = &mut cols[1];
        let Some(probe) = bnn.probe.clone() else {
            waiting(ui, "Sampling the probe…");
            return;
        };
        ui.horizontal(|ui| {
            save_image_button(ui, "bnn-probe");
            plot_axes::legend_toggle(ui, "bnn-probe-sweep");
        });
        saveable(
            ui,
            "bnn-probe",
            || format!("bnn-probe-row-{}.png", bnn.probe_row + 1),
            |ui| probe_plots(bnn, &prepared, &probe, ranges[bnn.sweep_feature.min(d - 1)], ui),
        );
    });
}

fn probe_plots(bnn: &BnnUiState, prepared: &Prepared, probe: &ProbeView, range: (f32, f32), ui: &mut egui::Ui) {
    let j = probe.probe.sweep_feature;
    let (m, s) = (prepared.feature_mean[j], prepared.feature_scale[j]);
    let target = prepared.output.as_ref().map_or("prediction".to_owned(), |(n, _)| n.clone());
    match &probe.at_point.rows {
        PredictiveRows::Regression(rows) if !rows.is_empty() => {
            let r = rows[0];
            let (lo, hi) = r.interval_95();
            ui.strong(format!("Predictive distribution of {target} at this wine"));
            ui.label(format!(
                "mean {:.2}, range {:.2} .. {:.2}, 95 % interval {lo:.2} .. {hi:.2}{}",
                r.mean,
                r.min,
                r.max,
                r.aleatoric_sd.map_or(String::new(), |a| format!(", aleatoric sd {a:.2}"))
            ));
        }
        PredictiveRows::Classes(rows) if !rows.is_empty() => {
            ui.strong("Predicted class's probability over the passes");
            ui.label(format!(
                "class {}, mean probability {:.2}",
                rows[0].predicted, rows[0].probabilities[rows[0].predicted]
            ));
        }
        _ => {}
    }
    let vals = &probe.samples;
    let (lo, hi) =
        vals.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(f64::from(v)), b.max(f64::from(v))));
    if lo.is_finite() && hi.is_finite() {
        let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 0.5, hi + 0.5) };
        let bins = freedman_diaconis_bins(vals, lo, hi);
        let hist = Histogram::new(vals, lo, hi, bins);
        let w = hist.bin_width();
        let bars: Vec<Bar> =
            hist.densities().iter().zip(&hist.edges).map(|(&d, &l)| Bar::new(l + w / 2.0, d).width(w)).collect();
        plot_axes::plot("bnn-probe-hist")
            .height(150.0)
            .allow_scroll(false)
            .x_axis_label(format!("sampled {target} ({}, {})", count(vals.len(), "pass"), count(bins, "bin")))
            .show(ui, |plot| {
                plot.bar_chart(BarChart::new("passes", bars).color(Color32::from_rgb(90, 140, 210)));
            });
    }
    ui.strong(format!("Prediction as {} sweeps ±10 sd", prepared.feature_names[j]));
    let xs: Vec<f64> = probe.sweep_z.iter().map(|z| f64::from(z * s + m)).collect();
    let current = f64::from(bnn.probe_values.get(j).copied().unwrap_or(m));
    let entries: &[&str] = match &probe.sweep.rows {
        PredictiveRows::Regression(_) => {
            &["training data range", "min .. max of the passes", "95 % interval", "mean", "this wine"]
        }
        PredictiveRows::Classes(_) => &["training data range", "probability of the predicted class", "this wine"],
    };
    let mut occupied = plot_axes::Occupied::for_legend(entries, egui::vec2(ui.available_width(), 230.0));
    match &probe.sweep.rows {
        PredictiveRows::Regression(rows) => {
            for (&x, r) in xs.iter().zip(rows) {
                occupied.line(&[[x, f64::from(r.min)], [x, f64::from(r.max)]]);
            }
        }
        PredictiveRows::Classes(rows) => {
            for (&x, r) in xs.iter().zip(rows) {
                occupied.points(&[[x, f64::from(r.probabilities.get(r.predicted).copied().unwrap_or(0.0))]]);
            }
        }
    }
    occupied.vline(current);
    plot_axes::with_legend(plot_axes::plot("bnn-probe-sweep"), ui.ctx(), "bnn-probe-sweep", &occupied)
        .height(230.0)
        .x_axis_label(&prepared.feature_names[j])
        .y_axis_label(&target)
        .allow_scroll(false)
        .show(ui, |plot| {
            plot.span(
                egui_plot::Span::new("training data range", f64::from(range.0)..=f64::from(range.1))
                    .fill(Color32::from_rgba_unmultiplied(120, 200, 120, 40))
                    // At the foot of the band: the legend takes a corner, mostly a top one.
                    .label_align(egui::Align2::CENTER_BOTTOM),
            );
            match &probe.sweep.rows {
                PredictiveRows::Regression(rows) => {
                    let lo: Vec<f64> = rows.iter().map(|r| f64::from(r.interval_95().0)).collect();
                    let hi: Vec<f64> = rows.iter().map(|r| f64::from(r.interval_95().1)).collect();
                    let min: Vec<f64> = rows.iter().map(|r| f64::from(r.min)).collect();
                    let max: Vec<f64> = rows.iter().map(|r| f64::from(r.max)).collect();
                    plot.add(
                        FilledArea::new("min .. max of the passes", &xs, &min, &max)
                            .fill_color(Color32::from_rgba_unmultiplied(90, 140, 210, 40)),
                    );
                    plot.add(
                        FilledArea::new("95 % interval", &xs, &lo, &hi)
                            .fill_color(Color32::from_rgba_unmultiplied(90, 140, 210, 90)),
                    );
                    let mean: Vec<[f64; 2]> = xs.iter().zip(rows).map(|(&x, r)| [x, f64::from(r.mean)]).collect();
                    plot.line(
                        Line::new("mean", PlotPoints::from(mean)).color(Color32::from_rgb(40, 90, 170)).width(2.0),
                    );
                }
                PredictiveRows::Classes(rows) => {
                    let p: Vec<[f64; 2]> = xs
                        .iter()
                        .zip(rows)
                        .map(|(&x, r)| [x, f64::from(r.probabilities.get(r.predicted).copied().unwrap_or(0.0))])
                        .collect();
                    plot.line(Line::new("probability of the predicted class", PlotPoints::from(p)));
                }
            }
            plot.vline(VLine::new("this wine", current).color(Color32::from_rgb(230, 140, 40)));
        });
}

/// Loss terms and errors per epoch.
pub(crate) fn bnn_loss_ui(snapshot: &RunSnapshot, ui: &mut egui::Ui) {
    let series = |name: &str| epoch_series(snapshot, name);
    ui.horizontal(|ui| {
        ui.strong("Loss per training row: data term + KL / N");
        plot_axes::legend_toggle(ui, "bnn-loss");
    });
    let curves = vec![("total", series("loss")), ("data term", series("data_loss")), ("KL / N", series("kl_loss"))];
    epoch_curves(ui, "bnn-loss", 200.0, curves, false);
    let classification = snapshot.history.last().is_some_and(|r| r.get("test_error_rate").is_some());
    let (train, test, label) = if classification {
        ("train_error_rate", "test_error_rate", "error rate")
    } else {
        ("train_rmse", "test_rmse", "RMSE of the predictive mean")
    };
    ui.horizontal(|ui| {
        ui.strong(label);
        plot_axes::legend_toggle(ui, "bnn-error");
    });
    let (train, test) = (series(train), series(test));
    let baseline = snapshot.history.last().and_then(|r| r.get("mean_predictor_test_rmse"));
    let mut entries = vec!["train", "test"];
    if baseline.is_some() {
        entries.push("test, predicting the training mean");
    }
    let mut occupied = plot_axes::Occupied::for_legend(&entries, egui::vec2(ui.available_width(), 200.0));
    occupied.line(&train).line(&test);
    if let Some(b) = baseline {
        occupied.hline(b);
    }
    plot_axes::with_legend(plot_axes::plot("bnn-error"), ui.ctx(), "bnn-error", &occupied)
        .height(200.0)
        .x_axis_label("epoch")
        .allow_scroll(false)
        .show(ui, |plot| {
            plot_axes::curve(plot, "train", train);
            plot_axes::curve(plot, "test", test);
            if let Some(b) = baseline {
                plot.hline(HLine::new("test, predicting the training mean", b).color(Color32::GRAY));
            }
        });
}

/// The comparison's colours: the labels' qualitative palette of ten (Tableau 10), told apart also by readers with the
/// commonest colour blindness by their lightness.
const RUN_COLOURS: [Color32; 10] = crate::ui::data_view::PALETTE;

/// The line style of each round of [`RUN_COLOURS`]: solid for the first ten runs, then dashed, dotted, densely
/// dashed.
const RUN_LINE_STYLES: [egui_plot::LineStyle; 4] = [
    egui_plot::LineStyle::Solid,
    egui_plot::LineStyle::Dashed { length: 10.0 },
    egui_plot::LineStyle::Dotted { spacing: 6.0 },
    egui_plot::LineStyle::Dashed { length: 4.0 },
];

/// The colour and line style of the comparison's run `index` (0-based): ten colours, then the same colours dashed,
/// so that 40 runs in a row each look different.
#[must_use]
pub fn run_style(index: usize) -> (Color32, egui_plot::LineStyle) {
    let colour = RUN_COLOURS[index % RUN_COLOURS.len()];
    let style = RUN_LINE_STYLES[(index / RUN_COLOURS.len()) % RUN_LINE_STYLES.len()];
    (colour, style)
}

/// The style's name in the table, for runs past the first ten.
fn line_style_name(style: egui_plot::LineStyle) -> &'static str {
    match style {
        egui_plot::LineStyle::Solid => "",
        egui_plot::LineStyle::Dashed { length } if length >= 8.0 => " (dashed)",
        egui_plot::LineStyle::Dashed { .. } => " (short dashes)",
        egui_plot::LineStyle::Dotted { .. } => " (dotted)",
    }
}

fn compare_ui(bnn: &mut BnnUiState, ui: &mut egui::Ui) {
    ui.label("Less data, more epistemic uncertainty: train the same network on 30 % and on all of the training rows and compare the spread of their predictions.");
    ui.horizontal(|ui| {
        if ui.button("Train on 30 % of the training rows").clicked() {
            bnn.config.train_fraction = 0.3;
            bnn.start_requested = true;
            ui.ctx().request_repaint();
        }
        if ui.button("Train on all training rows").clicked() {
            bnn.config.train_fraction = 1.0;
            bnn.start_requested = true;
            ui.ctx().request_repaint();
        }
        if ui.add_enabled(!bnn.runs.is_empty(), egui::Button::new("Clear")).clicked() {
            bnn.runs.clear();
        }
    });
    if bnn.runs.is_empty() {
        ui.label(egui::RichText::new("Finished runs appear here.").weak());
        return;
    }
    let names = run_names(&bnn.runs);
    let datasets = datasets_of(&bnn.runs);
    let mixed = datasets.len() > 1;
    if let [(dataset, _)] = datasets.as_slice() {
        ui.label(format!("All on {dataset}."));
    } else {
        let groups: Vec<String> = datasets
            .iter()
            .map(|(d, numbers)| {
                let numbers: Vec<String> = numbers.iter().map(ToString::to_string).collect();
                let runs = if numbers.len() == 1 { "run" } else { "runs" };
                format!("{runs} {} on {d}", numbers.join(", "))
            })
            .collect();
        ui.colored_label(
            ui.visuals().warn_fg_color,
            format!(
                "These runs were trained on different data: {}. Their figures are not comparable across datasets.",
                groups.join("; ")
            ),
        );
    }
    let headers: &[&str] = if mixed {
        &["Run", "Data", "Settings", "Test RMSE", "Mean MC range", "95 % coverage", "Test NLL"]
    } else {
        &["Run", "Settings", "Test RMSE", "Mean MC range", "95 % coverage", "Test NLL"]
    };
    // Scrolls sideways in a narrow window rather than cutting the last columns off.
    egui::ScrollArea::horizontal().id_salt("bnn-runs-scroll").show(ui, |ui| {
        egui::Grid::new("bnn-runs").num_columns(headers.len()).striped(true).show(ui, |ui| {
            for h in headers {
                ui.strong(*h);
            }
            ui.end_row();
            for (i, (r, name)) in bnn.runs.iter().zip(&names).enumerate() {
                let f = |k: &str| r.record.get(k).map_or("–".to_owned(), |v| format!("{v:.3}"));
                let (colour, style) = run_style(i);
                ui.colored_label(colour, format!("{}{}", i + 1, line_style_name(style)));
                if mixed {
                    ui.colored_label(ui.visuals().warn_fg_color, &r.dataset);
                }
                ui.label(name).on_hover_text(run_label(&r.config));
                ui.monospace(f("test_rmse"));
                ui.monospace(f("mc_range_mean"));
                ui.monospace(r.record.get("coverage_95").map_or("–".to_owned(), |v| format!("{:.1} %", v * 100.0)));
                ui.monospace(f("test_nll"));
                ui.end_row();
            }
        });
    });
    ui.horizontal(|ui| {
        ui.strong("Spread of the Monte Carlo predictions per test row (max - min)");
        save_image_button(ui, "bnn-compare");
        plot_axes::legend_toggle(ui, "bnn-compare");
    });
    let all: Vec<f32> = bnn.runs.iter().flat_map(|r| r.ranges.iter().copied()).collect();
    let hi = all.iter().copied().fold(0f32, f32::max).max(1e-3);
    let bins = freedman_diaconis_bins(&all, 0.0, f64::from(hi)).min(40);
    // Each run's entry in the legend: its number and name, and its data where the runs' data differ.
    let entries: Vec<String> = bnn
        .runs
        .iter()
        .zip(&names)
        .enumerate()
        .map(
            |(i, (r, name))| {
                if mixed { format!("run {}: {}, {name}", i + 1, r.dataset) } else { format!("run {}: {name}", i + 1) }
            },
        )
        .collect();
    let entry_names: Vec<&str> = entries.iter().map(String::as_str).collect();
    let mut occupied = plot_axes::Occupied::for_legend(&entry_names, egui::vec2(ui.available_width(), 240.0));
    for r in &bnn.runs {
        let hist = Histogram::new(&r.ranges, 0.0, f64::from(hi), bins);
        let w = hist.bin_width();
        let pts: Vec<[f64; 2]> = hist.densities().iter().enumerate().map(|(k, d)| [w * (k as f64 + 0.5), *d]).collect();
        occupied.line(&pts);
        if let Some(m) = r.record.get("mc_range_mean") {
            occupied.vline(m);
        }
    }
    legend_figure(ui, "bnn-compare", "bnn-compare-runs.png", &occupied, |plot, ui| {
        plot.height(240.0).x_axis_label("range of the passes").y_axis_label("density").allow_scroll(false).show(
            ui,
            |plot| {
                for (i, (r, name)) in bnn.runs.iter().zip(entries).enumerate() {
                    let hist = Histogram::new(&r.ranges, 0.0, f64::from(hi), bins);
                    let w = hist.bin_width();
                    let pts: Vec<[f64; 2]> =
                        hist.densities().iter().enumerate().map(|(k, d)| [w * (k as f64 + 0.5), *d]).collect();
                    let (colour, style) = run_style(i);
                    plot.line(Line::new(name.clone(), PlotPoints::from(pts)).color(colour).width(2.0).style(style));
                    if let Some(m) = r.record.get("mc_range_mean") {
                        // Same name: the mean's dashed line belongs to its run in the legend.
                        plot.vline(VLine::new(name, m).color(colour).style(egui_plot::LineStyle::dashed_loose()));
                    }
                }
            },
        )
    });
}
