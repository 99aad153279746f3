//! The BNN lab's page state: the settings of the next run (with the hidden-units field as typed and the checks
//! that refuse what cannot train), which view is on show and each view's choices, and what the view thread has
//! computed for the run on show (polled here).

use std::sync::Arc;

use crate::data::prepare::Prepared;
use crate::models::bnn::{
    BnnConfig, BnnParams, BnnView, DEFAULT_STEP_BUDGET, MAX_FULL_COVARIANCE_PARAMS, Posterior, PredictiveRows,
    default_epochs,
};
use crate::train::bnn_view::{
    BandView, BnnProbe, BnnViewRequest, BnnViewResult, BnnViewWorker, PredictiveView, ProbeView, band_applies,
    predictive_seed,
};
use crate::train::export::{
    WeightQuantity, calibration_table, class_names, epoch_histogram, predictive_table, reliability_table,
    stacked_histograms, weight_histograms_table,
};
use crate::train::{EpochRecord, ModelView, RunSnapshot};
use crate::ui::bnn_compare::{RangesFrom, RunSummary};
use crate::ui::export::{ExportKind, ExportRequest};
use crate::ui::highlight::Highlight;
use crate::ui::history::EpochScrubber;
use crate::ui::lab_data::feature_decimals;
use crate::ui::lab_page::start_view_thread;
use crate::ui::settings_check::{self, Verdict};

/// Which view the page shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BnnPage {
    /// A regression on one feature: the predictive band over the feature, with the data (`bnn_band.rs`).
    Band,
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
    /// The variational posterior against NUTS's exact one (`bnn_nuts.rs`).
    VsNuts,
}

impl BnnPage {
    /// The page that draws the figure `key` (its "Save image…" key).
    pub(crate) fn of_figure(key: &str) -> Option<Self> {
        match key {
            "bnn-band" => Some(Self::Band),
            "bnn-histogram" | "bnn-weight-matrix" | "bnn-weight-detail" => Some(Self::Weights),
            "bnn-pred-vs-actual" => Some(Self::Predictions),
            "bnn-calibration" => Some(Self::Calibration),
            "bnn-probe" => Some(Self::Probe),
            "bnn-loss" => Some(Self::Loss),
            _ => None,
        }
    }

    pub(crate) const ALL: [Self; 8] = [
        Self::Band,
        Self::Weights,
        Self::Predictions,
        Self::Calibration,
        Self::Probe,
        Self::Loss,
        Self::Compare,
        Self::VsNuts,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Band => "Predictive band",
            Self::Weights => "Weight distributions",
            Self::Predictions => "Predictions",
            Self::Calibration => "Calibration",
            Self::Probe => "Out-of-distribution probe",
            Self::Loss => "Loss curves",
            Self::Compare => "Compare runs",
            Self::VsNuts => "VI vs NUTS",
        }
    }
}

/// One epoch at a time, or the whole run stacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryMode {
    /// The epoch on the slider.
    Single,
    /// Several epochs, offset upwards, oldest at the bottom.
    Stacked,
}

