//! Data exports (issue 7, "Export"): every CSV reads back (with the `csv` crate) to exactly the numbers it was
//! written from and has its documented header; `train … --export DIR` writes each lab's files for a tiny run; the
//! window's "Export data…" path writes the file on its thread and reports it.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bayes_explorer::Lab;
use bayes_explorer::cli::{Cli, run};
use bayes_explorer::compute::Activation;
use bayes_explorer::models::bnn::{
    BnnLayer, BnnParams, BnnTask, BnnView, Head, Posterior, PredictiveRows, RELIABILITY_BINS, reliability, summarize,
};
use bayes_explorer::models::flow::grid_points;
use bayes_explorer::models::stats::Histogram;
use bayes_explorer::train::EpochRecord;
use bayes_explorer::train::export::{
    CALIBRATION_FILE, DENSITY_FILE, ExportTable, HISTORY_FILE, LATENTS_FILE, PREDICTIVE_FILE, RELIABILITY_FILE,
    STAGES_FILE, WEIGHT_HISTOGRAMS_FILE, WeightQuantity, all_weight_histograms, calibration_table, density_table,
    epoch_histogram, history_table, latents_table, predictive_table, reliability_table, stacked_histograms,
    stages_table, weight_histograms_table,
};
use bayes_explorer::train::flow_view::{FlowGeometry, N_SAMPLES, StageGrid};
use bayes_explorer::ui::export::ExportKind;
use bayes_explorer::ui::{BayesExplorerApp, Settings};
use clap::Parser;
use egui_kittest::kittest::Queryable as _;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Writes `table` to `dir/name` and reads it back with the `csv` crate: (header, rows).
fn round_trip(table: &ExportTable, dir: &Path, name: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let path = dir.join(name);
    table.write(&path).expect("the export writes");
    read_csv(&path)
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = reader.headers().expect("a header row").iter().map(str::to_owned).collect();
    let rows = reader.records().map(|r| r.expect("a CSV row").iter().map(str::to_owned).collect()).collect();
    (header, rows)
}

fn f32_cell(cell: &str) -> f32 {
    cell.parse().unwrap_or_else(|e| panic!("{cell:?} is not an f32: {e}"))
}

fn f64_cell(cell: &str) -> f64 {
    cell.parse().unwrap_or_else(|e| panic!("{cell:?} is not an f64: {e}"))
}

fn usize_cell(cell: &str) -> usize {
    cell.parse().unwrap_or_else(|e| panic!("{cell:?} is not a count: {e}"))
}

/// Same value to the last bit (NaN equals NaN).
fn same_f32(read: f32, written: f32) -> bool {
    read.to_bits() == written.to_bits() || (read.is_nan() && written.is_nan())
}

fn same_f64(read: f64, written: f64) -> bool {
    read.to_bits() == written.to_bits() || (read.is_nan() && written.is_nan())
}

/// Awkward f32 values: thirds, tiny and huge magnitudes, subnormals, negative zero, the non-finite ones.
fn awkward_f32(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    let special = [1.0 / 3.0, -2.0 / 3.0, 1e-30, 3.4e38, f32::MIN_POSITIVE / 3.0, -0.0, 0.1, f32::EPSILON];
    (0..n)
        .map(|i| match special.get(i) {
            Some(&v) => v,
            None => rng.random_range(-1.0f32..1.0) * 10f32.powi(rng.random_range(-8..8)),
        })
        .collect()
}

#[test]
fn history_reads_back_to_every_metric_of_every_epoch() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let history = vec![
        EpochRecord { epoch: 1, metrics: vec![("loss".into(), 1.0 / 3.0), ("test_rmse".into(), 0.1 + 0.2)] },
        EpochRecord {
            epoch: 2,
            metrics: vec![("loss".into(), 1e-300), ("test_rmse".into(), f64::NAN), ("kl_dim_1".into(), 7e200)],
        },
        EpochRecord { epoch: 5, metrics: vec![("loss".into(), f64::INFINITY), ("test_rmse".into(), -0.0)] },
    ];
    let (header, rows) = round_trip(&history_table(&history), dir.path(), HISTORY_FILE);
    assert_eq!(header, ["epoch", "loss", "test_rmse", "kl_dim_1"]);
    assert_eq!(rows.len(), history.len());
    for (row, record) in rows.iter().zip(&history) {
        assert_eq!(usize_cell(&row[0]), record.epoch);
        for (name, cell) in header.iter().zip(row).skip(1) {
            match record.get(name) {
                Some(v) => assert!(same_f64(f64_cell(cell), v), "epoch {} {name}: {cell} for {v}", record.epoch),
                None => assert!(cell.is_empty(), "epoch {} has no {name}, yet {cell:?}", record.epoch),
            }
        }
    }
}

