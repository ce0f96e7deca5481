# %% [markdown]
# # 2. Exact per-example, lag-resolved gradients from one batched pass
#
# SGR scores every candidate sequence of a pool by its own long-term gradient, at every
# training step. That needs, for each example $i$ of a batch, its full gradient $g_i$ and its
# long-term component $g_i^{\ge\tau}$: quantities a framework's autograd does not give you
# (it sums over the batch). This notebook shows that both fall out of one batched BPTT pass,
# checks them against autograd to round-off, looks at how the long-term scores are
# distributed across sequences, and measures what the batched computation costs.

# %% [markdown] slide="notes"
# *For the lecturer.* Deck 1 ended with: sequences differ in their long-term gradient. To select
# on it, SGR needs every example's g_i and its long-term part g_i^{>=tau} at every step, and
# autograd only gives the batch sum. The claim of this deck: both come out of one batched pass,
# exactly, at about the cost of a training step.

# %% kind="params"
profile = "quick"         # smoke (seconds) | quick (minutes) | paper (hours)
seed = 0
device = "auto"           # auto | cpu | cuda | cuda:N
output_dir = "../figures"  # where the figures are written (PNG + PDF)

# %% kind="setup"
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import display

import gradreg
from gradreg import plotting
from gradreg.experiments import estimation, reference
from gradreg.experiments.settings import notebook_settings, setup
from gradreg.model import make_model

dev = setup(profile, seed, device)   # figure style, seeds, device, one CPU thread
cfg = notebook_settings("02_per_example_estimation", profile)
display(cfg)

# %% [markdown]
# ## Per-example gradients are batched reductions of the stored deltas
#
# `gradreg.bptt` keeps, for every example $i$ and step $t$, the hidden state $h_{i,t}$ and the
# delta $\delta_{i,t} = \partial E_i / \partial z_{i,t}$ (notebook 1). The gradient of example
# $i$'s own loss is the sum over its steps:
#
# $$g_i(W_{in}) = \sum_{t=0}^{S-1} \delta_{i,t}\, x_{i,t}^\top, \qquad
# g_i(W_{rec}) = \sum_{t=1}^{S-1} \delta_{i,t}\, h_{i,t-1}^\top, \qquad
# g_i(b) = \sum_{t=0}^{S-1} \delta_{i,t},$$
#
# one batched matrix product per parameter (`torch.bmm` over examples, contracting over time).

# %% [markdown] slide="subslide"
# The **long-term component** with lag threshold $\tau$ keeps the steps of lag $\ge\tau$:
#
# $$g_i^{\ge\tau} = \text{the same sums over } t \le S-1-\tau \text{ only, for } W_{in}, W_{rec}, b,$$
#
# and the three numbers SGR works with are
#
# $$s_i(\tau) = \|g_i^{\ge\tau}\|_2 \text{ (long-term score)}, \qquad
# p_i(t) = \|\delta_{i,t}\|_2 \text{ (delta profile)}, \qquad
# r_i(\tau) = \frac{\|\delta_{i,S-1-\tau}\|}{\|\delta_{i,S-1}\|} \text{ (vanishing ratio)}.$$
#
# `gradreg.per_example_stats` returns all of them:

# %%
task = gradreg.make_task("temporal_order", cfg.check_length)
model = make_model(task, 50, seed, dtype=torch.float64, device=dev)
x, y = task.sample(cfg.check_batch, generator=torch.Generator().manual_seed(seed))
x, y = x.to(dev, torch.float64), y.to(dev)

stats = gradreg.per_example_stats(model, task, x, y)    # lag tau = floor(S/2) by default
print("tau =", stats.lag)
for name, g in stats.grads.items():
    print(f"grads[{name!r}]: {tuple(g.shape)}   (batch, *parameter shape)")
print("long_term_grads:", {k: tuple(v.shape) for k, v in stats.long_term_grads.items()})
print("delta_norm:", tuple(stats.delta_norm.shape),
      " long_term_norm:", tuple(stats.long_term_norm.shape))

