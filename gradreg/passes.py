"""The hand-written batched passes of the SRN (docs/method.md sections 1-2), for K runs at once.

For t = 0..S-1 with h_{-1} = 0:

    z_t = W_in x_t + W_rec h_{t-1} + b,    h_t = f(z_t)
    o   = W_out h_{S-1} + b_out            (readout="last")
    o_t = W_out h_t + b_out                (readout="all")

One forward and one backward pass keep the hidden states h and the deltas
delta_t = dE_i/dz_t of every example; every per-example quantity of the paper is
a batched reduction of those two tensors:

    dE_i/dW_in  = sum_t delta_{i,t} x_{i,t}^T
    dE_i/dW_rec = sum_t delta_{i,t} h_{i,t-1}^T
    dE_i/db     = sum_t delta_{i,t}

and the long-term component with lag threshold tau keeps the terms with t <= S-1-tau.

Every function here takes a leading run dimension K: K networks with their own weights
(stacked, e.g. W_rec (K, H, H)), each with its own batch. Tensors are run-major then
time-major, (K, S, B, H), so that step t of run k is one contiguous (B, H) block. A
single network is the case K = 1 (`bptt` returns its record without the run dimension).
Products are `bmm`s, which on the CPU give each run the same numbers for any number of runs
(a single run's readout is computed as one of two, see `readout`), so a run's numbers do
not depend on which other runs share its batch, nor on whether it has any.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

PARAM_NAMES = ("W_in", "W_rec", "b", "W_out", "b_out")
RECURRENT_PARAMS = ("W_in", "W_rec", "b")  # the parameters of the long-term component


def default_lag(steps: int) -> int:
    return steps // 2


def check_lag(lag, steps: int) -> int:
    """The lag threshold tau: None means floor(steps / 2); else an integer in 0..steps-1."""
    if lag is None:
        return default_lag(steps)
    if isinstance(lag, bool) or not isinstance(lag, int) or not 0 <= lag <= steps - 1:
        raise ValueError(f"lag {lag!r} is outside the allowed range 0..{steps - 1} "
                         f"(an integer lag threshold below the number of steps)")
    return lag


# --------------------------------------------------------------------------- the record

@dataclass
class BPTTRecord:
    """What one batched forward + backward pass keeps, run-major and time-major.

    x: (K, S, B, I) inputs, h: (K, S, B, H) hidden states, delta: (K, S, B, H) = dE_i/dz_t,
    dE_do: (K, B, O) or (K, S, B, O) output gradients, loss: (K, B), u: (K, S, B, H) = dE_i/dh_t
    when asked for (Pascanu's regulariser needs it). `bptt` returns the K = 1 record with the
    run dimension dropped (x (S, B, I), ...); `record.run(k)` is run k's record in that form.
    output: the model's output (batch-major), when the pass made it for one network.
    """
    x: Tensor
    h: Tensor
    delta: Tensor
    dE_do: Tensor
    loss: Tensor
    output: Tensor | None
    readout: str
    u: Tensor | None = None

    @property
    def runs(self) -> bool:
        """True when the tensors carry the leading run dimension."""
        return self.h.ndim == 4

    def run(self, k: int) -> BPTTRecord:
        """Run k's record without the run dimension (views, no copies)."""
        return BPTTRecord(x=self.x[k], h=self.h[k], delta=self.delta[k], dE_do=self.dE_do[k],
                          loss=self.loss[k], output=None, readout=self.readout,
                          u=None if self.u is None else self.u[k])

    def _stacked(self) -> BPTTRecord:
        if self.runs:
            return self
        return BPTTRecord(x=self.x[None], h=self.h[None], delta=self.delta[None], dE_do=self.dE_do[None],
                          loss=self.loss[None], output=None, readout=self.readout,
                          u=None if self.u is None else self.u[None])

    @property
    def steps(self) -> int:
        return self.h.shape[-3]

    @property
    def batch_size(self) -> int:
        return self.h.shape[-2]

    def recurrent_grads(self, start: int = 0, stop: int | None = None) -> dict[str, Tensor]:
        """Per-example gradients of W_in, W_rec, b from the terms of steps start..stop-1:
        (B, *param.shape), or (K, B, *param.shape) for a record with runs."""
        r = self._stacked()
        stop = r.steps if stop is None else stop
        d = r.delta[:, start:stop].permute(0, 2, 3, 1)                      # (K, B, H, s)
        W_in = torch.matmul(d, r.x[:, start:stop].transpose(1, 2))          # (K, B, H, I)
        lo = max(start, 1)              # h_{-1} = 0: step 0 adds nothing to W_rec
        W_rec = torch.matmul(r.delta[:, lo:stop].permute(0, 2, 3, 1), r.h[:, lo - 1:stop - 1].transpose(1, 2))
        grads = {"W_in": W_in, "W_rec": W_rec, "b": d.sum(-1)}
        return grads if self.runs else {k: v[0] for k, v in grads.items()}

    def output_grads(self) -> dict[str, Tensor]:
        """Per-example gradients of W_out, b_out (no run dimension: one network)."""
        return output_grads(self.readout, self.h, self.dE_do)

    def batch_grads(self, weights: Tensor, lag: int = 0) -> dict[str, Tensor]:
        """sum_i weights_i * g_i for every parameter, as plain matmuls (no per-example tensors).

        weights (B,), or (K, B) for a record with runs. With lag > 0 only the long-term
        component of W_in, W_rec, b (steps t <= S-1-lag) is returned. The SGR step uses
        weights = 1/n on the chosen examples, 0 elsewhere.
        """
        r = self._stacked()
        w = weights if self.runs else weights[None]
        grads = weighted_grads(r, w, r.steps - lag, output=(lag == 0))
        return grads if self.runs else {k: v[0] for k, v in grads.items()}


def output_grads(readout: str, h: Tensor, dE_do: Tensor) -> dict[str, Tensor]:
    """Per-example gradients of W_out, b_out of one network from h (S, B, H) and dE/do."""
    if readout == "last":
        return {"W_out": dE_do[:, :, None] * h[-1][:, None, :], "b_out": dE_do}
    return {"W_out": torch.bmm(dE_do.permute(1, 2, 0), h.transpose(0, 1)), "b_out": dE_do.sum(0)}


def weighted_grads(record: BPTTRecord, w: Tensor, m: int, output: bool) -> dict[str, Tensor]:
    """sum_i w_{k,i} g_{k,i} of every run k over the steps t < m (W_in, W_rec, b), and of the
    readout parameters when `output`; record with runs, w (K, B) -> (K, *param.shape).

    The products are taken run by run with `mm`: for some shapes (an odd number of columns)
    a `bmm` over runs rounds a run's A^T B differently from that run alone, and a run's
    numbers must not depend on its companions."""
    h, x = record.h, record.x
    K, S, B, H = h.shape
    wd = record.delta[:, :m] * w.to(h.dtype)[:, None, :, None]             # (K, m, B, H)
    if output:
        wo = record.dE_do * (w[:, :, None] if record.readout == "last" else w[:, None, :, None]).to(h.dtype)
    runs = []
    for k in range(K):
        flat = wd[k].reshape(m * B, H)
        g = {"W_in": flat.T @ x[k, :m].reshape(m * B, -1),
             "W_rec": wd[k, 1:].reshape((m - 1) * B, H).T @ h[k, :m - 1].reshape((m - 1) * B, H),
             "b": flat.sum(0)}
        if output:
            if record.readout == "last":
                g["W_out"] = wo[k].T @ h[k, -1]
                g["b_out"] = wo[k].sum(0)
            else:
                g["W_out"] = wo[k].reshape(S * B, -1).T @ h[k].reshape(S * B, H)
                g["b_out"] = wo[k].sum((0, 1))
        runs.append(g)
    if K == 1:
        return {name: v[None] for name, v in runs[0].items()}
    return {name: torch.stack([g[name] for g in runs]) for name in runs[0]}


def pool_scores(record: BPTTRecord, lag: int, need_gram: bool = False, need_scores: bool = True):
    """Long-term scores s_i(lag) = ||long-term gradient of example i||, vanishing ratios
    r_i(lag) = ||delta_{S-1-lag}|| / ||delta_{S-1}|| and (optionally) the Gram matrix of the
    long-term gradients (float64), from one record: (B,), (B,), (B, B), or with a leading
    run dimension for a record with runs. Scores are None when not needed."""
    r = record._stacked()
    S = r.steps
    # the two steps the ratio needs (each norm is over its own H entries: the same numbers as
    # the norms of all S steps)
    delta_norm = torch.linalg.vector_norm(r.delta[:, [S - 1 - lag, S - 1]], dim=3)     # (K, 2, B)
    ratios = delta_norm[:, 0] / delta_norm[:, 1]
    scores = gram = None
    if need_scores or need_gram:
        lt = r.recurrent_grads(0, S - lag)
        flat = torch.cat([g.flatten(2) for g in lt.values()], 2)            # (K, B, P)
        scores = flat.pow(2).sum(2).sqrt()
        if need_gram:
            gram = flat.double() @ flat.double().transpose(1, 2)
    if record.runs:
        return scores, ratios, gram
    return (None if scores is None else scores[0]), ratios[0], (None if gram is None else gram[0])


# --------------------------------------------------------------------------- the passes

_INPLACE_ACT = {"tanh": Tensor.tanh_, "relu": Tensor.relu_, "sigmoid": Tensor.sigmoid_}


def forward(W_in: Tensor, W_rec: Tensor, b: Tensor, x: Tensor, activation: str) -> Tensor:
    """Hidden states h (K, S, B, H) of K networks on their inputs x (K, S, B, I). No grad."""
    K, S, B, I = x.shape
    H = W_rec.shape[1]
    # the input projection of all steps is one product per run; only W_rec h is sequential
    h = torch.baddbmm(b[:, None, :], x.reshape(K, S * B, I), W_in.transpose(1, 2)).view(K, S, B, H)
    hs = h.unbind(1)
    W_rec_T = W_rec.transpose(1, 2)
    act_ = _INPLACE_ACT.get(activation)
    # W_rec h_{t-1} into a buffer, then added: the same numbers as baddbmm_ (tested), whose CPU
    # kernel loops over the runs and is slower at a sweep's batch size (docs/performance.md)
    recurrent = torch.empty_like(hs[0])
    if act_ is not None:
        act_(hs[0])
    for t in range(1, S):
        hs[t].add_(torch.bmm(hs[t - 1], W_rec_T, out=recurrent))
        if act_ is not None:
            act_(hs[t])
    return h


def readout(W_out: Tensor, b_out: Tensor, h: Tensor, which: str) -> Tensor:
    """Outputs of K networks: (K, B, O) for readout "last", time-major (K, S, B, O) for "all"."""
    K, S, B, H = h.shape
    last = h[:, -1] if which == "last" else h.reshape(K, S * B, H)
    if K == 1:
        # On the CPU a bmm of one matrix takes another kernel than a bmm of several, and with
        # one output column (adding, multiplication: O = 1) the two round differently. A single
        # network's readout is therefore the first of two copies (padded before the transpose:
        # the layout of W_out^T picks the kernel too), so that a run's numbers are the same
        # alone as beside others. The readout is a tiny product; the copy costs nothing.
        o = torch.baddbmm(torch.cat([b_out, b_out])[:, None, :], torch.cat([last, last]),
                          torch.cat([W_out, W_out]).transpose(1, 2))[:1]
    else:
        o = torch.baddbmm(b_out[:, None, :], last, W_out.transpose(1, 2))
    return o if which == "last" else o.view(K, S, B, -1)


def batch_major(o: Tensor, which: str) -> Tensor:
    """(K, B, O) stays; time-major (K, S, B, O) becomes (K, B, S, O), as the tasks score it."""
    return o if which == "last" else o.transpose(1, 2)


def readout_grad(task, o: Tensor, y: Tensor, which: str, loss=None) -> tuple[Tensor, Tensor]:
    """loss (K, B) and dE/do, shaped like o, for outputs o of K networks and targets y (K, B, ...).
    dE/do comes from autograd on the per-example loss alone: exact for any task. `loss`: a
    callable (output, y) -> (B,) such as `task.mse_loss`; None: `task.loss`."""
    K = o.shape[0]
    loss_fn = task.loss if loss is None else loss
    o = o.detach().requires_grad_(True)
    with torch.enable_grad():
        out = batch_major(o, which)
        loss = loss_fn(out.reshape(K * out.shape[1], *out.shape[2:]), y.reshape(K * y.shape[1], *y.shape[2:]))
        (dE_do,) = torch.autograd.grad(loss.sum(), o)
    return loss.detach().view(K, -1), dE_do


def fprime(activation: str, h: Tensor, out: Tensor) -> None:
    """f'(z) written into `out`, from h = f(z) (every activation's derivative is a function of h)."""
    if activation == "tanh":
        torch.addcmul(torch.ones((), dtype=h.dtype, device=h.device), h, h, value=-1.0, out=out)
    elif activation == "sigmoid":
        torch.addcmul(h, h, h, value=-1.0, out=out)
    elif activation == "relu":
        torch.sign(h, out=out)            # h = relu(z) >= 0: sign(h) = 1 where z > 0, else 0


def chunk_bounds(S: int, chunk: int, pivot: int) -> list[tuple[int, int]]:
    """Steps 0..S-1 cut into [t0, t1) pieces of at most `chunk` steps, cut at `pivot` (the lag
    boundary) and at pivot + k * chunk; last piece first."""
    cuts = sorted({0, S, pivot} | set(range(pivot % chunk, S, chunk)))
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:])][::-1]


