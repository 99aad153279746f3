//! Typeset formulas: a LaTeX string laid out by RaTeX (a pure-Rust KaTeX-compatible typesetter, `ratex-parser`,
//! `ratex-layout`, `ratex-svg`) into a self-contained SVG whose glyphs are paths from the embedded KaTeX fonts, and
//! shown as an [`egui::Image`] through egui_extras' SVG loader, which rasterises it at the size on screen (so it
//! stays crisp at any pixels-per-point). Each (formula, colour, size) is typeset once and kept for the session;
//! drawing it again costs a map lookup. Typesetting is quick enough for the UI thread: the three panels' formulas,
//! the embedded fonts' first parse included, take well under 0.1 s together in the unit tests (release build), and
//! the SVG loader rasterises each image once per size. Knows nothing of the labs (`explain.rs` says what to
//! typeset).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use ratex_layout::LayoutOptions;
use ratex_svg::SvgOptions;
use ratex_types::color::Color;
use ratex_types::math_style::MathStyle;

/// Space around a formula, in em.
const PADDING_EM: f64 = 0.1;

/// A formula's em in body text sizes: a display formula reads a little larger than the text around it.
const EM_PER_BODY_SIZE: f32 = 1.2;

/// Formulas kept at most: far more than the panels show (about 30 per lab); past it the cache starts afresh.
const MAX_CACHED: usize = 512;

/// One formula typeset.
#[derive(Clone, Debug)]
pub struct Typeset {
    /// The SVG document: glyphs as `<path>` outlines, rules as rectangles, no text and no fonts needed.
    pub svg: Arc<[u8]>,
    /// Its size in points at the em it was typeset at.
    pub size: egui::Vec2,
    /// Where egui's loaders find it: `bytes://eq-<hash>.svg` (the SVG loader only takes URIs ending in `.svg`).
    pub uri: String,
}

/// Why a formula could not be typeset.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TypesetError {
    /// The LaTeX does not parse (an unknown command, an unbalanced brace).
    #[error("the formula does not parse: {0}")]
    Parse(String),
    /// The layout failed RaTeX's own checks (too large a result).
    #[error("the formula cannot be laid out: {0}")]
    Layout(String),
}

/// Typesets `latex` in display style, in `colour`, with an em of `em_points` points: the SVG and its size.
pub fn typeset(latex: &str, colour: egui::Color32, em_points: f32) -> Result<Typeset, TypesetError> {
    let ast = ratex_parser::parser::parse(latex).map_err(|e| TypesetError::Parse(e.to_string()))?;
    let [r, g, b, a] = colour.to_srgba_unmultiplied().map(|c| f32::from(c) / 255.0);
    let options = LayoutOptions::default().with_style(MathStyle::Display).with_color(Color::new(r, g, b, a));
    let laid_out = ratex_layout::layout(&ast, &options);
    ratex_layout::validate_layout(&laid_out).map_err(TypesetError::Layout)?;
    let list = ratex_layout::to_display_list(&laid_out);
    let em = f64::from(em_points.max(1.0));
    let padding = PADDING_EM * em;
    let svg_options = SvgOptions {
        font_size: em,
        padding,
        // ratex-svg's 1.5 units at its default em of 40, for the few strokes that are not filled outlines.
        stroke_width: 1.5 * em / 40.0,
        embed_glyphs: true,
        font_dir: String::new(),
    };
    let svg = ratex_svg::render_to_svg(&list, &svg_options);
    let size =
        egui::vec2((list.width * em + 2.0 * padding) as f32, ((list.height + list.depth) * em + 2.0 * padding) as f32);
    let mut hasher = DefaultHasher::new();
    (latex, colour.to_array(), em_points.to_bits()).hash(&mut hasher);
    Ok(Typeset { svg: Arc::from(svg.into_bytes()), size, uri: format!("bytes://eq-{:016x}.svg", hasher.finish()) })
}

/// (formula, colour, em's bits): what a typeset formula depends on.
type Key = (String, [u8; 4], u32);

/// A typeset formula, or why it could not be.
type Typesetting = Result<Arc<Typeset>, TypesetError>;

