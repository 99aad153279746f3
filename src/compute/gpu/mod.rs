//! The wgpu side of the compute layer: finding adapters ([`adapters`]), the device and its compiled pipelines
//! ([`context`]), the WGSL kernels of `shaders/` behind [`crate::compute::ComputeBackend`] ([`kernels`]), which
//! back end a job of a given size should use ([`choose`]) and a real (not software) GPU looked for on first use
//! ([`real`]). Uses the compute layer's root (the trait, plain-data parameters, the shared noise); never the CPU
//! kernels of [`crate::compute::cpu`].

pub mod adapters;
pub mod choose;
pub mod context;
pub mod kernels;
pub mod real;
