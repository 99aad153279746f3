//! The VAE lab's view computations, on their own thread so the UI never waits: the encoder's means and variances
//! for every input, the decoded manifold over a latent window, the image under the cursor, and samples from the
//! prior. The decoder runs on a real GPU's kernels when one is present and the job pays for the round trip,
//! otherwise on candle.
//!
//! The UI sends [`VaeViewRequest`]s (the newest replaces what is pending) and reads back plain data.

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::compute::{CandleBackend, ComputeBackend, ComputeError, RealGpu, Rows, WeightsKey};
use crate::models::vae::{VaeNetworks, VaeParams};
use crate::train::view_thread::ViewThread;

/// Images in the prior-samples grid (a square).
pub const PRIOR_SAMPLES: usize = 64;

/// Draws from the prior decoded for a table, whose scatter over the training rows needs more than a grid's.
pub const TABLE_PRIOR_SAMPLES: usize = 1000;

/// What the views need for one model.
#[derive(Clone, Debug)]
pub struct VaeViewRequest {
    /// The model.
    pub params: Arc<VaeParams>,
    /// Its optimisation step.
    pub step: u64,
    /// Its run.
    pub run: u64,
    /// Inputs to encode, `[n, n_in]` (training rows first).
    pub inputs: Arc<Vec<f32>>,
    /// The latent window of the manifold `[x0, x1, y0, y1]` and its cells per side.
    pub grid: ([f32; 4], usize),
    /// The two latent dimensions on show (the others are held at 0 when decoding).
    pub dims: (usize, usize),
    /// A latent point to decode (under the cursor).
    pub hover: Option<[f32; 2]>,
    /// Two latent points (full length) to decode the straight path between.
    pub path: Option<(Vec<f32>, Vec<f32>)>,
    /// The model is changing (a run trains): only the first [`LIVE_INPUTS`] inputs are encoded, so that the
    /// views keep up without taking the cores training needs; a paused or finished run's model encodes them all.
    pub live: bool,
    /// How many draws from the prior to decode: [`PRIOR_SAMPLES`] for images, [`TABLE_PRIOR_SAMPLES`] for a table.
    pub prior_samples: usize,
}

/// Inputs encoded for the latent scatter while a run trains (the first ones: the same points every time).
pub const LIVE_INPUTS: usize = 1000;

/// Images on an interpolation path, ends included.
pub const PATH_STEPS: usize = 10;

/// The encoder's output for every input.
#[derive(Clone, Debug, PartialEq)]
pub struct Latents {
    /// Model step.
    pub step: u64,
    /// Run.
    pub run: u64,
    /// Means `[n, latent]`.
    pub mu: Vec<f32>,
    /// Log-variances `[n, latent]`.
    pub logvar: Vec<f32>,
}

/// Decoded images (or feature vectors) on a regular latent grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifold {
    /// Model step.
    pub step: u64,
    /// `[x0, x1, y0, y1]`.
    pub bounds: [f32; 4],
    /// Cells per side.
    pub cells: usize,
    /// `[cells * cells, n_in]`, row by row from the top (largest y) down, left to right.
    pub images: Vec<f32>,
}

/// What the view thread sends back.
/// The image decoded at a point of the latent plane.
#[derive(Clone, Debug)]
pub struct HoverImage {
    /// The point, on the dimensions on show.
    pub z: [f32; 2],
    /// The dimensions on show (from 0): the point gives these two, the others are 0.
    pub dims: (usize, usize),
    /// The decoded image.
    pub image: Arc<Vec<f32>>,
}

#[derive(Clone, Debug)]
pub enum VaeViewResult {
    /// Every input's q(z | x).
    Latents(Arc<Latents>),
    /// The manifold.
    Manifold(Arc<Manifold>),
    /// The decoded point under the cursor.
    Hover(HoverImage),
    /// The decoded path: `[PATH_STEPS, n_in]`.
    Path(Arc<Vec<f32>>),
    /// Decoded draws from N(0, I): `[prior_samples, n_in]`.
    Prior(u64, Arc<Vec<f32>>),
    /// Where the decoder ran ("CPU", "GPU (…)").
    Device(String),
    /// Something failed.
    Error(String),
}

/// The view thread's handle; dropping it stops the thread.
pub type VaeViewWorker = ViewThread<VaeViewRequest, VaeViewResult>;

/// Starts the VAE's view thread; `repaint` is called after every result.
pub fn spawn(repaint: impl Fn() + Send + 'static) -> std::io::Result<VaeViewWorker> {
    let mut state = ViewState {
        cpu: CandleBackend::new(),
        gpu: RealGpu::new(),
        done_latents: None,
        done_grid: None,
        done_hover: None,
        done_path: None,
        device: String::new(),
    };
    ViewThread::spawn("vae-view", repaint, move |request, send| state.handle(&request, send))
}

