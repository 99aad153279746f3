//! Guided tours: a lab's lecture as 5-10 steps, each saying what to do, what to notice and why, with a **Do it**
//! button that performs the step's action and a check that marks the step done when the user did it by hand.
//! Tours are data, not code: Markdown-like files (`assets/tours/*.md` are built in; a lecturer's own are read
//! from the `tours` folder beside the app's settings), in this form:
//!
//! ```text
//! # The tour's title
//! lab: flow
//!
//! ## A step's title
//! do: stage 3
//! check: stage 3
//! What to notice, and why, in as many lines as needed; a paragraph $$ ... $$ is a formula (LaTeX, typeset).
//! ```
//!
//! `do:` and `check:` are optional; a step with an action and no check is done when the action's result holds
//! (whoever brought it about), a step with neither when the user reads on. This file parses tours and draws the
//! tour's panel; the app carries out the actions and answers the checks.

use std::fmt;

use crate::Lab;
use crate::train::export::WeightQuantity;

/// What a step's **Do it** does.
#[derive(Clone, Debug, PartialEq)]
pub enum TourAction {
    /// Start a new run of the lab with its settings (asking first, as Train does, when it replaces a run).
    Train,
    /// Pause the lab's run.
    Pause,
    /// The flow's step-through to this stage.
    Stage(usize),
    /// The flow's direction: `true` for inference (data to Gaussian), `false` for generation.
    Inference(bool),
    /// Open the lab's page of this name (as its tab reads).
    Page(String),
    /// The BNN's share of the training rows to train on, in (0, 1].
    TrainFraction(f64),
    /// The BNN's weights page showing this quantity (written as its Show menu reads: "posterior standard
    /// deviations").
    Weights(WeightQuantity),
}

/// What marks a step done.
#[derive(Clone, Debug, PartialEq)]
pub enum TourCheck {
    /// A run started since the tour began has trained at least this many epochs.
    Epoch(usize),
    /// The lab's run is paused.
    Paused,
    /// The flow's step-through shows this stage.
    Stage(usize),
    /// The flow's direction is inference (`true`) or generation.
    Inference(bool),
    /// The lab's page of this name is open.
    Page(String),
    /// The BNN's next run trains on this share of the rows.
    TrainFraction(f64),
    /// The BNN's weights page shows this quantity.
    Weights(WeightQuantity),
}

impl TourAction {
    /// What shows that the action's result holds, by the button or by hand.
    #[must_use]
    pub fn natural_check(&self) -> TourCheck {
        match self {
            Self::Train => TourCheck::Epoch(1),
            Self::Pause => TourCheck::Paused,
            Self::Stage(k) => TourCheck::Stage(*k),
            Self::Inference(on) => TourCheck::Inference(*on),
            Self::Page(name) => TourCheck::Page(name.clone()),
            Self::TrainFraction(f) => TourCheck::TrainFraction(*f),
            Self::Weights(q) => TourCheck::Weights(*q),
        }
    }
}

/// A group of the side panel's controls that a step can hide, as TensorFlow Playground hides what a lesson does
/// not need: the dataset section, the training section (its settings with it), the settings alone, the run files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlGroup {
    /// The dataset section.
    Dataset,
    /// The training section, with its settings.
    Training,
    /// The training section's settings.
    Settings,
    /// Save run, Open run.
    Files,
}

impl ControlGroup {
    /// Every group.
    pub const ALL: [Self; 4] = [Self::Dataset, Self::Training, Self::Settings, Self::Files];

    /// Its name in a tour file.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Dataset => "dataset",
            Self::Training => "training",
            Self::Settings => "settings",
            Self::Files => "files",
        }
    }
}

/// One step of a tour.
#[derive(Clone, Debug, PartialEq)]
pub struct TourStep {
    /// Its title.
    pub title: String,
    /// Its narration: paragraphs, a `$$ ... $$` line being a formula.
    pub text: String,
    /// What **Do it** does, if anything.
    pub action: Option<TourAction>,
    /// What marks it done; `None` with no action: done when read.
    pub check: Option<TourCheck>,
    /// The side panel's groups hidden while the step is on show.
    pub hidden: Vec<ControlGroup>,
}

