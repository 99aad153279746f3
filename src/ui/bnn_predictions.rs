//! The BNN lab's predictions and calibration views: the test rows' Monte Carlo predictions as a table and against
//! the actual values with 95 % intervals (or each class's probability), and the intervals' coverage against their
//! nominal level.

use egui::Color32;
use egui_extras::{Column, TableBuilder};
use egui_plot::{Bar, BarChart, Line, MarkerShape, PlotPoints, Points};

use crate::data::prepare::OutputKind;
use crate::models::bnn::{ClassRow, PredictiveRows, RELIABILITY_BINS, reliability};
use crate::models::stats::INTERVAL_LEVELS;
use crate::train::bnn_view::PredictiveView;
use crate::ui::bnn_state::BnnUiState;
use crate::ui::count::count;
use crate::ui::export::{ExportKind, export_button};
use crate::ui::highlight::{Highlight, accent, dim, halo, label_figure};
use crate::ui::image_export::{record_button, save_image_button, saveable};
use crate::ui::lab_page::{figure_height, legend_figure, table_height, together, waiting};
use crate::ui::plot_axes;

pub(crate) fn predictions_ui(bnn: &mut BnnUiState, ui: &mut egui::Ui) {
    let Some(pv) = bnn.predictive.clone() else {
        waiting(ui, "Sampling predictions…");
        return;
    };
    let p = &pv.predictive;
    let target = bnn.prepared.as_ref().and_then(|d| d.output.as_ref()).map_or("target".to_owned(), |(n, _)| n.clone());
    match &p.rows {
        PredictiveRows::Regression(rows) => {
            let baseline = bnn.prepared.as_ref().map_or(f64::NAN, |d| {
                let mean = d.y_train.iter().map(|&v| f64::from(v)).sum::<f64>() / d.y_train.len().max(1) as f64;
                (d.y_test.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / d.y_test.len().max(1) as f64)
                    .sqrt()
            });
            ui.label(format!(
                "{}, step {}). Test RMSE of the mean {:.3} (predicting the training mean: {baseline:.3}); mean range of the passes {:.3}.",
                sampled(rows.len(), &pv),
                pv.step,
                p.error,
                p.mc_range_mean
            ));
            let aleatoric = rows.first().is_some_and(|r| r.aleatoric_sd.is_some());
            ui.horizontal_wrapped(|ui| {
                together(ui, "bnn-pred-vs-actual-title", |ui| {
                    ui.strong("Predicted against actual, with 95 % intervals")
                });
                save_image_button(ui, "bnn-pred-vs-actual");
                record_button(ui, "bnn-pred-vs-actual", bnn.recorder.busy());
                plot_axes::legend_toggle(ui, "bnn-pred-vs-actual");
            });
            // The plot takes half the page's height below it where the window has the room; the table the rest.
            let height = figure_height(ui, 0.55, 0.0, (260.0, 560.0));
            predicted_vs_actual_plot(rows, &target, (bnn.highlight == Highlight::BnnPredictive, height), ui);
            ui.horizontal(|ui| {
                ui.strong("Predictive table");
                if export_button(ui) {
                    bnn.export = bnn.export_request(ExportKind::Predictive);
                }
            });
            let table_height = table_height(ui, 320.0);
            let whole = rows.iter().all(|r| (r.actual - r.actual.round()).abs() < 1e-6);
            let mut table = TableBuilder::new(ui)
                .id_salt("bnn-predictive-table")
                .striped(true)
                .resizable(false)
                .max_scroll_height(table_height)
                .column(Column::auto().at_least(40.0));
            for _ in 0..(if aleatoric { 7 } else { 6 }) {
                table = table.column(Column::auto().at_least(60.0));
            }
            table
                .header(20.0, |mut h| {
                    let mut cols = vec!["Row", "Actual", "Mean", "Min", "Max", "Range", "95 % interval"];
                    if aleatoric {
                        cols.push("Aleatoric sd");
                    }
                    for c in cols {
                        h.col(|ui| {
                            ui.strong(c);
                        });
                    }
                })
                .body(|body| {
                    // A target of whole numbers (the wine's quality) written as such: "5", not "5.00".
                    let decimals = if whole { 0 } else { 2 };
                    body.rows(18.0, rows.len(), |mut row| {
                        let i = row.index();
                        let r = rows[i];
                        let (lo, hi) = r.interval_95();
                        let mut cells = vec![
                            format!("{}", i + 1),
                            format!("{:.decimals$}", r.actual),
                            format!("{:.2}", r.mean),
                            format!("{:.2}", r.min),
                            format!("{:.2}", r.max),
                            format!("{:.2}", r.range()),
                            format!("{lo:.2} .. {hi:.2}"),
                        ];
                        if let Some(a) = r.aleatoric_sd {
                            cells.push(format!("{a:.2}"));
                        }
                        for c in cells {
                            row.col(|ui| {
                                ui.monospace(c);
                            });
                        }
                    });
                });
        }
        PredictiveRows::Classes(rows) => {
            ui.label(format!(
                "{}). Error rate {:.3}; mean range of the predicted class's probability {:.3}.",
                sampled(rows.len(), &pv),
                p.error,
                p.mc_range_mean
            ));
            let output = bnn.prepared.as_ref().and_then(|d| d.output.as_ref()).map(|(_, kind)| kind);
            let n_named = output.map_or(0, OutputKind::n_classes);
            let name = |k: usize| output.map_or_else(|| k.to_string(), |kind| kind.class_name(k));
            if export_button(ui) {
                bnn.export = bnn.export_request(ExportKind::Predictive);
            }
            let table_height = table_height(ui, 360.0);
            let n_classes = rows.iter().map(|r| r.actual.max(r.predicted) + 1).fold(n_named, usize::max);
            let names: Vec<String> = (0..n_classes).map(name).collect();
            // The table and, beside it (or under it in a narrow page), the confusion matrix. The table widens for
            // class names longer than the digits' and the wines' ("Iris-versicolor" twice on a line).
            let char_width = crate::ui::lab_page::monospace_char_width(ui);
            let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
            let table_width = CLASS_TABLE_WIDTH + 2.0 * char_width * longest.saturating_sub(NAME_CHARS) as f32;
            let beside = ui.available_width() >= table_width + 300.0;
            let layout = if beside {
                egui::Layout::left_to_right(egui::Align::Min)
            } else {
                egui::Layout::top_down(egui::Align::Min)
            };
            ui.with_layout(layout, |ui| {
                ui.vertical(|ui| {
                    ui.set_width(table_width);
                    class_table_ui(rows, &name, table_height, ui);
                });
                ui.vertical(|ui| confusion_ui(rows, &names, table_height, ui));
            });
        }
    }
}

