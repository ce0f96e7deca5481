"""The explorer's computation (`gradreg.explore` is its widget and drawing): everything the
explorer shows, from one parameter set.

:func:`compute` is a pure function of its parameters: one candidate pool of
M = pool_factor * batch_size sequences, ONE batched forward + BPTT pass (``gradreg.bptt``), the
long-term scores and Gram matrix from ``passes.pool_scores`` (the very function the SGR training
step uses), and what each selection rule of ``gradreg.sampling`` would make of that pool: the
delta profiles, the scores, and the long-term norm ||mean_B g^{>=tau}|| of the minibatch each
rule would choose, exact from the Gram matrix (docs/method.md section 3.1). The stochastic
rules (random, weighted, band) are drawn ``draws`` times.

    from gradreg.experiments.explorer import compute
    result = compute({"task": "adding", "length": 60, "rule": "top"})
    result["rules"]["top"]["norm"], result["rules"]["random"]["mean"]
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch

from .. import sampling
from ..config import Seeds, TrainConfig, check_memory, resolve_device
from ..model import ACTIVATION_GAMMA, SRN, check_spectral_radius
from ..model import spectral_radius as _spectral_radius
from ..passes import bptt, check_lag, pool_scores
from ..tasks import make_task

RULES = sampling.RULES
STOCHASTIC_RULES = ("random", "weighted", "band")
MAX_DRAWS = 100_000        # draws of a stochastic rule per update (each is one selection)

_TRAIN_DEFAULTS = TrainConfig.__dataclass_fields__


def _train_default(name):
    return _TRAIN_DEFAULTS[name].default


@dataclass(frozen=True)
class ExploreParams:
    """The explorer's inputs. Rule parameters default to the training harness's own."""
    task: str = "temporal_order"
    length: int = 50
    activation: str = "tanh"
    init: str = "sparse"
    spectral_radius: float | None = 0.95   # None: the initialisation's own W_rec
    hidden_size: int = 50
    lag: int | None = None                 # None: floor(steps / 2)
    rule: str = "top"                      # the rule highlighted in plots (a) and (b)
    pool_factor: int = 4
    batch_size: int = 20
    seed: int = 0
    draws: int = 100                       # draws of each stochastic rule
    alpha: float = _train_default("alpha")
    band_low: float = _train_default("band_low")
    band_high: float = _train_default("band_high")
    greedy_low: float = _train_default("greedy_low")
    greedy_high: float = _train_default("greedy_high")
    device: str = "cpu"
    dtype: str = "float64"

    @property
    def pool_size(self) -> int:
        return self.pool_factor * self.batch_size


#: The explorer's sizes for each notebook profile (the notebooks' `profile` parameter);
#: "quick" is ExploreParams' own defaults.
EXPLORER_PRESETS = {
    "smoke": dict(length=20, hidden_size=16, batch_size=8, pool_factor=2, draws=20),
    "quick": dict(),
    "paper": dict(length=100, draws=200),
}


def make_params(params=None, **overrides) -> ExploreParams:
    """An ExploreParams from a dict / ExploreParams / None plus keyword overrides, checked."""
    if params is None:
        base = {}
    elif isinstance(params, ExploreParams):
        base = dataclasses.asdict(params)
    elif isinstance(params, dict):
        base = dict(params)
    else:
        raise ValueError(f"params must be a dict or ExploreParams, got {type(params).__name__}")
    base.update(overrides)
    known = {f.name for f in dataclasses.fields(ExploreParams)}
    unknown = sorted(set(base) - known)
    if unknown:
        raise ValueError(f"unknown explorer parameter(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
    # numpy numbers are taken wherever Python numbers are (as TrainConfig does)
    base = {k: bool(v) if isinstance(v, np.bool_) else int(v) if isinstance(v, np.integer)
            else float(v) if isinstance(v, np.floating) else v for k, v in base.items()}
    p = ExploreParams(**base)
    _validate(p)
    return p


def train_config(p: ExploreParams, rule: str | None = None) -> TrainConfig:
    """The SGR training run whose first pool the explorer shows (rule: p.rule unless given)."""
    return TrainConfig(task=p.task, length=p.length, method="sgr", rule=p.rule if rule is None else rule,
                       seed=p.seed, hidden_size=p.hidden_size, batch_size=p.batch_size, pool_factor=p.pool_factor,
                       lag=p.lag, test_size=1, device=p.device, dtype=p.dtype, activation=p.activation,
                       init=p.init, alpha=p.alpha, band_low=p.band_low, band_high=p.band_high,
                       greedy_low=p.greedy_low, greedy_high=p.greedy_high)


def _validate(p: ExploreParams) -> None:
    # TrainConfig checks what a training run shares (task, length, sizes, seed, lag, the
    # rules' options, device, dtype), SRN's own check the spectral radius
    train_config(p)
    if isinstance(p.draws, bool) or not isinstance(p.draws, int) or not 1 <= p.draws <= MAX_DRAWS:
        raise ValueError(f"draws must be an integer in 1..{MAX_DRAWS}, got {p.draws!r}")
    check_spectral_radius(p.spectral_radius)
    resolve_device(p.device)


def _select(rule: str, n: int, scores, ratios, gram, p: ExploreParams, generator) -> sampling.Selection:
    """One selection by `rule`, exactly as the SGR training step makes it."""
    return sampling.select(rule, n, scores, ratios, gram, band=(p.band_low, p.band_high), alpha=p.alpha,
                           greedy_band=(p.greedy_low, p.greedy_high), generator=generator)


random_rms = sampling.random_minibatch_rms


@contextlib.contextmanager
def _threads(n: int | None):
    """Temporarily limit torch's intra-op threads. The explorer's tensors are tiny: on a
    busy machine, OpenMP threads waiting on each other made one update 20-50x slower
    (2 s instead of 45 ms on a loaded 2-core CPU), one thread never loses at these sizes."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def compute(params=None, threads: int | None = 1, **overrides) -> dict:
    """All the numbers the explorer shows, for one parameter set (pure: same params, same result).

    Returns a dict with
      params (ExploreParams), steps S, lag tau, pool_size M, batch_size n,
      delta_norm (M, S) ndarray ||dE_i/dz_t||, scores (M,) s_i(tau), ratios (M,) r_i(tau),
      full_norm (M,) per-example full gradient norm,
      spectral_radius, w_rec_norm (||W_rec||_2), gamma,
      pool_norm (long-term norm of the mean over the whole pool), random_rms (exact RMS of
      the random rule's norm), score_quantiles {q10, q50, q90},
      rules: {rule: {index (n,) ndarray, weight, norm, full_norm, triangle,
                     mean, std, draws (ndarray of norms over the draws)}},
      seconds (time spent).
    threads: torch intra-op threads while computing (None: leave torch's setting alone).
    """
    with _threads(threads):
        return _compute(make_params(params, **overrides))


