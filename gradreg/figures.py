"""The computations behind every figure, and `run_notebooks`, which regenerates them all.

The numbered notebooks under ``notebooks/`` tell the story; they hold prose, parameters
and calls, and nothing else. Every number they show is computed by a function of this
module (or of the rest of the package) and drawn by `gradreg.plotting`, so what the
notebooks claim is importable, testable code.

Profiles size every notebook: ``smoke`` (seconds: the test suite runs it), ``quick``
(minutes: the committed figures, all notebooks together in under 20 minutes on a 2-core
CPU) and ``paper`` (the real sizes: hours). `SETTINGS` is the one table of those sizes.

    from gradreg.figures import run_notebooks
    run_notebooks("quick")                     # = python -m gradreg figures --profile quick
"""
from __future__ import annotations

import concurrent.futures
import math
import multiprocessing
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from .model import SRN, spectral_radius
from .passes import bptt
from .stats import per_example_stats
from .tasks import make_task
from .config import TrainConfig, TrainResult, resolve_device
from .engine import train

PROFILES = ("smoke", "quick", "paper")

#: the six methods of the learning-curve and long-range comparisons: (method, rule)
COMPARED = (("sgd", "top"), ("clip", "top"), ("pascanu", "top"), ("sgr", "top"), ("sgr", "random"),
            ("lstm", "top"))

SETTINGS = {
    "01_vanishing_gradients": {
        "smoke": dict(task="temporal_order", length=30, batch_size=64, hidden_size=50,
                      activations=("tanh", "relu", "identity"), radii=(0.5, 0.9, 1.0, 1.2)),
        "quick": dict(task="temporal_order", length=100, batch_size=256, hidden_size=50,
                      activations=("tanh", "relu", "identity"), radii=(0.5, 0.8, 0.95, 1.0, 1.05, 1.2)),
        "paper": dict(task="temporal_order", length=200, batch_size=1000, hidden_size=50,
                      activations=("tanh", "relu", "identity"), radii=(0.5, 0.8, 0.95, 1.0, 1.05, 1.2)),
    },
    "02_per_example_estimation": {
        "smoke": dict(check_length=12, check_batch=4, score_lengths=(10, 20, 40), score_batch=256,
                      train_length=10, train_iterations=100, timing_length=20, timing_batches=(4, 16),
                      timing_repeats=1, loop_max_batch=16),
        "quick": dict(check_length=30, check_batch=16, score_lengths=(25, 50, 100), score_batch=2048,
                      train_length=20, train_iterations=1500, timing_length=50,
                      timing_batches=(8, 32, 128), timing_repeats=3, loop_max_batch=128),
        "paper": dict(check_length=50, check_batch=32, score_lengths=(50, 100, 200), score_batch=10_000,
                      train_length=50, train_iterations=20_000, timing_length=100,
                      timing_batches=(8, 32, 128, 512), timing_repeats=5, loop_max_batch=512),
    },
    "03_minibatch_theory": {
        "smoke": dict(length=20, gram_pool=32, subsets=10, noise_pool=512, noise_sizes=(1, 2, 4, 8, 16),
                      rules=("random", "top", "band", "weighted", "greedy"), pool_factors=(1, 2, 4),
                      batch_size=20, repeats=4),
        "quick": dict(length=50, gram_pool=64, subsets=30, noise_pool=4096,
                      noise_sizes=(1, 2, 4, 8, 16, 32, 64), rules=("random", "top", "band", "weighted", "greedy"),
                      pool_factors=(1, 2, 4, 8), batch_size=20, repeats=40),
        "paper": dict(length=100, gram_pool=128, subsets=100, noise_pool=16_384,
                      noise_sizes=(1, 2, 4, 8, 16, 32, 64, 128), rules=("random", "top", "band", "weighted", "greedy"),
                      pool_factors=(1, 2, 4, 8, 16), batch_size=20, repeats=200),
    },
    "04_tasks": {
        "smoke": dict(length=20), "quick": dict(length=30), "paper": dict(length=30),
    },
    "05_training": {
        "smoke": dict(task="temporal_order", length=10, seeds=2, max_iterations=150, check_every=25,
                      test_size=500, workers=1),
        "quick": dict(task="temporal_order", length=30, seeds=3, max_iterations=8000, check_every=200,
                      test_size=2000, workers=2),
        "paper": dict(task="temporal_order", length=50, seeds=5, max_iterations=50_000, check_every=100,
                      test_size=10_000, workers=None),
    },
    "07_protocols": {
        profile: dict(tasks=("adding", "temporal_order", "multiplication", "temporal_order_3bit"),
                      lengths=(50, 100), compared=("sgd", "sgr/top", "sgr/random"))
        for profile in ("smoke", "quick", "paper")
    },
    "06_long_range": {
        "smoke": dict(task="temporal_order", lengths=(10, 12), seeds=2, max_iterations=100, check_every=50,
                      test_size=500, workers=1),
        "quick": dict(task="temporal_order", lengths=(10, 20, 30), seeds=3, max_iterations=5000,
                      check_every=200, test_size=2000, workers=2),
        "paper": dict(task="temporal_order", lengths=(50, 100, 150, 200), seeds=10, max_iterations=50_000,
                      check_every=100, test_size=10_000, workers=None),
    },
}


def settings(notebook: str, profile: str) -> SimpleNamespace:
    """The sizes `notebook` runs at under `profile` (smoke, quick or paper)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; allowed: {', '.join(PROFILES)}")
    if notebook not in SETTINGS:
        raise ValueError(f"unknown notebook {notebook!r}; allowed: {', '.join(SETTINGS)}")
    return SimpleNamespace(**SETTINGS[notebook][profile])


def setup(profile: str = "quick", seed: int = 0, device: str = "auto", threads: int | None = 1,
          quiet: bool = False) -> torch.device:
    """What every notebook does first: figure style, seeds, device, CPU threads.

    threads=1 on the CPU: the recurrences are long chains of small matrix products, for
    which extra intra-op threads only spin (on a busy 2-core machine they made training
    20 times slower). Returns the torch.device to use.
    """
    from . import plotting
    from .config import MAX_SEED, check_device
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; allowed: {', '.join(PROFILES)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer in 0..{MAX_SEED}, got {seed!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer))
                                or threads < 0):
        raise ValueError(f"threads must be an integer >= 1 (0 or None: leave torch's setting), got {threads!r}")
    check_device(device)
    seed = int(seed)
    plotting.use_style()
    torch.manual_seed(seed)
    np.random.seed(seed)
    dev = resolve_device(device)
    if dev.type == "cpu" and threads:
        torch.set_num_threads(threads)
    if not quiet:
        print(f"profile={profile} seed={seed} device={dev} torch={torch.__version__} "
              f"threads={torch.get_num_threads()} python={sys.executable}")
    return dev


# =============================================================================================
# 01 vanishing gradients

def activation_gamma(activation: str) -> float:
    """gamma = max |f'(z)|: 1 for tanh, relu and identity, 1/4 for the logistic sigmoid."""
    return {"tanh": 1.0, "relu": 1.0, "identity": 1.0, "sigmoid": 0.25}[activation]