/// Width of the class predictions' table, in points, for class names of up to [`NAME_CHARS`] characters.
const CLASS_TABLE_WIDTH: f32 = 400.0;

/// The longest class name the table's width leaves room for ("versicolor"); each character more widens it.
const NAME_CHARS: usize = 10;

/// The class predictions' table: a line per test row with its actual and predicted class, the predicted class's
/// mean probability and its range over the passes.
fn class_table_ui(rows: &[ClassRow], name: &dyn Fn(usize) -> String, table_height: f32, ui: &mut egui::Ui) {
    TableBuilder::new(ui)
        .id_salt("bnn-class-table")
        .striped(true)
        .max_scroll_height(table_height)
        .columns(Column::auto().at_least(60.0), 5)
        .header(20.0, |mut h| {
            for c in ["Row", "Actual", "Predicted", "Probability", "Min .. max"] {
                h.col(|ui| {
                    ui.strong(c);
                });
            }
        })
        .body(|body| {
            body.rows(18.0, rows.len(), |mut row| {
                let i = row.index();
                let r = &rows[i];
                let cells = [
                    format!("{}", i + 1),
                    name(r.actual),
                    name(r.predicted),
                    format!("{:.2}", r.probabilities.get(r.predicted).copied().unwrap_or(0.0)),
                    format!("{:.2} .. {:.2}", r.min, r.max),
                ];
                for c in cells {
                    row.col(|ui| {
                        // On one line: a long class name widens its column, never wraps out of its row.
                        ui.add(egui::Label::new(egui::RichText::new(c).monospace()).extend());
                    });
                }
            });
        });
}