/// What the heat map colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeatQuantity {
    /// Posterior mean, blue (negative) to red (positive).
    Mean,
    /// |mean| / sd: how far the weight is from zero in its own standard deviations.
    SignalToNoise,
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
    /// The decimals the probe writes each feature's value with ([`feature_decimals`]).
    pub(crate) probe_decimals: Vec<usize>,
    /// The feature the probe sweeps.
    pub sweep_feature: usize,
    /// Finished runs, oldest first.
    pub runs: Vec<RunSummary>,
    /// The "VI vs NUTS" page: the sampler's settings, its run and result.
    pub nuts: crate::ui::bnn_nuts_state::NutsPageState,
    /// Set by the Compare runs view's "Train on …" buttons; the lab's training panel clears it and has a run started.
    pub(crate) start_requested: bool,
    /// Names of the features (rows of the first layer's matrix).
    pub(crate) feature_names: Vec<String>,
    /// Set by an "Export data…" button; the app starts the export once the page is drawn, and clears it.
    pub(crate) export: Option<ExportRequest>,
    /// Training rows of the lab's dataset, for the default epochs.
    pub(crate) n_train_rows: Option<usize>,
    /// Feature columns of the lab's dataset (the first layer's inputs), for the full covariance's limit.
    pub(crate) n_features: Option<usize>,
    /// The classes of the lab's dataset's label, when it has one: a classification, whose network ends in a
    /// softmax whatever the regression head says.
    pub(crate) data_classes: Option<usize>,
    /// The epochs the app last chose for the data (or the defaults); a different value in the field is the
    /// user's own, which new data keeps.
    pub(crate) epochs_picked: Option<usize>,
    pub(crate) prepared: Option<Arc<Prepared>>,
    /// The settings of the run on show.
    pub(crate) run_config: Option<BnnConfig>,
    pub(crate) run: u64,
    pub(crate) worker: Option<BnnViewWorker>,
    pub(crate) view: Option<Arc<BnnView>>,
    pub(crate) view_step: u64,
    /// Where `view_step` is in epochs.
    pub(crate) view_epoch: f64,
    pub(crate) predictive: Option<Arc<PredictiveView>>,
    pub(crate) probe: Option<Arc<ProbeView>>,
    pub(crate) band: Option<Arc<BandView>>,
    /// Normal head: the band view also shows the band of a new observation `y`.
    pub show_observation_band: bool,
    pub(crate) last_request: Option<(u64, u64, usize, Option<BnnProbe>, bool)>,
    pub(crate) error: Option<String>,
    /// The part of the figures that the Explain panel's hovered term belongs to, this frame (`highlight.rs`).
    pub(crate) highlight: Highlight,
    /// The run's models so far and the epoch scrubber over them: a scrubbed model is on show in every view.
    pub scrubber: EpochScrubber<BnnParams>,
    /// "Record animation…" of one of the lab's figures over the training.
    pub recorder: crate::ui::record::FigureRecorder,
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
            probe_decimals: Vec::new(),
            sweep_feature: 0,
            runs: Vec::new(),
            nuts: crate::ui::bnn_nuts_state::NutsPageState::default(),
            start_requested: false,
            feature_names: Vec::new(),
            export: None,
            n_train_rows: None,
            n_features: None,
            data_classes: None,
            epochs_picked: Some(BnnConfig::default().epochs),
            prepared: None,
            run_config: None,
            run: 0,
            worker: None,
            view: None,
            view_step: 0,
            view_epoch: 0.0,
            predictive: None,
            probe: None,
            band: None,
            show_observation_band: true,
            last_request: None,
            error: None,
            highlight: Highlight::None,
            scrubber: EpochScrubber::default(),
            recorder: crate::ui::record::FigureRecorder::default(),
        }
    }
}

impl BnnUiState {
    /// The model every view shows: the one the scrubber put on show, else the latest.
    #[must_use]
    pub fn params_on_show(&self) -> Option<Arc<BnnParams>> {
        match self.scrubber.scrubbed() {
            Some(entry) => Some(Arc::clone(&entry.params)),
            None => self.view.as_ref().map(|v| Arc::clone(&v.params)),
        }
    }

    /// The weight histograms' epoch for the scrubbed model: the last one recorded at or before it (`None` follows
    /// the training).
    pub(crate) fn follow_scrubber(&mut self) {
        let (Some(epoch), Some(view)) = (self.scrubber.scrubbed_epoch(), self.view.as_ref()) else {
            self.epoch_index = None;
            return;
        };
        let history = &view.history;
        self.epoch_index = Some(history.iter().rposition(|(e, _)| *e as f64 <= epoch + 1e-9).unwrap_or(0));
    }

