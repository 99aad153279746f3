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
