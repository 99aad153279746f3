//! The time machine (issue 24) in the VAE and BNN labs: the epoch scrubber puts every view back to a model kept of
//! the run, with the same numbers as the views of a run stopped at that step; "Record animation…" writes the VAE's
//! latent plane over the training; and the histories stay within their budget over long runs of real models.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bayes_explorer::Lab;
use bayes_explorer::models::ModelView;
use bayes_explorer::train::{Trainer, WorkerState};
use bayes_explorer::ui::BayesExplorerApp;
use common::{harness, wait_until, wait_within};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

/// Starts `lab`'s run in the window, pauses it once its first model after the start has come (a pause publishes
/// a model copy) and resumes it, so that the run keeps at least three models however fast the machine trains;
/// returns once it has finished.
fn train_with_one_pause(
    harness: &mut Harness<'_, BayesExplorerApp>,
    lab: Lab,
    kept: impl Fn(&BayesExplorerApp) -> Option<u64>,
) {
    harness.get_by_label("Train").click();
    wait_until(harness, "a model after the start", |app| kept(app).is_some_and(|step| step > 0));
    harness.get_by_label("Pause").click();
    wait_until(harness, "the pause", |app| app.lab(lab).worker_state == Some(WorkerState::Paused));
    harness.get_by_label("Resume").click();
    wait_within(harness, Duration::from_mins(3), "the run", |app| {
        app.lab(lab).worker_state == Some(WorkerState::Finished)
    });
}

/// `trainer`, fresh, run headless to `step`, and its model there.
fn stopped_at(mut trainer: Box<dyn Trainer>, step: u64) -> ModelView {
    let at = |t: &dyn Trainer| -> u64 { t.snapshot().step };
    while at(trainer.as_ref()) < step {
        trainer.step().unwrap();
    }
    assert_eq!(at(trainer.as_ref()), step, "the headless run passed the step");
    trainer.model_view().expect("a model")
}

