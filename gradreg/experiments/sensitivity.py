"""Notebook 08, the screen of our reading's free choices (docs/method.md section 11.6): the
committed screen sweep, its measurements per setting, and the variant the plan's rule names."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..analysis import SCREEN_CHECKS, finished_runs, screen_choice, screen_table
from ..profiles import SCREEN_REFERENCES, SCREEN_SETTINGS, profile_configs, setting_name
from ..results import load_profiles


def screen_results(results_dir="../data/results") -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(finished runs, check histories, a line saying how much of the screen they are) of the
    committed `screen` sweep; empty tables when it has not been run."""
    path = Path(results_dir) / "screen.csv"
    found = load_profiles(results_dir, ["screen"])
    if not found:
        return (pd.DataFrame(), pd.DataFrame(),
                f"no screen results at {path}: python -m gradreg sweep --profile screen --results {path}")
    rows, history = found["screen"]
    runs, history = finished_runs(rows), pd.DataFrame() if history is None else history
    planned = len(profile_configs("screen"))
    return runs, history, f"{len(runs)} of the screen's {planned} runs, from {path}"


def screen_verdict(runs: pd.DataFrame, history: pd.DataFrame):
    """The screen's measurements (`analysis.screen_table`, settings by name, in SCREEN_SETTINGS'
    order) and section 11.6's rule on them: (table, chosen setting or None, per-setting medians,
    sentence). The rule is applied only when every setting has all its seeds at the last check."""
    if not len(runs):
        return pd.DataFrame(), None, pd.DataFrame(), "the screen has no runs yet"
    table = screen_table(runs, history, setting_name)
    order = {name: k for k, name in enumerate(SCREEN_SETTINGS)}
    table = table.sort_values(["setting", "seed", "check"], key=lambda c: c.map(order) if c.name == "setting" else c,
                              kind="stable").reset_index(drop=True)
    seeds = len({c.seed for c in profile_configs("screen")})
    last = table[table["check"] == SCREEN_CHECKS[-1]].groupby("setting")["seed"].nunique()
    missing = [name for name in SCREEN_SETTINGS if last.get(name, 0) < seeds]
    if missing:
        return table, None, pd.DataFrame(), (f"the rule waits for the whole screen: {len(missing)} setting(s) "
                                              f"without all {seeds} seeds at {SCREEN_CHECKS[-1]:,} iterations yet "
                                              f"({', '.join(missing)})")
    chosen, medians, how = screen_choice(table, SCREEN_REFERENCES)
    return table, chosen, medians, how
