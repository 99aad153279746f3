//! The Bayesian neural network's statistics: closed-form KL against Monte Carlo, the ELBO's gradient against
//! finite differences, the conjugate linear-Gaussian posterior, the calibration of the Normal head, and the
//! GPU predictive path against candle.

use std::sync::Arc;

use bayes_explorer::compute::Activation;
use bayes_explorer::compute::cpu::optim::OptimizerKind;
use bayes_explorer::compute::{CandleBackend, GpuBackend};
use bayes_explorer::data::prepare::{OutputKind, Prepared};
use bayes_explorer::models::bnn::{
    BnnConfig, BnnNet, BnnTask, BnnTrainer, Head, KlEstimate, Posterior, PredictiveRows, predictive_on, train_subset,
};
use bayes_explorer::train::Trainer;
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Sets every variable of `net` to seeded values: means ~ U(-0.5, 0.5), raw scales ~ U(-1.5, 0.5).
fn randomise(net: &BnnNet, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (vars, names) = net.vars();
    for (var, name) in vars.iter().zip(names) {
        let n = var.as_tensor().elem_count();
        let (lo, hi) = if name.contains("scales") { (-1.5, 0.5) } else { (-0.5, 0.5) };
        let v: Vec<f64> = (0..n).map(|_| rng.random_range(lo..hi)).collect();
        let t = Tensor::from_vec(v, var.as_tensor().shape(), &Device::Cpu).unwrap().to_dtype(var.dtype()).unwrap();
        var.set(&t).unwrap();
    }
}

fn config(posterior: Posterior, hidden: Vec<usize>) -> BnnConfig {
    BnnConfig { hidden, posterior, bayesian_output: true, activation: Activation::Tanh, ..BnnConfig::default() }
}

#[test]
fn closed_form_kl_matches_its_monte_carlo_estimate() {
    for posterior in [Posterior::MeanField, Posterior::FullCovariance] {
        let cfg = BnnConfig { prior_sd: 0.7, ..config(posterior, vec![3]) };
        let mut net = BnnNet::new(&cfg, 2, BnnTask::Regression(Head::Mse), None, DType::F64).unwrap();
        randomise(&net, 7);
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let eps = net.draw_noise(&mut rng).unwrap();
        let exact = net.kl_divergence(&eps).unwrap().to_scalar::<f64>().unwrap();
        net.set_kl_estimate(KlEstimate::MonteCarlo);
        let n: u32 = 20_000;
        let draws: Vec<f64> = (0..n)
            .map(|_| {
                let eps = net.draw_noise(&mut rng).unwrap();
                net.kl_divergence(&eps).unwrap().to_scalar::<f64>().unwrap()
            })
            .collect();
        let mean = draws.iter().sum::<f64>() / f64::from(n);
        let sd = (draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / f64::from(n - 1)).sqrt();
        let se = sd / f64::from(n).sqrt();
        assert!(
            (mean - exact).abs() < 4.0 * se,
            "{posterior:?}: closed form {exact:.4}, Monte Carlo {mean:.4} ± {se:.4} (4 standard errors allowed)"
        );
        assert!(exact > 0.0);
    }
}