/// What a manifold was computed for: run, step, window bits, cells, dimensions.
type GridKey = (u64, u64, [u32; 4], usize, (usize, usize));

/// Identifies the decoder's weights in the GPU cache.
const VAE_WEIGHTS_ID: u64 = 0x7ae0_0000;

/// What the view thread last decoded under the cursor: run, step, point (bits) and dimensions on show.
type HoverKey = (u64, u64, [u32; 2], (usize, usize));

/// What the thread remembers between requests: what it last sent, and where it runs.
struct ViewState {
    cpu: CandleBackend,
    gpu: RealGpu,
    done_latents: Option<(u64, u64, bool)>,
    done_grid: Option<GridKey>,
    /// The run, step, point and dimensions last decoded.
    done_hover: Option<HoverKey>,
    done_path: Option<(u64, u64, Vec<u32>)>,
    device: String,
}

impl ViewState {
    fn handle(&mut self, request: &VaeViewRequest, send: &dyn Fn(VaeViewResult)) {
        let model = (request.run, request.step);
        // The point under the cursor first: it is what the user is looking at.
        if let Some(z) = request.hover {
            // The dimensions on show too: the same point on other axes is another z.
            let key = (model.0, model.1, z.map(f32::to_bits), request.dims);
            if self.done_hover != Some(key) {
                let latent = latent_rows(&[z], request.params.latent, request.dims);
                match decode(&mut self.cpu, &request.params, &latent, 1) {
                    Ok(image) => {
                        send(VaeViewResult::Hover(HoverImage { z, dims: request.dims, image: Arc::new(image) }));
                    }
                    Err(e) => send(VaeViewResult::Error(format!("cannot decode the point: {e}"))),
                }
                self.done_hover = Some(key);
            }
        }
        if let Some((a, b)) = &request.path {
            let key = (model.0, model.1, a.iter().chain(b).map(|v| v.to_bits()).collect::<Vec<_>>());
            if self.done_path.as_ref() != Some(&key) && a.len() == request.params.latent && b.len() == a.len() {
                let z: Vec<f32> = (0..PATH_STEPS)
                    .flat_map(|k| {
                        let t = k as f32 / (PATH_STEPS - 1) as f32;
                        a.iter().zip(b).map(move |(x, y)| x + t * (y - x))
                    })
                    .collect();
                match decode(&mut self.cpu, &request.params, &z, PATH_STEPS) {
                    Ok(images) => send(VaeViewResult::Path(Arc::new(images))),
                    Err(e) => send(VaeViewResult::Error(format!("cannot decode the path: {e}"))),
                }
                self.done_path = Some(key);
            }
        }
        if self.done_latents != Some((model.0, model.1, request.live)) {
            let n_in = request.params.n_in().max(1);
            let inputs = if request.live {
                request.inputs.get(..LIVE_INPUTS * n_in).unwrap_or(&request.inputs)
            } else {
                &request.inputs[..]
            };
            match encode_latents(&mut self.cpu, &request.params, inputs) {
                Ok((mu, logvar)) => {
                    send(VaeViewResult::Latents(Arc::new(Latents { step: model.1, run: model.0, mu, logvar })));
                }
                Err(e) => send(VaeViewResult::Error(format!("cannot encode the data: {e}"))),
            }
            // Samples from the prior, with the same draws for every model of the run.
            let mut rng = ChaCha8Rng::seed_from_u64(model.0);
            let z: Vec<f32> =
                (0..request.prior_samples * request.params.latent).map(|_| StandardNormal.sample(&mut rng)).collect();
            match decode(&mut self.cpu, &request.params, &z, request.prior_samples) {
                Ok(images) => send(VaeViewResult::Prior(model.1, Arc::new(images))),
                Err(e) => send(VaeViewResult::Error(format!("cannot decode the prior samples: {e}"))),
            }
            self.done_latents = Some((model.0, model.1, request.live));
        }
        let (bounds, cells) = request.grid;
        let grid_key = (model.0, model.1, bounds.map(f32::to_bits), cells, request.dims);
        if self.done_grid != Some(grid_key) && cells > 0 {
            let points: Vec<[f32; 2]> = (0..cells * cells)
                .map(|k| {
                    let (row, col) = (k / cells, k % cells);
                    let x = bounds[0] + (bounds[1] - bounds[0]) * (col as f32 + 0.5) / cells as f32;
                    let y = bounds[3] - (bounds[3] - bounds[2]) * (row as f32 + 0.5) / cells as f32;
                    [x, y]
                })
                .collect();
            let latent = latent_rows(&points, request.params.latent, request.dims);
            let flops = 2.0 * request.params.decoder_macs() as f64 * points.len() as f64;
            let key = WeightsKey::new(VAE_WEIGHTS_ID + (model.0 << 8), model.1);
            // The GPU kernels run dense layers; the convolutional decoder runs on candle.
            let gpu_job = match &request.params.networks {
                VaeNetworks::Mlp { decoder, .. } => self.gpu.for_job(flops, "the VAE's decoder").map(|g| (g, decoder)),
                VaeNetworks::Conv(_) => None,
            };
            let on_gpu = match gpu_job {
                Some(((gpu, adapter), decoder)) => {
                    match gpu.mlp_forward(Rows::new(decoder, key, &latent, points.len())) {
                        Ok(out) => Some((out, format!("GPU ({})", adapter.name))),
                        Err(e) => {
                            log::warn!("the GPU decoder failed ({e}); using the CPU from now on");
                            self.gpu.give_up();
                            None
                        }
                    }
                }
                None => None,
            };
            let result = match on_gpu {
                Some((out, dev)) => Ok((finish(&request.params, out), dev)),
                None => decode(&mut self.cpu, &request.params, &latent, points.len()).map(|o| (o, "CPU".to_owned())),
            };
            match result {
                Ok((images, dev)) => {
                    if dev != self.device {
                        self.device.clone_from(&dev);
                        send(VaeViewResult::Device(dev));
                    }
                    send(VaeViewResult::Manifold(Arc::new(Manifold { step: model.1, bounds, cells, images })));
                }
                Err(e) => send(VaeViewResult::Error(format!("cannot decode the grid: {e}"))),
            }
            self.done_grid = Some(grid_key);
        }
    }
}

