//! Seeded random command sequences at the training worker, driving real trainers: the BNN on the built-in red
//! wine and the three flows on two moons. Commands come in any order and quickly (resume, pause, step, reset,
//! learning rates of 0, huge, infinite or NaN, stop), between short sleeps, and workers are dropped and new
//! ones spawned on the other data set (switching data sets), sometimes before they are even built.
//!
//! Checked: nothing panics and the worker never reports an error; every wait ends within [`DEADLINE`] and
//! every sequence within [`SEQUENCE_LIMIT`] (a watchdog turns a deadlock into a failure naming the sequence and
//! its last commands); after each command the worker is in the state the command implies (paused after a
//! pause and no steps taken while paused, exactly one step more after a single step, running after a resume
//! and steps taken, a fresh paused model after a reset, the learning rate in use after setting it, a
//! non-finite event and no step after a NaN or infinite learning rate, unchanged parameters after a step at
//! rate 0); and stopping or dropping the handle ends the thread within [`DEADLINE`].
//!
//! The worker has no query for its state: the test follows its `State` events, and waits until it has handled
//! every command sent so far with a barrier, a learning rate sent for that purpose (a sensible rate of about
//! 1e-3 with a unique last digit), which the worker publishes at once.
//!
//! Eight sequences of 60 operations by default (about 3 s in a release build on 2 cores); `WORKER_SEQUENCES=80`
//! runs 80 (31 s on 2026-11-21, all passing). A mutation check on 2026-11-21: a worker taking two steps per
//! `Step` fails the exact-step check, and one that hangs on `Pause` fails at the barrier's deadline, then at
//! the watchdog (the drop of the hung worker cannot join), instead of hanging the test.