/// A tour of one lab.
#[derive(Clone, Debug, PartialEq)]
pub struct Tour {
    /// Its title.
    pub title: String,
    /// The lab it tours.
    pub lab: Lab,
    /// Its steps, in order.
    pub steps: Vec<TourStep>,
    /// Where it came from (a built-in file's name or a path), for messages.
    pub source: String,
}

/// Why a tour file could not be read: the file, the line and what was expected there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TourError {
    /// The file.
    pub source: String,
    /// The 1-based line (0 for the file as a whole).
    pub line: usize,
    /// What was expected.
    pub expected: String,
}

impl fmt::Display for TourError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.source, self.expected)
        } else {
            write!(f, "{}, line {}: {}", self.source, self.line, self.expected)
        }
    }
}

impl std::error::Error for TourError {}

/// The tours built into the app, one per lab.
pub const BUILT_IN: [(&str, &str); 3] = [
    ("assets/tours/bnn.md", include_str!("../../assets/tours/bnn.md")),
    ("assets/tours/vae.md", include_str!("../../assets/tours/vae.md")),
    ("assets/tours/flow.md", include_str!("../../assets/tours/flow.md")),
];

/// The built-in tours, parsed.
///
/// # Panics
/// Never for the files shipped (a test parses them).
#[must_use]
pub fn built_in() -> Vec<Tour> {
    BUILT_IN.iter().map(|(name, text)| parse(name, text).expect("the built-in tours parse")).collect()
}

/// Reads every `*.md` file in `folder` as a tour, in name order: the tours, and the files that could not be read.
#[must_use]
pub fn read_folder(folder: &std::path::Path) -> (Vec<Tour>, Vec<TourError>) {
    let Ok(entries) = std::fs::read_dir(folder) else { return (Vec::new(), Vec::new()) };
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("md")))
        .collect();
    paths.sort();
    let (mut tours, mut errors) = (Vec::new(), Vec::new());
    for path in paths {
        let source = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => match parse(&source, &text) {
                Ok(tour) => tours.push(tour),
                Err(e) => errors.push(e),
            },
            Err(e) => errors.push(TourError { source, line: 0, expected: format!("a readable UTF-8 file ({e})") }),
        }
    }
    (tours, errors)
}

