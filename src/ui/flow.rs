//! The flow lab's page: its state, and the step-through of its stages from the Gaussian to the data (generation)
//! or back (inference), with points, a warped grid, each stage's density or layer log-det as a heat map, the path
//! and log-density terms of a picked point, the Keras figure and the loss curves. Its settings panel is
//! `flow_settings.rs`.

use std::collections::HashMap;
use std::sync::Arc;

use egui::{Color32, TextureHandle};
use egui_plot::{Line, MarkerShape, Plot, PlotBounds, PlotImage, PlotPoint, PlotPoints, Points};

use crate::compute::params::FlowParams;
use crate::data::prepare::Prepared;
use crate::models::flow::{FlowConfig, FlowKind};
use crate::train::export::{density_table, stages_table};
use crate::train::flow_view::{FlowGeometry, FlowViewRequest, FlowViewResult, FlowViewWorker, ProbePath, StageGrid};
use crate::train::{ModelView, RunSnapshot, WorkerState};
use crate::ui::export::{ExportKind, ExportRequest, export_button, history_request};
use crate::ui::flow_line::{LineState, flow_line_ui};
use crate::ui::highlight::{self, Highlight};
use crate::ui::history::EpochScrubber;
use crate::ui::image_export::{record_button, save_image_button, saveable, saveable_in, take_record_asked};
use crate::ui::lab_data::LabData;
use crate::ui::lab_page::{
    EpochCurves, epoch_series, labelled_combo, start_view_thread, text_width, together, view_error, waiting,
};
use crate::ui::plot_axes;
use crate::ui::record::{FigureRecorder, FrameTarget, Stages, Subject};
use crate::ui::settings_check;

/// Which way the step-through runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Gaussian samples pushed through layers 1..K.
    Generation,
    /// Data pulled back through layers K..1.
    Inference,
}

impl Direction {
    /// The word file names carry: "generation" or "inference".
    #[must_use]
    pub fn file_word(self) -> &'static str {
        match self {
            Self::Generation => "generation",
            Self::Inference => "inference",
        }
    }

    /// The label the switch and the view carry.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Generation => "generation: Gaussian -> data",
            Self::Inference => "inference: data -> Gaussian",
        }
    }
}

/// What the heat map shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeatMap {
    /// The density of the stage.
    Density,
    /// log|det J| of the layer that produced the stage.
    LayerLogDet,
    /// Nothing.
    Off,
}

/// Which figure the page shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowPage {
    /// Stage by stage.
    StepThrough,
    /// The Keras example's 2 x 2 figure.
    KerasFigure,
    /// The lecture's 1-D picture: p_z, a monotone f and p_x (`flow_line.rs`); needs no run.
    Line,
}

impl FlowPage {
    /// Every page, in tab order.
    pub const ALL: [Self; 3] = [Self::StepThrough, Self::KerasFigure, Self::Line];

    /// The page's tab.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::StepThrough => "Step through the stages",
            Self::KerasFigure => "Data and latent space (Keras figure)",
            Self::Line => "The 1-D picture",
        }
    }
}

/// Grid sizes offered (cells per side).
pub const RESOLUTIONS: [usize; 5] = [64, 128, 256, 384, 512];
/// Grid size while a run is training: small, so the density keeps up with the model.
const LIVE_RESOLUTION: usize = 24;

/// A heat map's texture: of stage k, the model's step, the grid's resolution and box (its bits), and whether it is the
/// layer's log|det J| (else the density).
type TextureKey = (usize, u64, usize, [u32; 4], bool);

/// What was last asked of the view thread: model step, grid size, the grids' shape (its bits), stage in focus, picked
/// point, whether the run trains.
type RequestKey = (u64, usize, u32, usize, Option<(usize, [f32; 2])>, bool);

/// The flow page's state (transient: nothing here is persisted).
#[allow(clippy::struct_excessive_bools, reason = "independent view toggles, each a checkbox")]
pub struct FlowUiState {
    /// Settings of the next run.
    pub config: FlowConfig,
    /// Position along the direction, 0..=K (fractional while playing).
    pub position: f32,
    /// Generation or inference.
    pub direction: Direction,
    /// Playing the stages.
    pub playing: bool,
    /// Stages per second while playing.
    pub speed: f32,
    /// What the heat map shows.
    pub heat: HeatMap,
    /// Draw the transported points.
    pub show_points: bool,
    /// Draw the warped grid.
    pub show_grid: bool,
    /// Cells per side of the density grids (when not training).
    pub resolution: usize,
    /// Step-through or the Keras figure.
    pub page: FlowPage,
    /// Show the data table in place of the flow's views.
    pub show_data: bool,
    /// The 1-D picture's page.
    pub line: LineState,
    /// Set by an "Export data…" button; the app starts the export once the page is drawn, and clears it.
    pub(crate) export: Option<ExportRequest>,
    /// The data of the current run, standardised.
    pub(crate) prepared: Option<Arc<Prepared>>,
    view_points: Arc<Vec<f32>>,
    worker: Option<FlowViewWorker>,
    geometry: Option<Arc<FlowGeometry>>,
    grids: HashMap<usize, Arc<StageGrid>>,
    /// The heat maps' textures, each drawn over the box of the grid it was made from (in its key).
    textures: HashMap<TextureKey, TextureHandle>,
    probe: Option<(usize, [f32; 2])>,
    probe_path: Option<ProbePath>,
    last_request: Option<RequestKey>,
    /// Counts runs, so the view thread never mistakes a new run's weights for the last one's.
    run: u64,
    fit_bounds: bool,
    /// The stage plot's size (whole points) when its view was last fitted: a new size (the window resized, full
    /// screen, presenter mode) fits it again, where egui_plot would keep the old view's reach in a larger frame.
    fitted_size: Option<egui::Vec2>,
    /// The stage plot's view as last drawn: x min, x max, y min, y max.
    stage_view: Option<[f64; 4]>,
    /// The stage whose heat map Play waits for, at the whole stage before it.
    play_waits_for: Option<usize>,
    error: Option<String>,
    /// The part of the figures that the Explain panel's hovered term belongs to, this frame (`highlight.rs`).
    pub(crate) highlight: Highlight,
    /// "Record animation…" of the stage plot.
    pub recorder: FigureRecorder,
    /// The run's models so far and the epoch scrubber over them.
    pub scrubber: EpochScrubber<FlowParams>,
}

impl Default for FlowUiState {
    fn default() -> Self {
        Self {
            config: FlowConfig::default(),
            position: 0.0,
            direction: Direction::Generation,
            playing: false,
            speed: 1.0,
            heat: HeatMap::Density,
            show_points: true,
            show_grid: true,
            resolution: 256,
            page: FlowPage::StepThrough,
            show_data: false,
            line: LineState::default(),
            export: None,
            prepared: None,
            view_points: Arc::new(Vec::new()),
            worker: None,
            geometry: None,
            grids: HashMap::new(),
            textures: HashMap::new(),
            probe: None,
            probe_path: None,
            last_request: None,
            run: 0,
            fit_bounds: true,
            fitted_size: None,
            stage_view: None,
            play_waits_for: None,
            error: None,
            highlight: Highlight::None,
            recorder: FigureRecorder::default(),
            scrubber: EpochScrubber::default(),
        }
    }
}

impl FlowUiState {
    /// Forgets the views of the previous run; `prepared` is the new run's data.
    pub(crate) fn new_run(&mut self, prepared: Arc<Prepared>) {
        self.view_points = Arc::new(crate::train::flow_view::view_points(&prepared));
        self.prepared = Some(prepared);
        self.geometry = None;
        self.grids.clear();
        self.textures.clear();
        self.probe = None;
        self.probe_path = None;
        self.last_request = None;
        self.run += 1;
        self.position = 0.0;
        self.fit_bounds = true;
        self.error = None;
        self.recorder.cancel();
        self.scrubber.clear();
    }

    /// Keeps the model the trainer sent from the end of `epoch`, the lowest of the held-out NLL so far, in the
    /// scrubber's history (pinned where its step falls, in place of the one before), so that the overfitting note's
    /// "Show epoch" shows that very model.
    pub(crate) fn keep_lowest(&mut self, epoch: usize, view: ModelView) {
        if let ModelView::Flow { step, params } = view {
            self.scrubber.history.pin(step, epoch as f64, params);
        }
    }

