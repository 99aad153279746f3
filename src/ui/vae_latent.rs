//! The VAE lab's latent-space view: the encoder's means of every input coloured by label (a strip per class for a
//! one-dimensional latent), q(z | x) of the input nearest the cursor, the image decoded under the cursor, the path
//! decoded between two picked inputs, and the decoded manifold over the same window.

use egui::{Color32, TextureOptions};
use egui_plot::{Line, MarkerShape, PlotBounds, PlotImage, PlotPoint, PlotPoints, Points};

use crate::data::prepare::OutputKind;
use crate::models::stats::quantile_sorted;
use crate::train::vae_view::Latents;
use crate::ui::data_view::ramp;
use crate::ui::export::{ExportKind, export_button};
use crate::ui::highlight::{Highlight, accent, accent_line, accent_marker, accent_text, dim, label_figure};
use crate::ui::image_export::{capture_if_asked, record_button, save_image_button, saveable};
use crate::ui::lab_page::waiting;
use crate::ui::plot_axes;
use crate::ui::vae_images::tiles;
use crate::ui::vae_state::{MAX_SCATTER, VaeUiState, decoded_at};

const PALETTE: [Color32; 10] = [
    Color32::from_rgb(31, 119, 180),
    Color32::from_rgb(255, 127, 14),
    Color32::from_rgb(44, 160, 44),
    Color32::from_rgb(214, 39, 40),
    Color32::from_rgb(148, 103, 189),
    Color32::from_rgb(140, 86, 75),
    Color32::from_rgb(227, 119, 194),
    Color32::from_rgb(127, 127, 127),
    Color32::from_rgb(188, 189, 34),
    Color32::from_rgb(23, 190, 207),
];

pub(crate) fn latent_ui(vae: &mut VaeUiState, ui: &mut egui::Ui) {
    let latent = vae.view.as_ref().map_or(2, |v| v.params.latent);
    if latent > 2 {
        ui.horizontal(|ui| {
            ui.label("Dimensions on show:");
            // Named from z1, as the axes and the KL per dimension name them; held from 0.
            for (axis, dim) in [("x axis", &mut vae.dims.0), ("y axis", &mut vae.dims.1)] {
                let id = ui.label(axis).id;
                let mut named = *dim + 1;
                let r = ui.add(egui::DragValue::new(&mut named).range(1..=latent).prefix("z")).labelled_by(id);
                if r.changed() {
                    *dim = named - 1;
                }
            }
            ui.label("(the others are 0 when decoding)");
        });
        if vae.dims.0 == vae.dims.1 {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!(
                    "z{0} against itself: every input lies on the diagonal, and the manifold varies z{0} alone. \
                     Put another dimension on one axis.",
                    vae.dims.0 + 1
                ),
            );
        }
    }
    let Some(latents) = vae.latents.clone() else {
        waiting(ui, "Encoding the data…");
        return;
    };
    // Side by side where both fit; narrower (beside the Explain panel in a 1280-point window), one under the other,
    // where the page scrolls.
    let stacked = ui.available_width() < 2.0 * MIN_FIGURE_WIDTH + 12.0;
    let side = if stacked { ui.available_width() } else { 0.5 * (ui.available_width() - 12.0) };
    let height = side.min(ui.available_height() - 40.0).max(200.0);
    let layout =
        if stacked { egui::Layout::top_down(egui::Align::Min) } else { egui::Layout::left_to_right(egui::Align::Min) };
    ui.with_layout(layout, |ui| {
        ui.vertical(|ui| {
            ui.set_width(side);
            // One line each above the two figures, so that they start level; the longer notes go under them.
            let title =
                if latent == 1 { "Encoder means of every input: z1 by class" } else { "Encoder means of every input" };
            ui.add(egui::Label::new(egui::RichText::new(title).strong()).truncate());
            scatter_ui(vae, &latents, height, ui);
            // Wrapped: beside the Explain panel the column can be narrower than the three buttons.
            ui.horizontal_wrapped(|ui| {
                if export_button(ui) {
                    vae.export = vae.export_request(ExportKind::Latents);
                }
                save_image_button(ui, "vae-latent");
                record_button(ui, "vae-latent", vae.recorder.busy());
                plot_axes::legend_toggle(ui, "vae-latent");
                // The view thread's light pass while a run trains (`VaeViewRequest::live`).
                let n_in = vae.view.as_ref().map_or(1, |v| v.params.n_in()).max(1);
                let (shown, all) = (latents.mu.len() / latent.max(1), vae.inputs.len() / n_in);
                if shown < all {
                    ui.label(
                        egui::RichText::new(format!(
                            "While training: the first {} of {}; all when paused.",
                            crate::data::table::grouped(shown),
                            crate::data::table::grouped(all)
                        ))
                        .weak(),
                    );
                }
            });
            // The path between two picked inputs, under the plane's own buttons.
            path_ui(vae, ui);
        });
        ui.vertical(|ui| {
            ui.set_width(side);
            let device = if vae.device.is_empty() { String::new() } else { format!(" ({})", vae.device) };
            let cells = vae.cells_shown;
            let heading = if vae.image_side.is_none() {
                format!("Decoded at the cursor: the features{device}")
            } else if latent == 1 {
                format!("Decoded along z1, {cells} latent points{device}")
            } else {
                format!("Decoded manifold, {cells} x {cells} latent points{device}")
            };
            ui.add(egui::Label::new(egui::RichText::new(heading).strong()).truncate());
            manifold_ui(vae, height, ui);
        });
    });
}

