"""Where on the density do two sides' trained flows differ? (issue 21)

Reads the per-point log-densities that `parity.py flow --fresh N --fresh-points DIR` writes (one .npy a run, the same
N new points for every seed of a set) and splits each seed's paired difference, app minus reference, in mean NLL
over the points by where the points lie:
- by how likely the points are: five bins of equal size by the two sides' mean log-density at each point, averaged
  over all runs (a proxy for the true density: the first bin is the density's sparse tails, the last its dense core);
- for the pinwheel, by the point's radial coordinate before the arm is bent (the arm's centre near 1; small values
  are the hub, where the five arms meet, large ones the arms' far tips).

Each bin's row gives the mean over seeds of (app - reference) NLL on that bin's points, with its standard error over
seeds, and its share of the whole gap (a bin's points are a fifth of all, so a bin carrying the gap evenly has 20 %).
For the pinwheel each seed's figures also stand beside the set's own density's NLL on the same points
(`pinwheel_log_density`; it sums to 1.00001 over a 3,001² grid of [-3, 3]²), so each side's distance from the truth.

    /tmp/torch/bin/python benches/reference/fresh_points.py target/parity/fresh-points pinwheel-0.05 clip40 torch

The first run is the app's variant and the second the reference's, unless named SIDE:VARIANT (two references:
`reference:torch-from-app-start-clip40-app-orders torch`); "app" and "reference" in the tables then mean the first
and the second.
"""

import glob
import math
import os
import re
import sys

import numpy as np

sys.path.insert(0, "benches/reference")
import parity  # noqa: E402


def runs(folder, name, first, second):
    """{seed: (first's log p, second's log p)} for the seeds both runs have; each run is (side, variant)."""
    found = {}
    for which, (side, variant) in enumerate((first, second)):
        for path in glob.glob(f"{folder}/{name}-*-{side}-{variant}.npy"):
            seed = int(re.match(rf"{re.escape(name)}-(\d+)-", os.path.basename(path)).group(1))
            found.setdefault(seed, {})[which] = np.load(path).astype(np.float64)
    return {seed: (v[0], v[1]) for seed, v in sorted(found.items()) if len(v) == 2}


def run_spec(text, side):
    """A run named on the command line: VARIANT (of `side`) or SIDE:VARIANT."""
    return tuple(text.split(":", 1)) if ":" in text else (side, text)


def true_nll(name, n, pairs):
    """{seed: the set's own density's NLL on the new points}, in each seed's standardised units (the app's map to
    them divides the density by the product of the slopes), for the sets whose density is written here (the
    pinwheel); {} for the others."""
    make, noise = parity.FLOW_SETS[name]
    if make is not parity.pinwheel:
        return {}
    raw_nll = -pinwheel_log_density(make(n, noise, parity.fresh_generator(name)), noise).mean()
    return {seed: raw_nll + np.log(parity.standardisation(name, parity.split_folder(name, seed))[0]).sum()
            for seed in pairs}


def pinwheel_radius(name, n):
    """The radial coordinate, before bending, of each of `fresh_rows`' points (the same generator, drawn again)."""
    make, noise = parity.FLOW_SETS[name]
    if make is not parity.pinwheel:
        return None
    rng = parity.fresh_generator(name)
    rng.integers(0, 5, n)
    return 1.0 + 0.3 * rng.normal(0, 1, (n, 2))[:, 0]


