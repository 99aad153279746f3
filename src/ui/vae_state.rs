//! The VAE lab's page state: the settings of the next run (with the hidden-units field as typed and the checks that
//! refuse what cannot train), which view is on show and its choices (the latent dimensions on show, the manifold's
//! cells, the picked inputs, the epoch of the reconstructions), and what the view thread has computed for the run
//! on show (polled here), with the textures made from it.

use std::collections::HashMap;
use std::sync::Arc;

use egui::{ColorImage, TextureHandle, TextureOptions};

use crate::data::prepare::{OutputKind, Prepared};
use crate::models::vae::{
    Likelihood, VaeArch, VaeConfig, VaeParams, VaeView, inputs_refusal, squared_error_for_a_table, vae_inputs,
};
use crate::train::export::{input_labels, latents_table};
use crate::train::vae_view::{
    HoverImage, Latents, Manifold, PRIOR_SAMPLES, TABLE_PRIOR_SAMPLES, VaeViewRequest, VaeViewResult, VaeViewWorker,
};
use crate::train::{ModelView, RunSnapshot};
use crate::ui::export::{ExportKind, ExportRequest};
use crate::ui::highlight::Highlight;
use crate::ui::history::EpochScrubber;
use crate::ui::lab_data::feature_decimals;
use crate::ui::lab_page::start_view_thread;
use crate::ui::settings_check::{self, Verdict};

/// Which view the page shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VaePage {
    /// Scatter, decoded point and manifold.
    Latent,
    /// The fixed test inputs and their reconstructions by epoch.
    Reconstructions,
    /// Decoded draws from N(0, I).
    Prior,
    /// Loss terms and KL per dimension.
    Loss,
}

impl VaePage {
    /// The page that draws the figure `key` (its "Save image…" key).
    pub(crate) fn of_figure(key: &str) -> Option<Self> {
        match key {
            "vae-latent" | "vae-manifold" | "vae-path" => Some(Self::Latent),
            "vae-reconstructions" => Some(Self::Reconstructions),
            "vae-prior" => Some(Self::Prior),
            "vae-loss" => Some(Self::Loss),
            _ => None,
        }
    }

    pub(crate) const ALL: [Self; 4] = [Self::Latent, Self::Reconstructions, Self::Prior, Self::Loss];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Latent => "Latent space",
            Self::Reconstructions => "Reconstructions",
            Self::Prior => "Samples from the prior",
            Self::Loss => "Loss curves",
        }
    }
}