/// Test rows by actual class (rows of the result) and predicted class (its columns), over `n` classes.
pub(crate) fn confusion_counts(rows: &[ClassRow], n: usize) -> Vec<Vec<usize>> {
    let mut counts = vec![vec![0; n]; n];
    for r in rows.iter().filter(|r| r.actual < n && r.predicted < n) {
        counts[r.actual][r.predicted] += 1;
    }
    counts
}

/// What the confusion matrix says in words: how many rows are right (its diagonal), and the class most often taken
/// for another, if any row is wrong.
pub(crate) fn confusion_summary(counts: &[Vec<usize>], names: &[String]) -> String {
    let total: usize = counts.iter().flatten().sum();
    let right: usize = (0..counts.len()).map(|k| counts[k][k]).sum();
    let right_text = format!(
        "Right: {} of {} (the diagonal).",
        crate::data::table::grouped(right),
        crate::data::table::grouped(total)
    );
    let worst = (0..counts.len())
        .flat_map(|a| (0..counts.len()).filter(move |&p| p != a).map(move |p| (a, p)))
        .max_by_key(|&(a, p)| (counts[a][p], std::cmp::Reverse((a, p))))
        .filter(|&(a, p)| counts[a][p] > 0);
    match worst {
        Some((a, p)) => format!(
            "{right_text} Most often confused: {} taken for {} ({}).",
            names[a],
            names[p],
            count(counts[a][p], "row")
        ),
        None => right_text,
    }
}

/// The confusion matrix of the class predictions: actual classes down, predicted across, each cell its count of test
/// rows, coloured by its share of the actual class's rows; at most `height` points tall.
fn confusion_ui(rows: &[ClassRow], names: &[String], height: f32, ui: &mut egui::Ui) {
    let n = names.len();
    if n == 0 {
        return;
    }
    let counts = confusion_counts(rows, n);
    ui.horizontal_wrapped(|ui| {
        ui.strong("Confusion matrix: actual class down, predicted across");
        save_image_button(ui, "bnn-confusion");
    });
    saveable(
        ui,
        "bnn-confusion",
        || "bnn-confusion-matrix.png".to_owned(),
        |ui| {
            let font = egui::TextStyle::Body.resolve(ui.style());
            let side = ui.available_width().min(height - 60.0).clamp(200.0, 560.0);
            // One cell's room for the class names along the top and down the left.
            #[allow(clippy::cast_precision_loss)] // a few classes
            let cell = side / (n as f32 + 1.0);
            let (rect, _) = ui.allocate_exact_size(egui::vec2(side, side), egui::Sense::hover());
            let painter = ui.painter_at(rect);
            let visuals = ui.visuals();
            let at = |row: f32, col: f32| rect.min + egui::vec2((col + 1.0) * cell, (row + 1.0) * cell);
            for (k, name) in names.iter().enumerate() {
                #[allow(clippy::cast_precision_loss)] // a few classes
                let k = k as f32;
                let strong = visuals.strong_text_color();
                painter.text(at(-0.5, k + 0.5), egui::Align2::CENTER_CENTER, name, font.clone(), strong);
                painter.text(at(k + 0.5, -0.5), egui::Align2::CENTER_CENTER, name, font.clone(), strong);
            }
            for (a, line) in counts.iter().enumerate() {
                let of_class = line.iter().sum::<usize>().max(1);
                for (p, &c) in line.iter().enumerate() {
                    #[allow(clippy::cast_precision_loss)] // counts of test rows
                    let share = c as f32 / of_class as f32;
                    #[allow(clippy::cast_precision_loss)] // a few classes
                    let min = at(a as f32, p as f32);
                    let cell_rect = egui::Rect::from_min_size(min, egui::vec2(cell, cell)).shrink(1.0);
                    let hue = if a == p { Color32::from_rgb(70, 160, 90) } else { Color32::from_rgb(220, 90, 70) };
                    let fill = Color32::from_gray(30).lerp_to_gamma(hue, share.sqrt());
                    painter.rect_filled(cell_rect, 2.0, fill);
                    if c > 0 {
                        painter.text(
                            cell_rect.center(),
                            egui::Align2::CENTER_CENTER,
                            c.to_string(),
                            font.clone(),
                            Color32::WHITE,
                        );
                    }
                }
            }
        },
    );
    ui.label(confusion_summary(&counts, names));
    ui.label(
        egui::RichText::new(
            "Green: a class's rows predicted right; red: taken for another class. The brighter the cell, the larger \
             its share of the actual class's rows.",
        )
        .weak(),
    );
}