    /// Every stage's points and grid lines of the model on show, once the view thread has sent them (for tests).
    #[must_use]
    pub fn geometry(&self) -> Option<&FlowGeometry> {
        self.geometry.as_deref()
    }

    /// The stage plot's view as last drawn (x min, x max, y min, y max), once it has been (for tests).
    #[must_use]
    pub fn stage_view(&self) -> Option<[f64; 4]> {
        self.stage_view
    }

    /// The box stage `k`'s density grid covers (x min, x max, y min, y max), once it is in (for tests).
    #[must_use]
    pub fn stage_grid_bounds(&self, k: usize) -> Option<[f32; 4]> {
        self.grids.get(&k).map(|g| g.bounds)
    }

    /// The box over which stage `k`'s heat map (of the kind on show) was last drawn: that of the grid its texture was
    /// made from (for tests).
    #[must_use]
    pub fn heat_map_box(&self, k: usize) -> Option<[f32; 4]> {
        let log_det = self.heat == HeatMap::LayerLogDet;
        self.textures
            .keys()
            .find(|(stage, .., ld)| *stage == k && *ld == log_det)
            .map(|(_, _, _, b, _)| b.map(f32::from_bits))
    }

    /// The data points the views push through the flow (standardised), and the run's number (for tests).
    #[must_use]
    pub fn view_points(&self) -> (&Arc<Vec<f32>>, u64) {
        (&self.view_points, self.run)
    }

    /// The epoch the scrubber is on, for the loss curves' mark.
    #[must_use]
    pub fn scrubbed_epoch(&self) -> Option<f64> {
        self.scrubber.scrubbed_epoch()
    }

    /// Puts the model kept nearest to `epoch` on show in every view, as the scrubber would.
    pub(crate) fn show_epoch(&mut self, epoch: f64) {
        if self.scrubber.show_nearest(epoch) {
            self.fit_bounds = true;
        }
    }

    /// What "Export data…" writes for `kind`: every stage's points, or the density grid of every stage computed
    /// so far (each at its latest resolution); `None` when the page has no such data yet.
    pub(crate) fn export_request(&self, kind: ExportKind) -> Option<ExportRequest> {
        match kind {
            ExportKind::Stages => {
                let geometry = Arc::clone(self.geometry.as_ref()?);
                Some(ExportRequest::new("flow-stages.csv", move || stages_table(&geometry)))
            }
            ExportKind::Density => {
                let mut grids: Vec<Arc<StageGrid>> = self.grids.values().cloned().collect();
                if grids.is_empty() {
                    return None;
                }
                grids.sort_by_key(|g| g.stage);
                Some(ExportRequest::new("flow-density.csv", move || {
                    density_table(&grids.iter().map(AsRef::as_ref).collect::<Vec<_>>())
                }))
            }
            ExportKind::History
            | ExportKind::WeightHistograms
            | ExportKind::Predictive
            | ExportKind::Calibration
            | ExportKind::Latents => None,
        }
    }

    /// One stage on (`forward`) or back from the position, stopping Play: what "Next >", "< Previous" and the
    /// arrow keys do.
    pub fn step_stage(&mut self, forward: bool) {
        self.leave_line_page();
        let k_max = self.n_layers() as f32;
        self.position =
            if forward { (self.position.floor() + 1.0).min(k_max) } else { (self.position.ceil() - 1.0).max(0.0) };
        self.playing = false;
        self.fit_bounds = true;
    }

    /// From the 1-D picture to the step-through, where a stage or a direction asked for shows (the Keras figure
    /// stays: it shows every stage at once).
    fn leave_line_page(&mut self) {
        if self.page == FlowPage::Line {
            self.page = FlowPage::StepThrough;
        }
    }

    /// Number of layers of the model on show.
    pub(crate) fn n_layers(&self) -> usize {
        self.geometry.as_ref().map_or(0, |g| g.n_layers)
    }

    /// The stage (0 = Gaussian, K = data) at a position along the direction.
    fn stage_at(&self, position: f32) -> f32 {
        match self.direction {
            Direction::Generation => position,
            Direction::Inference => self.n_layers() as f32 - position,
        }
    }

    /// The way through the stages, keeping the stage on show.
    pub fn set_direction(&mut self, direction: Direction) {
        self.leave_line_page();
        if self.direction != direction {
            let stage = self.stage_at(self.position);
            self.direction = direction;
            self.position = self.stage_at(stage);
            self.fit_bounds = true;
        }
    }

    /// Starts a replay of the run's training at `now`, or stops the one under way (R); the stage plot fits the
    /// model on show, as after a move of the scrubber.
    pub(crate) fn toggle_replay(&mut self, now: f64) {
        if self.scrubber.toggle_replay(now) {
            self.fit_bounds = true;
        }
    }

    /// Shows stage `k` (0 the Gaussian, K the data; at most K), stopping Play.
    pub fn show_stage(&mut self, k: usize) {
        self.leave_line_page();
        let k = k.min(self.n_layers()) as f32;
        self.position = self.stage_at(k);
        self.playing = false;
        self.fit_bounds = true;
    }

    /// True when stage `k`'s heat map of the model on show is in: its density grid, or nothing to wait for (stage 0
    /// has no layer whose log|det| to show).
    #[must_use]
    pub fn stage_map_in(&self, k: usize) -> bool {
        if self.heat == HeatMap::LayerLogDet && k == 0 {
            return true;
        }
        let step = self.geometry.as_ref().map(|g| g.step);
        self.grids.get(&k).is_some_and(|g| Some(g.step) == step)
    }

    /// True when stage `k` has a heat map to show, of the model on show or an earlier one of the run (while a run
    /// trains, the view thread draws the stage on show alone, for a recent model), or needs none.
    #[must_use]
    pub fn stage_has_map(&self, k: usize) -> bool {
        (self.heat == HeatMap::LayerLogDet && k == 0) || self.grids.contains_key(&k)
    }

    /// What the view thread last said went wrong, if anything (for tests).
    #[must_use]
    pub fn view_error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The stage whose heat map Play waits for this frame, at the whole stage before it (`None` while it moves).
    #[must_use]
    pub fn play_waits_for(&self) -> Option<usize> {
        self.play_waits_for
    }

    /// True when a whole stage is on show (not an in-between position while playing).
    #[must_use]
    pub fn at_whole_stage(&self) -> bool {
        self.position.fract() == 0.0
    }

    /// The stage now on show, rounded.
    #[must_use]
    pub fn stage(&self) -> usize {
        self.stage_at(self.position).round().max(0.0) as usize
    }

    /// The model step the stage views show (`None` before they show one).
    #[must_use]
    pub fn views_step(&self) -> Option<u64> {
        self.geometry.as_ref().map(|g| g.step)
    }

    /// The label of the stage on show, in words.
    #[must_use]
    pub fn stage_label(&self) -> String {
        let k_max = self.n_layers();
        let k = self.stage().min(k_max);
        let kind = |k: usize| self.geometry.as_ref().and_then(|g| g.layer_kinds.get(k - 1).copied()).unwrap_or("");
        let what = match self.direction {
            Direction::Generation if k == 0 => "Gaussian samples z ~ N(0, I)".to_owned(),
            Direction::Generation if k == k_max => format!("after layer {k} ({}): samples in data space x", kind(k)),
            Direction::Generation => format!("after layer {k} ({})", kind(k)),
            Direction::Inference if k == k_max => "the data x".to_owned(),
            Direction::Inference if k == 0 => {
                "the data pulled back to the latent z: it should look Gaussian".to_owned()
            }
            Direction::Inference => format!("the data pulled back through layers {k_max}..{}", k + 1),
        };
        format!("Stage {k} of {k_max}: {what}")
    }

