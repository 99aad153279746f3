//! The convolutional VAE's training pass written out by hand: the loss of a minibatch and its gradient with respect
//! to every kernel, bias and batch-norm parameter, without candle's autograd.
//!
//! candle's path ([`crate::models::conv`]) gathers each convolution's kernel taps into a fresh tensor, scatters the
//! transposed convolutions' products into fresh zero tensors, and its backward pass adds every gradient into yet
//! another fresh zero tensor: a third of a step went to the kernel zeroing new pages and to memsets. Here the
//! same arithmetic runs over buffers that a [`ConvVaeWorkspace`] keeps from step to step:
//! - a **convolution** gathers its input's taps (im2col, [`gather_taps`]) into a buffer kept for the backward
//!   pass, multiplies by the kernel `[k² · c_in, c_out]`; backward, `∂W = colsᵀ · ∂h` and `∂x` is the scatter
//!   (col2im, [`scatter_taps`]) of `∂h · Wᵀ`;
//! - a **transposed convolution** multiplies by the kernel `[c_in, k² · c_out]` and scatters the products onto
//!   the big map; backward, it gathers `∂h`'s taps, `∂W = xᵀ · ∂cols` and `∂x = ∂cols · Wᵀ`;
//! - **batch normalisation and LeakyReLU** are [`NormAct`]'s own forward and backward loops, on slices;
//! - the two dense layers are [`StackPass`]es, and the loss is the MLP pass's ([`crate::compute::cpu::vae`]).
//!
//! The minibatch is split into the same [`crate::models::vae::SHARDS`] shards as candle's path, each a rayon task
//! with its own buffers, and batch normalisation uses each shard's own statistics, as there. The products run on
//! `gemm` in the shard's thread ([`crate::compute::cpu::gemm`]). candle's autograd is the reference the tests
//! compare this with; it still takes evaluation, the NaN guard's search and f64 gradient checks.

use rayon::prelude::*;

use crate::compute::activation::Activation;
use crate::compute::conv_geometry::{
    BatchStats, ConvGeometry, ConvKind, NORM_EPSILON, NormMode, NormStats, PADDING_TAP,
};
use crate::compute::cpu::dense::{DenseRef, StackPass, gradient_len};
use crate::compute::cpu::gemm::matmul;
use crate::compute::cpu::norm_act::{Moments, NormAct, Statistics};
use crate::compute::cpu::optim::FlatGradients;
use crate::compute::cpu::vae::Likelihood;
use crate::compute::cpu::vae::{
    ShardSums, VaeStepLoss, encoder_output_gradient, reconstruction, reparametrise, shard_shares, sharded_pass,
};

/// One convolutional layer's values, borrowed: `act(norm(conv(x) + b))`.
#[derive(Clone, Copy, Debug)]
pub struct ConvLayerRef<'a> {
    /// Direction.
    pub kind: ConvKind,
    /// Where the kernel goes.
    pub geometry: ConvGeometry,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// `[k² · c_in, c_out]` for a convolution, `[c_in, k² · c_out]` for a transposed one, row-major.
    pub weights: &'a [f32],
    /// `[c_out]`, if the layer has biases.
    pub biases: Option<&'a [f32]>,
    /// Batch normalisation's `(gamma, beta)`, `[c_out]` each, if the layer has it.
    pub norm: Option<(&'a [f32], &'a [f32])>,
    /// Batch normalisation's running `(mean, variance)`, `[c_out]` each, which evaluation uses.
    pub running: Option<(&'a [f32], &'a [f32])>,
    /// The activation's slope below zero: 1 for none, 0 for ReLU, 0.3 for the VAE's LeakyReLU.
    pub slope: f64,
}

