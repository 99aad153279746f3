// Shared by every kernel file (prepended on the Rust side with `concat!`): the activations of
// `src/models/activation.rs` and the counter-based normal generator of `src/gpu/noise.rs`.

// Activation codes: 0 identity, 1 relu, 2 leaky relu (slope 0.3), 3 sigmoid, 4 tanh, 5 softplus.
fn activate(x: f32, kind: u32) -> f32 {
    switch kind {
        case 1u: { return max(x, 0.0); }
        case 2u: { return select(0.3 * x, x, x > 0.0); }
        case 3u: { return 1.0 / (1.0 + exp(-x)); }
        case 4u: {
            // tanh x = sign(x) (1 - e^{-2|x|}) / (1 + e^{-2|x|}): no overflow for large |x|.
            let e = exp(-2.0 * abs(x));
            return sign(x) * (1.0 - e) / (1.0 + e);
        }
        case 5u: { return max(x, 0.0) + log(1.0 + exp(-abs(x))); }
        default: { return x; }
    }
}

// PCG-style integer hash (O'Neill's RXS-M-XS output on one LCG step).
fn pcg_hash(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

// Standard normal number `index` of the stream keyed by `key` (Box-Muller on two hashed uniforms).
fn normal_at(key: u32, index: u32) -> f32 {
    let a = pcg_hash(pcg_hash(2u * index) ^ key);
    let b = pcg_hash(pcg_hash(2u * index + 1u) ^ key);
    let u1 = f32((a >> 8u) + 1u) * (1.0 / 16777216.0); // (0, 1]
    let u2 = f32(b >> 8u) * (1.0 / 16777216.0); // [0, 1)
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