#[test]
fn elbo_gradient_matches_central_finite_differences() {
    let device = Device::Cpu;
    let x = Tensor::from_vec(vec![0.3f64, -1.2, 0.8, 0.5, -0.4, 1.1, 0.0, -0.7], (4, 2), &device).unwrap();
    let y_value = Tensor::from_vec(vec![0.5f64, -0.3, 1.2, 0.1], 4, &device).unwrap();
    let y_class = Tensor::from_vec(vec![0u32, 2, 1, 2], 4, &device).unwrap();
    let cases = [
        (Posterior::MeanField, BnnTask::Regression(Head::Mse), KlEstimate::ClosedForm),
        (Posterior::FullCovariance, BnnTask::Regression(Head::Normal), KlEstimate::ClosedForm),
        (Posterior::FullCovariance, BnnTask::Regression(Head::Mse), KlEstimate::MonteCarlo),
        (Posterior::MeanField, BnnTask::Classification { n_classes: 3 }, KlEstimate::MonteCarlo),
        (Posterior::Deterministic, BnnTask::Regression(Head::Normal), KlEstimate::ClosedForm),
    ];
    for (posterior, task, kl) in cases {
        let cfg = BnnConfig { kl, ..config(posterior, vec![3]) };
        let net = BnnNet::new(&cfg, 2, task, None, DType::F64).unwrap();
        randomise(&net, 11);
        let eps = net.draw_noise(&mut ChaCha8Rng::seed_from_u64(12)).unwrap();
        let y = if matches!(task, BnnTask::Classification { .. }) { &y_class } else { &y_value };
        let loss = |net: &BnnNet| net.loss(&x, y, &eps, 10).unwrap().total.to_scalar::<f64>().unwrap();
        let grads = net.loss(&x, y, &eps, 10).unwrap().total.backward().unwrap();
        let (vars, names) = net.vars();
        let h = 1e-6;
        for (var, name) in vars.iter().zip(&names) {
            let grad = grads.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let values = var.as_tensor().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            for (i, g) in grad.iter().enumerate() {
                let mut shifted = values.clone();
                let mut at = |delta: f64| {
                    shifted[i] = values[i] + delta;
                    var.set(&Tensor::from_vec(shifted.clone(), var.as_tensor().shape(), &device).unwrap()).unwrap();
                    loss(&net)
                };
                let fd = (at(h) - at(-h)) / (2.0 * h);
                var.set(&Tensor::from_vec(values.clone(), var.as_tensor().shape(), &device).unwrap()).unwrap();
                assert!(
                    (fd - g).abs() <= 1e-5 * (1.0 + g.abs()),
                    "{posterior:?} {task:?} {kl:?}: {name}[{i}]: autodiff {g:.8}, finite difference {fd:.8}"
                );
            }
        }
    }
}

fn prepared(x_train: Vec<f32>, y_train: Vec<f32>, x_test: Vec<f32>, y_test: Vec<f32>, d: usize) -> Arc<Prepared> {
    Arc::new(Prepared {
        feature_names: (0..d).map(|j| format!("x{j}")).collect(),
        feature_categories: vec![Vec::new(); d],
        one_hot: Vec::new(),
        output: Some(("y".into(), OutputKind::Regression)),
        x_train,
        y_train,
        x_test,
        y_test,
        feature_mean: vec![0.0; d],
        feature_scale: vec![1.0; d],
    })
}

