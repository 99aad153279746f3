//! Data exports: the plain data behind the labs' plots as CSV files, for the window's "Export data…" buttons and
//! `train … --export DIR`.
//!
//! Every table has one header row; indices that the window shows count from 1 (layer, bin, test row, input,
//! point, grid row and column), stages count from 0 (the Gaussian) as in the flow lab, and epochs are as recorded.
//! Numbers are written with Rust's `{}`, the shortest text that reads back to the same f32 or f64 (`NaN`, `inf`
//! and `-inf` included); an empty cell is a value that does not exist for that row. The files:
//!
//! - `history.csv` ([`history_table`]): `epoch`, then one column per metric, named as the trainer records it
//!   (`loss`, `test_rmse`, `train_nll`, …).
//! - `weights_histograms.csv` ([`weight_histograms_table`], BNN): `epoch,layer,quantity,bin,bin_lo,bin_hi,count,
//!   density`; `quantity` is `sample`, `mean` or `sd`, the edges are in the weights' units and `density` is
//!   count / (values x bin width). The bins are the weights page's (Freedman–Diaconis over a range shared by every
//!   recorded epoch; biases left out; [`DRAWS_PER_WEIGHT`] draws per weight, seeded by the epoch).
//! - `predictive.csv` ([`predictive_table`], BNN): regression `test_row,actual,mean,min,max,range,epistemic_sd,
//!   aleatoric_sd,lo_50,hi_50,lo_80,hi_80,lo_95,hi_95` in the target's units (`aleatoric_sd` only for the Normal
//!   head); classification `test_row,actual,predicted,p_predicted,p_predicted_min,p_predicted_max` then `p_<class>`
//!   per class, the classes by their values in the data.
//! - `calibration.csv` ([`calibration_table`], BNN regression): `nominal_level,observed_coverage`.
//! - `reliability.csv` ([`reliability_table`], BNN classification): `bin,confidence_lo,confidence_hi,rows,
//!   mean_confidence,accuracy`: the test rows binned by their predicted class's mean probability (empty bins have
//!   empty cells).
//! - `latents.csv` ([`latents_table`], VAE): `split,row,label,mu_z1..mu_zD,logvar_z1..logvar_zD`: each input's
//!   q(z | x), training inputs first (`split` is `train` or `test`, `row` counts within it).
//! - `stages.csv` ([`stages_table`], flow): `direction,stage,point,x_std,y_std`: Gaussian samples pushed forward
//!   (`generation`) and the data pulled back (`inference`) at every stage, in standardised data units.
//! - `density.csv` ([`density_table`], flow): `stage,resolution,row,col,x_std,y_std,density,layer_log_det`: each
//!   stage's density at the cell centres (per standardised unit²; row 1 at the bottom) and the log|det| of the layer
//!   that made that stage (0 at stage 0).
//!
//! Files are written atomically (a temporary file in the same folder, renamed over the target). Used by `cli` and
//! `ui`; uses the views' plain data, never a tensor held by the UI.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::data::prepare::{OutputKind, Prepared};
use crate::models::bnn::{
    BnnLayer, BnnView, Predictive, PredictiveRows, RELIABILITY_BINS, predictive_cpu, reliability,
};
use crate::models::stats::{Histogram, INTERVAL_LEVELS, freedman_diaconis_bins};
use crate::models::vae::vae_inputs;
use crate::train::flow_view::{FlowGeometry, StageGrid};
use crate::train::runfile::write_atomically;
use crate::train::{EpochRecord, ModelView};

/// File names `--export DIR` writes (each lab writes the ones that fit it).
pub const HISTORY_FILE: &str = "history.csv";
/// The BNN's weight histograms.
pub const WEIGHT_HISTOGRAMS_FILE: &str = "weights_histograms.csv";
/// The BNN's predictive table of the test rows.
pub const PREDICTIVE_FILE: &str = "predictive.csv";
/// The BNN's interval coverage (regression).
pub const CALIBRATION_FILE: &str = "calibration.csv";
/// The BNN's reliability diagram (classification).
pub const RELIABILITY_FILE: &str = "reliability.csv";
/// The VAE's latent coordinates.
pub const LATENTS_FILE: &str = "latents.csv";
/// The flow's points at every stage.
pub const STAGES_FILE: &str = "stages.csv";
/// The flow's density grids.
pub const DENSITY_FILE: &str = "density.csv";

