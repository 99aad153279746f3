//! Run files (issue 7, "Save, load, reproduce"): save -> load gives the same parameters and the same
//! predictions to the last bit for the BNN, the VAE (MLP and convolutional) and the flow; truncated, damaged, foreign, newer-version and
//! mismatched files are refused with a message naming the file, and change nothing (on disk or in the window);
//! a failed write leaves the old files as they were; re-running a run file's settings with its seed reproduces
//! every epoch's metrics. Small models and few epochs: the whole file runs in a few seconds in release.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bayes_explorer::Lab;
use bayes_explorer::compute::params::{FlowParams, MlpParams};
use bayes_explorer::data::csv::NoProgress;
use bayes_explorer::data::prepare::{
    DataSpec, Prepared, Role, TextFeatures, complete_rows, default_spec_for_lab, prepare,
};
use bayes_explorer::data::{BuiltinFile, CsvOptions, LoadRequest, MissingPolicy, SynthKind, SynthSpec, Table};
use bayes_explorer::models::bnn::{BnnConfig, BnnParams, BnnTrainer, BnnView, Posterior};
use bayes_explorer::models::flow::{FlowConfig, FlowKind, FlowNet, FlowTrainer};
use bayes_explorer::models::vae::{
    VaeArch, VaeConfig, VaeNet, VaeNetworks, VaeParams, VaeTrainer, VaeView, vae_inputs,
};
use bayes_explorer::train::runfile::{
    AnyRun, DatasetRecord, FORMAT_VERSION, Run, RunConfig, RunFileError, first_difference, load_dataset, open_run,
    read_run_file, sha256_hex, table_sha256, write_atomically,
};
use bayes_explorer::train::{ModelView, RunSnapshot, Trainer, WorkerState};
use bayes_explorer::ui::{BayesExplorerApp, Settings, session_run_path};
use candle_core::{DType, Device, Tensor};
use egui_kittest::kittest::Queryable;

mod common;
use common::{harness, harness_for, wait_until};

/// The red wine with `quality` as the target, as the BNN lab loads it.
fn wine() -> (Table, LoadRequest, DataSpec) {
    let request = LoadRequest::Builtin(BuiltinFile::WineRed);
    let table = request.run(&NoProgress).expect("the built-in wine loads");
    let mut spec = DataSpec::default_for(&table);
    spec.set_output(11, Role::Target);
    (table, request, spec)
}

/// 600 points of two moons, as the flow lab loads them.
fn moons() -> (Table, LoadRequest, DataSpec) {
    let request = LoadRequest::Synth(SynthSpec { n_points: 600, ..SynthSpec::default_for(SynthKind::Moons) });
    let table = request.run(&NoProgress).expect("moons generate");
    let spec = default_spec_for_lab(Lab::Flow, &table);
    (table, request, spec)
}

/// The first 300 rows of the built-in 8x8 digits, written as a CSV file in `dir` and loaded from it (so that a
/// run on them finds its data again); the 64 pixels are the features, the digit the label.
fn digits_300(dir: &Path) -> (Table, LoadRequest, DataSpec) {
    let full = BuiltinFile::Digits8x8.load().expect("the built-in digits load");
    let path = dir.join("digits-300.csv");
    if !path.is_file() {
        let names: Vec<&str> = full.columns.iter().map(|c| c.name.as_str()).collect();
        let mut text = names.join(",") + "\n";
        for row in full.values.chunks(full.n_cols()).take(300) {
            let cells: Vec<String> = row.iter().map(ToString::to_string).collect();
            let _ = writeln!(text, "{}", cells.join(","));
        }
        std::fs::write(&path, text).unwrap();
    }
    let request = LoadRequest::File { path, options: CsvOptions::default() };
    let table = request.run(&NoProgress).expect("the digits' CSV loads");
    let spec = default_spec_for_lab(Lab::Vae, &table);
    assert_eq!((table.n_rows(), spec.feature_columns().len()), (300, 64));
    assert_eq!(spec.output_column(), Some((64, Role::Label)));
    (table, request, spec)
}

/// The MLP VAE, small: one hidden layer of 16, 2 epochs.
fn tiny_mlp_vae() -> VaeConfig {
    VaeConfig { hidden: vec![16], epochs: 2, batch_size: 64, ..VaeConfig::default() }
}

/// The course's convolutional VAE for one epoch.
fn tiny_conv_vae() -> VaeConfig {
    VaeConfig { arch: VaeArch::Conv, epochs: 1, batch_size: 32, ..VaeConfig::course_conv() }
}

fn vae_run(config: &VaeConfig, dir: &Path) -> (AnyRun, Arc<Prepared>) {
    let (table, request, spec) = digits_300(dir);
    let data = Arc::new(prepare(&table, &spec).expect("digits prepare"));
    let snapshot = train(Box::new(VaeTrainer::new(config.clone(), &data).expect("vae")));
    let run = AnyRun::from_snapshot(RunConfig::Vae(config.clone()), &snapshot, &table, &request, spec).expect("run");
    (run, data)
}

fn tiny_bnn() -> BnnConfig {
    BnnConfig {
        hidden: vec![4],
        posterior: Posterior::FullCovariance,
        bayesian_output: true,
        epochs: 3,
        predictive_samples: 20,
        ..BnnConfig::default()
    }
}

fn tiny_flow(kind: FlowKind) -> FlowConfig {
    FlowConfig { layers: 2, hidden: vec![8], epochs: 2, batch_size: 64, ..FlowConfig::default_for(kind) }
}

/// Trains to the end and returns what the worker would publish last: the snapshot with the model's copy.
fn train(mut trainer: Box<dyn Trainer>) -> RunSnapshot {
    while !trainer.finished() {
        trainer.step().expect("a small run trains");
    }
    RunSnapshot { model: trainer.model_view(), ..trainer.snapshot() }
}

fn bnn_run(config: &BnnConfig) -> (AnyRun, Arc<Prepared>) {
    let (table, request, spec) = wine();
    let data = Arc::new(prepare(&table, &spec).expect("wine prepares"));
    let snapshot = train(Box::new(BnnTrainer::new(config.clone(), &data).expect("bnn")));
    let run = AnyRun::from_snapshot(RunConfig::Bnn(config.clone()), &snapshot, &table, &request, spec).expect("run");
    (run, data)
}

