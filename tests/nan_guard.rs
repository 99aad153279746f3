//! The NaN guard, triggered by a deliberately huge learning rate, on the BNN (red wine) and on every flow (two
//! moons): training stops with [`TrainError::NonFinite`] naming the place and the step, the parameters are the
//! last good ones, and once the learning rate is lowered training goes on with a finite loss. The same through
//! the worker: a [`WorkerEvent::NonFinite`], a pause, the views showing the last good parameters, and a resume.
//!
//! Two places can fail, and "the last good parameters" differ between them:
//! - an update that would write a non-finite parameter (or follows a non-finite gradient) is not applied: the
//!   parameters are exactly those from before the failing step;
//! - a finite update can still land where the loss is infinite (at rate 1e30 every weight moves by about 1e30):
//!   the next step finds the loss non-finite and goes back to the parameters at which the loss was last
//!   finite, those from before the step that led there. Keeping the parameters of the failing step would not
//!   do: the loss is evaluated before any update, so no learning rate could ever leave them.
//!
//! Which rates blow up, found by trying on 2026-11-21 (up to 200 steps each, the settings below otherwise):
//! the BNN meets no non-finite value at 1e3, 1e6 or 1e10 with RMSprop or Adam, fails at the loss at step 2
//! at 1e20 and 1e30, and at its first layer's posterior means at step 1 at 1e38 and NaN. The flows fail at
//! the loss at step 2 from 1e3 to 1e30 (MAF from 10), and at a weight at step 1 at 1e38 (the affine flow,
//! with four parameters, at the loss at step 2).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bayes_explorer::Lab;
use bayes_explorer::data::prepare::{Prepared, default_spec_for_lab, prepare};
use bayes_explorer::data::{BuiltinFile, SynthKind, SynthSpec};
use bayes_explorer::models::bnn::{BnnConfig, BnnParams, BnnTrainer};
use bayes_explorer::models::flow::{FlowConfig, FlowKind, FlowTrainer};
use bayes_explorer::models::optim::OptimizerKind;
use bayes_explorer::models::params::FlowParams;
use bayes_explorer::train::{
    Command, ModelView, RunSnapshot, TrainError, Trainer, TrainerFactory, Worker, WorkerEvent, WorkerState,
};

/// Longest any wait on the worker may take (generous: the test machines have two shared cores).
const DEADLINE: Duration = Duration::from_secs(20);

/// The rate training resumes at.
const SAFE_RATE: f64 = 1e-3;

fn red_wine() -> Arc<Prepared> {
    let table = BuiltinFile::WineRed.load().expect("red wine");
    Arc::new(prepare(&table, &default_spec_for_lab(Lab::Bnn, &table)).expect("red wine prepares"))
}

fn moons() -> Arc<Prepared> {
    let table = SynthSpec { n_points: 600, ..SynthSpec::default_for(SynthKind::Moons) }.generate();
    Arc::new(prepare(&table, &default_spec_for_lab(Lab::Flow, &table)).expect("moons prepare"))
}

fn bnn_config(optimizer: OptimizerKind, learning_rate: f64) -> BnnConfig {
    BnnConfig { optimizer, learning_rate, epochs: 50, predictive_samples: 10, ..BnnConfig::default() }
}

fn flow_config(kind: FlowKind, learning_rate: f64) -> FlowConfig {
    FlowConfig {
        layers: 2,
        hidden: vec![16, 16],
        batch_size: 64,
        learning_rate,
        epochs: 50,
        ..FlowConfig::default_for(kind)
    }
}

/// True when the guard found the loss itself non-finite (rather than a gradient or a parameter).
fn at_the_loss(location: &str) -> bool {
    location.starts_with("the loss") || location == "the negative log-likelihood"
}

