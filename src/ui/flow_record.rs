//! "Record animation…" of the flow's stage plot: the plot moving through the stages, in either direction, captured as
//! drawn (the heat map, the warped grid, the points, the picked point's path) with the step-through's own in-between
//! positions, and written as a GIF or an animated PNG (`animation.rs`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::ui::animation::{FrameSink, RecordedAnimation, capture_frame, captured, queue_recorded};
use crate::ui::animation_file::{AnimationFormat, EncodeProgress};

/// Most frames one recording takes (each frame is the figure's pixels, a few MB, held until written).
pub const MAX_FRAMES: usize = 400;

/// The recorder's settings and where a recording stands.
pub struct StageRecorder {
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
}

enum Phase {
    /// The window shows the settings.
    Settings,
    /// Frames being captured: the stage of each, the next to capture, and whether its screenshot was asked for.
    Capturing { stages: Vec<f32>, next: usize, asked: bool, sink: FrameSink, name: String },
    /// The file being written on the `run-file` thread.
    Writing { progress: Arc<EncodeProgress>, total: usize },
}

impl Default for StageRecorder {
    fn default() -> Self {
        Self {
            open: false,
            from: 0,
            to: 0,
            frames_per_stage: 8,
            fps: 12.0,
            format: AnimationFormat::Gif,
            phase: Phase::Settings,
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

impl StageRecorder {
    /// Opens the window for a flow of `k_max` layers, from the Gaussian to the data the first time.
    pub fn open(&mut self, k_max: usize) {
        if !self.open
            && matches!(self.phase, Phase::Settings)
            && (self.from.max(self.to) > k_max || self.from == self.to)
        {
            (self.from, self.to) = (0, k_max);
        }
        self.open = true;
    }

    /// A recording is under way (frames being captured or the file written).
    #[must_use]
    pub fn busy(&self) -> bool {
        !matches!(self.phase, Phase::Settings)
    }

    /// Starts capturing (`direction` names the file: "generation" or "inference").
    pub fn start(&mut self, direction: &str) {
        let stages = frame_stages(self.from, self.to, self.frames_per_stage);
        let name = format!("flow-{direction}-stages-{}-to-{}.{}", self.from, self.to, self.format.extension());
        self.phase = Phase::Capturing { stages, next: 0, asked: false, sink: FrameSink::default(), name };
    }

    /// Stops the recording: frames captured so far are dropped, a file being written is not written.
    pub fn cancel(&mut self) {
        if let Phase::Writing { progress, .. } = &self.phase {
            progress.cancel.store(true, Ordering::Relaxed);
        }
        self.phase = Phase::Settings;
    }

    /// Called before the plot is drawn: the stage this frame must show while capturing (`None` otherwise). Moves on
    /// once the last frame's screenshot is in; with every frame in, queues the recording for writing.
    pub fn stage_to_show(&mut self, ctx: &egui::Context) -> Option<f32> {
        if let Phase::Writing { progress, .. } = &self.phase
            && progress.finished.load(Ordering::Relaxed)
        {
            self.phase = Phase::Settings;
            self.open = false;
        }
        let Phase::Capturing { stages, next, asked, sink, name } = &mut self.phase else { return None };
        if *asked && captured(sink) > *next {
            *next += 1;
            *asked = false;
        }
        if *next < stages.len() {
            ctx.request_repaint();
            return stages.get(*next).copied();
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
    pub fn after_draw(&mut self, ctx: &egui::Context, rect: egui::Rect, ready: bool) {
        if let Phase::Capturing { asked, sink, .. } = &mut self.phase
            && !*asked
            && ready
        {
            capture_frame(ctx, rect, sink);
            *asked = true;
        }
    }

    /// The window: the settings and Record, or the file's progress and Cancel (while frames are captured it hides,
    /// so that no frame shows it: [`Self::capture_progress_ui`] says how far they are). `k_max`: the flow's layers;
    /// `running`: a run trains (a recording shows one model, so it waits for a pause, and a run started stops it);
    /// `direction`: the step-through's, for the name; `figure_size`: the plot's size in pixels.
    pub fn window_ui(
        &mut self,
        ctx: &egui::Context,
        k_max: usize,
        running: bool,
        direction: &str,
        figure_size: [usize; 2],
    ) {
        if running && matches!(self.phase, Phase::Capturing { .. }) {
            self.phase = Phase::Settings;
        }
        if !self.open || matches!(self.phase, Phase::Capturing { .. }) {
            return;
        }
        let mut open = true;
        egui::Window::new("Record animation").collapsible(false).resizable(false).open(&mut open).show(ctx, |ui| {
            match &self.phase {
                Phase::Settings | Phase::Capturing { .. } => {
                    self.settings_ui(ui, k_max, running, direction, figure_size);
                }
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
        let Phase::Capturing { stages, next, .. } = &self.phase else { return };
        let (next, total) = (*next, stages.len());
        ui.horizontal(|ui| {
            ui.label(format!("Recording frame {} of {total}…", (next + 1).min(total)));
            ui.add(egui::ProgressBar::new(next as f32 / total.max(1) as f32).desired_width(160.0).show_percentage());
            if ui.button("Cancel").clicked() {
                self.cancel();
            }
        });
    }

    fn format_name(&self) -> &'static str {
        match self.format {
            AnimationFormat::Gif => "GIF",
            AnimationFormat::Apng => "animated PNG",
        }
    }

    fn settings_ui(&mut self, ui: &mut egui::Ui, k_max: usize, running: bool, direction: &str, [w, h]: [usize; 2]) {
        ui.label(format!(
            "The stage plot moving through the flow's stages ({direction}), as the step-through draws it."
        ));
        egui::Grid::new("flow-record-settings").num_columns(2).show(ui, |ui| {
            let id = ui.label("From stage").id;
            ui.add(egui::DragValue::new(&mut self.from).range(0..=k_max)).labelled_by(id);
            ui.end_row();
            let id = ui.label("To stage").id;
            ui.add(egui::DragValue::new(&mut self.to).range(0..=k_max)).labelled_by(id);
            ui.end_row();
            let id = ui.label("Frames per stage").id;
            ui.add(egui::DragValue::new(&mut self.frames_per_stage).range(1..=30)).labelled_by(id);
            ui.end_row();
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
        let frames = frame_stages(self.from, self.to, self.frames_per_stage).len();
        ui.label(
            egui::RichText::new(format!(
                "Stage 0 is the Gaussian, stage {k_max} the data; from a higher stage to a lower one it runs backwards. \
                 {frames} frames of {w} x {h} pixels, {:.1} s.",
                frames as f32 / self.fps
            ))
            .weak(),
        );
        let why_not = if running {
            Some("Pause the run or let it finish first: a recording shows one model.".to_owned())
        } else if self.from == self.to {
            Some("Choose two different stages.".to_owned())
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
            self.start(direction);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::frame_stages;

    #[test]
    fn frames_run_through_the_stages_either_way() {
        assert_eq!(frame_stages(0, 2, 2), [0.0, 0.5, 1.0, 1.5, 2.0]);
        assert_eq!(frame_stages(3, 1, 2), [3.0, 2.5, 2.0, 1.5, 1.0]);
        assert_eq!(frame_stages(0, 6, 1).len(), 7);
        assert_eq!(frame_stages(2, 2, 8), [2.0]);
    }
}