/// Points drawn in the scatter at most.
pub(crate) const MAX_SCATTER: usize = 6000;
/// The VAE page's state.
pub struct VaeUiState {
    /// Settings of the next run.
    pub config: VaeConfig,
    /// The hidden layers as typed.
    pub hidden_text: String,
    /// The view on show.
    pub page: VaePage,
    /// Show the data table instead.
    pub show_data: bool,
    /// The two latent dimensions on show.
    pub dims: (usize, usize),
    /// Cells per side of the decoded manifold, as typed.
    pub cells: usize,
    /// Cells per side of the manifold on show: the last accepted count.
    pub(crate) cells_shown: usize,
    /// Set by an "Export data…" button; the app starts the export once the page is drawn, and clears it.
    pub(crate) export: Option<ExportRequest>,
    /// The latent window of the scatter and the manifold.
    pub(crate) bounds: [f32; 4],
    /// The app fits the latent plane to the bulk of the inputs ([`crate::ui::vae_latent::bulk_view`]) until the
    /// user drags, zooms or double-clicks it (which shows every input); a new run fits it again.
    pub(crate) fit_latents: bool,
    pub(crate) hover: Option<[f32; 2]>,
    /// The input whose q(z|x) ellipse is drawn: the one nearest the cursor while it is over the latent plane.
    pub(crate) input_under_cursor: Option<usize>,
    /// Inputs picked for the interpolation (indices, training rows first), at most two.
    pub(crate) picked: Vec<usize>,
    pub(crate) path_images: Option<Arc<Vec<f32>>>,
    /// The pair of inputs just picked, whose decoded path (under the plane, often below the window's foot) is
    /// scrolled into view when it first shows; `None` once it has been.
    pub(crate) reveal_path: Option<[usize; 2]>,
    pub(crate) prepared: Option<Arc<Prepared>>,
    pub(crate) inputs: Arc<Vec<f32>>,
    pub(crate) n_train: usize,
    /// Each input's group in the latent scatter's colours ([`input_groups`]), training inputs first; empty
    /// when the data has no label nor a target of a few values.
    pub(crate) labels: Vec<u32>,
    /// Each group's name in the legend.
    pub(crate) label_names: Vec<String>,
    /// For a target's values, each group's place on the data view's ramp; `None`: classes, a colour each.
    pub(crate) label_ramp: Option<Vec<f32>>,
    /// For a table, the decimals each feature is written with ([`feature_decimals`]); empty for images.
    pub(crate) decimals: Vec<usize>,
    pub(crate) image_side: Option<usize>,
    pub(crate) run: u64,
    pub(crate) worker: Option<VaeViewWorker>,
    pub(crate) view: Option<Arc<VaeView>>,
    pub(crate) view_step: u64,
    pub(crate) latents: Option<Arc<Latents>>,
    pub(crate) manifold: Option<Arc<Manifold>>,
    pub(crate) manifold_texture: Option<(u64, [u32; 4], usize, TextureHandle)>,
    /// The image decoded at the point last hovered.
    pub(crate) hover_image: Option<HoverImage>,
    pub(crate) hover_texture: Option<TextureHandle>,
    /// Image grids uploaded once per content: name -> (what they show, texture).
    pub(crate) textures: HashMap<&'static str, (u64, TextureHandle)>,
    /// Counts arrivals of path images, so their texture is made once per arrival.
    pub(crate) path_generation: u64,
    pub(crate) prior: Option<(u64, Arc<Vec<f32>>)>,
    pub(crate) device: String,
    pub(crate) last_request: Option<RequestKey>,
    pub(crate) last_seen_step: Option<u64>,
    pub(crate) view_taken: Option<std::time::Instant>,
    pub(crate) error: Option<String>,
    /// The part of the figures that the Explain panel's hovered term belongs to, this frame (`highlight.rs`).
    pub(crate) highlight: Highlight,
    /// The run's models so far and the epoch scrubber over them: a scrubbed model is on show in every view.
    pub scrubber: EpochScrubber<VaeParams>,
    /// "Record animation…" of the latent plane over the training.
    pub recorder: crate::ui::record::FigureRecorder,
    /// While a recording takes its frames (or a replay shows the run's models): the plane's window when it started,
    /// which every frame keeps, so that the animation shows the points moving rather than the axes.
    pub(crate) recording_bounds: Option<[f32; 4]>,
    /// While a recording takes its frames (or a replay shows the run's models): the legend's corner when it started.
    pub(crate) recording_legend: Option<egui_plot::Corner>,
    /// The two features the prior's draws are drawn on, for a table (indices into its features).
    pub(crate) feature_axes: (usize, usize),
    /// The lab's data as the VAE would take it: its feature count and whether the features form images
    /// ([`crate::data::prepare::features_form_images`]); `None` before data arrives.
    pub(crate) data_inputs: Option<(usize, bool)>,
    /// The likelihood was switched to the squared error by a table's arrival, not chosen: images bring the
    /// Bernoulli back.
    pub(crate) likelihood_by_data: bool,
}

/// What was last asked of the view thread: run, step, window bits, cells, dimensions, cursor bits, path bits.
type RequestKey = (u64, u64, [u32; 4], usize, (usize, usize), Option<[u32; 2]>, Vec<u32>, bool);

/// How often a training model's views are recomputed.
const VIEW_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

impl Default for VaeUiState {
    fn default() -> Self {
        let config = VaeConfig::default();
        Self {
            hidden_text: settings_check::hidden_text(&config.hidden),
            config,
            page: VaePage::Latent,
            show_data: false,
            dims: (0, 1),
            cells: 20,
            cells_shown: 20,
            export: None,
            bounds: [-4.0, 4.0, -4.0, 4.0],
            fit_latents: true,
            hover: None,
            input_under_cursor: None,
            feature_axes: (0, 1),
            picked: Vec::new(),
            path_images: None,
            reveal_path: None,
            prepared: None,
            inputs: Arc::new(Vec::new()),
            n_train: 0,
            labels: Vec::new(),
            label_names: Vec::new(),
            decimals: Vec::new(),
            label_ramp: None,
            image_side: None,
            data_inputs: None,
            likelihood_by_data: false,
            run: 0,
            worker: None,
            view: None,
            view_step: 0,
            latents: None,
            manifold: None,
            manifold_texture: None,
            hover_image: None,
            hover_texture: None,
            textures: HashMap::new(),
            path_generation: 0,
            prior: None,
            device: String::new(),
            last_request: None,
            last_seen_step: None,
            view_taken: None,
            error: None,
            highlight: Highlight::None,
            scrubber: EpochScrubber::default(),
            recorder: crate::ui::record::FigureRecorder::default(),
            recording_bounds: None,
            recording_legend: None,
        }
    }
}

