//! Pieces the three labs' pages share: what a view shows while it waits.

/// A spinner and what is being waited for.
pub(crate) fn waiting(ui: &mut egui::Ui, what: &str) {
    ui.horizontal(|ui| {
        ui.spinner();
        ui.label(what);
    });
}
