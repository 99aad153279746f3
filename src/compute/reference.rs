//! [`CandleBackend`]: the CPU implementation of [`ComputeBackend`] on candle tensors. It is the reference
//! the GPU kernels are tested against, and the fallback wherever no (real) GPU is available.

use candle_core::{D, Device, Tensor};

use crate::compute::backend::{
    ComputeBackend, ComputeError, MatmulShape, MeanFieldParams, Noise, Rows, check_flow, check_mlp, check_rows,
};
use crate::compute::noise;
use crate::compute::params::{DenseParams, FlowLayerParams, FlowParams, MlpParams};

/// candle on the CPU. Stateless apart from the device; weights are turned into tensors per call.
#[derive(Debug)]
pub struct CandleBackend {
    device: Device,
}

impl Default for CandleBackend {
    fn default() -> Self {
        Self { device: Device::Cpu }
    }
}

impl CandleBackend {
    /// A CPU back end.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn tensor(&self, values: &[f32], rows: usize, cols: usize) -> Result<Tensor, ComputeError> {
        Ok(Tensor::from_slice(values, (rows, cols), &self.device)?)
    }

    /// `act(x · W + b)`: `x` `[n, n_in]` -> `[n, n_out]`.
    fn dense(&self, layer: &DenseParams, x: &Tensor) -> Result<Tensor, ComputeError> {
        let w = self.tensor(&layer.weights, layer.n_in, layer.n_out)?; // [n_in, n_out]
        let b = Tensor::from_slice(&layer.biases, layer.n_out, &self.device)?; // [n_out]
        let y = x.matmul(&w)?.broadcast_add(&b)?; // [n, n_out]
        Ok(layer.activation.apply(&y)?)
    }

    fn mlp(&self, params: &MlpParams, x: &Tensor) -> Result<Tensor, ComputeError> {
        let mut h = x.clone();
        for layer in &params.layers {
            h = self.dense(layer, &h)?;
        }
        Ok(h)
    }

    /// One flow layer on `u` `[n, dim]`; returns the other side and its forward log-det `[n]`.
    fn flow_layer(
        &self,
        layer: &FlowLayerParams,
        u: &Tensor,
        dim: usize,
        inverse: bool,
    ) -> Result<(Tensor, Tensor), ComputeError> {
        let n = u.dim(0)?;
        match layer {
            FlowLayerParams::Affine { shift, log_scale } => {
                let shift = self.tensor(shift, 1, dim)?; // [1, dim]
                let log_scale = self.tensor(log_scale, 1, dim)?; // [1, dim]
                let out = if inverse {
                    u.broadcast_sub(&shift)?.broadcast_mul(&log_scale.neg()?.exp()?)?
                } else {
                    u.broadcast_mul(&log_scale.exp()?)?.broadcast_add(&shift)?
                };
                let log_det = log_scale.sum_all()?.broadcast_as(n)?.contiguous()?; // [n]
                Ok((out, log_det))
            }
            FlowLayerParams::Coupling { mask, scale_net, shift_net } => {
                let m = self.tensor(mask, 1, dim)?; // [1, dim]
                let keep = m.affine(-1.0, 1.0)?; // 1 - m
                let conditioner = u.broadcast_mul(&m)?; // [n, dim]
                let s = self.mlp(scale_net, &conditioner)?; // [n, dim]
                let t = self.mlp(shift_net, &conditioner)?; // [n, dim]
                let moved = if inverse { ((u - &t)? * s.neg()?.exp()?)? } else { ((u * s.exp()?)? + &t)? };
                let out = (&conditioner + moved.broadcast_mul(&keep)?)?;
                let log_det = s.broadcast_mul(&keep)?.sum(D::Minus1)?; // [n]
                Ok((out, log_det))
            }
            FlowLayerParams::Maf { made } => {
                let rev: Vec<u32> = (0..dim as u32).rev().collect();
                let rev = Tensor::new(rev.as_slice(), &self.device)?;
                if inverse {
                    let w = u.index_select(&rev, 1)?; // [n, dim]
                    let out = self.mlp(made, &w)?; // [n, 2 dim]
                    let shift = out.narrow(1, 0, dim)?;
                    let log_scale = out.narrow(1, dim, dim)?;
                    let z = ((w - shift)? * log_scale.neg()?.exp()?)?;
                    Ok((z, log_scale.sum(D::Minus1)?))
                } else {
                    // dim passes: after pass i, coordinates 0..=i of w are final.
                    let mut w = Tensor::zeros((n, dim), candle_core::DType::F32, &self.device)?;
                    for _ in 0..dim {
                        let out = self.mlp(made, &w)?;
                        w = ((u * out.narrow(1, dim, dim)?.exp()?)? + out.narrow(1, 0, dim)?)?;
                    }
                    let log_scale = self.mlp(made, &w)?.narrow(1, dim, dim)?;
                    Ok((w.index_select(&rev, 1)?, log_scale.sum(D::Minus1)?))
                }
            }
        }
    }

    fn flow(
        &self,
        params: &FlowParams,
        x: &[f32],
        n_rows: usize,
        stage: usize,
        inverse: bool,
    ) -> Result<(Vec<f32>, Vec<f32>), ComputeError> {
        check_flow(params, stage)?;
        check_rows(x, n_rows, params.dim, "flow input")?;
        let mut u = self.tensor(x, n_rows, params.dim)?; // [n, dim]
        let mut log_det = Tensor::zeros(n_rows, candle_core::DType::F32, &self.device)?; // [n]
        let layers = &params.layers[..stage];
        let mut apply = |layer: &FlowLayerParams| -> Result<(), ComputeError> {
            let (out, ld) = self.flow_layer(layer, &u, params.dim, inverse)?;
            u = out;
            log_det = (&log_det + ld)?;
            Ok(())
        };
        if inverse {
            layers.iter().rev().try_for_each(&mut apply)?;
        } else {
            layers.iter().try_for_each(&mut apply)?;
        }
        Ok((u.flatten_all()?.to_vec1()?, log_det.to_vec1()?))
    }

    /// The noise of one layer: `[n_samples, n_params]`.
    fn layer_noise(
        noise: Noise<'_>,
        layer_index: usize,
        offset: usize,
        n_params: usize,
        per_sample: usize,
        n_samples: usize,
    ) -> Vec<f32> {
        match noise {
            Noise::Seeded(seed) => {
                let key = noise::stream_key(seed, layer_index as u32);
                (0..n_samples * n_params).map(|i| noise::normal_at(key, i as u32)).collect()
            }
            Noise::Uploaded(eps) => (0..n_samples)
                .flat_map(|s| {
                    eps.get(s * per_sample + offset..s * per_sample + offset + n_params).unwrap_or(&[]).iter().copied()
                })
                .collect(),
        }
    }
}

