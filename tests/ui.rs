//! The window driven by its labels (egui_kittest): each tab opens and shows its built-in dataset, the
//! BNN lab trains from the Train button, and a bad file shows its error in the window while the loaded
//! data stays.

use std::time::Duration;

use bayes_explorer::Lab;
use bayes_explorer::ui::{BayesExplorerApp, Settings};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

mod common;
use common::{
    BROKEN_CSV, click_at, decode_apng, differing, harness, harness_for, scroll_into_view_over, use_in_the_lab,
    wait_for_label, wait_until, wait_within,
};

/// Hovers each point of the VAE's latent plane in turn and returns the image decoded there (waiting for it to
/// change from the previous one).
fn decoded_under_cursor(harness: &mut Harness<'_, BayesExplorerApp>, points: [egui::Pos2; 2]) -> Vec<Vec<f32>> {
    let mut images = Vec::new();
    for at in points {
        harness.hover_at(at);
        harness.run_steps(2);
        let before = harness.state().vae_state().hover_image().map(<[f32]>::to_vec);
        wait_until(harness, "the decoded image", |app| {
            app.vae_state().hover_image().is_some_and(|img| Some(img.to_vec()) != before)
        });
        images.push(harness.state().vae_state().hover_image().map(<[f32]>::to_vec).unwrap_or_default());
    }
    images
}

#[test]
fn each_tab_shows_its_dataset() {
    let mut harness = harness();
    for (tab, dataset) in [("VAE", "MNIST, 5,000 digits"), ("Flow", "Two moons"), ("BNN", "Wine quality, red (UCI)")] {
        harness.get_by_label(tab).click();
        harness.run_steps(3);
        assert_eq!(harness.state().settings.tab.tab_name(), tab);
        // The dataset's name stands in the side panel and above its view.
        assert!(harness.query_all_by_label_contains(dataset).count() >= 2, "{tab} tab shows {dataset}");
    }
    harness.get_by_label("Table").click();
    harness.run_steps(3);
    harness.get_by_label("fixed acidity");
    // The first row of the UCI file: 7.4;0.7;0;1.9;0.076;...
    assert!(harness.query_all_by_label("0.076").count() >= 1);
    assert!(harness.query_all_by_label("1.9").count() >= 1);
}

#[test]
fn train_button_runs_the_worker_and_shows_epochs() {
    let mut harness = harness();
    harness.get_by_label("Train").click();
    wait_until(&mut harness, "an epoch", |app| app.lab(Lab::Bnn).snapshot.as_ref().is_some_and(|s| s.epoch >= 2));
    // The red wine's 1,359 training rows: the default step budget is 2,000 epochs.
    harness.get_by_label_contains(" of 2000, step ");
    harness.get_by_label("Pause").click();
    harness.run_steps(2);
    wait_until(&mut harness, "pause", |app| {
        app.lab(Lab::Bnn).worker_state == Some(bayes_explorer::train::WorkerState::Paused)
    });
    harness.get_by_label_contains("Worker (BNN): paused");
}

#[test]
fn a_missing_file_from_the_last_session_falls_back_to_the_built_in_data() {
    let gone = bayes_explorer::data::LoadRequest::File {
        path: "/no/such/folder/last-session.csv".into(),
        options: bayes_explorer::data::CsvOptions::default(),
    };
    let settings = Settings { tab: Lab::Vae, labs: vec![(Lab::Bnn, gone, None)], ..Settings::default() };
    let mut harness = harness_for(BayesExplorerApp::new(egui::Context::default(), settings));
    wait_until(&mut harness, "the fallback", |app| app.lab(Lab::Bnn).data.is_some() && !app.any_loading());
    assert_eq!(harness.state().settings.tab, Lab::Vae, "the last tab is restored");
    assert_eq!(harness.state().lab(Lab::Bnn).data.as_ref().map(|d| d.table.n_rows()), Some(1599));
    let message = harness.state().lab(Lab::Bnn).message.clone().map(|m| m.text).unwrap_or_default();
    assert!(message.starts_with("last-session.csv: cannot read the file"), "{message}");
}

