//! The flow lab's view computations, on their own thread so the UI never waits: every stage's points (Gaussian
//! samples pushed forward, data pulled back), a warped coordinate grid, each stage's density and layer
//! log-determinant on a grid, and the path of a picked point with its change-of-variables terms.
//!
//! The UI sends [`FlowViewRequest`]s (the newest replaces what is pending) and reads back plain data. Work is
//! split into small units — geometry first, then a picked point, then density grids, the stage in focus first —
//! so a new model or a new focus is picked up within one grid's time.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use candle_core::DType;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::compute::params::{FlowLayerParams, FlowParams};
use crate::compute::{ComputeBackend, GpuBackend, RealGpu, Rows, WeightsKey};
use crate::models::flow::{FlowNet, gaussian_points};

/// Points pushed through the flow for the views.
pub const N_SAMPLES: usize = 1500;
/// Lines of the warped grid in each direction, and points per line.
pub const GRID_LINES: usize = 15;
const POINTS_PER_LINE: usize = 80;
/// Half-width of the latent square the grid lines span.
pub const LATENT_HALF_WIDTH: f32 = 3.0;

/// What the views need computed for one model.
#[derive(Clone, Debug)]
pub struct FlowViewRequest {
    /// The model.
    pub params: Arc<FlowParams>,
    /// The optimisation step of `params`.
    pub step: u64,
    /// Which run `params` belong to (with `step`, identifies the weights in the GPU's cache).
    pub run: u64,
    /// Data points (standardised, row-major `[n, 2]`), at most a few thousand.
    pub data: Arc<Vec<f32>>,
    /// Cells per side of the density grids.
    pub resolution: usize,
    /// The stage plot's width over its height (1 for a square plot): each density grid covers its stage's box
    /// widened to this shape ([`grid_bounds`]), so that its heat map fills the plot fitted to the box.
    pub aspect: f32,
    /// The stage the user is looking at (its grid is computed first).
    pub focus: usize,
    /// A point to follow through the flow: its stage and coordinates.
    pub probe: Option<(usize, [f32; 2])>,
    /// The model is changing (a run trains): the views take a light pass within [`LIVE_BUDGET`] of the time —
    /// fewer points ([`LIVE_SAMPLES`], [`LIVE_POINTS_PER_LINE`]) and only the stage in focus's grid — so that
    /// training keeps the cores. A paused or finished run's model gets the full pass.
    pub live: bool,
}

/// Gaussian samples and data points pushed through the flow while a run trains (the first of the full sets).
pub const LIVE_SAMPLES: usize = 250;
/// Points per grid line while a run trains.
pub const LIVE_POINTS_PER_LINE: usize = 12;
/// While a run trains, the share of the time the view thread works: after a model's views took `t` seconds, the
/// next model waits until `t / LIVE_BUDGET` seconds have passed since they began.
pub const LIVE_BUDGET: f64 = 0.16;

/// Every stage's points and extent.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowGeometry {
    /// The model's step.
    pub step: u64,
    /// Number of layers K.
    pub n_layers: usize,
    /// Layer kind per layer ("coupling", "MAF", "affine").
    pub layer_kinds: Vec<&'static str>,
    /// `generation[k]`: Gaussian samples after k layers (k = 0 is the samples themselves).
    pub generation: Vec<Vec<[f32; 2]>>,
    /// `inference[k]`: the data pulled back to stage k (k = K is the data).
    pub inference: Vec<Vec<[f32; 2]>>,
    /// `grid_lines[k]`: lines of a regular latent grid carried to stage k.
    pub grid_lines: Vec<Vec<Vec<[f32; 2]>>>,
    /// `[x0, x1, y0, y1]` per stage: where that stage's points lie, with a margin.
    pub bounds: Vec<[f32; 4]>,
    /// Seconds this took.
    pub seconds: f64,
}

/// One stage's density and its layer's log-determinant on a grid.
#[derive(Clone, Debug, PartialEq)]
pub struct StageGrid {
    /// The model's step.
    pub step: u64,
    /// Stage k.
    pub stage: usize,
    /// Cells per side.
    pub resolution: usize,
    /// `[x0, x1, y0, y1]`.
    pub bounds: [f32; 4],
    /// Density p_k at the cell centres, row-major from the bottom row.
    pub density: Vec<f32>,
    /// log|det| of layer k (the one that produced stage k) at the cell centres; zeros for stage 0.
    pub layer_log_det: Vec<f32>,
    /// Σ density x cell area (≈ 1 when the grid covers the mass).
    pub mass: f64,
    /// Seconds this took.
    pub seconds: f64,
    /// Where it ran: "CPU" or "GPU (<adapter>)".
    pub device: String,
}

/// A picked point followed through every stage, with the terms of log p_x(x).
#[derive(Clone, Debug, PartialEq)]
pub struct ProbePath {
    /// The model's step.
    pub step: u64,
    /// The point's position at each stage 0..=K.
    pub positions: Vec<[f32; 2]>,
    /// log N(z; 0, I) at stage 0.
    pub log_pz: f64,
    /// Per layer k = 1..=K: −log|det ∂f_k| (the term layer k adds to log p_x).
    pub layer_terms: Vec<f64>,
    /// log p_x(x) = log_pz + Σ layer_terms.
    pub log_px: f64,
}

