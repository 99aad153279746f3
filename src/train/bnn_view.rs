//! The BNN lab's Monte Carlo predictions, on their own thread so the UI never waits: the predictive summary of
//! every test row, the out-of-distribution probe (one row's predictive distribution, and the predictive
//! band as one feature sweeps far outside the data), and, for a regression on one feature, the predictive band over
//! a grid reaching past the data ([`BandView`]).
//!
//! The UI sends [`BnnViewRequest`]s (the newest replaces what is pending) and reads back plain data. Samples run
//! on a real GPU when there is one and the job is big enough to pay for the round trip (the wgpu kernels of
//! batched sampled weights), otherwise on candle.

use std::sync::Arc;
use std::time::Instant;

use crate::compute::RealGpu;
use crate::data::prepare::{OutputKind, Prepared};
use crate::models::bnn::{
    BAND_GRID_POINTS, BAND_SEED_SALT, BnnParams, Predictive, PredictiveBand, extended_grid, summarize, vi_band,
};
use crate::train::view_thread::ViewThread;

/// Points of the probe's sweep, from [`SWEEP_HALF_WIDTH`] standard deviations below the mean to as many above.
pub const SWEEP_POINTS: usize = 121;
/// The sweep spans ±this many standard deviations of the feature (the data lie within about ±3).
pub const SWEEP_HALF_WIDTH: f32 = 10.0;

/// What the views need computed for one model.
#[derive(Clone, Debug)]
pub struct BnnViewRequest {
    /// The model.
    pub params: Arc<BnnParams>,
    /// The optimisation step of `params`.
    pub step: u64,
    /// Which run `params` belong to.
    pub run: u64,
    /// The run's data (the test rows are predicted).
    pub data: Arc<Prepared>,
    /// Monte Carlo forward passes.
    pub n_samples: usize,
    /// The seed of the passes' weight draws: the epoch's evaluation's ([`crate::models::bnn::evaluation_seed`]) for
    /// a model at an epoch's end, so the views and the run's record agree; the step otherwise.
    pub seed: u64,
    /// A row to probe, if the probe view is open.
    pub probe: Option<BnnProbe>,
    /// Compute the predictive band (the band view is open; only for data where [`band_applies`]).
    pub band: bool,
}

/// The seed of the views' Monte Carlo passes of the model at `step`, `epoch` epochs into a run seeded `run_seed`:
/// at an epoch's end (a whole `epoch`, after the first step) the seed of that epoch's evaluation, so the
/// predictions, the calibration and the VI-against-NUTS summary give the figures the run recorded (those of the
/// Compare runs table); the step otherwise.
#[must_use]
pub fn predictive_seed(run_seed: Option<u64>, step: u64, epoch: f64) -> u64 {
    let whole = epoch.round();
    match run_seed {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a whole, non-negative epoch count
        Some(seed) if step > 0 && whole >= 1.0 && (epoch - whole).abs() < 1e-9 => {
            crate::models::bnn::evaluation_seed(seed, whole as usize)
        }
        _ => step,
    }
}

/// An input row to probe and the feature to sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct BnnProbe {
    /// Standardised features of the row (possibly moved far outside the data).
    pub features: Vec<f32>,
    /// The feature whose value the sweep varies.
    pub sweep_feature: usize,
}

/// The test set's predictions for one model.
#[derive(Clone, Debug, PartialEq)]
pub struct PredictiveView {
    /// The model's step.
    pub step: u64,
    /// The model's run.
    pub run: u64,
    /// Per test row and overall.
    pub predictive: Predictive,
    /// Seconds this took.
    pub seconds: f64,
    /// Where it ran.
    pub device: String,
}

/// One probed row.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeView {
    /// The model's step.
    pub step: u64,
    /// What was probed.
    pub probe: BnnProbe,
    /// The probe row's summary (the actual value is unknown: 0).
    pub at_point: Predictive,
    /// The probe row's sampled predictions (regression: the value or `loc`; classification: the predicted
    /// class's probability), one per weight sample.
    pub samples: Vec<f32>,
    /// Standardised values of the swept feature.
    pub sweep_z: Vec<f32>,
    /// The predictions along the sweep.
    pub sweep: Predictive,
}

/// The predictive band of one model over its one feature (see [`crate::models::bnn::PredictiveBand`]).
#[derive(Clone, Debug, PartialEq)]
pub struct BandView {
    /// The model's step.
    pub step: u64,
    /// The model's run.
    pub run: u64,
    /// The band, its grid in the feature's own units.
    pub band: PredictiveBand,
    /// The smallest and largest value of the feature in the data (training and test rows), in its own units.
    pub data_range: (f32, f32),
    /// Weight samples drawn.
    pub n_samples: usize,
}

