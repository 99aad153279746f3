//! The BNN lab's "VI vs NUTS" comparison, computed off the UI thread: [`NutsJob`] samples the exact posterior of
//! the lab's network on the lab's training rows with [`sample_bnn`] (on its own named thread, followed through
//! [`NutsControl`]), then predicts the test rows from every draw and from the variational model, and hands the UI
//! one plain-data [`NutsComparison`]: the sampler's diagnostics, the figures of [`posterior_figures`] (the same
//! numbers as `train bnn --sampler nuts --json` for the same data, settings and seed), both predictive summaries
//! and each weight's two marginals (a histogram of the draws, the variational Gaussian over it).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::data::prepare::Prepared;
use crate::models::bnn::{
    BAND_SEED_SALT, BnnConfig, BnnParams, Posterior, Predictive, PredictiveBand, band_from_weights, largest_gap,
    predictive_cpu, summarize, train_subset, vi_band,
};
use crate::models::nuts::{
    ChainProgress, NutsControl, NutsError, NutsPosterior, NutsSettings, bnn_template, posterior_figures,
    predictive_figures, sample_bnn,
};
use crate::train::bnn_view::band_grid;

/// Bins of a weight's histogram of draws.
pub const HISTOGRAM_BINS: usize = 30;
/// Points of the variational Gaussian's curve over a histogram.
pub const CURVE_POINTS: usize = 121;

/// What one comparison needs: the variational model on show, the run's settings and data, and the sampler's
/// settings.
#[derive(Clone, Debug)]
pub struct NutsRequest {
    /// The variational model to compare with (its architecture and task are sampled).
    pub vi: Arc<BnnParams>,
    /// The optimisation step of `vi` (it seeds the variational predictions, as on the Predictions page).
    pub vi_step: u64,
    /// Which run of the lab `vi` belongs to.
    pub run: u64,
    /// The settings of the variational run: architecture, prior sd, training share and seed.
    pub config: BnnConfig,
    /// The run's data: its training rows (the share the variational run used) are sampled on, its test rows
    /// predicted.
    pub data: Arc<Prepared>,
    /// The sampler's settings.
    pub settings: NutsSettings,
}

/// A histogram scaled as a density (its bars' areas sum to 1), with equal bins from `lo`.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// Left edge of the first bin.
    pub lo: f64,
    /// Width of every bin.
    pub width: f64,
    /// Density of each bin: its count over (all values × `width`).
    pub density: Vec<f64>,
}

impl Histogram {
    /// Centre of bin `i`.
    #[must_use]
    pub fn centre(&self, i: usize) -> f64 {
        self.lo + (i as f64 + 0.5) * self.width
    }
}

/// One weight (or bias) of the network under both posteriors.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightMarginal {
    /// Layer, from 0.
    pub layer: usize,
    /// Index in the layer's parameters `[vec(W) row-major, b]`.
    pub index: usize,
    /// The variational posterior's mean.
    pub vi_mean: f64,
    /// The variational posterior's marginal sd (0 in a deterministic layer).
    pub vi_sd: f64,
    /// Mean of the NUTS draws (all chains).
    pub nuts_mean: f64,
    /// Standard deviation of the NUTS draws (all chains).
    pub nuts_sd: f64,
    /// The NUTS draws as a density, over a range that holds the draws and the variational mean ± 4 sd.
    pub histogram: Histogram,
    /// The variational Gaussian's density over the histogram's range (empty in a deterministic layer).
    pub vi_curve: Vec<[f64; 2]>,
}

impl WeightMarginal {
    /// `vi_sd / nuts_sd`: below 1 where the variational posterior is too narrow; NaN where either is 0 (a
    /// deterministic layer).
    #[must_use]
    pub fn sd_ratio(&self) -> f64 {
        if self.vi_sd > 0.0 && self.nuts_sd > 0.0 { self.vi_sd / self.nuts_sd } else { f64::NAN }
    }
}

