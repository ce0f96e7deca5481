"""The simple recurrent network and its exact per-example, lag-resolved BPTT.

METHOD.md sections 1 and 2. For t = 0..S-1 with h_{-1} = 0:

    z_t = W_in x_t + W_rec h_{t-1} + b,    h_t = f(z_t)
    o   = W_out h_{S-1} + b_out            (readout="last")
    o_t = W_out h_t + b_out                (readout="all")

`SRN.forward` is a plain autograd implementation (used by the LSTM-free
baselines' references and by the tests). `bptt` runs ONE batched forward and
ONE batched backward pass by hand, keeping the hidden states h and the deltas
delta_t = dE_i/dz_t of every example. Every per-example quantity of the paper
is then a batched reduction of those two tensors:

    dE_i/dW_in  = sum_t delta_{i,t} x_{i,t}^T
    dE_i/dW_rec = sum_t delta_{i,t} h_{i,t-1}^T
    dE_i/db     = sum_t delta_{i,t}

and the long-term component with lag threshold tau keeps the terms with
t <= S-1-tau. Internally tensors are time-major (S, B, H) so that each step of
the recurrences touches one contiguous (B, H) block.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity")
INITS = ("sparse", "gaussian", "orthogonal", "identity")
READOUTS = ("last", "all")
RECURRENT_PARAMS = ("W_in", "W_rec", "b")  # the parameters of the long-term component
PARAM_NAMES = ("W_in", "W_rec", "b", "W_out", "b_out")

_ACT_FN = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda z: z}


def _check_choice(what: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(map(str, allowed))}")


def _check_positive_int(what: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be an integer >= 1, got {value!r}")


def spectral_radius(matrix: Tensor) -> float:
    """Largest |eigenvalue| of a square matrix (computed in float64)."""
    return torch.linalg.eigvals(matrix.detach().double().cpu()).abs().max().item()


class SRN(nn.Module):
    """Elman network h_t = f(W_in x_t + W_rec h_{t-1} + b) with a linear readout.

    `spectral_radius`: rescale W_rec to this spectral radius after its
    initialisation (None keeps the init's own: 0.95 for "sparse", none else).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int,
                 activation: str = "tanh", init: str = "sparse", readout: str = "last",
                 generator: torch.Generator | None = None, spectral_radius: float | None = None,
                 dtype: torch.dtype = torch.float32, device=None):
        super().__init__()
        for what, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("output_size", output_size)):
            _check_positive_int(what, value)
        _check_choice("activation", activation, ACTIVATIONS)
        _check_choice("init", init, INITS)
        _check_choice("readout", readout, READOUTS)
        if spectral_radius is not None and not (spectral_radius > 0 and math.isfinite(spectral_radius)):
            raise ValueError(f"spectral_radius must be a positive number, got {spectral_radius!r}")
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, output_size
        self.activation, self.init, self.readout = activation, init, readout

        W_in, W_rec, W_out = _initial_weights(input_size, hidden_size, output_size, init,
                                              spectral_radius, generator)
        kw = dict(dtype=dtype, device=device)
        self.W_in = nn.Parameter(W_in.to(**kw))
        self.W_rec = nn.Parameter(W_rec.to(**kw))
        self.b = nn.Parameter(torch.zeros(hidden_size, **kw))
        self.W_out = nn.Parameter(W_out.to(**kw))
        self.b_out = nn.Parameter(torch.zeros(output_size, **kw))

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, {self.output_size}, "
                f"activation={self.activation!r}, init={self.init!r}, readout={self.readout!r}")

    def check_input(self, x: Tensor) -> None:
        if x.ndim != 3 or x.shape[-1] != self.input_size:
            raise ValueError(f"input of shape {tuple(x.shape)} does not fit the model; "
                             f"expected (batch, steps, {self.input_size})")

    def forward(self, x: Tensor) -> Tensor:
        """Plain autograd forward: (B, S, I) -> (B, O) or (B, S, O).

        Under torch.no_grad() it runs the hand-written in-place pass of `bptt` instead: the
        same numbers, a quarter faster (the test checks of training)."""
        self.check_input(x)
        if not torch.is_grad_enabled():
            with torch.no_grad():
                _, h = _forward(self, x)
                W_out, b_out = self.W_out.detach(), self.b_out.detach()
                if self.readout == "last":
                    return torch.addmm(b_out, h[-1], W_out.T)
                S, B, H = h.shape
                o = torch.addmm(b_out, h.reshape(S * B, H), W_out.T).reshape(S, B, -1)
                return o.transpose(0, 1).contiguous()
        f = _ACT_FN[self.activation]
        pre = x @ self.W_in.T + self.b
        h = torch.zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
        hs = []
        for t in range(x.shape[1]):
            h = f(pre[:, t] + h @ self.W_rec.T)
            hs.append(h)
        if self.readout == "last":
            return h @ self.W_out.T + self.b_out
        return torch.stack(hs, 1) @ self.W_out.T + self.b_out


