//! A file with missing cells (Titanic's ages): asked to drop the rows that miss a value, the reader dropped every
//! such row as it read, so that a column the student then set to ignored still cost its rows (a fifth of Titanic's).
//! Now the cells are kept as missing, the preview counts them per column, and a row is left out only where a column
//! used misses its value. On the scatter of two columns of few values (class against sex), the points are
//! jittered so that the rows on one value do not hide each other.

use std::fmt::Write as _;

use bayes_explorer::Lab;
use bayes_explorer::ui::BayesExplorerApp;
use egui::accesskit::{Role, Toggled};
use egui_kittest::kittest::{NodeT, Queryable};

use crate::common::{harness, load_typed, use_in_the_lab, wait_until};

/// Sixty passengers, every fifth without an age.
fn titanic_like() -> String {
    let mut text = "Survived,Pclass,Sex,Age,Fare\n".to_owned();
    for i in 0..60u32 {
        let age = if i % 5 == 2 { String::new() } else { (18 + i % 40).to_string() };
        let sex = if i % 2 == 0 { "male" } else { "female" };
        let _ = writeln!(text, "{},{},{sex},{age},{:.2}", i % 2, 1 + i % 3, 7.5 + f64::from(i));
    }
    text
}

#[test]
fn ux_a_column_set_to_ignored_costs_no_rows() {
    let mut harness = harness();
    let _dir = load_typed(&mut harness, "titanic.csv", &titanic_like());
    wait_until(&mut harness, "the error", |app| app.lab(Lab::Bnn).message.is_some());
    harness.get_by_label_contains("titanic.csv: line 4, column 4 (\"Age\")");
    harness.get_by_label("Load, leaving out rows that miss a value").click();
    wait_until(&mut harness, "the preview", BayesExplorerApp::preview_is_open);
    harness.run_steps(2);
    // Each column's missing cells counted; the rows the roles cannot use named.
    harness.get_by_label_contains("kept as missing, in \"Age\" (12, the first on line 4)");
    harness.get_by_label_contains("(12 missing)");
    harness.get_by_label("Split: 41 train, 7 test (seed 42)");
    harness.get_by_label_contains("Left out: 12 rows that miss a value in a column used (the first on line 4");
    // Age ignored: every row comes back.
    harness.get_by_role_and_label(Role::ComboBox, "Age").click();
    harness.run_steps(2);
    harness.get_by_role_and_label(Role::Button, "ignored").click();
    harness.run_steps(2);
    harness.get_by_label("Split: 51 train, 9 test (seed 42)");
    assert!(harness.query_by_label_contains("Left out:").is_none(), "no row is left out without Age");
    use_in_the_lab(&mut harness, Lab::Bnn);
    let data = harness.state().lab(Lab::Bnn).data.as_ref().expect("the file in the lab");
    assert_eq!((data.table.n_rows(), data.spec.feature_columns().len()), (60, 3), "Pclass, Sex and Fare");
    assert!(harness.state().lab(Lab::Bnn).message.as_ref().is_none_or(|m| !m.is_warning()), "nothing left out");
    // The scatter of class against sex (3 and 2 values: 60 passengers on 6 points) is jittered, and says so.
    harness.run_steps(2);
    let toggled = |harness: &egui_kittest::Harness<'_, BayesExplorerApp>| {
        harness.get_by_role_and_label(Role::CheckBox, "Jitter").accesskit_node().toggled()
    };
    assert_eq!(toggled(&harness), Some(Toggled::True), "jittered at first");
    harness.get_by_role_and_label(Role::CheckBox, "Jitter").click();
    harness.run_steps(2);
    assert_eq!(toggled(&harness), Some(Toggled::False), "the points where the rows have them");
}
