//! The BNN lab's "VI vs NUTS" page: the variational posterior of the run on show against the exact posterior
//! sampled by NUTS on the same data, architecture and prior. The sampler runs on its own thread
//! ([`NutsJob`](crate::train::nuts_job::NutsJob)); this page only reads its progress and, when it is done, the
//! plain-data [`NutsComparison`]: diagnostics and summary figures, each weight's two marginals, the test rows'
//! intervals side by side and the calibration of both.

use std::fmt::Write as _;
use std::sync::Arc;

use egui::{Color32, RichText};
use egui_extras::{Column, TableBuilder};
use egui_plot::{Bar, BarChart, FilledArea, Line, MarkerShape, PlotPoints, Points, VLine};

use crate::data::prepare::Prepared;
use crate::data::table::grouped;
use crate::models::bnn::{BnnLayer, BnnTask, ClassRow, Head, Posterior, PredictiveRows, RELIABILITY_BINS, reliability};
use crate::models::nuts::{ESS_WARNING, NoiseModel, NutsSettings, Phase, RHAT_WARNING};
use crate::train::EpochRecord;
use crate::train::nuts_job::{BandComparison, NutsComparison, NutsJob, NutsRequest, WeightMarginal, order_by_ratio};
use crate::ui::bnn_nuts_state::{NutsPageState, NutsSection};
use crate::ui::bnn_state::BnnUiState;
use crate::ui::lab_page::{figure_height, labelled_combo, legend_figure, table_height};
use crate::ui::plot_axes;

/// Colour of the variational posterior in every figure of the page.
pub const VI_COLOUR: Color32 = Color32::from_rgb(40, 110, 200);
/// Colour of the NUTS posterior in every figure of the page.
pub const NUTS_COLOUR: Color32 = Color32::from_rgb(220, 110, 20);

/// Test rows the per-row figure shows.
pub const ROWS_SHOWN: usize = 30;

/// The "VI vs NUTS" page.
pub(crate) fn vs_nuts_ui(bnn: &mut BnnUiState, ui: &mut egui::Ui) {
    bnn.nuts.poll();
    ui.label(
        "The variational posterior of the run on show against the exact posterior: NUTS (the No-U-Turn sampler) draws the weights from the same prior and likelihood on the same training rows.",
    );
    let trained = bnn.view_step > 0 && bnn.view.is_some() && bnn.prepared.is_some() && bnn.run_config.is_some();
    if !trained {
        ui.add_space(8.0);
        ui.label(
            RichText::new(
                "No trained variational model yet: press Train in the side panel (a short run is enough), then come back here to sample the exact posterior and compare.",
            )
            .strong(),
        );
        return;
    }
    settings_ui(bnn, ui);
    progress_ui(&bnn.nuts, ui);
    if let Some(m) = &bnn.nuts.message {
        ui.colored_label(ui.visuals().warn_fg_color, m);
    }
    let Some(result) = bnn.nuts.result.clone() else { return };
    ui.separator();
    if result.run != bnn.run {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            "These draws were compared with an earlier run of the lab; sample again to compare with the run on show.",
        );
    }
    ui.horizontal_wrapped(|ui| {
        for s in NutsSection::ALL {
            if s == NutsSection::Bands && result.bands.is_none() {
                continue;
            }
            ui.selectable_value(&mut bnn.nuts.section, s, s.label());
        }
    });
    ui.add_space(4.0);
    match bnn.nuts.section {
        NutsSection::Summary => {
            let others = other_forms(bnn);
            summary_ui(&result, &others, ui);
        }
        NutsSection::Bands => match (&result.bands, bnn.prepared.clone()) {
            (Some(bands), Some(prepared)) => bands_ui(bands, &prepared, ui),
            _ => {
                ui.label("Predictive bands are drawn for a regression on one feature.");
            }
        },
        NutsSection::Marginals => marginals_ui(&mut bnn.nuts, &result, &bnn.feature_names, ui),
        NutsSection::Rows => rows_ui(&result, ui),
        NutsSection::Calibration => calibration_ui(&result, ui),
    }
}