/// Bayesian linear regression y = w x + b + noise, noise variance 1/2 (the squared-error head's implied
/// likelihood), prior N(0, 1) on w and b. The exact posterior is N(m, S) with S⁻¹ = XᵀX / σ² + I, m = S Xᵀy / σ²,
/// and a full-covariance Gaussian family contains it, so variational Bayes must land on it; mean-field lands on
/// the same mean with variances 1 / (S⁻¹)_ii.
#[test]
fn one_layer_posterior_approaches_the_exact_conjugate_posterior() {
    let n = 40;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let xs: Vec<f32> = (0..n).map(|_| rng.random_range(-1.5f32..1.5)).collect();
    let ys: Vec<f32> = xs
        .iter()
        .map(|x| {
            0.8 * x
                + 0.3
                + 0.5f32.sqrt() * {
                    let e: f32 = StandardNormal.sample(&mut rng);
                    e
                }
        })
        .collect();
    // Exact posterior, parameters (w, b), σ² = 1/2.
    let (sxx, sx, sxy, sy) = xs.iter().zip(&ys).fold((0.0, 0.0, 0.0, 0.0), |a, (&x, &y)| {
        let (x, y) = (f64::from(x), f64::from(y));
        (a.0 + x * x, a.1 + x, a.2 + x * y, a.3 + y)
    });
    let p = [[2.0 * sxx + 1.0, 2.0 * sx], [2.0 * sx, 2.0 * n as f64 + 1.0]]; // precision
    let det = p[0][0] * p[1][1] - p[0][1] * p[1][0];
    let cov = [[p[1][1] / det, -p[0][1] / det], [-p[1][0] / det, p[0][0] / det]];
    let rhs = [2.0 * sxy, 2.0 * sy];
    let mean = [cov[0][0] * rhs[0] + cov[0][1] * rhs[1], cov[1][0] * rhs[0] + cov[1][1] * rhs[1]];
    let data = prepared(xs, ys, vec![0.0], vec![0.0], 1);
    for posterior in [Posterior::FullCovariance, Posterior::MeanField] {
        let cfg = BnnConfig {
            hidden: vec![],
            posterior,
            bayesian_output: true,
            optimizer: OptimizerKind::Adam,
            learning_rate: 5e-3,
            batch_size: n,
            epochs: 6000,
            predictive_samples: 1,
            ..BnnConfig::default()
        };
        let mut trainer = BnnTrainer::new(cfg, &data).unwrap();
        // Polyak average of the last 3,000 iterates smooths the one-sample gradient noise.
        let (mut m_avg, mut sd_avg, mut count) = ([0.0f64; 2], [0.0f64; 2], 0.0);
        let mut corr_avg = 0.0;
        for step in 0..6000 {
            trainer.step().unwrap();
            if step >= 3000 {
                let params = trainer.params().unwrap();
                let layer = &params.layers[0];
                for j in 0..2 {
                    m_avg[j] += f64::from(layer.mean[j]);
                    sd_avg[j] += f64::from(layer.sd[j]);
                }
                if posterior == Posterior::FullCovariance {
                    // Σ_01 = L_10 L_00.
                    let l = &layer.scale_tril;
                    corr_avg += f64::from(l[2] * l[0]) / f64::from(layer.sd[0] * layer.sd[1]);
                }
                count += 1.0;
            }
        }
        for j in 0..2 {
            let m = m_avg[j] / count;
            let sd = sd_avg[j] / count;
            let exact_sd = match posterior {
                Posterior::MeanField => (1.0 / p[j][j]).sqrt(),
                _ => cov[j][j].sqrt(),
            };
            assert!(
                (m - mean[j]).abs() < 0.15 * cov[j][j].sqrt(),
                "{posterior:?}: mean[{j}] {m:.4}, exact {:.4} (sd {:.4})",
                mean[j],
                cov[j][j].sqrt()
            );
            assert!((sd / exact_sd - 1.0).abs() < 0.1, "{posterior:?}: sd[{j}] {sd:.4}, exact {exact_sd:.4}");
        }
        if posterior == Posterior::FullCovariance {
            let corr = corr_avg / count;
            let exact = cov[0][1] / (cov[0][0] * cov[1][1]).sqrt();
            assert!((corr - exact).abs() < 0.1, "correlation {corr:.3}, exact {exact:.3}");
        }
    }
}

/// y = sin(2x) + noise whose sd grows from 0.05 to 0.65 with |x|: the Normal head must learn the noise, so its
/// central intervals hold close to their nominal share of fresh points.
#[test]
fn normal_head_intervals_are_calibrated_on_heteroscedastic_data() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut make = |n: usize| {
        let xs: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect();
        let ys: Vec<f32> = xs
            .iter()
            .map(|&x| {
                let sd = 0.05 + 0.3 * x.abs();
                (2.0 * x).sin()
                    + sd * {
                        let e: f32 = StandardNormal.sample(&mut rng);
                        e
                    }
            })
            .collect();
        (xs, ys)
    };
    let (x_train, y_train) = make(3000);
    let (x_test, y_test) = make(2000);
    let data = prepared(x_train, y_train, x_test, y_test, 1);
    let cfg = BnnConfig {
        hidden: vec![16, 16],
        activation: Activation::Tanh,
        posterior: Posterior::MeanField,
        head: Head::Normal,
        optimizer: OptimizerKind::Adam,
        learning_rate: 1e-2,
        batch_size: 128,
        epochs: 300,
        predictive_samples: 50,
        ..BnnConfig::default()
    };
    let mut trainer = BnnTrainer::new(cfg, &data).unwrap();
    while !trainer.finished() {
        trainer.step().unwrap();
    }
    let predictive = trainer.test_predictive(200, 9).unwrap();
    for (nominal, observed) in predictive.coverage.iter().rev() {
        assert!(
            (observed - nominal).abs() < 0.04,
            "{:.0} % interval holds {:.1} % of test points",
            nominal * 100.0,
            observed * 100.0
        );
    }
    let PredictiveRows::Regression(rows) = &predictive.rows else { panic!("regression rows expected") };
    // The learned noise follows |x|: small near 0, large at the edges.
    let (mut near, mut far) = (Vec::new(), Vec::new());
    for (row, x) in rows.iter().zip(&data.x_test) {
        let sd = row.aleatoric_sd.unwrap();
        if x.abs() < 0.3 {
            near.push(sd);
        } else if x.abs() > 1.7 {
            far.push(sd);
        }
    }
    let avg = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    assert!(avg(&far) > 3.0 * avg(&near), "aleatoric sd near 0: {}, at the edges: {}", avg(&near), avg(&far));
}

