"""Sweeps: many training runs on Dask distributed, one CSV row per finished run.

A sweep is a list of `TrainConfig`s, or the name of a profile (`SWEEP_PROFILES`):

    smoke   temporal_order T=10, hidden 20, lr 0.3 (so that they solve), clip / sgr-top /
            sgr-random / lstm, seeds 0-1, 300 iterations, 2,000 test sequences: 8 runs,
            about 15 seconds (most of it starting the cluster)
    quick   temporal_order and adding at T = 20, 40; the 7 paper methods;
            seeds 0-2; 4,000 iterations: 84 runs, about 10-15 minutes on 2 cores
    paper   temporal_order and adding at T = 50, 100, 150, 200; methods sgd, clip,
            pascanu, sgr/top, sgr/random, sgr/weighted (no importance weights), lstm;
            seeds 0-4; PAPER_MAX_ITERATIONS = 50,000 iterations per run (TrainConfig's default): 280 runs,
            at most about 21 core-hours on CPU (projected by benchmarks/training.py; a run
            stops early once solved)
    authors the authors' protocol (TrainConfig(protocol="chernodub"), issue 12): adding and
            temporal_order in the authors' variants at T = 50 and 100; methods sgd (their own
            training: momentum SGD on 1/2 sum ||y - t||^2), sgr/top, sgr/random; seeds 0-4;
            AUTHORS_MAX_ITERATIONS = 100,000 iterations (their budget); T = 50 first, then T = 100
            seeds 0-2 (temporal order, then adding), then seeds 3-4: 60 runs.
            Its results file has the column test_success (AUTHORS_COLUMNS).

All other settings are `TrainConfig`'s defaults under the profile's protocol (pascanu: hidden 50,
batch 20, lr 0.01, clip 1, pool factor 4, lag floor(steps/2), test on 10,000 sequences every 100
iterations; chernodub: see `gradreg.config.PROTOCOLS`).

    from gradreg.sweep import run_sweep
    from gradreg.analysis import summarise
    if __name__ == "__main__":       # needed in a script: the workers are spawned processes
        df = run_sweep("quick", results="data/results/quick.csv")  # LocalCluster, 1 process per core
        print(summarise(df))

or from the command line:

    python -m gradreg sweep --profile quick --results data/results/quick.csv [--workers N]

Results file
------------
Columns, always in this order: task, length, method, rule, seed, solved, iterations,
examples, seconds, final_error, diverged, device, error (COLUMNS); a sweep with any run that is
not of the pascanu protocol (or stops by validation) writes AUTHORS_COLUMNS, the same followed by
test_success (%, the success rate of the run's result network on its 10,000 test sequences).
`load_results` reads either header and returns the file's own columns. The key of a run is
(task, length, method, rule, seed), rule being "" for methods other than sgr; other
settings are not part of the key, so use one results file per profile (or per
variant). `error` is "" for a run that finished, else the one-line message of the
exception it raised (then solved=False, diverged=False, iterations=examples=0,
final_error=nan); a failed run counts as done: delete its line to run it again.

Guarantee: a kill at any instant (SIGKILL, power loss after fsync) never leaves a half
row among the rows. The header is written to a temporary file, fsynced and renamed
over the results path (os.replace), so the file exists with its header or not at all.
Each row is one complete CSV line, fields free of newlines, appended by the single
process that runs the sweep with os.write on a descriptor opened with O_APPEND, then
fsynced. If a write is ever cut short, the fragment can only be the file's last line,
with no newline after it. A last line without its newline that parses into all columns
is a complete row (an editor may leave one): it is kept, and the next `run_sweep` adds
the newline. Only a line that does not parse into all columns is a half row:
`load_results` drops it, and the next `run_sweep` truncates it away before appending.
Any other line that does not parse (edited by hand, bytes that are not UTF-8) is an
error naming the file and the line number: fix or delete that line. Rows are de-duplicated by key, keeping the first,
and a rerun skips every key already in the file, so an interrupted sweep resumes
with no lost and no duplicated runs. The runs in flight at the kill go on from their last
checkpoint (every `checkpoint_minutes`, 5 by default, in `checkpoints_dir(results)`, e.g.
data/results/paper-checkpoints/; `gradreg.checkpoints`): a resumed run is bit for bit the run
that was never stopped, so at most a few minutes of each are redone.
Runs that Dask cancels (the client lost its scheduler) are not written, and a warning
says to rerun; a run whose worker died repeatedly (KilledWorker) gets an error row.
A sweep holds an advisory lock (flock) on the file so two sweeps cannot append to it
at once (the second raises `ResultsLocked`).

Faults of the environment (a results file that cannot be written, a scheduler that cannot
be reached, the lock held by another sweep) raise `EnvironmentFault` (an OSError) with a
one-line message; bad arguments (a results path that is a directory or lies under a file,
a malformed scheduler address, a corrupt results file) raise ValueError. The command line
exits with 1 and 2 for them.

On a SLURM cluster (dask-jobqueue)
----------------------------------
Each run is single-threaded; give every Dask worker one core and one thread. The
package and its environment must be importable on the compute nodes (shared
filesystem). Start the cluster from a Python session on the login node:

    from dask_jobqueue import SLURMCluster
    cluster = SLURMCluster(queue="normal", account="myaccount",
                           cores=16, processes=16,      # 16 workers x 1 thread per job
                           memory="32GB", walltime="12:00:00",
                           job_script_prologue=["source /path/to/gradreg/.venv/bin/activate"])
    cluster.scale(jobs=4)                              # 64 workers
    print(cluster.scheduler_address)                   # e.g. tcp://10.0.0.1:8786

(if the compute nodes cannot reach the login node's default network interface, add
e.g. interface="ib0" to SLURMCluster), then, while that session stays open, run from
the repository:

    python -m gradreg sweep --profile paper --results data/results/paper.csv \\
        --scheduler tcp://10.0.0.1:8786

Only the process running the sweep writes the results file, so it can live on any
filesystem. If the jobs end (walltime), scale again and rerun the same command: the
finished runs are skipped. Runs are submitted in the profile's order: smoke and quick shortest
length first, then by task and seed; paper T = 100 first, then 200, 150 and 50 (the claim is
about T >= 100).
"""
from __future__ import annotations

import asyncio
import contextlib
import csv
import errno
import gzip
import io
import math
import os
import signal
import socket
import time
import warnings
import zlib
from pathlib import Path

import pandas as pd

from . import checkpoints as ckpt
from .config import TrainConfig

