//! `train bnn --sampler nuts`: the BNN's exact posterior sampled by NUTS, its diagnostics and its predictions on
//! the test rows, saved and opened as a run file ([`NutsRun`]).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use super::{CliError, NoiseArg, SamplerArg, TrainArgs, bnn_config, format_metrics};
use crate::Lab;
use crate::data::prepare::{DataSpec, OutputKind, Prepared};
use crate::data::{LoadRequest, Table};
use crate::models::bnn::{BnnTask, train_subset};
use crate::models::nuts::{
    NoiseModel, NutsControl, NutsPosterior, NutsSettings, Phase, bnn_template, posterior_figures, sample_bnn,
};
use crate::train::runfile::{DatasetRecord, NutsRun, NutsRunConfig, load_dataset};

/// Refuses the NUTS-only options without `--sampler nuts`.
pub(super) fn check_vi_args(args: &TrainArgs) -> Result<(), CliError> {
    if args.chains.is_some()
        || args.warmup.is_some()
        || args.draws.is_some()
        || args.noise.is_some()
        || args.max_rows.is_some()
        || args.target_accept.is_some()
    {
        return Err(CliError::BadInput(
            "--chains, --warmup, --draws, --noise, --max-rows and --target-accept are for `train bnn --sampler nuts`"
                .into(),
        ));
    }
    Ok(())
}

/// The sampler's settings from the defaults and the command line.
fn nuts_settings(args: &TrainArgs) -> Result<NutsSettings, CliError> {
    let mut settings = NutsSettings { seed: args.seed, ..NutsSettings::default() };
    if let Some(c) = args.chains {
        settings.chains = c;
    }
    if let Some(w) = args.warmup {
        settings.warmup = w;
    }
    if let Some(d) = args.draws {
        settings.draws = d;
    }
    if let Some(n) = args.max_rows {
        settings.max_rows = n;
    }
    if let Some(p) = args.target_accept {
        settings.target_accept = p;
    }
    if let Some(noise) = args.noise {
        settings.noise = match noise {
            NoiseArg::Fixed => NoiseModel::Fixed,
            NoiseArg::Sampled => NoiseModel::Sampled,
        };
    }
    if settings.chains == 0 || settings.chains > 64 {
        return Err(CliError::BadInput(format!("--chains {}: give 1 to 64", settings.chains)));
    }
    if settings.draws < 4 {
        return Err(CliError::BadInput(format!("--draws {}: at least 4 are needed", settings.draws)));
    }
    if settings.max_rows == 0 {
        return Err(CliError::BadInput("--max-rows 0: give at least 1".into()));
    }
    if !(settings.target_accept > 0.0 && settings.target_accept < 1.0) {
        return Err(CliError::BadInput(format!(
            "--target-accept {}: give a probability between 0 and 1, such as 0.9",
            settings.target_accept
        )));
    }
    Ok(settings)
}

