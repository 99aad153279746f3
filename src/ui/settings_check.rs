//! What the three labs' settings panels accept: the range of each numeric setting, the hidden-units field's
//! parsing, and a short note for a value that trains but does something unusual. One place for all three labs, so
//! that a field's red message, the Train button's hover and the refusal in the message line say the same.
//!
//! A value that cannot train stays in its field as typed, with a red line under it saying what is accepted, and
//! Train is disabled with that reason: the field never disagrees with what Train would train.
//!
//! Also the rows the labs' settings grids are made of (a number, a choice, the hidden units, the epochs and the seed),
//! each with that verdict under it and, while a run is on show, that run's value beside it.

use std::ops::RangeInclusive;

use crate::data::table::grouped;
use crate::ui::lab_page::labelled;

/// Most units one hidden layer may have.
pub const MAX_HIDDEN_UNITS: usize = 4096;

/// What the hidden-units field accepts, in words.
pub const HIDDEN_ACCEPTS: &str = "whole numbers from 1 to 4096, separated by commas";

/// The hover of a setting that applies to the next run only, while a run is on show.
pub const NEXT_RUN_ONLY: &str = "Applies to the next run (Train starts it); the run on show keeps its own value.";

/// How a setting's value stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to say.
    Fine,
    /// It trains, but does something the user may not expect: what will happen.
    Note(String),
    /// It cannot train: what is accepted.
    Refused(String),
}

impl Verdict {
    /// The refusal's text, if the value cannot train.
    #[must_use]
    pub fn refusal(&self) -> Option<&str> {
        match self {
            Self::Refused(why) => Some(why),
            Self::Fine | Self::Note(_) => None,
        }
    }
}

/// The values a numeric setting accepts.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The setting's name as its label shows it.
    pub name: &'static str,
    /// The least and the largest accepted value.
    pub range: RangeInclusive<f64>,
}

impl Rule {
    const fn new(name: &'static str, min: f64, max: f64) -> Self {
        Self { name, range: min..=max }
    }

    /// The accepted range in words ("from 1 to 100,000").
    #[must_use]
    pub fn accepts(&self) -> String {
        format!("from {} to {}", number(*self.range.start()), number(*self.range.end()))
    }

    /// Refused outside the range (or not a number), else fine.
    #[must_use]
    pub fn check(&self, value: f64) -> Verdict {
        if value.is_finite() && self.range.contains(&value) {
            Verdict::Fine
        } else {
            Verdict::Refused(format!("{} must be {}.", self.name, self.accepts()))
        }
    }
}

/// A number as the messages write it: whole numbers with thousands separators, others as short as exact.
#[must_use]
pub fn number(value: f64) -> String {
    #[allow(clippy::cast_possible_truncation)] // whole and below 1e15
    if value.fract() == 0.0 && value.abs() < 1e15 { grouped(value as i64) } else { format!("{value}") }
}

/// Every lab's learning rate.
pub const LEARNING_RATE: Rule = Rule::new("Learning rate", 1e-6, 1.0);
/// Every lab's batch size.
pub const BATCH_SIZE: Rule = Rule::new("Batch size", 1.0, 100_000.0);
/// Every lab's epochs.
pub const EPOCHS: Rule = Rule::new("Epochs", 1.0, 100_000.0);
/// The BNN's prior standard deviation.
pub const PRIOR_SD: Rule = Rule::new("Prior sd", 0.01, 100.0);
/// The BNN's Monte Carlo samples.
pub const MC_SAMPLES: Rule = Rule::new("Monte Carlo samples", 1.0, 10_000.0);
/// The VAE's latent dimension.
pub const LATENT: Rule = Rule::new("Latent dimension", 1.0, 64.0);
/// The VAE's KL weight.
pub const BETA: Rule = Rule::new("KL weight (beta)", 0.0, 100.0);
/// The VAE's manifold cells per side.
pub const CELLS: Rule = Rule::new("Manifold cells per side", 2.0, 40.0);
/// The flow's layers.
pub const FLOW_LAYERS: Rule = Rule::new("Layers", 1.0, 32.0);
/// The flow's hidden layers per network.
pub const FLOW_DEPTH: Rule = Rule::new("Hidden layers", 1.0, 8.0);
/// The flow's hidden units per layer.
pub const FLOW_WIDTH: Rule = Rule::new("Hidden units", 2.0, 1024.0);