/// A two-layer mean-field BNN with three recorded epochs of random posteriors.
fn bnn_view(rng: &mut ChaCha8Rng) -> BnnView {
    let mut posterior = |scale: f32| -> BnnParams {
        let layer = |n_in: usize, n_out: usize, rng: &mut ChaCha8Rng| {
            let k = n_in * n_out + n_out;
            BnnLayer {
                n_in,
                n_out,
                posterior: Posterior::MeanField,
                mean: (0..k).map(|_| rng.random_range(-scale..scale)).collect(),
                sd: (0..k).map(|_| rng.random_range(0.01..0.5)).collect(),
                scale_tril: Vec::new(),
                activation: Activation::Sigmoid,
            }
        };
        BnnParams {
            layers: vec![layer(5, 7, rng), layer(7, 1, rng)],
            task: BnnTask::Regression(Head::Mse),
            prior_sd: 1.0,
        }
    };
    let history: Vec<(usize, Arc<BnnParams>)> =
        [(0, 0.1), (1, 1.0), (4, 2.5)].into_iter().map(|(e, s)| (e, Arc::new(posterior(s)))).collect();
    // The newest entry of the history is the model now (the trainer keeps the full scales in `params` only).
    let params = Arc::clone(&history[2].1);
    BnnView { params, history: Arc::new(history) }
}

#[test]
fn weight_histograms_read_back_to_their_edges_counts_and_densities() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let view = bnn_view(&mut ChaCha8Rng::seed_from_u64(1));
    let histograms = all_weight_histograms(&view);
    // Every recorded epoch, both layers, the three quantities.
    assert_eq!(histograms.len(), 3 * 2 * 3);
    let (header, rows) = round_trip(&weight_histograms_table(&histograms), dir.path(), WEIGHT_HISTOGRAMS_FILE);
    assert_eq!(header, ["epoch", "layer", "quantity", "bin", "bin_lo", "bin_hi", "count", "density"]);
    assert_eq!(rows.len(), histograms.iter().map(|h| h.histogram.counts.len()).sum::<usize>());
    let mut rows = rows.iter();
    for h in &histograms {
        let densities = h.histogram.densities();
        for (k, &count) in h.histogram.counts.iter().enumerate() {
            let row = rows.next().expect("a row per bin");
            assert_eq!(usize_cell(&row[0]), h.epoch);
            assert_eq!(usize_cell(&row[1]), h.layer + 1);
            assert_eq!(row[2], h.quantity.csv_name());
            assert_eq!(usize_cell(&row[3]), k + 1);
            assert!(same_f64(f64_cell(&row[4]), h.histogram.edges[k]));
            assert!(same_f64(f64_cell(&row[5]), h.histogram.edges[k + 1]));
            assert_eq!(usize_cell(&row[6]), count);
            assert!(same_f64(f64_cell(&row[7]), densities[k]));
        }
        // The weights are counted, the biases left out; 20 draws per weight for the samples.
        let layer = &view.params.layers[h.layer];
        let n_weights = layer.n_in * layer.n_out;
        let expected = if h.quantity == WeightQuantity::Samples { 20 * n_weights } else { n_weights };
        assert_eq!(h.histogram.total(), expected, "epoch {} layer {} {:?}", h.epoch, h.layer, h.quantity);
    }
    // The newest epoch is the live model, as the weights page shows it.
    let newest = epoch_histogram(&view, 0, WeightQuantity::Means, 2).expect("the newest epoch");
    let (lo, hi) = (newest.histogram.edges[0], *newest.histogram.edges.last().expect("edges"));
    let live: Vec<f32> = view.params.layers[0].mean[..35].to_vec();
    assert_eq!(newest.histogram, Histogram::new(&live, lo, hi, newest.histogram.counts.len()));
    // The stack shares one binning.
    let stack = stacked_histograms(&view, 1, WeightQuantity::Sds);
    assert_eq!(stack.len(), 3);
    assert!(stack.iter().all(|h| h.histogram.edges == stack[0].histogram.edges));
}

