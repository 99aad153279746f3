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

/// `--hidden` sets the widths of a flow's conditioner networks: the run file records them, and the saved weights
/// have their shapes (a first layer of 2 x 16 and a last of 16 x 2 where the default is 256).
#[test]
fn hidden_sets_the_conditioner_widths_of_a_flow() {
    let dir = std::env::temp_dir().join(format!("flow-hidden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    let run = dir.join("run.json");
    let out = Command::new(BIN)
        .args(["train", "flow", "--layers", "2", "--hidden", "16,16", "--epochs", "1", "--json", "--save"])
        .arg(&run)
        .output()
        .expect("the binary runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&run).expect("the run file")).expect("JSON");
    assert_eq!(file["config"]["hidden"], serde_json::json!([16, 16]), "{}", file["config"]);
    let weights = std::fs::read(run.with_extension("safetensors")).expect("the weights");
    let header_len = u64::from_le_bytes(weights[..8].try_into().expect("8 bytes")) as usize;
    let header: serde_json::Value = serde_json::from_slice(&weights[8..8 + header_len]).expect("the header");
    let mut shapes: Vec<Vec<u64>> = header
        .as_object()
        .expect("a table of tensors")
        .iter()
        .filter(|(name, _)| *name != "__metadata__")
        .filter_map(|(_, t)| t["shape"].as_array().map(|s| s.iter().filter_map(serde_json::Value::as_u64).collect()))
        .filter(|s: &Vec<u64>| s.len() == 2)
        .collect();
    shapes.sort();
    shapes.dedup();
    assert!(!shapes.is_empty(), "no weight matrices in {header}");
    for shape in &shapes {
        assert!(shape.iter().all(|&d| d == 2 || d == 16), "a weight of shape {shape:?} with --hidden 16,16");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `--weight-average`: the figures of a run with the average (RealNVP's and the VAE's default) and with `off`
/// (the last step's weights) differ, an explicit 0.999 is the default's run to the bit, and a decay outside (0, 1)
/// or the flag on the BNN lab (which keeps no average) is refused with a message naming it.
#[test]
fn weight_average_sets_which_weights_a_flow_or_vae_run_reports() {
    let averaged = train_nll(&[]);
    assert_eq!(averaged.to_bits(), train_nll(&["--weight-average", "0.999"]).to_bits(), "0.999 is the default");
    let last = train_nll(&["--weight-average", "off"]);
    assert!((averaged - last).abs() > 1e-4, "the average and the last weights report alike: {averaged}, {last}");
    // The MLP VAE's the same way: its default is the average, `off` its last step's weights.
    let test_neg_elbo = |extra: &[&str]| -> f64 {
        let out = Command::new(BIN)
            .args(["train", "vae", "--data", "digits", "--hidden", "32", "--epochs", "3", "--json"])
            .args(extra)
            .output()
            .expect("the binary runs");
        assert!(out.status.success(), "{extra:?}: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line: serde_json::Value = serde_json::from_str(stdout.lines().last().expect("a line")).expect("JSON");
        line["test_neg_elbo"].as_f64().expect("test_neg_elbo")
    };
    let averaged = test_neg_elbo(&[]);
    assert_eq!(averaged.to_bits(), test_neg_elbo(&["--weight-average", "0.999"]).to_bits(), "the VAE's default");
    let last = test_neg_elbo(&["--weight-average", "off"]);
    assert!((averaged - last).abs() > 1e-3, "the VAE's average and last weights report alike: {averaged}, {last}");
    for (args, expected) in [
        (vec!["train", "flow", "--weight-average", "1.5"], "--weight-average"),
        (vec!["train", "bnn", "--epochs", "1", "--weight-average", "0.9"], "--weight-average"),
    ] {
        let out = Command::new(BIN).args(&args).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?} refused as bad input");
        assert!(String::from_utf8_lossy(&out.stderr).contains(expected), "{args:?}: the message names the flag");
    }
}
