"""The generated parts of the documentation, written from the committed results files.

    python -m gradreg readme            # rewrite them in place
    python -m gradreg readme --check    # exit 1 when any of them is not what the files give

Two parts, each between its own markers:

* README.md, between HEADLINE_BEGIN and HEADLINE_END: `headline`'s few sentences (how much of
  the paper sweep ran, and the verdict);
* docs/results.md, between RESULTS_BEGIN and RESULTS_END: `results_section`'s output, the
  progress of the paper and authors sweeps, their tables (`analysis.report`,
  `experiments.protocols.protocol_summary`), the verdict, what the runs' check histories say,
  and the analysis plan's runs and comparisons (`plan_section`).

No number in them is typed by hand, and tests/test_readme.py checks that the committed files
are what the committed results give.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from . import analysis
from .config import PROTOCOLS
from .experiments.long_range import budget_table
from .experiments.protocols import protocol_summary
from .profiles import (
    AUTHORS_MAX_ITERATIONS,
    LONG_MAX_ITERATIONS,
    PAPER_MAX_ITERATIONS,
    complete_arms,
    is_complete,
    profile_configs,
)
from .results import KEY, history_path, load_history, load_profiles, load_results, with_arm
from .sweep import written_by_length

RESULTS_BEGIN = "<!-- results: written by `python -m gradreg readme` from data/results/; do not edit by hand -->"
RESULTS_END = "<!-- end of results -->"
HEADLINE_BEGIN = "<!-- headline: written by `python -m gradreg readme` from data/results/; do not edit by hand -->"
HEADLINE_END = "<!-- end of headline -->"
#: Where the full results section lives, relative to the README's folder.
RESULTS_DOC = Path("docs") / "results.md"
#: A minibatch long-term gradient norm below this at a run's last check counts as vanished.
VANISHED = 1e-3


def _written(runs: pd.DataFrame) -> set[tuple]:
    return set(map(tuple, runs[list(KEY)].itertuples(index=False))) if len(runs) else set()


def _progress(runs: pd.DataFrame, profile: str) -> str:
    """"N of M runs ran so far (T = 100: a of b, ...)" for a profile, lengths in submission order
    ("All M of its runs ran (...)" once it is complete)."""
    planned = profile_configs(profile)
    lengths = written_by_length(planned, _written(runs))
    if is_complete(runs, profile):
        return f"All {len(planned)} of its runs ran ({lengths})"
    return f"{len(runs)} of its {len(planned)} runs ran so far ({lengths})"


def _resume_note(runs: pd.DataFrame) -> str:
    """How an unfinished paper sweep is resumed; nothing once it is complete."""
    if is_complete(runs, "paper"):
        return ""
    return """ A later session
resumes it with the same command, on any machine: finished runs are skipped, runs in flight go
on from their last checkpoint, committed in `data/results/paper-checkpoints/` (`python -m gradreg
status --profile paper --results data/results/paper.csv` lists them)."""


def _span(values, fmt: str = ".2g") -> str:
    values = pd.Series(values).dropna()
    if values.empty:
        return "–"
    low, high = values.min(), values.max()
    return f"{low:{fmt}}" if f"{low:{fmt}}" == f"{high:{fmt}}" else f"{low:{fmt}}–{high:{fmt}}"


def last_checks(runs: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Each finished run's row with the state at its last check (test error, spectral radius,
    minibatch long-term norm, as `last_*` columns)."""
    runs, history = with_arm(analysis.finished_runs(runs)), with_arm(history)
    last = history.sort_values("iteration").groupby(list(KEY), sort=False).tail(1)
    last = last[list(KEY) + ["test_error", "spectral_radius", "minibatch_long_term_norm"]]
    last = last.rename(columns={c: f"last_{c}" for c in last.columns if c not in KEY})
    return runs.merge(last, on=list(KEY), how="left")


def identical_to_sgd(history: pd.DataFrame, task: str, length: int) -> list[int]:
    """Seeds whose clip run has the check history of the sgd run of the same seed, check for check
    (test errors, losses and norms): clipping never acted there."""
    columns = ["iteration", "test_error", "train_loss", "grad_norm", "minibatch_long_term_norm"]
    cell = history[(history["task"] == task) & (history["length"] == length)]
    seeds = []
    for seed in sorted(set(cell["seed"])):
        sgd, clip = (cell[(cell["method"] == m) & (cell["seed"] == seed)][columns].reset_index(drop=True)
                     for m in ("sgd", "clip"))
        if len(sgd) and sgd.equals(clip):
            seeds.append(int(seed))
    return seeds


