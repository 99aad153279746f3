//! Exact resume (issue 22): a run trained for A epochs, stopped, rebuilt from its settings and data and put into
//! its saved training state, then continued for B epochs, ends with every variable, optimiser moment, generator
//! and epoch record identical to the bit to the same run trained A + B epochs in one go; for every lab and model
//! kind, stopped at an epoch's end and inside an epoch. Small models and data: the file runs in seconds in release.

use std::sync::Arc;

use bayes_explorer::Lab;
use bayes_explorer::data::prepare::{Prepared, default_spec_for_lab, prepare};
use bayes_explorer::data::{BuiltinFile, SynthKind, SynthSpec};
use bayes_explorer::models::bnn::{BnnConfig, BnnTrainer, Posterior};
use bayes_explorer::models::flow::{FlowConfig, FlowKind, FlowTrainer};
use bayes_explorer::models::resume::TrainState;
use bayes_explorer::models::trainer::{EpochModel, EpochTrainer, LrSchedule};
use bayes_explorer::models::vae::{VaeArch, VaeConfig, VaeTrainer};
use bayes_explorer::train::Trainer;
use bayes_explorer::train::runfile::first_difference;

fn wine() -> Arc<Prepared> {
    let table = BuiltinFile::WineRed.load().expect("red wine");
    Arc::new(prepare(&table, &default_spec_for_lab(Lab::Bnn, &table)).expect("red wine prepares"))
}

/// The first 300 of the 8x8 digits (240 to train on).
fn digits() -> Arc<Prepared> {
    let table = BuiltinFile::Digits8x8.load().expect("digits");
    let mut data = prepare(&table, &default_spec_for_lab(Lab::Vae, &table)).expect("digits prepare");
    let n_in = data.n_features();
    data.x_train.truncate(240 * n_in);
    data.y_train.truncate(240);
    data.x_test.truncate(60 * n_in);
    data.y_test.truncate(60);
    Arc::new(data)
}

fn moons() -> Arc<Prepared> {
    let table = SynthSpec { n_points: 600, ..SynthSpec::default_for(SynthKind::Moons) }.generate();
    Arc::new(prepare(&table, &default_spec_for_lab(Lab::Flow, &table)).expect("moons prepare"))
}

