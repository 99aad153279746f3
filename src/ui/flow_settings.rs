//! The flow lab's settings panel: the kind of flow (each with its settings), layers, the hidden layers and units of
//! its networks and how they start, epochs, Adam's learning rate, batch size, rate schedule, gradient clip and seed;
//! the Keras or course settings.

use crate::compute::cpu::optim::{KERAS_EPSILON, TORCH_EPSILON};
use crate::models::flow::{CLIP_NORM, FlowConfig, FlowInit, FlowKind, WEIGHT_AVERAGE};
use crate::models::trainer::LrSchedule;
use crate::ui::flow::FlowUiState;
use crate::ui::lab_page::labelled_combo;
use crate::ui::settings_check::{
    self, Verdict, average_label, epochs_row, next_run_only, number_row, options_row, seed_row,
};

/// The flow's settings in the side panel; `running`: the settings of the run on show, if any; `rows`: the training
/// rows of the lab's data, if known; `rate_now`: the rate the run on show steps at now and its share of the set rate,
/// where its schedule moves it.
pub(crate) fn flow_settings_ui(
    flow: &mut FlowUiState,
    running: Option<&FlowConfig>,
    rows: Option<usize>,
    rate_now: Option<(f64, f64)>,
    ui: &mut egui::Ui,
) {
    let r = labelled_combo(ui, "Flow", "flow-kind", flow.config.kind.label(), |ui| {
        for k in FlowKind::ALL {
            if ui.selectable_label(flow.config.kind == k, k.label()).clicked() && flow.config.kind != k {
                flow.config = FlowConfig { seed: flow.config.seed, ..FlowConfig::default_for(k) };
            }
        }
    });
    next_run_only(r, running.is_some());
    let c = &mut flow.config;
    egui::Grid::new("flow-settings").num_columns(2).show(ui, |ui| {
        number_row(ui, "Layers", &mut c.layers, 0.05, running.map(|r| r.layers), |v| {
            settings_check::FLOW_LAYERS.check(v as f64)
        });
        if c.kind != FlowKind::Affine {
            let mut depth = c.hidden.len();
            let mut width = c.hidden.first().copied().unwrap_or(64);
            let a = number_row(ui, "Hidden layers", &mut depth, 0.05, running.map(|r| r.hidden.len()), |v| {
                settings_check::FLOW_DEPTH.check(v as f64)
            });
            let b =
                number_row(ui, "Hidden units", &mut width, 0.5, running.and_then(|r| r.hidden.first().copied()), |v| {
                    settings_check::FLOW_WIDTH.check(v as f64)
                });
            if a.changed() || b.changed() {
                c.hidden = vec![width; depth];
            } else if c.hidden.iter().any(|&w| w != width) {
                // Layers of different widths (an opened run's): the fields show the first; say what trains.
                let widths = c.hidden.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                settings_check::verdict_row(
                    ui,
                    &Verdict::Note(format!(
                        "Hidden units per layer: {widths}. Changing either field makes every layer alike."
                    )),
                );
            }
        }
        if c.kind != FlowKind::Affine {
            let running_init = running.is_some_and(|r| r.init != c.init);
            options_row(ui, ("Initial weights", "flow-init"), &mut c.init, running_init, |i| i.label().to_owned(), &[
                (
                    FlowInit::FanIn,
                    "Weights and biases uniform in ±1/√fan-in, PyTorch's default for a dense layer and the app's.",
                ),
                (
                    FlowInit::Glorot,
                    "Glorot-uniform weights and zero biases, Keras' default for a dense layer, as in the Keras Real \
                     NVP example.",
                ),
            ]);
        }
        let running_epsilon = running.is_some_and(|r| r.adam_epsilon.to_bits() != c.adam_epsilon.to_bits());
        options_row(ui, ("Adam ε", "flow-adam-epsilon"), &mut c.adam_epsilon, running_epsilon, epsilon_label, &[
            (TORCH_EPSILON, "PyTorch's. With it the flow leaves its early plateau on the moons as PyTorch does."),
            (
                KERAS_EPSILON,
                "Keras', as in the Keras Real NVP example. Half of a RealNVP's gradients start below it, so those \
                 weights move slowly and some seeds stay near 1.5 nats on the moons.",
            ),
        ]);
        epochs_row(ui, &mut c.epochs, running.map(|r| r.epochs));
        let run = running.map(|r| (r.learning_rate, r.batch_size));
        settings_check::adam_rows(ui, &mut c.learning_rate, &mut c.batch_size, run, rows);
        let running_schedule = running.is_some_and(|r| r.lr_schedule != c.lr_schedule);
        let schedule_name = |s: LrSchedule| s.label().to_owned();
        options_row(ui, ("Rate schedule", "flow-lr-schedule"), &mut c.lr_schedule, running_schedule, schedule_name, &[
            (
                LrSchedule::Constant,
                "The rate above at every step, as in the Keras examples (the default). The loss keeps jumping about \
                 its minimum; that noise also keeps the flow from fitting the training points too closely.",
            ),
            (
                LrSchedule::Cosine,
                "The learning rate falls as a half cosine from the rate above to 0 at the last step, so the last \
                 epochs settle in a minimum of the training loss. It fits the training points more tightly: watch \
                 the held-out NLL rise above the training NLL (overfitting).",
            ),
        ]);
        let running_clip = running.is_some_and(|r| r.clip_norm != c.clip_norm);
        let clipped = format!(
            "Where a minibatch's gradient (every weight's together) is longer than {CLIP_NORM}, the step takes it \
             shortened to {CLIP_NORM}. A RealNVP's is about 12 most of the time and that long only in the loss's \
             largest jumps, which come from points the flow puts at a low density; clipped, it jumps less far. On \
             four sharp two-dimensional data sets a RealNVP ended level with plain PyTorch on the training rows \
             over 5-22 seeds (unclipped, 0.02-0.07 nats higher); on the held-out rows level on three and 0.06 \
             higher on the pinwheel over twenty seeds, within its seeds' spread. RealNVP's default."
        );
        options_row(ui, ("Gradient clip", "flow-clip-norm"), &mut c.clip_norm, running_clip, clip_label, &[
            (Some(CLIP_NORM), &clipped),
            (
                None,
                "Every step takes its minibatch's whole gradient, as PyTorch and Keras do unless told otherwise (and \
                 as the Keras Real NVP example does). The MAF's and the affine flow's default.",
            ),
        ]);
        let running_average = running.is_some_and(|r| r.weight_average != c.weight_average);
        let averaged = format!(
            "The model the run shows, evaluates and saves is a moving average of its weights: after every step the \
             average keeps {WEIGHT_AVERAGE} of itself and takes {:.3} of the new weights (about the last thousand \
             steps; fewer in the first steps). At a constant rate the weights keep wandering about the minimum, so \
             the last step's are a noisy pick; their average sits nearer the middle. From the same runs it lowered \
             the held-out NLL by about 0.08-0.11 nats on the pinwheel, the eight Gaussians and the circles (lower on \
             22 seeds of 23). The steps themselves, and the training loss the curves \
             show (each minibatch's as it was taken), are the weights'. RealNVP's default.",
            1.0 - WEIGHT_AVERAGE
        );
        options_row(ui, ("Weight average", "flow-weight-average"), &mut c.weight_average, running_average, average_label, &[
            (Some(WEIGHT_AVERAGE), &averaged),
            (
                None,
                "The model is the last step's weights, as in the Keras Real NVP example and plain PyTorch. The MAF's \
                 and the affine flow's default.",
            ),
        ]);
        if let Some((rate, factor)) = rate_now {
            ui.label("Rate now");
            ui.label(egui::RichText::new(format!("{rate:.2e} ({:.1} %)", 100.0 * factor)).weak()).on_hover_text(
                "The rate the run on show takes its next step at, and that as a share of its learning rate: its \
                 schedule's factor after t of its T steps (cosine: ½(1 + cos(π t / T))).",
            );
            ui.end_row();
        }
        seed_row(ui, &mut c.seed, running.map(|r| r.seed));
    });
    let hover = "The Keras RealNVP or the course's MAF settings, with PyTorch's initial weights and Adam ε, and for \
                 RealNVP the gradient clip and the weight average (the Keras example's are one choice away above)";
    if ui.button("Course defaults").on_hover_text(hover).clicked() {
        flow.config = FlowConfig::default_for(flow.config.kind);
    }
}

/// The gradient clip as the settings show it.
fn clip_label(clip: Option<f64>) -> String {
    clip.map_or_else(|| "Off".to_owned(), |norm| format!("At norm {norm}"))
}

/// Adam's epsilon as the settings show it: whose it is where it is PyTorch's or Keras'.
fn epsilon_label(epsilon: f64) -> String {
    if epsilon.to_bits() == TORCH_EPSILON.to_bits() {
        "1e-8 (PyTorch)".to_owned()
    } else if epsilon.to_bits() == KERAS_EPSILON.to_bits() {
        "1e-7 (Keras)".to_owned()
    } else {
        format!("{epsilon:e}")
    }
}
