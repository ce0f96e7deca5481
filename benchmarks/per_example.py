"""Per-example gradient statistics: gradreg against the usual ways of getting them.

    python -m benchmarks.per_example [--quick] [--batch 256 --length 100 --hidden 100]
                                     [--repeats 7] [--threads N] [--no-cuda]

One table per device (CPU always, CUDA when present), all contenders timed in one process,
interleaved round by round, medians of --repeats runs after warm-up:

  gradreg norms-only   per_example_stats(norms_only=True): per-example norms, long-term norms
                       and delta profiles
  gradreg full grads   per_example_stats(): also every (B, *param.shape) per-example gradient
  autograd loop        one forward + backward per example (an SRN through autograd)
  torch.func vmap      vmap(grad(loss)) over the examples
  opacus               GradSampleModule around opacus' DPRNN + Linear (nn.RNN itself is not
                       supported by GradSampleModule), per-sample gradients in p.grad_sample
  nn.RNN fwd+bwd       the reference: torch.nn.RNN (tanh, batch_first; cuDNN on CUDA) forward
                       and backward of the mean cross-entropy of a linear readout of the last
                       step, with no per-example output at all

Every contender uses the same batch of temporal_order sequences (input size 6, 4 classes).
The slow contenders (the autograd loop, vmap) may be timed on a subset of the batch and
scaled to the full batch (the table says so). "peak MiB" is how far one call raises the
process's peak memory (CPU: peak RSS, reset through /proc/self/clear_refs, with glibc told to
return freed blocks at once; CUDA: torch's allocator peak), measured once after the timings,
for the batch the row was timed on.
"""
from __future__ import annotations

import argparse
import sys
import warnings

import torch
import torch.nn.functional as F
from torch import nn

import gradreg

from ._common import limit_malloc_caching, machine_line, median, peak_memory, time_interleaved


def _rnn_baseline(I, H, O, device):
    rnn = nn.RNN(I, H, batch_first=True, nonlinearity="tanh", device=device)
    lin = nn.Linear(H, O, device=device)

    def run(x, y):
        rnn.zero_grad(set_to_none=True)
        lin.zero_grad(set_to_none=True)
        out, _ = rnn(x)
        loss = F.cross_entropy(lin(out[:, -1]), y)
        loss.backward()
        return loss.detach()
    return run


def _autograd_loop(model, task):
    params = list(model.parameters())

    def run(x, y):
        norms = []
        for i in range(x.shape[0]):
            loss = task.loss(model(x[i:i + 1]), y[i:i + 1]).sum()
            grads = torch.autograd.grad(loss, params)
            norms.append(torch.sqrt(sum(g.pow(2).sum() for g in grads)))
        return torch.stack(norms)
    return run


def _vmap_grad(model, task):
    from torch.func import functional_call, grad, vmap
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss_one(p, xi, yi):
        return task.loss(functional_call(model, p, (xi[None],)), yi[None]).sum()

    per_example = vmap(grad(loss_one), in_dims=(None, 0, 0))

    def run(x, y):
        grads = per_example(params, x, y)
        return torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in grads.values()))
    return run


def _opacus(I, H, O, device):
    try:
        from opacus import GradSampleModule
        from opacus.layers import DPRNN
    except ImportError:
        return None

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = DPRNN(I, H, batch_first=True, nonlinearity="tanh")
            self.lin = nn.Linear(H, O)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.lin(out[:, -1])

    # opacus' hooks warn that no input requires grad: true, and harmless here
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    gsm = GradSampleModule(Net().to(device), batch_first=True, loss_reduction="sum")
    params = [p for p in gsm.parameters() if p.requires_grad]

    def run(x, y):
        for p in params:
            p.grad = None
            p.grad_sample = None
        loss = F.cross_entropy(gsm(x), y, reduction="sum")
        loss.backward()
        return torch.sqrt(sum(p.grad_sample.flatten(1).pow(2).sum(1) for p in params))
    return run


