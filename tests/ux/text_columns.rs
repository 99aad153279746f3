//! A file whose label is text, as Iris's is written ("Iris-setosa"): the loader refused it ("found "Iris-setosa";
//! expected a number"), so the most common first dataset of a course could not be opened. Now its text columns read
//! as categories, and every view names the classes by their text.

use std::fmt::Write as _;
use std::time::Duration;

use bayes_explorer::Lab;
use bayes_explorer::models::bnn::PredictiveRows;
use bayes_explorer::train::WorkerState;
use bayes_explorer::ui::BayesExplorerApp;
use egui_kittest::kittest::{NodeT, Queryable};

use crate::common::{harness, load_typed, use_in_the_lab, wait_until, wait_within};

const SPECIES: [&str; 3] = ["Iris-setosa", "Iris-versicolor", "Iris-virginica"];

/// Ninety rows of three well-separated species over four measurements, the species last, as Iris is written.
fn iris_like() -> String {
    let mut text = "sepal_length,sepal_width,petal_length,petal_width,species\n".to_owned();
    for i in 0..90u32 {
        let (k, wobble) = ((i % 3) as usize, f64::from(i % 7) * 0.05);
        let at = [5.0, 3.4, 1.5, 0.2].map(|v| v + 1.2 * k as f64 + wobble);
        let _ = writeln!(text, "{:.2},{:.2},{:.2},{:.2},{}", at[0], at[1], at[2], at[3], SPECIES[k]);
    }
    text
}

#[test]
fn ux_a_text_label_loads_as_classes_named_by_their_text() {
    let mut harness = harness();
    let _dir = load_typed(&mut harness, "iris.csv", &iris_like());
    wait_until(&mut harness, "the preview", BayesExplorerApp::preview_is_open);
    harness.run_steps(2);
    // The preview: the column's type, its categories, the label's role; a few columns show their names whole.
    harness.get_by_label("text");
    harness.get_by_label_contains("Iris-setosa, Iris-versicolor");
    assert_eq!(harness.get_all_by_label("sepal_length").count(), 2, "whole over its numbers and in the list");
    harness.get_by_label("BNN lab: usable");

    use_in_the_lab(&mut harness, Lab::Bnn);
    harness.get_by_label_contains("4 features, label \"species\"");
    {
        let bnn = harness.state_mut().bnn_state_mut();
        bnn.config.epochs = 40;
    }
    harness.get_by_label("Train").click();
    wait_within(&mut harness, Duration::from_mins(2), "the run's end", |app| {
        app.lab(Lab::Bnn).worker_state == Some(WorkerState::Finished)
    });
    harness.get_by_label("Predictions").click();
    wait_until(&mut harness, "the finished model's predictions", |app| {
        let last = app.lab(Lab::Bnn).snapshot.as_ref().map(|s| s.step);
        app.bnn_state().predictive().is_some_and(|p| Some(p.step) == last)
    });
    harness.run_steps(3);
    // The table of test rows names the classes by the species, each on one line (a name longer than the table's
    // columns had wrapped out of its row) and clear of the confusion matrix beside it (whose names are painted).
    let matrix = bayes_explorer::ui::figure_rect(&harness.ctx, "bnn-confusion").expect("the matrix is drawn");
    let mut named = 0;
    for name in SPECIES {
        for cell in harness.get_all_by_label(name).map(|n| n.rect()) {
            assert!(cell.height() < 20.0 && cell.right() <= matrix.left(), "{name} on one line, left of the matrix");
            named += 1;
        }
    }
    let predictive = &harness.state().bnn_state().predictive().expect("predictions").predictive;
    let PredictiveRows::Classes(rows) = &predictive.rows else { panic!("the species are classes") };
    assert_eq!(named, 2 * rows.len(), "each test row's actual and predicted class, by name");
}

