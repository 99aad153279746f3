//! `bayes-explorer bench window LAB`: how fast a lab trains in the window, with its busiest page open and drawn,
//! against the same run with no window at all. Both runs are the app's own: the same defaults, data, trainer
//! factory and worker as the Train button's (only the epochs are raised so that no run ends inside the
//! measurement); the headless one is the app with no frames drawn.
//!
//! The figures: epochs a second in each and their ratio, frames a second, the UI thread's time per frame (mean,
//! 95th percentile, largest; what eframe measures), the longest wait between two frames while the run trains, and
//! how often the views showed a newer model. Reported, never asserted.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::Lab;
use crate::train::WorkerState;
use crate::ui::app::{BayesExplorerApp, Settings};
use crate::ui::thread_cpu::{ThreadCores, ThreadTimes, cores_by_kind, thread_cpu_seconds};

/// Epochs a benchmarked run is set to, so that it cannot end while it is measured.
const BENCH_EPOCHS: usize = 100_000;

/// What to measure.
#[derive(Clone, Debug)]
pub struct WindowBenchPlan {
    /// The lab.
    pub lab: Lab,
    /// The page to keep open (its tab's label, any case); `None` for the lab's busiest.
    pub page: Option<String>,
    /// Seconds measured in each of the two runs.
    pub seconds: f64,
    /// Seconds a run trains before it is measured (the first steps allocate, the views start).
    pub warmup: f64,
}

/// The figures of one lab.
#[derive(Clone, Debug, Serialize)]
pub struct WindowBenchReport {
    /// The lab's tab.
    pub lab: String,
    /// The page that was open.
    pub page: String,
    /// Seconds measured in each run.
    pub seconds: f64,
    /// Epochs a second with no window: the mean of the two runs below.
    pub headless_epochs_per_second: f64,
    /// Epochs a second with no window, before and after the window's run.
    pub headless_before_after: [f64; 2],
    /// Epochs a second with the window drawing the page.
    pub window_epochs_per_second: f64,
    /// `window / headless` (against the mean of before and after).
    pub ratio: f64,
    /// Frames drawn a second.
    pub frames_per_second: f64,
    /// The UI thread's milliseconds per frame: mean, 95th percentile, largest.
    pub ui_ms_mean: f64,
    /// See [`Self::ui_ms_mean`].
    pub ui_ms_p95: f64,
    /// See [`Self::ui_ms_mean`].
    pub ui_ms_max: f64,
    /// The longest time between two frames, in milliseconds, when nothing but the run asks for one.
    pub longest_frame_gap_ms: f64,
    /// Milliseconds from a wake-up (as an input event gives) to the start of the frame that answers it: the
    /// 95th percentile and the largest over probes every 0.4 s at random moments.
    pub wake_ms_p95: f64,
    /// See [`Self::wake_ms_p95`].
    pub wake_ms_max: f64,
    /// Times a second the views showed a newer model.
    pub view_updates_per_second: f64,
    /// What drew the window.
    pub renderer: String,
    /// The cores each kind of thread kept busy while the window's run was measured, busiest first (empty where
    /// the system does not say: only Linux does).
    pub cores: Vec<ThreadCores>,
}

impl WindowBenchReport {
    /// The report with the headless rates measured `before` and `after` the window's run.
    #[must_use]
    pub fn against_headless(self, before: f64, after: f64) -> Self {
        let mean = 0.5 * (before + after);
        Self {
            headless_epochs_per_second: mean,
            headless_before_after: [before, after],
            ratio: self.window_epochs_per_second / mean,
            ..self
        }
    }

    /// The report as a Markdown table row (see [`Self::TABLE_HEADER`]).
    #[must_use]
    pub fn table_row(&self) -> String {
        format!(
            "| {} | {} | {:.2} ({:.2}, {:.2}) | {:.2} | {:.0} % | {:.1} | {:.1} / {:.1} / {:.1} | {:.0} / {:.0} | {:.1} |",
            self.lab,
            self.page,
            self.headless_epochs_per_second,
            self.headless_before_after[0],
            self.headless_before_after[1],
            self.window_epochs_per_second,
            100.0 * self.ratio,
            self.frames_per_second,
            self.ui_ms_mean,
            self.ui_ms_p95,
            self.ui_ms_max,
            self.wake_ms_p95,
            self.wake_ms_max,
            self.view_updates_per_second,
        )
    }

