//! The BNN lab's weight views: per-layer histograms of the posterior means, standard deviations and sampled
//! weights against the prior, at any recorded epoch or as an offset stack over training; the layer's weight
//! matrix as a heat map (means or signal-to-noise); a picked weight's posterior density against the prior.

use egui::{Color32, Sense, Stroke};
use egui_plot::{Bar, BarChart, Line, PlotPoint, PlotPoints, Text, VLine};

use crate::models::bnn::{BnnParams, BnnView, Posterior};
use crate::models::stats::{Histogram, normal_pdf};
pub use crate::train::export::WeightQuantity;
use crate::train::export::{WeightHistogram, epoch_histogram, stacked_histograms, weight_range};
use crate::ui::bnn_state::BnnUiState;
pub use crate::ui::bnn_state::{HeatQuantity, HistoryMode};
use crate::ui::count::count;
use crate::ui::export::{ExportKind, export_button};
use crate::ui::highlight::{Highlight, accent, dim, halo, halo_line, label_figure};
use crate::ui::image_export::{capture_if_asked, record_button, save_image_button, saveable};
use crate::ui::lab_page::labelled_combo;
use crate::ui::plot_axes;

/// The weight histograms (one layer), the heat map and the picked weight.
pub(crate) fn weights_ui(bnn: &mut BnnUiState, view: &BnnView, ui: &mut egui::Ui) {
    let params = &view.params;
    let n_layers = params.layers.len();
    bnn.layer = bnn.layer.min(n_layers.saturating_sub(1));
    ui.horizontal_wrapped(|ui| {
        labelled_combo(ui, "Layer", "bnn-layer", layer_name(params, bnn.layer), |ui| {
            for l in 0..n_layers {
                ui.selectable_value(&mut bnn.layer, l, layer_name(params, l));
            }
        });
        labelled_combo(ui, "Show", "bnn-quantity", bnn.quantity.label(), |ui| {
            for q in WeightQuantity::ALL {
                ui.selectable_value(&mut bnn.quantity, q, q.label());
            }
        });
        ui.selectable_value(&mut bnn.history_mode, HistoryMode::Single, "One epoch");
        ui.selectable_value(&mut bnn.history_mode, HistoryMode::Stacked, "Over training (stacked)");
    });
    let history = &view.history;
    if history.is_empty() {
        return;
    }
    let last = history.len() - 1;
    if bnn.history_mode == HistoryMode::Single {
        ui.horizontal(|ui| {
            let mut index = bnn.epoch_index.unwrap_or(last).min(last);
            // Every recorded epoch, finer than the lab's scrubber above, which moves it too.
            let id = ui.label("Histogram of epoch").id;
            let slider = egui::Slider::new(&mut index, 0..=last)
                .custom_formatter(|i, _| history.get(i as usize).map_or(String::new(), |(e, _)| e.to_string()))
                .show_value(true);
            let r = ui.add(slider).labelled_by(id);
            if r.changed() {
                bnn.epoch_index = if index == last { None } else { Some(index) };
            }
            let follow = {
                let was = bnn.epoch_index;
                bnn.follow_scrubber();
                std::mem::replace(&mut bnn.epoch_index, was) == was
            };
            let (label, hover) = if bnn.scrubber.history.entries().len() >= 2 {
                ("Follow the scrubber", "Back to the epoch of the model on show (the epoch scrubber's, or the latest)")
            } else {
                ("Latest", "Follow the training")
            };
            if ui.selectable_label(follow, label).on_hover_text(hover).clicked() {
                bnn.follow_scrubber();
            }
        });
    }
    let layer_posterior = params.layers.get(bnn.layer).map_or(Posterior::Deterministic, |l| l.posterior);
    if layer_posterior == Posterior::Deterministic && bnn.quantity != WeightQuantity::Means {
        ui.label(
            egui::RichText::new("This layer is deterministic: its weights are numbers, not distributions.").weak(),
        );
    }
    let (lo, hi) = weight_range(view, bnn.layer, bnn.quantity);
    let height = (ui.available_height() * 0.45).clamp(180.0, 420.0);
    let (layer_index, quantity) = (bnn.layer, bnn.quantity);
    match bnn.history_mode {
        HistoryMode::Single => {
            // The newest entry of the history is the current model; for it, the live parameters.
            let index = bnn.epoch_index.unwrap_or(last).min(last);
            let (Some(layer), Some(h)) =
                (params.layers.get(layer_index), epoch_histogram(view, layer_index, quantity, index))
            else {
                return;
            };
            let caption = format!(
                "Epoch {}: {} of {} ({}, {} by the Freedman–Diaconis rule; biases left out)",
                h.epoch,
                quantity.label(),
                count(layer.n_in * layer.n_out, "weight"),
                count(h.histogram.total(), "value"),
                count(h.histogram.counts.len(), "bin")
            );
            ui.horizontal_wrapped(|ui| {
                ui.label(caption);
                if export_button(ui) {
                    bnn.export = bnn.export_request(ExportKind::WeightHistograms);
                }
                save_image_button(ui, "bnn-histogram");
                record_button(ui, "bnn-histogram", bnn.recorder.busy());
                plot_axes::legend_toggle(ui, "bnn-histogram");
            });
            let name = || format!("bnn-layer-{}-{}-epoch-{}.png", layer_index + 1, quantity.csv_name(), h.epoch);
            saveable(ui, "bnn-histogram", name, |ui| {
                histogram_plot(ui, &h.histogram, (quantity, params.prior_sd), height, &bnn.highlight);
            });
        }
        HistoryMode::Stacked => {
            let stack = stacked_histograms(view, layer_index, quantity);
            ui.horizontal(|ui| {
                if export_button(ui) {
                    bnn.export = bnn.export_request(ExportKind::WeightHistograms);
                }
                save_image_button(ui, "bnn-stacked");
            });
            let name = || format!("bnn-layer-{}-{}-stacked.png", layer_index + 1, quantity.csv_name());
            saveable(ui, "bnn-stacked", name, |ui| stacked_plot(ui, &stack, history.len(), (lo, hi), height));
        }
    }
    ui.separator();
    // The matrix and the picked weight show the model on show: the scrubbed one, or the latest.
    let on_show = bnn.params_on_show().unwrap_or_else(|| std::sync::Arc::clone(params));
    ui.columns(2, |cols| {
        heat_map_ui(bnn, &on_show, &mut cols[0]);
        weight_detail_ui(bnn, &on_show, &mut cols[1]);
    });
}

