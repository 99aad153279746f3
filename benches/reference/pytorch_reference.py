"""The PyTorch CPU references of issues 5 and 6, timed on the machine that runs our own benches.

The issues quote PyTorch figures "on this kind of 2-core machine" (4.3 s per 60,000-image MLP VAE epoch, 8 s per
100 conv VAE steps at batch 128, 0.36 s per RealNVP epoch). This machine's speed drifts by a third from one hour to
the next, so BENCHMARKS.md compares with this script run beside `bayes-explorer bench vae` / `bench flow`, not only
with the quoted figures. Same models, batch sizes, optimisers and data shapes as ours; two threads.

Not part of the build or the tests. Needs `torch` and `numpy` (pip); run from the repository root:

    python3 benches/reference/pytorch_reference.py [mlp|conv|flow ...]
"""

import gzip
import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn

THREADS = int(os.environ.get("THREADS", "2"))
torch.set_num_threads(THREADS)
torch.manual_seed(0)


def mnist_5k():
    """The embedded MNIST 5k: 784 pixels in 0..255, then the label."""
    with gzip.open("datasets/mnist_5k.csv.gz", "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.float32)
    return rows[:, :784] / 255.0


def mlp_vae_epoch():
    """One epoch of the MLP VAE (784-512-256-2 ReLU, mirrored decoder, Bernoulli on binarised pixels, Adam 1e-3)
    on 60,000 images (MNIST 5k tiled), batch 128."""
    x = np.tile(mnist_5k(), (12, 1))[:60_000]
    x = torch.from_numpy((x > 0.5).astype(np.float32))
    enc = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 4))
    dec = nn.Sequential(nn.Linear(2, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 784))
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=1e-3)
    bce = nn.BCEWithLogitsLoss(reduction="sum")

    def step(batch):
        mu, logvar = enc(batch).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        recon = bce(dec(z), batch) / batch.shape[0]
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum() / batch.shape[0]
        loss = recon + kl
        opt.zero_grad()
        loss.backward()
        opt.step()

    step(x[:128])
    order = torch.randperm(60_000)
    start = time.perf_counter()
    for i in range(0, 60_000, 128):
        step(x[order[i : i + 128]])
    return time.perf_counter() - start


def conv_vae_steps():
    """100 steps of the course's convolutional VAE (models.md section 2) at batch 128: 1000 x MSE + KL, Adam 5e-4."""
    x = torch.from_numpy(mnist_5k()).reshape(-1, 1, 28, 28)

    def block(conv, channels):
        return [conv, nn.BatchNorm2d(channels), nn.LeakyReLU(0.3)]

    enc = nn.Sequential(
        *block(nn.Conv2d(1, 32, 3, 1, 1), 32),
        *block(nn.Conv2d(32, 64, 3, 2, 1), 64),
        *block(nn.Conv2d(64, 64, 3, 2, 1), 64),
        *block(nn.Conv2d(64, 64, 3, 1, 1), 64),
        nn.Flatten(),
        nn.Linear(3136, 4),
    )
    dec = nn.Sequential(
        nn.Linear(2, 3136),
        nn.Unflatten(1, (64, 7, 7)),
        *block(nn.ConvTranspose2d(64, 64, 3, 1, 1), 64),
        *block(nn.ConvTranspose2d(64, 64, 3, 2, 1, output_padding=1), 64),
        *block(nn.ConvTranspose2d(64, 32, 3, 2, 1, output_padding=1), 32),
        nn.ConvTranspose2d(32, 1, 3, 1, 1),
        nn.Sigmoid(),
    )
    opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=5e-4)

    def step(batch):
        mu, logvar = enc(batch).chunk(2, dim=1)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        recon = 1000.0 * ((dec(z) - batch) ** 2).mean()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1).mean()
        loss = recon + kl
        opt.zero_grad()
        loss.backward()
        opt.step()

    step(x[:128])
    start = time.perf_counter()
    for i in range(100):
        idx = torch.randint(0, x.shape[0], (128,))
        step(x[idx])
    return time.perf_counter() - start


