//! [`ComputeContext`]: the chosen adapter, a headless device and queue, and every compute pipeline, made
//! once. Creating one fails with [`ComputeError`] when there is no adapter or no device; callers then use
//! [`crate::compute::CandleBackend`].

use std::borrow::Cow;

use crate::compute::AdapterSummary;
use crate::compute::backend::ComputeError;

const COMMON_WGSL: &str = include_str!("../../../shaders/common.wgsl");
const MATMUL_WGSL: &str = include_str!("../../../shaders/matmul.wgsl");
const SAMPLE_WGSL: &str = include_str!("../../../shaders/sample_weights.wgsl");
const FLOW_WGSL: &str = include_str!("../../../shaders/flow.wgsl");

/// Bytes of every kernel's parameter block (16 `u32`).
pub(crate) const PARAMS_BYTES: u64 = 64;

/// The kernels, one pipeline each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// Tiled (batched) matmul with fused bias and activation: uniform, a, b, bias, c.
    Matmul,
    /// Mean-field weight samples: uniform, mean, sd, eps, out.
    SampleWeights,
    /// Flow affine layer: uniform, input, aux, s, t, out, log_det.
    FlowAffine,
    /// Conditioner input m ⊙ u.
    FlowMask,
    /// Coupling combine.
    FlowCoupling,
    /// Standard normal log-density per row.
    LogNormal,
}

/// The device, its queue and the pipelines; cheap to clone (wgpu handles are shared).
#[derive(Clone, Debug)]
pub struct ComputeContext {
    /// The adapter in use.
    pub adapter: AdapterSummary,
    /// The limits the device was created with (the adapter's own).
    pub limits: wgpu::Limits,
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    matmul_layout: wgpu::BindGroupLayout,
    flow_layout: wgpu::BindGroupLayout,
    pipelines: Vec<(Kernel, wgpu::ComputePipeline)>,
}

fn layout(device: &wgpu::Device, label: &str, read_only: u32, read_write: u32) -> wgpu::BindGroupLayout {
    let mut entries = vec![wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: true,
            min_binding_size: wgpu::BufferSize::new(PARAMS_BYTES),
        },
        count: None,
    }];
    for i in 0..read_only + read_write {
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: 1 + i,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: i < read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        });
    }
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(label), entries: &entries })
}

impl ComputeContext {
    /// Picks the best adapter (discrete, integrated, virtual, then software), creates a headless device with
    /// the adapter's own limits, and compiles every kernel. Blocks for as long as the driver takes.
    pub fn new() -> Result<Self, ComputeError> {
        let lock = super::adapters::setup_lock();
        let adapter = super::adapters::compute_adapters(&lock)
            .into_iter()
            .min_by_key(|a| AdapterSummary::from_adapter(a).rank())
            .ok_or(ComputeError::NoAdapter)?;
        let summary = AdapterSummary::from_adapter(&adapter);
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("bayes-explorer compute"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| ComputeError::Device(e.to_string()))?;
        drop(lock);
        log::info!("compute device: {} ({}, {})", summary.name, summary.backend, summary.device_type);

        let matmul_layout = layout(&device, "matmul layout", 3, 1);
        let flow_layout = layout(&device, "flow layout", 4, 2);
        let module = |label: &str, body: &str| {
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(Cow::Owned(format!("{COMMON_WGSL}\n{body}"))),
            })
        };
        let matmul_module = module("matmul.wgsl", MATMUL_WGSL);
        let sample_module = module("sample_weights.wgsl", SAMPLE_WGSL);
        let flow_module = module("flow.wgsl", FLOW_WGSL);
        let pipeline = |bind_layout: &wgpu::BindGroupLayout, module: &wgpu::ShaderModule, entry: &str| {
            let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(entry),
                bind_group_layouts: &[Some(bind_layout)],
                immediate_size: 0,
            });
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: Some(&pipeline_layout),
                module,
                entry_point: Some(entry),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                cache: None,
            })
        };
        let pipelines = vec![
            (Kernel::Matmul, pipeline(&matmul_layout, &matmul_module, "matmul")),
            (Kernel::SampleWeights, pipeline(&matmul_layout, &sample_module, "sample_weights")),
            (Kernel::FlowAffine, pipeline(&flow_layout, &flow_module, "affine")),
            (Kernel::FlowMask, pipeline(&flow_layout, &flow_module, "mask")),
            (Kernel::FlowCoupling, pipeline(&flow_layout, &flow_module, "coupling")),
            (Kernel::LogNormal, pipeline(&flow_layout, &flow_module, "log_normal")),
        ];
        Ok(Self { adapter: summary, limits, device, queue, matmul_layout, flow_layout, pipelines })
    }

    pub(crate) fn pipeline(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        // Every kernel is in the list by construction.
        &self.pipelines.iter().find(|(k, _)| *k == kernel).unwrap_or(&self.pipelines[0]).1
    }

    pub(crate) fn bind_layout(&self, kernel: Kernel) -> &wgpu::BindGroupLayout {
        match kernel {
            Kernel::Matmul | Kernel::SampleWeights => &self.matmul_layout,
            _ => &self.flow_layout,
        }
    }
}