#[test]
fn a_bad_file_shows_its_error_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.csv");
    std::fs::write(&path, BROKEN_CSV).unwrap();
    let mut harness = harness();
    harness.state_mut().path_text = path.display().to_string();
    harness.get_by_label("Load").click();
    wait_until(&mut harness, "the error", |app| app.lab(Lab::Bnn).message.is_some());
    harness.get_by_label_contains("broken.csv: line 3, column 2 (\"b\"): found \"oops\"");
    assert_eq!(harness.state().lab(Lab::Bnn).data.as_ref().map(|d| d.table.n_rows()), Some(1599));
    harness.get_by_label("Load, leaving out rows that miss a value").click();
    wait_until(&mut harness, "the preview", BayesExplorerApp::preview_is_open);
    harness.get_by_label_contains("Cells missing or not a number, kept as missing, in \"b\" (1, the first on line 3)");
    harness.get_by_label_contains("Left out: 1 row that misses a value in a column used (the first on line 3");
    use_in_the_lab(&mut harness, Lab::Bnn);
    assert_eq!(harness.state().lab(Lab::Bnn).data.as_ref().map(|d| d.table.n_rows()), Some(21));
    // The lab says what was left out, as a warning: the data is not all the file held.
    let message = harness.state().lab(Lab::Bnn).message.clone().expect("a message about the row left out");
    assert!(message.is_warning() && !message.is_error() && message.text.contains("left out 1 row that"), "{message:?}");
}

/// The preview's first rows, "as written in the file", start with the header line, its names over their columns of
/// numbers: they started with the first line of data, so the file's first line was nowhere to be seen. A name longer
/// than its column's numbers takes the room the window has left (whole for Iris's "sepal_length", which was cut to
/// "sep…" over its numbers), and is cut short only where that room runs out, so that the rows stay in the window.
#[test]
fn the_previews_first_rows_start_with_the_header_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("named.csv");
    let endless = "x".repeat(400);
    std::fs::write(&path, format!("alpha;longname;{endless}\n12345;71;7777\n3;93;8888\n")).unwrap();
    let mut harness = harness();
    harness.state_mut().path_text = path.display().to_string();
    harness.get_by_label("Load").click();
    wait_until(&mut harness, "the preview", BayesExplorerApp::preview_is_open);
    harness.run_steps(2);
    let heads = |harness: &egui_kittest::Harness<'_, BayesExplorerApp>, name: &str, number: &str| {
        let cell = harness.get_by_label(number).rect();
        harness
            .get_all_by_label(name)
            .any(|n| n.rect().bottom() <= cell.top() && (n.rect().left() - cell.left()).abs() < 1.0)
    };
    // "alpha" is as wide as its numbers, "longname" has room: both whole over their numbers (and again in the list
    // of columns below).
    assert_eq!(harness.get_all_by_label("alpha").count(), 2);
    assert!(heads(&harness, "alpha", "12345"), "\"alpha\" heads the column of 12345");
    assert_eq!(harness.get_all_by_label("longname").count(), 2);
    assert!(heads(&harness, "longname", "93"), "\"longname\" heads the column of 71 and 93");
    // A name of 400 characters (a survey's question) is cut where the room ends over its numbers, and to forty
    // characters in the list of columns, whole on hover: whole, it widened the window to 3,000 points, past the
    // screen with the roles and the buttons.
    let cut = harness.get_all_by_label_contains("xxx…").map(|n| n.rect()).collect::<Vec<_>>();
    let listed = format!("{}…", "x".repeat(39));
    harness.get_by_label(&listed);
    let screen = harness.ctx.content_rect();
    assert!(cut.len() == 2 && cut.iter().all(|r| r.right() <= screen.right()), "{cut:?} within {screen:?}");
    let over_numbers = harness.get_all_by_label_contains("xxx…").find(|n| n.value().is_some_and(|v| v != listed));
    let over_numbers = over_numbers.and_then(|n| n.value()).expect("the header's cut name");
    assert!(heads(&harness, &over_numbers, "8888"), "the cut name heads its column");
    assert!(harness.query_by_label(&endless).is_none(), "nowhere whole but on hover");
    assert!(harness.get_by_label("Use in the BNN lab").rect().right() <= screen.right());
}