__all__ = ["SWEEP_PROFILES", "PAPER_MAX_ITERATIONS", "QUICK_MAX_ITERATIONS", "SMOKE_MAX_ITERATIONS",
           "AUTHORS_MAX_ITERATIONS", "COLUMNS", "AUTHORS_COLUMNS", "results_columns", "KEY", "HISTORY_COLUMNS",
           "profile_configs", "config_key", "run_config", "run_unit", "run_sweep",
           "load_results", "load_history", "history_path", "EnvironmentFault", "ResultsLocked",
           "SchedulerUnreachable", "SCHEDULER_TIMEOUT"]


class EnvironmentFault(OSError):
    """A fault of the machine or its surroundings, not of the arguments: a file that cannot be
    written, a scheduler that cannot be reached, a lock held by another process. Its message
    is one line that names the path or address and what to do."""


class ResultsLocked(EnvironmentFault):
    """The results file is being written by another sweep."""


class SchedulerUnreachable(EnvironmentFault, ConnectionError):
    """Nothing answers at the scheduler address within SCHEDULER_TIMEOUT seconds."""


#: Seconds to wait for a Dask scheduler to answer (distributed's own default is 30 s).
SCHEDULER_TIMEOUT = 10.0

COLUMNS = ("task", "length", "method", "rule", "seed", "solved", "iterations", "examples",
           "seconds", "final_error", "diverged", "device", "error")
KEY = ("task", "length", "method", "rule", "seed")
#: The columns of a results file of the authors' protocol: COLUMNS, then test_success (%).
AUTHORS_COLUMNS = COLUMNS + ("test_success",)

#: Iterations per run in the paper profile: a run not solved by then counts as failed.
#: Each SGR iteration processes M = 4 n = 80 sequences, each baseline iteration n = 20.
PAPER_MAX_ITERATIONS = 50_000
QUICK_MAX_ITERATIONS = 4_000
SMOKE_MAX_ITERATIONS = 300
#: The authors' budget (Step_02_MAIN_MakeTrain.m: 2,000 x 50 iterations).
AUTHORS_MAX_ITERATIONS = 100_000

# (method, rule, extra TrainConfig settings); rule only matters for sgr
PAPER_METHODS = (
    ("sgd", "top", {}),
    ("clip", "top", {}),
    ("pascanu", "top", {}),
    ("sgr", "top", {}),
    ("sgr", "random", {}),
    # "the best other SGR rule": weighted, as a plain sampler (no Horvitz-Thompson weights)
    ("sgr", "weighted", {"importance_weights": False}),
    ("lstm", "top", {}),
)
SMOKE_METHODS = (("clip", "top", {}), ("sgr", "top", {}), ("sgr", "random", {}), ("lstm", "top", {}))
#: sgd is the authors' own training under their protocol (momentum, summed MSE, no clipping)
AUTHORS_METHODS = (("sgd", "top", {}), ("sgr", "top", {}), ("sgr", "random", {}))


def _grid(tasks, lengths, methods, seeds, **common) -> list[TrainConfig]:
    # shortest length first, then task, then seed: an interrupted sweep leaves whole
    # (length, task, seed) cells of every method, the most useful partial grid
    return [TrainConfig(task=task, length=length, method=method, rule=rule, seed=seed,
                        **{**common, **extra})
            for length in lengths for task in tasks for seed in seeds
            for method, rule, extra in methods]


SWEEP_PROFILES = {
    # lr 0.3 so that the tiny runs solve and the solved path is exercised end to end
    "smoke": lambda: _grid(("temporal_order",), (10,), SMOKE_METHODS, range(2), hidden_size=20,
                           lr=0.3, max_iterations=SMOKE_MAX_ITERATIONS, test_size=2_000),
    "quick": lambda: _grid(("temporal_order", "adding"), (20, 40), PAPER_METHODS, range(3),
                           max_iterations=QUICK_MAX_ITERATIONS),
    "paper": lambda: _paper_grid(),
    "authors": lambda: _authors_grid(),
}


def _authors_grid() -> list[TrainConfig]:
    """The authors' profile in the order it is submitted: T = 50 complete, then T = 100 seeds
    0-2 of both tasks (the minimum of issue 12), then T = 100 seeds 3-4. At T = 100 temporal
    order comes first: under this protocol its runs stop within a few thousand iterations at
    T = 50, while adding's go on for tens of thousands, so its cells are complete sooner."""
    common = {"protocol": "chernodub", "max_iterations": AUTHORS_MAX_ITERATIONS}
    order = ((50, ("adding", "temporal_order"), range(5)), (100, ("temporal_order", "adding"), range(3)),
             (100, ("temporal_order", "adding"), range(3, 5)))
    return [config for length, tasks, seeds in order
            for config in _grid(tasks, (length,), AUTHORS_METHODS, seeds, **common)]


def _paper_grid() -> list[TrainConfig]:
    """The paper profile in the order it is submitted: the question is about links at a range
    of about 100 and longer, so T = 100 comes first (every method), then T = 200 (the methods
    under test and their controls before sgd and lstm), then T = 150, then T = 50."""
    tasks, seeds, common = ("temporal_order", "adding"), range(5), {"max_iterations": PAPER_MAX_ITERATIONS}
    first_at_200 = [m for m in PAPER_METHODS if m[0] not in ("sgd", "lstm")]
    later_at_200 = [m for m in PAPER_METHODS if m[0] in ("sgd", "lstm")]
    order = [(100, PAPER_METHODS), (200, first_at_200), (200, later_at_200), (150, PAPER_METHODS),
             (50, PAPER_METHODS)]
    return [config for length, methods in order
            for config in _grid(tasks, (length,), methods, seeds, **common)]


def profile_configs(name: str) -> list[TrainConfig]:
    """The configs of a profile: "smoke", "quick", "paper" or "authors"."""
    if name not in SWEEP_PROFILES:
        raise ValueError(f"unknown profile {name!r}; allowed: {', '.join(SWEEP_PROFILES)}")
    return SWEEP_PROFILES[name]()


def config_key(config: TrainConfig) -> tuple:
    """(task, length, method, rule, seed), rule "" unless method is sgr (as TrainResult.to_row)."""
    return (config.task, int(config.length), config.method,
            config.rule if config.method == "sgr" else "", int(config.seed))


def _row_key(row) -> tuple:
    return (str(row["task"]), int(row["length"]), str(row["method"]), str(row["rule"]),
            int(row["seed"]))


# ---------------------------------------------------------------- the run (on a worker)

def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _error_row(config: TrainConfig, exc: BaseException, seconds: float = 0.0) -> dict:
    task, length, method, rule, seed = config_key(config)
    return {"task": task, "length": length, "method": method, "rule": rule, "seed": seed,
            "solved": False, "iterations": 0, "examples": 0, "seconds": round(seconds, 3),
            "final_error": float("nan"), "diverged": False, "device": "", "error": _one_line(exc)}