def backward(W_rec: Tensor, W_out: Tensor, h: Tensor, dE_do: Tensor, activation: str, which: str,
             chunk: int, rows: slice = slice(None), out: Tensor | None = None,
             u: Tensor | None = None, pivot: int | None = None):
    """The BPTT recursion of K networks for the examples `rows`, from the last step down,
    `chunk` steps at a time.

    Yields (t0, t1, D) for each piece: D (K, t1 - t0, b, H) holds delta_t = dE/dz_t of steps
    t0..t1-1 and is valid until the next piece is asked for. With `out` (K, S, b, H) every delta
    is written there (the full record); without it one buffer of `chunk` steps is reused, so the
    memory is O(K * chunk * b * H). `u` (K, S, b, H), optional, receives dE/dh_t. Pieces are
    cut at `pivot` (default: none) so that no piece straddles the lag boundary.
    """
    hb = h[:, :, rows]
    K, S, b, H = hb.shape
    chunk = max(1, min(chunk, S))
    pivot = S if pivot is None else pivot
    last = which == "last"
    dE = dE_do[:, rows] if last else dE_do[:, :, rows]
    buf = carry = None
    if out is None:
        buf = torch.empty(K, chunk, b, H, dtype=h.dtype, device=h.device)
        carry = torch.empty(K, b, H, dtype=h.dtype, device=h.device)
    has_fp = activation != "identity"
    tmp = torch.empty(K, b, H, dtype=h.dtype, device=h.device) if has_fp else None
    prev = None
    for t0, t1 in chunk_bounds(S, chunk, pivot):
        D = out[:, t0:t1] if out is not None else buf[:, :t1 - t0]
        if has_fp:
            fprime(activation, hb[:, t0:t1], D)  # D holds f'(z_t) until step t overwrites it
        Ds = D.unbind(1)
        for j in range(t1 - t0 - 1, -1, -1):
            t = t0 + j
            d = Ds[j]
            target = tmp if has_fp else d   # dE/dh_t = direct output term + W_rec^T delta_{t+1}
            if last:
                if prev is None:
                    torch.bmm(dE, W_out, out=target)
                else:
                    torch.bmm(prev, W_rec, out=target)
            else:
                torch.bmm(dE[:, t], W_out, out=target)
                if prev is not None:
                    target.baddbmm_(prev, W_rec)
            if u is not None:
                u[:, t].copy_(target)
            if has_fp:
                d.mul_(tmp)
            prev = d
        if out is None and t0 > 0:      # the buffer is reused: keep delta_{t0} for the next piece
            carry.copy_(prev)
            prev = carry
        yield t0, t1, D


