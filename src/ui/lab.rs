//! The pieces of one lab's page, the same for the three labs: the side panel's dataset and training sections (the
//! run's buttons, the lab's settings panel, the latest epoch), the central views, and starting a run. Each returns
//! what the user asked of the app (a load, a replaced run), which the app carries out (`app/page.rs`).

use std::path::PathBuf;
use std::sync::Arc;

use crate::Lab;
use crate::data::prepare::{check_lab, prepare, split_counts};
use crate::data::{BuiltinFile, LoadRequest, SynthKind, SynthSpec};
use crate::models::bnn::BnnTrainer;
use crate::models::flow::FlowTrainer;
use crate::models::trainer::LrSchedule;
use crate::models::vae::VaeTrainer;
use crate::train::runfile::RunConfig;
use crate::train::{Command, Trainer, TrainerFactory, Worker, WorkerState};
use crate::ui::bnn_settings::bnn_settings_ui;
use crate::ui::count::count;
use crate::ui::discard::Replacement;
use crate::ui::explain::LabViews;
use crate::ui::flow_settings::flow_settings_ui;
use crate::ui::lab_page::{labelled_combo, waiting};
use crate::ui::lab_state::{LabState, LoadTarget, RunOrigin, RunSource};
use crate::ui::message::Message;
use crate::ui::typed_path::path_from_typed;
use crate::ui::vae_settings::vae_settings_ui;

/// What the user asked of the dataset panel this frame.
pub(crate) enum DatasetAsk {
    /// "Load CSV…": pick a file in the native dialog.
    Dialog,
    /// A path typed or pasted into the path field.
    File(PathBuf),
    /// A built-in or generated dataset, used at once.
    Load(LoadRequest),
}

/// The central panel's views under the message area: the run's views while one is on show (unless the lab shows
/// its data instead), else the dataset. In presenter mode the flow's loss curves start closed (their own open or
/// closed state, apart from the desk's), so that the stages' plot fills a projector's short window.
pub(crate) fn views_ui(state: &mut LabState, presenting: bool, ui: &mut egui::Ui) {
    let lab = state.lab;
    explain_ui(state, ui);
    let line_page = state.flow.page == crate::ui::flow::FlowPage::Line;
    if lab == Lab::Flow && (state.worker.is_some() || line_page) && !state.flow.show_data {
        if let Some(snapshot) = &state.snapshot
            && !snapshot.history.is_empty()
            && !line_page
        {
            let header = egui::CollapsingHeader::new("Loss curves").id_salt(("flow-loss-curves", presenting));
            header.default_open(!presenting).show(ui, |ui| {
                let emphasised = state.flow.highlight == crate::ui::highlight::Highlight::FlowLoss;
                let scrubbed = state.flow.scrubbed_epoch();
                let recording = state.flow.recorder.busy();
                let averaged = state.run_origin.as_ref().is_some_and(|o| o.config.weight_average().is_some());
                let flags = (emphasised, scrubbed, recording, averaged);
                let n_train = state.data.as_ref().map(|d| split_counts(d.table.n_rows(), d.spec.test_fraction).0);
                // The epoch of the model kept nearest to an epoch: the one "Show epoch" would put on show.
                let history = &state.flow.scrubber.history;
                let kept = (n_train, |epoch| history.nearest_epoch(epoch));
                let show = crate::ui::flow::flow_loss_ui(snapshot, &mut state.flow.export, flags, kept, ui);
                if let Some(epoch) = show {
                    state.flow.show_epoch(epoch);
                }
            });
        }
        let snapshot = state.worker.as_ref().and(state.snapshot.as_ref());
        crate::ui::flow::flow_view_ui(&mut state.flow, snapshot, state.worker_state, state.data.as_ref(), ui);
        return;
    }
    if lab == Lab::Flow && !state.flow.show_data {
        // Before a run the flow's pages wait for one, but the 1-D picture needs none.
        crate::ui::flow::page_tabs_ui(&mut state.flow.page, false, ui);
    }
    if lab == Lab::Vae && state.worker.is_some() && !state.vae.show_data {
        let running = state.worker_state == Some(WorkerState::Running);
        let averaged = state.run_origin.as_ref().is_some_and(|o| o.config.weight_average().is_some());
        crate::ui::vae::vae_view_ui(&mut state.vae, state.snapshot.as_ref(), (running, averaged), ui);
        return;
    }
    if lab == Lab::Bnn && state.worker.is_some() && !state.bnn.show_data {
        let running = state.worker_state == Some(WorkerState::Running);
        crate::ui::bnn::bnn_view_ui(&mut state.bnn, state.snapshot.as_ref(), running, ui);
        return;
    }
    let loading = state.is_loading();
    match &mut state.data {
        Some(data) => crate::ui::data_view::data_view_ui(lab, data, &mut state.view, ui),
        None if loading => waiting(ui, "Loading the dataset…"),
        None => {
            ui.label("No dataset yet: load a CSV file or pick a built-in one.");
        }
    }
}

