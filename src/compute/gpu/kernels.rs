//! [`GpuBackend`]: [`ComputeBackend`] on the wgpu kernels in `shaders/`. Weights are uploaded once per
//! [`WeightsKey`]; activations and scratch buffers come from a pool reused between calls; pipelines are made
//! once in [`ComputeContext::new`]. Every call has a `submit_*` form that returns a [`GpuPending`] at once
//! (poll it with [`GpuPending::try_take`] from the UI thread), and a blocking trait method for the CLI and
//! tests. MAF layers run on the CPU reference (their forward pass is sequential in the coordinates).

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use crate::compute::Activation;
use crate::compute::CandleBackend;
use crate::compute::backend::{
    ComputeBackend, ComputeError, MatmulShape, MeanFieldParams, Noise, Rows, WeightsKey, check_flow, check_mlp,
    check_rows,
};
use crate::compute::gpu::context::{ComputeContext, Kernel, PARAMS_BYTES};
use crate::compute::noise;
use crate::compute::params::{FlowLayerParams, FlowParams, MlpParams};

const STORAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_DST).union(wgpu::BufferUsages::COPY_SRC);
const STAGING: wgpu::BufferUsages = wgpu::BufferUsages::MAP_READ.union(wgpu::BufferUsages::COPY_DST);
const UNIFORM: wgpu::BufferUsages = wgpu::BufferUsages::UNIFORM.union(wgpu::BufferUsages::COPY_DST);
/// Matmul output block edge (`TILE` in `shaders/matmul.wgsl`).
const TILE: usize = 64;
/// Threads per workgroup of the row-wise kernels.
const ROW_GROUP: usize = 256;
/// Weight sets kept on the GPU at once.
const CACHE_CAPACITY: usize = 32;

/// Activation code of the WGSL `activate`.
fn activation_code(a: Activation) -> u32 {
    match a {
        Activation::Identity => 0,
        Activation::Relu => 1,
        Activation::LeakyRelu => 2,
        Activation::Sigmoid => 3,
        Activation::Tanh => 4,
        Activation::Softplus => 5,
    }
}

/// Buffers reused between calls, by (size, usage). Sizes are rounded up to a power of two so that a buffer
/// serves nearby sizes too.
#[derive(Debug, Default)]
struct BufferPool {
    free: HashMap<(u64, wgpu::BufferUsages), Vec<wgpu::Buffer>>,
}

type SharedPool = Arc<Mutex<BufferPool>>;

fn give_back(pool: &SharedPool, buffers: Vec<wgpu::Buffer>) {
    let mut pool = pool.lock().unwrap_or_else(PoisonError::into_inner);
    for buffer in buffers {
        let list = pool.free.entry((buffer.size(), buffer.usage())).or_default();
        if list.len() < 8 {
            list.push(buffer);
        }
    }
}

/// One step of a request.
enum Step {
    /// Zero a buffer.
    Clear(wgpu::Buffer),
    /// Run a kernel: its 16 parameters, its storage buffers in binding order, its workgroup counts.
    Dispatch { kernel: Kernel, params: [u32; 16], buffers: Vec<wgpu::Buffer>, groups: [u32; 3] },
}

/// A request being recorded: steps, and the pooled buffers to hand back when it is done.
#[derive(Default)]
struct Plan {
    steps: Vec<Step>,
    borrowed: Vec<wgpu::Buffer>,
}

/// A submitted request whose results are not read yet. Poll it with [`Self::try_take`] (never blocks) or
/// wait with [`Self::wait`].
pub struct GpuPending<T> {
    state: PendingState,
    finish: fn(Vec<Vec<f32>>) -> T,
}

enum PendingState {
    Ready(Result<Vec<Vec<f32>>, ComputeError>),
    InFlight {
        device: wgpu::Device,
        staging: wgpu::Buffer,
        lengths: Vec<usize>,
        done: mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>,
        pool: SharedPool,
        borrowed: Vec<wgpu::Buffer>,
    },
    Taken,
}

impl<T> GpuPending<T> {
    fn ready(result: Result<Vec<Vec<f32>>, ComputeError>, finish: fn(Vec<Vec<f32>>) -> T) -> Self {
        Self { state: PendingState::Ready(result), finish }
    }