#[test]
fn flow_stages_step_forward_and_back_and_the_direction_relabels_the_view() {
    let mut harness = harness();
    harness.get_by_label("Flow").click();
    harness.run_steps(3);
    // A small flow, so the views are quick to compute.
    *harness.state_mut().flow_config_mut() = bayes_explorer::models::flow::FlowConfig {
        layers: 2,
        hidden: vec![16],
        ..bayes_explorer::models::flow::FlowConfig::default()
    };
    harness.get_by_label("New model").click();
    wait_until(&mut harness, "the flow's stages", |app| {
        app.lab(Lab::Flow).snapshot.as_ref().is_some_and(|s| s.model.is_some())
    });
    wait_for_label(&mut harness, "Stage 0 of 2");
    harness.get_by_label_contains("Stage 0 of 2: Gaussian samples");
    harness.get_by_label("Next >").click();
    harness.run_steps(3);
    harness.get_by_label_contains("Stage 1 of 2: after layer 1 (coupling)");
    harness.get_by_label("Next >").click();
    harness.run_steps(3);
    harness.get_by_label_contains("Stage 2 of 2: after layer 2 (coupling): samples in data space x");
    harness.get_by_label("< Previous").click();
    harness.run_steps(3);
    harness.get_by_label_contains("Stage 1 of 2: after layer 1");
    // Switching the direction keeps the stage and relabels it in the words of inference.
    harness.get_by_label("Direction").click();
    harness.run_steps(2);
    harness.get_by_label("inference: data -> Gaussian").click();
    harness.run_steps(3);
    harness.get_by_label_contains("Stage 1 of 2: the data pulled back through layers 2..2");
    harness.get_by_label("Next >").click();
    harness.run_steps(3);
    harness.get_by_label_contains("Stage 0 of 2: the data pulled back to the latent z");
    harness.get_by_label("< Previous").click();
    harness.run_steps(3);
    harness.get_by_label("< Previous").click();
    harness.run_steps(3);
    harness.get_by_label_contains("Stage 2 of 2: the data x");
}

#[test]
fn bnn_training_shows_histograms_and_the_predictive_table_then_pauses_and_steps() {
    let mut harness = harness();
    harness.state_mut().bnn_state_mut().config.epochs = 10_000;
    harness.get_by_label("Train").click();
    wait_until(&mut harness, "two epochs", |app| app.lab(Lab::Bnn).snapshot.as_ref().is_some_and(|s| s.epoch >= 2));
    // The weight histograms, with their bin rule and the prior, against which they are drawn.
    harness.get_by_label_contains("bins by the Freedman–Diaconis rule");
    harness.get_by_label("Weight matrix");
    harness.get_by_label("Predictions").click();
    wait_until(&mut harness, "the predictions", |app| app.bnn_state().has_predictions());
    harness.get_by_label("Predictive table");
    harness.get_by_label_contains("forward passes each");
    harness.get_by_label("Range");
    // The wine's quality, a whole number, is written as one ("6", not "6.00") under "Actual".
    let actual = harness.get_by_label("Actual").rect();
    let under_actual = |r: egui::Rect| {
        (actual.left() - 2.0..actual.right() + 24.0).contains(&r.center().x) && r.top() > actual.bottom()
    };
    let cells: Vec<String> = harness
        .query_all_by(|node| node.role() == egui::accesskit::Role::Label)
        .filter(|node| under_actual(node.rect()))
        .filter_map(|node| node.accesskit_node().value())
        .filter(|v| v.parse::<f64>().is_ok())
        .collect();
    assert!(!cells.is_empty() && cells.iter().all(|c| !c.contains('.')), "the actual qualities: {cells:?}");
    harness.get_by_label("Pause").click();
    wait_until(&mut harness, "pause", |app| {
        app.lab(Lab::Bnn).worker_state == Some(bayes_explorer::train::WorkerState::Paused)
    });
    let before = harness.state().lab(Lab::Bnn).snapshot.as_ref().map_or(0, |s| s.step);
    harness.get_by_label("Step").click();
    wait_until(&mut harness, "one step", |app| {
        app.lab(Lab::Bnn).snapshot.as_ref().is_some_and(|s| s.step == before + 1)
    });
    harness.get_by_label_contains("Worker (BNN): paused");
    harness.get_by_label("Calibration").click();
    harness.run_steps(3);
    harness.get_by_label_contains("central 95 %");
}

