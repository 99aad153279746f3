//! Every plot's grid and tick labels: steps of 1, 2 or 5 times a power of ten, chosen so that each axis carries
//! numbers however short the plot or narrow the range.
//!
//! `egui_plot`'s default grid divides by ten: its labelled step is a power of ten at least 20 points apart on the
//! y axis (60 on the x axis), so the next one up can be ten times that, taller than a 150-point loss plot, and such
//! a plot showed a curve with no numbers beside it. Here the labelled step is the smallest of 1, 2 and 5 times a
//! power of ten that leaves room for a label (at most 2.5 times that room), and the lighter lines between divide it.
//! y labels get 22 points (a line of text and a gap) on a short axis, so a plot 110 points tall always carries two
//! numbers, growing to `egui_plot`'s 30 on a tall one; x labels get 50 points on a short axis, growing to its 80 on
//! a wide one, or their width and a gap where that is more.

use std::cell::Cell;
use std::rc::Rc;

use egui_plot::{AxisHints, Corner, GridInput, GridMark, Legend, Line, MarkerShape, Plot, PlotPoints, PlotUi, Points};

/// Which way an axis runs: its labels stand one above another (y) or side by side (x).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Axis {
    X,
    Y,
}

impl Axis {
    /// The least room between two labels, in points. The axis draws labels at full strength from here.
    fn min_label_points(self) -> f64 {
        match self {
            Axis::X => 50.0,
            Axis::Y => 22.0,
        }
    }

    /// The room between two labels on an axis `length_points` long: a fifteenth of it, at least
    /// [`Self::min_label_points`] and at most `egui_plot`'s own spacing (30 points for y, 80 for x).
    fn label_points(self, length_points: f64) -> f64 {
        let least = self.min_label_points();
        let most = match self {
            Axis::X => 80.0,
            Axis::Y => 30.0,
        };
        let share = length_points / 15.0;
        if share.is_finite() { share.clamp(least, most) } else { least }
    }

    /// Below this many points apart, labels are not drawn (between it and [`Self::min_label_points`] they fade in).
    /// The light lines are kept closer than this, so only the labelled lattice carries numbers.
    fn hidden_points(self) -> f64 {
        match self {
            Axis::X => 40.0,
            Axis::Y => 18.0,
        }
    }

    /// The axis's hints for `egui_plot`: when labels show.
    #[allow(clippy::cast_possible_truncation)] // points, a few tens
    fn hints<'a>(self) -> AxisHints<'a> {
        let spacing = self.hidden_points() as f32..=self.min_label_points() as f32;
        match self {
            Axis::X => AxisHints::new_x(),
            Axis::Y => AxisHints::new_y(),
        }
        .label_spacing(spacing)
    }
}

/// Width of a digit, sign or point of a tick label in `egui`'s body font, in points (a little over the real
/// advance, so the estimate errs wide).
const CHAR_POINTS: f64 = 7.5;

/// Least gap between two x labels, in points.
const X_LABEL_GAP: f64 = 14.0;

/// The on-screen size `egui_plot` gives `GridInput::base_step_size`: the plot's default grid spacing minimum.
const BASE_STEP_POINTS: f64 = 8.0;

/// A plot with this module's grid and tick labels on both axes. Set an axis's label after this (`x_axis_label`
/// names the axis this sets up).
///
/// Every label of an axis gets the decimals of the axis's labelled step ("0.8", "1.0", "1.2" rather than "0.8",
/// "1", "1.2"): `egui_plot` asks the axis's grid spacer for its marks just before it formats their labels, so the
/// spacer leaves the step it chose where the formatter reads it.
pub(crate) fn plot<'a>(id_salt: impl egui::AsIdSalt) -> Plot<'a> {
    plot_with_y_steps(id_salt, Axis::Y)
}

/// [`plot`] for a plane shown at equal scales (`data_aspect(1.0)`: a latent space, a flow's stages): the y axis takes
/// its steps by the x axis's rule, so both axes step alike and the grid's cells are square.
pub(crate) fn plane<'a>(id_salt: impl egui::AsIdSalt) -> Plot<'a> {
    plot_with_y_steps(id_salt, Axis::X).data_aspect(1.0)
}

/// The colour of marks that must stand out from what lies under them in a plot (a picked input, a path, an
/// ellipse, a warped grid): white on a dark theme's background or over a dark image (a flow's heat map), near-black
/// on a light theme's (presenter mode), where white marks vanish.
pub(crate) fn ink(visuals: &egui::Visuals, over_dark_image: bool) -> egui::Color32 {
    if visuals.dark_mode || over_dark_image { egui::Color32::WHITE } else { egui::Color32::from_gray(25) }
}

/// What a plot draws, for placing its legend where it hides the least: every point of a scatter, and points along
/// every line (its vertices and, on a line of few segments, points between them, so that a long straight segment
/// counts all along its run); and how much of the plot the legend covers.
#[derive(Debug)]
pub(crate) struct Occupied {
    points: Vec<[f64; 2]>,
    /// Vertical lines across the whole plot: their x.
    vlines: Vec<f64>,
    /// The share of the plot's width and height the legend covers.
    legend_share: [f64; 2],
}

impl Default for Occupied {
    /// A legend of unknown size: taken as 40 % of the plot each way.
    fn default() -> Self {
        Self { points: Vec::new(), vlines: Vec::new(), legend_share: [0.4, 0.4] }
    }
}