/// The sampler's settings and the buttons that start, pause and cancel it.
fn settings_ui(bnn: &mut BnnUiState, ui: &mut egui::Ui) {
    let running = bnn.nuts.is_running();
    let mse = bnn.view.as_ref().is_some_and(|v| v.params.task == BnnTask::Regression(Head::Mse));
    let s = &mut bnn.nuts.settings;
    ui.add_enabled_ui(!running, |ui| {
        ui.horizontal_wrapped(|ui| {
            let id = ui.label("Chains").id;
            ui.add(egui::DragValue::new(&mut s.chains).range(1..=16)).labelled_by(id);
            let id = ui.label("Warm-up").id;
            ui.add(egui::DragValue::new(&mut s.warmup).range(10..=5000)).labelled_by(id);
            let id = ui.label("Draws").id;
            ui.add(egui::DragValue::new(&mut s.draws).range(4..=5000)).labelled_by(id);
            let id = ui.label("Seed").id;
            ui.add(egui::DragValue::new(&mut s.seed)).labelled_by(id);
            let id = ui.label("Max rows").id;
            ui.add(egui::DragValue::new(&mut s.max_rows).range(10..=100_000)).labelled_by(id);
            let id = ui.label("Target acceptance").id;
            ui.add(egui::DragValue::new(&mut s.target_accept).range(0.5..=0.99).speed(0.005).fixed_decimals(2))
                .labelled_by(id)
                .on_hover_text(
                    "The mean acceptance probability the warm-up tunes the step size to (the sampler's default 0.8). \
                     Raise it (0.9, 0.95) when the diagnostics report divergent transitions: smaller steps, slower \
                     draws.",
                );
            if mse {
                let noise = |n: NoiseModel| match n {
                    NoiseModel::Fixed => "fixed, variance 1/2 (as VI)",
                    NoiseModel::Sampled => "sampled",
                };
                labelled_combo(ui, "Noise", "nuts-noise", noise(s.noise), |ui| {
                    for n in [NoiseModel::Fixed, NoiseModel::Sampled] {
                        ui.selectable_value(&mut s.noise, n, noise(n));
                    }
                });
            }
        });
    });
    ui.label(
        RichText::new(
            "Defaults for a quick look: 4 chains × (300 warm-up + 300 draws) on at most 500 training rows, a minute or two on two cores. The sampler's own defaults are 500 + 500 on 2,000 rows; Vehtari et al. ask for R-hat below 1.01 and a bulk ESS of 400.",
        )
        .weak(),
    );
    let (rows, total) = bnn.prepared.as_ref().zip(bnn.run_config.as_ref()).map_or((0, 0), |(d, c)| {
        (crate::models::bnn::train_subset(d.n_train(), c.train_fraction, c.seed).len(), d.n_train())
    });
    let s = &bnn.nuts.settings;
    // "of N" only where the run trained on a share of the training rows.
    let used = if rows == total {
        format!("the {} training rows the variational run used", grouped(rows))
    } else {
        format!("the {} training rows the variational run used (of {})", grouped(rows), grouped(total))
    };
    let mut rows_line = format!(
        "Data: {used}, its architecture and its prior N(0, {}²).",
        bnn.run_config.as_ref().map_or(1.0, |c| c.prior_sd)
    );
    if rows > s.max_rows {
        let _ = write!(
            rows_line,
            " More than {0} rows: NUTS samples on a seeded subsample of {0} of them.",
            grouped(s.max_rows)
        );
    }
    ui.label(rows_line);
    ui.horizontal(|ui| {
        let start = ui.add_enabled(!running, egui::Button::new("Sample the exact posterior"));
        if start.clicked() {
            start_sampling(bnn, ui.ctx());
        }
        if let Some(job) = &bnn.nuts.job {
            let paused = job.is_paused();
            if ui.button(if paused { "Resume sampling" } else { "Pause sampling" }).clicked() {
                job.set_paused(!paused);
            }
            if ui.add_enabled(!job.is_cancelling(), egui::Button::new("Cancel sampling")).clicked() {
                job.cancel();
            }
        }
    });
}

/// Starts NUTS on the lab's data and the run on show.
fn start_sampling(bnn: &mut BnnUiState, ctx: &egui::Context) {
    let (Some(view), Some(data), Some(config)) = (&bnn.view, &bnn.prepared, &bnn.run_config) else { return };
    let request = NutsRequest {
        vi: Arc::clone(&view.params),
        vi_step: bnn.view_step,
        run: bnn.run,
        config: config.clone(),
        data: Arc::clone(data),
        settings: bnn.nuts.settings.clone(),
    };
    let ctx = ctx.clone();
    match NutsJob::spawn(request, move || ctx.request_repaint()) {
        Ok(job) => {
            bnn.nuts.job = Some(job);
            bnn.nuts.message = None;
        }
        Err(e) => bnn.nuts.message = Some(format!("NUTS cannot start: {e}")),
    }
}

/// A bar per chain while the sampler runs.
fn progress_ui(state: &NutsPageState, ui: &mut egui::Ui) {
    let Some(job) = &state.job else { return };
    ui.ctx().request_repaint_after(std::time::Duration::from_millis(100));
    let progress = job.progress();
    let status = if job.is_cancelling() {
        "Cancelling…".to_owned()
    } else if job.is_paused() {
        "Paused.".to_owned()
    } else if !progress.is_empty() && progress.iter().all(|p| p.phase == Phase::Done) {
        "All chains done: R-hat, ESS and the predictions from every draw…".to_owned()
    } else {
        format!("Sampling for {:.0} s…", job.seconds())
    };
    ui.label(status);
    for (c, p) in progress.iter().enumerate() {
        let phase = match p.phase {
            Phase::Starting => "starting",
            Phase::Warmup => "warm-up",
            Phase::Sampling => "sampling",
            Phase::Done => "done",
        };
        let (warmup, draws) = (job.settings.warmup, job.settings.draws);
        let count = if p.done < warmup {
            format!("{} of {warmup}", p.done)
        } else {
            format!("draw {} of {draws}", p.done - warmup)
        };
        let fraction = if p.total == 0 { 0.0 } else { p.done as f32 / p.total as f32 };
        ui.add(egui::ProgressBar::new(fraction).desired_width(ui.available_width().min(640.0)).text(format!(
            "chain {}: {phase} {count}, {}, step size {:.3}",
            c + 1,
            crate::ui::count::count(p.divergences, "divergence"),
            p.step_size
        )));
    }
}