impl ConvLayerRef<'_> {
    /// Positions of the input map.
    fn in_len(&self) -> usize {
        self.kind.map_lens(&self.geometry).0
    }

    /// Positions of the output map.
    fn out_len(&self) -> usize {
        self.kind.map_lens(&self.geometry).1
    }

    /// Gradient values: the kernel's, the biases', then `gamma`'s and `beta`'s.
    fn gradient_len(&self) -> usize {
        self.weights.len() + self.biases.map_or(0, <[f32]>::len) + self.norm.map_or(0, |(g, b)| g.len() + b.len())
    }

    /// Whether every slice has the length the shapes call for.
    fn fits(&self) -> bool {
        let c = self.c_out;
        self.weights.len() == self.geometry.taps_per_position() * self.c_in * c
            && self.biases.is_none_or(|b| b.len() == c)
            && self.norm.is_none_or(|(g, b)| g.len() == c && b.len() == c)
            && self.running.is_none_or(|(m, v)| m.len() == c && v.len() == c)
    }
}

/// What the pass needs besides the data: the networks (as [`crate::models::conv::ConvVaeNet`] builds them) and
/// the loss's settings.
#[derive(Clone, Copy, Debug)]
pub struct ConvVae<'a> {
    /// Side of the square images.
    pub side: usize,
    /// Latent dimension.
    pub latent: usize,
    /// The encoder's convolutions, first first; the first reads one channel.
    pub encoder: &'a [ConvLayerRef<'a>],
    /// The encoder's flattened last map -> `[mu, log sigma²]`.
    pub to_latent: DenseRef<'a>,
    /// Latents -> the decoder's first map, flattened.
    pub from_latent: DenseRef<'a>,
    /// The decoder's transposed convolutions; the last gives one channel of logits.
    pub decoder: &'a [ConvLayerRef<'a>],
    /// Which reconstruction term (of the logits' sigmoid for the Gaussian).
    pub likelihood: Likelihood,
    /// The KL's weight.
    pub beta: f64,
}

impl ConvVae<'_> {
    /// Whether the layers chain: each one's input has the previous one's map and channels, the dense layers
    /// meet the maps, and the decoder ends in one channel on the image.
    fn fits(&self) -> bool {
        let chain = |layers: &[ConvLayerRef<'_>], first: (usize, usize)| -> Option<(usize, usize)> {
            let mut at = first;
            for l in layers {
                if !l.fits() || (l.in_len(), l.c_in) != at {
                    return None;
                }
                at = (l.out_len(), l.c_out);
            }
            Some(at)
        };
        let image = self.side * self.side;
        let Some((enc_len, enc_c)) = chain(self.encoder, (image, 1)) else { return false };
        let (dec_len, dec_c) = self.decoder.first().map_or((0, 0), |l| (l.in_len(), l.c_in));
        let dense_fits = |d: &DenseRef<'_>| d.weights.len() == d.n_in * d.n_out && d.biases.len() == d.n_out;
        dense_fits(&self.to_latent)
            && dense_fits(&self.from_latent)
            && self.to_latent.n_in == enc_len * enc_c
            && self.to_latent.n_out == 2 * self.latent
            && self.from_latent.n_in == self.latent
            && self.from_latent.n_out == dec_len * dec_c
            && chain(self.decoder, (dec_len, dec_c)) == Some((image, 1))
            && self.from_latent.activation.negative_slope().is_some()
            && self.to_latent.activation == Activation::Identity
    }

    /// Gradient values of the encoder's convolutions, of the decoder's, and of the two dense layers: the
    /// variables' order in [`crate::models::conv::ConvVaeNet::vars`].
    fn gradient_lens(&self) -> [usize; 4] {
        let convs = |layers: &[ConvLayerRef<'_>]| layers.iter().map(ConvLayerRef::gradient_len).sum();
        [convs(self.encoder), convs(self.decoder), gradient_len(&[self.to_latent]), gradient_len(&[self.from_latent])]
    }
}

/// One convolutional layer's values on a shard, kept for its backward pass.
#[derive(Clone, Debug, Default)]
struct LayerWork {
    /// One image's tap table ([`ConvGeometry::tap_rows`]) and the geometry it is for.
    taps: Vec<u32>,
    taps_for: Option<ConvGeometry>,
    /// A convolution's gathered input `[n · small_len, k² · c_in]`.
    cols: Vec<f32>,
    /// The output before normalisation and activation, `[n · out_len, c_out]` (kept only when normalised).
    pre: Vec<f32>,
    /// The output, `[n · out_len, c_out]`.
    out: Vec<f32>,
    /// Batch normalisation's moments, for its backward pass.
    moments: Moments,
}

