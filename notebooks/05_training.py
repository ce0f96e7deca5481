# %% [markdown]
# # 5. Training: SGR against its baselines
#
# Every method runs on the same harness (`gradreg.train`): the same task stream, the same
# SRN initialisation for a given seed, the same optimiser (SGD, learning rate 0.01,
# minibatch $n = 20$, hidden size 50) and the same test set of fresh sequences, drawn once
# per run from its own seed. This notebook trains each method on one task and length, over
# several seeds, and plots test error against the number of training sequences processed.
#
# | method | step |
# |---|---|
# | `sgd` | $\theta \leftarrow \theta - \eta\, \bar g_B$, $B$ = $n$ fresh sequences |
# | `clip` | the same with $\bar g_B \leftarrow \bar g_B \cdot \min(1, c/\lVert \bar g_B\rVert )$, $c = 1$ (Pascanu's SGD-C) |
# | `pascanu` | clip, plus $\alpha\, \partial\Omega/\partial W_{rec}$, $\alpha = 2$, the vanishing-gradient regulariser $\Omega = \mathrm{mean}_{i,k}\big(\frac{\lVert W_{rec}^\top (f'(z_{k+1}) \odot u_{i,k+1})\rVert }{\lVert u_{i,k+1}\rVert } - 1\big)^2$, $u = \partial E/\partial h$ (SGD-CR) |
# | `sgr/top` | draw $M = 4n$ sequences, score $s_i(\tau)$ in one batched pass, step with the mean gradient of the $n$ highest-scoring ones (already computed: no second backward pass), clipped |
# | `sgr/random` | the same pool and cost, but $n$ chosen uniformly: the control that isolates the effect of *selection* |
# | `lstm` | `torch.nn.LSTM` with the same readout, optimiser and clipping |
#
# SGR processes $M = 4n$ sequences per step, so the x axis counts *examples processed*, the
# whole pool for SGR: the honest unit of data and (roughly) of compute.

# %% kind="params"
profile = "quick"         # smoke (seconds) | quick (minutes) | paper (hours)
seed = 0
device = "auto"           # auto | cpu | cuda | cuda:N
output_dir = "../figures"  # where the figures are written (PNG + PDF)
workers = None            # processes for the runs (None: the profile's choice)

# %% kind="setup"
import matplotlib.pyplot as plt
from IPython.display import display

import gradreg
from gradreg import analysis, plotting
from gradreg.experiments import training
from gradreg.experiments.settings import notebook_settings, setup
from gradreg.runs import run_configs

dev = setup(profile, seed, device)   # figure style, seeds, device, one CPU thread
cfg = notebook_settings("05_training", profile)
display(cfg)

# %%
configs = training.method_configs(cfg.task, cfg.length, cfg.seeds, max_iterations=cfg.max_iterations,
                                 check_every=cfg.check_every, test_size=cfg.test_size, device=device)
print(f"{len(configs)} runs: {cfg.task} T={cfg.length}, {cfg.seeds} seeds, at most {cfg.max_iterations} "
      f"iterations, test error on {cfg.test_size} sequences every {cfg.check_every} iterations")
results = run_configs(configs, workers=cfg.workers if workers is None else workers)
table = analysis.results_table(results)
display(analysis.summarise(table, by=("label",)).round(3))

# %% [markdown]
# The table: per method, how many seeds solved the task (test error $\le 1\%$) within the
# iteration budget, the 95% Wilson interval of the success rate (notebook 6), and over the
# solved runs the median iterations, examples and wall-clock seconds to solve.
#
# ## Learning curves
#
# Each run's test error is put on a common grid of examples processed (linear interpolation
# between checks; a run that solved keeps its final error after it stops, since training
# would have stopped there; an unsolved run that ran out of iterations simply ends, and so
# does its method's line, so that the median is always over all seeds). Lines are the median
# over seeds, bands the interquartile range.

# %%
curves = analysis.curves_on_grid(results)
fig = plotting.plot_learning_curves(curves, title=f"{cfg.task}, T={cfg.length}: test error over training "
                                                  f"(median and IQR over {cfg.seeds} seeds)")
plotting.save_figure(fig, "05_learning_curves", output_dir)
plt.show()