/// `v` with 3 decimals, or "–" when it is not a number.
fn num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.3}"),
        _ => "–".to_owned(),
    }
}

/// Diagnostics per chain and overall, the warnings, and the figures of both posteriors.
fn summary_ui(r: &NutsComparison, others: &[(Posterior, EpochRecord)], ui: &mut egui::Ui) {
    let p = &r.posterior;
    ui.label(format!(
        "{} chains × {} draws (after {} warm-up) in {:.1} s, on {} training rows{}; against the VI model at step {}.",
        p.chains.len(),
        grouped(p.settings.draws),
        grouped(p.settings.warmup),
        p.seconds,
        grouped(p.rows_used),
        if p.rows_used < p.rows_total {
            format!(" (a seeded subsample of {})", grouped(p.rows_total))
        } else {
            String::new()
        },
        r.vi_step
    ));
    egui::Grid::new("nuts-chains").num_columns(6).striped(true).show(ui, |ui| {
        for h in ["Chain", "Divergences", "in warm-up", "Step size", "Mean tree depth", "At max depth"] {
            ui.strong(h);
        }
        ui.end_row();
        for (c, chain) in p.chains.iter().enumerate() {
            ui.label(format!("{}", c + 1));
            ui.monospace(format!("{}", chain.divergences));
            ui.monospace(format!("{}", chain.warmup_divergences));
            ui.monospace(format!("{:.4}", chain.step_size));
            ui.monospace(format!("{:.2}", chain.mean_tree_depth));
            ui.monospace(format!("{}", chain.max_depth_hits));
            ui.end_row();
        }
    });
    ui.add_space(4.0);
    let (rhat, ess) = (r.figure("max_rhat"), r.figure("min_ess_bulk"));
    ui.label(format!(
        "Largest R-hat {} (should be below {RHAT_WARNING}); smallest bulk ESS {} (should be above {ESS_WARNING:.0}).",
        num(rhat),
        ess.filter(|v| v.is_finite()).map_or("–".to_owned(), |v| format!("{v:.0}"))
    ));
    let warnings = p.warnings();
    if warnings.is_empty() {
        ui.label("No warnings: the chains agree on every weight.");
    }
    for w in &warnings {
        ui.colored_label(ui.visuals().warn_fg_color, format!("Warning: {w}"));
    }
    ui.add_space(6.0);
    ui.strong("Summary on the test rows");
    let vi_name = format!("VI ({})", short_form(r.vi_posterior));
    let regression = matches!(r.template.task, BnnTask::Regression(_));
    // (row name, figure name, as a percentage)
    let mut lines: Vec<(&str, &str, bool)> = Vec::new();
    if regression {
        lines.push(("Test RMSE of the predictive mean", "test_rmse", false));
        lines.push(("Mean width of the 95 % interval", "interval_width_95", false));
        lines.push(("Coverage of the 95 % interval", "coverage_95", true));
    } else {
        lines.push(("Test error rate", "test_error_rate", false));
    }
    lines.push(("Test NLL (nats per row)", "test_nll", false));
    let show = |v: Option<f64>, percent: bool| if percent { pct(v) } else { num(v) };
    egui::Grid::new("nuts-summary").num_columns(3 + others.len()).striped(true).show(ui, |ui| {
        ui.strong("Figure");
        ui.colored_label(VI_COLOUR, RichText::new(&vi_name).strong());
        for (form, _) in others {
            ui.strong(format!("VI ({}), from Compare runs", short_form(*form)));
        }
        ui.colored_label(NUTS_COLOUR, RichText::new("NUTS").strong());
        ui.end_row();
        for (name, key, percent) in &lines {
            ui.label(*name);
            ui.monospace(show(r.vi_figure(key), *percent));
            for (_, record) in others {
                ui.monospace(show(record.get(key), *percent));
            }
            ui.monospace(show(r.figure(key), *percent));
            ui.end_row();
        }
        ui.label("Mean VI sd / NUTS sd over the weights");
        ui.monospace(num(Some(r.mean_sd_ratio())));
        for _ in others {
            ui.monospace("–");
        }
        ui.label("");
        ui.end_row();
    });
    if r.template.task == BnnTask::Regression(Head::Mse) {
        ui.label(
            RichText::new(
                "The squared-error head predicts a value, not a distribution: its 95 % interval is the spread of the sampled predictions, the weights' uncertainty alone (epistemic). Without the targets' own noise it holds far fewer test rows than 95 %; compare the two columns with each other, not with 95 % (Calibration of both).",
            )
            .weak(),
        );
    }
    if !others.is_empty() {
        ui.label(
            RichText::new(
                "The Compare runs columns are the figures those runs recorded at their last epoch (their own Monte Carlo draws; the interval width and the weights' ratio are not recorded).",
            )
            .weak(),
        );
    }
    if !r.deterministic_layers.is_empty() {
        let layers: Vec<String> = r.deterministic_layers.iter().map(|l| (l + 1).to_string()).collect();
        ui.label(
            RichText::new(format!(
                "Layer {} is deterministic in the VI run (the course's output layer): its weights have no VI spread and are left out of the ratio.",
                layers.join(", ")
            ))
            .weak(),
        );
    }
    ui.add_space(6.0);
    ui.label(
        "What to look for: mean-field VI is usually too narrow — a ratio below 1 and a 95 % interval that holds fewer rows than NUTS's. The chains of single weights often do not mix (hidden units can swap places or signs, so R-hat is large) even when the predictions agree: judge convergence on the predictions, not on single weights (Papamarkou et al.; Izmailov et al. 2021).",
    );
    let mut flags = format!(
        "--chains {} --warmup {} --draws {} --max-rows {} --seed {}",
        p.settings.chains, p.settings.warmup, p.settings.draws, p.settings.max_rows, p.settings.seed
    );
    if p.settings.noise == NoiseModel::Sampled {
        flags.push_str(" --noise sampled");
    }
    if (p.settings.target_accept - NutsSettings::default().target_accept).abs() > 1e-9 {
        let _ = write!(flags, " --target-accept {}", p.settings.target_accept);
    }
    ui.label(
        RichText::new(format!(
            "The NUTS figures are those of `train bnn --sampler nuts --json` on the same data with {flags}."
        ))
        .weak(),
    );
    if others.is_empty() {
        ui.label(
            RichText::new(
                "Mean-field, full covariance and NUTS at once: train the other posterior form with the same data and hidden units; once it finishes it is under Compare runs and gets a column here.",
            )
            .weak(),
        );
    }
}

