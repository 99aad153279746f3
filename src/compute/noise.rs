//! The counter-based standard-normal generator shared by the GPU kernels (`shaders/common.wgsl`) and the
//! candle reference: number `i` of stream `key` is a pure function of `(key, i)`, so a GPU thread can draw
//! its own value without state, and the CPU draws the same numbers for the same seed.
//!
//! `u1, u2` are two uniforms from a PCG-style integer hash (O'Neill 2014, the RXS-M-XS output function);
//! `eps = sqrt(-2 ln u1) cos(2π u2)` (Box and Muller 1958).

/// PCG-style 32-bit hash, bit-for-bit the WGSL `pcg_hash`.
#[must_use]
pub fn pcg_hash(v: u32) -> u32 {
    let state = v.wrapping_mul(747_796_405).wrapping_add(2_891_336_453);
    let word = ((state >> ((state >> 28) + 4)) ^ state).wrapping_mul(277_803_737);
    (word >> 22) ^ word
}

/// The stream key of one (seed, stream) pair, e.g. stream = layer index of a Bayesian network.
#[must_use]
pub fn stream_key(seed: u64, stream: u32) -> u32 {
    let lo = seed as u32;
    let hi = (seed >> 32) as u32;
    pcg_hash(lo ^ pcg_hash(hi ^ pcg_hash(stream)))
}

/// Standard normal number `index` of the stream `key`, as the WGSL `normal_at` computes it (up to the
/// GPU's `log`/`cos` rounding).
#[must_use]
pub fn normal_at(key: u32, index: u32) -> f32 {
    let a = pcg_hash(pcg_hash(index.wrapping_mul(2)) ^ key);
    let b = pcg_hash(pcg_hash(index.wrapping_mul(2).wrapping_add(1)) ^ key);
    let u1 = f64::from((a >> 8) + 1) / 16_777_216.0; // (0, 1]
    let u2 = f64::from(b >> 8) / 16_777_216.0; // [0, 1)
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}