/// What the view thread sends back.
#[derive(Clone, Debug)]
pub enum FlowViewResult {
    /// Points and lines for every stage.
    Geometry(Arc<FlowGeometry>),
    /// One stage's grids.
    Grid(Arc<StageGrid>),
    /// The picked point's path.
    Probe(ProbePath),
    /// Something failed; the message says what.
    Error(String),
}

/// The view thread's handle; dropping it stops the thread.
pub struct FlowViewWorker {
    requests: Option<Sender<FlowViewRequest>>,
    results: Receiver<FlowViewResult>,
    thread: Option<JoinHandle<()>>,
}

impl FlowViewWorker {
    /// Starts the thread; `repaint` is called after every result.
    pub fn spawn(repaint: impl Fn() + Send + 'static) -> std::io::Result<Self> {
        let (req_tx, req_rx) = channel();
        let (res_tx, res_rx) = channel();
        let thread = std::thread::Builder::new().name("flow-view".into()).spawn(move || {
            ViewLoop { requests: req_rx, results: res_tx, repaint: Box::new(repaint), gpu: RealGpu::new() }.run();
        })?;
        Ok(Self { requests: Some(req_tx), results: res_rx, thread: Some(thread) })
    }

    /// Asks for the views of a model; replaces anything pending.
    pub fn request(&self, request: FlowViewRequest) {
        if let Some(tx) = &self.requests {
            let _ = tx.send(request);
        }
    }

    /// Results that arrived since the last call.
    #[must_use]
    pub fn drain(&self) -> Vec<FlowViewResult> {
        self.results.try_iter().collect()
    }
}