    fn poll(&mut self, snapshot: Option<&RunSnapshot>, running: bool, ctx: &egui::Context) {
        let Some(ModelView::Flow { step, params }) = snapshot.and_then(|s| s.model.clone()) else {
            return;
        };
        let steps_per_epoch = snapshot.map_or(1, |s| s.steps_per_epoch.max(1));
        // A newer model (the history takes it where the model pinned at the lowest held-out NLL is newer still).
        self.scrubber.history.push(step, step as f64 / steps_per_epoch as f64, Arc::clone(&params));
        // A scrubbed epoch's model: fixed, so its views are the full pass even while the run trains on.
        let (step, params, running) = match self.scrubber.scrubbed() {
            Some(entry) => (entry.step, Arc::clone(&entry.params), false),
            None => (step, params, running),
        };
        start_view_thread(&mut self.worker, &mut self.error, ctx, FlowViewWorker::spawn);
        let Some(worker) = &self.worker else { return };
        let resolution = if running { self.resolution.min(LIVE_RESOLUTION) } else { self.resolution };
        for result in worker.drain() {
            match result {
                FlowViewResult::Geometry(g) => {
                    if self.geometry.as_ref().is_none_or(|old| old.n_layers != g.n_layers) {
                        self.position = self.position.min(g.n_layers as f32);
                    }
                    self.geometry = Some(g);
                }
                FlowViewResult::Grid(grid) => {
                    // A newer model's grid replaces an older one; for the same model, a finer one a coarser.
                    let better = self.grids.get(&grid.stage).is_none_or(|old| {
                        grid.step != old.step || grid.resolution >= old.resolution || grid.resolution == resolution
                    });
                    if better {
                        self.grids.insert(grid.stage, grid);
                    }
                }
                FlowViewResult::Probe(path) => self.probe_path = Some(path),
                FlowViewResult::Error(e) => self.error = Some(e),
            }
        }
        let aspect = self.stage_view.map_or(1.0, |[x0, x1, y0, y1]| grid_aspect(((x1 - x0) / (y1 - y0)) as f32));
        // The stage Play waits at a whole stage for comes first: while a run trains it is the only one computed.
        let focus = self.play_waits_for.unwrap_or_else(|| self.stage());
        let key = (step, resolution, aspect.to_bits(), focus, self.probe, running);
        if self.last_request != Some(key) {
            worker.request(FlowViewRequest {
                params,
                step,
                run: self.run,
                data: Arc::clone(&self.view_points),
                resolution,
                aspect,
                focus,
                probe: self.probe,
                live: running,
            });
            self.last_request = Some(key);
        }
    }
}

impl FlowUiState {
    /// Why the next run cannot train with these settings (the first setting refused), or `None`.
    #[must_use]
    pub fn settings_refusal(&self) -> Option<String> {
        let c = &self.config;
        let mut verdicts = vec![settings_check::FLOW_LAYERS.check(c.layers as f64)];
        if c.kind != FlowKind::Affine {
            verdicts.push(settings_check::FLOW_DEPTH.check(c.hidden.len() as f64));
            verdicts.extend(c.hidden.iter().map(|&w| settings_check::FLOW_WIDTH.check(w as f64)));
        }
        verdicts.push(settings_check::EPOCHS.check(c.epochs as f64));
        verdicts.push(settings_check::learning_rate(c.learning_rate));
        verdicts.push(settings_check::batch_size(c.batch_size, None));
        settings_check::first_refusal(&verdicts)
    }
}

/// What the Explain panel (and tests) read of the flow's views.
impl FlowUiState {
    /// The picked point's path through the stages, with the terms of its log-density, once the view thread has
    /// sent it.
    #[must_use]
    pub fn probe_path(&self) -> Option<&ProbePath> {
        self.probe_path.as_ref()
    }

    /// The part of the step-through that the Explain panel's hovered term belongs to, this frame.
    #[must_use]
    pub fn highlight(&self) -> &Highlight {
        &self.highlight
    }

    /// Each layer's kind ("coupling", "MAF", "affine") of the model on show, once its stages have arrived.
    #[must_use]
    pub fn layer_kinds(&self) -> &[&'static str] {
        self.geometry.as_ref().map_or(&[], |g| g.layer_kinds.as_slice())
    }
}

/// The flow page's central area; `data` is the lab's loaded data (the 1-D picture trains on its columns).
pub(crate) fn flow_view_ui(
    flow: &mut FlowUiState,
    snapshot: Option<&RunSnapshot>,
    worker_state: Option<WorkerState>,
    data: Option<&LabData>,
    ui: &mut egui::Ui,
) {
    let running = worker_state == Some(WorkerState::Running);
    // A recording shows each of its frames in turn: a stage, or a model of the run (in the figure recorded).
    match flow.recorder.frame_to_show(ui.ctx()) {
        Some(FrameTarget::Stage(stage)) => {
            flow.position = flow.stage_at(stage);
            flow.playing = false;
            flow.fit_bounds = true;
        }
        Some(FrameTarget::Model(step)) => {
            if flow.scrubber.step != Some(step) {
                flow.scrubber.step = Some(step);
                flow.fit_bounds = true;
            }
            flow.scrubber.stop_replay();
            if flow.recorder.figure() == Some("flow-keras") {
                flow.page = FlowPage::KerasFigure;
            }
        }
        None => {}
    }
    flow.poll(snapshot, running, ui.ctx());
    view_error(ui, flow.error.as_deref());
    page_tabs_ui(&mut flow.page, snapshot.is_some(), ui);
    if flow.page != FlowPage::Line {
        scrubber_ui(flow, ui);
    }
    if flow.page == FlowPage::Line {
        flow_line_ui(&mut flow.line, data, ui);
        return;
    }
    if flow.geometry.is_none() {
        waiting(ui, "Pushing points through the flow…");
        return;
    }
    match flow.page {
        FlowPage::StepThrough | FlowPage::Line => step_through_ui(flow, running, ui),
        FlowPage::KerasFigure => {
            egui::ScrollArea::vertical()
                .id_salt("flow-keras")
                .auto_shrink([false, false])
                .show(ui, |ui| keras_figure_ui(flow, ui));
        }
    }
    // "Record animation…" of the Keras figure or the loss curves (the stage plot records itself): a frame once the
    // figure shows the frame's model in full.
    if let Some(key) = take_record_asked(ui.ctx()) {
        flow.recorder.open_figure(&key);
    }
    if let Some(key) = flow.recorder.figure().map(str::to_owned) {
        let ready = match flow.recorder.current_target() {
            Some(FrameTarget::Model(step)) => geometry_shows(flow, step),
            _ => true,
        };
        flow.recorder.after_page(ui.ctx(), ready);
        let models = flow.scrubber.history.epochs();
        let subject =
            Subject { name: &key, stages: None, models: &models, running, figure_size: flow.recorder.figure_size() };
        flow.recorder.window_ui(ui.ctx(), &subject);
    }
}

/// The epoch scrubber above the flow's views: a slider over the models kept of the run, the epoch on show, Latest,
/// which follows the run again, and Replay.
fn scrubber_ui(flow: &mut FlowUiState, ui: &mut egui::Ui) {
    let ready = flow.scrubber.scrubbed().is_none_or(|e| geometry_shows(flow, e.step));
    if flow.scrubber.ui("every view", ready, ui) {
        flow.fit_bounds = true;
    }
}

/// The shape to ask the stage's density grids for, from the stage plot's view as last drawn (its width over its
/// height, which panning and zooming keep): in steps of 1/16, so that a window resized by a few points computes no
/// grid again, rounded away from 1, so that the grid covers at least the view
/// ([`crate::train::flow_view::grid_bounds`]).
fn grid_aspect(plot_aspect: f32) -> f32 {
    if !plot_aspect.is_finite() || plot_aspect <= 0.0 {
        1.0
    } else if plot_aspect >= 1.0 {
        (plot_aspect * 16.0).ceil() / 16.0
    } else {
        (plot_aspect * 16.0).floor().max(1.0) / 16.0
    }
}

/// The flow's page tabs. Before a run there is no flow to step through and no Keras figure: the first tab is the
/// data, as the lab opens, and the 1-D picture (which needs no run) the second, on either page.
pub(crate) fn page_tabs_ui(page: &mut FlowPage, has_run: bool, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        if has_run {
            for p in FlowPage::ALL {
                ui.selectable_value(page, p, p.label());
            }
        } else {
            ui.selectable_value(page, FlowPage::StepThrough, "The data");
            ui.selectable_value(page, FlowPage::Line, FlowPage::Line.label());
        }
    });
}

