//! The hand-written CPU kernels: training passes written out over buffers that skip candle's per-operation
//! costs, each tested against candle's autograd of the same loss, and the optimiser's step.
//!
//! - [`gemm`]: the one safe wrapper over `gemm`'s f32 matrix product;
//! - [`dense`]: dense stacks forward and backward over buffers kept from step to step;
//! - [`norm_act`]: batch normalisation and (leaky) ReLU fused into one candle operation with a hand-written
//!   backward pass, whose loops [`conv`] also runs on slices;
//! - [`coupling`], [`vae`], [`conv`]: the RealNVP's, the MLP VAE's and the convolutional VAE's training passes;
//! - [`optim`]: RMSprop and Adam as one loop per variable over plain moments; [`guard`]: the NaN guard every
//!   trainer shares.
//!
//! Uses the compute layer's root (plain-data parameters, activations, convolution geometry); never the wgpu
//! side ([`crate::compute::gpu`]) nor the models.

pub mod conv;
pub mod coupling;
pub mod dense;
pub mod gemm;
pub mod guard;
pub mod norm_act;
pub mod optim;
pub mod vae;