impl Occupied {
    /// Pieces each segment of a line of few segments is cut into.
    const PIECES: u32 = 16;
    /// Lines of more segments than this count by their vertices alone (they are dense already).
    const FEW_SEGMENTS: usize = 64;

    /// For a legend of `entries` (their names) on a plot of `plot_size` points (axes included): the legend's size
    /// is estimated from `egui_plot`'s layout (a body-size row per entry, an icon, a frame).
    pub(crate) fn for_legend(entries: &[&str], plot_size: egui::Vec2) -> Self {
        let longest = entries.iter().map(|e| e.chars().count()).max().unwrap_or(0);
        #[allow(clippy::cast_precision_loss)] // a few entries of a few tens of characters
        let legend = [longest as f64 * CHAR_POINTS + 44.0, entries.len() as f64 * 18.0 + 16.0];
        // The axes' labels take about this much of the plot's size.
        let area = [f64::from(plot_size.x) - 60.0, f64::from(plot_size.y) - 40.0];
        let share = |i: usize| if area[i] > 0.0 { (legend[i] / area[i]).clamp(0.1, 0.6) } else { 0.4 };
        Self { legend_share: [share(0), share(1)], ..Self::default() }
    }

    /// Adds a scatter's points.
    pub(crate) fn points(&mut self, points: &[[f64; 2]]) -> &mut Self {
        self.points.extend(points.iter().filter(|p| p[0].is_finite() && p[1].is_finite()));
        self
    }

    /// Adds a vertical line (`VLine`) at `x`, across the plot.
    pub(crate) fn vline(&mut self, x: f64) -> &mut Self {
        if x.is_finite() {
            self.vlines.push(x);
        }
        self
    }

    /// The points, and points along the vertical lines across the points' extent.
    fn all_points(&self) -> Vec<[f64; 2]> {
        let mut all = self.points.clone();
        let (y_lo, y_hi) = self
            .points
            .iter()
            .map(|p| p[1])
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        for &x in &self.vlines {
            all.extend((0..=Self::PIECES).map(|k| [x, y_lo + (y_hi - y_lo) * f64::from(k) / f64::from(Self::PIECES)]));
        }
        all.retain(|p| p[0].is_finite() && p[1].is_finite());
        all
    }

    /// Adds a line through `vertices`.
    pub(crate) fn line(&mut self, vertices: &[[f64; 2]]) -> &mut Self {
        if vertices.len() > Self::FEW_SEGMENTS {
            return self.points(vertices);
        }
        self.points(&vertices[..vertices.len().min(1)]);
        for pair in vertices.windows(2) {
            let along: Vec<[f64; 2]> = (1..=Self::PIECES)
                .map(|k| {
                    let t = f64::from(k) / f64::from(Self::PIECES);
                    [pair[0][0] + (pair[1][0] - pair[0][0]) * t, pair[0][1] + (pair[1][1] - pair[0][1]) * t]
                })
                .collect();
            self.points(&along);
        }
        self
    }

    /// Where the legend goes: the corner of the plot that holds the fewest of these points (within the legend's
    /// share of the data's width and height of it), the top right on a tie, then the top left, the bottom right and
    /// the bottom left. Where every corner holds some (more than one point in a hundred), room is made for the
    /// legend beyond the data instead, on the side that costs the plot the least: to the right of it (the legend at
    /// the top right) or above it (the legend at the top, left or right).
    pub(crate) fn placement(&self) -> LegendPlacement {
        let [share_x, share_y] = self.legend_share;
        let points = self.all_points();
        let bounds =
            points.iter().fold([f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY], |b, p| {
                [b[0].min(p[0]), b[1].max(p[0]), b[2].min(p[1]), b[3].max(p[1])]
            });
        let [x_min, x_max, y_min, y_max] = bounds;
        if !(x_max > x_min || y_max > y_min) {
            return LegendPlacement { corner: Corner::RightTop, room: None };
        }
        let (width, height) = ((x_max - x_min).max(f64::MIN_POSITIVE), (y_max - y_min).max(f64::MIN_POSITIVE));
        let count = |right: bool, top: bool| {
            points
                .iter()
                .filter(|p| {
                    let x = (p[0] - x_min) / width;
                    let y = (p[1] - y_min) / height;
                    (if right { x >= 1.0 - share_x } else { x <= share_x })
                        && (if top { y >= 1.0 - share_y } else { y <= share_y })
                })
                .count()
        };
        let (corner, hidden) = [
            (Corner::RightTop, count(true, true)),
            (Corner::LeftTop, count(false, true)),
            (Corner::RightBottom, count(true, false)),
            (Corner::LeftBottom, count(false, false)),
        ]
        .into_iter()
        .min_by_key(|&(_, n)| n)
        .unwrap_or((Corner::RightTop, 0));
        if hidden * 100 <= points.len() {
            return LegendPlacement { corner, room: None };
        }
        // The data keeps (1 - share) of the axis (a tenth more for the plot's own margins); the legend takes the
        // rest. Over points that share one x (a vertical line) the room goes above them.
        let beyond = |share: f64, length: f64| length * share / (1.0 - share) * 1.1;
        if share_x <= share_y && width > f64::MIN_POSITIVE {
            LegendPlacement { corner: Corner::RightTop, room: Some(Room::Right(x_max + beyond(share_x, width))) }
        } else {
            let top = if count(false, true) < count(true, true) { Corner::LeftTop } else { Corner::RightTop };
            LegendPlacement { corner: top, room: Some(Room::Above(y_max + beyond(share_y, height))) }
        }
    }

