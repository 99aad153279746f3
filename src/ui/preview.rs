//! The preview of a loaded CSV file, before a lab uses it: first rows, detected delimiter and header,
//! each column's type, range and role, standardisation, the seeded split, and which labs can use it.

use crate::Lab;
use crate::data::prepare::{DataSpec, LeftOut, MissingRows, Role, check_lab, image_side, split_counts};
use crate::data::table::{ColumnKind, DISTINCT_CAP, delimiter_name, grouped};
use crate::data::{CsvOptions, HeaderMode, LoadRequest, Table};

/// A loaded file waiting for the user's go-ahead.
pub(crate) struct Preview {
    /// The lab it was loaded for.
    pub lab: Lab,
    pub table: Table,
    pub spec: DataSpec,
    pub request: LoadRequest,
    /// Each column's rows that miss a value, found where the preview is made (the loader's thread).
    missing: MissingRows,
    /// The rows the roles cannot use (they miss a value in a column used), and the roles they were counted for.
    left_out: (Vec<Role>, LeftOut),
}

impl Preview {
    pub(crate) fn new(lab: Lab, table: Table, spec: DataSpec, request: LoadRequest) -> Self {
        let missing = MissingRows::of(&table);
        let left_out = (spec.roles.clone(), missing.left_out(&table, &spec));
        Self { lab, table, spec, request, missing, left_out }
    }

    /// The rows the roles cannot use, counted again (from the rows found missing) when the roles have changed.
    fn left_out(&mut self) -> &LeftOut {
        if self.left_out.0 != self.spec.roles {
            self.left_out = (self.spec.roles.clone(), self.missing.left_out(&self.table, &self.spec));
        }
        &self.left_out.1
    }

    /// How many rows the lab would train on, and why not where it cannot.
    fn check(&mut self, lab: Lab) -> Result<usize, String> {
        let left = self.left_out().clone();
        let rows = self.table.n_rows() - left.rows;
        check_lab(lab, &self.table, &self.spec)?;
        if rows < 2 {
            return Err(format!(
                "needs two rows with a value in every column used; {} of {} miss one",
                grouped(left.rows),
                grouped(self.table.n_rows())
            ));
        }
        Ok(rows)
    }
}

/// What the user chose in the preview this frame.
enum Choice {
    Keep,
    Use,
    Cancel,
    Reload(LoadRequest),
}

/// What became of the preview this frame; the caller carries it out.
pub(crate) enum PreviewOutcome {
    /// Still open.
    Open(Preview),
    /// "Use in the … lab": the file goes into its lab.
    Use(Preview),
    /// Cancelled (the button, the window's cross or Escape).
    Cancelled,
    /// Load the file again for `lab` with other options.
    Reload(Lab, LoadRequest),
}

/// The preview window's height where the screen has the room: a file of a dozen columns shows whole.
const PREVIEW_HEIGHT: f32 = 760.0;

