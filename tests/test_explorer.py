"""The interactive explorer (gradreg.explore, notebooks/explorer.ipynb): its numbers, its UI, its notebook.

The rule norms of `compute` come from the pool's Gram matrix built by `passes.pool_scores`;
here they are recomputed the long way, from `per_example_stats`' per-example long-term
gradients, so the two paths check each other.
"""
import itertools
import json
import math
import re
import statistics
from pathlib import Path

import numpy as np
import pytest
import torch

import gradreg
from gradreg import explore, sampling
from gradreg.config import Seeds
from gradreg.explore import EXPLORER_PRESETS, RULES, compute, make_params

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "explorer.ipynb"
SMALL = dict(task="temporal_order", length=24, hidden_size=12, batch_size=6, pool_factor=3, draws=30)


def direct_stats(p):
    """per_example_stats on the very pool compute() draws (same seeds, same model)."""
    task = gradreg.make_task(p.task, p.length)
    seeds = Seeds(p.seed, torch.device("cpu"))
    model = gradreg.SRN(task.input_size, p.hidden_size, task.output_size, activation=p.activation,
                        init=p.init, readout=task.readout, generator=seeds.model,
                        spectral_radius=p.spectral_radius, dtype=torch.float64)
    x, y = task.sample(p.pool_size, generator=seeds.data)
    return gradreg.per_example_stats(model, task, x.double(), y, lag=p.lag)


def flat(grads):
    return torch.cat([g.flatten(1) for g in grads.values()], 1)


@pytest.mark.parametrize("params", [
    SMALL,
    dict(SMALL, task="adding", activation="relu", init="identity", spectral_radius=1.0, lag=5),
    dict(SMALL, task="noiseless_memorization", length=4, activation="sigmoid", init="gaussian",
         spectral_radius=None),
], ids=["temporal_order", "adding-relu-identity", "memorization"])
def test_rule_norms_equal_a_direct_computation(params):
    r = compute(params)
    p = r["params"]
    stats = direct_stats(p)
    lt = flat(stats.long_term_grads)                    # (M, P) per-example long-term gradients
    full = flat(stats.grads)
    assert r["lag"] == stats.lag
    np.testing.assert_allclose(r["scores"], stats.long_term_norm.numpy(), rtol=1e-10, atol=0)
    np.testing.assert_allclose(r["delta_norm"], stats.delta_norm.numpy(), rtol=1e-10, atol=0)
    np.testing.assert_allclose(r["full_norm"], stats.grad_norm.numpy(), rtol=1e-10, atol=0)
    assert r["pool_norm"] == pytest.approx(lt.mean(0).norm().item(), rel=1e-9)
    n = p.batch_size
    for rule in RULES:
        e = r["rules"][rule]
        assert len(e["index"]) == n and len(set(e["index"].tolist())) == n, rule
        w = torch.as_tensor(e["weight"], dtype=torch.float64)
        idx = torch.as_tensor(e["index"])
        mean_lt = (w[:, None] * lt[idx]).sum(0)
        assert e["norm"] == pytest.approx(mean_lt.norm().item(), rel=1e-9, abs=1e-300), rule
        assert e["full_norm"] == pytest.approx((w[:, None] * full[idx]).sum(0).norm().item(), rel=1e-9), rule
        # triangle bound: ||mean_B g|| <= mean_B ||g_i||
        assert e["triangle"] == pytest.approx(stats.long_term_norm[idx].mean().item(), rel=1e-9)
        assert e["norm"] <= e["triangle"] * (1 + 1e-12), rule
        assert e["draws"][0] == e["norm"]
    # the deterministic rules: top takes the n largest scores
    top = set(r["rules"]["top"]["index"].tolist())
    assert top == set(torch.topk(stats.long_term_norm, n).indices.tolist())


def test_top_beats_random_on_a_fixed_seed():
    """At the default sizes (seed 0), the n largest scores give a larger long-term norm than
    random minibatches do on average (over the draws, and in the exact RMS)."""
    r = compute(seed=0)
    top, rand = r["rules"]["top"], r["rules"]["random"]
    assert len(rand["draws"]) == r["params"].draws
    assert top["norm"] >= rand["mean"]
    assert top["norm"] >= r["random_rms"]
    assert top["triangle"] >= max(e["triangle"] for e in r["rules"].values()) - 1e-15