    /// Forgets the views of the previous run; `prepared` is the new run's data, `config` its settings.
    pub(crate) fn new_run(&mut self, prepared: Arc<Prepared>, config: BnnConfig) {
        self.feature_names.clone_from(&prepared.feature_names);
        self.probe_row = self.probe_row.min(prepared.n_test().saturating_sub(1));
        self.probe_values = test_row_in_units(&prepared, self.probe_row);
        self.probe_decimals = feature_decimals(&prepared);
        self.sweep_feature = self.sweep_feature.min(prepared.n_features().saturating_sub(1));
        // The probe sweeps no input of a column of texts alone (it offers a choice of texts instead): the first input
        // of numbers, where there is one.
        if prepared.one_hot_group(self.sweep_feature).is_some()
            && let Some(j) = (0..prepared.n_features()).find(|&j| prepared.one_hot_group(j).is_none())
        {
            self.sweep_feature = j;
        }
        // The band is the first view for a regression on one feature (unless such a run was on show already, and the
        // user may have moved on, or the comparison of runs is on show, which the new run joins); other data has no
        // band view.
        let band_data = band_applies(&prepared);
        if band_data && !self.has_band_view() && self.page != BnnPage::Compare {
            self.page = BnnPage::Band;
        } else if !band_data && self.page == BnnPage::Band {
            self.page = BnnPage::Weights;
        }
        self.prepared = Some(prepared);
        self.run_config = Some(config);
        self.run += 1;
        self.view = None;
        self.predictive = None;
        self.probe = None;
        self.band = None;
        self.last_request = None;
        self.epoch_index = None;
        self.selected_weight = None;
        self.error = None;
        self.scrubber.clear();
        self.recorder.cancel();
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

    /// Records a finished run, trained on `dataset`, whose last model is of step `last_step`, for the comparison.
    /// That model may not have been predicted with yet: its predictions, when they come, give the run's ranges.
    pub(crate) fn finished(&mut self, record: &EpochRecord, dataset: &str, last_step: u64) {
        let from = RangesFrom { run: self.run, step: self.predictive.as_ref().map(|p| p.step), last_step };
        self.record_run(record, dataset, None, Some(from));
    }

    /// Records the run on show for the comparison: finished (`stopped_at` is `None`), or discarded after
    /// `stopped_at` epochs. A run already there is not added twice.
    pub(crate) fn keep_run(&mut self, record: &EpochRecord, dataset: &str, stopped_at: Option<usize>) {
        self.record_run(record, dataset, stopped_at, None);
    }

    /// [`Self::keep_run`], the run's ranges following later predictions as `ranges_from` says (none after a
    /// discard).
    fn record_run(
        &mut self,
        record: &EpochRecord,
        dataset: &str,
        stopped_at: Option<usize>,
        ranges_from: Option<RangesFrom>,
    ) {
        let Some(config) = &self.run_config else { return };
        let ranges = self.predictive.as_ref().map_or_else(Vec::new, |p| prediction_ranges(&p.predictive.rows));
        let run = RunSummary {
            dataset: dataset.to_owned(),
            config: config.clone(),
            stopped_at,
            record: record.clone(),
            ranges,
            ranges_from,
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
                let classes = self.prepared.as_deref().map(class_names).unwrap_or_default();
                Some(ExportRequest::new("bnn-predictive.csv", move || predictive_table(&shown.predictive, &classes)))
            }
            ExportKind::Calibration => {
                let shown = Arc::clone(self.predictive.as_ref()?);
                if shown.predictive.coverage.is_empty() {
                    Some(ExportRequest::new("bnn-reliability.csv", move || reliability_table(&shown.predictive)))
                } else {
                    Some(ExportRequest::new("bnn-calibration.csv", move || calibration_table(&shown.predictive)))
                }
            }
            ExportKind::History | ExportKind::Latents | ExportKind::Stages | ExportKind::Density => None,
        }
    }

    /// The predictive band the band view shows, once the view thread has sent one for the run on show.
    #[must_use]
    pub fn band(&self) -> Option<&BandView> {
        self.band.as_deref()
    }

    /// Whether the run on show is a regression on one feature, which has the band view.
    #[must_use]
    pub fn has_band_view(&self) -> bool {
        self.prepared.as_deref().is_some_and(band_applies)
    }