/// Steps `trainer` until the guard stops it (within 50 steps), then checks the error, the parameters and
/// the recovery at a lower rate. `params` copies the parameters as plain data.
fn blow_up_and_recover<T: Trainer, P: PartialEq>(
    what: &str,
    trainer: &mut T,
    params: impl Fn(&T) -> P,
    expect_at_the_loss: bool,
) {
    // The parameters before each step.
    let mut before = Vec::new();
    let failure = loop {
        assert!(before.len() < 50, "{what}: no non-finite value in 50 steps");
        before.push(params(trainer));
        if let Err(e) = trainer.step() {
            break e;
        }
    };
    let TrainError::NonFinite { location, step } = &failure else {
        panic!("{what}: expected a non-finite value, got {failure:?}")
    };
    let message = failure.to_string();
    assert!(message.contains(location.as_str()) && message.contains(&format!("step {step}")), "{what}: {message}");
    // Steps are numbered from 1: the failing one is the last attempted, and it does not count.
    assert_eq!(*step, before.len() as u64, "{what}: {message}");
    assert_eq!(trainer.snapshot().step, step - 1, "{what}: the failed step was counted");
    assert_eq!(at_the_loss(location), expect_at_the_loss, "{what}: failed at {location:?}");
    let last_good = if expect_at_the_loss {
        assert!(*step >= 2, "{what}: the loss of the initial parameters is finite");
        &before[before.len() - 2]
    } else {
        assert!(location.contains("layer"), "{what}: {location:?} names no layer");
        &before[before.len() - 1]
    };
    assert!(params(trainer) == *last_good, "{what}: the parameters are not the last good ones after {message}");

    trainer.set_learning_rate(SAFE_RATE);
    for _ in 0..10 {
        trainer.step().unwrap_or_else(|e| panic!("{what}: at rate {SAFE_RATE} after {message}: {e}"));
        let loss = trainer.snapshot().batch_loss;
        assert!(loss.is_finite(), "{what}: loss {loss} after lowering the rate");
    }
    assert_eq!(trainer.snapshot().step, step - 1 + 10, "{what}");
    assert!(params(trainer) != *last_good, "{what}: training moves on");
}

#[test]
fn the_bnn_keeps_its_last_good_parameters_at_a_huge_rate_and_resumes_at_a_small_one() {
    let data = red_wine();
    for optimizer in [OptimizerKind::RmsProp, OptimizerKind::Adam] {
        for (rate, at_loss) in [(1e30, true), (1e38, false), (f64::NAN, false)] {
            let what = format!("BNN, {optimizer:?} at {rate:e}");
            let mut trainer = BnnTrainer::new(bnn_config(optimizer, rate), &data).expect("a BNN");
            blow_up_and_recover(&what, &mut trainer, |t| t.params().expect("parameters"), at_loss);
        }
    }
}

#[test]
fn every_flow_keeps_its_last_good_parameters_at_a_huge_rate_and_resumes_at_a_small_one() {
    let data = moons();
    for kind in FlowKind::ALL {
        // The affine flow's four parameters stay finite at 1e38, where its loss does not.
        for (rate, at_loss) in [(1e30, true), (1e38, kind == FlowKind::Affine)] {
            let what = format!("{kind:?} flow at {rate:e}");
            let mut trainer = FlowTrainer::new(flow_config(kind, rate), &data).expect("a flow");
            blow_up_and_recover(&what, &mut trainer, |t| t.params().expect("parameters"), at_loss);
        }
    }
}

/// The parameters in a snapshot's model view, without its step or history.
#[derive(Debug, PartialEq)]
enum Params {
    Bnn(Arc<BnnParams>),
    Flow(Arc<FlowParams>),
}

fn view_params(snapshot: &RunSnapshot) -> Params {
    match &snapshot.model {
        Some(ModelView::Bnn { view, .. }) => Params::Bnn(Arc::clone(&view.params)),
        Some(ModelView::Flow { params, .. }) => Params::Flow(Arc::clone(params)),
        other => panic!("expected a BNN or flow view, got {other:?}"),
    }
}

/// Waits for an event matching `pred`, returning every event seen on the way.
fn wait_for(worker: &Worker, what: &str, pred: impl Fn(&WorkerEvent) -> bool) -> Vec<WorkerEvent> {
    let deadline = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Some(event) = worker.wait_event(Duration::from_millis(20)) {
            assert!(!matches!(event, WorkerEvent::Error(_)), "{what}: {event:?}");
            let hit = pred(&event);
            seen.push(event);
            if hit {
                return seen;
            }
        }
    }
    panic!("timed out waiting for {what}; saw {seen:?}");
}