# %% [markdown] slide="notes"
# *For the lecturer.* Point at the three sums: the same deltas, multiplied by what multiplied
# the weight at that step. The long-term part is the same sums cut at t <= S-1-tau. In the
# output: every grads entry has a leading batch dimension, one gradient per example.

# %% [markdown]
# ## Exactness: a per-example autograd loop as the reference
#
# The reference is independent of `bptt`: plain autograd, one example at a time. To get the
# long-term component out of autograd too, give every step its own copy of the recurrent
# weights, all equal to the model's:
#
# $$z_t = W_{in}^{(t)} x_t + W_{rec}^{(t)} h_{t-1} + b^{(t)}, \qquad
# W^{(t)} = W \text{ for every } t.$$
#
# The network computes exactly the same function, and autograd's gradient with respect to the
# copy $W^{(t)}$ is exactly the step-$t$ term of the BPTT sum. Summing the copies' gradients
# over all steps gives $g_i$; over $t \le S-1-\tau$, $g_i^{\ge\tau}$; and
# $\partial E_i/\partial z_t$ read off $z_t$ gives the deltas
# (`gradreg.experiments.reference.autograd_reference`).

# %% [markdown] slide="subslide"
# We compare in float64 so that the only difference left is round-off, on three settings
# that exercise different code paths: a last-step classification task, a regression task with
# relu, and a task scored at every step.

# %% tags=["remove_input"]
checks = []
for name, activation in [("temporal_order", "tanh"), ("adding", "relu"), ("noiseless_memorization", "tanh")]:
    t_ = gradreg.make_task(name, cfg.check_length)
    m_ = make_model(t_, 50, seed, dtype=torch.float64, device=dev, activation=activation)
    x_, y_ = t_.sample(cfg.check_batch, generator=torch.Generator().manual_seed(seed))
    c = reference.exactness_check(m_, t_, x_.to(dev, torch.float64), y_.to(dev))
    c.insert(0, "setting", f"{name} (S={t_.steps}), {activation}")
    checks.append(c)
checks = pd.concat(checks, ignore_index=True)
# two significant digits: an exact match shows as 0, not 0.000000e+00
display(checks.pivot(index="quantity", columns="setting", values="max_relative_error").style.format("{:.2g}"))
worst = checks["max_relative_error"].max()
print(f"max relative error, batched one-pass statistics vs per-example autograd: {worst:.2e}")
assert worst < 1e-10

# %% [markdown] slide="notes"
# *For the lecturer.* The copies W^(t) are the trick to say out loud: same function, and
# autograd then hands out each step's term. In the table, point at the largest entry of each
# column: round-off (about 1e-15), in all three settings (three code paths: last-step loss,
# relu, a loss at every step).

# %% [markdown]
# The errors are at the float64 round-off floor ($\approx 10^{-15}$): the one-pass
# statistics are exact, not an approximation.

# %% [markdown]
# ## How are the long-term scores distributed across sequences?
#
# If every sequence carried the same long-term gradient, choosing sequences could not help.
# We score a large batch of fresh temporal-order sequences with an untrained network, at
# several lengths $T$ (with $\tau = \lfloor T/2 \rfloor$), and compare the distributions
# relative to their medians. `score_summary` reports quantiles relative to the median, the
# share of $\sum_i s_i^2$ (the total long-term "energy") held by the top 1% and 10% of
# sequences (1% and 10% if all were equal), and the spread of $\log_{10} s$.

# %%
scores = estimation.score_distributions("temporal_order", cfg.score_lengths, cfg.score_batch,
                                        seed=seed, device=dev, progress=True)
display(estimation.score_summary(scores, "length").round(3))

# %% slide="subslide" tags=["remove_input"]
fig = plotting.plot_score_distributions(scores, hue="length", hue_label="task length T")
plotting.save_figure(fig, "02_score_distributions", output_dir)
plt.show()

