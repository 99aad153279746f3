//! Convergence diagnostics of MCMC draws: the rank-normalised split R-hat and the bulk effective sample size of
//! Vehtari, Gelman, Simpson, Carpenter and Bürkner, "Rank-normalization, folding, and localization: an improved
//! R-hat for assessing convergence of MCMC" (Bayesian Analysis, 2021), computed as ArviZ computes them
//! (`az.rhat(method="rank")`, `az.ess(method="bulk")`; checked against its output in the tests).
//!
//! Both take one parameter's draws as `chains` (each chain's draws in order, all of the same length):
//! - split: each chain is cut into its first and last `⌊n/2⌋` draws (the middle one of an odd count dropped), so
//!   a chain that drifts looks like two chains that disagree;
//! - rank normalisation: all split draws are replaced by `Φ⁻¹((r - 3/8) / (S + 1/4))`, `r` their average rank
//!   among all `S` of them, so heavy tails and infinite variances do no harm;
//! - R-hat `= sqrt((B / W + n - 1) / n)` with `B = n var(chain means)`, `W = mean(chain variances)`; the rank
//!   R-hat is the larger of that of the normalised draws (bulk) and that of the normalised `|x - median|` (tails);
//! - ESS `= M n / τ`, `τ = -1 + 2 Σ ρ_t` summed over Geyer's initial monotone sequence of the combined
//!   autocorrelations `ρ_t = 1 - (W - mean of the chains' autocovariances at lag t) / var⁺` (the chains'
//!   autocovariances computed directly, each lag only when the sum reaches it), `τ` at least `1 / log10(M n)`.

use crate::models::stats::normal_cdf;

/// `Φ⁻¹(p)`, the standard normal quantile, to about 1e-15: Acklam's rational approximation (relative error
/// 1.2e-9) and one Halley step on `Φ(x) - p` with `erfc`.
#[must_use]
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    const P_LOW: f64 = 0.024_25;
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    // The upper half by symmetry: `1 - p` is exact there, and `Φ` of the lower tail keeps its relative precision
    // in the refinement below.
    if p > 0.5 {
        return -normal_quantile(1.0 - p);
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let x = if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    // Halley: e = Φ(x) - p, u = e / φ(x).
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (0.5 * x * x).exp();
    x - u / (1.0 + 0.5 * x * u)
}

/// The chains cut in halves: `2 m` chains of `⌊n/2⌋` draws (`n` the shortest chain's length).
fn split_chains(chains: &[&[f64]]) -> Vec<Vec<f64>> {
    let n = chains.iter().map(|c| c.len()).min().unwrap_or(0);
    let half = n / 2;
    let mut out = Vec::with_capacity(2 * chains.len());
    for c in chains {
        let c = &c[..n];
        out.push(c[..half].to_vec());
        out.push(c[n - half..].to_vec());
    }
    out
}

/// Every value replaced by `Φ⁻¹((r - 3/8) / (S + 1/4))`, `r` its average rank (1-based, ties averaged) among all
/// `S` values.
fn z_scale(chains: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let values: Vec<f64> = chains.iter().flatten().copied().collect();
    let size = values.len();
    let mut order: Vec<usize> = (0..size).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut rank = vec![0f64; size];
    let mut i = 0;
    while i < size {
        let mut j = i + 1;
        // Sorted ascending, so "not above" is "equal" (-0 and +0 included, as in scipy's ranks).
        while j < size && values[order[j]] <= values[order[i]] {
            j += 1;
        }
        // Positions i..j (0-based) share the average of the ranks i+1..=j.
        let average = (i + 1 + j) as f64 / 2.0;
        for &k in &order[i..j] {
            rank[k] = average;
        }
        i = j;
    }
    let mut out = Vec::with_capacity(chains.len());
    let mut k = 0;
    for c in chains {
        out.push(
            c.iter()
                .map(|_| {
                    let z = normal_quantile((rank[k] - 0.375) / (size as f64 + 0.25));
                    k += 1;
                    z
                })
                .collect(),
        );
    }
    out
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample variance with `ddof` degrees of freedom taken.
fn variance(v: &[f64], ddof: f64) -> f64 {
    let m = mean(v);
    v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() as f64 - ddof)
}

