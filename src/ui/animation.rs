//! "Record animation…": a figure over a sequence of states (the flow's stages), captured frame by frame exactly as
//! drawn, then written as a GIF or an animated PNG (`animation_file.rs`) on the `run-file` thread.
//!
//! A page's recorder sets the state of one frame, waits until the figure shows it completely (its grids computed),
//! and asks for the window's screenshot cropped to the figure ([`capture_frame`]); the callback adds the frame to the
//! recording's [`FrameSink`], and the recorder moves on. With every frame in, it queues a [`RecordedAnimation`],
//! which the app takes ([`take_recorded`], in `app/files.rs`) and writes after the save dialog, as "Save image…"
//! does; the window's progress bar and Cancel work through the shared [`EncodeProgress`].

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use crate::train::runfile::write_atomically;
use crate::ui::animation_file::{AnimationFormat, EncodeError, EncodeProgress, encode};
use crate::ui::file_job::RunFileOutcome;
use crate::ui::image_export::{crop, figure_path};

/// The frames captured so far, in order (the screenshot callbacks add to it).
pub(crate) type FrameSink = Arc<Mutex<Vec<egui::ColorImage>>>;

/// Asks for the window's screenshot of this frame and adds the part inside `rect` (points) to `sink`.
pub(crate) fn capture_frame(ctx: &egui::Context, rect: egui::Rect, sink: &FrameSink) {
    let pixels_per_point = ctx.pixels_per_point();
    let sink = Arc::clone(sink);
    let repaint = ctx.clone();
    let callback = egui::ScreenshotCallback::new(move |screen: Arc<egui::ColorImage>| {
        let image = crop(&screen, rect, pixels_per_point);
        sink.lock().unwrap_or_else(PoisonError::into_inner).push(image);
        repaint.request_repaint();
    });
    ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(callback));
}

/// Frames in `sink`.
pub(crate) fn captured(sink: &FrameSink) -> usize {
    sink.lock().unwrap_or_else(PoisonError::into_inner).len()
}

/// A recording with every frame in, waiting to be written.
pub(crate) struct RecordedAnimation {
    /// The file name offered in the save dialog ("flow-generation-stages-0-to-6.gif").
    pub name: String,
    /// The frames, as drawn.
    pub frames: Vec<egui::ColorImage>,
    /// GIF or animated PNG.
    pub format: AnimationFormat,
    /// Frames per second.
    pub fps: f32,
    /// Shared with the recorder's window: frames written, Cancel, and the end of the job.
    pub progress: Arc<EncodeProgress>,
}

type RecordedQueue = Arc<Mutex<Vec<RecordedAnimation>>>;

fn queue(ctx: &egui::Context) -> RecordedQueue {
    ctx.data_mut(|d| {
        Arc::clone(d.get_temp_mut_or_default::<RecordedQueue>(egui::Id::unique("bayes-explorer-recorded")))
    })
}

/// Queues `recorded` for the app to write.
pub(crate) fn queue_recorded(ctx: &egui::Context, recorded: RecordedAnimation) {
    queue(ctx).lock().unwrap_or_else(PoisonError::into_inner).push(recorded);
    ctx.request_repaint();
}

/// The next recording waiting to be written, if any.
pub(crate) fn take_recorded(ctx: &egui::Context) -> Option<RecordedAnimation> {
    let queue = queue(ctx);
    let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
    (!queue.is_empty()).then(|| queue.remove(0))
}

/// "Record animation…" on the `run-file` thread: `recorded` encoded and written atomically to `given` or to a file
/// picked in the save dialog (into the working folder when no dialog can be shown). Marks the progress finished
/// however it ends, so that the recorder's window closes.
pub(crate) fn write_animation_job(recorded: RecordedAnimation, given: Option<PathBuf>) -> RunFileOutcome {
    let progress = Arc::clone(&recorded.progress);
    let outcome = write_animation(recorded, given);
    progress.finished.store(true, Ordering::Relaxed);
    outcome
}

fn write_animation(recorded: RecordedAnimation, given: Option<PathBuf>) -> RunFileOutcome {
    let RecordedAnimation { name, frames, format, fps, progress } = recorded;
    let (filter, title) = match format {
        AnimationFormat::Gif => ("GIF animation", "Save the animation as GIF"),
        AnimationFormat::Apng => ("Animated PNG", "Save the animation as an animated PNG"),
    };
    let (path, no_dialog) = match figure_path(given, (title, filter, format.extension()), name) {
        Ok(picked) => picked,
        Err(outcome) => return outcome,
    };
    let bytes = match encode(&frames, format, fps, &progress) {
        Ok(bytes) => bytes,
        Err(EncodeError::Cancelled) => return RunFileOutcome::Cancelled { quick: false },
        Err(EncodeError::Failed(e)) => {
            return RunFileOutcome::Failed(format!("{}: cannot encode the animation: {e}", path.display()));
        }
    };
    let size = frames.first().map_or([0, 0], |f| f.size);
    match write_atomically(&path, |file| std::io::Write::write_all(file, &bytes)) {
        Ok(()) => RunFileOutcome::AnimationSaved { path, frames: frames.len(), size, fps, no_dialog },
        Err(e) => RunFileOutcome::Failed(format!("{}: cannot write the animation: {e}", path.display())),
    }
}