/// How the predictions of `n_rows` test rows were sampled, as the predictions page says it first: "400 test rows,
/// 100 forward passes each (CPU in 12 ms" (the caller closes the bracket).
fn sampled(n_rows: usize, pv: &PredictiveView) -> String {
    format!(
        "{}, {} each ({} in {:.0} ms",
        count(n_rows, "test row"),
        count(pv.predictive.n_samples, "forward pass"),
        pv.device,
        pv.seconds * 1000.0
    )
}

/// The 95 % intervals' thin translucent bars: on a light background (presenter mode) a deeper blue, less
/// transparent, where the dark theme's faded into the white behind them, legend marker and all.
fn interval_colour(dark: bool) -> Color32 {
    if dark {
        Color32::from_rgba_unmultiplied(90, 140, 210, 90)
    } else {
        Color32::from_rgba_unmultiplied(45, 95, 180, 150)
    }
}

/// The test rows' predictive means against their actual values, with 95 % intervals, `height` points high;
/// `emphasised`: the Explain panel's predictive is hovered (means and intervals in the accent colour, the diagonal
/// dimmed).
fn predicted_vs_actual_plot(
    rows: &[crate::models::bnn::RegressionRow],
    target: &str,
    (emphasised, height): (bool, f32),
    ui: &mut egui::Ui,
) {
    // Integer targets (wine quality) pile up; a small deterministic jitter spreads each column.
    let integer = rows.iter().all(|r| r.actual.fract() == 0.0);
    let jitter = |i: usize| if integer { ((i * 7919) % 101) as f64 / 101.0 * 0.5 - 0.25 } else { 0.0 };
    let (lo, hi) = rows.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), r| {
        let (a, b) = r.interval_95();
        (lo.min(f64::from(a.min(r.actual))), hi.max(f64::from(b.max(r.actual))))
    });
    let entries = ["perfect prediction", "95 % interval", "predictive mean"];
    let mut occupied = plot_axes::Occupied::for_legend(&entries, egui::vec2(ui.available_width(), height));
    occupied.line(&[[lo, lo], [hi, hi]]);
    for (i, r) in rows.iter().enumerate().take(1500) {
        let (a, b) = r.interval_95();
        let x = f64::from(r.actual) + jitter(i);
        occupied.points(&[[x, f64::from(a)], [x, f64::from(r.mean)], [x, f64::from(b)]]);
    }
    let (accent, dark) = (accent(ui.visuals()), ui.visuals().dark_mode);
    let response = legend_figure(ui, "bnn-pred-vs-actual", "bnn-predicted-vs-actual.png", &occupied, |plot, ui| {
        plot.height(height)
            .x_axis_label(format!("actual {target}"))
            .y_axis_label(plot_axes::fitted_y_title(ui, &format!("predicted {target}"), height))
            .show(ui, |plot| {
                let diagonal = if emphasised { dim(Color32::GRAY) } else { Color32::GRAY };
                plot.line(Line::new("perfect prediction", PlotPoints::from(vec![[lo, lo], [hi, hi]])).color(diagonal));
                let bar_colour = if emphasised { accent.gamma_multiply(0.45) } else { interval_colour(dark) };
                for (i, r) in rows.iter().enumerate().take(1500) {
                    let x = f64::from(r.actual) + jitter(i);
                    let (a, b) = r.interval_95();
                    plot.line(
                        Line::new("95 % interval", PlotPoints::from(vec![[x, f64::from(a)], [x, f64::from(b)]]))
                            .color(bar_colour)
                            .width(1.0),
                    );
                }
                let means: Vec<[f64; 2]> = rows
                    .iter()
                    .enumerate()
                    .map(|(i, r)| [f64::from(r.actual) + jitter(i), f64::from(r.mean)])
                    .collect();
                if emphasised {
                    plot.points(
                        Points::new("", PlotPoints::from(means.clone()))
                            .id("predictive-mean-halo")
                            .radius(4.0)
                            .shape(MarkerShape::Circle)
                            .color(halo())
                            .allow_hover(false),
                    );
                }
                plot.points(
                    Points::new("predictive mean", PlotPoints::from(means))
                        .radius(if emphasised { 2.5 } else { 2.0 })
                        .shape(MarkerShape::Circle)
                        .color(if emphasised { accent } else { Color32::from_rgb(40, 90, 170) }),
                );
            })
    });
    if emphasised {
        label_figure(&response.response, "the predictive mean and 95 % interval of each test row");
    }
}

