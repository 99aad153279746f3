//! A lab's dataset: the table, its column roles and split, how it was loaded, and its image grid once drawn; and the
//! decimals the labs write each feature's values with.

use std::sync::Arc;

use crate::data::prepare::{DataSpec, Prepared, complete_rows};
use crate::data::{LoadRequest, Table};
use crate::models::stats::{mean_and_sd, recorded_step};

/// A dataset in use by a lab.
pub struct LabData {
    /// The values.
    pub table: Arc<Table>,
    /// Column roles, split and standardisation.
    pub spec: DataSpec,
    /// How to load it again.
    pub request: LoadRequest,
    /// Image grid of the first rows, made on first draw.
    pub(crate) thumbnails: Option<egui::TextureHandle>,
}

impl LabData {
    /// A lab's data: `table` without the rows `spec` cannot use ([`complete_rows`]: a missing value in a column it
    /// uses), so that what the lab shows, counts, trains on and records are the same rows.
    pub(crate) fn new(table: Table, spec: DataSpec, request: LoadRequest) -> Self {
        Self { table: Arc::new(complete_rows(table, &spec)), spec, request, thumbnails: None }
    }
}

/// The decimals each feature's values are written with: those of the precision its training values were recorded to
/// ([`recorded_step`]: none for the digits' whole pixel values, two for the wine's 0.27), so that every value of a
/// feature reads alike; or two significant digits of its spread where it has no such precision.
pub(crate) fn feature_decimals(prepared: &Prepared) -> Vec<usize> {
    let d = prepared.n_features();
    let decimals = |step: f64| -> usize {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // clamped to 0..=6
        let n = (-step.log10().floor()).clamp(0.0, 6.0) as usize;
        n
    };
    (0..d)
        .map(|j| {
            let (m, s) = (prepared.feature_mean[j], prepared.feature_scale[j]);
            let column: Vec<f32> = prepared.x_train.chunks_exact(d).map(|r| r[j] * s + m).collect();
            let (_, sd) = mean_and_sd(&column);
            if sd <= 0.0 {
                // One value throughout: whole or not.
                return if column.first().is_none_or(|v| v.fract().abs() < 1e-6) { 0 } else { 2 };
            }
            // All but one value in a hundred, so that each is written whole (the red wine's 0.635 among its 0.70s).
            decimals(recorded_step(&column, sd / 1000.0, 0.99).unwrap_or(sd / 10.0))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::feature_decimals;
    use crate::data::BuiltinFile;
    use crate::data::prepare::{DataSpec, prepare};

    #[test]
    fn each_feature_is_written_to_the_precision_it_was_recorded_to() {
        // The digits: whole pixel values, and a pixel that is 0 in every image.
        let digits = BuiltinFile::Digits8x8.load().expect("the digits");
        let prepared = prepare(&digits, &DataSpec::default_for(&digits)).expect("they prepare");
        let decimals = feature_decimals(&prepared);
        assert_eq!(decimals, vec![0; 64], "whole values");
        // The red wine: fixed acidity to one decimal (7.4), sulphates to two (0.56), volatile acidity (12 % of it
        // written 0.635 and the like) and chlorides to three (0.076), density to five (0.99780), the sulfur dioxides
        // whole.
        let wine = BuiltinFile::WineRed.load().expect("the wine");
        let prepared = prepare(&wine, &DataSpec::default_for(&wine)).expect("it prepares");
        let decimals = feature_decimals(&prepared);
        let of = |name: &str| decimals[prepared.feature_names.iter().position(|n| n == name).expect(name)];
        let expected = [
            ("fixed acidity", 1),
            ("volatile acidity", 3),
            ("sulphates", 2),
            ("chlorides", 3),
            ("density", 5),
            ("total sulfur dioxide", 0),
        ];
        for (name, n) in expected {
            assert_eq!(of(name), n, "{name}");
        }
    }
}
