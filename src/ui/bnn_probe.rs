//! The BNN lab's out-of-distribution probe: a test wine's features moved anywhere, even far outside the training
//! data, with the predictive distribution at that point and the prediction as one feature sweeps ±10 sd.

use egui::Color32;
use egui_plot::{Bar, BarChart, FilledArea, Line, PlotPoints, VLine};

use crate::data::prepare::{OneHotGroup, OutputKind, Prepared};
use crate::models::bnn::PredictiveRows;
use crate::models::stats::{Histogram, freedman_diaconis_bins};
use crate::train::bnn_view::ProbeView;
use crate::ui::bnn_state::{BnnUiState, test_row_in_units};
use crate::ui::count::count;
use crate::ui::image_export::{record_button, save_image_button, saveable};
use crate::ui::lab_page::{figure_height, hidden_curves, legend_entries, waiting};
use crate::ui::plot_axes;

/// The test row's actual output, named: "actual species: Adelie" (a class by its name, not its index 0), "actual
/// quality: 6".
pub(crate) fn actual_text(prepared: &Prepared, y: f32) -> String {
    match &prepared.output {
        Some((name, kind @ OutputKind::Classes { .. })) => {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a class index, whole and small
            let k = y.max(0.0).round() as usize;
            format!("actual {name}: {}", kind.class_name(k))
        }
        Some((name, OutputKind::Regression)) => format!("actual {name}: {y}"),
        None => format!("actual value {y}"),
    }
}

pub(crate) fn probe_ui(bnn: &mut BnnUiState, ui: &mut egui::Ui) {
    let Some(prepared) = bnn.prepared.clone() else { return };
    let d = prepared.n_features();
    let n_test = prepared.n_test();
    if n_test == 0 || d == 0 {
        ui.label("There are no test rows to probe.");
        return;
    }
    ui.horizontal(|ui| {
        let id = ui.label("Test row").id;
        let mut row = bnn.probe_row + 1;
        if ui.add(egui::DragValue::new(&mut row).range(1..=n_test)).labelled_by(id).changed() {
            bnn.probe_row = row - 1;
            bnn.probe_values = test_row_in_units(&prepared, bnn.probe_row);
        }
        if ui.button("Reset to this row").clicked() {
            bnn.probe_values = test_row_in_units(&prepared, bnn.probe_row);
        }
        if let Some(&y) = prepared.y_test.get(bnn.probe_row) {
            ui.label(actual_text(&prepared, y));
        }
    });
    if bnn.probe_values.len() != d {
        bnn.probe_values = test_row_in_units(&prepared, bnn.probe_row);
    }
    // Each feature's training range, in the data's units.
    let ranges: Vec<(f32, f32)> = (0..d)
        .map(|j| {
            let (lo, hi) = prepared
                .x_train
                .chunks_exact(d)
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), r| (lo.min(r[j]), hi.max(r[j])));
            let (m, s) = (prepared.feature_mean[j], prepared.feature_scale[j]);
            (lo * s + m, hi * s + m)
        })
        .collect();
    // Side by side where each half has room for the feature sliders and the figures' text; in a narrower page (a
    // window of half a screen) the figures go under the sliders, which overlapped them.
    if ui.available_width() >= TWO_COLUMNS_WIDTH {
        ui.columns(2, |cols| {
            features_ui(bnn, &prepared, &ranges, &mut cols[0]);
            figures_ui(bnn, &prepared, &ranges, &mut cols[1]);
        });
    } else {
        features_ui(bnn, &prepared, &ranges, ui);
        ui.add_space(8.0);
        figures_ui(bnn, &prepared, &ranges, ui);
    }
}

/// The page's least width for the sliders and the figures side by side (two halves of 380 points).
const TWO_COLUMNS_WIDTH: f32 = 760.0;

