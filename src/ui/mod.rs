//! The window: three labs as tabs, the dataset loader and preview, the status bar. Uses `train` (workers
//! and snapshots) and `data`; never holds a tensor.

pub mod animate;
mod animation;
pub mod animation_file;
mod app;
pub mod bnn;
mod bnn_band;
mod bnn_compare;
pub mod bnn_nuts;
pub mod bnn_nuts_state;
mod bnn_predictions;
mod bnn_probe;
mod bnn_settings;
mod bnn_state;
pub mod bnn_weights;
mod continuing;
mod count;
mod data_view;
mod discard;
pub mod equation;
pub mod explain;
pub mod export;
mod file_job;
pub mod flow;
pub mod flow_line;
mod flow_settings;
pub mod highlight;
pub mod history;
mod image_export;
mod lab;
mod lab_data;
mod lab_page;
mod lab_state;
mod message;
pub mod offscreen;
mod overfit;
mod plot_axes;
pub mod presenter;
mod preview;
pub mod record;
mod run_file;
mod session;
pub mod settings_check;
mod status_bar;
pub mod thread_cpu;
pub mod tour;
mod typed_path;
pub mod vae;
mod vae_images;
mod vae_latent;
mod vae_settings;
mod vae_state;
mod vae_table;
pub mod window_bench;

pub use app::{APP_TITLE, BayesExplorerApp, Settings};
pub use image_export::{crop, figure_rect, write_png};
pub use lab_state::LabState;
pub use message::{Message, MessageKind};
pub use session::session_run_path;
pub use typed_path::path_from_typed;

/// Which library draws the window (`--renderer`); the compute kernels use wgpu whichever it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum WindowRenderer {
    /// wgpu on a hardware GPU; glow (OpenGL) when the only adapter is a software rasteriser or there is none.
    #[default]
    Auto,
    /// wgpu (Vulkan, Metal, DX12 or GL, as wgpu picks).
    Wgpu,
    /// glow (OpenGL).
    Glow,
}

/// The renderer `requested` resolves to, given the best adapter wgpu finds. On a software rasteriser Mesa's OpenGL
/// draws the window several times cheaper than its Vulkan (lavapipe) does: measured under Xvfb on two cores, a frame
/// of the flow page cost about 330 ms of CPU through wgpu and 56 ms through glow, and while a flow trained the
/// window drew 12 frames a second through glow against 5 through wgpu, with more of the CPU left to training.
#[must_use]
pub fn window_renderer(requested: WindowRenderer, best: Option<&crate::compute::AdapterSummary>) -> eframe::Renderer {
    let hardware = best.is_some_and(|a| !a.is_software());
    match requested {
        WindowRenderer::Wgpu => eframe::Renderer::Wgpu,
        WindowRenderer::Auto if hardware => eframe::Renderer::Wgpu,
        WindowRenderer::Auto | WindowRenderer::Glow => eframe::Renderer::Glow,
    }
}

/// Opens the window and runs until it is closed. With [`WindowRenderer::Auto`], a renderer that cannot start
/// (no OpenGL, or no adapter wgpu can draw with) gives way to the other. `present` opens it in presenter mode.
pub fn run_app(requested: WindowRenderer, present: bool) -> Result<(), eframe::Error> {
    let compute = crate::compute::probe();
    let first = window_renderer(requested, compute.best());
    let frame_interval = training_frame_interval(&compute);
    match run_window(first, renderer_note(first, &compute), present, frame_interval) {
        Err(e) if requested == WindowRenderer::Auto && could_not_start(&e) => {
            let other = match first {
                eframe::Renderer::Glow => eframe::Renderer::Wgpu,
                eframe::Renderer::Wgpu => eframe::Renderer::Glow,
            };
            log::warn!("the {first} renderer could not start ({e}); drawing the window with {other}");
            let note = format!("{}; {first} could not start ({e})", renderer_note(other, &compute));
            run_window(other, note, present, frame_interval)
        }
        result => result,
    }
}

/// True for the errors of a renderer that failed to start (before the app ran).
fn could_not_start(e: &eframe::Error) -> bool {
    matches!(
        e,
        eframe::Error::Glutin(_)
            | eframe::Error::NoGlutinConfigs(..)
            | eframe::Error::OpenGL(_)
            | eframe::Error::Wgpu(_)
    )
}

/// The window drawn by `renderer`; `note` is what the status bar says of it; `present` opens it in presenter mode;
/// `frame_interval` is how often training redraws it.
fn run_window(
    renderer: eframe::Renderer,
    note: String,
    present: bool,
    frame_interval: std::time::Duration,
) -> Result<(), eframe::Error> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(APP_TITLE)
            .with_app_id(APP_TITLE)
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([720.0, 480.0])
            .with_drag_and_drop(true),
        persist_window: true,
        renderer,
        ..eframe::NativeOptions::default()
    };
    eframe::run_native(
        APP_TITLE,
        options,
        Box::new(move |cc| {
            // The SVG loader draws the Explain panels' typeset formulas (`equation.rs`).
            egui_extras::install_image_loaders(&cc.egui_ctx);
            let settings =
                cc.storage.and_then(|s| eframe::get_value::<Settings>(s, eframe::APP_KEY)).unwrap_or_default();
            let session = eframe::storage_dir(APP_TITLE).map(|d| d.join("session"));
            let mut app = BayesExplorerApp::with_session(cc.egui_ctx.clone(), settings, session);
            app.window_renderer = Some(note);
            lab_page::set_training_frame_interval(&cc.egui_ctx, frame_interval);
            if present {
                app.set_presenting(true);
            }
            if let Some(folder) = eframe::storage_dir(APP_TITLE).map(|d| d.join("tours")) {
                app.add_tours_from(&folder);
            }
            if !app.settings.welcomed {
                app.open_welcome();
            }
            Ok(Box::new(app))
        }),
    )
}

