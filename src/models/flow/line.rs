//! The lecture's 1-D flow (slide "Normalizing flows"): a latent z ~ N(0, 1) mapped to data x = f(z) by a monotone
//! f, so that
//!
//! ```text
//! p_x(x) = p_z(f⁻¹(x)) |dz/dx| = p_z(z) / f'(z),      z = f⁻¹(x)
//! ```
//!
//! Here f is a monotone cubic spline through knots (z_k, x_k) at fixed z_k: cubic Hermite pieces whose slopes at
//! the knots are the harmonic means of the neighbouring secants (Fritsch and Butland 1984), which keeps every piece
//! strictly increasing when the x_k increase, with f' continuous. Beyond the end knots f goes on as a straight line
//! with the end slope, so p_x has Gaussian tails. Because f is invertible and smooth, p_x integrates to one
//! whatever the knots; the tests check it by quadrature, with the inverse, the derivative and a fit by maximum
//! likelihood ([`LineFit`]) to a known two-component mixture.

use crate::models::stats::{normal_cdf, normal_pdf};

/// The z of the first and last knot: f is a spline on [-Z_END, Z_END] and a line beyond.
pub const Z_END: f64 = 3.0;
/// Knots of the lecture's f (and of a fit).
pub const KNOTS: usize = 21;
/// The least gap between successive x knots: f' stays at least about a fifteenth of it over the knots' spacing in z,
/// so p_x stays below about 6 (a standardised column's density is well under that).
pub const MIN_GAP: f64 = 0.02;

/// Why knots cannot make a monotone spline.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SplineError {
    /// Fewer than two knots.
    #[error("a spline needs two knots or more, got {0}")]
    TooFew(usize),
    /// z and x of different lengths.
    #[error("{z} knot positions z but {x} values x")]
    Lengths {
        /// How many z.
        z: usize,
        /// How many x.
        x: usize,
    },
    /// A knot that does not increase on the last one (or is not a number).
    #[error("knot {k}: z and x must be numbers that both increase on the knot before (by at least {MIN_GAP} in x)")]
    NotIncreasing {
        /// The knot, from 0.
        k: usize,
    },
}

/// A monotone increasing f: z -> x through the knots `(z[k], x[k])`, with its slopes `d[k]` at the knots.
#[derive(Clone, Debug, PartialEq)]
pub struct MonotoneSpline {
    z: Vec<f64>,
    x: Vec<f64>,
    d: Vec<f64>,
}

/// `n` evenly spaced knots' z over [-Z_END, Z_END].
#[must_use]
pub fn knot_positions(n: usize) -> Vec<f64> {
    let n = n.max(2);
    (0..n).map(|k| -Z_END + 2.0 * Z_END * k as f64 / (n - 1) as f64).collect()
}

/// The lecture's target in the picture: an equal mixture of N(-1.5, 0.5²) and N(1.5, 0.5²).
pub const LECTURE_MIXTURE: [(f64, f64, f64); 2] = [(0.5, -1.5, 0.5), (0.5, 1.5, 0.5)];

/// The density of a mixture of normals `(weight, mean, sd)`.
#[must_use]
pub fn mixture_pdf(mixture: &[(f64, f64, f64)], x: f64) -> f64 {
    mixture.iter().map(|&(w, m, s)| w * normal_pdf(x, m, s)).sum()
}

/// The distribution function of a mixture of normals.
fn mixture_cdf(mixture: &[(f64, f64, f64)], x: f64) -> f64 {
    mixture.iter().map(|&(w, m, s)| w * normal_cdf((x - m) / s)).sum()
}

