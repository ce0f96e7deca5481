"""Writes the numbered notebooks (01_... to 07_...) from the cell texts below.

The notebooks are committed without outputs; this script is their reviewable source:
edit the text here, run

    .venv/bin/python notebooks/_build.py

and commit both. Cell ids are stable (notebook stem + index), so an unchanged cell gives an
unchanged diff. The notebooks hold prose, parameters and calls into gradreg only; every
computation is a function of `gradreg.figures` or the rest of the package, every figure a
function of `gradreg.plotting`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent

PARAMETERS = '''\
profile = "quick"         # smoke (seconds) | quick (minutes) | paper (hours)
seed = 0
device = "auto"           # auto | cpu | cuda | cuda:N
output_dir = "../figures"  # where the figures are written (PNG + PDF)
'''


def setup(notebook: str, extra_imports: str = "") -> str:
    return f'''\
import torch
import matplotlib.pyplot as plt
from IPython.display import display
{extra_imports}
import gradreg
from gradreg import analysis, figures, plotting

dev = figures.setup(profile, seed, device)   # figure style, seeds, device, one CPU thread
cfg = figures.settings("{notebook}", profile)
cfg'''


# =============================================================================================
NB01 = [
("md", r"""
# 1. Vanishing gradients in a simple recurrent network

*Part of `gradreg`, a reproduction of Chernodub & Nowicki (2016), "Sampling-based gradient
regularization for capturing long-term dependencies in recurrent neural networks".*

A recurrent network learns a long-term dependency only if the error at the end of a
sequence can reach the inputs far back in it. Backpropagation through time (BPTT) carries
that error backwards one step at a time, and at every step it is multiplied by the same
recurrent matrix. This notebook derives the recursion, proves the classic bound on how fast
the carried error can shrink, and measures it on real networks: for three activation
functions and for recurrent matrices of several spectral radii.

Everything here is computed by `gradreg` (`gradreg.bptt`, `gradreg.per_example_stats`,
`gradreg.figures.delta_profiles`) and drawn by `gradreg.plotting`; the notebook only calls.
The `profile` parameter below sizes the run (`smoke`: seconds, `quick`: the committed
figures, `paper`: the full sizes).
"""),
("params", PARAMETERS),
("code", setup("01_vanishing_gradients")),
("md", r"""
## The network

The simple recurrent network (SRN, Elman) reads inputs $x_0, \dots, x_{S-1}$ and keeps a
hidden state $h_t \in \mathbb{R}^H$, with $h_{-1} = 0$:

$$z_t = W_{in}\, x_t + W_{rec}\, h_{t-1} + b, \qquad h_t = f(z_t), \qquad
o = W_{out}\, h_{S-1} + b_{out}.$$

The loss $E$ is computed from the last output $o$ (for the temporal-order task used here:
cross-entropy over 4 classes). `gradreg.SRN` is this network; its default initialisation
is Pascanu et al.'s "sparse" one (15 non-zeros per row of $W_{rec}$, rescaled to spectral
radius 0.95). The `spectral_radius=` argument rescales $W_{rec}$ to any radius we like.
"""),
("code", r"""
task = gradreg.make_task(cfg.task, cfg.length)
model = figures.make_model(task, cfg.hidden_size, seed, dtype=torch.float64, device=dev)
x, y = task.sample(8, generator=torch.Generator().manual_seed(seed))
x, y = x.to(dev, torch.float64), y.to(dev)

print(task, "| steps S =", task.steps, "| input size", task.input_size, "| classes", task.output_size)
print(model)
print("x:", tuple(x.shape), "(batch, S, input)  ->  o = model(x):", tuple(model(x).shape))
print("spectral radius of W_rec:", round(gradreg.model.spectral_radius(model.W_rec), 4))
"""),
("md", r"""
## Backpropagation through time

Write $\delta_t := \partial E / \partial z_t$ for the error at the pre-activation of step $t$.
$E$ depends on $z_t$ only through $h_t = f(z_t)$, and $h_t$ reaches $E$ in two ways: through
the next step's $z_{t+1} = W_{rec} h_t + \dots$ and, at the last step, through the readout.
The chain rule gives

$$\delta_{S-1} = f'(z_{S-1}) \odot W_{out}^\top \frac{\partial E}{\partial o}, \qquad
\delta_t = f'(z_t) \odot W_{rec}^\top\, \delta_{t+1} \quad (t < S-1),$$

and, since $z_t$ is linear in the weights, every gradient is a sum over steps of
$\delta_t$ times what multiplied the weight at step $t$:

$$\frac{\partial E}{\partial W_{rec}} = \sum_t \delta_t\, h_{t-1}^\top, \qquad
\frac{\partial E}{\partial W_{in}} = \sum_t \delta_t\, x_t^\top, \qquad
\frac{\partial E}{\partial b} = \sum_t \delta_t.$$

`gradreg.bptt` runs one batched forward pass and this recursion once, for the whole batch,
and keeps $h$ and $\delta$ (time-major: `delta[t]` is the $(B, H)$ block of step $t$). With
examples as rows, $W_{rec}^\top \delta_{t+1}$ is `delta[t+1] @ W_rec`, and for tanh
$f'(z_t) = 1 - \tanh^2(z_t) = 1 - h_t^2$:
"""),
("code", r"""
rec = gradreg.bptt(model, task, x, y)
print("h:", tuple(rec.h.shape), " delta:", tuple(rec.delta.shape), "  (S, batch, H)")

t = task.steps - 5
f_prime = 1 - rec.h[t] ** 2                                      # f'(z_t) for tanh
recursion = f_prime * (rec.delta[t + 1] @ model.W_rec.detach())  # f'(z_t) * W_rec^T delta_{t+1}
print(f"delta_{t} == f'(z_{t}) * W_rec^T delta_{t + 1}:", torch.allclose(rec.delta[t], recursion))

# sum_t delta_t h_{t-1}^T over the batch is the gradient autograd finds for the summed loss
stats = gradreg.per_example_stats(model, task, x, y)
model.zero_grad()
task.loss(model(x), y).sum().backward()
print("sum_i sum_t delta_t h_{t-1}^T == autograd dE/dW_rec:",
      torch.allclose(stats.grads["W_rec"].sum(0), model.W_rec.grad))
"""),
("md", r"""
## How fast can the error vanish? The bound

Take norms in the recursion. Let $\gamma = \max_z |f'(z)|$ ($\gamma = 1$ for tanh, relu and
the identity; $1/4$ for the logistic sigmoid) and let $\|W_{rec}\|_2$ be the largest
singular value of $W_{rec}$. Multiplying elementwise by $f'(z_t)$ scales each coordinate by
at most $\gamma$, and $\|W_{rec}^\top v\| \le \|W_{rec}\|_2 \|v\|$, so

$$\|\delta_t\| = \|f'(z_t) \odot W_{rec}^\top \delta_{t+1}\|
\;\le\; \gamma\, \|W_{rec}^\top \delta_{t+1}\| \;\le\; \gamma\, \|W_{rec}\|_2\, \|\delta_{t+1}\|.$$

