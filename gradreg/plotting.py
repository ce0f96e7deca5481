"""Plotting helpers for the notebooks: one style, one palette, one way to save a figure.

Everything here only *draws*; the numbers come from `gradreg.experiments` (the computations
behind each notebook), `gradreg.analysis` (tables of runs) and the rest of the package.
Every figure of the project goes through `save_figure`, which writes a PNG (for the README
and the notebooks) and a PDF (vector, for papers) under a stable name.

Colours: the Okabe-Ito palette (Okabe & Ito 2008), safe for the common forms of colour
blindness, with one fixed colour per method so that a method looks the same in every
figure. Sequential quantities (spectral radius, length, pool factor) use `cividis`, which
is colour-blind safe and prints in grey scale.
"""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .analysis import method_label, ordered

# Okabe-Ito
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
    "grey": "#999999",
}

#: one fixed colour per method (and per SGR rule)
METHOD_COLORS = {
    "sgd": OKABE_ITO["grey"],
    "clip": OKABE_ITO["sky_blue"],
    "pascanu": OKABE_ITO["blue"],
    "sgr/top": OKABE_ITO["vermillion"],
    "sgr/random": OKABE_ITO["orange"],
    "sgr/band": OKABE_ITO["purple"],
    "sgr/weighted": "#B39B00",  # Okabe-Ito yellow, darkened to read on white
    "sgr/greedy": OKABE_ITO["black"],
    "lstm": OKABE_ITO["green"],
}

#: line styles that keep methods apart in grey-scale print too
METHOD_DASHES = {
    "sgd": (1, 1), "clip": (4, 1.5), "pascanu": (6, 2, 1, 2), "sgr/top": "", "sgr/random": (3, 1.5),
    "sgr/band": (1, 2), "sgr/weighted": (5, 2, 1, 2, 1, 2), "sgr/greedy": (2, 1), "lstm": (8, 2),
}

#: the same, for the selection rules alone (figures about SGR only)
RULE_COLORS = {rule: METHOD_COLORS[f"sgr/{rule}"] for rule in ("top", "random", "band", "weighted", "greedy")}

#: the candidates of a pool that a rule did not choose (the explorer)
POOL_COLOR = OKABE_ITO["sky_blue"]

ACTIVATION_COLORS = {"tanh": OKABE_ITO["blue"], "relu": OKABE_ITO["vermillion"],
                     "identity": OKABE_ITO["green"], "sigmoid": OKABE_ITO["purple"]}

SEQUENTIAL = "cividis"

FIGURE_FORMATS = ("png", "pdf")


def method_color(label: str) -> str:
    """The colour of a method label; an arm ("lstm [optimizer=adam,...]") or a budget ("pascanu,
    50k iterations") takes its method's."""
    return METHOD_COLORS.get(label.split(" [")[0].split(", ")[0], OKABE_ITO["grey"])


def use_style() -> None:
    """The project's one figure style: seaborn whitegrid, readable fonts, Okabe-Ito colours."""
    sns.set_theme(context="notebook", style="whitegrid", font_scale=1.0,
                  palette=[OKABE_ITO[k] for k in ("blue", "vermillion", "green", "orange",
                                                  "sky_blue", "purple", "black", "yellow")])
    matplotlib.rcParams.update({
        "figure.dpi": 100,
        "savefig.dpi": 150,
        "savefig.bbox": "tight",
        "figure.constrained_layout.use": True,
        "axes.titlesize": 12,
        "axes.labelsize": 11,
        "legend.fontsize": 9,
        "legend.title_fontsize": 10,
        "xtick.labelsize": 9.5,
        "ytick.labelsize": 9.5,
        "lines.linewidth": 1.8,
        "image.cmap": SEQUENTIAL,
        "pdf.fonttype": 42,  # TrueType in PDFs: editable text
        "svg.fonttype": "none",
    })


def _axes(ax, figsize, panels: int | None = None, **subplots):
    """(figure, ax) of a plot: the caller's `ax` (a panel of the caller's figure), else a new figure
    of `figsize` with one axes, or with `panels` side by side (`ax` then their 1-D array)."""
    if ax is None:
        _, grid = plt.subplots(1, panels or 1, figsize=figsize, squeeze=False, **subplots)
        ax = grid[0, 0] if panels is None else grid[0]
    return (ax if panels is None else ax[0]).figure, ax


