//! The VAE's trainer against its contracts: the NaN guard's, and the hand-written passes' agreement with candle's
//! autograd (loss terms, gradients, batch statistics, running averages).

use std::sync::Arc;

use super::network::Networks;
use super::trainer::Shard;
use super::{VaeArch, VaeConfig, VaeModel, VaeNet, VaeNetworks, VaeTrainer};
use crate::Lab;
use crate::compute::cpu::{conv as conv_cpu, vae as vae_cpu};
use crate::data::BuiltinFile;
use crate::data::prepare::{Prepared, default_spec_for_lab, prepare};
use crate::models::conv::{BatchStats, pool_stats};
use crate::models::trainer::Trainer;
use crate::models::trainer::testing::assert_the_guard_catches;

/// The convolutional networks' running averages, layer by layer.
fn running_averages(model: &VaeModel) -> Vec<(Vec<f32>, Vec<f32>)> {
    match model.params().expect("parameters").networks {
        VaeNetworks::Conv(c) => c
            .encoder
            .iter()
            .chain(&c.decoder)
            .filter_map(|l| l.norm.as_ref().map(|n| (n.running_mean.clone(), n.running_variance.clone())))
            .collect(),
        VaeNetworks::Mlp { .. } => Vec::new(),
    }
}

/// A NaN, an infinity or a huge value put into one variable after two steps, in both architectures: the third
/// step fails, the guard names the quantity where the pass (shard by shard, as the step ran it) first holds a
/// NaN or an infinity, the variables go back to their values before step 2, and nothing of the failed step
/// counts (not the step, the cursor, the epoch's sums, the latent draws nor the running averages): the next
/// step, at a lower rate, redoes it ([`assert_the_guard_catches`]).
#[test]
fn the_guard_names_where_an_injected_non_finite_value_first_appears() {
    let table = BuiltinFile::Digits8x8.load().expect("digits");
    let mut data = prepare(&table, &default_spec_for_lab(Lab::Vae, &table)).expect("digits prepare");
    let n_in = data.n_features();
    data.x_train.truncate(256 * n_in);
    data.y_train.truncate(256);
    data.x_test.truncate(64 * n_in);
    data.y_test.truncate(64);
    let data = Arc::new(data);
    let inf = f32::INFINITY;
    // (architecture, variable, element (all when None), value, what the guard must name)
    let cases = [
        (VaeArch::Mlp, "encoder layer 1 biases", Some(0), inf, "encoder layer 1's pre-activations"),
        // The last encoder layer gives [mu, log sigma²] (latent 2).
        (VaeArch::Mlp, "encoder layer 2 biases", Some(1), inf, "the latent means from encoder layer 2"),
        (VaeArch::Mlp, "encoder layer 2 biases", Some(2), inf, "the log-variance from encoder layer 2"),
        // exp(½ · 200) overflows f32.
        (VaeArch::Mlp, "encoder layer 2 biases", Some(3), 200.0, "the latent standard deviations"),
        // Infinite, not NaN: a ReLU turns a NaN into 0, and the loss stays finite.
        (VaeArch::Mlp, "decoder layer 1 biases", Some(5), inf, "decoder layer 1's pre-activations"),
        // Logits of 3e37: every pixel that is off costs 3e37, more than a dozen of them overflow.
        (VaeArch::Mlp, "decoder layer 2 biases", None, 3e37, "the reconstruction term"),
        // A mean of 1e20: finite draws and reconstructions, but mu² in the KL is past f32.
        (VaeArch::Mlp, "encoder layer 2 biases", Some(0), 1e20, "the KL term"),
        (VaeArch::Conv, "encoder convolution 2 kernel", Some(7), inf, "encoder convolution 2's output"),
        (
            VaeArch::Conv,
            "encoder convolution 1 batch-norm scale",
            Some(3),
            inf,
            "encoder convolution 1's batch normalisation",
        ),
        (VaeArch::Conv, "encoder dense layer biases", Some(3), inf, "the log-variance from the encoder dense layer"),
        (VaeArch::Conv, "decoder dense layer biases", Some(0), inf, "the decoder dense layer's output"),
        (VaeArch::Conv, "decoder convolution 2 kernel", Some(0), f32::NAN, "decoder convolution 2's output"),
        // NaN, not ∞: the likelihood's sigmoid would take ∞ to 1.
        (VaeArch::Conv, "decoder convolution 4 biases", None, f32::NAN, "decoder convolution 4's output"),
    ];
    let batch_size = 32;
    for (arch, name, index, value, expected) in cases {
        let config = match arch {
            VaeArch::Mlp => VaeConfig { hidden: vec![16], batch_size, epochs: 2, ..VaeConfig::default() },
            VaeArch::Conv => VaeConfig { batch_size, epochs: 2, ..VaeConfig::course_conv() },
        };
        let mut trainer = VaeTrainer::new(config, &data).expect("a VAE");
        let what = format!("{arch:?}, {name}[{index:?}] = {value}");
        let poked = (name, index, value, expected);
        assert_the_guard_catches(&mut trainer, poked, batch_size, 1e-4, running_averages, &what);
    }
}

