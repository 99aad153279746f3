//! Pieces the three labs' pages share, each lab calling them with its own fields: the view thread started on first
//! need, the top of a lab's views (the thread's error and the tabs of its views), the loss-curves page (its
//! buttons over its figure), curves per epoch in one plot (and plots of them stacked over one x range), a plot with
//! its legend as a figure to save, a labelled choice, and what a view shows while it waits.

use egui_plot::Plot;

use crate::Lab;
use crate::train::RunSnapshot;
use crate::ui::export::{ExportRequest, export_button, history_request};
use crate::ui::highlight::{halo_line, label_figure};
use crate::ui::image_export::{record_button, save_image_button, saveable};
use crate::ui::plot_axes;

/// A spinner and what is being waited for.
pub(crate) fn waiting(ui: &mut egui::Ui, what: &str) {
    ui.horizontal(|ui| {
        ui.spinner();
        ui.label(what);
    });
}

/// The time between two frames that a training run's progress asks for, unless the window says otherwise (see
/// [`set_training_frame_interval`]): its snapshots come up to 30 times a second, and drawing each takes time from
/// training. Input still redraws at once.
const TRAINING_FRAME_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

fn frame_interval_id() -> egui::Id {
    egui::Id::unique("training-frame-interval")
}

/// Sets how often a training run's progress redraws the window (a software renderer's frames cost the cores that
/// training needs; see [`crate::ui::training_frame_interval`]).
pub(crate) fn set_training_frame_interval(ctx: &egui::Context, interval: std::time::Duration) {
    ctx.data_mut(|d| d.insert_temp(frame_interval_id(), interval));
}

/// How long after a view result its frame may wait for the rest of the burst, with no run training.
const VIEW_RESULT_DELAY: std::time::Duration = std::time::Duration::from_millis(40);

fn training_now_id() -> egui::Id {
    egui::Id::unique("a-run-trains")
}

/// Says whether a run is training now (the app, every frame), for [`view_result_delay`].
pub(crate) fn set_training_now(ctx: &egui::Context, training: bool) {
    ctx.data_mut(|d| d.insert_temp(training_now_id(), training));
}

/// How long a view thread's result waits for its frame: a moment, so that a burst of results shares one frame, or
/// while a run trains, the training frame interval (the views follow the model at about two updates a second).
pub(crate) fn view_result_delay(ctx: &egui::Context) -> std::time::Duration {
    ctx.data(|d| {
        if d.get_temp(training_now_id()).unwrap_or(false) {
            d.get_temp(frame_interval_id()).unwrap_or(TRAINING_FRAME_INTERVAL)
        } else {
            VIEW_RESULT_DELAY
        }
    })
}

/// What a training worker calls after each snapshot: a frame within the training frame interval.
pub(crate) fn training_repaint(ctx: egui::Context) -> impl Fn() + Send + 'static {
    let interval = ctx.data(|d| d.get_temp(frame_interval_id())).unwrap_or(TRAINING_FRAME_INTERVAL);
    move || ctx.request_repaint_after(interval)
}

/// Starts a lab's view thread in `slot` with `spawn` (given a repaint of `ctx`) the first time it is needed; when it
/// cannot start, `error` says why and `slot` stays empty.
pub(crate) fn start_view_thread<W>(
    slot: &mut Option<W>,
    error: &mut Option<String>,
    ctx: &egui::Context,
    spawn: impl FnOnce(Box<dyn Fn() + Send>) -> std::io::Result<W>,
) {
    if slot.is_none() {
        let ctx = ctx.clone();
        // A model's views come as a few results in a burst: one frame shows them all, and while a run trains, the
        // frame the run's progress asks for anyway (see `training_repaint`).
        match spawn(Box::new(move || ctx.request_repaint_after(view_result_delay(&ctx)))) {
            Ok(w) => *slot = Some(w),
            Err(e) => *error = Some(format!("cannot start the view thread: {e}")),
        }
    }
}

/// The view thread's `error`, if any, in red.
pub(crate) fn view_error(ui: &mut egui::Ui, error: Option<&str>) {
    if let Some(e) = error {
        ui.colored_label(ui.visuals().error_fg_color, e);
    }
}

