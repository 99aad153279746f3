//! Monte Carlo predictions of a BNN summarised ([`summarize`]: per-row means, ranges and intervals or class
//! probabilities; error, interval coverage and NLL), computed on a [`ComputeBackend`] or by the CPU loops, and an
//! epoch's evaluation figures ([`evaluation_metrics`]).

use serde::{Deserialize, Serialize};

use crate::compute::{ComputeBackend, TrainError};
use crate::data::prepare::Prepared;
use crate::models::bnn::{BnnConfig, BnnParams, BnnTask, HEAD_SCALE_FLOOR, Head};
use crate::models::stats::{INTERVAL_LEVELS, mean_and_sd, quantile_sorted};

/// One test row's predictive summary (regression).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegressionRow {
    /// The true value.
    pub actual: f32,
    /// Mean over the samples of the predicted value (the head's `loc`).
    pub mean: f32,
    /// Smallest sampled prediction.
    pub min: f32,
    /// Largest sampled prediction.
    pub max: f32,
    /// Standard deviation of the sampled predictions (epistemic).
    pub epistemic_sd: f32,
    /// Normal head: root mean square of the sampled scales (aleatoric).
    pub aleatoric_sd: Option<f32>,
    /// Central interval bounds, one pair per [`INTERVAL_LEVELS`] entry.
    pub intervals: [(f32, f32); 3],
}

impl RegressionRow {
    /// `max - min` of the sampled predictions.
    #[must_use]
    pub fn range(&self) -> f32 {
        self.max - self.min
    }

    /// The 95 % interval.
    #[must_use]
    pub fn interval_95(&self) -> (f32, f32) {
        self.intervals[2]
    }
}

/// One test row's predictive summary (classification).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassRow {
    /// The true class index.
    pub actual: usize,
    /// The class of highest mean probability.
    pub predicted: usize,
    /// Mean probability per class.
    pub probabilities: Vec<f32>,
    /// Smallest and largest sampled probability of the predicted class.
    pub min: f32,
    /// See `min`.
    pub max: f32,
}

/// Bins of a reliability diagram: equal widths over the confidence's [0, 1].
pub const RELIABILITY_BINS: usize = 10;

/// One bin of a reliability diagram: the test rows whose confidence (the predicted class's mean probability) is in
/// `[lo, hi)` (the last bin includes 1).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// The bin's lower edge.
    pub lo: f64,
    /// The bin's upper edge.
    pub hi: f64,
    /// Test rows in it.
    pub rows: usize,
    /// Their mean confidence (NaN for an empty bin).
    pub confidence: f64,
    /// The share of them whose predicted class is the actual one (NaN for an empty bin).
    pub accuracy: f64,
}

/// The calibration of class predictions: a model whose predicted class has mean probability 0.8 should be right on
/// 80 % of such rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reliability {
    /// [`RELIABILITY_BINS`] bins, empty ones included.
    pub bins: Vec<ReliabilityBin>,
    /// The expected calibration error: the rows' share-weighted mean of |accuracy - confidence| over the bins
    /// (Guo et al. 2017), in [0, 1]; NaN without rows.
    pub ece: f64,
}

