//! Issue 23, guided tours: each lab's built-in tour walked to its end through **Do it** and by hand (the window's
//! own buttons, each step marked done by its check), the flow's also by the keys (Right and Page Down do a step,
//! then go on; Left goes back); the Lecture menu starts a tour, the welcome offers one of each lab, a step with a
//! check cannot be skipped before it is done, and a step's hidden control groups leave the side panel while it is
//! on show.

use bayes_explorer::Lab;
use bayes_explorer::ui::tour::ControlGroup;
use bayes_explorer::ui::{BayesExplorerApp, Settings};
use egui::Key;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use crate::common::{harness_for, wait_until};

fn app_on(lab: Lab) -> Harness<'static, BayesExplorerApp> {
    harness_for(BayesExplorerApp::new(egui::Context::default(), Settings { tab: lab, ..Settings::default() }))
}

/// The flow lab with a smaller flow than the default, which keeps a test short; a tour's steps are the same.
fn small_flow() -> Harness<'static, BayesExplorerApp> {
    let mut harness = app_on(Lab::Flow);
    *harness.state_mut().flow_config_mut() = bayes_explorer::models::flow::FlowConfig {
        hidden: vec![32, 32],
        ..bayes_explorer::models::flow::FlowConfig::default()
    };
    harness
}

/// Starts the tour of `lab` from the Lecture menu.
fn start_from_menu(harness: &mut Harness<'_, BayesExplorerApp>, lab: Lab) {
    harness.get_by_label("Lecture").click();
    harness.run_steps(2);
    let title = harness.state().tours().iter().find(|t| t.lab == lab).expect("a tour of the lab").title.clone();
    harness.get_by_label_contains(&format!("Tour: {title}")).click();
    harness.run_steps(2);
    let tour = harness.state().tour().expect("the tour started");
    assert_eq!((tour.tour.lab, tour.step), (lab, 0));
    assert_eq!(harness.state().settings.tab, lab, "the tour opens its lab");
}

fn step(app: &BayesExplorerApp) -> usize {
    app.tour().map_or(usize::MAX, |t| t.step)
}

/// Waits until the step on show is done (its check holds; a step without one is done when read), then goes on
/// with Next step (or Finish).
fn wait_done_and_go_on(harness: &mut Harness<'_, BayesExplorerApp>) {
    let at = step(harness.state());
    if harness.state().tour().is_some_and(|t| t.current().check.is_some()) {
        wait_until(harness, &format!("step {} to be done", at + 1), |app| app.tour().is_some_and(|t| t.done[t.step]));
        harness.get_by_label("Done");
    }
    let last = harness.state().tour().is_some_and(|t| t.step + 1 == t.tour.steps.len());
    let row = harness.get_by_label("End tour").rect().top();
    harness.get_by_label(if last { "Finish" } else { "Next step >" }).click();
    harness.run_steps(2);
    if last {
        assert!(harness.state().tour().is_none(), "Finish ends the tour");
    } else {
        assert_eq!(step(harness.state()), at + 1, "Next step goes on");
        // The buttons sit on the panel's foot: they stay where they are under the pointer, whatever the step's
        // length (along its top, a shorter step moved them down a line or more, so that a second click on Next step
        // missed).
        harness.run_steps(1);
        let now = harness.get_by_label("End tour").rect().top();
        assert!((now - row).abs() < 0.5, "the tour's buttons moved from y = {row} to {now} at step {}", at + 2);
    }
}

/// Walks the tour on show to its end: Do it where the step has an action, Next step where it only narrates.
fn walk_by_do_it(harness: &mut Harness<'_, BayesExplorerApp>) {
    while let Some(current) = harness.state().tour().map(|t| t.current().clone()) {
        // The step's hidden groups are out of the side panel, the others in it.
        harness.run_steps(1);
        let shown = |label: &str| harness.query_by_label(label).is_some();
        assert_eq!(!shown("Load CSV…"), current.hidden.contains(&ControlGroup::Dataset), "{}: dataset", current.title);
        assert_eq!(!shown("Settings"), current.hidden.contains(&ControlGroup::Settings), "{}: settings", current.title);
        assert_eq!(!shown("Save run…"), current.hidden.contains(&ControlGroup::Files), "{}: files", current.title);
        let tour = harness.state().tour().expect("the tour").clone();
        if current.action.is_some() {
            if current.check.is_some() && !tour.done[tour.step] {
                let next = if tour.step + 1 == tour.tour.steps.len() { "Finish" } else { "Next step >" };
                assert!(
                    harness.get_by_label(next).accesskit_node().is_disabled(),
                    "'{}' cannot be skipped before it is done",
                    current.title
                );
            }
            // Through AccessKit's click: the harness's pointer click on the button that takes the place of the
            // Next step just clicked is lost (a real click there works: looked at under Xvfb).
            harness.get_by_label("Do it").click_accesskit();
            harness.run_steps(2);
        }
        wait_done_and_go_on(harness);
    }
}