/// The top of a lab's views: the view thread's `error`, if any, then a tab for each of `pages` (with its label),
/// wrapped to the width, and a line under them.
pub(crate) fn view_tabs<P: Copy + PartialEq>(
    ui: &mut egui::Ui,
    error: Option<&str>,
    page: &mut P,
    pages: impl IntoIterator<Item = (P, &'static str)>,
) {
    view_error(ui, error);
    ui.horizontal_wrapped(|ui| {
        for (p, label) in pages {
            ui.selectable_value(page, p, label);
        }
    });
    ui.separator();
}

/// The loss-curves page of `lab`'s views: "Export data…" (every epoch's metrics, left in `export` for the app),
/// "Save image…" (`key`, saved as `key.png`) and "Record animation…" (`recording`: the lab's recorder is busy) over
/// the figure `curves_ui` draws; nothing before the run's first snapshot.
pub(crate) fn loss_page(
    ui: &mut egui::Ui,
    (lab, recording): (Lab, bool),
    snapshot: Option<&RunSnapshot>,
    export: &mut Option<ExportRequest>,
    key: &str,
    curves_ui: impl FnOnce(&RunSnapshot, &mut egui::Ui),
) {
    let Some(s) = snapshot else { return };
    ui.horizontal(|ui| {
        if export_button(ui) {
            *export = Some(history_request(lab, s));
        }
        save_image_button(ui, key);
        record_button(ui, key, recording);
    });
    saveable(ui, key, || format!("{key}.png"), |ui| curves_ui(s, ui));
}

/// The metric `name` per epoch of `snapshot`'s history, as points (epoch, value); epochs without it are left out.
pub(crate) fn epoch_series(snapshot: &RunSnapshot, name: &str) -> Vec<[f64; 2]> {
    snapshot.history.iter().filter_map(|r| r.get(name).map(|v| [r.epoch as f64, v])).collect()
}

/// The loss curves' mark of the epoch the scrubber put on show: its name and colour.
pub(crate) const EPOCH_ON_SHOW: &str = "epoch on show";
pub(crate) const EPOCH_ON_SHOW_COLOUR: egui::Color32 = egui::Color32::from_rgb(240, 200, 80);

/// The least width of the y axis's labels of plots stacked over a shared x range ([`stacked`]): the same for each,
/// so that their plot areas start at the same x.
const STACKED_Y_AXIS_WIDTH: f32 = 44.0;

/// Curves per epoch (`(name, points)`, see [`epoch_series`]) for the plot `id`, `height` points high, with their
/// legend in a row above the plot ([`Self::heading`]) rather than over it: a curve's latest epochs, at the right, are
/// what a reader looks at, and no corner of a plot whose curves span its height is free of them (the room a legend
/// inside would need stretched the epoch axis past the run's end). Each entry of the row shows or hides its curve
/// on a click and highlights it while the pointer is over it. Made before it is drawn, so that plots stacked on a
/// page can first agree on the x range they share ([`shared_x`], [`Self::reach`]).
pub(crate) struct EpochCurves<S> {
    id: String,
    height: f32,
    curves: Vec<(S, Vec<[f64; 2]>)>,
    /// A level across the plot (a baseline to compare with): its name and y.
    level: Option<(String, f64)>,
    /// The epoch the scrubber put on show, drawn as a vertical line.
    mark: Option<f64>,
    /// The y axis's title, if any.
    y_label: Option<String>,
    /// The legend entry the pointer is over.
    hovered: Option<String>,
}

/// The colour of a level across a plot of curves ([`EpochCurves::with_level`]).
const LEVEL_COLOUR: egui::Color32 = egui::Color32::GRAY;

impl<S: AsRef<str> + Into<String>> EpochCurves<S> {
    pub(crate) fn new(id: &str, height: f32, curves: Vec<(S, Vec<[f64; 2]>)>) -> Self {
        Self { id: id.to_owned(), height, curves, level: None, mark: None, y_label: None, hovered: None }
    }

    /// The curves with `label` as the y axis's title.
    pub(crate) fn with_y_label(mut self, label: &str) -> Self {
        self.y_label = Some(label.to_owned());
        self
    }

    /// The curves with a level across the plot named `name` at `y`, drawn grey.
    pub(crate) fn with_level(mut self, name: &str, y: f64) -> Self {
        self.level = Some((name.to_owned(), y));
        self
    }

    /// The curves with the epoch the scrubber put on show marked by a vertical line ([`EPOCH_ON_SHOW`]).
    pub(crate) fn marked(mut self, epoch: Option<f64>) -> Self {
        self.mark = epoch;
        self
    }

    /// The x range the plot takes in on its own: its curves' epochs.
    pub(crate) fn reach(&self) -> Option<[f64; 2]> {
        self.curves
            .iter()
            .flat_map(|(_, points)| points.iter().map(|p| p[0]))
            .filter(|x| x.is_finite())
            .fold(None, |r, x| Some(r.map_or([x, x], |[lo, hi]: [f64; 2]| [lo.min(x), hi.max(x)])))
    }

    /// Each legend entry: its name and colour, the curves first (in `egui_plot`'s own order of colours, so that a
    /// plot keeps the colours its curves had with a legend inside it), then the level and the epoch on show.
    fn entries(&self) -> Vec<(String, egui::Color32)> {
        let curves = self.curves.iter().enumerate().map(|(i, (name, _))| (name.as_ref().to_owned(), curve_colour(i)));
        let level = self.level.iter().map(|(name, _)| (name.clone(), LEVEL_COLOUR));
        let mark = self.mark.iter().map(|_| (EPOCH_ON_SHOW.to_owned(), EPOCH_ON_SHOW_COLOUR));
        curves.chain(level).chain(mark).collect()
    }

    /// The row above the plot: what `heading` draws (the plot's title), the "Legend" check box and, while the legend
    /// shows, its entries, wrapping onto a second line in a narrow window; and where the first epochs' values would
    /// flatten the rest ([`later_epochs_fit`]), the "Fit later epochs" check box.
    pub(crate) fn heading(&mut self, ui: &mut egui::Ui, heading: impl FnOnce(&mut egui::Ui)) {
        let fit = self.later_fit(ui.ctx());
        ui.horizontal_wrapped(|ui| {
            heading(ui);
            plot_axes::legend_toggle(ui, &self.id);
            if let Some(fit) = fit {
                let mut on = fit_later_epochs(ui.ctx(), &self.id);
                let hover = format!(
                    "The first epochs' values lie far above the rest and would flatten them: the y axis fits epoch {} \
                     on, and the first epochs run off the top. Untick to fit every epoch; a double click on the plot \
                     fits it again after a drag or a zoom.",
                    epoch_number(fit.from_epoch)
                );
                if ui.checkbox(&mut on, "Fit later epochs").on_hover_text(hover).changed() {
                    ui.ctx().data_mut(|d| d.insert_persisted(fit_id(&self.id), on));
                }
            }
            if plot_axes::legend_shown(ui.ctx(), &self.id) {
                self.hovered = legend_entries(ui, &self.id, &self.entries());
            }
        });
    }

    /// The y range that fits the shown curves' later epochs, where it differs from fitting them all.
    fn later_fit(&self, ctx: &egui::Context) -> Option<LaterFit> {
        let hidden = hidden_curves(ctx, &self.id);
        let shown: Vec<&[[f64; 2]]> = self
            .curves
            .iter()
            .filter(|(name, _)| !hidden.iter().any(|h| h == name.as_ref()))
            .map(|(_, points)| points.as_slice())
            .collect();
        let level = self.level.as_ref().filter(|(name, _)| !hidden.contains(name)).map(|(_, y)| *y);
        later_epochs_fit(&shown, level)
    }

    /// Draws the curves. `emphasised`: the curves the Explain panel's hovered term belongs to, drawn wider over a
    /// halo and named in the plot's accessibility label (as is the curve whose legend entry the pointer is over);
    /// `x`: the x range shared with the plots stacked with it, if any. Curves hidden by their legend entry are left
    /// out. Returns where the plot put each epoch.
    pub(crate) fn show(self, ui: &mut egui::Ui, emphasised: &[&str], x: Option<[f64; 2]>) -> egui_plot::PlotTransform {
        let hidden = hidden_curves(ui.ctx(), &self.id);
        let shown = |name: &str| !hidden.iter().any(|h| h == name);
        let fit = self.later_fit(ui.ctx()).filter(|_| fit_later_epochs(ui.ctx(), &self.id));
        let Self { id, height, curves, level, mark, y_label, hovered } = self;
        let mut highlighted: Vec<String> = emphasised.iter().map(|&e| e.to_owned()).collect();
        highlighted.extend(hovered.filter(|h| !highlighted.contains(h) && shown(h)));
        let plot_id = ui.make_persistent_id(("epoch-curves", &id));
        let mut plot = stacked(plot_axes::plot(&id), x).id(plot_id).height(height).x_axis_label("epoch");
        if let Some(label) = y_label {
            plot = plot.y_axis_label(plot_axes::fitted_y_title(ui, &label, height));
        }
        // Fitting the later epochs: the y axis spans their range rather than every item's, for as long as the user
        // has not dragged or zoomed the plot (egui_plot's automatic bounds, which a double click brings back).
        let first_frame = egui_plot::PlotMemory::load(ui.ctx(), plot_id).is_none();
        if let Some(LaterFit { y: [lo, hi], .. }) = fit {
            plot = plot.auto_bounds(egui::Vec2b::new(true, false)).include_y(lo).include_y(hi);
        }
        let response = plot.show(ui, |plot| {
            if fit.is_some() && first_frame {
                // A new plot's memory starts from the builder's automatic bounds, off for y here: on.
                plot.set_auto_bounds(true);
            }
            for (i, (name, points)) in curves.into_iter().enumerate() {
                let name: String = name.into();
                if !shown(&name) {
                    continue;
                }
                if highlighted.contains(&name) {
                    emphasised_curve(plot, name, points, curve_colour(i));
                } else {
                    plot_axes::coloured_curve(plot, name, points, curve_colour(i));
                }
            }
            if let Some((name, y)) = level.filter(|(name, _)| shown(name)) {
                plot.hline(egui_plot::HLine::new(name, y).color(LEVEL_COLOUR));
            }
            if let Some(epoch) = mark.filter(|_| shown(EPOCH_ON_SHOW)) {
                plot.vline(egui_plot::VLine::new(EPOCH_ON_SHOW, epoch).color(EPOCH_ON_SHOW_COLOUR));
            }
        });
        if !highlighted.is_empty() {
            label_figure(&response.response, &format!("the curves of {}", highlighted.join(" and ")));
        }
        response.transform
    }
}

/// Where a plot of epoch curves fits its y axis to the later epochs ([`later_epochs_fit`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LaterFit {
    /// The first epoch (x) fitted.
    pub from_epoch: f64,
    /// The y range, with a margin.
    pub y: [f64; 2],
}