    /// The corner of [`Self::placement`].
    #[cfg(test)]
    fn corner(&self) -> Corner {
        self.placement().corner
    }
}

/// Where a legend goes ([`Occupied::placement`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LegendPlacement {
    /// The plot's corner.
    pub corner: Corner,
    /// Room made for it beyond the data, where no corner was free.
    pub room: Option<Room>,
}

/// Room beyond the data for a legend: the x or y the plot's view takes in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Room {
    /// The view reaches right to this x.
    Right(f64),
    /// The view reaches up to this y.
    Above(f64),
}

fn legend_id(key: &str) -> egui::Id {
    egui::Id::unique(("plot-legend-shown", key))
}

/// Whether the legend of the plot `key` shows (it does until its [`legend_toggle`] hides it; remembered across
/// sessions).
pub(crate) fn legend_shown(ctx: &egui::Context, key: &str) -> bool {
    ctx.data_mut(|d| *d.get_persisted_mut_or(legend_id(key), true))
}

/// The "Legend" check box that shows or hides the legend of the plot `key`, for the row above the plot.
pub(crate) fn legend_toggle(ui: &mut egui::Ui, key: &str) {
    let mut shown = legend_shown(ui.ctx(), key);
    if ui.checkbox(&mut shown, "Legend").changed() {
        ui.ctx().data_mut(|d| d.insert_persisted(legend_id(key), shown));
    }
}

/// `plot` with its legend where it hides the least of what it draws (`occupied`, see [`Occupied::placement`]), unless
/// the plot's [`legend_toggle`] (`key`) hid it.
pub(crate) fn with_legend<'a>(plot: Plot<'a>, ctx: &egui::Context, key: &str, occupied: &Occupied) -> Plot<'a> {
    with_legend_kept(plot, ctx, key, occupied, &mut None)
}

/// [`with_legend`], the legend kept in `kept`'s corner when it holds one, else in the corner `occupied` chooses,
/// which `kept` then holds: an animation's frames keep the first frame's corner rather than jump between them.
pub(crate) fn with_legend_kept<'a>(
    plot: Plot<'a>,
    ctx: &egui::Context,
    key: &str,
    occupied: &Occupied,
    kept: &mut Option<Corner>,
) -> Plot<'a> {
    if let Some(corner) = *kept {
        return with_legend_in(plot, ctx, key, corner);
    }
    if !legend_shown(ctx, key) {
        return plot;
    }
    let placement = occupied.placement();
    *kept = Some(placement.corner);
    let plot = match placement.room {
        Some(Room::Right(x)) => plot.include_x(x),
        Some(Room::Above(y)) => plot.include_y(y),
        None => plot,
    };
    plot.legend(legend(placement.corner))
}

/// `items` in the order that lists them from the top in a legend in `corner` (`None`: no legend): `egui_plot`
/// stacks a legend in a bottom corner upwards from its first item, so that the digits "0" to "9" read from "9" down
/// to "0" and a file's classes "1" above "0"; there the items go in last first.
pub(crate) fn in_legend_order<T>(mut items: Vec<T>, corner: Option<Corner>) -> Vec<T> {
    if matches!(corner, Some(Corner::LeftBottom | Corner::RightBottom)) {
        items.reverse();
    }
    items
}

/// `plot` with its legend in `corner`, unless the plot's [`legend_toggle`] (`key`) hid it.
pub(crate) fn with_legend_in<'a>(plot: Plot<'a>, ctx: &egui::Context, key: &str, corner: Corner) -> Plot<'a> {
    if legend_shown(ctx, key) { plot.legend(legend(corner)) } else { plot }
}

/// A legend in `corner` that lists its entries in the order the plot draws them (each plot draws its curves in the
/// order they are best read: "total, data term, KL / N", the digits 0 to 9), rather than sorted by name.
fn legend(corner: Corner) -> Legend {
    Legend::default().position(corner).follow_insertion_order(true)
}

/// `title` as the y axis of a plot `height` points high (its x axis's tick labels and title included) can show it:
/// `egui_plot` turns the title, centres it on the axis and draws it whole, so a title longer than the axis runs over
/// what lies above and below the plot (a short loss plot's "NLL (nats per point)" over its legend's row). A title
/// too long loses its parenthesis first ("NLL": the flow's side panel gives its unit), then its end ("predicted
/// residual sug…": a column's whole name is on its menu's hover).
pub(crate) fn fitted_y_title(ui: &egui::Ui, title: &str, height: f32) -> String {
    let font = egui::TextStyle::Body.resolve(ui.style());
    // The x axis below the plot area, as `egui_plot` lays it out: a row of tick labels, then its title and a quarter
    // of a row's gap.
    let room = height - 2.25 * ui.text_style_height(&egui::TextStyle::Body);
    let width = |text: &str| {
        ui.ctx().fonts_mut(|f| f.layout_no_wrap(text.to_owned(), font.clone(), egui::Color32::WHITE).size().x)
    };
    if width(title) <= room {
        return title.to_owned();
    }
    if let Some((short, _)) = title.split_once(" (")
        && width(short) <= room
    {
        return short.to_owned();
    }
    let chars: Vec<char> = title.chars().collect();
    (1..chars.len())
        .rev()
        .map(|n| format!("{}…", chars[..n].iter().collect::<String>().trim_end()))
        .find(|cut| width(cut) <= room)
        .unwrap_or_default()
}

