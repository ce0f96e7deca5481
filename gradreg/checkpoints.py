"""In-flight checkpoints: a run that is stopped goes on, later, exactly where it stopped.

    train_many(configs, checkpoints="data/results/paper-checkpoints")

Every `checkpoint_seconds` of wall time the engine writes the whole state of each run still
training (its weights and momentum, every generator's state, its counters, its check history
and, when it keeps them, its step logs, the network it keeps) to one file per run in that directory; a run whose file
is there when `train_many` starts goes on from it. The resumed run is bit for bit the run that
was never stopped (tested for every method and both protocols), so its row is the same row.
A run's file is deleted as soon as the run has ended.

Why it matters: a paper run takes from minutes to hours of one core (docs/performance.md), and
without checkpoints, stopping a sweep threw away the runs in flight.

The files are torch.save archives of plain data (tensors, numbers, strings, lists and dicts),
read back with `torch.load(weights_only=True)`, which runs no code from the file: a sweep's
checkpoints are committed with its results (data/results/paper-checkpoints/), so that a sweep
stopped on one machine goes on, on another, from where it stopped, and a clone must be able to
read them without trusting them. A sweep keeps no per-iteration step logs (`train_many(...,
step_logs=False)`), so a file holds a run's weights, momentum, generators, counters and check
history (their sizes: docs/sweeps.md).

The file's name carries a hash of the run's full config (every field, the protocol's resolved
choices and the device included), so a changed setting never resumes from another setting's
state. Files are written to a temporary name, fsynced and renamed over the old one: a kill at
any instant leaves the previous checkpoint or the new one, never half of one. A file that
cannot be read, or whose state does not fit its run in any field (another layout of the state,
other parameters by name, shape or dtype, parameters that are not finite, counters of the wrong
kind, an iteration beyond the budget, generator states that are not its generators'), is renamed
to `*.unreadable` with a warning, and its run starts afresh.

The directory is checked before any run starts (`check_directory`): one that cannot be made or
written is refused in one line. A checkpoint that cannot be saved while the runs train (a full
disk) costs that checkpoint, with a warning, never the run.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import math
import numbers
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from .config import DTYPES, Seeds, TrainConfig
from .errors import EnvironmentFault

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


# errnos that say the directory given is the wrong kind of path (the user's to fix), not that
# the machine refused to write there
_NOT_A_DIRECTORY = (errno.EEXIST, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP)


def check_directory(directory) -> Path:
    """Make `directory` (with its parents) and prove that a file can be written there, before
    any run starts: ValueError when the path cannot be a directory (a file, a path under a
    file), EnvironmentFault when it cannot be made or written (permissions, a read-only or
    full filesystem). Each names the directory in one line."""
    if isinstance(directory, bool) or not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"checkpoints must be a directory path (str or Path) or None, got "
                        f"{type(directory).__name__} {directory!r}")
    if not str(directory).strip():       # Path("") is the working directory: never meant
        raise ValueError("checkpoints directory path is empty; give a directory, or None for no checkpoints")
    if "\0" in str(directory):
        raise ValueError(f"checkpoints directory {str(directory)!r} holds a NUL character; give another path")
    path = Path(directory)
    if path.is_symlink() and not path.exists():
        raise ValueError(f"checkpoints directory {path} is a symbolic link to nothing (or a loop of links); "
                         "fix the link or choose another directory")
    if path.exists() and not path.is_dir():
        raise ValueError(f"checkpoints directory {path} is a file, not a directory; "
                         "move it away or choose another directory")
    probe = path / f".write-test-{os.getpid()}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno in _NOT_A_DIRECTORY or isinstance(exc, (FileExistsError, NotADirectoryError)):
            raise ValueError(f"checkpoints directory {path} cannot be made ({reason}: part of the path is "
                             "not a directory); choose another directory") from None
        raise EnvironmentFault(f"checkpoints directory {path} cannot be written ({reason}); free space, "
                               "fix its permissions or choose another directory") from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink(missing_ok=True)
    return path


def save(path: Path, state: dict) -> None:
    """Write `state` atomically (temporary file, fsync, rename); a fault while writing raises
    EnvironmentFault and leaves the previous checkpoint as it was."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, "saved": time.time(), **_plain(state)}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:      # torch's writer reports a full disk as RuntimeError
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise EnvironmentFault(f"checkpoint {path} not saved ({' '.join(str(exc).split())})") from exc


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
        set_aside(path, exc, stacklevel=3)
        return None
    return state