def save_figure(fig, name: str, output_dir, formats=FIGURE_FORMATS) -> list[Path]:
    """Write `fig` as output_dir/name.png (+ .pdf); returns the paths written."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = output_dir / f"{name}.{fmt}"
        fig.savefig(path, format=fmt, metadata=_metadata(fmt))
        paths.append(path)
    return paths


def _metadata(fmt):
    # no creation dates in the files: regenerating identical figures gives identical bytes where
    # the backend allows it (PNG and PDF do)
    if fmt == "png":
        return {"Software": None}
    if fmt == "pdf":
        return {"CreationDate": None, "Producer": None, "Creator": None}
    if fmt == "svg":
        return {"Date": None}
    return None


# ---------------------------------------------------------------------------------------------
# 01 vanishing gradients

def plot_delta_profiles(profiles: pd.DataFrame, axes=None):
    """Median ||delta_t|| / ||delta_{S-1}|| against lag, one panel per activation, one line
    per spectral radius, with the bound (gamma ||W_rec||_2)^lag dashed.

    profiles: rows of `gradreg.experiments.vanishing.delta_profiles` (columns activation, radius, lag,
    median, q25, q75, bound).
    """
    activations = list(dict.fromkeys(profiles["activation"]))
    radii = sorted(profiles["radius"].unique())
    fig, axes = _axes(axes, (4.2 * len(activations), 3.9), panels=len(activations), sharey=True)
    colors = sns.color_palette(SEQUENTIAL, len(radii))
    for ax, act in zip(axes, activations):
        sub = profiles[profiles["activation"] == act]
        for color, radius in zip(colors, radii):
            r = sub[sub["radius"] == radius].sort_values("lag")
            ax.plot(r["lag"], r["median"], color=color, label=f"{radius:g}")
            ax.fill_between(r["lag"], r["q25"], r["q75"], color=color, alpha=0.2, linewidth=0)
            ax.plot(r["lag"], r["bound"], color=color, linestyle="--", linewidth=1.0)
        ax.set_yscale("log")
        ax.set_title(f"f = {act}")
        ax.set_xlabel("lag l = S-1-t (steps)")
        lo = max(np.nanmin(sub["q25"].replace(0, np.nan).to_numpy()), 1e-30)
        ax.set_ylim(lo / 3, max(10.0, np.nanmax(sub["q75"].to_numpy()) * 3))
    axes[0].set_ylabel(r"$\|\delta_t\| \,/\, \|\delta_{S-1}\|$ (ratio)")
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="0.3", linestyle="--", linewidth=1.0))
    labels.append(r"bound $(\gamma\|W_{rec}\|_2)^{l}$")
    axes[-1].legend(handles, labels, title=r"spectral radius $\rho(W_{rec})$", loc="center left",
                    bbox_to_anchor=(1.02, 0.5))
    return fig


def plot_bound_check(profiles: pd.DataFrame, summary: pd.DataFrame):
    """Left: the largest measured/bound ratio over all examples and radii, per lag and
    activation (it must stay <= 1). Right: the per-step decay factor, measured (median
    ratio^(1/lag)) against the bound's gamma ||W_rec||_2 and the spectral radius rho.

    summary: `gradreg.experiments.vanishing.decay_summary(profiles)`.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.2))
    ax = axes[0]
    # lag 0 left out: there measured and bound are the same number, the ratio is 1 by definition
    later = profiles[profiles["lag"] > 0]
    worst = later.groupby(["activation", "lag"], sort=False)["max_over_bound"].max().reset_index()
    # tanh's curve lies on the identity's (near 0, tanh is the identity): the identity is drawn
    # wide and pale underneath, the others dashed on top
    styles = {"identity": dict(linewidth=4.5, alpha=0.45, zorder=1), "tanh": dict(linestyle=(0, (4, 2)), zorder=3),
              "relu": dict(linestyle=(0, (1, 1.5)), zorder=3)}
    for act, sub in worst.groupby("activation", sort=False):
        ax.plot(sub["lag"], sub["max_over_bound"], color=ACTIVATION_COLORS.get(act), label=act,
                **styles.get(act, dict(zorder=2)))
    ax.axhline(1.0, color="black", linewidth=1.2, linestyle="--", label="bound (= 1)")
    ax.set_yscale("log")
    ax.set_xlabel("lag l = S-1-t (steps)")
    ax.set_ylabel("max over examples and radii of measured / bound")
    ax.set_title("The bound holds at every lag (l >= 1)")
    ax.legend(title="activation", loc="lower left")

    ax = axes[1]
    table = summary.reset_index()
    markers = {"tanh": "o", "relu": "s", "identity": "^", "sigmoid": "D"}
    for act, sub in table.groupby("activation", sort=False):
        sub = sub.sort_values("spectral_radius")
        ax.plot(sub["spectral_radius"], sub["measured_rate"], marker=markers.get(act, "o"),
                color=ACTIVATION_COLORS.get(act), label=f"measured, {act}")
    sub = table.drop_duplicates("spectral_radius").sort_values("spectral_radius")
    ax.plot(sub["spectral_radius"], sub["bound_rate"], color="black", linestyle="--",
            label=r"bound $\gamma\|W_{rec}\|_2$")
    ax.plot(sub["spectral_radius"], sub["spectral_radius"], color="0.5", linestyle=":",
            label=r"spectral radius $\rho$")
    ax.axhline(1.0, color="0.3", linewidth=0.8)
    ax.set_xlabel(r"spectral radius $\rho(W_{rec})$")
    ax.set_ylabel(r"per-step factor of $\|\delta\|$ (ratio per step)")
    ax.set_title("Per-step decay: measured vs bound")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def plain_log_ticks(ax, axis: str = "both") -> None:
    """Log axes without crowded minor labels: major ticks only, as plain numbers."""
    for name in ("x", "y") if axis == "both" else (axis,):
        a = ax.xaxis if name == "x" else ax.yaxis
        a.set_minor_formatter(matplotlib.ticker.FuncFormatter(_minor_labeller(a)))
        a.set_major_formatter(matplotlib.ticker.FuncFormatter(_plain_number))


def fast_log_ticks(axis, lo: float, hi: float) -> None:
    """Log ticks for a figure redrawn on every change (the explorer): one `axis` spanning
    [lo, hi], labelled "1e-05"-style, no minor ticks."""
    # matplotlib's default log labels are mathtext ($10^{-5}$), whose parsing was half of
    # the drawing time; plain "1e-05" labels draw in a fraction of it. Narrow ranges get
    # 1-2-5 ticks so that at least two are labelled.
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 1.0
    subs = (1.0, 2.0, 5.0) if decades < 2.5 else (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs, numticks=6))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0e}" if v and (v < 1e-3 or v >= 1e4) else f"{v:g}"))
    axis.set_minor_locator(NullLocator())  # minor log ticks: a large part of the drawing time