def moons(n, noise, rng):
    """Two moons, standardised, as our generator writes them (outer (cos t, sin t), inner (1 - cos t, 0.5 - sin t))."""
    t = rng.uniform(0, math.pi, n)
    outer = rng.uniform(size=n) < 0.5
    x = np.where(outer, np.cos(t), 1 - np.cos(t))
    y = np.where(outer, np.sin(t), 0.5 - np.sin(t))
    pts = np.stack([x, y], 1) + noise * rng.standard_normal((n, 2))
    return ((pts - pts.mean(0)) / pts.std(0)).astype(np.float32)


def realnvp(seed=0):
    """The Keras RealNVP (6 affine couplings, scale and shift nets 4 x Dense(256, relu) -> Dense(2), tanh on the
    scale): its modules, and the negative mean log-density of points."""

    def net(out_act):
        layers = [nn.Linear(2, 256), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Linear(256, 256), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(256, 2), *([out_act] if out_act else []))

    torch.manual_seed(seed)
    masks = [torch.tensor([0.0, 1.0]) if k % 2 == 0 else torch.tensor([1.0, 0.0]) for k in range(6)]
    scales = nn.ModuleList(net(nn.Tanh()) for _ in range(6))
    shifts = nn.ModuleList(net(None) for _ in range(6))

    def log_density(x):
        log_det = torch.zeros(x.shape[0])
        for k in reversed(range(6)):
            m = masks[k]
            xm = x * m
            s, t = scales[k](xm) * (1 - m), shifts[k](xm) * (1 - m)
            x = xm + (1 - m) * (x - t) * torch.exp(-s)
            log_det = log_det - s.sum(1)
        return -0.5 * (x**2).sum(1) - math.log(2 * math.pi) + log_det

    def generate(z):
        for k in range(6):
            m = masks[k]
            zm = z * m
            s, t = scales[k](zm) * (1 - m), shifts[k](zm) * (1 - m)
            z = zm + (1 - m) * (z * torch.exp(s) + t)
        return z

    return list(scales.parameters()) + list(shifts.parameters()), log_density, generate


def realnvp_grid():
    """The 512 x 512 density grid through all 6 layers, and 262,144 samples pushed through the generation direction,
    in chunks of 32,768 points (as our bench), without gradients."""
    _, log_density, generate = realnvp()
    side = torch.linspace(-3, 3, 512)
    grid = torch.cartesian_prod(side, side)
    with torch.no_grad():
        start = time.perf_counter()
        for chunk in grid.split(32_768):
            log_density(chunk).exp()
        density = time.perf_counter() - start
        z = torch.randn(262_144, 2)
        start = time.perf_counter()
        for chunk in z.split(65_536):
            generate(chunk)
        push = time.perf_counter() - start
    return density, push


def realnvp_epoch():
    """One epoch of the Keras RealNVP (6 affine couplings, scale and shift nets 4 x Dense(256, relu) -> Dense(2),
    tanh on the scale, Adam 1e-4) on 2,400 moons points, batch 256, with the held-out NLL of 600 at its end."""
    rng = np.random.default_rng(0)
    data = torch.from_numpy(moons(3000, 0.05, rng))
    train, held = data[:2400], data[2400:]

    params, log_density, _ = realnvp()
    opt = torch.optim.Adam(params, lr=1e-4)

    def nll(x):
        return -log_density(x).mean()

    def epoch():
        order = torch.randperm(2400)
        for i in range(0, 2400, 256):
            loss = nll(train[order[i : i + 256]])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            nll(held)

    epoch()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - start)
    return sorted(times)[1]


if __name__ == "__main__":
    which = sys.argv[1:] or ["mlp", "conv", "flow", "grid"]
    runs = {
        "mlp": ("MLP VAE epoch, 60,000 images, batch 128", mlp_vae_epoch),
        "conv": ("conv VAE, 100 steps at batch 128", conv_vae_steps),
        "flow": ("RealNVP epoch, 2,400 points, batch 256 (median of 3)", realnvp_epoch),
        "grid": ("RealNVP density on 512 x 512, and 262,144 samples generated", realnvp_grid),
    }
    for key in which:
        name, run = runs[key]
        seconds = run()
        figures = " and ".join(f"{s:.3f}" for s in seconds) if isinstance(seconds, tuple) else f"{seconds:.3f}"
        print(f"PyTorch {torch.__version__}, {THREADS} threads: {name}: {figures} s", flush=True)
