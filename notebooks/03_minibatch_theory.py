# %% [markdown]
# # 3. What a minibatch does to the gradient norm
#
# SGR chooses which examples form a minibatch. What a training step receives is not any
# single example's gradient but the minibatch mean. This notebook proves three facts about
# that mean (docs/method.md section 3), each in a few lines, and checks each numerically on real
# per-example gradients of the temporal-order task. Then it measures what each of the
# selection rules does to the minibatch's long-term gradient and to its signal-to-noise ratio.

# %% [markdown] slide="fragment"
# Notation: a minibatch $B$ of $n$ examples with per-example gradient vectors
# $g_i \in \mathbb{R}^P$ (either the full gradient over all parameters or the long-term
# component $g_i^{\ge\tau}$ over $W_{in}, W_{rec}, b$; the statements hold for both), and
# $\bar g_B = \frac1n \sum_{i\in B} g_i$.

# %% [markdown] slide="notes"
# *For the lecturer.* A training step sees the minibatch mean, not the examples. Three short
# statements about that mean, each checked on real gradients, and then what each selection
# rule does to it. Keep the notation slide up while stating the three.

# %% kind="params"
profile = "quick"         # smoke (seconds) | quick (minutes) | paper (hours)
seed = 0
device = "auto"           # auto | cpu | cuda | cuda:N
output_dir = "../figures"  # where the figures are written (PNG + PDF)

# %% kind="setup"
import matplotlib.pyplot as plt
import torch
from IPython.display import display

import gradreg
from gradreg import plotting
from gradreg.experiments import minibatch
from gradreg.experiments.settings import notebook_settings, setup
from gradreg.model import make_model

dev = setup(profile, seed, device)   # figure style, seeds, device, one CPU thread
cfg = notebook_settings("03_minibatch_theory", profile)
display(cfg)