/// Everything the "VI vs NUTS" page shows, plain data.
#[derive(Clone, Debug, PartialEq)]
pub struct NutsComparison {
    /// The lab's run it was computed for.
    pub run: u64,
    /// The variational model's step.
    pub vi_step: u64,
    /// The variational posterior's form in the hidden layers.
    pub vi_posterior: Posterior,
    /// The network NUTS sampled (zero weights: its shapes, activations, task and prior).
    pub template: BnnParams,
    /// The draws and diagnostics.
    pub posterior: NutsPosterior,
    /// [`posterior_figures`] of the draws on the test rows.
    pub figures: Vec<(String, f64)>,
    /// The variational model's figures on the test rows, named as `figures` ([`predictive_figures`]).
    pub vi_figures: Vec<(String, f64)>,
    /// The variational predictions of the test rows.
    pub vi: Predictive,
    /// The NUTS predictions of the test rows (every draw a weight sample).
    pub nuts: Predictive,
    /// Every weight and bias, layer by layer.
    pub marginals: Vec<WeightMarginal>,
    /// For a regression on one feature: both posteriors' predictive bands over one grid.
    pub bands: Option<BandComparison>,
    /// The layers (from 0) that are deterministic in the variational model.
    pub deterministic_layers: Vec<usize>,
    /// Seconds of the predictions and marginals after the sampling.
    pub seconds_after: f64,
}

