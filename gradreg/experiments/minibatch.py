"""Notebook 03, minibatch theory: the three statements of docs/method.md section 3 checked on
real per-example gradients, and what each selection rule makes of a pool."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from ..config import TrainConfig
from ..engine import sgr_weights
from ..model import SRN
from ..passes import bptt, check_lag
from ..stats import per_example_stats
from ..tasks import make_task
from .reference import autograd_reference, reference_grads


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
    an SGR training step does (`engine.sgr_weights`, with TrainConfig's defaults for the
    rules' options unless `rule_options` gives them), and records the selected examples' long-term gradients g_i and
    the minibatch gradient m = sum_i w_i g_i. Per (rule, k):

    - lt_norm_*: median and quartiles of ||m|| over repeats;
    - snr: the noise model's ||mu_B||^2 / (sigma_B^2 / n), mu_B and sigma_B^2 the mean and
      variance of the selected examples' g_i;
    - snr_measured: ||E m||^2 / E||m - E m||^2 over repeats (no independence assumed).

    Both squared means are estimated without bias: the squared norm of an average of N draws
    exceeds the squared norm of their expectation by (their variance) / N on average. Left in,
    that adds about 1/repeats to both SNRs (N = repeats minibatches, or repeats * n examples),
    as much as a plain minibatch's whole long-term SNR at an untrained network; subtracted, an
    SNR can come out at or below 0 where the signal is smaller than the noise of its estimate.
    """
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
        lag_ = check_lag(config.lag, task.steps)
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
        sigma_sq = (S - mu).pow(2).sum(1).sum().item() / (len(S) - 1)
        mu_sq = mu.pow(2).sum().item() - sigma_sq / len(S)
        m_mean = Mb.mean(0)
        m_var = (Mb - m_mean).pow(2).sum(1).sum().item() / (repeats - 1)
        norms = Mb.norm(dim=1).cpu().numpy()
        rows.append(dict(rule=rule, pool_factor=k, pool_size=config.pool_size,
                         lt_norm_median=float(np.median(norms)), lt_norm_q25=float(np.quantile(norms, 0.25)),
                         lt_norm_q75=float(np.quantile(norms, 0.75)),
                         mean_example_norm=S.norm(dim=1).mean().item(),
                         mu_sq=mu_sq, sigma_sq=sigma_sq, snr=mu_sq / (sigma_sq / batch_size),
                         snr_measured=(m_mean.pow(2).sum().item() - m_var / repeats) / m_var))
    return pd.DataFrame(rows)
