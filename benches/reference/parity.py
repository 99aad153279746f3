"""Reference parity (issue 21): does each of the app's models learn as well as a plain PyTorch implementation of the
same model, trained on the same rows, seed after seed?

For every data set and seed, the app trains headless (`bayes-explorer train LAB ... --export-split DIR --json`) and
writes the exact rows it trains and tests on (standardised as it standardises them); a plain PyTorch version of the
same model, with the same architecture, optimiser, batch size, epochs and evaluation, then trains on those rows.
Each finished run is appended to a JSON-lines file, so an interrupted harness picks up where it stopped, and the
table (mean +- sd over the seeds, app against reference) is printed from that file, as Markdown and as JSON.

Labs and what is compared:
- flow: RealNVP at the app's defaults (6 couplings, scale and shift nets 4 x 256 ReLU, tanh on the scale, Adam
  1e-4, batch 256, 300 epochs, 20 % held out; the app clips each step's gradient at norm 40 and evaluates the moving
  average of its weights (decay 0.999), plain PyTorch does neither unless --reference-clip 40 --reference-average
  0.999) on two-column CSV files this script writes: two moons, two circles,
  eight Gaussians and a pinwheel, each at two noise levels (3,000 points). Figures: the exact mean negative
  log-likelihood (nats per point, in standardised units) over the training rows and over the held-out rows, after
  the last epoch.
- vae: the MLP VAE on the built-in MNIST 5k (784-512-256, 2-D latent, Bernoulli likelihood on pixels binarised at
  0.5, Adam 1e-3, batch 32, 50 epochs; --vae-batch 128 for the Keras example's batch, the app's default before
  2026-12-05; the app evaluates the moving average of its weights (decay 0.999), plain PyTorch its last step's
  unless --reference-average 0.999). Figure: the test negative ELBO, estimated as the app estimates it (one draw of
  eps per test image, a fixed generator; the mean over the test images of reconstruction + KL in nats).
- bnn: the course's BNN on the white wine (../shared/datasets/winequality-white.csv) at the app's defaults
  (11 - [8, 8] sigmoid - 1, a full-covariance Gaussian posterior per hidden layer, a deterministic output, squared error,
  closed-form KL against N(0, I) over N, RMSprop 1e-3 as Keras has it, batch 256, 12,000 steps' epochs). Figures:
  test RMSE of the 100-sample predictive mean (in the target's units), and the ratio of the mean Monte Carlo range
  on 30 % of the rows to that on all of them.

Not part of the build or the tests. Needs `torch` and `numpy` (pip) and a release build; from the repository root:

    cargo build --release --locked
    python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch numpy
    /tmp/torch/bin/python benches/reference/parity.py flow [--data moons-0.05,circles-0.05] [--seeds 1,2,3,4,5]
    /tmp/torch/bin/python benches/reference/parity.py table

Options: --out FILE (default target/parity/results.jsonl), --epochs N, --app-args "..." (extra flags for the
app, e.g. "--init keras"), --tag NAME (a label for the app's variant in the table), --reference-init keras|torch,
--vae-batch N (the VAE's batch on both sides, 32 by default), --reference-average DECAY (the VAE's too: PyTorch's
figure of the moving average of its weights, as the app's --weight-average).
The flow's also: --reference-start own|app|own,app (PyTorch from its own initial weights, or from the app's initial
weights of the same seed), --reference-schedule cosine|constant (the rate over the run, as the app's
--lr-schedule), --reference-clip NORM (PyTorch's gradient clipped as the app's --clip-norm), --reference-average DECAY
(PyTorch's figures of the moving average of its weights, as the app's --weight-average), --reference-device
cpu|cuda, --reference-orders own|app (PyTorch's minibatches in its own order, or in the order of each epoch of the
app's run of the same seed), --flow-hidden W,W,... (both sides' scale and shift nets, 256,256,256,256 by default; a
small net trains a 300-epoch run in seconds, for many seeds), --fresh N (each trained flow's NLL on N new points of its set as well,
"fresh_nll": a held-out figure without the split's noise; the app's model is read from its run file into PyTorch's,
which must give the app's held-out figure first), --jobs N (the app's runs N at a time, one core and one thread
each, beside the references; for a machine with many cores) and --sides app|reference|start (one side only, or
only the rows and initial weights both sides start from, so that the sides can run in separate processes):

    THREADS=1 python3 benches/reference/parity.py flow --data 8gaussians-0.1 --seeds 11,12,13,14 --jobs 4 \
        --reference-start own,app --reference-device cuda
"""

import argparse
import concurrent.futures
import json
import math
import os
import statistics
import subprocess
import re
import struct
import sys
import threading
import time

import numpy as np
import torch
from torch import nn

THREADS = int(os.environ.get("THREADS", "2"))
torch.set_num_threads(THREADS)
APP = os.environ.get("APP", "target/release/bayes-explorer")
WORK = "target/parity"
DEFAULT_FLOW_HIDDEN = (256, 256, 256, 256)
LOG_2PI = math.log(2.0 * math.pi)


# Data sets for the flow: two columns x, y; 3,000 points; the generator seeded per set so every run sees one file.


