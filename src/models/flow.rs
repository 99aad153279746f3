//! Normalizing flows on 2-D data: an invertible map f from a Gaussian latent z to data x, trained by
//! maximum likelihood with the change of variables
//!
//! ```text
//! log p_x(x) = log N(f⁻¹(x); 0, I) − Σ_k log|det ∂f_k/∂u|      (f = f_K ∘ … ∘ f_1, u the input of f_k)
//! ```
//!
//! Three layer types (conventions in [`crate::compute::params`]): the lecture's affine warm-up bijector, RealNVP
//! affine coupling (Dinh, Sohl-Dickstein and Bengio 2017, as in the Keras example) and masked autoregressive
//! layers (Papamakarios, Pavlakou and Murray 2017, MADE masks from Germain et al. 2015, as in the course's TFP
//! notebook). Every layer has a forward map, an inverse and its log-determinant, and [`FlowNet`] returns
//! every intermediate stage, so the views can show any of them.

use std::sync::Arc;

use candle_core::{D, DType, Device, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Uniform};
use serde::{Deserialize, Serialize};

use crate::Lab;
use crate::compute::Activation;
use crate::compute::TrainError;
use crate::compute::cpu::coupling as coupling_cpu;
use crate::compute::cpu::dense::{DenseRef, with_cpu_f32};
use crate::compute::cpu::guard::{Located, Probe};
use crate::compute::cpu::optim::{FlatGradients, OptimizerKind};
use crate::compute::params::{DenseParams, FlowLayerParams, FlowParams, MlpParams};
use crate::data::prepare::Prepared;
use crate::models::ModelView;
use crate::models::trainer::{EpochEnd, EpochLoop, EpochModel, EpochTrainer, Minibatch, StepLoss, Variables};

/// Points per chunk when evaluating a grid.
const GRID_CHUNK_POINTS: usize = 32_768;

/// Points per chunk of the hand-written density grid: its buffers (four 256-wide activations per net, two nets) are
/// about 8 MB at this size and stay in the cache between products. Measured on the 512 x 512 grid: 8,192 points
/// 13.9 s, 2,048 14.0 s, 1,024 12.3 s, 512 13.1 s, 256 14.0 s.
const HAND_GRID_CHUNK_POINTS: usize = 1_024;

/// log(2π).
const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// Which kind of flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FlowKind {
    /// Affine coupling layers with alternating masks (RealNVP, the Keras example).
    RealNvp,
    /// Masked autoregressive layers, each followed by a swap (the course's notebook).
    Maf,
    /// One elementwise shift and scale (the lecture's warm-up bijector).
    Affine,
}

impl FlowKind {
    /// All kinds, in menu order.
    pub const ALL: [Self; 3] = [Self::RealNvp, Self::Maf, Self::Affine];

    /// Name on the command line.
    #[must_use]
    pub fn cli_name(self) -> &'static str {
        match self {
            Self::RealNvp => "realnvp",
            Self::Maf => "maf",
            Self::Affine => "affine",
        }
    }

    /// Name shown to the user.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::RealNvp => "RealNVP (affine coupling)",
            Self::Maf => "MAF (masked autoregressive)",
            Self::Affine => "Affine (shift and scale)",
        }
    }

    /// Parses a command-line name.
    #[must_use]
    pub fn from_cli(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.cli_name().eq_ignore_ascii_case(name))
    }
}

/// Architecture and training settings of a flow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowConfig {
    /// Layer type.
    pub kind: FlowKind,
    /// Number of flow layers (stages are 0..=layers).
    pub layers: usize,
    /// Hidden widths of each conditioner network (ReLU).
    pub hidden: Vec<usize>,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Points per minibatch.
    pub batch_size: usize,
    /// Epochs to train.
    pub epochs: usize,
    /// Seed of the initial weights and the minibatch order.
    pub seed: u64,
}