/// The share of the inputs at each end of an axis that the latent plane's fitted view may leave out.
const BULK_TAIL: f64 = 0.005;

/// The window of the latent plane that shows the bulk of the inputs' means `points`, where a few lie far from the
/// rest (a wine unlike the others, encoded at z = 12, would otherwise squeeze the bulk into the middle of the plane):
/// on each axis their 0.5 % to 99.5 % quantiles widened by a tenth of that span on both sides, and at least the
/// prior's ±3 sd. `None` where no input lies more than half that span beyond it: the plot's own fit to every input
/// then shows the bulk as well (the digits).
pub(crate) fn bulk_view(points: &[[f64; 2]]) -> Option<[f64; 4]> {
    if points.len() < 2 {
        return None;
    }
    let mut view = [0.0; 4];
    let mut far = false;
    for axis in 0..2 {
        #[allow(clippy::cast_possible_truncation)] // a latent mean, an f32 to begin with
        let mut values: Vec<f32> = points.iter().map(|p| p[axis] as f32).filter(|v| v.is_finite()).collect();
        values.sort_by(f32::total_cmp);
        let (Some(&least), Some(&most)) = (values.first(), values.last()) else { return None };
        let (lo, hi) = (quantile_sorted(&values, BULK_TAIL), quantile_sorted(&values, 1.0 - BULK_TAIL));
        let span = (hi - lo).max(1e-6);
        let (lo, hi) = ((lo - 0.1 * span).min(-3.0), (hi + 0.1 * span).max(3.0));
        far |= f64::from(least) < lo - 0.5 * span || f64::from(most) > hi + 0.5 * span;
        view[2 * axis] = lo;
        view[2 * axis + 1] = hi;
    }
    far.then_some(view)
}

/// The latent plane and the manifold go one under the other where either would be narrower than this, in points.
const MIN_FIGURE_WIDTH: f32 = 300.0;

/// Height of an input in the one-dimensional latent's strip: its class's row (0 without labels), spread over
/// ±0.35 by its index (a fixed low-discrepancy spread, so the points do not hide each other and stay put).
fn strip_height(labels: &[u32], i: usize) -> f64 {
    let row = labels.get(i).map_or(0.0, |&k| f64::from(k));
    row + ((i as f64 * 0.618_033_988_75).fract() - 0.5) * 0.7
}

