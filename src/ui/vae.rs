//! The VAE lab's page: the network's settings, and the views of its latent space — the encoder's means of every
//! input coloured by label (with q(z | x) as an ellipse at the cursor), the image decoded under the cursor, the
//! decoded manifold over the same window, reconstructions after every epoch, samples from the prior, and the
//! loss terms with the KL of each latent dimension.

use std::collections::HashMap;
use std::sync::Arc;

use egui::{Color32, ColorImage, TextureHandle, TextureOptions};
use egui_plot::{Line, MarkerShape, PlotBounds, PlotImage, PlotPoint, PlotPoints, Points};

use crate::data::prepare::{OutputKind, Prepared};
use crate::models::vae::{BetaSchedule, Likelihood, VaeArch, VaeConfig, VaeView, vae_inputs};
use crate::train::export::{class_values, latents_table};
use crate::train::vae_view::{Latents, Manifold, PRIOR_SAMPLES, VaeViewRequest, VaeViewResult, VaeViewWorker};
use crate::train::{ModelView, RunSnapshot};
use crate::ui::export::{ExportKind, ExportRequest, export_button};
use crate::ui::image_export::{capture_if_asked, save_image_button, saveable};
use crate::ui::lab_page::{epoch_curves, epoch_series, loss_page, start_view_thread, view_tabs, waiting};
use crate::ui::plot_axes;
use crate::ui::settings_check::{
    self, HIDDEN_ACCEPTS, Verdict, choice_row, epochs_row, hidden_row, number_row, seed_row,
};

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
    const ALL: [Self; 4] = [Self::Latent, Self::Reconstructions, Self::Prior, Self::Loss];

    fn label(self) -> &'static str {
        match self {
            Self::Latent => "Latent space",
            Self::Reconstructions => "Reconstructions",
            Self::Prior => "Samples from the prior",
            Self::Loss => "Loss curves",
        }
    }
}

/// Points drawn in the scatter at most.
const MAX_SCATTER: usize = 6000;
/// A latent dimension whose KL is below this (nats per input) has collapsed to the prior.
pub const COLLAPSE_NATS: f64 = 0.05;

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
    cells_shown: usize,
    /// Index into the reconstruction history; `None` follows the training.
    pub recon_index: Option<usize>,
    /// Set by an "Export data…" button; the lab starts the export and clears it.
    pub(crate) export: Option<ExportRequest>,
    /// The latent window of the scatter and the manifold.
    bounds: [f32; 4],
    hover: Option<[f32; 2]>,
    /// The input whose q(z|x) ellipse is drawn: the one nearest the cursor while it is over the latent plane.
    input_under_cursor: Option<usize>,
    /// Inputs picked for the interpolation (indices, training rows first), at most two.
    picked: Vec<usize>,
    path_images: Option<Arc<Vec<f32>>>,
    prepared: Option<Arc<Prepared>>,
    inputs: Arc<Vec<f32>>,
    n_train: usize,
    labels: Vec<u32>,
    image_side: Option<usize>,
    run: u64,
    worker: Option<VaeViewWorker>,
    view: Option<Arc<VaeView>>,
    view_step: u64,
    latents: Option<Arc<Latents>>,
    manifold: Option<Arc<Manifold>>,
    manifold_texture: Option<(u64, [u32; 4], usize, TextureHandle)>,
    hover_image: Option<([f32; 2], Arc<Vec<f32>>)>,
    hover_texture: Option<TextureHandle>,
    /// Image grids uploaded once per content: name -> (what they show, texture).
    textures: HashMap<&'static str, (u64, TextureHandle)>,
    /// Counts arrivals of path images, so their texture is made once per arrival.
    path_generation: u64,
    prior: Option<(u64, Arc<Vec<f32>>)>,
    device: String,
    last_request: Option<RequestKey>,
    last_seen_step: Option<u64>,
    view_taken: Option<std::time::Instant>,
    error: Option<String>,
}

/// What was last asked of the view thread: run, step, window bits, cells, dimensions, cursor bits, path bits.
type RequestKey = (u64, u64, [u32; 4], usize, (usize, usize), Option<[u32; 2]>, Vec<u32>);

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
            recon_index: None,
            export: None,
            bounds: [-4.0, 4.0, -4.0, 4.0],
            hover: None,
            input_under_cursor: None,
            picked: Vec::new(),
            path_images: None,
            prepared: None,
            inputs: Arc::new(Vec::new()),
            n_train: 0,
            labels: Vec::new(),
            image_side: None,
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
        }
    }
}

impl VaeUiState {
    /// Forgets the previous run's views; `prepared` is the new run's data.
    /// Puts `config` in the settings panel (an opened run's, or the last session's).
    pub(crate) fn restore_config(&mut self, config: VaeConfig) {
        self.hidden_text = settings_check::hidden_text(&config.hidden);
        self.config = config;
    }