/// Latent rows `[n, latent]` with the two shown dimensions set from `points` and the rest at 0.
fn latent_rows(points: &[[f32; 2]], latent: usize, dims: (usize, usize)) -> Vec<f32> {
    let mut z = vec![0f32; points.len() * latent];
    for (row, p) in z.chunks_exact_mut(latent).zip(points) {
        if let Some(v) = row.get_mut(dims.0) {
            *v = p[0];
        }
        if let Some(v) = row.get_mut(dims.1)
            && dims.1 != dims.0
        {
            *v = p[1];
        }
    }
    z
}

/// The encoder's `[mu, log sigma²]` rows `[n, 2 latent]` for `inputs` `[n, n_in]`, on the CPU.
pub(crate) fn encode(
    cpu: &mut CandleBackend,
    params: &VaeParams,
    inputs: &[f32],
    n: usize,
) -> Result<Vec<f32>, ComputeError> {
    Ok(match &params.networks {
        VaeNetworks::Mlp { encoder, .. } => cpu.mlp_forward(Rows::new(encoder, WeightsKey::TRANSIENT, inputs, n))?,
        VaeNetworks::Conv(conv) => conv.encode_cpu(inputs, n)?,
    })
}

/// Every input's q(z | x) on the CPU: the means and the log-variances `[n, latent]` of `inputs` `[n, n_in]` (what
/// the view thread sends as [`Latents`]; also used by the exports).
pub fn encode_latents(
    cpu: &mut CandleBackend,
    params: &VaeParams,
    inputs: &[f32],
) -> Result<(Vec<f32>, Vec<f32>), ComputeError> {
    let n = inputs.len() / params.n_in().max(1);
    let out = encode(cpu, params, inputs, n)?;
    let d = params.latent;
    let (mut mu, mut logvar) = (Vec::with_capacity(n * d), Vec::with_capacity(n * d));
    for row in out.chunks_exact(2 * d.max(1)) {
        mu.extend_from_slice(&row[..d]);
        logvar.extend_from_slice(&row[d..]);
    }
    Ok((mu, logvar))
}

/// The decoder's mean output for latents `z` `[n, latent]`, on the CPU.
pub(crate) fn decode(
    cpu: &mut CandleBackend,
    params: &VaeParams,
    z: &[f32],
    n: usize,
) -> Result<Vec<f32>, ComputeError> {
    let out = match &params.networks {
        VaeNetworks::Mlp { decoder, .. } => cpu.mlp_forward(Rows::new(decoder, WeightsKey::TRANSIENT, z, n))?,
        VaeNetworks::Conv(conv) => conv.decode_cpu(z, n)?,
    };
    Ok(finish(params, out))
}

/// Logits to pixel probabilities, where the decoder gives logits.
fn finish(params: &VaeParams, mut out: Vec<f32>) -> Vec<f32> {
    if params.sigmoid_output() {
        crate::compute::Activation::Sigmoid.apply_in_place(&mut out);
    }
    out
}