impl LayerWork {
    /// Makes [`Self::taps`] the table of `geometry`.
    fn refresh_taps(&mut self, geometry: ConvGeometry) {
        if self.taps_for != Some(geometry) {
            self.taps = geometry.tap_rows(1);
            self.taps_for = Some(geometry);
        }
    }
}

/// One shard's buffers.
#[derive(Clone, Debug, Default)]
struct ShardWork {
    encoder: Vec<LayerWork>,
    decoder: Vec<LayerWork>,
    to_latent: StackPass,
    from_latent: StackPass,
    /// Latent standard deviations and draws, `[rows, latent]`.
    sd: Vec<f32>,
    z: Vec<f32>,
    /// ∂loss/∂(the current layer's output) during the backward pass, and scratch for the next one.
    grad: Vec<f32>,
    spare: Vec<f32>,
    /// ∂loss/∂(gathered taps).
    grad_cols: Vec<f32>,
    /// This shard's share of ∂loss/∂variable, in the variables' order.
    gradients: Vec<f32>,
    /// Batch statistics of every layer (encoder's, decoder's), `None` where a layer is not normalised.
    stats: (BatchStats, BatchStats),
    rows: usize,
    /// Sums over the shard's rows of the reconstruction and KL terms.
    recon: f64,
    kl: f64,
}

impl ShardSums for ShardWork {
    fn sums(&self) -> (f64, f64) {
        (self.recon, self.kl)
    }
}

/// Buffers of the pass, kept from one minibatch to the next.
#[derive(Clone, Debug, Default)]
pub struct ConvVaeWorkspace {
    shards: Vec<ShardWork>,
    /// Shards the last minibatch used.
    used: usize,
}

impl ConvVaeWorkspace {
    /// ∂loss/∂variable after [`conv_vae_loss_and_gradients`], in the variables' order: the shards' shares, whose
    /// sum it is. Empty before the first pass.
    #[must_use]
    pub fn gradients(&self) -> FlatGradients<'_> {
        shard_shares(&self.shards[..self.used], |s| &s.gradients)
    }

    /// Each shard's rows and batch statistics from the last pass, for [`crate::models::conv::pool_stats`].
    #[must_use]
    pub fn batch_stats(&self) -> Vec<(usize, &(BatchStats, BatchStats))> {
        self.shards[..self.used].iter().map(|s| (s.rows, &s.stats)).collect()
    }
}

/// The loss of the images `x` (`[n, side²]`) with latent noise `eps` (`[n, latent]`), with batch normalisation on
/// each shard's statistics, and its gradient in `work` ([`ConvVaeWorkspace::gradients`]); `None` for an empty
/// minibatch or values whose shapes do not fit together.
#[must_use]
pub fn conv_vae_loss_and_gradients(
    vae: ConvVae<'_>,
    x: &[f32],
    eps: &[f32],
    work: &mut ConvVaeWorkspace,
) -> Option<VaeStepLoss> {
    let (n_in, latent) = (vae.side * vae.side, vae.latent);
    let rows = x.len().checked_div(n_in)?;
    if rows == 0 || x.len() != rows * n_in || eps.len() != rows * latent || !vae.fits() {
        return None;
    }
    let pass = |x: &[f32], eps: &[f32], inv_n, shard: &mut ShardWork| shard_pass(vae, x, eps, inv_n, shard);
    Some(sharded_pass((&mut work.shards, &mut work.used), (x, eps), (n_in, latent), vae.beta, pass))
}