fn scatter_ui(vae: &mut VaeUiState, latents: &Latents, height: f32, ui: &mut egui::Ui) {
    let d = vae.view.as_ref().map_or(2, |v| v.params.latent).max(1);
    // One latent dimension: z1 across, the classes as rows (a strip per class), rather than z1 against itself.
    let one_d = d == 1;
    let (a, b) = if one_d { (0, 0) } else { vae.dims };
    let n = latents.mu.len() / d;
    let stride = n.div_ceil(MAX_SCATTER).max(1);
    let labels = vae.labels.clone();
    let point = |i: usize| -> [f64; 2] {
        let row = &latents.mu[i * d..(i + 1) * d];
        let x = f64::from(row[a.min(d - 1)]);
        if one_d { [x, strip_height(&labels, i)] } else { [x, f64::from(row.get(b).copied().unwrap_or(0.0))] }
    };
    // One entry per digit (or class) on show.
    let mut occupied = plot_axes::Occupied::for_legend(&["0"; 10], egui::vec2(ui.available_width(), height));
    let all: Vec<[f64; 2]> = (0..n).step_by(stride).map(point).collect();
    occupied.points(&all);
    let plane = if one_d { plot_axes::plot("vae-latent-strip") } else { plot_axes::plane("vae-latent") };
    let recording = vae.recorder.busy();
    // A recording's frames, and a replay's models, keep the legend where it was when it started (the model on show
    // then), and the window on show then: the points move, the axes stay.
    let held = recording || vae.scrubber.replaying();
    let mut corner = if held { vae.recording_legend } else { None };
    let mut plot = plot_axes::with_legend_kept(plane, ui.ctx(), "vae-latent", &occupied, &mut corner);
    vae.recording_legend = corner;
    if recording {
        // The frames show the figure, not where the mouse happens to be.
        plot = plot.show_x(false).show_y(false).show_crosshair(false);
    }
    let fixed = if held { *vae.recording_bounds.get_or_insert(vae.bounds) } else { vae.bounds };
    if !held {
        vae.recording_bounds = None;
    }
    let fixed = held.then_some(fixed);
    // Until the user drags or zooms the plane, it shows the bulk of the inputs, not every outlier (worked out only
    // while it does: the quantiles sort every mean).
    let fit = vae.fit_latents && fixed.is_none() && !one_d;
    let bulk = if fit { bulk_view(&all) } else { None };
    // The Explain panel's term: an input's draw or the prior, over the inputs' means dimmed.
    let highlight = vae.highlight.clone();
    let accent = accent(ui.visuals());
    let ink = plot_axes::ink(ui.visuals(), false);
    let faded =
        |c: Color32| if matches!(highlight, Highlight::VaeDraw { .. } | Highlight::VaePrior) { dim(c) } else { c };
    let response = saveable(
        ui,
        "vae-latent",
        || "vae-latent.png".to_owned(),
        |ui| {
            let y_label = if one_d {
                match vae.prepared.as_ref().and_then(|p| p.output.as_ref()) {
                    _ if labels.is_empty() => "(spread to show the density)".to_owned(),
                    // The rows are a target's values (the wine's quality), not classes.
                    Some((name, OutputKind::Regression)) => name.clone(),
                    _ => "class".to_owned(),
                }
            } else {
                format!("z{}", b + 1)
            };
            let y_label = plot_axes::fitted_y_title(ui, &y_label, height);
            plot.height(height).x_axis_label(format!("z{}", a + 1)).y_axis_label(y_label).show(ui, |plot| {
                if let Some([x0, x1, y0, y1]) = fixed {
                    plot.set_plot_bounds(egui_plot::PlotBounds::from_min_max(
                        [f64::from(x0), f64::from(y0)],
                        [f64::from(x1), f64::from(y1)],
                    ));
                } else if fit {
                    match bulk {
                        Some([x0, x1, y0, y1]) => plot.set_plot_bounds(PlotBounds::from_min_max([x0, y0], [x1, y1])),
                        None => plot.set_auto_bounds(true),
                    }
                }
                // While a run trains only the first inputs are encoded (the view thread's light pass); their
                // labels are the first of the labels, so the digits keep their colours as the model learns.
                if !vae.labels.is_empty() && vae.labels.len() >= n {
                    let mut groups: Vec<Vec<[f64; 2]>> = vec![Vec::new(); 10];
                    let mut other = Vec::new();
                    for i in (0..n).step_by(stride) {
                        match groups.get_mut(vae.labels[i] as usize) {
                            Some(g) => g.push(point(i)),
                            None => other.push(point(i)),
                        }
                    }
                    let mut shown: Vec<(String, Color32, Vec<[f64; 2]>)> = groups
                        .into_iter()
                        .enumerate()
                        .filter(|(_, g)| !g.is_empty())
                        .map(|(k, g)| {
                            let name = vae.label_names.get(k).cloned().unwrap_or_else(|| format!("{k}"));
                            (name, vae.label_ramp.as_ref().map_or(PALETTE[k % 10], |t| ramp(t[k])), g)
                        })
                        .collect();
                    if !other.is_empty() {
                        shown.push(("other labels".to_owned(), Color32::GRAY, other));
                    }
                    for (name, colour, g) in plot_axes::in_legend_order(shown, corner) {
                        plot.points(
                            Points::new(name, PlotPoints::from(g))
                                .radius(1.5)
                                .color(faded(colour))
                                .shape(MarkerShape::Circle),
                        );
                    }
                } else {
                    let pts: Vec<[f64; 2]> = (0..n).step_by(stride).map(point).collect();
                    plot.points(Points::new("inputs", PlotPoints::from(pts)).radius(1.5).color(faded(PALETTE[0])));
                }
                if !vae.picked.is_empty() {
                    let pts: Vec<[f64; 2]> = vae.picked.iter().filter(|&&i| i < n).map(|&i| point(i)).collect();
                    if let [a, b] = pts.as_slice() {
                        plot.line(
                            Line::new("interpolation path", PlotPoints::from(vec![*a, *b]))
                                .color(ink)
                                .allow_band(false),
                        );
                    }
                    plot.points(
                        Points::new("picked", PlotPoints::from(pts)).radius(6.0).shape(MarkerShape::Diamond).color(ink),
                    );
                }
                // q(z|x) of the input nearest the cursor: an axis-aligned ellipse at ±2 sd. Only while the
                // cursor is over the plane: `pointer_coordinate` maps it wherever it is, and off the plot the
                // nearest input is some outlier at the plane's edge.
                let pointer = plot.pointer_coordinate().filter(|_| plot.response().hovered() && !recording);
                let mut nearest_input = None;
                if let Some(p) = pointer {
                    let nearest = (0..n).min_by(|&i, &j| {
                        let (pi, pj) = (point(i), point(j));
                        let di = (pi[0] - p.x).powi(2) + (pi[1] - p.y).powi(2);
                        let dj = (pj[0] - p.x).powi(2) + (pj[1] - p.y).powi(2);
                        di.total_cmp(&dj)
                    });
                    nearest_input = nearest;
                    if let Some(i) = nearest {
                        let c = point(i);
                        let lv = &latents.logvar[i * d..(i + 1) * d];
                        let (sa, sb) = (
                            (0.5 * f64::from(lv[a.min(d - 1)])).exp(),
                            (0.5 * f64::from(lv.get(b).copied().unwrap_or(0.0))).exp(),
                        );
                        // One dimension: q(z1|x) as a bar along z1 at the input's height.
                        let ring: Vec<[f64; 2]> = if one_d {
                            vec![[c[0] - 2.0 * sa, c[1]], [c[0] + 2.0 * sa, c[1]]]
                        } else {
                            (0..=64)
                                .map(|k| {
                                    let t = f64::from(k) / 64.0 * std::f64::consts::TAU;
                                    [c[0] + 2.0 * sa * t.cos(), c[1] + 2.0 * sb * t.sin()]
                                })
                                .collect()
                        };
                        plot.line(Line::new("q(z|x), ±2 sd", PlotPoints::from(ring)).color(ink).width(1.5));
                    }
                }
                let moments = |i: usize| {
                    let mu = latents.mu.get(i * d..(i + 1) * d)?;
                    let logvar = latents.logvar.get(i * d..(i + 1) * d)?;
                    Some((mu, logvar))
                };
                match &highlight {
                    Highlight::VaeDraw { input, eps } if *input < n => {
                        if let Some((mu, logvar)) = moments(*input) {
                            draw_ui(plot, (point(*input), one_d), (mu, logvar, eps), (a, b), accent);
                        }
                    }
                    Highlight::VaePrior => prior_ui(plot, one_d, accent),
                    _ => {}
                }
                (pointer, plot.plot_bounds(), nearest_input)
            })
        },
    );
    match &highlight {
        Highlight::VaeDraw { input, .. } if *input < n => label_figure(
            &response.response,
            &format!("input {}'s mu, its 1-sd ellipse of sigma and the draw z = mu + sigma * eps", input + 1),
        ),
        Highlight::VaePrior => label_figure(&response.response, "the prior N(0, I): its 1- and 2-sd circles"),
        _ => {}
    }
    let (pointer, bounds, nearest_input) = response.inner;
    vae.input_under_cursor = nearest_input;
    // A drag or a zoom puts the view in the user's hands, and a double-click shows every input (the plot's own fit).
    let plane = &response.response;
    if plane.dragged()
        || plane.double_clicked()
        || (plane.hovered() && ui.input(|i| (i.zoom_delta() - 1.0).abs() > 1e-6))
    {
        vae.fit_latents = false;
    }
    if let Some(view) = bulk {
        let outside = all.iter().filter(|p| p[0] < view[0] || p[0] > view[1] || p[1] < view[2] || p[1] > view[3]);
        let outside = outside.count() * stride;
        ui.label(
            egui::RichText::new(format!(
                "About {outside} of the inputs lie outside this view, which shows the bulk of them: drag the plane or \
                 zoom out (Ctrl + wheel) to see them, or double-click it to show every input."
            ))
            .weak(),
        );
    }
    if response.response.clicked()
        && let Some(i) = nearest_input
    {
        if vae.picked.len() >= 2 {
            vae.picked.clear();
            vae.path_images = None;
        }
        vae.picked.push(i);
        vae.reveal_path = <[usize; 2]>::try_from(vae.picked.as_slice()).ok();
    }
    if response.response.hovered()
        && let Some(p) = pointer
    {
        // One dimension: only z1 is decoded, whatever the height in the strip.
        vae.hover = Some([p.x as f32, if one_d { 0.0 } else { p.y as f32 }]);
    }
    // The manifold follows the scatter's window (rounded, so tiny drifts do not ask for a new grid).
    let round = |v: f64| ((v * 100.0).round() / 100.0) as f32;
    let window = [round(bounds.min()[0]), round(bounds.max()[0]), round(bounds.min()[1]), round(bounds.max()[1])];
    if window.iter().all(|v| v.is_finite()) && window[1] > window[0] && window[3] > window[2] {
        vae.bounds = window;
    }
    // The point decoded is named beside its image (below the manifold); here, what else the plane does.
    let hint = match (vae.hover_image.is_some(), one_d) {
        (false, true) => "Hover the strip to decode any z1; the bar is q(z1|x) ±2 sd of the input nearest the cursor.",
        (false, false) => {
            "Hover the plane to decode any point; the ellipse is q(z|x) ±2 sd of the input nearest the cursor."
        }
        (true, true) => {
            "Click two inputs to decode the path between them; the bar is q(z1|x) ±2 sd of the input nearest the cursor."
        }
        (true, false) => {
            "Click two inputs to decode the path between them; the ellipse is q(z|x) ±2 sd of the input nearest the cursor."
        }
    };
    ui.label(hint);
}