impl VaeUiState {
    /// Puts `config` in the settings panel (an opened run's, or the last session's): its likelihood was chosen,
    /// except a Bernoulli on the lab's table, which cannot train there and gives way to the squared error as when
    /// the table arrived (the note under the field says so).
    pub(crate) fn restore_config(&mut self, config: VaeConfig) {
        self.hidden_text = settings_check::hidden_text(&config.hidden);
        self.likelihood_by_data = false;
        self.config = config;
        if let Some((n_features, images)) = self.data_inputs {
            self.set_data_inputs(n_features, images);
        }
    }

    /// Forgets the previous run's views; `prepared` is the new run's data.
    pub(crate) fn new_run(&mut self, prepared: Arc<Prepared>) {
        let (train, test, side) = vae_inputs(&prepared, self.config.likelihood);
        self.n_train = prepared.n_train();
        let mut inputs = train;
        inputs.extend(test);
        self.inputs = Arc::new(inputs);
        (self.labels, self.label_names, self.label_ramp) = input_groups(&prepared);
        self.image_side = side;
        self.decimals = if side.is_none() { feature_decimals(&prepared) } else { Vec::new() };
        self.prepared = Some(prepared);
        self.run += 1;
        self.view = None;
        self.latents = None;
        self.manifold = None;
        self.manifold_texture = None;
        self.hover_image = None;
        self.fit_latents = true;
        self.prior = None;
        self.textures.clear();
        self.last_request = None;
        self.picked.clear();
        self.path_images = None;
        self.reveal_path = None;
        self.view_step = 0;
        self.last_seen_step = None;
        self.view_taken = None;
        self.error = None;
        self.scrubber.clear();
        self.recorder.cancel();
        self.dims = (0, 1.min(self.config.latent.saturating_sub(1)));
    }

    /// Keeps the model the trainer sent from the end of `epoch`, the lowest of the test negative ELBO so far, in the
    /// scrubber's history (pinned where its step falls, in place of the one before), so that the overfitting note's
    /// "Show epoch" shows that very model.
    pub(crate) fn keep_lowest(&mut self, epoch: usize, view: ModelView) {
        if let ModelView::Vae { step, view } = view {
            self.scrubber.history.pin(step, epoch as f64, Arc::clone(&view.params));
        }
    }

    /// The texture `name`, made by `make` only when `key` (what it shows) changed since the last call.
    pub(crate) fn texture(
        &mut self,
        ctx: &egui::Context,
        name: &'static str,
        key: u64,
        make: impl FnOnce() -> ColorImage,
    ) -> TextureHandle {
        if let Some((k, t)) = self.textures.get(name)
            && *k == key
        {
            return t.clone();
        }
        let texture = ctx.load_texture(name, make(), TextureOptions::NEAREST);
        self.textures.insert(name, (key, texture.clone()));
        texture
    }

    /// The image decoded under the cursor, if any (for tests).
    #[must_use]
    pub fn hover_image(&self) -> Option<&[f32]> {
        self.hover_image.as_ref().map(|h| h.image.as_slice())
    }

    /// The input (training rows first) whose q(z|x) the latent plane draws as an ellipse: the one nearest the
    /// cursor, while the cursor is over the plane (for tests).
    #[must_use]
    pub fn input_under_cursor(&self) -> Option<usize> {
        self.input_under_cursor
    }