#[test]
fn vae_training_shows_the_latent_space_and_the_decoded_image_follows_the_cursor() {
    let mut harness = harness();
    harness.get_by_label("VAE").click();
    harness.run_steps(2);
    harness.state_mut().vae_state_mut().config.epochs = 2;
    harness.get_by_label("Train").click();
    wait_until(&mut harness, "two epochs", |app| app.lab(Lab::Vae).snapshot.as_ref().is_some_and(|s| s.epoch >= 2));
    wait_until(&mut harness, "the latent means", |app| app.vae_state().has_latents());
    let heading = harness.get_by_label_contains("Encoder means of every input").rect();
    // Two points in the latent plane, below the heading: each decodes to its own image.
    let first = heading.left_bottom() + egui::vec2(80.0, 120.0);
    let second = heading.left_bottom() + egui::vec2(300.0, 300.0);
    let images = decoded_under_cursor(&mut harness, [first, second]);
    assert_eq!(images[0].len(), 784);
    let changed = images[0].iter().zip(&images[1]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(changed > 0.05, "the decoded image did not change between two latent points (max change {changed})");
    harness.get_by_label_contains("Decoded at z = (");
    // The ellipse of q(z|x) belongs to the input nearest the cursor while it is over the plane, and goes with it:
    // off the plot, the nearest input to where the cursor maps would be some outlier at the plane's edge.
    assert!(harness.state().vae_state().input_under_cursor().is_some(), "no ellipse under the cursor");
    harness.hover_at(heading.left_top() - egui::vec2(0.0, 30.0));
    harness.run_steps(2);
    assert_eq!(
        harness.state().vae_state().input_under_cursor(),
        None,
        "an ellipse stayed with the cursor off the plot"
    );
    // Click two inputs: the path between their latent means is decoded. In a short window it is under the
    // window's foot, and comes into view (the page scrolls to it) as it shows.
    let short = 600.0;
    harness.set_size(egui::vec2(1280.0, short));
    harness.run_steps(3);
    let heading = harness.get_by_label_contains("Encoder means of every input").rect();
    for at in [heading.left_bottom() + egui::vec2(80.0, 120.0), heading.left_bottom() + egui::vec2(300.0, 300.0)] {
        click_at(&mut harness, at);
    }
    wait_until(&mut harness, "the interpolation", |app| app.vae_state().has_path());
    harness.run_steps(3);
    let title = harness.get_by_label_contains("Interpolation from").rect();
    let below = short - title.bottom();
    // The strip of ten images under the title is a tenth of its width high (60 points at most), then its buttons.
    assert!(title.top() > 0.0 && below > 80.0, "the path is out of view: its title at {title:?}");
    harness.set_size(egui::vec2(1280.0, 800.0));
    harness.run_steps(3);
    harness.get_by_label("Reconstructions").click();
    harness.run_steps(3);
    harness.get_by_label("16 test images");
}

/// While a run trains, the latent scatter shows the first inputs only (the view thread's light pass); they keep
/// their digits' colours, so a student watches the classes part as the model learns, not one colour until the end.
#[test]
fn while_the_vae_trains_its_latent_scatter_is_coloured_by_digit() {
    use egui::accesskit::Role;
    let mut harness = harness();
    harness.get_by_label("VAE").click();
    harness.run_steps(2);
    // Long enough that the run is still training when its first light pass comes.
    harness.state_mut().vae_state_mut().config.epochs = 500;
    harness.get_by_label("Train").click();
    wait_until(&mut harness, "the light pass's latent means", |app| {
        let vae = app.vae_state();
        let all = vae.inputs().0.len() / 784;
        vae.latents().is_some_and(|l| l.mu.len() / 2 < all)
    });
    harness.run_steps(2);
    harness.get_by_label_contains("While training: the first 1,000 of 5,000");
    for digit in ["0", "3", "9"] {
        assert!(
            harness.query_by_role_and_label(Role::CheckBox, digit).is_some(),
            "the live scatter's legend does not name the digit {digit}"
        );
    }
    assert!(harness.query_by_role_and_label(Role::CheckBox, "inputs").is_none(), "the live scatter is one colour");
}

/// The VAE's loss page says which of its curves are the weight average's (the VAE's default) and which the
/// steps' own; a run with the last step's weights as its model has no such line. Its heading gives the loss's
/// units: nats for the Bernoulli likelihood, the course's 1000 x squared error for the Gaussian.
#[test]
fn the_vae_loss_page_says_which_curves_are_the_weight_averages_and_in_what_units() {
    use bayes_explorer::models::vae::Likelihood;
    for (average, likelihood, heading) in [
        (Some(0.999), Likelihood::Bernoulli, "Nats per input"),
        (None, Likelihood::Gaussian, "Per input: 1000 x squared error + KL (nats up to a constant)"),
    ] {
        let mut harness = harness();
        harness.get_by_label("VAE").click();
        harness.run_steps(2);
        let config = &mut harness.state_mut().vae_state_mut().config;
        (config.hidden, config.epochs, config.weight_average, config.likelihood) = (vec![32], 3, average, likelihood);
        harness.get_by_label("Train").click();
        wait_until(&mut harness, "an epoch", |app| app.lab(Lab::Vae).snapshot.as_ref().is_some_and(|s| s.epoch >= 1));
        harness.get_by_label("Loss curves").click();
        harness.run_steps(3);
        assert!(harness.query_all_by_label_contains("reconstruction + beta KL (batches)").count() > 0, "the curves");
        let said = harness.query_by_label_contains("Every curve but the batches' is of the moving average").is_some();
        assert_eq!(said, average.is_some(), "weight average {average:?}");
        assert!(harness.query_by_label(heading).is_some(), "{likelihood:?}: the heading {heading:?}");
    }
}

#[test]
fn choosing_the_conv_vae_loads_the_course_settings_and_its_decoder_follows_the_cursor() {
    use bayes_explorer::models::vae::{Likelihood, VaeArch};
    let mut harness = harness();
    harness.get_by_label("VAE").click();
    harness.run_steps(2);
    harness.get_by_label("Architecture").click();
    harness.run_steps(2);
    harness.get_by_label("Convolutional (the course's)").click();
    harness.run_steps(2);
    let config = harness.state().vae_state().config.clone();
    assert_eq!(config.arch, VaeArch::Conv);
    assert_eq!((config.likelihood, config.batch_size, config.epochs), (Likelihood::Gaussian, 32, 30));
    assert!((config.learning_rate - 5e-4).abs() < 1e-12);
    harness.get_by_label_contains("32, 64, 64, 64");
    harness.state_mut().vae_state_mut().config.epochs = 1;
    harness.get_by_label("Train").click();
    // One epoch of 4,250 images takes about 20 s on two free cores; the other tests share them.
    wait_within(&mut harness, Duration::from_mins(6), "an epoch", |app| {
        app.lab(Lab::Vae).snapshot.as_ref().is_some_and(|s| s.epoch >= 1)
    });
    wait_until(&mut harness, "the latent means", |app| app.vae_state().has_latents());
    let at = harness.get_by_label_contains("Encoder means of every input").rect().left_bottom();
    let images = decoded_under_cursor(&mut harness, [at + egui::vec2(80.0, 120.0), at + egui::vec2(300.0, 300.0)]);
    assert_eq!(images[0].len(), 784);
    let changed = images[0].iter().zip(&images[1]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(changed > 0.05, "the conv decoder gave the same image at two latent points (max change {changed})");
}

/// Clicks each "Save image…" button on the page and waits for its PNG; returns the files' decoded images, by
/// name.
fn save_every_figure(
    harness: &mut Harness<'_, BayesExplorerApp>,
    folder: &std::path::Path,
) -> Vec<(String, image::RgbaImage)> {
    let buttons = harness.query_all_by_label("Save image…").count();
    assert!(buttons > 0, "the page has a \"Save image…\" button");
    for k in 0..buttons {
        let before = std::fs::read_dir(folder).unwrap().count();
        // A page that scrolls (the flow's stages, in a short window) shows the button first, as a user would.
        scroll_into_view(harness, |h| h.query_all_by_label("Save image…").nth(k).expect("the button").rect());
        harness.query_all_by_label("Save image…").nth(k).expect("the button").click();
        wait_until(harness, "the PNG", |app| {
            !app.run_file_busy() && std::fs::read_dir(folder).unwrap().count() > before
        });
    }
    let mut images: Vec<(String, image::RgbaImage)> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let decoded = image::open(&path).unwrap_or_else(|e| panic!("{name} is a PNG: {e}")).to_rgba8();
            (name, decoded)
        })
        .collect();
    images.sort_by(|a, b| a.0.cmp(&b.0));
    images
}

