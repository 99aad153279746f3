// Tiled matrix product with an optional fused bias and activation, batched over workgroup z:
//   C[z] = act(op(A[z]) · op(B[z]) + bias[z]),  op(A) [m, k], op(B) [k, n], C [m, n] row-major.
// op(A) = A ([m, k] stored) or A^T ([k, m] stored); likewise for B. Each batch `z` reads A at
// `a_offset + z * a_batch_stride` (stride 0 shares the inputs across a batch), and so on.
// A 16 x 16 workgroup computes a 64 x 64 block of C, 4 x 4 outputs per thread, walking k in steps of 16
// through workgroup memory. Loads into workgroup memory are bounds-checked (zero padding), the inner
// multiply-add loop is not.

struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    trans_a: u32,
    trans_b: u32,
    activation: u32,
    has_bias: u32,
    a_offset: u32,
    b_offset: u32,
    bias_offset: u32,
    c_offset: u32,
    a_batch_stride: u32,
    b_batch_stride: u32,
    bias_batch_stride: u32,
    c_batch_stride: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

const TILE: u32 = 64u;
const TILE_K: u32 = 16u;

// [TILE_K][TILE / 4] vec4s: a_tile[kk * 16 + i] holds op(A) rows 4i..4i+3 at column kk of the k-step.
var<workgroup> a_tile: array<vec4<f32>, 256>;
// [TILE_K][TILE / 4] vec4s: b_tile[kk * 16 + j] holds op(B) columns 4j..4j+3 at row kk of the k-step.
var<workgroup> b_tile: array<vec4<f32>, 256>;

@compute @workgroup_size(16, 16, 1)
fn matmul(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    let a_base = p.a_offset + wg.z * p.a_batch_stride;
    let b_base = p.b_offset + wg.z * p.b_batch_stride;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);

    let n_steps = (p.k + TILE_K - 1u) / TILE_K;
    for (var step = 0u; step < n_steps; step++) {
        let k0 = step * TILE_K;
        // 1024 values of each tile, 4 per thread; the index order follows the stored layout so that
        // neighbouring threads read neighbouring addresses.
        for (var e = 0u; e < 4u; e++) {
            let idx = li + e * 256u;
            var r: u32;
            var kk: u32;
            if p.trans_a == 0u {
                r = idx / TILE_K;
                kk = idx % TILE_K;
            } else {
                kk = idx / TILE;
                r = idx % TILE;
            }
            let gr = row0 + r;
            let gk = k0 + kk;
            var v = 0.0;
            if gr < p.m && gk < p.k {
                if p.trans_a == 0u {
                    v = a[a_base + gr * p.k + gk];
                } else {
                    v = a[a_base + gk * p.m + gr];
                }
            }
            a_tile[kk * 16u + r / 4u][r % 4u] = v;

            var cc: u32;
            var kb: u32;
            if p.trans_b == 0u {
                kb = idx / TILE;
                cc = idx % TILE;
            } else {
                cc = idx / TILE_K;
                kb = idx % TILE_K;
            }
            let gc = col0 + cc;
            let gkb = k0 + kb;
            var w = 0.0;
            if gc < p.n && gkb < p.k {
                if p.trans_b == 0u {
                    w = b[b_base + gkb * p.n + gc];
                } else {
                    w = b[b_base + gc * p.k + gkb];
                }
            }
            b_tile[kb * 16u + cc / 4u][cc % 4u] = w;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            let av = a_tile[kk * 16u + lid.y];
            let bv = b_tile[kk * 16u + lid.x];
            acc0 += av.x * bv;
            acc1 += av.y * bv;
            acc2 += av.z * bv;
            acc3 += av.w * bv;
        }
        workgroupBarrier();
    }

    let c_base = p.c_offset + wg.z * p.c_batch_stride;
    let bias_base = p.bias_offset + wg.z * p.bias_batch_stride;
    var rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + lid.y * 4u + i;
        if row >= p.m {
            break;
        }
        for (var j = 0u; j < 4u; j++) {
            let col = col0 + lid.x * 4u + j;
            if col < p.n {
                var v = rows[i][j];
                if p.has_bias != 0u {
                    v += bias[bias_base + col];
                }
                c[c_base + row * p.n + col] = activate(v, p.activation);
            }
        }
    }
}