# %% [markdown]
# ## What the step receives from long lags, and where the weights go
#
# Every SRN step logs the long-term norm of the minibatch gradient it applies,
# $\|\sum_{i \in B} w_i g_i^{\ge\tau}\|$ (before clipping). At any given network, `top`
# can only raise it relative to a uniform choice from the same pool (that is what it selects
# for; notebook 3). Over training, though, the `sgr/top` and `sgr/random` runs move to
# different networks, so the curves below compare *trajectories*: the selection's direct
# effect plus where it has taken the weights. `clip` ($n$ fresh sequences, no pool) is shown
# for reference. The right panel follows the spectral radius of $W_{rec}$ (notebook 1: the
# per-step factor of the backward pass).

# %%
steps = analysis.step_logs(results, labels=("sgr/top", "sgr/random", "clip"))
history = analysis.histories(results, labels=("sgr/top", "sgr/random", "clip"))
fig = plotting.plot_training_dynamics(steps, history)
plotting.save_figure(fig, "05_long_term_norm", output_dir)
plt.show()
gain = analysis.long_term_gain(steps, "sgr/top", "sgr/random")
print(f"per-step ratio of minibatch long-term norms, sgr/top : sgr/random (median over seeds and steps): "
      f"{gain['median_ratio']:.3g} overall, {gain['first_half']:.3g} in the first half of the "
      f"{gain['iterations']} iterations, {gain['second_half']:.3g} in the second")
display(analysis.final_states(results).round(4))

# %% [markdown]
# How to read the pair of panels. Differences between `sgr/top` and `sgr/random` come both
# from the selection and from the different networks the runs have reached; the table (one
# row per run: the spectral radius at the end, the largest and the last per-check long-term
# norm) says how each run ended. Two outcomes are possible for `top`:
#
# * the extra long-term signal teaches the network to carry the early symbol, and the run
#   solves the task: the point of SGR;
# * or the run stalls in saturation. Once the spectral radius of $W_{rec}$ is above 1
#   (notebook 1), some sequences' long-term gradients explode, clipped steps keep pushing
#   $W_{rec}$ outwards, the tanh units saturate ($f' \approx 0$), and then every candidate's
#   long-term gradient vanishes: the long-term norm collapses by orders of magnitude and there
#   is nothing left to select. The run stalls near 50% error, having learned one of the two
#   symbols. This can happen to any clipped SRN (look for runs of any method whose last
#   long-term norm in the table is 0), but `top` feeds it: it selects precisely the
#   exploding sequences, which shows as a burst of long-term norm far above `random`'s just
#   before the collapse. (The table says which, if either, happened to each `sgr/top` run
#   here: `solved`, or a `last_long_term_norm` orders of magnitude below its
#   `max_long_term_norm`. A short run may show neither.)
#
# Selection chooses among the gradients the pool has; it cannot create long-term signal where
# the network has none, and taken greedily it can amplify an exploding direction. Whether SGR
# solves more often than its baselines at long lags, across seeds, is what notebook 6 counts.

# %% [markdown]
# ## Exercises
#
# Two exercises on small SGR runs (temporal order, T = 10, 150 iterations, a second or two each): changing the lag threshold, and how often the clipping acts.
#
# Each exercise is answered with a few lines against `gradreg`, in the cell under the question
# (in the student edition it holds `raise NotImplementedError()`); some also ask for a sentence
# or two in the markdown cell after it. The names an exercise uses (`x, y`, a model, ...) are
# made at the top of its answer cell. Then run the **check** cell under your answer: it fails
# with a message when the answer is wrong, and otherwise prints what you computed; it never
# shows the right values, and a grader may run further tests that the student edition leaves
# out. The exercises use only the set-up cell at the top of the notebook (set the profile in
# the parameters cell to smoke, run that cell and the set-up cell), so they can be done right
# after it; each runs in seconds.

# %% [markdown] kind="exercise"
# ### Exercise 5.1: SGR with another lag threshold
#
# Train `sgr/top` three times on temporal order at $T = 10$, with the lag threshold
# $\tau = 1$, $5$ (the default, $\lfloor S/2 \rfloor$) and $9$ ($= S-1$), everything else equal
# (use `settings`, made in the answer cell, with `.replace(lag=...)`), and store the results in `runs`, a dict
# from $\tau$ to `TrainResult`. The check compares the runs' costs and their per-step logs
# (`result.steps`: the minibatch long-term norm and the full gradient norm of every step).
# Then say in the cell after the check what $\tau$ changes in an SGR step and what it does not.