/// Finished runs under Compare runs of the same architecture, head, prior and training share as the run on show but
/// the other variational form: the last of each form.
fn other_forms(bnn: &BnnUiState) -> Vec<(Posterior, EpochRecord)> {
    let Some(on_show) = &bnn.run_config else { return Vec::new() };
    let mut out: Vec<(Posterior, EpochRecord)> = Vec::new();
    for run in bnn.runs.iter().rev() {
        let c = &run.config;
        let same = c.hidden == on_show.hidden
            && c.head == on_show.head
            && c.activation == on_show.activation
            && c.prior_sd.to_bits() == on_show.prior_sd.to_bits()
            && c.train_fraction.to_bits() == on_show.train_fraction.to_bits()
            && c.bayesian_output == on_show.bayesian_output;
        let other = c.posterior != on_show.posterior && c.posterior != Posterior::Deterministic;
        if same && other && run.stopped_at.is_none() && !out.iter().any(|(p, _)| *p == c.posterior) {
            out.push((c.posterior, run.record.clone()));
        }
    }
    out
}

fn pct(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{:.1} %", v * 100.0),
        _ => "–".to_owned(),
    }
}

fn short_form(p: Posterior) -> &'static str {
    match p {
        Posterior::MeanField => "mean-field",
        Posterior::FullCovariance => "full covariance",
        Posterior::Deterministic => "deterministic",
    }
}

/// A parameter's name: "alcohol to unit 2" in the first layer (its input's feature), "unit 3 to unit 2" after it,
/// or "bias of unit 2" (units from 1).
fn weight_name(r: &NutsComparison, features: &[String], layer: usize, index: usize) -> String {
    let Some(l) = r.template.layers.get(layer) else { return format!("parameter {index}") };
    if index < l.n_in * l.n_out {
        let (from, to) = (index / l.n_out, index % l.n_out + 1);
        match features.get(from) {
            Some(name) if layer == 0 => format!("{name} to unit {to}"),
            _ if layer == 0 => format!("input {} to unit {to}", from + 1),
            _ => format!("unit {} to unit {to}", from + 1),
        }
    } else {
        format!("bias of unit {}", index - l.n_in * l.n_out + 1)
    }
}