impl Drop for FlowViewWorker {
    fn drop(&mut self) {
        self.requests = None; // closes the channel; the loop ends after its current unit of work
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Job {
    request: FlowViewRequest,
    net: FlowNet,
    geometry: Option<Arc<FlowGeometry>>,
    probe_pending: bool,
    /// (stage, cells per side) still to compute, in order.
    grids_pending: VecDeque<(usize, usize)>,
    /// Grids sent for this model so far.
    grids_done: usize,
    /// The geometry failed (its error was sent): nothing more to do for this model.
    failed: bool,
    /// Seconds of work on this model while it was live, and when that work began (for [`LIVE_BUDGET`]).
    live_work: (f64, Option<Instant>),
}

impl Job {
    /// Nothing left to compute for this model.
    fn idle(&self) -> bool {
        self.failed || (self.geometry.is_some() && !self.probe_pending && self.grids_pending.is_empty())
    }

    /// Whether `request` may replace what this job is doing now. A request for the same model always may (a new
    /// focus, resolution or picked point). Another model's (a training step's) waits until this one is on
    /// screen: its points and the first grid, which is the stage in focus. Otherwise, while training publishes a
    /// model faster than the points and a grid take, every model would be dropped half done and the heat map
    /// never drawn; this way the view shows the newest model it can finish, skipping the ones in between.
    fn may_take(&self, request: &FlowViewRequest) -> bool {
        self.shows_model_of(request) || self.failed || (self.geometry.is_some() && self.grids_done > 0) || self.idle()
    }

    /// `request` asks for this job's model (its step of its run, on the same points).
    fn shows_model_of(&self, request: &FlowViewRequest) -> bool {
        self.request.step == request.step
            && self.request.run == request.run
            && Arc::ptr_eq(&self.request.params, &request.params)
            && Arc::ptr_eq(&self.request.data, &request.data)
    }
}

struct ViewLoop {
    requests: Receiver<FlowViewRequest>,
    results: Sender<FlowViewResult>,
    repaint: Box<dyn Fn() + Send>,
    /// A real GPU for density grids, looked for when the first grid is asked for.
    gpu: RealGpu,
}

impl ViewLoop {
    fn run(&mut self) {
        let mut job: Option<Job> = None;
        // The newest request, when it is for another model and the current job is not on screen yet (or the
        // budget of a training run's views is spent until `rest_until`).
        let mut waiting: Option<FlowViewRequest> = None;
        let mut rest_until: Option<Instant> = None;
        loop {
            // Take the newest request; block only when there is nothing left to do (or, resting, until the rest
            // is over).
            let idle = job.as_ref().is_none_or(Job::idle);
            let resting = rest_until.filter(|&t| t > Instant::now());
            let mut newest = None;
            if idle {
                match (&waiting, resting) {
                    (None, _) => match self.requests.recv() {
                        Ok(r) => newest = Some(r),
                        Err(_) => return,
                    },
                    (Some(_), Some(until)) => match self.requests.recv_timeout(until - Instant::now()) {
                        Ok(r) => newest = Some(r),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => return,
                    },
                    (Some(_), None) => {}
                }
            }
            loop {
                match self.requests.try_recv() {
                    Ok(r) => newest = Some(r),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            // A newer request replaces the one waiting: once the run has finished, a training model's request
            // still waiting would otherwise be taken after the final model's and leave its light pass on screen.
            let next = match newest {
                Some(request) => {
                    waiting = None;
                    Some(request)
                }
                None => waiting.take(),
            };
            if let Some(request) = next {
                let another_model = job.as_ref().is_none_or(|j| !j.shows_model_of(&request));
                let resting = rest_until.is_some_and(|t| t > Instant::now());
                if request.live && another_model && resting {
                    waiting = Some(request);
                } else if job.as_ref().is_none_or(|j| j.may_take(&request)) {
                    job = self.update_job(job.take(), request);
                } else {
                    waiting = Some(request);
                }
            }
            if let Some(j) = job.as_mut() {
                let started = Instant::now();
                let was_idle = j.idle();
                self.work(j);
                if j.request.live && !was_idle {
                    let (spent, began) = &mut j.live_work;
                    *spent += started.elapsed().as_secs_f64();
                    let (spent, began) = (*spent, *began.get_or_insert(started));
                    if j.idle() {
                        // The model's views are done: the next training model waits out the rest of the budget.
                        rest_until = Some(began + Duration::from_secs_f64(spent / LIVE_BUDGET));
                        log::debug!("flow views of step {} took {spent:.3} s", j.request.step);
                    }
                }
            }
        }
    }

    /// Keeps what is still valid for the new request: the same model keeps its geometry and finished grids.
    fn update_job(&self, old: Option<Job>, request: FlowViewRequest) -> Option<Job> {
        let same_model = old.as_ref().is_some_and(|j| j.shows_model_of(&request));
        if let (true, Some(mut j)) = (same_model, old) {
            let probe_changed = j.request.probe != request.probe;
            let plan_changed = (j.request.resolution, j.request.live) != (request.resolution, request.live)
                || j.request.aspect.to_bits() != request.aspect.to_bits()
                || (request.live && j.request.focus != request.focus);
            // A paused run's model, drawn light while it trained, gets its full points.
            if j.request.live && !request.live {
                j.geometry = None;
            }
            j.probe_pending |= probe_changed && request.probe.is_some();
            j.request = request;
            if plan_changed {
                j.grids_pending = plan_for(&j.request, j.net.n_layers());
            }
            sort_by_focus(&mut j.grids_pending, j.request.focus);
            return Some(j);
        }
        match FlowNet::from_params(&request.params, DType::F32) {
            Ok(net) => {
                let grids_pending = plan_for(&request, net.n_layers());
                Some(Job {
                    probe_pending: request.probe.is_some(),
                    request,
                    net,
                    geometry: None,
                    grids_pending,
                    grids_done: 0,
                    failed: false,
                    live_work: (0.0, None),
                })
            }
            Err(e) => {
                self.send(FlowViewResult::Error(format!("cannot build the flow for the views: {e}")));
                None
            }
        }
    }

    fn work(&mut self, job: &mut Job) {
        let result = if job.failed {
            return;
        } else if job.geometry.is_none() {
            let made = geometry(&job.net, &job.request).map(|g| {
                log::debug!("flow geometry of step {} in {:.3} s", g.step, g.seconds);
                let g = Arc::new(g);
                job.geometry = Some(Arc::clone(&g));
                FlowViewResult::Geometry(g)
            });
            // Without points there are no bounds for the grids: the model is done with, its error shown.
            job.failed = made.is_err();
            made
        } else if job.probe_pending {
            job.probe_pending = false;
            match job.request.probe {
                Some((stage, point)) => probe(&job.net, job.request.step, stage, point).map(FlowViewResult::Probe),
                None => return,
            }
        } else if let (Some((stage, resolution)), Some(g)) = (job.grids_pending.pop_front(), &job.geometry) {
            let bounds = grid_bounds(g.bounds[stage.min(g.bounds.len() - 1)], job.request.aspect);
            let started = Instant::now();
            let flops = grid_flops(&job.request.params, stage, resolution);
            let gpu = match self.gpu.for_job(flops, "the flow's density grids") {
                Some((backend, adapter)) => {
                    let key = WeightsKey { id: FLOW_WEIGHTS_ID + (job.request.run << 8), version: job.request.step };
                    match gpu_stage_density_grid(backend, &job.request.params, key, stage, resolution, bounds) {
                        Ok(grids) => Some((grids, format!("GPU ({})", adapter.name))),
                        Err(e) => {
                            log::warn!("the GPU density grid failed ({e}); using the CPU from now on");
                            self.gpu.give_up();
                            None
                        }
                    }
                }
                None => None,
            };
            let grids = match gpu {
                Some(((density, log_det), device)) => Ok((density, log_det, device)),
                None => job.net.stage_density_grid(stage, resolution, bounds).map(|(d, l)| (d, l, "CPU".to_owned())),
            };
            grids.map(|(density, layer_log_det, device)| {
                let grid = StageGrid::new(
                    (job.request.step, stage),
                    (resolution, bounds),
                    (density, layer_log_det),
                    started,
                    device,
                );
                job.grids_done += 1;
                log::debug!("flow grid {}² of stage {} in {:.3} s", grid.resolution, grid.stage, grid.seconds);
                FlowViewResult::Grid(Arc::new(grid))
            })
        } else {
            return;
        };
        self.send(result.unwrap_or_else(|e| FlowViewResult::Error(format!("flow view: {e}"))));
    }

    fn send(&self, result: FlowViewResult) {
        let _ = self.results.send(result);
        (self.repaint)();
    }
}

impl StageGrid {
    /// The grid of `(step, stage)` at `(resolution, bounds)` from its `(density, layer_log_det)` values, computed
    /// since `started` on `device`; its mass summed here.
    fn new(
        (step, stage): (u64, usize),
        (resolution, bounds): (usize, [f32; 4]),
        (density, layer_log_det): (Vec<f32>, Vec<f32>),
        started: Instant,
        device: String,
    ) -> Self {
        let mass = grid_mass(&density, resolution, bounds);
        let seconds = started.elapsed().as_secs_f64();
        Self { step, stage, resolution, bounds, density, layer_log_det, mass, seconds, device }
    }
}

/// Σ density x cell area over a `resolution`² grid on `bounds` (≈ 1 when the grid covers the mass).
fn grid_mass(density: &[f32], resolution: usize, bounds: [f32; 4]) -> f64 {
    let cell = f64::from((bounds[1] - bounds[0]) * (bounds[3] - bounds[2])) / (resolution * resolution) as f64;
    density.iter().map(|&d| f64::from(d)).sum::<f64>() * cell
}

/// Data points the views push through the flow at most (the first training rows).
pub const MAX_VIEW_POINTS: usize = 2000;

/// The data points the views use: the first [`MAX_VIEW_POINTS`] standardised training rows `[n, 2]`.
#[must_use]
pub fn view_points(data: &crate::data::prepare::Prepared) -> Vec<f32> {
    let n = data.n_train().min(MAX_VIEW_POINTS);
    data.x_train.get(..n * 2).map(<[f32]>::to_vec).unwrap_or_default()
}

/// What the view thread computes for a model, here and now on the CPU (for exports and tests): every stage's
/// points and grid lines for the data `data` (`[n, 2]`), then each stage's density and layer log-det on a
/// `resolution`² grid over that stage's bounds.
pub fn stage_views(
    params: &Arc<FlowParams>,
    step: u64,
    data: &Arc<Vec<f32>>,
    resolution: usize,
) -> candle_core::Result<(FlowGeometry, Vec<StageGrid>)> {
    let net = FlowNet::from_params(params, DType::F32)?;
    let request = FlowViewRequest {
        params: Arc::clone(params),
        step,
        run: 0,
        data: Arc::clone(data),
        resolution,
        aspect: 1.0,
        focus: 0,
        probe: None,
        live: false,
    };
    let g = geometry(&net, &request)?;
    let mut grids = Vec::with_capacity(g.bounds.len());
    for (stage, &bounds) in g.bounds.iter().enumerate() {
        let started = Instant::now();
        let (density, layer_log_det) = net.stage_density_grid(stage, resolution, bounds)?;
        grids.push(StageGrid::new(
            (step, stage),
            (resolution, bounds),
            (density, layer_log_det),
            started,
            "CPU".into(),
        ));
    }
    Ok((g, grids))
}

/// Cells per side of the quick first pass over every stage, before the requested resolution.
pub const PREVIEW_RESOLUTION: usize = 48;

/// The grids to compute for `request`: while a run trains, the stage in focus alone at the request's resolution;
/// else every stage at the preview resolution, then every stage at the request's (when finer).
fn plan_for(request: &FlowViewRequest, n_layers: usize) -> VecDeque<(usize, usize)> {
    if request.live {
        return VecDeque::from([(request.focus.min(n_layers), request.resolution)]);
    }
    let mut plan = grid_plan(n_layers, request.resolution);
    sort_by_focus(&mut plan, request.focus);
    plan
}

/// Every stage at the preview resolution, then every stage at `resolution` (when finer).
fn grid_plan(n_layers: usize, resolution: usize) -> VecDeque<(usize, usize)> {
    let mut plan: VecDeque<(usize, usize)> = (0..=n_layers).map(|k| (k, PREVIEW_RESOLUTION.min(resolution))).collect();
    if resolution > PREVIEW_RESOLUTION {
        plan.extend((0..=n_layers).map(|k| (k, resolution)));
    }
    plan
}

/// Orders the pending grids: coarse before fine, and within each, by distance from `focus`, nearest first.
fn sort_by_focus(grids: &mut VecDeque<(usize, usize)>, focus: usize) {
    grids.make_contiguous().sort_by_key(|&(k, r)| (r, k.abs_diff(focus)));
}

/// Points in the plane.
type Points = Vec<[f32; 2]>;

fn pairs(flat: &[f32]) -> Points {
    flat.chunks_exact(2).map(|p| [p[0], p[1]]).collect()
}

fn geometry(net: &FlowNet, request: &FlowViewRequest) -> candle_core::Result<FlowGeometry> {
    let started = Instant::now();
    let k_max = net.n_layers();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // While a run trains, the first points of the same sets, so that the scatter keeps its points.
    let (samples, data, per_line) = if request.live {
        let data = request.data.get(..LIVE_SAMPLES * 2).unwrap_or(&request.data);
        (LIVE_SAMPLES, data, LIVE_POINTS_PER_LINE)
    } else {
        (N_SAMPLES, &request.data[..], POINTS_PER_LINE)
    };
    let inference = net.inverse_stages(data, k_max)?;
    // The Gaussian samples, then the lines of a regular grid in z (GRID_LINES vertical and GRID_LINES
    // horizontal), pushed forward together: one pass of larger products.
    let mut line_points = gaussian_points(samples, 2, &mut rng);
    line_points.reserve(2 * GRID_LINES * per_line * 2);
    let h = LATENT_HALF_WIDTH;
    for vertical in [true, false] {
        for l in 0..GRID_LINES {
            let a = -h + 2.0 * h * l as f32 / (GRID_LINES - 1) as f32;
            for p in 0..per_line {
                let b = -h + 2.0 * h * p as f32 / (per_line - 1) as f32;
                line_points.extend(if vertical { [a, b] } else { [b, a] });
            }
        }
    }
    let pushed = net.forward_stages(&line_points)?;
    let (generation, grid_lines): (Vec<Points>, Vec<Vec<Points>>) = pushed
        .points
        .iter()
        .map(|stage| {
            let (samples, lines) = stage.split_at((samples * 2).min(stage.len()));
            (pairs(samples), pairs(lines).chunks(per_line).map(<[_]>::to_vec).collect())
        })
        .unzip();
    let inference: Vec<Vec<[f32; 2]>> = inference.points.iter().map(|s| pairs(s)).collect();
    let bounds = (0..=k_max).map(|k| stage_bounds(&generation[k], &inference[k], k == 0)).collect();
    Ok(FlowGeometry {
        step: request.step,
        n_layers: k_max,
        layer_kinds: request.params.layers.iter().map(crate::compute::params::FlowLayerParams::kind_name).collect(),
        generation,
        inference,
        grid_lines,
        bounds,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A square-ish box around the middle 99 % of a stage's points, with a 25 % margin; at least ±3.5 for the
/// Gaussian stage.
fn stage_bounds(a: &[[f32; 2]], b: &[[f32; 2]], gaussian: bool) -> [f32; 4] {
    let quantiles = |c: usize| {
        let mut v: Vec<f32> = a.iter().chain(b).map(|p| p[c]).filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return (-3.0, 3.0);
        }
        v.sort_by(f32::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        (at(0.005), at(0.995))
    };
    let ((x0, x1), (y0, y1)) = (quantiles(0), quantiles(1));
    let (cx, cy) = (f32::midpoint(x0, x1), f32::midpoint(y0, y1));
    let mut half = ((x1 - x0).max(y1 - y0) / 2.0 * 1.25).max(0.5);
    if gaussian {
        half = half.max(3.5);
        return [-half, half, -half, half];
    }
    half = half.min(50.0);
    [cx - half, cx + half, cy - half, cy + half]
}

/// How much a density grid reaches past the view it is made for, each way: egui_plot shows a little more than the
/// bounds it is fitted to (about 0.7 % of the height at 1280 x 800).
const GRID_OVERREACH: f32 = 0.02;

/// The box a stage's density grid covers: the stage's box `[x0, x1, y0, y1]` widened about its centre along x or
/// along y to the shape of a plot view `aspect` times as wide as it is tall (clamped to 1/4 ... 4), which is what a
/// plot with equal units on both axes shows when fitted to the whole box, then [`GRID_OVERREACH`] more each way.
#[must_use]
pub fn grid_bounds(stage_box: [f32; 4], aspect: f32) -> [f32; 4] {
    let aspect = if aspect.is_finite() { aspect.clamp(0.25, 4.0) } else { 1.0 };
    let [x0, x1, y0, y1] = stage_box;
    let (width, height) = (x1 - x0, y1 - y0);
    if width <= 0.0 || height <= 0.0 {
        return stage_box;
    }
    let (width, height) = if width / height < aspect { (height * aspect, height) } else { (width, width / aspect) };
    let (half_x, half_y) = (width / 2.0 * (1.0 + GRID_OVERREACH), height / 2.0 * (1.0 + GRID_OVERREACH));
    let (cx, cy) = (f32::midpoint(x0, x1), f32::midpoint(y0, y1));
    [cx - half_x, cx + half_x, cy - half_y, cy + half_y]
}

/// Multiply-adds x 2 to pull a `resolution`² grid back from `stage` to the Gaussian.
fn grid_flops(params: &FlowParams, stage: usize, resolution: usize) -> f64 {
    let per_point: usize = params
        .layers
        .iter()
        .take(stage)
        .map(|l| match l {
            FlowLayerParams::Affine { .. } => 4,
            FlowLayerParams::Coupling { scale_net, shift_net, .. } => {
                scale_net.macs_per_row() + shift_net.macs_per_row()
            }
            FlowLayerParams::Maf { made } => made.macs_per_row(),
        })
        .sum();
    2.0 * per_point as f64 * (resolution * resolution) as f64
}

/// Identifies the flow's weights in the GPU's cache (one flow per view thread).
const FLOW_WEIGHTS_ID: u64 = 0xf10;
/// Rows per GPU call, so the widest activation (rows x 256 floats) stays far below a storage binding's limit.
const GPU_CHUNK_ROWS: usize = 32_768;

/// [`FlowNet::stage_density_grid`] on the GPU kernels: the density of stage `k` on a `resolution`² grid over
/// `bounds` (cell centres, rows from the bottom) and layer k's log|det| there. The same numbers as the CPU
/// path to float rounding (checked in `tests/flow.rs`).
pub fn gpu_stage_density_grid(
    backend: &mut GpuBackend,
    params: &FlowParams,
    key: WeightsKey,
    k: usize,
    resolution: usize,
    bounds: [f32; 4],
) -> Result<(Vec<f32>, Vec<f32>), crate::compute::ComputeError> {
    let points = crate::models::flow::grid_points(resolution, bounds);
    let n = points.len() / 2;
    let mut density = Vec::with_capacity(n);
    let mut layer_log_det = Vec::with_capacity(n);
    // Layer k alone, for its own log-determinant (cached under its own key).
    let layer_k = (k > 0).then(|| FlowParams { dim: params.dim, layers: vec![params.layers[k - 1].clone()] });
    // Its own cache entry: the top bit marks "one layer", the low byte says which (k <= 32).
    let layer_key = WeightsKey { id: (1 << 63) | (key.id << 8) | k as u64, version: key.version };
    for chunk in points.chunks(GPU_CHUNK_ROWS * 2) {
        let rows = chunk.len() / 2;
        let (z, log_det) = backend.flow_inverse(Rows::new(params, key, chunk, rows), k)?;
        let log_pz = backend.std_normal_log_density(&z, rows, 2)?;
        density.extend(log_pz.iter().zip(&log_det).map(|(lp, ld)| (lp - ld).exp()));
        match &layer_k {
            Some(layer) => layer_log_det.extend(backend.flow_inverse(Rows::new(layer, layer_key, chunk, rows), 1)?.1),
            None => layer_log_det.extend(std::iter::repeat_n(0.0, rows)),
        }
    }
    Ok((density, layer_log_det))
}

/// Follows a point given at `stage` to every other stage and splits log p_x(x) into its terms.
pub fn probe(net: &FlowNet, step: u64, stage: usize, point: [f32; 2]) -> candle_core::Result<ProbePath> {
    let back = net.inverse_stages(&point, stage)?;
    let z = [back.points[0][0], back.points[0][1]];
    let forward = net.forward_stages(&z)?;
    let positions: Vec<[f32; 2]> = forward.points.iter().map(|p| [p[0], p[1]]).collect();
    let log_pz = -0.5 * (f64::from(z[0]).powi(2) + f64::from(z[1]).powi(2)) - std::f64::consts::TAU.ln();
    let layer_terms: Vec<f64> = forward.log_det.iter().map(|l| -f64::from(l[0])).collect();
    let log_px = log_pz + layer_terms.iter().sum::<f64>();
    Ok(ProbePath { step, positions, log_pz, layer_terms, log_px })
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Arc;

    use candle_core::DType;

    use std::time::{Duration, Instant};

    use super::{
        FlowGeometry, FlowViewRequest, FlowViewResult, FlowViewWorker, Job, LIVE_BUDGET, LIVE_POINTS_PER_LINE,
        LIVE_SAMPLES, N_SAMPLES, POINTS_PER_LINE, StageGrid, geometry, grid_bounds,
    };
    use crate::compute::params::{FlowLayerParams, FlowParams};
    use crate::models::flow::FlowNet;

    fn request(params: &Arc<FlowParams>, data: &Arc<Vec<f32>>, step: u64) -> FlowViewRequest {
        FlowViewRequest {
            params: Arc::clone(params),
            step,
            run: 1,
            data: Arc::clone(data),
            resolution: 64,
            aspect: 1.0,
            focus: 1,
            probe: None,
            live: false,
        }
    }

    /// An affine-coupling-free flow small enough for a test: two affine layers.
    fn small_flow() -> Arc<FlowParams> {
        let layers = vec![
            FlowLayerParams::Affine { shift: vec![0.5, -1.0], log_scale: vec![0.2, -0.3] },
            FlowLayerParams::Affine { shift: vec![-0.2, 0.3], log_scale: vec![-0.1, 0.4] },
        ];
        Arc::new(FlowParams { dim: 2, layers })
    }

    /// Results of `worker` until one is a geometry and `grids` grids have come (or ten seconds pass).
    fn collect(worker: &FlowViewWorker, grids: usize) -> (Option<Arc<FlowGeometry>>, Vec<Arc<StageGrid>>) {
        let (mut geometry, mut got) = (None, Vec::new());
        let deadline = Instant::now() + Duration::from_secs(10);
        while (geometry.is_none() || got.len() < grids) && Instant::now() < deadline {
            for result in worker.drain() {
                match result {
                    FlowViewResult::Geometry(g) => geometry = Some(g),
                    FlowViewResult::Grid(g) => got.push(g),
                    FlowViewResult::Probe(_) => {}
                    FlowViewResult::Error(e) => panic!("{e}"),
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        (geometry, got)
    }

    /// A stage's grid covers its box widened to the plot's shape about the box's centre, and 2 % past that.
    #[test]
    fn a_grid_covers_its_stage_box_widened_to_the_plots_shape() {
        let close = |a: [f32; 4], b: [f32; 4]| a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5);
        // The box widened to the shape, about its centre, then 2 % more each way.
        let widened = |[x0, x1, y0, y1]: [f32; 4]| {
            let (cx, cy) = (f32::midpoint(x0, x1), f32::midpoint(y0, y1));
            let (hx, hy) = ((x1 - x0) / 2.0 * 1.02, (y1 - y0) / 2.0 * 1.02);
            [cx - hx, cx + hx, cy - hy, cy + hy]
        };
        let square = [-1.0, 3.0, 0.0, 4.0];
        assert!(close(grid_bounds(square, 1.0), widened(square)), "a square plot: the box itself");
        assert!(close(grid_bounds(square, 1.5), widened([-2.0, 4.0, 0.0, 4.0])), "a wide plot: wider");
        assert!(close(grid_bounds(square, 0.5), widened([-1.0, 3.0, -2.0, 6.0])), "a tall plot: taller");
        // A box already wider than the plot keeps its width and grows in height, so the whole box stays in view.
        assert!(close(grid_bounds([0.0, 8.0, 0.0, 2.0], 2.0), widened([0.0, 8.0, -1.0, 3.0])));
        assert!(close(grid_bounds(square, 100.0), widened([-7.0, 9.0, 0.0, 4.0])), "held to 4:1 at most");
        assert!(close(grid_bounds(square, f32::NAN), widened(square)), "no shape yet: the box");
        assert!(close(grid_bounds([1.0, 1.0, 0.0, 2.0], 2.0), [1.0, 1.0, 0.0, 2.0]), "an empty box is left alone");
    }

    /// The request's shape widens every stage's grid, and the same model asked for in another shape (the window
    /// resized) gets every grid again.
    #[test]
    fn a_requests_shape_widens_its_grids_and_a_new_shape_computes_them_again() {
        let (params, data) = (small_flow(), Arc::new(vec![0.0, 0.0, 1.0, 0.5, -1.0, 2.0]));
        let worker = FlowViewWorker::spawn(|| {}).unwrap();
        let square = FlowViewRequest { resolution: 16, ..request(&params, &data, 1) };
        worker.request(square.clone());
        let (geometry, grids) = collect(&worker, 3);
        let geometry = geometry.expect("the geometry");
        for grid in &grids {
            let square = grid_bounds(geometry.bounds[grid.stage], 1.0);
            assert_eq!(grid.bounds.map(f32::to_bits), square.map(f32::to_bits), "a square plot's grid");
        }
        worker.request(FlowViewRequest { aspect: 2.0, ..square });
        let (_, wide) = collect(&worker, 3);
        assert_eq!(wide.len(), 3, "every stage's grid again, for the new shape");
        for grid in &wide {
            let [x0, x1, y0, y1] = grid.bounds;
            assert!(((x1 - x0) / (y1 - y0) - 2.0).abs() < 1e-4, "stage {}: {:?}", grid.stage, grid.bounds);
            assert!(x1 - x0 > 2.0 * (geometry.bounds[grid.stage][1] - geometry.bounds[grid.stage][0]));
            let expected = grid_bounds(geometry.bounds[grid.stage], 2.0);
            assert_eq!(grid.bounds.map(f32::to_bits), expected.map(f32::to_bits));
        }
    }

    /// While a run trains, a model's views are the light pass: the first LIVE_SAMPLES samples and data points,
    /// LIVE_POINTS_PER_LINE points a grid line and the stage in focus's grid alone; the same model asked for
    /// with the run paused gets every point and every stage, and the light pass's points are the first of them.
    #[test]
    fn a_training_model_gets_the_light_pass_and_a_paused_one_the_full_pass() {
        let params = small_flow();
        let data: Arc<Vec<f32>> = Arc::new((0..2 * 700).map(|i| ((i * 37) % 101) as f32 / 25.0 - 2.0).collect());
        let worker = FlowViewWorker::spawn(|| {}).expect("the view thread");
        let live = FlowViewRequest { live: true, resolution: 24, focus: 2, ..request(&params, &data, 5) };
        worker.request(live.clone());
        let (light, grids) = collect(&worker, 1);
        let light = light.expect("the light pass's geometry");
        assert_eq!(light.generation[0].len(), LIVE_SAMPLES);
        assert_eq!(light.inference[2].len(), LIVE_SAMPLES);
        assert!(light.grid_lines.iter().flatten().all(|line| line.len() == LIVE_POINTS_PER_LINE));
        assert_eq!(grids.len(), 1, "one grid while training");
        assert_eq!((grids[0].stage, grids[0].resolution), (2, 24), "the stage in focus at the live resolution");
        std::thread::sleep(Duration::from_millis(100));
        assert!(worker.drain().is_empty(), "nothing more for a training model");

        worker.request(FlowViewRequest { live: false, ..live });
        // Every stage at the preview resolution (48 > 24: the plan asks 24 for all three stages).
        let (full, grids) = collect(&worker, 3);
        let full = full.expect("the full pass's geometry");
        assert_eq!(full.generation[0].len(), N_SAMPLES);
        assert_eq!(full.inference[2].len(), 700);
        assert!(full.grid_lines.iter().flatten().all(|line| line.len() == POINTS_PER_LINE));
        let mut stages: Vec<usize> = grids.iter().map(|g| g.stage).collect();
        stages.sort_unstable();
        assert_eq!(stages, vec![0, 1, 2], "every stage once the run pauses");
        for k in 0..=2 {
            assert_eq!(
                full.generation[k][..LIVE_SAMPLES],
                light.generation[k][..],
                "stage {k}: the same first samples"
            );
            assert_eq!(full.inference[k][..LIVE_SAMPLES], light.inference[k][..], "stage {k}: the same first points");
        }
    }

    /// While a run trains, the next model's views wait until the last model's took at most LIVE_BUDGET of the
    /// time since they began: the second geometry comes no sooner than the first's seconds / LIVE_BUDGET after
    /// the first request (a lower bound the budget guarantees, whatever the machine's speed).
    #[test]
    fn a_training_runs_views_keep_within_their_budget() {
        let params = small_flow();
        let data: Arc<Vec<f32>> = Arc::new((0..2 * 400).map(|i| ((i * 13) % 97) as f32 / 24.0 - 2.0).collect());
        let worker = FlowViewWorker::spawn(|| {}).expect("the view thread");
        let asked = Instant::now();
        worker.request(FlowViewRequest { live: true, ..request(&params, &data, 1) });
        let (first, _) = collect(&worker, 1);
        let first = first.expect("the first model's geometry");
        let newer = Arc::new((*params).clone());
        worker.request(FlowViewRequest { live: true, ..request(&newer, &data, 2) });
        let (second, _) = collect(&worker, 1);
        let arrived = asked.elapsed().as_secs_f64();
        assert_eq!(second.expect("the second model's geometry").step, 2);
        assert!(
            arrived >= first.seconds / LIVE_BUDGET,
            "the second model's views came {arrived:.4} s after the first was asked; its views took {:.4} s",
            first.seconds
        );
    }

    /// A run that ends while a training model's request waits out the budget: the final model's full pass is what
    /// stays on screen, not the waiting model's light one taken after it (seen in the window: 250 points and a
    /// 24 x 24 grid after the run had finished).
    #[test]
    fn the_final_models_full_pass_replaces_a_waiting_training_model() {
        let layers: Vec<FlowLayerParams> = (0..12)
            .map(|k| FlowLayerParams::Affine { shift: vec![0.1 * k as f32, -0.1], log_scale: vec![0.05, -0.02] })
            .collect();
        let params = Arc::new(FlowParams { dim: 2, layers });
        let data: Arc<Vec<f32>> = Arc::new((0..2 * 900).map(|i| ((i * 29) % 89) as f32 / 22.0 - 2.0).collect());
        for _ in 0..5 {
            let worker = FlowViewWorker::spawn(|| {}).expect("the view thread");
            worker.request(FlowViewRequest { live: true, ..request(&params, &data, 1) });
            let (first, _) = collect(&worker, 1);
            assert!(first.is_some());
            // The next training model comes while the views rest; the run ends at once with the final model.
            let training = Arc::new((*params).clone());
            worker.request(FlowViewRequest { live: true, ..request(&training, &data, 2) });
            // Long enough for the view thread to set the training model aside, short of the rest's end.
            std::thread::sleep(Duration::from_millis(1));
            let last = Arc::new((*params).clone());
            worker.request(FlowViewRequest { live: false, ..request(&last, &data, 3) });
            let mut shown = None;
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                for result in worker.drain() {
                    if let FlowViewResult::Geometry(g) = result {
                        shown = Some(g);
                    }
                }
                if shown.as_ref().is_some_and(|g| g.step == 3) {
                    // Anything still to come would be the stale model's.
                    std::thread::sleep(Duration::from_millis(300));
                    for result in worker.drain() {
                        if let FlowViewResult::Geometry(g) = result {
                            shown = Some(g);
                        }
                    }
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let shown = shown.expect("a geometry");
            assert_eq!(shown.step, 3, "the final model stays on screen");
            assert_eq!(shown.generation[0].len(), N_SAMPLES, "with every point");
        }
    }

    /// While training publishes models faster than the view finishes them, a newer model waits until the current
    /// one's points and first grid are out; a request for the same model (a new focus, a picked point) never
    /// waits, nor does anything once the job is done or failed.
    #[test]
    fn a_newer_model_waits_until_the_current_one_is_on_screen() {
        let layer = FlowLayerParams::Affine { shift: vec![0.5, -1.0], log_scale: vec![0.2, -0.3] };
        let params = Arc::new(FlowParams { dim: 2, layers: vec![layer] });
        let data = Arc::new(vec![0.0f32, 1.0, -1.0, 0.5]);
        let net = FlowNet::from_params(&params, DType::F32).expect("flow");
        let first = request(&params, &data, 10);
        let mut job = Job {
            request: first.clone(),
            net,
            geometry: None,
            probe_pending: false,
            grids_pending: VecDeque::from([(1, 48), (0, 48), (1, 64)]),
            grids_done: 0,
            failed: false,
            live_work: (0.0, None),
        };
        let newer = request(&Arc::new((*params).clone()), &data, 11);
        let same_model_new_focus = FlowViewRequest { focus: 0, probe: Some((1, [0.0, 0.0])), ..first.clone() };
        assert!(!job.may_take(&newer), "nothing on screen yet");
        assert!(job.may_take(&same_model_new_focus));
        job.geometry = Some(Arc::new(geometry(&job.net, &job.request).expect("geometry")));
        assert!(!job.may_take(&newer), "points but no grid yet");
        job.grids_pending.pop_front();
        job.grids_done = 1;
        assert!(job.may_take(&newer), "points and the stage in focus are on screen");
        job.grids_done = 0;
        job.failed = true;
        assert!(job.may_take(&newer) && job.idle(), "a failed model holds nothing up");
    }
}
