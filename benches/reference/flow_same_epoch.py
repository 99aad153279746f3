"""Does one epoch of the app's RealNVP training equal PyTorch's, started from the same state? (issue 21)

Takes a run file the app saved (`train flow ... --epochs E --save RUN`, which holds the weights, Adam's moments and
step count, and the next epoch's minibatch order), lets PyTorch take that epoch (the same rows in the same order,
`torch.optim.Adam` with the moments and step count put in), and compares its weights with the app's own continuation
of the run (`train flow --load RUN --continue --epochs 1 --save AFTER`). The difference is printed relative to how
far the epoch moved each variable: float rounding gives about 1e-4 or less; a different gradient or update rule gives
order 1.

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


def main():
    run, split, after = sys.argv[1:4]
    meta, get = parity.read_run(run)
    if meta["lab"] != "Flow" or meta["config"]["kind"] != "RealNvp":
        sys.exit(f"{run} is not a RealNVP run")
    model = parity.RealNvp()
    opt = torch.optim.Adam(model.parameters(), lr=meta["config"]["learning_rate"], eps=meta["config"]["adam_epsilon"])
    steps = float(meta["resume"]["optimizer"]["steps"])
    params = []
    for i, var in enumerate(meta["resume"]["variables"]):
        lin, weights = parity.app_linear(model, var["name"])
        # The app stores W as [in, out] (x W), PyTorch as [out, in].
        p, as_torch = (lin.weight, lambda a: torch.from_numpy(a.T.copy())) if weights else (lin.bias, torch.from_numpy)
        p.data = as_torch(get(f"state.var.{i}"))
        opt.state[p] = {"step": torch.tensor(steps), "exp_avg": as_torch(get(f"state.m.{i}")),
                        "exp_avg_sq": as_torch(get(f"state.v.{i}"))}
        params.append((var["name"], p, weights))
    _, train, _ = parity.read_split(split)
    x, order = torch.from_numpy(train), torch.from_numpy(get("state.order").astype(np.int64))
    batch = meta["config"]["batch_size"]
    for i in range(0, len(x), batch):
        loss = -model.log_prob(x[order[i : i + batch]]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, get_after = parity.read_run(after)
    worst = (0.0, "")
    for i, (name, p, transposed) in enumerate(params):
        got = p.data.numpy().T if transposed else p.data.numpy()
        want, before = get_after(f"state.var.{i}"), get(f"state.var.{i}")
        relative = float(np.abs(got - want).max() / max(np.abs(want - before).max(), 1e-30))
        worst = max(worst, (relative, name))
    print(f"{len(params)} variables after one epoch of {len(range(0, len(x), batch))} steps: the largest difference "
          f"between PyTorch and the app is {worst[0]:.2e} of the epoch's own change ({worst[1]})")


if __name__ == "__main__":
    main()
