//! Views of a loaded dataset: a table of every row, a scatter of two columns coloured by the label or
//! target, and a grid of images when the features form square images.

use egui::Color32;
use egui_extras::{Column as TableColumn, TableBuilder};
use egui_plot::{MarkerShape, Points};

use crate::Lab;
use crate::data::prepare::{Role, image_side};
use crate::data::table::{Column, ColumnKind};
use crate::ui::count::{count, ordinal};
use crate::ui::lab_data::LabData;
use crate::ui::plot_axes;

/// Most columns shown side by side in the table; wider tables show the first ones and the last.
const MAX_TABLE_COLUMNS: usize = 14;
/// Most points drawn in the scatter (a sample beyond that, every k-th row).
const MAX_SCATTER_POINTS: usize = 20_000;
/// Images in the thumbnail grid (a square number).
const THUMBNAILS: usize = 100;
/// Integer targets with at most this many values get one colour per value in the scatter.
const TARGET_BANDS_MAX: usize = 12;

/// What the data view shows; reset when the dataset changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DataViewState {
    /// Table instead of plot.
    pub show_table: bool,
    /// Columns of the scatter's axes.
    pub axes: Option<(usize, usize)>,
    /// The scatter's points where the rows have them, not jittered along an axis of few values ([`jitter_step`]).
    pub unjittered: bool,
}

/// An axis of at most this many values (Titanic's class, its sexes) is jittered in the scatter.
const JITTER_MAX_VALUES: usize = 20;

/// How far a point may be moved along such an axis, in steps between its values, either way.
const JITTER: f64 = 0.2;

/// The step between the values of a column of few values (whole numbers or categories, 2 to [`JITTER_MAX_VALUES`]
/// of them): on such an axis hundreds of rows fall on a few points of the scatter and hide each other (300
/// passengers on Titanic's 3 classes by 2 sexes showed as 6 dots, one colour each). `None` for other columns.
fn jitter_step(c: &Column) -> Option<f64> {
    let few =
        matches!(c.kind, ColumnKind::Integer | ColumnKind::Text) && (2..=JITTER_MAX_VALUES).contains(&c.n_distinct);
    let step = f64::from(c.max - c.min) / (c.n_distinct - 1).max(1) as f64;
    (few && step > 0.0).then_some(step)
}