def moons(n, noise, rng):
    """scikit-learn's make_moons: the outer moon (cos t, sin t), the inner (1 - cos t, 1 - sin t - 0.5), t uniform
    on [0, pi] (n/2 evenly spaced points each), then N(0, noise^2) on both coordinates, rows shuffled."""
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0, math.pi, n_out)
    t_in = np.linspace(0, math.pi, n_in)
    x = np.concatenate([np.cos(t_out), 1 - np.cos(t_in)])
    y = np.concatenate([np.sin(t_out), 1 - np.sin(t_in) - 0.5])
    pts = np.stack([x, y], 1) + rng.normal(0, noise, (n, 2))
    return pts[rng.permutation(n)]


def circles(n, noise, rng, factor=0.5):
    """scikit-learn's make_circles: an outer circle of radius 1 and an inner one of radius `factor`, n/2 evenly
    spaced points each, plus N(0, noise^2), rows shuffled."""
    n_out = n // 2
    n_in = n - n_out
    a_out = np.linspace(0, 2 * math.pi, n_out, endpoint=False)
    a_in = np.linspace(0, 2 * math.pi, n_in, endpoint=False)
    x = np.concatenate([np.cos(a_out), factor * np.cos(a_in)])
    y = np.concatenate([np.sin(a_out), factor * np.sin(a_in)])
    pts = np.stack([x, y], 1) + rng.normal(0, noise, (n, 2))
    return pts[rng.permutation(n)]


def eight_gaussians(n, noise, rng):
    """Eight Gaussians of standard deviation `noise` centred evenly on the circle of radius 2 (FFJORD's toy set,
    unscaled)."""
    k = rng.integers(0, 8, n)
    centres = np.stack([np.cos(2 * math.pi * k / 8), np.sin(2 * math.pi * k / 8)], 1) * 2.0
    return centres + rng.normal(0, noise, (n, 2))


def pinwheel(n, noise, rng, arms=5, radial_sd=0.3, rate=0.25):
    """The pinwheel of Johnson et al. (2016): `arms` arms, each a Gaussian (radial sd 0.3, tangential sd
    `noise`) bent by an angle that grows with the radius."""
    k = rng.integers(0, arms, n)
    feats = rng.normal(0, 1, (n, 2)) * np.array([radial_sd, noise])
    feats[:, 0] += 1.0
    angles = 2 * math.pi * k / arms + rate * np.exp(feats[:, 0])
    c, s = np.cos(angles), np.sin(angles)
    return np.stack([c * feats[:, 0] - s * feats[:, 1], s * feats[:, 0] + c * feats[:, 1]], 1)


FLOW_SETS = {
    "moons-0.05": (moons, 0.05),
    "moons-0.1": (moons, 0.1),
    "circles-0.05": (circles, 0.05),
    "circles-0.1": (circles, 0.1),
    "8gaussians-0.1": (eight_gaussians, 0.1),
    "8gaussians-0.2": (eight_gaussians, 0.2),
    "pinwheel-0.05": (pinwheel, 0.05),
    "pinwheel-0.1": (pinwheel, 0.1),
}


def flow_csv(name):
    """Writes the named set as target/parity/data/NAME.csv (columns x, y; full precision) and returns the path."""
    make, noise = FLOW_SETS[name]
    os.makedirs(f"{WORK}/data", exist_ok=True)
    path = f"{WORK}/data/{name}.csv"
    if not os.path.exists(path):
        rng = np.random.default_rng(sum(map(ord, name)))
        pts = make(3000, noise, rng)
        np.savetxt(path, pts, delimiter=",", header="x,y", comments="", fmt="%.9g")
    return path


def fresh_rows(name, n, folder):
    """`n` new points of the named set, from a generator of their own (none of them is a row of the set's file),
    standardised as the app standardised the rows of `folder`: the app divides by the population sd of the training
    rows after subtracting their mean, an increasing map per column, so the file's rows sorted and the exported rows
    (training and held-out) sorted lie on one line per column, whose fit gives the map. For a held-out figure free of
    the split's few hard rows: the expected NLL of each trained model, to within about 0.01 nats at n = 50,000."""
    make, noise = FLOW_SETS[name]
    pts = make(n, noise, fresh_generator(name))
    slopes, intercepts = standardisation(name, folder)
    return (pts * slopes + intercepts).astype(np.float32)


def fresh_generator(name):
    """The generator of the named set's new points: seeded apart from the file's (`flow_csv`)."""
    return np.random.default_rng([sum(map(ord, name)), 2026])


def split_folder(name, seed):
    """Where the app's rows and initial weights for a flow set's (or set and widths') seed are exported."""
    return f"{WORK}/split/flow-{name.replace('/', '-')}-{seed}"


def standardisation(name, folder):
    """The app's map from the named set's file to the rows it exported to `folder`, per column: slopes and
    intercepts (see `fresh_rows`)."""
    raw = np.loadtxt(flow_csv(name), delimiter=",", skiprows=1)
    _, train, test = read_split(folder)
    exported = np.concatenate([train, test]).astype(np.float64)
    fits = [np.polyfit(np.sort(raw[:, j]), np.sort(exported[:, j]), 1) for j in range(2)]
    return np.array([f[0] for f in fits]), np.array([f[1] for f in fits])


def read_split(folder):
    """The app's exported rows: (train, test) as float32 arrays with the header's names."""

    def read(name):
        with open(f"{folder}/{name}") as f:
            header = f.readline().strip().split(",")
        return header, np.loadtxt(f"{folder}/{name}", delimiter=",", skiprows=1, dtype=np.float32, ndmin=2)

    (header, train), (_, test) = read("train.csv"), read("test.csv")
    return header, train, test