/// The picked weight's histogram of draws with the VI Gaussian over it, and the list by sd ratio.
fn marginals_ui(state: &mut NutsPageState, r: &NutsComparison, features: &[String], ui: &mut egui::Ui) {
    let n_layers = r.template.layers.len();
    let (mut layer, mut index) = state.picked;
    layer = layer.min(n_layers.saturating_sub(1));
    let n_params = r.template.layers.get(layer).map_or(1, BnnLayer::n_params);
    ui.horizontal(|ui| {
        labelled_combo(ui, "Layer", "nuts-layer", format!("layer {}", layer + 1), |ui| {
            for l in 0..n_layers {
                ui.selectable_value(&mut layer, l, format!("layer {}", l + 1));
            }
        });
        let id = ui.label("Parameter").id;
        ui.add(egui::DragValue::new(&mut index).range(0..=n_params.saturating_sub(1))).labelled_by(id);
    });
    let n_params = r.template.layers.get(layer).map_or(1, BnnLayer::n_params);
    index = index.min(n_params.saturating_sub(1));
    state.picked = (layer, index);
    let Some(m) = r.marginals.iter().find(|m| m.layer == layer && m.index == index) else { return };
    ui.label(format!(
        "Layer {}, {}: VI mean {:.3}, sd {:.3}; NUTS mean {:.3}, sd {:.3}; ratio {}.",
        layer + 1,
        weight_name(r, features, layer, index),
        m.vi_mean,
        m.vi_sd,
        m.nuts_mean,
        m.nuts_sd,
        num(Some(m.sd_ratio()))
    ));
    let deterministic = r.deterministic_layers.contains(&layer);
    if deterministic {
        ui.label(
            RichText::new(
                "This layer is deterministic in the VI run (the course's output layer): VI has one value for this weight, drawn as a vertical line, and no spread to compare.",
            )
            .weak(),
        );
    }
    // The marginals take half the page below them where the window has the room; the table of every weight the rest.
    let height = figure_height(ui, 0.5, 0.0, (240.0, 440.0));
    marginal_plot(m, deterministic, height, ui);
    ui.add_space(6.0);
    ui.horizontal(|ui| {
        ui.strong("Every weight by VI sd / NUTS sd");
        let label = if state.largest_first { "Largest ratio first" } else { "Smallest ratio first" };
        if ui.button(label).on_hover_text("Change the order").clicked() {
            state.largest_first = !state.largest_first;
        }
    });
    ui.label(
        RichText::new("Click a row to draw its marginals. A ratio below 1: VI is narrower than the exact posterior.")
            .weak(),
    );
    let order = order_by_ratio(&r.marginals, state.largest_first);
    let table_height = table_height(ui, 220.0);
    TableBuilder::new(ui)
        .id_salt("nuts-ratio-table")
        .striped(true)
        .sense(egui::Sense::click())
        .max_scroll_height(table_height)
        .column(Column::auto().at_least(50.0))
        .column(Column::auto().at_least(220.0))
        .columns(Column::auto().at_least(70.0), 5)
        .header(20.0, |mut h| {
            for c in ["Layer", "Weight", "VI mean", "VI sd", "NUTS mean", "NUTS sd", "VI / NUTS sd"] {
                h.col(|ui| {
                    ui.strong(c);
                });
            }
        })
        .body(|body| {
            body.rows(18.0, order.len(), |mut row| {
                let m = &r.marginals[order[row.index()]];
                row.set_selected((m.layer, m.index) == state.picked);
                let cells = [
                    format!("{}", m.layer + 1),
                    weight_name(r, features, m.layer, m.index),
                    format!("{:.3}", m.vi_mean),
                    format!("{:.3}", m.vi_sd),
                    format!("{:.3}", m.nuts_mean),
                    format!("{:.3}", m.nuts_sd),
                    num(Some(m.sd_ratio())),
                ];
                for c in cells {
                    row.col(|ui| {
                        ui.add(egui::Label::new(RichText::new(c).monospace()).extend().selectable(false));
                    });
                }
                if row.response().clicked() {
                    state.picked = (m.layer, m.index);
                }
            });
        });
}

/// The picked weight's marginals, NUTS's draws against VI's Gaussian, `height` points high.
fn marginal_plot(m: &WeightMarginal, deterministic: bool, height: f32, ui: &mut egui::Ui) {
    let h = &m.histogram;
    let vi_entry = if deterministic { "VI value (no spread)" } else { "VI Gaussian N(mean, sd²)" };
    let entries = ["NUTS draws", vi_entry];
    let mut occupied = plot_axes::Occupied::for_legend(&entries, egui::vec2(ui.available_width(), height));
    let tops: Vec<[f64; 2]> = h.density.iter().enumerate().map(|(i, &d)| [h.centre(i), d]).collect();
    occupied.points(&tops);
    occupied.line(&m.vi_curve);
    legend_figure(ui, "nuts-marginal", "bnn-vi-vs-nuts-marginal.png", &occupied, |plot, ui| {
        plot.height(height).x_axis_label("weight value").y_axis_label("density").show(ui, |plot| {
            let bars: Vec<Bar> =
                h.density.iter().enumerate().map(|(i, &d)| Bar::new(h.centre(i), d).width(h.width * 0.95)).collect();
            plot.bar_chart(
                BarChart::new("NUTS draws", bars)
                    .color(NUTS_COLOUR.gamma_multiply(0.8))
                    .element_formatter(Box::new(|bar, _| format!("{:.3}: density {:.3}", bar.argument, bar.value))),
            );
            if deterministic {
                plot.vline(VLine::new(vi_entry, m.vi_mean).color(VI_COLOUR).width(2.0));
            } else {
                plot.line(Line::new(vi_entry, PlotPoints::from(m.vi_curve.clone())).color(VI_COLOUR).width(2.0));
            }
        })
    });
}

