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

import json
import re
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, "benches/reference")
import parity  # noqa: E402

DTYPES = {"F32": np.float32, "U32": np.uint32, "I64": np.int64, "U64": np.uint64, "I32": np.int32}


def load(path):
    """The run file's JSON and a reader of its tensors by name."""
    blob = open(path + ".safetensors", "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    header, data = json.loads(blob[8 : 8 + n]), blob[8 + n :]

    def get(name):
        entry = header[name]
        start, end = entry["data_offsets"]
        return np.frombuffer(data[start:end], dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"]).copy()

    with open(path) as f:
        return json.load(f), get


def main():
    run, split, after = sys.argv[1:4]
    meta, get = load(run)
    if meta["lab"] != "Flow" or meta["config"]["kind"] != "RealNvp":
        sys.exit(f"{run} is not a RealNVP run")
    model = parity.RealNvp()
    opt = torch.optim.Adam(model.parameters(), lr=meta["config"]["learning_rate"], eps=meta["config"]["adam_epsilon"])
    steps = float(meta["resume"]["optimizer"]["steps"])
    params = []
    for i, var in enumerate(meta["resume"]["variables"]):
        k, net, j, what = re.match(r"layer (\d+) (scale|shift) net dense (\d+) (weights|biases)", var["name"]).groups()
        layers = [x for x in (model.scale if net == "scale" else model.shift)[int(k) - 1] if isinstance(x, torch.nn.Linear)]
        lin = layers[int(j) - 1]
        # The app stores W as [in, out] (x W), PyTorch as [out, in].
        p, as_torch = (lin.weight, lambda a: torch.from_numpy(a.T.copy())) if what == "weights" else (lin.bias, torch.from_numpy)
        p.data = as_torch(get(f"state.var.{i}"))
        opt.state[p] = {"step": torch.tensor(steps), "exp_avg": as_torch(get(f"state.m.{i}")),
                        "exp_avg_sq": as_torch(get(f"state.v.{i}"))}
        params.append((var["name"], p, what == "weights"))
    _, train, _ = parity.read_split(split)
    x, order = torch.from_numpy(train), torch.from_numpy(get("state.order").astype(np.int64))
    batch = meta["config"]["batch_size"]
    for i in range(0, len(x), batch):
        loss = -model.log_prob(x[order[i : i + batch]]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    _, get_after = load(after)
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