/// The Explain panel's reparametrised draw of one input on the latent plot: its mean `centre` (where the scatter
/// draws it; `one_d`: on the strip), sigma as a 1-sd ellipse (a bar on the strip) and z = mu + sigma * eps with an
/// arrow from mu, in the dimensions `(a, b)` on show, in the accent colour.
fn draw_ui(
    plot: &mut egui_plot::PlotUi<'_>,
    (centre, one_d): ([f64; 2], bool),
    (mu, logvar, eps): (&[f32], &[f32], &[f64]),
    (a, b): (usize, usize),
    accent: Color32,
) {
    let sd = |j: usize| logvar.get(j).map_or(1.0, |&l| (0.5 * f64::from(l)).exp());
    let mean = |j: usize| mu.get(j).map_or(0.0, |&m| f64::from(m));
    let z = |j: usize| mean(j) + sd(j) * eps.get(j).copied().unwrap_or(0.0);
    let (sa, sb) = (sd(a), sd(b));
    let drawn = if one_d { [z(a), centre[1]] } else { [z(a), z(b)] };
    let ring: Vec<[f64; 2]> = if one_d {
        vec![[centre[0] - sa, centre[1]], [centre[0] + sa, centre[1]]]
    } else {
        (0..=64)
            .map(|k| {
                let t = f64::from(k) / 64.0 * std::f64::consts::TAU;
                [centre[0] + sa * t.cos(), centre[1] + sb * t.sin()]
            })
            .collect()
    };
    accent_line(plot, "draw-sigma", ring, 2.5, accent);
    accent_line(plot, "draw-arrow", vec![centre, drawn], 2.0, accent);
    plot.arrows(egui_plot::Arrows::new("", vec![centre], vec![drawn]).id("draw-tip").color(accent).tip_length(12.0));
    accent_marker(plot, "draw-mu", centre, (MarkerShape::Circle, 6.0), accent);
    accent_marker(plot, "draw-z", drawn, (MarkerShape::Cross, 7.0), accent);
    // mu above and to the left, z below and to the right: apart however close the draw falls.
    accent_text(plot, "draw-mu", (centre, egui::Align2::RIGHT_BOTTOM), "mu ", accent);
    accent_text(plot, "draw-z", (drawn, egui::Align2::LEFT_TOP), " z", accent);
}