/// A hand-written pass: from the network, the minibatch and the noise, its loss terms, flat gradient and
/// pooled batch statistics.
type HandPass<'a> =
    dyn FnMut(&VaeNet, &[f32], &[f32]) -> (vae_cpu::VaeStepLoss, Vec<f32>, (BatchStats, BatchStats)) + 'a;

/// The shard-by-shard reference of a step by candle's autograd (as [`VaeTrainer`] takes it) against a
/// hand-written pass `by_hand` (its loss terms and flat gradient) on the first `rows` training rows with fresh
/// noise, KL weight 0.7: the loss terms, every gradient value, and for the convolutional VAE the pooled batch
/// statistics `by_hand` reports.
fn assert_the_step_matches_candle(
    trainer: &VaeTrainer,
    rows: usize,
    rng: &mut rand_chacha::ChaCha8Rng,
    by_hand: &mut HandPass<'_>,
) {
    let model = &trainer.model;
    let what = format!("{:?} {:?}, {rows} rows", model.config.arch, model.config.likelihood);
    let x = model.x_train.narrow(0, 0, rows).expect("rows");
    let eps = model.net.draw_noise(rows, rng).expect("noise");
    let shards = model.forward_backward_in_shards(&x, &eps, 0.7).expect("candle's shards");
    let share = |s: &Shard| s.rows as f64 / rows as f64;
    let points: Vec<f32> = x.flatten_all().and_then(|t| t.to_vec1()).expect("x");
    let noise: Vec<f32> = eps.flatten_all().and_then(|t| t.to_vec1()).expect("eps");
    let (got, gradients, stats) = by_hand(&model.net, &points, &noise);
    for (term, a, pick) in [
        ("recon", got.recon, (|s: &Shard| s.recon) as fn(&Shard) -> f64),
        ("kl", got.kl, |s| s.kl),
        ("total", got.total, |s| s.total),
    ] {
        let b: f64 = shards.iter().map(|s| share(s) * pick(s)).sum();
        assert!((a - b).abs() < 1e-5 * (1.0 + b.abs()), "{what} {term}: {a} vs {b}");
    }
    let mut offset = 0;
    for (var, name) in trainer.variables.vars.iter().zip(&trainer.variables.names) {
        let mut want = vec![0f32; var.as_tensor().elem_count()];
        for shard in &shards {
            let g = shard.grads.as_ref().and_then(|g| g.get(var.as_tensor())).expect("a gradient");
            let g: Vec<f32> = g.flatten_all().and_then(|t| t.to_vec1()).expect("values");
            want.iter_mut().zip(g).for_each(|(w, g)| *w += (share(shard) * f64::from(g)) as f32);
        }
        let have = &gradients[offset..offset + want.len()];
        offset += want.len();
        let scale = want.iter().fold(0.0f32, |a, &b| a.max(b.abs())).max(1e-3);
        for (i, (&g, &w)) in have.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 2e-4 * scale, "{what}: {name}[{i}]: {g} vs {w}");
        }
    }
    assert_eq!(offset, gradients.len(), "{what}: one gradient value per variable value");
    let parts: Vec<(usize, &(BatchStats, BatchStats))> = shards.iter().map(|s| (s.rows, &s.norm_stats)).collect();
    let (want, have) = (pool_stats(&parts), stats);
    assert_eq!(want.0.len() + want.1.len(), have.0.len() + have.1.len(), "{what}: statistics per layer");
    for (layer, (w, h)) in want.0.iter().chain(&want.1).zip(have.0.iter().chain(&have.1)).enumerate() {
        assert_eq!(w.is_some(), h.is_some(), "{what}: layer {layer} normalised");
        if let (Some(w), Some(h)) = (w, h) {
            for (a, b) in w.mean.iter().chain(&w.variance).zip(h.mean.iter().chain(&h.variance)) {
                assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "{what}: layer {layer} statistics {b} vs {a}");
            }
        }
    }
}