def _initial_weights(I: int, H: int, O: int, init: str, radius: float | None,
                     generator: torch.Generator | None):
    # Drawn on the CPU in float64 so that a seed gives the same network on every device.
    def normal(*shape, std):
        return torch.randn(*shape, generator=generator, dtype=torch.float64) * std

    if init == "sparse":  # Pascanu et al. 2013, "smart_tanh"
        W_in, W_out = normal(H, I, std=0.01), normal(O, H, std=0.01)
        keep = min(15, H)
        cols = torch.rand(H, H, generator=generator, dtype=torch.float64).argsort(dim=1)[:, :keep]
        W_rec = torch.zeros(H, H, dtype=torch.float64)
        W_rec.scatter_(1, cols, normal(H, keep, std=0.01))
        radius = 0.95 if radius is None else radius
    elif init == "gaussian":
        W_in, W_rec, W_out = normal(H, I, std=0.1), normal(H, H, std=0.1), normal(O, H, std=0.1)
    elif init == "orthogonal":
        W_in, W_out = normal(H, I, std=0.1), normal(O, H, std=0.1)
        q, r = torch.linalg.qr(normal(H, H, std=1.0))
        W_rec = q * torch.sign(torch.diagonal(r))  # sign fix: Haar-uniform orthogonal
    else:  # identity: IRNN, Le et al. 2015
        W_in, W_out = normal(H, I, std=0.1), normal(O, H, std=0.1)
        W_rec = torch.eye(H, dtype=torch.float64)
    if radius is not None:
        current = spectral_radius(W_rec)
        if current > 0:
            W_rec = W_rec * (radius / current)
    return W_in, W_rec, W_out


# --------------------------------------------------------------------------- BPTT

def _default_lag(steps: int) -> int:
    return steps // 2


def check_lag(lag, steps: int) -> int:
    if lag is None:
        return _default_lag(steps)
    if isinstance(lag, bool) or not isinstance(lag, int) or not 0 <= lag <= steps - 1:
        raise ValueError(f"lag {lag!r} is outside the allowed range 0..{steps - 1} "
                         f"(an integer lag threshold below the number of steps)")
    return lag