/// Shows the preview window; what the user chose in it comes back.
pub(crate) fn preview_window(mut preview: Preview, ctx: &egui::Context) -> PreviewOutcome {
    let mut choice = Choice::Keep;
    let mut open = true;
    // Escape closes the preview as Cancel does, unless it is closing one of the preview's menus first or a text
    // field has the keyboard.
    let escape = !egui::Popup::is_any_open(ctx)
        && !ctx.egui_wants_keyboard_input()
        && ctx.input_mut(|i| i.consume_key(egui::Modifiers::NONE, egui::Key::Escape));
    // The window never reaches past the screen (a file of many columns on a 700-row screen hid its buttons): its
    // contents scroll, and the buttons stay under them in view.
    let max_height = (ctx.content_rect().height() - 48.0).max(240.0);
    egui::Window::new("Dataset preview")
        .open(&mut open)
        // Tall enough for the whole preview of a file of a dozen columns (the split and which labs can use it
        // included) where the screen has the room.
        .default_size([760.0, PREVIEW_HEIGHT.min(max_height)])
        .max_height(max_height)
        .max_width((ctx.content_rect().width() - 32.0).max(320.0))
        .collapsible(false)
        .show(ctx, |ui| {
            let body = (ui.available_height() - 40.0).max(120.0);
            choice = egui::ScrollArea::vertical()
                .id_salt("preview-body")
                // The window's whole width, so that its scroll bar is at the window's edge, not beside the rows.
                .auto_shrink([false, true])
                .max_height(body)
                .show(ui, |ui| preview_ui(&mut preview, ui))
                .inner;
            ui.separator();
            if let Choice::Keep = choice {
                choice = preview_actions(&mut preview, ui);
            }
        });
    if !open || escape {
        choice = Choice::Cancel;
    }
    match choice {
        Choice::Keep => PreviewOutcome::Open(preview),
        Choice::Cancel => PreviewOutcome::Cancelled,
        Choice::Use => PreviewOutcome::Use(preview),
        Choice::Reload(request) => PreviewOutcome::Reload(preview.lab, request),
    }
}