/// The reliability diagram of `rows` in `n_bins` equal-width bins of confidence.
#[must_use]
pub fn reliability(rows: &[ClassRow], n_bins: usize) -> Reliability {
    let n_bins = n_bins.max(1);
    let mut sums = vec![(0_usize, 0.0_f64, 0_usize); n_bins];
    for row in rows {
        let confidence = f64::from(row.probabilities.get(row.predicted).copied().unwrap_or(f32::NAN));
        if !confidence.is_finite() {
            continue;
        }
        let b = ((confidence.clamp(0.0, 1.0) * n_bins as f64) as usize).min(n_bins - 1);
        sums[b].0 += 1;
        sums[b].1 += confidence;
        sums[b].2 += usize::from(row.predicted == row.actual);
    }
    let total: usize = sums.iter().map(|s| s.0).sum();
    let bins: Vec<ReliabilityBin> = sums
        .iter()
        .enumerate()
        .map(|(b, &(n, confidence, right))| ReliabilityBin {
            lo: b as f64 / n_bins as f64,
            hi: (b + 1) as f64 / n_bins as f64,
            rows: n,
            confidence: if n > 0 { confidence / n as f64 } else { f64::NAN },
            accuracy: if n > 0 { right as f64 / n as f64 } else { f64::NAN },
        })
        .collect();
    let ece = if total == 0 {
        f64::NAN
    } else {
        bins.iter()
            .filter(|b| b.rows > 0)
            .map(|b| b.rows as f64 / total as f64 * (b.accuracy - b.confidence).abs())
            .sum()
    };
    Reliability { bins, ece }
}

/// Per-row summaries of Monte Carlo predictions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PredictiveRows {
    /// Regression rows.
    Regression(Vec<RegressionRow>),
    /// Classification rows.
    Classes(Vec<ClassRow>),
}

/// Monte Carlo predictions over a set of rows, summarised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Predictive {
    /// Weight samples drawn.
    pub n_samples: usize,
    /// Per row.
    pub rows: PredictiveRows,
    /// Root mean squared error of the predictive mean (regression), or 1 - accuracy (classification).
    pub error: f64,
    /// Mean over rows of `max - min` of the sampled predictions (of the predicted class's probability).
    pub mc_range_mean: f64,
    /// Per [`INTERVAL_LEVELS`] entry: (nominal level, fraction of actual values inside the interval).
    pub coverage: Vec<(f64, f64)>,
    /// Mean negative log predictive density of the actual values (nats per row).
    pub nll: f64,
}