fn finish<T: Trainer + ?Sized>(trainer: &mut T) {
    while !trainer.finished() {
        trainer.step().expect("a small run trains");
    }
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// Every number of a training state, as bits, with what it is.
fn state_bits(s: &TrainState) -> Vec<(String, Vec<u32>)> {
    let mut out: Vec<(String, Vec<u32>)> = s.variables.iter().map(|v| (v.name.clone(), bits(&v.values))).collect();
    for (i, (m, v)) in s.optimizer.moments.iter().enumerate() {
        out.push((format!("moments {i}"), bits(m).into_iter().chain(bits(v)).collect()));
    }
    for (i, g) in s.last_good.iter().flatten().enumerate() {
        out.push((format!("guard {i}"), bits(g)));
    }
    for (name, values) in &s.model {
        out.push((name.clone(), bits(values)));
    }
    out
}

/// Trains `build(A + B)` in one go, and `build(A)` to its end (or, with `stop_at`, `build(A + B)` for that many
/// steps) then a fresh `build(A + B)` resumed from its state for the rest; both must agree to the bit.
fn assert_resumes_exactly<M: EpochModel<T>, const T: usize>(
    what: &str,
    build: impl Fn(usize) -> EpochTrainer<M, T>,
    (a, b): (usize, usize),
    stop_at: Option<u64>,
) {
    let mut whole = build(a + b);
    finish(&mut whole);

    let mut first = build(if stop_at.is_some() { a + b } else { a });
    match stop_at {
        Some(steps) => {
            while first.epoch_loop().step() < steps {
                first.step().expect("a small run trains");
            }
            assert!(first.epoch_loop().cursor() > 0, "{what}: step {steps} is inside an epoch");
        }
        None => finish(&mut first),
    }
    let (state, snapshot, view) = (first.train_state().expect("a state"), first.snapshot(), first.model_view());
    drop(first);
    let snapshot = snapshot.clone();
    let mut continued = build(a + b).resume(&state, snapshot.history.clone(), a + b, view.as_ref()).expect("resumes");
    // The resumed trainer is where the first one stopped, not at the start.
    let back = continued.train_state().expect("a state");
    assert!(state_bits(&back) == state_bits(&state) && back.epochs == state.epochs, "{what}: not the saved state");
    assert_eq!((continued.epoch_loop().step(), continued.snapshot().history.len()), (snapshot.step, snapshot.epoch));
    assert!(snapshot.step > 0, "{what}");
    finish(&mut continued);

    let (expected, got) = (whole.train_state().expect("state"), continued.train_state().expect("state"));
    for ((name, x), (_, y)) in state_bits(&expected).iter().zip(&state_bits(&got)) {
        assert!(x == y, "{what}: {name} differs after resuming");
    }
    assert_eq!(state_bits(&expected).len(), state_bits(&got).len(), "{what}");
    assert_eq!(expected.epochs.rng, got.epochs.rng, "{what}: the generators differ");
    assert_eq!(expected.epochs.order, got.epochs.order, "{what}: the minibatch orders differ");
    assert_eq!(expected.optimizer.steps, got.optimizer.steps, "{what}");
    let (x, y) = (whole.snapshot(), continued.snapshot());
    assert_eq!(first_difference(&x.history, &y.history), None, "{what}: the epochs' metrics differ");
    assert_eq!((x.step, x.batch_loss.to_bits()), (y.step, y.batch_loss.to_bits()), "{what}");
    assert!(whole.model_view() == continued.model_view(), "{what}: the views' copies (and histories) differ");
}

#[test]
fn every_bnn_resumes_to_the_bit_at_an_epochs_end_and_inside_one() {
    let data = wine();
    for posterior in [Posterior::MeanField, Posterior::FullCovariance, Posterior::Deterministic] {
        let build = |epochs| {
            let config = BnnConfig {
                hidden: vec![4],
                posterior,
                bayesian_output: posterior != Posterior::Deterministic,
                batch_size: 128,
                epochs,
                predictive_samples: 5,
                ..BnnConfig::default()
            };
            BnnTrainer::new(config, &data).expect("a BNN")
        };
        let what = format!("{posterior:?}");
        assert_resumes_exactly(&format!("{what}, epoch's end"), build, (2, 1), None);
        assert_resumes_exactly(&format!("{what}, inside an epoch"), build, (2, 1), Some(13));
    }
}

#[test]
fn both_vaes_resume_to_the_bit_at_an_epochs_end_and_inside_one() {
    let data = digits();
    // Each architecture at its defaults (the MLP's with a weight average, the convolutional VAE's without), and each
    // with the other choice: the average is part of the state.
    for arch in [VaeArch::Mlp, VaeArch::Conv] {
        let base = if arch == VaeArch::Conv { VaeConfig::course_conv() } else { VaeConfig::default() };
        for average in [base.weight_average, base.weight_average.xor(Some(0.99))] {
            let build = |epochs| {
                let config =
                    VaeConfig { hidden: vec![16], batch_size: 32, epochs, weight_average: average, ..base.clone() };
                VaeTrainer::new(config, &data).expect("a VAE")
            };
            let what = format!("{arch:?}, weight average {average:?}");
            assert_resumes_exactly(&format!("{what}, epoch's end"), build, (1, 1), None);
            assert_resumes_exactly(&format!("{what}, inside an epoch"), build, (1, 1), Some(11));
        }
    }
}

#[test]
fn every_flow_resumes_to_the_bit_at_an_epochs_end_and_inside_one() {
    let data = moons();
    // Each kind at its defaults (RealNVP's with a weight average, the others' without), and each with the other
    // choice: the average is part of the state.
    for kind in [FlowKind::RealNvp, FlowKind::Maf, FlowKind::Affine] {
        let defaults = FlowConfig::default_for(kind);
        for average in [defaults.weight_average, defaults.weight_average.xor(Some(0.99))] {
            let build = |epochs| {
                let config = FlowConfig {
                    layers: 2,
                    hidden: vec![8],
                    epochs,
                    batch_size: 64,
                    weight_average: average,
                    ..defaults.clone()
                };
                FlowTrainer::new(config, &data).expect("a flow")
            };
            let what = format!("{kind:?}, weight average {average:?}");
            assert_resumes_exactly(&format!("{what}, epoch's end"), build, (2, 2), None);
            assert_resumes_exactly(&format!("{what}, inside an epoch"), build, (2, 2), Some(11));
        }
    }
    // A cosine schedule's rate depends on the step and the run's set length alone, so a run stopped inside its
    // plan and continued to it is the uninterrupted run. (Continuing a finished run for more epochs stretches the
    // decay over the new length: there is no uninterrupted run to compare with.)
    let cosine = |epochs| {
        let config = FlowConfig {
            layers: 2,
            hidden: vec![8],
            epochs,
            batch_size: 64,
            lr_schedule: LrSchedule::Cosine,
            ..FlowConfig::default()
        };
        FlowTrainer::new(config, &data).expect("a flow")
    };
    assert_resumes_exactly("RealNvp with a cosine rate, inside an epoch", cosine, (2, 2), Some(11));
}

/// The test above can fail: a state whose generator is one word further on, or whose optimiser forgot its moments,
/// continues into another run.
#[test]
fn a_state_missing_its_generator_or_moments_continues_differently() {
    let data = moons();
    let build = |epochs| {
        let config = FlowConfig { epochs, batch_size: 64, ..FlowConfig::default_for(FlowKind::RealNvp) };
        FlowTrainer::new(config, &data).expect("a flow")
    };
    let mut whole = build(2);
    finish(&mut whole);
    let mut first = build(2);
    for _ in 0..5 {
        first.step().expect("a step");
    }
    let (state, snapshot) = (first.train_state().expect("a state"), first.snapshot());
    let mut wrong_rng = state.clone();
    wrong_rng.epochs.rng.word_pos += 1;
    let mut no_moments = state.clone();
    for (m, v) in &mut no_moments.optimizer.moments {
        m.fill(0.0);
        v.fill(0.0);
    }
    for (what, state) in [("the generator", wrong_rng), ("the moments", no_moments)] {
        let mut continued = build(2).resume(&state, snapshot.history.clone(), 2, None).expect("resumes");
        finish(&mut continued);
        let (x, y) = (whole.train_state().expect("state"), continued.train_state().expect("state"));
        assert!(state_bits(&x) != state_bits(&y), "a state without {what} continued into the same run");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Through a run file.

use bayes_explorer::data::LoadRequest;
use bayes_explorer::data::csv::NoProgress;
use bayes_explorer::train::runfile::{AnyRun, FORMAT_VERSION, RunConfig, read_run_file};

/// A lab's data as the window loads it: the request, the table, the spec and the prepared data.
fn lab_data(
    lab: Lab,
) -> (bayes_explorer::data::Table, LoadRequest, bayes_explorer::data::prepare::DataSpec, Arc<Prepared>) {
    let request = match lab {
        Lab::Bnn => LoadRequest::Builtin(BuiltinFile::WineRed),
        Lab::Vae => LoadRequest::Builtin(BuiltinFile::Digits8x8),
        Lab::Flow => LoadRequest::Synth(SynthSpec { n_points: 600, ..SynthSpec::default_for(SynthKind::Moons) }),
    };
    let table = request.run(&NoProgress).expect("the data loads");
    let spec = default_spec_for_lab(lab, &table);
    let data = Arc::new(prepare(&table, &spec).expect("the data prepares"));
    (table, request, spec, data)
}

/// A fresh trainer of `config` on `data`.
fn build(data: &Arc<Prepared>, config: &RunConfig) -> Box<dyn Trainer> {
    match config {
        RunConfig::Bnn(c) => Box::new(BnnTrainer::new(c.clone(), data).expect("a BNN")),
        RunConfig::Vae(c) => Box::new(VaeTrainer::new(c.clone(), data).expect("a VAE")),
        RunConfig::Flow(c) => Box::new(FlowTrainer::new(c.clone(), data).expect("a flow")),
    }
}

/// Every lab and kind, with `epochs` epochs.
fn every_kind(epochs: usize) -> Vec<(String, RunConfig)> {
    let mut out = Vec::new();
    let mut push = |name: String, config: RunConfig| out.push((name, config));
    for posterior in [Posterior::MeanField, Posterior::FullCovariance, Posterior::Deterministic] {
        let c = BnnConfig {
            hidden: vec![4],
            posterior,
            batch_size: 128,
            epochs,
            predictive_samples: 5,
            ..BnnConfig::default()
        };
        push(format!("BNN {posterior:?}"), RunConfig::Bnn(c));
    }
    for arch in [VaeArch::Mlp, VaeArch::Conv] {
        let base = if arch == VaeArch::Conv { VaeConfig::course_conv() } else { VaeConfig::default() };
        push(format!("VAE {arch:?}"), RunConfig::Vae(VaeConfig { hidden: vec![16], batch_size: 64, epochs, ..base }));
    }
    for kind in [FlowKind::RealNvp, FlowKind::Maf, FlowKind::Affine] {
        let c = FlowConfig { layers: 2, hidden: vec![8], epochs, batch_size: 64, ..FlowConfig::default_for(kind) };
        push(format!("flow {kind:?}"), RunConfig::Flow(c));
    }
    out
}

fn lab_of(config: &RunConfig) -> Lab {
    match config {
        RunConfig::Bnn(_) => Lab::Bnn,
        RunConfig::Vae(_) => Lab::Vae,
        RunConfig::Flow(_) => Lab::Flow,
    }
}

fn with_epochs(config: &RunConfig, epochs: usize) -> RunConfig {
    match config {
        RunConfig::Bnn(c) => RunConfig::Bnn(BnnConfig { epochs, ..c.clone() }),
        RunConfig::Vae(c) => RunConfig::Vae(VaeConfig { epochs, ..c.clone() }),
        RunConfig::Flow(c) => RunConfig::Flow(FlowConfig { epochs, ..c.clone() }),
    }
}

/// Saved (format version 2) after 1 epoch, or 5 steps into the second, opened from the file, and continued for 1
/// more epoch: every lab and kind ends where the same run trained 2 epochs in one go ends, to the bit; the continued
/// run's settings say 2 epochs. Saving the same run twice writes the same bytes (the weights' sha256 is stable).
#[test]
fn every_lab_and_kind_saved_opened_and_continued_ends_as_the_uninterrupted_run() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    for (what, config) in every_kind(1) {
        let lab = lab_of(&config);
        let (table, request, spec, data) = lab_data(lab);
        let mut whole = build(&data, &with_epochs(&config, 2));
        finish(whole.as_mut());
        for stop_inside in [false, true] {
            let what = format!("{what}, {}", if stop_inside { "inside an epoch" } else { "epoch's end" });
            let (mut first, run_config) = if stop_inside {
                let c = with_epochs(&config, 2);
                (build(&data, &c), c)
            } else {
                (build(&data, &config), config.clone())
            };
            if stop_inside {
                let per_epoch = first.snapshot().steps_per_epoch as u64;
                while first.snapshot().step < per_epoch + 5 {
                    first.step().expect("a step");
                }
            } else {
                finish(first.as_mut());
            }
            let snapshot = bayes_explorer::train::RunSnapshot { model: first.model_view(), ..first.snapshot() };
            let state = Arc::new(first.train_state().expect("a state"));
            let run = AnyRun::from_snapshot(run_config, &snapshot, &table, &request, spec.clone())
                .expect("a run")
                .with_state(state)
                .expect("the state fits");
            let path = dir.path().join(format!("{}.json", what.replace([' ', ','], "_")));
            run.save(&path).expect("saves");
            let (_, weights) = read_run_file(&path).expect("reads");
            run.save(&path).expect("saves again");
            assert!(read_run_file(&path).expect("reads").1 == weights, "{what}: two saves wrote different weights");
            let opened = AnyRun::load(&path).expect("opens");
            assert_eq!(opened.why_not_continued(), None, "{what}");
            let add = usize::from(!stop_inside);
            let mut continued = opened.continued_trainer(&data, add).expect("continues");
            assert_eq!(continued.snapshot().step, snapshot.step, "{what}: starts where it stopped");
            finish(continued.as_mut());
            assert_eq!(opened.continued_config(add), with_epochs(&config, 2), "{what}");
            let (x, y) = (whole.train_state().expect("state"), continued.train_state().expect("state"));
            assert!(state_bits(&x) == state_bits(&y) && x.epochs == y.epochs, "{what}: the continued run differs");
            let (x, y) = (whole.snapshot(), continued.snapshot());
            assert_eq!(first_difference(&x.history, &y.history), None, "{what}");
            assert!(whole.model_view() == continued.model_view(), "{what}: the views' copies differ");
        }
    }
}

/// The version 1 run file the previous release wrote (`tests/data/v1/`) still opens, shows its model and history,
/// and says that it can be shown and re-run but not continued.
#[test]
fn a_version_1_file_opens_and_says_it_cannot_be_continued() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1/flow_affine.json");
    let (record, _) = read_run_file(&path).expect("the version 1 file reads");
    assert_eq!((record.format_version, FORMAT_VERSION), (1, 3));
    let run = AnyRun::load(&path).expect("the version 1 file opens");
    assert_eq!((run.lab(), run.snapshot().epoch, run.snapshot().history.len()), (Lab::Flow, 3, 3));
    let why = run.why_not_continued().expect("not continuable");
    assert!(why.contains("version 1") && why.contains("shown and re-run but not continued"), "{why}");
    let (_, _, _, data) = lab_data(Lab::Flow);
    let error = run.continued_trainer(&data, 1).err().expect("refused").to_string();
    assert!(error.contains("not continued"), "{error}");
}
