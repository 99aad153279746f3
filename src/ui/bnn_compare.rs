//! The BNN lab's Compare runs view: finished runs (and runs discarded before their end) side by side, named by their
//! data and the settings that differ, in ten colours then dashed, with the spread of their Monte Carlo predictions
//! (the course's 30 % against 100 % lesson).

use egui::Color32;
use egui_plot::{Line, PlotPoints, VLine};
use serde::{Deserialize, Serialize};

use crate::models::bnn::{BnnConfig, KlEstimate, Posterior};
use crate::models::stats::{Histogram, freedman_diaconis_bins};
use crate::train::EpochRecord;
use crate::ui::count::count;
use crate::ui::image_export::save_image_button;
use crate::ui::lab_page::{figure_height, legend_figure};
use crate::ui::plot_axes;
use crate::ui::settings_check;

/// A run's figures, for the comparison: a finished run, or one discarded before its end (kept with the session).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSummary {
    /// The dataset it trained on, as the lab names it ("Wine quality, red (UCI)", a file's name).
    pub dataset: String,
    /// Its settings.
    pub config: BnnConfig,
    /// The last epoch it completed when it was discarded before its end; `None` when it finished.
    pub stopped_at: Option<usize>,
    /// The last epoch's metrics.
    pub record: EpochRecord,
    /// Per test row, max - min of the Monte Carlo predictions (for the distribution of ranges).
    pub ranges: Vec<f32>,
    /// Which predictions gave `ranges`, while later ones of the run may still replace them (this session only).
    #[serde(skip)]
    pub(crate) ranges_from: Option<RangesFrom>,
}

/// The view thread's predictions that gave a run's ranges: the run recorded may finish before the view has
/// predicted with its last model, so later predictions of the same run, up to its last step, replace them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RangesFrom {
    /// The view's run (`BnnUiState::run`).
    pub run: u64,
    /// The model step of the predictions the ranges are from; `None` before any.
    pub step: Option<u64>,
    /// The run's last step: a model past it (a run continued) is not the run recorded.
    pub last_step: u64,
}

/// The same run: its data, settings, end, metrics and ranges (not which predictions its ranges may still follow,
/// which a run file or the next session does not keep).
impl PartialEq for RunSummary {
    fn eq(&self, other: &Self) -> bool {
        (&self.dataset, &self.config, self.stopped_at, &self.record, &self.ranges)
            == (&other.dataset, &other.config, other.stopped_at, &other.record, &other.ranges)
    }
}

impl RunSummary {
    /// Takes `ranges` (called only then) as the run's when the predictions they come from, of view run `run` at
    /// model `step`, are of a later model of the run recorded than its ranges are, up to its last step; whether it
    /// took them.
    pub(crate) fn follow_predictions(&mut self, run: u64, step: u64, ranges: impl FnOnce() -> Vec<f32>) -> bool {
        let Some(from) = &mut self.ranges_from else { return false };
        let later = from.step.is_none_or(|s| step > s);
        if from.run != run || !later || step > from.last_step {
            return false;
        }
        from.step = Some(step);
        self.ranges = ranges();
        true
    }
}

impl Default for RunSummary {
    fn default() -> Self {
        Self {
            dataset: String::new(),
            config: BnnConfig::default(),
            stopped_at: None,
            record: EpochRecord { epoch: 0, metrics: Vec::new() },
            ranges: Vec::new(),
            ranges_from: None,
        }
    }
}

/// The comparison's colours: the labels' qualitative palette of ten (Tableau 10), told apart also by readers with the
/// commonest colour blindness by their lightness.
const RUN_COLOURS: [Color32; 10] = crate::ui::data_view::PALETTE;

/// The line style of each round of [`RUN_COLOURS`]: solid for the first ten runs, then dashed, dotted, densely
/// dashed.
const RUN_LINE_STYLES: [egui_plot::LineStyle; 4] = [
    egui_plot::LineStyle::Solid,
    egui_plot::LineStyle::Dashed { length: 10.0 },
    egui_plot::LineStyle::Dotted { spacing: 6.0 },
    egui_plot::LineStyle::Dashed { length: 4.0 },
];

