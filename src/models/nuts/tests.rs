//! The sampler against a posterior known in closed form, and its control handle.

use std::sync::atomic::Ordering;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::*;
use crate::models::bnn::Head;

/// A BNN without hidden layers: `f(x) = x W + b`, the identity on the output, squared error.
fn linear_template(d: usize, prior_sd: f64) -> BnnParams {
    BnnParams {
        layers: vec![BnnLayer {
            n_in: d,
            n_out: 1,
            posterior: Posterior::Deterministic,
            mean: vec![0.0; d + 1],
            sd: vec![0.0; d + 1],
            scale_tril: Vec::new(),
            activation: Activation::Identity,
        }],
        task: BnnTask::Regression(Head::Mse),
        prior_sd,
    }
}

/// 50 rows of two correlated features and a noisy linear target.
fn linear_data() -> (Vec<f32>, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for _ in 0..50 {
        let a: f64 = StandardNormal.sample(&mut rng);
        let z: f64 = StandardNormal.sample(&mut rng);
        let b = 0.6 * a + 0.8 * z;
        let noise: f64 = StandardNormal.sample(&mut rng);
        x.extend([a as f32, b as f32]);
        y.push((1.0 * a - 0.5 * b + 0.3 + 0.7 * noise) as f32);
    }
    (x, y)
}

/// The conjugate posterior of `θ = (w_1, .., w_d, b)` under `y ~ N(x w + b, σ²)`, `θ ~ N(0, s² I)`:
/// `Σ = (Zᵀ Z / σ² + I / s²)⁻¹`, `μ = Σ Zᵀ y / σ²`, with `Z = [x, 1]`.
fn exact_posterior(x: &[f32], y: &[f32], d: usize, sigma2: f64, prior_sd: f64) -> (Vec<f64>, Vec<Vec<f64>>) {
    let k = d + 1;
    let mut a = vec![vec![0f64; k]; k];
    let mut r = vec![0f64; k];
    for (row, &yi) in x.chunks(d).zip(y) {
        let z: Vec<f64> = row.iter().map(|&v| f64::from(v)).chain([1.0]).collect();
        for i in 0..k {
            r[i] += z[i] * f64::from(yi) / sigma2;
            for j in 0..k {
                a[i][j] += z[i] * z[j] / sigma2;
            }
        }
    }
    for (i, row) in a.iter_mut().enumerate() {
        row[i] += 1.0 / (prior_sd * prior_sd);
    }
    // Gauss-Jordan inverse (A is symmetric positive definite and small).
    let mut inv: Vec<Vec<f64>> = (0..k).map(|i| (0..k).map(|j| f64::from(u8::from(i == j))).collect()).collect();
    for c in 0..k {
        let p = a[c][c];
        for j in 0..k {
            a[c][j] /= p;
            inv[c][j] /= p;
        }
        for i in 0..k {
            if i != c {
                let f = a[i][c];
                for j in 0..k {
                    a[i][j] -= f * a[c][j];
                    inv[i][j] -= f * inv[c][j];
                }
            }
        }
    }
    let mean = (0..k).map(|i| (0..k).map(|j| inv[i][j] * r[j]).sum()).collect();
    (mean, inv)
}

