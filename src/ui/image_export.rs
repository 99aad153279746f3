//! "Save image…": a PNG of what a figure shows (a plot, an image grid, or a figure of several plots), exactly as
//! drawn in the window.
//!
//! A page draws each figure through [`saveable`] and puts a [`save_image_button`] with the same name near it. A
//! click marks the figure; when the figure is next drawn, [`saveable`] asks the window for a screenshot
//! (`ViewportCommand::Screenshot`), whose callback crops it to the figure's rectangle and queues it. The app
//! takes the queue each frame ([`take_captured`], in `app/files.rs`) and encodes and writes the PNG on the
//! `run-file` thread ([`write_image_job`]), after the native save dialog, like "Export data…". The UI thread only
//! copies pixels.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::train::runfile::write_atomically;
use crate::ui::file_job::{RunFileOutcome, given_or_picked, save_dialog};

/// A figure's pixels, cropped from a screenshot of the window, waiting to be written.
pub(crate) struct CapturedImage {
    /// The file name offered in the save dialog ("vae-latent.png").
    pub name: String,
    /// The pixels (sRGB, opaque).
    pub image: egui::ColorImage,
}

/// Screenshots cropped to a figure, from the window's callback to the app's next frame.
type CaptureQueue = Arc<Mutex<Vec<CapturedImage>>>;

fn queue_id() -> egui::Id {
    egui::Id::unique("bayes-explorer-captured-images")
}

fn queue(ctx: &egui::Context) -> CaptureQueue {
    ctx.data_mut(|d| Arc::clone(d.get_temp_mut_or_default::<CaptureQueue>(queue_id())))
}

fn asked_id(key: &str) -> egui::Id {
    egui::Id::unique(("save-image-asked", key))
}

/// The "Save image…" button of the figure `key` (the same key as its [`saveable`] or [`capture_if_asked`]); a
/// click saves the figure the next time it is drawn. No tooltip: it would show in the picture.
pub(crate) fn save_image_button(ui: &mut egui::Ui, key: &str) {
    if ui.button("Save image…").clicked() {
        ui.ctx().data_mut(|d| d.insert_temp(asked_id(key), true));
    }
}

/// Draws a figure with `add`; when its "Save image…" button (`key`) was clicked, saves it as `file_name` (see
/// [`capture_if_asked`]).
pub(crate) fn saveable<R>(
    ui: &mut egui::Ui,
    key: &str,
    file_name: impl FnOnce() -> String,
    add: impl FnOnce(&mut egui::Ui) -> R,
) -> R {
    saveable_in(ui, key, file_name, add).0
}

/// [`saveable`], also giving the rectangle the whole figure (axes and labels included) was drawn in: what "Record
/// animation…" captures.
pub(crate) fn saveable_in<R>(
    ui: &mut egui::Ui,
    key: &str,
    file_name: impl FnOnce() -> String,
    add: impl FnOnce(&mut egui::Ui) -> R,
) -> (R, egui::Rect) {
    let inner = ui.scope(add);
    capture_if_asked(ui, key, inner.response.rect, file_name);
    (inner.inner, inner.response.rect)
}

/// When the "Save image…" button `key` was clicked, has the window's screenshot of this frame cropped to `rect`
/// (the part of it on screen) and queued for saving, offered as `file_name`. Also notes where the figure was
/// drawn this frame, for "Record animation…" ([`drawn_figure`]); a figure being recorded is scrolled into view.
pub(crate) fn capture_if_asked(ui: &egui::Ui, key: &str, rect: egui::Rect, file_name: impl FnOnce() -> String) {
    let ctx = ui.ctx();
    let whole = ui.clip_rect().contains_rect(rect);
    let shown = DrawnFigure {
        pass: ctx.cumulative_pass_nr(),
        rect: rect.intersect(ui.clip_rect()),
        whole: whole || rect.height() > ui.clip_rect().height(),
    };
    ctx.data_mut(|d| d.insert_temp(drawn_id(key), shown));
    if !whole && recorded_figure(ctx).as_deref() == Some(key) {
        ui.scroll_to_rect(rect, None);
    }
    if ctx.data_mut(|d| d.remove_temp::<bool>(asked_id(key))).is_some() {
        request_capture(ctx, rect.intersect(ui.clip_rect()), file_name());
    }
}

