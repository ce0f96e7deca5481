"""Sweeps: many training runs on Dask distributed, one results row per finished run.

A sweep is a list of `TrainConfig`s, or the name of a profile (`gradreg.profiles`: smoke,
quick, paper, authors). Its rows go to a results file and its runs' check histories beside it
(`gradreg.results`: the columns, the no-half-row guarantee, `load_results`, `load_history`,
all also reachable here as `gradreg.sweep.load_results` etc.).

    from gradreg.sweep import run_sweep
    from gradreg.analysis import summarise
    if __name__ == "__main__":       # needed in a script: the workers are spawned processes
        df = run_sweep("quick", results="data/results/quick.csv")  # LocalCluster, 1 process per core
        print(summarise(df))

or from the command line:

    python -m gradreg sweep --profile quick --results data/results/quick.csv [--workers N]
    python -m gradreg status --profile quick --results data/results/quick.csv

Resuming: a rerun skips every key already in the results file, so an interrupted sweep resumes
with no lost and no duplicated runs. The runs in flight at the kill go on from their last
checkpoint (every `checkpoint_minutes`, 5 by default, in `checkpoints_dir(results)`, e.g.
data/results/paper-checkpoints/; `gradreg.checkpoints`): a resumed run is bit for bit the run
that was never stopped, so at most a few minutes of each are redone. The checkpoints are plain
data, small (a sweep keeps no step logs) and committed with the results, so a sweep stopped on
one machine goes on from them on another (a clone of the repository).
Runs that Dask cancels (the client lost its scheduler) are not written, and a warning
says to rerun; a run whose worker died repeatedly (KilledWorker) gets an error row.

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
finished runs are skipped. Runs are submitted in the profile's order.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import warnings
from pathlib import Path

import pandas as pd

from . import checkpoints as ckpt
from .config import TrainConfig, work_units
from .errors import EnvironmentFault, ResultsLocked, SchedulerUnreachable
from .profiles import (
    AUTHORS_MAX_ITERATIONS,
    PAPER_MAX_ITERATIONS,
    PROFILES_WITH_ARMS,
    QUICK_MAX_ITERATIONS,
    SMOKE_MAX_ITERATIONS,
    SWEEP_PROFILES,
    profile_configs,
)
from .results import (
    ARM,
    AUTHORS_COLUMNS,
    COLUMNS,
    HISTORY_COLUMNS,
    KEY,
    HistoryFile,
    ResultsFile,
    config_key,
    empty_results,
    file_columns,
    history_columns,
    history_path,
    load_history,
    load_results,
    results_columns,
    row_key,
    rows_of,
)

# the profiles' and the results file's public names are part of `gradreg.sweep` too
__all__ = ["SWEEP_PROFILES", "PAPER_MAX_ITERATIONS", "QUICK_MAX_ITERATIONS", "SMOKE_MAX_ITERATIONS",
           "AUTHORS_MAX_ITERATIONS", "COLUMNS", "AUTHORS_COLUMNS", "results_columns", "KEY", "HISTORY_COLUMNS",
           "profile_configs", "config_key", "run_config", "run_unit", "run_sweep", "sweep_status",
           "checkpoints_dir", "load_results", "load_history", "history_path", "EnvironmentFault",
           "ResultsLocked", "SchedulerUnreachable", "SCHEDULER_TIMEOUT"]


#: Seconds to wait for a Dask scheduler to answer (distributed's own default is 30 s).
SCHEDULER_TIMEOUT = 10.0


# ---------------------------------------------------------------- the run (on a worker)

def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _error_row(config: TrainConfig, exc: BaseException, seconds: float = 0.0) -> dict:
    task, length, method, rule, seed, arm = config_key(config)
    return {"task": task, "length": length, "method": method, "rule": rule, "seed": seed, "arm": arm,
            "solved": False, "iterations": 0, "examples": 0, "seconds": round(seconds, 3),
            "final_error": float("nan"), "diverged": False, "device": "", "error": _one_line(exc)}


def run_config(config: TrainConfig, checkpoints=None, checkpoint_seconds: float = 300.0) -> dict:
    """Train one config on one thread and return its results row; never raises."""
    start = time.perf_counter()
    try:
        import torch

        from .engine import train
        torch.set_num_threads(1)
        checkpoints = _usable_checkpoints(checkpoints)
        result = train(config, checkpoints=checkpoints, checkpoint_seconds=checkpoint_seconds, step_logs=False)
        return {**result.to_row(), "error": "", "history": _history_records(result)}
    except Exception as exc:  # the sweep records it and goes on
        return _error_row(config, exc, time.perf_counter() - start)


def _usable_checkpoints(checkpoints):
    """`checkpoints`, or None with a warning when that directory cannot be written on this
    worker (the sweep checked it before it started; a fault since then costs the checkpoints,
    never the rows)."""
    if checkpoints is None:
        return None
    try:
        ckpt.check_directory(checkpoints)
    except (OSError, ValueError) as fault:
        warnings.warn(f"{fault}; the runs go on without checkpoints", RuntimeWarning, stacklevel=3)
        return None
    return checkpoints


def _history_records(result) -> list[dict]:
    return result.history.to_dict(orient="records")


#: How often (seconds) a unit in flight tells the sweep how far its runs have come.
PROGRESS_SECONDS = 10.0


def _units(configs: list[TrainConfig], batch: bool) -> list[list[TrainConfig]]:
    """The configs of each unit a worker trains (`gradreg.config.work_units`), in order."""
    return [[configs[i] for i in unit] for unit in work_units(configs, batch)]


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
    checkpoints = _usable_checkpoints(checkpoints)
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
                # the runs that have started: an LSTM unit trains its runs one after the other
                started = [it for it in reached.values() if it > 0]
                channel.put({"unit": label, "iteration": min(started, default=0),
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
                   checkpoint_seconds=checkpoint_seconds, step_logs=False)
    except Exception:
        pass
    return [rows.get(config_key(c)) or run_config(c, checkpoints, checkpoint_seconds) for c in configs]


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


def _not_a_shutdown_timeout(record) -> bool:
    """asyncio log filter: drops its "Future exception was never retrieved" report for a bare
    TimeoutError. distributed's batched sender leaves such a future (a tornado timeout on its
    wake-up event) when its event loop stops under it, as at a Ctrl-C shutdown; nothing waited
    on it and nothing was lost, and printed it is three lines of noise after the sweep's own
    "interrupted" line. Every other asyncio report passes."""
    exc = record.exc_info[1] if record.exc_info else None
    return not (str(record.msg).startswith("Future exception was never retrieved") and type(exc) is TimeoutError)


def _quiet_shutdown_timeouts() -> None:
    log = logging.getLogger("asyncio")
    if _not_a_shutdown_timeout not in log.filters:
        log.addFilter(_not_a_shutdown_timeout)


def dask_setup(worker):
    """Dask preload hook, run in each worker process of the sweep's LocalCluster: the worker
    ignores Ctrl-C (SIGINT reaches the whole process group), so that only the sweep's own
    process handles it and shuts the cluster down, without a traceback from every worker."""
    with contextlib.suppress(ValueError):       # not the main thread: leave it
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _quiet_shutdown_timeouts()


@contextlib.contextmanager
def _client(scheduler, workers, pending):
    import dask
    from distributed import Client, LocalCluster
    _quiet_shutdown_timeouts()      # for this process's lifetime: the report comes at collection
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
                # Dask sets MALLOC_TRIM_THRESHOLD_=65536 in its workers (to hand memory back to
                # the OS), and a worker that has it neither keeps freed blocks (gradreg's
                # import honours a malloc setting in the environment) nor avoids page-faulting
                # every step's tensors anew (measured in docs/performance.md).
                # Unset here, a worker inherits the user's own setting, if any.
                with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
                    cluster = stack.enter_context(LocalCluster(
                        n_workers=min(n, max(pending, 1)), threads_per_worker=1, processes=True,
                        # None does not turn the dashboard off (dask/distributed#8136): it
                        # binds 8787 and warns when another cluster holds it; ":0" takes a free port
                        dashboard_address=":0", silence_logs=logging.ERROR, preload=[__name__]))
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


def work_left(pending: list[TrainConfig], rows: pd.DataFrame, reached: dict[tuple, int]) -> str:
    """At most how much run time the pending configs still take, in one line: each run goes to
    its full budget, less the iterations its checkpoint holds (`reached`, by key), at the cost of
    one iteration and step of its method (and rule) in the finished rows of `rows` (the median
    of seconds / (iterations x length), scaled by the run's own length). A run stops early
    once solved, so this is an upper bound; runs of methods with no finished row are counted
    apart."""
    finished = rows[(rows["iterations"] > 0) & (rows["seconds"] > 0)]     # an error row has 0 iterations
    rate = (finished["seconds"] / (finished["iterations"] * finished["length"])).groupby(
        [finished["method"], finished["rule"]]).median().to_dict()
    seconds, unmeasured = 0.0, 0
    for c in pending:
        key = config_key(c)
        per_step = rate.get((key[2], key[3]))
        if per_step is None:
            unmeasured += 1
            continue
        seconds += per_step * c.length * max(0, c.max_iterations - reached.get(key, 0))
    line = (f"at most {seconds / 3600:.3g} core-hours left (each run to its full budget, at the cost per "
            "iteration and step of its method's finished rows here)")
    if unmeasured:
        line += f"; {unmeasured} run(s) of methods with no finished row yet not counted"
    return line


def sweep_columns(configs_or_profile, configs, results) -> tuple[str, ...]:
    """The columns of the results file a sweep of these configs writes: those of its protocol,
    with `arm` for the profiles that vary settings (PROFILES_WITH_ARMS) and for an existing file
    that has it (a file of arms takes runs without one too)."""
    columns = results_columns(configs, arms=True if isinstance(configs_or_profile, str)
                              and configs_or_profile in PROFILES_WITH_ARMS else None)
    if ARM[0] not in columns and file_columns(results) == columns + ARM:
        columns += ARM
    return columns


def sweep_status(configs_or_profile, results, batch: bool = True) -> str:
    """Where a sweep stands, in a few lines, without running or changing anything: the rows
    written (per length, in submission order), the error rows (a rerun skips them: delete a row
    to run it again), the runs in flight with the iteration of their last checkpoint, the run
    time still to come at most (`work_left`), and the next units in the order they will be
    submitted."""
    from .config import resolve_device
    configs = _as_configs(configs_or_profile)
    results = Path(results)
    rows = load_results(results) if results.is_file() else empty_results()
    wanted = sweep_columns(configs_or_profile, configs, results)
    found = file_columns(results)
    if results.is_file() and results.stat().st_size and found != wanted:
        # the keys of the authors' profile are keys of the paper's too: its rows would count
        raise ValueError(f"{results} is not a results file of this sweep's protocol: its columns are "
                         f"{', '.join(found or rows.columns)}, this sweep writes {', '.join(wanted)}; give the "
                         "results file of this profile")
    rows = rows_of(rows, {config_key(c) for c in configs})
    done = {row_key(r) for r in rows[list(KEY)].to_dict("records")}
    lines = [f"{results}: {len(done)} of {len(configs)} runs written ({written_by_length(configs, done)})"]
    errors = rows[rows["error"].fillna("").astype(str).str.strip() != ""]
    if len(errors):
        lines.append(f"{len(errors)} error row(s); a rerun skips them (to run one again, stop the sweep and "
                     "delete its row):")
        lines += [f"  {row_key(r)}: {r['error']}" for r in errors.to_dict("records")]
    pending = [c for c in configs if config_key(c) not in done]
    directory = checkpoints_dir(results)
    flying, unusable, reached = [], [], {}
    for c in pending:
        device = resolve_device(c.device)
        path = ckpt.checkpoint_path(directory, c, device)
        state = ckpt.peek(path) if path.is_file() else None
        if state is None and path.is_file():
            reason = "it cannot be read as a checkpoint"
        else:
            reason = None if state is None else ckpt.problem(state, c, device)
        if reason is not None:      # looked at, not moved: status changes nothing
            unusable.append(f"  {path.name}: {reason}")
            continue
        if state is not None:
            reached[config_key(c)] = state["it"]
            # the time the state was saved (a clone's files carry the time of the clone)
            saved = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(state.get("saved", path.stat().st_mtime)))
            flying.append(f"  {unit_label([c])}: iteration {state['it']:,} of {c.max_iterations:,}, saved {saved}")
    if flying:
        lines.append(f"{len(flying)} run(s) in flight, each goes on from its checkpoint in {directory}:")
        lines += flying
    if unusable:
        lines.append(f"{len(unusable)} checkpoint(s) in {directory} cannot be used; the sweep sets each aside "
                     "(*.unreadable) and starts its run afresh:")
        lines += unusable
    if pending:
        lines.append(work_left(pending, rows, reached))
    units = _units(pending, batch)
    if units:
        shown = [unit_label(u) for u in units[:5]]
        more = f" (+{len(units) - 5} more)" if len(units) > 5 else ""
        lines.append(f"next ({len(pending)} runs in {len(units)} units): " + "; ".join(shown) + more)
    else:
        lines.append("nothing left to run")
    return "\n".join(lines)


def run_sweep(configs_or_profile, results, scheduler=None, workers=None, progress=True,
              batch: bool = True, device: str | None = None, cells=None, seeds=None,
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
    seeds: only the configs of these seeds (default: all); e.g. to rerun a few rows of a cell.
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
    if seeds is not None:
        seeds, known = set(seeds), {c.seed for c in configs}
        if not seeds <= known:
            raise ValueError(f"seed {sorted(seeds - known)[0]!r} is not in this sweep; allowed: "
                             + ", ".join(map(str, sorted(known))))
        configs = [c for c in configs if c.seed in seeds]
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    if checkpoint_minutes is not None and not (isinstance(checkpoint_minutes, (int, float))
                                               and not isinstance(checkpoint_minutes, bool)
                                               and checkpoint_minutes > 0):
        raise ValueError(f"checkpoint_minutes must be None or a number > 0, got {checkpoint_minutes!r}")
    wanted = {config_key(c) for c in configs}
    columns = sweep_columns(configs_or_profile, configs, results)
    out = ResultsFile(results, columns)
    try:
        out.history = HistoryFile(history_path(results), history_columns(columns))
    except BaseException:
        out.close()
        raise
    try:
        done = {row_key(r) for r in load_results(results)[list(KEY)].to_dict("records")}
        pending = [c for c in configs if config_key(c) not in done]   # submitted in this order
        resume = None
        if checkpoint_minutes is not None:
            resume = (str(checkpoints_dir(results)), 60.0 * checkpoint_minutes)
            if pending:     # before any run starts: a fault here would cost every run its row
                ckpt.check_directory(resume[0])
            if Path(resume[0]).is_dir():     # a run killed after its row was written left its file
                for c in configs:
                    if config_key(c) in done:
                        with contextlib.suppress(OSError):     # stale files, harmless where they stay
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
    return rows_of(load_results(results), wanted).reset_index(drop=True)


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
        key = row_key(row)
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