fn flow_run(config: &FlowConfig) -> (AnyRun, Arc<Prepared>) {
    let (table, request, spec) = moons();
    let data = Arc::new(prepare(&table, &spec).expect("moons prepare"));
    let snapshot = train(Box::new(FlowTrainer::new(config.clone(), &data).expect("flow")));
    let run = AnyRun::from_snapshot(RunConfig::Flow(config.clone()), &snapshot, &table, &request, spec).expect("run");
    (run, data)
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// Every number of two BNN posteriors, as bits.
fn bnn_bits(p: &BnnParams) -> Vec<u32> {
    p.layers.iter().flat_map(|l| bits(&l.mean).into_iter().chain(bits(&l.sd)).chain(bits(&l.scale_tril))).collect()
}

fn bnn_view(run: &AnyRun) -> Arc<BnnView> {
    match run.model_view() {
        ModelView::Bnn { view, .. } => view,
        other => panic!("not a BNN: {other:?}"),
    }
}

fn vae_view(run: &AnyRun) -> Arc<VaeView> {
    match run.model_view() {
        ModelView::Vae { view, .. } => view,
        other => panic!("not a VAE: {other:?}"),
    }
}

fn mlp_bits(m: &MlpParams) -> Vec<u32> {
    m.layers.iter().flat_map(|l| bits(&l.weights).into_iter().chain(bits(&l.biases))).collect()
}

/// Every number of a VAE's networks (the batch normalisation's running averages among them), as bits.
fn vae_bits(p: &VaeParams) -> Vec<u32> {
    match &p.networks {
        VaeNetworks::Mlp { encoder, decoder } => mlp_bits(encoder).into_iter().chain(mlp_bits(decoder)).collect(),
        VaeNetworks::Conv(c) => {
            let mut out = Vec::new();
            for l in c.encoder.iter().chain(&c.decoder) {
                out.extend(bits(&l.weights));
                out.extend(bits(&l.biases));
                if let Some(n) = &l.norm {
                    for v in [&n.gamma, &n.beta, &n.running_mean, &n.running_variance] {
                        out.extend(bits(v));
                    }
                }
            }
            for d in [&c.to_latent, &c.from_latent] {
                out.extend(bits(&d.weights));
                out.extend(bits(&d.biases));
            }
            out
        }
    }
}

/// What the views compute from a VAE, as bits: the encoder's means and log-variances of the test inputs, and
/// the images decoded from a grid of latent points.
fn vae_outputs(p: &VaeParams, data: &Prepared) -> (Vec<u32>, Vec<u32>) {
    let net = VaeNet::from_params(p, DType::F32).unwrap();
    let (_, test, _) = vae_inputs(data, p.likelihood);
    let x = Tensor::from_vec(test, (data.n_test(), data.n_features()), &Device::Cpu).unwrap();
    let (mu, logvar) = net.encode(&x).unwrap();
    let flat = |t: &Tensor| bits(&t.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    let z: Vec<f32> = (0..40 * p.latent).map(|i| ((i * 37 % 101) as f32 / 25.0) - 2.0).collect();
    let z = Tensor::from_vec(z, (40, p.latent), &Device::Cpu).unwrap();
    let images = net.decode_mean(&z).unwrap();
    (flat(&mu).into_iter().chain(flat(&logvar)).collect(), flat(&images))
}

fn flow_params(run: &AnyRun) -> Arc<FlowParams> {
    match run.model_view() {
        ModelView::Flow { params, .. } => params,
        other => panic!("not a flow: {other:?}"),
    }
}

#[test]
fn a_bnn_comes_back_bit_for_bit_and_predicts_the_same() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("wine.json");
    let (run, data) = bnn_run(&tiny_bnn());
    run.save(&path).expect("save");
    assert!(dir.path().join("wine.safetensors").is_file(), "the weights sit next to the run file");

    let loaded = AnyRun::load(&path).expect("load");
    assert_eq!(loaded.lab(), Lab::Bnn);
    assert_eq!(loaded.config(), run.config(), "every hyperparameter and the seed");
    assert_eq!(loaded.spec(), run.spec(), "roles and split");
    assert_eq!(loaded.dataset(), run.dataset(), "the dataset's source and sha256");
    assert_eq!(loaded.snapshot(), run.snapshot(), "progress and every epoch's metrics");
    let (before, after) = (bnn_view(&run), bnn_view(&loaded));
    assert_eq!(after.params.task, before.params.task);
    assert_eq!(after.params.prior_sd.to_bits(), before.params.prior_sd.to_bits());
    assert_eq!(bnn_bits(&after.params), bnn_bits(&before.params), "the posterior, to the last bit");
    assert!(after.params.layers.iter().all(|l| !l.scale_tril.is_empty()), "the full scale matrices are kept");
    assert_eq!(after.history.len(), before.history.len(), "the weight history (epoch 0 and each epoch)");
    for ((e1, p1), (e2, p2)) in after.history.iter().zip(before.history.iter()) {
        assert_eq!((e1, bnn_bits(p1)), (e2, bnn_bits(p2)));
    }
    // The views' Monte Carlo predictions of the test rows: the same weight samples give the same outputs.
    let n = data.n_test();
    let predict = |p: &BnnParams| bits(&p.predict_samples_cpu(&data.x_test, n, 50, 7));
    assert_eq!(predict(&after.params), predict(&before.params), "identical predictions");

    // The loaded weights recompute the last epoch's test figures exactly.
    let evaluated = loaded.evaluate(&data).expect("evaluate");
    let last = loaded.snapshot().history.last().expect("epochs").clone();
    assert!(evaluated.len() >= 4);
    for (name, value) in &evaluated {
        let saved = last.get(name).unwrap_or_else(|| panic!("{name} is an epoch metric"));
        assert_eq!(value.to_bits(), saved.to_bits(), "{name}: evaluated {value}, saved {saved}");
    }
}

#[test]
fn flows_come_back_bit_for_bit_with_the_same_densities_and_stages() {
    let dir = tempfile::tempdir().expect("temp dir");
    for kind in FlowKind::ALL {
        let path = dir.path().join(format!("{}.json", kind.cli_name()));
        let (run, data) = flow_run(&tiny_flow(kind));
        run.save(&path).expect("save");
        let loaded = AnyRun::load(&path).expect("load");
        assert_eq!(loaded.config(), run.config(), "{kind:?}");
        assert_eq!(loaded.snapshot(), run.snapshot(), "{kind:?}");
        let (before, after) = (flow_params(&run), flow_params(&loaded));
        assert_eq!(after, before, "{kind:?}: the layers");
        let (a, b) =
            (FlowNet::from_params(&before, DType::F32).unwrap(), FlowNet::from_params(&after, DType::F32).unwrap());
        let x = &data.x_test;
        assert_eq!(bits(&a.log_density(x).unwrap()), bits(&b.log_density(x).unwrap()), "{kind:?}: densities");
        let z: Vec<f32> = (0..200).map(|i| ((i * 37 % 101) as f32 / 25.0) - 2.0).collect();
        let (sa, sb) = (a.forward_stages(&z).unwrap(), b.forward_stages(&z).unwrap());
        for (k, (pa, pb)) in sa.points.iter().zip(&sb.points).enumerate() {
            assert_eq!(bits(pa), bits(pb), "{kind:?}: stage {k}");
        }
    }
}

#[test]
fn vaes_of_both_architectures_come_back_bit_for_bit_and_decode_the_same_images() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (config, name) in [(tiny_mlp_vae(), "vae-mlp-bernoulli"), (tiny_conv_vae(), "vae-conv-gaussian")] {
        let path = dir.path().join(format!("{name}.json"));
        let (run, data) = vae_run(&config, dir.path());
        assert_eq!(run.model_name(), name);
        run.save(&path).expect("save");
        let loaded = AnyRun::load(&path).expect("load");
        assert_eq!(loaded.lab(), Lab::Vae);
        assert_eq!(loaded.model_name(), name);
        assert_eq!(loaded.config(), run.config(), "{name}: every hyperparameter and the seed");
        assert_eq!(loaded.spec(), run.spec(), "{name}");
        assert_eq!(loaded.dataset(), run.dataset(), "{name}");
        assert_eq!(loaded.snapshot(), run.snapshot(), "{name}: progress and every epoch's metrics");
        let (before, after) = (vae_view(&run), vae_view(&loaded));
        assert_eq!(*after, *before, "{name}: the networks, the inputs and the reconstructions");
        assert_eq!(vae_bits(&after.params), vae_bits(&before.params), "{name}: the networks, to the last bit");
        assert_eq!(bits(&after.originals), bits(&before.originals), "{name}");
        assert_eq!(after.reconstructions.len(), config.epochs + 1, "{name}: epoch 0 and each epoch");
        for ((e1, r1), (e2, r2)) in after.reconstructions.iter().zip(before.reconstructions.iter()) {
            assert_eq!((e1, bits(r1)), (e2, bits(r2)), "{name}: the reconstructions");
        }
        if let VaeNetworks::Conv(c) = &after.params.networks {
            let norm = c.encoder[0].norm.as_ref().expect("batch normalisation");
            assert!(
                norm.running_variance.iter().any(|&v| (v - 1.0).abs() > 1e-6),
                "{name}: the trained running averages are kept"
            );
        }
        // The views' figures: the encoder's means and variances of the data, and decoded images.
        assert_eq!(vae_outputs(&after.params, &data), vae_outputs(&before.params, &data), "{name}: identical outputs");
        // The loaded model reconstructs the fixed inputs as the trainer recorded after the last epoch.
        let net = VaeNet::from_params(&after.params, DType::F32).unwrap();
        let n_in = data.n_features();
        let x = Tensor::from_slice(&after.originals, (after.originals.len() / n_in, n_in), &Device::Cpu).unwrap();
        let back = net.decode_mean(&net.encode(&x).unwrap().0).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(bits(&back), bits(&after.reconstructions.last().unwrap().1), "{name}: the last reconstructions");

        // The loaded networks recompute the last epoch's test figures exactly.
        let evaluated = loaded.evaluate(&data).expect("evaluate");
        let names: Vec<&str> = evaluated.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["test_neg_elbo", "test_recon", "test_kl", "knn5_accuracy"], "{name}");
        let last = loaded.snapshot().history.last().expect("epochs").clone();
        for (metric, value) in &evaluated {
            let saved = last.get(metric).unwrap_or_else(|| panic!("{metric} is an epoch metric"));
            assert_eq!(value.to_bits(), saved.to_bits(), "{name} {metric}: evaluated {value}, saved {saved}");
        }
    }
}