#[test]
fn predictive_tables_read_back_to_every_row_of_both_heads_and_of_classes() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (n_rows, n_samples) = (23, 17);
    let actual: Vec<f32> = (0..n_rows).map(|_| rng.random_range(3.0f32..8.0).round()).collect();
    for head in [Head::Mse, Head::Normal] {
        let task = BnnTask::Regression(head);
        let samples: Vec<f32> = (0..n_samples * n_rows * task.n_out()).map(|_| rng.random_range(2.0f32..9.0)).collect();
        let predictive = summarize(task, &samples, n_samples, &actual);
        let PredictiveRows::Regression(expected) = &predictive.rows else { panic!("regression rows") };
        let (header, rows) = round_trip(&predictive_table(&predictive, &[]), dir.path(), PREDICTIVE_FILE);
        assert_eq!(
            header,
            [
                "test_row",
                "actual",
                "mean",
                "min",
                "max",
                "range",
                "epistemic_sd",
                "aleatoric_sd",
                "lo_50",
                "hi_50",
                "lo_80",
                "hi_80",
                "lo_95",
                "hi_95"
            ]
        );
        assert_eq!(rows.len(), n_rows);
        for (i, (row, r)) in rows.iter().zip(expected).enumerate() {
            assert_eq!(usize_cell(&row[0]), i + 1);
            let values = [r.actual, r.mean, r.min, r.max, r.range(), r.epistemic_sd];
            for (cell, &v) in row[1..7].iter().zip(&values) {
                assert!(same_f32(f32_cell(cell), v), "row {i}: {cell} for {v}");
            }
            match r.aleatoric_sd {
                Some(a) => assert!(same_f32(f32_cell(&row[7]), a)),
                None => assert!(row[7].is_empty()),
            }
            for (k, (lo, hi)) in r.intervals.iter().enumerate() {
                assert!(same_f32(f32_cell(&row[8 + 2 * k]), *lo));
                assert!(same_f32(f32_cell(&row[9 + 2 * k]), *hi));
            }
        }
        assert_eq!(head == Head::Normal, !rows[0][7].is_empty(), "aleatoric sd only for the Normal head");
        let (header, rows) = round_trip(&calibration_table(&predictive), dir.path(), CALIBRATION_FILE);
        assert_eq!(header, ["nominal_level", "observed_coverage"]);
        assert_eq!(rows.len(), predictive.coverage.len());
        for (row, (nominal, observed)) in rows.iter().zip(&predictive.coverage) {
            assert!(same_f64(f64_cell(&row[0]), *nominal) && same_f64(f64_cell(&row[1]), *observed));
        }
    }
    // Three classes, named as the data writes them.
    let task = BnnTask::Classification { n_classes: 3 };
    let labels: Vec<f32> = (0..n_rows).map(|i| (i % 3) as f32).collect();
    let logits: Vec<f32> = (0..n_samples * n_rows * 3).map(|_| rng.random_range(-3.0f32..3.0)).collect();
    let predictive = summarize(task, &logits, n_samples, &labels);
    let PredictiveRows::Classes(expected) = &predictive.rows else { panic!("class rows") };
    // The reliability diagram: ten bins of confidence, their rows counted once, empty bins with empty cells.
    let (header, rows) = round_trip(&reliability_table(&predictive), dir.path(), RELIABILITY_FILE);
    assert_eq!(header, ["bin", "confidence_lo", "confidence_hi", "rows", "mean_confidence", "accuracy"]);
    let diagram = reliability(expected, RELIABILITY_BINS);
    assert_eq!(rows.len(), RELIABILITY_BINS);
    assert_eq!(rows.iter().map(|r| usize_cell(&r[3])).sum::<usize>(), n_rows, "every test row in one bin");
    for (b, (row, bin)) in rows.iter().zip(&diagram.bins).enumerate() {
        assert_eq!(usize_cell(&row[0]), b + 1);
        assert!(same_f64(f64_cell(&row[1]), bin.lo) && same_f64(f64_cell(&row[2]), bin.hi));
        assert_eq!(usize_cell(&row[3]), bin.rows);
        if bin.rows == 0 {
            assert!(row[4].is_empty() && row[5].is_empty(), "an empty bin has no figures");
        } else {
            assert!(same_f64(f64_cell(&row[4]), bin.confidence) && same_f64(f64_cell(&row[5]), bin.accuracy));
        }
    }
    // Classes by their names: a label's numbers, or a text column's categories (one with a comma in it).
    let classes = ["3", "versicolor", "Gentoo, adult"].map(String::from);
    let (header, rows) = round_trip(&predictive_table(&predictive, &classes), dir.path(), PREDICTIVE_FILE);
    assert_eq!(
        header,
        [
            "test_row",
            "actual",
            "predicted",
            "p_predicted",
            "p_predicted_min",
            "p_predicted_max",
            "p_3",
            "p_versicolor",
            "p_Gentoo, adult"
        ]
    );
    for (row, r) in rows.iter().zip(expected) {
        assert_eq!((&row[1], &row[2]), (&classes[r.actual], &classes[r.predicted]));
        assert!(same_f32(f32_cell(&row[3]), r.probabilities[r.predicted]));
        assert!(same_f32(f32_cell(&row[4]), r.min) && same_f32(f32_cell(&row[5]), r.max));
        for (cell, &p) in row[6..].iter().zip(&r.probabilities) {
            assert!(same_f32(f32_cell(cell), p));
        }
    }
}