    /// The encoder's mean and log-variance of `input` (training rows first), once the latents have arrived (for
    /// tests and the Explain panel).
    #[must_use]
    pub fn latent_moments(&self, input: usize) -> Option<(&[f32], &[f32])> {
        let (latents, d) = (self.latents.as_ref()?, self.view.as_ref()?.params.latent);
        latents.mu.get(input * d..(input + 1) * d).zip(latents.logvar.get(input * d..(input + 1) * d))
    }

    /// Input `i` (training rows first) as the figures name it: "training input 12 (label 7)", "test input 3".
    pub(crate) fn input_name(&self, i: usize) -> String {
        let split = if i < self.n_train {
            format!("training input {}", i + 1)
        } else {
            format!("test input {}", i - self.n_train + 1)
        };
        match self.labels.get(i).and_then(|&k| self.label_names.get(k as usize)) {
            Some(name) => format!("{split} (label {name})"),
            None => split,
        }
    }

    /// The draws from the prior decoded by the model on show, `[draws, n_in]`, once the view thread has them.
    #[must_use]
    pub fn prior_draws(&self) -> Option<&[f32]> {
        self.prior.as_ref().map(|(_, draws)| draws.as_slice())
    }

    /// The two features a table's prior draws are drawn on (indices into its features).
    #[must_use]
    pub fn feature_axes(&self) -> (usize, usize) {
        self.feature_axes
    }

    /// The decimals a table's features are written with, one per feature; empty for images.
    #[must_use]
    pub fn feature_decimals(&self) -> &[usize] {
        &self.decimals
    }

    /// Scrolls the decoded path (`rect`: it and its buttons) into view the first frame it shows after the second
    /// input was picked ([`Self::reveal_path`]): a click on the plane shows what it made rather than leave it below
    /// the window's foot. Later frames (each new step decodes the path again) leave the page where the user put it.
    pub(crate) fn reveal_path_in(&mut self, ui: &egui::Ui, rect: egui::Rect) {
        if self.reveal_path.is_some_and(|pair| pair == self.picked.as_slice()) {
            self.reveal_path = None;
            ui.scroll_to_rect(rect, None);
        }
    }

    /// The latent plane's window on show, `[x0, x1, y0, y1]` (for tests).
    #[must_use]
    pub fn plane_window(&self) -> [f32; 4] {
        self.bounds
    }

    /// The inputs picked for the path, at most two (for tests).
    #[must_use]
    pub fn picked(&self) -> &[usize] {
        &self.picked
    }

    /// True once the path between two picked inputs has been decoded (for tests).
    #[must_use]
    pub fn has_path(&self) -> bool {
        self.path_images.is_some()
    }

    /// What "Export data…" writes for `kind` (the latent coordinates), from what the page shows now; `None` when
    /// it has no such data yet.
    pub(crate) fn export_request(&self, kind: ExportKind) -> Option<ExportRequest> {
        if kind != ExportKind::Latents {
            return None;
        }
        let latents = Arc::clone(self.latents.as_ref()?);
        let latent = self.view.as_ref()?.params.latent;
        let labels = self.prepared.as_deref().map(input_labels).unwrap_or_default();
        let n_train = self.n_train;
        Some(ExportRequest::new("vae-latents.csv", move || {
            latents_table(&latents.mu, &latents.logvar, latent, n_train, &labels)
        }))
    }

    /// The part of the page's figures that the Explain panel's hovered term belongs to, this frame.
    #[must_use]
    pub fn highlight(&self) -> &Highlight {
        &self.highlight
    }

    /// Whether the page's figures show the model of `step` in full: the latents of every input and the manifold
    /// (latent page), the prior samples (their page); the reconstructions and the loss curves need no view thread.
    pub(crate) fn views_show(&self, step: u64) -> bool {
        let n_in = self.view.as_ref().map_or(1, |v| v.params.n_in()).max(1);
        let latent = self.view.as_ref().map_or(1, |v| v.params.latent).max(1);
        let latents =
            self.latents.as_ref().is_some_and(|l| l.step == step && l.mu.len() / latent * n_in == self.inputs.len());
        match self.page {
            VaePage::Latent => {
                latents && (self.image_side.is_none() || self.manifold.as_ref().is_some_and(|m| m.step == step))
            }
            VaePage::Prior => self.prior.as_ref().is_some_and(|(s, _)| *s == step),
            VaePage::Reconstructions | VaePage::Loss => true,
        }
    }