/// A change to a run file's JSON.
type Edit = fn(&mut serde_json::Value);

/// Rewrites a run file's JSON.
fn edit_run(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut value: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut value);
    std::fs::write(path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
}

#[test]
fn a_conv_vae_whose_weights_do_not_fit_its_architecture_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("conv.json");
    let (conv, _) = vae_run(&tiny_conv_vae(), dir.path());
    conv.save(&good).unwrap();
    let mlp_path = dir.path().join("mlp.json");
    vae_run(&tiny_mlp_vae(), dir.path()).0.save(&mlp_path).unwrap();
    let json = std::fs::read_to_string(&good).unwrap();
    let weights = std::fs::read(good.with_extension("safetensors")).unwrap();
    let mut messages = Vec::new();

    // The MLP VAE's weights under the conv run file, which names their size and sha256 (as a save would).
    let p = copy_run(&good, dir.path(), "swapped");
    let mlp_weights = std::fs::read(mlp_path.with_extension("safetensors")).unwrap();
    std::fs::write(p.with_extension("safetensors"), &mlp_weights).unwrap();
    edit_run(&p, |v| {
        v["weights"]["bytes"] = mlp_weights.len().into();
        v["weights"]["sha256"] = sha256_hex(&mlp_weights).into();
    });
    let message = refused(AnyRun::load(&p), &p, "corrupt");
    assert!(message.contains("tensor"), "{message}");
    messages.push(message);

    // The architecture changed so that it still fits together but not the weights: fewer channels in the first
    // convolution; no batch normalisation where the weights have one.
    let p = copy_run(&good, dir.path(), "channels");
    edit_run(&p, |v| {
        let encoder = &mut v["architecture"]["networks"]["encoder"];
        encoder[0]["c_out"] = 16.into();
        encoder[1]["c_in"] = 16.into();
    });
    let message = refused(AnyRun::load(&p), &p, "corrupt");
    assert!(message.contains("tensor encoder.0.") && message.contains("the architecture says"), "{message}");
    messages.push(message);
    let p = copy_run(&good, dir.path(), "no-norm");
    edit_run(&p, |v| v["architecture"]["networks"]["encoder"][1]["norm"] = false.into());
    let message = refused(AnyRun::load(&p), &p, "corrupt");
    assert!(message.contains("does not name"), "{message}");
    messages.push(message);

    // Layouts that do not fit together: a larger kernel with the same padding, a decoder that ends in two
    // channels, a latent dimension the dense layers do not have, no image side.
    let broken: [(&str, Edit, &str); 4] = [
        ("kernel", |v| v["architecture"]["networks"]["encoder"][0]["geometry"]["kernel"] = 5.into(), "padding"),
        ("channels-out", |v| v["architecture"]["networks"]["decoder"][3]["c_out"] = 2.into(), "8x8x2"),
        ("latent", |v| v["architecture"]["latent"] = 3.into(), "dense layer"),
        ("side", |v| v["architecture"]["image_side"] = serde_json::Value::Null, "images"),
    ];
    for (name, edit, expected) in broken {
        let p = copy_run(&good, dir.path(), name);
        edit_run(&p, edit);
        let message = refused(AnyRun::load(&p), &p, "corrupt");
        assert!(message.contains(expected), "{name}: {message}");
        messages.push(message);
    }
    for m in &messages {
        assert!(!m.contains("panicked"), "a readable message: {m}");
    }
    // Nothing was written, and the good run still opens.
    assert_eq!(std::fs::read_to_string(&good).unwrap(), json);
    assert_eq!(std::fs::read(good.with_extension("safetensors")).unwrap(), weights);
    assert_eq!(*vae_view(&AnyRun::load(&good).unwrap()), *vae_view(&conv));
}

/// Asserts the error is of the expected kind, names `file` and reads as a sentence a user can act on.
fn refused(result: Result<AnyRun, RunFileError>, file: &Path, kind: &str) -> String {
    let error = result.err().unwrap_or_else(|| panic!("{} must be refused ({kind})", file.display()));
    let message = error.to_string();
    let matches = match kind {
        "truncated" => matches!(error, RunFileError::Truncated { .. }),
        "corrupt" => matches!(error, RunFileError::Corrupt { .. }),
        "foreign" => matches!(error, RunFileError::Foreign { .. }),
        "newer" => matches!(error, RunFileError::Newer { .. }),
        "missing" => matches!(error, RunFileError::Read { .. }),
        other => panic!("unknown kind {other}"),
    };
    assert!(matches, "{kind}: got {error:?}");
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(message.contains(&name), "the message names {name}: {message}");
    message
}

fn copy_run(from: &Path, dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(format!("{name}.json"));
    std::fs::copy(from, &to).unwrap();
    std::fs::copy(from.with_extension("safetensors"), to.with_extension("safetensors")).unwrap();
    // The copy names its own weights file.
    let text = std::fs::read_to_string(&to).unwrap();
    let from_weights = from.with_extension("safetensors").file_name().unwrap().to_string_lossy().into_owned();
    std::fs::write(&to, text.replace(&from_weights, &format!("{name}.safetensors"))).unwrap();
    to
}

