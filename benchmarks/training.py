"""Training cost per sequence against the engine's own floor, in one process.

    python -m benchmarks.training [--quick] [--length 100] [--iterations 300] [--device cpu]

Every run is temporal_order at T = --length with the paper profile's settings (hidden 50,
batch 20, SGR pool 80, clip 1, a test check of 10,000 sequences every 100 iterations),
stopped after --iterations iterations (none is solved that fast, so every run does the
same work). The cost of a training sequence is the marginal wall time per drawn sequence
(runs x iterations x sequences per step), checks included: the difference between a call at
--iterations and one at half of them, so that what a run does once (its test set, its last
full count of the test set) is left out, as it is in a 50,000-iteration run.

Peers, timed side by side in this process: inside every training call each peer is timed
once per check (every 100 iterations; that time is taken out of the call's), a round's ratio
is its marginal cost over the median of the peer timings made in its own two calls, and a
row reports medians over --repeats rounds (of its cost, its peer's cost and its ratio):
- floor: the engine's own cost per sequence of one batched forward + BPTT pass
  (`gradreg.bptt`) + the weighted gradient sum (`BPTTRecord.batch_grads`) at B = 1280;
- floor+Ω: the same plus Pascanu's dOmega/dW_rec (`baselines.omega_grad`), a second
  (H x S B) @ (S B x H) product that no SRN method but pascanu has to form;
- nn.LSTM: one torch.nn.LSTM (+ linear readout) forward + backward per sequence at B = 1280.

Rows: each SRN method with 5 seeds through one `gradreg.train_many` call (the sweep's
default), one SGR run alone (`gradreg.train`), the five SRN methods' 25 runs in one call (a
sweep cell), and one LSTM run. Targets (issue 10): SRN rows at most 1.5x the floor, the
LSTM at most 2x nn.LSTM. `--projection` adds the projected core-hours of the whole paper
profile, every run counted at its full 50,000 iterations, from these costs.

The script uses only the public API, so `PYTHONPATH=<old checkout> python -m
benchmarks.training` measures an older engine the same way (docs/performance.md's "before").
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

import gradreg
from gradreg import TrainConfig
from gradreg.baselines import omega_grad

from ._common import machine_line, median

TARGET_SRN, TARGET_LSTM = 1.5, 2.0
BIG_BATCH = 1280
SRN_METHODS = [("sgd", "top"), ("clip", "top"), ("pascanu", "top"), ("sgr", "top"), ("sgr", "random"),
               ("sgr", "weighted")]


def _config(method, rule, seed, length, iterations, device):
    return TrainConfig(task="temporal_order", length=length, method=method, rule=rule, seed=seed,
                       max_iterations=iterations, check_every=100, device=device,
                       importance_weights=False)


def _draw(c: TrainConfig) -> int:
    return c.pool_size if c.method == "sgr" else c.batch_size


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def floor_per_sequence(length: int, device: torch.device, repeats: int, with_omega: bool = False) -> float:
    task = gradreg.make_task("temporal_order", length)
    model = gradreg.SRN(task.input_size, 50, task.output_size, generator=torch.Generator().manual_seed(0),
                        device=device)
    x, y = task.sample(BIG_BATCH, generator=torch.Generator().manual_seed(1))
    x, y = x.to(device), y.to(device)
    w = torch.full((BIG_BATCH,), 1.0 / BIG_BATCH, device=device)
    times = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        record = gradreg.bptt(model, task, x, y, keep_u=with_omega)
        record.batch_grads(w)
        if with_omega:
            omega_grad(model.W_rec, record)
        _sync(device)
        times.append(time.perf_counter() - t)
    return median(times) / BIG_BATCH


def lstm_per_sequence(length: int, device: torch.device, repeats: int) -> float:
    task = gradreg.make_task("temporal_order", length)
    lstm = torch.nn.LSTM(task.input_size, 50, batch_first=True, device=device)
    out = torch.nn.Linear(50, task.output_size, device=device)
    x, y = task.sample(BIG_BATCH, generator=torch.Generator().manual_seed(1))
    x, y = x.to(device), y.to(device)
    times = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        h, _ = lstm(x)
        task.loss(out(h[:, -1]), y).mean().backward()
        _sync(device)
        times.append(time.perf_counter() - t)
    return median(times) / BIG_BATCH


def _timed(configs: list[TrainConfig], peers: dict) -> tuple[float, int, dict]:
    """One call: its wall time less the time spent timing peers inside it, the sequences it
    drew, and the peers' samples: every peer is timed once at each check of the first run
    (every 100 iterations), so that training and peers are measured side by side in time."""
    samples = {p: [] for p in peers}
    spent = 0.0

    def sample(_row=None):
        nonlocal spent
        t = time.perf_counter()
        for p, f in peers.items():
            samples[p].append(f())
        spent += time.perf_counter() - t

    t = time.perf_counter()
    if len(configs) > 1:
        first = configs[0]
        results = gradreg.train_many(configs, on_check=lambda c, row: sample() if c is first else None)
    else:
        results = [gradreg.train(configs[0], callback=sample)]
    return time.perf_counter() - t - spent, sum(r.iterations * _draw(r.config) for r in results), samples


def training_per_sequence(configs: list[TrainConfig], repeats: int, peers: dict) -> tuple[float, dict]:
    """The marginal cost of a training sequence in a long run: the calls at the configs'
    budget N and at N / 2 differ by N / 2 iterations and their checks, and share what a run
    does once (the model, the test set, the last full count), which the difference drops.

    The machine's speed drifts by tens of percent within seconds, so every round (a pair of
    calls) takes its ratio to the peers timed inside its own calls. Returns the median cost over
    `repeats` rounds and, per peer, (median peer cost, median of the rounds' ratios)."""
    half = [c.replace(max_iterations=c.max_iterations // 2) for c in configs]
    costs, peer_costs, ratios = [], {p: [] for p in peers}, {p: [] for p in peers}
    for _ in range(repeats):
        t_full, n_full, s_full = _timed(configs, peers)
        t_half, n_half, s_half = _timed(half, peers)
        cost = (t_full - t_half) / (n_full - n_half)
        costs.append(cost)
        for p in peers:
            peer = median(s_full[p] + s_half[p])
            peer_costs[p].append(peer)
            ratios[p].append(cost / peer)
    return median(costs), {p: (median(peer_costs[p]), median(ratios[p])) for p in peers}


def measure(length: int, iterations: int, repeats: int, device: str) -> list[dict]:
    dev = torch.device(device)
    rows = []

    def floor(with_omega=False):
        return lambda: floor_per_sequence(length, dev, 3, with_omega=with_omega)

    def row(name, runs, configs, peers, target):
        cost, against = training_per_sequence(configs, repeats, peers)
        for peer, (peer_cost, ratio) in against.items():
            rows.append({"what": name, "runs": runs, "us_per_seq": 1e6 * cost, "peer": peer,
                         "peer_us_per_seq": 1e6 * peer_cost, "ratio": ratio, "target": target})
            print(f"{name:<34} {runs:>4} {1e6 * cost:>10.1f} {peer:>8} {1e6 * peer_cost:>10.1f} "
                  f"{ratio:>7.2f}  (target <= {target})", flush=True)

    print(f"{'what':<34} {'runs':>4} {'us/seq':>10} {'peer':>8} {'us/seq':>10} {'ratio':>7}"
          f"   (medians of {repeats} rounds; ratio: the median of each round's own ratio)")
    for method, rule in SRN_METHODS:
        configs = [_config(method, rule, s, length, iterations, device) for s in range(5)]
        peers = {"floor": floor()}
        if method == "pascanu":     # also its own floor: the pass plus dOmega/dW_rec at B = 1280
            peers["floor+Ω"] = floor(with_omega=True)
        row(f"{method}{'/' + rule if method == 'sgr' else ''}, 5 seeds batched", 5, configs, peers, TARGET_SRN)
    row("sgr/top, one run", 1, [_config("sgr", "top", 0, length, iterations, device)], {"floor": floor()},
        TARGET_SRN)
    cell = [_config(m, r, s, length, iterations, device) for m, r in SRN_METHODS[:5] for s in range(5)]
    try:
        row("a cell: 5 SRN methods x 5 seeds", len(cell), cell, {"floor": floor()}, TARGET_SRN)
    except ValueError as error:          # an engine that cannot mix methods in one call
        print(f"{'a cell: 5 SRN methods x 5 seeds':<34} n/a: {error}")
    row("lstm, one run", 1, [_config("lstm", "top", 0, length, iterations, device)],
        {"nn.LSTM": lambda: lstm_per_sequence(length, dev, 3)}, TARGET_LSTM)
    return rows


def projection(rows: list[dict], measured_length: int) -> float:
    """Core-hours of the paper profile with every run at its full budget, per-sequence costs
    scaled linearly with T from the measured length (the SRN rows batched, the LSTM alone)."""
    from gradreg.profiles import PAPER_MAX_ITERATIONS, profile_configs
    cost = {r["what"].split(",")[0]: r["us_per_seq"] * 1e-6 for r in rows}
    total = 0.0
    for c in profile_configs("paper"):
        name = c.method + (f"/{c.rule}" if c.method == "sgr" else "")
        total += PAPER_MAX_ITERATIONS * _draw(c) * cost[name] * c.length / measured_length
    return total / 3600


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.training", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test of the script)")
    p.add_argument("--length", type=int, default=100)
    p.add_argument("--iterations", type=int, default=400)
    p.add_argument("--repeats", type=int, default=3, help="rounds per row (default 3)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, as the sweeps)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--projection", action="store_true", help="projected core-hours of the paper profile")
    a = p.parse_args(argv)
    if a.quick:
        a.length, a.iterations, a.repeats = 20, 200, 1
    torch.set_num_threads(a.threads)
    print(f"training cost per sequence: temporal_order T={a.length}, hidden 50, {a.iterations} iterations "
          f"per run, test check of 10,000 sequences every 100; {a.threads} thread(s)")
    print(machine_line(torch.device(a.device)))
    rows = measure(a.length, a.iterations, a.repeats, a.device)
    if a.projection:
        print(f"projected paper profile, every run at 50,000 iterations: {projection(rows, a.length):.1f} core-hours")
    sys.stdout.flush()
    return rows


if __name__ == "__main__":
    main()
