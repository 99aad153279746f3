//! Small statistics on plain numbers: quantiles, Freedman–Diaconis histograms, normal densities, mean and
//! standard deviation. Used by the models' summaries and by the views (they take `&[f32]`, never tensors).

use serde::{Deserialize, Serialize};

/// The `q`-quantile (0..=1) of sorted values, by linear interpolation between order statistics (type 7, the
/// default of R and NumPy). NaN for an empty slice.
#[must_use]
pub fn quantile_sorted(sorted: &[f32], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => f64::from(sorted[0]),
        n => {
            let h = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            let frac = h - lo as f64;
            f64::from(sorted[lo]) + frac * (f64::from(sorted[hi]) - f64::from(sorted[lo]))
        }
    }
}

/// Most bins a histogram gets, whatever the rule says.
pub const MAX_BINS: usize = 120;

/// The Freedman–Diaconis bin count for values spanning `[lo, hi]`: bin width `2 IQR n^(-1/3)`
/// (Freedman and Diaconis, 1981), which adapts to the spread without being thrown by outliers. Falls back to
/// Sturges' rule (`log2 n + 1`) when the interquartile range is zero; at least 1, at most [`MAX_BINS`].
#[must_use]
pub fn freedman_diaconis_bins(values: &[f32], lo: f64, hi: f64) -> usize {
    let n = values.len();
    if n < 2 || hi <= lo {
        return 1;
    }
    let mut sorted: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f32::total_cmp);
    let iqr = quantile_sorted(&sorted, 0.75) - quantile_sorted(&sorted, 0.25);
    let bins = if iqr > 0.0 {
        let width = 2.0 * iqr / (n as f64).cbrt();
        ((hi - lo) / width).ceil()
    } else {
        (n as f64).log2().ceil() + 1.0
    };
    (bins as usize).clamp(1, MAX_BINS)
}

/// Counts of values in equal bins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// `bins + 1` increasing edges.
    pub edges: Vec<f64>,
    /// Values per bin; a value on an inner edge goes to the bin on its right, `hi` to the last bin.
    pub counts: Vec<usize>,
}

impl Histogram {
    /// Bins `[lo, hi]` into `bins` equal parts (values outside are not counted).
    #[must_use]
    pub fn new(values: &[f32], lo: f64, hi: f64, bins: usize) -> Self {
        let bins = bins.max(1);
        let width = (hi - lo) / bins as f64;
        let edges = (0..=bins).map(|i| lo + width * i as f64).collect();
        let mut counts = vec![0; bins];
        if width > 0.0 {
            for &v in values {
                let v = f64::from(v);
                if v < lo || v > hi || !v.is_finite() {
                    continue;
                }
                let i = (((v - lo) / width) as usize).min(bins - 1);
                counts[i] += 1;
            }
        }
        Self { edges, counts }
    }

    /// Width of one bin.
    #[must_use]
    pub fn bin_width(&self) -> f64 {
        match (self.edges.first(), self.edges.last()) {
            (Some(a), Some(b)) if !self.counts.is_empty() => (b - a) / self.counts.len() as f64,
            _ => 0.0,
        }
    }

    /// Values counted.
    #[must_use]
    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    /// Count / (total x bin width) per bin: a density comparable to a probability density function.
    #[must_use]
    pub fn densities(&self) -> Vec<f64> {
        let scale = self.total() as f64 * self.bin_width();
        self.counts.iter().map(|&c| if scale > 0.0 { c as f64 / scale } else { 0.0 }).collect()
    }
}

/// The precision `values` were recorded to, where most were: the coarsest step of 1, 2 or 5 times a power of ten, at
/// least `finest` and at most the values' range, that a `share` of the values are whole multiples of. At nine in ten
/// it is 0.01 for the wine's 0.27, 0.28 and 0.3, though a few are written 0.265 or 10.5333; 1 for grades; 0.5 for
/// half points. A binning asks for most values (a comb shows where most values fall), a display of values for all but
/// a few (each is written to its step). Steps too fine for `f32` to tell a multiple at the values' size are not
/// tried. `None` where no step qualifies (measurements to full precision).
#[must_use]
pub fn recorded_step(values: &[f32], finest: f64, share: f64) -> Option<f64> {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).map(f64::from).collect();
    let (lo, hi) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if lo >= hi || finest <= 0.0 || finest.is_nan() {
        return None;
    }
    let largest = lo.abs().max(hi.abs());
    // How far from a whole multiple f32's rounding can put a value, in steps of `step`.
    let rounding = |step: f64| 2.0 * largest * f64::from(f32::EPSILON) / step;
    // From a decade above the range: a range just short of a power of ten (0.99999994, from f32) may be its step.
    let mut power = 10f64.powf((hi - lo).log10().floor() + 1.0);
    while power * 5.0 >= finest {
        for step in [5.0 * power, 2.0 * power, power] {
            if step < finest || step > (hi - lo) * 1.001 || rounding(step) > 0.05 {
                continue;
            }
            let tolerance = 1e-3 + rounding(step);
            let whole = finite.iter().filter(|&&v| ((v / step) - (v / step).round()).abs() < tolerance).count();
            if whole as f64 >= share * finite.len() as f64 {
                return Some(step);
            }
        }
        power /= 10.0;
    }
    None
}