#[test]
fn truncated_damaged_foreign_and_newer_files_are_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("good.json");
    let (run, _) = flow_run(&tiny_flow(FlowKind::RealNvp));
    run.save(&good).unwrap();
    let json = std::fs::read_to_string(&good).unwrap();
    let weights = std::fs::read(good.with_extension("safetensors")).unwrap();
    let mut messages = Vec::new();

    // The run file cut short.
    let p = copy_run(&good, dir.path(), "cut");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, &text[..text.len() / 2]).unwrap();
    messages.push(refused(AnyRun::load(&p), &p, "truncated"));
    std::fs::write(&p, "").unwrap();
    messages.push(refused(AnyRun::load(&p), &p, "truncated"));

    // The run file damaged: not JSON any more, or a field of the wrong type, or shapes the weights do not have.
    let p = copy_run(&good, dir.path(), "damaged");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.replacen(&format!("\"format_version\": {FORMAT_VERSION},"), "\"format_version\": 1,,", 1))
        .unwrap();
    messages.push(refused(AnyRun::load(&p), &p, "corrupt"));
    std::fs::write(&p, text.replacen("\"seed\": 42", "\"seed\": \"forty-two\"", 1)).unwrap();
    messages.push(refused(AnyRun::load(&p), &p, "corrupt"));
    std::fs::write(&p, text.replacen("\"dim\": 2", "\"dim\": 3", 1)).unwrap();
    messages.push(refused(AnyRun::load(&p), &p, "corrupt"));

    // Foreign: a CSV file, somebody else's JSON, our own weights file picked by mistake.
    let p = dir.path().join("wine.csv");
    std::fs::write(&p, "a,b\n1,2\n").unwrap();
    messages.push(refused(AnyRun::load(&p), &p, "foreign"));
    let p = dir.path().join("package.json");
    std::fs::write(&p, "{\"name\": \"left-pad\", \"version\": \"1.3.0\"}").unwrap();
    messages.push(refused(AnyRun::load(&p), &p, "foreign"));
    let p = good.with_extension("safetensors");
    let message = refused(AnyRun::load(&p), &p, "foreign");
    assert!(message.contains("weights file"), "{message}");

    // Written by a newer version.
    let p = copy_run(&good, dir.path(), "newer");
    let text = std::fs::read_to_string(&p).unwrap();
    let newer = FORMAT_VERSION + 1;
    std::fs::write(
        &p,
        text.replacen(&format!("\"format_version\": {FORMAT_VERSION},"), &format!("\"format_version\": {newer},"), 1),
    )
    .unwrap();
    let message = refused(AnyRun::load(&p), &p, "newer");
    assert!(message.contains("newer"), "{message}");

    // The weights cut short, damaged (one byte), or missing.
    let p = copy_run(&good, dir.path(), "short");
    let w = p.with_extension("safetensors");
    std::fs::write(&w, &weights[..weights.len() - 10]).unwrap();
    messages.push(refused(AnyRun::load(&p), &w, "truncated"));
    let p = copy_run(&good, dir.path(), "flipped");
    let w = p.with_extension("safetensors");
    let mut flipped = weights.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    std::fs::write(&w, &flipped).unwrap();
    messages.push(refused(AnyRun::load(&p), &w, "corrupt"));
    let p = copy_run(&good, dir.path(), "alone");
    std::fs::remove_file(p.with_extension("safetensors")).unwrap();
    let message = refused(AnyRun::load(&p), &p, "missing");
    assert!(message.contains("alone.safetensors"), "{message}");

    // A run of the other lab, asked for as a BNN.
    let wrong = Run::<BnnView>::load(&good).expect_err("a flow is not a BNN");
    assert!(matches!(wrong, RunFileError::WrongLab { .. }), "{wrong:?}");

    for m in &messages {
        assert!(!m.is_empty() && !m.contains("Error(") && !m.contains("panicked"), "a readable message: {m}");
    }
    // Loading wrote nothing: the good run is as it was and still opens.
    assert_eq!(std::fs::read_to_string(&good).unwrap(), json);
    assert_eq!(std::fs::read(good.with_extension("safetensors")).unwrap(), weights);
    AnyRun::load(&good).expect("the good run still opens");
}

#[test]
fn a_failed_write_leaves_the_old_file_and_no_temporary_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("notes.txt");
    std::fs::write(&target, "the old content").unwrap();
    let failed = write_atomically(&target, |f| {
        use std::io::Write as _;
        f.write_all(b"half of the new cont")?;
        Err(std::io::Error::other("the disk is full"))
    });
    assert_eq!(failed.unwrap_err().to_string(), "the disk is full");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "the old content", "the old file is intact");
    let names = |dir: &Path| {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    };
    assert_eq!(names(dir.path()), ["notes.txt"], "the temporary file is gone");
    write_atomically(&target, |f| std::io::Write::write_all(f, b"new")).unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
    assert_eq!(names(dir.path()), ["notes.txt"]);

    // A save that fails half-way (the run file's name is taken by a folder, so its rename fails after the
    // weights were written): the old weights stay, and nothing else is left behind.
    let (run, _) = flow_run(&tiny_flow(FlowKind::Affine));
    let blocked = dir.path().join("blocked.json");
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(dir.path().join("blocked.safetensors"), "old weights").unwrap();
    let error = run.save(&blocked).expect_err("the folder is in the way");
    assert!(matches!(error, RunFileError::Write { .. }) && error.to_string().contains("blocked.json"), "{error}");
    assert_eq!(std::fs::read_to_string(dir.path().join("blocked.safetensors")).unwrap(), "old weights");
    assert_eq!(names(dir.path()), ["blocked.json", "blocked.safetensors", "notes.txt"]);

    // A save into a folder that does not exist changes nothing either.
    let nowhere = dir.path().join("no-such-folder").join("run.json");
    assert!(matches!(run.save(&nowhere), Err(RunFileError::Write { .. })));
    assert_eq!(names(dir.path()), ["blocked.json", "blocked.safetensors", "notes.txt"]);

    // Saving over a run replaces it; a crash after the run file's rename but before the weights' (the new
    // weights still under `.new`, the old ones in place) still opens the new run.
    let path = dir.path().join("over.json");
    let (first, _) = flow_run(&tiny_flow(FlowKind::Affine));
    first.save(&path).unwrap();
    let old_weights = std::fs::read(dir.path().join("over.safetensors")).unwrap();
    let (second, _) = flow_run(&FlowConfig { seed: 7, ..tiny_flow(FlowKind::Affine) });
    second.save(&path).unwrap();
    assert_eq!(AnyRun::load(&path).unwrap().seed(), 7);
    std::fs::rename(dir.path().join("over.safetensors"), dir.path().join("over.safetensors.new")).unwrap();
    std::fs::write(dir.path().join("over.safetensors"), &old_weights).unwrap();
    let recovered = AnyRun::load(&path).expect("the pending weights are found");
    assert_eq!(flow_params(&recovered), flow_params(&second));
}

#[test]
fn re_running_a_run_file_with_its_seed_reproduces_every_epoch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runs = [
        bnn_run(&BnnConfig { posterior: Posterior::MeanField, ..tiny_bnn() }).0,
        flow_run(&tiny_flow(FlowKind::Maf)).0,
        vae_run(&tiny_mlp_vae(), dir.path()).0,
        vae_run(&tiny_conv_vae(), dir.path()).0,
    ];
    for run in runs {
        let path = dir.path().join(format!("{}.json", run.model_name()));
        run.save(&path).unwrap();
        // From the file alone: its dataset (found by its source, checked by its sha256), its settings, its seed.
        let opened = open_run(&path).expect("open with the data");
        let mut epochs = Vec::new();
        let again = opened.run.rerun(&opened.prepared, |e| epochs.push(e)).expect("re-run");
        assert_eq!(epochs, (1..=run.snapshot().total_epochs).collect::<Vec<_>>());
        assert_eq!(
            first_difference(&again.snapshot().history, &opened.run.snapshot().history),
            None,
            "{}",
            run.model_name()
        );
        assert_eq!(again.snapshot().step, run.snapshot().step);
        match (again.model_view(), run.model_view()) {
            (ModelView::Bnn { view: a, .. }, ModelView::Bnn { view: b, .. }) => {
                assert_eq!(bnn_bits(&a.params), bnn_bits(&b.params));
            }
            (ModelView::Flow { params: a, .. }, ModelView::Flow { params: b, .. }) => assert_eq!(a, b),
            (ModelView::Vae { view: a, .. }, ModelView::Vae { view: b, .. }) => {
                assert_eq!(vae_bits(&a.params), vae_bits(&b.params));
                assert_eq!(a, b);
            }
            _ => panic!("the re-run is of another lab"),
        }
    }
}