/// Waits for a snapshot matching `pred`.
fn snapshot_when(worker: &Worker, what: &str, pred: impl Fn(&RunSnapshot) -> bool) -> RunSnapshot {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(snapshot) = worker.snapshot().filter(&pred) {
            return snapshot;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; last {:?}", worker.snapshot());
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Through the worker: single steps at a rate that blows up at step 2 (at the loss), then a run at that rate
/// after a reset, then a resume at a small rate.
fn worker_pauses_and_resumes(what: &str, factory: TrainerFactory) {
    let worker = Worker::spawn("test-nan-guard", factory, false, || {}).expect("spawn");
    wait_for(&worker, "paused after the build", |e| *e == WorkerEvent::State(WorkerState::Paused));
    let initial = snapshot_when(&worker, "the first snapshot", |s| s.model.is_some());
    assert_eq!(initial.step, 0);

    worker.send(Command::Step);
    let after_one = snapshot_when(&worker, "step 1", |s| s.step == 1);
    assert!(view_params(&after_one) != view_params(&initial), "{what}: step 1 did not move the parameters");
    worker.send(Command::Step);
    let events = wait_for(&worker, "a non-finite event", |e| matches!(e, WorkerEvent::NonFinite { .. }));
    let Some(WorkerEvent::NonFinite { location, step }) = events.last() else { unreachable!() };
    assert!(at_the_loss(location) && *step == 2, "{what}: {location:?} at step {step}");
    // The worker was paused already; it stays so, with the step not counted.
    let snapshot = worker.snapshot().expect("a snapshot");
    assert_eq!(snapshot.step, 1, "{what}: the failed step was counted");
    // The views must show the parameters the model went back to (those before step 1), not the ones that
    // blew up.
    assert!(view_params(&snapshot) == view_params(&initial), "{what}: the views show the parameters that blew up");

    // Running at the huge rate: the guard pauses the run by itself.
    worker.send(Command::Reset);
    wait_for(&worker, "ready after the reset", |e| *e == WorkerEvent::Ready);
    worker.send(Command::Resume);
    let events = wait_for(&worker, "a non-finite event while running", |e| matches!(e, WorkerEvent::NonFinite { .. }));
    assert!(events.contains(&WorkerEvent::State(WorkerState::Running)), "{what}: {events:?}");
    wait_for(&worker, "the guard's pause", |e| *e == WorkerEvent::State(WorkerState::Paused));
    std::thread::sleep(Duration::from_millis(30));
    let paused_at = worker.snapshot().expect("a snapshot").step;
    assert_eq!(paused_at, 1, "{what}");
    assert!(worker.drain_events(usize::MAX).is_empty(), "{what}: the run stays paused");

    // Lower the rate and resume: training goes on, with a finite loss and finished epochs.
    worker.send(Command::SetLearningRate(SAFE_RATE));
    worker.send(Command::Resume);
    wait_for(&worker, "an epoch at the lower rate", |e| matches!(e, WorkerEvent::EpochDone(_)));
    let snapshot = snapshot_when(&worker, "steps at the lower rate", |s| s.step >= paused_at + 5);
    assert!(snapshot.batch_loss.is_finite(), "{what}: loss {} after lowering the rate", snapshot.batch_loss);
    assert_eq!(snapshot.learning_rate.to_bits(), SAFE_RATE.to_bits());
    worker.send(Command::Pause);
    wait_for(&worker, "paused", |e| *e == WorkerEvent::State(WorkerState::Paused));
}

#[test]
fn the_worker_pauses_on_a_non_finite_bnn_step_and_resumes_at_a_lower_rate() {
    let data = red_wine();
    let factory: TrainerFactory = Box::new(move || {
        Ok(Box::new(BnnTrainer::new(bnn_config(OptimizerKind::RmsProp, 1e30), &data)?) as Box<dyn Trainer>)
    });
    worker_pauses_and_resumes("BNN", factory);
}

#[test]
fn the_worker_pauses_on_a_non_finite_flow_step_and_resumes_at_a_lower_rate() {
    let data = moons();
    let factory: TrainerFactory = Box::new(move || {
        Ok(Box::new(FlowTrainer::new(flow_config(FlowKind::RealNvp, 1e30), &data)?) as Box<dyn Trainer>)
    });
    worker_pauses_and_resumes("RealNVP flow", factory);
}
