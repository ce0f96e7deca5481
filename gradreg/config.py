"""What a training run is: its configuration, its sources of randomness and its result.

`TrainConfig` holds every choice of a run (docs/method.md section 7; the fields past
`device` are the choices the method leaves open, with our defaults), `Seeds` its
independent generators, `TrainResult` what `gradreg.train` returns.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from . import sampling
from .model import ACTIVATIONS, INITS
from .passes import check_lag
from .tasks import VARIANTS, make_task

METHODS = ("sgd", "clip", "pascanu", "sgr", "lstm")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
LOSSES = ("task", "mse")                 # the task's own loss, or 1/2 ||o - target_vector(y)||^2
REDUCTIONS = ("mean", "sum")             # the step's gradient: mean or sum over the minibatch
MOMENTUM_FORMS = ("torch", "classical")  # v <- mu v + g, w <- w - lr v  |  v <- mu v - lr g, w <- w + v
STOPPINGS = ("test", "validation")
OPTIMIZERS = ("sgd", "adam")             # sgd: momentum SGD (momentum_form); adam: Adam, betas 0.9 / 0.999
#: The settings that name a run's arm (`TrainConfig.arm`) when they differ from the defaults of
#: its protocol: what a screen or a control varies while keeping task, length, method and rule.
ARM_FIELDS = ("clip", "pool_factor", "lag", "momentum", "optimizer", "forget_bias", "importance_weights")


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
    optimizer: str = "sgd"          # "adam": Adam (lr is its step size; momentum must be 0)
    forget_bias: float = 1.0        # lstm: the sum of the forget gate's two biases at initialisation
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
        # numpy numbers (np.int64(10), np.float32(0.1), np.bool_) are accepted wherever Python
        # numbers are, and stored as Python int / float / bool
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.bool_):
                setattr(self, f.name, bool(v))
            elif isinstance(v, np.integer):
                setattr(self, f.name, int(v))
            elif isinstance(v, np.floating):
                setattr(self, f.name, float(v))
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
    def arm(self) -> str:
        """The settings of ARM_FIELDS that differ from the protocol's defaults, as "name=value"
        joined by commas ("" for a run of the paper's settings): with task, length, method, rule
        and seed, the key of a results row, so that a screen's variants of one method differ."""
        defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)} | PROTOCOLS[self.protocol]
        return ",".join(f"{n}={getattr(self, n)}" for n in ARM_FIELDS if getattr(self, n) != defaults[n])

    @property
    def pool_size(self) -> int:
        return self.pool_factor * self.batch_size

    @property
    def draw_size(self) -> int:
        """Sequences drawn per step: the whole pool for SGR (and for a fair-batch baseline)."""
        return self.pool_size if (self.method == "sgr" or self.fair_batch) else self.batch_size

    def replace(self, **changes) -> TrainConfig:
        """A copy with `changes`. The protocol-controlled fields that were not given explicitly
        follow the (possibly new) protocol: `TrainConfig().replace(protocol="chernodub")` equals
        `TrainConfig(protocol="chernodub")`. (`dataclasses.replace` keeps them as they are.)"""
        explicit = self._explicit | {n for n in changes if n in PROTOCOL_FIELDS}
        reset = {n: FROM_PROTOCOL for n in PROTOCOL_FIELDS if n not in explicit}
        return dataclasses.replace(self, **{**reset, **changes})


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


#: Largest seed: seed * 1000 + 3 and 10_000_019 + seed (the run's generators) stay far inside
#: int64, and the seed fits numpy's 32-bit seeding too.
MAX_SEED = 2 ** 31 - 1

_STR_FIELDS = ("task", "method", "rule", "device", "activation", "init", "dtype", "protocol", "variant", "loss",
               "reduction", "momentum_form", "stopping", "optimizer")
_BOOL_FIELDS = ("importance_weights", "fair_batch")


