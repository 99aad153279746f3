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

/// Curves per epoch (`(name, points)`, see [`epoch_series`]) for the plot `id`, `height` points high, with its
/// legend where it hides the least of them. Made before it is drawn, so that plots stacked on a page can first agree
/// on the x range they share ([`shared_x`], [`Self::reach`]).
pub(crate) struct EpochCurves<S> {
    id: String,
    height: f32,
    curves: Vec<(S, Vec<[f64; 2]>)>,
    occupied: plot_axes::Occupied,
}

impl<S: AsRef<str> + Into<String>> EpochCurves<S> {
    pub(crate) fn new(ui: &egui::Ui, id: &str, height: f32, curves: Vec<(S, Vec<[f64; 2]>)>) -> Self {
        let names: Vec<&str> = curves.iter().map(|(name, _)| name.as_ref()).collect();
        let mut occupied = plot_axes::Occupied::for_legend(&names, egui::vec2(ui.available_width(), height));
        for (_, points) in &curves {
            occupied.line(points);
        }
        Self { id: id.to_owned(), height, curves, occupied }
    }

    /// The x range the plot takes in on its own: its curves and the room its legend needs, if shown.
    pub(crate) fn reach(&self, ctx: &egui::Context) -> Option<[f64; 2]> {
        self.occupied.x_reach(plot_axes::legend_shown(ctx, &self.id))
    }

    /// Draws the curves. `emphasised`: the curves the Explain panel's hovered term belongs to, drawn wider over a
    /// halo and named in the plot's accessibility label; `mark`: the epoch the scrubber put on show, drawn as a
    /// vertical line; `x`: the x range shared with the plots stacked with it, if any. Returns where the plot put each
    /// epoch.
    pub(crate) fn show(
        self,
        ui: &mut egui::Ui,
        emphasised: &[&str],
        mark: Option<f64>,
        x: Option<[f64; 2]>,
    ) -> egui_plot::PlotTransform {
        let Self { id, height, curves, occupied } = self;
        let plot = stacked(plot_axes::with_legend(plot_axes::plot(&id), ui.ctx(), &id, &occupied), x);
        let response = plot.height(height).x_axis_label("epoch").show(ui, |plot| {
            for (name, points) in curves {
                if emphasised.contains(&name.as_ref()) {
                    emphasised_curve(plot, name.into(), points);
                } else {
                    plot_axes::curve(plot, name, points);
                }
            }
            if let Some(epoch) = mark {
                plot.vline(egui_plot::VLine::new(EPOCH_ON_SHOW, epoch).color(EPOCH_ON_SHOW_COLOUR));
            }
        });
        if !emphasised.is_empty() {
            label_figure(&response.response, &format!("the curves of {}", emphasised.join(" and ")));
        }
        response.transform
    }
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

/// [`plot_axes::curve`] highlighted: wider, over a dark halo, in its own colour.
pub(crate) fn emphasised_curve(plot: &mut egui_plot::PlotUi<'_>, name: String, points: Vec<[f64; 2]>) {
    if points.len() > 1 {
        halo_line(plot, ("curve", &name), points.clone(), 3.5);
        plot.line(egui_plot::Line::new(name, egui_plot::PlotPoints::from(points)).width(3.5).highlight(true));
    } else {
        plot_axes::curve(plot, name, points);
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

/// `label`, then `combo` (built by the caller, e.g. cut short to fit), whose menu `menu` fills; the combo box's
/// response, which the label names for screen readers.
pub(crate) fn labelled(
    ui: &mut egui::Ui,
    label: &str,
    combo: egui::ComboBox,
    menu: impl FnOnce(&mut egui::Ui),
) -> egui::Response {
    let id = ui.label(label).id;
    combo.show_ui(ui, menu).response.labelled_by(id)
}

#[cfg(test)]
mod tests {
    use super::{EpochCurves, shared_x};

    /// Two plots of 50 epochs stacked as the VAE's loss page stacks them: the loss falling (its legend has a free
    /// corner) and three rising KL curves (whose legend needs room to the right of the data). Drawn over their shared
    /// x range, both show the same epochs across the same stretch of the window; each on its own, they do not.
    #[test]
    fn stacked_plots_show_an_epoch_at_the_same_x() {
        let epochs = |f: &dyn Fn(f64) -> f64| (1..=50).map(|e| [f64::from(e), f(f64::from(e))]).collect::<Vec<_>>();
        let loss = || {
            vec![
                ("test: negative ELBO", epochs(&|e| 150.0 + 70.0 / e)),
                ("test: reconstruction", epochs(&|e| 142.0 + 60.0 / e)),
                ("train: negative ELBO", epochs(&|e| 128.0 + 80.0 / e)),
            ]
        };
        let kl = || {
            vec![
                ("KL, all dimensions", epochs(&|e| 6.5 - 4.0 / e)),
                ("z1", epochs(&|e| 3.2 - 2.3 / e)),
                ("z2", epochs(&|e| 3.3 - 1.4 / e)),
            ]
        };
        // The x bounds and the plot area's left edge of each plot after a few frames (the first lays out).
        let frames = |share: bool| {
            let ctx = egui::Context::default();
            let mut shown = Vec::new();
            for _ in 0..3 {
                let input = egui::RawInput {
                    screen_rect: Some(egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(900.0, 700.0))),
                    ..Default::default()
                };
                let _ = ctx.run_ui(input, |ui| {
                    let (top, bottom) =
                        (EpochCurves::new(ui, "loss", 200.0, loss()), EpochCurves::new(ui, "kl", 160.0, kl()));
                    let reach = [top.reach(ui.ctx()), bottom.reach(ui.ctx())];
                    let x = if share { shared_x(reach) } else { None };
                    shown = [top.show(ui, &[], Some(24.0), x), bottom.show(ui, &[], Some(24.0), x)]
                        .iter()
                        .map(|t| {
                            (t.bounds().min()[0], t.bounds().max()[0], t.frame().left(), t.position_from_point_x(24.0))
                        })
                        .collect::<Vec<_>>();
                });
            }
            shown
        };
        let apart = frames(false);
        assert!(
            apart[1].1 > apart[0].1 + 5.0,
            "on its own the KL plot reaches further right, for its legend: {apart:?}"
        );
        let together = frames(true);
        let (top, bottom) = (together[0], together[1]);
        assert!((top.0 - bottom.0).abs() < 1e-9 && (top.1 - bottom.1).abs() < 1e-9, "the same epochs: {together:?}");
        assert!((top.2 - bottom.2).abs() < 0.5, "the plot areas start at the same x: {together:?}");
        assert!((top.3 - bottom.3).abs() < 0.5, "epoch 24 at the same x on both: {together:?}");
        assert!(top.1 >= apart[1].1 - 1e-9, "the shared range takes in the KL legend's room: {together:?}");
    }
}