def _minor_labeller(axis):
    # label the minor ticks at 2 and 5 x 10^k only when the axis spans few decades
    def label(value, _pos=None):
        lo, hi = sorted(axis.get_view_interval())
        if value <= 0 or lo <= 0 or np.log10(hi / lo) > 2.2:
            return ""
        mantissa = round(value / 10 ** np.floor(np.log10(value)), 6)
        return _plain_number(value) if mantissa in (2.0, 5.0) else ""
    return label


def _plain_number(value, _pos=None) -> str:
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e5:
        return f"{value:g}"
    exponent = int(np.floor(np.log10(abs(value))))
    mantissa = value / 10 ** exponent
    return rf"$10^{{{exponent}}}$" if np.isclose(mantissa, 1) else rf"${mantissa:g}\times10^{{{exponent}}}$"


# ---------------------------------------------------------------------------------------------
# 02 per-example estimation

def plot_score_distributions(scores: pd.DataFrame, axes=None, hue="length", hue_label="task length T"):
    """Long-term scores s_i(tau) across examples: density of log10(s / median) and the
    survival function P(s > x * median) on log-log axes (a straight tail = power law).

    scores: columns `score` and the `hue` column (one distribution per value).
    """
    fig, axes = _axes(axes, (10.5, 3.9), panels=2)
    values = list(dict.fromkeys(scores[hue]))
    colors = _hue_colors(values)
    for value in values:
        s = scores.loc[scores[hue] == value, "score"].to_numpy()
        s = s[np.isfinite(s) & (s > 0)]
        if not len(s):
            continue
        rel = s / np.median(s)
        label = f"{value}"
        sns.kdeplot(x=np.log10(rel), ax=axes[0], color=colors[value], label=label, fill=True,
                    alpha=0.15, linewidth=1.6, warn_singular=False)
        x = np.sort(rel)
        surv = 1.0 - np.arange(len(x)) / len(x)
        axes[1].step(x, surv, where="post", color=colors[value], label=label)
    axes[0].set_xlabel(r"$\log_{10}\,(s_i(\tau) / \mathrm{median})$")
    axes[0].set_ylabel("density")
    axes[0].set_title(r"Long-term scores $s_i(\tau)$, $\tau = \lfloor S/2 \rfloor$")
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    plain_log_ticks(axes[1])
    axes[1].set_xlabel(r"$s_i(\tau)$ / median (ratio)")
    axes[1].set_ylabel(r"fraction of examples with a larger score")
    axes[1].set_title("Tail (survival function)")
    axes[1].legend(title=hue_label)
    return fig


def _hue_colors(values):
    values = list(values)
    if all(isinstance(v, str) for v in values) and all(v in METHOD_COLORS for v in values):
        return {v: METHOD_COLORS[v] for v in values}
    if len(values) <= 2 and all(isinstance(v, str) for v in values):
        return dict(zip(values, (OKABE_ITO["blue"], OKABE_ITO["vermillion"])))
    return dict(zip(values, sns.color_palette(SEQUENTIAL, len(values)) if len(values) > 2
                    else (OKABE_ITO["blue"], OKABE_ITO["vermillion"])))


def plot_timings(timings: pd.DataFrame, ax=None):
    """Seconds per batch against batch size, one line per way of computing.

    timings: columns method, batch_size, seconds.
    """
    fig, ax = _axes(ax, (6.4, 4.2))
    palette = {"batched BPTT (gradreg)": OKABE_ITO["vermillion"],
               "per-example autograd loop": OKABE_ITO["grey"],
               "torch.func vmap(grad)": OKABE_ITO["blue"],
               "nn.RNN forward+backward (batch mean only)": OKABE_ITO["green"]}
    markers = ["o", "s", "^", "D", "v"]
    for k, (method, sub) in enumerate(timings.groupby("method", sort=False)):
        sub = sub.sort_values("batch_size")
        ax.plot(sub["batch_size"], sub["seconds"] * 1e3, marker=markers[k % len(markers)],
                color=palette.get(method), label=method)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size B (sequences)")
    ax.set_ylabel("wall time per batch (ms)")
    ax.legend(loc="upper left")
    return fig


# ---------------------------------------------------------------------------------------------
# 03 minibatch theory

def plot_gram_identity(check: pd.DataFrame, ax=None):
    """Squared norm of the minibatch mean: Gram-matrix prediction against direct computation."""
    fig, ax = _axes(ax, (4.6, 4.2))
    for component, sub in check.groupby("component", sort=False):
        ax.scatter(sub["measured"], sub["predicted"], s=14, alpha=0.7, label=component,
                   color=OKABE_ITO["blue"] if component == "full" else OKABE_ITO["vermillion"])
    lo = min(check["measured"].min(), check["predicted"].min())
    hi = max(check["measured"].max(), check["predicted"].max())
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=1, linestyle="--", label="y = x")
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain_log_ticks(ax)
    ax.set_xlabel(r"measured $\|\mathrm{mean}_B\, g\|^2$ (autograd)")
    ax.set_ylabel(r"predicted $\frac{1}{n^2}\sum_{i,j\in B} G_{ij}$")
    ax.set_title("1. Exact Gram identity")
    ax.legend(title="gradient")
    return fig


