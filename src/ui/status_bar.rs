//! The status bar: compute backend and adapter, the current lab's worker state and progress, and every other lab
//! with a run under way (training, starting or paused), named with its epoch: a click goes to that lab.

use crate::Lab;
use crate::train::WorkerState;
use crate::ui::lab_page::text_width;
use crate::ui::lab_state::LabState;

/// The progress bars' widths.
const EPOCH_BAR_WIDTH: f32 = 180.0;
const LOADING_BAR_WIDTH: f32 = 120.0;
/// The epoch bar's width when other labs' runs share the bar.
const NARROW_EPOCH_BAR_WIDTH: f32 = 110.0;
/// The compute line's least width before the other labs' runs are named in short.
const COMPUTE_MIN_WIDTH: f32 = 120.0;

/// A lab's run that is under way (not finished, failed or stopped), with its epoch: `(lab, long, short)` texts,
/// "VAE: training, epoch 3/50" and "VAE 3/50".
fn run_under_way(state: &LabState) -> Option<(Lab, String, String)> {
    state.worker.as_ref()?;
    let run_state = state.worker_state?;
    if !matches!(run_state, WorkerState::Starting | WorkerState::Running | WorkerState::Paused) {
        return None;
    }
    let name = state.lab.tab_name();
    let epochs = state.snapshot.as_ref().map(|s| format!("{}/{}", s.epoch, s.total_epochs));
    let long = match &epochs {
        Some(e) => format!("{name}: {}, epoch {e}", run_state.label()),
        None => format!("{name}: {}", run_state.label()),
    };
    let short = format!("{name} {}", epochs.unwrap_or_else(|| run_state.label().to_owned()));
    Some((state.lab, long, short))
}

/// The labs other than `tab` with a run under way, as [`run_under_way`] names them.
#[must_use]
pub(crate) fn other_runs(labs: &[LabState], tab: Lab) -> Vec<(Lab, String, String)> {
    labs.iter().filter(|s| s.lab != tab).filter_map(run_under_way).collect()
}

/// What the status bar shows.
pub(crate) struct StatusBar<'a> {
    /// Every lab's state, in tab order.
    pub labs: &'a [LabState],
    /// The open tab.
    pub tab: Lab,
    /// The compute line.
    pub compute: String,
    /// Frames drawn in the last two seconds and the slowest one's milliseconds, once measured.
    pub frames: Option<(f64, f32)>,
    /// Which renderer draws the window and why, when known.
    pub renderer: Option<&'a str>,
}

/// Draws the status bar; returns the lab whose run the user clicked: its tab should open.
pub(crate) fn status_bar_ui(bar: StatusBar<'_>, ui: &mut egui::Ui) -> Option<Lab> {
    let StatusBar { labs, tab, compute, frames, renderer } = bar;
    let lab = labs.iter().find(|s| s.lab == tab)?;
    let others = other_runs(labs, tab);
    // A run shown from its file (opened, or the last session's) that stopped before its end is not finished: its
    // worker, which only shows it, is.
    let stopped_early = lab.saved_run.is_some() && lab.snapshot.as_ref().is_some_and(|s| s.epoch < s.total_epochs);
    let state = match lab.worker_state {
        Some(crate::train::WorkerState::Finished) if stopped_early => "stopped before its end",
        state => state.map_or("no run", |s| s.label()),
    };
    let worker = format!("Worker ({}): {state}", lab.lab.tab_name());
    let frames = frames.map(|(fps, slowest_ms)| format!("UI: {fps:.0} frames/s, slowest frame {slowest_ms:.1} ms"));
    // The compute line gives way first in a narrow window (elided, whole on hover), then the other labs' runs are
    // named in short, so that the worker's state and the frame rate to its right stay readable: it gets the width
    // the rest of the bar leaves.
    let body_width = |text: &str| text_width(ui, text, egui::TextStyle::Body);
    let spacing = ui.spacing().item_spacing.x;
    let separator = 2.0 * spacing + 1.0;
    let button_padding = 2.0 * ui.spacing().button_padding.x;
    // The epoch bar is never narrower than its text ("epoch 6666/12000"), which it would clip.
    let epoch_text = lab.snapshot.as_ref().map(|s| format!("epoch {}/{}", s.epoch, s.total_epochs));
    let epoch_bar_width = (if others.is_empty() { EPOCH_BAR_WIDTH } else { NARROW_EPOCH_BAR_WIDTH })
        .max(epoch_text.as_deref().map_or(0.0, |t| text_width(ui, t, egui::TextStyle::Button) + 2.0 * spacing + 2.0));
    let mut rest = separator + body_width(&worker) + spacing;
    if lab.snapshot.is_some() {
        rest += epoch_bar_width + spacing;
    }
    if let Some(frames) = &frames {
        rest += separator + body_width(frames) + spacing;
    }
    if lab.loading.is_some() {
        rest += separator + LOADING_BAR_WIDTH + spacing;
    }
    let others_width = |short: bool| -> f32 {
        let texts = others.iter().map(|(_, long, brief)| if short { brief } else { long });
        let buttons: f32 = texts.map(|t| body_width(t) + button_padding + spacing).sum();
        if others.is_empty() { 0.0 } else { separator + buttons }
    };
    let short = ui.available_width() - rest - others_width(false) < COMPUTE_MIN_WIDTH;
    rest += others_width(short);
    let compute_width = (ui.available_width() - rest).max(COMPUTE_MIN_WIDTH);
    let mut go_to = None;
    ui.horizontal(|ui| {
        ui.scope(|ui| {
            ui.set_max_width(compute_width);
            ui.add(egui::Label::new(compute).truncate());
        });
        ui.separator();
        ui.label(worker);
        if let (Some(s), Some(text)) = (&lab.snapshot, epoch_text) {
            let bar = ui.add(egui::ProgressBar::new(s.fraction()).desired_width(epoch_bar_width).text(text));
            if let Some(kept) = lab.kept_summary() {
                bar.on_hover_text(format!("Step {}. {kept}.", s.step));
            }
        }
        if !others.is_empty() {
            ui.separator();
            for (other, long, brief) in &others {
                let text = if short { brief } else { long };
                let hover = format!("{long}. Go to the {} lab.", other.tab_name());
                if ui.add(egui::Button::new(text.as_str()).small()).on_hover_text(hover).clicked() {
                    go_to = Some(*other);
                }
            }
        }
        if let Some(frames) = frames {
            ui.separator();
            let mut hover = "Over the last two seconds: frames drawn, and the UI thread's time for the slowest (under 16.7 ms keeps 60 frames per second)".to_owned();
            if let Some(note) = renderer {
                hover = format!("{hover}. {note}.");
            }
            ui.label(frames).on_hover_text(hover);
        }
        if let Some((job, _)) = &lab.loading {
            ui.separator();
            ui.add(egui::ProgressBar::new(job.fraction()).desired_width(LOADING_BAR_WIDTH).text("loading"));
        }
    });
    go_to
}