/// `steps` steps by the hand-written pass and as many by candle's autograd, from the same start, give the same
/// minibatch losses, and the same running averages after the first. Adam moves every value by about its
/// learning rate whatever the gradient's size, so where a gradient value is within rounding of zero the two
/// paths' rounding sends it different ways, and the runs drift apart: for the convolutional VAE on 8 × 8 digits
/// under the Gaussian likelihood the losses agreed to 7e-8 for three steps, then to 1e-5, 2e-4 and 2e-3 (and
/// the running variances by a few per cent by the tenth step), while each step's gradient from the same values
/// agrees ([`assert_the_step_matches_candle`]).
fn assert_steps_agree(config: &VaeConfig, data: &Arc<Prepared>, steps: usize) {
    let mut by_hand = VaeTrainer::new(config.clone(), data).expect("a VAE");
    let mut by_candle = VaeTrainer::new(config.clone(), data).expect("a VAE");
    by_candle.set_hand_written_pass(false);
    for step in 0..steps {
        by_hand.step().expect("step");
        by_candle.step().expect("step");
        let (a, b) = (by_hand.epoch_loop().batch_loss(), by_candle.epoch_loop().batch_loss());
        assert!((a - b).abs() < 1e-3 * (1.0 + b.abs()), "{config:?} step {step}: {a} vs candle {b}");
        if step == 0 {
            for ((m1, v1), (m2, v2)) in running_averages(&by_hand.model).iter().zip(&running_averages(&by_candle.model))
            {
                for (a, b) in m1.iter().chain(v1).zip(m2.iter().chain(v2)) {
                    assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{config:?} running averages: {a} vs {b}");
                }
            }
        }
    }
}

/// The hand-written MLP pass (models::vae_cpu) gives candle autograd's loss terms and gradients, for both
/// likelihoods, a KL weight that is not 1, three latent dimensions and odd widths, on a trained network, with a
/// full and a ragged minibatch and a single row (one shard, where the others have two; one workspace for all);
/// then ten steps each way from the same start agree.
#[test]
fn the_hand_written_mlp_pass_matches_candle_autograd() {
    use rand::SeedableRng;

    use super::Likelihood;
    let table = BuiltinFile::Digits8x8.load().expect("digits");
    let data = Arc::new(prepare(&table, &default_spec_for_lab(Lab::Vae, &table)).expect("digits prepare"));
    for likelihood in [Likelihood::Bernoulli, Likelihood::Gaussian] {
        let config = VaeConfig {
            hidden: vec![19, 11],
            latent: 3,
            likelihood,
            beta: 0.7,
            batch_size: 48,
            learning_rate: 3e-3,
            ..VaeConfig::default()
        };
        let mut trainer = VaeTrainer::new(config.clone(), &data).expect("a VAE");
        for _ in 0..15 {
            trainer.step().expect("step");
        }
        let mut work = vae_cpu::MlpVaeWorkspace::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for rows in [48, 29, 1] {
            assert_the_step_matches_candle(&trainer, rows, &mut rng, &mut |net, points, noise| {
                let loss = net
                    .with_mlp_values(0.7, |vae| vae_cpu::mlp_vae_loss_and_gradients(vae, points, noise, &mut work))
                    .flatten()
                    .expect("an MLP VAE");
                (loss, work.gradients().to_vec(), (Vec::new(), Vec::new()))
            });
        }
        assert_steps_agree(&config, &data, 10);
    }
}

