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
