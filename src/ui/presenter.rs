//! Presenter mode and the window's keys: what a lecturer at a projector needs. Presenter mode hides the settings
//! panel, draws a light theme that reads on a projector and zooms the whole window (the presenter's zoom is kept
//! apart from the desk's, per user); a bar at the top keeps the run's Train, Pause and Resume in reach. The keys
//! work in both modes whenever no text field has the keyboard: [`KEYS`] lists them, and the `?` overlay shows that
//! list. This file reads the keys and draws the bar and the overlay; the app carries out what they ask.

use egui::{Key, Modifiers};
use serde::{Deserialize, Serialize};

use crate::Lab;
use crate::train::WorkerState;
use crate::ui::lab_state::LabState;

/// The presenter's settings, kept between sessions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PresenterSettings {
    /// Presenter mode is on.
    pub presenting: bool,
    /// The window's zoom in presenter mode (egui's zoom factor), as the presenter last set it.
    pub presenter_zoom: f32,
    /// The window's zoom outside presenter mode.
    pub desk_zoom: f32,
}

impl Default for PresenterSettings {
    fn default() -> Self {
        Self { presenting: false, presenter_zoom: PRESENTER_ZOOM, desk_zoom: 1.0 }
    }
}

/// Presenter mode's zoom until the presenter changes it: text half as large again, readable from the back rows.
pub const PRESENTER_ZOOM: f32 = 1.5;

/// What a key asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAsk {
    /// Presenter mode on or off.
    TogglePresenter,
    /// Train when nothing trains, pause a running run, resume a paused one.
    TrainOrPause,
    /// The flow's previous stage.
    PreviousStage,
    /// The flow's next stage.
    NextStage,
    /// The tour's step before (Page Up, as a presenter's remote sends).
    TourBack,
    /// The tour's step forward: its action, then the next step (Page Down).
    TourForward,
    /// Open this lab.
    OpenLab(Lab),
    /// Full screen on or off.
    ToggleFullscreen,
    /// The open lab's replay of its training started, or stopped where it is.
    Replay,
    /// The list of keys shown or hidden.
    ToggleKeys,
    /// Close the list of keys, or leave full screen.
    Escape,
}

/// The window's keys and what they do, as the `?` overlay lists them (Ctrl + and Ctrl - are egui's own zoom keys;
/// the zoom they set is kept per mode).
pub const KEYS: [(&str, &str); 11] = [
    ("Space", "Train, pause or resume the open lab's run; continue one stopped before its end"),
    ("Left / Right", "In a tour: its step before, or forward (the step's action first); else the flow's stages"),
    ("Page Up / Page Down", "The tour's step before or forward, as a presenter's remote sends them"),
    ("1 / 2 / 3", "Open the BNN, VAE or Flow lab"),
    ("P", "Presenter mode on or off"),
    ("F", "Full screen on or off"),
    ("R", "Replay the open lab's training (its kept models in turn, every view following); again: stop"),
    ("Ctrl + / Ctrl -", "Zoom in or out (Ctrl 0: back to 100 %)"),
    ("?", "Show or hide this list"),
    ("Esc", "Close this list, or leave full screen"),
    ("Tab", "Move the keyboard focus to a control: Space, Enter and the arrows then work it"),
];

/// The keys pressed this frame that ask for something, consumed so that no widget also takes them. Nothing is read
/// while a text field has the keyboard (its user is typing); Space and the arrows are left to a control that has
/// the keyboard's focus (Tab moves it there), which they press or move.
#[must_use]
pub fn read_keys(ctx: &egui::Context) -> Vec<KeyAsk> {
    if ctx.egui_wants_keyboard_input() {
        return Vec::new();
    }
    let control_focused = ctx.memory(|m| m.focused().is_some());
    let table = [
        (Key::Space, KeyAsk::TrainOrPause),
        (Key::ArrowLeft, KeyAsk::PreviousStage),
        (Key::ArrowRight, KeyAsk::NextStage),
        (Key::PageUp, KeyAsk::TourBack),
        (Key::PageDown, KeyAsk::TourForward),
        (Key::Num1, KeyAsk::OpenLab(Lab::ALL[0])),
        (Key::Num2, KeyAsk::OpenLab(Lab::ALL[1])),
        (Key::Num3, KeyAsk::OpenLab(Lab::ALL[2])),
        (Key::P, KeyAsk::TogglePresenter),
        (Key::F, KeyAsk::ToggleFullscreen),
        (Key::R, KeyAsk::Replay),
        (Key::Questionmark, KeyAsk::ToggleKeys),
    ];
    ctx.input_mut(|input| {
        let for_a_control = |key: &Key| control_focused && matches!(key, Key::Space | Key::ArrowLeft | Key::ArrowRight);
        let mut asks: Vec<KeyAsk> = table
            .iter()
            .filter(|(key, _)| !for_a_control(key) && input.consume_key(Modifiers::NONE, *key))
            .map(|&(_, ask)| ask)
            .collect();
        // Where the keyboard gives '?' as Shift and '/', the key is Slash and the text is "?".
        if !asks.contains(&KeyAsk::ToggleKeys) && input.consume_key(Modifiers::SHIFT, Key::Slash) {
            asks.push(KeyAsk::ToggleKeys);
        }
        // Escape is read, not consumed: the preview, a question and an open menu close on it too.
        if input.key_pressed(Key::Escape) {
            asks.push(KeyAsk::Escape);
        }
        asks
    })
}

