# %% [markdown]
# # 6. Long-range dependencies: time to solve, and success against length
#
# The question the paper asks: as the lag to bridge grows, which training method still solves
# the task, how reliably, and at what cost? For each method and task length we train several
# independent runs (seeds) and ask how soon each solves the task (test error $\le 1\%$ on
# fresh sequences) within an iteration budget. How the runs are judged was fixed before the
# runs that decide it, in the analysis plan (`docs/method.md` section 11).
#
# The runs come from a sweep results file (`python -m gradreg sweep --profile paper
# --results data/results/paper.csv`, resumable, possibly on a Dask cluster). With
# `results = "auto"` (the default) that is `data/results/paper.csv` if it exists, whatever the
# profile, otherwise `data/results/<profile>.csv` if that exists (`gradreg.experiments.long_range.find_results`);
# `results` may also name a CSV. When no file is found, the file found has no finished runs, or
# `results = "compute"`, the runs are computed here at the chosen profile (`smoke` and `quick`
# are far smaller than the paper's setting; their numbers show the pipeline, not the result).
# The first line printed below says where the runs came from.

# %% kind="params"
profile = "quick"         # smoke (seconds) | quick (minutes) | paper (hours)
seed = 0
device = "auto"           # auto | cpu | cuda | cuda:N
output_dir = "../figures"  # where the figures are written (PNG + PDF)
results = "auto"          # "auto" | "compute" | path to a sweep CSV
results_dir = "../data/results"
workers = None            # processes, when the runs are computed here

# %% kind="setup"
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from gradreg import analysis, plotting
from gradreg.experiments import long_range
from gradreg.experiments.settings import notebook_settings, setup
from gradreg.profiles import LONG_MAX_ITERATIONS, complete_arms, is_complete, profile_configs, variant_labels

dev = setup(profile, seed, device)   # figure style, seeds, device, one CPU thread
cfg = notebook_settings("06_long_range", profile)
display(cfg)

# %%
table, source = long_range.long_range_results(profile, results=results, results_dir=results_dir, device=device,
                                           workers=workers)
print(f"{len(table)} runs, from: {source}")
print("tasks:", sorted(table["task"].unique()), "| lengths:", sorted(table["length"].unique()),
      "| methods:", sorted(table["label"].unique()))

from pathlib import Path

from gradreg.results import history_path, load_history, load_profiles

history_file = history_path(source) if Path(str(source)).is_file() else None
history = load_history(history_file) if history_file is not None and history_file.exists() else None
sweeps = load_profiles(results_dir, ("paper", "control", "confirm", "long"))   # the plan's sweeps, where committed
print("committed sweeps of the plan:", {name: len(runs) for name, (runs, _) in sweeps.items()})

# %% [markdown]
# ## Time to solve: the primary endpoint
#
# A run either solves at some iteration $t_i$ or reaches the budget unsolved; then all we know is
# that its time to solve exceeds the budget: it is **censored** there. The **Kaplan–Meier**
# estimate of the fraction of runs still unsolved after $t$ iterations multiplies, over the
# iterations $t_j \le t$ at which some run solved, the fraction of the runs still training then
# that did not solve:
#
# $$\hat S(t) = \prod_{t_j \le t} \Big(1 - \frac{d_j}{n_j}\Big),$$
#
# with $d_j$ runs solved at $t_j$ among the $n_j$ still unsolved just before. Unlike a success
# rate it uses *when* a run solved, not only whether. Two arms are compared by the **log-rank
# test** (at each $t_j$, the solved runs expected in each arm if both solved at the same rate,
# summed; stratified by $T$ when several lengths are pooled) and the **hazard ratio** of a Cox
# model: above 1, the first arm solves sooner (`gradreg.analysis.compare_arms`, statsmodels).
# The shaded bands are 95% Hall–Wellner bands: with 5 runs per arm they are wide.
#
# The curves below are the long-range cells ($T \ge 100$); the positive control (an LSTM
# trained with Adam and a forget-gate bias of 5, `control` profile) is drawn beside the
# methods where its runs are committed.

# %%
long_cells = table[table["length"] >= analysis.CLAIM_MIN_LENGTH]
control_runs = sweeps["control"][0] if "control" in sweeps else table.iloc[0:0]
km = analysis.kaplan_meier(pd.concat([long_cells, control_runs], ignore_index=True))
fig = plotting.plot_time_to_solve(km, title="Runs not yet solved against iterations (Kaplan–Meier, 95% band)")
plotting.save_figure(fig, "06_time_to_solve", output_dir)
plt.show()