#[test]
fn ux_each_labs_tour_walks_to_its_end_through_do_it() {
    for lab in Lab::ALL {
        let mut harness = if lab == Lab::Flow { small_flow() } else { app_on(lab) };
        start_from_menu(&mut harness, lab);
        walk_by_do_it(&mut harness);
        assert!(harness.query_by_label("End tour").is_none(), "the tour's panel is gone");
    }
}

#[test]
fn ux_the_flows_tour_walks_to_its_end_by_hand() {
    let mut harness = small_flow();
    start_from_menu(&mut harness, Lab::Flow);
    // 1: narration only.
    wait_done_and_go_on(&mut harness);
    // 2: train with the side panel's Train; done at epoch 5.
    assert!(harness.get_by_label("Next step >").accesskit_node().is_disabled(), "not before it is done");
    harness.get_by_label("Train").click();
    wait_done_and_go_on(&mut harness);
    // 3: the side panel's Pause.
    harness.get_by_label("Pause").click();
    wait_done_and_go_on(&mut harness);
    // 4-6: stages 1, 3 and 6 by the step-through's Next > (in a tour the arrows walk the tour's steps).
    for clicks in [1, 2, 3] {
        for _ in 0..clicks {
            harness.get_by_label("Next >").click();
            harness.run_steps(2);
        }
        wait_done_and_go_on(&mut harness);
    }
    // 7: the direction's menu.
    harness.get_by_label("Direction").click();
    harness.run_steps(2);
    harness.get_by_label("inference: data -> Gaussian").click();
    harness.run_steps(2);
    wait_done_and_go_on(&mut harness);
    // 8 and 9: the pages' tabs; Finish ends the tour.
    for tab in ["Data and latent space (Keras figure)", "The 1-D picture"] {
        // The page settles first: the tour's panel took its new step's height, and the loss curves' height follows
        // the page's, so the tabs move for a frame or two.
        harness.run_steps(3);
        harness.get_by_label(tab).click();
        harness.run_steps(2);
        wait_done_and_go_on(&mut harness);
    }
    assert!(harness.state().tour().is_none());
}

/// Walks the tour on show by hand: `train` with the side panel's Train and waits for the step's epochs, then each
/// later step by clicking the tab it names.
fn walk_by_hand(harness: &mut Harness<'_, BayesExplorerApp>, tabs: &[&str]) {
    // 1: narration only.
    wait_done_and_go_on(harness);
    // 2: the side panel's Train; the step waits for its epochs.
    assert!(harness.get_by_label("Next step >").accesskit_node().is_disabled(), "not before it is done");
    harness.get_by_label("Train").click();
    wait_done_and_go_on(harness);
    for tab in tabs {
        // The weights page's Show menu.
        if let Some(option) = tab.strip_prefix("Show: ") {
            harness.get_by_label("Show").click();
            harness.run_steps(2);
            harness.get_by_label(option).click();
            harness.run_steps(2);
            wait_done_and_go_on(harness);
            continue;
        }
        // The tab, not the step's title of the same words in the tour's panel.
        let tab_node =
            harness.query_all_by_label(tab).find(|n| n.accesskit_node().role() != egui::accesskit::Role::Label);
        tab_node.unwrap_or_else(|| panic!("no tab {tab}")).click();
        harness.run_steps(2);
        wait_done_and_go_on(harness);
    }
    assert!(harness.state().tour().is_none(), "the tour ended");
}

/// A step not done yet can be skipped: the lecturer who keeps the run on show, rather than discard it to train again,
/// goes on; the skipped step stays not done, and Back returns to it.
#[test]
fn ux_a_tour_step_not_done_can_be_skipped() {
    let mut harness = app_on(Lab::Bnn);
    start_from_menu(&mut harness, Lab::Bnn);
    wait_done_and_go_on(&mut harness);
    // 2: train, not done.
    assert!(harness.get_by_label("Next step >").accesskit_node().is_disabled(), "not before it is done");
    // The narration's panel takes the new step's height a frame or two late, which moves the page above it.
    harness.run_steps(3);
    harness.get_by_label("Skip").click();
    harness.run_steps(2);
    assert_eq!(step(harness.state()), 2, "Skip goes on");
    assert!(!harness.state().tour().expect("the tour").done[1], "the skipped step stays not done");
    assert!(harness.state().lab(Lab::Bnn).worker_state.is_none(), "and nothing trained");
    // 3 opens a page: done when read, so nothing to skip.
    assert!(harness.query_by_label("Skip").is_none(), "a step that is done has no Skip");
    harness.get_by_label("< Back").click();
    harness.run_steps(2);
    assert_eq!(step(harness.state()), 1, "Back returns to the skipped step");
    harness.get_by_label("Not done yet");
}

