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
from .tasks import TASK_VARIANTS, VARIANTS, make_task

METHODS = ("sgd", "clip", "pascanu", "sgr", "lstm")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
LOSSES = ("task", "mse")                 # the task's own loss, or 1/2 ||o - target_vector(y)||^2
REDUCTIONS = ("mean", "sum")             # the step's gradient: mean or sum over the minibatch
MOMENTUM_FORMS = ("torch", "classical")  # v <- mu v + g, w <- w - lr v  |  v <- mu v - lr g, w <- w + v
STOPPINGS = ("test", "validation")


class _FromProtocol:
    """The default of a protocol-controlled field: "take the protocol's value"."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<protocol's>"

    def __reduce__(self):
        return (_FromProtocol, ())


#: The default of every field in PROTOCOLS: resolved to the protocol's value on construction.
FROM_PROTOCOL = _FromProtocol()

#: Every choice a protocol makes, in one word. "pascanu": the package's conventions (Pascanu et
#: al. 2013's tasks and training, METHOD.md); "chernodub": the authors' own, from their public
#: MATLAB code (github.com/achernodub/oplu_adding, issue 12): their task generators, Xavier
#: init, hidden 100, 1/2 sum ||y - t||^2 over the minibatch, momentum 0.9 with lr 1e-4 and no
#: clipping, a fixed training set of 20,000 sequences sampled with replacement, a validation
#: check of 1,000 sequences every 50 iterations keeping the network of lowest validation MSE,
#: stopping when its validation success rate exceeds 99%, at most 100,000 iterations.
PROTOCOLS = {
    "pascanu": dict(variant="pascanu", loss="task", reduction="mean", init="sparse", hidden_size=50,
                    lr=0.01, clip=1.0, momentum=0.0, momentum_form="torch", train_set_size=None,
                    validation_size=None, stopping="test", check_every=100, max_iterations=50_000),
    "chernodub": dict(variant="chernodub", loss="mse", reduction="sum", init="xavier", hidden_size=100,
                      lr=1e-4, clip=None, momentum=0.9, momentum_form="classical", train_set_size=20_000,
                      validation_size=1_000, stopping="validation", check_every=50, max_iterations=100_000),
}
#: The fields a protocol sets (each defaults to FROM_PROTOCOL).
PROTOCOL_FIELDS = tuple(PROTOCOLS["pascanu"])
assert all(tuple(p) == PROTOCOL_FIELDS for p in PROTOCOLS.values())


@dataclass
class TrainConfig:
    task: str = "temporal_order"
    length: int = 50
    method: str = "sgr"
    seed: int = 0
    hidden_size: int = FROM_PROTOCOL      # pascanu 50, chernodub 100
    batch_size: int = 20
    lr: float = FROM_PROTOCOL             # pascanu 0.01, chernodub 1e-4
    clip: float | None = FROM_PROTOCOL    # pascanu 1, chernodub None; None or 0: no clipping; ignored by "sgd"
    rule: str = "top"               # sgr only
    pool_factor: int = 4
    lag: int | None = None          # None: floor(steps / 2)
    max_iterations: int = FROM_PROTOCOL   # pascanu 50,000, chernodub 100,000
    check_every: int = FROM_PROTOCOL      # the stopping check's interval: pascanu 100, chernodub 50
    device: str = "auto"
    # beyond docs/method.md section 7.1: the choices the paper leaves open (section 10.1)
    activation: str = "tanh"
    init: str = FROM_PROTOCOL             # pascanu "sparse", chernodub "xavier"
    momentum: float = FROM_PROTOCOL       # pascanu 0, chernodub 0.9
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
    # the protocol (issue 12): one word for every field of PROTOCOLS[protocol] left at its default
    protocol: str = "pascanu"
    variant: str = FROM_PROTOCOL          # the task generators: "pascanu" or "chernodub"
    loss: str = FROM_PROTOCOL             # "task" (cross-entropy / squared error) or "mse"
    reduction: str = FROM_PROTOCOL        # the minibatch gradient: "mean" (pascanu) or "sum" (chernodub)
    momentum_form: str = FROM_PROTOCOL    # "torch" (pascanu) or "classical" (chernodub)
    train_set_size: int | None = FROM_PROTOCOL   # None: fresh sequences every step (pascanu); N: a fixed
    #                                              set of N drawn once per run, sampled with replacement
    validation_size: int | None = FROM_PROTOCOL  # chernodub 1,000: the validation set, drawn once per run
    stopping: str = FROM_PROTOCOL         # "test" (pascanu) or "validation" (chernodub)

    def __post_init__(self):
        if not isinstance(self.protocol, str) or self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; allowed: {', '.join(PROTOCOLS)}")
        # the fields given explicitly (`replace` keeps them and re-resolves the others)
        self._explicit = frozenset(n for n in PROTOCOL_FIELDS if getattr(self, n) is not FROM_PROTOCOL)
        for name, value in PROTOCOLS[self.protocol].items():
            if getattr(self, name) is FROM_PROTOCOL:
                setattr(self, name, value)
        validate_config(self)

    @property
    def explicit_fields(self) -> frozenset:
        """The protocol-controlled fields that were given explicitly (not the protocol's)."""
        return self._explicit

    @property
    def pool_size(self) -> int:
        return self.pool_factor * self.batch_size

    def replace(self, **changes) -> "TrainConfig":
        """A copy with `changes`. The protocol-controlled fields that were not given explicitly
        follow the (possibly new) protocol: `TrainConfig().replace(protocol="chernodub")` equals
        `TrainConfig(protocol="chernodub")`. (`dataclasses.replace` keeps them as they are.)"""
        explicit = self._explicit | {n for n in changes if n in PROTOCOL_FIELDS}
        reset = {n: FROM_PROTOCOL for n in PROTOCOL_FIELDS if n not in explicit}
        return dataclasses.replace(self, **{**reset, **changes})


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
    choice("loss", LOSSES)
    choice("reduction", REDUCTIONS)
    choice("momentum_form", MOMENTUM_FORMS)
    choice("stopping", STOPPINGS)
    if c.variant not in VARIANTS:
        raise ValueError(f"unknown variant {c.variant!r}; allowed: {', '.join(VARIANTS)}")
    choice("rule", sampling.RULES)
    choice("dtype", tuple(DTYPES))
    choice("activation", ACTIVATIONS)
    choice("init", INITS)
    # unknown task, too short, a task without the variant: ValueError from there
    task = make_task(c.task, c.length, c.variant)
    for name in ("train_set_size", "validation_size"):
        v = getattr(c, name)
        if v is not None and (not _is_int(v) or v < 1):
            raise ValueError(f"{name} must be None or an integer >= 1, got {v!r}")
    if c.stopping == "validation":
        if c.validation_size is None:
            raise ValueError("stopping 'validation' needs a validation_size (an integer >= 1), got None")
        if c.method == "lstm":
            raise ValueError("stopping 'validation' is not available for method 'lstm'; allowed: "
                             + ", ".join(m for m in METHODS if m != "lstm"))
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
    # the success rate (%) on the whole test set of the run's final network (stopping "test")
    # or of the kept network, the one of lowest validation MSE (stopping "validation")
    test_success: float = float("nan")
    kept_iteration: int | None = None   # stopping "validation": the check whose network was kept

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
                "diverged": self.diverged, "device": self.device,
                "test_success": self.test_success}


class Seeds:
    """Independent generators for each source of randomness of a run. The test set has a
    seed of its own (10_000_019 + seed) so that it never overlaps the training stream, and so
    has the validation set of stopping "validation" (20_000_003 + seed). A fixed training set
    (`train_set_size`) is drawn from `data`, and then its minibatch indices too."""

    def __init__(self, seed: int, device: torch.device):
        self.model = torch.Generator().manual_seed(seed * 1_000 + 1)
        self.data = torch.Generator(device=device).manual_seed(seed * 1_000 + 2)
        self.select = torch.Generator().manual_seed(seed * 1_000 + 3)
        self.test = torch.Generator(device=device).manual_seed(10_000_019 + seed)
        # stopping "validation": the validation set (a seed of its own, apart from the others)
        self.validation = torch.Generator(device=device).manual_seed(20_000_003 + seed)


