//! What the window tests share: a harness around the whole app, and waiting for its background threads.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use bayes_explorer::Lab;
use bayes_explorer::ui::{BayesExplorerApp, Settings};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

/// Clicks at `at` as a user would: hover, then press and release in place.
pub fn click_at(harness: &mut Harness<'_, BayesExplorerApp>, at: egui::Pos2) {
    harness.hover_at(at);
    harness.run_steps(1);
    harness.drag_at(at);
    harness.run_steps(1);
    harness.drop_at(at);
    harness.run_steps(2);
}

/// The window as it opens on a fresh machine, once the built-in datasets are in.
pub fn harness() -> Harness<'static, BayesExplorerApp> {
    harness_for(BayesExplorerApp::new(egui::Context::default(), Settings::default()))
}

/// The window around `app` (1280 x 800, as the app opens), once its datasets are in.
pub fn harness_for(app: BayesExplorerApp) -> Harness<'static, BayesExplorerApp> {
    let mut harness = Harness::builder()
        .with_size([1280.0, 800.0])
        // As the window installs them: the SVG loader draws the Explain panels' formulas.
        .with_context_setup(egui_extras::install_image_loaders)
        .build_ui_state(|ui, app: &mut BayesExplorerApp| app.show(ui), app);
    wait_until(&mut harness, "the datasets", |app| !app.any_loading());
    harness
}

/// Steps the window until `done` (at most a minute: the test machines have two shared cores).
pub fn wait_until(harness: &mut Harness<'_, BayesExplorerApp>, what: &str, done: impl Fn(&BayesExplorerApp) -> bool) {
    wait_within(harness, Duration::from_mins(1), what, done);
}

/// Steps the window until `done`, failing after `limit`.
pub fn wait_within(
    harness: &mut Harness<'_, BayesExplorerApp>,
    limit: Duration,
    what: &str,
    done: impl Fn(&BayesExplorerApp) -> bool,
) {
    let deadline = Instant::now() + limit;
    while !done(harness.state()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
        harness.step();
    }
    harness.run_steps(3);
}

/// Steps the window until some widget's label contains `text` (at most a minute): for what a background thread
/// draws, which no field of the app's state says is on show.
pub fn wait_for_label(harness: &mut Harness<'_, BayesExplorerApp>, text: &str) {
    let deadline = Instant::now() + Duration::from_mins(1);
    while harness.query_by_label_contains(text).is_none() {
        assert!(Instant::now() < deadline, "timed out waiting for a label containing {text:?}");
        std::thread::sleep(Duration::from_millis(20));
        harness.step();
    }
    harness.run_steps(3);
}

/// Decodes an animated PNG: its frames as RGBA bytes, and its size.
pub fn decode_apng(path: &std::path::Path) -> (Vec<Vec<u8>>, [u32; 2]) {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let info = reader.info();
    let size = [info.width, info.height];
    let n = info.animation_control.expect("an animated PNG").num_frames as usize;
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let frames = (0..n)
        .map(|_| {
            let out = reader.next_frame(&mut buf).unwrap();
            buf[..out.buffer_size()].to_vec()
        })
        .collect();
    (frames, size)
}

/// The share of pixels that differ between two frames of the same size.
pub fn differing(a: &[u8], b: &[u8]) -> f64 {
    let n = a.len() / 4;
    a.chunks_exact(4).zip(b.chunks_exact(4)).filter(|(p, q)| p != q).count() as f64 / n as f64
}

/// Scrolls the panel under `over` with the mouse wheel, as a user would, until the widget at `rect` ends at least 40
/// points above the window's bottom edge (at most 20 turns of the wheel).
pub fn scroll_into_view_over(
    harness: &mut Harness<'_, BayesExplorerApp>,
    over: egui::Pos2,
    rect: impl Fn(&Harness<'_, BayesExplorerApp>) -> egui::Rect,
) {
    let bottom = harness.ctx.content_rect().bottom();
    for _ in 0..20 {
        if rect(harness).bottom() < bottom - 40.0 {
            return;
        }
        wheel_down_at(harness, over);
    }
    panic!("the widget at {:?} could not be scrolled into view", rect(harness));
}

/// Turns the mouse wheel one notch down (120 points) with the pointer at `at`, as a user would, and draws three
/// frames.
pub fn wheel_down_at(harness: &mut Harness<'_, BayesExplorerApp>, at: egui::Pos2) {
    harness.hover_at(at);
    harness.event(egui::Event::MouseWheel {
        unit: egui::MouseWheelUnit::Point,
        delta: egui::vec2(0.0, -120.0),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Unknown,
        modifiers: egui::Modifiers::NONE,
    });
    harness.run_steps(3);
}

/// A CSV file with a typo, "oops" on line 3 among twenty-one numbers in its column "b": one text among twenty numbers
/// or more is stray, so the file is refused there (fewer numbers, and "b" would be a column of text).
pub const BROKEN_CSV: &str = "a,b\n1,2\n3,oops\n\
    4,5\n5,6\n6,7\n7,8\n8,9\n9,10\n10,11\n11,12\n12,13\n13,14\n\
    14,15\n15,16\n16,17\n17,18\n18,19\n19,20\n20,21\n21,22\n22,23\n23,24\n";

/// Clicks "Use in the … lab" in the open preview and waits for `lab` to hold the file (its rows are checked against
/// its roles on a loader thread).
pub fn use_in_the_lab(harness: &mut Harness<'_, BayesExplorerApp>, lab: Lab) {
    harness.get_by_label(&format!("Use in the {} lab", lab.tab_name())).click();
    harness.run_steps(1);
    wait_until(harness, "the file in the lab", |app| !app.lab(lab).is_loading());
    harness.run_steps(2);
}

/// Writes `text` to a file `name` in a new folder and loads it as a user who types its path and presses Load; the
/// preview (or the lab's error) follows. The folder, returned, lives as long as the caller keeps it.
pub fn load_typed(harness: &mut Harness<'_, BayesExplorerApp>, name: &str, text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a folder");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("the file");
    harness.state_mut().path_text = path.display().to_string();
    harness.get_by_label("Load").click();
    dir
}