impl NutsComparison {
    /// A figure of the NUTS draws by name.
    #[must_use]
    pub fn figure(&self, name: &str) -> Option<f64> {
        self.figures.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// A figure of the variational model by name.
    #[must_use]
    pub fn vi_figure(&self, name: &str) -> Option<f64> {
        self.vi_figures.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// Mean of [`WeightMarginal::sd_ratio`] over the weights that have one (NaN when none has).
    #[must_use]
    pub fn mean_sd_ratio(&self) -> f64 {
        let ratios: Vec<f64> = self.marginals.iter().map(WeightMarginal::sd_ratio).filter(|r| r.is_finite()).collect();
        if ratios.is_empty() { f64::NAN } else { ratios.iter().sum::<f64>() / ratios.len() as f64 }
    }
}

/// Weight samples of the variational posterior's band on the comparison page (the NUTS band uses every draw).
pub const VI_BAND_SAMPLES: usize = 1000;

/// Share of the inputs' range an empty stretch must exceed to count as a gap ([`largest_gap`]).
pub const GAP_SHARE: f32 = 0.1;

/// Both posteriors' predictive bands of `f(x)` over one grid, for a regression on one feature: the lesson of
/// Foong et al. (2019) is in the gap between two clusters of inputs, where the exact posterior's band widens and a
/// mean-field one's hardly does.
#[derive(Clone, Debug, PartialEq)]
pub struct BandComparison {
    /// The variational posterior's band ([`VI_BAND_SAMPLES`] weight samples).
    pub vi: PredictiveBand,
    /// The NUTS band (every draw).
    pub nuts: PredictiveBand,
    /// The smallest and largest input of the data (training and test rows), in the feature's units.
    pub data_range: (f32, f32),
    /// The widest empty stretch of the training inputs, when wider than [`GAP_SHARE`] of their range.
    pub gap: Option<(f32, f32)>,
}

/// Mean widths of the 95 % band of `f(x)` in three regions, `[VI, NUTS]` each (NaN where a region has no grid
/// point).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BandWidths {
    /// Over the data's range, the gap left out.
    pub data: [f64; 2],
    /// Over the gap.
    pub gap: [f64; 2],
    /// Past the data, both sides.
    pub outside: [f64; 2],
}

impl BandComparison {
    /// The mean widths of both bands in the data, in the gap and past the data.
    #[must_use]
    pub fn widths(&self) -> BandWidths {
        let (lo, hi) = self.data_range;
        let region = |band: &PredictiveBand, keep: &dyn Fn(f32) -> bool| -> f64 {
            let w: Vec<f64> =
                (0..band.x.len()).filter(|&i| keep(band.x[i])).map(|i| f64::from(band.function.width_95(i))).collect();
            if w.is_empty() { f64::NAN } else { w.iter().sum::<f64>() / w.len() as f64 }
        };
        let in_gap = |x: f32| self.gap.is_some_and(|(a, b)| x > a && x < b);
        let both = |f: &dyn Fn(&PredictiveBand) -> f64| [f(&self.vi), f(&self.nuts)];
        BandWidths {
            data: both(&|b| region(b, &|x| x >= lo && x <= hi && !in_gap(x))),
            gap: both(&|b| region(b, &in_gap)),
            outside: both(&|b| region(b, &|x| x < lo || x > hi)),
        }
    }
}

/// Both bands for `request`'s data when it is a regression on one feature: the variational one from
/// [`VI_BAND_SAMPLES`] samples seeded by the model's step, the exact one from every draw in `draws`.
fn band_comparison(
    request: &NutsRequest,
    template: &BnnParams,
    draws: &[f32],
    n_draws: usize,
) -> Option<BandComparison> {
    let data = &request.data;
    let grid = band_grid(data)?;
    if request.vi.n_in() != 1 {
        return None;
    }
    let vi = vi_band(&request.vi, &grid.z, &grid.x, VI_BAND_SAMPLES, request.vi_step ^ BAND_SEED_SALT);
    let nuts = band_from_weights(template, draws, n_draws, &grid.z, &grid.x);
    let (mean, scale) =
        (data.feature_mean.first().copied().unwrap_or(0.0), data.feature_scale.first().copied().unwrap_or(1.0));
    let (x, _, _) = training_rows(data, &request.config);
    let inputs: Vec<f32> = x.iter().map(|z| z * scale + mean).collect();
    Some(BandComparison { vi, nuts, data_range: grid.data_range, gap: largest_gap(&inputs, GAP_SHARE) })
}

/// The training rows the variational run of `config` saw (its seeded share of the training split, as the trainer
/// and the CLI take it): features `[n, n_in]`, targets `[n]`, and `n`.
#[must_use]
pub fn training_rows(data: &Prepared, config: &BnnConfig) -> (Vec<f32>, Vec<f32>, usize) {
    let d = data.n_features();
    let rows = train_subset(data.n_train(), config.train_fraction, config.seed);
    let x: Vec<f32> = rows.iter().filter_map(|&i| data.x_train.get(i * d..(i + 1) * d)).flatten().copied().collect();
    let y: Vec<f32> = rows.iter().filter_map(|&i| data.y_train.get(i).copied()).collect();
    let n = y.len();
    (x, y, n)
}

/// `values` as a density histogram of `bins` equal bins over `[lo, hi]` (values outside are left out; a value on
/// `hi` falls in the last bin). An empty or degenerate range widens to `lo ± 0.5`.
#[must_use]
pub fn density_histogram(values: &[f32], lo: f64, hi: f64, bins: usize) -> Histogram {
    let bins = bins.max(1);
    let (lo, hi) = if hi > lo && (hi - lo).is_finite() { (lo, hi) } else { (lo - 0.5, lo + 0.5) };
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &v in values {
        let v = f64::from(v);
        if v >= lo && v <= hi {
            let i = (((v - lo) / width) as usize).min(bins - 1);
            counts[i] += 1;
        }
    }
    let n = values.len().max(1) as f64;
    Histogram { lo, width, density: counts.iter().map(|&c| c as f64 / (n * width)).collect() }
}

/// The density of `N(mean, sd²)` at `points` evenly spaced x from `lo` to `hi`; empty when `sd` is not positive.
#[must_use]
pub fn gaussian_curve(mean: f64, sd: f64, lo: f64, hi: f64, points: usize) -> Vec<[f64; 2]> {
    if sd.is_nan() || sd <= 0.0 || points < 2 {
        return Vec::new();
    }
    let norm = 1.0 / (sd * (2.0 * std::f64::consts::PI).sqrt());
    (0..points)
        .map(|i| {
            let x = lo + (hi - lo) * i as f64 / (points - 1) as f64;
            [x, norm * (-0.5 * ((x - mean) / sd).powi(2)).exp()]
        })
        .collect()
}

/// Indices into `marginals` ordered by [`WeightMarginal::sd_ratio`], smallest first (the variational posterior
/// most too narrow) or largest first; weights without a ratio come last, in their order.
#[must_use]
pub fn order_by_ratio(marginals: &[WeightMarginal], largest_first: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..marginals.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (marginals[a].sd_ratio(), marginals[b].sd_ratio());
        match (ra.is_nan(), rb.is_nan()) {
            (true, true) => a.cmp(&b),
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            (false, false) if largest_first => rb.total_cmp(&ra),
            (false, false) => ra.total_cmp(&rb),
        }
    });
    order
}