/// Both posteriors' predictive bands of `f(x)` over the feature, the data and the gap between its clusters, and
/// the mean widths of the 95 % bands in the data, in the gap and past the data.
fn bands_ui(b: &BandComparison, prepared: &Prepared, ui: &mut egui::Ui) {
    ui.label(
        "The 95 % band of f(x) under each posterior, with their means. The exact posterior (NUTS) is sure of f where the data are and unsure in the gap between the clusters and past the data; a mean-field variational posterior cannot make its band wider in the gap than beside it (Foong et al., 2019): compare the widths below.",
    );
    let w = b.widths();
    egui::Grid::new("nuts-band-widths").num_columns(4).striped(true).show(ui, |ui| {
        ui.strong("Mean width of the 95 % band of f(x)");
        ui.colored_label(VI_COLOUR, RichText::new("VI").strong());
        ui.colored_label(NUTS_COLOUR, RichText::new("NUTS").strong());
        ui.strong("NUTS / VI");
        ui.end_row();
        let gap_name = b.gap.map_or_else(
            || "in a gap (the inputs have none)".to_owned(),
            |(lo, hi)| format!("in the gap, {lo:.2} to {hi:.2}"),
        );
        for (name, [vi, nuts]) in
            [("in the data".to_owned(), w.data), (gap_name, w.gap), ("past the data".to_owned(), w.outside)]
        {
            ui.label(name);
            ui.monospace(num(Some(vi)));
            ui.monospace(num(Some(nuts)));
            ui.monospace(if vi > 0.0 { format!("{:.2}", nuts / vi) } else { "-".into() });
            ui.end_row();
        }
        if b.gap.is_some() {
            ui.label("gap / data (above 1: wider in the gap)");
            ui.monospace(format!("{:.2}", w.gap[0] / w.data[0]));
            ui.monospace(format!("{:.2}", w.gap[1] / w.data[1]));
            ui.label("");
            ui.end_row();
        }
    });
    let xs: Vec<f64> = b.nuts.x.iter().map(|&x| f64::from(x)).collect();
    let wide = |v: &[f32]| -> Vec<f64> { v.iter().map(|&y| f64::from(y)).collect() };
    let pairs = |v: &[f32]| -> Vec<[f64; 2]> { xs.iter().zip(v).map(|(&x, &y)| [x, f64::from(y)]).collect() };
    let (train, test) = crate::ui::bnn_band::data_points(prepared);
    let feature = prepared.feature_names.first().cloned().unwrap_or_else(|| "x".into());
    let target = prepared.output.as_ref().map_or_else(|| "y".into(), |(n, _)| n.clone());
    let names = ["VI 95 % band", "VI mean", "NUTS 95 % band", "NUTS mean", "training rows", "test rows", "the gap"];
    let height = figure_height(ui, 1.0, 0.0, (300.0, 520.0));
    let mut occupied = plot_axes::Occupied::for_legend(&names, egui::vec2(ui.available_width(), height));
    occupied.points(&train).points(&test);
    for band in [&b.vi, &b.nuts] {
        occupied.line(&pairs(&band.function.q025)).line(&pairs(&band.function.q975));
    }
    let fill = |c: Color32, alpha: u8| Color32::from_rgba_unmultiplied(c.r(), c.g(), c.b(), alpha);
    legend_figure(ui, "nuts-bands", "bnn-vi-vs-nuts-bands.png", &occupied, |plot, ui| {
        let target = plot_axes::fitted_y_title(ui, &target, height);
        plot.height(height).x_axis_label(feature).y_axis_label(target).show(ui, |plot| {
            if let Some((lo, hi)) = b.gap {
                for x in [lo, hi] {
                    plot.vline(
                        VLine::new("the gap", f64::from(x))
                            .color(Color32::from_gray(140))
                            .style(egui_plot::LineStyle::dashed_loose()),
                    );
                }
            }
            for (name, band, colour) in [("VI 95 % band", &b.vi, VI_COLOUR), ("NUTS 95 % band", &b.nuts, NUTS_COLOUR)] {
                plot.add(
                    FilledArea::new(name, &xs, &wide(&band.function.q025), &wide(&band.function.q975))
                        .fill_color(fill(colour, 45))
                        .stroke(egui::Stroke::new(1.0, fill(colour, 200))),
                );
            }
            for (name, band, colour) in [("VI mean", &b.vi, VI_COLOUR), ("NUTS mean", &b.nuts, NUTS_COLOUR)] {
                plot.line(Line::new(name, PlotPoints::from(pairs(&band.mean))).color(colour).width(2.0));
            }
            plot.points(
                Points::new("training rows", PlotPoints::from(train.clone())).radius(2.0).color(ui_text_colour()),
            );
            plot.points(
                Points::new("test rows", PlotPoints::from(test.clone()))
                    .radius(2.5)
                    .color(Color32::from_rgb(200, 60, 60)),
            );
        })
    });
}