fn layer_name(params: &BnnParams, l: usize) -> String {
    let Some(layer) = params.layers.get(l) else { return String::new() };
    let role = if l + 1 == params.layers.len() { "output" } else { "hidden" };
    let form = match layer.posterior {
        Posterior::Deterministic => "deterministic",
        Posterior::MeanField => "mean-field",
        Posterior::FullCovariance => "full covariance",
    };
    format!("Layer {} ({role}, {} x {}, {form})", l + 1, layer.n_in, layer.n_out)
}

/// The histogram of one epoch with the prior over it; `highlight`: the Explain panel's term on show (the prior or
/// the posterior in the accent colour, the other dimmed).
fn histogram_plot(
    ui: &mut egui::Ui,
    hist: &Histogram,
    (quantity, prior_sd): (WeightQuantity, f64),
    height: f32,
    highlight: &Highlight,
) {
    let width = hist.bin_width();
    let bars: Vec<Bar> = hist
        .densities()
        .iter()
        .zip(&hist.edges)
        .map(|(&d, &left)| Bar::new(left + width / 2.0, d).width(width))
        .collect();
    let prior = format!("prior N(0, {prior_sd}²)");
    let mut occupied =
        plot_axes::Occupied::for_legend(&[quantity.label(), &prior], egui::vec2(ui.available_width(), height));
    for bar in &bars {
        occupied.line(&[[bar.argument, 0.0], [bar.argument, bar.value]]);
    }
    if quantity == WeightQuantity::Sds {
        occupied.vline(prior_sd);
    } else {
        occupied.line(&prior_curve(hist, prior_sd));
    }
    let (bar_colour, prior_colour) = match highlight {
        Highlight::BnnPrior => (dim(BAR_COLOUR), accent(ui.visuals())),
        Highlight::BnnPosterior => (accent(ui.visuals()), dim(PRIOR_COLOUR)),
        _ => (BAR_COLOUR, PRIOR_COLOUR),
    };
    let response = plot_axes::with_legend(plot_axes::plot("bnn-histogram"), ui.ctx(), "bnn-histogram", &occupied)
        .height(height)
        .x_axis_label(quantity.label())
        .y_axis_label("density")
        .show(ui, |plot| {
            plot.bar_chart(BarChart::new(quantity.label(), bars).color(bar_colour));
            prior_overlay(plot, hist, (quantity, prior_sd), prior_colour, *highlight == Highlight::BnnPrior);
        });
    match highlight {
        Highlight::BnnPrior if quantity == WeightQuantity::Sds => {
            label_figure(&response.response, &format!("the prior's sd s = {prior_sd}"));
        }
        Highlight::BnnPrior => label_figure(&response.response, &format!("the prior's density N(0, {prior_sd}²)")),
        Highlight::BnnPosterior => {
            label_figure(&response.response, &format!("the histogram of the posterior's {}", quantity.label()));
        }
        _ => {}
    }
}