    /// The result if the GPU has finished, without blocking; `None` while it is still running, and after the
    /// result has been taken once.
    pub fn try_take(&mut self) -> Option<Result<T, ComputeError>> {
        if let PendingState::InFlight { device, done, .. } = &self.state {
            if let Err(e) = device.poll(wgpu::PollType::Poll) {
                self.state = PendingState::Ready(Err(ComputeError::Device(e.to_string())));
            } else {
                match done.try_recv() {
                    Err(mpsc::TryRecvError::Empty) => return None,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        self.state =
                            PendingState::Ready(Err(ComputeError::Readback("the map callback was dropped".to_owned())));
                    }
                    Ok(Err(e)) => self.state = PendingState::Ready(Err(ComputeError::Readback(e.to_string()))),
                    Ok(Ok(())) => self.read_mapped(),
                }
            }
        }
        match std::mem::replace(&mut self.state, PendingState::Taken) {
            PendingState::Ready(result) => Some(result.map(self.finish)),
            other => {
                self.state = other;
                None
            }
        }
    }

    fn read_mapped(&mut self) {
        let PendingState::InFlight { staging, lengths, pool, borrowed, .. } =
            std::mem::replace(&mut self.state, PendingState::Taken)
        else {
            return;
        };
        let mapped_bytes = 4 * lengths.iter().sum::<usize>() as u64;
        let result = match staging.slice(..mapped_bytes).get_mapped_range() {
            Ok(view) => {
                let all: Vec<f32> = bytemuck::pod_collect_to_vec(&view);
                drop(view);
                let mut parts = Vec::with_capacity(lengths.len());
                let mut start = 0;
                for len in lengths {
                    parts.push(all.get(start..start + len).unwrap_or(&[]).to_vec());
                    start += len;
                }
                Ok(parts)
            }
            Err(e) => Err(ComputeError::Readback(e.to_string())),
        };
        staging.unmap();
        let mut buffers = borrowed;
        buffers.push(staging);
        give_back(&pool, buffers);
        self.state = PendingState::Ready(result);
    }

    /// Blocks until the GPU has finished and returns the result.
    pub fn wait(mut self) -> Result<T, ComputeError> {
        loop {
            if let PendingState::InFlight { device, .. } = &self.state
                && let Err(e) = device.poll(wgpu::PollType::wait_indefinitely())
            {
                return Err(ComputeError::Device(e.to_string()));
            }
            if let Some(result) = self.try_take() {
                return result;
            }
            if matches!(self.state, PendingState::Taken) {
                return Err(ComputeError::Readback("the result was already taken".to_owned()));
            }
        }
    }
}

/// A flow's result: the points `[n_rows, dim]` and the forward log-det `[n_rows]`.
pub type Points = (Vec<f32>, Vec<f32>);

/// A dense layer's weights on the GPU.
struct DenseGpu {
    weights: wgpu::Buffer,
    biases: wgpu::Buffer,
    n_in: usize,
    n_out: usize,
    activation: Activation,
}

enum FlowLayerGpu {
    Affine { shift_scale: wgpu::Buffer },
    Coupling { mask: wgpu::Buffer, scale_net: Vec<DenseGpu>, shift_net: Vec<DenseGpu> },
    Maf,
}

struct MeanFieldGpu {
    mean: wgpu::Buffer,
    sd: wgpu::Buffer,
    n_in: usize,
    n_out: usize,
    activation: Activation,
}

enum Uploaded {
    Mlp(Vec<DenseGpu>),
    Flow(Vec<FlowLayerGpu>),
    MeanField(Vec<MeanFieldGpu>),
}

/// The wgpu implementation of [`ComputeBackend`].
pub struct GpuBackend {
    ctx: ComputeContext,
    pool: SharedPool,
    cache: HashMap<u64, (u64, Arc<Uploaded>)>,
    /// Bound where a kernel does not read a binding.
    dummy_read: wgpu::Buffer,
    dummy_write: wgpu::Buffer,
    cpu: CandleBackend,
    /// Largest storage buffer this back end makes, bytes (at most the adapter's binding limit).
    storage_cap: u64,
}

impl GpuBackend {
    /// Creates the context (adapter, device, pipelines). Fails when there is no adapter or device; fall back to
    /// [`CandleBackend`] then.
    pub fn new() -> Result<Self, ComputeError> {
        Ok(Self::with_context(ComputeContext::new()?))
    }

