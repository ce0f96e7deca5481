"""The interactive explorer of the per-example, lag-resolved gradient statistics (issue 7):
its numbers, its figure and its ipywidgets UI (notebooks/explorer.ipynb).

Everything the explorer shows is computed by :func:`compute`, a pure function of its parameters
(:class:`ExploreParams`: the TrainConfig of an SGR run, and the explorer's own settings): the
run's first candidate pool of M = pool_factor * batch_size sequences, ONE batched forward + BPTT
pass (``gradreg.passes.bptt``), the long-term scores and Gram matrix from ``passes.pool_scores``,
and what each selection rule makes of that pool, chosen by ``sampling.select_for`` as the SGR
training step chooses:

* (a) delta profiles ||dE_i/dz_t|| of every candidate against the lag S-1-t (log
  scale), with the bound ||delta_{S-1}|| (gamma ||W_rec||_2)^lag of docs/method.md section 2.3;
* (b) the histogram of the pool's long-term scores s_i(tau);
* (c) the long-term norm ||mean_B g^{>=tau}|| of the minibatch each rule would choose,
  exact from the Gram matrix (``sampling.minibatch_norm``, docs/method.md section 3.1).
  The stochastic rules (random, weighted, band) are drawn ``draws`` times; the bar is
  the mean norm, the error bar its standard deviation.

:class:`Explorer` (or :func:`explorer`) wraps it in ipywidgets controls. The figure is
drawn off-screen with matplotlib's Agg backend into one ``ipywidgets.Image`` whose
bytes are swapped on each update: no flicker, and nothing depends on the notebook's
matplotlib backend. Numbers sit beside the plots in an HTML table.

    from gradreg.explore import compute, explorer
    result = compute({"task": "adding", "length": 60, "rule": "top"})
    result["rules"]["top"]["norm"], result["rules"]["random"]["mean"]
    ui = explorer(profile="quick")       # in a notebook: the widget UI
"""
from __future__ import annotations

import contextlib
import html
import io
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch

from . import sampling
from .config import DTYPES, Seeds, TrainConfig, check_device, check_memory, resolve_device
from .model import ACTIVATION_GAMMA, ACTIVATIONS, INITS, SRN, check_spectral_radius
from .model import spectral_radius as _spectral_radius
from .passes import bptt, check_lag, default_lag, pool_scores
from .plotting import POOL_COLOR, RULE_COLORS, fast_log_ticks
from .tasks import TASK_NAMES, make_task

RULES = sampling.RULES
STOCHASTIC_RULES = ("random", "weighted", "band")
MAX_DRAWS = 100_000        # draws of a stochastic rule per update (each is one selection)

# --------------------------------------------------------------------------- the numbers


@dataclass
class ExploreParams(TrainConfig):
    """The explorer's inputs: the SGR training run whose first pool it shows (its rule is the one
    highlighted in plots (a) and (b); the rules' options are the run's), and the explorer's own
    settings. TrainConfig's defaults, but on the CPU in float64 and with a test set of one sequence
    (the explorer draws none, and `check_memory` would count a larger one)."""
    device: str = "cpu"
    dtype: str = "float64"
    test_size: int = 1
    spectral_radius: float | None = 0.95   # None: the initialisation's own W_rec
    draws: int = 100                       # draws of each stochastic rule

    def __post_init__(self):
        # TrainConfig checks what a run has (task, length, sizes, seed, lag, the rules' options,
        # device, dtype) and takes numpy numbers as Python's; SRN's own check the spectral radius
        super().__post_init__()
        d = self.draws
        if isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= MAX_DRAWS:
            raise ValueError(f"draws must be an integer in 1..{MAX_DRAWS}, got {d!r}")
        check_spectral_radius(self.spectral_radius)
        resolve_device(self.device)


#: What `make_params` (and so `compute` and the UI) takes: the run's settings that shape its first
#: pool and the rules' choice, and the explorer's own. The run's other fields keep their defaults.
PARAMS = ("task", "length", "activation", "init", "spectral_radius", "hidden_size", "lag", "rule", "pool_factor",
          "batch_size", "seed", "draws", "alpha", "band_low", "band_high", "greedy_low", "greedy_high", "device",
          "dtype")