/// The hand-written convolutional pass (models::conv_cpu) gives candle autograd's loss terms, gradients and
/// batch statistics, shard by shard, for both likelihoods, a KL weight that is not 1 and three latent
/// dimensions, on a network trained a little (so that the batch-norm scales and shifts are not 1 and 0), on
/// 8 × 8 and 28 × 28 images, with a full and a ragged minibatch and a single image (one shard); then three steps
/// each way from the same start agree, running averages included.
#[test]
fn the_hand_written_conv_pass_matches_candle_autograd() {
    use rand::SeedableRng;

    use super::Likelihood;
    for (file, batch) in [(BuiltinFile::Digits8x8, 48), (BuiltinFile::Mnist5k, 12)] {
        let table = file.load().expect("digits");
        let data = Arc::new(prepare(&table, &default_spec_for_lab(Lab::Vae, &table)).expect("prepare"));
        for likelihood in [Likelihood::Bernoulli, Likelihood::Gaussian] {
            let config = VaeConfig {
                arch: VaeArch::Conv,
                latent: 3,
                likelihood,
                beta: 0.7,
                batch_size: batch,
                learning_rate: 3e-3,
                ..VaeConfig::default()
            };
            let mut trainer = VaeTrainer::new(config.clone(), &data).expect("a VAE");
            trainer.set_hand_written_pass(false);
            for _ in 0..5 {
                trainer.step().expect("step");
            }
            let mut work = conv_cpu::ConvVaeWorkspace::default();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
            for rows in [batch, batch / 2 + 3, 1] {
                assert_the_step_matches_candle(&trainer, rows, &mut rng, &mut |net, points, noise| {
                    let Networks::Conv(conv) = &net.networks else { panic!("a convolutional VAE") };
                    let loss = conv
                        .with_values(likelihood, 0.7, |vae| {
                            conv_cpu::conv_vae_loss_and_gradients(vae, points, noise, &mut work)
                        })
                        .flatten()
                        .expect("f32 variables");
                    (loss, work.gradients().to_vec(), pool_stats(&work.batch_stats()))
                });
            }
            assert_steps_agree(&config, &data, 3);
        }
    }
}

/// The hand-written evaluation pass (batch normalisation on the running averages) encodes and decodes as
/// candle's does, on a trained convolutional VAE, over more images than one chunk (the last one ragged), on the
/// calling thread (the views) and on rayon's (the trainer).
#[test]
fn the_hand_written_conv_evaluation_matches_candle() {
    let table = BuiltinFile::Mnist5k.load().expect("MNIST 5k");
    let data = Arc::new(prepare(&table, &default_spec_for_lab(Lab::Vae, &table)).expect("prepare"));
    // The weights themselves (no average), which the trainer's network below evaluates.
    let config =
        VaeConfig { arch: VaeArch::Conv, latent: 3, batch_size: 32, weight_average: None, ..VaeConfig::default() };
    let mut trainer = VaeTrainer::new(config, &data).expect("a VAE");
    for _ in 0..20 {
        trainer.step().expect("step");
    }
    let VaeNetworks::Conv(conv) = trainer.params().expect("parameters").networks else { panic!("conv") };
    let n = crate::compute::cpu::conv::EVAL_CHUNK + 45;
    let images = &data.x_train[..n * 784];
    let close = |what: &str, got: &[f32], want: &[f32]| {
        assert_eq!(got.len(), want.len(), "{what}");
        let scale = want.iter().fold(0.0f32, |a, &b| a.max(b.abs()));
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= 1e-4 * scale, "{what}[{i}]: {g} vs candle {w}");
        }
    };
    let encoded = conv.encode_cpu(images, n).expect("encode");
    close("encode", &encoded, &conv.encode_by_candle(images, n, 64).expect("candle encode"));
    let z: Vec<f32> = encoded.chunks_exact(6).flat_map(|row| row[..3].to_vec()).collect();
    close("decode", &conv.decode_cpu(&z, n).expect("decode"), &conv.decode_by_candle(&z, n, 64).expect("candle"));
    // The trainer's evaluation takes the same pass on rayon's threads.
    let Networks::Conv(net) = &trainer.model.net.networks else { panic!("conv") };
    let x = candle_core::Tensor::from_slice(images, (n, 784), &candle_core::Device::Cpu).expect("tensor");
    let parallel = net.running_by_hand(&x, false).expect("the hand-written pass");
    close("encode on two threads", &parallel.flatten_all().and_then(|t| t.to_vec1()).expect("values"), &encoded);
    assert!(conv.encode_cpu(&images[1..], n).is_err(), "a wrong length is refused");
}