/// Where a figure was drawn.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DrawnFigure {
    /// The pass it was drawn in.
    pass: u64,
    /// The part of it on screen.
    pub rect: egui::Rect,
    /// All of it is on screen (or it is taller than its scrolled area, which shows as much as it can).
    pub whole: bool,
}

fn drawn_id(key: &str) -> egui::Id {
    egui::Id::unique(("figure-drawn", key))
}

/// Where the figure `key` was drawn in this pass, if it was.
pub(crate) fn drawn_figure(ctx: &egui::Context, key: &str) -> Option<DrawnFigure> {
    let drawn: Option<DrawnFigure> = ctx.data(|d| d.get_temp(drawn_id(key)));
    drawn.filter(|d| d.pass == ctx.cumulative_pass_nr())
}

/// The part on screen of the figure `key` where it was last drawn, in whichever pass (for tests: a figure's size).
#[must_use]
pub fn figure_rect(ctx: &egui::Context, key: &str) -> Option<egui::Rect> {
    let drawn: Option<DrawnFigure> = ctx.data(|d| d.get_temp(drawn_id(key)));
    drawn.map(|d| d.rect)
}

fn recorded_id() -> egui::Id {
    egui::Id::unique("figure-recorded")
}

/// Marks `key` as the figure a recording is taking (`None`: no recording), so that it is kept in view.
pub(crate) fn set_recorded_figure(ctx: &egui::Context, key: Option<&str>) {
    ctx.data_mut(|d| match key {
        Some(key) => {
            d.insert_temp(recorded_id(), key.to_owned());
        }
        None => d.remove::<String>(recorded_id()),
    });
}

fn recorded_figure(ctx: &egui::Context) -> Option<String> {
    ctx.data(|d| d.get_temp(recorded_id()))
}

fn record_asked_id() -> egui::Id {
    egui::Id::unique("record-animation-asked")
}

/// The "Record animation…" button of the figure `key` (the same key as its "Save image…"): a click asks the lab's
/// recorder to open for it ([`take_record_asked`]); disabled while a recording is under way (`busy`).
pub(crate) fn record_button(ui: &mut egui::Ui, key: &str, busy: bool) {
    let button = ui
        .add_enabled(!busy, egui::Button::new("Record animation…"))
        .on_hover_text("This figure over the training, one frame for each model the epoch scrubber keeps");
    if button.clicked() {
        ui.ctx().data_mut(|d| d.insert_temp(record_asked_id(), key.to_owned()));
    }
}

/// The figure whose "Record animation…" was clicked since the last call, if any.
pub(crate) fn take_record_asked(ctx: &egui::Context) -> Option<String> {
    ctx.data_mut(|d| d.remove_temp::<String>(record_asked_id()))
}

/// Asks for a screenshot of the window and queues the part of it inside `rect` (in points) as `name`.
fn request_capture(ctx: &egui::Context, rect: egui::Rect, name: String) {
    let pixels_per_point = ctx.pixels_per_point();
    let queue = queue(ctx);
    let repaint = ctx.clone();
    let callback = egui::ScreenshotCallback::new(move |screen: Arc<egui::ColorImage>| {
        let image = crop(&screen, rect, pixels_per_point);
        if let Ok(mut queue) = queue.lock() {
            queue.push(CapturedImage { name, image });
        }
        repaint.request_repaint();
    });
    ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(callback));
}

/// The pixels of `screen` inside `rect` (points), clamped to the screen (an empty image when nothing is inside).
#[must_use]
pub fn crop(screen: &egui::ColorImage, rect: egui::Rect, pixels_per_point: f32) -> egui::ColorImage {
    let [width, height] = screen.size;
    let to_px = |v: f32, max: usize| ((v * pixels_per_point).round().max(0.0) as usize).min(max);
    let (x0, x1) = (to_px(rect.min.x, width), to_px(rect.max.x, width));
    let (y0, y1) = (to_px(rect.min.y, height), to_px(rect.max.y, height));
    if x1 <= x0 || y1 <= y0 {
        return egui::ColorImage::new([0, 0], Vec::new());
    }
    screen.region_by_pixels([x0, y0], [x1 - x0, y1 - y0])
}