#[test]
fn latents_read_back_to_every_mean_and_log_variance_with_split_and_label() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (n, latent, n_train) = (11, 3, 8);
    let mu = awkward_f32(&mut rng, n * latent);
    let logvar: Vec<f32> = (0..n * latent).map(|_| rng.random_range(-9.0f32..1.0)).collect();
    let labels: Vec<String> =
        (0..n).map(|i| if i % 3 == 0 { "setosa".to_owned() } else { ((i % 10) as f32 * 0.5).to_string() }).collect();
    let (header, rows) = round_trip(&latents_table(&mu, &logvar, latent, n_train, &labels), dir.path(), LATENTS_FILE);
    assert_eq!(header, ["split", "row", "label", "mu_z1", "mu_z2", "mu_z3", "logvar_z1", "logvar_z2", "logvar_z3"]);
    assert_eq!(rows.len(), n);
    for (i, row) in rows.iter().enumerate() {
        let (split, within) = if i < n_train { ("train", i + 1) } else { ("test", i - n_train + 1) };
        assert_eq!((row[0].as_str(), usize_cell(&row[1])), (split, within));
        assert_eq!(row[2], labels[i]);
        for j in 0..latent {
            assert!(same_f32(f32_cell(&row[3 + j]), mu[i * latent + j]), "input {i} mu {j}: {}", row[3 + j]);
            assert!(same_f32(f32_cell(&row[3 + latent + j]), logvar[i * latent + j]));
        }
    }
    // Without labels the column stays, empty.
    let (_, rows) = round_trip(&latents_table(&mu, &logvar, latent, n_train, &[]), dir.path(), LATENTS_FILE);
    assert!(rows.iter().all(|r| r[2].is_empty()));
}

#[test]
fn flow_stages_and_density_grids_read_back_to_every_point_and_cell() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut points =
        |n: usize| -> Vec<[f32; 2]> { awkward_f32(&mut rng, 2 * n).chunks_exact(2).map(|p| [p[0], p[1]]).collect() };
    let geometry = FlowGeometry {
        step: 9,
        n_layers: 2,
        layer_kinds: vec!["affine", "affine"],
        generation: vec![points(5), points(5), points(5)],
        inference: vec![points(4), points(4), points(4)],
        grid_lines: vec![Vec::new(); 3],
        bounds: vec![[-3.5, 3.5, -3.5, 3.5], [-1.0, 2.0, -0.7, 1.3], [-2.0, 2.5, -1.5, 1.5]],
        seconds: 0.0,
    };
    let (header, rows) = round_trip(&stages_table(&geometry), dir.path(), STAGES_FILE);
    assert_eq!(header, ["direction", "stage", "point", "x_std", "y_std"]);
    assert_eq!(rows.len(), 3 * 5 + 3 * 4);
    let mut rows = rows.iter();
    for (direction, stages) in [("generation", &geometry.generation), ("inference", &geometry.inference)] {
        for (stage, pts) in stages.iter().enumerate() {
            for (i, p) in pts.iter().enumerate() {
                let row = rows.next().expect("a row per point");
                assert_eq!((row[0].as_str(), usize_cell(&row[1]), usize_cell(&row[2])), (direction, stage, i + 1));
                assert!(same_f32(f32_cell(&row[3]), p[0]) && same_f32(f32_cell(&row[4]), p[1]));
            }
        }
    }
    let mut grid = |stage: usize, resolution: usize| -> StageGrid {
        let cells = resolution * resolution;
        StageGrid {
            step: 9,
            stage,
            resolution,
            bounds: geometry.bounds[stage],
            density: (0..cells).map(|_| rng.random_range(0.0f32..0.4)).collect(),
            layer_log_det: if stage == 0 { vec![0.0; cells] } else { awkward_f32(&mut rng, cells) },
            mass: 1.0,
            seconds: 0.0,
            device: "CPU (candle)".into(),
        }
    };
    let grids = [grid(0, 3), grid(1, 5), grid(2, 4)];
    let (header, rows) = round_trip(&density_table(&grids.iter().collect::<Vec<_>>()), dir.path(), DENSITY_FILE);
    assert_eq!(header, ["stage", "resolution", "row", "col", "x_std", "y_std", "density", "layer_log_det"]);
    assert_eq!(rows.len(), 9 + 25 + 16);
    let mut rows = rows.iter();
    for g in &grids {
        let centres = grid_points(g.resolution, g.bounds);
        for k in 0..g.resolution * g.resolution {
            let row = rows.next().expect("a row per cell");
            let (r, c) = (k / g.resolution + 1, k % g.resolution + 1);
            assert_eq!(
                [usize_cell(&row[0]), usize_cell(&row[1]), usize_cell(&row[2]), usize_cell(&row[3])],
                [g.stage, g.resolution, r, c]
            );
            assert!(same_f32(f32_cell(&row[4]), centres[2 * k]) && same_f32(f32_cell(&row[5]), centres[2 * k + 1]));
            assert!(same_f32(f32_cell(&row[6]), g.density[k]) && same_f32(f32_cell(&row[7]), g.layer_log_det[k]));
        }
        // Row 1 is the bottom of the grid, column 1 its left.
        assert!(centres[1] < centres[centres.len() - 1] && centres[0] < centres[2 * g.resolution - 2]);
    }
}