/// With a weight average (the VAE's default) the steps are the same as without one (the same weights after
/// every step), and the model the run evaluates, shows and saves is the average: `params` equals the recursion
/// a ← d a + (1 − d) w over the weights each step t started from, with d = min(decay, (1 + t) / (10 + t)); each
/// epoch's test negative ELBO and the reconstructions it keeps are the average's, not the last step's weights'.
#[test]
fn a_weight_average_leaves_the_steps_and_is_the_model_the_run_evaluates() {
    use crate::models::trainer::EpochModel;
    use crate::models::trainer::testing::expected_average;

    let table = BuiltinFile::Digits8x8.load().expect("digits");
    let mut data = prepare(&table, &default_spec_for_lab(Lab::Vae, &table)).expect("digits prepare");
    let n_in = data.n_features();
    data.x_train.truncate(200 * n_in);
    data.y_train.truncate(200);
    let data = Arc::new(data);
    let base = VaeConfig { hidden: vec![16], batch_size: 32, epochs: 2, ..VaeConfig::default() };
    assert_eq!(base.weight_average, Some(super::WEIGHT_AVERAGE), "the MLP VAE's default");
    assert_eq!(VaeConfig::course_conv().weight_average, Some(super::WEIGHT_AVERAGE), "the convolutional VAE's default");
    let decay = 0.9;
    let mut averaged = VaeTrainer::new(VaeConfig { weight_average: Some(decay), ..base.clone() }, &data).expect("VAE");
    let mut plain = VaeTrainer::new(VaeConfig { weight_average: None, ..base.clone() }, &data).expect("VAE");
    let flat = |p: &super::VaeParams| -> Vec<f64> {
        let VaeNetworks::Mlp { encoder, decoder } = &p.networks else { panic!("an MLP VAE") };
        let layers = encoder.layers.iter().chain(&decoder.layers);
        layers.flat_map(|d| d.weights.iter().chain(&d.biases)).map(|&v| f64::from(v)).collect()
    };
    let expected = expected_average(&mut plain, &mut averaged, decay, |t| flat(&t.params().expect("params")));
    assert_eq!(flat(&averaged.model.params().expect("weights")), flat(&plain.params().expect("weights")), "steps");
    let average = averaged.params().expect("params");
    let got = flat(&average);
    let worst = got.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(worst < 1e-5, "the average is {worst} from its recursion");
    assert!(got != flat(&plain.params().expect("params")), "the model is the last step's weights");
    // The last epoch's test figure is the average's: a trainer built on the average's parameters (keeping none of
    // its own) gives it to the bit, and the plain run's figure differs.
    let reported = |trainer: &VaeTrainer| -> f64 {
        let last = trainer.epoch_loop().history().last().expect("an epoch");
        last.metrics.iter().find(|(k, _)| k == "test_neg_elbo").expect("test figure").1
    };
    let of_average = VaeTrainer::with_params(VaeConfig { weight_average: None, ..base }, &data, &average)
        .expect("VAE")
        .test_elbo()
        .expect("ELBO")
        .neg_elbo;
    assert_eq!(reported(&averaged).to_bits(), of_average.to_bits());
    assert_eq!(averaged.test_elbo().expect("ELBO").neg_elbo.to_bits(), of_average.to_bits());
    assert!((reported(&plain) - of_average).abs() > 1e-4, "the average and the weights evaluate alike");
    // The view shows the average, and the reconstructions it keeps are the average's.
    let step = averaged.epoch_loop().step();
    let Some(crate::models::ModelView::Vae { view, .. }) = averaged.model.model_view(step) else { panic!("a view") };
    assert_eq!(*view.params, average);
    let last = &view.reconstructions.last().expect("reconstructions").1;
    assert_eq!(*last, averaged.test_reconstructions(super::RECON_IMAGES).expect("reconstructions"));
    // A saved state names its averages and puts them back; a VAE without an average refuses them.
    let state = averaged.model.extra_state();
    assert_eq!(state.len(), averaged.variables.vars.len());
    assert!(state.iter().all(|(name, _)| name.starts_with("weight average of ")), "{:?}", state[0].0);
    let mut fresh = VaeTrainer::new(VaeConfig { weight_average: Some(decay), ..averaged.model.config.clone() }, &data)
        .expect("VAE");
    fresh.model.restore_extra(&state, None).expect("restores");
    assert_eq!(flat(&fresh.params().expect("params")), got);
    assert!(plain.model.extra_state().is_empty());
    assert!(plain.model.restore_extra(&state, None).is_err(), "a VAE without an average took one");
}