/// The colour and line style of the comparison's run `index` (0-based): ten colours, then the same colours dashed,
/// so that 40 runs in a row each look different.
#[must_use]
pub fn run_style(index: usize) -> (Color32, egui_plot::LineStyle) {
    let colour = RUN_COLOURS[index % RUN_COLOURS.len()];
    let style = RUN_LINE_STYLES[(index / RUN_COLOURS.len()) % RUN_LINE_STYLES.len()];
    (colour, style)
}

/// The style's name in the table, for runs past the first ten.
fn line_style_name(style: egui_plot::LineStyle) -> &'static str {
    match style {
        egui_plot::LineStyle::Solid => "",
        egui_plot::LineStyle::Dashed { length } if length >= 8.0 => " (dashed)",
        egui_plot::LineStyle::Dashed { .. } => " (short dashes)",
        egui_plot::LineStyle::Dotted { .. } => " (dotted)",
    }
}

/// The Compare runs view of `runs` (oldest first; "Clear" empties it). Returns the share of the training rows a
/// "Train on …" button asked for: the lab sets it and starts a run.
pub(crate) fn compare_ui(runs: &mut Vec<RunSummary>, ui: &mut egui::Ui) -> Option<f64> {
    ui.label("Less data, more epistemic uncertainty: train the same network on 30 % and on all of the training rows and compare the spread of their predictions.");
    let mut train_fraction = None;
    ui.horizontal(|ui| {
        if ui.button("Train on 30 % of the training rows").clicked() {
            train_fraction = Some(0.3);
        }
        if ui.button("Train on all training rows").clicked() {
            train_fraction = Some(1.0);
        }
        if ui.add_enabled(!runs.is_empty(), egui::Button::new("Clear")).clicked() {
            runs.clear();
        }
    });
    if runs.is_empty() {
        ui.label(egui::RichText::new("Finished runs appear here.").weak());
    } else {
        runs_ui(runs, ui);
    }
    train_fraction
}

