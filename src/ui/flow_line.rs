//! The flow lab's "1-D picture" page: the lecture's slide "Normalizing flows" drawn live. A latent z ~ N(0, 1)
//! (the plot at the bottom) is carried by a monotone f (the middle: z across, x up) to p_x (at the left, on its
//! side so that its x runs up beside f's). An interval [z, z + dz] is shaded under p_z; f carries it to
//! [x, x + dx], shaded under p_x with the same area, since p_x(x) = p_z(z) |dz/dx|. The user drags f's knots, or
//! the interval, or trains f on a column of the loaded data (a thread of `train::line_fit`); the integral of p_x
//! is shown, and stays 1. The spline and its fit are `models::flow::line`'s; this file draws and asks.

use std::sync::{Arc, Weak};

use egui::{Color32, Pos2, Stroke};
use egui_plot::{Bar, BarChart, FilledArea, Line, LineStyle, MarkerShape, PlotBounds, PlotPoints, Points, Text};

use crate::data::Table;
use crate::models::flow::line::{MonotoneSpline, Z_END};
use crate::models::stats::{data_histogram, normal_cdf, normal_pdf};
use crate::train::line_fit::{FitProgress, FitRequest, LineFitJob};
use crate::ui::equation::equation_ui;
use crate::ui::lab_data::LabData;
use crate::ui::lab_page::column_combo;
use crate::ui::plot_axes;

/// The change of variables in one dimension, as the page shows it, in two pieces, which a narrow column puts on two
/// lines: the density, and where z comes from.
pub const LINE_FORMULA: [&str; 2] =
    [r"p_x(x) = p_z(z)\left|\frac{dz}{dx}\right| = \frac{p_z(z)}{f'(z)},", r"z = f^{-1}(x)"];

/// z across the picture.
const Z_VIEW: f64 = Z_END + 0.6;
/// A knot is picked within this many points of the pointer.
const PICK_POINTS: f32 = 14.0;
/// Adam steps of "Train f".
pub const FIT_STEPS: u64 = 600;
/// Adam's learning rate for "Train f" (the knots' x are a few units of a standardised column apart).
const FIT_LEARNING_RATE: f64 = 0.05;
/// Rows "Train f" fits at most: a longer column is thinned evenly (every k-th row), so a fit takes seconds.
pub const FIT_ROWS: usize = 5000;

/// The latent's colour.
const Z_COLOUR: Color32 = Color32::from_rgb(40, 110, 200);
/// The data's colour.
const X_COLOUR: Color32 = Color32::from_rgb(220, 110, 20);
/// The interval's shading.
const STRIP: Color32 = Color32::from_rgba_premultiplied(60, 150, 90, 110);

/// What the pointer is dragging.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Drag {
    /// Knot k of f, up and down.
    Knot(usize),
    /// The interval's start z, by how far the pointer was from it when the drag began.
    Interval(f64),
}

/// A column of the loaded data, standardised, as the picture's x.
struct ColumnData {
    /// The table read (held weakly, so its address cannot be another table's while this lives): a new load is a
    /// new table, and the column is read again.
    table: Weak<Table>,
    /// The column's index in it.
    column: usize,
    name: String,
    values: Arc<Vec<f64>>,
    /// The rows the fit uses: all, or every k-th of a column longer than [`FIT_ROWS`].
    fit_values: Arc<Vec<f64>>,
    /// The histogram's bins: centre, density, width.
    bars: Vec<(f64, f64, f64)>,
    /// The NLL per point under f = identity (N(0, 1)), for comparison.
    gaussian_nll: f64,
}

/// The page's state.
pub struct LineState {
    spline: MonotoneSpline,
    /// The interval's start.
    pub z: f64,
    /// The interval's width.
    pub dz: f64,
    drag: Option<Drag>,
    /// The column to train on (its index in the loaded table).
    column: Option<usize>,
    data: Option<ColumnData>,
    job: Option<LineFitJob>,
    progress: Option<FitProgress>,
    error: Option<String>,
    /// x shown up the side, kept while dragging so the picture does not jump under the pointer.
    x_view: [f64; 2],
    /// Where each knot was drawn, in screen points (for tests that drag them).
    knots_on_screen: Vec<Pos2>,
    /// How tall the numbers beside p_z were drawn last frame, in points.
    numbers_height: f32,
}