Applying this $S-1-t$ times, from the last step down:

$$\boxed{\;\|\delta_t\| \;\le\; \|\delta_{S-1}\|\, \big(\gamma\, \|W_{rec}\|_2\big)^{S-1-t}\;}$$

Call $l = S-1-t$ the **lag** of step $t$: how far before the end it is. If
$\gamma \|W_{rec}\|_2 < 1$ the error reaching lag $l$ shrinks at least geometrically in
$l$, and so does that step's contribution $\delta_t h_{t-1}^\top$ to the gradient: the
network cannot learn what it would need to remember for $l$ steps. (This is a sufficient
condition for vanishing. Its converse is not a theorem: $\gamma \|W_{rec}\|_2 > 1$ allows
growth but does not force it.)

Two numbers describe $W_{rec}$: the spectral norm $\|W_{rec}\|_2$ in the bound, and the
spectral radius $\rho(W_{rec}) = \max |\lambda_i|$. Always $\rho \le \|W_{rec}\|_2$, with
equality for normal matrices; and $\|W_{rec}^l\|^{1/l} \to \rho$ (Gelfand), so $\rho$ sets
the asymptotic rate of a linear network while the bound uses the (larger) norm.

`gradreg.figures.delta_profiles` builds one untrained SRN per activation and spectral
radius, runs `per_example_stats` on a batch, and tabulates
$r_i(l) = \|\delta_{i,S-1-l}\| / \|\delta_{i,S-1}\|$ (its median, quartiles and maximum
over the examples) next to the bound $(\gamma \|W_{rec}\|_2)^l$:
"""),
("code", r"""
profiles = figures.delta_profiles(cfg.task, cfg.length, cfg.activations, cfg.radii, cfg.batch_size,
                                  cfg.hidden_size, seed=seed, device=dev)
summary = figures.decay_summary(profiles)
display(summary.round(4))
assert summary["bound_holds"].all(), "the bound was violated"
"""),
("md", r"""
### Measured profiles against the bound

Each panel is one activation function; each colour one spectral radius of $W_{rec}$ (the
network is otherwise identical: same sparse pattern, same inputs). Solid lines are the median
of $r_i(l)$ over the batch with the interquartile band; dashed lines of the same colour are
the bound $(\gamma \|W_{rec}\|_2)^l$. The y axis is logarithmic, so geometric decay is a
straight line.
"""),
("code", r"""
fig = plotting.plot_delta_profiles(profiles)
plotting.save_figure(fig, "01_delta_profiles", output_dir)
plt.show()
"""),
("md", r"""
What to read off the figure:

* **Geometric decay below radius 1.** For tanh and the identity the profiles are straight
  lines in log scale, with a slope set by the spectral radius, not by the norm: with the
  default input scale the hidden units stay near zero, where $\tanh$ is nearly linear, so
  $\delta_t \approx (W_{rec}^\top)^{l} \delta_{S-1}$ and its decay rate tends to $\rho$.
* **The bound is loose.** The sparse $W_{rec}$ is far from normal: its spectral norm is
  about twice its spectral radius (table above), so the dashed bound grows even where the
  measured error shrinks. The bound is a guarantee, not a prediction.
* **relu vanishes faster.** $f'(z) \in \{0, 1\}$: units that are off block the error, so
  the effective matrix is smaller than $W_{rec}$.
* **At and above radius 1** the identity network keeps or amplifies the error (exploding
  gradients: the problem that gradient clipping addresses). tanh grows far less: as the
  units grow, $f'(z) = 1 - h^2$ falls below 1 and holds the product back (saturation).

