//! "Record animation…" of a figure: over the training, one frame for each model the lab's epoch scrubber keeps (the
//! VAE's latent plane forming, the flow's stage learning the data), or, for the flow's stage plot, through the
//! stages in either direction with the step-through's own in-between positions; captured as drawn (`animation.rs`)
//! and written as a GIF or an animated PNG.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::ui::animation::{FrameSink, RecordedAnimation, capture_frame, captured, queue_recorded};
use crate::ui::animation_file::{AnimationFormat, EncodeProgress};
use crate::ui::image_export;

/// Most frames one recording takes (each frame is the figure's pixels, a few MB, held until written).
pub const MAX_FRAMES: usize = 400;

/// What a recording moves through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RecordMode {
    /// The stages of the model on show.
    #[default]
    Stages,
    /// The models of the run, epoch by epoch, at the stage on show.
    Epochs,
}

/// What one frame shows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FrameTarget {
    /// A stage of the model on show (fractional in between).
    Stage(f32),
    /// The run's model of this step (from the history), at the stage on show.
    Model(u64),
}

/// The figure a recorder records, as the page has it this frame.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// The start of the file's name ("flow-generation", "vae-latent").
    pub name: &'a str,
    /// The flow's stages; `None` for a figure without stages, which is recorded over the training only.
    pub stages: Option<Stages<'a>>,
    /// The (step, epoch) of each model the scrubber keeps, oldest first.
    pub models: &'a [(u64, f64)],
    /// A run trains (a recording shows fixed models, so it waits for a pause, and a run started stops it).
    pub running: bool,
    /// The figure's size in pixels.
    pub figure_size: [usize; 2],
}

/// The stages of the flow's plot.
#[derive(Clone, Copy, Debug)]
pub struct Stages<'a> {
    /// The flow's layers K: stages 0..=K.
    pub layers: usize,
    /// The stage on show.
    pub on_show: usize,
    /// The step-through's direction ("generation", "inference").
    pub direction: &'a str,
}

/// The recorder's settings and where a recording stands.
pub struct FigureRecorder {
    /// Through the stages or over the training.
    pub mode: RecordMode,
    /// Over the training: the first and last epoch (the models kept between them are the frames).
    pub epochs: (f64, f64),
    /// The window is open.
    pub open: bool,
    /// The first stage (0 the Gaussian, K the data).
    pub from: usize,
    /// The last stage; below `from`, the recording runs backwards.
    pub to: usize,
    /// Frames from one stage to the next (1: the whole stages alone).
    pub frames_per_stage: usize,
    /// Frames per second of the file.
    pub fps: f32,
    /// GIF or animated PNG.
    pub format: AnimationFormat,
    phase: Phase,
    /// [`Self::record_now`] asked for a recording with the settings as they are.
    start_asked: bool,
    /// The figure recorded (its "Save image…" key) where the page draws it through `image_export` and calls
    /// [`Self::after_page`]; `None` where the page hands its rectangle to [`Self::after_draw`] itself.
    figure: Option<String>,
    /// That figure's size in pixels when last drawn.
    figure_size: [usize; 2],
}

enum Phase {
    /// The window shows the settings.
    Settings,
    /// Frames being captured: the stage of each, the next to capture, and whether its screenshot was asked for.
    Capturing { targets: Vec<FrameTarget>, next: usize, asked: bool, settled: u8, sink: FrameSink, name: String },
    /// The file being written on the `run-file` thread.
    Writing { progress: Arc<EncodeProgress>, total: usize },
}

impl Default for FigureRecorder {
    fn default() -> Self {
        Self {
            mode: RecordMode::Stages,
            epochs: (0.0, f64::INFINITY),
            open: false,
            from: 0,
            to: 0,
            frames_per_stage: 8,
            fps: 12.0,
            format: AnimationFormat::Gif,
            phase: Phase::Settings,
            start_asked: false,
            figure: None,
            figure_size: [0, 0],
        }
    }
}

/// The stage (0..=K, fractional in between) of each frame from `from` to `to` with `per_stage` frames a stage.
#[must_use]
pub fn frame_stages(from: usize, to: usize, per_stage: usize) -> Vec<f32> {
    let per_stage = per_stage.max(1);
    let n = from.abs_diff(to) * per_stage;
    let sign = if to >= from { 1.0 } else { -1.0 };
    (0..=n).map(|i| from as f32 + sign * i as f32 / per_stage as f32).collect()
}

