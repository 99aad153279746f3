//! The RealNVP's training pass written out by hand: the negative log-likelihood of a minibatch and its gradient with
//! respect to every weight and bias, without candle's autograd. candle runs each elementwise operation of a pass as
//! its own tensor, through a thread pool whose second thread spins between operations; on two cores that cost more
//! than the arithmetic. Here the products go to `gemm` on one thread each ([`crate::models::cpu_gemm`]), the scale
//! and shift nets of a layer run side by side (rayon), and the elementwise work is plain loops over reused buffers.
//! candle's autograd of the same loss ([`crate::models::flow`]) is the reference the tests compare this with.
//!
//! The loss (Dinh, Sohl-Dickstein and Bengio 2017, "Density estimation using Real NVP"): data x are pulled back
//! through the coupling layers K..1, each u = m⊙v + (1−m)⊙(v − t(m⊙v))⊙exp(−s(m⊙v)), with s and t masked to the free
//! coordinates; then −log p_x(x) = ½|z|² + (D/2) log 2π + Σ_k Σ_d s_k, averaged over the minibatch.

use crate::models::activation::Activation;
use crate::models::cpu_gemm::matmul;
use crate::models::params::{FlowLayerParams, FlowParams, MlpParams};

/// The mean negative log-likelihood of a minibatch and its gradient, one vector per trainable variable in the flow
/// trainer's order (per layer: the scale net's weights and biases, dense layer by dense layer, then the shift net's).
#[derive(Clone, Debug)]
pub struct LossAndGradients {
    /// Mean negative log-likelihood, nats per point.
    pub loss: f64,
    /// ∂loss/∂variable, each as long as its variable.
    pub gradients: Vec<Vec<f32>>,
}

/// One dense stack's values on a minibatch, kept for the backward pass.
struct Activations {
    /// `inputs[i]` enters dense layer i (`inputs[0]` is the masked input), `[batch, n_in]`.
    inputs: Vec<Vec<f32>>,
    /// Pre-activations of each dense layer, `[batch, n_out]`.
    pre: Vec<Vec<f32>>,
    /// The stack's output (after the last activation), `[batch, n_out]`.
    output: Vec<f32>,
}

/// `net` on the `batch` rows of `x`.
fn forward(net: &MlpParams, x: &[f32], batch: usize) -> Activations {
    let mut inputs = Vec::with_capacity(net.layers.len());
    let mut pre = Vec::with_capacity(net.layers.len());
    let mut h = x.to_vec();
    for layer in &net.layers {
        let mut z: Vec<f32> = Vec::with_capacity(batch * layer.n_out);
        for _ in 0..batch {
            z.extend_from_slice(&layer.biases);
        }
        matmul(&mut z, &h, false, &layer.weights, false, (batch, layer.n_in, layer.n_out), true);
        let out: Vec<f32> = z.iter().map(|&v| apply(layer.activation, v)).collect();
        inputs.push(std::mem::replace(&mut h, out));
        pre.push(z);
    }
    Activations { inputs, pre, output: h }
}

/// The activation at one value (ReLU and the identity in their plain forms, the rest as [`Activation::apply_f32`]).
fn apply(activation: Activation, v: f32) -> f32 {
    match activation {
        Activation::Identity => v,
        Activation::Relu => v.max(0.0),
        other => other.apply_f32(v),
    }
}