# Steps whose f'(z) are formed by one element-wise op when the whole record is kept.
BPTT_CHUNK = 32


def run_pass(params: dict[str, Tensor], task, x: Tensor, y: Tensor, activation: str, which: str,
             keep_u: bool = False, loss=None) -> BPTTRecord:
    """One forward and one backward pass of K networks (stacked `params`, PARAM_NAMES -> (K, ...))
    on their batches x (K, B, S, I), y (K, B, ...): the record with runs. No autograd graph.
    `loss`: the per-example loss (see `readout_grad`; None: the task's)."""
    with torch.no_grad():
        x_tm = x.transpose(1, 2).contiguous()                               # (K, S, B, I)
        h = forward(params["W_in"], params["W_rec"], params["b"], x_tm, activation)
        o = readout(params["W_out"], params["b_out"], h, which)
    loss, dE_do = readout_grad(task, o, y, which, loss=loss)
    with torch.no_grad():
        delta = torch.empty_like(h)
        u = torch.empty_like(h) if keep_u else None
        for _ in backward(params["W_rec"], params["W_out"], h, dE_do, activation, which,
                          chunk=BPTT_CHUNK, out=delta, u=u):
            pass
    return BPTTRecord(x=x_tm, h=h, delta=delta, dE_do=dE_do, loss=loss, output=o, readout=which, u=u)


