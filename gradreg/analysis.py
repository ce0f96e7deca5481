"""Tables of finished runs: one row per run, curves and final states over training, success
rates with Wilson intervals, exact tests between methods, and the long-range verdict of the
paper profile (docs/method.md section 8).

    from gradreg.analysis import summarise, comparisons
    runs = gradreg.results.load_results("data/results/paper.csv")
    summarise(runs)      # per (task, length, method): success rate [95% Wilson], medians
    comparisons(runs)    # per (task, length): sgr/top against sgr/random and pascanu, Fisher's p

A run table is either a sweep's results file (`gradreg.results.load_results`) or
`results_table(results)` of `TrainResult`s; both have one row per run with task, length,
method, rule, seed, solved, iterations, examples, seconds, final_error, diverged.

The statistics are scipy's: `scipy.stats.binomtest(...).proportion_ci(method="wilson")` and
`scipy.stats.fisher_exact` (two-sided).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["METHOD_ORDER", "method_label", "label_of", "results_table", "finished_runs", "wilson_interval",
           "exact_test", "narrowest_significant_split", "summarise", "comparisons", "verdict", "report",
           "curves_on_grid", "step_logs", "histories", "final_states", "long_term_gain", "TESTED", "CONTROLS",
           "arm_label", "plan_pairs", "time_to_solve", "kaplan_meier", "curve_areas", "compare_arms", "arm_verdict",
           "plan_comparisons", "summary_comparisons", "verdict_sentence", "screen_table", "screen_choice",
           "EQUIVALENCE_MARGIN", "SCREEN_CHECKS"]

#: the order methods appear in, in tables, legends and on axes
METHOD_ORDER = ("sgd", "clip", "pascanu", "sgr/top", "sgr/random", "sgr/band", "sgr/weighted",
                "sgr/greedy", "lstm")

#: The method whose claim is tested, and the methods it is held against: its same-cost
#: control (a random pool of the same size) and the strongest baseline (Pascanu's SGD-CR).
TESTED = "sgr/top"
CONTROLS = ("sgr/random", "pascanu")


def method_label(method: str, rule=None) -> str:
    """"sgr/top" for SGR with its rule (top when none is given, TrainConfig's default), the
    method's own name otherwise. A missing rule may be None, "" or NaN (a CSV's empty cell)."""
    if method != "sgr":
        return method
    if rule is None or rule != rule or rule == "":
        rule = "top"
    return f"sgr/{rule}"


def label_of(run) -> str:
    """The method label of a TrainConfig, a TrainResult or a row (a dict with method and rule)."""
    run = getattr(run, "config", run)
    if isinstance(run, dict):
        return arm_label(run["method"], run.get("rule"), run.get("arm"))
    return arm_label(run.method, run.rule, run.arm)


def ordered(labels) -> list[str]:
    """The given method labels in METHOD_ORDER (unknown ones last, alphabetically)."""
    labels = list(dict.fromkeys(labels))
    known = [m for m in METHOD_ORDER if m in labels]
    return known + sorted(m for m in labels if m not in METHOD_ORDER)


def results_table(results) -> pd.DataFrame:
    """One row per run (TrainResult.to_row) plus its label."""
    df = pd.DataFrame([r.to_row() for r in results])
    df["label"] = [label_of(r) for r in results]
    return df


def finished_runs(df: pd.DataFrame) -> pd.DataFrame:
    """A sweep's results table without the rows of runs that raised (the `error` column), with
    a `label` column."""
    if "error" in df:
        df = df[df["error"].fillna("").astype(str).str.strip() == ""]
    return _labelled(df).reset_index(drop=True)


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


def narrowest_significant_split(runs_a: int, runs_b: int, alpha: float = 0.05) -> tuple[int, int] | None:
    """The (solved_a, solved_b), in either direction, with the smallest difference in success
    rates whose two-sided Fisher p-value is below alpha, with runs_a and runs_b runs (ties: the
    one with fewer solved runs, then the one with a ahead); None when no split of so few runs can
    reach alpha."""
    splits = [(a, b) for a in range(runs_a + 1) for b in range(runs_b + 1)
              if exact_test(a, runs_a, b, runs_b) < alpha]
    return min(splits, key=lambda s: (abs(s[0] / runs_a - s[1] / runs_b), s[0] + s[1], -s[0]), default=None)


def arm_label(method: str, rule, arm=None) -> str:
    """The label of an arm: the method label, with the settings it changes ("sgr/top
    [clip=None]"); the plain method label for the paper's settings."""
    label = method_label(method, rule)
    return f"{label} [{arm}]" if isinstance(arm, str) and arm else label


def _labelled(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    arms = df["arm"] if "arm" in df else [""] * len(df)
    df["label"] = [arm_label(m, r, a) for m, r, a in zip(df["method"], df["rule"], arms)]
    return df


def summarise(df: pd.DataFrame, by=("task", "length", "label"), confidence: float = 0.95) -> pd.DataFrame:
    """Per group of `by` (columns of the run table; "label" is the method label): runs,
    solved, success_rate with its Wilson interval (ci_low, ci_high), and over the solved runs
    the median examples, iterations and seconds to solve (NaN when none solved); diverged and
    errors count those runs. Error rows (a run that raised) are counted in `errors` and left
    out of the runs and the rate. Rows are sorted by `by`, methods in METHOD_ORDER."""
    by = list(by)
    cols = by + ["runs", "solved", "success_rate", "ci_low", "ci_high", "median_examples", "median_iterations",
                 "median_seconds", "diverged", "errors"]
    rows = []
    for key, g in _labelled(df).groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        failed = (g["error"].fillna("").astype(str) != "") if "error" in g else pd.Series(False, index=g.index)
        ok = g[~failed]
        n, k = len(ok), int(ok["solved"].astype(bool).sum())
        lo, hi = wilson_interval(k, n, confidence)
        s = ok[ok["solved"].astype(bool)]
        rows.append({**{c: (int(v) if c == "length" else v) for c, v in zip(by, key)},
                     "runs": n, "solved": k, "success_rate": k / n if n else float("nan"),
                     "ci_low": lo, "ci_high": hi,
                     "median_examples": s["examples"].median() if k else float("nan"),
                     "median_iterations": s["iterations"].median() if k else float("nan"),
                     "median_seconds": s["seconds"].median() if k else float("nan"),
                     "diverged": int(ok["diverged"].astype(bool).sum()), "errors": int(failed.sum())})
    out = pd.DataFrame(rows, columns=cols)
    if len(out):
        order = {label: i for i, label in enumerate(ordered(out["label"]))} if "label" in by else {}
        out = out.sort_values(by, key=lambda c: c.map(order) if c.name == "label" else c, kind="stable")
    return out.reset_index(drop=True)


def comparisons(df: pd.DataFrame, compared: str = TESTED, against=CONTROLS) -> pd.DataFrame:
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
    with a handful of runs), saying how far apart the solved counts would have to be at the
    fewest runs compared, and which comparison has the smallest p-value."""
    c = comparisons(df)
    c = c[c["length"] >= min_length]
    if c.empty:
        return (f"Not decidable at this budget: no sgr/top run at T >= {min_length} has been made "
                f"against {' and '.join(CONTROLS)}.")
    wins, losses = [], []
    for (task, length), g in c.groupby(["task", "length"], sort=True):
        rate = g["solved"].iloc[0] / max(g["runs"].iloc[0], 1)
        better = [(r.against, r.p_value) for r in g.itertuples()
                  if r.p_value < alpha and rate > r.against_solved / max(r.against_runs, 1)]
        worse = [(r.against, r.p_value) for r in g.itertuples()
                 if r.p_value < alpha and rate < r.against_solved / max(r.against_runs, 1)]
        if len(better) == len(CONTROLS) and len(g) == len(CONTROLS):
            wins.append(f"{task} T={length}")
        losses += [f"{task} T={length} ({other} better, p = {p:.3g})" for other, p in worse]
    if wins and not losses:
        return f"Supported: sgr/top solves significantly more often than both controls at {', '.join(wins)}."
    if losses:
        return ("Not supported: " + "; ".join(losses)
                + (f"; sgr/top better than both at {', '.join(wins)}" if wins else "") + ".")
    cells = ", ".join(f"{t} T={n}" for (t, n), _ in c.groupby(["task", "length"], sort=True))
    fewest = c.sort_values(["runs", "against_runs"], kind="stable").iloc[0]
    n, m = int(fewest["runs"]), int(fewest["against_runs"])
    split = narrowest_significant_split(n, m, alpha)
    need = (f"with {n} runs against {m}, Fisher's test needs a split at least as wide as {split[0]}/{n} "
            f"against {split[1]}/{m}" if split else f"with {n} runs against {m}, no split of solved runs reaches it")
    closest = c.sort_values("p_value", kind="stable").iloc[0]
    sides = [(TESTED, int(closest["solved"]), int(closest["runs"])),
             (closest["against"], int(closest["against_solved"]), int(closest["against_runs"]))]
    ahead, behind = sorted(sides, key=lambda side: side[1] / side[2], reverse=True)   # stable: ties keep sgr/top first
    return (f"Not decidable at this budget: in none of {cells} is sgr/top significantly better (p < {alpha}) "
            f"than both its controls, nor any control than it (as few as {n} runs per method; {need}). "
            f"Smallest p: {closest['task']} T={closest['length']}, {ahead[0]} {ahead[1]}/{ahead[2]} against "
            f"{behind[0]} {behind[1]}/{behind[2]} (p = {closest['p_value']:.3g}).")


def _percent(x: float) -> str:
    return "–" if x != x else f"{100 * x:.0f}%"


def _count(x: float) -> str:
    return "–" if x != x else f"{x:,.0f}"


def report(runs: pd.DataFrame) -> str:
    """The results tables of docs/results.md as Markdown, from a results table: core-hours, the
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
    lines += ["", f"| task | T | {TESTED} solved | against | its solved | Fisher's exact p (two-sided) |",
              "| --- | --- | --- | --- | --- | --- |"]
    for r in c.itertuples():
        lines.append(f"| {r.task} | {r.length} | {r.solved}/{r.runs} | {r.against} | "
                     f"{r.against_solved}/{r.against_runs} | {r.p_value:.3g} |")
    lines += ["", f"**Verdict (computed):** {verdict(runs)}"]
    return "\n".join(lines)


def curves_on_grid(results, points: int = 60, x: str = "examples") -> pd.DataFrame:
    """Every run's test error on one common grid of `x` (examples processed by default).

    Between checks the error is interpolated linearly from the run's start (where it is
    taken to be the first check's value); after a run stops solved its error stays at its
    final value (training would have stopped); after an unsolved run stops it is missing
    (and `plotting.plot_learning_curves` ends the method's median there).
    """
    top = max(r.history[x].max() for r in results if len(r.history))
    grid = np.linspace(0, top, points)
    rows = []
    for r in results:
        h = r.history
        if not len(h):
            continue
        xs = np.concatenate([[0.0], h[x].to_numpy(dtype=float)])
        err = h["test_error"].to_numpy(dtype=float)
        ys = np.concatenate([[err[0]], err])
        values = np.interp(grid, xs, ys)
        beyond = grid > xs[-1]
        values[beyond] = ys[-1] if r.solved else np.nan
        for gx, v in zip(grid, values):
            rows.append(dict(label=label_of(r.config), seed=r.config.seed, **{x: gx}, test_error=v))
    return pd.DataFrame(rows).dropna(subset=["test_error"])


def _labelled_logs(results, table: str, labels=None) -> pd.DataFrame:
    """One table of every run's `table` log ("steps" or "history"), with label and seed."""
    frames = []
    for r in results:
        label = label_of(r.config)
        log = getattr(r, table)
        if (labels is not None and label not in labels) or not len(log):
            continue
        log = log.copy()
        log["label"], log["seed"] = label, r.config.seed
        frames.append(log)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def step_logs(results, labels=None) -> pd.DataFrame:
    """The per-iteration logs (TrainResult.steps) of the runs, with label and seed."""
    return _labelled_logs(results, "steps", labels)


def histories(results, labels=None) -> pd.DataFrame:
    """The per-check logs (TrainResult.history: test error, spectral radius, ...) of the runs,
    with label and seed."""
    return _labelled_logs(results, "history", labels)


def final_states(results) -> pd.DataFrame:
    """Per run: solved, iterations, final test error, the spectral radius of W_rec at the
    last check and the largest and last per-check mean minibatch long-term norm."""
    rows = []
    for r in results:
        h = r.history
        rows.append(dict(label=label_of(r.config), seed=r.config.seed, solved=r.solved, iterations=r.iterations,
                         final_error=r.final_error,
                         spectral_radius=h["spectral_radius"].iloc[-1] if len(h) else float("nan"),
                         max_long_term_norm=h["minibatch_long_term_norm"].max() if len(h) else float("nan"),
                         last_long_term_norm=h["minibatch_long_term_norm"].iloc[-1] if len(h) else float("nan")))
    return pd.DataFrame(rows)


def long_term_gain(steps: pd.DataFrame, label: str = "sgr/top", reference: str = "sgr/random") -> dict:
    """Median over seeds and shared iterations of the ratio of the minibatch long-term norms
    of two methods, iteration by iteration (same seed, same iteration): over all of them and
    over the first and second half of the iterations."""
    a = steps[steps["label"] == label].set_index(["seed", "iteration"])["minibatch_long_term_norm"]
    b = steps[steps["label"] == reference].set_index(["seed", "iteration"])["minibatch_long_term_norm"]
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    joined = joined[joined["b"] > 0]
    iterations = int(joined.index.get_level_values("iteration").max()) if len(joined) else 0
    ratio = joined["a"] / joined["b"]
    it = joined.index.get_level_values("iteration")
    half = iterations // 2

    def median(values):
        return float(values.median()) if len(values) else float("nan")
    return {"median_ratio": median(ratio), "first_half": median(ratio[it <= half]),
            "second_half": median(ratio[it > half]), "iterations": iterations, "pairs": len(joined)}


# --------------------------------------------------------------- the analysis plan (method.md section 11)
#
# Every number of the plan: time to solve (Kaplan-Meier, the stratified log-rank test, a
# stratified Cox hazard ratio), the area under the test-error curve (seed-paired Wilcoxon), the
# solved fraction (Fisher, Newcombe's interval of the difference), Holm's correction, the verdict
# per comparison, and the screen's table and rule. The statistics are statsmodels' and scipy's.

#: The equivalence margin of the verdict: a hazard ratio whose 95% interval lies inside it
EQUIVALENCE_MARGIN = (0.5, 2.0)
#: The iterations at which the screen is read (section 11.6)
SCREEN_CHECKS = (500, 2_000, 5_000)


def plan_pairs(variant: str | None = None, variant_control: str | None = None) -> list[tuple[str, str]]:
    """The comparisons of section 11.1: C1 sgr/top against sgr/random, C2 against pascanu, and,
    for the carried-forward variant's label, C3 against its own same-cost control (amendment 2;
    default sgr/random) and C4 against pascanu."""
    pairs = [(TESTED, control) for control in CONTROLS]
    if variant:
        pairs += [(variant, variant_control or CONTROLS[0]), (variant, CONTROLS[1])]
    return pairs


def time_to_solve(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per finished run: task, length, label, seed, `time` (its iterations: to solve,
    or where it stopped unsolved, at the budget or where it diverged) and `solved` (the event;
    an unsolved run is censored at its time)."""
    df = finished_runs(runs)
    return pd.DataFrame({"task": df["task"], "length": df["length"].astype(int), "label": df["label"],
                         "seed": df["seed"].astype(int), "time": df["iterations"].astype(float),
                         "solved": df["solved"].astype(bool)})


def kaplan_meier(runs: pd.DataFrame) -> pd.DataFrame:
    """The fraction of runs still unsolved against iterations, per (task, length, label):
    rows time, unsolved, low, high (statsmodels' SurvfuncRight; the band is its Hall-Wellner
    simultaneous 95% band on the log-log scale, section 11 amendment 1), starting at (0, 1) and
    ending at the last run's time; `runs` and `solved` give each curve's counts."""
    from statsmodels.duration.survfunc import SurvfuncRight
    rows = []
    for (task, length, label), g in time_to_solve(runs).groupby(["task", "length", "label"], sort=True):
        start = dict(task=task, length=int(length), label=label, runs=len(g), solved=int(g["solved"].sum()))
        rows.append(dict(start, time=0.0, unsolved=1.0, low=1.0, high=1.0))
        if g["solved"].any():
            sf = SurvfuncRight(g["time"].to_numpy(), g["solved"].to_numpy(dtype=int))
            with np.errstate(divide="ignore", invalid="ignore"):
                low, high = sf.simultaneous_cb(alpha=0.05, method="hw", transform="log")
            for t, s, lo, hi in zip(sf.surv_times, sf.surv_prob, low, high):
                rows.append(dict(start, time=float(t), unsolved=float(s), low=float(lo), high=float(hi)))
        last = rows[-1]
        rows.append(dict(last, time=float(g["time"].max())))
    # typed even when empty: concatenated with curves, an object column would reach matplotlib
    columns = {"task": str, "length": int, "label": str, "runs": int, "solved": int, "time": float,
               "unsolved": float, "low": float, "high": float}
    return pd.DataFrame(rows, columns=list(columns)).astype(columns)


def curve_areas(runs: pd.DataFrame, history: pd.DataFrame, budget: int, check_every: int = 100) -> pd.DataFrame:
    """The area under each finished run's test-error curve (section 11.4): its mean test error
    over the checks at check_every, 2 check_every, ..., budget; a run that stopped early keeps
    its last (finite) test error to the budget. One row per run: task, length, label, seed, area."""
    from .results import KEY, with_arm
    df, history = with_arm(finished_runs(runs)), with_arm(history)
    grid = np.arange(check_every, budget + 1, check_every)
    by_run = dict(iter(history.groupby(list(KEY), sort=False)))
    rows = []
    for run in df.to_dict("records"):
        h = by_run.get(tuple(run[k] for k in KEY))
        if h is None or not len(h):
            continue
        errors = h.set_index("iteration")["test_error"].dropna().sort_index()
        errors = errors[errors.index <= budget]
        curve = errors.reindex(grid).ffill().bfill()
        rows.append(dict(task=run["task"], length=int(run["length"]), label=run["label"], seed=int(run["seed"]),
                         area=float(curve.mean())))
    return pd.DataFrame(rows, columns=["task", "length", "label", "seed", "area"])


def compare_arms(runs: pd.DataFrame, history: pd.DataFrame | None, first: str, second: str, task: str,
                 min_length: int = CLAIM_MIN_LENGTH, budget: int = 50_000) -> dict:
    """Every number of one comparison of the plan (sections 11.3-11.4): `first` against
    `second` on `task` at the lengths >= min_length where both have runs.

    Returns runs, solved (each arm); the stratified log-rank chi-square and p
    (`statsmodels.duration.survfunc.survdiff`, strata = length; NaN when no run solved); the
    hazard ratio of solving first/second with its 95% interval (stratified Cox,
    `statsmodels PHReg`, Breslow ties; 0 or inf with no interval when only one arm solved, NaN
    when none did); Fisher's p and Newcombe's 95% interval of the difference of the solved
    fractions; and, with `history`, the seed-paired Wilcoxon signed-rank p and the median paired
    difference (first - second) of the areas under the test-error curves."""
    from statsmodels.duration.hazard_regression import PHReg
    from statsmodels.duration.survfunc import survdiff
    from statsmodels.stats.proportion import confint_proportions_2indep
    t = time_to_solve(runs)
    t = t[(t["task"] == task) & (t["length"] >= min_length) & t["label"].isin([first, second])]
    lengths = sorted(set(t.loc[t["label"] == first, "length"]) & set(t.loc[t["label"] == second, "length"]))
    t = t[t["length"].isin(lengths)]
    a, b = t[t["label"] == first], t[t["label"] == second]
    out = dict(task=task, first=first, second=second, lengths=lengths, runs_first=len(a), runs_second=len(b),
               solved_first=int(a["solved"].sum()), solved_second=int(b["solved"].sum()), chi2=float("nan"),
               p_logrank=float("nan"), hazard_ratio=float("nan"), hr_low=float("nan"), hr_high=float("nan"),
               p_fisher=float("nan"), diff_low=float("nan"), diff_high=float("nan"), pairs=0,
               median_area_difference=float("nan"), p_area=float("nan"))
    if not len(a) or not len(b):
        return out
    group = (t["label"] == first).to_numpy(dtype=int)
    events = t["solved"].to_numpy(dtype=int)
    strata = t["length"].to_numpy() if len(lengths) > 1 else None
    if events.any():
        out["chi2"], out["p_logrank"] = map(float, survdiff(t["time"].to_numpy(), events, group, strata=strata))
        if out["solved_first"] and out["solved_second"]:
            fit = PHReg(t["time"].to_numpy(), group[:, None].astype(float), status=events, strata=strata,
                        ties="breslow").fit(disp=False)
            out["hazard_ratio"] = float(np.exp(fit.params[0]))
            out["hr_low"], out["hr_high"] = map(float, np.exp(fit.conf_int()[0]))
        else:
            out["hazard_ratio"] = float("inf") if out["solved_first"] else 0.0
    out["p_fisher"] = exact_test(out["solved_first"], len(a), out["solved_second"], len(b))
    out["diff_low"], out["diff_high"] = map(float, confint_proportions_2indep(
        out["solved_first"], len(a), out["solved_second"], len(b), method="newcomb", compare="diff"))
    if history is not None:     # the areas of the two arms' runs only, not of the whole file
        compared = finished_runs(runs)
        compared = compared[(compared["task"] == task) & compared["length"].isin(lengths)
                            & compared["label"].isin([first, second])]
        areas = curve_areas(compared, history, budget)
        wide = areas.pivot_table(index=["length", "seed"], columns="label", values="area")
        if first in wide and second in wide:
            diff = (wide[first] - wide[second]).dropna()
            out["pairs"] = len(diff)
            if len(diff):
                out["median_area_difference"] = float(diff.median())
            if (diff != 0).any():
                out["p_area"] = float(stats.wilcoxon(diff.to_numpy()).pvalue)
    return out


def arm_verdict(p_adjusted: float, hazard_ratio: float, hr_low: float, hr_high: float,
                alpha: float = 0.05, margin=EQUIVALENCE_MARGIN) -> str:
    """Section 11.5: "better" / "worse" (the Holm-adjusted log-rank p below alpha, in the
    direction of the hazard ratio of solving), "equivalent" (not significant and the ratio's
    95% interval inside the margin), else "undecided"."""
    if p_adjusted == p_adjusted and p_adjusted < alpha and hazard_ratio == hazard_ratio and hazard_ratio != 1:
        return "better" if hazard_ratio > 1 else "worse"
    if hr_low == hr_low and margin[0] <= hr_low and hr_high <= margin[1]:
        return "equivalent"
    return "undecided"


def plan_comparisons(runs: pd.DataFrame, history: pd.DataFrame | None, pairs, tasks=None,
                     min_length: int = CLAIM_MIN_LENGTH, budget: int = 50_000, alpha: float = 0.05) -> pd.DataFrame:
    """The plan's table for one family per task: each (first, second) of `pairs` on each task
    (default: every task of `runs`) via `compare_arms`, the log-rank p-values of a task's
    comparisons Holm-adjusted together (statsmodels' multipletests; comparisons without a
    p-value are left out of the family), and the verdict of each (`arm_verdict`)."""
    from statsmodels.stats.multitest import multipletests
    tasks = sorted(finished_runs(runs)["task"].unique()) if tasks is None else list(tasks)
    rows = []
    for task in tasks:
        family = [compare_arms(runs, history, first, second, task, min_length, budget) for first, second in pairs]
        family = [c for c in family if c["runs_first"] and c["runs_second"]]
        tested = [c for c in family if c["p_logrank"] == c["p_logrank"]]
        adjusted = multipletests([c["p_logrank"] for c in tested], method="holm")[1] if tested else []
        for c, p in zip(tested, adjusted):
            c["p_holm"] = float(p)
        for c in family:
            c.setdefault("p_holm", float("nan"))
            c["verdict"] = arm_verdict(c["p_holm"], c["hazard_ratio"], c["hr_low"], c["hr_high"], alpha)
            rows.append(c)
    columns = list(compare_arms(runs.iloc[0:0], None, TESTED, CONTROLS[0], "", min_length, budget)) + \
        ["p_holm", "verdict"]
    return pd.DataFrame(rows, columns=columns)


def summary_comparisons(paper: pd.DataFrame, confirm: pd.DataFrame, pairs, paper_history: pd.DataFrame | None = None,
                        confirm_history: pd.DataFrame | None = None, **kwargs) -> pd.DataFrame:
    """Section 11.2's *summary*: `plan_comparisons` on every row of the paper and confirm
    profiles together (seeds 0-16 at temporal order T = 100, seeds 0-4 elsewhere; one family per
    task, stratified by length), the histories pooled too when both are given. It illustrates the
    confirmatory verdict and never overturns it. The two files share no run: their seeds differ."""
    from .results import KEY, with_arm
    runs = pd.concat([with_arm(paper), with_arm(confirm)], ignore_index=True)
    twice = runs[runs.duplicated(list(KEY), keep=False)]
    if len(twice):
        first = twice.iloc[0]
        raise ValueError(f"the run {tuple(first[k] for k in KEY)} is in both files; the summary pools "
                         "distinct runs (the paper profile's seeds 0-4 and confirm's 5-16)")
    history = None
    if paper_history is not None and confirm_history is not None:
        history = pd.concat([with_arm(paper_history), with_arm(confirm_history)], ignore_index=True)
    return plan_comparisons(runs, history, pairs, **kwargs)


def _ratio(x: float) -> str:
    if x != x:
        return "–"
    return "∞" if x == float("inf") else f"{x:.2g}"


def verdict_sentence(row) -> str:
    """One sentence for one comparison of `plan_comparisons`, with its effect size, interval
    and p-values."""
    r = row if isinstance(row, dict) else row._asdict() if hasattr(row, "_asdict") else dict(row)
    lengths = ", ".join(map(str, r["lengths"]))
    hr = _ratio(r["hazard_ratio"])
    interval = f" [95% CI {_ratio(r['hr_low'])}, {_ratio(r['hr_high'])}]" if r["hr_low"] == r["hr_low"] else ""
    p = "no run solved, no test" if r["p_logrank"] != r["p_logrank"] else \
        f"log-rank p = {r['p_logrank']:.2g}, Holm-adjusted {r['p_holm']:.2g}"
    return (f"{r['task'].replace('_', ' ')} (T = {lengths}): {r['first']} against {r['second']} is "
            f"**{r['verdict']}**: solved {r['solved_first']}/{r['runs_first']} against "
            f"{r['solved_second']}/{r['runs_second']}, hazard ratio of solving {hr}{interval}, {p}.")


#: Section 11.7: the harness passes at a length when at least this many control runs of each task solve.
CONTROL_SOLVED_TO_PASS = 3


def harness_passes(control: pd.DataFrame, length: int, at_least: int = CONTROL_SOLVED_TO_PASS) -> bool | None:
    """Whether the positive control (profile `control`) passes at `length` (section 11.7): at
    least `at_least` of each task's control runs there solved within the budget. None when no
    control run at `length` has finished, so that a verdict can say it is conditional."""
    runs = finished_runs(control)
    runs = runs[runs["length"] == length]
    if not len(runs):
        return None
    return bool((runs.groupby("task")["solved"].sum() >= at_least).all())


VERDICT_WORDS = {"better": "solved sooner than {second}",
                 "worse": "solved later than {second}",
                 "equivalent": "solved as fast as {second}, within a factor of two",
                 "undecided": "could not be told from {second} (no difference shown, and no equivalence "
                              "within a factor of two)"}


def verdict_in_words(comparisons: pd.DataFrame) -> str:
    """The verdicts of `plan_comparisons` rows as one plain sentence, lower case as arm labels
    are: the comparisons that share a task, a second arm and a verdict are said together ("a and
    b solved later than c")."""
    if not len(comparisons):
        return ""
    several_tasks = comparisons["task"].nunique() > 1
    clauses = []
    for (task, second, verdict), group in comparisons.groupby(["task", "second", "verdict"], sort=False):
        where = f"at {task.replace('_', ' ')}, " if several_tasks else ""
        clauses.append(where + " and ".join(group["first"]) + " " + VERDICT_WORDS[verdict].format(second=second))
    return "; ".join(clauses) + "."


def screen_table(runs: pd.DataFrame, history: pd.DataFrame, names, reference: str = "sgr/random",
                 checks=SCREEN_CHECKS, clip: float = 1.0) -> pd.DataFrame:
    """The screen's measurements (section 11.6), one row per (setting, seed, check): rho(W_rec),
    the minibatch long-term norm relative to `reference` of the same seed at the same check, the
    fraction of checks up to there whose mean pre-clip gradient norm exceeds `clip`, and the test
    error. `names(row)` gives a run's setting name (`gradreg.profiles.setting_name`). A run that
    stopped before a check (solved) keeps its last check's values."""
    from .results import KEY, with_arm
    df, history = with_arm(finished_runs(runs)), with_arm(history)
    setting = {tuple(r[k] for k in KEY): names(r) for r in df.to_dict("records")}
    h = history[[tuple(r) in setting for r in history[list(KEY)].itertuples(index=False)]].copy()
    h["setting"] = [setting[tuple(r)] for r in h[list(KEY)].itertuples(index=False)]
    rows = []
    for (name, seed), g in h.sort_values("iteration").groupby(["setting", "seed"], sort=False):
        for at in checks:
            upto = g[g["iteration"] <= at]
            if not len(upto):
                continue
            last = upto.iloc[-1]
            rows.append(dict(setting=name, seed=int(seed), check=at, spectral_radius=float(last["spectral_radius"]),
                             long_term_norm=float(last["minibatch_long_term_norm"]),
                             clipped_checks=float((upto["grad_norm"] > clip).mean()),
                             test_error=float(last["test_error"])))
    out = pd.DataFrame(rows)
    if not len(out):
        return out
    ref = out[out["setting"] == reference].set_index(["seed", "check"])["long_term_norm"]
    out["relative_long_term_norm"] = [row.long_term_norm / ref.get((row.seed, row.check), float("nan"))
                                      for row in out.itertuples()]
    return out


def screen_choice(table: pd.DataFrame, references, at: int = SCREEN_CHECKS[-1], rho_below: float = 1.2,
                  norm_at_least: float = 1e-3) -> tuple[str, pd.DataFrame, str]:
    """Section 11.6's rule on `screen_table`: among the settings that are not `references`, those
    whose median over seeds at iteration `at` of rho(W_rec) is below rho_below and of the
    relative long-term norm at least norm_at_least; the one with the lowest median test error
    (ties: the lower median test error over all checks). Returns (its name, the per-setting
    medians with `kept`, a sentence saying how it was chosen)."""
    t = table[(table["check"] == at) & ~table["setting"].isin(references)]
    medians = t.groupby("setting").agg(spectral_radius=("spectral_radius", "median"),
                                       relative_long_term_norm=("relative_long_term_norm", "median"),
                                       clipped_checks=("clipped_checks", "median"),
                                       test_error=("test_error", "median"), seeds=("seed", "nunique"))
    medians["tie_break"] = table[~table["setting"].isin(references)].groupby("setting")["test_error"].median()
    medians["kept"] = (medians["spectral_radius"] < rho_below) & (medians["relative_long_term_norm"] >= norm_at_least)
    pool = medians[medians["kept"]] if medians["kept"].any() else medians
    best = pool.sort_values(["test_error", "tie_break"], kind="stable").index[0]
    how = (f"{int(medians['kept'].sum())} of {len(medians)} variants keep rho(W_rec) below {rho_below} and a long-term "
           f"norm of at least {norm_at_least:g} of sgr/random's (medians at {at:,} iterations); of those, "
           f"{best} has the lowest median test error ({medians.loc[best, 'test_error']:.3f})"
           if medians["kept"].any() else
           f"no variant keeps rho(W_rec) below {rho_below} and a long-term norm of at least {norm_at_least:g} of "
           f"sgr/random's, so by the rule's fallback {best} is carried forward: the lowest median test error "
           f"({medians.loc[best, 'test_error']:.3f})")
    return best, medians.drop(columns="tie_break"), how