impl FigureRecorder {
    /// Opens the window: for a flow of `k_max` layers (`Some`), from the Gaussian to the data the first time; for a
    /// figure without stages (`None`), over the training.
    pub fn open(&mut self, k_max: Option<usize>) {
        match k_max {
            Some(k_max)
                if !self.open
                    && matches!(self.phase, Phase::Settings)
                    && (self.from.max(self.to) > k_max || self.from == self.to) =>
            {
                (self.from, self.to) = (0, k_max);
            }
            Some(_) => {}
            None => self.mode = RecordMode::Epochs,
        }
        // The stage plot's own window (its page hands the plot's rectangle over itself).
        if k_max.is_some() && !self.busy() {
            self.figure = None;
        }
        self.open = true;
    }

    /// Opens the window for the figure `key` (its "Save image…" key), recorded over the training.
    pub fn open_figure(&mut self, key: &str) {
        if !self.busy() {
            self.figure = Some(key.to_owned());
            self.figure_size = [0, 0];
        }
        self.open(None);
    }

    /// The figure opened with [`Self::open_figure`], if any.
    #[must_use]
    pub fn figure(&self) -> Option<&str> {
        self.figure.as_deref()
    }

    /// That figure's size in pixels when last drawn.
    #[must_use]
    pub fn figure_size(&self) -> [usize; 2] {
        self.figure_size
    }

    /// Called once the page is drawn: where the figure opened with [`Self::open_figure`] was drawn this frame, whole
    /// on screen and `ready` (its views show the frame's model), asks for its screenshot.
    pub fn after_page(&mut self, ctx: &egui::Context, ready: bool) {
        let Some(drawn) = self.figure.as_deref().and_then(|key| image_export::drawn_figure(ctx, key)) else { return };
        let pixels = |v: f32| (v * ctx.pixels_per_point()).round() as usize;
        self.figure_size = [pixels(drawn.rect.width()), pixels(drawn.rect.height())];
        self.after_draw(ctx, drawn.rect, ready && drawn.whole);
    }

    /// Starts a recording with the settings as they are on the next frame that draws the figure, as its Record
    /// button would (for the command line's `--animate` and scripted demos); it counts as busy from now.
    pub fn record_now(&mut self) {
        self.open = true;
        self.start_asked = true;
    }

    /// A recording is under way (frames being captured or the file written).
    #[must_use]
    pub fn busy(&self) -> bool {
        self.start_asked || !matches!(self.phase, Phase::Settings)
    }

    /// Starts capturing `subject`'s frames.
    pub fn start(&mut self, subject: &Subject<'_>) {
        let extension = self.format.extension();
        let name = subject.name;
        let (targets, name) = match (self.mode, subject.stages) {
            (RecordMode::Stages, Some(_)) => (
                frame_stages(self.from, self.to, self.frames_per_stage).into_iter().map(FrameTarget::Stage).collect(),
                format!("{name}-stages-{}-to-{}.{extension}", self.from, self.to),
            ),
            (_, stages) => {
                let last = last_epoch(subject.models);
                self.epochs = (self.epochs.0.clamp(0.0, last), self.epochs.1.clamp(0.0, last));
                let (a, b) = self.epochs;
                let steps = models_between(subject.models, a, b);
                let stage = stages.map_or(String::new(), |s| format!("-stage-{}", s.on_show));
                (
                    steps.into_iter().map(FrameTarget::Model).collect(),
                    format!("{name}{stage}-epochs-{a:.0}-to-{b:.0}.{extension}"),
                )
            }
        };
        self.phase = Phase::Capturing { targets, next: 0, asked: false, settled: 0, sink: FrameSink::default(), name };
    }

    /// What the frame being captured shows, if a recording is capturing.
    #[must_use]
    pub fn current_target(&self) -> Option<FrameTarget> {
        match &self.phase {
            Phase::Capturing { targets, next, .. } => targets.get(*next).copied(),
            _ => None,
        }
    }

    /// Stops the recording: frames captured so far are dropped, a file being written is not written.
    pub fn cancel(&mut self) {
        if let Phase::Writing { progress, .. } = &self.phase {
            progress.cancel.store(true, Ordering::Relaxed);
        }
        self.phase = Phase::Settings;
    }