/// Cells per side of the flow's density grids in `--export`.
pub const FLOW_EXPORT_RESOLUTION: usize = 128;

/// Why an export failed; names the file or folder.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Writing the file failed (the old file, if any, is untouched).
    #[error("{}: cannot write the CSV file: {source}", file.display())]
    Write {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The folder could not be created.
    #[error("{}: cannot create the export folder: {source}", dir.display())]
    Folder {
        /// The folder.
        dir: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The data to export could not be computed.
    #[error("cannot compute {what} for the export: {message}")]
    Compute {
        /// What.
        what: &'static str,
        /// Why.
        message: String,
    },
}

/// A table ready to be written as CSV: a header and rows of cells (numbers already as round-trip text).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportTable {
    /// Column names.
    pub header: Vec<String>,
    /// Rows, each as long as the header.
    pub rows: Vec<Vec<String>>,
}

impl ExportTable {
    fn new(header: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self { header: header.into_iter().map(Into::into).collect(), rows: Vec::new() }
    }

    /// Writes the header and the rows as CSV to `out`.
    pub fn write_to<W: std::io::Write>(&self, out: W) -> std::io::Result<()> {
        let mut writer = csv::Writer::from_writer(out);
        writer.write_record(&self.header)?;
        for row in &self.rows {
            writer.write_record(row)?;
        }
        writer.flush()
    }

    /// Writes the table to `path` atomically (a temporary file in the same folder, then a rename).
    pub fn write(&self, path: &Path) -> Result<(), ExportError> {
        write_atomically(path, |file| self.write_to(file))
            .map_err(|source| ExportError::Write { file: path.to_owned(), source })
    }
}

/// A number as the shortest text that reads back to the same value.
fn num(v: impl std::fmt::Display) -> String {
    v.to_string()
}

// The rows a run trains and tests on.