/// One shard forward and back: its loss sums, batch statistics and its rows' share of the gradient (each row
/// weighted `inv_n`, one over the whole minibatch's rows).
fn shard_pass(vae: ConvVae<'_>, x: &[f32], eps: &[f32], inv_n: f32, work: &mut ShardWork) {
    let (latent, n_in) = (vae.latent, vae.side * vae.side);
    let n = x.len() / n_in;
    let ShardWork {
        encoder,
        decoder,
        to_latent,
        from_latent,
        sd,
        z,
        grad,
        spare,
        grad_cols,
        gradients,
        stats,
        rows,
        recon,
        kl,
    } = work;
    *rows = n;
    encoder.resize_with(vae.encoder.len(), LayerWork::default);
    decoder.resize_with(vae.decoder.len(), LayerWork::default);
    stats.0.clear();
    stats.1.clear();

    // Forward: the encoder's maps, [mu, log sigma²], the draws, the decoder's maps.
    for (i, layer) in vae.encoder.iter().enumerate() {
        let (before, rest) = encoder.split_at_mut(i);
        let input: &[f32] = if i == 0 { x } else { &before[i - 1].out };
        stats.0.push(layer_forward(layer, input, n, NormMode::Batch, &mut rest[0]));
    }
    let last_map: &[f32] = encoder.last().map_or(x, |l| &l.out);
    to_latent.forward(&[vae.to_latent], last_map, n);
    let enc = to_latent.output(); // [n, 2 latent]
    *kl = reparametrise(enc, eps, latent, sd, z);
    from_latent.forward(&[vae.from_latent], z, n);
    for (i, layer) in vae.decoder.iter().enumerate() {
        let (before, rest) = decoder.split_at_mut(i);
        let input: &[f32] = if i == 0 { from_latent.output() } else { &before[i - 1].out };
        stats.1.push(layer_forward(layer, input, n, NormMode::Batch, &mut rest[0]));
    }

    // The reconstruction term and ∂loss/∂logits.
    let logits: &[f32] = decoder.last().map_or(&[], |l| &l.out); // [n, side²]
    *recon = reconstruction(vae.likelihood, true, logits, x, n_in, inv_n, grad);

    // Backward, into the gradient's four parts in the variables' order.
    let [encoder_len, decoder_len, to_len, from_len] = vae.gradient_lens();
    gradients.resize(encoder_len + decoder_len + to_len + from_len, 0.0);
    let (encoder_grads, tail) = gradients.split_at_mut(encoder_len);
    let (decoder_grads, tail) = tail.split_at_mut(decoder_len);
    let (to_grads, from_grads) = tail.split_at_mut(to_len);
    let mut layer_grads = split_per_layer(decoder_grads, vae.decoder);
    for (i, layer) in vae.decoder.iter().enumerate().rev() {
        let (before, rest) = decoder.split_at(i);
        let input: &[f32] = if i == 0 { from_latent.output() } else { &before[i - 1].out };
        let scratch = (&mut *spare, &mut *grad_cols);
        layer_backward(layer, input, n, &rest[0], grad, layer_grads[i], true, scratch);
    }
    from_latent.backward(&[vae.from_latent], grad, from_grads, true);
    let grad_z = from_latent.input_gradient(); // [n, latent]
    encoder_output_gradient(enc, sd, eps, grad_z, latent, (vae.beta as f32, inv_n), grad);
    to_latent.backward(&[vae.to_latent], grad, to_grads, true);
    grad.clear();
    grad.extend_from_slice(to_latent.input_gradient()); // [n, flattened last map]
    let mut layer_grads = split_per_layer(encoder_grads, vae.encoder);
    for (i, layer) in vae.encoder.iter().enumerate().rev() {
        let (before, rest) = encoder.split_at(i);
        let input: &[f32] = if i == 0 { x } else { &before[i - 1].out };
        let scratch = (&mut *spare, &mut *grad_cols);
        layer_backward(layer, input, n, &rest[0], grad, layer_grads[i], i > 0, scratch);
    }
}

/// Images per forward pass when evaluating: bounds the memory each thread keeps (about 20 MB for 32 images of
/// 28 × 28) while keeping the products large (6,272 rows at the widest layer).
pub const EVAL_CHUNK: usize = 32;