/// One slider per feature, in the data's units, and which feature the sweep varies.
fn features_ui(bnn: &mut BnnUiState, prepared: &Prepared, ranges: &[(f32, f32)], ui: &mut egui::Ui) {
    ui.label(
        "Move any feature, also far outside the training data (shaded range: ±10 sd). The round button: the feature \
         the sweep's plot varies.",
    );
    // The sliders take what the feature names, the sweep's buttons and the values leave of the column.
    ui.spacing_mut().slider_width = (ui.available_width() - 250.0).clamp(80.0, 240.0);
    egui::Grid::new("bnn-probe-features").num_columns(3).show(ui, |ui| {
        for (j, range) in ranges.iter().enumerate() {
            // A column of texts that went in one input per text: one row, a choice of its texts, which sets its
            // inputs (1 for the text chosen, 0 for the others); no sweep of one of its inputs alone.
            if let Some(group) = prepared.one_hot_group(j) {
                if j == group.first {
                    ui.label("");
                    let id = ui.label(&group.column).id;
                    one_hot_choice(ui, id, group, &mut bnn.probe_values);
                    ui.end_row();
                }
                continue;
            }
            let (m, s) = (prepared.feature_mean[j], prepared.feature_scale[j]);
            let lo = m - crate::train::bnn_view::SWEEP_HALF_WIDTH * s;
            let hi = m + crate::train::bnn_view::SWEEP_HALF_WIDTH * s;
            ui.radio_value(&mut bnn.sweep_feature, j, "");
            let id = ui.label(&prepared.feature_names[j]).id;
            // A column of text (two categories, numbered 0 and 1): a choice between its names. Its numbers between
            // and beyond them stay on the sweep's axis.
            if let Some(categories) = prepared.feature_categories.get(j).filter(|c| !c.is_empty()) {
                ui.horizontal(|ui| {
                    for (k, name) in categories.iter().enumerate() {
                        #[allow(clippy::cast_precision_loss)] // a few categories
                        let value = k as f32;
                        let chosen = (bnn.probe_values[j] - value).abs() < 1e-6;
                        if ui.selectable_label(chosen, name).clicked() {
                            bnn.probe_values[j] = value;
                        }
                    }
                });
                ui.end_row();
                continue;
            }
            let inside = (range.0..=range.1).contains(&bnn.probe_values[j]);
            // Every value of a feature written alike, to the precision it was recorded to ("16", not "16.0" here
            // and "16" there).
            let decimals = bnn.probe_decimals.get(j).copied().unwrap_or(3);
            let slider = egui::Slider::new(&mut bnn.probe_values[j], lo..=hi).fixed_decimals(decimals);
            let r = ui.add(slider).labelled_by(id);
            if !inside {
                r.on_hover_text("outside the training data's range");
            }
            ui.end_row();
        }
    });
}

/// A column of texts' row of the probe: its texts to choose from (a menu where there are many), the one whose input
/// is 1 chosen; a choice sets its input to 1 and the others to 0.
fn one_hot_choice(ui: &mut egui::Ui, label: egui::Id, group: &OneHotGroup, values: &mut [f32]) {
    let Some(inputs) = values.get_mut(group.inputs()) else { return };
    // The text whose input is 1 where every other input is 0, as in every row of the data.
    let near = |v: f32, to: f32| (v - to).abs() < 1e-6;
    let ones: Vec<usize> = (0..inputs.len()).filter(|&k| near(inputs[k], 1.0)).collect();
    let chosen = match ones.as_slice() {
        [k] if inputs.iter().enumerate().all(|(i, &v)| i == *k || near(v, 0.0)) => Some(*k),
        _ => None,
    };
    let mut pick = chosen;
    if group.categories.len() <= ONE_HOT_BUTTONS {
        ui.horizontal(|ui| {
            for (k, name) in group.categories.iter().enumerate() {
                if ui.selectable_label(chosen == Some(k), name).clicked() {
                    pick = Some(k);
                }
            }
        });
    } else {
        let text = chosen.map_or("(none)", |k| group.categories[k].as_str());
        egui::ComboBox::from_id_salt(("bnn-probe-one-hot", group.first))
            .selected_text(text)
            .show_ui(ui, |ui| {
                for (k, name) in group.categories.iter().enumerate() {
                    ui.selectable_value(&mut pick, Some(k), name);
                }
            })
            .response
            .labelled_by(label);
    }
    if pick != chosen
        && let Some(k) = pick
    {
        for (i, v) in inputs.iter_mut().enumerate() {
            *v = f32::from(u8::from(i == k));
        }
    }
}