    pub(crate) fn new_run(&mut self, prepared: Arc<Prepared>) {
        let (train, test, side) = vae_inputs(&prepared, self.config.likelihood);
        self.n_train = prepared.n_train();
        let mut inputs = train;
        inputs.extend(test);
        self.inputs = Arc::new(inputs);
        self.labels = match &prepared.output {
            Some((_, OutputKind::Classes { .. })) => {
                prepared.y_train.iter().chain(&prepared.y_test).map(|&c| c as u32).collect()
            }
            _ => Vec::new(),
        };
        self.image_side = side;
        self.prepared = Some(prepared);
        self.run += 1;
        self.view = None;
        self.latents = None;
        self.manifold = None;
        self.manifold_texture = None;
        self.hover_image = None;
        self.prior = None;
        self.textures.clear();
        self.last_request = None;
        self.recon_index = None;
        self.picked.clear();
        self.path_images = None;
        self.view_step = 0;
        self.last_seen_step = None;
        self.view_taken = None;
        self.error = None;
        self.dims = (0, 1.min(self.config.latent.saturating_sub(1)));
    }

    /// The texture `name`, made by `make` only when `key` (what it shows) changed since the last call.
    fn texture(
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
        self.hover_image.as_ref().map(|(_, v)| v.as_slice())
    }

    /// The input (training rows first) whose q(z|x) the latent plane draws as an ellipse: the one nearest the
    /// cursor, while the cursor is over the plane (for tests).
    #[must_use]
    pub fn input_under_cursor(&self) -> Option<usize> {
        self.input_under_cursor
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
        let classes = self.prepared.as_deref().map(class_values).unwrap_or_default();
        let labels: Vec<f32> =
            self.labels.iter().map(|&c| classes.get(c as usize).copied().unwrap_or(c as f32)).collect();
        let n_train = self.n_train;
        Some(ExportRequest::new("vae-latents.csv", move || {
            latents_table(&latents.mu, &latents.logvar, latent, n_train, &labels)
        }))
    }

    /// True once the encoder's means of the data have arrived (for tests).
    #[must_use]
    pub fn has_latents(&self) -> bool {
        self.latents.is_some()
    }