def run_app(args, core=None, json_line=True):
    """Runs the app headless and returns its final JSON line (its whole output with `json_line` False). With `core`,
    on that one core and one rayon thread (for runs side by side, one per core)."""
    env, pin = None, None
    if core is not None:
        env = dict(os.environ, RAYON_NUM_THREADS="1")

        def pin():
            os.sched_setaffinity(0, {core})

    out = subprocess.run([APP, *args], capture_output=True, text=True, check=False, env=env, preexec_fn=pin)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1]) if json_line else out.stdout


def init_linear(layer, init):
    """PyTorch's default (weights and biases U(+-1/sqrt(fan_in))) or Keras' (Glorot-uniform, zero biases)."""
    if init == "keras":
        nn.init.xavier_uniform_(layer.weight)
        nn.init.zeros_(layer.bias)


# The flow: RealNVP as the Keras example (and the app) writes it.


class RealNvp(nn.Module):
    """Affine couplings with masks [0, 1], [1, 0], ... applied from the last layer when data are pulled back:
    z = m * x + (1 - m) * (x - t(m x)) * exp(-s(m x)), log|det| = -sum (1 - m) s(m x); s ends in tanh."""

    def __init__(self, layers=6, hidden=(256, 256, 256, 256), init="torch"):
        super().__init__()
        self.masks = [torch.tensor([0.0, 1.0]) if k % 2 == 0 else torch.tensor([1.0, 0.0]) for k in range(layers)]

        def net(tanh):
            mods, width = [], 2
            for h in hidden:
                mods += [nn.Linear(width, h), nn.ReLU()]
                width = h
            mods.append(nn.Linear(width, 2))
            if tanh:
                mods.append(nn.Tanh())
            for m in mods:
                if isinstance(m, nn.Linear):
                    init_linear(m, init)
            return nn.Sequential(*mods)

        self.scale = nn.ModuleList([net(True) for _ in range(layers)])
        self.shift = nn.ModuleList([net(False) for _ in range(layers)])

    def log_prob(self, x):
        log_det = x.new_zeros(x.shape[0])
        for k in reversed(range(len(self.masks))):
            m = self.masks[k].to(x)
            rm = 1.0 - m
            xm = x * m
            s = self.scale[k](xm) * rm
            t = self.shift[k](xm) * rm
            x = rm * (x - t) * torch.exp(-s) + xm
            log_det = log_det - s.sum(1)
        return -0.5 * (x**2).sum(1) - LOG_2PI + log_det


def mean_nll(model, x):
    device = next(model.parameters()).device
    with torch.no_grad():
        return float(-model.log_prob(torch.from_numpy(x).to(device)).double().mean())


def fresh_nll(model, rows, opts, key):
    """`mean_nll` on the new points; with --fresh-points DIR each point's log-density goes to DIR as well, one
    float32 .npy a run, named by its key (set, seed, side, variant), for a look at where two models differ."""
    device = next(model.parameters()).device
    with torch.no_grad():
        log_p = model.log_prob(torch.from_numpy(rows).to(device)).double().cpu().numpy()
    if opts.fresh_points:
        os.makedirs(opts.fresh_points, exist_ok=True)
        name = "-".join(str(part).replace("/", "-") for part in key[1:])
        np.save(f"{opts.fresh_points}/{name}.npy", log_p.astype(np.float32))
    return float(-log_p.mean())


DTYPES = {"F32": np.float32, "U32": np.uint32, "I64": np.int64, "U64": np.uint64, "I32": np.int32}