/// A column of texts with more texts than this is chosen from a menu in the probe, not a row of buttons.
const ONE_HOT_BUTTONS: usize = 4;

/// Feature `j`'s name as the sweep's axis is titled: a column of text's with the numbers its categories stand at
/// ("Sex (0 = female, 1 = male)"), since the sweep runs through and past them in numbers.
fn feature_title(prepared: &Prepared, j: usize) -> String {
    let name = &prepared.feature_names[j];
    match prepared.feature_categories.get(j).filter(|c| !c.is_empty()) {
        Some(categories) => {
            let numbered: Vec<String> = categories.iter().enumerate().map(|(k, c)| format!("{k} = {c}")).collect();
            format!("{name} ({})", numbered.join(", "))
        }
        None => name.clone(),
    }
}

/// The predictive distribution at the probed input and the sweep of one feature, with their buttons.
fn figures_ui(bnn: &mut BnnUiState, prepared: &Prepared, ranges: &[(f32, f32)], ui: &mut egui::Ui) {
    let Some(probe) = bnn.probe.clone() else {
        waiting(ui, "Sampling the probe…");
        return;
    };
    // Wrapped: in a narrow column the three buttons do not fit on a line, and a row that overflowed widened the
    // whole column past the page's edge.
    ui.horizontal_wrapped(|ui| {
        save_image_button(ui, "bnn-probe");
        record_button(ui, "bnn-probe", bnn.recorder.busy());
        plot_axes::legend_toggle(ui, "bnn-probe-sweep");
    });
    let d = prepared.n_features();
    saveable(
        ui,
        "bnn-probe",
        || format!("bnn-probe-row-{}.png", bnn.probe_row + 1),
        |ui| probe_plots(bnn, prepared, &probe, ranges[bnn.sweep_feature.min(d - 1)], ui),
    );
}

/// Class `k` as the data writes it (the digits' 0 to 9, a label's own numbers, a text label's categories), or its
/// index.
fn class_name(prepared: &Prepared, k: usize) -> String {
    prepared.output.as_ref().map_or_else(|| k.to_string(), |(_, kind)| kind.class_name(k))
}

