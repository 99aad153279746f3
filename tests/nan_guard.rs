//! The NaN guard, triggered by a deliberately huge learning rate, on the BNN (red wine), every flow (two moons) and
//! both VAEs (8 x 8 digits): training stops with [`TrainError::NonFinite`] naming the place and the step, the
//! parameters are the last good ones, the failed step is not counted, and once the learning rate is lowered training
//! goes on with a finite loss, from the minibatch that failed. The same through the worker: a
//! [`WorkerEvent::NonFinite`], a pause, the views showing the last good parameters, and a resume. (Which quantity the
//! guard names when a value is put by hand into one layer is tested next to each model, in its unit tests.)
//!
//! Two places can fail, and "the last good parameters" differ between them:
//! - an update that would write a non-finite parameter (or follows a non-finite gradient) is not applied: the
//!   parameters are exactly those from before the failing step, and the message names the variable ("layer 1
//!   posterior means");
//! - a finite update can still land where the loss is infinite (at rate 1e30 every weight moves by about 1e30):
//!   the next step finds the loss non-finite and goes back to the parameters at which the loss was last
//!   finite, those from before the step that led there. Keeping the parameters of the failing step would not
//!   do: the loss is evaluated before any update, so no learning rate could ever leave them. The message names
//!   the first quantity of the failing minibatch's forward pass that holds a NaN or an infinity ("layer 2's
//!   pre-activations", "the KL term"), found by running the pass again at the parameters that failed.
//!
//! Which rates blow up where, found by trying on 2026-11-21 (up to 200 steps each, the settings below otherwise;
//! "at the loss" means at step 2 unless said):
//! - the course's BNN (sigmoids, full covariance), RMSprop or Adam: nothing at 1e3, 1e6 or 1e10; at the loss at
//!   1e20 and 1e30, in the likelihood term (the sigmoids bound every activation, so the first value past f32 is a
//!   squared error of outputs of about 1e31); at its first layer's posterior scales at step 1 at 1e35, and its
//!   posterior means at 1e38 and NaN. With ReLU layers and a mean-field posterior: nothing at 1e3, at the loss in
//!   the likelihood term at 1e6 and 1e10 and in layer 2's pre-activations from 1e20 to 1e35, at the same
//!   variable as the course's at 1e38 and NaN;
//! - RealNVP: nothing at 10 or 100; at the loss in the base density log p_z at 1e3, layer 1's output at 1e6, dense
//!   layer 1 of coupling layer 1's scale net at 1e10, dense layer 2 of coupling layer 2's scale net from 1e20 to
//!   1e35; at layer 1's scale net weights at step 1 at 1e38 and NaN;
//! - MAF: at the loss in layer 1's output at 10, layer 2's output from 100 to 1e35; at a MADE's weights at step 1
//!   at 1e38 and NaN;
//! - the affine flow: nothing at 10; at the loss in affine layer 2's inverse scale from 100 to 1e38 (its four
//!   parameters stay finite at 1e38); at layer 1's shift at step 1 at NaN;
//! - the MLP VAE: at the loss at step 4 in the latent standard deviations from 10 to 1e6; at the loss in decoder
//!   layer 2's pre-activations at 1e10, in the latent means from encoder layer 2 from 1e20 to 1e35; at encoder
//!   layer 1's weights at step 1 at 1e38 and NaN;
//! - the convolutional VAE: at the loss at step 3 in the latent standard deviations from 10 to 1e6; at the loss in
//!   decoder convolution 1's output at 1e10, in encoder convolution 2's output at 1e20 and 1e30; at encoder
//!   convolution 2's kernel at step 1 at 1e35, and convolution 1's at 1e38 and NaN.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bayes_explorer::Lab;
use bayes_explorer::compute::Activation;
use bayes_explorer::compute::cpu::optim::OptimizerKind;
use bayes_explorer::compute::params::{FlowLayerParams, FlowParams};
use bayes_explorer::data::prepare::{Prepared, default_spec_for_lab, prepare};
use bayes_explorer::data::{BuiltinFile, SynthKind, SynthSpec};
use bayes_explorer::models::bnn::{BnnConfig, BnnParams, BnnTrainer, Posterior};
use bayes_explorer::models::flow::{FlowConfig, FlowKind, FlowNet, FlowTrainer};
use bayes_explorer::models::vae::{VaeArch, VaeConfig, VaeNetworks, VaeParams, VaeTrainer};
use bayes_explorer::train::{
    Command, ModelView, RunSnapshot, TrainError, Trainer, TrainerFactory, Worker, WorkerEvent, WorkerState,
};
use candle_core::DType;

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