#[test]
fn a_run_needs_its_own_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (table, _, spec) = moons();
    // A CSV copy of the moons: the run records its path and the values' sha256.
    let csv = dir.path().join("moons.csv");
    let mut text = String::from("x,y,component\n");
    for row in table.values.chunks(3) {
        let _ = writeln!(text, "{},{},{}", row[0], row[1], row[2]);
    }
    std::fs::write(&csv, &text).unwrap();
    let request = LoadRequest::File { path: csv.clone(), options: CsvOptions::default() };
    let table = request.run(&NoProgress).unwrap();
    let data = Arc::new(prepare(&table, &spec).unwrap());
    let config = tiny_flow(FlowKind::Affine);
    let snapshot = train(Box::new(FlowTrainer::new(config.clone(), &data).unwrap()));
    let run = AnyRun::from_snapshot(RunConfig::Flow(config), &snapshot, &table, &request, spec).unwrap();
    let path = dir.path().join("csv-run.json");
    run.save(&path).unwrap();
    let (record, _) = read_run_file(&path).unwrap();
    assert_eq!(record.dataset.rows, 600);
    assert_eq!(record.columns.iter().map(|c| c.role).collect::<Vec<_>>(), [Role::Feature, Role::Feature, Role::Label]);
    load_dataset(&path, run.dataset(), run.spec()).expect("the same file");
    // A changed file is refused by its checksum.
    std::fs::write(&csv, text.replacen('0', "1", 1)).unwrap();
    let error = load_dataset(&path, run.dataset(), run.spec()).expect_err("other data");
    assert!(error.to_string().contains("sha256"), "{error}");
}

/// A run on a text feature of three kinds records that it went in one input per text: opened again, its data has
/// the same inputs and the network the same predictions. A file saved before one-hot encoding has no such record and
/// reads as the texts' numbers, as such a run trained; one-hot weights under it are refused, naming the mismatch.
#[test]
fn a_run_keeps_how_its_texts_went_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (moons, _, _) = moons();
    let csv = dir.path().join("moons-sides.csv");
    let mut text = String::from("x,y,side,moon\n");
    for row in moons.values.chunks(3) {
        let side = ["left", "middle", "right"][usize::from(row[0] > 0.0) + usize::from(row[0] > 1.0)];
        let _ = writeln!(text, "{},{},{side},{}", row[0], row[1], row[2]);
    }
    std::fs::write(&csv, &text).unwrap();
    let request = LoadRequest::File { path: csv, options: CsvOptions::default() };
    let table = request.run(&NoProgress).unwrap();
    let spec = default_spec_for_lab(Lab::Bnn, &table);
    assert_eq!(spec.roles, [Role::Feature, Role::Feature, Role::Feature, Role::Label]);
    let data = Arc::new(prepare(&table, &spec).unwrap());
    assert_eq!(data.feature_names, ["x", "y", "side = left", "side = middle", "side = right"]);
    let config = tiny_bnn();
    let snapshot = train(Box::new(BnnTrainer::new(config.clone(), &data).unwrap()));
    let run = AnyRun::from_snapshot(RunConfig::Bnn(config), &snapshot, &table, &request, spec).unwrap();
    let path = dir.path().join("sides.json");
    run.save(&path).unwrap();
    let (record, _) = read_run_file(&path).unwrap();
    assert_eq!(record.split.text_features, TextFeatures::OneHot);
    let opened = open_run(&path).expect("opens");
    assert_eq!(*opened.prepared, *data, "the same inputs, split and scaling");
    let n = data.n_test();
    let predict = |run: &AnyRun| bits(&bnn_view(run).params.predict_samples_cpu(&data.x_test, n, 20, 3));
    assert_eq!(predict(&opened.run), predict(&run), "identical predictions");

    // Saved before the record existed: the texts' numbers, one input for the side.
    edit_run(&path, |v| {
        v["split"].as_object_mut().expect("the split").remove("text_features");
    });
    let old = AnyRun::load(&path).expect("an older file reads");
    assert_eq!(old.spec().text_features, TextFeatures::Codes);
    let Err(error) = open_run(&path) else { panic!("a network of five inputs on three must be refused") };
    assert!(matches!(error, RunFileError::Dataset { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("sides.json") && message.contains("the network takes 5 features but the data has 3"));
}

/// A file with missing cells kept as missing: a run records the rows its roles could use, and finds them again from
/// the file; a run saved when the reader dropped every row with a missing cell (whatever its roles) finds those.
#[test]
fn a_run_on_a_file_with_missing_cells_finds_its_rows_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (moons, _, _) = moons();
    let csv = dir.path().join("moons-with-gaps.csv");
    let mut text = String::from("x,y,w\n");
    for (i, row) in moons.values.chunks(3).enumerate() {
        // x missing once, the ignored w every seventh row.
        let x = if i == 3 { "NA".to_owned() } else { row[0].to_string() };
        let w = if i % 7 == 0 { String::new() } else { i.to_string() };
        let _ = writeln!(text, "{x},{},{w}", row[1]);
    }
    std::fs::write(&csv, &text).unwrap();
    let options = CsvOptions { missing: MissingPolicy::DropRows, ..CsvOptions::default() };
    let request = LoadRequest::File { path: csv.clone(), options };
    let read = request.run(&NoProgress).unwrap();
    let spec =
        DataSpec { roles: vec![Role::Feature, Role::Feature, Role::Ignored], ..default_spec_for_lab(Lab::Flow, &read) };
    let table = complete_rows(read.clone(), &spec);
    assert_eq!(table.n_rows(), 599, "only the row without x is left out");
    let data = Arc::new(prepare(&table, &spec).unwrap());
    let config = tiny_flow(FlowKind::Affine);
    let snapshot = train(Box::new(FlowTrainer::new(config.clone(), &data).unwrap()));
    let run = AnyRun::from_snapshot(RunConfig::Flow(config), &snapshot, &table, &request, spec.clone()).unwrap();
    let path = dir.path().join("gaps-run.json");
    run.save(&path).unwrap();
    let (found, _) = load_dataset(&path, run.dataset(), &spec).expect("the same rows");
    assert_eq!((found.n_rows(), table_sha256(&found)), (599, run.dataset().sha256.clone()));
    // Saved before: every row with a missing cell dropped as the file was read.
    let dropped_as_read = complete_rows(read, &DataSpec { roles: vec![Role::Feature; 3], ..spec.clone() });
    let legacy = DatasetRecord::of(&dropped_as_read, &request);
    let (found, _) = load_dataset(&path, &legacy, &spec).expect("the rows the reader kept then");
    assert_eq!((found.n_rows(), table_sha256(&found)), (600 - 86 - 1, legacy.sha256));

    // No missing number, but a label of text left blank once: no class, so its row is left out; a run saved when
    // "(missing)" was a class finds its data but is refused with why: its rows can no longer be prepared as trained.
    let labelled = dir.path().join("moons-labelled.csv");
    let mut text = String::from("x,y,moon\n");
    for (i, row) in moons.values.chunks(3).enumerate() {
        let moon = match (i, row[2]) {
            (5, _) => "",
            (_, c) if c < 0.5 => "upper",
            _ => "lower",
        };
        let _ = writeln!(text, "{},{},{moon}", row[0], row[1]);
    }
    std::fs::write(&labelled, &text).unwrap();
    let request = LoadRequest::File { path: labelled, options: CsvOptions::default() };
    let read = request.run(&NoProgress).unwrap();
    let spec = DataSpec { roles: vec![Role::Feature, Role::Feature, Role::Label], ..spec };
    let table = complete_rows(read.clone(), &spec);
    assert_eq!(table.n_rows(), 599, "the unlabelled row is left out");
    let data = Arc::new(prepare(&table, &spec).unwrap());
    let config = tiny_flow(FlowKind::Affine);
    let snapshot = train(Box::new(FlowTrainer::new(config.clone(), &data).unwrap()));
    let run = AnyRun::from_snapshot(RunConfig::Flow(config), &snapshot, &table, &request, spec.clone()).unwrap();
    let path = dir.path().join("labelled-run.json");
    run.save(&path).unwrap();
    let (found, _) = load_dataset(&path, run.dataset(), &spec).expect("the same rows");
    assert_eq!((found.n_rows(), table_sha256(&found)), (599, run.dataset().sha256.clone()));
    let legacy = DatasetRecord::of(&read, &request);
    let error = load_dataset(&path, &legacy, &spec).expect_err("\"(missing)\" is no class now").to_string();
    assert!(error.contains("trained with \"(missing)\" as a class of its label"), "{error}");
}