    /// The header of [`Self::table_row`].
    pub const TABLE_HEADER: &'static str = "| lab | page | epochs/s headless (before, after) | epochs/s in the window | ratio | frames/s | UI ms per frame (mean / p95 / max) | ms from a wake-up to its frame (p95 / max) | view updates/s |\n|---|---|---|---|---|---|---|---|---|";
}

/// Where a benchmarked run stands.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Waiting for the lab's data.
    Loading,
    /// Training, not yet measured.
    Warming { since: Instant },
    /// Measured since `since`, at `step`.
    Measuring { since: Instant, step: u64 },
    /// Measured; the window is closing.
    Done,
}

/// The benchmark's driver inside the app: starts the run, then counts frames until the time is up.
pub(crate) struct WindowBench {
    plan: WindowBenchPlan,
    renderer: String,
    phase: Phase,
    /// Per frame while measuring: when it began and the UI thread's seconds of the frame before it.
    frames: Vec<(Instant, f32)>,
    views_step: Option<u64>,
    view_updates: usize,
    /// Wake-ups asked for from another thread and not yet answered by a frame, and the answered ones' waits.
    wakes: Arc<Mutex<Vec<Instant>>>,
    /// Each thread's CPU seconds when the measurement began.
    cpu_before: ThreadTimes,
    wake_ms: Vec<f64>,
    prober: Option<std::thread::JoinHandle<()>>,
    out: Arc<Mutex<Option<Result<WindowBenchReport, String>>>>,
}

/// The report when the window has closed, or why there is none.
pub type ReportSlot = Arc<Mutex<Option<Result<WindowBenchReport, String>>>>;

impl WindowBench {
    /// A driver for `plan` in a window drawn as `renderer` says, writing its report into `out`.
    pub(crate) fn new(plan: WindowBenchPlan, renderer: String, out: ReportSlot) -> Self {
        Self {
            plan,
            renderer,
            phase: Phase::Loading,
            frames: Vec::new(),
            views_step: None,
            view_updates: 0,
            wakes: Arc::new(Mutex::new(Vec::new())),
            cpu_before: ThreadTimes::new(),
            wake_ms: Vec::new(),
            prober: None,
            out,
        }
    }

    /// Called at the start of every frame with the UI thread's seconds of the previous one.
    pub(crate) fn frame(&mut self, app: &mut BayesExplorerApp, ctx: &egui::Context, previous_frame: Option<f32>) {
        let lab = self.plan.lab;
        match self.phase {
            Phase::Loading => match start(app, &self.plan, ctx) {
                Ok(true) => self.phase = Phase::Warming { since: Instant::now() },
                Ok(false) => {}
                Err(why) => self.finish(Err(why), ctx),
            },
            Phase::Warming { since } => {
                if let Some(why) = failed(app, lab) {
                    return self.finish(Err(why), ctx);
                }
                if since.elapsed().as_secs_f64() >= self.plan.warmup
                    && let Some(step) = training_step(app, lab)
                {
                    self.views_step = app.lab(lab).views_step();
                    let until = Instant::now() + Duration::from_secs_f64(self.plan.seconds);
                    self.prober = spawn_prober(ctx.clone(), Arc::clone(&self.wakes), until);
                    self.cpu_before = thread_cpu_seconds();
                    self.phase = Phase::Measuring { since: Instant::now(), step };
                }
            }
            Phase::Measuring { since, step } => {
                if let Some(why) = failed(app, lab) {
                    return self.finish(Err(why), ctx);
                }
                let now = Instant::now();
                self.frames.push((now, previous_frame.unwrap_or(0.0)));
                let answered: Vec<Instant> =
                    std::mem::take(&mut *self.wakes.lock().unwrap_or_else(PoisonError::into_inner));
                self.wake_ms.extend(answered.iter().map(|&t| now.saturating_duration_since(t).as_secs_f64() * 1000.0));
                let shown = app.lab(lab).views_step();
                if shown != self.views_step {
                    self.view_updates += 1;
                    self.views_step = shown;
                }
                let elapsed = since.elapsed().as_secs_f64();
                if elapsed >= self.plan.seconds {
                    let steps_per_epoch = steps_per_epoch(app, lab);
                    let now_step = training_step(app, lab).unwrap_or(step);
                    let epochs = now_step.saturating_sub(step) as f64 / steps_per_epoch;
                    let report = self.report(app, epochs / elapsed, elapsed);
                    self.finish(Ok(report), ctx);
                }
            }
            Phase::Done => {}
        }
        if !matches!(self.phase, Phase::Done) {
            // Time moves the benchmark on even when nothing else asks for a frame; seldom, so that the frames
            // measured are the app's own (a training run's, every `training_frame_interval`) and the prober's.
            ctx.request_repaint_after(Duration::from_secs(1));
        }
    }