impl Default for LineState {
    fn default() -> Self {
        Self {
            spline: MonotoneSpline::lecture(),
            z: 0.8,
            dz: 0.5,
            drag: None,
            column: None,
            data: None,
            job: None,
            progress: None,
            error: None,
            x_view: [-3.0, 3.0],
            knots_on_screen: Vec::new(),
            numbers_height: 0.0,
        }
    }
}

impl LineState {
    /// f as on show.
    #[must_use]
    pub fn spline(&self) -> &MonotoneSpline {
        &self.spline
    }

    /// A fit is running.
    #[must_use]
    pub fn fitting(&self) -> bool {
        self.progress.as_ref().is_some_and(|p| !p.done)
    }

    /// The last fit's progress (steps taken, NLL), if one ran.
    #[must_use]
    pub fn progress(&self) -> Option<&FitProgress> {
        self.progress.as_ref()
    }

    /// The column trained on, standardised, if one is chosen.
    #[must_use]
    pub fn column_values(&self) -> Option<&[f64]> {
        self.data.as_ref().map(|d| d.values.as_slice())
    }

    /// The rows of the column a fit uses (all of them up to [`FIT_ROWS`]).
    #[must_use]
    pub fn fit_values(&self) -> Option<&[f64]> {
        self.data.as_ref().map(|d| d.fit_values.as_slice())
    }

    /// Where knot `k` was last drawn, in screen points.
    #[must_use]
    pub fn knot_on_screen(&self, k: usize) -> Option<Pos2> {
        self.knots_on_screen.get(k).copied()
    }

    /// The interval's ends in x: f(z) and f(z + dz).
    #[must_use]
    pub fn x_interval(&self) -> (f64, f64) {
        (self.spline.eval(self.z).0, self.spline.eval(self.z + self.dz).0)
    }

    /// The probability of the shaded interval both ways: Φ(z + dz) - Φ(z) under p_z, and p_x's integral over
    /// [f(z), f(z + dz)] by quadrature.
    #[must_use]
    pub fn interval_mass(&self) -> (f64, f64) {
        let (x0, x1) = self.x_interval();
        (normal_cdf(self.z + self.dz) - normal_cdf(self.z), self.spline.integral(x0, x1))
    }

    /// p_x's integral over x from f(-8) to f(8) (the mass left outside is below 1e-15).
    #[must_use]
    pub fn total_mass(&self) -> f64 {
        self.spline.integral(self.spline.eval(-8.0).0, self.spline.eval(8.0).0)
    }

    /// Takes the fitting thread's newest spline.
    fn poll(&mut self, ctx: &egui::Context) {
        let Some(progress) = self.job.as_ref().and_then(LineFitJob::poll) else { return };
        self.spline = progress.spline.clone();
        if let Some(why) = &progress.error {
            self.error = Some(format!("Training f stopped: {why}."));
        }
        if !progress.done {
            ctx.request_repaint();
        }
        self.progress = Some(progress);
    }

    /// Starts fitting f to the chosen column, from f as on show.
    fn start_fit(&mut self, ctx: &egui::Context) {
        let Some(data) = &self.data else { return };
        if self.job.is_none() {
            let repaint = ctx.clone();
            match LineFitJob::spawn(move || repaint.request_repaint()) {
                Ok(job) => self.job = Some(job),
                Err(e) => {
                    self.error = Some(format!("Could not start the thread that trains f: {e}."));
                    return;
                }
            }
        }
        self.error = None;
        let request = FitRequest {
            data: Arc::clone(&data.fit_values),
            start: self.spline.clone(),
            steps: FIT_STEPS,
            learning_rate: FIT_LEARNING_RATE,
        };
        self.progress = Some(FitProgress {
            spline: self.spline.clone(),
            step: 0,
            steps: FIT_STEPS,
            nll: self.spline.nll(&data.fit_values),
            done: false,
            error: None,
        });
        if let Some(job) = &mut self.job {
            job.start(request);
        }
    }