# %% [markdown]
# ## The verdict per comparison
#
# The plan's comparisons: `sgr/top` against its same-cost control `sgr/random` and against
# Pascanu's SGD-CR, per task over $T \ge 100$. Each log-rank p-value is Holm-adjusted within its
# task's family; the verdict is *better* or *worse* (adjusted $p < 0.05$, in the hazard ratio's
# direction), *equivalent* (the ratio's 95% interval inside $[0.5, 2]$) or *undecided*. Beside
# it, the secondary endpoints: the seed-paired Wilcoxon test of the areas under the test-error
# curves (their median difference: below 0, the first arm's error was lower) and Fisher's test
# of the solved counts with Newcombe's interval of their difference.
#
# The committed paper grid (seeds 0–4) is **exploratory**: these comparisons were looked at
# before the plan was written. The **confirmatory** verdict comes from the `confirm` profile
# alone (seeds 5–16 at temporal order $T = 100$), computed once all its 48 rows are committed
# (no interim look). The **summary** runs the same tests on the paper grid and `confirm`
# together (seventeen seeds per arm at temporal order $T = 100$): it illustrates the
# confirmatory verdict and cannot overturn it. Once `confirm` is complete, its own
# Kaplan–Meier curves are drawn below its table (`06_confirm_time_to_solve`).

# %%
columns = ["task", "first", "second", "solved_first", "runs_first", "solved_second", "runs_second", "hazard_ratio",
           "hr_low", "hr_high", "p_logrank", "p_holm", "verdict", "median_area_difference", "p_area", "p_fisher",
           "diff_low", "diff_high"]
exploratory = analysis.plan_comparisons(table, history, analysis.plan_pairs())
if len(exploratory):
    display(exploratory[columns].round(4))
    for row in exploratory.to_dict("records"):
        print("exploratory:", analysis.verdict_sentence(row))
confirm_runs, confirm_history = sweeps["confirm"] if "confirm" in sweeps else (table.iloc[0:0], None)
if not is_complete(confirm_runs, "confirm"):      # the plan's tests run once, on all its rows
    print(f"confirmatory: {len(confirm_runs)} of the confirm profile's {len(profile_configs('confirm'))} rows "
          "are committed; its tests run when all of them are")
else:
    plan = analysis.plan_pairs(*variant_labels())    # C1-C4: V is the screen's pick, C3 its own control
    confirmatory = analysis.plan_comparisons(confirm_runs, confirm_history, plan, tasks=["temporal_order"])
    display(confirmatory[columns].round(4))
    for row in confirmatory.to_dict("records"):
        print("confirmatory:", analysis.verdict_sentence(row))
    print("in words:", analysis.verdict_in_words(confirmatory))
    fig = plotting.plot_time_to_solve(analysis.kaplan_meier(confirm_runs),
                                      title="Confirmatory runs, seeds 5–16: not yet solved (Kaplan–Meier)")
    plotting.save_figure(fig, "06_confirm_time_to_solve", output_dir)
    plt.show()
    if "paper" in sweeps:
        paper_runs, paper_history = sweeps["paper"]
        summary_table = analysis.summary_comparisons(paper_runs, confirm_runs, plan, paper_history, confirm_history)
        display(summary_table[columns].round(4))
        for row in summary_table.to_dict("records"):
            print("summary:", analysis.verdict_sentence(row))

# %% [markdown]
# ## A five-times budget
#
# The pascanu runs that failed at $T = 100$ were still improving when the 50,000-iteration
# budget ran out, a budget of 1% of what Pascanu et al. allowed. The `long` profile trains the
# plan's arms at temporal order $T = 100$ (then 150) for 250,000 iterations on the paper
# grid's seeds 0–4; beside each arm's curve at 50,000 iterations, its curve at 250,000 says
# whether the budget changes which method wins. The plan's comparisons on these runs (their own
# family, section 11.8) are exploratory: they cannot change the confirmatory verdict. While
# the sweep runs, an arm is drawn and tested only once all its runs are written: its first
# rows are the runs that ended first, the early solvers (`gradreg.profiles.complete_arms`).

# %%
long_runs, long_history = sweeps["long"] if "long" in sweeps else (table.iloc[0:0], None)
print(f"long: {len(long_runs)} runs written, {len(complete_arms(long_runs, 'long'))} of them in complete arms")
long_runs = complete_arms(long_runs, "long")
long_budget = long_range.budget_curves(table, long_runs)
if len(long_budget):
    fig = plotting.plot_time_to_solve(long_budget,
                                      title="Runs not yet solved: the paper budget against five times it")
    plotting.save_figure(fig, "06_long_budget", output_dir)
    plt.show()
    display(long_range.budget_table(long_runs))   # solved within 50,000 and within 250,000 iterations
    at_long_budget = analysis.plan_comparisons(long_runs, long_history, analysis.plan_pairs(*variant_labels()),
                                               tasks=["temporal_order"], budget=LONG_MAX_ITERATIONS)
    display(at_long_budget[columns].round(4))
    for row in at_long_budget.to_dict("records"):
        print(f"long budget, exploratory ({len(long_runs)} runs in complete arms):", analysis.verdict_sentence(row))
