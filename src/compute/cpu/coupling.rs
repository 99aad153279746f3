//! The RealNVP's training pass written out by hand: the negative log-likelihood of a minibatch and its gradient with
//! respect to every weight and bias, without candle's autograd. The dense nets go forward and back by
//! [`crate::compute::cpu::dense`] (`gemm` on the calling thread, buffers reused from step to step), the scale and
//! shift nets of a layer side by side as two rayon tasks, and the coupling's own arithmetic is plain loops over the
//! buffers of a [`RealNvpWorkspace`]. candle's autograd of the same loss ([`crate::models::flow`]) is the
//! reference the tests compare this with.
//!
//! The loss (Dinh, Sohl-Dickstein and Bengio 2017, "Density estimation using Real NVP"): data x are pulled back
//! through the coupling layers K..1, each u = m⊙v + (1−m)⊙(v − t(m⊙v))⊙exp(−s(m⊙v)), with s and t masked to the free
//! coordinates; then −log p_x(x) = ½|z|² + (D/2) log 2π + Σ_k Σ_d s_k, averaged over the minibatch.

use crate::compute::cpu::dense::{DenseRef, StackPass, gradient_len};

/// One affine coupling layer's values, borrowed.
#[derive(Clone, Debug)]
pub struct CouplingRef<'a> {
    /// 1 on the coordinates the layer passes through (and conditions on), 0 on those it transforms; `[dim]`.
    pub mask: &'a [f32],
    /// The scale net, first dense layer first.
    pub scale: Vec<DenseRef<'a>>,
    /// The shift net.
    pub shift: Vec<DenseRef<'a>>,
}

/// The coupling layers of `params`, borrowed (`None` unless every layer is an affine coupling): the tests' way
/// in from plain parameters (the trainer borrows its variables' storage instead).
#[cfg(test)]
#[must_use]
pub(crate) fn coupling_refs(params: &crate::compute::params::FlowParams) -> Option<Vec<CouplingRef<'_>>> {
    use crate::compute::params::{FlowLayerParams, MlpParams};

    fn dense(net: &MlpParams) -> Vec<DenseRef<'_>> {
        net.layers.iter().map(crate::compute::params::DenseParams::as_ref).collect()
    }
    params
        .layers
        .iter()
        .map(|l| match l {
            FlowLayerParams::Coupling { mask, scale_net, shift_net } => {
                Some(CouplingRef { mask, scale: dense(scale_net), shift: dense(shift_net) })
            }
            _ => None,
        })
        .collect()
}

/// What one coupling layer's inverse computed, kept for the backward pass.
#[derive(Clone, Debug, Default)]
struct LayerWork {
    /// The layer's input v (stage k+1), `[batch, dim]`.
    v: Vec<f32>,
    /// v with the transformed coordinates zeroed: the nets' input.
    keep: Vec<f32>,
    /// s and t, masked to the transformed coordinates, `[batch, dim]`.
    s: Vec<f32>,
    t: Vec<f32>,
    scale: StackPass,
    shift: StackPass,
}

/// Buffers of the pass, kept from one minibatch to the next so that a step allocates nothing after the first.
#[derive(Clone, Debug, Default)]
pub struct RealNvpWorkspace {
    layers: Vec<LayerWork>,
    /// The points on their way back to the Gaussian, then ∂loss/∂(the current stage).
    h: Vec<f32>,
    grad_s: Vec<f32>,
    grad_t: Vec<f32>,
    grad_v: Vec<f32>,
    /// ∂loss/∂variable after [`realnvp_loss_and_gradients`], all variables end to end in the flow trainer's order
    /// (per layer: the scale net's weights and biases, dense layer by dense layer, then the shift net's).
    pub gradients: Vec<f32>,
}

