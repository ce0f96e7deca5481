"""Notebook 06, the long range: which committed sweep results to read, or the runs to make."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..analysis import finished_runs, results_table
from ..results import load_results
from ..runs import run_configs
from .settings import notebook_settings
from .training import method_configs


def find_results(results: str = "auto", results_dir="../data/results", profile: str = "paper") -> Path | None:
    """Which sweep results file to read: `results` may be a path, "compute" (none), or
    "auto": the committed evidence results_dir/paper.csv if it exists, else
    results_dir/<profile>.csv if it exists, else none (the notebook computes its own runs)."""
    if results == "compute":
        return None
    if results != "auto":
        path = Path(results)
        if not path.is_file():
            raise ValueError(f"results file {str(path)!r} does not exist; allowed: a CSV path, 'auto', 'compute'")
        return path
    for name in ("paper", profile):
        path = Path(results_dir) / f"{name}.csv"
        if path.is_file():
            return path
    return None


def long_range_results(profile: str, results: str = "auto", results_dir="../data/results",
                       device: str = "auto", workers=None, progress: bool = True) -> tuple[pd.DataFrame, str]:
    """The runs behind the long-range figures: read from a sweep results file when one is
    found (see `find_results`), computed at `profile` otherwise. Returns (table, source)."""
    path = find_results(results, results_dir, profile)
    note = ""
    if path is not None:
        table = finished_runs(load_results(path))
        if len(table):
            return table, str(path)
        note = f" ({path} has no finished runs yet)"
    s = notebook_settings("06_long_range", profile)
    configs = [c for L in s.lengths for c in method_configs(
        s.task, L, s.seeds, max_iterations=s.max_iterations, check_every=s.check_every,
        test_size=s.test_size, device=device)]
    table = results_table(run_configs(configs, workers=s.workers if workers is None else workers,
                                      progress=progress))
    return table, f"computed now at profile {profile!r}{note}"


def budget_curves(paper: pd.DataFrame, long: pd.DataFrame) -> pd.DataFrame:
    """Kaplan-Meier curves (`analysis.kaplan_meier`) of the `long` profile's runs beside those
    of the paper profile's runs of the same (task, length, label), each label suffixed with its
    budget ("sgr/top, 50k iterations") and with a column `budget`: does a five-times budget
    change which method wins? Empty without long runs."""
    from ..analysis import kaplan_meier
    from ..profiles import LONG_MAX_ITERATIONS, PAPER_MAX_ITERATIONS
    long = finished_runs(long)
    if not len(long):
        return kaplan_meier(long)
    paper = finished_runs(paper)
    cells = set(zip(long["task"], long["length"], long["label"]))
    paper = paper[[cell in cells for cell in zip(paper["task"], paper["length"], paper["label"])]]
    curves = [kaplan_meier(runs).assign(budget=budget)
              for runs, budget in ((paper, PAPER_MAX_ITERATIONS), (long, LONG_MAX_ITERATIONS))]
    km = pd.concat(curves, ignore_index=True)
    return km.assign(label=km["label"] + ", " + (km["budget"] // 1000).astype(str) + "k iterations")


def budget_table(long: pd.DataFrame) -> pd.DataFrame:
    """Per (task, length, label) of the `long` profile's finished runs: how many ran and how many
    solved within the paper's budget and within the five-times one. A long run is the paper
    grid's run up to the paper's budget (tests/test_engine.py holds them to it), so the first
    count is the paper's; the second says what the extra budget bought."""
    from ..profiles import PAPER_MAX_ITERATIONS
    long = finished_runs(long)
    early = long["solved"].astype(bool) & (long["iterations"] <= PAPER_MAX_ITERATIONS)
    return (long.assign(early=early)
            .groupby(["task", "length", "label"], sort=True)
            .agg(runs=("seed", "size"), solved_at_paper_budget=("early", "sum"),
                 solved_at_long_budget=("solved", "sum"))
            .astype({"solved_at_paper_budget": int, "solved_at_long_budget": int})
            .reset_index())
