//! The VAE lab's views of a table (rows of features that are not images, such as the wine): the feature vector
//! decoded at the cursor beside the input nearest it, the features along the path between two picked inputs, the
//! test rows against their reconstructions with each feature's error, and draws from the prior decoded into the
//! data's space beside the training rows. Values are shown in the data's units, errors in each feature's standard
//! deviation over the training rows.

use std::ops::RangeInclusive;

use egui::Color32;
use egui_plot::{AxisHints, Bar, BarChart, GridInput, GridMark, Line, MarkerShape, Plot, PlotPoints, Points};

use crate::models::stats::mean_and_sd;
use crate::models::vae::VaeView;
use crate::train::vae_view::PATH_STEPS;
use crate::ui::data_view::PALETTE;
use crate::ui::highlight::{Highlight, accent, label_figure};
use crate::ui::image_export::{record_button, save_image_button, saveable};
use crate::ui::lab_page::{column_combo, figure_height};
use crate::ui::plot_axes;
use crate::ui::vae_state::{VaeUiState, decoded_at};

/// The decoded draws' colour, as the flow's generated points.
const DECODED: Color32 = Color32::from_rgb(230, 120, 40);
/// The data's colour.
const DATA: Color32 = Color32::from_rgb(70, 130, 230);

/// The table's features as the model sees them and as the data writes them.
pub(crate) struct Features {
    pub(crate) names: Vec<String>,
    /// A model value `v` is `v * scale + mean` in the data's units.
    mean: Vec<f32>,
    scale: Vec<f32>,
    /// Each feature's mean and standard deviation over the training rows, in the model's units (0 and 1 for
    /// standardised data).
    centre: Vec<f64>,
    sd: Vec<f64>,
    /// The decimals each feature is written with, those it was recorded to
    /// ([`crate::ui::lab_data::feature_decimals`]).
    decimals: Vec<usize>,
    /// Each column of text's categories, numbered 0, 1, ...; empty for a column of numbers.
    categories: Vec<Vec<String>>,
}

impl Features {
    /// The lab's table, or `None` before data arrives or for images.
    pub(crate) fn of(vae: &VaeUiState) -> Option<Self> {
        let prepared = vae.prepared.as_deref().filter(|_| vae.image_side.is_none())?;
        let d = prepared.n_features();
        if d == 0 {
            return None;
        }
        let train = vae.inputs.get(..vae.n_train * d).unwrap_or(&[]);
        let (centre, sd) = (0..d)
            .map(|j| {
                let column: Vec<f32> = train.iter().skip(j).step_by(d).copied().collect();
                let (mean, sd) = mean_and_sd(&column);
                (mean, if sd > 0.0 { sd } else { 1.0 })
            })
            .unzip();
        Some(Self {
            names: prepared.feature_names.clone(),
            mean: prepared.feature_mean.clone(),
            scale: prepared.feature_scale.clone(),
            centre,
            sd,
            decimals: vae.decimals.clone(),
            categories: prepared.feature_categories.clone(),
        })
    }

    fn len(&self) -> usize {
        self.names.len()
    }

    /// Feature `j`'s model value in the data's units.
    fn in_units(&self, j: usize, v: f32) -> f64 {
        f64::from(v * self.scale[j] + self.mean[j])
    }

    /// Feature `j`'s model value in standard deviations from its training mean.
    fn in_sd(&self, j: usize, v: f32) -> f64 {
        (f64::from(v) - self.centre[j]) / self.sd[j]
    }

    /// Feature `j`'s value written as the data writes it, to the precision it was recorded to (the red wine's
    /// volatile acidity 0.635 and 0.700, its density 0.99680, its total sulfur dioxide 34).
    /// A column of text's value is written by its category's name, and a value between them (a reconstruction) by
    /// the nearest name and the number: "male", "male (0.73)".
    fn written(&self, j: usize, value: f64) -> String {
        if let Some(categories) = self.categories.get(j).filter(|c| !c.is_empty()) {
            #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let k = value.round().clamp(0.0, (categories.len() - 1) as f64) as usize;
            #[allow(clippy::cast_precision_loss)] // a few categories
            let exact = (value - k as f64).abs() < 0.005;
            return if exact { categories[k].clone() } else { format!("{} ({value:.2})", categories[k]) };
        }
        let decimals = self.decimals.get(j).copied().unwrap_or(2);
        format!("{value:.decimals$}")
    }
}

