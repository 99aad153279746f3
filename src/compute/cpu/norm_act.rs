//! Batch normalisation followed by a (leaky) ReLU as one candle operation with a hand-written backward pass.
//!
//! Built from candle's elementwise operations, this pair costs about ten passes over the activations forward and
//! as many backward, several of them reductions over rows that candle runs one value at a time; fused, it is
//! two passes forward and three backward. The math (Ioffe and Szegedy, 2015), per channel over the `r` rows:
//!
//! - forward: `mu = mean(x)`, `var = mean((x - mu)²)` (biased), `xhat = (x - mu) / sqrt(var + eps)`,
//!   `z = gamma · xhat + beta`, `y = z` where `z > 0`, else `slope · z`;
//! - backward, from `dy`: `dz = dy · (1 or slope)`, `dbeta = Σ dz`, `dgamma = Σ dz · xhat`, and
//!   `dx = gamma / sqrt(var + eps) · (dz - dbeta / r - xhat · dgamma / r)` when the statistics are the batch's
//!   (they depend on `x`), or `dx = gamma / sqrt(var + eps) · dz` when they are fixed running averages.
//!
//! `conv::normalise` is the same function from candle's own operations; the tests compare the two, values and
//! gradients.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor, WithDType};

use crate::compute::conv_geometry::NormStats;

/// Where the statistics come from.
#[derive(Clone, Debug)]
pub enum Statistics {
    /// The batch's own, reported through [`NormAct::batch_stats`].
    Batch,
    /// Fixed per-channel means and variances (the running averages).
    Fixed {
        /// Means.
        mean: Vec<f32>,
        /// Variances.
        variance: Vec<f32>,
    },
}

/// The fused operation on rows `x` `[r, c]` with `gamma`, `beta` `[c]`.
#[derive(Clone, Debug)]
pub struct NormAct {
    statistics: Statistics,
    epsilon: f64,
    slope: f64,
    batch_stats: Arc<Mutex<Option<NormStats>>>,
}

impl NormAct {
    /// The operation with statistics from `statistics`, `epsilon` under the square root and `slope` on the
    /// negative side (0 for ReLU, 1 for none).
    #[must_use]
    pub fn new(statistics: Statistics, epsilon: f64, slope: f64) -> Self {
        Self { statistics, epsilon, slope, batch_stats: Arc::new(Mutex::new(None)) }
    }

    /// Applies it: `x` `[r, c]`, `gamma` and `beta` `[c]`.
    pub fn apply(&self, x: &Tensor, gamma: &Tensor, beta: &Tensor) -> candle_core::Result<Tensor> {
        x.contiguous()?.apply_op3(gamma, beta, self.clone())
    }

    /// The batch's means and variances from the last forward pass with [`Statistics::Batch`].
    #[must_use]
    pub fn batch_stats(&self) -> Option<NormStats> {
        self.batch_stats.lock().ok().and_then(|s| s.clone())
    }

    /// Per-channel means and `1 / sqrt(var + eps)` of `x` `[r, c]`, in f64, and the variances.
    fn moments<T: WithDType>(&self, x: &[T], c: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let (mean, variance): (Vec<f64>, Vec<f64>) = match &self.statistics {
            Statistics::Fixed { mean, variance } => {
                (mean.iter().map(|&v| f64::from(v)).collect(), variance.iter().map(|&v| f64::from(v)).collect())
            }
            Statistics::Batch => {
                let r = (x.len() / c.max(1)).max(1) as f64;
                let mean: Vec<f64> = channel_sums(x, c, |_, v| v).into_iter().map(|s| s / r).collect();
                let mean_t: Vec<T> = mean.iter().map(|&m| T::from_f64(m)).collect();
                let variance = channel_sums(x, c, |j, v| {
                    let d = v - mean_t[j];
                    d * d
                });
                (mean, variance.into_iter().map(|s| s / r).collect())
            }
        };
        let inv_std = variance.iter().map(|v| 1.0 / (v + self.epsilon).sqrt()).collect();
        (mean, inv_std, variance)
    }

    fn forward<T: WithDType>(&self, x: &[T], gamma: &[T], beta: &[T]) -> Vec<T> {
        let mut y = Vec::with_capacity(x.len());
        self.forward_into(x, gamma, beta, &mut y);
        y
    }