@dataclass
class BPTTRecord:
    """What one batched forward + backward pass keeps (time-major tensors).

    x: (S, B, I) inputs, h: (S, B, H) hidden states, delta: (S, B, H) = dE_i/dz_t,
    dE_do: (B, O) or (S, B, O) output gradients, u: (S, B, H) = dE_i/dh_t when
    asked for (Pascanu's regulariser needs it), loss (B,), output as the model
    returns it (batch-major).
    """
    x: Tensor
    h: Tensor
    delta: Tensor
    dE_do: Tensor
    loss: Tensor
    output: Tensor
    readout: str
    u: Tensor | None = None

    @property
    def steps(self) -> int:
        return self.x.shape[0]

    @property
    def batch_size(self) -> int:
        return self.x.shape[1]

    def recurrent_grads(self, start: int = 0, stop: int | None = None) -> dict[str, Tensor]:
        """Per-example gradients of W_in, W_rec, b from the terms of steps start..stop-1."""
        stop = self.steps if stop is None else stop
        d = self.delta[start:stop].permute(1, 2, 0)            # (B, H, s)
        x = self.x[start:stop].transpose(0, 1)                  # (B, s, I)
        W_in = torch.bmm(d, x)
        lo = max(start, 1)                                      # h_{-1} = 0: step 0 adds nothing to W_rec
        W_rec = torch.bmm(self.delta[lo:stop].permute(1, 2, 0), self.h[lo - 1:stop - 1].transpose(0, 1))
        return {"W_in": W_in, "W_rec": W_rec, "b": d.sum(-1)}

    def output_grads(self) -> dict[str, Tensor]:
        if self.readout == "last":
            return {"W_out": self.dE_do[:, :, None] * self.h[-1][:, None, :],
                    "b_out": self.dE_do}
        return {"W_out": torch.bmm(self.dE_do.permute(1, 2, 0), self.h.transpose(0, 1)),
                "b_out": self.dE_do.sum(0)}

    def batch_grads(self, weights: Tensor, lag: int = 0) -> dict[str, Tensor]:
        """sum_i weights_i * g_i for every parameter, as plain matmuls (no per-example tensors).

        With lag > 0 only the long-term component of W_in, W_rec, b (steps t <= S-1-lag)
        is returned. The SGR step uses weights = 1/n on the chosen examples, 0 elsewhere.
        """
        S, B, H = self.h.shape
        w = weights.to(self.delta.dtype)
        m = S - lag
        wd = self.delta[:m] * w[None, :, None]                 # (m, B, H)
        flat = wd.reshape(m * B, H)
        grads = {"W_in": flat.T @ self.x[:m].reshape(m * B, -1),
                 "W_rec": wd[1:].reshape((m - 1) * B, H).T @ self.h[:m - 1].reshape((m - 1) * B, H),
                 "b": flat.sum(0)}
        if lag == 0:
            if self.readout == "last":
                wo = self.dE_do * w[:, None]
                grads["W_out"] = wo.T @ self.h[-1]
                grads["b_out"] = wo.sum(0)
            else:
                wo = self.dE_do * w[None, :, None]
                grads["W_out"] = wo.reshape(S * B, -1).T @ self.h.reshape(S * B, H)
                grads["b_out"] = wo.sum((0, 1))
        return grads


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


def bptt(model: SRN, task, x: Tensor, y: Tensor, keep_u: bool = False) -> BPTTRecord:
    """One batched forward pass and one batched backward pass, by hand, no autograd graph."""
    _check_compatible(model, task, x, y)
    with torch.no_grad():
        x_tm, h = _forward(model, x)
    loss, out_bm, dE_do = _readout_grad(model, task, h, y)
    with torch.no_grad():
        delta = torch.empty_like(h)
        u = torch.empty_like(h) if keep_u else None
        for _ in _backward(model, h, dE_do, chunk=_BPTT_CHUNK, out=delta, u=u):
            pass
    return BPTTRecord(x=x_tm, h=h, delta=delta, dE_do=dE_do, loss=loss,
                      output=out_bm, readout=model.readout, u=u)


# Internals of the hand-written passes. Everything is time-major: step t of the batch is the
# contiguous (B, H) block h[t], so each step of the recurrences is one matmul and one
# element-wise op on preallocated memory (no per-step temporaries).

_BPTT_CHUNK = 32          # steps whose f'(z) are formed by one element-wise op in `bptt`
_INPLACE_ACT = {"tanh": Tensor.tanh_, "relu": Tensor.relu_, "sigmoid": Tensor.sigmoid_}