def delta_profiles(task: str = "temporal_order", length: int = 100, activations=("tanh", "relu", "identity"),
                   radii=(0.5, 0.9, 1.0, 1.1), batch_size: int = 256, hidden_size: int = 50, seed: int = 0,
                   init: str = "sparse", device="cpu", dtype=torch.float64) -> pd.DataFrame:
    """Delta profiles of untrained SRNs against the bound, one row per (activation, radius, lag).

    For each network, r_i(l) = ||delta_{i,S-1-l}|| / ||delta_{i,S-1}|| over a batch; columns:
    median, q25, q75 and max of r_i(l) over examples, bound = (gamma ||W_rec||_2)^l,
    asymptotic = rho(W_rec)^l, max_over_bound = max_i r_i(l) / bound (the bound holds
    when it is <= 1), spectral_norm = ||W_rec||_2, gamma.
    """
    t = make_task(task, length)
    rows = []
    for activation in activations:
        for radius in radii:
            g = torch.Generator().manual_seed(seed)
            model = SRN(t.input_size, hidden_size, t.output_size, activation=activation, init=init,
                        readout=t.readout, generator=g, spectral_radius=radius, dtype=dtype, device=device)
            x, y = t.sample(batch_size, generator=torch.Generator().manual_seed(seed + 1))
            stats = per_example_stats(model, t, x.to(device=device, dtype=dtype), y.to(device), norms_only=True)
            dn = stats.delta_norm.double().cpu()                       # (B, S)
            last = dn[:, -1:]
            ok = (last[:, 0] > 0) & torch.isfinite(last[:, 0])
            ratio = (dn[ok] / last[ok]).flip(1)                        # column l = lag
            gamma = activation_gamma(activation)
            norm2 = torch.linalg.matrix_norm(model.W_rec.detach().double().cpu(), ord=2).item()
            rho = spectral_radius(model.W_rec)
            lags = torch.arange(ratio.shape[1], dtype=torch.float64)
            bound = (gamma * norm2) ** lags
            q = torch.nanquantile(ratio, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64), dim=0)
            worst = ratio.max(dim=0).values
            for lag in range(ratio.shape[1]):
                rows.append(dict(activation=activation, radius=radius, lag=lag, median=q[1, lag].item(),
                                 q25=q[0, lag].item(), q75=q[2, lag].item(), max=worst[lag].item(),
                                 bound=bound[lag].item(), asymptotic=rho ** lag,
                                 max_over_bound=(worst[lag] / bound[lag]).item(), spectral_norm=norm2,
                                 spectral_radius=rho, gamma=gamma, examples=int(ok.sum())))
    return pd.DataFrame(rows)


def decay_summary(profiles: pd.DataFrame, lag: int | None = None) -> pd.DataFrame:
    """One row per network: ||W_rec||_2, rho, the median ratio at `lag` (default: the
    largest), the bound there, the per-step factors they imply (measured_rate = median
    ratio^(1/lag), bound_rate = gamma ||W_rec||_2), and whether the bound held at every lag
    for every example."""
    lag = int(profiles["lag"].max()) if lag is None else lag
    at = profiles[profiles["lag"] == lag].set_index(["activation", "radius"])
    held = profiles.groupby(["activation", "radius"])["max_over_bound"].max() <= 1 + 1e-9
    gamma = at["gamma"]
    return pd.DataFrame({"spectral_norm": at["spectral_norm"], "spectral_radius": at["spectral_radius"],
                         f"median_ratio_at_lag_{lag}": at["median"], f"bound_at_lag_{lag}": at["bound"],
                         "measured_rate": at["median"] ** (1.0 / lag), "bound_rate": gamma * at["spectral_norm"],
                         "bound_holds": held})


# =============================================================================================
# 02 per-example estimation

def make_model(task, hidden_size: int = 50, seed: int = 0, dtype=torch.float32, device="cpu", **kwargs) -> SRN:
    """An SRN sized for `task` (its readout too), initialised from `seed`."""
    return SRN(task.input_size, hidden_size, task.output_size, readout=task.readout,
               generator=torch.Generator().manual_seed(seed), dtype=dtype, device=device, **kwargs)


_ACT = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda z: z}


def autograd_reference(model: SRN, task, x: torch.Tensor, y: torch.Tensor, weights=None) -> dict:
    """Gradients of sum_i w_i E_i by plain autograd, an independent check of `bptt`.

    Each step t gets its own leaf copy of W_in, W_rec and b, all equal to the model's, so
    autograd's gradient for copy t is exactly the step-t term of the BPTT sum; and
    dE/dz_t is read off z_t. Returns step_grads {"W_in": (S, H, I), "W_rec": (S, H, H),
    "b": (S, H)}, output_grads {"W_out", "b_out"}, dz (B, S, H) = w_i delta_{i,t}, loss (B,).
    """
    f = _ACT[model.activation]
    B, S, _ = x.shape
    H = model.hidden_size
    x = x.to(model.W_in.dtype)
    w = torch.ones(B, dtype=x.dtype, device=x.device) if weights is None else weights.to(x.dtype)
    W_in = model.W_in.detach().expand(S, *model.W_in.shape).clone().requires_grad_()
    W_rec = model.W_rec.detach().expand(S, H, H).clone().requires_grad_()
    b = model.b.detach().expand(S, H).clone().requires_grad_()
    W_out = model.W_out.detach().clone().requires_grad_()
    b_out = model.b_out.detach().clone().requires_grad_()
    with torch.enable_grad():
        h = torch.zeros(B, H, dtype=x.dtype, device=x.device)
        zs, hs = [], []
        for t in range(S):
            z = x[:, t] @ W_in[t].T + h @ W_rec[t].T + b[t]
            z.retain_grad()
            h = f(z)
            zs.append(z)
            hs.append(h)
        out = h @ W_out.T + b_out if model.readout == "last" else torch.stack(hs, 1) @ W_out.T + b_out
        loss = task.loss(out, y)
        (loss * w).sum().backward()
    return dict(step_grads={"W_in": W_in.grad, "W_rec": W_rec.grad, "b": b.grad},
                output_grads={"W_out": W_out.grad, "b_out": b_out.grad},
                dz=torch.stack([z.grad for z in zs], 1), loss=loss.detach())


