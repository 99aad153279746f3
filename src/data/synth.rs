//! Seeded generated sets: the 2-D toy densities of the flow lab (two moons, concentric circles, eight Gaussians,
//! checkerboard, two spirals and pinwheel; each point carries the index of the component it came from), and the 1-D
//! regressions of the BNN lab (a cubic and a sine with a gap in their inputs, a sine with heteroscedastic noise).

use std::f64::consts::PI;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, StandardNormal};

use crate::data::source::{DataSource, PINWHEEL_ARMS, SynthKind, SynthSpec};
use crate::data::table::Table;

impl SynthSpec {
    /// Generates the points: columns `x`, `y`, `component` for a density; `x`, `y` for a regression.
    #[must_use]
    pub fn generate(&self) -> Table {
        let n = self.n_points.min(Self::MAX_POINTS);
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        if self.kind.is_regression() {
            return self.generate_regression(n, &mut rng);
        }
        let mut values = Vec::with_capacity(n * 3);
        for i in 0..n {
            let (x, y, c) = self.point(i, n, &mut rng);
            let (ex, ey): (f64, f64) = if self.kind == SynthKind::Pinwheel {
                (0.0, 0.0) // noise is part of the pinwheel's construction
            } else {
                (rng.sample(StandardNormal), rng.sample(StandardNormal))
            };
            values.push((x + self.noise * ex) as f32);
            values.push((y + self.noise * ey) as f32);
            values.push(c as f32);
        }
        Table::from_values(
            self.describe(),
            DataSource::Generated(*self),
            vec!["x".into(), "y".into(), "component".into()],
            values,
        )
    }

    /// `n` points of a 1-D regression: `x` uniform on the kind's input clusters (the first half of the points in the
    /// first, the rest in the second when there are two), `y = f(x) + sd(x) ε` with `ε ~ N(0, 1)`.
    fn generate_regression(&self, n: usize, rng: &mut ChaCha8Rng) -> Table {
        let clusters = self.kind.input_clusters();
        let mut values = Vec::with_capacity(n * 2);
        for i in 0..n {
            let cluster = usize::from(clusters.len() > 1 && i >= n.div_ceil(2));
            let (lo, hi) = clusters.get(cluster).copied().unwrap_or((-1.0, 1.0));
            let x = rng.random_range(lo..=hi);
            let eps: f64 = rng.sample(StandardNormal);
            let (f, sd) = match self.kind {
                SynthKind::CubicGap => (x.powi(3), self.noise),
                SynthKind::SineGap => ((2.0 * x).sin(), self.noise),
                _ => (x.sin(), self.noise * x.abs()),
            };
            values.push(x as f32);
            values.push((f + sd * eps) as f32);
        }
        Table::from_values(self.describe(), DataSource::Generated(*self), vec!["x".into(), "y".into()], values)
    }

    /// The noiseless point `i` of `n`, and its component.
    fn point(&self, i: usize, n: usize, rng: &mut ChaCha8Rng) -> (f64, f64, usize) {
        match self.kind {
            SynthKind::Moons => {
                // Outer moon (cos t, sin t); inner moon (1 - cos t, 1 - sin t - 0.5); t ~ U[0, pi].
                let t = rng.random_range(0.0..PI);
                if i < n.div_ceil(2) { (t.cos(), t.sin(), 0) } else { (1.0 - t.cos(), 1.0 - t.sin() - 0.5, 1) }
            }
            SynthKind::Circles => {
                let t = rng.random_range(0.0..2.0 * PI);
                let (r, c) = if i < n.div_ceil(2) { (1.0, 0) } else { (0.5, 1) };
                (r * t.cos(), r * t.sin(), c)
            }
            SynthKind::EightGaussians => {
                let c = rng.random_range(0..8usize);
                let a = c as f64 * PI / 4.0;
                (2.0 * a.cos(), 2.0 * a.sin(), c)
            }
            SynthKind::Checkerboard => {
                // The 8 dark cells of a 4 x 4 board on [-2, 2]^2: (col + row) even.
                let c = rng.random_range(0..8usize);
                let row = c / 2;
                let col = 2 * (c % 2) + row % 2;
                let x = -2.0 + col as f64 + rng.random_range(0.0..1.0);
                let y = -2.0 + row as f64 + rng.random_range(0.0..1.0);
                (x, y, c)
            }
            SynthKind::Spirals => {
                // r = t / (3 pi) * 2 over t in [0, 3 pi], sqrt-spaced so points are even along the arm.
                let u: f64 = rng.random_range(0.0..1.0);
                let t = u.sqrt() * 3.0 * PI;
                let r = 2.0 * t / (3.0 * PI);
                let c = i % 2;
                let sign = if c == 0 { 1.0 } else { -1.0 };
                (sign * r * t.cos(), sign * r * t.sin(), c)
            }
            SynthKind::Pinwheel => {
                // Radial N(1, 0.3) and tangential N(0, noise), rotated by 0.25 * exp(radial) per arm.
                let c = rng.random_range(0..PINWHEEL_ARMS);
                let radial: f64 = Normal::new(1.0, 0.3).map_or(1.0, |d| d.sample(rng));
                let tangential = self.noise * rng.sample::<f64, _>(StandardNormal);
                let angle = c as f64 * 2.0 * PI / PINWHEEL_ARMS as f64 + 0.25 * radial.exp();
                let (s, co) = angle.sin_cos();
                (1.5 * (co * radial - s * tangential), 1.5 * (s * radial + co * tangential), c)
            }
            // Generated by `generate_regression`.
            SynthKind::CubicGap | SynthKind::SineGap | SynthKind::Heteroscedastic => (0.0, 0.0, 0),
        }
    }
}