/// A histogram of data values as a reader expects it: Freedman–Diaconis bins over their range, `bins` (least, most)
/// at the ends. Values mostly recorded to a fixed precision ([`recorded_step`], four in five) get bins of a whole
/// number of its steps, each step's value in the middle of its bin. Equal bins over the range would hold one step's
/// values and two steps' by turns, a comb that is in the bins, not in the data. A precision coarser than the rule's bins gives one
/// bin per step; one finer than a fiftieth of them is left alone (its comb is too faint to see). `None` for fewer
/// than two distinct values.
#[must_use]
pub fn data_histogram(values: &[f32], (least, most): (usize, usize)) -> Option<Histogram> {
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(f64::from(v)), hi.max(f64::from(v))));
    if lo >= hi {
        return None;
    }
    let bins = freedman_diaconis_bins(values, lo, hi).clamp(least.max(1), most.max(least).max(1));
    let target = (hi - lo) / bins as f64;
    // Most values: the red wine's volatile acidity is 88 % on 0.01, the rest on 0.005.
    let Some(step) = recorded_step(values, target / 50.0, 0.8) else {
        return Some(Histogram::new(values, lo, hi, bins));
    };
    let width = (target / step).round().max(1.0) * step;
    // Edges half a step from the multiples of the step, the first at or below the lowest value.
    let start = ((lo / step + 0.5).floor() - 0.5) * step;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a positive count of bins
    let bins = ((hi - start) / width).floor() as usize + 1;
    Some(Histogram::new(values, start, start + width * bins as f64, bins))
}

/// The normal density `N(x; mean, sd²)`.
#[must_use]
pub fn normal_pdf(x: f64, mean: f64, sd: f64) -> f64 {
    let z = (x - mean) / sd;
    (-0.5 * z * z).exp() / (sd * (2.0 * std::f64::consts::PI).sqrt())
}

/// The standard normal distribution function `Φ(x)`.
#[must_use]
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// Central interval levels the calibration view reports, with their standard normal quantiles
/// `Φ⁻¹((1 + level) / 2)`.
pub const INTERVAL_LEVELS: [(f64, f64); 3] =
    [(0.5, 0.674_489_750_196_081_7), (0.8, 1.281_551_565_544_600_5), (0.95, 1.959_963_984_540_054)];