/// Waits (at most a minute) for one result of a view thread.
fn one_result<R>(drain: impl Fn() -> Vec<R>, pick: impl Fn(R) -> Option<R>) -> R {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        if let Some(r) = drain().into_iter().find_map(&pick) {
            return r;
        }
        assert!(Instant::now() < deadline, "the view thread sent nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The lab's recorder.
fn recorder(app: &mut BayesExplorerApp, lab: Lab) -> &mut bayes_explorer::ui::record::FigureRecorder {
    match lab {
        Lab::Bnn => &mut app.bnn_state_mut().recorder,
        Lab::Vae => &mut app.vae_state_mut().recorder,
        Lab::Flow => &mut app.flow_state_mut().recorder,
    }
}

/// Clicks a figure's "Record animation…" (`nth` on the page, or the last), records it over the training as an
/// animated PNG into `dir` (where the window saves its images), and returns the file's name, its frames and size;
/// the file is removed, so that the next recording is the only one there.
fn record_over_training(
    harness: &mut Harness<'_, BayesExplorerApp>,
    (lab, nth): (Lab, Option<usize>),
    dir: &std::path::Path,
) -> (String, Vec<Vec<u8>>, [u32; 2]) {
    let buttons = harness.query_all_by_label("Record animation…");
    let button = match nth {
        Some(n) => buttons.into_iter().nth(n),
        None => buttons.into_iter().last(),
    };
    button.expect("the figure's Record animation…").click();
    harness.run_steps(2);
    harness.get_by_label_contains("Over the training: one frame per model kept");
    recorder(harness.state_mut(), lab).format = bayes_explorer::ui::animation_file::AnimationFormat::Apng;
    harness.run_steps(2);
    harness.get_by_label("Record").click();
    let found = |dir: &std::path::Path| {
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().contains("-epochs-"))
    };
    wait_within(harness, Duration::from_mins(2), "the animation", |app| {
        let busy = match lab {
            Lab::Bnn => app.bnn_state().recorder.busy(),
            Lab::Vae => app.vae_state().recorder.busy(),
            Lab::Flow => app.flow_state().recorder.busy(),
        };
        !app.run_file_busy() && !busy && found(dir).is_some()
    });
    let path = found(dir).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let (frames, size) = common::decode_apng(&path);
    std::fs::remove_file(&path).unwrap();
    (name, frames, size)
}

/// Consecutive frames differ: each shows a model of its own.
fn assert_every_frame_moves_on(frames: &[Vec<u8>]) {
    for (k, pair) in frames.windows(2).enumerate() {
        let changed = common::differing(&pair[0], &pair[1]);
        assert!(changed > 0.001, "frames {k} and {} are the same ({changed})", k + 1);
    }
}

#[test]
fn the_vae_scrubber_shows_a_kept_model_as_a_run_stopped_there_and_records_the_latent_plane_forming() {
    use bayes_explorer::models::vae::VaeTrainer;
    use bayes_explorer::train::vae_view::{VaeViewRequest, VaeViewResult};
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness();
    harness.state_mut().save_images_to(Some(dir.path().to_owned()));
    harness.get_by_label("VAE").click();
    harness.run_steps(2);
    // Four epochs of 34 steps (batch 128): a handful of models, whatever the lab's default batch.
    harness.state_mut().vae_state_mut().config.epochs = 4;
    harness.state_mut().vae_state_mut().config.batch_size = 128;
    let config = harness.state().vae_state().config.clone();
    train_with_one_pause(&mut harness, Lab::Vae, |app| {
        app.vae_state().scrubber.history.entries().last().map(|e| e.step)
    });
    let steps: Vec<u64> = harness.state().vae_state().scrubber.history.entries().iter().map(|e| e.step).collect();
    assert!(steps.len() >= 3, "models kept: {steps:?}");
    let middle = steps[steps.len() / 2];

    // Scrub back with the slider's own state, as a drag leaves it; every view follows.
    harness.state_mut().vae_state_mut().scrubber.step = Some(middle);
    let n_inputs = |app: &BayesExplorerApp| {
        let (inputs, prepared) = app.vae_state().inputs();
        inputs.len() / prepared.map_or(1, |p| p.n_features()).max(1)
    };
    wait_until(&mut harness, "the scrubbed model's latents", |app| {
        app.vae_state().latents().is_some_and(|l| l.step == middle && l.mu.len() / config.latent == n_inputs(app))
    });
    harness.get_by_label_contains(&format!("(step {middle}): every view shows this model"));
    let shown = harness.state().vae_state().latents().unwrap().clone();

    // The reconstructions are the scrubbed model's (those after the last epoch it had finished), chosen by the
    // scrubber alone: the page has no slider of its own to disagree with it.
    harness.get_by_label("Reconstructions").click();
    harness.run_steps(3);
    let finished = harness.state().vae_state().scrubber.scrubbed().unwrap().epoch.floor();
    assert!((1.0..4.0).contains(&finished), "a model inside the run: epoch {finished}");
    harness.get_by_label(&format!("decoder(encoder mean) after epoch {finished}"));
    assert!(harness.query_by_label("After epoch").is_none(), "a second epoch slider on the reconstructions");
    harness.get_by_label("Latent space").click();
    harness.run_steps(2);

    // A run stopped at that step: the same model, and the view thread gives it the same latents.
    let (inputs, prepared) = harness.state().vae_state().inputs();
    let (inputs, prepared) = (Arc::clone(inputs), Arc::clone(prepared.unwrap()));
    let trainer = Box::new(VaeTrainer::new(config.clone(), &prepared).unwrap());
    let ModelView::Vae { view, .. } = stopped_at(trainer, middle) else { panic!("a VAE") };
    let kept = harness.state().vae_state().scrubber.scrubbed().unwrap().params.clone();
    assert!(*kept == *view.params, "the kept model differs from a run stopped at step {middle}");
    let worker = bayes_explorer::train::vae_view::spawn(|| {}).unwrap();
    worker.request(VaeViewRequest {
        params: Arc::clone(&view.params),
        step: middle,
        run: shown.run,
        inputs,
        grid: ([-4.0, 4.0, -4.0, 4.0], 0),
        dims: (0, 1),
        hover: None,
        path: None,
        live: false,
        prior_samples: bayes_explorer::train::vae_view::PRIOR_SAMPLES,
    });
    let latents = one_result(|| worker.drain(), |r| matches!(r, VaeViewResult::Latents(_)).then_some(r));
    let VaeViewResult::Latents(latents) = latents else { unreachable!() };
    assert_eq!(*latents, shown, "the scrubbed latent plane differs from the stopped run's");

    // The loss curves mark the epoch on show; Latest follows the run again.
    harness.get_by_label("Latest").click();
    harness.run_steps(3);
    assert!(harness.state().vae_state().scrubber.step.is_none());

    // R replays the training: every kept model in turn from the first, each until the plane shows it (a replay moves
    // on only then), in the window on show when it started; then the views follow the run again.
    let latents_step = |app: &BayesExplorerApp| app.vae_state().latents().map(|l| l.step);
    wait_until(&mut harness, "the latest model's latents", |app| latents_step(app) == steps.last().copied());
    harness.run_steps(2);
    let window = harness.state().vae_state().plane_window();
    let before = latents_step(harness.state());
    harness.key_press(egui::Key::R);
    harness.run_steps(2);
    harness.get_by_label("Stop replay");
    let mut shown_steps: Vec<u64> = Vec::new();
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let replaying = harness.state().vae_state().scrubber.replaying();
        if let Some(step) = latents_step(harness.state())
            && shown_steps.last().or(before.as_ref()) != Some(&step)
        {
            shown_steps.push(step);
        }
        let now = harness.state().vae_state().plane_window();
        let moved = now.iter().zip(&window).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(moved < 1e-6 || !replaying, "the replay kept the plane's window: {window:?} to {now:?}");
        if !replaying && shown_steps.last() == steps.last() {
            break;
        }
        assert!(Instant::now() < deadline, "the replay did not end: {shown_steps:?}");
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(shown_steps, steps, "each model in turn shown by the plane, then the latest");
    assert!(harness.state().vae_state().scrubber.step.is_none(), "the replay ends on the latest");
    harness.run_steps(2);
    harness.get_by_label("Replay");

    // Record the latent plane over the training: one frame per model kept, each different.
    harness.get_by_label("Latent space").click();
    harness.run_steps(2);
    let (name, frames, [w, h]) = record_over_training(&mut harness, (Lab::Vae, Some(0)), dir.path());
    assert!(name.starts_with("vae-latent-epochs-0-to-4"), "{name}");
    assert_eq!(frames.len(), steps.len(), "one frame per model kept");
    assert!(w > 200 && h > 200 && w < 1280 && h < 800, "the figure, not the window: {w} x {h}");
    assert_every_frame_moves_on(&frames);
}

#[test]
fn the_bnn_scrubber_shows_a_kept_model_as_a_run_stopped_there() {
    use bayes_explorer::models::bnn::BnnTrainer;
    use bayes_explorer::train::bnn_view::{BnnViewRequest, BnnViewResult, predictive_seed};
    let mut harness = harness();
    harness.get_by_label("BNN").click();
    harness.run_steps(2);
    harness.state_mut().bnn_state_mut().config.epochs = 60;
    let config = harness.state().bnn_state().config.clone();
    train_with_one_pause(&mut harness, Lab::Bnn, |app| {
        app.bnn_state().scrubber.history.entries().last().map(|e| e.step)
    });
    harness.get_by_label("Predictions").click();
    harness.run_steps(2);
    let steps: Vec<u64> = harness.state().bnn_state().scrubber.history.entries().iter().map(|e| e.step).collect();
    assert!(steps.len() >= 3, "models kept: {steps:?}");
    let middle = steps[steps.len() / 2];
    harness.state_mut().bnn_state_mut().scrubber.step = Some(middle);
    wait_until(&mut harness, "the scrubbed model's predictions", |app| {
        app.bnn_state().predictive().is_some_and(|p| p.step == middle)
    });
    harness.get_by_label_contains(&format!("(step {middle}): every view shows this model"));
    let shown = harness.state().bnn_state().predictive().unwrap().clone();

    let prepared = Arc::clone(harness.state().bnn_state().prepared().unwrap());
    let trainer = Box::new(BnnTrainer::new(config.clone(), &prepared).unwrap());
    let ModelView::Bnn { view, .. } = stopped_at(trainer, middle) else { panic!("a BNN") };
    let kept = harness.state().bnn_state().scrubber.scrubbed().unwrap().clone();
    assert!(*kept.params == *view.params, "the kept model differs from a run stopped at step {middle}");
    let worker = bayes_explorer::train::bnn_view::spawn(|| {}).unwrap();
    worker.request(BnnViewRequest {
        params: Arc::clone(&view.params),
        step: middle,
        run: shown.run,
        data: prepared,
        n_samples: config.predictive_samples,
        seed: predictive_seed(Some(config.seed), middle, kept.epoch),
        probe: None,
        band: false,
    });
    let result = one_result(|| worker.drain(), |r| matches!(r, BnnViewResult::Predictive(_)).then_some(r));
    let BnnViewResult::Predictive(predictive) = result else { unreachable!() };
    assert_eq!(predictive.predictive, shown.predictive, "the scrubbed predictions differ from the stopped run's");
    // The latest again.
    harness.get_by_label("Latest").click();
    harness.run_steps(3);
    assert!(harness.state().bnn_state().scrubber.step.is_none());

    // Record the first layer's weight histogram over the training: one frame per model kept, each different.
    let dir = tempfile::tempdir().unwrap();
    harness.state_mut().save_images_to(Some(dir.path().to_owned()));
    harness.get_by_label("Weight distributions").click();
    harness.run_steps(2);
    let (name, frames, [w, h]) = record_over_training(&mut harness, (Lab::Bnn, Some(0)), dir.path());
    assert!(name.starts_with("bnn-layer-1-"), "{name}");
    assert_eq!(frames.len(), steps.len(), "one frame per model kept");
    assert!(w > 200 && h > 100 && w < 1280 && h < 800, "the figure, not the window: {w} x {h}");
    assert_every_frame_moves_on(&frames);

    // A figure the view thread computes: predicted against actual, each frame once its model's predictions are in.
    harness.get_by_label("Predictions").click();
    harness.run_steps(3);
    let (name, frames, _) = record_over_training(&mut harness, (Lab::Bnn, Some(0)), dir.path());
    assert!(name.starts_with("bnn-pred-vs-actual-epochs-0-to-"), "{name}");
    assert_eq!(frames.len(), steps.len(), "one frame per model kept");
    assert_every_frame_moves_on(&frames);
}

/// The models kept are the first, the latest, and the others spread evenly: no gap between two kept models is
/// more than `slack` times the mean gap.
fn assert_evenly_spread(epochs: &[f64], first: f64, last: f64, slack: f64) {
    assert_eq!((epochs[0], *epochs.last().unwrap()), (first, last), "the first and the latest are kept");
    let mean = (last - first) / (epochs.len() - 1) as f64;
    let widest = epochs.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    assert!(widest <= slack * mean, "widest gap {widest:.2} epochs against a mean of {mean:.2}");
}

#[test]
fn the_history_of_a_2000_epoch_bnn_run_stays_within_its_budget() {
    use bayes_explorer::models::bnn::{BnnConfig, BnnTrainer};
    use bayes_explorer::ui::history::{HISTORY_BUDGET_BYTES, ModelBytes, ModelHistory};
    let table = bayes_explorer::data::BuiltinFile::WineRed.load().unwrap();
    let spec = bayes_explorer::data::prepare::default_spec_for_lab(Lab::Bnn, &table);
    let data = Arc::new(bayes_explorer::data::prepare::prepare(&table, &spec).unwrap());
    let config = BnnConfig { epochs: 2000, ..BnnConfig::default() };
    let mut trainer = BnnTrainer::new(config, &data).unwrap();
    let one = match trainer.model_view() {
        Some(ModelView::Bnn { view, .. }) => view.params.bytes(),
        _ => panic!("a BNN"),
    };
    // The lab's budget holds thousands of these; a budget of 100 models makes the thinning work all run long.
    assert!(HISTORY_BUDGET_BYTES / one > 2000, "{one} bytes a model");
    let mut small = ModelHistory::with_budget(100 * one);
    let mut full = ModelHistory::default();
    // A model copy at every epoch's end: far more often than the window takes them.
    let steps_per_epoch = trainer.snapshot().steps_per_epoch as f64;
    while !trainer.finished() {
        let before = trainer.epochs_done();
        trainer.step().unwrap();
        if trainer.epochs_done() > before {
            let Some(ModelView::Bnn { step, view }) = trainer.model_view() else { panic!("a BNN") };
            let epoch = step as f64 / steps_per_epoch;
            small.push(step, epoch, Arc::clone(&view.params));
            full.push(step, epoch, Arc::clone(&view.params));
            assert!(small.bytes() <= 100 * one, "{} bytes kept", small.bytes());
        }
    }
    assert_eq!(small.entries().len(), 100);
    assert_evenly_spread(&small.entries().iter().map(|e| e.epoch).collect::<Vec<_>>(), 1.0, 2000.0, 2.2);
    // Within the lab's own budget, every epoch's model is kept.
    assert_eq!(full.entries().len(), 2000);
    assert!(full.bytes() <= HISTORY_BUDGET_BYTES);
}

#[test]
fn the_history_of_a_50_epoch_conv_vae_run_stays_within_its_budget() {
    use bayes_explorer::models::vae::{VaeConfig, VaeTrainer};
    use bayes_explorer::ui::history::{HISTORY_BUDGET_BYTES, ModelBytes, ModelHistory};
    let table = bayes_explorer::data::BuiltinFile::Mnist5k.load().unwrap();
    let spec = bayes_explorer::data::prepare::default_spec_for_lab(Lab::Vae, &table);
    let data = Arc::new(bayes_explorer::data::prepare::prepare(&table, &spec).unwrap());
    let config = VaeConfig { epochs: 50, ..VaeConfig::course_conv() };
    let trainer = VaeTrainer::new(config, &data).unwrap();
    let Some(ModelView::Vae { view, .. }) = trainer.model_view() else { panic!("a VAE") };
    let one = view.params.bytes();
    // The course's conv VAE, its running averages included.
    assert!(one > 100_000, "{one} bytes a model");
    // A copy every 0.4 s of epochs of about 20 s (the window's rate on two cores): 50 a epoch, 2,500 in all. The
    // copies share their parameters here, but each counts in full, as separate copies do in the window.
    let mut history = ModelHistory::with_budget(HISTORY_BUDGET_BYTES);
    let per_epoch = 50;
    for k in 0..=50 * per_epoch {
        history.push(k as u64, k as f64 / per_epoch as f64, Arc::clone(&view.params));
        assert!(history.bytes() <= HISTORY_BUDGET_BYTES);
    }
    let kept = history.entries().len();
    assert_eq!(kept, (HISTORY_BUDGET_BYTES / one).min(50 * per_epoch + 1), "as many models as the budget holds");
    assert_evenly_spread(&history.entries().iter().map(|e| e.epoch).collect::<Vec<_>>(), 0.0, 50.0, 2.2);
}

#[test]
fn a_saved_run_keeps_its_scrubber_and_an_opened_one_scrubs_back_through_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness();
    harness.get_by_label("VAE").click();
    harness.run_steps(2);
    // Four epochs of 34 steps (batch 128): a handful of models to save and open, few enough that the test does not
    // depend on the lab's default batch.
    harness.state_mut().vae_state_mut().config.epochs = 4;
    harness.state_mut().vae_state_mut().config.batch_size = 128;
    train_with_one_pause(&mut harness, Lab::Vae, |app| {
        app.vae_state().scrubber.history.entries().last().map(|e| e.step)
    });
    let kept: Vec<(u64, u64)> =
        harness.state().vae_state().scrubber.history.entries().iter().map(|e| (e.step, e.epoch.to_bits())).collect();
    assert!(kept.len() >= 3, "models kept: {kept:?}");
    let path = dir.path().join("vae.json");
    harness.state_mut().save_run(Lab::Vae, Some(path.clone()));
    wait_until(&mut harness, "the run file", |app| !app.run_file_busy() && path.exists());
    let params: Vec<_> =
        harness.state().vae_state().scrubber.history.entries().iter().map(|e| Arc::clone(&e.params)).collect();

    // A fresh window opens it: the scrubber has the same models, and scrubbing back shows them.
    let mut opened = common::harness();
    opened.state_mut().open_run(Some(path));
    wait_until(&mut opened, "the opened run's models", |app| {
        app.vae_state().scrubber.history.entries().len() == kept.len()
    });
    let entries = opened.state().vae_state().scrubber.history.entries().to_vec();
    let again: Vec<(u64, u64)> = entries.iter().map(|e| (e.step, e.epoch.to_bits())).collect();
    assert_eq!(again, kept);
    assert!(entries.iter().zip(&params).all(|(e, p)| *e.params == **p), "the models come back as they were");
    let middle = kept[kept.len() / 2].0;
    opened.state_mut().vae_state_mut().scrubber.step = Some(middle);
    wait_until(&mut opened, "the scrubbed model's latents", |app| {
        app.vae_state().latents().is_some_and(|l| l.step == middle)
    });
    opened.get_by_label_contains(&format!("(step {middle}): every view shows this model"));
}

