//! The data files embedded in the binary, so the app runs from any folder, and reading them into a [`Table`]
//! ([`BuiltinFile::load`]; the files' names are in [`crate::data::source`]). Origins, licences and checksums
//! are in `datasets/README.md`.

use crate::data::csv::{CsvError, CsvOptions, HeaderMode, NoProgress, read_bytes};
use crate::data::source::{BuiltinFile, DataSource};
use crate::data::table::Table;

/// UCI Wine Quality, red (1,599 rows, 11 features and `quality`, `;`-separated).
pub const WINE_RED: &[u8] = include_bytes!("../../datasets/winequality-red.csv");
/// 5,000 MNIST digits (784 pixels 0..255, then the label), gzip, no header.
pub const MNIST_5K: &[u8] = include_bytes!("../../datasets/mnist_5k.csv.gz");
/// 1,797 8 x 8 digits (64 pixels 0..16, then the label), gzip, no header.
pub const DIGITS_8X8: &[u8] = include_bytes!("../../datasets/digits.csv.gz");

impl BuiltinFile {
    /// The embedded bytes.
    #[must_use]
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Self::WineRed => WINE_RED,
            Self::Mnist5k => MNIST_5K,
            Self::Digits8x8 => DIGITS_8X8,
        }
    }

    /// How to read it: the image files have no header, so their columns are named here.
    #[must_use]
    pub fn csv_options(self) -> CsvOptions {
        let pixels = |n: usize| {
            let mut names: Vec<String> = (0..n).map(|i| format!("pixel{i}")).collect();
            names.push("label".into());
            names
        };
        match self {
            Self::WineRed => CsvOptions::default(),
            Self::Mnist5k => {
                CsvOptions { header: HeaderMode::Absent, column_names: Some(pixels(784)), ..CsvOptions::default() }
            }
            Self::Digits8x8 => {
                CsvOptions { header: HeaderMode::Absent, column_names: Some(pixels(64)), ..CsvOptions::default() }
            }
        }
    }

    /// Parses the embedded file.
    pub fn load(self) -> Result<Table, CsvError> {
        let mut table = read_bytes(self.bytes(), self.file_name(), &self.csv_options(), &NoProgress)?;
        self.label().clone_into(&mut table.name);
        table.source = DataSource::Builtin(self);
        Ok(table)
    }
}