/// The runs' table (their data where it differs, their names, their figures) and the spread of their Monte Carlo
/// predictions, each run in its colour and line style.
fn runs_ui(runs: &[RunSummary], ui: &mut egui::Ui) {
    let names = run_names(runs);
    let datasets = datasets_of(runs);
    let mixed = datasets.len() > 1;
    if let [(dataset, _)] = datasets.as_slice() {
        ui.label(format!("All on {dataset}."));
    } else {
        let groups: Vec<String> = datasets
            .iter()
            .map(|(d, numbers)| {
                let numbers: Vec<String> = numbers.iter().map(ToString::to_string).collect();
                let runs = if numbers.len() == 1 { "run" } else { "runs" };
                format!("{runs} {} on {d}", numbers.join(", "))
            })
            .collect();
        ui.colored_label(
            ui.visuals().warn_fg_color,
            format!(
                "These runs were trained on different data: {}. Their figures are not comparable across datasets.",
                groups.join("; ")
            ),
        );
    }
    // Runs on classes have an error rate where a regression has its RMSE, and no intervals to cover.
    let classes = runs.iter().all(|r| r.record.get("test_error_rate").is_some());
    let (quality, quality_key) =
        if classes { ("Test error rate", "test_error_rate") } else { ("Test RMSE", "test_rmse") };
    let mut headers = vec!["Run"];
    if mixed {
        headers.push("Data");
    }
    headers.extend(["Settings", quality, "Mean MC range"]);
    if !classes {
        headers.push("95 % coverage");
    }
    headers.push("Test NLL");
    // Scrolls sideways in a narrow window rather than cutting the last columns off.
    egui::ScrollArea::horizontal().id_salt("bnn-runs-scroll").show(ui, |ui| {
        egui::Grid::new("bnn-runs").num_columns(headers.len()).striped(true).show(ui, |ui| {
            for h in &headers {
                ui.strong(*h);
            }
            ui.end_row();
            for (i, (r, name)) in runs.iter().zip(&names).enumerate() {
                let f = |k: &str| r.record.get(k).map_or("–".to_owned(), |v| format!("{v:.3}"));
                let (colour, style) = run_style(i);
                ui.colored_label(colour, format!("{}{}", i + 1, line_style_name(style)));
                if mixed {
                    ui.colored_label(ui.visuals().warn_fg_color, &r.dataset);
                }
                ui.label(name).on_hover_text(run_label(&r.config));
                ui.monospace(f(quality_key));
                ui.monospace(f("mc_range_mean"));
                if !classes {
                    let coverage =
                        r.record.get("coverage_95").map_or("–".to_owned(), |v| format!("{:.1} %", v * 100.0));
                    ui.monospace(coverage);
                }
                ui.monospace(f("test_nll"));
                ui.end_row();
            }
        });
    });
    if let Some(text) = fraction_pair(runs).and_then(|(part, full)| contrast_text(runs, part, full)) {
        ui.label(text);
    }
    ui.horizontal(|ui| {
        ui.strong("Spread of the Monte Carlo predictions per test row (max - min)");
        save_image_button(ui, "bnn-compare");
        plot_axes::legend_toggle(ui, "bnn-compare");
    });
    let all: Vec<f32> = runs.iter().flat_map(|r| r.ranges.iter().copied()).collect();
    let hi = all.iter().copied().fold(0f32, f32::max).max(1e-3);
    let bins = freedman_diaconis_bins(&all, 0.0, f64::from(hi)).min(40);
    // Each run's entry in the legend: its number and name, and its data where the runs' data differ.
    let entries: Vec<String> = runs
        .iter()
        .zip(&names)
        .enumerate()
        .map(
            |(i, (r, name))| {
                if mixed { format!("run {}: {}, {name}", i + 1, r.dataset) } else { format!("run {}: {name}", i + 1) }
            },
        )
        .collect();
    let entry_names: Vec<&str> = entries.iter().map(String::as_str).collect();
    let height = figure_height(ui, 1.0, 8.0, (240.0, 720.0));
    let mut occupied = plot_axes::Occupied::for_legend(&entry_names, egui::vec2(ui.available_width(), height));
    for r in runs {
        let hist = Histogram::new(&r.ranges, 0.0, f64::from(hi), bins);
        let w = hist.bin_width();
        let pts: Vec<[f64; 2]> = hist.densities().iter().enumerate().map(|(k, d)| [w * (k as f64 + 0.5), *d]).collect();
        occupied.line(&pts);
        if let Some(m) = r.record.get("mc_range_mean") {
            occupied.vline(m);
        }
    }
    legend_figure(ui, "bnn-compare", "bnn-compare-runs.png", &occupied, |plot, ui| {
        plot.height(height).x_axis_label("range of the passes").y_axis_label("density").show(ui, |plot| {
            for (i, (r, name)) in runs.iter().zip(entries).enumerate() {
                let hist = Histogram::new(&r.ranges, 0.0, f64::from(hi), bins);
                let w = hist.bin_width();
                let pts: Vec<[f64; 2]> =
                    hist.densities().iter().enumerate().map(|(k, d)| [w * (k as f64 + 0.5), *d]).collect();
                let (colour, style) = run_style(i);
                plot.line(Line::new(name.clone(), PlotPoints::from(pts)).color(colour).width(2.0).style(style));
                if let Some(m) = r.record.get("mc_range_mean") {
                    // Same name: the mean's dashed line belongs to its run in the legend.
                    plot.vline(VLine::new(name, m).color(colour).style(egui_plot::LineStyle::dashed_loose()));
                }
            }
        })
    });
}

/// The latest like-for-like pair of finished runs for the lesson, as indices into `runs`: `(part, full)`, the
/// latest finished run on all of the training rows and the latest finished run on a share of them with otherwise the
/// same settings (seed and epochs included) on the same data. `None` when there is no such pair.
#[must_use]
fn fraction_pair(runs: &[RunSummary]) -> Option<(usize, usize)> {
    let finished = |r: &RunSummary| r.stopped_at.is_none() && r.record.get("mc_range_mean").is_some_and(|m| m > 0.0);
    let like_for_like = |p: &RunSummary, f: &RunSummary| {
        p.config.train_fraction < 1.0
            && p.dataset == f.dataset
            && BnnConfig { train_fraction: f.config.train_fraction, ..p.config.clone() } == f.config
    };
    for (full, f) in runs.iter().enumerate().rev() {
        if finished(f)
            && f.config.train_fraction >= 1.0
            && let Some(part) = runs.iter().rposition(|p| finished(p) && like_for_like(p, f))
        {
            return Some((part, full));
        }
    }
    None
}

