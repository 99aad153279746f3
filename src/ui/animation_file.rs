//! "Record animation…"'s files: a figure's frames, captured as drawn, written as an animated PNG (lossless) or a GIF
//! (one palette shared by every frame, made from the figure's own colours), on the `run-file` thread with progress
//! and a cancel flag the UI thread sets. The capture itself is `animation.rs`'s.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The two formats an animation is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AnimationFormat {
    /// GIF: plays everywhere (slides, chat, browsers); at most 256 colours, shared by all frames.
    #[default]
    Gif,
    /// Animated PNG: lossless, every colour as drawn; plays in browsers and most slide programs.
    Apng,
}

impl AnimationFormat {
    /// Both, in the order the window offers them.
    pub const ALL: [Self; 2] = [Self::Gif, Self::Apng];

    /// The file name's extension.
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Self::Gif => "gif",
            Self::Apng => "png",
        }
    }

    /// Its name in the window.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Gif => "GIF (256 colours, plays everywhere)",
            Self::Apng => "Animated PNG (lossless)",
        }
    }
}

/// How far a writing job has got, and whether it was asked to stop; shared between the `run-file` thread and the
/// window's progress bar.
#[derive(Debug, Default)]
pub struct EncodeProgress {
    /// Frames encoded so far.
    pub done: AtomicUsize,
    /// Set by Cancel: the job stops before the next frame and writes nothing.
    pub cancel: AtomicBool,
    /// Set when the job has ended, written or not.
    pub finished: AtomicBool,
}

/// Why an animation was not written.
#[derive(Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// Cancel was pressed.
    Cancelled,
    /// The encoder or the file failed.
    Failed(String),
}

impl From<std::io::Error> for EncodeError {
    fn from(e: std::io::Error) -> Self {
        Self::Failed(e.to_string())
    }
}

/// The frames' common size, the first frame's, and the colour that pads a smaller frame, the first frame's corner
/// (a later frame of another size is cut or padded, so a window resized mid-recording still gives a playable file).
fn common_size(frames: &[egui::ColorImage]) -> Result<([usize; 2], egui::Color32), EncodeError> {
    let first = frames.first().ok_or_else(|| EncodeError::Failed("no frames to write".into()))?;
    let size = first.size;
    if size[0] == 0 || size[1] == 0 || size[0] > usize::from(u16::MAX) || size[1] > usize::from(u16::MAX) {
        return Err(EncodeError::Failed(format!("frames of {} x {} pixels cannot be written", size[0], size[1])));
    }
    Ok((size, first.pixels[0]))
}

/// `frame`'s pixels at `size` (cut or padded), unmultiplied sRGBA.
fn rgba(frame: &egui::ColorImage, size: [usize; 2], pad: egui::Color32) -> Vec<u8> {
    let [w, h] = size;
    let mut out = Vec::with_capacity(w * h * 4);
    for y in 0..h {
        for x in 0..w {
            let c = if x < frame.size[0] && y < frame.size[1] { frame.pixels[y * frame.size[0] + x] } else { pad };
            out.extend_from_slice(&c.to_srgba_unmultiplied());
        }
    }
    out
}