/// The rows as the model sees them, for `train … --export-split DIR`: `train.csv` and `test.csv`, each with the
/// feature columns by name (standardised as the run standardised them) and, where the data has one, the output
/// column (a regression target standardised, a label as its class index); and `split.csv`
/// (`column,mean,scale`), each feature's standardisation, so that `value * scale + mean` gives back the file's
/// units. A reference implementation that trains on these files sees exactly the run's rows.
#[must_use]
pub fn split_tables(data: &Prepared) -> [(&'static str, ExportTable); 3] {
    let d = data.n_features();
    let mut header: Vec<String> = data.feature_names.clone();
    if let Some((name, _)) = &data.output {
        header.push(name.clone());
    }
    let rows = |x: &[f32], y: &[f32]| -> Vec<Vec<String>> {
        x.chunks_exact(d.max(1))
            .enumerate()
            .map(|(i, row)| row.iter().map(|&v| num(v)).chain(y.get(i).map(|&v| num(v))).collect())
            .collect()
    };
    let y_or_none = |y: &'_ [f32]| -> Vec<f32> { if data.output.is_some() { y.to_vec() } else { Vec::new() } };
    let train = ExportTable { header: header.clone(), rows: rows(&data.x_train, &y_or_none(&data.y_train)) };
    let test = ExportTable { header, rows: rows(&data.x_test, &y_or_none(&data.y_test)) };
    let mut split = ExportTable::new(["column", "mean", "scale"]);
    for ((name, mean), scale) in data.feature_names.iter().zip(&data.feature_mean).zip(&data.feature_scale) {
        split.rows.push(vec![name.clone(), num(mean), num(scale)]);
    }
    [("train.csv", train), ("test.csv", test), ("split.csv", split)]
}

/// Writes [`split_tables`] into `dir` (created if missing) and returns the files' paths.
pub fn export_split(dir: &Path, data: &Prepared) -> Result<Vec<PathBuf>, ExportError> {
    std::fs::create_dir_all(dir).map_err(|source| ExportError::Folder { dir: dir.to_owned(), source })?;
    let mut written = Vec::new();
    for (name, table) in split_tables(data) {
        let path = dir.join(name);
        table.write(&path)?;
        written.push(path);
    }
    Ok(written)
}

/// The order in which a run's epochs take the training rows, for `train flow --export-orders PATH`: one line per
/// row taken, `epoch,minibatch,row` (epoch and minibatch counted from 1, in the order they come; `row` counts the
/// rows of [`export_split`]'s `train.csv` from 0), so that a reference implementation can take the run's own
/// minibatches, in the run's order.
#[must_use]
pub fn orders_table(orders: &[Vec<u32>], batch_size: usize) -> ExportTable {
    let mut table = ExportTable::new(["epoch", "minibatch", "row"]);
    let batch_size = batch_size.max(1);
    for (e, order) in orders.iter().enumerate() {
        for (position, row) in order.iter().enumerate() {
            table.rows.push(vec![num(e + 1), num(position / batch_size + 1), num(row)]);
        }
    }
    table
}

// Loss curves and metrics.

/// One row per epoch: `epoch`, then every metric that any epoch recorded, in the order they first appear (an
/// epoch without a metric leaves its cell empty).
#[must_use]
pub fn history_table(history: &[EpochRecord]) -> ExportTable {
    let mut names: Vec<&str> = Vec::new();
    for record in history {
        for (name, _) in &record.metrics {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    let mut table = ExportTable::new(std::iter::once("epoch").chain(names.iter().copied()));
    for record in history {
        let mut row = vec![num(record.epoch)];
        row.extend(names.iter().map(|name| record.get(name).map(num).unwrap_or_default()));
        table.rows.push(row);
    }
    table
}

// The BNN's weight histograms (shared with the weights page, so the export is what it draws).

/// What a weight histogram counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightQuantity {
    /// Posterior means.
    Means,
    /// Posterior standard deviations.
    Sds,
    /// Weights drawn from the posterior.
    Samples,
}

impl WeightQuantity {
    /// In the order the weights page offers them.
    pub const ALL: [Self; 3] = [Self::Samples, Self::Means, Self::Sds];

    /// In words, for the window.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Means => "posterior means",
            Self::Sds => "posterior standard deviations",
            Self::Samples => "sampled weights",
        }
    }

    /// The `quantity` cell of `weights_histograms.csv`.
    #[must_use]
    pub fn csv_name(self) -> &'static str {
        match self {
            Self::Means => "mean",
            Self::Sds => "sd",
            Self::Samples => "sample",
        }
    }
}

/// Draws per weight for the "sampled weights" histogram.
pub const DRAWS_PER_WEIGHT: usize = 20;
/// Epochs in the stacked histogram view at most.
pub const STACKED_EPOCHS: usize = 10;

/// The values a histogram counts for one layer (its weights; the biases are left out). Samples are seeded by
/// `seed` (the weights page uses the epoch).
#[must_use]
pub fn weight_values(layer: &BnnLayer, quantity: WeightQuantity, seed: u64) -> Vec<f32> {
    let n_w = layer.n_in * layer.n_out;
    let (mean, sd) = (&layer.mean[..n_w.min(layer.mean.len())], &layer.sd[..n_w.min(layer.sd.len())]);
    match quantity {
        WeightQuantity::Means => mean.to_vec(),
        WeightQuantity::Sds => sd.to_vec(),
        WeightQuantity::Samples => {
            // Each weight from its marginal N(mean, sd²): the pooled histogram depends only on the marginals,
            // so this is exact for full covariances too.
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut out = Vec::with_capacity(mean.len() * DRAWS_PER_WEIGHT);
            for _ in 0..DRAWS_PER_WEIGHT {
                out.extend(mean.iter().zip(sd).map(|(m, s)| {
                    let e: f32 = StandardNormal.sample(&mut rng);
                    m + s * e
                }));
            }
            out
        }
    }
}