/// Mean and (population) standard deviation.
#[must_use]
pub fn mean_and_sd(values: &[f32]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = values.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_order_statistics() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert!((quantile_sorted(&v, 0.0) - 1.0).abs() < 1e-12);
        assert!((quantile_sorted(&v, 0.5) - 2.5).abs() < 1e-12);
        assert!((quantile_sorted(&v, 1.0) - 4.0).abs() < 1e-12);
        assert!((quantile_sorted(&v, 1.0 / 3.0) - 2.0).abs() < 1e-12);
        assert!(quantile_sorted(&[], 0.5).is_nan());
    }

    #[test]
    fn freedman_diaconis_follows_its_formula() {
        // 0..=7: quartiles 1.75 and 5.25 (type 7), IQR 3.5, width 2 * 3.5 / 8^(1/3) = 3.5, so [0, 7] is 2 bins
        // and [0, 7.5] is 3.
        let v: Vec<f32> = (0..8u8).map(f32::from).collect();
        assert_eq!(freedman_diaconis_bins(&v, 0.0, 7.0), 2);
        assert_eq!(freedman_diaconis_bins(&v, 0.0, 7.5), 3);
        // No spread in the middle half: Sturges, log2(8) + 1 = 4.
        let flat = [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0];
        assert_eq!(freedman_diaconis_bins(&flat, 0.0, 2.0), 4);
    }

    #[test]
    fn histogram_counts_every_value_in_range_and_its_density_integrates_to_one() {
        let v: Vec<f32> = (0..=100).map(|i| i as f32 / 100.0).collect();
        let h = Histogram::new(&v, 0.0, 1.0, 7);
        assert_eq!(h.total(), 101);
        assert_eq!(h.counts.len(), 7);
        let integral: f64 = h.densities().iter().map(|d| d * h.bin_width()).sum();
        assert!((integral - 1.0).abs() < 1e-12);
        let outside = Histogram::new(&[-1.0, 2.0], 0.0, 1.0, 3);
        assert_eq!(outside.total(), 0);
    }

    #[test]
    fn the_recorded_precision_is_what_a_share_of_the_values_are_multiples_of() {
        // Two decimals, some written with three or as a thirds (the wine's alcohol has 10.5333333333333).
        let mut values: Vec<f32> = (0..950).map(|i| (20 + (i * 37) % 83) as f32 / 100.0).collect();
        values.extend((0..40).map(|i| (205 + 10 * (i % 60)) as f32 / 1000.0));
        values.extend([0.533_333_3_f32; 10]);
        assert_eq!(recorded_step(&values, 1e-4, 0.9), Some(0.01));
        // All but the thirds: the three-decimal values' 0.005.
        assert_eq!(recorded_step(&values, 1e-4, 0.99), Some(0.005));
        // Grades, half points, and densities to five decimals near 1.
        assert_eq!(recorded_step(&[3.0, 5.0, 9.0, 5.0, 4.0], 1e-3, 0.9), Some(1.0));
        assert_eq!(recorded_step(&[1.5, 2.0, 3.5, 4.0, 2.5, 1.0], 1e-3, 0.9), Some(0.5));
        let densities: Vec<f32> = (0..500).map(|i| 0.987_11 + f64::from((i * 71) % 5000) as f32 * 1e-5).collect();
        assert_eq!(recorded_step(&densities, 1e-6, 0.9), Some(1e-5));
        // No finer than asked; measurements to full precision; one value.
        assert_eq!(recorded_step(&densities, 1e-4, 0.9), None);
        let spread: Vec<f32> = (1..300).map(|i| (f64::from(i) * 0.618_034).fract() as f32).collect();
        assert_eq!(recorded_step(&spread, 1e-9, 0.9), None);
        assert_eq!(recorded_step(&[2.0, 2.0], 1e-3, 0.9), None);
    }

    #[test]
    fn values_recorded_to_a_precision_are_binned_by_whole_steps_without_a_comb() {
        // Each of 0.00, 0.01, ..., 1.20 ten times: a flat density. Equal bins 1.5 steps wide (their edges a
        // quarter step or more from every value) hold two steps' values and one's by turns.
        let values: Vec<f32> = (0..=120).flat_map(|k| std::iter::repeat_n(k as f32 / 100.0, 10)).collect();
        let comb = Histogram::new(&values, -0.0025, -0.0025 + 80.0 * 0.015, 80);
        let (few, many) = (comb.counts.iter().min().copied(), comb.counts.iter().max().copied());
        assert_eq!((few, many), (Some(10), Some(20)), "the comb the plain bins make");
        let h = data_histogram(&values, (80, 80)).expect("a histogram");
        let width = h.bin_width();
        assert!(((width / 0.01) - (width / 0.01).round()).abs() < 1e-9, "whole steps: {width}");
        assert_eq!(h.total(), values.len(), "every value counted");
        // Every bin but the last holds the same number of steps, so the same count.
        let full = &h.counts[..h.counts.len() - 1];
        assert!(full.iter().all(|&c| c == full[0]), "{:?}", h.counts);
        // Each value sits half a step or more inside its bin, never on an edge.
        for &v in &values {
            let inside = (f64::from(v) - h.edges[0]).rem_euclid(width);
            assert!(inside > 0.004 && width - inside > 0.004, "{v} at {inside} of {width}");
        }
        let integral: f64 = h.densities().iter().map(|d| d * width).sum();
        assert!((integral - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_coarse_precision_gets_a_bin_per_step_and_measurements_the_plain_rule() {
        // Seven grades, many rows: one bin each, centred on the grade.
        let grades: Vec<f32> = (0..700).map(|i| (3 + i % 7) as f32).collect();
        let h = data_histogram(&grades, (8, 60)).expect("a histogram");
        assert_eq!(h.counts, vec![100; 7]);
        assert!((h.edges[0] - 2.5).abs() < 1e-12 && (h.bin_width() - 1.0).abs() < 1e-12);
        // Measurements: the plain rule over their range.
        let spread: Vec<f32> = (1..300).map(|i| (f64::from(i) * 0.618_034).fract() as f32).collect();
        let (lo, hi) = spread
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(f64::from(v)), hi.max(f64::from(v))));
        let bins = freedman_diaconis_bins(&spread, lo, hi).clamp(8, 60);
        assert_eq!(data_histogram(&spread, (8, 60)), Some(Histogram::new(&spread, lo, hi, bins)));
        assert_eq!(data_histogram(&[1.0, 1.0], (8, 60)), None);
    }

    #[test]
    fn interval_quantiles_match_the_normal_cdf() {
        // Φ(z) by the complementary error function's series is not in std; integrate the density instead.
        for (level, z) in INTERVAL_LEVELS {
            let n = 200_000;
            let h = z / f64::from(n);
            let mass: f64 = (0..n).map(|i| normal_pdf((f64::from(i) + 0.5) * h, 0.0, 1.0) * h).sum::<f64>() * 2.0;
            assert!((mass - level).abs() < 1e-9, "level {level}: {mass}");
        }
    }
}
