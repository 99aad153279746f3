//! The training worker's lifecycle: start paused, step, resume, pause, reset, learning-rate change,
//! stop on drop, a panic turned into an error, and the NaN guard keeping the last good parameters.

#![allow(clippy::float_cmp, reason = "values read from files and set by hand are compared exactly on purpose")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bayes_explorer::compute::params::FlowParams;
use bayes_explorer::data::BuiltinFile;
use bayes_explorer::data::prepare::{DataSpec, Role, prepare};
use bayes_explorer::models::ModelView;
use bayes_explorer::models::bnn::{BnnConfig, BnnTrainer, Posterior};
use bayes_explorer::train::{
    Command, EpochRecord, HELD_OUT_WINDOW, RunSnapshot, TrainError, Trainer, TrainerFactory, Worker, WorkerEvent,
    WorkerState, lowest_held_out,
};

/// A trainer that counts steps, for checking the protocol without a model; it panics at `panic_at`.
struct Counter {
    steps: u64,
    steps_per_epoch: u64,
    epochs: usize,
    lr: f64,
    panic_at: Option<u64>,
    history: Vec<EpochRecord>,
}

impl Trainer for Counter {
    fn step(&mut self) -> Result<(), TrainError> {
        self.steps += 1;
        assert!(Some(self.steps) != self.panic_at, "deliberate panic at step {}", self.steps);
        if self.steps.is_multiple_of(self.steps_per_epoch) {
            let epoch = self.history.len() + 1;
            self.history.push(EpochRecord { epoch, metrics: vec![("train_loss".into(), 1.0 / epoch as f64)] });
        }
        std::thread::sleep(Duration::from_micros(200));
        Ok(())
    }
    fn finished(&self) -> bool {
        self.history.len() >= self.epochs
    }
    fn snapshot(&self) -> RunSnapshot {
        RunSnapshot {
            epoch: self.history.len(),
            total_epochs: self.epochs,
            step: self.steps,
            steps_per_epoch: self.steps_per_epoch as usize,
            learning_rate: self.lr,
            history: self.history.clone(),
            ..RunSnapshot::default()
        }
    }
    fn set_learning_rate(&mut self, learning_rate: f64) {
        self.lr = learning_rate;
    }
    fn epochs_done(&self) -> usize {
        self.history.len()
    }
}

fn counter(epochs: usize, panic_at: Option<u64>, builds: Arc<AtomicUsize>) -> TrainerFactory {
    Box::new(move || {
        builds.fetch_add(1, Ordering::SeqCst);
        Ok(Box::new(Counter { steps: 0, steps_per_epoch: 10, epochs, lr: 0.1, panic_at, history: Vec::new() })
            as Box<dyn Trainer>)
    })
}

/// Waits (bounded) for an event matching `pred`, returning every event seen on the way.
fn wait_for(worker: &Worker, what: &str, pred: impl Fn(&WorkerEvent) -> bool) -> Vec<WorkerEvent> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Some(e) = worker.wait_event(Duration::from_millis(50)) {
            let hit = pred(&e);
            seen.push(e);
            if hit {
                return seen;
            }
        }
    }
    panic!("timed out waiting for {what}; saw {seen:?}");
}

fn state_is(s: WorkerState) -> impl Fn(&WorkerEvent) -> bool {
    move |e| *e == WorkerEvent::State(s)
}