def run_config(config: TrainConfig, checkpoints=None, checkpoint_seconds: float = 300.0) -> dict:
    """Train one config on one thread and return its results row; never raises."""
    start = time.perf_counter()
    try:
        import torch

        from .engine import train
        torch.set_num_threads(1)
        result = train(config, checkpoints=checkpoints, checkpoint_seconds=checkpoint_seconds)
        return {**result.to_row(), "error": "", "history": _history_records(result)}
    except Exception as exc:  # the sweep records it and goes on
        return _error_row(config, exc, time.perf_counter() - start)


def _history_records(result) -> list[dict]:
    return result.history.to_dict(orient="records")


#: How often (seconds) a unit in flight tells the sweep how far its runs have come.
PROGRESS_SECONDS = 10.0


def unit_label(configs: list[TrainConfig]) -> str:
    """A unit in a few words: "temporal_order T=100 sgr/weighted seeds 3,4"."""
    from .analysis import label_of
    first = configs[0]
    methods = ",".join(dict.fromkeys(label_of(c) for c in configs))
    seeds = ",".join(str(s) for s in dict.fromkeys(c.seed for c in configs))
    return f"{first.task} T={first.length} {methods} seed{'s' * (len(configs) > 1)} {seeds}"


def run_unit(configs: list[TrainConfig], queue: str | None = None, checkpoints=None,
             checkpoint_seconds: float = 300.0) -> list[dict]:
    """Train configs as one batched program (`gradreg.train_many`) on one thread and return
    their rows; never raises. With `queue` (the name of a Dask Queue), each row is also put
    there as soon as its run ends, so that the sweep can write it before the others end, and
    every PROGRESS_SECONDS at a check a progress message {"unit", "iteration" (the furthest
    behind of its runs in flight), "max_iterations"}. If the batch fails, each unfinished
    config runs on its own: one bad run costs no others. `checkpoints`: the directory of the
    runs' in-flight checkpoints (`gradreg.checkpoints`)."""
    import torch

    from .engine import train_many
    torch.set_num_threads(1)
    rows: dict[tuple, dict] = {}
    channel = None
    if queue is not None:
        from distributed import Queue
        channel = Queue(queue)
    label = unit_label(configs)
    reached = {config_key(c): 0 for c in configs}
    last_told = [time.monotonic()]

    def on_check(config, row):
        reached[config_key(config)] = int(row["iteration"])
        now = time.monotonic()
        if channel is not None and now - last_told[0] >= PROGRESS_SECONDS:
            last_told[0] = now
            try:        # progress is for the eye: a lost message must not stop the runs
                channel.put({"unit": label, "iteration": min(reached.values()),
                             "max_iterations": max(c.max_iterations for c in configs)})
            except Exception:
                pass

    def on_result(result):
        row = {**result.to_row(), "error": "", "history": _history_records(result)}
        key = config_key(result.config)
        rows[key] = row
        reached.pop(key, None)
        if channel is not None:
            channel.put(row)
    try:
        train_many(configs, on_check=on_check, on_result=on_result, checkpoints=checkpoints,
                   checkpoint_seconds=checkpoint_seconds)
    except Exception:
        pass
    return [rows.get(config_key(c)) or run_config(c, checkpoints, checkpoint_seconds) for c in configs]


def _units(configs: list[TrainConfig], batch: bool) -> list[list[TrainConfig]]:
    """What each Dask task trains, in submission order.

    batch=False: one run per task. On a GPU: a whole (task, length) cell per task (the GPU
    runs its batched groups one after another). On CPU workers: the seeds of one setting
    (method, rule, ...) as one batched program -- batching the methods of a cell together as
    well gains nothing more on a CPU core (see benchmarks/training.py), while smaller
    programs end, and are written, sooner: less is lost when a sweep is stopped.

    Batches form within each stretch of the order that stays in one (task, length) cell: a
    profile that comes back to a cell later (the authors' T = 100 seeds 3-4 after seeds 0-2 of
    both tasks) gets new units there, so the earlier seeds are not held back by the later."""
    if not batch:
        return [[c] for c in configs]
    on_gpu = all(c.device.startswith("cuda") for c in configs)
    units: list[list[TrainConfig]] = []
    open_units: dict[tuple, list[TrainConfig]] = {}
    cell = None
    for c in configs:
        if (c.task, c.length) != cell:
            cell, open_units = (c.task, c.length), {}
        key = () if on_gpu else (c.method, c.rule)
        if key not in open_units:
            open_units[key] = []
            units.append(open_units[key])
        open_units[key].append(c)
    return units      # train_many batches what shares its shapes


# ---------------------------------------------------------------- the results file

def results_columns(configs) -> tuple[str, ...]:
    """The columns of the results file of these configs: AUTHORS_COLUMNS if any of them is not
    of the pascanu protocol or stops by validation, else COLUMNS (the committed paper.csv's)."""
    if any(c.protocol != "pascanu" or c.stopping != "test" for c in configs):
        return AUTHORS_COLUMNS
    return COLUMNS


def history_columns(columns) -> tuple[str, ...]:
    """The history columns that go with a results file's columns."""
    return HISTORY_COLUMNS if tuple(columns) == COLUMNS else HISTORY_COLUMNS + VALIDATION_HISTORY_COLUMNS


def _encode(row: dict, columns=COLUMNS) -> bytes:
    values = []
    for c in columns:
        v = row.get(c, "")
        if isinstance(v, str):
            v = " ".join(v.split()) if c == "error" else v.replace("\r", " ").replace("\n", " ")
        elif isinstance(v, float) and math.isnan(v):
            v = "nan"
        values.append(v)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue().encode("utf-8")


def _header(columns=COLUMNS) -> bytes:
    return _encode(dict(zip(columns, columns)), columns)


_HEADER = _header(COLUMNS)
_HEADERS = {_header(cols).decode().strip(): cols for cols in (COLUMNS, AUTHORS_COLUMNS)}
_INT_COLUMNS = ("length", "seed", "iterations", "examples")
_FLOAT_COLUMNS = ("seconds", "final_error", "test_success")
_BOOL_COLUMNS = ("solved", "diverged")
_BOM = b"\xef\xbb\xbf"   # an editor's "UTF-8 with BOM" (Excel's CSV): harmless, ignored


def _header_columns(line: bytes):
    """The columns whose header `line` (without its newline) is, or None."""
    text = line.rstrip(b"\r").removeprefix(_BOM).decode("utf-8", errors="replace")
    return _HEADERS.get(text)


class _BadRow(ValueError):
    pass


