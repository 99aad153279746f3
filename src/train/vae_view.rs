//! The VAE lab's view computations, on their own thread so the UI never waits: the encoder's means and variances
//! for every input, the decoded manifold over a latent window, the image under the cursor, and samples from the
//! prior. The decoder runs on a real GPU's kernels when one is present and the job pays for the round trip,
//! otherwise on candle.
//!
//! The UI sends [`VaeViewRequest`]s (the newest replaces what is pending) and reads back plain data.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::thread::JoinHandle;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::gpu::{
    AdapterSummary, BackendChoice, CandleBackend, ComputeBackend, ComputeError, GpuBackend, WeightsKey, choose_backend,
};
use crate::models::params::MlpParams;
use crate::models::vae::{Likelihood, VaeParams};

/// Images in the prior-samples grid (a square).
pub const PRIOR_SAMPLES: usize = 64;

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
}

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
#[derive(Clone, Debug)]
pub enum VaeViewResult {
    /// Every input's q(z | x).
    Latents(Arc<Latents>),
    /// The manifold.
    Manifold(Arc<Manifold>),
    /// The decoded point under the cursor and its image.
    Hover([f32; 2], Arc<Vec<f32>>),
    /// The decoded path: `[PATH_STEPS, n_in]`.
    Path(Arc<Vec<f32>>),
    /// Decoded draws from N(0, I): `[PRIOR_SAMPLES, n_in]`.
    Prior(u64, Arc<Vec<f32>>),
    /// Where the decoder ran ("CPU (candle)", "GPU (…)").
    Device(String),
    /// Something failed.
    Error(String),
}

/// The view thread's handle; dropping it stops the thread.
pub struct VaeViewWorker {
    requests: Option<Sender<VaeViewRequest>>,
    results: Receiver<VaeViewResult>,
    thread: Option<JoinHandle<()>>,
}

impl VaeViewWorker {
    /// Starts the thread; `repaint` is called after every result.
    pub fn spawn(repaint: impl Fn() + Send + 'static) -> std::io::Result<Self> {
        let (req_tx, req_rx) = channel::<VaeViewRequest>();
        let (res_tx, res_rx) = channel();
        let thread = std::thread::Builder::new().name("vae-view".into()).spawn(move || {
            ViewLoop { requests: req_rx, results: res_tx, repaint: Box::new(repaint), gpu: None, probed: false }.run();
        })?;
        Ok(Self { requests: Some(req_tx), results: res_rx, thread: Some(thread) })
    }

    /// Asks for the views of a model; replaces anything pending.
    pub fn request(&self, request: VaeViewRequest) {
        if let Some(tx) = &self.requests {
            let _ = tx.send(request);
        }
    }

    /// Results that arrived since the last call.
    #[must_use]
    pub fn drain(&self) -> Vec<VaeViewResult> {
        self.results.try_iter().collect()
    }
}