/// Summarises raw outputs `samples` `[S, n_rows, n_out]` against `actual` `[n_rows]` (class indices for a
/// label).
///
/// Regression intervals: for the squared-error head the empirical quantiles of the S predictions (epistemic
/// only: this head has no noise model, which is the course's point); for the Normal head `mean ± z sd` with
/// `sd² = var(loc_s) + mean(scale_s²)`, the mixture's variance. The NLL uses the same Gaussian, with the
/// squared-error head's implied noise `sd² = 1/2` added (its loss is a Gaussian likelihood of that variance).
#[must_use]
pub fn summarize(task: BnnTask, samples: &[f32], n_samples: usize, actual: &[f32]) -> Predictive {
    let n_rows = actual.len();
    let n_out = task.n_out();
    let at = |s: usize, i: usize, j: usize| samples.get((s * n_rows + i) * n_out + j).copied().unwrap_or(f32::NAN);
    let s_count = n_samples.max(1) as f64;
    match task {
        BnnTask::Regression(head) => {
            let mut rows = Vec::with_capacity(n_rows);
            let (mut sq, mut range, mut nll) = (0.0, 0.0, 0.0);
            let mut inside = [0usize; 3];
            let mut locs = vec![0f32; n_samples];
            for (i, &y) in actual.iter().enumerate() {
                let mut scale_sq = 0.0;
                for (s, loc) in locs.iter_mut().enumerate() {
                    *loc = at(s, i, 0);
                    if head == Head::Normal {
                        let sd = softplus(f64::from(at(s, i, 1))) + HEAD_SCALE_FLOOR;
                        scale_sq += sd * sd;
                    }
                }
                let mean = locs.iter().map(|&v| f64::from(v)).sum::<f64>() / s_count;
                let var = locs.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / s_count;
                locs.sort_by(f32::total_cmp);
                let (min, max) = (locs.first().copied().unwrap_or(f32::NAN), locs.last().copied().unwrap_or(f32::NAN));
                let aleatoric = (head == Head::Normal).then(|| (scale_sq / s_count).sqrt());
                let total_sd = (var + aleatoric.map_or(0.0, |a| a * a)).sqrt();
                let mut intervals = [(0f32, 0f32); 3];
                for (slot, (level, z)) in intervals.iter_mut().zip(INTERVAL_LEVELS) {
                    *slot = match head {
                        Head::Mse => (
                            quantile_sorted(&locs, (1.0 - level) / 2.0) as f32,
                            quantile_sorted(&locs, f64::midpoint(1.0, level)) as f32,
                        ),
                        Head::Normal => ((mean - z * total_sd) as f32, (mean + z * total_sd) as f32),
                    };
                }
                for (count, (lo, hi)) in inside.iter_mut().zip(intervals) {
                    *count += usize::from(y >= lo && y <= hi);
                }
                let y = f64::from(y);
                sq += (y - mean).powi(2);
                range += f64::from(max - min);
                let nll_var = match head {
                    Head::Mse => var + 0.5,
                    Head::Normal => total_sd * total_sd,
                };
                nll += 0.5 * (2.0 * std::f64::consts::PI * nll_var).ln() + (y - mean).powi(2) / (2.0 * nll_var);
                rows.push(RegressionRow {
                    actual: y as f32,
                    mean: mean as f32,
                    min,
                    max,
                    epistemic_sd: var.sqrt() as f32,
                    aleatoric_sd: aleatoric.map(|a| a as f32),
                    intervals,
                });
            }
            let n = n_rows.max(1) as f64;
            Predictive {
                n_samples,
                rows: PredictiveRows::Regression(rows),
                error: (sq / n).sqrt(),
                mc_range_mean: range / n,
                coverage: INTERVAL_LEVELS.iter().zip(inside).map(|((level, _), c)| (*level, c as f64 / n)).collect(),
                nll: nll / n,
            }
        }
        BnnTask::Classification { n_classes } => {
            let mut rows = Vec::with_capacity(n_rows);
            let (mut wrong, mut range, mut nll) = (0usize, 0.0, 0.0);
            let mut probs = vec![0f32; n_samples * n_classes];
            for (i, &y) in actual.iter().enumerate() {
                let mut mean = vec![0f64; n_classes];
                for s in 0..n_samples {
                    let logits: Vec<f64> = (0..n_classes).map(|j| f64::from(at(s, i, j))).collect();
                    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let total: f64 = logits.iter().map(|l| (l - max).exp()).sum();
                    for (j, l) in logits.iter().enumerate() {
                        let p = (l - max).exp() / total;
                        probs[s * n_classes + j] = p as f32;
                        mean[j] += p / s_count;
                    }
                }
                let predicted = (0..n_classes).max_by(|&a, &b| mean[a].total_cmp(&mean[b])).unwrap_or(0);
                let picked = (0..n_samples).map(|s| probs[s * n_classes + predicted]);
                let min = picked.clone().fold(f32::INFINITY, f32::min);
                let max = picked.fold(f32::NEG_INFINITY, f32::max);
                let actual = y as usize;
                wrong += usize::from(predicted != actual);
                range += f64::from(max - min);
                nll -= mean.get(actual).copied().unwrap_or(0.0).max(1e-12).ln();
                rows.push(ClassRow {
                    actual,
                    predicted,
                    probabilities: mean.iter().map(|&p| p as f32).collect(),
                    min,
                    max,
                });
            }
            let n = n_rows.max(1) as f64;
            Predictive {
                n_samples,
                rows: PredictiveRows::Classes(rows),
                error: wrong as f64 / n,
                mc_range_mean: range / n,
                coverage: Vec::new(),
                nll: nll / n,
            }
        }
    }
}

fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Monte Carlo predictions of `params` on rows `x` with targets `y`, summarised.
pub fn predictive_on(
    backend: &mut dyn ComputeBackend,
    params: &BnnParams,
    x: &[f32],
    y: &[f32],
    n_samples: usize,
    seed: u64,
) -> Result<Predictive, TrainError> {
    let n_rows = y.len();
    let samples = params
        .predict_samples(backend, x, n_rows, n_samples, seed)
        .map_err(|e| TrainError::Backend(format!("predictions failed: {e}")))?;
    Ok(summarize(params.task, &samples, n_samples, y))
}

/// The Monte Carlo seed of the evaluation at the end of epoch `epoch` of a run seeded `run_seed`
/// ([`evaluation_metrics`]). The window's views draw a model at an epoch's end with it, so that their figures are
/// that epoch's record's, to the digit, rather than another draw of them.
#[must_use]
pub fn evaluation_seed(run_seed: u64, epoch: usize) -> u64 {
    run_seed.wrapping_add(epoch as u64)
}

/// An epoch's evaluation of `params` (the trainer's, and a loaded run's check of its saved figures): Monte Carlo
/// predictions of the training rows in use (`used_rows`; at most 2,000 of them and 30 samples keep an epoch cheap)
/// and of the test rows, seeded by `seed + epoch`: train and test error, test NLL, the passes' mean range, interval
/// coverage, and for regression the test RMSE of predicting the whole training split's mean (the same figure for
/// every run on a split, whatever fraction it uses).
#[must_use]
pub fn evaluation_metrics(
    params: &BnnParams,
    config: &BnnConfig,
    data: &Prepared,
    used_rows: &[usize],
    epoch: usize,
) -> Vec<(String, f64)> {
    let d = data.n_features();
    let rows = used_rows.get(..used_rows.len().min(2000)).unwrap_or_default();
    let x_used: Vec<f32> =
        rows.iter().filter_map(|&i| data.x_train.get(i * d..(i + 1) * d)).flatten().copied().collect();
    let y_used: Vec<f32> = rows.iter().filter_map(|&i| data.y_train.get(i).copied()).collect();
    let seed = evaluation_seed(config.seed, epoch);
    let n_samples = config.predictive_samples.max(1);
    let train = predictive_cpu(params, &x_used, &y_used, n_samples.min(30), seed);
    let test = predictive_cpu(params, &data.x_test, &data.y_test, n_samples, seed);
    let quality = if matches!(params.task, BnnTask::Classification { .. }) { "error_rate" } else { "rmse" };
    let mut metrics = vec![
        (format!("train_{quality}"), train.error),
        (format!("test_{quality}"), test.error),
        ("test_nll".to_owned(), test.nll),
        ("mc_range_mean".to_owned(), test.mc_range_mean),
    ];
    for (level, fraction) in &test.coverage {
        metrics.push((format!("coverage_{:.0}", level * 100.0), *fraction));
    }
    if matches!(params.task, BnnTask::Regression(_)) {
        let (mean, _) = mean_and_sd(&data.y_train);
        let mse =
            data.y_test.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / data.y_test.len().max(1) as f64;
        metrics.push(("mean_predictor_test_rmse".to_owned(), mse.sqrt()));
    }
    if matches!(params.task, BnnTask::Classification { .. })
        && let Some(error) = commonest_class_error_rate(&data.y_train, &data.y_test)
    {
        metrics.push(("mode_predictor_test_error_rate".to_owned(), error));
    }
    metrics
}

/// The test error rate of predicting, for every row, the class most common among the training targets
/// (`y_train`, class indices): the classification's level to beat, as the training mean's RMSE is a regression's.
/// `None` without training or test rows.
#[must_use]
pub fn commonest_class_error_rate(y_train: &[f32], y_test: &[f32]) -> Option<f64> {
    let mut counts: Vec<usize> = Vec::new();
    for &y in y_train {
        #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)] // class indices, whole and small
        let class = y.max(0.0).round() as usize;
        if counts.len() <= class {
            counts.resize(class + 1, 0);
        }
        counts[class] += 1;
    }
    // The first of the most common classes, on a tie.
    let commonest = counts.iter().enumerate().rev().max_by_key(|&(_, &n)| n)?.0;
    if y_test.is_empty() {
        return None;
    }
    let wrong = y_test.iter().filter(|&&y| (y - commonest as f32).abs() > 0.5).count();
    #[allow(clippy::cast_precision_loss)] // row counts
    Some(wrong as f64 / y_test.len() as f64)
}