/// The "Explain" toggle above the views and, while it is on, the Explain panel docked at their right (`explain.rs`).
fn explain_ui(state: &mut LabState, ui: &mut egui::Ui) {
    crate::ui::explain::explain_toggle_ui(&mut state.explain, ui);
    let views = match state.lab {
        Lab::Bnn => LabViews::Bnn(&state.bnn),
        Lab::Vae => LabViews::Vae(&state.vae),
        Lab::Flow => LabViews::Flow(&state.flow),
    };
    // The run on show, unless the lab has no run (its data is on show: the panel says what training would show).
    let snapshot = state.worker.as_ref().and(state.snapshot.as_ref());
    let highlight = crate::ui::explain::explain_panel_ui(&mut state.explain, snapshot, &views, ui);
    // For the figures, drawn next: the part the hovered term belongs to, or none (each frame afresh).
    match state.lab {
        Lab::Bnn => state.bnn.highlight = highlight,
        Lab::Vae => state.vae.highlight = highlight,
        Lab::Flow => state.flow.highlight = highlight,
    }
    // A view wider than what the panel leaves is cut at the panel's edge rather than drawn over it.
    ui.shrink_clip_rect(ui.available_rect_before_wrap());
}

/// The side panel's dataset section of `state`'s lab: what is loaded, the load in progress, "Load CSV…", the path
/// field (`path_text`, shared by the labs) and the built-in and generated sets. The caller carries out the answer.
pub(crate) fn dataset_ui(state: &mut LabState, path_text: &mut String, ui: &mut egui::Ui) -> Option<DatasetAsk> {
    let lab = state.lab;
    let mut ask = None;
    ui.strong("Dataset");
    match &state.data {
        Some(data) => {
            let name = ui.label(&data.table.name);
            if let LoadRequest::File { path, .. } = &data.request {
                name.on_hover_text(path.display().to_string());
            }
            ui.label(format!("{} x {}", count(data.table.n_rows(), "row"), count(data.table.n_cols(), "column")));
            let features = data.spec.feature_columns().len();
            let output =
                data.spec.output_column().map(|(j, r)| format!(", {} \"{}\"", r.label(), data.table.columns[j].name));
            // A column of texts that goes in one input per text makes more inputs than columns: say how many, and why
            // on hover (the sentence made only then).
            let inputs = crate::data::prepare::input_count(&data.table, &data.spec);
            let inputs_text = if inputs == features { String::new() } else { format!(" ({inputs} inputs)") };
            let line = ui.label(format!("{}{inputs_text}{}", count(features, "feature"), output.unwrap_or_default()));
            if inputs != features {
                line.on_hover_ui(|ui| {
                    ui.label(crate::data::prepare::one_hot_note(&data.table, &data.spec).unwrap_or_default());
                });
            }
            if let Err(why) = check_lab(lab, &data.table, &data.spec) {
                ui.colored_label(ui.visuals().warn_fg_color, format!("The {} lab {why}.", lab.tab_name()));
            }
            if let Some(note) = crate::data::prepare::ordered_text_note(&data.table, &data.spec) {
                ui.colored_label(ui.visuals().warn_fg_color, "Texts read as ordered numbers (hover)")
                    .on_hover_text(note);
            }
            if lab == Lab::Flow
                && let Some(note) = crate::data::prepare::flow_few_values_note(&data.table, &data.spec)
            {
                ui.colored_label(ui.visuals().warn_fg_color, "A column of few values (hover)").on_hover_text(note);
            }
        }
        None => {
            ui.label("none loaded");
        }
    }
    if let Some((job, target)) = &state.loading {
        // The preview's Use has no Cancel: its short job holds the table and the roles the user chose, and a
        // cancelled one would lose them (the preview closed, nothing in the lab). It counts no fraction done: a
        // spinner says it works.
        let loading = if *target == LoadTarget::Previewed {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!("Putting {} into the {} lab…", job.request.describe(), lab.tab_name()))
            })
            .inner
        } else {
            ui.horizontal(|ui| {
                ui.add(egui::ProgressBar::new(job.fraction()).desired_width(160.0).show_percentage());
                if ui.button("Cancel").clicked() {
                    job.cancel();
                }
            });
            ui.label(format!("Loading {}…", job.request.describe()))
        };
        if let LoadRequest::File { path, .. } = &job.request {
            loading.on_hover_text(path.display().to_string());
        }
    }
    ui.add_space(4.0);
    if ui.button("Load CSV…").on_hover_text("Open a CSV file (, ; or tab separated, optionally .gz)").clicked() {
        ask = Some(DatasetAsk::Dialog);
    }
    ui.horizontal(|ui| {
        let edit = ui.add(egui::TextEdit::singleline(path_text).hint_text("or type a path").desired_width(200.0));
        let edit = edit.on_hover_text(
            "A path as typed or pasted: quotes around it, ~ for your home folder and file:// addresses are understood",
        );
        let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if (ui.button("Load").clicked() || enter)
            && let Some(path) = path_from_typed(path_text, std::env::home_dir().as_deref())
        {
            ask = Some(DatasetAsk::File(path));
        }
    });
    ui.label(egui::RichText::new("You can also drop a CSV file (or a run file) onto the window.").weak());
    ui.add_space(4.0);
    egui::CollapsingHeader::new("Built-in data").default_open(true).id_salt(("builtin", lab)).show(ui, |ui| {
        for b in BuiltinFile::ALL {
            if ui.button(b.label()).clicked() {
                ask = Some(DatasetAsk::Load(LoadRequest::Builtin(b)));
            }
        }
        ui.add_space(4.0);
        if let Some(spec) = generated_ui(lab, &mut state.generator, ui) {
            ask = Some(DatasetAsk::Load(LoadRequest::Synth(spec)));
        }
    });
    ask
}

