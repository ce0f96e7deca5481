"""Notebook 02, per-example estimation: how heavy-tailed the long-term scores s_i(tau) are,
before and after training, and what one batched pass costs against per-example loops."""
from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import torch

from ..config import TrainConfig, resolve_device
from ..engine import train
from ..model import SRN, make_model
from ..stats import per_example_stats
from ..tasks import make_task


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
    result = train(config, progress=progress)
    trained = result.model
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

        # each is timed inside this iteration: the batch is bound as a default all the same
        def batched(x=x, y=y):
            per_example_stats(model, task, x, y)

        def loop(x=x, y=y, B=B):
            for i in range(B):
                model.zero_grad(set_to_none=True)
                task.loss(model(x[i:i + 1]), y[i:i + 1]).sum().backward()

        def vmapped(x=x, y=y):
            per_example_grad(params, x, y)

        def plain(x=x, y=y):
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