def plot_triangle_bound(check: pd.DataFrame, ax=None):
    """||mean_B g|| against mean_B ||g_i||: every point lies under the diagonal."""
    fig, ax = _axes(ax, (4.6, 4.2))
    sizes = sorted(check["n"].unique())
    colors = dict(zip(sizes, sns.color_palette(SEQUENTIAL, len(sizes))))
    for n in sizes:
        sub = check[check["n"] == n]
        ax.scatter(sub["mean_of_norms"], sub["norm_of_mean"], s=12, alpha=0.7, color=colors[n], label=f"{n}")
    hi = max(check["mean_of_norms"].max(), check["norm_of_mean"].max()) * 1.1
    lo = min(check["mean_of_norms"].min(), check["norm_of_mean"].min()) * 0.9
    ax.plot([lo, hi], [lo, hi], color="black", linewidth=1, linestyle="--", label="y = x")
    ax.fill_between([lo, hi], [lo, hi], [hi, hi], color="0.85", alpha=0.5, linewidth=0,
                    label="forbidden by the bound")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    plain_log_ticks(ax)
    ax.set_xlabel(r"$\mathrm{mean}_{i\in B}\, \|g_i\|$")
    ax.set_ylabel(r"$\|\mathrm{mean}_B\, g\|$")
    ax.set_title("2. Triangle bound")
    ax.legend(title="minibatch size n", fontsize=8, ncol=2)
    return fig


def plot_noise_model(check: pd.DataFrame, ax=None):
    """E||mean_B g||^2 against n: measured (mean over disjoint minibatches, +- 2 s.e.)
    and predicted ||mu||^2 + sigma^2/n, for the full and the long-term gradient."""
    fig, ax = _axes(ax, (5.4, 4.2))
    for component, sub in check.groupby("component", sort=False):
        color = OKABE_ITO["blue"] if component == "full" else OKABE_ITO["vermillion"]
        sub = sub.sort_values("n")
        ax.errorbar(sub["n"], sub["measured"], yerr=2 * sub["stderr"], fmt="o", color=color,
                    capsize=3, markersize=5, label=f"{component}: measured")
        ax.plot(sub["n"], sub["predicted"], color=color, linewidth=1.4,
                label=rf"{component}: $\|\mu\|^2 + \sigma^2/n$")
        ax.axhline(sub["mu_sq"].iloc[0], color=color, linewidth=0.8, linestyle=":")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sorted(check["n"].unique()))
    plain_log_ticks(ax)
    ax.set_xlabel("minibatch size n (sequences)")
    ax.set_ylabel(r"$E\,\|\mathrm{mean}_B\, g\|^2$")
    ax.set_title(r"3. Noise model (dotted: $\|\mu\|^2$)")
    ax.legend(fontsize=8)
    return fig


def plot_selection(selection: pd.DataFrame, axes=None):
    """Minibatch long-term norm and long-term SNR for each rule against the pool factor."""
    fig, axes = _axes(axes, (10.5, 4.0), panels=2)
    markers = {"random": "o", "top": "s", "band": "v", "weighted": "D", "greedy": "^"}
    # the SNRs are unbiased estimates and can be <= 0, which a log axis cannot show: such points
    # sit on a floor below the smallest positive one, drawn hollow
    snrs = selection[["snr", "snr_measured"]].to_numpy().ravel()
    floor = snrs[snrs > 0].min() / 3 if (snrs > 0).any() else 1e-3
    below = False
    for rule, sub in selection.groupby("rule", sort=False):
        sub = sub.sort_values("pool_factor")
        color = RULE_COLORS.get(rule)
        dashes = METHOD_DASHES.get(f"sgr/{rule}") or (None, None)
        style = dict(marker=markers.get(rule, "o"), color=color, label=rule, markersize=6,
                     zorder=3 if rule == "random" else 2)
        line, = axes[0].plot(sub["pool_factor"], sub["lt_norm_median"], **style)
        if dashes[0] is not None:
            line.set_dashes(dashes)
        axes[0].fill_between(sub["pool_factor"], sub["lt_norm_q25"], sub["lt_norm_q75"], color=color,
                             alpha=0.12, linewidth=0)
        line, = axes[1].plot(sub["pool_factor"], sub["snr"].where(sub["snr"] > 0), **style)
        if dashes[0] is not None:
            line.set_dashes(dashes)
        positive = sub["snr_measured"] > 0
        axes[1].scatter(sub["pool_factor"][positive], sub["snr_measured"][positive], marker="x", s=40, color=color,
                        zorder=4)
        for column, marker in (("snr", style["marker"]), ("snr_measured", "X")):
            low = sub[sub[column] <= 0]
            if len(low):
                below = True
                axes[1].scatter(low["pool_factor"], [floor] * len(low), marker=marker, s=40, facecolors="none",
                                edgecolors=color, zorder=4)
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(selection["pool_factor"].unique()))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("pool factor k (pool M = k n)")
        ax.set_yscale("log")
        plain_log_ticks(ax)
    axes[0].set_ylabel(r"minibatch long-term norm $\|\mathrm{mean}_B\, g^{\geq\tau}\|$")
    axes[0].set_title("Long-term signal the step receives (median, IQR)")
    axes[1].set_ylabel(r"long-term SNR $\|\mu_B\|^2 / (\sigma_B^2/n)$")
    axes[1].set_title("Long-term signal-to-noise ratio\n(lines: noise model; x: measured over repeats"
                      + ("; hollow: <= 0)" if below else ")"))
    axes[0].legend(title="rule")
    return fig