impl FlowConfig {
    /// The course's settings for each kind: RealNVP as the Keras example (6 layers, 4 x 256, Adam 1e-4,
    /// batch 256, 300 epochs); MAF as the TFP notebook (3 layers, MADE [128, 128], Adam 1e-3, batch 32);
    /// the affine warm-up with a large step, since it has four parameters.
    #[must_use]
    pub fn default_for(kind: FlowKind) -> Self {
        match kind {
            FlowKind::RealNvp => Self {
                kind,
                layers: 6,
                hidden: vec![256; 4],
                learning_rate: 1e-4,
                batch_size: 256,
                epochs: 300,
                seed: 42,
            },
            FlowKind::Maf => Self {
                kind,
                layers: 3,
                hidden: vec![128, 128],
                learning_rate: 1e-3,
                batch_size: 32,
                epochs: 100,
                seed: 42,
            },
            FlowKind::Affine => {
                Self { kind, layers: 1, hidden: Vec::new(), learning_rate: 1e-2, batch_size: 256, epochs: 50, seed: 42 }
            }
        }
    }
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self::default_for(FlowKind::RealNvp)
    }
}

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
    /// Runs `f` on the coupling layers' values, borrowed from the tensors (the live model's are its variables)
    /// without a copy; `None` unless every layer is an affine coupling held as contiguous CPU f32 tensors.
    fn with_coupling_values<R>(&self, f: impl FnOnce(&[coupling_cpu::CouplingRef<'_>]) -> R) -> Option<R> {
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
                let s = scale
                    .forward_probed(
                        &keep,
                        probe,
                        &|i| format!("dense layer {i} of coupling layer {n}'s scale net"),
                        Some(&|| format!("coupling layer {n}'s scale s")),
                    )?
                    .broadcast_mul(&free)?;
                let t = shift
                    .forward_probed(
                        &keep,
                        probe,
                        &|i| format!("dense layer {i} of coupling layer {n}'s shift net"),
                        Some(&|| format!("coupling layer {n}'s shift t")),
                    )?
                    .broadcast_mul(&free)?;
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
    fn log_density_tensor(&self, x: &Tensor) -> candle_core::Result<Tensor> {
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
    fn locate_non_finite(&self, x: &Tensor) -> Located {
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
    fn forward_stages_by_tensors(&self, z: &[f32]) -> candle_core::Result<Stages> {
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
    fn inverse_stages_by_tensors(&self, x: &[f32], from: usize) -> candle_core::Result<Stages> {
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
    fn stage_density_grid_by_tensors(&self, k: usize, points: &[f32]) -> candle_core::Result<(Vec<f32>, Vec<f32>)> {
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

/// The flow's side of its training: the layers and the points.
pub struct FlowModel {
    config: FlowConfig,
    net: FlowNet,
    x_train: Tensor, // [n_train, 2]
    x_test: Tensor,  // [n_test, 2]
    /// A RealNVP takes its steps (and its held-out NLL) by [`coupling_cpu`]'s hand-written pass (the default)
    /// rather than candle's autograd: the same loss and gradients in well under half the time (BENCHMARKS.md).
    hand_written_pass: bool,
    /// The hand-written pass's buffers, reused from step to step.
    workspace: coupling_cpu::RealNvpWorkspace,
}

/// The trainable flow: a [`FlowModel`] in the shared loop. Its one loss term is the minibatch's mean negative
/// log-likelihood.
pub type FlowTrainer = EpochTrainer<FlowModel, 1>;

/// Final figures of a trained flow (the CLI's JSON line and the acceptance checks).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowReport {
    /// Mean negative log-likelihood of the training points, nats per point.
    pub train_nll: f64,
    /// Mean negative log-likelihood of the held-out points, nats per point.
    pub heldout_nll: f64,
    /// Σ density x cell area over a [`GRID_MASS_RESOLUTION`]² grid covering the data with a margin (≈ 1 for
    /// a proper density).
    pub grid_mass: f64,
    /// Bounds `[x0, x1, y0, y1]` of that grid.
    pub grid_bounds: [f32; 4],
    /// Largest |inverse(forward(z)) − z| over 10,000 Gaussian points, over every layer and the whole flow.
    pub roundtrip_max_err: f64,
    /// Energy distance between samples from the flow and the held-out points.
    pub energy_distance: f64,
    /// Energy distance between the training and held-out points (the same statistic for two samples of the data).
    pub energy_distance_train_vs_heldout: f64,
}

/// The final figures of a flow on its data: exact train and held-out NLL, the mass of the density on a
/// [`GRID_MASS_RESOLUTION`]² grid covering the data, the round-trip error on 10,000 Gaussian points and the
/// energy distances.
pub fn flow_report(params: &FlowParams, data: &Prepared, seed: u64) -> Result<FlowReport, TrainError> {
    let net = FlowNet::from_params(params, DType::F32)?;
    let mean_nll = |x: &[f32]| -> candle_core::Result<f64> {
        if x.is_empty() {
            return Ok(f64::NAN);
        }
        let mut sum = 0.0;
        for chunk in x.chunks(8192) {
            sum -= net.log_density(chunk)?.iter().map(|&v| f64::from(v)).sum::<f64>();
        }
        Ok(sum / (x.len() / 2) as f64)
    };
    let train_nll = mean_nll(&data.x_train)?;
    let heldout_nll = mean_nll(&data.x_test)?;
    // A grid over the data's range with a margin of 1.5 (standardised units) on every side.
    let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
    for p in data.x_train.chunks_exact(2).chain(data.x_test.chunks_exact(2)) {
        for c in 0..2 {
            lo[c] = lo[c].min(p[c]);
            hi[c] = hi[c].max(p[c]);
        }
    }
    let bounds = [lo[0] - 1.5, hi[0] + 1.5, lo[1] - 1.5, hi[1] + 1.5];
    let resolution = GRID_MASS_RESOLUTION;
    let cell = f64::from((bounds[1] - bounds[0]) * (bounds[3] - bounds[2])) / (resolution * resolution) as f64;
    let (density, _) = net.stage_density_grid(net.n_layers(), resolution, bounds)?;
    let grid_mass = density.iter().map(|&d| f64::from(d)).sum::<f64>() * cell;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let z = gaussian_points(10_000, 2, &mut rng);
    let roundtrip_max_err = roundtrip_error(&net, &z)?;
    let samples = net.forward_stages(&gaussian_points(data.n_test().max(1), 2, &mut rng))?;
    let generated = samples.points.last().cloned().unwrap_or_default();
    let energy_distance = energy_distance_capped(&generated, &data.x_test, 2);
    let energy_distance_train_vs_heldout = energy_distance_capped(&data.x_train, &data.x_test, 2);
    Ok(FlowReport {
        train_nll,
        heldout_nll,
        grid_mass,
        grid_bounds: bounds,
        roundtrip_max_err,
        energy_distance,
        energy_distance_train_vs_heldout,
    })
}

/// Cells per side of the grid [`flow_report`] integrates the density over.
pub const GRID_MASS_RESOLUTION: usize = 400;

impl FlowTrainer {
    /// Builds a flow for `data`, which must have exactly two (standardised) features.
    pub fn new(config: FlowConfig, data: &Arc<Prepared>) -> Result<Self, TrainError> {
        let device = Device::Cpu;
        let dim = data.n_features();
        if dim != 2 {
            return Err(TrainError::Data(format!("a flow models two columns; this data has {dim} features")));
        }
        let n_train = data.n_train();
        if n_train == 0 {
            return Err(TrainError::Data("no training rows".into()));
        }
        if config.batch_size == 0 || config.layers == 0 || config.hidden.contains(&0) {
            return Err(TrainError::Data("batch size, layers and widths must be at least 1".into()));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
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
                        glorot_net(&widths, last, None, &mut rng, &device, &format!("{layer_name} {net_name}"))
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
                    let (mut made, v, n) = glorot_net(
                        &widths,
                        Activation::Identity,
                        Some(&masks),
                        &mut rng,
                        &device,
                        &format!("{layer_name} MADE"),
                    )?;
                    // The output layer starts at zero, so each layer starts as the identity (shift 0, log-scale
                    // 0): the unconstrained log-scales of a MAF otherwise make the first epochs erratic.
                    if let Some(last) = made.0.last_mut()
                        && let Some(var) = v.iter().rev().nth(1)
                    {
                        var.set(&var.as_tensor().zeros_like()?)?;
                        last.weights = var.as_tensor().clone();
                    }
                    vars.extend(v);
                    names.extend(n);
                    Layer::Maf { made, dim }
                }
            };
            layers.push(layer);
        }
        let variables = Variables::new(vars, names, OptimizerKind::Adam, config.learning_rate)?;
        // The generator that drew the weights goes on to shuffle the minibatches.
        let epochs = EpochLoop::new(n_train, config.batch_size, config.epochs, rng);
        let model = FlowModel {
            net: FlowNet { dim, layers, device: device.clone() },
            x_train: Tensor::from_slice(&data.x_train, (n_train, dim), &device)?,
            x_test: Tensor::from_slice(&data.x_test, (data.n_test(), dim), &device)?,
            hand_written_pass: true,
            workspace: coupling_cpu::RealNvpWorkspace::default(),
            config,
        };
        Ok(Self { model, variables, epochs })
    }

    /// The settings this flow was built with.
    #[must_use]
    pub fn config(&self) -> &FlowConfig {
        &self.model.config
    }

    /// Takes a RealNVP's steps by candle's autograd (`false`) instead of the hand-written pass (`true`, the
    /// default): for comparing the two.
    pub fn set_hand_written_pass(&mut self, on: bool) {
        self.model.hand_written_pass = on;
    }

    /// The live model as tensors (shares the variables).
    #[must_use]
    pub fn net(&self) -> &FlowNet {
        &self.model.net
    }

    /// The current parameters as plain data (MADE weights with their masks applied).
    pub fn params(&self) -> candle_core::Result<FlowParams> {
        self.model.params()
    }
}

impl FlowModel {
    /// Mean negative log-likelihood over the rows of `x`, in chunks to bound memory.
    fn mean_nll(&self, x: &Tensor) -> candle_core::Result<f64> {
        let n = x.dim(0)?;
        if n == 0 {
            return Ok(f64::NAN);
        }
        let mut sum = 0.0;
        let chunk = 4096;
        for start in (0..n).step_by(chunk) {
            let len = chunk.min(n - start);
            let lp = self.net.log_density_tensor(&x.narrow(0, start, len)?)?;
            sum -= f64::from(lp.sum_all()?.to_scalar::<f32>()?);
        }
        Ok(sum / n as f64)
    }

    /// A RealNVP with the hand-written pass switched on.
    fn takes_hand_written_pass(&self) -> bool {
        self.config.kind == FlowKind::RealNvp && self.hand_written_pass
    }

    /// The held-out points' mean NLL: by the hand-written pass when the steps take it (the same numbers as
    /// [`Self::mean_nll`] to float rounding, in a fraction of the time), else by candle.
    fn heldout_nll(&mut self) -> Result<f64, TrainError> {
        if self.takes_hand_written_pass() && self.x_test.dim(0)? > 0 {
            let points: Vec<f32> = self.x_test.flatten_all()?.to_vec1()?;
            let (net, work) = (&self.net, &mut self.workspace);
            let nll = net.with_coupling_values(|layers| coupling_cpu::realnvp_nll(layers, net.dim, &points, work));
            if let Some(nll) = nll.flatten() {
                return Ok(nll);
            }
        }
        Ok(self.mean_nll(&self.x_test)?)
    }

    /// See [`FlowTrainer::params`].
    fn params(&self) -> candle_core::Result<FlowParams> {
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
            .net
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
        Ok(FlowParams { dim: self.net.dim, layers })
    }
}

/// Largest |inverse(forward(z)) − z| over the rows of `z`, checked layer by layer and for the whole flow.
pub fn roundtrip_error(net: &FlowNet, z: &[f32]) -> candle_core::Result<f64> {
    let forward = net.forward_stages(z)?;
    let mut worst = 0.0f64;
    let max_diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| f64::from((x - y).abs())).fold(0.0, f64::max);
    for k in 1..=net.n_layers() {
        // One layer back from stage k must land on stage k-1.
        let back = net.inverse_stages(&forward.points[k], k)?;
        worst = worst.max(max_diff(&back.points[k - 1], &forward.points[k - 1]));
        // And the whole way back must land on z.
        worst = worst.max(max_diff(&back.points[0], z));
    }
    Ok(worst)
}

/// `n` points from N(0, I_dim), row-major.
pub fn gaussian_points(n: usize, dim: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let normal = rand_distr::StandardNormal;
    (0..n * dim).map(|_| Distribution::<f32>::sample(&normal, rng)).collect()
}

/// Energy distance (Székely and Rizzo 2013) between two samples of `dim`-vectors:
/// 2 E|X − Y| − E|X − X'| − E|Y − Y'|, zero exactly when the distributions agree.
#[must_use]
pub fn energy_distance(a: &[f32], b: &[f32], dim: usize) -> f64 {
    let mean_dist = |p: &[f32], q: &[f32]| {
        let (np, nq) = (p.len() / dim, q.len() / dim);
        let mut sum = 0.0f64;
        for i in 0..np {
            for j in 0..nq {
                let d2: f64 = (0..dim).map(|c| f64::from(p[i * dim + c] - q[j * dim + c]).powi(2)).sum();
                sum += d2.sqrt();
            }
        }
        sum / (np * nq).max(1) as f64
    };
    2.0 * mean_dist(a, b) - mean_dist(a, a) - mean_dist(b, b)
}

/// [`energy_distance`] on at most the first 2,000 rows of each sample (it is quadratic in the sizes).
#[must_use]
pub fn energy_distance_capped(a: &[f32], b: &[f32], dim: usize) -> f64 {
    let cap = 2000 * dim;
    energy_distance(&a[..a.len().min(cap)], &b[..b.len().min(cap)], dim)
}

type NetParts = (Net, Vec<Var>, Vec<String>);

/// A ReLU network with Glorot-uniform weights and zero biases (Keras' defaults); `last` on the output layer.
fn glorot_net(
    widths: &[usize],
    last: Activation,
    masks: Option<&[Vec<f32>]>,
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
        let limit = (6.0 / (fan_in + fan_out) as f64).sqrt() as f32;
        let dist = Uniform::new_inclusive(-limit, limit).map_err(|e| TrainError::Data(e.to_string()))?;
        let w: Vec<f32> = (0..fan_in * fan_out).map(|_| dist.sample(rng)).collect();
        let weights = Var::from_slice(&w, (fan_in, fan_out), device)?;
        let biases = Var::zeros(fan_out, DType::F32, device)?;
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

impl EpochModel<1> for FlowModel {
    const LAB: Lab = Lab::Flow;

    fn train_on(&mut self, batch: &mut Minibatch, variables: &mut Variables) -> Result<StepLoss<1>, TrainError> {
        let x = batch.select(&self.x_train)?; // [batch, 2]
        let net = &self.net;
        let loss_name = "the negative log-likelihood";
        let loss = if self.takes_hand_written_pass() {
            // The same loss and gradients as candle's autograd below, by hand (models::coupling_cpu), on the
            // variables' own values and into buffers kept from the last step.
            let points: Vec<f32> = x.flatten_all()?.to_vec1()?;
            let workspace = &mut self.workspace;
            let loss = net
                .with_coupling_values(|layers| {
                    coupling_cpu::realnvp_loss_and_gradients(layers, net.dim, &points, workspace)
                })
                .flatten()
                .ok_or_else(|| TrainError::Backend("the hand-written pass needs affine coupling layers".into()))?;
            let loss = f64::from(loss as f32);
            let gradients = FlatGradients::One(&self.workspace.gradients);
            variables.guarded_flat_step(loss, gradients, loss_name, batch.step, || net.locate_non_finite(&x))?;
            loss
        } else {
            let loss = net.log_density_tensor(&x)?.mean_all()?.neg()?;
            variables.guarded_step(&loss, loss_name, batch.step, || net.locate_non_finite(&x))?
        };
        Ok(StepLoss { total: loss, terms: [loss] })
    }

    fn end_epoch(&mut self, end: &EpochEnd<1>) -> Result<Vec<(String, f64)>, TrainError> {
        let heldout = self.heldout_nll()?;
        // Keras logs the running mean of the minibatch losses as the training loss; so do we, which keeps an
        // epoch from costing a second pass over the data.
        let [train] = end.means;
        Ok(vec![("train_nll".to_owned(), train), ("heldout_nll".to_owned(), heldout)])
    }

    fn model_view(&self, step: u64) -> Option<ModelView> {
        match self.params() {
            Ok(p) => Some(ModelView::Flow { step, params: Arc::new(p) }),
            Err(e) => {
                log::warn!("cannot copy the flow's parameters: {e}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use candle_core::DType;

    use super::{FlowConfig, FlowKind, FlowNet, FlowTrainer};
    use crate::Lab;
    use crate::data::prepare::{Prepared, default_spec_for_lab, prepare};
    use crate::data::{SynthKind, SynthSpec};
    use crate::models::trainer::Trainer;
    use crate::models::trainer::testing::assert_the_guard_catches;

    /// `n_points` of the two moons, prepared for the flow lab.
    fn moons(n_points: usize) -> Arc<Prepared> {
        let table = SynthSpec { n_points, ..SynthSpec::default_for(SynthKind::Moons) }.generate();
        Arc::new(prepare(&table, &default_spec_for_lab(Lab::Flow, &table)).expect("moons"))
    }

    /// A NaN or an infinity put into one variable after two steps: the third step fails and the guard names the
    /// quantity where the pass first holds it (the last layer first: training pulls the data back through the
    /// flow), or the loss when every point's log-density is finite and only their mean overflows; the variables go
    /// back to their values before step 2 (the last at which the loss was finite), and nothing of the failed step
    /// counts: the next one, at a lower rate, takes the same minibatch ([`assert_the_guard_catches`]).
    #[test]
    fn the_guard_names_where_an_injected_non_finite_value_first_appears() {
        use FlowKind::{Affine, Maf, RealNvp};

        let data = moons(300);
        let (inf, nan) = (f32::INFINITY, f32::NAN);
        // (kind, variable, element (all when None), value, what the guard must name)
        let cases = [
            // Infinite hidden units (a NaN would leave the ReLU as 0): the scale's tanh gets ∞ − ∞.
            (RealNvp, "layer 2 scale net dense 1 biases", None, inf, "dense layer 1 of coupling layer 2's scale net"),
            (RealNvp, "layer 2 shift net dense 2 biases", None, inf, "coupling layer 2's shift t"),
            (RealNvp, "layer 2 scale net dense 2 biases", None, nan, "coupling layer 2's scale s"),
            (RealNvp, "layer 1 shift net dense 1 biases", None, inf, "dense layer 1 of coupling layer 1's shift net"),
            (Maf, "layer 1 MADE dense 1 biases", None, inf, "dense layer 1 of MAF layer 1's MADE network"),
            (Maf, "layer 2 MADE dense 2 biases", Some(0), inf, "MAF layer 2's shift"),
            (Maf, "layer 2 MADE dense 2 biases", Some(3), inf, "MAF layer 2's log-scale"),
            // exp(100) overflows f32.
            (Maf, "layer 2 MADE dense 2 biases", Some(2), -100.0, "layer 2's output"),
            (Affine, "layer 2 log-scale", Some(0), -100.0, "affine layer 2's inverse scale"),
            (Affine, "layer 1 shift", Some(1), inf, "layer 1's output"),
            // z is about 1e35, finite; its square is not.
            (Affine, "layer 1 log-scale", None, -80.0, "the base density log p_z"),
            // Layer 2's log|det| is 3e38, every log-density about −3e38, finite; their sum over the batch is not.
            (Affine, "layer 2 log-scale", None, 1.5e38, "the negative log-likelihood"),
        ];
        for (kind, name, index, value, expected) in cases {
            let config =
                FlowConfig { hidden: vec![8], layers: 2, batch_size: 32, epochs: 2, ..FlowConfig::default_for(kind) };
            let mut trainer = FlowTrainer::new(config, &data).expect("flow");
            let what = format!("{kind:?}, {name}[{index:?}] = {value}");
            assert_the_guard_catches(&mut trainer, (name, index, value, expected), 32, 1e-3, |_| (), &what);
        }
    }

    /// Adam's moments must not keep the graph of the step they came from: candle's gradients of these
    /// layers remember it, and a chain of moments then kept every step's activations alive (185 MB a step
    /// for the Keras RealNVP, until the machine ran out of memory).
    #[test]
    fn optimiser_state_keeps_no_graph_after_steps() {
        let data = moons(300);
        for kind in FlowKind::ALL {
            let config = FlowConfig { hidden: vec![8, 8], layers: 2, batch_size: 32, ..FlowConfig::default_for(kind) };
            let mut trainer = FlowTrainer::new(config, &data).expect("flow");
            for _ in 0..3 {
                trainer.step().expect("step");
            }
            assert!(trainer.variables.optimizer.state_is_detached(), "{kind:?}: the optimiser's moments keep a graph");
        }
    }

    /// The gradient of the NLL that training follows equals central finite differences of the NLL, for
    /// weights and biases of every part (scale net, shift net, MADE, affine), so candle's autodiff through the
    /// masks, narrows and exponentials is what the maths says.
    #[test]
    fn nll_gradient_matches_finite_differences() {
        let data = moons(300);
        for kind in FlowKind::ALL {
            let config = FlowConfig { hidden: vec![6], layers: 2, batch_size: 32, ..FlowConfig::default_for(kind) };
            let mut trainer = FlowTrainer::new(config, &data).expect("flow");
            // A few steps at a high rate, so no parameter sits at its (zero) initial value.
            trainer.variables.optimizer.learning_rate = 0.05;
            for _ in 0..5 {
                trainer.step().expect("step");
            }
            let x = trainer.model.x_train.narrow(0, 0, 64).expect("batch");
            // The finite differences in f64 with a small step, so that a step rarely crosses a ReLU's kink.
            let x64 = x.to_dtype(DType::F64).expect("f64");
            let nll = |t: &FlowTrainer| -> f64 {
                let net = FlowNet::from_params(&t.params().expect("params"), DType::F64).expect("f64 net");
                let lp = net.log_density_tensor(&x64).expect("density").mean_all().expect("mean");
                -lp.to_scalar::<f64>().expect("scalar")
            };
            let loss = trainer.model.net.log_density_tensor(&x).expect("d").mean_all().expect("m").neg().expect("neg");
            let grads = loss.backward().expect("backward");
            for (v, var) in trainer.variables.vars.iter().enumerate() {
                let Some(g) = grads.get(var.as_tensor()) else { continue };
                let g: Vec<f32> = g.flatten_all().expect("flat").to_vec1().expect("grad");
                let original: Vec<f32> = var.as_tensor().flatten_all().expect("flat").to_vec1().expect("values");
                let shape = var.as_tensor().shape().clone();
                for j in [0, original.len() / 2, original.len() - 1] {
                    let h = 1e-3f32;
                    let mut plus = original.clone();
                    plus[j] += h;
                    var.set(
                        &candle_core::Tensor::from_slice(&plus, shape.clone(), &candle_core::Device::Cpu).expect("t"),
                    )
                    .expect("set");
                    let up = nll(&trainer);
                    let mut minus = original.clone();
                    minus[j] -= h;
                    var.set(
                        &candle_core::Tensor::from_slice(&minus, shape.clone(), &candle_core::Device::Cpu).expect("t"),
                    )
                    .expect("set");
                    let down = nll(&trainer);
                    var.set(
                        &candle_core::Tensor::from_slice(&original, shape.clone(), &candle_core::Device::Cpu)
                            .expect("t"),
                    )
                    .expect("set");
                    let fd = (up - down) / (2.0 * f64::from(h));
                    let got = f64::from(g[j]);
                    assert!(
                        (got - fd).abs() <= 2e-3 + 2e-2 * fd.abs(),
                        "{kind:?} {} [{j}]: autodiff {got} vs finite difference {fd}",
                        trainer.variables.names[v]
                    );
                }
            }
        }
    }

    /// A small RealNVP (5 layers, odd widths) on 400 moons points after `steps` steps at a high learning rate, so
    /// that its scales are far from zero, and its data.
    fn small_trained_realnvp(steps: usize) -> (FlowTrainer, Arc<Prepared>) {
        let data = moons(400);
        let config = FlowConfig {
            hidden: vec![24, 17],
            layers: 5,
            batch_size: 64,
            learning_rate: 2e-2,
            ..FlowConfig::default_for(FlowKind::RealNvp)
        };
        let mut trainer = FlowTrainer::new(config, &data).expect("flow");
        for _ in 0..steps {
            trainer.step().expect("step");
        }
        (trainer, data)
    }

    /// The RealNVP's density grid by the hand-written forward pass equals candle's at every stage (a trained flow,
    /// so the scales are far from zero; a grid of 70 x 70 cells, not a multiple of the chunk), densities and the
    /// stage's own log|det|; the grid really went by hand (a MAF, which has no hand-written pass, is not one).
    #[test]
    fn the_hand_written_density_grid_matches_candle() {
        let (trainer, data) = small_trained_realnvp(30);
        let net = FlowNet::from_params(&trainer.params().expect("params"), DType::F32).expect("net");
        assert!(net.with_coupling_values(|_| ()).is_some(), "a RealNVP takes the hand-written pass");
        let bounds = [-2.5, 2.5, -2.0, 2.2];
        let points = super::grid_points(70, bounds);
        for k in 0..=net.n_layers() {
            let (density, log_det) = net.stage_density_grid(k, 70, bounds).expect("grid");
            let (want_density, want_log_det) = net.stage_density_grid_by_tensors(k, &points).expect("candle grid");
            assert_eq!((density.len(), log_det.len()), (4900, 4900));
            for (i, (d, w)) in density.iter().zip(&want_density).enumerate() {
                assert!((d - w).abs() <= 1e-4 * w.abs().max(1e-3), "stage {k} cell {i}: density {d} vs {w}");
            }
            for (i, (l, w)) in log_det.iter().zip(&want_log_det).enumerate() {
                assert!((l - w).abs() <= 1e-4 * w.abs().max(1.0), "stage {k} cell {i}: log-det {l} vs {w}");
            }
            if k > 0 {
                assert!(log_det.iter().any(|&l| l.abs() > 1e-2), "stage {k}: the layer moved nothing");
            }
        }
        let maf = FlowTrainer::new(FlowConfig::default_for(FlowKind::Maf), &data).expect("maf");
        let maf = FlowNet::from_params(&maf.params().expect("params"), DType::F32).expect("net");
        assert!(maf.with_coupling_values(|_| ()).is_none());
    }

    /// The RealNVP's stages by the hand-written pass equal candle's in both directions, at every stage and for every
    /// layer's log|det| (a trained flow; 2,500 points, more than two chunks and not a multiple of one), pulled back
    /// from every stage; and the two directions undo each other.
    #[test]
    fn the_hand_written_stages_match_candle() {
        let (trainer, data) = small_trained_realnvp(30);
        let net = FlowNet::from_params(&trainer.params().expect("params"), DType::F32).expect("net");
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(9);
        let z = super::gaussian_points(2_500, 2, &mut rng);
        let close = |what: &str, got: &[f32], want: &[f32]| {
            assert_eq!(got.len(), want.len(), "{what}: lengths");
            for (i, (a, b)) in got.iter().zip(want).enumerate() {
                assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{what} [{i}]: {a} vs candle's {b}");
            }
        };
        let forward = net.forward_stages(&z).expect("hand-written");
        let want = net.forward_stages_by_tensors(&z).expect("candle");
        assert_eq!((forward.points.len(), forward.log_det.len()), (6, 5));
        for k in 0..=5 {
            close(&format!("generation stage {k}"), &forward.points[k], &want.points[k]);
        }
        for k in 0..5 {
            close(&format!("generation log|det| of layer {}", k + 1), &forward.log_det[k], &want.log_det[k]);
            assert!(forward.log_det[k].iter().any(|&l| l.abs() > 1e-2), "layer {}: moved nothing", k + 1);
        }
        for from in 0..=5 {
            let back = net.inverse_stages(&forward.points[from], from).expect("hand-written");
            let want = net.inverse_stages_by_tensors(&forward.points[from], from).expect("candle");
            assert_eq!((back.points.len(), back.log_det.len()), (from + 1, from));
            for k in 0..=from {
                close(&format!("inference from {from}, stage {k}"), &back.points[k], &want.points[k]);
                // The round trip: pulled back from stage `from`, each stage is the one pushed forward.
                close(&format!("round trip from {from}, stage {k}"), &back.points[k], &forward.points[k]);
            }
            for k in 0..from {
                close(&format!("inference from {from}, log|det| {}", k + 1), &back.log_det[k], &want.log_det[k]);
            }
        }
        let x = &data.x_train;
        let back = net.inverse_stages(x, 5).expect("data");
        close("the data pulled back", &back.points[0], &net.inverse_stages_by_tensors(x, 5).expect("candle").points[0]);
        assert!(net.inverse_stages(&x[..3], 5).is_err(), "a half row is candle's error to report");
    }

    /// The hand-written RealNVP pass (models::coupling_cpu) gives candle autograd's loss and gradients, for a flow
    /// trained away from its initial values (so every net and mask matters), on a full minibatch and on a ragged one
    /// of 37 rows, with odd widths and an odd number of layers; and a step by either path moves the flow alike.
    #[test]
    fn the_hand_written_realnvp_pass_matches_candle_autograd() {
        let (mut trainer, data) = small_trained_realnvp(12);
        let params = trainer.params().expect("params");
        let refs = super::coupling_cpu::coupling_refs(&params).expect("coupling layers");
        // One workspace for both minibatches, the smaller second: buffers left from a larger pass must not leak in.
        let mut work = super::coupling_cpu::RealNvpWorkspace::default();
        for rows in [64, 37] {
            let x = trainer.model.x_train.narrow(0, 0, rows).expect("rows");
            let points: Vec<f32> = x.flatten_all().and_then(|t| t.to_vec1()).expect("points");
            let loss = trainer.model.net.log_density_tensor(&x).and_then(|l| l.mean_all()?.neg()).expect("loss");
            let grads = loss.backward().expect("backward");
            // From the plain parameters, and from the live variables' own storage: the same numbers.
            let got = super::coupling_cpu::realnvp_loss_and_gradients(&refs, 2, &points, &mut work).expect("loss");
            let from_params = work.gradients.clone();
            let live = trainer
                .model
                .net
                .with_coupling_values(|layers| {
                    super::coupling_cpu::realnvp_loss_and_gradients(layers, 2, &points, &mut work)
                })
                .flatten()
                .expect("live loss");
            assert_eq!(got.to_bits(), live.to_bits());
            assert_eq!(from_params, work.gradients);
            let reference = f64::from(loss.to_scalar::<f32>().expect("scalar"));
            assert!((got - reference).abs() < 1e-5 * (1.0 + reference.abs()), "{got} vs {reference}");
            let total: usize = trainer.variables.vars.iter().map(|v| v.as_tensor().elem_count()).sum();
            assert_eq!(work.gradients.len(), total);
            let mut offset = 0;
            for (var, name) in trainer.variables.vars.iter().zip(&trainer.variables.names) {
                let want: Vec<f32> =
                    grads.get(var.as_tensor()).expect("gradient").flatten_all().and_then(|t| t.to_vec1()).expect("vec");
                let got = &work.gradients[offset..offset + want.len()];
                offset += want.len();
                let scale = want.iter().fold(0.0f32, |a, &b| a.max(b.abs())).max(1e-3);
                for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                    assert!((g - w).abs() <= 1e-4 * scale, "{name}[{i}] with {rows} rows: {g} vs candle {w}");
                }
            }
        }
        // The held-out NLL by the forward half of the pass, as candle computes it.
        let by_hand = trainer.model.heldout_nll().expect("by hand");
        let by_candle = trainer.model.mean_nll(&trainer.model.x_test).expect("by candle");
        assert!((by_hand - by_candle).abs() < 1e-5 * (1.0 + by_candle.abs()), "{by_hand} vs candle {by_candle}");
        // Ten more steps each way from the same state: the same losses to float rounding.
        let mut by_hand = FlowTrainer::new(trainer.config().clone(), &data).expect("flow");
        let mut by_candle = FlowTrainer::new(trainer.config().clone(), &data).expect("flow");
        by_candle.set_hand_written_pass(false);
        for step in 0..10 {
            by_hand.step().expect("step");
            by_candle.step().expect("step");
            let (a, b) = (by_hand.epoch_loop().batch_loss(), by_candle.epoch_loop().batch_loss());
            assert!((a - b).abs() < 1e-3 * (1.0 + b.abs()), "step {step}: {a} by hand vs {b} by candle");
        }
    }
}
