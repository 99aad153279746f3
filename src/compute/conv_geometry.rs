//! The geometry of the convolutional VAE's layers, shared by candle's path (`models::conv`) and the hand-written
//! one ([`crate::compute::cpu::conv`]): one [`ConvGeometry`] describes a convolution from a big map to a small
//! one and the transposed convolution back, with the tap table both directions use; [`ConvKind`] says which
//! direction a layer goes; [`NormMode`] and [`NormStats`] are batch normalisation's mode and statistics.

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Marks a tap that falls in the padding: `index_select` gives a zero row there, `index_add` skips it.
pub(crate) const PADDING_TAP: u32 = u32::MAX;

/// Batch normalisation's `epsilon` (Keras' default).
pub const NORM_EPSILON: f64 = 1e-3;

/// The geometry of a convolution from a big map to a small one (and of the transposed convolution back).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConvGeometry {
    /// `(height, width)` of the big map: a convolution's input, a transposed convolution's output.
    pub big: (usize, usize),
    /// `(height, width)` of the small map.
    pub small: (usize, usize),
    /// Side of the square kernel.
    pub kernel: usize,
    /// Step between kernel positions on the big map.
    pub stride: usize,
    /// Padding cells before the first row and column.
    pub pad: (usize, usize),
}

impl ConvGeometry {
    /// Keras' `padding="same"`: `ceil(size / stride)` positions, padding `max((out - 1) · stride + kernel - size,
    /// 0)` per axis with the smaller half before.
    #[must_use]
    pub fn same(big: (usize, usize), kernel: usize, stride: usize) -> Self {
        let stride = stride.max(1);
        let axis = |size: usize| {
            let out = size.div_ceil(stride);
            let total = ((out.max(1) - 1) * stride + kernel).saturating_sub(size);
            (out, total / 2)
        };
        let ((h, pad_h), (w, pad_w)) = (axis(big.0), axis(big.1));
        Self { big, small: (h, w), kernel, stride, pad: (pad_h, pad_w) }
    }

    /// Taps per output position, `k²`.
    #[must_use]
    pub fn taps_per_position(&self) -> usize {
        self.kernel * self.kernel
    }

    /// Positions of the big map, `h · w`.
    #[must_use]
    pub fn big_len(&self) -> usize {
        self.big.0 * self.big.1
    }

    /// Positions of the small map, `h · w`.
    #[must_use]
    pub fn small_len(&self) -> usize {
        self.small.0 * self.small.1
    }

    /// For each of `n` images, each small-map position (row by row) and each kernel tap `(ty, tx)`: the big-map
    /// row the tap covers, `image · big_len + y · width + x`, or [`PADDING_TAP`]. `[n · small_len · k²]`.
    #[must_use]
    pub fn tap_rows(&self, n: usize) -> Vec<u32> {
        let k = self.kernel;
        let (bh, bw) = self.big;
        let mut rows = Vec::with_capacity(n * self.small_len() * k * k);
        for image in 0..n {
            let base = image * bh * bw;
            for oy in 0..self.small.0 {
                for ox in 0..self.small.1 {
                    for ty in 0..k {
                        let y = (oy * self.stride + ty).checked_sub(self.pad.0).filter(|&y| y < bh);
                        for tx in 0..k {
                            let x = (ox * self.stride + tx).checked_sub(self.pad.1).filter(|&x| x < bw);
                            rows.push(match (y, x) {
                                #[allow(clippy::cast_possible_truncation, reason = "rows are checked below u32::MAX")]
                                (Some(y), Some(x)) => (base + y * bw + x) as u32,
                                _ => PADDING_TAP,
                            });
                        }
                    }
                }
            }
        }
        rows
    }

    pub(crate) fn tap_tensor(&self, n: usize, device: &Device) -> candle_core::Result<Tensor> {
        if n.saturating_mul(self.big_len()) >= PADDING_TAP as usize {
            candle_core::bail!("{n} images of {}x{} are too many for one batch", self.big.0, self.big.1);
        }
        let rows = self.tap_rows(n);
        let len = rows.len();
        Tensor::from_vec(rows, len, device)
    }
}

/// Whether batch normalisation uses the batch's statistics (training) or the running averages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormMode {
    /// The batch's mean and variance (and report them for the running averages).
    Batch,
    /// The running averages.
    Running,
}

/// A layer's batch statistics, per channel, for the running averages.
#[derive(Clone, Debug, PartialEq)]
pub struct NormStats {
    /// Per-channel means.
    pub mean: Vec<f32>,
    /// Per-channel biased variances.
    pub variance: Vec<f32>,
}

/// Whether a layer convolves (big map -> small) or transposes (small -> big).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConvKind {
    /// A convolution (`models::conv::conv2d`).
    Conv,
    /// A transposed convolution (`models::conv::conv_transpose2d`).
    Transposed,
}

impl ConvKind {
    /// Positions of the input and of the output map of a layer of this kind on `geometry`.
    #[must_use]
    pub fn map_lens(self, geometry: &ConvGeometry) -> (usize, usize) {
        match self {
            Self::Conv => (geometry.big_len(), geometry.small_len()),
            Self::Transposed => (geometry.small_len(), geometry.big_len()),
        }
    }
}

/// Batch statistics of every normalised layer of one forward pass, encoder first (empty when evaluating).
pub type BatchStats = Vec<Option<NormStats>>;