/// `plot` with each axis of a column of text (`x` and `y`: its categories, empty for a column of numbers) ticked by
/// its categories' names at their numbers ("female" at 0, "male" at 1) rather than by numbers.
pub(crate) fn ticked_by_categories<'a>(plot: Plot<'a>, x: &[String], y: &[String]) -> Plot<'a> {
    let mut plot = plot;
    if !x.is_empty() {
        let categories = x.to_vec();
        plot = plot.x_axis_formatter(move |mark, _| category_tick(&categories, mark.value));
    }
    if !y.is_empty() {
        let categories = y.to_vec();
        plot = plot.y_axis_formatter(move |mark, _| category_tick(&categories, mark.value));
    }
    plot
}

/// The tick at `value` on the axis of a column of text: the name of the category numbered so, none between them.
fn category_tick(categories: &[String], value: f64) -> String {
    let whole = (value - value.round()).abs() < 1e-6 && value > -0.5;
    whole.then(|| categories.get(value.round() as usize).cloned()).flatten().unwrap_or_default()
}

/// Adds a curve (a loss or a metric per epoch) in `colour` to a plot: a line, or the lone point as a marker while
/// there is only one (a line through one point draws nothing).
pub(crate) fn coloured_curve(
    plot: &mut PlotUi<'_>,
    name: impl Into<String>,
    points: Vec<[f64; 2]>,
    colour: egui::Color32,
) {
    if points.len() == 1 {
        plot.points(Points::new(name.into(), points).radius(3.5).shape(MarkerShape::Circle).filled(true).color(colour));
    } else {
        plot.line(Line::new(name.into(), PlotPoints::from(points)).color(colour));
    }
}

/// A plot whose y axis chooses its steps by `y_room`'s label room. The mouse wheel over it scrolls the page, as
/// everywhere else on the page, rather than also panning the plot away from what it shows (`egui_plot` does both):
/// a drag pans, Ctrl + wheel zooms.
fn plot_with_y_steps<'a>(id_salt: impl egui::AsIdSalt, y_room: Axis) -> Plot<'a> {
    let x_step = Rc::new(Cell::new(f64::NAN));
    let y_step = Rc::new(Cell::new(f64::NAN));
    let x_scale = Rc::new(Cell::new(f64::NAN));
    let (x_step_read, y_step_read, x_scale_read) = (Rc::clone(&x_step), Rc::clone(&y_step), Rc::clone(&x_scale));
    Plot::new(id_salt)
        .allow_scroll(false)
        .custom_x_axes(vec![Axis::X.hints()])
        .custom_y_axes(vec![Axis::Y.hints()])
        .x_grid_spacer(move |input| {
            x_scale.set(input.base_step_size / BASE_STEP_POINTS);
            grid_marks(&input, Stepping::own(Axis::X), &x_step)
        })
        .y_grid_spacer(move |input| grid_marks(&input, Stepping { room: y_room, drawn: Axis::Y }, &y_step))
        .x_axis_formatter(move |mark, range| x_tick_label(mark, x_step_read.get(), *range.end(), x_scale_read.get()))
        .y_axis_formatter(move |mark, _| tick_label(mark, y_step_read.get()))
}

/// An x tick's label ([`tick_label`]), or none where its right half would run past the axis's end (`end`, at
/// `value_per_point`): the plot's edge would cut it ("4." for 45 at the edge of the window).
#[allow(clippy::cast_precision_loss)] // a label's length
fn x_tick_label(mark: GridMark, labelled_step: f64, end: f64, value_per_point: f64) -> String {
    let text = tick_label(mark, labelled_step);
    let half_width = text.chars().count() as f64 * CHAR_POINTS / 2.0;
    let room = (end - mark.value) / value_per_point;
    if room.is_finite() && room < half_width { String::new() } else { text }
}

/// The smallest 1, 2 or 5 times a power of ten that is at least `value` (`None` for zero, negative or not finite).
fn nice_at_least(value: f64) -> Option<f64> {
    if !value.is_finite() || value <= 0.0 {
        return None;
    }
    let decade = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * decade).find(|&s| s >= value * (1.0 - 1e-9))
}

/// Estimated width in points of the widest label a step of `step` puts in `bounds` (it is at one end: the largest
/// magnitude, or a minus sign).
#[allow(clippy::cast_precision_loss)] // a label's length
fn widest_label_points((min, max): (f64, f64), step: f64) -> f64 {
    let width = |value: f64| tick_label(GridMark { value, step_size: step }, step).chars().count() as f64 * CHAR_POINTS;
    width((min / step).ceil() * step).max(width((max / step).floor() * step))
}

/// How an axis steps: by which axis's label room (`room`: an equal-scale plane steps its y axis like its x axis), and
/// on which axis its labels are drawn (`drawn`: the light lines stay closer than that axis draws labels).
#[derive(Clone, Copy, Debug)]
struct Stepping {
    room: Axis,
    drawn: Axis,
}

impl Stepping {
    /// An axis stepping by its own label room.
    fn own(axis: Axis) -> Self {
        Self { room: axis, drawn: axis }
    }
}

