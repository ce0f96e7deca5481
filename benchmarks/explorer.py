"""How long one explorer update takes (a control change: compute + draw), at the explorer's
default sizes, against a peer run in the same process: one plain training step of the same
pool through torch.nn.RNN (forward + backward of the batch mean, no per-example statistics).

    python -m benchmarks.explorer [--repeats 7]

The explorer should answer a change within about a second (issue 7); the ratio says how much
of that is the explorer's own work on whatever machine runs it.
"""
from __future__ import annotations

import argparse
import statistics

import torch

from benchmarks._common import time_interleaved
from gradreg import explore, make_task
from gradreg.explore import compute, make_params


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    p = make_params()
    task = make_task(p.task, p.length)
    x, y = task.sample(p.pool_size, generator=torch.Generator().manual_seed(0))
    rnn = torch.nn.RNN(task.input_size, p.hidden_size, batch_first=True)
    readout = torch.nn.Linear(p.hidden_size, task.output_size)
    fig = explore.new_figure()
    radii = iter([0.9 + 0.001 * k for k in range(10 ** 6)])  # a new parameter each call: no cache

    def update():
        explore.render_png(compute(p, spectral_radius=next(radii)), fig)

    def compute_only():
        compute(p, spectral_radius=next(radii))

    result = compute(p)

    def draw_only():
        explore.render_png(result, fig)

    def rnn_step():
        rnn.zero_grad(set_to_none=True)
        readout.zero_grad(set_to_none=True)
        h, _ = rnn(x)
        task.loss(readout(h[:, -1]), y).mean().backward()

    times = time_interleaved({"update": update, "compute": compute_only, "draw": draw_only, "nn.RNN step": rnn_step},
                             args.repeats, 1, torch.device("cpu"))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"explorer at its default sizes ({p.task} T={p.length}, H={p.hidden_size}, pool M={p.pool_size}, "
          f"{p.draws} draws per stochastic rule), one thread, median of {args.repeats}:")
    for name, seconds in med.items():
        print(f"  {name:12s} {1000 * seconds:8.1f} ms   {seconds / med['nn.RNN step']:8.1f} x nn.RNN step")
    print(f"one update answers in {'under' if med['update'] < 1.0 else 'OVER'} a second on this machine")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