    fn report(&self, app: &BayesExplorerApp, window_rate: f64, elapsed: f64) -> WindowBenchReport {
        // The first frame's "previous frame" is the warm-up's; the UI figures are over the rest.
        let mut ui_ms: Vec<f64> = self.frames.iter().skip(1).map(|&(_, s)| f64::from(s) * 1000.0).collect();
        ui_ms.sort_by(f64::total_cmp);
        let mean = if ui_ms.is_empty() { 0.0 } else { ui_ms.iter().sum::<f64>() / ui_ms.len() as f64 };
        let p95 = ui_ms.get((ui_ms.len() as f64 * 0.95) as usize).or(ui_ms.last()).copied().unwrap_or(0.0);
        let gap =
            self.frames.windows(2).map(|w| w[1].0.duration_since(w[0].0).as_secs_f64() * 1000.0).fold(0.0, f64::max);
        let mut wake_ms = self.wake_ms.clone();
        wake_ms.sort_by(f64::total_cmp);
        let wake_p95 =
            wake_ms.get((wake_ms.len() as f64 * 0.95) as usize).or(wake_ms.last()).copied().unwrap_or(f64::NAN);
        WindowBenchReport {
            wake_ms_p95: wake_p95,
            wake_ms_max: wake_ms.last().copied().unwrap_or(f64::NAN),
            lab: self.plan.lab.tab_name().to_owned(),
            page: app.lab(self.plan.lab).page_label().to_owned(),
            seconds: elapsed,
            headless_epochs_per_second: f64::NAN,
            headless_before_after: [f64::NAN; 2],
            window_epochs_per_second: window_rate,
            ratio: f64::NAN,
            frames_per_second: self.frames.len() as f64 / elapsed,
            ui_ms_mean: mean,
            ui_ms_p95: p95,
            ui_ms_max: ui_ms.last().copied().unwrap_or(0.0),
            longest_frame_gap_ms: gap,
            view_updates_per_second: self.view_updates as f64 / elapsed,
            renderer: self.renderer.clone(),
            cores: cores_by_kind(&self.cpu_before, &thread_cpu_seconds(), elapsed),
        }
    }

    fn finish(&mut self, report: Result<WindowBenchReport, String>, ctx: &egui::Context) {
        if let Some(prober) = self.prober.take() {
            let _ = prober.join();
        }
        *self.out.lock().unwrap_or_else(PoisonError::into_inner) = Some(report);
        self.phase = Phase::Done;
        ctx.send_viewport_cmd(egui::ViewportCommand::Close);
    }
}

/// A thread that, until `until`, asks for a frame every 0.4 s at a random moment (as an input event would) and
/// notes when, for the frame to answer.
fn spawn_prober(
    ctx: egui::Context,
    wakes: Arc<Mutex<Vec<Instant>>>,
    until: Instant,
) -> Option<std::thread::JoinHandle<()>> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    std::thread::Builder::new()
        .name("bench-wake".into())
        .spawn(move || {
            while Instant::now() < until {
                std::thread::sleep(Duration::from_millis(rng.random_range(200..600)));
                wakes.lock().unwrap_or_else(PoisonError::into_inner).push(Instant::now());
                ctx.request_repaint();
            }
        })
        .ok()
}

