"""What a training run is: its configuration, its sources of randomness and its result.

`TrainConfig` holds every choice of a run (docs/method.md section 7; the fields past
`device` are the choices the method leaves open, with our defaults), `Seeds` its
independent generators, `TrainResult` what `gradreg.train` returns.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import pandas as pd
import torch

from . import sampling
from .model import ACTIVATIONS, INITS
from .passes import check_lag
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
    # beyond docs/method.md section 7.1: the choices the paper leaves open (section 10.1)
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
    seconds: float          # this run's share of the wall time of the program that trained it
    final_error: float      # over the whole test set
    diverged: bool
    history: pd.DataFrame   # one row per test check (HISTORY_COLUMNS of gradreg.engine)
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