/// Whether the flow's points and grids through every stage are those of the model of `step`, all of them.
fn geometry_shows(flow: &FlowUiState, step: u64) -> bool {
    flow.geometry
        .as_ref()
        .is_some_and(|g| g.step == step && g.generation[0].len() == crate::train::flow_view::N_SAMPLES)
}

/// The height the stage's plot keeps (or the whole scrolled area's, when that is less) before the page scrolls
/// rather than shrink the plot further.
const MIN_STAGE_PLOT_HEIGHT: f32 = 360.0;

fn step_through_ui(flow: &mut FlowUiState, running: bool, ui: &mut egui::Ui) {
    // In a short window (a laptop's 768 rows, the loss curves open) the page scrolls, so that the stage's plot keeps
    // a readable size; otherwise the plot fills what is left of the window.
    let viewport = ui.available_height();
    egui::ScrollArea::vertical().id_salt("flow-stages").auto_shrink([false, false]).show(ui, |ui| {
        let top = ui.cursor().top();
        step_through_contents(flow, running, (viewport, top), ui);
    });
}

/// The step-through's controls, plot and picked point; `(viewport, top)`: the scrolled area's visible height and
/// where its content starts.
fn step_through_contents(flow: &mut FlowUiState, running: bool, (viewport, top): (f32, f32), ui: &mut egui::Ui) {
    let k_max = flow.n_layers();
    // The time since the last frame, so that Play keeps its speed in stages per second when frames are slow (a
    // software renderer under load draws a few a second); a longer gap is a stall, not time to skip through.
    let dt = ui.input(|i| i.stable_dt).min(0.5);
    flow.play_waits_for = None;
    if flow.playing {
        // Play waits at a whole stage until the next stage's heat map is in, so that every stage it passes shows
        // its own: the model's, or while a run trains (when the view thread draws one stage at a time for a recent
        // model) a map of the run's at all.
        let wait = flow.heat != HeatMap::Off;
        let stage_of = |w: usize| flow.stage_at(w as f32).round() as usize;
        let ready = |k: usize| if running { flow.stage_has_map(k) } else { flow.stage_map_in(k) };
        let (to, waiting) = play_advance(flow.position, flow.speed * dt, k_max, |w| !wait || ready(stage_of(w)));
        let waits_for = waiting.map(stage_of);
        (flow.position, flow.play_waits_for) = (to, waits_for);
        if flow.position >= k_max as f32 {
            flow.position = k_max as f32;
            flow.playing = false;
        }
        flow.fit_bounds = true;
        ui.ctx().request_repaint();
    }
    let recording = flow.recorder.busy();
    ui.horizontal_wrapped(|ui| {
        let before = (flow.direction, flow.position);
        labelled_combo(ui, "Direction", "flow-direction", flow.direction.label(), |ui| {
            for d in [Direction::Generation, Direction::Inference] {
                if ui.selectable_label(flow.direction == d, d.label()).clicked() {
                    flow.set_direction(d);
                }
            }
        });
        if ui.add_enabled(flow.position > 0.0, egui::Button::new("< Previous")).on_hover_text("Left arrow").clicked() {
            flow.step_stage(false);
        }
        if ui
            .add_enabled(flow.position < k_max as f32, egui::Button::new("Next >"))
            .on_hover_text("Right arrow")
            .clicked()
        {
            flow.step_stage(true);
        }
        let play = if flow.playing { "Pause" } else { "Play" };
        // As wide as the wider of its two words, so that pressing it does not move Speed on (in a window 1024 points
        // wide, "Pause" pushed Speed onto a line of its own and the plot down).
        let widest = ["Play", "Pause"].map(|w| text_width(ui, w, egui::TextStyle::Button));
        let width = widest[0].max(widest[1]) + 2.0 * ui.spacing().button_padding.x;
        let button = egui::Button::new(play).min_size(egui::vec2(width, 0.0));
        if ui.add(button).on_hover_text("Move smoothly through the stages").clicked() {
            if !flow.playing && flow.position >= k_max as f32 {
                flow.position = 0.0;
            }
            flow.playing = !flow.playing;
        }
        together(ui, "flow-speed", |ui| {
            let id = ui.label("Speed").id;
            let speed = egui::DragValue::new(&mut flow.speed).range(0.1..=10.0).speed(0.05).suffix(" stages/s");
            ui.add(speed).labelled_by(id);
        });
        if (flow.direction, flow.position) != before {
            flow.fit_bounds = true;
        }
    });
    ui.horizontal(|ui| {
        let id = ui.label("Position").id;
        // The slider works on a copy: egui rounds a stepped slider's value to its step on every frame and reports
        // that as a change, which snapped Play's fractional position back to a whole stage and stopped it. While
        // playing, the handle follows the position smoothly; a drag (or a key) stops playing and lands on a whole
        // stage.
        let mut shown = if flow.playing { flow.position } else { flow.position.round() };
        let mut slider = egui::Slider::new(&mut shown, 0.0..=k_max as f32).show_value(false);
        if !flow.playing {
            slider = slider.step_by(1.0);
        }
        if ui.add(slider).labelled_by(id).changed() {
            flow.position = shown.round();
            flow.playing = false;
            flow.fit_bounds = true;
        }
        // Wrapped: a long stage's label must not widen the page (beside the Explain panel it would run under it).
        ui.add(egui::Label::new(egui::RichText::new(flow.stage_label()).strong()).wrap());
    });
    ui.horizontal_wrapped(|ui| {
        ui.label("Heat map:");
        ui.selectable_value(&mut flow.heat, HeatMap::Density, "density of the stage");
        ui.selectable_value(&mut flow.heat, HeatMap::LayerLogDet, "log|det J| of its layer");
        ui.selectable_value(&mut flow.heat, HeatMap::Off, "none");
        ui.checkbox(&mut flow.show_points, "Points");
        ui.checkbox(&mut flow.show_grid, "Warped grid");
        labelled_combo(ui, "Grid cells", "flow-resolution", format!("{0} x {0}", flow.resolution), |ui| {
            for r in RESOLUTIONS {
                ui.selectable_value(&mut flow.resolution, r, format!("{r} x {r}"));
            }
        });
    });
    // Above the plot, which a recording keeps on screen.
    flow.recorder.capture_progress_ui(ui);
    let Some(geometry) = flow.geometry.clone() else { return };
    let stage_f = flow.stage_at(flow.position).clamp(0.0, k_max as f32);
    let (k0, t) = (stage_f.floor() as usize, stage_f.fract());
    let k1 = (k0 + 1).min(k_max);
    let k_show = stage_f.round() as usize;
    let lerp = |a: [f32; 2], b: [f32; 2]| [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t];
    let bounds = {
        let (a, b) = (geometry.bounds[k0], geometry.bounds[k1]);
        [0, 1, 2, 3].map(|i| a[i] + (b[i] - a[i]) * t)
    };
    let heat = heat_texture(flow, k_show, ui.ctx());
    let ink = plot_axes::ink(ui.visuals(), heat.is_some());
    let grid_info = flow.grids.get(&k_show).map(|g| {
        let stale = if g.step == geometry.step { "" } else { ", from an earlier step" };
        let took = if g.seconds < 1.0 { format!("{:.0} ms", g.seconds * 1e3) } else { format!("{:.2} s", g.seconds) };
        format!("{0} x {0} grid in {took} on {2}, mass {1:.3}{stale}", g.resolution, g.mass, g.device)
    });
    let side_width = 300.0f32.min(ui.available_width() * 0.35);
    // Room for the row of buttons and the grid's note under the plot; scrolled down, the plot and its buttons
    // still fit the area together, so "Save image…" captures the whole plot.
    let below = 48.0;
    let plot_height =
        (viewport - (ui.cursor().top() - top) - below).max(MIN_STAGE_PLOT_HEIGHT.min(viewport - below)).max(200.0);
    let mut figure_size = [0, 0];
    ui.horizontal_top(|ui| {
        let plot_size = (ui.available_width() - side_width - 8.0).max(200.0);
        ui.vertical(|ui| {
            ui.set_width(plot_size);
            let mut plot = stage_legend(plot_axes::plane("flow-stage"), flow, &geometry, ui)
                .height(plot_height)
                .allow_double_click_reset(false);
            if running {
                plot = plot.allow_drag(false);
            }
            if recording {
                // The frames show the figure, not where the mouse happens to be.
                plot = plot.show_x(false).show_y(false).show_crosshair(false);
            }
            let size = egui::vec2(plot_size, plot_height).round();
            let resized = flow.fitted_size.replace(size) != Some(size);
            let fit = std::mem::take(&mut flow.fit_bounds) || resized;
            let points = match flow.direction {
                Direction::Generation => &geometry.generation,
                Direction::Inference => &geometry.inference,
            };
            let reference = match flow.direction {
                Direction::Generation => &points[0],
                Direction::Inference => &points[k_max],
            };
            let file_name = format!("flow-{}-stage-{k_show}.png", flow.direction.file_word());
            // The Explain panel's term: the picked point's path, its z, or a layer's step (and the layer on show).
            let highlight = flow.highlight.clone();
            let accent = highlight::accent(ui.visuals());
            let faded = |c: Color32| if highlight.is_some() { highlight::dim(c) } else { c };
            let layer_on_show = flow.stage().clamp(1, k_max.max(1));
            let (response, figure) = saveable_in(ui, "flow-stage", || file_name, |ui| plot.show(ui, |plot_ui| {
                if fit {
                    plot_ui.set_plot_bounds(PlotBounds::from_min_max(
                        [f64::from(bounds[0]), f64::from(bounds[2])],
                        [f64::from(bounds[1]), f64::from(bounds[3])],
                    ));
                }
                if let Some((texture, b)) = &heat {
                    let centre = PlotPoint::new(f64::from(b[0] + b[1]) / 2.0, f64::from(b[2] + b[3]) / 2.0);
                    let size = egui::vec2(b[1] - b[0], b[3] - b[2]);
                    plot_ui.image(PlotImage::new("heat map", texture.id(), centre, size));
                }
                if flow.show_grid {
                    // Light over the heat map or a dark theme's background, dark on a light theme's.
                    let colour = if ink == Color32::WHITE {
                        Color32::from_rgba_unmultiplied(200, 200, 200, 90)
                    } else {
                        Color32::from_rgba_unmultiplied(30, 30, 30, 80)
                    };
                    for (a, b) in geometry.grid_lines[k0].iter().zip(&geometry.grid_lines[k1]) {
                        let pts: Vec<[f64; 2]> = a
                            .iter()
                            .zip(b)
                            .map(|(&p, &q)| lerp(p, q))
                            .map(|p| [f64::from(p[0]), f64::from(p[1])])
                            .collect();
                        // As lines: egui_plot draws a line whose x never decreases as a filled band once two of
                        // its points share a pixel column, which fills the space between a warped line's bends.
                        plot_ui.line(
                            Line::new("warped grid", PlotPoints::from(pts)).color(colour).width(1.0).allow_band(false),
                        );
                    }
                }
                if flow.show_points {
                    // Colour by where each point sits at the start of the journey, so it can be followed.
                    let centre = mean(reference);
                    let mut by_colour: Vec<Vec<[f64; 2]>> = vec![Vec::new(); HUES];
                    for ((&p, &q), &r) in points[k0].iter().zip(&points[k1]).zip(reference) {
                        let v = lerp(p, q);
                        by_colour[hue_bucket(r, centre)].push([f64::from(v[0]), f64::from(v[1])]);
                    }
                    let name = match flow.direction {
                        Direction::Generation => "Gaussian samples",
                        Direction::Inference => "data points",
                    };
                    for (h, pts) in by_colour.into_iter().enumerate() {
                        plot_ui.points(
                            Points::new(name, pts)
                                .color(faded(hue_colour(h)))
                                .radius(1.8)
                                .shape(MarkerShape::Circle)
                                .filled(true),
                        );
                    }
                }
                if let Some(path) = &flow.probe_path {
                    let pts: Vec<[f64; 2]> =
                        path.positions.iter().map(|p| [f64::from(p[0]), f64::from(p[1])]).collect();
                    if highlight == Highlight::FlowPath {
                        highlight::halo_line(plot_ui, "path", pts.clone(), 3.5);
                    }
                    let path_colour = match highlight {
                        Highlight::FlowPath => accent,
                        Highlight::None => ink,
                        _ => highlight::dim(ink),
                    };
                    plot_ui.line(
                        Line::new("picked point's path", PlotPoints::from(pts.clone()))
                            .color(path_colour)
                            .width(if highlight == Highlight::FlowPath { 3.5 } else { 2.0 })
                            // Seven points, two of which can share a pixel column: as a band it was a filled
                            // white polygon.
                            .allow_band(false),
                    );
                    if let Some(p) = path.positions.get(k_show) {
                        plot_ui.points(
                            Points::new("picked point", vec![[f64::from(p[0]), f64::from(p[1])]])
                                .color(Color32::from_rgb(255, 60, 60))
                                .radius(6.0)
                                .shape(MarkerShape::Diamond)
                                .filled(true),
                        );
                    }
                    for (k, p) in pts.iter().enumerate() {
                        plot_ui.text(
                            egui_plot::Text::new(
                                "stage numbers",
                                PlotPoint::new(p[0], p[1]),
                                egui::RichText::new(format!("{k}")).text_style(egui::TextStyle::Body),
                            )
                                .color(ink)
                                .anchor(egui::Align2::LEFT_BOTTOM),
                        );
                    }
                    path_highlight_ui(plot_ui, &highlight, &pts, accent);
                }
                plot_ui.pointer_coordinate()
            }));
            let view = response.transform.bounds();
            flow.stage_view = Some([view.min()[0], view.max()[0], view.min()[1], view.max()[1]]);
            if let Some(k) = flow.play_waits_for {
                waiting_badge(ui, *response.transform.frame(), k);
            }
            let has_path = flow.probe_path.is_some();
            if let Some(what) = stage_highlight(&highlight, has_path, layer_on_show) {
                if matches!(highlight, Highlight::FlowLayer(k) if k == layer_on_show) {
                    // The layer on show: the stage's plot framed in the accent colour.
                    let rect = response.response.rect.expand(2.0);
                    let painter = ui.painter();
                    painter.rect_stroke(rect, 2.0, egui::Stroke::new(6.0, highlight::halo()), egui::StrokeKind::Outside);
                    painter.rect_stroke(rect, 2.0, egui::Stroke::new(3.0, accent), egui::StrokeKind::Outside);
                }
                highlight::label_figure(&response.response, &what);
            }
            if response.response.clicked()
                && let Some(p) = response.inner
            {
                flow.probe = Some((k_show, [p.x as f32, p.y as f32]));
            }
            // A recording's frame is taken once the stage's heat map is the model's, at the chosen resolution.
            let model_in = match flow.recorder.current_target() {
                Some(FrameTarget::Model(step)) => geometry.step == step,
                _ => true,
            };
            let ready = model_in
                && (flow.heat == HeatMap::Off
                    || flow
                        .grids
                        .get(&k_show)
                        .is_some_and(|g| g.step == geometry.step && g.resolution == flow.resolution));
            // ... and with the whole figure on screen: the page is scrolled to it first (where it fits at all).
            let whole = ui.clip_rect().contains_rect(figure);
            if recording && !whole {
                ui.scroll_to_rect(figure, None);
            }
            let fits = whole || figure.height() > ui.clip_rect().height();
            let figure = figure.intersect(ui.clip_rect());
            if flow.recorder.figure().is_none() {
                flow.recorder.after_draw(ui.ctx(), figure, ready && fits);
            }
            let pixels = |v: f32| (v * ui.ctx().pixels_per_point()).round() as usize;
            figure_size = [pixels(figure.width()), pixels(figure.height())];
            // Wrapped, so that the notes beside the buttons stay under the plot and never push the picked point's
            // column past the window's edge.
            ui.horizontal_wrapped(|ui| {
                if export_button(ui) {
                    flow.export = flow.export_request(ExportKind::Stages);
                }
                save_image_button(ui, "flow-stage");
                if ui.add_enabled(!recording, egui::Button::new("Record animation…")).clicked() {
                    flow.recorder.open(Some(k_max));
                }
                if ui
                    .button("Export density…")
                    .on_hover_text("Save every stage's density grid computed so far as a CSV file (cell centres, density, layer log|det|)")
                    .clicked()
                {
                    flow.export = flow.export_request(ExportKind::Density);
                }
                ui.label(egui::RichText::new("Click the plot to follow a point through every stage.").weak());
            });
            ui.horizontal_wrapped(|ui| {
                let shown = geometry.generation.first().map_or(0, Vec::len);
                if shown < crate::train::flow_view::N_SAMPLES {
                    ui.label(egui::RichText::new(format!(
                        "While training: {} of {} points and a coarse grid, so that training keeps the cores; all of them when paused.",
                        crate::data::table::grouped(shown),
                        crate::data::table::grouped(crate::train::flow_view::N_SAMPLES)
                    ))
                    .weak());
                }
                if let Some(info) = grid_info {
                    ui.label(egui::RichText::new(info).weak());
                } else if flow.heat != HeatMap::Off {
                    ui.spinner();
                    ui.label(egui::RichText::new("computing this stage's grid…").weak());
                }
            });
        });
        ui.vertical(|ui| {
            ui.set_width(side_width);
            // Scrolls when the window is too short for every layer's term.
            egui::ScrollArea::vertical()
                .id_salt("flow-probe")
                .max_height(plot_height + below)
                .show(ui, |ui| probe_ui(flow, ui));
        });
    });
    let name = format!("flow-{}", flow.direction.file_word());
    let models = flow.scrubber.history.epochs();
    let stages = Stages { layers: k_max, on_show: flow.stage(), direction: flow.direction.file_word() };
    let subject = Subject { name: &name, stages: Some(stages), models: &models, running, figure_size };
    if flow.recorder.figure().is_none() {
        flow.recorder.window_ui(ui.ctx(), &subject);
    }
}