    /// The encoder's output for the inputs on show, once the view thread has sent it (for tests).
    #[must_use]
    pub fn latents(&self) -> Option<&Latents> {
        self.latents.as_deref()
    }

    /// The inputs the views encode (training rows first) and the data of the run on show (for tests).
    #[must_use]
    pub fn inputs(&self) -> (&Arc<Vec<f32>>, Option<&Arc<Prepared>>) {
        (&self.inputs, self.prepared.as_ref())
    }

    /// True once the encoder's means of the data have arrived (for tests).
    #[must_use]
    pub fn has_latents(&self) -> bool {
        self.latents.is_some()
    }

    /// True once the encoder's means of every input have arrived for the model on show, the last one the run sent
    /// (for tests that read them: a run's earlier models, or its light pass, may arrive first).
    #[must_use]
    pub fn has_final_latents(&self) -> bool {
        let (Some(latents), Some(view)) = (&self.latents, &self.view) else { return false };
        let (n_in, d) = (view.params.n_in().max(1), view.params.latent);
        self.last_seen_step == Some(self.view_step)
            && latents.step == self.view_step
            && latents.mu.len() == self.inputs.len() / n_in * d
    }

    /// Takes what the view thread sent and asks it for the views of the model on show; `running`: a run trains,
    /// so the views take their light pass (see [`VaeViewRequest::live`]).
    pub(crate) fn poll(&mut self, snapshot: Option<&RunSnapshot>, running: bool, ctx: &egui::Context) {
        // Encoding every input costs about a second of CPU for MNIST: while training, take a new model at most
        // every VIEW_INTERVAL; a model that stopped changing (paused, finished) is taken at once.
        if let Some(ModelView::Vae { step, view }) = snapshot.and_then(|s| s.model.clone()) {
            let steps_per_epoch = snapshot.map_or(1, |s| s.steps_per_epoch.max(1));
            self.scrubber.history.push(step, step as f64 / steps_per_epoch as f64, Arc::clone(&view.params));
            let settled = self.last_seen_step == Some(step);
            self.last_seen_step = Some(step);
            let due = self.view_taken.is_none_or(|t| t.elapsed() >= VIEW_INTERVAL);
            if step != self.view_step && (due || settled) || self.view.is_none() {
                self.view = Some(view);
                self.view_step = step;
                self.view_taken = Some(std::time::Instant::now());
            }
        }
        let Some(latest) = &self.view else { return };
        // A scrubbed epoch's model is fixed: its views are the full pass even while the run trains on.
        let (params, step, live) = match self.scrubber.scrubbed() {
            Some(entry) => (Arc::clone(&entry.params), entry.step, false),
            None => (Arc::clone(&latest.params), self.view_step, running),
        };
        start_view_thread(&mut self.worker, &mut self.error, ctx, crate::train::vae_view::spawn);
        let Some(worker) = &self.worker else { return };
        for result in worker.drain() {
            match result {
                VaeViewResult::Latents(l) if l.run == self.run => self.latents = Some(l),
                VaeViewResult::Latents(_) => {}
                VaeViewResult::Manifold(m) => self.manifold = Some(m),
                VaeViewResult::Hover(hover) => {
                    self.hover_image = Some(hover);
                    self.hover_texture = None;
                }
                VaeViewResult::Prior(step, images) => self.prior = Some((step, images)),
                VaeViewResult::Path(images) => {
                    self.path_images = Some(images);
                    self.path_generation += 1;
                }
                VaeViewResult::Device(d) => self.device = d,
                VaeViewResult::Error(e) => self.error = Some(e),
            }
        }
        // The path between the picked inputs' latent means.
        let path = match (self.picked.as_slice(), &self.latents) {
            ([a, b], Some(l)) => {
                let d = params.latent;
                let row = |i: usize| l.mu.get(i * d..(i + 1) * d).map(<[f32]>::to_vec);
                row(*a).zip(row(*b))
            }
            _ => None,
        };
        let hover = self.hover.map(|z| z.map(f32::to_bits));
        let path_bits: Vec<u32> = path.iter().flat_map(|(a, b)| a.iter().chain(b)).map(|v| v.to_bits()).collect();
        let key = (self.run, step, self.bounds.map(f32::to_bits), self.cells_shown, self.dims, hover, path_bits, live);
        if self.last_request.as_ref() != Some(&key) {
            worker.request(VaeViewRequest {
                params,
                step,
                run: self.run,
                inputs: Arc::clone(&self.inputs),
                grid: (self.bounds, if self.image_side.is_some() { self.cells_shown } else { 0 }),
                dims: self.dims,
                hover: self.hover,
                path,
                live,
                prior_samples: if self.image_side.is_some() { PRIOR_SAMPLES } else { TABLE_PRIOR_SAMPLES },
            });
            self.last_request = Some(key);
        }
    }
}