pub(crate) fn calibration_ui(bnn: &mut BnnUiState, ui: &mut egui::Ui) {
    let Some(pv) = bnn.predictive.clone() else {
        waiting(ui, "Sampling predictions…");
        return;
    };
    let p = &pv.predictive;
    if let PredictiveRows::Classes(rows) = &p.rows {
        class_calibration_ui(bnn, rows, ui);
        return;
    }
    let aleatoric =
        matches!(&p.rows, PredictiveRows::Regression(r) if r.first().is_some_and(|r| r.aleatoric_sd.is_some()));
    calibration_heading(
        bnn,
        "The share of test rows whose actual value falls inside each central predictive interval, against the share it should hold.",
        ui,
    );
    egui::Grid::new("bnn-coverage").num_columns(3).striped(true).show(ui, |ui| {
        ui.strong("Interval");
        ui.strong("Should hold");
        ui.strong("Holds");
        ui.end_row();
        for (nominal, observed) in &p.coverage {
            ui.label(format!("central {:.0} %", nominal * 100.0));
            ui.monospace(format!("{:.0} %", nominal * 100.0));
            ui.monospace(format!("{:.1} %", observed * 100.0));
            ui.end_row();
        }
    });
    // Room under it for the note (three lines in a narrow window).
    let height = unit_square_height(ui, 60.0);
    let size = egui::vec2(height * UNIT_SQUARE_ASPECT, height);
    let mut occupied = plot_axes::Occupied::for_legend(&["perfectly calibrated", "observed"], size);
    occupied.line(&[[0.0, 0.0], [1.0, 1.0]]);
    for (n, o) in &p.coverage {
        // A bar, from the axis up to its top.
        occupied.line(&[[*n, 0.0], [*n, *o]]);
    }
    legend_figure(ui, "bnn-calibration", "bnn-calibration.png", &occupied, |plot, ui| {
        calibration_plot(plot, height, ui, |plot| {
            let bars: Vec<Bar> = p.coverage.iter().map(|(n, o)| Bar::new(*n, *o).width(0.06)).collect();
            plot.bar_chart(BarChart::new("observed", bars).color(Color32::from_rgb(90, 140, 210)));
        })
    });
    let note = if aleatoric {
        "The Normal head's intervals add the noise it learned (aleatoric) to the spread of the weights (epistemic): mean ± z·sd with sd² = var(loc) + mean(scale²)."
    } else {
        "This head predicts a value, not a distribution: its intervals hold only the weights' uncertainty (epistemic), the quantiles of the Monte Carlo passes. The data's own noise is missing, so they hold far fewer rows than their level. The Normal head adds it."
    };
    ui.label(egui::RichText::new(note).weak());
    let _ = INTERVAL_LEVELS;
}

/// The Calibration page's heading line: what it shows (`what`), then its export, image, recording and legend
/// buttons.
fn calibration_heading(bnn: &mut BnnUiState, what: &str, ui: &mut egui::Ui) {
    ui.horizontal_wrapped(|ui| {
        ui.label(what);
        if export_button(ui) {
            bnn.export = bnn.export_request(ExportKind::Calibration);
        }
        save_image_button(ui, "bnn-calibration");
        record_button(ui, "bnn-calibration", bnn.recorder.busy());
        plot_axes::legend_toggle(ui, "bnn-calibration");
    });
}