fn preview_ui(p: &mut Preview, ui: &mut egui::Ui) -> Choice {
    let mut choice = Choice::Keep;
    let t = &p.table;
    ui.heading(&t.name);
    if let LoadRequest::File { path, .. } = &p.request {
        let whole = crate::ui::typed_path::whole_path(path);
        ui.add(egui::Label::new(egui::RichText::new(whole.display().to_string()).weak()).selectable(true));
    }
    ui.label(format!(
        "{} x {}",
        crate::ui::count::count(t.n_rows(), "row"),
        crate::ui::count::count(t.n_cols(), "column")
    ));
    if let Some(csv) = &t.csv {
        ui.label(format!(
            "Delimiter: {}. Line ends: {}.{}{}{}",
            delimiter_name(csv.delimiter),
            if csv.crlf { "CR LF" } else { "LF" },
            if csv.decimal_comma { " Numbers with a decimal comma (0,27 read as 0.27)." } else { "" },
            if csv.gzipped { " Gzip-compressed." } else { "" },
            if csv.had_bom { " Starts with a UTF-8 byte order mark." } else { "" },
        ));
        if !csv.missing.is_empty() {
            ui.label(missing_note(t));
        }
        let mut header = csv.has_header;
        if ui.checkbox(&mut header, "The first row is a header").changed()
            && let LoadRequest::File { path, options } = &p.request
        {
            let header = if header { HeaderMode::Present } else { HeaderMode::Absent };
            choice = Choice::Reload(LoadRequest::File {
                path: path.clone(),
                options: CsvOptions { header, ..options.clone() },
            });
        }
        ui.add_space(4.0);
        ui.strong("First rows, as written in the file");
        // Each column as wide as its widest number, and its name as long as the room left in the window allows
        // (shared among the names that need it), so that a few columns show their names whole and a dozen keep
        // the last columns (often the target) in view.
        let shown = t.columns.len().min(16);
        let value_widths: Vec<usize> = (0..shown)
            .map(|j| csv.first_rows.iter().filter_map(|r| r.get(j)).map(|c| c.chars().count()).max().unwrap_or(0))
            .map(|w| w.max(4))
            .collect();
        let char_width = crate::ui::lab_page::monospace_char_width(ui);
        let used =
            value_widths.iter().sum::<usize>() as f32 * char_width + (shown + 1) as f32 * ui.spacing().item_spacing.x;
        let spare = ((ui.available_width() - used) / char_width).max(0.0) as usize;
        let name_lengths: Vec<usize> = t.columns.iter().take(shown).map(|c| c.name.chars().count()).collect();
        let name_widths = header_widths(&value_widths, &name_lengths, spare);
        egui::ScrollArea::horizontal().id_salt("preview-raw").show(ui, |ui| {
            egui::Grid::new("preview-first-rows").striped(true).show(ui, |ui| {
                // The header line first, as the file has it (its names unquoted), so that each column of numbers
                // stands under its name; a name longer than its room is cut short, whole on hover.
                if csv.has_header {
                    for (column, &width) in t.columns.iter().zip(&name_widths) {
                        let name = &column.name;
                        let cut = name.chars().count() > width;
                        let shown = if cut {
                            format!("{}…", name.chars().take(width - 1).collect::<String>())
                        } else {
                            name.clone()
                        };
                        let label = ui.label(egui::RichText::new(shown).monospace().strong());
                        if cut {
                            label.on_hover_text(name);
                        }
                    }
                    if t.columns.len() > 16 {
                        ui.label("…");
                    }
                    ui.end_row();
                }
                // As many lines of the file in all as the reader keeps rows, the header's among them, so that the
                // preview keeps its height.
                for row in csv.first_rows.iter().take(crate::data::csv::PREVIEW_ROWS - usize::from(csv.has_header)) {
                    for cell in row.iter().take(16) {
                        ui.monospace(cell);
                    }
                    if row.len() > 16 {
                        ui.label("…");
                    }
                    ui.end_row();
                }
            });
        });
    }
    ui.add_space(6.0);
    ui.strong("Columns");
    egui::ScrollArea::vertical().id_salt("preview-columns").max_height(220.0).show(ui, |ui| {
        egui::Grid::new("preview-column-grid").striped(true).num_columns(6).show(ui, |ui| {
            for h in ["#", "name", "type", "values", "distinct", "role"] {
                ui.strong(h);
            }
            ui.end_row();
            let mut new_output = None;
            for (j, c) in t.columns.iter().enumerate().take(1000) {
                ui.label((j + 1).to_string());
                // A name of a sentence (a survey's question) cut short, whole on hover: at full length it widened the
                // window past the screen, and the roles and buttons with it.
                let name = match crate::ui::lab_page::cut_name(&c.name, LISTED_NAME_CHARS) {
                    Some(cut) => ui.label(cut).on_hover_text(&c.name),
                    None => ui.label(&c.name),
                };
                let name_id = name.id;
                ui.label(c.kind.name());
                if c.kind == ColumnKind::Text {
                    // The categories, as many as fit a short line; all of them on hover (joined only then: a column
                    // of names has as many as rows).
                    let (mut shown, mut taken) = (String::new(), 0);
                    for category in &c.categories {
                        if shown.chars().count() > 32 {
                            break;
                        }
                        if taken > 0 {
                            shown.push_str(", ");
                        }
                        shown.push_str(category);
                        taken += 1;
                    }
                    let cut = shown.chars().count() > 32 || taken < c.categories.len();
                    if cut {
                        let shown: String = shown.chars().take(32).collect();
                        // On hover the first of them, not a screen of names.
                        ui.monospace(format!("{shown}…")).on_hover_ui(|ui| {
                            let listed = c.categories.iter().take(HOVER_CATEGORIES).cloned().collect::<Vec<_>>();
                            let more = c.categories.len().saturating_sub(HOVER_CATEGORIES);
                            let more = if more > 0 { format!(" and {more} more") } else { String::new() };
                            ui.label(format!("{}{more}", listed.join(", ")));
                        });
                    } else {
                        ui.monospace(shown);
                    }
                } else {
                    let missing = csv_missing(t, j).map_or(String::new(), |n| format!(" ({} missing)", grouped(n)));
                    ui.monospace(format!("{} .. {}{missing}", c.min, c.max));
                }
                ui.label(if c.n_distinct > DISTINCT_CAP {
                    format!(">{DISTINCT_CAP}")
                } else {
                    c.n_distinct.to_string()
                });
                let mut role = p.spec.roles[j];
                egui::ComboBox::from_id_salt(("role", j))
                    .selected_text(role.label())
                    .show_ui(ui, |ui| {
                        for r in Role::ALL {
                            ui.selectable_value(&mut role, r, r.label());
                        }
                    })
                    .response
                    .labelled_by(name_id);
                if crate::data::prepare::goes_in_one_hot(t, &p.spec, j) {
                    ui.weak(format!("{} inputs", c.categories.len()))
                        .on_hover_text("One input per text, 1 where a row has it and 0 elsewhere (one-hot)");
                }
                if role != p.spec.roles[j] {
                    if matches!(role, Role::Target | Role::Label) {
                        new_output = Some((j, role));
                    } else {
                        p.spec.roles[j] = role;
                    }
                }
                ui.end_row();
            }
            if let Some((j, role)) = new_output {
                p.spec.set_output(j, role);
            }
        });
    });
    ui.add_space(6.0);
    ui.horizontal(|ui| {
        ui.checkbox(&mut p.spec.standardize, "Standardise features");
        ui.separator();
        let id = ui.label("Test fraction").id;
        ui.add(egui::Slider::new(&mut p.spec.test_fraction, 0.0..=0.5).fixed_decimals(2)).labelled_by(id);
        let id = ui.label("Seed").id;
        ui.add(egui::DragValue::new(&mut p.spec.seed)).labelled_by(id);
    });
    let left = p.left_out().clone();
    let (n_train, n_test) = split_counts(p.table.n_rows() - left.rows, p.spec.test_fraction);
    ui.label(format!("Split: {} train, {} test (seed {})", grouped(n_train), grouped(n_test), p.spec.seed));
    if left.rows > 0 {
        ui.colored_label(
            ui.visuals().warn_fg_color,
            format!("Left out: {left}. A column set to ignored costs no rows."),
        );
    }
    if let Some(note) = crate::data::prepare::ordered_text_note(&p.table, &p.spec) {
        ui.colored_label(ui.visuals().warn_fg_color, note);
    }
    if let Some(note) = crate::data::prepare::one_hot_note(&p.table, &p.spec) {
        ui.label(note);
    }
    if p.lab == Lab::Flow
        && let Some(note) = crate::data::prepare::flow_few_values_note(&p.table, &p.spec)
    {
        ui.colored_label(ui.visuals().warn_fg_color, note);
    }
    if let Some(side) = image_side(p.spec.feature_columns().len()) {
        ui.label(format!("The features form {side} x {side} images."));
    }
    ui.add_space(4.0);
    for lab in Lab::ALL {
        match p.check(lab) {
            Ok(_) => ui.label(format!("{} lab: usable", lab.tab_name())),
            Err(why) => {
                ui.colored_label(ui.visuals().warn_fg_color, format!("{} lab: not usable; it {why}", lab.tab_name()))
            }
        };
    }
    choice
}