fn step(progress: &EncodeProgress) -> Result<(), EncodeError> {
    if progress.cancel.load(Ordering::Relaxed) {
        return Err(EncodeError::Cancelled);
    }
    progress.done.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// A frame's time, `1 / fps` seconds, as the fraction the APNG's frame control holds.
fn apng_delay(fps: f32) -> (u16, u16) {
    let fps = fps.clamp(0.1, 100.0);
    // Hundredths of a second over 100 where that is exact enough, else a thousandth.
    let numerator = (1000.0 / fps).round().clamp(1.0, f32::from(u16::MAX)) as u16;
    (numerator, 1000)
}

/// A GIF frame's time in hundredths of a second (the format's unit; at least 2, as browsers slow shorter ones).
fn gif_delay(fps: f32) -> u16 {
    (100.0 / fps.clamp(0.1, 50.0)).round().clamp(2.0, f32::from(u16::MAX)) as u16
}

/// Writes `frames` (each shown `1 / fps` s, looping for ever) as an animated PNG into `out`.
pub fn write_apng(
    frames: &[egui::ColorImage],
    fps: f32,
    progress: &EncodeProgress,
    out: impl Write,
) -> Result<(), EncodeError> {
    let (size, pad) = common_size(frames)?;
    let failed = |e: png::EncodingError| EncodeError::Failed(e.to_string());
    let mut encoder = png::Encoder::new(out, size[0] as u32, size[1] as u32);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_animated(frames.len() as u32, 0).map_err(failed)?;
    let (numerator, denominator) = apng_delay(fps);
    encoder.set_frame_delay(numerator, denominator).map_err(failed)?;
    let mut writer = encoder.write_header().map_err(failed)?;
    for frame in frames {
        writer.write_image_data(&rgba(frame, size, pad)).map_err(failed)?;
        step(progress)?;
    }
    writer.finish().map_err(failed)
}

/// One palette for every frame, from the figure's own colours, at most 256: exact when the frames have 256 colours
/// or fewer between them. Otherwise the colours that cover at least 1/500 of the pixels (the background, the axes,
/// the text, the points' colours: at most 64 of them) are kept exactly, and the rest (a heat map's shades, blended
/// edges) share the other entries by median cut over their colours counted in 5 bits a channel.
#[must_use]
pub fn shared_palette(frames: &[Vec<u8>]) -> Vec<[u8; 3]> {
    let mut exact: HashMap<[u8; 3], u64> = HashMap::new();
    for frame in frames {
        for p in frame.chunks_exact(4) {
            *exact.entry([p[0], p[1], p[2]]).or_default() += 1;
        }
    }
    let mut colours: Vec<([u8; 3], u64)> = exact.into_iter().collect();
    colours.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    if colours.len() <= 256 {
        return colours.into_iter().map(|(c, _)| c).collect();
    }
    let total: u64 = colours.iter().map(|c| c.1).sum();
    let kept = colours.iter().take(64).take_while(|c| c.1 * 500 >= total).count();
    let mut palette: Vec<[u8; 3]> = colours[..kept].iter().map(|c| c.0).collect();
    // The rest, in cells of 32 x 32 x 32: each cell's pixel count and colour sum.
    let mut cells: HashMap<u16, (u64, [u64; 3])> = HashMap::new();
    for &(c, n) in &colours[kept..] {
        let cell = cells.entry(cell_of(c)).or_default();
        cell.0 += n;
        for (sum, &channel) in cell.1.iter_mut().zip(&c) {
            *sum += u64::from(channel) * n;
        }
    }
    let cells: Vec<ColourCount> =
        cells.into_values().map(|(n, sum)| ColourCount { colour: sum.map(|s| (s / n) as u8), count: n }).collect();
    palette.extend(median_cut(cells, 256 - palette.len()));
    palette
}

/// A colour and how many pixels have it.
#[derive(Clone, Copy)]
struct ColourCount {
    colour: [u8; 3],
    count: u64,
}

/// Splits `colours` into at most `n` boxes, each time the box whose widest channel spans most (weighted by its
/// pixels) at the weighted median of that channel; each box gives its pixels' mean colour.
fn median_cut(colours: Vec<ColourCount>, n: usize) -> Vec<[u8; 3]> {
    let spread = |b: &[ColourCount]| -> (u64, usize) {
        let pixels: u64 = b.iter().map(|c| c.count).sum();
        (0..3)
            .map(|i| {
                let (lo, hi) = b.iter().fold((255u8, 0u8), |(lo, hi), c| (lo.min(c.colour[i]), hi.max(c.colour[i])));
                (u64::from(hi - lo) * pixels, i)
            })
            .max()
            .unwrap_or((0, 0))
    };
    let mut boxes: Vec<Vec<ColourCount>> = if colours.is_empty() { Vec::new() } else { vec![colours] };
    while boxes.len() < n {
        let Some((at, (score, channel))) =
            boxes.iter().enumerate().filter(|(_, b)| b.len() > 1).map(|(i, b)| (i, spread(b))).max_by_key(|x| x.1)
        else {
            break;
        };
        if score == 0 {
            break;
        }
        let mut b = boxes.swap_remove(at);
        b.sort_by_key(|c| c.colour[channel]);
        let half: u64 = b.iter().map(|c| c.count).sum::<u64>() / 2;
        let mut seen = 0;
        let cut = b
            .iter()
            .position(|c| {
                seen += c.count;
                seen > half
            })
            .unwrap_or(0)
            .clamp(1, b.len() - 1);
        let upper = b.split_off(cut);
        boxes.push(b);
        boxes.push(upper);
    }
    boxes
        .iter()
        .map(|b| {
            let pixels: u64 = b.iter().map(|c| c.count).sum::<u64>().max(1);
            [0, 1, 2].map(|i| (b.iter().map(|c| u64::from(c.colour[i]) * c.count).sum::<u64>() / pixels) as u8)
        })
        .collect()
}

fn cell_of(c: [u8; 3]) -> u16 {
    (u16::from(c[0] >> 3) << 10) | (u16::from(c[1] >> 3) << 5) | u16::from(c[2] >> 3)
}

/// Each pixel's nearest palette entry (squared distance in sRGB), memoised by colour.
struct Quantiser<'a> {
    palette: &'a [[u8; 3]],
    memo: HashMap<[u8; 3], u8>,
}