    fn poll(&mut self, snapshot: Option<&RunSnapshot>, ctx: &egui::Context) {
        // Encoding every input costs about a second of CPU for MNIST: while training, take a new model at most
        // every VIEW_INTERVAL; a model that stopped changing (paused, finished) is taken at once.
        if let Some(ModelView::Vae { step, view }) = snapshot.and_then(|s| s.model.clone()) {
            let settled = self.last_seen_step == Some(step);
            self.last_seen_step = Some(step);
            let due = self.view_taken.is_none_or(|t| t.elapsed() >= VIEW_INTERVAL);
            if step != self.view_step && (due || settled) || self.view.is_none() {
                self.view = Some(view);
                self.view_step = step;
                self.view_taken = Some(std::time::Instant::now());
            }
        }
        let Some(view) = &self.view else { return };
        start_view_thread(&mut self.worker, &mut self.error, ctx, crate::train::vae_view::spawn);
        let Some(worker) = &self.worker else { return };
        for result in worker.drain() {
            match result {
                VaeViewResult::Latents(l) if l.run == self.run => self.latents = Some(l),
                VaeViewResult::Latents(_) => {}
                VaeViewResult::Manifold(m) => self.manifold = Some(m),
                VaeViewResult::Hover(z, image) => {
                    self.hover_image = Some((z, image));
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
                let d = view.params.latent;
                let row = |i: usize| l.mu.get(i * d..(i + 1) * d).map(<[f32]>::to_vec);
                row(*a).zip(row(*b))
            }
            _ => None,
        };
        let hover = self.hover.map(|z| z.map(f32::to_bits));
        let path_bits: Vec<u32> = path.iter().flat_map(|(a, b)| a.iter().chain(b)).map(|v| v.to_bits()).collect();
        let key =
            (self.run, self.view_step, self.bounds.map(f32::to_bits), self.cells_shown, self.dims, hover, path_bits);
        if self.last_request.as_ref() != Some(&key) {
            worker.request(VaeViewRequest {
                params: Arc::clone(&view.params),
                step: self.view_step,
                run: self.run,
                inputs: Arc::clone(&self.inputs),
                grid: (self.bounds, if self.image_side.is_some() { self.cells_shown } else { 0 }),
                dims: self.dims,
                hover: self.hover,
                path,
            });
            self.last_request = Some(key);
        }
    }
}

/// What an empty hidden-units field means in the MLP VAE.
const NO_HIDDEN: &str = "Empty: no hidden layer, the encoder and the decoder are each one linear map.";

impl VaeUiState {
    /// Why the next run cannot train with these settings (the first setting refused), or `None`.
    #[must_use]
    pub fn settings_refusal(&self) -> Option<String> {
        let c = &self.config;
        let hidden =
            if c.arch == VaeArch::Mlp { settings_check::hidden(&self.hidden_text, NO_HIDDEN) } else { Verdict::Fine };
        settings_check::first_refusal(&[
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
    fn sync_hidden(&mut self, edited: bool) {
        settings_check::sync_hidden(&mut self.hidden_text, &mut self.config.hidden, edited);
    }
}

/// The KL weight's verdict: refused out of range, a note at 0.
fn beta_verdict(beta: f64) -> Verdict {
    match settings_check::BETA.check(beta) {
        Verdict::Fine if beta == 0.0 => {
            Verdict::Note("0: no KL term, so nothing pulls the codes towards the prior (a plain autoencoder).".into())
        }
        verdict => verdict,
    }
}

/// The VAE's settings in the side panel; `running`: the settings of the run on show, if any; `rows`: the training
/// rows of the lab's data, if known.
pub(crate) fn vae_settings_ui(
    vae: &mut VaeUiState,
    running: Option<&VaeConfig>,
    rows: Option<usize>,
    ui: &mut egui::Ui,
) {
    let on_show = running.is_some();
    let mut hidden_edited = false;
    let c = &mut vae.config;
    egui::Grid::new("vae-settings").num_columns(2).show(ui, |ui| {
        let mut arch = c.arch;
        choice_row(ui, "Architecture", "vae-arch", arch.label(), on_show, |ui| {
            for a in [VaeArch::Mlp, VaeArch::Conv] {
                ui.selectable_value(&mut arch, a, a.label());
            }
        });
        if arch != c.arch {
            // Each architecture comes with its settings (the conv VAE with the course's); latent size and seed stay.
            let preset = if arch == VaeArch::Conv { VaeConfig::course_conv() } else { VaeConfig::default() };
            *c = VaeConfig { latent: c.latent, seed: c.seed, hidden: c.hidden.clone(), ..preset };
        }
        if c.arch == VaeArch::Conv {
            let id = ui.label("Channels").id;
            ui.label("32, 64, 64, 64 (3 x 3)").labelled_by(id);
            ui.end_row();
        } else {
            let hover = format!("Units per hidden layer of the encoder (the decoder mirrors it): {HIDDEN_ACCEPTS}");
            let running_hidden = running.map(|r| r.hidden.as_slice());
            hidden_edited = hidden_row(ui, &mut vae.hidden_text, hover, running_hidden, |text| {
                settings_check::hidden(text, NO_HIDDEN)
            });
        }
        number_row(ui, "Latent dimension", &mut c.latent, 0.05, running.map(|r| r.latent), |v| {
            match settings_check::LATENT.check(v as f64) {
                Verdict::Fine if v == 1 => Verdict::Note(
                    "One dimension: the latent page shows z1 by class and a row of images decoded along it.".into(),
                ),
                verdict => verdict,
            }
        });
        let likelihood = match c.likelihood {
            Likelihood::Bernoulli => "Bernoulli (binarised pixels)",
            Likelihood::Gaussian => "1000 x squared error (course)",
        };
        choice_row(ui, "Likelihood", "vae-likelihood", likelihood, on_show, |ui| {
            ui.selectable_value(&mut c.likelihood, Likelihood::Bernoulli, "Bernoulli (binarised pixels)");
            ui.selectable_value(&mut c.likelihood, Likelihood::Gaussian, "1000 x squared error (course)");
        });
        number_row(ui, "KL weight (beta)", &mut c.beta, 0.01, running.map(|r| r.beta), beta_verdict);
        let label = match c.beta_schedule {
            BetaSchedule::Constant => "constant".to_owned(),
            BetaSchedule::LinearWarmup { epochs } => {
                format!("linear warm-up over {}", crate::ui::count::count(epochs, "epoch"))
            }
            BetaSchedule::Cyclical { period } => {
                format!("cyclical, every {}", crate::ui::count::count(period, "epoch"))
            }
        };
        choice_row(ui, "Beta schedule", "vae-beta-schedule", label, on_show, |ui| {
            ui.selectable_value(&mut c.beta_schedule, BetaSchedule::Constant, "constant");
            ui.selectable_value(
                &mut c.beta_schedule,
                BetaSchedule::LinearWarmup { epochs: 10 },
                "linear warm-up over 10 epochs",
            );
            ui.selectable_value(
                &mut c.beta_schedule,
                BetaSchedule::Cyclical { period: 10 },
                "cyclical, every 10 epochs",
            );
        });
        let run = running.map(|r| (r.learning_rate, r.batch_size));
        settings_check::adam_rows(ui, &mut c.learning_rate, &mut c.batch_size, run, rows);
        epochs_row(ui, &mut c.epochs, running.map(|r| r.epochs));
        seed_row(ui, &mut c.seed, running.map(|r| r.seed));
        number_row(ui, "Manifold cells per side", &mut vae.cells, 0.05, None, |v| {
            settings_check::CELLS.check(v as f64)
        })
        .on_hover_text("The decoded manifold's grid on the latent page; the run on show takes it at once");
        // A view setting: a count the page cannot draw stays in the field, refused, and the page keeps the last one.
        if settings_check::CELLS.check(vae.cells as f64).refusal().is_none() {
            vae.cells_shown = vae.cells;
        }
    });
    vae.sync_hidden(hidden_edited);
    let note = match vae.config.arch {
        VaeArch::Mlp => "Dense layers, the decoder mirroring the encoder. Choosing an architecture loads its settings.",
        VaeArch::Conv => {
            "The course's VAE: 3 x 3 convolutions (strides 1, 2, 2, 1) with batch normalisation and \
             LeakyReLU(0.3), transposed convolutions back; images only. Choosing it loaded the course's settings \
             (1000 x squared error, Adam 5e-4, batch 32, 30 epochs). About 14 times the MLP's work per image."
        }
    };
    ui.label(egui::RichText::new(note).weak());
}

/// The VAE page's central area.
pub(crate) fn vae_view_ui(vae: &mut VaeUiState, snapshot: Option<&RunSnapshot>, ui: &mut egui::Ui) {
    vae.poll(snapshot, ui.ctx());
    view_tabs(ui, vae.error.as_deref(), &mut vae.page, VaePage::ALL.map(|p| (p, p.label())));
    let Some(view) = vae.view.clone() else {
        waiting(ui, "Building the network…");
        return;
    };
    // Scrolls where the window is too short for the page (1024 x 700, a projector).
    egui::ScrollArea::vertical().id_salt("vae-page").auto_shrink([false, false]).show(ui, |ui| match vae.page {
        VaePage::Latent => latent_ui(vae, ui),
        VaePage::Reconstructions => reconstructions_ui(vae, &view, ui),
        VaePage::Prior => prior_ui(vae, ui),
        VaePage::Loss => loss_page(ui, crate::Lab::Vae, snapshot, &mut vae.export, "vae-loss", vae_loss_ui),
    });
}

const PALETTE: [Color32; 10] = [
    Color32::from_rgb(31, 119, 180),
    Color32::from_rgb(255, 127, 14),
    Color32::from_rgb(44, 160, 44),
    Color32::from_rgb(214, 39, 40),
    Color32::from_rgb(148, 103, 189),
    Color32::from_rgb(140, 86, 75),
    Color32::from_rgb(227, 119, 194),
    Color32::from_rgb(127, 127, 127),
    Color32::from_rgb(188, 189, 34),
    Color32::from_rgb(23, 190, 207),
];

fn latent_ui(vae: &mut VaeUiState, ui: &mut egui::Ui) {
    let latent = vae.view.as_ref().map_or(2, |v| v.params.latent);
    if latent > 2 {
        ui.horizontal(|ui| {
            let id = ui.label("Dimensions on show").id;
            ui.add(egui::DragValue::new(&mut vae.dims.0).range(0..=latent - 1).prefix("z")).labelled_by(id);
            ui.add(egui::DragValue::new(&mut vae.dims.1).range(0..=latent - 1).prefix("z"));
            ui.label("(the others are 0 when decoding)");
        });
    }
    let Some(latents) = vae.latents.clone() else {
        waiting(ui, "Encoding the data…");
        return;
    };
    let side = 0.5 * (ui.available_width() - 12.0);
    let height = side.min(ui.available_height() - 40.0).max(200.0);
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.set_width(side);
            // One line each above the two figures, so that they start level; the longer notes go under them.
            let title =
                if latent == 1 { "Encoder means of every input: z1 by class" } else { "Encoder means of every input" };
            ui.add(egui::Label::new(egui::RichText::new(title).strong()).truncate());
            scatter_ui(vae, &latents, height, ui);
            ui.horizontal(|ui| {
                if export_button(ui) {
                    vae.export = vae.export_request(ExportKind::Latents);
                }
                save_image_button(ui, "vae-latent");
                plot_axes::legend_toggle(ui, "vae-latent");
            });
        });
        ui.vertical(|ui| {
            ui.set_width(side);
            let device = if vae.device.is_empty() { String::new() } else { format!(" ({})", vae.device) };
            let cells = vae.cells_shown;
            let heading = if latent == 1 {
                format!("Decoded along z1, {cells} latent points{device}")
            } else {
                format!("Decoded manifold, {cells} x {cells} latent points{device}")
            };
            ui.add(egui::Label::new(egui::RichText::new(heading).strong()).truncate());
            manifold_ui(vae, height, ui);
        });
    });
}

