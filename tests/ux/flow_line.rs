//! The flow lab's 1-D picture (issue 23): open before any run, a knot of f dragged by the pointer keeps f increasing
//! and p_x's integral at 1, the shaded interval carries the same probability to dx, and "Train f on the column"
//! fits f to the two moons' y (two bumps) on its thread, ending below N(0, 1)'s NLL.

use bayes_explorer::Lab;
use bayes_explorer::models::flow::line::{MIN_GAP, MonotoneSpline};
use bayes_explorer::ui::{BayesExplorerApp, Settings};
use egui::{Event, PointerButton, Pos2};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use crate::common::{harness_for, wait_until};

/// The flow lab at 1280 x 800, its built-in data in, on the 1-D picture.
fn line_page() -> Harness<'static, BayesExplorerApp> {
    let mut harness = harness_for(BayesExplorerApp::new(
        egui::Context::default(),
        Settings { tab: Lab::Flow, ..Settings::default() },
    ));
    harness.get_by_label("The 1-D picture").click();
    harness.run_steps(3);
    harness
}

/// Presses the pointer at `from`, moves it to `to` in a few frames and lets go.
fn drag(harness: &mut Harness<'_, BayesExplorerApp>, from: Pos2, to: Pos2) {
    let button = |pos, pressed| Event::PointerButton {
        pos,
        button: PointerButton::Primary,
        pressed,
        modifiers: egui::Modifiers::NONE,
    };
    harness.event(Event::PointerMoved(from));
    harness.step();
    harness.event(button(from, true));
    harness.step();
    for i in 1..=6 {
        harness.event(Event::PointerMoved(from + (to - from) * (i as f32 / 6.0)));
        harness.step();
    }
    harness.event(button(to, false));
    harness.run_steps(2);
}

#[test]
fn ux_the_1d_picture_opens_before_any_run_with_the_lectures_f() {
    let harness = line_page();
    assert!(harness.state().lab(Lab::Flow).worker_state.is_none(), "no run was started");
    assert_eq!(harness.state().flow_state().line.spline(), &MonotoneSpline::lecture());
    harness.get_by_label_contains("Integral of p_x over all x = 1.0000");
    // Both ways of measuring the shaded interval print the same probability.
    let (under_z, under_x) = harness.state().flow_state().line.interval_mass();
    assert!((under_z - under_x).abs() < 1e-6, "{under_z} against {under_x}");
    harness.get_by_label_contains(&format!("p_z over dz = {under_z:.4}, p_x over dx = {under_z:.4}"));
}

#[test]
fn ux_dragging_a_knot_of_f_moves_it_and_the_integral_stays_one() {
    let mut harness = line_page();
    let k = 6;
    let before = harness.state().flow_state().line.spline().knot_x().to_vec();
    let at = harness.state().flow_state().line.knot_on_screen(k).expect("knot 6 is drawn");
    drag(&mut harness, at, at + egui::vec2(0.0, -40.0));
    let after = harness.state().flow_state().line.spline().knot_x().to_vec();
    assert!(after[k] > before[k] + 0.05, "the knot went up: {} -> {}", before[k], after[k]);
    for j in (0..after.len()).filter(|&j| j != k) {
        assert_eq!(after[j].to_bits(), before[j].to_bits(), "knot {j} stayed");
    }
    assert!(after.windows(2).all(|w| w[1] > w[0]), "f still increases");
    harness.get_by_label_contains("Integral of p_x over all x = 1.0000");
    // Dragged far past its neighbour, the knot stops just below it.
    let at = harness.state().flow_state().line.knot_on_screen(k).expect("knot 6 is drawn");
    drag(&mut harness, at, Pos2::new(at.x, 5.0));
    let after = harness.state().flow_state().line.spline().knot_x().to_vec();
    assert!((after[k + 1] - after[k] - MIN_GAP).abs() < 1e-9, "{} just under {}", after[k], after[k + 1]);
    harness.get_by_label_contains("Integral of p_x over all x = 1.0000");
}

#[test]
fn ux_training_f_on_a_column_fits_its_two_bumps() {
    let mut harness = line_page();
    // The two moons' last column (y) is picked first.
    harness.get_by_label("Train f on the column").click();
    wait_until(&mut harness, "the fit to end", |app| app.flow_state().line.progress().is_some_and(|p| p.done));
    let line = &harness.state().flow_state().line;
    let progress = line.progress().expect("a fit ran");
    assert_eq!(progress.step, progress.steps, "every step was taken");
    let data = line.fit_values().expect("a column was read");
    let gaussian = MonotoneSpline::identity().nll(data);
    assert!((gaussian - 1.4189).abs() < 1e-3, "a standardised column under N(0, 1): {gaussian}");
    let fitted = line.spline().nll(data);
    assert!((fitted - progress.nll).abs() < 1e-9, "the figure shown is the spline's own");
    assert!(fitted < gaussian - 0.1, "f learned the two bumps: {fitted} against N(0, 1)'s {gaussian}");
    harness.get_by_label_contains(&format!("NLL {fitted:.4} nats per point"));
    harness.get_by_label_contains("Integral of p_x over all x = 1.0000");
}

