//! A flow's layers as tensors ([`FlowNet`]): the affine bijector, RealNVP coupling and MADE layers, each forward
//! and inverse with its log-determinant; every stage of the flow in either direction and each stage's density on a
//! grid (by the hand-written RealNVP pass where it applies, by candle otherwise); the log-density the training
//! minimises, checked by the NaN guard's probe when it is not finite.

use candle_core::{D, DType, Device, Tensor, Var};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Uniform};

use crate::compute::Activation;
use crate::compute::TrainError;
use crate::compute::cpu::coupling as coupling_cpu;
use crate::compute::cpu::dense::{DenseRef, with_cpu_f32};
use crate::compute::cpu::guard::{Located, Probe};
use crate::compute::params::{DenseParams, FlowLayerParams, FlowParams, MlpParams};
use crate::models::flow::{FlowConfig, FlowInit, FlowKind};

/// Points per chunk when evaluating a grid.
const GRID_CHUNK_POINTS: usize = 32_768;

/// Points per chunk of the hand-written density grid: its buffers (four 256-wide activations per net, two nets) are
/// about 8 MB at this size and stay in the cache between products. Measured on the 512 x 512 grid: 8,192 points
/// 13.9 s, 2,048 14.0 s, 1,024 12.3 s, 512 13.1 s, 256 14.0 s.
const HAND_GRID_CHUNK_POINTS: usize = 1_024;

/// log(2π).
const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// A dense layer over tensors; `mask` (the MADE connectivity) multiplies the weights when present.
#[derive(Clone, Debug)]
struct Dense {
    weights: Tensor,      // [in, out]
    biases: Tensor,       // [out]
    mask: Option<Tensor>, // [in, out], 0 or 1
    activation: Activation,
}

impl Dense {
    /// `x W + b` `[n, out]`, before the activation.
    fn pre_activation(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let w = match &self.mask {
            Some(m) => self.weights.mul(m)?,
            None => self.weights.clone(),
        };
        x.matmul(&w)?.broadcast_add(&self.biases)
    }
}

/// A stack of dense layers.
#[derive(Clone, Debug)]
struct Net(Vec<Dense>);

impl Net {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.forward_probed(x, &mut Probe::off(), &|_| String::new(), None)
    }

    /// [`Self::forward`], checking every layer's pre-activations with `probe` (each activation keeps finite values
    /// finite): layer `i` (1-based) named `hidden(i)`, the last one `output()` if given, else left to the caller.
    fn forward_probed(
        &self,
        x: &Tensor,
        probe: &mut Probe,
        hidden: &dyn Fn(usize) -> String,
        output: Option<&dyn Fn() -> String>,
    ) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        for (i, layer) in self.0.iter().enumerate() {
            let pre = layer.pre_activation(&h)?;
            match output {
                Some(name) if i + 1 == self.0.len() => probe.check(&pre, name)?,
                None if i + 1 == self.0.len() => {}
                _ => probe.check(&pre, || hidden(i + 1))?,
            }
            h = layer.activation.apply(&pre)?;
        }
        Ok(h)
    }
}

/// One invertible layer over tensors.
#[derive(Clone, Debug)]
enum Layer {
    Affine { shift: Tensor, log_scale: Tensor },       // [dim] each
    Coupling { mask: Tensor, scale: Net, shift: Net }, // mask [1, dim]
    Maf { made: Net, dim: usize },
}

/// A flow as tensors: either the live, trainable model (its tensors are the variables) or a copy built from
/// [`FlowParams`] for the views, in f32 or, for finite-difference tests, f64.
#[derive(Clone, Debug)]
pub struct FlowNet {
    dim: usize,
    layers: Vec<Layer>,
    device: Device,
}

/// Points at every stage of a flow, with each layer's log-determinant.
#[derive(Clone, Debug, PartialEq)]
pub struct Stages {
    /// `points[k]` is stage k, row-major `[n, dim]`; stage 0 is the Gaussian, stage K the data.
    pub points: Vec<Vec<f32>>,
    /// `log_det[k - 1][i]` is log|det ∂(stage k)/∂(stage k-1)| at row i, for layers k = 1..=K.
    pub log_det: Vec<Vec<f32>>,
}