def read_run(path):
    """An app run file's JSON and a reader of its tensors (`path` minus .json + .safetensors) by name."""
    blob = open(re.sub(r"\.json$", "", path) + ".safetensors", "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    header, data = json.loads(blob[8 : 8 + n]), blob[8 + n :]

    def get(name):
        entry = header[name]
        start, end = entry["data_offsets"]
        return np.frombuffer(data[start:end], dtype=DTYPES[entry["dtype"]]).reshape(entry["shape"]).copy()

    with open(path) as f:
        return json.load(f), get


def app_linear(model, name):
    """The PyTorch layer an app RealNVP variable belongs to ("layer 3 scale net dense 2 weights") and whether it is
    the weights (stored [in, out] by the app, [out, in] by PyTorch)."""
    k, net, j, what = re.match(r"layer (\d+) (scale|shift) net dense (\d+) (weights|biases)", name).groups()
    layers = [x for x in (model.scale if net == "scale" else model.shift)[int(k) - 1] if isinstance(x, nn.Linear)]
    return layers[int(j) - 1], what == "weights"


def blend_average(averages, params, decay, step):
    """The moving average after step `step` (1-based), as the app's: a = d a + (1 - d) w with
    d = min(decay, (1 + step) / (10 + step))."""
    d = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for a, p in zip(averages, params):
            a.mul_(d).add_(p, alpha=1 - d)


def load_app_weights(model, run, average=True):
    """Puts the weights of an app RealNVP run file into `model`: the model the run shows and evaluates, which is the
    moving average of its weights where the run keeps one (`--weight-average`, RealNVP's default; saved as
    "state.model.weight average of NAME"), else its weights; with `average` False, its weights (what its next step
    starts from)."""
    meta, get = read_run(run)
    kept = {name for name, _ in meta["resume"].get("model_state", [])}
    for i, var in enumerate(meta["resume"]["variables"]):
        lin, weights = app_linear(model, var["name"])
        value = get(f"state.var.{i}")
        averaged = f"weight average of {var['name']}"
        if average and averaged in kept:
            value = get(f"state.model.{averaged}").reshape(value.shape)
        with torch.no_grad():
            (lin.weight if weights else lin.bias).copy_(torch.from_numpy(value.T.copy() if weights else value))


def reference_flow(train, test, seed, epochs, init, device="cpu", start=None, schedule="constant", clip=None,
                   hidden=(256, 256, 256, 256), fresh=None, orders=None, average=None):
    """PyTorch's RealNVP trained on the app's rows: its own initial weights drawn with `seed`, or with `start` the
    weights of an app run file (the app's own initial weights, to tell the start from the rest of training). With
    schedule "cosine", step t of T takes the rate 1e-4 * (1 + cos(pi t / T)) / 2, as the app's cosine schedule. With
    `clip`, each step's whole gradient is shortened to that norm where it is longer (`clip_grad_norm_`), as the app's
    --clip-norm (RealNVP's default 40). With `fresh` (the trained model's NLL on new points, `fresh_nll` on
    `fresh_rows`), that figure too. With `orders` (`[epochs, rows]`, from `flow_orders`), each epoch takes the training
    rows in the app's own order instead of one PyTorch draws. With `average` (a decay, as the app's --weight-average),
    the figures are those of the moving average of the weights, `a = d a + (1 - d) w` after step t with
    d = min(average, (1 + t) / (10 + t)), in float32 as the app keeps it."""
    torch.manual_seed(seed)
    model = RealNvp(hidden=hidden, init=init)
    if start:
        load_app_weights(model, start, average=False)
    model.to(device)
    initial_nll = mean_nll(model, train)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    total_steps = epochs * math.ceil(len(train) / 256)
    factor = (lambda t: 0.5 * (1 + math.cos(math.pi * min(t / total_steps, 1.0)))) if schedule == "cosine" else None
    rates = torch.optim.lr_scheduler.LambdaLR(opt, factor) if factor else None
    x = torch.from_numpy(train).to(device)
    g = torch.Generator().manual_seed(seed)
    curve = []
    params = list(model.parameters())
    averages = [p.detach().clone() for p in params] if average else None
    step = 0
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=g) if orders is None else torch.from_numpy(orders[epoch])
        order = order.to(device)
        total, batches = 0.0, 0
        for i in range(0, len(x), 256):
            loss = -model.log_prob(x[order[i : i + 256]]).mean()
            opt.zero_grad()
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            if rates:
                rates.step()
            step += 1
            if averages:
                blend_average(averages, params, average, step)
            total, batches = total + loss.item(), batches + 1
        curve.append(total / batches)
    if averages:
        with torch.no_grad():
            for a, p in zip(averages, params):
                p.copy_(a)
    figures = {"train_nll": mean_nll(model, train), "heldout_nll": mean_nll(model, test)}
    if fresh is not None:
        figures["fresh_nll"] = fresh(model)
    return figures | {"largest_rise": largest_rise(curve), "initial_nll": initial_nll}


def largest_rise(curve):
    """The largest rise of the epochs' mean minibatch loss from one epoch to the next (a spike in training)."""
    return max((b - a for a, b in zip(curve, curve[1:])), default=0.0)


def flow_start(csv, folder, seed, opts):
    """The app's rows for `seed` (exported to `folder`) and its initial weights (`folder`-start.json): a one-epoch
    run at a learning rate of 1e-30, at which no step moves a float32 weight. The seed alone sets the split, so a
    full run of the same seed trains on these rows (checked after each full run)."""
    run = f"{folder}-start.json"
    if not os.path.exists(run):
        args = ["train", "flow", "--data", csv, "--columns", "x", "y", "--seed", str(seed), "--epochs", "1"]
        args += ["--lr", "1e-30", "--export-split", folder, "--save", run, "--json"]
        line = run_app(args + flow_arch_args(opts) + opts.app_args.split())
        with open(f"{folder}-start-nll.json", "w") as f:
            json.dump({"initial_nll": line["train_nll"]}, f)
    return run


