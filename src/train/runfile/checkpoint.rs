//! Checkpoints while a run trains: [`CheckpointWriter`], a `checkpoint` thread that turns the worker's
//! [`Checkpoint`]s (plain data, taken between two steps) into run files, atomically, so that training never waits
//! on the disk. The newest checkpoint replaces one still waiting; each write's outcome comes back over a channel.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{AnyRun, DatasetRecord, RunConfig};
use crate::data::prepare::DataSpec;
use crate::data::{LoadRequest, Table};
use crate::train::Checkpoint;

/// How one checkpoint's write went.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointOutcome {
    /// The run file written (or not).
    pub path: PathBuf,
    /// The step the checkpoint was taken at.
    pub step: u64,
    /// Epochs done at that step.
    pub epoch: usize,
    /// `Err` with the message (naming the file) when it could not be written; the old file is then unchanged.
    pub result: Result<(), String>,
}

/// The `checkpoint` thread of one run. Dropping it writes what is still waiting, then joins the thread.
pub struct CheckpointWriter {
    jobs: Option<Sender<(Arc<Checkpoint>, PathBuf)>>,
    outcomes: Receiver<CheckpointOutcome>,
    handle: Option<JoinHandle<()>>,
}

/// What every checkpoint of a run shares.
struct RunData {
    config: RunConfig,
    table: Arc<Table>,
    request: LoadRequest,
    spec: DataSpec,
    /// The dataset's record, hashed once on the thread when the first checkpoint comes.
    dataset: Option<DatasetRecord>,
}

impl CheckpointWriter {
    /// Starts the thread for a run of `config` on `table` (loaded by `request`, prepared by `spec`); `done` is
    /// called after each write (a repaint).
    pub fn spawn(
        config: RunConfig,
        table: Arc<Table>,
        request: LoadRequest,
        spec: DataSpec,
        done: impl Fn() + Send + 'static,
    ) -> std::io::Result<Self> {
        let (job_tx, job_rx) = channel::<(Arc<Checkpoint>, PathBuf)>();
        let (outcome_tx, outcome_rx) = channel();
        let mut data = RunData { config, table, request, spec, dataset: None };
        let handle = std::thread::Builder::new().name("checkpoint".into()).spawn(move || {
            while let Ok(mut job) = job_rx.recv() {
                // Only the newest of the checkpoints waiting matters.
                while let Ok(newer) = job_rx.try_recv() {
                    job = newer;
                }
                let (checkpoint, path) = job;
                // Reported by whoever reads the outcome (the lab's message, the command line's warning).
                let result = data.write(&checkpoint, &path);
                let snapshot = &checkpoint.snapshot;
                let outcome = CheckpointOutcome { path, step: snapshot.step, epoch: snapshot.epoch, result };
                let _ = outcome_tx.send(outcome);
                done();
            }
        })?;
        Ok(Self { jobs: Some(job_tx), outcomes: outcome_rx, handle: Some(handle) })
    }

    /// Writes `checkpoint` as the run file `path` (and its weights) on the thread.
    pub fn write(&self, checkpoint: Arc<Checkpoint>, path: PathBuf) {
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send((checkpoint, path));
        }
    }

    /// The outcomes of the writes finished since the last call. Never blocks.
    #[must_use]
    pub fn outcomes(&self) -> Vec<CheckpointOutcome> {
        self.outcomes.try_iter().collect()
    }

    /// Writes what is still waiting, ends the thread and returns the outcomes not yet read (the end of a run).
    #[must_use]
    pub fn finish(mut self) -> Vec<CheckpointOutcome> {
        self.jobs = None;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
        self.outcomes()
    }

    /// Waits up to `timeout` for the next write to finish (the command line and tests, never the UI).
    #[must_use]
    pub fn wait(&self, timeout: Duration) -> Option<CheckpointOutcome> {
        self.outcomes.recv_timeout(timeout).ok()
    }
}

impl Drop for CheckpointWriter {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl RunData {
    fn write(&mut self, checkpoint: &Checkpoint, path: &std::path::Path) -> Result<(), String> {
        let file = path.display();
        let dataset = self.dataset.get_or_insert_with(|| DatasetRecord::of(&self.table, &self.request)).clone();
        let run = AnyRun::from_snapshot_with_dataset(
            self.config.clone(),
            &checkpoint.snapshot,
            &self.table,
            dataset,
            self.spec.clone(),
        )
        .and_then(|run| run.with_state(Arc::clone(&checkpoint.state)))
        .map_err(|e| format!("{file}: cannot write the checkpoint: {e}"))?;
        run.save(path).map_err(|e| format!("cannot write the checkpoint: {e}"))
    }
}