/// 8 x 8 digits, 256 training and 64 test images.
fn digits() -> Arc<Prepared> {
    let table = BuiltinFile::Digits8x8.load().expect("digits");
    let mut data = prepare(&table, &default_spec_for_lab(Lab::Vae, &table)).expect("digits prepare");
    let n_in = data.n_features();
    data.x_train.truncate(256 * n_in);
    data.y_train.truncate(256);
    data.x_test.truncate(64 * n_in);
    data.y_test.truncate(64);
    Arc::new(data)
}

/// Settings of a BNN for an optimiser and a learning rate.
type MakeBnnConfig = fn(OptimizerKind, f64) -> BnnConfig;

/// The course's BNN.
fn bnn_config(optimizer: OptimizerKind, learning_rate: f64) -> BnnConfig {
    BnnConfig { optimizer, learning_rate, epochs: 50, predictive_samples: 10, ..BnnConfig::default() }
}

/// A mean-field BNN with ReLU layers, whose activations are not bounded as the course's sigmoids are.
fn relu_bnn_config(optimizer: OptimizerKind, learning_rate: f64) -> BnnConfig {
    BnnConfig { activation: Activation::Relu, posterior: Posterior::MeanField, ..bnn_config(optimizer, learning_rate) }
}

/// A small flow whose `params` are its weights (no weight average: the guard's tests look at the weights; see
/// [`a_refused_step_leaves_the_weight_average_as_it_was`] for the average).
fn flow_config(kind: FlowKind, learning_rate: f64) -> FlowConfig {
    FlowConfig {
        layers: 2,
        hidden: vec![16, 16],
        batch_size: 64,
        learning_rate,
        epochs: 50,
        weight_average: None,
        ..FlowConfig::default_for(kind)
    }
}

/// The MLP VAE with one hidden layer of 32, or the course's convolutional VAE; batches of 32; no weight average
/// (see [`a_refused_step_leaves_the_vae_weight_average_as_it_was`] for the average).
fn vae_config(arch: VaeArch, learning_rate: f64) -> VaeConfig {
    match arch {
        VaeArch::Mlp => VaeConfig {
            hidden: vec![32],
            batch_size: 32,
            learning_rate,
            epochs: 50,
            weight_average: None,
            ..VaeConfig::default()
        },
        VaeArch::Conv => {
            VaeConfig { batch_size: 32, learning_rate, epochs: 50, weight_average: None, ..VaeConfig::course_conv() }
        }
    }
}

/// A VAE's trained values: its parameters without the batch normalisation's running averages, which the guard does
/// not take back (they come from batches whose loss was finite).
fn vae_weights(trainer: &VaeTrainer) -> VaeParams {
    let mut params = trainer.params().expect("parameters");
    if let VaeNetworks::Conv(conv) = &mut params.networks {
        for norm in conv.encoder.iter_mut().chain(&mut conv.decoder).filter_map(|l| l.norm.as_mut()) {
            norm.running_mean.clear();
            norm.running_variance.clear();
        }
    }
    params
}