/// The derivative of the activation at pre-activation `pre`, whose image is `post`.
fn derivative(activation: Activation, pre: f32, post: f32) -> f32 {
    match activation {
        Activation::Identity => 1.0,
        Activation::Relu => {
            if pre > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::LeakyRelu => {
            if pre > 0.0 {
                1.0
            } else {
                crate::models::activation::LEAKY_SLOPE as f32
            }
        }
        Activation::Sigmoid => post * (1.0 - post),
        Activation::Tanh => 1.0 - post * post,
        Activation::Softplus => 1.0 / (1.0 + (-pre).exp()),
    }
}

/// Back through `net` from `grad_output` (∂loss/∂output, `[batch, n_out]`): the weights' and biases' gradients in
/// the trainer's order, and ∂loss/∂input.
fn backward(net: &MlpParams, acts: &Activations, grad_output: &[f32], batch: usize) -> (Vec<Vec<f32>>, Vec<f32>) {
    let n = net.layers.len();
    let mut grads = vec![Vec::new(); 2 * n];
    let mut g = grad_output.to_vec();
    for (i, layer) in net.layers.iter().enumerate().rev() {
        let post: &[f32] = if i + 1 == n { &acts.output } else { &acts.inputs[i + 1] };
        // ∂loss/∂pre-activation, [batch, n_out].
        for ((gv, &p), &q) in g.iter_mut().zip(&acts.pre[i]).zip(post) {
            *gv *= derivative(layer.activation, p, q);
        }
        let mut grad_w = vec![0.0f32; layer.n_in * layer.n_out];
        matmul(&mut grad_w, &acts.inputs[i], true, &g, false, (layer.n_in, batch, layer.n_out), false);
        let mut grad_b = vec![0.0f32; layer.n_out];
        for row in g.chunks_exact(layer.n_out) {
            for (b, &v) in grad_b.iter_mut().zip(row) {
                *b += v;
            }
        }
        let mut grad_in = vec![0.0f32; batch * layer.n_in];
        matmul(&mut grad_in, &g, false, &layer.weights, true, (batch, layer.n_out, layer.n_in), false);
        grads[2 * i] = grad_w;
        grads[2 * i + 1] = grad_b;
        g = grad_in;
    }
    (grads, g)
}

/// What one coupling layer's inverse computed, kept for the backward pass.
struct CouplingPass {
    /// The layer's input v (stage k+1), `[batch, dim]`.
    v: Vec<f32>,
    /// s and t, masked to the free coordinates, `[batch, dim]`.
    s: Vec<f32>,
    t: Vec<f32>,
    scale: Activations,
    shift: Activations,
}

/// The mean negative log-likelihood of the `x.len() / dim` points of `x` and its gradients, for a flow whose layers
/// are all affine couplings (`None` for any other flow, or for an empty minibatch).
#[must_use]
pub fn realnvp_loss_and_gradients(params: &FlowParams, x: &[f32]) -> Option<LossAndGradients> {
    let dim = params.dim;
    let batch = x.len().checked_div(dim)?;
    if batch == 0 {
        return None;
    }
    let layers: Vec<(&[f32], &MlpParams, &MlpParams)> = params
        .layers
        .iter()
        .map(|l| match l {
            FlowLayerParams::Coupling { mask, scale_net, shift_net } => Some((mask.as_slice(), scale_net, shift_net)),
            _ => None,
        })
        .collect::<Option<_>>()?;
    // Pull the data back, the last layer first.
    let mut passes: Vec<CouplingPass> = Vec::with_capacity(layers.len());
    let mut h = x.to_vec();
    let mut sum_s = 0.0f64;
    for &(mask, scale_net, shift_net) in layers.iter().rev() {
        let keep: Vec<f32> = h.chunks_exact(dim).flat_map(|row| row.iter().zip(mask).map(|(v, m)| v * m)).collect();
        let (scale, shift) = rayon::join(|| forward(scale_net, &keep, batch), || forward(shift_net, &keep, batch));
        let masked = |out: &[f32]| -> Vec<f32> {
            out.chunks_exact(dim).flat_map(|row| row.iter().zip(mask).map(|(v, m)| v * (1.0 - m))).collect()
        };
        let (s, t) = (masked(&scale.output), masked(&shift.output));
        let u: Vec<f32> = (0..batch * dim)
            .map(|i| {
                let m = mask[i % dim];
                m * h[i] + (1.0 - m) * (h[i] - t[i]) * (-s[i]).exp()
            })
            .collect();
        sum_s += s.iter().map(|&v| f64::from(v)).sum::<f64>();
        passes.push(CouplingPass { v: std::mem::replace(&mut h, u), s, t, scale, shift });
    }
    let z = h;
    let half_log_two_pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    let sq: f64 = z.iter().map(|&v| 0.5 * f64::from(v) * f64::from(v)).sum();
    let loss = (sq + sum_s) / batch as f64 + dim as f64 * half_log_two_pi;
    // Back from z, the first layer first. ∂loss/∂z = z / batch.
    let inv_batch = 1.0 / batch as f32;
    let mut grad_u: Vec<f32> = z.iter().map(|&v| v * inv_batch).collect();
    let mut per_layer: Vec<Vec<Vec<f32>>> = Vec::with_capacity(layers.len());
    for (pass, &(mask, scale_net, shift_net)) in passes.iter().rev().zip(&layers) {
        let mut grad_s = vec![0.0f32; batch * dim];
        let mut grad_t = vec![0.0f32; batch * dim];
        let mut grad_v = vec![0.0f32; batch * dim];
        for i in 0..batch * dim {
            let m = mask[i % dim];
            let e = (-pass.s[i]).exp();
            let free = 1.0 - m;
            grad_t[i] = -grad_u[i] * e * free;
            // The log-determinant adds s to the loss: 1 / batch per free coordinate.
            grad_s[i] = (-grad_u[i] * (pass.v[i] - pass.t[i]) * e + inv_batch) * free;
            grad_v[i] = grad_u[i] * (m + free * e);
        }
        let ((scale_grads, scale_in), (shift_grads, shift_in)) = rayon::join(
            || backward(scale_net, &pass.scale, &grad_s, batch),
            || backward(shift_net, &pass.shift, &grad_t, batch),
        );
        for i in 0..batch * dim {
            grad_v[i] += (scale_in[i] + shift_in[i]) * mask[i % dim];
        }
        per_layer.push(scale_grads.into_iter().chain(shift_grads).collect());
        grad_u = grad_v;
    }
    Some(LossAndGradients { loss, gradients: per_layer.into_iter().flatten().collect() })
}