def stacked_params(model) -> dict[str, Tensor]:
    """One network's parameters as K = 1 stacks (detached views)."""
    return {name: getattr(model, name).detach()[None] for name in PARAM_NAMES}


def bptt(model, task, x: Tensor, y: Tensor, keep_u: bool = False) -> BPTTRecord:
    """One batched forward pass and one batched backward pass of one SRN, by hand, no autograd
    graph: the record of the K = 1 pass without its run dimension (x (S, B, I), h (S, B, H), ...)."""
    check_compatible(model, task, x, y)
    x = x.detach().to(model.W_in.dtype)
    rec = run_pass(stacked_params(model), task, x[None], y[None], model.activation, model.readout,
                   keep_u=keep_u)
    out = rec.output[0]
    return BPTTRecord(x=rec.x[0], h=rec.h[0], delta=rec.delta[0], dE_do=rec.dE_do[0], loss=rec.loss[0],
                      output=out if model.readout == "last" else out.transpose(0, 1),
                      readout=model.readout, u=None if rec.u is None else rec.u[0])


def check_compatible(model, task, x: Tensor, y: Tensor) -> None:
    """ValueError unless the model and the batch (x, y) fit the task; TypeError for an argument
    of the wrong kind."""
    _check_kinds(model, task, x, y)
    expected = (task.steps, task.input_size)
    if x.ndim != 3 or tuple(x.shape[1:]) != expected:
        raise ValueError(f"x of shape {tuple(x.shape)} does not fit task {task.name!r}; "
                         f"expected (batch, {expected[0]}, {expected[1]})")
    if model.input_size != task.input_size or model.output_size != task.output_size:
        raise ValueError(f"model sizes (input {model.input_size}, output {model.output_size}) do not fit "
                         f"task {task.name!r} (input {task.input_size}, output {task.output_size})")
    if x.shape[0] == 0:
        raise ValueError("empty batch: x holds 0 sequences; pass at least one")
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"y has batch size {y.shape[0]} but x has {x.shape[0]}")
    if task.kind == "classification" and not (y.dtype.is_floating_point or y.dtype == torch.bool) \
            and bool(((y < 0) | (y >= task.output_size)).any()):
        raise ValueError(f"class labels must lie in 0..{task.output_size - 1} for task {task.name!r}; "
                         f"y holds values from {int(y.min())} to {int(y.max())}")
    if getattr(task, "readout", "last") == "all" and model.readout != "all":
        raise ValueError(f"task {task.name!r} scores every step: it needs readout='all', "
                         f"got readout={model.readout!r}")


