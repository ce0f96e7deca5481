"""The simple recurrent network (SRN) and its initialisation (docs/method.md section 1).

    z_t = W_in x_t + W_rec h_{t-1} + b,    h_t = f(z_t),    h_{-1} = 0
    o   = W_out h_{S-1} + b_out            (readout="last")
    o_t = W_out h_t + b_out                (readout="all")

`SRN.forward` is a plain autograd implementation (the tests' reference); under
torch.no_grad() it runs the hand-written pass of `gradreg.passes` instead. The batched
BPTT lives in `gradreg.passes`, the per-example statistics in `gradreg.stats`.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .passes import PARAM_NAMES, RECURRENT_PARAMS, batch_major, forward, readout, stacked_params

__all__ = ["ACTIVATIONS", "ACTIVATION_FUNCTIONS", "ACTIVATION_GAMMA", "INITS", "READOUTS", "PARAM_NAMES",
           "RECURRENT_PARAMS", "SRN", "make_model", "check_spectral_radius", "spectral_radius"]

ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity")
INITS = ("sparse", "gaussian", "orthogonal", "identity", "xavier")
READOUTS = ("last", "all")

ACTIVATION_FUNCTIONS = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda z: z}
#: gamma = max |f'(z)| of each activation: the factor of the bound
#: ||delta_t|| <= ||delta_{S-1}|| (gamma ||W_rec||_2)^(S-1-t) (docs/method.md section 2.3)
ACTIVATION_GAMMA = {"tanh": 1.0, "relu": 1.0, "sigmoid": 0.25, "identity": 1.0}


def _check_choice(what: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(map(str, allowed))}")


def _check_positive_int(what: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be an integer >= 1, got {value!r}")


def spectral_radius(matrix: Tensor) -> float:
    """Largest |eigenvalue| of a square matrix (computed in float64)."""
    return torch.linalg.eigvals(matrix.detach().double().cpu()).abs().max().item()


def check_spectral_radius(radius) -> None:
    """A target spectral radius for W_rec: a positive finite number, or None (the init's own)."""
    if radius is not None and (isinstance(radius, bool) or not isinstance(radius, (int, float))
                               or not (radius > 0 and math.isfinite(radius))):
        raise ValueError(f"spectral_radius must be a positive number or None, got {radius!r}")


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
        check_spectral_radius(spectral_radius)
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

        Under torch.no_grad() it runs the hand-written in-place pass of `gradreg.passes`
        instead: the same numbers, faster (docs/performance.md)."""
        self.check_input(x)
        if not torch.is_grad_enabled():
            with torch.no_grad():
                P = stacked_params(self)
                x_tm = x.to(P["W_in"].dtype).transpose(0, 1).contiguous()[None]
                h = forward(P["W_in"], P["W_rec"], P["b"], x_tm, self.activation)
                o = readout(P["W_out"], P["b_out"], h, self.readout)
                return batch_major(o, self.readout)[0].contiguous()
        f = ACTIVATION_FUNCTIONS[self.activation]
        pre = x @ self.W_in.T + self.b
        h = torch.zeros(x.shape[0], self.hidden_size, dtype=x.dtype, device=x.device)
        hs = []
        for t in range(x.shape[1]):
            h = f(pre[:, t] + h @ self.W_rec.T)
            hs.append(h)
        if self.readout == "last":
            return h @ self.W_out.T + self.b_out
        return torch.stack(hs, 1) @ self.W_out.T + self.b_out


def make_model(task, hidden_size: int = 50, seed: int = 0, dtype=torch.float32, device="cpu", **kwargs) -> SRN:
    """An SRN sized for `task` (its readout too), initialised from `seed`."""
    return SRN(task.input_size, hidden_size, task.output_size, readout=task.readout,
               generator=torch.Generator().manual_seed(seed), dtype=dtype, device=device, **kwargs)


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
    elif init == "xavier":  # Glorot uniform, as the authors' code: U(-a, a), a = sqrt(6 / (fan_in + fan_out))
        def uniform(rows, cols):
            a = math.sqrt(6.0 / (rows + cols))
            return (torch.rand(rows, cols, generator=generator, dtype=torch.float64) * 2 - 1) * a
        W_in, W_rec, W_out = uniform(H, I), uniform(H, H), uniform(O, H)
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