def _field(column: str, text: str):
    if column in _INT_COLUMNS:
        value = None
        with contextlib.suppress(ValueError):
            value = int(text)
        if value is None:
            with contextlib.suppress(ValueError, OverflowError):
                number = float(text)        # 50.0, as a spreadsheet or pandas may write it
                if number.is_integer():
                    value = int(number)
        if value is None or not -2 ** 63 <= value < 2 ** 63:
            raise _BadRow(f"{column} {text!r} is not an integer")
        return value
    if column in _FLOAT_COLUMNS:
        if text.strip() == "":
            return float("nan")
        try:
            return float(text)
        except ValueError:
            raise _BadRow(f"{column} {text!r} is not a number") from None
    if column in _BOOL_COLUMNS:
        if text.strip().lower() in ("true", "false"):
            return text.strip().lower() == "true"
        raise _BadRow(f"{column} {text!r} is not True or False")
    return text


def _parse_row(line: bytes, columns=COLUMNS) -> dict:
    """One line of a results file (without its newline) as a typed row; _BadRow says why not."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _BadRow(f"bytes that are not UTF-8 text at column {exc.start + 1}") from None
    try:
        fields = next(csv.reader([text.rstrip("\r")], strict=True))
    except (csv.Error, StopIteration) as exc:
        raise _BadRow(f"not a CSV row ({exc})") from None
    if len(fields) != len(columns):
        raise _BadRow(f"{len(fields)} fields where a row has {len(columns)} ({', '.join(columns)})")
    return {c: _field(c, v) for c, v in zip(columns, fields)}


def _parses(line: bytes, columns=COLUMNS) -> bool:
    try:
        _parse_row(line, columns)
    except _BadRow:
        return False
    return True


def _show(line: bytes, limit: int = 60) -> str:
    text = line.decode("utf-8", errors="backslashreplace")
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _not_a_results_file(path, header: bytes) -> ValueError:
    return ValueError(f"{path} is not a results file: header {_show(header, 200)}, expected one of "
                      + " or ".join(repr(h) for h in _HEADERS) + "; give a new file name or the "
                      "results file of a sweep")


def _parse_results(path, data: bytes):
    """(columns, rows) of a results file's bytes. A last line without newline is a row when it
    parses into all columns, else a half row (dropped); any other bad line raises ValueError
    naming the file and the line number."""
    if not data:
        return COLUMNS, []
    lines = data.split(b"\n")
    tail = lines.pop()                          # b"" when the file ends with its newline
    header = lines[0] if lines else tail
    columns = _header_columns(header)
    if columns is None:
        raise _not_a_results_file(path, header)
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():                    # an empty line (an editor's): nothing to read
            continue
        try:
            rows.append(_parse_row(line, columns))
        except _BadRow as exc:
            raise ValueError(f"{path}, line {number}: {exc}: {_show(line)}; fix or delete that line "
                             "(a deleted run is redone by the next sweep)") from None
    if lines and tail.strip():
        with contextlib.suppress(_BadRow):      # a half row (a cut-short write): dropped
            rows.append(_parse_row(tail, columns))
    return columns, rows


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _path_error(path: Path, exc: OSError, what: str) -> Exception:
    """The one-line error for an OSError raised while creating or opening `path`: ValueError
    when the path itself is wrong (a directory, under a file, too long), EnvironmentFault
    when the machine refuses (permissions, read-only or full filesystem, ...)."""
    path = Path(path)
    code = getattr(exc, "errno", None)
    if path.is_dir():
        return ValueError(f"{what} {path} is a directory; give a file path, e.g. {path / 'results.csv'}")
    if code in (errno.ENOTDIR, errno.EEXIST, errno.ENOENT):
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            return ValueError(f"{what} {path} cannot be created: {blocker} is a file, not a directory; "
                              "give another path")
    if code == errno.ENAMETOOLONG:
        return ValueError(f"{what} path is too long: {str(path)[:80]}...; give a shorter path")
    reason = exc.strerror or str(exc)
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "make it writable or give a path in a writable directory"
    elif code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        hint = "free some disk space, then rerun the same command"
    else:
        hint = "check the path and the filesystem"
    return EnvironmentFault(f"cannot write {what} {path}: {reason}; {hint}")


class _ResultsFile:
    """Appends rows to a results CSV; see the module docstring for the guarantee."""

    def __init__(self, path, columns=COLUMNS):
        self.path = Path(path)
        self.columns = tuple(columns)
        self.header = _header(self.columns)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.is_dir():
                raise IsADirectoryError(errno.EISDIR, "Is a directory", str(self.path))
            if self.path.exists() and not self.path.is_file():   # /dev/null, a FIFO, a socket
                raise ValueError(f"results file {self.path} is not a regular file; give a file path")
            if not self.path.exists() or self.path.stat().st_size == 0:
                self._write_header()
            self.fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
        except OSError as exc:
            raise _path_error(self.path, exc, "results file") from None
        try:
            self._lock()
            self._check_header()
            self._repair_tail()
        except BaseException:
            os.close(self.fd)
            raise

    def _write_header(self):
        target = self.path.resolve()   # a symbolic link keeps pointing at the file it names
        tmp = target.parent / f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            os.write(fd, self.header)
            os.fsync(fd)
            os.close(fd)
            fd = None
            os.replace(tmp, target)
        except BaseException:
            if fd is not None:
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(target.parent)

    def _lock(self):
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ResultsLocked(f"{self.path} is being written by another sweep; wait for it to end "
                                "(its rows are kept) or give another results file") from None
        except OSError:  # filesystem without flock support: go on unlocked
            pass

    def _check_header(self):
        first = os.pread(self.fd, len(self.header) + len(_BOM) + 1, 0).split(b"\n", 1)[0]
        if _header_columns(first) != self.columns:
            raise ValueError(f"{self.path} is not a results file of this version and protocol: its "
                             f"first line must be {self.header.decode().strip()!r}; give a new file "
                             "name or the results file of a sweep of the same protocol")

    def _repair_tail(self):
        """A last line without its newline: a complete row (or the header) gets its newline,
        a half row (one that does not parse into all columns) is truncated away."""
        size = os.fstat(self.fd).st_size
        if size == 0 or os.pread(self.fd, 1, size - 1) == b"\n":
            return
        data = os.pread(self.fd, size, 0)
        start = data.rfind(b"\n") + 1
        if start == 0 or _parses(data[start:], self.columns):
            newline = memoryview(b"\n")
            while newline:
                newline = newline[os.write(self.fd, newline):]
        else:
            os.ftruncate(self.fd, start)
        os.fsync(self.fd)

    def append(self, row: dict) -> None:
        data = memoryview(_encode(row, self.columns))
        try:
            while data:  # one write in practice; a cut-short write leaves only a trailing fragment
                data = data[os.write(self.fd, data):]
            os.fsync(self.fd)
        except OSError as exc:
            raise _path_error(self.path, exc, "results file") from None

    def close(self):
        if getattr(self, "history", None) is not None:
            self.history.close()
        os.close(self.fd)  # also releases the lock


HISTORY_COLUMNS = KEY + ("iteration", "examples", "seconds", "train_loss", "test_error", "test_counted",
                         "grad_norm", "minibatch_long_term_norm", "spectral_radius",
                         "pool_score_q10", "pool_score_q50", "pool_score_q90")
#: What the histories of runs that stop by validation add (gradreg.engine.VALIDATION_COLUMNS).
VALIDATION_HISTORY_COLUMNS = ("validation_error", "validation_mse", "kept")


def history_path(results) -> Path:
    """Where the check histories of a results file live: NAME.csv -> NAME-history.csv.gz."""
    results = Path(results)
    return results.with_name(results.stem + "-history.csv.gz")


_GZIP_MAGIC = b"\x1f\x8b\x08"


def _gzip_member(view, pos: int):
    """(end, text) of the gzip member at `pos`; "short" if the data ends inside it (a cut-short
    write), None if it is corrupt (not gzip, a bad CRC, text that is not UTF-8)."""
    d = zlib.decompressobj(wbits=31)
    parts, p = [], pos
    try:
        while not d.eof:                         # in chunks: the rest of the file is not copied
            if p >= len(view):
                return "short"
            chunk = view[p:p + 65536]
            p += len(chunk)
            parts.append(d.decompress(chunk))
        return p - len(d.unused_data), b"".join(parts).decode("utf-8")
    except (zlib.error, UnicodeDecodeError):
        return None


def _scan_gzip(data: bytes):
    """The members of a history file: ([(start, end, text)], [(start, end)] of corrupt parts,
    start of a cut-short last member or None). After a corrupt part, the scan goes on at the
    next gzip header that starts a good member, so one damaged member costs no others."""
    view, pos = memoryview(data), 0
    members, corrupt = [], []
    while pos < len(data):
        found = _gzip_member(view, pos)
        if isinstance(found, tuple):
            members.append((pos, found[0], found[1]))
            pos = found[0]
            continue
        nxt = data.find(_GZIP_MAGIC, pos + 1)
        while nxt != -1 and not isinstance(_gzip_member(view, nxt), tuple):
            nxt = data.find(_GZIP_MAGIC, nxt + 1)
        if nxt == -1 and found == "short":
            return members, corrupt, pos        # only a cut-short write leaves this: the last member
        corrupt.append((pos, len(data) if nxt == -1 else nxt))
        pos = len(data) if nxt == -1 else nxt
    return members, corrupt, None


def _warn_corrupt(path, corrupt) -> None:
    if corrupt:
        parts = ", ".join(f"{a}-{b}" for a, b in corrupt[:3]) + (", ..." if len(corrupt) > 3 else "")
        warnings.warn(f"{path}: {len(corrupt)} corrupt part(s) skipped (bytes {parts}); the check "
                      "histories in them are lost, the results rows are not", RuntimeWarning, stacklevel=3)


class _HistoryFile:
    """The check histories of a sweep's runs: one gzip member per run (a CSV with its header,
    HISTORY_COLUMNS), appended as one write with O_APPEND and fsynced, before the run's results
    row. A cut-short member can only be the last one: it is truncated away on open and skipped
    by `load_history`. A corrupt part elsewhere (damaged on disk, edited) is left in place with a
    warning and skipped by `load_history`. Guarded by the results file's lock."""

    def __init__(self, path, columns=HISTORY_COLUMNS):
        self.path = Path(path)
        self.columns = tuple(columns)
        try:
            if self.path.is_dir():
                raise IsADirectoryError(errno.EISDIR, "Is a directory", str(self.path))
            self.fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as exc:
            raise _path_error(self.path, exc, "history file") from None
        try:
            data = os.pread(self.fd, os.fstat(self.fd).st_size, 0)
            _, corrupt, short = _scan_gzip(data)
            _warn_corrupt(self.path, corrupt)
            if short is not None:
                os.ftruncate(self.fd, short)
                os.fsync(self.fd)
        except BaseException:
            os.close(self.fd)
            raise

    def append(self, key: tuple, records: list[dict]) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        for rec in records:
            values = dict(zip(KEY, key), **rec)
            writer.writerow(["nan" if isinstance(v, float) and math.isnan(v) else v
                             for v in (values.get(c, "nan") for c in self.columns)])
        data = memoryview(gzip.compress(buf.getvalue().encode("utf-8"), mtime=0))
        try:
            while data:
                data = data[os.write(self.fd, data):]
            os.fsync(self.fd)
        except OSError as exc:
            raise _path_error(self.path, exc, "history file") from None

    def close(self):
        os.close(self.fd)