/// The first [`ROWS_SHOWN`] test rows: each posterior's mean and 95 % interval beside the actual value.
fn rows_ui(r: &NutsComparison, ui: &mut egui::Ui) {
    let (PredictiveRows::Regression(vi), PredictiveRows::Regression(nuts)) = (&r.vi.rows, &r.nuts.rows) else {
        ui.label(
            "Intervals per row are for regression; this network predicts classes (see the summary's error rates).",
        );
        return;
    };
    let n = vi.len().min(nuts.len()).min(ROWS_SHOWN);
    ui.label(format!(
        "The first {n} test rows: the predictive mean and 95 % interval of VI ({} forward passes) and of NUTS ({} draws), beside the actual value.",
        r.vi.n_samples, r.nuts.n_samples
    ));
    let names = ["VI 95 % interval", "VI mean", "NUTS 95 % interval", "NUTS mean", "actual"];
    let height = figure_height(ui, 1.0, 8.0, (300.0, 520.0));
    let mut occupied = plot_axes::Occupied::for_legend(&names, egui::vec2(ui.available_width(), height));
    let offset = 0.18;
    let side = |rows: &[crate::models::bnn::RegressionRow], dx: f64| -> Vec<([f64; 2], [f64; 2], [f64; 2])> {
        rows.iter()
            .take(n)
            .enumerate()
            .map(|(i, row)| {
                let x = (i + 1) as f64 + dx;
                let (lo, hi) = row.interval_95();
                ([x, f64::from(lo)], [x, f64::from(hi)], [x, f64::from(row.mean)])
            })
            .collect()
    };
    let (vi_bars, nuts_bars) = (side(vi, -offset), side(nuts, offset));
    let actual: Vec<[f64; 2]> =
        vi.iter().take(n).enumerate().map(|(i, row)| [(i + 1) as f64, f64::from(row.actual)]).collect();
    for (lo, hi, mean) in vi_bars.iter().chain(&nuts_bars) {
        occupied.line(&[*lo, *hi]).points(&[*mean]);
    }
    occupied.points(&actual);
    legend_figure(ui, "nuts-rows", "bnn-vi-vs-nuts-rows.png", &occupied, |plot, ui| {
        plot.height(height).x_axis_label("test row").y_axis_label("target").show(ui, |plot| {
            for (name, mean_name, bars, colour) in [
                ("VI 95 % interval", "VI mean", &vi_bars, VI_COLOUR),
                ("NUTS 95 % interval", "NUTS mean", &nuts_bars, NUTS_COLOUR),
            ] {
                for (lo, hi, _) in bars {
                    plot.line(Line::new(name, PlotPoints::from(vec![*lo, *hi])).color(colour).width(2.0));
                }
                let means: Vec<[f64; 2]> = bars.iter().map(|(_, _, m)| *m).collect();
                plot.points(
                    Points::new(mean_name, PlotPoints::from(means))
                        .radius(3.0)
                        .shape(MarkerShape::Circle)
                        .color(colour),
                );
            }
            plot.points(
                Points::new("actual", PlotPoints::from(actual.clone()))
                    .radius(4.0)
                    .shape(MarkerShape::Diamond)
                    .filled(false)
                    .color(ui_text_colour()),
            );
        })
    });
}

/// The colour of the actual values: dark grey, readable on the light and the dark theme.
fn ui_text_colour() -> Color32 {
    Color32::from_gray(110)
}