def validate_config(c: TrainConfig) -> None:
    """ValueError, naming the field, the value and what is allowed, for any bad field (wrong
    types included)."""
    def choice(name, allowed):
        v = getattr(c, name)
        if not isinstance(v, str) or v not in allowed:
            raise ValueError(f"unknown {name} {v!r}; allowed: {', '.join(allowed)}")

    def at_least(name, low):
        v = getattr(c, name)
        if not _is_int(v) or v < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")

    def number(name):
        v = getattr(c, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")

    def positive(name, allow_none=False):
        v = getattr(c, name)
        if allow_none and v is None:
            return
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0 and math.isfinite(v)):
            raise ValueError(f"{name} must be a positive finite number, got {v!r}")

    for name in _STR_FIELDS:
        if not isinstance(getattr(c, name), str):
            raise ValueError(f"{name} must be a string, got {getattr(c, name)!r}")
    for name in _BOOL_FIELDS:
        if not isinstance(getattr(c, name), bool):
            raise ValueError(f"{name} must be True or False, got {getattr(c, name)!r}")
    choice("method", METHODS)
    choice("loss", LOSSES)
    choice("reduction", REDUCTIONS)
    choice("momentum_form", MOMENTUM_FORMS)
    choice("stopping", STOPPINGS)
    choice("optimizer", OPTIMIZERS)
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
    if not _is_int(c.seed) or not 0 <= c.seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer in 0..{MAX_SEED} (2**31 - 1), got {c.seed!r}")
    if c.lag is not None and not _is_int(c.lag):
        raise ValueError(f"lag must be an integer or None, got {c.lag!r}")
    check_lag(c.lag, task.steps)
    positive("lr")
    if c.clip is not None:
        number("clip")
        if c.clip != 0:
            positive("clip")
    positive("max_seconds", allow_none=True)
    for name in ("omega_weight", "alpha", "band_low", "band_high"):
        positive(name)
    for name in ("greedy_low", "greedy_high", "momentum", "solved_error", "forget_bias"):
        number(name)
    if c.band_low > c.band_high or not 0 <= c.greedy_low <= c.greedy_high:
        raise ValueError("bands need low <= high: "
                         f"band [{c.band_low}, {c.band_high}], greedy [{c.greedy_low}, {c.greedy_high}]")
    if not 0 <= c.momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {c.momentum!r}")
    if c.optimizer == "adam" and c.momentum != 0:
        raise ValueError(f"momentum must be 0 with optimizer 'adam' (Adam keeps its own moments), got {c.momentum!r}")
    if not 0 <= c.solved_error < 1:
        raise ValueError(f"solved_error must be in [0, 1), got {c.solved_error!r}")
    check_device(c.device)


def check_device(name) -> None:
    """ValueError unless `name` is a device name TrainConfig takes: auto, cpu, cuda or cuda:N."""
    if not (isinstance(name, str) and re.fullmatch(r"auto|cpu|cuda(:[0-9]+)?", name)):
        raise ValueError(f"unknown device {name!r}; allowed: auto, cpu, cuda, cuda:N")


def _available_memory(device: torch.device) -> tuple[int | None, str]:
    """Bytes that can be allocated now, and where: free GPU memory for a CUDA device, else the
    machine's MemAvailable (/proc/meminfo; os.sysconf's available pages elsewhere)."""
    if device.type == "cuda":
        with contextlib.suppress(Exception):
            return int(torch.cuda.mem_get_info(device)[0]), f"free on {device}"
        return None, ""
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024, "available"
    with contextlib.suppress(AttributeError, ValueError, OSError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "available"
    return None, ""


def _gb(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9)):
        if n >= size / 10:
            return f"{n / size:.3g} {unit}"
    return f"{n / 1e6:.3g} MB"


