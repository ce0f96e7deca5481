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
        """Plain autograd forward: (B, S, I) -> (B, O) or (B, S, O)."""
        self.check_input(x)
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
    W_in, W_rec, b = model.W_in.detach(), model.W_rec.detach(), model.b.detach()
    W_out, b_out = model.W_out.detach(), model.b_out.detach()
    x_tm = x.detach().to(W_in.dtype).transpose(0, 1).contiguous()    # (S, B, I)
    S, B, _ = x_tm.shape
    act = model.activation
    f = _ACT_FN[act]

    with torch.no_grad():
        # forward: the input projection of all steps is one matmul; only W_rec h is sequential
        h = torch.addmm(b, x_tm.reshape(S * B, -1), W_in.T).reshape(S, B, -1)
        if act != "identity":
            h[0] = f(h[0])
        W_rec_T = W_rec.T
        for t in range(1, S):
            h[t].addmm_(h[t - 1], W_rec_T)
            if act == "tanh":
                h[t].tanh_()
            elif act == "relu":
                h[t].relu_()
            elif act == "sigmoid":
                h[t].sigmoid_()

    # dE/do through autograd on the readout alone: exact for any task loss
    if model.readout == "last":
        o = torch.addmm(b_out, h[-1], W_out.T)
        out_bm = o
    else:
        o = (h.reshape(S * B, -1) @ W_out.T + b_out).reshape(S, B, -1)
        out_bm = o.transpose(0, 1)
    o.requires_grad_(True)
    with torch.enable_grad():
        out_for_loss = o if model.readout == "last" else o.transpose(0, 1)
        loss = task.loss(out_for_loss, y)
        (dE_do,) = torch.autograd.grad(loss.sum(), o)
    loss, out_bm = loss.detach(), out_bm.detach()

    with torch.no_grad():
        delta = torch.empty_like(h)
        u = torch.empty_like(h) if keep_u else None
        if model.readout == "last":
            delta.zero_()
            delta[-1] = dE_do @ W_out
        else:
            torch.matmul(dE_do, W_out, out=delta)
        # delta now holds the direct output term of dE/dh_t; add the recurrent term step by step
        for t in range(S - 1, -1, -1):
            if t < S - 1:
                delta[t].addmm_(delta[t + 1], W_rec)
            if keep_u:
                u[t].copy_(delta[t])
            if act == "tanh":
                delta[t].mul_(torch.addcmul(_one(delta), h[t], h[t], value=-1.0))
            elif act == "sigmoid":
                delta[t].mul_(h[t] - h[t] * h[t])
            elif act == "relu":
                delta[t].masked_fill_(h[t] <= 0, 0.0)
    return BPTTRecord(x=x_tm, h=h, delta=delta, dE_do=dE_do.detach(), loss=loss,
                      output=out_bm, readout=model.readout, u=u)


def _one(like: Tensor) -> Tensor:
    return torch.ones((), dtype=like.dtype, device=like.device)


def per_example_stats(model: SRN, task, x: Tensor, y: Tensor, lag: int | None = None,
                      norms_only: bool = False, keep_record: bool = False) -> PerExampleStats:
    """Exact per-example gradients, their long-term components and delta profiles.

    One batched forward and one batched BPTT pass (`bptt`), then batched reductions.
    lag=None uses floor(steps/2). norms_only=True skips the (B, *param.shape) tensors in
    the result (they are still formed transiently, one batched product at a time).
    keep_record=True keeps the BPTTRecord (h, deltas) for further reductions.
    """
    lag = check_lag(lag, task.steps)
    rec = bptt(model, task, x, y)
    S = rec.steps
    m = S - lag
    long_term = rec.recurrent_grads(0, m)
    lt_sq = _squared_norms(long_term)
    if m < S:
        rest = rec.recurrent_grads(m, S)
        full = {k: long_term[k] + rest[k] for k in RECURRENT_PARAMS}
        del rest
    else:
        full = dict(long_term)
    full.update(rec.output_grads())
    full_sq = _squared_norms(full)
    delta_norm = torch.linalg.vector_norm(rec.delta, dim=2).T          # (B, S)
    if norms_only:
        full = long_term = None
    return PerExampleStats(loss=rec.loss, output=rec.output, lag=lag, delta_norm=delta_norm,
                           grad_norm=full_sq.sqrt(), long_term_norm=lt_sq.sqrt(),
                           grads=full, long_term_grads=long_term,
                           record=rec if keep_record else None)


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