def load_history(path) -> pd.DataFrame:
    """The check histories of a sweep, one row per check (HISTORY_COLUMNS, and the validation
    columns when its runs stopped by validation): `path` is the results CSV or its
    `-history.csv.gz`. A run written more than once (rerun after its row was deleted, or killed
    between its history and its row) keeps its last history. A cut-short last member is
    skipped; corrupt parts and members that are not a history table are skipped with a
    RuntimeWarning."""
    path = Path(path)
    if not path.name.endswith(".gz"):
        path = history_path(path)
    if path.is_dir():
        raise ValueError(f"history file {path} is a directory; give the results CSV or its -history.csv.gz")
    members, corrupt, _ = _scan_gzip(path.read_bytes())
    _warn_corrupt(path, corrupt)
    blocks, bad = {}, 0
    columns = HISTORY_COLUMNS
    numeric = HISTORY_COLUMNS[len(KEY):] + VALIDATION_HISTORY_COLUMNS[:2]
    for _, _, text in members:
        try:
            block = pd.read_csv(io.StringIO(text), dtype={"rule": str}, keep_default_na=False,
                                na_values={c: ["nan", "NaN", ""] for c in numeric})
            if tuple(block.columns) not in (HISTORY_COLUMNS, HISTORY_COLUMNS + VALIDATION_HISTORY_COLUMNS):
                raise ValueError("columns")
            if len(block):
                blocks[_row_key(block.iloc[0])] = block
                if "validation_error" in block.columns:
                    columns = HISTORY_COLUMNS + VALIDATION_HISTORY_COLUMNS
        except (ValueError, KeyError, pd.errors.ParserError):
            bad += 1
    if bad:
        warnings.warn(f"{path}: {bad} member(s) that are not a check history skipped", RuntimeWarning,
                      stacklevel=2)
    if not blocks:
        return pd.DataFrame({c: [] for c in HISTORY_COLUMNS})
    return pd.concat(blocks.values(), ignore_index=True).reindex(columns=list(columns))


