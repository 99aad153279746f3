//! Dense stacks taken forward and backward by hand on the CPU, for the training passes that skip candle's autograd
//! ([`crate::compute::cpu::coupling`], [`crate::compute::cpu::vae`]). candle runs each elementwise operation of a pass
//! as its own tensor through its thread pool and allocates every intermediate afresh; on two cores that costs more
//! than the arithmetic. Here the products go to `gemm` on the calling thread ([`crate::compute::cpu::gemm`]), the
//! activations are applied in place, and every buffer lives in a [`StackPass`] that is reused from step to step.
//! The weights are read where candle keeps them ([`with_cpu_f32`]), and the gradients are written into one flat
//! buffer in the variables' order, which the optimiser takes as it is.

use std::cell::RefCell;

use candle_core::{CpuStorage, DType, InplaceOp1, Layout, Storage, Tensor};

use crate::compute::activation::{Activation, LEAKY_SLOPE};
use crate::compute::cpu::gemm::matmul;

/// One dense layer's values, borrowed: `y = act(x · W + b)`, `W` `[n_in, n_out]` row-major.
#[derive(Clone, Copy, Debug)]
pub struct DenseRef<'a> {
    /// `[n_in, n_out]`, row-major.
    pub weights: &'a [f32],
    /// `[n_out]`.
    pub biases: &'a [f32],
    /// Inputs per row.
    pub n_in: usize,
    /// Outputs per row.
    pub n_out: usize,
    /// Applied to every output.
    pub activation: Activation,
}

/// Gradient values of a stack's variables: per layer its weights then its biases.
#[must_use]
pub fn gradient_len(net: &[DenseRef<'_>]) -> usize {
    net.iter().map(|l| l.n_in * l.n_out + l.n_out).sum()
}

/// Runs `f` on the values of `tensors`, borrowed from candle's storage without a copy; `None` (and `f` not run)
/// unless every tensor is a contiguous f32 tensor on the CPU. The tensors stay read-locked while `f` runs, so `f`
/// must not set them.
pub fn with_cpu_f32<R>(tensors: &[&Tensor], f: impl FnOnce(&[&[f32]]) -> R) -> Option<R> {
    if tensors.iter().any(|t| t.dtype() != DType::F32 || !t.device().is_cpu()) {
        return None;
    }
    let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
    let mut slices = Vec::with_capacity(guards.len());
    for (storage, layout) in &guards {
        let (start, end) = layout.contiguous_offsets()?;
        let Storage::Cpu(cpu) = &**storage else { return None };
        slices.push(cpu.as_slice::<f32>().ok()?.get(start..end)?);
    }
    Some(f(&slices))
}

/// Runs `f` on the values of `tensor`, borrowed mutably from candle's storage, so that what `f` writes is the
/// tensor's (and every clone's) new value without a copy; `None` (and `f` not run) unless `tensor` is a contiguous
/// f32 tensor on the CPU. The storage stays write-locked while `f` runs, so `f` must not read `tensor` otherwise.
pub fn with_cpu_f32_mut<R>(tensor: &Tensor, f: impl FnOnce(&mut [f32]) -> R) -> Option<R> {
    if tensor.dtype() != DType::F32 || !tensor.device().is_cpu() {
        return None;
    }
    let op = InPlace { f: RefCell::new(Some(f)), result: RefCell::new(None) };
    tensor.inplace_op1(&op).ok()?;
    op.result.into_inner()
}

/// candle's way into a tensor's own storage: an in-place operation, here one that hands the values to a closure.
struct InPlace<F, R> {
    f: RefCell<Option<F>>,
    result: RefCell<Option<R>>,
}

impl<F: FnOnce(&mut [f32]) -> R, R> InplaceOp1 for InPlace<F, R> {
    fn name(&self) -> &'static str {
        "cpu-f32-in-place"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let target = match (storage, layout.contiguous_offsets()) {
            (CpuStorage::F32(data), Some((start, end))) => data.get_mut(start..end),
            _ => None,
        };
        let target = target.ok_or_else(|| candle_core::Error::msg("not a contiguous f32 tensor"))?;
        if let Some(f) = self.f.borrow_mut().take() {
            *self.result.borrow_mut() = Some(f(target));
        }
        Ok(())
    }
}

/// A stack's values on one minibatch, kept for its backward pass. The buffers grow to the largest minibatch seen
/// and are reused, so a step allocates nothing once the first has run.
#[derive(Clone, Debug, Default)]
pub struct StackPass {
    rows: usize,
    /// The input rows `[rows, n_in]`.
    input: Vec<f32>,
    /// `outputs[i]`: dense layer i's output after its activation, `[rows, n_out]`.
    outputs: Vec<Vec<f32>>,
    /// `pre[i]`: layer i's pre-activations, kept only for activations whose derivative needs them (softplus).
    pre: Vec<Vec<f32>>,
    /// ∂loss/∂(the current layer's pre-activations or input) during the backward pass.
    grad: Vec<f32>,
    spare: Vec<f32>,
}