/// A learning rate that trains but is unusually high.
const HIGH_LEARNING_RATE: f64 = 0.1;

/// The learning rate's verdict: refused out of range, a note when unusually high.
#[must_use]
pub fn learning_rate(value: f64) -> Verdict {
    match LEARNING_RATE.check(value) {
        Verdict::Fine if value > HIGH_LEARNING_RATE => Verdict::Note(format!(
            "Above {HIGH_LEARNING_RATE}: training may diverge (a NaN pauses the run and names where)."
        )),
        verdict => verdict,
    }
}

/// The batch size's verdict for `rows` training rows (when known): refused out of range, a note when it is larger
/// than the rows.
#[must_use]
pub fn batch_size(value: usize, rows: Option<usize>) -> Verdict {
    match BATCH_SIZE.check(value as f64) {
        Verdict::Fine => match rows {
            Some(rows) if value > rows => Verdict::Note(format!(
                "Larger than the {} training rows: each step takes all of them, one step per epoch.",
                number(rows as f64)
            )),
            _ => Verdict::Fine,
        },
        verdict => verdict,
    }
}

/// The hidden-units field parsed: "" is no hidden layer, else [`HIDDEN_ACCEPTS`]; the error says so, naming the
/// first part that is not accepted.
pub fn parse_hidden(text: &str) -> Result<Vec<usize>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|part| {
            let part = part.trim();
            part.parse::<usize>().ok().filter(|n| (1..=MAX_HIDDEN_UNITS).contains(n)).ok_or_else(|| {
                let what = if part.is_empty() { "an empty place".to_owned() } else { format!("\"{part}\"") };
                format!("Hidden units: {HIDDEN_ACCEPTS} ({what} is not one).")
            })
        })
        .collect()
}

/// Hidden widths as the hidden-units field shows them ("512, 256").
#[must_use]
pub fn hidden_text(hidden: &[usize]) -> String {
    hidden.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Keeps the hidden-units field (`text`) and the settings' layers (`hidden`) agreeing: the layers from the field when
/// it parses and was `edited`; when it was not edited and the settings changed elsewhere (a script, a test, an opened
/// run), the field follows them. A field that does not parse stays as typed.
pub fn sync_hidden(text: &mut String, hidden: &mut Vec<usize>, edited: bool) {
    match parse_hidden(text) {
        Ok(h) if edited => *hidden = h,
        Ok(h) if h != *hidden => *text = hidden_text(hidden),
        Ok(_) | Err(_) => {}
    }
}

/// The hidden-units field's verdict: refused when it does not parse, `empty_note` when it is empty.
#[must_use]
pub fn hidden(text: &str, empty_note: &str) -> Verdict {
    match parse_hidden(text) {
        Err(why) => Verdict::Refused(why),
        Ok(h) if h.is_empty() => Verdict::Note(empty_note.to_owned()),
        Ok(_) => Verdict::Fine,
    }
}

/// The first refusal among `verdicts`: why Train is disabled.
#[must_use]
pub fn first_refusal<'a>(verdicts: impl IntoIterator<Item = &'a Verdict>) -> Option<String> {
    verdicts.into_iter().find_map(|v| v.refusal().map(str::to_owned))
}

/// Draws `verdict` in a settings grid's next row, under its field: red for a refusal, the text's weak colour for a
/// note, nothing when fine.
pub(crate) fn verdict_row(ui: &mut egui::Ui, verdict: &Verdict) {
    let (text, colour) = match verdict {
        Verdict::Fine => return,
        Verdict::Refused(why) => (why, ui.visuals().error_fg_color),
        Verdict::Note(note) => (note, ui.visuals().warn_fg_color),
    };
    ui.label("");
    ui.add(egui::Label::new(egui::RichText::new(text).color(colour)).wrap());
    ui.end_row();
}