/// Whether the band view applies to `data`: a regression on exactly one feature.
#[must_use]
pub fn band_applies(data: &Prepared) -> bool {
    data.n_features() == 1 && matches!(data.output, Some((_, OutputKind::Regression)))
}

/// What the view thread sends back.
#[derive(Clone, Debug)]
pub enum BnnViewResult {
    /// The test set's predictions.
    Predictive(Arc<PredictiveView>),
    /// The probe.
    Probe(Arc<ProbeView>),
    /// The predictive band.
    Band(Arc<BandView>),
    /// Something failed; the message says what.
    Error(String),
}

/// The view thread's handle; dropping it stops the thread.
pub type BnnViewWorker = ViewThread<BnnViewRequest, BnnViewResult>;

/// Starts the BNN's view thread; `repaint` is called after every result.
pub fn spawn(repaint: impl Fn() + Send + 'static) -> std::io::Result<BnnViewWorker> {
    let mut state = ViewState { gpu: RealGpu::new(), done_predictive: None, done_probe: None, done_band: None };
    ViewThread::spawn("bnn-view", repaint, move |request, send| state.handle(&request, send))
}

/// What the thread remembers between requests.
struct ViewState {
    gpu: RealGpu,
    /// (run, step, samples) of the predictions last sent.
    done_predictive: Option<(u64, u64, usize)>,
    /// (run, step, probe) of the probe last sent.
    done_probe: Option<(u64, u64, BnnProbe)>,
    /// (run, step, samples) of the band last sent.
    done_band: Option<(u64, u64, usize)>,
}

impl ViewState {
    fn handle(&mut self, request: &BnnViewRequest, send: &dyn Fn(BnnViewResult)) {
        let key = (request.run, request.step, request.n_samples);
        if self.done_predictive != Some(key) {
            send(self.predictive(request));
            self.done_predictive = Some(key);
        }
        if let Some(probe) = &request.probe {
            let probe_key = (request.run, request.step, probe.clone());
            if self.done_probe.as_ref() != Some(&probe_key) {
                send(probe_view(request, probe));
                self.done_probe = Some(probe_key);
            }
        }
        if request.band && self.done_band != Some(key) {
            send(band_view(request));
            self.done_band = Some(key);
        }
    }

    /// The test set's predictions, on a real GPU when it is worth it.
    fn predictive(&mut self, request: &BnnViewRequest) -> BnnViewResult {
        let data = &request.data;
        let started = Instant::now();
        let flops = predictive_flops(&request.params, data.n_test(), request.n_samples);
        let seed = request.seed;
        let mut device = "CPU".to_owned();
        let mut samples = None;
        if let Some((gpu, adapter)) = self.gpu.for_job(flops, "the BNN's predictions") {
            match request.params.predict_samples(gpu, &data.x_test, data.n_test(), request.n_samples, seed) {
                Ok(s) => {
                    samples = Some(s);
                    device = format!("GPU ({})", adapter.name);
                }
                Err(e) => {
                    log::warn!("GPU predictions failed ({e}); using the CPU from now on");
                    self.gpu.give_up();
                }
            }
        }
        let samples = samples.unwrap_or_else(|| {
            request.params.predict_samples_cpu(&data.x_test, data.n_test(), request.n_samples, seed)
        });
        BnnViewResult::Predictive(Arc::new(PredictiveView {
            step: request.step,
            run: request.run,
            predictive: summarize(request.params.task, &samples, request.n_samples, &data.y_test),
            seconds: started.elapsed().as_secs_f64(),
            device,
        }))
    }
}

/// Multiply-adds of `n_samples` sampled networks on `n_rows` rows, times two.
fn predictive_flops(params: &BnnParams, n_rows: usize, n_samples: usize) -> f64 {
    let per_row: usize = params.layers.iter().map(|l| 2 * l.n_in * l.n_out).sum();
    (per_row * n_rows * n_samples) as f64
}