/// The KL term's prior N(0, I) on the latent plot: its 1- and 2-sd circles (on the strip, the lines at ±1 and ±2),
/// in the accent colour.
fn prior_ui(plot: &mut egui_plot::PlotUi<'_>, one_d: bool, accent: Color32) {
    for r in [1.0_f64, 2.0] {
        if one_d {
            for x in [-r, r] {
                plot.vline(egui_plot::VLine::new("", x).id(("prior-sd", x.to_bits())).color(accent).width(2.0));
            }
        } else {
            let circle: Vec<[f64; 2]> = (0..=96)
                .map(|k| {
                    let t = f64::from(k) / 96.0 * std::f64::consts::TAU;
                    [r * t.cos(), r * t.sin()]
                })
                .collect();
            accent_line(plot, ("prior-circle", r.to_bits()), circle, 2.5, accent);
        }
        let at =
            if one_d { [r, 0.0] } else { [r * std::f64::consts::FRAC_1_SQRT_2, r * std::f64::consts::FRAC_1_SQRT_2] };
        accent_text(plot, ("prior", r.to_bits()), (at, egui::Align2::LEFT_BOTTOM), &format!(" {r} sd"), accent);
    }
    accent_marker(plot, "prior-centre", [0.0, 0.0], (MarkerShape::Plus, 6.0), accent);
}