/// The Calibration page for class predictions: the reliability diagram (the test rows binned by their confidence,
/// the predicted class's mean probability over the passes; each bin's accuracy against its mean confidence) and its
/// expected calibration error.
fn class_calibration_ui(bnn: &mut BnnUiState, rows: &[ClassRow], ui: &mut egui::Ui) {
    let r = reliability(rows, RELIABILITY_BINS);
    calibration_heading(
        bnn,
        "Of the test rows predicted with about 80 % confidence (the predicted class's mean probability over the \
         passes), about 80 % should be right. Each bar: the rows of one confidence bin, how many were right.",
        ui,
    );
    egui::Grid::new("bnn-reliability").num_columns(4).striped(true).show(ui, |ui| {
        ui.strong("Confidence");
        ui.strong("Rows");
        ui.strong("Mean confidence");
        ui.strong("Right");
        ui.end_row();
        for bin in r.bins.iter().filter(|b| b.rows > 0) {
            ui.label(format!("{:.0} .. {:.0} %", bin.lo * 100.0, bin.hi * 100.0));
            ui.monospace(bin.rows.to_string());
            ui.monospace(format!("{:.1} %", bin.confidence * 100.0));
            ui.monospace(format!("{:.1} %", bin.accuracy * 100.0));
            ui.end_row();
        }
    });
    ui.label(format!(
        "Expected calibration error {:.3}: the rows' mean gap between how sure the network is and how often it is \
         right{}.",
        r.ece,
        if r.ece.is_finite() {
            let over: usize = r.bins.iter().filter(|b| b.rows > 0 && b.confidence > b.accuracy).map(|b| b.rows).sum();
            let n: usize = r.bins.iter().map(|b| b.rows).sum();
            format!(
                " ({} of {} rows in bins where it is surer than it is right)",
                crate::data::table::grouped(over),
                crate::data::table::grouped(n)
            )
        } else {
            String::new()
        }
    ));
    let height = unit_square_height(ui, 60.0);
    let size = egui::vec2(height * UNIT_SQUARE_ASPECT, height);
    let mut occupied = plot_axes::Occupied::for_legend(&["perfectly calibrated", "observed"], size);
    occupied.line(&[[0.0, 0.0], [1.0, 1.0]]);
    for bin in r.bins.iter().filter(|b| b.rows > 0) {
        occupied.line(&[[0.5 * (bin.lo + bin.hi), 0.0], [0.5 * (bin.lo + bin.hi), bin.accuracy]]);
    }
    legend_figure(ui, "bnn-calibration", "bnn-calibration.png", &occupied, |plot, ui| {
        let plot = plot.x_axis_label("confidence (the predicted class's mean probability)").y_axis_label("accuracy");
        unit_square_plot(plot, height, ui, |plot| {
            let bars: Vec<Bar> = r
                .bins
                .iter()
                .filter(|b| b.rows > 0)
                .map(|b| Bar::new(0.5 * (b.lo + b.hi), b.accuracy).width(0.9 * (b.hi - b.lo)))
                .collect();
            plot.bar_chart(BarChart::new("observed", bars).color(Color32::from_rgb(90, 140, 210)));
        })
    });
    ui.label(
        egui::RichText::new(
            "Bars under the diagonal: overconfident (right less often than it claims); above: underconfident. The \
             passes' spread widens a Bayesian network's mean probabilities towards the uncertain, which is what \
             calibration asks of it.",
        )
        .weak(),
    );
}

