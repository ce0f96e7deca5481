"""A plain autograd implementation of the SRN's gradients: the independent reference that the
batched BPTT of `gradreg.passes` and the per-example statistics of `gradreg.stats` are checked
against (notebooks 02 and 03, and the tests)."""
from __future__ import annotations

import pandas as pd
import torch

from ..model import ACTIVATION_FUNCTIONS, SRN
from ..stats import per_example_stats


def autograd_reference(model: SRN, task, x: torch.Tensor, y: torch.Tensor, weights=None) -> dict:
    """Gradients of sum_i w_i E_i by plain autograd, an independent check of `bptt`.

    Each step t gets its own leaf copy of W_in, W_rec and b, all equal to the model's, so
    autograd's gradient for copy t is exactly the step-t term of the BPTT sum; and
    dE/dz_t is read off z_t. Returns step_grads {"W_in": (S, H, I), "W_rec": (S, H, H),
    "b": (S, H)}, output_grads {"W_out", "b_out"}, dz (B, S, H) = w_i delta_{i,t}, loss (B,).
    """
    f = ACTIVATION_FUNCTIONS[model.activation]
    B, S, _ = x.shape
    H = model.hidden_size
    x = x.to(model.W_in.dtype)
    w = torch.ones(B, dtype=x.dtype, device=x.device) if weights is None else weights.to(x.dtype)
    W_in = model.W_in.detach().expand(S, *model.W_in.shape).clone().requires_grad_()
    W_rec = model.W_rec.detach().expand(S, H, H).clone().requires_grad_()
    b = model.b.detach().expand(S, H).clone().requires_grad_()
    W_out = model.W_out.detach().clone().requires_grad_()
    b_out = model.b_out.detach().clone().requires_grad_()
    with torch.enable_grad():
        h = torch.zeros(B, H, dtype=x.dtype, device=x.device)
        zs, hs = [], []
        for t in range(S):
            z = x[:, t] @ W_in[t].T + h @ W_rec[t].T + b[t]
            z.retain_grad()
            h = f(z)
            zs.append(z)
            hs.append(h)
        out = h @ W_out.T + b_out if model.readout == "last" else torch.stack(hs, 1) @ W_out.T + b_out
        loss = task.loss(out, y)
        (loss * w).sum().backward()
    return dict(step_grads={"W_in": W_in.grad, "W_rec": W_rec.grad, "b": b.grad},
                output_grads={"W_out": W_out.grad, "b_out": b_out.grad},
                dz=torch.stack([z.grad for z in zs], 1), loss=loss.detach())


def reference_grads(ref: dict, lag: int = 0) -> dict:
    """The full gradient (lag=0, all parameters) or the long-term component (lag > 0:
    W_in, W_rec, b from the steps t <= S-1-lag) of an `autograd_reference` result."""
    S = ref["step_grads"]["b"].shape[0]
    grads = {k: v[:S - lag].sum(0) for k, v in ref["step_grads"].items()}
    if lag == 0:
        grads.update(ref["output_grads"])
    return grads


def _relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    scale = expected.abs().max().clamp_min(1e-300)
    return ((actual - expected).abs().max() / scale).item()


def exactness_check(model: SRN, task, x, y, lag: int | None = None) -> pd.DataFrame:
    """`per_example_stats` (one batched pass) against a per-example autograd loop.

    One row per quantity: the largest relative error max|a - b| / max|b| over the batch.
    Use float64 to see the round-off floor (~1e-15).
    """
    stats = per_example_stats(model, task, x, y, lag=lag)
    lag = stats.lag
    refs = [autograd_reference(model, task, x[i:i + 1], y[i:i + 1]) for i in range(x.shape[0])]
    ref_full = [reference_grads(r, 0) for r in refs]
    ref_lt = [reference_grads(r, lag) for r in refs]
    rows = [("loss", stats.loss, torch.cat([r["loss"] for r in refs])),
            ("delta_norm (every step)", stats.delta_norm,
             torch.cat([r["dz"].norm(dim=-1) for r in refs]))]
    for name in stats.grads:
        rows.append((f"grads[{name}]", stats.grads[name], torch.stack([g[name] for g in ref_full])))
    for name in stats.long_term_grads:
        rows.append((f"long_term_grads[{name}]", stats.long_term_grads[name],
                     torch.stack([g[name] for g in ref_lt])))

    def norms(gs):
        return torch.stack([torch.sqrt(sum((v ** 2).sum() for v in g.values())) for g in gs])
    rows.append(("grad_norm", stats.grad_norm, norms(ref_full)))
    rows.append(("long_term_norm", stats.long_term_norm, norms(ref_lt)))
    return pd.DataFrame([dict(quantity=q, max_relative_error=_relative_error(a, b), dtype=str(a.dtype))
                         for q, a, b in rows])