#: The explorer's sizes for each notebook profile (the notebooks' `profile` parameter);
#: "quick" is ExploreParams' own defaults.
EXPLORER_PRESETS = {
    "smoke": dict(length=20, hidden_size=16, batch_size=8, pool_factor=2, draws=20),
    "quick": dict(),
    "paper": dict(length=100, draws=200),
}


def make_params(params=None, **overrides) -> ExploreParams:
    """An ExploreParams from a dict / ExploreParams / None plus keyword overrides (names of
    PARAMS), checked."""
    if isinstance(params, ExploreParams):
        given = overrides
    elif params is None or isinstance(params, dict):
        given = {**(params or {}), **overrides}
    else:
        raise ValueError(f"params must be a dict or ExploreParams, got {type(params).__name__}")
    unknown = sorted(set(given) - set(PARAMS))
    if unknown:
        raise ValueError(f"unknown explorer parameter(s) {', '.join(unknown)}; allowed: {', '.join(sorted(PARAMS))}")
    return params.replace(**given) if isinstance(params, ExploreParams) else ExploreParams(**given)


@contextlib.contextmanager
def _threads(n: int | None):
    """Temporarily limit torch's intra-op threads. The explorer's tensors are tiny: on a busy
    machine OpenMP threads waiting on each other made an update many times slower
    (docs/performance.md), and one thread never loses at these sizes."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def compute(params=None, threads: int | None = 1, **overrides) -> dict:
    """All the numbers the explorer shows, for one parameter set (pure: same params, same result).

    Returns a dict with
      params (ExploreParams), steps S, lag tau, pool_size M, batch_size n,
      delta_norm (M, S) ndarray ||dE_i/dz_t||, scores (M,) s_i(tau), ratios (M,) r_i(tau),
      full_norm (M,) per-example full gradient norm,
      spectral_radius, w_rec_norm (||W_rec||_2), gamma,
      pool_norm (long-term norm of the mean over the whole pool), random_rms (exact RMS of
      the random rule's norm), score_quantiles {q10, q50, q90},
      rules: {rule: {index (n,) ndarray, weight, norm, full_norm, triangle,
                     mean, std, draws (ndarray of norms over the draws)}},
      seconds (time spent).
    threads: torch intra-op threads while computing (None: leave torch's setting alone).
    """
    with _threads(threads):
        return _compute(make_params(params, **overrides))


def _check_memory(p: ExploreParams, task) -> None:
    """Refuse, in one line, a pool that cannot fit in memory (`config.check_memory`): the pool's
    pass, its long-term gradients and Gram matrix as an SGR step with the greedy rule, plus the
    per-example full gradients (all parameters, float64) and their Gram matrix."""
    M, H = p.pool_size, p.hidden_size
    full = M * (H * (task.input_size + H + 1) + task.output_size * (H + 1)) * (8 + 4) + M * M * 8
    check_memory(p.replace(rule="greedy"), extra_bytes=full)


def _compute(p: ExploreParams) -> dict:
    start = time.perf_counter()
    device = resolve_device(p.device)
    dtype = DTYPES[p.dtype]
    task = make_task(p.task, p.length)
    _check_memory(p, task)
    S = task.steps
    lag = check_lag(p.lag, S)
    M, n = p.pool_size, p.batch_size
    seeds = Seeds(p.seed, device)  # the same streams as a training run with this seed
    model = SRN(task.input_size, p.hidden_size, task.output_size, activation=p.activation,
                init=p.init, readout=getattr(task, "readout", "last"), generator=seeds.model,
                spectral_radius=p.spectral_radius, dtype=dtype, device=device)
    x, y = task.sample(M, generator=seeds.data)
    rec = bptt(model, task, x.to(dtype), y)
    scores, ratios, gram = pool_scores(rec, lag, need_gram=True, need_scores=True)
    if not (torch.isfinite(rec.delta).all() and torch.isfinite(gram).all()):
        rho = _spectral_radius(model.W_rec)
        raise ValueError(f"the network overflowed in {p.dtype}: with rho(W_rec) = {rho:.3g} and S = {S} "
                         f"steps its deltas grow like rho^S beyond the largest {p.dtype}; lower "
                         "spectral_radius or length" + (", or use dtype float64" if p.dtype == "float32" else ""))
    # per-example full gradients (all parameters) for the full-norm column
    full = rec.recurrent_grads()
    full.update(rec.output_grads())
    flat_full = torch.cat([g.flatten(1) for g in full.values()], 1).double()
    gram_full = flat_full @ flat_full.T
    delta_norm = torch.linalg.vector_norm(rec.delta, dim=2).T               # (M, S)

    with torch.no_grad():
        w_rec = model.W_rec.detach().double().cpu()
        w_rec_norm = torch.linalg.matrix_norm(w_rec, ord=2).item()
    rho = _spectral_radius(model.W_rec)

    rules = {}
    ones = torch.full((M,), 1.0 / M, dtype=torch.float64, device=gram.device)
    for rule in RULES:
        run = p.replace(rule=rule)
        gen = Seeds(p.seed, device).select      # each rule draws from the run's own selection stream
        sel = sampling.select_for(run, scores, ratios, gram, gen)
        w = sel.pool_weights(M).to(gram.device)
        norm = sampling.minibatch_norm(gram, w)
        entry = {"index": sel.index.cpu().numpy(), "weight": sel.weight.cpu().numpy(), "norm": norm,
                 "full_norm": sampling.minibatch_norm(gram_full, w),
                 "triangle": float((w.cpu() * scores.double().cpu()).sum())}
        if rule in STOCHASTIC_RULES:
            norms = [norm]
            for _ in range(p.draws - 1):
                s = sampling.select_for(run, scores, ratios, gram, gen)
                norms.append(sampling.minibatch_norm(gram, s.pool_weights(M).to(gram.device)))
            draws = np.asarray(norms)
        else:
            draws = np.asarray([norm])
        entry.update(draws=draws, mean=float(draws.mean()), std=float(draws.std()))
        rules[rule] = entry

    s_np = scores.double().cpu().numpy()
    finite = s_np[np.isfinite(s_np)]
    q = np.quantile(finite, [0.1, 0.5, 0.9]) if finite.size else [float("nan")] * 3
    return {
        "params": p, "steps": S, "lag": lag, "pool_size": M, "batch_size": n,
        "delta_norm": delta_norm.double().cpu().numpy(),
        "scores": s_np, "ratios": ratios.double().cpu().numpy(),
        "full_norm": torch.diagonal(gram_full).clamp_min(0).sqrt().cpu().numpy(),
        "loss": rec.loss.double().cpu().numpy(), "readout": rec.readout,
        "spectral_radius": rho, "w_rec_norm": w_rec_norm, "gamma": ACTIVATION_GAMMA[p.activation],
        "pool_norm": sampling.minibatch_norm(gram, ones),
        "random_rms": sampling.random_minibatch_rms(gram, n),
        "score_quantiles": {"q10": float(q[0]), "q50": float(q[1]), "q90": float(q[2])},
        "rules": rules,
        "seconds": time.perf_counter() - start,
    }


# --------------------------------------------------------------------------- drawing

def new_figure():
    """A figure that is not registered with pyplot (no accidental inline display)."""
    from matplotlib.figure import Figure
    return Figure(figsize=(13.5, 3.9), dpi=90)


def draw(result: dict, fig=None):
    """Draw the three panels of `result` onto `fig` (cleared first); returns the figure."""
    from matplotlib.collections import LineCollection

    fig = new_figure() if fig is None else fig
    fig.clf()
    fig.subplots_adjust(left=0.055, right=0.99, bottom=0.14, top=0.84, wspace=0.28)
    ax_a, ax_b, ax_c = fig.subplots(1, 3)
    p = result["params"]
    rule = p.rule
    S, lag = result["steps"], result["lag"]
    chosen = np.zeros(result["pool_size"], dtype=bool)
    chosen[result["rules"][rule]["index"]] = True
    color = RULE_COLORS[rule]

    # Titles get an explicit y: matplotlib then skips fitting them above the tick labels, a large
    # part of the drawing time (docs/performance.md). (a) delta profiles vs lag (lag 0 = last step)
    dn = result["delta_norm"]
    lags = np.arange(S)[::-1].astype(float)                      # column t has lag S-1-t
    positive = dn[dn > 0]
    if positive.size:
        top = float(positive.max())
        bottom = max(float(positive.min()), top * 1e-280)
        masked = np.where(dn > 0, dn, np.nan)
        segs_other = [np.column_stack([lags, r]) for r in masked[~chosen]]
        segs_chosen = [np.column_stack([lags, r]) for r in masked[chosen]]
        ax_a.add_collection(LineCollection(segs_other, colors=POOL_COLOR, alpha=0.25, linewidths=0.7))
        ax_a.add_collection(LineCollection(segs_chosen, colors=color, alpha=0.6, linewidths=0.9))
        med = np.nanmedian(masked, axis=0)
        ax_a.plot(lags, med, color="black", lw=1.6, label="median")
        last = np.median(dn[:, -1])
        rate = result["gamma"] * result["w_rec_norm"]
        if last > 0 and rate > 0 and result["readout"] == "last":  # per-step losses inject new terms
            with np.errstate(over="ignore", divide="ignore"):
                bound = last * np.exp(np.arange(S) * math.log(rate))
            ax_a.plot(np.arange(S), bound, color="black", ls=":", lw=1.0,
                      label="bound ‖δ_last‖ (γ‖W_rec‖₂)^lag")
        ax_a.set_yscale("log")
        ax_a.set_ylim(bottom / 2, top * 2)
        fast_log_ticks(ax_a.yaxis, bottom / 2, top * 2)
        ax_a.axvline(lag, color="gray", ls="--", lw=1)
        ax_a.legend(loc="upper right", fontsize=7, frameon=False)
    else:
        ax_a.text(0.5, 0.5, "all deltas are zero", transform=ax_a.transAxes, ha="center")
    ax_a.set_xlim(0, max(S - 1, 1))
    ax_a.set_xlabel("lag S-1-t")
    ax_a.set_ylabel("‖δ_i,t‖")
    ax_a.set_title(f"(a) delta profiles ({rule}-chosen in colour)", fontsize=10, y=1.01)

    # (b) long-term score histogram (log bins)
    s = result["scores"]
    ok = np.isfinite(s) & (s > 0)
    if ok.any():
        lo, hi = s[ok].min(), s[ok].max()
        if hi <= lo * 1.0001:
            lo, hi = lo / 1.5, hi * 1.5
        bins = np.geomspace(lo, hi, 21)
        ax_b.hist([s[ok & ~chosen], s[ok & chosen]], bins=bins, stacked=True,
                  color=[POOL_COLOR, color], label=["pool", f"chosen by {rule}"])
        ax_b.set_xscale("log")
        fast_log_ticks(ax_b.xaxis, lo, hi)
        ax_b.axvline(result["score_quantiles"]["q50"], color="black", ls="--", lw=1, label="median")
        ax_b.legend(fontsize=7, frameon=False)
    else:
        ax_b.text(0.5, 0.5, "all long-term scores are zero", transform=ax_b.transAxes, ha="center")
    ax_b.set_xlabel(f"long-term score s_i(τ={lag})")
    ax_b.set_ylabel("candidates")
    ax_b.set_title(f"(b) pool of M={result['pool_size']}", fontsize=10, y=1.01)

    # (c) minibatch long-term norm per rule
    names = list(RULES)
    means = [result["rules"][r]["mean"] for r in names]
    stds = [result["rules"][r]["std"] for r in names]
    bars = ax_c.bar(names, means, yerr=stds, capsize=3,
                    color=[RULE_COLORS[r] for r in names], alpha=0.85)
    for b, r in zip(bars, names):
        if r == rule:
            b.set_edgecolor("black")
            b.set_linewidth(2)
    ax_c.axhline(result["pool_norm"], color="black", ls="--", lw=1, label="mean over pool (M)")
    ax_c.axhline(result["random_rms"], color="gray", ls=":", lw=1, label="random, exact RMS")
    ax_c.set_ylabel("‖mean_B g^(≥τ)‖")
    from matplotlib.ticker import FuncFormatter
    ax_c.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))  # no offset text
    ax_c.legend(fontsize=7, frameon=True, framealpha=0.8, loc="best")
    ax_c.set_title(f"(c) minibatch long-term norm, n={result['batch_size']}", fontsize=10, y=1.01)
    fig.suptitle(f"{p.task} T={p.length} (S={S}), {p.activation}/{p.init}, "
                 f"rho(W_rec)={result['spectral_radius']:.3g}, H={p.hidden_size}, tau={lag}",
                 fontsize=10, y=0.985)
    return fig


def render_png(result: dict, fig=None) -> bytes:
    fig = draw(result, fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def table_html(result: dict) -> str:
    """The numbers beside the plots, as an HTML table."""
    p = result["params"]

    def f(v):
        return "nan" if v is None or not math.isfinite(v) else f"{v:.4g}"
    rows = []
    for r in RULES:
        e = result["rules"][r]
        spread = f"{f(e['mean'])} &plusmn; {f(e['std'])}" if r in STOCHASTIC_RULES else "&ndash;"
        style = ' style="font-weight:bold"' if r == p.rule else ""
        rows.append(f"<tr{style}><td>{r}</td><td>{f(e['norm'])}</td><td>{spread}</td>"
                    f"<td>{f(e['triangle'])}</td><td>{f(e['full_norm'])}</td></tr>")
    q = result["score_quantiles"]
    ratios = result["ratios"]
    ratios = ratios[np.isfinite(ratios)]
    med_ratio = float(np.median(ratios)) if ratios.size else float("nan")
    info = [("steps S / lag &tau;", f"{result['steps']} / {result['lag']}"),
            ("pool M / batch n", f"{result['pool_size']} / {result['batch_size']}"),
            ("&rho;(W_rec) / ||W_rec||&#8322;", f"{f(result['spectral_radius'])} / {f(result['w_rec_norm'])}"),
            ("score q10 / q50 / q90", f"{f(q['q10'])} / {f(q['q50'])} / {f(q['q90'])}"),
            ("median r(&tau;)", f(med_ratio)),
            ("pool-mean LT norm", f(result["pool_norm"])),
            ("random: exact RMS", f(result["random_rms"])),
            ("compute", f"{1000 * result['seconds']:.0f} ms")]
    info_rows = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in info)
    return (
        '<div class="gradreg-explorer-table" style="font-size:12px">'
        "<style>.gradreg-explorer-table td, .gradreg-explorer-table th "
        "{padding: 1px 7px; text-align: right} .gradreg-explorer-table td:first-child "
        "{text-align: left}</style>"
        '<table style="border-collapse:collapse">'
        "<tr><th>rule</th><th>LT norm</th><th>mean &plusmn; sd</th><th>triangle</th><th>full norm</th></tr>"
        + "".join(rows) + "</table>"
        '<table style="margin-top:8px;border-collapse:collapse">' + info_rows + "</table>"
        '<div style="margin-top:6px;color:#555;max-width:330px">'
        'LT norm: exact ||mean<sub>B</sub> g<sup>&ge;&tau;</sup>|| '
        "of one draw from the pool's Gram matrix; mean &plusmn; sd over "
        f"{p.draws} draws for the stochastic rules; triangle: mean<sub>B</sub> s<sub>i</sub> (upper bound).</div>"
        "</div>")


# --------------------------------------------------------------------------- widgets

class Explorer:
    """The ipywidgets UI around `compute` + `draw`. `widget` is the root box.

    Each control change calls `update()` once: compute (cached across changes of the
    highlighted rule only), draw off-screen, swap the Image widget's bytes, refill the table.
    """

    def __init__(self, profile: str = "quick", seed: int = 0, device: str = "auto",
                 output_dir: str | None = None, **params):
        import ipywidgets as W

        if profile not in EXPLORER_PRESETS:
            raise ValueError(f"unknown profile {profile!r}; allowed: {', '.join(EXPLORER_PRESETS)}")
        check_device(device)
        dev = str(resolve_device(device))
        start = dict(EXPLORER_PRESETS[profile], seed=seed, device=dev)
        start.update(params)
        p0 = make_params(start)
        self.base = p0
        self.output_dir = output_dir
        self.updates = 0
        self.timings: list[dict] = []
        self.result = None
        self.error = None
        self._cache_key = None
        self._cache = None
        self._busy = False
        self._fig = new_figure()
        S = make_task(p0.task, p0.length).steps
        lag = check_lag(p0.lag, S)

        style = {"description_width": "110px"}
        lay = W.Layout(width="330px")
        kw = dict(style=style, layout=lay)
        slider = dict(continuous_update=False, **kw)
        self.controls = {
            "task": W.Dropdown(options=list(TASK_NAMES), value=p0.task, description="task", **kw),
            "length": W.IntSlider(value=p0.length, min=max(2, min(10, p0.length)), max=max(200, p0.length),
                                  step=1, description="length T", **slider),
            "activation": W.Dropdown(options=list(ACTIVATIONS), value=p0.activation,
                                     description="activation", **kw),
            "init": W.Dropdown(options=list(INITS), value=p0.init, description="initialisation", **kw),
            "rescale": W.Checkbox(value=p0.spectral_radius is not None, description="rescale W_rec",
                                  indent=False, layout=W.Layout(width="120px")),
            "spectral_radius": W.FloatSlider(value=p0.spectral_radius or 0.95, min=0.05, max=2.0,
                                             step=0.05, description="ρ(W_rec)",
                                             readout_format=".2f", **slider),
            "hidden_size": W.IntSlider(value=p0.hidden_size, min=2, max=max(200, p0.hidden_size),
                                       description="hidden size H", **slider),
            "lag": W.IntSlider(value=lag, min=0, max=S - 1, description="lag τ", **slider),
            "rule": W.ToggleButtons(options=list(RULES), value=p0.rule, description="rule",
                                    style={"description_width": "110px", "button_width": "84px"}),
            "pool_factor": W.IntSlider(value=p0.pool_factor, min=1, max=max(10, p0.pool_factor),
                                       description="pool factor k", **slider),
            "batch_size": W.IntSlider(value=p0.batch_size, min=1, max=max(100, p0.batch_size),
                                      description="batch size n", **slider),
            "seed": W.BoundedIntText(value=p0.seed, min=0, max=10**6, description="seed", **kw),
        }
        self.controls["spectral_radius"].disabled = p0.spectral_radius is None
        self.image = W.Image(format="png", layout=W.Layout(width="100%", max_width="1220px"))
        self.image.add_class("gradreg-explorer-plot")
        self.table = W.HTML()
        self.status = W.HTML()
        self.save_button = W.Button(description="save figure", icon="save",
                                    layout=W.Layout(width="120px"),
                                    disabled=output_dir is None,
                                    tooltip=f"save PNG to {output_dir}" if output_dir else "no output_dir")
        self.save_button.on_click(lambda _: self.save())
        c = self.controls
        left = W.VBox([c["task"], c["length"], c["activation"], c["init"],
                       W.HBox([c["rescale"], c["spectral_radius"]]), c["hidden_size"], c["lag"],
                       c["pool_factor"], c["batch_size"], c["seed"],
                       W.HBox([self.save_button, self.status])])
        top = W.HBox([left, self.table], layout=W.Layout(align_items="flex-start", grid_gap="16px"))
        self.widget = W.VBox([top, c["rule"], self.image])
        self.widget.add_class("gradreg-explorer")
        for name, w in c.items():
            w.add_class(f"gradreg-{name.replace('_', '-')}")   # stable hooks for browser tests
            w.observe(self._on_change, names="value")
        self.update()

    # -- state
    def params(self) -> ExploreParams:
        c = self.controls
        return make_params(
            self.base, task=c["task"].value, length=c["length"].value,
            activation=c["activation"].value, init=c["init"].value,
            spectral_radius=c["spectral_radius"].value if c["rescale"].value else None,
            hidden_size=c["hidden_size"].value, lag=c["lag"].value, rule=c["rule"].value,
            pool_factor=c["pool_factor"].value, batch_size=c["batch_size"].value,
            seed=c["seed"].value)

    def _on_change(self, change):
        if self._busy:
            return
        self._busy = True
        try:
            c = self.controls
            owner = change["owner"]
            if owner is c["rescale"]:
                c["spectral_radius"].disabled = not c["rescale"].value
            if owner in (c["task"], c["length"]):
                task_cls_min = _min_length(c["task"].value)
                c["length"].min = min(task_cls_min, c["length"].max)
                if c["length"].value < task_cls_min:
                    c["length"].value = task_cls_min
                S = make_task(c["task"].value, c["length"].value).steps
                c["lag"].max = S - 1
                c["lag"].value = default_lag(S)     # back to the default tau when S changes
        finally:
            self._busy = False
        self.update()

    def update(self):
        """Recompute (if needed) and redraw; errors are shown in the status line, not raised."""
        t0 = time.perf_counter()
        try:
            p = self.params()
            key = p.replace(rule=RULES[0])
            if key != self._cache_key:
                self._cache = compute(p)
                self._cache_key = key
            result = dict(self._cache, params=p)
            t1 = time.perf_counter()
            png = render_png(result, self._fig)
            t2 = time.perf_counter()
            self.image.value = png
            self.table.value = table_html(result)
            self.result, self.error = result, None
            self.updates += 1
            self.timings.append({"compute": t1 - t0, "draw": t2 - t1, "total": t2 - t0})
            self.status.value = (f'<span class="gradreg-explorer-status" style="color:#555">'
                                 f"update {self.updates}: {1000 * (t2 - t0):.0f} ms</span>")
        except Exception as exc:  # keep the UI alive: show what went wrong
            self.error = exc
            message = f"{html.escape(type(exc).__name__)}: {html.escape(str(exc))}"
            self.status.value = f'<span style="color:#b00">{message}</span>'

    def set(self, **values):
        """Set control values (as a user would); each triggers one update."""
        for k, v in values.items():
            self.controls[k].value = v

    def save(self, path: str | None = None) -> str:
        """Write the current figure as PNG (default: output_dir/explorer_<task>_T<len>_<rule>.png)."""
        if path is None:
            if self.output_dir is None:
                raise ValueError("no path given and the explorer has no output_dir")
            p = self.result["params"]
            os.makedirs(self.output_dir, exist_ok=True)
            path = os.path.join(self.output_dir, f"explorer_{p.task}_T{p.length}_{p.rule}.png")
        with open(path, "wb") as fh:
            fh.write(self.image.value)
        self.status.value = f'<span style="color:#555">saved {html.escape(path)}</span>'
        return path

    def _repr_mimebundle_(self, **kwargs):
        # a notebook cell ending in `explorer(...)` or `ui` shows the widget UI
        return self.widget._repr_mimebundle_(**kwargs)

    def latency(self) -> str:
        """One line: the median and worst update time so far (compute + draw)."""
        if not self.timings:
            return "no update yet"
        tot = sorted(t["total"] for t in self.timings)
        comp = sorted(t["compute"] for t in self.timings)
        return (f"{len(tot)} updates: median {1000 * tot[len(tot) // 2]:.0f} ms "
                f"(compute {1000 * comp[len(comp) // 2]:.0f} ms), worst {1000 * tot[-1]:.0f} ms")


def _min_length(task: str) -> int:
    return make_task(task, 10_000).min_length  # a class attribute; making the task draws nothing


def explorer(profile: str = "quick", seed: int = 0, device: str = "auto",
             output_dir: str | None = None, **params) -> Explorer:
    """Build the explorer UI; returns the Explorer, which a notebook displays as the widget
    (end the cell with it, or `display(ui)`). `params`: any ExploreParams field."""
    return Explorer(profile=profile, seed=seed, device=device, output_dir=output_dir, **params)