/// Monte Carlo predictions of `params` on rows `x` with targets `y`, summarised, by the plain CPU loops.
#[must_use]
pub fn predictive_cpu(params: &BnnParams, x: &[f32], y: &[f32], n_samples: usize, seed: u64) -> Predictive {
    let samples = params.predict_samples_cpu(x, y.len(), n_samples, seed);
    summarize(params.task, &samples, n_samples, y)
}

#[cfg(test)]
mod reliability_tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// A row of two classes predicted `predicted` with probability `p`, whose actual class is `actual`.
    fn row(p: f32, predicted: usize, actual: usize) -> ClassRow {
        let mut probabilities = vec![1.0 - p; 2];
        probabilities[predicted] = p;
        ClassRow { actual, predicted, probabilities, min: p, max: p }
    }

    #[test]
    fn a_small_diagram_by_hand() {
        // Two rows at 0.95 (one right), one at 0.55 (right), none elsewhere.
        let rows = [row(0.95, 0, 0), row(0.95, 1, 0), row(0.55, 1, 1)];
        let r = reliability(&rows, 10);
        assert_eq!(r.bins.len(), 10);
        let (top, mid) = (r.bins[9], r.bins[5]);
        assert_eq!((top.rows, mid.rows), (2, 1));
        assert!((top.confidence - 0.95).abs() < 1e-6 && (top.accuracy - 0.5).abs() < 1e-12);
        assert!((mid.confidence - 0.55).abs() < 1e-6 && (mid.accuracy - 1.0).abs() < 1e-12);
        assert!(r.bins.iter().enumerate().all(|(b, bin)| b == 5 || b == 9 || (bin.rows == 0 && bin.accuracy.is_nan())));
        // ECE: 2/3 |0.5 - 0.95| + 1/3 |1 - 0.55| = 0.45.
        assert!((r.ece - 0.45).abs() < 1e-6, "{}", r.ece);
        // A confidence of exactly 1 is in the last bin.
        assert_eq!(reliability(&[row(1.0, 0, 0)], 10).bins[9].rows, 1);
        assert!(reliability(&[], 10).ece.is_nan());
    }

    #[test]
    fn calibrated_predictions_have_a_small_ece_and_overconfident_ones_the_gap() {
        // Confidences spread over [0.5, 1]; a calibrated model is right with that probability, an overconfident
        // one with 0.15 less. Over 40,000 rows the ECE estimates the gap (0 and 0.15) within Monte Carlo noise.
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (mut calibrated, mut overconfident) = (Vec::new(), Vec::new());
        for _ in 0..40_000 {
            let p: f32 = rng.random_range(0.5..1.0);
            // Class 0 is predicted: the actual class is 0 with probability q, else 1.
            let right = |q: f32, rng: &mut ChaCha8Rng| usize::from(rng.random::<f32>() >= q);
            calibrated.push(row(p, 0, right(p, &mut rng)));
            overconfident.push(row(p, 0, right(p - 0.15, &mut rng)));
        }
        let (good, bad) = (reliability(&calibrated, 10), reliability(&overconfident, 10));
        assert!(good.ece < 0.02, "calibrated: ECE {}", good.ece);
        assert!((bad.ece - 0.15).abs() < 0.02, "overconfident by 0.15: ECE {}", bad.ece);
        for bin in bad.bins.iter().filter(|b| b.rows > 1000) {
            assert!((bin.confidence - bin.accuracy - 0.15).abs() < 0.04, "{bin:?}");
        }
    }
}
