"""One runner for a list of training configs: in this process, in a pool of processes, or on
Dask workers (`backend`). Runs are independent and deterministic, so every backend gives the
same results, in the order of the configs. The seeds of a setting train as one batched
program (`gradreg.train_many`, `gradreg.config.work_units`; on a GPU a whole (task, length)
cell): each run's result is exactly its own `train`'s, only sooner.

    from gradreg.runs import run_configs
    results = run_configs(configs, backend="processes", workers=2)   # a list of TrainResult

A sweep (`gradreg.sweep.run_sweep`) is the long, resumable version of this: it writes each
run's row to a results file as the run ends, and a stopped sweep goes on where it stopped.
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os

import torch

from .config import TrainConfig, TrainResult, resolve_device, work_units
from .engine import train_many

BACKENDS = ("serial", "processes", "dask")


def _run_unit(configs: list[TrainConfig]) -> list[TrainResult]:
    torch.set_num_threads(1)
    return train_many(configs)


def _init_worker():
    torch.set_num_threads(1)


def run_configs(configs, workers: int | None = 1, progress: bool = True, backend: str | None = None,
                scheduler: str | None = None, batch: bool = True) -> list[TrainResult]:
    """Train every config and return the results in the order of the configs.

    backend: "serial" (this process), "processes" (a pool of `workers` spawned processes,
    one thread each) or "dask" (a local Dask cluster of `workers` processes, or the scheduler
    at `scheduler`); None: "serial" for workers=1, "processes" otherwise. workers=None: one
    per CPU core. Runs on a GPU go one after another in this process (one GPU). batch=False:
    each run alone (`gradreg.train`)."""
    configs = list(configs)
    if backend is None:
        backend = "serial" if workers == 1 and scheduler is None else "processes"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be an integer >= 1 or None (one per core), got {workers!r}")
    if workers is None:
        workers = os.cpu_count() or 1
    if any(resolve_device(c.device).type == "cuda" for c in configs):
        backend = "serial"
    units = work_units(configs, batch)
    workers = max(1, min(workers, len(units)))
    if backend == "processes" and workers == 1:
        backend = "serial"
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(configs), desc="runs")
    results = [None] * len(configs)

    def done(unit, unit_results):
        for i, result in zip(unit, unit_results):
            results[i] = result
            if bar is not None:
                bar.set_postfix_str(result.summary()[:60])
                bar.update(1)
    try:
        if backend == "serial":
            for unit in units:
                done(unit, train_many([configs[i] for i in unit]))
        elif backend == "processes":
            ctx = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool:
                futures = {pool.submit(_run_unit, [configs[i] for i in unit]): unit for unit in units}
                for future in concurrent.futures.as_completed(futures):
                    done(futures[future], future.result())
        else:
            from distributed import as_completed

            from .sweep import _client
            with _client(scheduler, workers, len(units)) as client:
                futures = {client.submit(_run_unit, [configs[i] for i in unit], pure=False): unit for unit in units}
                for future in as_completed(list(futures)):
                    done(futures[future], future.result())
    finally:
        if bar is not None:
            bar.close()
    return results
