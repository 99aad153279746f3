//! `train bnn --sampler nuts` on the command line (issue 25): the JSON line's figures, and a saved NUTS run that
//! opens again with the same figures, saved and recomputed from its draws to the last bit.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use bayes_explorer::train::runfile::{AnyRun, NutsRun, RunFileError};

const BIN: &str = env!("CARGO_BIN_EXE_bayes-explorer");

fn run(args: &[&str], dir: &Path) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).current_dir(dir).output().expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_line(stdout: &str) -> serde_json::Value {
    let line = stdout.lines().last().expect("a line");
    serde_json::from_str(line).expect("one JSON line")
}

/// 80 rows of `y = x³ - x + noise`, `x` in [-1.5, 1.5] (a fixed sequence, no generator).
fn write_cubic(path: &Path) {
    let mut csv = String::from("x,y\n");
    for i in 0..80 {
        let x = -1.5 + 3.0 * f64::from(i) / 79.0;
        let noise = 0.1 * ((f64::from(i) * 12.9898).sin() * 43_758.545).fract();
        let _ = writeln!(csv, "{x:.5},{:.5}", x * x * x - x + noise);
    }
    std::fs::write(path, csv).expect("the CSV is written");
}

/// The cubic written to `cubic.csv` in `dir`; its path.
fn cubic_csv(dir: &Path) -> String {
    let data = dir.join("cubic.csv");
    write_cubic(&data);
    data.display().to_string()
}

#[test]
fn nuts_reports_its_diagnostics_and_a_saved_run_opens_with_the_same_figures() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let d = dir.path();
    let data = cubic_csv(d);
    let args = [
        "train",
        "bnn",
        "--data",
        &data,
        "--sampler",
        "nuts",
        "--chains",
        "2",
        "--warmup",
        "150",
        "--draws",
        "100",
        "--hidden",
        "4",
        "--activation",
        "tanh",
        "--seed",
        "5",
        "--json",
        "--save",
        "nuts.json",
    ];
    let (ok, stdout, stderr) = run(&args, d);
    assert!(ok, "{stderr}");
    let line = json_line(&stdout);
    assert_eq!(line["sampler"], "nuts");
    assert_eq!(line["model"], "bnn-nuts-mse");
    assert_eq!(line["chains"], 2);
    assert_eq!(line["draws"], 100);
    assert_eq!(line["samples"], 200.0);
    assert_eq!(line["n_weights"], 13);
    assert_eq!(line["chain_stats"].as_array().map(Vec::len), Some(2));
    for chain in line["chain_stats"].as_array().unwrap() {
        assert!(chain["step_size"].as_f64().unwrap() > 0.0);
        assert!(chain["mean_tree_depth"].as_f64().unwrap() >= 1.0);
    }
    for key in ["test_rmse", "test_nll", "coverage_95", "interval_width_95", "max_rhat", "min_ess_bulk", "seconds"] {
        assert!(line[key].as_f64().is_some_and(f64::is_finite), "{key}: {}", line[key]);
    }
    // The cubic is learned: far below the targets' spread (about 0.9).
    assert!(line["test_rmse"].as_f64().unwrap() < 0.4, "{line}");
    assert!(line["warnings"].is_array());

    let (ok, stdout, stderr) = run(&["train", "bnn", "--load", "nuts.json", "--json"], d);
    assert!(ok, "{stderr}");
    let opened = json_line(&stdout);
    assert_eq!(opened["saved"], opened["evaluated"], "the figures recomputed from the draws differ");
    for key in ["test_rmse", "test_nll", "coverage_95", "interval_width_95", "max_rhat", "min_ess_bulk", "samples"] {
        assert_eq!(opened["saved"][key], line[key], "{key}");
    }
    assert_eq!(opened["chain_stats"], line["chain_stats"]);

    // A NUTS run is no trained run: the loader of trained runs names it for what it is.
    let error = AnyRun::load(&d.join("nuts.json")).expect_err("a NUTS run is refused");
    assert!(matches!(error, RunFileError::Sampled { .. }), "{error}");
    let opened_run = NutsRun::load(&d.join("nuts.json")).expect("it opens as a NUTS run");
    assert_eq!((opened_run.posterior.n_draws(), opened_run.posterior.n_weights), (200, 13));
    // Saved again, it gives the same files, byte for byte.
    opened_run.save(&d.join("again.json")).expect("it saves");
    let bytes = |name: &str| std::fs::read(d.join(name)).expect("the file");
    assert!(bytes("nuts.safetensors") == bytes("again.safetensors"), "the draws' file differs");

    // The sampler's options need it; the variational run refuses them.
    let (ok, _, stderr) = run(&["train", "bnn", "--data", &data, "--chains", "2", "--epochs", "1"], d);
    assert!(!ok && stderr.contains("--sampler nuts"), "{stderr}");
}

#[test]
fn the_target_acceptance_is_set_on_the_command_line_and_tunes_smaller_steps_when_raised() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let d = dir.path();
    let data = cubic_csv(d);
    let sample = |target: &str| {
        let args = [
            "train",
            "bnn",
            "--data",
            &data,
            "--sampler",
            "nuts",
            "--chains",
            "1",
            "--warmup",
            "150",
            "--draws",
            "30",
            "--hidden",
            "4",
            "--activation",
            "tanh",
            "--seed",
            "5",
            "--target-accept",
            target,
            "--json",
        ];
        let (ok, stdout, stderr) = run(&args, d);
        assert!(ok, "{stderr}");
        json_line(&stdout)
    };
    let (low, high) = (sample("0.6"), sample("0.95"));
    assert_eq!(low["target_accept"], 0.6);
    assert_eq!(high["target_accept"], 0.95);
    let step = |line: &serde_json::Value| line["chain_stats"][0]["step_size"].as_f64().expect("a step size");
    // A higher acceptance asks for shorter leapfrog steps, and so for deeper trees.
    assert!(step(&high) < 0.8 * step(&low), "step {} at 0.95 against {} at 0.6", step(&high), step(&low));
    let depth = |line: &serde_json::Value| line["chain_stats"][0]["mean_tree_depth"].as_f64().expect("a depth");
    assert!(depth(&high) > depth(&low), "tree depth {} at 0.95 against {} at 0.6", depth(&high), depth(&low));

    for bad in ["1.5", "0", "1"] {
        let (ok, _, stderr) = run(&["train", "bnn", "--data", &data, "--sampler", "nuts", "--target-accept", bad], d);
        assert!(
            !ok && stderr.contains(&format!("--target-accept {bad}: give a probability between 0 and 1")),
            "{stderr}"
        );
    }
    let (ok, _, stderr) = run(&["train", "bnn", "--data", &data, "--target-accept", "0.9", "--epochs", "1"], d);
    assert!(!ok && stderr.contains("--target-accept are for `train bnn --sampler nuts`"), "{stderr}");
}