/// Height of an input in the one-dimensional latent's strip: its class's row (0 without labels), spread over
/// ±0.35 by its index (a fixed low-discrepancy spread, so the points do not hide each other and stay put).
fn strip_height(labels: &[u32], i: usize) -> f64 {
    let row = labels.get(i).map_or(0.0, |&k| f64::from(k));
    row + ((i as f64 * 0.618_033_988_75).fract() - 0.5) * 0.7
}

fn scatter_ui(vae: &mut VaeUiState, latents: &Latents, height: f32, ui: &mut egui::Ui) {
    let d = vae.view.as_ref().map_or(2, |v| v.params.latent).max(1);
    // One latent dimension: z1 across, the classes as rows (a strip per class), rather than z1 against itself.
    let one_d = d == 1;
    let (a, b) = if one_d { (0, 0) } else { vae.dims };
    let n = latents.mu.len() / d;
    let stride = n.div_ceil(MAX_SCATTER).max(1);
    let labels = vae.labels.clone();
    let point = |i: usize| -> [f64; 2] {
        let row = &latents.mu[i * d..(i + 1) * d];
        let x = f64::from(row[a.min(d - 1)]);
        if one_d { [x, strip_height(&labels, i)] } else { [x, f64::from(row.get(b).copied().unwrap_or(0.0))] }
    };
    // One entry per digit (or class) on show.
    let mut occupied = plot_axes::Occupied::for_legend(&["0"; 10], egui::vec2(ui.available_width(), height));
    let all: Vec<[f64; 2]> = (0..n).step_by(stride).map(point).collect();
    occupied.points(&all);
    let plane = if one_d { plot_axes::plot("vae-latent-strip") } else { plot_axes::plane("vae-latent") };
    let plot = plot_axes::with_legend(plane, ui.ctx(), "vae-latent", &occupied);
    let response = saveable(
        ui,
        "vae-latent",
        || "vae-latent.png".to_owned(),
        |ui| {
            let y_label = if one_d {
                if labels.is_empty() { "(spread to show the density)".to_owned() } else { "class".to_owned() }
            } else {
                format!("z{}", b + 1)
            };
            plot.height(height).x_axis_label(format!("z{}", a + 1)).y_axis_label(y_label).show(ui, |plot| {
                if vae.labels.len() == n {
                    let mut groups: Vec<Vec<[f64; 2]>> = vec![Vec::new(); 10];
                    let mut other = Vec::new();
                    for i in (0..n).step_by(stride) {
                        match groups.get_mut(vae.labels[i] as usize) {
                            Some(g) => g.push(point(i)),
                            None => other.push(point(i)),
                        }
                    }
                    let classes = match vae.prepared.as_ref().and_then(|p| p.output.clone()) {
                        Some((_, OutputKind::Classes { classes })) => classes,
                        _ => Vec::new(),
                    };
                    for (k, g) in groups.into_iter().enumerate().filter(|(_, g)| !g.is_empty()) {
                        let name = classes.get(k).map_or(format!("{k}"), |v| format!("{v}"));
                        plot.points(
                            Points::new(name, PlotPoints::from(g))
                                .radius(1.5)
                                .color(PALETTE[k % 10])
                                .shape(MarkerShape::Circle),
                        );
                    }
                    if !other.is_empty() {
                        plot.points(
                            Points::new("other labels", PlotPoints::from(other)).radius(1.5).color(Color32::GRAY),
                        );
                    }
                } else {
                    let pts: Vec<[f64; 2]> = (0..n).step_by(stride).map(point).collect();
                    plot.points(Points::new("inputs", PlotPoints::from(pts)).radius(1.5).color(PALETTE[0]));
                }
                if !vae.picked.is_empty() {
                    let pts: Vec<[f64; 2]> = vae.picked.iter().filter(|&&i| i < n).map(|&i| point(i)).collect();
                    if let [a, b] = pts.as_slice() {
                        plot.line(
                            Line::new("interpolation path", PlotPoints::from(vec![*a, *b]))
                                .color(Color32::WHITE)
                                .allow_band(false),
                        );
                    }
                    plot.points(
                        Points::new("picked", PlotPoints::from(pts))
                            .radius(6.0)
                            .shape(MarkerShape::Diamond)
                            .color(Color32::WHITE),
                    );
                }
                // q(z|x) of the input nearest the cursor: an axis-aligned ellipse at ±2 sd. Only while the
                // cursor is over the plane: `pointer_coordinate` maps it wherever it is, and off the plot the
                // nearest input is some outlier at the plane's edge.
                let pointer = plot.pointer_coordinate().filter(|_| plot.response().hovered());
                let mut nearest_input = None;
                if let Some(p) = pointer {
                    let nearest = (0..n).min_by(|&i, &j| {
                        let (pi, pj) = (point(i), point(j));
                        let di = (pi[0] - p.x).powi(2) + (pi[1] - p.y).powi(2);
                        let dj = (pj[0] - p.x).powi(2) + (pj[1] - p.y).powi(2);
                        di.total_cmp(&dj)
                    });
                    nearest_input = nearest;
                    if let Some(i) = nearest {
                        let c = point(i);
                        let lv = &latents.logvar[i * d..(i + 1) * d];
                        let (sa, sb) = (
                            (0.5 * f64::from(lv[a.min(d - 1)])).exp(),
                            (0.5 * f64::from(lv.get(b).copied().unwrap_or(0.0))).exp(),
                        );
                        // One dimension: q(z1|x) as a bar along z1 at the input's height.
                        let ring: Vec<[f64; 2]> = if one_d {
                            vec![[c[0] - 2.0 * sa, c[1]], [c[0] + 2.0 * sa, c[1]]]
                        } else {
                            (0..=64)
                                .map(|k| {
                                    let t = f64::from(k) / 64.0 * std::f64::consts::TAU;
                                    [c[0] + 2.0 * sa * t.cos(), c[1] + 2.0 * sb * t.sin()]
                                })
                                .collect()
                        };
                        plot.line(Line::new("q(z|x), ±2 sd", PlotPoints::from(ring)).color(Color32::WHITE).width(1.5));
                    }
                }
                (pointer, plot.plot_bounds(), nearest_input)
            })
        },
    );
    let (pointer, bounds, nearest_input) = response.inner;
    vae.input_under_cursor = nearest_input;
    if response.response.clicked()
        && let Some(i) = nearest_input
    {
        if vae.picked.len() >= 2 {
            vae.picked.clear();
            vae.path_images = None;
        }
        vae.picked.push(i);
    }
    if response.response.hovered()
        && let Some(p) = pointer
    {
        // One dimension: only z1 is decoded, whatever the height in the strip.
        vae.hover = Some([p.x as f32, if one_d { 0.0 } else { p.y as f32 }]);
    }
    // The manifold follows the scatter's window (rounded, so tiny drifts do not ask for a new grid).
    let round = |v: f64| ((v * 100.0).round() / 100.0) as f32;
    let window = [round(bounds.min()[0]), round(bounds.max()[0]), round(bounds.min()[1]), round(bounds.max()[1])];
    if window.iter().all(|v| v.is_finite()) && window[1] > window[0] && window[3] > window[2] {
        vae.bounds = window;
    }
    match (&vae.hover_image, one_d) {
        (Some(([z0, _], _)), true) => {
            ui.label(format!("Decoded at z1 = {z0:.2}. Click two inputs to decode the path between them."));
        }
        (Some(([z0, z1], _)), false) => {
            ui.label(format!("Decoded at z = ({z0:.2}, {z1:.2}). Click two inputs to decode the path between them."));
        }
        (None, true) => {
            ui.label("Hover the strip to decode any z1; the bar is q(z1|x) ±2 sd of the input nearest the cursor.");
        }
        (None, false) => {
            ui.label(
                "Hover the plane to decode any point; the ellipse is q(z|x) ±2 sd of the input nearest the cursor.",
            );
        }
    }
    path_ui(vae, ui);
}