/// The histograms' bars.
const BAR_COLOUR: Color32 = Color32::from_rgb(90, 140, 210);
/// The prior's curve and line.
const PRIOR_COLOUR: Color32 = Color32::from_rgb(230, 140, 40);

/// The prior's density N(0, s²) over the histogram's range (for means and samples), or a line at s (for sds), in
/// `colour`; `emphasised`: wider, over a dark halo.
fn prior_overlay(
    plot: &mut egui_plot::PlotUi<'_>,
    hist: &Histogram,
    (quantity, prior_sd): (WeightQuantity, f64),
    colour: Color32,
    emphasised: bool,
) {
    let width = if emphasised { 3.5 } else { 2.0 };
    if quantity == WeightQuantity::Sds {
        if emphasised {
            plot.vline(VLine::new("", prior_sd).id("prior-sd-halo").color(halo()).width(width + 4.0));
        }
        plot.vline(VLine::new(format!("prior sd {prior_sd}"), prior_sd).color(colour).width(width));
        return;
    }
    let pts = prior_curve(hist, prior_sd);
    if emphasised {
        halo_line(plot, "prior", pts.clone(), width);
    }
    plot.line(Line::new(format!("prior N(0, {prior_sd}²)"), PlotPoints::from(pts)).color(colour).width(width));
}

/// The prior's density N(0, s²) over the histogram's range.
fn prior_curve(hist: &Histogram, prior_sd: f64) -> Vec<[f64; 2]> {
    let (lo, hi) = (hist.edges.first().copied().unwrap_or(-3.0), hist.edges.last().copied().unwrap_or(3.0));
    (0..=200).map(|i| lo + (hi - lo) * f64::from(i) / 200.0).map(|x| [x, normal_pdf(x, 0.0, prior_sd)]).collect()
}