def set_aside(path: Path, reason, stacklevel: int = 2) -> None:
    """Rename the checkpoint at `path` to `*.unreadable`, with a warning that gives `reason`."""
    aside = path.with_name(path.name + ".unreadable")
    try:
        os.replace(path, aside)
        where = f"moved to {aside.name}"
    except OSError as move:     # left where it is: the run's first checkpoint replaces it
        where = f"not moved aside ({move.strerror or move})"
    warnings.warn(f"checkpoint {path} cannot be used ({reason}); {where}, the run starts afresh",
                  RuntimeWarning, stacklevel=stacklevel + 1)


def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _seconds(value) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
            and value >= 0)


def _tensors(value, dtype: torch.dtype) -> str | None:
    """Why `value` is not a dict of finite tensors of `dtype` by name (None: it is)."""
    if not isinstance(value, dict) or not all(isinstance(v, torch.Tensor) for v in value.values()):
        return "not tensors by name"
    wrong = [n for n, v in value.items() if v.dtype != dtype]
    if wrong:
        return f"{wrong[0]} is {str(value[wrong[0]].dtype).removeprefix('torch.')}, not " \
               f"{str(dtype).removeprefix('torch.')}"
    bad = [n for n, v in value.items() if not bool(torch.isfinite(v).all())]
    if bad:
        return f"{bad[0]} holds values that are not finite"
    return None


def problem(state: dict, config: TrainConfig, device) -> str | None:
    """Why a saved state cannot be `config`'s run on `device` in any field that the config alone
    decides (None: it can): the kinds of its counters and logs, its iteration within the
    budget, its parameters' and moments' dtype and finiteness, its generator states.
    (The engine adds the parameters' names and shapes, which its model decides.)"""
    it = state.get("it")
    if not _count(it):
        return f"its iteration {it!r} is not a count"
    if it >= config.max_iterations:
        return f"its iteration {it:,} is not below the run's budget of {config.max_iterations:,}"
    for name in ("examples", "wrong", "counted"):
        if name in state and not _count(state[name]):
            return f"its {name} {state[name]!r} is not a count"
    for name in ("seconds", "wall"):
        if name in state and not _seconds(state[name]):
            return f"its {name} {state[name]!r} is not a number of seconds"
    for name in ("history", "step_rows", "since_check"):
        if name in state and not (isinstance(state[name], list) and all(isinstance(r, dict) for r in state[name])):
            return f"its {name} is not a list of rows"
    dtype = DTYPES[config.dtype]
    for part in ("params", "velocity", "second_moment"):
        if part in state:
            reason = _tensors(state[part], dtype)
            if reason is not None:
                return f"its {part}: {reason}"
    if config.stopping == "validation":
        if "best_mse" in state and not (isinstance(state["best_mse"], numbers.Real)
                                        and not isinstance(state["best_mse"], bool)
                                        and not math.isnan(state["best_mse"])):
            return f"its best_mse {state['best_mse']!r} is not a number"
        if state.get("kept") is not None:
            reason = _tensors(state["kept"], dtype)
            if reason is not None:
                return f"its kept network: {reason}"
        kept_it = state.get("kept_iteration")
        if kept_it is not None and not (_count(kept_it) and kept_it <= it):
            return f"its kept_iteration {kept_it!r} is not an iteration up to {it}"
    generators = state.get("generators")
    if generators is not None:
        if not isinstance(generators, dict) or set(generators) != set(Seeds.NAMES):
            return f"its generators are not {', '.join(Seeds.NAMES)}"
        fresh = Seeds(0, torch.device(device))
        for name in Seeds.NAMES:
            saved = generators[name]
            try:        # a trial on a generator of the run's kind: the run's own are not touched
                getattr(fresh, name).set_state(saved)
            except Exception:
                kind = f"{len(saved)} bytes" if isinstance(saved, torch.Tensor) else type(saved).__name__
                return f"its {name} generator state ({kind}) is not a state of this run's {name} generator"
    return None


def peek(path: Path) -> dict | None:
    """The state saved at `path` for a look (`gradreg.sweep.sweep_status`): nothing is taken
    over or set aside; None when there is no usable file."""
    try:
        return _read(path)
    except Exception:
        return None


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)