/// Parses a tour file (`source` names it in errors).
///
/// # Errors
/// The first line that is not what the format expects there.
pub fn parse(source: &str, text: &str) -> Result<Tour, TourError> {
    let error =
        |line: usize, expected: &str| TourError { source: source.to_owned(), line, expected: expected.to_owned() };
    let mut title = None;
    let mut lab = None;
    let mut steps: Vec<TourStep> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim_end();
        if let Some(step_title) = line.strip_prefix("## ") {
            if title.is_none() || lab.is_none() {
                return Err(error(line_no, "'# Title' and 'lab: bnn|vae|flow' before the first step"));
            }
            steps.push(TourStep {
                title: step_title.trim().to_owned(),
                text: String::new(),
                action: None,
                check: None,
                hidden: Vec::new(),
            });
        } else if let Some(t) = line.strip_prefix("# ") {
            if title.is_some() {
                return Err(error(line_no, "one '# Title' line; steps start with '## '"));
            }
            title = Some(t.trim().to_owned());
        } else if let Some(name) = line.strip_prefix("lab:") {
            lab = Some(parse_lab(name.trim()).ok_or_else(|| error(line_no, "lab: bnn, vae or flow"))?);
        } else if let Some(action) = line.strip_prefix("do:") {
            let step = steps.last_mut().ok_or_else(|| error(line_no, "'do:' inside a step (after '## ')"))?;
            step.action = Some(parse_action(action.trim()).map_err(|e| error(line_no, &e))?);
        } else if let Some(check) = line.strip_prefix("check:") {
            let step = steps.last_mut().ok_or_else(|| error(line_no, "'check:' inside a step (after '## ')"))?;
            step.check = Some(parse_check(check.trim()).map_err(|e| error(line_no, &e))?);
        } else if let Some(groups) = line.strip_prefix("hide:") {
            let step = steps.last_mut().ok_or_else(|| error(line_no, "'hide:' inside a step (after '## ')"))?;
            for name in groups.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let group = ControlGroup::ALL
                    .into_iter()
                    .find(|g| g.name() == name)
                    .ok_or_else(|| error(line_no, "groups to hide: dataset, training, settings or files"))?;
                step.hidden.push(group);
            }
        } else if let Some(step) = steps.last_mut() {
            step.text.push_str(line.trim());
            step.text.push('\n');
        } else if !line.trim().is_empty() {
            return Err(error(line_no, "'# Title', 'lab: ...' or a step ('## Title') here"));
        }
    }
    let title = title.ok_or_else(|| error(0, "a '# Title' line"))?;
    let lab = lab.ok_or_else(|| error(0, "a 'lab: bnn|vae|flow' line"))?;
    if steps.is_empty() {
        return Err(error(0, "at least one step ('## Title')"));
    }
    for step in &mut steps {
        step.text = step.text.trim().to_owned();
        if step.check.is_none() {
            step.check = step.action.as_ref().map(TourAction::natural_check);
        }
    }
    Ok(Tour { title, lab, steps, source: source.to_owned() })
}

fn parse_lab(name: &str) -> Option<Lab> {
    Lab::ALL.into_iter().find(|l| l.tab_name().eq_ignore_ascii_case(name))
}

fn number<T: std::str::FromStr>(word: &str, what: &str) -> Result<T, String> {
    word.trim().parse().map_err(|_| format!("{what}, not '{}'", word.trim()))
}

fn fraction(word: &str) -> Result<f64, String> {
    let f: f64 = number(word, "a share of the rows in (0, 1]")?;
    if f > 0.0 && f <= 1.0 { Ok(f) } else { Err(format!("a share of the rows in (0, 1], not {f}")) }
}

const ACTIONS: &str = "train, pause, stage N, direction inference|generation, page NAME, fraction F or weights WHAT";
const CHECKS: &str = "epoch N, paused, stage N, direction inference|generation, page NAME, fraction F or weights WHAT";

fn parse_action(text: &str) -> Result<TourAction, String> {
    let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
    match word {
        "train" => Ok(TourAction::Train),
        "pause" => Ok(TourAction::Pause),
        "stage" => Ok(TourAction::Stage(number(rest, "a stage number")?)),
        "direction" => direction(rest).map(TourAction::Inference),
        "page" if !rest.trim().is_empty() => Ok(TourAction::Page(rest.trim().to_owned())),
        "fraction" => Ok(TourAction::TrainFraction(fraction(rest)?)),
        "weights" => weight_quantity(rest).map(TourAction::Weights),
        _ => Err(format!("an action: {ACTIONS}")),
    }
}

fn parse_check(text: &str) -> Result<TourCheck, String> {
    let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
    match word {
        "epoch" => Ok(TourCheck::Epoch(number(rest, "an epoch number")?)),
        "paused" => Ok(TourCheck::Paused),
        // The other checks read as the actions whose result they are.
        // (an action's own complaint, as "a stage number, not 'x'", stands).
        _ => parse_action(text)
            .map(|a| a.natural_check())
            .map_err(|e| if e.starts_with("an action") { format!("a check: {CHECKS}") } else { e }),
    }
}