/// Whether the draws agree with a Gaussian posterior `(mean, cov)` within 4 Monte Carlo standard errors (from
/// each coordinate's bulk ESS): every mean (`sd / √ESS`), every sd (`sd / √(2 ESS)`), and the correlation of
/// the first two coordinates (`(1 - ρ²) / √ESS`). Returns the failures.
fn check(posterior: &NutsPosterior, mean: &[f64], cov: &[Vec<f64>]) -> Vec<String> {
    let k = mean.len();
    let samples = posterior.weight_samples();
    let n = samples.len() / k;
    let col = |j: usize| samples.chunks_exact(k).map(move |r| f64::from(r[j]));
    let m: Vec<f64> = (0..k).map(|j| col(j).sum::<f64>() / n as f64).collect();
    let sd: Vec<f64> =
        (0..k).map(|j| (col(j).map(|v| (v - m[j]).powi(2)).sum::<f64>() / (n as f64 - 1.0)).sqrt()).collect();
    let mut failures = Vec::new();
    for j in 0..k {
        let (exact_sd, ess) = (cov[j][j].sqrt(), posterior.ess_bulk[j]);
        if (m[j] - mean[j]).abs() > 4.0 * exact_sd / ess.sqrt() {
            failures.push(format!("mean {j}: {} against {}", m[j], mean[j]));
        }
        if (sd[j] - exact_sd).abs() > 4.0 * exact_sd / (2.0 * ess).sqrt() {
            failures.push(format!("sd {j}: {} against {exact_sd}", sd[j]));
        }
    }
    let c01 = col(0).zip(col(1)).map(|(a, b)| (a - m[0]) * (b - m[1])).sum::<f64>() / (n as f64 - 1.0);
    let rho = c01 / (sd[0] * sd[1]);
    let exact_rho = cov[0][1] / (cov[0][0] * cov[1][1]).sqrt();
    let ess = posterior.ess_bulk[0].min(posterior.ess_bulk[1]);
    if (rho - exact_rho).abs() > 4.0 * (1.0 - exact_rho * exact_rho) / ess.sqrt() {
        failures.push(format!("correlation: {rho} against {exact_rho}"));
    }
    failures
}

#[test]
fn nuts_recovers_the_conjugate_linear_regression_posterior() {
    let (x, y) = linear_data();
    let settings = NutsSettings { chains: 4, warmup: 300, draws: 400, seed: 3, ..NutsSettings::default() };
    let posterior = sample_bnn(&linear_template(2, 1.0), &x, &y, 50, &settings, &NutsControl::new()).unwrap();
    assert_eq!(posterior.n_draws(), 1600);
    assert_eq!(posterior.rows_used, 50);
    assert!(posterior.max_rhat() < 1.01, "R-hat {}", posterior.max_rhat());
    assert!(posterior.min_ess_bulk() > 400.0, "ESS {}", posterior.min_ess_bulk());
    assert_eq!(posterior.divergences(), 0);
    // The squared-error loss is a Gaussian likelihood with σ² = 1/2.
    let (mean, cov) = exact_posterior(&x, &y, 2, 0.5, 1.0);
    let failures = check(&posterior, &mean, &cov);
    assert!(failures.is_empty(), "{failures:?}");
    // The same check rejects a wrong posterior: the prior's sd 0.1 instead of 1, or the noise σ² = 1.
    let (mean, cov) = exact_posterior(&x, &y, 2, 0.5, 0.1);
    assert!(!check(&posterior, &mean, &cov).is_empty());
    let (mean, cov) = exact_posterior(&x, &y, 2, 1.0, 1.0);
    assert!(!check(&posterior, &mean, &cov).is_empty());
}

#[test]
fn runs_are_seeded_rows_are_subsampled_and_sigma_is_sampled() {
    let (x, y) = linear_data();
    let settings = NutsSettings {
        chains: 2,
        warmup: 100,
        draws: 50,
        seed: 11,
        max_rows: 30,
        noise: NoiseModel::Sampled,
        ..NutsSettings::default()
    };
    let template = linear_template(2, 1.0);
    let a = sample_bnn(&template, &x, &y, 50, &settings, &NutsControl::new()).unwrap();
    let b = sample_bnn(&template, &x, &y, 50, &settings, &NutsControl::new()).unwrap();
    assert_eq!(a.chains, b.chains);
    assert_ne!(a.chains[0].weights, a.chains[1].weights);
    assert_eq!((a.rows_used, a.rows_total), (30, 50));
    assert_eq!(a.rhat.len(), 4);
    assert_eq!(a.chains[0].sigma.len(), 50);
    assert!(a.chains[0].sigma.iter().all(|&s| s > 0.0 && s < 5.0));
    assert!(a.warnings().iter().any(|w| w.contains("30 of the 50")));
    let other = NutsSettings { seed: 12, ..settings };
    let c = sample_bnn(&template, &x, &y, 50, &other, &NutsControl::new()).unwrap();
    assert_ne!(a.chains[0].weights, c.chains[0].weights);
}