/// `train bnn --sampler nuts`: samples, prints the diagnostics and test figures, saves with `--save`.
pub(super) fn train_nuts(
    args: &TrainArgs,
    table: &Table,
    request: &LoadRequest,
    spec: DataSpec,
    prepared: &Prepared,
) -> Result<(), CliError> {
    if Lab::from(args.lab) != Lab::Bnn {
        return Err(CliError::BadInput("--sampler nuts is for the BNN lab".into()));
    }
    if args.epochs.is_some() || args.checkpoint.is_some() || args.export.is_some() || args.export_split.is_some() {
        return Err(CliError::BadInput(
            "--epochs, --checkpoint, --export and --export-split are not available with --sampler nuts".into(),
        ));
    }
    let config = bnn_config(args, prepared.n_train())?;
    if config.hidden.contains(&0) {
        return Err(CliError::BadInput("every hidden layer needs at least one unit".into()));
    }
    if !(config.prior_sd > 0.0 && config.prior_sd.is_finite()) {
        return Err(CliError::BadInput(format!("--prior-sd {}: give a number above 0", config.prior_sd)));
    }
    let settings = nuts_settings(args)?;
    let task = match &prepared.output {
        Some((_, OutputKind::Regression)) => BnnTask::Regression(config.head),
        Some((_, OutputKind::Classes { classes, .. })) => BnnTask::Classification { n_classes: classes.len().max(2) },
        None => return Err(CliError::BadInput("the BNN needs a target or label column".into())),
    };
    let d = prepared.n_features();
    let template = bnn_template(&config, d, task);
    let rows = train_subset(prepared.n_train(), config.train_fraction, config.seed);
    let x: Vec<f32> = rows.iter().flat_map(|&i| prepared.x_train[i * d..(i + 1) * d].iter().copied()).collect();
    let y: Vec<f32> = rows.iter().map(|&i| prepared.y_train[i]).collect();
    let control = NutsControl::new();
    let finished = AtomicBool::new(false);
    let posterior = std::thread::scope(|scope| {
        if !args.json {
            scope.spawn(|| report_progress(&control, &finished));
        }
        let result = sample_bnn(&template, &x, &y, rows.len(), &settings, &control);
        finished.store(true, Ordering::Relaxed);
        result
    })
    .map_err(|e| CliError::Failed(format!("NUTS: {e}")))?;
    let metrics = posterior_figures(&template, &posterior, &prepared.x_test, &prepared.y_test);
    let run = NutsRun {
        config: NutsRunConfig { sampler: "nuts".into(), bnn: config, nuts: settings },
        template,
        posterior,
        metrics,
        dataset: DatasetRecord::of(table, request),
        column_names: NutsRun::column_names_of(table),
        spec,
    };
    print_run(&run, args.json, None, &[("figures", &run.metrics)]);
    if let Some(path) = &args.save {
        run.save(path).map_err(|e| CliError::Failed(e.to_string()))?;
        eprintln!("saved the run to {}", path.display());
    }
    Ok(())
}