/// The BNN's weight quantity that `words` name as its Show menu reads them.
fn weight_quantity(words: &str) -> Result<WeightQuantity, String> {
    WeightQuantity::ALL.into_iter().find(|q| q.label().eq_ignore_ascii_case(words.trim())).ok_or_else(|| {
        let names: Vec<&str> = WeightQuantity::ALL.iter().map(|q| q.label()).collect();
        format!("weights {}, not '{}'", names.join(" | "), words.trim())
    })
}

fn direction(word: &str) -> Result<bool, String> {
    match word.trim() {
        "inference" => Ok(true),
        "generation" => Ok(false),
        other => Err(format!("direction inference or generation, not '{other}'")),
    }
}

/// The LaTeX of a paragraph written `$$ ... $$`, typeset as a formula; `None` for prose.
fn formula(paragraph: &str) -> Option<&str> {
    paragraph.trim().strip_prefix("$$").and_then(|f| f.strip_suffix("$$")).map(str::trim)
}

/// A tour under way: the step on show and which steps are done.
#[derive(Clone, Debug)]
pub struct TourState {
    /// The tour.
    pub tour: Tour,
    /// The step on show (0-based).
    pub step: usize,
    /// Per step: done (by **Do it**, by hand, or read).
    pub done: Vec<bool>,
    /// When the tour began: a run counts for a step's epochs only when started since.
    pub started: std::time::Instant,
    /// Per step: its action was asked for (by **Do it** or a key), so the next key goes on rather than doing it
    /// again.
    acted: Vec<bool>,
}

impl TourState {
    /// Starts `tour` at its first step.
    #[must_use]
    pub fn new(tour: Tour) -> Self {
        let done = vec![false; tour.steps.len()];
        let acted = done.clone();
        Self { tour, step: 0, done, started: std::time::Instant::now(), acted }
    }

    /// The step may be left for the next: it is done, or it has no check (it is done when read).
    #[must_use]
    pub fn can_go_on(&self) -> bool {
        self.done[self.step] || self.current().check.is_none()
    }

    /// What a key forward (Right, or Page Down as a presenter's remote sends) does: the step's action when it has
    /// one not yet asked for and is not done; else the next step (the end after the last) once the step may be
    /// left; else nothing (its check is still waiting, e.g. for an epoch).
    pub fn forward(&mut self) -> Option<TourAsk> {
        let step = self.step;
        if !self.done[step]
            && !self.acted[step]
            && let Some(action) = self.current().action.clone()
        {
            self.acted[step] = true;
            return Some(TourAsk::DoIt(action));
        }
        if !self.can_go_on() {
            return None;
        }
        self.done[step] = true;
        if step + 1 == self.tour.steps.len() {
            return Some(TourAsk::End);
        }
        self.step += 1;
        None
    }

    /// A key back (Left, or Page Up): the step before, if any.
    pub fn back(&mut self) {
        self.step = self.step.saturating_sub(1);
    }

    /// The step on show.
    #[must_use]
    pub fn current(&self) -> &TourStep {
        &self.tour.steps[self.step.min(self.tour.steps.len() - 1)]
    }

    /// True when every step is done.
    #[must_use]
    pub fn finished(&self) -> bool {
        self.done.iter().all(|&d| d)
    }
}

/// What the tour's panel asks of the app.
#[derive(Clone, Debug, PartialEq)]
pub enum TourAsk {
    /// Carry out the step's action.
    DoIt(TourAction),
    /// The tour ends (closed, or finished).
    End,
}