#[test]
fn start_paused_step_resume_pause_reset_stop() {
    let builds = Arc::new(AtomicUsize::new(0));
    let repaints = Arc::new(AtomicUsize::new(0));
    let r = repaints.clone();
    let worker = Worker::spawn("test-worker", counter(1000, None, builds.clone()), false, move || {
        r.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    wait_for(&worker, "paused after build", state_is(WorkerState::Paused));
    assert_eq!(worker.snapshot().unwrap().step, 0);

    worker.send(Command::Step);
    worker.send(Command::Step);
    worker.send(Command::Step);
    let deadline = Instant::now() + Duration::from_secs(10);
    while worker.snapshot().unwrap().step < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(worker.snapshot().unwrap().step, 3, "three single steps");

    worker.send(Command::Resume);
    wait_for(&worker, "running", state_is(WorkerState::Running));
    wait_for(&worker, "an epoch", |e| matches!(e, WorkerEvent::EpochDone(_)));
    worker.send(Command::Pause);
    wait_for(&worker, "paused", state_is(WorkerState::Paused));
    let paused_at = worker.snapshot().unwrap().step;
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(worker.snapshot().unwrap().step, paused_at, "no steps while paused");
    assert!(paused_at >= 10, "an epoch (10 steps) ran before the pause");

    worker.send(Command::SetLearningRate(0.5));
    let deadline = Instant::now() + Duration::from_secs(10);
    while worker.snapshot().unwrap().learning_rate != 0.5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(worker.snapshot().unwrap().learning_rate, 0.5);

    worker.send(Command::Reset);
    wait_for(&worker, "ready again", |e| *e == WorkerEvent::Ready);
    assert_eq!(builds.load(Ordering::SeqCst), 2, "reset builds a fresh model");
    let deadline = Instant::now() + Duration::from_secs(10);
    while worker.snapshot().unwrap().step != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(worker.snapshot().unwrap().step, 0);
    assert!(repaints.load(Ordering::Relaxed) > 0, "the worker asks for repaints");

    // Dropping the handle stops and joins the thread, even while it runs.
    worker.send(Command::Resume);
    let started = Instant::now();
    drop(worker);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn runs_to_the_end_and_reports_finished() {
    let worker = Worker::spawn("test-finish", counter(3, None, Arc::default()), true, || {}).unwrap();
    let events = wait_for(&worker, "finished", |e| matches!(e, WorkerEvent::Finished(_)));
    let epochs = events.iter().filter(|e| matches!(e, WorkerEvent::EpochDone(_))).count();
    assert_eq!(epochs, 3);
    wait_for(&worker, "finished state", state_is(WorkerState::Finished));
    assert_eq!(worker.snapshot().unwrap().step, 30);
}

/// A trainer with nothing left to train (as a saved run shown as it was) starts finished, whether it was asked to
/// start running or paused, and Resume, Step and Pause leave it so: the window offers no Resume that would only end
/// it. A reset builds it finished again.
#[test]
fn a_run_with_nothing_left_to_train_starts_finished() {
    for start_running in [false, true] {
        let worker = Worker::spawn("test-done", counter(0, None, Arc::default()), start_running, || {}).unwrap();
        let settled = |e: &WorkerEvent| matches!(e, WorkerEvent::State(s) if *s != WorkerState::Starting);
        let mut events = wait_for(&worker, "the state after the build", settled);
        assert_eq!(events.last(), Some(&WorkerEvent::State(WorkerState::Finished)), "start running: {start_running}");
        for command in [Command::Resume, Command::Step, Command::Pause] {
            worker.send(command);
        }
        worker.send(Command::Reset);
        events.extend(wait_for(&worker, "the state after the reset", settled));
        assert_eq!(events.last(), Some(&WorkerEvent::State(WorkerState::Finished)), "{events:?}");
        assert!(!events.contains(&WorkerEvent::State(WorkerState::Running)), "{events:?}");
        assert_eq!(worker.snapshot().unwrap().step, 0, "no step was taken");
    }
}

#[test]
fn a_panic_in_the_worker_becomes_an_error_and_reset_recovers() {
    let worker = Worker::spawn("test-panic", counter(100, Some(5), Arc::default()), true, || {}).unwrap();
    let events = wait_for(&worker, "an error", |e| matches!(e, WorkerEvent::Error(_)));
    let Some(WorkerEvent::Error(message)) = events.last() else { unreachable!() };
    assert!(message.contains("panicked") && message.contains("deliberate panic at step 5"), "{message}");
    wait_for(&worker, "failed state", state_is(WorkerState::Failed));
    assert!(!worker.is_finished(), "the thread survives the panic");
    worker.send(Command::Reset);
    wait_for(&worker, "ready after reset", |e| *e == WorkerEvent::Ready);
}

#[test]
fn a_failing_builder_is_reported() {
    let factory: TrainerFactory = Box::new(|| Err(TrainError::Data("no rows".into())));
    let worker = Worker::spawn("test-build", factory, true, || {}).unwrap();
    let events = wait_for(&worker, "an error", |e| matches!(e, WorkerEvent::Error(_)));
    assert_eq!(events.last(), Some(&WorkerEvent::Error("cannot build the model: no rows".into())));
}

fn wine() -> Arc<bayes_explorer::data::Prepared> {
    let table = BuiltinFile::WineRed.load().unwrap();
    let mut spec = DataSpec::default_for(&table);
    spec.set_output(11, Role::Target);
    Arc::new(prepare(&table, &spec).unwrap())
}

/// The BNN's deterministic baseline (plain weights, squared error): the course's "baseline" row.
fn baseline(config: BnnConfig) -> BnnConfig {
    BnnConfig { posterior: Posterior::Deterministic, ..config }
}

/// The baseline's predictions for rows `x` of the wine's 11 features.
fn predict(trainer: &BnnTrainer, x: &[f32]) -> Vec<f32> {
    // A deterministic network's one weight sample is its weights.
    trainer.params().unwrap().predict_samples_cpu(x, x.len() / 11, 1, 0)
}

#[test]
fn nan_guard_pauses_and_keeps_the_last_good_parameters() {
    let data = wine();
    let config = baseline(BnnConfig {
        learning_rate: 1e30,
        optimizer: bayes_explorer::compute::cpu::optim::OptimizerKind::Adam,
        activation: bayes_explorer::compute::Activation::Relu,
        ..BnnConfig::default()
    });
    let mut trainer = BnnTrainer::new(config, &data).unwrap();
    let probe = &data.x_test[..11 * 5];
    // Predictions before each step: the parameters at which that step measured its loss.
    let mut before_step = Vec::new();
    let mut failure = None;
    for _ in 0..50 {
        before_step.push(predict(&trainer, probe));
        if let Err(e) = trainer.step() {
            failure = Some(e);
            break;
        }
    }
    let Some(TrainError::NonFinite { location, step }) = failure else {
        panic!("a learning rate of 1e30 must blow up, got {failure:?}")
    };
    assert!(step >= 1 && !location.is_empty(), "{location} at {step}");
    // The failing step found a non-finite loss at the parameters the step before it produced; the guard
    // goes back to the parameters at which that earlier step still measured a finite loss.
    assert!(before_step.len() >= 2, "the first step of a fresh network has a finite loss");
    let last_good = &before_step[before_step.len() - 2];
    assert_eq!(&predict(&trainer, probe), last_good, "parameters are the last good ones");
    assert!(last_good.iter().all(|v| v.is_finite()));
    // Lowering the learning rate lets training continue from there.
    trainer.set_learning_rate(1e-3);
    trainer.step().expect("a small learning rate trains again");
}

#[test]
fn the_baseline_learns_wine_quality() {
    let data = wine();
    let config = baseline(BnnConfig { epochs: 100, ..BnnConfig::default() });
    let mut trainer = BnnTrainer::new(config, &data).unwrap();
    while !trainer.finished() {
        trainer.step().unwrap();
    }
    let last = trainer.snapshot().history.last().cloned().unwrap();
    let (test_rmse, mean_rmse) = (last.get("test_rmse").unwrap(), last.get("mean_predictor_test_rmse").unwrap());
    assert!(test_rmse < mean_rmse, "the network ({test_rmse}) must beat predicting the mean ({mean_rmse})");
}

/// A trainer whose held-out figure follows `curve`, one value an epoch of four steps, and whose model is its step.
struct HeldOut {
    steps: u64,
    curve: Vec<f64>,
    history: Vec<EpochRecord>,
}

impl Trainer for HeldOut {
    fn step(&mut self) -> Result<(), TrainError> {
        self.steps += 1;
        if self.steps.is_multiple_of(4) {
            let epoch = self.history.len() + 1;
            self.history.push(EpochRecord { epoch, metrics: vec![("held".into(), self.curve[epoch - 1])] });
        }
        Ok(())
    }
    fn finished(&self) -> bool {
        self.history.len() >= self.curve.len()
    }
    fn snapshot(&self) -> RunSnapshot {
        RunSnapshot {
            epoch: self.history.len(),
            total_epochs: self.curve.len(),
            step: self.steps,
            steps_per_epoch: 4,
            history: self.history.clone(),
            ..RunSnapshot::default()
        }
    }
    fn set_learning_rate(&mut self, _: f64) {}
    fn epochs_done(&self) -> usize {
        self.history.len()
    }
    fn model_view(&self) -> Option<ModelView> {
        Some(ModelView::Flow { step: self.steps, params: Arc::new(FlowParams { dim: 2, layers: Vec::new() }) })
    }
    fn held_out_metric(&self) -> Option<&'static str> {
        Some("held")
    }
}

/// The worker sends the model of each epoch's end that is the held-out curve's lowest so far (averaged over five
/// epochs, as the overfitting note reads it), once each and only those: the views keep the very model the note names,
/// which the snapshots, carrying the latest model only, may never have shown.
#[test]
fn the_model_at_the_lowest_held_out_figure_so_far_is_sent_at_its_epochs_end() {
    // Falling to epoch 24, then rising, with an epoch's wobble throughout.
    let curve: Vec<f64> = (1..=60)
        .map(|e| {
            let e = f64::from(e);
            let wobble = 0.02 * (e * 1.7).sin();
            (if e <= 24.0 { 2.7 - 0.01 * e } else { 2.46 + 0.01 * (e - 24.0) }) + wobble
        })
        .collect();
    let expected: Vec<usize> = (1..=curve.len()).filter(|&e| lowest_held_out(&curve[..e]) == Some(e - 1)).collect();
    assert!(expected.len() > 3 && expected[0] == HELD_OUT_WINDOW, "{expected:?}");
    let factory: TrainerFactory = {
        let curve = curve.clone();
        Box::new(move || {
            Ok(Box::new(HeldOut { steps: 0, curve: curve.clone(), history: Vec::new() }) as Box<dyn Trainer>)
        })
    };
    let worker = Worker::spawn("test-lowest", factory, true, || {}).unwrap();
    let events = wait_for(&worker, "finished", |e| matches!(e, WorkerEvent::Finished(_)));
    let sent: Vec<(usize, u64)> = events
        .iter()
        .filter_map(|e| match e {
            WorkerEvent::LowestHeldOut { epoch, view } => Some((*epoch, view.step())),
            _ => None,
        })
        .collect();
    assert_eq!(sent.iter().map(|s| s.0).collect::<Vec<_>>(), expected, "the epochs of each new lowest");
    assert!(sent.iter().all(|&(epoch, step)| step == 4 * epoch as u64), "each the model of its epoch's end: {sent:?}");
    let last = *expected.last().unwrap();
    assert!((20..=28).contains(&last), "the lowest of the run is near epoch 24: {last}");
}