/// One numeric setting in a settings grid: its label, the field (any value of the type can be typed: one that
/// cannot train is refused under it, not silently clamped), what [`verdict_row`] says about it, and, while a run is
/// on show, that run's value (`running`) when it differs, with a hover saying which run the field applies to
/// (`applies_now`: the running run takes it at once, as the learning rate).
pub(crate) fn number_row<N: egui::emath::Numeric>(
    ui: &mut egui::Ui,
    label: &str,
    value: &mut N,
    speed: f64,
    running: Option<N>,
    verdict: impl FnOnce(N) -> Verdict,
) -> egui::Response {
    number_row_with(ui, label, value, speed, (running, false), verdict)
}

/// `response` with the hover saying it applies to the next run, while a run is on show (`running`).
pub(crate) fn next_run_only(response: egui::Response, running: bool) -> egui::Response {
    if running { response.on_hover_text(NEXT_RUN_ONLY) } else { response }
}

/// A choice in a settings grid: its label, a combo box (`id_salt`) showing `selected` whose menu `menu` fills, with
/// the hover that it applies to the next run while one is on show (`running`); then the row's end. A selected name
/// wider than the room left in the side panel is cut short with "…" (the menu shows it whole), so the grid does
/// not run past the panel's edge and push the notes under it out of sight.
pub(crate) fn choice_row(
    ui: &mut egui::Ui,
    label: &str,
    id_salt: &str,
    selected: impl Into<egui::WidgetText>,
    running: bool,
    menu: impl FnOnce(&mut egui::Ui),
) -> egui::Response {
    let combo = egui::ComboBox::from_id_salt(id_salt).selected_text(selected).truncate();
    let response = next_run_only(labelled(ui, label, combo, menu), running);
    ui.end_row();
    response
}

/// A [`choice_row`] whose menu offers `options`, each named by `name` and with its hover text.
pub(crate) fn options_row<T: Copy + PartialEq>(
    ui: &mut egui::Ui,
    (label, id_salt): (&str, &str),
    value: &mut T,
    running: bool,
    name: impl Fn(T) -> String,
    options: &[(T, &str)],
) -> egui::Response {
    let selected = name(*value);
    choice_row(ui, label, id_salt, selected, running, |ui| {
        for &(option, hover) in options {
            ui.selectable_value(value, option, name(option)).on_hover_text(hover);
        }
    })
}

/// The weight average as the flow's and the VAE's settings show it.
pub(crate) fn average_label(average: Option<f64>) -> String {
    average.map_or_else(|| "Off (last step's)".to_owned(), |decay| format!("Moving average, {decay}"))
}

/// The hidden-units field in a settings grid: `text` as typed, with `hover`, and while a run is on show (its layers
/// `running`) the hover that it applies to the next run and the run's layers beside it when they differ; under it,
/// what `verdict` says of the text. Returns whether the text was edited.
pub(crate) fn hidden_row(
    ui: &mut egui::Ui,
    text: &mut String,
    hover: String,
    running: Option<&[usize]>,
    verdict: impl FnOnce(&str) -> Verdict,
) -> bool {
    let id = ui.label("Hidden units").id;
    let mut edited = false;
    ui.horizontal(|ui| {
        let r = ui.add(egui::TextEdit::singleline(text).desired_width(90.0)).labelled_by(id).on_hover_text(hover);
        edited = r.changed();
        next_run_only(r, running.is_some());
        if let Some(run) = running
            && parse_hidden(text).ok().as_deref() != Some(run)
        {
            ui.label(egui::RichText::new(format!("this run: [{}]", hidden_text(run))).weak());
        }
    });
    ui.end_row();
    verdict_row(ui, &verdict(text));
    edited
}

/// Every lab's epochs in a settings grid (see [`number_row`]); `running`: the run on show's.
pub(crate) fn epochs_row(ui: &mut egui::Ui, epochs: &mut usize, running: Option<usize>) -> egui::Response {
    number_row(ui, "Epochs", epochs, 1.0, running, |v| EPOCHS.check(v as f64))
}