impl Quantiser<'_> {
    fn index(&mut self, c: [u8; 3]) -> u8 {
        let palette = self.palette;
        *self.memo.entry(c).or_insert_with(|| {
            let distance = |p: &[u8; 3]| (0..3).map(|i| (i32::from(p[i]) - i32::from(c[i])).pow(2)).sum::<i32>();
            palette.iter().enumerate().min_by_key(|(_, p)| distance(p)).map_or(0, |(i, _)| i as u8)
        })
    }
}

/// Writes `frames` (each shown `1 / fps` s, looping for ever) as a GIF into `out`, every frame in one palette made from
/// the frames' own colours ([`shared_palette`]).
pub fn write_gif(
    frames: &[egui::ColorImage],
    fps: f32,
    progress: &EncodeProgress,
    out: impl Write,
) -> Result<(), EncodeError> {
    let (size, pad) = common_size(frames)?;
    let failed = |e: gif::EncodingError| EncodeError::Failed(e.to_string());
    let pixels: Vec<Vec<u8>> = frames.iter().map(|f| rgba(f, size, pad)).collect();
    let palette = shared_palette(&pixels);
    let flat: Vec<u8> = palette.iter().flatten().copied().collect();
    let mut encoder = gif::Encoder::new(out, size[0] as u16, size[1] as u16, &flat).map_err(failed)?;
    encoder.set_repeat(gif::Repeat::Infinite).map_err(failed)?;
    let mut quantiser = Quantiser { palette: &palette, memo: HashMap::new() };
    let delay = gif_delay(fps);
    for frame in &pixels {
        let indices: Vec<u8> = frame.chunks_exact(4).map(|p| quantiser.index([p[0], p[1], p[2]])).collect();
        let mut gif_frame = gif::Frame::from_indexed_pixels(size[0] as u16, size[1] as u16, indices, None);
        gif_frame.delay = delay;
        encoder.write_frame(&gif_frame).map_err(failed)?;
        step(progress)?;
    }
    encoder.into_inner().map(drop).map_err(failed)
}