def history_findings(runs: pd.DataFrame, history: pd.DataFrame, min_length: int) -> list[str]:
    """One paragraph per (task, T >= min_length) cell: where its SGR runs stood at their last
    check, failed against solved, and the clip runs that were SGD's runs."""
    table = last_checks(runs, history)
    paragraphs = []
    for (task, length), cell in table[table["length"] >= min_length].groupby(["task", "length"], sort=True):
        sgr = cell[cell["method"] == "sgr"]
        parts = [] if len(sgr) else ["no SGR run has finished yet"]
        for solved, name in ((False, "failed"), (True, "solved")) if len(sgr) else ():
            group = sgr[sgr["solved"] == solved]
            if group.empty:
                parts.append(f"no {name} SGR run")
                continue
            norms = group["last_minibatch_long_term_norm"]
            text = (f"{len(group)} {name} SGR run{'s' * (len(group) != 1)}: test error "
                    f"{_span(group['last_test_error'], '.2f')}, ρ(W_rec) {_span(group['last_spectral_radius'])}, "
                    f"minibatch long-term norm {_span(norms)}")
            if not solved:
                text += f" (below {VANISHED:g} in {int((norms < VANISHED).sum())} of them)"
            parts.append(text)
        line = f"**{task.replace('_', ' ')}, T = {length}**, at each run's last check: " + "; ".join(parts) + "."
        same = identical_to_sgd(history, task, length)
        if same:
            line += (f" The clip run of seed{'s' * (len(same) != 1)} {', '.join(map(str, same))} was the sgd run "
                     "of the same seed, check for check: no gradient norm reached the clipping threshold.")
        paragraphs.append(line)
    return paragraphs


def paper_section(runs: pd.DataFrame, history: pd.DataFrame) -> str:
    hours = runs["seconds"].sum() / 3600
    findings = "\n\n".join(history_findings(runs, history, analysis.CLAIM_MIN_LENGTH)) or \
        f"No run at T ≥ {analysis.CLAIM_MIN_LENGTH} has finished yet."
    return f"""## The reproduction: `data/results/paper.csv`

The paper profile (`python -m gradreg sweep --profile paper --results
data/results/paper.csv`) is temporal order and adding at T = 50, 100, 150, 200;
methods sgd, clip (SGD-C), pascanu (SGD-CR), sgr/top, sgr/random (the same-cost
control), sgr/weighted and lstm; seeds 0–4; every other setting at
`TrainConfig`'s defaults (Pascanu's: hidden 50, batch 20, lr 0.01, clip 1; SGR
pool 4 × 20); **a budget of {PAPER_MAX_ITERATIONS:,} iterations per run** (a run not solved by
then counts as failed). `sgr/weighted` stands for "the best other SGR rule"
by our a-priori choice (the rule that can be made unbiased), not by a
comparison we ran. The sweep submits T = 100 first (both tasks, every method),
then T = 200, 150 and the rest of T = 50, and keeps every run's check history in
`data/results/paper-history.csv.gz`.

**{_progress(runs, "paper")}**, for **{hours:.1f} core-hours** of run time
(the `seconds` column added up; a run of a batched program counts its share).{_resume_note(runs)} The
whole profile's projected cost is in [performance.md](performance.md).

The tables and the verdict are `gradreg.analysis.report` of the committed file (also printed
by `python -m gradreg report data/results/paper.csv`):

{analysis.report(runs)}

(Success: at most 1% of 10,000 fresh test sequences wrong. Medians over solved
runs only; "examples" counts every sequence processed, the whole pool of 80 per
SGR step and 20 per step for the others. Fisher's exact test is two-sided, on the
counts of solved and failed runs.)

![success rate against length](../figures/06_success_rate.png)

**What the check histories say** (`data/results/paper-history.csv.gz`; a minibatch long-term
norm below {VANISHED:g} counts as vanished; chance on temporal order is a test error of 0.75):

{findings}

These numbers are what ran; they are not the paper's, whose full text and code we do not have.

![solved and failed SGR runs at T = 100](../figures/06_sgr_runs_T100.png)
"""