# ---------------------------------------------------------------------------------------------
# 04 tasks

def plot_task_example(ax, task, x, y, positions, example: int = 0, max_channels: int | None = None):
    """Heat-map of one input sequence (channels x time) with its relevant positions marked
    and its target written in the title (per-step targets: drawn as a row of symbols)."""
    xi = x[example].detach().cpu().numpy().T  # (channels, steps)
    S = xi.shape[1]
    channels = xi.shape[0]
    shown = xi
    labels = [task.channel_names[r] for r in range(channels)]
    collapsed = None
    if max_channels is not None and channels > max_channels:
        # one-hot over many symbols: keep 0 and 1 (the ones that matter), fold the rest into one
        # row and write each step's symbol into it
        rest = xi[2:]
        collapsed = np.where(rest.any(axis=0), rest.argmax(axis=0) + 2, -1)
        shown = np.vstack([xi[:2], (collapsed >= 0).astype(float)[None] * 0.35])
        labels = ["0", "1", f"2..{channels - 1}"]
    per_step_target = y[example].ndim > 0
    if per_step_target:  # one more row, for the targets
        shown = np.vstack([shown, np.zeros((1, S))])
        labels = list(labels) + ["target"]
    rows = np.arange(shown.shape[0])
    vmax = max(1.0, float(np.abs(shown).max()))
    ax.imshow(shown, aspect="auto", interpolation="nearest", cmap="Greys", vmin=0, vmax=vmax)
    ax.grid(False)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    if collapsed is not None:
        for t, v in enumerate(collapsed.tolist()):
            if v >= 0:
                ax.text(t, 2, str(v), ha="center", va="center", fontsize=5.5, color="black")
    n_inputs = len(rows) - (1 if per_step_target else 0)
    for p in positions[example].tolist():
        ax.add_patch(matplotlib.patches.Rectangle((p - 0.5, -0.5), 1, n_inputs, fill=False,
                                                  edgecolor=OKABE_ITO["vermillion"], linewidth=2))
    for r in task.relevant_ranges():
        ax.axvspan(r.start - 0.5, r.stop - 0.5, color=OKABE_ITO["orange"], alpha=0.15, linewidth=0)
    ax.set_xlim(-0.5, S - 0.5)
    ax.set_xlabel("step t")
    yi = y[example]
    if not per_step_target:
        target = f"{yi.item():.3f}" if task.kind == "regression" else f"class {int(yi)}"
        ax.set_title(f"{task.name} (T={task.length}): target {target}", fontsize=10)
    else:
        ax.set_title(f"{task.name} (T={task.length}, S={task.steps}): target at every step "
                     f"(bottom row, · = blank)", fontsize=10)
        ax.axhline(n_inputs - 0.5, color="0.4", linewidth=1)
        for t, v in enumerate(yi.tolist()):
            label = "·" if v == getattr(task, "BLANK", -1) else f"v{v}"
            ax.text(t, n_inputs, label, ha="center", va="center", fontsize=7, color=OKABE_ITO["blue"])


def plot_task_gallery(gallery, max_channels: int = 12):
    """One panel per task (rows of `gradreg.experiments.gallery.task_gallery`), heights following the
    number of channels shown."""
    heights = []
    for item in gallery:
        channels = item["task"].input_size
        shown = channels if channels <= max_channels else 3
        heights.append(shown + (2 if item["task"].readout == "all" else 1))
    fig, axes = plt.subplots(len(gallery), 1, figsize=(9.5, 0.26 * sum(heights) + 1.0 * len(gallery)),
                             gridspec_kw=dict(height_ratios=heights))
    for ax, item in zip(np.atleast_1d(axes), gallery):
        plot_task_example(ax, item["task"], item["x"], item["y"], item["positions"], max_channels=max_channels)
    handles = [matplotlib.patches.Patch(facecolor="none", edgecolor=OKABE_ITO["vermillion"], linewidth=2,
                                        label="relevant input (this sequence)"),
               matplotlib.patches.Patch(facecolor=OKABE_ITO["orange"], alpha=0.3,
                                        label="range it is drawn from")]
    fig.legend(handles=handles, loc="outside upper center", ncol=2, fontsize=9)
    return fig


def plot_position_ranges(tasks, ax=None, labels=None):
    """For each task, where its relevant inputs can fall (as a fraction of the sequence) and
    the lags they imply; the dashed line is the default lag threshold tau = floor(S/2).
    `labels`: one y label per task (default: the task names)."""
    fig, ax = _axes(ax, (9.5, 0.6 + 0.6 * len(tasks)))
    for k, task in enumerate(tasks):
        S = task.steps
        ax.barh(k, 1.0, left=0, height=0.7, color="0.92", edgecolor="0.6")
        ranges = task.relevant_ranges()
        for r in ranges:
            ax.barh(k, max(len(r), 1) / S, left=r.start / S, height=0.6, color=OKABE_ITO["vermillion"], alpha=0.8)
        if task.readout == "all":
            text = f"S={S}: values at 0..{task.N_POSITIONS - 1}, recalled {task.length + task.N_POSITIONS} steps later"
        else:
            first = min(r.start for r in ranges)
            last = max(r.stop - 1 for r in ranges)
            text = f"S={S}: lags {S - 1 - last} to {S - 1 - first}"
        ax.text(1.01, k, text, va="center", fontsize=8)
    ax.axvline(0.5, color="black", linestyle="--", linewidth=1)
    ax.text(0.5, -0.75, r" lag threshold $\tau = \lfloor S/2 \rfloor$", fontsize=8, va="bottom")
    ax.set_yticks(range(len(tasks)))
    ax.set_yticklabels([t.name for t in tasks] if labels is None else list(labels))
    ax.set_ylim(len(tasks) - 0.5, -0.9)
    ax.set_xlim(0, 1)
    ax.set_xlabel("position / S (fraction of the sequence; coloured: where the relevant inputs can be)")
    ax.grid(axis="y", visible=False)
    return fig