/// How often a training run's progress redraws the window: every 0.3 s where the window is drawn in software (no
/// hardware adapter: Mesa's llvmpipe rasterises on the cores training uses, measured at 20-40 ms of CPU for a frame
/// of the VAE's latent page and about 28 ms for the flow's stage page), which is still more often than the views get
/// a new model (every [`crate::models::trainer::MODEL_VIEW_INTERVAL_SECS`]); 20 frames a second where a GPU draws
/// it. Input, and the end of a run, redraw at once.
#[must_use]
pub fn training_frame_interval(compute: &crate::compute::ComputeInfo) -> std::time::Duration {
    let hardware = compute.best().is_some_and(|a| !a.is_software());
    std::time::Duration::from_millis(if hardware { 50 } else { 300 })
}

/// What the status bar and `info` say of the renderer: which draws the window, and why when it was chosen for the
/// adapter.
#[must_use]
pub fn renderer_note(renderer: eframe::Renderer, compute: &crate::compute::ComputeInfo) -> String {
    match (renderer, compute.best()) {
        (eframe::Renderer::Glow, Some(a)) if a.is_software() => format!(
            "Window drawn by OpenGL (glow): the only adapter is a software rasteriser ({}), whose OpenGL draws \
             several times cheaper than its Vulkan",
            a.name
        ),
        (eframe::Renderer::Glow, None) => "Window drawn by OpenGL (glow): wgpu found no adapter".to_owned(),
        (eframe::Renderer::Glow, Some(_)) => "Window drawn by OpenGL (glow)".to_owned(),
        (eframe::Renderer::Wgpu, _) => "Window drawn by wgpu".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{WindowRenderer, window_renderer};
    use crate::compute::AdapterSummary;

    fn adapter(device_type: &str) -> AdapterSummary {
        AdapterSummary {
            name: format!("a {device_type} adapter"),
            backend: "Vulkan".to_owned(),
            device_type: device_type.to_owned(),
            driver: String::new(),
            max_storage_buffer_binding_size: 1 << 27,
            max_compute_workgroup_size_x: 256,
        }
    }

    /// Auto draws with wgpu on any hardware adapter and with OpenGL on a software rasteriser or none; an explicit
    /// choice holds whatever the adapter.
    #[test]
    fn the_window_renderer_follows_the_adapter_unless_one_is_asked_for() {
        use eframe::Renderer::{Glow, Wgpu};
        let (discrete, integrated, virtual_gpu, software) =
            (adapter("DiscreteGpu"), adapter("IntegratedGpu"), adapter("VirtualGpu"), adapter("Cpu"));
        for hardware in [&discrete, &integrated, &virtual_gpu] {
            assert_eq!(window_renderer(WindowRenderer::Auto, Some(hardware)), Wgpu, "{}", hardware.name);
        }
        assert_eq!(window_renderer(WindowRenderer::Auto, Some(&software)), Glow);
        assert_eq!(window_renderer(WindowRenderer::Auto, None), Glow);
        for best in [Some(&discrete), Some(&software), None] {
            assert_eq!(window_renderer(WindowRenderer::Wgpu, best), Wgpu);
            assert_eq!(window_renderer(WindowRenderer::Glow, best), Glow);
        }
    }

    /// The characters outside ASCII in the string literals of `source` (Rust), with their line numbers; line
    /// comments are skipped, escapes and byte or char literals of a quote respected.
    fn literal_characters(source: &str) -> Vec<(usize, char)> {
        let mut found = Vec::new();
        for (number, line) in source.lines().enumerate() {
            let mut chars = line.chars().peekable();
            let mut in_string = false;
            while let Some(c) = chars.next() {
                match (in_string, c) {
                    (false, '/') if chars.peek() == Some(&'/') => break,
                    // '"' and b'"': a quote that opens no string.
                    (false, '\'') if chars.peek() == Some(&'"') => {
                        chars.next();
                    }
                    (_, '"') => in_string = !in_string,
                    (true, '\\') => {
                        chars.next();
                    }
                    (true, c) if !c.is_ascii() => found.push((number + 1, c)),
                    _ => {}
                }
            }
        }
        found
    }

    /// Every character in the program's strings (its labels, headings, notes and messages) has a glyph in the
    /// window's fonts, proportional and monospace: a missing one is drawn as an empty box (as "f⁻¹" once was).
    #[test]
    fn every_character_the_strings_use_has_a_glyph_in_the_fonts() {
        let ctx = egui::Context::default();
        let _ = ctx.run_ui(egui::RawInput::default(), |_| {});
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![root.clone()];
        let mut missing = Vec::new();
        let mut checked = 0;
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).expect("the source folder").map(|e| e.expect("an entry").path()));
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).expect("a source file");
            for (line, c) in literal_characters(&source) {
                checked += 1;
                for font in [egui::FontId::proportional(14.0), egui::FontId::monospace(14.0)] {
                    if !ctx.fonts_mut(|f| f.has_glyph(&font, c)) {
                        missing.push(format!(
                            "{}:{line}: {c:?} (U+{:04X}) in {:?}",
                            path.display(),
                            u32::from(c),
                            font.family
                        ));
                    }
                }
            }
        }
        assert!(checked > 20, "the scan found the strings' typography ({checked} characters)");
        assert!(literal_characters("let a = \"±\"; // \"\u{207b}\"").len() == 1, "comments are skipped");
        assert!(missing.is_empty(), "characters the fonts cannot draw:\n{}", missing.join("\n"));
    }
}