/// The decoded path between the two picked inputs' latent means.
fn path_ui(vae: &mut VaeUiState, ui: &mut egui::Ui) {
    let (Some(side), [a, b]) = (vae.image_side, vae.picked.as_slice()) else { return };
    let name = |i: usize| -> String {
        let split = if i < vae.n_train {
            format!("training input {}", i + 1)
        } else {
            format!("test input {}", i - vae.n_train + 1)
        };
        match vae.labels.get(i) {
            Some(l) => format!("{split} (label {l})"),
            None => split,
        }
    };
    ui.strong(format!("Interpolation from {} to {}", name(*a), name(*b)));
    let file_name = format!("vae-interpolation-{}-{}.png", a + 1, b + 1);
    if let Some(images) = vae.path_images.clone() {
        let t = vae.texture(ui.ctx(), "vae-path", vae.path_generation, || {
            tiles(&images, side, crate::train::vae_view::PATH_STEPS)
        });
        let w = ui.available_width().min(600.0);
        let shown = ui.image((t.id(), egui::vec2(w, w / crate::train::vae_view::PATH_STEPS as f32)));
        capture_if_asked(ui, "vae-path", shown.rect, || file_name);
        save_image_button(ui, "vae-path");
    } else {
        ui.spinner();
    }
}

/// Grey tiles of `images` (`[n, side * side]`, values 0..1), `cols` per row, 1-pixel gaps.
fn tiles(images: &[f32], side: usize, cols: usize) -> ColorImage {
    let n = images.len() / (side * side).max(1);
    let rows = n.div_ceil(cols.max(1));
    let (w, h) = (cols * (side + 1) + 1, rows * (side + 1) + 1);
    let mut pixels = vec![Color32::from_gray(40); w * h];
    for (k, image) in images.chunks_exact(side * side).enumerate() {
        let (r, c) = (k / cols, k % cols);
        for (p, &v) in image.iter().enumerate() {
            let (y, x) = (p / side, p % side);
            let g = (v.clamp(0.0, 1.0) * 255.0) as u8;
            pixels[(1 + r * (side + 1) + y) * w + 1 + c * (side + 1) + x] = Color32::from_gray(g);
        }
    }
    ColorImage::new([w, h], pixels)
}

