//! The BNN lab's band view, for a regression on one feature (a generated 1-D set, or a CSV with one feature column):
//! the training and test points, the predictive mean, the central 50 % and 95 % bands of `f(x)` and a few sampled
//! functions over a grid reaching a quarter of the data's range past it on each side, in the feature's own units,
//! redrawn as the network trains (computed on the view thread: `train/bnn_view.rs`). For the Normal head the band of
//! a new observation `y` (the learned noise included) can be shown too.

use egui::{Color32, Stroke};
use egui_plot::{FilledArea, Line, LineStyle, PlotPoints, Points};

use crate::data::prepare::Prepared;
use crate::models::bnn::Head;
use crate::train::bnn_view::BandView;
use crate::ui::bnn_state::BnnUiState;
use crate::ui::highlight::{Highlight, accent, dim, halo_line, label_figure};
use crate::ui::image_export::{record_button, save_image_button, saveable};
use crate::ui::lab_page::waiting;
use crate::ui::plot_axes;

/// The caption under the view's title: what the student sees.
pub(crate) const BAND_CAPTION: &str = "The band is the spread of f(x) over the posterior's weight samples: narrow \
     where the data pin the function down, it should widen away from the data and in the gap between clusters. A \
     variational posterior often stays too narrow in the gap (Foong et al., 2019): compare what you see.";

/// Legend names.
const F_95: &str = "95 % band of f(x)";
const F_50: &str = "50 % band of f(x)";
const Y_95: &str = "95 % band of y (f(x) plus the learned noise)";
const Y_50: &str = "50 % band of y";
const MEAN: &str = "mean of f(x)";
const TRAIN: &str = "training rows";
const TEST: &str = "test rows";

pub(crate) fn band_ui(bnn: &mut BnnUiState, ui: &mut egui::Ui) {
    let Some(prepared) = bnn.prepared.clone() else { return };
    let feature = prepared.feature_names.first().cloned().unwrap_or_else(|| "x".into());
    let target = prepared.output.as_ref().map_or_else(|| "y".into(), |(n, _)| n.clone());
    ui.strong(format!("Predictive band of {target} over {feature}"));
    ui.label(BAND_CAPTION);
    if bnn.run_config.as_ref().is_some_and(|c| c.head == Head::Mse) {
        ui.label(
            egui::RichText::new(
                "This run uses the squared error, whose fixed noise sd (0.71) is far above a generated curve's: the band stays wide and the fit loose. \"Settings for a 1-D curve\" in the side panel learns the noise (Normal head) and fits in seconds.",
            )
            .weak(),
        );
    }
    let Some(view) = bnn.band.clone() else {
        waiting(ui, "Sampling the band…");
        return;
    };
    let has_observation = view.band.observation.is_some();
    ui.horizontal(|ui| {
        save_image_button(ui, "bnn-band");
        record_button(ui, "bnn-band", bnn.recorder.busy());
        plot_axes::legend_toggle(ui, "bnn-band");
        if has_observation {
            ui.checkbox(&mut bnn.show_observation_band, "Band of y too")
                .on_hover_text("The Normal head's band of a new observation: f(x)'s spread plus the noise it learned");
        }
        ui.label(
            egui::RichText::new(format!(
                "step {}, {} weight samples, {} of them drawn",
                view.step,
                view.n_samples,
                view.band.sampled.len()
            ))
            .weak(),
        );
    });
    let show_observation = has_observation && bnn.show_observation_band;
    let emphasised = bnn.highlight == Highlight::BnnPredictive;
    let response = saveable(
        ui,
        "bnn-band",
        || "bnn-predictive-band.png".to_owned(),
        |ui| band_plot(&view, &prepared, (show_observation, emphasised), (&feature, &target), ui),
    );
    if emphasised {
        label_figure(&response, "the predictive mean of f(x) and its 50 % and 95 % bands over the weight samples");
    }
}

