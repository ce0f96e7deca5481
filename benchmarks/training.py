"""Training throughput: K seeds batched (`gradreg.multiseed.train_many`) against K separate
`gradreg.train.train` runs, in runs per hour on a fixed budget.

    python -m benchmarks.training [--quick] [--ks 1,8,32] [--methods sgd,sgr]
                                  [--length 50] [--iterations 500] [--threads N]

Every run is temporal_order (default T=50), the default TrainConfig otherwise (hidden 50,
batch 20, SGR pool 80, rule top, a test check of 10,000 sequences every 100 iterations),
stopped after --iterations iterations (none is solved that fast, so every run does the same
work). "batched" trains the K seeds as one program; "separate" runs them one after another,
timed on at most --separate-runs of them and scaled (the table says so). Runs per hour =
3600 * runs / seconds. The two are interleaved per K, medians of --repeats rounds.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from gradreg.multiseed import train_many
from gradreg.train import TrainConfig, train

from ._common import machine_line, median


def bench(method: str, K: int, length: int, iterations: int, repeats: int, separate_runs: int,
          device: str, test_size: int, check_every: int) -> dict:
    rule = "top"
    configs = [TrainConfig(task="temporal_order", length=length, method=method, rule=rule, seed=s,
                           max_iterations=iterations, check_every=check_every, test_size=test_size,
                           device=device)
               for s in range(K)]
    n_sep = min(K, separate_runs)
    batched, separate = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        results = train_many(configs)
        batched.append(time.perf_counter() - t)
        t = time.perf_counter()
        singles = [train(c) for c in configs[:n_sep]]
        separate.append((time.perf_counter() - t) / n_sep)
        for a, b in zip(results, singles):          # the same runs (train_many's tests check more)
            assert (a.iterations, a.solved, a.diverged) == (b.iterations, b.solved, b.diverged)
    tb, ts = median(batched), median(separate)
    return {"method": method + (f"/{rule}" if method == "sgr" else ""), "K": K, "device": device,
            "batched_s": tb, "batched_runs_per_hour": 3600 * K / tb,
            "separate_s_per_run": ts, "separate_runs_per_hour": 3600 / ts,
            "speedup": ts * K / tb, "separate_timed": n_sep,
            "iterations": max(r.iterations for r in results)}


def format_table(rows: list[dict]) -> str:
    lines = [f"{'method':<9} {'K':>3} {'batched s':>10} {'runs/h batched':>15} "
             f"{'s/run separate':>15} {'runs/h separate':>16} {'speedup':>8}  note", "-" * 92]
    for r in rows:
        note = "" if r["separate_timed"] == r["K"] else f"separate: {r['separate_timed']} of {r['K']} runs timed"
        lines.append(f"{r['method']:<9} {r['K']:>3} {r['batched_s']:>10.1f} {r['batched_runs_per_hour']:>15.0f} "
                     f"{r['separate_s_per_run']:>15.2f} {r['separate_runs_per_hour']:>16.0f} "
                     f"{r['speedup']:>8.2f}  {note}")
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.training", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny budget (a smoke test)")
    p.add_argument("--ks", default="1,8,32", help="comma-separated numbers of seeds")
    p.add_argument("--methods", default="sgd,sgr", help="comma-separated: sgd, clip, sgr")
    p.add_argument("--length", type=int, default=50)
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--check-every", type=int, default=100)
    p.add_argument("--test-size", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--separate-runs", type=int, default=8,
                   help="at most this many separate runs are timed per K (then scaled)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--no-cuda", action="store_true")
    a = p.parse_args(argv)
    if a.quick:
        a.ks, a.length, a.iterations, a.check_every, a.test_size, a.separate_runs = "1,2", 20, 20, 10, 500, 2
    if a.threads:
        torch.set_num_threads(a.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() and not a.no_cuda else [])
    ks = [int(k) for k in a.ks.split(",")]
    print(f"training throughput: temporal_order T={a.length}, {a.iterations} iterations per run, "
          f"test check of {a.test_size} sequences every {a.check_every}; median of {a.repeats}")
    rows = []
    for device in devices:
        print(f"\n[{device}] {machine_line(torch.device(device))}")
        dev_rows = []
        for method in a.methods.split(","):
            for K in ks:
                dev_rows.append(bench(method, K, a.length, a.iterations, a.repeats, a.separate_runs,
                                      device, a.test_size, a.check_every))
        print(format_table(dev_rows))
        sys.stdout.flush()
        rows += dev_rows
    return rows


if __name__ == "__main__":
    main()