# %% kind="solution"
settings = gradreg.TrainConfig(task="temporal_order", length=10, method="sgr", rule="top", seed=seed,
                               max_iterations=150, check_every=50, test_size=500, device=device)
### BEGIN SOLUTION
runs = {lag: gradreg.train(settings.replace(lag=lag)) for lag in (1, 5, 9)}
### END SOLUTION

# %% kind="check"
assert sorted(runs) == [1, 5, 9], "one run for each of tau = 1, 5, 9"
for lag, r in runs.items():
    assert r.config.lag == lag and r.config.method == "sgr" and r.config.rule == "top", f"run {lag}: not sgr/top at tau={lag}"
    assert r.examples == r.iterations * r.config.pool_size, "every step scores the whole pool"
lt = {lag: r.steps["minibatch_long_term_norm"].median() for lag, r in runs.items()}
full = {lag: r.steps["grad_norm"].median() for lag, r in runs.items()}
assert lt[1] > lt[5] > lt[9], "the long-term component of a smaller tau sums more steps"
for lag, r in runs.items():
    print(f"tau={lag}: {r.examples} sequences processed, median minibatch long-term norm {lt[lag]:.3f}, "
          f"median full gradient norm {full[lag]:.3f}, test error {r.final_error:.3f}")


# %% [markdown] kind="answer"
# $\tau$ changes only the **score** $s_i(\tau)$ by which the pool is ranked, and so which $n$
# of the $M$ sequences are chosen. It changes neither the cost (every step scores the same pool
# of $M = 80$ with one batched pass: the three runs process the same number of sequences) nor
# the step itself: the step is the mean *full* gradient of the chosen sequences, clipped. With
# $\tau = 1$ the score is nearly the norm of the whole recurrent gradient, so `top` picks the
# sequences with the largest gradients overall, most of it short-term; with $\tau = S-1$ it ranks
# by the terms of step 0 alone, a distractor step here. The logged long-term norms are norms of
# different sums (more steps for a smaller $\tau$), so they fall with $\tau$ by construction and
# do not compare the runs; the full gradient norm of the steps does.

# %% [markdown] kind="exercise"
# ### Exercise 5.2: how often does the clipping act?
#
# Write `clipped_fraction(result)`: the fraction of a run's steps whose gradient norm before
# clipping (`result.steps["grad_norm"]`) exceeded the clipping threshold `result.config.clip`.
# The check tries it on a made-up run, then on `sgr/top` and `sgr/random` (same seed, same
# pools). Then say in the cell after the check why the two differ.

# %% kind="solution"
def clipped_fraction(result):
    ### BEGIN SOLUTION
    return float((result.steps["grad_norm"] > result.config.clip).mean())
    ### END SOLUTION


# %% kind="check"
from types import SimpleNamespace

import pandas as pd

made_up = SimpleNamespace(steps=pd.DataFrame({"grad_norm": [0.5, 2.0, 1.0, 3.0]}), config=SimpleNamespace(clip=1.0))
assert clipped_fraction(made_up) == 0.5, "norms 0.5, 2, 1, 3 with clip 1: two of four steps are clipped"
settings = gradreg.TrainConfig(task="temporal_order", length=10, method="sgr", seed=seed, max_iterations=150,
                               check_every=50, test_size=500, device=device)
top, random = gradreg.train(settings.replace(rule="top")), gradreg.train(settings.replace(rule="random"))
assert clipped_fraction(top) > clipped_fraction(random), "top should be clipped more often than random"
for r in (top, random):
    print(f"sgr/{r.config.rule}: {clipped_fraction(r):.0%} of {r.iterations} steps clipped, "
          f"test error {r.final_error:.3f}")

# %% [markdown] kind="answer"
# `top` keeps the sequences with the largest long-term gradients, and those carry large
# gradients overall: the mean of 20 of them is far longer than the mean of 20 chosen at random,
# whose directions partly cancel (notebook 3). So `top`'s steps exceed the threshold often and
# get clipped: the clipped step then has length 1 whatever the gradient, and its direction is
# that of the few extreme sequences. `random`'s steps are shorter and rarely clipped. In this
# short run that even reverses the outcome (`random` gets far lower test error than `top`):
# selection decides which sequences the step follows, and following the extreme ones is not
# always what learning needs, which is the saturation story of this notebook.