def _forward(model: SRN, x: Tensor) -> tuple[Tensor, Tensor]:
    """x (B, S, I) -> time-major inputs (S, B, I) and hidden states h (S, B, H). No grad."""
    W_in, W_rec, b = model.W_in.detach(), model.W_rec.detach(), model.b.detach()
    x_tm = x.detach().to(W_in.dtype).transpose(0, 1).contiguous()    # (S, B, I)
    S, B, _ = x_tm.shape
    # the input projection of all steps is one matmul; only W_rec h is sequential
    h = torch.addmm(b, x_tm.reshape(S * B, -1), W_in.T).reshape(S, B, -1)
    act_ = _INPLACE_ACT.get(model.activation)
    hs = h.unbind(0)
    W_rec_T = W_rec.T
    if act_ is not None:
        act_(hs[0])
        for t in range(1, S):
            act_(hs[t].addmm_(hs[t - 1], W_rec_T))
    else:
        for t in range(1, S):
            hs[t].addmm_(hs[t - 1], W_rec_T)
    return x_tm, h


def _readout_grad(model: SRN, task, h: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """loss (B,), the output as the model returns it, and dE/do: (B, O) or time-major (S, B, O).

    dE/do comes from autograd on the readout alone: exact for any task loss."""
    W_out, b_out = model.W_out.detach(), model.b_out.detach()
    S, B, H = h.shape
    with torch.no_grad():
        if model.readout == "last":
            o = torch.addmm(b_out, h[-1], W_out.T)
        else:
            o = torch.addmm(b_out, h.reshape(S * B, H), W_out.T).reshape(S, B, -1)
    o.requires_grad_(True)
    with torch.enable_grad():
        out_bm = o if model.readout == "last" else o.transpose(0, 1)
        loss = task.loss(out_bm, y)
        (dE_do,) = torch.autograd.grad(loss.sum(), o)
    return loss.detach(), out_bm.detach(), dE_do.detach()


def _fprime(act: str, h: Tensor, out: Tensor) -> None:
    """f'(z) written into `out`, from h = f(z) (every activation's derivative is a function of h)."""
    if act == "tanh":
        torch.addcmul(_one(h), h, h, value=-1.0, out=out)
    elif act == "sigmoid":
        torch.addcmul(h, h, h, value=-1.0, out=out)
    elif act == "relu":
        torch.sign(h, out=out)            # h = relu(z) >= 0: sign(h) = 1 where z > 0, else 0


def _chunk_bounds(S: int, chunk: int, pivot: int) -> list[tuple[int, int]]:
    """Steps 0..S-1 cut into [t0, t1) pieces of at most `chunk` steps, cut at `pivot` (the lag
    boundary) and at pivot + k * chunk; last piece first."""
    cuts = sorted({0, S, pivot} | set(range(pivot % chunk, S, chunk)))
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:])][::-1]


def _backward(model: SRN, h: Tensor, dE_do: Tensor, chunk: int, rows: slice = slice(None),
              out: Tensor | None = None, u: Tensor | None = None, pivot: int | None = None):
    """The BPTT recursion for the examples `rows`, from the last step down, `chunk` steps at a time.

    Yields (t0, t1, D) for each piece: D (t1 - t0, b, H) holds delta_t = dE/dz_t of steps
    t0..t1-1 and is valid until the next piece is asked for. With `out` (S, b, H) every delta is
    written there (the full record); without it one buffer of `chunk` steps is reused, so the
    memory is O(chunk * b * H). `u` (S, b, H), optional, receives dE/dh_t. Pieces are cut at
    `pivot` (default: none) so that no piece straddles the lag boundary.
    """
    act = model.activation
    W_rec, W_out = model.W_rec.detach(), model.W_out.detach()
    hb = h[:, rows]
    S, b, H = hb.shape
    chunk = max(1, min(chunk, S))
    pivot = S if pivot is None else pivot
    last = model.readout == "last"
    dE = dE_do[rows] if last else dE_do[:, rows]
    buf = carry = None
    if out is None:
        buf = torch.empty(chunk, b, H, dtype=h.dtype, device=h.device)
        carry = torch.empty(b, H, dtype=h.dtype, device=h.device)
    has_fp = act != "identity"
    tmp = torch.empty(b, H, dtype=h.dtype, device=h.device) if has_fp else None
    prev = None
    for t0, t1 in _chunk_bounds(S, chunk, pivot):
        D = out[t0:t1] if out is not None else buf[:t1 - t0]
        if has_fp:
            _fprime(act, hb[t0:t1], D)      # D holds f'(z_t) until step t overwrites it with delta_t
        Ds = D.unbind(0)
        for j in range(t1 - t0 - 1, -1, -1):
            t = t0 + j
            d = Ds[j]
            target = tmp if has_fp else d   # dE/dh_t = direct output term + W_rec^T delta_{t+1}
            if last:
                if prev is None:
                    torch.mm(dE, W_out, out=target)
                else:
                    torch.mm(prev, W_rec, out=target)
            else:
                torch.mm(dE[t], W_out, out=target)
                if prev is not None:
                    target.addmm_(prev, W_rec)
            if u is not None:
                u[t].copy_(target)
            if has_fp:
                d.mul_(tmp)
            prev = d
        if out is None and t0 > 0:      # the buffer is reused: keep delta_{t0} for the next piece
            carry.copy_(prev)
            prev = carry
        yield t0, t1, D