    /// Ends a fit under way (f stays where it got to).
    fn stop_fit(&mut self) {
        if let Some(job) = &mut self.job {
            job.stop();
        }
    }

    /// Sets f, ending a fit under way.
    fn set_spline(&mut self, spline: MonotoneSpline) {
        self.stop_fit();
        self.progress = None;
        self.spline = spline;
    }

    /// Whether the column on show was read from `table` (not from data loaded before it).
    fn reads(&self, table: &Arc<Table>) -> bool {
        self.data.as_ref().is_some_and(|d| std::ptr::eq(d.table.as_ptr(), Arc::as_ptr(table)))
    }

    /// Reads column `j` of `table`, standardised, unless it is read already. A fit of the column read before ends,
    /// and its figures go: they were of other values (f stays as it got to).
    fn choose_column(&mut self, table: &Arc<Table>, j: usize) {
        self.column = Some(j);
        if self.reads(table) && self.data.as_ref().is_some_and(|d| d.column == j) {
            return;
        }
        if self.data.is_some() {
            if let Some(job) = &mut self.job {
                job.abandon();
            }
            self.progress = None;
        }
        let recorded: Vec<f32> =
            (0..table.n_rows()).filter_map(|i| table.get(i, j)).filter(|v| v.is_finite()).collect();
        let raw: Vec<f64> = recorded.iter().copied().map(f64::from).collect();
        let n = raw.len().max(1) as f64;
        let mean = raw.iter().sum::<f64>() / n;
        let sd = (raw.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let sd = if sd > 0.0 { sd } else { 1.0 };
        let values: Vec<f64> = raw.iter().map(|v| (v - mean) / sd).collect();
        // Binned as recorded (the wine's 0.27, 0.28…: bins of whole steps), then carried to the standardised x.
        let bars = data_histogram(&recorded, (8, 60)).map_or_else(Vec::new, |histogram| {
            let (start, width) = (histogram.edges[0], histogram.bin_width());
            histogram
                .densities()
                .into_iter()
                .enumerate()
                .map(|(b, d)| ((start + (b as f64 + 0.5) * width - mean) / sd, d * sd, width / sd))
                .collect()
        });
        let every = values.len().div_ceil(FIT_ROWS).max(1);
        let fit_values: Vec<f64> = values.iter().step_by(every).copied().collect();
        let gaussian_nll = MonotoneSpline::identity().nll(&fit_values);
        let name = table.columns[j].name.clone();
        let (values, fit_values) = (Arc::new(values), Arc::new(fit_values));
        self.data =
            Some(ColumnData { table: Arc::downgrade(table), column: j, name, values, fit_values, bars, gaussian_nll });
    }
}

/// The page: its controls, the three plots and the numbers. `data` is the lab's loaded data, if any.
pub(crate) fn flow_line_ui(line: &mut LineState, data: Option<&LabData>, ui: &mut egui::Ui) {
    line.poll(ui.ctx());
    ui.label(
        "The lecture's 1-D flow: z ~ N(0, 1) (bottom) is carried by a monotone f (middle) to x = f(z), whose density \
         p_x is at the left. Drag f's knots (the dots) up or down, drag the shaded interval along z, or train f on a \
         column of the data.",
    );
    controls_ui(line, data, ui);
    if let Some(error) = &line.error {
        ui.colored_label(ui.visuals().error_fg_color, error);
    }
    let height = ui.available_height();
    egui::ScrollArea::vertical()
        .id_salt("flow-line")
        .auto_shrink([false, false])
        .show(ui, |ui| figure_ui(line, height, ui));
}

/// The row of buttons: the lecture's f, the identity, the column and "Train f".
fn controls_ui(line: &mut LineState, data: Option<&LabData>, ui: &mut egui::Ui) {
    let table = data.map(|d| &d.table);
    ui.horizontal_wrapped(|ui| {
        if ui.button("The lecture's f").on_hover_text("f that carries N(0, 1) to two bumps").clicked() {
            line.set_spline(MonotoneSpline::lecture());
        }
        if ui.button("Identity").on_hover_text("f(z) = z: p_x is N(0, 1) itself").clicked() {
            line.set_spline(MonotoneSpline::identity());
        }
        ui.separator();
        match table.filter(|t| t.n_cols() > 0) {
            Some(table) => {
                if line.column.is_none_or(|j| j >= table.n_cols()) || (line.data.is_some() && !line.reads(table)) {
                    // No column yet, or data loaded since it was read: the last feature (not a label), the two moons'
                    // y for the built-in set, whose marginal has two bumps.
                    let features = data.map(|d| d.spec.feature_columns()).unwrap_or_default();
                    line.choose_column(table, features.last().copied().unwrap_or(table.n_cols() - 1));
                }
                let selected = line.column.and_then(|j| table.columns.get(j)).map_or("(pick one)", |c| c.name.as_str());
                let mut picked = None;
                column_combo(ui, "Column", "flow-line-column", selected, |ui| {
                    for (j, column) in table.columns.iter().enumerate() {
                        if ui.selectable_label(line.column == Some(j), &column.name).clicked() {
                            picked = Some(j);
                        }
                    }
                });
                if let Some(j) = picked {
                    line.choose_column(table, j);
                }
                if line.fitting() {
                    if ui.button("Stop").clicked() {
                        line.stop_fit();
                    }
                } else if ui
                    .button("Train f on the column")
                    .on_hover_text(format!(
                        "{FIT_STEPS} Adam steps of maximum likelihood, from f as it is (on {FIT_ROWS} rows at most: a \
                         longer column is thinned evenly)"
                    ))
                    .clicked()
                {
                    line.start_fit(ui.ctx());
                }
            }
            None => {
                ui.label(egui::RichText::new("Load a dataset to train f on one of its columns.").weak());
            }
        }
    });
}

/// The three plots in the textbook's arrangement, and the numbers beside p_z, in `height` points (the page scrolls
/// below 460).
fn figure_ui(line: &mut LineState, height: f32, ui: &mut egui::Ui) {
    let width = ui.available_width().max(300.0);
    let height = height.max(460.0);
    let side = (width * 0.3).clamp(150.0, 360.0);
    let main = (width - side - 12.0).max(150.0);
    // The numbers beside p_z (as tall as they were last frame: larger in presenter mode) get the bottom row's
    // height they need, from the top row while it keeps 240 points.
    let bottom = (height - (height * 0.62).max(240.0) - 12.0).max(150.0).max(line.numbers_height);
    let top = (height - bottom - 12.0).max(240.0);
    if line.drag.is_none() {
        line.x_view = x_view(line);
    }
    ui.horizontal_top(|ui| {
        px_plot(line, [side, top], ui);
        f_plot(line, [main, top], ui);
    });
    ui.horizontal_top(|ui| {
        let numbers =
            ui.allocate_ui_with_layout(egui::vec2(side, bottom), egui::Layout::top_down(egui::Align::Min), |ui| {
                ui.set_width(side);
                numbers_ui(line, ui);
            });
        line.numbers_height = numbers.response.rect.height();
        pz_plot(line, [main, bottom], ui);
    });
}

/// The x range up the side: f's over the z shown and most of the column's values, with a margin.
fn x_view(line: &LineState) -> [f64; 2] {
    let mut lo = line.spline.eval(-Z_VIEW).0;
    let mut hi = line.spline.eval(Z_VIEW).0;
    if let Some(data) = &line.data
        && let (Some(first), Some(last)) = (data.bars.first(), data.bars.last())
    {
        lo = lo.min(first.0 - first.2);
        hi = hi.max(last.0 + last.2);
    }
    let margin = 0.05 * (hi - lo).max(1e-6);
    [lo - margin, hi + margin]
}

/// Points along f for z across the picture: (z, x, f'(z)).
fn along_f(spline: &MonotoneSpline, from: f64, to: f64, n: usize) -> Vec<(f64, f64, f64)> {
    (0..=n)
        .map(|i| {
            let z = from + (to - from) * i as f64 / n as f64;
            let (x, slope) = spline.eval(z);
            (z, x, slope)
        })
        .collect()
}

/// A plot with fixed bounds that does not pan or zoom (the three share their axes by construction).
fn fixed_plot(id: &'static str, size: [f32; 2]) -> egui_plot::Plot<'static> {
    plot_axes::plot(id)
        .width(size[0])
        .height(size[1])
        .allow_drag(false)
        .allow_zoom(false)
        .allow_boxed_zoom(false)
        .allow_double_click_reset(false)
        .show_crosshair(false)
}

/// The middle: f with its knots, the interval carried across.
fn f_plot(line: &mut LineState, size: [f32; 2], ui: &mut egui::Ui) {
    let [x_lo, x_hi] = line.x_view;
    let spline = line.spline.clone();
    let (z0, z1) = (line.z, line.z + line.dz);
    let (x0, x1) = line.x_interval();
    let drag = line.drag;
    // Points along f over the interval: the band up to f, and the band across from it.
    let inside = along_f(&spline, z0, z1, 48);
    let strong = ui.visuals().strong_text_color();
    let plot = fixed_plot("flow-line-f", size).x_axis_label("z").y_axis_label("x = f(z)");
    let response = plot.show(ui, |plot| {
        plot.set_plot_bounds(PlotBounds::from_min_max([-Z_VIEW, x_lo], [Z_VIEW, x_hi]));
        // The interval: up from the z axis to f, then across to the x axis.
        let zs: Vec<f64> = inside.iter().map(|p| p.0).collect();
        let tops: Vec<f64> = inside.iter().map(|p| p.1).collect();
        plot.add(FilledArea::new("", &zs, &vec![x_lo; zs.len()], &tops).fill_color(STRIP).allow_hover(false));
        for (z, x) in [(z0, x0), (z1, x1)] {
            let guide = PlotPoints::from(vec![[z, x_lo], [z, x], [-Z_VIEW, x]]);
            plot.line(Line::new("", guide).color(Color32::GRAY).style(LineStyle::dashed_dense()).allow_hover(false));
        }
        let curve: Vec<[f64; 2]> = along_f(&spline, -Z_VIEW, Z_VIEW, 300).iter().map(|p| [p.0, p.1]).collect();
        plot.line(Line::new("f", PlotPoints::from(curve)).color(strong).width(2.0).allow_hover(false));
        let knots: Vec<[f64; 2]> = spline.knot_z().iter().zip(spline.knot_x()).map(|(&z, &x)| [z, x]).collect();
        plot.points(
            Points::new("knots", knots.clone()).radius(5.0).shape(MarkerShape::Circle).filled(true).color(X_COLOUR),
        );
        if let Some(Drag::Knot(k)) = drag
            && let Some(&at) = knots.get(k)
        {
            plot.points(Points::new("", vec![at]).radius(8.0).shape(MarkerShape::Circle).filled(false).color(X_COLOUR));
        }
        plot.text(
            Text::new("", [0.5 * (z0 + z1), x_lo].into(), "dz").anchor(egui::Align2::CENTER_BOTTOM).color(strong),
        );
        plot.text(
            Text::new("", [-Z_VIEW, 0.5 * (x0 + x1)].into(), "dx").anchor(egui::Align2::LEFT_CENTER).color(strong),
        );
        knots
    });
    // The transform the plot was drawn with (inside the closure it is still the last frame's).
    let transform = response.transform;
    // The band from f across to the x axis: [x, x + dx] left of the curve.
    let band: Vec<([f64; 2], [f64; 2])> = inside.iter().map(|&(z, x, _)| ([-Z_VIEW, x], [z, x])).collect();
    paint_band(ui, &transform, &band);
    line.knots_on_screen = response.inner.iter().map(|&[z, x]| transform.position_from_point(&[z, x].into())).collect();
    let pointer = pointer_in(&response.response, &transform);
    drag_in_f(line, &response.response, pointer);
}

/// Where the pointer is in a plot's coordinates, while it is over the plot or dragging in it.
fn pointer_in(response: &egui::Response, transform: &egui_plot::PlotTransform) -> Option<[f64; 2]> {
    let at = response.interact_pointer_pos().or_else(|| response.hover_pos())?;
    let p = transform.value_from_position(at);
    Some([p.x, p.y])
}

/// Paints a translucent band between two edges (pairs of points in plot coordinates, in order along the band) as
/// one mesh, over the plot `transform` drew: a band across the plots' axes, which egui_plot fills only up and
/// down, without the seams that slices of it drawn one by one would leave.
fn paint_band(ui: &egui::Ui, transform: &egui_plot::PlotTransform, edges: &[([f64; 2], [f64; 2])]) {
    let mut mesh = egui::Mesh::default();
    for (a, b) in edges {
        mesh.colored_vertex(transform.position_from_point(&(*a).into()), STRIP);
        mesh.colored_vertex(transform.position_from_point(&(*b).into()), STRIP);
    }
    for i in 0..u32::try_from(edges.len()).unwrap_or(0).saturating_sub(1) {
        let (a, b, c, d) = (2 * i, 2 * i + 1, 2 * i + 2, 2 * i + 3);
        mesh.add_triangle(a, b, d);
        mesh.add_triangle(a, d, c);
    }
    ui.painter().with_clip_rect(*transform.frame()).add(egui::Shape::mesh(mesh));
}

/// A drag in f's plot: a knot near the pointer moves up and down; elsewhere the interval follows along z.
fn drag_in_f(line: &mut LineState, response: &egui::Response, pointer: Option<[f64; 2]>) {
    // Where the press was: a drag starts a few points further on.
    let pressed_at = response.ctx.input(|i| i.pointer.press_origin());
    if response.drag_started()
        && let Some(at) = pressed_at.or_else(|| response.interact_pointer_pos())
    {
        let nearest = line
            .knots_on_screen
            .iter()
            .enumerate()
            .map(|(k, p)| (k, p.distance(at)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .filter(|&(_, d)| d <= PICK_POINTS);
        line.drag = match (nearest, pointer) {
            (Some((k, _)), _) => Some(Drag::Knot(k)),
            (None, Some([z, _])) => Some(Drag::Interval(z - line.z)),
            (None, None) => None,
        };
        if matches!(line.drag, Some(Drag::Knot(_))) {
            line.set_spline(line.spline.clone());
        }
    }
    if response.dragged()
        && let Some([z, x]) = pointer
    {
        match line.drag {
            Some(Drag::Knot(k)) => {
                line.spline.set_knot_x(k, x);
                line.x_view = union(line.x_view, x_view(line));
            }
            Some(Drag::Interval(offset)) => line.z = (z - offset).clamp(-Z_VIEW, Z_VIEW - line.dz),
            None => {}
        }
    }
    if response.drag_stopped() {
        line.drag = None;
    }
    if response.hovered() && line.drag.is_none() {
        let near_knot =
            response.hover_pos().is_some_and(|at| line.knots_on_screen.iter().any(|p| p.distance(at) <= PICK_POINTS));
        if near_knot {
            response.ctx.set_cursor_icon(egui::CursorIcon::ResizeVertical);
        }
    }
}

fn union(a: [f64; 2], b: [f64; 2]) -> [f64; 2] {
    [a[0].min(b[0]), a[1].max(b[1])]
}

/// The left: p_x on its side (density across, x up), the column's histogram behind it, the interval's band.
fn px_plot(line: &LineState, size: [f32; 2], ui: &mut egui::Ui) {
    let [x_lo, x_hi] = line.x_view;
    let curve = along_f(&line.spline, -9.0, 9.0, 900);
    let density: Vec<[f64; 2]> = curve
        .iter()
        .filter(|p| p.1 >= x_lo && p.1 <= x_hi)
        .map(|&(z, x, slope)| [normal_pdf(z, 0.0, 1.0) / slope, x])
        .collect();
    let bars = line.data.as_ref().map(|d| d.bars.as_slice()).unwrap_or_default();
    // Up to the highest of the curve and the histogram, but a spike (a knot dragged flat) runs off the plot rather
    // than squash the rest.
    let highest = |values: &mut dyn Iterator<Item = f64>| values.fold(0.0_f64, f64::max);
    let curve_top = highest(&mut density.iter().map(|p| p[0])).min(1.5);
    let top = curve_top.max(highest(&mut bars.iter().map(|b| b.1))).max(0.05) * 1.1;
    let inside = along_f(&line.spline, line.z, line.z + line.dz, 24);
    let name = line.data.as_ref().map(|d| format!("column {} (standardised)", d.name));
    let ui_text = ui.visuals().strong_text_color();
    let response = fixed_plot("flow-line-px", size).x_axis_label("p_x(x)").y_axis_label("x").show(ui, |plot| {
        plot.set_plot_bounds(PlotBounds::from_min_max([0.0, x_lo], [top, x_hi]));
        if let Some(name) = name {
            let fill = Color32::from_gray(128).gamma_multiply(0.45);
            let bars = bars.iter().map(|&(x, d, w)| Bar::new(x, d).width(w).fill(fill).stroke(Stroke::NONE)).collect();
            plot.bar_chart(BarChart::new(name, bars).horizontal().allow_hover(false));
        }
        plot.line(Line::new("p_x", PlotPoints::from(density)).color(X_COLOUR).width(2.0).allow_hover(false));
        plot.text(
            Text::new("", [0.0, 0.5 * (inside[0].1 + inside[inside.len() - 1].1)].into(), "dx")
                .anchor(egui::Align2::LEFT_CENTER)
                .color(ui_text),
        );
    });
    // The band under p_x over [x, x + dx].
    let band: Vec<([f64; 2], [f64; 2])> =
        inside.iter().map(|&(z, x, slope)| ([0.0, x], [normal_pdf(z, 0.0, 1.0) / slope, x])).collect();
    paint_band(ui, &response.transform, &band);
}

/// The bottom: p_z with the interval shaded.
fn pz_plot(line: &mut LineState, size: [f32; 2], ui: &mut egui::Ui) {
    let (z0, z1) = (line.z, line.z + line.dz);
    let strong = ui.visuals().strong_text_color();
    let response = fixed_plot("flow-line-pz", size).x_axis_label("z").y_axis_label("p_z(z)").show(ui, |plot| {
        plot.set_plot_bounds(PlotBounds::from_min_max([-Z_VIEW, 0.0], [Z_VIEW, 0.45]));
        let zs: Vec<f64> = (0..=24).map(|i| z0 + (z1 - z0) * f64::from(i) / 24.0).collect();
        let ps: Vec<f64> = zs.iter().map(|&z| normal_pdf(z, 0.0, 1.0)).collect();
        plot.add(FilledArea::new("", &zs, &vec![0.0; zs.len()], &ps).fill_color(STRIP).allow_hover(false));
        let curve: Vec<[f64; 2]> = (0..=300)
            .map(|i| -Z_VIEW + 2.0 * Z_VIEW * f64::from(i) / 300.0)
            .map(|z| [z, normal_pdf(z, 0.0, 1.0)])
            .collect();
        plot.line(Line::new("p_z = N(0, 1)", PlotPoints::from(curve)).color(Z_COLOUR).width(2.0).allow_hover(false));
        plot.text(Text::new("", [0.5 * (z0 + z1), 0.0].into(), "dz").anchor(egui::Align2::CENTER_BOTTOM).color(strong));
    });
    let pointer = pointer_in(&response.response, &response.transform);
    let response = response.response;
    if response.drag_started()
        && let Some([z, _]) = pointer
    {
        line.drag = Some(Drag::Interval(if (z0..=z1).contains(&z) { z - line.z } else { 0.5 * line.dz }));
    }
    if response.dragged()
        && let (Some(Drag::Interval(offset)), Some([z, _])) = (line.drag, pointer)
    {
        line.z = (z - offset).clamp(-Z_VIEW, Z_VIEW - line.dz);
    }
    if response.drag_stopped() {
        line.drag = None;
    }
}

/// The numbers under p_x: the interval both ways, the change of variables at z, the integral, the fit.
fn numbers_ui(line: &mut LineState, ui: &mut egui::Ui) {
    // A wrapping row: in the narrow column of a window of half a screen the second piece goes under the first, where
    // one formula of both was shrunk to three fifths of the body size.
    ui.horizontal_wrapped(|ui| {
        equation_ui(ui, LINE_FORMULA[0]);
        ui.add_space(16.0);
        equation_ui(ui, LINE_FORMULA[1]);
    });
    ui.add(egui::Slider::new(&mut line.dz, 0.05..=1.0).text("dz"));
    let (x0, x1) = line.x_interval();
    let (_, slope) = line.spline.eval(line.z);
    let pz = normal_pdf(line.z, 0.0, 1.0);
    let (mass_z, mass_x) = line.interval_mass();
    ui.label(format!("z = {:.3}, dz = {:.3}", line.z, line.dz));
    ui.label(format!("x = f(z) = {x0:.3}, dx = {:.3}", x1 - x0));
    ui.label(format!("f'(z) = {slope:.3}, so |dz/dx| = {:.3}", 1.0 / slope));
    ui.label(format!("p_x(x) = p_z(z) |dz/dx| = {pz:.4} x {:.3} = {:.4}", 1.0 / slope, pz / slope));
    ui.label(format!("Shaded, the same area: p_z over dz = {mass_z:.4}, p_x over dx = {mass_x:.4}"));
    ui.label(egui::RichText::new(format!("Integral of p_x over all x = {:.4}", line.total_mass())).strong());
    if let Some(progress) = &line.progress {
        let name = line.data.as_ref().map_or("", |d| d.name.as_str());
        let state = if progress.done { "trained" } else { "training" };
        ui.label(format!(
            "f {state} on \"{name}\": step {} of {}, NLL {:.4} nats per point (N(0, 1) alone: {:.4})",
            progress.step,
            progress.steps,
            progress.nll,
            line.data.as_ref().map_or(f64::NAN, |d| d.gaussian_nll),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_formula_typesets_to_paths() {
        for (piece, glyphs) in LINE_FORMULA.into_iter().zip([10, 5]) {
            let t = crate::ui::equation::typeset(piece, Color32::WHITE, 15.0).expect("it typesets");
            let svg = std::str::from_utf8(&t.svg).expect("UTF-8");
            assert!(svg.matches("<path").count() >= glyphs && !svg.contains("<text"), "glyphs as paths: {piece}");
        }
    }

    #[test]
    fn a_column_is_read_standardised_with_its_histogram() {
        let table = Arc::new(Table::from_values(
            "t".to_owned(),
            crate::data::DataSource::File("t.csv".into()),
            vec!["a".to_owned(), "b".to_owned()],
            (0..200).flat_map(|i| [f64::from(i).sin() as f32, (i % 7) as f32]).collect(),
        ));
        let mut line = LineState::default();
        line.choose_column(&table, 1);
        let values = line.column_values().expect("read");
        assert_eq!(values.len(), 200);
        let mean = values.iter().sum::<f64>() / 200.0;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 200.0;
        assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-12, "mean {mean}, variance {var}");
        let data = line.data.as_ref().expect("read");
        let mass: f64 = data.bars.iter().map(|(_, d, w)| d * w).sum();
        assert!((mass - 1.0).abs() < 1e-9, "the histogram is a density: {mass}");
        // Seven whole values: a bar for each, centred on it, rather than bins that take one value or two by turns.
        let mut distinct = values.to_vec();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        assert_eq!(data.bars.len(), 7);
        for ((centre, _, _), value) in data.bars.iter().zip(&distinct) {
            assert!((centre - value).abs() < 1e-6, "bar at {centre}, value {value}");
        }
        assert_eq!(data.name, "b");
        assert_eq!(line.fit_values(), Some(values), "a short column is fitted whole");
    }

    #[test]
    fn a_long_column_is_thinned_evenly_for_the_fit() {
        let n = 12_345;
        let table = Arc::new(Table::from_values(
            "t".to_owned(),
            crate::data::DataSource::File("t.csv".into()),
            vec!["a".to_owned()],
            (0..n).map(|i| (i % 100) as f32).collect(),
        ));
        let mut line = LineState::default();
        line.choose_column(&table, 0);
        let (all, fit) = (line.column_values().expect("read"), line.fit_values().expect("read"));
        assert_eq!(all.len(), n);
        assert!(fit.len() <= FIT_ROWS && fit.len() > FIT_ROWS / 2, "{} rows", fit.len());
        assert_eq!(fit[1].to_bits(), all[3].to_bits(), "every third row");
    }
}