/// Every lab's seed in a settings grid (any value trains); `running`: the run on show's.
pub(crate) fn seed_row(ui: &mut egui::Ui, seed: &mut u64, running: Option<u64>) -> egui::Response {
    number_row(ui, "Seed", seed, 1.0, running, |_| Verdict::Fine)
}

/// The Adam rows the VAE and flow panels share: the learning rate (which the run on show takes at once) and the batch
/// size against the `rows` of training data; `running`: the run on show's values.
pub(crate) fn adam_rows(
    ui: &mut egui::Ui,
    learning_rate: &mut f64,
    batch_size: &mut usize,
    running: Option<(f64, usize)>,
    rows: Option<usize>,
) {
    number_row_with(
        ui,
        "Learning rate (Adam)",
        learning_rate,
        1e-5,
        (running.map(|(rate, _)| rate), true),
        self::learning_rate,
    );
    number_row(ui, "Batch size", batch_size, 1.0, running.map(|(_, batch)| batch), |v| self::batch_size(v, rows));
}

/// [`number_row`] with `(running, applies_now)`.
pub(crate) fn number_row_with<N: egui::emath::Numeric>(
    ui: &mut egui::Ui,
    label: &str,
    value: &mut N,
    speed: f64,
    (running, applies_now): (Option<N>, bool),
    verdict: impl FnOnce(N) -> Verdict,
) -> egui::Response {
    let id = ui.label(label).id;
    let mut response = ui
        .horizontal(|ui| {
            let mut drag = egui::DragValue::new(value).speed(speed);
            if !N::INTEGRAL {
                drag = drag.max_decimals(6);
            }
            let r = ui.add(drag).labelled_by(id);
            if let Some(run) = running
                && !applies_now
                && run.to_f64().to_bits() != value.to_f64().to_bits()
            {
                ui.label(egui::RichText::new(format!("this run: {}", number(run.to_f64()))).weak());
            }
            r
        })
        .inner;
    if running.is_some() {
        response = response.on_hover_text(if applies_now {
            "Applies to the run on show at once, and to the next run."
        } else {
            NEXT_RUN_ONLY
        });
    }
    ui.end_row();
    verdict_row(ui, &verdict(*value));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ux_hidden_units_parse_whole_numbers_separated_by_commas() {
        assert_eq!(parse_hidden("8, 8"), Ok(vec![8, 8]));
        assert_eq!(parse_hidden(" 512,256 "), Ok(vec![512, 256]));
        assert_eq!(parse_hidden(""), Ok(vec![]));
        assert_eq!(parse_hidden("4096"), Ok(vec![4096]));
        for bad in ["abc", "0", "8,,x", "-3", "8,", "8 8", "4097", "1.5"] {
            let why = parse_hidden(bad).expect_err(bad);
            assert!(why.contains(HIDDEN_ACCEPTS), "{bad}: {why}");
        }
        assert!(parse_hidden("8,,x").unwrap_err().contains("an empty place"));
        assert!(parse_hidden("8, abc").unwrap_err().contains("\"abc\""));
    }

    #[test]
    fn ux_rules_refuse_what_cannot_train_and_note_the_unusual() {
        assert_eq!(learning_rate(1e-3), Verdict::Fine);
        assert!(learning_rate(0.0).refusal().is_some_and(|w| w.contains("from 0.000001 to 1")));
        assert!(learning_rate(-1.0).refusal().is_some());
        assert!(learning_rate(f64::NAN).refusal().is_some());
        assert!(matches!(learning_rate(0.5), Verdict::Note(_)));
        assert!(EPOCHS.check(0.0).refusal().is_some_and(|w| w == "Epochs must be from 1 to 100,000."));
        assert_eq!(batch_size(256, Some(1000)), Verdict::Fine);
        assert!(batch_size(0, Some(1000)).refusal().is_some());
        match batch_size(2000, Some(1359)) {
            Verdict::Note(n) => assert!(n.contains("1,359 training rows"), "{n}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(number(12_000.0), "12,000");
        assert_eq!(number(0.01), "0.01");
    }
}