impl FlowNet {
    /// A fresh flow of `config`'s layers over `dim` coordinates, its weights drawn from `rng` layer by layer
    /// (as `config.init` says; an affine layer and each MADE's output layer start at the identity), with its
    /// variables and their names.
    pub fn new(
        config: &FlowConfig,
        dim: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<(Self, Vec<Var>, Vec<String>), TrainError> {
        let device = Device::Cpu;
        let mut vars = Vec::new();
        let mut names = Vec::new();
        let mut layers = Vec::new();
        for k in 0..config.layers {
            let layer_name = format!("layer {}", k + 1);
            let layer = match config.kind {
                FlowKind::Affine => {
                    let shift = Var::zeros(dim, DType::F32, &device)?;
                    let log_scale = Var::zeros(dim, DType::F32, &device)?;
                    vars.extend([shift.clone(), log_scale.clone()]);
                    names.extend([format!("{layer_name} shift"), format!("{layer_name} log-scale")]);
                    Layer::Affine { shift: shift.as_tensor().clone(), log_scale: log_scale.as_tensor().clone() }
                }
                FlowKind::RealNvp => {
                    // Alternating masks in the Keras example's order ([0, 1], [1, 0], ...): layer 1, next to the
                    // Gaussian, passes y through and transforms x; the last layer, which data meet first when they
                    // are pulled back, transforms y given x. The order matters on the moons: given x, y has at
                    // most two modes, given y, x has up to four; the reverse order ended 0.3 nats worse
                    // (held-out NLL 1.62 against 1.34, seed 42).
                    let mask: Vec<f32> = if k % 2 == 0 { vec![0.0, 1.0] } else { vec![1.0, 0.0] };
                    let mut widths = vec![dim];
                    widths.extend(&config.hidden);
                    widths.push(dim);
                    let mut build = |net_name: &str, last: Activation| {
                        init_net(&widths, last, None, config.init, rng, &device, &format!("{layer_name} {net_name}"))
                    };
                    let (scale, scale_vars, scale_names) = build("scale net", Activation::Tanh)?;
                    let (shift, shift_vars, shift_names) = build("shift net", Activation::Identity)?;
                    vars.extend(scale_vars.into_iter().chain(shift_vars));
                    names.extend(scale_names.into_iter().chain(shift_names));
                    Layer::Coupling { mask: Tensor::from_slice(&mask, (1, dim), &device)?, scale, shift }
                }
                FlowKind::Maf => {
                    let mut widths = vec![dim];
                    widths.extend(&config.hidden);
                    widths.push(2 * dim);
                    let masks = made_masks(dim, &config.hidden);
                    let (mut made, v, n) = init_net(
                        &widths,
                        Activation::Identity,
                        Some(&masks),
                        config.init,
                        rng,
                        &device,
                        &format!("{layer_name} MADE"),
                    )?;
                    // The output layer starts at zero, so each layer starts as the identity (shift 0, log-scale
                    // 0): the unconstrained log-scales of a MAF otherwise make the first epochs erratic.
                    if let Some(last) = made.0.last_mut()
                        && let [.., weights, biases] = v.as_slice()
                    {
                        weights.set(&weights.as_tensor().zeros_like()?)?;
                        biases.set(&biases.as_tensor().zeros_like()?)?;
                        last.weights = weights.as_tensor().clone();
                        last.biases = biases.as_tensor().clone();
                    }
                    vars.extend(v);
                    names.extend(n);
                    Layer::Maf { made, dim }
                }
            };
            layers.push(layer);
        }
        Ok((Self { dim, layers, device }, vars, names))
    }

    /// Runs `f` on the coupling layers' values, borrowed from the tensors (the live model's are its variables)
    /// without a copy; `None` unless every layer is an affine coupling held as contiguous CPU f32 tensors.
    pub(super) fn with_coupling_values<R>(&self, f: impl FnOnce(&[coupling_cpu::CouplingRef<'_>]) -> R) -> Option<R> {
        let mut tensors: Vec<&Tensor> = Vec::new();
        for layer in &self.layers {
            let Layer::Coupling { mask, scale, shift } = layer else { return None };
            tensors.push(mask);
            for dense in scale.0.iter().chain(&shift.0) {
                if dense.mask.is_some() || dense.weights.rank() != 2 {
                    return None;
                }
                tensors.extend([&dense.weights, &dense.biases]);
            }
        }
        with_cpu_f32(&tensors, |values| {
            let mut values = values.iter().copied();
            let mut layers = Vec::with_capacity(self.layers.len());
            for layer in &self.layers {
                let Layer::Coupling { scale, shift, .. } = layer else { return None };
                let mask = values.next()?;
                let mut nets = [Vec::new(), Vec::new()];
                for (net, refs) in [scale, shift].into_iter().zip(&mut nets) {
                    for d in &net.0 {
                        let (weights, biases) = (values.next()?, values.next()?);
                        let dims = d.weights.dims();
                        refs.push(DenseRef {
                            weights,
                            biases,
                            n_in: dims[0],
                            n_out: dims[1],
                            activation: d.activation,
                        });
                    }
                }
                let [scale, shift] = nets;
                layers.push(coupling_cpu::CouplingRef { mask, scale, shift });
            }
            Some(f(&layers))
        })
        .flatten()
    }

    /// Builds tensors from plain parameters, in `dtype` (F32 for the views, F64 for precise tests).
    pub fn from_params(params: &FlowParams, dtype: DType) -> candle_core::Result<Self> {
        let device = Device::Cpu;
        let dim = params.dim;
        let vector = |v: &[f32]| Tensor::from_slice(v, v.len(), &device)?.to_dtype(dtype);
        let net = |p: &MlpParams| -> candle_core::Result<Net> {
            p.layers
                .iter()
                .map(|l| {
                    Ok(Dense {
                        weights: Tensor::from_slice(&l.weights, (l.n_in, l.n_out), &device)?.to_dtype(dtype)?,
                        biases: vector(&l.biases)?,
                        mask: None,
                        activation: l.activation,
                    })
                })
                .collect::<candle_core::Result<Vec<_>>>()
                .map(Net)
        };
        let layers = params
            .layers
            .iter()
            .map(|l| {
                Ok(match l {
                    FlowLayerParams::Affine { shift, log_scale } => {
                        Layer::Affine { shift: vector(shift)?, log_scale: vector(log_scale)? }
                    }
                    FlowLayerParams::Coupling { mask, scale_net, shift_net } => Layer::Coupling {
                        mask: vector(mask)?.reshape((1, mask.len()))?,
                        scale: net(scale_net)?,
                        shift: net(shift_net)?,
                    },
                    FlowLayerParams::Maf { made } => Layer::Maf { made: net(made)?, dim },
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self { dim, layers, device })
    }

    /// The parameters as plain data (MADE weights with their masks applied).
    pub fn params(&self) -> candle_core::Result<FlowParams> {
        let mlp = |net: &Net| -> candle_core::Result<MlpParams> {
            let layers = net
                .0
                .iter()
                .map(|d| {
                    let w = match &d.mask {
                        Some(m) => d.weights.mul(m)?,
                        None => d.weights.clone(),
                    };
                    let (n_in, n_out) = w.dims2()?;
                    Ok(DenseParams {
                        n_in,
                        n_out,
                        weights: w.flatten_all()?.to_vec1()?,
                        biases: d.biases.to_vec1()?,
                        activation: d.activation,
                    })
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            Ok(MlpParams { layers })
        };
        let layers = self
            .layers
            .iter()
            .map(|l| {
                Ok(match l {
                    Layer::Affine { shift, log_scale } => {
                        FlowLayerParams::Affine { shift: shift.to_vec1()?, log_scale: log_scale.to_vec1()? }
                    }
                    Layer::Coupling { mask, scale, shift } => FlowLayerParams::Coupling {
                        mask: mask.flatten_all()?.to_vec1()?,
                        scale_net: mlp(scale)?,
                        shift_net: mlp(shift)?,
                    },
                    Layer::Maf { made, .. } => FlowLayerParams::Maf { made: mlp(made)? },
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(FlowParams { dim: self.dim, layers })
    }

    /// Number of layers K (stages are 0..=K).
    #[must_use]
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// Dimension of the points.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Layer `k` (0-based) forward: `u` `[n, dim]` at stage k to stage k+1, with log|det| `[n]`.
    fn layer_forward(&self, k: usize, u: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        match &self.layers[k] {
            Layer::Affine { shift, log_scale } => {
                let v = u.broadcast_mul(&log_scale.exp()?)?.broadcast_add(shift)?;
                let log_det = log_scale.sum_all()?.broadcast_as(u.dim(0)?)?.contiguous()?;
                Ok((v, log_det))
            }
            Layer::Coupling { mask, scale, shift } => {
                let keep = u.broadcast_mul(mask)?; // [n, dim]
                let free = mask.neg()?.affine(1.0, 1.0)?; // 1 - m, [1, dim]
                let s = scale.forward(&keep)?.broadcast_mul(&free)?;
                let t = shift.forward(&keep)?.broadcast_mul(&free)?;
                let v = (keep + u.mul(&s.exp()?)?.broadcast_mul(&free)?.add(&t)?)?;
                Ok((v, s.sum(D::Minus1)?))
            }
            Layer::Maf { made, dim } => {
                // Sequential in the coordinates: after pass i, w_0..w_i are final, because output i of the
                // MADE sees only w_<i.
                let mut w = u.zeros_like()?;
                let mut log_scale = u.zeros_like()?;
                for _ in 0..*dim {
                    let out = made.forward(&w)?; // [n, 2 dim]
                    let shift = out.narrow(1, 0, *dim)?;
                    log_scale = out.narrow(1, *dim, *dim)?;
                    w = u.mul(&log_scale.exp()?)?.add(&shift)?;
                }
                Ok((reverse_columns(&w)?, log_scale.sum(D::Minus1)?))
            }
        }
    }

    /// Layer `k` (0-based) inverse: `v` at stage k+1 back to stage k, with the forward log|det| there.
    fn layer_inverse(&self, k: usize, v: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        self.layer_inverse_probed(k, v, &mut Probe::off())
    }

    /// [`Self::layer_inverse`], checking each quantity with `probe` in the order it is computed. Layers are named
    /// 1-based, as the views and the variables name them.
    fn layer_inverse_probed(&self, k: usize, v: &Tensor, probe: &mut Probe) -> candle_core::Result<(Tensor, Tensor)> {
        let n = k + 1;
        let (u, log_det) = match &self.layers[k] {
            Layer::Affine { shift, log_scale } => {
                let inverse_scale = log_scale.neg()?.exp()?;
                probe.check(&inverse_scale, || format!("affine layer {n}'s inverse scale"))?;
                let u = v.broadcast_sub(shift)?.broadcast_mul(&inverse_scale)?;
                probe.check(&u, || format!("layer {n}'s output"))?;
                (u, log_scale.sum_all()?.broadcast_as(v.dim(0)?)?.contiguous()?)
            }
            Layer::Coupling { mask, scale, shift } => {
                let keep = v.broadcast_mul(mask)?;
                let free = mask.neg()?.affine(1.0, 1.0)?;
                // The scale net's s or the shift net's t of the kept coordinates, on the free ones.
                let mut conditioned = |net: &Net, part: &str, output: &str| {
                    net.forward_probed(
                        &keep,
                        probe,
                        &|i| format!("dense layer {i} of coupling layer {n}'s {part} net"),
                        Some(&|| format!("coupling layer {n}'s {part} {output}")),
                    )?
                    .broadcast_mul(&free)
                };
                let s = conditioned(scale, "scale", "s")?;
                let t = conditioned(shift, "shift", "t")?;
                let u = (keep + v.sub(&t)?.mul(&s.neg()?.exp()?)?.broadcast_mul(&free)?)?;
                probe.check(&u, || format!("layer {n}'s output"))?;
                (u, s.sum(D::Minus1)?)
            }
            Layer::Maf { made, dim } => {
                let w = reverse_columns(v)?;
                let out = made.forward_probed(
                    &w,
                    probe,
                    &|i| format!("dense layer {i} of MAF layer {n}'s MADE network"),
                    None,
                )?;
                let shift = out.narrow(1, 0, *dim)?;
                probe.check(&shift, || format!("MAF layer {n}'s shift"))?;
                let log_scale = out.narrow(1, *dim, *dim)?;
                probe.check(&log_scale, || format!("MAF layer {n}'s log-scale"))?;
                let u = w.sub(&shift)?.mul(&log_scale.neg()?.exp()?)?;
                probe.check(&u, || format!("layer {n}'s output"))?;
                (u, log_scale.sum(D::Minus1)?)
            }
        };
        probe.check(&log_det, || format!("layer {n}'s log|det J|"))?;
        Ok((u, log_det))
    }

    /// Inference through every layer: data `x` `[n, dim]` to `z`, with Σ_k log|det ∂f_k| `[n]`; `probe` checks
    /// each layer's quantities, last layer first (the order of the pass), then the sum.
    fn inverse_all(&self, x: &Tensor, probe: &mut Probe) -> candle_core::Result<(Tensor, Tensor)> {
        let mut total = Tensor::zeros(x.dim(0)?, x.dtype(), &self.device)?;
        let mut h = x.clone();
        for k in (0..self.layers.len()).rev() {
            let (u, log_det) = self.layer_inverse_probed(k, &h, probe)?;
            total = total.add(&log_det)?;
            h = u;
        }
        probe.check(&total, || "the layers' summed log|det J|".to_owned())?;
        Ok((h, total))
    }

    /// log p_x(x) per row `[n]` (natural log): log N(z; 0, I) − Σ log|det|.
    pub(super) fn log_density_tensor(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.log_density_probed(x, &mut Probe::off())
    }

    /// [`Self::log_density_tensor`], checking every quantity of the pass with `probe`.
    fn log_density_probed(&self, x: &Tensor, probe: &mut Probe) -> candle_core::Result<Tensor> {
        let (z, log_det) = self.inverse_all(x, probe)?;
        let log_pz = standard_normal_log_density(&z)?;
        probe.check(&log_pz, || "the base density log p_z".to_owned())?;
        let log_px = log_pz.sub(&log_det)?;
        probe.check(&log_px, || "the log-density log p_x".to_owned())?;
        Ok(log_px)
    }

    /// Where the pass that computes the negative log-likelihood of `x` first holds a NaN or an infinity (`None`
    /// when every point's log-density is finite): for the NaN guard.
    pub(super) fn locate_non_finite(&self, x: &Tensor) -> Located {
        let mut probe = Probe::on();
        self.log_density_probed(x, &mut probe)?;
        Ok(probe.found())
    }

    fn rows(&self, data: &[f32]) -> candle_core::Result<Tensor> {
        let n = data.len() / self.dim.max(1);
        let dtype = self.layers.first().map_or(DType::F32, |l| match l {
            Layer::Affine { shift, .. } => shift.dtype(),
            Layer::Coupling { mask, .. } => mask.dtype(),
            Layer::Maf { made, .. } => made.0.first().map_or(DType::F32, |d| d.weights.dtype()),
        });
        Tensor::from_slice(data, (n, self.dim), &self.device)?.to_dtype(dtype)
    }

    /// log p_x at each row of `x` (row-major `[n, dim]`), in nats.
    pub fn log_density(&self, x: &[f32]) -> candle_core::Result<Vec<f32>> {
        self.log_density_tensor(&self.rows(x)?)?.to_dtype(DType::F32)?.to_vec1()
    }

    /// Generation: Gaussian points `z` pushed through layers 1..=K, every stage kept. A RealNVP on the CPU goes
    /// through the hand-written pass, in chunks whose buffers are reused.
    pub fn forward_stages(&self, z: &[f32]) -> candle_core::Result<Stages> {
        match self.hand_written_stages(z, self.layers.len(), true) {
            Some(stages) => Ok(stages),
            None => self.forward_stages_by_tensors(z),
        }
    }

    /// Inference: points `x` at stage `from` (K for data) pulled back to stage 0. `points[k]` is stage k for
    /// k ≤ from; `log_det[k - 1]` is layer k's forward log|det| at the pulled-back point (k ≤ from). A RealNVP on the
    /// CPU goes through the hand-written pass.
    pub fn inverse_stages(&self, x: &[f32], from: usize) -> candle_core::Result<Stages> {
        let from = from.min(self.layers.len());
        match self.hand_written_stages(x, from, false) {
            Some(stages) => Ok(stages),
            None => self.inverse_stages_by_tensors(x, from),
        }
    }

    /// The stages through the first `k` layers by [`coupling_cpu::realnvp_stages`] (`None` for a flow that has no
    /// hand-written pass, or for points that are not whole rows, which candle's path reports).
    fn hand_written_stages(&self, x: &[f32], k: usize, generation: bool) -> Option<Stages> {
        let dim = self.dim;
        if dim == 0 || !x.len().is_multiple_of(dim) {
            return None;
        }
        self.with_coupling_values(|layers| {
            let layers = &layers[..k.min(layers.len())];
            let mut work = coupling_cpu::RealNvpWorkspace::default();
            let mut points = vec![Vec::with_capacity(x.len()); layers.len() + 1];
            let mut log_det = vec![Vec::with_capacity(x.len() / dim); layers.len()];
            for chunk in x.chunks(HAND_GRID_CHUNK_POINTS * dim) {
                coupling_cpu::realnvp_stages(layers, dim, chunk, generation, &mut work, &mut points, &mut log_det);
            }
            Stages { points, log_det }
        })
    }

    /// [`Self::forward_stages`] through candle's tensor operations: every flow's path, and the reference for the
    /// RealNVP's hand-written one.
    pub(super) fn forward_stages_by_tensors(&self, z: &[f32]) -> candle_core::Result<Stages> {
        let mut h = self.rows(z)?;
        let mut points = vec![to_vec(&h)?];
        let mut log_det = Vec::with_capacity(self.layers.len());
        for k in 0..self.layers.len() {
            let (v, ld) = self.layer_forward(k, &h)?;
            points.push(to_vec(&v)?);
            log_det.push(ld.to_dtype(DType::F32)?.to_vec1()?);
            h = v;
        }
        Ok(Stages { points, log_det })
    }

    /// [`Self::inverse_stages`] through candle's tensor operations.
    pub(super) fn inverse_stages_by_tensors(&self, x: &[f32], from: usize) -> candle_core::Result<Stages> {
        let from = from.min(self.layers.len());
        let mut h = self.rows(x)?;
        let mut points = vec![to_vec(&h)?];
        let mut log_det = Vec::with_capacity(from);
        for k in (0..from).rev() {
            let (u, ld) = self.layer_inverse(k, &h)?;
            points.push(to_vec(&u)?);
            log_det.push(ld.to_dtype(DType::F32)?.to_vec1()?);
            h = u;
        }
        points.reverse();
        log_det.reverse();
        Ok(Stages { points, log_det })
    }

    /// Forward through one layer `k` (1-based) on rows of `u`: the new points and log|det| per row.
    pub fn layer_forward_rows(&self, k: usize, u: &[f32]) -> candle_core::Result<(Vec<f32>, Vec<f32>)> {
        let (v, ld) = self.layer_forward(k - 1, &self.rows(u)?)?;
        Ok((to_vec(&v)?, ld.to_dtype(DType::F32)?.to_vec1()?))
    }

    /// Same as [`Self::layer_forward_rows`] in f64 (the net must have been built in F64): for
    /// finite-difference Jacobians.
    pub fn layer_forward_f64(&self, k: usize, u: &[f64]) -> candle_core::Result<(Vec<f64>, Vec<f64>)> {
        let n = u.len() / self.dim.max(1);
        let t = Tensor::from_slice(u, (n, self.dim), &self.device)?;
        let (v, ld) = self.layer_forward(k - 1, &t)?;
        Ok((v.flatten_all()?.to_vec1()?, ld.to_vec1()?))
    }

    /// Density of stage `k` on a regular grid: `resolution` x `resolution` cell centres over `[x0, x1] x [y0,
    /// y1]`, rows from y0 upwards. Returns (density, log|det| of layer k at each cell, or zeros for k = 0).
    /// p_k(y) = N(g(y); 0, I) · Π |det ∂g_j|, with g pulling stage k back to stage 0.
    pub fn stage_density_grid(
        &self,
        k: usize,
        resolution: usize,
        bounds: [f32; 4],
    ) -> candle_core::Result<(Vec<f32>, Vec<f32>)> {
        let points = grid_points(resolution, bounds);
        let n = points.len() / 2;
        let dim = self.dim;
        // A RealNVP on the CPU goes through the hand-written forward pass (no tensor per operation), in chunks whose
        // buffers are reused.
        let hand_written = self.with_coupling_values(|layers| {
            let layers = &layers[..k.min(layers.len())];
            let mut work = coupling_cpu::RealNvpWorkspace::default();
            let (mut density, mut layer) = (Vec::with_capacity(n), Vec::with_capacity(n));
            for chunk in points.chunks(HAND_GRID_CHUNK_POINTS * dim) {
                coupling_cpu::realnvp_density(layers, dim, chunk, &mut work, &mut density, &mut layer);
            }
            (density, layer)
        });
        match hand_written {
            Some(grids) => Ok(grids),
            None => self.stage_density_grid_by_tensors(k, &points),
        }
    }

    /// [`Self::stage_density_grid`] through candle's tensor operations at the cell centres `points`: every flow's
    /// path, and the reference for the RealNVP's hand-written one.
    pub(super) fn stage_density_grid_by_tensors(
        &self,
        k: usize,
        points: &[f32],
    ) -> candle_core::Result<(Vec<f32>, Vec<f32>)> {
        let dim = self.dim;
        let n = points.len() / dim.max(1);
        let mut density = Vec::with_capacity(n);
        let mut layer = Vec::with_capacity(n);
        // In chunks, so a 512 x 512 grid through 256-wide layers stays within a few hundred MB.
        for chunk in points.chunks(GRID_CHUNK_POINTS * dim) {
            let stages = self.inverse_stages_by_tensors(chunk, k)?;
            let z = &stages.points[0];
            for i in 0..chunk.len() / dim {
                let r2: f64 = z[i * dim..(i + 1) * dim].iter().map(|&v| f64::from(v).powi(2)).sum();
                let log_det: f64 = stages.log_det.iter().map(|l| f64::from(l[i])).sum();
                density.push((-0.5 * r2 - 0.5 * dim as f64 * LN_2PI - log_det).exp() as f32);
            }
            match k {
                0 => layer.extend(std::iter::repeat_n(0.0, chunk.len() / dim)),
                _ => layer.extend_from_slice(&stages.log_det[k - 1]),
            }
        }
        Ok((density, layer))
    }
}

/// Cell centres of a `resolution` x `resolution` grid over `[x0, x1, y0, y1]`, row-major from y0 up.
#[must_use]
pub fn grid_points(resolution: usize, bounds: [f32; 4]) -> Vec<f32> {
    let [x0, x1, y0, y1] = bounds;
    let (dx, dy) = ((x1 - x0) / resolution as f32, (y1 - y0) / resolution as f32);
    let mut points = Vec::with_capacity(resolution * resolution * 2);
    for r in 0..resolution {
        for c in 0..resolution {
            points.push(x0 + (c as f32 + 0.5) * dx);
            points.push(y0 + (r as f32 + 0.5) * dy);
        }
    }
    points
}

fn to_vec(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()
}

/// Reverses the columns of `[n, dim]`.
fn reverse_columns(x: &Tensor) -> candle_core::Result<Tensor> {
    let dim = x.dim(1)?;
    let idx: Vec<u32> = (0..dim as u32).rev().collect();
    x.index_select(&Tensor::from_slice(&idx, dim, x.device())?, 1)
}

/// log N(z; 0, I) per row: −½|z|² − (dim/2) log 2π.
fn standard_normal_log_density(z: &Tensor) -> candle_core::Result<Tensor> {
    let dim = z.dim(1)? as f64;
    z.sqr()?.sum(D::Minus1)?.affine(-0.5, -0.5 * dim * LN_2PI)
}

/// MADE connectivity (Germain et al. 2015) for `dim` inputs, hidden widths `hidden`, and `2 dim` outputs
/// (shifts then log-scales): input i has degree i + 1, hidden unit j degree 1 + (j mod (dim - 1)), output for
/// coordinate i degree i + 1. A weight is kept when the unit it feeds may see the unit it comes from:
/// hidden ≥ input degree, hidden ≥ hidden, output > hidden degree. Output i then depends on inputs < i only.
#[must_use]
pub fn made_masks(dim: usize, hidden: &[usize]) -> Vec<Vec<f32>> {
    let span = dim.saturating_sub(1).max(1);
    let mut degrees: Vec<Vec<usize>> = vec![(1..=dim).collect()];
    for &h in hidden {
        degrees.push((0..h).map(|j| 1 + j % span).collect());
    }
    let out: Vec<usize> = (1..=dim).chain(1..=dim).collect();
    let mut masks = Vec::new();
    for (l, from) in degrees.iter().enumerate() {
        let (to, is_output) = match degrees.get(l + 1) {
            Some(next) => (next.as_slice(), false),
            None => (out.as_slice(), true),
        };
        let mut m = vec![0.0f32; from.len() * to.len()];
        for (i, &di) in from.iter().enumerate() {
            for (j, &dj) in to.iter().enumerate() {
                let keep = if is_output { dj > di } else { dj >= di };
                m[i * to.len() + j] = if keep { 1.0 } else { 0.0 };
            }
        }
        masks.push(m);
    }
    masks
}

type NetParts = (Net, Vec<Var>, Vec<String>);

/// A ReLU network drawn as `init` says (weights row by row, then the biases, layer by layer); `last` on the output
/// layer.
fn init_net(
    widths: &[usize],
    last: Activation,
    masks: Option<&[Vec<f32>]>,
    init: FlowInit,
    rng: &mut ChaCha8Rng,
    device: &Device,
    name: &str,
) -> Result<NetParts, TrainError> {
    let mut layers = Vec::new();
    let mut vars = Vec::new();
    let mut names = Vec::new();
    let n = widths.len() - 1;
    for (i, pair) in widths.windows(2).enumerate() {
        let (fan_in, fan_out) = (pair[0], pair[1]);
        let limit = match init {
            FlowInit::Glorot => (6.0 / (fan_in + fan_out) as f64).sqrt(),
            FlowInit::FanIn => 1.0 / (fan_in as f64).sqrt(),
        } as f32;
        let dist = Uniform::new_inclusive(-limit, limit).map_err(|e| TrainError::Data(e.to_string()))?;
        let w: Vec<f32> = (0..fan_in * fan_out).map(|_| dist.sample(rng)).collect();
        let weights = Var::from_slice(&w, (fan_in, fan_out), device)?;
        let biases = match init {
            FlowInit::Glorot => Var::zeros(fan_out, DType::F32, device)?,
            FlowInit::FanIn => {
                let b: Vec<f32> = (0..fan_out).map(|_| dist.sample(rng)).collect();
                Var::from_slice(&b, fan_out, device)?
            }
        };
        let mask = match masks.and_then(|m| m.get(i)) {
            Some(m) => Some(Tensor::from_slice(m, (fan_in, fan_out), device)?),
            None => None,
        };
        layers.push(Dense {
            weights: weights.as_tensor().clone(),
            biases: biases.as_tensor().clone(),
            mask,
            activation: if i + 1 == n { last } else { Activation::Relu },
        });
        names.push(format!("{name} dense {} weights", i + 1));
        names.push(format!("{name} dense {} biases", i + 1));
        vars.extend([weights, biases]);
    }
    Ok((Net(layers), vars, names))
}