    /// Called before the plot is drawn: what this frame must show while capturing (`None` otherwise). Moves on once
    /// the last frame's screenshot is in; with every frame in, queues the recording for writing.
    pub fn frame_to_show(&mut self, ctx: &egui::Context) -> Option<FrameTarget> {
        // The figure being captured is kept in view (`image_export::capture_if_asked`).
        let capturing = matches!(self.phase, Phase::Capturing { .. });
        image_export::set_recorded_figure(ctx, self.figure.as_deref().filter(|_| capturing));
        if let Phase::Writing { progress, .. } = &self.phase
            && progress.finished.load(Ordering::Relaxed)
        {
            self.phase = Phase::Settings;
            self.open = false;
        }
        let Phase::Capturing { targets, next, asked, settled, sink, name } = &mut self.phase else { return None };
        if *asked && captured(sink) > *next {
            *next += 1;
            *asked = false;
            *settled = 0;
        }
        if *next < targets.len() {
            ctx.request_repaint();
            return targets.get(*next).copied();
        }
        let frames = std::mem::take(&mut *sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let progress = Arc::new(EncodeProgress::default());
        let total = frames.len();
        queue_recorded(
            ctx,
            RecordedAnimation {
                name: std::mem::take(name),
                frames,
                format: self.format,
                fps: self.fps,
                progress: Arc::clone(&progress),
            },
        );
        self.phase = Phase::Writing { progress, total };
        None
    }

    /// Called after the plot is drawn at `rect`: when this frame shows the stage asked for completely (`ready`: its
    /// grid is in), asks for its screenshot.
    /// The frame is taken the second time in a row it is ready: a plot lays its axes out from the frame before, so
    /// the first frame that shows a new model can still have the last model's axis widths.
    pub fn after_draw(&mut self, ctx: &egui::Context, rect: egui::Rect, ready: bool) {
        if let Phase::Capturing { asked, settled, sink, .. } = &mut self.phase
            && !*asked
        {
            *settled = if ready { settled.saturating_add(1) } else { 0 };
            if *settled >= 2 {
                capture_frame(ctx, rect, sink);
                *asked = true;
            } else {
                ctx.request_repaint();
            }
        }
    }

    /// The window: the settings and Record, or the file's progress and Cancel (while frames are captured it hides,
    /// so that no frame shows it: [`Self::capture_progress_ui`] says how far they are).
    pub fn window_ui(&mut self, ctx: &egui::Context, subject: &Subject<'_>) {
        if subject.running && matches!(self.phase, Phase::Capturing { .. }) {
            self.phase = Phase::Settings;
        }
        if std::mem::take(&mut self.start_asked) && matches!(self.phase, Phase::Settings) && !subject.running {
            if subject.stages.is_none() {
                self.mode = RecordMode::Epochs;
            }
            if self.frames(subject) >= 2 {
                self.start(subject);
            }
        }
        if !self.open || matches!(self.phase, Phase::Capturing { .. }) {
            return;
        }
        let mut open = true;
        egui::Window::new("Record animation").collapsible(false).resizable(false).open(&mut open).show(ctx, |ui| {
            match &self.phase {
                Phase::Settings | Phase::Capturing { .. } => self.settings_ui(ui, subject),
                Phase::Writing { progress, total } => {
                    let done = progress.done.load(Ordering::Relaxed);
                    ui.label(format!("Writing the {}: frame {done} of {total}…", self.format_name()));
                    ui.add(egui::ProgressBar::new(done as f32 / (*total).max(1) as f32).show_percentage());
                    if ui.button("Cancel").clicked() {
                        self.cancel();
                    }
                    ctx.request_repaint_after(std::time::Duration::from_millis(100));
                }
            }
        });
        if !open {
            self.cancel();
            self.open = false;
        }
    }

    /// While frames are captured, under the plot: which frame, a progress bar and Cancel.
    pub fn capture_progress_ui(&mut self, ui: &mut egui::Ui) {
        let Phase::Capturing { targets, next, .. } = &self.phase else { return };
        let (next, total) = (*next, targets.len());
        ui.horizontal(|ui| {
            ui.label(format!("Recording frame {} of {total}…", (next + 1).min(total)));
            ui.add(egui::ProgressBar::new(next as f32 / total.max(1) as f32).desired_width(160.0).show_percentage());
            if ui.button("Cancel").clicked() {
                self.cancel();
            }
        });
    }

    /// Frames a recording with these settings takes.
    fn frames(&self, subject: &Subject<'_>) -> usize {
        match self.mode {
            RecordMode::Stages => frame_stages(self.from, self.to, self.frames_per_stage).len(),
            RecordMode::Epochs => models_between(subject.models, self.epochs.0, self.epochs.1).len(),
        }
    }

    fn format_name(&self) -> &'static str {
        match self.format {
            AnimationFormat::Gif => "GIF",
            AnimationFormat::Apng => "animated PNG",
        }
    }

