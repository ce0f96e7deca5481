"""Batched multi-seed training: K independent SRN runs that differ only in their seed, trained
as one program with a leading seed dimension (bmm where `train` has mm).

    results = train_many([TrainConfig(method="sgr", seed=s) for s in range(8)])

Each run keeps everything `gradreg.train.train` gives it -- its own generators (`Seeds`: the
model's initial weights, its data stream, its selection stream, its test set), its own batch
drawn every step, its own selection, its own clipping scale, its own checks -- so each result
is the one `train(config)` returns for that seed (up to floating-point rounding: the batched
products sum in another order; in float64 the histories agree to ~1e-12). A run that is
solved or diverges stops there and is recorded; the others go on without it.

What is batched: the forward and backward passes, the minibatch gradients and norms, the
parameter update, and for rules "top" and "random" the pool scoring and selection. What stays
per run: drawing the data (each run's generator), the test checks (each run's test set, the
same `test_error` as `train`), and the selection of the rules "band", "weighted" and "greedy"
(`train`'s own code on each run's record). Methods "pascanu" and "lstm" are not batched:
`train_many` runs them one after another with `train`.

On a CPU the step of one small run is already compute-bound (a 20x50 by 50x50 product and a
tanh per step), and the test checks (10,000 sequences per run) cannot be shared, so batching
saves the per-operation overhead rather than arithmetic -- about 1.1-1.25x more runs per hour
on one core -- and seeds are batched in cache-sized groups (`default_group_size`): see
`python -m benchmarks.training`.
"""
from __future__ import annotations

import dataclasses
import math
import time

import pandas as pd
import torch
from torch import Tensor

from . import sampling
from .model import PARAM_NAMES, SRN, BPTTRecord, _fprime, _INPLACE_ACT, check_lag, spectral_radius
from .tasks import make_task
from .train import DTYPES, Seeds, TrainConfig, TrainResult, resolve_device, test_error
from .train import sgr_weights as _train_sgr_weights
from .train import train as _train_one

BATCHED_METHODS = ("sgd", "clip", "sgr")
BATCHED_RULES = ("top", "random")          # selection batched too; other rules: per run


def check_agree(configs: list[TrainConfig]) -> None:
    """Raise ValueError unless the configs differ in their seed only."""
    for c in configs:
        if not isinstance(c, TrainConfig):
            raise ValueError(f"train_many takes TrainConfig objects, got {type(c).__name__}")
    for f in dataclasses.fields(TrainConfig):
        if f.name == "seed":
            continue
        values = [getattr(c, f.name) for c in configs]
        if any(v != values[0] for v in values[1:]):
            raise ValueError(f"configs of train_many must agree on everything but the seed; "
                             f"{f.name!r} differs: {sorted(set(map(repr, values)))}")


def train_many(configs: list[TrainConfig], progress: bool = False, *,
               group_size: int | None = None) -> list[TrainResult]:
    """Train one run per config (configs differing only in the seed), batched over the seeds.

    Returns the results in the order of `configs`, each as `train(config)` would return it.
    The seeds are batched `group_size` at a time (default: as many as keep one step's
    tensors within a few MiB -- larger batches fall out of the CPU caches and run slower
    than separate runs); the groups run one after another.
    """
    configs = list(configs)
    if not configs:
        return []
    check_agree(configs)
    if configs[0].method not in BATCHED_METHODS:
        return [_train_one(c, progress=progress) for c in configs]
    if group_size is None:
        group_size = default_group_size(configs[0])
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be an integer >= 1, got {group_size!r}")
    results = []
    for i in range(0, len(configs), group_size):
        results += _Batch(configs[i:i + group_size], progress).run()
    return results


_GROUP_BUDGET = 3 * 2 ** 20      # elements of one seed group's per-step tensors (see train_many)