def bench_device(device: torch.device, B: int, T: int, H: int, repeats: int, warmup: int,
                 loop_subset: int, vmap_subset: int, opacus_subset: int, seed: int = 0) -> list[dict]:
    task = gradreg.make_task("temporal_order", T)
    I, O = task.input_size, task.output_size
    g = torch.Generator().manual_seed(seed)
    model = gradreg.SRN(I, H, O, generator=g).to(device)
    x, y = task.sample(B, generator=g)
    x, y = x.to(device), y.to(device)
    torch.manual_seed(seed)

    # name -> (fn, examples it runs on)
    contenders = {
        "gradreg norms-only": (lambda xs, ys: gradreg.per_example_stats(model, task, xs, ys, norms_only=True), B),
        "gradreg full grads": (lambda xs, ys: gradreg.per_example_stats(model, task, xs, ys), B),
        "autograd loop": (_autograd_loop(model, task), min(B, loop_subset)),
        "torch.func vmap": (_vmap_grad(model, task), min(B, vmap_subset)),
    }
    opa = _opacus(I, H, O, device)
    if opa is not None:
        contenders["opacus (DPRNN)"] = (opa, min(B, opacus_subset))
    contenders["nn.RNN fwd+bwd" + (" (cuDNN)" if device.type == "cuda" else "")] = (_rnn_baseline(I, H, O, device), B)

    fns = {name: (lambda fn=fn, n=n: fn(x[:n], y[:n])) for name, (fn, n) in contenders.items()}
    times = time_interleaved(fns, repeats, warmup, device)
    base_name = list(contenders)[-1]
    base = median(times[base_name])
    rows = []
    for name, (_, n) in contenders.items():
        seconds = median(times[name]) * B / n
        peak = peak_memory(fns[name], device)
        rows.append({"device": device.type, "contender": name, "ms": 1e3 * seconds,
                     "ratio": seconds / base, "peak_mib": None if peak is None else peak / 2 ** 20,
                     "examples_timed": n, "runs": len(times[name])})
    return rows


def format_table(rows: list[dict], B: int) -> str:
    lines = [f"{'contender':<28} {'ms':>10} {'x nn.RNN':>9} {'peak MiB':>9}  note",
             "-" * 78]
    for r in rows:
        note = "" if r["examples_timed"] == B else \
            f"timed on {r['examples_timed']} of {B} examples, time x{B / r['examples_timed']:.0f}; memory as timed"
        peak = "n/a" if r["peak_mib"] is None else f"{r['peak_mib']:.1f}"
        lines.append(f"{r['contender']:<28} {r['ms']:>10.1f} {r['ratio']:>9.2f} {peak:>9}  {note}")
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.per_example", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, few repeats (a smoke test)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--length", type=int, default=100, help="temporal_order length T (steps)")
    p.add_argument("--hidden", type=int, default=100)
    p.add_argument("--repeats", type=int, default=7, help="timed runs per contender (median)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--loop-subset", type=int, default=32, help="examples the autograd loop is timed on")
    p.add_argument("--vmap-subset", type=int, default=64, help="examples vmap is timed on")
    p.add_argument("--opacus-subset", type=int, default=1 << 30, help="examples opacus is timed on")
    p.add_argument("--no-cuda", action="store_true")
    a = p.parse_args(argv)
    if a.quick:
        a.batch, a.length, a.hidden, a.repeats, a.warmup = 32, 20, 16, 3, 1
        a.loop_subset, a.vmap_subset = 8, 16
    if a.threads:
        torch.set_num_threads(a.threads)
    limit_malloc_caching()
    devices = [torch.device("cpu")]
    if torch.cuda.is_available() and not a.no_cuda:
        devices.append(torch.device("cuda"))
    all_rows = []
    print(f"per-example gradient statistics: temporal_order B={a.batch} T={a.length} H={a.hidden}, "
          f"float32, tanh, readout last; median of {a.repeats} runs after {a.warmup} warm-up")
    for device in devices:
        rows = bench_device(device, a.batch, a.length, a.hidden, a.repeats, a.warmup,
                            a.loop_subset, a.vmap_subset, a.opacus_subset)
        print(f"\n[{device.type}] {machine_line(device)}")
        print(format_table(rows, a.batch))
        sys.stdout.flush()
        all_rows += rows
    return all_rows


if __name__ == "__main__":
    main()