The next figure checks the bound directly (left: for every activation and lag, the largest
ratio over all examples and radii of the measured value to the bound; it must stay at or
below 1) and compares rates (right: the per-step factor by which the median
$\|\delta\|$ shrinks, $\mathrm{median}_i\, r_i(l)^{1/l}$ at the largest lag, against the
bound's factor $\gamma\|W_{rec}\|_2$ and against $\rho$).
"""),
("code", r"""
fig = plotting.plot_bound_check(profiles, summary)
plotting.save_figure(fig, "01_bound_check", output_dir)
plt.show()
worst = profiles["max_over_bound"].max()
print(f"largest measured/bound ratio over every network, example and lag: {worst:.3g} (<= 1)")
display(summary[["spectral_radius", "measured_rate", "bound_rate"]].round(3))
"""),
("md", r"""
## What this means for training, and for SGR

The gradient is a sum over steps. Split it at a lag threshold $\tau$ (by default
$\tau = \lfloor S/2 \rfloor$): the **long-term component** $g^{\ge\tau}$ collects the terms
of the steps with lag $\ge \tau$, i.e. $t \le S-1-\tau$. By the bound, for a contracting
network $g^{\ge\tau}$ is exponentially small in $\tau$ *on average*, and a plain minibatch
gradient is dominated by short-term terms.

But the deltas differ from example to example: $f'(z_t)$, $h_{t-1}$ and $x_t$ all depend
on the sequence. The vanishing ratio $r_i(\tau)$ of the default network shows how much:
"""),
("code", r"""
default = figures.make_model(task, cfg.hidden_size, seed, device=dev)   # sparse init, radius 0.95
xs, ys = task.sample(cfg.batch_size, generator=torch.Generator().manual_seed(seed + 1))
s = gradreg.per_example_stats(default, task, xs.to(dev), ys.to(dev), norms_only=True)
r = s.vanishing_ratio().double()
print(f"tau = {s.lag}: vanishing ratio r_i(tau) over {len(r)} sequences: "
      f"10% quantile {r.quantile(0.1):.2e}, median {r.median():.2e}, 90% quantile {r.quantile(0.9):.2e}")
print(f"long-term score s_i(tau): max / median = {(s.long_term_norm.max() / s.long_term_norm.median()):.1f}")
"""),
("md", r"""
Some sequences carry far more long-term gradient than others. Sampling-based gradient
regularization (SGR) exploits exactly this: score a pool of candidate sequences by their
long-term gradient and train on the ones that carry it. Notebook 2 shows how to get every
example's long-term component exactly from one batched pass; notebook 3 what selecting
examples does to the minibatch gradient.
"""),
]

# =============================================================================================
NB02 = [
("md", r"""
# 2. Exact per-example, lag-resolved gradients from one batched pass

SGR scores every candidate sequence of a pool by its own long-term gradient, at every
training step. That needs, for each example $i$ of a batch, its full gradient $g_i$ and its
long-term component $g_i^{\ge\tau}$: quantities a framework's autograd does not give you
(it sums over the batch). This notebook shows that both fall out of one batched BPTT pass,
checks them against autograd to round-off, looks at how the long-term scores are
distributed across sequences, and measures what the batched computation costs.
"""),
("params", PARAMETERS),
("code", setup("02_per_example_estimation", "import pandas as pd\nfrom tqdm.auto import tqdm")),
("md", r"""
## Per-example gradients are batched reductions of the stored deltas

`gradreg.bptt` keeps, for every example $i$ and step $t$, the hidden state $h_{i,t}$ and the
delta $\delta_{i,t} = \partial E_i / \partial z_{i,t}$ (notebook 1). The gradient of example
$i$'s own loss is the sum over its steps:

$$g_i(W_{in}) = \sum_{t=0}^{S-1} \delta_{i,t}\, x_{i,t}^\top, \qquad
g_i(W_{rec}) = \sum_{t=1}^{S-1} \delta_{i,t}\, h_{i,t-1}^\top, \qquad
g_i(b) = \sum_{t=0}^{S-1} \delta_{i,t},$$

one batched matrix product per parameter (`torch.bmm` over examples, contracting over time).
The **long-term component** with lag threshold $\tau$ keeps the steps of lag $\ge\tau$:

$$g_i^{\ge\tau} = \text{the same sums over } t \le S-1-\tau \text{ only, for } W_{in}, W_{rec}, b,$$

and the three numbers SGR works with are

$$s_i(\tau) = \|g_i^{\ge\tau}\|_2 \text{ (long-term score)}, \qquad
p_i(t) = \|\delta_{i,t}\|_2 \text{ (delta profile)}, \qquad
r_i(\tau) = \frac{\|\delta_{i,S-1-\tau}\|}{\|\delta_{i,S-1}\|} \text{ (vanishing ratio)}.$$

`gradreg.per_example_stats` returns all of them:
"""),
("code", r"""
task = gradreg.make_task("temporal_order", cfg.check_length)
model = figures.make_model(task, 50, seed, dtype=torch.float64, device=dev)
x, y = task.sample(cfg.check_batch, generator=torch.Generator().manual_seed(seed))
x, y = x.to(dev, torch.float64), y.to(dev)

stats = gradreg.per_example_stats(model, task, x, y)            # lag tau = floor(S/2) by default
print("tau =", stats.lag)
for name, g in stats.grads.items():
    print(f"grads[{name!r}]: {tuple(g.shape)}   (batch, *parameter shape)")
print("long_term_grads:", {k: tuple(v.shape) for k, v in stats.long_term_grads.items()})
print("delta_norm:", tuple(stats.delta_norm.shape), " long_term_norm:", tuple(stats.long_term_norm.shape))
"""),
("md", r"""
## Exactness: a per-example autograd loop as the reference

The reference is independent of `bptt`: plain autograd, one example at a time. To get the
long-term component out of autograd too, give every step its own copy of the recurrent
weights, all equal to the model's:

$$z_t = W_{in}^{(t)} x_t + W_{rec}^{(t)} h_{t-1} + b^{(t)}, \qquad
W^{(t)} = W \text{ for every } t.$$

The network computes exactly the same function, and autograd's gradient with respect to the
copy $W^{(t)}$ is exactly the step-$t$ term of the BPTT sum. Summing the copies' gradients
over all steps gives $g_i$; over $t \le S-1-\tau$, $g_i^{\ge\tau}$; and
$\partial E_i/\partial z_t$ read off $z_t$ gives the deltas
(`gradreg.figures.autograd_reference`).

We compare in float64 so that the only difference left is round-off, on three settings
that exercise different code paths: a last-step classification task, a regression task with
relu, and a task scored at every step.
"""),
("code", r"""
checks = []
for name, activation in [("temporal_order", "tanh"), ("adding", "relu"), ("noiseless_memorization", "tanh")]:
    t_ = gradreg.make_task(name, cfg.check_length)
    m_ = figures.make_model(t_, 50, seed, dtype=torch.float64, device=dev, activation=activation)
    x_, y_ = t_.sample(cfg.check_batch, generator=torch.Generator().manual_seed(seed))
    c = figures.exactness_check(m_, t_, x_.to(dev, torch.float64), y_.to(dev))
    c.insert(0, "setting", f"{name} (S={t_.steps}), {activation}")
    checks.append(c)
checks = pd.concat(checks, ignore_index=True)
display(checks.pivot(index="quantity", columns="setting", values="max_relative_error"))
worst = checks["max_relative_error"].max()
print(f"max relative error, batched one-pass statistics vs per-example autograd: {worst:.2e}")
assert worst < 1e-10
"""),
("md", r"""
The errors are at the float64 round-off floor ($\approx 10^{-15}$): the one-pass
statistics are exact, not an approximation.

## How are the long-term scores distributed across sequences?

If every sequence carried the same long-term gradient, choosing sequences could not help.
We score a large batch of fresh temporal-order sequences with an untrained network, at
several lengths $T$ (with $\tau = \lfloor T/2 \rfloor$), and compare the distributions
relative to their medians. `score_summary` reports quantiles relative to the median, the
share of $\sum_i s_i^2$ (the total long-term "energy") held by the top 1% and 10% of
sequences (1% and 10% if all were equal), and the spread of $\log_{10} s$.
"""),
("code", r"""
scores = figures.score_distributions("temporal_order", cfg.score_lengths, cfg.score_batch, seed=seed,
                                     device=dev, progress=True)
display(figures.score_summary(scores, "length").round(3))
fig = plotting.plot_score_distributions(scores, hue="length", hue_label="task length T")
plotting.save_figure(fig, "02_score_distributions", output_dir)
plt.show()
"""),
("md", r"""
What the table and the figure say about an **untrained** network:

* The scale collapses with length: the median score falls roughly geometrically in $T$
  (notebook 1's vanishing, now per example).
* The spread does *not*: relative to its median, the distribution looks the same at every
  length, with no heavy tail (the largest score is a few times the median, and the top 10%
  of sequences hold roughly a third of the total $\sum_i s_i^2$). It is multimodal: at
  initialisation the output is nearly uniform, so the error entering the last step,
  $\partial E/\partial o = \mathrm{softmax}(o) - e_y$, is set mainly by the target class
  $y$, and the four modes are the four classes (`stats.long_term_norm` grouped by `y` shows it).

### ... and with training

Scores change as the network learns: the weights change, and with them how much error
reaches far back, and the error signal becomes specific to each sequence rather than to its
class. We train briefly with `gradreg.train` (gradient clipping, the plain baseline, for at
most `cfg.train_iterations` iterations; it stops early if the task is solved) and score
fresh sequences again with the trained network.
"""),
("code", r"""
config = gradreg.TrainConfig(task="temporal_order", length=cfg.train_length, method="clip", seed=seed,
                             max_iterations=cfg.train_iterations, check_every=max(1, cfg.train_iterations // 10),
                             test_size=2000, device=device)
before_after, result = figures.scores_before_after(config, cfg.score_batch, progress=True)
print(result.summary())
display(figures.score_summary(before_after, "stage").round(3))
fig = plotting.plot_score_distributions(before_after, hue="stage", hue_label=f"temporal_order, T={cfg.train_length}")
plotting.save_figure(fig, "02_scores_training", output_dir)
plt.show()
"""),
("md", r"""
Training moves the whole distribution up (the long-term component grows as the network
starts to use the early inputs) and, while the task is being learned, widens it: the spread
of $\log_{10} s$ and the share held by the top sequences grow. The scores stop being a
function of the class alone and start to tell sequences apart, which is when choosing among
them can matter.
"""),
("md", r"""
## What does the batched estimate cost?

We time four ways of getting the gradients of one batch (temporal order,
$T$ = `cfg.timing_length`, $H = 50$, best of `cfg.timing_repeats` runs):

* **batched BPTT (gradreg)**: `per_example_stats`: every $g_i$, every $g_i^{\ge\tau}$ and
  every delta profile, one forward and one backward pass over the batch;
* **per-example autograd loop**: one forward and backward pass of `SRN.forward` per
  sequence (per-example full gradients only);
* **torch.func vmap(grad)**: the same per-example full gradients, vectorised by
  `torch.func` over the batch;
* **nn.RNN forward+backward**: a plain training step's cost with PyTorch's RNN, which
  yields only the batch-mean gradient: the yardstick for "free".
"""),
("code", r"""
timings = figures.cost_benchmark("temporal_order", cfg.timing_length, cfg.timing_batches, repeats=cfg.timing_repeats,
                                 loop_max_batch=cfg.loop_max_batch, seed=seed, device=dev)
display((timings.pivot(index="batch_size", columns="method", values="seconds") * 1e3).round(2)
        .rename_axis(columns="milliseconds per batch"))
fig = plotting.plot_timings(timings)
fig.axes[0].set_title(f"Gradients of one batch, T={cfg.timing_length}, H=50, {dev.type.upper()}")
plotting.save_figure(fig, "02_cost", output_dir)
plt.show()
"""),
("md", r"""
The per-example loop grows linearly with the batch (one sequential pass per example), and
vmap removes the Python loop but still materialises per-example gradients through a generic
transform. The hand-written pass does the recursion once for the whole batch, so every
per-example and lag-resolved statistic costs about what an ordinary training step costs:
compare the batched line with the nn.RNN line, which buys only the batch mean. That is what
makes scoring a pool of $M = 4n$ candidates at every SGR step affordable.
"""),
]

# =============================================================================================
NB03 = [
("md", r"""
# 3. What a minibatch does to the gradient norm

SGR chooses which examples form a minibatch. What a training step receives is not any
single example's gradient but the minibatch mean. This notebook proves three facts about
that mean (METHOD.md section 3), each in a few lines, and checks each numerically on real
per-example gradients of the temporal-order task. Then it measures what each of the
selection rules does to the minibatch's long-term gradient and to its signal-to-noise ratio.

Notation: a minibatch $B$ of $n$ examples with per-example gradient vectors
$g_i \in \mathbb{R}^P$ (either the full gradient over all parameters or the long-term
component $g_i^{\ge\tau}$ over $W_{in}, W_{rec}, b$; the statements hold for both), and
$\bar g_B = \frac1n \sum_{i\in B} g_i$.
"""),
("params", PARAMETERS),
("code", setup("03_minibatch_theory")),
("code", r"""
task = gradreg.make_task("temporal_order", cfg.length)
model64 = figures.make_model(task, 50, seed, dtype=torch.float64, device=dev)   # exact checks: float64
model = figures.make_model(task, 50, seed, device=dev)                          # as training runs it
print(task, "| tau =", task.steps // 2, "| untrained SRN, sparse init (spectral radius 0.95)")
"""),
("md", r"""
## Statement 1: the exact norm of any minibatch, from the Gram matrix

$$\|\bar g_B\|^2 = \frac{1}{n^2} \sum_{i, j \in B} \langle g_i, g_j \rangle .$$

*Proof.* Expand the inner product: $\|\sum_i g_i\|^2 = \langle \sum_i g_i, \sum_j g_j\rangle
= \sum_{i,j} \langle g_i, g_j \rangle$ by bilinearity; divide by $n^2$. $\square$

More generally, for any weights $w$ over a pool, $\|\sum_i w_i g_i\|^2 = w^\top G w$ with
$G_{ij} = \langle g_i, g_j\rangle$. So once the pool's per-example gradients are known (one
batched pass, notebook 2), the exact norm of *every* possible minibatch drawn from it costs
a sum over a block of $G$, and no further backward pass. The greedy rule uses exactly this.

*Check.* Random subsets $B$ of a pool: the Gram prediction against an independent
autograd backward pass on the subset's mean loss.
"""),
("code", r"""
gram = figures.gram_identity_check(model64, task, cfg.gram_pool, [1, 2, 5, 10, 20], cfg.subsets, seed=seed)
print(f"max relative error, Gram prediction vs autograd: {gram['relative_error'].max():.2e} "
      f"over {len(gram)} subsets (full and long-term gradients)")
assert gram["relative_error"].max() < 1e-10
"""),
("md", r"""
## Statement 2: the triangle bound

$$\|\bar g_B\| \;\le\; \frac1n \sum_{i \in B} \|g_i\| .$$

*Proof.* The triangle inequality $\|a + b\| \le \|a\| + \|b\|$, applied $n-1$ times, gives
$\|\sum_i g_i\| \le \sum_i \|g_i\|$; divide by $n$. Equality holds exactly when all the
$g_i$ point the same way (are non-negative multiples of one vector). $\square$

So a minibatch of examples with large individual long-term scores $s_i$ is *not*
guaranteed a large long-term gradient: if the $g_i^{\ge\tau}$ point in different directions
they cancel. The ratio $\|\bar g_B\| / \text{mean}_i\|g_i\|$ measures how coherent they are.

*Check* on the long-term components of random subsets:
"""),
("code", r"""
triangle = figures.triangle_check(model64, task, cfg.gram_pool, [1, 2, 5, 10, 20], cfg.subsets, seed=seed)
print(f"largest ||mean g|| / mean ||g_i|| over {len(triangle)} subsets: {triangle['ratio'].max():.6f} (<= 1)")
display(triangle.groupby("n")["ratio"].describe()[["mean", "min", "max"]].round(4)
        .rename_axis("n (coherence ||mean g|| / mean ||g_i||)"))
assert (triangle["ratio"] <= 1 + 1e-12).all()
"""),
("md", r"""
## Statement 3: the noise model

Suppose $g_i = \mu + \varepsilon_i$ with the $\varepsilon_i$ independent, $E\,\varepsilon_i = 0$
and $E\|\varepsilon_i\|^2 = \sigma^2$. Then

$$E\,\|\bar g_B\|^2 = \|\mu\|^2 + \frac{\sigma^2}{n}.$$

*Proof.* $\bar g_B = \mu + \bar\varepsilon$ with $\bar\varepsilon = \frac1n\sum_i\varepsilon_i$, so
$E\|\bar g_B\|^2 = \|\mu\|^2 + 2\langle \mu, E\bar\varepsilon\rangle + E\|\bar\varepsilon\|^2$.
The middle term is $0$. By statement 1,
$E\|\bar\varepsilon\|^2 = \frac{1}{n^2}\sum_{i,j} E\langle\varepsilon_i, \varepsilon_j\rangle$,
and for $i \ne j$ independence and zero mean give
$E\langle\varepsilon_i,\varepsilon_j\rangle = \langle E\varepsilon_i, E\varepsilon_j\rangle = 0$,
leaving $\frac{1}{n^2} \cdot n\sigma^2$. $\square$

Fresh sequences drawn from a task *are* independent, so the model applies to a plain
minibatch, with $\mu$ the expected gradient and $\sigma^2$ its per-example variance. The
two terms compete: the **long-term signal-to-noise ratio**

$$\mathrm{SNR} = \frac{\|\mu\|^2}{\sigma^2 / n}$$

says whether a step's long-term gradient is mostly signal (the direction all sequences
agree on) or mostly noise that averages out over steps.

*Check.* We draw a large pool, estimate $\mu$ and $\sigma^2$ from all of it, cut it into
disjoint minibatches of $n$ consecutive (hence independent) sequences, and compare the mean
of $\|\bar g_B\|^2$ over them (with $\pm 2$ standard errors) to the prediction.
"""),
("code", r"""
noise = figures.noise_model_check(model, task, cfg.noise_pool, cfg.noise_sizes, seed=seed)
display(noise[["component", "n", "groups", "measured", "stderr", "predicted"]].round(6))
for component, sub in noise.groupby("component"):
    z = ((sub["measured"] - sub["predicted"]) / sub["stderr"]).abs().max()
    snr = sub["mu_sq"].iloc[0] / sub["sigma_sq"].iloc[0]
    print(f"{component:9s}: largest |measured - predicted| = {z:.1f} standard errors; "
          f"||mu||^2 / sigma^2 = {snr:.2e}, so SNR = {snr:.2e} * n")
"""),
("code", r"""
fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
plotting.plot_gram_identity(gram, ax=axes[0])
plotting.plot_triangle_bound(triangle, ax=axes[1])
plotting.plot_noise_model(noise, ax=axes[2])
fig.suptitle(f"Minibatch theory on real per-example gradients (temporal order, T={cfg.length}, untrained SRN)")
plotting.save_figure(fig, "03_minibatch_theory", output_dir)
plt.show()
"""),
("md", r"""
Note where the long-term points sit in the right panel: at an untrained network
$\|\mu^{\ge\tau}\|^2$ is tiny compared with $\sigma^2/n$ for any practical $n$: a random
minibatch's long-term gradient is almost all noise. Its *norm* is not small (it is about
$\sigma/\sqrt n$), but its direction changes from step to step and averages away.

## Selection: what each rule does to the long-term signal

SGR draws a pool of $M = kn$ sequences ($k$ = pool factor), scores it in one batched pass
and keeps $n$ of them (METHOD.md section 4). The rules:

| rule | keeps |
|---|---|
| `random` | $n$ uniform of $M$: the same-cost control with no selection |
| `top` | the $n$ largest long-term scores $s_i(\tau)$ |
| `band` | sequences whose vanishing ratio $r_i(\tau)$ lies in a band, $[0.01, 10]$ by default |
| `weighted` | $n$ drawn with probability $\propto s_i^\alpha$ ($\alpha = 1$) |
| `greedy` | one at a time, each maximising the exact minibatch long-term norm (statement 1), until it enters a target band |

Selection moves both terms of the noise model: it changes the mean $\mu_B$ of the examples
that are kept and their spread $\sigma_B^2$. For each rule and pool factor we repeat the
selection on `cfg.repeats` fresh pools (the same pools for every rule) with the training
harness' own rule code, and report

* the minibatch long-term norm $\|\sum_{i\in B} w_i g_i^{\ge\tau}\|$ (median and quartiles
  over repeats);
* the noise-model SNR $\|\mu_B\|^2 / (\sigma_B^2/n)$ from the kept examples' mean and
  variance (solid lines);
* the measured SNR $\|E\,\bar g_B\|^2 / E\|\bar g_B - E\,\bar g_B\|^2$ over repeats (dotted),
  which assumes nothing about independence: the kept examples were chosen jointly from one
  pool, so they are not independent, and where the two SNRs differ, that dependence matters.

With $k = 1$ every rule keeps the whole pool: all rules coincide, a built-in sanity check.
"""),
("code", r"""
selection = figures.selection_study(model, "temporal_order", cfg.length, cfg.rules, cfg.pool_factors,
                                    batch_size=cfg.batch_size, repeats=cfg.repeats, seed=seed)
display(selection.pivot(index="rule", columns="pool_factor", values="lt_norm_median")
        .rename_axis(columns="median minibatch long-term norm, by pool factor k").round(4))
display(selection.pivot(index="rule", columns="pool_factor", values="snr_measured")
        .rename_axis(columns="measured long-term SNR, by pool factor k").round(3))
fig = plotting.plot_selection(selection)
fig.suptitle(f"Selection rules, temporal order T={cfg.length}, n={cfg.batch_size}, untrained SRN, "
             f"{cfg.repeats} pools per point")
plotting.save_figure(fig, "03_selection_rules", output_dir)
plt.show()
"""),
("md", r"""
How to read it.

* `random` does not depend on $k$ (up to sampling noise): without selection a bigger pool
  changes nothing. Its SNR is far below 1: a plain minibatch's long-term gradient is mostly
  noise (statement 3).
* `band` coincides with `random` here. At an untrained network every candidate's vanishing
  ratio is close to $\rho^\tau$ and inside the default band $[0.01, 10]$, so the rule keeps a
  uniform draw (the same draw as `random`). It only selects once training has spread the
  ratios out.
* `top`, `weighted` and `greedy` raise the minibatch long-term norm, and in this setting
  they raise $\|\mu_B\|^2$ faster than $\sigma_B^2/n$, so the SNR rises by orders of
  magnitude: at initialisation the high-scoring sequences share a direction (they are
  mostly of one target class, notebook 2), so selecting them selects a common signal.
* Where the measured SNR (x) departs from the noise-model line, the kept examples are not
  independent: `greedy` builds its minibatch to be coherent, and its measured SNR is
  higher than the per-example mean and variance suggest.

A large norm alone does not prove signal (statement 2: large individual scores can
cancel; statement 3: a norm can be all noise), which is why both panels are needed. And
whether a higher long-term SNR at one step turns into faster learning, rather than into a
biased gradient that favours some sequences, is a question about training dynamics, which
notebooks 5 and 6 answer.
"""),
]

# =============================================================================================
NB04 = [
("md", r"""
# 4. The tasks

The benchmark tasks of Hochreiter & Schmidhuber (1997), as used by Martens & Sutskever
(2011) and Pascanu et al. (2013), in `gradreg.tasks`. Each is a family of synthetic
sequences in which the answer depends on a few inputs placed far from the end, surrounded
by irrelevant ones: to solve it, a network has to carry information across a known, long
lag. Here $T$ is the task length, positions are 0-based, $[a, b)$ is half-open and
$d = \lfloor T/10 \rfloor$.

| task | input | relevant positions | target |
|---|---|---|---|
| `temporal_order` | 6 one-hot symbols A, B, c..f | A/B at $p_0 \in [d, 2d)$ and $p_1 \in [\lfloor T/2 \rfloor, \lfloor T/2\rfloor + d)$, distractors c..f elsewhere | the order: $v_0 + 2v_1$, 4 classes |
| `temporal_order_3bit` | the same | three A/B symbols at $[d,2d)$, $[\lfloor 0.3T \rfloor, +d)$, $[\lfloor 0.6T\rfloor, +d)$ | $v_0 + 2v_1 + 4v_2$, 8 classes |
| `adding` | value $\sim U[0,1]$ + marker channel | markers at $p_0 \in [0, d)$, $p_1 \in [d, d + \lfloor 0.4T \rfloor)$ | $(v_{p_0} + v_{p_1})/2$, regression |
| `multiplication` | the same | the same | $v_{p_0} \cdot v_{p_1}$, regression |
| `xor` | random bit + marker | the same | $v_{p_0} \oplus v_{p_1}$, 2 classes |
| `random_permutation` | 100 one-hot symbols | step 0 shows 0 or 1; steps after it random symbols 2..99 | the first symbol, 100-way output |
| `noiseless_memorization` | 5 values, blank, go | 10 values at steps 0..9, then blanks, "go" at step $T+10$ | blank until go, then the 10 values in order (every step scored) |

A sequence is **wrong** if the argmax at the scored step is wrong (memorization: at any
step) or, for regression, its squared error exceeds 0.04; a run is **solved** when at most
1% of 10,000 fresh test sequences are wrong.

`Task.sample_with_positions` returns the relevant positions along with each batch, which is
what the figure below marks.
"""),
("params", PARAMETERS),
("code", setup("04_tasks")),
("code", r"""
gallery = figures.task_gallery(cfg.length, seed=seed)
for item in gallery:
    t = item["task"]
    print(f"{t.name:24s} T={t.length:3d} steps S={t.steps:3d} input {t.input_size:3d} output {t.output_size:3d} "
          f"{t.kind:14s} readout={t.readout:4s} positions {item['positions'][0].tolist()}  "
          f"ranges {[(r.start, r.stop) for r in t.position_ranges()]}")
"""),
("md", r"""
## One sequence of each task

Each panel is one input sequence as a heat-map: rows are input channels, columns time steps,
dark = 1. The red boxes are the relevant inputs of this sequence; the orange bands are the
ranges those positions are drawn from (for noiseless memorization the box is the go signal
and the band the 10 stored values). The title gives the target; for noiseless
memorization, which is scored at every step, the targets are written under the steps in
blue (· = blank). For random permutation the 98 distractor symbols are folded into one row,
with each step's symbol written in it.
"""),
("code", r"""
fig = plotting.plot_task_gallery(gallery)
plotting.save_figure(fig, "04_task_gallery", output_dir)
plt.show()
"""),
("md", r"""
## How far back must the network look?

What makes these tasks hard is the lag between the relevant inputs and the step where the
answer is scored: for a last-step task, an input at position $p$ must be carried for
$S-1-p$ steps, and by notebook 1 the gradient that could teach the network to do so shrinks
geometrically in that lag. The figure draws, for every task at $T = 100$, where the relevant
inputs can fall, as a fraction of the sequence.
"""),
("code", r"""
tasks_100 = [gradreg.make_task(name, 100) for name in gradreg.TASK_NAMES]
fig = plotting.plot_position_ranges(tasks_100)
fig.axes[0].set_title("Where the relevant inputs are, at T = 100")
plotting.save_figure(fig, "04_relevant_positions", output_dir)
plt.show()
"""),
("md", r"""
Temporal order and the adding family put the first relevant input in the first fifth of
the sequence, so the lag to bridge grows linearly with $T$; random permutation puts it at
step 0 (the longest possible lag); noiseless memorization must hold 10 values across a
blank stretch of $T$ steps. The SGR lag threshold $\tau = \lfloor S/2\rfloor$ splits the
gradient roughly at the middle: its long-term component collects exactly the steps in the
first half, where the first relevant input of every task lies.
"""),
]

# =============================================================================================
NB05 = [
("md", r"""
# 5. Training: SGR against its baselines

Every method runs on the same harness (`gradreg.train`): the same task stream, the same
SRN initialisation for a given seed, the same optimiser (SGD, learning rate 0.01,
minibatch $n = 20$, hidden size 50) and the same test set of fresh sequences, drawn once
per run from its own seed. This notebook trains each method on one task and length, over
several seeds, and plots test error against the number of training sequences processed.

| method | step |
|---|---|
| `sgd` | $\theta \leftarrow \theta - \eta\, \bar g_B$, $B$ = $n$ fresh sequences |
| `clip` | the same with $\bar g_B \leftarrow \bar g_B \cdot \min(1, c/\lVert \bar g_B\rVert )$, $c = 1$ (Pascanu's SGD-C) |
| `pascanu` | clip, plus $\alpha\, \partial\Omega/\partial W_{rec}$, $\alpha = 2$, the vanishing-gradient regulariser $\Omega = \mathrm{mean}_{i,k}\big(\frac{\lVert W_{rec}^\top (f'(z_{k+1}) \odot u_{i,k+1})\rVert }{\lVert u_{i,k+1}\rVert } - 1\big)^2$, $u = \partial E/\partial h$ (SGD-CR) |
| `sgr/top` | draw $M = 4n$ sequences, score $s_i(\tau)$ in one batched pass, step with the mean gradient of the $n$ highest-scoring ones (already computed: no second backward pass), clipped |
| `sgr/random` | the same pool and cost, but $n$ chosen uniformly: the control that isolates the effect of *selection* |
| `lstm` | `torch.nn.LSTM` with the same readout, optimiser and clipping |

SGR processes $M = 4n$ sequences per step, so the x axis counts *examples processed*, the
whole pool for SGR: the honest unit of data and (roughly) of compute.
"""),
("params", PARAMETERS + "workers = None            # processes for the runs (None: the profile's choice)\n"),
("code", setup("05_training")),
("code", r"""
configs = figures.method_configs(cfg.task, cfg.length, cfg.seeds, max_iterations=cfg.max_iterations,
                                 check_every=cfg.check_every, test_size=cfg.test_size, device=device)
print(f"{len(configs)} runs: {cfg.task} T={cfg.length}, {cfg.seeds} seeds, at most {cfg.max_iterations} "
      f"iterations, test error on {cfg.test_size} sequences every {cfg.check_every} iterations")
results = figures.run_configs(configs, workers=cfg.workers if workers is None else workers)
table = figures.results_table(results)
display(figures.run_summary(table).round(3))
"""),
("md", r"""
The table: per method, how many seeds solved the task (test error $\le 1\%$) within the
iteration budget, the 95% Wilson interval of the success rate (notebook 6), and over the
solved runs the median iterations, examples and wall-clock seconds to solve.

## Learning curves

Each run's test error is put on a common grid of examples processed (linear interpolation
between checks; a run that solved keeps its final error after it stops, since training
would have stopped there; an unsolved run that ran out of iterations simply ends, and so
does its method's line, so that the median is always over all seeds). Lines are the median
over seeds, bands the interquartile range.
"""),
("code", r"""
curves = figures.curves_on_grid(results)
fig = plotting.plot_learning_curves(curves, title=f"{cfg.task}, T={cfg.length}: test error over training "
                                                  f"(median and IQR over {cfg.seeds} seeds)")
plotting.save_figure(fig, "05_learning_curves", output_dir)
plt.show()
"""),
("md", r"""
## What the step receives from long lags, and where the weights go

Every SRN step logs the long-term norm of the minibatch gradient it applies,
$\|\sum_{i \in B} w_i g_i^{\ge\tau}\|$ (before clipping). At any given network, `top`
can only raise it relative to a uniform choice from the same pool (that is what it selects
for; notebook 3). Over training, though, the `sgr/top` and `sgr/random` runs move to
different networks, so the curves below compare *trajectories*: the selection's direct
effect plus where it has taken the weights. `clip` ($n$ fresh sequences, no pool) is shown
for reference. The right panel follows the spectral radius of $W_{rec}$ (notebook 1: the
per-step factor of the backward pass).
"""),
("code", r"""
steps = figures.step_logs(results, labels=("sgr/top", "sgr/random", "clip"))
history = figures.histories(results, labels=("sgr/top", "sgr/random", "clip"))
fig = plotting.plot_training_dynamics(steps, history)
plotting.save_figure(fig, "05_long_term_norm", output_dir)
plt.show()
gain = figures.long_term_gain(steps, "sgr/top", "sgr/random")
print(f"per-step ratio of minibatch long-term norms, sgr/top : sgr/random (median over seeds and steps): "
      f"{gain['median_ratio']:.3g} overall, {gain['first_half']:.3g} in the first half of the "
      f"{gain['iterations']} iterations, {gain['second_half']:.3g} in the second")
display(figures.final_states(results).round(4))
"""),
("md", r"""
How to read the pair of panels. Differences between `sgr/top` and `sgr/random` come both
from the selection and from the different networks the runs have reached; the table (one
row per run: the spectral radius at the end, the largest and the last per-check long-term
norm) says how each run ended. Two outcomes are possible for `top`:

* the extra long-term signal teaches the network to carry the early symbol, and the run
  solves the task: the point of SGR;
* or the run stalls in saturation. Once the spectral radius of $W_{rec}$ is above 1
  (notebook 1), some sequences' long-term gradients explode, clipped steps keep pushing
  $W_{rec}$ outwards, the tanh units saturate ($f' \approx 0$), and then every candidate's
  long-term gradient vanishes: the long-term norm collapses by orders of magnitude and there
  is nothing left to select. The run stalls near 50% error, having learned one of the two
  symbols. This can happen to any clipped SRN (look for runs of any method whose last
  long-term norm in the table is 0), but `top` feeds it: it selects precisely the
  exploding sequences, which shows as a burst of long-term norm far above `random`'s just
  before the collapse. (The committed `quick` runs at $T = 30$ show both outcomes.)

Selection chooses among the gradients the pool has; it cannot create long-term signal where
the network has none, and taken greedily it can amplify an exploding direction. Whether SGR
solves more often than its baselines at long lags, across seeds, is what notebook 6 counts.
"""),
]

# =============================================================================================
NB06 = [
("md", r"""
# 6. Long-range dependencies: success rate against length

The question the paper asks: as the lag to bridge grows, which training method still solves
the task, how reliably, and at what cost? For each method and task length we train several
independent runs (seeds) and count how many solve the task (test error $\le 1\%$ on fresh
sequences) within an iteration budget.

The runs come from a sweep results file (`python -m gradreg sweep --profile paper
--results data/results/paper.csv`, resumable, possibly on a Dask cluster) when one exists:
`data/results/paper.csv` first, otherwise `data/results/<profile>.csv`. Without one,
the runs are computed here, at the chosen profile (`smoke` and `quick` are far smaller than
the paper's setting; their numbers show the pipeline, not the result).
"""),
("params", PARAMETERS + 'results = "auto"          # "auto" | "compute" | path to a sweep CSV\n'
                         'results_dir = "../data/results"\n'
                         "workers = None            # processes, when the runs are computed here\n"),
("code", setup("06_long_range")),
("code", r"""
table, source = figures.long_range_results(profile, results=results, results_dir=results_dir, device=device,
                                           workers=workers)
print(f"{len(table)} runs, from: {source}")
print("tasks:", sorted(table["task"].unique()), "| lengths:", sorted(table["length"].unique()),
      "| methods:", sorted(table["label"].unique()))
"""),
("md", r"""
## Success rates with honest error bars

With $k$ of $n$ runs solved, the success rate is $\hat p = k/n$. With $n$ of 5 or 10 the
usual normal interval $\hat p \pm z\sqrt{\hat p(1-\hat p)/n}$ fails: at $k = 0$ or $k = n$
it has width zero. The **Wilson score interval** inverts the score test instead, and is the
set of $p$ with $|\hat p - p| \le z\sqrt{p(1-p)/n}$:

$$\frac{\hat p + \frac{z^2}{2n} \pm z\sqrt{\frac{\hat p(1-\hat p)}{n} + \frac{z^2}{4n^2}}}{1 + \frac{z^2}{n}},
\qquad z = 1.96 \text{ for } 95\%.$$

It stays inside $[0, 1]$ and is informative at $k = 0$ and $k = n$:
"""),
("code", r"""
for k, n in [(0, 5), (5, 5), (3, 5), (0, 10), (7, 10)]:
    low, high = analysis.wilson_interval(k, n)
    print(f"{k:2d} of {n:2d} solved: rate {k / n:.2f}, 95% Wilson interval [{low:.2f}, {high:.2f}]")
"""),
("code", r"""
summary = figures.run_summary(table, by=("task", "length", "label"))
display(summary.round(3))
display(figures.sweep_summary(table))   # the same from gradreg.analysis.summarise
"""),
("code", r"""
fig = plotting.plot_success_rate(summary)
plotting.save_figure(fig, "06_success_rate", output_dir)
plt.show()
"""),
("md", r"""
## The cost of solving

Among the runs that solved, how many training sequences did it take? (Examples processed:
SGR counts its whole pool of $4n$ per step, so this compares data and, roughly, compute.)
Each dot is one solved run, the bar the median; a method with no dot at a length solved no
run there.
"""),
("code", r"""
fig = plotting.plot_examples_to_solve(table)
plotting.save_figure(fig, "06_examples_to_solve", output_dir)
plt.show()
"""),
("md", r"""
## Does the selection matter? Exact tests

The paper's claim is about SGR's *selection*, so `sgr/top` is held against the two runs that
isolate it: `sgr/random`, which draws the same pool of $4n$ sequences and steps on a random
$n$ of them (the same cost, no selection), and Pascanu's SGD-CR (`pascanu`), the strongest
baseline. With $k_1$ of $n_1$ and $k_2$ of $n_2$ runs solved, **Fisher's exact test** asks how
probable a split at least this uneven would be if both methods solved at the same rate:
conditioned on the $k_1 + k_2$ solved runs, the count of the first method is
hypergeometric, and the two-sided p-value adds the probabilities of all tables no more
likely than the observed one (`scipy.stats.fisher_exact`).
"""),
("code", r"""
comparison = analysis.comparisons(table)
display(comparison.round(4))
print(analysis.verdict(table))
"""),
("md", r"""
## What solved and failed SGR runs look like over training

The sweep keeps every run's check history beside its results (`NAME-history.csv.gz`, read by
`gradreg.sweep.load_history`): test error, the minibatch long-term norm and the spectral
radius of $W_{rec}$ at every check. Here the SGR runs of temporal order at T = 100, solid
where the run solved, dotted where it failed (no runs: the figure says so).
"""),
("code", r"""
from pathlib import Path
from gradreg import sweep

history_file = sweep.history_path(source) if Path(str(source)).is_file() else None
if history_file is None or not history_file.exists():
    print("no check histories for these runs (computed here, or a results file without its history)")
else:
    history = sweep.load_history(history_file)
    fig = plotting.plot_run_histories(history, table, "temporal_order", 100)
    plotting.save_figure(fig, "06_sgr_runs_T100", output_dir)
    plt.show()
"""),
("md", r"""
Read the two figures together: a method is better at a length if it solves more often (the
intervals separate) *or*, at equal reliability, with fewer examples. With the few seeds of
the `smoke` and `quick` profiles the Wilson intervals are wide and overlap almost
everywhere; that is the honest statement of what so few runs can show. A paper-sized sweep
(`python -m gradreg sweep --profile paper`, read here from `data/results/paper.csv`) is
what the comparison needs.
"""),
]

NB07 = [
("md", r"""
# 7. Two protocols: Pascanu's conventions and the authors' own

*Part of `gradreg`, a reproduction of Chernodub & Nowicki (2016).*

The paper's full text is not public, so notebooks 1-6 follow the conventions of Pascanu et
al. (2013) for the tasks and their training. The same two authors published, the same year,
the MATLAB code of their ICANN 2016 experiments (github.com/achernodub/oplu_adding): their own
task generators, loss, optimiser, data and stopping rule. `gradreg` implements both as
*protocols* of one training engine: `TrainConfig(protocol="chernodub")` sets every choice of
the authors' code in one word, and any field given explicitly overrides it.

This notebook shows what differs, where the two variants of the task generators put the
inputs that matter, and, when the sweep `authors` has been run (`data/results/authors.csv`),
the results under each protocol, reported both ways.
"""),
("params", PARAMETERS + 'results_dir = "../data/results"\n'),
("code", setup("07_protocols")),
("md", r"""
## What the protocols set

One row per setting; `differs` marks the choices where the two protocols part. Under
`chernodub` the loss is $\tfrac12\sum_i \lVert y_i - t_i\rVert^2$ **summed** over the
minibatch (one-hot targets for the classification tasks), the update is momentum in the
classical form $v \leftarrow \mu v - \eta g,\ w \leftarrow w + v$, the data is a **fixed**
training set of 20,000 sequences drawn once per run and sampled with replacement, and a run
stops on a **validation** set: every 50 iterations its success rate and MSE on 1,000
sequences; the network of lowest validation MSE is kept; training stops when the validation
success rate exceeds 99%, and the result is the *kept* network's success rate on 10,000 test
sequences (solved when at least 99%). Under `pascanu` every step draws fresh sequences, the
mean of the task's loss (cross-entropy, squared error) is clipped at norm 1, and a run is
solved at the first test check with at most 1% of its test sequences wrong.
"""),
("code", r"""
display(figures.protocol_table())
"""),
("md", r"""
## Where the relevant inputs are

The two variants of the generators put the marked inputs in different places, and so ask the
network to carry them over different lags. The authors' adding problem marks its first value
in the first tenth of a stretched length $\tilde T = \lceil 1.1\,T \rceil$ and its second before
$\tilde T/2$ (values in $[-1, 1]$, wrong when $|o - t| > 0.08$); Pascanu's marks the second in
$[T/10, T/2)$ with values in $[0, 1]$ (wrong when $(o-t)^2 > 0.04$). The authors' temporal order
puts its two symbols in the second and the fifth tenth of the sequence; Pascanu's in the
second tenth and just after the middle. Lags are counted from the last step, $S - 1 - p$.
"""),
("code", r"""
positions = figures.variant_positions(cfg.tasks, cfg.lengths)
display(positions)
"""),
("code", r"""
for length in cfg.lengths:
    tasks, labels = figures.variant_tasks(cfg.tasks, length)
    fig = plotting.plot_position_ranges(tasks, labels=labels)
    fig.axes[0].set_title(f"Where the relevant inputs are, by variant, at T = {length}")
    plotting.save_figure(fig, f"07_relevant_positions_T{length}", output_dir)
    plt.show()
"""),
("md", r"""
## Results under each protocol

The authors report a setting as the **mean test success rate** over the networks they
trained (here with a 95% t interval over networks); this package reports the **fraction of
runs solved** (with a 95% Wilson interval). Both are computed for each protocol's runs: the
authors' from `data/results/authors.csv` (the sweep `python -m gradreg sweep --profile
authors --results data/results/authors.csv`), Pascanu's from `data/results/paper.csv`, for
the methods the authors' sweep runs (sgd, sgr/top, sgr/random).
"""),
("code", r"""
tables = figures.protocol_results(results_dir)
for protocol, table in tables.items():
    print(f"{protocol}: " + (f"{len(table)} finished runs" if table is not None else
                             "no results file with finished runs in " + results_dir))
if tables["chernodub"] is None:
    print("The authors' protocol has no committed results yet (data/results/authors.csv): "
          "run the sweep 'authors' to fill this section.")
summary = figures.protocol_summary(tables, compared=cfg.compared, tasks=("adding", "temporal_order"),
                                   lengths=cfg.lengths)
display(summary.round(2))
"""),
]

NOTEBOOKS = {
    "01_vanishing_gradients": NB01,
    "02_per_example_estimation": NB02,
    "03_minibatch_theory": NB03,
    "04_tasks": NB04,
    "05_training": NB05,
    "06_long_range": NB06,
    "07_protocols": NB07,
}


def build(stem: str, cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
        "language_info": {"name": "python"},
    }
    for k, (kind, source) in enumerate(cells):
        source = source.strip("\n")
        if kind == "md":
            cell = nbformat.v4.new_markdown_cell(source)
        else:
            cell = nbformat.v4.new_code_cell(source)
            if kind == "params":
                cell.metadata["tags"] = ["parameters"]
        cell.id = f"{stem[:2]}-{k:02d}"
        nb.cells.append(cell)
    nbformat.validate(nb)
    return nb


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    check = "--check" in argv
    stale = []
    for stem, cells in NOTEBOOKS.items():
        path = HERE / f"{stem}.ipynb"
        text = nbformat.writes(build(stem, cells)) + "\n"
        if check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
            print("wrote", path)
    if stale:
        print("out of date (run notebooks/_build.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