    /// The forward pass on rows `x` `[r, c]` into `y` (resized to `x`'s length): returns the per-channel means and
    /// `1 / sqrt(var + eps)` it used, which [`Self::backward_into`] takes back, and the variances. Reports batch
    /// statistics through [`Self::batch_stats`] as [`CustomOp3`]'s forward does.
    pub(crate) fn forward_into<T: WithDType>(&self, x: &[T], gamma: &[T], beta: &[T], y: &mut Vec<T>) -> Moments {
        let c = gamma.len();
        let (mean, inv_std, variance) = self.moments(x, c);
        if matches!(self.statistics, Statistics::Batch)
            && let Ok(mut stats) = self.batch_stats.lock()
        {
            #[allow(clippy::cast_possible_truncation, reason = "statistics are reported in f32")]
            let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect();
            *stats = Some(NormStats { mean: f32s(&mean), variance: f32s(&variance) });
        }
        // y = a · x + b per channel, then the slope on the negative side: in T, over whole rows, so that the loop
        // runs on vector registers (pushing value by value kept it scalar, at a tenth of a conv-VAE step).
        let a: Vec<f64> = inv_std.iter().zip(gamma).map(|(s, g)| s * g.to_f64()).collect();
        let b: Vec<T> = mean.iter().zip(&a).zip(beta).map(|((m, a), b)| T::from_f64(b.to_f64() - m * a)).collect();
        let a: Vec<T> = a.into_iter().map(T::from_f64).collect();
        let (a, b, slope) = (&a[..c], &b[..c], T::from_f64(self.slope));
        y.resize(x.len(), T::zero()); // every value is written below

        for (row, out) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
            let (row, out) = (&row[..c], &mut out[..c]);
            for j in 0..c {
                let z = a[j] * row[j] + b[j];
                out[j] = if z > T::zero() { z } else { slope * z };
            }
        }
        Moments { mean, inv_std }
    }

    /// `(dx, dgamma, dbeta)` from `dy`; `y` is the forward output, whose sign is that of `z` (the slope is not
    /// negative), so it gives the activation's derivative.
    fn backward<T: WithDType>(&self, x: &[T], gamma: &[T], y: &[T], dy: &[T]) -> (Vec<T>, Vec<T>, Vec<T>) {
        let (mean, inv_std, _) = self.moments(x, gamma.len());
        let mut dx = Vec::with_capacity(x.len());
        let (dgamma, dbeta) = self.backward_into(x, gamma, y, dy, &Moments { mean, inv_std }, &mut dx);
        let cast = |v: Vec<f64>| v.into_iter().map(T::from_f64).collect();
        (dx, cast(dgamma), cast(dbeta))
    }

    /// The backward pass into `dx` (resized to `x`'s length), with the `moments` of the forward pass that gave `y`: returns
    /// `(dgamma, dbeta)`.
    pub(crate) fn backward_into<T: WithDType>(
        &self,
        x: &[T],
        gamma: &[T],
        y: &[T],
        dy: &[T],
        moments: &Moments,
        dx: &mut Vec<T>,
    ) -> (Vec<f64>, Vec<f64>) {
        let c = gamma.len();
        let r = (x.len() / c.max(1)).max(1) as f64;
        let to_t = |v: &[f64]| -> Vec<T> { v.iter().map(|&u| T::from_f64(u)).collect() };
        let (mean_t, inv_t) = (to_t(&moments.mean), to_t(&moments.inv_std));
        let (mean_t, inv_t) = (&mean_t[..c], &inv_t[..c]);
        let slope = T::from_f64(self.slope);
        // dz = dy · (1 or slope), which both loops recompute from y, and the two sums per channel: in T over blocks
        // of rows (so that the loop runs on vector registers), each block's sums added up in f64.
        let dz = |y: T, dy: T| if y > T::zero() { dy } else { dy * slope };
        let (mut dgamma, mut dbeta) = (vec![0f64; c], vec![0f64; c]);
        let (mut block_gamma, mut block_beta) = (vec![T::zero(); c], vec![T::zero(); c]);
        let block = SUM_BLOCK_ROWS * c;
        for ((x_block, y_block), dy_block) in x.chunks(block).zip(y.chunks(block)).zip(dy.chunks(block)) {
            let (sg, sb) = (&mut block_gamma[..c], &mut block_beta[..c]);
            sg.fill(T::zero());
            sb.fill(T::zero());
            let rows = x_block.chunks_exact(c).zip(y_block.chunks_exact(c)).zip(dy_block.chunks_exact(c));
            for ((x_row, y_row), dy_row) in rows {
                let (x_row, y_row, dy_row) = (&x_row[..c], &y_row[..c], &dy_row[..c]);
                for j in 0..c {
                    let d = dz(y_row[j], dy_row[j]);
                    let xhat = (x_row[j] - mean_t[j]) * inv_t[j];
                    sg[j] += d * xhat;
                    sb[j] += d;
                }
            }
            for j in 0..c {
                dgamma[j] += sg[j].to_f64();
                dbeta[j] += sb[j].to_f64();
            }
        }
        let batch = matches!(self.statistics, Statistics::Batch);
        // dx = gamma · inv_std · (dz - dbeta / r - xhat · dgamma / r), or without the two means for fixed statistics.
        let scale: Vec<T> = gamma.iter().zip(&moments.inv_std).map(|(g, s)| T::from_f64(g.to_f64() * s)).collect();
        let shift: Vec<T> = if batch { dbeta.iter().map(|v| T::from_f64(v / r)).collect() } else { vec![T::zero(); c] };
        let tilt: Vec<T> = if batch { dgamma.iter().map(|v| T::from_f64(v / r)).collect() } else { vec![T::zero(); c] };
        let (scale, shift, tilt) = (&scale[..c], &shift[..c], &tilt[..c]);
        // Every value is written below: a buffer of the right length is not cleared first.
        dx.resize(x.len(), T::zero());
        let rows = x.chunks_exact(c).zip(y.chunks_exact(c)).zip(dy.chunks_exact(c)).zip(dx.chunks_exact_mut(c));
        for (((x_row, y_row), dy_row), dx_row) in rows {
            let (x_row, y_row, dy_row, dx_row) = (&x_row[..c], &y_row[..c], &dy_row[..c], &mut dx_row[..c]);
            for j in 0..c {
                let xhat = (x_row[j] - mean_t[j]) * inv_t[j];
                dx_row[j] = scale[j] * (dz(y_row[j], dy_row[j]) - shift[j] - xhat * tilt[j]);
            }
        }
        (dgamma, dbeta)
    }
}

