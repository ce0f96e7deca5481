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
    the ratio is undefined. Row-vector convention: W_rec^T delta is `delta @ W_rec`. This is the
    definition, differentiated by autograd in the tests; training uses `omega_grads`.
    """
    if record.u is None:
        raise ValueError("omega needs a BPTTRecord made with keep_u=True")
    delta = record.delta[1:].detach()                      # (S-1, B, H): steps k+1 = 1..S-1
    u_sq = record.u[1:].detach().pow(2).sum(-1)            # (S-1, B)
    valid = u_sq >= eps
    if not valid.any():
        return W_rec.sum() * 0.0
    ratio = (delta[valid] @ W_rec).norm(dim=-1) / u_sq[valid].sqrt()
    return (ratio - 1.0).pow(2).mean()


def _omega_and_grad(W: Tensor, delta: Tensor, u_sq: Tensor, m: Tensor) -> tuple[Tensor, Tensor]:
    """Omega and dOmega/dW of K runs over their (K, N, H) deltas, (K, N) squared norms of u and
    m = delta @ W.

    The backward pass is written out: it is what autograd computes for `omega` (mean, pow, div,
    the 2-norm's `grad * (m / ||m||)`, then `delta^T @`), in the same operations, so a run's
    result is bit for bit autograd's (tested), without the graph, which cost a Pascanu run
    more than the rest of its step.
    """
    norm = m.norm(dim=-1)
    u_norm = u_sq.sqrt()
    excess = norm / u_norm - 1.0
    value = excess.pow(2).mean(-1)
    d_excess = torch.full_like(excess, 1.0) / excess.shape[-1]
    d_norm = d_excess * (2.0 * excess) / u_norm
    direction = m / norm.unsqueeze(-1)
    zero = norm == 0
    if bool(zero.any()):          # autograd's convention: a zero norm passes no gradient
        direction.masked_fill_(zero.unsqueeze(-1), 0)
    d_m = d_norm.unsqueeze(-1) * direction
    # run by run, as `passes.weighted_grads` does: a bmm over runs may round a run differently
    return value, torch.stack([dk.t().mm(gk) for dk, gk in zip(delta, d_m)])


def omega_grads(W_rec: Tensor, record: BPTTRecord, eps: float = 1e-20) -> tuple[Tensor, Tensor]:
    """(Omega (K,), dOmega/dW_rec (K, H, H)) of the K runs of a run-major record and their
    stacked W_rec (K, H, H): the gradient with respect to W_rec only."""
    if record.u is None:
        raise ValueError("omega needs a BPTTRecord made with keep_u=True")
    record = record._stacked()
    W = W_rec.detach()
    K, H = W.shape[0], W.shape[-1]
    delta = record.delta[:, 1:].detach().reshape(K, -1, H)         # steps k+1 = 1..S-1
    u_sq = record.u[:, 1:].detach().pow(2).sum(-1).reshape(K, -1)
    # With one readout at the last step, u_k = W_rec^T delta_{k+1} for k < S-1: BPTT formed every
    # m already, in the same bmm rows (tested to the bit), so only dOmega/dW costs a product.
    m = record.u[:, :-1].detach().reshape(K, -1, H) if record.readout == "last" else torch.bmm(delta, W)
    valid = u_sq >= eps
    whole = valid.all(-1).tolist()
    if all(whole):            # the usual case: every pair of every run, in one batched pass
        return _omega_and_grad(W, delta, u_sq, m)
    values, grads = torch.zeros(K, dtype=W.dtype, device=W.device), torch.zeros_like(W)
    ks = [k for k in range(K) if whole[k]]
    if ks:
        values[ks], grads[ks] = _omega_and_grad(W[ks], delta[ks], u_sq[ks], m[ks])
    for k in range(K):        # a run with undefined ratios averages over its valid pairs only
        if not whole[k] and valid[k].any():
            v = valid[k]
            value, grad = _omega_and_grad(W[k:k + 1], delta[k][v][None], u_sq[k][v][None], m[k][v][None])
            values[k], grads[k] = value[0], grad[0]
    return values, grads


def omega_grad(W_rec: Tensor, record: BPTTRecord, eps: float = 1e-20) -> tuple[Tensor, Tensor]:
    """(Omega, dOmega/dW_rec) of one network: `omega_grads` with K = 1."""
    values, grads = omega_grads(W_rec[None], record, eps)
    return values[0], grads[0]


class LSTMNet(nn.Module):
    """torch.nn.LSTM (one layer) with the SRN's linear readout. The forget gate's two biases
    start at `forget_bias` / 2 each (1 in all, the `lstm` baseline's; a larger sum keeps a
    cell's memory over longer lags: Gers et al. 2000, Tallec & Ollivier 2018)."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int, readout: str = "last",
                 generator: torch.Generator | None = None, dtype=torch.float32, device=None,
                 forget_bias: float = 1.0):
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
                # gate order i, f, g, o: the forget gate's two biases sum to forget_bias
                bias[hidden_size:2 * hidden_size] = forget_bias / 2

    def forward(self, x: Tensor) -> Tensor:
        h, _ = self.lstm(x)
        return self.out(h[:, -1] if self.readout == "last" else h)