# %% [markdown] slide="notes"
# *For the lecturer.* Point at the `median` column falling with T (deck 1's vanishing, per
# example), then at `max/median` and the top-10% share: no heavy tail. The bumps in each curve:
# leave the why open, it is exercise 2.3.

# %% [markdown] slide="subslide"
# What the table and the figure say about an **untrained** network:
#
# * The scale falls with length: the median score shrinks as $T$ grows (notebook 1's
#   vanishing, now per example; the `median` column).
# * The spread changes far less: relative to its median, the distribution looks much the same
#   at every length, with no heavy tail (read `max/median`, a few times at most, and the top
#   10%'s share of the total $\sum_i s_i^2$ against the 10% an equal split would give).
# * It is multimodal: look for the separate bumps in each curve. What sets them apart is the
#   subject of exercise 2.3.

# %% [markdown]
# ### ... and with training
#
# Scores change as the network learns: the weights change, and with them how much error
# reaches far back, and the error signal becomes specific to each sequence rather than to its
# class. We train briefly with `gradreg.train` (gradient clipping, the plain baseline, for at
# most `cfg.train_iterations` iterations; it stops early if the task is solved) and score
# fresh sequences again with the trained network.

# %%
config = gradreg.TrainConfig(task="temporal_order", length=cfg.train_length, method="clip",
                             seed=seed, max_iterations=cfg.train_iterations,
                             check_every=max(1, cfg.train_iterations // 10), test_size=2000,
                             device=device)
before_after, result = estimation.scores_before_after(config, cfg.score_batch, progress=True)
print(result.summary())
display(estimation.score_summary(before_after, "stage").round(3))

# %% slide="subslide" tags=["remove_input"]
fig = plotting.plot_score_distributions(before_after, hue="stage", hue_label=f"temporal_order, T={cfg.train_length}")
plotting.save_figure(fig, "02_scores_training", output_dir)
plt.show()

# %% [markdown] slide="notes"
# *For the lecturer.* Compare the two rows: the median before and after training, and the
# spread of log10 s. How far the short run got is printed above the table (its test error).

# %% [markdown]
# What to look for in the two rows: as the network starts to use the early inputs, the
# long-term component grows and the whole distribution moves up (the `median`), and while the
# task is being learned the distribution widens (the spread of $\log_{10} s$ and the share held
# by the top sequences grow). The scores then stop being a function of the class alone and
# start to tell sequences apart, which is when choosing among them can matter. How far a run
# of `cfg.train_iterations` iterations gets depends on the profile: a short run may leave the
# distribution where it was, or narrow it.

# %% [markdown]
# ## What does the batched estimate cost?
#
# We time four ways of getting the gradients of one batch (temporal order,
# $T$ = `cfg.timing_length`, $H = 50$, best of `cfg.timing_repeats` runs):
#
# * **batched BPTT (gradreg)**: `per_example_stats`: every $g_i$, every $g_i^{\ge\tau}$ and
#   every delta profile, one forward and one backward pass over the batch;
# * **per-example autograd loop**: one forward and backward pass of `SRN.forward` per
#   sequence (per-example full gradients only);
# * **torch.func vmap(grad)**: the same per-example full gradients, vectorised by
#   `torch.func` over the batch;
# * **nn.RNN forward+backward**: a plain training step's cost with PyTorch's RNN, which
#   yields only the batch-mean gradient: the yardstick for "free".

# %% slide="subslide"
timings = estimation.cost_benchmark("temporal_order", cfg.timing_length, cfg.timing_batches,
                                    repeats=cfg.timing_repeats, loop_max_batch=cfg.loop_max_batch,
                                    seed=seed, device=dev)
display((timings.pivot(index="batch_size", columns="method", values="seconds") * 1e3).round(2)
        .rename_axis(columns="milliseconds per batch"))

# %% slide="subslide" tags=["remove_input"]
fig = plotting.plot_timings(timings)
fig.axes[0].set_title(f"Gradients of one batch, T={cfg.timing_length}, H=50, {dev.type.upper()}")
plotting.save_figure(fig, "02_cost", output_dir)
plt.show()

# %% [markdown] slide="notes"
# *For the lecturer.* Point at two lines: batched BPTT (every per-example and long-term
# gradient) and nn.RNN (only the batch mean). They are close; the autograd loop grows with the
# batch. That is why scoring a pool of 4n at every step is affordable.

# %% [markdown]
# The per-example loop grows linearly with the batch (one sequential pass per example), and
# vmap removes the Python loop but still materialises per-example gradients through a generic
# transform. The hand-written pass does the recursion once for the whole batch, so every
# per-example and lag-resolved statistic costs about what an ordinary training step costs:
# compare the batched line with the nn.RNN line, which buys only the batch mean. That is what
# makes scoring a pool of $M = 4n$ candidates at every SGR step affordable.

# %% [markdown]
# ## Exercises
#
# Three exercises on the per-example statistics: one example's gradient by autograd, the long-term score computed from the stored deltas by hand, and what the scores of an untrained network depend on.
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
# *For the lecturer.* 2.2 is core homework (the long-term score by hand); 2.1 and 2.3 for the
# keen. The data each exercise uses is made at the top of its answer cell in the notebook.

# %% [markdown] kind="exercise"
# ### Exercise 2.1: one example's gradient, by autograd
#
# Compute the gradient of example `i`'s own loss with plain autograd (forward
# `model(x[i:i+1])`, `task.loss`, `.backward()`), and store it in `autograd_grads`, a dict from
# parameter name (`W_in`, `W_rec`, `b`, `W_out`, `b_out`: `model.named_parameters()`) to
# gradient tensor. The check compares it with row `i` of `per_example_stats`' `grads`. (The
# answer cell makes `task`, temporal order with T = 20, a float64 `model` of 30 units, 8
# sequences `x, y` and `i = 3`.)

# %% kind="solution"
task = gradreg.make_task("temporal_order", 20)
model = make_model(task, 30, seed, dtype=torch.float64)
x, y = task.sample(8, generator=torch.Generator().manual_seed(seed))
x = x.double()
i = 3
### BEGIN SOLUTION
model.zero_grad()
task.loss(model(x[i:i + 1]), y[i:i + 1]).sum().backward()
autograd_grads = {name: p.grad.clone() for name, p in model.named_parameters()}
### END SOLUTION

# %% kind="check"
stats = gradreg.per_example_stats(model, task, x, y)
assert sorted(autograd_grads) == sorted(stats.grads), f"expected the parameters {sorted(stats.grads)}"
for name, g in stats.grads.items():
    error = ((autograd_grads[name] - g[i]).norm() / g[i].norm()).item()
    assert error < 1e-10, f"{name}: relative error {error:.1e} against per_example_stats"
    print(f"{name:6s} {tuple(g[i].shape)}: relative error {error:.1e}")

# %% [markdown] kind="exercise"
# ### Exercise 2.2: the long-term score from the deltas, by hand
#
# From the `BPTTRecord` `rec` of 16 temporal-order sequences (T = 20) that the answer cell makes (time-major: `rec.x` is $(S, B, I)$, `rec.h` and
# `rec.delta` are $(S, B, H)$) compute the long-term scores $s_i(\tau)$ for $\tau = 7$ as a
# $(B,)$ tensor `scores`: the norm of $g_i^{\ge\tau}$, made of
# $\sum_{t \le S-1-\tau} \delta_{i,t} x_{i,t}^\top$ (for $W_{in}$),
# $\sum_{1 \le t \le S-1-\tau} \delta_{i,t} h_{i,t-1}^\top$ (for $W_{rec}$; $h_{-1} = 0$) and
# $\sum_{t \le S-1-\tau} \delta_{i,t}$ (for $b$). `torch.einsum` does each sum in one line.

# %% kind="solution"
task = gradreg.make_task("temporal_order", 20)
model = make_model(task, 30, seed, dtype=torch.float64)
x, y = task.sample(16, generator=torch.Generator().manual_seed(seed))
rec = gradreg.bptt(model, task, x.double(), y)
tau = 7
### BEGIN SOLUTION
m = task.steps - tau                                     # the steps t = 0 .. S-1-tau
d = rec.delta[:m]
g_in = torch.einsum("tbh,tbi->bhi", d, rec.x[:m])
g_rec = torch.einsum("tbh,tbk->bhk", d[1:], rec.h[:m - 1])
g_b = d.sum(0)
scores = (g_in.pow(2).sum((1, 2)) + g_rec.pow(2).sum((1, 2)) + g_b.pow(2).sum(1)).sqrt()
### END SOLUTION

# %% kind="check"
expected = gradreg.per_example_stats(model, task, x.double(), y, lag=tau, norms_only=True).long_term_norm
assert tuple(scores.shape) == (16,), "one score per sequence"
error = ((scores - expected).abs() / expected).max().item()
assert error < 1e-10, f"largest relative error {error:.1e} against per_example_stats(lag={tau})"
print(f"s_i({tau}) of 16 sequences, largest relative error {error:.1e}: {scores[:4].tolist()} ...")

# %% [markdown] kind="exercise"
# ### Exercise 2.3: what the scores of an untrained network depend on
#
# `scores`, made in the answer cell, are the long-term scores $s_i(\tau)$ of 512 fresh temporal-order sequences
# (T = 20, untrained default network). Compute
#
# * `class_medians`, a dict from target class $y \in \{0, 1, 2, 3\}$ to the median score of the
#   sequences of that class,
# * `top_share`, the fraction of the 10% highest-scoring sequences whose class is the one with
#   the largest median.
#
# Then explain in the cell after the check why the scores group by class.

# %% kind="solution"
task = gradreg.make_task("temporal_order", 20)
model = make_model(task, 50, seed)
x, y = task.sample(512, generator=torch.Generator().manual_seed(seed + 1))
scores = gradreg.per_example_stats(model, task, x, y, norms_only=True).long_term_norm
### BEGIN SOLUTION
class_medians = {c: scores[y == c].median().item() for c in range(task.output_size)}
best = max(class_medians, key=class_medians.get)
top = scores >= scores.quantile(0.9)
top_share = (y[top] == best).double().mean().item()
### END SOLUTION

# %% kind="check"
import pandas as pd

frame = pd.DataFrame({"y": y.numpy(), "s": scores.numpy()})
by_class = frame.groupby("y")["s"].median()
assert sorted(class_medians) == [0, 1, 2, 3], "one median per class"
for c, value in by_class.items():   # (torch's median of an even count is the lower middle value; pandas' the mean)
    assert abs(class_medians[c] - value) <= 0.02 * value, f"class {c}: not the median score of its sequences"
top10 = frame.nlargest(len(frame) // 10, "s")
assert abs(top_share - (top10["y"] == by_class.idxmax()).mean()) < 0.03, "top_share: not the share of the top class"
assert top_share > 0.5 and by_class.max() > 2 * by_class.min()
print("median score by class:", {c: round(v, 3) for c, v in class_medians.items()},
      f"| {top_share:.0%} of the top 10% are of class {by_class.idxmax()}")

# %% [markdown] kind="answer"
# At initialisation the network's output hardly depends on the sequence, so the error that
# enters the last step, $\partial E/\partial o = \mathrm{softmax}(o) - e_y$, is set by the target
# class $y$ alone; BPTT carries that vector back through $W_{out}^\top$ and $W_{rec}^\top$, and
# every long-term gradient starts from it. Sequences of one class therefore start their backward
# pass from (nearly) the same vector and get similar scores, and the classes differ by how
# strongly $W_{out}^\top(\mathrm{softmax}(o) - e_y)$ survives the trip back: four modes, one per
# class. Selecting the largest scores of an untrained network selects mostly one class: a
# coherent minibatch (notebook 3), but a biased one.