def _summary_table(authors: pd.DataFrame, paper: pd.DataFrame) -> str:
    tables = {"chernodub": analysis.finished_runs(authors) if len(authors) else None,
              "pascanu": analysis.finished_runs(paper) if len(paper) else None}
    lengths = sorted({c.length for c in profile_configs("authors")})
    summary = protocol_summary(tables, tasks=("adding", "temporal_order"), lengths=lengths)
    hours = {}
    for protocol, table in tables.items():
        if table is not None:
            for (task, length, label), cell in table.groupby(["task", "length", "label"]):
                hours[(protocol, task, int(length), label)] = cell["seconds"].median() / 3600
    lines = ["| protocol | task | T | method | networks | mean test success, % [95% t] | solved [95% Wilson] "
             "| median hours per run |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in summary.sort_values(["task", "length", "protocol"], kind="stable").itertuples():
        mean = "–" if r.mean_test_success != r.mean_test_success else (
            f"{r.mean_test_success:.1f}" + (f" [{r.ci_low:.1f}, {r.ci_high:.1f}]" if r.ci_low == r.ci_low else ""))
        lines.append(f"| {r.protocol} | {r.task} | {r.length} | {r.method} | {r.networks} | {mean} "
                     f"| {r.solved}/{r.networks} [{100 * r.wilson_low:.0f}%, {100 * r.wilson_high:.0f}%] "
                     f"| {hours[(r.protocol, r.task, r.length, r.method)]:.2f} |")
    return "\n".join(lines)


def authors_section(authors: pd.DataFrame, paper: pd.DataFrame) -> str:
    p = PROTOCOLS["chernodub"]
    done = analysis.finished_runs(authors) if len(authors) else authors
    early = done[done["iterations"] < AUTHORS_MAX_ITERATIONS] if len(done) else done
    short = int((early["test_success"] < 99).sum()) if len(early) else 0
    return f"""## The authors' protocol: `data/results/authors.csv`

The `authors` profile (`python -m gradreg sweep --profile authors --results
data/results/authors.csv`) trains under the authors' own conventions (`TrainConfig(protocol="chernodub")`,
[method.md](method.md) section 7.7: their task generators, hidden {p["hidden_size"]}, summed squared error,
momentum {p["momentum"]}, η = {p["lr"]:g}, a fixed training set of {p["train_set_size"]:,}, validation on
{p["validation_size"]:,} sequences every {p["check_every"]} iterations with the best network kept, stop when
the validation success exceeds 99%, at most {p["max_iterations"]:,} iterations): adding and temporal
order at T = 50 and 100, methods sgd (their training), sgr/top and sgr/random, seeds 0–4,
T = 100 seeds 0–2 (temporal order first) before seeds 3–4. **{_progress(authors, "authors")}**, for
{authors["seconds"].sum() / 3600:.1f} core-hours. A run counts as solved when its kept network's
test success is at least 99%.

Each cell both ways (notebook 07): as the authors report a setting, the mean test success
over networks with a 95% t interval (cut to [0, 100]), and as the fraction of runs solved;
beside it the same methods under the package's protocol (`paper.csv`, the same tasks and
lengths, Pascanu's generators):

{_summary_table(authors, paper)}

Under the authors' protocol a run stops as soon as its validation success exceeds 99%, so it
can stop with a test success just under 99%: {short} of the {len(early)} runs that stopped before
their budget did so.
"""


def _p(x: float) -> str:
    return "–" if x != x else f"{x:.2g}"


def plan_table(comparisons: pd.DataFrame) -> str:
    """`analysis.plan_comparisons`' rows as a Markdown table: the primary endpoint (hazard ratio of
    solving with its 95% interval, log-rank p raw and Holm-adjusted, the verdict) and the
    secondary ones (the seed-paired areas and Fisher's test with Newcombe's interval); a sentence
    in its place when there is no row."""
    if not len(comparisons):
        return "No comparison yet: no pair of the plan has finished runs in both of its arms."
    lines = ["| task | T | first | second | solved | hazard ratio [95% CI] | log-rank p | Holm p | verdict "
             "| median area difference (Wilcoxon p, pairs) | Fisher p | solved difference [95% Newcombe] |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in comparisons.to_dict("records"):
        interval = f" [{analysis._ratio(r['hr_low'])}, {analysis._ratio(r['hr_high'])}]" \
            if r["hr_low"] == r["hr_low"] else ""
        area = "–" if r["median_area_difference"] != r["median_area_difference"] else \
            f"{r['median_area_difference']:+.3f} ({_p(r['p_area'])}, {r['pairs']})"
        difference = "–" if r["diff_low"] != r["diff_low"] else f"[{r['diff_low']:+.2f}, {r['diff_high']:+.2f}]"
        lines.append(f"| {r['task']} | {', '.join(map(str, r['lengths']))} | {r['first']} | {r['second']} "
                     f"| {r['solved_first']}/{r['runs_first']} against {r['solved_second']}/{r['runs_second']} "
                     f"| {analysis._ratio(r['hazard_ratio'])}{interval} | {_p(r['p_logrank'])} | {_p(r['p_holm'])} "
                     f"| {r['verdict']} | {area} | {_p(r['p_fisher'])} | {difference} |")
    return "\n".join(lines)


PLAN_PROFILES = ("control", "confirm", "long")    # the plan's sweeps beside the paper grid, where committed


def plan_section(results_dir, paper: pd.DataFrame, history: pd.DataFrame, sweeps: dict | None = None) -> str:
    """docs/results.md's part on the analysis plan's runs (docs/method.md section 11): how far
    each of its profiles got, the positive control's table, and the plan's comparisons on the
    paper grid (exploratory), on `confirm` (confirmatory, once complete) with the summary, and
    on `long` (exploratory, at its own budget). `sweeps`: what `load_profiles` gives for
    PLAN_PROFILES (read from results_dir when not given)."""
    from .experiments.sensitivity import screen_results
    from .profiles import variant_labels
    found = load_profiles(results_dir, PLAN_PROFILES) if sweeps is None else sweeps
    lines = ["## The analysis plan's runs (docs/method.md section 11)", "",
             "| profile | what it is for | runs written | core-hours |", "| --- | --- | --- | --- |"]
    roles = {"paper": "the grid; exploratory (11.2)", "screen": "choose the variant V (11.6)",
             "control": "the positive control (11.7)", "confirm": "the confirmatory verdict (11.2)",
             "long": "a five-times budget; exploratory (11.8)"}
    screen_runs, screen_history, _ = screen_results(results_dir)
    profile_rows = {"paper": paper, "screen": screen_runs if len(screen_runs) else None,
                    **{name: runs for name, (runs, _) in found.items()}}
    for name, role in roles.items():
        runs = profile_rows.get(name)
        written = "none yet" if runs is None else f"{len(runs)} of {len(profile_configs(name))}"
        hours = "–" if runs is None else f"{runs['seconds'].sum() / 3600:.1f}"
        lines.append(f"| `{name}` | {role} | {written} | {hours} |")
    lines += ["", _screen_sentence((screen_runs, screen_history)).strip() or "The screen has no rows yet."]
    if "control" in found:
        s = analysis.summarise(found["control"][0])
        lines += ["", "The positive control (an LSTM with Adam and a forget-gate bias of 5; the harness passes at a "
                  f"length when at least {analysis.CONTROL_SOLVED_TO_PASS} of 5 runs of each task solve):", "",
                  "| task | T | runs | solved | success (95% Wilson) | median iterations to solve |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {r.task} | {r.length} | {r.runs} | {r.solved} | {analysis._percent(r.success_rate)} "
                  f"[{analysis._percent(r.ci_low)}, {analysis._percent(r.ci_high)}] "
                  f"| {analysis._count(r.median_iterations)} |" for r in s.itertuples()]
    pairs = analysis.plan_pairs(*variant_labels())
    lines += ["", f"**Exploratory**: the paper grid, T ≥ {analysis.CLAIM_MIN_LENGTH}, seeds 0–4 (these "
              "comparisons were looked at before the plan was written):", "",
              plan_table(analysis.plan_comparisons(paper, history, analysis.plan_pairs())), "",
              "![the grid's runs not yet solved against iterations](../figures/06_time_to_solve.png)"]
    confirm = found.get("confirm")
    if confirm is not None and is_complete(confirm[0], "confirm"):
        lines += ["", "**Confirmatory**: `confirm.csv` alone (temporal order, T = 100, seeds 5–16):", "",
                  plan_table(analysis.plan_comparisons(*confirm, pairs, tasks=["temporal_order"])), "",
                  "![the confirmatory runs not yet solved against iterations](../figures/06_confirm_time_to_solve.png)",
                  "", "**Summary**: the paper grid and `confirm` together (it illustrates the confirmatory "
                  "verdict, never overturns it):", "",
                  plan_table(analysis.summary_comparisons(paper, confirm[0], pairs, history, confirm[1]))]
    else:
        written = 0 if confirm is None else len(confirm[0])
        lines += ["", f"**Confirmatory**: {written} of the {len(profile_configs('confirm'))} rows of `confirm.csv` "
                  "are written; its tests are run when all of them are (no interim look)."]
    long = found.get("long")
    if long is not None and len(analysis.finished_runs(long[0])):
        done = complete_arms(long[0], "long")     # a partly run arm holds its early solvers only
        lines += ["", f"**Five-times budget** (`long.csv`, exploratory; areas over {LONG_MAX_ITERATIONS:,} "
                  f"iterations; {len(long[0])} run{'s' * (len(long[0]) != 1)} so far, the {len(done)} in arms "
                  "with all their runs written enter the tests):", "",
                  plan_table(analysis.plan_comparisons(done, long[1], pairs, tasks=["temporal_order"],
                                                       budget=LONG_MAX_ITERATIONS))]
    lines += ["", "Hazard ratio above 1: the first arm solves sooner (stratified Cox); the log-rank test is "
              "stratified by T; Holm's correction within each task's family; the area difference is the median "
              "over seed pairs of the first arm's mean test error minus the second's (below 0: the first arm's "
              "error was lower). `gradreg.analysis` computes every number; notebook 06 draws the curves."]
    return "\n".join(lines) + "\n"


def _budget_sentence(long: pd.DataFrame) -> str:
    """What the five-times budget bought in `long`'s arms that have all their runs ("in its
    complete arms, pascanu at T = 100 solved 4 of 5 runs within 50,000 iterations and 5 of 5 within
    250,000; "); nothing before an arm is complete."""
    table = budget_table(complete_arms(long, "long"))
    if not len(table):
        return ""
    arms = "; ".join(f"{r.label} at T = {r.length} solved "
                     f"{r.solved_at_paper_budget} of {r.runs} runs within {PAPER_MAX_ITERATIONS:,} iterations "
                     f"and {r.solved_at_long_budget} of {r.runs} within {LONG_MAX_ITERATIONS:,}"
                     for r in table.itertuples())
    return f"in its complete arms, {arms}; "


def _control_sentence(control: pd.DataFrame | None, paper: pd.DataFrame) -> str:
    """The positive control's solved counts per cell beside the grid's lstm baseline."""
    if control is None or not len(analysis.finished_runs(control)):
        return ""
    s = analysis.summarise(control)
    cells = ", ".join(f"{r.task.replace('_', ' ')} T = {r.length}: {r.solved}/{r.runs}" for r in s.itertuples())
    base = analysis.summarise(paper)
    base = base[(base["label"] == "lstm") & (base["length"] >= analysis.CLAIM_MIN_LENGTH)]
    return (f"**Positive control** (an LSTM trained with Adam, lr 1e-3, and a forget-gate bias of 5; "
            f"{len(profile_configs('control'))} runs planned): solved {cells}. The grid's `lstm` baseline (SGD, "
            f"forget-gate bias 1) solved {int(base['solved'].sum())} of {int(base['runs'].sum())} runs at "
            f"T ≥ {analysis.CLAIM_MIN_LENGTH}: it understates what an LSTM does.\n\n")


def _harness_sentence(control: pd.DataFrame | None, length: int) -> str:
    """Whether the confirmatory verdict at `length` stands on a harness that has shown it can see
    a link there (the positive control of section 11.7), or is conditional on one that has not."""
    passes = None if control is None else analysis.harness_passes(control, length)
    if passes:
        return (f"The positive control passed at T = {length} (section 11.7: at least "
                f"{analysis.CONTROL_SOLVED_TO_PASS} of each task's LSTM runs solved), so the harness can see "
                "a link at that range.")
    why = "did not pass" if passes is False else "has no finished run"
    return (f"The positive control {why} at T = {length} (section 11.7), so this verdict is conditional on a "
            "harness that has not shown it can see a link at that range.")


def _screen_sentence(screen: tuple | None) -> str:
    """What the screen (section 11.6) found and which variant its rule carries forward."""
    from .experiments.sensitivity import screen_verdict
    from .profiles import SCREEN_MAX_ITERATIONS, setting_label, setting_name
    if screen is None or not len(screen[0]):
        return ""
    runs, history = screen
    _, chosen, _, how = screen_verdict(runs, history)
    settings = runs.apply(setting_name, axis=1)
    solved = settings[runs["solved"].astype(bool)]
    names = ", ".join(f"{name} {count} of {(settings == name).sum()}"
                      for name, count in solved.value_counts(sort=False).items()) or "none"
    return (f"**Screen** of our reading's free choices (section 11.6; {len(runs)} of "
            f"{len(profile_configs('screen'))} runs, temporal order T = 100, "
            f"{SCREEN_MAX_ITERATIONS:,} iterations): solved by setting: {names}. "
            + (f"The plan's rule carries **{chosen}** ({setting_label(chosen)}) forward into the "
               f"confirmatory runs: {how}.\n\n" if chosen else f"{how}.\n\n"))


def headline(paper: pd.DataFrame, authors: pd.DataFrame, control: pd.DataFrame | None = None,
             confirm: pd.DataFrame | None = None, screen: tuple | None = None,
             long: pd.DataFrame | None = None) -> str:
    """The README's short headline (Markdown): the verdict of the analysis plan per comparison
    (docs/method.md section 11: once the confirm profile is complete, the confirmatory verdict and
    the summary over the paper grid and confirm together; the exploratory verdict on the paper
    grid until then), the positive control, and where the sweeps stand. Kept apart from
    `results_section` so that it can be rewritten on its own."""
    from .profiles import variant_labels
    lines = []
    confirm_done = confirm is not None and is_complete(confirm, "confirm")
    if confirm_done:
        pairs = analysis.plan_pairs(*variant_labels())
        lines.append(f"**Confirmatory verdict** (profile `confirm`: temporal order, T = 100, seeds 5–16, "
                     f"{len(confirm)} runs; the analysis plan of docs/method.md section 11):")
        confirmatory = analysis.plan_comparisons(confirm, None, pairs, tasks=["temporal_order"])
        lines += [f"- {analysis.verdict_sentence(r)}" for r in confirmatory.to_dict("records")]
        harness = _harness_sentence(control, int(confirm["length"].max()))
        lines += ["", f"In words: on {confirm['seed'].nunique()} seeds never run before, "
                  f"{analysis.verdict_in_words(confirmatory)} {harness}", ""]
        lines.append(f"**Summary** (section 11.2: the paper grid and `confirm` together, T ≥ "
                     f"{analysis.CLAIM_MIN_LENGTH}, seeds 0–16 at temporal order T = 100 and 0–4 elsewhere: "
                     f"{len(paper) + len(confirm)} runs; it illustrates the confirmatory verdict, never "
                     "overturns it):")
        lines += [f"- {analysis.verdict_sentence(r)}"
                  for r in analysis.summary_comparisons(paper, confirm, pairs).to_dict("records")]
    else:
        lines.append(f"**Exploratory verdict** (the paper grid, T ≥ {analysis.CLAIM_MIN_LENGTH}, seeds 0–4: "
                     f"{len(paper)} runs, {paper['seconds'].sum() / 3600:.1f} core-hours; looked at before the "
                     "analysis plan was written, so a hypothesis, not a result):")
        lines += [f"- {analysis.verdict_sentence(r)}"
                  for r in analysis.plan_comparisons(paper, None, analysis.plan_pairs()).to_dict("records")]
    text = "\n".join(lines) + "\n\n" + _control_sentence(control, paper) + _screen_sentence(screen)
    if not confirm_done:
        written = 0 if confirm is None else len(confirm)
        text += (f"**Confirmatory runs** (temporal order, T = 100, seeds 5–16): {written} of "
                 f"{len(profile_configs('confirm'))} written so far; their verdict replaces this line when "
                 "they are complete.\n\n")
    if long is not None:
        progress = _progress(long, "long")
        text += (f"**Five-times budget** (profile `long`, section 11.8: temporal order, "
                 f"{LONG_MAX_ITERATIONS:,} iterations; exploratory): {progress[0].lower()}{progress[1:]}; "
                 f"{_budget_sentence(long)}notebook 06 draws it beside the paper budget.\n\n")
    authors_progress = _progress(authors, "authors")
    return text + f"Under the authors' own protocol: {authors_progress[0].lower()}{authors_progress[1:]}.\n"


def _load(results_dir) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """paper.csv, its history and authors.csv of `results_dir` (ValueError when one is missing),
    and the plan's other sweeps that exist there (`load_profiles` of PLAN_PROFILES)."""
    results_dir = Path(results_dir)
    paper_csv, authors_csv = results_dir / "paper.csv", results_dir / "authors.csv"
    for path in (paper_csv, authors_csv, history_path(paper_csv)):
        if not path.is_file():
            raise ValueError(f"results file {path} does not exist; the README's results are written "
                             f"from {paper_csv}, its history and {authors_csv}")
    return (load_results(paper_csv), load_history(paper_csv), load_results(authors_csv),
            load_profiles(results_dir, PLAN_PROFILES))


def results_section(results_dir="data/results", loaded=None) -> str:
    """docs/results.md's results section from `results_dir`'s paper.csv (with its history) and
    authors.csv, between the markers (`loaded`: what `_load` gave, to read the files once)."""
    paper, history, authors, sweeps = loaded or _load(results_dir)
    body = (paper_section(paper, history) + "\n" + plan_section(results_dir, paper, history, sweeps) + "\n"
            + authors_section(authors, paper))
    return f"{RESULTS_BEGIN}\n\n{body}\n{RESULTS_END}"


def headline_block(results_dir="data/results", loaded=None) -> str:
    """The README's headline between its markers."""
    paper, _, authors, sweeps = loaded or _load(results_dir)
    from .experiments.sensitivity import screen_results
    control, confirm, long = (sweeps.get(name, (None,))[0] for name in ("control", "confirm", "long"))
    runs, history, _ = screen_results(results_dir)
    text = headline(paper, authors, control, confirm, (runs, history), long)
    return f"{HEADLINE_BEGIN}\n{text}{HEADLINE_END}"


def _between(path: Path, begin: str, end: str) -> tuple[str, int, int]:
    """`path`'s text and where its generated part starts and ends; ValueError without both markers."""
    if not path.is_file():
        raise ValueError(f"{path} does not exist (or is not a regular file); give the file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset "
                         f"{exc.start}); save it as UTF-8") from None
    a, b = text.find(begin), text.find(end)
    if a < 0 or b < a:
        raise ValueError(f"{path} has no generated section between the markers {begin!r} and {end!r}")
    return text, a, b + len(end)


def update_readme(readme="README.md", results_dir="data/results", check: bool = False, results_doc=None) -> bool:
    """Write the headline into `readme` and the full results section into `results_doc`
    (default: docs/results.md beside `readme`), each between its markers; returns True when a file
    changed (with `check`: would change, and nothing is written). Both files are checked before
    the results are read, and both parts are made before either is written."""
    readme = Path(readme)
    results_doc = readme.parent / RESULTS_DOC if results_doc is None else Path(results_doc)
    for path, what in ((readme, "README"), (results_doc, "results document")):
        if path.is_dir():
            raise ValueError(f"{what} {path} is a directory; give the file, e.g. {path / path.name}")
    parts = {readme: (HEADLINE_BEGIN, HEADLINE_END, headline_block),
             results_doc: (RESULTS_BEGIN, RESULTS_END, results_section)}
    found = {path: _between(path, begin, end) for path, (begin, end, _) in parts.items()}
    loaded = _load(results_dir)
    stale = {}
    for path, (text, a, b) in found.items():
        new = text[:a] + parts[path][2](results_dir, loaded) + text[b:]
        if new != text:
            stale[path] = new
    if not check:
        for path, text in stale.items():
            target = path.resolve()    # a symbolic link keeps naming the file, which is rewritten
            tmp = target.with_name(target.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            shutil.copymode(target, tmp)
            tmp.replace(target)
    return bool(stale)