/// Every formula typeset so far, with its result (an error is kept too, so a bad formula is not tried every frame).
static CACHE: LazyLock<Mutex<HashMap<Key, Typesetting>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// [`typeset`], once per (formula, colour, size) for the process.
pub fn typeset_cached(latex: &str, colour: egui::Color32, em_points: f32) -> Typesetting {
    let key = (latex.to_owned(), colour.to_array(), em_points.to_bits());
    if let Some(found) = CACHE.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
        return found.clone();
    }
    // Typeset outside the lock: another thread's formula need not wait for this one.
    let result = typeset(latex, colour, em_points).map(Arc::new);
    if let Err(e) = &result {
        log::warn!("cannot typeset {latex:?}: {e}");
    }
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    if cache.len() >= MAX_CACHED {
        cache.clear();
    }
    cache.insert(key, result.clone());
    result
}

/// The em of formulas in `ui`: [`EM_PER_BODY_SIZE`] body text sizes.
#[must_use]
pub fn formula_em(ui: &egui::Ui) -> f32 {
    egui::TextStyle::Body.resolve(ui.style()).size * EM_PER_BODY_SIZE
}

/// Shows `latex` typeset in the strong text colour (legible on a projector) at [`formula_em`], shrunk to the width available when wider, with the
/// LaTeX source as its alt text (for screen readers and tests). A formula that cannot be typeset, or a window
/// without the SVG loader, shows the source in monospace instead (with the reason on hover).
pub fn equation_ui(ui: &mut egui::Ui, latex: &str) -> egui::Response {
    let colour = ui.visuals().strong_text_color();
    let typeset = typeset_cached(latex, colour, formula_em(ui));
    let loader = ui.ctx().is_loader_installed(egui_extras::loaders::svg_loader::SvgLoader::ID);
    match typeset {
        Ok(t) if loader => {
            let available = ui.available_width().max(1.0);
            let size = if t.size.x > available { t.size * (available / t.size.x) } else { t.size };
            ui.add(
                egui::Image::from_bytes(t.uri.clone(), egui::load::Bytes::Shared(Arc::clone(&t.svg)))
                    .fit_to_exact_size(size)
                    .alt_text(latex),
            )
        }
        Ok(_) => ui.monospace(latex).on_hover_text("The window has no SVG loader to draw the typeset formula"),
        Err(e) => ui.monospace(latex).on_hover_text(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::{TypesetError, typeset, typeset_cached};

    #[test]
    fn a_formula_becomes_an_svg_of_paths_without_text() {
        let t = typeset(r"\frac{1}{N}\sum_{i=1}^{N} \mu_i^2", egui::Color32::WHITE, 16.0).expect("typesets");
        let svg = std::str::from_utf8(&t.svg).expect("UTF-8");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("<path"), "glyphs as paths: {svg}");
        assert!(!svg.contains("<text"), "no text elements: {svg}");
        assert!(t.size.x > t.size.y && t.size.y > 16.0, "a fraction over a sum is taller than a line: {:?}", t.size);
        // egui's SVG loader takes a URI by its extension.
        assert!(t.uri.starts_with("bytes://eq-") && egui::load::has_extension(&t.uri, "svg"), "{}", t.uri);
        assert!(svg.contains("rgba(255,255,255,1)"), "in the colour asked for");
    }

    #[test]
    fn a_bad_formula_is_an_error_and_is_kept() {
        let first = typeset_cached(r"\frac{1}{", egui::Color32::WHITE, 16.0);
        assert!(matches!(first, Err(TypesetError::Parse(_))), "{first:?}");
        assert_eq!(typeset_cached(r"\frac{1}{", egui::Color32::WHITE, 16.0).err(), first.err());
    }

    #[test]
    fn each_colour_and_size_is_its_own_image() {
        let a = typeset_cached("x^2", egui::Color32::WHITE, 16.0).expect("typesets");
        let b = typeset_cached("x^2", egui::Color32::BLACK, 16.0).expect("typesets");
        let c = typeset_cached("x^2", egui::Color32::WHITE, 20.0).expect("typesets");
        assert_ne!(a.uri, b.uri);
        assert_ne!(a.uri, c.uri);
        assert!(c.size.x > a.size.x);
        assert!(std::sync::Arc::ptr_eq(&a, &typeset_cached("x^2", egui::Color32::WHITE, 16.0).expect("typesets")));
    }
}
