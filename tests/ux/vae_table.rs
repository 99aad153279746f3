//! A VAE trained on a table (the red wine's eleven features) rather than images: the latent page decodes the point
//! under the cursor into the features, named, beside the input nearest it, and the path between two picked inputs
//! feature by feature; the Reconstructions page gives each feature's error and the test rows in the data's units;
//! the prior's draws are decoded into the data's space over the training rows, on features the user picks. Before,
//! the two pages said only that they draw images, and the latent page drew unnamed bars under a manifold's title.

use bayes_explorer::Lab;
use bayes_explorer::train::vae_view::TABLE_PRIOR_SAMPLES;
use bayes_explorer::ui::{BayesExplorerApp, figure_rect};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use crate::common::{click_at, harness, wait_for_label, wait_until};
use crate::settings::load_builtin;

fn open(harness: &mut Harness<'_, BayesExplorerApp>, label: &str) {
    harness.get_by_role_and_label(Role::Button, label).click();
    harness.run_steps(3);
}

#[test]
fn ux_a_vae_on_a_table_decodes_reconstructs_and_samples_its_features_by_name() {
    let mut harness = harness();
    open(&mut harness, "VAE");
    assert!(harness.query_by_label("Manifold cells per side").is_some(), "the digits' manifold has a grid");
    load_builtin(&mut harness, Lab::Vae, "Wine quality, red (UCI)");
    assert!(harness.query_by_label("Manifold cells per side").is_none(), "a table has no manifold to size");
    let config = &mut harness.state_mut().vae_state_mut().config;
    (config.hidden, config.epochs) = (vec![16], 2);
    harness.get_by_label("Train").click();
    // The last model's means of every input: before them the plane shows the light pass of an earlier model, and
    // the page may still change under the clicks below as the run ends.
    wait_until(&mut harness, "the last model's latent means", |app| app.vae_state().has_final_latents());
    wait_for_label(&mut harness, "Decoded at the cursor: the features");
    assert_eq!(harness.query_all_by_label_contains("Decoded manifold").count(), 0, "no manifold for a table");

    // The point under the cursor, decoded into the features, beside the input nearest it.
    let heading = harness.get_by_label_contains("Encoder means of every input").rect();
    let (first, second) =
        (heading.left_bottom() + egui::vec2(120.0, 150.0), heading.left_bottom() + egui::vec2(260.0, 260.0));
    harness.hover_at(first);
    wait_until(&mut harness, "the decoded features", |app| app.vae_state().hover_image().is_some());
    wait_for_label(&mut harness, "Decoded at z = (");
    assert_eq!(harness.state().vae_state().hover_image().map(<[f32]>::len), Some(11), "the eleven features");
    harness.get_by_label("bars: decoded at the cursor");
    harness.get_by_label_contains(", nearest the cursor");
    assert!(figure_rect(&harness.ctx, "vae-decoded-features").is_some(), "the decoded features' figure");

    // Two inputs picked: the path between them, feature by feature, each named in the key.
    for at in [first, second] {
        click_at(&mut harness, at);
    }
    assert_eq!(harness.state().vae_state().picked().len(), 2, "two inputs picked");
    wait_until(&mut harness, "the path", |app| app.vae_state().has_path());
    harness.run_steps(2);
    harness.get_by_label_contains("Decoded along the straight path from");
    for name in ["fixed acidity", "alcohol"] {
        harness.get_by_label(name);
    }

    // The test rows in the data's units, each over its reconstruction.
    open(&mut harness, "Reconstructions");
    wait_for_label(&mut harness, "The first 16 test rows and decoder(encoder mean)");
    assert_eq!(harness.query_all_by_label("reconstructed").count(), 16, "a reconstruction under each of 16 rows");
    harness.get_by_label("free\nsulfur\ndioxide");
    let (_, prepared) = harness.state().vae_state().inputs();
    let prepared = prepared.expect("the wine").clone();
    // The first test row as the data writes it (the red wine's 7.4, 0.700, …), not standardised, each feature to the
    // precision it was recorded to: the volatile acidity to three decimals (its 0.635 among its 0.70s).
    let decimals = harness.state().vae_state().feature_decimals().to_vec();
    let volatile = prepared.feature_names.iter().position(|n| n == "volatile acidity").expect("volatile acidity");
    assert_eq!((decimals.len(), decimals[volatile]), (prepared.n_features(), 3));
    for (j, &p) in decimals.iter().enumerate() {
        let value = f64::from(prepared.x_test[j] * prepared.feature_scale[j] + prepared.feature_mean[j]);
        let shown = harness.query_all_by_label(&format!("{value:.p$}")).next().is_some();
        assert!(shown, "feature {} of the first test row ({value:.p$}) is not shown", prepared.feature_names[j]);
    }
    assert!(figure_rect(&harness.ctx, "vae-reconstructions").is_some(), "each feature's error");

    // The prior's draws, decoded into the data's space, on two features the user picks.
    open(&mut harness, "Samples from the prior");
    wait_for_label(&mut harness, &format!("{TABLE_PRIOR_SAMPLES} draws z ~ N(0, I) decoded"));
    assert_eq!(harness.state().vae_state().prior_draws().map(<[f32]>::len), Some(TABLE_PRIOR_SAMPLES * 11));
    assert!(figure_rect(&harness.ctx, "vae-prior").is_some(), "the draws over the training rows");
    assert_eq!(harness.state().vae_state().feature_axes(), (0, 1));
    harness.get_by_label("y").click();
    harness.run_steps(3);
    harness.get_by_label("density").click();
    harness.run_steps(3);
    assert_eq!(harness.state().vae_state().feature_axes(), (0, 7), "the density on the y axis");
}