/// Turns the mouse wheel over the right-hand edge of the page until the widget whose rect `rect` gives is above the
/// status bar.
fn scroll_into_view(
    harness: &mut Harness<'_, BayesExplorerApp>,
    rect: impl Fn(&Harness<'_, BayesExplorerApp>) -> egui::Rect,
) {
    let size = harness.ctx.content_rect().size();
    scroll_into_view_over(harness, egui::pos2(size.x - 30.0, size.y - 120.0), rect);
}

/// Distinct colours in an image (a blank or uniform capture has one or two).
fn colours(image: &image::RgbaImage) -> usize {
    image.pixels().map(|p| p.0).collect::<std::collections::HashSet<_>>().len()
}

#[test]
fn save_image_writes_each_figure_as_drawn_to_a_png() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness();
    harness.state_mut().save_images_to(Some(dir.path().to_owned()));
    harness.get_by_label("Flow").click();
    harness.run_steps(3);
    // The data page: the two moons' scatter.
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    harness.state_mut().save_images_to(Some(data_dir.clone()));
    let saved = save_every_figure(&mut harness, &data_dir);
    assert_eq!(saved.len(), 1, "{:?}", saved.iter().map(|s| &s.0).collect::<Vec<_>>());
    let (name, scatter) = &saved[0];
    assert_eq!(name, "flow-y-vs-x.png");
    let message = harness.state().lab(Lab::Flow).message.clone().expect("a note").text;
    assert!(message.contains(&format!("({} x {} pixels)", scatter.width(), scatter.height())), "{message}");
    assert!(scatter.width() > 300 && scatter.height() > 300, "{} x {}", scatter.width(), scatter.height());
    assert!(scatter.width() < 1280 && scatter.height() < 800, "the plot, not the window");
    assert!(colours(scatter) > 20, "points, axes and labels: {} colours", colours(scatter));

    // A trained flow: the loss curves and the stage plot (with its density heat map).
    *harness.state_mut().flow_config_mut() = bayes_explorer::models::flow::FlowConfig {
        layers: 2,
        hidden: vec![16],
        epochs: 3,
        ..bayes_explorer::models::flow::FlowConfig::default()
    };
    harness.get_by_label("Train").click();
    wait_until(&mut harness, "the run", |app| {
        app.lab(Lab::Flow).worker_state == Some(bayes_explorer::train::WorkerState::Finished)
    });
    // The stage plot is drawn once the view thread has sent the stages, and its heat map once it has sent the
    // stage's grid (its line under the buttons names the grid's size and time).
    wait_for_label(&mut harness, " grid in ");
    let run_dir = dir.path().join("run");
    std::fs::create_dir(&run_dir).unwrap();
    harness.state_mut().save_images_to(Some(run_dir.clone()));
    let saved = save_every_figure(&mut harness, &run_dir);
    let names: Vec<&str> = saved.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, ["flow-generation-stage-0.png", "flow-loss.png"], "{names:?}");
    let loss = &saved[1].1;
    // The loss plot is drawn 90 to 150 points high (a fifth of the page under it), at one pixel per point here.
    assert!((90..=150).contains(&loss.height()), "the loss plot is {} pixels high", loss.height());
    assert!(colours(loss) > 10, "two curves, axes and a legend: {} colours", colours(loss));
    assert!(colours(&saved[0].1) > 50, "points and a heat map: {} colours", colours(&saved[0].1));
}

