// Row-wise kernels of the flows, one thread per row of `dim` values (dims are small: 2 for the toy
// densities). See `FlowLayerParams` in `src/models/params.rs` for the conventions; `log_det` always
// accumulates log|det| of the forward map.
//
// affine:   forward  v = u · exp(log_scale) + shift;   inverse u = (v - shift) · exp(-log_scale);
//           log_det += Σ log_scale.                     aux = [shift (dim), log_scale (dim)]
// mask:     out = m ⊙ in (the conditioner input).       aux = mask
// coupling: forward  v = m ⊙ u + (1 - m) ⊙ (u · exp(s) + t);
//           inverse  u = m ⊙ v + (1 - m) ⊙ ((v - t) · exp(-s));
//           log_det += Σ (1 - m) ⊙ s.                   aux = mask, s and t [rows, dim]
// log_normal: out[row] = -½ Σ z² - ½ dim log 2π (standard normal log-density).

struct FlowParams {
    n_rows: u32,
    dim: u32,
    inverse: u32,
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
    _p11: u32,
}

@group(0) @binding(0) var<uniform> p: FlowParams;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> aux: array<f32>;
@group(0) @binding(3) var<storage, read> s: array<f32>;
@group(0) @binding(4) var<storage, read> t: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> log_det: array<f32>;

fn row_index(gid: vec3<u32>) -> u32 {
    return gid.y * p.row_width + gid.x;
}

@compute @workgroup_size(256, 1, 1)
fn affine(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = row_index(gid);
    if row >= p.n_rows {
        return;
    }
    var sum = 0.0;
    for (var j = 0u; j < p.dim; j++) {
        let i = row * p.dim + j;
        let shift = aux[j];
        let log_scale = aux[p.dim + j];
        if p.inverse == 0u {
            out[i] = input[i] * exp(log_scale) + shift;
        } else {
            out[i] = (input[i] - shift) * exp(-log_scale);
        }
        sum += log_scale;
    }
    log_det[row] += sum;
}

@compute @workgroup_size(256, 1, 1)
fn mask(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = row_index(gid);
    if row >= p.n_rows {
        return;
    }
    for (var j = 0u; j < p.dim; j++) {
        let i = row * p.dim + j;
        out[i] = aux[j] * input[i];
    }
}

@compute @workgroup_size(256, 1, 1)
fn coupling(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = row_index(gid);
    if row >= p.n_rows {
        return;
    }
    var sum = 0.0;
    for (var j = 0u; j < p.dim; j++) {
        let i = row * p.dim + j;
        let m = aux[j];
        var moved: f32;
        if p.inverse == 0u {
            moved = input[i] * exp(s[i]) + t[i];
        } else {
            moved = (input[i] - t[i]) * exp(-s[i]);
        }
        out[i] = m * input[i] + (1.0 - m) * moved;
        sum += (1.0 - m) * s[i];
    }
    log_det[row] += sum;
}

@compute @workgroup_size(256, 1, 1)
fn log_normal(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = row_index(gid);
    if row >= p.n_rows {
        return;
    }
    var sq = 0.0;
    for (var j = 0u; j < p.dim; j++) {
        let z = input[row * p.dim + j];
        sq += z * z;
    }
    out[row] = -0.5 * sq - 0.5 * f32(p.dim) * 1.8378770664093453;
}