/// The frames of a GIF, as RGBA bytes.
fn gif_frames(path: &std::path::Path) -> Vec<Vec<u8>> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options.read_info(std::fs::File::open(path).unwrap()).unwrap();
    let mut frames = Vec::new();
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        frames.push(frame.buffer.to_vec());
    }
    frames
}

#[test]
fn train_animate_records_the_labs_figure_offscreen_after_training_and_from_a_run_file() {
    const BIN: &str = env!("CARGO_BIN_EXE_bayes-explorer");
    let dir = tempfile::tempdir().unwrap();
    let (run, trained, opened) = (dir.path().join("bnn.json"), dir.path().join("trained"), dir.path().join("opened"));
    let output = std::process::Command::new(BIN)
        .args(["train", "bnn", "--epochs", "600", "--save"])
        .arg(&run)
        .arg("--animate")
        .arg(&trained)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let name = "bnn-layer-1-sample-epochs-0-to-600.gif";
    assert!(stdout.contains(&format!("animation: {}", trained.join(name).display())), "{stdout}");
    // One frame for each model the run file kept, each drawn for its own model.
    let kept = bayes_explorer::train::runfile::AnyRun::load(&run).unwrap().kept().len();
    let frames = gif_frames(&trained.join(name));
    assert!(kept >= 3, "{kept} models kept");
    assert_eq!(frames.len(), kept);
    assert!(frames.windows(2).all(|pair| common::differing(&pair[0], &pair[1]) > 0.001), "every frame moves on");

    // From the run file, as animated PNGs (lossless): the same models, one frame each, the figure's size.
    let output = std::process::Command::new(BIN)
        .args(["train", "bnn", "--load"])
        .arg(&run)
        .arg("--animate")
        .arg(&opened)
        .arg("--apng")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (again, [w, h]) = common::decode_apng(&opened.join(name.replace(".gif", ".png")));
    assert_eq!(again.len(), frames.len());
    assert_eq!(again[0].len(), frames[0].len(), "the same figure size ({w} x {h})");
    assert!(again.windows(2).all(|pair| common::differing(&pair[0], &pair[1]) > 0.001), "every frame moves on");
}