/// `name` in the working folder, or `name-2`, `name-3`… if taken; `None` without a working folder.
fn unused_path(name: &str) -> Option<PathBuf> {
    let folder = std::env::current_dir().ok()?;
    let path = std::path::Path::new(name);
    let (stem, ext) = (path.file_stem()?.to_string_lossy(), path.extension().map(|e| e.to_string_lossy()));
    (1..10_000)
        .map(|k| {
            let numbered = if k == 1 { stem.to_string() } else { format!("{stem}-{k}") };
            folder.join(ext.as_ref().map_or(numbered.clone(), |e| format!("{numbered}.{e}")))
        })
        .find(|p| !p.exists())
}

/// `name` with every character that is not a letter, a digit, `-`, `_` or `.` replaced by `-` (a column name
/// in a file name).
#[must_use]
pub(crate) fn file_safe(name: &str) -> String {
    name.chars().map(|c| if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' }).collect()
}

/// Encodes `image` as an 8-bit RGBA PNG into `out`.
pub fn write_png(image: &egui::ColorImage, out: &mut impl std::io::Write) -> Result<(), String> {
    use image::ImageEncoder;
    let bytes: Vec<u8> = image.pixels.iter().flat_map(egui::Color32::to_srgba_unmultiplied).collect();
    let [width, height] = image.size;
    image::codecs::png::PngEncoder::new(out)
        .write_image(&bytes, width as u32, height as u32, image::ExtendedColorType::Rgba8)
        .map_err(|e| e.to_string())
}

/// The next figure captured in the window of `ctx` and waiting to be written, if any.
pub(crate) fn take_captured(ctx: &egui::Context) -> Option<CapturedImage> {
    queue(ctx).lock().ok().and_then(|mut q| (!q.is_empty()).then(|| q.remove(0)))
}

/// Where a file the window writes goes (a figure, an animation, a run, exported data; on the `run-file` thread):
/// `given`, or the file picked in the save dialog (`title`, one filter `filter` for `extension`, offering `name`);
/// with no dialog to show (no desktop portal), the working folder under a name not yet taken, with `true`. The
/// outcome to report when the dialog was closed without a file.
pub(crate) fn figure_path(
    given: Option<PathBuf>,
    (title, filter, extension): (&str, &str, &str),
    name: String,
) -> Result<(PathBuf, bool), RunFileOutcome> {
    let fallback_name = name.clone();
    match given_or_picked(given, || save_dialog(title, filter, extension, name)) {
        Ok(path) => Ok((path, false)),
        Err(RunFileOutcome::Cancelled { quick: true }) => {
            unused_path(&fallback_name).map(|path| (path, true)).ok_or(RunFileOutcome::Cancelled { quick: true })
        }
        Err(cancelled) => Err(cancelled),
    }
}

/// The message's words when a file went to the working folder because no dialog answered.
pub(crate) const NO_DIALOG_NOTE: &str =
    " No file dialog answered (no desktop portal is running), so it went to the working folder.";

/// "Save image…" on the `run-file` thread: `captured` as a PNG, written to `given` or where [`figure_path`] says.
pub(crate) fn write_image_job(captured: CapturedImage, given: Option<PathBuf>) -> RunFileOutcome {
    let CapturedImage { name, image } = captured;
    let (path, no_dialog) = match figure_path(given, ("Save the figure as PNG", "PNG image", "png"), name) {
        Ok(picked) => picked,
        Err(outcome) => return outcome,
    };
    let mut encoded = Vec::new();
    if let Err(e) = write_png(&image, &mut encoded) {
        return RunFileOutcome::Failed(format!("{}: cannot encode the PNG: {e}", path.display()));
    }
    match write_atomically(&path, |file| std::io::Write::write_all(file, &encoded)) {
        Ok(()) => RunFileOutcome::ImageSaved { path, size: image.size, no_dialog },
        Err(e) => RunFileOutcome::Failed(format!("{}: cannot write the image: {e}", path.display())),
    }
}