/// The generated set's kind (among those the lab offers: [`SynthKind::offered_in`], a 2-D density for the flow and
/// the VAE, a 1-D regression for the BNN), points, noise and seed (`generator`: the lab's, kept in its state); the
/// set to load when "Generate" is clicked.
fn generated_ui(lab: Lab, generator: &mut Option<SynthSpec>, ui: &mut egui::Ui) -> Option<SynthSpec> {
    let kinds = SynthKind::offered_in(lab);
    let first = kinds.first().copied().unwrap_or(SynthKind::Moons);
    let mut spec = generator.unwrap_or_else(|| SynthSpec::default_for(first));
    if !kinds.contains(&spec.kind) {
        spec = SynthSpec::default_for(first);
    }
    let title = if first.is_regression() { "Generated 1-D regression:" } else { "Generated 2-D set:" };
    labelled_combo(ui, title, ("synth-kind", lab), spec.kind.label(), |ui| {
        for &k in kinds {
            if ui.selectable_label(spec.kind == k, k.label()).clicked() {
                if spec.kind.is_regression() != k.is_regression() {
                    spec.n_points = k.default_points();
                }
                spec.kind = k;
                spec.noise = k.default_noise();
            }
        }
    });
    egui::Grid::new(("synth-grid", lab)).num_columns(2).show(ui, |ui| {
        // The fields hold a value typed past their range at its end: the hover says where the ends are.
        let id = ui.label("Points").id;
        ui.add(egui::DragValue::new(&mut spec.n_points).range(10..=SynthSpec::MAX_POINTS).speed(50))
            .labelled_by(id)
            .on_hover_text(format!("10 to {} points", crate::data::table::grouped(SynthSpec::MAX_POINTS)));
        ui.end_row();
        let id = ui.label("Noise").id;
        let noise = ui.add(egui::DragValue::new(&mut spec.noise).range(0.0..=2.0).speed(0.005)).labelled_by(id);
        noise.on_hover_text(if spec.kind == SynthKind::Heteroscedastic {
            "Standard deviation of the noise per unit of |x|, 0 to 2: at x = 3 it is 3 times this"
        } else {
            "Standard deviation of the noise, 0 to 2"
        });
        ui.end_row();
        let id = ui.label("Seed").id;
        ui.add(egui::DragValue::new(&mut spec.seed)).labelled_by(id);
        ui.end_row();
    });
    let generate = ui.button("Generate").clicked().then_some(spec);
    *generator = Some(spec);
    generate
}