def flow_orders(csv, folder, seed, opts):
    """The order in which each epoch of the app's run of `seed` takes its training rows, `[epochs, rows]`: written by
    the app before its first step (`--export-orders`, with `--prepare-only`; a flow draws nothing at random while
    it trains, so the run takes exactly these) to `folder`-orders-EPOCHS.csv, and checked against the minibatches of
    256 the file names."""
    path = f"{folder}-orders-{opts.epochs}.csv"
    if not os.path.exists(path):
        args = ["train", "flow", "--data", csv, "--columns", "x", "y", "--seed", str(seed)]
        args += ["--epochs", str(opts.epochs), "--export-orders", path, "--prepare-only"]
        run_app(args + flow_arch_args(opts) + opts.app_args.split(), json_line=False)
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    rows = len(table) // opts.epochs
    position = np.tile(np.arange(rows), opts.epochs)
    if len(table) != rows * opts.epochs or not (
        np.array_equal(table[:, 0], np.repeat(np.arange(1, opts.epochs + 1), rows))
        and np.array_equal(table[:, 1], position // 256 + 1)
    ):
        raise RuntimeError(f"{path}: not {opts.epochs} epochs of minibatches of 256")
    orders = table[:, 2].reshape(opts.epochs, rows)
    if not all(np.array_equal(np.sort(o), np.arange(rows)) for o in orders):
        raise RuntimeError(f"{path}: an epoch's order is not an order of the {rows} training rows")
    return orders


def flow_arch_args(opts):
    """The app's flags for a RealNVP narrower or wider than the default 4 x 256 (--flow-hidden)."""
    return [] if opts.flow_hidden == DEFAULT_FLOW_HIDDEN else ["--hidden", ",".join(map(str, opts.flow_hidden))]


def flow_set_name(name, opts):
    """A data set's name in the results: with a RealNVP other than 4 x 256, the widths follow it ("moons-0.05/64x4"),
    so runs of different sizes never mix in a table."""
    if opts.flow_hidden == DEFAULT_FLOW_HIDDEN:
        return name
    widths = opts.flow_hidden
    same = len(set(widths)) == 1
    return f"{name}/" + (f"{widths[0]}x{len(widths)}" if same else "-".join(map(str, widths)))


def flow_app_run(csv, folder, seed, opts, core, key):
    """The app's full run of `seed` (recorded under `key`): its figures and the largest rise of its epochs' training
    loss."""
    check, run = f"{folder}-check", f"{folder}-run.json"  # the weights go to {folder}-run.safetensors
    args = ["train", "flow", "--data", csv, "--columns", "x", "y", "--seed", str(seed)]
    args += ["--epochs", str(opts.epochs), "--export-split", check, "--save", run, "--json"]
    line = run_app(args + flow_arch_args(opts) + opts.app_args.split(), core)
    for name in ("train.csv", "test.csv"):
        with open(f"{folder}/{name}") as a, open(f"{check}/{name}") as b:
            if a.read() != b.read():
                raise RuntimeError(f"seed {seed}: the full run's {name} differs from the rows exported first")
    figures = {k: line[k] for k in ("train_nll", "heldout_nll")}
    # The run file's history holds each epoch's mean minibatch loss, as the reference's curve does.
    with open(run) as f:
        figures["largest_rise"] = largest_rise([e["metrics"]["train_nll"] for e in json.load(f)["history"]])
    with open(f"{folder}-start-nll.json") as f:
        figures |= json.load(f)  # the training rows' NLL at the initial weights
    if opts.fresh:
        figures["fresh_nll"] = app_fresh_nll(run, csv, folder, figures["heldout_nll"], opts, key)
    for path in (run, f"{folder}-run.safetensors"):
        os.remove(path)
    return figures


def app_fresh_nll(run, csv, folder, heldout_nll, opts, key):
    """The NLL of the app's trained RealNVP (its run file, loaded into PyTorch's model) on `fresh_rows`; first
    checked against the app's own held-out figure, which PyTorch's float32 pass must give to within 1e-4 (`key`
    names the run for --fresh-points)."""
    name = os.path.basename(csv).removesuffix(".csv")
    model = RealNvp(hidden=opts.flow_hidden)
    load_app_weights(model, run)
    _, _, test = read_split(folder)
    if abs(mean_nll(model, test) - heldout_nll) > 1e-4:
        raise RuntimeError(f"{run}: PyTorch gives {mean_nll(model, test)} on the held-out rows, the app {heldout_nll}")
    return fresh_nll(model, fresh_rows(name, opts.fresh, folder), opts, key)


def flow_runs(opts, done, out):
    """With --jobs N, the app's runs go N at a time, each on a core of its own with one thread (this process keeps
    the first two cores), while the references train here one after another."""
    lock = threading.Lock()

    def app_task(name, csv, folder, seed, core):
        start = time.time()
        key = ("flow", name, seed, "app", opts.tag)
        figures = flow_app_run(csv, folder, seed, opts, core, key)
        with lock:
            record(out, done, key, figures, time.time() - start)

    cores = sorted(os.sched_getaffinity(0))
    parallel = opts.jobs > 1
    app_cores = cores
    if parallel and "reference" in opts.sides:
        app_cores, own = cores[2:] or cores, cores[:2]
        os.sched_setaffinity(0, set(own))
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(opts.jobs, 1))
    pending, references = [], []
    for csv_name in opts.data.split(",") if opts.data else FLOW_SETS:
        csv = flow_csv(csv_name)
        name = flow_set_name(csv_name, opts)
        folders = {seed: split_folder(name, seed) for seed in opts.seeds}
        starts = dict(zip(opts.seeds, pool.map(lambda s: flow_start(csv, folders[s], s, opts), opts.seeds)))
        for i, seed in enumerate(opts.seeds):
            if "app" in opts.sides and ("flow", name, seed, "app", opts.tag) not in done:
                core = app_cores[len(pending) % len(app_cores)] if parallel else None
                task = pool.submit(app_task, name, csv, folders[seed], seed, core)
                pending.append(task) if parallel else task.result()
            for from_app in opts.reference_start if "reference" in opts.sides else []:
                variant = opts.reference_init + ("-from-app-start" if from_app == "app" else "")
                variant += f"-{opts.reference_schedule}" if opts.reference_schedule != "constant" else ""
                variant += f"-clip{opts.reference_clip:g}" if opts.reference_clip else ""
                variant += "-app-orders" if opts.reference_orders == "app" else ""
                variant += f"-average{opts.reference_average:g}" if opts.reference_average else ""
                variant += f"@{opts.reference_device}" if opts.reference_device != "cpu" else ""
                key = ("flow", name, seed, "reference", variant)
                references.append((key, csv_name, folders[seed], starts[seed], from_app))
            if not parallel:
                reference_jobs(references, opts, done, out, lock)
    reference_jobs(references, opts, done, out, lock)
    for task in pending:
        task.result()
    pool.shutdown()