#[test]
fn the_window_opens_a_run_into_its_lab_and_saves_it_again_and_a_bad_file_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("flow.json");
    let config = FlowConfig { seed: 5, ..tiny_flow(FlowKind::RealNvp) };
    // The flow lab's default data (3,000 moons), so the run's data is what the lab can load.
    let request = Lab::Flow.default_data();
    let default_table = request.run(&NoProgress).unwrap();
    let spec = default_spec_for_lab(Lab::Flow, &default_table);
    let data = Arc::new(prepare(&default_table, &spec).unwrap());
    let snapshot = train(Box::new(FlowTrainer::new(config.clone(), &data).unwrap()));
    let run =
        AnyRun::from_snapshot(RunConfig::Flow(config.clone()), &snapshot, &default_table, &request, spec).unwrap();
    run.save(&path).unwrap();

    let mut harness = harness();
    harness.state_mut().open_run(Some(path.clone()));
    wait_until(&mut harness, "the run to open", |app| {
        !app.run_file_busy() && app.lab(Lab::Flow).worker_state == Some(WorkerState::Finished)
    });
    let app = harness.state();
    assert_eq!(app.settings.tab, Lab::Flow, "the run's lab is shown");
    let flow = app.lab(Lab::Flow);
    let shown = flow.snapshot.clone().expect("the run's snapshot");
    assert_eq!(shown.history, run.snapshot().history, "the saved metrics");
    assert_eq!(shown.step, run.snapshot().step);
    let Some(ModelView::Flow { params, .. }) = &shown.model else { panic!("the flow's model is published") };
    assert_eq!(**params, *flow_params(&run), "the saved parameters, for the views");
    assert!(flow.message.as_ref().is_some_and(|m| !m.is_error() && m.text.contains("Opened")), "{:?}", flow.message);
    assert_eq!(harness.state_mut().flow_config_mut().clone(), config, "the settings for the next run");

    // Saved again from the window: the same run.
    let again = dir.path().join("again.json");
    harness.state_mut().save_run(Lab::Flow, Some(again.clone()));
    wait_until(&mut harness, "the save", |app| !app.run_file_busy());
    let message = harness.state().lab(Lab::Flow).message.clone().expect("a note");
    assert!(!message.is_error() && message.text.contains("again.json"), "{}", message.text);
    let resaved = AnyRun::load(&again).unwrap();
    assert_eq!(flow_params(&resaved), flow_params(&run));
    assert_eq!(resaved.snapshot(), run.snapshot());
    assert_eq!(resaved.config(), run.config());

    // A truncated run file: an error in the lab's message area, and the run on show stays.
    let bad = dir.path().join("bad.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&bad, &text[..text.len() / 3]).unwrap();
    harness.state_mut().open_run(Some(bad));
    wait_until(&mut harness, "the refusal", |app| !app.run_file_busy());
    let flow = harness.state().lab(Lab::Flow);
    let message = flow.message.clone().expect("an error");
    assert!(
        message.is_error() && message.text.contains("bad.json") && message.text.contains("truncated"),
        "{}",
        message.text
    );
    assert_eq!(flow.snapshot.as_ref().map(|s| &s.history), Some(&run.snapshot().history), "the run on show stays");
    assert_eq!(flow.worker_state, Some(WorkerState::Finished));

    // A BNN run on the lab's default data: its settings come back, its views predict, and Train re-runs it from
    // scratch through the worker to the same metrics.
    let request = Lab::Bnn.default_data();
    let wine = request.run(&NoProgress).unwrap();
    let spec = default_spec_for_lab(Lab::Bnn, &wine);
    let data = Arc::new(prepare(&wine, &spec).unwrap());
    let config = tiny_bnn();
    let snapshot = train(Box::new(BnnTrainer::new(config.clone(), &data).unwrap()));
    let bnn = AnyRun::from_snapshot(RunConfig::Bnn(config.clone()), &snapshot, &wine, &request, spec).unwrap();
    let bnn_path = dir.path().join("bnn.json");
    bnn.save(&bnn_path).unwrap();
    harness.state_mut().open_run(Some(bnn_path));
    wait_until(&mut harness, "the BNN run to open", |app| {
        !app.run_file_busy() && app.lab(Lab::Bnn).worker_state == Some(WorkerState::Finished)
    });
    assert_eq!(harness.state().settings.tab, Lab::Bnn);
    assert_eq!(harness.state().bnn_state().config, config, "the settings for the next run");
    wait_until(&mut harness, "the views' predictions", |app| app.bnn_state().has_predictions());
    harness.get_by_label("Train").click();
    harness.step();
    assert_ne!(harness.state().lab(Lab::Bnn).worker_state, Some(WorkerState::Finished), "a new run started");
    wait_until(&mut harness, "the re-run", |app| {
        let lab = app.lab(Lab::Bnn);
        lab.worker_state == Some(WorkerState::Finished) && lab.snapshot.as_ref().is_some_and(|s| s.epoch == 3)
    });
    let rerun = harness.state().lab(Lab::Bnn).snapshot.clone().unwrap();
    assert_eq!(first_difference(&rerun.history, &bnn.snapshot().history), None, "Train reproduces the run");
}