use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bayes_explorer::Lab;
use bayes_explorer::compute::params::FlowParams;
use bayes_explorer::data::prepare::{Prepared, default_spec_for_lab, prepare};
use bayes_explorer::data::{BuiltinFile, SynthKind, SynthSpec};
use bayes_explorer::models::bnn::{BnnConfig, BnnParams, BnnTrainer};
use bayes_explorer::models::flow::{FlowConfig, FlowKind, FlowTrainer};
use bayes_explorer::train::{
    Command, ModelView, RunSnapshot, Trainer, TrainerFactory, Worker, WorkerEvent, WorkerState,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Longest any single wait may take (generous: the test machines have two shared cores).
const DEADLINE: Duration = Duration::from_secs(20);
/// Longest a whole sequence may take before the watchdog calls it a deadlock.
const SEQUENCE_LIMIT: Duration = Duration::from_mins(2);
/// Sequences run, each from its own seed (seeds 0, 1, ...), unless `WORKER_SEQUENCES` says how many.
const SEQUENCES: u64 = 8;
/// Operations per sequence.
const OPERATIONS: usize = 60;

/// Learning rates a user (or a bug) might send: zero, negative, tiny, huge, infinite, NaN.
const ODD_RATES: [f64; 11] =
    [0.0, -1e-3, 1e-12, 1e3, 1e30, 1e38, f64::MAX, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, f64::MIN_POSITIVE];

/// The data sets the runs switch between.
struct Data {
    wine: Arc<Prepared>,
    moons: Arc<Prepared>,
}

impl Data {
    fn load() -> Self {
        let table = BuiltinFile::WineRed.load().expect("red wine");
        let wine = Arc::new(prepare(&table, &default_spec_for_lab(Lab::Bnn, &table)).expect("red wine prepares"));
        let table = SynthSpec { n_points: 600, ..SynthSpec::default_for(SynthKind::Moons) }.generate();
        let moons = Arc::new(prepare(&table, &default_spec_for_lab(Lab::Flow, &table)).expect("moons prepare"));
        Self { wine, moons }
    }
}

/// A trainer for a random lab with small settings and a random (short) number of epochs, so that some runs
/// finish within a sequence and some do not.
fn random_factory(data: &Data, rng: &mut ChaCha8Rng) -> (String, TrainerFactory) {
    let epochs = rng.random_range(1..8);
    let seed = rng.random();
    match rng.random_range(0..4) {
        0 => {
            let config = BnnConfig { epochs, seed, predictive_samples: 10, ..BnnConfig::default() };
            let wine = Arc::clone(&data.wine);
            let factory: TrainerFactory =
                Box::new(move || Ok(Box::new(BnnTrainer::new(config.clone(), &wine)?) as Box<dyn Trainer>));
            (format!("bnn, {epochs} epochs"), factory)
        }
        k => {
            let kind = [FlowKind::Affine, FlowKind::RealNvp, FlowKind::Maf][k - 1];
            let config = FlowConfig {
                layers: 2,
                hidden: vec![16, 16],
                batch_size: 64,
                epochs,
                seed,
                ..FlowConfig::default_for(kind)
            };
            let moons = Arc::clone(&data.moons);
            let factory: TrainerFactory =
                Box::new(move || Ok(Box::new(FlowTrainer::new(config.clone(), &moons)?) as Box<dyn Trainer>));
            (format!("{kind:?} flow, {epochs} epochs"), factory)
        }
    }
}

/// The parameters in a model view, without its step or history (compared as numbers: 0 equals -0).
#[derive(Debug, PartialEq)]
enum Params {
    Bnn(Arc<BnnParams>),
    Flow(Arc<FlowParams>),
}

fn view_params(view: Option<&ModelView>) -> Params {
    match view {
        Some(ModelView::Bnn { view, .. }) => Params::Bnn(Arc::clone(&view.params)),
        Some(ModelView::Flow { params, .. }) => Params::Flow(Arc::clone(params)),
        other => panic!("expected a BNN or flow view, got {other:?}"),
    }
}

/// True when the guard found the loss non-finite (the parameters then go back to those of an earlier step): it names
/// a quantity of the forward pass ("layer 2's output", "the KL term") or the loss itself, where the optimiser names
/// a gradient ("the gradient of layer 1 weights") or a variable ("layer 1 weights") and leaves the parameters as
/// they were.
fn at_the_loss(location: &str) -> bool {
    !location.starts_with("the gradient of") && (location.starts_with("the ") || location.contains("'s "))
}

/// Where a sequence is, for the watchdog's message.
type Log = Arc<Mutex<Vec<String>>>;

/// One worker and what its events said.
struct Run {
    worker: Worker,
    name: String,
    /// The state of the latest `State` event.
    state: WorkerState,
    /// `Ready` events (one per build).
    readies: usize,
    /// `NonFinite` events.
    non_finite: usize,
    /// Where the latest one was.
    last_location: String,
    /// Barriers sent, for unique learning rates.
    barriers: u64,
    /// `Finished` events.
    finishes: usize,
    log: Log,
}

impl Run {
    fn spawn(name: String, factory: TrainerFactory, start_running: bool, log: Log) -> Self {
        let worker = Worker::spawn("test-commands", factory, start_running, || {}).expect("spawn the worker");
        let mut run = Self {
            worker,
            name,
            state: WorkerState::Starting,
            readies: 0,
            non_finite: 0,
            last_location: String::new(),
            barriers: 0,
            finishes: 0,
            log,
        };
        run.note(format!("spawned {} (running: {start_running})", run.name));
        run.wait_until("the model is built", |r| r.readies == 1 && r.state != WorkerState::Starting);
        let expected = if start_running { WorkerState::Running } else { WorkerState::Paused };
        assert!(
            run.state == expected || (start_running && run.state != WorkerState::Failed),
            "{}: {:?} after the build",
            run.name,
            run.state
        );
        run
    }

    fn note(&self, what: String) {
        let mut log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        log.push(what);
        let excess = log.len().saturating_sub(30);
        log.drain(..excess);
    }

    fn apply(&mut self, event: WorkerEvent) {
        match event {
            WorkerEvent::State(state) => self.state = state,
            WorkerEvent::Ready => self.readies += 1,
            WorkerEvent::NonFinite { location, step } => {
                assert!(!location.is_empty() && step >= 1, "{}: non-finite in {location:?} at step {step}", self.name);
                self.non_finite += 1;
                self.last_location = location;
            }
            WorkerEvent::Error(message) => panic!("{}: the worker reported an error: {message}", self.name),
            WorkerEvent::Finished(_) => self.finishes += 1,
            WorkerEvent::EpochDone(_) => {}
            WorkerEvent::Checkpoint(c) => {
                assert_eq!(c.state.epochs.step, c.snapshot.step, "{}: a checkpoint between two steps", self.name);
            }
            WorkerEvent::CheckpointFailed(why) => panic!("{}: a checkpoint failed: {why}", self.name),
            WorkerEvent::LowestHeldOut { epoch, view } => {
                // An epoch's end, once a whole window of epochs is in.
                assert!(epoch >= 5 && view.step() >= epoch as u64, "{}: the lowest at epoch {epoch}", self.name);
            }
        }
    }

    fn pump(&mut self) {
        for event in self.worker.drain_events(usize::MAX) {
            self.apply(event);
        }
    }

    fn wait_until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            self.pump();
            if done(self) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: timed out after {DEADLINE:?} waiting for {what} (state {:?})",
                self.name,
                self.state
            );
            if let Some(event) = self.worker.wait_event(Duration::from_millis(2)) {
                self.apply(event);
            }
        }
    }

    /// The latest snapshot once the worker has handled every command sent so far (see the module's docs).
    fn sync(&mut self) -> RunSnapshot {
        self.barriers += 1;
        let marker = 1e-3 * (1.0 + self.barriers as f64 * 1e-9);
        self.worker.send(Command::SetLearningRate(marker));
        self.snapshot_when("the barrier", |s| s.learning_rate.to_bits() == marker.to_bits())
    }

    fn snapshot_when(&mut self, what: &str, done: impl Fn(&RunSnapshot) -> bool) -> RunSnapshot {
        let deadline = Instant::now() + DEADLINE;
        loop {
            self.pump();
            if let Some(snapshot) = self.worker.snapshot().filter(&done) {
                self.pump();
                return snapshot;
            }
            assert!(
                Instant::now() < deadline,
                "{}: timed out after {DEADLINE:?} waiting for {what} (state {:?})",
                self.name,
                self.state
            );
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    /// Sends `command` and checks that the worker does what it implies.
    fn checked(&mut self, command: &Command) {
        let before = self.sync();
        let (state, non_finite, readies) = (self.state, self.non_finite, self.readies);
        self.note(format!("{command:?} in state {state:?} at step {}", before.step));
        self.worker.send(command.clone());
        match command {
            Command::Checkpoint => {}
            Command::Pause => {
                let after = self.sync();
                match state {
                    WorkerState::Paused | WorkerState::Finished => assert_eq!(after.step, before.step, "{}", self.name),
                    _ => {}
                }
                assert!(
                    matches!(self.state, WorkerState::Paused | WorkerState::Finished),
                    "{}: {:?}",
                    self.name,
                    self.state
                );
                std::thread::sleep(Duration::from_millis(15));
                assert_eq!(self.sync().step, after.step, "{}: a step was taken while paused", self.name);
            }
            Command::Step => {
                let after = self.sync();
                if state == WorkerState::Paused {
                    let taken = u64::from(self.non_finite == non_finite);
                    assert_eq!(after.step, before.step + taken, "{}: one step from pause", self.name);
                } else if state == WorkerState::Finished {
                    assert_eq!(after.step, before.step, "{}: a step after the end", self.name);
                }
                assert!(
                    matches!(self.state, WorkerState::Paused | WorkerState::Finished),
                    "{}: {:?}",
                    self.name,
                    self.state
                );
            }
            Command::Resume => {
                let after = self.sync();
                if state == WorkerState::Finished {
                    assert_eq!(self.state, WorkerState::Finished, "{}: resumed after the end", self.name);
                    return;
                }
                // Running, unless the run ended or met a non-finite value (which pauses it) meanwhile.
                let stopped_itself = self.state == WorkerState::Finished || self.non_finite > non_finite;
                assert!(self.state == WorkerState::Running || stopped_itself, "{}: {:?}", self.name, self.state);
                self.wait_until("progress while running", |r| {
                    r.state != WorkerState::Running || r.worker.snapshot().is_some_and(|s| s.step > after.step)
                });
            }
            Command::Reset => {
                let after = self.sync();
                assert_eq!(self.readies, readies + 1, "{}: a reset builds a fresh model", self.name);
                assert_eq!(self.state, WorkerState::Paused, "{}: a reset model waits", self.name);
                assert_eq!((after.step, after.epoch, after.history.len()), (0, 0, 0), "{}", self.name);
            }
            Command::SetLearningRate(rate) => self.odd_rate_step(*rate),
            Command::Stop => unreachable!("stopping ends the run; see `stop`"),
        }
    }

    /// After `SetLearningRate(rate)`: the rate is in use. From a pause, one step at it is then either refused
    /// with a non-finite event, leaving the step count (and, when a parameter or gradient was at fault, the
    /// parameters) as they were, which an infinite or NaN rate must cause; or it counts, and at rate 0 leaves
    /// the parameters as they were.
    fn odd_rate_step(&mut self, rate: f64) {
        let before = self.snapshot_when("the new rate", |s| s.learning_rate.to_bits() == rate.to_bits());
        if self.state != WorkerState::Paused {
            return;
        }
        let non_finite = self.non_finite;
        self.worker.send(Command::Step);
        let after = self.sync();
        let params_before = view_params(before.model.as_ref());
        let params_after = view_params(after.model.as_ref());
        if self.non_finite > non_finite {
            assert_eq!(after.step, before.step, "{}: a refused step at rate {rate} counted", self.name);
            if !at_the_loss(&self.last_location) {
                assert!(params_after == params_before, "{}: a refused step changed the parameters", self.name);
            }
        } else {
            assert!(rate.is_finite(), "{}: a step at rate {rate} was not refused", self.name);
            assert_eq!(after.step, before.step + 1, "{}: one step at rate {rate}", self.name);
            if rate == 0.0 {
                assert!(params_after == params_before, "{}: a step at rate 0 changed the parameters", self.name);
            }
        }
    }

    /// Sends `Stop`: the thread ends, says so, and ignores later commands.
    fn stop(mut self) {
        self.note(format!("stop in state {:?}", self.state));
        self.worker.send(Command::Stop);
        let deadline = Instant::now() + DEADLINE;
        while !self.worker.is_finished() {
            assert!(Instant::now() < deadline, "{}: the thread did not end after Stop", self.name);
            std::thread::sleep(Duration::from_millis(1));
        }
        self.pump();
        assert_eq!(self.state, WorkerState::Stopped, "{}", self.name);
        self.worker.send(Command::Resume);
        self.worker.send(Command::Step);
        self.finish();
    }

    /// Drops the handle, which must stop and join the thread promptly.
    fn finish(self) {
        let started = Instant::now();
        let name = self.name.clone();
        let summary = format!(
            "drop {name} in state {:?}: {} builds, {} barriers, {} non-finite steps refused, {} finished",
            self.state, self.readies, self.barriers, self.non_finite, self.finishes
        );
        eprintln!("{summary}");
        self.note(summary);
        drop(self.worker);
        assert!(started.elapsed() < DEADLINE, "{name}: dropping the worker took {:?}", started.elapsed());
    }
}

/// A command as a user clicking fast might send it.
fn random_command(rng: &mut ChaCha8Rng) -> Command {
    match rng.random_range(0..12) {
        0..3 => Command::Resume,
        3..6 => Command::Pause,
        6..9 => Command::Step,
        9 => Command::Reset,
        10 => Command::SetLearningRate(ODD_RATES[rng.random_range(0..ODD_RATES.len())]),
        _ => Command::SetLearningRate([1e-3, 1e-2, 3e-4][rng.random_range(0..3)]),
    }
}

/// A new run on a random lab, running or paused; sometimes after one dropped at once, before it was built.
fn switch(data: &Data, rng: &mut ChaCha8Rng, seed: u64, log: &Log) -> Run {
    if rng.random_bool(0.3) {
        let (name, factory) = random_factory(data, rng);
        let worker = Worker::spawn("test-commands", factory, rng.random_bool(0.5), || {}).expect("spawn");
        let started = Instant::now();
        drop(worker);
        assert!(started.elapsed() < DEADLINE, "{name}: dropping a worker while it builds took {:?}", started.elapsed());
    }
    let (name, factory) = random_factory(data, rng);
    Run::spawn(format!("sequence {seed}: {name}"), factory, rng.random_bool(0.5), Arc::clone(log))
}

fn run_sequence(seed: u64, data: &Data, log: &Log) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut run = switch(data, &mut rng, seed, log);
    for _ in 0..OPERATIONS {
        match rng.random_range(0..100) {
            // A burst: commands in any order, some with a short sleep between them, then a consistent state.
            0..35 => {
                let commands: Vec<Command> = (0..rng.random_range(1..10)).map(|_| random_command(&mut rng)).collect();
                run.note(format!("burst {commands:?}"));
                for command in commands {
                    run.worker.send(command);
                    if rng.random_bool(0.5) {
                        std::thread::sleep(Duration::from_micros(rng.random_range(0..3000)));
                    }
                }
                let snapshot = run.sync();
                let state = run.state;
                assert!(
                    matches!(state, WorkerState::Paused | WorkerState::Running | WorkerState::Finished),
                    "{}: {state:?} after a burst",
                    run.name
                );
                assert!(snapshot.step <= (snapshot.total_epochs * snapshot.steps_per_epoch) as u64, "{snapshot:?}");
            }
            35..88 => {
                let command = random_command(&mut rng);
                run.checked(&command);
            }
            88..94 => {
                run.finish();
                run = switch(data, &mut rng, seed, log);
            }
            94..97 => {
                run.stop();
                run = switch(data, &mut rng, seed, log);
            }
            _ => std::thread::sleep(Duration::from_micros(rng.random_range(0..5000))),
        }
    }
    run.finish();
}

#[test]
fn random_command_sequences_never_deadlock_panic_or_lose_their_state() {
    let data = Arc::new(Data::load());
    let sequences = std::env::var("WORKER_SEQUENCES").ok().and_then(|n| n.parse().ok()).unwrap_or(SEQUENCES);
    for seed in 0..sequences {
        let log: Log = Arc::default();
        let (done_tx, done_rx) = channel();
        let sequence = {
            let (data, log) = (Arc::clone(&data), Arc::clone(&log));
            std::thread::Builder::new()
                .name(format!("sequence-{seed}"))
                .spawn(move || {
                    run_sequence(seed, &data, &log);
                    let _ = done_tx.send(());
                })
                .expect("spawn the sequence")
        };
        match done_rx.recv_timeout(SEQUENCE_LIMIT) {
            Ok(()) => sequence.join().expect("the sequence ended"),
            Err(RecvTimeoutError::Disconnected) => {
                if let Err(panic) = sequence.join() {
                    std::panic::resume_unwind(panic);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                let log = log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                panic!("sequence {seed} did not end within {SEQUENCE_LIMIT:?} (a deadlock?); its last steps: {log:#?}");
            }
        }
    }
}