/// The decoded path between the two picked inputs' latent means.
fn path_ui(vae: &mut VaeUiState, ui: &mut egui::Ui) {
    if vae.image_side.is_none() {
        crate::ui::vae_table::path_ui(vae, ui);
        return;
    }
    let (Some(side), [a, b]) = (vae.image_side, vae.picked.as_slice()) else { return };
    ui.strong(format!("Interpolation from {} to {}", vae.input_name(*a), vae.input_name(*b)));
    let file_name = format!("vae-interpolation-{}-{}.png", a + 1, b + 1);
    if let Some(images) = vae.path_images.clone() {
        let t = vae.texture(ui.ctx(), "vae-path", vae.path_generation, || {
            tiles(&images, side, crate::train::vae_view::PATH_STEPS)
        });
        let w = ui.available_width().min(600.0);
        let shown = ui.image((t.id(), egui::vec2(w, w / crate::train::vae_view::PATH_STEPS as f32)));
        capture_if_asked(ui, "vae-path", shown.rect, || file_name);
        let buttons = ui.horizontal(|ui| {
            save_image_button(ui, "vae-path");
            record_button(ui, "vae-path", vae.recorder.busy());
        });
        vae.reveal_path_in(ui, shown.rect.union(buttons.response.rect));
    } else {
        ui.spinner();
    }
}