/// The columns of a table as read that have missing cells, a few named with how many and the first's line (columns
/// alike in both grouped: the penguins' four measurements missing on the same two lines), the rest counted.
fn missing_note(t: &Table) -> String {
    const NAMED: usize = 4;
    let Some(csv) = &t.csv else { return String::new() };
    let mut groups: Vec<((usize, u64), Vec<String>)> = Vec::new();
    for m in csv.missing.iter().take(NAMED) {
        let name = &t.columns[m.column].name;
        let name = format!("\"{}\"", crate::ui::lab_page::cut_name(name, LISTED_NAME_CHARS).unwrap_or(name.clone()));
        match groups.iter_mut().find(|(key, _)| *key == (m.count, m.first.1)) {
            Some((_, names)) => names.push(name),
            None => groups.push(((m.count, m.first.1), vec![name])),
        }
    }
    let mut parts: Vec<String> = groups
        .into_iter()
        .map(|((count, line), names)| {
            let each = if names.len() > 1 { " each" } else { "" };
            let names = match names.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
                _ => names.concat(),
            };
            format!("{names} ({}{each}, the first on line {line})", grouped(count))
        })
        .collect();
    if csv.missing.len() > NAMED {
        parts.push(crate::ui::count::count(csv.missing.len() - NAMED, "more column"));
    }
    format!("Cells missing or not a number, kept as missing, in {}.", parts.join("; "))
}