#[test]
fn ux_in_presenter_mode_on_a_projector_the_1d_picture_shows_all_its_numbers() {
    // A 1920 x 1080 projector, presenter mode's larger type: the numbers beside p_z were taller than the row the
    // plots left them, and the fit's figures, their last line, were cut off under the status bar.
    let app = BayesExplorerApp::new(egui::Context::default(), Settings { tab: Lab::Flow, ..Settings::default() });
    let mut harness = Harness::builder()
        .with_size([1920.0, 1080.0])
        .with_context_setup(egui_extras::install_image_loaders)
        .build_ui_state(|ui, app: &mut BayesExplorerApp| app.show(ui), app);
    wait_until(&mut harness, "the datasets", |app| !app.any_loading());
    harness.key_press(egui::Key::P);
    harness.run_steps(3);
    assert!(harness.state().presenting());
    harness.get_by_label("The 1-D picture").click();
    harness.run_steps(3);
    harness.get_by_label("Train f on the column").click();
    wait_until(&mut harness, "the fit to end", |app| app.flow_state().line.progress().is_some_and(|p| p.done));
    harness.run_steps(3);
    let last = harness.get_by_label_contains("nats per point").rect();
    let status = harness.get_by_label_contains("Compute:").rect();
    assert!(
        last.max.y <= status.min.y,
        "the fit's figures end at {}, under the status bar at {}",
        last.max.y,
        status.min.y
    );
}

#[test]
fn ux_data_loaded_during_a_fit_gives_the_picture_its_own_column() {
    let mut harness = line_page();
    harness.get_by_label("Train f on the column").click();
    wait_until(&mut harness, "the fit to be under way", |app| {
        app.flow_state().line.progress().is_some_and(|p| p.step > 0 && !p.done)
    });
    assert_eq!(harness.state().flow_state().line.column_values().map(<[f64]>::len), Some(3000), "the moons' y");
    // Other data, loaded while f trains on the moons' y with the picture on show. The picture went on showing the
    // moons' y under the new table's column name, and the moons' fit went on and showed its figures.
    crate::settings::load_builtin(&mut harness, Lab::Flow, "Wine quality, red (UCI)");
    let fitted = harness.state().flow_state().line.spline().clone();
    for _ in 0..10 {
        std::thread::sleep(std::time::Duration::from_millis(30));
        harness.run_steps(2);
    }
    let app = harness.state();
    let data = app.lab(Lab::Flow).data.as_ref().expect("the wine is in");
    // The flow lab models two of the wine's columns; the picture takes the last of its features.
    let column = *data.spec.feature_columns().last().expect("features");
    let name = data.table.columns[column].name.clone();
    assert!(name.contains("acidity"), "a column of the wine: {name}");
    let raw: Vec<f64> =
        (0..data.table.n_rows()).map(|i| f64::from(data.table.get(i, column).expect("a cell"))).collect();
    let mean = raw.iter().sum::<f64>() / raw.len() as f64;
    let sd = (raw.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / raw.len() as f64).sqrt();
    let line = &app.flow_state().line;
    let values = line.column_values().expect("a column is read");
    assert_eq!(values.len(), 1599, "the wine's rows, not the moons'");
    for (v, r) in values.iter().zip(&raw) {
        assert!((v - (r - mean) / sd).abs() < 1e-9, "the wine's {name}, standardised");
    }
    assert!(line.progress().is_none(), "the moons' fit and its figures are gone with the moons");
    assert_eq!(line.spline(), &fitted, "f stays where the fit had got to");
    assert_eq!(harness.get_by_label("Column").value(), Some(name), "the column read is the column named");
    assert!(harness.query_by_label_contains("trained on").is_none(), "no figure of the old column is shown");
    harness.get_by_label("Train f on the column");
}

/// The page's formula is drawn at (nearly) the body size in a window of half a screen. It was one formula of both
/// pieces, shrunk to the narrow column under p_x: three fifths of the body size at 960 points across, too small to
/// read from the back of a lecture room. Its two pieces now go on two lines where they do not fit on one.
#[test]
fn ux_the_1d_formula_keeps_its_size_in_a_narrow_window() {
    let mut harness = line_page();
    for size in [egui::vec2(960.0, 1040.0), egui::vec2(1280.0, 800.0)] {
        harness.set_size(size);
        harness.run_steps(4);
        let ctx = harness.ctx.clone();
        let style = ctx.global_style();
        let em = egui::TextStyle::Body.resolve(&style).size * 1.2;
        for piece in bayes_explorer::ui::flow_line::LINE_FORMULA {
            let typeset = bayes_explorer::ui::equation::typeset_cached(piece, style.visuals.strong_text_color(), em)
                .expect("the piece typesets");
            let drawn = harness.get_by_label(piece).rect();
            let scale = drawn.width() / typeset.size.x;
            assert!(scale > 0.85, "at {size:?} {piece:?} is drawn at {scale:.2} of its size ({drawn:?})");
        }
    }
}

/// Before any run the 1-D picture's tabs are the ones the lab opened with: "The data" and "The 1-D picture". On the
/// 1-D picture they read "Step through the stages" and "Data and latent space (Keras figure)", pages that need a run,
/// so that the tab a student came from had another name, and "Step through the stages" led to the data.
#[test]
fn ux_before_a_run_the_1d_pictures_tabs_are_the_labs_own() {
    let mut harness = line_page();
    assert!(harness.state().lab(Lab::Flow).worker_state.is_none(), "no run");
    harness.get_by_label("The data");
    assert!(harness.query_by_label("Step through the stages").is_none(), "no flow to step through before a run");
    assert!(harness.query_by_label("Data and latent space (Keras figure)").is_none());
    harness.get_by_label("The data").click();
    harness.run_steps(3);
    harness.get_by_label("Scatter");
    harness.get_by_label("The 1-D picture").click();
    harness.run_steps(3);
    harness.get_by_label("Train f on the column");
}