    fn settings_ui(&mut self, ui: &mut egui::Ui, subject: &Subject<'_>) {
        let Subject { models, stages, running, figure_size: [w, h], .. } = *subject;
        if stages.is_none() {
            self.mode = RecordMode::Epochs;
        }
        let k_max = stages.map_or(0, |s| s.layers);
        match stages {
            Some(Stages { on_show, direction, .. }) => {
                ui.radio_value(
                    &mut self.mode,
                    RecordMode::Stages,
                    format!("Through the stages ({direction}), this model"),
                );
                ui.radio_value(
                    &mut self.mode,
                    RecordMode::Epochs,
                    format!("Over the training: stage {on_show}, one frame per model kept of the run"),
                );
            }
            None => {
                ui.label("Over the training: one frame per model kept of the run.");
            }
        }
        let last = last_epoch(models);
        egui::Grid::new("record-settings").num_columns(2).show(ui, |ui| {
            match self.mode {
                RecordMode::Stages => {
                    let id = ui.label("From stage").id;
                    ui.add(egui::DragValue::new(&mut self.from).range(0..=k_max)).labelled_by(id);
                    ui.end_row();
                    let id = ui.label("To stage").id;
                    ui.add(egui::DragValue::new(&mut self.to).range(0..=k_max)).labelled_by(id);
                    ui.end_row();
                    let id = ui.label("Frames per stage").id;
                    ui.add(egui::DragValue::new(&mut self.frames_per_stage).range(1..=30)).labelled_by(id);
                    ui.end_row();
                }
                RecordMode::Epochs => {
                    self.epochs = (self.epochs.0.clamp(0.0, last), self.epochs.1.clamp(0.0, last));
                    let id = ui.label("From epoch").id;
                    ui.add(egui::DragValue::new(&mut self.epochs.0).range(0.0..=last).speed(0.5)).labelled_by(id);
                    ui.end_row();
                    let id = ui.label("To epoch").id;
                    ui.add(egui::DragValue::new(&mut self.epochs.1).range(0.0..=last).speed(0.5)).labelled_by(id);
                    ui.end_row();
                }
            }
            let id = ui.label("Frames per second").id;
            ui.add(egui::DragValue::new(&mut self.fps).range(1.0..=50.0).speed(0.2)).labelled_by(id);
            ui.end_row();
            ui.label("Format");
            ui.vertical(|ui| {
                for format in AnimationFormat::ALL {
                    ui.radio_value(&mut self.format, format, format.label());
                }
            });
            ui.end_row();
        });
        let frames = self.frames(subject);
        let what = match self.mode {
            RecordMode::Stages => format!(
                "Stage 0 is the Gaussian, stage {k_max} the data; from a higher stage to a lower one it runs backwards."
            ),
            RecordMode::Epochs => format!(
                "The models the epoch scrubber keeps between the two epochs ({} of this run, up to epoch {last:.1}); from a later epoch to an earlier one it runs backwards.",
                models.len()
            ),
        };
        ui.label(
            egui::RichText::new(format!(
                "{what} {frames} frames of {w} x {h} pixels, {:.1} s.",
                frames as f32 / self.fps
            ))
            .weak(),
        );
        let why_not = if running {
            Some("Pause the run or let it finish first: a recording shows fixed models.".to_owned())
        } else if frames < 2 {
            Some(match self.mode {
                RecordMode::Stages => "Choose two different stages.".to_owned(),
                RecordMode::Epochs => "Choose epochs at least two kept models apart.".to_owned(),
            })
        } else if frames > MAX_FRAMES {
            Some(format!("At most {MAX_FRAMES} frames: fewer frames per stage."))
        } else {
            None
        };
        let record = ui.add_enabled(why_not.is_none(), egui::Button::new("Record"));
        if let Some(why) = &why_not {
            ui.label(egui::RichText::new(why).weak());
        }
        if record.clicked() {
            self.start(subject);
        }
    }
}

/// The last epoch of `models` (0 without any).
fn last_epoch(models: &[(u64, f64)]) -> f64 {
    models.last().map_or(0.0, |m| m.1)
}

/// The steps of the models whose epoch lies between `from` and `to` (inclusive), in the order from `from` to `to`.
#[must_use]
pub fn models_between(models: &[(u64, f64)], from: f64, to: f64) -> Vec<u64> {
    let (lo, hi) = (from.min(to) - 1e-9, from.max(to) + 1e-9);
    let mut steps: Vec<u64> = models.iter().filter(|m| m.1 >= lo && m.1 <= hi).map(|m| m.0).collect();
    if from > to {
        steps.reverse();
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::{frame_stages, models_between};

    #[test]
    fn frames_over_the_training_are_the_models_kept_between_two_epochs_either_way() {
        let models = [(0, 0.0), (100, 10.0), (250, 25.0), (400, 40.0)];
        assert_eq!(models_between(&models, 0.0, 40.0), [0, 100, 250, 400]);
        assert_eq!(models_between(&models, 30.0, 5.0), [250, 100]);
        assert!(models_between(&models, 11.0, 24.0).is_empty());
    }

    #[test]
    fn frames_run_through_the_stages_either_way() {
        assert_eq!(frame_stages(0, 2, 2), [0.0, 0.5, 1.0, 1.5, 2.0]);
        assert_eq!(frame_stages(3, 1, 2), [3.0, 2.5, 2.0, 1.5, 1.0]);
        assert_eq!(frame_stages(0, 6, 1).len(), 7);
        assert_eq!(frame_stages(2, 2, 8), [2.0]);
    }
}