/// The lesson in figures for the pair [`fraction_pair`] found: how many times as wide the smaller share's Monte
/// Carlo predictions spread, and what else that depends on.
fn contrast_text(runs: &[RunSummary], part: usize, full: usize) -> Option<String> {
    let (p, f) = (&runs[part], &runs[full]);
    let (range_part, range_full) = (p.record.get("mc_range_mean")?, f.record.get("mc_range_mean")?);
    let ratio = range_part / range_full;
    let share = format!("{:.0} %", p.config.train_fraction * 100.0);
    let verdict =
        if ratio > 1.0 { "less data, a less certain posterior" } else { "here less data did not widen the posterior" };
    Some(format!(
        "Run {} ({share} of the training rows) spreads its predictions {ratio:.2} times as wide as run {} (all of them): a mean range of {range_part:.3} against {range_full:.3}; {verdict}. The contrast is not the data's doing alone: with the same epochs the {share} run took {share} of the steps, and training longer narrows the gap (the course's BNN on the white wine: about 1.3 times at the default epochs; 1.0 to 1.3 times, 1.1 on average, at three times as many).",
        part + 1,
        full + 1,
    ))
}

/// A run's settings in words, one phrase per setting, the training rows' fraction (the comparison's subject) first.
fn settings_in_words(c: &BnnConfig) -> Vec<String> {
    let posterior = match c.posterior {
        Posterior::Deterministic => "deterministic",
        Posterior::MeanField => "mean-field",
        Posterior::FullCovariance => "full covariance",
    };
    let kl = match c.kl {
        KlEstimate::ClosedForm => "closed-form KL",
        KlEstimate::MonteCarlo => "Monte Carlo KL",
    };
    vec![
        format!("{:.0} % of the training rows", c.train_fraction * 100.0),
        format!("{posterior} posterior"),
        format!("{} head", c.head.cli_name()),
        format!("hidden [{}]", settings_check::hidden_text(&c.hidden)),
        format!("{:?} activation", c.activation).to_lowercase(),
        if c.bayesian_output { "Bayesian output layer" } else { "deterministic output layer" }.to_owned(),
        format!("prior sd {}", c.prior_sd),
        kl.to_owned(),
        c.optimizer.name().to_owned(),
        format!("learning rate {}", c.learning_rate),
        format!("batch {}", c.batch_size),
        count(c.epochs, "epoch"),
        format!("seed {}", c.seed),
        count(c.predictive_samples, "pass"),
    ]
}

/// Every setting of a run, in words (the comparison's hover text).
fn run_label(c: &BnnConfig) -> String {
    settings_in_words(c).join(", ")
}

/// The runs' names in the comparison: each run's training rows and the settings that differ between `runs`
/// (what is the same for all of them says nothing), and where it stopped if it was discarded before its end.
#[must_use]
pub fn run_names(runs: &[RunSummary]) -> Vec<String> {
    let words: Vec<Vec<String>> = runs.iter().map(|r| settings_in_words(&r.config)).collect();
    let n_settings = words.first().map_or(0, Vec::len);
    let differ = |k: usize| words.iter().any(|w| w.get(k) != words[0].get(k));
    let shown: Vec<usize> = (0..n_settings).filter(|&k| k == 0 || differ(k)).collect();
    runs.iter()
        .zip(&words)
        .map(|(r, w)| {
            let mut name = shown.iter().filter_map(|&k| w.get(k).cloned()).collect::<Vec<_>>().join(", ");
            if let Some(epoch) = r.stopped_at {
                name = format!("{name}, stopped at epoch {epoch}");
            }
            name
        })
        .collect()
}