    /// The part of the page's figures that the Explain panel's hovered term belongs to, this frame.
    #[must_use]
    pub fn highlight(&self) -> &Highlight {
        &self.highlight
    }

    /// True once the view thread has sent the test set's predictions (for tests).
    #[must_use]
    pub fn has_predictions(&self) -> bool {
        self.predictive.is_some()
    }

    /// True once the view thread has sent the probe's predictive distribution and sweep (for tests).
    #[must_use]
    pub fn has_probe(&self) -> bool {
        self.probe.is_some()
    }

    /// Whether the page's figures show the model of `step`: its predictions (predictions, calibration), band or
    /// probe come from the view thread; the weights and the loss curves are drawn from the model at once.
    pub(crate) fn views_show(&self, step: u64) -> bool {
        match self.page {
            BnnPage::Predictions | BnnPage::Calibration => self.predictive.as_ref().is_some_and(|p| p.step == step),
            BnnPage::Band => self.band.as_ref().is_some_and(|b| b.step == step),
            BnnPage::Probe => self.probe.as_ref().is_some_and(|p| p.step == step),
            BnnPage::Weights | BnnPage::Loss | BnnPage::Compare | BnnPage::VsNuts => true,
        }
    }

    /// The test set's predictions on show, once the view thread has sent them (for tests).
    #[must_use]
    pub fn predictive(&self) -> Option<&PredictiveView> {
        self.predictive.as_deref()
    }

    /// The data of the run on show (for tests).
    #[must_use]
    pub fn prepared(&self) -> Option<&Arc<Prepared>> {
        self.prepared.as_ref()
    }

