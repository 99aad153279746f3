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

/// A load in progress on its own thread: the table read, then made into a `T` on the same thread (the table itself
/// by default; a lab's data ready to use, with its rows checked, for the window).
pub struct LoadJob<T = Table> {
    /// What is being loaded.
    pub request: LoadRequest,
    progress: Arc<SharedProgress>,
    result: Receiver<Result<T, CsvError>>,
}

impl LoadJob<Table> {
    /// Starts loading; `notify` is called (from the loader thread) when the result is ready.
    ///
    /// A panic inside the loader is caught and reported as an error.
    pub fn spawn(request: LoadRequest, notify: impl Fn() + Send + 'static) -> Self {
        Self::spawn_then(request, |table| table, notify)
    }
}

impl<T: Send + 'static> LoadJob<T> {
    /// Starts loading, then `then` makes the table into the result on the loader thread (work the UI thread must
    /// not wait for); `notify` is called (from that thread) when the result is ready.
    pub fn spawn_then(
        request: LoadRequest,
        then: impl FnOnce(Table) -> T + Send + 'static,
        notify: impl Fn() + Send + 'static,
    ) -> Self {
        let req = request.clone();
        Self::spawn_work(request, move |progress| req.run(progress).map(then), notify)
    }

    /// Runs `work` on a loader thread, as a load of `request` (its name in the status bar and in errors): the
    /// same progress, cancellation (a job cancelled is [`CsvError::Cancelled`] even where its work ended) and catching
    /// of a panic as a load. For work on data already read.
    pub fn spawn_work(
        request: LoadRequest,
        work: impl FnOnce(&dyn Progress) -> Result<T, CsvError> + Send + 'static,
        notify: impl Fn() + Send + 'static,
    ) -> Self {
        let progress = Arc::new(SharedProgress::default());
        let (tx, rx) = channel();
        let (file, prog) = (request.describe(), progress.clone());
        let spawned = std::thread::Builder::new().name("dataset-loader".into()).spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(prog.as_ref())));
            let result = match outcome {
                // Cancelled while the work ended: what it made is not wanted.
                _ if prog.cancelled() => Err(CsvError::Cancelled { file }),
                Ok(result) => result,
                Err(panic) => {
                    Err(CsvError::Io { file, message: format!("the loader failed: {}", panic_text(&*panic)) })
                }
            };
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

    /// Whether [`cancel`](Self::cancel) was called.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.progress.cancelled()
    }

    /// The result, once it is ready. Never blocks.
    #[must_use]
    pub fn try_take(&self) -> Option<Result<T, CsvError>> {
        match self.result.try_recv() {
            Ok(r) => Some(r),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                Some(Err(CsvError::Io { file: self.request.describe(), message: "the loader stopped".into() }))
            }
        }
    }

    /// Waits for the result (for the command line and tests, never the UI).
    pub fn wait(self) -> Result<T, CsvError> {
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

#[cfg(test)]
mod tests {
    use std::sync::mpsc::channel;

    use super::{LoadJob, LoadRequest};
    use crate::data::csv::CsvError;
    use crate::data::source::BuiltinFile;

    #[test]
    fn the_table_is_made_into_the_result_on_the_loader_thread() {
        let job = LoadJob::spawn_then(
            LoadRequest::Builtin(BuiltinFile::WineRed),
            |table| (table.n_rows(), std::thread::current().name().map(str::to_owned)),
            || {},
        );
        let (rows, thread) = job.wait().expect("the red wine");
        assert_eq!(rows, 1599);
        assert_eq!(thread.as_deref(), Some("dataset-loader"));
    }

    #[test]
    fn work_cancelled_before_it_ends_is_cancelled_and_a_panic_is_an_error() {
        let (go, wait) = channel::<()>();
        let job = LoadJob::spawn_work(
            LoadRequest::Builtin(BuiltinFile::WineRed),
            move |_| {
                let _ = wait.recv();
                Ok(7)
            },
            || {},
        );
        job.cancel();
        go.send(()).expect("the work waits");
        assert!(matches!(job.wait(), Err(CsvError::Cancelled { .. })), "what a cancelled job made is not wanted");

        let job = LoadJob::<usize>::spawn_work(LoadRequest::Builtin(BuiltinFile::WineRed), |_| Ok(7), || {});
        assert_eq!(job.wait().ok(), Some(7), "not cancelled: the work's result");

        let job =
            LoadJob::<usize>::spawn_work(LoadRequest::Builtin(BuiltinFile::WineRed), |_| panic!("no rows"), || {});
        match job.wait() {
            Err(CsvError::Io { message, .. }) => assert_eq!(message, "the loader failed: no rows"),
            other => panic!("a panic is an error naming it: {other:?}"),
        }
    }
}