/// The three steps of an axis's grid: a light step, the labelled step, and a heavier one, each dividing the next so
/// that all the labels lie on one lattice and never overlap.
///
/// `value_per_point` is the axis's scale and `bounds` the values in view. The labelled step is the smallest 1, 2 or
/// 5 times a power of ten at least the label room apart (by the x axis's rule, also the widest label and a gap);
/// the light step divides it into 4 (for a 2), 5, 10, 20, 50... parts, the fewest that put the light lines closer
/// than the axis draws labels.
fn steps(value_per_point: f64, bounds: (f64, f64), stepping: Stepping) -> Option<[f64; 3]> {
    let length_points = (bounds.1 - bounds.0) / value_per_point;
    let mut labelled = nice_at_least(value_per_point * stepping.room.label_points(length_points))?;
    if stepping.room == Axis::X {
        // A few rounds at most: each step up widens the room faster than it lengthens the labels.
        for _ in 0..8 {
            let room = widest_label_points(bounds, labelled) + X_LABEL_GAP;
            if labelled / value_per_point >= room {
                break;
            }
            labelled = nice_at_least(value_per_point * room)?;
        }
    }
    let mantissa = (labelled / 10f64.powf(labelled.log10().floor())).round();
    let is_two = (mantissa - 2.0).abs() < 0.5;
    let heavy = if (mantissa - 5.0).abs() < 0.5 { labelled * 2.0 } else { labelled * 5.0 };
    let hidden = stepping.drawn.hidden_points();
    let parts = [4_u32, 5, 10, 20, 50, 100, 200, 500, 1000]
        .into_iter()
        .filter(|&n| is_two || n != 4)
        .map(f64::from)
        .find(|&n| labelled / n / value_per_point < hidden)?;
    Some([labelled / parts, labelled, heavy])
}

/// The grid marks of one axis: every multiple of the light step in view, each with the largest of the three steps
/// it is a multiple of (which decides its line's weight and whether it is labelled). The labelled step goes into
/// `labelled_step`, for the labels' decimals.
fn grid_marks(input: &GridInput, stepping: Stepping, labelled_step: &Cell<f64>) -> Vec<GridMark> {
    let value_per_point = input.base_step_size / BASE_STEP_POINTS;
    let Some(step_sizes) = steps(value_per_point, input.bounds, stepping) else {
        return Vec::new();
    };
    labelled_step.set(step_sizes[1]);
    let (min, max) = input.bounds;
    let light = step_sizes[0];
    let (Some(first), Some(last)) = (ratio_index(min / light, f64::ceil), ratio_index(max / light, f64::floor)) else {
        return Vec::new();
    };
    // A plot's bounds are finite, but a huge range over a tiny step would still be too many lines to draw.
    if last < first || last - first > 10_000 {
        return Vec::new();
    }
    let per_labelled = (step_sizes[1] / light).round() as i64;
    let per_heavy = (step_sizes[2] / light).round() as i64;
    (first..=last)
        .map(|i| {
            let step_size = if i % per_heavy == 0 {
                step_sizes[2]
            } else if i % per_labelled == 0 {
                step_sizes[1]
            } else {
                light
            };
            #[allow(clippy::cast_precision_loss)] // |i| <= 2^53 is checked by `ratio_index`
            GridMark { value: i as f64 * light, step_size }
        })
        .collect()
}

/// `rounding(ratio)` as an integer, where it fits exactly in an `f64`.
#[allow(clippy::cast_possible_truncation)] // the range is checked first
fn ratio_index(ratio: f64, rounding: fn(f64) -> f64) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    let r = rounding(ratio);
    (r.is_finite() && r.abs() <= EXACT).then_some(r as i64)
}

/// A tick's number with as many decimals as the axis's labelled step needs ("0.5" and "1.0" on a step of 0.5, "2"
/// on a step of 2, "0.25" on 0.25; the mark's own step where the labelled one is not known), and no "-0" for a
/// zero reached by rounding.
fn tick_label(mark: GridMark, labelled_step: f64) -> String {
    let step = if labelled_step.is_finite() && labelled_step > 0.0 { labelled_step } else { mark.step_size };
    let decimals = decimals_for_step(step);
    let text = format!("{:.*}", decimals, mark.value);
    if text.starts_with('-') && text[1..].chars().all(|c| c == '0' || c == '.') { text[1..].to_owned() } else { text }
}