/// Steps the window until the flow's views show the run's final model in full (its points and a grid), at most a
/// minute: under load the full pass comes a while after the run has finished.
fn wait_for_final_flow_views(harness: &mut Harness<'_, BayesExplorerApp>) {
    let deadline = std::time::Instant::now() + Duration::from_mins(1);
    loop {
        let app = harness.state();
        let last = app
            .lab(Lab::Flow)
            .snapshot
            .as_ref()
            .and_then(|s| s.model.as_ref())
            .map(bayes_explorer::models::ModelView::step);
        let done = last.is_some()
            && app.flow_state().views_step() == last
            && harness.query_by_label_contains("While training:").is_none()
            && harness.query_by_label_contains(" grid in ").is_some();
        if done {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the final model's full views never came");
        std::thread::sleep(Duration::from_millis(20));
        harness.step();
    }
    harness.run_steps(3);
}

/// The stage plot's "Record animation…" (the loss curves' above it comes first).
fn stage_record_button<'h>(harness: &'h Harness<'_, BayesExplorerApp>) -> egui_kittest::Node<'h> {
    harness.query_all_by_label("Record animation…").last().expect("the stage plot's Record animation…")
}

/// The flow lab with a small flow (2 layers of 16 units) trained for `epochs` and its final views on show; images
/// and animations go to the returned folder. With `pause_once`, the run is paused once its first model after the
/// start has come (a pause publishes a model copy) and resumed, so that the run keeps at least three models however
/// fast the machine trains.
fn trained_small_flow(epochs: usize, pause_once: bool) -> (tempfile::TempDir, Harness<'static, BayesExplorerApp>) {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = harness();
    harness.state_mut().save_images_to(Some(dir.path().to_owned()));
    harness.get_by_label("Flow").click();
    harness.run_steps(3);
    *harness.state_mut().flow_config_mut() = bayes_explorer::models::flow::FlowConfig {
        layers: 2,
        hidden: vec![16],
        epochs,
        ..bayes_explorer::models::flow::FlowConfig::default()
    };
    harness.get_by_label("Train").click();
    if pause_once {
        wait_until(&mut harness, "a model after the start", |app| {
            app.flow_state().scrubber.history.entries().last().is_some_and(|e| e.step > 0)
        });
        harness.get_by_label("Pause").click();
        wait_until(&mut harness, "the pause", |app| {
            app.lab(Lab::Flow).worker_state == Some(bayes_explorer::train::WorkerState::Paused)
        });
        harness.get_by_label("Resume").click();
    }
    wait_within(&mut harness, Duration::from_mins(3), "the run", |app| {
        app.lab(Lab::Flow).worker_state == Some(bayes_explorer::train::WorkerState::Finished)
    });
    wait_for_final_flow_views(&mut harness);
    (dir, harness)
}

#[test]
fn record_animation_writes_the_stage_plot_through_the_stages_either_way() {
    let (dir, mut harness) = trained_small_flow(3, false);
    let record = |harness: &mut Harness<'_, BayesExplorerApp>, from: usize, to: usize| {
        scroll_into_view(harness, |h| stage_record_button(h).rect());
        stage_record_button(harness).click();
        harness.run_steps(2);
        assert!(harness.query_all_by_label_contains("Stage 0 is the Gaussian, stage 2 the data").next().is_some());
        let recorder = &mut harness.state_mut().flow_state_mut().recorder;
        (recorder.from, recorder.to, recorder.frames_per_stage) = (from, to, 2);
        recorder.format = bayes_explorer::ui::animation_file::AnimationFormat::Apng;
        harness.run_steps(2);
        assert!(harness.query_all_by_label_contains("5 frames of").next().is_some(), "the window counts the frames");
        harness.get_by_label("Record").click();
        let name = format!("flow-generation-stages-{from}-to-{to}.png");
        let path = dir.path().join(&name);
        wait_until(harness, &name, |app| !app.run_file_busy() && path.exists() && !app.flow_state().recorder.busy());
        let message = harness.state().lab(Lab::Flow).message.clone().expect("a note").text;
        assert!(message.contains("Saved the animation (5 frames of"), "{message}");
        assert!(harness.query_by_label("Record").is_none(), "the window closes once the file is written");
        decode_apng(&path)
    };
    let (forward, size) = record(&mut harness, 0, 2);
    assert_eq!(forward.len(), 5, "stages 0, 0.5, 1, 1.5, 2");
    assert!(size[0] > 300 && size[1] > 300 && size[0] < 1280 && size[1] < 800, "the plot, not the window: {size:?}");
    for (k, pair) in forward.windows(2).enumerate() {
        let share = differing(&pair[0], &pair[1]);
        assert!(share > 0.01, "frames {k} and {} differ in {share:.4} of their pixels", k + 1);
    }
    assert_eq!(harness.state().flow_state().stage(), 2, "the step-through is left on the last frame's stage");
    // Backwards, after the note of the first file (the page's layout, and so the plot's height, may differ).
    let (backward, _) = record(&mut harness, 2, 0);
    assert_eq!(backward.len(), 5);
    assert!(backward.windows(2).all(|pair| differing(&pair[0], &pair[1]) > 0.01), "every frame moves on");
    assert_eq!(harness.state().flow_state().stage(), 0, "the last frame shows stage 0, the Gaussian");
}