fn probe_plots(bnn: &BnnUiState, prepared: &Prepared, probe: &ProbeView, range: (f32, f32), ui: &mut egui::Ui) {
    let j = probe.probe.sweep_feature;
    let (m, s) = (prepared.feature_mean[j], prepared.feature_scale[j]);
    let target = prepared.output.as_ref().map_or("prediction".to_owned(), |(n, _)| n.clone());
    match &probe.at_point.rows {
        PredictiveRows::Regression(rows) if !rows.is_empty() => {
            let r = rows[0];
            let (lo, hi) = r.interval_95();
            ui.strong(format!("Predictive distribution of {target} at this input"));
            ui.label(format!(
                "mean {:.2}, range {:.2} .. {:.2}, 95 % interval {lo:.2} .. {hi:.2}{}",
                r.mean,
                r.min,
                r.max,
                r.aleatoric_sd.map_or(String::new(), |a| format!(", aleatoric sd {a:.2}"))
            ));
        }
        PredictiveRows::Classes(rows) if !rows.is_empty() => {
            ui.strong("Predicted class's probability over the passes");
            ui.label(format!(
                "class {}, mean probability {:.2}",
                class_name(prepared, rows[0].predicted),
                rows[0].probabilities[rows[0].predicted]
            ));
        }
        _ => {}
    }
    // What each pass gives: a value of the target, or the probability of the class predicted at this input.
    let classes = matches!(&probe.at_point.rows, PredictiveRows::Classes(_));
    let sampled = match &probe.at_point.rows {
        PredictiveRows::Classes(rows) if !rows.is_empty() => {
            format!("probability of class {}", class_name(prepared, rows[0].predicted))
        }
        _ => format!("sampled {target}"),
    };
    let vals = &probe.samples;
    let (lo, hi) =
        vals.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(f64::from(v)), b.max(f64::from(v))));
    if lo.is_finite() && hi.is_finite() {
        let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 0.5, hi + 0.5) };
        let bins = freedman_diaconis_bins(vals, lo, hi);
        let hist = Histogram::new(vals, lo, hi, bins);
        let w = hist.bin_width();
        let bars: Vec<Bar> =
            hist.densities().iter().zip(&hist.edges).map(|(&d, &l)| Bar::new(l + w / 2.0, d).width(w)).collect();
        // The histogram takes a third of the column's height where the window has the room, the sweep the rest; in
        // a short window (a projector's 1280 x 800 at presenter mode's 150 %) both give way before the page scrolls.
        plot_axes::plot("bnn-probe-hist")
            .height(figure_height(ui, 0.3, 0.0, (100.0, 280.0)))
            .x_axis_label(format!("{sampled} ({}, {})", count(vals.len(), "pass"), count(bins, "bin")))
            .show(ui, |plot| {
                plot.bar_chart(BarChart::new("passes", bars).color(Color32::from_rgb(90, 140, 210)));
            });
    }
    ui.strong(format!("Prediction as {} sweeps ±10 sd", prepared.feature_names[j]));
    let xs: Vec<f64> = probe.sweep_z.iter().map(|z| f64::from(z * s + m)).collect();
    let current = f64::from(bnn.probe_values.get(j).copied().unwrap_or(m));
    let line = line_colour(ui.visuals());
    let entries: &[(&str, Color32)] = &match &probe.sweep.rows {
        PredictiveRows::Regression(_) => vec![
            (RANGE, RANGE_COLOUR),
            // The wider band is the fainter, in its entry too.
            (MIN_MAX, SPREAD_COLOUR.gamma_multiply(0.45)),
            (INTERVAL, SPREAD_COLOUR),
            (MEAN, line),
            (THIS_INPUT, THIS_INPUT_COLOUR),
        ],
        PredictiveRows::Classes(_) => vec![(RANGE, RANGE_COLOUR), (PROBABILITY, line), (THIS_INPUT, THIS_INPUT_COLOUR)],
    };
    // The legend in a row above the plot, as the loss curves have it: inside, at presenter mode's size in a
    // 1280 x 800 window, it took the right half of the plot and the curves were drawn in the left half.
    let key = "bnn-probe-sweep";
    if plot_axes::legend_shown(ui.ctx(), key) {
        let entries: Vec<(String, Color32)> = entries.iter().map(|&(name, colour)| (name.to_owned(), colour)).collect();
        ui.horizontal_wrapped(|ui| legend_entries(ui, key, &entries));
    }
    let hidden = hidden_curves(ui.ctx(), key);
    let shown = |name: &str| !hidden.iter().any(|h| h == name);
    let height = figure_height(ui, 1.0, 8.0, (170.0, 560.0));
    let response = plot_axes::plot(key)
        .height(height)
        .x_axis_label(feature_title(prepared, j))
        .y_axis_label(plot_axes::fitted_y_title(
            ui,
            if classes { "probability of the predicted class" } else { target.as_str() },
            height,
        ))
        .show(ui, |plot| {
            if shown(RANGE) {
                plot.span(
                    egui_plot::Span::new(RANGE, f64::from(range.0)..=f64::from(range.1))
                        .fill(RANGE_COLOUR.gamma_multiply(0.16))
                        .label_align(egui::Align2::CENTER_BOTTOM),
                );
            }
            match &probe.sweep.rows {
                PredictiveRows::Regression(rows) => {
                    let lo: Vec<f64> = rows.iter().map(|r| f64::from(r.interval_95().0)).collect();
                    let hi: Vec<f64> = rows.iter().map(|r| f64::from(r.interval_95().1)).collect();
                    let min: Vec<f64> = rows.iter().map(|r| f64::from(r.min)).collect();
                    let max: Vec<f64> = rows.iter().map(|r| f64::from(r.max)).collect();
                    if shown(MIN_MAX) {
                        plot.add(
                            FilledArea::new(MIN_MAX, &xs, &min, &max).fill_color(SPREAD_COLOUR.gamma_multiply(0.16)),
                        );
                    }
                    if shown(INTERVAL) {
                        plot.add(
                            FilledArea::new(INTERVAL, &xs, &lo, &hi).fill_color(SPREAD_COLOUR.gamma_multiply(0.35)),
                        );
                    }
                    if shown(MEAN) {
                        let mean: Vec<[f64; 2]> = xs.iter().zip(rows).map(|(&x, r)| [x, f64::from(r.mean)]).collect();
                        plot.line(Line::new(MEAN, PlotPoints::from(mean)).color(line).width(2.0));
                    }
                }
                PredictiveRows::Classes(rows) => {
                    if shown(PROBABILITY) {
                        let p: Vec<[f64; 2]> = xs
                            .iter()
                            .zip(rows)
                            .map(|(&x, r)| [x, f64::from(r.probabilities.get(r.predicted).copied().unwrap_or(0.0))])
                            .collect();
                        plot.line(Line::new(PROBABILITY, PlotPoints::from(p)).color(line).width(2.0));
                    }
                }
            }
            if shown(THIS_INPUT) {
                plot.vline(VLine::new(THIS_INPUT, current).color(THIS_INPUT_COLOUR));
            }
        })
        .response;
    // Named for screen readers (and tests).
    response.ctx.accesskit_node_builder(response.id, |node| node.set_label(SWEEP_PLOT));
}