/// The Explain panel's term on the picked point's path `pts` (stage 0, the Gaussian's z, first): its z, or layer
/// k's step from stage k - 1 to stage k, in the accent colour.
fn path_highlight_ui(plot: &mut egui_plot::PlotUi<'_>, highlight: &Highlight, pts: &[[f64; 2]], accent: Color32) {
    match highlight {
        Highlight::FlowLatent => {
            if let Some(&z) = pts.first() {
                highlight::accent_marker(plot, "z", z, (MarkerShape::Circle, 8.0), accent);
                let anchor = highlight::inward(plot, z);
                highlight::accent_text(plot, "z", (z, anchor), "  z (stage 0)  ", accent);
            }
        }
        Highlight::FlowLayer(k) => {
            if let (Some(&from), Some(&to)) = (pts.get(k.saturating_sub(1)), pts.get(*k)) {
                highlight::accent_line(plot, "layer-step", vec![from, to], 4.0, accent);
                plot.arrows(
                    egui_plot::Arrows::new("", vec![from], vec![to]).id("layer-tip").color(accent).tip_length(14.0),
                );
                highlight::accent_marker(plot, "layer-from", from, (MarkerShape::Circle, 5.0), accent);
                highlight::accent_marker(plot, "layer-to", to, (MarkerShape::Circle, 5.0), accent);
                let mid = [f64::midpoint(from[0], to[0]), f64::midpoint(from[1], to[1])];
                let anchor = highlight::inward(plot, mid);
                highlight::accent_text(plot, "layer", (mid, anchor), &format!("  layer {k}  "), accent);
            }
        }
        _ => {}
    }
}