/// Observed coverage of the central intervals against their level, VI and NUTS side by side (the figures of
/// [`summarize`](crate::models::bnn::summarize), as on the Calibration page).
/// Both models' reliability diagrams on classes: the test rows binned by confidence (the predicted class's mean
/// probability), how often each model was right per bin, and each one's expected calibration error.
fn class_calibration_ui(vi: &[ClassRow], nuts: &[ClassRow], ui: &mut egui::Ui) {
    let (vi, nuts) = (reliability(vi, RELIABILITY_BINS), reliability(nuts, RELIABILITY_BINS));
    ui.label(
        "Of the test rows predicted with about 80 % confidence (the predicted class's mean probability over the \
         draws), about 80 % should be right: each model's rows binned by its confidence, and how many were right.",
    );
    egui::Grid::new("nuts-reliability").num_columns(5).striped(true).show(ui, |ui| {
        ui.strong("Confidence");
        ui.colored_label(VI_COLOUR, RichText::new("VI rows").strong());
        ui.colored_label(VI_COLOUR, RichText::new("VI right").strong());
        ui.colored_label(NUTS_COLOUR, RichText::new("NUTS rows").strong());
        ui.colored_label(NUTS_COLOUR, RichText::new("NUTS right").strong());
        ui.end_row();
        let percent = |v: f64| if v.is_nan() { "-".to_owned() } else { format!("{:.1} %", v * 100.0) };
        for (a, b) in vi.bins.iter().zip(&nuts.bins).filter(|(a, b)| a.rows + b.rows > 0) {
            ui.label(format!("{:.0} .. {:.0} %", a.lo * 100.0, a.hi * 100.0));
            ui.monospace(a.rows.to_string());
            ui.monospace(percent(a.accuracy));
            ui.monospace(b.rows.to_string());
            ui.monospace(percent(b.accuracy));
            ui.end_row();
        }
    });
    ui.label(format!("Expected calibration error: VI {:.3}, NUTS {:.3}.", vi.ece, nuts.ece));
    let height = crate::ui::bnn_predictions::unit_square_height(ui, 60.0);
    let size = egui::vec2(height * crate::ui::bnn_predictions::UNIT_SQUARE_ASPECT, height);
    let names = ["perfectly calibrated", "VI", "NUTS"];
    let mut occupied = plot_axes::Occupied::for_legend(&names, size);
    occupied.line(&[[0.0, 0.0], [1.0, 1.0]]);
    for (r, dx) in [(&vi, -0.02), (&nuts, 0.02)] {
        for bin in r.bins.iter().filter(|b| b.rows > 0) {
            let x = 0.5 * (bin.lo + bin.hi) + dx;
            occupied.line(&[[x, 0.0], [x, bin.accuracy]]);
        }
    }
    legend_figure(ui, "nuts-calibration", "bnn-vi-vs-nuts-calibration.png", &occupied, |plot, ui| {
        let plot = plot.x_axis_label("confidence (the predicted class's mean probability)").y_axis_label("accuracy");
        crate::ui::bnn_predictions::unit_square_plot(plot, height, ui, |plot| {
            for (name, r, dx, colour) in [("VI", &vi, -0.02, VI_COLOUR), ("NUTS", &nuts, 0.02, NUTS_COLOUR)] {
                let bars: Vec<Bar> = r
                    .bins
                    .iter()
                    .filter(|b| b.rows > 0)
                    .map(|b| Bar::new(0.5 * (b.lo + b.hi) + dx, b.accuracy).width(0.035))
                    .collect();
                plot.bar_chart(BarChart::new(name, bars).color(colour));
            }
        })
    });
}

fn calibration_ui(r: &NutsComparison, ui: &mut egui::Ui) {
    if let (PredictiveRows::Classes(vi), PredictiveRows::Classes(nuts)) = (&r.vi.rows, &r.nuts.rows) {
        class_calibration_ui(vi, nuts, ui);
        return;
    }
    if r.vi.coverage.is_empty() || r.nuts.coverage.is_empty() {
        return;
    }
    ui.label("The share of test rows whose actual value falls inside each central predictive interval, against the share it should hold.");
    egui::Grid::new("nuts-coverage").num_columns(4).striped(true).show(ui, |ui| {
        ui.strong("Interval");
        ui.strong("Should hold");
        ui.colored_label(VI_COLOUR, RichText::new("VI holds").strong());
        ui.colored_label(NUTS_COLOUR, RichText::new("NUTS holds").strong());
        ui.end_row();
        for ((nominal, vi), (_, nuts)) in r.vi.coverage.iter().zip(&r.nuts.coverage) {
            ui.label(format!("central {:.0} %", nominal * 100.0));
            ui.monospace(format!("{:.0} %", nominal * 100.0));
            ui.monospace(format!("{:.1} %", vi * 100.0));
            ui.monospace(format!("{:.1} %", nuts * 100.0));
            ui.end_row();
        }
    });
    let height = crate::ui::bnn_predictions::unit_square_height(ui, 60.0);
    let size = egui::vec2(height * crate::ui::bnn_predictions::UNIT_SQUARE_ASPECT, height);
    let names = ["perfectly calibrated", "VI", "NUTS"];
    let mut occupied = plot_axes::Occupied::for_legend(&names, size);
    occupied.line(&[[0.0, 0.0], [1.0, 1.0]]);
    for ((n, vi), (_, nuts)) in r.vi.coverage.iter().zip(&r.nuts.coverage) {
        occupied.line(&[[*n - 0.02, 0.0], [*n - 0.02, *vi]]).line(&[[*n + 0.02, 0.0], [*n + 0.02, *nuts]]);
    }
    legend_figure(ui, "nuts-calibration", "bnn-vi-vs-nuts-calibration.png", &occupied, |plot, ui| {
        crate::ui::bnn_predictions::calibration_plot(plot, height, ui, |plot| {
            for (name, coverage, dx, colour) in
                [("VI", &r.vi.coverage, -0.02, VI_COLOUR), ("NUTS", &r.nuts.coverage, 0.02, NUTS_COLOUR)]
            {
                let bars: Vec<Bar> = coverage.iter().map(|(n, o)| Bar::new(*n + dx, *o).width(0.035)).collect();
                plot.bar_chart(BarChart::new(name, bars).color(colour));
            }
        })
    });
    if r.template.task == BnnTask::Regression(Head::Mse) {
        ui.label(
            RichText::new(
                "With the squared-error head both posteriors' intervals hold only the weights' uncertainty (epistemic), the quantiles of the sampled predictions: the targets' own noise is missing, so they hold fewer rows than their level, and on whole-number targets such as the wine's quality a narrow interval can hold none. The wider the posterior, the more rows its intervals hold.",
            )
            .weak(),
        );
    }
}