fn manifold_ui(vae: &mut VaeUiState, height: f32, ui: &mut egui::Ui) {
    let Some(side) = vae.image_side else {
        ui.label("These inputs are not images: hover the latent plane to see the decoded feature vector.");
        if let Some((_, values)) = &vae.hover_image {
            let bars: Vec<egui_plot::Bar> =
                values.iter().enumerate().map(|(j, &v)| egui_plot::Bar::new(j as f64, f64::from(v))).collect();
            plot_axes::plot("vae-decoded-features").height(height * 0.6).show(ui, |plot| {
                plot.bar_chart(egui_plot::BarChart::new("decoded features (standardised)", bars));
            });
        }
        return;
    };
    if vae.view.as_ref().is_some_and(|v| v.params.latent == 1) {
        manifold_row_ui(vae, side, ui);
        return;
    }
    if let Some(m) = vae.manifold.clone() {
        let key = (m.step, m.bounds.map(f32::to_bits), m.cells);
        let stale = vae.manifold_texture.as_ref().is_none_or(|(s, b, c, _)| (*s, *b, *c) != key);
        if stale {
            let texture =
                ui.ctx().load_texture("vae-manifold", tiles(&m.images, side, m.cells), TextureOptions::LINEAR);
            vae.manifold_texture = Some((key.0, key.1, key.2, texture));
        }
    }
    if let Some((_, b, _, texture)) = &vae.manifold_texture {
        let b = b.map(f32::from_bits);
        let centre = PlotPoint::new(f64::from(b[0] + b[1]) / 2.0, f64::from(b[2] + b[3]) / 2.0);
        let size = egui::vec2(b[1] - b[0], b[3] - b[2]);
        saveable(
            ui,
            "vae-manifold",
            || "vae-manifold.png".to_owned(),
            |ui| {
                plot_axes::plane("vae-manifold")
                    .height(height)
                    .allow_drag(false)
                    .allow_zoom(false)
                    .allow_scroll(false)
                    .show(ui, |plot| {
                        plot.set_plot_bounds(PlotBounds::from_min_max(
                            [f64::from(b[0]), f64::from(b[2])],
                            [f64::from(b[1]), f64::from(b[3])],
                        ));
                        plot.image(PlotImage::new("manifold", texture.id(), centre, size));
                    })
            },
        );
        save_image_button(ui, "vae-manifold");
    } else {
        ui.spinner();
    }
    hover_image_ui(vae, side, ui);
}