/// `[mu, log sigma²]` `[n, 2 latent]` of the images `x` `[n, side²]`, batch normalisation on its running averages,
/// in chunks of [`EVAL_CHUNK`] images: on rayon's threads when `parallel` (the trainer's evaluation), otherwise on
/// the calling thread (a view thread, which must leave rayon's pool to the training steps: a job there would hold
/// both of its threads until done, and a step waits behind it). `None` when the shapes do not fit (or a
/// normalised layer has no running averages).
#[must_use]
pub fn encode_running(vae: &ConvVae<'_>, x: &[f32], parallel: bool) -> Option<Vec<f32>> {
    let n_in = vae.side * vae.side;
    if !vae.fits() || !has_running(vae) || !x.len().is_multiple_of(n_in.max(1)) {
        return None;
    }
    let to_latent = [vae.to_latent];
    Some(in_chunks(x, n_in, parallel, |part, n, work| {
        work.layers.resize_with(vae.encoder.len(), LayerWork::default);
        let mut map: &[f32] = part;
        for (layer, w) in vae.encoder.iter().zip(work.layers.iter_mut()) {
            layer_forward(layer, map, n, NormMode::Running, w);
            map = &w.out;
        }
        work.dense.forward(&to_latent, map, n);
        work.dense.output().to_vec()
    }))
}

/// The decoder's logits `[n, side²]` of latents `z` `[n, latent]`, batch normalisation on its running averages, as
/// [`encode_running`] runs.
#[must_use]
pub fn decode_running(vae: &ConvVae<'_>, z: &[f32], parallel: bool) -> Option<Vec<f32>> {
    if !vae.fits() || !has_running(vae) || !z.len().is_multiple_of(vae.latent.max(1)) {
        return None;
    }
    let from_latent = [vae.from_latent];
    Some(in_chunks(z, vae.latent, parallel, |part, n, work| {
        work.layers.resize_with(vae.decoder.len(), LayerWork::default);
        work.dense.forward(&from_latent, part, n);
        let mut map: &[f32] = work.dense.output();
        for (layer, w) in vae.decoder.iter().zip(work.layers.iter_mut()) {
            layer_forward(layer, map, n, NormMode::Running, w);
            map = &w.out;
        }
        map.to_vec()
    }))
}

/// Whether every normalised layer has its running averages.
fn has_running(vae: &ConvVae<'_>) -> bool {
    vae.encoder.iter().chain(vae.decoder).all(|l| l.norm.is_none() || l.running.is_some())
}

/// One evaluating thread's buffers.
#[derive(Default)]
struct EvalWork {
    layers: Vec<LayerWork>,
    dense: StackPass,
}

/// `f` on each chunk of [`EVAL_CHUNK`] rows of `width` values of `rows`, on rayon's threads when `parallel`
/// (otherwise on this one), each thread with the workspace it keeps from call to call (fresh buffers of this size
/// cost more in page faults and zeroing than the arithmetic), the outputs concatenated in order.
fn in_chunks(
    rows: &[f32],
    width: usize,
    parallel: bool,
    f: impl Fn(&[f32], usize, &mut EvalWork) -> Vec<f32> + Sync,
) -> Vec<f32> {
    thread_local! {
        static WORK: std::cell::RefCell<EvalWork> = std::cell::RefCell::default();
    }
    let width = width.max(1);
    let run = |part: &[f32]| {
        WORK.with(|work| match work.try_borrow_mut() {
            Ok(mut work) => f(part, part.len() / width, &mut work),
            // Only if `f` itself came back here on this thread.
            Err(_) => f(part, part.len() / width, &mut EvalWork::default()),
        })
    };
    let chunk = EVAL_CHUNK * width;
    let parts: Vec<Vec<f32>> =
        if parallel { rows.par_chunks(chunk).map(run).collect() } else { rows.chunks(chunk).map(run).collect() };
    parts.concat()
}