/// Writes `frames` in `format` to bytes (the caller writes them to the file atomically); `Cancelled` when Cancel
/// was pressed on the way.
pub fn encode(
    frames: &[egui::ColorImage],
    format: AnimationFormat,
    fps: f32,
    progress: &Arc<EncodeProgress>,
) -> Result<Vec<u8>, EncodeError> {
    let mut bytes = Vec::new();
    match format {
        AnimationFormat::Gif => write_gif(frames, fps, progress, &mut bytes)?,
        AnimationFormat::Apng => write_apng(frames, fps, progress, &mut bytes)?,
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::{AnimationFormat, EncodeError, EncodeProgress, apng_delay, encode, gif_delay, shared_palette};
    use egui::{Color32, ColorImage};
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    /// A dot moving across a gradient: many colours, and every frame different.
    fn frames(n: usize, size: [usize; 2]) -> Vec<ColorImage> {
        (0..n)
            .map(|k| {
                let mut pixels = Vec::with_capacity(size[0] * size[1]);
                for y in 0..size[1] {
                    for x in 0..size[0] {
                        let dot = (x as i64 - 4 * k as i64).pow(2) + (y as i64 - 10).pow(2) < 16;
                        pixels.push(if dot {
                            Color32::from_rgb(200, 30, 30)
                        } else {
                            Color32::from_rgb((x * 255 / size[0]) as u8, (y * 255 / size[1]) as u8, 128)
                        });
                    }
                }
                ColorImage::new(size, pixels)
            })
            .collect()
    }

    fn decode_apng(bytes: &[u8]) -> (u32, Vec<Vec<u8>>, [u32; 2]) {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let info = reader.info();
        let size = [info.width, info.height];
        let declared = info.animation_control.expect("an animation control chunk").num_frames;
        let mut decoded = Vec::new();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        while decoded.len() < declared as usize {
            let out = reader.next_frame(&mut buf).unwrap();
            decoded.push(buf[..out.buffer_size()].to_vec());
        }
        (declared, decoded, size)
    }

    #[test]
    fn an_apng_decodes_to_the_frames_as_drawn() {
        let frames = frames(7, [40, 24]);
        let progress = Arc::new(EncodeProgress::default());
        let bytes = encode(&frames, AnimationFormat::Apng, 12.0, &progress).unwrap();
        assert_eq!(progress.done.load(Ordering::Relaxed), 7);
        let (declared, decoded, size) = decode_apng(&bytes);
        assert_eq!((declared, decoded.len(), size), (7, 7, [40, 24]));
        for (frame, got) in frames.iter().zip(&decoded) {
            let want: Vec<u8> = frame.pixels.iter().flat_map(egui::Color32::to_srgba_unmultiplied).collect();
            assert_eq!(&want, got, "lossless");
        }
        assert!(decoded.windows(2).all(|w| w[0] != w[1]), "consecutive frames differ");
    }

    #[test]
    fn a_gif_decodes_to_the_frames_in_one_shared_palette() {
        let frames = frames(5, [64, 32]);
        let progress = Arc::new(EncodeProgress::default());
        let bytes = encode(&frames, AnimationFormat::Gif, 10.0, &progress).unwrap();
        let mut options = gif::DecodeOptions::new();
        options.set_color_output(gif::ColorOutput::RGBA);
        let mut decoder = options.read_info(std::io::Cursor::new(&bytes)).unwrap();
        assert_eq!((decoder.width(), decoder.height()), (64, 32));
        assert!(decoder.global_palette().is_some_and(|p| p.len() <= 256 * 3));
        let mut decoded = Vec::new();
        while let Some(frame) = decoder.read_next_frame().unwrap() {
            assert!(frame.palette.is_none(), "no frame has a palette of its own");
            assert_eq!((frame.width, frame.height, frame.delay), (64, 32, 10));
            decoded.push(frame.buffer.to_vec());
        }
        assert_eq!(decoded.len(), 5);
        assert!(decoded.windows(2).all(|w| w[0] != w[1]), "consecutive frames differ");
        // A gradient of 64 x 32 colours in 256: every pixel within one 5-bit cell's reach of its colour.
        for (frame, got) in frames.iter().zip(&decoded) {
            for (c, g) in frame.pixels.iter().zip(got.chunks_exact(4)) {
                let want = c.to_srgba_unmultiplied();
                let off = (0..3).map(|i| (i32::from(want[i]) - i32::from(g[i])).abs()).max().unwrap();
                assert!(off <= 40, "pixel {want:?} became {g:?}");
            }
        }
        // The moving dot's red survives exactly (a colour of the figure, not a blend).
        let red = decoded[2].chunks_exact(4).filter(|p| p[..3] == [200, 30, 30]).count();
        assert!(red >= 30, "the dot's {red} pixels");
    }

    #[test]
    fn a_figure_of_few_colours_keeps_them_exactly() {
        let pixels: Vec<Vec<u8>> = vec![[10u8, 20, 30, 255, 250, 250, 250, 255].repeat(50)];
        let palette = shared_palette(&pixels);
        assert_eq!(palette.len(), 2);
        assert!(palette.contains(&[10, 20, 30]) && palette.contains(&[250, 250, 250]));
    }

    #[test]
    fn cancel_stops_before_the_next_frame() {
        let frames = frames(4, [16, 16]);
        let progress = Arc::new(EncodeProgress::default());
        progress.cancel.store(true, Ordering::Relaxed);
        for format in AnimationFormat::ALL {
            assert_eq!(encode(&frames, format, 10.0, &progress), Err(EncodeError::Cancelled));
        }
    }

    #[test]
    fn frame_times_follow_the_rate() {
        assert_eq!(gif_delay(10.0), 10);
        assert_eq!(gif_delay(100.0), 2, "GIF's shortest delay browsers keep");
        assert_eq!(apng_delay(12.0), (83, 1000));
        assert_eq!(apng_delay(1.0), (1000, 1000));
    }

    #[test]
    fn frames_of_another_size_are_cut_or_padded_to_the_first() {
        let mut frames = frames(2, [20, 10]);
        frames.push(ColorImage::new([30, 5], vec![Color32::BLACK; 150]));
        let progress = Arc::new(EncodeProgress::default());
        let bytes = encode(&frames, AnimationFormat::Apng, 5.0, &progress).unwrap();
        let (_, decoded, size) = decode_apng(&bytes);
        assert_eq!((decoded.len(), size), (3, [20, 10]));
    }
}