/// The stacked view ([`stacked_histograms`]): up to [`crate::train::export::STACKED_EPOCHS`] recorded epochs from
/// first to last, each histogram's density scaled to height 0.9 and lifted by its place in the stack: how the
/// distribution moved over training.
fn stacked_plot(ui: &mut egui::Ui, stack: &[WeightHistogram], n: usize, (lo, hi): (f64, f64), height: f32) {
    let Some(first) = stack.first() else { return };
    let bins = first.histogram.counts.len();
    ui.label(
        egui::RichText::new(format!(
            "{} of layer {} at {} of {}, oldest at the bottom ({}, Freedman–Diaconis; each curve scaled to the same height)",
            first.quantity.label(),
            first.layer + 1,
            stack.len(),
            count(n, "recorded epoch"),
            count(bins, "bin")
        ))
        .weak(),
    );
    let total_height = (height * 1.4).max(260.0);
    plot_axes::plot("bnn-stacked")
        .height(total_height)
        .x_axis_label(first.quantity.label())
        .show_axes([true, false])
        .show(ui, |plot| {
            for (row, h) in stack.iter().enumerate() {
                let epoch = h.epoch;
                let hist = &h.histogram;
                let dens = hist.densities();
                let max = dens.iter().copied().fold(0.0, f64::max).max(1e-12);
                let offset = row as f64;
                let w = hist.bin_width();
                let mut pts = vec![[lo, offset]];
                for (k, d) in dens.iter().enumerate() {
                    let left = lo + w * k as f64;
                    pts.push([left, offset + 0.9 * d / max]);
                    pts.push([left + w, offset + 0.9 * d / max]);
                }
                pts.push([hi, offset]);
                let t = row as f32 / (stack.len().max(2) - 1) as f32;
                let colour = epoch_colour(t);
                plot.line(
                    Line::new(format!("epoch {epoch}"), PlotPoints::from(pts))
                        .color(colour)
                        .fill(offset as f32)
                        .width(1.5),
                );
                plot.text(
                    Text::new(
                        format!("epoch label {epoch}"),
                        PlotPoint::new(lo, offset + 0.5),
                        egui::RichText::new(format!("epoch {epoch}")).text_style(egui::TextStyle::Body),
                    )
                    .anchor(egui::Align2::LEFT_CENTER)
                    .color(colour),
                );
            }
        });
}

/// Early epochs blue, late ones orange.
fn epoch_colour(t: f32) -> Color32 {
    let t = t.clamp(0.0, 1.0);
    let lerp = |a: f32, b: f32| (a + (b - a) * t) as u8;
    Color32::from_rgb(lerp(60.0, 235.0), lerp(110.0, 120.0), lerp(220.0, 40.0))
}