/// "Decoded at z = (0.12, -1.40):", naming the dimensions `hover` was decoded on (which the axes may have left
/// since) for a `latent`-dimensional model: z1 alone for one dimension, the two on show for a larger one.
pub(crate) fn decoded_at(hover: &HoverImage, latent: usize) -> String {
    let HoverImage { z: [z0, z1], dims: (a, b), .. } = hover;
    match latent {
        1 => format!("Decoded at z1 = {z0:.2}:"),
        2 => format!("Decoded at z = ({z0:.2}, {z1:.2}):"),
        // One dimension on both axes: the point's x gives it (the diagonal the inputs lie on).
        _ if a == b => format!("Decoded at z{} = {z0:.2}:", a + 1),
        // The two dimensions on show; the others are 0.
        _ => format!("Decoded at z{} = {z0:.2}, z{} = {z1:.2}:", a + 1, b + 1),
    }
}

/// Why `config` cannot train on the lab's data (`data_inputs`: its feature count and whether they form images), as
/// a sentence for the settings panel ([`inputs_refusal`]), or `None` (also before data arrives).
pub(crate) fn data_refusal(config: &VaeConfig, data_inputs: Option<(usize, bool)>) -> Option<String> {
    let (n_features, images) = data_inputs?;
    let why = inputs_refusal(config.arch, config.likelihood, n_features, images)?;
    let mut chars = why.chars();
    Some(chars.next().map(|c| c.to_uppercase().chain(chars).collect::<String>()).unwrap_or_default() + ".")
}

/// Most values a regression target may take for the latent scatter to colour its inputs by value (one colour each).
pub(crate) const MAX_TARGET_GROUPS: usize = 10;

/// Each input's group in the latent scatter's colours (training inputs, then test inputs), each group's legend
/// name, and for a target's values where each group sits from its lowest to its highest (in [0, 1], for the data
/// view's blue-to-orange ramp): a label's classes ("0" to "9" for the digits; no ramp, a colour each), or a
/// regression target's values when it takes at most [`MAX_TARGET_GROUPS`] of them (the wine's "quality 3" to
/// "quality 8"); empty for other data.
pub(crate) fn input_groups(prepared: &Prepared) -> (Vec<u32>, Vec<String>, Option<Vec<f32>>) {
    let y = || prepared.y_train.iter().chain(&prepared.y_test);
    match &prepared.output {
        Some((_, kind @ OutputKind::Classes { .. })) => (y().map(|&c| c as u32).collect(), kind.class_names(), None),
        Some((name, OutputKind::Regression)) => {
            let mut values: Vec<f32> = y().copied().filter(|v| v.is_finite()).collect();
            values.sort_by(f32::total_cmp);
            values.dedup();
            let (Some(&low), Some(&high)) = (values.first(), values.last()) else {
                return (Vec::new(), Vec::new(), None);
            };
            if values.len() > MAX_TARGET_GROUPS {
                return (Vec::new(), Vec::new(), None);
            }
            let group = |v: &f32| values.binary_search_by(|p| p.total_cmp(v)).unwrap_or(0) as u32;
            let ramp = values.iter().map(|v| if high > low { (v - low) / (high - low) } else { 0.5 }).collect();
            (y().map(group).collect(), values.iter().map(|v| format!("{name} {v}")).collect(), Some(ramp))
        }
        None => (Vec::new(), Vec::new(), None),
    }
}

/// What an empty hidden-units field means in the MLP VAE.
pub(crate) const NO_HIDDEN: &str = "Empty: no hidden layer, the encoder and the decoder are each one linear map.";

