//! Checkpoints on the command line (issue 22): `train flow --checkpoint PATH --every S` killed with SIGKILL after a
//! checkpoint, then `--load PATH --continue`, ends with the same weights file, byte for byte (parameters, moments,
//! generator and all), as the same run trained without interruption; a checkpoint that cannot be written is a
//! warning naming the file, and training goes on to the end.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bayes_explorer::train::runfile::read_run_file;

const BIN: &str = env!("CARGO_BIN_EXE_bayes-explorer");
/// A small RealNVP (2 layers) for 12 epochs: a few seconds, long enough to be killed in the middle.
const RUN: [&str; 6] = ["train", "flow", "--layers", "2", "--epochs", "12"];

fn run_ok(args: &[&str], dir: &Path) -> String {
    let out = Command::new(BIN).args(args).current_dir(dir).output().expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    stderr
}

#[test]
fn a_run_killed_after_a_checkpoint_continues_to_the_uninterrupted_runs_weights() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let d = dir.path();
    run_ok(&[&RUN[..], &["--save", "full.json"]].concat(), d);

    let mut child = Command::new(BIN)
        .args(RUN)
        .args(["--checkpoint", "cp.json", "--every", "0.2"])
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let deadline = Instant::now() + Duration::from_mins(2);
    // A checkpoint that reads back (the run file and its weights, checked by their sha256).
    while read_run_file(&d.join("cp.json")).is_err() {
        assert!(Instant::now() < deadline, "no checkpoint was written");
        assert!(child.try_wait().expect("a status").is_none(), "the run ended before its first checkpoint");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let (record, _) = read_run_file(&d.join("cp.json")).expect("the last checkpoint reads after the kill");
    let progress = &record.progress;
    assert!(progress.epochs_done < progress.total_epochs, "killed after the end: {progress:?}");
    assert!(record.resume.is_some(), "the checkpoint holds the training state");

    run_ok(&["train", "flow", "--load", "cp.json", "--continue", "--save", "continued.json"], d);
    let full = std::fs::read(d.join("full.safetensors")).expect("the uninterrupted run's weights");
    let continued = std::fs::read(d.join("continued.safetensors")).expect("the continued run's weights");
    assert!(
        full == continued,
        "the continued run's weights differ from the uninterrupted run's (from step {})",
        progress.step
    );
    let history = |name: &str| read_run_file(&d.join(name)).expect("reads").0.history;
    assert_eq!(history("full.json"), history("continued.json"), "the epochs' metrics differ");
}

#[test]
fn a_checkpoint_that_cannot_be_written_is_a_warning_and_training_goes_on() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let d = dir.path();
    // A folder that is a file: no write can succeed there, even for root (whom a read-only folder does not stop).
    std::fs::write(d.join("not-a-folder"), "").expect("a file");
    let stderr = run_ok(
        &[
            "train",
            "flow",
            "--flow",
            "affine",
            "--epochs",
            "3",
            "--checkpoint",
            "not-a-folder/cp.json",
            "--every",
            "0.05",
            "--save",
            "end.json",
        ],
        d,
    );
    assert!(stderr.contains("warning:") && stderr.contains("not-a-folder/cp."), "{stderr}");
    assert!(stderr.contains("cannot write the checkpoint") && stderr.contains("training goes on"), "{stderr}");
    let (record, _) = read_run_file(&d.join("end.json")).expect("the run went on to its end and saved");
    assert_eq!(record.progress.epochs_done, 3);
}