#[test]
fn the_flow_scrubber_shows_a_kept_model_as_a_run_stopped_there() {
    use bayes_explorer::models::flow::{FlowConfig, FlowTrainer};
    use bayes_explorer::train::flow_view::{FlowViewRequest, FlowViewResult, FlowViewWorker};
    let mut harness = harness();
    harness.get_by_label("Flow").click();
    harness.run_steps(3);
    // Long enough not to end before the pause; the test scrubs the paused run.
    *harness.state_mut().flow_config_mut() =
        FlowConfig { layers: 2, hidden: vec![16], epochs: 1500, ..FlowConfig::default() };
    let config = harness.state().flow_state().config.clone();
    harness.get_by_label("Train").click();
    wait_until(&mut harness, "two models after the start", |app| {
        app.flow_state().scrubber.history.entries().len() >= 3
    });
    harness.get_by_label("Pause").click();
    wait_until(&mut harness, "the pause", |app| app.lab(Lab::Flow).worker_state == Some(WorkerState::Paused));
    let steps: Vec<u64> = harness.state().flow_state().scrubber.history.entries().iter().map(|e| e.step).collect();
    assert!(steps.len() >= 3, "models kept: {steps:?}");
    let middle = steps[steps.len() / 2];
    harness.state_mut().flow_state_mut().scrubber.step = Some(middle);
    // The full pass (every point) of the scrubbed model.
    wait_until(&mut harness, "the scrubbed model's stages", |app| {
        app.flow_state()
            .geometry()
            .is_some_and(|g| g.step == middle && g.generation[0].len() == bayes_explorer::train::flow_view::N_SAMPLES)
    });
    harness.get_by_label_contains(&format!("(step {middle}): every view shows this model"));
    let shown = harness.state().flow_state().geometry().unwrap().clone();

    // A run stopped at that step: the same model, and the view thread gives it the same stages.
    let table = &harness.state().lab(Lab::Flow).data.as_ref().expect("the moons").table;
    let spec = &harness.state().lab(Lab::Flow).data.as_ref().unwrap().spec;
    let prepared = Arc::new(bayes_explorer::data::prepare::prepare(table, spec).unwrap());
    let trainer = Box::new(FlowTrainer::new(config, &prepared).unwrap());
    let ModelView::Flow { params, .. } = stopped_at(trainer, middle) else { panic!("a flow") };
    let kept = Arc::clone(&harness.state().flow_state().scrubber.scrubbed().unwrap().params);
    assert!(*kept == *params, "the kept model differs from a run stopped at step {middle}");
    let (data, run) = harness.state().flow_state().view_points();
    let worker = FlowViewWorker::spawn(|| {}).unwrap();
    worker.request(FlowViewRequest {
        params,
        step: middle,
        run,
        data: Arc::clone(data),
        resolution: harness.state().flow_state().resolution,
        aspect: 1.0,
        focus: 0,
        probe: None,
        live: false,
    });
    let result = one_result(|| worker.drain(), |r| matches!(r, FlowViewResult::Geometry(_)).then_some(r));
    let FlowViewResult::Geometry(geometry) = result else { unreachable!() };
    assert_eq!(geometry.generation, shown.generation, "the stages of the Gaussian samples");
    assert_eq!(geometry.inference, shown.inference, "the data pulled back");
    assert_eq!(geometry.grid_lines, shown.grid_lines, "the warped grid");

    // Record the Keras figure (the page's last "Record animation…"; the loss curves' comes first) over the training.
    let dir = tempfile::tempdir().unwrap();
    harness.state_mut().save_images_to(Some(dir.path().to_owned()));
    harness.get_by_label("Data and latent space (Keras figure)").click();
    harness.run_steps(3);
    let (name, frames, _) = record_over_training(&mut harness, (Lab::Flow, None), dir.path());
    assert!(name.starts_with("flow-keras-epochs-0-to-"), "{name}");
    assert_eq!(frames.len(), steps.len(), "one frame per model kept");
    assert_every_frame_moves_on(&frames);
}