def pinwheel_log_density(pts, noise, arms=5, radial_sd=0.3, rate=0.25):
    """The pinwheel's own log-density (`parity.pinwheel`'s, in the file's units) at each row of `pts`.

    A point comes from arm k as x = R(2 pi k / arms + rate e^f0) f, with f = (f0, f1) ~ N((1, 0), diag(radial_sd^2,
    noise^2)). The map f -> x keeps |f| = |x| and has the Jacobian determinant 1 - rate e^f0 f1. So for each arm,
    write f = |x| (cos psi, sin psi) and solve psi + rate e^(|x| cos psi) = angle(x) - 2 pi k / arms (mod 2 pi) by
    Newton's method from psi = 0's neighbour; the root near psi = 0 is the one with any density (the others put f1
    many noise sds from 0). p(x) is the mean over the arms of N(f) / |det|."""
    rho, theta = np.hypot(pts[:, 0], pts[:, 1]), np.arctan2(pts[:, 1], pts[:, 0])
    wrap = lambda a: (a + math.pi) % (2 * math.pi) - math.pi  # noqa: E731
    density = np.zeros(len(pts))
    for k in range(arms):
        target = theta - 2 * math.pi * k / arms
        psi = wrap(target - rate * np.exp(rho))
        for _ in range(100):
            grow = rate * np.exp(rho * np.cos(psi))
            step = wrap(psi + grow - target) / (1 - grow * rho * np.sin(psi))
            psi = np.clip(psi - step, -math.pi, math.pi)
        f0, f1 = rho * np.cos(psi), rho * np.sin(psi)
        log_f = -0.5 * (((f0 - 1) / radial_sd) ** 2 + (f1 / noise) ** 2) - math.log(2 * math.pi * radial_sd * noise)
        density += np.exp(log_f) / np.abs(1 - rate * np.exp(f0) * f1) / arms
    return np.log(density)


def breakdown(label, bins, pairs):
    """Prints each bin's mean paired gap over seeds (with its standard error) and its share of the whole gap."""
    gaps = np.array([[(r[b] - a[b]).mean() for b in bins] for a, r in pairs.values()])  # NLL: -log p
    whole = np.array([(r - a).mean() for a, r in pairs.values()])
    print(f"\n{label}: app - reference NLL over {len(pairs)} seeds (whole: {whole.mean():+.4f} ± "
          f"{whole.std(ddof=1) / math.sqrt(len(whole)):.4f})")
    print("| bin | points | gap on its points | share of the whole gap |")
    print("|---|---|---|---|")
    for i, (b, col) in enumerate(zip(bins, gaps.T)):
        # The whole gap is the bins' gaps weighted by their shares of the points.
        share = col.mean() * b.mean() / whole.mean()
        print(f"| {i + 1} | {b.sum()} | {col.mean():+.4f} ± {col.std(ddof=1) / math.sqrt(len(col)):.4f} | "
              f"{100 * share:.0f} % |")


def main():
    folder, name, first, second = sys.argv[1:5]
    pairs = runs(folder, name, run_spec(first, "app"), run_spec(second, "reference"))
    if len(pairs) < 2:
        sys.exit(f"fewer than two seeds with both sides in {folder} for {name}")
    n = len(next(iter(pairs.values()))[0])
    print(f"{name}: {len(pairs)} seeds ({', '.join(map(str, pairs))}), {n} new points each")
    truth = true_nll(name, n, pairs)
    print("| seed | app NLL | reference NLL | app - reference | the density's own NLL | app - own | reference - own |")
    print("|---|---|---|---|---|---|---|")
    for seed, (a, r) in pairs.items():
        own = truth.get(seed, math.nan)
        print(f"| {seed} | {-a.mean():.3f} | {-r.mean():.3f} | {r.mean() - a.mean():+.3f} | {own:.3f} | "
              f"{-a.mean() - own:.3f} | {-r.mean() - own:.3f} |")
    if truth:
        excess = np.array([[-a.mean() - truth[s], -r.mean() - truth[s]] for s, (a, r) in pairs.items()])
        print(f"above the density's own NLL (the KL divergence from it), mean ± sd over seeds: app "
              f"{excess[:, 0].mean():.3f} ± {excess[:, 0].std(ddof=1):.3f}, reference {excess[:, 1].mean():.3f} ± "
              f"{excess[:, 1].std(ddof=1):.3f}")
    mean_log_p = np.mean([np.concatenate([a[None], r[None]]).mean(0) for a, r in pairs.values()], 0)
    edges = np.quantile(mean_log_p, [0.2, 0.4, 0.6, 0.8])
    which = np.digitize(mean_log_p, edges)
    breakdown("By the points' mean log-density (bin 1: the sparsest fifth, bin 5: the densest)",
              [which == i for i in range(5)], pairs)
    radius = pinwheel_radius(name, n)
    if radius is not None:
        which = np.digitize(radius, np.quantile(radius, [0.2, 0.4, 0.6, 0.8]))
        breakdown("By the radial coordinate before bending (bin 1: the hub, bin 5: the arms' far tips)",
                  [which == i for i in range(5)], pairs)


if __name__ == "__main__":
    main()