/// A number in [-1, 1] fixed by row `i` and `axis`, so that a jittered point stays where it is from frame to frame.
fn jitter(i: usize, axis: u64) -> f64 {
    // SplitMix64's finaliser: every bit of the row and axis moves every bit of the result.
    let mut z = (i as u64).wrapping_mul(2).wrapping_add(axis).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// A qualitative palette for class labels (Tableau 10).
pub(crate) const PALETTE: [Color32; 10] = [
    Color32::from_rgb(78, 121, 167),
    Color32::from_rgb(242, 142, 43),
    Color32::from_rgb(225, 87, 89),
    Color32::from_rgb(118, 183, 178),
    Color32::from_rgb(89, 161, 79),
    Color32::from_rgb(237, 201, 72),
    Color32::from_rgb(176, 122, 161),
    Color32::from_rgb(255, 157, 167),
    Color32::from_rgb(156, 117, 95),
    Color32::from_rgb(186, 176, 172),
];

/// Draws the dataset of a lab.
pub(crate) fn data_view_ui(lab: Lab, data: &mut LabData, view: &mut DataViewState, ui: &mut egui::Ui) {
    let features = data.spec.feature_columns();
    let side = image_side(features.len());
    ui.horizontal(|ui| {
        ui.strong(&data.table.name);
        ui.separator();
        let plot_name = if side.is_some() { "Images" } else { "Scatter" };
        ui.selectable_value(&mut view.show_table, false, plot_name);
        ui.selectable_value(&mut view.show_table, true, "Table");
    });
    if view.show_table {
        table_ui(lab, data, ui);
    } else if let Some(side) = side {
        images_ui(data, &features, side, ui);
    } else {
        scatter_ui(lab, data, &features, view, ui);
    }
}

fn table_ui(lab: Lab, data: &LabData, ui: &mut egui::Ui) {
    let table = &data.table;
    let n_cols = table.n_cols();
    let shown: Vec<usize> = if n_cols <= MAX_TABLE_COLUMNS {
        (0..n_cols).collect()
    } else {
        (0..MAX_TABLE_COLUMNS - 1).chain(std::iter::once(n_cols - 1)).collect()
    };
    if shown.len() < n_cols {
        ui.label(format!("Showing {} of {} (the first ones and the last).", shown.len(), count(n_cols, "column")));
    }
    egui::ScrollArea::horizontal().id_salt(("table-h", lab)).show(ui, |ui| {
        let mut builder = TableBuilder::new(ui)
            .id_salt(("table", lab))
            .striped(true)
            .resizable(true)
            .column(TableColumn::auto().at_least(40.0));
        for _ in &shown {
            builder = builder.column(TableColumn::auto().at_least(60.0));
        }
        builder
            .header(40.0, |mut header| {
                header.col(|ui| {
                    ui.strong("row");
                });
                for &j in &shown {
                    header.col(|ui| {
                        ui.vertical(|ui| {
                            ui.strong(&table.columns[j].name);
                            ui.label(egui::RichText::new(data.spec.roles[j].label()).weak());
                        });
                    });
                }
            })
            .body(|body| {
                body.rows(18.0, table.n_rows(), |mut row| {
                    let i = row.index();
                    row.col(|ui| {
                        ui.label((i + 1).to_string());
                    });
                    for &j in &shown {
                        row.col(|ui| {
                            ui.monospace(table.get(i, j).map_or(String::new(), |v| table.columns[j].value_text(v)));
                        });
                    }
                });
            });
    });
}

fn scatter_ui(lab: Lab, data: &LabData, features: &[usize], view: &mut DataViewState, ui: &mut egui::Ui) {
    let table = &data.table;
    let Some(&first) = features.first() else {
        ui.label("No feature column to plot.");
        return;
    };
    // One feature (a 1-D regression): the target on the y axis, the curve the BNN will fit.
    let target = data.spec.roles.iter().position(|r| *r == Role::Target);
    let second = features.get(1).copied().or(target).unwrap_or(first);
    let (mut x, mut y) = view.axes.unwrap_or((first, second));
    ui.horizontal(|ui| {
        for (name, axis) in [("x", &mut x), ("y", &mut y)] {
            crate::ui::lab_page::column_combo(ui, name, ("axis", name, lab), &table.columns[*axis].name, |ui| {
                for (j, c) in table.columns.iter().enumerate() {
                    ui.selectable_value(axis, j, &c.name);
                }
            });
        }
        crate::ui::image_export::save_image_button(ui, "data-scatter");
        plot_axes::legend_toggle(ui, "data-scatter");
        let few: Vec<&str> = [x, y]
            .iter()
            .filter(|&&j| jitter_step(&table.columns[j]).is_some())
            .map(|&j| &*table.columns[j].name)
            .collect();
        if !few.is_empty() {
            let mut jittered = !view.unjittered;
            let names = few.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(" and ");
            let hover = format!(
                "{names} take few values, and the rows on one value would fall on one point and hide each other: each \
                 point is moved by up to {JITTER} of a step between values, the same way every frame. The values \
                 themselves are unchanged."
            );
            ui.checkbox(&mut jittered, "Jitter").on_hover_text(hover);
            view.unjittered = !jittered;
        }
    });
    view.axes = Some((x, y));
    let steps =
        if view.unjittered { [None, None] } else { [jitter_step(&table.columns[x]), jitter_step(&table.columns[y])] };
    let output = data.spec.output_column();
    let stride = table.n_rows().div_ceil(MAX_SCATTER_POINTS).max(1);
    if stride > 1 {
        ui.label(format!("Drawing every {} of {}.", ordinal(stride), count(table.n_rows(), "row")));
    }
    let rows = (0..table.n_rows()).step_by(stride);
    // Group points by colour: one plot item per class (labels) or per value band (numeric target).
    let mut groups: Vec<(String, Color32, Vec<[f64; 2]>)> = Vec::new();
    let mut push = |name: String, colour: Color32, p: [f64; 2]| match groups.iter_mut().find(|g| g.0 == name) {
        Some(g) => g.2.push(p),
        None => groups.push((name, colour, vec![p])),
    };
    for i in rows {
        // A column the roles ignore may hold missing cells (NaN): such a row has no point.
        let (Some(px), Some(py)) = (table.get(i, x).filter(|v| !v.is_nan()), table.get(i, y).filter(|v| !v.is_nan()))
        else {
            continue;
        };
        let moved =
            |v: f32, axis: usize| f64::from(v) + steps[axis].map_or(0.0, |s| JITTER * s * jitter(i, axis as u64));
        let p = [moved(px, 0), moved(py, 1)];
        match output {
            Some((j, Role::Label)) => {
                let v = table.get(i, j).unwrap_or(0.0);
                let colour = PALETTE[(v.max(0.0) as usize) % PALETTE.len()];
                let c = &table.columns[j];
                push(format!("{} {}", c.name, c.value_text(v)), colour, p);
            }
            Some((j, _)) => {
                let c = &table.columns[j];
                let v = table.get(i, j).unwrap_or(c.min);
                let t = if c.max > c.min { (v - c.min) / (c.max - c.min) } else { 0.5 };
                if matches!(c.kind, ColumnKind::Integer | ColumnKind::Text) && c.n_distinct <= TARGET_BANDS_MAX {
                    // Few whole values (a quality score) or texts: one colour per value.
                    push(format!("{} {}", c.name, c.value_text(v)), ramp(t), p);
                } else {
                    // Five equal-width bands of the target's range.
                    let band = ((t * 5.0) as usize).min(4);
                    let width = (c.max - c.min) / 5.0;
                    let lo = c.min + width * band as f32;
                    let name = format!("{} {:.3}..{:.3}", c.name, lo, lo + width);
                    push(name, ramp(band as f32 / 4.0), p);
                }
            }
            None => push("rows".into(), PALETTE[0], p),
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<&str> = groups.iter().map(|(name, _, _)| name.as_str()).collect();
    let mut occupied = plot_axes::Occupied::for_legend(&names, ui.available_size());
    for (_, _, points) in &groups {
        occupied.points(points);
    }
    let plot = if equal_scales(lab, &table.columns[x], &table.columns[y]) {
        plot_axes::plane(("scatter", lab))
    } else {
        plot_axes::plot(("scatter", lab))
    };
    let mut corner = None;
    let plot = plot_axes::with_legend_kept(plot, ui.ctx(), "data-scatter", &occupied, &mut corner)
        .x_axis_label(table.columns[x].name.clone())
        .y_axis_label(plot_axes::fitted_y_title(ui, &table.columns[y].name, ui.available_height()));
    let plot = plot_axes::ticked_by_categories(plot, &table.columns[x].categories, &table.columns[y].categories);
    let file_name = || {
        let (x, y) = (&table.columns[x].name, &table.columns[y].name);
        crate::ui::image_export::file_safe(&format!("{}-{y}-vs-{x}.png", lab.tab_name().to_lowercase()))
    };
    crate::ui::image_export::saveable(ui, "data-scatter", file_name, |ui| {
        plot.show(ui, |plot| {
            for (name, colour, points) in plot_axes::in_legend_order(groups, corner) {
                plot.points(
                    Points::new(name, points).color(colour).radius(2.0).shape(MarkerShape::Circle).filled(true),
                );
            }
        })
    });
}

/// Columns whose ranges differ by more than this factor are not drawn at equal scales.
const EQUAL_SCALES_MAX_RATIO: f32 = 4.0;

/// Whether the scatter of columns `x` and `y` is drawn at equal scales: in the flow lab, whose two columns are a plane
/// (the two moons), where their ranges are within [`EQUAL_SCALES_MAX_RATIO`] of each other. Columns of other units
/// (the wine's fixed and volatile acidity, 11.3 and 1.5 wide) would be a flat line at equal scales, so each axis
/// takes its own.
fn equal_scales(lab: Lab, x: &Column, y: &Column) -> bool {
    let (a, b) = (x.max - x.min, y.max - y.min);
    lab == Lab::Flow && a > 0.0 && b > 0.0 && a.max(b) <= EQUAL_SCALES_MAX_RATIO * a.min(b)
}

/// A blue-to-orange ramp for numeric values in [0, 1].
pub(crate) fn ramp(t: f32) -> Color32 {
    let t = t.clamp(0.0, 1.0);
    let lerp = |a: u8, b: u8| (f32::from(a) + (f32::from(b) - f32::from(a)) * t) as u8;
    Color32::from_rgb(lerp(49, 240), lerp(104, 120), lerp(180, 40))
}

fn images_ui(data: &mut LabData, features: &[usize], side: usize, ui: &mut egui::Ui) {
    let table = data.table.clone();
    let n = table.n_rows().min(THUMBNAILS);
    // Evenly spaced rows, so a file sorted by label (like MNIST 5k) shows every class.
    let rows: Vec<usize> = (0..n).map(|k| k * table.n_rows() / n.max(1)).collect();
    let per_row = (THUMBNAILS as f64).sqrt() as usize;
    let gap = 1;
    let cell = side + gap;
    let texture = data.thumbnails.get_or_insert_with(|| {
        let max = features.iter().map(|&j| table.columns[j].max).fold(0.0f32, f32::max).max(f32::EPSILON);
        let (w, h) = (per_row * cell + gap, n.div_ceil(per_row) * cell + gap);
        let mut pixels = vec![Color32::from_gray(40); w * h];
        for (t, &i) in rows.iter().enumerate() {
            let (ox, oy) = ((t % per_row) * cell + gap, (t / per_row) * cell + gap);
            for (k, &j) in features.iter().enumerate() {
                let v = table.get(i, j).unwrap_or(0.0) / max;
                let (px, py) = (ox + k % side, oy + k / side);
                pixels[py * w + px] = Color32::from_gray((v.clamp(0.0, 1.0) * 255.0) as u8);
            }
        }
        ui.ctx().load_texture("thumbnails", egui::ColorImage::new([w, h], pixels), egui::TextureOptions::NEAREST)
    });
    let label = data.spec.output_column().filter(|(_, r)| *r == Role::Label).map(|(j, _)| j);
    ui.label(format!(
        "{n} of {}, evenly spaced through the file ({side} x {side} pixels).",
        count(table.n_rows(), "image")
    ));
    let available = ui.available_size();
    let scale = (available.x / texture.size_vec2().x).min(available.y / texture.size_vec2().y).clamp(0.5, 6.0);
    let size = texture.size_vec2() * scale;
    let response = ui.add(egui::Image::new(&*texture).fit_to_exact_size(size));
    if let Some(j) = label {
        let painter = ui.painter_at(response.rect);
        let font = egui::TextStyle::Monospace.resolve(ui.style());
        for (t, &i) in rows.iter().enumerate() {
            let (ox, oy) = ((t % per_row) * cell + gap, (t / per_row) * cell + gap);
            let pos = response.rect.min + egui::vec2(ox as f32, oy as f32) * scale + egui::vec2(2.0, 1.0);
            let text = table.get(i, j).map_or(String::new(), |v| table.columns[j].value_text(v));
            painter.text(pos, egui::Align2::LEFT_TOP, text, font.clone(), PALETTE[1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{BuiltinFile, SynthKind, SynthSpec};

    #[test]
    fn the_flows_plane_is_drawn_at_equal_scales_and_columns_of_other_units_are_not() {
        for kind in [SynthKind::Moons, SynthKind::Circles, SynthKind::EightGaussians, SynthKind::Pinwheel] {
            let table = SynthSpec::default_for(kind).generate();
            let (x, y) = (&table.columns[0], &table.columns[1]);
            assert!(equal_scales(Lab::Flow, x, y), "{kind:?}: a plane");
            assert!(!equal_scales(Lab::Bnn, x, y), "{kind:?}: only the flow lab draws a plane");
        }
        let wine = BuiltinFile::WineRed.load().expect("the built-in wine");
        let column = |name: &str| &wine.columns[wine.column_index(name).expect(name)];
        assert!(!equal_scales(Lab::Flow, column("fixed acidity"), column("volatile acidity")), "11.3 against 1.5 wide");
        assert!(equal_scales(Lab::Flow, column("fixed acidity"), column("alcohol")), "11.3 against 6.5 wide");
        let constant = Column { min: 1.0, max: 1.0, ..column("alcohol").clone() };
        assert!(!equal_scales(Lab::Flow, &constant, column("alcohol")), "a constant column has no scale to share");
    }

    /// Titanic's class (1, 2, 3) and sex (two categories) are jittered by a fifth of their step; a column of many
    /// values (the wine's acidity, a passenger's fare) or of one is not. Each row's move is its own, fixed, within
    /// [-1, 1] and spread over it.
    #[test]
    fn only_axes_of_few_values_are_jittered_and_each_row_moves_the_same_every_frame() {
        let whole = |n_distinct: usize, max: f32| Column {
            name: "Pclass".into(),
            kind: ColumnKind::Integer,
            min: 1.0,
            max,
            n_distinct,
            categories: Vec::new(),
        };
        assert_eq!(jitter_step(&whole(3, 3.0)), Some(1.0));
        assert_eq!(jitter_step(&whole(3, 21.0)), Some(10.0), "values 1, 11, 21");
        assert_eq!(jitter_step(&whole(40, 40.0)), None, "an age: many values");
        assert_eq!(jitter_step(&whole(1, 1.0)), None, "one value");
        let sex = Column::text("Sex".into(), vec!["female".into(), "male".into()]);
        assert_eq!(jitter_step(&sex), Some(1.0));
        let wine = BuiltinFile::WineRed.load().expect("the built-in wine");
        let acidity = &wine.columns[wine.column_index("fixed acidity").expect("a column")];
        assert_eq!(jitter_step(acidity), None, "real numbers");
        let moves: Vec<f64> = (0..10_000).map(|i| jitter(i, 0)).collect();
        assert!(moves.iter().all(|m| (-1.0..=1.0).contains(m)));
        assert_eq!(moves, (0..10_000).map(|i| jitter(i, 0)).collect::<Vec<_>>(), "the same every frame");
        let mean = moves.iter().sum::<f64>() / 1e4;
        let below = moves.iter().filter(|m| **m < -0.5).count();
        assert!(mean.abs() < 0.03 && (2_200..2_800).contains(&below), "uniform: mean {mean}, {below} below -0.5");
        assert!((0..100).filter(|&i| (jitter(i, 0) - jitter(i, 1)).abs() > 1e-9).count() > 95, "the axes apart");
    }
}
