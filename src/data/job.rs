//! Loading a dataset on a background thread, with progress and cancellation, so the window never freezes.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError, channel};

use serde::{Deserialize, Serialize};

use crate::data::csv::{CsvError, CsvOptions, Progress, SharedProgress, read_path};
use crate::data::source::{BuiltinFile, SynthSpec};
use crate::data::table::Table;

/// What to load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LoadRequest {
    /// A CSV file on disk.
    File { path: PathBuf, options: CsvOptions },
    /// An embedded file.
    Builtin(BuiltinFile),
    /// A generated 2-D set.
    Synth(SynthSpec),
}

impl LoadRequest {
    /// Short description for the status bar.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::File { path, .. } => crate::data::csv::display_name(path),
            Self::Builtin(b) => b.label().to_owned(),
            Self::Synth(s) => s.describe(),
        }
    }

    /// Loads on the calling thread.
    pub fn run(&self, progress: &dyn Progress) -> Result<Table, CsvError> {
        match self {
            Self::File { path, options } => read_path(path, options, progress),
            Self::Builtin(b) => b.load(),
            Self::Synth(s) => Ok(s.generate()),
        }
    }
}

/// A load in progress on its own thread.
pub struct LoadJob {
    /// What is being loaded.
    pub request: LoadRequest,
    progress: Arc<SharedProgress>,
    result: Receiver<Result<Table, CsvError>>,
}

impl LoadJob {
    /// Starts loading; `notify` is called (from the loader thread) when the result is ready.
    ///
    /// A panic inside the loader is caught and reported as an error.
    pub fn spawn(request: LoadRequest, notify: impl Fn() + Send + 'static) -> Self {
        let progress = Arc::new(SharedProgress::default());
        let (tx, rx) = channel();
        let (req, prog) = (request.clone(), progress.clone());
        let spawned = std::thread::Builder::new().name("dataset-loader".into()).spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| req.run(prog.as_ref())));
            let result = outcome.unwrap_or_else(|panic| {
                Err(CsvError::Io {
                    file: req.describe(),
                    message: format!("the loader failed: {}", panic_text(&*panic)),
                })
            });
            // The receiver may be gone if the UI dropped the job; nothing to do then.
            let _ = tx.send(result);
            notify();
        });
        if let Err(e) = spawned {
            let (tx, rx2) = channel();
            let _ =
                tx.send(Err(CsvError::Io { file: request.describe(), message: format!("cannot start a thread: {e}") }));
            return Self { request, progress, result: rx2 };
        }
        Self { request, progress, result: rx }
    }

    /// Fraction done, 0 to 1.
    #[must_use]
    pub fn fraction(&self) -> f32 {
        self.progress.fraction()
    }

    /// Asks the loader to stop; its result will be [`CsvError::Cancelled`].
    pub fn cancel(&self) {
        self.progress.cancel.store(true, Ordering::Relaxed);
    }

    /// The result, once it is ready. Never blocks.
    #[must_use]
    pub fn try_take(&self) -> Option<Result<Table, CsvError>> {
        match self.result.try_recv() {
            Ok(r) => Some(r),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                Some(Err(CsvError::Io { file: self.request.describe(), message: "the loader stopped".into() }))
            }
        }
    }

    /// Waits for the result (for the command line and tests, never the UI).
    pub fn wait(self) -> Result<Table, CsvError> {
        self.result.recv().unwrap_or_else(|_| {
            Err(CsvError::Io { file: self.request.describe(), message: "the loader stopped".into() })
        })
    }
}

/// The message of a caught panic.
#[must_use]
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