/// A line on stderr per chain each time it passes another 5 % of its iterations.
fn report_progress(control: &NutsControl, finished: &AtomicBool) {
    let mut shown: Vec<usize> = Vec::new();
    loop {
        let done = finished.load(Ordering::Relaxed);
        for (c, p) in control.progress().iter().enumerate() {
            if shown.len() <= c {
                shown.push(0);
            }
            let step = (p.done * 20).checked_div(p.total).unwrap_or(0);
            if step > shown[c] {
                shown[c] = step;
                let phase = match p.phase {
                    Phase::Starting => "starting",
                    Phase::Warmup => "warm-up",
                    Phase::Sampling => "sampling",
                    Phase::Done => "done",
                };
                eprintln!(
                    "chain {c}: {phase} {}/{} ({} %), {} divergence{}, step size {:.4}",
                    p.done,
                    p.total,
                    step * 5,
                    p.divergences,
                    if p.divergences == 1 { "" } else { "s" },
                    p.step_size
                );
            }
        }
        if done {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Per chain: divergences, step size, mean tree depth.
fn chain_stats(posterior: &NutsPosterior) -> serde_json::Value {
    json!(
        posterior
            .chains
            .iter()
            .map(|c| json!({
                "divergences": c.divergences,
                "warmup_divergences": c.warmup_divergences,
                "step_size": c.step_size,
                "mean_tree_depth": c.mean_tree_depth,
                "max_depth_hits": c.max_depth_hits,
                "gradient_evaluations": c.gradient_evaluations,
            }))
            .collect::<Vec<_>>()
    )
}

/// Prints a NUTS run: one JSON line (the settings, the chains' diagnostics, the warnings, and each named set of
/// figures: `figures` at the top level, others as objects), or text.
fn print_run(run: &NutsRun, as_json: bool, path: Option<&Path>, figures: &[(&str, &[(String, f64)])]) {
    let s = &run.config.nuts;
    let p = &run.posterior;
    if as_json {
        let mut line = serde_json::Map::new();
        line.insert("lab".into(), json!("bnn"));
        line.insert("model".into(), json!(run.model_name()));
        line.insert("data".into(), json!(run.dataset.name));
        line.insert("seed".into(), json!(s.seed));
        if let Some(path) = path {
            line.insert("run".into(), json!(path.display().to_string()));
        }
        line.insert("sampler".into(), json!("nuts"));
        line.insert("chains".into(), json!(s.chains));
        line.insert("warmup".into(), json!(s.warmup));
        line.insert("draws".into(), json!(s.draws));
        line.insert("max_depth".into(), json!(s.max_depth));
        line.insert("target_accept".into(), json!(s.target_accept));
        line.insert("noise".into(), json!(s.noise.cli_name()));
        line.insert("max_rows".into(), json!(s.max_rows));
        line.insert("rows_total".into(), json!(p.rows_total));
        line.insert("n_weights".into(), json!(p.n_weights));
        line.insert("hidden".into(), json!(run.config.bnn.hidden));
        line.insert("prior_sd".into(), json!(run.template.prior_sd));
        for (name, metrics) in figures {
            if *name == "figures" {
                for (k, v) in *metrics {
                    line.insert(k.clone(), json!(v));
                }
            } else {
                let object: serde_json::Map<_, _> = metrics.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
                line.insert((*name).to_owned(), object.into());
            }
        }
        line.insert("chain_stats".into(), chain_stats(p));
        line.insert("warnings".into(), json!(p.warnings()));
        println!("{}", serde_json::Value::Object(line));
        return;
    }
    let place = path.map(|p| format!(" run {}", p.display())).unwrap_or_default();
    println!(
        "BNN posterior by NUTS{place} on {}: {} chains x {} draws after {} warm-up, {} weights, {} of {} rows",
        run.dataset.name, s.chains, s.draws, s.warmup, p.n_weights, p.rows_used, p.rows_total
    );
    for (c, chain) in p.chains.iter().enumerate() {
        println!(
            "  chain {c}: {} divergences ({} in warm-up), step size {:.4}, mean tree depth {:.2}, {} at max depth",
            chain.divergences, chain.warmup_divergences, chain.step_size, chain.mean_tree_depth, chain.max_depth_hits
        );
    }
    println!("  max R-hat {:.4}, min bulk ESS {:.0}, {:.1} s", p.max_rhat(), p.min_ess_bulk(), p.seconds);
    for w in p.warnings() {
        println!("  warning: {w}");
    }
    for (name, metrics) in figures {
        println!("  {name}: {}", format_metrics(metrics));
    }
}

/// `train bnn --load RUN` of a NUTS run: its figures as saved and recomputed from the draws.
pub(super) fn open_nuts_run(args: &TrainArgs, path: &Path) -> Result<(), CliError> {
    if args.rerun || args.continue_run || args.epochs.is_some() || args.checkpoint.is_some() || args.export.is_some() {
        return Err(CliError::BadInput(format!(
            "{}: a NUTS run is shown as saved; --rerun, --continue, --epochs, --checkpoint and --export do not apply (sample again with --sampler nuts)",
            path.display()
        )));
    }
    debug_assert!(args.sampler == SamplerArg::Vi, "--load conflicts with --sampler");
    let bad = |e: String| CliError::BadInput(e);
    let run = NutsRun::load(path).map_err(|e| bad(e.to_string()))?;
    let (table, _) = load_dataset(path, &run.dataset, &run.spec).map_err(|e| bad(e.to_string()))?;
    let prepared = run.prepare(&table).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    let evaluated = run.evaluate(&prepared);
    print_run(&run, args.json, Some(path), &[("saved", &run.metrics), ("evaluated", &evaluated)]);
    if let Some(save) = &args.save {
        run.save(save).map_err(|e| CliError::Failed(e.to_string()))?;
        eprintln!("saved the run to {}", save.display());
    }
    Ok(())
}
