"""Exact per-example, lag-resolved gradient statistics of one SRN (docs/method.md section 2).

`per_example_stats` runs one batched forward and one batched BPTT pass (`gradreg.passes`,
the same passes the training engine uses, here with K = 1) and reduces the deltas to
per-example gradients, their long-term components and norms, choosing the cheapest exact
reduction within a memory budget (`_plan`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .passes import (
    BPTTRecord,
    backward,
    batch_major,
    check_compatible,
    check_lag,
    forward,
    output_grads,
    readout,
    readout_grad,
    stacked_params,
)

if TYPE_CHECKING:
    from .model import SRN


def _squared_norms(grads: dict[str, Tensor]) -> Tensor:
    return sum(g.flatten(1).pow(2).sum(1) for g in grads.values())


@dataclass
class PerExampleStats:
    """Per-example, lag-resolved gradient statistics of one batch (BackPACK-style plain tensors).

    loss (B,), output, delta_norm (B, S) = ||dE_i/dz_t||, grad_norm (B,) over all
    parameters, long_term_norm (B,) = s_i(lag) over W_in, W_rec, b; grads and
    long_term_grads map parameter names to (B, *param.shape) tensors, or are None
    in norms-only mode.
    """
    loss: Tensor
    output: Tensor
    lag: int
    delta_norm: Tensor
    grad_norm: Tensor
    long_term_norm: Tensor
    grads: dict[str, Tensor] | None
    long_term_grads: dict[str, Tensor] | None
    record: BPTTRecord | None = None

    def vanishing_ratio(self, lag: int | None = None) -> Tensor:
        """r_i(lag) = ||delta_{i, S-1-lag}|| / ||delta_{i, S-1}|| (nan where the last delta is 0)."""
        S = self.delta_norm.shape[1]
        lag = check_lag(self.lag if lag is None else lag, S)
        return self.delta_norm[:, S - 1 - lag] / self.delta_norm[:, S - 1]


def _output_squared_norms(readout: str, h: Tensor, dE_do: Tensor) -> Tensor:
    if readout == "last":   # ||a b^T||^2 = ||a||^2 ||b||^2
        return dE_do.pow(2).sum(1) * (h[-1].pow(2).sum(1) + 1.0)
    return _squared_norms(output_grads(readout, h, dE_do))


class _Accumulator:
    """Per-example sums over steps of delta_t h_{t-1}^T (W_rec) and of [x_t, 1] delta_t^T
    (W_in and b together, kept transposed: a (b, I+1, S) x (b, S, H) product is several times
    faster than the (b, H, S) x (b, S, I+1) one), added a piece of steps at a time."""

    def __init__(self):
        self.rec = self.inb_T = None

    def add(self, D: Tensor, t0: int, t1: int, h: Tensor, xa: Tensor) -> None:
        Dt = D.transpose(0, 1)                                        # (b, s, H)
        xs = xa[t0:t1].permute(1, 2, 0)                               # (b, I + 1, s)
        self.inb_T = torch.bmm(xs, Dt) if self.inb_T is None else self.inb_T.baddbmm_(xs, Dt)
        lo = max(t0, 1)                           # h_{-1} = 0: step 0 adds nothing to W_rec
        if lo < t1:
            Dr = D[lo - t0:].permute(1, 2, 0)                         # (b, H, s)
            hs = h[lo - 1:t1 - 1].transpose(0, 1)                     # (b, s, H)
            self.rec = torch.bmm(Dr, hs) if self.rec is None else self.rec.baddbmm_(Dr, hs)

    def finish(self, b: int, H: int, like: Tensor) -> None:
        if self.rec is None:
            self.rec = like.new_zeros(b, H, H)

    def add_(self, other: _Accumulator) -> _Accumulator:
        self.rec.add_(other.rec)
        self.inb_T.add_(other.inb_T)
        return self

    def squared_norms(self) -> Tensor:
        return (torch.linalg.vector_norm(self.rec.flatten(1), dim=1).square()
                + torch.linalg.vector_norm(self.inb_T.flatten(1), dim=1).square())

    def grads(self, I: int) -> dict[str, Tensor]:
        return {"W_in": self.inb_T[:, :I].transpose(1, 2).contiguous(), "W_rec": self.rec,
                "b": self.inb_T[:, I].contiguous()}


def per_example_stats(model: SRN, task, x: Tensor, y: Tensor, lag: int | None = None,
                      norms_only: bool = False, keep_record: bool = False) -> PerExampleStats:
    """Exact per-example gradients, their long-term components and delta profiles.

    One batched forward and one batched BPTT pass, then batched reductions of the deltas;
    lag=None uses floor(steps/2). norms_only=True returns no (B, *param.shape) tensors and
    picks the cheapest exact way to the norms: per-example gradients accumulated a piece of
    steps at a time and dropped once normed ("direct"), or, when the sequence is short next to
    the hidden size, the Gram identity ||sum_t d_t a_t^T||^2 = sum_{t,s} (d_t.d_s)(a_t.a_s)
    ("gram"). Its memory beyond the hidden states h (S*B*H) is bounded by about S*B*H more
    (examples are processed in blocks when needed). keep_record=True keeps the BPTTRecord
    (h and every delta) for further reductions.
    """
    return _per_example_stats(model, task, x, y, lag, norms_only, keep_record)


# Memory budget of norms-only mode beyond h itself, as a fraction of h's size (kept below 1 so
# that the peak, temporaries included, stays under 2x h) -- or this many elements, if larger:
# for small problems memory does not matter and whole-batch products are faster.
_NORMS_BUDGET_FRACTION = 0.8
_NORMS_BUDGET_FLOOR = 2 ** 20
_STATS_CHUNK = 32   # steps per piece when the memory budget says the deltas cannot all be kept


def _plan(path: str | None, norms_only: bool, keep_record: bool, S: int, B: int, H: int,
          I: int, m: int) -> tuple[str, int, int]:
    """(path, chunk, block): how to reduce the deltas to the per-example statistics."""
    regions = 2 if m < S else 1
    if not norms_only or keep_record:
        # the full gradients (or every delta) are kept anyway: one block, whole-region pieces
        return "direct", (S if keep_record else max(m, S - m)), B
    if path is None:
        # FLOPs per example: direct S*H*(H+I+1); gram S*S*(2H+I+1) (two Gram matrices)
        path = "gram" if S * (2 * H + I + 1) < 0.7 * H * (H + I + 1) else "direct"
    budget = max(_NORMS_BUDGET_FRACTION * S * B * H, _NORMS_BUDGET_FLOOR)
    if path == "gram":
        per_example = S * H + 3 * S * S          # the deltas, two Gram matrices, their product
        chunk = S
    else:
        per_example_acc = regions * H * (H + I + 1) + H   # accumulators (+ one row of carry)
        chunk = max(m, S - m)
        if B * (per_example_acc + chunk * H) > budget:
            chunk = min(chunk, _STATS_CHUNK)
        per_example = per_example_acc + chunk * H
    block = int(max(1, min(B, budget // per_example)))
    blocks = -(-B // block)
    return path, chunk, -(-B // blocks)     # equal blocks


def _per_example_stats(model: SRN, task, x: Tensor, y: Tensor, lag: int | None = None,
                       norms_only: bool = False, keep_record: bool = False,
                       path: str | None = None, chunk: int | None = None,
                       block: int | None = None) -> PerExampleStats:
    """per_example_stats with the reduction forced: path "direct" or "gram" (norms only),
    `chunk` steps per piece of the backward pass, `block` examples at a time (norms only)."""
    check_compatible(model, task, x, y)
    lag = check_lag(lag, task.steps)
    if path not in (None, "direct", "gram"):
        raise ValueError(f"unknown path {path!r}; allowed: direct, gram")
    if path == "gram" and (not norms_only or keep_record):
        raise ValueError("path 'gram' gives norms only (norms_only=True, keep_record=False)")
    P = stacked_params(model)
    act, which = model.activation, model.readout
    with torch.no_grad():
        x1 = x.detach().to(P["W_in"].dtype).transpose(0, 1).contiguous()[None]   # (1, S, B, I)
        h1 = forward(P["W_in"], P["W_rec"], P["b"], x1, act)
        o1 = readout(P["W_out"], P["b_out"], h1, which)
    loss1, dE1 = readout_grad(task, o1, y[None], which)
    x_tm, h, loss, dE_do = x1[0], h1[0], loss1[0], dE1[0]
    out_bm = batch_major(o1, which)[0]
    S, B, H = h.shape
    I = x_tm.shape[2]
    m = S - lag
    auto_path, auto_chunk, auto_block = _plan(path, norms_only, keep_record, S, B, H, I, m)
    path = auto_path
    chunk = auto_chunk if chunk is None else chunk
    block = auto_block if (block is None or not norms_only or keep_record) else block

    with torch.no_grad():
        xa = torch.cat([x_tm, x_tm.new_ones(S, B, 1)], 2)            # [x_t, 1]: W_in and b at once
        if not keep_record:
            del x_tm
        dn = h.new_empty(S, B)                                         # ||delta_t|| (time-major)
        delta = torch.empty_like(h) if keep_record else None
        lt_sq, full_sq = h.new_empty(B), h.new_empty(B)
        grads = long_term = None
        for b0 in range(0, B, block):
            rows = slice(b0, min(B, b0 + block))
            hb, xb = h[:, rows], xa[:, rows]
            if path == "gram":
                buf = h.new_empty(S, hb.shape[1], H)
                for _ in backward(P["W_rec"], P["W_out"], h1, dE1, act, which, S, rows, out=buf[None]):
                    pass
                dn[:, rows] = torch.linalg.vector_norm(buf, dim=2)
                lt_sq[rows], full_sq[rows] = _gram_squared_norms(buf, hb, xb, m)
                del buf
                continue
            acc = {"lt": _Accumulator(), "rest": _Accumulator()}
            out = delta[:, rows] if keep_record else None
            for t0, t1, D in backward(P["W_rec"], P["W_out"], h1, dE1, act, which, chunk, rows,
                                      out=None if out is None else out[None], pivot=m):
                D = D[0]
                acc["lt" if t1 <= m else "rest"].add(D, t0, t1, hb, xb)
                dn[t0:t1, rows] = torch.linalg.vector_norm(D, dim=2)
            lt, rest = acc["lt"], acc["rest"]
            lt.finish(hb.shape[1], H, h)
            lt_sq[rows] = lt.squared_norms()
            if m < S:
                if norms_only:
                    full_sq[rows] = rest.add_(lt).squared_norms()
                else:
                    long_term = lt.grads(I)
                    grads = rest.add_(lt).grads(I)
                    full_sq[rows] = rest.squared_norms()
            else:
                full_sq[rows] = lt_sq[rows]
                if not norms_only:
                    long_term = lt.grads(I)
                    grads = dict(long_term)
            del acc, lt, rest
        full_sq += _output_squared_norms(model.readout, h, dE_do)
        if grads is not None:
            grads.update(output_grads(model.readout, h, dE_do))
    record = None
    if keep_record:
        record = BPTTRecord(x=x_tm, h=h, delta=delta, dE_do=dE_do, loss=loss, output=out_bm,
                            readout=model.readout)
    return PerExampleStats(loss=loss, output=out_bm, lag=lag, delta_norm=dn.T,
                           grad_norm=full_sq.sqrt(), long_term_norm=lt_sq.sqrt(),
                           grads=grads, long_term_grads=long_term, record=record)


def _gram_squared_norms(D: Tensor, h: Tensor, xa: Tensor, m: int) -> tuple[Tensor, Tensor]:
    """Squared per-example norms of sum_{t<m} d_t a_t^T and sum_t d_t a_t^T over
    a_t = [h_{t-1}, x_t, 1] (W_rec, W_in, b), from Gram matrices: sum_{t,s} (d_t.d_s)(a_t.a_s)."""
    Dt = D.transpose(0, 1)                                           # (b, S, H)
    P = torch.bmm(Dt, Dt.transpose(1, 2))                            # d_t . d_s
    xt = xa.transpose(0, 1)
    A = torch.bmm(xt, xt.transpose(1, 2))                            # [x_t,1] . [x_s,1]
    if D.shape[0] > 1:
        ht = h[:-1].transpose(0, 1)                                  # h_{t-1}, t >= 1
        A[:, 1:, 1:].baddbmm_(ht, ht.transpose(1, 2))
    P.mul_(A)
    del A
    lt = P[:, :m, :m].sum((1, 2))
    full = P.sum((1, 2)) if m < D.shape[0] else lt.clone()
    return lt.clamp_min_(0), full.clamp_min_(0)