/// The side panel's training section of `state`'s lab: the run's buttons, its epoch, the data-or-views switch, the
/// settings and the latest epoch's metrics. Returns what would replace the run, for the caller to ask about or
/// carry out (`discard.rs`).
/// `show_settings: false` leaves the settings out (a tour's step hides them).
pub(crate) fn training_ui(state: &mut LabState, show_settings: bool, ui: &mut egui::Ui) -> Option<Replacement> {
    let lab = state.lab;
    ui.strong("Training");
    // What would replace the run; asked about first when the run has trained a while (`discard.rs`).
    let mut replacement = None;
    let run_state = state.worker_state;
    // Settings that cannot train disable Train, saying why on hover (the field says so in red; New model and the
    // comparison's buttons are refused in `start_run`, saying the same in the message line).
    let refusal = state.settings_refusal();
    let why = format!("Cannot train: {}", refusal.clone().unwrap_or_default());
    ui.horizontal_wrapped(|ui| {
        if ui
            .add_enabled(refusal.is_none(), egui::Button::new("Train"))
            .on_hover_text("Start a new run (stops the current one)")
            .on_disabled_hover_text(&why)
            .clicked()
        {
            replacement = Some(Replacement::Train);
        }
        if ui
            .button("New model")
            .on_hover_text("Build an untrained model, paused: look at it, then step or resume")
            .clicked()
        {
            replacement = Some(Replacement::NewModel);
        }
        let can_pause = run_state == Some(WorkerState::Running);
        let can_resume = run_state == Some(WorkerState::Paused);
        if ui.add_enabled(can_pause, egui::Button::new("Pause")).clicked()
            && let Some(w) = &state.worker
        {
            w.send(Command::Pause);
        }
        if ui.add_enabled(can_resume, egui::Button::new("Resume")).clicked()
            && let Some(w) = &state.worker
        {
            w.send(Command::Resume);
        }
        if ui.add_enabled(can_resume, egui::Button::new("Step")).on_hover_text("One minibatch step").clicked()
            && let Some(w) = &state.worker
        {
            w.send(Command::Step);
        }
        if ui.add_enabled(state.worker.is_some(), egui::Button::new("Reset")).clicked() {
            replacement = Some(Replacement::Reset);
        }
    });
    crate::ui::continuing::continue_ui(state, ui);
    if let Some(s) = &state.snapshot {
        ui.label(format!("Epoch {} of {}, step {}", s.epoch, s.total_epochs, s.step));
    }
    if lab == Lab::Flow && state.worker.is_some() {
        ui.checkbox(&mut state.flow.show_data, "Show the data table instead of the flow");
    }
    if lab == Lab::Bnn && state.worker.is_some() {
        ui.checkbox(&mut state.bnn.show_data, "Show the data table instead of the network");
    }
    if lab == Lab::Vae && state.worker.is_some() {
        ui.checkbox(&mut state.vae.show_data, "Show the data instead of the latent space");
    }
    ui.add_space(4.0);
    if show_settings {
        egui::CollapsingHeader::new("Settings").default_open(true).id_salt(("settings", lab)).show(ui, |ui| {
            // The learning rate also applies to the run in progress (e.g. lowered after a NaN), when it can train.
            if settings_panel_ui(state, ui)
                && let Some(w) = &state.worker
            {
                let rate = state.next_learning_rate();
                if crate::ui::settings_check::learning_rate(rate).refusal().is_none() {
                    w.send(Command::SetLearningRate(rate));
                }
            }
        });
    }
    // Asked for by the BNN's comparison page (drawn after this panel, which is why it arrives here).
    if std::mem::take(&mut state.bnn.start_requested) {
        replacement = Some(Replacement::Train);
    }
    if let Some(s) = &state.snapshot {
        ui.label(egui::RichText::new("Latest epoch").strong());
        if let Some(last) = s.history.last() {
            egui::Grid::new(("metrics", lab)).num_columns(2).show(ui, |ui| {
                for (k, v) in &last.metrics {
                    let (name, value) = metric_line(lab, k, *v);
                    ui.label(name);
                    ui.monospace(value);
                    ui.end_row();
                }
            });
        }
    }
    replacement
}