impl ComputeBackend for CandleBackend {
    fn name(&self) -> String {
        "candle (CPU)".to_owned()
    }

    fn matmul(&mut self, a: &[f32], b: &[f32], shape: MatmulShape) -> Result<Vec<f32>, ComputeError> {
        shape.check(a, b)?;
        let MatmulShape { m, k, n, trans_a, trans_b } = shape;
        let a = if trans_a { self.tensor(a, k, m)?.t()? } else { self.tensor(a, m, k)? }; // [m, k]
        let b = if trans_b { self.tensor(b, n, k)?.t()? } else { self.tensor(b, k, n)? }; // [k, n]
        Ok(a.matmul(&b)?.flatten_all()?.to_vec1()?) // [m, n]
    }

    fn mlp_forward(&mut self, rows: Rows<'_, MlpParams>) -> Result<Vec<f32>, ComputeError> {
        let Rows { params, x, n_rows, .. } = rows;
        check_mlp(params)?;
        check_rows(x, n_rows, params.n_in(), "mlp input")?;
        let x = self.tensor(x, n_rows, params.n_in())?; // [n, n_in]
        Ok(self.mlp(params, &x)?.flatten_all()?.to_vec1()?) // [n, n_out]
    }

    fn flow_forward(
        &mut self,
        rows: Rows<'_, FlowParams>,
        up_to_stage: usize,
    ) -> Result<(Vec<f32>, Vec<f32>), ComputeError> {
        let Rows { params, x: z, n_rows, .. } = rows;
        self.flow(params, z, n_rows, up_to_stage, false)
    }

    fn flow_inverse(
        &mut self,
        rows: Rows<'_, FlowParams>,
        from_stage: usize,
    ) -> Result<(Vec<f32>, Vec<f32>), ComputeError> {
        let Rows { params, x, n_rows, .. } = rows;
        self.flow(params, x, n_rows, from_stage, true)
    }

    fn std_normal_log_density(&mut self, z: &[f32], n_rows: usize, dim: usize) -> Result<Vec<f32>, ComputeError> {
        check_rows(z, n_rows, dim, "log-density input")?;
        let z = self.tensor(z, n_rows, dim)?; // [n, dim]
        let half_log_two_pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
        Ok(z.sqr()?.sum(D::Minus1)?.affine(-0.5, -(dim as f64) * half_log_two_pi)?.to_vec1()?) // [n]
    }

    fn bnn_predictive(
        &mut self,
        rows: Rows<'_, MeanFieldParams>,
        n_samples: usize,
        noise: Noise<'_>,
    ) -> Result<Vec<f32>, ComputeError> {
        let Rows { params, x, n_rows, .. } = rows;
        let n_in = params.check_predictive(x, n_rows, n_samples, noise)?;
        let per_sample = params.noise_per_sample();
        // [S, n, n_in]: the same inputs for every sample.
        let mut h =
            self.tensor(x, n_rows, n_in)?.unsqueeze(0)?.broadcast_as((n_samples, n_rows, n_in))?.contiguous()?;
        let mut offset = 0;
        for (index, layer) in params.layers.iter().enumerate() {
            let n_params = layer.n_params();
            let (mean, sd) = layer.packed();
            let mean = Tensor::from_slice(&mean, (1, n_params), &self.device)?; // [1, P]
            let sd = Tensor::from_slice(&sd, (1, n_params), &self.device)?; // [1, P]
            let eps = Self::layer_noise(noise, index, offset, n_params, per_sample, n_samples);
            let eps = Tensor::from_slice(&eps, (n_samples, n_params), &self.device)?; // [S, P]
            let sampled = eps.broadcast_mul(&sd)?.broadcast_add(&mean)?; // [S, P]
            let w_len = layer.n_in * layer.n_out;
            let w = sampled.narrow(1, 0, w_len)?.reshape((n_samples, layer.n_in, layer.n_out))?; // [S, in, out]
            let b = sampled.narrow(1, w_len, layer.n_out)?.unsqueeze(1)?; // [S, 1, out]
            h = layer.activation.apply(&h.matmul(&w)?.broadcast_add(&b)?)?; // [S, n, out]
            offset += n_params;
        }
        Ok(h.flatten_all()?.to_vec1()?)
    }
}