/// `grads` cut into each layer's part.
fn split_per_layer<'g>(mut grads: &'g mut [f32], layers: &[ConvLayerRef<'_>]) -> Vec<&'g mut [f32]> {
    let mut parts = Vec::with_capacity(layers.len());
    for l in layers {
        let (part, tail) = std::mem::take(&mut grads).split_at_mut(l.gradient_len());
        parts.push(part);
        grads = tail;
    }
    parts
}

/// A layer forward on `n` images `input` `[n · in_len, c_in]`: its output in `work.out`; returns its batch
/// statistics if it is normalised.
fn layer_forward(
    layer: &ConvLayerRef<'_>,
    input: &[f32],
    n: usize,
    mode: NormMode,
    work: &mut LayerWork,
) -> Option<NormStats> {
    let g = layer.geometry;
    let (k2, small) = (g.taps_per_position(), n * g.small_len());
    let (c_in, c_out) = (layer.c_in, layer.c_out);
    // The normalised layers keep the convolution's output for the backward pass; the others write it as the output.
    let mut h = std::mem::take(if layer.norm.is_some() { &mut work.pre } else { &mut work.out });
    work.refresh_taps(g);
    match layer.kind {
        ConvKind::Conv => {
            gather_taps(input, c_in, &work.taps, n, g, &mut work.cols);
            // The product overwrites every value: no need to clear them first.
            h.resize(small * c_out, 0.0);
            matmul(&mut h, &work.cols, false, layer.weights, false, (small, k2 * c_in, c_out), false);
        }
        ConvKind::Transposed => {
            let cols = &mut work.cols;
            cols.resize(small * k2 * c_out, 0.0);
            matmul(cols, input, false, layer.weights, false, (small, c_in, k2 * c_out), false);
            h.clear();
            h.resize(n * g.big_len() * c_out, 0.0);
            scatter_taps(&work.cols, c_out, &work.taps, n, g, &mut h);
        }
    }
    if let Some(b) = layer.biases {
        for row in h.chunks_exact_mut(c_out) {
            row.iter_mut().zip(b).for_each(|(v, &b)| *v += b);
        }
    }
    let Some((gamma, beta)) = layer.norm else {
        // (A slope of 1, no activation, leaves the values as they are.)
        let slope = layer.slope as f32;
        for v in &mut h {
            *v = if *v > 0.0 { *v } else { slope * *v };
        }
        work.out = h;
        return None;
    };
    let statistics = match (mode, layer.running) {
        (NormMode::Running, Some((mean, variance))) => {
            Statistics::Fixed { mean: mean.to_vec(), variance: variance.to_vec() }
        }
        _ => Statistics::Batch,
    };
    let op = NormAct::new(statistics, NORM_EPSILON, layer.slope);
    work.moments = op.forward_into(&h, gamma, beta, &mut work.out);
    work.pre = h;
    op.batch_stats()
}

/// A layer backward: `grad` holds ∂loss/∂output on entry and ∂loss/∂input on return (when `input_gradient`;
/// otherwise the input's product is skipped and `grad` left as scratch); the layer's gradient goes into `grads`
/// (kernel, biases, `gamma`, `beta`).
#[allow(clippy::too_many_arguments, reason = "a layer, its values, its gradients and the shard's scratch")]
fn layer_backward(
    layer: &ConvLayerRef<'_>,
    input: &[f32],
    n: usize,
    work: &LayerWork,
    grad: &mut Vec<f32>,
    grads: &mut [f32],
    input_gradient: bool,
    (spare, grad_cols): (&mut Vec<f32>, &mut Vec<f32>),
) {
    let g = layer.geometry;
    let (k2, small) = (g.taps_per_position(), n * g.small_len());
    let (c_in, c_out) = (layer.c_in, layer.c_out);
    let (grad_w, rest) = grads.split_at_mut(layer.weights.len());
    let (grad_b, grad_norm) = rest.split_at_mut(layer.biases.map_or(0, <[f32]>::len));
    // ∂loss/∂(the convolution's output), in `grad`.
    if let Some((gamma, _)) = layer.norm {
        let op = NormAct::new(Statistics::Batch, NORM_EPSILON, layer.slope);
        let (dgamma, dbeta) = op.backward_into(&work.pre, gamma, &work.out, grad, &work.moments, spare);
        std::mem::swap(grad, spare);
        let (grad_gamma, grad_beta) = grad_norm.split_at_mut(c_out);
        grad_gamma.iter_mut().zip(&dgamma).for_each(|(g, &v)| *g = v as f32);
        grad_beta.iter_mut().zip(&dbeta).for_each(|(g, &v)| *g = v as f32);
    } else {
        let slope = layer.slope as f32;
        grad.iter_mut().zip(&work.out).for_each(|(d, &y)| *d = if y > 0.0 { *d } else { *d * slope });
    }
    if !grad_b.is_empty() {
        grad_b.fill(0.0);
        for row in grad.chunks_exact(c_out) {
            grad_b.iter_mut().zip(row).for_each(|(b, &v)| *b += v);
        }
    }
    let taps = &work.taps;
    match layer.kind {
        ConvKind::Conv => {
            matmul(grad_w, &work.cols, true, grad, false, (k2 * c_in, small, c_out), false);
            if input_gradient {
                grad_cols.resize(small * k2 * c_in, 0.0);
                matmul(grad_cols, grad, false, layer.weights, true, (small, c_out, k2 * c_in), false);
                spare.clear();
                spare.resize(n * g.big_len() * c_in, 0.0);
                scatter_taps(grad_cols, c_in, taps, n, g, spare);
                std::mem::swap(grad, spare);
            }
        }
        ConvKind::Transposed => {
            gather_taps(grad, c_out, taps, n, g, grad_cols);
            matmul(grad_w, input, true, grad_cols, false, (c_in, small, k2 * c_out), false);
            if input_gradient {
                grad.resize(small * c_in, 0.0);
                matmul(grad, grad_cols, false, layer.weights, true, (small, k2 * c_out, c_in), false);
            }
        }
    }
}

/// im2col: for each of `n` images, each small-map position and each tap of `taps` (one image's table), the `c`
/// values of the big-map row `big` `[n · big_len, c]` it covers, or zeros in the padding, into `cols`
/// `[n · small_len, k² · c]`.
fn gather_taps(big: &[f32], c: usize, taps: &[u32], n: usize, g: ConvGeometry, cols: &mut Vec<f32>) {
    let per_image = taps.len() * c;
    cols.resize(n * per_image, 0.0);
    let images = cols.chunks_exact_mut(per_image).zip(big.chunks_exact(g.big_len() * c));
    if c == 1 {
        // One value per tap (the encoder's first layer, the decoder's last): a copy or a fill call per tap would
        // cost more than the value.
        for (cols, big) in images {
            for (&t, out) in taps.iter().zip(cols.iter_mut()) {
                *out = if t == PADDING_TAP { 0.0 } else { big[t as usize] };
            }
        }
        return;
    }
    for (cols, big) in images {
        for (&t, out) in taps.iter().zip(cols.chunks_exact_mut(c)) {
            if t == PADDING_TAP {
                out.fill(0.0);
            } else {
                let at = t as usize * c;
                out.copy_from_slice(&big[at..at + c]);
            }
        }
    }
}

/// col2im, the adjoint of [`gather_taps`]: adds every tap's `c` values of `cols` `[n · small_len, k² · c]` into
/// the big-map row it covers in `big` `[n · big_len, c]` (taps in the padding are dropped).
fn scatter_taps(cols: &[f32], c: usize, taps: &[u32], n: usize, g: ConvGeometry, big: &mut [f32]) {
    let per_image = taps.len() * c;
    let images = cols.chunks_exact(per_image).zip(big.chunks_exact_mut(g.big_len() * c)).take(n);
    if c == 1 {
        for (cols, big) in images {
            for (&t, &v) in taps.iter().zip(cols) {
                if t != PADDING_TAP {
                    big[t as usize] += v;
                }
            }
        }
        return;
    }
    for (cols, big) in images {
        for (&t, values) in taps.iter().zip(cols.chunks_exact(c)) {
            if t != PADDING_TAP {
                let at = t as usize * c;
                big[at..at + c].iter_mut().zip(values).for_each(|(b, &v)| *b += v);
            }
        }
    }
}