fn red_wine() -> Arc<Prepared> {
    let table = bayes_explorer::data::BuiltinFile::WineRed.load().unwrap();
    let spec = bayes_explorer::data::prepare::default_spec_for_lab(bayes_explorer::Lab::Bnn, &table);
    Arc::new(bayes_explorer::data::prepare::prepare(&table, &spec).unwrap())
}

#[test]
fn default_epochs_follow_the_step_budget() {
    use bayes_explorer::models::bnn::default_epochs;
    // Red wine: 1,359 training rows, 6 steps of 256; white: 4,163 rows, 17 steps.
    assert_eq!(default_epochs(1359, 256), 2000);
    assert_eq!(default_epochs(4163, 256), 706);
    assert_eq!(default_epochs(10, 256), 12_000);
    assert_eq!(default_epochs(0, 0), 12_000);
}

#[test]
fn the_subset_is_fixed_by_the_seed_and_holds_the_asked_fraction() {
    let a = train_subset(1000, 0.3, 1);
    assert_eq!(a.len(), 300);
    assert_eq!(a, train_subset(1000, 0.3, 1));
    assert_ne!(a, train_subset(1000, 0.3, 2));
    assert!(a.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(train_subset(10, 1.0, 1), (0..10).collect::<Vec<_>>());
}

#[test]
fn a_short_run_on_red_wine_beats_the_mean_and_keeps_every_epoch_in_its_history() {
    let data = red_wine();
    let cfg = BnnConfig { learning_rate: 1e-2, epochs: 60, ..BnnConfig::default() };
    let mut trainer = BnnTrainer::new(cfg, &data).unwrap();
    while !trainer.finished() {
        trainer.step().unwrap();
    }
    let last = trainer.snapshot().history.last().cloned().unwrap();
    let rmse = last.get("test_rmse").unwrap();
    let baseline = last.get("mean_predictor_test_rmse").unwrap();
    assert!(rmse < 0.92 * baseline, "test RMSE {rmse:.3} vs the mean's {baseline:.3}");
    let Some(bayes_explorer::train::ModelView::Bnn { view, .. }) = trainer.model_view() else { panic!("no view") };
    let epochs: Vec<usize> = view.history.iter().map(|(e, _)| *e).collect();
    assert_eq!(epochs, (0..=60).collect::<Vec<_>>());
    assert!(view.params.layers[0].scale_tril.len() == 96 * 96, "the current view keeps the full scale");
}

/// A classification's level to beat: the test error rate of always predicting the commonest training class; on a
/// tie, the first of them. A digits run reports it among its metrics, with the figure counted here by hand.
#[test]
fn a_classification_reports_the_error_rate_of_its_commonest_class() {
    use bayes_explorer::models::bnn::commonest_class_error_rate;
    assert_eq!(commonest_class_error_rate(&[0.0, 1.0, 1.0, 2.0], &[1.0, 0.0, 2.0, 1.0]), Some(0.5));
    assert_eq!(commonest_class_error_rate(&[2.0, 0.0, 2.0, 0.0], &[0.0, 2.0, 2.0, 2.0]), Some(0.75), "a tie: class 0");
    assert_eq!(commonest_class_error_rate(&[], &[1.0]), None);
    assert_eq!(commonest_class_error_rate(&[1.0], &[]), None);
    let table = bayes_explorer::data::BuiltinFile::Digits8x8.load().unwrap();
    let spec = bayes_explorer::data::prepare::default_spec_for_lab(bayes_explorer::Lab::Bnn, &table);
    let digits = Arc::new(bayes_explorer::data::prepare::prepare(&table, &spec).unwrap());
    let mut trainer =
        BnnTrainer::new(BnnConfig { hidden: vec![5], epochs: 1, ..BnnConfig::default() }, &digits).unwrap();
    while !trainer.finished() {
        trainer.step().unwrap();
    }
    let last = trainer.snapshot().history.last().cloned().unwrap();
    let level = last.get("mode_predictor_test_error_rate").expect("the level");
    let mut counts = [0usize; 10];
    for &y in &digits.y_train {
        counts[y as usize] += 1;
    }
    let commonest = (0..10).rev().max_by_key(|&c| counts[c]).unwrap();
    let wrong = digits.y_test.iter().filter(|&&y| y as usize != commonest).count();
    assert!((level - wrong as f64 / digits.y_test.len() as f64).abs() < 1e-12, "level {level}");
    assert!((0.85..0.95).contains(&level), "ten nearly even classes: {level}");
    assert!(last.get("mean_predictor_test_rmse").is_none(), "no regression level for a classification");
}

#[test]
fn the_cpu_loops_predict_what_candle_predicts() {
    let data = red_wine();
    for (posterior, head) in [(Posterior::FullCovariance, Head::Mse), (Posterior::MeanField, Head::Normal)] {
        let cfg = BnnConfig { posterior, head, epochs: 1, bayesian_output: true, ..BnnConfig::default() };
        let mut trainer = BnnTrainer::new(cfg, &data).unwrap();
        while !trainer.finished() {
            trainer.step().unwrap();
        }
        let params = trainer.params().unwrap();
        let n = data.n_test();
        let loops = params.predict_samples_cpu(&data.x_test, n, 37, 5);
        let reference = params.predict_samples(&mut CandleBackend::new(), &data.x_test, n, 37, 5).unwrap();
        assert_eq!(loops.len(), reference.len());
        for (i, (a, b)) in loops.iter().zip(&reference).enumerate() {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{posterior:?}: element {i}: loops {a}, candle {b}");
        }
    }
    // Classification (a label column) and an odd sample count that splits unevenly over the threads.
    let table = bayes_explorer::data::BuiltinFile::Digits8x8.load().unwrap();
    let spec = bayes_explorer::data::prepare::default_spec_for_lab(bayes_explorer::Lab::Bnn, &table);
    let digits = Arc::new(bayes_explorer::data::prepare::prepare(&table, &spec).unwrap());
    let cfg = BnnConfig { posterior: Posterior::MeanField, hidden: vec![5], epochs: 1, ..BnnConfig::default() };
    let params = BnnTrainer::new(cfg, &digits).unwrap().params().unwrap();
    let loops = params.predict_samples_cpu(&digits.x_test, 50, 3, 1);
    let reference = params.predict_samples(&mut CandleBackend::new(), &digits.x_test[..50 * 64], 50, 3, 1).unwrap();
    for (a, b) in loops.iter().zip(&reference) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "digits: loops {a}, candle {b}");
    }
}

