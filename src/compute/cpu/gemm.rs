//! One safe entry to the `gemm` crate's f32 matrix product (the kernel candle's CPU matmul runs), for the hand-written
//! training passes that skip candle's per-op costs ([`crate::compute::cpu::coupling`]). Single-threaded: callers run
//! independent products on separate threads themselves.

/// `c = op(a) · op(b)`, or `c += op(a) · op(b)` when `accumulate`; row-major throughout. `op(a)` is `[m, k]`: `a` is
/// stored `[m, k]`, or `[k, m]` when `transpose_a`; `op(b)` is `[k, n]`: `b` is stored `[k, n]`, or `[n, k]` when
/// `transpose_b`; `c` is `[m, n]`.
///
/// # Panics
/// When a slice's length is not the product of its dimensions.
#[allow(clippy::too_many_arguments, reason = "the three shapes and two flags of a product, as BLAS takes them")]
#[allow(clippy::many_single_char_names, reason = "the names of the BLAS product: c = a b, [m, k] · [k, n]")]
pub fn matmul(
    c: &mut [f32],
    a: &[f32],
    transpose_a: bool,
    b: &[f32],
    transpose_b: bool,
    (m, k, n): (usize, usize, usize),
    accumulate: bool,
) {
    assert_eq!(a.len(), m * k, "a must hold {m} x {k} values");
    assert_eq!(b.len(), k * n, "b must hold {k} x {n} values");
    assert_eq!(c.len(), m * n, "c must hold {m} x {n} values");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return;
    }
    // Strides in elements: (row stride, column stride) of each operand as it enters the product.
    let stride = |dim: usize| isize::try_from(dim).unwrap_or(isize::MAX);
    let (a_rs, a_cs) = if transpose_a { (1, stride(m)) } else { (stride(k), 1) };
    let (b_rs, b_cs) = if transpose_b { (1, stride(k)) } else { (stride(n), 1) };
    let (c_rs, c_cs) = (stride(n), 1);
    #[allow(unsafe_code, reason = "gemm takes raw pointers; see the SAFETY note")]
    // SAFETY: the asserts above make each slice exactly as long as its dimensions, and the strides address
    // a[i, p] at i·a_rs + p·a_cs < m·k (and the same for b and c), so every access stays inside its slice; `c` is
    // borrowed mutably, so it aliases neither `a` nor `b`; Parallelism::None runs on this thread alone.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs,
            c_rs,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::matmul;

    /// The product by the definition, in f64.
    fn naive(a: &[f32], ta: bool, b: &[f32], tb: bool, (m, k, n): (usize, usize, usize)) -> Vec<f64> {
        let at = |i: usize, p: usize| f64::from(if ta { a[p * m + i] } else { a[i * k + p] });
        let bt = |p: usize, j: usize| f64::from(if tb { b[j * k + p] } else { b[p * n + j] });
        (0..m * n).map(|ij| (0..k).map(|p| at(ij / n, p) * bt(p, ij % n)).sum()).collect()
    }

    #[test]
    fn every_transpose_and_awkward_shape_matches_the_definition() {
        let mut seed = 1u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            f32::from(u16::try_from(seed >> 16).unwrap_or(0)) / 32768.0 - 1.0
        };
        for &(m, k, n) in &[(1, 1, 1), (1, 7, 1), (5, 3, 1), (1, 3, 9), (17, 33, 9), (64, 256, 2), (0, 4, 3), (3, 0, 2)]
        {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a: Vec<f32> = (0..m * k).map(|_| next()).collect();
                let b: Vec<f32> = (0..k * n).map(|_| next()).collect();
                let start: Vec<f32> = (0..m * n).map(|_| next()).collect();
                let want = naive(&a, ta, &b, tb, (m, k, n));
                for accumulate in [false, true] {
                    // A product that does not accumulate must not read what `c` held: NaNs there stay out of it.
                    let mut c = if accumulate { start.clone() } else { vec![f32::NAN; m * n] };
                    matmul(&mut c, &a, ta, &b, tb, (m, k, n), accumulate);
                    for (i, (&got, &w)) in c.iter().zip(&want).enumerate() {
                        let w = if accumulate { w + f64::from(start[i]) } else { w };
                        assert!(
                            (f64::from(got) - w).abs() < 1e-4 * (1.0 + w.abs()),
                            "{m}x{k}x{n} ta {ta} tb {tb} acc {accumulate} at {i}: {got} vs {w}"
                        );
                    }
                }
            }
        }
    }
}