/// A line of "Latest epoch": the trainer's metric `key` (`kl_loss`, `coverage_95`, …) named as the pages name it,
/// and its value: a share as a percentage, anything else to four decimals (as the Explain panel writes the terms).
fn metric_line(lab: Lab, key: &str, value: f64) -> (String, String) {
    let percent = |name: &str| (name.to_owned(), format!("{:.1} %", value * 100.0));
    let plain = |name: &str| (name.to_owned(), format!("{value:.4}"));
    if let Some(level) = key.strip_prefix("coverage_") {
        return percent(&format!("coverage of the {level} % interval"));
    }
    if let Some(j) = key.strip_prefix("kl_dim_") {
        return plain(&format!("KL of latent dimension {j}"));
    }
    match (lab, key) {
        (Lab::Bnn, "data_loss") => plain("data term"),
        (Lab::Bnn, "kl_loss") => plain("KL / N"),
        (Lab::Vae, "recon_loss") => plain("reconstruction term"),
        (Lab::Vae, "kl_loss") => plain("KL term"),
        (_, "loss") => plain("loss"),
        (_, "train_rmse") => plain("train RMSE"),
        (_, "test_rmse") => plain("test RMSE"),
        (_, "mean_predictor_test_rmse") => plain("test RMSE of the training mean"),
        (_, "train_error_rate") => percent("train error rate"),
        (_, "test_error_rate") => percent("test error rate"),
        (_, "mode_predictor_test_error_rate") => percent("test error rate of the commonest class"),
        (_, "test_nll") => plain("test NLL (nats per row)"),
        (_, "mc_range_mean") => plain("mean range of the passes"),
        (_, "beta") => plain("β, the KL term's weight"),
        (_, "train_neg_elbo") => plain("train -ELBO"),
        (_, "test_neg_elbo") => plain("test -ELBO"),
        (_, "test_recon") => plain("test reconstruction term"),
        (_, "test_kl") => plain("test KL term"),
        (_, "knn5_accuracy") => percent("5-nearest-neighbour accuracy in z"),
        (_, "train_nll") => plain("train NLL (nats per point)"),
        (_, "heldout_nll") => plain("held-out NLL (nats per point)"),
        _ => plain(&key.replace('_', " ")),
    }
}