else:
    print("no arm of the long profile is complete yet (python -m gradreg sweep --profile long ...)")

# %% [markdown]
# ## Success rates with honest error bars
#
# With $k$ of $n$ runs solved, the success rate is $\hat p = k/n$. With $n$ of 5 or 10 the
# usual normal interval $\hat p \pm z\sqrt{\hat p(1-\hat p)/n}$ fails: at $k = 0$ or $k = n$
# it has width zero. The **Wilson score interval** inverts the score test instead, and is the
# set of $p$ with $|\hat p - p| \le z\sqrt{p(1-p)/n}$:
#
# $$\frac{\hat p + \frac{z^2}{2n} \pm z\sqrt{\frac{\hat p(1-\hat p)}{n} + \frac{z^2}{4n^2}}}{1 + \frac{z^2}{n}},
# \qquad z = 1.96 \text{ for } 95\%.$$
#
# It stays inside $[0, 1]$ and is informative at $k = 0$ and $k = n$:

# %%
for k, n in [(0, 5), (5, 5), (3, 5), (0, 10), (7, 10)]:
    low, high = analysis.wilson_interval(k, n)
    print(f"{k:2d} of {n:2d} solved: rate {k / n:.2f}, 95% Wilson interval [{low:.2f}, {high:.2f}]")

# %%
summary = analysis.summarise(table, by=("task", "length", "label"))
display(summary.round(3))

# %%
fig = plotting.plot_success_rate(summary)
plotting.save_figure(fig, "06_success_rate", output_dir)
plt.show()

# %% [markdown]
# ## The cost of solving
#
# Among the runs that solved, how many training sequences did it take? (Examples processed:
# SGR counts its whole pool of $4n$ per step, so this compares data and, roughly, compute.)
# Each dot is one solved run, the bar the median; a method with no dot at a length solved no
# run there.

# %%
fig = plotting.plot_examples_to_solve(table)
plotting.save_figure(fig, "06_examples_to_solve", output_dir)
plt.show()

# %% [markdown]
# ## Does the selection matter? Exact tests
#
# The paper's claim is about SGR's *selection*, so `sgr/top` is held against the two runs that
# isolate it: `sgr/random`, which draws the same pool of $4n$ sequences and steps on a random
# $n$ of them (the same cost, no selection), and Pascanu's SGD-CR (`pascanu`), the strongest
# baseline. With $k_1$ of $n_1$ and $k_2$ of $n_2$ runs solved, **Fisher's exact test** asks how
# probable a split at least this uneven would be if both methods solved at the same rate:
# conditioned on the $k_1 + k_2$ solved runs, the count of the first method is
# hypergeometric, and the two-sided p-value adds the probabilities of all tables no more
# likely than the observed one (`scipy.stats.fisher_exact`).

# %%
comparison = analysis.comparisons(table)
display(comparison.round(4))
print(analysis.verdict(table))

# %% [markdown]
# ## What solved and failed SGR runs look like over training
#
# The sweep keeps every run's check history beside its results (`NAME-history.csv.gz`, read by
# `gradreg.results.load_history`): test error, the minibatch long-term norm and the spectral
# radius of $W_{rec}$ at every check. Here the SGR runs of temporal order at T = 100, solid
# where the run solved, dotted where it failed (no runs: the figure says so).

# %%
if history is None:
    print("no check histories for these runs (computed here, or a results file without its history)")
else:
    fig = plotting.plot_run_histories(history, table, "temporal_order", 100)
    plotting.save_figure(fig, "06_sgr_runs_T100", output_dir)
    plt.show()

# %% [markdown]
# Read the two figures together: a method is better at a length if it solves more often (the
# intervals separate) *or*, at equal reliability, with fewer examples. How wide the intervals
# are depends on the number of runs per cell (the `runs` column): with the few seeds of runs
# computed at the `smoke` and `quick` profiles they are wide and overlap almost everywhere,
# which is the honest statement of what so few runs can show. A paper-sized sweep
# (`python -m gradreg sweep --profile paper`, read here from `data/results/paper.csv` when that
# file exists) is what the comparison needs.