/// The datasets of `runs`, each with its runs' 1-based numbers, in order of first use.
fn datasets_of(runs: &[RunSummary]) -> Vec<(&str, Vec<usize>)> {
    let mut out: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        match out.iter_mut().find(|(d, _)| *d == r.dataset) {
            Some((_, numbers)) => numbers.push(i + 1),
            None => out.push((&r.dataset, vec![i + 1])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_ranges_follow_its_later_predictions_up_to_its_last_step() {
        // Recorded when the view had predicted with step 600 of view run 3, whose last step is 1200.
        let mut summary = RunSummary {
            ranges: vec![0.5],
            ranges_from: Some(RangesFrom { run: 3, step: Some(600), last_step: 1200 }),
            ..RunSummary::default()
        };
        let mut take = |run: u64, step: u64, range: f32| summary.follow_predictions(run, step, || vec![range]);
        assert!(take(3, 900, 0.6), "a later model of the run");
        assert!(take(3, 1200, 0.7), "its last model");
        assert!(!take(3, 1500, 0.8), "a model of the run continued past its last step is not the run recorded");
        assert!(!take(3, 300, 0.9), "an earlier model (the scrubber's) is not the run's");
        assert!(!take(3, 1200, 1.0), "the same model again: kept");
        assert!(!take(4, 1200, 1.1), "another run's");
        assert_eq!(summary.ranges, [0.7]);
        assert_eq!(summary.ranges_from.map(|f| f.step), Some(Some(1200)));
        // Recorded before any predictions: the first of the run's takes.
        let mut early =
            RunSummary { ranges_from: Some(RangesFrom { run: 1, step: None, last_step: 60 }), ..RunSummary::default() };
        assert!(early.follow_predictions(1, 6, || vec![0.2]));
        assert_eq!(early.ranges, [0.2]);
        // A discarded run's ranges stay as they were.
        let mut discarded = RunSummary { ranges: vec![0.3], ..RunSummary::default() };
        assert!(!discarded.follow_predictions(1, 6, || vec![0.4]));
        assert_eq!(discarded.ranges, [0.3]);
    }

    /// A finished run (or one stopped at `stopped`) on `dataset` with `fraction` of the rows and a mean range.
    fn run(dataset: &str, fraction: f64, range: f64, stopped: Option<usize>) -> RunSummary {
        RunSummary {
            dataset: dataset.to_owned(),
            config: BnnConfig { train_fraction: fraction, epochs: 706, ..BnnConfig::default() },
            stopped_at: stopped,
            record: EpochRecord { epoch: 706, metrics: vec![("mc_range_mean".to_owned(), range)] },
            ..RunSummary::default()
        }
    }

    #[test]
    fn the_lesson_pairs_the_latest_like_for_like_runs_and_gives_their_ratio() {
        let wine = "Wine quality, white";
        // Nothing to compare: one share only, or the other share stopped before its end.
        assert_eq!(fraction_pair(&[run(wine, 1.0, 0.6, None)]), None);
        assert_eq!(fraction_pair(&[run(wine, 1.0, 0.6, None), run(wine, 0.3, 0.8, Some(40))]), None);
        // Different data, or another setting besides the share: not like for like.
        assert_eq!(fraction_pair(&[run(wine, 1.0, 0.6, None), run("red", 0.3, 0.8, None)]), None);
        let mut other_seed = run(wine, 0.3, 0.8, None);
        other_seed.config.seed = 7;
        assert_eq!(fraction_pair(&[run(wine, 1.0, 0.6, None), other_seed.clone()]), None);

        // The latest of each, in either order, skipping the runs that do not pair.
        let runs = vec![
            run(wine, 0.3, 0.9, None),
            run(wine, 1.0, 0.5, None),
            run(wine, 0.3, 0.8, None),
            other_seed,
            run(wine, 1.0, 0.64, None),
            run(wine, 0.3, 0.7, Some(12)),
        ];
        assert_eq!(fraction_pair(&runs), Some((2, 4)));
        let text = contrast_text(&runs, 2, 4).expect("both have a mean range");
        assert!(
            text.starts_with("Run 3 (30 % of the training rows) spreads its predictions 1.25 times as wide as run 5 (all of them): a mean range of 0.800 against 0.640; less data, a less certain posterior."),
            "{text}"
        );
        // A share that did not widen is said so.
        let narrower = [run(wine, 1.0, 0.8, None), run(wine, 0.5, 0.72, None)];
        let text = contrast_text(&narrower, 1, 0).expect("both have a mean range");
        assert!(text.contains("0.90 times as wide") && text.contains("here less data did not widen"), "{text}");
        assert!(text.contains("the 50 % run took 50 % of the steps"), "{text}");
    }
}
