//! Part 5: the path field takes a path as file managers and shells write it (`~`, quotes, `file://`), messages
//! name the file first and show its whole path, a load that works clears an earlier load's error, and Escape
//! closes the preview like Cancel.

use std::path::{Path, PathBuf};

use bayes_explorer::Lab;
use bayes_explorer::ui::{BayesExplorerApp, path_from_typed};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use crate::common::{BROKEN_CSV, harness, wait_until};

/// Types `text` into the path field as a paste would put it there, presses Load and waits for the outcome.
fn load_typed(harness: &mut Harness<'_, BayesExplorerApp>, text: &str) {
    text.clone_into(&mut harness.state_mut().path_text);
    harness.get_by_label("Load").click();
    harness.run_steps(2);
    wait_until(harness, "the load", |app| !app.any_loading());
}

#[test]
fn ux_typed_paths_expand_home_strip_quotes_and_read_file_addresses() {
    let home = Path::new("/home/student");
    let cases = [
        ("~/data.csv", "/home/student/data.csv"),
        ("~", "/home/student"),
        ("  \"/data/my wines.csv\"  ", "/data/my wines.csv"),
        ("'/data/wine.csv'", "/data/wine.csv"),
        ("\"~/data.csv\"", "/home/student/data.csv"),
        ("file:///data/my%20wines.csv", "/data/my wines.csv"),
        ("file://localhost/data/wine.csv", "/data/wine.csv"),
        // Kept as typed: another user's home, a ~ inside a name, a lone quote.
        ("~other/data.csv", "~other/data.csv"),
        ("/data/a~b.csv", "/data/a~b.csv"),
        ("\"/data/wine.csv", "\"/data/wine.csv"),
    ];
    for (typed, want) in cases {
        assert_eq!(path_from_typed(typed, Some(home)), Some(PathBuf::from(want)), "{typed:?}");
    }
    assert_eq!(path_from_typed("  ", Some(home)), None);
    assert_eq!(path_from_typed("~/data.csv", None), Some(PathBuf::from("~/data.csv")), "no home: kept");
}

#[test]
fn ux_a_pasted_path_in_quotes_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("my wines.csv");
    std::fs::write(&path, "a,b\n1,2\n3,4\n").unwrap();
    let mut harness = harness();
    load_typed(&mut harness, &format!("\"{}\"", path.display()));
    assert!(harness.state().preview_is_open(), "{:?}", harness.state().lab(Lab::Bnn).message);
}

#[test]
fn ux_messages_name_the_file_first_then_its_whole_path() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [&one, &two] {
        std::fs::write(dir.path().join("data.csv"), BROKEN_CSV).unwrap();
    }
    let mut harness = harness();
    for dir in [&one, &two] {
        let path = dir.path().join("data.csv");
        load_typed(&mut harness, &path.display().to_string());
        let message = harness.state().lab(Lab::Bnn).message.clone().expect("an error");
        assert!(message.text.starts_with("data.csv: line 3, column 2"), "{}", message.text);
        assert_eq!(message.file.as_deref(), Some(path.as_path()));
        // Both on screen: the name first, then the whole path that tells the two files apart.
        harness.get_by_label_contains("data.csv: line 3, column 2");
        harness.get_by_label(&format!("File: {}", path.display()));
    }
}

#[test]
fn ux_a_load_that_works_clears_an_earlier_load_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.csv"), BROKEN_CSV).unwrap();
    std::fs::write(dir.path().join("good.csv"), "a,b\n1,2\n3,4\n").unwrap();
    let mut harness = harness();
    load_typed(&mut harness, &dir.path().join("broken.csv").display().to_string());
    assert!(harness.state().lab(Lab::Bnn).message.as_ref().is_some_and(bayes_explorer::ui::Message::is_error));
    load_typed(&mut harness, &dir.path().join("good.csv").display().to_string());
    assert!(harness.state().preview_is_open());
    assert_eq!(harness.state().lab(Lab::Bnn).message, None, "the broken file's error is stale");
    assert!(harness.query_by_label_contains("oops").is_none(), "and gone from the screen");
}

#[test]
fn ux_escape_closes_the_preview_like_cancel() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.csv"), "a,b\n1,2\n3,4\n").unwrap();
    let mut harness = harness();
    load_typed(&mut harness, &dir.path().join("good.csv").display().to_string());
    assert!(harness.state().preview_is_open());
    harness.key_press(egui::Key::Escape);
    harness.run_steps(2);
    assert!(!harness.state().preview_is_open(), "Escape closes the preview");
    assert_eq!(harness.state().lab(Lab::Bnn).data.as_ref().map(|d| d.table.n_rows()), Some(1599), "nothing used");
}
