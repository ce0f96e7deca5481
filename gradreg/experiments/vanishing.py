"""Notebook 01, vanishing gradients: delta profiles of untrained SRNs against the bound
||delta_t|| <= ||delta_{S-1}|| (gamma ||W_rec||_2)^(S-1-t) (docs/method.md section 2.3)."""
from __future__ import annotations

import pandas as pd
import torch

from ..model import ACTIVATION_GAMMA, SRN, spectral_radius
from ..stats import per_example_stats
from ..tasks import make_task


def delta_profiles(task: str = "temporal_order", length: int = 100, activations=("tanh", "relu", "identity"),
                   radii=(0.5, 0.9, 1.0, 1.1), batch_size: int = 256, hidden_size: int = 50, seed: int = 0,
                   init: str = "sparse", device="cpu", dtype=torch.float64) -> pd.DataFrame:
    """Delta profiles of untrained SRNs against the bound, one row per (activation, radius, lag).

    For each network, r_i(l) = ||delta_{i,S-1-l}|| / ||delta_{i,S-1}|| over a batch; columns:
    median, q25, q75 and max of r_i(l) over examples, bound = (gamma ||W_rec||_2)^l,
    asymptotic = rho(W_rec)^l, max_over_bound = max_i r_i(l) / bound (the bound holds
    when it is <= 1), spectral_norm = ||W_rec||_2, gamma.
    """
    t = make_task(task, length)
    rows = []
    for activation in activations:
        for radius in radii:
            g = torch.Generator().manual_seed(seed)
            model = SRN(t.input_size, hidden_size, t.output_size, activation=activation, init=init,
                        readout=t.readout, generator=g, spectral_radius=radius, dtype=dtype, device=device)
            x, y = t.sample(batch_size, generator=torch.Generator().manual_seed(seed + 1))
            stats = per_example_stats(model, t, x.to(device=device, dtype=dtype), y.to(device), norms_only=True)
            dn = stats.delta_norm.double().cpu()                       # (B, S)
            last = dn[:, -1:]
            ok = (last[:, 0] > 0) & torch.isfinite(last[:, 0])
            ratio = (dn[ok] / last[ok]).flip(1)                        # column l = lag
            gamma = ACTIVATION_GAMMA[activation]
            norm2 = torch.linalg.matrix_norm(model.W_rec.detach().double().cpu(), ord=2).item()
            rho = spectral_radius(model.W_rec)
            lags = torch.arange(ratio.shape[1], dtype=torch.float64)
            bound = (gamma * norm2) ** lags
            q = torch.nanquantile(ratio, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64), dim=0)
            worst = ratio.max(dim=0).values
            for lag in range(ratio.shape[1]):
                rows.append(dict(activation=activation, radius=radius, lag=lag, median=q[1, lag].item(),
                                 q25=q[0, lag].item(), q75=q[2, lag].item(), max=worst[lag].item(),
                                 bound=bound[lag].item(), asymptotic=rho ** lag,
                                 max_over_bound=(worst[lag] / bound[lag]).item(), spectral_norm=norm2,
                                 spectral_radius=rho, gamma=gamma, examples=int(ok.sum())))
    return pd.DataFrame(rows)


def decay_summary(profiles: pd.DataFrame, lag: int | None = None) -> pd.DataFrame:
    """One row per network: ||W_rec||_2, rho, the median ratio at `lag` (default: the
    largest), the bound there, the per-step factors they imply (measured_rate = median
    ratio^(1/lag), bound_rate = gamma ||W_rec||_2), and whether the bound held at every lag
    for every example."""
    lag = int(profiles["lag"].max()) if lag is None else lag
    at = profiles[profiles["lag"] == lag].set_index(["activation", "radius"])
    held = profiles.groupby(["activation", "radius"])["max_over_bound"].max() <= 1 + 1e-9
    gamma = at["gamma"]
    return pd.DataFrame({"spectral_norm": at["spectral_norm"], "spectral_radius": at["spectral_radius"],
                         f"median_ratio_at_lag_{lag}": at["median"], f"bound_at_lag_{lag}": at["bound"],
                         "measured_rate": at["median"] ** (1.0 / lag), "bound_rate": gamma * at["spectral_norm"],
                         "bound_holds": held})
