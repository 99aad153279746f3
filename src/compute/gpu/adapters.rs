//! Finding and describing the wgpu adapters: [`probe`] lists them (the status bar and `info` read
//! [`ComputeInfo`]), [`AdapterSummary`] describes one.

use serde::{Deserialize, Serialize};

/// One adapter wgpu can see.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdapterSummary {
    /// Adapter name as the driver reports it (e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`).
    pub name: String,
    /// Graphics API: Vulkan, Metal, Dx12, Gl.
    pub backend: String,
    /// Discrete, integrated, virtual, CPU (software) or other.
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
    /// Largest storage buffer binding, bytes.
    pub max_storage_buffer_binding_size: u64,
    /// Largest compute workgroup size (x).
    pub max_compute_workgroup_size_x: u32,
}

impl AdapterSummary {
    /// What wgpu reports of an adapter: name, backend, type, driver and the limits the kernels care about.
    #[must_use]
    pub fn from_adapter(adapter: &wgpu::Adapter) -> Self {
        let info = adapter.get_info();
        let limits = adapter.limits();
        Self {
            name: info.name,
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_owned(),
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
            max_compute_workgroup_size_x: limits.max_compute_workgroup_size_x,
        }
    }

    /// True for a software rasteriser (lavapipe, llvmpipe, WARP): correct but slower than candle on the CPU.
    #[must_use]
    pub fn is_software(&self) -> bool {
        self.device_type == "Cpu"
    }

    /// Preference order, best first: discrete, integrated, virtual, software, other.
    pub(crate) fn rank(&self) -> u8 {
        match self.device_type.as_str() {
            "DiscreteGpu" => 0,
            "IntegratedGpu" => 1,
            "VirtualGpu" => 2,
            "Cpu" => 3,
            _ => 4,
        }
    }
}

/// What compute the app has: the adapters found and the one it would use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputeInfo {
    /// Every adapter found, best first.
    pub adapters: Vec<AdapterSummary>,
}

impl ComputeInfo {
    /// The preferred adapter: discrete, then integrated, then virtual, then software.
    #[must_use]
    pub fn best(&self) -> Option<&AdapterSummary> {
        self.adapters.first()
    }

    /// One line for the status bar and `info`: where heavy work runs and why.
    #[must_use]
    pub fn status_line(&self) -> String {
        match self.best() {
            None => "Compute: CPU; no GPU adapter found".to_owned(),
            Some(a) if a.is_software() => {
                format!("Compute: CPU; only a software adapter found, used for checks only: {} ({})", a.name, a.backend)
            }
            Some(a) => {
                format!(
                    "Compute: GPU (wgpu) for large batches on {} ({}, {}); CPU for small work",
                    a.name, a.backend, a.device_type
                )
            }
        }
    }
}

/// Lists the adapters wgpu finds, best first. Blocks for as long as the drivers take (run it off the UI thread).
#[must_use]
pub fn probe() -> ComputeInfo {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    let mut summaries: Vec<AdapterSummary> = adapters.iter().map(AdapterSummary::from_adapter).collect();
    summaries.sort_by_key(AdapterSummary::rank);
    summaries.dedup_by(|a, b| a.name == b.name && a.backend == b.backend);
    ComputeInfo { adapters: summaries }
}