/// The settings panel of `state`'s lab: a line saying which run the fields apply to while one is on show, then the
/// lab's fields (with the values of the run on show beside those that differ). Returns whether the learning rate
/// changed (the caller sends it to the running run).
fn settings_panel_ui(state: &mut LabState, ui: &mut egui::Ui) -> bool {
    let running = state.worker.as_ref().and(state.run_origin.as_ref()).map(|o| o.config.clone());
    if running.is_some() {
        ui.label(
            egui::RichText::new(
                "These settings are for the next run: Train starts it. The run on show keeps its own (shown beside \
                 a field that differs), except the learning rate, which applies to it at once.",
            )
            .weak(),
        );
    }
    let rows = state.training_rows();
    let before = state.next_learning_rate();
    // Each lab's fields, with the run on show's settings when they are that lab's.
    match (state.lab, running) {
        (Lab::Bnn, Some(RunConfig::Bnn(run))) => bnn_settings_ui(&mut state.bnn, Some(&run), ui),
        (Lab::Bnn, _) => bnn_settings_ui(&mut state.bnn, None, ui),
        (Lab::Vae, Some(RunConfig::Vae(run))) => vae_settings_ui(&mut state.vae, Some(&run), rows, ui),
        (Lab::Vae, _) => vae_settings_ui(&mut state.vae, None, rows, ui),
        (Lab::Flow, Some(RunConfig::Flow(run))) => {
            // A schedule that moves the rate: the rate of the run's next step, beside the set one.
            let moving = (run.lr_schedule != LrSchedule::Constant).then_some(run.lr_schedule);
            let rate_now =
                moving.and_then(|s| state.snapshot.as_ref().map(|snap| (snap.rate_now(s), snap.rate_factor(s))));
            flow_settings_ui(&mut state.flow, Some(&run), rows, rate_now, ui);
        }
        (Lab::Flow, _) => flow_settings_ui(&mut state.flow, None, rows, None, ui),
    }
    state.next_learning_rate().to_bits() != before.to_bits()
}