/// Presenter mode's light theme: the flow's warped grid is drawn dark where no heat map lies under it. It was drawn
/// light grey, as over a dark background, and vanished on the light one.
#[test]
fn the_warped_grid_shows_on_a_light_background() {
    let (dir, mut harness) = trained_small_flow(3, false);
    harness.ctx.set_theme(egui::Theme::Light);
    harness.get_by_label("none").click();
    harness.state_mut().flow_state_mut().show_points = false;
    harness.run_steps(3);
    // The stage plot with its warped grid, then without: the grid's share of dark pixels.
    let mut dark_pixels = |grid: bool| {
        harness.state_mut().flow_state_mut().show_grid = grid;
        harness.run_steps(3);
        let folder = dir.path().join(if grid { "with-grid" } else { "without" });
        std::fs::create_dir(&folder).unwrap();
        harness.state_mut().save_images_to(Some(folder.clone()));
        let saved = save_every_figure(&mut harness, &folder);
        let (_, stage) = saved.iter().find(|(name, _)| name.starts_with("flow-generation-stage")).expect("the stages");
        let dark = stage.pixels().filter(|p| u32::from(p.0[0]) + u32::from(p.0[1]) + u32::from(p.0[2]) < 3 * 190);
        dark.count() as f64 / f64::from(stage.width() * stage.height())
    };
    let (with, without) = (dark_pixels(true), dark_pixels(false));
    assert!(with > without + 0.01, "the grid adds dark pixels: {with:.4} of the plot with it, {without:.4} without");
}