#[test]
fn a_failed_export_names_the_file_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let table = history_table(&[EpochRecord { epoch: 1, metrics: vec![("loss".into(), 0.5)] }]);
    let missing = dir.path().join("no-such-folder").join(HISTORY_FILE);
    let err = table.write(&missing).expect_err("no folder to write into").to_string();
    assert!(err.contains("no-such-folder") && err.contains(HISTORY_FILE), "{err}");
    // A second write replaces the first whole; no temporary file stays.
    let path = dir.path().join(HISTORY_FILE);
    std::fs::write(&path, "old").expect("an old file");
    table.write(&path).expect("the export writes");
    assert_eq!(read_csv(&path).1, [["1", "0.5"]]);
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).expect("the folder").map(|e| e.expect("an entry").file_name()).collect();
    assert_eq!(names, [HISTORY_FILE]);
}

/// Runs `bayes-explorer ARGS` in this process, as `main` does.
fn cli(args: &[&str]) -> ExitCode {
    let parsed = Cli::try_parse_from(std::iter::once("bayes-explorer").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    run(parsed.command.expect("a command"))
}

fn header_of(path: &Path) -> Vec<String> {
    read_csv(path).0
}

#[test]
fn train_export_writes_each_labs_files() {
    let root = tempfile::tempdir().expect("a temporary folder");

    let bnn = root.path().join("bnn").join("nested");
    let bnn_s = bnn.to_str().expect("a UTF-8 path");
    assert_eq!(
        cli(&["train", "bnn", "--epochs", "2", "--samples", "10", "--json", "--export", bnn_s]),
        ExitCode::SUCCESS
    );
    let (header, rows) = read_csv(&bnn.join(HISTORY_FILE));
    assert_eq!(header[0], "epoch");
    for metric in ["loss", "data_loss", "kl_loss", "test_rmse"] {
        assert!(header.iter().any(|h| h == metric), "{metric} in {header:?}");
    }
    assert_eq!(rows.len(), 2);
    assert_eq!(header_of(&bnn.join(WEIGHT_HISTOGRAMS_FILE))[..4], ["epoch", "layer", "quantity", "bin"]);
    let (header, rows) = read_csv(&bnn.join(PREDICTIVE_FILE));
    assert_eq!(header[..3], ["test_row", "actual", "mean"]);
    // The red wine's 1,599 rows, 15 % of them held out.
    assert_eq!(rows.len(), 240);
    assert_eq!(header_of(&bnn.join(CALIBRATION_FILE)), ["nominal_level", "observed_coverage"]);
    assert!(!bnn.join(RELIABILITY_FILE).exists(), "a regression has no reliability diagram");
    // The digits' label: classes, whose calibration is the reliability diagram of the 270 test rows.
    let classes = root.path().join("bnn-classes");
    let classes_s = classes.to_str().expect("a UTF-8 path");
    let args = ["train", "bnn", "--data", "digits", "--epochs", "2", "--samples", "10", "--export", classes_s];
    assert_eq!(cli(&args), ExitCode::SUCCESS);
    assert!(!classes.join(CALIBRATION_FILE).exists(), "classes have no interval coverage");
    let (header, rows) = read_csv(&classes.join(RELIABILITY_FILE));
    assert_eq!(header, ["bin", "confidence_lo", "confidence_hi", "rows", "mean_confidence", "accuracy"]);
    assert_eq!(rows.len(), RELIABILITY_BINS);
    assert_eq!(rows.iter().map(|r| usize_cell(&r[3])).sum::<usize>(), 270, "every test row in one bin");

    let vae = root.path().join("vae");
    let vae_s = vae.to_str().expect("a UTF-8 path");
    let args = ["train", "vae", "--epochs", "1", "--data", "digits", "--hidden", "16", "--export", vae_s];
    assert_eq!(cli(&args), ExitCode::SUCCESS);
    assert_eq!(read_csv(&vae.join(HISTORY_FILE)).1.len(), 1);
    let (header, rows) = read_csv(&vae.join(LATENTS_FILE));
    assert_eq!(header, ["split", "row", "label", "mu_z1", "mu_z2", "logvar_z1", "logvar_z2"]);
    // UCI optdigits: 1,797 images, each with its digit.
    assert_eq!(rows.len(), 1797);
    assert!(rows.iter().all(|r| (0.0..=9.0).contains(&f32_cell(&r[2])) && f32_cell(&r[3]).is_finite()));

    let flow = root.path().join("flow");
    let flow_s = flow.to_str().expect("a UTF-8 path");
    assert_eq!(cli(&["train", "flow", "--epochs", "1", "--flow", "affine", "--export", flow_s]), ExitCode::SUCCESS);
    assert_eq!(read_csv(&flow.join(HISTORY_FILE)).1.len(), 1);
    let (header, stages) = read_csv(&flow.join(STAGES_FILE));
    assert_eq!(header, ["direction", "stage", "point", "x_std", "y_std"]);
    let n_stages = stages.iter().map(|r| usize_cell(&r[1])).max().expect("points") + 1;
    let (header, density) = read_csv(&flow.join(DENSITY_FILE));
    assert_eq!(header, ["stage", "resolution", "row", "col", "x_std", "y_std", "density", "layer_log_det"]);
    assert_eq!(density.len(), n_stages * 128 * 128);
    // The affine flow's density of the data stage covers nearly all its mass (as `grid_mass` reports it).
    let cells: Vec<&Vec<String>> = density.iter().filter(|r| usize_cell(&r[0]) == n_stages - 1).collect();
    let (x, y): (Vec<f32>, Vec<f32>) = cells.iter().map(|r| (f32_cell(&r[4]), f32_cell(&r[5]))).unzip();
    let span = |v: &[f32]| {
        v.iter().copied().fold(f32::NEG_INFINITY, f32::max) - v.iter().copied().fold(f32::INFINITY, f32::min)
    };
    let cell_area = f64::from(span(&x) * span(&y)) / 127.0 / 127.0;
    let mass: f64 = cells.iter().map(|r| f64_cell(&r[6])).sum::<f64>() * cell_area;
    assert!((0.9..1.05).contains(&mass), "mass {mass}");
}

#[test]
fn export_data_in_the_window_writes_the_plots_csv_and_says_where() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut harness = egui_kittest::Harness::builder().with_size([1280.0, 800.0]).build_ui_state(
        |ui, app: &mut BayesExplorerApp| app.show(ui),
        BayesExplorerApp::new(egui::Context::default(), Settings { tab: Lab::Flow, ..Settings::default() }),
    );
    let wait = |harness: &mut egui_kittest::Harness<'_, BayesExplorerApp>,
                what: &str,
                done: &dyn Fn(&mut BayesExplorerApp) -> bool| {
        let deadline = Instant::now() + Duration::from_mins(1);
        while !done(harness.state_mut()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
            harness.step();
        }
    };
    wait(&mut harness, "the datasets", &|app| !app.any_loading());
    let config = harness.state_mut().flow_config_mut();
    config.kind = bayes_explorer::models::flow::FlowKind::Affine;
    config.layers = 2;
    config.epochs = 1;
    harness.get_by_label("Train").click();
    wait(&mut harness, "the epoch", &|app| app.lab(Lab::Flow).snapshot.as_ref().is_some_and(|s| s.epoch >= 1));
    // While the run trained the plots showed the light pass (LIVE_SAMPLES points); the full one follows its end, on
    // the view thread, so on a loaded machine it can come a while after the last epoch's snapshot.
    wait(&mut harness, "the finished model's full views", &|app| {
        app.flow_state().geometry().is_some_and(|g| g.generation[0].len() == N_SAMPLES)
    });
    let stages = dir.path().join("stages.csv");
    assert!(harness.state_mut().export_view(Lab::Flow, ExportKind::Stages, stages.clone()));
    wait(&mut harness, "the export", &|app| !app.run_file_busy());
    let message = harness.state().lab(Lab::Flow).message.clone().expect("a message");
    assert!(message.text.contains("Exported") && message.text.contains("stages.csv"), "{}", message.text);
    let (header, rows) = read_csv(&stages);
    assert_eq!(header, ["direction", "stage", "point", "x_std", "y_std"]);
    // Both directions at the three stages of two layers: 1,500 Gaussian samples and the 2,000 first points.
    assert_eq!(rows.len(), 3 * (1500 + 2000));
    let history = dir.path().join("history.csv");
    assert!(harness.state_mut().export_view(Lab::Flow, ExportKind::History, history.clone()));
    wait(&mut harness, "the export", &|app| !app.run_file_busy());
    assert_eq!(read_csv(&history).1.len(), 1);
}