def test_random_rms_is_exact():
    """sqrt(E||mean_B g||^2) over every n-subset of a small pool, enumerated."""
    g = torch.randn(6, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.3
    gram = g @ g.T
    for n in (1, 2, 4, 6):
        sq = [g[list(B)].mean(0).pow(2).sum().item() for B in itertools.combinations(range(6), n)]
        assert sampling.random_minibatch_rms(gram, n) == pytest.approx(math.sqrt(statistics.fmean(sq)), rel=1e-12)


def test_random_draws_average_to_the_exact_rms():
    r = compute(SMALL, draws=4000)
    draws = r["rules"]["random"]["draws"]
    assert math.sqrt(np.mean(draws ** 2)) == pytest.approx(r["random_rms"], rel=0.05)


def test_compute_is_pure_and_deterministic():
    a, b = compute(SMALL), compute(dict(SMALL))
    for key in ("delta_norm", "scores", "ratios", "full_norm"):
        np.testing.assert_array_equal(a[key], b[key])
    for rule in RULES:
        np.testing.assert_array_equal(a["rules"][rule]["draws"], b["rules"][rule]["draws"])
    assert compute(SMALL, seed=1)["scores"].tolist() != a["scores"].tolist()
    # the thread limit is restored
    before = torch.get_num_threads()
    compute(SMALL, threads=1)
    assert torch.get_num_threads() == before


def test_defaults_and_profiles():
    p = make_params()
    assert (p.task, p.length, p.hidden_size, p.batch_size, p.pool_factor, p.rule) == \
        ("temporal_order", 50, 50, 20, 4, "top")
    assert compute(EXPLORER_PRESETS["smoke"])["lag"] == 10   # floor(S/2)
    for sizes in EXPLORER_PRESETS.values():
        make_params(sizes)


@pytest.mark.parametrize("bad, word", [
    (dict(rule="best"), "rule"), (dict(task="parity"), "task"), (dict(colour=1), "colour"),
    (dict(lag=50), "lag"), (dict(batch_size=0), "batch_size"), (dict(spectral_radius=-1.0), "spectral_radius"),
    (dict(activation="gelu"), "activation"), (dict(band_low=2.0, band_high=1.0), "band"),
])
def test_invalid_parameters_raise_value_error(bad, word):
    with pytest.raises(ValueError, match=word):
        compute(bad)


def test_draw_and_table():
    r = compute(SMALL, rule="band")
    png = explore.render_png(r)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    html = explore.table_html(r)
    for rule in RULES:
        assert f"<td>{rule}</td>" in html
    assert f"{r['rules']['top']['norm']:.4g}" in html


# ----------------------------------------------------------------------------- the widget UI

def test_ui_builds_and_a_control_change_updates_the_plot():
    pytest.importorskip("ipywidgets")
    ui = explore.explorer(profile="smoke", device="cpu")
    assert ui.error is None and ui.updates == 1
    names = {"task", "length", "activation", "init", "spectral_radius", "hidden_size", "lag", "rule",
             "pool_factor", "batch_size", "seed"}
    assert names <= set(ui.controls)
    assert "application/vnd.jupyter.widget-view+json" in ui._repr_mimebundle_()
    png0, table0 = ui.image.value, ui.table.value
    assert png0[:4] == b"\x89PNG"

    ui.controls["spectral_radius"].value = 1.5          # as a user moving the slider
    assert ui.updates == 2 and ui.error is None
    assert ui.image.value != png0 and ui.table.value != table0
    assert ui.result["spectral_radius"] == pytest.approx(1.5, rel=1e-9)

    cached = ui._cache
    ui.controls["rule"].value = "greedy"                 # highlight only: no recomputation
    assert ui.updates == 3 and ui._cache is cached and ui.result["params"].rule == "greedy"

    ui.controls["task"].value = "noiseless_memorization"  # S = T + 20: the lag range follows
    S = ui.result["steps"]
    assert ui.error is None and ui.controls["lag"].max == S - 1 and ui.result["lag"] == S // 2

    ui.controls["rescale"].value = False                 # the init's own W_rec
    assert ui.controls["spectral_radius"].disabled and ui.result["params"].spectral_radius is None
    assert ui.latency().startswith(f"{ui.updates} updates")


def test_ui_save(tmp_path):
    pytest.importorskip("ipywidgets")
    ui = explore.explorer(profile="smoke", device="cpu", output_dir=str(tmp_path / "figs"))
    path = Path(ui.save())
    assert path.parent == tmp_path / "figs" and path.read_bytes() == ui.image.value


def test_every_control_change_is_one_timed_update():
    """Each change of a control recomputes and redraws once, and is timed (ui.latency() reports
    them). How long an update takes is measured in benchmarks/explorer.py, against a peer in
    the same process: a timed test would measure the machine's load."""
    pytest.importorskip("ipywidgets")
    ui = explore.explorer(profile="smoke", device="cpu")
    for value in (0.9, 1.0, 1.1):
        ui.controls["spectral_radius"].value = value
    assert ui.error is None and len(ui.timings) == 4
    assert all(t["total"] >= t["compute"] > 0 for t in ui.timings)
    assert ui.latency().startswith("4 updates: median")


# ----------------------------------------------------------------------------- the notebook

def test_notebook_is_committed_clean():
    nb = json.loads(NOTEBOOK.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "gradreg"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    params = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1
    src = "".join(params[0]["source"])
    for line in ('profile = "quick"', "seed = 0", 'device = "auto"', 'output_dir = "../figures"'):
        assert line in src
    assert any("from gradreg.explore import explorer" in "".join(c["source"]) for c in code)


def _kernel_name():
    from jupyter_client.kernelspec import KernelSpecManager
    return "gradreg" if "gradreg" in KernelSpecManager().find_kernel_specs() else "python3"


@pytest.mark.slow
def test_notebook_runs_headless_with_the_smoke_profile(tmp_path):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "explorer.ipynb"
    nb = papermill.execute_notebook(
        str(NOTEBOOK), str(out), parameters=dict(profile="smoke", output_dir=str(tmp_path / "figs")),
        kernel_name=_kernel_name(), cwd=str(NOTEBOOK.parent), progress_bar=False)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "1 updates: median" in text
    assert "Traceback" not in text


# ------------------------------------------------------------------ bad input and its messages


def test_explorer_refuses_a_pool_that_cannot_fit():
    with pytest.raises(ValueError, match=r"T=10000000 needs about .* of memory"):
        compute(length=10 ** 7)


def test_explorer_device_and_overflow_messages():
    with pytest.raises(ValueError, match=r"unknown device 'tpu'; allowed: auto, cpu, cuda, cuda:N"):
        compute(device="tpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        explore.Explorer(device="tpu")
    with pytest.raises(ValueError, match=r"the network overflowed in float32.*rho\(W_rec\) = 1e\+30.*float64"):
        compute(spectral_radius=1e30, dtype="float32", activation="relu")
    with pytest.raises(ValueError, match=r"overflowed in float64"):
        compute(spectral_radius=1e30, activation="identity")


@pytest.mark.parametrize("bad,word", [
    (dict(seed=2 ** 40), "seed must be an integer in 0..2147483647"),
    (dict(draws=10 ** 9), "draws must be an integer in 1..100000"),
    (dict(alpha=float("nan")), "alpha must be a positive finite number"),
    (dict(band_low=float("nan")), "band_low must be a positive finite number"),
    (dict(lag=2.5), "lag must be an integer or None"),
])
def test_explorer_limits(bad, word):
    with pytest.raises(ValueError, match=re.escape(word)):
        compute(**bad)


def test_explorer_numpy_parameters_and_large_alpha():
    r = compute(hidden_size=np.int64(12), alpha=np.float32(300.0), batch_size=np.int64(4),
                pool_factor=2, length=20, draws=5)
    assert r["params"].hidden_size == 12 and type(r["params"].alpha) is float
    assert all(math.isfinite(e["norm"]) for e in r["rules"].values())