/// Epochs a plot must span before its first ones are left out of the y axis's fit.
const FIT_LATER_AFTER: f64 = 9.0;

/// The y range that fits the later epochs of `curves` (points `[epoch, value]`) and `level` (a value across the
/// plot), where their first epochs would take more than half of the plot's height: a loss that starts far above
/// where it settles (the MLP VAE on a table: 900 at epoch 1, 150 to 230 from epoch 6) leaves the rest a flat line at
/// the bottom. The range goes from the lowest value of any epoch to the highest from the first tenth of the epochs on
/// (at least the first epoch left out), with a margin of 5 %; `None` where every epoch fits as well, and for curves
/// spanning fewer than ten epochs.
pub(crate) fn later_epochs_fit(curves: &[&[[f64; 2]]], level: Option<f64>) -> Option<LaterFit> {
    let points = || curves.iter().flat_map(|c| c.iter()).filter(|p| p[0].is_finite() && p[1].is_finite());
    let extent = |values: &mut dyn Iterator<Item = f64>| {
        values.fold(None, |r: Option<[f64; 2]>, v| Some(r.map_or([v, v], |[lo, hi]| [lo.min(v), hi.max(v)])))
    };
    let [first, last] = extent(&mut points().map(|p| p[0]))?;
    if last - first < FIT_LATER_AFTER {
        return None;
    }
    let from = first + ((last - first) / 10.0).max(1.0);
    let [from_epoch, _] = extent(&mut points().filter(|p| p[0] >= from).map(|p| p[0]))?;
    let [mut lo, mut all_hi] = extent(&mut points().map(|p| p[1]))?;
    let [_, mut hi] = extent(&mut points().filter(|p| p[0] >= from).map(|p| p[1]))?;
    if let Some(level) = level.filter(|l| l.is_finite()) {
        (lo, hi, all_hi) = (lo.min(level), hi.max(level), all_hi.max(level));
    }
    if hi <= lo || all_hi - lo <= 2.0 * (hi - lo) {
        return None;
    }
    let margin = (hi - lo) * 0.05;
    Some(LaterFit { from_epoch, y: [lo - margin, hi + margin] })
}