/// The tour's row of controls: where the tour stands, Back, **Do it**, Next step (or Finish), Skip while the step is
/// not done, whether it is done and End tour. It is a panel of its own on the window's foot, under the narration
/// ([`tour_text_ui`]), so that it stays where it is from step to step whatever each step's length (along the top of
/// one panel with the text, it moved with it, under a lecturer's pointer). Steps move here; what the app must do is
/// returned.
pub fn tour_controls_ui(state: &mut TourState, ui: &mut egui::Ui) -> Option<TourAsk> {
    let mut ask = None;
    let n = state.tour.steps.len();
    let step = state.current().clone();
    let done = state.done[state.step];
    ui.horizontal_wrapped(|ui| {
        ui.label(egui::RichText::new(format!("{}: step {} of {n}", state.tour.title, state.step + 1)).weak());
        if ui.add_enabled(state.step > 0, egui::Button::new("< Back")).clicked() {
            state.step -= 1;
        }
        if let Some(action) = &step.action
            && ui.button("Do it").on_hover_text("Carry out this step for me").clicked()
        {
            state.acted[state.step] = true;
            ask = Some(TourAsk::DoIt(action.clone()));
        }
        let last = state.step + 1 == n;
        let next = if last { "Finish" } else { "Next step >" };
        // A step with a check waits for it; one without is done when read.
        let can_go_on = state.can_go_on();
        let hover = if can_go_on { "On to the next step" } else { "Do the step first (or press Do it)" };
        if ui
            .add_enabled(can_go_on, egui::Button::new(next))
            .on_hover_text(hover)
            .on_disabled_hover_text(hover)
            .clicked()
        {
            state.done[state.step] = true;
            if last {
                ask = Some(TourAsk::End);
            } else {
                state.step += 1;
            }
        }
        // A step not done can still be passed over: a lecturer who keeps the trained run on show rather than train
        // again, or a student who would rather read on, is not held at it.
        let skip_hover = "Go on without doing this step (it stays not done)";
        if !can_go_on && ui.button("Skip").on_hover_text(skip_hover).clicked() {
            if last {
                ask = Some(TourAsk::End);
            } else {
                state.step += 1;
            }
        }
        if done {
            ui.label(egui::RichText::new("Done").color(ui.visuals().selection.bg_fill).strong());
        } else if step.check.is_some() {
            ui.label(egui::RichText::new("Not done yet").weak());
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui.button("End tour").clicked() {
                ask = Some(TourAsk::End);
            }
        });
    });
    ask
}