/// A calibration figure: observed coverage against the nominal level on the unit square, `height` points high
/// ([`unit_square_height`]), with the diagonal of perfect calibration, and the bars `bars` draws (the Calibration
/// page's, and the VI vs NUTS page's two models).
pub(crate) fn calibration_plot(
    plot: egui_plot::Plot<'_>,
    height: f32,
    ui: &mut egui::Ui,
    bars: impl FnOnce(&mut egui_plot::PlotUi<'_>),
) -> egui_plot::PlotResponse<()> {
    unit_square_plot(plot.x_axis_label("nominal level").y_axis_label("observed coverage"), height, ui, bars)
}

/// Width over height of a figure on the unit square.
pub(crate) const UNIT_SQUARE_ASPECT: f32 = 1.6;

/// The height of a figure on the unit square: what is left of the page less `below` (the lines under it), at least
/// 260 points (the page scrolls in a small window), at most 640, and no wider ([`UNIT_SQUARE_ASPECT`]) than the
/// page where that allows 260.
pub(crate) fn unit_square_height(ui: &egui::Ui, below: f32) -> f32 {
    let least = 260.0;
    figure_height(ui, 1.0, below, (least, 640.0)).min((ui.available_width() / UNIT_SQUARE_ASPECT).max(least))
}

/// A figure on the unit square, `height` points high ([`unit_square_height`]), with the diagonal of perfect
/// calibration and the bars `bars` draws; the caller names the axes.
pub(crate) fn unit_square_plot(
    plot: egui_plot::Plot<'_>,
    height: f32,
    ui: &mut egui::Ui,
    bars: impl FnOnce(&mut egui_plot::PlotUi<'_>),
) -> egui_plot::PlotResponse<()> {
    plot.height(height)
        .include_x(0.0)
        .include_x(1.0)
        .include_y(0.0)
        .include_y(1.0)
        .view_aspect(UNIT_SQUARE_ASPECT)
        .show(ui, |plot| {
            plot.line(
                Line::new("perfectly calibrated", PlotPoints::from(vec![[0.0, 0.0], [1.0, 1.0]])).color(Color32::GRAY),
            );
            bars(plot);
        })
}

#[cfg(test)]
mod tests {
    use egui::Color32;

    use super::{confusion_counts, confusion_summary, interval_colour};
    use crate::models::bnn::ClassRow;

    /// The contrast ratio (WCAG's) of `colour` laid over the opaque `background` against that background.
    fn contrast_over(colour: Color32, background: Color32) -> f32 {
        let luminance = |c: [f32; 3]| {
            let lin = |v: f32| if v <= 0.040_45 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) };
            0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2])
        };
        let channels = |c: Color32| [c.r(), c.g(), c.b()].map(|v| f32::from(v) / 255.0);
        let (bg, alpha) = (channels(background), f32::from(colour.a()) / 255.0);
        // Colours are premultiplied: over the background, c + (1 - alpha) bg.
        let over = std::array::from_fn(|i| channels(colour)[i] + (1.0 - alpha) * bg[i]);
        let (a, b) = (luminance(over) + 0.05, luminance(bg) + 0.05);
        a.max(b) / a.min(b)
    }

    /// The intervals' bars stand out from a light plot (presenter mode) at least as much as from a dark one: with the
    /// dark theme's colour they had a contrast of 1.45 on white, against 1.66 on the dark plot, and their legend
    /// marker was barely seen.
    #[test]
    fn the_intervals_show_on_a_light_plot_as_well_as_on_a_dark_one() {
        let on_dark = contrast_over(interval_colour(true), egui::Visuals::dark().extreme_bg_color);
        let on_light = contrast_over(interval_colour(false), egui::Visuals::light().extreme_bg_color);
        assert!(on_dark > 1.5, "{on_dark}");
        assert!(on_light >= on_dark, "light {on_light} against dark {on_dark}");
        let dark_colour_on_light = contrast_over(interval_colour(true), egui::Visuals::light().extreme_bg_color);
        assert!(dark_colour_on_light < on_dark, "the check tells the faint colour: {dark_colour_on_light}");
    }

    fn row(actual: usize, predicted: usize) -> ClassRow {
        ClassRow { actual, predicted, probabilities: vec![0.5; 3], min: 0.4, max: 0.6 }
    }

    #[test]
    fn the_confusion_matrix_counts_rows_by_actual_and_predicted_class_and_names_the_worst_mix_up() {
        let rows = [row(0, 0), row(0, 0), row(1, 2), row(1, 2), row(1, 1), row(2, 0), row(2, 2)];
        let counts = confusion_counts(&rows, 3);
        assert_eq!(counts, vec![vec![2, 0, 0], vec![0, 1, 2], vec![1, 0, 1]]);
        let names = ["setosa".to_owned(), "versicolor".to_owned(), "virginica".to_owned()];
        assert_eq!(
            confusion_summary(&counts, &names),
            "Right: 4 of 7 (the diagonal). Most often confused: versicolor taken for virginica (2 rows)."
        );
        let right = confusion_counts(&[row(0, 0), row(2, 2)], 3);
        assert_eq!(confusion_summary(&right, &names), "Right: 2 of 2 (the diagonal).");
    }
}