#[test]
fn gpu_predictions_equal_the_cpu_ones() {
    let backend = match GpuBackend::new() {
        Ok(g) => g,
        Err(e) => {
            assert!(std::env::var("BAYES_EXPLORER_REQUIRE_GPU").as_deref() != Ok("1"), "no GPU: {e}");
            eprintln!("skipping: {e}");
            return;
        }
    };
    let mut gpu = backend;
    let data = red_wine();
    for posterior in [Posterior::FullCovariance, Posterior::MeanField] {
        let cfg = BnnConfig { posterior, epochs: 2, ..BnnConfig::default() };
        let mut trainer = BnnTrainer::new(cfg, &data).unwrap();
        while !trainer.finished() {
            trainer.step().unwrap();
        }
        let params = trainer.params().unwrap();
        let cpu = predictive_on(&mut CandleBackend::new(), &params, &data.x_test, &data.y_test, 100, 4).unwrap();
        let on_gpu = predictive_on(&mut gpu, &params, &data.x_test, &data.y_test, 100, 4).unwrap();
        let (PredictiveRows::Regression(a), PredictiveRows::Regression(b)) = (&cpu.rows, &on_gpu.rows) else {
            panic!("regression rows expected")
        };
        for (i, (a, b)) in a.iter().zip(b).enumerate() {
            assert!((a.mean - b.mean).abs() < 1e-4 * a.mean.abs().max(1.0), "row {i}: {a:?} vs {b:?}");
            assert!((a.range() - b.range()).abs() < 1e-3, "row {i}: {a:?} vs {b:?}");
        }
    }
}