/// A range that holds the values of every recorded epoch (so bins stay put while scrubbing), and the prior's
/// bulk for means and samples.
#[must_use]
pub fn weight_range(view: &BnnView, layer: usize, quantity: WeightQuantity) -> (f64, f64) {
    let prior_sd = view.params.prior_sd;
    let (mut lo, mut hi) = match quantity {
        WeightQuantity::Sds => (0.0, prior_sd * 1.1),
        _ => (-3.0 * prior_sd, 3.0 * prior_sd),
    };
    // Runs every frame over the whole history, so no draws here: sampled weights lie within 5 sd of their mean
    // (all but about one in two million draws).
    let spread = if quantity == WeightQuantity::Samples { 5.0 } else { 0.0 };
    for (_, params) in view.history.iter() {
        let Some(l) = params.layers.get(layer) else { continue };
        let n_w = l.n_in * l.n_out;
        for (&m, &sd) in l.mean.iter().zip(&l.sd).take(n_w) {
            let (m, sd) = (f64::from(m), f64::from(sd));
            let (a, b) = if quantity == WeightQuantity::Sds { (sd, sd) } else { (m - spread * sd, m + spread * sd) };
            lo = lo.min(a);
            hi = hi.max(b);
        }
    }
    (lo, hi)
}

/// One layer's histogram of one quantity at one recorded epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightHistogram {
    /// The epoch.
    pub epoch: usize,
    /// The layer, from 0.
    pub layer: usize,
    /// What it counts.
    pub quantity: WeightQuantity,
    /// Edges and counts.
    pub histogram: Histogram,
}

/// The weights page's "one epoch" histogram: layer `layer` at history entry `index` (the newest entry is the
/// current model, with its live parameters), Freedman–Diaconis bins over [`weight_range`].
#[must_use]
pub fn epoch_histogram(
    view: &BnnView,
    layer: usize,
    quantity: WeightQuantity,
    index: usize,
) -> Option<WeightHistogram> {
    let last = view.history.len().checked_sub(1)?;
    let (epoch, at) = view.history.get(index)?;
    let params = if index == last { &view.params } else { at };
    let values = weight_values(params.layers.get(layer)?, quantity, *epoch as u64);
    let (lo, hi) = weight_range(view, layer, quantity);
    let bins = freedman_diaconis_bins(&values, lo, hi);
    Some(WeightHistogram { epoch: *epoch, layer, quantity, histogram: Histogram::new(&values, lo, hi, bins) })
}

/// The history entries the stacked view shows: all of them up to [`STACKED_EPOCHS`], else that many spread
/// from the first to the last.
#[must_use]
pub fn stacked_picks(n: usize) -> Vec<usize> {
    if n <= STACKED_EPOCHS {
        (0..n).collect()
    } else {
        let mut v: Vec<usize> = (0..STACKED_EPOCHS).map(|i| i * (n - 1) / (STACKED_EPOCHS - 1)).collect();
        v.dedup();
        v
    }
}

/// The weights page's stacked view: the [`stacked_picks`] of the history, all with the bin count of the latest
/// values over [`weight_range`] (30 when there are none).
#[must_use]
pub fn stacked_histograms(view: &BnnView, layer: usize, quantity: WeightQuantity) -> Vec<WeightHistogram> {
    let history = &view.history;
    let (lo, hi) = weight_range(view, layer, quantity);
    let latest = history.last().and_then(|(e, p)| p.layers.get(layer).map(|l| weight_values(l, quantity, *e as u64)));
    let bins = latest.map_or(30, |v| freedman_diaconis_bins(&v, lo, hi));
    stacked_picks(history.len())
        .into_iter()
        .filter_map(|i| {
            let (epoch, params) = history.get(i)?;
            let l = params.layers.get(layer)?;
            let histogram = Histogram::new(&weight_values(l, quantity, *epoch as u64), lo, hi, bins);
            Some(WeightHistogram { epoch: *epoch, layer, quantity, histogram })
        })
        .collect()
}