/// Each weight's marginals: the variational layer's mean and sd, the NUTS draws' (`draws` `[n_draws, n_params]`).
#[must_use]
pub fn weight_marginals(vi: &BnnParams, draws: &[f32], n_draws: usize) -> Vec<WeightMarginal> {
    let n_params = vi.n_params();
    let mut out = Vec::with_capacity(n_params);
    let mut column = Vec::with_capacity(n_draws);
    let mut offset = 0;
    for (l, layer) in vi.layers.iter().enumerate() {
        for index in 0..layer.n_params() {
            column.clear();
            column.extend((0..n_draws).filter_map(|s| draws.get(s * n_params + offset + index).copied()));
            let n = column.len().max(1) as f64;
            let nuts_mean = column.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let nuts_sd = (column.iter().map(|&v| (f64::from(v) - nuts_mean).powi(2)).sum::<f64>() / n).sqrt();
            let vi_mean = f64::from(layer.mean.get(index).copied().unwrap_or(0.0));
            let vi_sd = if layer.posterior == Posterior::Deterministic {
                0.0
            } else {
                f64::from(layer.sd.get(index).copied().unwrap_or(0.0))
            };
            let (mut lo, mut hi) = column
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(f64::from(v)), hi.max(f64::from(v))));
            lo = lo.min(vi_mean - 4.0 * vi_sd);
            hi = hi.max(vi_mean + 4.0 * vi_sd);
            let histogram = density_histogram(&column, lo, hi, HISTOGRAM_BINS);
            let top = histogram.lo + histogram.width * histogram.density.len() as f64;
            let vi_curve = gaussian_curve(vi_mean, vi_sd, histogram.lo, top, CURVE_POINTS);
            out.push(WeightMarginal { layer: l, index, vi_mean, vi_sd, nuts_mean, nuts_sd, histogram, vi_curve });
        }
        offset += layer.n_params();
    }
    out
}

/// The comparison of `posterior` (sampled on `template`) with the variational model of `request`.
#[must_use]
pub fn compare(request: &NutsRequest, template: BnnParams, posterior: NutsPosterior) -> NutsComparison {
    let started = Instant::now();
    let data = &request.data;
    let figures = posterior_figures(&template, &posterior, &data.x_test, &data.y_test);
    let n_draws = posterior.n_draws();
    let draws = posterior.weight_samples();
    let outputs = template.predict_with_weights(&draws, n_draws, &data.x_test, data.n_test());
    let nuts = summarize(template.task, &outputs, n_draws, &data.y_test);
    // As the Predictions page samples the variational model: its step seeds the draws.
    let n_vi = request.config.predictive_samples.clamp(1, 10_000);
    let vi = predictive_cpu(&request.vi, &data.x_test, &data.y_test, n_vi, request.vi_step);
    let vi_figures = predictive_figures(request.vi.task, &vi);
    let marginals = weight_marginals(&request.vi, &draws, n_draws);
    let bands = band_comparison(request, &template, &draws, n_draws);
    let deterministic_layers = request
        .vi
        .layers
        .iter()
        .enumerate()
        .filter(|(_, l)| l.posterior == Posterior::Deterministic)
        .map(|(i, _)| i)
        .collect();
    NutsComparison {
        run: request.run,
        vi_step: request.vi_step,
        vi_posterior: request.config.posterior,
        template,
        posterior,
        figures,
        vi_figures,
        vi,
        nuts,
        marginals,
        bands,
        deterministic_layers,
        seconds_after: started.elapsed().as_secs_f64(),
    }
}