# ---------------------------------------------------------------------------------------------
# 05 training

def plot_learning_curves(curves: pd.DataFrame, ax=None, x="examples", title=None):
    """Test error against examples processed: median over seeds and the interquartile band.

    curves: columns label, seed, `x`, test_error (on a common grid; see
    `gradreg.analysis.curves_on_grid`).
    """
    fig, ax = _axes(ax, (8.6, 4.4))
    for label in ordered(curves["label"]):
        sub = curves[curves["label"] == label]
        # only where every seed has a value: a median over the runs still going would be
        # biased towards the ones that solved
        seeds = sub["seed"].nunique()
        complete = sub.groupby(x)["seed"].transform("nunique") == seeds
        sub = sub[complete]
        g = sub.groupby(x)["test_error"]
        med, q25, q75 = g.median(), g.quantile(0.25), g.quantile(0.75)
        color = method_color(label)
        line, = ax.plot(med.index, med.to_numpy() * 100, color=color, label=f"{label} ({sub['seed'].nunique()} seeds)")
        dashes = METHOD_DASHES.get(label)
        if dashes:
            line.set_dashes(dashes)
        ax.fill_between(med.index, q25.to_numpy() * 100, q75.to_numpy() * 100, color=color, alpha=0.15,
                        linewidth=0)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":", label="solved (1%)")
    ax.set_xlabel("training sequences processed (examples; SGR counts its whole pool)")
    ax.set_ylabel("test error (% of sequences wrong)")
    ax.set_ylim(0, None)
    if title:
        ax.set_title(title)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    return fig