/// Which inputs each architecture and likelihood refuse: on images nothing; on a table the convolutional VAE and the
/// Bernoulli likelihood, each message naming the feature count (and the negative values of a square count) and
/// what to use instead; the MLP VAE's squared error takes a table.
#[test]
fn a_table_refuses_the_conv_vae_and_the_bernoulli_likelihood_saying_why() {
    use super::{Likelihood, inputs_refusal};
    for arch in [VaeArch::Mlp, VaeArch::Conv] {
        for likelihood in [Likelihood::Bernoulli, Likelihood::Gaussian] {
            assert_eq!(inputs_refusal(arch, likelihood, 784, true), None, "{arch:?} {likelihood:?} on images");
        }
    }
    assert_eq!(inputs_refusal(VaeArch::Mlp, Likelihood::Gaussian, 11, false), None);
    let bernoulli = inputs_refusal(VaeArch::Mlp, Likelihood::Bernoulli, 11, false).expect("refused");
    assert!(bernoulli.starts_with("the Bernoulli likelihood is for images"), "{bernoulli}");
    assert!(
        bernoulli.contains("this data has 11 features, a table") && bernoulli.contains("--gaussian"),
        "{bernoulli}"
    );
    let conv = inputs_refusal(VaeArch::Conv, Likelihood::Gaussian, 25, false).expect("refused");
    assert!(conv.starts_with("the convolutional VAE needs images"), "{conv}");
    assert!(conv.ends_with("this data has 25 features with negative values"), "{conv}");
    // Sixteen columns are a table's, not 4 x 4 pixels: no negative values are blamed.
    let conv = inputs_refusal(VaeArch::Conv, Likelihood::Gaussian, 16, false).expect("refused");
    assert!(conv.ends_with("this data has 16 features"), "{conv}");
    // The rule that picks the likelihood for the data: only the MLP's Bernoulli on a table changes.
    for (config, images, switched) in [
        (VaeConfig::default(), false, true),
        (VaeConfig::default(), true, false),
        (VaeConfig { likelihood: Likelihood::Gaussian, ..VaeConfig::default() }, false, false),
        (VaeConfig { likelihood: Likelihood::Bernoulli, ..VaeConfig::course_conv() }, false, false),
    ] {
        let mut picked = config.clone();
        assert_eq!(super::squared_error_for_a_table(&mut picked, images), switched, "{config:?} images {images}");
        let expected = if switched { Likelihood::Gaussian } else { config.likelihood };
        assert_eq!(picked, VaeConfig { likelihood: expected, ..config }, "only the likelihood changes");
    }
}