/// Why a request cannot be sampled as it stands, before any thread starts.
fn check(request: &NutsRequest) -> Result<(), NutsError> {
    let vi = &request.vi;
    let template = bnn_template(&request.config, request.data.n_features(), vi.task);
    let same = template.layers.len() == vi.layers.len()
        && template.layers.iter().zip(&vi.layers).all(|(t, v)| t.n_in == v.n_in && t.n_out == v.n_out);
    if !same {
        return Err(NutsError::Invalid("the model on show does not have the run's architecture".into()));
    }
    Ok(())
}

/// A sampling run on its own thread; dropping it cancels and joins it.
pub struct NutsJob {
    control: NutsControl,
    result: Receiver<Result<Arc<NutsComparison>, NutsError>>,
    thread: Option<JoinHandle<()>>,
    started: Instant,
    /// The run of the lab it compares with.
    pub run: u64,
    /// The settings it runs with.
    pub settings: NutsSettings,
    /// Training rows given to the sampler (before its subsample).
    pub rows_given: usize,
}

impl NutsJob {
    /// Starts sampling for `request` on the thread "nuts-sampler"; `repaint` is called when the result is in.
    pub fn spawn(request: NutsRequest, repaint: impl Fn() + Send + 'static) -> Result<Self, NutsError> {
        check(&request)?;
        let control = NutsControl::new();
        let (tx, rx) = channel();
        let (x, y, n_rows) = training_rows(&request.data, &request.config);
        if n_rows == 0 {
            return Err(NutsError::Invalid("the run has no training rows".into()));
        }
        let run = request.run;
        let settings = request.settings.clone();
        let thread_control = control.clone();
        let thread = std::thread::Builder::new()
            .name("nuts-sampler".into())
            .spawn(move || {
                let template = bnn_template(&request.config, request.data.n_features(), request.vi.task);
                let result = sample_bnn(&template, &x, &y, n_rows, &request.settings, &thread_control)
                    .map(|posterior| Arc::new(compare(&request, template, posterior)));
                let _ = tx.send(result);
                repaint();
            })
            .map_err(|e| NutsError::Invalid(format!("cannot start the sampler's thread: {e}")))?;
        Ok(Self {
            control,
            result: rx,
            thread: Some(thread),
            started: Instant::now(),
            run,
            settings,
            rows_given: n_rows,
        })
    }

    /// Each chain's progress.
    #[must_use]
    pub fn progress(&self) -> Vec<ChainProgress> {
        self.control.progress()
    }

    /// Pauses or resumes the chains.
    pub fn set_paused(&self, paused: bool) {
        self.control.set_paused(paused);
    }

    /// Whether the chains are paused.
    #[must_use]
    pub fn is_paused(&self) -> bool {
        self.control.pause.load(Ordering::Relaxed)
    }

    /// Asks the chains to stop; the result is then [`NutsError::Cancelled`].
    pub fn cancel(&self) {
        self.control.cancel();
    }

    /// Whether cancelling was asked.
    #[must_use]
    pub fn is_cancelling(&self) -> bool {
        self.control.cancel.load(Ordering::Relaxed)
    }

    /// Seconds since the start.
    #[must_use]
    pub fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The result, once the thread has sent it (then the job is done).
    #[must_use]
    pub fn try_result(&self) -> Option<Result<Arc<NutsComparison>, NutsError>> {
        match self.result.try_recv() {
            Ok(r) => Some(r),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                Some(Err(NutsError::Invalid("the sampler's thread ended without a result".into())))
            }
        }
    }
}