/// `train … --export-split DIR` writes the rows the run trains and tests on as the model sees them: the flow's
/// standardised points (split.csv undoes the standardisation back to the file's values), the VAE's binarised
/// pixels with the label, and the BNN's seeded subset when it trains on a fraction.
#[test]
fn export_split_writes_the_rows_each_lab_trains_on() {
    use bayes_explorer::data::prepare::{default_spec_for_lab, prepare};
    use bayes_explorer::models::bnn::train_subset;
    use std::fmt::Write as _;
    let root = tempfile::tempdir().expect("a temporary folder");
    let csv = root.path().join("points.csv");
    let mut text = String::from("a,b,c\n");
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for _ in 0..200 {
        let (a, b): (f32, f32) = (rng.random_range(-5.0..5.0), rng.random_range(10.0..12.0));
        writeln!(text, "{a},{b},{}", a + b).expect("a string takes any text");
    }
    std::fs::write(&csv, &text).expect("the CSV");

    let flow = root.path().join("flow");
    let args = ["train", "flow", "--flow", "affine", "--epochs", "1", "--seed", "9", "--columns", "c,a"];
    let (csv_s, flow_s) = (csv.to_str().expect("UTF-8"), flow.to_str().expect("UTF-8"));
    assert_eq!(cli(&[&args[..], &["--data", csv_s, "--export-split", flow_s]].concat()), ExitCode::SUCCESS);
    let (header, train) = read_csv(&flow.join("train.csv"));
    let (_, test) = read_csv(&flow.join("test.csv"));
    assert_eq!(header, ["a", "c"]);
    // The flow holds out 20 %.
    assert_eq!((train.len(), test.len()), (160, 40));
    let (_, split) = read_csv(&flow.join("split.csv"));
    assert_eq!(split.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(), ["a", "c"]);
    // Standardised over the training rows: mean 0, sd 1 per column.
    for j in 0..2 {
        let v: Vec<f64> = train.iter().map(|r| f64_cell(&r[j])).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        assert!(mean.abs() < 1e-5 && (sd - 1.0).abs() < 1e-4, "column {j}: mean {mean}, sd {sd}");
    }
    // Undone, every exported row is a row of the file, and train and test together are the whole file.
    let original: Vec<(f32, f32)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let v: Vec<f32> = l.split(',').map(|c| c.parse().expect("a number")).collect();
            (v[0], v[2])
        })
        .collect();
    let undo = |r: &Vec<String>, j: usize| f32_cell(&r[j]) * f32_cell(&split[j][2]) + f32_cell(&split[j][1]);
    let mut found = 0;
    for row in train.iter().chain(&test) {
        let (a, c) = (undo(row, 0), undo(row, 1));
        assert!(original.iter().any(|&(oa, oc)| (oa - a).abs() < 1e-4 && (oc - c).abs() < 1e-4), "({a}, {c})");
        found += 1;
    }
    assert_eq!(found, original.len());

    let vae = root.path().join("vae");
    let vae_s = vae.to_str().expect("UTF-8");
    let args = ["train", "vae", "--epochs", "1", "--data", "digits", "--hidden", "16", "--export-split", vae_s];
    assert_eq!(cli(&args), ExitCode::SUCCESS);
    let (header, train) = read_csv(&vae.join("train.csv"));
    assert_eq!(header.len(), 65, "64 pixels and the label");
    assert!(train.iter().all(|r| r[..64].iter().all(|p| p == "0" || p == "1")), "binarised pixels");
    assert!(train.iter().any(|r| r[..64].contains(&"1".to_owned())));
    let (_, test) = read_csv(&vae.join("test.csv"));
    assert_eq!(train.len() + test.len(), 1797);

    let bnn = root.path().join("bnn");
    let bnn_s = bnn.to_str().expect("UTF-8");
    let args = ["train", "bnn", "--epochs", "1", "--train-fraction", "0.3", "--seed", "4", "--export-split", bnn_s];
    assert_eq!(cli(&args), ExitCode::SUCCESS);
    let (header, train) = read_csv(&bnn.join("train.csv"));
    assert_eq!(header.last().map(String::as_str), Some("quality"));
    let table = bayes_explorer::data::source::BuiltinFile::WineRed.load().expect("the red wine");
    let mut spec = default_spec_for_lab(Lab::Bnn, &table);
    spec.seed = 4;
    let prepared = prepare(&table, &spec).expect("prepared");
    let rows = train_subset(prepared.n_train(), 0.3, 4);
    assert_eq!(train.len(), rows.len());
    let d = prepared.n_features();
    for (row, &i) in train.iter().zip(&rows) {
        for (cell, &value) in row.iter().zip(&prepared.x_train[i * d..(i + 1) * d]) {
            assert!(same_f32(f32_cell(cell), value));
        }
        assert!(same_f32(f32_cell(&row[d]), prepared.y_train[i]));
    }
}