/// Starts the benchmarked run once the lab's data are in: `Ok(false)` while they are loading.
fn start(app: &mut BayesExplorerApp, plan: &WindowBenchPlan, ctx: &egui::Context) -> Result<bool, String> {
    let lab = plan.lab;
    if app.lab(lab).is_loading() || app.lab(lab).data.is_none() {
        return Ok(false);
    }
    app.settings.tab = lab;
    let state = app.lab_mut(lab);
    if let Some(page) = &plan.page {
        state.open_page(page)?;
    } else {
        state.open_busiest_page();
    }
    state.set_next_epochs(BENCH_EPOCHS);
    crate::ui::lab::start_run(state, ctx.clone(), true);
    if let Some(message) = state.message.as_ref().filter(|m| m.is_error()) {
        return Err(format!("the run did not start: {}", message.text));
    }
    Ok(true)
}

/// Why the run failed, if it did.
fn failed(app: &BayesExplorerApp, lab: Lab) -> Option<String> {
    let state = app.lab(lab);
    match state.worker_state {
        Some(WorkerState::Failed | WorkerState::Stopped) => Some(
            state
                .message
                .as_ref()
                .map_or_else(|| "the run stopped".to_owned(), |m| format!("the run stopped: {}", m.text)),
        ),
        Some(WorkerState::Finished) => Some("the run finished before the measurement did".to_owned()),
        _ => None,
    }
}

/// The run's step while it trains (`None` before its first published step).
fn training_step(app: &BayesExplorerApp, lab: Lab) -> Option<u64> {
    let state = app.lab(lab);
    (state.worker_state == Some(WorkerState::Running)).then_some(())?;
    state.snapshot.as_ref().map(|s| s.step).filter(|&s| s > 0)
}

fn steps_per_epoch(app: &BayesExplorerApp, lab: Lab) -> f64 {
    app.lab(lab).snapshot.as_ref().map_or(1.0, |s| s.steps_per_epoch.max(1) as f64)
}

/// The lab's run in the app with no window: the same start as the window's, polled as the window would be but
/// with nothing drawn. Returns epochs a second over `plan.seconds` after `plan.warmup`.
///
/// # Errors
/// When the data cannot be loaded or the run fails.
pub fn headless_epochs_per_second(plan: &WindowBenchPlan) -> Result<f64, String> {
    let ctx = egui::Context::default();
    let mut app = BayesExplorerApp::new(ctx.clone(), Settings::default());
    let lab = plan.lab;
    let deadline = Instant::now() + Duration::from_mins(2);
    while !start(&mut app, plan, &ctx)? {
        if Instant::now() > deadline {
            return Err("the lab's data did not load within two minutes".into());
        }
        std::thread::sleep(Duration::from_millis(20));
        app.poll();
    }
    let mut measured: Option<(Instant, u64)> = None;
    let started = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        app.poll();
        if let Some(why) = failed(&app, lab) {
            return Err(why);
        }
        match measured {
            None if started.elapsed().as_secs_f64() >= plan.warmup => {
                measured = training_step(&app, lab).map(|step| (Instant::now(), step));
            }
            Some((since, step)) if since.elapsed().as_secs_f64() >= plan.seconds => {
                let now_step = training_step(&app, lab).unwrap_or(step);
                let epochs = now_step.saturating_sub(step) as f64 / steps_per_epoch(&app, lab);
                return Ok(epochs / since.elapsed().as_secs_f64());
            }
            _ => {}
        }
    }
}