impl StackPass {
    /// Takes `net` forward on the `rows` rows of `x`; the result is [`Self::output`].
    ///
    /// # Panics
    /// When `x` does not hold `rows` rows of the first layer's width.
    pub fn forward(&mut self, net: &[DenseRef<'_>], x: &[f32], rows: usize) {
        assert_eq!(x.len(), rows * net.first().map_or(0, |l| l.n_in), "x must hold {rows} input rows");
        self.rows = rows;
        self.input.clear();
        self.input.extend_from_slice(x);
        self.outputs.resize_with(net.len(), Vec::new);
        self.pre.resize_with(net.len(), Vec::new);
        for (i, layer) in net.iter().enumerate() {
            let (before, rest) = self.outputs.split_at_mut(i);
            let input: &[f32] = if i == 0 { &self.input } else { &before[i - 1] };
            let out = &mut rest[0];
            // The product overwrites every value, so the buffer's old values need no clearing.
            out.resize(rows * layer.n_out, 0.0);
            matmul(out, input, false, layer.weights, false, (rows, layer.n_in, layer.n_out), false);
            match layer.activation {
                // The bias and the activation in one pass; the plain forms, which the compiler turns into vector
                // instructions.
                Activation::Relu => {
                    for row in out.chunks_exact_mut(layer.n_out) {
                        row.iter_mut().zip(layer.biases).for_each(|(v, &b)| *v = (*v + b).max(0.0));
                    }
                }
                other => {
                    for row in out.chunks_exact_mut(layer.n_out) {
                        row.iter_mut().zip(layer.biases).for_each(|(v, &b)| *v += b);
                    }
                    if other == Activation::Softplus {
                        self.pre[i].clear();
                        self.pre[i].extend_from_slice(out);
                    }
                    other.apply_in_place(out);
                }
            }
        }
    }

    /// The last forward pass's output, `[rows, n_out]` (its input for an empty stack).
    #[must_use]
    pub fn output(&self) -> &[f32] {
        self.outputs.last().unwrap_or(&self.input)
    }

    /// Back through `net` from `grad_output` (∂loss/∂output, `[rows, n_out]`) after [`Self::forward`]: writes
    /// ∂loss/∂variable into `grads` (as long as [`gradient_len`], per layer the weights then the biases), and
    /// ∂loss/∂input into [`Self::input_gradient`] when `input_gradient` (otherwise the first layer's product with
    /// the weights is skipped, which for an encoder reading images is a third of its backward pass).
    ///
    /// # Panics
    /// When `grad_output` or `grads` has the wrong length.
    pub fn backward(&mut self, net: &[DenseRef<'_>], grad_output: &[f32], grads: &mut [f32], input_gradient: bool) {
        let rows = self.rows;
        assert_eq!(grads.len(), gradient_len(net), "one gradient per variable value");
        assert_eq!(grad_output.len(), rows * net.last().map_or(0, |l| l.n_out), "∂loss/∂output per output");
        self.grad.clear();
        self.grad.extend_from_slice(grad_output);
        let mut rest = grads;
        let mut segments = Vec::with_capacity(net.len());
        for layer in net {
            let (w, tail) = rest.split_at_mut(layer.n_in * layer.n_out);
            let (b, tail) = tail.split_at_mut(layer.n_out);
            segments.push((w, b));
            rest = tail;
        }
        for (i, (layer, (grad_w, grad_b))) in net.iter().zip(segments).enumerate().rev() {
            multiply_by_derivative(layer.activation, &mut self.grad, &self.outputs[i], &self.pre[i]);
            let input: &[f32] = if i == 0 { &self.input } else { &self.outputs[i - 1] };
            matmul(grad_w, input, true, &self.grad, false, (layer.n_in, rows, layer.n_out), false);
            grad_b.fill(0.0);
            for row in self.grad.chunks_exact(layer.n_out) {
                for (b, &v) in grad_b.iter_mut().zip(row) {
                    *b += v;
                }
            }
            if i > 0 || input_gradient {
                // Overwritten by the product, as in the forward pass.
                self.spare.resize(rows * layer.n_in, 0.0);
                matmul(&mut self.spare, &self.grad, false, layer.weights, true, (rows, layer.n_out, layer.n_in), false);
                std::mem::swap(&mut self.grad, &mut self.spare);
            } else {
                self.grad.clear();
            }
        }
    }

    /// ∂loss/∂input, `[rows, n_in]`, from the last [`Self::backward`] that asked for it (empty otherwise).
    #[must_use]
    pub fn input_gradient(&self) -> &[f32] {
        &self.grad
    }
}

/// `grad *= act'(pre)`, from the activation's output `post` (and its input `pre`, which only softplus needs).
fn multiply_by_derivative(activation: Activation, grad: &mut [f32], post: &[f32], pre: &[f32]) {
    let each = |f: &dyn Fn(f32) -> f32, grad: &mut [f32]| grad.iter_mut().zip(post).for_each(|(g, &q)| *g *= f(q));
    match activation {
        Activation::Identity => {}
        // ReLU and leaky ReLU keep the sign, so their output says which side of zero the input was on.
        // A select rather than a branch, which the compiler turns into vector instructions.
        Activation::Relu => grad.iter_mut().zip(post).for_each(|(g, &q)| *g = if q > 0.0 { *g } else { 0.0 }),
        Activation::LeakyRelu => each(&|q| if q > 0.0 { 1.0 } else { LEAKY_SLOPE as f32 }, grad),
        Activation::Sigmoid => each(&|q| q * (1.0 - q), grad),
        Activation::Tanh => each(&|q| 1.0 - q * q, grad),
        Activation::Softplus => grad.iter_mut().zip(pre).for_each(|(g, &p)| *g *= 1.0 / (1.0 + (-p).exp())),
    }
}

impl crate::compute::params::DenseParams {
    /// The layer borrowed, as the hand-written CPU passes take it.
    #[must_use]
    pub fn as_ref(&self) -> DenseRef<'_> {
        DenseRef {
            weights: &self.weights,
            biases: &self.biases,
            n_in: self.n_in,
            n_out: self.n_out,
            activation: self.activation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{DenseRef, StackPass, gradient_len, with_cpu_f32, with_cpu_f32_mut};
    use crate::compute::Activation;

    /// A small stack's loss `Σ c ⊙ output` and its gradients, by [`StackPass`] and by central differences in f64
    /// on the same network, for every activation (each layer's derivative and the input gradient).
    #[test]
    fn the_backward_pass_matches_finite_differences_for_every_activation() {
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            f64::from(seed >> 8) / f64::from(1u32 << 24) - 0.5
        };
        let widths = [3usize, 5, 4, 2];
        let rows = 6;
        for activation in [
            Activation::Identity,
            Activation::Relu,
            Activation::LeakyRelu,
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Softplus,
        ] {
            let mut values: Vec<Vec<f64>> = Vec::new();
            for pair in widths.windows(2) {
                values.push((0..pair[0] * pair[1]).map(|_| 1.5 * next()).collect());
                values.push((0..pair[1]).map(|_| 0.5 * next()).collect());
            }
            let x: Vec<f64> = (0..rows * widths[0]).map(|_| 2.0 * next()).collect();
            let c: Vec<f64> = (0..rows * widths[3]).map(|_| next()).collect();
            // The loss in f64, by the definition, from flat parameters and inputs.
            let loss = |values: &[Vec<f64>], x: &[f64]| -> f64 {
                let mut h = x.to_vec();
                for (i, pair) in widths.windows(2).enumerate() {
                    let (n_in, n_out) = (pair[0], pair[1]);
                    let (w, b) = (&values[2 * i], &values[2 * i + 1]);
                    let act = if i + 2 == widths.len() { Activation::Identity } else { activation };
                    h = (0..rows * n_out)
                        .map(|rj| {
                            let (r, j) = (rj / n_out, rj % n_out);
                            let z = b[j] + (0..n_in).map(|p| h[r * n_in + p] * w[p * n_out + j]).sum::<f64>();
                            act.apply_scalar(z)
                        })
                        .collect();
                }
                h.iter().zip(&c).map(|(a, b)| a * b).sum()
            };
            let as_f32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
            let stored: Vec<Vec<f32>> = values.iter().map(|v| as_f32(v)).collect();
            let net: Vec<DenseRef<'_>> = widths
                .windows(2)
                .enumerate()
                .map(|(i, pair)| DenseRef {
                    weights: &stored[2 * i],
                    biases: &stored[2 * i + 1],
                    n_in: pair[0],
                    n_out: pair[1],
                    activation: if i + 2 == widths.len() { Activation::Identity } else { activation },
                })
                .collect();
            let mut pass = StackPass::default();
            // Twice, so the second pass runs on the first one's buffers.
            for _ in 0..2 {
                pass.forward(&net, &as_f32(&x), rows);
                let mut grads = vec![f32::NAN; gradient_len(&net)];
                pass.backward(&net, &as_f32(&c), &mut grads, true);
                let grad_x = pass.input_gradient().to_vec();
                let h = 1e-5;
                let mut offset = 0;
                for k in 0..values.len() {
                    for j in 0..values[k].len() {
                        let mut up = values.clone();
                        up[k][j] += h;
                        let mut down = values.clone();
                        down[k][j] -= h;
                        let want = (loss(&up, &x) - loss(&down, &x)) / (2.0 * h);
                        let got = f64::from(grads[offset + j]);
                        assert!((got - want).abs() < 2e-3 * (1.0 + want.abs()), "{activation:?} var {k}[{j}]");
                    }
                    offset += values[k].len();
                }
                for j in 0..x.len() {
                    let mut up = x.clone();
                    up[j] += h;
                    let mut down = x.clone();
                    down[j] -= h;
                    let want = (loss(&values, &up) - loss(&values, &down)) / (2.0 * h);
                    let got = f64::from(grad_x[j]);
                    assert!((got - want).abs() < 2e-3 * (1.0 + want.abs()), "{activation:?} input {j}");
                }
            }
            // Without the input gradient the variables' gradients are the same and no input gradient comes back.
            let mut with = vec![0.0; gradient_len(&net)];
            let mut without = vec![0.0; gradient_len(&net)];
            pass.forward(&net, &as_f32(&x), rows);
            pass.backward(&net, &as_f32(&c), &mut with, true);
            pass.forward(&net, &as_f32(&x), rows);
            pass.backward(&net, &as_f32(&c), &mut without, false);
            assert!(pass.input_gradient().is_empty());
            assert_eq!(with, without, "{activation:?}");
        }
    }

    /// Borrowed values are the tensors' own, a non-contiguous or f64 tensor is refused.
    #[test]
    fn cpu_values_are_borrowed_only_from_contiguous_f32_tensors() {
        let device = candle_core::Device::Cpu;
        let a = candle_core::Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3), &device).expect("a");
        let b = candle_core::Tensor::from_vec(vec![7.0f32], 1, &device).expect("b");
        let sums = with_cpu_f32(&[&a, &b], |v| v.iter().map(|s| s.iter().sum::<f32>()).collect::<Vec<_>>());
        assert_eq!(sums, Some(vec![21.0, 7.0]));
        let narrowed = a.narrow(1, 1, 1).expect("narrow");
        assert_eq!(with_cpu_f32(&[&narrowed], |v| v[0].to_vec()), None);
        let row = a.narrow(0, 1, 1).expect("row");
        assert_eq!(with_cpu_f32(&[&row], |v| v[0].to_vec()), Some(vec![4.0, 5.0, 6.0]));
        let wide = a.to_dtype(candle_core::DType::F64).expect("f64");
        assert_eq!(with_cpu_f32(&[&wide], |v| v.len()), None);
    }