fn fit_id(plot: &str) -> egui::Id {
    egui::Id::unique(("epoch-curves-fit-later", plot))
}

/// Whether the plot `plot` fits its later epochs where they differ from all ("Fit later epochs", on at first).
fn fit_later_epochs(ctx: &egui::Context, plot: &str) -> bool {
    ctx.data_mut(|d| *d.get_persisted_mut_or(fit_id(plot), true))
}

/// An epoch as a note or a button names it: a whole one plainly ("24"), one between two epochs' ends to one decimal
/// ("27.6"), as the epoch slider writes it.
pub(crate) fn epoch_number(epoch: f64) -> String {
    if (epoch - epoch.round()).abs() < 1e-6 { format!("{epoch:.0}") } else { format!("{epoch:.1}") }
}

/// The width of `text` written on one line in `style`: what a label, a button or a progress bar needs for it.
pub(crate) fn text_width(ui: &egui::Ui, text: &str, style: egui::TextStyle) -> f32 {
    egui::WidgetText::from(text).into_galley(ui, Some(egui::TextWrapMode::Extend), f32::INFINITY, style).size().x
}

/// The colour `egui_plot` gives the `index`-th item of a plot that names none: hues a golden ratio apart.
fn curve_colour(index: usize) -> egui::Color32 {
    #[allow(clippy::cast_precision_loss)] // a plot's few curves
    let hue = (index as f32 * (std::f32::consts::GOLDEN_RATIO - 1.0)).fract();
    egui::ecolor::Hsva::new(hue, 0.85, 0.5, 1.0).into()
}

fn hidden_curves_id(plot: &str) -> egui::Id {
    egui::Id::unique(("epoch-curves-hidden", plot))
}

/// The names of the curves of the plot `plot` that their legend entries hid.
pub(crate) fn hidden_curves(ctx: &egui::Context, plot: &str) -> Vec<String> {
    ctx.data(|d| d.get_temp::<Vec<String>>(hidden_curves_id(plot))).unwrap_or_default()
}

/// The legend entries of the plot `plot` (`entries`: each curve's name and colour), drawn as `egui_plot` draws its
/// own: a circle in the curve's colour, filled while the curve shows, and its name. A click shows or hides the curve.
/// Returns the entry the pointer is over.
pub(crate) fn legend_entries(ui: &mut egui::Ui, plot: &str, entries: &[(String, egui::Color32)]) -> Option<String> {
    let mut hidden = hidden_curves(ui.ctx(), plot);
    let mut hovered = None;
    for (name, colour) in entries {
        let shown = !hidden.contains(name);
        let response = legend_entry(ui, name, *colour, shown);
        if response.clicked() {
            if shown {
                hidden.push(name.clone());
            } else {
                hidden.retain(|h| h != name);
            }
        }
        if response.hovered() {
            hovered = Some(name.clone());
        }
    }
    ui.ctx().data_mut(|d| d.insert_temp(hidden_curves_id(plot), hidden));
    hovered
}