def reference_grads(ref: dict, lag: int = 0) -> dict:
    """The full gradient (lag=0, all parameters) or the long-term component (lag > 0:
    W_in, W_rec, b from the steps t <= S-1-lag) of an `autograd_reference` result."""
    S = ref["step_grads"]["b"].shape[0]
    grads = {k: v[:S - lag].sum(0) for k, v in ref["step_grads"].items()}
    if lag == 0:
        grads.update(ref["output_grads"])
    return grads


def _relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    scale = expected.abs().max().clamp_min(1e-300)
    return ((actual - expected).abs().max() / scale).item()


def exactness_check(model: SRN, task, x, y, lag: int | None = None) -> pd.DataFrame:
    """`per_example_stats` (one batched pass) against a per-example autograd loop.

    One row per quantity: the largest relative error max|a - b| / max|b| over the batch.
    Use float64 to see the round-off floor (~1e-15).
    """
    stats = per_example_stats(model, task, x, y, lag=lag)
    lag = stats.lag
    refs = [autograd_reference(model, task, x[i:i + 1], y[i:i + 1]) for i in range(x.shape[0])]
    ref_full = [reference_grads(r, 0) for r in refs]
    ref_lt = [reference_grads(r, lag) for r in refs]
    rows = [("loss", stats.loss, torch.cat([r["loss"] for r in refs])),
            ("delta_norm (every step)", stats.delta_norm,
             torch.cat([r["dz"].norm(dim=-1) for r in refs]))]
    for name in stats.grads:
        rows.append((f"grads[{name}]", stats.grads[name], torch.stack([g[name] for g in ref_full])))
    for name in stats.long_term_grads:
        rows.append((f"long_term_grads[{name}]", stats.long_term_grads[name],
                     torch.stack([g[name] for g in ref_lt])))

    def norms(gs):
        return torch.stack([torch.sqrt(sum((v ** 2).sum() for v in g.values())) for g in gs])
    rows.append(("grad_norm", stats.grad_norm, norms(ref_full)))
    rows.append(("long_term_norm", stats.long_term_norm, norms(ref_lt)))
    return pd.DataFrame([dict(quantity=q, max_relative_error=_relative_error(a, b), dtype=str(a.dtype))
                         for q, a, b in rows])


def long_term_scores(model: SRN, task, batch_size: int, seed: int = 0, lag: int | None = None,
                     chunk: int = 2048) -> np.ndarray:
    """s_i(tau) for `batch_size` fresh sequences (in chunks: one batched pass each)."""
    g = torch.Generator().manual_seed(seed)
    device = model.W_in.device
    out = []
    for start in range(0, batch_size, chunk):
        x, y = task.sample(min(chunk, batch_size - start), generator=g)
        stats = per_example_stats(model, task, x.to(device=device, dtype=model.W_in.dtype), y.to(device),
                                  lag=lag, norms_only=True)
        out.append(stats.long_term_norm.double().cpu().numpy())
    return np.concatenate(out)


def score_distributions(task_name: str = "temporal_order", lengths=(25, 50, 100), batch_size: int = 2048,
                        hidden_size: int = 50, seed: int = 0, device="cpu", progress: bool = False) -> pd.DataFrame:
    """Long-term scores s_i(floor(S/2)) of `batch_size` fresh sequences per length, each
    scored by an untrained SRN (sparse init, seed `seed`). Columns: length, score."""
    frames = []
    items = list(lengths)
    if progress:
        from tqdm.auto import tqdm
        items = tqdm(items, desc="lengths", leave=False)
    for T in items:
        task = make_task(task_name, T)
        model = make_model(task, hidden_size, seed, device=device)
        frames.append(pd.DataFrame({"length": T, "score": long_term_scores(model, task, batch_size, seed=seed)}))
    return pd.concat(frames, ignore_index=True)


def scores_before_after(config: TrainConfig, batch_size: int = 2048, progress: bool = False):
    """Long-term scores of the same fresh sequences under an untrained SRN and under the SRN
    `gradreg.train(config)` returns. Returns (DataFrame with columns stage, score; result)."""
    task = make_task(config.task, config.length)
    device = resolve_device(config.device)
    untrained = make_model(task, config.hidden_size, config.seed, device=device)
    result, trained = train_with_model(config, progress=progress)
    frames = [pd.DataFrame({"stage": "untrained",
                            "score": long_term_scores(untrained, task, batch_size, seed=config.seed + 1)}),
              pd.DataFrame({"stage": f"after {result.iterations} iterations ({config.method})",
                            "score": long_term_scores(trained, task, batch_size, seed=config.seed + 1)})]
    return pd.concat(frames, ignore_index=True), result