    /// A write lands in the variable's own storage, which every clone of it sees; a row of a matrix is written
    /// where it lies; other tensors are refused without running the closure.
    #[test]
    fn cpu_values_are_written_in_place_only_into_contiguous_f32_tensors() {
        let device = candle_core::Device::Cpu;
        let var = candle_core::Var::from_slice(&[1.0f32, 2.0, 3.0, 4.0], (2, 2), &device).expect("var");
        let alias = var.as_tensor().clone();
        let old = with_cpu_f32_mut(var.as_tensor(), |w| {
            let old = w.to_vec();
            w.copy_from_slice(&[5.0, 6.0, 7.0, 8.0]);
            old
        });
        assert_eq!(old, Some(vec![1.0, 2.0, 3.0, 4.0]));
        let seen: Vec<f32> = alias.flatten_all().and_then(|t| t.to_vec1()).expect("values");
        assert_eq!(seen, vec![5.0, 6.0, 7.0, 8.0]);
        let row = alias.narrow(0, 1, 1).expect("row");
        assert_eq!(with_cpu_f32_mut(&row, |w| w.fill(0.0)), Some(()));
        let seen: Vec<f32> = var.as_tensor().flatten_all().and_then(|t| t.to_vec1()).expect("values");
        assert_eq!(seen, vec![5.0, 6.0, 0.0, 0.0]);
        let mut ran = false;
        let column = alias.narrow(1, 0, 1).expect("column");
        assert_eq!(with_cpu_f32_mut(&column, |_| ran = true), None);
        let wide = candle_core::Var::from_slice(&[1.0f64, 2.0], 2, &device).expect("f64 var");
        assert_eq!(with_cpu_f32_mut(wide.as_tensor(), |_| ran = true), None);
        assert!(!ran, "the closure must not run on a refused tensor");
    }
}