/// What the stage's plot highlights for the Explain panel's term, in words, or `None` when it has no part of it:
/// the picked point's path and z need a picked point; a layer is its step (with a picked point) and the stage's plot
/// itself while the layer is on show (`layer_on_show`, as the panel counts it).
fn stage_highlight(highlight: &Highlight, has_path: bool, layer_on_show: usize) -> Option<String> {
    match highlight {
        Highlight::FlowPath if has_path => Some("the picked point's path through every stage".to_owned()),
        Highlight::FlowLatent if has_path => Some("the picked point's z at stage 0, the Gaussian's".to_owned()),
        Highlight::FlowLayer(k) => {
            let step =
                has_path.then(|| format!("the picked point's step from stage {} to stage {k}", k.saturating_sub(1)));
            let on_show = (*k == layer_on_show).then(|| "the stage's plot (the layer on show)".to_owned());
            match (step, on_show) {
                (Some(step), Some(on_show)) => Some(format!("layer {k}: {step}, {on_show}")),
                (Some(one), None) | (None, Some(one)) => Some(format!("layer {k}: {one}")),
                (None, None) => None,
            }
        }
        _ => None,
    }
}

/// The stage plot with its legend in the corner that hides the fewest points over every stage of the direction on
/// show ([`stage_legend_corner`]), unless its toggle (beside the picked point) hid it. One corner for all stages: as
/// Play or the arrows move through them, the legend stays put rather than jump between corners (and, in a bottom
/// corner, list its entries the other way up).
fn stage_legend<'a>(plot: Plot<'a>, flow: &FlowUiState, geometry: &FlowGeometry, ui: &egui::Ui) -> Plot<'a> {
    let stages = match flow.direction {
        Direction::Generation => &geometry.generation,
        Direction::Inference => &geometry.inference,
    };
    // The points, the heat map, the warped grid and a picked point's path.
    let entries = ["Gaussian samples", "warped grid", "heat map", "picked point's path"];
    let size = egui::vec2(ui.available_width(), ui.available_width().min(ui.available_height()));
    let corner = stage_legend_corner(stages, &geometry.bounds, &entries, size);
    plot_axes::with_legend_in(plot, ui.ctx(), "flow-stage", corner)
}

/// The corner of the stage plot whose legend (of `entries`, on a plot of `size`) hides the fewest of every stage's
/// points (`stages[k]`), each stage's points placed in its own view (`bounds[k]`: x0, x1, y0, y1), which the plot
/// fits as it shows that stage.
fn stage_legend_corner(
    stages: &[Vec<[f32; 2]>],
    bounds: &[[f32; 4]],
    entries: &[&str],
    size: egui::Vec2,
) -> egui_plot::Corner {
    let mut occupied = plot_axes::Occupied::for_legend(entries, size);
    for (points, b) in stages.iter().zip(bounds) {
        let (width, height) = (f64::from(b[1] - b[0]), f64::from(b[3] - b[2]));
        if width > 0.0 && height > 0.0 {
            let placed: Vec<[f64; 2]> = points
                .iter()
                .map(|p| [(f64::from(p[0]) - f64::from(b[0])) / width, (f64::from(p[1]) - f64::from(b[2])) / height])
                .collect();
            occupied.points(&placed);
        }
    }
    // The views' four corners (one point in each corner, so no corner is favoured), so that the shares are of the
    // views rather than of where the points happen to reach.
    occupied.points(&[[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]);
    occupied.placement().corner
}

/// Play's wait for stage `k`'s heat map, said in the top left corner of the stage plot's `frame`: in the row of
/// Play's controls it wrapped onto a line of its own in a narrow window, and the plot moved down and up again at
/// every wait.
fn waiting_badge(ui: &mut egui::Ui, frame: egui::Rect, k: usize) {
    let mut badge = ui.new_child(egui::UiBuilder::new().max_rect(frame.shrink(6.0)));
    egui::Frame::new()
        .fill(badge.visuals().window_fill().gamma_multiply(0.9))
        .corner_radius(4.0)
        .inner_margin(egui::Margin::symmetric(8, 4))
        .show(&mut badge, |ui| {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!("waiting for stage {k}'s heat map"));
            });
        });
}