/// Decimals that show every multiple of `step` exactly (steps are 1, 2, 2.5 or 5 times a power of ten): the
/// fewest after which the step is a whole number of last digits.
fn decimals_for_step(step: f64) -> usize {
    if !step.is_finite() || step <= 0.0 || step >= 1.0 {
        return 0;
    }
    (1..=15)
        .find(|&d| {
            let scaled = step * 10f64.powi(d);
            scaled >= 0.999 && (scaled - scaled.round()).abs() < 1e-6 * scaled
        })
        .unwrap_or(15) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` in a frame of a fresh context.
    fn in_a_frame(f: impl FnOnce(&egui::Ui)) {
        let mut f = Some(f);
        let _ = egui::Context::default().run_ui(egui::RawInput::default(), |ui| {
            if let Some(f) = f.take() {
                f(ui);
            }
        });
    }

    /// `egui_plot` lays a legend in a bottom corner out bottom-up (`Direction::BottomUp` from its first entry);
    /// in such a corner the items go in reversed, so that the legend reads "0", "1", ... from its top.
    #[test]
    fn a_legend_in_a_bottom_corner_lists_its_items_from_the_first_at_the_top() {
        let digits = || vec!["0", "1", "2"];
        for corner in [None, Some(Corner::LeftTop), Some(Corner::RightTop)] {
            assert_eq!(in_legend_order(digits(), corner), digits(), "{corner:?}");
        }
        for corner in [Corner::LeftBottom, Corner::RightBottom] {
            assert_eq!(in_legend_order(digits(), Some(corner)), ["2", "1", "0"], "{corner:?}");
        }
    }

    #[test]
    fn a_column_of_text_is_ticked_by_its_categories_at_their_numbers() {
        let categories = ["female", "male"].map(String::from);
        assert_eq!(category_tick(&categories, 0.0), "female");
        assert_eq!(category_tick(&categories, 1.000_000_1), "male");
        for between in [0.5, -1.0, 2.0, 0.25] {
            assert_eq!(category_tick(&categories, between), "", "{between}");
        }
    }

    #[test]
    fn a_y_title_longer_than_its_axis_loses_its_parenthesis_then_its_end() {
        in_a_frame(|ui| {
            let fits = |title: &str, height: f32| {
                let room = height - 2.25 * ui.text_style_height(&egui::TextStyle::Body);
                let font = egui::TextStyle::Body.resolve(ui.style());
                ui.ctx().fonts_mut(|f| f.layout_no_wrap(title.to_owned(), font, egui::Color32::WHITE).size().x) <= room
            };
            // A tall plot keeps the whole title, as does the flow's loss plot at its tallest (150 points, in a
            // 1920 x 1080 window), where it fits.
            assert_eq!(fitted_y_title(ui, "NLL (nats per point)", 400.0), "NLL (nats per point)");
            assert_eq!(fitted_y_title(ui, "NLL (nats per point)", 150.0), "NLL (nats per point)");
            // The flow's loss plot in a short window (90 points): the unit goes, the quantity stays.
            assert!(!fits("NLL (nats per point)", 90.0));
            assert_eq!(fitted_y_title(ui, "NLL (nats per point)", 90.0), "NLL");
            // A long column's name is cut to the axis, ending in an ellipsis, as long as fits.
            let name = "residual_sugar_after_fermentation_in_grams_per_litre";
            let cut = fitted_y_title(ui, name, 150.0);
            assert!(cut.ends_with('…') && fits(&cut, 150.0), "{cut}");
            let kept = cut.trim_end_matches('…');
            assert!(name.starts_with(kept) && kept.len() > 5, "{cut}");
            let longer = format!("{}…", &name[..=kept.len()]);
            assert!(!fits(&longer, 150.0), "{longer} would fit too");
        });
    }

    /// What `egui_plot` labels on an axis `length_points` long showing `bounds`, by its rule (a mark is labelled
    /// when marks of its step are more than the axis's hidden spacing apart and its text fits in that spacing),
    /// with each label's text.
    fn labelled(bounds: (f64, f64), length_points: f64, axis: Axis) -> Vec<(f64, String)> {
        labelled_by(bounds, length_points, Stepping::own(axis))
    }

    /// [`labelled`] for an axis stepping by `stepping`.
    fn labelled_by(bounds: (f64, f64), length_points: f64, stepping: Stepping) -> Vec<(f64, String)> {
        let value_per_point = (bounds.1 - bounds.0) / length_points;
        let input = GridInput { bounds, base_step_size: value_per_point * BASE_STEP_POINTS };
        let step = Cell::new(f64::NAN);
        let marks = grid_marks(&input, stepping, &step);
        marks
            .into_iter()
            .filter(|m| m.step_size / value_per_point > stepping.drawn.hidden_points())
            .map(|m| (m.value, tick_label(m, step.get())))
            .collect()
    }

    /// Ranges from tiny to huge, offsets near and far from zero (so labels with many digits and minus signs), and
    /// axes from a short loss plot's to a full window's: every y axis 110 points tall has two labels or more (one
    /// below that), never closer than a label's room nor further than 2.5 times it; every x axis has a gap between
    /// its labels' texts, and two labels or more once it is 400 points wide (one from 200).
    #[test]
    fn every_axis_gets_labels_that_never_crowd() {
        let mut checked = 0;
        let plane_y = Stepping { room: Axis::X, drawn: Axis::Y };
        for stepping in [Stepping::own(Axis::Y), Stepping::own(Axis::X), plane_y] {
            let axis = stepping.room;
            for length_points in [60.0, 90.0, 110.0, 150.0, 200.0, 400.0, 700.0] {
                for exponent in -6..=6 {
                    for mantissa in [1.0, 1.3, 1.9, 2.2, 3.0, 4.4, 6.1, 7.5, 9.9] {
                        let range = mantissa * 10f64.powi(exponent);
                        for offset in [0.0, -0.37, 1.0, -123.4] {
                            let lo = offset * 10f64.powi(exponent) - range / 3.0;
                            let labels = labelled_by((lo, lo + range), length_points, stepping);
                            let wanted = match axis {
                                Axis::Y if length_points >= 110.0 => 2,
                                Axis::Y => 1,
                                Axis::X if length_points >= 400.0 => 2,
                                Axis::X if length_points >= 200.0 => 1,
                                Axis::X => 0,
                            };
                            assert!(
                                labels.len() >= wanted,
                                "{stepping:?}: {length_points} points over {range:e} from {lo:e}: labels {labels:?}"
                            );
                            let points_per_value = length_points / range;
                            for pair in labels.windows(2) {
                                let gap = (pair[1].0 - pair[0].0) * points_per_value;
                                let room = axis.label_points(length_points);
                                assert!(gap >= room * 0.999, "{gap} points apart: {labels:?}");
                                if axis == Axis::Y {
                                    assert!(gap <= room * 2.5 * 1.001, "{gap} apart: {labels:?}");
                                } else {
                                    let widths =
                                        [&pair[0].1, &pair[1].1].map(|t| t.chars().count() as f64 * CHAR_POINTS);
                                    assert!(
                                        gap >= f64::midpoint(widths[0], widths[1]) + X_LABEL_GAP * 0.999,
                                        "{labels:?}"
                                    );
                                }
                            }
                            let texts: Vec<&String> = labels.iter().map(|(_, t)| t).collect();
                            let mut unique = texts.clone();
                            unique.dedup();
                            assert_eq!(texts, unique, "two labels read the same");
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 3 * 7 * 13 * 9 * 4);
    }

    /// The case that had no numbers: a loss plot 115 points tall whose curve spans 2.05 to 2.62 nats. egui's own
    /// grid labels nothing there: its powers of ten are 0.1 (20.2 points apart, faded to nothing by its 20-to-30-
    /// point fade) and 1 (none in view).
    #[test]
    fn a_short_loss_plot_is_labelled_every_fifth_of_a_nat() {
        let labels = labelled((2.05, 2.62), 115.0, Axis::Y);
        let texts: Vec<&str> = labels.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["2.2", "2.4", "2.6"]);
    }

    /// The epochs of a loss plot across a wide window, and the same axis where its numbers are long.
    #[test]
    fn x_labels_widen_their_step_for_long_numbers() {
        let epochs = labelled((-1.0, 23.0), 870.0, Axis::X);
        let texts: Vec<&str> = epochs.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["0", "2", "4", "6", "8", "10", "12", "14", "16", "18", "20", "22"]);
        let long = labelled((-1_000_100.0, -999_860.0), 870.0, Axis::X);
        let texts: Vec<&str> = long.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["-1000100", "-1000050", "-1000000", "-999950", "-999900"]);
    }

    /// The VAE's latent plane, 400 points across z in -5.5..5.5 both ways: the y axis steps like the x axis (by 2),
    /// and its light lines carry no labels (they had read "4, 4, 4, 3, 3" when they kept only under the x axis's
    /// hidden spacing).
    #[test]
    fn an_equal_scale_plane_steps_alike_on_both_axes() {
        let texts = |labels: Vec<(f64, String)>| labels.into_iter().map(|(_, t)| t).collect::<Vec<_>>();
        let x = texts(labelled((-5.5, 5.5), 400.0, Axis::X));
        let y = texts(labelled_by((-5.5, 5.5), 400.0, Stepping { room: Axis::X, drawn: Axis::Y }));
        assert_eq!(x, ["-4", "-2", "0", "2", "4"]);
        assert_eq!(y, x);
    }

    /// Issue 28: legends sat on the data (always the top right). Each now takes the corner with the fewest points:
    /// the top right beside a falling loss curve, the bottom right under a rising accuracy, a bottom corner under a
    /// cloud in the top half, the top left over the calibration plot's diagonal and its bars; and where every
    /// corner holds data (loss terms along the top and the foot), the view makes room for it beside the data.
    /// The room [`Occupied::placement`] makes beside the line `points` for a legend of unknown size.
    fn corner_room(points: &[[f64; 2]]) -> Option<Room> {
        let mut occupied = Occupied::default();
        occupied.line(points);
        occupied.placement().room
    }

    #[test]
    fn ux_a_legend_takes_the_corner_with_the_fewest_points() {
        let corner = |add: &dyn Fn(&mut Occupied)| {
            let mut occupied = Occupied::default();
            add(&mut occupied);
            occupied.corner()
        };
        let falling: Vec<[f64; 2]> = (0..50).map(|i| [f64::from(i), 10.0 / (1.0 + f64::from(i))]).collect();
        assert_eq!(
            corner(&|o| {
                o.line(&falling);
            }),
            Corner::RightTop
        );
        let rising: Vec<[f64; 2]> = (0..50).map(|i| [f64::from(i), 1.0 - 1.0 / (1.0 + f64::from(i))]).collect();
        assert_eq!(
            corner(&|o| {
                o.line(&rising);
            }),
            Corner::RightBottom
        );
        // A cloud over the top half and the right of the bottom: the bottom left is free.
        let cloud: Vec<[f64; 2]> = (0..400)
            .map(|i| [f64::from(i % 20) / 19.0, f64::from(i / 20) / 19.0])
            .filter(|p| p[1] >= 0.5 || p[0] >= 0.5)
            .collect();
        assert_eq!(
            corner(&|o| {
                o.points(&cloud);
            }),
            Corner::LeftBottom
        );
        let calibration = |o: &mut Occupied| {
            o.line(&[[0.0, 0.0], [1.0, 1.0]]);
            for (nominal, observed) in [(0.5, 0.4), (0.8, 0.7), (0.9, 0.85), (0.95, 0.9)] {
                o.line(&[[nominal, 0.0], [nominal, observed]]);
            }
        };
        assert_eq!(corner(&calibration), Corner::LeftTop);
        // The BNN's loss terms across a 600 x 200 plot: the total and the data term fall from 0.8 to 0.55 with
        // noise, the KL term lies along the foot.
        let mut occupied = Occupied::for_legend(&["total", "data term", "KL / N"], egui::vec2(600.0, 200.0));
        let noisy = |i: u32| 0.8 - 0.25 * f64::from(i) / 340.0 + 0.03 * f64::from(i % 7) / 7.0;
        let total: Vec<[f64; 2]> = (0..340).map(|i| [f64::from(i), noisy(i)]).collect();
        let data: Vec<[f64; 2]> = (0..340).map(|i| [f64::from(i), noisy(i) - 0.01]).collect();
        let kl: Vec<[f64; 2]> = (0..340).map(|i| [f64::from(i), 0.012]).collect();
        occupied.line(&total).line(&data).line(&kl);
        let placement = occupied.placement();
        assert_eq!(placement.corner, Corner::RightTop);
        // Every corner holds some of them: the view reaches past the last epoch, and the legend stands there.
        let Some(Room::Right(x)) = placement.room else { panic!("no room made: {placement:?}") };
        assert!((400.0..460.0).contains(&x), "room to x = {x}");
        // A marked value across the plot counts all along its height: a line along the foot leaves the top right
        // free, until a vertical line stands at its right end.
        let mut occupied = Occupied::default();
        occupied.line(&[[0.0, 0.0], [10.0, 0.0]]).points(&[[0.0, 1.0]]);
        assert_eq!(occupied.placement(), LegendPlacement { corner: Corner::RightTop, room: None });
        occupied.vline(10.0);
        assert!(occupied.placement().room.is_some(), "{:?}", occupied.placement());
        // A corner that is free needs no room.
        assert_eq!(corner_room(&falling), None);
        // Nothing drawn, or a single point: egui's own corner.
        assert_eq!(corner(&|_| {}), Corner::RightTop);
        assert_eq!(
            corner(&|o| {
                o.points(&[[1.0, 2.0]]);
            }),
            Corner::RightTop
        );
    }

    #[test]
    fn each_step_divides_the_next() {
        for axis in [Axis::X, Axis::Y] {
            for exponent in -5..=5 {
                for m in [1.0, 1.5, 2.0, 3.0, 5.0, 7.0] {
                    let value_per_point = m * 10f64.powi(exponent);
                    let [light, labelled, heavy] =
                        steps(value_per_point, (0.0, value_per_point * 300.0), Stepping::own(axis)).unwrap();
                    for (small, big) in [(light, labelled), (labelled, heavy)] {
                        let ratio = big / small;
                        assert!((ratio - ratio.round()).abs() < 1e-9 && ratio >= 2.0, "{small} into {big}");
                    }
                    assert!(light / value_per_point < axis.hidden_points(), "light lines would be labelled");
                    let mantissa = labelled / 10f64.powf(labelled.log10().floor());
                    assert!([1.0, 2.0, 5.0].iter().any(|&n| (mantissa - n).abs() < 1e-9), "labelled step {labelled}");
                }
            }
        }
        assert_eq!(steps(0.0, (0.0, 1.0), Stepping::own(Axis::Y)), None);
        assert_eq!(steps(f64::NAN, (0.0, 1.0), Stepping::own(Axis::Y)), None);
    }

    #[test]
    fn an_x_label_that_the_plots_right_edge_would_cut_is_left_out() {
        // 45 on a step of 5, at a tenth of an epoch per point: "45" is 15 points wide (as estimated).
        let label = |end: f64| x_tick_label(GridMark { value: 45.0, step_size: 5.0 }, 5.0, end, 0.1);
        assert_eq!(label(50.0), "45", "50 points of room to its right");
        assert_eq!(label(45.8), "45", "8 points: its right half fits");
        assert_eq!(label(45.5), "", "5 points: cut at the edge");
        assert_eq!(label(45.0), "", "at the edge");
        // Before the grid spacer has run, the scale is not known: labelled as before.
        assert_eq!(x_tick_label(GridMark { value: 45.0, step_size: 5.0 }, 5.0, 45.0, f64::NAN), "45");
    }

    #[test]
    fn tick_labels_carry_the_decimals_their_step_needs() {
        let label = |value, step_size| tick_label(GridMark { value, step_size }, f64::NAN);
        assert_eq!(label(0.5, 0.5), "0.5");
        // the heavy line at 1 is labelled with the decimals of the axis's step of 0.5
        assert_eq!(tick_label(GridMark { value: 1.0, step_size: 1.0 }, 0.5), "1.0");
        assert_eq!(tick_label(GridMark { value: 10.0, step_size: 10.0 }, 2.0), "10");
        assert_eq!(label(0.300_000_000_000_000_04, 0.1), "0.3");
        assert_eq!(label(2.0, 2.0), "2");
        assert_eq!(label(1500.0, 500.0), "1500");
        assert_eq!(label(0.25, 0.25), "0.25");
        assert_eq!(label(-0.000_000_000_1, 0.2), "0.0");
        assert_eq!(label(-0.4, 0.2), "-0.4");
        assert_eq!(label(3e-5, 1e-5), "0.00003");
        assert_eq!(label(4e-7, 2e-7), "0.0000004");
        assert_eq!(label(2.5e-6, 2.5e-6), "0.0000025");
    }

    #[test]
    fn a_degenerate_axis_has_no_marks() {
        let step = Cell::new(f64::NAN);
        assert!(
            grid_marks(&GridInput { bounds: (0.0, 1.0), base_step_size: 0.0 }, Stepping::own(Axis::Y), &step)
                .is_empty()
        );
        assert!(step.get().is_nan());
        assert!(
            grid_marks(&GridInput { bounds: (1.0, 0.0), base_step_size: 0.1 }, Stepping::own(Axis::Y), &step)
                .is_empty()
        );
        assert!(
            grid_marks(&GridInput { bounds: (0.0, 1e300), base_step_size: 1e-300 }, Stepping::own(Axis::X), &step)
                .is_empty()
        );
    }
}