/// Measures `plan.lab` with no window, then in a window drawn by `requested` (resolved as at launch) on the display
/// the environment names, and returns both rates with the window's figures.
///
/// # Errors
/// When either run fails or the window cannot open.
pub fn run(plan: &WindowBenchPlan, requested: crate::ui::WindowRenderer) -> Result<WindowBenchReport, String> {
    // The machine's speed drifts from minute to minute (a shared virtual machine): the headless rate is taken
    // before and after the window's, and the ratio is against their mean.
    let before = headless_epochs_per_second(plan)?;
    let compute = crate::compute::probe();
    let renderer = crate::ui::window_renderer(requested, compute.best());
    let note = crate::ui::renderer_note(renderer, &compute);
    let frame_interval = crate::ui::training_frame_interval(&compute);
    let out: ReportSlot = Arc::new(Mutex::new(None));
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(format!("{} (bench window)", crate::ui::APP_TITLE))
            .with_inner_size([1280.0, 800.0]),
        persist_window: false,
        renderer,
        ..eframe::NativeOptions::default()
    };
    let (driver_out, driver_plan, driver_note) = (Arc::clone(&out), plan.clone(), note.clone());
    eframe::run_native(
        "bayes-explorer-bench",
        options,
        Box::new(move |cc| {
            egui_extras::install_image_loaders(&cc.egui_ctx);
            let settings = Settings { welcomed: true, ..Settings::default() };
            let mut app = BayesExplorerApp::new(cc.egui_ctx.clone(), settings);
            app.window_renderer = Some(note);
            crate::ui::lab_page::set_training_frame_interval(&cc.egui_ctx, frame_interval);
            app.bench = Some(WindowBench::new(driver_plan, driver_note, driver_out));
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| format!("cannot open the window: {e}"))?;
    let window = out
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .unwrap_or_else(|| Err("the window closed before the measurement ended".into()))?;
    let after = headless_epochs_per_second(plan)?;
    Ok(window.against_headless(before, after))
}

#[cfg(test)]
mod tests {
    use super::WindowBenchReport;
    use crate::Lab;
    use crate::ui::LabState;

    fn report(window: f64) -> WindowBenchReport {
        WindowBenchReport {
            lab: "Flow".into(),
            page: "Step through the stages".into(),
            seconds: 30.0,
            headless_epochs_per_second: f64::NAN,
            headless_before_after: [f64::NAN; 2],
            window_epochs_per_second: window,
            ratio: f64::NAN,
            frames_per_second: 5.0,
            ui_ms_mean: 7.0,
            ui_ms_p95: 11.0,
            ui_ms_max: 14.0,
            longest_frame_gap_ms: 250.0,
            wake_ms_p95: 20.0,
            wake_ms_max: 30.0,
            view_updates_per_second: 2.1,
            renderer: "glow".into(),
            cores: Vec::new(),
        }
    }

    /// The window's rate is compared with the mean of the headless rates taken before and after it.
    #[test]
    fn the_ratio_is_against_the_mean_of_the_headless_runs_around_the_window() {
        let r = report(2.4).against_headless(3.2, 2.8);
        assert_eq!(r.headless_before_after.map(f64::to_bits), [3.2f64.to_bits(), 2.8f64.to_bits()]);
        assert!((r.headless_epochs_per_second - 3.0).abs() < 1e-12);
        assert!((r.ratio - 0.8).abs() < 1e-12);
        let row = r.table_row();
        assert!(row.contains("| 3.00 (3.20, 2.80) | 2.40 | 80 % |"), "{row}");
    }

    /// `--page` opens a page by its tab's label in any case; an unknown one is refused with the lab's pages named.
    #[test]
    fn a_page_is_opened_by_its_label_and_an_unknown_one_names_the_pages() {
        let mut flow = LabState::new(Lab::Flow);
        flow.open_page("the 1-d picture").expect("a flow page");
        assert_eq!(flow.page_label(), "The 1-D picture");
        flow.open_busiest_page();
        assert_eq!(flow.page_label(), "Step through the stages");
        let mut vae = LabState::new(Lab::Vae);
        let refused = vae.open_page("Histograms").expect_err("not a VAE page");
        assert!(refused.contains("Latent space") && refused.contains("Loss curves"), "{refused}");
        vae.set_next_epochs(1234);
        assert_eq!(vae.vae.config.epochs, 1234);
    }
}