/// Where a huge rate shows, and the name the guard must give.
#[derive(Clone, Copy, Debug)]
enum Failure {
    /// The loss is not finite (the update before led there): the first quantity of the failing pass that holds a
    /// NaN or an infinity.
    AtTheLoss(&'static str),
    /// An update would write a non-finite value (or follows a non-finite gradient): the variable.
    AtAnUpdate(&'static str),
}

/// True when the guard found the loss non-finite (rather than a gradient or an update): it then names a quantity of
/// the forward pass ("layer 2's output", "the KL term") or the loss itself, where the optimiser names a gradient
/// ("the gradient of layer 1 weights") or a variable ("layer 1 weights").
fn at_the_loss(location: &str) -> bool {
    !location.starts_with("the gradient of") && (location.starts_with("the ") || location.contains("'s "))
}

/// Steps `trainer` until the guard stops it (within 50 steps), then checks the error, the parameters, the step
/// counter and the recovery at a lower rate. `params` copies the parameters as plain data.
fn blow_up_and_recover<T: Trainer, P: PartialEq>(
    what: &str,
    trainer: &mut T,
    params: impl Fn(&T) -> P,
    expected: Failure,
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
    let (expected_location, expect_at_the_loss) = match expected {
        Failure::AtTheLoss(l) => (l, true),
        Failure::AtAnUpdate(l) => (l, false),
    };
    assert_eq!(location, expected_location, "{what}: {message}");
    assert_eq!(at_the_loss(location), expect_at_the_loss, "{what}: failed at {location:?}");
    // Steps are numbered from 1: the failing one is the last attempted, and it does not count.
    assert_eq!(*step, before.len() as u64, "{what}: {message}");
    assert_eq!(trainer.snapshot().step, step - 1, "{what}: the failed step was counted");
    let last_good = if expect_at_the_loss {
        assert!(*step >= 2, "{what}: the loss of the initial parameters is finite");
        &before[before.len() - 2]
    } else {
        &before[before.len() - 1]
    };
    assert!(params(trainer) == *last_good, "{what}: the parameters are not the last good ones after {message}");

    // At a lower rate: at least 10 steps and the end of the first epoch, every loss finite. The failed step took
    // nothing from the epoch: it ends after exactly its number of steps, the failed minibatch taken again.
    trainer.set_learning_rate(SAFE_RATE);
    let steps_per_epoch = trainer.snapshot().steps_per_epoch as u64;
    assert!(*step <= steps_per_epoch, "{what}: failed after the first epoch");
    let mut taken = 0;
    while taken < 10 || trainer.epochs_done() == 0 {
        trainer.step().unwrap_or_else(|e| panic!("{what}: at rate {SAFE_RATE} after {message}: {e}"));
        taken += 1;
        let snapshot = trainer.snapshot();
        assert!(snapshot.batch_loss.is_finite(), "{what}: loss {} after lowering the rate", snapshot.batch_loss);
        if snapshot.step < steps_per_epoch {
            assert_eq!(trainer.epochs_done(), 0, "{what}: the first epoch ended early, at step {}", snapshot.step);
        } else if snapshot.step == steps_per_epoch {
            assert_eq!(trainer.epochs_done(), 1, "{what}: the first epoch did not end after {steps_per_epoch} steps");
        }
    }
    assert_eq!(trainer.snapshot().step, step - 1 + taken, "{what}");
    assert!(params(trainer) != *last_good, "{what}: training moves on");
}

#[test]
fn the_bnn_keeps_its_last_good_parameters_at_a_huge_rate_and_resumes_at_a_small_one() {
    let data = red_wine();
    for optimizer in [OptimizerKind::RmsProp, OptimizerKind::Adam] {
        let cases: [(MakeBnnConfig, &str, f64, Failure); 4] = [
            // The course's sigmoids keep every activation bounded: the squared error overflows first.
            (bnn_config, "course", 1e30, Failure::AtTheLoss("the likelihood term")),
            (relu_bnn_config, "ReLU", 1e30, Failure::AtTheLoss("layer 2's pre-activations")),
            (bnn_config, "course", 1e38, Failure::AtAnUpdate("layer 1 posterior means")),
            (bnn_config, "course", f64::NAN, Failure::AtAnUpdate("layer 1 posterior means")),
        ];
        for (config, name, rate, expected) in cases {
            let what = format!("{name} BNN, {optimizer:?} at {rate:e}");
            let mut trainer = BnnTrainer::new(config(optimizer, rate), &data).expect("a BNN");
            blow_up_and_recover(&what, &mut trainer, |t| t.params().expect("parameters"), expected);
        }
    }
}

#[test]
fn every_flow_keeps_its_last_good_parameters_at_a_huge_rate_and_resumes_at_a_small_one() {
    let data = moons();
    for kind in FlowKind::ALL {
        let (at_1e30, at_1e38) = match kind {
            FlowKind::RealNvp => (
                Failure::AtTheLoss("dense layer 2 of coupling layer 2's scale net"),
                Failure::AtAnUpdate("layer 1 scale net dense 1 weights"),
            ),
            // The MADEs' output layers start at zero, so at first only they have a gradient.
            FlowKind::Maf => {
                (Failure::AtTheLoss("layer 2's output"), Failure::AtAnUpdate("layer 1 MADE dense 3 weights"))
            }
            // The affine flow's four parameters stay finite at 1e38, where its loss does not.
            FlowKind::Affine => (
                Failure::AtTheLoss("affine layer 2's inverse scale"),
                Failure::AtTheLoss("affine layer 2's inverse scale"),
            ),
        };
        for (rate, expected) in [(1e30, at_1e30), (1e38, at_1e38)] {
            let what = format!("{kind:?} flow at {rate:e}");
            let mut trainer = FlowTrainer::new(flow_config(kind, rate), &data).expect("a flow");
            blow_up_and_recover(&what, &mut trainer, |t| t.params().expect("parameters"), expected);
        }
    }
}

/// Steps `trainer` (at a huge `rate`) until the guard refuses a step, within 50 steps: the guard's error, which must
/// be a non-finite value's, and what `model` read just before that step.
fn step_until_refused<T: Trainer, P>(trainer: &mut T, rate: f64, model: impl Fn(&T) -> P) -> (TrainError, P) {
    loop {
        assert!(trainer.snapshot().step < 50, "no non-finite value in 50 steps at {rate:e}");
        let before = model(trainer);
        if let Err(e) = trainer.step() {
            assert!(matches!(e, TrainError::NonFinite { .. }), "{e:?}");
            return (e, before);
        }
    }
}

/// With a weight average (RealNVP's default), the model a run shows is the average of weights whose loss was
/// finite: a step the guard refuses, at the loss or at the update, leaves it exactly as it was after the last step
/// taken, every value finite, and training at a safe rate moves it on.
#[test]
fn a_refused_step_leaves_the_weight_average_as_it_was() {
    let data = moons();
    for rate in [1e30, 1e38] {
        let config = FlowConfig { weight_average: Some(0.9), ..flow_config(FlowKind::RealNvp, rate) };
        let mut trainer = FlowTrainer::new(config, &data).expect("a flow");
        let (failure, before) = step_until_refused(&mut trainer, rate, |t| t.params().expect("parameters"));
        let after = trainer.params().expect("parameters");
        assert!(after == before, "at {rate:e}: the refused step ({failure}) changed the average");
        for layer in &after.layers {
            let FlowLayerParams::Coupling { scale_net, shift_net, .. } = layer else { panic!("a RealNVP") };
            for dense in scale_net.layers.iter().chain(&shift_net.layers) {
                let finite = dense.weights.iter().chain(&dense.biases).all(|v| v.is_finite());
                assert!(finite, "at {rate:e}: the average holds a value that is not finite");
            }
        }
        // Its loss is finite: it holds none of the weights whose loss the guard found not finite.
        let net = FlowNet::from_params(&after, DType::F32).expect("a net");
        let density = net.log_density(&data.x_train).expect("densities");
        assert!(density.iter().all(|d| d.is_finite()), "at {rate:e}: the average's loss is not finite");
        trainer.set_learning_rate(SAFE_RATE);
        for _ in 0..5 {
            trainer.step().expect("a step at a safe rate");
        }
        assert!(trainer.params().expect("parameters") != after, "at {rate:e}: the average does not move on");
    }
}

/// The MLP VAE's weight average (its default), as the flow's: a step the guard refuses, at the loss or at the
/// update, leaves it exactly as it was, every value finite and its test figure finite; training at a safe rate
/// moves it on.
#[test]
fn a_refused_step_leaves_the_vae_weight_average_as_it_was() {
    let data = digits();
    for rate in [1e30, 1e38] {
        let config = VaeConfig { weight_average: Some(0.9), ..vae_config(VaeArch::Mlp, rate) };
        let mut trainer = VaeTrainer::new(config.clone(), &data).expect("a VAE");
        let (failure, before) = step_until_refused(&mut trainer, rate, |t| t.params().expect("parameters"));
        let after = trainer.params().expect("parameters");
        assert!(after == before, "at {rate:e}: the refused step ({failure}) changed the average");
        let VaeNetworks::Mlp { encoder, decoder } = &after.networks else { panic!("an MLP VAE") };
        for dense in encoder.layers.iter().chain(&decoder.layers) {
            let finite = dense.weights.iter().chain(&dense.biases).all(|v| v.is_finite());
            assert!(finite, "at {rate:e}: the average holds a value that is not finite");
        }
        let of_average = VaeTrainer::with_params(VaeConfig { weight_average: None, ..config }, &data, &after)
            .expect("a VAE of the average")
            .test_elbo()
            .expect("figures");
        assert!(of_average.neg_elbo.is_finite(), "at {rate:e}: the average's test figure is not finite");
        trainer.set_learning_rate(SAFE_RATE);
        for _ in 0..5 {
            trainer.step().expect("a step at a safe rate");
        }
        assert!(trainer.params().expect("parameters") != after, "at {rate:e}: the average does not move on");
    }
}

#[test]
fn both_vaes_keep_their_last_good_parameters_at_a_huge_rate_and_resume_at_a_small_one() {
    let data = digits();
    let cases = [
        (VaeArch::Mlp, 1e30, Failure::AtTheLoss("the latent means from encoder layer 2")),
        (VaeArch::Conv, 1e30, Failure::AtTheLoss("encoder convolution 2's output")),
        (VaeArch::Mlp, 1e38, Failure::AtAnUpdate("encoder layer 1 weights")),
        (VaeArch::Conv, 1e38, Failure::AtAnUpdate("encoder convolution 1 kernel")),
    ];
    for (arch, rate, expected) in cases {
        let what = format!("{arch:?} VAE at {rate:e}");
        let mut trainer = VaeTrainer::new(vae_config(arch, rate), &data).expect("a VAE");
        blow_up_and_recover(&what, &mut trainer, vae_weights, expected);
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