#[test]
fn the_window_opens_a_vae_run_into_its_lab_and_saves_it_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("conv.json");
    let config = VaeConfig { latent: 3, seed: 9, ..tiny_conv_vae() };
    let (run, _) = vae_run(&config, dir.path());
    run.save(&path).unwrap();

    let mut harness = harness();
    harness.state_mut().open_run(Some(path.clone()));
    wait_until(&mut harness, "the VAE run to open", |app| {
        !app.run_file_busy() && app.lab(Lab::Vae).worker_state == Some(WorkerState::Finished)
    });
    let app = harness.state();
    assert_eq!(app.settings.tab, Lab::Vae, "the run's lab is shown");
    let lab = app.lab(Lab::Vae);
    let shown = lab.snapshot.clone().expect("the run's snapshot");
    assert_eq!(shown.history, run.snapshot().history, "the saved metrics");
    let Some(ModelView::Vae { view, .. }) = &shown.model else { panic!("the VAE's model is published") };
    assert_eq!(**view, *vae_view(&run), "the saved networks and reconstructions, for the views");
    assert!(lab.message.as_ref().is_some_and(|m| !m.is_error() && m.text.contains("Opened")), "{:?}", lab.message);
    assert_eq!(app.vae_state().config, config, "the settings for the next run");
    assert_eq!(app.vae_state().hidden_text, "512, 256", "the hidden layers as the settings show them");
    wait_until(&mut harness, "the latent space", |app| app.vae_state().has_latents());

    // Saved again from the window: the same run.
    let again = dir.path().join("again.json");
    harness.state_mut().save_run(Lab::Vae, Some(again.clone()));
    wait_until(&mut harness, "the save", |app| !app.run_file_busy());
    let message = harness.state().lab(Lab::Vae).message.clone().expect("a note");
    assert!(!message.is_error() && message.text.contains("again.json"), "{}", message.text);
    let resaved = AnyRun::load(&again).unwrap();
    assert_eq!(*vae_view(&resaved), *vae_view(&run));
    assert_eq!(resaved.snapshot(), run.snapshot());
    assert_eq!(resaved.config(), run.config());
}

/// The model's parameters as the flow lab shows them.
fn shown_flow_params(app: &BayesExplorerApp) -> FlowParams {
    match app.lab(Lab::Flow).snapshot.as_ref().and_then(|s| s.model.clone()) {
        Some(ModelView::Flow { params, .. }) => (*params).clone(),
        other => panic!("no flow model on show: {other:?}"),
    }
}

#[test]
fn the_last_session_comes_back_with_its_tab_its_settings_and_its_model() {
    let dir = tempfile::tempdir().expect("temp dir");
    let session = dir.path().join("session");
    let app = BayesExplorerApp::with_session(egui::Context::default(), Settings::default(), Some(session.clone()));
    let mut harness = harness_for(app);
    harness.get_by_label("Flow").click();
    harness.run_steps(2);
    let config = FlowConfig { seed: 3, ..tiny_flow(FlowKind::RealNvp) };
    *harness.state_mut().flow_config_mut() = config.clone();
    harness.get_by_label("Train").click();
    wait_until(&mut harness, "the run", |app| app.lab(Lab::Flow).worker_state == Some(WorkerState::Finished));
    // Changed after training: the next run's settings, which must come back as left, not as the run had them.
    harness.state_mut().flow_config_mut().learning_rate = 4.2e-4;
    let trained = harness.state().lab(Lab::Flow).snapshot.clone().expect("the run's snapshot");
    let trained_params = shown_flow_params(harness.state());
    let settings = harness.state_mut().persist(true);
    assert!(session_run_path(&session, Lab::Flow).exists(), "the flow's run is kept");
    assert!(!session_run_path(&session, Lab::Bnn).exists(), "no file for a lab without a run");
    drop(harness);

    // eframe keeps the settings in a file; they must survive being written and read.
    let settings: Settings = serde_json::from_str(&serde_json::to_string(&settings).unwrap()).unwrap();
    let app = BayesExplorerApp::with_session(egui::Context::default(), settings.clone(), Some(session.clone()));
    let mut harness = harness_for(app);
    wait_until(&mut harness, "the last model", |app| {
        !app.restoring_session() && app.lab(Lab::Flow).worker_state == Some(WorkerState::Finished)
    });
    let app = harness.state();
    assert_eq!(app.settings.tab, Lab::Flow, "the tab");
    let flow = app.lab(Lab::Flow);
    let shown = flow.snapshot.clone().expect("the restored snapshot");
    assert_eq!(shown.history, trained.history, "every epoch's metrics");
    assert_eq!((shown.epoch, shown.step), (trained.epoch, trained.step));
    assert_eq!(shown_flow_params(app), trained_params, "the same parameters, to the last bit");
    let message = flow.message.clone().expect("a note");
    // A note in the text's colour, not a warning: restoring the last session is what a launch is meant to do.
    assert!(
        !message.is_error() && !message.is_warning() && message.text.starts_with("Restored the last session's model"),
        "{}",
        message.text
    );
    assert_eq!(
        harness.state_mut().flow_config_mut().clone(),
        FlowConfig { learning_rate: 4.2e-4, ..config.clone() },
        "the settings as they were left"
    );
    // Nothing changed: saving again leaves the file as it is.
    let before = std::fs::read(session_run_path(&session, Lab::Flow)).unwrap();
    harness.state_mut().persist(true);
    assert_eq!(std::fs::read(session_run_path(&session, Lab::Flow)).unwrap(), before);
    drop(harness);

    // A run file that no longer opens: a message naming it, the lab works on its data, the file stays.
    let broken = session_run_path(&session, Lab::Flow);
    std::fs::write(&broken, "{ not a run").unwrap();
    let app = BayesExplorerApp::with_session(egui::Context::default(), settings, Some(session.clone()));
    let mut harness = harness_for(app);
    wait_until(&mut harness, "the restore to fail", |app| !app.restoring_session());
    let flow = harness.state().lab(Lab::Flow);
    let message = flow.message.clone().expect("an error");
    assert!(message.is_error() && message.text.contains("flow-run.json"), "{}", message.text);
    assert!(flow.data.is_some() && flow.snapshot.is_none(), "the lab has its data and no model");
    harness.state_mut().persist(true);
    assert_eq!(std::fs::read(&broken).unwrap(), b"{ not a run", "the file is kept for the user");
    assert_eq!(
        harness.state_mut().flow_config_mut().learning_rate.to_bits(),
        4.2e-4f64.to_bits(),
        "the settings still come back"
    );
}

/// Trains `trainer` to the end, keeping the model at every epoch's end as the epoch scrubber keeps it (the
/// parameters alone, as `light` makes the copy); returns the last snapshot with the model and the kept models.
fn train_keeping(
    mut trainer: Box<dyn Trainer>,
    light: impl Fn(&ModelView) -> ModelView,
) -> (RunSnapshot, Vec<bayes_explorer::train::runfile::KeptModel>) {
    let steps_per_epoch = trainer.snapshot().steps_per_epoch as f64;
    let mut kept = Vec::new();
    while !trainer.finished() {
        let before = trainer.epochs_done();
        trainer.step().expect("a small run trains");
        if trainer.epochs_done() > before {
            let model = light(&trainer.model_view().expect("a model"));
            kept.push(bayes_explorer::train::runfile::KeptModel {
                step: model.step(),
                epoch: model.step() as f64 / steps_per_epoch,
                model,
                pinned: false,
            });
        }
    }
    (RunSnapshot { model: trainer.model_view(), ..trainer.snapshot() }, kept)
}

/// Whether two kept models have the same parameters (exactly: no value here is a NaN).
fn same_params(a: &ModelView, b: &ModelView) -> bool {
    match (a, b) {
        (ModelView::Bnn { view: a, .. }, ModelView::Bnn { view: b, .. }) => bnn_bits(&a.params) == bnn_bits(&b.params),
        (ModelView::Vae { view: a, .. }, ModelView::Vae { view: b, .. }) => vae_bits(&a.params) == vae_bits(&b.params),
        (ModelView::Flow { params: a, .. }, ModelView::Flow { params: b, .. }) => a == b,
        _ => false,
    }
}

