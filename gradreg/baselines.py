"""The baselines SGR is judged against (docs/method.md section 5): Pascanu's regulariser and an LSTM.

Plain SGD and clipping need nothing beyond the batched passes; their steps live in `engine.py`.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .passes import BPTTRecord


def omega(W_rec: Tensor, record: BPTTRecord, eps: float = 1e-20) -> Tensor:
    """Pascanu et al. (2013) vanishing-gradient regulariser, as a differentiable function of W_rec.

        Omega = mean over valid (i, k) of ( ||W_rec^T (f'(z_{k+1}) * u_{i,k+1})|| / ||u_{i,k+1}|| - 1 )^2

    with u_{k+1} = dE/dh_{k+1} and h held constant (both come from the record, detached), so
    f'(z_{k+1}) * u_{k+1} is the stored delta_{k+1}. Pairs with ||u||^2 < eps are skipped: there
    the ratio is undefined. Row-vector convention: W_rec^T delta is `delta @ W_rec`.
    """
    if record.u is None:
        raise ValueError("omega needs a BPTTRecord made with keep_u=True")
    delta = record.delta[1:].detach()                      # (S-1, B, H): steps k+1 = 1..S-1
    u_sq = record.u[1:].detach().pow(2).sum(-1)            # (S-1, B)
    valid = u_sq >= eps
    if not valid.any():
        return W_rec.sum() * 0.0
    numerator = (delta[valid] @ W_rec).norm(dim=-1)
    ratio = numerator / u_sq[valid].sqrt()
    return (ratio - 1.0).pow(2).mean()


def omega_grad(W_rec: Tensor, record: BPTTRecord) -> tuple[Tensor, Tensor]:
    """(Omega, dOmega/dW_rec), gradient with respect to W_rec only."""
    W = W_rec.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        value = omega(W, record)
        (grad,) = torch.autograd.grad(value, W)
    return value.detach(), grad


class LSTMNet(nn.Module):
    """torch.nn.LSTM (one layer) with the SRN's linear readout; forget-gate bias 1."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, readout: str = "last",
                 generator: torch.Generator | None = None, dtype=torch.float32, device=None):
        super().__init__()
        self.input_size, self.hidden_size, self.output_size, self.readout = \
            input_size, hidden_size, output_size, readout
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True, dtype=dtype, device=device)
        self.out = nn.Linear(hidden_size, output_size, dtype=dtype, device=device)
        bound = 1.0 / hidden_size ** 0.5  # PyTorch's default range, drawn from our generator
        with torch.no_grad():
            for p in self.parameters():
                p.copy_((torch.rand(p.shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound)
            for name in ("bias_ih_l0", "bias_hh_l0"):
                bias = getattr(self.lstm, name)
                bias.zero_()
                # gate order i, f, g, o: the forget gate's two biases sum to 1
                bias[hidden_size:2 * hidden_size] = 0.5

    def forward(self, x: Tensor) -> Tensor:
        h, _ = self.lstm(x)
        return self.out(h[:, -1] if self.readout == "last" else h)