def score_summary(scores: pd.DataFrame, by: str) -> pd.DataFrame:
    """How heavy-tailed the scores are, per group: quantiles relative to the median, the
    share of the total squared score held by the top 1% and 10% of examples (1% and 10%
    for a constant score), and the excess kurtosis of log s."""
    rows = []
    for key, sub in scores.groupby(by, sort=False):
        s = sub["score"].to_numpy()
        s = s[np.isfinite(s) & (s > 0)]
        med = np.median(s)
        sq = np.sort(s ** 2)[::-1]
        total = sq.sum()
        logs = np.log(s)
        rows.append({by: key, "examples": len(s), "median": med,
                     "q10/median": np.quantile(s, 0.1) / med, "q90/median": np.quantile(s, 0.9) / med,
                     "q99/median": np.quantile(s, 0.99) / med, "max/median": s.max() / med,
                     "top 1% share of sum s^2": sq[:max(1, len(s) // 100)].sum() / total,
                     "top 10% share of sum s^2": sq[:max(1, len(s) // 10)].sum() / total,
                     "std of log10 s": np.std(logs) / np.log(10),
                     "kurtosis of log s": float(((logs - logs.mean()) ** 4).mean() / logs.var() ** 2 - 3)})
    return pd.DataFrame(rows).set_index(by)


def train_with_model(config: TrainConfig, progress: bool = False) -> tuple[TrainResult, torch.nn.Module]:
    """`gradreg.train`, also handing back the trained model."""
    result = train(config, progress=progress)
    return result, result.model


def time_call(fn, repeats: int = 3) -> float:
    """Best of `repeats` wall-clock times of fn() in seconds (after one warm-up call)."""
    fn()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def cost_benchmark(task_name: str = "temporal_order", length: int = 50, batch_sizes=(8, 32, 128),
                   hidden_size: int = 50, repeats: int = 3, loop_max_batch: int = 128, seed: int = 0,
                   device="cpu", progress: bool = True) -> pd.DataFrame:
    """Seconds per batch for four ways of getting gradients of one batch:

    - batched BPTT (gradreg): `per_example_stats`, every per-example full and long-term
      gradient and delta profile, one forward and one backward pass;
    - per-example autograd loop: one forward+backward of `SRN.forward` per sequence
      (per-example full gradients only);
    - torch.func vmap(grad): the same per-example gradients, vectorised by torch.func;
    - nn.RNN forward+backward: what a plain training step costs (the batch-mean gradient
      only, no per-example information), the yardstick.
    """
    from torch.func import functional_call, grad, vmap
    task = make_task(task_name, length)
    model = make_model(task, hidden_size, seed, device=device)
    rnn = torch.nn.RNN(task.input_size, hidden_size, batch_first=True, device=device)
    readout = torch.nn.Linear(hidden_size, task.output_size, device=device)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def one_loss(p, xi, yi):
        return task.loss(functional_call(model, p, (xi[None],)), yi[None]).sum()

    per_example_grad = vmap(grad(one_loss), in_dims=(None, 0, 0))
    rows = []
    batches = list(batch_sizes)
    if progress:
        from tqdm.auto import tqdm
        batches = tqdm(batches, desc="timing", leave=False)
    for B in batches:
        x, y = task.sample(B, generator=torch.Generator().manual_seed(seed))
        x, y = x.to(device), y.to(device)

        def batched():
            per_example_stats(model, task, x, y)

        def loop():
            for i in range(B):
                model.zero_grad(set_to_none=True)
                task.loss(model(x[i:i + 1]), y[i:i + 1]).sum().backward()

        def vmapped():
            per_example_grad(params, x, y)

        def plain():
            rnn.zero_grad(set_to_none=True)
            readout.zero_grad(set_to_none=True)
            h, _ = rnn(x)
            task.loss(readout(h[:, -1]), y).mean().backward()

        for name, fn in (("batched BPTT (gradreg)", batched), ("per-example autograd loop", loop),
                         ("torch.func vmap(grad)", vmapped),
                         ("nn.RNN forward+backward (batch mean only)", plain)):
            if name == "per-example autograd loop" and B > loop_max_batch:
                continue
            rows.append(dict(method=name, batch_size=B, length=length, seconds=time_call(fn, repeats)))
    return pd.DataFrame(rows)


# =============================================================================================
# 03 minibatch theory

def flat_grads(stats, component: str = "long_term") -> torch.Tensor:
    """(B, P): each example's gradient as one vector ("full": all parameters;
    "long_term": the lag >= tau component of W_in, W_rec, b)."""
    grads = stats.grads if component == "full" else stats.long_term_grads
    return torch.cat([g.flatten(1) for g in grads.values()], 1)


def gram_identity_check(model: SRN, task, pool: int, sizes, subsets: int, seed: int = 0,
                        lag: int | None = None) -> pd.DataFrame:
    """Statement 1: ||mean_B g||^2 = (1/n^2) sum_{i,j in B} G_ij, for random subsets B of a pool.

    predicted: from the pool's Gram matrix G = g g^T (per-example gradients of one batched
    pass); measured: an independent autograd backward pass on the subset's mean loss
    (`autograd_reference` with weights 1/n), for the full and the long-term gradient.
    """
    g = torch.Generator().manual_seed(seed)
    x, y = task.sample(pool, generator=g)
    x = x.to(device=model.W_in.device, dtype=model.W_in.dtype)
    y = y.to(model.W_in.device)
    stats = per_example_stats(model, task, x, y, lag=lag)
    lag = stats.lag
    rows = []
    for component, comp_lag in (("full", 0), ("long-term", lag)):
        G = flat_grads(stats, "full" if component == "full" else "long_term").double()
        gram = G @ G.T
        for n in sizes:
            for _ in range(subsets):
                index = torch.randperm(pool, generator=g)[:n]
                predicted = gram[index][:, index].sum().item() / n ** 2
                ref = autograd_reference(model, task, x[index], y[index],
                                         torch.full((n,), 1.0 / n, dtype=x.dtype, device=x.device))
                measured = sum((v.double() ** 2).sum() for v in reference_grads(ref, comp_lag).values()).item()
                rows.append(dict(component=component, n=n, predicted=predicted, measured=measured,
                                 relative_error=abs(predicted - measured) / max(abs(measured), 1e-300)))
    return pd.DataFrame(rows)


def triangle_check(model: SRN, task, pool: int, sizes, subsets: int, seed: int = 0,
                   lag: int | None = None, component: str = "long_term") -> pd.DataFrame:
    """Statement 2: ||mean_B g|| <= mean_{i in B} ||g_i|| on random subsets of a pool."""
    g = torch.Generator().manual_seed(seed + 7)
    x, y = task.sample(pool, generator=g)
    stats = per_example_stats(model, task, x.to(device=model.W_in.device, dtype=model.W_in.dtype),
                              y.to(model.W_in.device), lag=lag)
    G = flat_grads(stats, component).double()
    norms = G.norm(dim=1)
    rows = []
    for n in sizes:
        for _ in range(subsets):
            index = torch.randperm(pool, generator=g)[:n]
            rows.append(dict(n=n, norm_of_mean=G[index].mean(0).norm().item(),
                             mean_of_norms=norms[index].mean().item()))
    out = pd.DataFrame(rows)
    out["ratio"] = out["norm_of_mean"] / out["mean_of_norms"]
    return out


def noise_model_check(model: SRN, task, pool: int, sizes, seed: int = 0, lag: int | None = None,
                      chunk: int = 1024) -> pd.DataFrame:
    """Statement 3: E||mean_B g||^2 = ||mu||^2 + sigma^2/n for minibatches of i.i.d. sequences.

    `pool` fresh sequences are drawn; mu and sigma^2 = mean ||g_i - mu||^2 are estimated
    on all of them; the pool is then cut into disjoint minibatches of n consecutive
    sequences (so each minibatch is n independent draws, as the model assumes) and the
    mean of ||mean_B g||^2 over them is the measurement, with its standard error.
    """
    g = torch.Generator().manual_seed(seed + 11)
    device, dtype = model.W_in.device, model.W_in.dtype
    parts = {"full": [], "long-term": []}
    for start in range(0, pool, chunk):
        x, y = task.sample(min(chunk, pool - start), generator=g)
        stats = per_example_stats(model, task, x.to(device=device, dtype=dtype), y.to(device), lag=lag)
        parts["full"].append(flat_grads(stats, "full").float().cpu())
        parts["long-term"].append(flat_grads(stats, "long_term").float().cpu())
        del stats
    rows = []
    for component, chunks in parts.items():
        G = torch.cat(chunks).double()
        mu = G.mean(0)
        mu_sq = mu.pow(2).sum().item()
        sigma_sq = (G - mu).pow(2).sum(1).mean().item()
        for n in sizes:
            groups = G.shape[0] // n
            means = G[:groups * n].reshape(groups, n, -1).mean(1)
            sq = means.pow(2).sum(1)
            rows.append(dict(component=component, n=n, groups=groups, measured=sq.mean().item(),
                             stderr=(sq.std().item() / math.sqrt(groups)) if groups > 1 else float("nan"),
                             predicted=mu_sq + sigma_sq / n, mu_sq=mu_sq, sigma_sq=sigma_sq))
    return pd.DataFrame(rows)


def selection_study(model: SRN, task_name: str, length: int, rules, pool_factors, batch_size: int = 20,
                    repeats: int = 40, seed: int = 0, lag: int | None = None, progress: bool = True,
                    **rule_options) -> pd.DataFrame:
    """The minibatch long-term norm and long-term SNR under each selection rule and pool factor.

    Each repeat draws a fresh pool of M = k n sequences, scores it and selects n exactly as
    an SGR training step does (`gradreg.train`'s rule code, with TrainConfig defaults for
    the rules' options), and records the selected examples' long-term gradients g_i and
    the minibatch gradient m = sum_i w_i g_i. Per (rule, k):

    - lt_norm_*: median and quartiles of ||m|| over repeats;
    - snr: the noise model's ||mu_B||^2 / (sigma_B^2 / n), mu_B and sigma_B^2 the mean and
      variance of the selected examples' g_i;
    - snr_measured: ||E m||^2 / E||m - E m||^2 over repeats (no independence assumed).
    """
    from .engine import sgr_weights  # the harness' own rule code
    task = make_task(task_name, length)
    device, dtype = model.W_in.device, model.W_in.dtype
    combos = [(rule, k) for k in pool_factors for rule in rules]
    if progress:
        from tqdm.auto import tqdm
        combos = tqdm(combos, desc="rules x pool factors", leave=False)
    rows = []
    for rule, k in combos:
        config = TrainConfig(task=task_name, length=length, method="sgr", rule=rule, pool_factor=k,
                             batch_size=batch_size, lag=lag, seed=seed, **rule_options)
        lag_ = config.lag if config.lag is not None else task.steps // 2
        data_gen = torch.Generator().manual_seed(seed * 7919 + 1)  # the same pools for every rule
        select_gen = torch.Generator().manual_seed(seed * 7919 + 2)
        selected, minibatch = [], []
        for _ in range(repeats):
            x, y = task.sample(config.pool_size, generator=data_gen)
            rec = bptt(model, task, x.to(device=device, dtype=dtype), y.to(device))
            weights = sgr_weights(config, rec, lag_, select_gen, {})
            lt = rec.recurrent_grads(0, task.steps - lag_)
            G = torch.cat([v.flatten(1) for v in lt.values()], 1).double()
            w = weights.double()
            chosen = w > 0
            selected.append(G[chosen])
            minibatch.append(w @ G)
        S = torch.cat(selected)
        Mb = torch.stack(minibatch)
        mu = S.mean(0)
        sigma_sq = (S - mu).pow(2).sum(1).mean().item()
        m_mean = Mb.mean(0)
        norms = Mb.norm(dim=1).cpu().numpy()
        rows.append(dict(rule=rule, pool_factor=k, pool_size=config.pool_size,
                         lt_norm_median=float(np.median(norms)), lt_norm_q25=float(np.quantile(norms, 0.25)),
                         lt_norm_q75=float(np.quantile(norms, 0.75)),
                         mean_example_norm=S.norm(dim=1).mean().item(),
                         mu_sq=mu.pow(2).sum().item(), sigma_sq=sigma_sq,
                         snr=mu.pow(2).sum().item() / (sigma_sq / batch_size),
                         snr_measured=m_mean.pow(2).sum().item() / (Mb - m_mean).pow(2).sum(1).mean().item()))
    return pd.DataFrame(rows)


# =============================================================================================
# 04 tasks

def task_gallery(length: int = 30, seed: int = 0, examples: int = 1) -> list[dict]:
    """One batch of `examples` sequences of every task (x, y, positions), at `length`
    (noiseless_memorization at a length whose S stays comparable)."""
    from .tasks import TASK_NAMES
    out = []
    for k, name in enumerate(TASK_NAMES):
        L = max(5, length - 20) if name == "noiseless_memorization" else length
        task = make_task(name, L)
        x, y, positions = task.sample_with_positions(examples, generator=torch.Generator().manual_seed(seed + k))
        out.append(dict(task=task, x=x, y=y, positions=positions))
    return out


# =============================================================================================
# 05 and 06: runs

def method_configs(task: str, length: int, seeds: int, methods=COMPARED, **fields) -> list[TrainConfig]:
    """One TrainConfig per (method, rule) and seed 0..seeds-1."""
    return [TrainConfig(task=task, length=length, method=m, rule=r, seed=s, **fields)
            for (m, r) in methods for s in range(seeds)]


def label_of(config_or_row) -> str:
    from .plotting import method_label
    get = config_or_row.get if isinstance(config_or_row, dict) else lambda k: getattr(config_or_row, k)
    rule = get("rule")
    rule = None if (rule is None or (isinstance(rule, float) and math.isnan(rule))) else rule
    return method_label(get("method"), rule)


def _run_one(config: TrainConfig) -> TrainResult:
    torch.set_num_threads(1)
    return train(config)


def _init_worker():
    torch.set_num_threads(1)


def run_configs(configs, workers: int | None = 1, progress: bool = True) -> list[TrainResult]:
    """Train every config (in the given order); workers > 1 uses that many processes
    (spawned, one thread each: the runs are independent and deterministic, so the
    results are the same as in one process). workers=None: one per CPU core."""
    configs = list(configs)
    if workers is None:
        workers = os.cpu_count() or 1
    if any(resolve_device(c.device).type == "cuda" for c in configs):
        workers = 1  # one GPU: sequential
    workers = max(1, min(workers, len(configs)))
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(configs), desc="runs")
    results = [None] * len(configs)
    if workers == 1:
        for i, c in enumerate(configs):
            results[i] = train(c)
            if bar is not None:
                bar.set_postfix_str(results[i].summary()[:60])
                bar.update(1)
    else:
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool:
            futures = {pool.submit(_run_one, c): i for i, c in enumerate(configs)}
            for future in concurrent.futures.as_completed(futures):
                results[futures[future]] = future.result()
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    return results


def results_table(results) -> pd.DataFrame:
    """One row per run (TrainResult.to_row) plus its label."""
    df = pd.DataFrame([r.to_row() for r in results])
    df["label"] = [label_of(r.config) for r in results]
    return df


def curves_on_grid(results, points: int = 60, x: str = "examples") -> pd.DataFrame:
    """Every run's test error on one common grid of `x` (examples processed by default).

    Between checks the error is interpolated linearly from the run's start (where it is
    taken to be the first check's value); after a run stops solved its error stays at its
    final value (training would have stopped); after an unsolved run stops it is missing
    (and `plotting.plot_learning_curves` ends the method's median there).
    """
    top = max(r.history[x].max() for r in results if len(r.history))
    grid = np.linspace(0, top, points)
    rows = []
    for r in results:
        h = r.history
        if not len(h):
            continue
        xs = np.concatenate([[0.0], h[x].to_numpy(dtype=float)])
        err = h["test_error"].to_numpy(dtype=float)
        ys = np.concatenate([[err[0]], err])
        values = np.interp(grid, xs, ys)
        beyond = grid > xs[-1]
        values[beyond] = ys[-1] if r.solved else np.nan
        for gx, v in zip(grid, values):
            rows.append(dict(label=label_of(r.config), seed=r.config.seed, **{x: gx}, test_error=v))
    return pd.DataFrame(rows).dropna(subset=["test_error"])


def step_logs(results, labels=None) -> pd.DataFrame:
    """The per-iteration logs (TrainResult.steps) of the runs, with label and seed."""
    frames = []
    for r in results:
        label = label_of(r.config)
        if labels is not None and label not in labels:
            continue
        s = r.steps.copy()
        s["label"], s["seed"] = label, r.config.seed
        frames.append(s)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def histories(results, labels=None) -> pd.DataFrame:
    """The per-check logs (TrainResult.history: test error, spectral radius, ...) of the runs,
    with label and seed."""
    frames = []
    for r in results:
        label = label_of(r.config)
        if (labels is not None and label not in labels) or not len(r.history):
            continue
        h = r.history.copy()
        h["label"], h["seed"] = label, r.config.seed
        frames.append(h)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def final_states(results) -> pd.DataFrame:
    """Per run: solved, iterations, final test error, the spectral radius of W_rec at the
    last check and the largest and last per-check mean minibatch long-term norm."""
    rows = []
    for r in results:
        h = r.history
        rows.append(dict(label=label_of(r.config), seed=r.config.seed, solved=r.solved, iterations=r.iterations,
                         final_error=r.final_error,
                         spectral_radius=h["spectral_radius"].iloc[-1] if len(h) else float("nan"),
                         max_long_term_norm=h["minibatch_long_term_norm"].max() if len(h) else float("nan"),
                         last_long_term_norm=h["minibatch_long_term_norm"].iloc[-1] if len(h) else float("nan")))
    return pd.DataFrame(rows)


def long_term_gain(steps: pd.DataFrame, label: str = "sgr/top", reference: str = "sgr/random") -> dict:
    """Median over seeds and shared iterations of the ratio of the minibatch long-term norms
    of two methods, iteration by iteration (same seed, same iteration): over all of them and
    over the first and second half of the iterations."""
    a = steps[steps["label"] == label].set_index(["seed", "iteration"])["minibatch_long_term_norm"]
    b = steps[steps["label"] == reference].set_index(["seed", "iteration"])["minibatch_long_term_norm"]
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    joined = joined[joined["b"] > 0]
    iterations = int(joined.index.get_level_values("iteration").max()) if len(joined) else 0
    ratio = joined["a"] / joined["b"]
    it = joined.index.get_level_values("iteration")
    half = iterations // 2

    def median(values):
        return float(values.median()) if len(values) else float("nan")
    return {"median_ratio": median(ratio), "first_half": median(ratio[it <= half]),
            "second_half": median(ratio[it > half]), "iterations": iterations, "pairs": len(joined)}


def run_summary(table: pd.DataFrame, by=("label",)) -> pd.DataFrame:
    """Per method (and length): runs, solved, success rate with its 95% Wilson interval,
    median iterations / examples / seconds over the solved runs, diverged count."""
    from .analysis import wilson_interval
    from .plotting import ordered
    rows = []
    for key, sub in table.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        solved_runs = sub[sub["solved"].astype(bool)]
        k, n = int(len(solved_runs)), int(len(sub))
        low, high = wilson_interval(k, n)
        rows.append({**dict(zip(by, key)), "runs": n, "solved": k, "rate": k / n if n else float("nan"),
                     "low": low, "high": high,
                     "median_iterations": solved_runs["iterations"].median() if k else float("nan"),
                     "median_examples": solved_runs["examples"].median() if k else float("nan"),
                     "median_seconds": solved_runs["seconds"].median() if k else float("nan"),
                     "diverged": int(sub["diverged"].astype(bool).sum())})
    out = pd.DataFrame(rows)
    if "label" in by and len(out):
        order = {label: i for i, label in enumerate(ordered(out["label"]))}
        out = out.sort_values(["label"] + [b for b in by if b != "label"],
                              key=lambda c: c.map(order) if c.name == "label" else c, kind="stable")
    return out.reset_index(drop=True)


# =============================================================================================
# 06 long range: results files

def find_results(results: str = "auto", results_dir="../data/results", profile: str = "paper") -> Path | None:
    """Which sweep results file to read: `results` may be a path, "compute" (none), or
    "auto": the committed evidence results_dir/paper.csv if it exists, else
    results_dir/<profile>.csv if it exists, else none (the notebook computes its own runs)."""
    if results == "compute":
        return None
    if results != "auto":
        path = Path(results)
        if not path.is_file():
            raise ValueError(f"results file {str(path)!r} does not exist; allowed: a CSV path, 'auto', 'compute'")
        return path
    for name in ("paper", profile):
        path = Path(results_dir) / f"{name}.csv"
        if path.is_file():
            return path
    return None


def load_results(path) -> pd.DataFrame:
    """A sweep's results CSV (`gradreg.sweep.load_results`) with a `label` column; rows the
    sweep marks as errors are dropped."""
    from .sweep import load_results as sweep_load
    df = sweep_load(path)
    df = df[df["error"].fillna("").astype(str).str.strip() == ""].copy()
    df["label"] = [label_of(row) for row in df[["method", "rule"]].to_dict(orient="records")]
    return df.reset_index(drop=True)


def sweep_summary(table: pd.DataFrame) -> pd.DataFrame:
    """`gradreg.analysis.summarise(table)`: a cross-check of `run_summary`."""
    from .analysis import summarise
    return summarise(table)


def long_range_results(profile: str, results: str = "auto", results_dir="../data/results",
                       device: str = "auto", workers=None, progress: bool = True) -> tuple[pd.DataFrame, str]:
    """The runs behind the long-range figures: read from a sweep results file when one is
    found (see `find_results`), computed at `profile` otherwise. Returns (table, source)."""
    path = find_results(results, results_dir, profile)
    note = ""
    if path is not None:
        table = load_results(path)
        if len(table):
            return table, str(path)
        note = f" ({path} has no finished runs yet)"
    s = settings("06_long_range", profile)
    configs = [c for L in s.lengths for c in method_configs(
        s.task, L, s.seeds, max_iterations=s.max_iterations, check_every=s.check_every,
        test_size=s.test_size, device=device)]
    table = results_table(run_configs(configs, workers=s.workers if workers is None else workers,
                                      progress=progress))
    return table, f"computed now at profile {profile!r}{note}"


# =============================================================================================
# 07 protocols: the package's conventions (Pascanu's) against the authors' public code

def protocol_table() -> pd.DataFrame:
    """Every choice of each protocol (`gradreg.config.PROTOCOLS`, plus the settings both share),
    one row per setting, one column per protocol, and whether they differ."""
    from .config import PROTOCOL_FIELDS, PROTOCOLS
    shared = ("batch_size", "pool_factor", "activation", "test_size", "solved_error")
    configs = {name: TrainConfig(protocol=name) for name in PROTOCOLS}
    rows = []
    for setting in PROTOCOL_FIELDS + shared:
        values = {name: getattr(c, setting) for name, c in configs.items()}
        rows.append({"setting": setting, **{k: "None" if v is None else v for k, v in values.items()},
                     "differs": len({repr(v) for v in values.values()}) > 1})
    return pd.DataFrame(rows).astype({name: str for name in PROTOCOLS})


def variant_positions(tasks=("adding", "temporal_order"), lengths=(50, 100)) -> pd.DataFrame:
    """Where each task's relevant inputs can be in each variant: one row per (task, T, variant,
    marked position) with its inclusive 0-based range, the lags it implies (S-1-last .. S-1-first)
    and the wrong-answer rule."""
    from .tasks import TASK_VARIANTS
    rows = []
    for name in tasks:
        for T in lengths:
            for variant in TASK_VARIANTS[name]:
                task = make_task(name, T, variant)
                for j, (first, last) in enumerate(task.position_bounds()):
                    rows.append({"task": name, "T": T, "variant": variant, "position": f"p{j}",
                                 "first": first, "last": last, "lag_min": task.steps - 1 - last,
                                 "lag_max": task.steps - 1 - first, "wrong_when": task.wrong_when})
    return pd.DataFrame(rows)


def variant_tasks(tasks=("adding", "temporal_order"), length: int = 100) -> tuple[list, list[str]]:
    """The tasks of every variant at one length, with labels "task (variant)", for
    `plotting.plot_position_ranges`."""
    from .tasks import TASK_VARIANTS
    out = [make_task(name, length, variant) for name in tasks for variant in TASK_VARIANTS[name]]
    return out, [f"{t.name} ({t.variant})" for t in out]


def protocol_results(results_dir="../data/results", authors: str = "authors.csv",
                     paper: str = "paper.csv") -> dict[str, pd.DataFrame | None]:
    """The committed runs of each protocol: {"chernodub": table or None, "pascanu": table or
    None}, read from results_dir (None where the file does not exist or has no finished runs)."""
    out = {}
    for protocol, name in (("chernodub", authors), ("pascanu", paper)):
        path = Path(results_dir) / name
        table = load_results(path) if path.is_file() else None
        out[protocol] = table if table is not None and len(table) else None
    return out


def protocol_summary(tables: dict, compared=("sgd", "sgr/top", "sgr/random"), tasks=None, lengths=None,
                     confidence: float = 0.95) -> pd.DataFrame:
    """Both ways of reporting a cell, for each protocol's runs: as the authors report them, the
    mean test success rate (%) over networks with a t interval (`confidence`), and as the
    fraction of runs solved (test success >= 99%) with a Wilson interval. `tables` as
    `protocol_results` returns it (a run's test success: its `test_success` column, or
    100 (1 - final_error) in a file without one: the same number)."""
    from scipy import stats as st

    from .analysis import wilson_interval
    rows = []
    for protocol, table in tables.items():
        if table is None:
            continue
        df = table[table["label"].isin(compared)]
        if tasks is not None:
            df = df[df["task"].isin(tasks)]
        if lengths is not None:
            df = df[df["length"].isin(lengths)]
        success = df["test_success"] if "test_success" in df else 100 * (1 - df["final_error"])
        df = df.assign(test_success=success)
        for (task, length, label), cell in df.groupby(["task", "length", "label"], sort=True):
            n, k = len(cell), int(cell["solved"].sum())
            values = cell["test_success"].dropna()
            mean = values.mean() if len(values) else float("nan")
            half = (st.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
                    if len(values) > 1 else float("nan"))
            low, high = wilson_interval(k, n, confidence)
            rows.append({"protocol": protocol, "task": task, "length": int(length), "method": label,
                         "networks": n, "mean_test_success": mean, "ci_low": mean - half, "ci_high": mean + half,
                         "solved": k, "solved_fraction": k / n, "wilson_low": low, "wilson_high": high})
    return pd.DataFrame(rows, columns=["protocol", "task", "length", "method", "networks", "mean_test_success",
                                       "ci_low", "ci_high", "solved", "solved_fraction", "wilson_low",
                                       "wilson_high"])


# =============================================================================================
# running the notebooks

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
IMAGE_SUFFIXES = (".png", ".pdf", ".svg")


def numbered_notebooks(directory=NOTEBOOK_DIR) -> list[Path]:
    """notebooks/NN_*.ipynb in order."""
    return sorted(p for p in Path(directory).glob("[0-9][0-9]_*.ipynb"))


class NotebookFailed(RuntimeError):
    """A notebook's cell raised: the message names the notebook, the cell and the error."""


def _make_dirs(path: Path, what: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            raise ValueError(f"{what} {path} cannot be created: {blocker} is a file, not a directory; "
                             "give another directory") from None
        from .sweep import EnvironmentFault
        raise EnvironmentFault(f"cannot create {what} {path}: {exc.strerror or exc}; give a directory "
                               "you can write to") from None
    if not os.access(path, os.W_OK | os.X_OK):
        from .sweep import EnvironmentFault
        raise EnvironmentFault(f"cannot write to {what} {path}: permission denied; give a directory "
                               "you can write to")


def _ipc_kernel_manager(directory: str):
    """A kernel manager whose kernel talks over IPC (Unix sockets under `directory`) instead of
    TCP on localhost, so ipykernel has no reason for its "Kernel is running over TCP without
    encryption" warning: nothing is silenced, the warning's cause is avoided."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", os.path.join(directory, "kernel"))
            super().__init__(**kwargs)

    return IPCKernelManager


def run_notebooks(profile: str = "quick", output_dir="figures", build_dir="build", notebooks=None,
                  log=print, kernel_name: str = "python3", parameters: dict | None = None,
                  timeout: float | None = None) -> list[Path]:
    """Execute every numbered notebook with papermill at `profile`; figures go to
    `output_dir`, executed copies to `build_dir`/notebooks/. Returns the figure files written.

    The kernel is "python3", which Jupyter resolves to the interpreter running this
    function (sys.executable): run it from the project's .venv and the notebooks use the
    .venv. `notebooks`: names or paths to run a subset (default: all numbered ones).
    `parameters`: extra papermill parameters; `timeout`: seconds allowed per cell.
    A failing cell raises NotebookFailed (a RuntimeError) naming the notebook and the cell.
    The kernels run over IPC where the OS has Unix sockets (see `_ipc_kernel_manager`).
    """
    import tempfile

    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; allowed: {', '.join(PROFILES)}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    if parameters is not None and not isinstance(parameters, dict):
        raise ValueError(f"parameters must be a dict, got {type(parameters).__name__}")
    output_dir = Path(output_dir).resolve()
    build = Path(build_dir).resolve() / "notebooks"
    paths = _select_notebooks(notebooks)
    _make_dirs(output_dir, "output directory")
    _make_dirs(build, "build directory")
    written = []
    with tempfile.TemporaryDirectory(prefix="gradreg-kernels-") as sockets:
        # Unix socket paths are limited to about 100 bytes: a very long TMPDIR falls back to TCP
        ipc = os.name == "posix" and len(sockets) < 80
        engine = {"kernel_manager_class": _ipc_kernel_manager(sockets)} if ipc else {}
        for path in paths:
            before = _snapshot(output_dir)
            start = time.perf_counter()
            log(f"[{profile}] {path.name} ...")
            params = dict(profile=profile, output_dir=str(output_dir))
            params.update(parameters or {})
            try:
                papermill.execute_notebook(str(path), str(build / path.name), parameters=params,
                                           kernel_name=kernel_name, cwd=str(path.parent), progress_bar=False,
                                           log_output=False, execution_timeout=timeout, **engine)
            except PapermillExecutionError as error:
                if error.ename == "KeyboardInterrupt":  # Ctrl-C reached the kernel too
                    raise KeyboardInterrupt from None
                raise NotebookFailed(describe_failure(build / path.name, error, path.name, path)) from None
            except (CellTimeoutError, DeadKernelError) as error:
                what = "its kernel died (out of memory?)" if isinstance(error, DeadKernelError) else \
                    f"a cell ran longer than the timeout of {timeout} s"
                raise NotebookFailed(f"{path.name}: {what}: {' '.join(str(error).split())[:200]}") from None
            after = _snapshot(output_dir)
            new = sorted(p for p, stamp in after.items() if before.get(p) != stamp)
            written.extend(new)
            log(f"[{profile}] {path.name}: {time.perf_counter() - start:.1f} s, "
                f"{sum(p.suffix == '.png' for p in new)} figures")
    for p in written:
        log(f"  {p}")
    return written


def _select_notebooks(notebooks) -> list[Path]:
    available = numbered_notebooks()
    if notebooks is None:
        return available
    chosen = []
    for name in notebooks:
        p = Path(name)
        if p.is_file():
            chosen.append(p.resolve())
            continue
        stem = p.name.removesuffix(".ipynb")
        match = [a for a in available if a.stem == stem or a.stem.startswith(stem)]
        if len(match) != 1:
            raise ValueError(f"unknown notebook {name!r}; allowed: {', '.join(a.stem for a in available)}")
        chosen.append(match[0])
    return chosen


def _snapshot(directory: Path) -> dict:
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in directory.iterdir()
            if p.is_file() and p.suffix in IMAGE_SUFFIXES}


def describe_failure(executed_path: Path, error, name: str, source_path: Path | None = None) -> str:
    """'NAME: cell K failed (first line of its source): ErrorName: message', K the index of
    the failing cell in the notebook as committed (papermill's injected cells not counted)."""
    index, first_line = "?", ""
    try:
        import nbformat
        nb = nbformat.read(str(executed_path), as_version=4)
        failed = next(c for c in nb.cells if c.cell_type == "code"
                      and any(o.get("output_type") == "error" for o in c.get("outputs", [])))
        first_line = (failed.source.strip().splitlines() or [""])[0]
        index = nb.cells.index(failed)
        if source_path is not None:
            source = nbformat.read(str(source_path), as_version=4)
            index = next(k for k, c in enumerate(source.cells) if c.source == failed.source)
    except Exception:
        pass
    return (f"{name}: cell {index} failed ({first_line!r}): {getattr(error, 'ename', 'Error')}: "
            f"{getattr(error, 'evalue', error)}")