/// Where Play's position goes from `from` in a frame that moves it on by `by` (at most to `k_max`), and the whole
/// position it waits at, if any: it stops at a whole position `w` when `ready(w + 1)` says that the next position's
/// heat map is not in yet, and goes on from there once it is.
fn play_advance(from: f32, by: f32, k_max: usize, ready: impl Fn(usize) -> bool) -> (f32, Option<usize>) {
    let to = (from + by).min(k_max as f32);
    let mut w = from.ceil();
    while w < to {
        let next = w as usize + 1;
        if !ready(next) {
            return (w, Some(next));
        }
        w += 1.0;
    }
    (to, None)
}

/// The heat map of stage `k` as a texture, built once per grid and mode.
fn heat_texture(flow: &mut FlowUiState, k: usize, ctx: &egui::Context) -> Option<(TextureHandle, [f32; 4])> {
    if flow.heat == HeatMap::Off {
        return None;
    }
    let grid = flow.grids.get(&k)?;
    let log_det = flow.heat == HeatMap::LayerLogDet;
    if log_det && k == 0 {
        return None;
    }
    let key = (k, grid.step, grid.resolution, grid.bounds.map(f32::to_bits), log_det);
    if let Some(t) = flow.textures.get(&key) {
        return Some((t.clone(), grid.bounds));
    }
    let n = grid.resolution;
    let values = if log_det { &grid.layer_log_det } else { &grid.density };
    let mut pixels = vec![Color32::TRANSPARENT; n * n];
    if log_det {
        let scale = values.iter().map(|v| v.abs()).fold(0.0f32, f32::max).max(1e-6);
        for r in 0..n {
            for c in 0..n {
                pixels[(n - 1 - r) * n + c] = diverging(values[r * n + c] / scale);
            }
        }
    } else {
        // Scale by the 99.5th percentile, so one sharp peak does not leave the rest of the map black.
        let mut sorted: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f32::total_cmp);
        let max = sorted.get(sorted.len().saturating_sub(1) * 199 / 200).copied().unwrap_or(1.0).max(1e-12);
        for r in 0..n {
            for c in 0..n {
                pixels[(n - 1 - r) * n + c] = sequential((values[r * n + c] / max).sqrt());
            }
        }
    }
    let texture = ctx.load_texture(
        format!("flow-heat-{k}-{log_det}"),
        egui::ColorImage::new([n, n], pixels),
        egui::TextureOptions::LINEAR,
    );
    flow.textures.retain(|(kk, _, _, _, ld), _| *kk != k || *ld != log_det);
    flow.textures.insert(key, texture.clone());
    Some((texture, grid.bounds))
}

/// The picked point's change of variables, term by term.
fn probe_ui(flow: &FlowUiState, ui: &mut egui::Ui) {
    ui.strong("Picked point");
    let Some(path) = &flow.probe_path else {
        ui.label("Click anywhere in the plot: the point is followed back to the Gaussian and forward to the data.");
        legend_ui(flow, ui);
        return;
    };
    let k_max = path.positions.len() - 1;
    let (x, z) = (path.positions[k_max], path.positions[0]);
    ui.monospace(format!("x = ({:.3}, {:.3})", x[0], x[1]));
    ui.monospace(format!("z = ({:.3}, {:.3})", z[0], z[1]));
    ui.add_space(4.0);
    ui.label("log p_x(x) = log p_z(z) + Σ_k −log|det J_k|");
    egui::Grid::new("probe-terms").num_columns(2).striped(true).show(ui, |ui| {
        ui.label("log p_z(z)");
        ui.monospace(format!("{:+.4}", path.log_pz));
        ui.end_row();
        for (k, term) in path.layer_terms.iter().enumerate() {
            ui.label(format!("layer {}: −log|det J|", k + 1));
            ui.monospace(format!("{term:+.4}"));
            ui.end_row();
        }
        ui.strong("log p_x(x)");
        ui.monospace(format!("{:+.4}", path.log_px));
        ui.end_row();
        ui.label("p_x(x)");
        ui.monospace(format!("{:.5}", path.log_px.exp()));
        ui.end_row();
    });
    if path.step != flow.geometry.as_ref().map_or(path.step, |g| g.step) {
        ui.label(egui::RichText::new("(from an earlier step; updating)").weak());
    }
    legend_ui(flow, ui);
}

fn legend_ui(flow: &FlowUiState, ui: &mut egui::Ui) {
    ui.add_space(8.0);
    plot_axes::legend_toggle(ui, "flow-stage");
    let text = match flow.direction {
        Direction::Generation => "Points: Gaussian samples, coloured by their angle in z, so each can be followed.",
        Direction::Inference => "Points: training data, coloured by their angle around the data's centre.",
    };
    ui.label(text);
    let heat = match flow.heat {
        HeatMap::Density => "Heat map: the stage's density by the change of variables (square-root scale).",
        HeatMap::LayerLogDet => "Heat map: log|det J| of the layer that made this stage; red stretches, blue squeezes.",
        HeatMap::Off => "",
    };
    ui.label(heat);
}

fn keras_figure_ui(flow: &mut FlowUiState, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        if export_button(ui) {
            flow.export = flow.export_request(ExportKind::Stages);
        }
        save_image_button(ui, "flow-keras");
        record_button(ui, "flow-keras", flow.recorder.busy());
    });
    let Some(g) = &flow.geometry else { return };
    let k = g.n_layers;
    let panels: [(&str, &Vec<[f32; 2]>, Color32); 4] = [
        ("Inference: data space X", &g.inference[k], Color32::from_rgb(70, 130, 230)),
        ("Inference: latent space Z = f^-1(X)", &g.inference[0], Color32::from_rgb(70, 130, 230)),
        ("Generated: latent space Z ~ N(0, I)", &g.generation[0], Color32::from_rgb(230, 120, 40)),
        ("Generated: data space X = f(Z)", &g.generation[k], Color32::from_rgb(230, 120, 40)),
    ];
    let (columns, size) = keras_layout(ui.available_size());
    saveable(ui, "flow-keras", || "flow-keras-figure.png".to_owned(), |ui| keras_grid_ui(&panels, columns, size, ui));
}

/// Columns and side of the Keras figure's square panels in `available` room: two by two as in the Keras example,
/// or four in a row where that makes them larger (a wide window whose loss curves take half its height). Titles
/// and gaps take about 30 points under or beside each panel; the side is at least 150 points (the page scrolls).
fn keras_layout(available: egui::Vec2) -> (usize, f32) {
    let two_by_two = ((available.x - 16.0) / 2.0).min((available.y - 60.0) / 2.0);
    let in_a_row = ((available.x - 32.0) / 4.0).min(available.y - 30.0);
    let (columns, size) = if in_a_row > two_by_two { (4, in_a_row) } else { (2, two_by_two) };
    (columns, size.max(150.0))
}

/// The Keras figure's four scatter plots, `columns` to a row.
fn keras_grid_ui(panels: &[(&str, &Vec<[f32; 2]>, Color32); 4], columns: usize, size: f32, ui: &mut egui::Ui) {
    egui::Grid::new("keras-figure").num_columns(columns).show(ui, |ui| {
        for (i, (title, pts, colour)) in panels.iter().enumerate() {
            ui.vertical(|ui| {
                ui.strong(*title);
                let xs: Vec<[f64; 2]> = pts.iter().map(|p| [f64::from(p[0]), f64::from(p[1])]).collect();
                plot_axes::plane(("keras", i)).width(size).height(size).show(ui, |plot| {
                    plot.points(Points::new(*title, xs).color(*colour).radius(1.5).filled(true));
                });
            });
            if i % columns == columns - 1 {
                ui.end_row();
            }
        }
    });
}

