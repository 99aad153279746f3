//! The `run-file` thread: one file job at a time in the background ("Save run…", "Open run…", "Export data…",
//! "Save image…", "Record animation…"), the native dialogs those jobs ask on it, and how a job ended ([`RunFileOutcome`]), which the app
//! applies on the UI thread, never waiting (`app/files.rs`).

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::time::Instant;

use crate::Lab;
use crate::train::runfile::OpenedRun;

/// How a file job ended.
pub(crate) enum RunFileOutcome {
    /// The run was written to this path.
    Saved {
        /// The file.
        path: PathBuf,
        /// No save dialog could be shown, so it went to the working folder.
        no_dialog: bool,
    },
    /// A plot's data was written to this CSV file ("Export data…").
    Exported {
        /// The file.
        path: PathBuf,
        /// Its rows after the header.
        rows: usize,
        /// No save dialog could be shown, so it went to the working folder.
        no_dialog: bool,
    },
    /// A figure was written to this PNG file ("Save image…").
    ImageSaved {
        /// The file.
        path: PathBuf,
        /// Its width and height in pixels.
        size: [usize; 2],
        /// No save dialog could be shown, so it went to the working folder.
        no_dialog: bool,
    },
    /// A recorded figure was written to this GIF or animated PNG ("Record animation…").
    AnimationSaved {
        /// The file.
        path: PathBuf,
        /// Its frames.
        frames: usize,
        /// Each frame's width and height in pixels.
        size: [usize; 2],
        /// Frames per second.
        fps: f32,
        /// No save dialog could be shown, so it went to the working folder.
        no_dialog: bool,
    },
    /// A run file and its data were read and checked.
    Opened(Box<OpenedRun>),
    /// The dialog was closed without a file; `quick` when it answered at once (no desktop portal).
    Cancelled { quick: bool },
    /// Why it failed.
    Failed(String),
}

/// A file job in progress on the `run-file` thread.
pub(crate) struct RunFileJob {
    outcome: Receiver<RunFileOutcome>,
    /// The lab whose page shows the outcome.
    lab: Lab,
    /// "Saving" or "Opening", for the side panel.
    what: &'static str,
}

/// A dialog closed sooner than this was never shown.
const NO_DIALOG_SECS: f64 = 0.4;

impl RunFileJob {
    /// Runs `job` (`what`, for `lab`'s page) on a new `run-file` thread, which asks `ctx` for a repaint when done; a
    /// panic in `job` is its outcome's failure.
    pub(crate) fn spawn(
        lab: Lab,
        what: &'static str,
        ctx: egui::Context,
        job: impl FnOnce() -> RunFileOutcome + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, rx) = channel();
        std::thread::Builder::new().name("run-file".into()).spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or_else(|panic| {
                RunFileOutcome::Failed(format!("the run file failed: {}", crate::data::job::panic_text(&*panic)))
            });
            let _ = tx.send(outcome);
            ctx.request_repaint();
        })?;
        Ok(Self { outcome: rx, lab, what })
    }

    /// The lab whose page shows the outcome.
    pub(crate) fn lab(&self) -> Lab {
        self.lab
    }

    /// What the thread is doing, in words ("Saving the run…").
    pub(crate) fn what(&self) -> &'static str {
        self.what
    }

    /// The outcome once the thread has finished (never waits).
    pub(crate) fn try_outcome(&self) -> Option<RunFileOutcome> {
        match self.outcome.try_recv() {
            Ok(outcome) => Some(outcome),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(RunFileOutcome::Failed("the run-file thread stopped".into())),
        }
    }
}

/// `path` if given, else what the native dialog returns; when the dialog is closed without a file, the outcome to
/// report (on the `run-file` thread: the dialog blocks).
pub(crate) fn given_or_picked(
    path: Option<PathBuf>,
    dialog: impl FnOnce() -> Option<PathBuf>,
) -> Result<PathBuf, RunFileOutcome> {
    if let Some(path) = path {
        return Ok(path);
    }
    let asked = Instant::now();
    dialog().ok_or_else(|| RunFileOutcome::Cancelled { quick: asked.elapsed().as_secs_f64() < NO_DIALOG_SECS })
}

/// The native save dialog: `title`, one filter (`filter` for files ending in `extension`) and `default_name`;
/// the picked path gets `extension` if it has none. `None` when closed without a file (blocks: call it on a
/// thread).
pub(crate) fn save_dialog(title: &str, filter: &str, extension: &str, default_name: String) -> Option<PathBuf> {
    let mut path = rfd::FileDialog::new()
        .set_title(title)
        .add_filter(filter, &[extension])
        .set_file_name(default_name)
        .save_file()?;
    if path.extension().is_none() {
        path.set_extension(extension);
    }
    Some(path)
}
