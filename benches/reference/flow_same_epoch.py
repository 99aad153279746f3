"""Does one epoch of the app's RealNVP training equal PyTorch's, started from the same state? (issue 21)

Takes a run file the app saved (`train flow ... --epochs E --save RUN`, which holds the weights, Adam's moments and
step count, and the next epoch's minibatch order), lets PyTorch take that epoch (the same rows in the same order,
`torch.optim.Adam` with the moments and step count put in), and compares its weights with the app's own continuation
of the run (`train flow --load RUN --continue --epochs 1 --save AFTER`). The difference is printed relative to how
far the epoch moved each variable: float rounding gives about 1e-4 or less; a different gradient or update rule gives
order 1. The same epoch is also taken in float64, the nearest thing to exact arithmetic: where the app and PyTorch's
float32 differ by more than rounding (an epoch with a spike in the loss, where rounding grows), that tells whose
arithmetic strays from the exact epoch, and by how much.

    RUN=target/parity/epoch1
    target/release/bayes-explorer train flow --data target/parity/data/moons-0.05.csv --columns x y --seed 3 \\
        --epochs 1 --export-split $RUN-split --save $RUN
    target/release/bayes-explorer train flow --load $RUN --continue --epochs 1 --save $RUN-after
    /tmp/torch/bin/python benches/reference/flow_same_epoch.py $RUN $RUN-split $RUN-after
"""

import sys

import numpy as np
import torch

sys.path.insert(0, "benches/reference")
import parity  # noqa: E402


def epoch(meta, get, train, dtype):
    """PyTorch's epoch from the run file's state in `dtype`: the variables' names and values after it (app layout)
    and the epoch's minibatch losses."""
    model = parity.RealNvp().to(dtype)
    opt = torch.optim.Adam(model.parameters(), lr=meta["config"]["learning_rate"], eps=meta["config"]["adam_epsilon"])
    steps = float(meta["resume"]["optimizer"]["steps"])
    params = []
    for i, var in enumerate(meta["resume"]["variables"]):
        lin, weights = parity.app_linear(model, var["name"])
        # The app stores W as [in, out] (x W), PyTorch as [out, in].
        as_torch = (lambda a: torch.from_numpy(a.T.copy()).to(dtype)) if weights else (lambda a: torch.from_numpy(a).to(dtype))
        p = lin.weight if weights else lin.bias
        p.data = as_torch(get(f"state.var.{i}"))
        opt.state[p] = {"step": torch.tensor(steps), "exp_avg": as_torch(get(f"state.m.{i}")),
                        "exp_avg_sq": as_torch(get(f"state.v.{i}"))}
        params.append((var["name"], p, weights))
    x, order = torch.from_numpy(train).to(dtype), torch.from_numpy(get("state.order").astype(np.int64))
    batch, losses = meta["config"]["batch_size"], []
    for i in range(0, len(x), batch):
        loss = -model.log_prob(x[order[i : i + batch]]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    values = [(name, (p.data.numpy().T if w else p.data.numpy()).astype(np.float64)) for name, p, w in params]
    return values, losses


def compare(got, want, before):
    """The largest difference over the variables relative to the epoch's own change of each, with its variable, and
    the median of the variables' relative differences."""
    rel = [(float(np.abs(g - w).max() / max(np.abs(w - b).max(), 1e-30)), name)
           for (name, g), w, b in zip(got, want, before)]
    return max(rel), float(np.median([r for r, _ in rel]))


def main():
    run, split, after = sys.argv[1:4]
    meta, get = parity.read_run(run)
    if meta["lab"] != "Flow" or meta["config"]["kind"] != "RealNvp":
        sys.exit(f"{run} is not a RealNVP run")
    _, train, _ = parity.read_split(split)
    f32, losses32 = epoch(meta, get, train, torch.float32)
    f64, losses64 = epoch(meta, get, train, torch.float64)
    _, get_after = parity.read_run(after)
    n = len(meta["resume"]["variables"])
    app = [(name, get_after(f"state.var.{i}").astype(np.float64)) for i, (name, _) in enumerate(f32)]
    before = [get(f"state.var.{i}").astype(np.float64) for i in range(n)]
    print(f"{n} variables after one epoch of {len(losses32)} steps; the minibatch losses in float64: "
          + ", ".join(f"{x:.3f}" for x in losses64))
    for label, got, want in (("the app against PyTorch float32", app, [v for _, v in f32]),
                             ("the app against float64", app, [v for _, v in f64]),
                             ("PyTorch float32 against float64", f32, [v for _, v in f64])):
        (worst, name), median = compare(got, want, before)
        print(f"{label}: largest difference {worst:.2e} of the epoch's own change ({name}), median {median:.2e}")


if __name__ == "__main__":
    main()
