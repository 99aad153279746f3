//! What a dataset is and where it comes from, as plain names and seeds: [`DataSource`] (a [`crate::data::Table`]'s
//! origin), [`BuiltinFile`] (the files embedded from `datasets/`) and [`SynthSpec`] (a seeded 2-D toy density, or a
//! seeded 1-D regression for the BNN lab).
//! Making their tables is [`crate::data::builtin`]'s and [`crate::data::synth`]'s; this file uses neither, so
//! the table can name its source without a loop.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::Lab;

/// Where a [`Table`] came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DataSource {
    /// One of the files embedded in the binary (see `datasets/README.md`).
    Builtin(BuiltinFile),
    /// A set generated from a seed (a 2-D density or a 1-D regression).
    Generated(SynthSpec),
    /// A CSV file the user loaded.
    File(PathBuf),
}

/// One of the embedded files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BuiltinFile {
    /// `winequality-red.csv`.
    WineRed,
    /// `mnist_5k.csv.gz`.
    Mnist5k,
    /// `digits.csv.gz`.
    Digits8x8,
}

impl BuiltinFile {
    /// All embedded files, in menu order.
    pub const ALL: [Self; 3] = [Self::WineRed, Self::Mnist5k, Self::Digits8x8];

    /// File name in `datasets/`.
    #[must_use]
    pub fn file_name(self) -> &'static str {
        match self {
            Self::WineRed => "winequality-red.csv",
            Self::Mnist5k => "mnist_5k.csv.gz",
            Self::Digits8x8 => "digits.csv.gz",
        }
    }

    /// Name shown to the user.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::WineRed => "Wine quality, red (UCI)",
            Self::Mnist5k => "MNIST, 5,000 digits",
            Self::Digits8x8 => "Digits 8x8 (UCI optdigits)",
        }
    }

    /// Short name for the command line (`--data wine-red`).
    #[must_use]
    pub fn cli_name(self) -> &'static str {
        match self {
            Self::WineRed => "wine-red",
            Self::Mnist5k => "mnist",
            Self::Digits8x8 => "digits",
        }
    }

    /// Parses a command-line name.
    #[must_use]
    pub fn from_cli(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.cli_name().eq_ignore_ascii_case(name))
    }
}

/// Which generated set: a 2-D toy density (columns `x`, `y`, `component`; the flow's and the VAE's) or a 1-D
/// regression (columns `x`, `y`; the BNN's, see [`SynthKind::is_regression`]).
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
    /// 1-D regression `y = x³ + N(0, noise²)`, `x` uniform on two clusters `[-1, -0.3]` and `[0.3, 1]` with nothing
    /// in between: the "in-between uncertainty" case of Foong et al., 2019.
    CubicGap,
    /// 1-D regression `y = sin(2x) + N(0, noise²)`, `x` uniform on `[-3, -1]` and `[1, 3]`: the sine goes through a
    /// whole swing in the gap, which the data cannot tell.
    SineGap,
    /// 1-D regression `y = sin(x) + N(0, (noise · |x|)²)`, `x` uniform on `[-3, 3]`: the noise's standard deviation
    /// grows with `|x|` (heteroscedastic).
    Heteroscedastic,
}

impl SynthKind {
    /// All kinds, in menu order: the 2-D densities, then the 1-D regressions.
    pub const ALL: [Self; 9] = [
        Self::Moons,
        Self::Circles,
        Self::EightGaussians,
        Self::Checkerboard,
        Self::Spirals,
        Self::Pinwheel,
        Self::CubicGap,
        Self::SineGap,
        Self::Heteroscedastic,
    ];

    /// The 2-D densities, in menu order (the flow and the VAE labs offer these).
    pub const DENSITIES: [Self; 6] =
        [Self::Moons, Self::Circles, Self::EightGaussians, Self::Checkerboard, Self::Spirals, Self::Pinwheel];

    /// The 1-D regressions, in menu order (the BNN lab offers these).
    pub const REGRESSIONS: [Self; 3] = [Self::CubicGap, Self::SineGap, Self::Heteroscedastic];

    /// The kinds `lab` offers among its generated sets: the BNN a regression, the others a 2-D density.
    #[must_use]
    pub fn offered_in(lab: Lab) -> &'static [Self] {
        match lab {
            Lab::Bnn => &Self::REGRESSIONS,
            Lab::Flow | Lab::Vae => &Self::DENSITIES,
        }
    }

    /// Whether this is a 1-D regression (columns `x`, `y`) rather than a 2-D density.
    #[must_use]
    pub fn is_regression(self) -> bool {
        Self::REGRESSIONS.contains(&self)
    }

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
            Self::CubicGap => "Cubic with a gap",
            Self::SineGap => "Sine with a gap",
            Self::Heteroscedastic => "Sine, noise growing with |x|",
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
            Self::CubicGap => "cubic-gap",
            Self::SineGap => "sine-gap",
            Self::Heteroscedastic => "heteroscedastic",
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
            Self::EightGaussians | Self::Spirals | Self::CubicGap | Self::SineGap => 0.1,
            Self::Checkerboard => 0.0,
            Self::Pinwheel => 0.3,
            Self::Heteroscedastic => 0.15,
        }
    }

    /// The number of points a user sees first: the Real NVP example's 3,000 for a density, 200 for a
    /// regression (few enough that the posterior stays visibly uncertain).
    #[must_use]
    pub fn default_points(self) -> usize {
        if self.is_regression() { 200 } else { 3000 }
    }

    /// Number of components (the label's range); 1 for a regression, which has no component column.
    #[must_use]
    pub fn n_components(self) -> usize {
        match self {
            Self::Moons | Self::Circles | Self::Spirals => 2,
            Self::EightGaussians | Self::Checkerboard => 8,
            Self::Pinwheel => PINWHEEL_ARMS,
            Self::CubicGap | Self::SineGap | Self::Heteroscedastic => 1,
        }
    }

    /// A regression's inputs: the intervals `x` is drawn from, uniformly, half the points in each when there are
    /// two (the gap lies between them). Empty for a density.
    #[must_use]
    pub fn input_clusters(self) -> &'static [(f64, f64)] {
        match self {
            Self::CubicGap => &[(-1.0, -0.3), (0.3, 1.0)],
            Self::SineGap => &[(-3.0, -1.0), (1.0, 3.0)],
            Self::Heteroscedastic => &[(-3.0, 3.0)],
            _ => &[],
        }
    }
}

/// Arms of the pinwheel.
pub(crate) const PINWHEEL_ARMS: usize = 5;

/// A generated set: kind, size, noise and seed fix it completely.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SynthSpec {
    /// Which density.
    pub kind: SynthKind,
    /// Number of points.
    pub n_points: usize,
    /// Standard deviation of the Gaussian noise (for pinwheel: of the tangential spread; for the heteroscedastic
    /// regression: per unit of `|x|`).
    pub noise: f64,
    /// Seed of the generator.
    pub seed: u64,
}

impl SynthSpec {
    /// The default for a kind: its default size ([`SynthKind::default_points`]: 3,000 points for a density, as the
    /// Real NVP example), its default noise, seed 0.
    #[must_use]
    pub fn default_for(kind: SynthKind) -> Self {
        Self { kind, n_points: kind.default_points(), noise: kind.default_noise(), seed: 0 }
    }

    /// Largest number of points the UI and CLI allow.
    pub const MAX_POINTS: usize = 1_000_000;

    /// Name shown to the user.
    #[must_use]
    pub fn describe(&self) -> String {
        format!("{} ({} points, noise {}, seed {})", self.kind.label(), self.n_points, self.noise, self.seed)
    }
}