/// The flow's loss curves: training and held-out negative log-likelihood per epoch; "Export data…" leaves its
/// request in `export`; `emphasised`: the Explain panel's NLL is hovered (both curves highlighted); `recording`: the
/// lab's recorder is busy (its Record animation… is off); `averaged`: the run keeps a weight average, whose figure
/// the held-out curve is (the training curve is the mean of the epoch's minibatch losses, at the weights each step
/// took), which the legend says.
pub(crate) fn flow_loss_ui(
    snapshot: &RunSnapshot,
    export: &mut Option<ExportRequest>,
    (emphasised, scrubbed_epoch, recording, averaged): (bool, Option<f64>, bool, bool),
    (n_train, kept_near): (Option<usize>, impl Fn(f64) -> Option<f64>),
    ui: &mut egui::Ui,
) -> Option<f64> {
    ui.horizontal(|ui| {
        if export_button(ui) {
            *export = Some(history_request(crate::Lab::Flow, snapshot));
        }
        save_image_button(ui, "flow-loss");
        record_button(ui, "flow-loss", recording);
    });
    let (train, held_out) = (epoch_series(snapshot, "train_nll"), epoch_series(snapshot, "heldout_nll"));
    // 150 points, less in a short window (a fifth of what is left of it), so that the pages under keep their room.
    let height = crate::ui::lab_page::figure_height(ui, 0.2, 0.0, (90.0, 150.0));
    let names = if averaged {
        ["train NLL (the steps' minibatches)", "held-out NLL (the weight average)"]
    } else {
        ["train NLL", "held-out NLL"]
    };
    let mut curves = EpochCurves::new("flow-loss", height, names.into_iter().zip([train, held_out]).collect())
        .marked(scrubbed_epoch)
        .with_y_label("NLL (nats per point)");
    let emphasised: &[&str] = if emphasised { &names } else { &[] };
    saveable(
        ui,
        "flow-loss",
        || "flow-loss.png".to_owned(),
        |ui| {
            // The collapsing header above names the figure: the row holds the legend alone.
            curves.heading(ui, |_| {});
            curves.show(ui, emphasised, None);
        },
    );
    // Where the held-out NLL has climbed from its lowest as the training NLL fell: said, with the way back.
    crate::ui::overfit::note_ui(ui, snapshot, &crate::ui::overfit::FLOW, (n_train, scrubbed_epoch), kept_near)
}

const HUES: usize = 12;

fn mean(points: &[[f32; 2]]) -> [f32; 2] {
    let n = points.len().max(1) as f32;
    let s = points.iter().fold([0.0, 0.0], |a, p| [a[0] + p[0], a[1] + p[1]]);
    [s[0] / n, s[1] / n]
}

fn hue_bucket(p: [f32; 2], centre: [f32; 2]) -> usize {
    let angle = (p[1] - centre[1]).atan2(p[0] - centre[0]) + std::f32::consts::PI;
    ((angle / std::f32::consts::TAU * HUES as f32) as usize).min(HUES - 1)
}

fn hue_colour(bucket: usize) -> Color32 {
    let h = bucket as f32 / HUES as f32;
    let hsva = egui::ecolor::Hsva::new(h, 0.75, 1.0, 1.0);
    Color32::from(hsva)
}

/// Dark blue to yellow through purple and orange (a magma-like ramp), t in [0, 1].
fn sequential(t: f32) -> Color32 {
    const STOPS: [(f32, [u8; 3]); 5] = [
        (0.0, [8, 8, 30]),
        (0.25, [60, 20, 110]),
        (0.5, [160, 40, 110]),
        (0.75, [240, 110, 60]),
        (1.0, [252, 250, 160]),
    ];
    let t = if t.is_finite() { t.clamp(0.0, 1.0) } else { 0.0 };
    for w in STOPS.windows(2) {
        let ((a, ca), (b, cb)) = (w[0], w[1]);
        if t <= b {
            let u = (t - a) / (b - a);
            let mix = |i: usize| (f32::from(ca[i]) + (f32::from(cb[i]) - f32::from(ca[i])) * u) as u8;
            return Color32::from_rgb(mix(0), mix(1), mix(2));
        }
    }
    Color32::from_rgb(252, 250, 160)
}

/// Blue (−1) through near-black (0) to red (+1).
fn diverging(t: f32) -> Color32 {
    let t = if t.is_finite() { t.clamp(-1.0, 1.0) } else { 0.0 };
    let a = t.abs();
    let base = 25.0;
    if t >= 0.0 {
        Color32::from_rgb((base + 220.0 * a) as u8, (base + 40.0 * a) as u8, base as u8)
    } else {
        Color32::from_rgb(base as u8, (base + 90.0 * a) as u8, (base + 220.0 * a) as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::{keras_layout, play_advance, stage_legend_corner};
    use egui_plot::Corner;

    #[test]
    fn the_stage_legend_takes_the_corner_freest_over_every_stage_each_in_its_own_view() {
        // 30 points in a square of side 1.5 at (x, y), in a view of side 10 at (x0, y0).
        let cluster = |(x0, y0): (f32, f32), (x, y): (f32, f32)| -> Vec<[f32; 2]> {
            (0..30u8).map(|i| [x0 + x + f32::from(i % 6) * 0.3, y0 + y + f32::from(i / 6) * 0.3]).collect()
        };
        let middle = |(x0, y0): (f32, f32)| cluster((x0, y0), (4.0, 4.0));
        // Stage 0 fills its top right; stage 1, in a view far from stage 0's, its top left and bottom left.
        let (at0, at1) = ((0.0, 0.0), (100.0, -10.0));
        let stage0 = [cluster(at0, (8.5, 8.5)), middle(at0)].concat();
        let stage1 = [cluster(at1, (0.0, 8.5)), cluster(at1, (0.0, 0.0)), middle(at1)].concat();
        let bounds = [[0.0, 10.0, 0.0, 10.0], [100.0, 110.0, -10.0, 0.0]];
        let entries = ["Gaussian samples", "warped grid", "heat map", "picked point's path"];
        let size = egui::vec2(600.0, 600.0);
        let corner =
            |stages: &[Vec<[f32; 2]>], bounds: &[[f32; 4]]| stage_legend_corner(stages, bounds, &entries, size);
        // On its own each stage would put it elsewhere: the legend would jump as Play moves on.
        assert_eq!(corner(std::slice::from_ref(&stage0), &bounds[..1]), Corner::LeftTop);
        assert_eq!(corner(std::slice::from_ref(&stage1), &bounds[1..]), Corner::RightTop);
        // Over both, each in its own view: the one corner free in both.
        assert_eq!(corner(&[stage0, stage1], &bounds), Corner::RightBottom);
    }

    #[test]
    fn play_waits_at_a_whole_stage_for_the_next_stages_map() {
        let all = |_: usize| true;
        // Every map in: it moves on, across whole stages, and stops at the last.
        assert_eq!(play_advance(0.0, 0.25, 4, all), (0.25, None));
        assert_eq!(play_advance(1.5, 2.0, 4, all), (3.5, None));
        assert_eq!(play_advance(3.5, 2.0, 4, all), (4.0, None));
        // Stage 3's map not in: from 1.5 it stops at 2, and stays there while it is missing.
        let no_3 = |w: usize| w != 3;
        assert_eq!(play_advance(1.5, 1.0, 4, no_3), (2.0, Some(3)));
        assert_eq!(play_advance(2.0, 0.3, 4, no_3), (2.0, Some(3)));
        // A frame short of the whole stage, or a map that was in before: no wait.
        assert_eq!(play_advance(1.2, 0.5, 4, no_3), (1.7, None));
        assert_eq!(play_advance(3.0, 0.5, 4, no_3), (3.5, None));
        // From the start, stage 1 missing: it waits at 0.
        assert_eq!(play_advance(0.0, 0.1, 4, |w| w != 1), (0.0, Some(1)));
        // A long frame (speed 10, a stall) passes several stages and stops at the first one missing.
        assert_eq!(play_advance(0.5, 5.0, 6, |w| w < 4), (3.0, Some(4)));
    }

    #[test]
    fn the_keras_figure_goes_four_in_a_row_only_where_its_panels_grow() {
        // a 1280 x 800 window with the loss curves open: 950 x 430 points left
        let (columns, size) = keras_layout(egui::vec2(950.0, 430.0));
        assert_eq!(columns, 4);
        assert!((size - 229.5).abs() < 0.01, "{size}");
        // the loss curves folded: room for the Keras example's two by two
        let (columns, size) = keras_layout(egui::vec2(950.0, 700.0));
        assert_eq!((columns, size), (2, 320.0));
        // a narrow window never goes below 150 points a side
        assert_eq!(keras_layout(egui::vec2(300.0, 200.0)), (2, 150.0));
    }
}