def batch_groups(configs: list[TrainConfig]) -> list[list[int]]:
    """Indices of the configs that `train_many` trains as one program: SRN runs of the same
    task, length, hidden size, sequences drawn per step, dtype, device, activation, check
    interval and test size, task variant, loss and stopping (any method, rule, seed, learning
    rate, ...); an LSTM run alone."""
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(configs):
        if c.method == "lstm":
            key = ("lstm", i)
        else:
            key = (c.task, c.length, c.hidden_size, c.dtype, c.device, c.activation,
                   c.draw_size, c.check_every, c.test_size, c.variant, c.loss, c.stopping,
                   c.validation_size)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def work_units(configs: list[TrainConfig], batch: bool = True) -> list[list[int]]:
    """Positions of the configs that one worker trains together (`train_many`), in order.

    batch=False: one run per unit. On a GPU: a whole (task, length) cell per unit (the GPU
    runs its batched groups one after another). On CPU workers: the seeds of one setting
    (method, rule, ...) as one batched program -- batching the methods of a cell together as
    well gains nothing more on a CPU core (see benchmarks/training.py), while smaller
    programs end, and are written, sooner: less is lost when a sweep is stopped.

    Units form within each stretch of the order that stays in one (task, length) cell: a
    list that comes back to a cell later (the authors' T = 100 seeds 3-4 after seeds 0-2 of
    both tasks) gets new units there, so the earlier seeds are not held back by the later.
    Within a unit `train_many` batches what shares its shapes (`batch_groups`)."""
    if not batch:
        return [[i] for i in range(len(configs))]
    on_gpu = all(c.device.startswith("cuda") for c in configs)
    units: list[list[int]] = []
    open_units: dict[tuple, list[int]] = {}
    cell = None
    for i, c in enumerate(configs):
        if (c.task, c.length) != cell:
            cell, open_units = (c.task, c.length), {}
        key = () if on_gpu else (c.method, c.rule)
        if key not in open_units:
            open_units[key] = []
            units.append(open_units[key])
        open_units[key].append(i)
    return units


def check_memory(config, extra_bytes: int = 0) -> int:
    """Estimate the bytes a run of `config` needs at its peak and raise ValueError, in one line,
    when that exceeds the memory available (on the run's device); returns the estimate.

    `config`: a TrainConfig, or the list `train_many` gets; the runs it trains as one program
    (`batch_groups`) are counted together, the largest group deciding. Counted: the test
    sets (drawn once per run, as one-hot int64 then float, all kept while the group trains), one
    step's tensors (each run's drawn batch or pool, hidden states, deltas, u for pascanu; LSTM:
    autograd's saved gates), the parameters with their velocities and, when the SGR rule scores
    the pool, the per-example long-term gradients (with the Gram matrix for greedy).
    `extra_bytes`: what the caller needs beyond that (the explorer's per-example full gradients).
    An estimate: it refuses runs that cannot fit, not every run that will not.
    """
    configs = [config] if isinstance(config, TrainConfig) else list(config)
    if not configs:
        return 0
    need, parts, group, lever = -1, "", None, ""
    for members in batch_groups(configs):
        g = [configs[i] for i in members]
        n, p, v = _group_bytes(g)
        if n > need:
            need, parts, group, lever = n, p, g, v
    need += int(extra_bytes)
    if extra_bytes:
        parts += f", other {_gb(extra_bytes)}"
    free, where = _available_memory(resolve_device(group[0].device))
    if free is not None and need > free:
        c = group[0]
        runs = f" ({len(group)} runs as one program)" if len(group) > 1 else ""
        raise ValueError(f"{c.task} T={c.length}{runs} needs about {_gb(need)} of memory ({parts}) but "
                         f"{_gb(free)} is {where}; {lever}")
    return need


