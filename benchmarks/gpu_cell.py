"""One paper cell on one device, and what it projects for the whole profiles.

    python -m benchmarks.gpu_cell [--device cuda] [--iterations 5000] [--cell temporal_order:100]

Trains every run of one cell of the paper profile (7 methods x 5 seeds at temporal_order
T = 100 by default) as one `gradreg.train_many` call, as a GPU sweep trains a cell
(`config.work_units`), each run stopped after --iterations (a run solved sooner stops sooner),
and prints the wall time. The projection counts every run of a profile at its full budget
and assumes that a cell's wall time grows with its length and its iterations and not with the
number of runs batched in it (a GPU batches them): for each (task, length) cell of a profile,
measured seconds x (length / measured length) x (budget / --iterations). It is an estimate
from one cell, printed as one.

Without a CUDA device (and --device cuda) it says so and exits 0: benchmarks/gpu.sh runs it
on a lent GPU.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import torch

import gradreg
from gradreg.profiles import profile_configs


def cell_configs(task: str, length: int, iterations: int, device: str) -> list[gradreg.TrainConfig]:
    cell = [c for c in profile_configs("paper") if (c.task, c.length) == (task, length)]
    return [dataclasses.replace(c, max_iterations=iterations, device=device) for c in cell]


def project(seconds: float, length: int, iterations: int, profile: str) -> float:
    """Projected wall seconds of a whole profile from one cell's measured time (see above)."""
    cells: dict[tuple, int] = {}
    for c in profile_configs(profile):
        cells[(c.task, c.length)] = max(cells.get((c.task, c.length), 0), c.max_iterations)
    return sum(seconds * (n / length) * (budget / iterations) for (_, n), budget in cells.items())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--iterations", type=int, default=5_000)
    p.add_argument("--cell", default="temporal_order:100", metavar="TASK:LENGTH")
    a = p.parse_args(argv)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device on this machine: nothing measured")
        return 0
    task, length = a.cell.split(":")
    configs = cell_configs(task, int(length), a.iterations, a.device)
    if not configs:
        print(f"error: cell {a.cell} is not in the paper profile", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu"
    start = time.perf_counter()
    results = gradreg.train_many(configs, step_logs=False)
    if a.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    solved = sum(r.solved for r in results)
    print(f"{name}: {a.cell}, {len(configs)} runs x {a.iterations:,} iterations in one call: {seconds:.1f} s "
          f"({solved} solved before the end)")
    for profile in ("paper", "confirm", "long"):
        hours = project(seconds, int(length), a.iterations, profile) / 3600
        print(f"projected {profile} profile, every run at its full budget: {hours:.2f} h on this device")
    return 0


if __name__ == "__main__":
    sys.exit(main())