/// The step's title and narration (large in presenter mode, as captions), scrolling in `max_height`: the panel above
/// the tour's controls ([`tour_controls_ui`]).
pub fn tour_text_ui(state: &TourState, presenting: bool, max_height: f32, ui: &mut egui::Ui) {
    let step = state.current();
    let size = if presenting { 20.0 } else { 15.0 };
    egui::ScrollArea::vertical()
        .id_salt("tour-text")
        .auto_shrink([false, true])
        .max_height(max_height)
        .min_scrolled_height(max_height)
        .show(ui, |ui| {
            ui.label(egui::RichText::new(&step.title).strong().size(size + 2.0));
            for paragraph in step.text.split("\n\n") {
                let paragraph = paragraph.replace('\n', " ");
                if let Some(latex) = formula(&paragraph) {
                    crate::ui::equation::equation_ui(ui, latex);
                } else {
                    ui.label(egui::RichText::new(paragraph).size(size));
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_tours_parse_with_5_to_10_steps_each_and_one_per_lab() {
        let tours = built_in();
        for lab in Lab::ALL {
            let tour = tours.iter().find(|t| t.lab == lab).unwrap_or_else(|| panic!("a {} tour", lab.tab_name()));
            assert!((5..=10).contains(&tour.steps.len()), "{}: {} steps", tour.title, tour.steps.len());
            assert!(tour.steps.iter().all(|s| !s.text.is_empty()), "{}: every step narrates", tour.title);
        }
    }

    #[test]
    fn every_formula_of_the_built_in_tours_typesets() {
        let mut formulas = 0;
        for tour in built_in() {
            for step in &tour.steps {
                for paragraph in step.text.split("\n\n") {
                    if let Some(latex) = formula(&paragraph.replace('\n', " ")) {
                        crate::ui::equation::typeset(latex, egui::Color32::BLACK, 16.0)
                            .unwrap_or_else(|e| panic!("{}, '{}': {latex}: {e}", tour.title, step.title));
                        formulas += 1;
                    }
                }
            }
        }
        assert!(formulas >= 4, "{formulas} formulas");
    }

    #[test]
    fn a_step_with_an_action_and_no_check_checks_the_actions_result() {
        let tour = parse("t.md", "# T\nlab: flow\n\n## Go\ndo: stage 3\nhide: dataset, files\nLook.\n## Back\ndo: direction inference\ncheck: stage 0\nNow.\n## Read\nJust read.\n")
            .expect("parses");
        assert_eq!(tour.lab, Lab::Flow);
        assert_eq!(tour.steps[0].check, Some(TourCheck::Stage(3)));
        assert_eq!(tour.steps[0].hidden, [ControlGroup::Dataset, ControlGroup::Files]);
        assert!(tour.steps[1].hidden.is_empty());
        assert_eq!(tour.steps[1].action, Some(TourAction::Inference(true)));
        assert_eq!(tour.steps[1].check, Some(TourCheck::Stage(0)), "an explicit check wins");
        assert_eq!(tour.steps[2].check, None);
        assert_eq!(tour.steps[2].text, "Just read.");
    }

    #[test]
    fn a_bad_line_is_named_with_what_was_expected() {
        let e = parse("mine.md", "# T\nlab: flow\n## S\ndo: jump 3\n").expect_err("jump is no action");
        assert_eq!((e.source.as_str(), e.line), ("mine.md", 4));
        assert!(e.to_string().starts_with("mine.md, line 4: an action: train, pause, stage N"), "{e}");
        let e = parse("mine.md", "# T\nlab: lstm\n").expect_err("no such lab");
        assert_eq!((e.line, e.expected.as_str()), (2, "lab: bnn, vae or flow"));
        let e = parse("mine.md", "# T\nlab: bnn\n## S\ndo: fraction 1.5\n").expect_err("over 1");
        assert_eq!(e.line, 4);
        assert!(e.expected.contains("(0, 1]"), "{e}");
        let e = parse("mine.md", "# T\nlab: bnn\n## S\ndo: weights medians\n").expect_err("no such quantity");
        assert_eq!(e.line, 4);
        assert!(e.expected.contains("sampled weights | posterior means | posterior standard deviations"), "{e}");
        let t = parse("mine.md", "# T\nlab: bnn\n## S\ndo: weights Posterior Means\n").expect("parses");
        assert_eq!(t.steps[0].action, Some(TourAction::Weights(WeightQuantity::Means)));
        assert_eq!(t.steps[0].check, Some(TourCheck::Weights(WeightQuantity::Means)));
        let e = parse("mine.md", "# T\nlab: bnn\n## S\nhide: dataset, plots\n").expect_err("no such group");
        assert_eq!((e.line, e.expected.as_str()), (4, "groups to hide: dataset, training, settings or files"));
        let e = parse("mine.md", "Some text\n").expect_err("no title");
        assert_eq!(e.line, 1);
        let e = parse("mine.md", "# T\nlab: vae\n").expect_err("no steps");
        assert_eq!((e.line, e.expected.as_str()), (0, "at least one step ('## Title')"));
    }

    #[test]
    fn a_folders_tours_are_read_in_name_order_with_the_bad_ones_named() {
        let dir = std::env::temp_dir().join(format!("bayes-explorer-tours-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("folder");
        std::fs::write(dir.join("b.md"), "# B\nlab: bnn\n## S\nRead.\n").expect("write");
        std::fs::write(dir.join("a.md"), "# A\nlab: flow\n## S\ndo: stage 2\nGo.\n").expect("write");
        std::fs::write(dir.join("c.md"), "# C\nlab: vae\n## S\ncheck: nothing\n").expect("write");
        std::fs::write(dir.join("notes.txt"), "not a tour").expect("write");
        let (tours, errors) = read_folder(&dir);
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(tours.iter().map(|t| t.title.as_str()).collect::<Vec<_>>(), ["A", "B"]);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].source.ends_with("c.md") && errors[0].line == 4, "{}", errors[0]);
    }
}