/// How many of column `j`'s cells are missing in the file, if any.
fn csv_missing(t: &Table, j: usize) -> Option<usize> {
    t.csv.as_ref()?.missing.iter().find(|m| m.column == j).map(|m| m.count)
}

/// The categories of a column of text its values' hover lists; the rest are counted.
const HOVER_CATEGORIES: usize = 40;

/// The longest column name the list of columns shows whole.
const LISTED_NAME_CHARS: usize = 40;

/// How many characters each column's name may take: its column's width (`value_widths`, its widest cell), and of
/// `spare` characters more, a share for each name longer than that, shared out a character at a time among the
/// names still cut, so that no name takes more than it needs and the short ones leave their room to the long.
fn header_widths(value_widths: &[usize], name_lengths: &[usize], spare: usize) -> Vec<usize> {
    let mut widths = value_widths.to_vec();
    let mut spare = spare;
    loop {
        let mut gave = false;
        for (w, &need) in widths.iter_mut().zip(name_lengths) {
            if spare > 0 && *w < need {
                *w += 1;
                spare -= 1;
                gave = true;
            }
        }
        if !gave {
            return widths;
        }
    }
}

/// The preview's buttons: use the data in its lab, or cancel.
fn preview_actions(p: &mut Preview, ui: &mut egui::Ui) -> Choice {
    let mut choice = Choice::Keep;
    let usable = p.check(p.lab).is_ok();
    ui.horizontal(|ui| {
        if ui.add_enabled(usable, egui::Button::new(format!("Use in the {} lab", p.lab.tab_name()))).clicked() {
            choice = Choice::Use;
        }
        if ui.button("Cancel").clicked() {
            choice = Choice::Cancel;
        }
    });
    choice
}

#[cfg(test)]
mod tests {
    use super::{header_widths, missing_note};
    use crate::data::csv::{NoProgress, read_bytes};
    use crate::data::{CsvOptions, MissingPolicy};

    /// Columns missing alike are named together; others each with their own count; past four, counted.
    #[test]
    fn the_missing_cells_are_named_by_column_and_alike_columns_together() {
        let options = CsvOptions { missing: MissingPolicy::DropRows, ..CsvOptions::default() };
        let read = |text: &str| read_bytes(text.as_bytes(), "p.csv", &options, &NoProgress).expect("reads");
        let penguins = read("species,bill,depth,mass,year\nA,1,2,3,2007\nA,NA,NA,NA,2008\nB,4,,6,2009\n");
        assert_eq!(
            missing_note(&penguins),
            "Cells missing or not a number, kept as missing, in \"bill\" and \"mass\" (1 each, the first on line \
             3); \"depth\" (2, the first on line 3)."
        );
        let many = read("a,b,c,d,e,f\n1,2,3,4,5,6\nNA,NA,NA,NA,NA,NA\n");
        assert_eq!(
            missing_note(&many),
            "Cells missing or not a number, kept as missing, in \"a\", \"b\", \"c\" and \"d\" (1 each, the first \
             on line 3); 2 more columns."
        );
    }

    #[test]
    fn names_share_the_spare_room_and_take_no_more_than_they_need() {
        // Room enough: every name whole, no column wider than its name or its numbers.
        assert_eq!(header_widths(&[4, 4, 4], &[12, 2, 7], 100), [12, 4, 7]);
        // Not enough: the cut names share alike, and a short one gives its share to the long.
        assert_eq!(header_widths(&[4, 4, 4], &[12, 5, 20], 9), [8, 5, 8]);
        // No room: the numbers' widths.
        assert_eq!(header_widths(&[4, 6], &[30, 30], 0), [4, 6]);
    }
}