#[test]
fn the_epoch_scrubber_puts_the_flows_views_back_and_records_them_over_the_training() {
    use bayes_explorer::ui::record::RecordMode;
    // The first model, one at the pause and the final one at least (more on a slower machine: a copy every 0.4 s).
    let (dir, mut harness) = trained_small_flow(1500, true);
    let steps: Vec<u64> = harness.state().flow_state().scrubber.history.entries().iter().map(|e| e.step).collect();
    assert!(steps.len() >= 3, "models kept: {steps:?}");
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "oldest first: {steps:?}");
    let last = *steps.last().unwrap();
    assert_eq!(harness.state().flow_state().views_step(), Some(last), "the latest model on show");
    // The scrubber's label, then a model of the middle of the run on show in every view.
    harness.get_by_label_contains("the latest");
    let middle = steps[steps.len() / 2];
    harness.state_mut().flow_state_mut().scrubber.step = Some(middle);
    wait_until(&mut harness, "the scrubbed model's views", |app| app.flow_state().views_step() == Some(middle));
    wait_for_label(&mut harness, "every view shows this model");
    assert!(harness.state().flow_state().scrubbed_epoch().is_some_and(|e| e > 0.0 && e < 1500.0));
    harness.get_by_label("Latest").click();
    wait_until(&mut harness, "the latest model again", |app| app.flow_state().views_step() == Some(last));
    assert!(harness.state().flow_state().scrubber.step.is_none());

    // Record the data stage over the training, one frame per model kept.
    harness.state_mut().flow_state_mut().show_stage(2);
    harness.run_steps(3);
    scroll_into_view(&mut harness, |h| stage_record_button(h).rect());
    stage_record_button(&harness).click();
    harness.run_steps(2);
    let recorder = &mut harness.state_mut().flow_state_mut().recorder;
    recorder.mode = RecordMode::Epochs;
    recorder.epochs = (0.0, f64::INFINITY);
    recorder.format = bayes_explorer::ui::animation_file::AnimationFormat::Apng;
    harness.run_steps(2);
    harness.get_by_label("Record").click();
    let found = |dir: &std::path::Path| {
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().contains("-epochs-"))
    };
    wait_within(&mut harness, Duration::from_mins(2), "the animation over the epochs", |app| {
        !app.run_file_busy() && !app.flow_state().recorder.busy() && found(dir.path()).is_some()
    });
    let path = found(dir.path()).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("flow-generation-stage-2-epochs-0-to-"), "{name}");
    let (frames, _) = decode_apng(&path);
    let kept = harness.state().flow_state().scrubber.history.entries().len();
    assert_eq!(frames.len(), kept, "one frame per model kept");
    for (k, pair) in frames.windows(2).enumerate() {
        let share = differing(&pair[0], &pair[1]);
        assert!(share > 0.001, "frames {k} and {} differ in {share:.4} of their pixels", k + 1);
    }
}