/// Every recorded epoch's histogram of every layer and quantity, as the "one epoch" view draws each.
#[must_use]
pub fn all_weight_histograms(view: &BnnView) -> Vec<WeightHistogram> {
    let mut out = Vec::new();
    for index in 0..view.history.len() {
        for layer in 0..view.params.layers.len() {
            out.extend(WeightQuantity::ALL.into_iter().filter_map(|q| epoch_histogram(view, layer, q, index)));
        }
    }
    out
}

/// `epoch,layer,quantity,bin,bin_lo,bin_hi,count,density`: one row per bin.
#[must_use]
pub fn weight_histograms_table(histograms: &[WeightHistogram]) -> ExportTable {
    let mut table = ExportTable::new(["epoch", "layer", "quantity", "bin", "bin_lo", "bin_hi", "count", "density"]);
    for h in histograms {
        let densities = h.histogram.densities();
        for (k, (&count, density)) in h.histogram.counts.iter().zip(densities).enumerate() {
            let (Some(&lo), Some(&hi)) = (h.histogram.edges.get(k), h.histogram.edges.get(k + 1)) else { continue };
            table.rows.push(vec![
                num(h.epoch),
                num(h.layer + 1),
                h.quantity.csv_name().to_owned(),
                num(k + 1),
                num(lo),
                num(hi),
                num(count),
                num(density),
            ]);
        }
    }
    table
}

// The BNN's predictions.

/// The predictive table of the test rows (see the module's docs for the columns). `classes` are the data's class
/// values (classification), by class index; a class without one is named by its index.
#[must_use]
pub fn predictive_table(predictive: &Predictive, classes: &[String]) -> ExportTable {
    match &predictive.rows {
        PredictiveRows::Regression(rows) => {
            let mut header: Vec<String> =
                ["test_row", "actual", "mean", "min", "max", "range", "epistemic_sd", "aleatoric_sd"]
                    .map(String::from)
                    .to_vec();
            for (level, _) in INTERVAL_LEVELS {
                let percent = (level * 100.0).round();
                header.extend([format!("lo_{percent}"), format!("hi_{percent}")]);
            }
            let mut table = ExportTable { header, rows: Vec::with_capacity(rows.len()) };
            for (i, r) in rows.iter().enumerate() {
                let mut row = vec![
                    num(i + 1),
                    num(r.actual),
                    num(r.mean),
                    num(r.min),
                    num(r.max),
                    num(r.range()),
                    num(r.epistemic_sd),
                    r.aleatoric_sd.map(num).unwrap_or_default(),
                ];
                for (lo, hi) in r.intervals {
                    row.extend([num(lo), num(hi)]);
                }
                table.rows.push(row);
            }
            table
        }
        PredictiveRows::Classes(rows) => {
            let n_classes = rows.iter().map(|r| r.probabilities.len()).max().unwrap_or(classes.len());
            let name = |k: usize| classes.get(k).cloned().unwrap_or_else(|| num(k));
            let mut header: Vec<String> =
                ["test_row", "actual", "predicted", "p_predicted", "p_predicted_min", "p_predicted_max"]
                    .map(String::from)
                    .to_vec();
            header.extend((0..n_classes).map(|k| format!("p_{}", name(k))));
            let mut table = ExportTable { header, rows: Vec::with_capacity(rows.len()) };
            for (i, r) in rows.iter().enumerate() {
                let mut row = vec![
                    num(i + 1),
                    name(r.actual),
                    name(r.predicted),
                    r.probabilities.get(r.predicted).map(num).unwrap_or_default(),
                    num(r.min),
                    num(r.max),
                ];
                row.extend((0..n_classes).map(|k| r.probabilities.get(k).map(num).unwrap_or_default()));
                table.rows.push(row);
            }
            table
        }
    }
}

/// `nominal_level,observed_coverage`: the share of test rows inside each central interval (regression; no rows
/// for classification).
#[must_use]
pub fn calibration_table(predictive: &Predictive) -> ExportTable {
    let mut table = ExportTable::new(["nominal_level", "observed_coverage"]);
    table.rows = predictive.coverage.iter().map(|(nominal, observed)| vec![num(nominal), num(observed)]).collect();
    table
}