#[test]
fn every_lab_saves_the_models_its_scrubber_kept_and_opens_them_bit_for_bit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bnn_light = |m: &ModelView| match m {
        ModelView::Bnn { step, view } => ModelView::Bnn {
            step: *step,
            view: Arc::new(BnnView { params: Arc::clone(&view.params), history: Arc::default() }),
        },
        _ => panic!("a BNN"),
    };
    let vae_light = |m: &ModelView| match m {
        ModelView::Vae { step, view } => ModelView::Vae {
            step: *step,
            view: Arc::new(VaeView {
                params: Arc::clone(&view.params),
                originals: Arc::default(),
                reconstructions: Arc::default(),
            }),
        },
        _ => panic!("a VAE"),
    };
    let runs: Vec<(&str, AnyRun, Vec<bayes_explorer::train::runfile::KeptModel>)> = {
        let (table, request, spec) = wine();
        let data = Arc::new(prepare(&table, &spec).expect("wine prepares"));
        let config = BnnConfig { epochs: 5, ..tiny_bnn() };
        let (snapshot, kept) = train_keeping(Box::new(BnnTrainer::new(config.clone(), &data).unwrap()), bnn_light);
        let bnn = AnyRun::from_snapshot(RunConfig::Bnn(config), &snapshot, &table, &request, spec).unwrap();
        let (table, request, spec) = digits_300(dir.path());
        let data = Arc::new(prepare(&table, &spec).expect("digits prepare"));
        let config = VaeConfig { epochs: 4, ..tiny_mlp_vae() };
        let (snapshot, vae_kept) = train_keeping(Box::new(VaeTrainer::new(config.clone(), &data).unwrap()), vae_light);
        let vae = AnyRun::from_snapshot(RunConfig::Vae(config), &snapshot, &table, &request, spec).unwrap();
        let (table, request, spec) = moons();
        let data = Arc::new(prepare(&table, &spec).expect("moons prepare"));
        let config = FlowConfig { epochs: 4, ..tiny_flow(FlowKind::RealNvp) };
        let (snapshot, flow_kept) =
            train_keeping(Box::new(FlowTrainer::new(config.clone(), &data).unwrap()), ModelView::clone);
        let flow = AnyRun::from_snapshot(RunConfig::Flow(config), &snapshot, &table, &request, spec).unwrap();
        vec![("bnn", bnn, kept), ("vae", vae, vae_kept), ("flow", flow, flow_kept)]
    };
    for (name, run, kept) in runs {
        assert!(kept.len() >= 4, "{name}: {} models kept", kept.len());
        let path = dir.path().join(format!("{name}-kept.json"));
        run.clone().with_kept(kept.clone()).save(&path).expect("save");
        let loaded = AnyRun::load(&path).expect("load");
        assert_eq!(loaded.kept().len(), kept.len(), "{name}: every model kept");
        for (a, b) in kept.iter().zip(loaded.kept()) {
            assert_eq!((a.step, a.epoch.to_bits()), (b.step, b.epoch.to_bits()), "{name}");
            assert_eq!(b.model.step(), a.step, "{name}");
            assert!(same_params(&a.model, &b.model), "{name}: the model of step {}", a.step);
        }
        // The run itself is unchanged by its kept models, and a file without them has none.
        assert_eq!(loaded.snapshot(), run.snapshot(), "{name}");
        let plain = dir.path().join(format!("{name}-plain.json"));
        run.save(&plain).expect("save");
        assert!(AnyRun::load(&plain).expect("load").kept().is_empty());
    }
}

#[test]
fn a_run_file_keeps_at_most_its_budget_of_models_evenly_spread() {
    use bayes_explorer::train::runfile::{KEPT_FILE_BUDGET_BYTES, KeptModel, MAX_KEPT_IN_FILE};
    let dir = tempfile::tempdir().expect("temp dir");
    // The default RealNVP (6 couplings of 4 x 256): about 9.5 MB a model, so the file has room for a few.
    let (table, request, spec) = moons();
    let data = Arc::new(prepare(&table, &spec).expect("moons prepare"));
    let config = FlowConfig { epochs: 1, ..FlowConfig::default() };
    let trainer = FlowTrainer::new(config.clone(), &data).unwrap();
    let Some(ModelView::Flow { params, .. }) = trainer.model_view() else { panic!("a flow") };
    let snapshot = RunSnapshot { model: trainer.model_view(), ..trainer.snapshot() };
    // 201 copies of one model, as if kept over a run at step 1000 (the file keeps none after the run's step).
    let snapshot = RunSnapshot {
        step: 1000,
        model: Some(ModelView::Flow { step: 1000, params: Arc::clone(&params) }),
        ..snapshot
    };
    let kept = |pinned: Option<u64>| -> Vec<KeptModel> {
        (0..=200u64)
            .map(|k| KeptModel {
                step: k * 5,
                epoch: k as f64 / 2.0,
                model: ModelView::Flow { step: k * 5, params: Arc::clone(&params) },
                pinned: pinned == Some(k),
            })
            .collect()
    };
    let run = AnyRun::from_snapshot(RunConfig::Flow(config.clone()), &snapshot, &table, &request, spec.clone())
        .unwrap()
        .with_kept(kept(None));
    let path = dir.path().join("kept.json");
    run.save(&path).expect("save");
    let loaded = AnyRun::load(&path).expect("load");
    let n = loaded.kept().len();
    // As many as the budget holds (a model's tensors are its parameters' floats).
    let one = bayes_explorer::ui::history::ModelBytes::bytes(&*params);
    assert_eq!(n, (KEPT_FILE_BUDGET_BYTES / one).min(MAX_KEPT_IN_FILE), "{one} bytes a model");
    assert!(n >= 2, "{n} kept");
    let weights = std::fs::metadata(dir.path().join("kept.safetensors")).unwrap().len() as usize;
    assert!(weights <= KEPT_FILE_BUDGET_BYTES + 12 * 1024 * 1024, "{weights} bytes of weights");
    let epochs: Vec<f64> = loaded.kept().iter().map(|k| k.epoch).collect();
    assert_eq!((epochs[0], epochs[n - 1]), (0.0, 100.0), "the first and the latest");
    let gaps: Vec<f64> = epochs.windows(2).map(|w| w[1] - w[0]).collect();
    let (lo, hi) = gaps.iter().fold((f64::MAX, 0.0f64), |(lo, hi), g| (lo.min(*g), hi.max(*g)));
    assert!(hi - lo <= 0.5 + 1e-9, "evenly spread: gaps {gaps:?}");
    // The model pinned at the lowest held-out NLL (epoch 18.5, which no even spread picks) is kept as well, in place
    // of the pick nearest it: the opened run's "Show epoch" shows it.
    assert!(!epochs.contains(&18.5), "{epochs:?}");
    let run = AnyRun::from_snapshot(RunConfig::Flow(config), &snapshot, &table, &request, spec)
        .unwrap()
        .with_kept(kept(Some(37)));
    run.save(&path).expect("save");
    let loaded = AnyRun::load(&path).expect("load");
    let pinned: Vec<f64> = loaded.kept().iter().map(|k| k.epoch).collect();
    assert_eq!(pinned.len(), n, "as many as before");
    assert!(pinned.contains(&18.5), "the pinned model is kept: {pinned:?}");
    assert_eq!((pinned[0], pinned[n - 1]), (0.0, 100.0), "with the first and the latest");
}