/// The image decoded at the cursor, once the view thread has it.
fn hover_image_ui(vae: &mut VaeUiState, side: usize, ui: &mut egui::Ui) {
    if let Some((_, image)) = &vae.hover_image {
        let texture = vae
            .hover_texture
            .get_or_insert_with(|| ui.ctx().load_texture("vae-hover", tiles(image, side, 1), TextureOptions::NEAREST));
        ui.horizontal(|ui| {
            ui.label("Under the cursor:");
            ui.image((texture.id(), egui::vec2(84.0, 84.0)));
        });
    }
}

/// The one-dimensional latent's manifold: one row of images decoded along z1 over the strip's window, left to right,
/// and the image under the cursor.
fn manifold_row_ui(vae: &mut VaeUiState, side: usize, ui: &mut egui::Ui) {
    /// The least width of one decoded image, in points: a narrower column wraps the row rather than shrink them.
    const MIN_IMAGE_POINTS: f32 = 56.0;
    let width = ui.available_width();
    if let Some(m) = vae.manifold.clone() {
        let per_row = ((width / MIN_IMAGE_POINTS).floor() as usize).clamp(1, m.cells.max(1));
        let key = (m.step, m.bounds.map(f32::to_bits), m.cells);
        let texture_width = per_row * (side + 1) + 1;
        let stale = vae
            .manifold_texture
            .as_ref()
            .is_none_or(|(s, b, c, texture)| (*s, *b, *c) != key || texture.size()[0] != texture_width);
        // The grid's rows are alike (z1 is the only coordinate): its first row, left to right, wrapped to the width.
        if stale && let Some(row) = m.images.get(..m.cells * side * side) {
            let texture = ui.ctx().load_texture("vae-manifold", tiles(row, side, per_row), TextureOptions::LINEAR);
            vae.manifold_texture = Some((key.0, key.1, key.2, texture));
        }
    }
    if let Some((_, b, cells, texture)) = &vae.manifold_texture {
        let b = b.map(f32::from_bits);
        let [w, h] = texture.size();
        let size = egui::vec2(width, width * h as f32 / w.max(1) as f32);
        let wrapped = h > side + 2;
        let shown = ui.image((texture.id(), size));
        capture_if_asked(ui, "vae-manifold", shown.rect, || "vae-manifold.png".to_owned());
        let order = if wrapped { "read left to right and down" } else { "left to right" };
        ui.label(format!("{cells} points along z1 from {:.2} to {:.2} (the strip's window), {order}.", b[0], b[1]));
        save_image_button(ui, "vae-manifold");
    } else {
        ui.spinner();
    }
    hover_image_ui(vae, side, ui);
}

fn reconstructions_ui(vae: &mut VaeUiState, view: &VaeView, ui: &mut egui::Ui) {
    let Some(side) = vae.image_side else {
        ui.label("Reconstructions are drawn for images; these inputs are table rows.");
        return;
    };
    let history = &view.reconstructions;
    if history.is_empty() {
        return;
    }
    let last = history.len() - 1;
    let mut index = vae.recon_index.unwrap_or(last).min(last);
    ui.horizontal(|ui| {
        let id = ui.label("After epoch").id;
        let r = ui
            .add(
                egui::Slider::new(&mut index, 0..=last)
                    .custom_formatter(|i, _| history.get(i as usize).map_or(String::new(), |(e, _)| e.to_string())),
            )
            .labelled_by(id);
        if r.changed() {
            vae.recon_index = if index == last { None } else { Some(index) };
        }
    });
    let (epoch, recon) = &history[index];
    save_image_button(ui, "vae-reconstructions");
    let originals = vae.texture(ui.ctx(), "vae-originals", vae.run, || tiles(&view.originals, side, 4));
    let reconstructed = vae.texture(ui.ctx(), "vae-recon", *epoch as u64, || tiles(recon, side, 4));
    let side_points = fitted_side(ui.available_size(), 2, 200.0, 520.0);
    saveable(
        ui,
        "vae-reconstructions",
        || format!("vae-reconstructions-epoch-{epoch}.png"),
        |ui| {
            ui.columns(2, |cols| {
                cols[0].strong("16 test images");
                cols[0].image((originals.id(), egui::vec2(side_points, side_points)));
                cols[1].strong(format!("decoder(encoder mean) after epoch {epoch}"));
                cols[1].image((reconstructed.id(), egui::vec2(side_points, side_points)));
            });
        },
    );
}