/// The classic R-hat of (already split) chains.
fn rhat_of(chains: &[Vec<f64>]) -> f64 {
    let n = chains.first().map_or(0, Vec::len) as f64;
    let means: Vec<f64> = chains.iter().map(|c| mean(c)).collect();
    let between = n * variance(&means, 1.0);
    let within = mean(&chains.iter().map(|c| variance(c, 1.0)).collect::<Vec<_>>());
    ((between / within + n - 1.0) / n).sqrt()
}

/// The rank-normalised split R-hat (the larger of the bulk and the folded tails' R-hat); NaN with fewer than 2
/// chains or 4 draws per chain, or non-finite draws.
#[must_use]
pub fn rank_rhat(chains: &[&[f64]]) -> f64 {
    let n = chains.iter().map(|c| c.len()).min().unwrap_or(0);
    if chains.len() < 2 || n < 4 || chains.iter().any(|c| c[..n].iter().any(|v| !v.is_finite())) {
        return f64::NAN;
    }
    let split = split_chains(chains);
    let bulk = rhat_of(&z_scale(&split));
    let mut all: Vec<f64> = split.iter().flatten().copied().collect();
    all.sort_by(f64::total_cmp);
    let median = median_sorted(&all);
    let folded: Vec<Vec<f64>> = split.iter().map(|c| c.iter().map(|v| (v - median).abs()).collect()).collect();
    let tail = rhat_of(&z_scale(&folded));
    bulk.max(tail)
}

fn median_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 { sorted[n / 2] } else { 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]) }
}

/// The bulk effective sample size (of the rank-normalised split chains); NaN with fewer than 4 draws per chain
/// or non-finite draws.
#[must_use]
pub fn ess_bulk(chains: &[&[f64]]) -> f64 {
    let n = chains.iter().map(|c| c.len()).min().unwrap_or(0);
    if chains.is_empty() || n < 4 || chains.iter().any(|c| c[..n].iter().any(|v| !v.is_finite())) {
        return f64::NAN;
    }
    ess_of(&z_scale(&split_chains(chains)))
}

/// Lag-`t` autocovariance of one chain, divided by its length (ArviZ's `autocov`, by the direct sum).
fn autocov(chain: &[f64], chain_mean: f64, t: usize) -> f64 {
    let n = chain.len();
    if t >= n {
        return 0.0;
    }
    chain[..n - t].iter().zip(&chain[t..]).map(|(a, b)| (a - chain_mean) * (b - chain_mean)).sum::<f64>() / n as f64
}