/// The mixture's quantile of probability `p` in (0, 1), by bisection.
fn mixture_quantile(mixture: &[(f64, f64, f64)], p: f64) -> f64 {
    let (mut lo, mut hi) = (-50.0, 50.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mixture_cdf(mixture, mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

impl MonotoneSpline {
    /// The spline through `(z[k], x[k])`; both must increase strictly (x by [`MIN_GAP`] at least).
    ///
    /// # Errors
    /// [`SplineError`] when there are fewer than two knots, the lengths differ, or a knot does not increase.
    pub fn new(z: Vec<f64>, x: Vec<f64>) -> Result<Self, SplineError> {
        if z.len() != x.len() {
            return Err(SplineError::Lengths { z: z.len(), x: x.len() });
        }
        if z.len() < 2 {
            return Err(SplineError::TooFew(z.len()));
        }
        if let Some(k) = (0..z.len()).find(|&k| {
            !z[k].is_finite()
                || !x[k].is_finite()
                || (k > 0 && (z[k] <= z[k - 1] || x[k] - x[k - 1] < MIN_GAP * (1.0 - 1e-9)))
        }) {
            return Err(SplineError::NotIncreasing { k });
        }
        let d = slopes(&z, &x);
        Ok(Self { z, x, d })
    }

    /// f = the identity: p_x is N(0, 1).
    #[must_use]
    pub fn identity() -> Self {
        let z = knot_positions(KNOTS);
        Self::new(z.clone(), z).unwrap_or_else(|_| unreachable!("evenly spaced knots increase"))
    }

    /// The lecture's picture: f carries N(0, 1) to (nearly) the two-bump [`LECTURE_MIXTURE`], each knot's x being
    /// the mixture's quantile of Φ(z_k): the monotone map that does it exactly, drawn through the knots.
    #[must_use]
    pub fn lecture() -> Self {
        let z = knot_positions(KNOTS);
        let x = z.iter().map(|&z| mixture_quantile(&LECTURE_MIXTURE, normal_cdf(z))).collect();
        Self::new(z, x).unwrap_or_else(|_| unreachable!("a distribution function's quantiles increase"))
    }

    /// The knots' z.
    #[must_use]
    pub fn knot_z(&self) -> &[f64] {
        &self.z
    }

    /// The knots' x.
    #[must_use]
    pub fn knot_x(&self) -> &[f64] {
        &self.x
    }

    /// Moves knot `k` to `x`, kept [`MIN_GAP`] from its neighbours so f stays increasing; returns where it went.
    pub fn set_knot_x(&mut self, k: usize, x: f64) -> f64 {
        let Some(&old) = self.x.get(k) else { return f64::NAN };
        let lo = if k > 0 { self.x[k - 1] + MIN_GAP } else { f64::NEG_INFINITY };
        let hi = self.x.get(k + 1).map_or(f64::INFINITY, |&next| next - MIN_GAP);
        let x = if x.is_finite() { x.clamp(lo, hi) } else { old };
        self.x[k] = x;
        self.d = slopes(&self.z, &self.x);
        x
    }

    /// x = f(z) and the slope f'(z) = dx/dz.
    #[must_use]
    pub fn eval(&self, z: f64) -> (f64, f64) {
        let last = self.z.len() - 1;
        if z <= self.z[0] {
            return (self.x[0] + self.d[0] * (z - self.z[0]), self.d[0]);
        }
        if z >= self.z[last] {
            return (self.x[last] + self.d[last] * (z - self.z[last]), self.d[last]);
        }
        let b = self.z.partition_point(|&zk| zk <= z).clamp(1, last) - 1;
        self.piece(b, (z - self.z[b]) / (self.z[b + 1] - self.z[b]))
    }

    /// Piece `b` at `t` in [0, 1] of its interval: x and dx/dz.
    fn piece(&self, b: usize, t: f64) -> (f64, f64) {
        let h = self.z[b + 1] - self.z[b];
        let (x0, x1, d0, d1) = (self.x[b], self.x[b + 1], self.d[b] * h, self.d[b + 1] * h);
        let (t2, t3) = (t * t, t * t * t);
        let x =
            (2.0 * t3 - 3.0 * t2 + 1.0) * x0 + (t3 - 2.0 * t2 + t) * d0 + (3.0 * t2 - 2.0 * t3) * x1 + (t3 - t2) * d1;
        let dx = (6.0 * t2 - 6.0 * t) * x0
            + (3.0 * t2 - 4.0 * t + 1.0) * d0
            + (6.0 * t - 6.0 * t2) * x1
            + (3.0 * t2 - 2.0 * t) * d1;
        (x, dx / h)
    }

    /// z = f⁻¹(x): a line's inverse in the tails, Newton's method kept inside its piece by bisection between them.
    #[must_use]
    pub fn inverse(&self, x: f64) -> f64 {
        let last = self.x.len() - 1;
        if x <= self.x[0] {
            return self.z[0] + (x - self.x[0]) / self.d[0];
        }
        if x >= self.x[last] {
            return self.z[last] + (x - self.x[last]) / self.d[last];
        }
        let b = self.x.partition_point(|&xk| xk <= x).clamp(1, last) - 1;
        let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
        let mut t = (x - self.x[b]) / (self.x[b + 1] - self.x[b]);
        let h = self.z[b + 1] - self.z[b];
        for _ in 0..100 {
            let (fx, slope) = self.piece(b, t);
            let r = fx - x;
            if r == 0.0 {
                break;
            }
            if r < 0.0 {
                lo = t;
            } else {
                hi = t;
            }
            let newton = t - r / (slope * h);
            let next = if newton > lo && newton < hi { newton } else { 0.5 * (lo + hi) };
            if (next - t).abs() <= 1e-15 {
                t = next;
                break;
            }
            t = next;
        }
        self.z[b] + t * h
    }

    /// log p_x(x) = log p_z(z) - log f'(z), z = f⁻¹(x).
    #[must_use]
    pub fn log_px(&self, x: f64) -> f64 {
        let z = self.inverse(x);
        let (_, slope) = self.eval(z);
        -0.5 * z * z - 0.5 * (2.0 * std::f64::consts::PI).ln() - slope.ln()
    }

    /// p_x(x).
    #[must_use]
    pub fn px(&self, x: f64) -> f64 {
        self.log_px(x).exp()
    }

    /// The mean of -log p_x over `data`: the negative log-likelihood per point, in nats.
    #[must_use]
    pub fn nll(&self, data: &[f64]) -> f64 {
        -data.iter().map(|&x| self.log_px(x)).sum::<f64>() / data.len().max(1) as f64
    }

    /// p_x over [a, b]: the integral the picture shows. [a, b] is cut at the knots inside it, and each cut is
    /// integrated by tanh-sinh quadrature, whose nodes crowd towards the cut's ends: where a steep piece meets a flat
    /// one, f' is small at the knot and p_x peaks sharply there, which evenly spaced nodes would miss.
    #[must_use]
    pub fn integral(&self, a: f64, b: f64) -> f64 {
        let mut cuts = vec![a];
        cuts.extend(self.x.iter().copied().filter(|&x| x > a && x < b));
        cuts.push(b);
        cuts.windows(2).map(|c| self.tanh_sinh(c[0], c[1])).sum()
    }

    /// p_x over [a, b] by tanh-sinh quadrature: x = m + r tanh(π/2 sinh t), the trapezoidal rule in t with step
    /// 1/32 over |t| <= 3.2 (the weights beyond are below 1e-40 of the largest).
    fn tanh_sinh(&self, a: f64, b: f64) -> f64 {
        const STEP: f64 = 1.0 / 32.0;
        const HALF_NODES: i32 = 102;
        let (m, r) = (0.5 * (a + b), 0.5 * (b - a));
        let half_pi = std::f64::consts::FRAC_PI_2;
        let sum: f64 = (-HALF_NODES..=HALF_NODES)
            .map(|i| {
                let t = f64::from(i) * STEP;
                let inner = half_pi * t.sinh();
                let u = inner.tanh();
                let weight = half_pi * t.cosh() / inner.cosh().powi(2);
                weight * self.px(m + r * u)
            })
            .sum();
        r * STEP * sum
    }
}

/// The slopes at the knots: the harmonic mean of the two secants inside, the secant at the ends. Each is at most
/// twice the smaller secant beside it, so every Hermite piece is strictly increasing (Fritsch and Carlson's
/// condition holds with room).
fn slopes(z: &[f64], x: &[f64]) -> Vec<f64> {
    let secants: Vec<f64> = z.windows(2).zip(x.windows(2)).map(|(z, x)| (x[1] - x[0]) / (z[1] - z[0])).collect();
    let n = z.len();
    (0..n)
        .map(|k| match (k.checked_sub(1).and_then(|j| secants.get(j)), secants.get(k)) {
            (Some(&a), Some(&b)) => 2.0 * a * b / (a + b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => 1.0,
        })
        .collect()
}

/// Fitting f to a column by maximum likelihood: full-batch Adam on the knots' x, each as the last plus the exp of
/// a free number (so they always increase), with the gradient by central differences in f64: there are only
/// [`KNOTS`] numbers, and each difference is exact to about 1e-9 of the gradient.
#[derive(Clone, Debug)]
pub struct LineFit {
    z: Vec<f64>,
    theta: Vec<f64>,
    m: Vec<f64>,
    v: Vec<f64>,
    steps: u64,
    learning_rate: f64,
}

/// Adam's moment decay rates and epsilon.
const ADAM: (f64, f64, f64) = (0.9, 0.999, 1e-8);

impl LineFit {
    /// A fit starting at `start` with Adam's `learning_rate`.
    #[must_use]
    pub fn new(start: &MonotoneSpline, learning_rate: f64) -> Self {
        let theta: Vec<f64> = (0..start.x.len())
            .map(|k| if k == 0 { start.x[0] } else { (start.x[k] - start.x[k - 1] - MIN_GAP).max(1e-12).ln() })
            .collect();
        let n = theta.len();
        Self { z: start.z.clone(), theta, m: vec![0.0; n], v: vec![0.0; n], steps: 0, learning_rate }
    }

    /// The spline of the free numbers `theta`.
    fn spline_of(&self, theta: &[f64]) -> MonotoneSpline {
        let mut x = Vec::with_capacity(theta.len());
        for (k, &t) in theta.iter().enumerate() {
            x.push(if k == 0 { t } else { x[k - 1] + MIN_GAP + t.exp() });
        }
        let d = slopes(&self.z, &x);
        MonotoneSpline { z: self.z.clone(), x, d }
    }

    /// The spline now.
    #[must_use]
    pub fn spline(&self) -> MonotoneSpline {
        self.spline_of(&self.theta)
    }

    /// Steps taken.
    #[must_use]
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One Adam step on the mean negative log-likelihood of `data`; returns the NLL before the step, or `None`
    /// (and takes no step) when it or its gradient is not finite.
    pub fn step(&mut self, data: &[f64]) -> Option<f64> {
        let nll = self.spline_of(&self.theta).nll(data);
        let mut grad = vec![0.0; self.theta.len()];
        let mut theta = self.theta.clone();
        for (k, g) in grad.iter_mut().enumerate() {
            let h = 1e-5 * self.theta[k].abs().max(1.0);
            theta[k] = self.theta[k] + h;
            let up = self.spline_of(&theta).nll(data);
            theta[k] = self.theta[k] - h;
            let down = self.spline_of(&theta).nll(data);
            theta[k] = self.theta[k];
            *g = (up - down) / (2.0 * h);
        }
        if !nll.is_finite() || grad.iter().any(|g| !g.is_finite()) {
            return None;
        }
        self.steps += 1;
        let (b1, b2, eps) = ADAM;
        let t = i32::try_from(self.steps).unwrap_or(i32::MAX);
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        for (((theta, m), v), g) in self.theta.iter_mut().zip(&mut self.m).zip(&mut self.v).zip(&grad) {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *theta -= self.learning_rate * (*m / c1) / ((*v / c2).sqrt() + eps);
        }
        Some(nll)
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    use super::*;

    /// Random increasing knots: gaps from MIN_GAP to 3, so slopes from steep to nearly flat side by side.
    fn random_spline(rng: &mut ChaCha8Rng) -> MonotoneSpline {
        let z = knot_positions(KNOTS);
        let mut x = vec![rng.random_range(-3.0..3.0)];
        for _ in 1..KNOTS {
            let gap = 10f64.powf(rng.random_range(MIN_GAP.log10()..0.5));
            x.push(x.last().copied().unwrap_or(0.0) + gap);
        }
        MonotoneSpline::new(z, x).unwrap()
    }

    fn mixture_samples(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let e: f64 = StandardNormal.sample(&mut rng);
                let (_, m, s) = LECTURE_MIXTURE[usize::from(rng.random_bool(0.5))];
                m + s * e
            })
            .collect()
    }

    #[test]
    fn knots_that_do_not_increase_are_refused() {
        let z = knot_positions(3);
        assert_eq!(MonotoneSpline::new(z.clone(), vec![0.0, 1.0, 1.0]), Err(SplineError::NotIncreasing { k: 2 }));
        assert_eq!(MonotoneSpline::new(z.clone(), vec![0.0, 1.0]), Err(SplineError::Lengths { z: 3, x: 2 }));
        assert_eq!(MonotoneSpline::new(vec![0.0], vec![0.0]), Err(SplineError::TooFew(1)));
        assert!(MonotoneSpline::new(z, vec![0.0, f64::NAN, 2.0]).is_err());
    }

    #[test]
    fn the_spline_goes_through_its_knots_and_its_slope_is_the_derivative() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..50 {
            let f = random_spline(&mut rng);
            for (&z, &x) in f.knot_z().iter().zip(f.knot_x()) {
                assert!((f.eval(z).0 - x).abs() < 1e-12);
            }
            for _ in 0..50 {
                let z: f64 = rng.random_range(-5.0..5.0);
                let h = 1e-6;
                let numeric = (f.eval(z + h).0 - f.eval(z - h).0) / (2.0 * h);
                let (_, slope) = f.eval(z);
                assert!((numeric - slope).abs() < 1e-6 * slope.max(1.0), "z = {z}: {numeric} against {slope}");
            }
        }
    }

    #[test]
    fn every_spline_of_increasing_knots_is_strictly_increasing() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for _ in 0..200 {
            let f = random_spline(&mut rng);
            let mut last = f.eval(-4.0).0;
            for i in 1..=4000 {
                let z = -4.0 + 8.0 * f64::from(i) / 4000.0;
                let (x, slope) = f.eval(z);
                assert!(slope > 0.0 && x > last, "not increasing at z = {z}");
                last = x;
            }
        }
    }

    #[test]
    fn the_inverse_takes_x_back_to_z_in_the_pieces_and_the_tails() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..100 {
            let f = random_spline(&mut rng);
            for _ in 0..100 {
                let z: f64 = rng.random_range(-6.0..6.0);
                let back = f.inverse(f.eval(z).0);
                assert!((back - z).abs() < 1e-9, "z = {z} came back as {back}");
            }
        }
    }

    #[test]
    fn p_x_integrates_to_one_whatever_the_knots() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut splines = vec![MonotoneSpline::identity(), MonotoneSpline::lecture()];
        splines.extend((0..20).map(|_| random_spline(&mut rng)));
        for f in splines {
            // From z = -9 to 9 in x: the mass outside is below 1e-18.
            let (a, b) = (f.eval(-9.0).0, f.eval(9.0).0);
            let mass = f.integral(a, b);
            assert!((mass - 1.0).abs() < 1e-9, "mass {mass}");
        }
    }

    #[test]
    fn an_interval_dz_carries_its_probability_to_dx() {
        let f = MonotoneSpline::lecture();
        for z in [-2.5, -1.0, -0.2, 0.0, 0.7, 2.9] {
            let dz = 0.3;
            let p_z = normal_cdf(z + dz) - normal_cdf(z);
            let p_x = f.integral(f.eval(z).0, f.eval(z + dz).0);
            assert!((p_z - p_x).abs() < 1e-10, "z = {z}: {p_z} against {p_x}");
        }
    }

    #[test]
    fn the_lecture_spline_carries_the_gaussian_to_two_bumps() {
        let f = MonotoneSpline::lecture();
        // The identity is N(0, 1) itself.
        let id = MonotoneSpline::identity();
        for x in [-2.0, 0.0, 1.3] {
            assert!((id.px(x) - normal_pdf(x, 0.0, 1.0)).abs() < 1e-12);
        }
        // Two bumps at ±1.5, as high as the mixture's, with a dip between them; outside the gap it is the mixture
        // it was drawn from (the gap, where the mixture is nearly nothing, falls between two knots).
        assert!(f.px(-1.5) > 3.0 * f.px(0.0) && f.px(1.5) > 3.0 * f.px(0.0));
        for x in [-2.5, -2.0, -1.75, -1.5, 1.5, 1.75, 2.0, 2.5] {
            let (model, truth) = (f.px(x), mixture_pdf(&LECTURE_MIXTURE, x));
            assert!((model - truth).abs() < 0.02 * truth, "x = {x}: {model} against {truth}");
        }
    }

    #[test]
    fn set_knot_keeps_the_spline_increasing() {
        let mut f = MonotoneSpline::identity();
        let to = f.set_knot_x(5, 100.0);
        assert!((to - (f.knot_x()[6] - MIN_GAP)).abs() < 1e-12);
        assert!(MonotoneSpline::new(f.knot_z().to_vec(), f.knot_x().to_vec()).is_ok());
        assert!(f.set_knot_x(KNOTS, 0.0).is_nan());
    }

    #[test]
    fn fitting_samples_of_the_mixture_learns_its_density() {
        let train = mixture_samples(3000, 10);
        let test = mixture_samples(3000, 11);
        let mut fit = LineFit::new(&MonotoneSpline::identity(), 0.05);
        let first = fit.step(&train).unwrap();
        for _ in 0..600 {
            fit.step(&train).unwrap();
        }
        let f = fit.spline();
        let truth = -test.iter().map(|&x| mixture_pdf(&LECTURE_MIXTURE, x).ln()).sum::<f64>() / test.len() as f64;
        let model = f.nll(&test);
        // The mixture's own NLL is the floor; 0.05 nats above it is a KL of at most that (up to sampling error).
        assert!(model < truth + 0.05, "held-out NLL {model} against the truth's {truth}");
        assert!(first > model + 0.2, "it learned: {first} -> {model}");
        assert_eq!(fit.steps(), 601);
    }
}
