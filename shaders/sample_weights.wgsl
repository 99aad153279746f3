// Mean-field weight samples for the Bayesian network: for sample s and parameter j of one layer,
//   W[s, j] = mean[j] + sd[j] · eps[s, j],
// with eps either uploaded ([n_samples, len]) or drawn here: eps[s, j] = normal_at(key, s * len + j), the
// counter-based generator shared with the CPU reference (`src/gpu/noise.rs`), so both back ends draw the
// same numbers for the same seed.

struct SampleParams {
    len: u32,
    n_samples: u32,
    key: u32,
    use_uploaded: u32,
    row_width: u32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
    _p3: u32,
    _p4: u32,
    _p5: u32,
    _p6: u32,
    _p7: u32,
    _p8: u32,
    _p9: u32,
    _p10: u32,
}

@group(0) @binding(0) var<uniform> p: SampleParams;
@group(0) @binding(1) var<storage, read> mean: array<f32>;
@group(0) @binding(2) var<storage, read> sd: array<f32>;
@group(0) @binding(3) var<storage, read> eps: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn sample_weights(@builtin(global_invocation_id) gid: vec3<u32>) {
    // 2-D grid so that more than 65535 workgroups' worth of values fit: idx = y * row_width + x.
    let idx = gid.y * p.row_width + gid.x;
    let total = p.len * p.n_samples;
    if idx >= total {
        return;
    }
    let j = idx % p.len;
    var e: f32;
    if p.use_uploaded != 0u {
        e = eps[idx];
    } else {
        e = normal_at(p.key, idx);
    }
    out[idx] = mean[j] + sd[j] * e;
}