# %% slide="skip"
task = gradreg.make_task("temporal_order", cfg.length)
model64 = make_model(task, 50, seed, dtype=torch.float64, device=dev)   # exact checks: float64
model = make_model(task, 50, seed, device=dev)                          # as training runs it
print(task, "| tau =", task.steps // 2, "| untrained SRN, sparse init (spectral radius 0.95)")

# %% [markdown]
# ## Statement 1: the exact norm of any minibatch, from the Gram matrix
#
# $$\|\bar g_B\|^2 = \frac{1}{n^2} \sum_{i, j \in B} \langle g_i, g_j \rangle .$$
#
# *Proof.* Expand the inner product: $\|\sum_i g_i\|^2 = \langle \sum_i g_i, \sum_j g_j\rangle
# = \sum_{i,j} \langle g_i, g_j \rangle$ by bilinearity; divide by $n^2$. $\square$
#
# More generally, for any weights $w$ over a pool, $\|\sum_i w_i g_i\|^2 = w^\top G w$ with
# $G_{ij} = \langle g_i, g_j\rangle$. So once the pool's per-example gradients are known (one
# batched pass, notebook 2), the exact norm of *every* possible minibatch drawn from it costs
# a sum over a block of $G$, and no further backward pass. The greedy rule uses exactly this.
#
# *Check.* Random subsets $B$ of a pool: the Gram prediction against an independent
# autograd backward pass on the subset's mean loss.

# %%
gram = minibatch.gram_identity_check(model64, task, cfg.gram_pool, [1, 2, 5, 10, 20], cfg.subsets,
                                     seed=seed)
print(f"max relative error, Gram prediction vs autograd: {gram['relative_error'].max():.2e} "
      f"over {len(gram)} subsets (full and long-term gradients)")
assert gram["relative_error"].max() < 1e-10

# %% [markdown] slide="notes"
# *For the lecturer.* The point is w^T G w: once the pool's gradients are known, the norm of
# every possible minibatch is a sum over a block of G, with no further backward pass (the
# greedy rule uses it). Point at the printed relative error: round-off.

# %% [markdown]
# ## Statement 2: the triangle bound
#
# $$\|\bar g_B\| \;\le\; \frac1n \sum_{i \in B} \|g_i\| .$$
#
# *Proof.* The triangle inequality $\|a + b\| \le \|a\| + \|b\|$, applied $n-1$ times, gives
# $\|\sum_i g_i\| \le \sum_i \|g_i\|$; divide by $n$. Equality holds exactly when all the
# $g_i$ point the same way (are non-negative multiples of one vector). $\square$

# %% [markdown] slide="subslide"
# So a minibatch of examples with large individual long-term scores $s_i$ is *not*
# guaranteed a large long-term gradient: if the $g_i^{\ge\tau}$ point in different directions
# they cancel. The ratio $\|\bar g_B\| / \text{mean}_i\|g_i\|$ measures how coherent they are.
#
# *Check* on the long-term components of random subsets:

# %%
triangle = minibatch.triangle_check(model64, task, cfg.gram_pool, [1, 2, 5, 10, 20], cfg.subsets,
                                    seed=seed)
print(f"largest ||mean g|| / mean ||g_i|| over {len(triangle)} subsets:",
      f"{triangle['ratio'].max():.6f} (<= 1)")
display(triangle.groupby("n")["ratio"].describe()[["mean", "min", "max"]].round(4)
        .rename_axis("n (coherence ||mean g|| / mean ||g_i||)"))
assert (triangle["ratio"] <= 1 + 1e-12).all()

# %% [markdown] slide="notes"
# *For the lecturer.* Point at the `mean` column falling as n grows: the larger the minibatch,
# the more the long-term gradients cancel. Large individual scores do not guarantee a large
# minibatch gradient.

# %% [markdown]
# ## Statement 3: the noise model
#
# Suppose $g_i = \mu + \varepsilon_i$ with the $\varepsilon_i$ independent, $E\,\varepsilon_i = 0$
# and $E\|\varepsilon_i\|^2 = \sigma^2$. Then
#
# $$E\,\|\bar g_B\|^2 = \|\mu\|^2 + \frac{\sigma^2}{n}.$$
#
# *Proof.* $\bar g_B = \mu + \bar\varepsilon$ with $\bar\varepsilon = \frac1n\sum_i\varepsilon_i$, so
# $E\|\bar g_B\|^2 = \|\mu\|^2 + 2\langle \mu, E\bar\varepsilon\rangle + E\|\bar\varepsilon\|^2$.
# The middle term is $0$. By statement 1,
# $E\|\bar\varepsilon\|^2 = \frac{1}{n^2}\sum_{i,j} E\langle\varepsilon_i, \varepsilon_j\rangle$,
# and for $i \ne j$ independence and zero mean give
# $E\langle\varepsilon_i,\varepsilon_j\rangle = \langle E\varepsilon_i, E\varepsilon_j\rangle = 0$,
# leaving $\frac{1}{n^2} \cdot n\sigma^2$. $\square$

# %% [markdown]
# Fresh sequences drawn from a task *are* independent, so the model applies to a plain
# minibatch, with $\mu$ the expected gradient and $\sigma^2$ its per-example variance. The
# two terms compete: the **long-term signal-to-noise ratio**
#
# $$\mathrm{SNR} = \frac{\|\mu\|^2}{\sigma^2 / n}$$
#
# says whether a step's long-term gradient is mostly signal (the direction all sequences
# agree on) or mostly noise that averages out over steps.

# %% [markdown] slide="subslide"
# *Check.* We draw a large pool, estimate $\mu$ and $\sigma^2$ from all of it, cut it into
# disjoint minibatches of $n$ consecutive (hence independent) sequences, and compare the mean
# of $\|\bar g_B\|^2$ over them, with its standard error, to the prediction; the line under the
# table says by how many standard errors they differ at most.

# %%
noise = minibatch.noise_model_check(model, task, cfg.noise_pool, cfg.noise_sizes, seed=seed)
display(noise[["component", "n", "groups", "measured", "stderr", "predicted"]].round(6))
for component, sub in noise.groupby("component"):
    z = ((sub["measured"] - sub["predicted"]) / sub["stderr"]).abs().max()
    snr = sub["mu_sq"].iloc[0] / sub["sigma_sq"].iloc[0]
    print(f"{component:9s}: largest |measured - predicted| = {z:.1f} standard errors;",
          f"||mu||^2 / sigma^2 = {snr:.2e}, so SNR = {snr:.2e} * n (1 at n = {1 / snr:.0f})")
    below = int((sub["measured"] < sub["predicted"])[sub["n"] > 1].sum())
    print(f"{'':11s}measured below predicted at {below} of {int((sub['n'] > 1).sum())} sizes n > 1")

# %% [markdown] slide="notes"
# *For the lecturer.* Point at the `measured` and `predicted` columns side by side, then at the
# printed n at which the long-term SNR reaches 1: far above n = 20, so a plain minibatch's
# long-term gradient is mostly noise.

# %% slide="subslide" tags=["remove_input"]
fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
plotting.plot_gram_identity(gram, ax=axes[0])
plotting.plot_triangle_bound(triangle, ax=axes[1])
plotting.plot_noise_model(noise, ax=axes[2])
fig.suptitle(f"Minibatch theory on real per-example gradients (temporal order, T={cfg.length}, untrained SRN)")
plotting.save_figure(fig, "03_minibatch_theory", output_dir)
plt.show()

# %% [markdown]
# Where the measured points sit on one side of the prediction at every $n$ (the lines above
# count them), that is one chance event rather than several: every $n$ is measured on the same
# pool (a minibatch of 8 is two of the minibatches of 4), so a pool whose sequences happen to
# cancel a little more than average pulls every $n$ the same way; the largest deviation
# printed is the largest of several such correlated comparisons. At $n = 1$ measurement and
# prediction are the same sum, $\frac1N\sum_i \|g_i\|^2 = \|\hat\mu\|^2 + \hat\sigma^2$, and agree
# exactly.
#
# Note where the long-term points sit in the right panel, and the $n$ printed above at which
# the long-term SNR would reach 1: for any minibatch much smaller than that,
# $\|\mu^{\ge\tau}\|^2$ is small against $\sigma^2/n$, and a random minibatch's long-term
# gradient is almost all noise. Its *norm* is not small (it is about $\sigma/\sqrt n$), but its
# direction changes from step to step and averages away.

# %% [markdown] slide="notes"
# *For the lecturer.* Right panel: the long-term points follow the sigma^2/n line, far above
# ||mu||^2. Be ready for the question why they sit on one side of the prediction: the text
# above answers it (one pool, nested minibatches).

# %% [markdown]
# ## Selection: what each rule does to the long-term signal
#
# SGR draws a pool of $M = kn$ sequences ($k$ = pool factor), scores it in one batched pass
# and keeps $n$ of them (docs/method.md section 4). The rules:
#
# | rule | keeps |
# |---|---|
# | `random` | $n$ uniform of $M$: the same-cost control with no selection |
# | `top` | the $n$ largest long-term scores $s_i(\tau)$ |
# | `band` | sequences whose vanishing ratio $r_i(\tau)$ lies in a band, $[0.01, 10]$ by default |
# | `weighted` | $n$ drawn with probability $\propto s_i^\alpha$ ($\alpha = 1$) |
# | `greedy` | one at a time, each maximising the exact minibatch long-term norm (statement 1), until it enters a target band |

# %% [markdown] slide="subslide"
# Selection moves both terms of the noise model: it changes the mean $\mu_B$ of the examples
# that are kept and their spread $\sigma_B^2$. For each rule and pool factor we repeat the
# selection on `cfg.repeats` fresh pools (the same pools for every rule) with the training
# harness' own rule code, and report
#
# * the minibatch long-term norm $\|\sum_{i\in B} w_i g_i^{\ge\tau}\|$ (median and quartiles
#   over repeats);
# * the noise-model SNR $\|\mu_B\|^2 / (\sigma_B^2/n)$ from the kept examples' mean and
#   variance (lines, in the rule's colour and line style);
# * the measured SNR $\|E\,\bar g_B\|^2 / E\|\bar g_B - E\,\bar g_B\|^2$ over repeats (crosses),
#   which assumes nothing about independence: the kept examples were chosen jointly from one
#   pool, so they are not independent, and where the two SNRs differ, that dependence matters.
#
# Both squared means, $\|\mu_B\|^2$ and $\|E\,\bar g_B\|^2$, are estimated from averages, and the
# squared norm of an average of $N$ draws exceeds the squared norm of its expectation by
# (variance)$/N$ on average: that bias, about 1/`cfg.repeats` on each SNR, is subtracted. An
# estimate can then come out at or below 0 (a hollow marker at the bottom of the panel): a
# signal too small for `cfg.repeats` pools to resolve.
#
# With $k = 1$ every rule keeps the whole pool: all rules coincide, a built-in sanity check.

# %% slide="subslide"
selection = minibatch.selection_study(model, "temporal_order", cfg.length, cfg.rules,
                                      cfg.pool_factors, batch_size=cfg.batch_size,
                                      repeats=cfg.repeats, seed=seed)
display(selection.pivot(index="rule", columns="pool_factor", values="lt_norm_median")
        .rename_axis(columns="median minibatch long-term norm, by pool factor k").round(4))
display(selection.pivot(index="rule", columns="pool_factor", values="snr_measured")
        .rename_axis(columns="measured long-term SNR, by pool factor k").round(3))
band, uniform = (selection[selection["rule"] == rule].set_index("pool_factor")
                 [["lt_norm_median", "snr_measured"]] for rule in ("band", "random"))
print("band kept the same minibatches as random at every pool factor" if band.equals(uniform)
      else "band's minibatches differ from random's: some vanishing ratios fall outside the band")

# %% slide="subslide" tags=["remove_input"]
fig = plotting.plot_selection(selection)
fig.suptitle(f"Selection rules, temporal order T={cfg.length}, n={cfg.batch_size}, untrained SRN, "
             f"{cfg.repeats} pools per point")
plotting.save_figure(fig, "03_selection_rules", output_dir)
plt.show()

# %% [markdown] slide="notes"
# *For the lecturer.* Left panel: at k = 1 all rules meet (same minibatch). At k > 1 look for
# top, weighted and greedy above random. Right panel: random stays flat; hollow markers are
# estimates at or below 0, signals too small to resolve with these repeats.

# %% [markdown] slide="subslide"
# How to read it.
#
# * `random` does not depend on $k$ (up to sampling noise): without selection a bigger pool
#   changes nothing. Its SNR is a plain minibatch's, $n$ times the long-term
#   $\|\mu\|^2/\sigma^2$ printed under statement 3: mostly noise while that product is below 1.
#   Where it is far below 1, `cfg.repeats` pools cannot resolve it: the estimates scatter
#   around it, some at or below 0 (hollow markers).
# * `band` keeps the same minibatches as `random` whenever every candidate's vanishing ratio
#   lies inside the band (the line under the tables says whether it did here). At an untrained
#   network the ratios are close to $\rho^\tau$, inside the default band $[0.01, 10]$ unless
#   $\tau$ is long, and the rule then keeps a uniform draw (the same draw as `random`). It
#   selects once the ratios spread out of the band.
# * `top`, `weighted` and `greedy` select for large long-term scores: look for their minibatch
#   long-term norm above `random`'s at $k > 1$ (first table). At initialisation the
#   high-scoring sequences share a direction (they are mostly of one target class, notebook 2),
#   so selecting them raises $\|\mu_B\|^2$ faster than $\sigma_B^2/n$: compare their SNR with
#   `random`'s at the same $k$ (second table).
# * Where the measured SNR (x) departs from the noise-model line, the kept examples are not
#   independent: `greedy` builds its minibatch to be coherent, so its measured SNR can be
#   higher than the per-example mean and variance suggest.

# %% [markdown]
# A large norm alone does not prove signal (statement 2: large individual scores can
# cancel; statement 3: a norm can be all noise), which is why both panels are needed. And
# whether a higher long-term SNR at one step turns into faster learning, rather than into a
# biased gradient that favours some sequences, is a question about training dynamics, which
# notebooks 5 and 6 answer.

# %% [markdown]
# ## Exercises
#
# Four exercises on the three statements and on selection: when the triangle bound is tight, the Gram identity against the training step's own sum, the noise model by Monte Carlo, and why Horvitz-Thompson weights make `weighted` selection unbiased.
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

# %% [markdown] slide="notes"
# *For the lecturer.* 3.1 and 3.2 are core homework; 3.3 (the noise model by Monte Carlo) and
# 3.4 (Horvitz-Thompson) for the keen. The data each exercise uses is made at the top of its
# answer cell in the notebook.

# %% [markdown] kind="exercise"
# ### Exercise 3.1: a pool where the triangle bound is tight
#
# Build a pool `pool_x, pool_y` of **8** temporal-order sequences (T = 20; draw from `task`)
# for which the triangle bound is an equality for the long-term gradients,
# $\|\bar g^{\ge\tau}_B\| = \frac1n\sum_i \|g_i^{\ge\tau}\|$, for the network `model64` (the answer cell makes it: the default network, float64).
# Then say in the cell after the check why it is tight for your pool, and why it is not for
# 8 fresh sequences.

# %% kind="solution"
task = gradreg.make_task("temporal_order", 20)
model64 = make_model(task, 50, seed, dtype=torch.float64)
### BEGIN SOLUTION
x, y = task.sample(1, generator=torch.Generator().manual_seed(seed))
pool_x, pool_y = x.double().repeat(8, 1, 1), y.repeat(8)        # one sequence, eight times
### END SOLUTION

# %% kind="check"
def coherence(px, py):
    g = minibatch.flat_grads(gradreg.per_example_stats(model64, task, px.double(), py), "long_term")
    return (g.mean(0).norm() / g.norm(dim=1).mean()).item()

assert pool_x.shape[0] == 8 and pool_y.shape[0] == 8, "a pool of 8 sequences"
tight = coherence(pool_x, pool_y)
fresh = coherence(*task.sample(8, generator=torch.Generator().manual_seed(seed + 1)))
assert tight > 1 - 1e-9, f"||mean g|| / mean ||g_i|| = {tight:.6f}: the bound is not tight for this pool"
print(f"||mean g|| / mean ||g_i||: your pool {tight:.12f}, 8 fresh sequences {fresh:.3f}")

# %% [markdown] kind="answer"
# The triangle inequality $\|a + b\| \le \|a\| + \|b\|$ is an equality exactly when $a$ and $b$
# are non-negative multiples of one vector; so the bound is tight exactly when all the
# $g_i^{\ge\tau}$ point the same way. Copies of one sequence have identical gradients, so
# nothing cancels and the ratio is 1 (up to round-off). Fresh sequences have different symbols
# at different positions, different hidden states and deltas, so their long-term gradients point
# in different directions and partly cancel in the mean: the ratio is below 1 (about 0.9 here,
# and it falls as $n$ grows, notebook figure).

# %% [markdown] kind="exercise"
# ### Exercise 3.2: the Gram identity against the training step's own sum
#
# An SGR step never adds up per-example gradient tensors: `rec.batch_grads(w, lag)` computes
# $\sum_i w_i g_i^{\ge\tau}$ from the stored deltas directly (one matrix product per
# parameter). Predict the squared norm of that sum from the pool's Gram matrix instead: from
# `g` (made in the answer cell, $M \times P$: one long-term gradient per row of a pool of
# $M = 32$) compute the Gram matrix `G` ($M \times M$) and `predicted` $= w^\top G w$ (a float) for the weights `w` (a minibatch of
# 8 of the 32, weight 1/8 each).

# %% kind="solution"
task = gradreg.make_task("temporal_order", 20)
model64 = make_model(task, 50, seed, dtype=torch.float64)
x, y = task.sample(32, generator=torch.Generator().manual_seed(seed))
x = x.double()
stats = gradreg.per_example_stats(model64, task, x, y)
w = torch.zeros(32, dtype=torch.float64)
w[torch.randperm(32, generator=torch.Generator().manual_seed(seed))[:8]] = 1 / 8
g = minibatch.flat_grads(stats, "long_term")               # (32, P): one long-term gradient per row
### BEGIN SOLUTION
G = g @ g.T
predicted = (w @ G @ w).item()
### END SOLUTION

# %% kind="check"
rec = gradreg.bptt(model64, task, x, y)
step = rec.batch_grads(w, lag=stats.lag)                                # what an SGR step computes
actual = sum(v.pow(2).sum() for v in step.values()).item()
assert tuple(G.shape) == (32, 32) and torch.allclose(G, G.T), "G: a symmetric 32 x 32 matrix"
assert torch.allclose(G.diagonal().sqrt(), stats.long_term_norm, rtol=1e-10), "the diagonal of G holds s_i^2"
assert abs(predicted / actual - 1) < 1e-10, "w^T G w is not the squared norm of the step's own sum"
print(f"||sum_i w_i g_i||^2: from the Gram matrix {predicted:.10g}, from the step's own sum {actual:.10g}")

# %% [markdown] kind="exercise"
# ### Exercise 3.3: the noise model by Monte Carlo
#
# Take synthetic gradients $g_i = \mu + \varepsilon_i \in \mathbb{R}^{50}$ with
# $\mu = (0.1, \dots, 0.1)$ and $\varepsilon_i \sim N(0, I)$, so $\|\mu\|^2 = 0.5$ and
# $\sigma^2 = E\|\varepsilon_i\|^2 = 50$. For $n = 1, 4, 16, 64$ draw 2,000 independent
# minibatches of $n$ (with `generator=gen`, a seeded generator the answer cell makes) and store
#
# * `samples`, a dict from $n$ to the $(2000,)$ tensor of the minibatches' $\|\bar g_B\|^2$,
# * `measured`, a dict from $n$ to their mean, the Monte Carlo estimate of $E\|\bar g_B\|^2$.
#
# Compare them with statement 3's prediction. Then set `n_star`, the smallest $n$ at which the
# signal-to-noise ratio $\|\mu\|^2 / (\sigma^2/n)$ exceeds 1.

# %% kind="solution"
gen = torch.Generator().manual_seed(seed)
P = 50
mu = torch.full((P,), 0.1, dtype=torch.float64)
### BEGIN SOLUTION
samples, measured = {}, {}
for n in (1, 4, 16, 64):
    g = mu + torch.randn(2000, n, P, generator=gen, dtype=torch.float64)   # 2000 minibatches of n
    samples[n] = g.mean(1).pow(2).sum(1)
    measured[n] = samples[n].mean().item()
n_star = int(P / mu.pow(2).sum().item()) + 1                               # SNR = n ||mu||^2 / sigma^2
### END SOLUTION

# %% kind="check"
import math

assert sorted(measured) == sorted(samples) == [1, 4, 16, 64], "one estimate and one sample for each n"
for n, sample in samples.items():
    assert tuple(sample.shape) == (2000,), f"samples[{n}]: one value per minibatch, 2,000 of them"
    assert math.isclose(measured[n], sample.double().mean().item(), rel_tol=1e-9), \
        f"measured[{n}]: the mean of samples[{n}]"
    assert sample.double().std().item() > 0, f"samples[{n}]: no two minibatches are alike"
### BEGIN HIDDEN TESTS
# the first two moments of ||mean g||^2 = ||mu + eps_bar||^2, eps_bar ~ N(0, I/n): a sample made up to
# average to the prediction has the wrong spread
for n, sample in samples.items():
    sample = sample.double()
    mean, var = 0.5 + 50 / n, 2 * 50 / n**2 + 4 * 0.5 / n
    assert abs(sample.mean().item() - mean) < 5 * math.sqrt(var / 2000), f"n={n}: the mean is not E||mean g||^2"
    assert abs(sample.var().item() / var - 1) < 0.25, f"n={n}: the spread is not that of ||mean g||^2"
assert n_star == min(n for n in range(1, 10_000) if n * 0.5 / 50 > 1), "n_star: not where the SNR passes 1"
### END HIDDEN TESTS
print("Monte Carlo E||mean g||^2:", ", ".join(f"n={n}: {v:.3f}" for n, v in measured.items()), f"| n_star = {n_star}")

# %% [markdown] kind="exercise"
# ### Exercise 3.4: Horvitz-Thompson weights make `weighted` unbiased
#
# `weighted` draws $n$ of the $M$ candidates with inclusion probabilities $\pi_i \propto s_i$.
# With `importance=True` each chosen one gets the weight $1/(M\pi_i)$, which makes
# $\sum_{j \in B} w_j v_j$ an unbiased estimate of the pool mean $\frac1M\sum_i v_i$ of any
# per-example quantity $v$; the plain mean of the chosen ones is not. Check it for $v_i$ the
# norm of example $i$'s full gradient: the answer cell makes the pool of $M = 80$ sequences, its
# scores `s`, `v` and a seeded generator `gen`. Draw 2,000 selections of $n = 20$ from it with
# `gradreg.sampling.select_weighted(s, 20, importance=..., generator=gen)`
# and store, as $(2000,)$ tensors, `ht` (each draw's $\sum_j w_j v_{i_j}$ with
# `importance=True`) and `plain` (the same with `importance=False`, where the weights are
# $1/n$). Then say in the cell after the check why, for $v = s$ itself, every single draw
# would give the pool mean exactly.

# %% kind="solution"
task = gradreg.make_task("temporal_order", 20)
x, y = task.sample(80, generator=torch.Generator().manual_seed(seed))
pool = gradreg.per_example_stats(make_model(task, 50, seed), task, x, y, norms_only=True)
s, v = pool.long_term_norm.double(), pool.grad_norm.double()
gen = torch.Generator().manual_seed(seed)
### BEGIN SOLUTION
def estimates(importance, draws=2000):
    out = torch.empty(draws, dtype=torch.float64)
    for k in range(draws):
        sel = gradreg.sampling.select_weighted(s, 20, importance=importance, generator=gen)
        out[k] = (sel.weight * v[sel.index]).sum()
    return out

ht, plain = estimates(True), estimates(False)
### END SOLUTION

# %% kind="check"
pool_mean = v.mean().item()
assert ht.shape == (2000,) and plain.shape == (2000,), "2,000 estimates each"
se_ht, se_plain = ht.std().item() / 2000 ** 0.5, plain.std().item() / 2000 ** 0.5
assert abs(ht.mean().item() - pool_mean) < 5 * se_ht, "the Horvitz-Thompson estimates do not average to the pool mean"
assert plain.mean().item() - pool_mean > 5 * se_plain, "the plain mean of the chosen should overestimate the pool mean"
print(f"pool mean of ||g_i||: {pool_mean:.4f}; average over draws: Horvitz-Thompson {ht.mean():.4f} "
      f"(+- {se_ht:.4f}), plain mean of the chosen {plain.mean():.4f} (+- {se_plain:.4f})")

# %% [markdown] kind="answer"
# With $\pi_i = n s_i / \sum_k s_k$ (no candidate capped at $\pi = 1$), each chosen term is
# $w_j s_j = \frac{s_j}{M \pi_j} = \frac{\sum_k s_k}{nM}$, the same for every candidate; the $n$
# terms of any draw add up to $\frac1M\sum_k s_k$, the pool mean, whichever candidates were
# drawn. An estimate of $v$ has zero variance when $\pi \propto v$: sampling in proportion to
# the quantity itself is the ideal importance sampling. For $v = \|g_i\|$, which the scores
# track closely but not exactly, the estimates scatter around the pool mean, while the plain
# mean of the chosen overestimates it, because the large $\|g_i\|$ are drawn more often.