/// A two-valued text feature (Titanic's sex) was probed with a slider of its numbers (0.000 to 1.000 and 10 sd
/// beyond); the probe now offers its categories by name, and a click sets the feature to that category's number.
#[test]
fn ux_the_probe_offers_a_text_features_categories_by_name() {
    let mut text = "Pclass,Sex,Age,Survived\n".to_owned();
    for i in 0..120u32 {
        let female = i % 3 == 0;
        let survived = u32::from(female || i % 7 == 0);
        let sex = if female { "female" } else { "male" };
        let _ = writeln!(text, "{},{sex},{},{survived}", 1 + i % 3, 18 + (i * 7) % 50);
    }
    let mut harness = harness();
    let _dir = load_typed(&mut harness, "passengers.csv", &text);
    wait_until(&mut harness, "the preview", BayesExplorerApp::preview_is_open);
    harness.run_steps(2);
    use_in_the_lab(&mut harness, Lab::Bnn);
    harness.get_by_label_contains("3 features, label \"Survived\"");
    harness.state_mut().bnn_state_mut().config.epochs = 20;
    harness.get_by_label("Train").click();
    wait_within(&mut harness, Duration::from_mins(2), "the run's end", |app| {
        app.lab(Lab::Bnn).worker_state == Some(WorkerState::Finished)
    });
    harness.get_by_label("Out-of-distribution probe").click();
    harness.run_steps(3);
    let sex = 1;
    for (name, value) in [("male", 1.0), ("female", 0.0), ("male", 1.0)] {
        harness.get_by_label(name).click();
        harness.run_steps(2);
        let probed = harness.state().bnn_state().probe_values[sex];
        assert!((probed - value).abs() < 1e-6, "{name}: {probed}");
        assert_eq!(
            harness.get_by_label(name).accesskit_node().toggled(),
            Some(egui::accesskit::Toggled::True),
            "{name}"
        );
    }
    // The numeric features keep their sliders; the text feature has none.
    let slider_of = |name: &str| {
        harness
            .query_all_by_role(egui::accesskit::Role::Slider)
            .filter(|n| n.accesskit_node().label().as_deref() == Some(name))
            .count()
    };
    assert_eq!([slider_of("Pclass"), slider_of("Age"), slider_of("Sex")], [1, 1, 0]);
}

/// A text feature of three kinds (the port a passenger boarded at: C, Q, S) went into the model as the numbers 0, 1,
/// 2 of its sorted texts, an order the ports do not have, and started ignored. It now starts a feature of one input
/// per port (one-hot): the preview says so, the role's row counts the inputs, the lab's panel counts them beside the
/// features; the weights name each input "Port = C", and the probe offers the ports by name, a click setting
/// the chosen port's input to 1 and the others' to 0, with no slider or sweep of an input alone. In the flow lab the
/// column starts ignored; set as a feature there it is read as numbers, and the note says that order is none.
#[test]
fn ux_a_text_feature_of_three_kinds_goes_in_one_input_per_text() {
    use egui::accesskit::Role;
    let mut text = "Port,Age,Survived\n".to_owned();
    for i in 0..60u32 {
        let _ = writeln!(text, "{},{},{}", ["C", "Q", "S"][(i % 3) as usize], 18 + (i * 7) % 50, i % 2);
    }
    let mut harness = harness();
    let _dir = load_typed(&mut harness, "ports.csv", &text);
    wait_until(&mut harness, "the preview", BayesExplorerApp::preview_is_open);
    harness.run_steps(2);
    let note = "\"Port\" goes in as 3 inputs, one per text (1 where a row has it, else 0: one-hot)";
    for (role, noted) in [(None, true), (Some("ignored"), false), (Some("feature"), true)] {
        if let Some(role) = role {
            harness.get_by_role_and_label(Role::ComboBox, "Port").click();
            harness.run_steps(2);
            harness.get_by_role_and_label(Role::Button, role).click();
            harness.run_steps(2);
        }
        assert_eq!(harness.query_by_label_contains(note).is_some(), noted, "Port as {role:?}");
        assert_eq!(harness.query_by_label("3 inputs").is_some(), noted, "Port as {role:?}");
    }
    assert!(harness.query_by_label_contains("read as the numbers of their sorted order").is_none());
    use_in_the_lab(&mut harness, Lab::Bnn);
    harness.get_by_label_contains("2 features (4 inputs), label \"Survived\"");
    assert!(harness.query_by_label("Texts read as ordered numbers (hover)").is_none());
    harness.state_mut().bnn_state_mut().config.epochs = 20;
    harness.get_by_label("Train").click();
    wait_within(&mut harness, Duration::from_mins(2), "the run's end", |app| {
        app.lab(Lab::Bnn).worker_state == Some(WorkerState::Finished)
    });
    harness.run_steps(3);
    // A weight from the second input (the first layer has 8 units): Q's.
    harness.state_mut().bnn_state_mut().selected_weight = Some((0, 8));
    harness.run_steps(2);
    harness.get_by_label("Layer 1 weight: Port = Q -> unit 1");
    harness.get_by_label("Out-of-distribution probe").click();
    harness.run_steps(3);
    assert_eq!(harness.state().bnn_state().sweep_feature, 3, "the sweep on the age, not a port's input");
    for (port, inputs) in [("Q", [0.0, 1.0, 0.0]), ("S", [0.0, 0.0, 1.0]), ("C", [1.0, 0.0, 0.0])] {
        harness.get_by_label(port).click();
        harness.run_steps(2);
        let probed = &harness.state().bnn_state().probe_values[..3];
        assert_eq!(probed, inputs, "{port}");
        for other in ["C", "Q", "S"] {
            let toggled = harness.get_by_label(other).accesskit_node().toggled();
            assert_eq!(toggled, Some(egui::accesskit::Toggled::from(other == port)), "{other} after {port}");
        }
    }
    let sliders = |name: &str| {
        harness.query_all_by_role(Role::Slider).filter(|n| n.accesskit_node().label().as_deref() == Some(name)).count()
    };
    let radios = harness.query_all_by_role(Role::RadioButton).count();
    assert_eq!((sliders("Age"), sliders("Port"), radios), (1, 0, 1), "the age alone has a slider and a sweep");

    // The flow lab: ignored at first; a feature there, read as numbers, with the note.
    harness.get_by_label("Flow").click();
    harness.run_steps(2);
    let _again = load_typed(&mut harness, "ports.csv", &text);
    wait_until(&mut harness, "the flow's preview", BayesExplorerApp::preview_is_open);
    harness.run_steps(2);
    let ordered = "\"Port\" (3 texts): a feature's texts are read as the numbers of their sorted order (C = 0, Q = 1, \
                   S = 2)";
    assert!(harness.query_by_label_contains(ordered).is_none(), "ignored at first");
    harness.get_by_role_and_label(Role::ComboBox, "Port").click();
    harness.run_steps(2);
    harness.get_by_role_and_label(Role::Button, "feature").click();
    harness.run_steps(2);
    harness.get_by_label_contains(ordered);
}