#[test]
fn a_paused_run_waits_and_a_cancelled_one_stops() {
    let (x, y) = linear_data();
    let template = linear_template(2, 1.0);
    let settings = NutsSettings { chains: 2, warmup: 50, draws: 50, ..NutsSettings::default() };
    let control = NutsControl::new();
    control.set_paused(true);
    std::thread::scope(|scope| {
        let run = scope.spawn(|| sample_bnn(&template, &x, &y, 50, &settings, &control));
        std::thread::sleep(Duration::from_millis(300));
        let progress = control.progress();
        assert_eq!(progress.len(), 2);
        assert!(progress.iter().all(|p| p.done == 0 && p.total == 100), "{progress:?}");
        control.set_paused(false);
        let posterior = run.join().unwrap().unwrap();
        assert_eq!(posterior.n_draws(), 100);
    });
    assert!(control.progress().iter().all(|p| p.done == 100 && p.phase == Phase::Done));
    let cancelled = NutsControl::new();
    cancelled.cancel.store(true, Ordering::Relaxed);
    assert_eq!(sample_bnn(&template, &x, &y, 50, &settings, &cancelled), Err(NutsError::Cancelled));
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let bad: Vec<f32> = (0..10).map(|_| rng.random_range(0.0..1.0)).collect();
    assert!(matches!(sample_bnn(&template, &bad, &y, 50, &settings, &control), Err(NutsError::Invalid(_))));
}

#[test]
fn draws_predict_through_the_variational_forward_pass() {
    let (x, y) = linear_data();
    let template = linear_template(2, 1.0);
    let settings = NutsSettings { chains: 2, warmup: 100, draws: 20, ..NutsSettings::default() };
    let posterior = sample_bnn(&template, &x, &y, 50, &settings, &NutsControl::new()).unwrap();
    let weights = posterior.weight_samples();
    let outputs = template.predict_with_weights(&weights, 40, &x, 50);
    assert_eq!(outputs.len(), 40 * 50);
    // Sample 3, row 5 by hand.
    let w = &weights[3 * 3..4 * 3];
    let by_hand = x[10] * w[0] + x[11] * w[1] + w[2];
    assert!((outputs[3 * 50 + 5] - by_hand).abs() < 1e-5);
}

#[test]
fn one_chain_has_no_rhat_and_says_so() {
    let (x, y) = linear_data();
    let settings = NutsSettings { chains: 1, warmup: 50, draws: 20, ..NutsSettings::default() };
    let posterior = sample_bnn(&linear_template(2, 1.0), &x, &y, 50, &settings, &NutsControl::new()).unwrap();
    assert!(posterior.rhat.iter().all(|r| r.is_nan()));
    assert!(posterior.ess_bulk.iter().all(|e| e.is_finite()));
    let warnings = posterior.warnings();
    assert!(warnings.iter().any(|w| w.starts_with("one chain")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.starts_with("bulk ESS below 400")), "{warnings:?}");
}

#[test]
fn divergences_are_counted_in_words_and_the_advice_names_the_acceptance_to_raise() {
    let (x, y) = linear_data();
    let settings = NutsSettings { chains: 1, warmup: 50, draws: 20, target_accept: 0.85, ..NutsSettings::default() };
    let mut posterior = sample_bnn(&linear_template(2, 1.0), &x, &y, 50, &settings, &NutsControl::new()).unwrap();
    for (n, words) in [(1, "1 divergent transition after"), (3, "3 divergent transitions after")] {
        posterior.chains[0].divergences = n;
        let warnings = posterior.warnings();
        let warning = warnings.iter().find(|w| w.contains("divergent")).expect("a divergence warning");
        assert!(warning.starts_with(words), "{warning}");
        assert!(warning.contains("raise the target acceptance from 0.85 (to 0.9 or 0.95"), "{warning}");
    }
    posterior.chains[0].divergences = 0;
    assert!(!posterior.warnings().iter().any(|w| w.contains("divergent")), "none without a divergence");
}
