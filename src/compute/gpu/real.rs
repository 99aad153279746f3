//! A real (not software) GPU for the views' heavy evaluations, looked for on first use.

use crate::compute::{AdapterSummary, BackendChoice, GpuBackend, choose_backend};

/// A GPU back end on a real adapter, if the machine has one; a software rasteriser (lavapipe) never counts:
/// it is about a hundred times slower than candle for this work.
#[derive(Default)]
pub struct RealGpu {
    probed: bool,
    gpu: Option<(GpuBackend, AdapterSummary)>,
}

impl RealGpu {
    /// Not looked for yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The GPU and its adapter when a job of `flops` floating-point operations is worth its round trip
    /// ([`choose_backend`]); `None` for the CPU. `what` names the work in the log.
    pub fn for_job(&mut self, flops: f64, what: &str) -> Option<(&mut GpuBackend, &AdapterSummary)> {
        if !self.probed {
            self.probed = true;
            let info = crate::compute::probe();
            if let Some(adapter) = info.best().filter(|a| !a.is_software()) {
                match GpuBackend::new() {
                    Ok(backend) => self.gpu = Some((backend, adapter.clone())),
                    Err(e) => log::info!("no GPU for {what}: {e}"),
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

    /// Gives the GPU up after a failure: the CPU does the work from now on.
    pub fn give_up(&mut self) {
        self.gpu = None;
    }
}
