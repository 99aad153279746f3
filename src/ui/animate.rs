//! `train … --animate DIR` and `train … --load RUN --animate DIR`: the window's "Record animation…" without a
//! window. The app opens the run file in an offscreen window (`offscreen.rs`) exactly as "Open run…" does, the
//! run's kept models in its epoch scrubber, and records the lab's figures as the buttons would, frame by frame as
//! drawn, into GIFs in DIR:
//! - flow: the stage plot through the stages (Gaussian to data) and the data stage over the training;
//! - VAE: the latent plane over the training;
//! - BNN: the first layer's weight histogram over the training.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Lab;
use crate::train::WorkerState;
use crate::ui::animation_file::AnimationFormat;
use crate::ui::bnn::BnnPage;
use crate::ui::bnn_state::HistoryMode;
use crate::ui::flow::FlowPage;
use crate::ui::offscreen::OffscreenWindow;
use crate::ui::record::{FigureRecorder, RecordMode};
use crate::ui::vae::VaePage;
use crate::ui::{BayesExplorerApp, Settings};

/// The offscreen window's size: the app's own default.
const SIZE: egui::Vec2 = egui::vec2(1280.0, 800.0);
/// Longest one step may take (opening the run, one recording) before it counts as stuck.
const STEP_LIMIT: Duration = Duration::from_mins(10);

/// What one recording of [`animate_run`] made.
#[derive(Clone, Debug)]
pub struct Animation {
    /// The file written.
    pub path: PathBuf,
    /// What it shows.
    pub what: String,
}

/// Opens the run file `run` in an offscreen window and writes its lab's animations into `dir` (created if
/// missing) as `format`; `progress` hears what is being done.
pub fn animate_run(
    run: &Path,
    dir: &Path,
    format: AnimationFormat,
    mut progress: impl FnMut(&str),
) -> Result<Vec<Animation>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let ctx = egui::Context::default();
    egui_extras::install_image_loaders(&ctx);
    let mut window = OffscreenWindow::new(ctx.clone(), SIZE)?;
    progress(&format!("drawing offscreen on {}", window.adapter()));
    let mut app = BayesExplorerApp::new(ctx, Settings::default());
    app.save_images_to(Some(dir.to_owned()));
    let mut driver = Driver { window: &mut window, app: &mut app };
    driver.until("the built-in datasets", |app| !app.any_loading())?;
    let lab = crate::train::runfile::read_run_file(run).map_err(|e| e.to_string())?.0.lab;
    driver.app.open_run(Some(run.to_owned()));
    driver.until("the run to open", |app| {
        !app.run_file_busy() && (app.lab(lab).worker.is_some() || app.lab(lab).message.is_some())
    })?;
    if let Some(message) = driver.app.lab(lab).message.as_ref().filter(|m| m.is_error()) {
        return Err(message.text.clone());
    }
    driver.until("the run's model", |app| app.lab(lab).worker_state == Some(WorkerState::Finished))?;
    let recordings: &[Recording] = match lab {
        Lab::Flow => &[Recording::FlowStages, Recording::FlowOverTraining],
        Lab::Vae => &[Recording::VaeLatent],
        Lab::Bnn => &[Recording::BnnHistogram],
    };
    let mut made = Vec::new();
    for &recording in recordings {
        let what = recording.what();
        progress(&format!("recording {what}"));
        let before = files_in(dir);
        // The figure drawn first for the run's own model, as the window shows it when Record is pressed (the VAE's
        // recording keeps the window its latent plane has then).
        recording.show(driver.app);
        driver.until("the figure", |app| recording.drawn(app))?;
        recording.start(driver.app, format);
        driver.until(what, |app| !recording.busy(app) && !app.run_file_busy())?;
        let new: Vec<PathBuf> = files_in(dir).into_iter().filter(|p| !before.contains(p)).collect();
        let [path] = new.as_slice() else {
            let why = driver.app.lab(lab).message.as_ref().map_or_else(String::new, |m| format!(": {}", m.text));
            return Err(format!("recording {what} wrote no file{why}"));
        };
        made.push(Animation { path: path.clone(), what: what.to_owned() });
    }
    Ok(made)
}

/// One of the lab's animations.
#[derive(Clone, Copy, Debug)]
enum Recording {
    /// The flow's stage plot from the Gaussian (stage 0) to the data (stage K).
    FlowStages,
    /// The flow's data stage over the training.
    FlowOverTraining,
    /// The VAE's latent plane over the training.
    VaeLatent,
    /// The BNN's first-layer weight histogram over the training.
    BnnHistogram,
}