/// The plot: bands, sampled functions, mean, then the data on top; `emphasised`: the Explain panel's predictive is
/// hovered (the mean and the bands of f in the accent colour, the sampled functions and the data dimmed). Returns
/// the plot's response.
fn band_plot(
    view: &BandView,
    prepared: &Prepared,
    (show_observation, emphasised): (bool, bool),
    names: (&str, &str),
    ui: &mut egui::Ui,
) -> egui::Response {
    let band = &view.band;
    let xs: Vec<f64> = band.x.iter().map(|&x| f64::from(x)).collect();
    let wide = |v: &[f32]| -> Vec<f64> { v.iter().map(|&y| f64::from(y)).collect() };
    let (train, test) = data_points(prepared);
    let sampled_name = format!("{} sampled functions f(x)", band.sampled.len());
    let mut entries = vec![F_95, F_50, MEAN, sampled_name.as_str(), TRAIN, TEST];
    if show_observation {
        entries.extend([Y_95, Y_50]);
    }
    let height = ui.available_height().clamp(320.0, 560.0);
    let mut occupied = plot_axes::Occupied::for_legend(&entries, egui::vec2(ui.available_width(), height));
    occupied.points(&train).points(&test);
    let edges = band.observation.as_ref().filter(|_| show_observation).unwrap_or(&band.function);
    let lower: Vec<[f64; 2]> = xs.iter().zip(&edges.q025).map(|(&x, &y)| [x, f64::from(y)]).collect();
    let upper: Vec<[f64; 2]> = xs.iter().zip(&edges.q975).map(|(&x, &y)| [x, f64::from(y)]).collect();
    occupied.line(&lower).line(&upper);
    let dark = ui.visuals().dark_mode;
    let accent = accent(ui.visuals());
    // The Explain panel's predictive: the bands of f and the mean in the accent colour, the rest dimmed.
    let blue = |alpha: u8| {
        if emphasised {
            accent.gamma_multiply(f32::from(alpha) / 255.0)
        } else {
            Color32::from_rgba_unmultiplied(70, 130, 230, alpha)
        }
    };
    let faded = |c: Color32| if emphasised { dim(c) } else { c };
    let amber = |alpha: u8| Color32::from_rgba_unmultiplied(235, 160, 40, alpha);
    let mean_colour = match (emphasised, dark) {
        (true, _) => accent,
        (false, true) => Color32::from_rgb(130, 190, 255),
        (false, false) => Color32::from_rgb(20, 70, 170),
    };
    let sample_colour = faded(if dark { Color32::from_rgb(175, 140, 235) } else { Color32::from_rgb(120, 70, 180) });
    let train_colour = faded(if dark { Color32::from_gray(235) } else { Color32::from_gray(20) });
    let test_colour = faded(Color32::from_rgb(240, 90, 60));
    plot_axes::with_legend(plot_axes::plot("bnn-band"), ui.ctx(), "bnn-band", &occupied)
        .height(height)
        .x_axis_label(names.0)
        .y_axis_label(plot_axes::fitted_y_title(ui, names.1, height))
        .show(ui, |plot| {
            if let Some(y) = band.observation.as_ref().filter(|_| show_observation) {
                plot.add(
                    FilledArea::new(Y_95, &xs, &wide(&y.q025), &wide(&y.q975))
                        .fill_color(amber(40))
                        .stroke(Stroke::new(1.0, amber(160))),
                );
                for (k, edge) in [&y.q25, &y.q75].into_iter().enumerate() {
                    let points: Vec<[f64; 2]> = xs.iter().zip(edge.iter()).map(|(&x, &v)| [x, f64::from(v)]).collect();
                    plot.line(
                        Line::new(Y_50, PlotPoints::from(points))
                            .id(("bnn-band-y50", k))
                            .color(amber(220))
                            .style(LineStyle::dashed_loose()),
                    );
                }
            }
            let f = &band.function;
            // Thin edges: the legend's swatches and the band's outline stay visible on a dark background.
            plot.add(
                FilledArea::new(F_95, &xs, &wide(&f.q025), &wide(&f.q975))
                    .fill_color(blue(55))
                    .stroke(Stroke::new(1.0, blue(150))),
            );
            plot.add(
                FilledArea::new(F_50, &xs, &wide(&f.q25), &wide(&f.q75))
                    .fill_color(blue(110))
                    .stroke(Stroke::new(1.0, blue(200))),
            );
            for (k, curve) in band.sampled.iter().enumerate() {
                let points: Vec<[f64; 2]> = xs.iter().zip(curve).map(|(&x, &v)| [x, f64::from(v)]).collect();
                plot.line(
                    Line::new(sampled_name.as_str(), PlotPoints::from(points))
                        .id(("bnn-band-sample", k))
                        .color(sample_colour)
                        .width(1.0),
                );
            }
            let mean: Vec<[f64; 2]> = xs.iter().zip(&band.mean).map(|(&x, &v)| [x, f64::from(v)]).collect();
            if emphasised {
                halo_line(plot, "bnn-band-mean", mean.clone(), 3.5);
            }
            plot.line(Line::new(MEAN, PlotPoints::from(mean)).color(mean_colour).width(if emphasised {
                3.5
            } else {
                2.5
            }));
            plot.points(Points::new(TRAIN, train).radius(2.0).color(train_colour));
            plot.points(Points::new(TEST, test).radius(2.5).color(test_colour));
        })
        .response
}

/// The training and test rows as (feature, target) points in the data's units.
pub(crate) fn data_points(prepared: &Prepared) -> (Vec<[f64; 2]>, Vec<[f64; 2]>) {
    let mean = f64::from(prepared.feature_mean.first().copied().unwrap_or(0.0));
    let scale = f64::from(prepared.feature_scale.first().copied().unwrap_or(1.0));
    let points = |x: &[f32], y: &[f32]| -> Vec<[f64; 2]> {
        x.iter().zip(y).map(|(&z, &v)| [f64::from(z) * scale + mean, f64::from(v)]).collect()
    };
    (points(&prepared.x_train, &prepared.y_train), points(&prepared.x_test, &prepared.y_test))
}