/// A horizontal bar chart's plot with the features named down its y axis, the first at the top (feature `j` at
/// y = -j).
fn named_rows<'a>(plot: Plot<'a>, names: &[String], ui: &egui::Ui) -> Plot<'a> {
    let font = egui::TextStyle::Body.resolve(ui.style());
    let widest = names
        .iter()
        .map(|name| ui.ctx().fonts_mut(|f| f.layout_no_wrap(name.clone(), font.clone(), Color32::WHITE).size().x))
        .fold(0.0, f32::max);
    let names = names.to_vec();
    let n = names.len();
    // Labels at full strength from rows 16 points apart (egui_plot fades them below its 30).
    plot.custom_y_axes(vec![AxisHints::new_y().label_spacing(10.0..=16.0)])
        .y_grid_spacer(move |input: GridInput| {
            let (lo, hi) = input.bounds;
            (0..n)
                .map(|j| -(j as f64))
                .filter(|y| (lo..=hi).contains(y))
                .map(|value| GridMark { value, step_size: 1.0 })
                .collect()
        })
        .y_axis_formatter(move |mark: GridMark, _: &RangeInclusive<f64>| {
            let j = (-mark.value).round();
            if (j + mark.value).abs() < 1e-6 && j >= 0.0 {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a non-negative whole number
                names.get(j as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_axis_min_width(widest + 12.0)
        .include_y(0.6)
        .include_y(-(n as f64) + 0.4)
}

/// Feature `j`'s colour in the path's lines: the data view's ten, then again lighter, then darker.
fn feature_colour(j: usize) -> Color32 {
    let colour = PALETTE[j % PALETTE.len()];
    match (j / PALETTE.len()) % 3 {
        0 => colour,
        1 => colour.lerp_to_gamma(Color32::WHITE, 0.45),
        _ => colour.lerp_to_gamma(Color32::BLACK, 0.35),
    }
}

/// A figure's key as a line above it, each entry in its colour: a legend that never covers a bar.
fn key_line(ui: &mut egui::Ui, entries: &[(String, Color32)]) {
    ui.horizontal_wrapped(|ui| {
        for (k, (what, colour)) in entries.iter().enumerate() {
            if k > 0 {
                ui.label("·");
            }
            ui.label(egui::RichText::new(what).color(*colour));
        }
    });
}

/// The latent page's right-hand figure for a table: the feature vector decoded at the point last hovered, in standard
/// deviations, beside the input nearest the cursor.
pub(crate) fn decoded_ui(vae: &VaeUiState, height: f32, ui: &mut egui::Ui) {
    let Some(features) = Features::of(vae) else { return };
    let Some(hover) = &vae.hover_image else {
        ui.label(
            "Hover the latent plane: the features decoded at that point are drawn here, beside the input nearest it.",
        );
        return;
    };
    let latent = vae.view.as_ref().map_or(2, |v| v.params.latent);
    let d = features.len();
    let nearest = vae.input_under_cursor.or_else(|| vae.picked.last().copied());
    let input = nearest.and_then(|i| vae.inputs.get(i * d..(i + 1) * d));
    ui.label(format!("{} in standard deviations from each feature's training mean", decoded_at(hover, latent)));
    let bars: Vec<Bar> = hover
        .image
        .iter()
        .enumerate()
        .take(d)
        .map(|(j, &v)| {
            Bar::new(-(j as f64), features.in_sd(j, v))
                .name(format!("{}: {}", features.names[j], features.written(j, features.in_units(j, v))))
                .width(0.6)
                .fill(DECODED.gamma_multiply(0.7))
                .stroke(egui::Stroke::new(1.0, DECODED))
        })
        .collect();
    let nearest_name =
        nearest.filter(|_| input.is_some()).map(|i| format!("{}, nearest the cursor", vae.input_name(i)));
    saveable(
        ui,
        "vae-decoded-features",
        || "vae-decoded-features.png".to_owned(),
        |ui| {
            let mut key = vec![("bars: decoded at the cursor".to_owned(), DECODED)];
            key.extend(nearest_name.iter().map(|name| (format!("diamonds: {name}"), DATA)));
            key_line(ui, &key);
            named_rows(plot_axes::plot("vae-decoded-features"), &features.names, ui)
                .height(height - 24.0)
                .x_axis_label("standard deviations from the training mean")
                .include_x(0.0)
                .show(ui, |plot| {
                    plot.bar_chart(
                        BarChart::new("decoded at the cursor", bars)
                            .horizontal()
                            .color(DECODED)
                            .element_formatter(Box::new(|bar, _| bar.name.clone())),
                    );
                    if let (Some(name), Some(input)) = (&nearest_name, input) {
                        let points: Vec<[f64; 2]> =
                            input.iter().enumerate().map(|(j, &v)| [features.in_sd(j, v), -(j as f64)]).collect();
                        plot.points(
                            Points::new(name.clone(), points)
                                .shape(MarkerShape::Diamond)
                                .radius(5.0)
                                .filled(true)
                                .color(DATA),
                        );
                    }
                });
        },
    );
    save_image_button(ui, "vae-decoded-features");
}

/// The path between two picked inputs of a table: each feature along it, in standard deviations.
pub(crate) fn path_ui(vae: &mut VaeUiState, ui: &mut egui::Ui) {
    let ([a, b], Some(features)) = (vae.picked.as_slice(), Features::of(vae)) else { return };
    ui.strong(format!("Decoded along the straight path from {} to {}", vae.input_name(*a), vae.input_name(*b)));
    let Some(path) = &vae.path_images else {
        ui.spinner();
        return;
    };
    let d = features.len();
    let height = figure_height(ui, 0.8, 40.0, (220.0, 520.0));
    let top = ui.cursor().top();
    saveable(
        ui,
        "vae-path",
        || format!("vae-path-{}-{}.png", a + 1, b + 1),
        |ui| {
            // The key above the plot: eleven names in a legend would cover the lines.
            let key: Vec<(String, Color32)> =
                features.names.iter().enumerate().map(|(j, name)| (name.clone(), feature_colour(j))).collect();
            key_line(ui, &key);
            plot_axes::plot("vae-path-features")
                .height(height)
                .x_axis_label(format!(
                    "step along the path (0: the first input's mean, {}: the second's)",
                    PATH_STEPS - 1
                ))
                .y_axis_label("standard deviations")
                .show(ui, |plot| {
                    for (j, name) in features.names.iter().enumerate() {
                        let points: Vec<[f64; 2]> = path
                            .chunks_exact(d)
                            .enumerate()
                            .map(|(k, row)| [k as f64, features.in_sd(j, row[j])])
                            .collect();
                        plot.line(
                            Line::new(name.clone(), PlotPoints::from(points)).color(feature_colour(j)).width(2.0),
                        );
                    }
                });
        },
    );
    let buttons = ui.horizontal(|ui| {
        save_image_button(ui, "vae-path");
        record_button(ui, "vae-path", vae.recorder.busy());
    });
    let shown = buttons.response.rect;
    vae.reveal_path_in(ui, egui::Rect::from_x_y_ranges(shown.x_range(), top..=shown.bottom()));
}

/// The reconstructions of a table's first test rows by the model on show (`epoch`'s): each feature's error over
/// them against predicting its training mean, then the rows themselves, input over reconstruction.
pub(crate) fn reconstructions_ui(vae: &VaeUiState, view: &VaeView, (epoch, recon): (usize, &[f32]), ui: &mut egui::Ui) {
    let Some(features) = Features::of(vae) else { return };
    let d = features.len();
    let originals = view.originals.as_slice();
    let rows = (originals.len() / d).min(recon.len() / d);
    if rows == 0 {
        return;
    }
    ui.label(format!(
        "The first {rows} test rows and decoder(encoder mean) after epoch {epoch}: how far each feature's \
         reconstruction is from the input, against how far the feature's training mean is (what a model that \
         kept nothing would give), as the root mean square over the rows, in the feature's standard deviations."
    ));
    let rms = |error: &dyn Fn(usize, usize) -> f64| -> Vec<f64> {
        (0..d).map(|j| ((0..rows).map(|r| error(r, j).powi(2)).sum::<f64>() / rows as f64).sqrt()).collect()
    };
    let reconstructed = rms(&|r, j| features.in_sd(j, recon[r * d + j]) - features.in_sd(j, originals[r * d + j]));
    let by_mean = rms(&|r, j| features.in_sd(j, originals[r * d + j]));
    let emphasised = vae.highlight == Highlight::VaeReconstruction;
    let colour = if emphasised { accent(ui.visuals()) } else { DECODED };
    let bars = |values: &[f64], offset: f64, colour: Color32| -> Vec<Bar> {
        values
            .iter()
            .enumerate()
            .map(|(j, &v)| {
                Bar::new(-(j as f64) + offset, v)
                    .name(format!("{}: {v:.2} sd", features.names[j]))
                    .width(0.36)
                    .fill(colour.gamma_multiply(0.7))
                    .stroke(egui::Stroke::new(1.0, colour))
            })
            .collect()
    };
    ui.horizontal(|ui| {
        save_image_button(ui, "vae-reconstructions");
        record_button(ui, "vae-reconstructions", vae.recorder.busy());
    });
    // Rows at least 26 points apart, so that every feature's name shows.
    let least = (60.0 + 26.0 * d as f32).min(700.0);
    let height = figure_height(ui, 0.5, 30.0, (least, least.max(640.0)));
    let shown = saveable(
        ui,
        "vae-reconstructions",
        || format!("vae-reconstructions-epoch-{epoch}.png"),
        |ui| {
            key_line(
                ui,
                &[
                    ("the reconstruction's error".to_owned(), colour),
                    ("the training mean's (a model that kept nothing)".to_owned(), Color32::GRAY),
                ],
            );
            named_rows(plot_axes::plot("vae-reconstruction-errors"), &features.names, ui)
                .height(height)
                .x_axis_label(format!("root mean square error over the {rows} rows, in standard deviations"))
                .include_x(0.0)
                .show(ui, |plot| {
                    let formatter = || Box::new(|bar: &Bar, _: &BarChart| bar.name.clone());
                    plot.bar_chart(
                        BarChart::new("the reconstruction", bars(&reconstructed, 0.2, colour))
                            .horizontal()
                            .color(colour)
                            .element_formatter(formatter()),
                    );
                    plot.bar_chart(
                        BarChart::new("the training mean", bars(&by_mean, -0.2, Color32::GRAY))
                            .horizontal()
                            .color(Color32::GRAY)
                            .element_formatter(formatter()),
                    );
                })
                .response
        },
    );
    if emphasised {
        label_figure(&shown, "the reconstructions decoded from the test rows' means");
    }
    rows_table_ui(&features, (originals, recon), rows, ui);
}

/// The test rows in the data's units, each over its reconstruction, whose values are coloured by their error.
fn rows_table_ui(features: &Features, (originals, recon): (&[f32], &[f32]), rows: usize, ui: &mut egui::Ui) {
    let d = features.len();
    let visuals = ui.visuals().clone();
    ui.label(
        egui::RichText::new(
            "Each row as written in the data, and under it its reconstruction: within half a standard deviation of \
             the input in the usual colour, within one in orange, further in red.",
        )
        .weak(),
    );
    egui::ScrollArea::horizontal().id_salt("vae-reconstruction-rows").show(ui, |ui| {
        egui::Grid::new("vae-reconstruction-rows").striped(true).num_columns(d + 1).show(ui, |ui| {
            ui.strong("test row");
            // A word to a line, so that a name breaks between its words and not inside one ("residu / al"); an input
            // of a column of texts as the column over its text ("island" over "= Biscoe").
            for name in &features.names {
                let (column, text) = name.split_once(" = ").map_or((name.as_str(), None), |(c, t)| (c, Some(t)));
                let mut lines = column.replace(' ', "\n");
                if let Some(text) = text {
                    lines = format!("{lines}\n= {text}");
                }
                ui.add(egui::Label::new(egui::RichText::new(lines).strong()).extend());
            }
            ui.end_row();
            for r in 0..rows {
                ui.label(format!("{}", r + 1));
                for j in 0..d {
                    ui.monospace(features.written(j, features.in_units(j, originals[r * d + j])));
                }
                ui.end_row();
                ui.label(egui::RichText::new("reconstructed").weak());
                for j in 0..d {
                    let (input, output) = (originals[r * d + j], recon[r * d + j]);
                    let error = (features.in_sd(j, output) - features.in_sd(j, input)).abs();
                    let colour = if error <= 0.5 {
                        visuals.text_color()
                    } else if error <= 1.0 {
                        visuals.warn_fg_color
                    } else {
                        visuals.error_fg_color
                    };
                    ui.label(
                        egui::RichText::new(features.written(j, features.in_units(j, output)))
                            .monospace()
                            .color(colour),
                    )
                    .on_hover_text(format!("{error:.2} sd from the input"));
                }
                ui.end_row();
            }
        });
    });
}

/// Draws from the prior decoded into the table's space, on two features the user picks, over the training rows.
pub(crate) fn prior_ui(vae: &mut VaeUiState, ui: &mut egui::Ui) {
    let Some(features) = Features::of(vae) else { return };
    let d = features.len();
    let Some((step, decoded)) = vae.prior.clone() else {
        ui.spinner();
        return;
    };
    let draws = decoded.len() / d;
    ui.label(format!(
        "{draws} draws z ~ N(0, I) decoded by the model at step {step} (the decoder's means; the same draws for the \
         whole run), over the training rows: where the decoded points fall short of the data's spread or leave its \
         shape, the model has not learnt that part of the data."
    ));
    let (mut x, mut y) = vae.feature_axes;
    ui.horizontal(|ui| {
        for (label, axis, salt) in [("x", &mut x, "vae-prior-x"), ("y", &mut y, "vae-prior-y")] {
            *axis = (*axis).min(d - 1);
            column_combo(ui, label, salt, &features.names[*axis], |ui| {
                for (j, name) in features.names.iter().enumerate() {
                    ui.selectable_value(axis, j, name);
                }
            });
        }
        save_image_button(ui, "vae-prior");
        record_button(ui, "vae-prior", vae.recorder.busy());
        plot_axes::legend_toggle(ui, "vae-prior");
    });
    vae.feature_axes = (x, y);
    let in_units = |rows: &[f32]| -> Vec<[f64; 2]> {
        rows.chunks_exact(d).map(|row| [features.in_units(x, row[x]), features.in_units(y, row[y])]).collect()
    };
    let training = in_units(vae.inputs.get(..vae.n_train * d).unwrap_or(&[]));
    let samples = in_units(&decoded);
    let height = figure_height(ui, 1.0, 20.0, (300.0, 900.0));
    let names = ["training rows", "decoded draws from the prior"];
    let mut occupied = plot_axes::Occupied::for_legend(&names, egui::vec2(ui.available_width(), height));
    occupied.points(&training).points(&samples);
    saveable(
        ui,
        "vae-prior",
        || format!("vae-prior-samples-step-{step}.png"),
        |ui| {
            let plot = plot_axes::with_legend(plot_axes::plot("vae-prior-table"), ui.ctx(), "vae-prior", &occupied);
            plot_axes::ticked_by_categories(plot, &features.categories[x], &features.categories[y])
                .height(height)
                .x_axis_label(features.names[x].clone())
                .y_axis_label(plot_axes::fitted_y_title(ui, &features.names[y], height))
                .show(ui, |plot| {
                    plot.points(
                        Points::new(names[0], training).radius(1.5).filled(true).color(DATA.gamma_multiply(0.6)),
                    );
                    plot.points(Points::new(names[1], samples).radius(2.0).filled(true).color(DECODED));
                });
        },
    );
}

#[cfg(test)]
mod tests {
    use super::Features;

    /// The red wine's density, alcohol and total sulfur dioxide, standardised: each in the data's units, written to
    /// the decimals it was recorded to.
    #[test]
    fn a_feature_is_written_in_its_units_to_the_decimals_it_was_recorded_to() {
        let features = Features {
            names: vec!["density".into(), "alcohol".into(), "total sulfur dioxide".into()],
            mean: vec![0.996_81, 10.42, 46.47],
            scale: vec![0.001_887, 1.065, 32.9],
            centre: vec![0.0; 3],
            sd: vec![1.0, 1.0, 1.0],
            decimals: vec![5, 1, 0],
            categories: vec![Vec::new(); 3],
        };
        let written = |j: usize, v: f32| features.written(j, features.in_units(j, v));
        assert_eq!(written(0, 0.0), "0.99681");
        assert_eq!(written(1, 1.0), "11.5");
        assert_eq!(written(2, -1.0), "14");
        // Not standardised: the values are the data's, centred on and scaled by the training rows' (here 0.1, 0.02).
        let raw = Features {
            names: vec!["x".into()],
            mean: vec![0.0],
            scale: vec![1.0],
            centre: vec![0.1],
            sd: vec![0.02],
            decimals: vec![3],
            categories: vec![Vec::new()],
        };
        assert_eq!(raw.written(0, raw.in_units(0, 0.123_45)), "0.123");
        assert!((raw.in_sd(0, 0.15) - 2.5).abs() < 1e-6, "0.15 is 2.5 sd of 0.02 above 0.1");
        // A column of text (Titanic's sex, standardised: mean 0.65, sd 0.48): its categories' names, and a value
        // between them by the nearest name and its number.
        let sex = Features {
            names: vec!["Sex".into()],
            mean: vec![0.65],
            scale: vec![0.48],
            centre: vec![0.0],
            sd: vec![1.0],
            decimals: vec![0],
            categories: vec![vec!["female".into(), "male".into()]],
        };
        let written = |v: f32| sex.written(0, sex.in_units(0, v));
        assert_eq!(written((0.0 - 0.65) / 0.48), "female");
        assert_eq!(written((1.0 - 0.65) / 0.48), "male");
        assert_eq!(written((0.73 - 0.65) / 0.48), "male (0.73)");
        assert_eq!(written((0.2 - 0.65) / 0.48), "female (0.20)");
        assert_eq!(written((1.4 - 0.65) / 0.48), "male (1.40)");
    }
}