def plot_training_dynamics(steps: pd.DataFrame, history: pd.DataFrame, window: int = 25):
    """Left: `plot_long_term_norm`; right: the spectral radius of W_rec at each check
    (median over seeds, IQR band), one line per label."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.4), gridspec_kw=dict(width_ratios=[1.4, 1]))
    plot_long_term_norm(steps, ax=axes[0], window=window)
    ax = axes[1]
    for label in ordered(history["label"]):
        sub = history[history["label"] == label]
        g = sub.groupby("iteration")["spectral_radius"]
        med = g.median()
        color = method_color(label)
        ax.plot(med.index, med.to_numpy(), color=color, label=label, marker=".", markersize=4)
        ax.fill_between(med.index, g.quantile(0.25).to_numpy(), g.quantile(0.75).to_numpy(), color=color,
                        alpha=0.15, linewidth=0)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle=":")
    ax.set_xlabel("iteration (steps)")
    ax.set_ylabel(r"spectral radius $\rho(W_{rec})$")
    ax.set_title("Where the recurrent weights go")
    ax.legend(loc="best")
    return fig


def plot_long_term_norm(steps: pd.DataFrame, ax=None, window: int = 25):
    """Minibatch long-term norm over training (rolling median over `window` iterations,
    median across seeds), one line per label."""
    fig, ax = _axes(ax, (7.2, 4.2))
    for label in ordered(steps["label"]):
        sub = steps[steps["label"] == label]
        per_seed = []
        for _, s in sub.groupby("seed"):
            s = s.sort_values("iteration").set_index("iteration")["minibatch_long_term_norm"]
            per_seed.append(s.rolling(window, min_periods=1).median())
        if not per_seed:
            continue
        table = pd.concat(per_seed, axis=1)
        med = table.median(axis=1)
        color = method_color(label)
        ax.plot(med.index, med.to_numpy(), color=color, label=label)
        ax.fill_between(med.index, table.quantile(0.25, axis=1), table.quantile(0.75, axis=1), color=color,
                        alpha=0.15, linewidth=0)
    ax.set_yscale("log")
    ax.set_xlabel("iteration (steps)")
    ax.set_ylabel(r"minibatch long-term norm $\|\mathrm{mean}_B\, g^{\geq\tau}\|$")
    ax.set_title(f"What the step receives from lags >= tau (rolling median of {window} steps)")
    ax.legend(loc="best")
    return fig


# ---------------------------------------------------------------------------------------------
# 06 long range

def plot_success_rate(summary: pd.DataFrame, ax=None):
    """Success rate against task length per method with 95% Wilson intervals.

    summary: `gradreg.analysis.summarise` (columns label, length, solved, runs, ci_low, ci_high).
    """
    if ax is None and _tasks(summary) > 1:
        return _facets(plot_success_rate, summary)
    fig, ax = _axes(ax, (7.2, 4.4))
    labels = ordered(summary["label"])
    lengths = sorted(summary["length"].unique())
    offsets = np.linspace(-0.25, 0.25, len(labels)) if len(labels) > 1 else [0.0]
    positions = {L: k for k, L in enumerate(lengths)}
    for off, label in zip(offsets, labels):
        sub = summary[summary["label"] == label].sort_values("length")
        xs = np.array([positions[L] for L in sub["length"]]) + off
        rate = sub["solved"] / sub["runs"]
        color = method_color(label)
        below = np.clip((rate - sub["ci_low"]).to_numpy(dtype=float), 0, None)
        above = np.clip((sub["ci_high"] - rate).to_numpy(dtype=float), 0, None)
        ax.errorbar(xs, rate * 100, yerr=[below * 100, above * 100], fmt="o",
                    color=color, capsize=3, markersize=6, label=label, elinewidth=1.4)
        ax.plot(xs, rate * 100, color=color, linewidth=1.0, alpha=0.45)
    ax.set_xticks(range(len(lengths)))
    ax.set_xticklabels([str(L) for L in lengths])
    ax.set_xlabel("task length T (steps)")
    ax.set_ylabel("runs solved (%), 95% Wilson interval")
    ax.set_ylim(-3, 103)
    _task_title(ax, summary, "Success rate")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    return fig


def plot_examples_to_solve(results: pd.DataFrame, ax=None):
    """Examples processed until solved, per solved run (dots) and their median (bar line),
    against length, log scale."""
    if ax is None and _tasks(results) > 1:
        return _facets(plot_examples_to_solve, results)
    fig, ax = _axes(ax, (7.2, 4.4))
    labels = ordered(results["label"])
    lengths = sorted(results["length"].unique())
    positions = {L: k for k, L in enumerate(lengths)}
    offsets = np.linspace(-0.25, 0.25, len(labels)) if len(labels) > 1 else [0.0]
    solved = results[results["solved"].astype(bool)]
    for off, label in zip(offsets, labels):
        sub = solved[solved["label"] == label]
        color = method_color(label)
        if sub.empty:
            ax.plot([], [], "o", color=color, label=f"{label} (none solved)")
            continue
        xs = np.array([positions[L] for L in sub["length"]]) + off
        ax.scatter(xs, sub["examples"], color=color, s=16, alpha=0.7, label=label)
        med = sub.groupby("length")["examples"].median()
        mx = np.array([positions[L] for L in med.index]) + off
        ax.scatter(mx, med.to_numpy(), marker="_", s=300, color=color, linewidths=2.5)
    ax.set_yscale("log")
    ax.set_xticks(range(len(lengths)))
    ax.set_xticklabels([str(L) for L in lengths])
    ax.set_xlabel("task length T (steps)")
    ax.set_ylabel("training sequences until solved (examples)")
    _task_title(ax, results, "Examples to solve (bar: median)")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    return fig


def plot_run_histories(history: pd.DataFrame, runs: pd.DataFrame, task: str, length: int,
                       labels=("sgr/top", "sgr/random", "sgr/weighted")):
    """What solved and failed runs look like over training: test error, minibatch long-term
    norm and spectral radius of W_rec against training sequences, one line per run (solid:
    solved, dotted: failed), coloured by method.

    history: the sweep's check histories (`gradreg.results.load_history`); runs: its results
    (`load_results`), which say which runs solved."""
    fig, axes = plt.subplots(1, 3, figsize=(15.0, 4.2))
    h = history[(history["task"] == task) & (history["length"] == length)].copy()
    h["label"] = [method_label(m, r) for m, r in zip(h["method"], h["rule"])]
    solved = {(r.method, r.rule, int(r.seed)): bool(r.solved)
              for r in runs[(runs["task"] == task) & (runs["length"] == length)].itertuples()}
    panels = (("test_error", "test error (over the sequences counted)", "linear"),
              ("minibatch_long_term_norm", r"minibatch long-term norm $\|\mathrm{mean}_B\, g^{\geq\tau}\|$", "log"),
              ("spectral_radius", r"spectral radius $\rho(W_{rec})$", "linear"))
    shown = [label for label in ordered(h["label"]) if label in labels]
    for ax, (column, ylabel, scale) in zip(axes, panels):
        for label in shown:
            for (method, rule, seed), run in h[h["label"] == label].groupby(["method", "rule", "seed"]):
                ok = solved.get((method, rule if isinstance(rule, str) else "", int(seed)), False)
                ax.plot(run["examples"], run[column], color=method_color(label), linewidth=1.2,
                        linestyle="-" if ok else ":", alpha=0.9 if ok else 0.6)
        ax.set_xlabel("training sequences (examples)")
        ax.set_ylabel(ylabel)
        ax.set_yscale(scale)
    handles = [plt.Line2D([], [], color=method_color(label), label=label) for label in shown]
    handles += [plt.Line2D([], [], color="black", linestyle="-", label="solved"),
                plt.Line2D([], [], color="black", linestyle=":", label="failed")]
    axes[-1].legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    if not shown:
        axes[1].text(0.5, 0.5, f"no {', '.join(labels)} runs at {task} T={length} yet",
                     ha="center", va="center", transform=axes[1].transAxes)
    fig.suptitle(f"Solved and failed runs over training: {task}, T = {length}")
    return fig


def plot_time_to_solve(km: pd.DataFrame, labels=None, title: str = "Time to solve"):
    """Kaplan-Meier curves: the fraction of runs still unsolved against iterations, one panel
    per (task, length), the arms overlaid (a step line, its 95% band shaded; an arm with
    settings of its own, drawn thicker and solid; with a column `budget`, as
    `experiments.long_range.budget_curves` gives, the largest budget thick and solid and the
    others thin and dashed). km: `gradreg.analysis.kaplan_meier`."""
    if labels is not None:
        km = km[km["label"].isin(labels)]
    tasks, lengths = sorted(set(km["task"])), sorted(set(km["length"].astype(int)))
    if not tasks:
        fig, ax = plt.subplots(figsize=(6.0, 3.0))
        ax.text(0.5, 0.5, "no runs to draw", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    single = len(tasks) == 1 and len(lengths) == 1     # its legend goes beside it: room for that
    fig, axes = plt.subplots(len(tasks), len(lengths), figsize=(4.3 * len(lengths) + 2.7 * single,
                             3.5 * len(tasks)), squeeze=False, sharey=True)
    longest = km["budget"].max() if "budget" in km else None
    for (i, task), (j, length) in itertools.product(enumerate(tasks), enumerate(lengths)):
        ax = axes[i, j]
        cell = km[(km["task"] == task) & (km["length"] == length)]
        if cell.empty:
            ax.set_visible(False)
            continue
        for label in ordered(cell["label"]):
            curve = cell[cell["label"] == label]
            color, first = method_color(label), curve.iloc[0]
            if longest is None:
                bold, dashes, alpha, zorder = " [" in label, METHOD_DASHES.get(label) or (), 1.0, 2
            else:   # the same runs up to the shorter budget: its dashes go on top of a paler line
                bold = first["budget"] == longest
                dashes, alpha, zorder = (3, 2), 0.45 if bold else 1.0, 2 if bold else 3
            ax.step(curve["time"], curve["unsolved"], where="post", color=color, linewidth=2.2 if bold else 1.4,
                    dashes=() if bold else dashes, alpha=alpha, zorder=zorder,
                    label=f"{label} ({int(first['solved'])}/{int(first['runs'])})")
            ax.fill_between(curve["time"], curve["low"], curve["high"], step="post", color=color, alpha=0.07,
                            linewidth=0)
        ax.set_title(f"{task.replace('_', ' ')}, T = {length}", fontsize=10)
        ax.set_xlabel("iterations")
        ax.set_ylim(-0.02, 1.02)
        # one panel: beside it, since its curves may fall anywhere; a grid of panels: in each
        # panel's lower left, which curves that start at 1 leave free until late
        where = dict(loc="center left", bbox_to_anchor=(1.02, 0.5)) if single else dict(loc="lower left")
        ax.legend(fontsize=7, title="solved/runs", title_fontsize=7, **where)
    for ax in axes[:, 0]:
        ax.set_ylabel("runs not yet solved")
    fig.suptitle(title)
    return fig


def plot_screen(table: pd.DataFrame, at: int, references=(), chosen: str | None = None):
    """The screen (docs/method.md section 11.6) at iteration `at`: per setting (rows), each
    seed's test error, rho(W_rec), minibatch long-term norm relative to sgr/random and fraction
    of checks above the clip threshold (dots), their median (bar); the references in grey, the
    carried-forward setting in vermillion. table: `gradreg.analysis.screen_table`."""
    t = table[table["check"] == at]
    names = list(dict.fromkeys(t["setting"]))
    panels = (("test_error", "test error", "linear"), ("spectral_radius", r"$\rho(W_{rec})$", "linear"),
              ("relative_long_term_norm", "long-term norm / sgr/random's", "log"),
              ("clipped_checks", "checks with grad norm > clip", "linear"))
    fig, axes = plt.subplots(1, len(panels), figsize=(15.0, 0.32 * len(names) + 1.6), sharey=True)
    ys = {name: k for k, name in enumerate(names)}
    for ax, (column, xlabel, scale) in zip(axes, panels):
        for name in names:
            values = t.loc[t["setting"] == name, column].dropna()
            if scale == "log":
                values = values[values > 0]
            color = (OKABE_ITO["vermillion"] if name == chosen else
                     OKABE_ITO["grey"] if name in references else OKABE_ITO["blue"])
            ax.scatter(values, [ys[name]] * len(values), color=color, s=14, alpha=0.7)
            if len(values):
                ax.scatter([values.median()], [ys[name]], marker="|", s=220, color=color, linewidths=2.5)
        ax.set_xscale(scale)
        ax.set_xlabel(xlabel)
    axes[0].set_yticks(range(len(names)))
    axes[0].set_yticklabels(names)
    axes[0].invert_yaxis()
    axes[1].axvline(1.2, color=OKABE_ITO["grey"], linewidth=0.8, linestyle=":")
    axes[2].axvline(1e-3, color=OKABE_ITO["grey"], linewidth=0.8, linestyle=":")
    fig.suptitle(f"The screen at {at:,} iterations: temporal order, T = 100 (dots: seeds, bar: median)")
    return fig


def _tasks(df) -> int:
    return df["task"].nunique() if "task" in df.columns else 1


def _task_title(ax, df, what):
    if "task" in df.columns and df["task"].nunique() == 1:
        ax.set_title(f"{what}: {df['task'].iloc[0]}")
    else:
        ax.set_title(what)


def _facets(plot, df):
    tasks = list(dict.fromkeys(df["task"]))
    cols = min(3, len(tasks))
    rows = math.ceil(len(tasks) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.0 * cols, 4.2 * rows), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        plot(df[df["task"] == task], ax=ax)
    used = list(axes.flat)[:len(tasks)]
    handles, labels = used[-1].get_legend_handles_labels()
    for ax in used:  # one legend for the figure
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.legend(handles, labels, loc="outside right center", fontsize=9)
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    return fig