/// `bin,confidence_lo,confidence_hi,rows,mean_confidence,accuracy`: the reliability diagram of class predictions
/// ([`RELIABILITY_BINS`] bins of confidence; no rows for a regression).
#[must_use]
pub fn reliability_table(predictive: &Predictive) -> ExportTable {
    let mut table = ExportTable::new(["bin", "confidence_lo", "confidence_hi", "rows", "mean_confidence", "accuracy"]);
    if let PredictiveRows::Classes(rows) = &predictive.rows {
        let optional = |v: f64| if v.is_nan() { String::new() } else { num(v) };
        table.rows = reliability(rows, RELIABILITY_BINS)
            .bins
            .iter()
            .enumerate()
            .map(|(b, bin)| {
                vec![
                    (b + 1).to_string(),
                    num(bin.lo),
                    num(bin.hi),
                    bin.rows.to_string(),
                    optional(bin.confidence),
                    optional(bin.accuracy),
                ]
            })
            .collect();
    }
    table
}

/// The data's classes by class index as they are written (a label's numbers, a text column's categories); empty
/// for a regression target.
#[must_use]
pub fn class_names(data: &Prepared) -> Vec<String> {
    data.output.as_ref().map(|(_, kind)| kind.class_names()).unwrap_or_default()
}

// The VAE's latent space.

/// Each input's q(z | x): `mu` and `logvar` are `[n, latent]`, the first `n_train` rows the training inputs;
/// `labels` holds each input's label or target as written (empty when the data has none).
#[must_use]
pub fn latents_table(mu: &[f32], logvar: &[f32], latent: usize, n_train: usize, labels: &[String]) -> ExportTable {
    let mut header = vec!["split".to_owned(), "row".to_owned(), "label".to_owned()];
    header.extend((1..=latent).map(|j| format!("mu_z{j}")));
    header.extend((1..=latent).map(|j| format!("logvar_z{j}")));
    let mut table = ExportTable { header, rows: Vec::new() };
    if latent == 0 {
        return table;
    }
    for (i, (m, lv)) in mu.chunks_exact(latent).zip(logvar.chunks_exact(latent)).enumerate() {
        let (split, row) = if i < n_train { ("train", i + 1) } else { ("test", i - n_train + 1) };
        let mut cells = vec![split.to_owned(), num(row), labels.get(i).cloned().unwrap_or_default()];
        cells.extend(m.iter().chain(lv).map(num));
        table.rows.push(cells);
    }
    table
}

/// Every input's label or target value as written, training rows first: a class's name (its number, or a text
/// column's category), a regression target's value (empty when the data has neither).
#[must_use]
pub fn input_labels(data: &Prepared) -> Vec<String> {
    let y = data.y_train.iter().chain(&data.y_test);
    match &data.output {
        Some((_, kind @ OutputKind::Classes { .. })) => y.map(|&c| kind.class_name(c as usize)).collect(),
        Some((_, OutputKind::Regression)) => y.map(num).collect(),
        None => Vec::new(),
    }
}

// The flow's stages and density grids.

/// `direction,stage,point,x_std,y_std`: every stage's points, generation first.
#[must_use]
pub fn stages_table(geometry: &FlowGeometry) -> ExportTable {
    let mut table = ExportTable::new(["direction", "stage", "point", "x_std", "y_std"]);
    for (direction, stages) in [("generation", &geometry.generation), ("inference", &geometry.inference)] {
        for (stage, points) in stages.iter().enumerate() {
            for (i, p) in points.iter().enumerate() {
                table.rows.push(vec![direction.to_owned(), num(stage), num(i + 1), num(p[0]), num(p[1])]);
            }
        }
    }
    table
}