impl Drop for VaeViewWorker {
    fn drop(&mut self) {
        self.requests = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct ViewLoop {
    requests: Receiver<VaeViewRequest>,
    results: Sender<VaeViewResult>,
    repaint: Box<dyn Fn() + Send>,
    gpu: Option<(GpuBackend, AdapterSummary)>,
    probed: bool,
}

/// What a manifold was computed for: run, step, window bits, cells, dimensions.
type GridKey = (u64, u64, [u32; 4], usize, (usize, usize));

/// Identifies the decoder's weights in the GPU cache.
const VAE_WEIGHTS_ID: u64 = 0x7ae0_0000;

impl ViewLoop {
    fn run(&mut self) {
        let mut cpu = CandleBackend::new();
        let mut done_latents: Option<(u64, u64)> = None;
        let mut done_grid: Option<GridKey> = None;
        let mut done_hover: Option<(u64, u64, [u32; 2])> = None;
        let mut done_path: Option<(u64, u64, Vec<u32>)> = None;
        let mut device = String::new();
        loop {
            let Ok(mut request) = self.requests.recv() else { return };
            loop {
                match self.requests.try_recv() {
                    Ok(r) => request = r,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            let model = (request.run, request.step);
            // The point under the cursor first: it is what the user is looking at.
            if let Some(z) = request.hover {
                let key = (model.0, model.1, z.map(f32::to_bits));
                if done_hover != Some(key) {
                    let latent = latent_rows(&[z], request.params.latent, request.dims);
                    match decode(&mut cpu, &request.params, &latent, 1) {
                        Ok(image) => self.send(VaeViewResult::Hover(z, Arc::new(image))),
                        Err(e) => self.send(VaeViewResult::Error(format!("cannot decode the point: {e}"))),
                    }
                    done_hover = Some(key);
                }
            }
            if let Some((a, b)) = &request.path {
                let key = (model.0, model.1, a.iter().chain(b).map(|v| v.to_bits()).collect::<Vec<_>>());
                if done_path.as_ref() != Some(&key) && a.len() == request.params.latent && b.len() == a.len() {
                    let z: Vec<f32> = (0..PATH_STEPS)
                        .flat_map(|k| {
                            let t = k as f32 / (PATH_STEPS - 1) as f32;
                            a.iter().zip(b).map(move |(x, y)| x + t * (y - x))
                        })
                        .collect();
                    match decode(&mut cpu, &request.params, &z, PATH_STEPS) {
                        Ok(images) => self.send(VaeViewResult::Path(Arc::new(images))),
                        Err(e) => self.send(VaeViewResult::Error(format!("cannot decode the path: {e}"))),
                    }
                    done_path = Some(key);
                }
            }
            if done_latents != Some(model) {
                let n_in = request.params.encoder.n_in();
                let n = request.inputs.len() / n_in.max(1);
                match cpu.mlp_forward(&request.params.encoder, WeightsKey::TRANSIENT, &request.inputs, n) {
                    Ok(out) => {
                        let d = request.params.latent;
                        let (mut mu, mut logvar) = (Vec::with_capacity(n * d), Vec::with_capacity(n * d));
                        for row in out.chunks_exact(2 * d) {
                            mu.extend_from_slice(&row[..d]);
                            logvar.extend_from_slice(&row[d..]);
                        }
                        self.send(VaeViewResult::Latents(Arc::new(Latents {
                            step: model.1,
                            run: model.0,
                            mu,
                            logvar,
                        })));
                    }
                    Err(e) => self.send(VaeViewResult::Error(format!("cannot encode the data: {e}"))),
                }
                // Samples from the prior, with the same draws for every model of the run.
                let mut rng = ChaCha8Rng::seed_from_u64(model.0);
                let z: Vec<f32> =
                    (0..PRIOR_SAMPLES * request.params.latent).map(|_| StandardNormal.sample(&mut rng)).collect();
                match decode(&mut cpu, &request.params, &z, PRIOR_SAMPLES) {
                    Ok(images) => self.send(VaeViewResult::Prior(model.1, Arc::new(images))),
                    Err(e) => self.send(VaeViewResult::Error(format!("cannot decode the prior samples: {e}"))),
                }
                done_latents = Some(model);
            }
            let (bounds, cells) = request.grid;
            let grid_key = (model.0, model.1, bounds.map(f32::to_bits), cells, request.dims);
            if done_grid != Some(grid_key) && cells > 0 {
                let points: Vec<[f32; 2]> = (0..cells * cells)
                    .map(|k| {
                        let (row, col) = (k / cells, k % cells);
                        let x = bounds[0] + (bounds[1] - bounds[0]) * (col as f32 + 0.5) / cells as f32;
                        let y = bounds[3] - (bounds[3] - bounds[2]) * (row as f32 + 0.5) / cells as f32;
                        [x, y]
                    })
                    .collect();
                let latent = latent_rows(&points, request.params.latent, request.dims);
                let flops = 2.0 * mlp_macs(&request.params.decoder) * points.len() as f64;
                let key = WeightsKey::new(VAE_WEIGHTS_ID + (model.0 << 8), model.1);
                let on_gpu = match self.gpu_for(flops) {
                    Some((gpu, adapter)) => {
                        match gpu.mlp_forward(&request.params.decoder, key, &latent, points.len()) {
                            Ok(out) => Some((out, format!("GPU ({})", adapter.name))),
                            Err(e) => {
                                log::warn!("the GPU decoder failed ({e}); using the CPU from now on");
                                self.gpu = None;
                                None
                            }
                        }
                    }
                    None => None,
                };
                let result = match on_gpu {
                    Some((out, dev)) => Ok((finish(&request.params, out), dev)),
                    None => {
                        decode(&mut cpu, &request.params, &latent, points.len()).map(|o| (o, "CPU (candle)".to_owned()))
                    }
                };
                match result {
                    Ok((images, dev)) => {
                        if dev != device {
                            device.clone_from(&dev);
                            self.send(VaeViewResult::Device(dev));
                        }
                        self.send(VaeViewResult::Manifold(Arc::new(Manifold { step: model.1, bounds, cells, images })));
                    }
                    Err(e) => self.send(VaeViewResult::Error(format!("cannot decode the grid: {e}"))),
                }
                done_grid = Some(grid_key);
            }
        }
    }

    fn send(&self, result: VaeViewResult) {
        let _ = self.results.send(result);
        (self.repaint)();
    }

    /// A real GPU, when a job of `flops` is worth its round trip.
    fn gpu_for(&mut self, flops: f64) -> Option<(&mut GpuBackend, &AdapterSummary)> {
        if !self.probed {
            self.probed = true;
            let info = crate::gpu::probe();
            if let Some(adapter) = info.best().filter(|a| !a.is_software()) {
                match GpuBackend::new() {
                    Ok(backend) => self.gpu = Some((backend, adapter.clone())),
                    Err(e) => log::info!("no GPU for the VAE's decoder: {e}"),
                }
            }
        }
        match &mut self.gpu {
            Some((backend, adapter)) if choose_backend(Some(adapter), flops, None) == BackendChoice::Gpu => {
                Some((backend, adapter))
            }
            _ => None,
        }
    }
}

/// Multiply-adds of one row through an MLP.
fn mlp_macs(params: &MlpParams) -> f64 {
    params.layers.iter().map(|l| (l.n_in * l.n_out) as f64).sum()
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

/// The decoder's mean output for latents `z` `[n, latent]`.
fn decode(cpu: &mut CandleBackend, params: &VaeParams, z: &[f32], n: usize) -> Result<Vec<f32>, ComputeError> {
    let out = cpu.mlp_forward(&params.decoder, WeightsKey::TRANSIENT, z, n)?;
    Ok(finish(params, out))
}

/// Logits to pixel probabilities for the Bernoulli likelihood.
fn finish(params: &VaeParams, mut out: Vec<f32>) -> Vec<f32> {
    if params.likelihood == Likelihood::Bernoulli {
        crate::models::Activation::Sigmoid.apply_in_place(&mut out);
    }
    out
}