/// The effective sample size of chains by Geyer's initial monotone sequence (ArviZ's `_ess`).
fn ess_of(chains: &[Vec<f64>]) -> f64 {
    let m = chains.len();
    let n = chains.first().map_or(0, Vec::len);
    let values = chains.iter().flatten();
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if hi - lo < 1e-15 {
        return (m * n) as f64;
    }
    let nf = n as f64;
    let means: Vec<f64> = chains.iter().map(|c| mean(c)).collect();
    // Mean over chains of the lag-t autocovariance.
    let acov = |t: usize| chains.iter().zip(&means).map(|(c, &mu)| autocov(c, mu, t)).sum::<f64>() / m as f64;
    let mean_var = acov(0) * nf / (nf - 1.0);
    let mut var_plus = mean_var * (nf - 1.0) / nf;
    if m > 1 {
        var_plus += variance(&means, 1.0);
    }
    let mut rho = vec![0f64; n];
    let mut rho_even = 1.0;
    rho[0] = rho_even;
    let mut rho_odd = 1.0 - (mean_var - acov(1)) / var_plus;
    rho[1] = rho_odd;
    // Geyer's initial positive sequence.
    let mut t = 1;
    while t + 3 < n && rho_even + rho_odd > 0.0 {
        rho_even = 1.0 - (mean_var - acov(t + 1)) / var_plus;
        rho_odd = 1.0 - (mean_var - acov(t + 2)) / var_plus;
        if rho_even + rho_odd >= 0.0 {
            rho[t + 1] = rho_even;
            rho[t + 2] = rho_odd;
        }
        t += 2;
    }
    // t is odd and at least 1; max_t = t - 2 may be -1.
    let max_t = t as isize - 2;
    if rho_even > 0.0 {
        rho[(max_t + 1) as usize] = rho_even;
    }
    // Geyer's initial monotone sequence.
    let mut t = 1isize;
    while t <= max_t - 2 {
        let u = t as usize;
        if rho[u + 1] + rho[u + 2] > rho[u - 1] + rho[u] {
            rho[u + 1] = f64::midpoint(rho[u - 1], rho[u]);
            rho[u + 2] = rho[u + 1];
        }
        t += 2;
    }
    let total = (m * n) as f64;
    let head: f64 = rho[..(max_t + 1).max(0) as usize].iter().sum();
    let next = rho.get((max_t + 1) as usize).copied().unwrap_or(0.0);
    let tau = (-1.0 + 2.0 * head + next).max(1.0 / total.log10());
    if rho.iter().any(|r| r.is_nan()) { f64::NAN } else { total / tau }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_quantile_inverts_the_cdf() {
        for p in [1e-12, 1e-6, 0.01, 0.02425, 0.1, 0.3, 0.5, 0.7, 0.975, 0.999_999] {
            let x = normal_quantile(p);
            let back = normal_cdf(x);
            assert!((back - p).abs() < 1e-14 * p.max(1e-3), "{p}: {x} gives {back}");
        }
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-13);
        assert!(normal_quantile(0.5).abs() < 1e-300);
    }

    #[test]
    fn identical_chains_of_independent_draws_look_converged() {
        // A deterministic scramble of 0..800 shared out over 4 chains.
        let draws: Vec<f64> = (0..800u64).map(|i| ((i * 7919) % 800) as f64).collect();
        let chains: Vec<&[f64]> = draws.chunks(200).collect();
        let r = rank_rhat(&chains);
        assert!(r < 1.02, "{r}");
        let ess = ess_bulk(&chains);
        assert!(ess > 300.0, "{ess}");
    }

    /// ArviZ 0.23.4's `rhat(method="rank")` and `ess(method="bulk")` on fixed draws
    /// (benches/reference/nuts_diagnostics.py wrote the file). The draws in the file are exactly those ArviZ saw;
    /// what differs is the order of floating-point sums (ArviZ's autocovariance by FFT, here by direct sums), far
    /// below the tolerance.
    #[test]
    fn rhat_and_bulk_ess_match_arviz() {
        let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/nuts_diagnostics.json"));
        let file: serde_json::Value = serde_json::from_str(text).unwrap();
        for set in file["sets"].as_array().unwrap() {
            let chains: Vec<Vec<f64>> = serde_json::from_value(set["chains"].clone()).unwrap();
            let refs: Vec<&[f64]> = chains.iter().map(Vec::as_slice).collect();
            let name = set["name"].as_str().unwrap();
            let (rhat, ess) = (rank_rhat(&refs), ess_bulk(&refs));
            let (want_rhat, want_ess) = (set["rhat_rank"].as_f64().unwrap(), set["ess_bulk"].as_f64().unwrap());
            assert!((rhat - want_rhat).abs() < 1e-9 * want_rhat, "{name}: R-hat {rhat} against ArviZ's {want_rhat}");
            assert!((ess - want_ess).abs() < 1e-8 * want_ess, "{name}: bulk ESS {ess} against ArviZ's {want_ess}");
        }
        for pair in file["normal_quantile"].as_array().unwrap() {
            let (p, want) = (pair[0].as_f64().unwrap(), pair[1].as_f64().unwrap());
            let got = normal_quantile(p);
            assert!(
                (got - want).abs() < 1e-13 * want.abs().max(1.0),
                "the normal quantile at {p} = {got} against scipy's {want}"
            );
        }
    }

    #[test]
    fn too_few_draws_give_nan() {
        let a = [1.0, 2.0, 3.0];
        assert!(rank_rhat(&[&a, &a]).is_nan());
        assert!(ess_bulk(&[&a]).is_nan());
        assert!(rank_rhat(&[&[1.0, 2.0, 3.0, 4.0]]).is_nan());
    }
}
