"""Reference values for the rank-normalised split R-hat and the bulk ESS (src/models/nuts/diagnostics.rs).

Generates a few fixed sets of MCMC-like draws (seeded), rounds them to 4 decimals (so the file holds exactly the
numbers both sides compute on), and records ArviZ's `rhat(method="rank")` and `ess(method="bulk")` of each, and a
few values of scipy's normal quantile. Writes tests/data/nuts_diagnostics.json.

    /tmp/torch/bin/pip install "arviz<1"   # 0.23.4 made the file
    /tmp/torch/bin/python benches/reference/nuts_diagnostics.py
"""

import json
import pathlib

import arviz as az
import numpy as np
import scipy
from scipy import stats


def ar1(rng, chains, draws, rho):
    out = np.zeros((chains, draws))
    for c in range(chains):
        x = rng.normal() / np.sqrt(1 - rho * rho)
        for t in range(draws):
            x = rho * x + rng.normal()
            out[c, t] = x
    return out


def main():
    rng = np.random.default_rng(20251203)
    sets = {
        "iid normal": rng.normal(size=(4, 200)),
        "AR(1) rho 0.9": ar1(rng, 4, 200, 0.9),
        "shifted means": rng.normal(size=(4, 200)) + np.array([0.0, 0.0, 0.3, 0.9])[:, None],
        "heavy tails and ties, odd length": np.round(rng.standard_t(df=2, size=(4, 151)), 1),
        "two chains, a trend": rng.normal(size=(2, 120)) + np.linspace(0, 2, 120)[None, :],
    }
    out = {
        "arviz": az.__version__,
        "scipy": scipy.__version__,
        "sets": [],
        "normal_quantile": [[p, float(stats.norm.ppf(p))] for p in [1e-9, 0.001, 0.02, 0.2, 0.5, 0.8, 0.99, 1 - 1e-7]],
    }
    for name, draws in sets.items():
        draws = np.round(draws, 4)
        out["sets"].append(
            {
                "name": name,
                "chains": draws.tolist(),
                "rhat_rank": float(az.rhat(draws, method="rank")),
                "ess_bulk": float(az.ess(draws, method="bulk")),
            }
        )
    path = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "nuts_diagnostics.json"
    path.write_text(json.dumps(out) + "\n")
    for s in out["sets"]:
        print(f'{s["name"]:<36} rhat {s["rhat_rank"]:.6f}  ess_bulk {s["ess_bulk"]:.2f}')


if __name__ == "__main__":
    main()
