//! Finding and describing the wgpu adapters: [`probe`] lists them (the status bar and `info` read
//! [`ComputeInfo`]), [`AdapterSummary`] describes one.

use std::sync::{Mutex, MutexGuard, PoisonError};

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

/// Instance, adapter and device set-up, one thread at a time in this process. Drivers are not all safe to set up
/// from several threads at once: on NVIDIA's driver (H200, Vulkan, driver 580.159) the GPU kernel tests, each
/// creating a device at the same moment, hung for good, with OpenGL left out too; one at a time, or under this lock,
/// they pass in 2 s (2026-12-04, BENCHMARKS.md).
static SETUP: Mutex<()> = Mutex::new(());

/// Holds the set-up lock for the caller's device creation; taken by [`compute_adapters`] too.
pub(crate) fn setup_lock() -> MutexGuard<'static, ()> {
    SETUP.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The adapters compute may use, under [`setup_lock`] (the caller holds it). Without `WGPU_BACKEND`, the native
/// APIs (Vulkan, Metal, DX12) first and OpenGL only where none of them has an adapter: OpenGL's set-up goes through
/// EGL (on the GPU machine under a display without GLX, wgpu's EGL set-up panicked), and where a native API exists
/// its adapter is the one compute would pick anyway.
/// `WGPU_BACKEND` (wgpu's own variable, e.g. `vulkan` or `gl`) names the back ends outright.
pub(crate) fn compute_adapters(_lock: &MutexGuard<'static, ()>) -> Vec<wgpu::Adapter> {
    let enumerate = |backends: wgpu::Backends| {
        let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        descriptor.backends = backends;
        let instance = wgpu::Instance::new(descriptor);
        pollster::block_on(instance.enumerate_adapters(backends))
    };
    let from_env = wgpu::InstanceDescriptor::new_without_display_handle_from_env().backends;
    if std::env::var_os("WGPU_BACKEND").is_some() {
        return enumerate(from_env);
    }
    let native = enumerate(from_env & wgpu::Backends::PRIMARY);
    if native.is_empty() { enumerate(from_env & !wgpu::Backends::PRIMARY) } else { native }
}

/// Lists the adapters compute may use ([`compute_adapters`]), best first. Blocks for as long as the drivers take (run
/// it off the UI thread).
#[must_use]
pub fn probe() -> ComputeInfo {
    let lock = setup_lock();
    let adapters = compute_adapters(&lock);
    drop(lock);
    let mut summaries: Vec<AdapterSummary> = adapters.iter().map(AdapterSummary::from_adapter).collect();
    summaries.sort_by_key(AdapterSummary::rank);
    summaries.dedup_by(|a, b| a.name == b.name && a.backend == b.backend);
    ComputeInfo { adapters: summaries }
}
