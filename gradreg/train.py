"""One training harness for SGR and every baseline, with the solved criterion (METHOD.md 4-6).

A step of each SRN method is one batched forward + BPTT pass (`bptt`) followed by a
weighted sum of the stored per-example terms:

    sgd / clip : n fresh sequences, weights 1/n                     (+ clipping for clip)
    pascanu    : as clip, plus alpha * dOmega/dW_rec               (Pascanu SGD-CR)
    sgr        : a pool of M = k n sequences, scored, n chosen by a rule, their
                 already-computed gradients averaged: no second backward pass
    lstm       : torch.nn.LSTM through autograd, same readout, optimiser and clipping

Every `check_every` iterations the model is scored on 10,000 test sequences drawn
once per run from their own seed; the run is solved when at most 1% are wrong.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from . import sampling
from .baselines import LSTMNet, omega_grad
from .model import SRN, bptt, check_lag, spectral_radius
from .tasks import make_task

METHODS = ("sgd", "clip", "pascanu", "sgr", "lstm")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class TrainConfig:
    task: str = "temporal_order"
    length: int = 50
    method: str = "sgr"
    seed: int = 0
    hidden_size: int = 50
    batch_size: int = 20
    lr: float = 0.01
    clip: float | None = 1.0        # None or 0: no clipping; ignored by "sgd"
    rule: str = "top"               # sgr only
    pool_factor: int = 4
    lag: int | None = None          # None: floor(steps / 2)
    max_iterations: int = 50_000
    check_every: int = 100
    device: str = "auto"
    # beyond METHOD.md section 7: the choices it leaves open, with our defaults
    activation: str = "tanh"
    init: str = "sparse"
    momentum: float = 0.0
    dtype: str = "float32"
    omega_weight: float = 2.0       # pascanu: alpha of SGD-CR
    alpha: float = 1.0              # weighted: inclusion probability ~ s_i^alpha
    importance_weights: bool = False  # weighted: Horvitz-Thompson weights (unbiased for the pool mean)
    band_low: float = 0.01          # band: vanishing ratio range [band_low, band_high]
    band_high: float = 10.0
    greedy_low: float = 1.5         # greedy: target band of the minibatch long-term norm, relative
    greedy_high: float = 3.0        #   to the RMS norm of a random minibatch of the same pool
    fair_batch: bool = False        # sgd/clip/pascanu/lstm: draw pool_factor * batch_size sequences
    test_size: int = 10_000
    solved_error: float = 0.01
    max_seconds: float | None = None

    def __post_init__(self):
        validate_config(self)

    @property
    def pool_size(self) -> int:
        return self.pool_factor * self.batch_size

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate_config(c: TrainConfig) -> None:
    def choice(name, allowed):
        v = getattr(c, name)
        if v not in allowed:
            raise ValueError(f"unknown {name} {v!r}; allowed: {', '.join(allowed)}")

    def at_least(name, low):
        v = getattr(c, name)
        if not _is_int(v) or v < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")

    def positive(name, allow_none=False):
        v = getattr(c, name)
        if allow_none and v is None:
            return
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0 and math.isfinite(v)):
            raise ValueError(f"{name} must be a positive finite number, got {v!r}")

    choice("method", METHODS)
    choice("rule", sampling.RULES)
    choice("dtype", tuple(DTYPES))
    from .model import ACTIVATIONS, INITS
    choice("activation", ACTIVATIONS)
    choice("init", INITS)
    task = make_task(c.task, c.length)  # unknown task / too short: ValueError from there
    for name in ("hidden_size", "batch_size", "pool_factor", "max_iterations", "check_every", "test_size"):
        at_least(name, 1)
    if not _is_int(c.seed) or c.seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {c.seed!r}")
    check_lag(c.lag, task.steps)
    positive("lr")
    if c.clip is not None and c.clip != 0:
        positive("clip")
    positive("max_seconds", allow_none=True)
    for name in ("omega_weight", "alpha", "band_low", "band_high"):
        positive(name)
    if c.band_low > c.band_high or not 0 <= c.greedy_low <= c.greedy_high:
        raise ValueError("bands need low <= high: "
                         f"band [{c.band_low}, {c.band_high}], greedy [{c.greedy_low}, {c.greedy_high}]")
    if not 0 <= c.momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {c.momentum!r}")
    if not 0 <= c.solved_error < 1:
        raise ValueError(f"solved_error must be in [0, 1), got {c.solved_error!r}")
    if not (c.device in ("auto", "cpu") or str(c.device).startswith("cuda")):
        raise ValueError(f"unknown device {c.device!r}; allowed: auto, cpu, cuda, cuda:N")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but CUDA is not available; allowed: auto, cpu")
    return torch.device(name)


@dataclass
class TrainResult:
    config: TrainConfig
    solved: bool
    iterations: int
    examples: int
    seconds: float
    final_error: float
    diverged: bool
    history: pd.DataFrame
    steps: pd.DataFrame = field(repr=False, default=None)  # one row per iteration: the per-step log
    device: str = "cpu"
    model: torch.nn.Module | None = field(repr=False, default=None)  # the trained network

    def summary(self) -> str:
        c = self.config
        name = c.method + (f"/{c.rule}" if c.method == "sgr" else "")
        state = "diverged" if self.diverged else ("solved" if self.solved else "not solved")
        return (f"{c.task} T={c.length} {name} seed={c.seed}: {state} after {self.iterations} iterations, "
                f"{self.examples} examples, {self.seconds:.1f} s, test error {self.final_error:.4f}")

    def to_row(self) -> dict:
        c = self.config
        return {"task": c.task, "length": c.length, "method": c.method,
                "rule": c.rule if c.method == "sgr" else "", "seed": c.seed,
                "solved": self.solved, "iterations": self.iterations, "examples": self.examples,
                "seconds": round(self.seconds, 3), "final_error": self.final_error,
                "diverged": self.diverged, "device": self.device}


class Seeds:
    """Independent generators for each source of randomness of a run. The test set has a
    seed of its own (10_000_019 + seed) so that it never overlaps the training stream."""

    def __init__(self, seed: int, device: torch.device):
        self.model = torch.Generator().manual_seed(seed * 1_000 + 1)
        self.data = torch.Generator(device=device).manual_seed(seed * 1_000 + 2)
        self.select = torch.Generator().manual_seed(seed * 1_000 + 3)
        self.test = torch.Generator(device=device).manual_seed(10_000_019 + seed)


def test_error(model, task, x_test, y_test, chunk: int = 2_500) -> float:
    wrong = 0
    with torch.no_grad():
        for i in range(0, x_test.shape[0], chunk):
            wrong += int(task.wrong(model(x_test[i:i + chunk]), y_test[i:i + chunk]).sum())
    return wrong / x_test.shape[0]


def _total_norm(grads) -> torch.Tensor:
    return torch.sqrt(sum(g.pow(2).sum() for g in grads))


def train(config: TrainConfig, progress: bool = False, callback=None) -> TrainResult:
    """Train until solved, diverged, or out of iterations (or max_seconds)."""
    c = config
    device = resolve_device(c.device)
    dtype = DTYPES[c.dtype]
    task = make_task(c.task, c.length)
    lag = check_lag(c.lag, task.steps)
    seeds = Seeds(c.seed, device)
    readout = getattr(task, "readout", "last")
    if c.method == "lstm":
        model = LSTMNet(task.input_size, c.hidden_size, task.output_size, readout=readout,
                        generator=seeds.model, dtype=dtype, device=device)
    else:
        model = SRN(task.input_size, c.hidden_size, task.output_size, activation=c.activation,
                    init=c.init, readout=readout, generator=seeds.model, dtype=dtype, device=device)
    params = list(model.parameters())
    velocity = [torch.zeros_like(p) for p in params]
    x_test, y_test = task.sample(c.test_size, generator=seeds.test)
    x_test = x_test.to(dtype)

    clip = c.clip if (c.clip and c.method != "sgd") else None
    n = c.batch_size
    draw = c.pool_size if (c.method == "sgr" or c.fair_batch) else n
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=c.max_iterations, desc=f"{c.method} T={c.length} seed={c.seed}", leave=False)

    history, step_rows = [], []
    examples, it, diverged, solved = 0, 0, False, False
    error = float("nan")
    start = time.perf_counter()
    since_check = []

    def check():
        nonlocal error
        error = test_error(model, task, x_test, y_test)
        window = pd.DataFrame(since_check)
        row = {"iteration": it, "examples": examples, "seconds": time.perf_counter() - start,
               "train_loss": window["loss"].mean() if len(window) else float("nan"),
               "test_error": error, "test_counted": int(x_test.shape[0]),
               "grad_norm": window["grad_norm"].mean() if len(window) else float("nan"),
               "minibatch_long_term_norm": window["minibatch_long_term_norm"].mean() if len(window) else float("nan")}
        for q in ("pool_score_q10", "pool_score_q50", "pool_score_q90"):
            row[q] = window[q].mean() if q in window and len(window) else float("nan")
        row["spectral_radius"] = (spectral_radius(model.W_rec) if isinstance(model, SRN) else float("nan"))
        history.append(row)
        since_check.clear()
        if bar is not None:
            bar.set_postfix(test_error=f"{error:.3f}", lt_norm=f"{row['minibatch_long_term_norm']:.2e}")
        if callback is not None:
            callback(row)
        return error

    while it < c.max_iterations:
        it += 1
        x, y = task.sample(draw, generator=seeds.data)
        x = x.to(dtype)
        examples += draw
        log = {"iteration": it}
        if c.method == "lstm":
            model.zero_grad(set_to_none=True)
            loss = task.loss(model(x), y)
            loss.mean().backward()
            grads = [p.grad for p in params]
            log["loss"] = loss.mean().item()
            log["minibatch_long_term_norm"] = float("nan")
        else:
            rec = bptt(model, task, x, y, keep_u=(c.method == "pascanu"))
            if c.method == "sgr":
                weights = sgr_weights(c, task, model, rec, lag, seeds.select, log)
            else:
                weights = torch.full((draw,), 1.0 / draw, dtype=dtype, device=device)
            g = rec.batch_grads(weights)
            log["loss"] = float((rec.loss * weights).sum() / weights.sum())
            lt = rec.batch_grads(weights, lag=lag)
            log["minibatch_long_term_norm"] = _total_norm(lt.values()).item()
            if c.method == "pascanu":
                value, dW = omega_grad(model.W_rec, rec)
                g["W_rec"] = g["W_rec"] + c.omega_weight * dW
                log["omega"] = value.item()
            grads = [g[name] for name, _ in model.named_parameters()]
        norm = _total_norm(grads)
        log["grad_norm"] = norm.item()
        if not (math.isfinite(log["grad_norm"]) and math.isfinite(log["loss"])):
            diverged = True
            step_rows.append(log)
            break
        scale = min(1.0, clip / log["grad_norm"]) if clip else 1.0
        with torch.no_grad():
            for p, v, gr in zip(params, velocity, grads):
                v.mul_(c.momentum).add_(gr, alpha=scale)
                p.sub_(v, alpha=c.lr)
        step_rows.append(log)
        since_check.append(log)
        if bar is not None:
            bar.update(1)
        if it % c.check_every == 0:
            if check() <= c.solved_error:
                solved = True
                break
        if c.max_seconds and time.perf_counter() - start > c.max_seconds:
            break

    if not diverged and (not history or history[-1]["iteration"] != it):
        solved = check() <= c.solved_error
    if diverged:
        error = float("nan") if not history else history[-1]["test_error"]
        error = float("nan") if error is None else error
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - start
    return TrainResult(config=c, solved=solved and not diverged, iterations=it, examples=examples,
                       seconds=seconds, final_error=float(error) if not diverged else float("nan"),
                       diverged=diverged, history=pd.DataFrame(history),
                       steps=pd.DataFrame(step_rows), device=str(device), model=model)


def sgr_weights(c: TrainConfig, task, model, rec, lag: int, generator, log) -> torch.Tensor:
    """Score the pool from the record already computed, pick n, return dense (M,) weights."""
    M, n = rec.batch_size, c.batch_size
    scores, ratios, gram = pool_scores(rec, lag, need_gram=(c.rule == "greedy"),
                                       need_scores=(c.rule != "random"))
    if scores is not None:
        finite = scores[torch.isfinite(scores)]
        if finite.numel():
            q = torch.quantile(finite.double(), torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64,
                                                              device=finite.device))
            log["pool_score_q10"], log["pool_score_q50"], log["pool_score_q90"] = q.tolist()
    sel = sampling.select(c.rule, n, scores, ratios, gram, band=(c.band_low, c.band_high),
                          alpha=c.alpha, importance=c.importance_weights,
                          greedy_band=(c.greedy_low, c.greedy_high), generator=generator)
    return sel.pool_weights(M).to(rec.h.dtype)


def pool_scores(rec, lag: int, need_gram: bool = False, need_scores: bool = True):
    """Long-term scores s_i(lag), vanishing ratios r_i(lag) and (optionally) the Gram matrix of
    the long-term gradients, all from one BPTTRecord."""
    S = rec.steps
    delta_norm = torch.linalg.vector_norm(rec.delta, dim=2)          # (S, B)
    ratios = delta_norm[S - 1 - lag] / delta_norm[S - 1]
    if not (need_scores or need_gram):
        return None, ratios, None
    lt = rec.recurrent_grads(0, S - lag)
    flat = torch.cat([g.flatten(1) for g in lt.values()], 1)
    scores = flat.pow(2).sum(1).sqrt()
    gram = flat.double() @ flat.double().T if need_gram else None
    return scores, ratios, gram
