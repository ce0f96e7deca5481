"""Tables of finished runs: success rates with Wilson intervals, exact tests between methods,
and the long-range verdict of the paper profile (docs/method.md section 8).

    from gradreg.analysis import summarise, comparisons
    runs = gradreg.sweep.load_results("data/results/paper.csv")
    summarise(runs)      # per (task, length, method, rule): success rate [95% Wilson], medians
    comparisons(runs)    # per (task, length): sgr/top against sgr/random and pascanu, Fisher's p

The statistics are scipy's: `scipy.stats.binomtest(...).proportion_ci(method="wilson")` and
`scipy.stats.fisher_exact` (two-sided).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["method_label", "wilson_interval", "exact_test", "summarise", "comparisons",
           "COMPARED", "AGAINST"]

#: The method whose claim is tested, and the methods it is held against: its same-cost
#: control (a random pool of the same size) and the strongest baseline (Pascanu's SGD-CR).
COMPARED = "sgr/top"
AGAINST = ("sgr/random", "pascanu")


def method_label(method: str, rule: str = "") -> str:
    """"sgr/top" for SGR with its rule, the method's name otherwise."""
    return f"{method}/{rule}" if method == "sgr" and rule else method


def _wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0           # no runs: we know nothing
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def wilson_interval(successes, trials, confidence: float = 0.95):
    """Wilson score interval of a binomial proportion: scalars -> (low, high) floats; arrays ->
    (low, high) arrays. Zero trials give (0, 1)."""
    k, n = np.asarray(successes), np.asarray(trials)
    if np.any(k < 0) or np.any(k > n):
        raise ValueError(f"need 0 <= successes <= trials, got successes={successes!r}, trials={trials!r}")
    if k.ndim == 0 and n.ndim == 0:
        return _wilson(int(k), int(n), confidence)
    k, n = np.broadcast_arrays(k, n)
    pairs = [_wilson(int(a), int(b), confidence) for a, b in zip(k.ravel(), n.ravel())]
    low = np.array([p[0] for p in pairs]).reshape(k.shape)
    high = np.array([p[1] for p in pairs]).reshape(k.shape)
    return low, high


def exact_test(solved_a: int, runs_a: int, solved_b: int, runs_b: int) -> float:
    """Two-sided p-value of Fisher's exact test that two methods solve at the same rate
    (1.0 when either has no runs)."""
    if runs_a == 0 or runs_b == 0:
        return 1.0
    table = [[solved_a, runs_a - solved_a], [solved_b, runs_b - solved_b]]
    return float(stats.fisher_exact(table, alternative="two-sided").pvalue)