/// The layer's weight matrix: one cell per weight (inputs down, units across), coloured by the mean or by
/// |mean| / sd. Click a cell to look at that weight.
fn heat_map_ui(bnn: &mut BnnUiState, params: &BnnParams, ui: &mut egui::Ui) {
    let Some(layer) = params.layers.get(bnn.layer) else { return };
    ui.horizontal_wrapped(|ui| {
        ui.strong("Weight matrix");
        save_image_button(ui, "bnn-weight-matrix");
        record_button(ui, "bnn-weight-matrix", bnn.recorder.busy());
    });
    // The two colourings on a line of their own, together, rather than split where the buttons above wrap.
    ui.horizontal_wrapped(|ui| {
        ui.label("Coloured by");
        ui.selectable_value(&mut bnn.heat, HeatQuantity::Mean, "means");
        let snr = egui::Button::selectable(bnn.heat == HeatQuantity::SignalToNoise, "signal-to-noise |mean|/sd")
            .wrap_mode(egui::TextWrapMode::Extend);
        if ui.add_enabled(layer.posterior != Posterior::Deterministic, snr).clicked() {
            bnn.heat = HeatQuantity::SignalToNoise;
        }
    });
    let heat = if layer.posterior == Posterior::Deterministic { HeatQuantity::Mean } else { bnn.heat };
    let (rows, cols) = (layer.n_in, layer.n_out);
    let value = |i: usize, j: usize| -> f32 {
        let idx = i * cols + j;
        match heat {
            HeatQuantity::Mean => layer.mean[idx],
            HeatQuantity::SignalToNoise => layer.mean[idx].abs() / layer.sd[idx].max(1e-12),
        }
    };
    let scale = (0..rows)
        .flat_map(|i| (0..cols).map(move |j| (i, j)))
        .map(|(i, j)| value(i, j).abs())
        .fold(0f32, f32::max)
        .max(1e-6);
    let label_width = 130.0;
    let cell = ((ui.available_width() - label_width) / cols.max(1) as f32).clamp(6.0, 36.0);
    // Rows as tall as a line of body text at least, so that each input's name is drawn at the body size.
    let font = egui::TextStyle::Body.resolve(ui.style());
    let row_least = ui.text_style_height(&egui::TextStyle::Body) + 2.0;
    let cell_h = cell.clamp(row_least, row_least.max(22.0));
    let size = egui::vec2(label_width + cell * cols as f32, cell_h * rows as f32);
    let (rect, response) = ui.allocate_exact_size(size, Sense::click());
    capture_if_asked(ui, "bnn-weight-matrix", rect, || format!("bnn-layer-{}-weight-matrix.png", bnn.layer + 1));
    let painter = ui.painter_at(rect);
    let names: Vec<String> = (0..rows)
        .map(|i| {
            if bnn.layer == 0 {
                bnn.feature_names.get(i).cloned().unwrap_or_default()
            } else {
                format!("unit {}", i + 1)
            }
        })
        .collect();
    for (i, name) in names.iter().enumerate() {
        let y = rect.top() + cell_h * i as f32;
        painter.text(
            egui::pos2(rect.left() + label_width - 4.0, y + cell_h / 2.0),
            egui::Align2::RIGHT_CENTER,
            name,
            font.clone(),
            ui.visuals().text_color(),
        );
        for j in 0..cols {
            let v = value(i, j) / scale;
            let colour = match heat {
                HeatQuantity::Mean => diverging(v),
                HeatQuantity::SignalToNoise => sequential(v),
            };
            let r = egui::Rect::from_min_size(
                egui::pos2(rect.left() + label_width + cell * j as f32, y),
                egui::vec2(cell - 1.0, cell_h - 1.0),
            );
            painter.rect_filled(r, 0.0, colour);
            if bnn.selected_weight == Some((bnn.layer, i * cols + j)) {
                painter.rect_stroke(
                    r,
                    0.0,
                    Stroke::new(2.0, ui.visuals().strong_text_color()),
                    egui::StrokeKind::Inside,
                );
            }
        }
    }
    let cell_at = |pos: egui::Pos2| -> Option<(usize, usize)> {
        let x = pos.x - rect.left() - label_width;
        let y = pos.y - rect.top();
        if x < 0.0 || y < 0.0 {
            return None;
        }
        let (i, j) = ((y / cell_h) as usize, (x / cell) as usize);
        (i < rows && j < cols).then_some((i, j))
    };
    if let Some((i, j)) = response.hover_pos().and_then(cell_at) {
        let idx = i * cols + j;
        response.clone().on_hover_text(format!(
            "{} -> unit {}: mean {:.3}, sd {:.3}",
            names[i],
            j + 1,
            layer.mean[idx],
            layer.sd[idx]
        ));
    }
    if response.clicked()
        && let Some((i, j)) = response.interact_pointer_pos().and_then(cell_at)
    {
        bnn.selected_weight = Some((bnn.layer, i * cols + j));
    }
    let legend = match heat {
        HeatQuantity::Mean => format!("blue negative, red positive; full colour at |mean| = {scale:.2}"),
        HeatQuantity::SignalToNoise => format!("dark: near zero in its own sds; bright: |mean|/sd = {scale:.1}"),
    };
    ui.label(egui::RichText::new(format!("Rows: inputs; columns: units. {legend}. Click a weight.")).weak());
}