    pub(crate) fn poll(&mut self, snapshot: Option<&RunSnapshot>, ctx: &egui::Context) {
        if let Some(ModelView::Bnn { step, view }) = snapshot.and_then(|s| s.model.clone()) {
            let steps_per_epoch = snapshot.map_or(1, |s| s.steps_per_epoch.max(1));
            self.scrubber.history.push(step, step as f64 / steps_per_epoch as f64, Arc::clone(&view.params));
            self.view = Some(view);
            self.view_step = step;
            self.view_epoch = step as f64 / steps_per_epoch as f64;
        }
        let (Some(view), Some(prepared)) = (&self.view, &self.prepared) else { return };
        // A scrubbed epoch's model, or the latest.
        let (params, step, epoch) = match self.scrubber.scrubbed() {
            Some(entry) => (Arc::clone(&entry.params), entry.step, entry.epoch),
            None => (Arc::clone(&view.params), self.view_step, self.view_epoch),
        };
        start_view_thread(&mut self.worker, &mut self.error, ctx, crate::train::bnn_view::spawn);
        let Some(worker) = &self.worker else { return };
        for result in worker.drain() {
            match result {
                BnnViewResult::Predictive(p) if p.run == self.run => {
                    for summary in &mut self.runs {
                        summary.follow_predictions(p.run, p.step, || prediction_ranges(&p.predictive.rows));
                    }
                    self.predictive = Some(p);
                }
                BnnViewResult::Band(b) if b.run == self.run => self.band = Some(b),
                // Left over from a run this one replaced.
                BnnViewResult::Predictive(_) | BnnViewResult::Band(_) => {}
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
        let band = self.page == BnnPage::Band && band_applies(prepared);
        let key = (self.run, step, n_samples, probe.clone(), band);
        if self.last_request.as_ref() != Some(&key) {
            worker.request(BnnViewRequest {
                params,
                step,
                run: self.run,
                data: Arc::clone(prepared),
                n_samples,
                seed: predictive_seed(self.run_config.as_ref().map(|c| c.seed), step, epoch),
                probe,
                band,
            });
            self.last_request = Some(key);
        }
    }
}

/// `v` rounded to five decimals below its column's scale `scale`: undoing the standardisation in f32 leaves a
/// whole number a hair off (8.999999, -0.0000002) and the probe's fields showed "-0"; a value of the data has far
/// fewer digits than f32 carries. Never -0.
fn tidy(v: f32, scale: f32) -> f32 {
    let decimals = (5.0 - f64::from(scale.abs().max(1e-30)).log10().floor()).clamp(0.0, 12.0) as i32;
    let q = 10f64.powi(decimals);
    ((f64::from(v) * q).round() / q + 0.0) as f32
}

/// A test row's features in the data's units.
pub(crate) fn test_row_in_units(prepared: &Prepared, row: usize) -> Vec<f32> {
    let d = prepared.n_features();
    prepared
        .x_test
        .get(row * d..(row + 1) * d)
        .map(|z| {
            z.iter()
                .zip(prepared.feature_mean.iter().zip(&prepared.feature_scale))
                .map(|(z, (m, s))| tidy(z * s + m, *s))
                .collect()
        })
        .unwrap_or_default()
}

/// What an empty hidden-units field means in the BNN.
const LINEAR_MODEL: &str = "Empty: no hidden layer, a linear model (the inputs straight to the output).";

impl BnnUiState {
    /// Training rows the run on show trains on (N of its ELBO per row: its share of its training split).
    #[must_use]
    pub fn run_rows_used(&self) -> Option<usize> {
        let (prepared, config) = (self.prepared.as_ref()?, self.run_config.as_ref()?);
        Some(train_subset_len(prepared.n_train(), config.train_fraction))
    }

    /// Training rows the next run uses (its share of the training split), once the data is known.
    pub(crate) fn rows_used(&self) -> Option<usize> {
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
pub(crate) fn hidden_verdict(text: &str, n_features: Option<usize>, posterior: Posterior) -> Verdict {
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
    pub(crate) fn sync_hidden(&mut self, edited: bool) {
        settings_check::sync_hidden(&mut self.hidden_text, &mut self.config.hidden, edited);
    }
}

/// Rows [`crate::models::bnn::train_subset`] keeps of `n_train` for `fraction`.
fn train_subset_len(n_train: usize, fraction: f64) -> usize {
    if fraction >= 1.0 { n_train } else { ((n_train as f64 * fraction).round() as usize).clamp(1, n_train.max(1)) }
}

/// Per test row, the spread of the Monte Carlo predictions (max - min): of the value, or of the probability of the
/// predicted class.
fn prediction_ranges(rows: &PredictiveRows) -> Vec<f32> {
    match rows {
        PredictiveRows::Regression(rows) => rows.iter().map(crate::models::bnn::RegressionRow::range).collect(),
        PredictiveRows::Classes(rows) => rows.iter().map(|r| r.max - r.min).collect(),
    }
}

#[cfg(test)]
mod probe_tests {
    use super::*;
    use crate::data::BuiltinFile;
    use crate::data::prepare::{DataSpec, prepare};

    #[test]
    fn a_test_row_in_the_datas_units_has_the_datas_values_and_no_negative_zero() {
        let table = BuiltinFile::Digits8x8.load().expect("the digits");
        let prepared = prepare(&table, &DataSpec::default_for(&table)).expect("they prepare");
        for row in 0..50 {
            let values = test_row_in_units(&prepared, row);
            assert_eq!(values.len(), 64);
            for v in values {
                assert!(v.fract() == 0.0 && (0.0..=16.0).contains(&v), "row {row}: {v} is not a pixel's value");
                assert!(!v.is_sign_negative(), "row {row}: -0");
            }
        }
        let wine = BuiltinFile::WineRed.load().expect("the wine");
        let prepared = prepare(&wine, &DataSpec::default_for(&wine)).expect("it prepares");
        let density = wine.column_index("density").expect("density");
        let row = test_row_in_units(&prepared, 0);
        // The wine's density has five decimals (0.99780): kept.
        assert!((row[density] * 100_000.0 - (row[density] * 100_000.0).round()).abs() < 0.05, "{}", row[density]);
        assert!(row[density] > 0.98 && row[density] < 1.01);
    }
}
