//! The 1-D predictive band (`models/bnn/band.rs`): its quantiles against a sorted-sample computation and on known
//! distributions, the Normal head's band of `y` (a mixture's quantiles), the grid, the same band from pre-drawn
//! weights as from the sampler. (The band of a trained network, live in the app, is in `tests/ux/band.rs`.)

use bayes_explorer::compute::Activation;
use bayes_explorer::models::bnn::{
    BAND_LEVELS, BAND_SAMPLED_FUNCTIONS, BnnLayer, BnnParams, BnnTask, Head, Posterior, band_from_outputs,
    band_from_weights, extended_grid, mixture_quantile, normal_cdf, vi_band,
};

/// The type-7 quantile written out independently: sort, then interpolate at `q (n - 1)`.
fn sorted_quantile(values: &[f32], q: f64) -> f64 {
    let mut v: Vec<f64> = values.iter().map(|&x| f64::from(x)).collect();
    v.sort_by(f64::total_cmp);
    let h = q * (v.len() - 1) as f64;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    v[lo] + (h - lo as f64) * (v[hi] - v[lo])
}

/// A cheap deterministic scramble of `k` into [-1, 1).
fn scrambled(k: usize) -> f32 {
    let h = (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17);
    (h % 20_000) as f32 / 10_000.0 - 1.0
}

#[test]
fn function_band_matches_sorted_samples() {
    let (s, n_grid) = (37, 6);
    let grid: Vec<f32> = (0..n_grid).map(|i| i as f32).collect();
    // [S, n_grid, 1]: grid point i's values spread around i.
    let outputs: Vec<f32> = (0..s * n_grid).map(|k| (k % n_grid) as f32 + scrambled(k)).collect();
    let band = band_from_outputs(&outputs, s, &grid, BnnTask::Regression(Head::Mse));
    assert_eq!(band.x, grid);
    assert!(band.observation.is_none(), "the squared-error head has no band of y");
    for i in 0..n_grid {
        let values: Vec<f32> = (0..s).map(|k| outputs[k * n_grid + i]).collect();
        let edges = [band.function.q025[i], band.function.q25[i], band.function.q75[i], band.function.q975[i]];
        for (edge, q) in edges.iter().zip(BAND_LEVELS) {
            assert!((f64::from(*edge) - sorted_quantile(&values, q)).abs() < 1e-5, "grid {i}, level {q}");
        }
        let mean = values.iter().sum::<f32>() / s as f32;
        assert!((band.mean[i] - mean).abs() < 1e-5);
        assert!(edges.windows(2).all(|w| w[0] <= w[1]), "the edges are in order");
    }
    assert_eq!(band.sampled.len(), BAND_SAMPLED_FUNCTIONS);
    for (k, curve) in band.sampled.iter().enumerate() {
        assert_eq!(curve, &outputs[k * n_grid..(k + 1) * n_grid], "sampled function {k} is sample {k}");
    }
}

#[test]
fn function_band_of_evenly_spread_samples_is_exact() {
    // 1,001 samples k / 1000 (shuffled): every type-7 quantile q is exactly q; the mean 0.5.
    let s = 1001;
    let mut values: Vec<f32> = (0..s).map(|k| k as f32 / 1000.0).collect();
    values.sort_by(|a, b| scrambled((a * 1000.0) as usize).total_cmp(&scrambled((b * 1000.0) as usize)));
    let band = band_from_outputs(&values, s, &[0.0], BnnTask::Regression(Head::Mse));
    let f = &band.function;
    for (edge, q) in [f.q025[0], f.q25[0], f.q75[0], f.q975[0]].into_iter().zip(BAND_LEVELS) {
        assert!((f64::from(edge) - q).abs() < 1e-6, "{edge} for level {q}");
    }
    assert!((band.mean[0] - 0.5).abs() < 1e-5);
}

/// The raw scale output whose softplus plus the floor is `sd`.
fn raw_scale(sd: f64) -> f32 {
    ((sd - 1e-3).exp() - 1.0).ln() as f32
}