impl VaeUiState {
    /// Data with `n_features` features, forming images or not (`images`), arrived. On a table the MLP VAE's
    /// Bernoulli likelihood, which is for pixels ([`inputs_refusal`]), becomes the squared error; images bring the
    /// Bernoulli back where a table had put it aside. Returns what was done, for the lab's message line.
    pub(crate) fn set_data_inputs(&mut self, n_features: usize, images: bool) -> Option<String> {
        self.data_inputs = Some((n_features, images));
        let c = &mut self.config;
        if squared_error_for_a_table(c, images) {
            self.likelihood_by_data = true;
            return Some(format!(
                "Likelihood set to 1000 x squared error: these {n_features} features are a table, not images, and \
                 the Bernoulli likelihood is for pixels."
            ));
        }
        if images && self.likelihood_by_data && c.arch == VaeArch::Mlp && c.likelihood == Likelihood::Gaussian {
            c.likelihood = Likelihood::Bernoulli;
            self.likelihood_by_data = false;
            return Some("Likelihood set back to Bernoulli (binarised pixels) for these images.".to_owned());
        }
        None
    }

    /// Why the next run cannot train with these settings (the first setting refused), or `None`.
    #[must_use]
    pub fn settings_refusal(&self) -> Option<String> {
        let c = &self.config;
        let hidden =
            if c.arch == VaeArch::Mlp { settings_check::hidden(&self.hidden_text, NO_HIDDEN) } else { Verdict::Fine };
        let inputs = data_refusal(c, self.data_inputs).map_or(Verdict::Fine, Verdict::Refused);
        settings_check::first_refusal(&[
            inputs,
            hidden,
            settings_check::LATENT.check(c.latent as f64),
            settings_check::BETA.check(c.beta),
            settings_check::learning_rate(c.learning_rate),
            settings_check::batch_size(c.batch_size, None),
            settings_check::EPOCHS.check(c.epochs as f64),
        ])
    }

    /// The hidden layers from the field when it parses; when the field was not edited and the settings changed
    /// elsewhere, the field follows them (see the BNN's).
    pub(crate) fn sync_hidden(&mut self, edited: bool) {
        settings_check::sync_hidden(&mut self.hidden_text, &mut self.config.hidden, edited);
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_TARGET_GROUPS, input_groups};
    use crate::Lab;
    use crate::data::BuiltinFile;
    use crate::data::prepare::{default_spec_for_lab, prepare};

    /// The latent scatter's colours: the digits by class, the wine by each of its six qualities, named by the
    /// target; a target of many values (the wine's alcohol) gets none.
    #[test]
    fn inputs_are_grouped_by_class_or_by_a_target_of_few_values() {
        let groups = |file: BuiltinFile, target: Option<&str>| {
            let table = file.load().expect("loads");
            let mut spec = default_spec_for_lab(Lab::Vae, &table);
            if let Some(name) = target {
                let j = table.column_index(name).expect("a column");
                spec.set_output(j, crate::data::Role::Target);
            }
            let data = prepare(&table, &spec).expect("prepares");
            let (labels, names, ramp) = input_groups(&data);
            let y: Vec<f32> = data.y_train.iter().chain(&data.y_test).copied().collect();
            (labels, names, y, ramp)
        };
        let (labels, names, y, ramp) = groups(BuiltinFile::Digits8x8, None);
        assert_eq!(names, (0..10).map(|d| d.to_string()).collect::<Vec<_>>());
        assert_eq!(ramp, None, "a colour each");
        assert!(labels.iter().zip(&y).all(|(&l, &c)| l == c as u32), "each digit its class");
        let (labels, names, y, ramp) = groups(BuiltinFile::WineRed, None);
        assert_eq!(names, (3..=8).map(|q| format!("quality {q}")).collect::<Vec<_>>());
        assert_eq!(ramp, Some(vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]), "lowest to highest quality");
        assert_eq!(labels.len(), y.len());
        assert!(labels.iter().zip(&y).all(|(&l, &q)| names[l as usize] == format!("quality {q}")), "each its quality");
        let (labels, names, y, ramp) = groups(BuiltinFile::WineRed, Some("alcohol"));
        let mut values = y.clone();
        values.sort_by(f32::total_cmp);
        values.dedup();
        assert!(values.len() > MAX_TARGET_GROUPS, "{} values", values.len());
        assert!(labels.is_empty() && names.is_empty() && ramp.is_none(), "too many values to colour");
    }
}
