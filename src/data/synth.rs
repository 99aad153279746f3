//! Seeded 2-D toy densities for the flow lab: two moons, concentric circles, eight Gaussians,
//! checkerboard, two spirals and pinwheel. Each point carries the index of the component it came from.

use std::f64::consts::PI;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::data::table::{DataSource, Table};

/// Which toy density.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SynthKind {
    /// Two interleaving half circles (the course's flow data).
    Moons,
    /// Two concentric circles, radii 1 and 0.5.
    Circles,
    /// Eight Gaussians on a circle of radius 2.
    EightGaussians,
    /// Uniform on the dark squares of a 4 x 4 board over [-2, 2]^2.
    Checkerboard,
    /// Two interleaved Archimedean spirals.
    Spirals,
    /// Five curved arms.
    Pinwheel,
}

impl SynthKind {
    /// All kinds, in menu order.
    pub const ALL: [Self; 6] =
        [Self::Moons, Self::Circles, Self::EightGaussians, Self::Checkerboard, Self::Spirals, Self::Pinwheel];

    /// Name shown to the user.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Moons => "Two moons",
            Self::Circles => "Concentric circles",
            Self::EightGaussians => "Eight Gaussians",
            Self::Checkerboard => "Checkerboard",
            Self::Spirals => "Two spirals",
            Self::Pinwheel => "Pinwheel",
        }
    }

    /// Short name for the command line (`--data moons`).
    #[must_use]
    pub fn cli_name(self) -> &'static str {
        match self {
            Self::Moons => "moons",
            Self::Circles => "circles",
            Self::EightGaussians => "8gaussians",
            Self::Checkerboard => "checkerboard",
            Self::Spirals => "spirals",
            Self::Pinwheel => "pinwheel",
        }
    }

    /// Parses a command-line name.
    #[must_use]
    pub fn from_cli(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.cli_name().eq_ignore_ascii_case(name))
    }

    /// The noise a user sees first.
    #[must_use]
    pub fn default_noise(self) -> f64 {
        match self {
            Self::Moons | Self::Circles => 0.05,
            Self::EightGaussians | Self::Spirals => 0.1,
            Self::Checkerboard => 0.0,
            Self::Pinwheel => 0.3,
        }
    }

    /// Number of components (the label's range).
    #[must_use]
    pub fn n_components(self) -> usize {
        match self {
            Self::Moons | Self::Circles | Self::Spirals => 2,
            Self::EightGaussians | Self::Checkerboard => 8,
            Self::Pinwheel => PINWHEEL_ARMS,
        }
    }
}

const PINWHEEL_ARMS: usize = 5;

/// A generated set: kind, size, noise and seed fix it completely.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SynthSpec {
    /// Which density.
    pub kind: SynthKind,
    /// Number of points.
    pub n_points: usize,
    /// Standard deviation of the Gaussian noise (for pinwheel: of the tangential spread).
    pub noise: f64,
    /// Seed of the generator.
    pub seed: u64,
}

impl SynthSpec {
    /// The course's default for a kind: 3,000 points (the Real NVP example), its default noise, seed 0.
    #[must_use]
    pub fn default_for(kind: SynthKind) -> Self {
        Self { kind, n_points: 3000, noise: kind.default_noise(), seed: 0 }
    }

    /// Largest number of points the UI and CLI allow.
    pub const MAX_POINTS: usize = 1_000_000;

    /// Name shown to the user.
    #[must_use]
    pub fn describe(&self) -> String {
        format!("{} ({} points, noise {}, seed {})", self.kind.label(), self.n_points, self.noise, self.seed)
    }

    /// Generates the points: columns `x`, `y`, `component`.
    #[must_use]
    pub fn generate(&self) -> Table {
        let n = self.n_points.min(Self::MAX_POINTS);
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
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
        }
    }
}
