//! `train flow --autograd`: the RealNVP trained by candle's autograd, the reference the hand-written training pass
//! is tested against, reaches the hand-written pass's figures on the same seed (to float rounding over a few
//! epochs, but not to the bit: it is the other path), and is refused for the other labs.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_bayes-explorer");

/// The final JSON line's `train_nll` of `train flow` with `extra` arguments: a small RealNVP, three epochs.
fn train_nll(extra: &[&str]) -> f64 {
    let out = Command::new(BIN)
        .args(["train", "flow", "--layers", "2", "--epochs", "3", "--seed", "5", "--json"])
        .args(extra)
        .output()
        .expect("the binary runs");
    assert!(out.status.success(), "{extra:?}: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line: serde_json::Value = serde_json::from_str(stdout.lines().last().expect("a JSON line")).expect("JSON");
    line["train_nll"].as_f64().expect("train_nll")
}

#[test]
fn the_autograd_path_trains_the_same_flow_as_the_hand_written_pass() {
    let hand = train_nll(&[]);
    let autograd = train_nll(&["--autograd"]);
    let untrained = train_nll(&["--lr", "1e-30"]);
    assert!((hand - autograd).abs() < 1e-4, "hand-written {hand} against autograd {autograd}");
    // Not the same run twice: the two passes sum in different orders, so their float rounding differs.
    assert_ne!(hand.to_bits(), autograd.to_bits(), "--autograd took the other path");
    assert!(untrained - hand > 0.05, "three epochs learned something: {untrained} -> {hand}");
}

#[test]
fn autograd_is_for_the_flow_lab() {
    let out = Command::new(BIN).args(["train", "bnn", "--epochs", "1", "--autograd"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2), "refused as bad input");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--autograd"), "the message names the flag");
}
