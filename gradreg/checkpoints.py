"""In-flight checkpoints: a run that is stopped goes on, later, exactly where it stopped.

    train_many(configs, checkpoints="data/results/paper-checkpoints")

Every `checkpoint_seconds` of wall time the engine writes the whole state of each run still
training (its weights and momentum, every generator's state, its counters, its check history
and, when it keeps them, its step logs, the network it keeps) to one file per run in that directory; a run whose file
is there when `train_many` starts goes on from it. The resumed run is bit for bit the run that
was never stopped (tested for every method and both protocols), so its row is the same row.
A run's file is deleted as soon as the run has ended.

Why it matters: a paper run at T = 100 takes 20-30 minutes of one core and a batched setting
(5 seeds) about two hours; without checkpoints, stopping a sweep threw away the runs in flight.

The files are torch.save archives of plain data (tensors, numbers, strings, lists and dicts),
read back with `torch.load(weights_only=True)`, which runs no code from the file: a sweep's
checkpoints are committed with its results (data/results/paper-checkpoints/), so that a sweep
stopped on one machine goes on, on another, from where it stopped, and a clone must be able to
read them without trusting them. A sweep keeps no per-iteration step logs (`train_many(...,
step_logs=False)`), so a file holds a run's weights, momentum, generators, counters and check
history: 0.1-1 MB.

The file's name carries a hash of the run's full config (every field, the protocol's resolved
choices and the device included), so a changed setting never resumes from another setting's
state. Files are written to a temporary name, fsynced and renamed over the old one: a kill at
any instant leaves the previous checkpoint or the new one, never half of one. A file that
cannot be read, or whose state does not fit its run (another layout of the state, other
parameters), is renamed to `*.unreadable` with a warning, and its run starts afresh.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from .config import TrainConfig

#: Bumped whenever the layout of a run's state changes: a file of another format is not used.
#: (1: a pickle, with step logs; 2: torch.save of plain data.)
FORMAT = 2


def key_prefix(config: TrainConfig) -> str:
    """The start of the file name of every checkpoint of a run's key (task, length, method, rule, seed)."""
    rule = f"-{config.rule}" if config.method == "sgr" else ""
    return f"{config.task}-T{config.length}-{config.method}{rule}-seed{config.seed}-"


#: TrainConfig fields newer than the first committed checkpoints, with their defaults.
_LATER_FIELDS = {"optimizer": "sgd", "forget_bias": 1.0}


def checkpoint_path(directory, config: TrainConfig, device) -> Path:
    """The file of one run: its key, readable, then a hash of its whole config."""
    fields = dataclasses.asdict(config)
    # fields added after checkpoints were first committed count only when they are set, so that
    # those files keep their names
    for name, default in _LATER_FIELDS.items():
        if fields[name] == default:
            del fields[name]
    fields["device"] = str(device)
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=repr).encode()).hexdigest()[:16]
    return Path(directory) / f"{key_prefix(config)}{digest}.pt"


def remove_key(directory, config: TrainConfig) -> None:
    """Delete every checkpoint of the run's key (its row is written: they can only be stale)."""
    for path in Path(directory).glob(key_prefix(config) + "*.pt"):
        path.unlink(missing_ok=True)


def _plain(value):
    """`value` with numpy scalars made Python numbers: all that `torch.load(weights_only=True)`
    reads back are tensors and Python's own types."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def save(path: Path, state: dict) -> None:
    """Write `state` atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save({"format": FORMAT, "saved": time.time(), **_plain(state)}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read(path: Path) -> dict:
    """The state saved at `path`; raises when it is not a whole checkpoint of this FORMAT."""
    with warnings.catch_warnings():     # torch's remarks on a file that is no torch.save archive
        warnings.simplefilter("ignore", UserWarning)
        state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"not a checkpoint of format {FORMAT}")
    return state


def load(path: Path, unfit=None) -> dict | None:
    """The state saved at `path`, or None when there is none or it cannot be used: a file that
    cannot be read, or for which `unfit(state)` gives a reason (its state is not its run's), is
    renamed to `*.unreadable` with a warning."""
    if not path.exists():
        return None
    try:
        state = _read(path)
        reason = None if unfit is None else unfit(state)
        if reason is not None:
            raise ValueError(reason)
    except Exception as exc:
        aside = path.with_name(path.name + ".unreadable")
        os.replace(path, aside)
        warnings.warn(f"checkpoint {path} cannot be used ({exc}); moved to {aside.name}, the run starts afresh",
                      RuntimeWarning, stacklevel=2)
        return None
    return state


def peek(path: Path) -> dict | None:
    """The state saved at `path` for a look (`gradreg.sweep.sweep_status`): nothing is taken
    over or set aside; None when there is no usable file."""
    try:
        return _read(path)
    except Exception:
        return None


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)