def _empty_results(columns=COLUMNS) -> pd.DataFrame:
    return _typed(pd.DataFrame({c: [] for c in columns}))


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    for c in ("task", "method", "rule", "device", "error"):
        df[c] = df[c].fillna("").astype(str)
    for c in ("length", "seed", "iterations", "examples"):
        df[c] = df[c].astype("int64")
    for c in ("seconds", "final_error", "test_success"):
        if c in df:
            df[c] = df[c].astype("float64")
    for c in ("solved", "diverged"):
        df[c] = df[c].map(lambda v: v if isinstance(v, bool) else str(v) == "True").astype(bool)
    return df


def load_results(path) -> pd.DataFrame:
    """The rows of a results file, typed, with the file's own columns (COLUMNS, or
    AUTHORS_COLUMNS for the authors' protocol), de-duplicated by key (the first kept). A last
    line without its newline is kept when it parses into all columns, else dropped (a half
    row). Raises FileNotFoundError if there is no file, ValueError naming the file and the line
    for a line that does not parse."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ValueError(f"results file {path} is a directory; give a file path") from None
    columns, rows = _parse_results(path, data)
    if not rows:
        return _empty_results(columns)
    df = _typed(pd.DataFrame(rows, columns=list(columns)))
    return df.drop_duplicates(list(KEY), keep="first").reset_index(drop=True)


# ---------------------------------------------------------------- the sweep

def _as_configs(configs_or_profile) -> list[TrainConfig]:
    if isinstance(configs_or_profile, str):
        return profile_configs(configs_or_profile)
    configs = list(configs_or_profile)
    for c in configs:
        if not isinstance(c, TrainConfig):
            raise ValueError(f"a sweep takes a profile name ({', '.join(SWEEP_PROFILES)}) or TrainConfigs, "
                             f"got {type(c).__name__}")
    seen, dups = set(), []
    for c in configs:
        k = config_key(c)
        if k in seen:
            dups.append(k)
        seen.add(k)
    if dups:
        raise ValueError(f"configs with the same key (task, length, method, rule, seed): {dups[:5]}")
    return configs


def _check_scheduler(address) -> str:
    """The scheduler address, checked: ValueError when it is malformed, SchedulerUnreachable at
    once when nothing listens there (instead of distributed's 30 s of retries)."""
    from distributed.comm import parse_address
    from distributed.comm.addressing import parse_host_port
    usage = "expected e.g. tcp://host:8786"
    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"bad scheduler address {address!r}; {usage}")
    address = address.strip()
    try:
        scheme, location = parse_address(address)
    except ValueError as exc:
        raise ValueError(f"bad scheduler address {address!r}: {exc}; {usage}") from None
    if scheme not in ("tcp", "tls", "ws", "wss"):
        raise ValueError(f"bad scheduler address {address!r}: scheme {scheme!r} cannot reach a "
                         f"scheduler of another process; {usage}")
    try:
        host, port = parse_host_port(location)
    except ValueError as exc:
        raise ValueError(f"bad scheduler address {address!r}: {exc}; {usage}") from None
    if not 0 < port < 65536:
        raise ValueError(f"bad scheduler address {address!r}: port {port} is outside 1..65535; {usage}")
    what = f"cannot reach the Dask scheduler at {address}"
    try:
        with socket.create_connection((host, port), timeout=SCHEDULER_TIMEOUT):
            pass
    except OverflowError:
        raise ValueError(f"bad scheduler address {address!r}: port {port} is outside 1..65535; "
                         f"{usage}") from None
    except socket.gaierror as exc:
        raise SchedulerUnreachable(f"{what}: unknown host {host!r} ({exc.strerror}); check the "
                                   "address") from None
    except ConnectionRefusedError:
        raise SchedulerUnreachable(f"{what}: nothing listens there (connection refused); start the "
                                   "scheduler or check the address") from None
    except OSError as exc:  # timeouts, unreachable networks
        raise SchedulerUnreachable(f"{what}: {exc.strerror or exc or 'timed out'}; check that the "
                                   "scheduler runs and this machine can reach it") from None
    # something listens: ask it who it is, with a hard deadline (distributed's own handshake
    # waits forever on a server that accepts and never answers, and a service that answers
    # otherwise, e.g. the dashboard's HTTP port, makes it allocate exabytes)
    try:
        identity = asyncio.run(asyncio.wait_for(_identity(address), SCHEDULER_TIMEOUT))
    except TypeError as exc:  # e.g. tls:// without a TLS configuration
        raise ValueError(f"cannot use scheduler address {address!r}: "
                         f"{' '.join(str(exc).split())}") from None
    except TimeoutError:
        raise SchedulerUnreachable(f"{what}: it accepts connections but gave no answer within "
                                   f"{SCHEDULER_TIMEOUT:g} s; check the address and port") from None
    except Exception as exc:  # MemoryError, protocol errors, closed connections
        identity = exc
    if not (isinstance(identity, dict) and identity.get("type") == "Scheduler"):
        raise ValueError(f"{address} answers, but not as a Dask scheduler; check the address and "
                         "port (the dashboard's 8787 is not the scheduler's, which is usually 8786)")
    return address


async def _identity(address):
    from distributed.comm import connect
    from distributed.security import Security
    comm = await connect(address, timeout=SCHEDULER_TIMEOUT,
                         **Security().get_connection_args("client"))
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def dask_setup(worker):
    """Dask preload hook, run in each worker process of the sweep's LocalCluster: the worker
    ignores Ctrl-C (SIGINT reaches the whole process group), so that only the sweep's own
    process handles it and shuts the cluster down, without a traceback from every worker."""
    with contextlib.suppress(ValueError):       # not the main thread: leave it
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _client(scheduler, workers, pending):
    import logging

    from distributed import Client, LocalCluster
    if scheduler is not None:
        address = _check_scheduler(scheduler)
        try:
            client = Client(address, timeout=SCHEDULER_TIMEOUT)
        except TypeError as exc:  # e.g. tls:// without a TLS configuration
            raise ValueError(f"cannot use scheduler address {address!r}: "
                             f"{' '.join(str(exc).split())}") from None
        except OSError as exc:  # TimeoutError too
            raise SchedulerUnreachable(f"cannot reach the Dask scheduler at {address} within "
                                       f"{SCHEDULER_TIMEOUT:g} s ({' '.join(str(exc).split())}); check "
                                       "that it runs and this machine can reach it") from None
        with client:
            yield client
        return
    n = workers or os.cpu_count() or 1
    if n < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    with contextlib.ExitStack() as stack:
        # Ctrl-C reaches every process of the terminal's process group. SIGINT is blocked while
        # the cluster starts: its threads and the worker processes they spawn inherit the
        # blocked signal (and the `dask_setup` preload ignores it in any worker started later),
        # so only this process handles Ctrl-C. One pressed meanwhile is raised when the cluster
        # is up, where it can be shut down cleanly.
        mask, handler = _block_sigint(), _defer_sigint()
        try:
            with warnings.catch_warnings():
                # the scheduler's HTTP server falls back to a free port: nothing for the user to do
                warnings.filterwarnings("ignore", message="Port .* is already in use")
                # silence_logs: Dask's warnings (cancelled tasks, workers killed at shutdown after
                # Ctrl-C) are not the user's business; the sweep reports what matters itself
                cluster = stack.enter_context(LocalCluster(
                    n_workers=min(n, max(pending, 1)), threads_per_worker=1, processes=True,
                    dashboard_address=None, silence_logs=logging.ERROR, preload=[__name__]))
        finally:
            _restore_sigmask(mask)
            _undefer_sigint(handler)
        yield stack.enter_context(Client(cluster))