impl Drop for NutsJob {
    fn drop(&mut self) {
        self.control.cancel();
        self.control.set_paused(false);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::bnn::BnnTask;

    fn marginal(vi_sd: f64, nuts_sd: f64) -> WeightMarginal {
        WeightMarginal {
            layer: 0,
            index: 0,
            vi_mean: 0.0,
            vi_sd,
            nuts_mean: 0.0,
            nuts_sd,
            histogram: Histogram { lo: 0.0, width: 1.0, density: Vec::new() },
            vi_curve: Vec::new(),
        }
    }

    #[test]
    fn the_histogram_is_a_density_and_bins_its_edges() {
        let values = [0.0f32, 0.1, 0.5, 0.99, 1.0, 2.0];
        let h = density_histogram(&values, 0.0, 1.0, 4);
        assert!((h.width - 0.25).abs() < 1e-12);
        // 0.0, 0.1 | - | 0.5 | 0.99, 1.0 (the top edge in the last bin); 2.0 outside.
        let counts: Vec<f64> = h.density.iter().map(|d| d * 6.0 * 0.25).collect();
        for (c, want) in counts.iter().zip([2.0, 0.0, 1.0, 2.0]) {
            assert!((c - want).abs() < 1e-9, "{counts:?}");
        }
        assert!((h.centre(0) - 0.125).abs() < 1e-12);
        // All values inside: the bars' areas sum to 1.
        let h = density_histogram(&values, -1.0, 3.0, 7);
        assert!((h.density.iter().sum::<f64>() * h.width - 1.0).abs() < 1e-9);
        // A single value: a range around it.
        let h = density_histogram(&[2.0], 2.0, 2.0, 3);
        assert!((h.lo - 1.5).abs() < 1e-12 && (h.density.iter().sum::<f64>() * h.width - 1.0).abs() < 1e-9);
    }

    #[test]
    fn the_gaussian_curve_integrates_to_one_and_peaks_at_the_mean() {
        let curve = gaussian_curve(1.0, 0.5, -3.0, 5.0, 801);
        let dx = 8.0 / 800.0;
        let area: f64 = curve.windows(2).map(|w| 0.5 * (w[0][1] + w[1][1]) * dx).sum();
        assert!((area - 1.0).abs() < 1e-6, "{area}");
        let top = curve.iter().max_by(|a, b| a[1].total_cmp(&b[1])).unwrap();
        assert!((top[0] - 1.0).abs() < 1e-9);
        assert!((top[1] - 1.0 / (0.5 * (2.0 * std::f64::consts::PI).sqrt())).abs() < 1e-9);
        assert!(gaussian_curve(0.0, 0.0, -1.0, 1.0, 10).is_empty());
    }

    #[test]
    fn the_ratio_list_sorts_both_ways_with_deterministic_weights_last() {
        let m = vec![marginal(1.0, 2.0), marginal(0.0, 1.0), marginal(3.0, 1.0), marginal(0.1, 1.0)];
        assert_eq!(order_by_ratio(&m, false), vec![3, 0, 2, 1]);
        assert_eq!(order_by_ratio(&m, true), vec![2, 0, 3, 1]);
        assert!(m[1].sd_ratio().is_nan());
    }

    #[test]
    fn marginals_read_each_column_of_the_draws() {
        let config = BnnConfig { hidden: vec![2], ..BnnConfig::default() };
        let mut vi = bnn_template(&config, 1, BnnTask::Regression(crate::models::bnn::Head::Mse));
        vi.layers[0].posterior = Posterior::MeanField;
        vi.layers[0].sd = vec![0.5; 4];
        let n_params = vi.n_params(); // 4 + 3
        assert_eq!(n_params, 7);
        // Draw s: parameter k is k + s (s = 0, 1): means k + 0.5, sds 0.5.
        let draws: Vec<f32> = (0..2).flat_map(|s| (0..n_params).map(move |k| (k + s) as f32)).collect();
        let m = weight_marginals(&vi, &draws, 2);
        assert_eq!(m.len(), 7);
        assert_eq!((m[5].layer, m[5].index), (1, 1));
        for (k, w) in m.iter().enumerate() {
            assert!((w.nuts_mean - (k as f64 + 0.5)).abs() < 1e-9);
            assert!((w.nuts_sd - 0.5).abs() < 1e-9);
        }
        assert!((m[0].sd_ratio() - 1.0).abs() < 1e-9);
        assert!(m[4].sd_ratio().is_nan(), "the output layer is deterministic");
        assert!(m[4].vi_curve.is_empty() && !m[0].vi_curve.is_empty());
    }
}