#[test]
fn normal_head_band_of_y_is_the_mixture_quantiles() {
    assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
    assert!((normal_cdf(1.959_964) - 0.975).abs() < 1e-6);
    assert!((normal_cdf(-0.674_49) - 0.25).abs() < 1e-6);
    // Every sample the same N(1, 0.5²): y's band is 1 ± z 0.5; f's band collapses onto 1.
    let s = 8;
    let outputs: Vec<f32> = (0..s).flat_map(|_| [1.0, raw_scale(0.5)]).collect();
    let band = band_from_outputs(&outputs, s, &[3.0], BnnTask::Regression(Head::Normal));
    let y = band.observation.as_ref().expect("the Normal head has a band of y");
    let expected = [1.0 - 1.959_964 * 0.5, 1.0 - 0.674_49 * 0.5, 1.0 + 0.674_49 * 0.5, 1.0 + 1.959_964 * 0.5];
    for (edge, e) in [y.q025[0], y.q25[0], y.q75[0], y.q975[0]].into_iter().zip(expected) {
        assert!((f64::from(edge) - e).abs() < 1e-4, "{edge} against {e}");
    }
    assert!(band.function.width_95(0).abs() < 1e-6, "no spread of f over identical samples");
    // An even mixture of N(-1, 1) and N(1, 1): symmetric about 0, and its CDF is 0.975 at the upper edge.
    let locs = [-1.0, 1.0];
    let scales = [1.0, 1.0];
    let q975 = mixture_quantile(&locs, &scales, 0.975);
    let q025 = mixture_quantile(&locs, &scales, 0.025);
    assert!((q975 + q025).abs() < 1e-6);
    let cdf = 0.5 * (normal_cdf(q975 + 1.0) + normal_cdf(q975 - 1.0));
    assert!((cdf - 0.975).abs() < 1e-6, "{cdf}");
    assert!(q975 > 1.959_964 && q975 < 1.0 + 1.959_964, "wider than one component's, narrower than shifted");
}

#[test]
fn extended_grid_reaches_a_quarter_past_the_data() {
    let grid = extended_grid(-1.0, 1.0, 201);
    assert_eq!(grid.len(), 201);
    assert!((grid[0] + 1.5).abs() < 1e-6 && (grid[200] - 1.5).abs() < 1e-6);
    assert!((grid[100]).abs() < 1e-6);
    assert!(grid.windows(2).all(|w| w[1] > w[0]));
    assert_eq!(extended_grid(2.0, 2.0, 3), vec![1.5, 2.0, 2.5], "a single value gets half a unit each side");
}

/// A one-input network: tanh hidden layer of 3 (mean-field), deterministic linear output.
fn small_params(head: Head) -> BnnParams {
    let n_out = BnnTask::Regression(head).n_out();
    let hidden = BnnLayer {
        n_in: 1,
        n_out: 3,
        posterior: Posterior::MeanField,
        mean: vec![0.5, -1.0, 2.0, 0.1, 0.0, -0.3],
        sd: vec![0.2, 0.1, 0.3, 0.05, 0.1, 0.2],
        scale_tril: Vec::new(),
        activation: Activation::Tanh,
    };
    let output = BnnLayer {
        n_in: 3,
        n_out,
        posterior: Posterior::Deterministic,
        mean: (0..3 * n_out + n_out).map(|k| 0.3 * k as f32 - 0.5).collect(),
        sd: vec![0.0; 3 * n_out + n_out],
        scale_tril: Vec::new(),
        activation: Activation::Identity,
    };
    BnnParams { layers: vec![hidden, output], task: BnnTask::Regression(head), prior_sd: 1.0 }
}