fn manifold_ui(vae: &mut VaeUiState, height: f32, ui: &mut egui::Ui) {
    let Some(side) = vae.image_side else {
        crate::ui::vae_table::decoded_ui(vae, height, ui);
        return;
    };
    if vae.view.as_ref().is_some_and(|v| v.params.latent == 1) {
        manifold_row_ui(vae, side, ui);
        return;
    }
    if let Some(m) = vae.manifold.clone() {
        let key = (m.step, m.bounds.map(f32::to_bits), m.cells);
        let stale = vae.manifold_texture.as_ref().is_none_or(|(s, b, c, _)| (*s, *b, *c) != key);
        if stale {
            let texture =
                ui.ctx().load_texture("vae-manifold", tiles(&m.images, side, m.cells), TextureOptions::LINEAR);
            vae.manifold_texture = Some((key.0, key.1, key.2, texture));
        }
    }
    if let Some((_, b, _, texture)) = &vae.manifold_texture {
        let b = b.map(f32::from_bits);
        let centre = PlotPoint::new(f64::from(b[0] + b[1]) / 2.0, f64::from(b[2] + b[3]) / 2.0);
        let size = egui::vec2(b[1] - b[0], b[3] - b[2]);
        saveable(
            ui,
            "vae-manifold",
            || "vae-manifold.png".to_owned(),
            |ui| {
                plot_axes::plane("vae-manifold").height(height).allow_drag(false).allow_zoom(false).show(ui, |plot| {
                    plot.set_plot_bounds(PlotBounds::from_min_max(
                        [f64::from(b[0]), f64::from(b[2])],
                        [f64::from(b[1]), f64::from(b[3])],
                    ));
                    plot.image(PlotImage::new("manifold", texture.id(), centre, size));
                })
            },
        );
        ui.horizontal(|ui| {
            save_image_button(ui, "vae-manifold");
            record_button(ui, "vae-manifold", vae.recorder.busy());
        });
    } else {
        ui.spinner();
    }
    hover_image_ui(vae, side, ui);
}

/// The image decoded at the point last hovered, once the view thread has it, named by that point (it stays once the
/// cursor has left the plane): z1 alone for a one-dimensional latent, the two dimensions on show for a larger one.
fn hover_image_ui(vae: &mut VaeUiState, side: usize, ui: &mut egui::Ui) {
    if let Some(hover) = &vae.hover_image {
        let texture = vae.hover_texture.get_or_insert_with(|| {
            ui.ctx().load_texture("vae-hover", tiles(&hover.image, side, 1), TextureOptions::NEAREST)
        });
        ui.horizontal(|ui| {
            let latent = vae.view.as_ref().map_or(2, |v| v.params.latent);
            ui.label(decoded_at(hover, latent));
            ui.image((texture.id(), egui::vec2(84.0, 84.0)));
        });
    }
}