/// `stage,resolution,row,col,x_std,y_std,density,layer_log_det`: one row per cell of each grid, rows from the
/// bottom; the cell centres are those the grid was computed at.
#[must_use]
pub fn density_table(grids: &[&StageGrid]) -> ExportTable {
    let mut table =
        ExportTable::new(["stage", "resolution", "row", "col", "x_std", "y_std", "density", "layer_log_det"]);
    for grid in grids {
        let n = grid.resolution;
        let centres = crate::models::flow::grid_points(n, grid.bounds);
        for (k, centre) in centres.chunks_exact(2).enumerate() {
            let (Some(density), Some(log_det)) = (grid.density.get(k), grid.layer_log_det.get(k)) else { break };
            table.rows.push(vec![
                num(grid.stage),
                num(n),
                num(k / n + 1),
                num(k % n + 1),
                num(centre[0]),
                num(centre[1]),
                num(density),
                num(log_det),
            ]);
        }
    }
    table
}

// `train … --export DIR`.

/// What `--export` needs besides the model and the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportOptions {
    /// Monte Carlo passes for the BNN's predictive table.
    pub bnn_samples: usize,
    /// Cells per side of the flow's density grids.
    pub flow_resolution: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self { bnn_samples: 100, flow_resolution: FLOW_EXPORT_RESOLUTION }
    }
}

/// Writes the CSVs of a run into `dir` (created if missing): [`HISTORY_FILE`] for every lab; the BNN's
/// [`WEIGHT_HISTOGRAMS_FILE`], [`PREDICTIVE_FILE`] (the test rows, seeded by the model's step as in the window)
/// and, for regression, [`CALIBRATION_FILE`] (for classes [`RELIABILITY_FILE`]); the VAE's [`LATENTS_FILE`]; the flow's [`STAGES_FILE`] and
/// [`DENSITY_FILE`]. `data` is the run's data prepared as for training. Returns the paths written, in that order.
pub fn export_run(
    dir: &Path,
    history: &[EpochRecord],
    model: &ModelView,
    data: &Prepared,
    options: ExportOptions,
) -> Result<Vec<PathBuf>, ExportError> {
    std::fs::create_dir_all(dir).map_err(|source| ExportError::Folder { dir: dir.to_owned(), source })?;
    let mut tables = vec![(HISTORY_FILE, history_table(history))];
    match model {
        ModelView::Bnn { step, view } => {
            tables.push((WEIGHT_HISTOGRAMS_FILE, weight_histograms_table(&all_weight_histograms(view))));
            let predictive =
                predictive_cpu(&view.params, &data.x_test, &data.y_test, options.bnn_samples.max(1), *step);
            tables.push((PREDICTIVE_FILE, predictive_table(&predictive, &class_names(data))));
            if predictive.coverage.is_empty() {
                tables.push((RELIABILITY_FILE, reliability_table(&predictive)));
            } else {
                tables.push((CALIBRATION_FILE, calibration_table(&predictive)));
            }
        }
        ModelView::Vae { view, .. } => {
            let params = &view.params;
            let (mut inputs, test, _) = vae_inputs(data, params.likelihood);
            inputs.extend(test);
            let mut cpu = crate::compute::CandleBackend::new();
            let (mu, logvar) = crate::train::vae_view::encode_latents(&mut cpu, params, &inputs)
                .map_err(|e| ExportError::Compute { what: "the latent means", message: e.to_string() })?;
            tables
                .push((LATENTS_FILE, latents_table(&mu, &logvar, params.latent, data.n_train(), &input_labels(data))));
        }
        ModelView::Flow { step, params } => {
            let points = Arc::new(crate::train::flow_view::view_points(data));
            let (geometry, grids) =
                crate::train::flow_view::stage_views(params, *step, &points, options.flow_resolution.max(1))
                    .map_err(|e| ExportError::Compute { what: "the flow's stages", message: e.to_string() })?;
            tables.push((STAGES_FILE, stages_table(&geometry)));
            tables.push((DENSITY_FILE, density_table(&grids.iter().collect::<Vec<_>>())));
        }
    }
    let mut written = Vec::with_capacity(tables.len());
    for (name, table) in tables {
        let path = dir.join(name);
        table.write(&path)?;
        written.push(path);
    }
    Ok(written)
}
