//! A lab's message (an error, a warning or a note of what was done) and the area at the top of the lab's page
//! that shows it with its buttons.

use std::path::PathBuf;

use crate::data::LoadRequest;

/// A message shown in a lab: an error (kept until dismissed), a warning, or a note of what was done.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The text.
    pub text: String,
    /// How it is shown.
    pub kind: MessageKind,
    /// For a bad cell: the request to retry with missing rows dropped.
    pub retry_dropping: Option<LoadRequest>,
    /// The file the message is about, shown whole under the text (which names it by its name first), so that two
    /// files of the same name in different folders can be told apart.
    pub file: Option<PathBuf>,
    /// About loading a dataset: gone once a later load succeeds.
    pub(crate) from_load: bool,
}

/// What a lab's message is, which decides its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// Something that failed (red), kept until dismissed.
    Error,
    /// Something the user should act on, or that went otherwise than asked (amber).
    Warning,
    /// What was done, in the text's own colour (a file saved, a run opened).
    Note,
}

impl Message {
    fn new(kind: MessageKind, text: impl Into<String>) -> Self {
        Self { text: text.into(), kind, retry_dropping: None, file: None, from_load: false }
    }
    pub(crate) fn error(text: impl Into<String>) -> Self {
        Self::new(MessageKind::Error, text)
    }
    pub(crate) fn warning(text: impl Into<String>) -> Self {
        Self::new(MessageKind::Warning, text)
    }
    pub(crate) fn note(text: impl Into<String>) -> Self {
        Self::new(MessageKind::Note, text)
    }
    /// The same message about `request`'s file (if it names one), from loading it.
    pub(crate) fn about_loading(mut self, request: &LoadRequest) -> Self {
        if let LoadRequest::File { path, .. } = request {
            self.file = Some(crate::ui::typed_path::whole_path(path));
        }
        self.from_load = true;
        self
    }
    /// True for an error (red, kept until dismissed).
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.kind == MessageKind::Error
    }
    /// True for a warning (amber).
    #[must_use]
    pub fn is_warning(&self) -> bool {
        self.kind == MessageKind::Warning
    }
}

/// What the user answered in the message area this frame.
pub(crate) enum MessageAnswer {
    /// "Load, leaving out rows that miss a value": load this request, which keeps such cells as missing, into the
    /// preview (the message goes).
    RetryDropping(LoadRequest),
    /// "Dismiss": the message goes.
    Dismiss,
}

/// The message area at the top of a lab's page: the text in its kind's colour, the whole path of the file it is
/// about, and its buttons; the caller carries out the answer.
pub(crate) fn message_ui(message: &Message, ui: &mut egui::Ui) -> Option<MessageAnswer> {
    let mut answer = None;
    let colour = match message.kind {
        MessageKind::Error => ui.visuals().error_fg_color,
        MessageKind::Warning => ui.visuals().warn_fg_color,
        MessageKind::Note => ui.visuals().strong_text_color(),
    };
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.horizontal_wrapped(|ui| {
            ui.colored_label(colour, &message.text);
        });
        if let Some(file) = &message.file {
            // The whole path, selectable to copy: the text names the file by its name only.
            ui.add(egui::Label::new(egui::RichText::new(format!("File: {}", file.display())).weak()).selectable(true));
        }
        ui.horizontal(|ui| {
            if let Some(retry) = &message.retry_dropping
                && ui.button("Load, leaving out rows that miss a value").clicked()
            {
                answer = Some(MessageAnswer::RetryDropping(retry.clone()));
            }
            if ui.button("Dismiss").clicked() {
                answer = Some(MessageAnswer::Dismiss);
            }
        });
    });
    ui.add_space(6.0);
    answer
}