/// The sweep's plot's name to screen readers.
const SWEEP_PLOT: &str = "the sweep's plot";

/// The sweep's items, by their legend entries' names, and their colours (the mean's, a line over the spread,
/// [`line_colour`]).
const RANGE: &str = "training data range";
const MIN_MAX: &str = "min .. max of the passes";
const INTERVAL: &str = "95 % interval";
const MEAN: &str = "mean";
const PROBABILITY: &str = "probability of the predicted class";
const THIS_INPUT: &str = "this input";
const RANGE_COLOUR: Color32 = Color32::from_rgb(120, 200, 120);
const SPREAD_COLOUR: Color32 = Color32::from_rgb(90, 140, 210);
const THIS_INPUT_COLOUR: Color32 = Color32::from_rgb(230, 140, 40);

/// The colour of the sweep's line (the mean, or the predicted class's probability): dark blue on a light page, light
/// blue on a dark one, where the dark blue was hard to see over the spread's bands.
fn line_colour(visuals: &egui::Visuals) -> Color32 {
    if visuals.dark_mode { Color32::from_rgb(130, 190, 255) } else { Color32::from_rgb(40, 90, 170) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe's test row named its class by its index ("actual value 0" for an Adelie penguin); now by its name,
    /// and a target by its column.
    #[test]
    fn the_actual_output_is_named() {
        let classes = OutputKind::Classes {
            classes: vec![0.0, 1.0, 2.0],
            names: vec!["Adelie".into(), "Chinstrap".into(), "Gentoo".into()],
        };
        let prepared = |output| Prepared {
            feature_names: vec!["bill".into()],
            feature_categories: vec![Vec::new()],
            one_hot: Vec::new(),
            output,
            x_train: Vec::new(),
            y_train: Vec::new(),
            x_test: Vec::new(),
            y_test: Vec::new(),
            feature_mean: vec![0.0],
            feature_scale: vec![1.0],
        };
        assert_eq!(actual_text(&prepared(Some(("species".into(), classes))), 2.0), "actual species: Gentoo");
        let wine = prepared(Some(("quality".into(), OutputKind::Regression)));
        assert_eq!(actual_text(&wine, 6.0), "actual quality: 6");
        assert_eq!(actual_text(&wine, 5.5), "actual quality: 5.5");
    }

    #[test]
    fn the_sweeps_axis_numbers_a_text_features_categories() {
        let prepared = Prepared {
            feature_names: vec!["Age".into(), "Sex".into()],
            feature_categories: vec![Vec::new(), vec!["female".into(), "male".into()]],
            one_hot: Vec::new(),
            output: None,
            x_train: Vec::new(),
            y_train: Vec::new(),
            x_test: Vec::new(),
            y_test: Vec::new(),
            feature_mean: vec![0.0; 2],
            feature_scale: vec![1.0; 2],
        };
        assert_eq!(feature_title(&prepared, 0), "Age");
        assert_eq!(feature_title(&prepared, 1), "Sex (0 = female, 1 = male)");
    }
}