def _block_sigint():
    if not hasattr(signal, "pthread_sigmask"):
        return None
    # multiprocessing's resource tracker unblocks SIGINT in the thread that first starts it:
    # start it here, before blocking, so that no thread of the cluster does
    from multiprocessing import resource_tracker
    resource_tracker.ensure_running()
    return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def _restore_sigmask(mask) -> None:
    if mask is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _defer_sigint():
    """Record Ctrl-C instead of raising it (threads that predate the mask, e.g. BLAS's, can
    still receive the signal); `_undefer_sigint` raises it. None outside the main thread."""
    import threading
    if threading.current_thread() is not threading.main_thread():
        return None
    pressed = []
    return pressed, signal.signal(signal.SIGINT, lambda *_: pressed.append(True))


def _undefer_sigint(deferred) -> None:
    if deferred is None:
        return
    pressed, previous = deferred
    signal.signal(signal.SIGINT, previous)
    if pressed:
        if callable(previous):
            previous(signal.SIGINT, None)   # Python's default handler raises KeyboardInterrupt
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt


def checkpoints_dir(results) -> Path:
    """Where a sweep keeps its runs' in-flight checkpoints: beside the results file
    (data/results/paper.csv -> data/results/paper-checkpoints/)."""
    results = Path(results)
    return results.with_name(results.stem + "-checkpoints")


def written_by_length(configs: list[TrainConfig], done: set[tuple]) -> str:
    """"T = 100: 35 of 70, T = 200: 0 of 70, ...": how many of the configs' keys are in `done`,
    per length, the lengths in the order the configs first name them."""
    lengths = dict.fromkeys(c.length for c in configs)
    return ", ".join(f"T = {n}: {sum(config_key(c) in done for c in configs if c.length == n)} of "
                     f"{sum(c.length == n for c in configs)}" for n in lengths)


def sweep_status(configs_or_profile, results, batch: bool = True) -> str:
    """Where a sweep stands, in a few lines, without running or changing anything: the rows
    written (per length, in submission order), the error rows (a rerun skips them: delete a row
    to run it again), the runs in flight with the iteration of their last checkpoint, and the
    next units in the order they will be submitted."""
    from .config import resolve_device
    configs = _as_configs(configs_or_profile)
    results = Path(results)
    rows = load_results(results) if results.is_file() else _empty_results()
    rows = _rows_of(rows, {config_key(c) for c in configs})
    done = {_row_key(r) for r in rows[list(KEY)].to_dict("records")}
    lines = [f"{results}: {len(done)} of {len(configs)} runs written ({written_by_length(configs, done)})"]
    errors = rows[rows["error"].fillna("").astype(str).str.strip() != ""]
    if len(errors):
        lines.append(f"{len(errors)} error row(s); a rerun skips them (to run one again, stop the sweep and "
                     "delete its row):")
        lines += [f"  {_row_key(r)}: {r['error']}" for r in errors.to_dict("records")]
    pending = [c for c in configs if config_key(c) not in done]
    directory = checkpoints_dir(results)
    flying = []
    for c in pending:
        path = ckpt.checkpoint_path(directory, c, resolve_device(c.device))
        state = ckpt.peek(path) if path.is_file() else None
        if state is not None:
            saved = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(path.stat().st_mtime))
            flying.append(f"  {unit_label([c])}: iteration {state['it']:,} of {c.max_iterations:,}, saved {saved}")
    if flying:
        lines.append(f"{len(flying)} run(s) in flight, each goes on from its checkpoint in {directory}:")
        lines += flying
    units = _units(pending, batch)
    if units:
        shown = [unit_label(u) for u in units[:5]]
        more = f" (+{len(units) - 5} more)" if len(units) > 5 else ""
        lines.append(f"next ({len(pending)} runs in {len(units)} units): " + "; ".join(shown) + more)
    else:
        lines.append("nothing left to run")
    return "\n".join(lines)


def run_sweep(configs_or_profile, results, scheduler=None, workers=None, progress=True,
              batch: bool = True, device: str | None = None, cells=None,
              checkpoint_minutes: float | None = 5.0) -> pd.DataFrame:
    """Run every config whose key is not yet in `results`, appending one row per finished run.

    configs_or_profile: a profile name (see SWEEP_PROFILES) or a list of TrainConfig with distinct keys.
    results: path of the CSV (created with its directories if missing).
    scheduler: None for a LocalCluster of `workers` processes (default os.cpu_count()) with one
        thread each; else the address of a running Dask scheduler ("tcp://host:8786"), whose
        workers are used as they are (`workers` is then ignored).
    batch: the seeds of a setting go to one worker together and train as one program
        (`gradreg.train_many`: each run's result is exactly its own `train`'s); each row is
        written as soon as its run ends. On a GPU a whole (task, length) cell, every method
        and seed, is one task. False: one run per task.
    device: train every run on this device ("cpu", "cuda", "cuda:N"; default: each config's own).
    cells: only the configs of these (task, length) pairs (default: all).
    checkpoint_minutes: every run in flight saves its state this often (wall time) in
        `checkpoints_dir(results)`, and a stopped sweep's runs go on from there, bit for bit
        (`gradreg.checkpoints`); None: no checkpoints. With a remote scheduler the directory
        must be on a filesystem that the workers share.
    Returns the rows of this sweep's configs (old and new), as `load_results` reads them.
    """
    configs = _as_configs(configs_or_profile)
    if device is not None:
        configs = [c.replace(device=device) for c in configs]
    if cells is not None:
        cells = {(str(task), int(length)) for task, length in cells}
        known = {(c.task, c.length) for c in configs}
        if not cells <= known:
            bad = sorted(cells - known)[0]
            raise ValueError(f"cell {bad[0]}:{bad[1]} is not in this sweep; allowed: "
                             + ", ".join(f"{t}:{n}" for t, n in sorted(known)))
        configs = [c for c in configs if (c.task, c.length) in cells]
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if checkpoint_minutes is not None and not (isinstance(checkpoint_minutes, (int, float))
                                               and not isinstance(checkpoint_minutes, bool)
                                               and checkpoint_minutes > 0):
        raise ValueError(f"checkpoint_minutes must be None or a number > 0, got {checkpoint_minutes!r}")
    wanted = {config_key(c) for c in configs}
    columns = results_columns(configs)
    out = _ResultsFile(results, columns)
    try:
        out.history = _HistoryFile(history_path(results), history_columns(columns))
    except BaseException:
        out.close()
        raise
    try:
        done = {_row_key(r) for r in load_results(results)[list(KEY)].to_dict("records")}
        pending = [c for c in configs if config_key(c) not in done]   # submitted in this order
        resume = None
        if checkpoint_minutes is not None:
            resume = (str(checkpoints_dir(results)), 60.0 * checkpoint_minutes)
            if Path(resume[0]).is_dir():     # a run killed after its row was written left its file
                for c in configs:
                    if config_key(c) in done:
                        ckpt.remove_key(resume[0], c)
        if pending:
            _run_pending(pending, out, total=len(configs), already=len(configs) - len(pending),
                         scheduler=scheduler, workers=workers, progress=progress,
                         batch=batch, resume=resume)
        if resume is not None:
            with contextlib.suppress(OSError):     # only when empty: what is left is in flight elsewhere
                Path(resume[0]).rmdir()
    finally:
        out.close()
    return _rows_of(load_results(results), wanted).reset_index(drop=True)


