//! What a dataset is and where it comes from, as plain names and seeds: [`DataSource`] (a [`crate::data::Table`]'s
//! origin), [`BuiltinFile`] (the files embedded from `datasets/`) and [`SynthSpec`] (a seeded 2-D toy density).
//! Making their tables is [`crate::data::builtin`]'s and [`crate::data::synth`]'s; this file uses neither, so
//! the table can name its source without a loop.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a [`Table`] came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DataSource {
    /// One of the files embedded in the binary (see `datasets/README.md`).
    Builtin(BuiltinFile),
    /// A 2-D set generated from a seed.
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

/// Arms of the pinwheel.
pub(crate) const PINWHEEL_ARMS: usize = 5;

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
}