def _check_kinds(model, task, x, y) -> None:
    """TypeError for an argument of the wrong kind, ValueError for a wrong dtype or device,
    each naming the argument (before any of them is used)."""
    if not all(isinstance(getattr(model, name, None), torch.Tensor) for name in PARAM_NAMES):
        raise TypeError(f"model must be a gradreg SRN (parameters {', '.join(PARAM_NAMES)}), got "
                        f"{type(model).__name__}; an LSTM has no per-example passes here")
    if isinstance(task, str) or not all(hasattr(task, a) for a in ("steps", "input_size", "output_size", "kind")):
        raise TypeError(f"task must be a task object (gradreg.make_task(name, length)), got "
                        f"{type(task).__name__} {task!r}"[:200])
    for name, value in (("x", x), ("y", y)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}; "
                            f"convert it with torch.as_tensor({name})")
    device = model.W_in.device
    for name, value in (("x", x), ("y", y)):
        if value.device != device:
            raise ValueError(f"{name} is on device {value.device} but the model is on {device}; "
                             f"move it with {name}.to({str(device)!r})")
    if not x.dtype.is_floating_point:
        raise ValueError(f"x must be a floating-point tensor (the task's one-hot inputs), got {x.dtype}")
    if task.kind == "classification":
        if y.dtype not in (torch.int64, torch.bool) and not y.dtype.is_floating_point:
            raise ValueError(f"y holds {str(y.dtype).removeprefix('torch.')} class labels; pass int64 "
                             "(y.long())")
    elif not y.dtype.is_floating_point:
        raise ValueError(f"y must be a floating-point tensor of targets for task {task.name!r}, got "
                         f"{str(y.dtype).removeprefix('torch.')}")