/// The one-dimensional latent's manifold: one row of images decoded along z1 over the strip's window, left to right,
/// and the image under the cursor.
fn manifold_row_ui(vae: &mut VaeUiState, side: usize, ui: &mut egui::Ui) {
    /// The least width of one decoded image, in points: a narrower column wraps the row rather than shrink them.
    const MIN_IMAGE_POINTS: f32 = 56.0;
    let width = ui.available_width();
    if let Some(m) = vae.manifold.clone() {
        let per_row = ((width / MIN_IMAGE_POINTS).floor() as usize).clamp(1, m.cells.max(1));
        let key = (m.step, m.bounds.map(f32::to_bits), m.cells);
        let texture_width = per_row * (side + 1) + 1;
        let stale = vae
            .manifold_texture
            .as_ref()
            .is_none_or(|(s, b, c, texture)| (*s, *b, *c) != key || texture.size()[0] != texture_width);
        // The grid's rows are alike (z1 is the only coordinate): its first row, left to right, wrapped to the width.
        if stale && let Some(row) = m.images.get(..m.cells * side * side) {
            let texture = ui.ctx().load_texture("vae-manifold", tiles(row, side, per_row), TextureOptions::LINEAR);
            vae.manifold_texture = Some((key.0, key.1, key.2, texture));
        }
    }
    if let Some((_, b, cells, texture)) = &vae.manifold_texture {
        let b = b.map(f32::from_bits);
        let [w, h] = texture.size();
        let size = egui::vec2(width, width * h as f32 / w.max(1) as f32);
        let wrapped = h > side + 2;
        let shown = ui.image((texture.id(), size));
        capture_if_asked(ui, "vae-manifold", shown.rect, || "vae-manifold.png".to_owned());
        let order = if wrapped { "read left to right and down" } else { "left to right" };
        ui.label(format!("{cells} points along z1 from {:.2} to {:.2} (the strip's window), {order}.", b[0], b[1]));
        ui.horizontal(|ui| {
            save_image_button(ui, "vae-manifold");
            record_button(ui, "vae-manifold", vae.recorder.busy());
        });
    } else {
        ui.spinner();
    }
    hover_image_ui(vae, side, ui);
}

#[cfg(test)]
mod tests {
    use super::bulk_view;

    /// A thousand means spread evenly over a square of side `2 * half` (a fixed low-discrepancy spread).
    fn square(half: f64) -> Vec<[f64; 2]> {
        (0..1000)
            .map(|i| {
                let i = f64::from(i);
                [((i * 0.618_034).fract() * 2.0 - 1.0) * half, ((i * 0.754_878).fract() * 2.0 - 1.0) * half]
            })
            .collect()
    }

    #[test]
    fn the_fitted_view_leaves_out_a_few_far_inputs_and_nothing_else() {
        // The bulk within ±2, three inputs at z1 = 12: the view is the prior's ±3 box, which holds the bulk.
        let mut points = square(2.0);
        points.extend([[12.0, 0.5], [11.0, -1.0], [-0.5, 12.5]]);
        let view = bulk_view(&points).expect("far inputs: a fitted view");
        assert!(view.iter().zip([-3.0, 3.0, -3.0, 3.0]).all(|(v, w)| (v - w).abs() < 1e-9), "{view:?}");
        // A bulk wider than the prior's box: its quantiles, widened by a tenth of their span.
        let mut points = square(5.0);
        points.push([40.0, 0.0]);
        let view = bulk_view(&points).expect("a far input");
        assert!(view[1] > 5.0 && view[1] < 7.0 && view[0] < -5.0 && view[0] > -7.0, "{view:?}");
        // No input far out (the digits' means over ±5): the plot's own fit to all of them.
        assert_eq!(bulk_view(&square(5.0)), None);
        assert_eq!(bulk_view(&[[0.0, 0.0]]), None);
    }
}