/// What Space (and the presenter bar's first button) does for `state`'s run now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunAsk {
    /// Start a new run (asking first when it would replace one that trained a while).
    Train,
    /// Pause the running run.
    Pause,
    /// Resume the paused run.
    Resume,
    /// Carry on a run that stopped before its end and is not paused here: the last session's, restored after the
    /// window was closed while it was paused or training, or one opened from its file ("Continue").
    Continue,
}

impl RunAsk {
    /// What Space does for a run in `state` (`None`: it is starting, wait); `carries_on`: the lab's run stopped
    /// before its end and Continue can carry it on.
    #[must_use]
    pub fn for_space(state: Option<WorkerState>, carries_on: bool) -> Option<Self> {
        match state {
            Some(WorkerState::Running) => Some(Self::Pause),
            Some(WorkerState::Paused) => Some(Self::Resume),
            Some(WorkerState::Starting) => None,
            _ if carries_on => Some(Self::Continue),
            None | Some(WorkerState::Finished | WorkerState::Failed | WorkerState::Stopped) => Some(Self::Train),
        }
    }
}

/// Presenter mode's bar over the page, in place of the settings panel: the run's buttons (Continue too, for a run
/// that stopped or was opened), its epoch and the way out. Returns the run's button clicked, and whether "Leave
/// presenter mode" was.
pub(crate) fn presenter_bar_ui(state: &mut LabState, ui: &mut egui::Ui) -> (Option<RunAsk>, bool) {
    let mut run = None;
    let mut leave = false;
    ui.horizontal_wrapped(|ui| {
        let refusal = state.settings_refusal();
        let train = ui
            .add_enabled(refusal.is_none(), egui::Button::new("Train"))
            .on_hover_text("Start a new run (Space when nothing trains)");
        if let Some(why) = &refusal {
            train.clone().on_disabled_hover_text(format!("Cannot train: {why}"));
        }
        if train.clicked() {
            run = Some(RunAsk::Train);
        }
        let running = state.worker_state == Some(WorkerState::Running);
        let paused = state.worker_state == Some(WorkerState::Paused);
        if ui.add_enabled(running, egui::Button::new("Pause")).on_hover_text("Space").clicked() {
            run = Some(RunAsk::Pause);
        }
        if ui.add_enabled(paused, egui::Button::new("Resume")).on_hover_text("Space").clicked() {
            run = Some(RunAsk::Resume);
        }
        if let Some(s) = &state.snapshot {
            ui.separator();
            ui.label(format!("Epoch {} of {}", s.epoch, s.total_epochs));
        }
        if !running {
            ui.separator();
            crate::ui::continuing::continue_ui(state, ui);
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            leave = ui.button("Leave presenter mode").on_hover_text("P").clicked();
        });
    });
    (run, leave)
}

/// The `?` overlay: the keys and what they do. Returns true when its Close button was clicked.
#[must_use]
pub fn keys_overlay_ui(ctx: &egui::Context) -> bool {
    let mut close = false;
    egui::Window::new("Keys").collapsible(false).resizable(false).anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0]).show(
        ctx,
        |ui| {
            egui::Grid::new("keys-grid").num_columns(2).spacing([24.0, 6.0]).striped(true).show(ui, |ui| {
                for (key, what) in KEYS {
                    ui.strong(key);
                    ui.label(what);
                    ui.end_row();
                }
            });
            ui.add_space(6.0);
            ui.label("The keys work whenever no text field is being typed in.");
            ui.label("While a control has the keyboard's focus (Tab), Space and the arrows work that control.");
            close = ui.button("Close").clicked();
        },
    );
    close
}