def _rows_of(df: pd.DataFrame, keys: set[tuple]) -> pd.DataFrame:
    """The rows of a results table whose key is in `keys` (an empty table stays a table)."""
    mask = [k in keys for k in map(_row_key, df[list(KEY)].to_dict("records"))]
    return df[pd.Series(mask, index=df.index, dtype=bool)]


def _run_pending(pending, out, total, already, scheduler, workers, progress, batch=True, resume=None):
    from distributed import Queue, wait
    from tqdm.auto import tqdm

    bar = None
    counts = {"solved": 0, "errors": 0}
    written: set[tuple] = set()
    lost = []
    in_flight: dict[str, str] = {}      # unit label -> "iteration/budget" of its slowest run

    def show():
        postfix = {"solved": counts["solved"], "errors": counts["errors"]}
        if in_flight:
            postfix["now"] = "; ".join(f"{label} it {where}" for label, where in in_flight.items())
        bar.set_postfix(postfix, refresh=False)     # a dict keeps this order; keywords are sorted

    def tell(message):
        if "unit" in message:            # a unit's progress, not a row
            in_flight[message["unit"]] = f"{message['iteration']:,}/{message['max_iterations']:,}"
            show()
            bar.refresh()
        else:
            write(message)

    def write(row):
        key = _row_key(row)
        if key in written:        # streamed already (and returned again at the task's end)
            return
        written.add(key)
        history = row.pop("history", None)
        if history is not None:
            out.history.append(key, history)
        out.append(row)
        counts["solved"] += bool(row["solved"])
        counts["errors"] += bool(row["error"])
        if row["error"] and progress:
            bar.write(f"run {key} failed: {row['error']}")
        show()
        bar.update(1)

    try:
        with _client(scheduler, workers, len(pending)) as client:
            # the bar starts once the cluster is up, so that its rate and ETA are the runs' own
            bar = tqdm(total=total, initial=already, desc="sweep", unit="run", disable=not progress,
                       dynamic_ncols=True)
            queue_name = f"gradreg-rows-{os.urandom(6).hex()}"
            queue = Queue(queue_name, client=client)
            futures = {}
            units = list(enumerate(_units(pending, batch)))
            units.reverse()                  # popped from the end: in submission order
            checkpointing = {} if resume is None else {"checkpoints": resume[0], "checkpoint_seconds": resume[1]}
            # Dask's priorities do not keep the order, neither on the scheduler nor among the tasks
            # a worker holds (a unit submitted second ran before the first): a unit is submitted
            # only when a worker thread is free for it, so units run in the profile's order. The
            # threads are counted at each call: a cluster that grows gets more units at once.
            def submit_next():
                if not units:           # all submitted: no need to ask the scheduler for its threads
                    return
                slots = max(1, sum(client.nthreads().values()))
                while units and len(futures) < slots:
                    position, group = units.pop()
                    key = "gradreg-run-" + "-".join(map(str, config_key(group[0]))) + f"-{os.urandom(4).hex()}"
                    f = client.submit(run_unit, group, queue_name, key=key,
                                      pure=False, priority=-position, **checkpointing)
                    futures[f] = group
            submit_next()

            def drain():
                while queue.qsize():
                    for message in queue.get(batch=True):
                        tell(message)
            # Ctrl-C sets a flag that the loop checks at least every 2 s: a KeyboardInterrupt that
            # Python's own handler raises can land in one of distributed's gc callbacks, which
            # swallow it, and the sweep would go on as if nothing had been pressed
            deferred = _defer_sigint()
            try:
                while futures:
                    if deferred is not None and deferred[0]:
                        raise KeyboardInterrupt
                    try:
                        done, _ = wait(list(futures), timeout=2, return_when="FIRST_COMPLETED")
                    except TimeoutError:       # nothing finished: write what has streamed meanwhile
                        done = ()
                    drain()
                    for f in done:
                        group = futures.pop(f)
                        if in_flight.pop(unit_label(group), None) is not None:
                            show()
                        if f.cancelled():  # e.g. the connection to the scheduler was lost: not a result
                            lost += [config_key(c) for c in group if config_key(c) not in written]
                            continue
                        try:
                            rows = f.result()  # run_unit never raises: this is Dask's own failure
                        except Exception as exc:  # e.g. KilledWorker (the run killed its workers)
                            rows = [_error_row(c, exc) for c in group]
                        for row in rows:
                            write(row)
                    submit_next()
                drain()
            except KeyboardInterrupt:   # Ctrl-C: runs that ended but were not written yet are kept
                with contextlib.suppress(Exception):
                    drain()
                raise
            finally:
                if deferred is not None:
                    signal.signal(signal.SIGINT, deferred[1])
    except KeyboardInterrupt:
        if bar is not None:   # Ctrl-C: the bar goes, the command line says what was kept
            bar.leave = False
        raise
    finally:
        if bar is not None:
            bar.close()
    if lost:
        warnings.warn(f"{len(lost)} runs were cancelled by Dask and not recorded (first: {lost[0]}); "
                      "run the sweep again to complete them", RuntimeWarning, stacklevel=3)