def _labelled(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["label"] = [method_label(m, r) for m, r in zip(df["method"], df["rule"].fillna(""))]
    return df


def summarise(df: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Per (task, length, method, rule): runs, solved, success_rate with its Wilson interval
    (ci_low, ci_high), and over the solved runs the median examples, iterations and seconds
    to solve (NaN when none solved); diverged and errors count those runs. Error rows (a run
    that raised) are counted in `errors` and left out of the runs and the rate."""
    cols = ["task", "length", "method", "rule", "label", "runs", "solved", "success_rate", "ci_low",
            "ci_high", "median_examples", "median_iterations", "median_seconds", "diverged", "errors"]
    rows = []
    for (task, length, method, rule), g in _labelled(df).groupby(["task", "length", "method", "rule"], sort=True):
        failed = (g["error"].fillna("").astype(str) != "") if "error" in g else pd.Series(False, index=g.index)
        ok = g[~failed]
        n, k = len(ok), int(ok["solved"].astype(bool).sum())
        lo, hi = wilson_interval(k, n, confidence)
        s = ok[ok["solved"].astype(bool)]
        rows.append({"task": task, "length": int(length), "method": method, "rule": rule,
                     "label": method_label(method, rule), "runs": n, "solved": k,
                     "success_rate": k / n if n else float("nan"), "ci_low": lo, "ci_high": hi,
                     "median_examples": s["examples"].median() if k else float("nan"),
                     "median_iterations": s["iterations"].median() if k else float("nan"),
                     "median_seconds": s["seconds"].median() if k else float("nan"),
                     "diverged": int(ok["diverged"].astype(bool).sum()), "errors": int(failed.sum())})
    return pd.DataFrame(rows, columns=cols)


def comparisons(df: pd.DataFrame, compared: str = COMPARED, against=AGAINST) -> pd.DataFrame:
    """Per (task, length) where `compared` has runs: its solved/runs, and against each method of
    `against` that has runs there, that method's solved/runs and the two-sided Fisher p-value."""
    summary = summarise(df).set_index(["task", "length", "label"])
    rows = []
    for (task, length), _ in summary.groupby(level=["task", "length"], sort=True):
        if (task, length, compared) not in summary.index:
            continue
        a = summary.loc[(task, length, compared)]
        for other in against:
            if (task, length, other) not in summary.index:
                continue
            b = summary.loc[(task, length, other)]
            rows.append({"task": task, "length": int(length), "method": compared, "solved": int(a["solved"]),
                         "runs": int(a["runs"]), "against": other, "against_solved": int(b["solved"]),
                         "against_runs": int(b["runs"]),
                         "p_value": exact_test(int(a["solved"]), int(a["runs"]), int(b["solved"]),
                                               int(b["runs"]))})
    return pd.DataFrame(rows, columns=["task", "length", "method", "solved", "runs", "against", "against_solved",
                                       "against_runs", "p_value"])


#: Lengths at which the paper's claim (links at a range of about 100 and longer) is tested.
CLAIM_MIN_LENGTH = 100


def verdict(df: pd.DataFrame, alpha: float = 0.05, min_length: int = CLAIM_MIN_LENGTH) -> str:
    """One plain sentence on the paper's claim from the runs: "supported" where, at some
    T >= min_length, sgr/top solves significantly more often (two-sided Fisher p < alpha) than
    both its same-cost control and Pascanu's SGD-CR, and no control beats it anywhere; "not
    supported" where a control solves significantly more often than sgr/top at some such T;
    otherwise "not decidable at this budget" (equal counts are not evidence of equal rates
    with a handful of runs)."""
    c = comparisons(df)
    c = c[c["length"] >= min_length]
    if c.empty:
        return (f"Not decidable at this budget: no sgr/top run at T >= {min_length} has been made "
                f"against {' and '.join(AGAINST)}.")
    wins, losses = [], []
    for (task, length), g in c.groupby(["task", "length"], sort=True):
        rate = g["solved"].iloc[0] / max(g["runs"].iloc[0], 1)
        better = [(r.against, r.p_value) for r in g.itertuples()
                  if r.p_value < alpha and rate > r.against_solved / max(r.against_runs, 1)]
        worse = [(r.against, r.p_value) for r in g.itertuples()
                 if r.p_value < alpha and rate < r.against_solved / max(r.against_runs, 1)]
        if len(better) == len(AGAINST) and len(g) == len(AGAINST):
            wins.append(f"{task} T={length}")
        losses += [f"{task} T={length} ({other} better, p = {p:.3g})" for other, p in worse]
    if wins and not losses:
        return f"Supported: sgr/top solves significantly more often than both controls at {', '.join(wins)}."
    if losses:
        return ("Not supported: " + "; ".join(losses)
                + (f"; sgr/top better than both at {', '.join(wins)}" if wins else "") + ".")
    cells = ", ".join(f"{t} T={n}" for (t, n), _ in c.groupby(["task", "length"], sort=True))
    runs = int(c["runs"].min())
    return (f"Not decidable at this budget: at {cells} no difference between sgr/top and its controls "
            f"reaches p < {alpha} (as few as {runs} runs per method).")


def _percent(x: float) -> str:
    return "–" if x != x else f"{100 * x:.0f}%"


def _count(x: float) -> str:
    return "–" if x != x else f"{x:,.0f}"


def report(runs: pd.DataFrame) -> str:
    """The README's results section as Markdown, from a results table: core-hours, the
    success rates with Wilson intervals and medians, the exact tests, and the verdict."""
    s = summarise(runs)
    lines = [f"{len(runs)} runs, {runs['seconds'].sum() / 3600:.1f} core-hours of run time (the `seconds` "
             f"column added up).", "",
             "| task | T | method | runs | solved | success (95% Wilson) | median examples to solve "
             "| median iterations |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in s.itertuples():
        lines.append(f"| {r.task} | {r.length} | {r.label} | {r.runs} | {r.solved} | {_percent(r.success_rate)} "
                     f"[{_percent(r.ci_low)}, {_percent(r.ci_high)}] | {_count(r.median_examples)} "
                     f"| {_count(r.median_iterations)} |")
    c = comparisons(runs)
    lines += ["", f"| task | T | {COMPARED} solved | against | its solved | Fisher's exact p (two-sided) |",
              "| --- | --- | --- | --- | --- | --- |"]
    for r in c.itertuples():
        lines.append(f"| {r.task} | {r.length} | {r.solved}/{r.runs} | {r.against} | "
                     f"{r.against_solved}/{r.against_runs} | {r.p_value:.3g} |")
    lines += ["", f"**Verdict (computed):** {verdict(runs)}"]
    return "\n".join(lines)