/// Starts a new run in the lab (running, or paused untrained), dropping the one it had; settings that cannot train
/// are refused with the reason in the message line, and the run on show stays.
pub(crate) fn start_run(state: &mut LabState, ctx: egui::Context, start_running: bool) {
    if let Some(why) = state.settings_refusal() {
        state.message = Some(Message::error(format!("Cannot train: {why}")));
        return;
    }
    let Some(data) = &state.data else {
        state.message = Some(Message::error("Load a dataset first."));
        return;
    };
    if let Err(why) = check_lab(state.lab, &data.table, &data.spec) {
        state.message = Some(Message::error(format!("Cannot train: the {} lab {why}.", state.lab.tab_name())));
        return;
    }
    let prepared = match prepare(&data.table, &data.spec) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            state.message = Some(Message::error(format!("Cannot train: {e}")));
            return;
        }
    };
    // What "Save run…" needs besides the snapshot.
    let config = match state.lab {
        Lab::Bnn => RunConfig::Bnn(state.bnn.config.clone()),
        Lab::Vae => RunConfig::Vae(state.vae.config.clone()),
        Lab::Flow => RunConfig::Flow(state.flow.config.clone()),
    };
    let origin = RunOrigin {
        config,
        table: Arc::clone(&data.table),
        request: data.request.clone(),
        spec: data.spec.clone(),
        kept: Vec::new(),
    };
    let factory: TrainerFactory = if state.lab == Lab::Vae {
        let config = state.vae.config.clone();
        state.vae.new_run(Arc::clone(&prepared));
        Box::new(move || Ok(Box::new(VaeTrainer::new(config.clone(), &prepared)?) as Box<dyn Trainer>))
    } else if state.lab == Lab::Flow {
        let config = state.flow.config.clone();
        state.flow.new_run(Arc::clone(&prepared));
        Box::new(move || Ok(Box::new(FlowTrainer::new(config.clone(), &prepared)?) as Box<dyn Trainer>))
    } else {
        let config = state.bnn.config.clone();
        state.bnn.new_run(Arc::clone(&prepared), config.clone());
        Box::new(move || Ok(Box::new(BnnTrainer::new(config.clone(), &prepared)?) as Box<dyn Trainer>))
    };
    // Dropping the old worker stops and joins it before the new one starts.
    state.worker = None;
    state.run_origin = None;
    state.forget_continuation();
    state.snapshot = None;
    state.message = None;
    let name = format!("train-{}", state.lab.tab_name().to_lowercase());
    match Worker::spawn(&name, factory, start_running, crate::ui::lab_page::training_repaint(ctx)) {
        Ok(w) => {
            state.worker = Some(w);
            state.worker_state = Some(WorkerState::Starting);
            state.run_origin = Some(origin);
            state.run_source = RunSource::Started(std::time::Instant::now());
        }
        Err(e) => state.message = Some(Message::error(format!("cannot start the training thread: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use egui_kittest::Harness;
    use egui_kittest::kittest::Queryable;

    use super::{dataset_ui, metric_line};
    use crate::Lab;
    use crate::data::{CsvError, CsvOptions, LoadJob, LoadRequest};
    use crate::ui::lab_state::{LabState, LoadTarget, Loaded};

    /// A lab whose load for `target` runs until the returned sender is dropped.
    fn loading(target: LoadTarget) -> (LabState, std::sync::mpsc::Sender<()>) {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let request = LoadRequest::File { path: "/data/wine.csv".into(), options: CsvOptions::default() };
        let file = request.describe();
        let work = move |_: &dyn crate::data::csv::Progress| -> Result<Loaded, CsvError> {
            let _ = rx.recv();
            Err(CsvError::Cancelled { file })
        };
        let mut state = LabState::new(Lab::Bnn);
        state.loading = Some((LoadJob::spawn_work(request, work, || {}), target));
        (state, tx)
    }

    /// The dataset panel of `state`'s lab.
    fn dataset_panel(state: LabState) -> Harness<'static, LabState> {
        let mut harness = Harness::new_ui_state(
            |ui, state: &mut LabState| {
                let _ = dataset_ui(state, &mut String::new(), ui);
            },
            state,
        );
        harness.run_steps(2);
        harness
    }

    /// A file being read offers Cancel; the preview's Use being carried out does not, since cancelling it would close
    /// the preview and leave the lab without the file and the roles the user chose (it did).
    #[test]
    fn only_a_load_that_can_be_taken_back_offers_cancel() {
        let (state, _running) = loading(LoadTarget::Preview);
        let mut harness = dataset_panel(state);
        harness.get_by_label("Loading wine.csv…");
        harness.get_by_label("Cancel").click();
        harness.run_steps(1);
        assert!(harness.state().loading.as_ref().is_some_and(|(job, _)| job.is_cancelled()), "Cancel cancels");

        let (state, _running) = loading(LoadTarget::Previewed);
        let harness = dataset_panel(state);
        harness.get_by_label("Putting wine.csv into the BNN lab…");
        assert!(harness.query_by_label("Cancel").is_none(), "no Cancel while the preview's choice goes in");
    }

    #[test]
    fn latest_epoch_names_each_metric_as_the_pages_do_and_writes_shares_as_percentages() {
        assert_eq!(metric_line(Lab::Bnn, "kl_loss", 0.031_64), ("KL / N".to_owned(), "0.0316".to_owned()));
        assert_eq!(metric_line(Lab::Vae, "kl_loss", 5.0).0, "KL term");
        let coverage = metric_line(Lab::Bnn, "coverage_95", 0.295_8);
        assert_eq!(coverage, ("coverage of the 95 % interval".to_owned(), "29.6 %".to_owned()));
        assert_eq!(metric_line(Lab::Vae, "knn5_accuracy", 0.7).1, "70.0 %");
        assert_eq!(metric_line(Lab::Vae, "kl_dim_2", 1.5).0, "KL of latent dimension 2");
        assert_eq!(metric_line(Lab::Flow, "heldout_nll", 1.2).0, "held-out NLL (nats per point)");
        // A metric this list does not know is still shown, by its key.
        assert_eq!(metric_line(Lab::Flow, "new_thing", 2.0), ("new thing".to_owned(), "2.0000".to_owned()));
    }
}