/// The probe row's samples and the sweep of one feature (small: always on the CPU).
fn probe_view(request: &BnnViewRequest, probe: &BnnProbe) -> BnnViewResult {
    let params = &request.params;
    let d = params.n_in();
    if probe.features.len() != d || probe.sweep_feature >= d {
        return BnnViewResult::Error("the probe row does not fit the model".into());
    }
    let s = request.n_samples.max(1);
    // The same weight samples (seed) for the point and the sweep, so the two views agree.
    let seed = request.step ^ 0x9e37_79b9;
    let point = params.predict_samples_cpu(&probe.features, 1, s, seed);
    let sweep_z: Vec<f32> = (0..SWEEP_POINTS)
        .map(|i| -SWEEP_HALF_WIDTH + 2.0 * SWEEP_HALF_WIDTH * i as f32 / (SWEEP_POINTS - 1) as f32)
        .collect();
    let rows: Vec<f32> = sweep_z
        .iter()
        .flat_map(|&z| {
            let mut row = probe.features.clone();
            row[probe.sweep_feature] = z;
            row
        })
        .collect();
    let sweep = params.predict_samples_cpu(&rows, SWEEP_POINTS, s, seed);
    let at_point = summarize(params.task, &point, s, &[0.0]);
    let n_out = params.task.n_out();
    let samples = match &at_point.rows {
        crate::models::bnn::PredictiveRows::Regression(_) => (0..s).map(|k| point[k * n_out]).collect(),
        crate::models::bnn::PredictiveRows::Classes(rows) => {
            let predicted = rows.first().map_or(0, |r| r.predicted);
            (0..s)
                .map(|k| {
                    let logits = &point[k * n_out..(k + 1) * n_out];
                    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let total: f32 = logits.iter().map(|l| (l - max).exp()).sum();
                    (logits[predicted] - max).exp() / total
                })
                .collect()
        }
    };
    BnnViewResult::Probe(Arc::new(ProbeView {
        step: request.step,
        probe: probe.clone(),
        at_point,
        samples,
        sweep: summarize(params.task, &sweep, s, &vec![0.0; SWEEP_POINTS]),
        sweep_z,
    }))
}

/// The band over [`BAND_GRID_POINTS`] points from a quarter of the data's range below its smallest value to as much
/// above its largest (small: always on the CPU). The weight samples' noise is the same at every step of a run (the
/// seed is the run's), so the sampled functions move smoothly as the posterior learns.
fn band_view(request: &BnnViewRequest) -> BnnViewResult {
    let (params, data) = (&request.params, &request.data);
    if params.n_in() != 1 {
        return BnnViewResult::Error("the predictive band needs a regression on one feature".into());
    }
    let Some(grid) = band_grid(data) else {
        return BnnViewResult::Error("the predictive band needs a regression on one feature, with data rows".into());
    };
    let n_samples = request.n_samples.max(1);
    let band = vi_band(params, &grid.z, &grid.x, n_samples, request.run ^ BAND_SEED_SALT);
    BnnViewResult::Band(Arc::new(BandView {
        step: request.step,
        run: request.run,
        band,
        data_range: grid.data_range,
        n_samples,
    }))
}

/// The grid a band is drawn over, for a regression on one feature.
#[derive(Clone, Debug, PartialEq)]
pub struct BandGrid {
    /// [`BAND_GRID_POINTS`] points from a quarter of the data's range below its smallest value to as much above
    /// its largest, in the feature's own units.
    pub x: Vec<f32>,
    /// The same points standardised, as the network reads them.
    pub z: Vec<f32>,
    /// The smallest and largest value of the feature in the data (training and test rows), in its own units.
    pub data_range: (f32, f32),
}

/// The band's grid for `data`, `None` unless [`band_applies`] and the data have rows.
#[must_use]
pub fn band_grid(data: &Prepared) -> Option<BandGrid> {
    if !band_applies(data) {
        return None;
    }
    let (mean, scale) =
        (data.feature_mean.first().copied().unwrap_or(0.0), data.feature_scale.first().copied().unwrap_or(1.0));
    let (lo, hi) = data
        .x_train
        .iter()
        .chain(&data.x_test)
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &z| (lo.min(z), hi.max(z)));
    if !(lo.is_finite() && hi.is_finite()) {
        return None;
    }
    let data_range = (lo * scale + mean, hi * scale + mean);
    let x = extended_grid(data_range.0, data_range.1, BAND_GRID_POINTS);
    let z = x.iter().map(|x| (x - mean) / scale).collect();
    Some(BandGrid { x, z, data_range })
}

#[cfg(test)]
mod tests {
    use super::predictive_seed;
    use crate::models::bnn::evaluation_seed;

    #[test]
    fn a_model_at_an_epochs_end_is_drawn_with_that_epochs_evaluation_seed() {
        // Epoch 3's end (step 51 of 17 steps an epoch): the evaluation's seed, 42 + 3.
        assert_eq!(predictive_seed(Some(42), 51, 51.0 / 17.0), evaluation_seed(42, 3));
        assert_eq!(evaluation_seed(42, 3), 45);
        // Within an epoch, before the first step, or with no run's seed: the step.
        assert_eq!(predictive_seed(Some(42), 52, 52.0 / 17.0), 52);
        assert_eq!(predictive_seed(Some(42), 0, 0.0), 0);
        assert_eq!(predictive_seed(None, 51, 3.0), 51);
    }
}
