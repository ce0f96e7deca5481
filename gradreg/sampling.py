"""Sampling-based minibatch construction (SGR), docs/method.md sections 3 and 4.

Every rule takes the statistics of a candidate pool of M sequences and returns a
`Selection`: which n candidates form the minibatch and the weight of each in the
step's gradient sum_i weight_i g_i. Plain rules use weight 1/n (the mean).

The exact norm of any weighted minibatch gradient follows from the pool's Gram
matrix G_ij = <g_i, g_j>:  ||sum_i w_i g_i||^2 = w^T G w  (section 3, item 1).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
from torch import Tensor

RULES = ("top", "band", "weighted", "greedy", "random")


@dataclass
class Selection:
    index: Tensor          # (n,) long: chosen candidates of the pool
    weight: Tensor         # (n,) the weight of each in the step's gradient
    norm: float | None = None  # exact minibatch long-term norm when the rule computed it (greedy)

    def pool_weights(self, pool_size: int) -> Tensor:
        """The same selection as a dense (pool_size,) weight vector."""
        w = torch.zeros(pool_size, dtype=self.weight.dtype, device=self.weight.device)
        return w.index_put_((self.index,), self.weight, accumulate=True)


def _mean_weights(index: Tensor, dtype=torch.float64) -> Tensor:
    return torch.full((index.numel(),), 1.0 / index.numel(), dtype=dtype, device=index.device)


def _check_n(n: int, pool_size: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= pool_size:
        raise ValueError(f"minibatch size {n!r} must be an integer in 1..{pool_size} (the pool size)")


def select_top(scores: Tensor, n: int) -> Selection:
    """The n largest long-term scores s_i(tau)."""
    _check_n(n, scores.numel())
    index = torch.topk(scores, n).indices
    return Selection(index, _mean_weights(index))


def select_random(pool_size: int, n: int, generator: torch.Generator | None = None,
                  device=None) -> Selection:
    """n of M uniformly without replacement: the same-cost control with no selection."""
    _check_n(n, pool_size)
    index = torch.randperm(pool_size, generator=generator)[:n].to(device)
    return Selection(index, _mean_weights(index))


def select_band(ratios: Tensor, n: int, lo: float, hi: float,
                generator: torch.Generator | None = None) -> Selection:
    """Candidates whose vanishing ratio r_i lies in [lo, hi], n drawn uniformly among them;
    if fewer than n are inside, the rest are the candidates nearest the band (log distance,
    since ratios span orders of magnitude). Non-finite ratios count as farthest."""
    _check_n(n, ratios.numel())
    if not 0 < lo <= hi:
        raise ValueError(f"band [{lo}, {hi}] must satisfy 0 < lo <= hi")
    r = ratios.double()
    log_r = torch.log(r.clamp_min(1e-300))
    distance = torch.clamp(torch.log(torch.tensor(lo, dtype=r.dtype)) - log_r, min=0) + \
        torch.clamp(log_r - torch.log(torch.tensor(hi, dtype=r.dtype)), min=0)
    distance = torch.where(torch.isfinite(r), distance, torch.full_like(distance, float("inf")))
    distance = distance.cpu()
    inside = torch.nonzero(distance == 0).squeeze(1)
    inside = inside[torch.randperm(inside.numel(), generator=generator)]
    outside = torch.nonzero(distance > 0).squeeze(1)
    outside = outside[torch.argsort(distance[outside], stable=True)]
    index = torch.cat([inside, outside])[:n].to(ratios.device)
    return Selection(index, _mean_weights(index))


def inclusion_probabilities(scores: Tensor, n: int, alpha: float = 1.0) -> Tensor:
    """pi_i proportional to s_i^alpha, capped at 1, summing to n (each capped unit is
    certain to be drawn; the rest share what is left in proportion).

    The weights are the plain powers s_i^alpha whenever those are representable (as every
    committed run computed them, bit for bit); when they under- or overflow (alpha = 300 on
    scores of 0.01) they are taken in log space, s_i^alpha / max_j s_j^alpha =
    exp(alpha log s_i - max_j alpha log s_j), so that a large alpha puts nearly all mass on
    the largest scores instead of collapsing to equal weights. Every candidate keeps a
    relative weight of at least 1e-12: HT weights stay finite.
    """
    _check_n(n, scores.numel())
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
    base = scores.double().clamp_min(0)
    if not torch.isfinite(base).all():
        raise ValueError("weighted selection needs finite scores")
    s = base.pow(alpha)
    representable = bool(torch.isfinite(s).all()) and bool(((s > 0) | (base == 0)).all())
    if representable:
        if s.sum() <= 0:
            s = torch.ones_like(s)
        s = s.clamp_min(s.max() * 1e-12)
    else:
        log_s = torch.log(base)
        log_w = alpha * log_s                          # -inf for a zero score
        # alpha log s overflows to +-inf for alpha = 1e308, and inf - inf is NaN: then each
        # round takes log s relative to the largest uncapped score before multiplying by alpha
        overflow = not bool(torch.isfinite(log_w[base > 0]).all())
    pi = torch.zeros_like(base)
    certain = torch.zeros_like(base, dtype=torch.bool)
    for _ in range(base.numel()):
        left = n - int(certain.sum())
        if representable:
            share = s * ~certain
        else:   # relative to the largest uncapped weight, so that none underflows to an equal share
            if overflow:
                relative = alpha * (log_s - log_s.masked_fill(certain, -math.inf).max())
            else:
                rest = log_w.masked_fill(certain, -math.inf)
                relative = rest - rest.max()
            # NaN only where every uncapped score is 0 (-inf - -inf): those share alike
            relative = torch.nan_to_num(relative, nan=0.0, posinf=0.0)
            share = torch.exp(relative).clamp_min(1e-12).masked_fill(certain, 0.0)
        pi = torch.where(certain, torch.ones_like(base), left * share / share.sum())
        over = (pi > 1) & ~certain
        if not over.any():
            break
        certain |= over
    return pi.clamp(max=1.0)


def select_weighted(scores: Tensor, n: int, alpha: float = 1.0, importance: bool = False,
                    generator: torch.Generator | None = None) -> Selection:
    """n drawn without replacement with inclusion probability pi_i proportional to s_i^alpha.

    Randomised systematic PPS sampling: shuffle the pool, lay the pi_i end to end on
    [0, n) and take the units hit by u, u+1, ..., u+n-1 (u ~ U[0, 1)). Each unit is then
    drawn with probability exactly pi_i and the size is exactly n, so with importance=True
    the Horvitz-Thompson weights 1/(M pi_i) make the step an unbiased estimate of the
    pool's mean gradient. importance=False steps with the plain mean of the chosen.
    """
    M = scores.numel()
    pi = inclusion_probabilities(scores, n, alpha).cpu()
    perm = torch.randperm(M, generator=generator)
    edges = torch.cumsum(pi[perm], 0)
    edges[-1] = float(n)  # rounding: the last edge is n exactly
    u = torch.rand(1, generator=generator, dtype=torch.float64)
    points = u + torch.arange(n, dtype=torch.float64)
    hit = torch.searchsorted(edges, points, right=True).clamp(max=M - 1)
    index = perm[hit]
    weight = 1.0 / (M * pi[index]) if importance else _mean_weights(index)
    return Selection(index.to(scores.device), weight.to(scores.device))


def select_greedy(gram: Tensor, n: int, band: tuple[float, float]) -> Selection:
    """Add candidates one at a time, each maximising the exact norm of the minibatch mean,
    until that norm enters the target band [a, b]; from then on each addition is the one
    that keeps the norm nearest the band (inside it when possible), until n are chosen.

    gram: (M, M) Gram matrix of the candidates' long-term gradients.
    """
    M = gram.shape[0]
    _check_n(n, M)
    a, b = band
    if not 0 <= a <= b:
        raise ValueError(f"greedy band [{a}, {b}] must satisfy 0 <= a <= b")
    G = gram.double()
    chosen = torch.zeros(M, dtype=torch.bool, device=G.device)
    s = torch.zeros(M, dtype=G.dtype, device=G.device)   # G @ indicator(chosen)
    total = torch.zeros((), dtype=G.dtype, device=G.device)  # indicator^T G indicator
    diag = torch.diagonal(G)
    entered = False
    for k in range(1, n + 1):
        # norm^2 of the mean if candidate j is added: (total + 2 s_j + G_jj) / k^2
        cand = ((total + 2 * s + diag) / k ** 2).clamp_min(0).sqrt()
        cand = torch.where(chosen, torch.full_like(cand, float("nan")), cand)
        if not entered:
            score = cand
        else:
            distance = torch.clamp(a - cand, min=0) + torch.clamp(cand - b, min=0)
            score = -distance + 1e-12 * cand  # nearest the band; ties: the larger norm
        j = int(torch.nan_to_num(score, nan=-float("inf")).argmax())
        total = total + 2 * s[j] + G[j, j]
        s = s + G[:, j]
        chosen[j] = True
        norm = (total.clamp_min(0).sqrt() / k).item()
        entered = entered or norm >= a
    index = torch.nonzero(chosen).squeeze(1)
    return Selection(index, _mean_weights(index), norm=norm)


def minibatch_norm(gram: Tensor, weights: Tensor) -> float:
    """||sum_i w_i g_i|| from the Gram matrix, for a dense (M,) weight vector."""
    w = weights.to(gram.dtype)
    return (w @ gram @ w).clamp_min(0).sqrt().item()


def random_minibatch_rms(gram: Tensor, n: int) -> float:
    """sqrt(E ||mean_B g||^2) for B drawn uniformly without replacement (n of M), exact:
    P(i in B) = n/M and P(i, j in B) = n(n-1)/(M(M-1)) for i != j."""
    M = gram.shape[0]
    _check_n(n, M)
    G = gram.double()
    trace, total = torch.trace(G).item(), G.sum().item()
    pair = n * (n - 1) / (M * (M - 1)) if M > 1 else 0.0
    return max(((n / M) * trace + pair * (total - trace)) / n ** 2, 0.0) ** 0.5


def select(rule: str, n: int, scores: Tensor | None, ratios: Tensor, gram: Tensor | None, *,
           band: tuple[float, float] = (0.01, 10.0), alpha: float = 1.0, importance: bool = False,
           greedy_band: tuple[float, float] = (1.5, 3.0),
           generator: torch.Generator | None = None) -> Selection:
    """Choose n of the pool by `rule`, with the rule's options given (`select_for` takes them
    from a run's config, as the training step and the explorer do).

    scores: long-term scores s_i (not needed by random/band); ratios: vanishing ratios
    r_i (band); gram: Gram matrix of the long-term gradients (greedy). greedy_band is
    relative to the RMS long-term norm of a random minibatch of the same pool.
    """
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}; allowed: {', '.join(RULES)}")
    M = ratios.numel()
    if rule == "top":
        return select_top(torch.nan_to_num(scores, nan=-1.0), n)
    if rule == "random":
        return select_random(M, n, generator, device=ratios.device)
    if rule == "band":
        return select_band(ratios, n, band[0], band[1], generator)
    if rule == "weighted":
        return select_weighted(torch.nan_to_num(scores, nan=0.0, posinf=0.0), n, alpha, importance, generator)
    unit = random_minibatch_rms(gram, n)
    return select_greedy(gram, n, (greedy_band[0] * unit, greedy_band[1] * unit))


def select_for(config, scores: Tensor | None, ratios: Tensor, gram: Tensor | None,
               generator: torch.Generator | None = None) -> Selection:
    """The minibatch of one SGR step of a run: `config.batch_size` of the pool, chosen by the run's
    rule with its options (`config`: a TrainConfig). The training step (`engine.sgr_weights`) and
    the explorer both choose through here."""
    c = config
    return select(c.rule, c.batch_size, scores, ratios, gram, band=(c.band_low, c.band_high), alpha=c.alpha,
                  importance=c.importance_weights, greedy_band=(c.greedy_low, c.greedy_high), generator=generator)
