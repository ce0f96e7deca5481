"""Notebook 07, the two protocols: the package's conventions (Pascanu's) against the authors'
public code (docs/method.md section 7)."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..analysis import finished_runs, wilson_interval
from ..config import PROTOCOL_FIELDS, PROTOCOLS, TrainConfig
from ..results import load_results
from ..tasks import TASK_VARIANTS, make_task


def protocol_table() -> pd.DataFrame:
    """Every choice of each protocol (`gradreg.config.PROTOCOLS`, plus the settings both share),
    one row per setting, one column per protocol, and whether they differ."""
    shared = ("batch_size", "pool_factor", "activation", "test_size", "solved_error")
    configs = {name: TrainConfig(protocol=name) for name in PROTOCOLS}
    rows = []
    for setting in PROTOCOL_FIELDS + shared:
        values = {name: getattr(c, setting) for name, c in configs.items()}
        rows.append({"setting": setting, **{k: "None" if v is None else v for k, v in values.items()},
                     "differs": len({repr(v) for v in values.values()}) > 1})
    return pd.DataFrame(rows).astype({name: str for name in PROTOCOLS})


def variant_positions(tasks=("adding", "temporal_order"), lengths=(50, 100)) -> pd.DataFrame:
    """Where each task's relevant inputs can be in each variant: one row per (task, T, variant,
    marked position) with its inclusive 0-based range, the lags it implies (S-1-last .. S-1-first)
    and the wrong-answer rule."""
    rows = []
    for name in tasks:
        for T in lengths:
            for variant in TASK_VARIANTS[name]:
                task = make_task(name, T, variant)
                for j, (first, last) in enumerate(task.position_bounds()):
                    rows.append({"task": name, "T": T, "variant": variant, "position": f"p{j}",
                                 "first": first, "last": last, "lag_min": task.steps - 1 - last,
                                 "lag_max": task.steps - 1 - first, "wrong_when": task.wrong_when})
    return pd.DataFrame(rows)


def variant_tasks(tasks=("adding", "temporal_order"), length: int = 100) -> tuple[list, list[str]]:
    """The tasks of every variant at one length, with labels "task (variant)", for
    `plotting.plot_position_ranges`."""
    out = [make_task(name, length, variant) for name in tasks for variant in TASK_VARIANTS[name]]
    return out, [f"{t.name} ({t.variant})" for t in out]


def protocol_results(results_dir="../data/results", authors: str = "authors.csv",
                     paper: str = "paper.csv") -> dict[str, pd.DataFrame | None]:
    """The committed runs of each protocol: {"chernodub": table or None, "pascanu": table or
    None}, read from results_dir (None where the file does not exist or has no finished runs)."""
    out = {}
    for protocol, name in (("chernodub", authors), ("pascanu", paper)):
        path = Path(results_dir) / name
        table = finished_runs(load_results(path)) if path.is_file() else None
        out[protocol] = table if table is not None and len(table) else None
    return out


def protocol_summary(tables: dict, compared=("sgd", "sgr/top", "sgr/random"), tasks=None, lengths=None,
                     confidence: float = 0.95) -> pd.DataFrame:
    """Both ways of reporting a cell, for each protocol's runs: as the authors report them, the
    mean test success rate (%) over networks with a t interval (`confidence`; cut to [0, 100],
    where a success rate lives: with a handful of networks the t interval can reach past it),
    and as the fraction of runs solved (test success >= 99%) with a Wilson interval. `tables` as
    `protocol_results` returns it (a run's test success: its `test_success` column, or
    100 (1 - final_error) in a file without one: the same number)."""
    from scipy import stats as st

    rows = []
    for protocol, table in tables.items():
        if table is None:
            continue
        df = table[table["label"].isin(compared)]
        if tasks is not None:
            df = df[df["task"].isin(tasks)]
        if lengths is not None:
            df = df[df["length"].isin(lengths)]
        success = df["test_success"] if "test_success" in df else 100 * (1 - df["final_error"])
        df = df.assign(test_success=success)
        for (task, length, label), cell in df.groupby(["task", "length", "label"], sort=True):
            n, k = len(cell), int(cell["solved"].sum())
            values = cell["test_success"].dropna()
            mean = values.mean() if len(values) else float("nan")
            half = (st.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
                    if len(values) > 1 else float("nan"))
            low, high = wilson_interval(k, n, confidence)
            rows.append({"protocol": protocol, "task": task, "length": int(length), "method": label,
                         "networks": n, "mean_test_success": mean,
                         "ci_low": max(mean - half, 0.0), "ci_high": min(mean + half, 100.0),
                         "solved": k, "solved_fraction": k / n, "wilson_low": low, "wilson_high": high})
    return pd.DataFrame(rows, columns=["protocol", "task", "length", "method", "networks", "mean_test_success",
                                       "ci_low", "ci_high", "solved", "solved_fraction", "wilson_low",
                                       "wilson_high"])