#[test]
fn ux_the_bnns_tour_walks_to_its_end_by_hand() {
    let mut harness = app_on(Lab::Bnn);
    start_from_menu(&mut harness, Lab::Bnn);
    walk_by_hand(
        &mut harness,
        &["Weight distributions", "Show: posterior standard deviations", "Predictions", "Compare runs", "VI vs NUTS"],
    );
}

#[test]
fn ux_the_vaes_tour_walks_to_its_end_by_hand() {
    let mut harness = app_on(Lab::Vae);
    start_from_menu(&mut harness, Lab::Vae);
    walk_by_hand(&mut harness, &["Latent space", "Reconstructions", "Samples from the prior", "Loss curves"]);
}

#[test]
fn ux_in_a_tour_right_and_page_down_do_each_step_then_go_on_and_left_goes_back() {
    let mut harness = small_flow();
    start_from_menu(&mut harness, Lab::Flow);
    // Right on a step without an action goes on; Left comes back; Page Down and Page Up do the same.
    harness.key_press(Key::ArrowRight);
    harness.run_steps(1);
    assert_eq!(step(harness.state()), 1);
    harness.key_press(Key::ArrowLeft);
    harness.run_steps(1);
    assert_eq!(step(harness.state()), 0);
    harness.key_press(Key::PageDown);
    harness.run_steps(1);
    assert_eq!(step(harness.state()), 1);
    harness.key_press(Key::PageUp);
    harness.run_steps(1);
    assert_eq!(step(harness.state()), 0, "Page Up goes back");
    harness.key_press(Key::PageDown);
    harness.run_steps(1);
    assert_eq!(step(harness.state()), 1);
    // Step 2 trains: the first key does it, the next ones wait for its epochs, then go on.
    harness.key_press(Key::ArrowRight);
    harness.run_steps(2);
    assert!(harness.state().lab(Lab::Flow).worker_state.is_some(), "Right did the step: a run started");
    harness.key_press(Key::ArrowRight);
    harness.run_steps(1);
    assert_eq!(step(harness.state()), 1, "not on before its epochs");
    let mut last = 1;
    // Then the rest by Page Down alone: a key on a step not done does its action (or the step waits for its
    // check, as for the epochs), the next key goes on.
    while harness.state().tour().is_some() {
        harness.key_press(Key::PageDown);
        harness.run_steps(2);
        let now = step(harness.state());
        if now == usize::MAX {
            break;
        }
        if now != last {
            assert_eq!(now, last + 1, "one step at a time");
            last = now;
            continue;
        }
        wait_until(&mut harness, &format!("step {} to be done", now + 1), |app| {
            app.tour().is_none_or(|t| t.done[t.step] || t.current().check.is_none())
        });
    }
    assert_eq!(harness.state().flow_state().page, bayes_explorer::ui::flow::FlowPage::Line, "the last step's page");
    assert_eq!(last, 8, "the tour's nine steps were walked");
}

#[test]
fn ux_the_welcome_offers_a_tour_of_each_lab_and_closes_for_good() {
    let mut harness = app_on(Lab::Bnn);
    harness.state_mut().open_welcome();
    harness.run_steps(2);
    harness.get_by_label("Welcome to bayes-explorer");
    for lab in Lab::ALL {
        let title = harness.state().tours().iter().find(|t| t.lab == lab).expect("a tour").title.clone();
        harness.get_by_label(&format!("Tour: {title}"));
    }
    let vae_title = harness.state().tours().iter().find(|t| t.lab == Lab::Vae).expect("a tour").title.clone();
    harness.get_by_label(&format!("Tour: {vae_title}")).click();
    harness.run_steps(2);
    assert!(!harness.state().welcome_is_open());
    assert!(harness.state().settings.welcomed, "the welcome does not come back at the next launch");
    assert_eq!(harness.state().tour().map(|t| t.tour.lab), Some(Lab::Vae));
    assert_eq!(harness.state().settings.tab, Lab::Vae);
    harness.get_by_label("End tour").click();
    harness.run_steps(2);
    assert!(harness.state().tour().is_none());
}