/// The picked weight's posterior density against the prior.
fn weight_detail_ui(bnn: &BnnUiState, params: &BnnParams, ui: &mut egui::Ui) {
    let Some((l, idx)) = bnn.selected_weight else {
        ui.label(egui::RichText::new("Click a weight in the matrix to see its posterior against the prior.").weak());
        return;
    };
    let Some(layer) = params.layers.get(l) else { return };
    let (Some(&mean), Some(&sd)) = (layer.mean.get(idx), layer.sd.get(idx)) else { return };
    let (i, j) = (idx / layer.n_out.max(1), idx % layer.n_out.max(1));
    let from = if l == 0 { bnn.feature_names.get(i).cloned().unwrap_or_default() } else { format!("unit {}", i + 1) };
    // The title on a line of its own and the buttons under it: in half of a 1280-point window the row of both
    // was wider than the column, and pushed the page sideways.
    ui.add(egui::Label::new(egui::RichText::new(format!("Layer {} weight: {from} -> unit {}", l + 1, j + 1)).strong()));
    ui.horizontal_wrapped(|ui| {
        save_image_button(ui, "bnn-weight-detail");
        record_button(ui, "bnn-weight-detail", bnn.recorder.busy());
        plot_axes::legend_toggle(ui, "bnn-weight-detail");
    });
    let s = params.prior_sd;
    let (mean, sd) = (f64::from(mean), f64::from(sd));
    ui.label(format!("posterior N({mean:.3}, {sd:.3}²) against the prior N(0, {s}²)"));
    let lo = (mean - 4.0 * sd).min(-3.0 * s);
    let hi = (mean + 4.0 * sd).max(3.0 * s);
    let curve = |m: f64, sd: f64| -> Vec<[f64; 2]> {
        (0..=300).map(|k| lo + (hi - lo) * f64::from(k) / 300.0).map(|x| [x, normal_pdf(x, m, sd)]).collect()
    };
    let mut occupied =
        plot_axes::Occupied::for_legend(&["prior", "posterior"], egui::vec2(ui.available_width(), 200.0));
    occupied.line(&curve(0.0, s));
    if sd > 0.0 {
        occupied.line(&curve(mean, sd));
    } else {
        occupied.vline(mean);
    }
    let plot = plot_axes::with_legend(plot_axes::plot("bnn-weight-detail"), ui.ctx(), "bnn-weight-detail", &occupied);
    // The Explain panel's prior or posterior: in the accent colour over a halo, the other dimmed.
    let highlight = &bnn.highlight;
    let (prior_colour, posterior_colour) = match highlight {
        Highlight::BnnPrior => (accent(ui.visuals()), dim(BAR_COLOUR)),
        Highlight::BnnPosterior => (dim(PRIOR_COLOUR), accent(ui.visuals())),
        _ => (PRIOR_COLOUR, BAR_COLOUR),
    };
    let width = |emphasised: bool| if emphasised { 3.5 } else { 1.5 };
    let response = saveable(
        ui,
        "bnn-weight-detail",
        || format!("bnn-layer-{}-weight-{}-{}.png", l + 1, i + 1, j + 1),
        |ui| {
            plot.height(200.0).show(ui, |plot| {
                let prior_emphasised = *highlight == Highlight::BnnPrior;
                if prior_emphasised {
                    halo_line(plot, "detail-prior", curve(0.0, s), width(true));
                }
                plot.line(
                    Line::new("prior", PlotPoints::from(curve(0.0, s)))
                        .color(prior_colour)
                        .width(width(prior_emphasised)),
                );
                let posterior_emphasised = *highlight == Highlight::BnnPosterior;
                if sd > 0.0 {
                    if posterior_emphasised {
                        halo_line(plot, "detail-posterior", curve(mean, sd), width(true));
                    }
                    plot.line(
                        Line::new("posterior", PlotPoints::from(curve(mean, sd)))
                            .color(posterior_colour)
                            .width(width(posterior_emphasised)),
                    );
                } else {
                    plot.vline(VLine::new("value (deterministic)", mean).color(posterior_colour));
                }
            })
        },
    );
    match highlight {
        Highlight::BnnPrior => label_figure(&response.response, &format!("the prior's density N(0, {s}²)")),
        Highlight::BnnPosterior => {
            label_figure(&response.response, &format!("the picked weight's posterior N({mean:.3}, {sd:.3}²)"));
        }
        _ => {}
    }
}

/// Blue (-1) through light grey (0) to red (+1).
fn diverging(t: f32) -> Color32 {
    let t = t.clamp(-1.0, 1.0);
    let base = 235.0;
    if t >= 0.0 {
        Color32::from_rgb(base as u8, (base - 180.0 * t) as u8, (base - 200.0 * t) as u8)
    } else {
        let t = -t;
        Color32::from_rgb((base - 200.0 * t) as u8, (base - 150.0 * t) as u8, base as u8)
    }
}

/// Dark (0) to bright yellow (1).
fn sequential(t: f32) -> Color32 {
    let t = t.clamp(0.0, 1.0);
    Color32::from_rgb((30.0 + 220.0 * t) as u8, (30.0 + 190.0 * t) as u8, (60.0 + 20.0 * t) as u8)
}