def reference_jobs(jobs, opts, done, out, lock):
    """Trains the references queued in `jobs` (and empties it)."""
    while jobs:
        key, csv_name, folder, start_run, from_app = jobs.pop(0)
        if key in done:
            continue
        start = time.time()
        _, train, test = read_split(folder)
        seed = key[2]
        orders = None
        if opts.reference_orders == "app":
            orders = flow_orders(flow_csv(csv_name), folder, seed, opts)
            if orders.shape[1] != len(train):
                raise RuntimeError(f"seed {seed}: the app's orders are of {orders.shape[1]} rows, "
                                   f"its split has {len(train)}")
        fresh = None
        if opts.fresh:
            rows = fresh_rows(csv_name, opts.fresh, folder)
            fresh = lambda model: fresh_nll(model, rows, opts, key)  # noqa: E731
        figures = reference_flow(train, test, seed, opts.epochs, opts.reference_init, opts.reference_device,
                                 start_run if from_app == "app" else None, opts.reference_schedule, opts.reference_clip,
                                 opts.flow_hidden, fresh, orders, opts.reference_average)
        with lock:
            record(out, done, key, figures, time.time() - start)


# The VAE: the MLP VAE with the Bernoulli likelihood.


class MlpVae(nn.Module):
    def __init__(self, hidden=(512, 256), latent=2):
        super().__init__()
        enc, width = [], 784
        for h in hidden:
            enc += [nn.Linear(width, h), nn.ReLU()]
            width = h
        enc.append(nn.Linear(width, 2 * latent))
        dec, width = [], latent
        for h in reversed(hidden):
            dec += [nn.Linear(width, h), nn.ReLU()]
            width = h
        dec.append(nn.Linear(width, 784))
        self.enc, self.dec, self.latent = nn.Sequential(*enc), nn.Sequential(*dec), latent

    def neg_elbo(self, x, eps):
        """Per image: BCE(decoder logits, x) summed over pixels + KL(N(mu, sigma^2) || N(0, I)), one draw of eps."""
        mu, logvar = self.enc(x).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * eps
        recon = nn.functional.binary_cross_entropy_with_logits(self.dec(z), x, reduction="none").sum(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
        return recon + kl


def reference_vae(train, test, seed, epochs, batch, average=None):
    """The plain PyTorch MLP VAE on the app's rows; with `average` (a decay, as the app's --weight-average), the
    figure is that of the moving average of the weights, `a = d a + (1 - d) w` after step t with
    d = min(average, (1 + t) / (10 + t))."""
    torch.manual_seed(seed)
    model = MlpVae()
    params = list(model.parameters())
    averages = [p.detach().clone() for p in params] if average else None
    opt = torch.optim.Adam(params, lr=1e-3)
    x = torch.from_numpy((train > 0.5).astype(np.float32))
    step = 0
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), batch):
            rows = x[order[i : i + batch]]
            loss = model.neg_elbo(rows, torch.randn(len(rows), model.latent)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if averages:
                blend_average(averages, params, average, step)
    if averages:
        with torch.no_grad():
            for a, p in zip(averages, params):
                p.copy_(a)
    xt = torch.from_numpy((test > 0.5).astype(np.float32))
    with torch.no_grad():
        g = torch.Generator().manual_seed(1_000 + seed)
        test_neg_elbo = float(model.neg_elbo(xt, torch.randn(len(xt), model.latent, generator=g)).double().mean())
    return {"test_neg_elbo": test_neg_elbo}


def vae_runs(opts, done, out):
    for seed in opts.seeds:
        folder = f"{WORK}/split/vae-{seed}"
        key = ("vae", "mnist-5k", seed, "app", opts.tag)
        if key not in done:
            start = time.time()
            args = ["train", "vae", "--seed", str(seed), "--epochs", str(opts.epochs or 50)]
            args += ["--batch-size", str(opts.vae_batch)]
            args += ["--export-split", folder, "--json", *opts.app_args.split()]
            line = run_app(args)
            record(out, done, key, {"test_neg_elbo": line["test_neg_elbo"]}, time.time() - start)
        variant = "torch" if opts.vae_batch == 32 else f"torch-b{opts.vae_batch}"
        variant += f"-average{opts.reference_average:g}" if opts.reference_average else ""
        key = ("vae", "mnist-5k", seed, "reference", variant)
        if key not in done:
            start = time.time()
            header, train, test = read_split(folder)
            pixels = [i for i, h in enumerate(header) if h != header[-1]] if len(header) > 784 else list(range(784))
            figures = reference_vae(train[:, pixels], test[:, pixels], seed, opts.epochs or 50, opts.vae_batch,
                                    opts.reference_average)
            record(out, done, key, figures, time.time() - start)


# The BNN: the course's, two variational layers with a full-covariance Gaussian each, then a deterministic output.


class FullCovarianceDense(nn.Module):
    """z = W x + b with theta = (W, b) ~ N(mu, L L^T), L lower-triangular with diagonal softplus(.) + 1e-5; mu and
    L's free entries start at 0 (diagonal softplus(0)), as the course's notebook; one theta per forward pass."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.n_in, self.n_out = n_in, n_out
        k = n_in * n_out + n_out
        self.mu = nn.Parameter(torch.zeros(k))
        self.raw = nn.Parameter(torch.zeros(k, k))

    def scale_tril(self):
        diag = nn.functional.softplus(torch.diagonal(self.raw)) + 1e-5
        return torch.tril(self.raw, -1) + torch.diag(diag)

    def forward(self, x, eps=None):
        scale = self.scale_tril()
        eps = torch.randn(self.mu.shape[0]) if eps is None else eps
        theta = self.mu + scale @ eps
        w = theta[: self.n_in * self.n_out].reshape(self.n_in, self.n_out)
        return x @ w + theta[self.n_in * self.n_out :]

    def kl(self):
        """KL(N(mu, L L^T) || N(0, I)) in closed form."""
        scale = self.scale_tril()
        k = self.mu.shape[0]
        return 0.5 * ((scale**2).sum() + (self.mu**2).sum() - k) - torch.log(torch.diagonal(scale)).sum()


class Bnn(nn.Module):
    def __init__(self, n_in, hidden=(8, 8), y_mean=0.0):
        super().__init__()
        widths = [n_in, *hidden]
        self.hidden = nn.ModuleList([FullCovarianceDense(a, b) for a, b in zip(widths, widths[1:])])
        self.out = nn.Linear(widths[-1], 1)
        nn.init.constant_(self.out.bias, y_mean)

    def forward(self, x):
        for layer in self.hidden:
            x = torch.sigmoid(layer(x))
        return self.out(x).squeeze(1)

    def kl(self):
        return sum(layer.kl() for layer in self.hidden)


def reference_bnn(train, test, seed, epochs, samples=100):
    """Squared error (mean over the batch) + KL / N, Keras' RMSprop (rho 0.9, epsilon 1e-7), batch 256; then 100
    forward passes per test row: RMSE of their mean, and the mean over the rows of their range (max - min)."""
    torch.manual_seed(seed)
    x, y = torch.from_numpy(train[:, :-1]), torch.from_numpy(train[:, -1])
    model = Bnn(x.shape[1], y_mean=float(y.mean()))
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    n = len(x)
    for _ in range(epochs):
        order = torch.randperm(n)
        for i in range(0, n, 256):
            idx = order[i : i + 256]
            loss = ((model(x[idx]) - y[idx]) ** 2).mean() + model.kl() / n
            opt.zero_grad()
            loss.backward()
            opt.step()
    xt, yt = torch.from_numpy(test[:, :-1]), torch.from_numpy(test[:, -1]).double()
    with torch.no_grad():
        preds = torch.stack([model(xt) for _ in range(samples)]).double()  # [samples, rows]
    rmse = float(((preds.mean(0) - yt) ** 2).mean().sqrt())
    mc_range = float((preds.max(0).values - preds.min(0).values).mean())
    return {"test_rmse": rmse, "mc_range_mean": mc_range}


def bnn_runs(opts, done, out):
    """The white wine at the app's defaults, on the whole training split and on its seeded 30 %; the spread ratio
    is the 30 % run's mean Monte Carlo range over the full run's, per seed."""
    wine = "../shared/datasets/winequality-white.csv"
    for seed in opts.seeds:
        per_fraction = {}
        for fraction in ("1", "0.3"):
            folder = f"{WORK}/split/bnn-{fraction}-{seed}"
            key = ("bnn", f"white-{fraction}", seed, "app", opts.tag)
            if key not in done:
                start = time.time()
                args = ["train", "bnn", "--data", wine, "--seed", str(seed), "--train-fraction", fraction]
                args += ["--export-split", folder, "--json", *opts.app_args.split()]
                if opts.epochs:
                    args += ["--epochs", str(opts.epochs)]
                line = run_app(args)
                figures = {"test_rmse": line["test_rmse"], "mc_range_mean": line["mc_range_mean"],
                           "epochs": line["epochs"]}
                record(out, done, key, figures, time.time() - start)
            epochs = int(done[key]["epochs"])
            per_fraction[fraction] = (folder, epochs)
            key = ("bnn", f"white-{fraction}", seed, "reference", "torch")
            if key not in done:
                start = time.time()
                _, train, test = read_split(folder)
                figures = reference_bnn(train, test, seed, epochs)
                record(out, done, key, figures, time.time() - start)
        for side, variant in (("app", opts.tag), ("reference", "torch")):
            key = ("bnn", "white-ratio", seed, side, variant)
            if key not in done:
                full = done[("bnn", "white-1", seed, side, variant)]["mc_range_mean"]
                part = done[("bnn", "white-0.3", seed, side, variant)]["mc_range_mean"]
                record(out, done, key, {"spread_ratio": part / full}, 0.0)


# Results: one JSON object per line.


def load(out):
    done = {}
    if os.path.exists(out):
        with open(out) as f:
            for line in f:
                r = json.loads(line)
                done[(r["lab"], r["data"], r["seed"], r["side"], r["variant"])] = r
    return done


def record(out, done, key, figures, seconds):
    lab, data, seed, side, variant = key
    r = {"lab": lab, "data": data, "seed": seed, "side": side, "variant": variant, "seconds": round(seconds, 1)}
    r.update(figures)
    with open(out, "a") as f:
        f.write(json.dumps(r) + "\n")
    done[key] = r
    print(json.dumps(r), flush=True)


def table(done):
    """Mean +- sd over seeds of each figure, per lab, data set and variant, app rows against the reference."""
    groups = {}
    for (lab, data, seed, side, variant), r in done.items():
        groups.setdefault((lab, data), {}).setdefault((side, variant), []).append(r)
    lines = ["| lab | data | side | variant | seeds | figure | mean +- sd | worst seed |", "|---|---|---|---|---|---|---|---|"]
    summary = []
    for (lab, data), sides in sorted(groups.items()):
        for (side, variant), runs in sorted(sides.items()):
            skip = ("lab", "data", "seed", "side", "variant", "seconds")
            # Every figure any run has, in the order they first appear (figures added later have fewer seeds).
            figures = list(dict.fromkeys(k for r in runs for k in r if k not in skip))
            for fig in figures:
                runs_with = [r for r in runs if fig in r]
                values = [r[fig] for r in runs_with]
                mean = statistics.fmean(values)
                sd = statistics.stdev(values) if len(values) > 1 else 0.0
                worst = min(values) if fig.endswith("ratio") else max(values)
                seeds = ",".join(str(r["seed"]) for r in sorted(runs_with, key=lambda r: r["seed"]))
                lines.append(f"| {lab} | {data} | {side} | {variant} | {seeds} | {fig} | {mean:.3f} +- {sd:.3f} | {worst:.3f} |")
                summary.append({"lab": lab, "data": data, "side": side, "variant": variant, "figure": fig,
                                "seeds": len(values), "mean": mean, "sd": sd, "worst": worst, "values": values})
    return "\n".join(lines), summary


def main():
    p = argparse.ArgumentParser()
    p.add_argument("lab", choices=["flow", "vae", "bnn", "table"])
    p.add_argument("--data", default="")
    p.add_argument("--seeds", default="1,2,3,4,5")
    p.add_argument("--epochs", type=int, default=0)
    p.add_argument("--app-args", default="")
    p.add_argument("--tag", default="default")
    p.add_argument("--reference-init", default="torch", choices=["torch", "keras"])
    p.add_argument("--reference-start", default="own", help="flow: own (PyTorch draws its initial weights), app "
                   "(PyTorch starts from the app's initial weights of the same seed) or own,app")
    p.add_argument("--reference-clip", type=float, default=0.0, help="flow: clip PyTorch's gradient norm to this "
                   "(0: plain PyTorch, no clip; the app's RealNVP clips at 40 unless --app-args \"--clip-norm off\")")
    p.add_argument("--reference-orders", default="own", choices=["own", "app"], help="flow: PyTorch's minibatches "
                   "in an order it draws (own) or in the app's own run's order of each epoch (app; the app writes it "
                   "with --export-orders)")
    p.add_argument("--reference-average", type=float, default=0.0, help="flow and vae: PyTorch's figures of the "
                   "moving average of its weights with this decay, as the app's --weight-average (RealNVP's and the "
                   "MLP VAE's default 0.999; 0: the last step's weights, plain PyTorch)")
    p.add_argument("--reference-device", default="cpu", help="flow: where PyTorch trains (cpu, cuda)")
    p.add_argument("--reference-schedule", default="constant", choices=["constant", "cosine"], help="flow: "
                   "PyTorch's learning-rate schedule (the app's default is constant; with cosine, give the app "
                   "--app-args '--lr-schedule cosine' too)")
    p.add_argument("--flow-hidden", default="256,256,256,256", help="flow: the widths of each coupling's scale and "
                   "shift nets on both sides (the app's --hidden); runs with other widths are recorded under the "
                   "data set's name and the widths, e.g. moons-0.05/64x4")
    p.add_argument("--fresh", type=int, default=0, help="flow: also each trained model's NLL on this many new "
                   "points of the set (fresh_nll), drawn apart from the file's rows; a held-out figure without "
                   "the split's noise")
    p.add_argument("--fresh-points", default="", help="flow, with --fresh: a folder for each run's log-density "
                   "at every new point (SET-SEED-SIDE-VARIANT.npy)")
    p.add_argument("--vae-batch", type=int, default=32, help="vae: both sides' batch (the app's default 32)")
    p.add_argument("--jobs", type=int, default=1, help="flow: app runs side by side, one core each")
    p.add_argument("--sides", default="app,reference", help="flow: which sides to run (app, reference, both, "
                   "or start: only the app's rows and initial weights, which both need)")
    p.add_argument("--out", default=f"{WORK}/results.jsonl")
    opts = p.parse_args()
    opts.seeds = [int(s) for s in opts.seeds.split(",")]
    opts.reference_start = opts.reference_start.split(",")
    opts.sides = opts.sides.split(",")
    opts.flow_hidden = tuple(int(w) for w in opts.flow_hidden.split(","))
    os.makedirs(os.path.dirname(opts.out) or ".", exist_ok=True)
    done = load(opts.out)
    if opts.lab == "flow":
        opts.epochs = opts.epochs or 300
        flow_runs(opts, done, opts.out)
    elif opts.lab == "vae":
        vae_runs(opts, done, opts.out)
    elif opts.lab == "bnn":
        bnn_runs(opts, done, opts.out)
    text, summary = table(done)
    print(text)
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