    /// A back end on an existing context.
    #[must_use]
    pub fn with_context(ctx: ComputeContext) -> Self {
        let dummy = |label| {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: 16,
                usage: STORAGE,
                mapped_at_creation: false,
            })
        };
        let dummy_read = dummy("dummy read");
        let dummy_write = dummy("dummy write");
        let storage_cap = ctx.limits.max_storage_buffer_binding_size.min(ctx.limits.max_buffer_size);
        Self {
            storage_cap,
            ctx,
            pool: SharedPool::default(),
            cache: HashMap::new(),
            dummy_read,
            dummy_write,
            cpu: CandleBackend::new(),
        }
    }

    /// The context: adapter description and limits.
    #[must_use]
    pub fn context(&self) -> &ComputeContext {
        &self.ctx
    }

    /// Caps the largest storage buffer at `bytes` (never above the adapter's limit): bounds GPU memory, and
    /// lets tests reach the row-block path of [`Self::submit_matmul`] with small inputs.
    #[must_use]
    pub fn with_storage_cap(mut self, bytes: u64) -> Self {
        self.storage_cap =
            bytes.clamp(1024, self.ctx.limits.max_storage_buffer_binding_size.min(self.ctx.limits.max_buffer_size));
        self
    }

    fn buffer_limit(&self) -> u64 {
        self.storage_cap
    }

    /// A pooled buffer of at least `bytes`; recorded in `plan` to be handed back after the request.
    fn take(&self, plan: &mut Plan, bytes: u64, usage: wgpu::BufferUsages) -> Result<wgpu::Buffer, ComputeError> {
        let exact = bytes.max(16).next_multiple_of(16);
        // Storage buffers are bound whole, so they must fit a binding; staging buffers only a buffer.
        let limit = if usage.contains(wgpu::BufferUsages::STORAGE) {
            self.buffer_limit()
        } else {
            self.ctx.limits.max_buffer_size
        };
        if exact > limit {
            return Err(ComputeError::TooLarge { bytes, limit });
        }
        let size = exact.next_power_of_two().min(limit.max(exact) / 16 * 16).max(exact);
        let pooled =
            self.pool.lock().unwrap_or_else(PoisonError::into_inner).free.get_mut(&(size, usage)).and_then(Vec::pop);
        let buffer = pooled.unwrap_or_else(|| {
            self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("pooled"),
                size,
                usage,
                mapped_at_creation: false,
            })
        });
        plan.borrowed.push(buffer.clone());
        Ok(buffer)
    }

    /// A pooled storage buffer holding `values`.
    fn input(&self, plan: &mut Plan, values: &[f32]) -> Result<wgpu::Buffer, ComputeError> {
        let buffer = self.take(plan, 4 * values.len() as u64, STORAGE)?;
        if !values.is_empty() {
            self.ctx.queue.write_buffer(&buffer, 0, bytemuck::cast_slice(values));
        }
        Ok(buffer)
    }

    /// A dedicated (cached) storage buffer holding `values`.
    fn upload(&self, values: &[f32]) -> Result<wgpu::Buffer, ComputeError> {
        let bytes = (4 * values.len() as u64).max(16);
        if bytes > self.buffer_limit() {
            return Err(ComputeError::TooLarge { bytes, limit: self.buffer_limit() });
        }
        let buffer = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("weights"),
            size: bytes.next_multiple_of(16),
            usage: STORAGE,
            mapped_at_creation: false,
        });
        if !values.is_empty() {
            self.ctx.queue.write_buffer(&buffer, 0, bytemuck::cast_slice(values));
        }
        Ok(buffer)
    }

    fn upload_mlp(&self, params: &MlpParams) -> Result<Vec<DenseGpu>, ComputeError> {
        params
            .layers
            .iter()
            .map(|l| {
                Ok(DenseGpu {
                    weights: self.upload(&l.weights)?,
                    biases: self.upload(&l.biases)?,
                    n_in: l.n_in,
                    n_out: l.n_out,
                    activation: l.activation,
                })
            })
            .collect()
    }

    /// The uploaded weights for `key`, uploading them with `make` when the cache has another version.
    fn cached(
        &mut self,
        key: WeightsKey,
        make: impl FnOnce(&Self) -> Result<Uploaded, ComputeError>,
    ) -> Result<Arc<Uploaded>, ComputeError> {
        if let Some((version, uploaded)) = self.cache.get(&key.id)
            && *version == key.version
            && !key.is_transient()
        {
            return Ok(Arc::clone(uploaded));
        }
        let uploaded = Arc::new(make(self)?);
        if !key.is_transient() {
            if self.cache.len() >= CACHE_CAPACITY
                && !self.cache.contains_key(&key.id)
                && let Some(&evict) = self.cache.keys().next()
            {
                self.cache.remove(&evict);
            }
            self.cache.insert(key.id, (key.version, Arc::clone(&uploaded)));
        }
        Ok(uploaded)
    }

    /// Workgroups for `n` rows of a row-wise kernel: `[x, y, 1]` and the row width `x * 256`.
    fn row_groups(&self, n: usize) -> ([u32; 3], u32) {
        let groups = n.div_ceil(ROW_GROUP).max(1);
        let max = self.ctx.limits.max_compute_workgroups_per_dimension.max(1) as usize;
        let x = groups.min(max);
        let y = groups.div_ceil(x);
        ([x as u32, y as u32, 1], (x * ROW_GROUP) as u32)
    }

    /// Records `C[z] = act(op(A[z]) · op(B[z]) + bias[z])` for `z < batch`.
    #[allow(clippy::too_many_arguments)]
    fn record_matmul(
        &self,
        plan: &mut Plan,
        (a, a_offset, a_stride): (&wgpu::Buffer, usize, usize),
        (b, b_offset, b_stride): (&wgpu::Buffer, usize, usize),
        bias: Option<(&wgpu::Buffer, usize, usize)>,
        c: &wgpu::Buffer,
        shape: MatmulShape,
        activation: Activation,
        batch: usize,
    ) -> Result<(), ComputeError> {
        let MatmulShape { m, k, n, trans_a, trans_b } = shape;
        if m == 0 || n == 0 || batch == 0 {
            return Ok(());
        }
        let max = self.ctx.limits.max_compute_workgroups_per_dimension as usize;
        let groups = [n.div_ceil(TILE), m.div_ceil(TILE), batch];
        if groups.iter().any(|&g| g > max) {
            return Err(ComputeError::Shape(format!(
                "matmul {m}x{k}·{k}x{n} x{batch} needs more than {max} workgroups in one dimension"
            )));
        }
        let c_stride = m * n;
        let (bias_buffer, bias_offset, bias_stride) = bias.unwrap_or((&self.dummy_read, 0, 0));
        let u = |v: usize| v as u32;
        let params = [
            u(m),
            u(n),
            u(k),
            u32::from(trans_a),
            u32::from(trans_b),
            activation_code(activation),
            u32::from(bias.is_some()),
            u(a_offset),
            u(b_offset),
            u(bias_offset),
            0,
            u(a_stride),
            u(b_stride),
            u(bias_stride),
            u(c_stride),
            0,
        ];
        plan.steps.push(Step::Dispatch {
            kernel: Kernel::Matmul,
            params,
            buffers: vec![a.clone(), b.clone(), bias_buffer.clone(), c.clone()],
            groups: [u(groups[0]), u(groups[1]), u(groups[2])],
        });
        Ok(())
    }

    /// Records the MLP on `x` `[n, n_in]` (or `[batch, n, n_in]`); returns the output buffer.
    fn record_mlp(
        &self,
        plan: &mut Plan,
        layers: &[DenseGpu],
        x: &wgpu::Buffer,
        n_rows: usize,
    ) -> Result<wgpu::Buffer, ComputeError> {
        let mut h = x.clone();
        for layer in layers {
            let out = self.take(plan, 4 * (n_rows * layer.n_out) as u64, STORAGE)?; // [n, n_out]
            self.record_matmul(
                plan,
                (&h, 0, 0),
                (&layer.weights, 0, 0),
                Some((&layer.biases, 0, 0)),
                &out,
                MatmulShape::new(n_rows, layer.n_in, layer.n_out),
                layer.activation,
                1,
            )?;
            h = out;
        }
        Ok(h)
    }

    /// Records a row-wise flow kernel.
    fn record_rows(
        &self,
        plan: &mut Plan,
        kernel: Kernel,
        n_rows: usize,
        dim: usize,
        inverse: bool,
        buffers: [&wgpu::Buffer; 6],
    ) {
        if n_rows == 0 {
            return;
        }
        let (groups, row_width) = self.row_groups(n_rows);
        let mut params = [0u32; 16];
        params[0] = n_rows as u32;
        params[1] = dim as u32;
        params[2] = u32::from(inverse);
        params[3] = row_width;
        plan.steps.push(Step::Dispatch { kernel, params, buffers: buffers.into_iter().cloned().collect(), groups });
    }

    /// Encodes and submits `plan`, copying `outputs` (buffer, float count) into one staging buffer.
    fn submit<T>(
        &self,
        mut plan: Plan,
        outputs: &[(&wgpu::Buffer, usize)],
        finish: fn(Vec<Vec<f32>>) -> T,
    ) -> Result<GpuPending<T>, ComputeError> {
        let lengths: Vec<usize> = outputs.iter().map(|(_, len)| *len).collect();
        let total: usize = lengths.iter().sum();
        let dispatches = plan.steps.iter().filter(|s| matches!(s, Step::Dispatch { .. })).count();
        if total == 0 {
            give_back(&self.pool, plan.borrowed);
            return Ok(GpuPending::ready(Ok(lengths.iter().map(|_| Vec::new()).collect()), finish));
        }
        let align = u64::from(self.ctx.limits.min_uniform_buffer_offset_alignment).max(PARAMS_BYTES);
        let uniform = self.take(&mut plan, align * dispatches.max(1) as u64, UNIFORM)?;
        let mut bytes = vec![0u8; (align as usize) * dispatches];
        let mut at = 0;
        for step in &plan.steps {
            if let Step::Dispatch { params, .. } = step {
                bytes[at..at + PARAMS_BYTES as usize].copy_from_slice(bytemuck::cast_slice(params));
                at += align as usize;
            }
        }
        if !bytes.is_empty() {
            self.ctx.queue.write_buffer(&uniform, 0, &bytes);
        }
        // Not in `plan.borrowed`: the pending request hands it back after unmapping.
        let staging = self.take(&mut Plan::default(), 4 * total as u64, STAGING)?;

        let device = &self.ctx.device;
        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("compute request") });
        let mut index = 0u64;
        for step in &plan.steps {
            match step {
                Step::Clear(buffer) => encoder.clear_buffer(buffer, 0, None),
                Step::Dispatch { kernel, buffers, groups, .. } => {
                    let mut entries = vec![wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &uniform,
                            offset: 0,
                            size: wgpu::BufferSize::new(PARAMS_BYTES),
                        }),
                    }];
                    for (i, buffer) in buffers.iter().enumerate() {
                        entries
                            .push(wgpu::BindGroupEntry { binding: 1 + i as u32, resource: buffer.as_entire_binding() });
                    }
                    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: None,
                        layout: self.ctx.bind_layout(*kernel),
                        entries: &entries,
                    });
                    let mut pass = encoder
                        .begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
                    pass.set_pipeline(self.ctx.pipeline(*kernel));
                    pass.set_bind_group(0, &bind_group, &[(index * align) as u32]);
                    pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                    index += 1;
                }
            }
        }
        let mut offset = 0u64;
        for (buffer, len) in outputs {
            let bytes = 4 * *len as u64;
            if bytes > 0 {
                encoder.copy_buffer_to_buffer(buffer, 0, &staging, offset, bytes);
            }
            offset += bytes;
        }
        self.ctx.queue.submit([encoder.finish()]);
        let (tx, done) = mpsc::channel();
        staging.slice(..4 * total as u64).map_async(wgpu::MapMode::Read, move |result| {
            // The receiver may be gone if the request was dropped; nothing to do then.
            let _ = tx.send(result);
        });
        Ok(GpuPending {
            state: PendingState::InFlight {
                device: device.clone(),
                staging,
                lengths,
                done,
                pool: Arc::clone(&self.pool),
                borrowed: plan.borrowed,
            },
            finish,
        })
    }

    /// Submits `C = op(A) · op(B)` (see [`MatmulShape`]); the result is `[m, n]`. When `A` or `C` exceeds
    /// the adapter's storage-binding limit (and `A` is not transposed), the product runs in row blocks.
    pub fn submit_matmul(
        &mut self,
        a: &[f32],
        b: &[f32],
        shape: MatmulShape,
    ) -> Result<GpuPending<Vec<f32>>, ComputeError> {
        shape.check(a, b)?;
        let MatmulShape { m, k, n, trans_a, .. } = shape;
        let limit = self.buffer_limit();
        let too_big = 4 * (m * k.max(n)) as u64 > limit;
        let mut plan = Plan::default();
        let b_buf = self.input(&mut plan, b)?;
        if !too_big || trans_a {
            let a_buf = self.input(&mut plan, a)?;
            let c = self.take(&mut plan, 4 * (m * n) as u64, STORAGE)?;
            self.record_matmul(&mut plan, (&a_buf, 0, 0), (&b_buf, 0, 0), None, &c, shape, Activation::Identity, 1)?;
            return self.submit(plan, &[(&c, m * n)], first);
        }
        // A or C is over the storage-binding limit: split both by rows into blocks that fit (a multiple of
        // the tile height), one dispatch each; the readback joins the blocks.
        let row_bytes = 4 * k.max(n) as u64;
        let rows_per_block = (limit / row_bytes) as usize / TILE * TILE;
        if rows_per_block == 0 {
            return Err(ComputeError::TooLarge { bytes: row_bytes * TILE as u64, limit });
        }
        let mut blocks = Vec::new();
        for start in (0..m).step_by(rows_per_block) {
            let rows = rows_per_block.min(m - start);
            let a_block = self.input(&mut plan, a.get(start * k..(start + rows) * k).unwrap_or(&[]))?; // [rows, k]
            let c_block = self.take(&mut plan, 4 * (rows * n) as u64, STORAGE)?; // [rows, n]
            let block_shape = MatmulShape { m: rows, ..shape };
            self.record_matmul(
                &mut plan,
                (&a_block, 0, 0),
                (&b_buf, 0, 0),
                None,
                &c_block,
                block_shape,
                Activation::Identity,
                1,
            )?;
            blocks.push((c_block, rows * n));
        }
        let outputs: Vec<(&wgpu::Buffer, usize)> = blocks.iter().map(|(buffer, len)| (buffer, *len)).collect();
        self.submit(plan, &outputs, join)
    }

    /// Submits an MLP forward pass (see [`ComputeBackend::mlp_forward`]).
    pub fn submit_mlp_forward(&mut self, rows: Rows<'_, MlpParams>) -> Result<GpuPending<Vec<f32>>, ComputeError> {
        let Rows { params, key, x, n_rows } = rows;
        check_mlp(params)?;
        check_rows(x, n_rows, params.n_in(), "mlp input")?;
        let uploaded = self.cached(key, |s| Ok(Uploaded::Mlp(s.upload_mlp(params)?)))?;
        let Uploaded::Mlp(layers) = uploaded.as_ref() else {
            return Err(ComputeError::Shape(format!("weights key {} holds another kind of network", key.id)));
        };
        let mut plan = Plan::default();
        let x_buf = self.input(&mut plan, x)?;
        let out = self.record_mlp(&mut plan, layers, &x_buf, n_rows)?;
        self.submit(plan, &[(&out, n_rows * params.n_out())], first)
    }

    /// Submits a flow pass in either direction over `stage` layers (see the trait's `flow_forward` and
    /// `flow_inverse`); the result is (points, log_det). A flow with MAF layers runs on the CPU reference.
    pub fn submit_flow(
        &mut self,
        rows: Rows<'_, FlowParams>,
        stage: usize,
        inverse: bool,
    ) -> Result<GpuPending<Points>, ComputeError> {
        let Rows { params, key, x, n_rows } = rows;
        check_flow(params, stage)?;
        check_rows(x, n_rows, params.dim, "flow input")?;
        if params.layers.iter().any(|l| matches!(l, FlowLayerParams::Maf { .. })) {
            let result = if inverse { self.cpu.flow_inverse(rows, stage) } else { self.cpu.flow_forward(rows, stage) };
            return Ok(GpuPending::ready(result.map(|(a, b)| vec![a, b]), pair));
        }
        let uploaded = self.cached(key, |s| {
            let layers = params
                .layers
                .iter()
                .map(|layer| {
                    Ok(match layer {
                        FlowLayerParams::Affine { shift, log_scale } => {
                            let mut packed = shift.clone();
                            packed.extend_from_slice(log_scale);
                            FlowLayerGpu::Affine { shift_scale: s.upload(&packed)? }
                        }
                        FlowLayerParams::Coupling { mask, scale_net, shift_net } => FlowLayerGpu::Coupling {
                            mask: s.upload(mask)?,
                            scale_net: s.upload_mlp(scale_net)?,
                            shift_net: s.upload_mlp(shift_net)?,
                        },
                        FlowLayerParams::Maf { .. } => FlowLayerGpu::Maf,
                    })
                })
                .collect::<Result<Vec<_>, ComputeError>>()?;
            Ok(Uploaded::Flow(layers))
        })?;
        let Uploaded::Flow(layers) = uploaded.as_ref() else {
            return Err(ComputeError::Shape(format!("weights key {} holds another kind of network", key.id)));
        };
        let dim = params.dim;
        let mut plan = Plan::default();
        let mut u = self.input(&mut plan, x)?; // [n, dim]
        let log_det = self.take(&mut plan, 4 * n_rows as u64, STORAGE)?; // [n]
        plan.steps.push(Step::Clear(log_det.clone()));
        let order: Vec<&FlowLayerGpu> =
            if inverse { layers[..stage].iter().rev().collect() } else { layers[..stage].iter().collect() };
        let size = 4 * (n_rows * dim) as u64;
        for layer in order {
            let out = self.take(&mut plan, size, STORAGE)?; // [n, dim]
            match layer {
                FlowLayerGpu::Affine { shift_scale } => {
                    self.record_rows(
                        &mut plan,
                        Kernel::FlowAffine,
                        n_rows,
                        dim,
                        inverse,
                        [&u, shift_scale, &self.dummy_read, &self.dummy_read, &out, &log_det],
                    );
                }
                FlowLayerGpu::Coupling { mask, scale_net, shift_net } => {
                    let conditioner = self.take(&mut plan, size, STORAGE)?; // [n, dim]
                    self.record_rows(
                        &mut plan,
                        Kernel::FlowMask,
                        n_rows,
                        dim,
                        inverse,
                        [&u, mask, &self.dummy_read, &self.dummy_read, &conditioner, &self.dummy_write],
                    );
                    let s = self.record_mlp(&mut plan, scale_net, &conditioner, n_rows)?; // [n, dim]
                    let t = self.record_mlp(&mut plan, shift_net, &conditioner, n_rows)?; // [n, dim]
                    self.record_rows(
                        &mut plan,
                        Kernel::FlowCoupling,
                        n_rows,
                        dim,
                        inverse,
                        [&u, mask, &s, &t, &out, &log_det],
                    );
                }
                FlowLayerGpu::Maf => return Err(ComputeError::Shape("MAF layer on the GPU path".to_owned())),
            }
            u = out;
        }
        self.submit(plan, &[(&u, n_rows * dim), (&log_det, n_rows)], pair)
    }

    /// Submits the per-row standard normal log-density of `z` `[n_rows, dim]`.
    pub fn submit_std_normal_log_density(
        &mut self,
        z: &[f32],
        n_rows: usize,
        dim: usize,
    ) -> Result<GpuPending<Vec<f32>>, ComputeError> {
        check_rows(z, n_rows, dim, "log-density input")?;
        let mut plan = Plan::default();
        let z_buf = self.input(&mut plan, z)?;
        let out = self.take(&mut plan, 4 * n_rows as u64, STORAGE)?;
        self.record_rows(
            &mut plan,
            Kernel::LogNormal,
            n_rows,
            dim,
            false,
            [&z_buf, &self.dummy_read, &self.dummy_read, &self.dummy_read, &out, &self.dummy_write],
        );
        self.submit(plan, &[(&out, n_rows)], first)
    }

    /// Submits the Bayesian network's predictive samples (see [`ComputeBackend::bnn_predictive`]):
    /// `[n_samples, n_rows, n_out]`. The weights of all samples are drawn (or copied from `noise`) on the GPU
    /// by one kernel per layer, then one batched matmul per layer runs every sample at once.
    pub fn submit_bnn_predictive(
        &mut self,
        rows: Rows<'_, MeanFieldParams>,
        n_samples: usize,
        noise: Noise<'_>,
    ) -> Result<GpuPending<Vec<f32>>, ComputeError> {
        let Rows { params, key, x, n_rows } = rows;
        params.check_predictive(x, n_rows, n_samples, noise)?;
        let per_sample = params.noise_per_sample();
        if n_samples > self.ctx.limits.max_compute_workgroups_per_dimension as usize {
            return Err(ComputeError::Shape(format!("{n_samples} weight samples exceed the workgroup limit")));
        }
        let uploaded = self.cached(key, |s| {
            let layers = params
                .layers
                .iter()
                .map(|l| {
                    let (mean, sd) = l.packed();
                    Ok(MeanFieldGpu {
                        mean: s.upload(&mean)?,
                        sd: s.upload(&sd)?,
                        n_in: l.n_in,
                        n_out: l.n_out,
                        activation: l.activation,
                    })
                })
                .collect::<Result<Vec<_>, ComputeError>>()?;
            Ok(Uploaded::MeanField(layers))
        })?;
        let Uploaded::MeanField(layers) = uploaded.as_ref() else {
            return Err(ComputeError::Shape(format!("weights key {} holds another kind of network", key.id)));
        };
        let mut plan = Plan::default();
        let mut h = self.input(&mut plan, x)?; // [n, n_in], shared by all samples
        let mut h_stride = 0;
        let mut offset = 0;
        for (index, layer) in layers.iter().enumerate() {
            let n_params = layer.n_in * layer.n_out + layer.n_out;
            let total = n_samples * n_params;
            let sampled = self.take(&mut plan, 4 * total as u64, STORAGE)?; // [S, n_params]
            let (eps, use_uploaded, stream) = match noise {
                Noise::Seeded(seed) => (self.dummy_read.clone(), 0, noise::stream_key(seed, index as u32)),
                Noise::Uploaded(all) => {
                    let mut packed = Vec::with_capacity(total);
                    for s in 0..n_samples {
                        let start = s * per_sample + offset;
                        packed.extend_from_slice(all.get(start..start + n_params).unwrap_or(&[]));
                    }
                    (self.input(&mut plan, &packed)?, 1, 0)
                }
            };
            if total > 0 {
                let (groups, row_width) = self.row_groups(total);
                let mut p = [0u32; 16];
                p[0] = n_params as u32;
                p[1] = n_samples as u32;
                p[2] = stream;
                p[3] = use_uploaded;
                p[4] = row_width;
                plan.steps.push(Step::Dispatch {
                    kernel: Kernel::SampleWeights,
                    params: p,
                    buffers: vec![layer.mean.clone(), layer.sd.clone(), eps, sampled.clone()],
                    groups,
                });
            }
            let out = self.take(&mut plan, 4 * (n_samples * n_rows * layer.n_out) as u64, STORAGE)?; // [S, n, n_out]
            let w_len = layer.n_in * layer.n_out;
            self.record_matmul(
                &mut plan,
                (&h, 0, h_stride),
                (&sampled, 0, n_params),
                Some((&sampled, w_len, n_params)),
                &out,
                MatmulShape::new(n_rows, layer.n_in, layer.n_out),
                layer.activation,
                n_samples,
            )?;
            h = out;
            h_stride = n_rows * layer.n_out;
            offset += n_params;
        }
        let len = n_samples * n_rows * params.n_out();
        self.submit(plan, &[(&h, len)], first)
    }
}