/// The mean negative log-likelihood of the `x.len() / dim` points of `x`, nats per point (`None` when there are
/// none), by the pass [`realnvp_loss_and_gradients`] starts with.
#[must_use]
pub fn realnvp_nll(layers: &[CouplingRef<'_>], dim: usize, x: &[f32], work: &mut RealNvpWorkspace) -> Option<f64> {
    pull_back(layers, dim, x, work)
}

/// The densities of the `x.len() / dim` points of `x` under the flow `layers` (the stage those layers end at,
/// pulled back to the Gaussian through all of them), appended to `density`, and each point's log|det| of the last of
/// `layers` (the forward direction's, Σ of its scales) appended to `last_log_det` (zeros when `layers` is empty).
/// The forward half of the training pass, for the density grids, which it takes in chunks.
pub fn realnvp_density(
    layers: &[CouplingRef<'_>],
    dim: usize,
    x: &[f32],
    work: &mut RealNvpWorkspace,
    density: &mut Vec<f32>,
    last_log_det: &mut Vec<f32>,
) {
    let batch = x.len().checked_div(dim).unwrap_or(0);
    if pull_back(layers, dim, x, work).is_none() {
        return;
    }
    let per_point =
        |values: &[f32], i: usize| -> f64 { values[i * dim..(i + 1) * dim].iter().map(|&v| f64::from(v)).sum() };
    let half_log_two_pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    // `pull_back` left one `LayerWork` per layer, each with its masked scales s.
    for i in 0..batch {
        let sq: f64 = work.h[i * dim..(i + 1) * dim].iter().map(|&v| 0.5 * f64::from(v) * f64::from(v)).sum();
        let dets = work.layers.iter().map(|lw| per_point(&lw.s, i));
        let (log_det, last) = dets.fold((0.0, 0.0), |(sum, _), d| (sum + d, d));
        density.push((-sq - dim as f64 * half_log_two_pi - log_det).exp() as f32);
        last_log_det.push(last as f32);
    }
}

/// The mean negative log-likelihood of the `x.len() / dim` points of `x` (`None` for an empty minibatch); its
/// gradient is left in `work.gradients`.
#[must_use]
pub fn realnvp_loss_and_gradients(
    layers: &[CouplingRef<'_>],
    dim: usize,
    x: &[f32],
    work: &mut RealNvpWorkspace,
) -> Option<f64> {
    let loss = pull_back(layers, dim, x, work)?;
    let batch = x.len() / dim;
    let n = batch * dim;
    // Back from z, the first layer first. ∂loss/∂z = z / batch.
    let inv_batch = 1.0 / batch as f32;
    work.h.iter_mut().for_each(|value| *value *= inv_batch);
    let sizes: Vec<(usize, usize)> = layers.iter().map(|l| (gradient_len(&l.scale), gradient_len(&l.shift))).collect();
    work.gradients.resize(sizes.iter().map(|(a, b)| a + b).sum(), 0.0);
    let mut rest: &mut [f32] = &mut work.gradients;
    for (layer, (lw, &(scale_len, shift_len))) in layers.iter().zip(work.layers.iter_mut().zip(&sizes)) {
        let (scale_grads, tail) = rest.split_at_mut(scale_len);
        let (shift_grads, tail) = tail.split_at_mut(shift_len);
        rest = tail;
        let mask = layer.mask;
        let (grad_u, grad_s, grad_t, grad_v) = (&mut work.h, &mut work.grad_s, &mut work.grad_t, &mut work.grad_v);
        for buffer in [&mut *grad_s, &mut *grad_t, &mut *grad_v] {
            buffer.clear();
            buffer.resize(n, 0.0);
        }
        for i in 0..n {
            let m = mask[i % dim];
            let e = (-lw.s[i]).exp();
            let free = 1.0 - m;
            grad_t[i] = -grad_u[i] * e * free;
            // The log-determinant adds s to the loss: 1 / batch per free coordinate.
            grad_s[i] = (-grad_u[i] * (lw.v[i] - lw.t[i]) * e + inv_batch) * free;
            grad_v[i] = grad_u[i] * (m + free * e);
        }
        let (scale, shift) = (&mut lw.scale, &mut lw.shift);
        rayon::join(
            || scale.backward(&layer.scale, grad_s, scale_grads, true),
            || shift.backward(&layer.shift, grad_t, shift_grads, true),
        );
        let (scale_in, shift_in) = (scale.input_gradient(), shift.input_gradient());
        for i in 0..n {
            grad_v[i] += (scale_in[i] + shift_in[i]) * mask[i % dim];
        }
        std::mem::swap(grad_u, grad_v);
    }
    Some(loss)
}

/// Pulls the points of `x` back to the Gaussian through every layer, keeping what the backward pass needs in
/// `work` (each layer's `v` is its output, stage k+1; `work.h` ends as z), and returns their mean negative
/// log-likelihood.
fn pull_back(layers: &[CouplingRef<'_>], dim: usize, x: &[f32], work: &mut RealNvpWorkspace) -> Option<f64> {
    let batch = x.len().checked_div(dim)?;
    if batch == 0 {
        return None;
    }
    work.layers.resize_with(layers.len(), LayerWork::default);
    // Pull the data back, the last layer first.
    work.h.clear();
    work.h.extend_from_slice(x);
    let mut sum_s = 0.0f64;
    for (layer, lw) in layers.iter().zip(work.layers.iter_mut()).rev() {
        through_layer(layer, lw, &mut work.h, dim, false);
        sum_s += lw.s.iter().map(|&value| f64::from(value)).sum::<f64>();
    }
    let half_log_two_pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    let sq: f64 = work.h.iter().map(|&value| 0.5 * f64::from(value) * f64::from(value)).sum();
    Some((sq + sum_s) / batch as f64 + dim as f64 * half_log_two_pi)
}

/// Pushes the points of `z` forward through every layer (generation): each layer's `v` in `work` is its input,
/// stage k, and `work.h` ends as the last stage.
fn push_forward(layers: &[CouplingRef<'_>], dim: usize, z: &[f32], work: &mut RealNvpWorkspace) {
    work.layers.resize_with(layers.len(), LayerWork::default);
    work.h.clear();
    work.h.extend_from_slice(z);
    for (layer, lw) in layers.iter().zip(work.layers.iter_mut()) {
        through_layer(layer, lw, &mut work.h, dim, true);
    }
}

/// Takes the points `h` (whole rows of `dim`) through one coupling layer, forward (generation: u -> v = m⊙u +
/// (1−m)⊙(u⊙exp(s) + t)) or back (inference: v -> u = m⊙v + (1−m)⊙(v − t)⊙exp(−s)), in place, keeping the points
/// it started from in `lw.v` and the layer's s and t.
fn through_layer(layer: &CouplingRef<'_>, lw: &mut LayerWork, h: &mut [f32], dim: usize, generation: bool) {
    lw.v.clear();
    lw.v.extend_from_slice(h);
    scale_and_shift(layer, lw, dim, h.len() / dim);
    let (mask, LayerWork { v, s, t, .. }) = (layer.mask, &*lw);
    for (i, out) in h.iter_mut().enumerate() {
        let m = mask[i % dim];
        let moved = if generation { v[i] * s[i].exp() + t[i] } else { (v[i] - t[i]) * (-s[i]).exp() };
        *out = m * v[i] + (1.0 - m) * moved;
    }
}

/// The scale s and shift t of `layer` at the `batch` points in `lw.v` (the nets see only the coordinates the mask
/// keeps, which the layer passes through unchanged, so either side of the layer gives the same), masked to the
/// transformed coordinates, into `lw.s` and `lw.t`.
fn scale_and_shift(layer: &CouplingRef<'_>, lw: &mut LayerWork, dim: usize, batch: usize) {
    let mask = layer.mask;
    let LayerWork { v, keep, s, t, scale, shift } = lw;
    keep.clear();
    keep.extend(v.iter().enumerate().map(|(i, &value)| value * mask[i % dim]));
    rayon::join(|| scale.forward(&layer.scale, keep, batch), || shift.forward(&layer.shift, keep, batch));
    let free = |out: &[f32], into: &mut Vec<f32>| {
        into.clear();
        into.extend(out.iter().enumerate().map(|(i, &value)| value * (1.0 - mask[i % dim])));
    };
    free(scale.output(), s);
    free(shift.output(), t);
}

/// Every stage of the points of `x` through the flow `layers`, appended to `stages` (stage k to `stages[k]`,
/// `layers.len() + 1` of them) with each layer's forward log|det| (the sum of its scales) at each point appended to
/// `log_det[k]`: generation pushes Gaussian points `x` forward from stage 0; inference pulls points `x` of the last
/// stage back to stage 0. The flow's views take their stages this way, in chunks.
///
/// # Panics
/// When `stages` is not one longer than `layers`, or `log_det` not as long.
pub fn realnvp_stages(
    layers: &[CouplingRef<'_>],
    dim: usize,
    x: &[f32],
    generation: bool,
    work: &mut RealNvpWorkspace,
    stages: &mut [Vec<f32>],
    log_det: &mut [Vec<f32>],
) {
    assert_eq!((stages.len(), log_det.len()), (layers.len() + 1, layers.len()), "one stage more than layers");
    let batch = x.len().checked_div(dim).unwrap_or(0);
    if batch == 0 {
        return;
    }
    // Each layer's v is its input (generation) or its output (inference).
    let (first_v, last) = if generation {
        push_forward(layers, dim, x, work);
        (0, layers.len())
    } else {
        let _ = pull_back(layers, dim, x, work);
        (1, 0)
    };
    stages[last].extend_from_slice(&work.h);
    for (k, lw) in work.layers.iter().enumerate() {
        stages[k + first_v].extend_from_slice(&lw.v);
        log_det[k]
            .extend(lw.s.chunks_exact(dim).map(|row| row.iter().map(|&value| f64::from(value)).sum::<f64>() as f32));
    }
}