/// One legend entry: a circle in `colour`, filled where the curve `shown`, and `name`, weak where it is hidden; a
/// check box to screen readers (and tests), as `egui_plot`'s entries are.
fn legend_entry(ui: &mut egui::Ui, name: &str, colour: egui::Color32, shown: bool) -> egui::Response {
    let text_colour = if shown { ui.visuals().text_color() } else { ui.visuals().weak_text_color() };
    let galley = egui::WidgetText::from(name).into_galley(
        ui,
        Some(egui::TextWrapMode::Extend),
        f32::INFINITY,
        egui::TextStyle::Body,
    );
    let icon = ui.spacing().icon_width * 0.8;
    let gap = ui.spacing().icon_spacing;
    let size = egui::vec2(icon + gap + galley.size().x, galley.size().y.max(icon));
    let (rect, response) = ui.allocate_exact_size(size, egui::Sense::click());
    response.widget_info(|| egui::WidgetInfo::selected(egui::Role::CheckBox, true, shown, name));
    if ui.is_rect_visible(rect) {
        let centre = egui::pos2(rect.left() + icon / 2.0, rect.center().y);
        let radius = icon / 2.0 - 1.0;
        let painter = ui.painter();
        if shown {
            painter.circle_filled(centre, radius, colour);
        }
        painter.circle_stroke(centre, radius, egui::Stroke::new(1.0, colour));
        let text_colour = if response.hovered() { ui.visuals().strong_text_color() } else { text_colour };
        painter.galley(
            egui::pos2(rect.left() + icon + gap, rect.center().y - galley.size().y / 2.0),
            galley,
            text_colour,
        );
    }
    response.on_hover_cursor(egui::CursorIcon::PointingHand)
}

/// The x range plots stacked on a page share, so that an epoch sits at the same x on each and the epoch on show's
/// line runs straight down the page: every range of `reaches` (each plot's own, `None` for one with nothing drawn).
pub(crate) fn shared_x(reaches: impl IntoIterator<Item = Option<[f64; 2]>>) -> Option<[f64; 2]> {
    reaches.into_iter().flatten().reduce(|a, b| [a[0].min(b[0]), a[1].max(b[1])])
}