#[test]
fn the_band_from_drawn_weights_is_the_samplers() {
    for head in Head::ALL {
        let params = small_params(head);
        let grid: Vec<f32> = (0..25).map(|i| -3.0 + 0.25 * i as f32).collect();
        let x: Vec<f32> = grid.iter().map(|g| 10.0 * g + 4.0).collect();
        let (s, seed) = (50, 7);
        let from_sampler = params.predict_samples_cpu(&grid, grid.len(), s, seed);
        let weights = params.sample_weights(s, seed);
        assert_eq!(params.predict_with_weights(&weights, s, &grid, grid.len()), from_sampler);
        let expected = band_from_outputs(&from_sampler, s, &x, params.task);
        assert_eq!(band_from_weights(&params, &weights, s, &grid, &x), expected);
        assert_eq!(vi_band(&params, &grid, &x, s, seed), expected);
        assert_eq!(expected.observation.is_some(), head == Head::Normal);
        assert!(expected.function.q025.iter().chain(&expected.function.q975).all(|v| v.is_finite()));
    }
}

#[test]
#[ignore = "an experiment: how wide the trained band is in the data, in the gap and past it"]
fn experiment_widths() {
    use bayes_explorer::Lab;
    use bayes_explorer::data::prepare::{default_spec_for_lab, prepare};
    use bayes_explorer::data::{SynthKind, SynthSpec};
    use bayes_explorer::models::bnn::{BnnConfig, BnnTrainer, PredictiveBand};
    use bayes_explorer::train::Trainer;
    use std::sync::Arc;
    fn width_at(band: &PredictiveBand, at: f32) -> f32 {
        let i =
            (0..band.x.len()).min_by(|&a, &b| (band.x[a] - at).abs().total_cmp(&(band.x[b] - at).abs())).unwrap_or(0);
        band.function.width_95(i)
    }
    for (name, cfg) in [
        ("mse lr 1e-2", BnnConfig { learning_rate: 1e-2, epochs: 4000, ..BnnConfig::default() }),
        ("normal lr 1e-2", BnnConfig { head: Head::Normal, learning_rate: 1e-2, epochs: 4000, ..BnnConfig::default() }),
    ] {
        let table = SynthSpec::default_for(SynthKind::CubicGap).generate();
        let data = Arc::new(prepare(&table, &default_spec_for_lab(Lab::Bnn, &table)).unwrap());
        let mut trainer = BnnTrainer::new(cfg, &data).unwrap();
        while !trainer.finished() {
            trainer.step().unwrap();
        }
        let params = trainer.params().unwrap();
        let (m, s) = (data.feature_mean[0], data.feature_scale[0]);
        let grid_x = extended_grid(-1.0, 1.0, 201);
        let grid_z: Vec<f32> = grid_x.iter().map(|x| (x - m) / s).collect();
        let band = vi_band(&params, &grid_z, &grid_x, 400, 3);
        let inside = 0.5 * (width_at(&band, -0.65) + width_at(&band, 0.65));
        let last = trainer.snapshot().history.last().cloned().unwrap();
        eprintln!(
            "{name}: 95 % width in the data {inside:.3}, in the gap {:.3}, past it {:.3}; test rmse {:.3}",
            width_at(&band, 0.0),
            0.5 * (width_at(&band, -1.5) + width_at(&band, 1.5)),
            last.get("test_rmse").unwrap_or(f64::NAN)
        );
    }
}

#[test]
fn the_largest_gap_is_the_widest_empty_stretch_when_wide_enough() {
    use bayes_explorer::models::bnn::largest_gap;
    // Two clusters, in any order: the gap runs from the first's largest to the second's smallest.
    let xs = [0.9f32, -1.0, -0.31, 0.3, -0.5, 1.0, 0.6];
    assert_eq!(largest_gap(&xs, 0.1), Some((-0.31, 0.3)));
    // Evenly spread points have no stretch wider than a tenth of their range.
    let even: Vec<f32> = (0..=20).map(|i| i as f32 / 20.0).collect();
    assert_eq!(largest_gap(&even, 0.1), None);
    let (lo, hi) = largest_gap(&even, 0.01).expect("every stretch is a twentieth");
    assert!((hi - lo - 0.05).abs() < 1e-6, "{lo} .. {hi}");
    // Too few points, or NaN among them, do not make a gap.
    assert_eq!(largest_gap(&[0.0, 1.0], 0.1), None);
    assert_eq!(largest_gap(&[0.0, f32::NAN, 0.1, 1.0], 0.1), Some((0.1, 1.0)));
}