/// Side of `across` square image grids side by side in `room`, each under a one-line title, between `min` and `max`
/// points (the page scrolls below `min`; past `max` a digit would only grow blocky).
fn fitted_side(room: egui::Vec2, across: usize, min: f32, max: f32) -> f32 {
    #[allow(clippy::cast_precision_loss)] // one or two grids
    let across = across.max(1) as f32;
    let gap = 16.0;
    let title = 24.0;
    ((room.x - gap * (across - 1.0)) / across).min(room.y - title).clamp(min, max)
}

fn prior_ui(vae: &mut VaeUiState, ui: &mut egui::Ui) {
    let Some(side) = vae.image_side else {
        ui.label("Prior samples are drawn for images; these inputs are table rows.");
        return;
    };
    let Some((step, images)) = vae.prior.clone() else {
        ui.spinner();
        return;
    };
    let cols = (PRIOR_SAMPLES as f64).sqrt() as usize;
    ui.label(format!(
        "{PRIOR_SAMPLES} draws z ~ N(0, I) decoded by the model at step {step} (the same draws for the whole run)."
    ));
    save_image_button(ui, "vae-prior");
    let t = vae.texture(ui.ctx(), "vae-prior", step, || tiles(&images, side, cols));
    let side_points = fitted_side(ui.available_size(), 1, 280.0, 640.0);
    let shown = ui.image((t.id(), egui::vec2(side_points, side_points)));
    capture_if_asked(ui, "vae-prior", shown.rect, || format!("vae-prior-samples-step-{step}.png"));
}

/// Loss terms per epoch and the KL of each latent dimension.
pub(crate) fn vae_loss_ui(snapshot: &RunSnapshot, ui: &mut egui::Ui) {
    let series = |name: &str| epoch_series(snapshot, name);
    ui.horizontal(|ui| {
        ui.strong("Nats per input");
        plot_axes::legend_toggle(ui, "vae-loss");
    });
    let curves = vec![
        ("train: reconstruction + beta KL (batches)", series("loss")),
        ("train: negative ELBO", series("train_neg_elbo")),
        ("test: negative ELBO", series("test_neg_elbo")),
        ("test: reconstruction", series("test_recon")),
    ];
    epoch_curves(ui, "vae-loss", 200.0, curves, true);
    ui.horizontal(|ui| {
        ui.strong("KL per latent dimension (test inputs)");
        plot_axes::legend_toggle(ui, "vae-kl-dims");
    });
    let dims: Vec<String> = snapshot
        .history
        .last()
        .map(|r| r.metrics.iter().filter(|(k, _)| k.starts_with("kl_dim_")).map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    let curves: Vec<(String, Vec<[f64; 2]>)> = std::iter::once(("KL, all dimensions".to_owned(), series("test_kl")))
        .chain(dims.iter().map(|k| (k.replace("kl_dim_", "z"), series(k))))
        .collect();
    epoch_curves(ui, "vae-kl-dims", 160.0, curves, true);
    if let Some(last) = snapshot.history.last() {
        let collapsed: Vec<String> = dims
            .iter()
            .filter(|k| last.get(k).is_some_and(|v| v < COLLAPSE_NATS))
            .map(|k| k.replace("kl_dim_", "z"))
            .collect();
        if !collapsed.is_empty() {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!("Collapsed to the prior (KL below {COLLAPSE_NATS} nats): {}. These dimensions carry no information about the input.", collapsed.join(", ")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fitted_side;

    #[test]
    fn image_grids_fill_the_room_they_have() {
        let side =
            |w: f32, h: f32, across, min, max| (fitted_side(egui::vec2(w, h), across, min, max) * 10.0).round() / 10.0;
        // The reconstructions' two grids in a 1280 x 800 window: 890 x 660 points left, half the width each.
        assert!((side(890.0, 660.0, 2, 200.0, 520.0) - 437.0).abs() < 0.01);
        // A short window: the height decides.
        assert!((side(890.0, 330.0, 2, 200.0, 520.0) - 306.0).abs() < 0.01);
        // Never below the least side (the page scrolls), never past the largest.
        assert!((side(300.0, 200.0, 2, 200.0, 520.0) - 200.0).abs() < 0.01);
        assert!((side(2400.0, 1400.0, 1, 280.0, 640.0) - 640.0).abs() < 0.01);
    }
}