impl Recording {
    fn what(self) -> &'static str {
        match self {
            Self::FlowStages => "the stage plot from the Gaussian to the data",
            Self::FlowOverTraining => "the data stage over the training",
            Self::VaeLatent => "the latent plane over the training",
            Self::BnnHistogram => "the first layer's weight histogram over the training",
        }
    }

    /// Puts the figure on show, for the run's own model.
    fn show(self, app: &mut BayesExplorerApp) {
        match self {
            Self::FlowStages | Self::FlowOverTraining => {
                let flow = app.flow_state_mut();
                flow.page = FlowPage::StepThrough;
                flow.scrubber.step = None;
                flow.show_stage(0);
            }
            Self::VaeLatent => {
                let vae = app.vae_state_mut();
                vae.page = VaePage::Latent;
                vae.scrubber.step = None;
            }
            Self::BnnHistogram => {
                let bnn = app.bnn_state_mut();
                bnn.page = BnnPage::Weights;
                bnn.layer = 0;
                bnn.history_mode = HistoryMode::Single;
                bnn.scrubber.step = None;
            }
        }
    }

    /// The figure is drawn for the model on show (the flow's stages and the VAE's latents are computed on their
    /// view threads).
    fn drawn(self, app: &BayesExplorerApp) -> bool {
        match self {
            Self::FlowStages | Self::FlowOverTraining => app.flow_state().views_step().is_some(),
            Self::VaeLatent => app.vae_state().has_latents(),
            Self::BnnHistogram => app.bnn_state().has_predictions(),
        }
    }

    /// Asks the figure's recorder to start on the next frame.
    fn start(self, app: &mut BayesExplorerApp, format: AnimationFormat) {
        match self {
            Self::FlowStages => {
                let flow = app.flow_state_mut();
                let k = flow.n_layers();
                ask(&mut flow.recorder, RecordMode::Stages, format, Some((0, k)));
            }
            Self::FlowOverTraining => {
                // The data stage, now that the flow's layers are known.
                let flow = app.flow_state_mut();
                flow.show_stage(flow.n_layers());
                ask(&mut flow.recorder, RecordMode::Epochs, format, None);
            }
            Self::VaeLatent => {
                let recorder = &mut app.vae_state_mut().recorder;
                recorder.open_figure("vae-latent");
                ask(recorder, RecordMode::Epochs, format, None);
            }
            Self::BnnHistogram => {
                let recorder = &mut app.bnn_state_mut().recorder;
                recorder.open_figure("bnn-histogram");
                ask(recorder, RecordMode::Epochs, format, None);
            }
        }
    }

    /// Its recorder is still capturing or writing.
    fn busy(self, app: &BayesExplorerApp) -> bool {
        match self {
            Self::FlowStages | Self::FlowOverTraining => app.flow_state().recorder.busy(),
            Self::VaeLatent => app.vae_state().recorder.busy(),
            Self::BnnHistogram => app.bnn_state().recorder.busy(),
        }
    }
}

/// Sets `recorder` to record in `mode` (the stages `from`..`to` when given), over every kept model, and asks it to
/// start on the next frame.
fn ask(recorder: &mut FigureRecorder, mode: RecordMode, format: AnimationFormat, stages: Option<(usize, usize)>) {
    recorder.mode = mode;
    recorder.format = format;
    recorder.epochs = (0.0, f64::INFINITY);
    if let Some((from, to)) = stages {
        (recorder.from, recorder.to) = (from, to);
    }
    recorder.record_now();
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default()
}

/// The app in its offscreen window.
struct Driver<'a> {
    window: &'a mut OffscreenWindow,
    app: &'a mut BayesExplorerApp,
}

impl Driver<'_> {
    fn frame(&mut self) -> Result<(), String> {
        let app = &mut *self.app;
        self.window.frame(|ui| app.show(ui))
    }

    fn frames(&mut self, n: usize) -> Result<(), String> {
        for _ in 0..n {
            self.frame()?;
        }
        Ok(())
    }

    /// Draws frames until `done` (at most [`STEP_LIMIT`]; the background threads work meanwhile).
    fn until(&mut self, what: &str, done: impl Fn(&BayesExplorerApp) -> bool) -> Result<(), String> {
        let deadline = Instant::now() + STEP_LIMIT;
        while !done(self.app) {
            if Instant::now() > deadline {
                return Err(format!("timed out waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(10));
            self.frame()?;
        }
        self.frames(3)
    }
}