def _group_bytes(group: list) -> tuple[int, str]:
    """Peak bytes of runs trained as one program, and what they are (for the message)."""
    c, K = group[0], len(group)
    task = make_task(c.task, c.length, c.variant)
    S, I, O, H = task.steps, task.input_size, task.output_size, c.hidden_size
    item = DTYPES[c.dtype].itemsize
    every_step = getattr(task, "readout", "last") == "all"
    y_bytes = S * 8 if every_step else 8

    def drawn(b):    # task.sample: int64 symbols and one-hot, the float32 x, then the cast to dtype
        return b * S * (16 + 12 * I + (item * I if item != 4 else 0)) + b * y_bytes

    # the test set, and the fixed validation and training sets of the chernodub protocol
    sets = [n for n in (c.test_size, c.validation_size, c.train_set_size) if n]
    test_kept = sum(sets) * (S * I * item + y_bytes)
    chunk = min(c.test_size, 500)                   # engine.TEST_CHUNK sequences per forward pass
    test_check = K * chunk * S * (H + I + (O if every_step else 0)) * item
    draw = c.pool_size if (c.method == "sgr" or c.fair_batch) else c.batch_size
    step = sgr = 0
    for r in group:
        if r.method == "lstm":   # autograd keeps gates, cell and hidden states of every step
            step += drawn(draw) + 16 * draw * S * H * item
        else:                    # x, h, delta (and u), the weighted deltas of the step's gradient
            step += drawn(draw) + draw * S * (I + (6 if r.method == "pascanu" else 4) * H
                                              + (2 * O if every_step else 0)) * item
        # the parameters with their velocity, gradient and update (LSTM: four gates)
        step += 4 * (4 if r.method == "lstm" else 1) * H * (I + H + 1) * item + 4 * O * (H + 1) * item
        if r.method == "sgr" and r.rule != "random":
            P = H * (I + H + 1)          # W_in, W_rec, b of every candidate, and their flat copy
            sgr += 2 * draw * P * item
            if r.rule == "greedy":       # the float64 copy and the Gram matrix
                sgr += draw * P * 8 + draw * draw * 8
    steady = K * test_kept + max(test_check, step + sgr)
    need = max(drawn(max(sets)) + (K - 1) * test_kept, steady)
    # the field whose part is largest is the one to lower (the set drawn, or the step's batch)
    shares = {name: K * n * (S * I * item + y_bytes) + (drawn(n) if n == max(sets) else 0)
              for name, n in (("test_size", c.test_size), ("validation_size", c.validation_size),
                              ("train_set_size", c.train_set_size)) if n}
    shares["batch"] = step + sgr
    largest = max(shares, key=shares.get)
    if largest == "batch":
        fields = f"batch_size x pool_factor ({c.batch_size} x {c.pool_factor})" if draw != c.batch_size \
            else f"batch_size ({c.batch_size})"
        lever = f"the step is the largest part: lower {fields}, hidden_size ({H}) or length ({c.length:,})"
    else:
        lever = f"{largest} ({getattr(c, largest):,}) is the largest part: lower {largest} or length ({c.length:,})"
    parts = f"test set{'s' if K > 1 or len(sets) > 1 else ''} {_gb(K * test_kept)}"
    if need > steady:
        parts += f" ({_gb(need)} while drawn)"
    parts += f", one step {_gb(step)}"
    if sgr:
        parts += f", SGR per-example long-term gradients {_gb(sgr)}"
    return need, parts, lever


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
    # one row per iteration: the per-step log (empty when trained with step_logs=False, as sweeps do)
    steps: pd.DataFrame = field(repr=False, default=None)
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
                "rule": c.rule if c.method == "sgr" else "", "seed": c.seed, "arm": c.arm,
                "solved": self.solved, "iterations": self.iterations, "examples": self.examples,
                "seconds": round(self.seconds, 3), "final_error": self.final_error,
                "diverged": self.diverged, "device": self.device,
                "test_success": self.test_success}


class Seeds:
    """Independent generators for each source of randomness of a run. The test set has a
    seed of its own (10_000_019 + seed) so that it never overlaps the training stream, and so
    has the validation set of stopping "validation" (20_000_003 + seed). A fixed training set
    (`train_set_size`) is drawn from `data`, and then its minibatch indices too."""

    NAMES = ("model", "data", "select", "test", "validation")

    def __init__(self, seed: int, device: torch.device):
        self.model = torch.Generator().manual_seed(seed * 1_000 + 1)
        self.data = torch.Generator(device=device).manual_seed(seed * 1_000 + 2)
        self.select = torch.Generator().manual_seed(seed * 1_000 + 3)
        self.test = torch.Generator(device=device).manual_seed(10_000_019 + seed)
        # stopping "validation": the validation set (a seed of its own, apart from the others)
        self.validation = torch.Generator(device=device).manual_seed(20_000_003 + seed)