/// `train flow --export-orders FILE --prepare-only` writes, without training, the order in which each epoch of the
/// run takes the training rows: every epoch a permutation of the rows in minibatches of the run's batch, and the
/// very order the run takes (the run file of a two-epoch run of the same seed keeps the third epoch's order, which
/// is the file's third); `--export-orders` is refused outside the flow lab.
#[test]
fn export_orders_writes_the_orders_the_flow_run_takes() {
    let root = tempfile::tempdir().expect("a temporary folder");
    let (orders, split) = (root.path().join("orders.csv"), root.path().join("split"));
    let (orders_s, split_s) = (orders.to_str().expect("UTF-8"), split.to_str().expect("UTF-8"));
    let base =
        ["train", "flow", "--data", "moons", "--hidden", "8", "--layers", "2", "--seed", "5", "--batch-size", "64"];
    let prepare = ["--epochs", "3", "--export-orders", orders_s, "--export-split", split_s, "--prepare-only"];
    assert_eq!(cli(&[&base[..], &prepare].concat()), ExitCode::SUCCESS);
    let (header, rows) = read_csv(&orders);
    assert_eq!(header, ["epoch", "minibatch", "row"]);
    let n_train = read_csv(&split.join("train.csv")).1.len();
    assert_eq!(rows.len(), 3 * n_train);
    let mut epochs: Vec<Vec<usize>> = vec![Vec::new(); 3];
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<usize> = row.iter().map(|c| c.parse().expect("a count")).collect();
        assert_eq!(cells[0], i / n_train + 1, "line {}: the epoch", i + 2);
        assert_eq!(cells[1], (i % n_train) / 64 + 1, "line {}: the minibatch", i + 2);
        epochs[cells[0] - 1].push(cells[2]);
    }
    for (e, order) in epochs.iter().enumerate() {
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert!(sorted.iter().copied().eq(0..n_train), "epoch {}: not a permutation of the training rows", e + 1);
    }
    assert_ne!(epochs[0], epochs[1]);

    let run_path = root.path().join("run.json");
    let run_s = run_path.to_str().expect("UTF-8");
    assert_eq!(cli(&[&base[..], &["--epochs", "2", "--save", run_s]].concat()), ExitCode::SUCCESS);
    let run = bayes_explorer::train::runfile::AnyRun::load(&run_path).expect("the run file");
    let state = run.state().expect("a run file keeps its training state");
    assert_eq!(state.epochs.cursor, 0);
    let saved: Vec<usize> = state.epochs.order.iter().map(|&i| i as usize).collect();
    assert_eq!(saved, epochs[2], "the run's third epoch takes another order than the file says");

    // At the flow's default of 300 epochs the file holds all 300; no lab but the flow takes --export-orders.
    let all = root.path().join("all.csv");
    assert_eq!(
        cli(&[&base[..], &["--export-orders", all.to_str().expect("UTF-8"), "--prepare-only"]].concat()),
        ExitCode::SUCCESS
    );
    assert_eq!(read_csv(&all).1.len(), 300 * n_train);
    let refused = root.path().join("vae.csv");
    let args =
        ["train", "vae", "--data", "digits", "--epochs", "1", "--export-orders", refused.to_str().expect("UTF-8")];
    assert_ne!(cli(&args), ExitCode::SUCCESS);
    assert!(!refused.exists());
}