/// Per channel `j` of rows `x` `[r, c]`, the sum of `f(j, value)` over the rows: in T over blocks of
/// [`SUM_BLOCK_ROWS`] rows, so that the loop runs on vector registers, each block's sums added up in f64.
fn channel_sums<T: WithDType>(x: &[T], c: usize, f: impl Fn(usize, T) -> T) -> Vec<f64> {
    let mut total = vec![0f64; c];
    let mut block = vec![T::zero(); c];
    for rows in x.chunks(SUM_BLOCK_ROWS * c) {
        let block = &mut block[..c];
        block.fill(T::zero());
        for row in rows.chunks_exact(c) {
            let row = &row[..c];
            for j in 0..c {
                block[j] += f(j, row[j]);
            }
        }
        total.iter_mut().zip(block.iter()).for_each(|(t, b)| *t += b.to_f64());
    }
    total
}

/// Rows whose backward sums are added in the input's type before they go into the f64 totals.
const SUM_BLOCK_ROWS: usize = 64;

/// Per-channel means and `1 / sqrt(var + eps)` of a forward pass, for its backward pass.
#[derive(Clone, Debug, Default)]
pub(crate) struct Moments {
    /// Means.
    pub mean: Vec<f64>,
    /// `1 / sqrt(var + eps)`.
    pub inv_std: Vec<f64>,
}

/// A contiguous slice of a storage.
fn slice<'a, T: WithDType>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [T]> {
    let data = s.as_slice::<T>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("norm-act needs contiguous inputs"),
    }
}

impl CustomOp3 for NormAct {
    fn name(&self) -> &'static str {
        "norm-act"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, c) = l1.shape().dims2()?;
        if l2.shape().elem_count() != c || l3.shape().elem_count() != c {
            candle_core::bail!("norm-act: gamma and beta need {c} values");
        }
        let out = match s1 {
            CpuStorage::F32(_) => CpuStorage::F32(self.forward(slice::<f32>(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?)),
            CpuStorage::F64(_) => CpuStorage::F64(self.forward(slice::<f64>(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?)),
            _ => candle_core::bail!("norm-act: only f32 and f64"),
        };
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let device = x.device();
        let shape = x.shape().clone();
        let c = gamma.elem_count();
        macro_rules! run {
            ($t:ty) => {{
                let v = |t: &Tensor| t.flatten_all()?.to_vec1::<$t>();
                let (dx, dg, db) = self.backward(&v(x)?, &v(gamma)?, &v(res)?, &v(grad)?);
                (
                    Tensor::from_vec(dx, shape, device)?,
                    Tensor::from_vec(dg, c, device)?,
                    Tensor::from_vec(db, c, device)?,
                )
            }};
        }
        let (dx, dg, db) = match x.dtype() {
            DType::F32 => run!(f32),
            DType::F64 => run!(f64),
            d => candle_core::bail!("norm-act: unsupported dtype {d:?}"),
        };
        Ok((Some(dx), Some(dg.reshape(gamma.shape())?), Some(db.reshape(gamma.shape())?)))
    }
}