/// In the flow lab, a column of few values (a year, beside a measurement) makes the flow's density pile up on its
/// values' lines and its NLL fall far below any density of measurements: the flow seemed to learn better on it. The
/// preview says so, naming the column, and the lab's dataset panel marks it; a continuous pair has no such note.
#[test]
fn ux_the_flow_lab_names_a_column_of_few_values() {
    let mut text = "depth,year,length\n".to_owned();
    for i in 0..90u32 {
        let _ = writeln!(
            text,
            "{:.2},{},{:.2}",
            13.0 + f64::from(i % 37) * 0.21,
            2007 + i % 3,
            35.0 + f64::from(i % 41) * 0.4
        );
    }
    let mut harness = harness();
    harness.get_by_label("Flow").click();
    harness.run_steps(2);
    let _dir = load_typed(&mut harness, "years.csv", &text);
    wait_until(&mut harness, "the preview", BayesExplorerApp::preview_is_open);
    harness.run_steps(2);
    let note = "\"year\" takes only 3 values: a density over it piles up on 3 lines";
    harness.get_by_label_contains(note);
    // The year ignored and the length a feature: two measurements, no note.
    for (column, role) in [("year", "ignored"), ("length", "feature")] {
        harness.get_by_role_and_label(egui::accesskit::Role::ComboBox, column).click();
        harness.run_steps(2);
        harness.get_by_role_and_label(egui::accesskit::Role::Button, role).click();
        harness.run_steps(2);
    }
    assert!(harness.query_by_label_contains(note).is_none(), "depth and length are measurements");
    for (column, role) in [("length", "ignored"), ("year", "feature")] {
        harness.get_by_role_and_label(egui::accesskit::Role::ComboBox, column).click();
        harness.run_steps(2);
        harness.get_by_role_and_label(egui::accesskit::Role::Button, role).click();
        harness.run_steps(2);
    }
    harness.get_by_label_contains(note);
    use_in_the_lab(&mut harness, Lab::Flow);
    harness.get_by_label("A column of few values (hover)");
}