def _output_grads(readout: str, h: Tensor, dE_do: Tensor) -> dict[str, Tensor]:
    if readout == "last":
        return {"W_out": dE_do[:, :, None] * h[-1][:, None, :], "b_out": dE_do}
    return {"W_out": torch.bmm(dE_do.permute(1, 2, 0), h.transpose(0, 1)), "b_out": dE_do.sum(0)}


def _output_squared_norms(readout: str, h: Tensor, dE_do: Tensor) -> Tensor:
    if readout == "last":   # ||a b^T||^2 = ||a||^2 ||b||^2
        return dE_do.pow(2).sum(1) * (h[-1].pow(2).sum(1) + 1.0)
    return _squared_norms(_output_grads(readout, h, dE_do))


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

    def add_(self, other: "_Accumulator") -> "_Accumulator":
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
    lag = check_lag(lag, task.steps)
    _check_compatible(model, task, x, y)
    if path not in (None, "direct", "gram"):
        raise ValueError(f"unknown path {path!r}; allowed: direct, gram")
    if path == "gram" and (not norms_only or keep_record):
        raise ValueError("path 'gram' gives norms only (norms_only=True, keep_record=False)")
    with torch.no_grad():
        x_tm, h = _forward(model, x)
    loss, out_bm, dE_do = _readout_grad(model, task, h, y)
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
                for t0, t1, D in _backward(model, h, dE_do, S, rows, out=buf):
                    pass
                dn[:, rows] = torch.linalg.vector_norm(buf, dim=2)
                lt_sq[rows], full_sq[rows] = _gram_squared_norms(buf, hb, xb, m)
                del buf
                continue
            acc = {"lt": _Accumulator(), "rest": _Accumulator()}
            out = delta[:, rows] if keep_record else None
            for t0, t1, D in _backward(model, h, dE_do, chunk, rows, out=out, pivot=m):
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
            grads.update(_output_grads(model.readout, h, dE_do))
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


def _one(like: Tensor) -> Tensor:
    return torch.ones((), dtype=like.dtype, device=like.device)


def _check_compatible(model: SRN, task, x: Tensor, y: Tensor) -> None:
    expected = (task.steps, task.input_size)
    if x.ndim != 3 or tuple(x.shape[1:]) != expected:
        raise ValueError(f"x of shape {tuple(x.shape)} does not fit task {task.name!r}; "
                         f"expected (batch, {expected[0]}, {expected[1]})")
    if model.input_size != task.input_size or model.output_size != task.output_size:
        raise ValueError(f"model sizes (input {model.input_size}, output {model.output_size}) do not fit "
                         f"task {task.name!r} (input {task.input_size}, output {task.output_size})")
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"y has batch size {y.shape[0]} but x has {x.shape[0]}")
    if getattr(task, "readout", "last") == "all" and model.readout != "all":
        raise ValueError(f"task {task.name!r} scores every step: it needs readout='all', "
                         f"got readout={model.readout!r}")
