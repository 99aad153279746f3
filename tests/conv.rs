//! The gather-and-multiply convolutions of `models::conv` against candle's own `conv2d` and `conv_transpose2d`
//! (NCHW, direct), on random maps with odd and even sides, strides 1 and 2, symmetric and Keras "same" padding;
//! and their gradients against central finite differences.

use bayes_explorer::models::conv::{ConvGeometry, conv_transpose2d, conv2d};
use candle_core::{DType, Device, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn random(shape: &[usize], rng: &mut ChaCha8Rng) -> Tensor {
    let len = shape.iter().product();
    let v: Vec<f64> = (0..len).map(|_| StandardNormal.sample(rng)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// `[n, c, h, w]` -> rows `[n · h · w, c]`.
fn to_rows(x: &Tensor) -> Tensor {
    let (n, c, h, w) = x.dims4().unwrap();
    x.permute((0, 2, 3, 1)).unwrap().contiguous().unwrap().reshape((n * h * w, c)).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    a.sub(b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f64>().unwrap()
}

/// The cases: (n, c_in, c_out, big (h, w), stride, geometry).
fn cases() -> Vec<(usize, usize, usize, ConvGeometry)> {
    let symmetric = |big: (usize, usize), stride: usize| {
        let out = |s: usize| (s + 2 - 3) / stride + 1;
        ConvGeometry { big, small: (out(big.0), out(big.1)), kernel: 3, stride, pad: (1, 1) }
    };
    vec![
        (2, 3, 4, symmetric((7, 5), 1)),
        (3, 2, 5, symmetric((8, 6), 2)),
        (1, 1, 1, symmetric((1, 1), 1)),
        (2, 3, 2, ConvGeometry::same((28, 28), 3, 2)),
        (2, 2, 3, ConvGeometry::same((7, 9), 3, 2)),
        (1, 4, 2, ConvGeometry::same((5, 5), 3, 1)),
    ]
}

/// candle's convolution with the geometry's padding: symmetric where it is, otherwise the input padded with
/// zeros at the bottom and right first.
fn candle_conv(x: &Tensor, kernel: &Tensor, g: &ConvGeometry) -> Tensor {
    let extra = |big: usize, small: usize, pad: usize| ((small - 1) * g.stride + g.kernel).saturating_sub(big + pad);
    let x = x.pad_with_zeros(2, g.pad.0, extra(g.big.0, g.small.0, g.pad.0)).unwrap();
    let x = x.pad_with_zeros(3, g.pad.1, extra(g.big.1, g.small.1, g.pad.1)).unwrap();
    let y = x.conv2d(kernel, 0, g.stride, 1, 1).unwrap();
    y.narrow(2, 0, g.small.0).unwrap().narrow(3, 0, g.small.1).unwrap()
}

#[test]
fn convolution_matches_candle() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for (n, c_in, c_out, g) in cases() {
        let x = random(&[n, c_in, g.big.0, g.big.1], &mut rng);
        let kernel = random(&[c_out, c_in, 3, 3], &mut rng); // candle: [c_out, c_in, k, k]
        let bias = random(&[c_out], &mut rng);
        let expected = candle_conv(&x, &kernel, &g).broadcast_add(&bias.reshape((1, c_out, 1, 1)).unwrap()).unwrap();
        // Ours: [k² · c_in, c_out], row (ty · k + tx) · c_in + i.
        let w = kernel.permute((2, 3, 1, 0)).unwrap().contiguous().unwrap().reshape((9 * c_in, c_out)).unwrap();
        let ours = conv2d(&to_rows(&x), &w, Some(&bias), &g, n).unwrap();
        let diff = max_abs_diff(&ours, &to_rows(&expected));
        assert!(diff < 1e-12, "{g:?}: largest difference {diff}");
    }
}

#[test]
fn transposed_convolution_matches_candle() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for (n, c_in, c_out, g) in cases() {
        let x = random(&[n, c_in, g.small.0, g.small.1], &mut rng);
        let kernel = random(&[c_in, c_out, 3, 3], &mut rng); // candle: [c_in, c_out, k, k]
        let bias = random(&[c_out], &mut rng);
        // candle pads symmetrically: take the geometry's top-left padding and crop (or extend) the bottom-right.
        assert_eq!(g.pad.0, g.pad.1, "the cases pad both axes alike");
        let full = (g.small.0 - 1) * g.stride + 3 - 2 * g.pad.0;
        let output_padding = g.big.0.saturating_sub(full);
        let y = x.conv_transpose2d(&kernel, g.pad.0, output_padding, g.stride, 1).unwrap();
        let y = y.narrow(2, 0, g.big.0).unwrap().narrow(3, 0, g.big.1).unwrap();
        let expected = y.broadcast_add(&bias.reshape((1, c_out, 1, 1)).unwrap()).unwrap();
        // Ours: [c_in, k² · c_out], column (ty · k + tx) · c_out + o.
        let w = kernel.permute((0, 2, 3, 1)).unwrap().contiguous().unwrap().reshape((c_in, 9 * c_out)).unwrap();
        let ours = conv_transpose2d(&to_rows(&x), &w, Some(&bias), &g, n).unwrap();
        let diff = max_abs_diff(&ours, &to_rows(&expected));
        assert!(diff < 1e-12, "{g:?}: largest difference {diff}");
    }
}

/// `Σ r ⊙ f(x, w)` for a fixed random `r`: its gradient exercises every output.
#[test]
fn gradients_match_central_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let g = ConvGeometry::same((5, 6), 3, 2);
    let (n, c_in, c_out) = (2, 2, 3);
    for transposed in [false, true] {
        let (x_len, w_shape, y_len) = if transposed {
            (g.small_len(), (c_in, 9 * c_out), g.big_len())
        } else {
            (g.big_len(), (9 * c_in, c_out), g.small_len())
        };
        let x = Var::from_tensor(&random(&[n * x_len, c_in], &mut rng)).unwrap();
        let w = Var::from_tensor(&random(&[w_shape.0, w_shape.1], &mut rng)).unwrap();
        let b = Var::from_tensor(&random(&[c_out], &mut rng)).unwrap();
        let r = random(&[n * y_len, c_out], &mut rng);
        let loss = || {
            let y = if transposed {
                conv_transpose2d(x.as_tensor(), w.as_tensor(), Some(b.as_tensor()), &g, n)
            } else {
                conv2d(x.as_tensor(), w.as_tensor(), Some(b.as_tensor()), &g, n)
            }
            .unwrap();
            y.mul(&r).unwrap().sum_all().unwrap()
        };
        let grads = loss().backward().unwrap();
        for (name, v) in [("input", &x), ("weights", &w), ("biases", &b)] {
            let grad = grads.get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let values = v.as_tensor().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let shape = v.as_tensor().shape().clone();
            for (i, gi) in grad.iter().enumerate() {
                let at = |delta: f64| {
                    let mut shifted = values.clone();
                    shifted[i] += delta;
                    v.set(&Tensor::from_vec(shifted, shape.clone(), &Device::Cpu).unwrap()).unwrap();
                    loss().to_scalar::<f64>().unwrap()
                };
                let fd = (at(1e-6) - at(-1e-6)) / 2e-6;
                v.set(&Tensor::from_vec(values.clone(), shape.clone(), &Device::Cpu).unwrap()).unwrap();
                assert!(
                    (fd - gi).abs() <= 1e-6 * (1.0 + gi.abs()),
                    "transposed {transposed}, {name}[{i}]: {gi} vs {fd}"
                );
            }
        }
        assert_eq!(x.as_tensor().dtype(), DType::F64);
    }
}

/// The fused batch normalisation and activation against the same function from candle's operations: values,
/// batch statistics and the gradients of `x`, `gamma` and `beta`, with batch and with fixed statistics.
#[test]
fn fused_batch_norm_matches_candle_operations() {
    use bayes_explorer::compute::Activation;
    use bayes_explorer::compute::cpu::norm_act::{NormAct, Statistics};
    use bayes_explorer::models::conv::{NORM_EPSILON, NormMode, batch_norm_reference};
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let (r, c) = (37, 5);
    let running = (vec![0.3f32, -0.2, 0.0, 1.0, 0.5], vec![0.8f32, 1.5, 0.2, 1.0, 3.0]);
    for (activation, slope) in [(Activation::LeakyRelu, 0.3), (Activation::Relu, 0.0), (Activation::Identity, 1.0)] {
        for mode in [NormMode::Batch, NormMode::Running] {
            let x = Var::from_tensor(&(random(&[r, c], &mut rng) * 2.0).unwrap().affine(1.0, 0.7).unwrap()).unwrap();
            let gamma = Var::from_tensor(&random(&[c], &mut rng)).unwrap();
            let beta = Var::from_tensor(&random(&[c], &mut rng)).unwrap();
            let weights = random(&[r, c], &mut rng);
            let (x_t, g_t, b_t) = (x.as_tensor(), gamma.as_tensor(), beta.as_tensor());
            let (reference, ref_stats) = batch_norm_reference(x_t, g_t, b_t, mode, (&running.0, &running.1)).unwrap();
            let reference = activation.apply(&reference).unwrap();
            let statistics = match mode {
                NormMode::Batch => Statistics::Batch,
                NormMode::Running => Statistics::Fixed { mean: running.0.clone(), variance: running.1.clone() },
            };
            let op = NormAct::new(statistics, NORM_EPSILON, slope);
            let fused = op.apply(x_t, g_t, b_t).unwrap();
            let diff = max_abs_diff(&fused, &reference);
            assert!(diff < 1e-12, "{activation:?} {mode:?}: values differ by {diff}");
            match (ref_stats, op.batch_stats()) {
                (Some(a), Some(b)) => {
                    for (u, v) in a.mean.iter().zip(&b.mean).chain(a.variance.iter().zip(&b.variance)) {
                        assert!((u - v).abs() < 1e-6, "{activation:?}: statistics {u} vs {v}");
                    }
                }
                (None, None) => {}
                (a, b) => panic!("{mode:?}: statistics {a:?} vs {b:?}"),
            }
            let g_ref = reference.mul(&weights).unwrap().sum_all().unwrap().backward().unwrap();
            let g_fused = fused.mul(&weights).unwrap().sum_all().unwrap().backward().unwrap();
            for (name, v) in [("x", &x), ("gamma", &gamma), ("beta", &beta)] {
                let d = max_abs_diff(g_ref.get(v.as_tensor()).unwrap(), g_fused.get(v.as_tensor()).unwrap());
                assert!(d < 1e-10, "{activation:?} {mode:?}: gradient of {name} differs by {d}");
            }
        }
    }
}