def default_group_size(config: TrainConfig) -> int:
    """How many seeds `train_many` batches together by default."""
    task = make_task(config.task, config.length)
    draw = config.pool_size if (config.method == "sgr" or config.fair_batch) else config.batch_size
    H = config.hidden_size
    per_seed = draw * task.steps * H                       # h (delta, f'(z), ... alike)
    if config.method == "sgr" and config.rule != "random":
        per_seed += draw * H * (H + task.input_size + 1)   # per-example long-term gradients
    if resolve_device(config.device).type == "cuda":
        return 1 << 30                                     # no caches to fall out of: all at once
    return max(1, _GROUP_BUDGET // per_seed)


# --------------------------------------------------------------------------- one run's bookkeeping

class _Run:
    """What `train` keeps for one run: its generators, its model (whose parameters are views of
    the batch's stacked tensors while it is active), its test set and its logs."""

    def __init__(self, config: TrainConfig, task, device, dtype, readout: str):
        c = self.config = config
        self.seeds = Seeds(c.seed, device)
        self.model = SRN(task.input_size, c.hidden_size, task.output_size, activation=c.activation,
                         init=c.init, readout=readout, generator=self.seeds.model, dtype=dtype,
                         device=device)
        x_test, self.y_test = task.sample(c.test_size, generator=self.seeds.test)
        self.x_test = x_test.to(dtype)
        self.history, self.step_rows, self.since_check = [], [], []
        self.examples, self.it = 0, 0
        self.diverged = self.solved = False
        self.error = float("nan")
        self.result: TrainResult | None = None

    def check(self, task, start: float) -> float:
        """`train`'s check(): test error and one history row summarising the steps since the last."""
        self.error = test_error(self.model, task, self.x_test, self.y_test)
        window = pd.DataFrame(self.since_check)
        nan = float("nan")
        row = {"iteration": self.it, "examples": self.examples, "seconds": time.perf_counter() - start,
               "train_loss": window["loss"].mean() if len(window) else nan,
               "test_error": self.error, "test_counted": int(self.x_test.shape[0]),
               "grad_norm": window["grad_norm"].mean() if len(window) else nan,
               "minibatch_long_term_norm": window["minibatch_long_term_norm"].mean() if len(window) else nan}
        for q in ("pool_score_q10", "pool_score_q50", "pool_score_q90"):
            row[q] = window[q].mean() if q in window and len(window) else nan
        row["spectral_radius"] = spectral_radius(self.model.W_rec)
        self.history.append(row)
        self.since_check.clear()
        return self.error

    def finish(self, task, start: float, device) -> None:
        """What `train` does after its loop, then the result."""
        c = self.config
        if not self.diverged and (not self.history or self.history[-1]["iteration"] != self.it):
            self.solved = self.check(task, start) <= c.solved_error
        error = self.error
        if self.diverged:
            error = float("nan") if not self.history else self.history[-1]["test_error"]
            error = float("nan") if error is None else error
        self.result = TrainResult(config=c, solved=self.solved and not self.diverged, iterations=self.it,
                                  examples=self.examples, seconds=time.perf_counter() - start,
                                  final_error=float(error) if not self.diverged else float("nan"),
                                  diverged=self.diverged, history=pd.DataFrame(self.history),
                                  steps=pd.DataFrame(self.step_rows), device=str(device))
        # the model keeps its final parameters, detached from the batch's stacked tensors
        for name in PARAM_NAMES:
            p = getattr(self.model, name)
            p.data = p.data.clone()
        self.result.model = self.model
        self.x_test = self.y_test = None


# --------------------------------------------------------------------------- the batched program

@dataclasses.dataclass
class _Pass:
    """One batched forward + backward pass, seed-major: (K, S, B, ...) tensors."""
    x: Tensor          # (K, S, B, I)
    h: Tensor          # (K, S, B, H)
    delta: Tensor      # (K, S, B, H)
    dE_do: Tensor      # (K, B, O) or (K, S, B, O)
    loss: Tensor       # (K, B)


class _Batch:
    def __init__(self, configs: list[TrainConfig], progress: bool):
        c = self.config = configs[0]
        self.device = resolve_device(c.device)
        self.dtype = DTYPES[c.dtype]
        self.task = make_task(c.task, c.length)
        self.lag = check_lag(c.lag, self.task.steps)
        self.readout = getattr(self.task, "readout", "last")
        self.runs = [_Run(cfg, self.task, self.device, self.dtype, self.readout) for cfg in configs]
        self.active = list(self.runs)
        self.params = {name: torch.stack([getattr(r.model, name).detach() for r in self.runs])
                       for name in PARAM_NAMES}
        self.velocity = {name: torch.zeros_like(p) for name, p in self.params.items()}
        self._point_models()
        self.clip = c.clip if (c.clip and c.method != "sgd") else None
        self.draw = c.pool_size if (c.method == "sgr" or c.fair_batch) else c.batch_size
        self.progress = progress

    def _point_models(self) -> None:
        """Each active run's model parameters become views of its slice of the stacked tensors."""
        for j, r in enumerate(self.active):
            for name in PARAM_NAMES:
                getattr(r.model, name).data = self.params[name][j]

    def _drop(self, keep: list[int]) -> None:
        """Keep only the active runs at positions `keep` (the others have stopped)."""
        if len(keep) == len(self.active):
            return
        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        self.params = {k: v.index_select(0, index) for k, v in self.params.items()}
        self.velocity = {k: v.index_select(0, index) for k, v in self.velocity.items()}
        self.active = [self.active[j] for j in keep]
        self._point_models()

    def run(self) -> list[TrainResult]:
        c, task = self.config, self.task
        bar = None
        if self.progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=c.max_iterations, desc=f"{c.method} T={c.length} x{len(self.runs)} seeds",
                       leave=False)
        start = time.perf_counter()
        it = 0
        while self.active and it < c.max_iterations:
            it += 1
            self._step(it, start)
            if bar is not None:
                bar.update(1)
            stopped = []
            if it % c.check_every == 0:
                for j, r in enumerate(self.active):
                    if r.check(task, start) <= c.solved_error:
                        r.solved = True
                        stopped.append(j)
            if c.max_seconds and time.perf_counter() - start > c.max_seconds:
                stopped = list(range(len(self.active)))
            if stopped:
                for j in stopped:
                    self.active[j].finish(task, start, self.device)
                self._drop([j for j in range(len(self.active)) if j not in set(stopped)])
        for r in self.active:
            r.finish(task, start, self.device)
        self.active = []
        if bar is not None:
            bar.close()
        return [r.result for r in self.runs]

    # ------------------------------------------------------------------ one step of every run

    def _step(self, it: int, start: float) -> None:
        c, task, runs = self.config, self.task, self.active
        xs, ys = [], []
        for r in runs:                     # each run draws its own batch from its own stream
            x, y = task.sample(self.draw, generator=r.seeds.data)
            xs.append(x.to(self.dtype))
            ys.append(y)
            r.it = it
            r.examples += self.draw
        logs = [{"iteration": it} for _ in runs]
        fb = self._forward_backward(torch.stack(xs), torch.stack(ys))
        if c.method == "sgr":
            weights = self.sgr_weights(fb, logs)
        else:
            weights = torch.full((len(runs), self.draw), 1.0 / self.draw, dtype=self.dtype,
                                 device=self.device)
        grads, long_term = self._batch_grads(fb, weights)
        losses = ((fb.loss * weights).sum(1) / weights.sum(1)).tolist()
        lt_norms = _total_norms(long_term.values()).tolist()
        grad_norms = _total_norms(grads[k] for k in PARAM_NAMES).tolist()
        keep, scales = [], []
        for j, r in enumerate(runs):
            log = logs[j]
            log["loss"] = losses[j]
            log["minibatch_long_term_norm"] = lt_norms[j]
            log["grad_norm"] = grad_norms[j]
            r.step_rows.append(log)
            if not (math.isfinite(log["grad_norm"]) and math.isfinite(log["loss"])):
                r.diverged = True
                r.finish(task, start, self.device)
                continue
            r.since_check.append(log)
            keep.append(j)
            scales.append(min(1.0, self.clip / log["grad_norm"]) if self.clip else 1.0)
        if len(keep) < len(runs):
            index = torch.tensor(keep, dtype=torch.long, device=self.device)
            grads = {k: v.index_select(0, index) for k, v in grads.items()}
            self._drop(keep)
        if not keep:
            return
        scale = torch.tensor(scales, dtype=self.dtype, device=self.device)
        with torch.no_grad():
            for name in PARAM_NAMES:
                g, v, p = grads[name], self.velocity[name], self.params[name]
                shape = (-1,) + (1,) * (g.ndim - 1)
                # v + scale * g exactly as train's v.add_(g, alpha=scale) rounds it
                v.mul_(c.momentum).addcmul_(g, scale.view(shape))
                p.sub_(v, alpha=c.lr)

    def _forward_backward(self, x: Tensor, y: Tensor) -> _Pass:
        """`bptt` for every run at once: x (K, B, S, I), y (K, B) or (K, B, S)."""
        P = self.params
        W_in, W_rec, b, W_out, b_out = (P[k] for k in PARAM_NAMES)
        K, B, S, I = x.shape
        H = W_rec.shape[1]
        act = self.config.activation
        with torch.no_grad():
            x_tm = x.transpose(1, 2).contiguous()                                # (K, S, B, I)
            h = torch.baddbmm(b[:, None, :], x_tm.view(K, S * B, I), W_in.transpose(1, 2)).view(K, S, B, H)
            hs = h.unbind(1)
            W_rec_T = W_rec.transpose(1, 2)
            act_ = _INPLACE_ACT.get(act)
            if act_ is not None:
                act_(hs[0])
            for t in range(1, S):
                hs[t].baddbmm_(hs[t - 1], W_rec_T)
                if act_ is not None:
                    act_(hs[t])
            last = self.readout == "last"
            if last:
                o = torch.baddbmm(b_out[:, None, :], hs[-1], W_out.transpose(1, 2))      # (K, B, O)
            else:
                o = torch.baddbmm(b_out[:, None, :], h.view(K, S * B, H),
                                  W_out.transpose(1, 2)).view(K, S, B, -1)
        o.requires_grad_(True)
        with torch.enable_grad():
            out = o.reshape(K * B, -1) if last else o.permute(0, 2, 1, 3).reshape(K * B, S, -1)
            loss = self.task.loss(out, y.reshape(K * B, *y.shape[2:]))
            (dE_do,) = torch.autograd.grad(loss.sum(), o)
        with torch.no_grad():
            delta = torch.empty_like(h)
            has_fp = act != "identity"
            if has_fp:
                _fprime(act, h, delta)                 # delta holds f'(z) until overwritten
            ds = delta.unbind(1)
            tmp = torch.empty(K, B, H, dtype=h.dtype, device=h.device)
            for t in range(S - 1, -1, -1):
                if last:
                    if t == S - 1:
                        torch.bmm(dE_do, W_out, out=tmp)
                    else:
                        torch.bmm(ds[t + 1], W_rec, out=tmp)
                else:
                    torch.bmm(dE_do[:, t], W_out, out=tmp)
                    if t < S - 1:
                        tmp.baddbmm_(ds[t + 1], W_rec)
                if has_fp:
                    ds[t].mul_(tmp)
                else:
                    ds[t].copy_(tmp)
        return _Pass(x=x_tm, h=h, delta=delta, dE_do=dE_do.detach(), loss=loss.detach().view(K, B))

    def _batch_grads(self, fb: _Pass, w: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """`BPTTRecord.batch_grads` for every run: the weighted gradient sum_i w_i g_i of all
        parameters, and its long-term part (W_in, W_rec, b from the steps t <= S-1-lag; all
        parameters when lag = 0, as `train` logs it). The products are `batch_grads`' own, one
        per run (bmm gives each run's mm bit for bit)."""
        S = fb.h.shape[1]
        grads = self._weighted(fb, w, S, output=True)
        long_term = grads if self.lag == 0 else self._weighted(fb, w, S - self.lag, output=False)
        return grads, long_term

    def _weighted(self, fb: _Pass, w: Tensor, m: int, output: bool) -> dict[str, Tensor]:
        h, x = fb.h, fb.x
        K, S, B, H = h.shape
        w = w.to(h.dtype)
        wd = fb.delta[:, :m] * w[:, None, :, None]                           # (K, m, B, H)
        flat = wd.reshape(K, m * B, H)
        grads = {"W_in": torch.bmm(flat.transpose(1, 2), x[:, :m].reshape(K, m * B, -1)),
                 "W_rec": torch.bmm(wd[:, 1:].reshape(K, (m - 1) * B, H).transpose(1, 2),
                                    h[:, :m - 1].reshape(K, (m - 1) * B, H)),
                 "b": flat.sum(1)}
        if output:
            if self.readout == "last":
                wo = fb.dE_do * w[:, :, None]
                grads["W_out"] = torch.bmm(wo.transpose(1, 2), h[:, -1])
                grads["b_out"] = wo.sum(1)
            else:
                wo = fb.dE_do * w[:, None, :, None]
                grads["W_out"] = torch.bmm(wo.reshape(K, S * B, -1).transpose(1, 2), h.reshape(K, S * B, H))
                grads["b_out"] = wo.sum((1, 2))
        return grads

    # ------------------------------------------------------------------ SGR

    def sgr_weights(self, fb: _Pass, logs: list[dict]) -> Tensor:
        """(K, M) dense step weights, each run's as `train.sgr_weights` gives it."""
        c, runs = self.config, self.active
        K, S, M, H = fb.h.shape
        n = c.batch_size
        if c.rule not in BATCHED_RULES:        # band, weighted, greedy: train's code, run by run
            return torch.stack([
                _train_sgr_weights(c, self.task, r.model, self._record(fb, j), self.lag,
                                    r.seeds.select, logs[j])
                for j, r in enumerate(runs)])
        if c.rule == "random":                 # train scores nothing for this rule
            weights = torch.zeros(K, M, dtype=torch.float64, device=fb.h.device)
            for j, r in enumerate(runs):
                sel = sampling.select_random(M, n, r.seeds.select, device=fb.h.device)
                weights[j] = sel.pool_weights(M)
            return weights.to(fb.h.dtype)
        scores = self._pool_scores(fb)                                         # (K, M)
        qs = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64, device=scores.device)
        if bool(torch.isfinite(scores).all()):
            quantiles = torch.quantile(scores.double(), qs, dim=1).T.tolist()    # (K, 3)
        else:
            quantiles = []
            for j in range(K):
                finite = scores[j][torch.isfinite(scores[j])]
                quantiles.append(torch.quantile(finite.double(), qs).tolist() if finite.numel() else None)
        for log, q in zip(logs, quantiles):
            if q is not None:
                log["pool_score_q10"], log["pool_score_q50"], log["pool_score_q90"] = q
        index = torch.topk(torch.nan_to_num(scores, nan=-1.0), n, dim=1).indices            # (K, n)
        weights = torch.zeros(K, M, dtype=torch.float64, device=scores.device)
        weights.scatter_(1, index, 1.0 / n)
        return weights.to(fb.h.dtype)

    def _pool_scores(self, fb: _Pass) -> Tensor:
        """Long-term scores s_i(lag) of every run's pool, (K, M): `train.pool_scores`' products
        and sums, batched (bit for bit the same per run)."""
        h, d, x = fb.h, fb.delta, fb.x
        m = h.shape[1] - self.lag
        D = d[:, :m].permute(0, 2, 3, 1)                                       # (K, M, H, m)
        W_in = torch.matmul(D, x[:, :m].transpose(1, 2))                       # (K, M, H, I)
        W_rec = torch.matmul(d[:, 1:m].permute(0, 2, 3, 1), h[:, :m - 1].transpose(1, 2))
        flat = torch.cat([W_in.flatten(2), W_rec.flatten(2), D.sum(-1)], 2)
        return flat.pow(2).sum(2).sqrt()

    def _record(self, fb: _Pass, j: int) -> BPTTRecord:
        """Run j's part of the batched pass as the time-major record `bptt` would give."""
        return BPTTRecord(x=fb.x[j], h=fb.h[j], delta=fb.delta[j], dE_do=fb.dE_do[j],
                          loss=fb.loss[j], output=None, readout=self.readout)


def _total_norms(grads) -> Tensor:
    """Per-run sqrt(sum over tensors of ||g||^2) for stacked (K, ...) tensors."""
    return torch.sqrt(sum(g.flatten(1).pow(2).sum(1) for g in grads))