def _check_memory(p: ExploreParams, task) -> None:
    """Refuse, in one line, a pool that cannot fit in memory (`train.check_memory`): the pool's
    pass, its long-term gradients and Gram matrix as an SGR step with the greedy rule, plus the
    per-example full gradients (all parameters, float64) and their Gram matrix."""
    M, H = p.pool_size, p.hidden_size
    full = M * (H * (task.input_size + H + 1) + task.output_size * (H + 1)) * (8 + 4) + M * M * 8
    config = train_config(p, rule="greedy")
    check_memory(config, extra_bytes=full)


def _compute(p: ExploreParams) -> dict:
    start = time.perf_counter()
    device = resolve_device(p.device)
    dtype = {"float32": torch.float32, "float64": torch.float64}[p.dtype]
    task = make_task(p.task, p.length)
    _check_memory(p, task)
    S = task.steps
    lag = check_lag(p.lag, S)
    M, n = p.pool_size, p.batch_size
    seeds = Seeds(p.seed, device)  # the same streams as a training run with this seed
    model = SRN(task.input_size, p.hidden_size, task.output_size, activation=p.activation,
                init=p.init, readout=getattr(task, "readout", "last"), generator=seeds.model,
                spectral_radius=p.spectral_radius, dtype=dtype, device=device)
    x, y = task.sample(M, generator=seeds.data)
    rec = bptt(model, task, x.to(dtype), y)
    scores, ratios, gram = pool_scores(rec, lag, need_gram=True, need_scores=True)
    if not (torch.isfinite(rec.delta).all() and torch.isfinite(gram).all()):
        rho = _spectral_radius(model.W_rec)
        raise ValueError(f"the network overflowed in {p.dtype}: with rho(W_rec) = {rho:.3g} and S = {S} "
                         f"steps its deltas grow like rho^S beyond the largest {p.dtype}; lower "
                         "spectral_radius or length" + (", or use dtype float64" if p.dtype == "float32" else ""))
    # per-example full gradients (all parameters) for the full-norm column
    full = rec.recurrent_grads()
    full.update(rec.output_grads())
    flat_full = torch.cat([g.flatten(1) for g in full.values()], 1).double()
    gram_full = flat_full @ flat_full.T
    delta_norm = torch.linalg.vector_norm(rec.delta, dim=2).T               # (M, S)

    with torch.no_grad():
        w_rec = model.W_rec.detach().double().cpu()
        w_rec_norm = torch.linalg.matrix_norm(w_rec, ord=2).item()
    rho = _spectral_radius(model.W_rec)

    rules = {}
    ones = torch.full((M,), 1.0 / M, dtype=torch.float64, device=gram.device)
    for rule in RULES:
        gen = torch.Generator().manual_seed(p.seed * 1_000 + 3)
        sel = _select(rule, n, scores, ratios, gram, p, gen)
        w = sel.pool_weights(M).to(gram.device)
        norm = sampling.minibatch_norm(gram, w)
        entry = {"index": sel.index.cpu().numpy(), "weight": sel.weight.cpu().numpy(), "norm": norm,
                 "full_norm": sampling.minibatch_norm(gram_full, w),
                 "triangle": float((w.cpu() * scores.double().cpu()).sum())}
        if rule in STOCHASTIC_RULES:
            norms = [norm]
            for _ in range(p.draws - 1):
                s = _select(rule, n, scores, ratios, gram, p, gen)
                norms.append(sampling.minibatch_norm(gram, s.pool_weights(M).to(gram.device)))
            draws = np.asarray(norms)
        else:
            draws = np.asarray([norm])
        entry.update(draws=draws, mean=float(draws.mean()), std=float(draws.std()))
        rules[rule] = entry

    s_np = scores.double().cpu().numpy()
    finite = s_np[np.isfinite(s_np)]
    q = np.quantile(finite, [0.1, 0.5, 0.9]) if finite.size else [float("nan")] * 3
    return {
        "params": p, "steps": S, "lag": lag, "pool_size": M, "batch_size": n,
        "delta_norm": delta_norm.double().cpu().numpy(),
        "scores": s_np, "ratios": ratios.double().cpu().numpy(),
        "full_norm": torch.diagonal(gram_full).clamp_min(0).sqrt().cpu().numpy(),
        "loss": rec.loss.double().cpu().numpy(), "readout": rec.readout,
        "spectral_radius": rho, "w_rec_norm": w_rec_norm, "gamma": ACTIVATION_GAMMA[p.activation],
        "pool_norm": sampling.minibatch_norm(gram, ones),
        "random_rms": random_rms(gram, n),
        "score_quantiles": {"q10": float(q[0]), "q50": float(q[1]), "q90": float(q[2])},
        "rules": rules,
        "seconds": time.perf_counter() - start,
    }