/// `plot` as one of a stack sharing the x range `x` (see [`shared_x`]): it takes in the whole range and gives its y
/// axis's labels the same least width as the others. Unchanged where `x` is `None`.
pub(crate) fn stacked(plot: Plot<'_>, x: Option<[f64; 2]>) -> Plot<'_> {
    match x {
        Some([lo, hi]) => plot.include_x(lo).include_x(hi).y_axis_min_width(STACKED_Y_AXIS_WIDTH),
        None => plot,
    }
}

/// [`plot_axes::coloured_curve`] highlighted: wider, over a dark halo.
pub(crate) fn emphasised_curve(
    plot: &mut egui_plot::PlotUi<'_>,
    name: String,
    points: Vec<[f64; 2]>,
    colour: egui::Color32,
) {
    if points.len() > 1 {
        halo_line(plot, ("curve", &name), points.clone(), 3.5);
        plot.line(
            egui_plot::Line::new(name, egui_plot::PlotPoints::from(points)).color(colour).width(3.5).highlight(true),
        );
    } else {
        plot_axes::coloured_curve(plot, name, points, colour);
    }
}

/// The height of a figure that grows with the window: `share` of the page's height left from here down, less `below`
/// (the lines under the figure), within `least` (its height in a small window, where the page scrolls instead of
/// shrinking it) and `most`. A page's scrolled area is the window's height, so that a large window or a projector's
/// screen shows larger figures rather than an empty half page.
pub(crate) fn figure_height(ui: &egui::Ui, share: f32, below: f32, (least, most): (f32, f32)) -> f32 {
    ((ui.available_height() - below) * share).clamp(least, most)
}

/// The height of a table's scrolled rows under a figure: what is left of the page under the table's header, at least
/// `least` (a small window's page scrolls instead).
pub(crate) fn table_height(ui: &egui::Ui, least: f32) -> f32 {
    (ui.available_height() - 28.0).max(least)
}

/// The plot `key` with its legend where it hides the least of `occupied` (unless its toggle hid it), drawn by
/// `show` as a figure that "Save image…" (`key`) saves as `file_name`.
pub(crate) fn legend_figure<R>(
    ui: &mut egui::Ui,
    key: &str,
    file_name: &str,
    occupied: &plot_axes::Occupied,
    show: impl FnOnce(Plot<'_>, &mut egui::Ui) -> R,
) -> R {
    let plot = plot_axes::with_legend(plot_axes::plot(key), ui.ctx(), key, occupied);
    saveable(ui, key, || file_name.to_owned(), |ui| show(plot, ui))
}

/// A labelled choice: `label`, then a combo box (`id_salt`) showing `selected`, whose menu `menu` fills; the combo
/// box's response, which the label names for screen readers.
pub(crate) fn labelled_combo(
    ui: &mut egui::Ui,
    label: &str,
    id_salt: impl egui::AsIdSalt,
    selected: impl Into<egui::WidgetText>,
    menu: impl FnOnce(&mut egui::Ui),
) -> egui::Response {
    labelled(ui, label, egui::ComboBox::from_id_salt(id_salt).selected_text(selected), menu)
}

/// [`labelled_combo`] for a choice of column showing the column `name`: a name of a sentence (a survey's question)
/// is cut to [`COMBO_NAME_CHARS`] on the button and shown whole on hover and in the menu; whole on the button, it
/// pushed the buttons beside it out of the window.
pub(crate) fn column_combo(
    ui: &mut egui::Ui,
    label: &str,
    id_salt: impl egui::AsIdSalt,
    name: &str,
    menu: impl FnOnce(&mut egui::Ui),
) -> egui::Response {
    match cut_name(name, COMBO_NAME_CHARS) {
        Some(cut) => labelled_combo(ui, label, id_salt, cut, menu).on_hover_text(name),
        None => labelled_combo(ui, label, id_salt, name, menu),
    }
}

/// The most characters of a column's name that a menu's button shows ([`column_combo`]).
pub(crate) const COMBO_NAME_CHARS: usize = 32;

/// `label`, then `combo` (built by the caller, e.g. cut short to fit), whose menu `menu` fills; the combo box's
/// response, which the label names for screen readers.
pub(crate) fn labelled(
    ui: &mut egui::Ui,
    label: &str,
    combo: egui::ComboBox,
    menu: impl FnOnce(&mut egui::Ui),
) -> egui::Response {
    together(ui, ("labelled", label), |ui| {
        let id = ui.label(label).id;
        combo.show_ui(ui, menu).response.labelled_by(id)
    })
}

/// The width of a character of the monospace font, in points (at least 1): how wide a column of `n` characters of
/// numbers, names or cells is.
pub(crate) fn monospace_char_width(ui: &egui::Ui) -> f32 {
    let font = egui::TextStyle::Monospace.resolve(ui.style());
    ui.fonts_mut(|f| f.glyph_width(&font, '0')).max(1.0)
}

/// `name` cut to its first `chars` characters, the last of them an ellipsis, where it is longer (a column named by a
/// survey's question, in a list or on a button): `None` where it is short enough to show whole.
pub(crate) fn cut_name(name: &str, chars: usize) -> Option<String> {
    (name.chars().count() > chars).then(|| {
        let cut: String = name.chars().take(chars.saturating_sub(1)).collect();
        format!("{}…", cut.trim_end())
    })
}

/// `add`'s widgets side by side as one piece of a wrapping row (a label and its value): where the row has not the
/// piece's width left (as wide as it was last drawn), it ends before the piece, so that the window's edge never parts
/// a label from its value or cuts the piece off. In any other layout (a grid's cells, a plain row) `add` lays its
/// widgets out as it would without this.
pub(crate) fn together<R>(ui: &mut egui::Ui, id_salt: impl egui::AsIdSalt, add: impl FnOnce(&mut egui::Ui) -> R) -> R {
    if !(ui.layout().main_wrap && ui.layout().is_horizontal()) {
        return add(ui);
    }
    let id = ui.scope_id().with(("together", id_salt));
    let last_width: Option<f32> = ui.data(|d| d.get_temp(id));
    let row_started = ui.cursor().left() > ui.max_rect().left() + 0.5;
    if row_started && last_width.is_some_and(|width| width > ui.available_size_before_wrap().x) {
        ui.end_row();
    }
    let inner = ui.horizontal(add);
    ui.data_mut(|d| d.insert_temp(id, inner.response.rect.width()));
    inner.inner
}

#[cfg(test)]
mod tests {
    use egui_kittest::Harness;
    use egui_kittest::kittest::{NodeT, Queryable};

    use super::{EpochCurves, LaterFit, curve_colour, fit_id, hidden_curves, later_epochs_fit, shared_x};
    use crate::ui::highlight::figure_label;

    type Curves = Vec<(&'static str, Vec<[f64; 2]>)>;

    fn epochs(f: &dyn Fn(f64) -> f64) -> Vec<[f64; 2]> {
        (1..=50).map(|e| [f64::from(e), f(f64::from(e))]).collect()
    }

    /// The VAE's loss falling.
    fn loss() -> Curves {
        vec![
            ("test: negative ELBO", epochs(&|e| 150.0 + 70.0 / e)),
            ("test: reconstruction", epochs(&|e| 142.0 + 60.0 / e)),
            ("train: negative ELBO", epochs(&|e| 128.0 + 80.0 / e)),
        ]
    }

    /// Three rising KL curves spanning the plot's height: no corner of the plot is free of them.
    fn kl() -> Curves {
        vec![
            ("KL, all dimensions", epochs(&|e| 6.5 - 4.0 / e)),
            ("z1", epochs(&|e| 3.2 - 2.3 / e)),
            ("z2", epochs(&|e| 3.3 - 1.4 / e)),
        ]
    }

    /// Two plots of 50 epochs stacked as the VAE's loss page stacks them, over their shared x range: both show the
    /// same epochs across the same stretch of the window, and the range ends at the run's last epoch (a legend inside
    /// the KL plot, which has no free corner, stretched it to epoch 65).
    #[test]
    fn stacked_plots_show_an_epoch_at_the_same_x_and_no_epoch_past_the_last() {
        let ctx = egui::Context::default();
        let mut shown = Vec::new();
        for _ in 0..3 {
            let input = egui::RawInput {
                screen_rect: Some(egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(900.0, 700.0))),
                ..Default::default()
            };
            let _ = ctx.run_ui(input, |ui| {
                let mut top = EpochCurves::new("loss", 200.0, loss()).marked(Some(24.0));
                let mut bottom = EpochCurves::new("kl", 160.0, kl()).marked(Some(24.0));
                let x = shared_x([top.reach(), bottom.reach()]);
                assert_eq!(x, Some([1.0, 50.0]));
                top.heading(ui, |ui| {
                    ui.label("Loss");
                });
                let top = top.show(ui, &[], x);
                bottom.heading(ui, |ui| {
                    ui.label("KL");
                });
                let bottom = bottom.show(ui, &[], x);
                shown = [top, bottom]
                    .iter()
                    .map(|t| {
                        (t.bounds().min()[0], t.bounds().max()[0], t.frame().left(), t.position_from_point_x(24.0))
                    })
                    .collect::<Vec<_>>();
            });
        }
        let (top, bottom) = (shown[0], shown[1]);
        assert!((top.0 - bottom.0).abs() < 1e-9 && (top.1 - bottom.1).abs() < 1e-9, "the same epochs: {shown:?}");
        assert!((top.2 - bottom.2).abs() < 0.5, "the plot areas start at the same x: {shown:?}");
        assert!((top.3 - bottom.3).abs() < 0.5, "epoch 24 at the same x on both: {shown:?}");
        // egui_plot's own margin is 5 % of the range each side.
        assert!(top.1 < 50.0 + 0.06 * 49.0, "the axis ends near epoch 50: {shown:?}");
    }

    /// The stroke colours of the plot's lines, as drawn.
    fn line_colours(harness: &Harness<'_>) -> Vec<egui::Color32> {
        fn walk(shape: &egui::Shape, colours: &mut Vec<egui::Color32>) {
            match shape {
                egui::Shape::Vec(shapes) => shapes.iter().for_each(|s| walk(s, colours)),
                egui::Shape::Path(path) => {
                    if let egui::epaint::ColorMode::Solid(colour) = path.stroke.color {
                        colours.push(colour);
                    }
                }
                _ => {}
            }
        }
        let mut colours = Vec::new();
        for clipped in &harness.output().shapes {
            walk(&clipped.shape, &mut colours);
        }
        colours
    }

    /// The legend's entries, in the row above the plot, are check boxes named after the curves: a click hides a curve
    /// and a second shows it again; the pointer over an entry highlights its curve (named in the plot's label).
    #[test]
    fn a_legend_entry_hides_its_curve_and_highlights_it_under_the_pointer() {
        let mut harness = Harness::builder().with_size(egui::vec2(900.0, 400.0)).build_ui(|ui| {
            let mut curves = EpochCurves::new("kl", 200.0, kl()).marked(Some(24.0));
            curves.heading(ui, |ui| {
                ui.label("KL per latent dimension");
            });
            curves.show(ui, &[], None);
            ui.label("below");
        });
        harness.run();
        let z1 = curve_colour(1);
        assert!(line_colours(&harness).contains(&z1), "z1's curve is drawn");
        for name in ["KL, all dimensions", "z1", "z2", super::EPOCH_ON_SHOW] {
            let entry = harness.get_by_label(name);
            assert_eq!(entry.accesskit_node().role(), egui::accesskit::Role::CheckBox, "{name}");
            assert!(entry.rect().bottom() < harness.get_by_label("KL per latent dimension").rect().bottom() + 30.0);
        }
        harness.get_by_label("z1").click();
        harness.run();
        assert_eq!(hidden_curves(&harness.ctx, "kl"), vec!["z1".to_owned()]);
        assert!(!line_colours(&harness).contains(&z1), "z1's curve is hidden");
        harness.get_by_label("z1").click();
        harness.run();
        assert!(hidden_curves(&harness.ctx, "kl").is_empty());
        assert!(line_colours(&harness).contains(&z1), "z1's curve shows again");
        assert!(harness.query_by_label(&figure_label("the curves of z2")).is_none(), "nothing highlighted yet");
        harness.get_by_label("z2").hover();
        harness.run();
        assert!(harness.query_by_label(&figure_label("the curves of z2")).is_some(), "z2's curve is highlighted");
        harness.get_by_label("below").hover();
        harness.run();
        assert!(
            harness.query_by_label(&figure_label("the curves of z2")).is_none(),
            "the highlight goes with the pointer"
        );
    }

    /// The MLP VAE's test negative ELBO on the Palmer penguins (1000 x squared error + KL): 900 at epoch 1, 150 to
    /// 230 from epoch 6 on.
    fn penguins_loss() -> Vec<[f64; 2]> {
        let first = [900.0, 440.0, 370.0, 260.0, 232.0];
        (1..=50)
            .map(|e| {
                let y = first.get(e - 1).copied().unwrap_or_else(|| 150.0 + 80.0 * (-(e as f64 - 6.0) / 12.0).exp());
                [e as f64, y]
            })
            .collect()
    }

    #[test]
    fn the_later_epochs_are_fitted_where_the_first_would_flatten_them() {
        let loss = penguins_loss();
        let fit = later_epochs_fit(&[&loss], None).expect("900 against at most 230 from epoch 6");
        // The first tenth of 49 epochs left out: epoch 6 on, 150.x to 230, with 5 % of margin.
        assert!((fit.from_epoch - 6.0).abs() < 1e-12, "{fit:?}");
        let (lo, hi) = (150.0 + 80.0 * (-44.0f64 / 12.0).exp(), 230.0);
        let margin = (hi - lo) * 0.05;
        assert!((fit.y[0] - (lo - margin)).abs() < 1e-9 && (fit.y[1] - (hi + margin)).abs() < 1e-9, "{fit:?}");
        // A level across the plot is always in range.
        let with_level = later_epochs_fit(&[&loss], Some(300.0)).expect("300 is still far below 900");
        assert!(with_level.y[1] > 300.0);
        // Nothing to leave out: a curve that falls gently, a rising one (a KL term), fewer than ten epochs.
        let gentle: Vec<[f64; 2]> = (1..=50).map(|e| [f64::from(e), 2.0 - 0.01 * f64::from(e)]).collect();
        assert_eq!(later_epochs_fit(&[&gentle], None), None);
        let rising: Vec<[f64; 2]> = (1..=50).map(|e| [f64::from(e), 8.0 - 7.0 / f64::from(e)]).collect();
        assert_eq!(later_epochs_fit(&[&rising], None), None);
        assert_eq!(later_epochs_fit(&[&loss[..9]], None), None, "nine epochs are too few to leave any out");
        // Both curves count: a second curve's high later values widen the range.
        let high: Vec<[f64; 2]> = (1..=50).map(|e| [f64::from(e), 300.0]).collect();
        let both = later_epochs_fit(&[&loss, &high], None).expect("900 against 300");
        assert!(both.y[1] > 300.0 && both.y[0] < 150.0, "{both:?}");
    }

    /// The VAE on a table's loss curves drawn with "Fit later epochs" on (the default) and off: on, the y axis spans
    /// the later epochs' 150 to 230, so that their fall and the gap between the curves show; off, every epoch's,
    /// up to epoch 1's 900 (where the rest was a flat line along the bottom). The check box shows where the fit
    /// matters and not on curves that need none.
    #[test]
    fn the_loss_plot_fits_its_later_epochs_unless_told_not_to() {
        let ctx = egui::Context::default();
        let frame = |ctx: &egui::Context, curves: Vec<(&'static str, Vec<[f64; 2]>)>| {
            let mut transform = None;
            for _ in 0..3 {
                let input = egui::RawInput {
                    screen_rect: Some(egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(900.0, 500.0))),
                    ..Default::default()
                };
                let _ = ctx.run_ui(input, |ui| {
                    let mut plot = EpochCurves::new("loss", 300.0, curves.clone());
                    plot.heading(ui, |ui| {
                        ui.label("Loss");
                    });
                    transform = Some(plot.show(ui, &[], None));
                });
            }
            let t = transform.expect("drawn");
            [t.bounds().min()[1], t.bounds().max()[1]]
        };
        let fitted = frame(&ctx, vec![("test", penguins_loss())]);
        let expected = later_epochs_fit(&[&penguins_loss()], None).map(|LaterFit { y, .. }| y);
        assert_eq!(Some(fitted), expected, "the y axis spans the later epochs");
        ctx.data_mut(|d| d.insert_persisted(fit_id("loss"), false));
        let every = frame(&ctx, vec![("test", penguins_loss())]);
        assert!(every[1] >= 900.0 && every[0] <= 150.0, "every epoch in view: {every:?}");
        // On again, the plot fits the later epochs again.
        ctx.data_mut(|d| d.insert_persisted(fit_id("loss"), true));
        assert_eq!(Some(frame(&ctx, vec![("test", penguins_loss())])), expected);

        let mut harness = Harness::new_ui(|ui| {
            let mut plot = EpochCurves::new("vae-loss", 300.0, vec![("test", penguins_loss())]);
            plot.heading(ui, |ui| {
                ui.label("Loss");
            });
            let _ = plot.show(ui, &[], None);
        });
        harness.run_steps(2);
        harness.get_by_label("Fit later epochs");
        let mut harness = Harness::new_ui(|ui| {
            let kl: Vec<[f64; 2]> = (1..=50).map(|e| [f64::from(e), 8.0 - 7.0 / f64::from(e)]).collect();
            let mut plot = EpochCurves::new("vae-kl", 300.0, vec![("KL", kl)]);
            plot.heading(ui, |ui| {
                ui.label("KL");
            });
            let _ = plot.show(ui, &[], None);
        });
        harness.run_steps(2);
        assert!(harness.query_by_label("Fit later epochs").is_none(), "a rising KL curve needs no fit");
    }
}