fn first(mut parts: Vec<Vec<f32>>) -> Vec<f32> {
    parts.swap_remove(0)
}

fn join(parts: Vec<Vec<f32>>) -> Vec<f32> {
    parts.into_iter().flatten().collect()
}

fn pair(mut parts: Vec<Vec<f32>>) -> (Vec<f32>, Vec<f32>) {
    let second = parts.pop().unwrap_or_default();
    let first = parts.pop().unwrap_or_default();
    (first, second)
}

impl ComputeBackend for GpuBackend {
    fn name(&self) -> String {
        format!("wgpu: {} ({})", self.ctx.adapter.name, self.ctx.adapter.device_type)
    }

    fn matmul(&mut self, a: &[f32], b: &[f32], shape: MatmulShape) -> Result<Vec<f32>, ComputeError> {
        self.submit_matmul(a, b, shape)?.wait()
    }

    fn mlp_forward(&mut self, rows: Rows<'_, MlpParams>) -> Result<Vec<f32>, ComputeError> {
        self.submit_mlp_forward(rows)?.wait()
    }

    fn flow_forward(
        &mut self,
        rows: Rows<'_, FlowParams>,
        up_to_stage: usize,
    ) -> Result<(Vec<f32>, Vec<f32>), ComputeError> {
        self.submit_flow(rows, up_to_stage, false)?.wait()
    }

    fn flow_inverse(
        &mut self,
        rows: Rows<'_, FlowParams>,
        from_stage: usize,
    ) -> Result<(Vec<f32>, Vec<f32>), ComputeError> {
        self.submit_flow(rows, from_stage, true)?.wait()
    }

    fn std_normal_log_density(&mut self, z: &[f32], n_rows: usize, dim: usize) -> Result<Vec<f32>, ComputeError> {
        self.submit_std_normal_log_density(z, n_rows, dim)?.wait()
    }

    fn bnn_predictive(
        &mut self,
        rows: Rows<'_, MeanFieldParams>,
        n_samples: usize,
        noise: Noise<'_>,
    ) -> Result<Vec<f32>, ComputeError> {
        self.submit_bnn_predictive(rows, n_samples, noise)?.wait()
    }
}
